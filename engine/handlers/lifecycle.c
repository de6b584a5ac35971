/* POST /containers/{id}/pause, /unpause, /rename and /update. */
#include <jansson.h>

#include "api/api.h"
#include "container/manager.h"
#include "error.h"
#include "handlers.h"
#include "network/network.h"

static int pause_(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    if (ctr_pause(s->containers, api_request_var(req, "id"), err) < 0)
        return -1;
    return api_reply_empty(req, 204, err);
}

static int unpause(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    if (ctr_unpause(s->containers, api_request_var(req, "id"), err) < 0)
        return -1;
    return api_reply_empty(req, 204, err);
}

static int rename_(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    const char *name = api_request_query(req, "name");
    if (ctr_rename(s->containers, api_request_var(req, "id"), name, err) < 0)
        return -1;
    char id[65];
    const char *bare = name[0] == '/' ? name + 1 : name;
    if (s->net != NULL && (ctr_lookup(s->containers, bare, id, NULL, err) < 0 ||
                           net_ctr_rename(s->net, id, bare, err) < 0))
        return -1;
    return api_reply_empty(req, 204, err);
}

static int update(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    json_t *body = NULL;
    if (api_request_body_json(req, &body, err) < 0)
        return -1;
    int rc = ctr_update(s->containers, api_request_var(req, "id"), body, err);
    json_decref(body);
    if (rc < 0)
        return -1;
    return api_reply_json(req, 200, json_pack("{s:[]}", "Warnings"), err);
}

static const struct api_param rename_params[] = { API_PARAM("name"), API_PARAMS_END };

static const struct api_route routes[] = {
    { "POST", "/containers/{id}/pause", pause_, API_ROUTE_WORKER, api_params_none },
    { "POST", "/containers/{id}/unpause", unpause, API_ROUTE_WORKER, api_params_none },
    { "POST", "/containers/{id}/rename", rename_, API_ROUTE_WORKER, rename_params },
    { "POST", "/containers/{id}/update", update, 0, api_params_none },
};

int handlers_register_lifecycle(struct api_router *r, struct engine_services *s,
                                struct merr *err)
{
    return api_router_add_table(r, routes, sizeof routes / sizeof routes[0], s, err);
}
