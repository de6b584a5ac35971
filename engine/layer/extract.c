/* Layer extraction: libarchive parses the tar (tar formats only, no filters, so
 * it never runs a program), we write every entry ourselves relative to a dirfd
 * of dest. Parents are opened with layer_open_dir() (inside-the-root
 * resolution), the final component is only ever touched with *at calls that do
 * not follow it, and directory modes/times are applied after the last entry so
 * read-only directories do not get in the way. */
#include "layer-priv.h"

#include "cleanup.h"
#include "error.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <openssl/evp.h>
#include <fcntl.h>
#include <limits.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

/* Larger numbers do not fit the kernel's dev_t encoding (12 + 20 bits). */
#define LAYER_MAX_DEV_MAJOR 4095U
#define LAYER_MAX_DEV_MINOR 1048575U
#define LAYER_OPAQUE_XATTR "trusted.overlay.opaque"
#define LAYER_WH_PREFIX ".wh."
#define LAYER_WH_META_PREFIX ".wh..wh."
#define LAYER_WH_OPAQUE ".wh..wh..opq"

struct entry_meta {
    mode_t perm;
    uid_t uid;
    gid_t gid;
    bool has_times;
    struct timespec times[2]; /* atime, mtime */
};

/* Metadata of a directory, applied once every entry is written. */
struct dir_record {
    dev_t dev;
    ino_t ino;
    char *path;
    struct entry_meta meta;
};

struct extract_ctx {
    int rootfd;
    unsigned resolve_flags;
    uint64_t max_entries;
    uint64_t max_uncompressed;
    bool can_chown;
    bool in_userns;
    bool plain; /* not a layer: .wh.* names are ordinary files */
    bool whiteout_files;
    layer_file_fn on_file;
    void *file_ctx;
    struct archive *archive;
    struct layer_stream *stream;
    struct merr stream_err;
    bool stream_failed;
    void *dir_index; /* tsearch tree of dir_record by (dev, ino) */
    struct dir_record **dirs;
    size_t ndirs, dirs_cap;
};

static int content_code(int e)
{
    switch (e) {
    case ENOENT:
    case ELOOP:
    case ENOTDIR:
    case EXDEV:
    case ENAMETOOLONG:
    case EEXIST:
        return MERR_INVALID;
    case EACCES:
    case EPERM:
        return MERR_PERM;
    case ENOMEM:
        return MERR_NOMEM;
    default:
        return MERR_IO;
    }
}

static int archive_failure(struct extract_ctx *ctx, struct merr *err)
{
    if (ctx->stream_failed) {
        if (err != NULL)
            *err = ctx->stream_err;
        return -1;
    }
    const char *msg = archive_error_string(ctx->archive);
    return merr_set(err, MERR_CORRUPT, 0, "corrupt layer tar: %s", msg != NULL ? msg : "unknown error");
}

static la_ssize_t read_callback(struct archive *a, void *data, const void **buf)
{
    struct extract_ctx *ctx = data;
    if (ctx->stream_failed)
        return -1;
    ssize_t n = layer_stream_read(ctx->stream, buf, &ctx->stream_err);
    if (n < 0) {
        ctx->stream_failed = true;
        archive_set_error(a, EIO, "%s", ctx->stream_err.msg);
        return -1;
    }
    return n;
}

/* ---- directory records ---- */

static int dir_record_cmp(const void *a, const void *b)
{
    const struct dir_record *x = a, *y = b;
    if (x->dev != y->dev)
        return x->dev < y->dev ? -1 : 1;
    if (x->ino != y->ino)
        return x->ino < y->ino ? -1 : 1;
    return 0;
}

static void no_free(void *p)
{
    (void)p;
}

static void ctx_release(struct extract_ctx *ctx)
{
    if (ctx->dir_index != NULL)
        tdestroy(ctx->dir_index, no_free);
    for (size_t i = 0; i < ctx->ndirs; i++) {
        free(ctx->dirs[i]->path);
        free(ctx->dirs[i]);
    }
    free(ctx->dirs);
    if (ctx->archive != NULL)
        archive_read_free(ctx->archive);
    layer_stream_free(ctx->stream);
    if (ctx->rootfd >= 0)
        close(ctx->rootfd);
}

/* Remembers dir fd's final metadata; an explicit entry overrides what an
 * earlier entry (or an implicitly created parent) recorded. */
static int record_dir(struct extract_ctx *ctx, int fd, const char *path,
                      const struct entry_meta *meta, bool explicit_entry, struct merr *err)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return merr_set(err, MERR_IO, errno, "cannot inspect directory '%s'", path);
    struct dir_record key = { .dev = st.st_dev, .ino = st.st_ino };
    void *found = tfind(&key, &ctx->dir_index, dir_record_cmp);
    if (found != NULL) {
        if (explicit_entry)
            (*(struct dir_record **)found)->meta = *meta;
        return 0;
    }
    if (ctx->ndirs == ctx->dirs_cap) {
        size_t cap = ctx->dirs_cap ? ctx->dirs_cap * 2 : 64;
        struct dir_record **dirs = realloc(ctx->dirs, cap * sizeof *dirs);
        if (dirs == NULL)
            return merr_set(err, MERR_NOMEM, ENOMEM, "cannot record directory '%s'", path);
        ctx->dirs = dirs;
        ctx->dirs_cap = cap;
    }
    struct dir_record *rec = calloc(1, sizeof *rec);
    if (rec == NULL || (rec->path = strdup(path)) == NULL) {
        free(rec);
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot record directory '%s'", path);
    }
    rec->dev = st.st_dev;
    rec->ino = st.st_ino;
    rec->meta = *meta;
    if (tsearch(rec, &ctx->dir_index, dir_record_cmp) == NULL) {
        free(rec->path);
        free(rec);
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot record directory '%s'", path);
    }
    ctx->dirs[ctx->ndirs++] = rec;
    return 0;
}

static void split_path(const char *path, char *parent, const char **base)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        parent[0] = '\0';
        *base = path;
        return;
    }
    size_t len = (size_t)(slash - path);
    memcpy(parent, path, len);
    parent[len] = '\0';
    *base = slash + 1;
}

static int set_owner(struct extract_ctx *ctx, int fd, const char *name, const struct entry_meta *m,
                     struct merr *err)
{
    if (!ctx->can_chown)
        return 0;
    int r = name != NULL ? fchownat(fd, name, m->uid, m->gid, AT_SYMLINK_NOFOLLOW)
                         : fchown(fd, m->uid, m->gid);
    if (r == 0)
        return 0;
    if (ctx->in_userns && (errno == EINVAL || errno == EPERM))
        return 0; /* ids not mapped into this user namespace */
    return merr_set(err, MERR_IO, errno, "cannot change owner of '%s'", name != NULL ? name : ".");
}

/* Opens (creating with mode 0700 where missing) the parent directory of an
 * entry. Created parents are recorded with dockerd's defaults (0755, root). */
static int open_parent(struct extract_ctx *ctx, const char *parent, unsigned flags, struct merr *err)
{
    flags |= ctx->resolve_flags;
    int fd = layer_open_dir(ctx->rootfd, parent, flags);
    if (fd >= 0)
        return fd;
    if (errno != ENOENT)
        return merr_set(err, content_code(errno), errno, "cannot resolve '%s' inside the layer", parent);

    static const struct entry_meta implicit = { .perm = 0755, .uid = 0, .gid = 0 };
    char prefix[PATH_MAX];
    auto_close int prev = layer_open_dir(ctx->rootfd, "", flags);
    if (prev < 0)
        return merr_set(err, MERR_IO, errno, "cannot open the layer root");
    for (const char *p = parent; *p != '\0';) {
        const char *end = strchrnul(p, '/');
        size_t plen = (size_t)(end - parent);
        memcpy(prefix, parent, plen);
        prefix[plen] = '\0';
        const char *comp = prefix + (p - parent);
        int next = layer_open_dir(ctx->rootfd, prefix, flags);
        if (next < 0 && errno == ENOENT) {
            if (mkdirat(prev, comp, 0700) < 0 && errno != EEXIST)
                return merr_set(err, content_code(errno), errno, "cannot create directory '%s'", prefix);
            next = openat(prev, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (next >= 0 && record_dir(ctx, next, prefix, &implicit, false, err) < 0) {
                close(next);
                return -1;
            }
        }
        if (next < 0)
            return merr_set(err, content_code(errno), errno, "cannot resolve '%s' inside the layer", prefix);
        close(prev);
        prev = next;
        p = *end == '/' ? end + 1 : end;
    }
    return steal_fd(&prev);
}

/* Removes whatever the layer wrote at name before, unless both are directories
 * (then the new entry merges into the existing one; *is_dir says so). */
static int remove_existing(int pfd, const char *name, bool keep_dir, bool *is_dir, struct merr *err)
{
    struct stat st;
    if (is_dir != NULL)
        *is_dir = false;
    if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT)
            return 0;
        return merr_set(err, MERR_IO, errno, "cannot inspect '%s'", name);
    }
    if (keep_dir && S_ISDIR(st.st_mode)) {
        *is_dir = true;
        return 0;
    }
    return layer_remove_at(pfd, name, err);
}

static bool xattr_allowed(const char *name)
{
    return strncmp(name, "user.", 5) == 0 || strcmp(name, "security.capability") == 0;
}

/* Applies the entry's user.* and security.capability xattrs; trusted.* and the
 * rest are dropped. Filesystems without xattr support are tolerated, as dockerd
 * does. */
static int apply_xattrs(int fd, struct archive_entry *e, const char *path, struct merr *err)
{
    const char *name;
    const void *value;
    size_t size;
    archive_entry_xattr_reset(e);
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
        if (name == NULL || !xattr_allowed(name))
            continue;
        if (fsetxattr(fd, name, value, size, 0) < 0 && errno != ENOTSUP && errno != EPERM)
            return merr_set(err, MERR_IO, errno, "cannot set xattr '%s' on '%s'", name, path);
    }
    return 0;
}

static int entry_meta(struct archive_entry *e, const char *path, struct entry_meta *m, struct merr *err)
{
    int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);
    if (uid < 0 || uid >= (int64_t)UINT32_MAX || gid < 0 || gid >= (int64_t)UINT32_MAX)
        return merr_set(err, MERR_INVALID, 0, "entry '%s' has an invalid owner", path);
    m->perm = archive_entry_perm(e) & 07777;
    m->uid = (uid_t)uid;
    m->gid = (gid_t)gid;
    m->has_times = archive_entry_mtime_is_set(e);
    if (m->has_times) {
        long mns = archive_entry_mtime_nsec(e);
        m->times[1].tv_sec = archive_entry_mtime(e);
        m->times[1].tv_nsec = mns >= 0 && mns < 1000000000L ? mns : 0;
        m->times[0] = m->times[1];
        if (archive_entry_atime_is_set(e)) {
            long ans = archive_entry_atime_nsec(e);
            m->times[0].tv_sec = archive_entry_atime(e);
            m->times[0].tv_nsec = ans >= 0 && ans < 1000000000L ? ans : 0;
        }
    }
    return 0;
}

static const char *entry_string(const char *mbs, const char *utf8)
{
    return mbs != NULL ? mbs : utf8;
}

/* ---- entry kinds ---- */

/* The contents' digest for on_file: the data blocks in order, holes (the gaps between blocks
 * of a sparse entry, and its tail) hashed as the zeros they read as. */
static int hash_zeros(EVP_MD_CTX *md, uint64_t n)
{
    static const unsigned char zeros[4096];
    for (; n > 0;) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        if (EVP_DigestUpdate(md, zeros, k) != 1)
            return -1;
        n -= k;
    }
    return 0;
}

static int hash_block(EVP_MD_CTX *md, uint64_t *hashed, const void *buf, size_t len, int64_t off)
{
    if (md == NULL)
        return 0;
    if (off < 0 || (uint64_t)off < *hashed)
        return -1; /* blocks out of order: no digest */
    if (hash_zeros(md, (uint64_t)off - *hashed) < 0 || EVP_DigestUpdate(md, buf, len) != 1)
        return -1;
    *hashed = (uint64_t)off + len;
    return 0;
}

static void report_file(struct extract_ctx *ctx, EVP_MD_CTX *md, uint64_t hashed, int fd,
                        int64_t size)
{
    struct layer_file_digest d;
    struct stat st;
    unsigned len = 0;
    if (md == NULL || fstat(fd, &st) < 0 || (size >= 0 && (uint64_t)size < hashed) ||
        hash_zeros(md, size > 0 ? (uint64_t)size - hashed : 0) < 0 ||
        EVP_DigestFinal_ex(md, d.sha256, &len) != 1 || len != sizeof d.sha256)
        return;
    d.dev = st.st_dev;
    d.ino = st.st_ino;
    d.size = (uint64_t)st.st_size;
    ctx->on_file(ctx->file_ctx, &d);
}

static void md_free(EVP_MD_CTX **md)
{
    EVP_MD_CTX_free(*md);
}

static int extract_file(struct extract_ctx *ctx, int pfd, const char *base, const char *path,
                        struct archive_entry *e, const struct entry_meta *m, struct merr *err)
{
    int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : -1;
    if (size > 0 && (uint64_t)size > ctx->max_uncompressed)
        return merr_set(err, MERR_INVALID, 0, "file '%s' is larger than the layer limit", path);
    if (remove_existing(pfd, base, false, NULL, err) < 0)
        return -1;
    auto_close int fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return merr_set(err, content_code(errno), errno, "cannot create '%s'", path);
    __attribute__((cleanup(md_free))) EVP_MD_CTX *md = NULL;
    if (ctx->on_file != NULL && (md = EVP_MD_CTX_new()) != NULL &&
        EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        md = NULL;
    }
    uint64_t hashed = 0;
    for (;;) {
        const void *buf;
        size_t len;
        la_int64_t off;
        int r = archive_read_data_block(ctx->archive, &buf, &len, &off);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN)
            return archive_failure(ctx, err);
        if (hash_block(md, &hashed, buf, len, off) < 0) {
            EVP_MD_CTX_free(md);
            md = NULL;
        }
        const char *p = buf;
        while (len > 0) {
            ssize_t n = pwrite(fd, p, len, off);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                return merr_set(err, MERR_IO, errno, "cannot write '%s'", path);
            }
            p += n;
            off += n;
            len -= (size_t)n;
        }
    }
    /* Sparse entries end in holes that no data block covers. */
    if (size >= 0 && ftruncate(fd, size) < 0)
        return merr_set(err, MERR_IO, errno, "cannot size '%s'", path);
    /* chown clears set-id bits and capabilities, so it comes first. */
    if (set_owner(ctx, fd, NULL, m, err) < 0)
        return -1;
    if (fchmod(fd, m->perm) < 0)
        return merr_set(err, MERR_IO, errno, "cannot change mode of '%s'", path);
    if (apply_xattrs(fd, e, path, err) < 0)
        return -1;
    if (m->has_times && futimens(fd, m->times) < 0)
        return merr_set(err, MERR_IO, errno, "cannot set times of '%s'", path);
    report_file(ctx, md, hashed, fd, size);
    return 0;
}

static int extract_dir(struct extract_ctx *ctx, int pfd, const char *base, const char *path,
                       struct archive_entry *e, const struct entry_meta *m, struct merr *err)
{
    bool exists;
    if (remove_existing(pfd, base, true, &exists, err) < 0)
        return -1;
    if (!exists && mkdirat(pfd, base, 0700) < 0)
        return merr_set(err, content_code(errno), errno, "cannot create directory '%s'", path);
    auto_close int fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return merr_set(err, content_code(errno), errno, "cannot open directory '%s'", path);
    if (apply_xattrs(fd, e, path, err) < 0)
        return -1;
    return record_dir(ctx, fd, path, m, true, err);
}

static int extract_symlink(struct extract_ctx *ctx, int pfd, const char *parent, const char *base,
                           const char *path, struct archive_entry *e, const struct entry_meta *m,
                           struct merr *err)
{
    const char *target = entry_string(archive_entry_symlink(e), archive_entry_symlink_utf8(e));
    if (target == NULL || target[0] == '\0')
        return merr_set(err, MERR_INVALID, 0, "symlink '%s' has no target", path);
    /* Harmless to us (we never follow it), but dockerd refuses these too. */
    if (layer_symlink_escapes(parent, target))
        return merr_set(err, MERR_INVALID, 0, "symlink '%s' points out of the layer", path);
    if (remove_existing(pfd, base, false, NULL, err) < 0)
        return -1;
    if (symlinkat(target, pfd, base) < 0)
        return merr_set(err, content_code(errno), errno, "cannot create symlink '%s'", path);
    if (set_owner(ctx, pfd, base, m, err) < 0)
        return -1;
    if (m->has_times && utimensat(pfd, base, m->times, AT_SYMLINK_NOFOLLOW) < 0)
        return merr_set(err, MERR_IO, errno, "cannot set times of '%s'", path);
    return 0;
}

/* The new name gets no metadata of its own: it shares the target's inode, and
 * changing it would follow a hardlinked symlink out of the layer
 * (CVE-2021-32760). */
static int extract_hardlink(struct extract_ctx *ctx, int pfd, const char *base, const char *path,
                            const char *raw_target, struct merr *err)
{
    char target[PATH_MAX], tparent[PATH_MAX];
    const char *tbase;
    if (layer_clean_path(raw_target, target, sizeof target, err) < 0)
        return merr_prefix(err, "hardlink '%s'", path);
    if (target[0] == '\0')
        return merr_set(err, MERR_INVALID, 0, "hardlink '%s' points at the layer root", path);
    split_path(target, tparent, &tbase);
    auto_close int tpfd = layer_open_dir(ctx->rootfd, tparent, ctx->resolve_flags);
    if (tpfd < 0)
        return merr_set(err, content_code(errno), errno, "hardlink '%s' target '%s' is not in the layer",
                        path, raw_target);
    struct stat tst, st;
    if (fstatat(tpfd, tbase, &tst, AT_SYMLINK_NOFOLLOW) < 0)
        return merr_set(err, content_code(errno), errno, "hardlink '%s' target '%s' is not in the layer",
                        path, raw_target);
    if (S_ISDIR(tst.st_mode))
        return merr_set(err, MERR_INVALID, 0, "hardlink '%s' points at a directory", path);
    if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == tst.st_dev &&
        st.st_ino == tst.st_ino)
        return 0;
    if (remove_existing(pfd, base, false, NULL, err) < 0)
        return -1;
    if (linkat(tpfd, tbase, pfd, base, 0) < 0)
        return merr_set(err, content_code(errno), errno, "cannot create hardlink '%s'", path);
    return 0;
}

static int extract_node(struct extract_ctx *ctx, int pfd, const char *base, const char *path,
                        struct archive_entry *e, mode_t type, const struct entry_meta *m,
                        struct merr *err)
{
    dev_t dev = 0;
    if (type == S_IFCHR || type == S_IFBLK) {
        unsigned long major = archive_entry_rdevmajor(e), minor = archive_entry_rdevminor(e);
        if (major > LAYER_MAX_DEV_MAJOR || minor > LAYER_MAX_DEV_MINOR)
            return merr_set(err, MERR_INVALID, 0, "device '%s' has an invalid number %lu:%lu", path,
                            major, minor);
        if (ctx->in_userns)
            return 0; /* mknod is not allowed here; dockerd skips them too */
        dev = makedev(major, minor);
    }
    if (remove_existing(pfd, base, false, NULL, err) < 0)
        return -1;
    if (mknodat(pfd, base, type | (m->perm & 0777), dev) < 0)
        return merr_set(err, content_code(errno), errno, "cannot create node '%s'", path);
    if (set_owner(ctx, pfd, base, m, err) < 0)
        return -1;
    if (fchmodat(pfd, base, m->perm, AT_SYMLINK_NOFOLLOW) < 0)
        return merr_set(err, MERR_IO, errno, "cannot change mode of '%s'", path);
    if (m->has_times && utimensat(pfd, base, m->times, AT_SYMLINK_NOFOLLOW) < 0)
        return merr_set(err, MERR_IO, errno, "cannot set times of '%s'", path);
    return 0;
}

/* `.wh..wh..opq` → opaque xattr on the directory; `.wh.<name>` → 0:0 char
 * device <name>. Parents of whiteouts must not go through symlinks. */
static int extract_whiteout(struct extract_ctx *ctx, const char *parent, const char *base,
                            const char *path, const struct entry_meta *m, struct merr *err)
{
    bool opaque = strcmp(base, LAYER_WH_OPAQUE) == 0;
    if (!opaque && strncmp(base, LAYER_WH_META_PREFIX, strlen(LAYER_WH_META_PREFIX)) == 0)
        return 0; /* other aufs metadata (.wh..wh.plnk, ...): dockerd skips it */
    const char *name = base + strlen(LAYER_WH_PREFIX);
    if (!opaque && (name[0] == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0))
        return merr_set(err, MERR_INVALID, 0, "invalid whiteout '%s'", path);
    auto_close int pfd = open_parent(ctx, parent, LAYER_RESOLVE_NOFOLLOW, err);
    if (pfd < 0)
        return merr_prefix(err, "whiteout '%s'", path);
    if (ctx->whiteout_files) {
        if (remove_existing(pfd, base, false, NULL, err) < 0)
            return -1;
        auto_close int fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                                   0600);
        if (fd < 0)
            return merr_set(err, content_code(errno), errno, "cannot create marker '%s'", path);
        return 0;
    }
    if (opaque) {
        auto_close int dfd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
            return merr_set(err, MERR_IO, errno, "cannot open directory of '%s'", path);
        if (fsetxattr(dfd, LAYER_OPAQUE_XATTR, "y", 1, 0) < 0)
            return merr_set(err, content_code(errno), errno, "cannot mark '%s' opaque", parent);
        return 0;
    }
    if (remove_existing(pfd, name, false, NULL, err) < 0)
        return -1;
    if (mknodat(pfd, name, S_IFCHR, makedev(0, 0)) < 0)
        return merr_set(err, content_code(errno), errno, "cannot create whiteout for '%s'", path);
    return set_owner(ctx, pfd, name, m, err);
}

static int extract_entry(struct extract_ctx *ctx, struct archive_entry *e, struct merr *err)
{
    const char *raw = entry_string(archive_entry_pathname(e), archive_entry_pathname_utf8(e));
    if (raw == NULL)
        return merr_set(err, MERR_CORRUPT, 0, "layer entry without a name");
    char path[PATH_MAX], parent[PATH_MAX];
    const char *base;
    if (layer_clean_path(raw, path, sizeof path, err) < 0)
        return -1;
    struct entry_meta m;
    if (entry_meta(e, path, &m, err) < 0)
        return -1;
    const char *hardlink = entry_string(archive_entry_hardlink(e), archive_entry_hardlink_utf8(e));
    mode_t type = archive_entry_filetype(e);
    if (path[0] == '\0') {
        if (hardlink != NULL || type != AE_IFDIR)
            return merr_set(err, MERR_INVALID, 0, "entry '%s' would replace the layer root", raw);
        return record_dir(ctx, ctx->rootfd, "", &m, true, err);
    }
    split_path(path, parent, &base);
    if (!ctx->plain && strncmp(base, LAYER_WH_PREFIX, strlen(LAYER_WH_PREFIX)) == 0)
        return extract_whiteout(ctx, parent, base, path, &m, err);

    auto_close int pfd = open_parent(ctx, parent, 0, err);
    if (pfd < 0)
        return merr_prefix(err, "entry '%s'", path);
    if (hardlink != NULL)
        return extract_hardlink(ctx, pfd, base, path, hardlink, err);
    switch (type) {
    case AE_IFREG:
        return extract_file(ctx, pfd, base, path, e, &m, err);
    case AE_IFDIR:
        return extract_dir(ctx, pfd, base, path, e, &m, err);
    case AE_IFLNK:
        return extract_symlink(ctx, pfd, parent, base, path, e, &m, err);
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO:
        return extract_node(ctx, pfd, base, path, e, type, &m, err);
    case AE_IFSOCK:
        return 0; /* a socket in a tar carries nothing; skip it */
    default:
        return merr_set(err, MERR_UNSUPPORTED, 0, "entry '%s' has unsupported type 0%o", path,
                        (unsigned)type);
    }
}

/* ---- finishing ---- */

static int reopen_dir(struct extract_ctx *ctx, const char *path)
{
    if (path[0] == '\0')
        return openat(ctx->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char parent[PATH_MAX];
    const char *base;
    split_path(path, parent, &base);
    auto_close int pfd = layer_open_dir(ctx->rootfd, parent, ctx->resolve_flags);
    if (pfd < 0)
        return -1;
    return openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* Children were recorded after their parents, so walking backwards sets a
 * child's mode before its parent may become unsearchable. */
static int apply_dir_metadata(struct extract_ctx *ctx, struct merr *err)
{
    for (size_t i = ctx->ndirs; i-- > 0;) {
        const struct dir_record *d = ctx->dirs[i];
        auto_close int fd = reopen_dir(ctx, d->path);
        if (fd < 0) {
            if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
                continue; /* replaced by a later entry */
            return merr_set(err, MERR_IO, errno, "cannot reopen directory '%s'", d->path);
        }
        struct stat st;
        if (fstat(fd, &st) < 0)
            return merr_set(err, MERR_IO, errno, "cannot inspect directory '%s'", d->path);
        if (st.st_dev != d->dev || st.st_ino != d->ino)
            continue;
        if (set_owner(ctx, fd, NULL, &d->meta, err) < 0)
            return -1;
        if (fchmod(fd, d->meta.perm) < 0)
            return merr_set(err, MERR_IO, errno, "cannot change mode of '%s'", d->path);
        if (d->meta.has_times && futimens(fd, d->meta.times) < 0)
            return merr_set(err, MERR_IO, errno, "cannot set times of '%s'", d->path);
    }
    return 0;
}

static bool running_in_userns(void)
{
    auto_fclose FILE *f = fopen("/proc/self/uid_map", "re");
    if (f == NULL)
        return false;
    char buf[256];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    return !layer_uid_map_is_initial(buf);
}

static int open_archive(struct extract_ctx *ctx, struct merr *err)
{
    ctx->archive = archive_read_new();
    if (ctx->archive == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot create tar reader");
    /* Tar only, and no filters: libarchive must never run an external program. */
    if (archive_read_support_format_tar(ctx->archive) != ARCHIVE_OK ||
        archive_read_support_format_empty(ctx->archive) != ARCHIVE_OK ||
        archive_read_support_filter_none(ctx->archive) != ARCHIVE_OK)
        return merr_set(err, MERR_INTERNAL, 0, "cannot configure tar reader: %s",
                        archive_error_string(ctx->archive));
    if (archive_read_open(ctx->archive, ctx, NULL, read_callback, NULL) != ARCHIVE_OK)
        return archive_failure(ctx, err);
    return 0;
}

static int extract_all(struct extract_ctx *ctx, struct merr *err)
{
    uint64_t entries = 0;
    for (;;) {
        struct archive_entry *e;
        int r = archive_read_next_header(ctx->archive, &e);
        if (r == ARCHIVE_EOF)
            return 0;
        if (r < ARCHIVE_WARN)
            return archive_failure(ctx, err);
        if (++entries > ctx->max_entries)
            return merr_set(err, MERR_INVALID, 0, "layer has more than %llu entries",
                            (unsigned long long)ctx->max_entries);
        if (extract_entry(ctx, e, err) < 0)
            return -1;
    }
}

int layer_extract_src_opts(const struct layer_source *src, enum layer_compression comp,
                           const char *dest, const struct layer_limits *lim,
                           const struct layer_extract_opts *opts, struct layer_result *res,
                           struct merr *err)
{
    struct extract_ctx ctx = {
        .rootfd = -1,
        .max_entries = lim != NULL && lim->max_entries ? lim->max_entries : LAYER_DEFAULT_MAX_ENTRIES,
        .max_uncompressed = lim != NULL && lim->max_uncompressed ? lim->max_uncompressed
                                                                 : LAYER_DEFAULT_MAX_UNCOMPRESSED,
        .resolve_flags = opts != NULL && opts->force_fallback_resolve ? LAYER_RESOLVE_FALLBACK : 0,
        .can_chown = geteuid() == 0,
        .in_userns = (opts != NULL && opts->assume_userns) || running_in_userns(),
        .plain = opts != NULL && opts->plain,
        .whiteout_files = lim != NULL && lim->whiteout_files,
        .on_file = opts != NULL ? opts->on_file : NULL,
        .file_ctx = opts != NULL ? opts->file_ctx : NULL,
    };
    int r = -1;
    ctx.rootfd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (ctx.rootfd < 0) {
        merr_set(err, MERR_IO, errno, "cannot open '%s'", dest);
        goto out;
    }
    if (layer_stream_new(&ctx.stream, src, comp, ctx.max_uncompressed, err) < 0 ||
        open_archive(&ctx, err) < 0 || extract_all(&ctx, err) < 0 ||
        layer_stream_finish(ctx.stream, res, err) < 0 || apply_dir_metadata(&ctx, err) < 0)
        goto out;
    r = 0;
out:
    ctx_release(&ctx);
    return r;
}

int layer_extract_fd_opts(int fd, enum layer_compression comp, const char *dest,
                          const struct layer_limits *lim, const struct layer_extract_opts *opts,
                          struct layer_result *res, struct merr *err)
{
    struct layer_source src = { .fd = fd };
    return layer_extract_src_opts(&src, comp, dest, lim, opts, res, err);
}

int layer_extract_fd(int fd, enum layer_compression comp, const char *dest,
                     const struct layer_limits *lim, struct layer_result *res, struct merr *err)
{
    return layer_extract_fd_opts(fd, comp, dest, lim, NULL, res, err);
}

int layer_extract_plain_fd(int fd, enum layer_compression comp, const char *dest,
                           const struct layer_limits *lim, struct layer_result *res,
                           struct merr *err)
{
    struct layer_extract_opts o = { .plain = true };
    return layer_extract_fd_opts(fd, comp, dest, lim, &o, res, err);
}

int layer_extract_plain_reader(layer_read_fn read, void *ctx, enum layer_compression comp,
                               const char *dest, const struct layer_limits *lim,
                               layer_file_fn on_file, void *file_ctx, struct layer_result *res,
                               struct merr *err)
{
    struct layer_source src = { .fd = -1, .read = read, .ctx = ctx, .no_digest = true };
    struct layer_extract_opts o = { .plain = true, .on_file = on_file, .file_ctx = file_ctx };
    return layer_extract_src_opts(&src, comp, dest, lim, &o, res, err);
}
