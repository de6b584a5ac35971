/* dockerd's daemon-wide container defaults: --default-ulimit (every container gets the limits
 * it does not set itself, at start) and --log-opt (json-file options a container's LogConfig
 * does not set, merged at create so inspect shows them). Pure parsers and merges. */
#ifndef MACHINE_ENGINE_CONTAINER_DEFAULTS_H
#define MACHINE_ENGINE_CONTAINER_DEFAULTS_H

#include <jansson.h>
#include <stddef.h>

#include "cleanup.h"
#include "options.h"

struct merr;

/* "nofile=1024:2048" or "nproc=512" (hard = soft), as docker's units.ParseUlimit; -1 is
 * unlimited. MERR_INVALID with docker's wording. */
int ctr_default_ulimit_parse(const char *text, struct ctr_ulimit *out, struct merr *err) MUST_CHECK;
/* "max-size=10m" into opts (an object; a later key wins). */
int ctr_default_log_opt_parse(const char *text, json_t *opts, struct merr *err) MUST_CHECK;
/* The options together, checked as a container's LogConfig.Config of the default driver
 * (NULL: json-file) is. */
int ctr_default_log_opts_check(const char *driver, const json_t *opts, struct merr *err) MUST_CHECK;
/* A create body whose HostConfig.LogConfig gets the default driver (NULL: json-file) when it
 * names none, and the default options when its driver is the default one (keys it sets win),
 * as dockerd's mergeAndVerifyLogConfig. A new reference: the body itself when nothing
 * changes. */
json_t *ctr_log_defaults_apply(const json_t *body, const char *driver, const json_t *opts);
/* The limits of a start: the container's own, then each default for another resource. out
 * holds n_own + n_defaults entries; returns the count used. */
size_t ctr_ulimits_merge(const struct ctr_ulimit *own, size_t n_own,
                         const struct ctr_ulimit *defaults, size_t n_defaults,
                         struct ctr_ulimit *out);

#endif
