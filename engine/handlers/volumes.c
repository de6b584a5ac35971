/* /volumes, /events and /containers/{id}/stats routes. */
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
#define STATS_INTERVAL_MS 1000
#define STATS_STREAM_MAX 86400 /* samples: a day at one per second */

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

/* ---- stats ---- */

static uint64_t system_cpu_ns(void)
{
    auto_fclose FILE *f = fopen("/proc/stat", "re");
    if (f == NULL)
        return 0;
    char line[512];
    if (fgets(line, sizeof line, f) == NULL || strncmp(line, "cpu ", 4) != 0)
        return 0;
    uint64_t total = 0;
    char *p = line + 4;
    for (int i = 0; i < 8; i++) {
        char *end;
        unsigned long long v = strtoull(p, &end, 10);
        if (end == p)
            break;
        total += v;
        p = end;
    }
    long hz = sysconf(_SC_CLK_TCK);
    return hz > 0 ? total * (1000000000ULL / (uint64_t)hz) : 0;
}

struct stats_sample {
    struct rt_stats st;
    uint64_t system_ns;
    int64_t at_ns;
    bool running;
};

static json_t *cpu_json(const struct stats_sample *s, long cpus)
{
    return json_pack("{s:{s:I,s:I,s:I},s:I,s:I,s:{s:I,s:I,s:I}}", "cpu_usage", "total_usage",
                     (json_int_t)s->st.cpu_usage_ns, "usage_in_kernelmode", (json_int_t)0,
                     "usage_in_usermode", (json_int_t)0, "system_cpu_usage",
                     (json_int_t)s->system_ns, "online_cpus", (json_int_t)cpus,
                     "throttling_data", "periods", (json_int_t)0, "throttled_periods",
                     (json_int_t)0, "throttled_time", (json_int_t)0);
}

static json_t *stats_json(const char *id, const char *name, const struct stats_sample *cur,
                          const struct stats_sample *pre)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    auto_free char *read = fmt_rfc3339_nano(cur->running ? cur->at_ns : 0);
    auto_free char *preread = fmt_rfc3339_nano(pre != NULL && pre->running ? pre->at_ns : 0);
    auto_free char *slash = xasprintf("/%s", name);
    json_t *mem = json_object();
    if (cur->running) {
        uint64_t limit = cur->st.memory_limit;
        if (limit == UINT64_MAX || limit == 0) {
            long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
            limit = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : 0;
        }
        json_object_set_new(mem, "usage", json_integer((json_int_t)cur->st.memory_usage));
        json_object_set_new(mem, "limit", json_integer((json_int_t)limit));
        json_object_set_new(mem, "stats", json_pack("{s:I}", "inactive_file",
                                                    (json_int_t)cur->st.memory_inactive_file));
    }
    struct stats_sample zero = { 0 };
    json_t *pids = json_object();
    if (cur->running) {
        json_object_set_new(pids, "current", json_integer((json_int_t)cur->st.pids_current));
        if (cur->st.pids_limit != UINT64_MAX)
            json_object_set_new(pids, "limit", json_integer((json_int_t)cur->st.pids_limit));
    }
    return json_pack("{s:s,s:s,s:o,s:i,s:o,s:o,s:o,s:{},s:{},s:s,s:s}", "read", read, "preread",
                     preread, "pids_stats", pids, "num_procs", 0, "cpu_stats",
                     cpu_json(cur, cur->running ? cpus : 0), "precpu_stats",
                     cpu_json(pre != NULL ? pre : &zero, pre != NULL && pre->running ? cpus : 0),
                     "memory_stats", mem, "blkio_stats", "storage_stats", "name", slash, "id", id);
}

static int sample(struct engine_services *s, const char *ref, struct stats_sample *out,
                  char id[65], char **name, struct merr *err)
{
    free(*name);
    *name = NULL;
    if (ctr_stats(s->containers, ref, &out->st, &out->running, id, name, err) < 0) {
        if (err->code == MERR_NOT_FOUND)
            return -1;
        out->running = false; /* it stopped between the lookup and the sample */
        memset(&out->st, 0, sizeof out->st);
    }
    out->system_ns = system_cpu_ns();
    out->at_ns = now_ns();
    return 0;
}

static int stats(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    const char *ref = api_request_var(req, "id");
    const char *stream_q = api_request_query(req, "stream");
    bool stream = stream_q == NULL || api_request_query_bool(req, "stream");
    bool one_shot = api_request_query_bool(req, "one-shot");
    char id[65];
    auto_free char *name = NULL;
    struct stats_sample pre = { 0 }, cur = { 0 };
    if (sample(s, ref, &pre, id, &name, err) < 0)
        return -1;
    if (!stream) {
        if (!one_shot && pre.running) {
            struct pollfd p = { .fd = api_request_cancel_fd(req), .events = POLLIN };
            poll(&p, 1, STATS_INTERVAL_MS);
            if (sample(s, ref, &cur, id, &name, err) < 0)
                return -1;
            return api_reply_json(req, 200, stats_json(id, name, &cur, &pre), err);
        }
        return api_reply_json(req, 200, stats_json(id, name, &pre, NULL), err);
    }
    int rc = api_stream_begin(req, 200, API_MEDIA_JSON, err);
    json_t *first = stats_json(id, name, &pre, NULL);
    if (rc == 0)
        rc = api_stream_write_json(req, first, err);
    json_decref(first);
    for (int i = 0; rc == 0 && i < STATS_STREAM_MAX; i++) {
        struct pollfd p[2] = { { .fd = api_request_cancel_fd(req), .events = POLLIN },
                               { .fd = api_request_fd(req), .events = POLLRDHUP } };
        if (poll(p, 2, STATS_INTERVAL_MS) > 0)
            break; /* stopping, or the client hung up */
        if (sample(s, ref, &cur, id, &name, err) < 0)
            break; /* removed */
        json_t *j = stats_json(id, name, &cur, &pre);
        rc = api_stream_write_json(req, j, err);
        json_decref(j);
        pre = cur;
    }
    return rc == 0 ? api_stream_end(req, err) : -1;
}

static const struct api_route routes[] = {
    { "GET", "/volumes", volume_list, 0 },
    { "POST", "/volumes/create", volume_create, 0 },
    { "POST", "/volumes/prune", volume_prune, API_ROUTE_WORKER },
    { "GET", "/volumes/{name}", volume_inspect, 0 },
    { "DELETE", "/volumes/{name}", volume_remove, API_ROUTE_WORKER },
    { "GET", "/events", events, API_ROUTE_WORKER },
    { "GET", "/containers/{id}/stats", stats, API_ROUTE_WORKER },
};

int handlers_register_storage(struct api_router *r, struct engine_services *s, struct merr *err)
{
    if (api_router_add_table(r, routes, sizeof routes / sizeof routes[0], s, err) < 0)
        return -1;
    return handlers_register_archive(r, s, err);
}
