/* Every field of a POST /containers/create body (Config, HostConfig, NetworkingConfig's
 * endpoint settings, API 1.41-1.45) and what the engine does with it. A field the engine does
 * not carry out is refused when set, never dropped: docs/engine-api.md lists the same table and
 * a unit test holds the two together. Pure. */
#ifndef MACHINE_ENGINE_CONTAINER_FIELDS_H
#define MACHINE_ENGINE_CONTAINER_FIELDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "cleanup.h"

struct merr;

enum ctr_field_use {
    CTR_FIELD_HONOURED, /* carried out (its own parser refuses values it cannot do) */
    CTR_FIELD_REFUSED,  /* a 400 naming the field when set to anything but its default */
    CTR_FIELD_IGNORED,  /* dockerd ignores it on Linux too (output-only, Windows-only, build-only) */
};

struct ctr_field {
    const char *section; /* "Config", "HostConfig", "EndpointSettings" */
    const char *name;
    enum ctr_field_use use;
    /* REFUSED only: a value (JSON text) that also counts as the default, e.g. "\"runc\"". */
    const char *also_default;
    const char *hint; /* REFUSED only: appended to the message (what to do instead) */
};

extern const struct ctr_field ctr_create_fields[];
extern const size_t ctr_create_fields_n;

const char *ctr_field_use_name(enum ctr_field_use use);

/* Whether v is a JSON default: null, false, 0, "", [] or {} (and arrays of zeros). */
bool ctr_field_is_default(const json_t *v);

/* dockerd's JSON decoder matches names case-insensitively (docker-py sends
 * HostConfig.CPURealtimePeriod): a known field spelt in another case is renamed to the table's
 * spelling, in Config and HostConfig, unless that spelling is there too. */
void ctr_fields_canonicalize(json_t *body);

/* Refuses (MERR_INVALID, "… is not supported by machine-engine") a create body that sets a
 * refused field or a field the table does not know. A known name in another case (left by
 * ctr_fields_canonicalize next to the right one) is refused too rather than dropped.
 * Config.Runtime (docker-py puts its runtime there) is left to the parser, which checks it as
 * HostConfig.Runtime. */
int ctr_fields_check(const json_t *body, struct merr *err) MUST_CHECK;

#endif
