/* A diff directory back to a layer tar (docker save, docker commit): entries in
 * sorted order like Go's filepath.Walk, overlay whiteouts as `.wh.` entries,
 * opaque directories as `.wh..wh..opq`, hardlinks by inode, ustar unless a
 * name or an xattr needs pax. Nothing is followed: every file is opened with
 * O_NOFOLLOW relative to its directory fd. */
#include "layer-priv.h"

#include "cleanup.h"
#include "error.h"

#include <archive.h>
#include <archive_entry.h>
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
    struct archive *archive;
    EVP_MD_CTX *sha;
    uint64_t size;
    struct merr io_err;
    bool io_failed;
    void *links; /* tsearch tree of link_record by (dev, ino) */
    const char *const *skip; /* relative paths left out (NULL: none) */
    unsigned char *buf;
};

DEFINE_CLEANUP(struct archive_entry, archive_entry_free)
#define auto_entry __attribute__((cleanup(cleanup_archive_entry_freep)))

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

static la_ssize_t write_callback(struct archive *a, void *data, const void *buf, size_t len)
{
    struct tar_ctx *ctx = data;
    const char *p = buf;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(ctx->out_fd, p, left);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            merr_set(&ctx->io_err, MERR_IO, errno, "cannot write layer tar");
            ctx->io_failed = true;
            archive_set_error(a, errno, "%s", ctx->io_err.msg);
            return -1;
        }
        p += n;
        left -= (size_t)n;
    }
    if (EVP_DigestUpdate(ctx->sha, buf, len) != 1) {
        merr_set(&ctx->io_err, MERR_CRYPTO, 0, "cannot hash layer tar");
        ctx->io_failed = true;
        archive_set_error(a, EIO, "%s", ctx->io_err.msg);
        return -1;
    }
    ctx->size += len;
    return (la_ssize_t)len;
}

static int archive_failure(struct tar_ctx *ctx, const char *path, struct merr *err)
{
    if (ctx->io_failed) {
        if (err != NULL)
            *err = ctx->io_err;
        return -1;
    }
    const char *msg = archive_error_string(ctx->archive);
    return merr_set(err, MERR_IO, 0, "cannot add '%s' to the layer tar: %s", path,
                    msg != NULL ? msg : "unknown error");
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

static bool xattr_exported(const char *name)
{
    return strncmp(name, "user.", 5) == 0 || strcmp(name, "security.capability") == 0;
}

static int add_xattrs(struct archive_entry *e, int fd, const char *path, struct merr *err)
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
        if (!xattr_exported(name))
            continue;
        ssize_t vlen = fgetxattr(fd, name, value, TAR_XATTR_VALUE_MAX);
        if (vlen < 0) {
            if (errno == ENODATA)
                continue;
            return merr_set(err, MERR_IO, errno, "cannot read xattr '%s' of '%s'", name, path);
        }
        archive_entry_xattr_add_entry(e, name, value, (size_t)vlen);
    }
    return 0;
}

static bool is_opaque(int dirfd)
{
    char v[2];
    ssize_t n = fgetxattr(dirfd, "trusted.overlay.opaque", v, sizeof v);
    return n == 1 && v[0] == 'y';
}

static int write_header(struct tar_ctx *ctx, struct archive_entry *e, const char *path, struct merr *err)
{
    if (archive_write_header(ctx->archive, e) < ARCHIVE_WARN)
        return archive_failure(ctx, path, err);
    return 0;
}

/* A header for a `.wh.` marker, as dockerd's overlay driver writes them: an empty regular file
 * with the owner of what it stands for; a whiteout keeps its device's mtime and mode 0, an
 * opaque marker gets the directory's permissions and no mtime. */
static int write_marker(struct tar_ctx *ctx, const char *path, mode_t perm, int64_t mtime,
                        const struct stat *st, struct merr *err)
{
    auto_entry struct archive_entry *e = archive_entry_new();
    if (e == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate tar entry");
    archive_entry_set_pathname(e, path);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, perm);
    archive_entry_set_uid(e, st->st_uid);
    archive_entry_set_gid(e, st->st_gid);
    archive_entry_set_mtime(e, mtime, 0);
    archive_entry_set_size(e, 0);
    return write_header(ctx, e, path, err);
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
        if (archive_write_data(ctx->archive, ctx->buf, (size_t)n) < 0)
            return archive_failure(ctx, path, err);
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

static int set_symlink(struct archive_entry *e, int dirfd, const char *name, const char *path,
                       struct merr *err)
{
    char target[PATH_MAX];
    ssize_t n = readlinkat(dirfd, name, target, sizeof target - 1);
    if (n < 0)
        return merr_set(err, MERR_IO, errno, "cannot read symlink '%s'", path);
    target[n] = '\0';
    archive_entry_set_symlink(e, target);
    return 0;
}

static int write_one(struct tar_ctx *ctx, int dirfd, const char *name, const char *path,
                     const struct stat *st, struct merr *err)
{
    auto_entry struct archive_entry *e = archive_entry_new();
    if (e == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate tar entry");
    archive_entry_set_pathname(e, path);
    archive_entry_set_mode(e, st->st_mode);
    archive_entry_set_uid(e, st->st_uid);
    archive_entry_set_gid(e, st->st_gid);
    archive_entry_set_mtime(e, st->st_mtim.tv_sec, 0);

    const char *first = NULL;
    if (!S_ISDIR(st->st_mode) && st->st_nlink > 1 && hardlink_source(ctx, st, path, &first, err) < 0)
        return -1;
    if (first != NULL) {
        archive_entry_set_hardlink(e, first);
        archive_entry_set_size(e, 0);
        return write_header(ctx, e, path, err);
    }

    auto_close int fd = -1;
    if (S_ISREG(st->st_mode) || S_ISDIR(st->st_mode)) {
        int flags = S_ISDIR(st->st_mode) ? O_RDONLY | O_DIRECTORY : O_RDONLY;
        fd = openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return merr_set(err, MERR_IO, errno, "cannot open '%s'", path);
        if (add_xattrs(e, fd, path, err) < 0)
            return -1;
    }
    if (S_ISREG(st->st_mode)) {
        archive_entry_set_size(e, st->st_size);
    } else if (S_ISLNK(st->st_mode)) {
        if (set_symlink(e, dirfd, name, path, err) < 0)
            return -1;
    } else if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
        archive_entry_set_rdevmajor(e, major(st->st_rdev));
        archive_entry_set_rdevminor(e, minor(st->st_rdev));
    }
    if (write_header(ctx, e, path, err) < 0)
        return -1;
    if (S_ISREG(st->st_mode))
        return copy_data(ctx, fd, path, st->st_size, err);
    if (!S_ISDIR(st->st_mode))
        return 0;

    /* Heap, not stack: this frame stays live while walk_dir recurses. */
    auto_free char *sub = NULL;
    if (asprintf(&sub, "%s/", path) < 0)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot build a path");
    if (is_opaque(fd)) {
        auto_free char *marker = NULL;
        if (asprintf(&marker, "%s.wh..wh..opq", sub) < 0)
            return merr_set(err, MERR_NOMEM, ENOMEM, "cannot build a path");
        if (write_marker(ctx, marker, st->st_mode & 0777, 0, st, err) < 0)
            return -1;
    }
    return walk_dir(ctx, fd, sub, err);
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

static int tar_open(struct tar_ctx *ctx, struct merr *err)
{
    ctx->archive = archive_write_new();
    if (ctx->archive == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot create tar writer");
    /* ustar unless something needs pax; xattrs only as SCHILY records (what Go
     * and dockerd read); no record padding past the two end blocks, like Go. */
    if (archive_write_set_format_pax_restricted(ctx->archive) != ARCHIVE_OK ||
        archive_write_add_filter_none(ctx->archive) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(ctx->archive, 1) != ARCHIVE_OK)
        return merr_set(err, MERR_INTERNAL, 0, "cannot configure tar writer: %s",
                        archive_error_string(ctx->archive));
    (void)archive_write_set_format_option(ctx->archive, "pax", "xattrheader", "SCHILY");
    if (archive_write_open(ctx->archive, ctx, NULL, write_callback, NULL) != ARCHIVE_OK)
        return archive_failure(ctx, "", err);
    return 0;
}

int layer_tar_dir(const char *src, int out_fd, struct layer_result *res, struct merr *err)
{
    return layer_tar_dir_skip(src, out_fd, NULL, res, err);
}

int layer_tar_dir_skip(const char *src, int out_fd, const char *const *skip,
                       struct layer_result *res, struct merr *err)
{
    struct tar_ctx ctx = { .out_fd = out_fd, .skip = skip };
    auto_close int rootfd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int r = -1;
    if (rootfd < 0) {
        merr_set(err, MERR_IO, errno, "cannot open '%s'", src);
        goto out;
    }
    ctx.sha = EVP_MD_CTX_new();
    ctx.buf = malloc(TAR_COPY_BUF);
    if (ctx.sha == NULL || ctx.buf == NULL || EVP_DigestInit_ex(ctx.sha, EVP_sha256(), NULL) != 1) {
        merr_set(err, MERR_NOMEM, ENOMEM, "cannot prepare the layer tar");
        goto out;
    }
    if (tar_open(&ctx, err) < 0 || walk_dir(&ctx, rootfd, "", err) < 0)
        goto out;
    if (archive_write_close(ctx.archive) != ARCHIVE_OK) {
        archive_failure(&ctx, src, err);
        goto out;
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx.sha, digest, &len) != 1 || len != 32) {
        merr_set(err, MERR_CRYPTO, 0, "cannot finish sha256");
        goto out;
    }
    if (res != NULL) {
        layer_format_diff_id(digest, res->diff_id);
        res->size = ctx.size;
    }
    r = 0;
out:
    if (ctx.archive != NULL)
        archive_write_free(ctx.archive);
    if (ctx.links != NULL)
        tdestroy(ctx.links, link_free);
    EVP_MD_CTX_free(ctx.sha);
    free(ctx.buf);
    return r;
}
