/* --volumes-from NAME[:ro|:rw]: at create, the new container gets the volume and bind mounts
 * of the named containers (its own mounts win on the same destination), as dockerd. */
#include <string.h>

#include "error.h"
#include "fsutil.h"
#include "manager-priv.h"
#include "volume/volume.h"

static bool has_destination(const json_t *mounts, const char *dst)
{
    size_t i;
    const json_t *m;
    json_array_foreach(mounts, i, m) {
        const char *d = json_string_value(json_object_get(m, "Destination"));
        if (d != NULL && strcmp(d, dst) == 0)
            return true;
    }
    return false;
}

/* Copies donor's mounts into mounts; references the volumes for ctr_id. Lock held. */
static void copy_mounts_locked(struct ctr_manager *m, const struct container *donor, int rw,
                               json_t *mounts, const char *ctr_id)
{
    size_t i;
    const json_t *dm;
    json_array_foreach(donor->mounts, i, dm) {
        const char *type = json_string_value(json_object_get(dm, "Type"));
        const char *dst = json_string_value(json_object_get(dm, "Destination"));
        if (type == NULL || dst == NULL || strcmp(type, "tmpfs") == 0 ||
            has_destination(mounts, dst))
            continue;
        json_t *copy = json_deep_copy(dm);
        json_object_del(copy, "Anonymous"); /* rm -v of this container leaves them */
        if (rw >= 0) {
            json_object_set_new(copy, "RW", json_boolean(rw));
            json_object_set_new(copy, "Mode", json_string(rw ? "rw" : "ro"));
        }
        const char *name = json_string_value(json_object_get(copy, "Name"));
        if (strcmp(type, "volume") == 0 && name != NULL && m->volumes != NULL)
            vol_ref(m->volumes, name, ctr_id);
        json_array_append_new(mounts, copy);
    }
}

int mounts_volumes_from(struct ctr_manager *m, const json_t *host_config, json_t *mounts,
                        const char *ctr_id, struct merr *err)
{
    const json_t *list = json_object_get(host_config, "VolumesFrom");
    size_t i;
    const json_t *v;
    json_array_foreach(list, i, v) {
        char name[256];
        int rw;
        if (!json_is_string(v) ||
            ctr_volumes_from_parse(json_string_value(v), name, sizeof name, &rw, err) < 0)
            return json_is_string(v) ? -1
                                     : merr_set(err, MERR_INVALID, 0, "invalid VolumesFrom entry");
        pthread_mutex_lock(&m->lock);
        struct ctr_entry *donor = mgr_find_locked(m, name, err);
        if (donor != NULL)
            copy_mounts_locked(m, donor->c, rw, mounts, ctr_id);
        pthread_mutex_unlock(&m->lock);
        if (donor == NULL)
            return -1;
    }
    return 0;
}
