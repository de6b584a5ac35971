/* The iptables firewall backend through the command seam: the argv sequence of an apply and a
 * clear, against golden files (tests/unit/golden/firewall-*.txt); nothing runs. */
#define MACHINE_NETWORK_PRIV
#include "test_helpers.h"

#include "command.h"
#include "network/network-priv.h"

#ifndef MACHINE_TEST_DIR
#error "MACHINE_TEST_DIR names tests/"
#endif

/* A FORWARD policy of DROP (a host firewall's): the engine's forward chain is installed. */
static const char forward_drop[] = "-P FORWARD DROP\n-A FORWARD -j DOCKER-USER\n";

static void test_iptables_apply_clear(void **state)
{
    struct cmd_recorder rec = { .status = 0, .out = forward_drop };
    struct cmd_runner runner = cmd_recorder_runner(&rec);
    struct net_fw *fw = net_fw_new_iptables(NULL, &runner);
    assert_string_equal(net_fw_name(fw), "iptables");
    struct net_fw_net nets[] = { { "machine0", "172.18.0.0/16", false },
                                 { "br-internal", "172.19.0.0/16", true } };
    struct merr err = MERR_INIT;
    assert_int_equal(net_fw_apply(fw, nets, 2, &err), 0);
    test_assert_golden("firewall-iptables-apply.txt", rec.log.data);
    abuf_reset(&rec.log);
    assert_int_equal(net_fw_clear(fw, &err), 0);
    test_assert_golden("firewall-iptables-clear.txt", rec.log.data);
    net_fw_free(fw);
    abuf_release(&rec.log);
}

/* A command that fails (not one marked optional) fails the apply with its words. */
static void test_iptables_failure(void **state)
{
    struct cmd_recorder rec = { .status = 1, .out = "" };
    struct cmd_runner runner = cmd_recorder_runner(&rec);
    struct net_fw *fw = net_fw_new_iptables(NULL, &runner);
    struct net_fw_net nets[] = { { "machine0", "172.18.0.0/16", false } };
    struct merr err = MERR_INIT;
    assert_int_equal(net_fw_apply(fw, nets, 1, &err), -1);
    assert_int_equal(err.code, MERR_IO);
    net_fw_free(fw);
    abuf_release(&rec.log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iptables_apply_clear),
        cmocka_unit_test(test_iptables_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
