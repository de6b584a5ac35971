/* Runtime extras that need no root: docker seccomp profiles compiled with libseccomp, and the
 * devices cgroup rules a spec adds. */
#include "test_helpers.h"

#include "runtime/runtime-priv.h"

static void test_seccomp_profile(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    struct rt_bpf *bpf = NULL;
    const char *profile =
        "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":1,\"architectures\":"
        "[\"SCMP_ARCH_X86_64\"],\"syscalls\":[{\"names\":[\"read\",\"write\",\"no_such_call\"],"
        "\"action\":\"SCMP_ACT_ALLOW\"},{\"names\":[\"personality\"],\"action\":\"SCMP_ACT_ALLOW\","
        "\"args\":[{\"index\":0,\"value\":8,\"op\":\"SCMP_CMP_EQ\"}]},{\"names\":[\"reboot\"],"
        "\"action\":\"SCMP_ACT_ALLOW\",\"includes\":{\"caps\":[\"CAP_SYS_BOOT\"]}},"
        "{\"names\":[\"mkdir\"],\"action\":\"SCMP_ACT_ERRNO\"}]}";
    assert_int_equal(rt_seccomp_from_profile(profile, 0, &bpf, &err), 0);
    assert_non_null(bpf);
    size_t without_boot = rt_bpf_len(bpf);
    rt_bpf_free(bpf);
    assert_int_equal(rt_seccomp_from_profile(profile, UINT64_C(1) << 22, &bpf, &err), 0);
    assert_true(rt_bpf_len(bpf) > without_boot); /* CAP_SYS_BOOT brings the reboot rule */
    rt_bpf_free(bpf);

    static const char *const bad[] = {
        "not json",
        "{\"defaultAction\":\"SCMP_ACT_NOTIFY\"}",
        "{}",
        "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],"
        "\"action\":\"SCMP_ACT_ERRNO\",\"args\":[{\"index\":9,\"value\":1,\"op\":\"SCMP_CMP_EQ\"}]}]}",
        "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],"
        "\"action\":\"SCMP_ACT_TRACE\"}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bpf = NULL;
        if (rt_seccomp_from_profile(bad[i], 0, &bpf, &err) == 0)
            fail_msg("accepted: %s", bad[i]);
        assert_int_equal(err.code, MERR_INVALID);
        assert_null(bpf);
    }
}

static void test_device_rules(void **state)
{
    (void)state;
    struct rt_device devs[] = {
        { .path = "/dev/xnull", .type = 'c', .major = 1, .minor = 3, .perms = "rw" },
        { .path = "/dev/sdz", .type = 'b', .major = 8, .minor = 16 },
    };
    static const char *const rules[] = { "c 10:200 rwm", NULL };
    struct rt_spec spec = { .devices = devs, .n_devices = 2, .device_rules = rules };
    char **out = rt_device_rules(&spec);
    assert_string_equal(out[0], "c 1:3 rw");
    assert_string_equal(out[1], "b 8:16 rwm");
    assert_string_equal(out[2], "c 10:200 rwm");
    assert_null(out[3]);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seccomp_profile),
        cmocka_unit_test(test_device_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
