/* machine up / machine down: a lab file's hosts (core/lab.c, core/lab-up.c). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "error.h"
#include "fsutil.h"
#include "lab-up.h"
#include "lifecycle.h"
#include "machine.h"

static const struct opt_spec up_opts[] = {
    { "file", 'f', OPT_STRING, "the lab file", "lab.yaml", NULL },
    { "parallel", 'p', OPT_INT, "hosts brought up at once", "4", NULL },
    { "destroy", 0, OPT_BOOL, "remove every machine of the lab instead", NULL, NULL },
};

static const struct opt_spec down_opts[] = {
    { "file", 'f', OPT_STRING, "the lab file", "lab.yaml", NULL },
};

struct up_print {
    FILE *out;
    struct timespec start;
};

static void print_step(void *opaque, const char *host, const char *step)
{
    struct up_print *p = opaque;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double s = (double)(now.tv_sec - p->start.tv_sec) + (now.tv_nsec - p->start.tv_nsec) / 1e9;
    fprintf(p->out, "[%6.1fs] %-20s %s\n", s, host, step);
    fflush(p->out);
}

static struct lab *load_lab(struct parsed_args *a, struct merr *err)
{
    const char *path = args_get(a, "file");
    if (args_npositional(a) > 0)
        return merr_set(err, MERR_INVALID, 0, "unexpected argument '%s' (the lab file is -f FILE)",
                        a->positional[0]), NULL;
    return lab_load(path, err);
}

static int destroy(struct cli *cli, const struct lab *lab, struct merr *err)
{
    auto_strv char **names = lab_members(&cli->ctx, lab->name, err);
    if (names == NULL)
        return -1;
    int failed = 0;
    for (size_t i = 0; names[i] != NULL; i++) {
        struct merr e = MERR_INIT;
        if (lifecycle_rm(&cli->ctx, names[i], true, &e) < 0) {
            fprintf(cli->err, "%s: %s\n", names[i], e.msg);
            failed++;
        } else {
            fprintf(cli->out, "Removed %s\n", names[i]);
        }
    }
    return failed > 0 ? merr_set(err, MERR_REMOTE, 0, "%d machine(s) of lab '%s' not removed", failed,
                                 lab->name)
                      : 0;
}

static void print_summary(struct cli *cli, const struct lab *lab, const struct lab_result *res)
{
    fprintf(cli->out, "\n%-20s %-12s %-8s %8s  %s\n", "NAME", "ACTION", "RESULT", "TIME", "ERROR");
    for (size_t i = 0; i < lab->n_hosts; i++) {
        const struct lab_result *r = &res[i];
        fprintf(cli->out, "%-20s %-12s %-8s %7.1fs  %s\n", lab->hosts[i].name,
                r->skipped ? "-" : lab_action_name(r->action),
                r->done ? "ok" : r->skipped ? "skipped" : "failed", r->seconds, r->error);
    }
}

static int up_run(struct cli *cli, struct parsed_args *a, struct merr *err)
{
    auto_lab struct lab *lab = load_lab(a, err);
    if (lab == NULL)
        return -1;
    if (args_get_bool(a, "destroy"))
        return destroy(cli, lab, err);
    long parallel = 0;
    if (args_get_int(a, "parallel", &parallel, err) < 0)
        return -1;
    struct lab_result *res = xcalloc(lab->n_hosts, sizeof *res);
    struct up_print p = { .out = cli->out };
    clock_gettime(CLOCK_MONOTONIC, &p.start);
    int failed = lab_up(&cli->ctx, lab, (int)parallel, print_step, &p, res, err);
    if (failed >= 0)
        print_summary(cli, lab, res);
    free(res);
    if (failed > 0)
        return merr_set(err, MERR_REMOTE, 0, "%d of %zu hosts of lab '%s' failed", failed,
                        lab->n_hosts, lab->name);
    return failed < 0 ? -1 : 0;
}

static int down_run(struct cli *cli, struct parsed_args *a, struct merr *err)
{
    auto_lab struct lab *lab = load_lab(a, err);
    if (lab == NULL)
        return -1;
    auto_strv char **names = lab_members(&cli->ctx, lab->name, err);
    if (names == NULL)
        return -1;
    int failed = 0;
    for (size_t i = strv_len(names); i-- > 0;) {
        struct merr e = MERR_INIT;
        if (lifecycle_stop(&cli->ctx, names[i], &e) < 0) {
            fprintf(cli->err, "%s: %s\n", names[i], e.msg);
            failed++;
        } else {
            fprintf(cli->out, "Stopped %s\n", names[i]);
        }
    }
    return failed > 0 ? merr_set(err, MERR_REMOTE, 0, "%d machine(s) of lab '%s' not stopped",
                                 failed, lab->name)
                      : 0;
}

const struct cli_command cmd_up = {
    .name = "up",
    .usage = "[-f LAB.yaml] [--parallel N] [--destroy]",
    .summary = "Bring a lab file's machines up (create, keep, re-provision), or remove them",
    .opts = up_opts,
    .n_opts = sizeof up_opts / sizeof up_opts[0],
    .flags = CMD_NEEDS_STORE,
    .run = up_run,
};

const struct cli_command cmd_down = {
    .name = "down",
    .usage = "[-f LAB.yaml]",
    .summary = "Stop a lab's machines",
    .opts = down_opts,
    .n_opts = sizeof down_opts / sizeof down_opts[0],
    .flags = CMD_NEEDS_STORE,
    .run = down_run,
};
