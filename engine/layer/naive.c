/* What a container changed under the vfs store: its rootfs directory compared with its image's
 * directory, as dockerd's naive diff (archive.ChangesDirs) does it. A path only the new tree
 * has is an addition, one only the old tree has a deletion (its contents are not listed); a
 * path both have is a modification when type, mode, owner or device differ, or, for anything
 * but a directory, its size or mtime, or its security.capability; a directory with a listed
 * change below it is a modification too. Paths in skip (the engine's mount targets) are left
 * out. Nothing is followed. */
#include "layer-priv.h"

#include "cleanup.h"
#include "error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define NAIVE_MAX_DEPTH 512

struct naive_walk {
    const char *const *skip;
    struct layer_changes *out;
};

/* Inserts at index at (at == out->n appends). */
static int change_insert(struct layer_changes *c, size_t at, const char *path,
                         enum layer_change_kind kind, struct merr *err)
{
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 32;
        struct layer_change *v = realloc(c->v, ncap * sizeof *v);
        if (v == NULL)
            return merr_set(err, MERR_NOMEM, ENOMEM, "cannot list changes");
        c->v = v;
        c->cap = ncap;
    }
    char *copy = strdup(path);
    if (copy == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot list changes");
    memmove(&c->v[at + 1], &c->v[at], (c->n - at) * sizeof *c->v);
    c->v[at] = (struct layer_change){ .path = copy, .kind = kind };
    c->n++;
    return 0;
}

static ssize_t capability_of(int dirfd, const char *name, const struct stat *st, char *buf,
                             size_t len)
{
    if (!S_ISREG(st->st_mode))
        return 0;
    auto_close int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = fgetxattr(fd, "security.capability", buf, len);
    return n < 0 ? 0 : n;
}

/* dockerd's rule for a path both trees have. */
bool layer_naive_differ(const struct stat *n, const struct stat *o)
{
    if (n->st_mode != o->st_mode || n->st_uid != o->st_uid || n->st_gid != o->st_gid ||
        n->st_rdev != o->st_rdev)
        return true;
    if (S_ISDIR(n->st_mode))
        return false; /* a directory's size and mtime say nothing: its children are compared */
    if (n->st_size != o->st_size || n->st_mtim.tv_sec != o->st_mtim.tv_sec)
        return true;
    /* Go's sameFsTime: nanoseconds only count when both sides have them */
    return n->st_mtim.tv_nsec != 0 && o->st_mtim.tv_nsec != 0 &&
           n->st_mtim.tv_nsec != o->st_mtim.tv_nsec;
}

static int walk(struct naive_walk *w, int nfd, int ofd, const char *rel, int depth,
                struct merr *err);

/* One name of the union of both directories; nfd/ofd -1 when that side lacks it. */
static int visit(struct naive_walk *w, int nfd, int ofd, const char *name, const char *rel,
                 int depth, struct merr *err)
{
    if (layer_skip_listed(rel, w->skip))
        return 0;
    auto_free char *path = NULL;
    if (asprintf(&path, "/%s", rel) < 0)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot build a path");
    struct stat nst, ost;
    bool in_new = nfd >= 0 && fstatat(nfd, name, &nst, AT_SYMLINK_NOFOLLOW) == 0;
    bool in_old = ofd >= 0 && fstatat(ofd, name, &ost, AT_SYMLINK_NOFOLLOW) == 0;
    if (!in_new)
        return in_old ? change_insert(w->out, w->out->n, path, LAYER_CHANGE_DELETE, err) : 0;
    if (S_ISDIR(nst.st_mode) && layer_skipped(nfd, name, rel, &nst, w->skip) && !in_old)
        return 0;
    bool recorded = !in_old || layer_naive_differ(&nst, &ost);
    if (!recorded) {
        char ncap[256], ocap[256];
        ssize_t nl = capability_of(nfd, name, &nst, ncap, sizeof ncap);
        ssize_t ol = capability_of(ofd, name, &ost, ocap, sizeof ocap);
        recorded = nl != ol || memcmp(ncap, ocap, (size_t)nl) != 0;
    }
    size_t at = w->out->n;
    if (recorded && change_insert(w->out, at, path,
                                  in_old ? LAYER_CHANGE_MODIFY : LAYER_CHANGE_ADD, err) < 0)
        return -1;
    if (!S_ISDIR(nst.st_mode))
        return 0;
    auto_close int nchild = openat(nfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (nchild < 0)
        return merr_set(err, MERR_IO, errno, "cannot open '/%s'", rel);
    auto_close int ochild = in_old && S_ISDIR(ost.st_mode)
                                ? openat(ofd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                                : -1;
    size_t before = w->out->n;
    if (walk(w, nchild, ochild, rel, depth + 1, err) < 0)
        return -1;
    /* a change below makes the directory a modification, listed before its children */
    if (!recorded && w->out->n > before)
        return change_insert(w->out, at, path, LAYER_CHANGE_MODIFY, err);
    return 0;
}

static int walk(struct naive_walk *w, int nfd, int ofd, const char *rel, int depth,
                struct merr *err)
{
    if (depth > NAIVE_MAX_DEPTH)
        return merr_set(err, MERR_INVALID, 0, "directory tree too deep at '/%s'", rel);
    auto_strv char **nn = NULL, **on = NULL;
    size_t ncount = 0, ocount = 0;
    if (layer_sorted_names(nfd, &nn, &ncount, err) < 0 ||
        (ofd >= 0 && layer_sorted_names(ofd, &on, &ocount, err) < 0))
        return merr_prefix(err, "'/%s'", rel);
    for (size_t i = 0, j = 0; i < ncount || j < ocount;) {
        int cmp = i == ncount ? 1 : j == ocount ? -1 : strcmp(nn[i], on[j]);
        const char *name = cmp <= 0 ? nn[i] : on[j];
        auto_free char *child = NULL;
        if (asprintf(&child, "%s%s%s", rel, rel[0] ? "/" : "", name) < 0)
            return merr_set(err, MERR_NOMEM, ENOMEM, "cannot build a path");
        if (visit(w, cmp <= 0 ? nfd : -1, cmp >= 0 ? ofd : -1, name, child, depth, err) < 0)
            return -1;
        i += cmp <= 0;
        j += cmp >= 0;
    }
    return 0;
}

int layer_naive_changes(const char *new_root, const char *old_root, const char *const *skip,
                        struct layer_changes *out, struct merr *err)
{
    memset(out, 0, sizeof *out);
    auto_close int nfd = open(new_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    auto_close int ofd = open(old_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (nfd < 0 || ofd < 0)
        return merr_set(err, MERR_IO, errno, "cannot open '%s'", nfd < 0 ? new_root : old_root);
    struct naive_walk w = { .skip = skip, .out = out };
    if (walk(&w, nfd, ofd, "", 0, err) < 0) {
        layer_changes_release(out);
        return -1;
    }
    return 0;
}
