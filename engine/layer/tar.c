/* A diff directory back to a layer tar (docker save, docker commit): entries in
 * sorted order like Go's filepath.Walk, overlay whiteouts as `.wh.` entries,
 * opaque directories as `.wh..wh..opq`, hardlinks by inode, ustar unless a
 * name or an xattr needs pax. Nothing is followed: every file is opened with
 * O_NOFOLLOW relative to its directory fd. Written with core/tarw, not libarchive's writer:
 * that one pulls every archive format (and libxml2) into the engine's static bundle. */
#include "layer-priv.h"

#include "cleanup.h"
#include "error.h"
#include "tarw.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define TAR_COPY_BUF (128 * 1024)
#define TAR_XATTR_LIST_MAX (64 * 1024)
#define TAR_XATTR_VALUE_MAX (64 * 1024)

struct link_record {
    dev_t dev;
    ino_t ino;
    char *path;
};

struct tar_ctx {
    int out_fd;
    struct tarw tw;
    EVP_MD_CTX *sha;
    uint64_t size;
    struct merr io_err;
    bool io_failed;
    void *links; /* tsearch tree of link_record by (dev, ino) */
    const char *const *skip; /* relative paths left out (NULL: none) */
    bool flat;               /* a directory is its header only (its entries come as changes) */
    unsigned char *buf;
};

static int link_cmp(const void *a, const void *b)
{
    const struct link_record *x = a, *y = b;
    if (x->dev != y->dev)
        return x->dev < y->dev ? -1 : 1;
    if (x->ino != y->ino)
        return x->ino < y->ino ? -1 : 1;
    return 0;
}

static void link_free(void *p)
{
    struct link_record *r = p;
    free(r->path);
    free(r);
}

/* tarw's output: to the fd, hashed and counted on the way. */
static int write_callback(void *data, const void *buf, size_t len, struct merr *err)
{
    struct tar_ctx *ctx = data;
    const char *p = buf;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(ctx->out_fd, p, left);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return merr_set(err, MERR_IO, errno, "cannot write layer tar");
        }
        p += n;
        left -= (size_t)n;
    }
    if (EVP_DigestUpdate(ctx->sha, buf, len) != 1)
        return merr_set(err, MERR_CRYPTO, 0, "cannot hash layer tar");
    ctx->size += len;
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int layer_sorted_names(int dirfd, char ***out, size_t *count, struct merr *err)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return merr_set(err, MERR_IO, errno, "cannot reopen directory");
    auto_closedir DIR *d = fdopendir(fd);
    if (d == NULL) {
        int saved = errno;
        close(fd);
        return merr_set(err, MERR_IO, saved, "cannot read directory");
    }
    auto_strv char **names = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (de == NULL) {
            if (errno != 0)
                return merr_set(err, MERR_IO, errno, "cannot read directory");
            break;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (n + 1 >= cap) {
            size_t ncap = cap ? cap * 2 : 32;
            char **v = realloc(names, ncap * sizeof *v);
            if (v == NULL)
                return merr_set(err, MERR_NOMEM, ENOMEM, "cannot list directory");
            names = v;
            cap = ncap;
        }
        if ((names[n] = strdup(de->d_name)) == NULL)
            return merr_set(err, MERR_NOMEM, ENOMEM, "cannot list directory");
        names[++n] = NULL;
    }
    if (n > 0)
        qsort(names, n, sizeof *names, name_cmp);
    *out = steal_pointer(&names);
    *count = n;
    return 0;
}

bool layer_xattr_exported(const char *name)
{
    return strncmp(name, "user.", 5) == 0 || strcmp(name, "security.capability") == 0;
}

/* The exported xattrs of an open file; names and values live in x (free with xattrs_release). */
struct xattrs {
    struct tarw_xattr v[16];
    size_t n;
    char *store[16];
};

static void xattrs_release(struct xattrs *x)
{
    for (size_t i = 0; i < x->n; i++)
        free(x->store[i]);
    x->n = 0;
}

static int read_xattrs(struct xattrs *x, int fd, const char *path, struct merr *err)
{
    char list[TAR_XATTR_LIST_MAX];
    ssize_t len = flistxattr(fd, list, sizeof list);
    if (len < 0) {
        if (errno == ENOTSUP)
            return 0;
        return merr_set(err, MERR_IO, errno, "cannot list xattrs of '%s'", path);
    }
    auto_free char *value = malloc(TAR_XATTR_VALUE_MAX);
    if (value == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot read xattrs of '%s'", path);
    for (ssize_t off = 0; off < len; off += (ssize_t)strlen(list + off) + 1) {
        const char *name = list + off;
        if (!layer_xattr_exported(name))
            continue;
        ssize_t vlen = fgetxattr(fd, name, value, TAR_XATTR_VALUE_MAX);
        if (vlen < 0) {
            if (errno == ENODATA)
                continue;
            return merr_set(err, MERR_IO, errno, "cannot read xattr '%s' of '%s'", name, path);
        }
        if (x->n == sizeof x->v / sizeof x->v[0])
            return merr_set(err, MERR_UNSUPPORTED, 0, "'%s' has more than %zu xattrs", path,
                            sizeof x->v / sizeof x->v[0]);
        size_t nlen = strlen(name) + 1;
        char *copy = malloc(nlen + (size_t)vlen + 1);
        if (copy == NULL)
            return merr_set(err, MERR_NOMEM, ENOMEM, "cannot read xattrs of '%s'", path);
        memcpy(copy, name, nlen);
        memcpy(copy + nlen, value, (size_t)vlen);
        x->store[x->n] = copy;
        x->v[x->n++] = (struct tarw_xattr){ copy, copy + nlen, (size_t)vlen };
    }
    return 0;
}

static bool is_opaque(int dirfd)
{
    char v[2];
    ssize_t n = fgetxattr(dirfd, "trusted.overlay.opaque", v, sizeof v);
    return n == 1 && v[0] == 'y';
}

/* A header for a `.wh.` marker, as dockerd's overlay driver writes them: an empty regular file
 * with the owner of what it stands for; a whiteout keeps its device's mtime and mode 0, an
 * opaque marker gets the directory's permissions and no mtime. */
static int write_marker(struct tar_ctx *ctx, const char *path, mode_t perm, int64_t mtime,
                        const struct stat *st, struct merr *err)
{
    struct tarw_meta m = { .name = path, .type = '0', .mode = perm, .uid = st->st_uid,
                           .gid = st->st_gid, .mtime = mtime };
    return tarw_entry(&ctx->tw, &m, err);
}

static int copy_data(struct tar_ctx *ctx, int fd, const char *path, off_t size, struct merr *err)
{
    off_t done = 0;
    while (done < size) {
        size_t want = size - done < TAR_COPY_BUF ? (size_t)(size - done) : TAR_COPY_BUF;
        ssize_t n = read(fd, ctx->buf, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return merr_set(err, MERR_IO, errno, "cannot read '%s'", path);
        if (n == 0)
            return merr_set(err, MERR_IO, 0, "'%s' shrank while it was archived", path);
        if ((off_t)n > size - done)
            n = (ssize_t)(size - done); /* grew meanwhile: the header said size */
        if (tarw_data(&ctx->tw, ctx->buf, (size_t)n, err) < 0)
            return -1;
        done += n;
    }
    return 0;
}

/* Returns the first path seen for a multiply-linked inode, or NULL after
 * remembering this one. */
static int hardlink_source(struct tar_ctx *ctx, const struct stat *st, const char *path,
                           const char **first, struct merr *err)
{
    *first = NULL;
    struct link_record key = { .dev = st->st_dev, .ino = st->st_ino };
    void *found = tfind(&key, &ctx->links, link_cmp);
    if (found != NULL) {
        *first = (*(struct link_record **)found)->path;
        return 0;
    }
    struct link_record *r = calloc(1, sizeof *r);
    if (r == NULL || (r->path = strdup(path)) == NULL) {
        free(r);
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot record hardlink '%s'", path);
    }
    r->dev = st->st_dev;
    r->ino = st->st_ino;
    if (tsearch(r, &ctx->links, link_cmp) == NULL) {
        link_free(r);
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot record hardlink '%s'", path);
    }
    return 0;
}

static int walk_dir(struct tar_ctx *ctx, int dirfd, const char *prefix, struct merr *err);

static char entry_type(mode_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFDIR:
        return '5';
    case S_IFLNK:
        return '2';
    case S_IFCHR:
        return '3';
    case S_IFBLK:
        return '4';
    case S_IFIFO:
        return '6';
    default:
        return '0';
    }
}

static int write_one(struct tar_ctx *ctx, int dirfd, const char *name, const char *path,
                     const struct stat *st, struct merr *err)
{
    /* Heap, not stack: this frame stays live while walk_dir recurses. */
    auto_free char *dirname = S_ISDIR(st->st_mode) ? malloc(strlen(path) + 2) : NULL;
    if (S_ISDIR(st->st_mode) && dirname == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot build a path");
    if (dirname != NULL)
        sprintf(dirname, "%s/", path);
    struct tarw_meta m = { .name = dirname != NULL ? dirname : path,
                           .type = entry_type(st->st_mode),
                           .mode = st->st_mode & 07777,
                           .uid = st->st_uid,
                           .gid = st->st_gid,
                           .mtime = st->st_mtim.tv_sec };
    const char *first = NULL;
    if (!S_ISDIR(st->st_mode) && st->st_nlink > 1 && hardlink_source(ctx, st, path, &first, err) < 0)
        return -1;
    if (first != NULL) {
        m.type = '1';
        m.linkname = first;
        return tarw_entry(&ctx->tw, &m, err);
    }
    auto_close int fd = -1;
    struct xattrs x = { .n = 0 };
    char target[PATH_MAX];
    if (S_ISREG(st->st_mode) || S_ISDIR(st->st_mode)) {
        int flags = S_ISDIR(st->st_mode) ? O_RDONLY | O_DIRECTORY : O_RDONLY;
        fd = openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return merr_set(err, MERR_IO, errno, "cannot open '%s'", path);
        if (read_xattrs(&x, fd, path, err) < 0) {
            xattrs_release(&x);
            return -1;
        }
        m.xattrs = x.v;
        m.n_xattrs = x.n;
    }
    if (S_ISREG(st->st_mode)) {
        m.size = (uint64_t)st->st_size;
    } else if (S_ISLNK(st->st_mode)) {
        ssize_t n = readlinkat(dirfd, name, target, sizeof target - 1);
        if (n < 0)
            return merr_set(err, MERR_IO, errno, "cannot read symlink '%s'", path);
        target[n] = '\0';
        m.linkname = target;
    } else if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
        m.devmajor = major(st->st_rdev);
        m.devminor = minor(st->st_rdev);
    }
    int rc = tarw_entry(&ctx->tw, &m, err);
    xattrs_release(&x);
    if (rc < 0)
        return -1;
    if (S_ISREG(st->st_mode))
        return copy_data(ctx, fd, path, st->st_size, err);
    if (!S_ISDIR(st->st_mode) || ctx->flat)
        return 0;
    if (is_opaque(fd)) {
        auto_free char *marker = NULL;
        if (asprintf(&marker, "%s.wh..wh..opq", dirname) < 0)
            return merr_set(err, MERR_NOMEM, ENOMEM, "cannot build a path");
        if (write_marker(ctx, marker, st->st_mode & 0777, 0, st, err) < 0)
            return -1;
    }
    return walk_dir(ctx, fd, dirname, err);
}

static int walk_dir(struct tar_ctx *ctx, int dirfd, const char *prefix, struct merr *err)
{
    auto_strv char **names = NULL;
    size_t count = 0;
    if (layer_sorted_names(dirfd, &names, &count, err) < 0)
        return merr_prefix(err, "'%s'", prefix[0] ? prefix : ".");
    for (size_t i = 0; i < count; i++) {
        const char *name = names[i];
        struct stat st;
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            return merr_set(err, MERR_IO, errno, "cannot inspect '%s%s'", prefix, name);
        if (S_ISSOCK(st.st_mode))
            continue;
        bool whiteout = S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
        auto_free char *path = NULL;
        if (ctx->skip != NULL) {
            auto_free char *rel = NULL;
            if (asprintf(&rel, "%s%s", prefix, name) < 0)
                return merr_set(err, MERR_NOMEM, ENOMEM, "cannot build a path");
            if (layer_skipped(dirfd, name, rel, &st, ctx->skip))
                continue;
        }
        if (asprintf(&path, whiteout ? "%s.wh.%s" : "%s%s", prefix, name) < 0)
            return merr_set(err, MERR_NOMEM, ENOMEM, "cannot build a path");
        int r = whiteout ? write_marker(ctx, path, 0, st.st_mtim.tv_sec, &st, err)
                         : write_one(ctx, dirfd, name, path, &st, err);
        if (r < 0)
            return -1;
    }
    return 0;
}

int layer_tar_dir(const char *src, int out_fd, struct layer_result *res, struct merr *err)
{
    return layer_tar_dir_skip(src, out_fd, NULL, res, err);
}

static int tar_begin(struct tar_ctx *ctx, struct merr *err)
{
    ctx->sha = EVP_MD_CTX_new();
    ctx->buf = malloc(TAR_COPY_BUF);
    if (ctx->sha == NULL || ctx->buf == NULL ||
        EVP_DigestInit_ex(ctx->sha, EVP_sha256(), NULL) != 1)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot prepare the layer tar");
    ctx->tw = (struct tarw){ .write = write_callback, .ctx = ctx };
    return 0;
}

static int tar_finish(struct tar_ctx *ctx, struct layer_result *res, struct merr *err)
{
    if (tarw_close(&ctx->tw, err) < 0)
        return -1;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx->sha, digest, &len) != 1 || len != 32)
        return merr_set(err, MERR_CRYPTO, 0, "cannot finish sha256");
    if (res != NULL) {
        layer_format_diff_id(digest, res->diff_id);
        res->size = ctx->size;
    }
    return 0;
}

static void tar_release(struct tar_ctx *ctx)
{
    tarw_release(&ctx->tw);
    if (ctx->links != NULL)
        tdestroy(ctx->links, link_free);
    EVP_MD_CTX_free(ctx->sha);
    free(ctx->buf);
}

int layer_tar_dir_skip(const char *src, int out_fd, const char *const *skip,
                       struct layer_result *res, struct merr *err)
{
    struct tar_ctx ctx = { .out_fd = out_fd, .skip = skip };
    auto_close int rootfd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int r = -1;
    if (rootfd < 0)
        merr_set(err, MERR_IO, errno, "cannot open '%s'", src);
    else if (tar_begin(&ctx, err) == 0 && walk_dir(&ctx, rootfd, "", err) == 0 &&
             tar_finish(&ctx, res, err) == 0)
        r = 0;
    tar_release(&ctx);
    return r;
}

/* One change: a deletion as a `.wh.` marker, anything else as the entry itself (a directory
 * without its contents). */
static int tar_change(struct tar_ctx *ctx, int rootfd, const struct layer_change *c,
                      struct merr *err)
{
    const char *rel = c->path[0] == '/' ? c->path + 1 : c->path;
    const char *slash = strrchr(rel, '/');
    const char *base = slash != NULL ? slash + 1 : rel;
    auto_free char *parent = slash != NULL ? strndup(rel, (size_t)(slash - rel)) : strdup("");
    if (parent == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot build a path");
    if (c->kind == LAYER_CHANGE_DELETE) {
        auto_free char *marker = NULL;
        if (asprintf(&marker, "%s%s.wh.%s", parent, parent[0] ? "/" : "", base) < 0)
            return merr_set(err, MERR_NOMEM, ENOMEM, "cannot build a path");
        struct stat root = { .st_uid = 0, .st_gid = 0 };
        return write_marker(ctx, marker, 0, 0, &root, err);
    }
    auto_close int pfd = layer_open_dir(rootfd, parent, LAYER_RESOLVE_NOFOLLOW);
    if (pfd < 0)
        return merr_set(err, MERR_IO, errno, "cannot open '/%s'", parent);
    struct stat st;
    if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return merr_set(err, MERR_IO, errno, "cannot inspect '/%s'", rel);
    if (S_ISSOCK(st.st_mode))
        return 0;
    auto_close int dfd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return merr_set(err, MERR_IO, errno, "cannot open '/%s'", parent);
    return write_one(ctx, dfd, base, rel, &st, err);
}

int layer_tar_changes(const char *root, const struct layer_changes *changes, int out_fd,
                      struct layer_result *res, struct merr *err)
{
    struct tar_ctx ctx = { .out_fd = out_fd, .flat = true };
    auto_close int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int r = -1;
    if (rootfd < 0) {
        merr_set(err, MERR_IO, errno, "cannot open '%s'", root);
    } else if (tar_begin(&ctx, err) == 0) {
        size_t i = 0;
        while (i < changes->n && tar_change(&ctx, rootfd, &changes->v[i], err) == 0)
            i++;
        if (i == changes->n && tar_finish(&ctx, res, err) == 0)
            r = 0;
    }
    tar_release(&ctx);
    return r;
}
