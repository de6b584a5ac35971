/* The create options (options.h) turned into the runtime's terms at each start: rlimits,
 * groups (the user's primary group, its /etc/group groups, then GroupAdd, as dockerd), device
 * nodes from the host, namespaces of other containers, a shareable /dev/shm, cgroup extras. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "manager-priv.h"
#include "startopts.h"

#define MAX_HOST_DEVICES 512

void startopts_release(struct start_opts *so)
{
    free(so->rlimits);
    for (size_t i = 0; i < so->n_devices; i++)
        free((char *)so->devices[i].path);
    free(so->devices);
    free(so->gids);
    free(so->shm_dir);
    memset(so, 0, sizeof *so);
}

static void add_device(struct start_opts *so, const char *ctr_path, const struct stat *st,
                       const char *perms)
{
    struct rt_device *n = realloc(so->devices, (so->n_devices + 1) * sizeof *n);
    if (n == NULL)
        abort();
    so->devices = n;
    so->devices[so->n_devices++] = (struct rt_device){
        .path = xstrdup(ctr_path),
        .type = S_ISBLK(st->st_mode) ? 'b' : 'c',
        .major = major(st->st_rdev),
        .minor = minor(st->st_rdev),
        .mode = st->st_mode & 07777,
        .uid = st->st_uid,
        .gid = st->st_gid,
        .perms = perms,
    };
}

/* --privileged: every device node of the host's /dev (its own pty instance, shm and mqueue
 * stay the container's), like dockerd. */
static void host_devices(struct start_opts *so, const char *dir, int depth)
{
    auto_closedir DIR *d = opendir(dir);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL && so->n_devices < MAX_HOST_DEVICES) {
        static const char *const skip[] = { ".", "..", "pts", "shm", "mqueue", "ptmx", "console",
                                            ".lxc", ".udev" };
        bool skipped = false;
        for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
            skipped |= strcmp(de->d_name, skip[i]) == 0;
        if (skipped)
            continue;
        auto_free char *path = path_join(dir, de->d_name);
        struct stat st;
        if (lstat(path, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode) && depth < 3)
            host_devices(so, path, depth + 1);
        else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
            add_device(so, path, &st, "rwm");
    }
}

static int user_devices(struct start_opts *so, const struct ctr_options *o, struct merr *err)
{
    for (size_t i = 0; i < o->n_devices; i++) {
        const struct ctr_device *d = &o->devices[i];
        struct stat st;
        if (stat(d->host, &st) < 0)
            return merr_set(err, MERR_INVALID, 0,
                            "error gathering device information while adding custom device "
                            "\"%s\": no such file or directory",
                            d->host);
        if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode))
            return merr_set(err, MERR_INVALID, 0,
                            "error gathering device information while adding custom device "
                            "\"%s\": not a device node",
                            d->host);
        add_device(so, d->ctr, &st, d->perms);
    }
    return 0;
}

static int groups(struct start_opts *so, const struct ctr_options *o, const struct rt_user *u,
                  const char *group_file, struct merr *err)
{
    size_t n_add = 0;
    while (o->group_add != NULL && o->group_add[n_add] != NULL)
        n_add++;
    so->gids = xcalloc(1 + u->n_additional_gids + n_add, sizeof *so->gids);
    so->gids[so->n_gids++] = u->gid;
    for (size_t i = 0; i < u->n_additional_gids; i++)
        so->gids[so->n_gids++] = u->additional_gids[i];
    for (size_t i = 0; i < n_add; i++) {
        unsigned g;
        if (ctr_group_lookup(group_file, o->group_add[i], &g) < 0)
            return merr_set(err, MERR_INVALID, 0, "Unable to find group %s", o->group_add[i]);
        so->gids[so->n_gids++] = g;
    }
    return 0;
}

/* /proc/PID/ns/WHAT of another running container. */
static int other_ns(struct ctr_manager *m, struct ctr_entry *self, const char *ref,
                    const char *what, char *out, size_t size, struct ctr_entry **found,
                    struct merr *err)
{
    struct ctr_entry *other = mgr_find_locked(m, ref, err);
    if (other == NULL)
        return -1;
    if (other == self || other->rt == NULL)
        return merr_set(err, MERR_EXISTS, 0, "cannot join %s of a non running container: %s",
                        what, ref);
    snprintf(out, size, "/proc/%d/ns/%s", (int)rt_container_pid(other->rt), what);
    *found = other;
    return 0;
}

/* A shareable IPC namespace's /dev/shm lives on the host side, where joiners find it. */
static int shareable_shm(struct ctr_entry *e, const struct ctr_options *o, struct start_opts *so,
                         struct merr *err)
{
    so->shm_dir = path_join(e->dir, "shm");
    umount2(so->shm_dir, MNT_DETACH); /* left by an engine that was killed */
    if (fs_mkdir_p(so->shm_dir, 0700, err) < 0)
        return -1;
    auto_free char *data = xasprintf("mode=1777,size=%lld",
                                     o->shm_size > 0 ? (long long)o->shm_size : 65536LL * 1024);
    if (mount("shm", so->shm_dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, data) < 0)
        return merr_set(err, MERR_IO, errno, "cannot mount the shareable /dev/shm of %s",
                        e->c->id);
    return 0;
}

int startopts_check_create(const struct ctr_config *cfg, struct merr *err)
{
    struct start_opts so = { 0 };
    int rc = user_devices(&so, &cfg->opts, err);
    startopts_release(&so);
    return rc;
}

void startopts_stop(struct ctr_entry *e)
{
    auto_free char *shm = path_join(e->dir, "shm");
    umount2(shm, MNT_DETACH);
}

int startopts_prepare(struct ctr_manager *m, struct ctr_entry *e, const struct rt_user *user,
                      const char *group_file, struct start_opts *so, struct merr *err)
{
    const struct ctr_config *cfg = e->c->config;
    const struct ctr_options *o = &cfg->opts;
    memset(so, 0, sizeof *so);
    so->rlimits = xcalloc(o->n_ulimits + 1, sizeof *so->rlimits);
    for (size_t i = 0; i < o->n_ulimits; i++)
        so->rlimits[i] = (struct rt_rlimit){ o->ulimits[i].resource, o->ulimits[i].soft,
                                             o->ulimits[i].hard };
    int rc = groups(so, o, user, group_file, err);
    if (rc == 0 && cfg->privileged)
        host_devices(so, "/dev", 0);
    if (rc == 0)
        rc = user_devices(so, o, err);
    struct ctr_entry *donor = NULL;
    if (rc == 0 && o->pid_ns == CTR_NS_CONTAINER)
        rc = other_ns(m, e, o->pid_container, "pid", so->pid_ns, sizeof so->pid_ns, &donor, err);
    if (rc == 0 && o->ipc_ns == CTR_NS_CONTAINER) {
        rc = other_ns(m, e, o->ipc_container, "ipc", so->ipc_ns, sizeof so->ipc_ns, &donor, err);
        if (rc == 0 && !donor->c->config->opts.ipc_shareable)
            rc = merr_set(err, MERR_INVALID, 0,
                          "cannot join IPC of container %s: non-shareable IPC (hint: use "
                          "IpcMode:shareable for the donor container)",
                          o->ipc_container);
        if (rc == 0)
            so->shm_dir = path_join(donor->dir, "shm");
    } else if (rc == 0 && o->ipc_shareable) {
        rc = shareable_shm(e, o, so, err);
    }
    if (rc < 0)
        startopts_release(so);
    return rc;
}

void startopts_fill(const struct start_opts *so, const struct ctr_config *cfg, struct rt_spec *spec)
{
    const struct ctr_options *o = &cfg->opts;
    struct rt_process *p = &spec->process;
    p->additional_gids = so->gids;
    p->n_additional_gids = so->n_gids;
    p->no_new_privileges = o->no_new_privileges;
    p->seccomp_unconfined = o->seccomp == CTR_SECCOMP_UNCONFINED;
    p->seccomp_profile = o->seccomp == CTR_SECCOMP_PROFILE ? o->seccomp_profile : NULL;
    p->rlimits = so->rlimits;
    p->n_rlimits = o->n_ulimits;
    p->oom_score_adj_set = o->oom_score_adj_set;
    p->oom_score_adj = o->oom_score_adj;
    if (o->masked_paths_set)
        spec->masked_paths = (const char *const *)o->masked_paths;
    if (o->readonly_paths_set)
        spec->readonly_paths = (const char *const *)o->readonly_paths;
    spec->pid_host = o->pid_ns == CTR_NS_HOST;
    spec->ipc_host = o->ipc_ns == CTR_NS_HOST;
    spec->uts_host = o->uts_ns == CTR_NS_HOST;
    spec->pid_ns_path = so->pid_ns[0] != '\0' ? so->pid_ns : NULL;
    spec->ipc_ns_path = so->ipc_ns[0] != '\0' ? so->ipc_ns : NULL;
    spec->cgroupns = o->cgroupns_host ? 1 : o->cgroupns_private ? 2 : 0;
    spec->domainname = o->domainname;
    spec->shm_size = (uint64_t)o->shm_size;
    spec->no_shm = o->ipc_none;
    spec->shm_source = spec->ipc_host ? "/dev/shm" : so->shm_dir; /* dockerd binds the host's */
    spec->sysctls = (const char *const *)o->sysctls;
    spec->devices = so->devices;
    spec->n_devices = so->n_devices;
    spec->device_rules = (const char *const *)o->device_cgroup_rules;
    spec->resources.memory_reservation = o->memory_reservation;
    spec->resources.oom_kill_disable = o->oom_kill_disable;
    spec->resources.memory_swappiness = o->memory_swappiness;
    spec->resources.cpuset_cpus = o->cpuset_cpus;
    spec->resources.cpuset_mems = o->cpuset_mems;
    spec->resources.blkio_weight = o->blkio_weight;
}
