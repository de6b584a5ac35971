/* A small subset of Go templates, as users of `ls --format` / `inspect -f` write them:
 * literal text, {{.Field}}, {{.A.B}}, {{.}}, {{json .X}}, {{upper .X}}, {{lower .X}}.
 * Anything else is MERR_INVALID, reported before any output. Pure. */
#ifndef MACHINE_CLI_TEMPLATE_H
#define MACHINE_CLI_TEMPLATE_H

#include <jansson.h>

#include "cleanup.h"

struct merr;

int template_check(const char *tmpl, struct merr *err) MUST_CHECK;
char *template_render(const char *tmpl, const json_t *data, struct merr *err) MUST_CHECK;
/* Replaces the two-character sequences \t and \n by a tab and a newline. */
char *template_unescape(const char *tmpl);

#endif
