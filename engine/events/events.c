/* The event ring and the pure event helpers. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "error.h"
#include "events.h"
#include "filters/args.h"
#include "fsutil.h"

struct evt_bus {
    pthread_mutex_t lock;
    pthread_cond_t added;
    json_t **ring; /* slot seq % cap */
    size_t cap;
    uint64_t next;  /* sequence of the next event */
    uint64_t first; /* oldest sequence still in the ring */
};

struct evt_bus *evt_bus_new(size_t capacity)
{
    struct evt_bus *b = xcalloc(1, sizeof *b);
    b->cap = capacity > 0 ? capacity : 1024;
    b->ring = xcalloc(b->cap, sizeof *b->ring);
    pthread_mutex_init(&b->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->added, &ca);
    pthread_condattr_destroy(&ca);
    return b;
}

void evt_bus_free(struct evt_bus *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->cap; i++)
        json_decref(b->ring[i]);
    free(b->ring);
    pthread_cond_destroy(&b->added);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

json_t *evt_build(const char *type, const char *action, const char *id, json_t *attrs,
                  int64_t time_ns)
{
    if (attrs == NULL)
        attrs = json_object();
    json_t *ev = json_pack("{s:s,s:s,s:{s:s,s:o},s:s,s:I,s:I}", "Type", type, "Action", action,
                           "Actor", "ID", id != NULL ? id : "", "Attributes", attrs, "scope",
                           "local", "time", (json_int_t)(time_ns / 1000000000LL), "timeNano",
                           (json_int_t)time_ns);
    /* The pre-1.22 fields docker still sends for containers and images. */
    if (strcmp(type, "container") == 0 || strcmp(type, "image") == 0) {
        json_object_set_new(ev, "status", json_string(action));
        json_object_set_new(ev, "id", json_string(id != NULL ? id : ""));
        const char *image = json_string_value(json_object_get(attrs, "image"));
        if (image != NULL && strcmp(type, "container") == 0)
            json_object_set_new(ev, "from", json_string(image));
    }
    return ev;
}

void evt_emit_at(struct evt_bus *b, const char *type, const char *action, const char *id,
                 json_t *attrs, int64_t time_ns)
{
    if (b == NULL) {
        json_decref(attrs);
        return;
    }
    json_t *ev = evt_build(type, action, id, attrs, time_ns);
    pthread_mutex_lock(&b->lock);
    size_t slot = (size_t)(b->next % b->cap);
    json_decref(b->ring[slot]);
    b->ring[slot] = ev;
    b->next++;
    if (b->next - b->first > b->cap)
        b->first = b->next - b->cap;
    pthread_cond_broadcast(&b->added);
    pthread_mutex_unlock(&b->lock);
}

void evt_emit(struct evt_bus *b, const char *type, const char *action, const char *id,
              json_t *attrs)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    evt_emit_at(b, type, action, id, attrs, (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec);
}

uint64_t evt_cursor_now(struct evt_bus *b)
{
    pthread_mutex_lock(&b->lock);
    uint64_t c = b->next;
    pthread_mutex_unlock(&b->lock);
    return c;
}

uint64_t evt_cursor_oldest(struct evt_bus *b)
{
    pthread_mutex_lock(&b->lock);
    uint64_t c = b->first;
    pthread_mutex_unlock(&b->lock);
    return c;
}

size_t evt_read(struct evt_bus *b, uint64_t *cursor, json_t **out, size_t max, int timeout_ms)
{
    pthread_mutex_lock(&b->lock);
    if (*cursor >= b->next && timeout_ms > 0) {
        struct timespec until = clock_deadline_ts(timeout_ms);
        while (*cursor >= b->next)
            if (pthread_cond_timedwait(&b->added, &b->lock, &until) == ETIMEDOUT)
                break;
    }
    if (*cursor < b->first)
        *cursor = b->first; /* the reader fell behind: the dropped events are gone */
    size_t n = 0;
    while (n < max && *cursor < b->next) {
        out[n++] = json_incref(b->ring[*cursor % b->cap]);
        (*cursor)++;
    }
    pthread_mutex_unlock(&b->lock);
    return n;
}

/* ---- filters ---- */

static bool any_matches(const struct api_filters *f, const char *name, const char *const *cands)
{
    char *const *vals = api_filters_get(f, name);
    if (vals == NULL)
        return true;
    for (size_t i = 0; vals[i] != NULL; i++)
        for (size_t k = 0; cands[k] != NULL; k++) {
            if (strcmp(vals[i], cands[k]) == 0)
                return true;
        }
    return false;
}

static bool id_prefix_matches(const struct api_filters *f, const char *name, const char *id,
                              const char *alt)
{
    char *const *vals = api_filters_get(f, name);
    if (vals == NULL)
        return true;
    for (size_t i = 0; vals[i] != NULL; i++) {
        if (vals[i][0] == '\0')
            continue;
        if (id != NULL && strncmp(id, vals[i], strlen(vals[i])) == 0)
            return true;
        if (alt != NULL && strcmp(alt, vals[i]) == 0)
            return true;
    }
    return false;
}

static bool labels_match(const struct api_filters *f, const json_t *attrs)
{
    char *const *vals = api_filters_get(f, "label");
    for (size_t i = 0; vals != NULL && vals[i] != NULL; i++) {
        const char *eq = strchr(vals[i], '=');
        auto_free char *key = eq != NULL ? strndup(vals[i], (size_t)(eq - vals[i])) : xstrdup(vals[i]);
        const char *v = json_string_value(json_object_get(attrs, key));
        if (v == NULL || (eq != NULL && strcmp(v, eq + 1) != 0))
            return false;
    }
    return true;
}

bool evt_filter_match(const json_t *ev, const struct api_filters *f)
{
    if (f == NULL)
        return true;
    const char *type = json_string_value(json_object_get(ev, "Type"));
    const char *action = json_string_value(json_object_get(ev, "Action"));
    const json_t *actor = json_object_get(ev, "Actor");
    const char *id = json_string_value(json_object_get(actor, "ID"));
    const json_t *attrs = json_object_get(actor, "Attributes");
    const char *name = json_string_value(json_object_get(attrs, "name"));
    if (type == NULL || action == NULL)
        return false;
    /* "exec_start: sh" matches the filter "exec_start" */
    char base[64];
    snprintf(base, sizeof base, "%.*s", (int)strcspn(action, ":"), action);
    const char *types[] = { type, NULL };
    const char *actions[] = { action, base, NULL };
    if (!any_matches(f, "type", types) || !any_matches(f, "event", actions) ||
        !labels_match(f, attrs))
        return false;
    static const char *const scoped[] = { "container", "image", "volume", "network" };
    for (size_t i = 0; i < sizeof scoped / sizeof scoped[0]; i++) {
        if (api_filters_get(f, scoped[i]) == NULL)
            continue;
        if (strcmp(type, scoped[i]) == 0) {
            if (!id_prefix_matches(f, scoped[i], id, name))
                return false;
        } else if (strcmp(scoped[i], "image") == 0 && strcmp(type, "container") == 0) {
            const char *image = json_string_value(json_object_get(attrs, "image"));
            if (!id_prefix_matches(f, "image", NULL, image))
                return false;
        } else {
            return false;
        }
    }
    return true;
}

int evt_filters_validate(const struct api_filters *f, struct merr *err)
{
    static const char *const allowed[] = { "container", "daemon", "event", "image", "label",
                                           "network", "node", "plugin", "scope", "secret",
                                           "service", "type", "volume", "config", NULL };
    return api_filters_validate(f, allowed, err);
}

int evt_parse_time(const char *s, int64_t *ns, struct merr *err)
{
    if (s == NULL || s[0] == '\0')
        return merr_set(err, MERR_INVALID, 0, "invalid timestamp ''");
    char *end = NULL;
    errno = 0;
    long long sec = strtoll(s, &end, 10);
    if (errno != 0 || end == s || sec < 0 || sec > 9000000000LL)
        return merr_set(err, MERR_INVALID, 0, "invalid timestamp '%s'", s);
    int64_t frac = 0;
    if (*end == '.') {
        const char *p = end + 1;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            if (digits < 9) {
                frac = frac * 10 + (*p - '0');
                digits++;
            }
            p++;
        }
        if (p == end + 1)
            return merr_set(err, MERR_INVALID, 0, "invalid timestamp '%s'", s);
        for (; digits < 9; digits++)
            frac *= 10;
        end = (char *)p;
    }
    if (*end != '\0')
        return merr_set(err, MERR_INVALID, 0, "invalid timestamp '%s'", s);
    *ns = (int64_t)sec * 1000000000LL + frac;
    return 0;
}
