/* Opening a directory below a root fd as if the root were "/": openat2 with
 * RESOLVE_IN_ROOT where the kernel has it (Linux >= 5.6), otherwise a walk one
 * component at a time with O_NOFOLLOW that expands symlinks itself and clamps
 * "/" and ".." at the root. Either way nothing outside the root is reached. */
#include "layer-priv.h"

#include "cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

#define RESOLVE_MAX_SYMLINKS 40 /* the kernel's MAXSYMLINKS */
#define RESOLVE_OPENAT2_RETRIES 16

static int sys_openat2(int dirfd, const char *path, struct open_how *how)
{
    return (int)syscall(SYS_openat2, dirfd, path, how, sizeof *how);
}

/* Returns the fd, or -1 with errno; errno ENOSYS means "use the fallback". */
static int open_dir_openat2(int rootfd, const char *path, unsigned flags)
{
    struct open_how how = {
        .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    if (flags & LAYER_RESOLVE_NOFOLLOW)
        how.resolve |= RESOLVE_NO_SYMLINKS;
    for (int i = 0; i < RESOLVE_OPENAT2_RETRIES; i++) {
        int fd = sys_openat2(rootfd, path[0] != '\0' ? path : ".", &how);
        if (fd >= 0 || errno != EAGAIN)
            return fd;
    }
    errno = EAGAIN;
    return -1;
}

/* Opens a path of real directories (no symlinks expected) from the root. */
static int walk_real_dirs(int rootfd, const char *path)
{
    int fd = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    for (const char *p = path; fd >= 0 && *p != '\0';) {
        const char *end = strchrnul(p, '/');
        char comp[NAME_MAX + 1];
        size_t clen = (size_t)(end - p);
        if (clen > NAME_MAX) {
            close(fd);
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(comp, p, clen);
        comp[clen] = '\0';
        int next = openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int saved = errno;
        close(fd);
        errno = saved;
        fd = next;
        p = *end == '/' ? end + 1 : end;
    }
    return fd;
}

/* Drops the last component of a clean path in place. */
static void drop_last(char *resolved)
{
    char *slash = strrchr(resolved, '/');
    if (slash != NULL)
        *slash = '\0';
    else
        resolved[0] = '\0';
}

static int open_dir_fallback(int rootfd, const char *path, unsigned flags)
{
    /* rest: the components still to walk; grows when a symlink is expanded. */
    size_t cap = 2 * PATH_MAX;
    auto_free char *rest = malloc(cap);
    auto_free char *resolved = malloc(PATH_MAX);
    if (rest == NULL || resolved == NULL) {
        errno = ENOMEM;
        return -1;
    }
    if (strlen(path) >= cap) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(rest, path);
    resolved[0] = '\0';
    auto_close int cur = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (cur < 0)
        return -1;
    int links = 0;
    size_t pos = 0;
    while (rest[pos] != '\0') {
        while (rest[pos] == '/')
            pos++;
        if (rest[pos] == '\0')
            break;
        size_t end = pos;
        while (rest[end] != '\0' && rest[end] != '/')
            end++;
        size_t clen = end - pos;
        char comp[NAME_MAX + 1];
        if (clen > NAME_MAX) {
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(comp, rest + pos, clen);
        comp[clen] = '\0';
        pos = end;
        if (strcmp(comp, ".") == 0)
            continue;
        if (strcmp(comp, "..") == 0) {
            /* Re-walk the real directories instead of opening "..", so the
             * root is a hard floor. */
            drop_last(resolved);
            int up = walk_real_dirs(rootfd, resolved);
            if (up < 0)
                return -1;
            close(cur);
            cur = up;
            continue;
        }
        auto_close int fd = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return -1;
        struct stat st;
        if (fstat(fd, &st) < 0)
            return -1;
        if (S_ISDIR(st.st_mode)) {
            size_t rlen = strlen(resolved);
            if (rlen + 1 + clen + 1 > PATH_MAX) {
                errno = ENAMETOOLONG;
                return -1;
            }
            if (rlen > 0)
                resolved[rlen++] = '/';
            memcpy(resolved + rlen, comp, clen + 1);
            close(cur);
            cur = steal_fd(&fd);
            continue;
        }
        if (!S_ISLNK(st.st_mode)) {
            errno = ENOTDIR;
            return -1;
        }
        if ((flags & LAYER_RESOLVE_NOFOLLOW) || ++links > RESOLVE_MAX_SYMLINKS) {
            errno = ELOOP;
            return -1;
        }
        char target[PATH_MAX];
        ssize_t tlen = readlinkat(fd, "", target, sizeof target);
        if (tlen < 0)
            return -1;
        if ((size_t)tlen >= sizeof target) {
            errno = ENAMETOOLONG;
            return -1;
        }
        target[tlen] = '\0';
        size_t tail = strlen(rest + pos);
        if ((size_t)tlen + 1 + tail + 1 > cap) {
            errno = ENAMETOOLONG;
            return -1;
        }
        /* rest := target + "/" + what followed the symlink */
        memmove(rest + tlen + 1, rest + pos, tail + 1);
        memcpy(rest, target, (size_t)tlen);
        rest[tlen] = '/';
        pos = 0;
        if (target[0] == '/') {
            resolved[0] = '\0';
            int top = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (top < 0)
                return -1;
            close(cur);
            cur = top;
        }
    }
    return steal_fd(&cur);
}

int layer_open_dir(int rootfd, const char *path, unsigned flags)
{
    if (!(flags & LAYER_RESOLVE_FALLBACK)) {
        int fd = open_dir_openat2(rootfd, path, flags);
        if (fd >= 0 || errno != ENOSYS)
            return fd;
    }
    return open_dir_fallback(rootfd, path, flags);
}
