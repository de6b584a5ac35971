/* drivers/container: the pure address picker of the lab network, and the driver's flag table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "container/container-priv.h"
#include "driver.h"
#include "error.h"
#include "registry.h"

static void pick(const char *subnet, const char *gw, const char *const *used, const char *want)
{
    struct merr err = MERR_INIT;
    char *got = ctr_net_pick(subnet, gw, used, &err);
    if (want == NULL) {
        assert_null(got);
        assert_int_not_equal(err.code, MERR_OK);
    } else {
        assert_non_null(got);
        assert_string_equal(got, want);
    }
    free(got);
}

static void test_first_free_after_gateway(void **state)
{
    (void)state;
    pick("172.18.0.0/16", "172.18.0.1", NULL, "172.18.0.2");
    const char *used[] = { "172.18.0.2", "172.18.0.3", "172.18.0.5", NULL };
    pick("172.18.0.0/16", "172.18.0.1", used, "172.18.0.4");
    /* a subnet given with host bits set still starts at its network address */
    pick("10.1.2.77/24", NULL, NULL, "10.1.2.1");
    /* the pick crosses an octet: .0.2 to .0.255 are taken */
    char *row[256] = { 0 };
    for (int i = 2; i < 256; i++) {
        row[i - 2] = malloc(16);
        snprintf(row[i - 2], 16, "10.9.0.%d", i);
    }
    pick("10.9.0.0/23", "10.9.0.1", (const char *const *)row, "10.9.1.0");
    for (int i = 0; row[i] != NULL; i++)
        free(row[i]);
}

static void test_full_and_bad(void **state)
{
    (void)state;
    const char *full[] = { "192.168.5.2", NULL };
    pick("192.168.5.0/30", "192.168.5.1", full, NULL); /* .3 is broadcast */
    pick("192.168.5.0/30", "192.168.5.1", NULL, "192.168.5.2");
    pick("192.168.5.0", NULL, NULL, NULL);
    pick("192.168.5.0/31", NULL, NULL, NULL);
    pick("fd00::/64", NULL, NULL, NULL);
    pick("192.168.5.0/2x", NULL, NULL, NULL);
    pick(NULL, NULL, NULL, NULL);
}

static void test_registered_with_flags(void **state)
{
    (void)state;
    const struct driver *d = driver_find(machine_drivers(), "container");
    assert_non_null(d);
    assert_true(d->uses_ssh);
    const char *names[] = { "container-engine-url", "container-engine-cert-path",
                            "container-image", "container-network", "container-memory",
                            "container-cpus" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        bool found = false;
        for (const struct driver_flag *f = d->flags; f->name != NULL; f++)
            found |= strcmp(f->name, names[i]) == 0;
        assert_true(found);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_free_after_gateway),
        cmocka_unit_test(test_full_and_bad),
        cmocka_unit_test(test_registered_with_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
