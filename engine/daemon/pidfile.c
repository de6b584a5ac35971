/* The daemon's pid file: one engine per pid file. */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct pidfile {
    char *path;
    int fd;
    dev_t dev;
    ino_t ino;
};

int pidfile_parse(const char *text, pid_t *out, struct merr *err)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    while (*end == '\n' || *end == ' ' || *end == '\r' || *end == '\t')
        end++;
    if (end == text || *end != '\0' || errno != 0 || v <= 0 || v > 4194304)
        return merr_set(err, MERR_CORRUPT, 0, "invalid pid file content '%.32s'", text);
    *out = (pid_t)v;
    return 0;
}

static bool process_alive(pid_t pid)
{
    return kill(pid, 0) == 0 || errno == EPERM;
}

int pidfile_acquire(const char *path, struct pidfile **out, struct merr *err)
{
    int auto_close fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return merr_set(err, MERR_IO, errno, "cannot open pid file '%s'", path);
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK)
            return merr_set(err, MERR_BUSY, 0,
                            "pid file '%s' is locked: is machine-engine already running?", path);
        return merr_set(err, MERR_IO, errno, "cannot lock pid file '%s'", path);
    }
    struct stat st, at_path;
    if (fstat(fd, &st) < 0 || stat(path, &at_path) < 0 || st.st_dev != at_path.st_dev ||
        st.st_ino != at_path.st_ino) /* removed by an exiting engine meanwhile */
        return merr_set(err, MERR_BUSY, 0, "pid file '%s' changed while starting", path);
    char text[32];
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    if (n < 0)
        return merr_set(err, MERR_IO, errno, "cannot read pid file '%s'", path);
    text[n] = '\0';
    pid_t old;
    struct merr ignored = MERR_INIT;
    if (n > 0 && pidfile_parse(text, &old, &ignored) == 0 && old != getpid() &&
        process_alive(old))
        return merr_set(err, MERR_BUSY, 0,
                        "pid file found, ensure machine-engine is not running or delete '%s' "
                        "(process %d is alive)",
                        path, (int)old);
    char pid_text[32];
    int len = snprintf(pid_text, sizeof pid_text, "%d\n", (int)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pid_text, (size_t)len, 0) != len)
        return merr_set(err, MERR_IO, errno, "cannot write pid file '%s'", path);
    struct pidfile *pf = calloc(1, sizeof *pf);
    if (pf == NULL || (pf->path = strdup(path)) == NULL) {
        free(pf);
        return merr_set(err, MERR_NOMEM, 0, "out of memory");
    }
    pf->dev = st.st_dev;
    pf->ino = st.st_ino;
    pf->fd = steal_fd(&fd);
    *out = pf;
    return 0;
}

void pidfile_release(struct pidfile *pf)
{
    if (pf == NULL)
        return;
    struct stat st;
    if (stat(pf->path, &st) == 0 && st.st_dev == pf->dev && st.st_ino == pf->ino)
        unlink(pf->path);
    close(pf->fd); /* drops the lock after the unlink: no window for a stale file */
    free(pf->path);
    free(pf);
}
