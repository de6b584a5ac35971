/* LogConfig, Healthcheck and detach-key parsers (pure). */
#include "lifecycle.h"

#include "container.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fsutil.h"
#include "strv.h"

#define MS 1000000LL
#define SEC 1000000000LL

/* ---- LogConfig ---- */

int ctr_parse_ram_bytes(const char *s, int64_t *out, struct merr *err)
{
    char *end = NULL;
    errno = 0;
    double v = s != NULL ? strtod(s, &end) : 0;
    if (s == NULL || end == s || errno != 0 || v < 0)
        return merr_set(err, MERR_INVALID, 0, "invalid size: '%s'", s != NULL ? s : "");
    double mult = 1;
    const char *u = end;
    switch (tolower((unsigned char)*u)) {
    case '\0':
        break;
    case 'b':
        u++;
        break;
    case 'k':
        mult = 1024.0;
        u++;
        break;
    case 'm':
        mult = 1024.0 * 1024;
        u++;
        break;
    case 'g':
        mult = 1024.0 * 1024 * 1024;
        u++;
        break;
    case 't':
        mult = 1024.0 * 1024 * 1024 * 1024;
        u++;
        break;
    default:
        return merr_set(err, MERR_INVALID, 0, "invalid size: '%s'", s);
    }
    /* "k", "kb", "kib" (any case) */
    if (mult > 1 && tolower((unsigned char)*u) == 'i')
        u++;
    if (mult > 1 && tolower((unsigned char)*u) == 'b')
        u++;
    if (*u != '\0' || v * mult > 9.2e18)
        return merr_set(err, MERR_INVALID, 0, "invalid size: '%s'", s);
    *out = (int64_t)(v * mult);
    return 0;
}

char *ctr_log_rotated_path(const char *path, int n)
{
    return xasprintf("%s.%d", path, n);
}

static int json_file_opts(const json_t *opts, struct ctr_log_config *out, struct merr *err)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)opts, k, v) {
        const char *s = json_string_value(v);
        if (s == NULL)
            return merr_set(err, MERR_INVALID, 0, "invalid log opt '%s': expected a string", k);
        if (strcmp(k, "max-size") == 0) {
            if (ctr_parse_ram_bytes(s, &out->max_size, err) < 0)
                return -1;
            if (out->max_size == 0)
                out->max_size = -1;
        } else if (strcmp(k, "max-file") == 0) {
            char *end = NULL;
            long n = strtol(s, &end, 10);
            if (end == s || *end != '\0' || n < 1 || n > 1000)
                return merr_set(err, MERR_INVALID, 0, "max-file cannot be less than 1");
            out->max_file = (int)n;
        } else if (strcmp(k, "compress") == 0 || strcmp(k, "labels") == 0 ||
                   strcmp(k, "labels-regex") == 0 || strcmp(k, "env") == 0 ||
                   strcmp(k, "env-regex") == 0 || strcmp(k, "tag") == 0) {
            /* compress=false asks for what we do anyway */
            if (strcmp(k, "compress") == 0 && strcmp(s, "false") == 0)
                continue;
            return merr_set(err, MERR_INVALID, 0,
                            "log opt '%s' of the json-file log driver is not supported by "
                            "machine-engine",
                            k);
        } else {
            return merr_set(err, MERR_INVALID, 0, "unknown log opt '%s' for json-file log driver", k);
        }
    }
    /* max-file without max-size is accepted as dockerd does: with no size cap nothing rotates */
    return 0;
}

int ctr_log_config_parse(const json_t *log_config, struct ctr_log_config *out, struct merr *err)
{
    *out = (struct ctr_log_config){ CTR_LOG_JSON_FILE, -1, 1 };
    if (log_config == NULL || json_is_null(log_config))
        return 0;
    if (!json_is_object(log_config))
        return merr_set(err, MERR_INVALID, 0, "invalid LogConfig: expected an object");
    json_t *type = json_object_get(log_config, "Type");
    if (type != NULL && !json_is_null(type) && !json_is_string(type))
        return merr_set(err, MERR_INVALID, 0, "invalid LogConfig.Type: expected a string");
    const char *t = json_string_value(type);
    json_t *opts = json_object_get(log_config, "Config");
    if (opts != NULL && !json_is_null(opts) && !json_is_object(opts))
        return merr_set(err, MERR_INVALID, 0, "invalid LogConfig.Config: expected an object");
    bool has_opts = json_is_object(opts) && json_object_size(opts) > 0;
    if (t == NULL || t[0] == '\0' || strcmp(t, "json-file") == 0)
        return has_opts ? json_file_opts(opts, out, err) : 0;
    if (strcmp(t, "none") == 0) {
        out->driver = CTR_LOG_NONE;
        if (has_opts) {
            const char *k = NULL;
            json_t *v;
            json_object_foreach((json_t *)opts, k, v) break;
            return merr_set(err, MERR_INVALID, 0, "unknown log opt '%s' for none log driver", k);
        }
        return 0;
    }
    static const char *const known[] = { "local", "syslog", "journald", "gelf", "fluentd",
                                         "awslogs", "splunk", "etwlogs", "gcplogs", "logentries",
                                         NULL };
    for (size_t i = 0; known[i] != NULL; i++)
        if (strcmp(t, known[i]) == 0)
            return merr_set(err, MERR_INVALID, 0,
                            "log driver '%s' is not supported by machine-engine", t);
    return merr_set(err, MERR_INVALID, 0, "logger: no log driver named '%s' is registered", t);
}

/* ---- Healthcheck ---- */

void ctr_health_config_release(struct ctr_health_config *h)
{
    strv_free(h->argv);
    memset(h, 0, sizeof *h);
}

static const json_t *test_of(const json_t *hc)
{
    const json_t *t = json_object_get(hc, "Test");
    return json_is_array(t) && json_array_size(t) > 0 ? t : NULL;
}

static int64_t dur_of(const json_t *hc, const char *key)
{
    const json_t *v = json_object_get(hc, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

int ctr_health_validate(const json_t *hc, struct merr *err)
{
    if (hc == NULL || json_is_null(hc))
        return 0;
    if (!json_is_object(hc))
        return merr_set(err, MERR_INVALID, 0, "invalid Healthcheck: expected an object");
    static const char *const durs[] = { "Interval", "Timeout", "StartPeriod", "StartInterval" };
    for (size_t i = 0; i < 4; i++) {
        const json_t *v = json_object_get(hc, durs[i]);
        if (v != NULL && !json_is_null(v) && !json_is_integer(v))
            return merr_set(err, MERR_INVALID, 0, "invalid Healthcheck.%s: expected an integer",
                            durs[i]);
        int64_t d = dur_of(hc, durs[i]);
        if (d != 0 && d < MS)
            return merr_set(err, MERR_INVALID, 0, "%s in Healthcheck cannot be less than 1ms",
                            durs[i]);
    }
    const json_t *r = json_object_get(hc, "Retries");
    if (r != NULL && !json_is_null(r) && !json_is_integer(r))
        return merr_set(err, MERR_INVALID, 0, "invalid Healthcheck.Retries: expected an integer");
    if (json_integer_value(r) < 0)
        return merr_set(err, MERR_INVALID, 0, "Retries in Healthcheck cannot be negative");
    const json_t *t = json_object_get(hc, "Test");
    if (t == NULL || json_is_null(t))
        return 0;
    if (!json_is_array(t))
        return merr_set(err, MERR_INVALID, 0, "invalid Healthcheck.Test: expected a list of strings");
    size_t i;
    json_t *e;
    json_array_foreach(t, i, e) if (!json_is_string(e)) return merr_set(
        err, MERR_INVALID, 0, "invalid Healthcheck.Test: expected a list of strings");
    if (json_array_size(t) == 0)
        return 0;
    const char *kind = json_string_value(json_array_get(t, 0));
    if (strcmp(kind, "NONE") == 0)
        return 0;
    if (strcmp(kind, "CMD") == 0 || strcmp(kind, "CMD-SHELL") == 0) {
        if (json_array_size(t) < 2)
            return merr_set(err, MERR_INVALID, 0, "Healthcheck %s needs a command", kind);
        return 0;
    }
    return merr_set(err, MERR_INVALID, 0, "unknown Healthcheck type '%s'", kind);
}

int ctr_health_config_parse(const json_t *create, const json_t *image, struct ctr_health_config *out,
                            struct merr *err)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(create))
        create = NULL;
    if (!json_is_object(image))
        image = NULL;
    if (ctr_health_validate(create, err) < 0)
        return -1;
    const json_t *test = create != NULL ? test_of(create) : NULL;
    if (test == NULL && image != NULL)
        test = test_of(image);
    if (test == NULL)
        return 0;
    const char *kind = json_string_value(json_array_get(test, 0));
    if (kind == NULL || strcmp(kind, "NONE") == 0)
        return 0;
    char **argv = xcalloc(1, sizeof *argv);
    if (strcmp(kind, "CMD-SHELL") == 0) {
        out->kind = CTR_HEALTH_SHELL;
        argv = strv_push(argv, "/bin/sh");
        argv = strv_push(argv, "-c");
        /* dockerd joins the rest with spaces */
        size_t len = 1;
        for (size_t i = 1; i < json_array_size(test); i++)
            len += strlen(json_string_value(json_array_get(test, i))) + 1;
        auto_free char *cmd = xcalloc(len, 1);
        for (size_t i = 1; i < json_array_size(test); i++) {
            if (i > 1)
                strcat(cmd, " ");
            strcat(cmd, json_string_value(json_array_get(test, i)));
        }
        argv = strv_push(argv, cmd);
    } else if (strcmp(kind, "CMD") == 0) {
        out->kind = CTR_HEALTH_CMD;
        for (size_t i = 1; i < json_array_size(test); i++)
            argv = strv_push(argv, json_string_value(json_array_get(test, i)));
    } else {
        strv_free(argv);
        return merr_set(err, MERR_INVALID, 0, "unknown Healthcheck type '%s'", kind);
    }
    if (argv[0] == NULL || (out->kind == CTR_HEALTH_CMD && argv[0][0] == '\0')) {
        strv_free(argv);
        out->kind = CTR_HEALTH_NONE;
        return merr_set(err, MERR_INVALID, 0, "Healthcheck %s needs a command", kind);
    }
    out->argv = argv;
    static const struct {
        const char *key;
        size_t off;
        int64_t def;
    } durs[] = {
        { "Interval", offsetof(struct ctr_health_config, interval_ns), 30 * SEC },
        { "Timeout", offsetof(struct ctr_health_config, timeout_ns), 30 * SEC },
        { "StartPeriod", offsetof(struct ctr_health_config, start_period_ns), 0 },
        { "StartInterval", offsetof(struct ctr_health_config, start_interval_ns), 5 * SEC },
    };
    for (size_t i = 0; i < sizeof durs / sizeof durs[0]; i++) {
        int64_t v = create != NULL ? dur_of(create, durs[i].key) : 0;
        if (v == 0 && image != NULL)
            v = dur_of(image, durs[i].key);
        *(int64_t *)((char *)out + durs[i].off) = v > 0 ? v : durs[i].def;
    }
    int64_t retries = create != NULL ? dur_of(create, "Retries") : 0;
    if (retries == 0 && image != NULL)
        retries = dur_of(image, "Retries");
    out->retries = retries > 0 && retries < 1000000 ? (int)retries : 3;
    return 0;
}

/* ---- detach keys ---- */

int ctr_detach_keys_parse(const char *spec, unsigned char *out, size_t *n, struct merr *err)
{
    *n = 0;
    if (spec == NULL || spec[0] == '\0')
        return merr_set(err, MERR_INVALID, 0, "Invalid detach keys (%s) provided", "");
    const char *p = spec;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        unsigned char key;
        if (len == 1) {
            key = (unsigned char)p[0];
        } else if (len == 6 && strncmp(p, "ctrl-", 5) == 0) {
            unsigned char c = (unsigned char)p[5];
            if (c >= 'a' && c <= 'z')
                key = (unsigned char)(c - 'a' + 1);
            else if (c == '@' || c == '[' || c == '\\' || c == ']' || c == '^' || c == '_')
                key = (unsigned char)(c == '@' ? 0 : c - 'A' + 1);
            else
                return merr_set(err, MERR_INVALID, 0, "Invalid detach keys (%s) provided", spec);
        } else {
            return merr_set(err, MERR_INVALID, 0, "Invalid detach keys (%s) provided", spec);
        }
        if (*n == CTR_DETACH_KEYS_MAX)
            return merr_set(err, MERR_INVALID, 0, "Invalid detach keys (%s) provided", spec);
        out[(*n)++] = key;
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}

json_t *ctr_health_config_to_json(const struct ctr_health_config *h)
{
    if (h->kind == CTR_HEALTH_NONE)
        return json_null();
    json_t *test = json_array();
    if (h->kind == CTR_HEALTH_SHELL) {
        json_array_append_new(test, json_string("CMD-SHELL"));
        json_array_append_new(test, json_string(h->argv[2]));
    } else {
        json_array_append_new(test, json_string("CMD"));
        for (size_t i = 0; h->argv[i] != NULL; i++)
            json_array_append_new(test, json_string(h->argv[i]));
    }
    return json_pack("{s:o,s:I,s:I,s:I,s:I,s:i}", "Test", test, "Interval",
                     (json_int_t)h->interval_ns, "Timeout", (json_int_t)h->timeout_ns,
                     "StartPeriod", (json_int_t)h->start_period_ns, "StartInterval",
                     (json_int_t)h->start_interval_ns, "Retries", h->retries);
}

void ctr_lifecycle_inspect(const struct container *c, json_t *config, json_t *host_config,
                           json_t *state)
{
    if (c->plan.health.kind != CTR_HEALTH_NONE && c->state.health.status != CTR_HEALTH_UNSET)
        json_object_set_new(state, "Health", ctr_health_state_json(&c->state.health));
    const json_t *lc = json_object_get(host_config, "LogConfig");
    const char *type = json_string_value(json_object_get(lc, "Type"));
    if (type == NULL || type[0] == '\0') {
        json_t *opts = json_object_get(lc, "Config");
        json_t *copy = json_is_object(opts) ? json_deep_copy(opts) : json_object();
        json_object_set_new(host_config, "LogConfig",
                            json_pack("{s:s,s:o}", "Type",
                                      c->config->log.driver == CTR_LOG_NONE ? "none" : "json-file",
                                      "Config", copy));
    }
    if (json_object_get(host_config, "Init") == NULL)
        json_object_set_new(host_config, "Init", json_null());
    if (c->plan.health.kind != CTR_HEALTH_NONE)
        json_object_set_new(config, "Healthcheck", ctr_health_config_to_json(&c->plan.health));
}

/* ---- health state ---- */

const char *ctr_health_status_name(enum ctr_health_status s)
{
    switch (s) {
    case CTR_HEALTH_STARTING:
        return "starting";
    case CTR_HEALTH_HEALTHY:
        return "healthy";
    case CTR_HEALTH_UNHEALTHY:
        return "unhealthy";
    case CTR_HEALTH_UNSET:
    default:
        return "none";
    }
}

bool ctr_health_apply(struct ctr_health_state *h, const struct ctr_health_config *cfg,
                      bool in_start_period, int exit_code, const char *start, const char *end,
                      const char *output)
{
    enum ctr_health_status old = h->status;
    if (h->log == NULL)
        h->log = json_array();
    json_array_append_new(h->log, json_pack("{s:s,s:s,s:i,s:s}", "Start", start, "End", end,
                                            "ExitCode", exit_code, "Output", output));
    while (json_array_size(h->log) > CTR_HEALTH_LOG_MAX)
        json_array_remove(h->log, 0);
    if (exit_code == 0) {
        h->failing_streak = 0;
        h->status = CTR_HEALTH_HEALTHY;
    } else if (!(h->status == CTR_HEALTH_STARTING && in_start_period)) {
        h->failing_streak++;
        if (h->failing_streak >= cfg->retries)
            h->status = CTR_HEALTH_UNHEALTHY;
    }
    return h->status != old;
}

json_t *ctr_health_state_json(const struct ctr_health_state *h)
{
    /* a copy: the live log changes under the manager lock while the answer is written */
    return json_pack("{s:s,s:i,s:o}", "Status", ctr_health_status_name(h->status),
                     "FailingStreak", h->failing_streak, "Log",
                     h->log != NULL ? json_deep_copy(h->log) : json_array());
}

void ctr_health_state_from_json(const json_t *j, struct ctr_health_state *h)
{
    memset(h, 0, sizeof *h);
    const char *status = json_string_value(json_object_get(j, "Status"));
    for (int s = CTR_HEALTH_STARTING; status != NULL && s <= CTR_HEALTH_UNHEALTHY; s++)
        if (strcmp(status, ctr_health_status_name((enum ctr_health_status)s)) == 0)
            h->status = (enum ctr_health_status)s;
    if (h->status == CTR_HEALTH_UNSET)
        return;
    h->failing_streak = (int)json_integer_value(json_object_get(j, "FailingStreak"));
    const json_t *log = json_object_get(j, "Log");
    h->log = json_is_array(log) ? json_deep_copy(log) : NULL;
}
