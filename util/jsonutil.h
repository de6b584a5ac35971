/* Cleanup for jansson values: `auto_json json_t *v = json_...();` drops the reference at the end
 * of the scope (hand it out with steal_pointer). Header-only: a file that includes it uses
 * jansson already. */
#ifndef MACHINE_JSONUTIL_H
#define MACHINE_JSONUTIL_H

#include <jansson.h>

#include "cleanup.h"

DEFINE_CLEANUP(json_t, json_decref)
#define auto_json __attribute__((cleanup(cleanup_json_decrefp)))

#endif
