/* CLI helpers around a machine's engine: the TLS endpoint, provisioning, and automatic
 * certificate renewal when the machine's address no longer matches its certificate. */
#ifndef MACHINE_CLI_ENGINE_H
#define MACHINE_CLI_ENGINE_H

#include <stdio.h>

#include "cleanup.h"

struct cli;
struct machine;
struct merr;
struct machine_ctx;

/* The engine's version over mutual TLS (NULL with err on failure). */
char *cli_engine_version(const struct machine_ctx *ctx, const struct machine *m, int timeout_ms,
                         struct merr *err) MUST_CHECK;

/* lifecycle_renew_certs, saying what it does on out. 1 when it renewed, 0 when nothing was
 * needed. */
int cli_renew_certs_if_needed(const struct machine_ctx *ctx, struct machine *m, FILE *out,
                              struct merr *err) MUST_CHECK;

#endif
