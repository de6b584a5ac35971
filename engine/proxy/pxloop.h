/* The userland port proxy's forwarding loop (docker-proxy's job): listeners on the host whose
 * TCP connections and UDP flows are forwarded to a container's address. Single-threaded and
 * lock-free: machine-proxy (engine/proxy/) runs it as its whole program; the engine's fallback
 * (engine/network/proxy.c, when machine-proxy is not installed) runs it on a thread under a
 * lock. libc only, so the static machine-proxy links it as is. */
#ifndef MACHINE_ENGINE_PXLOOP_H
#define MACHINE_ENGINE_PXLOOP_H

#include <stdbool.h>
#include <sys/socket.h>

#define PX_BUF 65536
#define PX_MAX_CONNS 1024 /* per listener: TCP connections, UDP flows */
#define PX_UDP_IDLE_S 30
#define PX_MAX_EVENTS 64
#define PX_MAX_WATCHES 8

enum px_proto { PX_TCP, PX_UDP };

struct px_loop;
/* NULL with errno set when the epoll instance cannot be made. */
struct px_loop *px_loop_new(void);
/* Closes every listener, connection and watched fd's registration (not the watched fds). */
void px_loop_free(struct px_loop *l);
/* Forwards what arrives on fd (a bound UDP socket or a listening TCP one, non-blocking; taken
 * over, even on failure) to target. owner (may be NULL) groups listeners for removal. */
int px_loop_add(struct px_loop *l, const char *owner, enum px_proto proto, int fd,
                const struct sockaddr *target, socklen_t target_len);
/* Closes owner's listeners, connections and flows. */
void px_loop_remove_owner(struct px_loop *l, const char *owner);
/* Reports readiness of fd (the caller's: a wake-up eventfd, a signalfd, a hold pipe) to the
 * on_watch callback of px_loop_dispatch with tag. At most PX_MAX_WATCHES. */
int px_loop_watch(struct px_loop *l, int fd, int tag);

/* One round: px_loop_wait (may run unlocked) then px_loop_dispatch (under the caller's lock
 * when other threads add or remove). Objects removed between the two are skipped, and freed at
 * the end of a dispatch. */
int px_loop_wait(struct px_loop *l, int timeout_ms);
typedef void (*px_watch_fn)(void *data, int tag, unsigned events);
void px_loop_dispatch(struct px_loop *l, int n, px_watch_fn on_watch, void *data);

#endif
