/* The network module's pure parts: addresses and IPAM, port specs as the docker CLI sends them,
 * the JSON the CLI reads back (docker port, ps), /etc/hosts and resolv.conf texts, and the NAT
 * rule texts of both firewall backends. */
#define MACHINE_NETWORK_PRIV
#include "test_helpers.h"

#include <stdint.h>
#include <string.h>

#include "error.h"
#include "machine.h"
#include "network/network-priv.h"

static uint32_t ip(const char *s)
{
    uint32_t v = 0;
    struct merr err = MERR_INIT;
    assert_int_equal(net_ip_parse(s, &v, &err), 0);
    return v;
}

static void test_cidr(void **state)
{
    struct merr err = MERR_INIT;
    struct net_subnet s;
    uint32_t host = 0;
    assert_int_equal(net_cidr_parse("172.18.0.0/16", &s, NULL, &err), 0);
    assert_int_equal(s.addr, ip("172.18.0.0"));
    assert_int_equal(s.prefix, 16);
    char buf[32];
    net_subnet_str(&s, buf, sizeof buf);
    assert_string_equal(buf, "172.18.0.0/16");
    /* --bip keeps the host part: the gateway */
    assert_int_equal(net_cidr_parse("172.18.0.1/16", &s, &host, &err), 0);
    assert_int_equal(host, ip("172.18.0.1"));
    assert_int_equal(s.addr, ip("172.18.0.0"));
    assert_int_equal(net_cidr_parse("172.18.0.1/16", &s, NULL, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    const char *bad[] = { "172.18.0.0", "172.18.0.0/", "172.18.0.0/33", "x/16", "1.2.3.4/0", "" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err = (struct merr)MERR_INIT;
        assert_int_equal(net_cidr_parse(bad[i], &s, &host, &err), -1);
        assert_int_equal(err.code, MERR_INVALID);
    }
}

static void test_overlap_and_pool(void **state)
{
    struct merr err = MERR_INIT;
    struct net_subnet a, b, pool, got;
    unsigned size = 0;
    assert_int_equal(net_cidr_parse("10.0.0.0/8", &a, NULL, &err), 0);
    assert_int_equal(net_cidr_parse("10.5.0.0/16", &b, NULL, &err), 0);
    assert_true(net_subnet_overlaps(&a, &b));
    assert_true(net_subnet_contains(&b, ip("10.5.1.2")));
    assert_false(net_subnet_contains(&b, ip("10.6.0.1")));
    assert_int_equal(net_pool_parse("base=172.19.0.0/16,size=24", &pool, &size, &err), 0);
    assert_int_equal(size, 24);
    struct net_subnet taken[2];
    assert_int_equal(net_cidr_parse("172.19.0.0/24", &taken[0], NULL, &err), 0);
    assert_int_equal(net_cidr_parse("172.19.1.0/24", &taken[1], NULL, &err), 0);
    assert_int_equal(net_pool_pick(&pool, size, taken, 2, &got, &err), 0);
    assert_int_equal(got.addr, ip("172.19.2.0"));
    assert_int_equal(got.prefix, 24);
    /* a pool of one /24 that is taken is exhausted */
    assert_int_equal(net_pool_parse("base=172.19.0.0/24,size=24", &pool, &size, &err), 0);
    assert_int_equal(net_pool_pick(&pool, size, taken, 1, &got, &err), -1);
    assert_int_equal(err.code, MERR_EXISTS);
    err = (struct merr)MERR_INIT;
    assert_int_equal(net_pool_parse("base=172.19.0.0/16,size=8", &pool, &size, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    assert_int_equal(net_pool_parse("size=24", &pool, &size, &err), -1);
}

static void test_ipam_pick(void **state)
{
    struct merr err = MERR_INIT;
    struct net_subnet s;
    assert_int_equal(net_cidr_parse("172.18.0.0/29", &s, NULL, &err), 0);
    uint32_t gw = ip("172.18.0.1"), got = 0;
    assert_int_equal(net_ipam_pick(&s, gw, NULL, 0, &got, &err), 0);
    assert_int_equal(got, ip("172.18.0.2")); /* skips the network address and the gateway */
    uint32_t used[] = { ip("172.18.0.4"), ip("172.18.0.2") };
    assert_int_equal(net_ipam_pick(&s, gw, used, 2, &got, &err), 0);
    assert_int_equal(got, ip("172.18.0.3"));
    uint32_t full[] = { ip("172.18.0.2"), ip("172.18.0.3"), ip("172.18.0.4"), ip("172.18.0.5"),
                        ip("172.18.0.6") };
    assert_int_equal(net_ipam_pick(&s, gw, full, 5, &got, &err), -1); /* .7 is broadcast */
    assert_int_equal(err.code, MERR_EXISTS);
}

/* What docker run -p 18080:80 -p 127.0.0.1:5353:53/udp -p 9000 -P --expose 7000 sends. */
static const char *const create_sample =
    "{\"ExposedPorts\":{\"80/tcp\":{},\"53/udp\":{},\"9000/tcp\":{},\"7000/tcp\":{}},"
    "\"HostConfig\":{\"PortBindings\":{\"80/tcp\":[{\"HostIp\":\"\",\"HostPort\":\"18080\"}],"
    "\"53/udp\":[{\"HostIp\":\"127.0.0.1\",\"HostPort\":\"5353\"}],"
    "\"9000/tcp\":[{\"HostIp\":\"\",\"HostPort\":\"\"}]},\"PublishAllPorts\":true}}";

static void test_port_bindings(void **state)
{
    struct merr err = MERR_INIT;
    json_t *body = json_loads(create_sample, 0, NULL);
    assert_non_null(body);
    json_t *hc = json_object_get(body, "HostConfig");
    struct net_port_binding *b = NULL;
    size_t n = 0;
    assert_int_equal(net_port_bindings_parse(json_object_get(hc, "PortBindings"),
                                             json_object_get(body, "ExposedPorts"), true, &b, &n,
                                             &err),
                     0);
    assert_int_equal(n, 4); /* three bindings + 7000 from -P */
    bool seen80 = false, seen53 = false, seen9000 = false, seen7000 = false;
    for (size_t i = 0; i < n; i++) {
        if (b[i].container_port == 80) {
            seen80 = b[i].proto == NET_TCP && b[i].host_port == 18080 && b[i].host_ip[0] == '\0';
        } else if (b[i].container_port == 53) {
            seen53 = b[i].proto == NET_UDP && b[i].host_port == 5353 &&
                     strcmp(b[i].host_ip, "127.0.0.1") == 0;
        } else if (b[i].container_port == 9000) {
            seen9000 = b[i].host_port == 0;
        } else if (b[i].container_port == 7000) {
            seen7000 = b[i].host_port == 0 && b[i].proto == NET_TCP;
        }
    }
    assert_true(seen80 && seen53 && seen9000 && seen7000);
    free(b);
    /* without -P the exposed-only port is not published */
    assert_int_equal(net_port_bindings_parse(json_object_get(hc, "PortBindings"),
                                             json_object_get(body, "ExposedPorts"), false, &b, &n,
                                             &err),
                     0);
    assert_int_equal(n, 3);
    free(b);
    json_decref(body);

    const char *bad[] = { "{\"80/sctp\":[]}", "{\"0/tcp\":[]}", "{\"70000\":[]}",
                          "{\"80\":[{\"HostPort\":\"x\"}]}", "{\"80\":[{\"HostIp\":\"::zz\"}]}" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *pb = json_loads(bad[i], 0, NULL);
        err = (struct merr)MERR_INIT;
        assert_int_equal(net_port_bindings_parse(pb, NULL, false, &b, &n, &err), -1);
        assert_int_equal(err.code, MERR_INVALID);
        json_decref(pb);
    }
}

static void test_ports_json(void **state)
{
    struct net_port_bound bound[1] = { { { NET_TCP, 80, "", 18080 }, 18080 } };
    json_t *exposed = json_pack("{s:{},s:{}}", "80/tcp", "443/tcp");
    json_t *settings = net_ports_settings_json(bound, 1, exposed);
    char *text = json_dumps(settings, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(text, "{\"443/tcp\":null,\"80/tcp\":[{\"HostIp\":\"0.0.0.0\",\"HostPort\":\"18080\"}]}");
    free(text);
    json_decref(settings);
    json_t *ps = net_ports_ps_json(bound, 1, exposed);
    text = json_dumps(ps, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(text, "[{\"IP\":\"0.0.0.0\",\"PrivatePort\":80,\"PublicPort\":18080,\"Type\":\"tcp\"},"
                              "{\"PrivatePort\":443,\"Type\":\"tcp\"}]");
    free(text);
    json_decref(ps);
    json_decref(exposed);
}

static void test_hosts_text(void **state)
{
    const char *self[] = { "abc123", NULL };
    const char *peer[] = { "web", "db", "bad name", "0123456789ab", NULL };
    struct net_host_entry e[] = { { ip("172.19.0.2"), self }, { ip("172.19.0.3"), peer } };
    char *t = net_hosts_text(e, 2);
    assert_non_null(strstr(t, "127.0.0.1\tlocalhost\n"));
    assert_non_null(strstr(t, "172.19.0.2\tabc123\n"));
    /* a name with a space would add a bogus name: left out */
    assert_non_null(strstr(t, "172.19.0.3\tweb db 0123456789ab\n"));
    free(t);
}

static void test_resolv_text(void **state)
{
    const char *host = "# generated\nnameserver 127.0.0.53\nnameserver 10.1.2.3\n"
                       "search example.org\noptions edns0\n";
    char *t = net_resolv_text(host, false, NULL);
    assert_string_equal(t, "nameserver 10.1.2.3\nsearch example.org\noptions edns0\n");
    free(t);
    t = net_resolv_text(host, true, NULL);
    assert_string_equal(t, "nameserver 127.0.0.11\noptions ndots:0\nsearch example.org\n"
                           "options edns0\n");
    free(t);
    /* only a loopback resolver on the host (systemd-resolved): dockerd's public fallback */
    t = net_resolv_text("nameserver 127.0.0.53\nsearch lan\n", false, NULL);
    assert_string_equal(t, "search lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    free(t);
    /* --dns, --dns-search, --dns-option replace the host's */
    char *servers[] = { "10.9.9.9", NULL }, *search[] = { "corp.test", NULL },
         *options[] = { "timeout:1", "attempts:2", NULL };
    struct net_dns_settings user = { servers, search, options };
    t = net_resolv_text(host, false, &user);
    assert_string_equal(t, "nameserver 10.9.9.9\nsearch corp.test\noptions timeout:1\n"
                           "options attempts:2\n");
    free(t);
    /* on a user network the servers go to the embedded server instead */
    t = net_resolv_text(host, true, &user);
    assert_string_equal(t, "nameserver 127.0.0.11\noptions ndots:0\nsearch corp.test\n"
                           "options timeout:1\noptions attempts:2\n");
    free(t);
}

static void test_extra_hosts(void **state)
{
    char *name = NULL, *addr = NULL;
    struct merr err = MERR_INIT;
    assert_int_equal(net_extra_host_parse("db:10.0.0.5", &name, &addr, &err), 0);
    assert_string_equal(name, "db");
    assert_string_equal(addr, "10.0.0.5");
    free(name);
    free(addr);
    assert_int_equal(net_extra_host_parse("v6=fd00::1", &name, &addr, &err), 0);
    assert_string_equal(addr, "fd00::1");
    free(name);
    free(addr);
    assert_int_equal(net_extra_host_parse("v6b:[::1]", &name, &addr, &err), 0);
    assert_string_equal(addr, "::1");
    free(name);
    free(addr);
    static const char *const bad[] = { "db", ":10.0.0.5", "db:", "db:10.0.0.256", "db:nohost",
                                       "bad name:10.0.0.1", "db:[10.0.0.1]" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(net_extra_host_parse(bad[i], &name, &addr, &err), -1);
        assert_int_equal(err.code, MERR_INVALID);
    }
    char *specs[] = { "db:10.0.0.5", "host.docker.internal:host-gateway", "x:[fd00::2]", NULL };
    char *t = net_extra_hosts_text(specs, ip("172.18.0.1"));
    assert_string_equal(t, "10.0.0.5\tdb\n172.18.0.1\thost.docker.internal\nfd00::2\tx\n");
    free(t);
}

static void test_nft_script(void **state)
{
    struct net_fw_net nets[] = { { "machine0", "172.18.0.0/16", false },
                                 { "mbr-0123456789a", "172.19.0.0/24", false },
                                 { "mbr-internal", "172.19.1.0/24", true } };
    char *s = net_fw_nft_script(nets, 3);
    assert_string_equal(s, "add table ip machine-engine\n"
                           "delete table ip machine-engine\n"
                           "table ip machine-engine {\n"
                           "\tchain postrouting {\n"
                           "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
                           "\t\tip saddr 172.18.0.0/16 oifname != \"machine0\" masquerade\n"
                           "\t\tip saddr 172.19.0.0/24 oifname != \"mbr-0123456789a\" masquerade\n"
                           "\t}\n"
                           "\tchain forward {\n"
                           "\t\ttype filter hook forward priority filter; policy accept;\n"
                           "\t\tiifname \"machine0\" oifname { \"mbr-0123456789a\" } drop\n"
                           "\t\tiifname \"mbr-0123456789a\" oifname { \"machine0\" } drop\n"
                           "\t\tiifname \"mbr-internal\" oifname != \"mbr-internal\" drop\n"
                           "\t\toifname \"mbr-internal\" iifname != \"mbr-internal\" drop\n"
                           "\t}\n}\n");
    free(s);
    /* one ordinary network: NAT only, no forward chain */
    s = net_fw_nft_script(nets, 1);
    assert_null(strstr(s, "forward"));
    free(s);
    s = net_fw_nft_script(NULL, 0); /* cleanup: the table goes, nothing else */
    assert_string_equal(s, "add table ip machine-engine\ndelete table ip machine-engine\n");
    free(s);
}

static void test_iptables_argv(void **state)
{
    struct net_fw_net nets[] = { { "machine0", "172.18.0.0/16", false } };
    char ***v = net_fw_iptables_setup(nets, 1);
    size_t n = 0;
    while (v[n] != NULL)
        n++;
    assert_int_equal(n, 5);
    assert_string_equal(v[0][5], "MACHINE-ENGINE");
    assert_string_equal(v[0][0], "?iptables"); /* -N may fail: the chain exists */
    const char *want[] = { "iptables", "-w", "-t", "nat", "-A", "MACHINE-ENGINE", "-s",
                           "172.18.0.0/16", "!", "-o", "machine0", "-j", "MASQUERADE" };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        assert_string_equal(v[4][i], want[i]);
    assert_null(v[4][sizeof want / sizeof want[0]]);
    net_argvv_free(v);
    v = net_fw_iptables_teardown();
    assert_string_equal(v[0][4], "-D");
    assert_string_equal(v[2][4], "-X");
    net_argvv_free(v);
}

/* Joins argv v[i] into one line (without the leading "?"). */
static char *line_of(char **argv)
{
    size_t cap = 1024;
    char *out = calloc(1, cap);
    for (size_t i = 0; argv[i] != NULL; i++) {
        strncat(out, i == 0 && argv[i][0] == '?' ? argv[i] + 1 : argv[i], cap - strlen(out) - 2);
        if (argv[i + 1] != NULL)
            strcat(out, " ");
    }
    return out;
}

/* The index of the argv that reads want, or SIZE_MAX. */
static size_t find_line(char ***v, const char *want)
{
    for (size_t i = 0; v[i] != NULL; i++) {
        char *l = line_of(v[i]);
        bool eq = strcmp(l, want) == 0;
        free(l);
        if (eq)
            return i;
    }
    return SIZE_MAX;
}

static bool has_line(char ***v, const char *want)
{
    return find_line(v, want) != SIZE_MAX;
}

static size_t index_of(char ***v, const char *want)
{
    size_t i = find_line(v, want);
    if (i == SIZE_MAX)
        fail_msg("missing: %s", want);
    return i;
}

static void test_iptables_forward(void **state)
{
    struct net_fw_net nets[] = { { "machine0", "172.18.0.0/16", false },
                                 { "mbr-a", "172.19.0.0/24", false },
                                 { "mbr-int", "172.19.1.0/24", true } };
    char ***v = net_fw_iptables_forward_setup(nets, 3);
    const char *p = "iptables -w -t filter ";
    char want[256];
#define W(x) (snprintf(want, sizeof want, "%s%s", p, x), want)
    assert_int_equal(index_of(v, W("-I FORWARD 1 -j MACHINE-ENGINE-FWD")), 3);
    assert_string_equal(v[2][4], "-C"); /* the jump is added only when missing */
    size_t drop_ab = index_of(v, W("-A MACHINE-ENGINE-FWD -i machine0 -o mbr-a -j DROP"));
    index_of(v, W("-A MACHINE-ENGINE-FWD -i mbr-a -o machine0 -j DROP"));
    size_t drop_int = index_of(v, W("-A MACHINE-ENGINE-FWD -i mbr-int ! -o mbr-int -j DROP"));
    index_of(v, W("-A MACHINE-ENGINE-FWD -o mbr-int ! -i mbr-int -j DROP"));
    size_t acc = index_of(v, W("-A MACHINE-ENGINE-FWD -i machine0 -j ACCEPT"));
    index_of(v, W("-A MACHINE-ENGINE-FWD -o machine0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"));
    index_of(v, W("-A MACHINE-ENGINE-FWD -i mbr-int -o mbr-int -j ACCEPT"));
    assert_false(has_line(v, W("-A MACHINE-ENGINE-FWD -i mbr-int -j ACCEPT")));
    assert_true(drop_ab < acc && drop_int < acc); /* drops before accepts */
#undef W
    net_argvv_free(v);
    v = net_fw_iptables_forward_teardown();
    assert_true(has_line(v, "iptables -w -t filter -D FORWARD -j MACHINE-ENGINE-FWD"));
    assert_true(has_line(v, "iptables -w -t filter -X MACHINE-ENGINE-FWD"));
    net_argvv_free(v);

    bool ours;
    assert_true(net_fw_forward_blocked("-P FORWARD DROP\n-A FORWARD -j DOCKER-USER\n", &ours));
    assert_false(ours);
    assert_false(net_fw_forward_blocked("-P FORWARD ACCEPT\n-A FORWARD -j MACHINE-ENGINE-FWD\n", &ours));
    assert_true(ours);
    assert_false(net_fw_forward_blocked("-P FORWARD DROPPED\n", &ours));
    assert_false(net_fw_forward_blocked(NULL, &ours));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cidr),          cmocka_unit_test(test_overlap_and_pool),
        cmocka_unit_test(test_ipam_pick),     cmocka_unit_test(test_port_bindings),
        cmocka_unit_test(test_ports_json),    cmocka_unit_test(test_hosts_text),
        cmocka_unit_test(test_resolv_text),   cmocka_unit_test(test_extra_hosts),   cmocka_unit_test(test_nft_script),
        cmocka_unit_test(test_iptables_argv), cmocka_unit_test(test_iptables_forward),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
