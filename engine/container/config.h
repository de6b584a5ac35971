/* A container's configuration: the create request (Config + HostConfig) validated and merged
 * with the image's config. Pure: JSON in, struct out. */
#ifndef MACHINE_ENGINE_CONTAINER_CONFIG_H
#define MACHINE_ENGINE_CONTAINER_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "cleanup.h"
#include "lifecycle.h"
#include "options.h"

struct merr;

enum restart_policy { RESTART_NO, RESTART_ALWAYS, RESTART_ON_FAILURE, RESTART_UNLESS_STOPPED };

struct ctr_config {
    /* Config */
    char *image;       /* as the user wrote it */
    char **entrypoint; /* NULL: not given (use the image's) */
    char **cmd;        /* NULL: not given */
    char **env;        /* NULL-terminated, never NULL */
    char *working_dir;
    char *user;
    char *hostname;
    bool tty, open_stdin, stdin_once;
    bool attach_stdin, attach_stdout, attach_stderr;
    char *stop_signal;
    int stop_timeout; /* seconds; -1: not given */
    json_t *labels;   /* object of strings, never NULL */
    /* HostConfig */
    bool auto_remove, privileged, readonly_rootfs;
    char *network_mode; /* "default", "none", "host", "bridge", ... */
    int64_t memory, memory_swap, nano_cpus, cpu_quota, cpu_period, cpu_shares, pids_limit;
    char **cap_add, **cap_drop;
    enum restart_policy restart;
    int restart_max_retries;
    struct ctr_options opts;   /* ulimits, security options, namespaces, devices, ... */
    bool init;                 /* HostConfig.Init: our init as PID 1 */
    struct ctr_log_config log; /* HostConfig.LogConfig */
    /* The request as sent, echoed by inspect. */
    json_t *raw_config;
    json_t *raw_host_config;
};

void ctr_config_free(struct ctr_config *c);
DEFINE_CLEANUP(struct ctr_config, ctr_config_free)

/* Parses a POST /containers/create body. MERR_INVALID with docker's wording for bad values. */
struct ctr_config *ctr_config_from_create(const json_t *body, struct merr *err) MUST_CHECK;

/* Serialises for the container's on-disk record and reads it back. */
json_t *ctr_config_to_json(const struct ctr_config *c);
struct ctr_config *ctr_config_from_json(const json_t *j, struct merr *err) MUST_CHECK;

/* What runs: the merge of the create request and the image config ("config" object of the
 * image's config blob: Env, Entrypoint, Cmd, WorkingDir, User, Labels, StopSignal). */
struct ctr_process_plan {
    char **argv;  /* Entrypoint + Cmd, never empty on success */
    char **env;   /* image env overridden by create env, PATH defaulted; a bare "K" (no '=')
                   * stays, as in dockerd's Config.Env, and unsets K for the process */
    char *cwd;    /* "/" by default */
    char *user;   /* "" for root */
    json_t *labels;
    char *stop_signal; /* "SIGTERM" by default */
    struct ctr_health_config health; /* Config.Healthcheck over the image's */
};
void ctr_process_plan_release(struct ctr_process_plan *p);
int ctr_plan(const struct ctr_config *c, const json_t *image_config, struct ctr_process_plan *out,
             struct merr *err) MUST_CHECK;

/* The process environment from a plan's (or an exec's): the bare "K" entries, which only
 * unset K, are taken out, in place. */
void ctr_env_drop_unset(char **env);
/* dockerd's ReplaceOrAppendEnvValues: "K=V" in overrides replaces K in env or is appended,
 * a bare "K" removes K. Returns env (reallocated). */
char **ctr_env_override(char **env, char *const *overrides);

/* "SIGTERM", "TERM", "15" → 15; -1 if unknown. */
int ctr_signal_parse(const char *s);

/* Docker container names: [a-zA-Z0-9][a-zA-Z0-9_.-]+ (a leading '/' is allowed and dropped). */
int ctr_name_validate(const char *name, struct merr *err) MUST_CHECK;

#endif
