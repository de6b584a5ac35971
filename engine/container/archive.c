/* docker cp: stat, read (tar out) and write (tar in) paths of a container's filesystem.
 *
 * Safety (security case 18, CVE-2018-15664): the container's files are reached only through a
 * directory fd of its root: /proc/PID/root of a running container (its mount namespace, so its
 * volumes and binds are seen), or, for a stopped one, its overlay (plus volumes and binds)
 * mounted in a mount namespace private to a helper thread, which dies with the thread. Paths
 * are resolved with openat2(RESOLVE_IN_ROOT): symlinks, absolute or "..", stay inside the
 * container's root. The last component is never followed (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW),
 * trees are walked one openat(O_NOFOLLOW | O_DIRECTORY) at a time and files are created with
 * O_CREAT | O_EXCL: a symlink swapped in by the container at any moment cannot redirect a read
 * or a write to the host. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "strv.h"
#include "tarw.h"
#include "manager-priv.h"
#include "volume/volume.h"

#define IO_CHUNK 65536
#define MAX_DEPTH 256
#define NAME_MAX_LEN 4096

/* ---- pure helpers ---- */

/* Go's os.FileMode bits, which the CLI decodes. */
uint32_t ctr_go_file_mode(unsigned int st_mode)
{
    uint32_t m = st_mode & 0777;
    if (st_mode & S_ISUID)
        m |= 1u << 23;
    if (st_mode & S_ISGID)
        m |= 1u << 22;
    if (st_mode & S_ISVTX)
        m |= 1u << 20;
    switch (st_mode & S_IFMT) {
    case S_IFDIR:
        m |= 1u << 31;
        break;
    case S_IFLNK:
        m |= 1u << 27;
        break;
    case S_IFIFO:
        m |= 1u << 25;
        break;
    case S_IFSOCK:
        m |= 1u << 24;
        break;
    case S_IFBLK:
        m |= 1u << 26;
        break;
    case S_IFCHR:
        m |= (1u << 26) | (1u << 21);
        break;
    default:
        break;
    }
    return m;
}

static char *base64_std(const unsigned char *in, size_t len)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = xcalloc(4 * ((len + 2) / 3) + 1, 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? tbl[v & 63] : '=';
    }
    return out;
}

char *ctr_path_stat_header(const struct ctr_path_stat *st)
{
    auto_free char *mtime = fmt_rfc3339_nano(st->mtime_ns);
    json_t *j = json_pack("{s:s,s:I,s:I,s:s,s:s}", "name", st->name, "size", (json_int_t)st->size,
                          "mode", (json_int_t)st->mode, "mtime", mtime, "linkTarget",
                          st->link_target);
    auto_free char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return text != NULL ? base64_std((const unsigned char *)text, strlen(text)) : NULL;
}

/* Splits a container path: *parent is the cleaned directory part ("/" at least), *leaf the last
 * component ("." when the path ends in "/." or is "/"). */
int ctr_archive_split(const char *path, char **parent, char **leaf, struct merr *err)
{
    if (path == NULL || path[0] == '\0')
        return merr_set(err, MERR_INVALID, 0, "path must not be empty");
    size_t len = strlen(path);
    bool dot = (len >= 2 && strcmp(path + len - 2, "/.") == 0) || strcmp(path, ".") == 0;
    auto_free char *abs = path[0] == '/' ? xstrdup(path) : xasprintf("/%s", path);
    auto_free char *clean = mnt_clean_path(abs);
    if (dot || strcmp(clean, "/") == 0) {
        *parent = steal_pointer(&clean);
        *leaf = xstrdup(".");
        return 0;
    }
    char *slash = strrchr(clean, '/');
    *leaf = xstrdup(slash + 1);
    *slash = '\0';
    *parent = xstrdup(clean[0] != '\0' ? clean : "/");
    return 0;
}

/* ---- the container's root ---- */

static int open_in_root(int rootfd, const char *path, int flags, struct merr *err)
{
    struct open_how how = { .flags = (uint64_t)flags | O_CLOEXEC,
                            .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
    while (*path == '/')
        path++;
    if (*path == '\0')
        path = ".";
    int fd;
    do
        fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how);
    while (fd < 0 && errno == EAGAIN);
    if (fd < 0)
        return merr_set(err, errno == ENOENT || errno == ENOTDIR ? MERR_NOT_FOUND : MERR_IO, errno,
                        "cannot open '%s'", path);
    return fd;
}

/* A stopped container's files: a helper thread unshares its mount namespace, mounts the
 * overlay and the container's volumes and binds there, and keeps the namespace alive until
 * told to go. */
struct view {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool ready, release;
    int rootfd;
    struct merr err;
    /* inputs */
    char **lower;
    char *upper, *work, *rootfs, *id;
    bool copies; /* vfs: upper is the whole rootfs, bound as it is */
    json_t *mounts;
};

/* As dockerd's mountVolumes: a volume's mount point missing from a container that never ran is
 * made (a directory, or an empty file for a file source), each step resolved inside the root. */
static int make_mount_point(int rootfd, const char *dst, bool dir)
{
    auto_free char *path = xstrdup(dst);
    struct merr ignored;
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        bool last = *p == '\0';
        *p = '\0';
        int fd = open_in_root(rootfd, path, O_PATH, &ignored);
        if (fd < 0 && ignored.code == MERR_NOT_FOUND) {
            char *slash = strrchr(path, '/');
            *slash = '\0';
            auto_close int up = open_in_root(rootfd, path[0] != '\0' ? path : "/",
                                             O_PATH | O_DIRECTORY, &ignored);
            *slash = '/';
            if (up < 0)
                return -1;
            if (last && !dir)
                fd = openat(up, slash + 1, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC,
                            0755);
            else if (mkdirat(up, slash + 1, 0755) == 0 || errno == EEXIST)
                fd = openat(up, slash + 1, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (fd < 0)
            return -1;
        close(fd);
        if (last)
            return 0;
        *p = '/';
    }
}

static void view_bind(struct view *v, const json_t *mnt)
{
    const char *type = json_string_value(json_object_get(mnt, "Type"));
    const char *src = json_string_value(json_object_get(mnt, "Source"));
    const char *dst = json_string_value(json_object_get(mnt, "Destination"));
    if (type == NULL || src == NULL || dst == NULL || strcmp(type, "tmpfs") == 0)
        return;
    struct merr ignored;
    int fd = open_in_root(v->rootfd, dst, O_PATH, &ignored);
    struct stat st;
    /* volumes only: a bind's mount point is still left to the start (what a container put
     * below it, e.g. a symlink copied in, is checked there) */
    if (fd < 0 && ignored.code == MERR_NOT_FOUND && strcmp(type, "volume") == 0 && dst[0] == '/' &&
        stat(src, &st) == 0 && make_mount_point(v->rootfd, dst, S_ISDIR(st.st_mode)) == 0)
        fd = open_in_root(v->rootfd, dst, O_PATH, &ignored);
    if (fd < 0)
        return;
    char target[64];
    snprintf(target, sizeof target, "/proc/self/fd/%d", fd);
    if (mount(src, target, NULL, MS_BIND | MS_REC, NULL) == 0 &&
        !json_is_true(json_object_get(mnt, "RW"))) {
        int fd2 = open_in_root(v->rootfd, dst, O_PATH, &ignored);
        if (fd2 >= 0) {
            snprintf(target, sizeof target, "/proc/self/fd/%d", fd2);
            if (mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0) {
                /* best effort: a read-only volume of a stopped container */
            }
            close(fd2);
        }
    }
    close(fd);
}

static void *view_main(void *opaque)
{
    struct view *v = opaque;
    int rc = 0;
    if (unshare(CLONE_NEWNS) < 0)
        rc = merr_set(&v->err, MERR_IO, errno, "cannot create a mount namespace");
    else if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) < 0)
        rc = merr_set(&v->err, MERR_IO, errno, "cannot make / a slave mount");
    if (rc == 0) {
        struct rt_spec spec = { .id = v->id,
                                .lowerdirs = v->copies ? NULL : (const char *const *)v->lower,
                                .upperdir = v->upper,
                                .workdir = v->copies ? NULL : v->work,
                                .rootfs = v->rootfs };
        rc = rt_mount_rootfs(&spec, &v->err);
    }
    if (rc == 0) {
        v->rootfd = open(v->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (v->rootfd < 0)
            rc = merr_set(&v->err, MERR_IO, errno, "cannot open '%s'", v->rootfs);
    }
    size_t i;
    const json_t *mnt;
    json_array_foreach(rc == 0 ? v->mounts : NULL, i, mnt)
        view_bind(v, mnt);
    pthread_mutex_lock(&v->lock);
    v->ready = true;
    pthread_cond_broadcast(&v->cond);
    while (rc == 0 && !v->release)
        pthread_cond_wait(&v->cond, &v->lock);
    pthread_mutex_unlock(&v->lock);
    return NULL; /* the namespace, and every mount in it, goes with this thread */
}

static void view_free(struct view *v)
{
    if (v == NULL)
        return;
    strv_free(v->lower);
    free(v->upper);
    free(v->work);
    free(v->rootfs);
    free(v->id);
    json_decref(v->mounts);
    pthread_mutex_destroy(&v->lock);
    pthread_cond_destroy(&v->cond);
    free(v);
}

static void view_close(struct view *v)
{
    if (v == NULL)
        return;
    if (v->rootfd >= 0)
        close(v->rootfd);
    v->rootfd = -1;
    pthread_mutex_lock(&v->lock);
    v->release = true;
    pthread_cond_broadcast(&v->cond);
    pthread_mutex_unlock(&v->lock);
    pthread_join(v->thread, NULL);
    view_free(v);
}

static int view_open(struct view *v, struct merr *err)
{
    pthread_mutex_init(&v->lock, NULL);
    pthread_cond_init(&v->cond, NULL);
    v->rootfd = -1;
    if (pthread_create(&v->thread, NULL, view_main, v) != 0) {
        view_free(v);
        return merr_set(err, MERR_IO, errno, "cannot start the file access thread");
    }
    pthread_mutex_lock(&v->lock);
    while (!v->ready)
        pthread_cond_wait(&v->cond, &v->lock);
    pthread_mutex_unlock(&v->lock);
    if (v->rootfd < 0) {
        *err = v->err;
        view_close(v);
        return -1;
    }
    return 0;
}

/* The root of ref's filesystem: fd to use, and a view to close when it is a stopped one. */
struct root {
    int fd;
    struct view *view;
    char id[CTR_ID_LEN + 1];
};

static void root_close(struct root *r)
{
    if (r->view != NULL) {
        view_close(r->view); /* closes r->fd */
    } else if (r->fd >= 0) {
        close(r->fd);
    }
    r->fd = -1;
    r->view = NULL;
}

static int root_open(struct ctr_manager *m, const char *ref, struct root *r, struct merr *err)
{
    r->fd = -1;
    r->view = NULL;
    pthread_mutex_lock(&m->lock);
    struct ctr_entry *e = mgr_find_locked(m, ref, err);
    if (e == NULL) {
        pthread_mutex_unlock(&m->lock);
        return -1;
    }
    memcpy(r->id, e->c->id, sizeof r->id);
    if (e->rt != NULL) {
        pid_t pid = rt_container_pid(e->rt);
        int pidfd = rt_container_pidfd(e->rt);
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/root", (int)pid);
        r->fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        /* the pid is still the container's first process only while its pidfd is quiet */
        struct pollfd p = { .fd = pidfd, .events = POLLIN };
        if (r->fd >= 0 && pidfd >= 0 && poll(&p, 1, 0) != 0) {
            close(r->fd);
            r->fd = -1;
        }
        if (r->fd >= 0) {
            pthread_mutex_unlock(&m->lock);
            return 0;
        }
    }
    struct view *v = xcalloc(1, sizeof *v);
    v->upper = xstrdup(e->upper);
    v->work = xstrdup(e->work);
    v->rootfs = xstrdup(e->rootfs);
    v->id = xstrdup(e->c->id);
    v->mounts = json_incref(e->c->mounts);
    v->copies = m->layers->copies;
    auto_free char *image = xstrdup(e->c->image_id);
    pthread_mutex_unlock(&m->lock);
    char *image_id = NULL;
    json_t *config = NULL;
    if (m->images.resolve(m->images.data, image, &image_id, &config, &v->lower, err) < 0) {
        view_free(v);
        return -1;
    }
    free(image_id);
    json_decref(config);
    if (fs_mkdir_p(v->rootfs, 0755, err) < 0 ||
        m->layers->prepare_container(v->upper, v->work, (const char *const *)v->lower, err) < 0 ||
        view_open(v, err) < 0) {
        return -1; /* view_open frees v on failure */
    }
    r->view = v;
    r->fd = v->rootfd;
    return 0;
}

/* ---- stat ---- */

static int stat_at(int rootfd, const char *path, const char *cid, struct ctr_path_stat *out,
                   int *parent_fd, char **leaf_out, struct merr *err)
{
    auto_free char *parent = NULL, *leaf = NULL;
    if (ctr_archive_split(path, &parent, &leaf, err) < 0)
        return -1;
    auto_close int pfd = open_in_root(rootfd, parent, O_PATH | O_DIRECTORY, err);
    if (pfd < 0) {
        if (err->code == MERR_NOT_FOUND)
            merr_set(err, MERR_NOT_FOUND, 0, "Could not find the file %s in container %s", path,
                     cid);
        return -1;
    }
    struct stat st;
    if (fstatat(pfd, strcmp(leaf, ".") == 0 ? "" : leaf, &st,
                AT_SYMLINK_NOFOLLOW | (strcmp(leaf, ".") == 0 ? AT_EMPTY_PATH : 0)) < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return merr_set(err, MERR_NOT_FOUND, 0, "Could not find the file %s in container %s",
                            path, cid);
        return merr_set(err, MERR_IO, errno, "cannot stat '%s'", path);
    }
    memset(out, 0, sizeof *out);
    const char *base = strrchr(parent, '/');
    snprintf(out->name, sizeof out->name, "%s",
             strcmp(leaf, ".") != 0 ? leaf : (base != NULL && base[1] != '\0' ? base + 1 : "/"));
    out->size = st.st_size;
    out->mode = ctr_go_file_mode(st.st_mode);
    out->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    if (S_ISLNK(st.st_mode)) {
        char target[NAME_MAX_LEN];
        ssize_t n = readlinkat(pfd, leaf, target, sizeof target - 1);
        if (n > 0) {
            target[n] = '\0';
            auto_free char *joined = target[0] == '/' ? xstrdup(target)
                                                      : xasprintf("%s/%s", parent, target);
            auto_free char *clean = mnt_clean_path(joined);
            snprintf(out->link_target, sizeof out->link_target, "%s", clean);
        }
    }
    if (parent_fd != NULL) {
        *parent_fd = steal_fd(&pfd);
        *leaf_out = steal_pointer(&leaf);
    }
    return 0;
}

int ctr_archive_stat(struct ctr_manager *m, const char *ref, const char *path,
                     struct ctr_path_stat *out, struct merr *err)
{
    struct root r;
    if (root_open(m, ref, &r, err) < 0)
        return -1;
    int rc = stat_at(r.fd, path, ref, out, NULL, NULL, err);
    root_close(&r);
    return rc;
}

/* ---- tar out (core/tarw: libarchive's writer would pull every format into the bundle) ---- */

static int add_tree(struct tarw *w, int parent, const char *leaf, const char *name, int depth,
                    struct merr *err);

static int add_entry(struct tarw *w, int dirfd, const char *leaf, const char *name,
                     const struct stat *st, int depth, struct merr *err)
{
    struct tarw_meta meta = {
        .name = name,
        .mode = st->st_mode & 07777,
        .uid = st->st_uid,
        .gid = st->st_gid,
        .mtime = st->st_mtim.tv_sec,
    };
    char target[NAME_MAX_LEN];
    auto_close int fd = -1;
    switch (st->st_mode & S_IFMT) {
    case S_IFDIR: {
        auto_free char *dname = xasprintf("%s/", name);
        meta.name = dname;
        meta.type = '5';
        if (tarw_entry(w, &meta, err) < 0)
            return -1;
        return add_tree(w, dirfd, leaf, name, depth + 1, err);
    }
    case S_IFLNK: {
        ssize_t n = readlinkat(dirfd, leaf, target, sizeof target - 1);
        if (n < 0)
            return 0; /* gone meanwhile */
        target[n] = '\0';
        meta.type = '2';
        meta.linkname = target;
        return tarw_entry(w, &meta, err);
    }
    case S_IFREG: {
        fd = openat(dirfd, leaf, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        struct stat now;
        if (fd < 0 || fstat(fd, &now) < 0 || !S_ISREG(now.st_mode))
            return 0; /* replaced under us: skipped */
        meta.type = '0';
        meta.size = (uint64_t)now.st_size;
        if (tarw_entry(w, &meta, err) < 0)
            return -1;
        char *buf = xcalloc(1, IO_CHUNK);
        uint64_t left = meta.size;
        int rc = 0;
        while (rc == 0 && left > 0) {
            ssize_t n = read(fd, buf, left < IO_CHUNK ? (size_t)left : IO_CHUNK);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) { /* shrank while read: pad with zeros to the size announced */
                memset(buf, 0, IO_CHUNK);
                n = (ssize_t)(left < IO_CHUNK ? left : IO_CHUNK);
            }
            rc = tarw_data(w, buf, (size_t)n, err);
            left -= (uint64_t)n;
        }
        free(buf);
        return rc;
    }
    case S_IFIFO:
        meta.type = '6';
        return tarw_entry(w, &meta, err);
    case S_IFCHR:
    case S_IFBLK:
        meta.type = S_ISCHR(st->st_mode) ? '3' : '4';
        meta.devmajor = major(st->st_rdev);
        meta.devminor = minor(st->st_rdev);
        return tarw_entry(w, &meta, err);
    default:
        return 0; /* sockets */
    }
}

static int cmp_names(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static int add_tree(struct tarw *w, int parent, const char *leaf, const char *name, int depth,
                    struct merr *err)
{
    if (depth > MAX_DEPTH)
        return merr_set(err, MERR_INVALID, 0, "directory tree too deep at '%s'", name);
    int fd = strcmp(leaf, ".") == 0
                 ? openat(parent, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                 : openat(parent, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return 0; /* replaced by something else meanwhile */
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return merr_set(err, MERR_IO, errno, "cannot read '%s'", name);
    }
    char **names = NULL;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            names = strv_push(names, de->d_name);
    size_t n = 0;
    while (names != NULL && names[n] != NULL)
        n++;
    if (n > 0)
        qsort(names, n, sizeof *names, cmp_names);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct stat st;
        if (fstatat(dirfd(d), names[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        auto_free char *child = name[0] != '\0' ? xasprintf("%s/%s", name, names[i])
                                                : xstrdup(names[i]);
        rc = add_entry(w, dirfd(d), names[i], child, &st, depth, err);
    }
    strv_free(names);
    closedir(d);
    return rc;
}

int ctr_archive_get(struct ctr_manager *m, const char *ref, const char *path,
                    struct ctr_path_stat *st_out, ctr_archive_begin_fn begin,
                    ctr_archive_write_fn write, void *data, struct merr *err)
{
    struct root r;
    if (root_open(m, ref, &r, err) < 0)
        return -1;
    int pfd = -1;
    auto_free char *leaf = NULL;
    int rc = stat_at(r.fd, path, ref, st_out, &pfd, &leaf, err);
    if (rc == 0)
        rc = begin(data, st_out, err);
    struct tarw w = { .write = write, .ctx = data };
    if (rc == 0) {
        struct stat st;
        bool dot = strcmp(leaf, ".") == 0;
        if (fstatat(pfd, dot ? "" : leaf, &st, AT_SYMLINK_NOFOLLOW | (dot ? AT_EMPTY_PATH : 0)) < 0)
            rc = merr_set(err, MERR_NOT_FOUND, errno, "Could not find the file %s in container %s",
                          path, ref);
        else
            rc = add_entry(&w, pfd, leaf, dot ? "." : leaf, &st, 0, err);
    }
    if (rc == 0)
        rc = tarw_close(&w, err);
    tarw_release(&w);
    if (pfd >= 0)
        close(pfd);
    root_close(&r);
    return rc;
}

/* docker export: a read-only overlay of the container's upper dir over its image's layers in
 * a private mount namespace (the running container's own mounts are not in it). */
int ctr_archive_export(struct ctr_manager *m, const char *ref, ctr_archive_write_fn write,
                       void *data, struct merr *err)
{
    pthread_mutex_lock(&m->lock);
    struct ctr_entry *e = mgr_find_locked(m, ref, err);
    if (e == NULL) {
        pthread_mutex_unlock(&m->lock);
        return -1;
    }
    struct view *v = xcalloc(1, sizeof *v);
    auto_free char *upper = xstrdup(e->upper);
    auto_free char *work = xstrdup(e->work);
    v->rootfs = xstrdup(e->rootfs);
    v->id = xstrdup(e->c->id);
    auto_free char *image = xstrdup(e->c->image_id);
    pthread_mutex_unlock(&m->lock);
    char *image_id = NULL;
    json_t *config = NULL;
    auto_strv char **lower = NULL;
    if (m->images.resolve(m->images.data, image, &image_id, &config, &lower, err) < 0) {
        view_free(v);
        return -1;
    }
    free(image_id);
    json_decref(config);
    if (fs_mkdir_p(v->rootfs, 0755, err) < 0 ||
        m->layers->prepare_container(upper, work, (const char *const *)lower, err) < 0) {
        view_free(v);
        return -1;
    }
    /* read-only: the upper dir over the image's layers (vfs: the container's own copy) */
    v->lower = strv_push(NULL, upper);
    for (size_t i = 0; lower != NULL && lower[i] != NULL && !m->layers->copies; i++)
        v->lower = strv_push(v->lower, lower[i]);
    if (view_open(v, err) < 0)
        return -1; /* view_open frees v on failure */
    struct tarw w = { .write = write, .ctx = data };
    int rc = add_tree(&w, v->rootfd, ".", "", 0, err);
    if (rc == 0)
        rc = tarw_close(&w, err);
    tarw_release(&w);
    view_close(v);
    return rc;
}

/* ---- tar in ---- */

struct tar_in {
    ctr_archive_read_fn read;
    void *data;
    struct merr *err;
    bool failed;
    char buf[IO_CHUNK];  /* raw archive bytes handed to libarchive */
    char body[IO_CHUNK]; /* entry contents: never the buffer libarchive is reading from */
};

static la_ssize_t tar_read_cb(struct archive *a, void *opaque, const void **buf)
{
    struct tar_in *t = opaque;
    ssize_t n = t->read(t->data, t->buf, sizeof t->buf, t->err);
    if (n < 0) {
        t->failed = true;
        archive_set_error(a, EIO, "the request body ended early");
        return -1;
    }
    *buf = t->buf;
    return n;
}

/* Entry names are relative to the extraction directory: "./a/b", "a/../b" and "/a" are cleaned
 * beneath it; a name that climbs above it is refused. */
int ctr_archive_entry_path(const char *name, char **out, struct merr *err)
{
    if (name == NULL || name[0] == '\0')
        return merr_set(err, MERR_INVALID, 0, "empty name in the archive");
    int depth = 0;
    auto_free char *copy = xstrdup(name);
    char *save = NULL;
    for (char *w = strtok_r(copy, "/", &save); w != NULL; w = strtok_r(NULL, "/", &save)) {
        if (strcmp(w, "..") == 0 && --depth < 0)
            return merr_set(err, MERR_INVALID, 0, "archive entry '%s' points outside the "
                            "extraction directory", name);
        if (strcmp(w, "..") != 0 && strcmp(w, ".") != 0)
            depth++;
    }
    auto_free char *abs = xasprintf("/%s", name);
    auto_free char *clean = mnt_clean_path(abs);
    *out = xstrdup(clean + 1); /* "" for the directory itself */
    return 0;
}

/* Opens (creating missing directories, each resolved inside the root) the directory rel of
 * the extraction directory dst_path. */
static int open_parent(int rootfd, const char *dst_path, const char *rel, struct merr *err)
{
    auto_free char *full = xasprintf("%s/%s", dst_path, rel);
    int fd = open_in_root(rootfd, full, O_PATH | O_DIRECTORY, err);
    if (fd >= 0 || err->code != MERR_NOT_FOUND)
        return fd;
    char *slash = strrchr(full, '/');
    if (slash == NULL || slash == full)
        return -1;
    *slash = '\0';
    const char *leaf = slash + 1;
    auto_free char *up_rel = xstrdup(rel);
    char *s2 = strrchr(up_rel, '/');
    if (s2 != NULL)
        *s2 = '\0';
    else
        up_rel[0] = '\0';
    auto_close int up = up_rel[0] != '\0' ? open_parent(rootfd, dst_path, up_rel, err)
                                          : open_in_root(rootfd, dst_path, O_PATH | O_DIRECTORY, err);
    if (up < 0)
        return -1;
    if (mkdirat(up, leaf, 0755) < 0 && errno != EEXIST)
        return merr_set(err, MERR_IO, errno, "cannot create '%s'", rel);
    fd = openat(up, leaf, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return merr_set(err, MERR_IO, errno, "cannot open '%s'", rel);
    return fd;
}

static int set_attrs(int pfd, const char *leaf, struct archive_entry *ent, bool copy_ids, int fd)
{
    uid_t uid = copy_ids ? (uid_t)archive_entry_uid(ent) : 0;
    gid_t gid = copy_ids ? (gid_t)archive_entry_gid(ent) : 0;
    mode_t mode = archive_entry_perm(ent) & 07777;
    int r = 0;
    if (fd >= 0) {
        r |= fchown(fd, uid, gid);
        r |= fchmod(fd, mode);
    } else {
        r |= fchownat(pfd, leaf, uid, gid, AT_SYMLINK_NOFOLLOW);
    }
    struct timespec ts[2] = {
        { .tv_sec = archive_entry_atime(ent), .tv_nsec = archive_entry_atime_nsec(ent) },
        { .tv_sec = archive_entry_mtime(ent), .tv_nsec = archive_entry_mtime_nsec(ent) },
    };
    if (!archive_entry_atime_is_set(ent))
        ts[0] = ts[1];
    r |= utimensat(pfd, leaf, ts, AT_SYMLINK_NOFOLLOW);
    return r;
}

static int copy_body(struct archive *a, int fd, const char *name, struct tar_in *t,
                     struct merr *err)
{
    for (;;) {
        la_ssize_t n = archive_read_data(a, t->body, sizeof t->body);
        if (n == 0)
            return 0;
        if (n < 0)
            return t->failed ? -1
                             : merr_set(err, MERR_INVALID, 0, "cannot read '%s' from the archive: %s",
                                        name, archive_error_string(a));
        if (fs_write_all(fd, t->body, (size_t)n) < 0)
            return merr_set(err, MERR_IO, errno, "cannot write '%s'", name);
    }
}

static int extract_entry(struct archive *a, struct archive_entry *ent, int rootfd,
                         const char *dst_path, const struct ctr_archive_put_opts *o,
                         struct tar_in *t, struct merr *err)
{
    auto_free char *rel = NULL;
    if (ctr_archive_entry_path(archive_entry_pathname(ent), &rel, err) < 0)
        return -1;
    if (rel[0] == '\0')
        return 0; /* "./": the extraction directory itself is left as it is */
    char *slash = strrchr(rel, '/');
    const char *leaf = slash != NULL ? slash + 1 : rel;
    auto_free char *parent = slash != NULL ? strndup(rel, (size_t)(slash - rel)) : xstrdup("");
    auto_close int pfd = parent[0] != '\0' ? open_parent(rootfd, dst_path, parent, err)
                                           : open_in_root(rootfd, dst_path, O_PATH | O_DIRECTORY, err);
    if (pfd < 0)
        return -1;
    mode_t type = archive_entry_filetype(ent);
    const char *hardlink = archive_entry_hardlink(ent);
    struct stat have;
    bool exists = fstatat(pfd, leaf, &have, AT_SYMLINK_NOFOLLOW) == 0;
    if (exists && S_ISDIR(have.st_mode) && type != AE_IFDIR && hardlink == NULL &&
        o->no_overwrite_dir_non_dir)
        return merr_set(err, MERR_INVALID, 0, "cannot overwrite directory \"%s\" with non-directory",
                        rel);
    if (exists && !S_ISDIR(have.st_mode) && type == AE_IFDIR && o->no_overwrite_dir_non_dir)
        return merr_set(err, MERR_INVALID, 0, "cannot overwrite non-directory \"%s\" with directory",
                        rel);
    if (exists && !(S_ISDIR(have.st_mode) && type == AE_IFDIR)) {
        if (unlinkat(pfd, leaf, S_ISDIR(have.st_mode) ? AT_REMOVEDIR : 0) < 0)
            return merr_set(err, MERR_IO, errno, "cannot replace '%s'", rel);
    }
    if (hardlink != NULL) {
        auto_free char *trel = NULL;
        if (ctr_archive_entry_path(hardlink, &trel, err) < 0)
            return -1;
        char *ts = strrchr(trel, '/');
        auto_free char *tparent = ts != NULL ? strndup(trel, (size_t)(ts - trel)) : xstrdup("");
        auto_free char *tfull = xasprintf("%s/%s", dst_path, tparent);
        auto_close int tfd = open_in_root(rootfd, tfull, O_PATH | O_DIRECTORY, err);
        if (tfd < 0 && err->code != MERR_NOT_FOUND && err->code != MERR_INVALID)
            return -1;
        if (tfd >= 0 && linkat(tfd, ts != NULL ? ts + 1 : trel, pfd, leaf, 0) == 0)
            return 0;
        /* The target must be a file of the container's filesystem under the destination (an
         * earlier entry, or one already there): not a host path, not a mount of another
         * filesystem. */
        if (tfd < 0 || errno == ENOENT || errno == ENOTDIR || errno == EXDEV || errno == EPERM ||
            errno == ELOOP)
            return merr_set(err, MERR_INVALID, tfd < 0 ? 0 : errno,
                            "cannot create hardlink '%s' to '%s': the target is not a file in the "
                            "container's filesystem under the destination",
                            rel, hardlink);
        return merr_set(err, MERR_IO, errno, "cannot link '%s'", rel);
    }
    switch (type) {
    case AE_IFREG: {
        auto_close int fd = openat(pfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                                   0600);
        if (fd < 0)
            return merr_set(err, MERR_IO, errno, "cannot create '%s'", rel);
        if (copy_body(a, fd, rel, t, err) < 0)
            return -1;
        set_attrs(pfd, leaf, ent, o->copy_uid_gid, fd);
        return 0;
    }
    case AE_IFDIR: {
        if (!exists && mkdirat(pfd, leaf, 0700) < 0)
            return merr_set(err, MERR_IO, errno, "cannot create '%s'", rel);
        auto_close int fd = openat(pfd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return merr_set(err, MERR_IO, errno, "cannot open '%s'", rel);
        set_attrs(pfd, leaf, ent, o->copy_uid_gid, fd);
        return 0;
    }
    case AE_IFLNK:
        if (symlinkat(archive_entry_symlink(ent), pfd, leaf) < 0)
            return merr_set(err, MERR_IO, errno, "cannot create link '%s'", rel);
        set_attrs(pfd, leaf, ent, o->copy_uid_gid, -1);
        return 0;
    case AE_IFIFO:
        if (mknodat(pfd, leaf, S_IFIFO | 0600, 0) < 0)
            return merr_set(err, MERR_IO, errno, "cannot create '%s'", rel);
        set_attrs(pfd, leaf, ent, o->copy_uid_gid, -1);
        if (fchmodat(pfd, leaf, archive_entry_perm(ent) & 0777, 0) < 0) {
            /* the fifo keeps 0600 */
        }
        return 0;
    default:
        return 0; /* devices and sockets are not created by docker cp */
    }
}

int ctr_archive_put(struct ctr_manager *m, const char *ref, const char *path,
                    const struct ctr_archive_put_opts *o, ctr_archive_read_fn read, void *data,
                    struct merr *err)
{
    struct root r;
    if (root_open(m, ref, &r, err) < 0)
        return -1;
    struct ctr_path_stat st;
    int rc = stat_at(r.fd, path, ref, &st, NULL, NULL, err);
    if (rc == 0 && !(st.mode & (1u << 31)))
        rc = merr_set(err, MERR_INVALID, 0, "extraction point is not a directory");
    auto_free char *dst = NULL;
    if (rc == 0) {
        auto_free char *parent = NULL, *leaf = NULL;
        rc = ctr_archive_split(path, &parent, &leaf, err);
        if (rc == 0)
            dst = strcmp(leaf, ".") == 0 ? xstrdup(parent) : xasprintf("%s/%s", parent, leaf);
    }
    struct archive *a = NULL;
    struct tar_in *t = xcalloc(1, sizeof *t);
    t->read = read;
    t->data = data;
    t->err = err;
    if (rc == 0) {
        a = archive_read_new();
        archive_read_support_format_tar(a);
        archive_read_support_format_gnutar(a);
        archive_read_support_filter_none(a);
        archive_read_support_filter_gzip(a);
        if (archive_read_open(a, t, NULL, tar_read_cb, NULL) != ARCHIVE_OK)
            rc = t->failed ? -1
                           : merr_set(err, MERR_INVALID, 0, "cannot read the archive: %s",
                                      archive_error_string(a));
    }
    struct archive_entry *ent;
    while (rc == 0) {
        int r2 = archive_read_next_header(a, &ent);
        if (r2 == ARCHIVE_EOF)
            break;
        if (r2 < ARCHIVE_WARN) {
            rc = t->failed ? -1
                           : merr_set(err, MERR_INVALID, 0, "cannot read the archive: %s",
                                      archive_error_string(a));
            break;
        }
        rc = extract_entry(a, ent, r.fd, dst, o, t, err);
    }
    if (a != NULL)
        archive_read_free(a);
    free(t);
    root_close(&r);
    return rc;
}
