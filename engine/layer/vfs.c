/* The copy-based (vfs) store's file work: a layer chain is a plain directory, made by copying
 * the parent chain's directory and applying the layer on top (its `.wh.` markers as
 * deletions); a container's rootfs is a copy of its image's top directory. Nothing is
 * followed: every entry is reached with *at calls relative to a directory fd, and a copy keeps
 * owners, modes, times, exported xattrs and hard links (by inode). */
#include "layer-priv.h"

#include "cleanup.h"
#include "error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define VFS_MAX_DEPTH 512
#define VFS_COPY_BUF (128 * 1024)
#define VFS_XATTR_LIST_MAX (64 * 1024)
#define VFS_XATTR_VALUE_MAX (64 * 1024)
#define VFS_WH_PREFIX ".wh."
#define VFS_WH_OPAQUE ".wh..wh..opq"

struct copy_link {
    dev_t dev;
    ino_t ino;
    char *rel; /* where the first copy went, relative to the destination root */
};

struct copy_ctx {
    int dst_root;
    void *links; /* tsearch tree of copy_link by (dev, ino) */
    bool can_chown;
    char *buf;
};

static int link_cmp(const void *a, const void *b)
{
    const struct copy_link *x = a, *y = b;
    if (x->dev != y->dev)
        return x->dev < y->dev ? -1 : 1;
    return x->ino < y->ino ? -1 : x->ino > y->ino ? 1 : 0;
}

static void link_free(void *p)
{
    struct copy_link *l = p;
    free(l->rel);
    free(l);
}

/* Copies the xattrs a layer tar carries (user.*, security.capability) from one open file to
 * another. */
static int copy_xattrs(int from, int to, const char *rel, struct merr *err)
{
    char list[VFS_XATTR_LIST_MAX];
    ssize_t len = flistxattr(from, list, sizeof list);
    if (len < 0)
        return errno == ENOTSUP ? 0 : merr_set(err, MERR_IO, errno, "cannot list xattrs of '/%s'", rel);
    auto_free char *value = NULL;
    for (ssize_t off = 0; off < len; off += (ssize_t)strlen(list + off) + 1) {
        const char *name = list + off;
        if (!layer_xattr_exported(name))
            continue;
        if (value == NULL && (value = malloc(VFS_XATTR_VALUE_MAX)) == NULL)
            return merr_set(err, MERR_NOMEM, ENOMEM, "cannot copy xattrs");
        ssize_t n = fgetxattr(from, name, value, VFS_XATTR_VALUE_MAX);
        if (n < 0 && errno == ENODATA)
            continue;
        if (n < 0 || fsetxattr(to, name, value, (size_t)n, 0) < 0)
            return merr_set(err, MERR_IO, errno, "cannot copy xattr '%s' of '/%s'", name, rel);
    }
    return 0;
}

/* Owner, mode (after the owner: chown clears set-id bits), xattrs and times of an open file or
 * directory. */
static int set_meta_fd(int fd, int from_fd, const struct stat *st, bool can_chown, const char *rel,
                       struct merr *err)
{
    if (can_chown && fchown(fd, st->st_uid, st->st_gid) < 0)
        return merr_set(err, MERR_IO, errno, "cannot change the owner of '/%s'", rel);
    if (fchmod(fd, st->st_mode & 07777) < 0)
        return merr_set(err, MERR_IO, errno, "cannot change the mode of '/%s'", rel);
    if (from_fd >= 0 && copy_xattrs(from_fd, fd, rel, err) < 0)
        return -1;
    struct timespec times[2] = { st->st_atim, st->st_mtim };
    if (futimens(fd, times) < 0)
        return merr_set(err, MERR_IO, errno, "cannot set the times of '/%s'", rel);
    return 0;
}

static int copy_data(struct copy_ctx *ctx, int in, int out, const char *rel, struct merr *err)
{
    for (;;) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
        if (n == 0)
            return 0;
        if (n > 0)
            continue;
        if (errno == EINTR)
            continue;
        if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
            return merr_set(err, MERR_IO, errno, "cannot copy '/%s'", rel);
        break; /* no in-kernel copy here: read and write what is left */
    }
    for (;;) {
        ssize_t n = read(in, ctx->buf, VFS_COPY_BUF);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return merr_set(err, MERR_IO, errno, "cannot read '/%s'", rel);
        if (n == 0)
            return 0;
        for (ssize_t done = 0; done < n;) {
            ssize_t w = write(out, ctx->buf + done, (size_t)(n - done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                return merr_set(err, MERR_IO, errno, "cannot write '/%s'", rel);
            done += w;
        }
    }
}

/* A second name of an inode already copied becomes a hard link to that copy. 1 when linked. */
static int copy_hardlink(struct copy_ctx *ctx, const struct stat *st, int dst_dir,
                         const char *name, const char *rel, struct merr *err)
{
    struct copy_link key = { .dev = st->st_dev, .ino = st->st_ino };
    void *found = tfind(&key, &ctx->links, link_cmp);
    if (found != NULL) {
        const struct copy_link *l = *(struct copy_link **)found;
        if (linkat(ctx->dst_root, l->rel, dst_dir, name, 0) < 0)
            return merr_set(err, MERR_IO, errno, "cannot link '/%s' to '/%s'", rel, l->rel);
        return 1;
    }
    struct copy_link *l = calloc(1, sizeof *l);
    if (l == NULL || (l->rel = strdup(rel)) == NULL) {
        free(l);
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot record a hard link");
    }
    l->dev = st->st_dev;
    l->ino = st->st_ino;
    if (tsearch(l, &ctx->links, link_cmp) == NULL) {
        link_free(l);
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot record a hard link");
    }
    return 0;
}

static int copy_dir(struct copy_ctx *ctx, int src, int dst, const char *rel, int depth,
                    struct merr *err);

static int copy_entry(struct copy_ctx *ctx, int src, int dst, const char *name, const char *rel,
                      int depth, struct merr *err)
{
    struct stat st;
    if (fstatat(src, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return merr_set(err, MERR_IO, errno, "cannot inspect '/%s'", rel);
    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
        int r = copy_hardlink(ctx, &st, dst, name, rel, err);
        if (r != 0)
            return r < 0 ? -1 : 0;
    }
    struct timespec times[2] = { st.st_atim, st.st_mtim };
    switch (st.st_mode & S_IFMT) {
    case S_IFDIR: {
        if (mkdirat(dst, name, 0700) < 0)
            return merr_set(err, MERR_IO, errno, "cannot create '/%s'", rel);
        auto_close int in = openat(src, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        auto_close int out = openat(dst, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (in < 0 || out < 0)
            return merr_set(err, MERR_IO, errno, "cannot open '/%s'", rel);
        if (copy_dir(ctx, in, out, rel, depth + 1, err) < 0)
            return -1;
        return set_meta_fd(out, in, &st, ctx->can_chown, rel, err);
    }
    case S_IFREG: {
        auto_close int in = openat(src, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        auto_close int out = openat(dst, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                                    0600);
        if (in < 0 || out < 0)
            return merr_set(err, MERR_IO, errno, "cannot copy '/%s'", rel);
        if (copy_data(ctx, in, out, rel, err) < 0)
            return -1;
        return set_meta_fd(out, in, &st, ctx->can_chown, rel, err);
    }
    case S_IFLNK: {
        char target[PATH_MAX];
        ssize_t n = readlinkat(src, name, target, sizeof target - 1);
        if (n < 0)
            return merr_set(err, MERR_IO, errno, "cannot read the symlink '/%s'", rel);
        target[n] = '\0';
        if (symlinkat(target, dst, name) < 0)
            return merr_set(err, MERR_IO, errno, "cannot create the symlink '/%s'", rel);
        if (ctx->can_chown && fchownat(dst, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
            return merr_set(err, MERR_IO, errno, "cannot change the owner of '/%s'", rel);
        break;
    }
    case S_IFCHR:
    case S_IFBLK:
    case S_IFIFO:
        if (mknodat(dst, name, (st.st_mode & S_IFMT) | 0600, st.st_rdev) < 0) {
            if (errno == EPERM && !S_ISFIFO(st.st_mode))
                return 0; /* no device nodes here (a user namespace): layers skip them too */
            return merr_set(err, MERR_IO, errno, "cannot create the node '/%s'", rel);
        }
        if (ctx->can_chown && fchownat(dst, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
            return merr_set(err, MERR_IO, errno, "cannot change the owner of '/%s'", rel);
        if (fchmodat(dst, name, st.st_mode & 07777, 0) < 0)
            return merr_set(err, MERR_IO, errno, "cannot change the mode of '/%s'", rel);
        break;
    default:
        return 0; /* sockets: nothing to copy */
    }
    if (utimensat(dst, name, times, AT_SYMLINK_NOFOLLOW) < 0)
        return merr_set(err, MERR_IO, errno, "cannot set the times of '/%s'", rel);
    return 0;
}

static int copy_dir(struct copy_ctx *ctx, int src, int dst, const char *rel, int depth,
                    struct merr *err)
{
    if (depth > VFS_MAX_DEPTH)
        return merr_set(err, MERR_INVALID, 0, "directory tree too deep at '/%s'", rel);
    auto_strv char **names = NULL;
    size_t count = 0;
    if (layer_sorted_names(src, &names, &count, err) < 0)
        return merr_prefix(err, "'/%s'", rel);
    for (size_t i = 0; i < count; i++) {
        auto_free char *child = NULL;
        if (asprintf(&child, "%s%s%s", rel, rel[0] ? "/" : "", names[i]) < 0)
            return merr_set(err, MERR_NOMEM, ENOMEM, "cannot build a path");
        if (copy_entry(ctx, src, dst, names[i], child, depth, err) < 0)
            return -1;
    }
    return 0;
}

int layer_copy_tree(const char *src, const char *dst, struct merr *err)
{
    auto_close int in = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (in < 0)
        return merr_set(err, MERR_IO, errno, "cannot open '%s'", src);
    struct stat st;
    if (fstat(in, &st) < 0)
        return merr_set(err, MERR_IO, errno, "cannot inspect '%s'", src);
    if (mkdir(dst, 0700) < 0)
        return merr_set(err, MERR_IO, errno, "cannot create '%s'", dst);
    auto_close int out = open(dst, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (out < 0)
        return merr_set(err, MERR_IO, errno, "cannot open '%s'", dst);
    struct copy_ctx ctx = { .dst_root = out, .can_chown = geteuid() == 0,
                            .buf = malloc(VFS_COPY_BUF) };
    int rc = ctx.buf == NULL ? merr_set(err, MERR_NOMEM, ENOMEM, "cannot copy '%s'", src)
                             : copy_dir(&ctx, in, out, "", 0, err);
    if (rc == 0)
        rc = set_meta_fd(out, in, &st, ctx.can_chown, "", err);
    if (ctx.links != NULL)
        tdestroy(ctx.links, link_free);
    free(ctx.buf);
    return rc;
}

/* ---- applying an extracted layer (whiteout_files form) onto a chain directory ---- */

static bool is_marker(const char *name)
{
    return strncmp(name, VFS_WH_PREFIX, strlen(VFS_WH_PREFIX)) == 0;
}

/* Empties the directory dirfd (an opaque directory hides what lower layers put there). */
static int empty_dir(int dirfd, const char *rel, struct merr *err)
{
    auto_strv char **names = NULL;
    size_t count = 0;
    if (layer_sorted_names(dirfd, &names, &count, err) < 0)
        return merr_prefix(err, "'/%s'", rel);
    for (size_t i = 0; i < count; i++)
        if (layer_remove_at(dirfd, names[i], err) < 0)
            return -1;
    return 0;
}

static int apply_dir(int diff, int root, const char *rel, int depth, struct merr *err);

static int apply_entry(int diff, int root, const char *name, const char *rel, int depth,
                       struct merr *err)
{
    struct stat st, tst;
    if (fstatat(diff, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return merr_set(err, MERR_IO, errno, "cannot inspect '/%s'", rel);
    bool target_dir = fstatat(root, name, &tst, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(tst.st_mode);
    if (!S_ISDIR(st.st_mode)) {
        /* a file of the layer replaces whatever was there; moved, so hard links stay links */
        if (layer_remove_at(root, name, err) < 0)
            return -1;
        if (renameat(diff, name, root, name) < 0)
            return merr_set(err, MERR_IO, errno, "cannot move '/%s' into place", rel);
        return 0;
    }
    if (!target_dir) {
        if (layer_remove_at(root, name, err) < 0)
            return -1;
        if (mkdirat(root, name, 0700) < 0)
            return merr_set(err, MERR_IO, errno, "cannot create '/%s'", rel);
    }
    auto_close int in = openat(diff, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    auto_close int out = openat(root, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (in < 0 || out < 0)
        return merr_set(err, MERR_IO, errno, "cannot open '/%s'", rel);
    if (apply_dir(in, out, rel, depth + 1, err) < 0)
        return -1;
    return set_meta_fd(out, in, &st, geteuid() == 0, rel, err);
}

/* Markers first (an opaque directory empties the target, `.wh.NAME` removes NAME), then the
 * layer's own entries. */
static int apply_dir(int diff, int root, const char *rel, int depth, struct merr *err)
{
    if (depth > VFS_MAX_DEPTH)
        return merr_set(err, MERR_INVALID, 0, "directory tree too deep at '/%s'", rel);
    auto_strv char **names = NULL;
    size_t count = 0;
    if (layer_sorted_names(diff, &names, &count, err) < 0)
        return merr_prefix(err, "'/%s'", rel);
    for (size_t i = 0; i < count; i++)
        if (strcmp(names[i], VFS_WH_OPAQUE) == 0 && empty_dir(root, rel, err) < 0)
            return -1;
    for (size_t i = 0; i < count; i++) {
        const char *victim = names[i] + strlen(VFS_WH_PREFIX);
        if (!is_marker(names[i]) || strcmp(names[i], VFS_WH_OPAQUE) == 0)
            continue;
        if (victim[0] == '\0' || strcmp(victim, ".") == 0 || strcmp(victim, "..") == 0 ||
            strchr(victim, '/') != NULL)
            return merr_set(err, MERR_INVALID, 0, "invalid whiteout '/%s/%s'", rel, names[i]);
        if (layer_remove_at(root, victim, err) < 0)
            return -1;
    }
    for (size_t i = 0; i < count; i++) {
        if (is_marker(names[i]))
            continue;
        auto_free char *child = NULL;
        if (asprintf(&child, "%s%s%s", rel, rel[0] ? "/" : "", names[i]) < 0)
            return merr_set(err, MERR_NOMEM, ENOMEM, "cannot build a path");
        if (apply_entry(diff, root, names[i], child, depth, err) < 0)
            return -1;
    }
    return 0;
}

int layer_vfs_apply(const char *diff, const char *root, struct merr *err)
{
    auto_close int in = open(diff, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    auto_close int out = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (in < 0 || out < 0)
        return merr_set(err, MERR_IO, errno, "cannot open '%s'", in < 0 ? diff : root);
    return apply_dir(in, out, "", 0, err);
}
