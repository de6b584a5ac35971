/* The `filters` query parameter: {"name":{"value":true}} or legacy {"name":["value"]}, as
 * moby's filters.Args. Its own module so that events, volumes and the filters of lists read it
 * without including the API. */
#ifndef MACHINE_ENGINE_FILTER_ARGS_H
#define MACHINE_ENGINE_FILTER_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#include "cleanup.h"

struct merr;

struct api_filter {
    char *name;
    char **values; /* NULL-terminated */
};
struct api_filters {
    struct api_filter *items;
    size_t n;
};
MUST_CHECK int api_filters_parse(const char *json, struct api_filters *out, struct merr *err);
void api_filters_release(struct api_filters *f);
/* NULL-terminated values of a filter, NULL when absent. */
char *const *api_filters_get(const struct api_filters *f, const char *name);
/* True when the filter is absent or lists value. */
bool api_filters_match(const struct api_filters *f, const char *name, const char *value);
/* MERR_INVALID "invalid filter 'x'" for a name not in allowed (NULL-terminated). */
MUST_CHECK int api_filters_validate(const struct api_filters *f, const char *const *allowed,
                                    struct merr *err);

#endif
