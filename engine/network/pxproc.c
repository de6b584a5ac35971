/* The engine's side of machine-proxy (engine/proxy/): starting one with a container's bound
 * sockets, finding it again after an engine restart (its pid and start time are in the
 * container's run.json: the pid alone could name another process by then), and ending it at
 * stop so the ports are free when stop returns. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "service-priv.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define STOP_WAIT_MS 5000

char *net_pxproc_find(void)
{
    const char *const rel[] = { PX_BINARY, "../libexec/" PX_BINARY, NULL };
    return fs_find_beside_exe(rel);
}

/* The start time of pid now, 0 when it is gone. */
static unsigned long long starttime_of(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    return n > 0 ? px_stat_starttime(buf, (size_t)n) : 0;
}

static void spawn_cleanup(posix_spawn_file_actions_t *fa, posix_spawnattr_t *attr, int *high,
                          size_t n)
{
    posix_spawn_file_actions_destroy(fa);
    posix_spawnattr_destroy(attr);
    for (size_t i = 0; i < n; i++)
        if (high[i] >= 0)
            close(high[i]);
}

/* fds[i] becomes fd 3 + i in the child; nothing else but /dev/null on 0-2 is passed. */
static int spawn(const char *path, char *const *argv, const int *fds, size_t n, pid_t *pid,
                 struct merr *err)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    int *high = xcalloc(n + 1, sizeof *high);
    for (size_t i = 0; i < n; i++)
        high[i] = -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        /* above every target, so no dup2 overwrites a source still to be moved */
        high[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, (int)(3 + n));
        if (high[i] < 0 || posix_spawn_file_actions_adddup2(&fa, high[i], (int)(3 + i)) != 0)
            rc = -1;
    }
    for (int std = 0; std <= 2 && rc == 0; std++)
        if (posix_spawn_file_actions_addopen(&fa, std, "/dev/null", O_RDWR, 0) != 0)
            rc = -1;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    if (rc == 0 && (posix_spawn_file_actions_addclosefrom_np(&fa, (int)(3 + n)) != 0 ||
                    posix_spawnattr_setsigmask(&attr, &none) != 0 ||
                    posix_spawnattr_setsigdefault(&attr, &all) != 0 ||
                    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                                        POSIX_SPAWN_SETSIGDEF) != 0))
        rc = -1;
    if (rc < 0) {
        int e = errno;
        spawn_cleanup(&fa, &attr, high, n);
        free(high);
        return merr_set(err, MERR_IO, e, "cannot prepare the port proxy");
    }
    static char *const no_env[] = { NULL };
    int e = posix_spawn(pid, path, &fa, &attr, argv, no_env);
    spawn_cleanup(&fa, &attr, high, n);
    free(high);
    return e != 0 ? merr_set(err, MERR_IO, e, "cannot start '%s'", path) : 0;
}

int net_pxproc_spawn(const char *path, int hold, const struct px_listener *ls, size_t n,
                     struct net_pxproc *out, struct merr *err)
{
    *out = (struct net_pxproc){ .pidfd = -1 };
    size_t nfds = 0;
    int *fds = xcalloc(n + 1, sizeof *fds);
    char **argv = xcalloc(n + 4, sizeof *argv);
    size_t k = 0;
    argv[k++] = xstrdup(path);
    if (hold >= 0) {
        argv[k++] = xstrdup("--hold");
        argv[k++] = xstrdup("3");
        fds[nfds++] = hold;
    }
    for (size_t i = 0; i < n; i++) {
        struct px_listener l = ls[i];
        l.fd = (int)(3 + nfds);
        fds[nfds++] = ls[i].fd;
        char spec[PX_SPEC_MAX];
        if (px_listener_format(&l, spec, sizeof spec) < 0)
            abort(); /* PX_SPEC_MAX holds the longest */
        argv[k++] = xstrdup(spec);
    }
    pid_t pid = 0;
    int rc = spawn(path, argv, fds, nfds, &pid, err);
    for (size_t i = 0; i < k; i++)
        free(argv[i]);
    free(argv);
    free(fds);
    if (rc < 0)
        return -1;
    /* our child until it is reaped: the pid cannot be reused under us */
    out->pid = pid;
    out->pidfd = pidfd_open(pid, 0);
    out->start = starttime_of(pid);
    if (out->pidfd < 0 || out->start == 0) {
        int e = errno;
        net_pxproc_stop(out);
        return merr_set(err, MERR_IO, e, "the port proxy did not start");
    }
    return 0;
}

bool net_pxproc_alive(const struct net_pxproc *px)
{
    struct pollfd p = { .fd = px->pidfd, .events = POLLIN };
    return px->pidfd >= 0 && poll(&p, 1, 0) == 0;
}

int net_pxproc_adopt(struct net_pxproc *px)
{
    px->pidfd = -1;
    if (px->pid <= 0 || px->start == 0)
        return 0;
    int pidfd = pidfd_open(px->pid, 0);
    /* checked after the open: a match means the pidfd is that very process */
    if (pidfd < 0 || starttime_of(px->pid) != px->start) {
        if (pidfd >= 0)
            close(pidfd);
        return 0;
    }
    px->pidfd = pidfd;
    if (!net_pxproc_alive(px)) { /* a zombie its new parent has not reaped yet */
        close(pidfd);
        px->pidfd = -1;
        return 0;
    }
    return 1;
}

void net_pxproc_stop(struct net_pxproc *px)
{
    if (px->pidfd >= 0) {
        pidfd_send_signal(px->pidfd, SIGKILL, NULL, 0);
        /* its sockets are closed once it is gone: then the ports are free */
        struct pollfd p = { .fd = px->pidfd, .events = POLLIN };
        while (poll(&p, 1, STOP_WAIT_MS) < 0 && errno == EINTR)
            ;
        siginfo_t si;
        waitid((idtype_t)P_PIDFD, (id_t)px->pidfd, &si, WEXITED | WNOHANG); /* ECHILD: adopted */
        close(px->pidfd);
    }
    *px = (struct net_pxproc){ .pidfd = -1 };
}

void net_pxproc_release(struct net_pxproc *px)
{
    if (px->pidfd >= 0)
        close(px->pidfd);
    *px = (struct net_pxproc){ .pidfd = -1 };
}
