/* Engine-related commands: provision, regenerate-certs, upgrade; and the helpers env, ls and
 * version use to reach a machine's engine. */
#include <stdlib.h>
#include <string.h>

#include "certs.h"
#include "cli.h"
#include "driver.h"
#include "engine.h"
#include "engine_client.h"
#include "error.h"
#include "fsutil.h"
#include "lifecycle.h"
#include "machine.h"
#include "provision.h"
#include "store.h"

#define LOCK_TIMEOUT_MS 30000
#define ENGINE_RESTART_WAIT_MS 60000

int cli_provision_hook(const struct machine_ctx *ctx, struct machine *m, struct merr *err)
{
    auto_free char *bundle = provision_find_bundle(err);
    if (bundle == NULL)
        return -1;
    return provision_machine(ctx, m, bundle, err);
}

char *cli_engine_version(const struct machine_ctx *ctx, const struct machine *m, int timeout_ms,
                         struct merr *err)
{
    return provision_engine_version(ctx, m, timeout_ms, err);
}

int cli_renew_certs_if_needed(const struct machine_ctx *ctx, struct machine *m, FILE *out,
                              struct merr *err)
{
    const struct driver *d = lifecycle_driver(ctx, m, err);
    if (d == NULL)
        return -1;
    if (!d->uses_ssh || strcmp(m->status, MACHINE_STATUS_CREATED) != 0)
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
    fprintf(out, "Machine '%s' is now at %s, which its engine certificate does not name: "
                 "issuing a new certificate and restarting the engine...\n",
            m->name, ip);
    fflush(out);
    auto_close int lock = store_lock_machine(&ctx->store, m->name, LOCK_TIMEOUT_MS, err);
    if (lock < 0 || provision_install_certs(ctx, m, err) < 0)
        return merr_prefix(err, "cannot renew the certificate of '%s'", m->name);
    auto_free char *v = provision_wait_engine(ctx, m, ENGINE_RESTART_WAIT_MS, err);
    if (v == NULL)
        return -1;
    fprintf(out, "Certificate of '%s' renewed for %s; the engine is back.\n", m->name, ip);
    return 1;
}

static struct machine *load_ssh_machine(struct cli *cli, const char *name, struct merr *err)
{
    struct machine *m = cli_load_machine(cli, name, err);
    if (m == NULL)
        return NULL;
    const struct driver *d = lifecycle_driver(&cli->ctx, m, err);
    if (d == NULL || !d->uses_ssh) {
        if (d != NULL)
            merr_set(err, MERR_UNSUPPORTED, 0, "machine '%s' (driver '%s') has no engine machine installs",
                     m->name, d->name);
        machine_free(m);
        return NULL;
    }
    return m;
}

struct progress_state {
    FILE *out;
};

static void print_step(void *opaque, const char *step)
{
    struct progress_state *p = opaque;
    fprintf(p->out, "%s\n", step);
    fflush(p->out);
}

/* provision / upgrade: the same idempotent steps; upgrade says what version it installed. */
static int run_provision(struct cli *cli, struct parsed_args *a, bool upgrade, struct merr *err)
{
    size_t n = args_npositional(a);
    for (size_t i = 0; i < (n == 0 ? 1 : n); i++) {
        const char *name = cli_machine_arg(a, i);
        auto_machine struct machine *m = load_ssh_machine(cli, name, err);
        if (m == NULL)
            return -1;
        auto_close int lock = store_lock_machine(&cli->ctx.store, name, LOCK_TIMEOUT_MS, err);
        if (lock < 0)
            return -1;
        struct progress_state ps = { cli->out };
        cli->ctx.progress = print_step;
        cli->ctx.progress_opaque = &ps;
        int rc = 0;
        const struct driver *d = lifecycle_driver(&cli->ctx, m, err);
        if (upgrade && d != NULL && d->upgrade != NULL) {
            /* A VM boots the current machine-os image first; its data disk stays. */
            struct driver_ctx dctx;
            lifecycle_driver_ctx(&cli->ctx, &dctx);
            print_step(&ps, "Booting the current machine-os image");
            rc = driver_upgrade(d, &dctx, m, err) < 0 || store_save_machine(&cli->ctx.store, m, err) < 0 ||
                         lifecycle_wait_ssh(&cli->ctx, m, err) < 0
                     ? -1
                     : 0;
        }
        if (rc == 0)
            rc = cli_provision_hook(&cli->ctx, m, err);
        cli->ctx.progress = NULL;
        if (rc < 0) {
            machine_set_status(m, MACHINE_STATUS_ERROR, err->msg);
            struct merr ignored;
            if (store_save_machine(&cli->ctx.store, m, &ignored) < 0)
                fprintf(cli->err, "warning: %s\n", ignored.msg);
            return -1;
        }
        machine_set_status(m, MACHINE_STATUS_CREATED, NULL);
        if (store_save_machine(&cli->ctx.store, m, err) < 0)
            return -1;
        auto_free char *v = cli_engine_version(&cli->ctx, m, 10000, err);
        fprintf(cli->out, "%s '%s': engine %s is up and running\n", upgrade ? "Upgraded" : "Provisioned",
                name, v != NULL ? v : "?");
    }
    return 0;
}

static int provision_run(struct cli *cli, struct parsed_args *a, struct merr *err)
{
    return run_provision(cli, a, false, err);
}

static int upgrade_run(struct cli *cli, struct parsed_args *a, struct merr *err)
{
    return run_provision(cli, a, true, err);
}

const struct cli_command cmd_provision = {
    .name = "provision",
    .usage = "[NAME...]",
    .summary = "Re-run provisioning (install and configure the engine) on machines",
    .flags = CMD_NEEDS_STORE,
    .run = provision_run,
};

const struct cli_command cmd_upgrade = {
    .name = "upgrade",
    .usage = "[NAME...]",
    .summary = "Replace the engine on machines with this version, keeping images and containers",
    .flags = CMD_NEEDS_STORE,
    .run = upgrade_run,
};

static const struct opt_spec regen_opts[] = {
    { "force", 'f', OPT_BOOL, "do not ask for confirmation", NULL, NULL },
    { "client-certs", 0, OPT_BOOL, "also replace the CA and client certificate (every machine "
                                   "then needs regenerate-certs)", NULL, NULL },
};

static int regen_run(struct cli *cli, struct parsed_args *a, struct merr *err)
{
    if (!args_get_bool(a, "force")) {
        fprintf(cli->out, "Regenerate TLS machine certs?  Warning: this is irreversible. (y/n): ");
        fflush(cli->out);
        char line[16];
        if (fgets(line, sizeof line, stdin) == NULL || (line[0] != 'y' && line[0] != 'Y'))
            return merr_set(err, MERR_INVALID, 0, "not regenerating (answer y, or pass -f)");
    }
    if (args_get_bool(a, "client-certs") && certs_regenerate_ca(cli->ctx.store.certs_dir, "machine", err) < 0)
        return -1;
    size_t n = args_npositional(a);
    for (size_t i = 0; i < (n == 0 ? 1 : n); i++) {
        const char *name = cli_machine_arg(a, i);
        auto_machine struct machine *m = load_ssh_machine(cli, name, err);
        if (m == NULL)
            return -1;
        fprintf(cli->out, "Regenerating TLS certificates for '%s'\n", name);
        static const char *const files[] = { "ca.pem", "cert.pem", "key.pem" };
        for (size_t k = 0; k < 3; k++) {
            auto_free char *src = path_join(cli->ctx.store.certs_dir, files[k]);
            auto_free char *dst = store_machine_file(&cli->ctx.store, name, files[k]);
            if (fs_copy_file(src, dst, k == 2 ? 0600 : 0644, err) < 0)
                return -1;
        }
        auto_close int lock = store_lock_machine(&cli->ctx.store, name, LOCK_TIMEOUT_MS, err);
        if (lock < 0 || provision_install_certs(&cli->ctx, m, err) < 0)
            return -1;
        auto_free char *v = provision_wait_engine(&cli->ctx, m, ENGINE_RESTART_WAIT_MS, err);
        if (v == NULL)
            return -1;
    }
    return 0;
}

const struct cli_command cmd_regenerate_certs = {
    .name = "regenerate-certs",
    .usage = "[-f] [--client-certs] [NAME...]",
    .summary = "Reissue a machine's TLS certificates and restart its engine",
    .opts = regen_opts,
    .n_opts = sizeof regen_opts / sizeof regen_opts[0],
    .flags = CMD_NEEDS_STORE,
    .run = regen_run,
};
