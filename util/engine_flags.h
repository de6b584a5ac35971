/* machine-engine's command-line flags, as one table: the engine parses its command line with
 * it, and `machine create` checks every --engine-opt against it before touching a host, so
 * an option the engine would refuse at start is refused at once. dockerd's daemon options
 * that matter are here: honoured where the engine can, accepted where the value is what the
 * engine does anyway (--icc=true), refused by name otherwise. */
#ifndef MACHINE_ENGINE_FLAGS_H
#define MACHINE_ENGINE_FLAGS_H

#include <stdbool.h>
#include <stddef.h>

#include "cleanup.h"
#include "error.h"

enum engine_flag_kind {
    EFLAG_BOOL,      /* --x, --x=true|false */
    EFLAG_TRUE_ONLY, /* a bool whose false is not supported (the engine always does it) */
    EFLAG_STRING,
    EFLAG_LIST,      /* repeatable */
    EFLAG_UINT,      /* a number in [min, max] */
    EFLAG_CHOICE,    /* one of choices ("a|b") */
    EFLAG_LOG_LEVEL,
    EFLAG_DEBUG,
    EFLAG_REFUSED, /* dockerd's, not supported by machine-engine */
};

struct engine_flag {
    const char *name;
    char short_name;
    enum engine_flag_kind kind;
    const char *choices; /* EFLAG_CHOICE */
    unsigned long min, max; /* EFLAG_UINT */
    const char *why;        /* EFLAG_REFUSED, EFLAG_CHOICE: what the engine has instead */
};

/* The table, terminated by an entry with name == NULL. */
extern const struct engine_flag engine_flags[];

const struct engine_flag *engine_flag_find(const char *name, size_t len);
const struct engine_flag *engine_flag_find_short(char c);
bool engine_flag_takes_value(const struct engine_flag *f);
/* Checks value (NULL: the flag without one) against the flag's kind: MERR_INVALID for a
 * malformed value, MERR_UNSUPPORTED "… is not supported by machine-engine". */
int engine_flag_check(const struct engine_flag *f, const char *value, struct merr *err) MUST_CHECK;
/* An --engine-opt as machine takes it: "name=value" or "name" (a bool). */
int engine_flag_check_opt(const char *kv, struct merr *err) MUST_CHECK;

#endif
