/* `digitalocean`: a droplet made through DigitalOcean's API v2 (or a compatible one given by
 * --digitalocean-api-url). create uploads the machine's key, makes the droplet and waits for
 * it to be active with a public IPv4; core then waits for SSH and provisions it. The power
 * verbs are droplet actions, each waited for; rm deletes the droplet and the key machine
 * uploaded, also after a create that was killed half way (both carry the machine's owner tag). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "do-priv.h"
#include "driver.h"
#include "error.h"
#include "fsutil.h"
#include "http.h"
#include "log.h"
#include "machine.h"
#include "registry.h"
#include "secrets.h"

/* A droplet is usually active within a minute; the operation's deadline bounds it too. */
#define DO_ACTIVE_WAIT_MS (10 * 60 * 1000)
#define DO_USERDATA_MAX (64 * 1024)
#define DO_MAX_TAGGED 64

static const struct driver_flag do_flags[] = {
    { .name = "digitalocean-access-token", .env = "DIGITALOCEAN_ACCESS_TOKEN",
      .key = DO_KEY_TOKEN, .help = "DigitalOcean access token (kept in the store's credentials/, 0600)",
      .type = DFLAG_STRING, .secret = true },
    { .name = "digitalocean-api-url", .env = "DIGITALOCEAN_API_URL", .def = DO_DEFAULT_API_URL,
      .key = DO_KEY_API_URL, .help = "API endpoint (a compatible cloud or a simulator)",
      .type = DFLAG_STRING },
    { .name = "digitalocean-region", .env = "DIGITALOCEAN_REGION", .def = "nyc3",
      .key = DO_KEY_REGION, .help = "region slug", .type = DFLAG_STRING },
    { .name = "digitalocean-size", .env = "DIGITALOCEAN_SIZE", .def = "s-1vcpu-1gb",
      .key = DO_KEY_SIZE, .help = "droplet size slug", .type = DFLAG_STRING },
    { .name = "digitalocean-image", .env = "DIGITALOCEAN_IMAGE", .def = "debian-12-x64",
      .key = DO_KEY_IMAGE, .help = "image slug or id", .type = DFLAG_STRING },
    { .name = "digitalocean-ssh-user", .env = "DIGITALOCEAN_SSH_USER", .def = "root",
      .key = DKEY_SSH_USER, .help = "SSH user", .type = DFLAG_STRING },
    { .name = "digitalocean-ssh-port", .env = "DIGITALOCEAN_SSH_PORT", .def = "22",
      .key = DKEY_SSH_PORT, .help = "SSH port", .type = DFLAG_INT, .min = 1, .max = 65535 },
    { .name = "digitalocean-ssh-key-fingerprint", .env = "DIGITALOCEAN_SSH_KEY_FINGERPRINT",
      .key = DO_KEY_FINGERPRINT,
      .help = "use this key of the account instead of uploading one (needs --digitalocean-ssh-key-path)",
      .type = DFLAG_STRING },
    { .name = "digitalocean-ssh-key-path", .env = "DIGITALOCEAN_SSH_KEY_PATH",
      .key = DKEY_SSH_KEY_SOURCE, .help = "private key of --digitalocean-ssh-key-fingerprint",
      .type = DFLAG_STRING },
    { .name = "digitalocean-ipv6", .env = "DIGITALOCEAN_IPV6", .def = "false",
      .key = DO_KEY_IPV6, .help = "enable IPv6", .type = DFLAG_BOOL },
    { .name = "digitalocean-private-networking", .env = "DIGITALOCEAN_PRIVATE_NETWORKING",
      .def = "false", .key = DO_KEY_PRIVATE_NET, .help = "enable private networking",
      .type = DFLAG_BOOL },
    { .name = "digitalocean-backups", .env = "DIGITALOCEAN_BACKUPS", .def = "false",
      .key = DO_KEY_BACKUPS, .help = "enable backups", .type = DFLAG_BOOL },
    { .name = "digitalocean-monitoring", .env = "DIGITALOCEAN_MONITORING", .def = "false",
      .key = DO_KEY_MONITORING, .help = "enable the monitoring agent", .type = DFLAG_BOOL },
    { .name = "digitalocean-tags", .env = "DIGITALOCEAN_TAGS", .key = DO_KEY_TAGS,
      .help = "comma-separated tags for the droplet", .type = DFLAG_STRING },
    { .name = "digitalocean-userdata", .env = "DIGITALOCEAN_USERDATA", .key = DO_KEY_USERDATA,
      .help = "file with cloud-init user data", .type = DFLAG_STRING },
    { 0 },
};

static bool flag_on(const struct machine *m, const char *key)
{
    return json_is_true(json_object_get(m->driver, key));
}

static bool set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static int read_userdata(const struct machine *m, char **out, struct merr *err)
{
    *out = NULL;
    const char *path = machine_driver_str(m, DO_KEY_USERDATA);
    if (!set(path))
        return 0;
    size_t len = 0;
    if (fs_read_file(path, DO_USERDATA_MAX, out, &len, err) < 0)
        return merr_prefix(err, "cannot read --digitalocean-userdata '%s'", path);
    return 0;
}

/* "machine-NAME-RANDOM" with the characters a tag refuses replaced. */
static char *owner_tag(const char *name)
{
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        r = (uint32_t)(uintptr_t)&r ^ (uint32_t)getpid();
    char *t = xasprintf("machine-%s-%08x", name, r);
    for (char *p = t; *p != '\0'; p++)
        if (*p == '.')
            *p = '-';
    return t;
}

static void spec_of(const struct machine *m, struct do_droplet_spec *s)
{
    *s = (struct do_droplet_spec){
        .name = m->name,
        .region = machine_driver_str(m, DO_KEY_REGION),
        .size = machine_driver_str(m, DO_KEY_SIZE),
        .image = machine_driver_str(m, DO_KEY_IMAGE),
        .tags = machine_driver_str(m, DO_KEY_TAGS),
        .owner_tag = machine_driver_str(m, DO_KEY_OWNER_TAG),
        .ipv6 = flag_on(m, DO_KEY_IPV6),
        .private_networking = flag_on(m, DO_KEY_PRIVATE_NET),
        .backups = flag_on(m, DO_KEY_BACKUPS),
        .monitoring = flag_on(m, DO_KEY_MONITORING),
    };
}

static int do_precreate_check(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    if (set(machine_driver_str(m, DO_KEY_FINGERPRINT)) &&
        !set(machine_driver_str(m, DKEY_SSH_KEY_SOURCE)))
        return merr_set(err, MERR_INVALID, 0,
                        "--digitalocean-ssh-key-fingerprint needs --digitalocean-ssh-key-path "
                        "(the private key of that fingerprint)");
    auto_free char *userdata = NULL;
    if (read_userdata(m, &userdata, err) < 0)
        return -1;
    struct do_droplet_spec spec;
    spec_of(m, &spec);
    json_t *probe = do_droplet_request(&spec, err); /* refuses bad tags before anything */
    if (probe == NULL)
        return -1;
    json_decref(probe);
    __attribute__((cleanup(do_api_clear))) struct do_api api = { 0 };
    if (do_api_open(&api, ctx, m, err) < 0 || do_api_check_token(&api, err) < 0)
        return -1;
    auto_free char *tag = owner_tag(m->name);
    machine_driver_set_str(m, DO_KEY_OWNER_TAG, tag);
    machine_driver_set_str(m, DO_KEY_DROPLET_NAME, m->name);
    return 0;
}

struct active_wait {
    struct do_api *api;
    long long id;
    char *ip;
};

static int poll_active(void *opaque, struct merr *err)
{
    struct active_wait *w = opaque;
    struct do_droplet d = { 0 };
    if (do_api_get_droplet(w->api, w->id, &d, err) < 0)
        return do_poll_failed(w->api, err);
    int done = d.status != NULL && strcmp(d.status, "active") == 0 && d.public_ipv4 != NULL;
    if (done)
        w->ip = steal_pointer(&d.public_ipv4);
    do_droplet_clear(&d);
    return done;
}

/* Uploads the machine's key unless the user named one of the account's keys. */
static int ssh_key_ref(const struct driver_ctx *ctx, struct do_api *api, struct machine *m,
                       char **ref, struct merr *err)
{
    const char *fp = machine_driver_str(m, DO_KEY_FINGERPRINT);
    if (set(fp)) {
        *ref = xstrdup(fp);
        return 0;
    }
    if (ctx->ssh_public_key == NULL)
        return merr_set(err, MERR_INVALID, 0,
                        "no public key to upload: give the key's .pub beside it, or "
                        "--digitalocean-ssh-key-fingerprint");
    long long id = 0;
    if (do_api_create_key(api, machine_driver_str(m, DO_KEY_OWNER_TAG), ctx->ssh_public_key,
                          &id, err) < 0)
        return -1;
    machine_driver_set_int(m, DO_KEY_SSH_KEY_ID, id);
    *ref = xasprintf("%lld", id);
    return 0;
}

static int do_create(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    __attribute__((cleanup(do_api_clear))) struct do_api api = { 0 };
    if (do_api_open(&api, ctx, m, err) < 0)
        return -1;
    auto_free char *userdata = NULL;
    auto_free char *key = NULL;
    if (read_userdata(m, &userdata, err) < 0 || ssh_key_ref(ctx, &api, m, &key, err) < 0)
        return -1;
    struct do_droplet_spec spec;
    spec_of(m, &spec);
    spec.ssh_key = key;
    spec.user_data = userdata;
    long long id = 0;
    if (do_api_create_droplet(&api, &spec, &id, err) < 0)
        return -1;
    machine_driver_set_int(m, DO_KEY_DROPLET_ID, id);
    mlog_debug(ctx->log, "digitalocean: droplet %lld created, waiting for it to be active", id);
    struct active_wait w = { .api = &api, .id = id };
    auto_free char *what = xasprintf("droplet %lld active with a public IPv4", id);
    if (driver_wait_until(ctx, DO_ACTIVE_WAIT_MS, what, poll_active, &w, err) < 0)
        return -1;
    machine_driver_set_str(m, DKEY_IP, w.ip);
    free(w.ip);
    m->engine.port = MACHINE_DEFAULT_ENGINE_PORT;
    return 0;
}

/* Deletes one thing; "already gone" is success, said once. */
static int delete_one(const struct driver_ctx *ctx, int rc, const char *what, long long id,
                      struct merr *err)
{
    if (rc < 0 && err->code == MERR_NOT_FOUND) {
        mlog_warn(ctx->log, "digitalocean: %s %lld is already gone", what, id);
        merr_clear(err);
        return 0;
    }
    return rc;
}

static int remove_droplets(const struct driver_ctx *ctx, struct do_api *api,
                           const struct machine *m, struct merr *err)
{
    long long id = machine_driver_int(m, DO_KEY_DROPLET_ID, 0);
    if (id > 0)
        return delete_one(ctx, do_api_delete_droplet(api, id, err), "droplet", id, err);
    /* create ended (or was killed) before the droplet's id was kept: its owner tag finds it */
    const char *tag = machine_driver_str(m, DO_KEY_OWNER_TAG);
    if (!set(tag))
        return 0;
    long long ids[DO_MAX_TAGGED];
    size_t n = 0;
    if (do_api_tagged_droplets(api, tag, ids, DO_MAX_TAGGED, &n, err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (delete_one(ctx, do_api_delete_droplet(api, ids[i], err), "droplet", ids[i], err) < 0)
            return -1;
    return 0;
}

static int remove_key(const struct driver_ctx *ctx, struct do_api *api, const struct machine *m,
                      struct merr *err)
{
    long long id = machine_driver_int(m, DO_KEY_SSH_KEY_ID, 0);
    const char *tag = machine_driver_str(m, DO_KEY_OWNER_TAG);
    if (id <= 0 && !set(machine_driver_str(m, DO_KEY_FINGERPRINT)) && set(tag) &&
        do_api_find_key(api, tag, &id, err) < 0)
        return -1;
    if (id <= 0)
        return 0; /* never uploaded, or the user's own */
    return delete_one(ctx, do_api_delete_key(api, id, err), "SSH key", id, err);
}

static int do_remove(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    if (!set(machine_driver_str(m, DO_KEY_OWNER_TAG)) &&
        machine_driver_int(m, DO_KEY_DROPLET_ID, 0) <= 0)
        return 0; /* the pre-create check never passed: nothing was made */
    __attribute__((cleanup(do_api_clear))) struct do_api api = { 0 };
    if (do_api_open(&api, ctx, m, err) < 0)
        return -1;
    if (remove_droplets(ctx, &api, m, err) < 0)
        return merr_prefix(err, "cannot delete the droplet of '%s'", m->name);
    if (remove_key(ctx, &api, m, err) < 0)
        return merr_prefix(err, "cannot delete the SSH key of '%s'", m->name);
    return 0;
}

static int power(const struct driver_ctx *ctx, const struct machine *m, const char *type,
                 int limit_ms, struct merr *err)
{
    long long id = machine_driver_int(m, DO_KEY_DROPLET_ID, 0);
    if (id <= 0)
        return merr_set(err, MERR_NOT_FOUND, 0, "machine '%s' has no droplet", m->name);
    __attribute__((cleanup(do_api_clear))) struct do_api api = { 0 };
    if (do_api_open(&api, ctx, m, err) < 0)
        return -1;
    return do_api_action(&api, id, type, limit_ms, err);
}

static int do_start(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    return power(ctx, m, "power_on", 0, err);
}

/* A clean shutdown within stop's grace; a droplet that refuses one or takes longer is
 * powered off. */
static int do_stop(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    if (power(ctx, m, "shutdown", ctx->stop_grace_ms, err) == 0)
        return 0;
    if (err->code == MERR_NOT_FOUND || err->code == MERR_AUTH || err->code == MERR_PERM)
        return -1;
    mlog_warn(ctx->log, "%s; powering the droplet off", err->msg);
    merr_clear(err);
    return power(ctx, m, "power_off", 0, err);
}

static int do_restart(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    return power(ctx, m, "reboot", 0, err);
}

static int do_kill(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    return power(ctx, m, "power_off", 0, err);
}

static int do_get_state(const struct driver_ctx *ctx, const struct machine *m,
                        enum machine_state *state, struct merr *err)
{
    long long id = machine_driver_int(m, DO_KEY_DROPLET_ID, 0);
    if (id <= 0) {
        *state = MSTATE_NONE;
        return 0;
    }
    __attribute__((cleanup(do_api_clear))) struct do_api api = { 0 };
    if (do_api_open(&api, ctx, m, err) < 0)
        return -1;
    struct do_droplet d = { 0 };
    if (do_api_get_droplet(&api, id, &d, err) < 0)
        return -1;
    *state = (enum machine_state)do_status_state(d.status);
    do_droplet_clear(&d);
    return 0;
}

const struct driver driver_digitalocean = {
    .name = "digitalocean",
    .description = "a DigitalOcean droplet (API v2)",
    .flags = do_flags,
    .uses_ssh = true,
    .precreate_check = do_precreate_check,
    .create = do_create,
    .remove = do_remove,
    .start = do_start,
    .stop = do_stop,
    .restart = do_restart,
    .kill = do_kill,
    .get_state = do_get_state,
};
