#include "container.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fsutil.h"
#include "strv.h"

#define RECORD_VERSION 1

void container_free(struct container *c)
{
    if (c == NULL)
        return;
    free(c->name);
    free(c->image_id);
    free(c->image_ref);
    ctr_config_free(c->config);
    ctr_process_plan_release(&c->plan);
    free(c->state.error);
    json_decref(c->state.health.log);
    json_decref(c->mounts);
    free(c);
}

static json_t *strv_to_json(char *const *v)
{
    json_t *a = json_array();
    for (size_t i = 0; v != NULL && v[i] != NULL; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

json_t *container_to_json(const struct container *c)
{
    const struct ctr_state *st = &c->state;
    json_t *state = json_pack("{s:s,s:i,s:i,s:b,s:s,s:I,s:I,s:i,s:b,s:I}", "Status",
                              ctr_status_name(st->status), "Pid", st->pid, "ExitCode", st->exit_code,
                              "OOMKilled", st->oom_killed, "Error", st->error != NULL ? st->error : "",
                              "StartedNs", (json_int_t)st->started_ns, "FinishedNs",
                              (json_int_t)st->finished_ns, "RestartCount", st->restart_count,
                              "StoppedByUser", st->stopped_by_user, "StartTime",
                              (json_int_t)st->rt_start_time);
    json_t *plan = json_pack("{s:o,s:o,s:s,s:s,s:O,s:s}", "Argv", strv_to_json(c->plan.argv), "Env",
                             strv_to_json(c->plan.env), "Cwd", c->plan.cwd, "User", c->plan.user,
                             "Labels", c->plan.labels, "StopSignal", c->plan.stop_signal);
    json_object_set_new(plan, "Healthcheck", ctr_health_config_to_json(&c->plan.health));
    if (st->health.status != CTR_HEALTH_UNSET)
        json_object_set_new(state, "Health", ctr_health_state_json(&st->health));
    json_t *j = json_pack("{s:i,s:s,s:s,s:I,s:s,s:s,s:o,s:o,s:o}", "Version", RECORD_VERSION,
                          "Id", c->id, "Name", c->name, "CreatedNs", (json_int_t)c->created_ns,
                          "ImageID", c->image_id, "ImageRef", c->image_ref, "Spec",
                          ctr_config_to_json(c->config), "Plan", plan, "State", state);
    if (c->mounts != NULL)
        json_object_set(j, "Mounts", c->mounts);
    return j;
}

static char **json_strv(const json_t *a)
{
    char **v = xcalloc(1, sizeof *v);
    size_t i;
    json_t *e;
    json_array_foreach(a, i, e)
        if (json_is_string(e))
            v = strv_push(v, json_string_value(e));
    return v;
}

static int status_from_name(const char *s, enum ctr_status *out)
{
    for (int i = CTR_CREATED; i <= CTR_DEAD; i++)
        if (s != NULL && strcmp(ctr_status_name((enum ctr_status)i), s) == 0) {
            *out = (enum ctr_status)i;
            return 0;
        }
    return -1;
}

struct container *container_from_json(const json_t *j, struct merr *err)
{
    const char *id = json_string_value(json_object_get(j, "Id"));
    const char *name = json_string_value(json_object_get(j, "Name"));
    const char *image_id = json_string_value(json_object_get(j, "ImageID"));
    const char *image_ref = json_string_value(json_object_get(j, "ImageRef"));
    json_t *plan = json_object_get(j, "Plan");
    json_t *state = json_object_get(j, "State");
    if (id == NULL || strlen(id) != CTR_ID_LEN || name == NULL || image_id == NULL ||
        image_ref == NULL || !json_is_object(plan) || !json_is_object(state) ||
        json_integer_value(json_object_get(j, "Version")) != RECORD_VERSION) {
        merr_set(err, MERR_CORRUPT, 0, "container record is incomplete");
        return NULL;
    }
    struct container *c = xcalloc(1, sizeof *c);
    memcpy(c->id, id, CTR_ID_LEN + 1);
    c->name = xstrdup(name);
    c->image_id = xstrdup(image_id);
    c->image_ref = xstrdup(image_ref);
    c->created_ns = json_integer_value(json_object_get(j, "CreatedNs"));
    c->config = ctr_config_from_json(json_object_get(j, "Spec"), err);
    if (c->config == NULL) {
        container_free(c);
        return NULL;
    }
    c->plan.argv = json_strv(json_object_get(plan, "Argv"));
    c->plan.env = json_strv(json_object_get(plan, "Env"));
    const char *cwd = json_string_value(json_object_get(plan, "Cwd"));
    const char *user = json_string_value(json_object_get(plan, "User"));
    const char *sig = json_string_value(json_object_get(plan, "StopSignal"));
    c->plan.cwd = xstrdup(cwd != NULL ? cwd : "/");
    c->plan.user = xstrdup(user != NULL ? user : "");
    c->plan.stop_signal = xstrdup(sig != NULL ? sig : "SIGTERM");
    json_t *labels = json_object_get(plan, "Labels");
    c->plan.labels = json_is_object(labels) ? json_deep_copy(labels) : json_object();
    if (ctr_health_config_parse(json_object_get(plan, "Healthcheck"), NULL, &c->plan.health,
                                err) < 0) {
        err->code = MERR_CORRUPT;
        container_free(c);
        return NULL;
    }
    json_t *mounts = json_object_get(j, "Mounts");
    c->mounts = json_is_array(mounts) ? json_deep_copy(mounts) : json_array();

    struct ctr_state *st = &c->state;
    if (status_from_name(json_string_value(json_object_get(state, "Status")), &st->status) < 0) {
        merr_set(err, MERR_CORRUPT, 0, "container '%s' has an unknown status", id);
        container_free(c);
        return NULL;
    }
    st->pid = (int)json_integer_value(json_object_get(state, "Pid"));
    st->exit_code = (int)json_integer_value(json_object_get(state, "ExitCode"));
    st->oom_killed = json_is_true(json_object_get(state, "OOMKilled"));
    const char *error = json_string_value(json_object_get(state, "Error"));
    st->error = error != NULL && error[0] != '\0' ? xstrdup(error) : NULL;
    st->started_ns = json_integer_value(json_object_get(state, "StartedNs"));
    st->finished_ns = json_integer_value(json_object_get(state, "FinishedNs"));
    st->restart_count = (int)json_integer_value(json_object_get(state, "RestartCount"));
    st->stopped_by_user = json_is_true(json_object_get(state, "StoppedByUser"));
    st->rt_start_time = (uint64_t)json_integer_value(json_object_get(state, "StartTime"));
    ctr_health_state_from_json(json_object_get(state, "Health"), &st->health);
    return c;
}
