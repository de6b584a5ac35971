/* Copy-up: a fresh volume mounted over a directory of the image starts with that directory's
 * content (docker's behaviour). The image is a stack of overlay layer directories; applying
 * them bottom-up into the volume gives the merged view: a whiteout (char device 0:0) deletes,
 * an opaque directory (trusted.overlay.opaque=y) hides what lower layers put there. Everything
 * is done relative to directory fds, never following a symlink. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "volume.h"

#define MAX_DEPTH 128
#define COPY_CHUNK 65536

static bool is_whiteout(const struct stat *st)
{
    return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

static bool is_opaque(int dirfd)
{
    char v[4];
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", dirfd);
    ssize_t n = getxattr(path, "trusted.overlay.opaque", v, sizeof v);
    return n == 1 && v[0] == 'y';
}

static int remove_entry(int dirfd, const char *name, int depth, struct merr *err);

static int clear_dir(int dirfd, int depth, struct merr *err)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return merr_set(err, MERR_IO, errno, "cannot open a volume directory");
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return merr_set(err, MERR_IO, errno, "cannot read a volume directory");
    }
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        rc = remove_entry(dirfd, de->d_name, depth + 1, err);
    }
    closedir(d);
    return rc;
}

static int remove_entry(int dirfd, const char *name, int depth, struct merr *err)
{
    if (depth > MAX_DEPTH)
        return merr_set(err, MERR_INVALID, 0, "directory tree too deep");
    if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return merr_set(err, MERR_IO, errno, "cannot remove '%s'", name);
    int sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0)
        return merr_set(err, MERR_IO, errno, "cannot open '%s'", name);
    int rc = clear_dir(sub, depth, err);
    close(sub);
    if (rc == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        rc = merr_set(err, MERR_IO, errno, "cannot remove '%s'", name);
    return rc;
}

static void copy_owner_times(int fd, const struct stat *st)
{
    if (fchown(fd, st->st_uid, st->st_gid) < 0) {
        /* best effort: a volume on a filesystem without chown keeps the engine's owner */
    }
    struct timespec ts[2] = { st->st_atim, st->st_mtim };
    futimens(fd, ts);
}

static int copy_file(int src_dir, int dst_dir, const char *name, const struct stat *st,
                     struct merr *err)
{
    int in = openat(src_dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (in < 0)
        return merr_set(err, MERR_IO, errno, "cannot open '%s'", name);
    int out = openat(dst_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) {
        int e = errno;
        close(in);
        return merr_set(err, MERR_IO, e, "cannot create '%s'", name);
    }
    char *buf = xcalloc(1, COPY_CHUNK);
    int rc = 0;
    for (;;) {
        ssize_t n = read(in, buf, COPY_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = merr_set(err, MERR_IO, errno, "cannot read '%s'", name);
            break;
        }
        if (n == 0)
            break;
        if (fs_write_all(out, buf, (size_t)n) < 0) {
            rc = merr_set(err, MERR_IO, errno, "cannot write '%s'", name);
            break;
        }
    }
    free(buf);
    if (rc == 0) {
        copy_owner_times(out, st);
        if (fchmod(out, st->st_mode & 07777) < 0)
            rc = merr_set(err, MERR_IO, errno, "cannot chmod '%s'", name);
    }
    close(in);
    close(out);
    return rc;
}

static int copy_tree(int src, int dst, int depth, struct merr *err);

static int copy_entry(int src, int dst, const char *name, int depth, struct merr *err)
{
    struct stat st, have;
    if (fstatat(src, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return merr_set(err, MERR_IO, errno, "cannot stat '%s'", name);
    bool exists = fstatat(dst, name, &have, AT_SYMLINK_NOFOLLOW) == 0;
    if (is_whiteout(&st))
        return exists ? remove_entry(dst, name, depth, err) : 0;
    if (exists && !(S_ISDIR(st.st_mode) && S_ISDIR(have.st_mode)) &&
        remove_entry(dst, name, depth, err) < 0)
        return -1;
    if (S_ISDIR(st.st_mode)) {
        if (mkdirat(dst, name, 0700) < 0 && errno != EEXIST)
            return merr_set(err, MERR_IO, errno, "cannot create '%s'", name);
        int s = openat(src, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int d = openat(dst, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int rc = 0;
        if (s < 0 || d < 0)
            rc = merr_set(err, MERR_IO, errno, "cannot open '%s'", name);
        if (rc == 0 && is_opaque(s))
            rc = clear_dir(d, depth, err);
        if (rc == 0)
            rc = copy_tree(s, d, depth + 1, err);
        if (rc == 0) {
            copy_owner_times(d, &st);
            if (fchmod(d, st.st_mode & 07777) < 0)
                rc = merr_set(err, MERR_IO, errno, "cannot chmod '%s'", name);
        }
        if (s >= 0)
            close(s);
        if (d >= 0)
            close(d);
        return rc;
    }
    if (S_ISREG(st.st_mode))
        return copy_file(src, dst, name, &st, err);
    if (S_ISLNK(st.st_mode)) {
        char target[4096];
        ssize_t n = readlinkat(src, name, target, sizeof target - 1);
        if (n < 0)
            return merr_set(err, MERR_IO, errno, "cannot read link '%s'", name);
        target[n] = '\0';
        if (symlinkat(target, dst, name) < 0)
            return merr_set(err, MERR_IO, errno, "cannot create link '%s'", name);
        if (fchownat(dst, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0) {
            /* best effort, as for files */
        }
        return 0;
    }
    if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
        if (mknodat(dst, name, st.st_mode, st.st_rdev) < 0)
            return merr_set(err, MERR_IO, errno, "cannot create '%s'", name);
        return 0;
    }
    return 0; /* sockets are not copied */
}

static int copy_tree(int src, int dst, int depth, struct merr *err)
{
    if (depth > MAX_DEPTH)
        return merr_set(err, MERR_INVALID, 0, "directory tree too deep");
    int fd = openat(src, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return merr_set(err, MERR_IO, errno, "cannot open a layer directory");
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return merr_set(err, MERR_IO, errno, "cannot read a layer directory");
    }
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        rc = copy_entry(src, dst, de->d_name, depth, err);
    }
    closedir(d);
    return rc;
}

static int open_beneath(int dirfd, const char *path, int flags)
{
    struct open_how how = { .flags = (uint64_t)flags | O_CLOEXEC,
                            .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
                                       RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV };
    while (*path == '/')
        path++;
    if (*path == '\0')
        path = ".";
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

int vol_copy_up(char *const *layers, const char *target, const char *dst_dir, struct merr *err)
{
    auto_close int dst = open(dst_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dst < 0)
        return merr_set(err, MERR_IO, errno, "cannot open '%s'", dst_dir);
    size_t n = 0;
    while (layers != NULL && layers[n] != NULL)
        n++;
    bool seen = false;
    struct stat root_st = { 0 };
    for (size_t i = n; i-- > 0;) {
        auto_close int layer = open(layers[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (layer < 0)
            return merr_set(err, MERR_IO, errno, "cannot open layer '%s'", layers[i]);
        auto_close int src = open_beneath(layer, target, O_RDONLY | O_NOFOLLOW);
        if (src < 0) {
            /* the target itself whited out (or replaced by a file) in this layer */
            auto_free char *rel = xstrdup(target[0] == '/' ? target + 1 : target);
            struct stat st;
            if (fstatat(layer, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode) &&
                clear_dir(dst, 0, err) < 0)
                return -1;
            continue;
        }
        struct stat st;
        if (fstat(src, &st) < 0 || !S_ISDIR(st.st_mode)) {
            if (clear_dir(dst, 0, err) < 0)
                return -1;
            continue;
        }
        if (is_opaque(src) && clear_dir(dst, 0, err) < 0)
            return -1;
        if (copy_tree(src, dst, 0, err) < 0)
            return merr_prefix(err, "cannot copy '%s' of the image into the volume", target);
        seen = true;
        root_st = st;
    }
    if (seen) { /* the volume's root takes the directory's owner and mode */
        copy_owner_times(dst, &root_st);
        if (fchmod(dst, root_st.st_mode & 07777) < 0)
            return merr_set(err, MERR_IO, errno, "cannot chmod '%s'", dst_dir);
    }
    return 0;
}
