#include "log.h"

#include <stdarg.h>
#include <time.h>

void mlog_printf(const struct mlog *log, enum mlog_level level, const char *fmt, ...)
{
    if (log == NULL || level > log->level)
        return;
    FILE *out = log->out != NULL ? log->out : stderr;
    if (level == MLOG_DEBUG) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        fprintf(out, "(debug %02d:%02d:%02d.%03ld) ", tm.tm_hour, tm.tm_min, tm.tm_sec,
                ts.tv_nsec / 1000000);
    } else if (level == MLOG_WARN) {
        fputs("warning: ", out);
    }
    va_list ap;
    va_start(ap, fmt);
    vfprintf(out, fmt, ap);
    va_end(ap);
    fputc('\n', out);
    fflush(out);
}
