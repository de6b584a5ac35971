/* --init: where our init (machine-init, engine/init/) is, and the process it makes. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "strv.h"
#include "manager-priv.h"

#define INIT_NAME "machine-init"

/* Beside the engine's executable (the build tree), or in ../libexec when the executable is the
 * bundle's loader (lib/ld-linux-x86-64.so.2 running libexec/machine-engine). */
char *init_find(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return NULL;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash == NULL)
        return NULL;
    *slash = '\0';
    const char *const rel[] = { INIT_NAME, "../libexec/" INIT_NAME };
    for (size_t i = 0; i < 2; i++) {
        char *p = xasprintf("%s/%s", exe, rel[i]);
        if (access(p, X_OK) == 0)
            return p;
        free(p);
    }
    return NULL;
}

char **init_argv(char *const *argv)
{
    char **out = strv_push(NULL, INIT_CONTAINER_PATH);
    out = strv_push(out, "--");
    for (size_t i = 0; argv != NULL && argv[i] != NULL; i++)
        out = strv_push(out, argv[i]);
    return out;
}
