/* One error type for the whole project: a code, the errno that caused it (or 0)
 * and a one-line message. Fallible functions take `struct merr *err` as their
 * last argument and return < 0 (or NULL) on failure after filling it. */
#ifndef MACHINE_ERROR_H
#define MACHINE_ERROR_H

#include <stddef.h>

enum merr_code {
    MERR_OK = 0,
    MERR_INVALID,     /* bad input from the user or a caller */
    MERR_NOT_FOUND,
    MERR_EXISTS,
    MERR_IO,          /* a local system call failed */
    MERR_CORRUPT,     /* stored data cannot be parsed */
    MERR_UNSUPPORTED, /* operation not supported (by a driver, an OS, ...) */
    MERR_TIMEOUT,
    MERR_UNREACHABLE, /* network peer cannot be reached */
    MERR_AUTH,        /* authentication refused */
    MERR_HOSTKEY,     /* SSH host key mismatch */
    MERR_CRYPTO,      /* OpenSSL or key handling */
    MERR_PERM,        /* unsafe permissions, or permission denied */
    MERR_NOMEM,
    MERR_PROTOCOL,    /* a peer spoke nonsense */
    MERR_PRECREATE,   /* a driver's pre-create check failed (exit 3) */
    MERR_REMOTE,      /* a remote command failed */
    MERR_BUSY,        /* locked by another process */
    MERR_INTERNAL,
};

#define MERR_MSG_MAX 1024

struct merr {
    enum merr_code code;
    int sys_errno;
    char msg[MERR_MSG_MAX];
};

#define MERR_INIT { MERR_OK, 0, { 0 } }

/* Fills err (if non-NULL) and returns -1, so callers can `return merr_set(...)`.
 * When sys_errno != 0, ": strerror(sys_errno)" is appended to the message. */
int merr_set(struct merr *err, enum merr_code code, int sys_errno, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Prepends "context: " to the existing message; returns -1. */
int merr_prefix(struct merr *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void merr_clear(struct merr *err);

const char *merr_code_name(enum merr_code code);

#endif
