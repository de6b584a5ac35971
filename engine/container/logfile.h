/* docker's json-file log format, one record per line (pure):
 * {"log":"hi\n","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"} */
#ifndef MACHINE_ENGINE_LOGFILE_H
#define MACHINE_ENGINE_LOGFILE_H

#include <stddef.h>
#include <stdint.h>

#include "cleanup.h"

struct merr;

/* stream: 1 stdout, 2 stderr. Returns a malloc'd line ending in '\n'. */
char *logline_format(int stream, const char *data, size_t len, int64_t unix_ns, size_t *out_len);
int logline_parse(const char *line, size_t len, int *stream, char **data, size_t *data_len,
                  int64_t *unix_ns, struct merr *err) MUST_CHECK;
/* RFC 3339 (with optional fraction) → unix ns; also plain unix seconds "1700000000[.5]"
 * as `docker logs --since` sends. */
int parse_timestamp(const char *s, int64_t *unix_ns, struct merr *err) MUST_CHECK;

/* loglines.c: dockerd's one-record-per-line semantics over records holding several lines. */
#include <stdbool.h>
/* Lines in data: each '\n' ends one, and a last part without '\n' is one. */
size_t loglines_count(const char *data, size_t len);
/* Where the last n lines of data begin (0 when it has n lines or fewer; len for n = 0). */
size_t loglines_tail_offset(const char *data, size_t len, size_t n);
/* data with "PREFIX " at the start of every line (malloc'd). */
char *loglines_stamp(const char *prefix, const char *data, size_t len, size_t *out_len);
/* The PREFIX dockerd writes before each line for `logs --timestamps` (ts, may be NULL) and
 * `--details` (the record's attributes, always empty here, and a space): "TS", "" or "TS "
 * (malloc'd); NULL when neither is asked, i.e. the line goes out as it is. */
char *loglines_prefix(const char *ts, bool details);

#endif
