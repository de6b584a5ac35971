/* machine export / import: which archive entries are taken (security cases 12, 13, 17: entries
 * escaping the machine directory, links, devices, credentials), the config's paths moved to the
 * new store, and a round trip through a store where a refused archive leaves nothing behind. */
#include "test_helpers.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include "context.h"
#include "machine.h"
#include "secrets.h"
#include "store.h"
#include "tarw.h"
#include "transfer.h"

static void ok_entry(const char *name, char type, const char *want)
{
    struct merr err = MERR_INIT;
    const char *base = "unset";
    if (transfer_check_entry(name, type, &base, &err) < 0)
        fail_msg("%s refused: %s", name, err.msg);
    if (want == NULL)
        assert_null(base);
    else
        assert_string_equal(base, want);
}

static void bad_entry(const char *name, char type)
{
    struct merr err = MERR_INIT;
    const char *base;
    if (transfer_check_entry(name, type, &base, &err) == 0)
        fail_msg("%s (type %c) accepted", name, type);
    assert_int_equal(err.code, MERR_INVALID);
}

static void test_entries(void **state)
{
    (void)state;
    ok_entry("config.json", '0', "config.json");
    ok_entry("./id_ssh", '0', "id_ssh");
    ok_entry("id_ssh.pub", '\0', "id_ssh.pub");
    ok_entry("known_hosts", '0', "known_hosts");
    ok_entry("server-key.pem", '0', "server-key.pem");
    ok_entry("export.json", '0', "export.json");
    ok_entry("./", '5', NULL);
    ok_entry(".", '5', NULL);
    bad_entry("/etc/passwd", '0');
    bad_entry("../config.json", '0');
    bad_entry("./../x/config.json", '0');
    bad_entry("..", '5');
    bad_entry("a/../../config.json", '0');
    bad_entry("sub/config.json", '0');
    bad_entry("sub", '5');
    bad_entry("id_ssh", '2');  /* symlink */
    bad_entry("id_ssh", '1');  /* hard link */
    bad_entry("known_hosts", '3');
    bad_entry("known_hosts", '4');
    bad_entry("known_hosts", '6');
    bad_entry("credentials.json", '0');
    bad_entry("disk.qcow2", '0');
    bad_entry(".config.json", '0');
    bad_entry("", '0');
}

static void test_exported_files(void **state)
{
    (void)state;
    assert_true(transfer_exported_file("ca.pem"));
    assert_true(transfer_exported_file("key.pem"));
    assert_true(transfer_exported_file("config.json"));
    assert_false(transfer_exported_file("credentials.json"));
    assert_false(transfer_exported_file("disk.img"));
    assert_false(transfer_exported_file(".pem"));
    assert_false(transfer_exported_file("A B.pem"));
}

static void test_rewrite(void **state)
{
    (void)state;
    json_t *cfg = json_pack("{s:s,s:{s:s,s:s,s:s,s:i}}", "Name", "old", "Driver", "SSHKeyPath",
                            "/home/a/.machine/machines/old/id_ssh", "IPAddress", "10.0.0.5",
                            "Other", "/home/a/.machine/machines/older/x", "SSHPort", 22);
    transfer_rewrite_config(cfg, "/home/a/.machine/machines/old", "/srv/m/machines/new", "new");
    assert_string_equal(json_string_value(json_object_get(cfg, "Name")), "new");
    json_t *d = json_object_get(cfg, "Driver");
    assert_string_equal(json_string_value(json_object_get(d, "SSHKeyPath")),
                        "/srv/m/machines/new/id_ssh");
    assert_string_equal(json_string_value(json_object_get(d, "IPAddress")), "10.0.0.5");
    assert_string_equal(json_string_value(json_object_get(d, "Other")),
                        "/home/a/.machine/machines/older/x");
    json_decref(cfg);
}

/* ---- round trip through stores ---- */

struct membuf {
    char *data;
    size_t len;
};

static int mem_write(void *opaque, const void *buf, size_t len, struct merr *err)
{
    (void)err;
    struct membuf *b = opaque;
    b->data = realloc(b->data, b->len + len);
    memcpy(b->data + b->len, buf, len);
    b->len += len;
    return 0;
}

static int mem_fd(const struct membuf *b)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(fwrite(b->data, 1, b->len, f), b->len);
    fflush(f);
    int fd = dup(fileno(f));
    fclose(f);
    lseek(fd, 0, SEEK_SET);
    return fd;
}

static void make_machine(struct machine_ctx *ctx, const char *name)
{
    struct merr err = MERR_INIT;
    auto_machine struct machine *m = machine_new(name, "generic");
    auto_free char *key = store_machine_file(&ctx->store, name, "id_ssh");
    machine_driver_set_str(m, "SSHKeyPath", key);
    machine_driver_set_str(m, "IPAddress", "10.0.0.5");
    machine_secret_set(m, "AccessToken", "s3cret");
    machine_set_status(m, MACHINE_STATUS_CREATED, NULL);
    assert_int_equal(store_create_machine(&ctx->store, m, &err), 0);
    assert_int_equal(fs_write_atomic(key, "KEY", 3, 0600, &err), 0);
    auto_free char *kh = store_machine_file(&ctx->store, name, "known_hosts");
    assert_int_equal(fs_write_atomic(kh, "10.0.0.5 ssh-ed25519 AAAA\n", 26, 0600, &err), 0);
    auto_free char *disk = store_machine_file(&ctx->store, name, "disk.img");
    assert_int_equal(fs_write_atomic(disk, "DISK", 4, 0600, &err), 0);
}

static size_t machines_entries(const struct machine_ctx *ctx)
{
    DIR *d = opendir(ctx->store.machines_dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void test_round_trip(void **state)
{
    (void)state;
    char *from_dir = test_tmpdir(), *to_dir = test_tmpdir();
    struct machine_ctx from = { 0 }, to = { 0 };
    struct merr err = MERR_INIT;
    assert_int_equal(store_open(from_dir, &from.store, &err), 0);
    assert_int_equal(store_open(to_dir, &to.store, &err), 0);
    make_machine(&from, "web");
    struct membuf b = { 0 };
    assert_int_equal(machine_export(&from, "web", mem_write, &b, &err), 0);
    assert_null(memmem(b.data, b.len, "s3cret", 6));        /* no secret */
    assert_null(memmem(b.data, b.len, "credentials", 11));
    assert_null(memmem(b.data, b.len, "DISK", 4));          /* only the listed files */

    int fd = mem_fd(&b);
    char *name = NULL;
    assert_int_equal(machine_import(&to, fd, NULL, &name, &err), 0);
    assert_string_equal(name, "web");
    free(name);
    close(fd);
    auto_machine struct machine *m = store_load_machine(&to.store, "web", &err);
    assert_non_null(m);
    auto_free char *key = store_machine_file(&to.store, "web", "id_ssh");
    assert_string_equal(machine_driver_str(m, "SSHKeyPath"), key);
    assert_null(machine_secret(m, "AccessToken")); /* named, without its value */
    assert_true(fs_exists(key));

    /* the name is taken now: refused, and nothing is left behind */
    fd = mem_fd(&b);
    assert_int_equal(machine_import(&to, fd, NULL, &name, &err), -1);
    assert_int_equal(err.code, MERR_EXISTS);
    close(fd);
    assert_int_equal(machines_entries(&to), 1);
    /* --name NEW */
    fd = mem_fd(&b);
    assert_int_equal(machine_import(&to, fd, "web2", &name, &err), 0);
    close(fd);
    free(name);
    auto_machine struct machine *m2 = store_load_machine(&to.store, "web2", &err);
    assert_non_null(m2);
    auto_free char *key2 = store_machine_file(&to.store, "web2", "id_ssh");
    assert_string_equal(machine_driver_str(m2, "SSHKeyPath"), key2);

    /* an archive with a link after good entries: refused, no directory stays */
    struct membuf bad = { 0 };
    struct tarw w = { .write = mem_write, .ctx = &bad };
    struct tarw_meta cfg = { .name = "config.json", .type = '0', .mode = 0600, .size = 2 };
    struct tarw_meta link = { .name = "id_ssh", .type = '2', .linkname = "/etc/shadow",
                              .mode = 0777 };
    assert_int_equal(tarw_entry(&w, &cfg, &err), 0);
    assert_int_equal(tarw_data(&w, "{}", 2, &err), 0);
    assert_int_equal(tarw_entry(&w, &link, &err), 0);
    assert_int_equal(tarw_close(&w, &err), 0);
    tarw_release(&w);
    fd = mem_fd(&bad);
    assert_int_equal(machine_import(&to, fd, "other", &name, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    close(fd);
    assert_int_equal(machines_entries(&to), 2);

    free(b.data);
    free(bad.data);
    store_release(&from.store);
    store_release(&to.store);
    test_tmpdir_remove(from_dir);
    test_tmpdir_remove(to_dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entries),
        cmocka_unit_test(test_exported_files),
        cmocka_unit_test(test_rewrite),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
