/* What happens to an existing machine: start, stop, restart, kill, provision, upgrade,
 * certificate renewal and rm. Each runs under the machine's lock, reads the machine fresh
 * under it and saves what changed; the CLI (and `machine up`) only call these and print. */
#include <stdlib.h>
#include <string.h>

#include "certs.h"
#include "context.h"
#include "driver.h"
#include "error.h"
#include "fsutil.h"
#include "lifecycle-priv.h"
#include "lifecycle.h"
#include "log.h"
#include "store.h"

#define DEFAULT_LOCK_TIMEOUT_MS 30000
#define DEFAULT_ENGINE_WAIT_MS 60000

/* A machine loaded under its lock; release with locked_release. */
struct locked {
    int lock;
    struct machine *m;
    const struct driver *d;
};

static void locked_release(struct locked *l)
{
    machine_free(l->m);
    fs_unlock(l->lock);
    memset(l, 0, sizeof *l);
    l->lock = -1;
}

static int lock_and_load(const struct machine_ctx *ctx, const char *name, struct locked *out,
                         struct merr *err)
{
    memset(out, 0, sizeof *out);
    out->lock = -1;
    if (machine_validate_name(name, err) < 0)
        return -1;
    auto_free char *dir = store_machine_dir(&ctx->store, name);
    if (!fs_exists(dir)) /* no lock file for a name that is no machine */
        return merr_set(err, MERR_NOT_FOUND, 0, "Docker machine \"%s\" does not exist", name);
    int timeout = ctx->lock_timeout_ms > 0 ? ctx->lock_timeout_ms : DEFAULT_LOCK_TIMEOUT_MS;
    out->lock = store_lock_machine(&ctx->store, name, timeout, err);
    if (out->lock < 0)
        return -1;
    /* read under the lock: what another command saved before us counts */
    out->m = store_load_machine(&ctx->store, name, err);
    out->d = out->m != NULL ? lifecycle_driver(ctx, out->m, err) : NULL;
    if (out->d == NULL) {
        locked_release(out);
        return -1;
    }
    return 0;
}

static int engine_wait_ms(const struct machine_ctx *ctx)
{
    return ctx->engine_wait_ms > 0 ? ctx->engine_wait_ms : DEFAULT_ENGINE_WAIT_MS;
}

/* The certificate check and renewal; the caller holds the machine's lock. 1: renewed. */
static int renew_locked(const struct machine_ctx *ctx, const struct driver *d, struct machine *m,
                        bool *needed, struct merr *err)
{
    *needed = false;
    if (!d->uses_ssh || m->status == NULL || strcmp(m->status, MACHINE_STATUS_CREATED) != 0)
        return 0;
    auto_free char *server = store_machine_file(&ctx->store, m->name, "server.pem");
    if (!fs_exists(server))
        return 0; /* no engine installed by us */
    struct driver_ctx dctx;
    lifecycle_driver_ctx(ctx, &dctx);
    auto_free char *ip = driver_get_ip(d, &dctx, m, err);
    if (ip == NULL)
        return -1;
    bool has = false;
    if (certs_has_san(server, ip, &has, err) < 0)
        return -1;
    if (has)
        return 0;
    *needed = true;
    const struct machine_provisioner *p = ctx->provisioner;
    if (p == NULL || p->install_certs == NULL || p->wait_engine == NULL)
        return merr_set(err, MERR_UNSUPPORTED, 0,
                        "machine '%s' is now at %s, which its engine certificate does not name",
                        m->name, ip);
    lifecycle_progress(ctx,
                       "Machine '%s' is now at %s, which its engine certificate does not name: "
                       "issuing a new certificate and restarting the engine...",
                       m->name, ip);
    if (p->install_certs(ctx, m, err) < 0)
        return merr_prefix(err, "cannot renew the certificate of '%s'", m->name);
    auto_free char *v = p->wait_engine(ctx, m, engine_wait_ms(ctx), err);
    if (v == NULL)
        return -1;
    lifecycle_progress(ctx, "Certificate of '%s' renewed for %s; the engine is back.", m->name, ip);
    return 1;
}

int lifecycle_renew_certs(const struct machine_ctx *ctx, struct machine *m, struct merr *err)
{
    const struct driver *d = lifecycle_driver(ctx, m, err);
    if (d == NULL)
        return -1;
    /* the common case (nothing to do) takes no lock */
    struct merr quiet = MERR_INIT;
    struct machine_ctx check = *ctx;
    check.provisioner = NULL;
    bool needed = false;
    if (renew_locked(&check, d, m, &needed, &quiet) < 0 && !needed)
        return merr_set(err, quiet.code, quiet.sys_errno, "%s", quiet.msg);
    if (!needed)
        return 0;
    struct locked l;
    if (lock_and_load(ctx, m->name, &l, err) < 0)
        return merr_prefix(err, "cannot renew the certificate of '%s'", m->name);
    int rc = renew_locked(ctx, l.d, l.m, &needed, err);
    locked_release(&l);
    return rc;
}

typedef int (*driver_verb_fn)(const struct driver *d, const struct driver_ctx *ctx,
                              struct machine *m, struct merr *err);

/* The driver's verb and a save, under the lock; a machine that comes up again (boots) is
 * waited for and its certificate renewed when its address changed. */
static int power(const struct machine_ctx *ctx, const char *name, driver_verb_fn verb, bool boots,
                 struct merr *err)
{
    struct locked l;
    if (lock_and_load(ctx, name, &l, err) < 0)
        return -1;
    struct driver_ctx dctx;
    lifecycle_driver_ctx(ctx, &dctx);
    bool needed = false;
    int rc = verb(l.d, &dctx, l.m, err);
    if (rc == 0)
        rc = store_save_machine(&ctx->store, l.m, err);
    /* A driver without start (generic's restart is a reboot over SSH) has nothing to wait for. */
    if (rc == 0 && boots && l.d->uses_ssh && l.d->start != NULL &&
        (lifecycle_wait_ssh(ctx, l.m, err) < 0 || renew_locked(ctx, l.d, l.m, &needed, err) < 0))
        rc = -1;
    locked_release(&l);
    return rc < 0 ? -1 : 0;
}

int lifecycle_start(const struct machine_ctx *ctx, const char *name, struct merr *err)
{
    return power(ctx, name, driver_start, true, err);
}

int lifecycle_stop(const struct machine_ctx *ctx, const char *name, struct merr *err)
{
    return power(ctx, name, driver_stop, false, err);
}

int lifecycle_restart(const struct machine_ctx *ctx, const char *name, struct merr *err)
{
    return power(ctx, name, driver_restart, true, err);
}

int lifecycle_kill(const struct machine_ctx *ctx, const char *name, struct merr *err)
{
    return power(ctx, name, driver_kill, false, err);
}

static int provision_locked(const struct machine_ctx *ctx, const struct locked *l, bool upgrade,
                            struct merr *err)
{
    if (upgrade && l->d->upgrade != NULL) {
        /* A VM boots the current machine-os image first; its data disk stays. */
        struct driver_ctx dctx;
        lifecycle_driver_ctx(ctx, &dctx);
        lifecycle_progress(ctx, "Booting the current machine-os image");
        if (driver_upgrade(l->d, &dctx, l->m, err) < 0 ||
            store_save_machine(&ctx->store, l->m, err) < 0 || lifecycle_wait_ssh(ctx, l->m, err) < 0)
            return -1;
    }
    const struct machine_provisioner *p = ctx->provisioner;
    if (p != NULL && p->provision != NULL && p->provision(ctx, l->m, err) < 0)
        return -1;
    return 0;
}

/* provision / upgrade: the same idempotent steps; a failure is recorded on the machine. */
static int reprovision(const struct machine_ctx *ctx, const char *name, bool upgrade,
                       struct merr *err)
{
    struct locked l;
    if (lock_and_load(ctx, name, &l, err) < 0)
        return -1;
    int rc = 0;
    if (!l.d->uses_ssh)
        rc = merr_set(err, MERR_UNSUPPORTED, 0,
                      "machine '%s' (driver '%s') has no engine machine installs", name, l.d->name);
    else if (provision_locked(ctx, &l, upgrade, err) < 0)
        rc = lifecycle_mark_failed(ctx, l.m, err);
    if (rc == 0) {
        machine_set_status(l.m, MACHINE_STATUS_CREATED, NULL);
        rc = store_save_machine(&ctx->store, l.m, err);
    }
    locked_release(&l);
    return rc < 0 ? -1 : 0;
}

int lifecycle_provision(const struct machine_ctx *ctx, const char *name, struct merr *err)
{
    return reprovision(ctx, name, false, err);
}

int lifecycle_upgrade(const struct machine_ctx *ctx, const char *name, struct merr *err)
{
    return reprovision(ctx, name, true, err);
}

int lifecycle_regenerate_certs(const struct machine_ctx *ctx, const char *name, struct merr *err)
{
    struct locked l;
    if (lock_and_load(ctx, name, &l, err) < 0)
        return -1;
    const struct machine_provisioner *p = ctx->provisioner;
    int rc = 0;
    if (!l.d->uses_ssh)
        rc = merr_set(err, MERR_UNSUPPORTED, 0,
                      "machine '%s' (driver '%s') has no engine machine installs", name, l.d->name);
    else if (p == NULL || p->install_certs == NULL || p->wait_engine == NULL)
        rc = merr_set(err, MERR_UNSUPPORTED, 0, "no provisioner to install certificates with");
    else if (lifecycle_copy_client_certs(ctx, l.m, err) < 0 || p->install_certs(ctx, l.m, err) < 0)
        rc = -1;
    if (rc == 0) {
        auto_free char *v = p->wait_engine(ctx, l.m, engine_wait_ms(ctx), err);
        rc = v == NULL ? -1 : 0;
    }
    locked_release(&l);
    return rc;
}

int lifecycle_rm(const struct machine_ctx *ctx, const char *name, bool force, struct merr *err)
{
    if (machine_validate_name(name, err) < 0)
        return -1;
    auto_free char *dir = store_machine_dir(&ctx->store, name);
    if (!fs_exists(dir))
        return merr_set(err, MERR_NOT_FOUND, 0, "Docker machine \"%s\" does not exist", name);
    int timeout = ctx->lock_timeout_ms > 0 ? ctx->lock_timeout_ms : DEFAULT_LOCK_TIMEOUT_MS;
    auto_close int lock = store_lock_machine(&ctx->store, name, timeout, err);
    if (lock < 0)
        return -1;
    auto_machine struct machine *m = store_load_machine(&ctx->store, name, err);
    if (m != NULL) /* an unknown driver is lifecycle_remove's to judge (-f forgets it) */
        return lifecycle_remove(ctx, m, force, err);
    if (err->code != MERR_CORRUPT || !force)
        return -1;
    merr_clear(err); /* unreadable: forget it */
    return store_remove_machine(&ctx->store, name, err);
}
