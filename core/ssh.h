/* The SSH client (libssh2): connect with a pinned host key, run commands, copy files (SFTP),
 * interactive sessions. Every blocking operation is bounded by the target's timeout. */
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
    const char *key_path;         /* private key; the public key is derived from it */
    const char *known_hosts_path; /* this machine's OpenSSH known_hosts (the pinned key) */
    int timeout_ms;               /* TCP connect and every blocking SSH operation */
};

struct ssh_conn;

/* Connects, checks the host key and authenticates. First contact records the key in
 * known_hosts; a different key later is MERR_HOSTKEY naming both fingerprints. A private key
 * readable by others is MERR_PERM before any traffic. MERR_UNREACHABLE / MERR_TIMEOUT /
 * MERR_AUTH for the obvious failures. */
int ssh_connect(const struct ssh_target *t, struct ssh_conn **out, struct merr *err) MUST_CHECK;
void ssh_conn_free(struct ssh_conn *c);
DEFINE_CLEANUP(struct ssh_conn, ssh_conn_free)

/* Retries connect + `exit 0` every interval_ms until it works or total_ms passed.
 * Host key mismatches, bad key permissions and refused authentication are not retried. */
int ssh_wait_ready(const struct ssh_target *t, int total_ms, int interval_ms,
                   struct merr *err) MUST_CHECK;

/* Runs cmd; stdout/stderr captured (16 MiB each at most), exit status (128+N for a signal). */
int ssh_exec(struct ssh_conn *c, const char *cmd, const void *stdin_data, size_t stdin_len,
             char **out, size_t *out_len, char **errout, size_t *errout_len, int *exit_status,
             struct merr *err) MUST_CHECK;
/* Runs cmd with local fds: in_fd (-1: none) forwarded as stdin then EOF, output streamed. */
int ssh_exec_stream(struct ssh_conn *c, const char *cmd, int in_fd, int out_fd, int err_fd,
                    int *exit_status, struct merr *err) MUST_CHECK;
/* On a terminal: PTY with TERM and the window size (kept in sync), raw mode restored on every
 * path; cmd NULL is a login shell. Without a terminal it behaves like ssh_exec_stream on 0/1/2. */
int ssh_interactive(struct ssh_conn *c, const char *cmd, int *exit_status, struct merr *err) MUST_CHECK;

/* SFTP copies with scp's semantics for an existing destination directory; modes kept; remote
 * files are written under a temporary name and renamed. */
int ssh_upload(struct ssh_conn *c, const char *local, const char *remote, bool recursive,
               struct merr *err) MUST_CHECK;
int ssh_download(struct ssh_conn *c, const char *remote, const char *local, bool recursive,
                 struct merr *err) MUST_CHECK;
int ssh_upload_buf(struct ssh_conn *c, const void *data, size_t len, const char *remote, int mode,
                   struct merr *err) MUST_CHECK;

/* argv for the system ssh with the pinned known_hosts (for --external-ssh); pure. */
char **ssh_external_argv(const struct ssh_target *t, bool tty, char *const *cmd, struct merr *err);

#endif
