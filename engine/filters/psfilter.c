/* GET /containers/json filters, in dockerd's order (moby daemon/list.go). */
#include "filters.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters/args.h"
#include "error.h"
#include "fsutil.h"

static const char *const ps_filter_names[] = { "ancestor", "before", "exited",  "id",
                                               "label",    "name",   "status",  "health",
                                               "since",    "volume", "network", "is-task",
                                               "publish",  "expose", NULL };

static bool one_of(const char *v, const char *const *set)
{
    for (; *set != NULL; set++)
        if (strcmp(v, *set) == 0)
            return true;
    return false;
}

static const char *const states[] = { "created", "running", "paused", "restarting",
                                      "removing", "exited", "dead", NULL };
static const char *const healths[] = { "none", "starting", "healthy", "unhealthy", NULL };

/* "80", "80/udp", "8000-8010/tcp" → [lo, hi] and the protocol. */
static int port_range_parse(const char *key, const char *value, long *lo, long *hi,
                            char proto[8], struct merr *err)
{
    if (strchr(value, ':') != NULL)
        return merr_set(err, MERR_INVALID, 0, "filter for '%s' should not contain ':': %s", key,
                        value);
    const char *slash = strchr(value, '/');
    snprintf(proto, 8, "%s", slash != NULL ? slash + 1 : "tcp");
    auto_free char *ports = slash != NULL ? strndup(value, (size_t)(slash - value))
                                          : xstrdup(value);
    char *end;
    errno = 0;
    *lo = strtol(ports, &end, 10);
    *hi = *lo;
    if (end != ports && *end == '-') {
        const char *h = end + 1;
        *hi = strtol(h, &end, 10);
        if (end == h)
            end = (char *)h - 1;
    }
    if (errno != 0 || end == ports || *end != '\0' || *lo < 0 || *hi > 65535 || *lo > *hi ||
        (strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0 && strcmp(proto, "sctp") != 0))
        return merr_set(err, MERR_INVALID, 0, "error while looking up for %s %s: invalid port",
                        key, value);
    return 0;
}

int flt_containers_validate(const struct api_filters *f, struct merr *err)
{
    if (api_filters_validate(f, ps_filter_names, err) < 0)
        return -1;
    char *const *v;
    for (v = api_filters_get(f, "exited"); v != NULL && *v != NULL; v++) {
        char *end;
        errno = 0;
        long code = strtol(*v, &end, 10);
        (void)code;
        if (errno != 0 || end == *v || *end != '\0')
            return merr_set(err, MERR_INVALID, 0,
                            "invalid filter 'exited=%s': strconv.Atoi: parsing \"%s\": invalid "
                            "syntax",
                            *v, *v);
    }
    for (v = api_filters_get(f, "status"); v != NULL && *v != NULL; v++)
        if (!one_of(*v, states))
            return merr_set(err, MERR_INVALID, 0,
                            "invalid filter 'status=%s': invalid value for state (%s): must be "
                            "one of created, running, paused, restarting, removing, exited, dead",
                            *v, *v);
    for (v = api_filters_get(f, "health"); v != NULL && *v != NULL; v++)
        if (!one_of(*v, healths))
            return merr_set(err, MERR_INVALID, 0,
                            "invalid filter 'health=%s': invalid value for health (%s): must be "
                            "one of none, starting, healthy, unhealthy",
                            *v, *v);
    bool is_task;
    if (flt_bool(f, "is-task", false, &is_task, err) < 0)
        return -1;
    const char *const port_keys[] = { "publish", "expose" };
    for (size_t k = 0; k < 2; k++)
        for (v = api_filters_get(f, port_keys[k]); v != NULL && *v != NULL; v++) {
            long lo, hi;
            char proto[8];
            if (port_range_parse(port_keys[k], *v, &lo, &hi, proto, err) < 0)
                return -1;
        }
    return 0;
}

static bool port_listed(char *const *values, const char *key, long port, const char *proto)
{
    for (size_t i = 0; values != NULL && values[i] != NULL; i++) {
        long lo, hi;
        char p[8];
        if (port_range_parse(key, values[i], &lo, &hi, p, NULL) == 0 && strcmp(p, proto) == 0 &&
            lo <= port && port <= hi)
            return true;
    }
    return false;
}

static bool ports_match(const struct api_filters *f, const json_t *e)
{
    char *const *publish = api_filters_get(f, "publish");
    char *const *expose = api_filters_get(f, "expose");
    if (publish == NULL && expose == NULL)
        return true;
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(e, "Ports"), i, p) {
        const char *type = json_string_value(json_object_get(p, "Type"));
        if (type == NULL)
            type = "tcp";
        long pub = (long)json_integer_value(json_object_get(p, "PublicPort"));
        long priv = (long)json_integer_value(json_object_get(p, "PrivatePort"));
        if (port_listed(publish, "publish", pub, type) || port_listed(expose, "expose", priv, type))
            return true;
    }
    return false;
}

static bool volume_match(char *const *values, const json_t *e)
{
    if (values == NULL)
        return true;
    for (size_t i = 0; values[i] != NULL; i++) {
        size_t k;
        json_t *m;
        json_array_foreach(json_object_get(e, "Mounts"), k, m) {
            const char *name = json_string_value(json_object_get(m, "Name"));
            const char *src = json_string_value(json_object_get(m, "Source"));
            const char *dst = json_string_value(json_object_get(m, "Destination"));
            const char *key = name != NULL && name[0] != '\0' ? name : src;
            if ((dst != NULL && dst[0] != '\0' && strcmp(dst, values[i]) == 0) ||
                (key != NULL && strcmp(key, values[i]) == 0))
                return true;
        }
    }
    return false;
}

static bool network_match(char *const *values, const json_t *e)
{
    if (values == NULL)
        return true;
    const json_t *nets = json_object_get(json_object_get(e, "NetworkSettings"), "Networks");
    for (size_t i = 0; values[i] != NULL; i++) {
        if (json_object_get(nets, values[i]) != NULL)
            return true;
        const char *name;
        json_t *n;
        json_object_foreach((json_t *)nets, name, n) {
            const char *nid = json_string_value(json_object_get(n, "NetworkID"));
            if (nid != NULL && strncmp(nid, values[i], strlen(values[i])) == 0)
                return true;
        }
    }
    return false;
}

static bool name_match(char *const *values, const json_t *e)
{
    if (values == NULL)
        return true;
    const char *name = json_string_value(json_array_get(json_object_get(e, "Names"), 0));
    if (name == NULL)
        return false;
    return flt_match(values, name) || flt_match(values, name[0] == '/' ? name + 1 : name);
}

static bool exited_match(char *const *values, const json_t *facts)
{
    if (values == NULL)
        return true;
    bool running = json_is_true(json_object_get(facts, "Running"));
    bool started = json_is_true(json_object_get(facts, "Started"));
    long long code = json_integer_value(json_object_get(facts, "ExitCode"));
    for (size_t i = 0; values[i] != NULL; i++)
        if (strtoll(values[i], NULL, 10) == code && !running && started)
            return true;
    return false;
}

/* Filters that look at one container, after before/since, all and limit. */
static bool container_match(const struct flt_containers *o, const json_t *e, const json_t *facts)
{
    const struct api_filters *f = o->f;
    const char *id = json_string_value(json_object_get(e, "Id"));
    if (!name_match(api_filters_get(f, "name"), e))
        return false;
    char *const *ids = api_filters_get(f, "id");
    bool id_ok = ids == NULL;
    for (size_t i = 0; ids != NULL && ids[i] != NULL && !id_ok; i++)
        id_ok = id != NULL && strncmp(id, ids[i], strlen(ids[i])) == 0;
    if (!id_ok)
        return false;
    bool is_task = false;
    struct merr ignored;
    if (api_filters_get(f, "is-task") != NULL &&
        (flt_bool(f, "is-task", false, &is_task, &ignored) < 0 || is_task))
        return false; /* no container of this engine is a swarm task */
    if (!flt_match_labels(api_filters_get(f, "label"), json_object_get(e, "Labels")))
        return false;
    if (!exited_match(api_filters_get(f, "exited"), facts))
        return false;
    if (!flt_match(api_filters_get(f, "status"), json_string_value(json_object_get(e, "State"))))
        return false;
    if (!api_filters_match(f, "health", json_string_value(json_object_get(facts, "Health"))))
        return false;
    if (!volume_match(api_filters_get(f, "volume"), e))
        return false;
    if (o->ancestor_ids != NULL &&
        json_object_get(o->ancestor_ids, json_string_value(json_object_get(e, "ImageID"))) == NULL)
        return false;
    return network_match(api_filters_get(f, "network"), e) && ports_match(f, e);
}

json_t *flt_containers_apply(const json_t *entries, const struct flt_containers *o,
                             struct merr *err)
{
    json_t *out = json_array();
    bool before_pending = o->before_id != NULL;
    bool all = o->all || api_filters_get(o->f, "status") != NULL;
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) {
        const char *id = json_string_value(json_object_get(e, "Id"));
        const json_t *facts = json_object_get(e, "_facts");
        if (id == NULL)
            continue;
        if (before_pending) {
            if (strcmp(id, o->before_id) == 0)
                before_pending = false;
            continue;
        }
        if (o->since_id != NULL && strcmp(id, o->since_id) == 0)
            break;
        if (!json_is_true(json_object_get(facts, "Running")) && !all && o->limit <= 0)
            continue;
        if (o->limit > 0 && (long long)json_array_size(out) >= o->limit)
            break;
        if (!container_match(o, e, facts))
            continue;
        json_t *copy = json_copy(e);
        json_object_del(copy, "_facts");
        json_array_append_new(out, copy);
    }
    (void)err;
    return out;
}
