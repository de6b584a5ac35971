/* POST /containers/prune, /images/prune and /build/prune (networks and volumes prune live with
 * their routes), so `docker system prune [-a] [--volumes]` works; filters as dockerd. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "container/manager.h"
#include "error.h"
#include "events/events.h"
#include "filters/filters.h"
#include "fsutil.h"
#include "handlers.h"
#include "image/image.h"

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void emit_prune(struct engine_services *s, const char *type, int64_t reclaimed)
{
    char n[32];
    snprintf(n, sizeof n, "%lld", (long long)reclaimed);
    evt_emit(s->events, type, "prune", "", json_pack("{s:s}", "reclaimed", n));
}

struct prune_match {
    const struct api_filters *f;
    int64_t until_ns;
};

static bool container_prunable(void *data, int64_t created_ns, const json_t *labels)
{
    const struct prune_match *pm = data;
    if (pm->until_ns != 0 && created_ns > pm->until_ns)
        return false;
    return flt_prune_labels(pm->f, labels);
}

static int containers_prune(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    static const char *const accepted[] = { "until", "label", "label!", NULL };
    struct api_filters f;
    if (api_request_filters(req, &f, err) < 0)
        return -1;
    struct prune_match pm = { &f, 0 };
    int64_t reclaimed = 0;
    json_t *deleted = NULL;
    if (flt_prune_prepare(&f, accepted, wall_ns(), &pm.until_ns, err) == 0)
        deleted = ctr_prune(s->containers, container_prunable, &pm, &reclaimed, err);
    api_filters_release(&f);
    if (deleted == NULL)
        return -1;
    emit_prune(s, "container", reclaimed);
    return api_reply_json(req, 200,
                          json_pack("{s:o,s:I}", "ContainersDeleted", deleted, "SpaceReclaimed",
                                    (json_int_t)reclaimed),
                          err);
}

/* ---- images ---- */

static bool in_use(const char *image_id, void *ctx)
{
    return ctr_image_in_use(ctx, image_id);
}

/* Removes one image (by its references, or by ID when it has none), appending the report. */
static void prune_image(struct engine_services *s, const json_t *e, json_t *report,
                        int64_t *reclaimed)
{
    const char *id = json_string_value(json_object_get(e, "Id"));
    json_t *refs = json_array();
    const char *const lists[] = { "RepoTags", "RepoDigests" };
    for (size_t k = 0; k < 2; k++) {
        size_t i;
        json_t *r;
        json_array_foreach(json_object_get(e, lists[k]), i, r) json_array_append(refs, r);
    }
    if (json_array_size(refs) == 0)
        json_array_append_new(refs, json_string(id));
    size_t i;
    json_t *r;
    json_array_foreach(refs, i, r) {
        char *text = NULL;
        struct merr rerr = MERR_INIT;
        if (image_remove(s->images, json_string_value(r), false, in_use, s->containers, &text,
                         &rerr) < 0)
            continue; /* gone with an earlier reference, or in use meanwhile */
        json_t *items = json_loads(text, 0, NULL);
        free(text);
        size_t j;
        json_t *it;
        json_array_foreach(items, j, it) {
            json_array_append(report, it);
            const char *del = json_string_value(json_object_get(it, "Deleted"));
            const char *untag = json_string_value(json_object_get(it, "Untagged"));
            if (del != NULL) {
                *reclaimed += json_integer_value(json_object_get(e, "Size"));
                evt_emit(s->events, "image", "delete", del, json_pack("{s:s}", "name", del));
            } else if (untag != NULL) {
                evt_emit(s->events, "image", "untag", id, json_pack("{s:s}", "name", untag));
            }
        }
        json_decref(items);
    }
    json_decref(refs);
}

static bool image_prunable(struct engine_services *s, const json_t *all, const json_t *e,
                           bool dangling_only, const struct prune_match *pm)
{
    const char *id = json_string_value(json_object_get(e, "Id"));
    size_t tags = json_array_size(json_object_get(e, "RepoTags"));
    size_t refs = tags + json_array_size(json_object_get(e, "RepoDigests"));
    json_t *kids = json_object();
    flt_image_descendants(all, id, kids);
    bool has_children = json_object_size(kids) > 1;
    json_decref(kids);
    if ((refs == 0 && has_children) || (dangling_only && (tags > 0 || has_children)))
        return false;
    int64_t created_s = json_integer_value(json_object_get(e, "Created"));
    if (pm->until_ns != 0 && created_s * 1000000000LL > pm->until_ns)
        return false;
    if (!flt_prune_labels(pm->f, json_object_get(e, "Labels")))
        return false;
    return !ctr_image_in_use(s->containers, id);
}

static int images_prune(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    static const char *const accepted[] = { "dangling", "until", "label", "label!", NULL };
    struct api_filters f;
    if (api_request_filters(req, &f, err) < 0)
        return -1;
    struct prune_match pm = { &f, 0 };
    bool dangling_only = true;
    json_t *all = NULL;
    if (flt_prune_prepare(&f, accepted, wall_ns(), &pm.until_ns, err) == 0 &&
        flt_bool(&f, "dangling", true, &dangling_only, err) == 0)
        all = handlers_image_entries(s, err);
    if (all == NULL) {
        api_filters_release(&f);
        return -1;
    }
    json_t *report = json_array();
    int64_t reclaimed = 0;
    size_t i;
    json_t *e;
    json_array_foreach(all, i, e) {
        if (image_prunable(s, all, e, dangling_only, &pm))
            prune_image(s, e, report, &reclaimed);
    }
    json_decref(all);
    api_filters_release(&f);
    emit_prune(s, "image", reclaimed);
    return api_reply_json(req, 200,
                          json_pack("{s:o,s:I}", "ImagesDeleted", report, "SpaceReclaimed",
                                    (json_int_t)reclaimed),
                          err);
}

static int build_prune(struct api_request *req, void *data, struct merr *err)
{
    return handlers_build_prune(req, data, err);
}

static const struct api_param filters_params[] = { API_PARAM("filters"), API_PARAMS_END };
static const struct api_param build_prune_params[] = {
    API_PARAM("keep-storage"),
    API_PARAM("all"),
    API_PARAM_NOTE("filters", "until, id; others refused by the handler"),
    API_PARAMS_END,
};

static const struct api_route routes[] = {
    { "POST", "/containers/prune", containers_prune, API_ROUTE_WORKER, filters_params },
    { "POST", "/images/prune", images_prune, API_ROUTE_WORKER, filters_params },
    { "POST", "/build/prune", build_prune, API_ROUTE_WORKER, build_prune_params },
};

int handlers_register_prune(struct api_router *r, struct engine_services *s, struct merr *err)
{
    return api_router_add_table(r, routes, sizeof routes / sizeof routes[0], s, err);
}
