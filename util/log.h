/* Debug/progress logging carried in a context, never a global. Library code
 * logs only at debug level; errors travel back in struct merr. */
#ifndef MACHINE_LOG_H
#define MACHINE_LOG_H

#include <stdio.h>

enum mlog_level { MLOG_ERROR = 0, MLOG_WARN, MLOG_INFO, MLOG_DEBUG };

struct mlog {
    enum mlog_level level;
    FILE *out; /* NULL: stderr */
};

void mlog_printf(const struct mlog *log, enum mlog_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define mlog_debug(log, ...) mlog_printf((log), MLOG_DEBUG, __VA_ARGS__)
#define mlog_info(log, ...) mlog_printf((log), MLOG_INFO, __VA_ARGS__)
#define mlog_warn(log, ...) mlog_printf((log), MLOG_WARN, __VA_ARGS__)

#endif
