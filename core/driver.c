#include "driver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "http.h"
#include "error.h"
#include "fsutil.h"
#include "secrets.h"

const struct driver *driver_find(const struct driver *const *table, const char *name)
{
    for (size_t i = 0; table != NULL && table[i] != NULL; i++)
        if (strcmp(table[i]->name, name) == 0)
            return table[i];
    return NULL;
}

static int unsupported(const struct driver *d, const char *op, struct merr *err)
{
    return merr_set(err, MERR_UNSUPPORTED, 0, "%s is not supported by driver '%s'", op, d->name);
}

#define DRIVER_WRAPPER(op, label)                                                                  \
    int driver_##op(const struct driver *d, const struct driver_ctx *ctx, struct machine *m,      \
                    struct merr *err)                                                              \
    {                                                                                              \
        if (d->op == NULL)                                                                         \
            return unsupported(d, label, err);                                                     \
        return d->op(ctx, m, err);                                                                 \
    }

DRIVER_WRAPPER(create, "create")
DRIVER_WRAPPER(remove, "remove")
DRIVER_WRAPPER(start, "start")
DRIVER_WRAPPER(stop, "stop")
DRIVER_WRAPPER(restart, "restart")
DRIVER_WRAPPER(kill, "kill")
DRIVER_WRAPPER(upgrade, "upgrade")

int driver_precreate_check(const struct driver *d, const struct driver_ctx *ctx, struct machine *m,
                           struct merr *err)
{
    /* A driver without a check has nothing to check. */
    return d->precreate_check != NULL ? d->precreate_check(ctx, m, err) : 0;
}

int driver_get_state(const struct driver *d, const struct driver_ctx *ctx, const struct machine *m,
                     enum machine_state *state, struct merr *err)
{
    if (d->get_state == NULL)
        return unsupported(d, "state", err);
    return d->get_state(ctx, m, state, err);
}

char *driver_get_ip(const struct driver *d, const struct driver_ctx *ctx, const struct machine *m,
                    struct merr *err)
{
    if (d->get_ip != NULL)
        return d->get_ip(ctx, m, err);
    const char *ip = machine_driver_str(m, DKEY_IP);
    if (ip == NULL || ip[0] == '\0') {
        merr_set(err, MERR_NOT_FOUND, 0, "machine '%s' has no IP address yet", m->name);
        return NULL;
    }
    return xstrdup(ip);
}

char *driver_get_url(const struct driver *d, const struct driver_ctx *ctx, const struct machine *m,
                     struct merr *err)
{
    if (d->get_url != NULL)
        return d->get_url(ctx, m, err);
    auto_free char *ip = driver_get_ip(d, ctx, m, err);
    if (ip == NULL)
        return NULL;
    int port = m->engine.port > 0 ? m->engine.port : MACHINE_DEFAULT_ENGINE_PORT;
    if (strchr(ip, ':') != NULL)
        return xasprintf("tcp://[%s]:%d", ip, port);
    return xasprintf("tcp://%s:%d", ip, port);
}

int driver_wait_until(const struct driver_ctx *ctx, int limit_ms, const char *what,
                      driver_poll_fn poll, void *opaque, struct merr *err)
{
    long long start = clock_now_ms();
    long long end = limit_ms > 0 ? start + limit_ms : 0;
    if (ctx != NULL && ctx->deadline_ms > 0 && (end == 0 || ctx->deadline_ms < end))
        end = ctx->deadline_ms;
    long pause = 100;
    for (;;) {
        int rc = poll(opaque, err);
        if (rc != 0)
            return rc < 0 ? -1 : 0;
        long long now = clock_now_ms();
        if (end == 0) /* unbounded waits are a bug: one minute at most */
            end = start + 60000;
        if (now >= end)
            return merr_set(err, MERR_TIMEOUT, 0, "%s did not happen within %lld s", what,
                            (end - start + 999) / 1000);
        long long left = end - now;
        long sleep_for = left < pause ? (long)left : pause;
        struct timespec ts = { sleep_for / 1000, (sleep_for % 1000) * 1000000L };
        nanosleep(&ts, NULL);
        pause = pause * 2 > 1000 ? 1000 : pause * 2;
    }
}

static int parse_int(const char *text, long long *out)
{
    if (text == NULL || text[0] == '\0')
        return -1;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *text, bool *out)
{
    if (text == NULL || strcmp(text, "") == 0 || strcmp(text, "true") == 0 || strcmp(text, "1") == 0) {
        *out = true;
        return 0;
    }
    if (strcmp(text, "false") == 0 || strcmp(text, "0") == 0) {
        *out = false;
        return 0;
    }
    return -1;
}

static int apply_one(const struct driver_flag *f, struct machine *m, char *const *values,
                     struct merr *err)
{
    if (f->secret) {
        const char *last = NULL;
        for (size_t i = 0; values != NULL && values[i] != NULL; i++)
            last = values[i];
        machine_secret_set(m, f->key, last);
        return 0;
    }
    if (f->type == DFLAG_STRING_LIST) {
        json_t *arr = json_array();
        for (size_t i = 0; values != NULL && values[i] != NULL; i++)
            json_array_append_new(arr, json_string(values[i]));
        json_object_set_new(m->driver, f->key, arr);
        return 0;
    }
    const char *last = NULL;
    for (size_t i = 0; values != NULL && values[i] != NULL; i++)
        last = values[i];
    if (f->type == DFLAG_STRING) {
        json_object_set_new(m->driver, f->key, json_string(last != NULL ? last : ""));
        return 0;
    }
    if (f->type == DFLAG_INT) {
        long long v = 0;
        if (last != NULL && parse_int(last, &v) < 0)
            return merr_set(err, MERR_INVALID, 0, "invalid value '%s' for --%s: not a number", last,
                            f->name);
        json_object_set_new(m->driver, f->key, json_integer(v));
        return 0;
    }
    bool b = false;
    if (last != NULL && parse_bool(last, &b) < 0)
        return merr_set(err, MERR_INVALID, 0, "invalid value '%s' for --%s: not a boolean", last,
                        f->name);
    json_object_set_new(m->driver, f->key, json_boolean(b));
    return 0;
}

static int check_choice(const struct driver_flag *f, const char *v, struct merr *err)
{
    char list[256] = "";
    size_t used = 0;
    for (const char *const *c = f->choices; *c != NULL; c++) {
        if (strcmp(*c, v) == 0)
            return 0;
        int n = snprintf(list + used, sizeof list - used, "%s%s", c == f->choices ? "" : ", ", *c);
        if (n > 0 && (size_t)n < sizeof list - used)
            used += (size_t)n;
    }
    return merr_set(err, MERR_INVALID, 0, "invalid value '%s' for --%s: one of %s", v, f->name, list);
}

int driver_check_flags(const struct driver *d, const struct machine *m, struct merr *err)
{
    for (const struct driver_flag *f = d->flags; f != NULL && f->name != NULL; f++) {
        json_t *v = m->driver != NULL ? json_object_get(m->driver, f->key) : NULL;
        if (v == NULL || json_is_null(v))
            continue;
        if (f->type == DFLAG_INT && (f->min != 0 || f->max != 0)) {
            long long n = machine_driver_int(m, f->key, 0);
            if (!json_is_integer(v) || n < f->min || n > f->max)
                return merr_set(err, MERR_INVALID, 0, "invalid value '%lld' for --%s: %lld to %lld",
                                n, f->name, f->min, f->max);
        }
        if (f->type == DFLAG_STRING && f->choices != NULL) {
            const char *s = json_is_string(v) ? json_string_value(v) : "";
            if (check_choice(f, s, err) < 0)
                return -1;
        }
    }
    return 0;
}

int driver_apply_flags(const struct driver *d, struct machine *m, driver_flag_lookup_fn lookup,
                       void *opaque, struct merr *err)
{
    for (const struct driver_flag *f = d->flags; f != NULL && f->name != NULL; f++) {
        char *const *values = lookup != NULL ? lookup(opaque, f->name) : NULL;
        char *fallback[2] = { NULL, NULL };
        if (values == NULL || values[0] == NULL) {
            const char *env = f->env != NULL ? getenv(f->env) : NULL;
            if (env != NULL && env[0] != '\0')
                fallback[0] = (char *)env;
            else if (f->def != NULL)
                fallback[0] = (char *)f->def;
            values = fallback[0] != NULL ? fallback : NULL;
        }
        if (values == NULL && f->required)
            return merr_set(err, MERR_INVALID, 0, "driver '%s' requires --%s%s%s", d->name, f->name,
                            f->env != NULL ? " or $" : "", f->env != NULL ? f->env : "");
        if (values == NULL && f->type != DFLAG_STRING_LIST)
            continue;
        if (apply_one(f, m, values, err) < 0)
            return -1;
    }
    return driver_check_flags(d, m, err);
}

struct http_client *driver_http_client(const struct driver_ctx *ctx,
                                       const struct http_client_opts *opts, struct merr *err)
{
    if (ctx->curl == NULL) {
        merr_set(err, MERR_INTERNAL, 0, "the driver context has no HTTP support");
        return NULL;
    }
    struct http_client_opts o = opts != NULL ? *opts : (struct http_client_opts){ 0 };
    o.curl = ctx->curl;
    if (o.log == NULL)
        o.log = ctx->log;
    return http_client_new(&o, err);
}

long driver_http_deadline(const struct driver_ctx *ctx)
{
    if (ctx->deadline_ms <= 0)
        return 0;
    long long left = ctx->deadline_ms - clock_now_ms();
    return left > 1 ? (long)left : 1;
}
