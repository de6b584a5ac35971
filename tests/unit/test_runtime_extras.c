/* Runtime extras that need no root: docker seccomp profiles compiled with libseccomp, and the
 * devices cgroup rules a spec adds. */
#define MACHINE_RUNTIME_PRIV
#include "test_helpers.h"

#include <linux/bpf.h>

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

static void test_device_program(void **state)
{
    (void)state;
    int type;
    int64_t major, minor;
    unsigned access;
    assert_int_equal(rt_dev_rule_parse("c 1:3 rw", &type, &major, &minor, &access), 0);
    assert_int_equal(type, BPF_DEVCG_DEV_CHAR);
    assert_int_equal(major, 1);
    assert_int_equal(minor, 3);
    assert_int_equal(access, BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE);
    assert_int_equal(rt_dev_rule_parse("b *:* m", &type, &major, &minor, &access), 0);
    assert_int_equal(type, BPF_DEVCG_DEV_BLOCK);
    assert_true(major == -1 && minor == -1 && access == BPF_DEVCG_ACC_MKNOD);
    assert_int_equal(rt_dev_rule_parse("a", &type, &major, &minor, &access), 0);
    assert_int_equal(type, 0);
    assert_int_equal(rt_dev_rule_parse("c 1:3", &type, &major, &minor, &access), -1);
    assert_int_equal(rt_dev_rule_parse("x 1:3 r", &type, &major, &minor, &access), -1);
    assert_int_equal(rt_dev_rule_parse("c 1:3 rx", &type, &major, &minor, &access), -1);

    /* prologue (6), "a" = allow all (2), "c 1:3 r": type, access (3), major, minor, allow (2),
     * then deny (2) */
    static const char *const rules[] = { "c 1:3 r", NULL };
    const char *const *const lists[] = { rules, NULL };
    struct bpf_insn *prog = NULL;
    size_t n = 0;
    struct merr err = MERR_INIT;
    assert_int_equal(rt_devices_bpf_build(lists, &prog, &n, &err), 0);
    assert_int_equal(n, 6 + 8 + 2);
    /* every rule test jumps to the next rule block, which starts right after the exit */
    for (size_t i = 6; i < 6 + 8; i++)
        if (BPF_CLASS(prog[i].code) == BPF_JMP && BPF_OP(prog[i].code) == BPF_JNE)
            assert_int_equal(i + 1 + (size_t)prog[i].off, 6 + 8);
    assert_int_equal(prog[n - 1].code, BPF_JMP | BPF_EXIT);
    assert_int_equal(prog[n - 2].imm, 0); /* default deny */
    free(prog);
    static const char *const bad[] = { "c x:3 r", NULL };
    const char *const *const bad_lists[] = { bad, NULL };
    assert_int_equal(rt_devices_bpf_build(bad_lists, &prog, &n, &err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seccomp_profile),
        cmocka_unit_test(test_device_rules),
        cmocka_unit_test(test_device_program),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
