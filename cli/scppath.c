#include "scppath.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fsutil.h"
#include "machine.h"

void scp_path_release(struct scp_path *p)
{
    free(p->user);
    free(p->machine);
    free(p->path);
    p->user = p->machine = p->path = NULL;
}

int scp_path_parse(const char *arg, struct scp_path *out, struct merr *err)
{
    out->user = out->machine = out->path = NULL;
    if (arg == NULL || arg[0] == '\0')
        return merr_set(err, MERR_INVALID, 0, "empty scp path");
    const char *colon = strchr(arg, ':');
    const char *slash = strchr(arg, '/');
    if (colon == NULL || (slash != NULL && slash < colon)) {
        out->path = xstrdup(arg);
        return 0;
    }
    const char *host = arg;
    const char *at = memchr(arg, '@', (size_t)(colon - arg));
    if (at != NULL) {
        if (at == arg)
            return merr_set(err, MERR_INVALID, 0, "invalid scp path '%s': empty user", arg);
        out->user = strndup(arg, (size_t)(at - arg));
        host = at + 1;
    }
    out->machine = strndup(host, (size_t)(colon - host));
    if (out->machine == NULL || (at != NULL && out->user == NULL))
        abort();
    if (machine_validate_name(out->machine, err) < 0) {
        merr_prefix(err, "invalid scp path '%s'", arg);
        scp_path_release(out);
        return -1;
    }
    out->path = xstrdup(colon[1] != '\0' ? colon + 1 : ".");
    return 0;
}
