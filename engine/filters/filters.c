/* moby's filters.Args semantics and the image list filters. */
#include "filters.h"

#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters/args.h"
#include "container/logfile.h"
#include "error.h"
#include "fsutil.h"
#include "image/reference.h"

/* ---- path.Match ---- */

/* One element of a [class] at *p: a byte, or an escaped one. -1: malformed. */
static int class_char(const char **p, unsigned char *out)
{
    const char *s = *p;
    if (*s == '\0' || *s == '-' || *s == ']')
        return -1;
    if (*s == '\\') {
        s++;
        if (*s == '\0')
            return -1;
    }
    *out = (unsigned char)*s;
    *p = s + 1;
    return 0;
}

/* Parses the class after '[' at *p (moved past ']'); *hit: c is in it. -1: malformed. */
static int class_match(const char **p, unsigned char c, bool *hit)
{
    const char *s = *p;
    bool negated = *s == '^';
    if (negated)
        s++;
    bool in = false;
    int nrange = 0;
    for (;;) {
        if (*s == ']' && nrange > 0) {
            s++;
            break;
        }
        unsigned char lo, hi;
        if (class_char(&s, &lo) < 0)
            return -1;
        hi = lo;
        if (*s == '-') {
            s++;
            if (class_char(&s, &hi) < 0)
                return -1;
        }
        if (lo <= c && c <= hi)
            in = true;
        nrange++;
    }
    *p = s;
    *hit = in != negated;
    return 0;
}

/* Checks the whole pattern's syntax, as Go does even after a mismatch. */
static bool pattern_valid(const char *p)
{
    while (*p != '\0') {
        if (*p == '\\') {
            if (p[1] == '\0')
                return false;
            p += 2;
        } else if (*p == '[') {
            p++;
            bool hit;
            if (class_match(&p, 'a', &hit) < 0)
                return false;
        } else {
            p++;
        }
    }
    return true;
}

static bool glob_here(const char *p, const char *s, unsigned depth)
{
    if (depth > 64)
        return false; /* bounds the backtracking of many stars */
    while (*p != '\0') {
        switch (*p) {
        case '*':
            while (*p == '*')
                p++;
            for (;;) {
                if (glob_here(p, s, depth + 1))
                    return true;
                if (*s == '\0' || *s == '/')
                    return false;
                s++;
            }
        case '?':
            if (*s == '\0' || *s == '/')
                return false;
            p++;
            s++;
            break;
        case '[': {
            if (*s == '\0')
                return false;
            p++;
            bool hit = false;
            if (class_match(&p, (unsigned char)*s, &hit) < 0 || !hit)
                return false;
            s++;
            break;
        }
        case '\\':
            p++;
            /* fall through */
        default:
            if (*p != *s)
                return false;
            p++;
            s++;
        }
    }
    return *s == '\0';
}

int flt_path_match(const char *pattern, const char *name, bool *out, struct merr *err)
{
    *out = false;
    if (!pattern_valid(pattern))
        return merr_set(err, MERR_INVALID, 0, "syntax error in pattern");
    *out = glob_here(pattern, name, 0);
    return 0;
}

/* ---- filters.Args ---- */

bool flt_match(char *const *values, const char *source)
{
    if (values == NULL)
        return true;
    if (source == NULL)
        return false;
    for (size_t i = 0; values[i] != NULL; i++) {
        if (strcmp(values[i], source) == 0)
            return true;
        regex_t re;
        if (regcomp(&re, values[i], REG_EXTENDED | REG_NOSUB) != 0)
            continue;
        bool hit = regexec(&re, source, 0, NULL, 0) == 0;
        regfree(&re);
        if (hit)
            return true;
    }
    return false;
}

bool flt_match_labels(char *const *values, const json_t *labels)
{
    if (values == NULL || values[0] == NULL)
        return true;
    if (!json_is_object(labels) || json_object_size(labels) == 0)
        return false;
    for (size_t i = 0; values[i] != NULL; i++) {
        const char *eq = strchr(values[i], '=');
        size_t klen = eq != NULL ? (size_t)(eq - values[i]) : strlen(values[i]);
        json_t *v = json_object_getn(labels, values[i], klen);
        if (v == NULL)
            return false;
        if (eq != NULL && (!json_is_string(v) || strcmp(json_string_value(v), eq + 1) != 0))
            return false;
    }
    return true;
}

/* "[a b]": Go's %s of a []string. */
static char *values_text(char *const *values)
{
    size_t len = 3;
    for (size_t i = 0; values != NULL && values[i] != NULL; i++)
        len += strlen(values[i]) + 1;
    char *s = xcalloc(len, 1);
    strcat(s, "[");
    for (size_t i = 0; values != NULL && values[i] != NULL; i++) {
        if (i > 0)
            strcat(s, " ");
        strcat(s, values[i]);
    }
    strcat(s, "]");
    return s;
}

int flt_bool(const struct api_filters *f, const char *key, bool def, bool *out, struct merr *err)
{
    *out = def;
    char *const *values = api_filters_get(f, key);
    if (values == NULL)
        return 0;
    bool is_true = false, is_false = false;
    for (size_t i = 0; values[i] != NULL; i++) {
        is_true |= strcmp(values[i], "1") == 0 || strcmp(values[i], "true") == 0;
        is_false |= strcmp(values[i], "0") == 0 || strcmp(values[i], "false") == 0;
    }
    if (is_true == is_false) {
        auto_free char *text = values_text(values);
        return merr_set(err, MERR_INVALID, 0, "invalid filter '%s=%s'", key, text);
    }
    *out = is_true;
    return 0;
}

/* Go's time.ParseDuration for what people write: "10m", "1h30m", "1.5h", "300ms". */
static int parse_duration(const char *s, int64_t *ns)
{
    static const struct {
        const char *unit;
        double ns;
    } units[] = { { "ns", 1 },     { "us", 1e3 },   { "µs", 1e3 },    { "ms", 1e6 },
                  { "s", 1e9 },    { "m", 60e9 },   { "h", 3600e9 } };
    if (*s == '\0')
        return -1;
    double total = 0;
    while (*s != '\0') {
        char *end;
        if (!isdigit((unsigned char)*s) && *s != '.')
            return -1;
        double v = strtod(s, &end);
        if (end == s)
            return -1;
        s = end;
        size_t best = 0;
        int found = -1;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            size_t n = strlen(units[i].unit);
            if (strncmp(s, units[i].unit, n) == 0 && n > best) {
                best = n;
                found = (int)i;
            }
        }
        if (found < 0)
            return -1;
        total += v * units[found].ns;
        s += best;
    }
    *ns = (int64_t)total;
    return 0;
}

int flt_parse_timestamp(const char *value, int64_t now_ns, int64_t *out_ns, struct merr *err)
{
    int64_t d;
    if (value != NULL && parse_duration(value, &d) == 0) {
        *out_ns = now_ns - d;
        return 0;
    }
    /* a bare date, as docker's timetypes accept */
    if (value != NULL && strlen(value) == 10 && value[4] == '-' && value[7] == '-') {
        auto_free char *full = xasprintf("%sT00:00:00Z", value);
        return parse_timestamp(full, out_ns, err);
    }
    return parse_timestamp(value, out_ns, err);
}

/* ---- images ---- */

static const char *const image_filter_names[] = { "dangling", "label",     "before",
                                                  "since",    "reference", "until", NULL };

int flt_images_prepare(const struct api_filters *f, bool all, int64_t now_ns,
                       flt_image_created_fn created_of, void *data, struct flt_images *o,
                       struct merr *err)
{
    memset(o, 0, sizeof *o);
    o->all = all;
    if (api_filters_validate(f, image_filter_names, err) < 0)
        return -1;
    o->dangling_set = api_filters_get(f, "dangling") != NULL;
    if (flt_bool(f, "dangling", false, &o->dangling_only, err) < 0)
        return -1;
    char *const *v;
    if ((v = api_filters_get(f, "before")) != NULL)
        for (size_t i = 0; v[i] != NULL; i++) {
            int64_t t = 0;
            if (created_of(data, v[i], &t, err) < 0)
                return -1;
            if (o->before_s == 0 || t < o->before_s)
                o->before_s = t;
        }
    if ((v = api_filters_get(f, "until")) != NULL)
        for (size_t i = 0; v[i] != NULL; i++) {
            int64_t ns = 0;
            if (flt_parse_timestamp(v[i], now_ns, &ns, err) < 0)
                return merr_prefix(err, "invalid value for 'until' filter");
            /* image times are whole seconds: keep what was created before ns */
            int64_t s = ns / 1000000000 + (ns % 1000000000 != 0);
            if (o->before_s == 0 || s < o->before_s)
                o->before_s = s;
        }
    if ((v = api_filters_get(f, "since")) != NULL)
        for (size_t i = 0; v[i] != NULL; i++) {
            int64_t t = 0;
            if (created_of(data, v[i], &t, err) < 0)
                return -1;
            if (t > o->since_s)
                o->since_s = t;
        }
    o->reference = api_filters_get(f, "reference");
    o->label = api_filters_get(f, "label");
    return 0;
}

/* The four names dockerd matches a reference pattern against: familiar string, familiar
 * name, full name with tag (or digest), full name. */
static int reference_matches(const char *familiar, char *const *patterns, bool *hit,
                             struct merr *err)
{
    *hit = false;
    struct image_ref ref;
    struct merr perr = MERR_INIT;
    char targets[4][2 * REF_NAME_MAX + DIGEST_BUF_LEN] = { { 0 } };
    snprintf(targets[0], sizeof targets[0], "%s", familiar);
    if (image_ref_parse(familiar, &ref, &perr) == 0) {
        char repo[REF_NAME_MAX + 2], fam[REF_NAME_MAX + 2];
        image_ref_repo(&ref, repo, sizeof repo);
        image_ref_familiar_repo(&ref, fam, sizeof fam);
        snprintf(targets[1], sizeof targets[1], "%s", fam);
        if (ref.digest[0] != '\0')
            snprintf(targets[2], sizeof targets[2], "%s@%s", repo, ref.digest);
        else
            snprintf(targets[2], sizeof targets[2], "%s:%s", repo, ref.tag);
        snprintf(targets[3], sizeof targets[3], "%s", repo);
    }
    for (size_t p = 0; patterns[p] != NULL && !*hit; p++)
        for (size_t t = 0; t < 4 && !*hit; t++) {
            if (targets[t][0] == '\0')
                continue;
            if (flt_path_match(patterns[p], targets[t], hit, err) < 0)
                return -1;
        }
    return 0;
}

/* Copies the references of list that match the reference filter (all without one). */
static int narrow_refs(const json_t *list, char *const *patterns, json_t *out, struct merr *err)
{
    size_t i;
    json_t *r;
    json_array_foreach(list, i, r) {
        const char *s = json_string_value(r);
        if (s == NULL || strcmp(s, "<none>:<none>") == 0 || strcmp(s, "<none>@<none>") == 0)
            continue;
        bool hit = true;
        if (patterns != NULL && reference_matches(s, patterns, &hit, err) < 0)
            return -1;
        if (hit)
            json_array_append_new(out, json_string(s));
    }
    return 0;
}

static bool has_child(const json_t *entries, const char *id)
{
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) {
        const char *parent = json_string_value(json_object_get(e, "ParentId"));
        if (parent != NULL && strcmp(parent, id) == 0)
            return true;
    }
    return false;
}

/* One entry, or NULL when it is filtered out (*failed on an error). */
static json_t *image_keep(const json_t *entries, const json_t *e, const struct flt_images *o,
                          bool api_ge_143, bool *failed, struct merr *err)
{
    const char *id = json_string_value(json_object_get(e, "Id"));
    int64_t created = json_integer_value(json_object_get(e, "Created"));
    if (id == NULL || (o->dangling_only && has_child(entries, id)))
        return NULL;
    if ((o->before_s != 0 && !(created < o->before_s)) ||
        (o->since_s != 0 && !(created > o->since_s)))
        return NULL;
    if (o->label != NULL && !flt_match_labels(o->label, json_object_get(e, "Labels")))
        return NULL;
    json_t *tags = json_array(), *digests = json_array();
    if (narrow_refs(json_object_get(e, "RepoTags"), o->reference, tags, err) < 0 ||
        narrow_refs(json_object_get(e, "RepoDigests"), o->reference, digests, err) < 0) {
        *failed = true;
        json_decref(tags);
        json_decref(digests);
        return NULL;
    }
    bool keep = true;
    if (json_array_size(tags) == 0 && json_array_size(digests) == 0) {
        if (!o->all && has_child(entries, id))
            keep = false; /* an intermediate image */
        else if (o->dangling_set && !o->dangling_only)
            keep = false;
        else if (o->reference != NULL)
            keep = false;
        else if (!api_ge_143) {
            json_array_append_new(tags, json_string("<none>:<none>"));
            json_array_append_new(digests, json_string("<none>@<none>"));
        }
    } else if (o->dangling_only && json_array_size(tags) > 0) {
        keep = false;
    }
    if (!keep) {
        json_decref(tags);
        json_decref(digests);
        return NULL;
    }
    json_t *copy = json_copy((json_t *)e);
    json_object_set_new(copy, "RepoTags", tags);
    json_object_set_new(copy, "RepoDigests", digests);
    return copy;
}

static int cmp_created_desc(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "Created"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "Created"));
    return x < y ? 1 : x > y ? -1 : 0;
}

json_t *flt_images_apply(const json_t *entries, const struct flt_images *o, bool api_ge_143,
                         struct merr *err)
{
    size_t n = json_array_size(entries);
    json_t **kept = xcalloc(n + 1, sizeof *kept);
    size_t k = 0;
    bool failed = false;
    for (size_t i = 0; i < n && !failed; i++) {
        json_t *e = image_keep(entries, json_array_get(entries, i), o, api_ge_143, &failed, err);
        if (e != NULL)
            kept[k++] = e;
    }
    json_t *out = failed ? NULL : json_array();
    qsort(kept, k, sizeof *kept, cmp_created_desc);
    for (size_t i = 0; i < k; i++) {
        if (out != NULL)
            json_array_append(out, kept[i]);
        json_decref(kept[i]);
    }
    free(kept);
    return out;
}

void flt_image_descendants(const json_t *entries, const char *id, json_t *ids)
{
    if (id == NULL || json_object_get(ids, id) != NULL)
        return;
    json_object_set_new(ids, id, json_true());
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) {
        const char *parent = json_string_value(json_object_get(e, "ParentId"));
        if (parent != NULL && strcmp(parent, id) == 0)
            flt_image_descendants(entries, json_string_value(json_object_get(e, "Id")), ids);
    }
}

/* ---- prune ---- */

int flt_prune_prepare(const struct api_filters *f, const char *const *accepted, int64_t now_ns,
                      int64_t *until_ns, struct merr *err)
{
    *until_ns = 0;
    if (api_filters_validate(f, accepted, err) < 0)
        return -1;
    char *const *until = api_filters_get(f, "until");
    if (until == NULL)
        return 0;
    if (until[0] != NULL && until[1] != NULL)
        return merr_set(err, MERR_INVALID, 0, "more than one until filter specified");
    return until[0] == NULL ? 0 : flt_parse_timestamp(until[0], now_ns, until_ns, err);
}

bool flt_prune_labels(const struct api_filters *f, const json_t *labels)
{
    if (!flt_match_labels(api_filters_get(f, "label"), labels))
        return false;
    char *const *not = api_filters_get(f, "label!");
    return not == NULL || !flt_match_labels(not, labels);
}
