#include "options.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

#include "error.h"
#include "fsutil.h"
#include "strv.h"
#include "runtime/runtime.h"

#define MIN_MEMORY (6 * 1024 * 1024)

void ctr_options_release(struct ctr_options *o)
{
    if (o == NULL)
        return;
    free(o->ulimits);
    free(o->seccomp_profile);
    strv_free(o->masked_paths);
    strv_free(o->readonly_paths);
    strv_free(o->group_add);
    strv_free(o->sysctls);
    free(o->pid_container);
    free(o->ipc_container);
    free(o->domainname);
    for (size_t i = 0; i < o->n_devices; i++) {
        free(o->devices[i].host);
        free(o->devices[i].ctr);
    }
    free(o->devices);
    strv_free(o->device_cgroup_rules);
    free(o->cpuset_cpus);
    free(o->cpuset_mems);
    strv_free(o->links);
    memset(o, 0, sizeof *o);
}

/* ---- ulimits ---- */

static const struct {
    const char *name;
    int resource;
} ulimit_names[] = {
    { "as", RLIMIT_AS },         { "core", RLIMIT_CORE },       { "cpu", RLIMIT_CPU },
    { "data", RLIMIT_DATA },     { "fsize", RLIMIT_FSIZE },     { "locks", RLIMIT_LOCKS },
    { "memlock", RLIMIT_MEMLOCK }, { "msgqueue", RLIMIT_MSGQUEUE }, { "nice", RLIMIT_NICE },
    { "nofile", RLIMIT_NOFILE }, { "nproc", RLIMIT_NPROC },     { "rss", RLIMIT_RSS },
    { "rtprio", RLIMIT_RTPRIO }, { "rttime", RLIMIT_RTTIME },   { "sigpending", RLIMIT_SIGPENDING },
    { "stack", RLIMIT_STACK },
};

/* -1 (and anything negative) is unlimited, as go-units passes it on to the runtime. */
static uint64_t rlim_value(json_int_t v)
{
    return v < 0 ? (uint64_t)RLIM_INFINITY : (uint64_t)v;
}

int ctr_ulimit_parse(const json_t *j, struct ctr_ulimit *out, struct merr *err)
{
    const char *name = json_string_value(json_object_get(j, "Name"));
    const json_t *soft = json_object_get(j, "Soft"), *hard = json_object_get(j, "Hard");
    if (name == NULL || !json_is_integer(soft) || !json_is_integer(hard))
        return merr_set(err, MERR_INVALID, 0, "invalid ulimit: expected Name, Soft and Hard");
    out->resource = -1;
    for (size_t i = 0; i < sizeof ulimit_names / sizeof ulimit_names[0]; i++)
        if (strcmp(name, ulimit_names[i].name) == 0)
            out->resource = ulimit_names[i].resource;
    if (out->resource < 0)
        return merr_set(err, MERR_INVALID, 0, "invalid ulimit type: %s", name);
    out->soft = rlim_value(json_integer_value(soft));
    out->hard = rlim_value(json_integer_value(hard));
    if (out->soft > out->hard)
        return merr_set(err, MERR_INVALID, 0,
                        "ulimit soft limit must be less than or equal to hard limit: %lld > %lld",
                        (long long)json_integer_value(soft), (long long)json_integer_value(hard));
    return 0;
}

static int parse_ulimits(const json_t *list, struct ctr_options *o, struct merr *err)
{
    if (list == NULL || json_is_null(list))
        return 0;
    if (!json_is_array(list))
        return merr_set(err, MERR_INVALID, 0, "invalid Ulimits: expected a list");
    o->ulimits = xcalloc(json_array_size(list) + 1, sizeof *o->ulimits);
    size_t i;
    const json_t *u;
    json_array_foreach(list, i, u) {
        struct ctr_ulimit l;
        if (ctr_ulimit_parse(u, &l, err) < 0)
            return -1;
        size_t k = 0; /* a later entry for the same resource wins, like docker's map */
        while (k < o->n_ulimits && o->ulimits[k].resource != l.resource)
            k++;
        o->ulimits[k] = l;
        if (k == o->n_ulimits)
            o->n_ulimits++;
    }
    return 0;
}

/* ---- security options ---- */

static int parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = { "1", "t", "T", "true", "TRUE", "True" };
    static const char *const no[] = { "0", "f", "F", "false", "FALSE", "False" };
    for (size_t i = 0; i < 6; i++) {
        if (strcmp(v, yes[i]) == 0)
            return *out = true, 0;
        if (strcmp(v, no[i]) == 0)
            return *out = false, 0;
    }
    return -1;
}

int ctr_security_opt_parse(const char *opt, struct ctr_options *o, struct merr *err)
{
    if (strcmp(opt, "no-new-privileges") == 0) {
        o->no_new_privileges = true;
        return 0;
    }
    if (strcmp(opt, "disable") == 0) /* old spelling of label=disable */
        return 0;
    const char *sep = strchr(opt, '=');
    if (sep == NULL)
        sep = strchr(opt, ':'); /* the deprecated key:value form */
    if (sep == NULL)
        return merr_set(err, MERR_INVALID, 0, "invalid --security-opt 1: \"%s\"", opt);
    size_t klen = (size_t)(sep - opt);
    const char *v = sep + 1;
    if (klen == 17 && strncmp(opt, "no-new-privileges", klen) == 0) {
        if (parse_bool(v, &o->no_new_privileges) < 0)
            return merr_set(err, MERR_INVALID, 0, "invalid --security-opt 2: \"%s\"", opt);
        return 0;
    }
    if (klen == 7 && strncmp(opt, "seccomp", klen) == 0) {
        free(o->seccomp_profile);
        o->seccomp_profile = NULL;
        if (v[0] == '\0' || strcmp(v, "builtin") == 0) {
            o->seccomp = CTR_SECCOMP_DEFAULT;
        } else if (strcmp(v, "unconfined") == 0) {
            o->seccomp = CTR_SECCOMP_UNCONFINED;
        } else if (v[0] == '{') { /* the CLI sends the profile file's contents */
            o->seccomp = CTR_SECCOMP_PROFILE;
            o->seccomp_profile = xstrdup(v);
        } else {
            return merr_set(err, MERR_INVALID, 0,
                            "seccomp profile '%s' is not supported by machine-engine: give "
                            "'unconfined' or the profile's JSON",
                            v);
        }
        return 0;
    }
    /* The engine applies no AppArmor profile and no SELinux label: asking for none is what
     * the container gets; asking for one cannot be honoured. */
    if (klen == 8 && strncmp(opt, "apparmor", klen) == 0) {
        if (strcmp(v, "unconfined") == 0)
            return 0;
        return merr_set(err, MERR_INVALID, 0,
                        "AppArmor profile '%s' is not supported by machine-engine (it applies no "
                        "AppArmor profile; apparmor=unconfined is accepted)",
                        v);
    }
    if (klen == 5 && strncmp(opt, "label", klen) == 0) {
        if (strcmp(v, "disable") == 0)
            return 0;
        return merr_set(err, MERR_INVALID, 0,
                        "SELinux label option '%s' is not supported by machine-engine (it applies "
                        "no SELinux label; label=disable is accepted)",
                        v);
    }
    if (klen == 16 && strncmp(opt, "writable-cgroups", klen) == 0) {
        bool w;
        if (parse_bool(v, &w) < 0)
            return merr_set(err, MERR_INVALID, 0, "invalid --security-opt 2: \"%s\"", opt);
        if (w)
            return merr_set(err, MERR_INVALID, 0,
                            "writable-cgroups is not supported by machine-engine (use --privileged)");
        return 0;
    }
    return merr_set(err, MERR_INVALID, 0, "invalid --security-opt 2: \"%s\"", opt);
}

/* ---- sysctls ---- */

int ctr_sysctl_check(const char *key, const char *network_mode, bool ipc_host, bool uts_host,
                     struct merr *err)
{
    static const char *const ipc_keys[] = { "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni",
                                            "kernel.sem",    "kernel.shmall", "kernel.shmmax",
                                            "kernel.shmmni", "kernel.shm_rmid_forced" };
    if (key[0] == '\0' || strstr(key, "..") != NULL || strchr(key, '/') != NULL ||
        key[0] == '.' || key[strlen(key) - 1] == '.')
        return merr_set(err, MERR_INVALID, 0, "invalid sysctl '%s'", key);
    bool ipc = strncmp(key, "fs.mqueue.", 10) == 0;
    for (size_t i = 0; i < sizeof ipc_keys / sizeof ipc_keys[0]; i++)
        ipc |= strcmp(key, ipc_keys[i]) == 0;
    if (ipc) {
        if (ipc_host)
            return merr_set(err, MERR_INVALID, 0,
                            "sysctl \"%s\" is not allowed in the hosts ipc namespace", key);
        return 0;
    }
    if (strncmp(key, "net.", 4) == 0) {
        if (network_mode != NULL && strcmp(network_mode, "host") == 0)
            return merr_set(err, MERR_INVALID, 0,
                            "sysctl \"%s\" not allowed in host network namespace", key);
        return 0;
    }
    if (strcmp(key, "kernel.domainname") == 0 || strcmp(key, "kernel.hostname") == 0) {
        if (uts_host)
            return merr_set(err, MERR_INVALID, 0,
                            "sysctl \"%s\" is not allowed in the hosts uts namespace", key);
        return 0;
    }
    return merr_set(err, MERR_INVALID, 0, "sysctl \"%s\" is not in a separate kernel namespace",
                    key);
}

static int parse_sysctls(const json_t *obj, const char *network_mode, struct ctr_options *o,
                         struct merr *err)
{
    if (obj == NULL || json_is_null(obj))
        return 0;
    if (!json_is_object(obj))
        return merr_set(err, MERR_INVALID, 0, "invalid Sysctls: expected an object");
    o->sysctls = xcalloc(1, sizeof *o->sysctls);
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        if (!json_is_string(v) || strchr(json_string_value(v), '\n') != NULL)
            return merr_set(err, MERR_INVALID, 0, "invalid value for sysctl '%s'", k);
        if (ctr_sysctl_check(k, network_mode, o->ipc_ns == CTR_NS_HOST, o->uts_ns == CTR_NS_HOST,
                             err) < 0)
            return -1;
        auto_free char *kv = xasprintf("%s=%s", k, json_string_value(v));
        o->sysctls = strv_push(o->sysctls, kv);
    }
    return 0;
}

/* ---- devices ---- */

static bool perms_valid(const char *p)
{
    if (p[0] == '\0' || strlen(p) > 3)
        return false;
    for (const char *c = p; *c != '\0'; c++)
        if (strchr("rwm", *c) == NULL || strchr(c + 1, *c) != NULL)
            return false;
    return true;
}

int ctr_device_parse(const char *spec, struct ctr_device *out, struct merr *err)
{
    memset(out, 0, sizeof *out);
    auto_free char *copy = xstrdup(spec);
    char *parts[4] = { 0 };
    size_t n = 0;
    for (char *save = NULL, *p = strtok_r(copy, ":", &save); p != NULL && n < 4;
         p = strtok_r(NULL, ":", &save))
        parts[n++] = p;
    const char *host = parts[0], *ctr = NULL, *perms = "rwm";
    if (n == 2 && perms_valid(parts[1]))
        perms = parts[1];
    else if (n == 2)
        ctr = parts[1];
    else if (n == 3) {
        ctr = parts[1];
        perms = parts[2];
    } else if (n != 1)
        return merr_set(err, MERR_INVALID, 0, "invalid device specification: %s", spec);
    if (host == NULL || host[0] != '/' || (ctr != NULL && ctr[0] != '/'))
        return merr_set(err, MERR_INVALID, 0, "invalid device specification: %s", spec);
    if (!perms_valid(perms))
        return merr_set(err, MERR_INVALID, 0, "invalid device mode: %s", perms);
    out->host = xstrdup(host);
    out->ctr = xstrdup(ctr != NULL ? ctr : host);
    snprintf(out->perms, sizeof out->perms, "%s", perms);
    return 0;
}

static int parse_devices(const json_t *list, struct ctr_options *o, struct merr *err)
{
    if (list == NULL || json_is_null(list))
        return 0;
    if (!json_is_array(list))
        return merr_set(err, MERR_INVALID, 0, "invalid Devices: expected a list");
    o->devices = xcalloc(json_array_size(list) + 1, sizeof *o->devices);
    size_t i;
    const json_t *d;
    json_array_foreach(list, i, d) {
        const char *host = json_string_value(json_object_get(d, "PathOnHost"));
        const char *ctr = json_string_value(json_object_get(d, "PathInContainer"));
        const char *perms = json_string_value(json_object_get(d, "CgroupPermissions"));
        if (host == NULL)
            return merr_set(err, MERR_INVALID, 0, "invalid device: PathOnHost missing");
        auto_free char *spec = xasprintf("%s:%s:%s", host, ctr != NULL && ctr[0] ? ctr : host,
                                         perms != NULL && perms[0] ? perms : "rwm");
        if (ctr_device_parse(spec, &o->devices[o->n_devices], err) < 0)
            return -1;
        o->n_devices++;
    }
    return 0;
}

/* "c 1:3 rwm", "b 8:* r", "a *:* rwm", "a". */
int ctr_device_rule_check(const char *rule, struct merr *err)
{
    char type, majmin[64], perms[8];
    if (strcmp(rule, "a") == 0)
        return 0;
    if (sscanf(rule, "%c %63s %7s", &type, majmin, perms) != 3 || strchr("abc", type) == NULL ||
        !perms_valid(perms))
        return merr_set(err, MERR_INVALID, 0, "invalid device cgroup rule format: '%s'", rule);
    const char *colon = strchr(majmin, ':');
    if (colon == NULL)
        return merr_set(err, MERR_INVALID, 0, "invalid device cgroup rule format: '%s'", rule);
    for (int part = 0; part < 2; part++) {
        const char *s = part == 0 ? majmin : colon + 1;
        size_t len = part == 0 ? (size_t)(colon - majmin) : strlen(colon + 1);
        bool ok = len == 1 && s[0] == '*';
        if (!ok) {
            ok = len > 0 && len <= 10;
            for (size_t i = 0; ok && i < len; i++)
                ok = isdigit((unsigned char)s[i]);
        }
        if (!ok)
            return merr_set(err, MERR_INVALID, 0, "invalid device cgroup rule format: '%s'", rule);
    }
    return 0;
}

/* ---- links ---- */

static int get_strv(const json_t *obj, const char *key, char ***out, bool *given,
                    struct merr *err);

int ctr_link_parse(const char *spec, char *name, size_t name_size, char *alias,
                   size_t alias_size, struct merr *err)
{
    const char *colon = strchr(spec, ':');
    const char *n = spec[0] == '/' ? spec + 1 : spec;
    size_t nlen = colon != NULL ? (size_t)(colon - n) : strlen(n);
    const char *a = colon != NULL ? colon + 1 : n;
    const char *slash = colon != NULL ? strrchr(a, '/') : NULL; /* "/me/alias" */
    if (slash != NULL)
        a = slash + 1;
    size_t alen = colon != NULL ? strlen(a) : nlen;
    if (nlen == 0 || memchr(n, '/', nlen) != NULL)
        return merr_set(err, MERR_INVALID, 0, "invalid link '%s'", spec);
    if (nlen == 0 || nlen >= name_size || alen == 0 || alen >= alias_size)
        return merr_set(err, MERR_INVALID, 0, "invalid link '%s'", spec);
    for (size_t i = 0; i < alen; i++)
        if (!isalnum((unsigned char)a[i]) && a[i] != '_' && a[i] != '.' && a[i] != '-')
            return merr_set(err, MERR_INVALID, 0, "invalid link alias '%.*s'", (int)alen, a);
    memcpy(name, n, nlen);
    name[nlen] = '\0';
    memcpy(alias, a, alen);
    alias[alen] = '\0';
    return 0;
}

static int parse_links(const json_t *hc, struct ctr_options *o, struct merr *err)
{
    if (get_strv(hc, "Links", &o->links, NULL, err) < 0)
        return -1;
    if (o->links == NULL || o->links[0] == NULL)
        return 0;
    const char *net = json_string_value(json_object_get(hc, "NetworkMode"));
    if (net != NULL && strcmp(net, "host") == 0)
        return merr_set(err, MERR_INVALID, 0,
                        "conflicting options: host type networking can't be used with links. "
                        "This would result in undefined behavior");
    if (net != NULL && strncmp(net, "container:", 10) == 0)
        return merr_set(err, MERR_INVALID, 0,
                        "conflicting options: container type network can't be used with links. "
                        "This would result in undefined behavior");
    /* on a user-defined network the network module makes them the endpoint's links: names
     * its embedded DNS answers for this container alone */
    for (size_t i = 0; o->links[i] != NULL; i++) {
        char name[256], alias[256];
        if (ctr_link_parse(o->links[i], name, sizeof name, alias, sizeof alias, err) < 0)
            return -1;
    }
    return 0;
}

/* ---- volumes-from ---- */

int ctr_volumes_from_parse(const char *spec, char *name, size_t name_size, int *rw,
                           struct merr *err)
{
    const char *colon = strchr(spec, ':');
    size_t len = colon != NULL ? (size_t)(colon - spec) : strlen(spec);
    *rw = -1;
    if (len == 0 || len >= name_size)
        return merr_set(err, MERR_INVALID, 0, "invalid volumes-from '%s'", spec);
    memcpy(name, spec, len);
    name[len] = '\0';
    if (colon == NULL)
        return 0;
    auto_free char *mode = xstrdup(colon + 1);
    char *save = NULL;
    for (char *o = strtok_r(mode, ",", &save); o != NULL; o = strtok_r(NULL, ",", &save)) {
        if (strcmp(o, "ro") == 0 && *rw != 1)
            *rw = 0;
        else if (strcmp(o, "rw") == 0 && *rw != 0)
            *rw = 1;
        else if (strcmp(o, "z") != 0 && strcmp(o, "Z") != 0)
            return merr_set(err, MERR_INVALID, 0, "invalid mode for volumes-from: %s",
                            colon + 1);
    }
    return 0;
}

/* ---- groups ---- */

int ctr_group_lookup(const char *group_file, const char *name, unsigned *gid)
{
    char *end;
    unsigned long v = strtoul(name, &end, 10);
    if (isdigit((unsigned char)name[0]) && *end == '\0' && v <= 0xfffffffeUL)
        return *gid = (unsigned)v, 0;
    size_t nlen = strlen(name);
    for (const char *p = group_file; p != NULL && *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
        /* name:password:gid:members */
        const char *c1 = memchr(p, ':', len);
        const char *c2 = c1 != NULL ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - p)) : NULL;
        if (c1 != NULL && c2 != NULL && (size_t)(c1 - p) == nlen && memcmp(p, name, nlen) == 0 &&
            isdigit((unsigned char)c2[1])) {
            *gid = (unsigned)strtoul(c2 + 1, NULL, 10);
            return 0;
        }
        p = nl != NULL ? nl + 1 : NULL;
    }
    return -1;
}

/* ---- cpusets ---- */

int ctr_cpuset_check(const char *list, unsigned max_cpu, struct merr *err)
{
    const char *p = list;
    if (*p == '\0')
        return merr_set(err, MERR_INVALID, 0, "invalid cpuset '%s'", list);
    while (*p != '\0') {
        char *end;
        if (!isdigit((unsigned char)*p))
            return merr_set(err, MERR_INVALID, 0, "invalid cpuset '%s'", list);
        unsigned long a = strtoul(p, &end, 10), b = a;
        if (*end == '-') {
            if (!isdigit((unsigned char)end[1]))
                return merr_set(err, MERR_INVALID, 0, "invalid cpuset '%s'", list);
            b = strtoul(end + 1, &end, 10);
        }
        if (b < a || (*end != ',' && *end != '\0') || (*end == ',' && end[1] == '\0'))
            return merr_set(err, MERR_INVALID, 0, "invalid cpuset '%s'", list);
        if (b > max_cpu)
            return merr_set(err, MERR_INVALID, 0, "Requested CPUs are not available - requested %s",
                            list);
        p = *end == ',' ? end + 1 : end;
    }
    return 0;
}

/* ---- namespaces ---- */

static int parse_ns(const char *what, const char *v, enum ctr_ns *ns, char **other, bool allow_ctr,
                    struct merr *err)
{
    *ns = CTR_NS_PRIVATE;
    if (v == NULL || v[0] == '\0' || strcmp(v, "private") == 0)
        return 0;
    if (strcmp(v, "host") == 0) {
        *ns = CTR_NS_HOST;
        return 0;
    }
    if (allow_ctr && strncmp(v, "container:", 10) == 0 && v[10] != '\0') {
        *ns = CTR_NS_CONTAINER;
        *other = xstrdup(v + 10);
        return 0;
    }
    return merr_set(err, MERR_INVALID, 0, "invalid %s mode: %s", what, v);
}

static int parse_namespaces(const json_t *hc, struct ctr_options *o, struct merr *err)
{
    const char *ipc = json_string_value(json_object_get(hc, "IpcMode"));
    if (ipc != NULL && strcmp(ipc, "shareable") == 0) {
        o->ipc_shareable = true;
    } else if (ipc != NULL && strcmp(ipc, "none") == 0) {
        o->ipc_none = true;
    } else if (parse_ns("IPC", ipc, &o->ipc_ns, &o->ipc_container, true, err) < 0) {
        return -1;
    }
    if (parse_ns("PID", json_string_value(json_object_get(hc, "PidMode")), &o->pid_ns,
                 &o->pid_container, true, err) < 0)
        return -1;
    const char *uts = json_string_value(json_object_get(hc, "UTSMode"));
    char *unused = NULL;
    if (uts != NULL && uts[0] != '\0' && strcmp(uts, "host") != 0)
        return merr_set(err, MERR_INVALID, 0, "invalid UTS mode: %s", uts);
    if (parse_ns("UTS", uts, &o->uts_ns, &unused, false, err) < 0)
        return -1;
    const char *cgns = json_string_value(json_object_get(hc, "CgroupnsMode"));
    if (cgns != NULL && strcmp(cgns, "host") == 0)
        o->cgroupns_host = true;
    else if (cgns != NULL && strcmp(cgns, "private") == 0)
        o->cgroupns_private = true;
    else if (cgns != NULL && cgns[0] != '\0')
        return merr_set(err, MERR_INVALID, 0, "invalid cgroup namespace mode: %s", cgns);
    return 0;
}

/* ---- the whole HostConfig ---- */

static int get_strv(const json_t *obj, const char *key, char ***out, bool *given, struct merr *err)
{
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (given != NULL)
        *given = json_is_array(v);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_array(v))
        return merr_set(err, MERR_INVALID, 0, "invalid %s: expected a list of strings", key);
    char **list = xcalloc(1, sizeof *list);
    size_t i;
    const json_t *e;
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

static int parse_memory_extras(const json_t *hc, struct ctr_options *o, struct merr *err)
{
    const json_t *mr = json_object_get(hc, "MemoryReservation");
    const json_t *sw = json_object_get(hc, "MemorySwappiness");
    const json_t *bw = json_object_get(hc, "BlkioWeight");
    o->memory_reservation = json_is_integer(mr) ? json_integer_value(mr) : 0;
    o->memory_swappiness = json_is_integer(sw) ? json_integer_value(sw) : -1;
    o->blkio_weight = json_is_integer(bw) ? json_integer_value(bw) : 0;
    o->oom_kill_disable = json_is_true(json_object_get(hc, "OomKillDisable"));
    if (o->memory_reservation < 0)
        return merr_set(err, MERR_INVALID, 0, "resource limits cannot be negative");
    if (o->memory_reservation > 0 && o->memory_reservation < MIN_MEMORY)
        return merr_set(err, MERR_INVALID, 0, "Minimum memory reservation allowed is 6MB");
    const json_t *mem = json_object_get(hc, "Memory");
    if (json_is_integer(mem) && json_integer_value(mem) > 0 &&
        json_integer_value(mem) < o->memory_reservation)
        return merr_set(err, MERR_INVALID, 0, "Minimum memory limit can not be less than memory "
                                              "reservation limit, see usage");
    if (o->memory_swappiness != -1 && (o->memory_swappiness < 0 || o->memory_swappiness > 100))
        return merr_set(err, MERR_INVALID, 0,
                        "Invalid value: %lld, valid memory swappiness range is 0-100",
                        (long long)o->memory_swappiness);
    if (o->blkio_weight != 0 && (o->blkio_weight < 10 || o->blkio_weight > 1000))
        return merr_set(err, MERR_INVALID, 0, "Range of blkio weight is from 10 to 1000");
    return 0;
}

/* Whether the host can give a cgroup real-time CPU time is the engine's to say at create
 * (startopts_check_create); here only what dockerd checks of the values themselves. */
static int parse_cpu_rt(const json_t *hc, struct ctr_options *o, struct merr *err)
{
    const json_t *p = json_object_get(hc, "CpuRealtimePeriod");
    const json_t *r = json_object_get(hc, "CpuRealtimeRuntime");
    o->cpu_rt_period = json_is_integer(p) ? json_integer_value(p) : 0;
    o->cpu_rt_runtime = json_is_integer(r) ? json_integer_value(r) : 0;
    if (o->cpu_rt_period < 0 || o->cpu_rt_runtime < -1)
        return merr_set(err, MERR_INVALID, 0, "resource limits cannot be negative");
    if (o->cpu_rt_period != 0 && o->cpu_rt_runtime > o->cpu_rt_period)
        return merr_set(err, MERR_INVALID, 0,
                        "cpu real-time runtime cannot be higher than cpu real-time period");
    return 0;
}

static int parse_host_config(const json_t *hc, struct ctr_options *o, struct merr *err)
{
    const json_t *shm = json_object_get(hc, "ShmSize");
    if (shm != NULL && !json_is_null(shm) && !json_is_integer(shm))
        return merr_set(err, MERR_INVALID, 0, "invalid ShmSize: expected an integer");
    o->shm_size = json_is_integer(shm) ? json_integer_value(shm) : 0;
    if (o->shm_size < 0)
        return merr_set(err, MERR_INVALID, 0, "SHM size can not be less than 0");
    const json_t *adj = json_object_get(hc, "OomScoreAdj");
    o->oom_score_adj_set = json_is_integer(adj) && json_integer_value(adj) != 0;
    o->oom_score_adj = o->oom_score_adj_set ? (int)json_integer_value(adj) : 0;
    if (json_is_integer(adj) && (json_integer_value(adj) < -1000 || json_integer_value(adj) > 1000))
        return merr_set(err, MERR_INVALID, 0,
                        "Invalid value %lld, range for oom score adj is [-1000, 1000]",
                        (long long)json_integer_value(adj));
    auto_strv char **secopts = NULL;
    if (get_strv(hc, "SecurityOpt", &secopts, NULL, err) < 0 ||
        get_strv(hc, "MaskedPaths", &o->masked_paths, &o->masked_paths_set, err) < 0 ||
        get_strv(hc, "ReadonlyPaths", &o->readonly_paths, &o->readonly_paths_set, err) < 0 ||
        get_strv(hc, "GroupAdd", &o->group_add, NULL, err) < 0 ||
        get_strv(hc, "DeviceCgroupRules", &o->device_cgroup_rules, NULL, err) < 0)
        return -1;
    for (size_t i = 0; secopts != NULL && secopts[i] != NULL; i++)
        if (ctr_security_opt_parse(secopts[i], o, err) < 0)
            return -1;
    for (size_t i = 0; o->device_cgroup_rules != NULL && o->device_cgroup_rules[i] != NULL; i++)
        if (ctr_device_rule_check(o->device_cgroup_rules[i], err) < 0)
            return -1;
    const char *net = json_string_value(json_object_get(hc, "NetworkMode"));
    if (parse_ulimits(json_object_get(hc, "Ulimits"), o, err) < 0 ||
        parse_namespaces(hc, o, err) < 0 ||
        parse_sysctls(json_object_get(hc, "Sysctls"), net, o, err) < 0 ||
        parse_devices(json_object_get(hc, "Devices"), o, err) < 0 ||
        parse_memory_extras(hc, o, err) < 0 || parse_cpu_rt(hc, o, err) < 0 ||
        parse_links(hc, o, err) < 0)
        return -1;
    const char *cpus = json_string_value(json_object_get(hc, "CpusetCpus"));
    const char *mems = json_string_value(json_object_get(hc, "CpusetMems"));
    if (cpus != NULL && cpus[0] != '\0') {
        if (ctr_cpuset_check(cpus, 4095, err) < 0)
            return -1;
        o->cpuset_cpus = xstrdup(cpus);
    }
    if (mems != NULL && mems[0] != '\0') {
        if (ctr_cpuset_check(mems, 4095, err) < 0)
            return -1;
        o->cpuset_mems = xstrdup(mems);
    }
    return 0;
}

int ctr_options_parse(const json_t *cfg, const json_t *hc, struct ctr_options *o,
                      struct merr *err)
{
    memset(o, 0, sizeof *o);
    o->memory_swappiness = -1;
    const char *dn = json_string_value(json_object_get(cfg, "Domainname"));
    if (dn != NULL && dn[0] != '\0') {
        if (strlen(dn) > 64)
            return merr_set(err, MERR_INVALID, 0, "domainname '%s' is too long", dn);
        o->domainname = xstrdup(dn);
    }
    if (parse_host_config(hc, o, err) < 0) {
        ctr_options_release(o);
        return -1;
    }
    static const char *const cap_fields[] = { "CapAdd", "CapDrop" };
    for (size_t f = 0; f < 2; f++) {
        size_t i;
        const json_t *c;
        json_array_foreach(json_object_get(hc, cap_fields[f]), i, c) {
            if (!rt_cap_name_valid(json_string_value(c))) {
                ctr_options_release(o);
                return merr_set(err, MERR_INVALID, 0, "invalid %s: unknown capability: \"%s\"",
                                cap_fields[f], json_string_value(c) ? json_string_value(c) : "");
            }
        }
    }
    const char *hn = json_string_value(json_object_get(cfg, "Hostname"));
    if (o->uts_ns == CTR_NS_HOST && hn != NULL && hn[0] != '\0') {
        ctr_options_release(o);
        return merr_set(err, MERR_INVALID, 0, "Conflicting options: hostname and the UTS mode");
    }
    return 0;
}
