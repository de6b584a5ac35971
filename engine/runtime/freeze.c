/* docker pause/unpause: freezing a container's cgroup. The v1 freezer where it is mounted (v1
 * and hybrid layouts), else cgroup.freeze of cgroup v2 (a core file of every non-root cgroup). */
#include "runtime-priv.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "clock.h"

#define FREEZE_POLLS 1000 /* x 10 ms */

/* v1: write the state, then read it back until the kernel is done (FREEZING is transient). */
static int freeze_v1(const char *dir, bool freeze, struct merr *err)
{
    const char *want = freeze ? "FROZEN" : "THAWED";
    for (int i = 0; i < FREEZE_POLLS; i++) {
        if ((i % 50) == 0 && rt_write_file(dir, "freezer.state", want, err) < 0)
            return -1;
        char buf[32];
        if (rt_read_file(dir, "freezer.state", buf, sizeof buf, err) < 0)
            return -1;
        if (strncmp(buf, want, strlen(want)) == 0)
            return 0;
        clock_sleep_ms(10);
    }
    return merr_set(err, MERR_TIMEOUT, 0, "cgroup '%s' did not become %s", dir, want);
}

/* v2: cgroup.freeze, then cgroup.events says "frozen 1" (or 0). */
static int freeze_v2(const char *dir, bool freeze, struct merr *err)
{
    if (rt_write_file(dir, "cgroup.freeze", freeze ? "1" : "0", err) < 0)
        return -1;
    for (int i = 0; i < FREEZE_POLLS; i++) {
        char buf[256];
        uint64_t frozen = 0;
        if (rt_read_file(dir, "cgroup.events", buf, sizeof buf, err) < 0)
            return -1;
        if (rt_kv_lookup(buf, "frozen", &frozen) < 0)
            return 0; /* a kernel without the key: trust the write */
        if ((frozen != 0) == freeze)
            return 0;
        clock_sleep_ms(10);
    }
    return merr_set(err, MERR_TIMEOUT, 0, "cgroup '%s' did not %s", dir,
                    freeze ? "freeze" : "thaw");
}

static int set_frozen(struct rt_container *c, bool freeze, struct merr *err)
{
    struct rt_cgroup *cg = rt_container_cgroup(c);
    if (cg->freezer >= 0)
        return freeze_v1(cg->dirs[cg->freezer], freeze, err);
    if (cg->unified >= 0)
        return freeze_v2(cg->dirs[cg->unified], freeze, err);
    return merr_set(err, MERR_UNSUPPORTED, 0,
                    "pausing containers needs the freezer cgroup or cgroup v2");
}

int rt_pause(struct rt_container *c, struct merr *err)
{
    return set_frozen(c, true, err);
}

int rt_resume(struct rt_container *c, struct merr *err)
{
    return set_frozen(c, false, err);
}
