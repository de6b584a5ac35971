/* docker system df: the disk used by layers, and what each image shares with others. */
#include <errno.h>
#include <string.h>

#include "error.h"
#include "image/image.h"
#include "image/internal.h"
#include "strv.h"

/* {chain: count of images using it} over every image record. */
static json_t *chain_counts_locked(struct image_store *s, char **ids, struct merr *err)
{
    json_t *counts = json_object();
    for (char **id = ids; *id != NULL; id++) {
        json_t *rec = store_image_load(s, *id, err);
        if (rec == NULL) {
            json_decref(counts);
            return NULL;
        }
        size_t i;
        json_t *l;
        json_array_foreach(json_object_get(rec, "layers"), i, l) {
            const char *chain = json_string_value(json_object_get(l, "chain"));
            if (chain == NULL)
                continue;
            json_int_t n = json_integer_value(json_object_get(counts, chain));
            json_object_set_new(counts, chain, json_integer(n + 1));
        }
        json_decref(rec);
    }
    return counts;
}

static int64_t layer_size_locked(struct image_store *s, const char *chain)
{
    uint64_t size = 0;
    struct merr ignored;
    return store_layer_size(s, chain, &size, &ignored) == 0 ? (int64_t)size : 0;
}

int image_disk_usage(struct image_store *s, json_t **shared_out, int64_t *layers_size,
                     struct merr *err)
{
    *shared_out = NULL;
    *layers_size = 0;
    pthread_mutex_lock(&s->lock);
    char **ids = store_image_ids(s, err);
    json_t *counts = ids != NULL ? chain_counts_locked(s, ids, err) : NULL;
    json_t *shared = counts != NULL ? json_object() : NULL;
    if (shared != NULL) {
        const char *chain;
        json_t *n;
        json_object_foreach(counts, chain, n) *layers_size += layer_size_locked(s, chain);
        for (char **id = ids; *id != NULL; id++) {
            struct merr ignored;
            json_t *rec = store_image_load(s, *id, &ignored);
            int64_t sum = 0;
            size_t i;
            json_t *l;
            json_array_foreach(json_object_get(rec, "layers"), i, l) {
                const char *c = json_string_value(json_object_get(l, "chain"));
                if (c != NULL && json_integer_value(json_object_get(counts, c)) > 1)
                    sum += layer_size_locked(s, c);
            }
            json_decref(rec);
            json_object_set_new(shared, *id, json_integer(sum));
        }
    }
    pthread_mutex_unlock(&s->lock);
    strv_free(ids);
    json_decref(counts);
    if (shared == NULL)
        return -1;
    *shared_out = shared;
    return 0;
}
