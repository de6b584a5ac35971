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

struct progress_state {
    FILE *out;
};

static void print_step(void *opaque, const char *step)
{
    struct progress_state *p = opaque;
    fprintf(p->out, "%s\n", step);
    fflush(p->out);
}

char *cli_engine_version(const struct machine_ctx *ctx, const struct machine *m, int timeout_ms,
                         struct merr *err)
{
    return provision_engine_version(ctx, m, timeout_ms, err);
}

int cli_renew_certs_if_needed(const struct machine_ctx *ctx, struct machine *m, FILE *out,
                              struct merr *err)
{
    /* a copy of the context that prints to out (ls runs this from several threads) */
    struct progress_state ps = { out };
    struct machine_ctx local = *ctx;
    local.progress = print_step;
    local.progress_opaque = &ps;
    return lifecycle_renew_certs(&local, m, err);
}

/* provision / upgrade: the same idempotent steps; upgrade says what version it installed. */
static int run_provision(struct cli *cli, struct parsed_args *a, bool upgrade, struct merr *err)
{
    size_t n = args_npositional(a);
    for (size_t i = 0; i < (n == 0 ? 1 : n); i++) {
        const char *name = cli_machine_arg(a, i);
        auto_machine struct machine *m = cli_load_machine(cli, name, err);
        if (m == NULL)
            return -1;
        struct progress_state ps = { cli->out };
        cli->ctx.progress = print_step;
        cli->ctx.progress_opaque = &ps;
        int rc = upgrade ? lifecycle_upgrade(&cli->ctx, name, err)
                         : lifecycle_provision(&cli->ctx, name, err);
        cli->ctx.progress = NULL;
        if (rc < 0)
            return -1;
        machine_free(m);
        m = cli_load_machine(cli, name, err);
        if (m == NULL)
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
        auto_machine struct machine *m = cli_load_machine(cli, name, err);
        if (m == NULL)
            return -1;
        fprintf(cli->out, "Regenerating TLS certificates for '%s'\n", name);
        if (lifecycle_regenerate_certs(&cli->ctx, name, err) < 0)
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
