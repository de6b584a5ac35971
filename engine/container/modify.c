/* docker pause, unpause, rename, update and prune: changes to existing containers (the
 * process lifecycle itself is in lifecycle.c). */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "manager-priv.h"
#include "runtime/runtime.h"

int ctr_pause(struct ctr_manager *m, const char *ref, struct merr *err)
{
    pthread_mutex_lock(&m->lock);
    struct ctr_entry *e = mgr_find_locked(m, ref, err);
    int rc = -1;
    if (e == NULL)
        goto out;
    struct container *c = e->c;
    if (c->state.status == CTR_PAUSED) {
        merr_set(err, MERR_EXISTS, 0, "container %s is already paused", c->id);
        goto out;
    }
    if (c->state.status == CTR_RESTARTING) {
        merr_set(err, MERR_EXISTS, 0,
                 "Container %s is restarting, wait until the container is running", c->id);
        goto out;
    }
    if (e->rt == NULL || c->state.status != CTR_RUNNING) {
        merr_set(err, MERR_EXISTS, 0, "container %s is not running", c->id);
        goto out;
    }
    if (rt_pause(e->rt, err) < 0) {
        struct merr ignored;
        if (rt_resume(e->rt, &ignored) < 0)
            mlog_warn(m->log, "cannot thaw %s again: %s", c->id, ignored.msg);
        merr_prefix(err, "cannot pause container %s", c->id);
        goto out;
    }
    c->state.status = CTR_PAUSED;
    struct merr perr;
    if (mgr_persist_locked(m, e, &perr) < 0)
        mlog_warn(m->log, "%s", perr.msg);
    mgr_emit(m, c, "pause", NULL);
    pthread_cond_broadcast(&m->changed);
    rc = 0;
out:
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static int unpause_locked(struct ctr_manager *m, struct ctr_entry *e, struct merr *err)
{
    if (rt_resume(e->rt, err) < 0)
        return merr_prefix(err, "Cannot unpause container %s", e->c->id);
    e->c->state.status = CTR_RUNNING;
    struct merr perr;
    if (mgr_persist_locked(m, e, &perr) < 0)
        mlog_warn(m->log, "%s", perr.msg);
    mgr_emit(m, e->c, "unpause", NULL);
    pthread_cond_broadcast(&m->changed);
    return 0;
}

int ctr_unpause(struct ctr_manager *m, const char *ref, struct merr *err)
{
    pthread_mutex_lock(&m->lock);
    struct ctr_entry *e = mgr_find_locked(m, ref, err);
    int rc = -1;
    if (e != NULL && (e->rt == NULL || e->c->state.status != CTR_PAUSED))
        merr_set(err, MERR_INTERNAL, 0, "Container %s is not paused", e->c->id); /* 500, as dockerd */
    else if (e != NULL)
        rc = unpause_locked(m, e, err);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

void mgr_thaw_if_paused_locked(struct ctr_manager *m, struct ctr_entry *e, int sig)
{
    if (e->rt == NULL || e->c->state.status != CTR_PAUSED)
        return;
    /* dockerd thaws for SIGKILL and for the stop signal (any signal without one set) */
    const char *stop = e->c->config->stop_signal;
    if (sig != 0 && sig != SIGKILL && stop != NULL && stop[0] != '\0' &&
        ctr_signal_parse(stop) != sig)
        return;
    struct merr err = MERR_INIT;
    if (unpause_locked(m, e, &err) < 0)
        mlog_warn(m->log, "%s", err.msg);
}

int ctr_rename(struct ctr_manager *m, const char *ref, const char *new_name, struct merr *err)
{
    if (new_name == NULL || new_name[0] == '\0' || strcmp(new_name, "/") == 0)
        return merr_set(err, MERR_INVALID, 0, "Neither old nor new names may be empty");
    if (ctr_name_validate(new_name, err) < 0)
        return -1;
    const char *wanted = new_name[0] == '/' ? new_name + 1 : new_name;
    auto_free char *old_slash = NULL; /* declared before the first goto: its cleanup runs at out */
    pthread_mutex_lock(&m->lock);
    struct ctr_entry *e = mgr_find_locked(m, ref, err);
    int rc = -1;
    if (e == NULL)
        goto out;
    struct container *c = e->c;
    if (strcmp(c->name, wanted) == 0) {
        merr_set(err, MERR_INVALID, 0, "Renaming a container with the same name as its current name");
        goto out;
    }
    for (size_t i = 0; i < m->n_entries; i++)
        if (strcmp(m->entries[i]->c->name, wanted) == 0) {
            merr_set(err, MERR_EXISTS, 0,
                     "Conflict. The container name \"/%s\" is already in use by container "
                     "\"%s\". You have to remove (or rename) that container to be able to reuse "
                     "that name.",
                     wanted, m->entries[i]->c->id);
            goto out;
        }
    char *old = c->name;
    c->name = xstrdup(wanted);
    if (mgr_persist_locked(m, e, err) < 0) {
        free(c->name);
        c->name = old;
        goto out;
    }
    old_slash = xasprintf("/%s", old);
    free(old);
    mgr_emit(m, c, "rename", json_pack("{s:s}", "oldName", old_slash));
    pthread_cond_broadcast(&m->changed);
    rc = 0;
out:
    pthread_mutex_unlock(&m->lock);
    return rc;
}

/* ---- update ---- */

/* The resource fields docker update may change here; a zero value means "leave it". */
static const char *const updatable[] = { "Memory",    "MemorySwap", "NanoCpus", "CpuQuota",
                                         "CpuPeriod", "CpuShares",  "PidsLimit", NULL };

static bool value_set(const json_t *v)
{
    if (v == NULL || json_is_null(v) || json_is_false(v))
        return false;
    if (json_is_integer(v))
        return json_integer_value(v) != 0;
    if (json_is_real(v))
        return json_real_value(v) != 0;
    if (json_is_string(v))
        return json_string_length(v) > 0;
    if (json_is_array(v))
        return json_array_size(v) > 0;
    if (json_is_object(v))
        return json_object_size(v) > 0;
    return true;
}

/* The request's HostConfig fields merged over the container's; refuses what cannot change. */
static json_t *merge_update(const json_t *old_hc, const json_t *body, bool *restart_changed,
                            struct merr *err)
{
    json_t *hc = json_deep_copy(old_hc);
    *restart_changed = false;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)body, key, v) {
        bool known = false;
        for (size_t i = 0; updatable[i] != NULL && !known; i++)
            known = strcmp(key, updatable[i]) == 0;
        if (known) {
            if (value_set(v))
                json_object_set(hc, key, v);
            continue;
        }
        if (strcmp(key, "RestartPolicy") == 0) {
            const char *name = json_string_value(json_object_get(v, "Name"));
            if (name != NULL && name[0] != '\0') {
                json_object_set(hc, key, v);
                *restart_changed = true;
            }
            continue;
        }
        if (value_set(v)) {
            json_decref(hc);
            merr_set(err, MERR_INVALID, 0,
                     "updating %s is not supported by machine-engine", key);
            return NULL;
        }
    }
    return hc;
}

static struct rt_resources resources_of(const struct ctr_config *c)
{
    return (struct rt_resources){ .memory = c->memory,
                                  .memory_swap = c->memory_swap,
                                  .nano_cpus = c->nano_cpus,
                                  .cpu_quota = c->cpu_quota,
                                  .cpu_period = c->cpu_period,
                                  .cpu_shares = c->cpu_shares,
                                  .pids_limit = c->pids_limit };
}

static int update_locked(struct ctr_manager *m, struct ctr_entry *e, const json_t *body,
                         struct merr *err)
{
    struct container *c = e->c;
    bool restart_changed;
    json_t *hc = merge_update(c->config->raw_host_config, body, &restart_changed, err);
    if (hc == NULL)
        return -1;
    if (restart_changed && c->config->auto_remove) {
        json_decref(hc);
        return merr_set(err, MERR_INVALID, 0,
                        "Restart policy cannot be updated because AutoRemove is enabled for the "
                        "container");
    }
    json_t *rec = json_pack("{s:O,s:o}", "Config", c->config->raw_config, "HostConfig", hc);
    struct ctr_config *next = ctr_config_from_json(rec, err);
    json_decref(rec);
    if (next == NULL) {
        err->code = MERR_INVALID;
        return -1;
    }
    if (e->rt != NULL) {
        struct rt_resources res = resources_of(next);
        if (rt_update_resources(e->rt, &res, err) < 0) {
            ctr_config_free(next);
            return merr_prefix(err, "Cannot update container %s", c->id);
        }
    }
    ctr_config_free(c->config);
    c->config = next;
    struct merr perr;
    if (mgr_persist_locked(m, e, &perr) < 0)
        mlog_warn(m->log, "%s", perr.msg);
    mgr_emit(m, c, "update", NULL);
    return 0;
}

int ctr_update(struct ctr_manager *m, const char *ref, const json_t *body, struct merr *err)
{
    if (!json_is_object(body))
        return merr_set(err, MERR_INVALID, 0, "the update body must be a JSON object");
    pthread_mutex_lock(&m->lock);
    struct ctr_entry *e = mgr_find_locked(m, ref, err);
    int rc = -1;
    if (e != NULL && (e->c->state.status == CTR_REMOVING || e->c->state.status == CTR_DEAD))
        merr_set(err, MERR_EXISTS, 0, "Cannot update container %s: container is marked for removal and cannot be \"update\"", e->c->id);
    else if (e != NULL)
        rc = update_locked(m, e, body, err);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

/* ---- prune ---- */

json_t *ctr_prune(struct ctr_manager *m, ctr_prune_match_fn match, void *data, int64_t *reclaimed,
                  struct merr *err)
{
    json_t *deleted = json_array();
    *reclaimed = 0;
    pthread_mutex_lock(&m->lock);
    for (size_t i = m->n_entries; i-- > 0;) {
        struct ctr_entry *e = m->entries[i];
        enum ctr_status st = e->c->state.status;
        if (st == CTR_RUNNING || st == CTR_PAUSED || st == CTR_RESTARTING ||
            st == CTR_REMOVING || e->io_running || e->rt != NULL)
            continue;
        if (!match(data, e->c->created_ns, e->c->plan.labels))
            continue;
        char id[CTR_ID_LEN + 1];
        memcpy(id, e->c->id, sizeof id);
        int64_t size = ctr_dir_size(e->upper);
        struct merr rerr = MERR_INIT;
        if (mgr_remove_locked(m, e, false, &rerr) < 0) {
            mlog_warn(m->log, "prune: %s", rerr.msg);
            continue;
        }
        *reclaimed += size;
        json_array_append_new(deleted, json_string(id));
    }
    pthread_mutex_unlock(&m->lock);
    (void)err;
    return deleted;
}
