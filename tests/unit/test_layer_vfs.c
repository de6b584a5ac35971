#define MACHINE_LAYER_PRIV
/* engine/layer/vfs.c and naive.c: the vfs store's tree copy (hard links, symlinks, times),
 * a layer applied onto a chain directory (whiteout markers, opaque directories, replaced
 * types), dockerd's naive diff of a copy against its original, the tar of a change list, and
 * the pure rule for a changed path. Needs no root. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "cleanup.h"
#include "error.h"
#include "layer/layer-priv.h"
#include "layer/layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fx {
    char root[128];
    char a[160], b[160];
};

static void mk(const char *base, const char *rel, const char *content)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", base, rel);
    if (content == NULL) {
        assert_int_equal(mkdir(p, 0755), 0);
        return;
    }
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
}

static bool exists(const char *base, const char *rel)
{
    char p[512];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", base, rel);
    return lstat(p, &st) == 0;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    snprintf(f->root, sizeof f->root, "/tmp/test_layer_vfs.XXXXXX");
    assert_non_null(mkdtemp(f->root));
    snprintf(f->a, sizeof f->a, "%s/a", f->root);
    snprintf(f->b, sizeof f->b, "%s/b", f->root);
    assert_int_equal(mkdir(f->a, 0755), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    struct merr err = MERR_INIT;
    assert_int_equal(layer_remove_tree(f->root, &err), 0);
    free(f);
    return 0;
}

static void test_copy_keeps_links_and_times(void **state)
{
    struct fx *f = *state;
    struct merr err = MERR_INIT;
    mk(f->a, "d", NULL);
    mk(f->a, "d/file", "x");
    char p[512], q[512];
    snprintf(p, sizeof p, "%s/d/file", f->a);
    snprintf(q, sizeof q, "%s/d/link", f->a);
    assert_int_equal(link(p, q), 0);
    snprintf(q, sizeof q, "%s/sym", f->a);
    assert_int_equal(symlink("d/file", q), 0);
    struct timespec ts[2] = { { 1000, 0 }, { 1000, 0 } };
    snprintf(p, sizeof p, "%s/d", f->a);
    assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
    assert_int_equal(layer_copy_tree(f->a, f->b, &err), 0);
    struct stat s1, s2, sd;
    snprintf(p, sizeof p, "%s/d/file", f->b);
    snprintf(q, sizeof q, "%s/d/link", f->b);
    assert_int_equal(lstat(p, &s1), 0);
    assert_int_equal(lstat(q, &s2), 0);
    assert_true(s1.st_ino == s2.st_ino); /* still one inode */
    snprintf(p, sizeof p, "%s/d", f->b);
    assert_int_equal(lstat(p, &sd), 0);
    assert_int_equal(sd.st_mtim.tv_sec, 1000);
    char target[64] = { 0 };
    snprintf(p, sizeof p, "%s/sym", f->b);
    assert_int_equal(readlink(p, target, sizeof target - 1), 6);
    assert_string_equal(target, "d/file");
    /* a copy compares equal to its original */
    struct layer_changes c;
    assert_int_equal(layer_naive_changes(f->b, f->a, NULL, &c, &err), 0);
    assert_int_equal(c.n, 0);
    layer_changes_release(&c);
    /* the destination must not exist */
    assert_int_equal(layer_copy_tree(f->a, f->b, &err), -1);
    assert_int_equal(err.code, MERR_IO);
}

static void test_apply_markers(void **state)
{
    struct fx *f = *state;
    struct merr err = MERR_INIT;
    /* the chain so far */
    mk(f->a, "keep", "k");
    mk(f->a, "gone", "g");
    mk(f->a, "opq", NULL);
    mk(f->a, "opq/old", "o");
    mk(f->a, "dir", NULL);
    mk(f->a, "dir/old", "o");
    mk(f->a, "was-file", "f");
    /* the layer, as extraction with whiteout_files leaves it */
    assert_int_equal(mkdir(f->b, 0755), 0);
    mk(f->b, ".wh.gone", "");
    mk(f->b, "opq", NULL);
    mk(f->b, "opq/.wh..wh..opq", "");
    mk(f->b, "opq/new", "n");
    mk(f->b, "dir", NULL);
    mk(f->b, "dir/added", "a");
    mk(f->b, "was-file", NULL);
    mk(f->b, "was-file/inside", "i");
    mk(f->b, "keep", "replaced");
    assert_int_equal(layer_vfs_apply(f->b, f->a, &err), 0);
    assert_false(exists(f->a, "gone"));
    assert_false(exists(f->a, ".wh.gone"));
    assert_false(exists(f->a, "opq/old"));
    assert_false(exists(f->a, "opq/.wh..wh..opq"));
    assert_true(exists(f->a, "opq/new"));
    assert_true(exists(f->a, "dir/old"));
    assert_true(exists(f->a, "dir/added"));
    assert_true(exists(f->a, "was-file/inside"));
    char p[512], buf[16] = { 0 };
    snprintf(p, sizeof p, "%s/keep", f->a);
    int fd = open(p, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, buf, sizeof buf - 1), 8);
    close(fd);
    assert_string_equal(buf, "replaced");
}

static void test_apply_refuses_bad_whiteout(void **state)
{
    struct fx *f = *state;
    struct merr err = MERR_INIT;
    assert_int_equal(mkdir(f->b, 0755), 0);
    mk(f->b, ".wh.", "");
    assert_int_equal(layer_vfs_apply(f->b, f->a, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
}

static void test_naive_changes_and_tar(void **state)
{
    struct fx *f = *state;
    struct merr err = MERR_INIT;
    mk(f->a, "etc", NULL);
    mk(f->a, "etc/passwd", "root");
    mk(f->a, "etc/hosts", "h");
    mk(f->a, "data", NULL);
    mk(f->a, "data/a", "a");
    mk(f->a, "data/b", "b");
    mk(f->a, "old", NULL);
    mk(f->a, "old/x", "x");
    assert_int_equal(layer_copy_tree(f->a, f->b, &err), 0);
    mk(f->b, "data/a", "changed");
    char p[512];
    snprintf(p, sizeof p, "%s/data/b", f->b);
    assert_int_equal(unlink(p), 0);
    mk(f->b, "new", NULL);
    mk(f->b, "new/f", "f");
    snprintf(p, sizeof p, "%s/old/x", f->b);
    assert_int_equal(unlink(p), 0);
    snprintf(p, sizeof p, "%s/old", f->b);
    assert_int_equal(rmdir(p), 0);
    mk(f->b, "etc/hosts", "engine's"); /* a mount target: left out, /etc not changed */
    static const char *const skip[] = { "etc/hosts", NULL };
    struct layer_changes c;
    assert_int_equal(layer_naive_changes(f->b, f->a, skip, &c, &err), 0);
    static const char *const want[][2] = {
        { "C", "/data" }, { "C", "/data/a" }, { "D", "/data/b" },
        { "A", "/new" },  { "A", "/new/f" },  { "D", "/old" },
    };
    assert_int_equal(c.n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < c.n; i++) {
        const char *kind = c.v[i].kind == LAYER_CHANGE_ADD      ? "A"
                           : c.v[i].kind == LAYER_CHANGE_DELETE ? "D"
                                                                : "C";
        assert_string_equal(kind, want[i][0]);
        assert_string_equal(c.v[i].path, want[i][1]);
    }
    /* the commit layer: the entries of the changes, deletions as markers */
    char tar[512];
    snprintf(tar, sizeof tar, "%s/layer.tar", f->root);
    int fd = open(tar, O_RDWR | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    struct layer_result res;
    assert_int_equal(layer_tar_changes(f->b, &c, fd, &res, &err), 0);
    close(fd);
    layer_changes_release(&c);
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    assert_int_equal(archive_read_open_filename(a, tar, 10240), ARCHIVE_OK);
    static const char *const names[] = { "data/", "data/a", "data/.wh.b", "new/", "new/f",
                                         ".wh.old" };
    struct archive_entry *e;
    size_t n = 0;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        assert_true(n < sizeof names / sizeof names[0]);
        assert_string_equal(archive_entry_pathname(e), names[n++]);
    }
    assert_int_equal(n, sizeof names / sizeof names[0]);
    archive_read_free(a);
    assert_int_equal(strncmp(res.diff_id, "sha256:", 7), 0);
}

static void test_differ_pure(void **state)
{
    (void)state;
    struct stat o = { .st_mode = S_IFREG | 0644, .st_size = 3, .st_mtim = { 10, 5 } };
    struct stat n = o;
    assert_false(layer_naive_differ(&n, &o));
    n.st_mtim.tv_nsec = 0; /* Go's sameFsTime: one side without nanoseconds */
    assert_false(layer_naive_differ(&n, &o));
    n.st_mtim.tv_nsec = 6;
    assert_true(layer_naive_differ(&n, &o));
    n = o;
    n.st_size = 4;
    assert_true(layer_naive_differ(&n, &o));
    n = o;
    n.st_uid = 1;
    assert_true(layer_naive_differ(&n, &o));
    /* directories: size and mtime say nothing */
    struct stat od = { .st_mode = S_IFDIR | 0755, .st_size = 4096, .st_mtim = { 10, 0 } };
    struct stat nd = od;
    nd.st_size = 8192;
    nd.st_mtim.tv_sec = 99;
    assert_false(layer_naive_differ(&nd, &od));
    nd.st_mode = S_IFDIR | 0700;
    assert_true(layer_naive_differ(&nd, &od));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_copy_keeps_links_and_times, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_markers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_refuses_bad_whiteout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_naive_changes_and_tar, setup, teardown),
        cmocka_unit_test(test_differ_pure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
