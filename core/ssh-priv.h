/* Internals shared by ssh.c, ssh-sftp.c, ssh-shell.c and sshkey.c. */
#ifndef MACHINE_SSH_PRIV_H
#define MACHINE_SSH_PRIV_H

#ifndef MACHINE_SSH_PRIV
#error "ssh-priv.h is internal to core/ssh/ and its tests (they define MACHINE_SSH_PRIV)"
#endif

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <libssh2.h>
#include <libssh2_sftp.h>

#include "ssh.h"
#include "sshkey.h"

struct merr;

struct ssh_conn {
    LIBSSH2_SESSION *session;
    LIBSSH2_SFTP *sftp; /* opened on first use */
    int sock;
    char *host;
    int port;
    int timeout_ms;
    char host_fingerprint[SSHKEY_FINGERPRINT_MAX];
    /* Kept up to date by the recv callback: when the server last sent anything,
     * and whether the TCP stream has ended. */
    int64_t last_rx_ms;
    bool rx_closed;
};

/* Where one output stream of a remote command goes: captured in memory (cap
 * bytes at most), written to fd, or dropped when fd < 0 and !capture. */
struct ssh_sink {
    int fd;
    bool capture;
    char *data;
    size_t len, alloc;
};

/* What ssh_pump moves between the channel and local descriptors. */
struct ssh_pump {
    const unsigned char *in_data; /* stdin from memory, or */
    size_t in_len;
    int in_fd;                    /* stdin from a descriptor (-1: none) */
    struct ssh_sink out, err;
    int winch_fd; /* signalfd delivering SIGWINCH (-1: none) */
    int tty_fd;   /* terminal whose size is forwarded on SIGWINCH */
};

/* Translates a libssh2 return code into err (the one place that does so):
 * "<what>: <libssh2 message>". Returns -1. */
int ssh_fail(struct ssh_conn *c, int rc, struct merr *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Opens a session channel (blocking, bounded by the connection timeout). */
int ssh_channel_open(struct ssh_conn *c, LIBSSH2_CHANNEL **out, struct merr *err) MUST_CHECK;
/* exec cmd, or the login shell when cmd is NULL. */
int ssh_channel_start(struct ssh_conn *c, LIBSSH2_CHANNEL *ch, const char *cmd,
                      struct merr *err) MUST_CHECK;
/* Moves data until the remote side has sent EOF on both streams. */
int ssh_pump_run(struct ssh_conn *c, LIBSSH2_CHANNEL *ch, struct ssh_pump *p,
                 struct merr *err) MUST_CHECK;
/* Opens a channel, runs cmd (NULL: login shell) without a PTY, streams
 * in_fd/out_fd/err_fd, and reports the exit status. */
int ssh_run_stream(struct ssh_conn *c, const char *cmd, int in_fd, int out_fd, int err_fd,
                   int *exit_status, struct merr *err) MUST_CHECK;
/* Closes and frees ch; reports the exit status (128+signal when signalled). */
int ssh_channel_finish(struct ssh_conn *c, LIBSSH2_CHANNEL *ch, int *exit_status,
                       struct merr *err) MUST_CHECK;
/* Frees a channel after a failure, bounded by the connection timeout. */
void ssh_channel_abort(struct ssh_conn *c, LIBSSH2_CHANNEL *ch);

/* In sshkey.c: base64 (standard alphabet, padded) and an atomic file write
 * (temp file in the same directory, fsync, rename, fsync directory). */
char *ssh_base64_encode(const void *data, size_t len);
ssize_t ssh_base64_decode(const char *in, unsigned char *out, size_t outsz);
int ssh_write_file_atomic(const char *path, const void *data, size_t len, int mode,
                          struct merr *err) MUST_CHECK;

#endif
