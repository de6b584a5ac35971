/* The ~/.aws/credentials and ~/.aws/config reader: sections as the AWS CLI names them
 * (docs.aws.amazon.com/cli/latest/userguide/cli-configure-files.html), comments, nested values,
 * credentials winning over config, files named by the environment, a missing profile. */
#include "test_helpers.h"

#include <unistd.h>

#include "awsprofile.h"

/* As the AWS CLI guide shows it, plus a comment, blanks and a nested s3 block. */
static const char credentials[] =
    "# written by aws configure\n"
    "[default]\n"
    "aws_access_key_id=AKIAIOSFODNN7EXAMPLE\n"
    "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
    "\n"
    "[user1]\n"
    "aws_access_key_id = AKIAI44QH8DHBEXAMPLE  \n"
    "aws_secret_access_key = je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY\n"
    "; temporary\n"
    "aws_session_token = IQoJb3JpZ2luX2IQoJb3JpZ2luX2IQoJb3JpZ2luX2\n";

static const char config[] =
    "[default]\n"
    "region=us-west-2\n"
    "output=json\n"
    "\n"
    "[profile user1]\n"
    "region=us-east-1\n"
    "aws_access_key_id=AKIACONFIGONLYEXAMPLE\n"
    "s3 =\n"
    "  max_concurrent_requests = 20\n"
    "  region = nowhere\n"
    "[user1]\n"
    "region=not-a-config-section\n";

static void test_parse_sections(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    struct aws_profile p = { 0 };
    assert_int_equal(aws_profile_parse(credentials, "user1", false, &p, &err), 1);
    assert_int_equal(aws_profile_parse(config, "user1", true, &p, &err), 1);
    assert_string_equal(p.access_key, "AKIAI44QH8DHBEXAMPLE"); /* credentials win */
    assert_string_equal(p.secret_key, "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY");
    assert_string_equal(p.session_token, "IQoJb3JpZ2luX2IQoJb3JpZ2luX2IQoJb3JpZ2luX2");
    assert_string_equal(p.region, "us-east-1"); /* not the nested s3 one nor [user1] in config */
    aws_profile_clear(&p);

    assert_int_equal(aws_profile_parse(credentials, "default", false, &p, &err), 1);
    assert_int_equal(aws_profile_parse(config, "default", true, &p, &err), 1);
    assert_string_equal(p.access_key, "AKIAIOSFODNN7EXAMPLE");
    assert_null(p.session_token);
    assert_string_equal(p.region, "us-west-2");
    aws_profile_clear(&p);

    assert_int_equal(aws_profile_parse(credentials, "nobody", false, &p, &err), 0);
    assert_int_equal(aws_profile_parse("[broken\nx=y\n", "x", false, &p, &err), -1);
    assert_int_equal(err.code, MERR_CORRUPT);
    aws_profile_clear(&p);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_load_from_env_files(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    auto_free char *cred = xasprintf("%s/credentials", dir);
    auto_free char *conf = xasprintf("%s/config", dir);
    write_file(cred, credentials);
    write_file(conf, config);
    setenv("AWS_SHARED_CREDENTIALS_FILE", cred, 1);
    setenv("AWS_CONFIG_FILE", conf, 1);

    struct merr err = MERR_INIT;
    struct aws_profile p = { 0 };
    assert_int_equal(aws_profile_load("user1", &p, &err), 0);
    assert_string_equal(p.access_key, "AKIAI44QH8DHBEXAMPLE");
    aws_profile_clear(&p);

    assert_int_equal(aws_profile_load("nobody", &p, &err), -1);
    assert_int_equal(err.code, MERR_NOT_FOUND);
    aws_profile_clear(&p);

    /* re-read each time: a rotated key is seen by the next load */
    write_file(cred, "[user1]\naws_access_key_id=AKIAROTATED\naws_secret_access_key=new\n");
    assert_int_equal(aws_profile_load("user1", &p, &err), 0);
    assert_string_equal(p.access_key, "AKIAROTATED");
    assert_string_equal(p.region, "us-east-1");
    aws_profile_clear(&p);

    /* a profile without keys (only in config, region only) */
    write_file(cred, "");
    write_file(conf, "[profile r]\nregion=eu-west-1\n");
    assert_int_equal(aws_profile_load("r", &p, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    aws_profile_clear(&p);

    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
    unsetenv("AWS_CONFIG_FILE");
    test_tmpdir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_sections),
        cmocka_unit_test(test_load_from_env_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
