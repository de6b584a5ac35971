/* The KVM probe through the command seam: its qemu argv against a golden file
 * (tests/unit/golden/kvm-probe-argv.txt) and its verdict from what the serial port printed. */
#define MACHINE_KVM_PRIV
#include "test_helpers.h"

#include "command.h"
#include "kvm/kvm-priv.h"

#ifndef MACHINE_TEST_DIR
#error "MACHINE_TEST_DIR names tests/"
#endif

static void test_probe_argv_and_verdict(void **state)
{
    struct cmd_recorder rec = { .status = 0, .out = "SeaBIOS\r\n[    0.000000] Linux version 6.1.0\r\n" };
    struct cmd_runner runner = cmd_recorder_runner(&rec);
    assert_true(kvm_probe_run(&runner, "/var/lib/machine/vmlinuz", 4000));
    test_assert_golden("kvm-probe-argv.txt", rec.log.data);
    abuf_release(&rec.log);

    /* qemu gave up (no KVM access) or the kernel never spoke: not usable */
    struct cmd_recorder quiet = { .status = 1, .out = "qemu-system-x86_64: failed to initialize kvm\n" };
    runner = cmd_recorder_runner(&quiet);
    assert_false(kvm_probe_run(&runner, "/var/lib/machine/vmlinuz", 4000));
    abuf_release(&quiet.log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probe_argv_and_verdict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
