/* util/command: real /bin/sh children for exit codes, signals, stdin, capping and the timeout
 * that kills the process group; the recorder seam. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "command.h"
#include "error.h"

static int sh(const char *script, const struct cmd_spec *base, struct cmd_result *res,
              struct merr *err)
{
    char *const argv[] = { "sh", "-c", (char *)script, NULL };
    struct cmd_spec spec = base != NULL ? *base : (struct cmd_spec){ 0 };
    spec.path = "/bin/sh";
    spec.argv = argv;
    if (spec.out_max == 0)
        spec.out_max = 4096;
    if (spec.err_max == 0)
        spec.err_max = 4096;
    return cmd_run(NULL, &spec, res, err);
}

static void test_exit_status(void **state)
{
    struct cmd_result res;
    struct merr err = MERR_INIT;
    assert_int_equal(sh("echo out; echo err >&2", NULL, &res, &err), 0);
    assert_string_equal(res.out.data, "out\n");
    assert_string_equal(res.err.data, "err\n");
    assert_int_equal(res.status, 0);
    cmd_result_release(&res);

    assert_int_equal(sh("echo 'no such table' >&2; echo more >&2; exit 3", NULL, &res, &err), -1);
    assert_int_equal(err.code, MERR_REMOTE);
    assert_int_equal(res.status, 3);
    assert_false(res.signaled);
    assert_non_null(strstr(err.msg, "no such table"));
    assert_null(strstr(err.msg, "more"));
    cmd_result_release(&res);

    assert_int_equal(sh("kill -TERM $$", NULL, &res, &err), -1);
    assert_int_equal(err.code, MERR_REMOTE);
    assert_true(res.signaled);
    assert_int_equal(res.status, 128 + SIGTERM);
    cmd_result_release(&res);
}

static void test_not_found(void **state)
{
    char *const argv[] = { "machine-no-such-program-here", NULL };
    struct cmd_spec spec = { .argv = argv };
    struct cmd_result res;
    struct merr err = MERR_INIT;
    assert_int_equal(cmd_run(NULL, &spec, &res, &err), -1);
    assert_int_equal(err.code, MERR_NOT_FOUND);
    cmd_result_release(&res);
}

static void test_stdin_env(void **state)
{
    char *const envp[] = { "GREETING=hello", NULL };
    struct cmd_spec spec = { .in = "line one\nline two\n", .in_len = 18, .envp = envp };
    struct cmd_result res;
    struct merr err = MERR_INIT;
    assert_int_equal(sh("wc -l; echo \"$GREETING\"", &spec, &res, &err), 0);
    assert_string_equal(res.out.data, "2\nhello\n");
    cmd_result_release(&res);

    /* a program that never reads a large stdin still ends */
    static char big[1 << 20];
    memset(big, 'x', sizeof big);
    spec = (struct cmd_spec){ .in = big, .in_len = sizeof big };
    assert_int_equal(sh("exit 0", &spec, &res, &err), 0);
    cmd_result_release(&res);
}

static void test_capped(void **state)
{
    struct cmd_spec spec = { .out_max = 10 };
    struct cmd_result res;
    struct merr err = MERR_INIT;
    assert_int_equal(sh("i=0; while [ $i -lt 2000 ]; do echo 0123456789; i=$((i+1)); done", &spec,
                        &res, &err),
                     0);
    assert_int_equal(res.out.len, 10);
    assert_string_equal(res.out.data, "0123456789");
    assert_true(res.truncated);
    cmd_result_release(&res);
}

/* The timeout kills the group: a grandchild holding stdout open does not keep the run alive. */
static void test_timeout_kills_group(void **state)
{
    char pidfile[] = "/tmp/machine-test-command-XXXXXX";
    int fd = mkstemp(pidfile);
    assert_true(fd >= 0);
    close(fd);
    char script[256];
    snprintf(script, sizeof script, "sleep 300 & echo $! > %s; wait", pidfile);
    struct cmd_spec spec = { .timeout_ms = 200 };
    struct cmd_result res;
    struct merr err = MERR_INIT;
    assert_int_equal(sh(script, &spec, &res, &err), -1);
    assert_int_equal(err.code, MERR_TIMEOUT);
    assert_true(res.timed_out);
    cmd_result_release(&res);
    FILE *f = fopen(pidfile, "r");
    assert_non_null(f);
    int grandchild = 0;
    assert_int_equal(fscanf(f, "%d", &grandchild), 1);
    fclose(f);
    unlink(pidfile);
    /* killed with the group: gone, or a zombie until init reaps it */
    for (int i = 0; i < 200 && kill(grandchild, 0) == 0; i++) {
        char path[64], st[512] = "";
        snprintf(path, sizeof path, "/proc/%d/stat", grandchild);
        FILE *s = fopen(path, "r");
        if (s == NULL)
            break;
        size_t n = fread(st, 1, sizeof st - 1, s);
        fclose(s);
        st[n] = '\0';
        const char *close_paren = strrchr(st, ')');
        if (close_paren != NULL && close_paren[2] == 'Z')
            break;
        usleep(10000);
        assert_true(i < 199);
    }
}

static void test_stop_on(void **state)
{
    struct cmd_spec spec = { .stop_on = "Linux version", .timeout_ms = 60000 };
    struct cmd_result res;
    struct merr err = MERR_INIT;
    assert_int_equal(sh("echo booting; echo 'Linux version 6.1'; sleep 300", &spec, &res, &err), 0);
    assert_true(res.stopped);
    assert_false(res.timed_out);
    cmd_result_release(&res);
}

static void test_recorder(void **state)
{
    struct cmd_recorder rec = { .status = 0, .out = "listed\n" };
    struct cmd_runner runner = cmd_recorder_runner(&rec);
    char *const a1[] = { "iptables", "-w", "-S", NULL };
    char *const a2[] = { "nft", "-f", "-", NULL };
    struct cmd_spec s1 = { .path = "/usr/sbin/iptables", .argv = a1, .out_max = 64 };
    struct cmd_spec s2 = { .argv = a2 };
    struct cmd_result res;
    struct merr err = MERR_INIT;
    assert_int_equal(cmd_run(&runner, &s1, &res, &err), 0);
    assert_string_equal(res.out.data, "listed\n");
    cmd_result_release(&res);
    rec.status = 1;
    assert_int_equal(cmd_run(&runner, &s2, &res, &err), -1);
    assert_int_equal(err.code, MERR_REMOTE);
    cmd_result_release(&res);
    assert_string_equal(rec.log.data, "iptables -w -S\nnft -f -\n");
    abuf_release(&rec.log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_status),  cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_stdin_env),    cmocka_unit_test(test_capped),
        cmocka_unit_test(test_timeout_kills_group), cmocka_unit_test(test_stop_on),
        cmocka_unit_test(test_recorder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
