/* AWS Signature Version 4 against the vectors AWS publishes in its SigV4 test suite
 * (docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html, also kept in
 * awslabs/aws-c-auth tests/aws-signing-test-suite/v4/): get-vanilla,
 * get-vanilla-query-order-key-case, post-vanilla, get-vanilla-with-session-token,
 * post-x-www-form-urlencoded (signed body hash header), get-utf8. Credentials AKIDEXAMPLE,
 * region us-east-1, service "service", 2015-08-30T12:36:00Z. */
#include "test_helpers.h"

#include "sigv4.h"

static const struct sigv4_key suite_key = {
    .access_key = "AKIDEXAMPLE",
    .secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    .region = "us-east-1",
    .service = "service",
};

#define SUITE_CRED "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "

static const char *const base_headers[] = { "Host:example.amazonaws.com",
                                            "X-Amz-Date:20150830T123600Z", NULL };

static void check(const struct sigv4_request *rq, const char *want)
{
    struct merr err = MERR_INIT;
    auto_free char *auth = sigv4_authorization(rq, &suite_key, &err);
    assert_non_null(auth);
    assert_string_equal(auth, want);
}

static void test_get_vanilla(void **state)
{
    (void)state;
    struct sigv4_request rq = { .method = "GET", .path = "/", .headers = base_headers };
    struct merr err = MERR_INIT;
    auto_free char *creq = sigv4_canonical_request(&rq, &err);
    assert_string_equal(creq, "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n"
                              "\nhost;x-amz-date\n"
                              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    auto_free char *sts = sigv4_string_to_sign("20150830T123600Z", "us-east-1", "service", creq);
    assert_string_equal(sts, "AWS4-HMAC-SHA256\n20150830T123600Z\n"
                             "20150830/us-east-1/service/aws4_request\n"
                             "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
    check(&rq, SUITE_CRED "SignedHeaders=host;x-amz-date, "
                          "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

static void test_query_order(void **state)
{
    (void)state;
    struct sigv4_request rq = { .method = "GET", .path = "/", .query = "Param2=value2&Param1=value1",
                                .headers = base_headers };
    check(&rq, SUITE_CRED "SignedHeaders=host;x-amz-date, "
                          "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

static void test_post_vanilla(void **state)
{
    (void)state;
    struct sigv4_request rq = { .method = "POST", .path = "", .headers = base_headers };
    check(&rq, SUITE_CRED "SignedHeaders=host;x-amz-date, "
                          "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}

static void test_session_token(void **state)
{
    (void)state;
    const char *const h[] = {
        "Host:example.amazonaws.com", "X-Amz-Date:20150830T123600Z",
        "X-Amz-Security-Token:6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267",
        NULL };
    struct sigv4_request rq = { .method = "GET", .path = "/", .headers = h };
    check(&rq, SUITE_CRED "SignedHeaders=host;x-amz-date;x-amz-security-token, "
                          "Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8");
}

static void test_form_body(void **state)
{
    (void)state;
    const char body[] = "Param1=value1";
    char body_hash[65];
    sigv4_sha256_hex(body, strlen(body), body_hash);
    assert_string_equal(body_hash,
                        "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
    auto_free char *hh = xasprintf("x-amz-content-sha256:%s", body_hash);
    /* header names in mixed case and a value with blanks around it: canonicalised */
    const char *const h[] = { "Content-Type:  application/x-www-form-urlencoded ",
                              "Host:example.amazonaws.com", "Content-Length:13", hh,
                              "X-Amz-Date:20150830T123600Z", NULL };
    struct sigv4_request rq = { .method = "POST", .path = "/", .headers = h, .payload = body,
                                .payload_len = strlen(body) };
    check(&rq, SUITE_CRED "SignedHeaders=content-length;content-type;host;x-amz-content-sha256;"
                          "x-amz-date, "
                          "Signature=d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b");
}

static void test_helpers_and_errors(void **state)
{
    (void)state;
    auto_free char *e = sigv4_uri_encode("a b/c~d=é", false);
    assert_string_equal(e, "a%20b%2Fc~d%3D%C3%A9");
    auto_free char *p = sigv4_uri_encode("/a b/c", true);
    assert_string_equal(p, "/a%20b/c");
    char d[17];
    sigv4_amz_date(1440938160, d);
    assert_string_equal(d, "20150830T123600Z");

    struct merr err = MERR_INIT;
    const char *const no_date[] = { "Host:example.amazonaws.com", NULL };
    struct sigv4_request rq = { .method = "GET", .headers = no_date };
    assert_null(sigv4_authorization(&rq, &suite_key, &err));
    assert_int_equal(err.code, MERR_INVALID);
    const char *const bad[] = { "Host example.amazonaws.com", NULL };
    rq.headers = bad;
    assert_null(sigv4_canonical_request(&rq, &err));
    assert_int_equal(err.code, MERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_vanilla),   cmocka_unit_test(test_query_order),
        cmocka_unit_test(test_post_vanilla),  cmocka_unit_test(test_session_token),
        cmocka_unit_test(test_form_body),     cmocka_unit_test(test_helpers_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
