#include "strv.h"

#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "error.h"
#include "fsutil.h"

size_t strv_len(char *const *v)
{
    size_t n = 0;
    while (v != NULL && v[n] != NULL)
        n++;
    return n;
}

char **strv_push(char **v, const char *s)
{
    size_t n = strv_len(v);
    char **nv = realloc(v, (n + 2) * sizeof *nv);
    if (nv == NULL)
        abort();
    nv[n] = xstrdup(s);
    nv[n + 1] = NULL;
    return nv;
}

char **strv_dup(char *const *v)
{
    char **out = xcalloc(strv_len(v) + 1, sizeof *out);
    for (size_t i = 0; v != NULL && v[i] != NULL; i++)
        out[i] = xstrdup(v[i]);
    return out;
}

void strv_free(char **v)
{
    cleanup_strvp(&v);
}

bool strv_contains(char *const *v, const char *s)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}
