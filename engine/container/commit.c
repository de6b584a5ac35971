/* docker diff and the container side of docker commit: the container's upper directory read
 * against its image's layers (engine/layer/diff.c; under vfs its copy against the image's
 * directory, engine/layer/naive.c), with the engine's own mount targets left out as dockerd's
 * init layer keeps them out. */
#include <string.h>

#include "error.h"
#include "fsutil.h"
#include "layer/layer.h"
#include "strv.h"
#include "manager-priv.h"

/* The container's upper dir and image (under the lock), then its image's layer dirs. */
static int source_of(struct ctr_manager *m, const char *ref, char **upper, char ***lowers,
                     char id[CTR_ID_LEN + 1], json_t **inspect, struct merr *err)
{
    pthread_mutex_lock(&m->lock);
    struct ctr_entry *e = mgr_find_locked(m, ref, err);
    if (e == NULL) {
        pthread_mutex_unlock(&m->lock);
        return -1;
    }
    *upper = xstrdup(e->upper);
    auto_free char *work = xstrdup(e->work);
    auto_free char *image = xstrdup(e->c->image_id);
    memcpy(id, e->c->id, CTR_ID_LEN + 1);
    if (inspect != NULL)
        *inspect = ctr_inspect_json(e->c, e->rootfs, e->log_path);
    pthread_mutex_unlock(&m->lock);
    char *image_id = NULL;
    json_t *config = NULL;
    if (m->images.resolve(m->images.data, image, &image_id, &config, lowers, err) < 0) {
        free(*upper);
        *upper = NULL;
        if (inspect != NULL) {
            json_decref(*inspect);
            *inspect = NULL;
        }
        return -1;
    }
    free(image_id);
    json_decref(config);
    /* a container that never started has no upper directory yet: nothing changed */
    if (m->layers->prepare_container(*upper, work, (const char *const *)*lowers, err) == 0)
        return 0;
    free(*upper);
    *upper = NULL;
    strv_free(*lowers);
    *lowers = NULL;
    if (inspect != NULL) {
        json_decref(*inspect);
        *inspect = NULL;
    }
    return -1;
}

json_t *ctr_changes(struct ctr_manager *m, const char *ref, struct merr *err)
{
    auto_free char *upper = NULL;
    auto_strv char **lowers = NULL;
    char id[CTR_ID_LEN + 1];
    if (source_of(m, ref, &upper, &lowers, id, NULL, err) < 0)
        return NULL;
    struct layer_changes c;
    if (m->layers->changes(upper, (const char *const *)lowers, layer_init_paths, &c, err) < 0)
        return NULL;
    json_t *out = json_array();
    for (size_t i = 0; i < c.n; i++)
        json_array_append_new(out, json_pack("{s:s,s:i}", "Path", c.v[i].path, "Kind",
                                             (int)c.v[i].kind));
    layer_changes_release(&c);
    return out;
}

int ctr_commit_source(struct ctr_manager *m, const char *ref, struct ctr_commit_src *out,
                      struct merr *err)
{
    memset(out, 0, sizeof *out);
    json_t *inspect = NULL;
    out->layers = m->layers;
    if (source_of(m, ref, &out->upper, &out->lowers, out->id, &inspect, err) < 0)
        return -1;
    json_t *cfg = json_object_get(inspect, "Config");
    out->config = json_is_object(cfg) ? json_deep_copy(cfg) : json_object();
    out->image_id = xstrdup(json_string_value(json_object_get(inspect, "Image")));
    json_t *labels = json_object_get(cfg, "Labels");
    const char *name = json_string_value(json_object_get(inspect, "Name"));
    const char *image = json_string_value(json_object_get(cfg, "Image"));
    out->event_attrs = json_is_object(labels) ? json_deep_copy(labels) : json_object();
    json_object_set_new(out->event_attrs, "image", json_string(image != NULL ? image : ""));
    json_object_set_new(out->event_attrs, "name",
                        json_string(name == NULL ? "" : name[0] == '/' ? name + 1 : name));
    json_decref(inspect);
    return 0;
}

void ctr_commit_src_release(struct ctr_commit_src *s)
{
    free(s->upper);
    strv_free(s->lowers);
    free(s->image_id);
    json_decref(s->config);
    json_decref(s->event_attrs);
    memset(s, 0, sizeof *s);
}

int ctr_commit_write_layer(const struct ctr_commit_src *s, int fd, struct merr *err)
{
    return s->layers->tar_changes(s->upper, (const char *const *)s->lowers, layer_init_paths, fd,
                                  err);
}
