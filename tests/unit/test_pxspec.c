/* machine-proxy's contract (engine/proxy/pxspec.c): its LISTENER arguments as the engine
 * formats them and the proxy parses them, and the start time a restarted engine checks a
 * recorded proxy pid by. */
#include "test_helpers.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "proxy/pxspec.h"

static void test_listener_roundtrip(void **state)
{
    (void)state;
    struct px_listener l;
    struct merr err = MERR_INIT;
    assert_int_equal(px_listener_parse("4:tcp:172.18.0.2:80", &l, &err), 0);
    assert_int_equal(l.fd, 4);
    assert_int_equal(l.proto, PX_TCP);
    const struct sockaddr_in *sa = (const struct sockaddr_in *)&l.target;
    assert_int_equal(sa->sin_family, AF_INET);
    assert_int_equal(ntohs(sa->sin_port), 80);
    assert_int_equal(ntohl(sa->sin_addr.s_addr), 0xac120002);
    assert_int_equal(l.target_len, sizeof *sa);
    char buf[PX_SPEC_MAX];
    assert_true(px_listener_format(&l, buf, sizeof buf) > 0);
    assert_string_equal(buf, "4:tcp:172.18.0.2:80");

    assert_int_equal(px_listener_parse("17:udp:[fd00:1::2]:5353", &l, &err), 0);
    assert_int_equal(l.proto, PX_UDP);
    const struct sockaddr_in6 *sa6 = (const struct sockaddr_in6 *)&l.target;
    assert_int_equal(sa6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(sa6->sin6_port), 5353);
    assert_int_equal(px_listener_format(&l, buf, sizeof buf), (int)strlen("17:udp:[fd00:1::2]:5353"));
    assert_string_equal(buf, "17:udp:[fd00:1::2]:5353");
    assert_int_equal(px_listener_format(&l, buf, 8), -1); /* too small */

    /* the longest the engine can write fits PX_SPEC_MAX */
    assert_int_equal(px_listener_parse("1048576:udp:[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
                                       &l, &err),
                     0);
    assert_true(px_listener_format(&l, buf, sizeof buf) > 0);
}

static void test_listener_bad(void **state)
{
    (void)state;
    const char *bad[] = {
        "",           "4",           "4:tcp",         "4:tcp:172.18.0.2",  "2:tcp:172.18.0.2:80",
        "x:tcp:1.2.3.4:80", "4:sctp:1.2.3.4:80", "4:tcp:1.2.3.4:0", "4:tcp:1.2.3.4:65536",
        "4:tcp:host:80", "4:tcp:fd00::2:80", "4:tcp:[1.2.3.4]:80", "04:tcp:1.2.3.4:80",
        "4:tcp:1.2.3.4:80x", "-4:tcp:1.2.3.4:80", "99999999999:tcp:1.2.3.4:80",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct px_listener l;
        struct merr err = MERR_INIT;
        assert_int_equal(px_listener_parse(bad[i], &l, &err), -1);
        assert_int_equal(err.code, MERR_INVALID);
    }
}

static void test_args(void **state)
{
    (void)state;
    struct px_args a;
    struct merr err = MERR_INIT;
    char *const ok[] = { "machine-proxy", "--hold", "3", "4:tcp:172.18.0.2:80",
                         "5:udp:172.18.0.2:53", NULL };
    assert_int_equal(px_args_parse(5, ok, &a, &err), 0);
    assert_int_equal(a.hold, 3);
    assert_int_equal(a.n, 2);
    assert_int_equal(a.listeners[1].fd, 5);
    assert_int_equal(a.listeners[1].proto, PX_UDP);
    px_args_release(&a);
    char *const nohold[] = { "machine-proxy", "4:tcp:172.18.0.2:80", NULL };
    assert_int_equal(px_args_parse(2, nohold, &a, &err), 0);
    assert_int_equal(a.hold, -1);
    px_args_release(&a);

    char *const none[] = { "machine-proxy", "--hold", "3", NULL };
    char *const dup[] = { "machine-proxy", "4:tcp:1.2.3.4:80", "4:udp:1.2.3.4:80", NULL };
    char *const hold_dup[] = { "machine-proxy", "--hold", "4", "4:tcp:1.2.3.4:80", NULL };
    char *const hold_bad[] = { "machine-proxy", "4:tcp:1.2.3.4:80", "--hold", NULL };
    char *const hold_low[] = { "machine-proxy", "--hold", "1", "4:tcp:1.2.3.4:80", NULL };
    char *const *bad[] = { none, dup, hold_dup, hold_bad, hold_low };
    int argc[] = { 3, 3, 4, 3, 4 };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err = (struct merr)MERR_INIT;
        assert_int_equal(px_args_parse(argc[i], bad[i], &a, &err), -1);
        assert_int_equal(err.code, MERR_INVALID);
        assert_null(a.listeners);
    }
    assert_int_equal(px_args_parse(1, none, &a, &err), -1);
}

static void test_stat_starttime(void **state)
{
    (void)state;
    /* captured from /proc/PID/stat of a machine-proxy */
    const char *proxy = "24611 (machine-proxy) S 1 24611 24611 0 -1 4194560 112 0 0 0 0 0 0 0 "
                        "20 0 1 0 1893377 3051520 203 18446744073709551615 4198400 4903645 "
                        "140724302879088 0 0 0 0 4096 0 1 0 0 17 1 0 0 0 0 0\n";
    assert_true(px_stat_starttime(proxy, strlen(proxy)) == 1893377ULL);
    /* a comm with spaces and parentheses: the last ')' ends it */
    const char *odd = "7 (a) b (c) S 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 424242 0 0";
    assert_true(px_stat_starttime(odd, strlen(odd)) == 424242ULL);
    const char *shortline = "7 (x) S 1 7 7 0 -1 0 0 0";
    assert_true(px_stat_starttime(shortline, strlen(shortline)) == 0);
    assert_true(px_stat_starttime("", 0) == 0);
    assert_true(px_stat_starttime("garbage", 7) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listener_roundtrip),
        cmocka_unit_test(test_listener_bad),
        cmocka_unit_test(test_args),
        cmocka_unit_test(test_stat_starttime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
