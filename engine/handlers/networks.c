/* /networks/... routes: thin HTTP adapters over the network service. */
#include <jansson.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "error.h"
#include "filters/filters.h"
#include "fsutil.h"
#include "handlers.h"
#include "network/network.h"

static bool any_substring(char *const *values, const char *s)
{
    for (size_t k = 0; values != NULL && values[k] != NULL; k++)
        if (s != NULL && strstr(s, values[k]) != NULL)
            return true;
    return values == NULL;
}

static bool any_prefix(char *const *values, const char *s)
{
    for (size_t k = 0; values != NULL && values[k] != NULL; k++)
        if (s != NULL && strncmp(s, values[k], strlen(values[k])) == 0)
            return true;
    return values == NULL;
}

static bool labels_match(char *const *values, const json_t *labels)
{
    for (size_t k = 0; values != NULL && values[k] != NULL; k++) {
        const char *eq = strchr(values[k], '=');
        auto_free char *key = eq != NULL ? strndup(values[k], (size_t)(eq - values[k]))
                                         : xstrdup(values[k]);
        const char *v = json_string_value(json_object_get(labels, key));
        if (v == NULL || (eq != NULL && strcmp(v, eq + 1) != 0))
            return false;
    }
    return true;
}

static bool type_match(char *const *values, const json_t *net)
{
    if (values == NULL)
        return true;
    const char *name = json_string_value(json_object_get(net, "Name"));
    bool builtin = strcmp(name, "bridge") == 0 || strcmp(name, "host") == 0 ||
                   strcmp(name, "none") == 0;
    for (size_t k = 0; values[k] != NULL; k++)
        if (strcmp(values[k], builtin ? "builtin" : "custom") == 0)
            return true;
    return false;
}

/* dangling=: dockerd's networks that are neither predefined nor used by a container. */
static bool dangling_match(struct engine_services *s, const struct api_filters *f, const json_t *n)
{
    if (api_filters_get(f, "dangling") == NULL)
        return true;
    bool want = false;
    struct merr ignored = MERR_INIT;
    if (flt_bool(f, "dangling", false, &want, &ignored) < 0)
        return false;
    const char *name = json_string_value(json_object_get(n, "Name"));
    if (strcmp(name, "bridge") == 0 || strcmp(name, "host") == 0 || strcmp(name, "none") == 0)
        return !want;
    json_t *full = net_inspect(s->net, json_string_value(json_object_get(n, "Id")), &ignored);
    bool unused = json_object_size(json_object_get(full, "Containers")) == 0;
    json_decref(full);
    return unused == want;
}

static int list(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    struct api_filters f;
    if (api_request_filters(req, &f, err) < 0)
        return -1;
    static const char *const allowed[] = { "name", "id", "label", "driver", "type", "scope",
                                           "dangling", NULL };
    bool dangling;
    if (api_filters_validate(&f, allowed, err) < 0 ||
        flt_bool(&f, "dangling", false, &dangling, err) < 0) {
        api_filters_release(&f);
        return -1;
    }
    json_t *all = net_list(s->net, err);
    json_t *out = json_array();
    size_t i;
    json_t *n;
    json_array_foreach(all, i, n) {
        const char *name = json_string_value(json_object_get(n, "Name"));
        const char *id = json_string_value(json_object_get(n, "Id"));
        if (!any_substring(api_filters_get(&f, "name"), name) ||
            !any_prefix(api_filters_get(&f, "id"), id) ||
            !labels_match(api_filters_get(&f, "label"), json_object_get(n, "Labels")) ||
            !api_filters_match(&f, "driver", json_string_value(json_object_get(n, "Driver"))) ||
            !api_filters_match(&f, "scope", "local") || !type_match(api_filters_get(&f, "type"), n) ||
            !dangling_match(s, &f, n))
            continue;
        json_array_append(out, n);
    }
    json_decref(all);
    api_filters_release(&f);
    return api_reply_json(req, 200, out, err);
}

/* ?scope=: every network here is local, so another scope finds none (as dockerd); ?verbose
 * only adds swarm service details, which local networks have not. */
static int inspect(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    /* every network here is local: another scope finds none, as dockerd */
    const char *scope = api_request_query(req, "scope");
    if (scope != NULL && scope[0] != '\0' && strcmp(scope, "local") != 0)
        return merr_set(err, MERR_NOT_FOUND, 0, "network %s not found",
                        api_request_var(req, "id"));
    json_t *j = net_inspect(s->net, api_request_var(req, "id"), err);
    return j != NULL ? api_reply_json(req, 200, j, err) : -1;
}

static int create(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    json_t *body = NULL;
    if (api_request_body_json(req, &body, err) < 0)
        return -1;
    /* API 1.44 deprecated CheckDuplicate and dockerd 25 always checks; the docker CLI 28 no
     * longer sends it. An explicit false is still honoured (docker-py 5 sends it, at any
     * version, and dockerd 20.10 allowed the duplicate); when absent, 1.44+ checks. */
    if (json_is_object(body) && json_object_get(body, "CheckDuplicate") == NULL &&
        api_request_version_ge(req, 1, 44))
        json_object_set_new(body, "CheckDuplicate", json_true());
    auto_free char *id = NULL;
    auto_free char *warning = NULL;
    int rc = net_create(s->net, body, &id, &warning, err);
    json_decref(body);
    if (rc < 0)
        return -1;
    return api_reply_json(req, 201,
                          json_pack("{s:s,s:s}", "Id", id, "Warning", warning != NULL ? warning : ""),
                          err);
}

static int remove_(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    if (net_remove(s->net, api_request_var(req, "id"), err) < 0)
        return -1;
    return api_reply_empty(req, 204, err);
}

static int connect_(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    json_t *body = NULL;
    if (api_request_body_json(req, &body, err) < 0)
        return -1;
    int rc = net_connect(s->net, api_request_var(req, "id"), body, err);
    json_decref(body);
    return rc < 0 ? -1 : api_reply_empty(req, 200, err);
}

static int disconnect(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    json_t *body = NULL;
    if (api_request_body_json(req, &body, err) < 0)
        return -1;
    int rc = net_disconnect(s->net, api_request_var(req, "id"), body, err);
    json_decref(body);
    return rc < 0 ? -1 : api_reply_empty(req, 200, err);
}

struct prune_match {
    const struct api_filters *f;
    int64_t until_ns;
};

static bool prunable(void *data, int64_t created_ns, const json_t *labels)
{
    const struct prune_match *pm = data;
    if (pm->until_ns != 0 && created_ns > pm->until_ns)
        return false;
    return flt_prune_labels(pm->f, labels);
}

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* dockerd's network prune filters: until, label, label! */
static int prune(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    static const char *const accepted[] = { "until", "label", "label!", NULL };
    struct api_filters f;
    if (api_request_filters(req, &f, err) < 0)
        return -1;
    struct prune_match pm = { &f, 0 };
    json_t *gone = NULL;
    if (flt_prune_prepare(&f, accepted, wall_ns(), &pm.until_ns, err) == 0)
        gone = net_prune(s->net, prunable, &pm, err);
    api_filters_release(&f);
    if (gone == NULL)
        return -1;
    return api_reply_json(req, 200, json_pack("{s:o}", "NetworksDeleted", gone), err);
}

static const struct api_param filters_params[] = { API_PARAM("filters"), API_PARAMS_END };
static const struct api_param inspect_params[] = {
    API_PARAM_IGNORE("verbose", "it adds the services of swarm-scoped networks only"),
    API_PARAM("scope"),
    API_PARAMS_END,
};

static const struct api_route routes[] = {
    { "GET", "/networks", list, 0, filters_params },
    { "GET", "/networks/{id}", inspect, 0, inspect_params },
    { "POST", "/networks/create", create, API_ROUTE_WORKER, api_params_none },
    { "DELETE", "/networks/{id}", remove_, API_ROUTE_WORKER, api_params_none },
    { "POST", "/networks/{id}/connect", connect_, API_ROUTE_WORKER, api_params_none },
    { "POST", "/networks/{id}/disconnect", disconnect, API_ROUTE_WORKER, api_params_none },
    { "POST", "/networks/prune", prune, API_ROUTE_WORKER, filters_params },
};

int handlers_register_networks(struct api_router *r, struct engine_services *s, struct merr *err)
{
    return api_router_add_table(r, routes, sizeof routes / sizeof routes[0], s, err);
}
