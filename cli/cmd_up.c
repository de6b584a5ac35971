/* machine up / machine down: a lab file's hosts (core/lab.c, core/lab-up.c). */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "error.h"
#include "fsutil.h"
#include "lab-up.h"
#include "lifecycle.h"
#include "machine.h"
#include "store.h"
#include "upview.h"

static const struct opt_spec up_opts[] = {
    { "file", 'f', OPT_STRING, "the lab file", "lab.yaml", NULL },
    { "parallel", 'p', OPT_INT, "hosts brought up at once", "4", NULL },
    { "destroy", 0, OPT_BOOL, "remove every machine of the lab instead", NULL, NULL },
    { "abort-on-failure", 0, OPT_BOOL,
      "when a host fails, stop the others and remove the machines this run created", NULL, NULL },
};

static const struct opt_spec down_opts[] = {
    { "file", 'f', OPT_STRING, "the lab file", "lab.yaml", NULL },
};

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
                r->done          ? "ok"
                : r->skipped     ? "skipped"
                : r->rolled_back ? "removed"
                                 : "failed",
                r->seconds, r->error);
    }
}

/* SIGINT and SIGTERM during `machine up` go to this thread (blocked in all others): the first
 * stops the run (no host started after it, the running ones stop at their next step); a second
 * records the hosts still running as failed and ends the process with the signal. It also
 * redraws the progress on a terminal while it waits. */
struct up_signals {
    sigset_t set;
    atomic_int interrupt;
    atomic_bool finished;
    struct cli *cli;
    const struct lab *lab;
    struct lab_result *res;
    struct upview *view;
};

static void mark_running_failed(struct up_signals *s)
{
    for (size_t i = 0; i < s->lab->n_hosts; i++) {
        if (!atomic_load(&s->res[i].running))
            continue;
        struct merr e = MERR_INIT;
        auto_machine struct machine *m = store_load_machine(&s->cli->ctx.store, s->lab->hosts[i].name, &e);
        if (m == NULL)
            continue; /* not recorded yet: nothing of it to mark */
        machine_set_status(m, MACHINE_STATUS_ERROR, "interrupted (machine up)");
        if (store_save_machine(&s->cli->ctx.store, m, &e) < 0)
            fprintf(s->cli->err, "%s: %s\n", m->name, e.msg);
    }
}

static void *signal_thread(void *opaque)
{
    struct up_signals *s = opaque;
    const struct timespec tick = { .tv_nsec = 250 * 1000 * 1000 };
    while (!atomic_load(&s->finished)) {
        int sig = sigtimedwait(&s->set, NULL, &tick);
        if (sig < 0) {
            upview_tick(s->view);
            continue;
        }
        if (atomic_fetch_add(&s->interrupt, 1) == 0) {
            upview_note(s->view, "Interrupted: no more hosts are started; the running ones stop at "
                                 "their next step (again to stop now)");
            continue;
        }
        mark_running_failed(s);
        fflush(s->cli->out);
        signal(sig, SIG_DFL);
        pthread_sigmask(SIG_UNBLOCK, &s->set, NULL);
        raise(sig);
    }
    return NULL;
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
    struct upview view;
    upview_init(&view, cli->out, isatty(fileno(cli->out)), lab);
    struct up_signals sig = { .cli = cli, .lab = lab, .res = res, .view = &view };
    sigemptyset(&sig.set);
    sigaddset(&sig.set, SIGINT);
    sigaddset(&sig.set, SIGTERM);
    sigset_t old;
    pthread_sigmask(SIG_BLOCK, &sig.set, &old);
    pthread_t st;
    bool have_st = pthread_create(&st, NULL, signal_thread, &sig) == 0;
    struct lab_up_opts opts = { .parallel = (int)parallel,
                                .abort_on_failure = args_get_bool(a, "abort-on-failure"),
                                .interrupt = &sig.interrupt, .progress = upview_step,
                                .opaque = &view };
    int failed = lab_up(&cli->ctx, lab, &opts, res, err);
    atomic_store(&sig.finished, true);
    if (have_st)
        pthread_join(st, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (failed >= 0)
        print_summary(cli, lab, res);
    free(res);
    upview_release(&view);
    if (failed >= 0 && atomic_load(&sig.interrupt) > 0) {
        merr_set(err, MERR_REMOTE, 0, "interrupted: %d of %zu hosts of lab '%s' not up", failed,
                 lab->n_hosts, lab->name);
        cli_print_error(cli, err);
        return 130;
    }
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
    .usage = "[-f LAB.yaml] [--parallel N] [--abort-on-failure] [--destroy]",
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
