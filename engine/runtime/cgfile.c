/* Reading any file of a container's cgroup by controller (docker stats' extra counters). */
#include "runtime-priv.h"

#include <stdio.h>
#include <string.h>

int rt_cgroup_read(struct rt_container *c, const char *controller, const char *file, char **out,
                   struct merr *err)
{
    *out = NULL;
    struct rt_cgroup *cg = rt_container_cgroup(c);
    const char *dir = NULL;
    if (cg->rt->mode == RT_CGROUP_V2) {
        dir = cg->n_dirs > 0 ? cg->dirs[0] : NULL;
    } else if (controller[0] == '\0') {
        dir = cg->unified >= 0 ? cg->dirs[cg->unified] : NULL;
    } else {
        for (size_t i = 0; i < cg->n_dirs && dir == NULL; i++)
            if ((int)i != cg->unified && rt_option_present(cg->names[i], controller))
                dir = cg->dirs[i];
    }
    if (dir == NULL)
        return merr_set(err, MERR_NOT_FOUND, 0, "no %s cgroup for '%s'", controller, cg->id);
    char path[1100];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    return rt_read_all(path, out, err);
}

bool rt_container_cgroup_v2(struct rt_container *c)
{
    return rt_container_cgroup(c)->rt->mode == RT_CGROUP_V2;
}
