/* Lab files: parsing and validation (good files, and bad ones with the error each must give),
 * brace expansion, dependency order and cycles, and the plan from recorded specs. */
#include "test_helpers.h"

#include "lab.h"
#include "lab-pull.h"
#include "lab-up.h"
#include "strv.h"

static struct lab *parse(const char *text, struct merr *err)
{
    return lab_parse(text, strlen(text), "labs/lab.yaml", err);
}

static void test_good_file(void **state)
{
    const char *text = "name: classroom\n"
                       "defaults:\n"
                       "  driver: generic\n"
                       "  flags: { generic-ssh-user: root, generic-ssh-port: 22 }\n"
                       "  engine: { opts: [ \"mtu=1400\" ], labels: [ zone=a ] }\n"
                       "  labels: { course: c101 }\n"
                       "hosts:\n"
                       "  db:\n"
                       "    driver: kvm\n"
                       "    flags: { kvm-memory: 2048 }\n"
                       "  web-{1..3}:\n"
                       "    depends_on: db\n"
                       "    flags: { generic-ip-address: 10.0.0.5 }\n"
                       "    setup:\n"
                       "      files: [ { src: site/, dest: /srv/site }, \"a.conf:/etc/a.conf\" ]\n"
                       "      run: [ \"mkdir -p /srv\" ]\n"
                       "      images: [ busybox:latest ]\n"
                       "  worker: { count: 2, depends_on: [ \"web-{1..3}\" ] }\n";
    struct merr err = MERR_INIT;
    struct lab *lab = parse(text, &err);
    if (lab == NULL)
        fail_msg("%s", err.msg);
    assert_string_equal(lab->name, "classroom");
    assert_string_equal(lab->dir, "labs");
    assert_int_equal(lab->n_hosts, 6);
    const char *names[] = { "db", "web-1", "web-2", "web-3", "worker-1", "worker-2" };
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(lab->hosts[i].name, names[i]);

    const struct lab_host *db = lab_find(lab, "db");
    assert_string_equal(json_string_value(json_object_get(db->spec, "driver")), "kvm");
    json_t *flags = json_object_get(db->spec, "flags");
    /* maps merge key by key: the default flags stay, the host's are added */
    assert_string_equal(json_string_value(json_object_get(flags, "kvm-memory")), "2048");
    assert_string_equal(json_string_value(json_object_get(flags, "generic-ssh-user")), "root");
    json_t *labels = json_object_get(db->spec, "labels");
    assert_string_equal(json_string_value(json_object_get(labels, "lab")), "classroom");
    assert_string_equal(json_string_value(json_object_get(labels, "course")), "c101");
    assert_null(db->depends_on);

    const struct lab_host *w2 = lab_find(lab, "web-2");
    assert_string_equal(w2->group, "web-{1..3}");
    assert_int_equal(w2->line, 11);
    assert_string_equal(json_string_value(json_object_get(w2->spec, "driver")), "generic");
    assert_int_equal(strv_len(w2->depends_on), 1);
    assert_string_equal(w2->depends_on[0], "db");
    json_t *files = json_object_get(json_object_get(w2->spec, "setup"), "files");
    assert_int_equal(json_array_size(files), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(files, 1), "dest")),
                        "/etc/a.conf");
    /* a group named in depends_on stands for each of its hosts */
    const struct lab_host *wk = lab_find(lab, "worker-2");
    assert_int_equal(strv_len(wk->depends_on), 3);
    assert_string_equal(wk->depends_on[2], "web-3");
    assert_null(lab_find(lab, "web-4"));
    lab_free(lab);
}

static void test_json_file(void **state)
{
    const char *text = "{\"name\": \"j\", \"hosts\": {\"a\": {\"driver\": \"none\", "
                       "\"flags\": {\"url\": \"tcp://1.2.3.4:2376\", \"n\": 3}}}}";
    struct merr err = MERR_INIT;
    struct lab *lab = parse(text, &err);
    assert_non_null(lab);
    assert_int_equal(lab->n_hosts, 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(lab->hosts[0].spec, "flags"), "n")),
                        "3");
    lab_free(lab);
}

/* Each bad file fails with an error that names the place. */
static void test_bad_files(void **state)
{
    static const struct {
        const char *text;
        const char *error;
    } cases[] = {
        { "hosts: { a: { driver: none } }\n", "labs/lab.yaml: name: the lab needs a name" },
        { "name: x\n", "labs/lab.yaml: hosts: no hosts" },
        { "name: x\nhosts:\n  a:\n    drivr: none\n", "labs/lab.yaml:4: hosts.a: unknown field 'drivr'" },
        { "name: x\nhosts:\n  a: {}\n", "labs/lab.yaml:3: hosts.a: no driver" },
        { "name: x\nhosts:\n  a:\n    driver: none\n    depends_on: [ b ]\n",
          "labs/lab.yaml:5: hosts.a.depends_on: unknown host 'b'" },
        { "name: x\nhosts:\n  a: { driver: none, depends_on: b }\n  b: { driver: none, depends_on: a }\n",
          "labs/lab.yaml: hosts: dependency cycle: a -> b -> a" },
        { "name: x\nhosts:\n  a: { driver: none, depends_on: a }\n", "depends on itself" },
        { "name: x\nhosts:\n  a-{1..2}: { driver: none }\n  a-2: { driver: none }\n",
          "labs/lab.yaml:4: hosts.a-2: host 'a-2' is defined twice" },
        { "name: x\nhosts:\n  a_b: { driver: none }\n", "labs/lab.yaml:3: hosts.a_b: 'a_b': Invalid hostname" },
        { "name: x\nhosts:\n  w-{1..3: { driver: none }\n", "unbalanced or nested braces" },
        { "name: x\nhosts:\n  w: { driver: none, count: 0 }\n", "count must be a number from 1 to 1000" },
        { "name: x\nhosts:\n  w-{1,2}: { driver: none, count: 2 }\n", "either a {..} pattern or count" },
        { "name: x\nhosts:\n  w-{1..5000}: { driver: none }\n", "more than 1000 names" },
        { "name: x\nhosts:\n  a:\n    driver: [ none ]\n", "labs/lab.yaml:4: hosts.a.driver: expected a value, found a list" },
        { "name: x\nhosts:\n  a:\n    driver: none\n    setup: { files: [ \"x:relative\" ] }\n",
          "labs/lab.yaml:5: hosts.a.setup.files: expected {src: PATH, dest: /ABSOLUTE/PATH}" },
        { "name: x\nhosts:\n  a:\n    driver: none\n    labels: { k: [ v ] }\n",
          "labs/lab.yaml:5: hosts.a.labels.k: expected a value, found a list" },
        { "name: x\ndefaults: { depends_on: [ a ] }\nhosts:\n  a: { driver: none }\n",
          "labs/lab.yaml:2: defaults.depends_on: belongs to a host" },
        { "name: x\nname: y\nhosts: {}\n", "labs/lab.yaml:2: 'name' appears twice" },
        { "base: &b { driver: none }\nname: x\nhosts:\n  a: *b\n", "labs/lab.yaml:4: YAML aliases" },
        { "name: x\nhosts: [\n", "labs/lab.yaml:" },
        { "name: x\nhosts: { a: { driver: none } }\n---\nname: y\n", "one YAML document per lab file" },
        { "{\"name\": \"x\", \"hosts\": 3}", "labs/lab.yaml: hosts: expected a mapping, found a value" },
        { "{\"name\": \"x\",", "labs/lab.yaml:1:" },
        { "name: x\nengine: {}\nhosts: { a: { driver: none } }\n", "labs/lab.yaml:2: lab: unknown field 'engine'" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct merr err = MERR_INIT;
        struct lab *lab = parse(cases[i].text, &err);
        if (lab != NULL || strstr(err.msg, cases[i].error) == NULL)
            fail_msg("case %zu: expected '%s', got %s '%s'", i, cases[i].error,
                     lab != NULL ? "success" : "error", err.msg);
        assert_int_equal(err.code, MERR_INVALID);
    }
}

static char *joined(char **v)
{
    char *out = xstrdup("");
    for (size_t i = 0; v != NULL && v[i] != NULL; i++) {
        char *n = xasprintf("%s%s%s", out, i ? " " : "", v[i]);
        free(out);
        out = n;
    }
    return out;
}

static void test_expand(void **state)
{
    static const struct {
        const char *pattern, *names;
    } cases[] = {
        { "web", "web" },
        { "web-{1..3}", "web-1 web-2 web-3" },
        { "n{08..10}", "n08 n09 n10" },
        { "n{3..1}", "n3 n2 n1" },
        { "{a,b}-{1..2}.lab", "a-1.lab a-2.lab b-1.lab b-2.lab" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct merr err = MERR_INIT;
        auto_strv char **v = lab_expand(cases[i].pattern, 100, &err);
        assert_non_null(v);
        auto_free char *s = joined(v);
        assert_string_equal(s, cases[i].names);
    }
    const char *bad[] = { "a{", "a}", "{a}", "{a,}", "{,b}", "{1..}", "{{1..2}}", "x{1..200}" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct merr err = MERR_INIT;
        char **v = lab_expand(bad[i], 100, &err);
        if (v != NULL)
            fail_msg("'%s' expanded", bad[i]);
        assert_int_equal(err.code, MERR_INVALID);
    }
}

static void test_order(void **state)
{
    /* declared in reverse of what they need */
    const char *text = "name: x\ndefaults: { driver: none }\nhosts:\n"
                       "  app: { depends_on: [ cache, db ] }\n"
                       "  cache: { depends_on: db }\n"
                       "  db: {}\n"
                       "  lone: {}\n";
    struct merr err = MERR_INIT;
    auto_lab struct lab *lab = parse(text, &err);
    assert_non_null(lab);
    size_t order[4];
    assert_int_equal(lab_order(lab, order, &err), 0);
    const char *want[] = { "db", "cache", "app", "lone" };
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(lab->hosts[order[i]].name, want[i]);
}

static void test_plan(void **state)
{
    const char *text = "name: x\nhosts:\n  a:\n    driver: generic\n    flags: { generic-ip-address: 10.0.0.2 }\n"
                       "    setup: { run: [ \"true\" ] }\n";
    struct merr err = MERR_INIT;
    auto_lab struct lab *lab = parse(text, &err);
    assert_non_null(lab);
    const struct lab_host *h = &lab->hosts[0];
    assert_int_equal(lab_plan_host(h, NULL), LAB_CREATE);
    json_t *rec = json_deep_copy(h->spec);
    assert_int_equal(lab_plan_host(h, rec), LAB_KEEP);
    json_object_set_new(json_object_get(rec, "setup"), "run", json_pack("[s]", "false"));
    assert_int_equal(lab_plan_host(h, rec), LAB_REPROVISION);
    json_decref(rec);
    rec = json_deep_copy(h->spec);
    json_object_set_new(json_object_get(rec, "flags"), "generic-ip-address", json_string("10.0.0.3"));
    assert_int_equal(lab_plan_host(h, rec), LAB_RECREATE);
    json_object_set_new(rec, "flags", json_deep_copy(json_object_get(h->spec, "flags")));
    json_object_set_new(rec, "driver", json_string("kvm"));
    assert_int_equal(lab_plan_host(h, rec), LAB_RECREATE);
    json_decref(rec);
    assert_string_equal(lab_action_name(LAB_REPROVISION), "reprovision");
}

static void test_load(void **state)
{
    char *dir = test_tmpdir();
    auto_free char *path = xasprintf("%s/lab.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("name: t\nhosts: { h: { driver: none } }\n", f);
    fclose(f);
    struct merr err = MERR_INIT;
    struct lab *lab = lab_load(path, &err);
    assert_non_null(lab);
    assert_string_equal(lab->dir, dir);
    lab_free(lab);
    auto_free char *missing = xasprintf("%s/none.yaml", dir);
    assert_null(lab_load(missing, &err));
    assert_non_null(strstr(err.msg, "lab file"));
    test_tmpdir_remove(dir);
}

/* setup.images: docker-archive files (relative to the lab's directory); references refused. */
static void test_image_archive(void **state)
{
    (void)state;
    char *p = lab_image_archive("labs", "img/busybox.tar");
    assert_string_equal(p, "labs/img/busybox.tar");
    free(p);
    p = lab_image_archive("labs", "/srv/a.tar.gz");
    assert_string_equal(p, "/srv/a.tar.gz");
    free(p);
    p = lab_image_archive("labs", "b.tgz");
    assert_string_equal(p, "labs/b.tgz");
    free(p);
    assert_null(lab_image_archive("labs", "busybox:latest"));
    assert_null(lab_image_archive("labs", "registry:5000/tar"));
}

static void ref_is(const char *s, const char *registry, const char *repo, const char *tag,
                   const char *familiar)
{
    struct lab_image_ref r;
    struct merr err = MERR_INIT;
    if (lab_image_ref_parse(s, &r, &err) < 0)
        fail_msg("%s: %s", s, err.msg);
    assert_string_equal(r.registry, registry);
    assert_string_equal(r.repo, repo);
    assert_string_equal(r.tag, tag);
    assert_string_equal(r.familiar, familiar);
    lab_image_ref_clear(&r);
}

static void test_image_ref(void **state)
{
    (void)state;
    ref_is("busybox", "registry-1.docker.io", "library/busybox", "latest", "busybox:latest");
    ref_is("busybox:1.36", "registry-1.docker.io", "library/busybox", "1.36", "busybox:1.36");
    ref_is("docker.io/team/app:v1", "registry-1.docker.io", "team/app", "v1", "team/app:v1");
    ref_is("127.0.0.1:5000/test/img:v1", "127.0.0.1:5000", "test/img", "v1",
           "127.0.0.1:5000/test/img:v1");
    ref_is("localhost/a", "localhost", "a", "latest", "localhost/a:latest");
    const char *bad[] = { "", "Busybox", "a//b", "a:", "a@sha256:12", "/a" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct lab_image_ref r;
        struct merr err = MERR_INIT;
        if (lab_image_ref_parse(bad[i], &r, &err) == 0)
            fail_msg("'%s' accepted", bad[i]);
        assert_int_equal(err.code, MERR_INVALID);
    }
    char *v = lab_bearer_param("Bearer realm=\"https://auth.example/token\",service=\"reg\","
                           "scope=\"repository:library/busybox:pull\"", "scope");
    assert_string_equal(v, "repository:library/busybox:pull");
    free(v);
    assert_null(lab_bearer_param("Basic realm=\"x\"", "realm"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_image_archive),
        cmocka_unit_test(test_image_ref),
        cmocka_unit_test(test_good_file), cmocka_unit_test(test_json_file),
        cmocka_unit_test(test_bad_files), cmocka_unit_test(test_expand),
        cmocka_unit_test(test_order),     cmocka_unit_test(test_plan),
        cmocka_unit_test(test_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
