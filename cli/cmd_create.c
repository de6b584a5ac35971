/* machine create -d DRIVER [flags] NAME */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "clock.h"
#include "driver.h"
#include "engine_flags.h"
#include "error.h"
#include "fsutil.h"
#include "lifecycle.h"
#include "machine.h"
#include "netutil.h"
#include "plugin.h"
#include "provision.h"
#include "store.h"

static const struct opt_spec create_common_opts[] = {
    { "driver", 'd', OPT_STRING, "driver to create the machine with", NULL, "MACHINE_DRIVER" },
    { "engine-opt", 0, OPT_LIST, "engine flag, as key=value (e.g. log-level=debug)", NULL, NULL },
    { "engine-env", 0, OPT_LIST, "environment variable for the engine, as KEY=VALUE", NULL, NULL },
    { "engine-label", 0, OPT_LIST, "engine label, as key=value", NULL, NULL },
    { "engine-insecure-registry", 0, OPT_LIST, "registry the engine may reach over plain HTTP",
      NULL, NULL },
    { "engine-registry-mirror", 0, OPT_LIST, "registry mirror for the engine", NULL, NULL },
    { "engine-storage-driver", 0, OPT_STRING, "engine storage driver", NULL, NULL },
    { "engine-port", 0, OPT_INT, "port of the engine's TLS API", "2376", NULL },
    { "tls-san", 0, OPT_LIST, "extra subject alternative name for the engine's certificate", NULL,
      NULL },
    { "quiet", 'q', OPT_BOOL, "print no progress lines", NULL, NULL },
};
#define N_COMMON (sizeof create_common_opts / sizeof create_common_opts[0])

/* The driver named by -d/--driver (or $MACHINE_DRIVER), found without parsing other flags. */
static const char *prescan_driver(char *const *argv)
{
    for (size_t i = 0; argv[i] != NULL; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if ((strcmp(argv[i], "-d") == 0 || strcmp(argv[i], "--driver") == 0) && argv[i + 1] != NULL)
            return argv[i + 1];
        if (strncmp(argv[i], "--driver=", 9) == 0)
            return argv[i] + 9;
        if (strncmp(argv[i], "-d", 2) == 0 && argv[i][2] != '\0' && argv[i][1] != '-')
            return argv[i] + 2;
    }
    const char *env = getenv("MACHINE_DRIVER");
    return env != NULL && env[0] != '\0' ? env : NULL;
}

/* docker-machine's --swarm* flags (classic Swarm): refused by name rather than "unknown flag". */
static const char *swarm_flag(char *const *argv)
{
    for (size_t i = 0; argv[i] != NULL && strcmp(argv[i], "--") != 0; i++)
        if (strncmp(argv[i], "--swarm", 7) == 0)
            return argv[i];
    return NULL;
}

static bool wants_help(char *const *argv)
{
    for (size_t i = 0; argv[i] != NULL && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    return false;
}

struct opt_spec *cli_create_specs(const struct driver *d, size_t *n)
{
    size_t nd = 0;
    for (const struct driver_flag *f = d != NULL ? d->flags : NULL; f != NULL && f->name; f++)
        nd++;
    struct opt_spec *specs = xcalloc(N_COMMON + nd, sizeof *specs);
    memcpy(specs, create_common_opts, sizeof create_common_opts);
    for (size_t i = 0; i < nd; i++) {
        const struct driver_flag *f = &d->flags[i];
        specs[N_COMMON + i] = (struct opt_spec){
            .name = f->name,
            .type = f->type == DFLAG_BOOL ? OPT_BOOL
                    : f->type == DFLAG_STRING_LIST ? OPT_LIST
                    : f->type == DFLAG_INT ? OPT_INT
                                           : OPT_STRING,
            .help = f->help,
            .def = f->def,
            .env = f->env,
        };
    }
    *n = N_COMMON + nd;
    return specs;
}

const struct driver *cli_find_driver(struct cli *cli, const char *name, struct merr *err)
{
    const struct driver *d = driver_find(cli->ctx.drivers, name);
    if (d != NULL || cli->ctx.plugins == NULL) {
        if (d == NULL)
            merr_set(err, MERR_INVALID, 0, "unknown driver '%s'", name);
        return d;
    }
    return plugin_set_load(cli->ctx.plugins, &cli->ctx.store, &cli->ctx.log, cli->ctx.drivers,
                           name, cli->ctx.state_timeout_ms, err);
}

static char *drivers_help(const struct cli *cli)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        abort();
    fputs("\nDrivers (run 'machine create -d DRIVER --help' for a driver's flags):\n", f);
    for (size_t i = 0; cli->ctx.drivers[i] != NULL; i++)
        fprintf(f, "  %-12s %s\n", cli->ctx.drivers[i]->name, cli->ctx.drivers[i]->description);
    auto_strv char **plugins = plugin_list(&cli->ctx.store, cli->ctx.drivers);
    for (size_t i = 0; plugins[i] != NULL; i++)
        fprintf(f, "  %-12s plugin %s%s (see 'machine drivers')\n", plugins[i], PLUGIN_PREFIX,
                plugins[i]);
    fclose(f);
    return buf;
}

static char *const *lookup_flag(void *opaque, const char *name)
{
    return args_values(opaque, name);
}

static int check_kv_list(char *const *values, const char *flag, struct merr *err)
{
    for (size_t i = 0; values != NULL && values[i] != NULL; i++) {
        const char *eq = strchr(values[i], '=');
        if (eq == NULL || eq == values[i])
            return merr_set(err, MERR_INVALID, 0, "invalid --%s '%s': expected KEY=VALUE", flag,
                            values[i]);
    }
    return 0;
}

static int fill_engine_options(struct machine *m, const struct parsed_args *a, struct merr *err)
{
    static const struct {
        const char *flag;
        bool kv;
        size_t offset;
    } lists[] = {
        { "engine-opt", true, offsetof(struct machine, engine.opts) },
        { "engine-env", true, offsetof(struct machine, engine.env) },
        { "engine-label", true, offsetof(struct machine, engine.labels) },
        { "engine-insecure-registry", false, offsetof(struct machine, engine.insecure_registry) },
        { "engine-registry-mirror", false, offsetof(struct machine, engine.registry_mirror) },
        { "tls-san", false, offsetof(struct machine, auth.sans) },
    };
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        char *const *v = args_values(a, lists[i].flag);
        if (lists[i].kv && check_kv_list(v, lists[i].flag, err) < 0)
            return -1;
        char ***slot = (char ***)((char *)m + lists[i].offset);
        strv_free(*slot);
        *slot = strv_dup(v);
    }
    /* an option machine-engine would refuse at start is refused here, before any host exists */
    for (char *const *o = m->engine.opts; o != NULL && *o != NULL; o++)
        if (engine_flag_check_opt(*o, err) < 0)
            return -1;
    for (char *const *s = m->auth.sans; *s != NULL; s++)
        if ((*s)[0] == '\0' || strpbrk(*s, " ,/") != NULL)
            return merr_set(err, MERR_INVALID, 0, "invalid --tls-san '%s'", *s);
    if (args_values(a, "engine-port") != NULL) {
        long port = 0;
        if (args_get_int(a, "engine-port", &port, err) < 0)
            return -1;
        if (port <= 0 || port > 65535)
            return merr_set(err, MERR_INVALID, 0, "invalid --engine-port %ld: must be 1-65535", port);
        m->engine.port = (int)port;
        machine_driver_set_int(m, DKEY_ENGINE_PORT, port); /* drivers that keep their own copy */
    }
    const char *sd = args_get(a, "engine-storage-driver");
    free(m->engine.storage_driver);
    m->engine.storage_driver = sd != NULL ? xstrdup(sd) : NULL;
    return 0;
}

struct progress_state {
    FILE *out;
    int64_t start_ms; /* clock_now_ms() */
};

static void print_progress(void *opaque, const char *step)
{
    struct progress_state *p = opaque;
    double s = (double)clock_since_ms(p->start_ms) / 1e3;
    fprintf(p->out, "[%6.1fs] %s\n", s, step);
    fflush(p->out);
}

static int create_run(struct cli *cli, struct parsed_args *raw, struct merr *err)
{
    char *const *argv = raw->positional;
    const char *dname = prescan_driver(argv);
    const struct driver *d = NULL;
    if (dname != NULL && (d = cli_find_driver(cli, dname, err)) == NULL)
        return -1; /* before its flags are parsed: they are the driver's */
    if (dname == NULL && !wants_help(argv)) {
        /* No -d: the first driver that says it is usable here (kvm when libvirt answers). */
        struct driver_ctx dctx;
        lifecycle_driver_ctx(&cli->ctx, &dctx);
        for (const struct driver *const *p = cli->ctx.drivers; *p != NULL && d == NULL; p++)
            if ((*p)->usable != NULL && (*p)->usable(&dctx))
                d = *p;
        dname = d != NULL ? d->name : NULL;
    }
    const char *swarm = swarm_flag(argv);
    if (swarm != NULL)
        return merr_set(err, MERR_UNSUPPORTED, 0, CLI_SWARM_UNSUPPORTED, (int)strcspn(swarm, "="),
                        swarm);
    size_t n_specs = 0;
    auto_free struct opt_spec *specs = cli_create_specs(d, &n_specs);
    struct parsed_args a;
    if (args_parse(specs, n_specs, (int)strv_len(argv), argv, false, &a, err) < 0)
        return merr_prefix(err, "create");
    if (a.help) {
        auto_free char *extra = d == NULL ? drivers_help(cli)
                                          : xasprintf("\nDriver '%s': %s\n", d->name, d->description);
        cli_print_command_help(cli, &cmd_create, specs, n_specs, extra);
        args_release(&a);
        return 0;
    }
    int rc = -1;
    auto_machine struct machine *m = NULL;
    auto_free char *dir = NULL; /* cleanup variables before the first goto (clang refuses) */
    if (dname == NULL) {
        merr_set(err, MERR_INVALID, 0,
                 "missing --driver (-d): no default driver is usable here (kvm needs a running "
                 "libvirtd); see 'machine create --help'");
        goto out;
    }
    if (d == NULL) {
        merr_set(err, MERR_INVALID, 0, "unknown driver '%s'", dname);
        goto out;
    }
    if (args_npositional(&a) == 0) {
        /* docker-machine's answer: the command's help (with the driver's flags), then the error */
        auto_free char *extra =
            d != NULL ? xasprintf("\nDriver '%s': %s\n", d->name, d->description) : NULL;
        cli_print_command_help(cli, &cmd_create, specs, n_specs, extra);
        merr_set(err, MERR_INVALID, 0, "No machine name specified");
        goto out;
    }
    if (args_npositional(&a) > 1) {
        fprintf(cli->err, "Invalid command line. Found extra arguments [");
        for (size_t i = 1; a.positional[i] != NULL; i++)
            fprintf(cli->err, "%s%s", i > 1 ? " " : "", a.positional[i]);
        fprintf(cli->err, "]\n");
        rc = 1;
        goto out;
    }
    const char *name = a.positional[0];
    if (machine_validate_name(name, err) < 0) {
        merr_prefix(err, "Error creating machine");
        goto out;
    }
    dir = store_machine_dir(&cli->ctx.store, name);
    if (fs_exists(dir)) {
        /* before any step, in docker-machine's words (the store refuses it later anyway) */
        fflush(cli->out);
        fprintf(cli->err, "Docker machine \"%s\" already exists\n", name);
        rc = 1;
        goto out;
    }
    if (d->uses_ssh && cli->ctx.provisioner != NULL) {
        /* Fail before anything is made when there is no engine to install. */
        auto_free char *bundle = provision_find_bundle(err);
        if (bundle == NULL)
            goto out;
    }
    m = machine_new(name, d->name);
    if (driver_apply_flags(d, m, lookup_flag, &a, err) < 0 || fill_engine_options(m, &a, err) < 0)
        goto out;

    struct progress_state ps = { .out = cli->out };
    ps.start_ms = clock_now_ms();
    if (!args_get_bool(&a, "quiet")) {
        cli->ctx.progress = print_progress;
        cli->ctx.progress_opaque = &ps;
    }
    if (lifecycle_create(&cli->ctx, d, m, err) < 0) {
        if (err->code != MERR_PRECREATE)
            merr_prefix(err, "Error creating machine");
        goto out;
    }
    if (!args_get_bool(&a, "quiet"))
        fprintf(cli->out,
                "Engine is up and running! To point your docker client at it: eval $(%s env %s)\n",
                cli->prog, m->name);
    rc = 0;
out:
    cli->ctx.progress = NULL;
    args_release(&a);
    return rc;
}

const struct cli_command cmd_create = {
    .name = "create",
    .usage = "-d DRIVER [OPTIONS] NAME",
    .summary = "Create a machine",
    .opts = create_common_opts,
    .n_opts = N_COMMON,
    .flags = CMD_NEEDS_STORE | CMD_RAW_ARGS,
    .run = create_run,
};
