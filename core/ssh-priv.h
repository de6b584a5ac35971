/* Internals shared by ssh.c, ssh-sftp.c and ssh-shell.c. */
#ifndef MACHINE_SSH_PRIV_H
#define MACHINE_SSH_PRIV_H

#include <libssh2.h>
#include <libssh2_sftp.h>

#include "ssh.h"

struct ssh_conn {
    int fd;
    LIBSSH2_SESSION *session;
    int timeout_ms;
    char *where; /* "user@host:port" for messages */
};

/* Translates the session's last libssh2 error into err (the one place that does). */
int ssh_fail(struct ssh_conn *c, struct merr *err, const char *what);
/* Waits until the socket is ready in the direction libssh2 is blocked on; MERR_TIMEOUT after
 * timeout_ms (0: no bound). */
int ssh_wait_socket(struct ssh_conn *c, int timeout_ms, struct merr *err);
/* Opens a session channel and starts cmd (NULL: shell), optionally with a PTY first. */
LIBSSH2_CHANNEL *ssh_open_exec(struct ssh_conn *c, const char *cmd, const char *term, int cols,
                               int rows, struct merr *err);
int ssh_channel_status(LIBSSH2_CHANNEL *ch);

#endif
