/* docker cp's pure parts: the X-Docker-Container-Path-Stat header the CLI decodes, Go file
 * modes, path splitting and the clamping of archive entry names (security case 18). */
#include "test_helpers.h"

#include <sys/stat.h>

#include "container/manager.h"

/* Standard base64 decoding, enough to read the header back. */
static char *b64_decode(const char *in)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t len = strlen(in);
    assert_int_equal(len % 4, 0);
    char *out = calloc(len, 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        uint32_t v = 0;
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            const char *p = strchr(tbl, in[i + k]);
            if (in[i + k] == '=') {
                pad++;
                v <<= 6;
                continue;
            }
            assert_non_null(p);
            v = (v << 6) | (uint32_t)(p - tbl);
        }
        out[o++] = (char)(v >> 16);
        if (pad < 2)
            out[o++] = (char)(v >> 8);
        if (pad < 1)
            out[o++] = (char)v;
    }
    return out;
}

static void test_stat_header(void **state)
{
    (void)state;
    struct ctr_path_stat st = { .size = 13, .mtime_ns = 1700000000000000000LL };
    snprintf(st.name, sizeof st.name, "hostname");
    st.mode = ctr_go_file_mode(S_IFREG | 0644);
    char *h = ctr_path_stat_header(&st);
    assert_non_null(h);
    char *text = b64_decode(h);
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "hostname");
    assert_int_equal(json_integer_value(json_object_get(j, "size")), 13);
    assert_int_equal(json_integer_value(json_object_get(j, "mode")), 0644);
    assert_string_equal(json_string_value(json_object_get(j, "mtime")), "2023-11-14T22:13:20Z");
    assert_string_equal(json_string_value(json_object_get(j, "linkTarget")), "");
    json_decref(j);
    free(text);
    free(h);
}

static void test_go_modes(void **state)
{
    (void)state;
    assert_int_equal(ctr_go_file_mode(S_IFDIR | 0755), (1u << 31) | 0755);
    assert_int_equal(ctr_go_file_mode(S_IFLNK | 0777), (1u << 27) | 0777);
    assert_int_equal(ctr_go_file_mode(S_IFREG | S_ISUID | 0755), (1u << 23) | 0755);
    assert_int_equal(ctr_go_file_mode(S_IFDIR | S_ISVTX | 0777), (1u << 31) | (1u << 20) | 0777);
    assert_int_equal(ctr_go_file_mode(S_IFCHR | 0666), (1u << 26) | (1u << 21) | 0666);
}

static void test_split(void **state)
{
    (void)state;
    static const char *const cases[][3] = {
        { "/etc/hostname", "/etc", "hostname" }, { "/etc/", "/", "etc" },
        { "/tmp/d/.", "/tmp/d", "." },           { "/", "/", "." },
        { "rel/x", "/rel", "x" },                { "/a/../../b", "/", "b" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *parent = NULL, *leaf = NULL;
        struct merr err = MERR_INIT;
        assert_int_equal(ctr_archive_split(cases[i][0], &parent, &leaf, &err), 0);
        assert_string_equal(parent, cases[i][1]);
        assert_string_equal(leaf, cases[i][2]);
        free(parent);
        free(leaf);
    }
    char *p, *l;
    struct merr err = MERR_INIT;
    assert_int_equal(ctr_archive_split("", &p, &l, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
}

static void test_entry_paths(void **state)
{
    (void)state;
    static const char *const ok[][2] = {
        { "a", "a" },       { "./a/b", "a/b" }, { "a/../b", "b" },
        { "/abs/x", "abs/x" }, { "./", "" },    { "a//b/", "a/b" },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char *out = NULL;
        struct merr err = MERR_INIT;
        assert_int_equal(ctr_archive_entry_path(ok[i][0], &out, &err), 0);
        assert_string_equal(out, ok[i][1]);
        free(out);
    }
    static const char *const bad[] = { "../x", "a/../../x", "./../../etc/shadow", "" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *out = NULL;
        struct merr err = MERR_INIT;
        assert_int_equal(ctr_archive_entry_path(bad[i], &out, &err), -1);
        assert_int_equal(err.code, MERR_INVALID);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stat_header),
        cmocka_unit_test(test_go_modes),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_entry_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
