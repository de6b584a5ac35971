/* machine-proxy's contract with the engine (pure: strings in, structs out; linked into both).
 *
 *   machine-proxy [--hold FD] LISTENER...
 *
 * Each LISTENER is "FD:PROTO:ADDR:PORT": the inherited listening (tcp) or bound (udp) socket FD
 * and where its connections go, ADDR an IPv4 address or a bracketed IPv6 one
 * ("4:tcp:172.18.0.2:80", "5:udp:[fd00::2]:53"). --hold FD: the read end of a pipe whose write
 * end the container's monitor holds; its end of file (the monitor gone with its container)
 * ends the proxy. */
#ifndef MACHINE_ENGINE_PXSPEC_H
#define MACHINE_ENGINE_PXSPEC_H

#include <stddef.h>
#include <sys/socket.h>

#include "cleanup.h"
#include "pxloop.h"

struct merr;

#define PX_BINARY "machine-proxy"
#define PX_SPEC_MAX 64 /* a LISTENER's text */

struct px_listener {
    int fd;
    enum px_proto proto;
    struct sockaddr_storage target;
    socklen_t target_len;
};

/* One LISTENER. MERR_INVALID for anything else (an fd below 3, a port 0, a name). */
int px_listener_parse(const char *s, struct px_listener *out, struct merr *err) MUST_CHECK;
/* The LISTENER text of l into buf; its length, or -1 when size is too small. */
int px_listener_format(const struct px_listener *l, char *buf, size_t size);

struct px_args {
    int hold; /* -1: none */
    struct px_listener *listeners; /* malloc'd */
    size_t n;
};
/* argv as machine-proxy gets it (argv[0] its name). At least one LISTENER, distinct fds. */
int px_args_parse(int argc, char *const *argv, struct px_args *out, struct merr *err) MUST_CHECK;
void px_args_release(struct px_args *a);

/* The start time (clock ticks since boot, field 22) of a /proc/PID/stat text: with the pid it
 * names one process for good. 0 when the text is not one. */
unsigned long long px_stat_starttime(const char *text, size_t len);

#endif
