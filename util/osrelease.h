/* /etc/os-release (os-release(5)): the fields machine and the engine read. A pure parser. */
#ifndef MACHINE_OSRELEASE_H
#define MACHINE_OSRELEASE_H

#include "cleanup.h"

struct merr;

struct os_release {
    char *id;
    char *id_like;
    char *version_id;
    char *pretty_name;
};

/* Fills what text has (quotes and backslash escapes removed, comments skipped); never fails. */
void os_release_scan(const char *text, struct os_release *out);
/* os_release_scan, then MERR_PROTOCOL when there is no ID (out cleared). */
int os_release_parse(const char *text, struct os_release *out, struct merr *err) MUST_CHECK;
void os_release_clear(struct os_release *os);

#endif
