/* What a container changed: its overlay upper directory read against the image's layers, as
 * `docker diff` lists it (dockerd's overlay driver rules), and the skip rules shared with the
 * layer tar of `docker commit` (tar.c). Nothing is followed: every entry is read relative to
 * its directory fd with AT_SYMLINK_NOFOLLOW, lower paths are resolved with
 * LAYER_RESOLVE_NOFOLLOW. */
#include "layer-priv.h"

#include "cleanup.h"
#include "error.h"

#include <errno.h>
#include <fcntl.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define DIFF_MAX_DEPTH 512
#define DIFF_MAX_LOWERS 128

/* dockerd's init layer (daemon/initlayer): mount targets and the files bind-mounted over them. */
const char *const layer_init_paths[] = {
    ".dockerenv", "dev/console", "dev/pts", "dev/shm", "etc/hostname", "etc/hosts",
    "etc/mtab", "etc/resolv.conf", "proc", "sys", NULL,
};

bool layer_skip_listed(const char *rel, const char *const *skip)
{
    for (size_t i = 0; skip != NULL && skip[i] != NULL; i++)
        if (strcmp(rel, skip[i]) == 0)
            return true;
    return false;
}

bool layer_skip_is_ancestor(const char *rel, const char *const *skip)
{
    size_t len = strlen(rel);
    for (size_t i = 0; skip != NULL && skip[i] != NULL; i++)
        if (strncmp(skip[i], rel, len) == 0 && skip[i][len] == '/')
            return true;
    return false;
}

static bool dir_is_opaque(int fd)
{
    char v[2];
    ssize_t n = fgetxattr(fd, "trusted.overlay.opaque", v, sizeof v);
    return n == 1 && v[0] == 'y';
}

bool layer_skipped(int dirfd, const char *name, const char *rel, const struct stat *st,
                   const char *const *skip)
{
    if (layer_skip_listed(rel, skip))
        return true;
    if (!S_ISDIR(st->st_mode) || !layer_skip_is_ancestor(rel, skip))
        return false;
    auto_close int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || dir_is_opaque(fd))
        return false;
    auto_strv char **names = NULL;
    size_t count = 0;
    struct merr ignored = MERR_INIT;
    if (layer_sorted_names(fd, &names, &count, &ignored) < 0)
        return false;
    for (size_t i = 0; i < count; i++) {
        struct stat cst;
        auto_free char *child = NULL;
        if (fstatat(fd, names[i], &cst, AT_SYMLINK_NOFOLLOW) < 0 ||
            asprintf(&child, "%s/%s", rel, names[i]) < 0)
            return false;
        if (!layer_skipped(fd, names[i], child, &cst, skip))
            return false;
    }
    return true;
}

void layer_changes_release(struct layer_changes *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->v[i].path);
    free(c->v);
    c->v = NULL;
    c->n = c->cap = 0;
}

static int changes_add(struct layer_changes *c, const char *path, enum layer_change_kind kind,
                       struct merr *err)
{
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 32;
        struct layer_change *v = realloc(c->v, ncap * sizeof *v);
        if (v == NULL)
            return merr_set(err, MERR_NOMEM, ENOMEM, "cannot list changes");
        c->v = v;
        c->cap = ncap;
    }
    if ((c->v[c->n].path = strdup(path)) == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot list changes");
    c->v[c->n++].kind = kind;
    return 0;
}

struct diff_walk {
    int lower_fds[DIFF_MAX_LOWERS];
    size_t n_lowers;
    const char *const *skip;
    struct layer_changes *out;
    void *changed_dirs; /* tsearch tree of "/path" strings */
};

static int str_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

static int mark_dir(struct diff_walk *w, const char *path, struct merr *err)
{
    char *copy = strdup(path);
    if (copy == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot list changes");
    void *node = tsearch(copy, &w->changed_dirs, str_cmp);
    if (node == NULL) {
        free(copy);
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot list changes");
    }
    if (*(char **)node != copy)
        free(copy);
    return 0;
}

static bool is_whiteout(const struct stat *st)
{
    return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

/* The topmost lower entry at rel ("a/b"): 1 with *st filled, 0 when no layer has it (or the
 * first one that names it has a whiteout there). */
static int lower_stat(const struct diff_walk *w, const char *rel, struct stat *st)
{
    auto_free char *parent = strdup(rel);
    if (parent == NULL)
        return 0;
    char *slash = strrchr(parent, '/');
    const char *leaf = rel;
    if (slash != NULL) {
        *slash = '\0';
        leaf = rel + (slash - parent) + 1;
    } else {
        parent[0] = '\0';
    }
    for (size_t i = 0; i < w->n_lowers; i++) {
        auto_close int dfd = layer_open_dir(w->lower_fds[i], parent, LAYER_RESOLVE_NOFOLLOW);
        if (dfd < 0)
            continue;
        if (fstatat(dfd, leaf, st, AT_SYMLINK_NOFOLLOW) == 0)
            return is_whiteout(st) ? 0 : 1;
    }
    return 0;
}

static bool same_dir(const struct stat *a, const struct stat *b)
{
    if (a->st_size != b->st_size || a->st_mode != b->st_mode ||
        a->st_mtim.tv_sec != b->st_mtim.tv_sec)
        return false;
    /* Go's sameFsTime: nanoseconds only count when both sides have them. */
    return a->st_mtim.tv_nsec == 0 || b->st_mtim.tv_nsec == 0 ||
           a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Classifies one entry; *record false when it is an unchanged directory. */
static int classify(struct diff_walk *w, int dirfd, const char *name, const char *rel,
                    const struct stat *st, enum layer_change_kind *kind, bool *record)
{
    struct stat lst;
    *record = true;
    if (is_whiteout(st)) {
        *kind = LAYER_CHANGE_DELETE;
        return 0;
    }
    bool below = lower_stat(w, rel, &lst) == 1;
    if (S_ISDIR(st->st_mode) && below) {
        auto_close int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0 && dir_is_opaque(fd)) {
            *kind = LAYER_CHANGE_DELETE;
            return 0;
        }
        if (S_ISDIR(lst.st_mode) && same_dir(st, &lst)) {
            *record = false;
            return 0;
        }
    }
    *kind = below ? LAYER_CHANGE_MODIFY : LAYER_CHANGE_ADD;
    return 0;
}

static int walk(struct diff_walk *w, int dirfd, const char *rel, int depth, struct merr *err);

static int visit(struct diff_walk *w, int dirfd, const char *name, const char *rel, int depth,
                 struct merr *err)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return merr_set(err, MERR_IO, errno, "cannot inspect '/%s'", rel);
    if (layer_skipped(dirfd, name, rel, &st, w->skip))
        return 0;
    auto_free char *path = NULL;
    if (asprintf(&path, "/%s", rel) < 0)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot build a path");
    enum layer_change_kind kind = LAYER_CHANGE_ADD;
    bool record = true;
    if (classify(w, dirfd, name, rel, &st, &kind, &record) < 0)
        return -1;
    if (record) {
        if (S_ISDIR(st.st_mode) && mark_dir(w, path, err) < 0)
            return -1;
        char *slash = strrchr(path, '/');
        if (kind != LAYER_CHANGE_MODIFY && slash != path) {
            *slash = '\0';
            if (tfind(path, &w->changed_dirs, str_cmp) == NULL &&
                (changes_add(w->out, path, LAYER_CHANGE_MODIFY, err) < 0 ||
                 mark_dir(w, path, err) < 0))
                return -1;
            *slash = '/';
        }
        if (changes_add(w->out, path, kind, err) < 0)
            return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return 0;
    auto_close int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return merr_set(err, MERR_IO, errno, "cannot open '/%s'", rel);
    return walk(w, fd, rel, depth + 1, err);
}

static int walk(struct diff_walk *w, int dirfd, const char *rel, int depth, struct merr *err)
{
    if (depth > DIFF_MAX_DEPTH)
        return merr_set(err, MERR_INVALID, 0, "directory tree too deep at '/%s'", rel);
    auto_strv char **names = NULL;
    size_t count = 0;
    if (layer_sorted_names(dirfd, &names, &count, err) < 0)
        return merr_prefix(err, "'/%s'", rel);
    for (size_t i = 0; i < count; i++) {
        auto_free char *child = NULL;
        if (asprintf(&child, "%s%s%s", rel, rel[0] ? "/" : "", names[i]) < 0)
            return merr_set(err, MERR_NOMEM, ENOMEM, "cannot build a path");
        if (visit(w, dirfd, names[i], child, depth, err) < 0)
            return -1;
    }
    return 0;
}

int layer_diff_changes(const char *upper, const char *const *lowers, const char *const *skip,
                       struct layer_changes *out, struct merr *err)
{
    struct diff_walk w = { .skip = skip, .out = out };
    memset(out, 0, sizeof *out);
    int rc = -1;
    auto_close int rootfd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) {
        merr_set(err, MERR_IO, errno, "cannot open '%s'", upper);
        goto out;
    }
    for (size_t i = 0; lowers != NULL && lowers[i] != NULL; i++) {
        if (w.n_lowers == DIFF_MAX_LOWERS) {
            merr_set(err, MERR_INVALID, 0, "more than %d layers", DIFF_MAX_LOWERS);
            goto out;
        }
        int fd = open(lowers[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            merr_set(err, MERR_IO, errno, "cannot open layer '%s'", lowers[i]);
            goto out;
        }
        w.lower_fds[w.n_lowers++] = fd;
    }
    rc = walk(&w, rootfd, "", 0, err);
out:
    for (size_t i = 0; i < w.n_lowers; i++)
        close(w.lower_fds[i]);
    tdestroy(w.changed_dirs, free);
    if (rc < 0)
        layer_changes_release(out);
    return rc;
}
