/* The docker CLI's credentials: config.json's auths, credsStore and credHelpers, a helper's
 * answer, and the lookup through a recorded helper run. */
#include "test_helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "command.h"
#include "dockercreds.h"
#include "fsutil.h"

/* base64 of "alice:s3cret" */
#define ALICE "YWxpY2U6czNjcmV0"

static int select_in(const char *json, const char *server, struct dockercreds *c, struct merr *err)
{
    return dockercreds_select(json, strlen(json), server, c, err);
}

static void test_server_names(void **state)
{
    const char *hub[] = { "docker.io", "registry-1.docker.io", "index.docker.io" };
    for (size_t i = 0; i < 3; i++) {
        char *s = dockercreds_server(hub[i]);
        assert_string_equal(s, "https://index.docker.io/v1/");
        free(s);
    }
    char *s = dockercreds_server("127.0.0.1:5000");
    assert_string_equal(s, "127.0.0.1:5000");
    free(s);
}

static void test_auths(void **state)
{
    struct dockercreds c;
    struct merr err = MERR_INIT;
    assert_int_equal(select_in("{\"auths\":{\"reg:5000\":{\"auth\":\"" ALICE "\"}}}", "reg:5000", &c, &err), 0);
    assert_int_equal(c.kind, DOCKERCREDS_BASIC);
    assert_string_equal(c.basic, ALICE);
    assert_string_equal(c.username, "alice");
    dockercreds_clear(&c);
    /* a key with a scheme and a path names the same host, as docker's own lookup */
    assert_int_equal(select_in("{\"auths\":{\"other\":{},\"https://reg:5000/v2/\":{\"auth\":\"" ALICE "\"}}}",
                               "reg:5000", &c, &err), 0);
    assert_int_equal(c.kind, DOCKERCREDS_BASIC);
    dockercreds_clear(&c);
    assert_int_equal(select_in("{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"" ALICE "\"}}}",
                               "https://index.docker.io/v1/", &c, &err), 0);
    assert_int_equal(c.kind, DOCKERCREDS_BASIC);
    dockercreds_clear(&c);
}

static void test_missing(void **state)
{
    struct dockercreds c;
    struct merr err = MERR_INIT;
    const char *none[] = { "{}", "{\"auths\":{}}", "{\"auths\":{\"reg:5001\":{\"auth\":\"" ALICE "\"}}}",
                           "{\"auths\":{\"reg:5000\":{}}}", "{\"auths\":{\"reg:5000\":{\"auth\":\"\"}}}",
                           "{\"auths\":{\"reg:50000\":{\"auth\":\"" ALICE "\"}}}" };
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        assert_int_equal(select_in(none[i], "reg:5000", &c, &err), 0);
        assert_int_equal(c.kind, DOCKERCREDS_NONE);
        assert_null(c.basic);
        dockercreds_clear(&c);
    }
}

static void test_malformed(void **state)
{
    struct dockercreds c;
    const char *bad[] = { "", "{", "[]", "{\"auths\":[]}", "{\"auths\":{\"reg:5000\":\"x\"}}",
                          "{\"auths\":{\"reg:5000\":{\"auth\":7}}}",
                          "{\"auths\":{\"reg:5000\":{\"auth\":\"bm9jb2xvbg==\"}}}", /* "nocolon" */
                          "{\"auths\":{\"reg:5000\":{\"auth\":\"***\"}}}",
                          "{\"credsStore\":5}", "{\"credHelpers\":{\"reg:5000\":true}}",
                          "{\"credsStore\":\"../evil\"}" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct merr err = MERR_INIT;
        assert_int_equal(select_in(bad[i], "reg:5000", &c, &err), -1);
        assert_int_equal(err.code, MERR_CORRUPT);
        assert_int_equal(c.kind, DOCKERCREDS_NONE);
    }
    /* the password never shows in an error */
    struct merr err = MERR_INIT;
    assert_int_equal(select_in("{\"auths\":{\"reg:5000\":{\"auth\":\"YWxpY2VzM2NyZXQ=\"}}}", "reg:5000", &c, &err), -1);
    assert_null(strstr(err.msg, "s3cret"));
    struct merr tok = MERR_INIT;
    assert_int_equal(select_in("{\"auths\":{\"reg:5000\":{\"identitytoken\":\"t\"}}}", "reg:5000", &c, &tok), -1);
    assert_int_equal(tok.code, MERR_UNSUPPORTED);
}

static void test_helper_selection(void **state)
{
    struct dockercreds c;
    struct merr err = MERR_INIT;
    const char *cfg = "{\"auths\":{\"reg:5000\":{\"auth\":\"" ALICE "\"},\"other:1\":{}},"
                      "\"credsStore\":\"desktop\",\"credHelpers\":{\"reg:5000\":\"pass\"}}";
    assert_int_equal(select_in(cfg, "reg:5000", &c, &err), 0); /* credHelpers first */
    assert_int_equal(c.kind, DOCKERCREDS_HELPER);
    assert_string_equal(c.helper, "pass");
    dockercreds_clear(&c);
    assert_int_equal(select_in(cfg, "other:1", &c, &err), 0); /* then credsStore, over auths */
    assert_int_equal(c.kind, DOCKERCREDS_HELPER);
    assert_string_equal(c.helper, "desktop");
    dockercreds_clear(&c);
    assert_int_equal(select_in("{\"credsStore\":\"\",\"auths\":{\"reg:5000\":{\"auth\":\"" ALICE "\"}}}",
                               "reg:5000", &c, &err), 0); /* an empty store is none */
    assert_int_equal(c.kind, DOCKERCREDS_BASIC);
    dockercreds_clear(&c);
}

static void test_helper_answer(void **state)
{
    struct dockercreds c;
    struct merr err = MERR_INIT;
    const char *ok = "{\"ServerURL\":\"reg:5000\",\"Username\":\"alice\",\"Secret\":\"s3cret\"}\n";
    assert_int_equal(dockercreds_helper_answer(ok, strlen(ok), &c, &err), 0);
    assert_int_equal(c.kind, DOCKERCREDS_BASIC);
    assert_string_equal(c.basic, ALICE);
    assert_string_equal(c.username, "alice");
    dockercreds_clear(&c);
    const char *tok = "{\"Username\":\"<token>\",\"Secret\":\"t\"}";
    assert_int_equal(dockercreds_helper_answer(tok, strlen(tok), &c, &err), -1);
    assert_int_equal(err.code, MERR_UNSUPPORTED);
    struct merr e2 = MERR_INIT;
    assert_int_equal(dockercreds_helper_answer("nope", 4, &c, &e2), -1);
    assert_int_equal(e2.code, MERR_PROTOCOL);
}

static void write_config(const char *dir, const char *text)
{
    char *path = path_join(dir, "config.json");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    free(path);
}

static void test_lookup(void **state)
{
    char dir[] = "/tmp/test-dockercreds-XXXXXX";
    assert_non_null(mkdtemp(dir));
    setenv("DOCKER_CONFIG", dir, 1);
    struct dockercreds c;
    char *source = NULL;
    struct merr err = MERR_INIT;
    /* no config.json: no credentials, no error */
    assert_int_equal(dockercreds_lookup(NULL, "reg:5000", &c, &source, &err), 0);
    assert_int_equal(c.kind, DOCKERCREDS_NONE);
    assert_null(source);

    write_config(dir, "{\"auths\":{\"reg:5000\":{\"auth\":\"" ALICE "\"}}}");
    assert_int_equal(dockercreds_lookup(NULL, "reg:5000", &c, &source, &err), 0);
    assert_int_equal(c.kind, DOCKERCREDS_BASIC);
    assert_non_null(strstr(source, "/config.json"));
    free(source);
    dockercreds_clear(&c);

    /* a helper gets "get" and the server on stdin; Docker Hub is asked for by docker's key */
    write_config(dir, "{\"credsStore\":\"rec\"}");
    struct cmd_recorder rec = { .status = 0,
                                .out = "{\"ServerURL\":\"x\",\"Username\":\"bob\",\"Secret\":\"pw\"}" };
    struct cmd_runner runner = cmd_recorder_runner(&rec);
    assert_int_equal(dockercreds_lookup(&runner, "registry-1.docker.io", &c, &source, &err), 0);
    assert_int_equal(c.kind, DOCKERCREDS_BASIC);
    assert_string_equal(c.username, "bob");
    assert_string_equal(source, "docker-credential-rec");
    assert_non_null(strstr(rec.log.data, "docker-credential-rec get"));
    free(source);
    dockercreds_clear(&c);
    abuf_release(&rec.log);

    /* the helper's "not found" is no credentials */
    struct cmd_recorder nf = { .status = 1, .out = "credentials not found in native keychain\n" };
    runner = cmd_recorder_runner(&nf);
    assert_int_equal(dockercreds_lookup(&runner, "reg:5000", &c, &source, &err), 0);
    assert_int_equal(c.kind, DOCKERCREDS_NONE);
    assert_null(source);
    abuf_release(&nf.log);

    /* a malformed file names itself */
    write_config(dir, "{\"auths\":");
    assert_int_equal(dockercreds_lookup(NULL, "reg:5000", &c, &source, &err), -1);
    assert_int_equal(err.code, MERR_CORRUPT);
    assert_non_null(strstr(err.msg, dir));

    char *path = path_join(dir, "config.json");
    unlink(path);
    free(path);
    rmdir(dir);
    unsetenv("DOCKER_CONFIG");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_names), cmocka_unit_test(test_auths),
        cmocka_unit_test(test_missing),      cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_helper_selection), cmocka_unit_test(test_helper_answer),
        cmocka_unit_test(test_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
