#include "lab-up.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "context.h"
#include "driver.h"
#include "engine_flags.h"
#include "error.h"
#include "fsutil.h"
#include "lifecycle.h"
#include "machine.h"
#include "ssh.h"
#include "store.h"

#define LAB_MAX_PARALLEL 64

/* ---- checks and the machine a spec describes ---- */

static const struct driver_flag *find_flag(const struct driver *d, const char *name)
{
    for (const struct driver_flag *f = d->flags; f != NULL && f->name != NULL; f++)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

static int check_host(const struct machine_ctx *ctx, const struct lab *lab,
                      const struct lab_host *h, struct merr *err)
{
    const char *dname = json_string_value(json_object_get(h->spec, "driver"));
    const struct driver *d = lifecycle_driver_named(ctx, dname, err);
    if (d == NULL) {
        err->code = MERR_INVALID;
        return merr_prefix(err, "%s:%d: hosts.%s.driver", lab->path, h->line, h->group);
    }
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(h->spec, "flags"), k, v) {
        if (find_flag(d, k) == NULL)
            return merr_set(err, MERR_INVALID, 0,
                            "%s:%d: hosts.%s.flags: '%s' is not a flag of driver '%s' (see "
                            "'machine create -d %s --help')",
                            lab->path, h->line, h->group, k, d->name, d->name);
    }
    json_t *opts = json_object_get(json_object_get(h->spec, "engine"), "opts");
    size_t i;
    json_array_foreach(opts, i, v) {
        if (engine_flag_check_opt(json_string_value(v), err) < 0)
            return merr_prefix(err, "%s:%d: hosts.%s.engine.opts", lab->path, h->line, h->group);
    }
    json_t *setup = json_object_get(h->spec, "setup");
    if (lab_check_images(lab, h, err) < 0)
        return -1;
    if (!d->uses_ssh && (json_array_size(json_object_get(setup, "run")) > 0 ||
                         json_array_size(json_object_get(setup, "files")) > 0))
        return merr_set(err, MERR_INVALID, 0,
                        "%s:%d: hosts.%s.setup: driver '%s' has no SSH to run setup through",
                        lab->path, h->line, h->group, d->name);
    return 0;
}

int lab_check(const struct machine_ctx *ctx, const struct lab *lab, struct merr *err)
{
    for (size_t i = 0; i < lab->n_hosts; i++)
        if (check_host(ctx, lab, &lab->hosts[i], err) < 0)
            return -1;
    return 0;
}

/* driver_apply_flags asks for each flag's values: the spec's value (a list for repeated flags). */
struct flag_lookup {
    const json_t *flags;
    char **held[64];
    size_t n;
};

static char *const *lookup_flag(void *opaque, const char *name)
{
    struct flag_lookup *l = opaque;
    json_t *v = json_object_get(l->flags, name);
    if (v == NULL || l->n >= sizeof l->held / sizeof l->held[0])
        return NULL;
    char **vals = NULL;
    size_t i;
    json_t *item;
    if (json_is_array(v))
        json_array_foreach(v, i, item) vals = strv_push(vals, json_string_value(item));
    else
        vals = strv_push(vals, json_string_value(v));
    l->held[l->n++] = vals;
    return vals;
}

static char **spec_list(const json_t *engine, const char *key)
{
    char **out = NULL;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(engine, key), i, v) out = strv_push(out, json_string_value(v));
    return out;
}

/* The engine options and labels of a spec into m (replacing what m had). */
static void apply_engine(struct machine *m, const struct lab *lab, const struct lab_host *h)
{
    const json_t *engine = json_object_get(h->spec, "engine");
    char ***lists[] = { &m->engine.opts, &m->engine.env, &m->engine.insecure_registry,
                        &m->engine.registry_mirror, &m->engine.labels };
    const char *keys[] = { "opts", "env", "insecure-registry", "registry-mirror", "labels" };
    for (size_t i = 0; i < 5; i++) {
        strv_free(*lists[i]);
        *lists[i] = spec_list(engine, keys[i]);
    }
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(h->spec, "labels"), k, v) {
        auto_free char *kv = xasprintf("%s=%s", k, json_string_value(v));
        m->engine.labels = strv_push(m->engine.labels, kv);
    }
    auto_free char *group = xasprintf("lab-group=%s", h->group);
    m->engine.labels = strv_push(m->engine.labels, group);
    const char *sd = json_string_value(json_object_get(engine, "storage-driver"));
    free(m->engine.storage_driver);
    m->engine.storage_driver = sd != NULL ? xstrdup(sd) : NULL;
    json_decref(m->lab);
    m->lab = json_pack("{s:s,s:s,s:O}", "Name", lab->name, "Group", h->group, "Spec", h->spec);
}

static struct machine *machine_for(const struct machine_ctx *ctx, const struct lab *lab,
                                   const struct lab_host *h, const struct driver **d,
                                   struct merr *err)
{
    *d = lifecycle_driver_named(ctx, json_string_value(json_object_get(h->spec, "driver")), err);
    if (*d == NULL)
        return NULL;
    auto_machine struct machine *m = machine_new(h->name, (*d)->name);
    struct flag_lookup l = { .flags = json_object_get(h->spec, "flags") };
    int rc = driver_apply_flags(*d, m, lookup_flag, &l, err);
    for (size_t i = 0; i < l.n; i++)
        strv_free(l.held[i]);
    if (rc < 0)
        return NULL;
    apply_engine(m, lab, h);
    return steal_pointer(&m);
}

/* ---- one host ---- */

struct runner;

struct job {
    struct runner *r;
    size_t idx;
    struct machine_ctx ctx; /* a copy whose progress names the host */
};

struct runner {
    const struct machine_ctx *ctx;
    const struct lab *lab;
    const struct lab_up_opts *opts;
    atomic_bool aborted; /* a host failed under --abort-on-failure */
    bool *made;          /* the host's machine was created by this run (each by its worker) */
    struct lab_result *results;
    enum { PENDING, RUNNING, OK, FAILED } *state;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_mutex_t print_mu;
};

static void job_say(struct job *j, const char *step)
{
    struct runner *r = j->r;
    if (r->opts->progress == NULL)
        return;
    pthread_mutex_lock(&r->print_mu);
    r->opts->progress(r->opts->opaque, r->lab->hosts[j->idx].name, step);
    pthread_mutex_unlock(&r->print_mu);
}

static void job_progress(void *opaque, const char *step)
{
    job_say(opaque, step);
}

/* Why hosts stop being worked on, or NULL while the run goes on. */
static const char *stop_reason(struct runner *r)
{
    if (r->opts->interrupt != NULL && atomic_load(r->opts->interrupt) != 0)
        return "interrupted";
    if (atomic_load(&r->aborted))
        return "stopped: another host failed (--abort-on-failure)";
    return NULL;
}

/* Called between a host's steps: the run was stopped, so this host stops here. */
static int check_stop(struct job *j, struct merr *err)
{
    const char *why = stop_reason(j->r);
    return why != NULL ? merr_set(err, MERR_BUSY, 0, "%s", why) : 0;
}

static int run_setup(struct job *j, const struct machine *m, struct merr *err)
{
    const struct lab *lab = j->r->lab;
    const json_t *setup = json_object_get(lab->hosts[j->idx].spec, "setup");
    json_t *files = json_object_get(setup, "files"), *run = json_object_get(setup, "run");
    size_t i;
    json_t *v;
    if (json_array_size(files) > 0) {
        auto_ssh_conn struct ssh_conn *c = NULL;
        if (machine_ssh_connect(&j->ctx, m, &c, err) < 0)
            return merr_prefix(err, "setup");
        json_array_foreach(files, i, v) {
            const char *src = json_string_value(json_object_get(v, "src"));
            const char *dest = json_string_value(json_object_get(v, "dest"));
            auto_free char *local = src[0] == '/' ? xstrdup(src) : xasprintf("%s/%s", lab->dir, src);
            auto_free char *say = xasprintf("setup: copying %s to %s", src, dest);
            job_say(j, say);
            if (check_stop(j, err) < 0)
                return -1;
            struct stat st;
            bool dir = stat(local, &st) == 0 && S_ISDIR(st.st_mode);
            if (ssh_upload(c, local, dest, dir, err) < 0)
                return merr_prefix(err, "setup.files %s", src);
        }
    }
    if (check_stop(j, err) < 0 ||
        lab_load_images(&j->ctx, lab, &lab->hosts[j->idx], m, job_progress, j, err) < 0)
        return -1;
    json_array_foreach(run, i, v) {
        auto_free char *say = xasprintf("setup: run %zu/%zu", i + 1, json_array_size(run));
        job_say(j, say);
        if (check_stop(j, err) < 0)
            return -1;
        auto_free char *out = machine_ssh_output(&j->ctx, m, json_string_value(v), err);
        if (out == NULL)
            return merr_prefix(err, "setup.run '%s'", json_string_value(v));
    }
    return 0;
}

static int save_spec(const struct machine_ctx *ctx, const struct lab *lab, const struct lab_host *h,
                     struct merr *err)
{
    auto_machine struct machine *m = store_load_machine(&ctx->store, h->name, err);
    if (m == NULL)
        return -1;
    apply_engine(m, lab, h);
    return store_save_machine(&ctx->store, m, err);
}

static int do_host(struct job *j, struct lab_result *res, struct merr *err)
{
    const struct lab *lab = j->r->lab;
    const struct lab_host *h = &lab->hosts[j->idx];
    struct merr none = MERR_INIT;
    auto_machine struct machine *old = store_load_machine(&j->ctx.store, h->name, &none);
    if (old == NULL && none.code != MERR_NOT_FOUND) {
        *err = none;
        return -1;
    }
    if (old != NULL && strcmp(json_string_value(json_object_get(old->lab, "Name")) ?: "", lab->name) != 0)
        return merr_set(err, MERR_EXISTS, 0,
                        "a machine named '%s' exists and is not part of lab '%s'", h->name,
                        lab->name);
    const json_t *recorded = old != NULL ? json_object_get(old->lab, "Spec") : NULL;
    if (old != NULL && strcmp(old->status, MACHINE_STATUS_CREATED) != 0)
        recorded = json_null(); /* a failed create: made again */
    res->action = old != NULL && json_is_null(recorded) ? LAB_RECREATE : lab_plan_host(h, recorded);
    job_say(j, lab_action_name(res->action));
    if (res->action == LAB_KEEP)
        return 0;
    if (check_stop(j, err) < 0)
        return -1;
    if (res->action == LAB_REPROVISION) {
        if (save_spec(&j->ctx, lab, h, err) < 0 || lifecycle_provision(&j->ctx, h->name, err) < 0)
            return -1;
        return run_setup(j, old, err);
    }
    if (res->action == LAB_RECREATE && lifecycle_rm(&j->ctx, h->name, true, err) < 0)
        return -1;
    const struct driver *d;
    auto_machine struct machine *m = machine_for(&j->ctx, lab, h, &d, err);
    if (m == NULL)
        return -1;
    j->r->made[j->idx] = true;
    if (lifecycle_create(&j->ctx, d, m, err) < 0)
        return -1;
    if (check_stop(j, err) < 0)
        return -1;
    return run_setup(j, m, err);
}

/* ---- the scheduler ---- */

static bool deps_state(struct runner *r, size_t i, bool *failed)
{
    const struct lab *lab = r->lab;
    bool ready = true;
    *failed = false;
    for (char **d = lab->hosts[i].depends_on; d != NULL && *d != NULL; d++)
        for (size_t k = 0; k < lab->n_hosts; k++) {
            if (strcmp(lab->hosts[k].name, *d) != 0)
                continue;
            *failed = *failed || r->state[k] == FAILED;
            ready = ready && r->state[k] == OK;
        }
    return ready;
}

/* The next host to run (its state set RUNNING), or n_hosts when there is none left. */
static size_t next_host(struct runner *r)
{
    size_t n = r->lab->n_hosts;
    for (;;) {
        bool running = false, progress = false;
        const char *stop = stop_reason(r);
        for (size_t i = 0; i < n; i++) {
            running = running || r->state[i] == RUNNING;
            if (r->state[i] != PENDING)
                continue;
            if (stop != NULL) {
                r->state[i] = FAILED;
                r->results[i].skipped = true;
                snprintf(r->results[i].error, sizeof r->results[i].error, "not started: %s", stop);
                continue;
            }
            bool failed;
            bool ready = deps_state(r, i, &failed);
            if (failed) {
                r->state[i] = FAILED;
                r->results[i].skipped = true;
                snprintf(r->results[i].error, sizeof r->results[i].error,
                         "not started: a host it depends on failed");
                progress = true;
                continue;
            }
            if (ready) {
                r->state[i] = RUNNING;
                return i;
            }
        }
        if (progress)
            continue;
        if (!running)
            return n;
        pthread_cond_wait(&r->cv, &r->mu);
    }
}

static void *worker(void *opaque)
{
    struct runner *r = opaque;
    pthread_mutex_lock(&r->mu);
    for (size_t i; (i = next_host(r)) < r->lab->n_hosts;) {
        pthread_mutex_unlock(&r->mu);
        struct job j = { .r = r, .idx = i, .ctx = *r->ctx };
        j.ctx.progress = job_progress;
        j.ctx.progress_opaque = &j;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        struct merr err = MERR_INIT;
        atomic_store(&r->results[i].running, true);
        int rc = do_host(&j, &r->results[i], &err);
        atomic_store(&r->results[i].running, false);
        if (rc < 0 && r->opts->abort_on_failure)
            atomic_store(&r->aborted, true);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        r->results[i].seconds = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
        if (rc < 0)
            snprintf(r->results[i].error, sizeof r->results[i].error, "%s", err.msg);
        r->results[i].done = rc == 0;
        job_say(&j, rc == 0 ? "done" : "failed");
        pthread_mutex_lock(&r->mu);
        r->state[i] = rc == 0 ? OK : FAILED;
        pthread_cond_broadcast(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* --abort-on-failure: the machines this run made (created or re-created, done or failed) are
 * removed again, last made first; what it kept or re-provisioned stays. */
static void roll_back(struct runner *r)
{
    for (size_t i = r->lab->n_hosts; i-- > 0;) {
        struct lab_result *res = &r->results[i];
        if (!r->made[i])
            continue;
        const char *name = r->lab->hosts[i].name;
        struct job j = { .r = r, .idx = i, .ctx = *r->ctx };
        struct merr err = MERR_INIT, none = MERR_INIT;
        auto_machine struct machine *m = store_load_machine(&r->ctx->store, name, &none);
        if (m == NULL)
            continue; /* stopped before its machine was recorded */
        job_say(&j, "rolling back");
        if (lifecycle_rm(r->ctx, name, true, &err) < 0) {
            snprintf(res->error, sizeof res->error, "roll back failed: %.900s", err.msg);
            job_say(&j, "roll back failed");
            continue;
        }
        res->rolled_back = true;
        res->done = false;
        if (res->error[0] == '\0')
            snprintf(res->error, sizeof res->error, "rolled back (--abort-on-failure)");
        job_say(&j, "rolled back");
    }
}

int lab_up(const struct machine_ctx *ctx, const struct lab *lab, const struct lab_up_opts *opts,
           struct lab_result *results, struct merr *err)
{
    if (lab_check(ctx, lab, err) < 0)
        return -1;
    if (opts->parallel < 1 || opts->parallel > LAB_MAX_PARALLEL)
        return merr_set(err, MERR_INVALID, 0, "--parallel must be from 1 to %d", LAB_MAX_PARALLEL);
    memset(results, 0, lab->n_hosts * sizeof *results);
    struct runner r = { .ctx = ctx, .lab = lab, .opts = opts, .results = results };
    r.state = xcalloc(lab->n_hosts, sizeof *r.state);
    r.made = xcalloc(lab->n_hosts, sizeof *r.made);
    pthread_mutex_init(&r.mu, NULL);
    pthread_cond_init(&r.cv, NULL);
    pthread_mutex_init(&r.print_mu, NULL);
    size_t nt = (size_t)opts->parallel < lab->n_hosts ? (size_t)opts->parallel : lab->n_hosts;
    pthread_t threads[LAB_MAX_PARALLEL];
    size_t started = 0;
    for (; started < nt; started++)
        if (pthread_create(&threads[started], NULL, worker, &r) != 0)
            break;
    if (started == 0)
        worker(&r); /* no thread could start: run them here, one at a time */
    for (size_t i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    if (atomic_load(&r.aborted))
        roll_back(&r);
    int failed = 0;
    for (size_t i = 0; i < lab->n_hosts; i++)
        failed += r.state[i] != OK || results[i].rolled_back;
    pthread_mutex_destroy(&r.mu);
    pthread_cond_destroy(&r.cv);
    pthread_mutex_destroy(&r.print_mu);
    free(r.state);
    free(r.made);
    return failed;
}

char **lab_members(const struct machine_ctx *ctx, const char *name, struct merr *err)
{
    auto_strv char **names = store_list_names(&ctx->store, err);
    if (names == NULL)
        return NULL;
    char **out = xcalloc(1, sizeof *out);
    for (size_t i = 0; names[i] != NULL; i++) {
        struct merr ignored = MERR_INIT;
        auto_machine struct machine *m = store_load_machine(&ctx->store, names[i], &ignored);
        const char *lab = m != NULL ? json_string_value(json_object_get(m->lab, "Name")) : NULL;
        if (lab != NULL && strcmp(lab, name) == 0)
            out = strv_push(out, names[i]);
    }
    return out;
}
