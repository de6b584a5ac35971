/* Secret driver fields: kept out of config.json and out of the machine's directory, in a 0600
 * <store>/credentials/NAME.json, read back by the store, removed with the machine; driver_secret's environment fallback and its error naming what to set. Also the shared
 * rate limiter's bucket (pure) and its state shared between two limiters of one scope. */
#include "test_helpers.h"

#include <sys/stat.h>

#include <dirent.h>

#include "driver.h"
#include "jsonutil.h"
#include "machine.h"
#include "ratelimit.h"
#include "secrets.h"
#include "store.h"

static const struct driver_flag test_flags[] = {
    { .name = "cloud-token", .env = "TEST_CLOUD_TOKEN", .key = "AccessToken",
      .type = DFLAG_STRING, .secret = true, .help = "token" },
    { .name = "cloud-region", .key = "Region", .type = DFLAG_STRING, .def = "nyc3", .help = "r" },
    { 0 },
};
static const struct driver test_driver = { .name = "cloudtest", .flags = test_flags };

static char *const *lookup(void *opaque, const char *flag)
{
    (void)opaque;
    static char *token[] = { "s3cr3t-t0ken", NULL };
    return strcmp(flag, "cloud-token") == 0 ? token : NULL;
}

static void test_secret_flag_kept_out_of_config(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    auto_machine struct machine *m = machine_new("c1", "cloudtest");
    assert_int_equal(driver_apply_flags(&test_driver, m, lookup, NULL, &err), 0);
    assert_string_equal(machine_secret(m, "AccessToken"), "s3cr3t-t0ken");
    assert_null(machine_driver_str(m, "AccessToken"));
    assert_string_equal(machine_driver_str(m, "Region"), "nyc3");
    auto_json json_t *j = machine_to_json(m);
    auto_free char *text = json_dumps(j, 0);
    assert_null(strstr(text, "s3cr3t"));
    assert_non_null(strstr(text, "\"Secrets\": [\"AccessToken\"]"));
}

static void test_store_round_trip(void **state)
{
    (void)state;
    char *root = test_tmpdir();
    struct store s;
    struct merr err = MERR_INIT;
    assert_int_equal(store_open(root, &s, &err), 0);
    auto_machine struct machine *m = machine_new("c1", "cloudtest");
    assert_int_equal(driver_apply_flags(&test_driver, m, lookup, NULL, &err), 0);
    assert_int_equal(store_create_machine(&s, m, &err), 0);

    auto_free char *cfg = store_machine_file(&s, "c1", "config.json");
    auto_free char *cred = store_credentials_file(&s, "c1");
    auto_free char *text = NULL;
    size_t len = 0;
    assert_int_equal(fs_read_file(cfg, 1 << 20, &text, &len, &err), 0);
    assert_null(strstr(text, "s3cr3t"));
    struct stat st;
    assert_int_equal(stat(cred, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    auto_machine struct machine *back = store_load_machine(&s, "c1", &err);
    assert_non_null(back);
    assert_string_equal(machine_secret(back, "AccessToken"), "s3cr3t-t0ken");
    assert_string_equal(driver_secret(&test_driver, back, "AccessToken", &err), "s3cr3t-t0ken");

    /* Saving keeps them; a machine without secrets has no credentials file. */
    assert_int_equal(store_save_machine(&s, back, &err), 0);
    assert_int_equal(stat(cred, &st), 0);
    machine_secret_set(back, "AccessToken", NULL);
    assert_int_equal(store_save_machine(&s, back, &err), 0);
    assert_int_not_equal(stat(cred, &st), 0);
    store_release(&s);
    test_tmpdir_remove(root);
}

static void test_missing_credentials_name_what_to_set(void **state)
{
    (void)state;
    char *root = test_tmpdir();
    struct store s;
    struct merr err = MERR_INIT;
    assert_int_equal(store_open(root, &s, &err), 0);
    auto_machine struct machine *m = machine_new("c2", "cloudtest");
    assert_int_equal(driver_apply_flags(&test_driver, m, lookup, NULL, &err), 0);
    assert_int_equal(store_create_machine(&s, m, &err), 0);
    auto_free char *cred = store_credentials_file(&s, "c2");
    assert_int_equal(unlink(cred), 0);

    auto_machine struct machine *back = store_load_machine(&s, "c2", &err);
    assert_non_null(back);
    assert_null(machine_secret(back, "AccessToken"));
    unsetenv("TEST_CLOUD_TOKEN");
    assert_null(driver_secret(&test_driver, back, "AccessToken", &err));
    assert_int_equal(err.code, MERR_INVALID);
    assert_non_null(strstr(err.msg, "--cloud-token"));
    assert_non_null(strstr(err.msg, "TEST_CLOUD_TOKEN"));
    /* The user's own environment is read each time. */
    setenv("TEST_CLOUD_TOKEN", "from-env", 1);
    merr_clear(&err);
    assert_string_equal(driver_secret(&test_driver, back, "AccessToken", &err), "from-env");
    unsetenv("TEST_CLOUD_TOKEN");
    /* Saved again, the name stays listed though the value is gone. */
    assert_int_equal(store_save_machine(&s, back, &err), 0);
    auto_free char *cfg = store_machine_file(&s, "c2", "config.json");
    auto_free char *text = NULL;
    size_t len = 0;
    assert_int_equal(fs_read_file(cfg, 1 << 20, &text, &len, &err), 0);
    assert_non_null(strstr(text, "AccessToken"));
    store_release(&s);
    test_tmpdir_remove(root);
}

static void test_bucket_math(void **state)
{
    (void)state;
    double tokens = 2;
    assert_true(ratelimit_bucket_take(&tokens, 0, 1.0, 2) == 0);
    assert_true(ratelimit_bucket_take(&tokens, 0, 1.0, 2) == 0);
    double wait = ratelimit_bucket_take(&tokens, 0, 1.0, 2);
    assert_true(wait > 0.99 && wait <= 1.0);
    /* Half a second later, half a token has come back. */
    wait = ratelimit_bucket_take(&tokens, 0.5, 1.0, 2);
    assert_true(wait > 0.49 && wait < 0.51);
    /* A long pause refills to the burst, never past it. */
    assert_true(ratelimit_bucket_take(&tokens, 3600, 1.0, 2) == 0);
    assert_true(tokens > 0.99 && tokens < 1.01);
}

static void test_limiters_share_one_bucket(void **state)
{
    (void)state;
    char *root = test_tmpdir();
    struct store s;
    struct merr err = MERR_INIT;
    assert_int_equal(store_open(root, &s, &err), 0);
    /* 0.01 per second: after the burst of 2 no token comes back within the 50 ms wait. */
    auto_ratelimit struct ratelimit *a = ratelimit_open(&s, "cloud https://api tok", 0.01, 2, 50, &err);
    auto_ratelimit struct ratelimit *b = ratelimit_open(&s, "cloud https://api tok", 0.01, 2, 50, &err);
    auto_ratelimit struct ratelimit *other = ratelimit_open(&s, "cloud https://api other", 0.01, 2, 50, &err);
    assert_non_null(a);
    assert_int_equal(ratelimit_take(a, &err), 0);
    assert_int_equal(ratelimit_before_attempt(b, &err), 0);
    assert_int_equal(ratelimit_take(a, &err), -1);
    assert_int_equal(err.code, MERR_TIMEOUT);
    merr_clear(&err);
    assert_int_equal(ratelimit_take(other, &err), 0);
    /* The token itself never appears in a file name. */
    auto_free char *dir = path_join(root, "locks");
    auto_closedir DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    int files = 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        files++;
        assert_null(strstr(de->d_name, "tok"));
        assert_int_equal(strncmp(de->d_name, "rate-", 5), 0);
    }
    assert_int_equal(files, 2);
    store_release(&s);
    test_tmpdir_remove(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret_flag_kept_out_of_config),
        cmocka_unit_test(test_store_round_trip),
        cmocka_unit_test(test_missing_credentials_name_what_to_set),
        cmocka_unit_test(test_bucket_math),
        cmocka_unit_test(test_limiters_share_one_bucket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
