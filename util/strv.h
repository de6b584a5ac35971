/* NULL-terminated string vectors (free with strv_free or the auto_strv cleanup attribute). */
#ifndef MACHINE_STRV_H
#define MACHINE_STRV_H

#include <stddef.h>

size_t strv_len(char *const *v);
char **strv_push(char **v, const char *s);
char **strv_dup(char *const *v);
void strv_free(char **v);

#endif
