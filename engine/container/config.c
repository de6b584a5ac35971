#include "config.h"

#include <ctype.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "fields.h"
#include "fsutil.h"
#include "strv.h"

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define MIN_MEMORY (6 * 1024 * 1024)

void ctr_config_free(struct ctr_config *c)
{
    if (c == NULL)
        return;
    free(c->image);
    strv_free(c->entrypoint);
    strv_free(c->cmd);
    strv_free(c->env);
    free(c->working_dir);
    free(c->user);
    free(c->hostname);
    free(c->stop_signal);
    json_decref(c->labels);
    free(c->network_mode);
    strv_free(c->cap_add);
    strv_free(c->cap_drop);
    ctr_options_release(&c->opts);
    json_decref(c->raw_config);
    json_decref(c->raw_host_config);
    free(c);
}

/* A string list field: absent/null → NULL; a plain string → one element (old clients). */
static int get_list(const json_t *obj, const char *key, char ***out, struct merr *err)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_string(v)) {
        *out = strv_push(NULL, json_string_value(v));
        return 0;
    }
    if (!json_is_array(v))
        return merr_set(err, MERR_INVALID, 0, "invalid %s: expected a list of strings", key);
    char **list = xcalloc(1, sizeof *list);
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
        if (!json_is_string(e)) {
            strv_free(list);
            return merr_set(err, MERR_INVALID, 0, "invalid %s: expected a list of strings", key);
        }
        list = strv_push(list, json_string_value(e));
    }
    *out = list;
    return 0;
}

static int get_str(const json_t *obj, const char *key, char **out, struct merr *err)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return merr_set(err, MERR_INVALID, 0, "invalid %s: expected a string", key);
    if (json_string_value(v)[0] != '\0')
        *out = xstrdup(json_string_value(v));
    return 0;
}

static bool get_bool(const json_t *obj, const char *key)
{
    return json_is_true(json_object_get(obj, key));
}

static int get_i64(const json_t *obj, const char *key, int64_t *out, struct merr *err)
{
    json_t *v = json_object_get(obj, key);
    *out = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v))
        return merr_set(err, MERR_INVALID, 0, "invalid %s: expected an integer", key);
    *out = json_integer_value(v);
    return 0;
}

int ctr_name_validate(const char *name, struct merr *err)
{
    const char *n = name[0] == '/' ? name + 1 : name;
    size_t len = strlen(n);
    bool ok = len >= 2 && len <= 253 && isalnum((unsigned char)n[0]);
    for (size_t i = 1; ok && i < len; i++)
        ok = isalnum((unsigned char)n[i]) || n[i] == '_' || n[i] == '.' || n[i] == '-';
    if (!ok)
        return merr_set(err, MERR_INVALID, 0,
                        "Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                        name);
    return 0;
}

static int parse_restart(struct ctr_config *c, const json_t *hc, struct merr *err)
{
    json_t *rp = json_object_get(hc, "RestartPolicy");
    c->restart = RESTART_NO;
    c->restart_max_retries = 0;
    if (!json_is_object(rp))
        return 0;
    const char *name = json_string_value(json_object_get(rp, "Name"));
    json_t *max = json_object_get(rp, "MaximumRetryCount");
    long long retries = json_is_integer(max) ? json_integer_value(max) : 0;
    if (name == NULL || name[0] == '\0' || strcmp(name, "no") == 0)
        c->restart = RESTART_NO;
    else if (strcmp(name, "always") == 0)
        c->restart = RESTART_ALWAYS;
    else if (strcmp(name, "unless-stopped") == 0)
        c->restart = RESTART_UNLESS_STOPPED;
    else if (strcmp(name, "on-failure") == 0)
        c->restart = RESTART_ON_FAILURE;
    else
        return merr_set(err, MERR_INVALID, 0, "invalid restart policy '%s'", name);
    if (retries < 0)
        return merr_set(err, MERR_INVALID, 0,
                        "invalid restart policy: maximum retry count cannot be negative");
    if (retries > 0 && c->restart != RESTART_ON_FAILURE)
        return merr_set(err, MERR_INVALID, 0, "invalid restart policy: maximum retry count can only "
                                              "be used with 'on-failure'");
    c->restart_max_retries = (int)retries;
    return 0;
}

/* dockerd: RFC 1123 labels of letters, digits and inner dashes, 63 bytes at most. */
static int validate_hostname(const char *h, struct merr *err)
{
    size_t len = h != NULL ? strlen(h) : 0;
    bool ok = len <= 63;
    for (size_t i = 0, label = 0; ok && i < len; i++, label++) {
        bool end = i + 1 == len || h[i + 1] == '.';
        if (h[i] == '.')
            ok = label > 0 && i + 1 < len, label = (size_t)-1;
        else if (h[i] == '-')
            ok = label > 0 && !end;
        else
            ok = isalnum((unsigned char)h[i]);
    }
    return ok ? 0 : merr_set(err, MERR_INVALID, 0, "invalid hostname format: %s", h);
}

static int validate_resources(const struct ctr_config *c, struct merr *err)
{
    if (c->pids_limit < -1) /* dockerd: 0 and -1 are unlimited */
        return merr_set(err, MERR_INVALID, 0,
                        "invalid PIDs limit %lld: use a positive number, or 0 or -1 for unlimited",
                        (long long)c->pids_limit);
    if (c->memory < 0 || c->nano_cpus < 0 || c->cpu_quota < -1 || c->cpu_period < 0 ||
        c->cpu_shares < 0)
        return merr_set(err, MERR_INVALID, 0, "resource limits cannot be negative");
    if (c->memory > 0 && c->memory < MIN_MEMORY)
        return merr_set(err, MERR_INVALID, 0, "Minimum memory limit allowed is 6MB");
    if (c->memory_swap > 0 && c->memory > 0 && c->memory_swap < c->memory)
        return merr_set(err, MERR_INVALID, 0, "Minimum memoryswap limit should be larger than "
                                              "memory limit, see usage");
    if (c->nano_cpus > 0 && (c->cpu_quota > 0 || c->cpu_period > 0))
        return merr_set(err, MERR_INVALID, 0,
                        "Conflicting options: Nano CPUs and CPU Period cannot both be set");
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu > 0 && c->nano_cpus > ncpu * 1000000000LL)
        return merr_set(err, MERR_INVALID, 0,
                        "Range of CPUs is from 0.01 to %ld.00, as there are only %ld CPUs available",
                        ncpu, ncpu);
    if (c->nano_cpus > 0 && c->nano_cpus < 10000000)
        return merr_set(err, MERR_INVALID, 0, "Range of CPUs is from 0.01 to %ld.00", ncpu);
    if (c->cpu_period != 0 && (c->cpu_period < 1000 || c->cpu_period > 1000000))
        return merr_set(err, MERR_INVALID, 0, "CPU cfs period can not be less than 1ms (i.e. 1000) "
                                              "or larger than 1 second (i.e. 1000000)");
    if (c->cpu_quota > 0 && c->cpu_quota < 1000)
        return merr_set(err, MERR_INVALID, 0, "CPU cfs quota can not be less than 1ms (i.e. 1000)");
    return 0;
}

/* The engine is its own runtime, answering to dockerd's default name. */
static int validate_runtime(const json_t *hc, struct merr *err)
{
    const json_t *v = json_object_get(hc, "Runtime");
    if (v == NULL || json_is_null(v))
        return 0;
    const char *name = json_string_value(v);
    if (name == NULL)
        return merr_set(err, MERR_INVALID, 0, "invalid Runtime: expected a string");
    if (name[0] == '\0' || strcmp(name, "runc") == 0)
        return 0;
    return merr_set(err, MERR_INVALID, 0, "unknown or invalid runtime name: %s", name);
}

static int validate_env(char *const *env, struct merr *err)
{
    for (size_t i = 0; env != NULL && env[i] != NULL; i++)
        if (env[i][0] == '=' || env[i][0] == '\0')
            return merr_set(err, MERR_INVALID, 0, "invalid environment variable: %s", env[i]);
    return 0;
}

static struct ctr_config *parse(const json_t *cfg, const json_t *hc, struct merr *err)
{
    __attribute__((cleanup(cleanup_ctr_config_freep))) struct ctr_config *c = xcalloc(1, sizeof *c);
    c->stop_timeout = -1;
    if (get_str(cfg, "Image", &c->image, err) < 0 || get_list(cfg, "Entrypoint", &c->entrypoint, err) < 0 ||
        get_list(cfg, "Cmd", &c->cmd, err) < 0 || get_list(cfg, "Env", &c->env, err) < 0 ||
        get_str(cfg, "WorkingDir", &c->working_dir, err) < 0 || get_str(cfg, "User", &c->user, err) < 0 ||
        get_str(cfg, "Hostname", &c->hostname, err) < 0 ||
        get_str(cfg, "StopSignal", &c->stop_signal, err) < 0)
        return NULL;
    if (c->image == NULL) {
        merr_set(err, MERR_INVALID, 0, "no image specified");
        return NULL;
    }
    if (c->env == NULL)
        c->env = xcalloc(1, sizeof *c->env);
    if (validate_env(c->env, err) < 0 || validate_hostname(c->hostname, err) < 0)
        return NULL;
    if (c->working_dir != NULL && c->working_dir[0] != '/') {
        merr_set(err, MERR_INVALID, 0,
                 "the working directory '%s' is invalid, it needs to be an absolute path",
                 c->working_dir);
        return NULL;
    }
    if (c->stop_signal != NULL && ctr_signal_parse(c->stop_signal) < 0) {
        merr_set(err, MERR_INVALID, 0, "Invalid signal: %s", c->stop_signal);
        return NULL;
    }
    c->tty = get_bool(cfg, "Tty");
    c->open_stdin = get_bool(cfg, "OpenStdin");
    c->stdin_once = get_bool(cfg, "StdinOnce");
    c->attach_stdin = get_bool(cfg, "AttachStdin");
    c->attach_stdout = get_bool(cfg, "AttachStdout");
    c->attach_stderr = get_bool(cfg, "AttachStderr");
    json_t *st = json_object_get(cfg, "StopTimeout");
    if (json_is_integer(st))
        c->stop_timeout = (int)json_integer_value(st);
    json_t *labels = json_object_get(cfg, "Labels");
    c->labels = json_object();
    if (json_is_object(labels)) {
        const char *k;
        json_t *v;
        json_object_foreach(labels, k, v) {
            if (!json_is_string(v)) {
                merr_set(err, MERR_INVALID, 0, "invalid label '%s': value must be a string", k);
                return NULL;
            }
            json_object_set(c->labels, k, v);
        }
    }

    c->auto_remove = get_bool(hc, "AutoRemove");
    c->privileged = get_bool(hc, "Privileged");
    c->readonly_rootfs = get_bool(hc, "ReadonlyRootfs");
    if (get_str(hc, "NetworkMode", &c->network_mode, err) < 0 ||
        get_i64(hc, "Memory", &c->memory, err) < 0 || get_i64(hc, "MemorySwap", &c->memory_swap, err) < 0 ||
        get_i64(hc, "NanoCpus", &c->nano_cpus, err) < 0 || get_i64(hc, "CpuQuota", &c->cpu_quota, err) < 0 ||
        get_i64(hc, "CpuPeriod", &c->cpu_period, err) < 0 ||
        get_i64(hc, "CpuShares", &c->cpu_shares, err) < 0 ||
        get_i64(hc, "PidsLimit", &c->pids_limit, err) < 0 || get_list(hc, "CapAdd", &c->cap_add, err) < 0 ||
        get_list(hc, "CapDrop", &c->cap_drop, err) < 0 || parse_restart(c, hc, err) < 0 ||
        validate_resources(c, err) < 0 || validate_runtime(hc, err) < 0 ||
        ctr_options_parse(cfg, hc, &c->opts, err) < 0)
        return NULL;
    if (c->network_mode == NULL)
        c->network_mode = xstrdup("default");
    c->init = get_bool(hc, "Init");
    if (ctr_log_config_parse(json_object_get(hc, "LogConfig"), &c->log, err) < 0 ||
        ctr_health_validate(json_object_get(cfg, "Healthcheck"), err) < 0)
        return NULL;
    if (c->auto_remove && c->restart != RESTART_NO) {
        merr_set(err, MERR_INVALID, 0, "can't create 'AutoRemove' container with restart policy");
        return NULL;
    }
    c->raw_config = json_deep_copy(cfg);
    c->raw_host_config = json_deep_copy(hc);
    return steal_pointer(&c);
}

struct ctr_config *ctr_config_from_create(const json_t *body, struct merr *err)
{
    if (!json_is_object(body)) {
        merr_set(err, MERR_INVALID, 0, "config cannot be empty in order to create a container");
        return NULL;
    }
    json_t *canon = json_deep_copy(body);
    ctr_fields_canonicalize(canon);
    if (ctr_fields_check(canon, err) < 0 || validate_runtime(canon, err) < 0) {
        json_decref(canon);
        return NULL;
    }
    json_t *hc = json_object_get(canon, "HostConfig");
    json_t *empty = json_object();
    json_t *cfg = json_deep_copy(canon);
    json_object_del(cfg, "HostConfig");
    json_object_del(cfg, "NetworkingConfig");
    json_object_del(cfg, "Runtime"); /* docker-py's place for HostConfig.Runtime, checked above */
    struct ctr_config *c = parse(cfg, json_is_object(hc) ? hc : empty, err);
    json_decref(cfg);
    json_decref(empty);
    json_decref(canon);
    return c;
}

json_t *ctr_config_to_json(const struct ctr_config *c)
{
    return json_pack("{s:O,s:O}", "Config", c->raw_config, "HostConfig", c->raw_host_config);
}

struct ctr_config *ctr_config_from_json(const json_t *j, struct merr *err)
{
    json_t *cfg = json_object_get(j, "Config");
    json_t *hc = json_object_get(j, "HostConfig");
    if (!json_is_object(cfg) || !json_is_object(hc)) {
        merr_set(err, MERR_CORRUPT, 0, "container record has no Config/HostConfig");
        return NULL;
    }
    struct ctr_config *c = parse(cfg, hc, err);
    if (c == NULL)
        err->code = MERR_CORRUPT;
    return c;
}

void ctr_process_plan_release(struct ctr_process_plan *p)
{
    strv_free(p->argv);
    strv_free(p->env);
    free(p->cwd);
    free(p->user);
    json_decref(p->labels);
    free(p->stop_signal);
    ctr_health_config_release(&p->health);
    memset(p, 0, sizeof *p);
}

static char **image_list(const json_t *image_config, const char *key)
{
    char **out = NULL;
    struct merr ignored;
    if (image_config != NULL && get_list(image_config, key, &out, &ignored) < 0)
        return NULL;
    return out;
}

static const char *image_str(const json_t *image_config, const char *key)
{
    const char *s = json_string_value(json_object_get(image_config, key));
    return s != NULL && s[0] != '\0' ? s : NULL;
}

/* Sets K=V in env, replacing an existing K. */
static char **env_set(char **env, const char *kv)
{
    const char *eq = strchr(kv, '=');
    size_t klen = eq != NULL ? (size_t)(eq - kv) : strlen(kv);
    for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
        const char *e = env[i];
        if (strncmp(e, kv, klen) == 0 && (e[klen] == '=' || e[klen] == '\0')) {
            free(env[i]);
            env[i] = xstrdup(kv);
            return env;
        }
    }
    return strv_push(env, kv);
}

void ctr_env_drop_unset(char **env)
{
    size_t w = 0;
    for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
        if (strchr(env[i], '=') != NULL)
            env[w++] = env[i];
        else
            free(env[i]);
    }
    if (env != NULL)
        env[w] = NULL;
}

char **ctr_env_override(char **env, char *const *overrides)
{
    for (size_t i = 0; overrides != NULL && overrides[i] != NULL; i++) {
        const char *o = overrides[i];
        if (strchr(o, '=') != NULL) {
            env = env_set(env, o);
            continue;
        }
        size_t k = strlen(o), w = 0;
        for (size_t j = 0; env != NULL && env[j] != NULL; j++) {
            if (strncmp(env[j], o, k) == 0 && (env[j][k] == '=' || env[j][k] == '\0'))
                free(env[j]);
            else
                env[w++] = env[j];
        }
        if (env != NULL)
            env[w] = NULL;
    }
    return env;
}

int ctr_plan(const struct ctr_config *c, const json_t *image_config, struct ctr_process_plan *out,
             struct merr *err)
{
    memset(out, 0, sizeof *out);
    /* moby: a user entrypoint replaces the image's and drops the image's Cmd. */
    bool user_entrypoint = c->entrypoint != NULL && c->entrypoint[0] != NULL;
    auto_strv char **entry = user_entrypoint ? strv_dup(c->entrypoint)
                             : c->entrypoint != NULL ? NULL
                                                     : image_list(image_config, "Entrypoint");
    auto_strv char **cmd = c->cmd != NULL ? strv_dup(c->cmd)
                           : user_entrypoint ? NULL
                                             : image_list(image_config, "Cmd");
    /* --entrypoint "" arrives as [""]: no entrypoint at all. */
    if (entry != NULL && entry[0] != NULL && entry[0][0] == '\0' && entry[1] == NULL) {
        strv_free(entry);
        entry = NULL;
    }
    char **argv = xcalloc(1, sizeof *argv);
    for (size_t i = 0; entry != NULL && entry[i] != NULL; i++)
        argv = strv_push(argv, entry[i]);
    for (size_t i = 0; cmd != NULL && cmd[i] != NULL; i++)
        argv = strv_push(argv, cmd[i]);
    if (argv[0] == NULL || argv[0][0] == '\0') {
        strv_free(argv);
        return merr_set(err, MERR_INVALID, 0, "No command specified");
    }
    out->argv = argv;

    char **env = xcalloc(1, sizeof *env);
    auto_strv char **image_env = image_list(image_config, "Env");
    for (size_t i = 0; image_env != NULL && image_env[i] != NULL; i++)
        env = env_set(env, image_env[i]);
    for (size_t i = 0; c->env[i] != NULL; i++) /* a bare "K" replaces the image's K=V */
        env = env_set(env, c->env[i]);
    bool has_path = false; /* a bare "PATH" unsets dockerd's default too */
    for (size_t i = 0; env[i] != NULL; i++)
        has_path |= strncmp(env[i], "PATH", 4) == 0 && (env[i][4] == '=' || env[i][4] == '\0');
    if (!has_path)
        env = strv_push(env, DEFAULT_PATH);
    out->env = env;

    const char *wd = c->working_dir != NULL ? c->working_dir : image_str(image_config, "WorkingDir");
    out->cwd = xstrdup(wd != NULL ? wd : "/");
    const char *user = c->user != NULL ? c->user : image_str(image_config, "User");
    out->user = xstrdup(user != NULL ? user : "");
    out->labels = json_object();
    json_t *il = json_object_get(image_config, "Labels");
    if (json_is_object(il))
        json_object_update(out->labels, il);
    json_object_update(out->labels, c->labels);
    const char *sig = c->stop_signal != NULL ? c->stop_signal : image_str(image_config, "StopSignal");
    out->stop_signal = xstrdup(sig != NULL ? sig : "SIGTERM");
    if (ctr_health_config_parse(json_object_get(c->raw_config, "Healthcheck"),
                                json_object_get(image_config, "Healthcheck"), &out->health,
                                err) < 0) {
        ctr_process_plan_release(out);
        return -1;
    }
    return 0;
}

int ctr_signal_parse(const char *s)
{
    static const struct {
        const char *name;
        int sig;
    } sigs[] = {
        { "HUP", SIGHUP },   { "INT", SIGINT },   { "QUIT", SIGQUIT }, { "ILL", SIGILL },
        { "TRAP", SIGTRAP }, { "ABRT", SIGABRT }, { "BUS", SIGBUS },   { "FPE", SIGFPE },
        { "KILL", SIGKILL }, { "USR1", SIGUSR1 }, { "SEGV", SIGSEGV }, { "USR2", SIGUSR2 },
        { "PIPE", SIGPIPE }, { "ALRM", SIGALRM }, { "TERM", SIGTERM }, { "CHLD", SIGCHLD },
        { "CONT", SIGCONT }, { "STOP", SIGSTOP }, { "TSTP", SIGTSTP }, { "TTIN", SIGTTIN },
        { "TTOU", SIGTTOU }, { "URG", SIGURG },   { "XCPU", SIGXCPU }, { "XFSZ", SIGXFSZ },
        { "VTALRM", SIGVTALRM }, { "PROF", SIGPROF }, { "WINCH", SIGWINCH }, { "IO", SIGIO },
        { "PWR", SIGPWR },   { "SYS", SIGSYS },
    };
    if (s == NULL || s[0] == '\0')
        return -1;
    if (isdigit((unsigned char)s[0])) {
        char *end = NULL;
        long v = strtol(s, &end, 10);
        return *end == '\0' && v > 0 && v < 65 ? (int)v : -1;
    }
    const char *name = strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        if (strcasecmp(name, sigs[i].name) == 0)
            return sigs[i].sig;
    return -1;
}
