/* Writes a small seed corpus for fuzz_layer into the directory argv[1]: plain,
 * gzip and zstd layers with files, links, whiteouts and devices. */
#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

struct buf {
    unsigned char *data;
    size_t len, cap;
};

static la_ssize_t collect(struct archive *a, void *ud, const void *p, size_t n)
{
    (void)a;
    struct buf *b = ud;
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->data = realloc(b->data, b->cap);
        if (b->data == NULL)
            abort();
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return (la_ssize_t)n;
}

static void add(struct archive *a, const char *name, unsigned type, unsigned perm, const char *data,
                const char *link, int hard)
{
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, perm);
    archive_entry_set_mtime(e, 1500000000, 0);
    if (link != NULL && hard)
        archive_entry_set_hardlink(e, link);
    else if (link != NULL)
        archive_entry_set_symlink(e, link);
    if (type == AE_IFCHR)
        archive_entry_set_rdevmajor(e, 1), archive_entry_set_rdevminor(e, 3);
    size_t len = data != NULL ? strlen(data) : 0;
    archive_entry_set_size(e, (la_int64_t)len);
    if (archive_write_header(a, e) < ARCHIVE_WARN)
        abort();
    if (len > 0)
        archive_write_data(a, data, len);
    archive_entry_free(e);
}

static void save(const char *dir, const char *name, const void *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0)
        abort();
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    struct buf tar = { 0 };
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_set_bytes_in_last_block(a, 1);
    archive_write_open(a, &tar, NULL, collect, NULL);
    add(a, "etc/", AE_IFDIR, 0755, NULL, NULL, 0);
    add(a, "etc/hostname", AE_IFREG, 0644, "box\n", NULL, 0);
    add(a, "etc/link", AE_IFREG, 0644, NULL, "etc/hostname", 1);
    add(a, "lib", AE_IFLNK, 0777, NULL, "usr/lib", 0);
    add(a, "evil", AE_IFLNK, 0777, NULL, "/", 0);
    add(a, "evil/tmp/x", AE_IFREG, 0600, "x", NULL, 0);
    add(a, "d/.wh..wh..opq", AE_IFREG, 0600, NULL, NULL, 0);
    add(a, "d/.wh.gone", AE_IFREG, 0600, NULL, NULL, 0);
    add(a, "dev/null", AE_IFCHR, 0666, NULL, NULL, 0);
    add(a, "fifo", AE_IFIFO, 0644, NULL, NULL, 0);
    archive_write_close(a);
    archive_write_free(a);
    save(argv[1], "layer.tar", tar.data, tar.len);

    unsigned char *gz = malloc(compressBound(tar.len) + 64);
    z_stream z = { 0 };
    deflateInit2(&z, 9, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
    z.next_in = tar.data;
    z.avail_in = (uInt)tar.len;
    z.next_out = gz;
    z.avail_out = (uInt)(compressBound(tar.len) + 64);
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        abort();
    save(argv[1], "layer.tar.gz", gz, z.total_out);
    deflateEnd(&z);

    size_t cap = ZSTD_compressBound(tar.len);
    unsigned char *zs = malloc(cap);
    size_t n = ZSTD_compress(zs, cap, tar.data, tar.len, 3);
    if (ZSTD_isError(n))
        abort();
    save(argv[1], "layer.tar.zst", zs, n);
    free(gz);
    free(zs);
    free(tar.data);
    return 0;
}
