/* The ustar writer of docker save and the kvm config disk (core/tarw.c): what it writes, libarchive reads back
 * exactly (names, types, sizes, contents, checksums), including a base-256 size past 8 GiB. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>

#include "error.h"
#include "tarw.h"

struct sink {
    char *buf;
    size_t len;
    size_t max_piece;
    int fail_after; /* calls; -1: never */
};

static int sink_write(void *ctx, const void *buf, size_t len, struct merr *err)
{
    struct sink *s = ctx;
    if (s->fail_after == 0)
        return merr_set(err, MERR_IO, 32, "client went away");
    if (s->fail_after > 0)
        s->fail_after--;
    s->buf = realloc(s->buf, s->len + len);
    memcpy(s->buf + s->len, buf, len);
    s->len += len;
    if (len > s->max_piece)
        s->max_piece = len;
    return 0;
}

static void test_roundtrip_through_libarchive(void **state)
{
    (void)state;
    struct sink out = { .fail_after = -1 };
    struct tarw w = { .write = sink_write, .ctx = &out };
    struct merr err = MERR_INIT;
    static char big[200000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)(i * 31 + 7);
    char name100[101];
    memset(name100, 'n', 100);
    name100[100] = '\0';
    assert_int_equal(tarw_header(&w, "blobs/", true, 0, &err), 0);
    assert_int_equal(tarw_header(&w, "blobs/sha256/x", false, sizeof big, &err), 0);
    assert_int_equal(tarw_data(&w, big, 1000, &err), 0); /* in uneven pieces */
    assert_int_equal(tarw_data(&w, big + 1000, sizeof big - 1000, &err), 0);
    assert_int_equal(tarw_header(&w, "empty", false, 0, &err), 0);
    assert_int_equal(tarw_header(&w, name100, false, 3, &err), 0);
    assert_int_equal(tarw_data(&w, "abc", 3, &err), 0);
    assert_int_equal(tarw_close(&w, &err), 0);
    tarw_release(&w);
    assert_int_equal(out.len % 512, 0);
    assert_true(out.max_piece <= 64 * 1024);

    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    assert_int_equal(archive_read_open_memory(a, out.buf, out.len), ARCHIVE_OK);
    struct archive_entry *e;
    const struct { const char *name; mode_t type; int64_t size; const char *data; } want[] = {
        { "blobs/", AE_IFDIR, 0, NULL },
        { "blobs/sha256/x", AE_IFREG, sizeof big, big },
        { "empty", AE_IFREG, 0, NULL },
        { name100, AE_IFREG, 3, "abc" },
    };
    static char got[sizeof big];
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_OK);
        assert_string_equal(archive_entry_pathname(e), want[i].name);
        assert_int_equal(archive_entry_filetype(e), want[i].type);
        assert_int_equal(archive_entry_size(e), want[i].size);
        assert_int_equal(archive_entry_perm(e), want[i].type == AE_IFDIR ? 0755 : 0644);
        if (want[i].data != NULL) {
            assert_int_equal(archive_read_data(a, got, sizeof got), want[i].size);
            assert_memory_equal(got, want[i].data, (size_t)want[i].size);
        }
    }
    assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_EOF);
    archive_read_free(a);
    free(out.buf);
}

static void test_size_past_8gib_in_base256(void **state)
{
    (void)state;
    char block[1024] = { 0 };
    struct merr err = MERR_INIT;
    uint64_t size = (10ull << 30) + 5;
    assert_int_equal(tar_header_encode(block, "huge", false, size, &err), 0);
    assert_int_equal((unsigned char)block[124], 0x80);
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    assert_int_equal(archive_read_open_memory(a, block, sizeof block), ARCHIVE_OK);
    struct archive_entry *e;
    assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_OK);
    assert_int_equal(archive_entry_size(e), (int64_t)size);
    archive_read_free(a);
    /* 8 GiB - 1 still fits in octal */
    assert_int_equal(tar_header_encode(block, "big", false, (1ull << 33) - 1, &err), 0);
    assert_memory_equal(block + 124, "77777777777", 11);
}

static void test_refusals(void **state)
{
    (void)state;
    char block[512];
    char name101[102];
    memset(name101, 'n', 101);
    name101[101] = '\0';
    struct merr err = MERR_INIT;
    assert_int_equal(tar_header_encode(block, name101, false, 1, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    err = (struct merr)MERR_INIT;
    assert_int_equal(tar_header_encode(block, "", false, 1, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);

    struct sink out = { .fail_after = -1 };
    struct tarw w = { .write = sink_write, .ctx = &out };
    err = (struct merr)MERR_INIT;
    assert_int_equal(tarw_header(&w, "f", false, 4, &err), 0);
    assert_int_equal(tarw_data(&w, "abcde", 5, &err), -1); /* beyond the size */
    assert_int_equal(err.code, MERR_INTERNAL);
    assert_int_equal(tarw_data(&w, "ab", 2, &err), 0);
    assert_int_equal(tarw_header(&w, "g", false, 0, &err), -1); /* entry not finished */
    assert_int_equal(tarw_close(&w, &err), -1);
    tarw_release(&w);
    free(out.buf);

    /* a writer error surfaces as is */
    struct sink failing = { .fail_after = 0 };
    struct tarw w2 = { .write = sink_write, .ctx = &failing };
    err = (struct merr)MERR_INIT;
    assert_int_equal(tarw_header(&w2, "f", false, 0, &err), 0);
    assert_int_equal(tarw_close(&w2, &err), -1);
    assert_int_equal(err.code, MERR_IO);
    tarw_release(&w2);
    free(failing.buf);
}

/* docker cp's entries: every type with owners, modes and times; long names and link targets
 * in a PAX header. */
static void test_entries_with_metadata(void **state)
{
    (void)state;
    struct sink out = { .fail_after = -1 };
    struct tarw w = { .write = sink_write, .ctx = &out };
    struct merr err = MERR_INIT;
    char long_name[300], long_link[200];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    memcpy(long_name, "dir/", 4);
    memset(long_link, 'l', sizeof long_link - 1);
    long_link[sizeof long_link - 1] = '\0';
    const struct tarw_meta entries[] = {
        { .name = "dir/", .type = '5', .mode = 01777, .uid = 1000, .gid = 100, .mtime = 1700000000 },
        { .name = long_name, .type = '0', .mode = 04755, .size = 3, .mtime = 5 },
        { .name = "dir/ln", .type = '2', .linkname = long_link, .mode = 0777 },
        { .name = "dir/fifo", .type = '6', .mode = 0600 },
        { .name = "dir/null", .type = '3', .mode = 0666, .devmajor = 1, .devminor = 3 },
        { .name = "dir/big-uid", .type = '0', .uid = 3000000000ul, .gid = 42 },
    };
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
        assert_int_equal(tarw_entry(&w, &entries[i], &err), 0);
        if (entries[i].size > 0)
            assert_int_equal(tarw_data(&w, "abc", 3, &err), 0);
    }
    assert_int_equal(tarw_close(&w, &err), 0);
    tarw_release(&w);

    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    assert_int_equal(archive_read_open_memory(a, out.buf, out.len), ARCHIVE_OK);
    struct archive_entry *e;
    assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_OK);
    assert_string_equal(archive_entry_pathname(e), "dir/");
    assert_int_equal(archive_entry_filetype(e), AE_IFDIR);
    assert_int_equal(archive_entry_perm(e), 01777);
    assert_int_equal(archive_entry_uid(e), 1000);
    assert_int_equal(archive_entry_gid(e), 100);
    assert_int_equal(archive_entry_mtime(e), 1700000000);
    assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_OK);
    assert_string_equal(archive_entry_pathname(e), long_name);
    assert_int_equal(archive_entry_perm(e), 04755);
    char got[8] = { 0 };
    assert_int_equal(archive_read_data(a, got, sizeof got), 3);
    assert_string_equal(got, "abc");
    assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_OK);
    assert_int_equal(archive_entry_filetype(e), AE_IFLNK);
    assert_string_equal(archive_entry_symlink(e), long_link);
    assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_OK);
    assert_int_equal(archive_entry_filetype(e), AE_IFIFO);
    assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_OK);
    assert_int_equal(archive_entry_filetype(e), AE_IFCHR);
    assert_int_equal(archive_entry_rdevmajor(e), 1);
    assert_int_equal(archive_entry_rdevminor(e), 3);
    assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_OK);
    assert_int_equal(archive_entry_uid(e), 3000000000ll);
    assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_EOF);
    archive_read_free(a);
    free(out.buf);
}

/* Layer tars (docker commit): xattrs as PAX SCHILY.xattr records with binary values, hardlinks. */
static void test_xattrs_and_hardlinks(void **state)
{
    (void)state;
    struct sink out = { .fail_after = -1 };
    struct tarw w = { .write = sink_write, .ctx = &out };
    struct merr err = MERR_INIT;
    static const char cap[] = { 1, 0, 0, 2, '\n', 0, '=', 7 };
    const struct tarw_xattr xs[] = { { "security.capability", cap, sizeof cap },
                                     { "user.note", "hello world", 11 } };
    const struct tarw_meta file = { .name = "bin/tool", .type = '0', .mode = 0755, .size = 2,
                                    .xattrs = xs, .n_xattrs = 2 };
    const struct tarw_meta link = { .name = "bin/tool2", .type = '1', .linkname = "bin/tool",
                                    .mode = 0755 };
    assert_int_equal(tarw_entry(&w, &file, &err), 0);
    assert_int_equal(tarw_data(&w, "ok", 2, &err), 0);
    assert_int_equal(tarw_entry(&w, &link, &err), 0);
    assert_int_equal(tarw_close(&w, &err), 0);
    tarw_release(&w);
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    assert_int_equal(archive_read_open_memory(a, out.buf, out.len), ARCHIVE_OK);
    struct archive_entry *e;
    assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_OK);
    assert_string_equal(archive_entry_pathname(e), "bin/tool");
    assert_int_equal(archive_entry_xattr_reset(e), 2);
    const char *name;
    const void *value;
    size_t size;
    int seen = 0;
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
        if (strcmp(name, "security.capability") == 0) {
            assert_int_equal(size, sizeof cap);
            assert_memory_equal(value, cap, sizeof cap);
            seen |= 1;
        } else if (strcmp(name, "user.note") == 0) {
            assert_int_equal(size, 11);
            assert_memory_equal(value, "hello world", 11);
            seen |= 2;
        }
    }
    assert_int_equal(seen, 3);
    char got[4] = { 0 };
    assert_int_equal(archive_read_data(a, got, sizeof got), 2);
    assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_OK);
    assert_string_equal(archive_entry_pathname(e), "bin/tool2");
    assert_string_equal(archive_entry_hardlink(e), "bin/tool");
    assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_EOF);
    archive_read_free(a);
    free(out.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_through_libarchive),
        cmocka_unit_test(test_size_past_8gib_in_base256),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_entries_with_metadata),
        cmocka_unit_test(test_xattrs_and_hardlinks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
