/* TEST-ONLY stand-in for engine/layer's layer_extract_fd(), linked into the pull
 * integration test while engine/layer/ has no implementation. It reads the whole
 * stream into memory (test layers are small), hashes the decompressed tar and
 * untars it with libarchive under dest. It does NOT convert whiteouts to overlay
 * form and is not hardened: never use it outside tests. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdbool.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "layer/layer.h"

static int read_all(int fd, unsigned char **buf, size_t *len, uint64_t max)
{
    size_t cap = 1 << 16, n = 0;
    unsigned char *b = malloc(cap);
    if (b == NULL)
        return -1;
    for (;;) {
        if (n == cap) {
            unsigned char *nb = cap * 2 <= max ? realloc(b, cap * 2) : NULL;
            if (nb == NULL) {
                free(b);
                return -1;
            }
            b = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            free(b);
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *buf = b;
    *len = n;
    return 0;
}

static struct archive *open_reader(const unsigned char *buf, size_t len, bool raw)
{
    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    if (raw)
        archive_read_support_format_raw(a);
    else
        archive_read_support_format_tar(a);
    if (archive_read_open_memory(a, buf, len) != ARCHIVE_OK) {
        archive_read_free(a);
        return NULL;
    }
    return a;
}

static int hash_uncompressed(const unsigned char *buf, size_t len, struct layer_result *res,
                             struct merr *err)
{
    struct archive *a = open_reader(buf, len, true);
    struct archive_entry *e;
    if (a == NULL || archive_read_next_header(a, &e) != ARCHIVE_OK) {
        if (a != NULL)
            archive_read_free(a);
        return merr_set(err, MERR_CORRUPT, 0, "cannot decompress layer");
    }
    EVP_MD_CTX *sha = EVP_MD_CTX_new();
    EVP_DigestInit_ex(sha, EVP_sha256(), NULL);
    char chunk[65536];
    ssize_t n;
    uint64_t total = 0;
    while ((n = archive_read_data(a, chunk, sizeof chunk)) > 0) {
        EVP_DigestUpdate(sha, chunk, (size_t)n);
        total += (uint64_t)n;
    }
    archive_read_free(a);
    unsigned char md[32];
    unsigned int mdlen;
    EVP_DigestFinal_ex(sha, md, &mdlen);
    EVP_MD_CTX_free(sha);
    if (n < 0)
        return merr_set(err, MERR_CORRUPT, 0, "cannot decompress layer");
    strcpy(res->diff_id, "sha256:");
    for (unsigned i = 0; i < 32; i++)
        snprintf(res->diff_id + 7 + 2 * i, 3, "%02x", md[i]);
    res->size = total;
    return 0;
}

static int untar(const unsigned char *buf, size_t len, const char *dest, struct merr *err)
{
    struct archive *a = open_reader(buf, len, false);
    if (a == NULL)
        return merr_set(err, MERR_CORRUPT, 0, "cannot read layer tar");
    struct archive *w = archive_write_disk_new();
    archive_write_disk_set_options(w, ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_OWNER |
                                          ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                          ARCHIVE_EXTRACT_SECURE_SYMLINKS);
    int rc = 0;
    struct archive_entry *e;
    int r;
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        char path[4096];
        const char *name = archive_entry_pathname(e);
        if (name == NULL || name[0] == '/') {
            rc = merr_set(err, MERR_CORRUPT, 0, "absolute path in layer");
            break;
        }
        snprintf(path, sizeof path, "%s/%s", dest, name);
        archive_entry_copy_pathname(e, path);
        const char *link = archive_entry_hardlink(e);
        if (link != NULL) {
            char lpath[4096];
            if (link[0] == '/') {
                rc = merr_set(err, MERR_CORRUPT, 0, "absolute hardlink in layer");
                break;
            }
            snprintf(lpath, sizeof lpath, "%s/%s", dest, link);
            archive_entry_copy_hardlink(e, lpath);
        }
        if (archive_write_header(w, e) != ARCHIVE_OK) {
            rc = merr_set(err, MERR_IO, 0, "cannot extract '%s': %s", path, archive_error_string(w));
            break;
        }
        const void *blk;
        size_t sz;
        la_int64_t off;
        while (archive_read_data_block(a, &blk, &sz, &off) == ARCHIVE_OK)
            archive_write_data_block(w, blk, sz, off);
        archive_write_finish_entry(w);
    }
    if (rc == 0 && r != ARCHIVE_EOF)
        rc = merr_set(err, MERR_CORRUPT, 0, "bad layer tar: %s", archive_error_string(a));
    archive_write_free(w);
    archive_read_free(a);
    return rc;
}

int layer_extract_fd(int fd, enum layer_compression comp, const char *dest,
                     const struct layer_limits *lim, struct layer_result *res, struct merr *err)
{
    (void)comp; /* libarchive detects the filter */
    unsigned char *buf = NULL;
    size_t len = 0;
    if (read_all(fd, &buf, &len, lim->max_uncompressed) < 0)
        return merr_set(err, MERR_IO, errno, "cannot read layer stream");
    int r = hash_uncompressed(buf, len, res, err);
    if (r == 0)
        r = untar(buf, len, dest, err);
    free(buf);
    return r;
}
