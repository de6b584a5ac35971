/* A growable byte buffer with a hard size cap (after curl's dynbuf). */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

static int abuf_reserve(struct abuf *b, size_t extra, struct merr *err)
{
    if (b->max != 0 && (extra > b->max || b->len > b->max - extra))
        return merr_set(err, MERR_INVALID, 0, "buffer limit of %zu bytes exceeded", b->max);
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap != 0 ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (p == NULL)
        return merr_set(err, MERR_NOMEM, 0, "out of memory");
    b->data = p;
    b->cap = cap;
    return 0;
}

int abuf_append(struct abuf *b, const void *data, size_t len, struct merr *err)
{
    if (abuf_reserve(b, len, err) < 0)
        return -1;
    if (len > 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int abuf_printf(struct abuf *b, struct merr *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return merr_set(err, MERR_INTERNAL, 0, "cannot format text");
    if (abuf_reserve(b, (size_t)n, err) < 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void abuf_consume(struct abuf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->data, b->data + n, b->len - n);
        b->len -= n;
    }
    if (b->data != NULL)
        b->data[b->len] = '\0';
}

void abuf_reset(struct abuf *b)
{
    abuf_consume(b, b->len);
}

void abuf_release(struct abuf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
