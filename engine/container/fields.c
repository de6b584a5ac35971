#include "fields.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "error.h"

#define H(s, n) { s, n, CTR_FIELD_HONOURED, NULL, NULL }
#define R(s, n) { s, n, CTR_FIELD_REFUSED, NULL, NULL }
#define RH(s, n, h) { s, n, CTR_FIELD_REFUSED, NULL, h }
#define RD(s, n, d) { s, n, CTR_FIELD_REFUSED, d, NULL }
#define I(s, n) { s, n, CTR_FIELD_IGNORED, NULL, NULL }


/* Kept in the order of moby's swagger.yaml; docs/engine-api.md has the same rows. */
const struct ctr_field ctr_create_fields[] = {
    H("Config", "Hostname"),
    H("Config", "Domainname"),
    H("Config", "User"),
    H("Config", "AttachStdin"),
    H("Config", "AttachStdout"),
    H("Config", "AttachStderr"),
    H("Config", "ExposedPorts"),
    H("Config", "Tty"),
    H("Config", "OpenStdin"),
    H("Config", "StdinOnce"),
    H("Config", "Env"),
    H("Config", "Cmd"),
    H("Config", "Healthcheck"),
    I("Config", "ArgsEscaped"), /* Windows only */
    H("Config", "Image"),
    H("Config", "Volumes"),
    H("Config", "WorkingDir"),
    H("Config", "Entrypoint"),
    R("Config", "NetworkDisabled"),
    H("Config", "MacAddress"),
    I("Config", "OnBuild"), /* read by the builder only */
    H("Config", "Labels"),
    H("Config", "StopSignal"),
    H("Config", "StopTimeout"),
    I("Config", "Shell"), /* read by the builder only */

    H("HostConfig", "CpuShares"),
    H("HostConfig", "Memory"),
    RH("HostConfig", "CgroupParent", " (containers go under the engine's own cgroup)"),
    H("HostConfig", "BlkioWeight"),
    R("HostConfig", "BlkioWeightDevice"),
    R("HostConfig", "BlkioDeviceReadBps"),
    R("HostConfig", "BlkioDeviceWriteBps"),
    R("HostConfig", "BlkioDeviceReadIOps"),
    R("HostConfig", "BlkioDeviceWriteIOps"),
    H("HostConfig", "CpuPeriod"),
    H("HostConfig", "CpuQuota"),
    H("HostConfig", "CpuRealtimePeriod"), /* cgroup v1 only; refused as dockerd elsewhere */
    H("HostConfig", "CpuRealtimeRuntime"),
    H("HostConfig", "CpusetCpus"),
    H("HostConfig", "CpusetMems"),
    H("HostConfig", "Devices"),
    H("HostConfig", "DeviceCgroupRules"),
    R("HostConfig", "DeviceRequests"),
    R("HostConfig", "KernelMemory"),
    R("HostConfig", "KernelMemoryTCP"),
    H("HostConfig", "MemoryReservation"),
    H("HostConfig", "MemorySwap"),
    H("HostConfig", "MemorySwappiness"),
    H("HostConfig", "NanoCpus"),
    H("HostConfig", "OomKillDisable"),
    H("HostConfig", "Init"),
    H("HostConfig", "PidsLimit"),
    H("HostConfig", "Ulimits"),
    I("HostConfig", "CpuCount"),   /* Windows only; dockerd ignores it on Linux */
    I("HostConfig", "CpuPercent"), /* Windows only; dockerd discards it with a warning */
    R("HostConfig", "IOMaximumIOps"),
    R("HostConfig", "IOMaximumBandwidth"),
    H("HostConfig", "Binds"),
    I("HostConfig", "ContainerIDFile"), /* written by the client */
    H("HostConfig", "LogConfig"),
    H("HostConfig", "NetworkMode"),
    H("HostConfig", "PortBindings"),
    H("HostConfig", "RestartPolicy"),
    H("HostConfig", "AutoRemove"),
    H("HostConfig", "VolumeDriver"),
    H("HostConfig", "VolumesFrom"),
    H("HostConfig", "Mounts"),
    H("HostConfig", "ConsoleSize"),
    H("HostConfig", "Annotations"),
    H("HostConfig", "CapAdd"),
    H("HostConfig", "CapDrop"),
    H("HostConfig", "CgroupnsMode"),
    H("HostConfig", "Dns"),
    H("HostConfig", "DnsOptions"),
    H("HostConfig", "DnsSearch"),
    H("HostConfig", "ExtraHosts"),
    H("HostConfig", "GroupAdd"),
    H("HostConfig", "IpcMode"),
    R("HostConfig", "Cgroup"),
    H("HostConfig", "Links"),
    H("HostConfig", "OomScoreAdj"),
    H("HostConfig", "PidMode"),
    H("HostConfig", "Privileged"),
    H("HostConfig", "PublishAllPorts"),
    H("HostConfig", "ReadonlyRootfs"),
    H("HostConfig", "SecurityOpt"),
    R("HostConfig", "StorageOpt"),
    H("HostConfig", "Tmpfs"),
    H("HostConfig", "UTSMode"),
    RD("HostConfig", "UsernsMode", "\"host\""),
    H("HostConfig", "ShmSize"),
    H("HostConfig", "Sysctls"),
    H("HostConfig", "Runtime"), /* "runc" (the engine's own runtime); others as dockerd */
    RD("HostConfig", "Isolation", "\"default\""),
    H("HostConfig", "MaskedPaths"),
    H("HostConfig", "ReadonlyPaths"),

    H("EndpointSettings", "IPAMConfig"),
    H("EndpointSettings", "Links"),
    H("EndpointSettings", "Aliases"),
    H("EndpointSettings", "MacAddress"),
    I("EndpointSettings", "DriverOpts"), /* reported; dockerd's bridge driver reads none of them */
    R("EndpointSettings", "GwPriority"),
    I("EndpointSettings", "NetworkID"), /* the rest: state dockerd reports, not reads */
    I("EndpointSettings", "EndpointID"),
    I("EndpointSettings", "Gateway"),
    I("EndpointSettings", "IPAddress"),
    I("EndpointSettings", "IPPrefixLen"),
    I("EndpointSettings", "IPv6Gateway"),
    I("EndpointSettings", "GlobalIPv6Address"),
    I("EndpointSettings", "GlobalIPv6PrefixLen"),
    I("EndpointSettings", "DNSNames"),

    H("EndpointIPAMConfig", "IPv4Address"),
    H("EndpointIPAMConfig", "IPv6Address"),
    H("EndpointIPAMConfig", "LinkLocalIPs"),
};
const size_t ctr_create_fields_n = sizeof ctr_create_fields / sizeof ctr_create_fields[0];

const char *ctr_field_use_name(enum ctr_field_use use)
{
    switch (use) {
    case CTR_FIELD_HONOURED:
        return "honoured";
    case CTR_FIELD_REFUSED:
        return "refused";
    case CTR_FIELD_IGNORED:
    default:
        return "ignored-as-dockerd";
    }
}

bool ctr_field_is_default(const json_t *v)
{
    if (v == NULL || json_is_null(v) || json_is_false(v))
        return true;
    if (json_is_integer(v))
        return json_integer_value(v) == 0;
    if (json_is_real(v))
        return json_real_value(v) == 0;
    if (json_is_string(v))
        return json_string_length(v) == 0;
    if (json_is_object(v))
        return json_object_size(v) == 0;
    if (json_is_array(v)) { /* ConsoleSize [0,0] */
        size_t i;
        const json_t *e;
        json_array_foreach(v, i, e)
            if (!json_is_integer(e) || json_integer_value(e) != 0)
                return false;
        return true;
    }
    return false;
}

static const struct ctr_field *find(const char *section, const char *name, bool nocase)
{
    for (size_t i = 0; i < ctr_create_fields_n; i++) {
        const struct ctr_field *f = &ctr_create_fields[i];
        if (strcmp(f->section, section) == 0 &&
            (nocase ? strcasecmp(f->name, name) : strcmp(f->name, name)) == 0)
            return f;
    }
    return NULL;
}

static bool is_also_default(const struct ctr_field *f, const json_t *v)
{
    if (f->also_default == NULL)
        return false;
    json_t *d = json_loads(f->also_default, JSON_DECODE_ANY, NULL);
    bool same = d != NULL && json_equal(d, v);
    json_decref(d);
    return same;
}

/* prefix names the field in messages: "HostConfig.", "NetworkingConfig.EndpointsConfig.x.". */
static int check_object(const json_t *obj, const char *section, const char *prefix,
                        const char *const *skip, struct merr *err)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        bool skipped = false;
        for (size_t i = 0; skip != NULL && skip[i] != NULL; i++)
            skipped |= strcmp(skip[i], key) == 0;
        if (skipped)
            continue;
        const struct ctr_field *f = find(section, key, false);
        if (f == NULL) {
            if (ctr_field_is_default(v))
                continue;
            const struct ctr_field *near = find(section, key, true);
            if (near != NULL)
                return merr_set(err, MERR_INVALID, 0,
                                "field %s%s is not supported by machine-engine: field names are "
                                "case-sensitive here, write %s",
                                prefix, key, near->name);
            return merr_set(err, MERR_INVALID, 0,
                            "unknown field %s%s is not supported by machine-engine", prefix, key);
        }
        if (f->use == CTR_FIELD_REFUSED && !ctr_field_is_default(v) && !is_also_default(f, v))
            return merr_set(err, MERR_INVALID, 0, "%s%s is not supported by machine-engine%s",
                            prefix, key, f->hint != NULL ? f->hint : "");
    }
    return 0;
}

static int check_endpoints(const json_t *nc, struct merr *err)
{
    static const char *const skip[] = { "EndpointsConfig", NULL };
    if (nc == NULL || json_is_null(nc))
        return 0;
    if (!json_is_object(nc))
        return merr_set(err, MERR_INVALID, 0, "invalid NetworkingConfig: expected an object");
    if (check_object(nc, "NetworkingConfig", "NetworkingConfig.", skip, err) < 0)
        return -1;
    const json_t *eps = json_object_get(nc, "EndpointsConfig");
    const char *net;
    const json_t *ep;
    json_object_foreach((json_t *)eps, net, ep) {
        if (!json_is_object(ep))
            continue;
        char prefix[300];
        snprintf(prefix, sizeof prefix, "NetworkingConfig.EndpointsConfig.%s.", net);
        if (check_object(ep, "EndpointSettings", prefix, NULL, err) < 0)
            return -1;
        const json_t *ipam = json_object_get(ep, "IPAMConfig");
        if (json_is_object(ipam)) {
            snprintf(prefix, sizeof prefix, "NetworkingConfig.EndpointsConfig.%s.IPAMConfig.", net);
            if (check_object(ipam, "EndpointIPAMConfig", prefix, NULL, err) < 0)
                return -1;
        }
    }
    return 0;
}

/* HostConfig.Mounts entries: the options the storage code carries out are Type, Source,
 * Target, ReadOnly, BindOptions.Propagation (not shared), BindOptions.CreateMountpoint,
 * VolumeOptions.NoCopy and .Labels, TmpfsOptions.SizeBytes and .Mode; anything else set is
 * refused. */
static int check_mounts(const json_t *mounts, struct merr *err)
{
    static const char *const known[] = { "Type", "Source", "Target", "ReadOnly", "BindOptions",
                                         "VolumeOptions", "TmpfsOptions", NULL };
    static const char *const sub[][4] = {
        { "BindOptions", "Propagation", "CreateMountpoint", NULL },
        { "VolumeOptions", "NoCopy", "Labels", NULL },
        { "TmpfsOptions", "SizeBytes", "Mode", NULL },
    };
    size_t i;
    const json_t *m;
    json_array_foreach(mounts, i, m) {
        const char *key;
        const json_t *v;
        json_object_foreach((json_t *)m, key, v) {
            bool ok = strcmp(key, "Consistency") == 0; /* dockerd ignores it on Linux */
            for (size_t k = 0; known[k] != NULL && !ok; k++)
                ok = strcmp(key, known[k]) == 0;
            if (!ok && !ctr_field_is_default(v))
                return merr_set(err, MERR_INVALID, 0,
                                "mount option %s is not supported by machine-engine", key);
            for (size_t s = 0; s < 3; s++) {
                if (strcmp(key, sub[s][0]) != 0 || !json_is_object(v))
                    continue;
                const char *sk;
                const json_t *sv;
                json_object_foreach((json_t *)v, sk, sv) {
                    bool known_sub = false;
                    for (size_t k = 1; k < 4 && sub[s][k] != NULL; k++)
                        known_sub |= strcmp(sk, sub[s][k]) == 0;
                    if (!known_sub && !ctr_field_is_default(sv))
                        return merr_set(err, MERR_INVALID, 0,
                                        "mount option %s.%s is not supported by machine-engine",
                                        key, sk);
                }
            }
        }
        const char *prop = json_string_value(
            json_object_get(json_object_get(m, "BindOptions"), "Propagation"));
        if (prop != NULL && strstr(prop, "shared") != NULL)
            return merr_set(err, MERR_INVALID, 0,
                            "bind propagation %s is not supported by machine-engine", prop);
    }
    return 0;
}

/* -v modes: shared propagation is not carried out (the storage code keeps it as text). */
static int check_binds(const json_t *binds, struct merr *err)
{
    size_t i;
    const json_t *b;
    json_array_foreach(binds, i, b) {
        const char *text = json_string_value(b);
        const char *mode = text != NULL ? strrchr(text, ':') : NULL;
        if (mode == NULL)
            continue;
        char copy[128];
        snprintf(copy, sizeof copy, "%s", mode + 1);
        char *save = NULL;
        for (char *w = strtok_r(copy, ",", &save); w != NULL; w = strtok_r(NULL, ",", &save))
            if (strcmp(w, "shared") == 0 || strcmp(w, "rshared") == 0)
                return merr_set(err, MERR_INVALID, 0,
                                "bind propagation %s is not supported by machine-engine", w);
    }
    return 0;
}

static void canonicalize_object(json_t *obj, const char *section)
{
    if (!json_is_object(obj))
        return;
    const char *key;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(obj, tmp, key, v) {
        const struct ctr_field *f = find(section, key, true);
        if (f == NULL || strcmp(f->name, key) == 0 || json_object_get(obj, f->name) != NULL)
            continue;
        json_object_set(obj, f->name, v);
        json_object_del(obj, key);
    }
}

void ctr_fields_canonicalize(json_t *body)
{
    canonicalize_object(body, "Config");
    canonicalize_object(json_object_get(body, "HostConfig"), "HostConfig");
    /* the endpoints are read from the request as sent (network/endpoint.c): other spellings
     * there stay refused */
}

int ctr_fields_check(const json_t *body, struct merr *err)
{
    static const char *const skip[] = { "HostConfig", "NetworkingConfig", "Runtime", NULL };
    if (!json_is_object(body))
        return 0;
    if (check_object(body, "Config", "", skip, err) < 0)
        return -1;
    const json_t *hc = json_object_get(body, "HostConfig");
    if (json_is_object(hc) && (check_object(hc, "HostConfig", "HostConfig.", NULL, err) < 0 ||
                               check_mounts(json_object_get(hc, "Mounts"), err) < 0 ||
                               check_binds(json_object_get(hc, "Binds"), err) < 0))
        return -1;
    return check_endpoints(json_object_get(body, "NetworkingConfig"), err);
}
