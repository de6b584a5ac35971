/* machine-engine's flag table (see engine_flags.h). */
#include "engine_flags.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define F(n, s, k) { .name = n, .short_name = s, .kind = k }
#define U(n, lo, hi) { .name = n, .kind = EFLAG_UINT, .min = lo, .max = hi }
#define C(n, c, w) { .name = n, .kind = EFLAG_CHOICE, .choices = c, .why = w }
#define R(n, w) { .name = n, .kind = EFLAG_REFUSED, .why = w }

const struct engine_flag engine_flags[] = {
    F("host", 'H', EFLAG_LIST),
    F("data-root", 0, EFLAG_STRING),
    F("pidfile", 'p', EFLAG_STRING),
    F("exec-root", 0, EFLAG_STRING),
    F("bridge", 'b', EFLAG_STRING),
    F("bip", 0, EFLAG_STRING),
    F("default-address-pool", 0, EFLAG_STRING),
    F("insecure-registry", 0, EFLAG_LIST),
    F("registry-mirror", 0, EFLAG_LIST),
    F("label", 0, EFLAG_LIST),
    F("log-level", 'l', EFLAG_LOG_LEVEL),
    F("debug", 'D', EFLAG_DEBUG),
    F("tlsverify", 0, EFLAG_BOOL),
    F("tlscacert", 0, EFLAG_STRING),
    F("tlscert", 0, EFLAG_STRING),
    F("tlskey", 0, EFLAG_STRING),
    F("version", 'v', EFLAG_BOOL),
    F("help", 'h', EFLAG_BOOL),
    /* dockerd's daemon options: container defaults the engine applies */
    F("dns", 0, EFLAG_LIST),
    F("dns-search", 0, EFLAG_LIST),
    F("dns-opt", 0, EFLAG_LIST),
    F("default-ulimit", 0, EFLAG_LIST), /* name=soft[:hard], checked at start */
    F("log-opt", 0, EFLAG_LIST),        /* json-file's max-size, max-file */
    U("max-concurrent-downloads", 1, 16),
    U("max-concurrent-uploads", 1, 16),
    U("mtu", 68, 65535), /* the default bridge's endpoints, as dockerd */
    C("log-driver", "json-file|none", "the engine writes json-file logs or none"),
    C("storage-driver", "overlay2|overlay|vfs", "the engine stores layers with overlay2 or vfs"),
    /* what the engine always does */
    F("live-restore", 0, EFLAG_BOOL),
    F("userland-proxy", 0, EFLAG_TRUE_ONLY),
    F("icc", 0, EFLAG_TRUE_ONLY),
    F("ip-forward", 0, EFLAG_TRUE_ONLY),
    F("iptables", 0, EFLAG_TRUE_ONLY),
    F("ip-masq", 0, EFLAG_TRUE_ONLY),
    R("ipv6", "IPv6 is not done yet"),
    R("fixed-cidr", "use --bip"),
    R("userns-remap", "user namespaces are not done yet"),
    R("exec-opt", "the engine uses cgroupfs"),
    R("selinux-enabled", "the engine has no SELinux support"),
    R("experimental", "the engine has no experimental features"),
    R("cluster-store", "swarm and cluster options are not supported"),
    R("swarm-default-advertise-addr", "swarm is not supported"),
    R("default-runtime", "the engine is its own runtime"),
    R("add-runtime", "the engine is its own runtime"),
    R("init", "the engine has no init process for containers yet"),
    R("shutdown-timeout", "the engine stops containers with their own timeouts"),
    R("containerd", "the engine has no containerd"),
    R("metrics-addr", "the engine has no metrics endpoint"),
    R("authorization-plugin", "plugins are not supported"),
    R("seccomp-profile", "the engine uses docker's default profile"),
    R("default-cgroupns-mode", "the engine chooses the cgroup namespace by cgroup version"),
    { 0 },
};

const struct engine_flag *engine_flag_find(const char *name, size_t len)
{
    for (const struct engine_flag *f = engine_flags; f->name != NULL; f++)
        if (strlen(f->name) == len && strncmp(f->name, name, len) == 0)
            return f;
    return NULL;
}

const struct engine_flag *engine_flag_find_short(char c)
{
    for (const struct engine_flag *f = engine_flags; f->name != NULL; f++)
        if (c != 0 && f->short_name == c)
            return f;
    return NULL;
}

bool engine_flag_takes_value(const struct engine_flag *f)
{
    return f->kind != EFLAG_BOOL && f->kind != EFLAG_TRUE_ONLY && f->kind != EFLAG_DEBUG;
}

static int check_bool(const struct engine_flag *f, const char *v, bool *out, struct merr *err)
{
    if (v == NULL || strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
        *out = true;
    else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
        *out = false;
    else
        return merr_set(err, MERR_INVALID, 0, "invalid value '%s' for flag '--%s'", v, f->name);
    return 0;
}

static bool choice_ok(const char *choices, const char *v)
{
    size_t n = strlen(v);
    for (const char *p = choices; p != NULL && *p != '\0';) {
        const char *bar = strchr(p, '|');
        size_t len = bar != NULL ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, v, n) == 0)
            return true;
        p = bar != NULL ? bar + 1 : NULL;
    }
    return false;
}

int engine_flag_check(const struct engine_flag *f, const char *value, struct merr *err)
{
    bool b;
    switch (f->kind) {
    case EFLAG_BOOL:
    case EFLAG_DEBUG:
        return check_bool(f, value, &b, err);
    case EFLAG_TRUE_ONLY:
        if (check_bool(f, value, &b, err) < 0)
            return -1;
        if (!b)
            return merr_set(err, MERR_UNSUPPORTED, 0,
                            "--%s=false is not supported by machine-engine", f->name);
        return 0;
    case EFLAG_UINT: {
        char *end;
        errno = 0;
        unsigned long v = value != NULL && isdigit((unsigned char)value[0]) ? strtoul(value, &end, 10) : 0;
        if (value == NULL || !isdigit((unsigned char)value[0]) || *end != '\0' || errno != 0)
            return merr_set(err, MERR_INVALID, 0, "invalid value '%s' for flag '--%s'",
                            value != NULL ? value : "", f->name);
        if (v < f->min || v > f->max) {
            if (f->min == f->max)
                return merr_set(err, MERR_UNSUPPORTED, 0,
                                "--%s=%s is not supported by machine-engine (only %lu)", f->name,
                                value, f->min);
            return merr_set(err, MERR_INVALID, 0, "invalid value '%s' for flag '--%s': %lu to %lu",
                            value, f->name, f->min, f->max);
        }
        return 0;
    }
    case EFLAG_CHOICE:
        if (value == NULL || !choice_ok(f->choices, value))
            return merr_set(err, MERR_UNSUPPORTED, 0,
                            "--%s=%s is not supported by machine-engine: %s", f->name,
                            value != NULL ? value : "", f->why);
        return 0;
    case EFLAG_REFUSED:
        return merr_set(err, MERR_UNSUPPORTED, 0, "--%s is not supported by machine-engine: %s",
                        f->name, f->why);
    case EFLAG_STRING:
    case EFLAG_LIST:
    case EFLAG_LOG_LEVEL:
        if (value == NULL)
            return merr_set(err, MERR_INVALID, 0, "flag '--%s' needs a value", f->name);
        return 0;
    }
    return merr_set(err, MERR_INTERNAL, 0, "unknown flag kind");
}

int engine_flag_check_opt(const char *kv, struct merr *err)
{
    const char *eq = strchr(kv, '=');
    size_t len = eq != NULL ? (size_t)(eq - kv) : strlen(kv);
    const struct engine_flag *f = engine_flag_find(kv, len);
    if (f == NULL)
        return merr_set(err, MERR_UNSUPPORTED, 0,
                        "invalid --engine-opt '%s': machine-engine has no flag '--%.*s'", kv,
                        (int)len, kv);
    if (engine_flag_check(f, eq != NULL ? eq + 1 : NULL, err) < 0)
        return merr_prefix(err, "invalid --engine-opt '%s'", kv);
    return 0;
}
