/* A container's mounts: resolved once at create (volumes created and referenced, bind sources
 * checked), turned into runtime mounts at every start (copy-up into fresh volumes), released
 * at remove (anonymous volumes go with `rm -v` and AutoRemove). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "manager-priv.h"
#include "runtime/runtime.h"
#include "volume/volume.h"

json_t *ctr_mounts_public(const json_t *mounts)
{
    static const char *const keys[] = { "Type", "Name", "Source", "Destination", "Driver",
                                        "Mode", "RW", "Propagation" };
    json_t *out = json_array();
    size_t i;
    const json_t *m;
    json_array_foreach(mounts, i, m) {
        json_t *pub = json_object();
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            json_t *v = json_object_get(m, keys[k]);
            if (v != NULL)
                json_object_set(pub, keys[k], v);
        }
        if (json_object_get(pub, "Propagation") == NULL)
            json_object_set_new(pub, "Propagation", json_string(""));
        if (json_object_get(pub, "Source") == NULL)
            json_object_set_new(pub, "Source", json_string(""));
        json_array_append_new(out, pub);
    }
    return out;
}

void mounts_release(struct ctr_manager *m, const json_t *mounts, const char *ctr_id,
                    bool remove_anonymous)
{
    if (m->volumes == NULL)
        return;
    size_t i;
    const json_t *j;
    json_array_foreach(mounts, i, j) {
        const char *name = json_string_value(json_object_get(j, "Name"));
        if (name == NULL || strcmp(json_string_value(json_object_get(j, "Type")), "volume") != 0)
            continue;
        vol_unref(m->volumes, name, ctr_id);
        if (!remove_anonymous || !vol_is_anonymous(m->volumes, name))
            continue;
        struct merr err = MERR_INIT;
        if (vol_remove(m->volumes, name, false, &err) < 0 && err.code != MERR_EXISTS)
            mlog_warn(m->log, "cannot remove volume %s: %s", name, err.msg);
    }
}

void mounts_reref(struct ctr_manager *m, const json_t *mounts, const char *ctr_id)
{
    size_t i;
    const json_t *j;
    json_array_foreach(mounts, i, j) {
        const char *name = json_string_value(json_object_get(j, "Name"));
        if (m->volumes != NULL && name != NULL)
            vol_ref(m->volumes, name, ctr_id);
    }
}

static int check_bind_source(struct mnt_spec *s, struct merr *err)
{
    struct stat st;
    if (stat(s->source, &st) == 0)
        return 0;
    if (errno != ENOENT)
        return merr_set(err, MERR_IO, errno, "cannot stat bind source '%s'", s->source);
    if (!s->create_source)
        return merr_set(err, MERR_INVALID, 0,
                        "invalid mount config for type \"bind\": bind source path does not "
                        "exist: %s",
                        s->source);
    return fs_mkdir_p(s->source, 0755, err);
}

/* HostConfig.VolumeDriver names the driver of the volumes the container creates, as dockerd:
 * only "local" exists here, so another name fails when a volume is to be made, with dockerd's
 * words for a missing plugin (a 400: a 404 would make the CLI pull the image). */
static int volume_driver_check(struct ctr_manager *m, const json_t *host_config,
                               const char *name, struct merr *err)
{
    const char *driver = json_string_value(json_object_get(host_config, "VolumeDriver"));
    if (driver == NULL || driver[0] == '\0' || strcmp(driver, "local") == 0)
        return 0;
    if (name != NULL) {
        struct merr ignored;
        json_t *v = vol_inspect(m->volumes, name, &ignored);
        json_decref(v);
        if (v != NULL)
            return 0; /* an existing volume is used whatever its driver */
    }
    return merr_set(err, MERR_INVALID, 0,
                    "error looking up volume plugin %s: plugin \"%s\" not found", driver, driver);
}

json_t *mounts_resolve(struct ctr_manager *m, const json_t *create_config,
                       const json_t *host_config, const json_t *image_config, const char *ctr_id,
                       struct merr *err)
{
    struct mnt_list l = { 0 };
    /* `-v /path` travels in Config.Volumes, next to the image's VOLUME entries */
    json_t *anon = json_object();
    json_object_update(anon, json_object_get(image_config, "Volumes"));
    json_object_update(anon, json_object_get(create_config, "Volumes"));
    int rc = mnt_list_from_config(host_config, anon, &l, err);
    json_decref(anon);
    if (rc < 0)
        return NULL;
    json_t *out = json_array();
    for (size_t i = 0; i < l.n; i++) {
        struct mnt_spec *s = &l.items[i];
        if (s->type == MNT_BIND && check_bind_source(s, err) < 0)
            goto fail;
        if (s->type == MNT_TMPFS) {
            unsigned long flags;
            auto_free char *data = NULL;
            if (mnt_tmpfs_options(s->tmpfs_options, &flags, &data, err) < 0)
                goto fail;
        }
        json_t *j = mnt_spec_to_json(s);
        json_array_append_new(out, j);
        if (s->type != MNT_VOLUME)
            continue;
        if (m->volumes == NULL) {
            merr_set(err, MERR_UNSUPPORTED, 0, "volumes are not available");
            goto fail;
        }
        if (volume_driver_check(m, host_config, s->source, err) < 0)
            goto fail;
        /* --mount's VolumeOptions.Labels go to the volume it creates (an existing one keeps
         * its own, as dockerd) */
        json_t *v = vol_create(m->volumes, s->source, s->labels, NULL, s->source == NULL, err);
        if (v == NULL)
            goto fail;
        const char *name = json_string_value(json_object_get(v, "Name"));
        json_object_set_new(j, "Name", json_string(name));
        json_object_set(j, "Source", json_object_get(v, "Mountpoint"));
        json_object_set_new(j, "Driver", json_string("local"));
        if (s->source == NULL)
            json_object_set_new(j, "Anonymous", json_true());
        vol_ref(m->volumes, name, ctr_id);
        json_decref(v);
    }
    mnt_list_release(&l);
    return out;
fail:
    mounts_release(m, out, ctr_id, true);
    json_decref(out);
    mnt_list_release(&l);
    return NULL;
}

void mounts_plan_release(struct mounts_plan *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free((char *)p->items[i].source);
        free((char *)p->items[i].destination);
        free((char *)p->items[i].data);
    }
    free(p->items);
    memset(p, 0, sizeof *p);
}

int mounts_prepare(struct ctr_manager *m, const struct container *c, char *const *layers,
                   struct mounts_plan *plan, struct merr *err)
{
    memset(plan, 0, sizeof *plan);
    size_t n = json_array_size(c->mounts);
    if (n == 0)
        return 0;
    plan->items = xcalloc(n, sizeof *plan->items);
    size_t i;
    const json_t *j;
    json_array_foreach(c->mounts, i, j) {
        struct mnt_spec s;
        if (mnt_spec_from_json(j, &s, err) < 0) {
            mounts_plan_release(plan);
            return -1;
        }
        struct rt_bind_mount *rm = &plan->items[plan->n++];
        rm->destination = xstrdup(s.target);
        rm->readonly = s.readonly;
        int rc = 0;
        if (s.type == MNT_TMPFS) {
            unsigned long flags = 0;
            char *data = NULL;
            rc = mnt_tmpfs_options(s.tmpfs_options, &flags, &data, err);
            rm->fstype = "tmpfs";
            rm->source = xstrdup("tmpfs");
            rm->data = data;
            rm->flags = flags;
            rm->readonly = (flags & MS_RDONLY) != 0 || s.readonly;
        } else if (s.type == MNT_BIND) {
            rm->source = xstrdup(s.source);
            struct stat st;
            if (stat(s.source, &st) < 0)
                rc = merr_set(err, MERR_INVALID, errno,
                              "invalid mount config for type \"bind\": bind source path does not "
                              "exist: %s",
                              s.source);
        } else if (m->volumes == NULL) {
            rc = merr_set(err, MERR_UNSUPPORTED, 0, "volumes are not available");
        } else {
            bool fresh = false;
            char *path = vol_mount_path(m->volumes, s.source, c->id, &fresh, err);
            rm->source = path;
            if (path == NULL) {
                rc = -1;
            } else if (fresh && !s.nocopy) {
                rc = vol_copy_up(layers, s.target, path, err);
                if (rc == 0)
                    vol_mark_populated(m->volumes, s.source);
            }
        }
        mnt_spec_release(&s);
        if (rc < 0) {
            mounts_plan_release(plan);
            return -1;
        }
    }
    return 0;
}
