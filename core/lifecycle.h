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

/* validate name and flag values → pre-create check (MERR_PRECREATE) → save "creating" → the
 * machine's SSH key pair (SSH drivers) → driver create → wait for SSH (bounded) → detect OS →
 * provision (ctx->provisioner) → save "created". Any failure after the first save leaves the
 * machine saved as "error" with the reason, so `ls` shows it and `rm` cleans it; a failure
 * once the driver's create ran also calls the driver's remove (drivers undo nothing). */
int lifecycle_create(const struct machine_ctx *ctx, const struct driver *d, struct machine *m,
                     struct merr *err) MUST_CHECK;

/* Driver remove, then the machine directory. With force the directory goes even if the driver
 * fails (the driver's error is still returned). */
int lifecycle_remove(const struct machine_ctx *ctx, struct machine *m, bool force,
                     struct merr *err) MUST_CHECK;

/* The operations on an existing machine, by name. Each takes the machine's lock (waiting at
 * most ctx->lock_timeout_ms: MERR_BUSY), loads the machine under it and saves it after the
 * driver's verb, so two operations on one machine never interleave. start and restart wait for
 * SSH and renew the engine certificate when the machine came back on another address (a
 * driver without start, such as generic whose restart is a reboot, is not waited for). */
int lifecycle_start(const struct machine_ctx *ctx, const char *name, struct merr *err) MUST_CHECK;
int lifecycle_stop(const struct machine_ctx *ctx, const char *name, struct merr *err) MUST_CHECK;
int lifecycle_restart(const struct machine_ctx *ctx, const char *name, struct merr *err) MUST_CHECK;
int lifecycle_kill(const struct machine_ctx *ctx, const char *name, struct merr *err) MUST_CHECK;
/* Installs the engine again (ctx->provisioner); upgrade first boots the current machine-os
 * image where the driver can (its data disk stays). A failure is recorded on the machine;
 * success saves it as "created". MERR_UNSUPPORTED for drivers without SSH. */
int lifecycle_provision(const struct machine_ctx *ctx, const char *name, struct merr *err) MUST_CHECK;
int lifecycle_upgrade(const struct machine_ctx *ctx, const char *name, struct merr *err) MUST_CHECK;
/* Copies the store's CA and client certificate to the machine, issues and installs a new
 * server certificate and waits for the engine (`regenerate-certs`). */
int lifecycle_regenerate_certs(const struct machine_ctx *ctx, const char *name,
                               struct merr *err) MUST_CHECK;
/* When the machine's address is not in its server certificate: a new one, installed, the engine
 * restarted (lines through ctx->progress). 1: renewed, 0: nothing was needed. Takes the lock
 * only when there is something to do. */
int lifecycle_renew_certs(const struct machine_ctx *ctx, struct machine *m, struct merr *err) MUST_CHECK;
/* lifecycle_remove under the lock, by name; with force an unreadable config is forgotten too.
 * MERR_NOT_FOUND when there is no such machine. */
int lifecycle_rm(const struct machine_ctx *ctx, const char *name, bool force, struct merr *err) MUST_CHECK;

/* Waits (bounded by ctx->ssh_wait_ms) until the machine's SSH server answers. */
int lifecycle_wait_ssh(const struct machine_ctx *ctx, const struct machine *m,
                       struct merr *err) MUST_CHECK;
/* The driver for a stored machine, or MERR_NOT_FOUND naming the unknown driver. */
const struct driver *lifecycle_driver(const struct machine_ctx *ctx, const struct machine *m,
                                      struct merr *err) MUST_CHECK;
/* A driver by name: built in, else a machine-driver-NAME plugin; NULL (err set) when neither. */
const struct driver *lifecycle_driver_named(const struct machine_ctx *ctx, const char *name,
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
