/* --default-ulimit and --log-opt (see defaults.h). */
#include "defaults.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "lifecycle.h"

static int parse_int64(const char *s, size_t len, long long *out)
{
    char buf[32];
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end = NULL;
    errno = 0;
    *out = strtoll(buf, &end, 10);
    return errno != 0 || *end != '\0' ? -1 : 0;
}

int ctr_default_ulimit_parse(const char *text, struct ctr_ulimit *out, struct merr *err)
{
    const char *eq = strchr(text, '=');
    if (eq == NULL)
        return merr_set(err, MERR_INVALID, 0, "invalid ulimit argument: %s", text);
    const char *vals = eq + 1, *colon = strchr(vals, ':');
    if (colon != NULL && strchr(colon + 1, ':') != NULL)
        return merr_set(err, MERR_INVALID, 0,
                        "too many limit value arguments - %s, can only have up to two, "
                        "`soft[:hard]`",
                        vals);
    long long soft, hard;
    size_t soft_len = colon != NULL ? (size_t)(colon - vals) : strlen(vals);
    if (parse_int64(vals, soft_len, &soft) < 0 ||
        (colon != NULL && parse_int64(colon + 1, strlen(colon + 1), &hard) < 0))
        return merr_set(err, MERR_INVALID, 0, "invalid ulimit value: %s", text);
    if (colon == NULL)
        hard = soft;
    json_t *j = json_pack("{s:o,s:I,s:I}", "Name", json_stringn(text, (size_t)(eq - text)),
                          "Soft", (json_int_t)soft, "Hard", (json_int_t)hard);
    if (j == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot parse ulimit");
    int rc = ctr_ulimit_parse(j, out, err);
    json_decref(j);
    return rc;
}

int ctr_default_log_opt_parse(const char *text, json_t *opts, struct merr *err)
{
    const char *eq = strchr(text, '=');
    if (eq == NULL || eq == text)
        return merr_set(err, MERR_INVALID, 0, "invalid log opt '%s': expected key=value", text);
    json_object_setn_new(opts, text, (size_t)(eq - text), json_string(eq + 1));
    return 0;
}

int ctr_default_log_opts_check(const char *driver, const json_t *opts, struct merr *err)
{
    json_t *lc = json_pack("{s:s,s:O}", "Type", driver != NULL ? driver : "json-file", "Config",
                           (json_t *)opts);
    if (lc == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot check log opts");
    struct ctr_log_config parsed;
    int rc = ctr_log_config_parse(lc, &parsed, err);
    json_decref(lc);
    return rc;
}

json_t *ctr_log_defaults_apply(const json_t *body, const char *driver, const json_t *opts)
{
    const json_t *hc = json_object_get(body, "HostConfig");
    const json_t *lc = json_object_get(hc, "LogConfig");
    const char *type = json_string_value(json_object_get(lc, "Type"));
    if (driver == NULL)
        driver = "json-file";
    bool own_type = type != NULL && type[0] != '\0';
    bool merge_opts = opts != NULL && json_object_size(opts) > 0 &&
                      strcmp(own_type ? type : driver, driver) == 0;
    if ((own_type || strcmp(driver, "json-file") == 0) && !merge_opts)
        return json_incref((json_t *)body);
    if (!json_is_object(body) || (hc != NULL && !json_is_object(hc)) ||
        (lc != NULL && !json_is_null(lc) && !json_is_object(lc)))
        return json_incref((json_t *)body); /* the parser refuses it with docker's words */
    const json_t *own = json_object_get(lc, "Config");
    if (own != NULL && !json_is_null(own) && !json_is_object(own))
        return json_incref((json_t *)body); /* the parser refuses it with docker's words */
    json_t *out = json_deep_copy(body);
    json_t *ohc = json_object_get(out, "HostConfig");
    if (ohc == NULL) {
        ohc = json_object();
        json_object_set_new(out, "HostConfig", ohc);
    }
    json_t *olc = json_object_get(ohc, "LogConfig");
    if (!json_is_object(olc)) {
        olc = json_object();
        json_object_set_new(ohc, "LogConfig", olc);
    }
    json_object_set_new(olc, "Type", json_string(own_type ? type : driver));
    if (!merge_opts)
        return out;
    json_t *cfg = json_object_get(olc, "Config");
    if (!json_is_object(cfg)) {
        cfg = json_object();
        json_object_set_new(olc, "Config", cfg);
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)opts, k, v) {
        if (json_object_get(cfg, k) == NULL)
            json_object_set(cfg, k, v);
    }
    return out;
}

size_t ctr_ulimits_merge(const struct ctr_ulimit *own, size_t n_own,
                         const struct ctr_ulimit *defaults, size_t n_defaults,
                         struct ctr_ulimit *out)
{
    size_t n = 0;
    for (size_t i = 0; i < n_own; i++)
        out[n++] = own[i];
    for (size_t i = 0; i < n_defaults; i++) {
        bool set = false;
        for (size_t j = 0; j < n_own && !set; j++)
            set = own[j].resource == defaults[i].resource;
        if (!set)
            out[n++] = defaults[i];
    }
    return n;
}
