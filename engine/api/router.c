/* Route table and Docker API version negotiation. */
#include "api-priv.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* Longer paths are answered with 404 without trying to match them, which
 * also bounds the backtracking of {var} segments. */
#define API_MATCH_PATH_MAX 4096

struct router_entry {
    struct api_route route; /* method and pattern owned */
    void *data;
    size_t literal_len;
};

struct api_router {
    struct router_entry *entries;
    size_t n;
};

/* ---- versions ------------------------------------------------------------ */

static int parse_uint(const char **p, unsigned *out)
{
    if (!isdigit((unsigned char)**p))
        return -1;
    unsigned long v = 0;
    while (isdigit((unsigned char)**p)) {
        v = v * 10 + (unsigned long)(**p - '0');
        if (v > 100000)
            return -1;
        (*p)++;
    }
    *out = (unsigned)v;
    return 0;
}

int api_version_parse(const char *s, struct api_version *out, struct merr *err)
{
    const char *p = s;
    struct api_version v = { 0, 0 };
    if (parse_uint(&p, &v.major) < 0)
        goto bad;
    if (*p == '.') {
        p++;
        if (parse_uint(&p, &v.minor) < 0)
            goto bad;
    }
    if (*p != '\0')
        goto bad;
    *out = v;
    return 0;
bad:
    return merr_set(err, MERR_INVALID, 0, "invalid API version '%s'", s);
}

int api_version_cmp(struct api_version a, struct api_version b)
{
    if (a.major != b.major)
        return a.major < b.major ? -1 : 1;
    if (a.minor != b.minor)
        return a.minor < b.minor ? -1 : 1;
    return 0;
}

int api_path_split_version(const char *path, char *version, size_t version_size,
                           const char **rest, bool *has_version, struct merr *err)
{
    *has_version = false;
    *rest = path;
    version[0] = '\0';
    if (strncmp(path, "/v", 2) != 0 || !isdigit((unsigned char)path[2]))
        return 0;
    size_t n = strspn(path + 2, "0123456789.");
    if (path[2 + n] != '/') /* "/v1.41" alone, or "/v1x/..." */
        return 0;
    if (n >= version_size)
        return merr_set(err, MERR_INVALID, 0, "invalid API version '%.*s'", (int)n, path + 2);
    memcpy(version, path + 2, n);
    version[n] = '\0';
    *rest = path + 2 + n;
    *has_version = true;
    return 0;
}

int api_version_negotiate(const char *requested, struct api_version *out, struct merr *err)
{
    struct api_version max, min, v;
    if (api_version_parse(API_VERSION_MAX, &max, err) < 0 ||
        api_version_parse(API_VERSION_MIN, &min, err) < 0)
        return -1;
    if (requested == NULL || *requested == '\0') {
        *out = max;
        return 0;
    }
    if (api_version_parse(requested, &v, err) < 0)
        return -1;
    if (api_version_cmp(v, min) < 0)
        return merr_set(err, MERR_INVALID, 0,
                        "client version %s is too old. Minimum supported API version is "
                        API_VERSION_MIN ", please upgrade your client to a newer version",
                        requested);
    if (api_version_cmp(v, max) > 0)
        return merr_set(err, MERR_INVALID, 0,
                        "client version %s is too new. Maximum supported API version is "
                        API_VERSION_MAX, requested);
    *out = v;
    return 0;
}

/* ---- router ---------------------------------------------------------------- */

struct api_router *api_router_new(struct merr *err)
{
    struct api_router *r = calloc(1, sizeof *r);
    if (r == NULL)
        merr_set(err, MERR_NOMEM, 0, "out of memory");
    return r;
}

void api_router_free(struct api_router *router)
{
    if (router == NULL)
        return;
    for (size_t i = 0; i < router->n; i++) {
        free((char *)router->entries[i].route.method);
        free((char *)router->entries[i].route.pattern);
    }
    free(router->entries);
    free(router);
}

/* Returns the number of literal characters, or -1 for a malformed pattern. */
static long pattern_literal_len(const char *pattern)
{
    if (pattern[0] != '/')
        return -1;
    long literal = 0;
    unsigned vars = 0;
    bool prev_var = false;
    for (const char *p = pattern; *p != '\0';) {
        if (*p == '}')
            return -1;
        if (*p != '{') {
            literal++;
            p++;
            prev_var = false;
            continue;
        }
        const char *end = strchr(p, '}');
        if (end == NULL || end == p + 1 || prev_var || ++vars > API_MAX_VARS)
            return -1;
        for (const char *c = p + 1; c < end; c++)
            if (!isalnum((unsigned char)*c) && *c != '_')
                return -1;
        p = end + 1;
        prev_var = true;
    }
    return literal;
}

int api_router_add(struct api_router *router, const struct api_route *route, void *data,
                   struct merr *err)
{
    if (route->method == NULL || route->method[0] == '\0' || route->handler == NULL ||
        route->pattern == NULL)
        return merr_set(err, MERR_INVALID, 0, "incomplete route");
    long literal = pattern_literal_len(route->pattern);
    if (literal < 0)
        return merr_set(err, MERR_INVALID, 0, "invalid route pattern '%s'", route->pattern);
    for (size_t i = 0; i < router->n; i++)
        if (strcmp(router->entries[i].route.method, route->method) == 0 &&
            strcmp(router->entries[i].route.pattern, route->pattern) == 0)
            return merr_set(err, MERR_EXISTS, 0, "route '%s %s' already registered",
                            route->method, route->pattern);
    struct router_entry *grown = realloc(router->entries, (router->n + 1) * sizeof *grown);
    if (grown == NULL)
        return merr_set(err, MERR_NOMEM, 0, "out of memory");
    router->entries = grown;
    struct router_entry *e = &grown[router->n];
    e->route = *route;
    e->route.method = strdup(route->method);
    e->route.pattern = strdup(route->pattern);
    e->data = data;
    e->literal_len = (size_t)literal;
    if (e->route.method == NULL || e->route.pattern == NULL) {
        free((char *)e->route.method);
        free((char *)e->route.pattern);
        return merr_set(err, MERR_NOMEM, 0, "out of memory");
    }
    router->n++;
    return 0;
}

int api_router_add_table(struct api_router *router, const struct api_route *routes,
                         size_t n_routes, void *data, struct merr *err)
{
    for (size_t i = 0; i < n_routes; i++)
        if (api_router_add(router, &routes[i], data, err) < 0)
            return -1;
    return 0;
}

size_t api_router_count(const struct api_router *router)
{
    return router->n;
}

const struct api_route *api_router_route(const struct api_router *router, size_t i)
{
    return i < router->n ? &router->entries[i].route : NULL;
}

struct var_span {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* Matches pattern against path; a {var} takes the longest non-empty run
 * that lets the rest match (like moby's "{name:.*}"). */
static bool match_here(const char *pat, const char *path, struct var_span *vars, size_t idx)
{
    while (*pat != '\0' && *pat != '{') {
        if (*pat != *path)
            return false;
        pat++;
        path++;
    }
    if (*pat == '\0')
        return *path == '\0';
    if (idx >= API_MAX_VARS)
        return false; /* patterns are checked at registration; this keeps the bound explicit */
    const char *end = strchr(pat, '}');
    for (size_t k = strlen(path); k >= 1; k--) {
        if (match_here(end + 1, path + k, vars, idx + 1)) {
            vars[idx] = (struct var_span){ pat + 1, (size_t)(end - pat - 1), path, k };
            return true;
        }
    }
    return false;
}

static size_t count_vars(const char *pattern)
{
    size_t n = 0;
    for (; *pattern != '\0'; pattern++)
        n += *pattern == '{';
    return n;
}

void api_route_match_release(struct api_route_match *m)
{
    for (size_t i = 0; i < m->n_vars; i++) {
        free(m->vars[i].key);
        free(m->vars[i].value);
    }
    memset(m, 0, sizeof *m);
}

int api_router_match(const struct api_router *router, const char *method, const char *path,
                     struct api_route_match *m, struct merr *err)
{
    memset(m, 0, sizeof *m);
    if (strlen(path) > API_MATCH_PATH_MAX)
        return 0;
    const struct router_entry *best = NULL;
    struct var_span best_vars[API_MAX_VARS];
    for (size_t i = 0; i < router->n; i++) {
        const struct router_entry *e = &router->entries[i];
        if (strcmp(e->route.method, method) != 0)
            continue;
        if (best != NULL && e->literal_len <= best->literal_len)
            continue;
        struct var_span vars[API_MAX_VARS];
        if (match_here(e->route.pattern, path, vars, 0)) {
            best = e;
            memcpy(best_vars, vars, sizeof vars);
        }
    }
    if (best == NULL)
        return 0;
    m->route = &best->route;
    m->data = best->data;
    size_t n = count_vars(best->route.pattern);
    for (size_t i = 0; i < n; i++) {
        m->vars[i].key = strndup(best_vars[i].name, best_vars[i].name_len);
        m->vars[i].value = strndup(best_vars[i].value, best_vars[i].value_len);
        m->n_vars = i + 1;
        if (m->vars[i].key == NULL || m->vars[i].value == NULL) {
            api_route_match_release(m);
            return merr_set(err, MERR_NOMEM, 0, "out of memory");
        }
    }
    return 1;
}
