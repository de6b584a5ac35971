/* NULL-terminated string vectors (free with strv_free or the auto_strv cleanup attribute). */
#ifndef MACHINE_STRV_H
#define MACHINE_STRV_H

#include <stdbool.h>
#include <stddef.h>

size_t strv_len(char *const *v);
char **strv_push(char **v, const char *s);
char **strv_dup(char *const *v);
void strv_free(char **v);
/* Whether s is one of v's strings (v may be NULL). */
bool strv_contains(char *const *v, const char *s);

#endif
