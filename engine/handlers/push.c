/* POST /images/{name}/push (docker push) and POST /auth (docker login): thin adapters over
 * image_push and image_login. */
#include <jansson.h>
#include <string.h>

#include "api/api.h"
#include "error.h"
#include "events/events.h"
#include "handlers.h"
#include "image/image.h"

static int push(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    const char *name = api_request_var(req, "name");
    const char *tag = api_request_query(req, "tag");
    struct handlers_lines c = { req, false, false }; /* an error before the first line is a status */
    struct merr perr = MERR_INIT;
    if (image_push(s->images, s->registry, name, tag, api_request_header(req, "X-Registry-Auth"),
                   handlers_stream_line, &c, &perr) == 0) {
        evt_emit(s->events, "image", "push", name, json_pack("{s:s}", "name", name));
        if (!c.begun && api_stream_begin(req, 200, API_MEDIA_JSON, err) < 0)
            return -1;
        return api_stream_end(req, err);
    }
    if (!c.begun) {
        *err = perr;
        return -1;
    }
    json_t *e = json_pack("{s:{s:s},s:s}", "errorDetail", "message", perr.msg, "error", perr.msg);
    int rc = api_stream_write_json(req, e, err);
    json_decref(e);
    return rc < 0 ? -1 : api_stream_end(req, err);
}

static const char *str_field(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v != NULL ? v : "";
}

static int auth(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    json_t *body = NULL;
    if (api_request_body_json(req, &body, err) < 0)
        return -1;
    const char *token = str_field(body, "identitytoken");
    int r = image_login(s->images, s->registry, str_field(body, "username"),
                        str_field(body, "password"), token[0] != '\0' ? token : NULL,
                        str_field(body, "serveraddress"), err);
    json_decref(body);
    if (r < 0)
        return -1;
    return api_reply_json(req, 200,
                          json_pack("{s:s,s:s}", "Status", "Login Succeeded", "IdentityToken", ""),
                          err);
}

static const struct api_param push_params[] = {
    API_PARAM_NOTE("tag", "empty or absent: every tag of the repository (docker push --all-tags)"),
    API_PARAMS_END,
};

static const struct api_param no_params[] = { API_PARAMS_END };

static const struct api_route routes[] = {
    { "POST", "/images/{name}/push", push, API_ROUTE_WORKER, push_params },
    { "POST", "/auth", auth, API_ROUTE_WORKER, no_params },
};

int handlers_register_push(struct api_router *r, struct engine_services *s, struct merr *err)
{
    return api_router_add_table(r, routes, sizeof routes / sizeof routes[0], s, err);
}
