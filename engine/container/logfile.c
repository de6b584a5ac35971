#include "logfile.h"

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "container.h"
#include "error.h"
#include "fsutil.h"

char *logline_format(int stream, const char *data, size_t len, int64_t unix_ns, size_t *out_len)
{
    auto_free char *ts = fmt_rfc3339_nano(unix_ns);
    json_t *j = json_pack("{s:s%,s:s,s:s}", "log", data, len, "stream",
                          stream == 2 ? "stderr" : "stdout", "time", ts);
    char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (text == NULL)
        abort();
    size_t n = strlen(text);
    char *line = realloc(text, n + 2);
    if (line == NULL)
        abort();
    line[n] = '\n';
    line[n + 1] = '\0';
    *out_len = n + 1;
    return line;
}

int parse_timestamp(const char *s, int64_t *unix_ns, struct merr *err)
{
    if (s == NULL || s[0] == '\0')
        return merr_set(err, MERR_INVALID, 0, "empty timestamp");
    if (isdigit((unsigned char)s[0]) && strchr(s, '-') == NULL) {
        char *end = NULL;
        long long secs = strtoll(s, &end, 10);
        long long frac = 0;
        if (*end == '.') {
            const char *f = end + 1;
            int digits = 0;
            while (isdigit((unsigned char)*f) && digits < 9) {
                frac = frac * 10 + (*f - '0');
                f++;
                digits++;
            }
            while (digits++ < 9)
                frac *= 10;
            while (isdigit((unsigned char)*f))
                f++;
            end = (char *)f;
        }
        if (*end != '\0')
            return merr_set(err, MERR_INVALID, 0, "invalid timestamp '%s'", s);
        *unix_ns = secs * 1000000000LL + frac;
        return 0;
    }
    struct tm tm = { 0 };
    const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (rest == NULL)
        return merr_set(err, MERR_INVALID, 0, "invalid timestamp '%s'", s);
    long long frac = 0;
    if (*rest == '.') {
        rest++;
        int digits = 0;
        while (isdigit((unsigned char)*rest)) {
            if (digits < 9) {
                frac = frac * 10 + (*rest - '0');
                digits++;
            }
            rest++;
        }
        while (digits++ < 9)
            frac *= 10;
    }
    long offset = 0;
    if (*rest == 'Z') {
        rest++;
    } else if (*rest == '+' || *rest == '-') {
        int hh = 0, mm = 0;
        if (sscanf(rest + 1, "%2d:%2d", &hh, &mm) != 2)
            return merr_set(err, MERR_INVALID, 0, "invalid timestamp '%s'", s);
        offset = (hh * 3600L + mm * 60L) * (*rest == '+' ? 1 : -1);
        rest += 6;
    }
    if (*rest != '\0')
        return merr_set(err, MERR_INVALID, 0, "invalid timestamp '%s'", s);
    time_t t = timegm(&tm);
    *unix_ns = ((long long)t - offset) * 1000000000LL + frac;
    return 0;
}

int logline_parse(const char *line, size_t len, int *stream, char **data, size_t *data_len,
                  int64_t *unix_ns, struct merr *err)
{
    json_error_t jerr;
    json_t *j = json_loadb(line, len, 0, &jerr);
    if (j == NULL)
        return merr_set(err, MERR_CORRUPT, 0, "invalid log record: %s", jerr.text);
    json_t *log = json_object_get(j, "log");
    const char *st = json_string_value(json_object_get(j, "stream"));
    const char *time = json_string_value(json_object_get(j, "time"));
    int rc = -1;
    if (!json_is_string(log) || st == NULL || time == NULL) {
        merr_set(err, MERR_CORRUPT, 0, "incomplete log record");
    } else if (parse_timestamp(time, unix_ns, err) == 0) {
        *stream = strcmp(st, "stderr") == 0 ? 2 : 1;
        *data_len = json_string_length(log);
        *data = xcalloc(*data_len + 1, 1);
        memcpy(*data, json_string_value(log), *data_len);
        rc = 0;
    }
    json_decref(j);
    return rc;
}
