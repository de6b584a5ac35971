/* Putting machine-engine on a host over SSH: hostname, the engine bundle (checksummed),
 * TLS material, a service that restarts it and starts it at boot, and a bounded wait until the
 * TLS API answers with our client certificate. The steps are data (steps.c), shared by every
 * OS family; what differs per family is a flag on each step. Re-running is idempotent. */
#ifndef MACHINE_PROVISION_H
#define MACHINE_PROVISION_H

#include <stdbool.h>

#include "cleanup.h"

struct merr;
struct machine;
struct machine_ctx;

#define ENGINE_DIR "/opt/machine-engine"
#define ENGINE_CONF_DIR "/etc/machine-engine"
#define ENGINE_DATA_DIR "/var/lib/machine-engine"

/* For machine_ctx.provisioner: provision_machine with provision_find_bundle's bundle,
 * provision_install_certs and provision_wait_engine. */
extern const struct machine_provisioner provision_engine_provisioner;

/* The bundle to install: $MACHINE_ENGINE_BUNDLE, else next to the machine binary. */
char *provision_find_bundle(struct merr *err) MUST_CHECK;

/* Runs every step; progress lines go through ctx->progress. */
int provision_machine(const struct machine_ctx *ctx, struct machine *m, const char *bundle,
                      struct merr *err) MUST_CHECK;

/* Issues (or re-issues) the machine's server certificate for its current address, its SANs and
 * hostname, into the machine directory (server.pem, server-key.pem). */
int provision_issue_server_cert(const struct machine_ctx *ctx, const struct machine *m,
                                const char *ip, struct merr *err) MUST_CHECK;

/* Installs the machine's certificates on the host and restarts the engine (cert renewal). */
int provision_install_certs(const struct machine_ctx *ctx, struct machine *m, struct merr *err) MUST_CHECK;

/* The engine's version over mutual TLS with the machine's client certificate (one attempt). */
char *provision_engine_version(const struct machine_ctx *ctx, const struct machine *m, int timeout_ms,
                               struct merr *err) MUST_CHECK;

/* Waits (bounded) until the engine's TLS API answers; returns its version. */
char *provision_wait_engine(const struct machine_ctx *ctx, const struct machine *m, int total_ms,
                            struct merr *err) MUST_CHECK;

/* ---- pure pieces (render.c), unit-tested ---- */

/* 'x' with embedded quotes escaped for POSIX sh. */
char *sh_quote(const char *s);

struct engine_launch {
    const char *hostname;
    int port;
    char *const *labels, *const *insecure_registries, *const *registry_mirrors, *const *opts;
    char *const *env;
    const char *storage_driver;
};
/* The engine's command line (quoted, one string) for the service. */
char *provision_engine_args(const struct engine_launch *l, struct merr *err) MUST_CHECK;
/* systemd unit text. */
char *provision_render_unit(const char *args, char *const *env);
/* A POSIX sh supervisor that restarts the engine with back-off (hosts without systemd). */
char *provision_render_supervisor(const char *args, char *const *env);

/* The report of the host check ("kernel=6.1.0\noverlay=yes\ncgroup2=yes\n
 * cgroup_controllers=12\nseccomp=yes\n"): 0 when the kernel has what the engine needs, else
 * MERR_UNSUPPORTED naming the missing feature (Linux >= 4.14, overlayfs, cgroups, seccomp). */
int provision_check_features(const char *report, struct merr *err) MUST_CHECK;
/* The reason of the last fatal exit in the tail of the engine's log (its "machine-engine: "
 * line, as main prints it), or NULL while there is none. */
char *provision_engine_fatal(const char *log_tail);

#endif
