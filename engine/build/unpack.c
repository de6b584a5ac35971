/* ADD's auto-extraction of a local archive (and the file name of a download): a tar, plain or
 * compressed with gzip, bzip2, xz or zstd (what dockerd's DecompressStream reads), is unpacked
 * where ADD copies to; anything else is copied as a file. The stream is decompressed by
 * libarchive's built-in filters only (a filter that would run an external program is refused)
 * into a plain tar, and that tar is unpacked with the hardened layer extractor, so a hostile
 * archive is handled like a hostile layer (security cases 12-17); .wh.* names are files. */
#include <archive.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build/builder.h"
#include "error.h"
#include "fsutil.h"
#include "layer/layer.h"

#define UNPACK_CHUNK (128u << 10)
#define UNPACK_MAX_SPOOL (64ULL << 30) /* the layer extractor's own cap */

/* Decompresses fd into spool_fd: 1 when a known compression (or none) was read, 0 when
 * libarchive cannot read it (not compressed data it knows: then not an archive either). */
static int decompress(int fd, int spool_fd, struct merr *err)
{
    struct archive *a = archive_read_new();
    if (a == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot create an archive reader");
    int rc = 0;
    /* ARCHIVE_WARN means the filter would run an external program: not that one */
    if (archive_read_support_format_raw(a) != ARCHIVE_OK ||
        archive_read_support_filter_none(a) != ARCHIVE_OK) {
        rc = merr_set(err, MERR_INTERNAL, 0, "cannot configure the archive reader: %s",
                      archive_error_string(a));
        goto out;
    }
    if (archive_read_support_filter_gzip(a) != ARCHIVE_OK ||
        archive_read_support_filter_bzip2(a) != ARCHIVE_OK ||
        archive_read_support_filter_xz(a) != ARCHIVE_OK ||
        archive_read_support_filter_zstd(a) != ARCHIVE_OK) {
        rc = merr_set(err, MERR_UNSUPPORTED, 0, "this engine's libarchive lacks a built-in "
                      "decompressor ADD needs: %s", archive_error_string(a));
        goto out;
    }
    struct archive_entry *e;
    if (lseek(fd, 0, SEEK_SET) < 0 || archive_read_open_fd(a, fd, UNPACK_CHUNK) != ARCHIVE_OK ||
        archive_read_next_header(a, &e) != ARCHIVE_OK)
        goto out; /* not something libarchive reads: a plain file */
    char *buf = malloc(UNPACK_CHUNK);
    if (buf == NULL) {
        rc = merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
        goto out;
    }
    unsigned long long total = 0;
    for (;;) {
        la_ssize_t n = archive_read_data(a, buf, UNPACK_CHUNK);
        if (n == 0)
            break;
        if (n < 0 || (total += (unsigned long long)n) > UNPACK_MAX_SPOOL) {
            free(buf);
            goto out; /* damaged or absurd: copied as the file it is */
        }
        if (fs_write_all(spool_fd, buf, (size_t)n) < 0) {
            free(buf);
            rc = merr_set(err, MERR_IO, errno, "cannot spool the archive");
            goto out;
        }
    }
    free(buf);
    rc = 1;
out:
    archive_read_free(a);
    return rc;
}

/* A tar header at the start: ustar (POSIX or GNU) magic, or a v7 header whose checksum holds. */
static bool looks_like_tar(int fd)
{
    unsigned char h[512];
    if (pread(fd, h, sizeof h, 0) != (ssize_t)sizeof h)
        return false;
    if (memcmp(h + 257, "ustar", 5) == 0)
        return true;
    unsigned long want = strtoul((const char *)h + 148, NULL, 8), sum = 0;
    for (size_t i = 0; i < sizeof h; i++)
        sum += (i >= 148 && i < 156) ? ' ' : h[i];
    return h[0] != '\0' && sum == want;
}

int build_unpack_archive(int fd, const char *spool, const char *dir, struct merr *err)
{
    auto_close int sfd = open(spool, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (sfd < 0)
        return merr_set(err, MERR_IO, errno, "cannot create '%s'", spool);
    int r = decompress(fd, sfd, err);
    if (r <= 0)
        return r;
    if (!looks_like_tar(sfd))
        return 0;
    struct layer_result res;
    if (lseek(sfd, 0, SEEK_SET) < 0 || mkdir(dir, 0755) < 0)
        return merr_set(err, MERR_IO, errno, "cannot prepare '%s'", dir);
    if (layer_extract_plain_fd(sfd, LAYER_COMP_NONE, dir, NULL, &res, err) < 0)
        return merr_prefix(err, "ADD's archive");
    return 1;
}

/* dockerd's file name of a download: the last element of the URL's path. */
char *build_url_file_name(const char *url)
{
    const char *p = strstr(url, "://");
    if (p == NULL)
        return NULL;
    p += 3;
    p += strcspn(p, "/?#");
    size_t n = strcspn(p, "?#");
    while (n > 0 && p[n - 1] == '/')
        n--;
    const char *start = p + n;
    while (start > p && start[-1] != '/')
        start--;
    size_t len = (size_t)(p + n - start);
    return len > 0 && !(len == 1 && start[0] == '.') && !(len == 2 && strncmp(start, "..", 2) == 0)
               ? strndup(start, len)
               : NULL;
}
