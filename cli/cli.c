#include "cli.h"
#include "curl_linked.h"
#include "engine.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fsutil.h"
#include "machine.h"
#include "plugin.h"
#include "provision.h"
#include "registry.h"
#include "store.h"

static int cmd_help_run(struct cli *cli, struct parsed_args *a, struct merr *err);

static const struct cli_command cmd_help = {
    .name = "help",
    .usage = "[COMMAND]",
    .summary = "Show help for machine or a command",
    .run = cmd_help_run,
};

static const struct cli_command *const commands[] = {
    &cmd_active,  &cmd_config, &cmd_create, &cmd_drivers, &cmd_env,     &cmd_export, &cmd_import, &cmd_inspect,
    &cmd_inventory, &cmd_ip,      &cmd_kill,   &cmd_ls,     &cmd_mount,   &cmd_provision, &cmd_regenerate_certs,
    &cmd_restart, &cmd_rm,     &cmd_scp,    &cmd_ssh,     &cmd_start,
    &cmd_status,  &cmd_stop,   &cmd_up,     &cmd_down,   &cmd_upgrade, &cmd_url,    &cmd_version,
    &cmd_help,    NULL,
};

static const struct opt_spec global_opts[] = {
    { "debug", 'D', OPT_BOOL, "enable debug output", NULL, NULL },
    { "storage-path", 's', OPT_STRING, "where machines and certificates are kept", "~/.machine",
      "MACHINE_STORAGE_PATH" },
    { "external-ssh", 0, OPT_BOOL, "use the system ssh binary for `machine ssh`", NULL, NULL },
    { "native-ssh", 0, OPT_BOOL, "use the built-in SSH client (the default)", NULL, NULL },
    { "version", 'v', OPT_BOOL, "print the version and exit", NULL, NULL },
};
#define N_GLOBAL_OPTS (sizeof global_opts / sizeof global_opts[0])

const struct cli_command *const *cli_commands(void)
{
    return commands;
}

const struct opt_spec *cli_global_opts(size_t *n)
{
    *n = N_GLOBAL_OPTS;
    return global_opts;
}

static const struct cli_command *find_command(const char *name)
{
    for (size_t i = 0; commands[i] != NULL; i++)
        if (strcmp(commands[i]->name, name) == 0)
            return commands[i];
    return NULL;
}

const char cli_default_machine[] = "default";

const char *cli_machine_arg(const struct parsed_args *a, size_t idx)
{
    return idx < args_npositional(a) ? a->positional[idx] : cli_default_machine;
}

void cli_print_error(struct cli *cli, const struct merr *err)
{
    const char *msg = err->msg[0] != '\0' ? err->msg : "unknown error";
    fflush(cli->out); /* after what the command printed, when both go to one place */
    fprintf(cli->err, "%s%s\n", strncmp(msg, "Error", 5) == 0 ? "" : "Error: ", msg);
}

struct machine *cli_load_machine(struct cli *cli, const char *name, struct merr *err)
{
    struct machine *m = store_load_machine(&cli->ctx.store, name, err);
    if (m == NULL && name == cli_default_machine && err->code == MERR_NOT_FOUND)
        merr_set(err, MERR_NOT_FOUND, 0,
                 "No machine name(s) specified and no \"%s\" machine exists.", cli_default_machine);
    return m;
}

static void print_usage(struct cli *cli, FILE *f)
{
    fprintf(f, "Usage: %s [OPTIONS] COMMAND [ARGS...]\n\n"
               "Create and manage machines running Docker (hosts running machine-engine).\n\nOptions:\n",
            cli->prog);
    auto_free char *help = args_help(global_opts, N_GLOBAL_OPTS);
    fputs(help, f);
    fputs("\nCommands:\n", f);
    for (size_t i = 0; commands[i] != NULL; i++)
        fprintf(f, "  %-18s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(f, "\nRun '%s COMMAND --help' for more information on a command.\n", cli->prog);
}

void cli_print_command_help(struct cli *cli, const struct cli_command *c, const struct opt_spec *opts,
                            size_t n_opts, const char *extra)
{
    fprintf(cli->out, "Usage: %s %s %s\n\n%s\n", cli->prog, c->name, c->usage != NULL ? c->usage : "",
            c->summary);
    if (n_opts > 0) {
        auto_free char *help = args_help(opts, n_opts);
        fprintf(cli->out, "\nOptions:\n%s", help);
    }
    if (extra != NULL)
        fputs(extra, cli->out);
}

static void print_command_help(struct cli *cli, const struct cli_command *c)
{
    cli_print_command_help(cli, c, c->opts, c->n_opts, NULL);
}

static int cmd_help_run(struct cli *cli, struct parsed_args *a, struct merr *err)
{
    if (args_npositional(a) == 0) {
        print_usage(cli, cli->out);
        return 0;
    }
    const struct cli_command *c = find_command(a->positional[0]);
    if (c == NULL)
        return merr_set(err, MERR_INVALID, 0, "unknown command '%s'", a->positional[0]);
    if (c->flags & CMD_RAW_ARGS) {
        /* Such commands print their own help. */
        char help_flag[] = "--help";
        char *argv[] = { help_flag, NULL };
        struct parsed_args raw = { .positional = argv };
        return c->run(cli, &raw, err);
    }
    print_command_help(cli, c);
    return 0;
}

static int env_int(const char *name, int def)
{
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0')
        return def;
    char *end = NULL;
    long n = strtol(v, &end, 10);
    return end != v && *end == '\0' && n > 0 && n < 86400000 ? (int)n : def;
}

static int run_command(struct cli *cli, const struct cli_command *c, int argc, char **argv,
                       struct merr *err)
{
    struct parsed_args a;
    if (c->flags & CMD_RAW_ARGS) {
        memset(&a, 0, sizeof a);
        a.positional = strv_dup(argv);
    } else if (args_parse(c->opts, c->n_opts, argc, argv, (c->flags & CMD_STOP_AT_POSITIONAL) != 0, &a,
                   err) < 0) {
        merr_prefix(err, "%s", c->name);
        return -1;
    }
    if (a.help) {
        print_command_help(cli, c);
        args_release(&a);
        return 0;
    }
    if (c->flags & CMD_NEEDS_STORE) {
        if (store_open(cli->storage_path, &cli->ctx.store, err) < 0) {
            args_release(&a);
            return -1;
        }
        cli->store_open = true;
    }
    int rc = c->run(cli, &a, err);
    args_release(&a);
    return rc;
}

int cli_main(int argc, char **argv)
{
    struct cli cli = {
        .out = stdout,
        .err = stderr,
        .prog = "machine",
        .ctx = {
            .log = { .level = MLOG_WARN, .out = stderr },
            .drivers = machine_drivers(),
            /* Bounds, overridable for tests and slow hosts. */
            .ssh_wait_ms = env_int("MACHINE_SSH_WAIT_MS", 120000),
            .ssh_timeout_ms = env_int("MACHINE_SSH_TIMEOUT_MS", 30000),
            .state_timeout_ms = env_int("MACHINE_STATE_TIMEOUT_MS", 10000),
            .op_timeout_ms = env_int("MACHINE_OP_TIMEOUT_MS", 300000),
            .stop_grace_ms = env_int("MACHINE_STOP_GRACE_MS", 90000),
            .lock_timeout_ms = env_int("MACHINE_LOCK_TIMEOUT_MS", 30000),
            .engine_wait_ms = env_int("MACHINE_ENGINE_WAIT_MS", 60000),
            .provisioner = &provision_engine_provisioner,
        },
    };
    curl_api_linked(&cli.curl);
    cli.ctx.curl = &cli.curl;
    cli.ctx.plugins = plugin_set_new();
    struct merr err = MERR_INIT;

    /* Global options come before the command name; those taking a value take it as the next
     * argument too (-s PATH, --storage-path PATH), so the command is the first positional. */
    struct parsed_args g;
    if (args_parse(global_opts, N_GLOBAL_OPTS, argc - 1, argv + 1, true, &g, &err) < 0) {
        cli_print_error(&cli, &err);
        return 1;
    }
    if (args_get_bool(&g, "debug"))
        cli.ctx.log.level = MLOG_DEBUG;
    cli.ctx.external_ssh = args_get_bool(&g, "external-ssh");
    const char *sp = args_values(&g, "storage-path") != NULL ? args_get(&g, "storage-path") : NULL;
    cli.storage_path = sp != NULL ? xstrdup(sp) : store_default_root();
    bool want_version = args_get_bool(&g, "version");
    bool want_help = g.help;
    char **rest = g.positional;

    int rc;
    if (want_version) {
        fprintf(cli.out, "machine version %s\n", MACHINE_VERSION);
        rc = 0;
    } else if (want_help || rest[0] == NULL) {
        /* docker-machine prints its usage and exits 0 with no command too */
        print_usage(&cli, cli.out);
        rc = 0;
    } else {
        const struct cli_command *c = find_command(rest[0]);
        if (c == NULL) {
            merr_set(&err, MERR_INVALID, 0, "unknown command '%s' (see '%s help')", rest[0],
                     cli.prog);
            rc = -1;
        } else {
            rc = run_command(&cli, c, (int)strv_len(rest + 1), rest + 1, &err);
        }
    }
    if (rc < 0) {
        cli_print_error(&cli, &err);
        rc = err.code == MERR_PRECREATE ? 3 : 1;
    }
    args_release(&g);
    if (cli.store_open)
        store_release(&cli.ctx.store);
    free(cli.storage_path);
    plugin_set_free(cli.ctx.plugins);
    fflush(cli.out);
    return rc;
}
