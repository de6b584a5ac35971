/* Machine lifecycle: create, remove, start/stop and the SSH endpoint of a machine.
 * The steps are the same for every driver; drivers only supply their verbs. */
#ifndef MACHINE_LIFECYCLE_H
#define MACHINE_LIFECYCLE_H

#include "cleanup.h"
#include "machine.h"
#include "ssh.h"

struct merr;
struct driver;
struct machine_ctx;

/* validate name → pre-create check (MERR_PRECREATE) → save "creating" → driver create →
 * wait for SSH (bounded) → detect OS → save "created". Any failure after the first save leaves
 * the machine saved as "error" with the reason, so `ls` shows it and `rm` cleans it. */
int lifecycle_create(const struct machine_ctx *ctx, const struct driver *d, struct machine *m,
                     struct merr *err) MUST_CHECK;

/* Driver remove, then the machine directory. With force the directory goes even if the driver
 * fails (the driver's error is still returned). */
int lifecycle_remove(const struct machine_ctx *ctx, struct machine *m, bool force,
                     struct merr *err) MUST_CHECK;

/* Waits (bounded by ctx->ssh_wait_ms) until the machine's SSH server answers. */
int lifecycle_wait_ssh(const struct machine_ctx *ctx, const struct machine *m,
                       struct merr *err) MUST_CHECK;
/* The driver for a stored machine, or MERR_NOT_FOUND naming the unknown driver. */
const struct driver *lifecycle_driver(const struct machine_ctx *ctx, const struct machine *m,
                                      struct merr *err) MUST_CHECK;

struct driver_ctx;
void lifecycle_driver_ctx(const struct machine_ctx *ctx, struct driver_ctx *out);

/* The SSH endpoint of a machine; strings are owned by the struct. */
struct machine_ssh {
    struct ssh_target target;
    char *host;
    char *user;
    char *key_path;
    char *known_hosts;
};
int machine_ssh_init(const struct machine_ctx *ctx, const struct machine *m, struct machine_ssh *out,
                     struct merr *err) MUST_CHECK;
void machine_ssh_release(struct machine_ssh *s);

/* Opens an SSH connection to a machine (host key pinned in its known_hosts). */
int machine_ssh_connect(const struct machine_ctx *ctx, const struct machine *m,
                        struct ssh_conn **out, struct merr *err) MUST_CHECK;

/* Runs cmd on the machine and returns its stdout (exit status != 0 is MERR_REMOTE with stderr). */
char *machine_ssh_output(const struct machine_ctx *ctx, const struct machine *m, const char *cmd,
                         struct merr *err) MUST_CHECK;

#endif
