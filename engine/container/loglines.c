/* Lines of a log record: dockerd keeps one json-file record per line, so `logs --tail N` counts
 * lines and `--timestamps` stamps every line. A record here may hold several lines (one read of
 * the container's output); these pure helpers give them dockerd's line semantics. */
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "logfile.h"

size_t loglines_count(const char *data, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += data[i] == '\n';
    return n + (len > 0 && data[len - 1] != '\n');
}

size_t loglines_tail_offset(const char *data, size_t len, size_t n)
{
    if (n == 0)
        return len;
    size_t seen = 0;
    /* a line ends at '\n' (or at the end): walk back over n line ends */
    size_t i = len;
    if (i > 0 && data[i - 1] == '\n')
        i--;
    while (i > 0) {
        if (data[i - 1] == '\n' && ++seen == n)
            return i;
        i--;
    }
    return 0;
}

char *loglines_prefix(const char *ts, bool details)
{
    if (!details)
        return ts != NULL ? xstrdup(ts) : NULL;
    return xasprintf("%s%s", ts != NULL ? ts : "", ts != NULL ? " " : "");
}

char *loglines_stamp(const char *prefix, const char *data, size_t len, size_t *out_len)
{
    size_t plen = strlen(prefix), lines = loglines_count(data, len);
    char *out = xcalloc(len + lines * (plen + 1) + 1, 1);
    size_t o = 0;
    bool at_start = true;
    for (size_t i = 0; i < len; i++) {
        if (at_start) {
            memcpy(out + o, prefix, plen);
            o += plen;
            out[o++] = ' ';
            at_start = false;
        }
        out[o++] = data[i];
        at_start = data[i] == '\n';
    }
    *out_len = o;
    return out;
}
