/* WWW-Authenticate, token responses, X-Registry-Auth parsing (Retry-After: test_http.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "image/auth.h"

static void test_www_authenticate(void **state)
{
    (void)state;
    struct auth_challenge c;
    struct merr err = MERR_INIT;
    /* Docker Hub's reply to GET /v2/library/alpine/manifests/latest */
    assert_int_equal(
        image_www_authenticate_parse("Bearer realm=\"https://auth.docker.io/token\","
                               "service=\"registry.docker.io\","
                               "scope=\"repository:library/alpine:pull\"",
                               &c, &err),
        0);
    assert_int_equal(c.scheme, AUTH_SCHEME_BEARER);
    assert_string_equal(c.realm, "https://auth.docker.io/token");
    assert_string_equal(c.service, "registry.docker.io");
    assert_string_equal(c.scope, "repository:library/alpine:pull");

    /* docker-registry 2.8 with token auth, on GET /v2/ (no scope) */
    assert_int_equal(image_www_authenticate_parse("Bearer realm=\"https://127.0.0.1:5001/auth\","
                                            "service=\"Docker registry\"",
                                            &c, &err),
                     0);
    assert_string_equal(c.service, "Docker registry");
    assert_string_equal(c.scope, "");

    /* docker-registry 2.8 htpasswd */
    assert_int_equal(image_www_authenticate_parse("Basic realm=\"basic-realm\"", &c, &err), 0);
    assert_int_equal(c.scheme, AUTH_SCHEME_BASIC);
    assert_string_equal(c.realm, "basic-realm");

    /* case-insensitive scheme and keys, spaces, escapes, unquoted values, extra params */
    assert_int_equal(image_www_authenticate_parse("bearer  Realm=\"https://a/t\\\"x\" , service=svc,"
                                            " error=\"insufficient_scope\"",
                                            &c, &err),
                     0);
    assert_string_equal(c.realm, "https://a/t\"x");
    assert_string_equal(c.service, "svc");

    assert_int_equal(image_www_authenticate_parse("Negotiate abc", &c, &err), -1);
    assert_int_equal(err.code, MERR_UNSUPPORTED);
    assert_int_equal(image_www_authenticate_parse("Bearer service=\"x\"", &c, &err), -1);
    assert_int_equal(err.code, MERR_PROTOCOL);
    assert_int_equal(image_www_authenticate_parse("Bearer realm", &c, &err), -1);

    char longrealm[3000] = "Bearer realm=\"";
    memset(longrealm + strlen(longrealm), 'a', 2000);
    strcat(longrealm, "\"");
    assert_int_equal(image_www_authenticate_parse(longrealm, &c, &err), -1);
}

static void test_token_response(void **state)
{
    (void)state;
    char *tok = NULL;
    long exp = 0;
    struct merr err = MERR_INIT;
    /* auth.docker.io replies with both token and access_token */
    static const char hub[] = "{\"token\":\"eyJhbGciOi.abc\",\"access_token\":\"eyJhbGciOi.abc\","
                              "\"expires_in\":300,\"issued_at\":\"2024-05-01T10:00:00.1Z\"}";
    assert_int_equal(image_token_response_parse(hub, strlen(hub), &tok, &exp, &err), 0);
    assert_string_equal(tok, "eyJhbGciOi.abc");
    assert_int_equal(exp, 300);
    free(tok);
    /* OAuth2 servers send only access_token; expires_in defaults to 60 */
    static const char oauth[] = "{\"access_token\":\"xyz\",\"scope\":\"repository:a:pull\"}";
    assert_int_equal(image_token_response_parse(oauth, strlen(oauth), &tok, &exp, &err), 0);
    assert_string_equal(tok, "xyz");
    assert_int_equal(exp, 60);
    free(tok);
    static const char bad[] = "{\"token\":\"\"}";
    assert_int_equal(image_token_response_parse(bad, strlen(bad), &tok, &exp, &err), -1);
    assert_int_equal(err.code, MERR_PROTOCOL);
    /* a token with CR/LF would inject headers */
    static const char inject[] = "{\"token\":\"a\\r\\nX-Evil: 1\"}";
    assert_int_equal(image_token_response_parse(inject, strlen(inject), &tok, &exp, &err), -1);
    assert_null(tok);
}

static void test_x_registry_auth(void **state)
{
    (void)state;
    struct registry_creds c;
    struct merr err = MERR_INIT;
    /* The docker CLI's encoding (base64url with padding) of
     * {"username":"alice","password":"s3cr?t>","serveraddress":"127.0.0.1:5000"} */
    static const char url[] = "eyJ1c2VybmFtZSI6ImFsaWNlIiwicGFzc3dvcmQiOiJzM2NyP3Q-Iiwic2VydmVyYWRk"
                              "cmVzcyI6IjEyNy4wLjAuMTo1MDAwIn0=";
    assert_int_equal(image_x_registry_auth_decode(url, &c, &err), 0);
    assert_string_equal(c.username, "alice");
    assert_string_equal(c.password, "s3cr?t>");
    assert_string_equal(c.serveraddress, "127.0.0.1:5000");
    assert_null(c.identitytoken);
    assert_true(image_registry_creds_have_basic(&c));
    image_registry_creds_clear(&c);
    assert_null(c.username);

    /* unpadded, and the standard alphabet */
    static const char unpadded[] = "eyJ1c2VybmFtZSI6ImFsaWNlIiwicGFzc3dvcmQiOiJzM2NyP3Q-Iiwic2Vy"
                                   "dmVyYWRkcmVzcyI6IjEyNy4wLjAuMTo1MDAwIn0";
    assert_int_equal(image_x_registry_auth_decode(unpadded, &c, &err), 0);
    assert_string_equal(c.password, "s3cr?t>");
    image_registry_creds_clear(&c);
    static const char std[] = "eyJ1c2VybmFtZSI6ImFsaWNlIiwicGFzc3dvcmQiOiJzM2NyP3Q+Iiwic2VydmVyYWRk"
                              "cmVzcyI6IjEyNy4wLjAuMTo1MDAwIn0=";
    assert_int_equal(image_x_registry_auth_decode(std, &c, &err), 0);
    assert_string_equal(c.password, "s3cr?t>");
    image_registry_creds_clear(&c);

    /* {"identitytoken":"tok","serveraddress":"r"} */
    assert_int_equal(
        image_x_registry_auth_decode("eyJpZGVudGl0eXRva2VuIjoidG9rIiwic2VydmVyYWRkcmVzcyI6InIifQ", &c,
                               &err),
        0);
    assert_string_equal(c.identitytoken, "tok");
    assert_false(image_registry_creds_have_basic(&c));
    image_registry_creds_clear(&c);

    /* {"auth":"Ym9iOnB3"} → bob:pw */
    assert_int_equal(image_x_registry_auth_decode("eyJhdXRoIjoiWW05aU9uQjMifQ", &c, &err), 0);
    assert_string_equal(c.username, "bob");
    assert_string_equal(c.password, "pw");
    image_registry_creds_clear(&c);

    /* what the CLI sends without a login: "{}" base64url */
    assert_int_equal(image_x_registry_auth_decode("e30=", &c, &err), 0);
    assert_null(c.username);
    assert_int_equal(image_x_registry_auth_decode("", &c, &err), 0);
    assert_int_equal(image_x_registry_auth_decode(NULL, &c, &err), 0);

    assert_int_equal(image_x_registry_auth_decode("!!!", &c, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    assert_int_equal(image_x_registry_auth_decode("bm90IGpzb24", &c, &err), -1); /* "not json" */
    assert_int_equal(err.code, MERR_INVALID);
    assert_int_equal(image_x_registry_auth_decode("eyJ1c2VybmFtZSI6MX0", &c, &err), -1); /* username 1 */
    assert_null(c.username);
}

static void test_base64_encode(void **state)
{
    (void)state;
    char *s = base64_encode("bob:pw", 6);
    assert_string_equal(s, "Ym9iOnB3");
    free(s);
}

/* POST /build's X-Registry-Config: the entry of the FROM image's registry, as X-Registry-Auth. */
static void test_x_registry_config(void **state)
{
    (void)state;
    const char *json = "{\"https://index.docker.io/v1/\":{\"username\":\"hub\",\"password\":\"p1\"},"
                       "\"127.0.0.1:5000\":{\"auth\":\"dTpw\"}}";
    char *header = base64_encode(json, strlen(json));
    struct merr err = MERR_INIT;
    char *out = NULL;
    struct registry_creds c;
    assert_int_equal(image_x_registry_config_pick(header, "docker.io", &out, &err), 0);
    assert_non_null(out);
    assert_int_equal(image_x_registry_auth_decode(out, &c, &err), 0);
    assert_string_equal(c.username, "hub");
    assert_string_equal(c.password, "p1");
    image_registry_creds_clear(&c);
    free(out);
    assert_int_equal(image_x_registry_config_pick(header, "127.0.0.1:5000", &out, &err), 0);
    assert_int_equal(image_x_registry_auth_decode(out, &c, &err), 0);
    assert_string_equal(c.username, "u");
    assert_string_equal(c.password, "p");
    image_registry_creds_clear(&c);
    free(out);
    assert_int_equal(image_x_registry_config_pick(header, "other.example:5000", &out, &err), 0);
    assert_null(out);
    assert_int_equal(image_x_registry_config_pick(NULL, "docker.io", &out, &err), 0);
    assert_null(out);
    assert_int_equal(image_x_registry_config_pick("!!!", "docker.io", &out, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    free(header);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_www_authenticate),
        cmocka_unit_test(test_token_response),
        cmocka_unit_test(test_x_registry_auth),
        cmocka_unit_test(test_base64_encode),
        cmocka_unit_test(test_x_registry_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
