/* Swarm, service, task, node, secret and config routes answer as a dockerd that is not part of
 * a swarm (503), and the plugin routes as a dockerd without plugins, so `docker info`,
 * `docker swarm leave`, compose v1 and docker-py's teardown behave as they do there. */
#include <string.h>

#include "api/api.h"
#include "error.h"
#include "handlers.h"

#define NO_MANAGER                                                                              \
    "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to "  \
    "connect this node to swarm and try again."

static int not_manager(struct api_request *req, void *data, struct merr *err)
{
    (void)req;
    (void)data;
    return merr_set(err, MERR_UNREACHABLE, 0, NO_MANAGER);
}

static int not_in_swarm(struct api_request *req, void *data, struct merr *err)
{
    (void)req;
    (void)data;
    return merr_set(err, MERR_UNREACHABLE, 0, "This node is not part of a swarm");
}

static int swarm_unsupported(struct api_request *req, void *data, struct merr *err)
{
    (void)req;
    (void)data;
    return merr_set(err, MERR_UNREACHABLE, 0, "swarm mode is not supported by machine-engine");
}

static int plugins_list(struct api_request *req, void *data, struct merr *err)
{
    (void)data;
    struct api_filters f;
    if (api_request_filters(req, &f, err) < 0)
        return -1;
    static const char *const allowed[] = { "enabled", "capability", NULL };
    int rc = api_filters_validate(&f, allowed, err);
    api_filters_release(&f);
    return rc < 0 ? -1 : api_reply_json(req, 200, json_array(), err);
}

static int plugin_not_found(struct api_request *req, void *data, struct merr *err)
{
    (void)data;
    return merr_set(err, MERR_NOT_FOUND, 0, "plugin \"%s\" not found",
                    api_request_var(req, "name"));
}

static int plugins_unsupported(struct api_request *req, void *data, struct merr *err)
{
    (void)req;
    (void)data;
    return merr_set(err, MERR_UNSUPPORTED, 0, "plugins are not supported by machine-engine");
}

/* No plugin is ever installed: every filter lists nothing (its names are checked). */
static const struct api_param plugins_params[] = { API_PARAM("filters"), API_PARAMS_END };

static const struct api_route routes[] = {
    { "GET", "/swarm", not_manager, 0, api_params_unreached },
    { "POST", "/swarm/init", swarm_unsupported, 0, api_params_unreached },
    { "POST", "/swarm/join", swarm_unsupported, 0, api_params_unreached },
    { "POST", "/swarm/leave", not_in_swarm, 0, api_params_unreached },
    { "POST", "/swarm/update", not_manager, 0, api_params_unreached },
    { "GET", "/swarm/unlockkey", not_manager, 0, api_params_unreached },
    { "POST", "/swarm/unlock", not_in_swarm, 0, api_params_unreached },
    { "GET", "/services", not_manager, 0, api_params_unreached },
    { "POST", "/services/create", not_manager, 0, api_params_unreached },
    { "GET", "/services/{id}", not_manager, 0, api_params_unreached },
    { "DELETE", "/services/{id}", not_manager, 0, api_params_unreached },
    { "POST", "/services/{id}/update", not_manager, 0, api_params_unreached },
    { "GET", "/services/{id}/logs", not_manager, 0, api_params_unreached },
    { "GET", "/tasks", not_manager, 0, api_params_unreached },
    { "GET", "/tasks/{id}", not_manager, 0, api_params_unreached },
    { "GET", "/tasks/{id}/logs", not_manager, 0, api_params_unreached },
    { "GET", "/nodes", not_manager, 0, api_params_unreached },
    { "GET", "/nodes/{id}", not_manager, 0, api_params_unreached },
    { "DELETE", "/nodes/{id}", not_manager, 0, api_params_unreached },
    { "POST", "/nodes/{id}/update", not_manager, 0, api_params_unreached },
    { "GET", "/secrets", not_manager, 0, api_params_unreached },
    { "POST", "/secrets/create", not_manager, 0, api_params_unreached },
    { "GET", "/secrets/{id}", not_manager, 0, api_params_unreached },
    { "DELETE", "/secrets/{id}", not_manager, 0, api_params_unreached },
    { "POST", "/secrets/{id}/update", not_manager, 0, api_params_unreached },
    { "GET", "/configs", not_manager, 0, api_params_unreached },
    { "POST", "/configs/create", not_manager, 0, api_params_unreached },
    { "GET", "/configs/{id}", not_manager, 0, api_params_unreached },
    { "DELETE", "/configs/{id}", not_manager, 0, api_params_unreached },
    { "POST", "/configs/{id}/update", not_manager, 0, api_params_unreached },
    { "GET", "/plugins", plugins_list, 0, plugins_params },
    { "GET", "/plugins/privileges", plugins_unsupported, 0, api_params_unreached },
    { "POST", "/plugins/pull", plugins_unsupported, 0, api_params_unreached },
    { "POST", "/plugins/create", plugins_unsupported, 0, api_params_unreached },
    { "GET", "/plugins/{name}/json", plugin_not_found, 0, api_params_unreached },
    { "DELETE", "/plugins/{name}", plugin_not_found, 0, api_params_unreached },
    { "POST", "/plugins/{name}/enable", plugin_not_found, 0, api_params_unreached },
    { "POST", "/plugins/{name}/disable", plugin_not_found, 0, api_params_unreached },
    { "POST", "/plugins/{name}/upgrade", plugin_not_found, 0, api_params_unreached },
    { "POST", "/plugins/{name}/push", plugin_not_found, 0, api_params_unreached },
    { "POST", "/plugins/{name}/set", plugin_not_found, 0, api_params_unreached },
};

int handlers_register_swarm(struct api_router *r, struct engine_services *s, struct merr *err)
{
    return api_router_add_table(r, routes, sizeof routes / sizeof routes[0], s, err);
}
