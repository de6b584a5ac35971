#define MACHINE_NETWORK_PRIV
/* The network module's address parsers beyond plain IPv4: IPRange allocation, IPv6 addresses,
 * subnets and allocation, the IPAM of a network create request, and a container's endpoint
 * settings (IPAMConfig, MAC address, links), with the bodies docker-py and the docker CLI send. */
#include "test_helpers.h"

#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "error.h"
#include "network/network-priv.h"

static uint32_t ip4(const char *s)
{
    uint32_t v = 0;
    struct merr err = MERR_INIT;
    assert_int_equal(net_ip_parse(s, &v, &err), 0);
    return v;
}

static struct net_ip6 ip6(const char *s)
{
    struct net_ip6 v;
    struct merr err = MERR_INIT;
    assert_int_equal(net_ip6_parse(s, &v, &err), 0);
    return v;
}

static void assert_ip6(const struct net_ip6 *got, const char *want)
{
    char buf[NET_IP6_STR];
    net_ip6_str(got, buf);
    assert_string_equal(buf, want);
}

static json_t *js(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    assert_non_null(j);
    return j;
}

static void test_ipam_range(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    struct net_subnet s, r;
    assert_int_equal(net_cidr_parse("172.28.0.0/16", &s, NULL, &err), 0);
    assert_int_equal(net_cidr_parse("172.28.5.0/24", &r, NULL, &err), 0);
    uint32_t got = 0, gw = ip4("172.28.5.254");
    /* the range's first address is neither the subnet's network address nor the gateway */
    assert_int_equal(net_ipam_pick_range(&s, &r, gw, NULL, 0, &got, &err), 0);
    assert_int_equal(got, ip4("172.28.5.0"));
    uint32_t used[] = { ip4("172.28.5.0"), ip4("172.28.5.1") };
    assert_int_equal(net_ipam_pick_range(&s, &r, gw, used, 2, &got, &err), 0);
    assert_int_equal(got, ip4("172.28.5.2"));
    /* a range at the start of the subnet skips its network address */
    assert_int_equal(net_cidr_parse("10.9.0.0/30", &s, NULL, &err), 0);
    assert_int_equal(net_ipam_pick_range(&s, &s, ip4("10.9.0.1"), NULL, 0, &got, &err), 0);
    assert_int_equal(got, ip4("10.9.0.2"));
    uint32_t full[] = { ip4("10.9.0.2") };
    assert_int_equal(net_ipam_pick_range(&s, NULL, ip4("10.9.0.1"), full, 1, &got, &err), -1);
    assert_int_equal(err.code, MERR_EXISTS);
}

static void test_ip6(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    struct net_subnet6 s, other;
    struct net_ip6 host;
    /* docker-py's subnet has host bits: kept apart, as dockerd's IPAM drops them */
    assert_int_equal(net_cidr6_parse("2001:389::1/64", &s, &host, &err), 0);
    assert_int_equal(s.prefix, 64);
    assert_ip6(&s.addr, "2001:389::");
    assert_ip6(&host, "2001:389::1");
    char buf[64];
    net_subnet6_str(&s, buf, sizeof buf);
    assert_string_equal(buf, "2001:389::/64");
    struct net_ip6 in = ip6("2001:389::f00d"), out = ip6("2001:38a::1");
    assert_true(net_subnet6_contains(&s, &in));
    assert_false(net_subnet6_contains(&s, &out));
    assert_int_equal(net_cidr6_parse("2001:389::/96", &other, NULL, &err), 0);
    assert_true(net_subnet6_overlaps(&s, &other));
    assert_true(net_subnet6_overlaps(&other, &s));
    assert_int_equal(net_cidr6_parse("2001:38a::/64", &other, NULL, &err), 0);
    assert_false(net_subnet6_overlaps(&s, &other));
    const char *bad[] = { "2001:389::", "2001:389::/", "2001:389::/129", "2001:389::/127",
                          "zz::/64", "10.0.0.0/8x", "" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err = (struct merr)MERR_INIT;
        assert_int_equal(net_cidr6_parse(bad[i], &s, NULL, &err), -1);
        assert_int_equal(err.code, MERR_INVALID);
    }
    assert_int_equal(net_ip6_parse("172.18.0.1", &host, &err), -1);
}

static void test_ipam6_pick(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    struct net_subnet6 s, r;
    assert_int_equal(net_cidr6_parse("2001:db8:1::/64", &s, NULL, &err), 0);
    struct net_ip6 gw = ip6("2001:db8:1::1"), got;
    assert_int_equal(net_ipam6_pick(&s, NULL, &gw, NULL, 0, &got, &err), 0);
    assert_ip6(&got, "2001:db8:1::2"); /* not the zero address, not the gateway */
    struct net_ip6 used[] = { ip6("2001:db8:1::2"), ip6("2001:db8:1::3") };
    assert_int_equal(net_ipam6_pick(&s, NULL, &gw, used, 2, &got, &err), 0);
    assert_ip6(&got, "2001:db8:1::4");
    /* an IPRange */
    assert_int_equal(net_cidr6_parse("2001:db8:1::100/120", &r, NULL, &err), 0);
    assert_int_equal(net_ipam6_pick(&s, &r, &gw, NULL, 0, &got, &err), 0);
    assert_ip6(&got, "2001:db8:1::100");
    /* a full /126 (zero address, gateway, two used) */
    assert_int_equal(net_cidr6_parse("2001:db8:2::/126", &s, NULL, &err), 0);
    gw = ip6("2001:db8:2::1");
    struct net_ip6 full[] = { ip6("2001:db8:2::2"), ip6("2001:db8:2::3") };
    assert_int_equal(net_ipam6_pick(&s, NULL, &gw, full, 2, &got, &err), -1);
    assert_int_equal(err.code, MERR_EXISTS);
    /* the last address of the whole space ends the walk instead of wrapping */
    assert_int_equal(net_cidr6_parse("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffc/126", &s, NULL, &err), 0);
    struct net_ip6 top[] = { ip6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffd"),
                             ip6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"),
                             ip6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff") };
    assert_int_equal(net_ipam6_pick(&s, NULL, NULL, top, 3, &got, &err), -1);
}

/* docker-py's test_create_network_with_ipam_config and test_create_network_ipv6_enabled */
static void test_ipam_request(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    struct net_ipam_request r;
    json_t *j = js("{\"Driver\":\"default\",\"Config\":[{\"Subnet\":\"172.28.0.0/16\","
                   "\"IPRange\":\"172.28.5.0/24\",\"Gateway\":\"172.28.5.254\","
                   "\"AuxiliaryAddresses\":{\"a\":\"172.28.1.5\",\"b\":\"172.28.1.6\"}},"
                   "{\"Subnet\":\"2001:389::1/64\",\"IPRange\":\"2001:389::0/96\","
                   "\"Gateway\":\"2001:389::ffff\"}]}");
    assert_int_equal(net_ipam_request_parse(j, &r, &err), 0);
    assert_true(r.has_v4);
    assert_int_equal(r.subnet.addr, ip4("172.28.0.0"));
    assert_int_equal(r.range.addr, ip4("172.28.5.0"));
    assert_int_equal(r.range.prefix, 24);
    assert_int_equal(r.gateway, ip4("172.28.5.254"));
    assert_true(r.has_v6);
    assert_ip6(&r.subnet6.addr, "2001:389::");
    assert_int_equal(r.range6.prefix, 96);
    assert_ip6(&r.gateway6, "2001:389::ffff");
    uint32_t aux[4];
    assert_int_equal(net_ipam_aux_v4(json_object_get(j, "Config"), aux, 4), 2);
    assert_int_equal(aux[0], ip4("172.28.1.5"));
    json_decref(j);

    /* nothing asked: the pool decides */
    assert_int_equal(net_ipam_request_parse(NULL, &r, &err), 0);
    assert_false(r.has_v4);
    assert_false(r.has_v6);

    const char *bad[] = {
        "{\"Config\":[{\"Subnet\":\"10.1.0.0/16\",\"Gateway\":\"10.2.0.1\"}]}",
        "{\"Config\":[{\"Subnet\":\"10.1.0.0/16\",\"IPRange\":\"10.2.0.0/24\"}]}",
        "{\"Config\":[{\"Subnet\":\"10.1.0.0/16\",\"AuxiliaryAddresses\":{\"a\":\"10.9.0.1\"}}]}",
        "{\"Config\":[{\"Subnet\":\"10.1.0.0/16\"},{\"Subnet\":\"10.2.0.0/16\"}]}",
        "{\"Config\":[{\"Gateway\":\"10.1.0.1\"}]}",
        "{\"Config\":[{\"Subnet\":\"2001:389::/64\",\"Gateway\":\"2001:38a::1\"}]}",
        "{\"Config\":{}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = js(bad[i]);
        err = (struct merr)MERR_INIT;
        assert_int_equal(net_ipam_request_parse(j, &r, &err), -1);
        assert_int_equal(err.code, MERR_INVALID);
        json_decref(j);
    }
    j = js("{\"Driver\":\"weave\"}");
    assert_int_equal(net_ipam_request_parse(j, &r, &err), -1);
    assert_int_equal(err.code, MERR_NOT_FOUND);
    json_decref(j);
}

static void test_mac_parse(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    char mac[18];
    assert_int_equal(net_mac_parse("02:42:AC:11:00:0a", mac, &err), 0);
    assert_string_equal(mac, "02:42:ac:11:00:0a");
    const char *bad[] = { "02:42:ac:11:00", "02:42:ac:11:00:0a:01", "02-42-ac-11-00-0a",
                          "0x:42:ac:11:00:0a", "01:00:5e:00:00:01" /* multicast */, "", " 2:42:ac:11:00:0a" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err = (struct merr)MERR_INIT;
        assert_int_equal(net_mac_parse(bad[i], mac, &err), -1);
        assert_int_equal(err.code, MERR_INVALID);
    }
}

static void test_link_parse(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    char *name = NULL, *alias = NULL;
    assert_int_equal(net_link_parse("docker-py-test-upstream:bar", &name, &alias, &err), 0);
    assert_string_equal(name, "docker-py-test-upstream");
    assert_string_equal(alias, "bar");
    free(name);
    free(alias);
    assert_int_equal(net_link_parse("/db:/web/database", &name, &alias, &err), 0);
    assert_string_equal(name, "db");
    assert_string_equal(alias, "database");
    free(name);
    free(alias);
    assert_int_equal(net_link_parse("/db", &name, &alias, &err), 0);
    assert_string_equal(name, "db");
    assert_string_equal(alias, "db");
    free(name);
    free(alias);
    const char *bad[] = { "", ":bar", "db:", "a/b:c", "db:b ar" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err = (struct merr)MERR_INIT;
        assert_int_equal(net_link_parse(bad[i], &name, &alias, &err), -1);
        assert_int_equal(err.code, MERR_INVALID);
    }
}

static void test_ep_ipam(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    struct net_ep_ipam r;
    json_t *j = js("{\"IPv4Address\":\"132.124.0.23\",\"IPv6Address\":\"2001:389::f00d\","
                   "\"LinkLocalIPs\":[\"169.254.8.8\",\"fe80::8\"]}");
    assert_int_equal(net_ep_ipam_parse(j, &r, &err), 0);
    assert_int_equal(r.ip4, ip4("132.124.0.23"));
    assert_ip6(&r.ip6, "2001:389::f00d");
    assert_string_equal(r.link_local[0], "169.254.8.8");
    assert_string_equal(r.link_local[1], "fe80::8");
    assert_null(r.link_local[2]);
    net_ep_ipam_release(&r);
    json_decref(j);
    assert_int_equal(net_ep_ipam_parse(NULL, &r, &err), 0);
    assert_int_equal(r.ip4, 0);
    assert_null(r.link_local);
    const char *bad[] = { "{\"IPv4Address\":\"2001:389::1\"}", "{\"IPv6Address\":\"10.0.0.1\"}",
                          "{\"LinkLocalIPs\":[\"x\"]}", "[]" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = js(bad[i]);
        err = (struct merr)MERR_INIT;
        assert_int_equal(net_ep_ipam_parse(j, &r, &err), -1);
        assert_int_equal(err.code, MERR_INVALID);
        json_decref(j);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipam_range),   cmocka_unit_test(test_ip6),
        cmocka_unit_test(test_ipam6_pick),   cmocka_unit_test(test_ipam_request),
        cmocka_unit_test(test_mac_parse),    cmocka_unit_test(test_link_parse),
        cmocka_unit_test(test_ep_ipam),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
