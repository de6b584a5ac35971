/* COPY/ADD sources as a tar: every source opened beneath the root directory with openat2
 * (RESOLVE_IN_ROOT: ".." and symlinks stop at the root, so nothing outside the context is ever
 * read), directories walked without following anything, .dockerignore'd paths left out. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "build/builder.h"
#include "build/dockerfile.h"
#include "error.h"
#include "fsutil.h"
#include "strv.h"
#include "tarw.h"

#define COPY_MAX_DEPTH 256
#define COPY_MAX_MATCHES 100000
#define COPY_CHUNK (128u << 10)

struct copy_out {
    int fd;
    EVP_MD_CTX *md;  /* the checksum of everything copied */
    EVP_MD_CTX *fmd; /* one file's contents, whose digest goes into md */
    struct tarw tw;
    const struct copy_spec *spec;
    char *buf;
    bool unpacked;   /* walking an unpacked archive: its owners, modes, no .dockerignore */
    unsigned n_unpacked;
};

static int out_write(void *ctx, const void *buf, size_t len, struct merr *err)
{
    struct copy_out *o = ctx;
    const char *p = buf;
    for (size_t left = len; left > 0;) {
        ssize_t n = write(o->fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return merr_set(err, MERR_IO, errno, "cannot write the COPY layer");
        p += n;
        left -= (size_t)n;
    }
    return 0;
}

/* The content checksum of the cache: names, types, modes, owners, sizes, link targets and the
 * SHA-256 of each file's contents; not mtimes (a context extracted again, or a stage rebuilt to
 * the same files, hits the cache), as dockerd's tarsum leaves them out. Then the entry itself.
 * A file's contents enter as their digest, so a file of the context whose digest the extractor
 * took as it arrived (spec->digests) is not read again for the checksum. */
static int entry(struct copy_out *o, const struct tarw_meta *m, struct merr *err)
{
    char head[128];
    int n = snprintf(head, sizeof head, "%c %o %lu %lu %llu ", m->type, m->mode, m->uid, m->gid,
                     (unsigned long long)m->size);
    if (EVP_DigestUpdate(o->md, m->name, strlen(m->name) + 1) != 1 ||
        EVP_DigestUpdate(o->md, head, (size_t)n) != 1 ||
        EVP_DigestUpdate(o->md, m->linkname ? m->linkname : "", m->linkname ? strlen(m->linkname) + 1 : 1) != 1)
        return merr_set(err, MERR_CRYPTO, 0, "cannot hash");
    return o->fd < 0 ? 0 : tarw_entry(&o->tw, m, err);
}

static int data(struct copy_out *o, const void *buf, size_t len, struct merr *err)
{
    if (EVP_DigestUpdate(o->fmd, buf, len) != 1)
        return merr_set(err, MERR_CRYPTO, 0, "cannot hash");
    return o->fd < 0 ? 0 : tarw_data(&o->tw, buf, len, err);
}

/* A regular file's contents (size bytes of fd, st its inode) after its entry(). */
static int file_data(struct copy_out *o, int fd, const struct stat *st, uint64_t size,
                     const char *name, struct merr *err)
{
    const unsigned char *known = o->fd < 0 && !o->unpacked && o->spec->digests != NULL
                                     ? build_digests_find(o->spec->digests, st->st_dev,
                                                          st->st_ino, size)
                                     : NULL;
    if (known != NULL)
        return EVP_DigestUpdate(o->md, known, 32) == 1
                   ? 0
                   : merr_set(err, MERR_CRYPTO, 0, "cannot hash");
    if (EVP_DigestInit_ex(o->fmd, EVP_sha256(), NULL) != 1)
        return merr_set(err, MERR_CRYPTO, 0, "cannot hash");
    for (uint64_t left = size; left > 0;) {
        ssize_t n = read(fd, o->buf, left < COPY_CHUNK ? (size_t)left : COPY_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return merr_set(err, MERR_IO, n < 0 ? errno : 0, "'%s' changed while copied", name);
        if (data(o, o->buf, (size_t)n, err) < 0)
            return -1;
        left -= (uint64_t)n;
    }
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned dlen = 0;
    if (EVP_DigestFinal_ex(o->fmd, d, &dlen) != 1 || EVP_DigestUpdate(o->md, d, dlen) != 1)
        return merr_set(err, MERR_CRYPTO, 0, "cannot hash");
    return 0;
}

/* Cleans a source path relative to the root; NULL when it climbs out of it. */
static char *clean_rel(const char *src)
{
    auto_free char *copy = xstrdup(src);
    char **parts = NULL;
    size_t n = 0;
    for (char *save = NULL, *t = strtok_r(copy, "/", &save); t != NULL;
         t = strtok_r(NULL, "/", &save)) {
        if (strcmp(t, ".") == 0)
            continue;
        if (strcmp(t, "..") == 0) {
            if (n == 0) {
                strv_free(parts);
                return NULL;
            }
            free(parts[--n]);
            parts[n] = NULL;
            continue;
        }
        parts = realloc(parts, (n + 2) * sizeof *parts);
        if (parts == NULL)
            abort();
        parts[n++] = xstrdup(t);
        parts[n] = NULL;
    }
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(parts[i]) + 1;
    char *out = xcalloc(1, len);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            strcat(out, "/");
        strcat(out, parts[i]);
    }
    strv_free(parts);
    return out;
}

static int open_beneath(int rootfd, const char *rel, int flags)
{
    struct open_how how = { .flags = (uint64_t)(flags | O_CLOEXEC),
                            .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
    int fd;
    do
        fd = (int)syscall(SYS_openat2, rootfd, rel[0] ? rel : ".", &how, sizeof how);
    while (fd < 0 && errno == EAGAIN);
    return fd;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char **sorted_entries(int dirfd)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    char **v = xcalloc(1, sizeof *v);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        v = strv_push(v, de->d_name);
        n++;
    }
    closedir(d);
    qsort(v, n, sizeof *v, name_cmp);
    return v;
}

static bool ignored(const struct copy_spec *s, const char *rel)
{
    return s->ignore != NULL && rel[0] != '\0' && df_ignore_match(s->ignore, rel);
}

static bool ignored_out(const struct copy_out *o, const char *rel)
{
    return !o->unpacked && ignored(o->spec, rel);
}

static int put_entry(struct copy_out *o, int dirfd, const char *leaf, const char *name,
                     const struct stat *st, struct merr *err)
{
    const struct copy_spec *s = o->spec;
    struct tarw_meta m = { .name = name, .uid = (unsigned long)s->uid,
                           .gid = (unsigned long)s->gid, .mtime = st->st_mtim.tv_sec,
                           .mode = s->chmod >= 0 ? (unsigned)s->chmod : st->st_mode & 07777 };
    if (o->unpacked) { /* an archive's entries keep what it says, as dockerd's untar */
        m.uid = st->st_uid;
        m.gid = st->st_gid;
        m.mode = st->st_mode & 07777;
    }
    char target[PATH_MAX];
    if (S_ISDIR(st->st_mode)) {
        m.type = '5';
        auto_free char *dname = xasprintf("%s/", name);
        m.name = dname;
        return entry(o, &m, err);
    }
    if (S_ISLNK(st->st_mode)) {
        ssize_t n = readlinkat(dirfd, leaf, target, sizeof target - 1);
        if (n < 0)
            return merr_set(err, MERR_IO, errno, "cannot read the symlink '%s'", name);
        target[n] = '\0';
        m.type = '2';
        m.linkname = target;
        m.mode = 0777;
        return entry(o, &m, err);
    }
    if (!S_ISREG(st->st_mode))
        return 0; /* devices, fifos and sockets of a context are not copied */
    m.type = '0';
    m.size = (uint64_t)st->st_size;
    if (o->fd < 0 && !o->unpacked && o->spec->digests != NULL &&
        build_digests_find(o->spec->digests, st->st_dev, st->st_ino, m.size) != NULL)
        return entry(o, &m, err) < 0 ? -1 : file_data(o, -1, st, m.size, name, err);
    auto_close int fd = openat(dirfd, leaf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat now;
    if (fd < 0 || fstat(fd, &now) < 0)
        return merr_set(err, MERR_IO, errno, "cannot open '%s'", name);
    m.size = (uint64_t)now.st_size;
    if (entry(o, &m, err) < 0)
        return -1;
    return file_data(o, fd, &now, m.size, name, err);
}

/* The contents of the directory dirfd (at rel in the root) under the image path name. */
static int put_tree(struct copy_out *o, int dirfd, const char *rel, const char *name, int depth,
                    struct merr *err)
{
    if (depth > COPY_MAX_DEPTH)
        return merr_set(err, MERR_INVALID, 0, "'%s' is nested too deeply", rel);
    auto_strv char **names = sorted_entries(dirfd);
    if (names == NULL)
        return merr_set(err, MERR_IO, errno, "cannot read '%s'", rel);
    for (size_t i = 0; names[i] != NULL; i++) {
        auto_free char *crel = rel[0] ? xasprintf("%s/%s", rel, names[i]) : xstrdup(names[i]);
        struct stat st;
        if (fstatat(dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        /* an excluded directory is still walked when an exception ("!a/b") may match below
         * it, as docker's context walk does */
        if (ignored_out(o, crel) &&
            !(S_ISDIR(st.st_mode) && df_ignore_has_exceptions(o->spec->ignore)))
            continue;
        auto_free char *cname = name[0] ? xasprintf("%s/%s", name, names[i]) : xstrdup(names[i]);
        if (put_entry(o, dirfd, names[i], cname, &st, err) < 0)
            return -1;
        if (!S_ISDIR(st.st_mode))
            continue;
        auto_close int sub = openat(dirfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0 || put_tree(o, sub, crel, cname, depth + 1, err) < 0)
            return sub < 0 ? merr_set(err, MERR_IO, errno, "cannot open '%s'", crel) : -1;
    }
    return 0;
}

static bool has_glob(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

/* Every path below dirfd (relative, '/'-separated) that the pattern matches. */
static int glob_walk(int dirfd, const char *rel, const char *pattern, const struct copy_spec *s,
                     char ***out, size_t *n, int depth, struct merr *err)
{
    if (depth > COPY_MAX_DEPTH || *n > COPY_MAX_MATCHES)
        return merr_set(err, MERR_INVALID, 0, "the context is too large to match '%s'", pattern);
    auto_strv char **names = sorted_entries(dirfd);
    for (size_t i = 0; names != NULL && names[i] != NULL; i++) {
        auto_free char *crel = rel[0] ? xasprintf("%s/%s", rel, names[i]) : xstrdup(names[i]);
        if (ignored(s, crel))
            continue;
        if (df_pattern_match(pattern, crel) == 1) {
            *out = strv_push(*out, crel);
            (*n)++;
            continue;
        }
        struct stat st;
        if (fstatat(dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
            continue;
        auto_close int sub = openat(dirfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub >= 0 && glob_walk(sub, crel, pattern, s, out, n, depth + 1, err) < 0)
            return -1;
    }
    return 0;
}

static int expand_sources(int rootfd, const struct copy_spec *s, char ***out, struct merr *err)
{
    char **list = xcalloc(1, sizeof *list);
    size_t n = 0;
    for (size_t i = 0; s->srcs[i] != NULL; i++) {
        auto_free char *rel = clean_rel(s->srcs[i]);
        if (rel == NULL) {
            strv_free(list);
            return merr_set(err, MERR_INVALID, 0, "forbidden path outside the build context: %s",
                            s->srcs[i]);
        }
        if (!has_glob(rel)) {
            list = strv_push(list, rel);
            n++;
            continue;
        }
        size_t before = n;
        if (glob_walk(rootfd, "", rel, s, &list, &n, 0, err) < 0) {
            strv_free(list);
            return -1;
        }
        if (n == before) {
            strv_free(list);
            return merr_set(err, MERR_NOT_FOUND, 0, "no source files were specified");
        }
    }
    *out = list;
    return 0;
}

/* ADD of a local archive: its contents under dest (a directory); 1 when it was one. */
static int unpack_source(struct copy_out *o, int rfd, const char *dest, struct merr *err)
{
    unsigned n = o->n_unpacked++;
    const char *pass = o->fd < 0 ? "sum" : "tar"; /* each pass unpacks into its own */
    auto_free char *spool = xasprintf("%s/unpack-%s%u.tar", o->spec->work, pass, n);
    auto_free char *dir = xasprintf("%s/unpack-%s%u", o->spec->work, pass, n);
    int r = build_unpack_archive(rfd, spool, dir, err);
    unlink(spool);
    if (r == 0 && lseek(rfd, 0, SEEK_SET) < 0) /* read again as the file it is */
        return merr_set(err, MERR_IO, errno, "cannot rewind '%s'", dest);
    if (r <= 0)
        return r;
    auto_close int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return merr_set(err, MERR_IO, errno, "cannot open '%s'", dir);
    if (dest[0] != '\0') {
        struct stat dst = { .st_mode = S_IFDIR | 0755 };
        if (put_entry(o, -1, NULL, dest, &dst, err) < 0)
            return -1;
    }
    o->unpacked = true;
    r = put_tree(o, dfd, "", dest, 0, err);
    o->unpacked = false;
    return r < 0 ? -1 : 1;
}

/* One source: a file lands at dest (or dest/name), a directory's contents under dest. */
static int put_source(struct copy_out *o, int rootfd, const char *rel, bool *is_dir,
                      struct merr *err)
{
    const struct copy_spec *s = o->spec;
    auto_close int fd = open_beneath(rootfd, rel, O_PATH);
    struct stat st;
    if (fd < 0 || ignored(s, rel) || fstat(fd, &st) < 0)
        return merr_set(err, MERR_NOT_FOUND, 0,
                        "file not found in build context or excluded by .dockerignore: "
                        "stat %s: file does not exist", rel[0] ? rel : ".");
    const char *dest = s->dest[0] == '/' ? s->dest + 1 : s->dest;
    auto_free char *trimmed = xstrdup(dest);
    size_t tl = strlen(trimmed);
    while (tl > 0 && trimmed[tl - 1] == '/')
        trimmed[--tl] = '\0';
    *is_dir = S_ISDIR(st.st_mode);
    if (S_ISDIR(st.st_mode)) {
        auto_close int dfd = open_beneath(rootfd, rel, O_RDONLY | O_DIRECTORY);
        if (dfd < 0)
            return merr_set(err, MERR_IO, errno, "cannot open '%s'", rel);
        if (trimmed[0] != '\0') {
            struct stat dst = st;
            dst.st_mode = S_IFDIR | 0755;
            if (put_entry(o, -1, NULL, trimmed, &dst, err) < 0)
                return -1;
        }
        return put_tree(o, dfd, rel, trimmed, 0, err);
    }
    const char *base = strrchr(rel, '/') != NULL ? strrchr(rel, '/') + 1 : rel;
    bool dest_dir = s->dest_is_dir || (s->dest_dir_probe != NULL && s->dest_dir_probe(s->probe_ctx));
    auto_free char *name = dest_dir ? (trimmed[0] ? xasprintf("%s/%s", trimmed, base)
                                                        : xstrdup(base))
                                          : xstrdup(trimmed);
    if (name[0] == '\0')
        return merr_set(err, MERR_INVALID, 0, "cannot copy a file onto /");
    /* read through the O_PATH fd just opened beneath the root (a symlink source was resolved
     * inside it) */
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    auto_close int rfd = open(self, O_RDONLY | O_CLOEXEC);
    if (rfd < 0)
        return merr_set(err, MERR_IO, errno, "cannot open '%s'", rel);
    struct tarw_meta m = { .name = name, .type = '0', .uid = (unsigned long)s->uid,
                           .gid = (unsigned long)s->gid, .mtime = st.st_mtim.tv_sec,
                           .mode = s->chmod >= 0 ? (unsigned)s->chmod : st.st_mode & 07777,
                           .size = (uint64_t)st.st_size };
    if (!S_ISREG(st.st_mode))
        return merr_set(err, MERR_INVALID, 0, "'%s' is not a regular file or directory", rel);
    if (s->extract_archives) {
        int r = unpack_source(o, rfd, trimmed, err);
        if (r != 0)
            return r < 0 ? -1 : 0;
    }
    if (entry(o, &m, err) < 0)
        return -1;
    return file_data(o, rfd, &st, m.size, rel, err);
}

int build_copy_tar(const struct copy_spec *spec, int fd, char **what_out, struct merr *err)
{
    auto_close int rootfd = open(spec->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return merr_set(err, MERR_IO, errno, "cannot open the build context");
    auto_strv char **srcs = NULL;
    if (expand_sources(rootfd, spec, &srcs, err) < 0)
        return -1;
    size_t n = 0;
    while (srcs[n] != NULL)
        n++;
    struct copy_out o = { .fd = fd, .spec = spec, .md = EVP_MD_CTX_new(),
                          .fmd = EVP_MD_CTX_new(), .buf = malloc(COPY_CHUNK) };
    o.tw = (struct tarw){ .write = out_write, .ctx = &o };
    int rc = o.md != NULL && o.fmd != NULL && o.buf != NULL && EVP_DigestInit_ex(o.md, EVP_sha256(), NULL) == 1
                 ? 0
                 : merr_set(err, MERR_NOMEM, 0, "cannot allocate");
    bool is_dir = false;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = put_source(&o, rootfd, srcs[i], &is_dir, err);
    if (rc == 0 && fd >= 0)
        rc = tarw_close(&o.tw, err);
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    if (rc == 0 && (EVP_DigestFinal_ex(o.md, d, &dlen) != 1 || dlen != 32))
        rc = merr_set(err, MERR_CRYPTO, 0, "cannot hash");
    if (rc == 0) {
        char hex[65];
        for (unsigned i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", d[i]);
        *what_out = xasprintf("%s:%s", n > 1 ? "multi" : is_dir ? "dir" : "file", hex);
    }
    tarw_release(&o.tw);
    EVP_MD_CTX_free(o.md);
    EVP_MD_CTX_free(o.fmd);
    free(o.buf);
    return rc;
}
