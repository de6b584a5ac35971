/* The build cache as the API shows it: GET /system/df's BuildCache and POST /build/prune
 * (docker builder prune, docker system prune). An entry's size is what its step's image adds to
 * its parent; pruning drops entries and then the intermediate images only the cache held
 * (untagged, without children, no container). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "container/container.h"
#include "container/manager.h"
#include "error.h"
#include "events/events.h"
#include "filters/filters.h"
#include "fsutil.h"
#include "handlers.h"
#include "image/image.h"

#define PRUNE_PASSES 4096 /* an image chain is at most this deep in one prune */

static const json_t *image_by_id(const json_t *images, const char *id)
{
    size_t i;
    json_t *e;
    json_array_foreach(images, i, e) {
        const char *eid = json_string_value(json_object_get(e, "Id"));
        if (eid != NULL && id != NULL && strcmp(eid, id) == 0)
            return e;
    }
    return NULL;
}

/* What the entry's image adds to its parent. */
static json_int_t own_size(const json_t *images, const char *id)
{
    const json_t *img = image_by_id(images, id);
    if (img == NULL)
        return 0;
    json_int_t size = json_integer_value(json_object_get(img, "Size"));
    const json_t *parent =
        image_by_id(images, json_string_value(json_object_get(img, "ParentId")));
    json_int_t base = parent != NULL ? json_integer_value(json_object_get(parent, "Size")) : 0;
    return size > base ? size - base : 0;
}

static bool tagged(const json_t *img)
{
    return json_array_size(json_object_get(img, "RepoTags")) > 0 ||
           json_array_size(json_object_get(img, "RepoDigests")) > 0;
}

static bool has_child(const json_t *images, const char *id)
{
    size_t i;
    json_t *e;
    json_array_foreach(images, i, e) {
        const char *p = json_string_value(json_object_get(e, "ParentId"));
        if (p != NULL && strcmp(p, id) == 0)
            return true;
    }
    return false;
}

/* One entry in dockerd's types.BuildCache shape; Shared when a later image is built on it. */
static json_t *df_entry(const json_t *e, const json_t *images)
{
    const char *id = json_string_value(json_object_get(e, "ID"));
    auto_free char *created = fmt_rfc3339_nano(json_integer_value(json_object_get(e, "CreatedAt")));
    auto_free char *used = fmt_rfc3339_nano(json_integer_value(json_object_get(e, "LastUsedAt")));
    return json_pack("{s:s,s:[],s:s,s:s,s:b,s:b,s:I,s:s,s:s,s:I}", "ID",
                     json_string_value(json_object_get(e, "CacheID")), "Parents", "Type",
                     "regular", "Description",
                     json_string_value(json_object_get(e, "Description")), "InUse", 0, "Shared",
                     has_child(images, id), "Size", own_size(images, id), "CreatedAt", created, "LastUsedAt", used,
                     "UsageCount", json_integer_value(json_object_get(e, "UsageCount")));
}

json_t *handlers_build_cache_usage(struct engine_services *s, const json_t *images,
                                   struct merr *err)
{
    json_t *list = image_build_cache_list(s->images, err);
    if (list == NULL)
        return NULL;
    json_t *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) {
        if (!json_is_true(json_object_get(e, "Gone")))
            json_array_append_new(out, df_entry(e, images));
    }
    json_decref(list);
    return out;
}

static bool json_array_contains_entry(const json_t *list, const json_t *e)
{
    size_t i;
    json_t *x;
    json_array_foreach(list, i, x) {
        if (x == e)
            return true;
    }
    return false;
}

static int by_last_use_newest(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "LastUsedAt"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "LastUsedAt"));
    return x < y ? 1 : x > y ? -1 : 0;
}

struct prune_opts {
    bool all;
    int64_t until_ns;
    long long keep;
    char *const *ids;
};

static bool wanted_id(const struct prune_opts *o, const char *cache_id)
{
    if (o->ids == NULL)
        return true;
    for (size_t i = 0; o->ids[i] != NULL; i++)
        if (strncmp(cache_id, o->ids[i], strlen(o->ids[i])) == 0)
            return true;
    return false;
}

/* The entries to drop, oldest use last-kept: until= keeps the ones used since, keep-storage
 * the most recently used that fit, and without all the ones whose image is tagged. */
static json_t *select_entries(const json_t *list, const json_t *images,
                              const struct prune_opts *o)
{
    size_t n = json_array_size(list);
    json_t **v = xcalloc(n + 1, sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(list, i);
    qsort(v, n, sizeof *v, by_last_use_newest);
    json_t *drop = json_array();
    long long kept = 0;
    for (size_t i = 0; i < n; i++) {
        const char *id = json_string_value(json_object_get(v[i], "ID"));
        json_int_t size = own_size(images, id);
        if (json_is_true(json_object_get(v[i], "Gone")))
            continue;
        if (!wanted_id(o, json_string_value(json_object_get(v[i], "CacheID"))) ||
            (!o->all && tagged(image_by_id(images, id))) ||
            (o->until_ns != 0 && json_integer_value(json_object_get(v[i], "LastUsedAt")) >
                                     o->until_ns)) {
            continue;
        }
        if (o->keep > 0 && kept + size <= o->keep) {
            kept += size;
            continue;
        }
        json_array_append(drop, v[i]);
    }
    free(v);
    return drop;
}

static bool in_use(const char *image_id, void *ctx)
{
    return ctr_image_in_use(ctx, image_id);
}

struct prune_run {
    struct engine_services *s;
    bool all;
    json_t *cands;   /* image ID → [CacheID...] of the selected entries */
    json_t *held;    /* image IDs of the entries that stay whatever happens */
    json_t *deleted; /* CacheIDs dropped */
    int64_t reclaimed;
};

static void drop_entries(struct prune_run *r, const json_t *cache_ids)
{
    size_t i;
    json_t *c;
    json_array_foreach(cache_ids, i, c) {
        struct merr err = MERR_INIT;
        if (image_build_cache_drop(r->s->images, json_string_value(c), &err) == 0)
            json_array_append(r->deleted, c);
    }
}

/* One pass over the candidates: an entry goes with its image (removed when nothing but the
 * cache holds it: untagged, no child left, no container), or alone when its image is tagged
 * and all was asked. true when something changed. */
static bool prune_pass(struct prune_run *r)
{
    struct merr err = MERR_INIT;
    json_t *images = handlers_image_entries(r->s, &err);
    bool changed = false;
    const char *id;
    json_t *ids, *tmp;
    json_object_foreach_safe(r->cands, tmp, id, ids) {
        const json_t *img = image_by_id(images, id);
        bool keep_image = img != NULL && (tagged(img) || json_object_get(r->held, id) != NULL ||
                                          ctr_image_in_use(r->s->containers, id));
        if (keep_image && !(r->all && tagged(img))) {
            json_object_del(r->cands, id); /* held by something else: the entry stays */
            continue;
        }
        if (!keep_image && img != NULL) {
            if (has_child(images, id))
                continue; /* maybe once its children went */
            json_int_t size = own_size(images, id);
            char *report = NULL;
            struct merr rerr = MERR_INIT;
            if (image_remove(r->s->images, id, false, in_use, r->s->containers, &report,
                             &rerr) < 0) {
                json_object_del(r->cands, id);
                continue;
            }
            free(report);
            r->reclaimed += size;
            evt_emit(r->s->events, "image", "delete", id, json_pack("{s:s}", "name", id));
        }
        drop_entries(r, ids);
        json_object_del(r->cands, id);
        changed = true;
    }
    json_decref(images);
    return changed;
}

static int prune_opts_read(struct api_request *req, struct api_filters *f, struct prune_opts *o,
                           struct merr *err)
{
    static const char *const accepted[] = { "until", "id", NULL };
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    *o = (struct prune_opts){ .all = api_request_query_bool(req, "all") };
    if (flt_prune_prepare(f, accepted, (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec,
                          &o->until_ns, err) < 0)
        return -1;
    o->ids = api_filters_get(f, "id");
    long long reserved = 0;
    if (api_request_query_int(req, "keep-storage", 0, &o->keep, err) < 0 ||
        api_request_query_int(req, "reserved-space", 0, &reserved, err) < 0)
        return -1;
    if (reserved > o->keep)
        o->keep = reserved;
    return 0;
}

int handlers_build_prune(struct api_request *req, struct engine_services *s, struct merr *err)
{
    struct api_filters f;
    struct prune_opts o;
    if (api_request_filters(req, &f, err) < 0)
        return -1;
    json_t *list = NULL, *images = NULL;
    if (prune_opts_read(req, &f, &o, err) == 0 &&
        (list = image_build_cache_list(s->images, err)) != NULL)
        images = handlers_image_entries(s, err);
    if (images == NULL) {
        json_decref(list);
        api_filters_release(&f);
        return -1;
    }
    json_t *drop = select_entries(list, images, &o);
    api_filters_release(&f);
    struct prune_run run = { s, o.all, json_object(), json_object(), json_array(), 0 };
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) {
        const char *id = json_string_value(json_object_get(e, "ID"));
        struct merr derr = MERR_INIT;
        if (json_is_true(json_object_get(e, "Gone"))) {
            if (image_build_cache_drop(s->images, json_string_value(json_object_get(e, "CacheID")),
                                       &derr) < 0) {
                /* tried again at the next prune */
            }
        } else if (!json_array_contains_entry(drop, e)) {
            json_object_set_new(run.held, id, json_true());
        } else {
            json_t *ids = json_object_get(run.cands, id);
            if (ids == NULL)
                json_object_set_new(run.cands, id, ids = json_array());
            json_array_append(ids, json_object_get(e, "CacheID"));
        }
    }
    for (int pass = 0; pass < PRUNE_PASSES && json_object_size(run.cands) > 0; pass++)
        if (!prune_pass(&run))
            break;
    struct merr merr_ = MERR_INIT;
    if (image_build_cache_memos_drop(s->images, &merr_) < 0) {
        /* tried again at the next prune */
    }
    int64_t reclaimed = run.reclaimed;
    json_t *deleted = run.deleted;
    json_decref(run.cands);
    json_decref(run.held);
    json_decref(drop);
    json_decref(list);
    json_decref(images);
    char n[32];
    snprintf(n, sizeof n, "%lld", (long long)reclaimed);
    evt_emit(s->events, "builder", "prune", "", json_pack("{s:s}", "reclaimed", n));
    return api_reply_json(req, 200,
                          json_pack("{s:o,s:I}", "CachesDeleted", deleted, "SpaceReclaimed",
                                    (json_int_t)reclaimed),
                          err);
}
