/* A container as the engine keeps it: identity, configuration, plan and state.
 * Rendering for the API (ps, inspect) is pure and lives in format.c. */
#ifndef MACHINE_ENGINE_CONTAINER_H
#define MACHINE_ENGINE_CONTAINER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"

enum ctr_status {
    CTR_CREATED,
    CTR_RUNNING,
    CTR_PAUSED,
    CTR_RESTARTING,
    CTR_REMOVING,
    CTR_EXITED,
    CTR_DEAD,
};
const char *ctr_status_name(enum ctr_status s); /* "created", "running", ... */

struct ctr_state {
    enum ctr_status status;
    int pid;
    int exit_code;
    bool oom_killed;
    char *error;
    int64_t started_ns;  /* unix time in ns, 0 = never */
    int64_t finished_ns;
    int restart_count;
    bool stopped_by_user; /* stop/kill through the API: restart policies leave it alone */
    uint64_t rt_start_time; /* /proc/PID/stat start time, to re-find the process */
    struct ctr_health_state health; /* State.Health (health.c) */
};

#define CTR_ID_LEN 64

struct container {
    char id[CTR_ID_LEN + 1];
    char *name; /* without the leading '/' */
    int64_t created_ns;
    char *image_id; /* "sha256:..." */
    char *image_ref; /* what the user asked for, for ps's Image column */
    struct ctr_config *config;
    struct ctr_process_plan plan;
    struct ctr_state state;
    /* Resolved mounts (mnt_spec_to_json entries + Source/Driver for volumes), fixed at create;
     * may be NULL for records written before volumes existed. */
    json_t *mounts;
};

void container_free(struct container *c);

/* Persistence form (config + state), pure. */
json_t *container_to_json(const struct container *c);
struct container *container_from_json(const json_t *j, struct merr *err) MUST_CHECK;

/* ---- rendering (format.c) ---- */
char *fmt_rfc3339_nano(int64_t unix_ns);
/* docker's units.HumanDuration: "Less than a second", "5 seconds", "About a minute", ... */
char *fmt_human_duration(int64_t seconds);
/* ps's Status column: "Up 5 seconds", "Exited (0) 3 minutes ago", "Created", ... */
char *ctr_status_text(const struct ctr_state *st, int64_t now_ns);
/* GET /containers/json entry and GET /containers/{id}/json body. */
json_t *ctr_ps_json(const struct container *c, int64_t now_ns);
json_t *ctr_inspect_json(const struct container *c, const char *rootfs, const char *log_path);
/* LogConfig (json-file by default), Init and the effective Healthcheck in inspect's Config and
 * HostConfig (lifecycle.c); State.Health is added by the manager. */
void ctr_lifecycle_inspect(const struct container *c, json_t *config, json_t *host_config,
                           json_t *state);
/* The "Mounts" array of inspect and ps (mounts.c). */
json_t *ctr_mounts_public(const json_t *mounts);

#endif
