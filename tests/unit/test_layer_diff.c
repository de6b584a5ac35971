/* engine/layer/diff.c: docker diff's change list of an overlay upper directory against its
 * lower layers, the init-path skip rules, and the commit layer tar (whiteouts, opaque
 * directories, skipped mount targets, determinism). Whiteouts (mknod) and opaque directories
 * (trusted.* xattrs) need root; those tests skip otherwise. */
#define MACHINE_LAYER_PRIV
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
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <unistd.h>

struct fx {
    char root[128];
    char upper[160], lower1[160], lower2[160];
};

static void mk(const char *base, const char *rel, mode_t mode)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", base, rel);
    if (S_ISDIR(mode)) {
        assert_int_equal(mkdir(p, mode & 07777), 0);
        return;
    }
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, mode & 07777);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, rel, strlen(rel)), (ssize_t)strlen(rel));
    close(fd);
}

/* Gives base/rel the mtime t (seconds), so directories compare equal across layers. */
static void set_mtime(const char *base, const char *rel, time_t t)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", base, rel);
    struct timespec ts[2] = { { t, 0 }, { t, 0 } };
    assert_int_equal(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static bool whiteout(const char *base, const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", base, rel);
    return mknod(p, S_IFCHR | 0, makedev(0, 0)) == 0;
}

static bool opaque(const char *base, const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", base, rel);
    return setxattr(p, "trusted.overlay.opaque", "y", 1, 0) == 0;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    snprintf(f->root, sizeof f->root, "/tmp/test_layer_diff.XXXXXX");
    assert_non_null(mkdtemp(f->root));
    snprintf(f->upper, sizeof f->upper, "%s/upper", f->root);
    snprintf(f->lower1, sizeof f->lower1, "%s/l1", f->root);
    snprintf(f->lower2, sizeof f->lower2, "%s/l2", f->root);
    assert_int_equal(mkdir(f->upper, 0755), 0);
    assert_int_equal(mkdir(f->lower1, 0755), 0);
    assert_int_equal(mkdir(f->lower2, 0755), 0);
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

/* "A /x\nC /y\n..." as docker diff prints it. */
static char *render(const struct layer_changes *c)
{
    size_t cap = 16;
    for (size_t i = 0; i < c->n; i++)
        cap += strlen(c->v[i].path) + 4;
    char *out = calloc(1, cap);
    for (size_t i = 0; i < c->n; i++) {
        strcat(out, c->v[i].kind == LAYER_CHANGE_ADD      ? "A "
                    : c->v[i].kind == LAYER_CHANGE_DELETE ? "D "
                                                          : "C ");
        strcat(out, c->v[i].path);
        strcat(out, "\n");
    }
    return out;
}

static char *changes_of(struct fx *f, const char *const *skip)
{
    const char *lowers[] = { f->lower1, f->lower2, NULL };
    struct layer_changes c;
    struct merr err = MERR_INIT;
    if (layer_diff_changes(f->upper, lowers, skip, &c, &err) < 0)
        fail_msg("layer_diff_changes: %s", err.msg);
    char *s = render(&c);
    layer_changes_release(&c);
    return s;
}

/* Adds, modifications, unchanged directories, a new file's parent. */
static void test_add_modify(void **state)
{
    struct fx *f = *state;
    /* lower2 (bottom): /etc/passwd, /bin/sh, /usr/lib/x; lower1: /etc/group */
    mk(f->lower2, "etc", S_IFDIR | 0755);
    mk(f->lower2, "etc/passwd", S_IFREG | 0644);
    mk(f->lower2, "bin", S_IFDIR | 0755);
    mk(f->lower2, "bin/sh", S_IFREG | 0755);
    mk(f->lower2, "usr", S_IFDIR | 0755);
    mk(f->lower2, "usr/lib", S_IFDIR | 0755);
    mk(f->lower1, "etc", S_IFDIR | 0755);
    mk(f->lower1, "etc/group", S_IFREG | 0644);
    /* upper: /etc/passwd changed (copy-up), /usr/lib/new added, /usr copied up unchanged */
    mk(f->upper, "etc", S_IFDIR | 0755);
    mk(f->upper, "etc/passwd", S_IFREG | 0644);
    mk(f->upper, "usr", S_IFDIR | 0755);
    mk(f->upper, "usr/lib", S_IFDIR | 0755);
    mk(f->upper, "usr/lib/new", S_IFREG | 0600);
    mk(f->upper, "zz", S_IFDIR | 0700);
    mk(f->upper, "zz/file", S_IFREG | 0600);
    set_mtime(f->lower2, "usr", 1000);
    set_mtime(f->upper, "usr", 1000);
    set_mtime(f->lower1, "etc", 2000);
    set_mtime(f->upper, "etc", 2000);
    auto_free char *got = changes_of(f, NULL);
    /* /etc is not reported for itself (same mode, size, mtime as the top lower /etc) and a
     * modified child does not name its parent; /usr/lib changed (new file) */
    assert_string_equal(got, "C /etc/passwd\n"
                             "C /usr/lib\n"
                             "A /usr/lib/new\n"
                             "A /zz\n"
                             "A /zz/file\n");
}

/* A whiteout is a deletion and names its parent once; an opaque directory that existed below
 * is a deletion followed by its new contents. */
static void test_delete_and_opaque(void **state)
{
    struct fx *f = *state;
    if (getuid() != 0)
        skip(); /* mknod and trusted.* xattrs need root */
    mk(f->lower2, "etc", S_IFDIR | 0755);
    mk(f->lower2, "etc/motd", S_IFREG | 0644);
    mk(f->lower2, "etc/issue", S_IFREG | 0644);
    mk(f->lower2, "var", S_IFDIR | 0755);
    mk(f->lower2, "var/old", S_IFREG | 0644);
    mk(f->upper, "etc", S_IFDIR | 0755);
    assert_true(whiteout(f->upper, "etc/issue"));
    assert_true(whiteout(f->upper, "etc/motd"));
    mk(f->upper, "var", S_IFDIR | 0755);
    assert_true(opaque(f->upper, "var"));
    mk(f->upper, "var/new", S_IFREG | 0644);
    mk(f->upper, "fresh", S_IFDIR | 0755);
    assert_true(opaque(f->upper, "fresh")); /* opaque but new: an addition */
    set_mtime(f->lower2, "etc", 3000);
    set_mtime(f->upper, "etc", 3000);
    auto_free char *got = changes_of(f, NULL);
    assert_string_equal(got, "C /etc\n"
                             "D /etc/issue\n"
                             "D /etc/motd\n"
                             "A /fresh\n"
                             "D /var\n"
                             "A /var/new\n");
}

/* The engine's own mount targets never show; a directory holding only them neither. */
static void test_skip_init_paths(void **state)
{
    struct fx *f = *state;
    mk(f->lower2, "etc", S_IFDIR | 0755);
    mk(f->upper, "etc", S_IFDIR | 0755);
    mk(f->upper, "etc/hosts", S_IFREG | 0644);
    mk(f->upper, "etc/resolv.conf", S_IFREG | 0644);
    mk(f->upper, "proc", S_IFDIR | 0555);
    mk(f->upper, "dev", S_IFDIR | 0755);
    mk(f->upper, "dev/pts", S_IFDIR | 0755);
    mk(f->upper, "dev/shm", S_IFDIR | 0755);
    mk(f->upper, ".dockerenv", S_IFREG | 0644);
    auto_free char *none = changes_of(f, layer_init_paths);
    assert_string_equal(none, "");
    /* without the skip list they are there */
    auto_free char *all = changes_of(f, NULL);
    assert_non_null(strstr(all, "A /etc/hosts\n"));
    assert_non_null(strstr(all, "A /proc\n"));
    /* a real change next to them shows, and its directory with it */
    mk(f->upper, "etc/added", S_IFREG | 0644);
    auto_free char *one = changes_of(f, layer_init_paths);
    assert_string_equal(one, "C /etc\nA /etc/added\n");
}

static void test_skip_pure(void **state)
{
    (void)state;
    const char *skip[] = { "etc/hosts", "dev/pts", NULL };
    assert_true(layer_skip_listed("etc/hosts", skip));
    assert_false(layer_skip_listed("etc/host", skip));
    assert_false(layer_skip_listed("etc", skip));
    assert_true(layer_skip_is_ancestor("etc", skip));
    assert_true(layer_skip_is_ancestor("dev", skip));
    assert_false(layer_skip_is_ancestor("et", skip));
    assert_false(layer_skip_is_ancestor("etc/hosts", skip));
    assert_false(layer_skip_listed("x", NULL));
}

/* Names and headers of a tar in order: "name type mode mtime\n". */
static char *tar_listing(int fd)
{
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    assert_int_equal(archive_read_open_fd(a, fd, 4096), ARCHIVE_OK);
    size_t cap = 4096, len = 0;
    char *out = calloc(1, cap);
    struct archive_entry *e;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        char line[600];
        int n = snprintf(line, sizeof line, "%s %c %o %lld\n", archive_entry_pathname(e),
                         archive_entry_filetype(e) == AE_IFDIR ? 'd' : 'f',
                         (unsigned)archive_entry_perm(e), (long long)archive_entry_mtime(e));
        if (len + (size_t)n + 1 > cap)
            out = realloc(out, cap *= 2);
        memcpy(out + len, line, (size_t)n + 1);
        len += (size_t)n;
    }
    archive_read_free(a);
    return out;
}

/* The commit layer: sorted, OCI whiteouts, opaque marker, mount targets left out, same bytes
 * for the same tree. */
static void test_layer_tar(void **state)
{
    struct fx *f = *state;
    bool root = getuid() == 0;
    mk(f->upper, "etc", S_IFDIR | 0755);
    mk(f->upper, "etc/hosts", S_IFREG | 0644);
    mk(f->upper, "etc/new", S_IFREG | 0640);
    mk(f->upper, "proc", S_IFDIR | 0555);
    mk(f->upper, "b", S_IFDIR | 0750);
    if (root) {
        assert_true(whiteout(f->upper, "etc/gone"));
        assert_true(opaque(f->upper, "b"));
    }
    set_mtime(f->upper, "etc/new", 1234);
    set_mtime(f->upper, "etc", 5678);
    set_mtime(f->upper, "b", 42);
    if (root)
        set_mtime(f->upper, "etc/gone", 99);
    int fd = memfd_create("layer", MFD_CLOEXEC);
    struct layer_result res, res2;
    struct merr err = MERR_INIT;
    if (layer_tar_dir_skip(f->upper, fd, layer_init_paths, &res, &err) < 0)
        fail_msg("layer_tar_dir_skip: %s", err.msg);
    auto_free char *list = tar_listing(fd);
    if (root)
        assert_string_equal(list, "b/ d 750 42\n"
                                  "b/.wh..wh..opq f 750 0\n"
                                  "etc/ d 755 5678\n"
                                  "etc/.wh.gone f 0 99\n"
                                  "etc/new f 640 1234\n");
    else
        assert_string_equal(list, "b/ d 750 42\n"
                                  "etc/ d 755 5678\n"
                                  "etc/new f 640 1234\n");
    close(fd);
    fd = memfd_create("layer", MFD_CLOEXEC);
    assert_int_equal(layer_tar_dir_skip(f->upper, fd, layer_init_paths, &res2, &err), 0);
    close(fd);
    assert_string_equal(res.diff_id, res2.diff_id);
    assert_int_equal(res.size, res2.size);
    /* without the skip list the mount targets are in the layer */
    fd = memfd_create("layer", MFD_CLOEXEC);
    assert_int_equal(layer_tar_dir(f->upper, fd, &res2, &err), 0);
    auto_free char *full = tar_listing(fd);
    close(fd);
    assert_non_null(strstr(full, "etc/hosts f"));
    assert_non_null(strstr(full, "proc/ d"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_add_modify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_and_opaque, setup, teardown),
        cmocka_unit_test_setup_teardown(test_skip_init_paths, setup, teardown),
        cmocka_unit_test(test_skip_pure),
        cmocka_unit_test_setup_teardown(test_layer_tar, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
