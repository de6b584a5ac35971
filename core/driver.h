/* The driver interface: a const table of hypervisor-specific verbs plus flags as data.
 * SSH waiting, certificates and provisioning live in core/ and provision/, never in a driver.
 * A NULL operation means "not supported by driver X" (see driver_call_* wrappers). */
#ifndef MACHINE_DRIVER_H
#define MACHINE_DRIVER_H

#include <stdbool.h>

#include "cleanup.h"
#include "machine.h"

struct merr;
struct cmd_runner;
struct curl_api;
struct http_client;
struct http_client_opts;
struct mlog;
struct store;

enum driver_flag_type { DFLAG_STRING, DFLAG_INT, DFLAG_BOOL, DFLAG_STRING_LIST };

/* One `--<name>` create flag; its value lands in machine->driver[key]. The bounds are data,
 * checked for every driver in one place (driver_check_flags), never by the driver. */
struct driver_flag {
    const char *name; /* "generic-ip-address" */
    const char *env;  /* "GENERIC_IP_ADDRESS", or NULL */
    const char *def;  /* default as text, or NULL */
    const char *help;
    const char *key;  /* field in config.json's Driver object: "IPAddress" */
    enum driver_flag_type type;
    bool required;
    long long min, max;          /* DFLAG_INT: inclusive range; both 0: any number */
    const char *const *choices;  /* DFLAG_STRING: the allowed values (NULL-terminated), or NULL */
    bool secret;                 /* a credential: kept in m->secrets, never in config.json
                                  * (core/secrets.h); read it with driver_secret() */
};

/* What a driver may use while it works: the toolkit. A driver never opens SSH, makes keys,
 * keeps its own clock or undoes a failed create itself (lifecycle calls its remove). */
struct driver_ctx {
    const struct mlog *log;
    const struct store *store;
    int timeout_ms;        /* bound for one driver call (state queries, API calls) */
    long long deadline_ms; /* CLOCK_MONOTONIC ms by which the whole operation must be done
                            * (0: none); driver_wait_until never waits past it */
    int stop_grace_ms;     /* stop: how long a clean shutdown may take before a power-off */
    /* create: the machine's public key ("ssh-ed25519 AAAA… name"), made (or copied from
     * SSHKeySource) by lifecycle before create; NULL for drivers without SSH. */
    const char *ssh_public_key;
    /* Runs a shell command on the machine over its pinned SSH connection (core's SSH client),
     * so drivers never open SSH themselves. */
    int (*ssh_run)(const struct driver_ctx *ctx, const struct machine *m, const char *cmd,
                   struct merr *err);
    const void *owner; /* the struct machine_ctx behind ssh_run */
    /* Programs a driver runs (VBoxManage, qemu, ...) go through this runner (util/command.h):
     * NULL is the real fork/exec; unit tests give a recorder and compare the argv sequence with
     * a golden file. */
    const struct cmd_runner *command;
    /* libcurl for the driver's API clients, made with driver_http_client. */
    const struct curl_api *curl;
};

/* An HTTP client (util/http.h) for a driver's API: opts (NULL: the defaults) with the context's
 * libcurl and log filled in. Requests should carry driver_http_deadline(ctx) as deadline_ms. */
struct http_client *driver_http_client(const struct driver_ctx *ctx,
                                       const struct http_client_opts *opts,
                                       struct merr *err) MUST_CHECK;
/* What is left of the operation's deadline for one request, in ms (0: none). */
long driver_http_deadline(const struct driver_ctx *ctx);

/* Polls until poll() says done (returns 1) or fails (< 0), bounded by limit_ms from now (0: no
 * limit of its own) and by ctx->deadline_ms, whichever comes first; then MERR_TIMEOUT
 * "WHAT did not happen within N s". poll runs at least once; the pause between polls grows
 * from 100 ms to 1 s. */
typedef int (*driver_poll_fn)(void *opaque, struct merr *err);
int driver_wait_until(const struct driver_ctx *ctx, int limit_ms, const char *what,
                      driver_poll_fn poll, void *opaque, struct merr *err) MUST_CHECK;

struct driver {
    const char *name;
    const char *description;
    const struct driver_flag *flags; /* terminated by an entry with name == NULL */
    bool uses_ssh;                   /* false for `none`: no SSH, no provisioning */
    /* Whether the driver can work here right now (create's default driver is the first usable
     * one that has this op). */
    bool (*usable)(const struct driver_ctx *ctx);

    int (*precreate_check)(const struct driver_ctx *ctx, struct machine *m, struct merr *err);
    /* On failure, create just returns: lifecycle then calls remove, which must clean up a
     * machine made half way (and one already gone) as well as a whole one. */
    int (*create)(const struct driver_ctx *ctx, struct machine *m, struct merr *err);
    int (*remove)(const struct driver_ctx *ctx, struct machine *m, struct merr *err);
    int (*start)(const struct driver_ctx *ctx, struct machine *m, struct merr *err);
    int (*stop)(const struct driver_ctx *ctx, struct machine *m, struct merr *err);
    int (*restart)(const struct driver_ctx *ctx, struct machine *m, struct merr *err);
    int (*kill)(const struct driver_ctx *ctx, struct machine *m, struct merr *err);
    /* VM drivers: boot the current machine-os image, keeping the data disk (`machine upgrade`,
     * before the engine is provisioned again). */
    int (*upgrade)(const struct driver_ctx *ctx, struct machine *m, struct merr *err);
    int (*get_state)(const struct driver_ctx *ctx, const struct machine *m,
                     enum machine_state *state, struct merr *err);
    /* Returns a malloc'd address; NULL op: the Driver.IPAddress field. */
    char *(*get_ip)(const struct driver_ctx *ctx, const struct machine *m, struct merr *err);
    /* Returns the engine URL; NULL op: tcp://IP:EnginePort. */
    char *(*get_url)(const struct driver_ctx *ctx, const struct machine *m, struct merr *err);
};

/* Lookup in a NULL-terminated table. */
const struct driver *driver_find(const struct driver *const *table, const char *name);

/* Wrappers that turn a NULL op into MERR_UNSUPPORTED "not supported by driver X". */
int driver_precreate_check(const struct driver *d, const struct driver_ctx *ctx, struct machine *m,
                           struct merr *err) MUST_CHECK;
int driver_create(const struct driver *d, const struct driver_ctx *ctx, struct machine *m,
                  struct merr *err) MUST_CHECK;
int driver_remove(const struct driver *d, const struct driver_ctx *ctx, struct machine *m,
                  struct merr *err) MUST_CHECK;
int driver_start(const struct driver *d, const struct driver_ctx *ctx, struct machine *m,
                 struct merr *err) MUST_CHECK;
int driver_stop(const struct driver *d, const struct driver_ctx *ctx, struct machine *m,
                struct merr *err) MUST_CHECK;
int driver_restart(const struct driver *d, const struct driver_ctx *ctx, struct machine *m,
                   struct merr *err) MUST_CHECK;
int driver_upgrade(const struct driver *d, const struct driver_ctx *ctx, struct machine *m,
                   struct merr *err) MUST_CHECK;
int driver_kill(const struct driver *d, const struct driver_ctx *ctx, struct machine *m,
                struct merr *err) MUST_CHECK;
int driver_get_state(const struct driver *d, const struct driver_ctx *ctx, const struct machine *m,
                     enum machine_state *state, struct merr *err) MUST_CHECK;
char *driver_get_ip(const struct driver *d, const struct driver_ctx *ctx, const struct machine *m,
                    struct merr *err) MUST_CHECK;
char *driver_get_url(const struct driver *d, const struct driver_ctx *ctx, const struct machine *m,
                     struct merr *err) MUST_CHECK;

/* Applies flag values to m->driver: explicit values win, then the env var, then the default.
 * `lookup` returns the explicit values given for a flag name (NULL if none). Missing required
 * flags and malformed ints/bools are MERR_INVALID. */
typedef char *const *(*driver_flag_lookup_fn)(void *opaque, const char *flag_name);
int driver_apply_flags(const struct driver *d, struct machine *m, driver_flag_lookup_fn lookup,
                       void *opaque, struct merr *err) MUST_CHECK;

/* Checks the values stored in m->driver against d's flag table: an int outside [min, max] or a
 * string not among choices is MERR_INVALID naming the flag. driver_apply_flags ends with it and
 * lifecycle_create runs it again (a machine built without the CLI). Absent values pass. */
int driver_check_flags(const struct driver *d, const struct machine *m, struct merr *err) MUST_CHECK;

/* Standard Driver-object keys shared by SSH drivers (as docker-machine's BaseDriver). */
#define DKEY_IP "IPAddress"
#define DKEY_SSH_USER "SSHUser"
#define DKEY_SSH_PORT "SSHPort"
#define DKEY_SSH_KEY "SSHKeyPath"     /* the machine's own copy, set by lifecycle */
#define DKEY_SSH_KEY_SOURCE "SSHKeySource" /* a user's key to copy instead of making one */
#define DKEY_ENGINE_PORT "EnginePort"

#endif
