/* rm -rf without following symlinks and with a bounded number of open fds:
 * descend into the first non-empty subdirectory, empty it, climb back with
 * "..", repeat. Every unlink is relative to a directory fd. */
#include "layer-priv.h"

#include "cleanup.h"
#include "error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REMOVE_DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

/* Opens subdirectory name of dirfd for removal, making it searchable and
 * writable first if needed (a layer may contain 0000 directories). */
static int open_subdir(int dirfd, const char *name)
{
    int fd = openat(dirfd, name, REMOVE_DIR_FLAGS);
    if (fd < 0 && errno == EACCES) {
        struct stat st;
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode) &&
            fchmodat(dirfd, name, 0700, AT_SYMLINK_NOFOLLOW) == 0)
            fd = openat(dirfd, name, REMOVE_DIR_FLAGS);
        else
            errno = EACCES;
    }
    if (fd >= 0) {
        struct stat st;
        if (fstat(fd, &st) == 0 && (st.st_mode & 0700) != 0700)
            (void)fchmod(fd, st.st_mode | 0700);
    }
    return fd;
}

/* Removes every entry of dirfd it can; when it meets a non-empty directory it
 * stops and returns an fd for it in *child (the caller descends). */
static int empty_step(int dirfd, int *child, struct merr *err)
{
    *child = -1;
    int dupfd = openat(dirfd, ".", REMOVE_DIR_FLAGS);
    if (dupfd < 0)
        return merr_set(err, MERR_IO, errno, "cannot reopen directory for removal");
    auto_closedir DIR *d = fdopendir(dupfd);
    if (d == NULL) {
        int saved = errno;
        close(dupfd);
        return merr_set(err, MERR_IO, saved, "cannot read directory for removal");
    }
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (de == NULL) {
            if (errno != 0)
                return merr_set(err, MERR_IO, errno, "cannot read directory for removal");
            return 0;
        }
        const char *name = de->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN) {
            if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
                continue;
            if (errno != EISDIR)
                return merr_set(err, MERR_IO, errno, "cannot remove '%s'", name);
        }
        if (unlinkat(dirfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
            continue;
        if (errno == ENOTDIR) {
            if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
                continue;
            return merr_set(err, MERR_IO, errno, "cannot remove '%s'", name);
        }
        if (errno != ENOTEMPTY && errno != EEXIST)
            return merr_set(err, MERR_IO, errno, "cannot remove directory '%s'", name);
        *child = open_subdir(dirfd, name);
        if (*child < 0)
            return merr_set(err, MERR_IO, errno, "cannot open directory '%s'", name);
        return 0;
    }
}

/* Empties the directory fd top (which it takes over and closes). */
static int empty_tree(int top, struct merr *err)
{
    auto_close int cur = top;
    size_t depth = 0;
    for (;;) {
        int child;
        if (empty_step(cur, &child, err) < 0)
            return -1;
        if (child >= 0) {
            close(cur);
            cur = child;
            depth++;
            continue;
        }
        if (depth == 0)
            return 0;
        /* cur is empty now; its parent removes it on the next pass. */
        int up = openat(cur, "..", REMOVE_DIR_FLAGS);
        if (up < 0)
            return merr_set(err, MERR_IO, errno, "cannot return to the parent directory");
        close(cur);
        cur = up;
        depth--;
    }
}

int layer_remove_at(int dirfd, const char *name, struct merr *err)
{
    if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR)
        return merr_set(err, MERR_IO, errno, "cannot remove '%s'", name);
    if (unlinkat(dirfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
        return 0;
    if (errno != ENOTEMPTY && errno != EEXIST)
        return merr_set(err, MERR_IO, errno, "cannot remove directory '%s'", name);
    int fd = open_subdir(dirfd, name);
    if (fd < 0)
        return merr_set(err, MERR_IO, errno, "cannot open directory '%s'", name);
    if (empty_tree(fd, err) < 0)
        return merr_prefix(err, "cannot empty '%s'", name);
    if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        return merr_set(err, MERR_IO, errno, "cannot remove directory '%s'", name);
    return 0;
}

int layer_remove_tree(const char *path, struct merr *err)
{
    if (path == NULL || path[0] == '\0')
        return merr_set(err, MERR_INVALID, 0, "empty path to remove");
    struct stat st;
    if (lstat(path, &st) < 0) {
        if (errno == ENOENT)
            return 0;
        return merr_set(err, MERR_IO, errno, "cannot inspect '%s'", path);
    }
    if (!S_ISDIR(st.st_mode)) {
        if (unlink(path) < 0 && errno != ENOENT)
            return merr_set(err, MERR_IO, errno, "cannot remove '%s'", path);
        return 0;
    }
    int fd = open(path, REMOVE_DIR_FLAGS);
    if (fd < 0 && errno == EACCES && fchmodat(AT_FDCWD, path, 0700, AT_SYMLINK_NOFOLLOW) == 0)
        fd = open(path, REMOVE_DIR_FLAGS);
    if (fd < 0)
        return merr_set(err, MERR_IO, errno, "cannot open '%s'", path);
    if (empty_tree(fd, err) < 0)
        return merr_prefix(err, "cannot remove '%s'", path);
    if (rmdir(path) < 0 && errno != ENOENT)
        return merr_set(err, MERR_IO, errno, "cannot remove '%s'", path);
    return 0;
}
