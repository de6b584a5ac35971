/* Everything a command needs, passed explicitly (no globals). */
#ifndef MACHINE_CONTEXT_H
#define MACHINE_CONTEXT_H

#include <stdbool.h>

#include "log.h"
#include "store.h"

struct driver;
struct machine;
struct merr;

typedef void (*progress_fn)(void *opaque, const char *step);

struct machine_ctx {
    struct store store;
    struct mlog log;
    const struct driver *const *drivers; /* NULL-terminated table from drivers/ */
    bool external_ssh;                   /* use the system ssh for `machine ssh` */
    int ssh_wait_ms;                     /* bound on waiting for a booting host's SSH */
    int ssh_timeout_ms;                  /* bound on one SSH operation */
    int state_timeout_ms;                /* bound on one driver state query */
    progress_fn progress;                /* one line per lifecycle step, or NULL */
    void *progress_opaque;
    /* Installs the engine on a freshly created SSH machine (provision/); NULL: register only. */
    int (*provision)(const struct machine_ctx *ctx, struct machine *m, struct merr *err);
};

#endif
