/* Commands that change machines: start, stop, restart, kill, rm. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "engine.h"
#include "driver.h"
#include "error.h"
#include "fsutil.h"
#include "lifecycle.h"
#include "machine.h"
#include "store.h"
#include "strv.h"

typedef int (*lifecycle_op_fn)(const struct machine_ctx *ctx, const char *name, struct merr *err);

struct power_op {
    const char *verb;  /* "Starting" */
    const char *done;  /* "started" */
    lifecycle_op_fn op;
};

static void print_line(void *opaque, const char *line)
{
    FILE *out = opaque;
    fprintf(out, "%s\n", line);
    fflush(out);
}

static int power_one(struct cli *cli, const char *name, const struct power_op *p, struct merr *err)
{
    auto_machine struct machine *m = cli_load_machine(cli, name, err); /* its wording if missing */
    if (m == NULL)
        return -1;
    fprintf(cli->out, "%s \"%s\"...\n", p->verb, name);
    fflush(cli->out);
    /* what the operation says afterwards (a renewed certificate) goes to out */
    cli->ctx.progress = print_line;
    cli->ctx.progress_opaque = cli->out;
    int rc = p->op(&cli->ctx, name, err);
    cli->ctx.progress = NULL;
    if (rc < 0)
        return -1;
    fprintf(cli->out, "Machine \"%s\" was %s.\n", name, p->done);
    return 0;
}

/* Every named machine is tried; each failure is printed, the exit status says if any failed. */
static int power_run(struct cli *cli, struct parsed_args *a, const struct power_op *p,
                     struct merr *err)
{
    size_t n = args_npositional(a);
    if (n <= 1)
        return power_one(cli, cli_machine_arg(a, 0), p, err);
    size_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        struct merr e = MERR_INIT;
        if (power_one(cli, a->positional[i], p, &e) < 0) {
            cli_print_error(cli, &e);
            failed++;
        }
    }
    if (failed > 0)
        return merr_set(err, MERR_REMOTE, 0, "%zu of %zu machines failed", failed, n);
    return 0;
}

#define POWER_COMMAND(cname, verb_, done_, op_, summary_)                                         \
    static int cname##_run(struct cli *cli, struct parsed_args *a, struct merr *err)               \
    {                                                                                              \
        static const struct power_op p = { verb_, done_, op_ };                                    \
        return power_run(cli, a, &p, err);                                                         \
    }                                                                                              \
    const struct cli_command cmd_##cname = {                                                       \
        .name = #cname,                                                                            \
        .usage = "[NAME...]",                                                                      \
        .summary = summary_,                                                                       \
        .flags = CMD_NEEDS_STORE,                                                                  \
        .run = cname##_run,                                                                        \
    };

POWER_COMMAND(start, "Starting", "started", lifecycle_start, "Start machines")
POWER_COMMAND(stop, "Stopping", "stopped", lifecycle_stop, "Stop machines")
POWER_COMMAND(restart, "Restarting", "restarted", lifecycle_restart, "Restart machines")
POWER_COMMAND(kill, "Killing", "killed", lifecycle_kill, "Kill (power off) machines")

static const struct opt_spec rm_opts[] = {
    { "force", 'f', OPT_BOOL,
      "remove the local config even if the driver cannot remove the machine; implies -y", NULL,
      NULL },
    { "yes", 'y', OPT_BOOL, "do not ask for confirmation", NULL, NULL },
    { "lab", 0, OPT_STRING, "also every machine of this lab (label lab=NAME, as `machine up` made it)",
      NULL, NULL },
};

static bool confirm(struct cli *cli)
{
    fprintf(cli->out, "WARNING: This action will delete both local reference and remote "
                      "instance.\nAre you sure? (y/n): ");
    fflush(cli->out);
    char line[16];
    if (fgets(line, sizeof line, stdin) == NULL)
        return false;
    return line[0] == 'y' || line[0] == 'Y';
}

/* One machine: the driver's remove (its failure ignored with force), then the local config.
 * Errors are worded as docker-machine's, which scripts match. */
static int rm_one(struct cli *cli, const char *name, bool force, struct merr *err)
{
    struct merr e = MERR_INIT;
    auto_free char *dir = store_machine_dir(&cli->ctx.store, name);
    if (machine_validate_name(name, &e) < 0 || !fs_exists(dir))
        return merr_set(err, MERR_NOT_FOUND, 0, "Error removing host \"%s\": Host does not exist: \"%s\"",
                        name, name);
    if (lifecycle_rm(&cli->ctx, name, force, &e) == 0)
        return 0;
    return merr_set(err, e.code, e.sys_errno, "Error removing host \"%s\": %s%s", name, e.msg,
                    e.code == MERR_CORRUPT && !force ? " (use -f to remove it anyway)" : "");
}

/* As docker-machine: -f implies -y (scripts and its own tests rely on it), a declined prompt
 * removes nothing and is no error; with -f every failure is printed and the status is 0. */
/* The names given, then (--lab NAME) the stored machines that `machine up` made for that lab. */
static char **rm_names(struct cli *cli, struct parsed_args *a, struct merr *err)
{
    char **names = xcalloc(1, sizeof *names);
    for (size_t i = 0; a->positional != NULL && a->positional[i] != NULL; i++)
        names = strv_push(names, a->positional[i]);
    const char *lab = args_get(a, "lab");
    if (lab == NULL)
        return names;
    auto_strv char **all = store_list_names(&cli->ctx.store, err);
    if (all == NULL) {
        strv_free(names);
        return NULL;
    }
    size_t found = 0;
    for (size_t i = 0; all[i] != NULL; i++) {
        struct merr ignored = MERR_INIT;
        auto_machine struct machine *m = store_load_machine(&cli->ctx.store, all[i], &ignored);
        const char *in = m != NULL ? json_string_value(json_object_get(m->lab, "Name")) : NULL;
        if (in == NULL || strcmp(in, lab) != 0)
            continue;
        found++;
        if (!strv_contains(names, all[i]))
            names = strv_push(names, all[i]);
    }
    if (found == 0) {
        strv_free(names);
        merr_set(err, MERR_NOT_FOUND, 0, "no machine belongs to lab '%s'", lab);
        return NULL;
    }
    return names;
}

static int rm_run(struct cli *cli, struct parsed_args *a, struct merr *err)
{
    if (args_npositional(a) == 0 && args_get(a, "lab") == NULL) {
        cli_print_command_help(cli, &cmd_rm, rm_opts, sizeof rm_opts / sizeof rm_opts[0], NULL);
        return merr_set(err, MERR_INVALID, 0, "Expected to get one or more machine names as arguments");
    }
    auto_strv char **names = rm_names(cli, a, err);
    if (names == NULL)
        return -1;
    bool force = args_get_bool(a, "force");
    fprintf(cli->out, "About to remove ");
    for (size_t i = 0; names[i] != NULL; i++)
        fprintf(cli->out, "%s%s", i > 0 ? ", " : "", names[i]);
    fputc('\n', cli->out);
    if (!args_get_bool(a, "yes") && !force && !confirm(cli))
        return 0;
    size_t failed = 0;
    for (size_t i = 0; names[i] != NULL; i++) {
        const char *name = names[i];
        struct merr e = MERR_INIT;
        if (rm_one(cli, name, force, &e) < 0) {
            if (names[1] == NULL && !force) {
                *err = e;
                return -1;
            }
            cli_print_error(cli, &e);
            failed++;
            continue;
        }
        fprintf(cli->out, "Successfully removed %s\n", name);
    }
    if (failed > 0 && !force)
        return merr_set(err, MERR_IO, 0, "%zu machine(s) not removed", failed);
    return 0;
}

const struct cli_command cmd_rm = {
    .name = "rm",
    .usage = "[-f] [-y] [--lab LAB] NAME...",
    .summary = "Remove machines",
    .opts = rm_opts,
    .n_opts = sizeof rm_opts / sizeof rm_opts[0],
    .flags = CMD_NEEDS_STORE,
    .run = rm_run,
};
