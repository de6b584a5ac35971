/* A small ustar writer (see tarw.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "tarw.h"

#define TAR_BLOCK 512
#define TARW_BUF (64u << 10)

static void octal(char *field, size_t width, uint64_t v)
{
    snprintf(field, width, "%0*llo", (int)width - 1, (unsigned long long)v);
}

int tar_header_encode(char block[TAR_BLOCK], const char *name, bool dir, uint64_t size,
                      struct merr *err)
{
    size_t n = strlen(name);
    if (n == 0 || n > 100)
        return merr_set(err, MERR_INVALID, 0, "tar entry name '%s' is empty or too long", name);
    memset(block, 0, TAR_BLOCK);
    memcpy(block, name, n);
    octal(block + 100, 8, dir ? 0755 : 0644);
    octal(block + 108, 8, 0);          /* uid */
    octal(block + 116, 8, 0);          /* gid */
    if (!dir && size >= (1ull << 33)) { /* 11 octal digits hold < 8 GiB */
        block[124] = (char)0x80;
        for (int i = 0; i < 8; i++)
            block[135 - i] = (char)((size >> (8 * i)) & 0xff);
    } else {
        octal(block + 124, 12, dir ? 0 : size);
    }
    octal(block + 136, 12, 0); /* mtime: fixed, so saves are reproducible */
    block[156] = dir ? '5' : '0';
    memcpy(block + 257, "ustar", 6);
    memcpy(block + 263, "00", 2);
    memset(block + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < TAR_BLOCK; i++)
        sum += (unsigned char)block[i];
    snprintf(block + 148, 8, "%06o", sum); /* six digits, NUL, then the space already there */
    block[155] = ' ';
    return 0;
}

static int flush(struct tarw *w, struct merr *err)
{
    if (w->len == 0)
        return 0;
    int rc = w->write(w->ctx, w->buf, w->len, err);
    w->len = 0;
    return rc;
}

static int put(struct tarw *w, const void *data, size_t len, struct merr *err)
{
    if (w->buf == NULL && (w->buf = malloc(TARW_BUF)) == NULL)
        return merr_set(err, MERR_NOMEM, 0, "cannot allocate");
    const char *p = data;
    while (len > 0) {
        size_t room = TARW_BUF - w->len;
        size_t n = len < room ? len : room;
        if (p != NULL)
            memcpy(w->buf + w->len, p, n);
        else
            memset(w->buf + w->len, 0, n);
        w->len += n;
        len -= n;
        if (p != NULL)
            p += n;
        if (w->len == TARW_BUF && flush(w, err) < 0)
            return -1;
    }
    return 0;
}

/* A numeric field: octal when it fits, GNU base-256 otherwise. */
static void number(char *field, size_t width, uint64_t v)
{
    if (v < (1ull << (3 * (width - 1)))) {
        octal(field, width, v);
        return;
    }
    memset(field, 0, width);
    field[0] = (char)0x80;
    for (size_t i = 0; i < width - 1 && i < 8; i++)
        field[width - 1 - i] = (char)((v >> (8 * i)) & 0xff);
}

static void checksum(char *block)
{
    memset(block + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < TAR_BLOCK; i++)
        sum += (unsigned char)block[i];
    snprintf(block + 148, 8, "%06o", sum);
    block[155] = ' ';
}

static void meta_block(char *block, const struct tarw_meta *m, const char *name, const char *link,
                       char type, uint64_t size)
{
    memset(block, 0, TAR_BLOCK);
    memcpy(block, name, strnlen(name, 100));
    number(block + 100, 8, m->mode & 07777);
    number(block + 108, 8, m->uid);
    number(block + 116, 8, m->gid);
    number(block + 124, 12, size);
    number(block + 136, 12, m->mtime > 0 ? (uint64_t)m->mtime : 0);
    block[156] = type;
    if (link != NULL)
        memcpy(block + 157, link, strnlen(link, 100));
    memcpy(block + 257, "ustar", 6);
    memcpy(block + 263, "00", 2);
    if (type == '3' || type == '4') {
        number(block + 329, 8, m->devmajor);
        number(block + 337, 8, m->devminor);
    }
    checksum(block);
}

/* "%d key=value\n" where the count includes itself; value may hold any bytes. */
static void pax_record_bin(char **buf, size_t *len, const char *key, const void *value,
                           size_t vlen)
{
    size_t body = strlen(key) + vlen + 3; /* ' ', '=', '\n' */
    size_t total = body + 1;
    while (total != body + (size_t)snprintf(NULL, 0, "%zu", total))
        total = body + (size_t)snprintf(NULL, 0, "%zu", total);
    char *n = realloc(*buf, *len + total + 1);
    if (n == NULL)
        abort();
    *buf = n;
    size_t off = *len + (size_t)sprintf(n + *len, "%zu %s=", total, key);
    memcpy(n + off, value, vlen);
    n[off + vlen] = '\n';
    *len += total;
}

static void pax_record(char **buf, size_t *len, const char *key, const char *value)
{
    pax_record_bin(buf, len, key, value, strlen(value));
}

int tarw_entry(struct tarw *w, const struct tarw_meta *m, struct merr *err)
{
    if (w->left > 0)
        return merr_set(err, MERR_INTERNAL, 0, "tar entry before the previous one ended");
    size_t nlen = strlen(m->name);
    if (nlen == 0)
        return merr_set(err, MERR_INVALID, 0, "empty tar entry name");
    bool long_name = nlen > 100, long_link = m->linkname != NULL && strlen(m->linkname) > 100;
    char block[TAR_BLOCK];
    if (long_name || long_link || m->n_xattrs > 0) {
        char *pax = NULL;
        size_t plen = 0;
        if (long_name)
            pax_record(&pax, &plen, "path", m->name);
        if (long_link)
            pax_record(&pax, &plen, "linkpath", m->linkname);
        for (size_t i = 0; i < m->n_xattrs; i++) {
            char *key = NULL;
            if (asprintf(&key, "SCHILY.xattr.%s", m->xattrs[i].name) < 0)
                abort();
            pax_record_bin(&pax, &plen, key, m->xattrs[i].value, m->xattrs[i].len);
            free(key);
        }
        struct tarw_meta pm = { .mode = 0644 };
        meta_block(block, &pm, "PaxHeader", NULL, 'x', plen);
        size_t pad = (TAR_BLOCK - plen % TAR_BLOCK) % TAR_BLOCK;
        int rc = put(w, block, TAR_BLOCK, err);
        if (rc == 0)
            rc = put(w, pax, plen, err);
        if (rc == 0)
            rc = put(w, NULL, pad, err);
        free(pax);
        if (rc < 0)
            return -1;
    }
    uint64_t size = m->type == '0' ? m->size : 0;
    meta_block(block, m, m->name, m->linkname, m->type, size);
    if (put(w, block, TAR_BLOCK, err) < 0)
        return -1;
    w->left = size;
    w->pad = (TAR_BLOCK - (w->left % TAR_BLOCK)) % TAR_BLOCK;
    return 0;
}

int tarw_header(struct tarw *w, const char *name, bool dir, uint64_t size, struct merr *err)
{
    if (w->left > 0)
        return merr_set(err, MERR_INTERNAL, 0, "tar entry before the previous one ended");
    char block[TAR_BLOCK];
    if (tar_header_encode(block, name, dir, size, err) < 0 || put(w, block, TAR_BLOCK, err) < 0)
        return -1;
    w->left = dir ? 0 : size;
    w->pad = (TAR_BLOCK - (w->left % TAR_BLOCK)) % TAR_BLOCK;
    return 0;
}

int tarw_data(struct tarw *w, const void *data, size_t len, struct merr *err)
{
    if (len > w->left)
        return merr_set(err, MERR_INTERNAL, 0, "tar entry data beyond its size");
    if (put(w, data, len, err) < 0)
        return -1;
    w->left -= len;
    if (w->left == 0 && w->pad > 0) {
        size_t pad = w->pad;
        w->pad = 0;
        return put(w, NULL, pad, err);
    }
    return 0;
}

int tarw_close(struct tarw *w, struct merr *err)
{
    if (w->left > 0)
        return merr_set(err, MERR_INTERNAL, 0, "tar entry shorter than its size");
    if (put(w, NULL, 2 * TAR_BLOCK, err) < 0)
        return -1;
    return flush(w, err);
}

void tarw_release(struct tarw *w)
{
    free(w->buf);
    w->buf = NULL;
}
