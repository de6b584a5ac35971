/* The create-body field table: it covers moby's swagger (API 1.41-1.45), docs/engine-api.md
 * lists exactly the same rows, and a body that sets a refused or unknown field is refused. */
#include "test_helpers.h"

#include <jansson.h>

#include "container/config.h"
#include "container/fields.h"

/* Properties of ContainerConfig, HostConfig (with Resources) and EndpointSettings in
 * api/swagger.yaml of moby v20.10 (API 1.41) and v26.1 (API 1.45), plus EndpointIPAMConfig.
 * A field added to the API is added here, and the test fails until the table says what the
 * engine does with it. */
static const char *const swagger_fields[] = {
    "Config.Hostname", "Config.Domainname", "Config.User", "Config.AttachStdin",
    "Config.AttachStdout", "Config.AttachStderr", "Config.ExposedPorts", "Config.Tty",
    "Config.OpenStdin", "Config.StdinOnce", "Config.Env", "Config.Cmd", "Config.Healthcheck",
    "Config.ArgsEscaped", "Config.Image", "Config.Volumes", "Config.WorkingDir",
    "Config.Entrypoint", "Config.NetworkDisabled", "Config.MacAddress", "Config.OnBuild",
    "Config.Labels", "Config.StopSignal", "Config.StopTimeout", "Config.Shell",
    "HostConfig.Annotations", "HostConfig.AutoRemove", "HostConfig.Binds",
    "HostConfig.BlkioDeviceReadBps", "HostConfig.BlkioDeviceReadIOps",
    "HostConfig.BlkioDeviceWriteBps", "HostConfig.BlkioDeviceWriteIOps", "HostConfig.BlkioWeight",
    "HostConfig.BlkioWeightDevice", "HostConfig.CapAdd", "HostConfig.CapDrop", "HostConfig.Cgroup",
    "HostConfig.CgroupParent", "HostConfig.CgroupnsMode", "HostConfig.ConsoleSize",
    "HostConfig.ContainerIDFile", "HostConfig.CpuCount", "HostConfig.CpuPercent",
    "HostConfig.CpuPeriod", "HostConfig.CpuQuota", "HostConfig.CpuRealtimePeriod",
    "HostConfig.CpuRealtimeRuntime", "HostConfig.CpuShares", "HostConfig.CpusetCpus",
    "HostConfig.CpusetMems", "HostConfig.DeviceCgroupRules", "HostConfig.DeviceRequests",
    "HostConfig.Devices", "HostConfig.Dns", "HostConfig.DnsOptions", "HostConfig.DnsSearch",
    "HostConfig.ExtraHosts", "HostConfig.GroupAdd", "HostConfig.IOMaximumBandwidth",
    "HostConfig.IOMaximumIOps", "HostConfig.Init", "HostConfig.IpcMode", "HostConfig.Isolation",
    "HostConfig.KernelMemory", "HostConfig.KernelMemoryTCP", "HostConfig.Links",
    "HostConfig.LogConfig", "HostConfig.MaskedPaths", "HostConfig.Memory",
    "HostConfig.MemoryReservation", "HostConfig.MemorySwap", "HostConfig.MemorySwappiness",
    "HostConfig.Mounts", "HostConfig.NanoCpus", "HostConfig.NetworkMode",
    "HostConfig.OomKillDisable", "HostConfig.OomScoreAdj", "HostConfig.PidMode",
    "HostConfig.PidsLimit", "HostConfig.PortBindings", "HostConfig.Privileged",
    "HostConfig.PublishAllPorts", "HostConfig.ReadonlyPaths", "HostConfig.ReadonlyRootfs",
    "HostConfig.RestartPolicy", "HostConfig.Runtime", "HostConfig.SecurityOpt",
    "HostConfig.ShmSize", "HostConfig.StorageOpt", "HostConfig.Sysctls", "HostConfig.Tmpfs",
    "HostConfig.UTSMode", "HostConfig.Ulimits", "HostConfig.UsernsMode",
    "HostConfig.VolumeDriver", "HostConfig.VolumesFrom",
    "EndpointSettings.Aliases", "EndpointSettings.DNSNames", "EndpointSettings.DriverOpts",
    "EndpointSettings.EndpointID", "EndpointSettings.Gateway",
    "EndpointSettings.GlobalIPv6Address", "EndpointSettings.GlobalIPv6PrefixLen",
    "EndpointSettings.GwPriority", "EndpointSettings.IPAMConfig", "EndpointSettings.IPAddress",
    "EndpointSettings.IPPrefixLen", "EndpointSettings.IPv6Gateway", "EndpointSettings.Links",
    "EndpointSettings.MacAddress", "EndpointSettings.NetworkID",
    "EndpointIPAMConfig.IPv4Address", "EndpointIPAMConfig.IPv6Address",
    "EndpointIPAMConfig.LinkLocalIPs",
};

static const struct ctr_field *table_find(const char *qualified)
{
    for (size_t i = 0; i < ctr_create_fields_n; i++) {
        char name[200];
        snprintf(name, sizeof name, "%s.%s", ctr_create_fields[i].section,
                 ctr_create_fields[i].name);
        if (strcmp(name, qualified) == 0)
            return &ctr_create_fields[i];
    }
    return NULL;
}

static void test_table_covers_swagger(void **state)
{
    (void)state;
    size_t n = sizeof swagger_fields / sizeof swagger_fields[0];
    for (size_t i = 0; i < n; i++) {
        if (table_find(swagger_fields[i]) == NULL)
            fail_msg("%s is not in ctr_create_fields[]", swagger_fields[i]);
    }
    assert_int_equal(ctr_create_fields_n, n); /* and nothing invented */
}

/* Every row of the doc's table is "| `Section.Name` | use | notes |". */
static void test_doc_matches_table(void **state)
{
    (void)state;
    char *text = NULL;
    struct merr err = MERR_INIT;
    assert_int_equal(fs_read_file(MACHINE_TEST_DIR "/../docs/engine-api.md", 1 << 20, &text, NULL,
                                  &err),
                     0);
    char *begin = strstr(text, "<!-- create-fields begin -->");
    char *end = strstr(text, "<!-- create-fields end -->");
    assert_non_null(begin);
    assert_non_null(end);
    *end = '\0';
    size_t rows = 0;
    for (char *line = strtok(begin, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        char name[200], use[64];
        if (sscanf(line, "| `%199[^`]` | %63[^ |] |", name, use) != 2)
            continue;
        const struct ctr_field *f = table_find(name);
        if (f == NULL)
            fail_msg("docs/engine-api.md lists %s, the parser does not", name);
        if (strcmp(use, ctr_field_use_name(f->use)) != 0)
            fail_msg("%s: docs say %s, the parser %s", name, use, ctr_field_use_name(f->use));
        rows++;
    }
    assert_int_equal(rows, ctr_create_fields_n);
    free(text);
}

static int check(const char *body)
{
    json_t *j = json_loads(body, 0, NULL);
    assert_non_null(j);
    struct merr err = MERR_INIT;
    int rc = ctr_fields_check(j, &err);
    if (rc < 0)
        assert_int_equal(err.code, MERR_INVALID);
    json_decref(j);
    return rc;
}

static void test_check(void **state)
{
    (void)state;
    /* what docker 28 sends for `docker create busybox true` */
    assert_int_equal(check("{\"Hostname\":\"\",\"Image\":\"b\",\"Volumes\":{},\"OnBuild\":null,"
                           "\"HostConfig\":{\"ConsoleSize\":[0,0],\"MemorySwappiness\":-1,"
                           "\"CgroupParent\":\"\",\"BlkioWeightDevice\":[],\"Runtime\":\"runc\","
                           "\"Isolation\":\"\",\"OomKillDisable\":false},"
                           "\"NetworkingConfig\":{\"EndpointsConfig\":{\"default\":{"
                           "\"IPAMConfig\":null,\"MacAddress\":\"\",\"GwPriority\":0,"
                           "\"IPAddress\":\"10.0.0.9\"}}}}"),
                     0);
    assert_int_equal(check("{\"Image\":\"b\",\"HostConfig\":{\"CgroupParent\":\"x\"}}"), -1);
    assert_int_equal(check("{\"Image\":\"b\",\"HostConfig\":{\"KernelMemoryTCP\":10}}"), -1);
    /* unknown fields: harmless at their default, refused when set */
    assert_int_equal(check("{\"Image\":\"b\",\"Future\":null,\"HostConfig\":{\"New\":0}}"), 0);
    assert_int_equal(check("{\"Image\":\"b\",\"HostConfig\":{\"NewLimit\":5}}"), -1);
    assert_int_equal(check("{\"Image\":\"b\",\"HostConfig\":{\"memory\":5}}"), -1);
    /* IPv6Address and DriverOpts are the network module's (checked there) */
    assert_int_equal(check("{\"Image\":\"b\",\"NetworkingConfig\":{\"EndpointsConfig\":{\"n\":{"
                           "\"IPAMConfig\":{\"IPv6Address\":\"fd00::2\"}}}}}"),
                     0);
    assert_int_equal(check("{\"Image\":\"b\",\"NetworkingConfig\":{\"EndpointsConfig\":{\"n\":{"
                           "\"DriverOpts\":{\"a\":\"b\"}}}}}"),
                     0);
    assert_int_equal(check("{\"Image\":\"b\",\"NetworkingConfig\":{\"EndpointsConfig\":{\"n\":{"
                           "\"GwPriority\":5}}}}"),
                     -1);

    /* --mount options the storage code does not carry out */
    assert_int_equal(check("{\"Image\":\"b\",\"HostConfig\":{\"Mounts\":[{\"Type\":\"volume\","
                           "\"Source\":\"v\",\"Target\":\"/m\",\"VolumeOptions\":{\"NoCopy\":true,"
                           "\"Labels\":{}},\"Consistency\":\"cached\"}]}}"),
                     0);
    assert_int_equal(check("{\"Image\":\"b\",\"HostConfig\":{\"Mounts\":[{\"Type\":\"volume\","
                           "\"Target\":\"/m\",\"VolumeOptions\":{\"Labels\":{\"a\":\"b\"}}}]}}"),
                     0); /* given to the volume the mount creates */
    assert_int_equal(check("{\"Image\":\"b\",\"HostConfig\":{\"Mounts\":[{\"Type\":\"volume\","
                           "\"Target\":\"/m\",\"VolumeOptions\":{\"DriverConfig\":{\"Name\":\"x\"}}}]}}"),
                     -1);
    assert_int_equal(check("{\"Image\":\"b\",\"HostConfig\":{\"Mounts\":[{\"Type\":\"volume\","
                           "\"Target\":\"/m\",\"VolumeOptions\":{\"Subpath\":\"x\"}}]}}"),
                     -1);
    assert_int_equal(check("{\"Image\":\"b\",\"HostConfig\":{\"Mounts\":[{\"Type\":\"bind\","
                           "\"Source\":\"/s\",\"Target\":\"/m\",\"BindOptions\":"
                           "{\"Propagation\":\"rshared\"}}]}}"),
                     -1);
    assert_int_equal(check("{\"Image\":\"b\",\"HostConfig\":{\"Mounts\":[{\"Type\":\"tmpfs\","
                           "\"Target\":\"/m\",\"TmpfsOptions\":{\"Options\":[[\"exec\"]]}}]}}"),
                     -1);

    assert_int_equal(check("{\"Image\":\"b\",\"HostConfig\":{\"Binds\":[\"/a:/b:ro,rslave\"]}}"), 0);
    assert_int_equal(check("{\"Image\":\"b\",\"HostConfig\":{\"Binds\":[\"/a:/b:ro,rshared\"]}}"), -1);

    struct merr err = MERR_INIT;
    json_t *j = json_loads("{\"Image\":\"b\",\"HostConfig\":{\"StorageOpt\":{\"size\":\"1G\"}}}",
                           0, NULL);
    assert_null(ctr_config_from_create(j, &err));
    assert_int_equal(err.code, MERR_INVALID);
    assert_non_null(strstr(err.msg, "HostConfig.StorageOpt is not supported by machine-engine"));
    json_decref(j);
}

/* dockerd's decoder takes any case: docker-py sends HostConfig.CPURealtimePeriod */
static void test_canonicalize(void **state)
{
    (void)state;
    json_t *j = json_loads("{\"image\":\"b\",\"Image\":\"b\",\"HostConfig\":{\"CPURealtimePeriod\":1000,"
                           "\"memory\":5,\"Memory\":6,\"nosuch\":1},\"NetworkingConfig\":{"
                           "\"EndpointsConfig\":{\"n\":{\"aliases\":[\"a\"]}}}}",
                           0, NULL);
    assert_non_null(j);
    ctr_fields_canonicalize(j);
    json_t *hc = json_object_get(j, "HostConfig");
    assert_int_equal(json_integer_value(json_object_get(hc, "CpuRealtimePeriod")), 1000);
    assert_null(json_object_get(hc, "CPURealtimePeriod"));
    /* both spellings: left for the check to refuse */
    assert_int_equal(json_integer_value(json_object_get(hc, "memory")), 5);
    assert_int_equal(json_integer_value(json_object_get(hc, "Memory")), 6);
    assert_non_null(json_object_get(j, "image"));
    assert_non_null(json_object_get(hc, "nosuch"));
    json_t *ep = json_object_get(json_object_get(json_object_get(j, "NetworkingConfig"),
                                                 "EndpointsConfig"), "n");
    assert_non_null(json_object_get(ep, "aliases")); /* endpoints are read as sent */
    struct merr err = MERR_INIT;
    assert_int_equal(ctr_fields_check(j, &err), -1);
    json_decref(j);

    j = json_loads("{\"Image\":\"b\",\"HostConfig\":{\"CPURealtimeRuntime\":500,\"cpushares\":2}}", 0,
                   NULL);
    ctr_fields_canonicalize(j);
    assert_int_equal(ctr_fields_check(j, &err), 0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "HostConfig"),
                                                        "CpuShares")),
                     2);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_covers_swagger),
        cmocka_unit_test(test_doc_matches_table),
        cmocka_unit_test(test_check), cmocka_unit_test(test_canonicalize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
