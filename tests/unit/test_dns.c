/* The embedded DNS server: query parsing and reply building (read back with glibc's
 * ns_parserr, an independent decoder), resolv.conf nameservers, and the server itself over
 * loopback UDP sockets: local names answered, others forwarded to an upstream (a socket this
 * test plays), the next upstream after one that refuses, the same over TCP, SERVFAIL without upstreams, FORMERR,
 * nothing after the owner is removed. */
#define MACHINE_NETWORK_PRIV
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <resolv.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "machine.h"
#include "network/network-priv.h"

static size_t mkquery(const char *name, int type, uint8_t *buf, size_t cap)
{
    int n = res_mkquery(ns_o_query, name, ns_c_in, type, NULL, 0, NULL, buf, (int)cap);
    assert_true(n > 12);
    return (size_t)n;
}

static void test_query_parse(void **state)
{
    uint8_t q[512];
    size_t n = mkquery("Web.Example.", ns_t_a, q, sizeof q);
    struct net_dns_query p;
    struct merr err = MERR_INIT;
    assert_int_equal(net_dns_query_parse(q, n, &p, &err), 0);
    assert_string_equal(p.name, "web.example");
    assert_int_equal(p.qtype, ns_t_a);
    assert_int_equal(p.qclass, ns_c_in);
    assert_int_equal(p.question_end, n);
    assert_int_equal(p.id, q[0] << 8 | q[1]);
    assert_true(p.rd);

    /* with an EDNS OPT record after the question */
    uint8_t e[512];
    memcpy(e, q, n);
    static const uint8_t opt[] = { 0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0 };
    memcpy(e + n, opt, sizeof opt);
    e[11] = 1; /* ARCOUNT */
    assert_int_equal(net_dns_query_parse(e, n + sizeof opt, &p, &err), 0);
    assert_int_equal(p.question_end, n);
}

static void test_query_parse_rejects(void **state)
{
    uint8_t q[512], b[512];
    size_t n = mkquery("web", ns_t_a, q, sizeof q);
    struct net_dns_query p;
    struct merr err = MERR_INIT;
    assert_int_equal(net_dns_query_parse(q, 11, &p, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    memcpy(b, q, n);
    b[2] |= 0x80; /* a response */
    assert_int_equal(net_dns_query_parse(b, n, &p, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    memcpy(b, q, n);
    b[5] = 2; /* two questions */
    assert_int_equal(net_dns_query_parse(b, n, &p, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    memcpy(b, q, n);
    b[7] = 1; /* an answer in a query */
    assert_int_equal(net_dns_query_parse(b, n, &p, &err), -1);
    memcpy(b, q, n);
    b[2] = (uint8_t)((b[2] & 0x87) | (2 << 3)); /* opcode STATUS */
    assert_int_equal(net_dns_query_parse(b, n, &p, &err), -1);
    assert_int_equal(err.code, MERR_UNSUPPORTED);
    /* a compression pointer to itself */
    memcpy(b, q, 12);
    b[12] = 0xc0;
    b[13] = 12;
    memset(b + 14, 0, 4);
    assert_int_equal(net_dns_query_parse(b, 18, &p, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    /* the question cut before its type */
    assert_int_equal(net_dns_query_parse(q, n - 2, &p, &err), -1);
    /* a label running past the end */
    memcpy(b, q, 12);
    b[12] = 63;
    assert_int_equal(net_dns_query_parse(b, 20, &p, &err), -1);
}

/* Decodes a reply with glibc: rcode, answer count, and the addresses. */
static void read_reply(const uint8_t *r, size_t n, int *rcode, uint32_t *ips, size_t *n_ips)
{
    ns_msg m;
    assert_int_equal(ns_initparse(r, (int)n, &m), 0);
    *rcode = ns_msg_getflag(m, ns_f_rcode);
    *n_ips = ns_msg_count(m, ns_s_an);
    for (size_t i = 0; i < *n_ips; i++) {
        ns_rr rr;
        assert_int_equal(ns_parserr(&m, ns_s_an, (int)i, &rr), 0);
        assert_int_equal(ns_rr_type(rr), ns_t_a);
        assert_int_equal(ns_rr_rdlen(rr), 4);
        const uint8_t *d = ns_rr_rdata(rr);
        ips[i] = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
        assert_string_equal(ns_rr_name(rr), "web");
    }
}

static void test_reply_build(void **state)
{
    uint8_t q[512], r[512];
    size_t n = mkquery("web", ns_t_a, q, sizeof q);
    struct net_dns_query p;
    struct merr err = MERR_INIT;
    assert_int_equal(net_dns_query_parse(q, n, &p, &err), 0);
    uint32_t ips[40], got[40];
    for (uint32_t i = 0; i < 40; i++)
        ips[i] = 0xac130002u + i;
    size_t len = net_dns_reply_build(q, &p, ns_r_noerror, ips, 2, r, sizeof r);
    assert_true(len > n);
    assert_int_equal(r[0] << 8 | r[1], p.id);
    assert_true(r[2] & 0x80); /* QR */
    int rcode;
    size_t k;
    read_reply(r, len, &rcode, got, &k);
    assert_int_equal(rcode, ns_r_noerror);
    assert_int_equal(k, 2);
    assert_int_equal(got[0], 0xac130002u);
    assert_int_equal(got[1], 0xac130003u);
    /* forty addresses: as many as fit in 512 bytes, still a valid message */
    len = net_dns_reply_build(q, &p, ns_r_noerror, ips, 40, r, sizeof r);
    assert_true(len <= 512);
    read_reply(r, len, &rcode, got, &k);
    assert_true(k > 20 && k < 40);
    /* AAAA for a container's name: the name exists, no record */
    n = mkquery("web", ns_t_aaaa, q, sizeof q);
    assert_int_equal(net_dns_query_parse(q, n, &p, &err), 0);
    len = net_dns_reply_build(q, &p, ns_r_noerror, ips, 2, r, sizeof r);
    read_reply(r, len, &rcode, got, &k);
    assert_int_equal(rcode, ns_r_noerror);
    assert_int_equal(k, 0);
    /* AAAA records for a container with IPv6 addresses; none for an A question */
    struct net_ip6 v6[2];
    assert_int_equal(net_ip6_parse("fd00:30::2", &v6[0], &err), 0);
    assert_int_equal(net_ip6_parse("fd00:30::77", &v6[1], &err), 0);
    len = net_dns_reply6_build(q, &p, ns_r_noerror, v6, 2, r, sizeof r);
    assert_int_equal(len, n + 2 * 28);
    assert_int_equal(r[6] << 8 | r[7], 2); /* ANCOUNT */
    assert_int_equal(r[n + 2] << 8 | r[n + 3], ns_t_aaaa);
    assert_int_equal(r[n + 10] << 8 | r[n + 11], 16); /* RDLENGTH */
    assert_memory_equal(r + len - 16, v6[1].b, 16);
    size_t na = mkquery("web", ns_t_a, q, sizeof q);
    assert_int_equal(net_dns_query_parse(q, na, &p, &err), 0);
    len = net_dns_reply6_build(q, &p, ns_r_noerror, v6, 2, r, sizeof r);
    assert_int_equal(r[6] << 8 | r[7], 0);
    /* too small a buffer */
    assert_int_equal(net_dns_reply_build(q, &p, ns_r_noerror, ips, 2, r, 10), 0);
}

static void test_error_build(void **state)
{
    uint8_t q[512], r[64];
    size_t n = mkquery("web", ns_t_a, q, sizeof q);
    size_t len = net_dns_error_build(q, n, ns_r_servfail, r, sizeof r);
    assert_int_equal(len, 12);
    assert_memory_equal(r, q, 2);
    assert_true(r[2] & 0x80);
    assert_int_equal(r[3] & 0xf, ns_r_servfail);
    assert_int_equal(net_dns_error_build(q, 5, ns_r_formerr, r, sizeof r), 0);
}

static void test_resolv_nameservers(void **state)
{
    uint32_t ns[3];
    const char *text = "# comment\nsearch lan\nnameserver 127.0.0.53\nnameserver ::1\n"
                       "nameserver\t10.0.0.1\nnameserver 10.0.0.2\nnameserver 10.0.0.3\n";
    assert_int_equal(net_resolv_nameservers(text, ns, 3), 3);
    assert_int_equal(ns[0], 0x7f000035u);
    assert_int_equal(ns[1], 0x0a000001u);
    assert_int_equal(ns[2], 0x0a000002u);
    assert_int_equal(net_resolv_nameservers("options edns0\n", ns, 3), 0);
    assert_int_equal(net_resolv_nameservers(NULL, ns, 3), 0);
}

static void test_resolv_search(void **state)
{
    char **v = net_resolv_search("search Corp.Test. lan\nnameserver 10.0.0.1\n");
    assert_non_null(v);
    assert_string_equal(v[0], "corp.test");
    assert_string_equal(v[1], "lan");
    assert_null(v[2]);
    strv_free(v);
    v = net_resolv_search("domain old.test\nsearch\tnew.test\n"); /* the last line wins */
    assert_string_equal(v[0], "new.test");
    assert_null(v[1]);
    strv_free(v);
    assert_null(net_resolv_search("nameserver 10.0.0.1\n"));
    assert_null(net_resolv_search(NULL));
}

/* ---- the server over loopback ---- */

static int udp_socket(uint16_t *port, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t l = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    *port = ntohs(a.sin_port);
    struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void send_to(int fd, uint16_t port, const uint8_t *msg, size_t len)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(sendto(fd, msg, len, 0, (struct sockaddr *)&a, sizeof a), (ssize_t)len);
}

static int tcp_listener(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 4), 0);
    return fd;
}

static uint16_t port_of(int fd)
{
    struct sockaddr_in a;
    socklen_t l = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    return ntohs(a.sin_port);
}

static int tcp_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = { .tv_sec = 5 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void tcp_send(int fd, const uint8_t *msg, size_t len)
{
    uint8_t hdr[2] = { (uint8_t)(len >> 8), (uint8_t)len };
    assert_int_equal(write(fd, hdr, 2), 2);
    assert_int_equal(write(fd, msg, len), (ssize_t)len);
}

/* One framed message into buf; its length. */
static size_t tcp_recv(int fd, uint8_t *buf, size_t cap)
{
    uint8_t hdr[2];
    assert_int_equal(recv(fd, hdr, 2, MSG_WAITALL), 2);
    size_t len = (size_t)(hdr[0] << 8 | hdr[1]);
    assert_true(len <= cap);
    assert_int_equal(recv(fd, buf, len, MSG_WAITALL), (ssize_t)len);
    return len;
}

static int lookup(void *data, const char *owner, const char *name, uint32_t *ips, size_t cap)
{
    if (strcmp(owner, "ctr1") != 0 || strcmp(name, "web") != 0 || cap < 1)
        return -1;
    ips[0] = 0xac130005u;
    return 1;
}

static void test_server(void **state)
{
    uint16_t up2_port, lport, cport;
    /* upstreams share a port, like resolv.conf's: the first (127.0.0.2) has nothing bound
     * there and refuses, the second is this socket on 127.0.0.1 */
    int up2 = udp_socket(&up2_port, 4000);
    struct net_dns_config cfg = { .lookup = lookup,
                                  .upstreams = { 0x7f000002u, 0x7f000001u },
                                  .upstream_port = up2_port,
                                  .n_upstreams = 2 };
    struct merr err = MERR_INIT;
    struct net_dns *d = net_dns_new(&cfg, &err);
    assert_non_null(d);
    int lfd = udp_socket(&lport, 0);
    int tfd = tcp_listener(0);
    uint16_t tport = port_of(tfd);
    int up_tcp = tcp_listener(up2_port); /* TCP upstream on the UDP upstream's port */
    assert_int_equal(net_dns_add(d, "ctr1", lfd, tfd, NULL, 0, &err), 0);
    assert_true(net_dns_has(d, "ctr1"));
    assert_false(net_dns_has(d, "ctr2"));
    int client = udp_socket(&cport, 3000);

    /* a container name: answered here */
    uint8_t q[512], r[4096];
    size_t n = mkquery("WEB", ns_t_a, q, sizeof q);
    send_to(client, lport, q, n);
    ssize_t got = recv(client, r, sizeof r, 0);
    assert_true(got > 12);
    ns_msg m;
    assert_int_equal(ns_initparse(r, (int)got, &m), 0);
    assert_int_equal(ns_msg_getflag(m, ns_f_rcode), ns_r_noerror);
    assert_int_equal(ns_msg_count(m, ns_s_an), 1);
    ns_rr rr;
    assert_int_equal(ns_parserr(&m, ns_s_an, 0, &rr), 0);
    assert_memory_equal(ns_rr_rdata(rr), "\xac\x13\x00\x05", 4);

    /* another name: forwarded; refused by 127.0.0.2, so it goes on to 127.0.0.1 */
    n = mkquery("example.test", ns_t_a, q, sizeof q);
    send_to(client, lport, q, n);
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    got = recvfrom(up2, r, sizeof r, 0, (struct sockaddr *)&from, &fl);
    assert_int_equal(got, (ssize_t)n);
    assert_memory_equal(r, q, n); /* the query as the container sent it */
    /* the upstream's answer, relayed as is */
    uint8_t ans[64];
    memcpy(ans, q, 12);
    ans[2] |= 0x80;
    ans[3] = ns_r_nxdomain;
    assert_int_equal(sendto(up2, ans, 12, 0, (struct sockaddr *)&from, fl), 12);
    got = recv(client, r, sizeof r, 0);
    assert_int_equal(got, 12);
    assert_memory_equal(r, ans, 12);

    /* garbage: FORMERR, not silence */
    uint8_t junk[20] = { 0x12, 0x34, 0x01, 0x00, 0x00, 0x01 };
    junk[12] = 63;
    send_to(client, lport, junk, sizeof junk);
    got = recv(client, r, sizeof r, 0);
    assert_int_equal(got, 12);
    assert_int_equal(r[3] & 0xf, ns_r_formerr);

    /* over TCP: a container's name, then a forward over TCP to the upstream */
    int tc = tcp_connect(tport);
    n = mkquery("web", ns_t_a, q, sizeof q);
    tcp_send(tc, q, n);
    got = (ssize_t)tcp_recv(tc, r, sizeof r);
    assert_int_equal(ns_initparse(r, (int)got, &m), 0);
    assert_int_equal(ns_msg_count(m, ns_s_an), 1);
    n = mkquery("big.example.test", ns_t_txt, q, sizeof q);
    tcp_send(tc, q, n);
    int upc = accept(up_tcp, NULL, NULL);
    assert_true(upc >= 0);
    size_t qn = tcp_recv(upc, r, sizeof r);
    assert_int_equal(qn, n);
    assert_memory_equal(r, q, n);
    static uint8_t big[3000]; /* more than a datagram holds */
    memcpy(big, q, 12);
    big[2] |= 0x80;
    tcp_send(upc, big, sizeof big);
    close(upc);
    assert_int_equal(tcp_recv(tc, r, sizeof r), sizeof big);
    assert_memory_equal(r, big, sizeof big);

    /* removed: nothing answers any more, the open TCP connection ends */
    net_dns_remove_owner(d, "ctr1");
    assert_int_equal(recv(tc, r, 1, 0), 0);
    close(tc);
    close(up_tcp);
    assert_false(net_dns_has(d, "ctr1"));
    struct timeval tv = { .tv_sec = 0, .tv_usec = 300000 };
    setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    n = mkquery("web", ns_t_a, q, sizeof q);
    send_to(client, lport, q, n);
    assert_true(recv(client, r, sizeof r, 0) < 0);
    net_dns_free(d);
    close(client);
    close(up2);
}

/* --dns on a user network: the container's own upstreams, not the configured ones */
static void test_server_own_upstreams(void **state)
{
    uint16_t up_port, lport, cport;
    int up = udp_socket(&up_port, 3000);
    struct net_dns_config cfg = { .lookup = lookup, .upstreams = { 0x7f000002u },
                                  .upstream_port = up_port, .n_upstreams = 1 };
    struct merr err = MERR_INIT;
    struct net_dns *d = net_dns_new(&cfg, &err);
    assert_non_null(d);
    int lfd = udp_socket(&lport, 0);
    static const uint32_t own[] = { 0x7f000001u };
    assert_int_equal(net_dns_add(d, "ctr1", lfd, -1, own, 1, &err), 0);
    int client = udp_socket(&cport, 3000);
    uint8_t q[512], r[512];
    size_t n = mkquery("elsewhere.test", ns_t_a, q, sizeof q);
    send_to(client, lport, q, n);
    assert_int_equal(recv(up, r, sizeof r, 0), (ssize_t)n);
    assert_memory_equal(r, q, n);
    net_dns_free(d);
    close(client);
    close(up);
}

static void test_server_no_upstream(void **state)
{
    struct net_dns_config cfg = { .lookup = lookup };
    struct merr err = MERR_INIT;
    struct net_dns *d = net_dns_new(&cfg, &err);
    assert_non_null(d);
    uint16_t lport, cport;
    int lfd = udp_socket(&lport, 0);
    assert_int_equal(net_dns_add(d, "ctr1", lfd, -1, NULL, 0, &err), 0);
    int client = udp_socket(&cport, 3000);
    uint8_t q[512], r[512];
    size_t n = mkquery("elsewhere.test", ns_t_a, q, sizeof q);
    send_to(client, lport, q, n);
    ssize_t got = recv(client, r, sizeof r, 0);
    assert_int_equal(got, 12);
    assert_memory_equal(r, q, 2);
    assert_int_equal(r[3] & 0xf, ns_r_servfail);
    net_dns_free(d); /* with a listener still added: freed too */
    close(client);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_parse),        cmocka_unit_test(test_query_parse_rejects),
        cmocka_unit_test(test_reply_build),        cmocka_unit_test(test_error_build),
        cmocka_unit_test(test_resolv_nameservers), cmocka_unit_test(test_resolv_search),
        cmocka_unit_test(test_server),             cmocka_unit_test(test_server_own_upstreams),
        cmocka_unit_test(test_server_no_upstream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
