/* image_pull against a REAL docker-registry on loopback, with images built offline
 * by umoci and pushed by skopeo (tests/integration/lib/{registry,images}.sh).
 * Covers security cases 7 (tampered blob), 8 (bad digest), 10 (diff ids) and
 * 23 (kill -9 during a pull). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "image/image.h"

struct env {
    char *skip;        /* why everything is skipped, or NULL */
    char tmp[64];
    char src[1024];
    char addr[64];
    char layout[1024];
    char storage[1100];
    struct registry_config rc;
    char *img_id;      /* config digest of test/img:v1 */
};

struct events {
    char *all;         /* every progress line, concatenated */
    size_t len;
    const char *kill_on; /* raise SIGKILL when a line contains this (fork tests) */
};

static int on_progress(const char *line, void *ctx)
{
    struct events *ev = ctx;
    size_t n = strlen(line);
    assert_true(n >= 2 && line[n - 2] == '\r' && line[n - 1] == '\n');
    json_error_t jerr;
    json_t *o = json_loads(line, 0, &jerr);
    assert_non_null(o); /* each line is one JSON object */
    json_decref(o);
    ev->all = realloc(ev->all, ev->len + n + 1);
    memcpy(ev->all + ev->len, line, n + 1);
    ev->len += n;
    if (ev->kill_on != NULL && strstr(line, ev->kill_on) != NULL)
        raise(SIGKILL);
    return 0;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; p != NULL && (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int r = system(cmd);
    return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

static bool read_line(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    bool ok = fgets(buf, (int)cap, f) != NULL;
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
    return ok;
}

static int group_setup(void **state)
{
    struct env *e = calloc(1, sizeof *e);
    *state = e;
    const char *src = getenv("MACHINE_SRC");
    if (src == NULL) {
        e->skip = "MACHINE_SRC not set (run through ctest)";
        return 0;
    }
    if (geteuid() != 0) {
        e->skip = "needs root (extracting layers with their owners)";
        return 0;
    }
    if (run("command -v docker-registry umoci skopeo jq >/dev/null") != 0) {
        e->skip = "docker-registry, umoci, skopeo or jq missing (scripts/install-deps)";
        return 0;
    }
    snprintf(e->src, sizeof e->src, "%s", src);
    strcpy(e->tmp, "/tmp/itest-pull-XXXXXX");
    assert_non_null(mkdtemp(e->tmp));
    char path[1200];
    snprintf(path, sizeof path, "%s/layout-path", e->tmp);
    if (run("bash %s/tests/integration/lib/images.sh build > %s", e->src, path) != 0 ||
        !read_line(path, e->layout, sizeof e->layout))
        fail_msg("building test images failed");
    if (run("bash %s/tests/integration/lib/registry.sh start %s/registry %d >/dev/null", e->src,
            e->tmp, (int)getpid()) != 0)
        fail_msg("cannot start docker-registry");
    snprintf(path, sizeof path, "%s/registry/addr", e->tmp);
    assert_true(read_line(path, e->addr, sizeof e->addr));
    snprintf(e->storage, sizeof e->storage, "%s/registry/storage", e->tmp);
    if (run("bash %s/tests/integration/lib/images.sh push %s", e->src, e->addr) != 0)
        fail_msg("pushing test images failed");
    image_registry_config_init(&e->rc);
    e->rc.connect_timeout_ms = 5000;
    e->rc.request_timeout_s = 30;
    e->rc.max_attempts = 3;
    e->rc.backoff_base_ms = 50;
    e->rc.backoff_max_ms = 500;
    return 0;
}

static int group_teardown(void **state)
{
    struct env *e = *state;
    if (e->tmp[0] != '\0') {
        run("bash %s/tests/integration/lib/registry.sh stop %s/registry", e->src, e->tmp);
        run("rm -rf %s", e->tmp);
    }
    free(e->img_id);
    free(e);
    return 0;
}

#define SKIP_IF_NEEDED(e)                                                                          \
    do {                                                                                           \
        if ((e)->skip != NULL) {                                                                   \
            print_message("skipped: %s\n", (e)->skip);                                             \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

static struct image_store *open_store(struct env *e, const char *name)
{
    char root[256];
    snprintf(root, sizeof root, "%s/%s", e->tmp, name);
    struct merr err = MERR_INIT;
    struct image_store *s = image_store_open(root, NULL, &err);
    if (s == NULL)
        fail_msg("open store: %s", err.msg);
    return s;
}

static int pull(struct env *e, struct image_store *s, const char *repo_tag, const char *platform,
                struct events *ev, char **id, struct merr *err)
{
    char ref[256];
    snprintf(ref, sizeof ref, "%s/%s", e->addr, repo_tag);
    return image_pull(s, &e->rc, ref, platform, NULL, on_progress, ev, id, err);
}

static void file_digest(const char *path, char out[72])
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        EVP_DigestUpdate(c, buf, n);
    fclose(f);
    unsigned char md[32];
    unsigned int len;
    EVP_DigestFinal_ex(c, md, &len);
    EVP_MD_CTX_free(c);
    strcpy(out, "sha256:");
    for (int i = 0; i < 32; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

/* Every blob's content hashes to its name; returns how many there are. */
static size_t check_blobs(struct env *e, const char *store)
{
    char dir[256];
    snprintf(dir, sizeof dir, "%s/%s/blobs/sha256", e->tmp, store);
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[600], want[300], got[72];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        snprintf(want, sizeof want, "sha256:%s", de->d_name);
        file_digest(path, got);
        assert_string_equal(got, want);
        n++;
    }
    closedir(d);
    return n;
}

static size_t dir_entries(struct env *e, const char *store, const char *sub)
{
    char dir[256];
    snprintf(dir, sizeof dir, "%s/%s/%s", e->tmp, store, sub);
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* A whiteout for name in dir: overlay form (0:0 char device) or the tar marker. */
static bool has_whiteout(const char *dir, const char *name)
{
    char p[1200];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    if (lstat(p, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == 0)
        return true;
    snprintf(p, sizeof p, "%s/.wh.%s", dir, name);
    return lstat(p, &st) == 0;
}

static bool is_opaque(const char *dir)
{
    char v[8] = { 0 };
    if (lgetxattr(dir, "trusted.overlay.opaque", v, sizeof v - 1) == 1 && v[0] == 'y')
        return true;
    char p[1200];
    struct stat st;
    snprintf(p, sizeof p, "%s/.wh..wh..opq", dir);
    return lstat(p, &st) == 0;
}

static bool exists(const char *dir, const char *name)
{
    char p[1200];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return lstat(p, &st) == 0;
}

static void test_pull_oci(void **state)
{
    struct env *e = *state;
    SKIP_IF_NEEDED(e);
    struct image_store *s = open_store(e, "store1");
    struct events ev = { 0 };
    struct merr err = MERR_INIT;
    char *id = NULL;
    if (pull(e, s, "test/img:v1", NULL, &ev, &id, &err) < 0)
        fail_msg("pull: %s", err.msg);
    assert_non_null(strstr(ev.all, "{\"status\":\"Pulling from test/img\",\"id\":\"v1\"}"));
    assert_int_equal(count(ev.all, "\"Pulling fs layer\""), 3);
    assert_true(count(ev.all, "\"Downloading\"") >= 3);
    assert_non_null(strstr(ev.all, "\"progressDetail\":{\"current\":"));
    assert_int_equal(count(ev.all, "\"Verifying Checksum\""), 3);
    assert_int_equal(count(ev.all, "\"Download complete\""), 3);
    assert_int_equal(count(ev.all, "\"Extracting\""), 3);
    assert_int_equal(count(ev.all, "\"Pull complete\""), 3);
    assert_int_equal(count(ev.all, "\"Already exists\""), 0);
    assert_non_null(strstr(ev.all, "{\"status\":\"Digest: sha256:"));
    char want[256];
    snprintf(want, sizeof want, "\"Status: Downloaded newer image for %s/test/img:v1\"", e->addr);
    assert_non_null(strstr(ev.all, want));

    /* the image ID is the config's digest and the config blob hashes to it */
    char cfgpath[512], got[72];
    snprintf(cfgpath, sizeof cfgpath, "%s/store1/blobs/sha256/%s", e->tmp, id + 7);
    file_digest(cfgpath, got);
    assert_string_equal(got, id);
    /* 3 layers + config + manifest, each under its true digest */
    assert_int_equal(check_blobs(e, "store1"), 5);
    assert_int_equal(dir_entries(e, "store1", "layers/sha256"), 3);
    assert_int_equal(dir_entries(e, "store1", "tmp"), 0);

    /* the tag, the digest reference and ID prefixes resolve */
    char ref[256];
    snprintf(ref, sizeof ref, "%s/test/img:v1", e->addr);
    char *found = image_lookup(s, ref, &err);
    assert_non_null(found);
    assert_string_equal(found, id);
    free(found);
    char shortid[16];
    snprintf(shortid, sizeof shortid, "%.12s", id + 7);
    found = image_lookup(s, shortid, &err);
    assert_non_null(found);
    assert_string_equal(found, id);
    free(found);
    found = image_lookup(s, id, &err);
    assert_non_null(found);
    free(found);
    const char *dg = strstr(ev.all, "Digest: ") + 8;
    snprintf(ref, sizeof ref, "%s/test/img@%.71s", e->addr, dg);
    found = image_lookup(s, ref, &err);
    assert_non_null(found);
    assert_string_equal(found, id);
    free(found);
    snprintf(ref, sizeof ref, "%s/test/img:nope", e->addr);
    assert_null(image_lookup(s, ref, &err));
    assert_int_equal(err.code, MERR_NOT_FOUND);

    /* layers, top first, in overlay order */
    char **dirs = image_layer_dirs(s, id, &err);
    assert_non_null(dirs);
    assert_non_null(dirs[0]);
    assert_non_null(dirs[1]);
    assert_non_null(dirs[2]);
    assert_null(dirs[3]);
    char p[1200];
    /* layer 3: opaque /opq with new.txt */
    snprintf(p, sizeof p, "%s/opq", dirs[0]);
    assert_true(is_opaque(p));
    assert_true(exists(p, "new.txt"));
    /* layer 2: whiteouts for a deleted file and a deleted dir, hardlinks, symlinks */
    snprintf(p, sizeof p, "%s/data", dirs[1]);
    assert_true(has_whiteout(p, "deleteme"));
    assert_true(has_whiteout(p, "old"));
    assert_true(exists(p, "b"));
    struct stat a, b;
    char q[1300];
    snprintf(q, sizeof q, "%s/pair1", p);
    assert_int_equal(lstat(q, &a), 0);
    snprintf(q, sizeof q, "%s/pair2", p);
    assert_int_equal(lstat(q, &b), 0);
    assert_int_equal(a.st_ino, b.st_ino);
    char target[256] = { 0 };
    snprintf(q, sizeof q, "%s/dangling", p);
    assert_true(readlink(q, target, sizeof target - 1) > 0);
    assert_string_equal(target, "/nonexistent");
    /* layer 1: busybox */
    snprintf(p, sizeof p, "%s/bin/busybox", dirs[2]);
    assert_int_equal(lstat(p, &a), 0);
    assert_true(S_ISREG(a.st_mode) && (a.st_mode & 0111));
    memset(target, 0, sizeof target);
    snprintf(p, sizeof p, "%s/bin/sh", dirs[2]);
    assert_true(readlink(p, target, sizeof target - 1) > 0);
    assert_string_equal(target, "busybox");
    snprintf(p, sizeof p, "%s/data/a", dirs[2]);
    assert_int_equal(lstat(p, &a), 0);
    snprintf(p, sizeof p, "%s/data/a-hardlink", dirs[2]);
    assert_int_equal(lstat(p, &b), 0);
    assert_int_equal(a.st_ino, b.st_ino);
    for (char **d = dirs; *d != NULL; d++)
        free(*d);
    free(dirs);

    e->img_id = id;
    free(ev.all);
    image_store_free(s);
}

static void test_repull_up_to_date(void **state)
{
    struct env *e = *state;
    SKIP_IF_NEEDED(e);
    struct image_store *s = open_store(e, "store1");
    struct events ev = { 0 };
    struct merr err = MERR_INIT;
    char *id = NULL;
    if (pull(e, s, "test/img:v1", NULL, &ev, &id, &err) < 0)
        fail_msg("pull: %s", err.msg);
    assert_string_equal(id, e->img_id);
    char want[256];
    snprintf(want, sizeof want, "\"Status: Image is up to date for %s/test/img:v1\"", e->addr);
    assert_non_null(strstr(ev.all, want));
    assert_int_equal(count(ev.all, "\"Downloading\""), 0);
    assert_int_equal(check_blobs(e, "store1"), 5);
    free(id);
    free(ev.all);
    image_store_free(s);
}

static void test_v2s2_same_image(void **state)
{
    struct env *e = *state;
    SKIP_IF_NEEDED(e);
    struct image_store *s = open_store(e, "store1");
    struct events ev = { 0 };
    struct merr err = MERR_INIT;
    char *id = NULL;
    if (pull(e, s, "test/img-v2s2:v1", NULL, &ev, &id, &err) < 0)
        fail_msg("pull: %s", err.msg);
    /* skopeo converted only the manifest: same config, so the same image, new tag */
    assert_string_equal(id, e->img_id);
    assert_non_null(strstr(ev.all, "Status: Downloaded newer image for"));
    assert_int_equal(count(ev.all, "\"Downloading\""), 0);
    assert_int_equal(dir_entries(e, "store1", "layers/sha256"), 3);
    /* the schema2 manifest was stored too */
    assert_int_equal(check_blobs(e, "store1"), 6);
    free(id);
    free(ev.all);
    image_store_free(s);
}

static void test_multi_platform(void **state)
{
    struct env *e = *state;
    SKIP_IF_NEEDED(e);
    struct image_store *s = open_store(e, "store1");
    struct events ev = { 0 };
    struct merr err = MERR_INIT;
    char *id = NULL;
    /* the host platform picks the amd64 entry, not the unknown/unknown attestation */
    if (pull(e, s, "test/multi:v1", NULL, &ev, &id, &err) < 0)
        fail_msg("pull: %s", err.msg);
    assert_string_equal(id, e->img_id);
    free(id);
    free(ev.all);

    memset(&ev, 0, sizeof ev);
    if (pull(e, s, "test/multi:v1", "linux/arm64", &ev, &id, &err) < 0)
        fail_msg("pull arm64: %s", err.msg);
    assert_string_not_equal(id, e->img_id);
    /* same layers, different config: every layer is shared */
    assert_int_equal(count(ev.all, "\"Already exists\""), 3);
    assert_int_equal(count(ev.all, "\"Downloading\""), 0);
    assert_int_equal(dir_entries(e, "store1", "layers/sha256"), 3);
    char *js = image_inspect_json(s, id, &err);
    assert_non_null(js);
    json_t *o = json_loads(js, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(o, "Architecture")), "arm64");
    assert_string_equal(json_string_value(json_object_get(o, "Variant")), "v8");
    json_decref(o);
    free(js);
    char **d1 = image_layer_dirs(s, id, &err), **d2 = image_layer_dirs(s, e->img_id, &err);
    for (int i = 0; i < 3; i++)
        assert_string_equal(d1[i], d2[i]);
    for (int i = 0; i < 3; i++) {
        free(d1[i]);
        free(d2[i]);
    }
    free(d1);
    free(d2);
    free(id);
    free(ev.all);

    memset(&ev, 0, sizeof ev);
    assert_int_equal(pull(e, s, "test/multi:v1", "linux/s390x", &ev, &id, &err), -1);
    assert_int_equal(err.code, MERR_NOT_FOUND);
    free(ev.all);
    image_store_free(s);
}

static void test_list_and_inspect(void **state)
{
    struct env *e = *state;
    SKIP_IF_NEEDED(e);
    struct image_store *s = open_store(e, "store1");
    struct merr err = MERR_INIT;
    char *js = image_list_json(s, &err);
    assert_non_null(js);
    json_t *list = json_loads(js, 0, NULL);
    free(js);
    assert_int_equal(json_array_size(list), 2);
    size_t i;
    json_t *img;
    bool seen = false;
    json_array_foreach(list, i, img)
    {
        if (strcmp(json_string_value(json_object_get(img, "Id")), e->img_id) != 0)
            continue;
        seen = true;
        /* img and img-v2s2; test/multi:v1 moved to the arm64 image when that was pulled */
        json_t *tags = json_object_get(img, "RepoTags");
        assert_int_equal(json_array_size(tags), 2);
        char want[256];
        snprintf(want, sizeof want, "%s/test/img:v1", e->addr);
        assert_true(strcmp(json_string_value(json_array_get(tags, 0)), want) == 0 ||
                    strcmp(json_string_value(json_array_get(tags, 1)), want) == 0);
        assert_int_equal(json_array_size(json_object_get(img, "RepoDigests")), 2);
        assert_true(json_integer_value(json_object_get(img, "Created")) > 0);
        assert_true(json_integer_value(json_object_get(img, "Size")) > 1000000);
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(img, "Labels"), "org.machine.test")),
            "1");
    }
    assert_true(seen);
    json_decref(list);

    char ref[256];
    snprintf(ref, sizeof ref, "%s/test/img:v1", e->addr);
    js = image_inspect_json(s, ref, &err);
    assert_non_null(js);
    json_t *o = json_loads(js, 0, NULL);
    free(js);
    assert_string_equal(json_string_value(json_object_get(o, "Id")), e->img_id);
    assert_string_equal(json_string_value(json_object_get(o, "Os")), "linux");
    assert_string_equal(json_string_value(json_object_get(o, "Architecture")), "amd64");
    json_t *cmd = json_object_get(json_object_get(o, "Config"), "Cmd");
    assert_string_equal(json_string_value(json_array_get(cmd, 0)), "/bin/sh");
    json_t *rootfs = json_object_get(o, "RootFS");
    assert_string_equal(json_string_value(json_object_get(rootfs, "Type")), "layers");
    assert_int_equal(json_array_size(json_object_get(rootfs, "Layers")), 3);
    json_decref(o);

    char *cfg = image_config_json(s, e->img_id, &err);
    assert_non_null(cfg);
    assert_non_null(strstr(cfg, "\"diff_ids\""));
    free(cfg);
    image_store_free(s);
}

static bool in_use_yes(const char *id, void *ctx)
{
    return strcmp(id, (const char *)ctx) == 0;
}

static void test_remove(void **state)
{
    struct env *e = *state;
    SKIP_IF_NEEDED(e);
    struct image_store *s = open_store(e, "store1");
    struct merr err = MERR_INIT;
    char ref[256], *report = NULL;
    char *arm = NULL;
    snprintf(ref, sizeof ref, "%s/test/multi:v1", e->addr);

    /* by ID, while tagged in several repositories: refused without force */
    assert_int_equal(image_remove(s, e->img_id, false, NULL, NULL, &report, &err), -1);
    assert_int_equal(err.code, MERR_BUSY);

    /* untag one of three: the image stays */
    snprintf(ref, sizeof ref, "%s/test/img-v2s2:v1", e->addr);
    assert_int_equal(image_remove(s, ref, false, NULL, NULL, &report, &err), 0);
    assert_non_null(strstr(report, "Untagged"));
    assert_null(strstr(report, "Deleted"));
    free(report);
    assert_null(image_lookup(s, ref, &err));

    /* the arm64 image, pulled last through test/multi:v1 */
    snprintf(ref, sizeof ref, "%s/test/multi:v1", e->addr);
    arm = image_lookup(s, ref, &err);
    assert_non_null(arm);
    assert_string_not_equal(arm, e->img_id);

    /* a container uses it: refused, then forced (untag only, image kept) */
    assert_int_equal(image_remove(s, arm, false, in_use_yes, arm, &report, &err), -1);
    assert_int_equal(err.code, MERR_BUSY);
    assert_int_equal(image_remove(s, arm, true, in_use_yes, arm, &report, &err), 0);
    assert_null(strstr(report, "Deleted"));
    free(report);
    char *still = image_lookup(s, arm, &err);
    assert_non_null(still);
    free(still);

    /* now really delete it: its config goes, the shared layers stay */
    assert_int_equal(image_remove(s, arm, false, NULL, NULL, &report, &err), 0);
    assert_non_null(strstr(report, "Deleted"));
    free(report);
    assert_null(image_lookup(s, arm, &err));
    assert_int_equal(err.code, MERR_NOT_FOUND);
    assert_int_equal(dir_entries(e, "store1", "layers/sha256"), 3);
    char **dirs = image_layer_dirs(s, e->img_id, &err);
    assert_non_null(dirs);
    for (char **d = dirs; *d != NULL; d++)
        free(*d);
    free(dirs);

    /* by ID with force: every reference, the image, its layers and blobs go */
    assert_int_equal(image_remove(s, e->img_id, true, NULL, NULL, &report, &err), 0);
    assert_int_equal(count(report, "\"Deleted\""), 4); /* image + 3 layers */
    free(report);
    assert_int_equal(dir_entries(e, "store1", "layers/sha256"), 0);
    assert_int_equal(dir_entries(e, "store1", "images/sha256"), 0);
    assert_int_equal(check_blobs(e, "store1"), 0);
    assert_null(image_lookup(s, e->img_id, &err));
    free(arm);
    image_store_free(s);
}

static void test_zstd_layers(void **state)
{
    struct env *e = *state;
    SKIP_IF_NEEDED(e);
    struct image_store *s = open_store(e, "store-zstd");
    struct events ev = { 0 };
    struct merr err = MERR_INIT;
    char *id = NULL;
    if (pull(e, s, "test/img-zstd:v1", NULL, &ev, &id, &err) < 0)
        fail_msg("pull: %s", err.msg);
    assert_int_equal(count(ev.all, "\"Pull complete\""), 3);
    assert_int_equal(check_blobs(e, "store-zstd"), 5);
    char **dirs = image_layer_dirs(s, id, &err);
    assert_non_null(dirs);
    assert_true(exists(dirs[2], "bin/busybox"));
    for (char **d = dirs; *d != NULL; d++)
        free(*d);
    free(dirs);
    free(id);
    free(ev.all);
    image_store_free(s);
}

/* The digest of layer `index` (-1: the config) of the layout's v1 image. */
static void layout_layer_digest(struct env *e, int index, char out[72])
{
    char path[1200];
    snprintf(path, sizeof path, "%s/index.json", e->layout);
    json_t *idx = json_load_file(path, 0, NULL);
    assert_non_null(idx);
    size_t i;
    json_t *m;
    const char *man = NULL;
    json_array_foreach(json_object_get(idx, "manifests"), i, m)
    {
        const char *name = json_string_value(
            json_object_get(json_object_get(m, "annotations"), "org.opencontainers.image.ref.name"));
        if (name != NULL && strcmp(name, "v1") == 0)
            man = json_string_value(json_object_get(m, "digest"));
    }
    assert_non_null(man);
    snprintf(path, sizeof path, "%s/blobs/sha256/%s", e->layout, man + 7);
    json_t *mj = json_load_file(path, 0, NULL);
    assert_non_null(mj);
    json_t *desc = index < 0 ? json_object_get(mj, "config")
                             : json_array_get(json_object_get(mj, "layers"), (size_t)index);
    const char *d = json_string_value(json_object_get(desc, "digest"));
    assert_non_null(d);
    snprintf(out, 72, "%s", d);
    json_decref(mj);
    json_decref(idx);
}

static void registry_blob_file(struct env *e, const char *digest, char *out, size_t cap)
{
    snprintf(out, cap, "%s/docker/registry/v2/blobs/sha256/%.2s/%s/data", e->storage, digest + 7,
             digest + 7);
}

/* Overwrites `len` bytes at `offset` of a blob in the registry's storage, pulls
 * test/img:v1 into a fresh store, restores the blob; the pull must fail with
 * MERR_CORRUPT and leave nothing behind. */
static void pull_with_tampered_blob(struct env *e, int which, long offset, const char *bytes)
{
    char digest[72], data[1400];
    layout_layer_digest(e, which, digest);
    registry_blob_file(e, digest, data, sizeof data);
    assert_int_equal(run("cp %s %s/saved-blob", data, e->tmp), 0);
    assert_int_equal(run("printf '%s' | dd of=%s bs=1 seek=%ld conv=notrunc status=none", bytes,
                         data, offset),
                     0);
    assert_int_equal(run("rm -rf %s/store-tamper", e->tmp), 0);
    struct image_store *s = open_store(e, "store-tamper");
    struct events ev = { 0 };
    struct merr err = MERR_INIT;
    char *id = NULL;
    int r = pull(e, s, "test/img:v1", NULL, &ev, &id, &err);
    assert_int_equal(run("cp %s/saved-blob %s", e->tmp, data), 0);
    assert_int_equal(r, -1);
    assert_int_equal(err.code, MERR_CORRUPT);
    assert_null(id);
    /* nothing committed: no blob, layer, image or tag; temp files gone */
    assert_int_equal(dir_entries(e, "store-tamper", "blobs/sha256"), 0);
    assert_int_equal(dir_entries(e, "store-tamper", "layers/sha256"), 0);
    assert_int_equal(dir_entries(e, "store-tamper", "images/sha256"), 0);
    assert_int_equal(dir_entries(e, "store-tamper", "tmp"), 0);
    char rp[512];
    snprintf(rp, sizeof rp, "%s/store-tamper/repositories.json", e->tmp);
    assert_int_equal(access(rp, F_OK), -1);
    assert_null(strstr(ev.all != NULL ? ev.all : "", "Pull complete"));
    free(ev.all);

    /* with the blob restored the same store pulls fine */
    memset(&ev, 0, sizeof ev);
    if (pull(e, s, "test/img:v1", NULL, &ev, &id, &err) < 0)
        fail_msg("pull after restore: %s", err.msg);
    free(id);
    free(ev.all);
    image_store_free(s);
}

static void test_tampered_blob(void **state)
{
    struct env *e = *state;
    SKIP_IF_NEEDED(e);
    /* The registry keeps serving the file under the old digest (and says so in
     * Docker-Content-Digest). Both changes below leave content that parses and
     * extracts to the very same tree, so only the digest check can catch them:
     * the gzip header's MTIME of layer 0, which decompressors ignore ... */
    pull_with_tampered_blob(e, 0, 4, "XXXX");
    /* ... and one byte inside a JSON string of the config. */
    char digest[72], data[1400];
    layout_layer_digest(e, -1, digest);
    registry_blob_file(e, digest, data, sizeof data);
    FILE *f = fopen(data, "r");
    assert_non_null(f);
    char cfg[8192] = { 0 };
    assert_true(fread(cfg, 1, sizeof cfg - 1, f) > 0);
    fclose(f);
    const char *author = strstr(cfg, "machine-tests");
    assert_non_null(author);
    pull_with_tampered_blob(e, -1, (long)(author - cfg), "M");
}

static void test_config_disagrees_with_layers(void **state)
{
    struct env *e = *state;
    SKIP_IF_NEEDED(e);
    static const char *const refs[] = { "test/bad:diffid", "test/bad:count" };
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(run("rm -rf %s/store-case10", e->tmp), 0);
        struct image_store *s = open_store(e, "store-case10");
        struct events ev = { 0 };
        struct merr err = MERR_INIT;
        char *id = NULL;
        assert_int_equal(pull(e, s, refs[i], NULL, &ev, &id, &err), -1);
        assert_int_equal(err.code, MERR_CORRUPT);
        assert_int_equal(dir_entries(e, "store-case10", "layers/sha256"), 0);
        assert_int_equal(dir_entries(e, "store-case10", "images/sha256"), 0);
        assert_int_equal(dir_entries(e, "store-case10", "blobs/sha256"), 0);
        assert_int_equal(dir_entries(e, "store-case10", "tmp"), 0);
        free(ev.all);
        image_store_free(s);
    }
}

static void test_bad_references(void **state)
{
    struct env *e = *state;
    SKIP_IF_NEEDED(e);
    struct image_store *s = open_store(e, "store-bad");
    struct merr err = MERR_INIT;
    char *id = NULL;
    struct events ev = { 0 };
    static const char *const bad[] = {
        "test/img@sha256:../../../../etc/passwd",
        "test/img@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
        "test/img@sha256:0123",
        "test/IMG:v1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(pull(e, s, bad[i], NULL, &ev, &id, &err), -1);
        assert_int_equal(err.code, MERR_INVALID);
    }
    assert_null(ev.all); /* rejected before any request */
    assert_int_equal(pull(e, s, "test/img:missing", NULL, &ev, &id, &err), -1);
    assert_int_equal(err.code, MERR_NOT_FOUND);
    assert_int_equal(pull(e, s, "test/nothere:v1", NULL, &ev, &id, &err), -1);
    assert_int_equal(err.code, MERR_NOT_FOUND);
    free(ev.all);
    assert_int_equal(dir_entries(e, "store-bad", "blobs/sha256"), 0);
    image_store_free(s);
}

static void test_mirror_for_docker_io(void **state)
{
    struct env *e = *state;
    SKIP_IF_NEEDED(e);
    struct image_store *s = open_store(e, "store-mirror");
    char mirror[128];
    snprintf(mirror, sizeof mirror, "http://%s", e->addr);
    const char *mirrors[] = { mirror, NULL };
    struct registry_config rc = e->rc;
    rc.mirrors = mirrors;
    /* if the mirror failed, the fallback must stay on loopback too */
    rc.docker_io_endpoint = "http://127.0.0.1:9";
    struct events ev = { 0 };
    struct merr err = MERR_INIT;
    char *id = NULL;
    if (image_pull(s, &rc, "test/img:v1", NULL, NULL, on_progress, &ev, &id, &err) < 0)
        fail_msg("pull via mirror: %s", err.msg);
    assert_non_null(strstr(ev.all, "Status: Downloaded newer image for test/img:v1"));
    char *found = image_lookup(s, "docker.io/test/img:v1", &err);
    assert_non_null(found);
    free(found);
    free(id);
    free(ev.all);
    image_store_free(s);
}

static void test_kill_during_pull(void **state)
{
    struct env *e = *state;
    SKIP_IF_NEEDED(e);
    /* The child dies by SIGKILL in the middle of a layer download. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct merr err = MERR_INIT;
        char root[256];
        snprintf(root, sizeof root, "%s/store-crash", e->tmp);
        struct image_store *s = image_store_open(root, NULL, &err);
        struct events ev = { .kill_on = "\"Downloading\",\"progressDetail\":{\"current\":1" };
        char *id = NULL;
        if (s != NULL)
            (void)!pull(e, s, "test/img:v1", NULL, &ev, &id, &err);
        _exit(3); /* not reached when the kill happened */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    /* partial state is in tmp/ only; nothing under a digest is wrong */
    assert_true(dir_entries(e, "store-crash", "tmp") > 0);
    check_blobs(e, "store-crash");
    assert_int_equal(dir_entries(e, "store-crash", "images/sha256"), 0);
    /* restart: leftovers collected, and a re-pull succeeds */
    struct image_store *s = open_store(e, "store-crash");
    assert_int_equal(dir_entries(e, "store-crash", "tmp"), 0);
    struct events ev = { 0 };
    struct merr err = MERR_INIT;
    char *id = NULL;
    if (pull(e, s, "test/img:v1", NULL, &ev, &id, &err) < 0)
        fail_msg("re-pull: %s", err.msg);
    assert_int_equal(check_blobs(e, "store-crash"), 5);
    free(id);
    free(ev.all);
    image_store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pull_oci),
        cmocka_unit_test(test_repull_up_to_date),
        cmocka_unit_test(test_v2s2_same_image),
        cmocka_unit_test(test_multi_platform),
        cmocka_unit_test(test_list_and_inspect),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_zstd_layers),
        cmocka_unit_test(test_tampered_blob),
        cmocka_unit_test(test_config_disagrees_with_layers),
        cmocka_unit_test(test_bad_references),
        cmocka_unit_test(test_mirror_for_docker_io),
        cmocka_unit_test(test_kill_during_pull),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
