#include "lifecycle.h"
#include "lifecycle-priv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "certs.h"
#include "context.h"
#include "driver.h"
#include "clock.h"
#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "plugin.h"
#include "sshkey.h"
#include "store.h"

#define CERT_ORG "machine"
#define OS_RELEASE_MAX (64u << 10)
#define SSH_PUBKEY_MAX (64u << 10)

void lifecycle_progress(const struct machine_ctx *ctx, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    mlog_debug(&ctx->log, "%s", line);
    if (ctx->progress != NULL)
        ctx->progress(ctx->progress_opaque, line);
}

/* The SSH seam (context.h): the context's ops, else core's client. */
char *lifecycle_ssh_output(const struct machine_ctx *ctx, const struct machine *m, const char *cmd,
                           struct merr *err)
{
    if (ctx->ssh != NULL && ctx->ssh->output != NULL)
        return ctx->ssh->output(ctx, m, cmd, err);
    return machine_ssh_output(ctx, m, cmd, err);
}

static int wait_ssh_ready(const struct machine_ctx *ctx, const struct machine *m, int timeout_ms,
                          struct merr *err)
{
    if (ctx->ssh != NULL && ctx->ssh->wait_ready != NULL)
        return ctx->ssh->wait_ready(ctx, m, timeout_ms, err);
    struct machine_ssh ms;
    if (machine_ssh_init(ctx, m, &ms, err) < 0)
        return -1;
    /* a booting VM answers within a quarter second of its sshd starting */
    int rc = ssh_wait_ready(&ms.target, timeout_ms, 250, err);
    machine_ssh_release(&ms);
    return rc;
}

static int driver_ssh_run(const struct driver_ctx *dctx, const struct machine *m, const char *cmd,
                          struct merr *err)
{
    char *out = lifecycle_ssh_output(dctx->owner, m, cmd, err);
    if (out == NULL)
        return -1;
    free(out);
    return 0;
}

void lifecycle_driver_ctx(const struct machine_ctx *ctx, struct driver_ctx *out)
{
    memset(out, 0, sizeof *out);
    out->log = &ctx->log;
    out->store = &ctx->store;
    out->timeout_ms = ctx->state_timeout_ms;
    out->deadline_ms = ctx->op_timeout_ms > 0 ? clock_now_ms() + ctx->op_timeout_ms : 0;
    out->stop_grace_ms = ctx->stop_grace_ms;
    out->ssh_run = driver_ssh_run;
    out->owner = ctx;
    out->command = ctx->command;
    out->curl = ctx->curl;
}

const struct driver *lifecycle_driver_named(const struct machine_ctx *ctx, const char *name,
                                            struct merr *err)
{
    const struct driver *d = driver_find(ctx->drivers, name);
    if (d == NULL && ctx->plugins != NULL) /* not built in: a machine-driver-NAME plugin */
        return plugin_set_load(ctx->plugins, &ctx->store, &ctx->log, ctx->drivers, name,
                               ctx->state_timeout_ms, err);
    if (d == NULL)
        merr_set(err, MERR_NOT_FOUND, 0, "unknown driver '%s'", name);
    return d;
}

const struct driver *lifecycle_driver(const struct machine_ctx *ctx, const struct machine *m,
                                      struct merr *err)
{
    const struct driver *d = lifecycle_driver_named(ctx, m->driver_name, err);
    if (d == NULL)
        merr_prefix(err, "machine '%s'", m->name);
    return d;
}

int machine_ssh_init(const struct machine_ctx *ctx, const struct machine *m, struct machine_ssh *out,
                     struct merr *err)
{
    memset(out, 0, sizeof *out);
    const struct driver *d = lifecycle_driver(ctx, m, err);
    if (d == NULL)
        return -1;
    if (!d->uses_ssh)
        return merr_set(err, MERR_UNSUPPORTED, 0, "driver '%s' does not support SSH", d->name);
    struct driver_ctx dctx;
    lifecycle_driver_ctx(ctx, &dctx);
    out->host = driver_get_ip(d, &dctx, m, err);
    if (out->host == NULL)
        return -1;
    const char *user = machine_driver_str(m, DKEY_SSH_USER);
    const char *key = machine_driver_str(m, DKEY_SSH_KEY);
    out->user = xstrdup(user != NULL && user[0] != '\0' ? user : "root");
    if (key == NULL || key[0] == '\0') {
        machine_ssh_release(out);
        return merr_set(err, MERR_NOT_FOUND, 0, "machine '%s' has no SSH key", m->name);
    }
    out->key_path = xstrdup(key);
    out->known_hosts = store_machine_file(&ctx->store, m->name, "known_hosts");
    out->target.host = out->host;
    out->target.port = (int)machine_driver_int(m, DKEY_SSH_PORT, 22);
    out->target.user = out->user;
    out->target.key_path = out->key_path;
    out->target.known_hosts_path = out->known_hosts;
    out->target.timeout_ms = ctx->ssh_timeout_ms;
    return 0;
}

void machine_ssh_release(struct machine_ssh *s)
{
    free(s->host);
    free(s->user);
    free(s->key_path);
    free(s->known_hosts);
    memset(s, 0, sizeof *s);
}

int machine_ssh_connect(const struct machine_ctx *ctx, const struct machine *m,
                        struct ssh_conn **out, struct merr *err)
{
    struct machine_ssh ms;
    if (machine_ssh_init(ctx, m, &ms, err) < 0)
        return -1;
    int rc = ssh_connect(&ms.target, out, err);
    machine_ssh_release(&ms);
    return rc;
}

char *machine_ssh_output(const struct machine_ctx *ctx, const struct machine *m, const char *cmd,
                         struct merr *err)
{
    struct ssh_conn *c = NULL;
    if (machine_ssh_connect(ctx, m, &c, err) < 0)
        return NULL;
    char *out = NULL, *errout = NULL;
    size_t out_len = 0, errout_len = 0;
    int status = -1;
    int rc = ssh_exec(c, cmd, NULL, 0, &out, &out_len, &errout, &errout_len, &status, err);
    ssh_conn_free(c);
    if (rc == 0 && status != 0) {
        /* Keep the message to the remote's first stderr line. */
        char *nl = errout != NULL ? strchr(errout, '\n') : NULL;
        if (nl != NULL)
            *nl = '\0';
        merr_set(err, MERR_REMOTE, 0, "'%s' on '%s' exited with status %d%s%s", cmd, m->name, status,
                 errout != NULL && errout[0] != '\0' ? ": " : "", errout != NULL ? errout : "");
        rc = -1;
    }
    free(errout);
    if (rc < 0) {
        free(out);
        return NULL;
    }
    return out;
}

static void now_rfc3339(char *buf, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Client certs travel with each machine so DOCKER_CERT_PATH can point at the machine dir. */
int lifecycle_copy_client_certs(const struct machine_ctx *ctx, const struct machine *m,
                                struct merr *err)
{
    static const struct {
        const char *src, *dst;
        mode_t mode;
    } files[] = {
        { "ca.pem", "ca.pem", 0644 },
        { "cert.pem", "cert.pem", 0644 },
        { "key.pem", "key.pem", 0600 },
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        auto_free char *src = path_join(ctx->store.certs_dir, files[i].src);
        auto_free char *dst = store_machine_file(&ctx->store, m->name, files[i].dst);
        if (fs_copy_file(src, dst, files[i].mode, err) < 0)
            return -1;
    }
    return 0;
}

static int detect_os(const struct machine_ctx *ctx, struct machine *m, struct merr *err)
{
    auto_free char *text = lifecycle_ssh_output(ctx, m, "cat /etc/os-release", err);
    if (text == NULL)
        return merr_prefix(err, "cannot detect the operating system");
    if (strlen(text) > OS_RELEASE_MAX)
        return merr_set(err, MERR_PROTOCOL, 0, "/etc/os-release on '%s' is too large", m->name);
    os_release_clear(&m->os);
    if (os_release_parse(text, &m->os, err) < 0)
        return merr_prefix(err, "cannot detect the operating system");
    return 0;
}

int lifecycle_wait_ssh(const struct machine_ctx *ctx, const struct machine *m, struct merr *err)
{
    int rc = wait_ssh_ready(ctx, m, ctx->ssh_wait_ms, err);
    if (rc < 0)
        merr_prefix(err, "waiting for SSH on '%s'", m->name);
    return rc;
}

/* Records a failure in the store without losing the original error: the one place a failed
 * lifecycle step is written down (ls shows it, rm cleans it). */
int lifecycle_mark_failed(const struct machine_ctx *ctx, struct machine *m, struct merr *err)
{
    machine_set_status(m, MACHINE_STATUS_ERROR, err->msg);
    struct merr save_err = MERR_INIT;
    if (store_save_machine(&ctx->store, m, &save_err) < 0)
        mlog_warn(&ctx->log, "cannot record the failure of '%s': %s", m->name, save_err.msg);
    return -1;
}

/* A create that failed once the driver had started: the driver removes what it made (drivers
 * write no undo paths of their own), then the failure is recorded. */
static int create_failed(const struct machine_ctx *ctx, const struct driver *d, struct machine *m,
                         struct merr *err)
{
    struct driver_ctx dctx; /* a deadline of its own: the create may have used all of its */
    lifecycle_driver_ctx(ctx, &dctx);
    struct merr rm_err = MERR_INIT;
    if (d->remove != NULL && d->remove(&dctx, m, &rm_err) < 0)
        mlog_warn(&ctx->log, "cannot remove what the failed create of '%s' made: %s", m->name,
                  rm_err.msg);
    return lifecycle_mark_failed(ctx, m, err);
}

/* The machine's SSH key pair, in its directory: a copy of the user's key (SSHKeySource, as
 * generic's --generic-ssh-key) or a new ed25519 pair. *pub gets the public key line, or NULL
 * when a user's key comes without its .pub. */
static int prepare_ssh_key(const struct machine_ctx *ctx, struct machine *m, char **pub,
                           struct merr *err)
{
    *pub = NULL;
    auto_free char *key = store_machine_file(&ctx->store, m->name, "id_ssh");
    auto_free char *key_pub = xasprintf("%s.pub", key);
    const char *src = machine_driver_str(m, DKEY_SSH_KEY_SOURCE);
    if (src != NULL && src[0] != '\0') {
        /* a copy, so the machine keeps working when the user's file moves */
        auto_free char *src_pub = xasprintf("%s.pub", src);
        if (fs_copy_file(src, key, 0600, err) < 0 ||
            (fs_exists(src_pub) && fs_copy_file(src_pub, key_pub, 0644, err) < 0))
            return merr_prefix(err, "cannot copy the SSH key of '%s'", m->name);
    } else if (sshkey_generate_ed25519(key, key_pub, m->name, err) < 0) {
        return merr_prefix(err, "cannot make the SSH key of '%s'", m->name);
    }
    machine_driver_set_str(m, DKEY_SSH_KEY, key);
    if (fs_exists(key_pub)) {
        size_t len = 0;
        if (fs_read_file(key_pub, SSH_PUBKEY_MAX, pub, &len, err) < 0)
            return -1;
    }
    return 0;
}

/* The steps after the driver made the machine: SSH, OS, engine. */
static int create_reach(const struct machine_ctx *ctx, struct machine *m, struct merr *err)
{
    lifecycle_progress(ctx, "Waiting for SSH");
    if (lifecycle_wait_ssh(ctx, m, err) < 0)
        return -1;
    lifecycle_progress(ctx, "Detecting the operating system");
    if (detect_os(ctx, m, err) < 0)
        return -1;
    lifecycle_progress(ctx, "Detected %s", m->os.pretty_name != NULL ? m->os.pretty_name : m->os.id);
    if (ctx->provisioner != NULL && ctx->provisioner->provision != NULL &&
        ctx->provisioner->provision(ctx, m, err) < 0)
        return -1;
    return 0;
}

int lifecycle_create(const struct machine_ctx *ctx, const struct driver *d, struct machine *m,
                     struct merr *err)
{
    if (machine_validate_name(m->name, err) < 0 || driver_check_flags(d, m, err) < 0)
        return -1;
    auto_free char *dir = store_machine_dir(&ctx->store, m->name);
    if (fs_exists(dir))
        return merr_set(err, MERR_EXISTS, 0, "machine '%s' already exists", m->name);

    lifecycle_progress(ctx, "Checking certificates");
    if (certs_bootstrap(ctx->store.certs_dir, CERT_ORG, err) < 0)
        return -1;

    struct driver_ctx dctx;
    lifecycle_driver_ctx(ctx, &dctx);
    lifecycle_progress(ctx, "Running pre-create checks");
    if (driver_precreate_check(d, &dctx, m, err) < 0) {
        if (err->code != MERR_PRECREATE) {
            merr_prefix(err, "pre-create check failed");
            err->code = MERR_PRECREATE;
        }
        return -1;
    }

    char created[32];
    now_rfc3339(created, sizeof created);
    free(m->created_at);
    m->created_at = xstrdup(created);
    machine_set_status(m, MACHINE_STATUS_CREATING, NULL);
    if (store_create_machine(&ctx->store, m, err) < 0)
        return -1;

    /* From here on the machine exists: every failure is recorded. */
    auto_free char *pub = NULL;
    if (lifecycle_copy_client_certs(ctx, m, err) < 0 ||
        (d->uses_ssh && prepare_ssh_key(ctx, m, &pub, err) < 0))
        return lifecycle_mark_failed(ctx, m, err);
    dctx.ssh_public_key = pub;
    lifecycle_progress(ctx, "Creating machine '%s' with driver '%s'", m->name, d->name);
    /* From here on the driver may have made something: a failure removes it. */
    if (driver_create(d, &dctx, m, err) < 0 || store_save_machine(&ctx->store, m, err) < 0 ||
        (d->uses_ssh && create_reach(ctx, m, err) < 0))
        return create_failed(ctx, d, m, err);

    machine_set_status(m, MACHINE_STATUS_CREATED, NULL);
    if (store_save_machine(&ctx->store, m, err) < 0)
        return create_failed(ctx, d, m, err);
    return 0;
}

int lifecycle_remove(const struct machine_ctx *ctx, struct machine *m, bool force, struct merr *err)
{
    struct driver_ctx dctx;
    lifecycle_driver_ctx(ctx, &dctx);
    const struct driver *d = lifecycle_driver(ctx, m, err);
    int rc = 0;
    if (d != NULL && d->remove != NULL)
        rc = driver_remove(d, &dctx, m, err);
    else if (d == NULL)
        rc = -1;
    if (rc < 0 && !force)
        return merr_prefix(err, "cannot remove '%s' (use -f to remove the local config anyway)",
                           m->name);
    if (rc < 0) {
        mlog_warn(&ctx->log, "%s; removing the local config of '%s' anyway", err->msg, m->name);
        merr_clear(err);
    }
    return store_remove_machine(&ctx->store, m->name, err);
}
