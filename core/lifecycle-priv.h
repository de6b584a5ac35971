/* Shared by lifecycle.c (create, remove, SSH) and lifecycle-ops.c (power, upgrade, certs, rm). */
#ifndef MACHINE_LIFECYCLE_PRIV_H
#define MACHINE_LIFECYCLE_PRIV_H

#include "cleanup.h"

struct machine;
struct machine_ctx;
struct merr;

/* One progress line: the debug log and ctx->progress. */
void lifecycle_progress(const struct machine_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Saves m as failed with err's message (a failed save is only logged); returns -1. */
int lifecycle_mark_failed(const struct machine_ctx *ctx, struct machine *m, struct merr *err);

/* Copies the store's CA and client certificate into the machine directory (DOCKER_CERT_PATH). */
int lifecycle_copy_client_certs(const struct machine_ctx *ctx, const struct machine *m,
                                struct merr *err) MUST_CHECK;

/* Runs cmd on the machine through the context's SSH seam; returns its stdout. */
char *lifecycle_ssh_output(const struct machine_ctx *ctx, const struct machine *m, const char *cmd,
                           struct merr *err) MUST_CHECK;

#endif
