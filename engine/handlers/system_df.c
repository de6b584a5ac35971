/* GET /system/df: what images, containers, volumes and the build cache use on disk, in dockerd's
 * shape (docker system df [-v] reads it). */
#include <jansson.h>
#include <string.h>

#include "api/api.h"
#include "container/manager.h"
#include "error.h"
#include "handlers.h"
#include "image/image.h"
#include "volume/volume.h"

/* Containers with SizeRw and SizeRootFs (their image's size added), facts removed. */
static json_t *containers_usage(struct engine_services *s, const json_t *images, struct merr *err)
{
    json_t *list = ctr_list_filterable(s->containers, true, err);
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c) {
        json_object_del(c, "_facts");
        const char *image_id = json_string_value(json_object_get(c, "ImageID"));
        json_int_t size = 0;
        size_t k;
        json_t *img;
        json_array_foreach(images, k, img) {
            const char *id = json_string_value(json_object_get(img, "Id"));
            if (id != NULL && image_id != NULL && strcmp(id, image_id) == 0)
                size = json_integer_value(json_object_get(img, "Size"));
        }
        json_int_t rw = json_integer_value(json_object_get(c, "SizeRw"));
        json_object_set_new(c, "SizeRootFs", json_integer(rw + size));
    }
    return list;
}

/* Images with SharedSize and Containers (how many containers use each). */
static int images_usage(struct engine_services *s, json_t *images, const json_t *containers,
                        json_int_t *layers_size, struct merr *err)
{
    json_t *shared = NULL;
    int64_t total = 0;
    if (image_disk_usage(s->images, &shared, &total, err) < 0)
        return -1;
    *layers_size = total;
    size_t i;
    json_t *img;
    json_array_foreach(images, i, img) {
        const char *id = json_string_value(json_object_get(img, "Id"));
        json_int_t n = 0;
        size_t k;
        json_t *c;
        json_array_foreach(containers, k, c) {
            const char *cid = json_string_value(json_object_get(c, "ImageID"));
            n += cid != NULL && id != NULL && strcmp(cid, id) == 0;
        }
        json_object_set_new(img, "Containers", json_integer(n));
        json_object_set_new(img, "SharedSize",
                            json_integer(json_integer_value(json_object_get(shared, id))));
    }
    json_decref(shared);
    return 0;
}

/* Volumes with UsageData {Size, RefCount}. */
static json_t *volumes_usage(struct engine_services *s, const json_t *containers,
                             struct merr *err)
{
    json_t *vols = vol_list(s->volumes, NULL, err);
    size_t i;
    json_t *v;
    json_array_foreach(vols, i, v) {
        const char *name = json_string_value(json_object_get(v, "Name"));
        const char *path = json_string_value(json_object_get(v, "Mountpoint"));
        json_int_t refs = 0;
        size_t k, j;
        json_t *c, *m;
        json_array_foreach(containers, k, c) {
            json_array_foreach(json_object_get(c, "Mounts"), j, m) {
                const char *mn = json_string_value(json_object_get(m, "Name"));
                refs += mn != NULL && name != NULL && strcmp(mn, name) == 0;
            }
        }
        json_object_set_new(v, "UsageData",
                            json_pack("{s:I,s:I}", "Size",
                                      (json_int_t)(path != NULL ? ctr_dir_size(path) : 0),
                                      "RefCount", refs));
    }
    return vols;
}

static bool wanted(const char *const *types, const char *type)
{
    if (types == NULL || types[0] == NULL)
        return true;
    for (size_t i = 0; types[i] != NULL; i++)
        if (strcmp(types[i], type) == 0)
            return true;
    return false;
}

static int system_df(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    auto_free const char **types = api_request_query_all(req, "type");
    static const char *const known[] = { "container", "image", "volume", "build-cache", NULL };
    for (size_t i = 0; types != NULL && types[i] != NULL; i++) {
        bool ok = false;
        for (size_t k = 0; known[k] != NULL && !ok; k++)
            ok = strcmp(types[i], known[k]) == 0;
        if (!ok)
            return merr_set(err, MERR_INVALID, 0, "unknown object type: %s", types[i]);
    }
    json_t *images = handlers_image_entries(s, err);
    json_t *containers = images != NULL ? containers_usage(s, images, err) : NULL;
    json_int_t layers = 0;
    if (containers == NULL || images_usage(s, images, containers, &layers, err) < 0) {
        json_decref(images);
        json_decref(containers);
        return -1;
    }
    json_t *vols = wanted(types, "volume") ? volumes_usage(s, containers, err) : json_array();
    json_t *cache = wanted(types, "build-cache") ? handlers_build_cache_usage(s, images, err)
                                                 : json_array();
    json_t *out = json_pack("{s:I,s:o,s:o,s:o,s:o}", "LayersSize", layers, "Images",
                            wanted(types, "image") ? images : json_array(), "Containers",
                            wanted(types, "container") ? containers : json_array(), "Volumes",
                            vols != NULL ? vols : json_array(), "BuildCache",
                            cache != NULL ? cache : json_array());
    if (!wanted(types, "image"))
        json_decref(images);
    if (!wanted(types, "container"))
        json_decref(containers);
    return api_reply_json(req, 200, out, err);
}

static const struct api_param df_params[] = { API_PARAM("type"), API_PARAMS_END };

static const struct api_route routes[] = {
    { "GET", "/system/df", system_df, API_ROUTE_WORKER, df_params },
};

int handlers_register_system_df(struct api_router *r, struct engine_services *s,
                                struct merr *err)
{
    return api_router_add_table(r, routes, sizeof routes / sizeof routes[0], s, err);
}
