#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int merr_set(struct merr *err, enum merr_code code, int sys_errno, const char *fmt, ...)
{
    if (err == NULL)
        return -1;
    err->code = code;
    err->sys_errno = sys_errno;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        err->msg[0] = '\0';
    if (sys_errno != 0) {
        size_t len = strlen(err->msg);
        if (len < sizeof err->msg)
            snprintf(err->msg + len, sizeof err->msg - len, ": %s", strerror(sys_errno));
    }
    return -1;
}

int merr_prefix(struct merr *err, const char *fmt, ...)
{
    if (err == NULL)
        return -1;
    char prefix[MERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    char old[MERR_MSG_MAX];
    memcpy(old, err->msg, sizeof old);
    /* Truncating an over-long message is the intended behaviour. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-truncation"
    snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
#pragma GCC diagnostic pop
    return -1;
}

void merr_clear(struct merr *err)
{
    if (err == NULL)
        return;
    err->code = MERR_OK;
    err->sys_errno = 0;
    err->msg[0] = '\0';
}

const char *merr_code_name(enum merr_code code)
{
    static const char *const names[] = {
        [MERR_OK] = "ok",
        [MERR_INVALID] = "invalid",
        [MERR_NOT_FOUND] = "not-found",
        [MERR_EXISTS] = "exists",
        [MERR_IO] = "io",
        [MERR_CORRUPT] = "corrupt",
        [MERR_UNSUPPORTED] = "unsupported",
        [MERR_TIMEOUT] = "timeout",
        [MERR_UNREACHABLE] = "unreachable",
        [MERR_AUTH] = "auth",
        [MERR_HOSTKEY] = "hostkey",
        [MERR_CRYPTO] = "crypto",
        [MERR_PERM] = "permission",
        [MERR_NOMEM] = "nomem",
        [MERR_PROTOCOL] = "protocol",
        [MERR_PRECREATE] = "precreate",
        [MERR_REMOTE] = "remote",
        [MERR_BUSY] = "busy",
        [MERR_INTERNAL] = "internal",
    };
    if ((size_t)code < sizeof names / sizeof names[0] && names[code] != NULL)
        return names[code];
    return "unknown";
}
