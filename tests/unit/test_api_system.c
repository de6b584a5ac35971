/* /version and /info bodies, built from fixed host facts. */
#define MACHINE_API_PRIV
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <string.h>

#include "api/api-priv.h"

/* /etc/os-release of Debian 12, captured on a build machine. */
static const char debian12[] = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"
                               "NAME=\"Debian GNU/Linux\"\n"
                               "VERSION_ID=\"12\"\n"
                               "VERSION=\"12 (bookworm)\"\n"
                               "VERSION_CODENAME=bookworm\n"
                               "ID=debian\n"
                               "HOME_URL=\"https://www.debian.org/\"\n";

static void test_os_release(void **state)
{
    char pretty[64], version[16];
    api_parse_os_release(debian12, pretty, sizeof pretty, version, sizeof version);
    assert_string_equal(pretty, "Debian GNU/Linux 12 (bookworm)");
    assert_string_equal(version, "12");
    api_parse_os_release("NAME=Alpine\nPRETTY_NAME='Alpine Linux v3.19'\nVERSION_ID=3.19.1",
                         pretty, sizeof pretty, version, sizeof version);
    assert_string_equal(pretty, "Alpine Linux v3.19");
    assert_string_equal(version, "3.19.1");
    api_parse_os_release("", pretty, sizeof pretty, version, sizeof version);
    assert_string_equal(pretty, "Linux");
    assert_string_equal(version, "");
}

static void test_cgroup_and_arch(void **state)
{
    assert_string_equal(api_cgroup_version_from_fstype(0x63677270), "2");
    assert_string_equal(api_cgroup_version_from_fstype(0x01021994), "1"); /* tmpfs: v1/hybrid */
    assert_string_equal(api_goarch("x86_64"), "amd64");
    assert_string_equal(api_goarch("aarch64"), "arm64");
    assert_string_equal(api_goarch("mips"), "mips");
}

static const struct api_host_facts facts = {
    .kernel_version = "6.1.0-18-amd64",
    .machine = "x86_64",
    .operating_system = "Debian GNU/Linux 12 (bookworm)",
    .os_version = "12",
    .hostname = "node1",
    .ncpu = 2,
    .mem_total = 25769803776LL,
    .cgroup_version = "2",
    .system_time = "2026-11-23T10:00:00.000000000Z",
};

static char *labels[] = { "zone=a", "tier=b", NULL };
static char *insecure[] = { "10.0.0.0/8", "reg.local:5000", NULL };
static char *mirrors[] = { "https://mirror.example/", NULL };
static char *warnings[] = { "WARNING: API is accessible on http://127.0.0.1:2375 without encryption.",
                            NULL };

static const struct api_system sys = {
    .engine_id = "4c725a32-880d-4683-a621-bba665945883",
    .server_version = "0.1.0",
    .git_commit = "abc123",
    .build_time = "2026-11-23T00:00:00Z",
    .data_root = "/var/lib/machine-engine",
    .labels = labels,
    .insecure_registries = insecure,
    .registry_mirrors = mirrors,
    .warnings = warnings,
};

static const char *str(json_t *root, const char *path)
{
    json_t *v = root;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save, *tok = strtok_r(buf, ".", &save); tok != NULL; tok = strtok_r(NULL, ".", &save))
        v = json_object_get(v, tok);
    return json_string_value(v);
}

static void test_version_json(void **state)
{
    struct merr err = MERR_INIT;
    json_t *v = api_system_version_json(&sys, &facts, &err);
    assert_non_null(v);
    assert_string_equal(str(v, "Version"), "0.1.0");
    assert_string_equal(str(v, "ApiVersion"), "1.45");
    assert_string_equal(str(v, "MinAPIVersion"), "1.24");
    assert_string_equal(str(v, "Os"), "linux");
    assert_string_equal(str(v, "Arch"), "amd64");
    assert_string_equal(str(v, "KernelVersion"), "6.1.0-18-amd64");
    assert_string_equal(str(v, "GitCommit"), "abc123");
    assert_string_equal(str(v, "GoVersion"), "n/a");
    assert_string_equal(str(v, "BuildTime"), "2026-11-23T00:00:00Z");
    assert_string_equal(str(v, "Platform.Name"), "machine-engine");
    json_t *engine = json_array_get(json_object_get(v, "Components"), 0);
    assert_string_equal(str(engine, "Name"), "Engine");
    assert_string_equal(str(engine, "Version"), "0.1.0");
    assert_string_equal(str(engine, "Details.ApiVersion"), "1.45");
    json_decref(v);
}

static void test_info_json(void **state)
{
    struct api_system_counts counts = { .containers = 3, .running = 1, .paused = 0, .stopped = 2,
                                        .images = 7 };
    struct merr err = MERR_INIT;
    json_t *info = api_system_info_json(&sys, &facts, &counts, &err);
    assert_non_null(info);
    assert_int_equal(json_integer_value(json_object_get(info, "Containers")), 3);
    assert_int_equal(json_integer_value(json_object_get(info, "ContainersRunning")), 1);
    assert_int_equal(json_integer_value(json_object_get(info, "ContainersStopped")), 2);
    assert_int_equal(json_integer_value(json_object_get(info, "Images")), 7);
    assert_int_equal(json_integer_value(json_object_get(info, "NCPU")), 2);
    assert_int_equal(json_integer_value(json_object_get(info, "MemTotal")), 25769803776LL);
    assert_string_equal(str(info, "ID"), "4c725a32-880d-4683-a621-bba665945883");
    assert_string_equal(str(info, "Driver"), "overlay2");
    assert_string_equal(str(info, "DockerRootDir"), "/var/lib/machine-engine");
    assert_string_equal(str(info, "OperatingSystem"), "Debian GNU/Linux 12 (bookworm)");
    assert_string_equal(str(info, "OSType"), "linux");
    assert_string_equal(str(info, "Architecture"), "x86_64");
    assert_string_equal(str(info, "KernelVersion"), "6.1.0-18-amd64");
    assert_string_equal(str(info, "Name"), "node1");
    assert_string_equal(str(info, "ServerVersion"), "0.1.0");
    assert_string_equal(str(info, "CgroupDriver"), "cgroupfs");
    assert_string_equal(str(info, "CgroupVersion"), "2");
    assert_string_equal(str(info, "Swarm.LocalNodeState"), "inactive");
    assert_string_equal(json_string_value(json_array_get(json_object_get(info, "SecurityOptions"), 0)),
                        "name=seccomp,profile=builtin");
    json_t *l = json_object_get(info, "Labels");
    assert_int_equal(json_array_size(l), 2);
    assert_string_equal(json_string_value(json_array_get(l, 1)), "tier=b");

    json_t *reg = json_object_get(info, "RegistryConfig");
    json_t *cidrs = json_object_get(reg, "InsecureRegistryCIDRs");
    assert_int_equal(json_array_size(cidrs), 3); /* loopback defaults + 10.0.0.0/8 */
    assert_string_equal(json_string_value(json_array_get(cidrs, 2)), "10.0.0.0/8");
    json_t *idx = json_object_get(reg, "IndexConfigs");
    assert_true(json_is_false(json_object_get(json_object_get(idx, "reg.local:5000"), "Secure")));
    assert_true(json_is_true(json_object_get(json_object_get(idx, "docker.io"), "Official")));
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(json_object_get(idx, "docker.io"), "Mirrors"), 0)),
        "https://mirror.example/");
    assert_string_equal(json_string_value(json_array_get(json_object_get(reg, "Mirrors"), 0)),
                        "https://mirror.example/");

    json_t *w = json_object_get(info, "Warnings");
    /* only the daemon's own warnings: networking is no longer "like 'none'" */
    assert_int_equal(json_array_size(w), 1);
    assert_string_equal(json_string_value(json_array_get(w, 0)), warnings[0]);
    json_decref(info);
}

static void test_info_json_empty_lists(void **state)
{
    struct api_system bare = { .server_version = "0.1.0" };
    struct api_system_counts counts = { 0 };
    struct merr err = MERR_INIT;
    json_t *info = api_system_info_json(&bare, &facts, &counts, &err);
    assert_non_null(info);
    assert_true(json_is_array(json_object_get(info, "Labels")));
    assert_int_equal(json_array_size(json_object_get(info, "Labels")), 0);
    json_decref(info);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_os_release),
        cmocka_unit_test(test_cgroup_and_arch),
        cmocka_unit_test(test_version_json),
        cmocka_unit_test(test_info_json),
        cmocka_unit_test(test_info_json_empty_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
