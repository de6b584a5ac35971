/* drivers/digitalocean: the API's example payloads (tests/unit/data/do/, see SOURCES.md) read,
 * the request bodies built (golden), tags checked, the flag table's docker-machine names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define MACHINE_DO_PRIV
#include "digitalocean/do-priv.h"
#include "driver.h"
#include "error.h"
#include "fsutil.h"
#include "jsonutil.h"
#include "machine.h"
#include "registry.h"
#include "test_helpers.h"

static char *sample(const char *name, size_t *len)
{
    auto_free char *path = xasprintf("%s/unit/data/do/%s", MACHINE_TEST_DIR, name);
    char *text = NULL;
    struct merr err = MERR_INIT;
    assert_int_equal(fs_read_file(path, 1 << 20, &text, len, &err), 0);
    return text;
}

static void test_droplet_get(void **state)
{
    (void)state;
    size_t len = 0;
    auto_free char *body = sample("droplet_get.json", &len);
    struct do_droplet d = { 0 };
    struct merr err = MERR_INIT;
    assert_int_equal(do_parse_droplet(body, len, &d, &err), 0);
    assert_int_equal(d.id, 3164444);
    assert_string_equal(d.name, "example.com");
    assert_string_equal(d.status, "active");
    /* the public address, not the private one listed first */
    assert_string_equal(d.public_ipv4, "192.241.165.154");
    assert_int_equal(do_status_state(d.status), MSTATE_RUNNING);
    do_droplet_clear(&d);
}

static void test_droplet_create(void **state)
{
    (void)state;
    size_t len = 0;
    auto_free char *body = sample("droplet_create.json", &len);
    struct do_droplet d = { 0 };
    struct merr err = MERR_INIT;
    assert_int_equal(do_parse_droplet(body, len, &d, &err), 0);
    assert_int_equal(d.id, 3164444);
    assert_string_equal(d.status, "new");
    assert_null(d.public_ipv4); /* no network yet: the wait goes on */
    assert_int_equal(do_status_state(d.status), MSTATE_STARTING);
    do_droplet_clear(&d);
    assert_int_equal(do_status_state("off"), MSTATE_STOPPED);
    assert_int_equal(do_status_state("archive"), MSTATE_STOPPED);
    assert_int_equal(do_status_state("surprise"), MSTATE_ERROR);
}

struct collected {
    long long ids[8];
    char ips[8][32];
    int n;
};

static int collect(void *opaque, const struct do_droplet *d, struct merr *err)
{
    (void)err;
    struct collected *c = opaque;
    c->ids[c->n] = d->id;
    snprintf(c->ips[c->n], sizeof c->ips[0], "%s", d->public_ipv4 != NULL ? d->public_ipv4 : "");
    c->n++;
    return 0;
}

static void test_droplet_page(void **state)
{
    (void)state;
    size_t len = 0;
    auto_free char *body = sample("droplets_all.json", &len);
    struct collected c = { 0 };
    auto_free char *next = NULL;
    struct merr err = MERR_INIT;
    assert_int_equal(do_parse_droplet_page(body, len, collect, &c, &next, &err), 0);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.ids[1], 3164459);
    assert_string_equal(c.ips[2], "192.241.247.248");
    assert_null(next); /* links.pages is empty: the last page */
}

static void test_keys(void **state)
{
    (void)state;
    size_t len = 0;
    struct merr err = MERR_INIT;
    auto_free char *created = sample("ssh_key_created.json", &len);
    long long id = 0;
    auto_free char *fp = NULL;
    assert_int_equal(do_parse_key(created, len, &id, &fp, &err), 0);
    assert_int_equal(id, 512189);
    assert_string_equal(fp, "3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa");

    auto_free char *all = sample("ssh_keys_all.json", &len);
    auto_free char *next = NULL;
    assert_int_equal(do_parse_key_page(all, len, "Other Public Key", &id, &next, &err), 0);
    assert_int_equal(id, 289794);
    assert_null(next); /* found: no need for the next page */
    assert_int_equal(do_parse_key_page(all, len, "machine-c1-0000", &id, &next, &err), 0);
    assert_int_equal(id, 0);
    assert_string_equal(next, "https://api.digitalocean.com/v2/account/keys?page=2");
}

static void test_action_and_errors(void **state)
{
    (void)state;
    size_t len = 0;
    struct merr err = MERR_INIT;
    auto_free char *body = sample("action.json", &len);
    struct do_action a = { 0 };
    assert_int_equal(do_parse_action(body, len, &a, &err), 0);
    assert_int_equal(a.id, 36804636);
    assert_string_equal(a.status, "completed");
    do_action_clear(&a);

    static const char *const files[] = { "error_unauthorized.json", "error_rate_limit.json",
                                         "error_not_found.json" };
    static const char *const ids[] = { "unauthorized", "too_many_requests", "not_found" };
    for (size_t i = 0; i < 3; i++) {
        auto_free char *e = sample(files[i], &len);
        auto_free char *id = NULL;
        auto_free char *msg = NULL;
        do_parse_error(e, len, &id, &msg);
        assert_string_equal(id, ids[i]);
        assert_non_null(msg);
    }
    auto_free char *id = NULL;
    auto_free char *msg = NULL;
    do_parse_error("<html>bad gateway</html>", 24, &id, &msg);
    assert_null(id);
    assert_null(msg);

    /* a droplet answer without its member is a protocol error, not a crash */
    struct do_droplet d = { 0 };
    assert_int_equal(do_parse_droplet("{\"id\": 1}", 9, &d, &err), -1);
    assert_int_equal(err.code, MERR_PROTOCOL);
    assert_int_equal(do_parse_droplet("not json", 8, &d, &err), -1);
    assert_int_equal(err.code, MERR_PROTOCOL);
}

static void test_droplet_request(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    struct do_droplet_spec s = {
        .name = "c1", .region = "nyc3", .size = "s-1vcpu-1gb", .image = "debian-12-x64",
        .ssh_key = "512189", .tags = " web, env:prod ,,", .owner_tag = "machine-c1-0a1b2c3d",
        .user_data = "#cloud-config\nruncmd:\n  - touch /test.txt\n",
        .ipv6 = true, .backups = true, .monitoring = true,
    };
    auto_json json_t *body = do_droplet_request(&s, &err);
    assert_non_null(body);
    auto_free char *text = json_dumps(body, JSON_SORT_KEYS | JSON_INDENT(2));
    auto_free char *with_nl = xasprintf("%s\n", text);
    test_assert_golden("do-droplet-create.json", with_nl);

    /* a fingerprint is sent as a string, an id as a number */
    s.ssh_key = "3b:16:e4:bf:8b:00:8b:b8:59:8c:a9:d3:f0:19:fa:45";
    auto_json json_t *fp_body = do_droplet_request(&s, &err);
    assert_true(json_is_string(json_array_get(json_object_get(fp_body, "ssh_keys"), 0)));

    s.tags = "web,bad tag";
    assert_null(do_droplet_request(&s, &err));
    assert_int_equal(err.code, MERR_INVALID);
    s.tags = "web,a.b";
    assert_null(do_droplet_request(&s, &err));

    auto_json json_t *key = do_key_request("machine-c1-0a1b2c3d", "ssh-ed25519 AAAAC3Nz c1\n");
    assert_string_equal(json_string_value(json_object_get(key, "public_key")),
                        "ssh-ed25519 AAAAC3Nz c1");
}

static void test_api_url(void **state)
{
    (void)state;
    assert_true(do_api_url_ok("https://api.digitalocean.com"));
    assert_true(do_api_url_ok("https://cloud.example:8443/api/"));
    assert_true(do_api_url_ok("http://127.0.0.1:8080"));
    assert_true(do_api_url_ok("http://localhost/"));
    assert_true(do_api_url_ok("http://[::1]:9"));
    assert_false(do_api_url_ok("http://api.digitalocean.com"));
    assert_false(do_api_url_ok("http://127.0.0.1.evil.example"));
    assert_false(do_api_url_ok("http://localhostile.example"));
    assert_false(do_api_url_ok("ftp://127.0.0.1"));
    assert_false(do_api_url_ok("https://"));
    assert_false(do_api_url_ok("api.digitalocean.com"));
}

static void test_flags(void **state)
{
    (void)state;
    const struct driver *d = driver_find(machine_drivers(), "digitalocean");
    assert_non_null(d);
    static const char *const want[][2] = {
        { "digitalocean-access-token", "DIGITALOCEAN_ACCESS_TOKEN" },
        { "digitalocean-region", "DIGITALOCEAN_REGION" },
        { "digitalocean-size", "DIGITALOCEAN_SIZE" },
        { "digitalocean-image", "DIGITALOCEAN_IMAGE" },
        { "digitalocean-ssh-user", "DIGITALOCEAN_SSH_USER" },
        { "digitalocean-ssh-port", "DIGITALOCEAN_SSH_PORT" },
        { "digitalocean-ssh-key-fingerprint", "DIGITALOCEAN_SSH_KEY_FINGERPRINT" },
        { "digitalocean-ipv6", "DIGITALOCEAN_IPV6" },
        { "digitalocean-private-networking", "DIGITALOCEAN_PRIVATE_NETWORKING" },
        { "digitalocean-backups", "DIGITALOCEAN_BACKUPS" },
        { "digitalocean-monitoring", "DIGITALOCEAN_MONITORING" },
        { "digitalocean-tags", "DIGITALOCEAN_TAGS" },
        { "digitalocean-userdata", "DIGITALOCEAN_USERDATA" },
        { "digitalocean-api-url", "DIGITALOCEAN_API_URL" },
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const struct driver_flag *f = d->flags;
        while (f->name != NULL && strcmp(f->name, want[i][0]) != 0)
            f++;
        assert_non_null(f->name);
        assert_string_equal(f->env, want[i][1]);
        assert_int_equal(f->secret, strcmp(want[i][0], "digitalocean-access-token") == 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_droplet_get),
        cmocka_unit_test(test_droplet_create),
        cmocka_unit_test(test_droplet_page),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_action_and_errors),
        cmocka_unit_test(test_droplet_request),
        cmocka_unit_test(test_api_url),
        cmocka_unit_test(test_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
