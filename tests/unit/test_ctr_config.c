/* Container create requests: validation with docker's wording, and the merge with the image. */
#include "test_helpers.h"

#include <signal.h>

#include "container/config.h"
#include "machine.h"

static json_t *load(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    assert_non_null(j);
    return j;
}

static struct ctr_config *create_from(const char *text, struct merr *err)
{
    json_t *j = load(text);
    struct ctr_config *c = ctr_config_from_create(j, err);
    json_decref(j);
    return c;
}

/* What the docker 28 CLI sends for `docker run --rm -e A=1 -w /tmp busybox echo hi`. */
static const char *cli_body =
    "{\"Hostname\":\"\",\"Domainname\":\"\",\"User\":\"\",\"AttachStdin\":false,"
    "\"AttachStdout\":true,\"AttachStderr\":true,\"Tty\":false,\"OpenStdin\":false,"
    "\"StdinOnce\":false,\"Env\":[\"A=1\"],\"Cmd\":[\"echo\",\"hi\"],\"Image\":\"busybox\","
    "\"Volumes\":{},\"WorkingDir\":\"/tmp\",\"Entrypoint\":null,\"OnBuild\":null,\"Labels\":{},"
    "\"HostConfig\":{\"Binds\":null,\"NetworkMode\":\"default\",\"PortBindings\":{},"
    "\"RestartPolicy\":{\"Name\":\"no\",\"MaximumRetryCount\":0},\"AutoRemove\":true,"
    "\"Memory\":0,\"NanoCpus\":0,\"PidsLimit\":null,\"CapAdd\":null,\"CapDrop\":null},"
    "\"NetworkingConfig\":{\"EndpointsConfig\":{}}}";

static const char *image_cfg =
    "{\"Env\":[\"PATH=/bin:/usr/bin\",\"A=0\",\"B=2\"],\"Entrypoint\":[\"/init\"],"
    "\"Cmd\":[\"serve\"],\"WorkingDir\":\"/srv\",\"User\":\"app\",\"Labels\":{\"l\":\"image\"},"
    "\"StopSignal\":\"SIGQUIT\"}";

static void test_cli_request(void **state)
{
    struct merr err = MERR_INIT;
    struct ctr_config *c = create_from(cli_body, &err);
    assert_non_null(c);
    assert_string_equal(c->image, "busybox");
    assert_true(c->auto_remove);
    assert_true(c->attach_stdout);
    assert_false(c->tty);
    assert_string_equal(c->network_mode, "default");
    assert_int_equal(c->restart, RESTART_NO);
    assert_null(c->entrypoint);
    assert_string_equal(c->cmd[1], "hi");

    struct ctr_process_plan p;
    json_t *img = load(image_cfg);
    assert_int_equal(ctr_plan(c, img, &p, &err), 0);
    /* No user entrypoint: the image's entrypoint stays, the user's Cmd replaces the image's. */
    assert_string_equal(p.argv[0], "/init");
    assert_string_equal(p.argv[1], "echo");
    assert_string_equal(p.argv[2], "hi");
    assert_null(p.argv[3]);
    assert_string_equal(p.cwd, "/tmp");
    assert_string_equal(p.user, "app");
    assert_string_equal(p.stop_signal, "SIGQUIT");
    bool a1 = false, b2 = false, path = false;
    for (size_t i = 0; p.env[i] != NULL; i++) {
        a1 |= strcmp(p.env[i], "A=1") == 0;
        b2 |= strcmp(p.env[i], "B=2") == 0;
        path |= strcmp(p.env[i], "PATH=/bin:/usr/bin") == 0;
        assert_string_not_equal(p.env[i], "A=0");
    }
    assert_true(a1 && b2 && path);
    assert_string_equal(json_string_value(json_object_get(p.labels, "l")), "image");
    ctr_process_plan_release(&p);
    json_decref(img);
    ctr_config_free(c);
}

static void test_entrypoint_rules(void **state)
{
    struct merr err = MERR_INIT;
    json_t *img = load(image_cfg);
    struct ctr_process_plan p;

    /* A user entrypoint drops the image's Cmd. */
    struct ctr_config *c = create_from("{\"Image\":\"x\",\"Entrypoint\":[\"/bin/sh\",\"-c\"]}", &err);
    assert_int_equal(ctr_plan(c, img, &p, &err), 0);
    assert_string_equal(p.argv[0], "/bin/sh");
    assert_null(p.argv[2]);
    ctr_process_plan_release(&p);
    ctr_config_free(c);

    /* --entrypoint "" with a command: only the command runs. */
    c = create_from("{\"Image\":\"x\",\"Entrypoint\":[\"\"],\"Cmd\":[\"ls\"]}", &err);
    assert_int_equal(ctr_plan(c, img, &p, &err), 0);
    assert_string_equal(p.argv[0], "ls");
    assert_null(p.argv[1]);
    ctr_process_plan_release(&p);
    ctr_config_free(c);

    /* Nothing to run at all. */
    c = create_from("{\"Image\":\"x\"}", &err);
    assert_int_equal(ctr_plan(c, NULL, &p, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    ctr_config_free(c);

    /* Defaults without an image config: PATH, cwd /, root, SIGTERM. */
    c = create_from("{\"Image\":\"x\",\"Cmd\":[\"true\"]}", &err);
    assert_int_equal(ctr_plan(c, NULL, &p, &err), 0);
    assert_string_equal(p.cwd, "/");
    assert_string_equal(p.user, "");
    assert_string_equal(p.stop_signal, "SIGTERM");
    assert_memory_equal(p.env[0], "PATH=", 5);
    ctr_process_plan_release(&p);
    ctr_config_free(c);
    json_decref(img);
}

static bool has(char *const *env, const char *e)
{
    for (size_t i = 0; env != NULL && env[i] != NULL; i++)
        if (strcmp(env[i], e) == 0)
            return true;
    return false;
}

/* dockerd: Env entries without '=' stay in Config.Env and unset the variable (the image's too)
 * for the process; docker-py's test_create_with_environment_variable_no_value. */
static void test_env_without_value(void **state)
{
    struct merr err = MERR_INIT;
    json_t *img = load(image_cfg);
    struct ctr_process_plan p;
    struct ctr_config *c =
        create_from("{\"Image\":\"x\",\"Cmd\":[\"env\"],\"Env\":[\"Foo\",\"B\",\"Blank=\"]}", &err);
    assert_non_null(c);
    assert_int_equal(ctr_plan(c, img, &p, &err), 0);
    assert_true(has(p.env, "Foo"));
    assert_true(has(p.env, "B"));
    assert_false(has(p.env, "B=2"));
    assert_true(has(p.env, "Blank="));
    assert_true(has(p.env, "A=0"));
    ctr_env_drop_unset(p.env);
    assert_false(has(p.env, "Foo"));
    assert_false(has(p.env, "B"));
    assert_true(has(p.env, "Blank=") && has(p.env, "A=0") && has(p.env, "PATH=/bin:/usr/bin"));
    ctr_process_plan_release(&p);
    ctr_config_free(c);

    /* a bare PATH leaves no PATH at all, as dockerd */
    c = create_from("{\"Image\":\"x\",\"Cmd\":[\"env\"],\"Env\":[\"PATH\"]}", &err);
    assert_int_equal(ctr_plan(c, img, &p, &err), 0);
    ctr_env_drop_unset(p.env);
    for (size_t i = 0; p.env[i] != NULL; i++)
        assert_memory_not_equal(p.env[i], "PATH", 4);
    ctr_process_plan_release(&p);
    ctr_config_free(c);
    json_decref(img);

    /* exec: the exec's Env over the container's, a bare K removing K */
    char **env = strv_dup((char *const[]){ "HOSTNAME=h", "A=1", "B=2", NULL });
    env = ctr_env_override(env, (char *const[]){ "A=3", "B", "C=4", "HOSTNAME", NULL });
    assert_true(has(env, "A=3") && has(env, "C=4"));
    assert_false(has(env, "A=1") || has(env, "B=2") || has(env, "B") || has(env, "HOSTNAME=h"));
    assert_int_equal(strv_len(env), 2);
    strv_free(env);
}

static void expect_invalid(const char *text)
{
    struct merr err = MERR_INIT;
    struct ctr_config *c = create_from(text, &err);
    if (c != NULL)
        fail_msg("accepted: %s", text);
    assert_int_equal(err.code, MERR_INVALID);
}

static void test_bad_requests(void **state)
{
    expect_invalid("{}");
    expect_invalid("{\"Image\":\"x\",\"Cmd\":[1]}");
    expect_invalid("{\"Image\":\"x\",\"WorkingDir\":\"relative\"}");
    expect_invalid("{\"Image\":\"x\",\"Env\":[\"=bad\"]}");
    expect_invalid("{\"Image\":\"x\",\"StopSignal\":\"SIGNOPE\"}");
    expect_invalid("{\"Image\":\"x\",\"HostConfig\":{\"Memory\":1024}}");
    expect_invalid("{\"Image\":\"x\",\"HostConfig\":{\"Memory\":-1}}");
    expect_invalid("{\"Image\":\"x\",\"HostConfig\":{\"Memory\":67108864,\"MemorySwap\":1048576}}");
    expect_invalid("{\"Image\":\"x\",\"HostConfig\":{\"NanoCpus\":1000000000,\"CpuPeriod\":100000}}");
    expect_invalid("{\"Image\":\"x\",\"HostConfig\":{\"NanoCpus\":999000000000}}");
    expect_invalid("{\"Image\":\"x\",\"HostConfig\":{\"RestartPolicy\":{\"Name\":\"sometimes\"}}}");
    expect_invalid("{\"Image\":\"x\",\"HostConfig\":{\"RestartPolicy\":{\"Name\":\"always\",\"MaximumRetryCount\":3}}}");
    expect_invalid("{\"Image\":\"x\",\"HostConfig\":{\"AutoRemove\":true,\"RestartPolicy\":{\"Name\":\"always\"}}}");
    expect_invalid("{\"Image\":\"x\",\"Labels\":{\"a\":1}}");
    expect_invalid("{\"Image\":\"x\",\"HostConfig\":{\"Runtime\":\"kata\"}}");
    expect_invalid("{\"Image\":\"x\",\"Runtime\":\"kata\"}"); /* docker-py's place */
    expect_invalid("{\"Image\":\"x\",\"HostConfig\":{\"CpuRealtimePeriod\":1000,\"CpuRealtimeRuntime\":2000}}");
    struct merr err = MERR_INIT;
    struct ctr_config *c = create_from("{\"Image\":\"x\",\"Runtime\":\"runc\",\"HostConfig\":{"
                                       "\"Runtime\":\"runc\",\"CPURealtimePeriod\":1000,"
                                       "\"CPURealtimeRuntime\":500}}", &err);
    assert_non_null(c);
    assert_int_equal(c->opts.cpu_rt_period, 1000);
    assert_int_equal(c->opts.cpu_rt_runtime, 500);
    assert_null(json_object_get(c->raw_config, "Runtime")); /* not a Config field of dockerd's */
    ctr_config_free(c);
}

static void test_restart_and_resources(void **state)
{
    struct merr err = MERR_INIT;
    struct ctr_config *c = create_from(
        "{\"Image\":\"x\",\"HostConfig\":{\"RestartPolicy\":{\"Name\":\"on-failure\",\"MaximumRetryCount\":3},"
        "\"Memory\":33554432,\"PidsLimit\":32,\"NanoCpus\":500000000,\"CpuShares\":512}}",
        &err);
    assert_non_null(c);
    assert_int_equal(c->restart, RESTART_ON_FAILURE);
    assert_int_equal(c->restart_max_retries, 3);
    assert_int_equal(c->memory, 33554432);
    assert_int_equal(c->pids_limit, 32);
    assert_int_equal(c->nano_cpus, 500000000);
    assert_int_equal(c->cpu_shares, 512);
    /* Round trip through the on-disk record. */
    json_t *j = ctr_config_to_json(c);
    struct ctr_config *back = ctr_config_from_json(j, &err);
    json_decref(j);
    assert_non_null(back);
    assert_int_equal(back->restart_max_retries, 3);
    assert_int_equal(back->memory, 33554432);
    ctr_config_free(back);
    ctr_config_free(c);
}

static void test_signals_and_names(void **state)
{
    assert_int_equal(ctr_signal_parse("SIGTERM"), SIGTERM);
    assert_int_equal(ctr_signal_parse("kill"), SIGKILL);
    assert_int_equal(ctr_signal_parse("9"), 9);
    assert_int_equal(ctr_signal_parse("SIGWHAT"), -1);
    assert_int_equal(ctr_signal_parse("99"), -1);
    assert_int_equal(ctr_signal_parse(""), -1);
    struct merr err = MERR_INIT;
    assert_int_equal(ctr_name_validate("web-1", &err), 0);
    assert_int_equal(ctr_name_validate("/web_1.x", &err), 0);
    assert_int_equal(ctr_name_validate("a", &err), -1);
    assert_int_equal(ctr_name_validate("-x", &err), -1);
    assert_int_equal(ctr_name_validate("a/b", &err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_request),        cmocka_unit_test(test_entrypoint_rules),
        cmocka_unit_test(test_bad_requests),       cmocka_unit_test(test_restart_and_resources),
        cmocka_unit_test(test_signals_and_names),  cmocka_unit_test(test_env_without_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
