/* engine/layer: hardened layer extraction (security cases 12-17) and
 * layer_tar_dir. Tar streams are built here with libarchive's writer. Tests that
 * need root (mknod, trusted.* xattrs, chown) skip with a reason otherwise. */
#define MACHINE_LAYER_PRIV
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "error.h"
#include "layer/layer-priv.h"
#include "layer/layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

/* ---- byte buffers and tar building ---- */

struct buf {
    unsigned char *data;
    size_t len, cap;
};

static void buf_append(struct buf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        b->data = realloc(b->data, cap);
        assert_non_null(b->data);
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void buf_free(struct buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

static la_ssize_t tb_write(struct archive *a, void *ud, const void *p, size_t n)
{
    (void)a;
    buf_append(ud, p, n);
    return (la_ssize_t)n;
}

struct tarb {
    struct archive *a;
    struct buf out;
};

static struct tarb *tb_new(void)
{
    struct tarb *tb = calloc(1, sizeof *tb);
    assert_non_null(tb);
    tb->a = archive_write_new();
    assert_int_equal(archive_write_set_format_pax_restricted(tb->a), ARCHIVE_OK);
    assert_int_equal(archive_write_add_filter_none(tb->a), ARCHIVE_OK);
    assert_int_equal(archive_write_set_bytes_in_last_block(tb->a, 1), ARCHIVE_OK);
    assert_int_equal(archive_write_open(tb->a, &tb->out, NULL, tb_write, NULL), ARCHIVE_OK);
    return tb;
}

static struct archive_entry *tb_entry(const char *name, mode_t type, mode_t perm)
{
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, perm);
    archive_entry_set_mtime(e, 1500000000, 0);
    return e;
}

static void tb_put(struct tarb *tb, struct archive_entry *e, const void *data, size_t len)
{
    /* libarchive's pax writer needs a UTF-8 locale for names set with
     * _utf8 (it crashes in "C"); the extractor itself runs in "C". */
    locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    assert_true(utf8 != (locale_t)0);
    locale_t old = uselocale(utf8);
    int r = archive_write_header(tb->a, e);
    uselocale(old);
    freelocale(utf8);
    assert_true(r >= ARCHIVE_WARN);
    if (len > 0)
        assert_int_equal(archive_write_data(tb->a, data, len), (la_ssize_t)len);
    archive_entry_free(e);
}

static void tb_file(struct tarb *tb, const char *name, mode_t perm, const char *content)
{
    struct archive_entry *e = tb_entry(name, AE_IFREG, perm);
    archive_entry_set_size(e, (la_int64_t)strlen(content));
    tb_put(tb, e, content, strlen(content));
}

static void tb_dir(struct tarb *tb, const char *name, mode_t perm)
{
    tb_put(tb, tb_entry(name, AE_IFDIR, perm), NULL, 0);
}

static void tb_symlink(struct tarb *tb, const char *name, const char *target)
{
    struct archive_entry *e = tb_entry(name, AE_IFLNK, 0777);
    archive_entry_set_symlink(e, target);
    tb_put(tb, e, NULL, 0);
}

static void tb_hardlink(struct tarb *tb, const char *name, const char *target, mode_t perm)
{
    struct archive_entry *e = tb_entry(name, AE_IFREG, perm);
    archive_entry_set_hardlink(e, target);
    archive_entry_set_size(e, 0);
    tb_put(tb, e, NULL, 0);
}

static void tb_dev(struct tarb *tb, const char *name, mode_t type, unsigned long maj, unsigned long min)
{
    struct archive_entry *e = tb_entry(name, type, 0644);
    archive_entry_set_rdevmajor(e, maj);
    archive_entry_set_rdevminor(e, min);
    tb_put(tb, e, NULL, 0);
}

static struct buf tb_finish(struct tarb *tb)
{
    assert_int_equal(archive_write_close(tb->a), ARCHIVE_OK);
    archive_write_free(tb->a);
    struct buf out = tb->out;
    free(tb);
    return out;
}

static struct buf gzip_bytes(const struct buf *in)
{
    struct buf out = { 0 };
    z_stream z = { 0 };
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, in->len) + 64;
    out.data = malloc(cap);
    out.cap = cap;
    z.next_in = in->data;
    z.avail_in = (uInt)in->len;
    z.next_out = out.data;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    out.len = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

static struct buf zstd_bytes(const struct buf *in)
{
    struct buf out = { 0 };
    out.cap = ZSTD_compressBound(in->len);
    out.data = malloc(out.cap);
    size_t n = ZSTD_compress(out.data, out.cap, in->data, in->len, 3);
    assert_false(ZSTD_isError(n));
    out.len = n;
    return out;
}

static void sha256_diff_id(const void *p, size_t n, char out[LAYER_DIFF_ID_LEN])
{
    unsigned char d[32];
    unsigned int len = 0;
    assert_int_equal(EVP_Digest(p, n, d, &len, EVP_sha256(), NULL), 1);
    layer_format_diff_id(d, out);
}

/* ---- fixture: T/a/b/dest with sentinels outside dest ---- */

struct fx {
    char root[PATH_MAX];
    char dest[PATH_MAX + 16];
    char sentinel[PATH_MAX + 16];
    char victim[PATH_MAX + 16];
    struct layer_extract_opts opts;
    char *snapshot;
};

static const struct layer_extract_opts USE_OPENAT2 = { .force_fallback_resolve = false };
static const struct layer_extract_opts USE_FALLBACK = { .force_fallback_resolve = true };
static const struct layer_extract_opts AS_USERNS = { .assume_userns = true };

static bool privileged(void)
{
    char buf[256] = { 0 };
    FILE *f = fopen("/proc/self/uid_map", "re");
    if (f != NULL) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose(f);
    }
    return geteuid() == 0 && layer_uid_map_is_initial(buf);
}

#define SKIP_UNLESS_ROOT(why)                                                                      \
    do {                                                                                           \
        if (!privileged()) {                                                                       \
            print_message("skipped: needs root outside a user namespace (%s)\n", why);             \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

static void write_text(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return NULL;
    char *s = calloc(1, 4096);
    size_t n = fread(s, 1, 4095, f);
    s[n] = '\0';
    fclose(f);
    return s;
}

/* Everything under dir except `skip`, one line per entry with its metadata. */
static void snapshot_into(const char *dir, const char *skip_path, struct buf *out)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char path[PATH_MAX * 2];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (strcmp(path, skip_path) == 0)
            continue;
        struct stat st;
        assert_int_equal(lstat(path, &st), 0);
        char line[PATH_MAX * 2 + 128];
        int n = snprintf(line, sizeof line, "%s %o %lu %lld %ld.%ld %lu\n", path, st.st_mode,
                         (unsigned long)st.st_nlink, (long long)st.st_size, (long)st.st_mtim.tv_sec,
                         st.st_mtim.tv_nsec, (unsigned long)st.st_ino);
        buf_append(out, line, (size_t)n);
        if (S_ISDIR(st.st_mode))
            snapshot_into(path, skip_path, out);
    }
    closedir(d);
}

static char *snapshot(const struct fx *f)
{
    struct buf b = { 0 };
    snapshot_into(f->root, f->dest, &b);
    buf_append(&b, "", 1);
    return (char *)b.data;
}

static int fx_setup(void **state)
{
    const struct layer_extract_opts *opts = *state;
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(f->root, sizeof f->root, "%s/layer-test-XXXXXX", tmp);
    assert_non_null(mkdtemp(f->root));
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/a", f->root);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/a/b", f->root);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/a/etc", f->root);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/a/etc/passwd", f->root);
    write_text(p, "root:x:0:0\n", 0644);
    snprintf(f->dest, sizeof f->dest, "%s/a/b/dest", f->root);
    assert_int_equal(mkdir(f->dest, 0755), 0);
    snprintf(f->sentinel, sizeof f->sentinel, "%s/sentinel", f->root);
    write_text(f->sentinel, "do not touch\n", 0644);
    snprintf(f->victim, sizeof f->victim, "%s/a/victim", f->root);
    write_text(f->victim, "victim\n", 0600);
    f->opts = opts != NULL ? *opts : USE_OPENAT2;
    f->snapshot = snapshot(f);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    struct merr err = MERR_INIT;
    assert_int_equal(layer_remove_tree(f->root, &err), 0);
    free(f->snapshot);
    free(f);
    return 0;
}

/* Nothing outside dest changed: same entries, modes, sizes, times. */
static void assert_outside_unchanged(const struct fx *f)
{
    char *now = snapshot(f);
    assert_string_equal(now, f->snapshot);
    free(now);
    char *s = read_text(f->sentinel);
    assert_string_equal(s, "do not touch\n");
    free(s);
}

static int extract_buf(const struct fx *f, const struct buf *b, enum layer_compression comp,
                       const struct layer_limits *lim, struct layer_result *res, struct merr *err)
{
    int fd = memfd_create("layer", MFD_CLOEXEC);
    assert_true(fd >= 0);
    if (b->len > 0)
        assert_int_equal(write(fd, b->data, b->len), (ssize_t)b->len);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    struct layer_result local;
    int r = layer_extract_fd_opts(fd, comp, f->dest, lim, &f->opts, res != NULL ? res : &local, err);
    close(fd);
    return r;
}

/* Extracts a one-off tar into f->dest and returns the error code. */
static enum merr_code extract_code(const struct fx *f, struct buf b)
{
    struct merr err = MERR_INIT;
    int r = extract_buf(f, &b, LAYER_COMP_NONE, NULL, NULL, &err);
    buf_free(&b);
    if (r == 0)
        return MERR_OK;
    print_message("extraction refused: %s\n", err.msg);
    assert_int_not_equal(err.code, MERR_OK);
    return err.code;
}

static char *dest_path(const struct fx *f, const char *rel)
{
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", f->dest, rel) > 0);
    return p;
}

static void assert_lstat(const struct fx *f, const char *rel, struct stat *st)
{
    char *p = dest_path(f, rel);
    if (lstat(p, st) != 0)
        fail_msg("'%s' missing: %s", p, strerror(errno));
    free(p);
}

/* Empties dest without removing it (keeps the parent's mtime for the snapshot). */
static void reset_dest(const struct fx *f)
{
    int fd = open(f->dest, O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    DIR *d = fdopendir(dup(fd));
    assert_non_null(d);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        names = realloc(names, (n + 1) * sizeof *names);
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    for (size_t i = 0; i < n; i++) {
        struct merr err = MERR_INIT;
        if (layer_remove_at(fd, names[i], &err) != 0)
            fail_msg("%s", err.msg);
        free(names[i]);
    }
    free(names);
    assert_int_equal(fchmod(fd, 0755), 0);
    close(fd);
}

static bool dest_exists(const struct fx *f, const char *rel)
{
    struct stat st;
    char *p = dest_path(f, rel);
    bool r = lstat(p, &st) == 0;
    free(p);
    return r;
}

/* ---- pure helpers ---- */

static void test_clean_path(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } ok[] = {
        { "a/b/c", "a/b/c" }, { "./a//b/", "a/b" },  { "/abs/x", "abs/x" }, { "/../x", "x" },
        { "/../../..", "" },  { "a/../b", "b" },     { ".", "" },           { "", "" },
        { "a/./b/..", "a" },  { "/a/../../b", "b" }, { ".wh..", ".wh.." },
    };
    char out[PATH_MAX];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        struct merr err = MERR_INIT;
        assert_int_equal(layer_clean_path(ok[i].in, out, sizeof out, &err), 0);
        assert_string_equal(out, ok[i].out);
    }
    static const char *bad[] = { "..", "../x", "../../etc/passwd", "a/../../x", "./.." };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct merr err = MERR_INIT;
        assert_int_equal(layer_clean_path(bad[i], out, sizeof out, &err), -1);
        assert_int_equal(err.code, MERR_INVALID);
    }
}

static void test_symlink_escapes(void **state)
{
    (void)state;
    assert_false(layer_symlink_escapes("", "/"));
    assert_false(layer_symlink_escapes("", "usr/lib"));
    assert_false(layer_symlink_escapes("a/b", "../../x"));
    assert_false(layer_symlink_escapes("a", "./../."));
    assert_true(layer_symlink_escapes("", ".."));
    assert_true(layer_symlink_escapes("a/b", "../../../etc"));
    assert_true(layer_symlink_escapes("a", "x/../../.."));
}

static void test_uid_map(void **state)
{
    (void)state;
    assert_true(layer_uid_map_is_initial("         0          0 4294967295\n"));
    assert_false(layer_uid_map_is_initial("         0       1000          1\n"));
    assert_false(layer_uid_map_is_initial("0 100000 65536\n"));
    assert_false(layer_uid_map_is_initial("0 0 1000\n1000 2000 1\n"));
    assert_false(layer_uid_map_is_initial(""));
}

/* ---- normal layers ---- */

#define LONG_NAME                                                                                  \
    "long/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
    "/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static struct buf normal_layer(void)
{
    struct tarb *tb = tb_new();
    tb_dir(tb, "etc/", 0755);
    tb_file(tb, "etc/hostname", 0644, "box\n");
    tb_dir(tb, "ro/", 0555);
    tb_file(tb, "ro/inside", 0400, "sealed\n");
    tb_dir(tb, "usr/", 0750);
    tb_dir(tb, "usr/bin/", 0755);
    tb_file(tb, "usr/bin/tool", 04755, "#!/bin/sh\n");
    tb_symlink(tb, "usr/bin/alias", "tool");
    tb_symlink(tb, "lib", "usr/lib");
    tb_hardlink(tb, "usr/bin/tool2", "usr/bin/tool", 0644);
    tb_file(tb, "implicit/parent/file", 0640, "x");
    /* a UTF-8 name in a pax header (what Go writes) and a name past ustar's 100 bytes */
    struct archive_entry *u = tb_entry("", AE_IFREG, 0644);
    archive_entry_set_pathname_utf8(u, "caf\xc3\xa9/na\xc3\xafve.txt");
    archive_entry_set_size(u, 1);
    tb_put(tb, u, "u", 1);
    tb_file(tb, LONG_NAME, 0644, "long");
    struct archive_entry *e = tb_entry("owned", AE_IFREG, 0600);
    archive_entry_set_uid(e, 1234);
    archive_entry_set_gid(e, 5678);
    archive_entry_set_size(e, 2);
    tb_put(tb, e, "hi", 2);
    return tb_finish(tb);
}

static void test_normal_layer(void **state)
{
    struct fx *f = *state;
    struct buf tar = normal_layer();
    struct layer_result res;
    struct merr err = MERR_INIT;
    assert_int_equal(extract_buf(f, &tar, LAYER_COMP_NONE, NULL, &res, &err), 0);
    char want[LAYER_DIFF_ID_LEN];
    sha256_diff_id(tar.data, tar.len, want);
    assert_string_equal(res.diff_id, want);
    assert_int_equal(res.size, tar.len);

    struct stat st, st2;
    char *s = dest_path(f, "etc/hostname");
    char *text = read_text(s);
    assert_string_equal(text, "box\n");
    free(text);
    free(s);
    assert_lstat(f, "etc/hostname", &st);
    assert_int_equal(st.st_mode & 07777, 0644);
    assert_int_equal(st.st_mtim.tv_sec, 1500000000);
    /* Directory modes and times are applied after their children were written. */
    assert_lstat(f, "ro", &st);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0555);
    assert_int_equal(st.st_mtim.tv_sec, 1500000000);
    assert_lstat(f, "ro/inside", &st);
    assert_int_equal(st.st_mode & 07777, 0400);
    assert_lstat(f, "usr", &st);
    assert_int_equal(st.st_mode & 07777, 0750);
    assert_lstat(f, "usr/bin/tool", &st);
    assert_int_equal(st.st_mode & 07777, 04755);
    /* A hardlink shares the inode and does not impose its own mode. */
    assert_lstat(f, "usr/bin/tool2", &st2);
    assert_int_equal(st.st_ino, st2.st_ino);
    assert_int_equal(st2.st_mode & 07777, 04755);
    assert_lstat(f, "usr/bin/alias", &st);
    assert_true(S_ISLNK(st.st_mode));
    char target[64] = { 0 };
    s = dest_path(f, "lib");
    assert_int_equal(readlink(s, target, sizeof target - 1), 7);
    assert_string_equal(target, "usr/lib");
    free(s);
    assert_lstat(f, "implicit/parent", &st);
    assert_int_equal(st.st_mode & 07777, 0755);
    assert_lstat(f, "caf\xc3\xa9/na\xc3\xafve.txt", &st);
    assert_int_equal(st.st_size, 1);
    assert_lstat(f, LONG_NAME, &st);
    assert_int_equal(st.st_size, 4);
    assert_lstat(f, "owned", &st);
    if (privileged()) {
        assert_int_equal(st.st_uid, 1234);
        assert_int_equal(st.st_gid, 5678);
    }
    assert_outside_unchanged(f);
    buf_free(&tar);
}

static void test_compression_same_diff_id(void **state)
{
    struct fx *f = *state;
    struct buf tar = normal_layer();
    /* dockerd-style trailing record padding is part of the DiffID */
    static const unsigned char zeros[4096];
    buf_append(&tar, zeros, sizeof zeros);
    char want[LAYER_DIFF_ID_LEN];
    sha256_diff_id(tar.data, tar.len, want);
    struct buf gz = gzip_bytes(&tar), zs = zstd_bytes(&tar);
    struct {
        const struct buf *b;
        enum layer_compression comp;
    } cases[] = {
        { &tar, LAYER_COMP_NONE }, { &tar, LAYER_COMP_DETECT }, { &gz, LAYER_COMP_GZIP },
        { &gz, LAYER_COMP_DETECT }, { &zs, LAYER_COMP_ZSTD },   { &zs, LAYER_COMP_DETECT },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct merr err = MERR_INIT;
        struct layer_result res;
        if (extract_buf(f, cases[i].b, cases[i].comp, NULL, &res, &err) != 0)
            fail_msg("case %zu: %s", i, err.msg);
        assert_string_equal(res.diff_id, want);
        assert_int_equal(res.size, tar.len);
        reset_dest(f);
    }
    /* Two gzip members are one stream, as with gzip -d. */
    struct buf half1 = { 0 }, half2 = { 0 };
    buf_append(&half1, tar.data, tar.len / 2);
    buf_append(&half2, tar.data + tar.len / 2, tar.len - tar.len / 2);
    struct buf g1 = gzip_bytes(&half1), g2 = gzip_bytes(&half2);
    buf_append(&g1, g2.data, g2.len);
    struct merr err = MERR_INIT;
    struct layer_result res;
    assert_int_equal(extract_buf(f, &g1, LAYER_COMP_GZIP, NULL, &res, &err), 0);
    assert_string_equal(res.diff_id, want);
    buf_free(&half1);
    buf_free(&half2);
    buf_free(&g1);
    buf_free(&g2);
    buf_free(&tar);
    buf_free(&gz);
    buf_free(&zs);
}

/* A reader source (a request body): pieces of a few bytes at a time, plain or gzip; its error
 * ends the extraction with that error; no DiffID, the size only. */
struct piece_reader {
    const struct buf *b;
    size_t off;
    bool fail_at_half;
};

static ssize_t read_pieces(void *ctx, void *buf, size_t len, struct merr *err)
{
    struct piece_reader *r = ctx;
    if (r->fail_at_half && r->off >= r->b->len / 2)
        return merr_set(err, MERR_IO, 0, "the client went away");
    size_t n = r->b->len - r->off < 7 ? r->b->len - r->off : 7;
    n = n < len ? n : len;
    memcpy(buf, r->b->data + r->off, n);
    r->off += n;
    return (ssize_t)n;
}

static void test_reader_source(void **state)
{
    struct fx *f = *state;
    struct buf tar = normal_layer();
    struct buf gz = gzip_bytes(&tar);
    const struct buf *cases[] = { &tar, &gz };
    for (size_t i = 0; i < 2; i++) {
        struct piece_reader r = { cases[i], 0, false };
        struct layer_result res = { .diff_id = "x" };
        struct merr err = MERR_INIT;
        if (layer_extract_plain_reader(read_pieces, &r, LAYER_COMP_DETECT, f->dest, NULL, NULL, NULL, &res,
                                       &err) != 0)
            fail_msg("case %zu: %s", i, err.msg);
        assert_int_equal(res.size, tar.len);
        assert_string_equal(res.diff_id, "");
        char *p = dest_path(f, "usr/bin/tool");
        char *text = read_text(p);
        assert_string_equal(text, "#!/bin/sh\n");
        free(text);
        free(p);
        reset_dest(f);
    }
    struct piece_reader r = { &tar, 0, true };
    struct layer_result res;
    struct merr err = MERR_INIT;
    assert_int_equal(layer_extract_plain_reader(read_pieces, &r, LAYER_COMP_NONE, f->dest, NULL, NULL, NULL,
                                                &res, &err), -1);
    assert_non_null(strstr(err.msg, "the client went away"));
    buf_free(&tar);
    buf_free(&gz);
}

static void test_corrupt_streams(void **state)
{
    struct fx *f = *state;
    struct buf tar = normal_layer();
    struct buf gz = gzip_bytes(&tar), zs = zstd_bytes(&tar);
    struct merr err = MERR_INIT;
    /* a plain tar announced as gzip, truncated gzip and zstd, garbage */
    assert_int_equal(extract_buf(f, &tar, LAYER_COMP_GZIP, NULL, NULL, &err), -1);
    assert_int_equal(err.code, MERR_CORRUPT);
    gz.len -= 20;
    assert_int_equal(extract_buf(f, &gz, LAYER_COMP_GZIP, NULL, NULL, &err), -1);
    assert_int_equal(err.code, MERR_CORRUPT);
    zs.len -= 20;
    assert_int_equal(extract_buf(f, &zs, LAYER_COMP_DETECT, NULL, NULL, &err), -1);
    assert_int_equal(err.code, MERR_CORRUPT);
    struct buf junk = { 0 };
    buf_append(&junk, "this is not a tar archive at all, not even close.......", 56);
    assert_int_equal(extract_buf(f, &junk, LAYER_COMP_DETECT, NULL, NULL, &err), -1);
    assert_int_equal(err.code, MERR_CORRUPT);
    /* an empty stream is an empty layer */
    struct buf empty = { 0 };
    struct layer_result res;
    assert_int_equal(extract_buf(f, &empty, LAYER_COMP_DETECT, NULL, &res, &err), 0);
    char want[LAYER_DIFF_ID_LEN];
    sha256_diff_id("", 0, want);
    assert_string_equal(res.diff_id, want);
    assert_outside_unchanged(f);
    buf_free(&tar);
    buf_free(&gz);
    buf_free(&zs);
    buf_free(&junk);
}

/* ---- case 12: names that climb out ---- */

static void test_path_escapes(void **state)
{
    struct fx *f = *state;
    char host_x[64], host_abs[64], name[80];
    snprintf(host_x, sizeof host_x, "/machine-layer-x-%d", (int)getpid());
    snprintf(host_abs, sizeof host_abs, "/machine-layer-abs-%d", (int)getpid());

    struct tarb *tb = tb_new();
    tb_file(tb, "../../etc/passwd", 0644, "pwned\n");
    assert_int_equal(extract_code(f, tb_finish(tb)), MERR_INVALID);
    tb = tb_new();
    tb_file(tb, "../victim", 0644, "pwned\n");
    assert_int_equal(extract_code(f, tb_finish(tb)), MERR_INVALID);
    tb = tb_new();
    tb_file(tb, "ok/../../../sentinel", 0644, "pwned\n");
    assert_int_equal(extract_code(f, tb_finish(tb)), MERR_INVALID);

    /* Absolute names are clamped to the root, like dockerd does. */
    tb = tb_new();
    snprintf(name, sizeof name, "/..%s", host_x);
    tb_file(tb, name, 0644, "x");
    tb_file(tb, host_abs, 0644, "abs");
    tb_dir(tb, "/", 0755);
    assert_int_equal(extract_code(f, tb_finish(tb)), MERR_OK);
    assert_true(dest_exists(f, host_x + 1));
    assert_true(dest_exists(f, host_abs + 1));
    struct stat st;
    assert_int_equal(lstat(host_x, &st), -1);
    assert_int_equal(lstat(host_abs, &st), -1);
    char *s = read_text(f->victim);
    assert_string_equal(s, "victim\n");
    free(s);
    assert_outside_unchanged(f);
}

/* ---- case 13: symlinked parents and hardlink targets ---- */

static void test_symlink_parents_stay_inside(void **state)
{
    struct fx *f = *state;
    char name[PATH_MAX + 64], host[64], rel[64];
    snprintf(host, sizeof host, "/tmp/machine-layer-%d", (int)getpid());
    snprintf(rel, sizeof rel, "tmp/machine-layer-%d", (int)getpid());

    struct tarb *tb = tb_new();
    tb_symlink(tb, "evil", "/");
    snprintf(name, sizeof name, "evil%s", host);
    tb_file(tb, name, 0644, "inside\n");
    /* an absolute symlink to the real path of the sentinel's directory; that
     * path exists inside the layer too (an absolute name, clamped) */
    tb_dir(tb, f->root, 0755);
    tb_symlink(tb, "abs", f->root);
    tb_file(tb, "abs/sentinel", 0644, "pwned\n");
    /* relative symlinks that climb to the top and beyond a parent */
    tb_dir(tb, "a/", 0755);
    tb_dir(tb, "a/b/", 0755);
    tb_symlink(tb, "a/b/up", "../..");
    tb_file(tb, "a/b/up/etc/passwd", 0644, "inside too\n");
    tb_symlink(tb, "chain", "evil/tmp");
    tb_dir(tb, "chain/sub/", 0700);
    assert_int_equal(extract_code(f, tb_finish(tb)), MERR_OK);

    struct stat st;
    assert_int_equal(lstat(host, &st), -1);
    assert_true(dest_exists(f, rel));
    char sub[PATH_MAX + 32];
    snprintf(sub, sizeof sub, "%s/sentinel", f->root + 1);
    assert_true(dest_exists(f, sub));
    assert_true(dest_exists(f, "etc/passwd"));
    assert_lstat(f, "tmp/sub", &st);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);

    /* a symlinked parent whose target does not exist inside: refused (as dockerd) */
    tb = tb_new();
    tb_symlink(tb, "dangling", f->root);
    tb_file(tb, "dangling/sentinel", 0644, "pwned\n");
    reset_dest(f);
    assert_int_equal(extract_code(f, tb_finish(tb)), MERR_INVALID);

    /* a relative symlink that points above the root is refused outright */
    tb = tb_new();
    tb_dir(tb, "d/", 0755);
    tb_symlink(tb, "d/out", "../../../..");
    assert_int_equal(extract_code(f, tb_finish(tb)), MERR_INVALID);
    assert_outside_unchanged(f);
}

static void test_hardlink_escapes(void **state)
{
    struct fx *f = *state;
    struct tarb *tb = tb_new();
    tb_hardlink(tb, "h", "../victim", 0644);
    assert_int_equal(extract_code(f, tb_finish(tb)), MERR_INVALID);
    tb = tb_new();
    tb_hardlink(tb, "h", "/etc/shadow", 0644);
    assert_int_equal(extract_code(f, tb_finish(tb)), MERR_INVALID);
    tb = tb_new();
    tb_hardlink(tb, "h", f->victim, 0644);
    assert_int_equal(extract_code(f, tb_finish(tb)), MERR_INVALID);
    /* through a symlink to "/": the target is looked up inside the layer */
    tb = tb_new();
    tb_symlink(tb, "s", "/");
    tb_hardlink(tb, "h", "s/etc/hostname", 0644);
    assert_int_equal(extract_code(f, tb_finish(tb)), MERR_INVALID);
    struct stat host_before, host_after;
    int have_host = stat("/etc/hostname", &host_before);

    tb = tb_new();
    tb_dir(tb, "etc/", 0755);
    tb_file(tb, "etc/hostname", 0644, "layer\n");
    tb_symlink(tb, "s2", "/");
    tb_hardlink(tb, "h2", "s2/etc/hostname", 0644);
    assert_int_equal(extract_code(f, tb_finish(tb)), MERR_OK);
    struct stat a, b;
    assert_lstat(f, "etc/hostname", &a);
    assert_lstat(f, "h2", &b);
    assert_int_equal(a.st_ino, b.st_ino);
    if (have_host == 0) {
        assert_int_equal(stat("/etc/hostname", &host_after), 0);
        assert_int_equal(host_before.st_nlink, host_after.st_nlink);
    }
    struct stat v;
    assert_int_equal(stat(f->victim, &v), 0);
    assert_int_equal(v.st_nlink, 1);
    assert_outside_unchanged(f);
}

/* ---- case 14: CVE-2021-32760 ---- */

static void test_hardlink_to_symlink_chmod(void **state)
{
    struct fx *f = *state;
    struct tarb *tb = tb_new();
    tb_symlink(tb, "sym", f->sentinel);
    tb_hardlink(tb, "hard", "sym", 0777);
    tb_hardlink(tb, "hard2", "hard", 06777);
    tb_dir(tb, "d/", 0755);
    tb_symlink(tb, "d/sym", f->sentinel);
    tb_hardlink(tb, "d/hard", "d/sym", 0777);
    assert_int_equal(extract_code(f, tb_finish(tb)), MERR_OK);
    struct stat st;
    assert_int_equal(stat(f->sentinel, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    assert_lstat(f, "hard2", &st);
    assert_true(S_ISLNK(st.st_mode));
    assert_outside_unchanged(f);
}

/* ---- case 15: whiteouts ---- */

static void test_bad_whiteouts(void **state)
{
    struct fx *f = *state;
    static const char *bad[] = { "d/.wh.", ".wh..", ".wh...", "d/.wh.." };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct tarb *tb = tb_new();
        tb_dir(tb, "d/", 0755);
        tb_file(tb, bad[i], 0600, "");
        assert_int_equal(extract_code(f, tb_finish(tb)), MERR_INVALID);
    }
    static const char *through_link[] = { "lnk/.wh.foo", "lnk/.wh..wh..opq", "up/x/.wh.y" };
    for (size_t i = 0; i < sizeof through_link / sizeof through_link[0]; i++) {
        reset_dest(f);
        struct tarb *tb = tb_new();
        tb_dir(tb, "d/", 0755);
        tb_dir(tb, "d/x/", 0755);
        tb_symlink(tb, "lnk", "d");
        tb_symlink(tb, "up", "/d");
        tb_file(tb, through_link[i], 0600, "");
        assert_int_equal(extract_code(f, tb_finish(tb)), MERR_INVALID);
        assert_false(dest_exists(f, "d/foo"));
        assert_false(dest_exists(f, "d/x/y"));
    }
    assert_outside_unchanged(f);
}

static void test_whiteout_conversion(void **state)
{
    SKIP_UNLESS_ROOT("mknod of 0:0 whiteouts and trusted.overlay.opaque");
    struct fx *f = *state;
    struct tarb *tb = tb_new();
    tb_dir(tb, "d/", 0755);
    tb_file(tb, "d/keep", 0644, "k");
    tb_file(tb, "d/.wh.gone", 0600, "");
    tb_file(tb, "d/.wh..wh..opq", 0600, "");
    tb_file(tb, ".wh.top", 0600, "");
    tb_file(tb, "e/.wh.x", 0600, ""); /* parent created on the way */
    tb_file(tb, "f", 0644, "replaced by a whiteout");
    tb_file(tb, ".wh.f", 0600, "");
    tb_file(tb, ".wh..wh.plnk", 0600, ""); /* aufs metadata: skipped */
    struct archive_entry *e = tb_entry("g/", AE_IFDIR, 0755);
    archive_entry_xattr_add_entry(e, "trusted.overlay.opaque", "y", 1);
    archive_entry_xattr_add_entry(e, "user.note", "hello", 5);
    tb_put(tb, e, NULL, 0);
    assert_int_equal(extract_code(f, tb_finish(tb)), MERR_OK);

    static const char *whiteouts[] = { "d/gone", "top", "e/x", "f" };
    for (size_t i = 0; i < sizeof whiteouts / sizeof whiteouts[0]; i++) {
        struct stat st;
        assert_lstat(f, whiteouts[i], &st);
        assert_true(S_ISCHR(st.st_mode));
        assert_int_equal(st.st_rdev, makedev(0, 0));
    }
    assert_false(dest_exists(f, "d/.wh.gone"));
    assert_false(dest_exists(f, "d/.wh..wh..opq"));
    assert_false(dest_exists(f, ".wh..wh.plnk"));
    assert_true(dest_exists(f, "d/keep"));
    char v[8] = { 0 };
    char *p = dest_path(f, "d");
    assert_int_equal(lgetxattr(p, "trusted.overlay.opaque", v, sizeof v), 1);
    assert_int_equal(v[0], 'y');
    free(p);
    /* trusted.* from the tar is dropped, user.* kept */
    p = dest_path(f, "g");
    assert_int_equal(lgetxattr(p, "trusted.overlay.opaque", v, sizeof v), -1);
    ssize_t n = lgetxattr(p, "user.note", v, sizeof v);
    if (n >= 0) /* some filesystems have no user xattrs */
        assert_memory_equal(v, "hello", 5);
    free(p);
    assert_outside_unchanged(f);
}

/* ---- case 16: devices ---- */

static void test_devices(void **state)
{
    struct fx *f = *state;
    struct tarb *tb = tb_new();
    tb_dev(tb, "bad", AE_IFCHR, 1UL << 20, 0);
    assert_int_equal(extract_code(f, tb_finish(tb)), MERR_INVALID);
    tb = tb_new();
    tb_dev(tb, "bad", AE_IFBLK, 8, 1UL << 21);
    assert_int_equal(extract_code(f, tb_finish(tb)), MERR_INVALID);
    assert_false(dest_exists(f, "bad"));

    tb = tb_new();
    tb_dev(tb, "fifo", AE_IFIFO, 0, 0);
    if (privileged())
        tb_dev(tb, "null", AE_IFCHR, 1, 3);
    assert_int_equal(extract_code(f, tb_finish(tb)), MERR_OK);
    struct stat st;
    assert_lstat(f, "fifo", &st);
    assert_true(S_ISFIFO(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0644);
    if (privileged()) {
        assert_lstat(f, "null", &st);
        assert_true(S_ISCHR(st.st_mode));
        assert_int_equal(st.st_rdev, makedev(1, 3));
    } else {
        print_message("note: char device creation not checked (needs root)\n");
    }
    assert_outside_unchanged(f);
}

/* Inside a user namespace device nodes are skipped, absurd ones still refused. */
static void test_devices_in_userns(void **state)
{
    struct fx *f = *state;
    struct tarb *tb = tb_new();
    tb_dev(tb, "bad", AE_IFCHR, 1UL << 20, 0);
    assert_int_equal(extract_code(f, tb_finish(tb)), MERR_INVALID);
    tb = tb_new();
    tb_dev(tb, "null", AE_IFCHR, 1, 3);
    tb_dev(tb, "sda", AE_IFBLK, 8, 0);
    tb_dev(tb, "fifo", AE_IFIFO, 0, 0);
    tb_file(tb, "after", 0644, "still extracted");
    assert_int_equal(extract_code(f, tb_finish(tb)), MERR_OK);
    assert_false(dest_exists(f, "null"));
    assert_false(dest_exists(f, "sda"));
    assert_true(dest_exists(f, "fifo"));
    assert_true(dest_exists(f, "after"));
}

/* ---- case 17: size caps with a streamed 8 GB layer ---- */

#define BOMB_TOTAL 8000000000ULL
#define BOMB_LIMIT (64ULL << 20)

enum bomb_kind { BOMB_ONE_ENTRY, BOMB_GZIP_ENTRIES, BOMB_PADDING };

struct producer {
    int fd;
    enum bomb_kind kind;
    uint64_t sent;
};

/* A ustar header for a regular file of the given size. */
static void ustar_header(unsigned char h[512], const char *name, uint64_t size)
{
    memset(h, 0, 512);
    snprintf((char *)h, 100, "%s", name);
    snprintf((char *)h + 100, 8, "%07o", 0644);
    snprintf((char *)h + 108, 8, "%07o", 0);
    snprintf((char *)h + 116, 8, "%07o", 0);
    snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)size);
    snprintf((char *)h + 136, 12, "%011o", 1500000000);
    h[156] = '0';
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
}

static bool put(struct producer *p, const void *data, size_t len)
{
    const char *c = data;
    while (len > 0) {
        ssize_t n = write(p->fd, c, len);
        if (n <= 0)
            return false; /* reader gone (EPIPE): stop */
        c += n;
        len -= (size_t)n;
        p->sent += (uint64_t)n;
    }
    return true;
}

static void *produce(void *arg)
{
    struct producer *p = arg;
    static const unsigned char zeros[65536];
    unsigned char h[512];
    if (p->kind == BOMB_ONE_ENTRY) {
        ustar_header(h, "zero", BOMB_TOTAL);
        if (put(p, h, sizeof h))
            while (p->sent < BOMB_TOTAL && put(p, zeros, sizeof zeros))
                ;
    } else if (p->kind == BOMB_PADDING) {
        ustar_header(h, "small", 0);
        if (put(p, h, sizeof h))
            while (p->sent < BOMB_TOTAL && put(p, zeros, sizeof zeros))
                ;
    } else {
        /* gzip of endless 32 MiB entries (each under the cap), compressed here on the fly */
        z_stream z = { 0 };
        unsigned char out[65536];
        assert_int_equal(deflateInit2(&z, 1, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
        const uint64_t entry = 32ULL << 20;
        uint64_t produced = 0, in_entry = entry;
        int k = 0;
        bool ok = true;
        while (ok && produced < BOMB_TOTAL) {
            const unsigned char *in = zeros;
            size_t len = sizeof zeros;
            if (in_entry == entry) {
                char name[32];
                snprintf(name, sizeof name, "f%d", k++);
                ustar_header(h, name, entry);
                in = h;
                len = sizeof h;
                in_entry = 0;
            } else {
                in_entry += len;
            }
            produced += len;
            z.next_in = (unsigned char *)in;
            z.avail_in = (uInt)len;
            do {
                z.next_out = out;
                z.avail_out = sizeof out;
                deflate(&z, Z_NO_FLUSH);
                ok = put(p, out, sizeof out - z.avail_out);
            } while (ok && z.avail_in > 0);
        }
        deflateEnd(&z);
    }
    close(p->fd);
    return NULL;
}

static long max_rss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void run_bomb(struct fx *f, enum bomb_kind kind)
{
    int pfd[2];
    assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
    struct producer p = { .fd = pfd[1], .kind = kind };
    pthread_t t;
    long rss_before = max_rss_kib();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(pthread_create(&t, NULL, produce, &p), 0);
    struct layer_limits lim = { .max_uncompressed = BOMB_LIMIT, .max_entries = 100 };
    struct merr err = MERR_INIT;
    struct layer_result res;
    int r = layer_extract_fd_opts(pfd[0], kind == BOMB_GZIP_ENTRIES ? LAYER_COMP_DETECT : LAYER_COMP_NONE,
                                  f->dest, &lim, &f->opts, &res, &err);
    close(pfd[0]); /* the producer now gets EPIPE and stops */
    pthread_join(t, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    long rss_growth_kib = max_rss_kib() - rss_before;
    print_message("bomb %d: %.2f s, %llu bytes sent, peak RSS growth %ld KiB: %s\n", (int)kind, secs,
                  (unsigned long long)p.sent, rss_growth_kib, err.msg);
    assert_int_equal(r, -1);
    assert_int_equal(err.code, MERR_INVALID);
    assert_true(secs < 5.0);
    assert_true(p.sent < BOMB_TOTAL / 8);
    assert_true(rss_growth_kib < 48 * 1024);
    reset_dest(f);
}

static void test_size_caps(void **state)
{
    struct fx *f = *state;
    signal(SIGPIPE, SIG_IGN);
    run_bomb(f, BOMB_ONE_ENTRY);
    run_bomb(f, BOMB_GZIP_ENTRIES);
    run_bomb(f, BOMB_PADDING);
    assert_outside_unchanged(f);
}

static void test_max_entries(void **state)
{
    struct fx *f = *state;
    struct tarb *tb = tb_new();
    for (int i = 0; i < 20; i++) {
        char name[16];
        snprintf(name, sizeof name, "f%02d", i);
        tb_file(tb, name, 0644, "x");
    }
    struct buf tar = tb_finish(tb);
    struct merr err = MERR_INIT;
    struct layer_limits lim = { .max_entries = 19 };
    assert_int_equal(extract_buf(f, &tar, LAYER_COMP_NONE, &lim, NULL, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    reset_dest(f);
    lim.max_entries = 20;
    assert_int_equal(extract_buf(f, &tar, LAYER_COMP_NONE, &lim, NULL, &err), 0);
    /* the uncompressed cap counts every byte, not just file data */
    lim.max_uncompressed = tar.len - 1;
    reset_dest(f);
    assert_int_equal(extract_buf(f, &tar, LAYER_COMP_NONE, &lim, NULL, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    buf_free(&tar);
}

/* ---- layer_tar_dir round trip ---- */

/* One line per entry: type, mode, owner, size, times, link target, rdev,
 * opaque flag, content checksum, and which earlier entry shares its inode. */
static void describe_tree(int dirfd, const char *prefix, struct buf *out, struct buf *inodes)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY);
    DIR *d = fdopendir(fd);
    assert_non_null(d);
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        names = realloc(names, (n + 1) * sizeof *names);
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (strcmp(names[i], names[j]) > 0) {
                char *t = names[i];
                names[i] = names[j];
                names[j] = t;
            }
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        assert_int_equal(fstatat(dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW), 0);
        char target[256] = "";
        unsigned long sum = 0;
        char opaque = '-';
        if (S_ISLNK(st.st_mode))
            assert_true(readlinkat(dirfd, names[i], target, sizeof target - 1) >= 0);
        if (S_ISREG(st.st_mode)) {
            int ffd = openat(dirfd, names[i], O_RDONLY | O_NOFOLLOW);
            unsigned char b[4096];
            ssize_t r;
            while ((r = read(ffd, b, sizeof b)) > 0)
                sum = crc32(sum, b, (uInt)r);
            close(ffd);
        }
        long link_of = -1;
        if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
            ino_t *inos = (ino_t *)inodes->data;
            size_t count = inodes->len / sizeof(ino_t);
            for (size_t k = 0; k < count; k++)
                if (inos[k] == st.st_ino)
                    link_of = (long)k;
            if (link_of < 0)
                buf_append(inodes, &st.st_ino, sizeof st.st_ino);
        }
        int sub = -1;
        if (S_ISDIR(st.st_mode)) {
            sub = openat(dirfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
            char v[2];
            if (fgetxattr(sub, "trusted.overlay.opaque", v, sizeof v) == 1)
                opaque = 'O';
        }
        /* whiteouts carry no time of their own (dockerd does not set one) */
        long mtime = S_ISCHR(st.st_mode) && st.st_rdev == 0 ? 0 : (long)st.st_mtim.tv_sec;
        char line[1024];
        int len = snprintf(line, sizeof line, "%s%s %o %u:%u %lld %ld %s %lx %c %lx %ld\n", prefix,
                           names[i], st.st_mode, st.st_uid, st.st_gid,
                           S_ISDIR(st.st_mode) ? 0LL : (long long)st.st_size, mtime,
                           target, (unsigned long)st.st_rdev, opaque, sum, link_of);
        buf_append(out, line, (size_t)len);
        if (sub >= 0) {
            char p[512];
            snprintf(p, sizeof p, "%s%s/", prefix, names[i]);
            describe_tree(sub, p, out, inodes);
            close(sub);
        }
        free(names[i]);
    }
    free(names);
}

static char *describe(const char *dir)
{
    struct buf out = { 0 }, inodes = { 0 };
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    describe_tree(fd, "", &out, &inodes);
    close(fd);
    buf_append(&out, "", 1);
    buf_free(&inodes);
    return (char *)out.data;
}

static struct buf read_fd_all(int fd)
{
    struct buf b = { 0 };
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    unsigned char tmp[65536];
    ssize_t n;
    while ((n = read(fd, tmp, sizeof tmp)) > 0)
        buf_append(&b, tmp, (size_t)n);
    return b;
}

static bool tar_has(const struct buf *tar, const char *name)
{
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    assert_int_equal(archive_read_open_memory(a, tar->data, tar->len), ARCHIVE_OK);
    struct archive_entry *e;
    bool found = false;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK)
        if (strcmp(archive_entry_pathname(e), name) == 0)
            found = true;
    archive_read_free(a);
    return found;
}

static void test_tar_roundtrip(void **state)
{
    struct fx *f = *state;
    bool root = privileged();
    struct tarb *tb = tb_new();
    tb_dir(tb, "d/", 0755);
    tb_file(tb, "d/keep", 0644, "keep");
    tb_file(tb, "big", 0600, "0123456789abcdefghijklmnopqrstuvwxyz");
    tb_hardlink(tb, "big-link", "big", 0600);
    tb_symlink(tb, "ln", "d/keep");
    tb_dir(tb, "ro/", 0500);
    tb_file(tb, "ro/f", 0444, "ro");
    tb_dev(tb, "fifo", AE_IFIFO, 0, 0);
    tb_file(tb, LONG_NAME, 0644, "long");
    struct archive_entry *u = tb_entry("", AE_IFREG, 0644);
    archive_entry_set_pathname_utf8(u, "caf\xc3\xa9");
    tb_put(tb, u, NULL, 0);
    if (root) {
        tb_file(tb, "d/.wh..wh..opq", 0600, "");
        tb_file(tb, "d/.wh.gone", 0600, "");
        tb_dev(tb, "null", AE_IFCHR, 1, 3);
    } else {
        print_message("note: whiteouts and devices left out of the round trip (needs root)\n");
    }
    struct buf tar = tb_finish(tb);
    struct merr err = MERR_INIT;
    assert_int_equal(extract_buf(f, &tar, LAYER_COMP_NONE, NULL, NULL, &err), 0);

    int out = memfd_create("tar", MFD_CLOEXEC);
    struct layer_result res, res2;
    if (layer_tar_dir(f->dest, out, &res, &err) != 0)
        fail_msg("layer_tar_dir: %s", err.msg);
    struct buf written = read_fd_all(out);
    close(out);
    char want[LAYER_DIFF_ID_LEN];
    sha256_diff_id(written.data, written.len, want);
    assert_string_equal(res.diff_id, want);
    assert_int_equal(res.size, written.len);
    assert_int_equal(written.len % 512, 0);
    if (root) {
        assert_true(tar_has(&written, "d/.wh.gone"));
        assert_true(tar_has(&written, "d/.wh..wh..opq"));
        assert_false(tar_has(&written, "d/gone"));
    }
    /* the same tree gives the same DiffID */
    out = memfd_create("tar", MFD_CLOEXEC);
    assert_int_equal(layer_tar_dir(f->dest, out, &res2, &err), 0);
    close(out);
    assert_string_equal(res.diff_id, res2.diff_id);

    char *before = describe(f->dest);
    struct fx f2 = *f;
    snprintf(f2.dest, sizeof f2.dest, "%s/a/b/dest2", f->root);
    const char *second = f2.dest;
    assert_int_equal(mkdir(second, 0755), 0);
    struct layer_result res3;
    assert_int_equal(extract_buf(&f2, &written, LAYER_COMP_NONE, NULL, &res3, &err), 0);
    assert_string_equal(res3.diff_id, res.diff_id);
    char *after = describe(second);
    assert_string_equal(before, after);
    free(before);
    free(after);
    assert_int_equal(layer_remove_tree(second, &err), 0);
    buf_free(&tar);
    buf_free(&written);
}

/* ---- layer_remove_tree and the fallback resolver ---- */

static void test_remove_tree(void **state)
{
    struct fx *f = *state;
    char p[PATH_MAX * 2];
    snprintf(p, sizeof p, "%s/tree", f->dest);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/tree/link-out", f->dest);
    assert_int_equal(symlink(f->root, p), 0);
    /* a deep chain: more levels than a process may hold fds */
    char deep[PATH_MAX * 2];
    snprintf(deep, sizeof deep, "%s/tree", f->dest);
    int fd = open(deep, O_RDONLY | O_DIRECTORY);
    for (int i = 0; i < 1500; i++) {
        assert_int_equal(mkdirat(fd, "d", 0755), 0);
        int next = openat(fd, "d", O_RDONLY | O_DIRECTORY);
        close(fd);
        fd = next;
    }
    assert_int_equal(mkdirat(fd, "locked", 0000), 0);
    close(fd);
    snprintf(p, sizeof p, "%s/tree/ro", f->dest);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/tree/ro/file", f->dest);
    write_text(p, "x", 0600);
    snprintf(p, sizeof p, "%s/tree/ro", f->dest);
    assert_int_equal(chmod(p, 0555), 0);

    struct rlimit old, low = { 256, 256 };
    getrlimit(RLIMIT_NOFILE, &old);
    low.rlim_max = old.rlim_max;
    setrlimit(RLIMIT_NOFILE, &low);
    struct merr err = MERR_INIT;
    snprintf(p, sizeof p, "%s/tree", f->dest);
    int r = layer_remove_tree(p, &err);
    setrlimit(RLIMIT_NOFILE, &old);
    if (r != 0)
        fail_msg("layer_remove_tree: %s", err.msg);
    struct stat st;
    assert_int_equal(lstat(p, &st), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(layer_remove_tree(p, &err), 0); /* missing: fine */
    assert_outside_unchanged(f);
}

static void test_resolver(void **state)
{
    struct fx *f = *state;
    char p[PATH_MAX * 2];
    snprintf(p, sizeof p, "%s/real", f->dest);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/real/sub", f->dest);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/toroot", f->dest);
    assert_int_equal(symlink("/", p), 0);
    snprintf(p, sizeof p, "%s/up", f->dest);
    assert_int_equal(symlink("../../../../..", p), 0);
    snprintf(p, sizeof p, "%s/loop", f->dest);
    assert_int_equal(symlink("loop", p), 0);
    int root = open(f->dest, O_RDONLY | O_DIRECTORY);
    struct stat rst, sst, st;
    assert_int_equal(fstat(root, &rst), 0);
    snprintf(p, sizeof p, "%s/real/sub", f->dest);
    assert_int_equal(stat(p, &sst), 0);
    unsigned modes[] = { 0, LAYER_RESOLVE_FALLBACK };
    for (size_t i = 0; i < 2; i++) {
        static const char *to_root[] = { "toroot", "up", "toroot/up/toroot", "" };
        for (size_t k = 0; k < sizeof to_root / sizeof to_root[0]; k++) {
            int fd = layer_open_dir(root, to_root[k], modes[i]);
            assert_true(fd >= 0);
            assert_int_equal(fstat(fd, &st), 0);
            assert_int_equal(st.st_ino, rst.st_ino);
            close(fd);
        }
        int fd = layer_open_dir(root, "up/toroot/real/sub", modes[i]);
        assert_true(fd >= 0);
        assert_int_equal(fstat(fd, &st), 0);
        assert_int_equal(st.st_ino, sst.st_ino);
        close(fd);
        assert_int_equal(layer_open_dir(root, "toroot/real", modes[i] | LAYER_RESOLVE_NOFOLLOW), -1);
        assert_int_equal(errno, ELOOP);
        assert_int_equal(layer_open_dir(root, "loop", modes[i]), -1);
        assert_int_equal(errno, ELOOP);
        assert_int_equal(layer_open_dir(root, "missing/x", modes[i]), -1);
        assert_int_equal(errno, ENOENT);
    }
    close(root);
}

#define FX(t, opts) cmocka_unit_test_prestate_setup_teardown(t, fx_setup, fx_teardown, (void *)(opts))

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX(test_size_caps, &USE_OPENAT2),
        cmocka_unit_test(test_clean_path),
        cmocka_unit_test(test_symlink_escapes),
        cmocka_unit_test(test_uid_map),
        FX(test_normal_layer, &USE_OPENAT2),
        FX(test_normal_layer, &USE_FALLBACK),
        FX(test_compression_same_diff_id, &USE_OPENAT2),
        FX(test_reader_source, &USE_OPENAT2),
        FX(test_corrupt_streams, &USE_OPENAT2),
        FX(test_path_escapes, &USE_OPENAT2),
        FX(test_path_escapes, &USE_FALLBACK),
        FX(test_symlink_parents_stay_inside, &USE_OPENAT2),
        FX(test_symlink_parents_stay_inside, &USE_FALLBACK),
        FX(test_hardlink_escapes, &USE_OPENAT2),
        FX(test_hardlink_escapes, &USE_FALLBACK),
        FX(test_hardlink_to_symlink_chmod, &USE_OPENAT2),
        FX(test_hardlink_to_symlink_chmod, &USE_FALLBACK),
        FX(test_bad_whiteouts, &USE_OPENAT2),
        FX(test_bad_whiteouts, &USE_FALLBACK),
        FX(test_whiteout_conversion, &USE_OPENAT2),
        FX(test_devices, &USE_OPENAT2),
        FX(test_devices_in_userns, &AS_USERNS),
        FX(test_max_entries, &USE_OPENAT2),
        FX(test_tar_roundtrip, &USE_OPENAT2),
        FX(test_remove_tree, &USE_OPENAT2),
        FX(test_resolver, &USE_OPENAT2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
