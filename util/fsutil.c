#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "error.h"

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    return s;
}

char *xstrdup(const char *s)
{
    char *d = strdup(s != NULL ? s : "");
    if (d == NULL)
        abort();
    return d;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n != 0 ? n : 1, size != 0 ? size : 1);
    if (p == NULL)
        abort();
    return p;
}

char *path_join(const char *a, const char *b)
{
    size_t la = strlen(a);
    if (la > 0 && a[la - 1] == '/')
        return xasprintf("%s%s", a, b[0] == '/' ? b + 1 : b);
    return xasprintf("%s/%s", a, b[0] == '/' ? b + 1 : b);
}

bool fs_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

int fs_sync_dir_of(const char *path, struct merr *err)
{
    auto_free char *copy = xstrdup(path);
    const char *dir = dirname(copy);
    auto_close int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return merr_set(err, MERR_IO, errno, "cannot open directory '%s'", dir);
    if (fsync(dfd) < 0 && errno != EINVAL)
        return merr_set(err, MERR_IO, errno, "cannot sync directory '%s'", dir);
    return 0;
}

int fs_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode, struct merr *err)
{
    auto_free char *tmp = xasprintf("%s.tmp-%d-%lx", path, (int)getpid(), (unsigned long)random());
    auto_close int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return merr_set(err, MERR_IO, errno, "cannot create '%s'", tmp);
    if (fchmod(fd, mode) < 0 || fs_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
        int e = errno;
        unlink(tmp);
        return merr_set(err, MERR_IO, e, "cannot write '%s'", path);
    }
    if (close(steal_fd(&fd)) < 0) {
        int e = errno;
        unlink(tmp);
        return merr_set(err, MERR_IO, e, "cannot write '%s'", path);
    }
    if (rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        return merr_set(err, MERR_IO, e, "cannot replace '%s'", path);
    }
    return fs_sync_dir_of(path, err);
}

static int read_fd(int fd, const char *path, size_t max, char **out, size_t *len, struct merr *err)
{
    size_t cap = 4096, n = 0;
    auto_free char *buf = malloc(cap);
    if (buf == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot read '%s'", path);
    for (;;) {
        if (n + 1 >= cap) {
            if (cap > max + 1)
                return merr_set(err, MERR_INVALID, 0, "'%s' is larger than %zu bytes", path, max);
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL)
                return merr_set(err, MERR_NOMEM, ENOMEM, "cannot read '%s'", path);
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return merr_set(err, MERR_IO, errno, "cannot read '%s'", path);
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > max)
            return merr_set(err, MERR_INVALID, 0, "'%s' is larger than %zu bytes", path, max);
    }
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    *out = steal_pointer(&buf);
    return 0;
}

int fs_read_file(const char *path, size_t max, char **out, size_t *len, struct merr *err)
{
    auto_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return merr_set(err, errno == ENOENT ? MERR_NOT_FOUND : MERR_IO, errno, "cannot open '%s'",
                        path);
    return read_fd(fd, path, max, out, len, err);
}

int fs_read_regular(const char *path, size_t max, char **out, size_t *len, struct merr *err)
{
    auto_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return merr_set(err, errno == ENOENT ? MERR_NOT_FOUND : MERR_IO, errno, "cannot open '%s'",
                        path);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return merr_set(err, MERR_IO, errno, "cannot stat '%s'", path);
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max)
        return merr_set(err, MERR_CORRUPT, 0, "'%s' is not a regular file of at most %zu bytes",
                        path, max);
    return read_fd(fd, path, max, out, len, err);
}

int fs_mkdir_p(const char *path, mode_t mode, struct merr *err)
{
    auto_free char *p = xstrdup(path);
    size_t len = strlen(p);
    for (size_t i = 1; i <= len; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char saved = p[i];
        p[i] = '\0';
        if (mkdir(p, mode) < 0 && errno != EEXIST)
            return merr_set(err, MERR_IO, errno, "cannot create directory '%s'", p);
        p[i] = saved;
    }
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
        return merr_set(err, MERR_IO, ENOTDIR, "cannot create directory '%s'", path);
    return 0;
}

static int remove_at(int parent, const char *name, struct merr *err, int depth)
{
    if (depth > 4096)
        return merr_set(err, MERR_IO, ELOOP, "directory tree too deep at '%s'", name);
    if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return merr_set(err, MERR_IO, errno, "cannot remove '%s'", name);
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return merr_set(err, MERR_IO, errno, "cannot open '%s'", name);
    auto_closedir DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return merr_set(err, MERR_IO, errno, "cannot read '%s'", name);
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (remove_at(dirfd(d), de->d_name, err, depth + 1) < 0)
            return -1;
    }
    if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        return merr_set(err, MERR_IO, errno, "cannot remove '%s'", name);
    return 0;
}

int fs_remove_tree(const char *path, struct merr *err)
{
    return remove_at(AT_FDCWD, path, err, 0);
}

int fs_lock(const char *path, int timeout_ms, struct merr *err)
{
    auto_close int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return merr_set(err, MERR_IO, errno, "cannot open lock '%s'", path);
    int64_t deadline = clock_deadline_ms(timeout_ms);
    for (;;) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            return steal_fd(&fd);
        if (errno != EWOULDBLOCK && errno != EINTR)
            return merr_set(err, MERR_IO, errno, "cannot lock '%s'", path);
        if (clock_expired(deadline))
            return merr_set(err, MERR_BUSY, 0, "'%s' is locked by another machine command", path);
        clock_sleep_ms(20);
    }
}

void fs_unlock(int fd)
{
    if (fd >= 0)
        close(fd);
}

int fs_copy_file(const char *src, const char *dst, mode_t mode, struct merr *err)
{
    auto_free char *data = NULL;
    size_t len = 0;
    if (fs_read_file(src, 64u << 20, &data, &len, err) < 0)
        return -1;
    if (mode == 0) {
        struct stat st;
        if (stat(src, &st) < 0)
            return merr_set(err, MERR_IO, errno, "cannot stat '%s'", src);
        mode = st.st_mode & 07777;
    }
    return fs_write_atomic(dst, data, len, mode, err);
}

char *fs_find_beside_exe(const char *const *rel)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return NULL;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash != NULL)
        *slash = '\0';
    for (size_t i = 0; rel[i] != NULL; i++) {
        char *p = xasprintf("%s/%s", exe, rel[i]);
        if (access(p, R_OK) == 0)
            return p;
        free(p);
    }
    return NULL;
}
