/* In-process decompression of a layer stream (none, gzip, zstd; detected from
 * the magic bytes on request), hashing every uncompressed byte for the DiffID
 * and refusing to produce more than the uncompressed cap. No external program
 * is ever run (CVE-2017-14992 / CVE-2014-9357 class). */
#include "layer-priv.h"

#include "cleanup.h"
#include "error.h"

#include <errno.h>
#include <openssl/evp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#define STREAM_IN_SIZE (64 * 1024)
#define STREAM_OUT_SIZE (128 * 1024)
/* zstd's default ceiling (2^27 = 128 MiB window); set explicitly so a frame
 * header cannot ask for more memory. */
#define STREAM_ZSTD_WINDOW_LOG_MAX 27

struct layer_stream {
    struct layer_source src;
    enum layer_compression comp;
    uint64_t max;
    uint64_t total;
    EVP_MD_CTX *sha;

    unsigned char in[STREAM_IN_SIZE];
    size_t in_len, in_pos;
    bool in_eof;

    unsigned char out[STREAM_OUT_SIZE];

    z_stream z;
    bool z_ready;
    bool z_member_done;

    ZSTD_DCtx *zd;
    size_t zstd_hint; /* last ZSTD_decompressStream result; 0 = at a frame boundary */
};

static int read_some(struct layer_stream *s, unsigned char *buf, size_t len, size_t *got,
                     struct merr *err)
{
    if (s->src.read != NULL) {
        ssize_t n = s->src.read(s->src.ctx, buf, len, err);
        if (n < 0)
            return -1;
        *got = (size_t)n;
        return 0;
    }
    for (;;) {
        ssize_t n = read(s->src.fd, buf, len);
        if (n >= 0) {
            *got = (size_t)n;
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN) {
            struct pollfd p = { .fd = s->src.fd, .events = POLLIN };
            if (poll(&p, 1, -1) < 0 && errno != EINTR)
                return merr_set(err, MERR_IO, errno, "cannot wait for layer data");
            continue;
        }
        return merr_set(err, MERR_IO, errno, "cannot read layer data");
    }
}

/* Refills the input buffer once it is used up; sets in_eof at end of file. */
static int fill_input(struct layer_stream *s, struct merr *err)
{
    if (s->in_pos < s->in_len || s->in_eof)
        return 0;
    size_t got;
    if (read_some(s, s->in, sizeof s->in, &got, err) < 0)
        return -1;
    s->in_pos = 0;
    s->in_len = got;
    if (got == 0)
        s->in_eof = true;
    return 0;
}

static bool input_exhausted(const struct layer_stream *s)
{
    return s->in_pos == s->in_len && s->in_eof;
}

static ssize_t read_plain(struct layer_stream *s, const void **buf, struct merr *err)
{
    /* Bytes read ahead by detection come first. */
    if (s->in_pos < s->in_len) {
        size_t n = s->in_len - s->in_pos;
        *buf = s->in + s->in_pos;
        s->in_pos = s->in_len;
        return (ssize_t)n;
    }
    if (s->in_eof)
        return 0;
    size_t got;
    if (read_some(s, s->out, sizeof s->out, &got, err) < 0)
        return -1;
    if (got == 0)
        s->in_eof = true;
    *buf = s->out;
    return (ssize_t)got;
}

static ssize_t read_gzip(struct layer_stream *s, const void **buf, struct merr *err)
{
    for (;;) {
        if (fill_input(s, err) < 0)
            return -1;
        if (s->z_member_done) {
            if (input_exhausted(s))
                return 0;
            /* Concatenated gzip members form one stream, as with gzip -d. */
            if (inflateReset(&s->z) != Z_OK)
                return merr_set(err, MERR_INTERNAL, 0, "cannot reset gzip decoder");
            s->z_member_done = false;
        }
        s->z.next_in = s->in + s->in_pos;
        s->z.avail_in = (uInt)(s->in_len - s->in_pos);
        s->z.next_out = s->out;
        s->z.avail_out = sizeof s->out;
        int r = inflate(&s->z, Z_NO_FLUSH);
        s->in_pos = s->in_len - s->z.avail_in;
        size_t produced = sizeof s->out - s->z.avail_out;
        if (r == Z_STREAM_END)
            s->z_member_done = true;
        else if (r == Z_MEM_ERROR)
            return merr_set(err, MERR_NOMEM, 0, "out of memory in gzip decoder");
        else if (r != Z_OK && r != Z_BUF_ERROR)
            return merr_set(err, MERR_CORRUPT, 0, "corrupt gzip layer: %s",
                            s->z.msg != NULL ? s->z.msg : "bad data");
        if (produced > 0) {
            *buf = s->out;
            return (ssize_t)produced;
        }
        if (!s->z_member_done && input_exhausted(s))
            return merr_set(err, MERR_CORRUPT, 0, "truncated gzip layer");
    }
}

static ssize_t read_zstd(struct layer_stream *s, const void **buf, struct merr *err)
{
    for (;;) {
        if (fill_input(s, err) < 0)
            return -1;
        ZSTD_inBuffer in = { s->in, s->in_len, s->in_pos };
        ZSTD_outBuffer out = { s->out, sizeof s->out, 0 };
        bool had_input = in.pos < in.size;
        size_t r = ZSTD_decompressStream(s->zd, &out, &in);
        s->in_pos = in.pos;
        if (ZSTD_isError(r))
            return merr_set(err, MERR_CORRUPT, 0, "corrupt zstd layer: %s", ZSTD_getErrorName(r));
        if (had_input || out.pos > 0)
            s->zstd_hint = r;
        if (out.pos > 0) {
            *buf = s->out;
            return (ssize_t)out.pos;
        }
        if (input_exhausted(s)) {
            if (s->zstd_hint != 0)
                return merr_set(err, MERR_CORRUPT, 0, "truncated zstd layer");
            return 0;
        }
    }
}

/* Reads until at least 4 bytes are buffered (or EOF) and picks the decoder. */
static int detect_compression(struct layer_stream *s, struct merr *err)
{
    static const unsigned char gzip_magic[] = { 0x1f, 0x8b };
    static const unsigned char zstd_magic[] = { 0x28, 0xb5, 0x2f, 0xfd };
    while (s->in_len < sizeof zstd_magic && !s->in_eof) {
        size_t got;
        if (read_some(s, s->in + s->in_len, sizeof s->in - s->in_len, &got, err) < 0)
            return -1;
        if (got == 0)
            s->in_eof = true;
        s->in_len += got;
    }
    if (s->in_len >= sizeof gzip_magic && memcmp(s->in, gzip_magic, sizeof gzip_magic) == 0)
        s->comp = LAYER_COMP_GZIP;
    else if (s->in_len >= sizeof zstd_magic && memcmp(s->in, zstd_magic, sizeof zstd_magic) == 0)
        s->comp = LAYER_COMP_ZSTD;
    else
        s->comp = LAYER_COMP_NONE;
    return 0;
}

int layer_stream_new(struct layer_stream **out, const struct layer_source *src,
                     enum layer_compression comp, uint64_t max_uncompressed, struct merr *err)
{
    struct layer_stream *s = calloc(1, sizeof *s);
    if (s == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate layer stream");
    s->src = *src;
    s->comp = comp;
    s->max = max_uncompressed;
    s->zstd_hint = 1;
    s->sha = src->no_digest ? NULL : EVP_MD_CTX_new();
    if (!src->no_digest && (s->sha == NULL || EVP_DigestInit_ex(s->sha, EVP_sha256(), NULL) != 1)) {
        layer_stream_free(s);
        return merr_set(err, MERR_CRYPTO, 0, "cannot initialise sha256");
    }
    if (s->comp == LAYER_COMP_DETECT && detect_compression(s, err) < 0) {
        layer_stream_free(s);
        return -1;
    }
    if (s->comp == LAYER_COMP_GZIP) {
        /* 16 + MAX_WBITS: gzip wrapper only, never raw or zlib streams. */
        if (inflateInit2(&s->z, 16 + MAX_WBITS) != Z_OK) {
            layer_stream_free(s);
            return merr_set(err, MERR_NOMEM, 0, "cannot initialise gzip decoder");
        }
        s->z_ready = true;
    } else if (s->comp == LAYER_COMP_ZSTD) {
        s->zd = ZSTD_createDCtx();
        if (s->zd == NULL ||
            ZSTD_isError(ZSTD_DCtx_setParameter(s->zd, ZSTD_d_windowLogMax,
                                                STREAM_ZSTD_WINDOW_LOG_MAX))) {
            layer_stream_free(s);
            return merr_set(err, MERR_NOMEM, 0, "cannot initialise zstd decoder");
        }
    } else if (s->comp != LAYER_COMP_NONE) {
        layer_stream_free(s);
        return merr_set(err, MERR_INVALID, 0, "unknown layer compression %d", (int)comp);
    }
    *out = s;
    return 0;
}

ssize_t layer_stream_read(struct layer_stream *s, const void **buf, struct merr *err)
{
    ssize_t n;
    switch (s->comp) {
    case LAYER_COMP_GZIP:
        n = read_gzip(s, buf, err);
        break;
    case LAYER_COMP_ZSTD:
        n = read_zstd(s, buf, err);
        break;
    default:
        n = read_plain(s, buf, err);
        break;
    }
    if (n <= 0)
        return n;
    if ((uint64_t)n > s->max - s->total)
        return merr_set(err, MERR_INVALID, 0, "layer exceeds the limit of %llu uncompressed bytes",
                        (unsigned long long)s->max);
    s->total += (uint64_t)n;
    if (s->sha != NULL && EVP_DigestUpdate(s->sha, *buf, (size_t)n) != 1)
        return merr_set(err, MERR_CRYPTO, 0, "cannot hash layer data");
    return n;
}

void layer_format_diff_id(const unsigned char digest[32], char out[LAYER_DIFF_ID_LEN])
{
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "sha256:", 7);
    for (size_t i = 0; i < 32; i++) {
        out[7 + 2 * i] = hex[digest[i] >> 4];
        out[7 + 2 * i + 1] = hex[digest[i] & 0xf];
    }
    out[7 + 64] = '\0';
}

int layer_stream_finish(struct layer_stream *s, struct layer_result *res, struct merr *err)
{
    const void *buf;
    ssize_t n;
    while ((n = layer_stream_read(s, &buf, err)) > 0)
        ;
    if (n < 0)
        return -1;
    if (s->sha == NULL) { /* no_digest: the size alone */
        if (res != NULL)
            *res = (struct layer_result){ .size = s->total };
        return 0;
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(s->sha, digest, &len) != 1 || len != 32)
        return merr_set(err, MERR_CRYPTO, 0, "cannot finish sha256");
    if (res != NULL) {
        layer_format_diff_id(digest, res->diff_id);
        res->size = s->total;
    }
    return 0;
}

enum layer_compression layer_stream_compression(const struct layer_stream *s)
{
    return s->comp;
}

void layer_stream_free(struct layer_stream *s)
{
    if (s == NULL)
        return;
    if (s->z_ready)
        inflateEnd(&s->z);
    ZSTD_freeDCtx(s->zd);
    EVP_MD_CTX_free(s->sha);
    free(s);
}
