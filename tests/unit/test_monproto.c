/* machine-monitor's contract (engine/monitor/monproto.c): the state file and its parser, the
 * socket frames, the json-file records it writes (read back by the engine's own reader), and
 * the recovery decision a restarted engine takes from a container's state directory. */
#define MACHINE_CONTAINER_PRIV
#include "test_helpers.h"

#include <unistd.h>

#include "container/logfile.h"
#include "container/manager-priv.h"
#include "monitor/monproto.h"

static void test_state_roundtrip(void **state)
{
    (void)state;
    char buf[256];
    struct mon_state in = { .monitor_pid = 41, .pid = 42, .status = MON_RUNNING };
    assert_true(mon_state_format(&in, buf, sizeof buf) > 0);
    assert_string_equal(buf, "version=1\nmonitor_pid=41\npid=42\nstatus=running\n");
    strcpy(in.boot_id, "0b6a3c1e-2f4d-4e5f-9a8b-7c6d5e4f3a2b");
    assert_true(mon_state_format(&in, buf, sizeof buf) > 0);
    struct mon_state back;
    struct merr berr = MERR_INIT;
    assert_int_equal(mon_state_parse(buf, strlen(buf), &back, &berr), 0);
    assert_string_equal(back.boot_id, in.boot_id);
    struct mon_state out;
    struct merr err = MERR_INIT;
    assert_int_equal(mon_state_parse(buf, strlen(buf), &out, &err), 0);
    assert_int_equal(out.pid, 42);
    assert_int_equal(out.monitor_pid, 41);
    assert_int_equal(out.status, MON_RUNNING);

    in = (struct mon_state){ .monitor_pid = 41, .pid = 42, .status = MON_EXITED, .exit_code = 137,
                             .finished_ns = 1764847000123456789LL };
    assert_true(mon_state_format(&in, buf, sizeof buf) > 0);
    assert_int_equal(mon_state_parse(buf, strlen(buf), &out, &err), 0);
    assert_int_equal(out.status, MON_EXITED);
    assert_int_equal(out.exit_code, 137);
    assert_true(out.finished_ns == 1764847000123456789LL);
    assert_int_equal(mon_state_format(&in, buf, 10), -1); /* too small */
}

/* A file as the monitor wrote it, without a trailing newline and with a key from a later
 * version: read all the same. */
static void test_state_captured(void **state)
{
    (void)state;
    const char *text = "version=1\nmonitor_pid=2411\npid=2412\nstatus=exited\nexit_code=7\n"
                       "finished_ns=1764847171000000000\nfuture=1";
    struct mon_state st;
    struct merr err = MERR_INIT;
    assert_int_equal(mon_state_parse(text, strlen(text), &st, &err), 0);
    assert_int_equal(st.exit_code, 7);
    assert_int_equal(st.pid, 2412);
}

static void test_state_bad(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "version=2\npid=1\nstatus=running\n",             /* unknown version */
        "pid=1\nstatus=running\n",                        /* no version */
        "version=1\nstatus=running\n",                    /* no pid */
        "version=1\npid=1\n",                             /* no status */
        "version=1\npid=1\nstatus=sleeping\n",            /* bad status */
        "version=1\npid=1\nstatus=exited\n",              /* exited without its code */
        "version=1\npid=1\nstatus=exited\nexit_code=1\n", /* ... or FinishedAt */
        "version=1\npid=x\nstatus=running\n",
        "version=1\npid=1\nstatus=running\nbroken line\n",
        "version=1\npid=-4\nstatus=running\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct mon_state st;
        struct merr err = MERR_INIT;
        assert_int_equal(mon_state_parse(bad[i], strlen(bad[i]), &st, &err), -1);
        assert_int_equal(err.code, MERR_CORRUPT);
    }
}

static void test_frames(void **state)
{
    (void)state;
    unsigned char hdr[MON_FRAME_HDR];
    struct mon_frame f = { .type = MON_FRAME_OUTPUT, .stream = 2, .len = 70000,
                           .ns = 1764847171123456789LL };
    mon_frame_pack(&f, hdr);
    struct mon_frame g;
    struct merr err = MERR_INIT;
    assert_int_equal(mon_frame_unpack(hdr, &g, &err), 0);
    assert_int_equal(g.type, MON_FRAME_OUTPUT);
    assert_int_equal(g.stream, 2);
    assert_int_equal(g.len, 70000);
    assert_true(g.ns == f.ns);
    hdr[0] = 9;
    assert_int_equal(mon_frame_unpack(hdr, &g, &err), -1);
    assert_int_equal(err.code, MERR_PROTOCOL);
    f.len = MON_FRAME_MAX + 1;
    mon_frame_pack(&f, hdr);
    assert_int_equal(mon_frame_unpack(hdr, &g, &err), -1);
    mon_frame_pack(&(struct mon_frame){ .type = MON_FRAME_RESIZE, .len = 4 }, hdr);
    hdr[2] = 1; /* padding must be zero */
    assert_int_equal(mon_frame_unpack(hdr, &g, &err), -1);
}

/* What the monitor writes, the engine's reader (logfile.c) reads back exactly. */
static void check_record(int stream, const char *data, size_t len, const char *want_data,
                         size_t want_len)
{
    char buf[MON_LOGLINE_MAX(64)];
    int64_t ns = 1764847171123400000LL;
    long n = mon_logline_format(stream, data, len, ns, buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal(buf[n - 1], '\n');
    int got_stream = 0;
    char *got = NULL;
    size_t got_len = 0;
    int64_t got_ns = 0;
    struct merr err = MERR_INIT;
    if (logline_parse(buf, (size_t)n, &got_stream, &got, &got_len, &got_ns, &err) < 0)
        fail_msg("%s: %.*s", err.msg, (int)n, buf);
    assert_int_equal(got_stream, stream);
    assert_int_equal(got_len, want_len);
    assert_memory_equal(got, want_data, want_len);
    assert_true(got_ns == ns);
    free(got);
}

static void test_logline(void **state)
{
    (void)state;
    char buf[MON_LOGLINE_MAX(16)];
    long n = mon_logline_format(1, "hi\n", 3, 1764847171000000000LL, buf, sizeof buf);
    assert_true(n > 0);
    assert_memory_equal(buf, "{\"log\":\"hi\\n\",\"stream\":\"stdout\",\"time\":\"2025-12-04T11:19:31Z\"}\n",
                        (size_t)n);
    check_record(1, "tick 1\n", 7, "tick 1\n", 7);
    check_record(2, "a \"q\" \\ <&>\t\r\x01", 14, "a \"q\" \\ <&>\t\r\x01", 14);
    check_record(1, "h\xc3\xa9", 3, "h\xc3\xa9", 3);             /* UTF-8 kept */
    check_record(1, "x\xff" "y", 3, "x\xef\xbf\xbdy", 5);        /* invalid: U+FFFD */
    check_record(1, "\xe2\x82", 2, "\xef\xbf\xbd\xef\xbf\xbd", 6); /* cut sequence */
    assert_int_equal(mon_logline_format(1, "x", 1, 1, buf, 8), -1);
}

static void test_recovery_decide(void **state)
{
    (void)state;
    const char *boot = "0b6a3c1e-2f4d-4e5f-9a8b-7c6d5e4f3a2b";
    struct mon_state running = { .pid = 5, .status = MON_RUNNING };
    struct mon_state exited = { .pid = 5, .status = MON_EXITED, .exit_code = 3 };
    strcpy(running.boot_id, boot);
    assert_int_equal(mon_recovery_decide(NULL, false, boot), MON_RECOVER_LEGACY);
    assert_int_equal(mon_recovery_decide(&running, true, boot), MON_RECOVER_ADOPT);
    assert_int_equal(mon_recovery_decide(&running, false, boot), MON_RECOVER_LOST);
    assert_int_equal(mon_recovery_decide(&exited, false, boot), MON_RECOVER_EXITED);
    assert_int_equal(mon_recovery_decide(&exited, true, boot), MON_RECOVER_EXITED);
    /* another boot: the host went down with it (running before the reboot) */
    assert_int_equal(mon_recovery_decide(&running, false, "11111111-2222-3333-4444-555555555555"),
                     MON_RECOVER_REBOOTED);
    assert_int_equal(mon_recovery_decide(&running, false, ""), MON_RECOVER_LOST); /* unknown */
    running.boot_id[0] = '\0';
    assert_int_equal(mon_recovery_decide(&running, false, boot), MON_RECOVER_LOST);
    char id[40];
    const char *text = "0b6a3c1e-2f4d-4e5f-9a8b-7c6d5e4f3a2b\n";
    assert_int_equal(mon_boot_id_parse(text, strlen(text), id), 0);
    assert_string_equal(id, boot);
    assert_int_equal(mon_boot_id_parse("x\n", 2, id), -1);
    assert_int_equal(mon_boot_id_parse("", 0, id), -1);
}

/* State directories as a dead engine leaves them: the state file read, the socket asked. */
static enum mon_recovery decide_dir(const char *dir)
{
    struct mon_state st;
    struct merr err = MERR_INIT;
    bool have = monitor_read_state(dir, &st, &err) == 0;
    int fd = have && st.status == MON_RUNNING ? monitor_connect(dir, &err) : -1;
    if (fd >= 0)
        close(fd);
    return mon_recovery_decide(have ? &st : NULL, fd >= 0, "0b6a3c1e-2f4d-4e5f-9a8b-7c6d5e4f3a2b");
}

static void write_file(const char *dir, const char *name, const char *text)
{
    auto_free char *path = path_join(dir, name);
    struct merr err = MERR_INIT;
    assert_int_equal(fs_write_atomic(path, text, strlen(text), 0600, &err), 0);
}

static void test_recovery_dirs(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    assert_int_equal(decide_dir(dir), MON_RECOVER_LEGACY); /* started without a monitor */
    write_file(dir, MON_STATE_FILE, "version=1\nmonitor_pid=10\npid=11\nstatus=running\n");
    assert_int_equal(decide_dir(dir), MON_RECOVER_LOST); /* nobody listens */
    struct merr err = MERR_INIT;
    struct ctr_entry e = { .dir = dir };
    struct ctr_config cfg = { 0 };
    struct container c = { .config = &cfg };
    e.c = &c;
    e.log_path = path_join(dir, "x-json.log");
    cfg.log.driver = CTR_LOG_NONE;
    struct monitor_launch l;
    assert_int_equal(monitor_prepare(&e, "/bin/true", 3, 4, -1, &l, &err), 0);
    /* a start unlinks the previous run's state file: write the new run's */
    write_file(dir, MON_STATE_FILE, "version=1\nmonitor_pid=10\npid=11\nstatus=running\n");
    assert_int_equal(decide_dir(dir), MON_RECOVER_ADOPT); /* the socket answers */
    assert_string_equal(l.args[0], "/bin/true");
    assert_string_equal(l.args[1], "--dir");
    assert_int_equal(l.rt.fds[3], l.listen_fd);
    monitor_launch_release(&l);
    write_file(dir, MON_STATE_FILE,
               "version=1\nmonitor_pid=10\npid=11\nstatus=exited\nexit_code=7\nfinished_ns=5\n");
    assert_int_equal(decide_dir(dir), MON_RECOVER_EXITED);
    /* captured after a reboot: running, another boot's monitor */
    write_file(dir, MON_STATE_FILE, "version=1\nmonitor_pid=10\npid=11\n"
                                    "boot_id=11111111-2222-3333-4444-555555555555\nstatus=running\n");
    assert_int_equal(decide_dir(dir), MON_RECOVER_REBOOTED);
    write_file(dir, MON_STATE_FILE, "garbage");
    assert_int_equal(decide_dir(dir), MON_RECOVER_LEGACY);
    free(e.log_path);
    test_tmpdir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_roundtrip), cmocka_unit_test(test_state_captured),
        cmocka_unit_test(test_state_bad),       cmocka_unit_test(test_frames),
        cmocka_unit_test(test_logline),         cmocka_unit_test(test_recovery_decide),
        cmocka_unit_test(test_recovery_dirs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
