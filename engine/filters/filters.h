/* The `filters` of GET /images/json and GET /containers/json, applied exactly as dockerd does
 * (moby daemon/images/image_list.go, daemon/list.go). Pure: lists in (the entries the API
 * answers with, plus a few facts under "_facts"), lists out; what needs a store (resolving an
 * image or container reference) is done by the caller and passed in. */
#ifndef MACHINE_ENGINE_FILTERS_H
#define MACHINE_ENGINE_FILTERS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "cleanup.h"

struct api_filters;
struct merr;

/* ---- moby's filters.Args helpers ---- */

/* Go's path.Match: '*' and '?' stop at '/', [classes] with ranges and '^', '\\' escapes.
 * MERR_INVALID "syntax error in pattern" for a malformed pattern (checked whole). */
int flt_path_match(const char *pattern, const char *name, bool *out, struct merr *err) MUST_CHECK;
/* Args.Match: a value equal to source, or one that matches it as an unanchored regular
 * expression (values that do not compile are skipped). True when values is NULL. */
bool flt_match(char *const *values, const char *source);
/* Args.MatchKVList: every "key" or "key=value" is in labels (an object of strings). */
bool flt_match_labels(char *const *values, const json_t *labels);
/* Args.GetBoolOrDefault: "1"/"true" or "0"/"false"; both or neither is
 * MERR_INVALID "invalid filter 'key=[v ...]'". */
int flt_bool(const struct api_filters *f, const char *key, bool def, bool *out,
             struct merr *err) MUST_CHECK;
/* docker's timestamp values (until=, since=): RFC 3339 dates with or without time and zone,
 * Unix seconds with an optional fraction, or a Go duration ("10m", "1h30m") before now_ns.
 * MERR_INVALID otherwise. */
int flt_parse_timestamp(const char *value, int64_t now_ns, int64_t *out_ns,
                        struct merr *err) MUST_CHECK;

/* ---- images ---- */

struct flt_images {
    bool all;
    bool dangling_set, dangling_only;
    int64_t before_s; /* keep images created strictly before (seconds; 0: no bound) */
    int64_t since_s;  /* ... strictly after */
    char *const *reference; /* glob patterns (NULL: none) */
    char *const *label;
};
/* Validates f (dangling, label, before, since, reference, until) and fills o; before/since
 * name images, so their creation times come from created_of (the caller's store):
 * < 0 with err set (MERR_NOT_FOUND "No such image: x") when one is unknown. */
typedef int (*flt_image_created_fn)(void *data, const char *ref, int64_t *created_s,
                                    struct merr *err);
int flt_images_prepare(const struct api_filters *f, bool all, int64_t now_ns,
                       flt_image_created_fn created_of, void *data, struct flt_images *o,
                       struct merr *err) MUST_CHECK;
/* entries: GET /images/json objects (Id, ParentId, RepoTags, RepoDigests, Created, Labels).
 * Returns the kept entries (RepoTags/RepoDigests narrowed to the references that matched a
 * reference filter), newest first; api_ge_143 picks [] over "<none>:<none>" for dangling
 * images. */
json_t *flt_images_apply(const json_t *entries, const struct flt_images *o, bool api_ge_143,
                         struct merr *err) MUST_CHECK;
/* IDs of image id and every image descending from it through ParentId (the ancestor
 * filter); appended to ids (a JSON object used as a set). */
void flt_image_descendants(const json_t *entries, const char *id, json_t *ids);

/* ---- prune (containers, images) ---- */

/* Validates f against accepted (NULL-terminated) and reads its one `until` (0: none). */
int flt_prune_prepare(const struct api_filters *f, const char *const *accepted, int64_t now_ns,
                      int64_t *until_ns, struct merr *err) MUST_CHECK;
/* moby's matchLabels: every label= matches and not all label!= do. */
bool flt_prune_labels(const struct api_filters *f, const json_t *labels);

/* ---- containers ---- */

/* Each entry is a GET /containers/json object plus "_facts": {"Running": bool, "Started":
 * bool (StartedAt is set), "ExitCode": int, "Health": "none"|"starting"|...}, newest first. */
struct flt_containers {
    bool all;
    long long limit; /* <= 0: none */
    const char *before_id, *since_id; /* resolved by the caller (NULL: none) */
    const json_t *ancestor_ids;       /* object used as a set; NULL: no ancestor filter */
    const struct api_filters *f;
};
/* Validates every filter name and value as dockerd: MERR_INVALID with its wording. */
int flt_containers_validate(const struct api_filters *f, struct merr *err) MUST_CHECK;
/* The kept entries, "_facts" removed. */
json_t *flt_containers_apply(const json_t *entries, const struct flt_containers *o,
                             struct merr *err) MUST_CHECK;

#endif
