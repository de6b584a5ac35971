/* The process-lifecycle options of a container, parsed from the create request (and the image
 * config): LogConfig, Healthcheck, Init. Pure parsers taking JSON or strings. */
#ifndef MACHINE_ENGINE_CONTAINER_LIFECYCLE_H
#define MACHINE_ENGINE_CONTAINER_LIFECYCLE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "cleanup.h"

struct merr;

/* ---- LogConfig ---- */
enum ctr_log_driver { CTR_LOG_JSON_FILE, CTR_LOG_NONE };
struct ctr_log_config {
    enum ctr_log_driver driver;
    int64_t max_size; /* bytes per file; -1: unlimited */
    int max_file;     /* files kept, the current one included (>= 1) */
};
/* HostConfig.LogConfig ({"Type","Config":{opt:value}}; NULL or Type "" → json-file, unlimited).
 * Refuses an unknown driver or option with dockerd's wording (MERR_INVALID). Reusable for the
 * daemon's --log-driver/--log-opt defaults. */
int ctr_log_config_parse(const json_t *log_config, struct ctr_log_config *out,
                         struct merr *err) MUST_CHECK;
/* docker's units.RAMInBytes: "10", "10k", "1.5m", "2g", "3MB", "4KiB" → bytes (1024-based). */
int ctr_parse_ram_bytes(const char *s, int64_t *out, struct merr *err) MUST_CHECK;
/* "<path>.N" of rotated file N (1 = newest rotated); malloc'd. */
char *ctr_log_rotated_path(const char *path, int n);

/* ---- Healthcheck ---- */
enum ctr_health_kind { CTR_HEALTH_NONE, CTR_HEALTH_CMD, CTR_HEALTH_SHELL };
struct ctr_health_config {
    enum ctr_health_kind kind;
    char **argv;         /* the command run by exec (CMD-SHELL: /bin/sh -c TEXT) */
    int64_t interval_ns; /* defaults applied: 30 s */
    int64_t timeout_ns;  /* 30 s */
    int64_t start_period_ns; /* 0 */
    int64_t start_interval_ns; /* 5 s */
    int retries;         /* 3 */
};
void ctr_health_config_release(struct ctr_health_config *h);
/* Config.Healthcheck merged over the image's Healthcheck as dockerd does (the container's Test
 * replaces the image's; zero durations/retries take the image's, then the defaults).
 * Either may be NULL. kind NONE when there is no check (or Test is ["NONE"]). */
int ctr_health_config_parse(const json_t *create, const json_t *image, struct ctr_health_config *out,
                            struct merr *err) MUST_CHECK;

/* The effective check as a Healthcheck object (null without one): persisted, and read back by
 * ctr_health_config_parse(j, NULL). */
json_t *ctr_health_config_to_json(const struct ctr_health_config *h);

/* Validates Config.Healthcheck at create (durations >= 1 ms or 0, retries >= 0, a known Test). */
int ctr_health_validate(const json_t *hc, struct merr *err) MUST_CHECK;

enum ctr_health_status { CTR_HEALTH_UNSET, CTR_HEALTH_STARTING, CTR_HEALTH_HEALTHY,
                         CTR_HEALTH_UNHEALTHY };
/* State.Health: Log holds the last CTR_HEALTH_LOG_MAX probes ({Start, End, ExitCode, Output}). */
struct ctr_health_state {
    enum ctr_health_status status;
    int failing_streak;
    json_t *log; /* array, or NULL before the first probe */
};
const char *ctr_health_status_name(enum ctr_health_status s); /* "starting", "healthy", ... */
/* One probe's result applied as dockerd does: success → healthy, streak 0; a failure counts
 * (unless still starting within the start period) and makes it unhealthy at `retries`.
 * Returns true when the status changed (a health_status event is due). */
bool ctr_health_apply(struct ctr_health_state *h, const struct ctr_health_config *cfg,
                      bool in_start_period, int exit_code, const char *start, const char *end,
                      const char *output);
json_t *ctr_health_state_json(const struct ctr_health_state *h);
/* Reads State.Health back (persisted records); unset when j is not a health object. */
void ctr_health_state_from_json(const json_t *j, struct ctr_health_state *h);

#define CTR_HEALTH_LOG_MAX 5
#define CTR_HEALTH_OUTPUT_MAX 4096

/* ---- attach detach keys ---- */
#define CTR_DETACH_KEYS_MAX 16
/* "ctrl-p,ctrl-q" (docker's default), "a,ctrl-@", ... → bytes. MERR_INVALID otherwise. */
int ctr_detach_keys_parse(const char *spec, unsigned char *out, size_t *n, struct merr *err) MUST_CHECK;

#endif
