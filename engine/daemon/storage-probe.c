/* Whether the data root can hold overlay layers: a whiteout (character device 0/0) and an
 * overlay mount whose upper directory is on it, tried in a scratch directory at start. A data
 * root that is itself on overlayfs (a host that is a container, a live system) fails both; the
 * engine says so at start instead of failing at the first pull. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "daemon.h"

static void probe_remove(const char *dir)
{
    static const char *const rel[] = { "upper/wh", "work/work", "merged", "work", "upper", "lower", "" };
    char path[PATH_MAX + 32];
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, rel[i]);
        if (unlink(path) < 0)
            (void)rmdir(path);
    }
}

int engine_probe_overlay(const char *data_root, struct merr *err)
{
    char dir[PATH_MAX], sub[PATH_MAX + 32], opts[3 * (PATH_MAX + 32)];
    if (snprintf(dir, sizeof dir, "%s/.overlay-probe-XXXXXX", data_root) >= (int)sizeof dir)
        return merr_set(err, MERR_INVALID, 0, "data root path too long");
    if (mkdtemp(dir) == NULL)
        return merr_set(err, MERR_IO, errno, "cannot create a scratch directory in '%s'", data_root);
    static const char *const dirs[] = { "lower", "upper", "work", "merged" };
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < 4; i++) {
        snprintf(sub, sizeof sub, "%s/%s", dir, dirs[i]);
        if (mkdir(sub, 0700) < 0)
            rc = merr_set(err, MERR_IO, errno, "cannot create '%s'", sub);
    }
    snprintf(sub, sizeof sub, "%s/upper/wh", dir);
    if (rc == 0 && mknod(sub, S_IFCHR | 0600, makedev(0, 0)) < 0)
        rc = merr_set(err, MERR_UNSUPPORTED, errno, "cannot create a whiteout");
    snprintf(opts, sizeof opts, "lowerdir=%s/lower,upperdir=%s/upper,workdir=%s/work", dir, dir, dir);
    snprintf(sub, sizeof sub, "%s/merged", dir);
    if (rc == 0 && mount("overlay", sub, "overlay", 0, opts) < 0)
        rc = merr_set(err, MERR_UNSUPPORTED, errno, "cannot mount overlay on it");
    else if (rc == 0)
        (void)umount2(sub, MNT_DETACH);
    probe_remove(dir);
    return rc;
}
