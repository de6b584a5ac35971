/* `machine scp` argument forms (pure): [[user@]machine:]path. */
#ifndef MACHINE_CLI_SCPPATH_H
#define MACHINE_CLI_SCPPATH_H

#include "cleanup.h"

struct merr;

struct scp_path {
    char *user;    /* NULL: the machine's SSH user */
    char *machine; /* NULL: a local path */
    char *path;
};

/* "h1:/etc/x", "root@h1:x", "./a:b" (local, has a slash before the colon), "/tmp/x" (local).
 * An empty remote path means the remote user's home ("."). */
int scp_path_parse(const char *arg, struct scp_path *out, struct merr *err) MUST_CHECK;
void scp_path_release(struct scp_path *p);

#endif
