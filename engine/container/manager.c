/* Container records on disk and in memory: lookup, create, remove, list, recovery. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "strv.h"
#include "manager-priv.h"
#include "events/events.h"
#include "runtime/runtime.h"
#include "startopts.h"
#include "defaults.h"

#define RECORD_FILE "record.json"
#define RECORD_MAX (8u << 20)

int64_t mgr_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void mgr_random_hex(char *out, size_t nbytes)
{
    unsigned char buf[64];
    if (nbytes > sizeof buf)
        nbytes = sizeof buf;
    size_t got = 0;
    while (got < nbytes) {
        ssize_t r = getrandom(buf + got, nbytes - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            abort();
        }
        got += (size_t)r;
    }
    for (size_t i = 0; i < nbytes; i++)
        sprintf(out + 2 * i, "%02x", buf[i]);
}

static struct ctr_entry *entry_new(const struct ctr_manager *m, struct container *c)
{
    struct ctr_entry *e = xcalloc(1, sizeof *e);
    e->c = c;
    e->dir = path_join(m->root, c->id);
    e->log_path = xasprintf("%s/%s-json.log", e->dir, c->id);
    e->rootfs = path_join(e->dir, "rootfs");
    e->upper = path_join(e->dir, "upper");
    e->work = path_join(e->dir, "work");
    e->stdin_w = e->pty_master = e->out_r = e->err_r = -1;
    e->pty_slave = e->stdin_r = -1;
    e->mon_fd = -1;
    e->refs = 1; /* the manager's list */
    pthread_mutex_init(&e->out_lock, NULL);
    return e;
}

static void entry_free(struct ctr_entry *e)
{
    if (e == NULL)
        return;
    container_free(e->c);
    free(e->dir);
    free(e->log_path);
    free(e->rootfs);
    free(e->upper);
    free(e->work);
    if (e->log != NULL)
        fclose(e->log);
    pthread_mutex_destroy(&e->out_lock);
    free(e);
}

void mgr_entry_unref_locked(struct ctr_manager *m, struct ctr_entry *e)
{
    if (--e->refs == 0)
        entry_free(e);
}

int ctr_manager_new(const struct ctr_manager_config *cfg, struct ctr_manager **out, struct merr *err)
{
    if (fs_mkdir_p(cfg->root, 0700, err) < 0)
        return -1;
    struct ctr_manager *m = xcalloc(1, sizeof *m);
    pthread_mutex_init(&m->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->changed, &ca);
    pthread_condattr_destroy(&ca);
    m->root = xstrdup(cfg->root);
    m->rt = cfg->rt;
    m->images = cfg->images;
    m->layers = cfg->layers != NULL ? cfg->layers : &layer_driver_overlay;
    m->default_ulimits = cfg->default_ulimits;
    m->n_default_ulimits = cfg->n_default_ulimits;
    m->default_log_opts = cfg->default_log_opts;
    m->default_log_driver = cfg->default_log_driver;
    m->net = cfg->net;
    m->log = cfg->log;
    m->volumes = cfg->volumes;
    m->events = cfg->events;
    m->live_restore = !cfg->no_live_restore;
    *out = m;
    return 0;
}

void ctr_manager_free(struct ctr_manager *m)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->n_entries; i++) {
        struct ctr_entry *e = m->entries[i];
        struct merr kerr;
        /* --live-restore=false: containers stop with the engine (their monitors record it) */
        if (e->rt != NULL && !m->live_restore && rt_kill(e->rt, SIGKILL, &kerr) < 0)
            mlog_debug(m->log, "kill %s: %s", e->c->id, kerr.msg);
        if (e->rt != NULL)
            rt_container_release(e->rt); /* leave it running */
        e->rt = NULL;
        run_close_subs(e);
        mgr_entry_unref_locked(m, e);
    }
    /* health threads see their run over (rt is NULL) and leave; a probe in flight is given
     * a bounded moment */
    pthread_cond_broadcast(&m->changed);
    struct timespec until = clock_deadline_ts(5000);
    while (m->health_threads > 0 &&
           pthread_cond_timedwait(&m->changed, &m->lock, &until) != ETIMEDOUT)
        ;
    free(m->entries);
    exec_free_all(m);
    pthread_mutex_unlock(&m->lock);
    free(m->root);
    free(m);
}

struct ctr_entry *mgr_find_locked(struct ctr_manager *m, const char *ref, struct merr *err)
{
    if (ref == NULL || ref[0] == '\0') {
        merr_set(err, MERR_INVALID, 0, "no container name or ID given");
        return NULL;
    }
    const char *name = ref[0] == '/' ? ref + 1 : ref;
    for (size_t i = 0; i < m->n_entries; i++)
        if (strcmp(m->entries[i]->c->id, ref) == 0 || strcmp(m->entries[i]->c->name, name) == 0)
            return m->entries[i];
    size_t len = strlen(ref);
    struct ctr_entry *found = NULL;
    for (size_t i = 0; len > 0 && len < CTR_ID_LEN && i < m->n_entries; i++) {
        if (strncmp(m->entries[i]->c->id, ref, len) != 0)
            continue;
        if (found != NULL) {
            merr_set(err, MERR_INVALID, 0, "multiple IDs found with provided prefix: %s", ref);
            return NULL;
        }
        found = m->entries[i];
    }
    if (found == NULL)
        merr_set(err, MERR_NOT_FOUND, 0, "No such container: %s", ref);
    return found;
}

int mgr_persist_locked(struct ctr_manager *m, struct ctr_entry *e, struct merr *err)
{
    json_t *j = container_to_json(e->c);
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (text == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot serialise container %s", e->c->id);
    auto_free char *path = path_join(e->dir, RECORD_FILE);
    int rc = fs_write_atomic(path, text, strlen(text), 0600, err);
    free(text);
    return rc;
}

void mgr_emit(struct ctr_manager *m, const struct container *c, const char *action, json_t *extra)
{
    if (m->events == NULL) {
        json_decref(extra);
        return;
    }
    json_t *attrs = json_is_object(c->plan.labels) ? json_deep_copy(c->plan.labels) : json_object();
    json_object_set_new(attrs, "image", json_string(c->image_ref));
    json_object_set_new(attrs, "name", json_string(c->name));
    if (extra != NULL)
        json_object_update(attrs, extra);
    json_decref(extra);
    evt_emit(m->events, "container", action, c->id, attrs);
}

static void add_entry_locked(struct ctr_manager *m, struct ctr_entry *e)
{
    struct ctr_entry **n = realloc(m->entries, (m->n_entries + 1) * sizeof *n);
    if (n == NULL)
        abort();
    m->entries = n;
    m->entries[m->n_entries++] = e;
}

static void drop_entry_locked(struct ctr_manager *m, struct ctr_entry *e)
{
    for (size_t i = 0; i < m->n_entries; i++)
        if (m->entries[i] == e) {
            memmove(&m->entries[i], &m->entries[i + 1],
                    (m->n_entries - i - 1) * sizeof *m->entries);
            m->n_entries--;
            break;
        }
}

static bool name_taken_locked(struct ctr_manager *m, const char *name, const char **by)
{
    for (size_t i = 0; i < m->n_entries; i++)
        if (strcmp(m->entries[i]->c->name, name) == 0) {
            *by = m->entries[i]->c->id;
            return true;
        }
    return false;
}

static char *generate_name(struct ctr_manager *m)
{
    static const char *const left[] = { "brave", "calm", "eager", "fond", "gifted", "happy",
                                        "jolly", "keen", "lucid", "merry", "nifty", "quirky",
                                        "sharp", "tender", "vivid", "witty" };
    static const char *const right[] = { "babbage", "curie", "darwin", "euler", "fermi",
                                         "galileo", "hopper", "kepler", "lovelace", "noether",
                                         "pascal", "ritchie", "shannon", "turing", "volta", "wing" };
    for (int attempt = 0; attempt < 64; attempt++) {
        unsigned char r[3];
        if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
            abort();
        char *name = attempt < 32 ? xasprintf("%s_%s", left[r[0] % 16], right[r[1] % 16])
                                  : xasprintf("%s_%s%d", left[r[0] % 16], right[r[1] % 16], r[2]);
        const char *by;
        if (!name_taken_locked(m, name, &by))
            return name;
        free(name);
    }
    char hex[17];
    mgr_random_hex(hex, 8);
    return xasprintf("ctr_%s", hex);
}

static int check_network_mode(const char *mode, struct merr *err)
{
    static const char *const ok[] = { "default", "bridge", "none", "host" };
    if (strncmp(mode, "container:", 10) == 0 && mode[10] != '\0')
        return 0;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strcmp(mode, ok[i]) == 0)
            return 0;
    return merr_set(err, MERR_NOT_FOUND, 0, "network %s not found", mode);
}

int ctr_create(struct ctr_manager *m, const char *name, const json_t *body, char **id_out,
               struct merr *err)
{
    if (name != NULL && name[0] != '\0' && ctr_name_validate(name, err) < 0)
        return -1;
    struct container *c = xcalloc(1, sizeof *c);
    /* --log-driver, --log-opt */
    json_t *merged = ctr_log_defaults_apply(body, m->default_log_driver, m->default_log_opts);
    c->config = ctr_config_from_create(merged, err);
    json_decref(merged);
    if (c->config == NULL || startopts_check_create(m->rt, c->config, err) < 0 ||
        (m->net.create == NULL && check_network_mode(c->config->network_mode, err) < 0)) {
        container_free(c);
        return -1;
    }
    json_t *image_config = NULL;
    char **lower = NULL;
    if (m->images.resolve(m->images.data, c->config->image, &c->image_id, &image_config, &lower,
                          err) < 0) {
        if (err->code == MERR_NOT_FOUND)
            merr_set(err, MERR_NOT_FOUND, 0, "No such image: %s", c->config->image);
        container_free(c);
        return -1;
    }
    strv_free(lower);
    int rc = ctr_plan(c->config, image_config, &c->plan, err);
    if (rc < 0) {
        json_decref(image_config);
        container_free(c);
        return -1;
    }
    c->image_ref = xstrdup(c->config->image);
    mgr_random_hex(c->id, CTR_ID_LEN / 2);
    c->mounts = mounts_resolve(m, c->config->raw_config, c->config->raw_host_config, image_config,
                               c->id, err);
    if (c->mounts != NULL &&
        mounts_volumes_from(m, c->config->raw_host_config, c->mounts, c->id, err) < 0) {
        mounts_release(m, c->mounts, c->id, true);
        json_decref(c->mounts);
        c->mounts = NULL;
    }
    if (c->mounts == NULL) {
        json_decref(image_config);
        container_free(c);
        return -1;
    }
    c->created_ns = mgr_now_ns();
    c->state.status = CTR_CREATED;

    pthread_mutex_lock(&m->lock);
    const char *by = NULL;
    const char *wanted = name != NULL && name[0] != '\0' ? (name[0] == '/' ? name + 1 : name) : NULL;
    if (wanted != NULL && name_taken_locked(m, wanted, &by)) {
        merr_set(err, MERR_EXISTS, 0,
                 "Conflict. The container name \"/%s\" is already in use by container \"%s\". You "
                 "have to remove (or rename) that container to be able to reuse that name.",
                 wanted, by);
        pthread_mutex_unlock(&m->lock);
        mounts_release(m, c->mounts, c->id, true);
        json_decref(image_config);
        container_free(c);
        return -1;
    }
    c->name = wanted != NULL ? xstrdup(wanted) : generate_name(m);
    struct ctr_entry *e = entry_new(m, c);
    if (mkdir(e->dir, 0700) < 0) {
        merr_set(err, MERR_IO, errno, "cannot create '%s'", e->dir);
        pthread_mutex_unlock(&m->lock);
        mounts_release(m, c->mounts, c->id, true);
        json_decref(image_config);
        entry_free(e);
        return -1;
    }
    if (mgr_persist_locked(m, e, err) < 0 ||
        (m->net.create != NULL &&
         m->net.create(m->net.data, c->id, c->name, body, image_config, err) < 0)) {
        struct merr ignored;
        pty_devpts_release(e->dir);
        if (fs_remove_tree(e->dir, &ignored) < 0)
            mlog_warn(m->log, "%s", ignored.msg);
        pthread_mutex_unlock(&m->lock);
        mounts_release(m, c->mounts, c->id, true);
        json_decref(image_config);
        entry_free(e);
        return -1;
    }
    json_decref(image_config);
    add_entry_locked(m, e);
    mgr_emit(m, c, "create", NULL);
    *id_out = xstrdup(c->id);
    pthread_cond_broadcast(&m->changed);
    pthread_mutex_unlock(&m->lock);
    return 0;
}

int mgr_remove_locked(struct ctr_manager *m, struct ctr_entry *e, bool remove_volumes,
                      struct merr *err)
{
    e->c->state.status = CTR_REMOVING;
    exec_forget_container_locked(m, e->c->id);
    if (m->net.remove != NULL)
        m->net.remove(m->net.data, e->c->id);
    struct merr rm_err = MERR_INIT;
    pty_devpts_release(e->dir);
    if (fs_remove_tree(e->dir, &rm_err) < 0) {
        e->c->state.status = CTR_DEAD;
        free(e->c->state.error);
        e->c->state.error = xstrdup(rm_err.msg);
        return merr_set(err, MERR_IO, 0, "cannot remove container %s: %s", e->c->id, rm_err.msg);
    }
    drop_entry_locked(m, e);
    mounts_release(m, e->c->mounts, e->c->id, remove_volumes || e->c->config->auto_remove);
    mgr_emit(m, e->c, "destroy", NULL);
    e->removed = true;
    pthread_cond_broadcast(&m->changed);
    mgr_entry_unref_locked(m, e);
    return 0;
}

int ctr_remove(struct ctr_manager *m, const char *ref, bool force, bool remove_volumes,
               struct merr *err)
{
    pthread_mutex_lock(&m->lock);
    struct ctr_entry *e = mgr_find_locked(m, ref, err);
    int rc = -1;
    if (e == NULL)
        goto out;
    enum ctr_status st = e->c->state.status;
    if (st == CTR_REMOVING) {
        merr_set(err, MERR_EXISTS, 0, "removal of container %s is already in progress", ref);
        goto out;
    }
    if (st == CTR_RUNNING || st == CTR_PAUSED || st == CTR_RESTARTING || e->io_running) {
        if (!force) { /* dockerd 20.10's words, which docker-py's tests look for */
            bool paused = st == CTR_PAUSED;
            merr_set(err, MERR_EXISTS, 0,
                     "You cannot remove a %s container %s. %s the container before attempting "
                     "removal or force remove",
                     st == CTR_PAUSED || st == CTR_RESTARTING ? ctr_status_name(st) : "running",
                     e->c->id, paused ? "Unpause and then stop" : "Stop");
            goto out;
        }
        e->c->state.stopped_by_user = true;
        e->refs++;
        uint64_t seq = e->exit_seq;
        if (e->rt != NULL) {
            struct merr kerr;
            if (rt_kill(e->rt, SIGKILL, &kerr) < 0)
                mlog_debug(m->log, "kill %s: %s", e->c->id, kerr.msg);
            mgr_thaw_if_paused_locked(m, e, 0);
        }
        bool stopped = run_wait_stopped_locked(m, e, seq, 15000);
        bool gone = e->removed;
        mgr_entry_unref_locked(m, e);
        if (gone) { /* AutoRemove got there first */
            rc = 0;
            goto out;
        }
        if (!stopped) {
            merr_set(err, MERR_TIMEOUT, 0, "container %s did not stop in time", ref);
            goto out;
        }
    }
    rc = mgr_remove_locked(m, e, remove_volumes, err);
out:
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static int cmp_created_desc(const void *a, const void *b)
{
    const struct ctr_entry *x = *(struct ctr_entry *const *)a, *y = *(struct ctr_entry *const *)b;
    return x->c->created_ns < y->c->created_ns ? 1 : x->c->created_ns > y->c->created_ns ? -1 : 0;
}

json_t *ctr_list_json(struct ctr_manager *m, bool all, struct merr *err)
{
    json_t *arr = json_array();
    int64_t now = mgr_now_ns();
    pthread_mutex_lock(&m->lock);
    struct ctr_entry **sorted = xcalloc(m->n_entries + 1, sizeof *sorted);
    if (m->n_entries > 0)
        memcpy(sorted, m->entries, m->n_entries * sizeof *sorted);
    qsort(sorted, m->n_entries, sizeof *sorted, cmp_created_desc);
    for (size_t i = 0; i < m->n_entries; i++) {
        enum ctr_status st = sorted[i]->c->state.status;
        if (!all && st != CTR_RUNNING && st != CTR_PAUSED && st != CTR_RESTARTING)
            continue;
        json_t *item = ctr_ps_json(sorted[i]->c, now);
        if (m->net.describe != NULL)
            m->net.describe(m->net.data, sorted[i]->c->id, item, true);
        json_array_append_new(arr, item);
    }
    free(sorted);
    pthread_mutex_unlock(&m->lock);
    return arr;
}

json_t *ctr_inspect(struct ctr_manager *m, const char *ref, struct merr *err)
{
    pthread_mutex_lock(&m->lock);
    struct ctr_entry *e = mgr_find_locked(m, ref, err);
    json_t *j = e != NULL ? ctr_inspect_json(e->c, e->rootfs, e->log_path) : NULL;
    if (j != NULL && m->net.describe != NULL)
        m->net.describe(m->net.data, e->c->id, j, false);
    pthread_mutex_unlock(&m->lock);
    return j;
}

int ctr_lookup(struct ctr_manager *m, const char *ref, char id[65], bool *tty, struct merr *err)
{
    pthread_mutex_lock(&m->lock);
    struct ctr_entry *e = mgr_find_locked(m, ref, err);
    if (e != NULL) {
        memcpy(id, e->c->id, CTR_ID_LEN + 1);
        if (tty != NULL)
            *tty = e->c->config->tty;
    }
    pthread_mutex_unlock(&m->lock);
    return e != NULL ? 0 : -1;
}

bool ctr_image_in_use(struct ctr_manager *m, const char *image_id)
{
    pthread_mutex_lock(&m->lock);
    bool used = false;
    for (size_t i = 0; i < m->n_entries && !used; i++)
        used = strcmp(m->entries[i]->c->image_id, image_id) == 0;
    pthread_mutex_unlock(&m->lock);
    return used;
}

void ctr_counts(struct ctr_manager *m, long long *total, long long *running, long long *paused,
                long long *stopped)
{
    pthread_mutex_lock(&m->lock);
    *total = (long long)m->n_entries;
    *running = *paused = *stopped = 0;
    for (size_t i = 0; i < m->n_entries; i++) {
        enum ctr_status st = m->entries[i]->c->state.status;
        if (st == CTR_RUNNING || st == CTR_RESTARTING)
            (*running)++;
        else if (st == CTR_PAUSED)
            (*paused)++;
        else
            (*stopped)++;
    }
    pthread_mutex_unlock(&m->lock);
}

/* ---- recovery after an engine restart ---- */

static struct container *load_record(const char *dir, struct merr *err)
{
    auto_free char *path = path_join(dir, RECORD_FILE);
    auto_free char *text = NULL;
    size_t len = 0;
    if (fs_read_file(path, RECORD_MAX, &text, &len, err) < 0)
        return NULL;
    json_error_t jerr;
    json_t *j = json_loadb(text, len, 0, &jerr);
    if (j == NULL) {
        merr_set(err, MERR_CORRUPT, 0, "'%s': %s", path, jerr.text);
        return NULL;
    }
    struct container *c = container_from_json(j, err);
    json_decref(j);
    return c;
}

/* A container the dead engine was running: its output pipes died with the engine, so it is
 * stopped, cleaned up and marked exited with the reason. */
static void settle_orphan(struct ctr_manager *m, struct ctr_entry *e)
{
    struct ctr_state *st = &e->c->state;
    struct rt_state rs = { 0 };
    snprintf(rs.id, sizeof rs.id, "%s", e->c->id);
    rs.pid = st->pid;
    rs.start_time = st->rt_start_time;
    snprintf(rs.rootfs, sizeof rs.rootfs, "%s", e->rootfs);
    struct rt_container *rc = NULL;
    struct merr err = MERR_INIT;
    int alive = rt_adopt(m->rt, &rs, &rc, &err);
    const char *why = "the engine stopped while the container was running";
    if (alive == 1) {
        if (rt_stop(rc, SIGKILL, 0, 5000, &err) < 0)
            mlog_warn(m->log, "cannot stop orphaned container %s: %s", e->c->id, err.msg);
        if (rt_container_destroy(rc, &err) < 0)
            mlog_warn(m->log, "cannot clean up container %s: %s", e->c->id, err.msg);
        st->exit_code = 137;
    } else {
        if (alive < 0)
            mlog_warn(m->log, "cannot check container %s: %s", e->c->id, err.msg);
        st->exit_code = 255;
    }
    if (m->net.stop != NULL)
        m->net.stop(m->net.data, e->c->id);
    st->status = CTR_EXITED;
    st->pid = 0;
    st->finished_ns = mgr_now_ns();
    free(st->error);
    st->error = xstrdup(why);
}

/* dockerd's restore: every container that has run and whose policy says so (moby's
 * RestartManager.ShouldRestart) starts with the daemon, running before or not: `always` even
 * after a manual stop, `unless-stopped` unless stopped by hand, `on-failure` after a failure. */
static bool restart_after_recovery(const struct container *c)
{
    const struct ctr_state *st = &c->state;
    if (st->started_ns == 0)
        return false;
    switch (c->config->restart) {
    case RESTART_ALWAYS:
        return true;
    case RESTART_UNLESS_STOPPED:
        return !st->stopped_by_user;
    case RESTART_ON_FAILURE:
        return st->exit_code != 0 && (c->config->restart_max_retries == 0 ||
                                      st->restart_count < c->config->restart_max_retries);
    default:
        return false;
    }
}

/* A container that ran on through the engine's restart: its network (ports, DNS names) again,
 * its output thread on its monitor. */
static void recover_adopted_locked(struct ctr_manager *m, struct ctr_entry *e, int mon_fd)
{
    struct merr err = MERR_INIT;
    const char *mode = e->c->config->network_mode;
    struct mon_state ms = { 0 }; /* its monitor keeps the network's hold fds */
    if (monitor_read_state(e->dir, &ms, &err) < 0)
        ms.monitor_pid = 0;
    if (m->net.adopt != NULL && strcmp(mode, "host") != 0 && strcmp(mode, "none") != 0 &&
        strncmp(mode, "container:", 10) != 0 &&
        m->net.adopt(m->net.data, e->c->id, ms.monitor_pid, MON_FD_HOLD, &err) < 0)
        mlog_warn(m->log, "container %s: its network was not restored: %s", e->c->id, err.msg);
    run_adopted_locked(m, e, mon_fd);
}

int ctr_manager_recover(struct ctr_manager *m, struct merr *err)
{
    auto_closedir DIR *d = opendir(m->root);
    if (d == NULL)
        return merr_set(err, MERR_IO, errno, "cannot read '%s'", m->root);
    struct dirent *de;
    pthread_mutex_lock(&m->lock);
    while ((de = readdir(d)) != NULL) {
        if (strlen(de->d_name) != CTR_ID_LEN)
            continue;
        auto_free char *dir = path_join(m->root, de->d_name);
        struct merr lerr = MERR_INIT;
        struct container *c = load_record(dir, &lerr);
        if (c == NULL) {
            mlog_warn(m->log, "ignoring container %s: %s", de->d_name, lerr.msg);
            continue;
        }
        struct ctr_entry *e = entry_new(m, c);
        enum ctr_status st = c->state.status;
        bool was_running = st == CTR_RUNNING || st == CTR_PAUSED || st == CTR_RESTARTING;
        int mon_fd = -1;
        int how = was_running ? monitor_recover_locked(m, e, &mon_fd) : 0;
        bool adopted = how == 2;
        if (was_running && how == 0)
            settle_orphan(m, e);
        if (!adopted)
            pty_devpts_release(e->dir); /* left by an engine that died with it running */
        if (st == CTR_REMOVING || c->config->auto_remove) {
            pty_devpts_release(e->dir);
            if (fs_remove_tree(e->dir, &lerr) < 0)
                mlog_warn(m->log, "%s", lerr.msg);
            mounts_reref(m, c->mounts, c->id);
            mounts_release(m, c->mounts, c->id, c->config->auto_remove);
            entry_free(e);
            continue;
        }
        mounts_reref(m, c->mounts, c->id);
        add_entry_locked(m, e);
        if (adopted) {
            recover_adopted_locked(m, e, mon_fd);
            continue;
        }
        if (was_running && mgr_persist_locked(m, e, &lerr) < 0)
            mlog_warn(m->log, "%s", lerr.msg);
        if (restart_after_recovery(c) && run_start_locked(m, e, &lerr) < 0)
            mlog_warn(m->log, "cannot restart container %s: %s", c->id, lerr.msg);
    }
    pthread_mutex_unlock(&m->lock);
    return 0;
}
