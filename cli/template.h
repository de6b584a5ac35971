/* A small subset of Go templates, as users of `ls --format` / `inspect -f` write them:
 * literal text, {{.Field}}, {{.A.B}}, {{.}}, {{json .X}}, {{prettyjson .X}}, {{upper .X}},
 * {{lower .X}}.
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

/* Aligns tab-separated cells into columns, as Go's text/tabwriter with the given minimum cell
 * width and padding (docker-machine's `ls` uses 5 and 3): a cell ended by a tab is padded with
 * spaces to its column's width; the last cell of a line is left as it is. */
char *template_tabulate(const char *text, size_t minwidth, size_t padding);

#endif
