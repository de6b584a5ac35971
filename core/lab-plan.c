/* Lab files: brace expansion of host names, dependency order, and what `machine up` does with
 * each host. Pure functions over a parsed struct lab. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fsutil.h"
#include "lab.h"
#include "machine.h"

/* "a..b" with a, b non-negative integers: fills the range; width > 0 zero-pads. */
static bool parse_range(const char *s, size_t len, long *a, long *b, int *width)
{
    const char *dots = memmem(s, len, "..", 2);
    if (dots == NULL)
        return false;
    size_t la = (size_t)(dots - s), lb = len - la - 2;
    if (la == 0 || lb == 0 || la > 6 || lb > 6)
        return false;
    for (size_t i = 0; i < la; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    for (size_t i = 0; i < lb; i++)
        if (!isdigit((unsigned char)dots[2 + i]))
            return false;
    *a = strtol(s, NULL, 10);
    *b = strtol(dots + 2, NULL, 10);
    bool padded = (la > 1 && s[0] == '0') || (lb > 1 && dots[2] == '0');
    *width = padded ? (int)(la > lb ? la : lb) : 0;
    return true;
}

/* The alternatives of one brace group's content, or NULL (with err) when malformed. */
static char **group_items(const char *pattern, const char *s, size_t len, size_t max,
                          struct merr *err)
{
    char **items = NULL;
    long a, b;
    int width;
    if (parse_range(s, len, &a, &b, &width)) {
        long step = a <= b ? 1 : -1;
        if ((size_t)labs(b - a) + 1 > max) {
            merr_set(err, MERR_INVALID, 0, "'%s' makes more than %zu names", pattern, max);
            return NULL;
        }
        for (long i = a;; i += step) {
            auto_free char *item = xasprintf("%0*ld", width, i);
            items = strv_push(items, item);
            if (i == b)
                break;
        }
        return items;
    }
    for (size_t start = 0; start <= len;) {
        const char *comma = memchr(s + start, ',', len - start);
        size_t end = comma != NULL ? (size_t)(comma - s) : len;
        if (end == start || memchr(s, ',', len) == NULL) {
            strv_free(items);
            merr_set(err, MERR_INVALID, 0,
                     "'%s': a {} group is a range {1..5} or a list {a,b} of non-empty names",
                     pattern);
            return NULL;
        }
        auto_free char *item = xasprintf("%.*s", (int)(end - start), s + start);
        items = strv_push(items, item);
        start = end + 1;
    }
    return items;
}

char **lab_expand(const char *pattern, size_t max, struct merr *err)
{
    const char *open = strchr(pattern, '{');
    const char *close = strchr(pattern, '}');
    if (open == NULL && close == NULL)
        return strv_push(NULL, pattern);
    if (open == NULL || close == NULL || close < open || memchr(open + 1, '{', (size_t)(close - open - 1))) {
        merr_set(err, MERR_INVALID, 0, "'%s': unbalanced or nested braces", pattern);
        return NULL;
    }
    auto_strv char **items = group_items(pattern, open + 1, (size_t)(close - open - 1), max, err);
    if (items == NULL)
        return NULL;
    auto_strv char **rest = lab_expand(close + 1, max, err);
    if (rest == NULL)
        return NULL;
    if (strv_len(items) * strv_len(rest) > max) {
        merr_set(err, MERR_INVALID, 0, "'%s' makes more than %zu names", pattern, max);
        return NULL;
    }
    char **out = NULL;
    for (size_t i = 0; items[i] != NULL; i++)
        for (size_t j = 0; rest[j] != NULL; j++) {
            auto_free char *name =
                xasprintf("%.*s%s%s", (int)(open - pattern), pattern, items[i], rest[j]);
            out = strv_push(out, name);
        }
    return out;
}

static size_t index_of(const struct lab *lab, const char *name)
{
    for (size_t i = 0; i < lab->n_hosts; i++)
        if (strcmp(lab->hosts[i].name, name) == 0)
            return i;
    return lab->n_hosts;
}

static bool deps_placed(const struct lab *lab, size_t h, const bool *placed)
{
    char **deps = lab->hosts[h].depends_on;
    for (size_t d = 0; deps != NULL && deps[d] != NULL; d++) {
        size_t k = index_of(lab, deps[d]);
        if (k == lab->n_hosts || !placed[k])
            return false;
    }
    return true;
}

/* Names one cycle among the unplaced hosts: follow unplaced dependencies until one repeats. */
static int report_cycle(const struct lab *lab, const bool *placed, struct merr *err)
{
    size_t n = lab->n_hosts, cur = 0;
    while (cur < n && placed[cur])
        cur++;
    auto_free size_t *seen_at = xcalloc(n, sizeof *seen_at); /* step + 1, 0 = not seen */
    auto_free size_t *path = xcalloc(n + 1, sizeof *path);
    size_t len = 0;
    while (cur < n && seen_at[cur] == 0 && len < n) {
        seen_at[cur] = len + 1;
        path[len++] = cur;
        size_t next = n;
        for (char **d = lab->hosts[cur].depends_on; d != NULL && *d != NULL && next == n; d++) {
            size_t k = index_of(lab, *d);
            if (k < n && !placed[k])
                next = k;
        }
        cur = next;
    }
    if (cur >= n)
        return merr_set(err, MERR_INVALID, 0, "dependency order cannot be found");
    char msg[512] = "dependency cycle: ";
    for (size_t i = seen_at[cur] - 1; i < len; i++)
        snprintf(msg + strlen(msg), sizeof msg - strlen(msg), "%s -> ", lab->hosts[path[i]].name);
    snprintf(msg + strlen(msg), sizeof msg - strlen(msg), "%s", lab->hosts[cur].name);
    return merr_set(err, MERR_INVALID, 0, "%s", msg);
}

int lab_order(const struct lab *lab, size_t *order, struct merr *err)
{
    size_t n = lab->n_hosts, done = 0;
    auto_free bool *placed = xcalloc(n + 1, sizeof *placed);
    while (done < n) {
        size_t pick = n;
        for (size_t i = 0; i < n && pick == n; i++)
            if (!placed[i] && deps_placed(lab, i, placed))
                pick = i;
        if (pick == n)
            return report_cycle(lab, placed, err);
        placed[pick] = true;
        order[done++] = pick;
    }
    return 0;
}

const char *lab_action_name(enum lab_action a)
{
    switch (a) {
    case LAB_CREATE: return "create";
    case LAB_KEEP: return "keep";
    case LAB_REPROVISION: return "reprovision";
    case LAB_RECREATE: return "recreate";
    }
    return "?";
}

static bool same(const json_t *a, const json_t *b, const char *key)
{
    const json_t *va = json_object_get(a, key), *vb = json_object_get(b, key);
    if (va == NULL || vb == NULL)
        return va == vb;
    return json_equal(va, vb);
}

enum lab_action lab_plan_host(const struct lab_host *h, const json_t *recorded)
{
    if (recorded == NULL)
        return LAB_CREATE;
    if (!same(h->spec, recorded, "driver") || !same(h->spec, recorded, "flags"))
        return LAB_RECREATE;
    if (!json_equal(h->spec, recorded))
        return LAB_REPROVISION;
    return LAB_KEEP;
}
