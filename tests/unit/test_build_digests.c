/* The context's file digests: taken by the extractor as it writes each file (the SHA-256 of the
 * contents, by inode), kept by build/digests.c, and used by COPY's checksum instead of reading
 * the file again — with the same checksum as reading it, and never for another file. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "build/builder.h"
#include "error.h"
#include "fsutil.h"
#include "layer/layer.h"
#include "tarw.h"

static void sha256(const void *data, size_t len, unsigned char out[32])
{
    unsigned n = 0;
    assert_int_equal(EVP_Digest(data, len, out, &n, EVP_sha256(), NULL), 1);
}

static struct layer_file_digest rec(dev_t dev, ino_t ino, uint64_t size, unsigned char fill)
{
    struct layer_file_digest d = { .dev = dev, .ino = ino, .size = size };
    memset(d.sha256, fill, sizeof d.sha256);
    return d;
}

static void test_table(void **state)
{
    (void)state;
    struct build_digests ds = { 0 };
    assert_null(build_digests_find(&ds, 1, 1, 0));
    assert_null(build_digests_find(NULL, 1, 1, 0));
    for (ino_t i = 200; i > 0; i--) {
        struct layer_file_digest d = rec(7, i, i * 10, (unsigned char)i);
        build_digests_add(&ds, &d);
    }
    struct layer_file_digest again = rec(7, 42, 5, 0xee); /* inode 42 written again, later */
    build_digests_add(&ds, &again);
    assert_null(build_digests_find(&ds, 7, 1, 10)); /* not sealed: nothing trusted yet */
    build_digests_seal(&ds);
    assert_int_equal(ds.n, 200);
    const unsigned char *got = build_digests_find(&ds, 7, 100, 1000);
    assert_non_null(got);
    assert_int_equal(got[0], 100);
    got = build_digests_find(&ds, 7, 42, 5);
    assert_non_null(got);
    assert_int_equal(got[0], 0xee);
    assert_null(build_digests_find(&ds, 7, 42, 420)); /* the replaced record */
    assert_null(build_digests_find(&ds, 7, 100, 1001)); /* another size: not this file */
    assert_null(build_digests_find(&ds, 8, 100, 1000)); /* another device */
    assert_null(build_digests_find(&ds, 7, 201, 2010));
    build_digests_release(&ds);
    assert_int_equal(ds.n, 0);
}

/* ---- a context tar, extracted with digests ---- */

struct mem {
    char *data;
    size_t len, cap, off;
};

static int mem_write(void *ctx, const void *buf, size_t len, struct merr *err)
{
    (void)err;
    struct mem *m = ctx;
    if (m->len + len > m->cap) {
        m->cap = (m->len + len) * 2;
        m->data = realloc(m->data, m->cap);
    }
    memcpy(m->data + m->len, buf, len);
    m->len += len;
    return 0;
}

static ssize_t mem_read(void *ctx, void *buf, size_t len, struct merr *err)
{
    (void)err;
    struct mem *m = ctx;
    size_t n = m->len - m->off < len ? m->len - m->off : len;
    memcpy(buf, m->data + m->off, n);
    m->off += n;
    return (ssize_t)n;
}

static void put_file(struct tarw *tw, const char *name, const char *body)
{
    struct merr err = MERR_INIT;
    struct tarw_meta m = { .name = name, .type = '0', .mode = 0644, .size = strlen(body) };
    assert_int_equal(tarw_entry(tw, &m, &err), 0);
    assert_int_equal(tarw_data(tw, body, strlen(body), &err), 0);
}

struct fx {
    char dir[64];
    char ctx[96];
    struct build_digests ds;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/test-build-digests-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->ctx, sizeof f->ctx, "%s/context", f->dir);
    assert_int_equal(mkdir(f->ctx, 0755), 0);
    struct mem m = { 0 };
    struct tarw tw = { .write = mem_write, .ctx = &m };
    struct merr err = MERR_INIT;
    struct tarw_meta d = { .name = "src/", .type = '5', .mode = 0755 };
    assert_int_equal(tarw_entry(&tw, &d, &err), 0);
    put_file(&tw, "src/a.txt", "alpha\n");
    put_file(&tw, "src/b.txt", "bravo bravo\n");
    put_file(&tw, "src/b.txt", "bravo, written again\n"); /* a later entry replaces it */
    struct tarw_meta l = { .name = "src/c.txt", .type = '1', .linkname = "src/a.txt" };
    assert_int_equal(tarw_entry(&tw, &l, &err), 0); /* a hardlink: no record of its own */
    put_file(&tw, "top.txt", "top\n");
    assert_int_equal(tarw_close(&tw, &err), 0);
    tarw_release(&tw);
    struct layer_result res;
    if (layer_extract_plain_reader(mem_read, &m, LAYER_COMP_NONE, f->ctx, NULL,
                                   build_digests_add, &f->ds, &res, &err) != 0)
        fail_msg("%s", err.msg);
    build_digests_seal(&f->ds);
    free(m.data);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    struct merr err = MERR_INIT;
    if (layer_remove_tree(f->dir, &err) < 0)
        fail_msg("%s", err.msg);
    build_digests_release(&f->ds);
    free(f);
    return 0;
}

static const unsigned char *find_path(struct fx *f, const char *rel)
{
    char p[160];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", f->ctx, rel);
    assert_int_equal(lstat(p, &st), 0);
    return build_digests_find(&f->ds, st.st_dev, st.st_ino, (uint64_t)st.st_size);
}

static void test_extractor_reports_contents(void **state)
{
    struct fx *f = *state;
    unsigned char want[32];
    sha256("alpha\n", 6, want);
    const unsigned char *got = find_path(f, "src/a.txt");
    assert_non_null(got);
    assert_memory_equal(got, want, 32);
    got = find_path(f, "src/c.txt"); /* the hardlink is the same inode: the same contents */
    assert_non_null(got);
    assert_memory_equal(got, want, 32);
    sha256("bravo, written again\n", 21, want);
    got = find_path(f, "src/b.txt");
    assert_non_null(got);
    assert_memory_equal(got, want, 32);
}

static char *checksum(struct fx *f, const char *src, const struct build_digests *ds)
{
    char *const srcs[] = { (char *)src, NULL };
    char work[96];
    snprintf(work, sizeof work, "%s/work", f->dir);
    mkdir(work, 0755);
    struct copy_spec spec = { .root = f->ctx, .srcs = srcs, .dest = "/app/", .dest_is_dir = true,
                              .uid = 0, .gid = 0, .chmod = -1, .work = work, .digests = ds };
    char *what = NULL;
    struct merr err = MERR_INIT;
    if (build_copy_tar(&spec, -1, &what, &err) != 0)
        fail_msg("%s", err.msg);
    return what;
}

static void test_copy_checksum_same_with_digests(void **state)
{
    struct fx *f = *state;
    const char *srcs[] = { "src", "src/a.txt", "." };
    for (size_t i = 0; i < sizeof srcs / sizeof srcs[0]; i++) {
        char *read_back = checksum(f, srcs[i], NULL);
        char *from_digests = checksum(f, srcs[i], &f->ds);
        assert_string_equal(read_back, from_digests);
        free(read_back);
        free(from_digests);
    }
}

/* A file changed after the extraction (not something the engine does; a size the record does
 * not have) is read again: the checksum follows the new contents. */
static void test_changed_file_is_read(void **state)
{
    struct fx *f = *state;
    char *before = checksum(f, "top.txt", &f->ds);
    char p[160];
    snprintf(p, sizeof p, "%s/top.txt", f->ctx);
    int fd = open(p, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "more\n", 5), 5);
    close(fd);
    char *after = checksum(f, "top.txt", &f->ds);
    char *read_back = checksum(f, "top.txt", NULL);
    assert_string_not_equal(before, after);
    assert_string_equal(after, read_back);
    free(before);
    free(after);
    free(read_back);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test_setup_teardown(test_extractor_reports_contents, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy_checksum_same_with_digests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed_file_is_read, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
