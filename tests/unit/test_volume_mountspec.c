/* Mount specifications: -v (Binds), --mount (Mounts), --tmpfs (Tmpfs) and Config.Volumes, from
 * the create body the docker 28 CLI sent for
 *   docker create -v vol:/data:ro -v /host/dir:/h -v /anon
 *     --mount type=tmpfs,target=/t,tmpfs-size=2m,tmpfs-mode=1770
 *     --mount type=volume,source=v2,target=/v2,volume-nocopy
 *     --mount type=bind,source=/srv,target=/srv,readonly,bind-propagation=rslave
 *     --tmpfs /scratch:size=1m,exec busybox
 * (captured on a Unix socket). */
#include "test_helpers.h"

#include <sys/mount.h>

#include "volume/volume.h"

static const char *host_config =
    "{\"Binds\":[\"vol:/data:ro\",\"/host/dir:/h\"],\"Tmpfs\":{\"/scratch\":\"size=1m,exec\"},"
    "\"Mounts\":[{\"Type\":\"tmpfs\",\"Target\":\"/t\",\"TmpfsOptions\":{\"SizeBytes\":2097152,"
    "\"Mode\":1016}},{\"Type\":\"volume\",\"Source\":\"v2\",\"Target\":\"/v2\",\"VolumeOptions\":"
    "{\"NoCopy\":true,\"DriverConfig\":{},\"Labels\":{\"a\":\"b\"}}},{\"Type\":\"bind\",\"Source\":\"/srv\",\"Target\":"
    "\"/srv\",\"ReadOnly\":true,\"BindOptions\":{\"Propagation\":\"rslave\"}}]}";
static const char *config_volumes = "{\"/anon\":{}}";

static json_t *load(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    assert_non_null(j);
    return j;
}

static void test_cli_sample(void **state)
{
    (void)state;
    json_t *hc = load(host_config), *vols = load(config_volumes);
    struct mnt_list l = { 0 };
    struct merr err = MERR_INIT;
    assert_int_equal(mnt_list_from_config(hc, vols, &l, &err), 0);
    assert_int_equal(l.n, 7);
    /* Binds first */
    assert_int_equal(l.items[0].type, MNT_VOLUME);
    assert_string_equal(l.items[0].source, "vol");
    assert_string_equal(l.items[0].target, "/data");
    assert_true(l.items[0].readonly);
    assert_int_equal(l.items[1].type, MNT_BIND);
    assert_string_equal(l.items[1].source, "/host/dir");
    assert_true(l.items[1].create_source);
    assert_false(l.items[1].readonly);
    /* then Mounts */
    assert_int_equal(l.items[2].type, MNT_TMPFS);
    assert_string_equal(l.items[2].tmpfs_options, "size=2097152,mode=1770");
    assert_int_equal(l.items[3].type, MNT_VOLUME);
    assert_true(l.items[3].nocopy);
    assert_string_equal(json_string_value(json_object_get(l.items[3].labels, "a")), "b");
    assert_null(l.items[0].labels);
    assert_int_equal(l.items[4].type, MNT_BIND);
    assert_string_equal(l.items[4].propagation, "rslave");
    assert_false(l.items[4].create_source); /* --mount never creates the source */
    assert_true(l.items[4].readonly);
    /* then Tmpfs, then the anonymous volume */
    assert_int_equal(l.items[5].type, MNT_TMPFS);
    assert_string_equal(l.items[5].target, "/scratch");
    assert_int_equal(l.items[6].type, MNT_VOLUME);
    assert_null(l.items[6].source);
    assert_string_equal(l.items[6].target, "/anon");
    mnt_list_release(&l);
    json_decref(hc);
    json_decref(vols);
}

static void test_image_volume_under_a_mount_is_not_doubled(void **state)
{
    (void)state;
    json_t *hc = load("{\"Binds\":[\"/h:/data/\"]}"), *vols = load("{\"/data\":{},\"/x\":{}}");
    struct mnt_list l = { 0 };
    struct merr err = MERR_INIT;
    assert_int_equal(mnt_list_from_config(hc, vols, &l, &err), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.items[1].target, "/x");
    mnt_list_release(&l);
    json_decref(hc);
    json_decref(vols);
}

static void test_duplicates_refused(void **state)
{
    (void)state;
    json_t *hc = load("{\"Binds\":[\"a1:/d\"],\"Tmpfs\":{\"/d/\":\"\"}}");
    struct mnt_list l = { 0 };
    struct merr err = MERR_INIT;
    assert_int_equal(mnt_list_from_config(hc, NULL, &l, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    json_decref(hc);
}

static void test_bind_specs(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int ok;
        enum mnt_type type;
        const char *source, *target;
        bool ro;
    } cases[] = {
        { "/a:/b", 1, MNT_BIND, "/a", "/b", false },
        { "/a/../c/:/b/./d:ro", 1, MNT_BIND, "/c", "/b/d", true },
        { "/a:/b:rw,rshared", 1, MNT_BIND, "/a", "/b", false },
        { "myvol:/b:ro,nocopy", 1, MNT_VOLUME, "myvol", "/b", true },
        { "/b", 1, MNT_VOLUME, NULL, "/b", false },
        { "/a:/b:ro,rw", 0, 0, NULL, NULL, false },  /* two rw modes */
        { "/a:/b:bogus", 0, 0, NULL, NULL, false },
        { "vol:/b:rshared", 0, 0, NULL, NULL, false }, /* propagation only for binds */
        { "/a:b", 0, 0, NULL, NULL, false },           /* relative destination */
        { "/a:/", 0, 0, NULL, NULL, false },
        { "bad name:/b", 0, 0, NULL, NULL, false },
        { "x:/b", 0, 0, NULL, NULL, false },           /* one-letter name */
        { "/a:/b:ro:x", 0, 0, NULL, NULL, false },
        { "/a::/b", 0, 0, NULL, NULL, false },
        { "", 0, 0, NULL, NULL, false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct mnt_spec s;
        struct merr err = MERR_INIT;
        int rc = mnt_parse_bind(cases[i].text, &s, &err);
        if (!cases[i].ok) {
            if (rc == 0)
                fail_msg("'%s' was accepted", cases[i].text);
            assert_int_equal(err.code, MERR_INVALID);
            continue;
        }
        if (rc != 0)
            fail_msg("'%s': %s", cases[i].text, err.msg);
        assert_int_equal(s.type, cases[i].type);
        if (cases[i].source == NULL)
            assert_null(s.source);
        else
            assert_string_equal(s.source, cases[i].source);
        assert_string_equal(s.target, cases[i].target);
        assert_int_equal(s.readonly, cases[i].ro);
        mnt_spec_release(&s);
    }
}

static void test_mount_objects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{\"Type\":\"bind\",\"Target\":\"/t\"}",                          /* no source */
        "{\"Type\":\"tmpfs\",\"Source\":\"/x\",\"Target\":\"/t\"}",        /* tmpfs source */
        "{\"Type\":\"bind\",\"Source\":\"rel\",\"Target\":\"/t\"}",
        "{\"Type\":\"volume\",\"Source\":\"v1\"}",                        /* no target */
        "{\"Type\":\"npipe\",\"Source\":\"v1\",\"Target\":\"/t\"}",
        "{\"Type\":\"volume\",\"Source\":\"v1\",\"Target\":\"/t\",\"BindOptions\":{}}",
        "{\"Type\":\"bind\",\"Source\":\"/s\",\"Target\":\"/t\",\"BindOptions\":{\"Propagation\":\"x\"}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *j = load(bad[i]);
        struct mnt_spec s;
        struct merr err = MERR_INIT;
        if (mnt_parse_mount(j, &s, &err) == 0)
            fail_msg("accepted %s", bad[i]);
        assert_int_equal(err.code, MERR_INVALID);
        json_decref(j);
    }
}

static void test_tmpfs_options(void **state)
{
    (void)state;
    unsigned long flags;
    char *data = NULL;
    struct merr err = MERR_INIT;
    assert_int_equal(mnt_tmpfs_options("", &flags, &data, &err), 0);
    assert_int_equal(flags, MS_NOSUID | MS_NODEV | MS_NOEXEC); /* docker's defaults */
    assert_string_equal(data, "");
    free(data);
    assert_int_equal(mnt_tmpfs_options("size=1m,exec,ro,mode=1777", &flags, &data, &err), 0);
    assert_int_equal(flags, MS_NOSUID | MS_NODEV | MS_RDONLY);
    assert_string_equal(data, "size=1m,mode=1777");
    free(data);
    /* no smuggling of other mount options through the data string */
    assert_int_equal(mnt_tmpfs_options("size=1m,context=x", &flags, &data, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    assert_int_equal(mnt_tmpfs_options("size=", &flags, &data, &err), -1);
}

static void test_clean_path_and_names(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        { "/", "/" },           { "/a//b/", "/a/b" }, { "/a/./b/..", "/a" },
        { "/../../etc", "/etc" }, { "/a/b/../../..", "/" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *c = mnt_clean_path(cases[i][0]);
        assert_string_equal(c, cases[i][1]);
        free(c);
    }
    assert_null(mnt_clean_path("rel"));
    assert_true(mnt_volume_name_ok("my-vol_1.x"));
    assert_false(mnt_volume_name_ok("-x"));
    assert_false(mnt_volume_name_ok("a/b"));
    assert_false(mnt_volume_name_ok(".."));
}

static void test_record_round_trip(void **state)
{
    (void)state;
    struct mnt_spec s, back;
    struct merr err = MERR_INIT;
    assert_int_equal(mnt_parse_bind("/a:/b:ro,rslave", &s, &err), 0);
    json_t *j = mnt_spec_to_json(&s);
    assert_string_equal(json_string_value(json_object_get(j, "Type")), "bind");
    assert_false(json_is_true(json_object_get(j, "RW")));
    assert_int_equal(mnt_spec_from_json(j, &back, &err), 0);
    assert_string_equal(back.source, "/a");
    assert_string_equal(back.target, "/b");
    assert_string_equal(back.propagation, "rslave");
    assert_true(back.readonly);
    assert_true(back.create_source);
    json_decref(j);
    mnt_spec_release(&s);
    mnt_spec_release(&back);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_sample),
        cmocka_unit_test(test_image_volume_under_a_mount_is_not_doubled),
        cmocka_unit_test(test_duplicates_refused),
        cmocka_unit_test(test_bind_specs),
        cmocka_unit_test(test_mount_objects),
        cmocka_unit_test(test_tmpfs_options),
        cmocka_unit_test(test_clean_path_and_names),
        cmocka_unit_test(test_record_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
