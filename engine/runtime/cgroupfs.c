/* Mounting the cgroup filesystems where the host's init did not (no systemd, a chroot or a
 * network namespace host whose /sys is a fresh sysfs): cgroup2 when the kernel has it and no
 * v1 hierarchy is in use, else the v1 hierarchies the way cgroupfs-mount (docker's sysvinit
 * helper) does: a tmpfs at the root and one cgroup mount per hierarchy from /proc/cgroups. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "cleanup.h"
#include "error.h"
#include "log.h"
#include "runtime-priv.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#ifndef CGROUP_SUPER_MAGIC
#define CGROUP_SUPER_MAGIC 0x27e0eb
#endif
#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

/* Whether a /proc/filesystems buffer lists fstype (second column, or the only one). */
static bool filesystems_have(const char *filesystems, const char *fstype)
{
    size_t n = strlen(fstype);
    for (const char *p = filesystems; p != NULL && *p != '\0';) {
        const char *end = strchr(p, '\n');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        const char *name = memchr(p, '\t', len);
        name = name != NULL ? name + 1 : p;
        while (name < p + len && (*name == ' ' || *name == '\t'))
            name++;
        if ((size_t)(p + len - name) == n && strncmp(name, fstype, n) == 0)
            return true;
        p = end != NULL ? end + 1 : NULL;
    }
    return false;
}

static int plan_add(struct rt_cgroupfs_plan *plan, unsigned hierarchy, const char *name,
                    struct merr *err)
{
    for (size_t i = 0; hierarchy != 0 && i < plan->n; i++) {
        if (plan->mounts[i].hierarchy != hierarchy)
            continue;
        size_t used = strlen(plan->mounts[i].controllers);
        if (used + 1 + strlen(name) >= sizeof plan->mounts[i].controllers)
            return merr_set(err, MERR_CORRUPT, 0, "too many controllers in one hierarchy");
        snprintf(plan->mounts[i].controllers + used, sizeof plan->mounts[i].controllers - used,
                 ",%s", name);
        return 0;
    }
    if (plan->n >= RT_CGROUPFS_MAX)
        return merr_set(err, MERR_CORRUPT, 0, "too many cgroup controllers in /proc/cgroups");
    if (strlen(name) >= sizeof plan->mounts[0].controllers)
        return merr_set(err, MERR_CORRUPT, 0, "cgroup controller name too long");
    plan->mounts[plan->n].hierarchy = hierarchy;
    snprintf(plan->mounts[plan->n].controllers, sizeof plan->mounts[0].controllers, "%s", name);
    plan->n++;
    return 0;
}

int rt_cgroupfs_plan(const char *filesystems, const char *proc_cgroups,
                     struct rt_cgroupfs_plan *plan, struct merr *err)
{
    *plan = (struct rt_cgroupfs_plan){ 0 };
    bool has_v2 = filesystems_have(filesystems, "cgroup2");
    bool has_v1 = filesystems_have(filesystems, "cgroup");
    bool v1_in_use = false;
    /* "#subsys_name hierarchy num_cgroups enabled": a hierarchy other than 0 is a v1 mount
     * somewhere on this kernel; 0 means the controller is free (or bound to cgroup2). */
    for (const char *p = proc_cgroups; p != NULL && *p != '\0';) {
        const char *end = strchr(p, '\n');
        char name[64];
        unsigned hier = 0, count = 0, enabled = 0;
        if (*p != '#' && sscanf(p, "%63s %u %u %u", name, &hier, &count, &enabled) == 4 &&
            enabled) {
            if (hier != 0)
                v1_in_use = true;
            if (has_v1 && plan_add(plan, hier, name, err) < 0)
                return -1;
        }
        p = end != NULL ? end + 1 : NULL;
    }
    if (has_v2 && !v1_in_use) {
        plan->v2 = true;
        plan->n = 0;
        return 0;
    }
    if (!has_v1 || plan->n == 0)
        return merr_set(err, MERR_UNSUPPORTED, 0,
                        "the kernel has no usable cgroup filesystem (neither cgroup2 nor enabled "
                        "cgroup v1 controllers in /proc/filesystems and /proc/cgroups)");
    return 0;
}

static unsigned long fstype_at(const char *path)
{
    struct statfs st;
    return statfs(path, &st) == 0 ? (unsigned long)st.f_type : 0;
}

/* The v1 layout: tmpfs, then a directory per hierarchy ("cpu,cpuacct") with a symlink per
 * controller of a shared one, as systemd and cgroupfs-mount lay it out. */
static int mount_v1(const char *root, const struct rt_cgroupfs_plan *plan, struct merr *err)
{
    if (mount("cgroup", root, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755") < 0)
        return merr_set(err, MERR_IO, errno, "cannot mount a tmpfs at '%s'", root);
    size_t mounted = 0;
    for (size_t i = 0; i < plan->n; i++) {
        const char *ctl = plan->mounts[i].controllers;
        char dir[512];
        snprintf(dir, sizeof dir, "%s/%s", root, ctl);
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
            return merr_set(err, MERR_IO, errno, "cannot create '%s'", dir);
        if (mount("cgroup", dir, "cgroup", MS_NOSUID | MS_NODEV | MS_NOEXEC, ctl) < 0) {
            rmdir(dir); /* bound elsewhere (cgroup2, another hierarchy): left out as
                         * cgroupfs-mount does */
            continue;
        }
        mounted++;
        if (strchr(ctl, ',') == NULL)
            continue;
        char copy[sizeof plan->mounts[0].controllers], *save = NULL;
        snprintf(copy, sizeof copy, "%s", ctl);
        for (char *c = strtok_r(copy, ",", &save); c != NULL; c = strtok_r(NULL, ",", &save)) {
            char link[512];
            snprintf(link, sizeof link, "%s/%s", root, c);
            rt_best_effort(symlink(ctl, link));
        }
    }
    if (mounted == 0)
        return merr_set(err, MERR_UNSUPPORTED, 0,
                        "no cgroup v1 controller could be mounted under '%s'", root);
    return 0;
}

int rt_cgroupfs_ensure(const char *root, const struct mlog *log, struct merr *err)
{
    unsigned long t = fstype_at(root);
    if (t == CGROUP2_SUPER_MAGIC || t == TMPFS_MAGIC || t == CGROUP_SUPER_MAGIC)
        return 0;
    if (t == 0)
        return merr_set(err, MERR_UNSUPPORTED, errno, "cannot inspect cgroup root '%s'", root);
    auto_free char *filesystems = NULL, *cgroups = NULL;
    if (rt_read_all("/proc/filesystems", &filesystems, err) < 0)
        return -1;
    if (rt_read_all("/proc/cgroups", &cgroups, err) < 0) {
        /* no /proc/cgroups: a kernel without v1 controllers */
        merr_clear(err);
        cgroups = strdup("");
        if (cgroups == NULL)
            return merr_set(err, MERR_NOMEM, ENOMEM, "out of memory");
    }
    struct rt_cgroupfs_plan plan;
    if (rt_cgroupfs_plan(filesystems, cgroups, &plan, err) < 0)
        return -1;
    if (plan.v2) {
        if (mount("cgroup2", root, "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
            return merr_set(err, MERR_IO, errno, "cannot mount cgroup2 at '%s'", root);
        if (log != NULL)
            mlog_info(log, "no cgroup filesystem was mounted: mounted cgroup2 at '%s'", root);
        return 0;
    }
    if (mount_v1(root, &plan, err) < 0)
        return -1;
    if (log != NULL)
        mlog_info(log, "no cgroup filesystem was mounted: mounted the v1 hierarchies under '%s'",
                  root);
    return 0;
}
