/* machine-proxy: one container's published ports, in a process of their own so they outlive
 * the engine (docs/engine-network.md, "Published ports").
 *
 * The engine binds the host's sockets (it has the privilege, and a taken port fails the start
 * with dockerd's words) and starts us with them as inherited fds; we only accept, connect to
 * the container's address and copy bytes (engine/proxy/pxloop.c, the loop the engine itself
 * runs when we are not installed). We drop every capability and set no_new_privs first thing.
 * We end on SIGTERM/SIGINT, or when the hold pipe (--hold) reaches end of file: its write end
 * is the container's monitor's, so we go with the container even while the engine is down. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "error.h"
#include "privdrop.h"
#include "pxloop.h"
#include "pxspec.h"

enum { TAG_SIGNAL = 1, TAG_HOLD = 2 };

struct proxy {
    int sigfd, hold;
    bool done;
};

static void on_watch(void *data, int tag, unsigned events)
{
    struct proxy *p = data;
    (void)events;
    if (tag == TAG_SIGNAL) {
        struct signalfd_siginfo si;
        while (read(p->sigfd, &si, sizeof si) > 0)
            p->done = true;
    } else if (tag == TAG_HOLD) {
        char c;
        ssize_t n = read(p->hold, &c, 1);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            p->done = true; /* the monitor is gone: so is the container */
    }
}

/* A listener's fd must be a socket of its protocol's type (the engine's, not anything else
 * that happens to be open). */
static bool socket_of(int fd, enum px_proto proto)
{
    int type = 0;
    socklen_t len = sizeof type;
    return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
           type == (proto == PX_UDP ? SOCK_DGRAM : SOCK_STREAM);
}

int main(int argc, char **argv)
{
    priv_drop_all();
    struct px_args args;
    struct merr err = MERR_INIT;
    if (px_args_parse(argc, argv, &args, &err) < 0) {
        fprintf(stderr, "machine-proxy: %s\nusage: machine-proxy [--hold FD] "
                        "FD:PROTO:ADDR:PORT... (started by machine-engine only)\n", err.msg);
        return 2;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    struct proxy p = { .sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC), .hold = args.hold };
    struct px_loop *loop = px_loop_new();
    if (p.sigfd < 0 || loop == NULL || px_loop_watch(loop, p.sigfd, TAG_SIGNAL) < 0) {
        fprintf(stderr, "machine-proxy: cannot set up: %s\n", strerror(errno));
        return 1;
    }
    if (p.hold >= 0 && (fcntl(p.hold, F_SETFL, O_NONBLOCK) < 0 ||
                        px_loop_watch(loop, p.hold, TAG_HOLD) < 0)) {
        fprintf(stderr, "machine-proxy: bad hold fd %d: %s\n", p.hold, strerror(errno));
        return 1;
    }
    for (size_t i = 0; i < args.n; i++) {
        const struct px_listener *l = &args.listeners[i];
        if (!socket_of(l->fd, l->proto) || fcntl(l->fd, F_SETFL, O_NONBLOCK) < 0 ||
            fcntl(l->fd, F_SETFD, FD_CLOEXEC) < 0 ||
            px_loop_add(loop, NULL, l->proto, l->fd, (const struct sockaddr *)&l->target,
                        l->target_len) < 0) {
            fprintf(stderr, "machine-proxy: fd %d is not a usable %s socket\n", l->fd,
                    l->proto == PX_UDP ? "udp" : "tcp");
            return 1;
        }
    }
    px_args_release(&args);
    while (!p.done)
        px_loop_dispatch(loop, px_loop_wait(loop, 1000), on_watch, &p);
    px_loop_free(loop);
    return 0;
}
