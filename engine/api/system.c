/* System endpoints: /_ping, /version, /info, /events. */
#include "api-priv.h"

#include <errno.h>
#include <jansson.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "osrelease.h"

#define CGROUP2_MAGIC 0x63677270LL

/* ---- host facts ------------------------------------------------------------ */

void api_parse_os_release(const char *text, char *pretty, size_t pretty_size, char *version_id,
                          size_t version_id_size)
{
    struct os_release os;
    os_release_scan(text, &os);
    bool named = os.pretty_name != NULL && os.pretty_name[0] != '\0';
    snprintf(pretty, pretty_size, "%s", named ? os.pretty_name : "Linux");
    snprintf(version_id, version_id_size, "%s", os.version_id != NULL ? os.version_id : "");
    os_release_clear(&os);
}

const char *api_cgroup_version_from_fstype(long long f_type)
{
    return f_type == CGROUP2_MAGIC ? "2" : "1";
}

const char *api_goarch(const char *machine)
{
    static const struct {
        const char *uname, *go;
    } map[] = {
        { "x86_64", "amd64" }, { "aarch64", "arm64" }, { "i686", "386" },
        { "i386", "386" },     { "armv7l", "arm" },    { "ppc64le", "ppc64le" },
        { "s390x", "s390x" },  { "riscv64", "riscv64" },
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i].uname, machine) == 0)
            return map[i].go;
    return machine;
}

void api_host_facts_gather(struct api_host_facts *f)
{
    memset(f, 0, sizeof *f);
    struct utsname u;
    if (uname(&u) == 0) {
        snprintf(f->kernel_version, sizeof f->kernel_version, "%s", u.release);
        snprintf(f->machine, sizeof f->machine, "%.63s", u.machine);
    }
    char text[8192];
    size_t n = 0;
    FILE *fp = fopen("/etc/os-release", "re");
    if (fp == NULL)
        fp = fopen("/usr/lib/os-release", "re");
    if (fp != NULL) {
        n = fread(text, 1, sizeof text - 1, fp);
        fclose(fp);
    }
    text[n] = '\0';
    api_parse_os_release(text, f->operating_system, sizeof f->operating_system, f->os_version,
                         sizeof f->os_version);
    if (gethostname(f->hostname, sizeof f->hostname - 1) < 0)
        snprintf(f->hostname, sizeof f->hostname, "localhost");
    cpu_set_t set;
    f->ncpu = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set)
                                                          : sysconf(_SC_NPROCESSORS_ONLN);
    struct sysinfo si;
    if (sysinfo(&si) == 0)
        f->mem_total = (long long)si.totalram * si.mem_unit;
    struct statfs sfs;
    f->cgroup_version =
        api_cgroup_version_from_fstype(statfs("/sys/fs/cgroup", &sfs) == 0 ? (long long)sfs.f_type
                                                                           : 0);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(f->system_time, sizeof f->system_time, "%s.%09ldZ", base, ts.tv_nsec);
}

/* ---- JSON builders ------------------------------------------------------------ */

static json_t *strv_json(char *const *v)
{
    json_t *arr = json_array();
    for (; arr != NULL && v != NULL && *v != NULL; v++)
        json_array_append_new(arr, json_string(*v));
    return arr;
}

static const char *or_empty(const char *s)
{
    return s != NULL ? s : "";
}

json_t *api_system_version_json(const struct api_system *sys, const struct api_host_facts *f,
                                struct merr *err)
{
    const char *arch = api_goarch(f->machine);
    json_t *v = json_pack(
        "{s:{s:s}, s:[{s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}}],"
        " s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
        "Platform", "Name", "machine-engine",
        "Components", "Name", "Engine", "Version", or_empty(sys->server_version),
        "Details", "ApiVersion", API_VERSION_MAX, "Arch", arch, "BuildTime",
        or_empty(sys->build_time), "Experimental", "false", "GitCommit", or_empty(sys->git_commit),
        "GoVersion", "n/a", "KernelVersion", f->kernel_version, "MinAPIVersion", API_VERSION_MIN,
        "Os", "linux",
        "Version", or_empty(sys->server_version), "ApiVersion", API_VERSION_MAX, "MinAPIVersion",
        API_VERSION_MIN, "GitCommit", or_empty(sys->git_commit), "GoVersion", "n/a", "Os",
        "linux", "Arch", arch, "KernelVersion", f->kernel_version, "BuildTime",
        or_empty(sys->build_time));
    if (v == NULL)
        merr_set(err, MERR_NOMEM, 0, "cannot build the version reply");
    return v;
}

static bool is_cidr(const char *s)
{
    return strchr(s, '/') != NULL;
}

static json_t *registry_config_json(const struct api_system *sys)
{
    json_t *cidrs = json_pack("[s,s]", "::1/128", "127.0.0.0/8");
    json_t *mirrors = strv_json(sys->registry_mirrors);
    json_t *index = json_pack("{s:{s:s, s:O, s:b, s:b}}", "docker.io", "Name", "docker.io",
                              "Mirrors", mirrors, "Secure", 1, "Official", 1);
    for (char *const *r = sys->insecure_registries; index != NULL && r != NULL && *r != NULL;
         r++) {
        if (is_cidr(*r))
            json_array_append_new(cidrs, json_string(*r));
        else
            json_object_set_new(index, *r,
                                json_pack("{s:s, s:[], s:b, s:b}", "Name", *r, "Mirrors",
                                          "Secure", 0, "Official", 0));
    }
    return json_pack("{s:o, s:o, s:o}", "InsecureRegistryCIDRs", cidrs, "IndexConfigs", index,
                     "Mirrors", mirrors);
}

static json_t *warnings_json(const struct api_system *sys)
{
    json_t *w = json_array();
    for (char *const *s = sys->warnings; s != NULL && *s != NULL; s++)
        json_array_append_new(w, json_string(*s));
    return w;
}

json_t *api_system_info_json(const struct api_system *sys, const struct api_host_facts *f,
                             const struct api_system_counts *c, struct merr *err)
{
    json_t *info = json_pack(
        "{s:s, s:I, s:I, s:I, s:I, s:I, s:s, s:[], s:s,"
        " s:{s:[s], s:[s,s], s:n, s:[s]},"
        " s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:s,"
        " s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:s}",
        "ID", or_empty(sys->engine_id), "Containers", c->containers, "ContainersRunning",
        c->running, "ContainersPaused", c->paused, "ContainersStopped", c->stopped, "Images",
        c->images, "Driver", sys->storage_driver != NULL ? sys->storage_driver : "overlay2",
        "DriverStatus", "DockerRootDir",
        or_empty(sys->data_root),
        "Plugins", "Volume", "local", "Network", "host", "none", "Authorization", "Log",
        "json-file",
        "MemoryLimit", 1, "SwapLimit", 0, "CpuCfsPeriod", 1, "CpuCfsQuota", 1, "CPUShares", 1,
        "CPUSet", 1, "PidsLimit", 1, "OomKillDisable", 0, "IPv4Forwarding", 0, "Debug",
        sys->debug, "SystemTime", f->system_time,
        "LoggingDriver", "json-file", "CgroupDriver", "cgroupfs", "CgroupVersion",
        f->cgroup_version != NULL ? f->cgroup_version : "1", "KernelVersion", f->kernel_version,
        "OperatingSystem", f->operating_system, "OSVersion", f->os_version, "OSType", "linux",
        "Architecture", f->machine, "NCPU", (json_int_t)f->ncpu, "MemTotal",
        (json_int_t)f->mem_total, "IndexServerAddress", "https://index.docker.io/v1/");
    if (info == NULL)
        goto nomem;
    json_t *more = json_pack(
        "{s:o, s:s, s:o, s:s, s:b, s:s, s:{s:{s:s}}, s:s,"
        " s:{s:s, s:s, s:s, s:b, s:s, s:n},"
        " s:b, s:s, s:s, s:{s:s}, s:{s:s}, s:{s:s}, s:[s], s:[], s:[], s:o,"
        " s:s, s:s, s:s, s:n}",
        "RegistryConfig", registry_config_json(sys), "Name", f->hostname, "Labels",
        strv_json(sys->labels), "ServerVersion", or_empty(sys->server_version),
        "ExperimentalBuild", 0, "DefaultRuntime", "machine-engine", "Runtimes",
        "machine-engine", "path", "machine-engine", "Isolation", "",
        "Swarm", "NodeID", "", "NodeAddr", "", "LocalNodeState", "inactive", "ControlAvailable",
        0, "Error", "", "RemoteManagers",
        "LiveRestoreEnabled", 0, "InitBinary", "", "ProductLicense", "", "ContainerdCommit",
        "ID", "", "RuncCommit", "ID", "", "InitCommit", "ID", "", "SecurityOptions",
        "name=seccomp,profile=builtin", "DefaultAddressPools", "CDISpecDirs", "Warnings",
        warnings_json(sys),
        "HttpProxy", "", "HttpsProxy", "", "NoProxy", "", "GenericResources");
    if (more == NULL || json_object_update(info, more) < 0) {
        json_decref(more);
        json_decref(info);
        goto nomem;
    }
    json_decref(more);
    if (sys->debug)
        json_object_set_new(info, "NFd", json_integer(0));
    return info;
nomem:
    merr_set(err, MERR_NOMEM, 0, "cannot build the info reply");
    return NULL;
}

/* ---- handlers ------------------------------------------------------------------ */

static int handle_ping(struct api_request *req, void *data, struct merr *err)
{
    static const struct api_kv headers[] = {
        { "Builder-Version", "1" },
        { "Swarm", "inactive" },
        { "Cache-Control", "no-cache, no-store, must-revalidate" },
        { "Pragma", "no-cache" },
    };
    bool head = strcmp(api_request_method(req), "HEAD") == 0;
    return api_reply_full(req, 200, "text/plain; charset=utf-8", "OK", head ? 0 : 2, headers,
                          sizeof headers / sizeof headers[0], err);
}

static int handle_version(struct api_request *req, void *data, struct merr *err)
{
    const struct api_system *sys = data;
    struct api_host_facts facts;
    api_host_facts_gather(&facts);
    json_t *v = api_system_version_json(sys, &facts, err);
    if (v == NULL)
        return -1;
    return api_reply_json(req, 200, v, err);
}

static int handle_info(struct api_request *req, void *data, struct merr *err)
{
    const struct api_system *sys = data;
    struct api_system_counts counts = { 0 };
    if (sys->counts != NULL && sys->counts(sys->counts_data, &counts, err) < 0)
        return -1;
    struct api_host_facts facts;
    api_host_facts_gather(&facts);
    json_t *info = api_system_info_json(sys, &facts, &counts, err);
    if (info == NULL)
        return -1;
    return api_reply_json(req, 200, info, err);
}

int api_system_register(struct api_router *router, const struct api_system *sys,
                        struct merr *err)
{
    static const struct api_route routes[] = {
        { "GET", "/_ping", handle_ping, 0, api_params_none },
        { "HEAD", "/_ping", handle_ping, 0, api_params_none },
        { "GET", "/version", handle_version, 0, api_params_none },
        { "GET", "/info", handle_info, 0, api_params_none },
    };
    return api_router_add_table(router, routes, sizeof routes / sizeof routes[0], (void *)sys,
                                err);
}
