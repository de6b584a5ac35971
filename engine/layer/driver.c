/* The two layer drivers. overlay2: a layer is its own diff, a container an overlay of its
 * upper directory on its image's layers. vfs (a data root that cannot hold overlay layers, such
 * as one on overlayfs, or --storage-driver vfs): a layer is the whole chain as a plain
 * directory, a container's rootfs a copy of its image's top directory, and diff and commit
 * compare that copy with the image's directory, as dockerd's vfs driver does. */
#include "layer-priv.h"

#include "cleanup.h"
#include "error.h"
#include "fsutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int overlay_prepare(const char *upper, const char *work, const char *const *lowers,
                           struct merr *err)
{
    (void)lowers;
    if (fs_mkdir_p(upper, 0755, err) < 0 || fs_mkdir_p(work, 0700, err) < 0)
        return -1;
    return 0;
}

static int overlay_tar(const char *upper, const char *const *lowers, const char *const *skip,
                       int out_fd, struct merr *err)
{
    (void)lowers;
    return layer_tar_dir_skip(upper, out_fd, skip, NULL, err);
}

const struct layer_driver layer_driver_overlay = {
    .name = "overlay2",
    .dir = "layers",
    .prepare_container = overlay_prepare,
    .changes = layer_diff_changes,
    .tar_changes = overlay_tar,
};

/* The chain directory: the parent's copied, the layer applied on it, then put where the
 * extracted layer was. */
static int vfs_finish(const char *diff, const char *parent, struct merr *err)
{
    auto_free char *chain = NULL;
    if (asprintf(&chain, "%s.chain", diff) < 0)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot build a path");
    if (layer_remove_tree(chain, err) < 0)
        return -1;
    if (parent != NULL && layer_copy_tree(parent, chain, err) < 0)
        return -1;
    if (parent == NULL && mkdir(chain, 0755) < 0)
        return merr_set(err, MERR_IO, errno, "cannot create '%s'", chain);
    if (layer_vfs_apply(diff, chain, err) < 0 || layer_remove_tree(diff, err) < 0)
        return -1;
    if (rename(chain, diff) < 0)
        return merr_set(err, MERR_IO, errno, "cannot rename '%s'", chain);
    return 0;
}

static int vfs_prepare(const char *upper, const char *work, const char *const *lowers,
                       struct merr *err)
{
    (void)work;
    struct stat st;
    if (lstat(upper, &st) == 0)
        return 0;
    if (lowers == NULL || lowers[0] == NULL)
        return merr_set(err, MERR_INVALID, 0, "no image directory for '%s'", upper);
    /* a copy of its own (a diff and a start may prepare at once); one left by a crash goes
     * with the container's directory */
    auto_free char *tmp = NULL;
    if (asprintf(&tmp, "%s.copy-XXXXXX", upper) < 0)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot build a path");
    if (mkdtemp(tmp) == NULL || rmdir(tmp) < 0)
        return merr_set(err, MERR_IO, errno, "cannot create '%s'", tmp);
    if (layer_copy_tree(lowers[0], tmp, err) < 0) {
        struct merr ignored = MERR_INIT;
        if (layer_remove_tree(tmp, &ignored) < 0) {
            /* left for the container's removal */
        }
        return -1;
    }
    if (rename(tmp, upper) < 0) {
        int saved = errno;
        struct merr ignored = MERR_INIT;
        if (layer_remove_tree(tmp, &ignored) < 0) {
            /* left for the container's removal */
        }
        if (saved == EEXIST || saved == ENOTEMPTY)
            return 0; /* the other preparer finished first: its copy is the same */
        return merr_set(err, MERR_IO, saved, "cannot rename '%s'", tmp);
    }
    return 0;
}

static int vfs_changes(const char *upper, const char *const *lowers, const char *const *skip,
                       struct layer_changes *out, struct merr *err)
{
    if (lowers == NULL || lowers[0] == NULL)
        return merr_set(err, MERR_INVALID, 0, "no image directory to compare '%s' with", upper);
    return layer_naive_changes(upper, lowers[0], skip, out, err);
}

static int vfs_tar(const char *upper, const char *const *lowers, const char *const *skip,
                   int out_fd, struct merr *err)
{
    struct layer_changes c;
    if (vfs_changes(upper, lowers, skip, &c, err) < 0)
        return -1;
    int rc = layer_tar_changes(upper, &c, out_fd, NULL, err);
    layer_changes_release(&c);
    return rc;
}

const struct layer_driver layer_driver_vfs = {
    .name = "vfs",
    .dir = "vfs",
    .whiteout_files = true,
    .copies = true,
    .finish_layer = vfs_finish,
    .prepare_container = vfs_prepare,
    .changes = vfs_changes,
    .tar_changes = vfs_tar,
};

const struct layer_driver *layer_driver_find(const char *name)
{
    if (name == NULL || strcmp(name, "overlay2") == 0 || strcmp(name, "overlay") == 0)
        return name != NULL ? &layer_driver_overlay : NULL;
    return strcmp(name, "vfs") == 0 ? &layer_driver_vfs : NULL;
}
