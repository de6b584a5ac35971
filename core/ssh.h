/* SSH client (libssh2): connect with host key pinning, run commands, copy files
 * over SFTP, interactive sessions, and the argv for the system ssh client.
 *
 * Every blocking libssh2 call is bounded by target->timeout_ms. Commands may run
 * longer than that: while one runs, the connection is probed with keepalives and
 * declared dead when nothing at all arrives from the server for timeout_ms. */
#ifndef MACHINE_SSH_H
#define MACHINE_SSH_H

#include <stdbool.h>
#include <stddef.h>

#include "cleanup.h"

struct merr;

struct ssh_target {
    const char *host;
    int port;
    const char *user;
    const char *key_path;         /* private key (OpenSSH format); public key derived */
    const char *known_hosts_path; /* OpenSSH known_hosts file for this machine (pinned key) */
    int timeout_ms;               /* per blocking operation; also the TCP connect timeout */
};

struct ssh_conn;

/* Captured stdout/stderr of ssh_exec are each capped; beyond: MERR_PROTOCOL. */
#define SSH_EXEC_CAPTURE_MAX (16u << 20)

/* TCP connect (bounded by timeout_ms), handshake, host key check, publickey auth.
 * First contact records the server's key in known_hosts_path ("[host]:port" entry,
 * OpenSSH format, written atomically with mode 0600). A key that differs from the
 * pinned one (including a key of another type) fails with MERR_HOSTKEY naming both
 * SHA256 fingerprints. A private key readable by group/others fails with MERR_PERM
 * before any network traffic. Unreachable: MERR_UNREACHABLE; timeout: MERR_TIMEOUT;
 * key refused: MERR_AUTH. */
int ssh_connect(const struct ssh_target *t, struct ssh_conn **out, struct merr *err) MUST_CHECK;
void ssh_conn_free(struct ssh_conn *c);
DEFINE_CLEANUP(struct ssh_conn, ssh_conn_free)
#define auto_ssh_conn __attribute__((cleanup(cleanup_ssh_conn_freep)))

/* Fingerprint "SHA256:..." of the server's host key on this connection. */
const char *ssh_conn_host_fingerprint(const struct ssh_conn *c);

/* Fingerprint of the key pinned for t's [host]:port in t->known_hosts_path;
 * MERR_NOT_FOUND when nothing is pinned yet. */
int ssh_pinned_fingerprint(const struct ssh_target *t, char *out, size_t outsz,
                           struct merr *err) MUST_CHECK;

/* Retries ssh_connect + `exit 0` every interval_ms until it works or total_ms has
 * elapsed (then MERR_TIMEOUT, with the last error in the message). MERR_HOSTKEY
 * and MERR_PERM are returned at once. */
int ssh_wait_ready(const struct ssh_target *t, int total_ms, int interval_ms,
                   struct merr *err) MUST_CHECK;

/* Runs cmd, sending stdin_data (may be NULL) then EOF; captures stdout and stderr
 * separately (each NUL-terminated, capped at SSH_EXEC_CAPTURE_MAX). out/errout may
 * be NULL to discard. *exit_status is the remote exit status, or 128+signal when
 * the command was killed by a signal. */
int ssh_exec(struct ssh_conn *c, const char *cmd, const void *stdin_data, size_t stdin_len,
             char **out, size_t *out_len, char **errout, size_t *errout_len, int *exit_status,
             struct merr *err) MUST_CHECK;

/* Runs cmd streaming its output to out_fd/err_fd, forwarding in_fd (-1: none) as
 * its stdin followed by EOF. */
int ssh_exec_stream(struct ssh_conn *c, const char *cmd, int in_fd, int out_fd, int err_fd,
                    int *exit_status, struct merr *err) MUST_CHECK;

/* Interactive session on fds 0/1/2. With a terminal on stdin: PTY with $TERM and
 * the window size (SIGWINCH resizes it), local terminal in raw mode and restored on
 * every exit path. Without: no PTY, like ssh_exec_stream(c, cmd, 0, 1, 2).
 * cmd NULL runs the login shell. */
int ssh_interactive(struct ssh_conn *c, const char *cmd, int *exit_status,
                    struct merr *err) MUST_CHECK;

/* SFTP copies. Modes are preserved; remote files are written under a temp name
 * in the destination directory, then renamed over the destination. If the
 * destination is an existing directory, the source goes inside it (as scp does).
 * Symlinks are followed (directory depth is capped). */
int ssh_upload(struct ssh_conn *c, const char *local, const char *remote, bool recursive,
               struct merr *err) MUST_CHECK;
int ssh_download(struct ssh_conn *c, const char *remote, const char *local, bool recursive,
                 struct merr *err) MUST_CHECK;
int ssh_upload_buf(struct ssh_conn *c, const void *data, size_t len, const char *remote, int mode,
                   struct merr *err) MUST_CHECK;

/* argv (NULL-terminated, free with auto_strv) for the system client:
 * ssh -i KEY -p PORT -o IdentitiesOnly=yes -o UserKnownHostsFile=KH
 *     -o StrictHostKeyChecking=yes -o ConnectTimeout=N -o LogLevel=ERROR user@host
 *     [-t] [-- cmd...]
 * N is timeout_ms rounded up to seconds. A host or user that could be read as an
 * option, or that contains '@' or whitespace, fails with MERR_INVALID. */
char **ssh_external_argv(const struct ssh_target *t, bool tty, char *const *cmd, struct merr *err);

#endif
