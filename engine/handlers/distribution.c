/* GET /distribution/{name}/json from the registry, and GET /images/search refused clearly. */
#include <jansson.h>

#include "api/api.h"
#include "error.h"
#include "handlers.h"
#include "image/image.h"

static int distribution(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    json_t *out = image_distribution_inspect(s->images, s->registry, api_request_var(req, "name"),
                                             api_request_header(req, "X-Registry-Auth"), err);
    return out != NULL ? api_reply_json(req, 200, out, err) : -1;
}

static int search(struct api_request *req, void *data, struct merr *err)
{
    (void)req;
    (void)data;
    return merr_set(err, MERR_UNSUPPORTED, 0,
                    "searching a registry (docker search) is not supported by machine-engine");
}

static const struct api_route routes[] = {
    { "GET", "/distribution/{name}/json", distribution, API_ROUTE_WORKER, api_params_none },
    { "GET", "/images/search", search, 0, api_params_unreached },
};

int handlers_register_distribution(struct api_router *r, struct engine_services *s,
                                   struct merr *err)
{
    return api_router_add_table(r, routes, sizeof routes / sizeof routes[0], s, err);
}
