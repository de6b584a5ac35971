/* GET /containers/json and GET /images/json with dockerd's filters (engine/filters). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "container/manager.h"
#include "error.h"
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

/* Every image of the store as GET /images/json objects. */
json_t *handlers_image_entries(struct engine_services *s, struct merr *err)
{
    auto_free char *text = image_list_json(s->images, err);
    if (text == NULL)
        return NULL;
    json_error_t jerr;
    json_t *list = json_loads(text, 0, &jerr);
    if (!json_is_array(list)) {
        json_decref(list);
        merr_set(err, MERR_CORRUPT, 0, "cannot read the image list: %s", jerr.text);
        return NULL;
    }
    return list;
}

static const json_t *entry_by_id(const json_t *entries, const char *id)
{
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) {
        const char *eid = json_string_value(json_object_get(e, "Id"));
        if (eid != NULL && strcmp(eid, id) == 0)
            return e;
    }
    return NULL;
}

struct created_ctx {
    struct engine_services *s;
    const json_t *entries;
};

static int image_created(void *data, const char *ref, int64_t *created_s, struct merr *err)
{
    struct created_ctx *c = data;
    auto_free char *id = image_lookup(c->s->images, ref, err);
    if (id == NULL)
        return -1;
    *created_s = json_integer_value(json_object_get(entry_by_id(c->entries, id), "Created"));
    return 0;
}

/* shared-size=1 (API 1.42): SharedSize is the bytes of an image's layers other images use too,
 * as docker system df counts them (-1 otherwise). */
static json_t *with_shared_sizes(struct engine_services *s, json_t *entries, struct merr *err)
{
    json_t *shared = NULL;
    int64_t total = 0;
    if (entries == NULL || image_disk_usage(s->images, &shared, &total, err) < 0) {
        json_decref(entries);
        return NULL;
    }
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) {
        const char *id = json_string_value(json_object_get(e, "Id"));
        json_object_set_new(e, "SharedSize",
                            json_integer(json_integer_value(json_object_get(shared, id))));
    }
    json_decref(shared);
    return entries;
}

static int images_list(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    struct api_filters f;
    if (api_request_filters(req, &f, err) < 0)
        return -1;
    json_t *entries = handlers_image_entries(s, err);
    if (api_request_version_ge(req, 1, 42) && api_request_query_bool(req, "shared-size"))
        entries = with_shared_sizes(s, entries, err);
    struct created_ctx cc = { s, entries };
    struct flt_images o;
    json_t *out = NULL;
    if (entries != NULL &&
        flt_images_prepare(&f, api_request_query_bool(req, "all"), wall_ns(), image_created, &cc,
                           &o, err) == 0)
        out = flt_images_apply(entries, &o, api_request_version_ge(req, 1, 43), err);
    json_decref(entries);
    api_filters_release(&f);
    return out != NULL ? api_reply_json(req, 200, out, err) : -1;
}

/* ---- containers ---- */

/* dockerd's idOrNameFilter: a full or unique-prefix ID, or a name. */
static int container_id_of(struct engine_services *s, const char *ref, char **out,
                           struct merr *err)
{
    char id[65];
    if (ctr_lookup(s->containers, ref, id, NULL, err) < 0)
        return -1;
    *out = xstrdup(id);
    return 0;
}

/* The images the ancestor filter names, with their descendants; an unknown one adds
 * nothing (dockerd logs it and goes on). */
static json_t *ancestor_set(struct engine_services *s, char *const *values, const json_t *images)
{
    json_t *ids = json_object();
    for (size_t i = 0; values[i] != NULL; i++) {
        struct merr ignored = MERR_INIT;
        auto_free char *id = image_lookup(s->images, values[i], &ignored);
        if (id != NULL)
            flt_image_descendants(images, id, ids);
    }
    return ids;
}

/* dockerd's refreshImage: a container whose image name now means another image shows the
 * ID; with size, SizeRootFs adds the image's size. */
static void refresh_images(struct engine_services *s, json_t *list, const json_t *images,
                           bool size)
{
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) {
        const char *ref = json_string_value(json_object_get(e, "Image"));
        const char *image_id = json_string_value(json_object_get(e, "ImageID"));
        if (ref == NULL || image_id == NULL)
            continue;
        if (strcmp(ref, image_id) != 0) {
            struct merr ignored = MERR_INIT;
            auto_free char *now = image_lookup(s->images, ref, &ignored);
            if (now == NULL || strcmp(now, image_id) != 0)
                json_object_set_new(e, "Image", json_string(image_id));
        }
        if (size) {
            json_int_t rw = json_integer_value(json_object_get(e, "SizeRw"));
            json_int_t img = json_integer_value(
                json_object_get(entry_by_id(images, image_id), "Size"));
            json_object_set_new(e, "SizeRootFs", json_integer(rw + img));
        }
    }
}

static int containers_filtered(struct api_request *req, struct engine_services *s,
                               const struct api_filters *f, json_t **out, struct merr *err)
{
    *out = NULL;
    long long limit = -1;
    if (flt_containers_validate(f, err) < 0 ||
        api_request_query_int(req, "limit", -1, &limit, err) < 0)
        return -1;
    struct flt_containers o = { .all = api_request_query_bool(req, "all"), .limit = limit, .f = f };
    auto_free char *before = NULL, *since = NULL;
    char *const *v;
    for (v = api_filters_get(f, "before"); v != NULL && *v != NULL; v++) {
        free(before);
        before = NULL;
        if (container_id_of(s, *v, &before, err) < 0)
            return -1;
    }
    for (v = api_filters_get(f, "since"); v != NULL && *v != NULL; v++) {
        free(since);
        since = NULL;
        if (container_id_of(s, *v, &since, err) < 0)
            return -1;
    }
    o.before_id = before;
    o.since_id = since;
    bool size = api_request_query_bool(req, "size");
    /* the image list (every image's config read) only when a filter or the sizes need it */
    bool need_images = size || api_filters_get(f, "ancestor") != NULL;
    json_t *images = need_images ? handlers_image_entries(s, err) : json_array();
    if (images == NULL)
        return -1;
    json_t *ancestors = NULL;
    if ((v = api_filters_get(f, "ancestor")) != NULL)
        ancestors = ancestor_set(s, v, images);
    o.ancestor_ids = ancestors;
    json_t *all = ctr_list_filterable(s->containers, size, err);
    if (all != NULL)
        *out = flt_containers_apply(all, &o, err);
    if (*out != NULL)
        refresh_images(s, *out, images, size);
    json_decref(all);
    json_decref(ancestors);
    json_decref(images);
    return *out != NULL ? 0 : -1;
}

static int containers_list(struct api_request *req, void *data, struct merr *err)
{
    struct api_filters f;
    if (api_request_filters(req, &f, err) < 0)
        return -1;
    json_t *out = NULL;
    int rc = containers_filtered(req, data, &f, &out, err);
    api_filters_release(&f);
    return rc < 0 ? -1 : api_reply_json(req, 200, out, err);
}

void handlers_add_sizes(struct engine_services *s, json_t *inspect)
{
    const char *id = json_string_value(json_object_get(inspect, "Id"));
    const char *image = json_string_value(json_object_get(inspect, "Image"));
    int64_t rw = 0;
    struct merr ignored = MERR_INIT;
    if (id == NULL || ctr_size_rw(s->containers, id, &rw, &ignored) < 0)
        return;
    json_t *images = handlers_image_entries(s, &ignored);
    json_int_t img = image != NULL ? json_integer_value(json_object_get(entry_by_id(images, image), "Size")) : 0;
    json_decref(images);
    json_object_set_new(inspect, "SizeRw", json_integer(rw));
    json_object_set_new(inspect, "SizeRootFs", json_integer(rw + img));
}

static const struct api_param containers_params[] = {
    API_PARAM("all"), API_PARAM("limit"), API_PARAM("size"), API_PARAM("filters"), API_PARAMS_END,
};
static const struct api_param images_params[] = {
    API_PARAM("all"),
    API_PARAM("filters"),
    API_PARAM_IGNORE("digests", "dockerd reads it in no API version: RepoDigests are always "
                                "listed"),
    API_PARAM("shared-size"),
    API_PARAMS_END,
};

static const struct api_route routes[] = {
    { "GET", "/containers/json", containers_list, API_ROUTE_WORKER, containers_params },
    { "GET", "/images/json", images_list, 0, images_params },
};

int handlers_register_lists(struct api_router *r, struct engine_services *s, struct merr *err)
{
    return api_router_add_table(r, routes, sizeof routes / sizeof routes[0], s, err);
}
