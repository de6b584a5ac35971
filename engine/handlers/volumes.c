/* /volumes and /events routes (stats: stats.c). */
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "container/container.h"
#include "container/manager.h"
#include "error.h"
#include "events/events.h"
#include "fsutil.h"
#include "handlers.h"
#include "runtime/runtime.h"
#include "volume/volume.h"

#define EVENTS_BATCH 64

/* ---- volumes ---- */

static int volume_list(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    struct api_filters f;
    if (api_request_filters(req, &f, err) < 0)
        return -1;
    json_t *vols = vol_list(s->volumes, &f, err);
    api_filters_release(&f);
    if (vols == NULL)
        return -1;
    return api_reply_json(req, 200, json_pack("{s:o,s:n}", "Volumes", vols, "Warnings"), err);
}

static int volume_create(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    json_t *body = NULL;
    if (api_request_body_json(req, &body, err) < 0)
        return -1;
    const char *name = json_string_value(json_object_get(body, "Name"));
    const char *driver = json_string_value(json_object_get(body, "Driver"));
    if (driver != NULL && driver[0] != '\0' && strcmp(driver, "local") != 0) {
        merr_set(err, MERR_NOT_FOUND, 0,
                 "error looking up volume plugin %s: plugin \"%s\" not found", driver, driver);
        json_decref(body);
        return -1;
    }
    json_t *v = vol_create(s->volumes, name, json_object_get(body, "Labels"),
                           json_object_get(body, "DriverOpts"), false, err);
    json_decref(body);
    if (v == NULL)
        return -1;
    return api_reply_json(req, 201, v, err);
}

static int volume_inspect(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    json_t *v = vol_inspect(s->volumes, api_request_var(req, "name"), err);
    return v != NULL ? api_reply_json(req, 200, v, err) : -1;
}

static int volume_remove(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    if (vol_remove(s->volumes, api_request_var(req, "name"), api_request_query_bool(req, "force"),
                   err) < 0)
        return -1;
    return api_reply_empty(req, 204, err);
}

static int volume_prune(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    struct api_filters f;
    if (api_request_filters(req, &f, err) < 0)
        return -1;
    /* before API 1.42 prune removed named volumes too */
    json_t *out = vol_prune(s->volumes, !api_request_version_ge(req, 1, 42), &f, err);
    api_filters_release(&f);
    return out != NULL ? api_reply_json(req, 200, out, err) : -1;
}

/* ---- events ---- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The client hung up, or the server is stopping. */
static bool client_gone(struct api_request *req)
{
    struct pollfd p[2] = { { .fd = api_request_fd(req), .events = POLLRDHUP },
                           { .fd = api_request_cancel_fd(req), .events = POLLIN } };
    if (poll(p, 2, 0) <= 0)
        return false;
    return (p[0].revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0 || (p[1].revents & POLLIN) != 0;
}

static int events(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    int64_t since = 0, until = 0;
    const char *q_since = api_request_query(req, "since");
    const char *q_until = api_request_query(req, "until");
    if ((q_since != NULL && q_since[0] != '\0' && evt_parse_time(q_since, &since, err) < 0) ||
        (q_until != NULL && q_until[0] != '\0' && evt_parse_time(q_until, &until, err) < 0))
        return -1;
    struct api_filters f;
    if (api_request_filters(req, &f, err) < 0)
        return -1;
    if (evt_filters_validate(&f, err) < 0) {
        api_filters_release(&f);
        return -1;
    }
    uint64_t cursor = since > 0 ? evt_cursor_oldest(s->events) : evt_cursor_now(s->events);
    int rc = api_stream_begin(req, 200, API_MEDIA_JSON, err);
    bool done = false;
    while (rc == 0 && !done) {
        json_t *batch[EVENTS_BATCH];
        size_t n = evt_read(s->events, &cursor, batch, EVENTS_BATCH, 500);
        for (size_t i = 0; i < n; i++) {
            int64_t t = json_integer_value(json_object_get(batch[i], "timeNano"));
            if (until > 0 && t > until)
                done = true;
            bool show = !done && (since == 0 || t >= since) && evt_filter_match(batch[i], &f);
            if (rc == 0 && show)
                rc = api_stream_write_json(req, batch[i], err);
            json_decref(batch[i]);
        }
        if (until > 0 && now_ns() > until && n == 0)
            done = true;
        if (client_gone(req))
            done = true;
    }
    api_filters_release(&f);
    if (rc == 0)
        rc = api_stream_end(req, err);
    return rc;
}

static const struct api_param filters_params[] = { API_PARAM("filters"), API_PARAMS_END };
static const struct api_param remove_params[] = { API_PARAM("force"), API_PARAMS_END };
static const struct api_param events_params[] = {
    API_PARAM("since"), API_PARAM("until"), API_PARAM("filters"), API_PARAMS_END,
};

static const struct api_route routes[] = {
    { "GET", "/volumes", volume_list, 0, filters_params },
    { "POST", "/volumes/create", volume_create, 0, api_params_none },
    { "POST", "/volumes/prune", volume_prune, API_ROUTE_WORKER, filters_params },
    { "GET", "/volumes/{name}", volume_inspect, 0, api_params_none },
    { "DELETE", "/volumes/{name}", volume_remove, API_ROUTE_WORKER, remove_params },
    { "GET", "/events", events, API_ROUTE_WORKER, events_params },
};

int handlers_register_storage(struct api_router *r, struct engine_services *s, struct merr *err)
{
    if (api_router_add_table(r, routes, sizeof routes / sizeof routes[0], s, err) < 0)
        return -1;
    return handlers_register_archive(r, s, err);
}
