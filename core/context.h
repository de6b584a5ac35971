/* Everything a command needs, passed explicitly (no globals). */
#ifndef MACHINE_CONTEXT_H
#define MACHINE_CONTEXT_H

#include <stdbool.h>

#include "log.h"
#include "store.h"

struct driver;
struct machine;
struct machine_ctx;
struct merr;
struct cmd_runner;
struct curl_api;
struct plugin_set;

typedef void (*progress_fn)(void *opaque, const char *step);

/* The SSH seam: lifecycle reaches a machine over SSH only through these. NULL in the context
 * means core's own client (machine_ssh_wait / machine_ssh_output); unit tests give fakes. */
struct machine_ssh_ops {
    /* Until the machine's SSH server answers, at most timeout_ms. */
    int (*wait_ready)(const struct machine_ctx *ctx, const struct machine *m, int timeout_ms,
                      struct merr *err);
    /* Runs cmd; returns its stdout (malloc'd), or NULL with MERR_REMOTE on a non-zero exit. */
    char *(*output)(const struct machine_ctx *ctx, const struct machine *m, const char *cmd,
                    struct merr *err);
};

/* What provision/ does for lifecycle (core does not link provision/: the CLI or `machine up`
 * plugs provision's table in). NULL: machines are registered, no engine is installed. */
struct machine_provisioner {
    /* Installs (or re-installs) the engine on a machine reachable over SSH. */
    int (*provision)(const struct machine_ctx *ctx, struct machine *m, struct merr *err);
    /* Issues the server certificate for the machine's current address, installs it, restarts. */
    int (*install_certs)(const struct machine_ctx *ctx, struct machine *m, struct merr *err);
    /* Until the engine's TLS API answers (bounded); returns its version. */
    char *(*wait_engine)(const struct machine_ctx *ctx, const struct machine *m, int timeout_ms,
                         struct merr *err);
};

struct machine_ctx {
    struct store store;
    struct mlog log;
    const struct driver *const *drivers; /* NULL-terminated table from drivers/ */
    struct plugin_set *plugins;          /* driver plugins loaded on demand (core/plugin.h), or NULL */
    bool external_ssh;                   /* use the system ssh for `machine ssh` */
    int ssh_wait_ms;                     /* bound on waiting for a booting host's SSH */
    int ssh_timeout_ms;                  /* bound on one SSH operation */
    int state_timeout_ms;                /* bound on one driver state query */
    int op_timeout_ms;    /* bound on one driver operation (create, start, stop…): its deadline */
    int stop_grace_ms;    /* how long a stop waits for a clean shutdown before a power-off */
    int lock_timeout_ms;  /* how long an operation waits for another one on the same machine */
    int engine_wait_ms;   /* bound on waiting for a restarted engine */
    progress_fn progress;                /* one line per lifecycle step, or NULL */
    void *progress_opaque;
    const struct machine_ssh_ops *ssh;             /* NULL: core's SSH client */
    const struct cmd_runner *command;              /* NULL: the real fork/exec */
    const struct curl_api *curl;                   /* libcurl for drivers' API clients */
    const struct machine_provisioner *provisioner; /* NULL: register only */
};

#endif
