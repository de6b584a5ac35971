/* A growable byte buffer with a hard size cap (after curl's dynbuf): what a peer sends is
 * collected here, never past max. */
#ifndef MACHINE_BUF_H
#define MACHINE_BUF_H

#include <stddef.h>

#include "cleanup.h"

struct merr;

struct abuf {
    char *data;
    size_t len;
    size_t cap;
    size_t max; /* 0: unlimited */
};

/* MERR_NOMEM, or MERR_INVALID when max would be exceeded. data stays
 * NUL-terminated. */
MUST_CHECK int abuf_append(struct abuf *b, const void *data, size_t len, struct merr *err);
MUST_CHECK int abuf_printf(struct abuf *b, struct merr *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Drops the first n bytes. */
void abuf_consume(struct abuf *b, size_t n);
void abuf_reset(struct abuf *b);
void abuf_release(struct abuf *b);

#endif
