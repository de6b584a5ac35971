/* The configuration instructions (ENV, LABEL, CMD, ...) applied to a container config object,
 * as the classic builder's dispatchers do, and docker commit --change on top of them. Pure. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build/dockerfile.h"
#include "error.h"
#include "fsutil.h"
#include "strv.h"

struct lookup2 {
    json_t *env;
    df_lookup_fn extra;
    void *extra_ctx;
};

/* The config's Env first, then the build args. */
static const char *lookup_both(void *ctx, const char *name)
{
    struct lookup2 *l = ctx;
    const char *v = df_lookup_env_array(l->env, name);
    if (v == NULL && l->extra != NULL)
        v = l->extra(l->extra_ctx, name);
    return v;
}

static json_t *obj_member(json_t *config, const char *key)
{
    json_t *o = json_object_get(config, key);
    if (!json_is_object(o)) {
        o = json_object();
        json_object_set_new(config, key, o);
    }
    return o;
}

/* Sets K=V in the Env array, in place when K is there. */
static void env_set(json_t *config, const char *key, const char *value)
{
    json_t *env = json_object_get(config, "Env");
    if (!json_is_array(env)) {
        env = json_array();
        json_object_set_new(config, "Env", env);
    }
    auto_free char *kv = xasprintf("%s=%s", key, value);
    size_t len = strlen(key), i;
    json_t *e;
    json_array_foreach(env, i, e)
    {
        const char *s = json_string_value(e);
        if (s != NULL && strncmp(s, key, len) == 0 && s[len] == '=') {
            json_array_set_new(env, i, json_string(kv));
            return;
        }
    }
    json_array_append_new(env, json_string(kv));
}

static json_t *strv_to_json(char *const *v)
{
    json_t *a = json_array();
    for (size_t i = 0; v != NULL && v[i] != NULL; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

/* The shell form wrapped in the config's SHELL (default /bin/sh -c). */
static json_t *shell_form(json_t *config, const char *cmdline)
{
    json_t *shell = json_object_get(config, "Shell");
    json_t *a = json_array_size(shell) > 0 ? json_deep_copy(shell)
                                           : json_pack("[s,s]", "/bin/sh", "-c");
    json_array_append_new(a, json_string(cmdline));
    return a;
}

static int pairs(json_t *config, const struct df_instr *in, char escape, struct lookup2 *lk,
                 bool env, struct merr *err)
{
    size_t n = 0;
    while (in->args[n] != NULL)
        n++;
    /* every value sees the variables as they were before this instruction */
    auto_strv char **exp = calloc(n + 1, sizeof *exp);
    if (exp == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    for (size_t i = 0; i < n; i++)
        if ((exp[i] = df_expand_word(in->args[i], escape, lookup_both, lk, err)) == NULL)
            return -1;
    for (size_t i = 0; i + 1 < n; i += 2) {
        if (exp[i][0] == '\0')
            return merr_set(err, MERR_INVALID, 0, "%s names can not be blank",
                            env ? "ENV" : "LABEL");
        if (env)
            env_set(config, exp[i], exp[i + 1]);
        else
            json_object_set_new(obj_member(config, "Labels"), exp[i], json_string(exp[i + 1]));
    }
    return 0;
}

static bool port_number(const char *s, size_t len, long *out)
{
    if (len == 0 || len > 5)
        return false;
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return v >= 0 && v <= 65535;
}

/* "80", "80/udp", "8000-8002/tcp" → ExposedPorts keys. */
static int expose_one(json_t *ports, const char *spec, struct merr *err)
{
    const char *slash = strchr(spec, '/');
    const char *proto = slash != NULL ? slash + 1 : "tcp";
    size_t plen = slash != NULL ? (size_t)(slash - spec) : strlen(spec);
    if (strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0 && strcmp(proto, "sctp") != 0)
        return merr_set(err, MERR_INVALID, 0, "invalid proto: %s", proto);
    const char *dash = memchr(spec, '-', plen);
    long lo, hi;
    if (!port_number(spec, dash != NULL ? (size_t)(dash - spec) : plen, &lo) ||
        (dash != NULL && !port_number(dash + 1, plen - (size_t)(dash - spec) - 1, &hi)))
        return merr_set(err, MERR_INVALID, 0, "invalid containerPort: %.*s", (int)plen, spec);
    if (dash == NULL)
        hi = lo;
    if (hi < lo)
        return merr_set(err, MERR_INVALID, 0, "invalid range specified for container port: %s",
                        spec);
    for (long p = lo; p <= hi; p++) {
        char key[32];
        snprintf(key, sizeof key, "%ld/%s", p, proto);
        json_object_set_new(ports, key, json_object());
    }
    return 0;
}

/* path.Join + Clean for WORKDIR. */
static char *clean_abs(const char *base, const char *rel)
{
    auto_free char *joined = rel[0] == '/' ? xstrdup(rel) : xasprintf("%s/%s", base, rel);
    char **parts = NULL;
    size_t n = 0;
    for (char *save = NULL, *t = strtok_r(joined, "/", &save); t != NULL;
         t = strtok_r(NULL, "/", &save)) {
        if (strcmp(t, ".") == 0)
            continue;
        if (strcmp(t, "..") == 0) {
            if (n > 0)
                free(parts[--n]);
            continue;
        }
        parts = realloc(parts, (n + 1) * sizeof *parts);
        if (parts == NULL)
            abort();
        parts[n++] = xstrdup(t);
    }
    size_t len = 2;
    for (size_t i = 0; i < n; i++)
        len += strlen(parts[i]) + 1;
    char *out = calloc(1, len);
    if (out == NULL)
        abort();
    for (size_t i = 0; i < n; i++) {
        strcat(out, "/");
        strcat(out, parts[i]);
        free(parts[i]);
    }
    free(parts);
    if (out[0] == '\0')
        strcpy(out, "/");
    return out;
}

static bool signal_valid(const char *s)
{
    static const char *const names[] = {
        "ABRT", "ALRM", "BUS",  "CHLD", "CONT", "FPE",  "HUP",    "ILL",   "INT",  "IO",
        "IOT",  "KILL", "PIPE", "POLL", "PROF", "PWR",  "QUIT",   "SEGV",  "STKFLT", "STOP",
        "SYS",  "TERM", "TRAP", "TSTP", "TTIN", "TTOU", "URG",    "USR1",  "USR2", "VTALRM",
        "WINCH", "XCPU", "XFSZ", NULL,
    };
    char *end;
    long n = strtol(s, &end, 10);
    if (*s != '\0' && *end == '\0')
        return n > 0 && n <= 64;
    if (strncasecmp(s, "SIG", 3) == 0)
        s += 3;
    if (strncasecmp(s, "RTMIN", 5) == 0 || strncasecmp(s, "RTMAX", 5) == 0)
        return true;
    for (size_t i = 0; names[i] != NULL; i++)
        if (strcasecmp(s, names[i]) == 0)
            return true;
    return false;
}

/* Go's time.ParseDuration for the HEALTHCHECK flags: "30s", "1m30s", "1.5h", "500ms". */
static int go_duration(const char *s, long long *ns, struct merr *err)
{
    static const struct { const char *unit; long long mult; } units[] = {
        { "ns", 1 }, { "us", 1000 }, { "µs", 1000 }, { "ms", 1000000 },
        { "s", 1000000000LL }, { "m", 60000000000LL }, { "h", 3600000000000LL },
    };
    const char *p = s;
    double total = 0;
    if (strcmp(s, "0") == 0) {
        *ns = 0;
        return 0;
    }
    while (*p != '\0') {
        char *end;
        double v = strtod(p, &end);
        if (end == p || v < 0)
            return merr_set(err, MERR_INVALID, 0, "time: invalid duration \"%s\"", s);
        p = end;
        size_t best = 0, best_len = 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            size_t l = strlen(units[i].unit);
            if (strncmp(p, units[i].unit, l) == 0 && l > best_len) {
                best = i;
                best_len = l;
            }
        }
        if (best_len == 0)
            return merr_set(err, MERR_INVALID, 0, "time: missing unit in duration \"%s\"", s);
        total += v * (double)units[best].mult;
        p += best_len;
    }
    *ns = (long long)total;
    return 0;
}

static int healthcheck(json_t *config, const struct df_instr *in, struct merr *err)
{
    if (strcmp(in->args[0], "NONE") == 0) {
        json_object_set_new(config, "Healthcheck", json_pack("{s:[s]}", "Test", "NONE"));
        return 0;
    }
    json_t *hc = json_object();
    json_object_set_new(config, "Healthcheck", hc);
    json_t *test = in->json ? strv_to_json(in->args)
                            : json_pack("[s,s]", "CMD-SHELL", in->args[1]);
    json_object_set_new(hc, "Test", test);
    for (size_t i = 0; in->flags[i] != NULL; i++) {
        const char *f = in->flags[i] + 2;
        const char *eq = strchr(f, '=');
        const char *v = eq != NULL ? eq + 1 : "";
        size_t klen = eq != NULL ? (size_t)(eq - f) : strlen(f);
        static const char *const keys[][2] = { { "interval", "Interval" },
                                               { "timeout", "Timeout" },
                                               { "start-period", "StartPeriod" },
                                               { "start-interval", "StartInterval" } };
        bool done = false;
        for (size_t k = 0; k < 4 && !done; k++) {
            if (strlen(keys[k][0]) != klen || strncmp(f, keys[k][0], klen) != 0)
                continue;
            long long ns = 0;
            if (go_duration(v, &ns, err) < 0)
                return -1;
            json_object_set_new(hc, keys[k][1], json_integer(ns));
            done = true;
        }
        if (!done && klen == 7 && strncmp(f, "retries", 7) == 0) {
            char *end;
            long r = strtol(v, &end, 10);
            if (*v == '\0' || *end != '\0' || r < 0)
                return merr_set(err, MERR_INVALID, 0, "invalid value for --retries: %s", v);
            json_object_set_new(hc, "Retries", json_integer(r));
            done = true;
        }
        if (!done)
            return merr_set(err, MERR_INVALID, 0, "Unknown flag: %.*s", (int)klen, f);
    }
    return 0;
}

static int words_of(const struct df_instr *in, char escape, struct lookup2 *lk, char ***out,
                    struct merr *err)
{
    if (!in->json) {
        *out = df_expand_words(in->rest, escape, lookup_both, lk, err);
        return *out != NULL ? 0 : -1;
    }
    size_t n = 0;
    while (in->args[n] != NULL)
        n++;
    char **v = calloc(n + 1, sizeof *v);
    if (v == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    for (size_t i = 0; i < n; i++)
        if ((v[i] = df_expand_word(in->args[i], escape, lookup_both, lk, err)) == NULL) {
            strv_free(v);
            return -1;
        }
    *out = v;
    return 0;
}

static int list_instr(json_t *config, const struct df_instr *in, char escape, struct lookup2 *lk,
                      struct merr *err)
{
    auto_strv char **words = NULL;
    if (words_of(in, escape, lk, &words, err) < 0)
        return -1;
    bool volume = strcmp(in->cmd, "volume") == 0;
    json_t *target = obj_member(config, volume ? "Volumes" : "ExposedPorts");
    for (size_t i = 0; words[i] != NULL; i++) {
        if (volume) {
            if (words[i][0] == '\0')
                return merr_set(err, MERR_INVALID, 0,
                                "VOLUME specified can not be an empty string");
            json_object_set_new(target, words[i], json_object());
        } else if (expose_one(target, words[i], err) < 0) {
            return -1;
        }
    }
    return 0;
}

static int single(json_t *config, const struct df_instr *in, char escape, struct lookup2 *lk,
                  struct merr *err)
{
    auto_free char *v = df_expand_word(in->rest, escape, lookup_both, lk, err);
    if (v == NULL)
        return -1;
    if (strcmp(in->cmd, "user") == 0) {
        json_object_set_new(config, "User", json_string(v));
    } else if (strcmp(in->cmd, "workdir") == 0) {
        const char *cur = json_string_value(json_object_get(config, "WorkingDir"));
        auto_free char *wd = clean_abs(cur != NULL && cur[0] ? cur : "/", v);
        json_object_set_new(config, "WorkingDir", json_string(wd));
    } else {
        if (!signal_valid(v))
            return merr_set(err, MERR_INVALID, 0, "Invalid signal: %s", v);
        json_object_set_new(config, "StopSignal", json_string(v));
    }
    return 0;
}

static int command(json_t *config, const struct df_instr *in, bool *cmd_set)
{
    const char *c = in->cmd;
    if (strcmp(c, "shell") == 0) {
        json_object_set_new(config, "Shell", strv_to_json(in->args));
        return 0;
    }
    json_t *v = in->json ? strv_to_json(in->args) : shell_form(config, in->args[0]);
    if (strcmp(c, "cmd") == 0) {
        json_object_set_new(config, "Cmd", v);
        if (cmd_set != NULL)
            *cmd_set = true;
        return 0;
    }
    json_object_set_new(config, "Entrypoint", json_array_size(v) > 0 ? v : json_null());
    if (json_array_size(v) == 0)
        json_decref(v);
    if (cmd_set == NULL || !*cmd_set)
        json_object_set_new(config, "Cmd", json_null());
    return 0;
}

int df_apply_config(json_t *config, const struct df_instr *in, char escape, df_lookup_fn extra,
                    void *extra_ctx, char **author, bool *cmd_set, struct merr *err)
{
    struct lookup2 lk = { json_object_get(config, "Env"), extra, extra_ctx };
    const char *c = in->cmd;
    if (strcmp(c, "healthcheck") != 0 && in->flags != NULL && in->flags[0] != NULL)
        return merr_set(err, MERR_INVALID, 0, "Unknown flag: %s", in->flags[0] + 2);
    if (strcmp(c, "env") == 0 || strcmp(c, "label") == 0)
        return pairs(config, in, escape, &lk, c[0] == 'e', err);
    if (strcmp(c, "expose") == 0 || strcmp(c, "volume") == 0)
        return list_instr(config, in, escape, &lk, err);
    if (strcmp(c, "user") == 0 || strcmp(c, "workdir") == 0 || strcmp(c, "stopsignal") == 0)
        return single(config, in, escape, &lk, err);
    if (strcmp(c, "cmd") == 0 || strcmp(c, "entrypoint") == 0 || strcmp(c, "shell") == 0)
        return command(config, in, cmd_set);
    if (strcmp(c, "healthcheck") == 0)
        return healthcheck(config, in, err);
    if (strcmp(c, "maintainer") == 0) {
        if (author != NULL) {
            free(*author);
            *author = xstrdup(in->rest);
        }
        return 0;
    }
    if (strcmp(c, "onbuild") == 0) {
        json_t *ob = json_object_get(config, "OnBuild");
        if (!json_is_array(ob)) {
            ob = json_array();
            json_object_set_new(config, "OnBuild", ob);
        }
        json_array_append_new(ob, json_string(in->args[0]));
        return 0;
    }
    return merr_set(err, MERR_UNSUPPORTED, 0, "%s is not a configuration instruction", c);
}

int df_apply_changes(json_t *config, const char *const *changes, struct merr *err)
{
    static const char *const allowed[] = { "cmd",     "entrypoint", "env",        "expose",
                                           "healthcheck", "label",  "onbuild",    "stopsignal",
                                           "user",    "volume",     "workdir",    NULL };
    bool cmd_set = false;
    for (size_t i = 0; changes != NULL && changes[i] != NULL; i++) {
        const char *line = changes[i];
        while (isspace((unsigned char)*line))
            line++;
        if (*line == '\0')
            continue;
        struct df_instr *in = NULL;
        if (df_parse_line(line, '\\', &in, err) < 0)
            return -1;
        bool ok = false;
        for (size_t k = 0; allowed[k] != NULL; k++)
            ok = ok || strcmp(in->cmd, allowed[k]) == 0;
        int rc = ok ? df_apply_config(config, in, '\\', NULL, NULL, NULL, &cmd_set, err)
                    : merr_set(err, MERR_INVALID, 0, "%s is not a valid change command",
                               in->cmd);
        df_instr_free(in);
        free(in);
        if (rc < 0)
            return -1;
    }
    return 0;
}
