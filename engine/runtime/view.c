/* The rootfs mount, for callers outside rt_start. */
#include "runtime-priv.h"

int rt_mount_rootfs(const struct rt_spec *spec, struct merr *err)
{
    return rt_rootfs_mount(spec, err);
}
