/* GET /containers/{id}/json completed as dockerd answers it: every HostConfig field the request
 * left out with dockerd's default (what --format '{{.HostConfig.X}}' users read), and the
 * overlay directories under GraphDriver.Data. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>

#include "error.h"
#include "fsutil.h"
#include "handlers.h"
#include "image/image.h"
#include "strv.h"

/* dockerd 28's HostConfig of a plain `docker run` on Linux, for the fields a request omits. */
static json_t *host_config_defaults(void)
{
    json_t *d = json_pack(
        "{s:n,s:s,s:{s:s,s:{}},s:{},s:{s:s,s:i},s:b,s:s,s:n,s:[i,i],s:n,s:n,s:s,s:[],s:[],s:[],"
        "s:n,s:n,s:s,s:s,s:n,s:i,s:s,s:b,s:b,s:b,s:n,s:s,s:s,s:I,s:s,s:s}",
        "Binds", "ContainerIDFile", "", "LogConfig", "Type", "json-file", "Config",
        "PortBindings", "RestartPolicy", "Name", "no", "MaximumRetryCount", 0, "AutoRemove", 0,
        "VolumeDriver", "", "VolumesFrom", "ConsoleSize", 0, 0, "CapAdd", "CapDrop",
        "CgroupnsMode", "host", "Dns", "DnsOptions", "DnsSearch", "ExtraHosts", "GroupAdd",
        "IpcMode", "private", "Cgroup", "", "Links", "OomScoreAdj", 0, "PidMode", "",
        "Privileged", 0, "PublishAllPorts", 0, "ReadonlyRootfs", 0, "SecurityOpt", "UTSMode", "",
        "UsernsMode", "", "ShmSize", (json_int_t)67108864, "Runtime", "runc", "Isolation", "");
    json_t *res = json_pack(
        "{s:i,s:I,s:I,s:s,s:i,s:[],s:[],s:[],s:[],s:[],s:I,s:I,s:I,s:I,s:s,s:s,s:[],s:n,s:n,"
        "s:I,s:I,s:n,s:n,s:n,s:[],s:I,s:I,s:I,s:I}",
        "CpuShares", 0, "Memory", (json_int_t)0, "NanoCpus", (json_int_t)0, "CgroupParent", "",
        "BlkioWeight", 0, "BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps",
        "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps", "CpuPeriod", (json_int_t)0, "CpuQuota",
        (json_int_t)0, "CpuRealtimePeriod", (json_int_t)0, "CpuRealtimeRuntime", (json_int_t)0,
        "CpusetCpus", "", "CpusetMems", "", "Devices", "DeviceCgroupRules", "DeviceRequests",
        "MemoryReservation", (json_int_t)0, "MemorySwap", (json_int_t)0, "MemorySwappiness",
        "OomKillDisable", "PidsLimit", "Ulimits", "CpuCount", (json_int_t)0, "CpuPercent",
        (json_int_t)0, "IOMaximumIOps", (json_int_t)0, "IOMaximumBandwidth", (json_int_t)0);
    json_object_update(d, res);
    json_decref(res);
    return d;
}

static void complete_host_config(json_t *inspect)
{
    json_t *hc = json_object_get(inspect, "HostConfig");
    if (!json_is_object(hc))
        return;
    json_t *d = host_config_defaults();
    const char *key;
    json_t *v;
    json_object_foreach(d, key, v) {
        if (json_object_get(hc, key) == NULL && strcmp(key, "CgroupnsMode") != 0)
            json_object_set(hc, key, v);
    }
    json_decref(d);
    /* dockerd's default cgroup namespace: private on cgroup v2, host on v1 and hybrid */
    struct statfs sfs;
    if (json_object_get(hc, "CgroupnsMode") == NULL ||
        json_string_length(json_object_get(hc, "CgroupnsMode")) == 0)
        json_object_set_new(hc, "CgroupnsMode",
                            json_string(statfs("/sys/fs/cgroup", &sfs) == 0 &&
                                                sfs.f_type == 0x63677270 ? "private" : "host"));
    json_t *rp = json_object_get(hc, "RestartPolicy");
    const char *name = json_string_value(json_object_get(rp, "Name"));
    if (json_is_object(rp) && (name == NULL || name[0] == '\0'))
        json_object_set_new(rp, "Name", json_string("no"));
}

/* LowerDir (the image's layers), MergedDir, UpperDir, WorkDir beside the container's log. */
static void complete_graph_driver(struct engine_services *s, json_t *inspect)
{
    const char *log = json_string_value(json_object_get(inspect, "LogPath"));
    const char *image = json_string_value(json_object_get(inspect, "Image"));
    const char *slash = log != NULL ? strrchr(log, '/') : NULL;
    if (slash == NULL || image == NULL)
        return;
    if (strcmp(image_store_driver_name(s->images), "vfs") == 0) {
        /* dockerd's vfs driver has no directories to show */
        json_object_set_new(inspect, "GraphDriver", json_pack("{s:n,s:s}", "Data", "Name", "vfs"));
        return;
    }
    auto_free char *dir = strndup(log, (size_t)(slash - log));
    struct merr ignored = MERR_INIT;
    char **lower = image_layer_dirs(s->images, image, &ignored);
    size_t len = 1;
    for (size_t i = 0; lower != NULL && lower[i] != NULL; i++)
        len += strlen(lower[i]) + 1;
    auto_free char *joined = xcalloc(len, 1);
    for (size_t i = 0; lower != NULL && lower[i] != NULL; i++) {
        if (i > 0)
            strcat(joined, ":");
        strcat(joined, lower[i]);
    }
    strv_free(lower);
    auto_free char *merged = xasprintf("%s/rootfs", dir);
    auto_free char *upper = xasprintf("%s/upper", dir);
    auto_free char *work = xasprintf("%s/work", dir);
    json_object_set_new(inspect, "GraphDriver",
                        json_pack("{s:{s:s,s:s,s:s,s:s},s:s}", "Data", "LowerDir", joined,
                                  "MergedDir", merged, "UpperDir", upper, "WorkDir", work,
                                  "Name", "overlay2"));
}

void handlers_inspect_complete(struct engine_services *s, json_t *inspect)
{
    complete_host_config(inspect);
    complete_graph_driver(s, inspect);
}
