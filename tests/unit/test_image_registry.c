/* Registry endpoint selection: HTTPS unless loopback or --insecure-registry;
 * mirrors first for docker.io. Pure: no connection is made. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "image/internal.h"

static char **endpoints(const struct registry_config *rc, const char *name, struct merr *err)
{
    struct image_ref ref;
    assert_int_equal(image_ref_parse(name, &ref, err), 0);
    return registry_endpoints(rc, &ref, err);
}

static void strv_free(char **v)
{
    for (char **p = v; p != NULL && *p != NULL; p++)
        free(*p);
    free(v);
}

static void test_schemes(void **state)
{
    (void)state;
    struct registry_config rc;
    image_registry_config_init(&rc);
    struct merr err = MERR_INIT;
    char **v = endpoints(&rc, "registry.example:5000/x/y", &err);
    assert_string_equal(v[0], "https://registry.example:5000");
    assert_null(v[1]);
    strv_free(v);
    v = endpoints(&rc, "127.0.0.1:5000/x/y", &err);
    assert_string_equal(v[0], "http://127.0.0.1:5000");
    strv_free(v);
    v = endpoints(&rc, "localhost:5000/x", &err);
    assert_string_equal(v[0], "http://localhost:5000");
    strv_free(v);
    v = endpoints(&rc, "[::1]:5000/x", &err);
    assert_string_equal(v[0], "http://[::1]:5000");
    strv_free(v);

    const char *insecure[] = { "registry.example:5000", "other.example", NULL };
    rc.insecure_registries = insecure;
    v = endpoints(&rc, "registry.example:5000/x/y", &err);
    assert_string_equal(v[0], "http://registry.example:5000");
    strv_free(v);
    v = endpoints(&rc, "registry.example:5001/x/y", &err); /* another port */
    assert_string_equal(v[0], "https://registry.example:5001");
    strv_free(v);
    v = endpoints(&rc, "other.example:443/x", &err); /* a host entry covers its ports */
    assert_string_equal(v[0], "http://other.example:443");
    strv_free(v);
    assert_false(registry_host_insecure(&rc, "example"));
    assert_false(registry_host_insecure(&rc, "127.0.0.1.example"));

    /* CIDR entries, as dockerd's --insecure-registry 10.0.0.0/8 */
    const char *cidrs[] = { "192.168.0.0/16", "10.1.2.3/32", "bogus/99", NULL };
    rc.insecure_registries = cidrs;
    assert_true(registry_host_insecure(&rc, "192.168.42.1:5000"));
    assert_true(registry_host_insecure(&rc, "192.168.255.9"));
    assert_true(registry_host_insecure(&rc, "10.1.2.3:443"));
    assert_false(registry_host_insecure(&rc, "10.1.2.4:443"));
    assert_false(registry_host_insecure(&rc, "192.169.0.1:5000"));
    assert_false(registry_host_insecure(&rc, "192.168.1.1.example:5000"));
    v = endpoints(&rc, "192.168.42.1:5000/x", &err);
    assert_string_equal(v[0], "http://192.168.42.1:5000");
    strv_free(v);
}

static void test_docker_io_and_mirrors(void **state)
{
    (void)state;
    struct registry_config rc;
    image_registry_config_init(&rc);
    struct merr err = MERR_INIT;
    char **v = endpoints(&rc, "alpine", &err);
    assert_string_equal(v[0], "https://registry-1.docker.io");
    assert_null(v[1]);
    strv_free(v);

    const char *mirrors[] = { "https://mirror.example/", "http://127.0.0.1:5000", NULL };
    rc.mirrors = mirrors;
    v = endpoints(&rc, "alpine", &err);
    assert_string_equal(v[0], "https://mirror.example");
    assert_string_equal(v[1], "http://127.0.0.1:5000");
    assert_string_equal(v[2], "https://registry-1.docker.io");
    assert_null(v[3]);
    strv_free(v);
    /* mirrors serve docker.io only */
    v = endpoints(&rc, "quay.io/x/y", &err);
    assert_string_equal(v[0], "https://quay.io");
    assert_null(v[1]);
    strv_free(v);

    /* a plain-http mirror must be loopback or insecure */
    const char *bad[] = { "http://mirror.example", NULL };
    rc.mirrors = bad;
    struct image_ref ref;
    assert_int_equal(image_ref_parse("alpine", &ref, &err), 0);
    assert_null(registry_endpoints(&rc, &ref, &err));
    assert_int_equal(err.code, MERR_INVALID);
    const char *weird[] = { "ftp://mirror.example", NULL };
    rc.mirrors = weird;
    assert_null(registry_endpoints(&rc, &ref, &err));
    const char *userinfo[] = { "https://user:pw@mirror.example", NULL };
    rc.mirrors = userinfo;
    assert_null(registry_endpoints(&rc, &ref, &err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schemes),
        cmocka_unit_test(test_docker_io_and_mirrors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
