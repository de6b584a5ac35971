/* The create options (options.h) turned into the runtime's terms at each start: rlimits,
 * groups (the user's primary group, its /etc/group groups, then GroupAdd, as dockerd), device
 * nodes from the host, namespaces of other containers, a shareable /dev/shm, cgroup extras. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "strv.h"
#include "manager-priv.h"
#include "startopts.h"
#include "defaults.h"

#define MAX_HOST_DEVICES 4096 /* beyond that a privileged start fails rather than drop some */

void startopts_release(struct start_opts *so)
{
    free(so->rlimits);
    for (size_t i = 0; i < so->n_devices; i++)
        free((char *)so->devices[i].path);
    free(so->devices);
    free(so->gids);
    free(so->shm_dir);
    strv_free(so->link_env);
    free(so->link_hosts);
    strv_free(so->env);
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

int startopts_check_create(const struct rt_runtime *rt, const struct ctr_config *cfg,
                           struct merr *err)
{
    const struct ctr_options *o = &cfg->opts;
    if ((o->cpu_rt_period != 0 || o->cpu_rt_runtime != 0) && rt != NULL && !rt_runtime_cpu_rt(rt))
        return merr_set(err, MERR_INVALID, 0, "kernel does not support CPU real-time scheduler");
    struct start_opts so = { 0 };
    int rc = user_devices(&so, &cfg->opts, err);
    startopts_release(&so);
    return rc;
}

/* strv_push of an allocated string, which it frees. */
static char **strv_push_take(char **v, char *s)
{
    v = strv_push(v, s);
    free(s);
    return v;
}

static char *env_name(const char *alias, const char *suffix)
{
    char *s = xasprintf("%s%s", alias, suffix);
    for (char *p = s; *p != '\0' && *p != '='; p++)
        *p = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    return s;
}

static int port_cmp(const void *a, const void *b)
{
    return atoi(*(char *const *)a) - atoi(*(char *const *)b);
}

/* Legacy links (docker's daemon/links): environment and /etc/hosts lines for each linked
 * container, which must be running on the default bridge. */
static int links(struct ctr_manager *m, struct ctr_entry *e, struct start_opts *so,
                 struct merr *err)
{
    char *const *list = e->c->config->opts.links;
    so->link_env = xcalloc(1, sizeof *so->link_env);
    so->link_hosts = xstrdup("");
    const char *mode = e->c->config->network_mode;
    if (mode != NULL && strcmp(mode, "default") != 0 && strcmp(mode, "bridge") != 0)
        list = NULL; /* a user-defined network: links are names of its embedded DNS (network/) */
    for (size_t i = 0; list != NULL && list[i] != NULL; i++) {
        char name[256], alias[256];
        if (ctr_link_parse(list[i], name, sizeof name, alias, sizeof alias, err) < 0)
            return -1;
        struct ctr_entry *other = mgr_find_locked(m, name, err);
        if (other == NULL)
            return merr_prefix(err, "could not get container for %s", name);
        json_t *obj = json_object();
        if (other->rt != NULL && m->net.describe != NULL)
            m->net.describe(m->net.data, other->c->id, obj, false);
        const json_t *ns = json_object_get(obj, "NetworkSettings");
        const char *ip = json_string_value(json_object_get(ns, "IPAddress"));
        if (ip == NULL || ip[0] == '\0') {
            json_decref(obj);
            return merr_set(err, MERR_INVALID, 0,
                            "cannot link to %s: it is not running on the default bridge", name);
        }
        auto_free char *up = env_name(alias, "");
        so->link_env = strv_push_take(so->link_env, xasprintf("%s_NAME=/%s/%s", up, e->c->name,
                                                              alias));
        /* ports sorted by number; the lowest is ALIAS_PORT */
        auto_strv char **ports = xcalloc(1, sizeof *ports);
        const char *port;
        const json_t *ignored;
        json_object_foreach((json_t *)json_object_get(ns, "Ports"), port, ignored)
            ports = strv_push(ports, port);
        size_t n_ports = 0;
        while (ports[n_ports] != NULL)
            n_ports++;
        qsort(ports, n_ports, sizeof *ports, port_cmp);
        for (size_t k = 0; k < n_ports; k++) {
            const char *slash = strchr(ports[k], '/');
            auto_free char *num = xasprintf("%.*s", slash != NULL ? (int)(slash - ports[k]) : 8,
                                            ports[k]);
            const char *proto = slash != NULL ? slash + 1 : "tcp";
            auto_free char *uproto = env_name(proto, "");
            if (k == 0)
                so->link_env = strv_push_take(
                    so->link_env, xasprintf("%s_PORT=%s://%s:%s", up, proto, ip, num));
            auto_free char *pre = xasprintf("%s_PORT_%s_%s", up, num, uproto);
            so->link_env = strv_push_take(so->link_env,
                                          xasprintf("%s=%s://%s:%s", pre, proto, ip, num));
            so->link_env = strv_push_take(so->link_env, xasprintf("%s_ADDR=%s", pre, ip));
            so->link_env = strv_push_take(so->link_env, xasprintf("%s_PORT=%s", pre, num));
            so->link_env = strv_push_take(so->link_env, xasprintf("%s_PROTO=%s", pre, proto));
        }
        for (char *const *v = other->c->plan.env; v != NULL && *v != NULL; v++) {
            if (strncmp(*v, "HOME=", 5) == 0 || strncmp(*v, "PATH=", 5) == 0 ||
                strchr(*v, '=') == NULL)
                continue;
            so->link_env = strv_push_take(so->link_env, xasprintf("%s_ENV_%s", up, *v));
        }
        char *hosts = strcmp(alias, other->c->name) == 0
                          ? xasprintf("%s%s\t%s\n", so->link_hosts, ip, alias)
                          : xasprintf("%s%s\t%s %s\n", so->link_hosts, ip, alias, other->c->name);
        free(so->link_hosts);
        so->link_hosts = hosts;
        json_decref(obj);
    }
    return 0;
}

void startopts_stop(struct ctr_entry *e)
{
    auto_free char *shm = path_join(e->dir, "shm");
    umount2(shm, MNT_DETACH);
}

/* The container's ulimits over the engine's --default-ulimit ones (the container's win). */
static void rlimits(struct start_opts *so, const struct ctr_options *o,
                    const struct ctr_manager *m)
{
    size_t most = o->n_ulimits + m->n_default_ulimits;
    auto_free struct ctr_ulimit *limits = xcalloc(most + 1, sizeof *limits);
    so->n_rlimits = ctr_ulimits_merge(o->ulimits, o->n_ulimits, m->default_ulimits,
                                      m->n_default_ulimits, limits);
    so->rlimits = xcalloc(most + 1, sizeof *so->rlimits);
    for (size_t i = 0; i < so->n_rlimits; i++)
        so->rlimits[i] = (struct rt_rlimit){ limits[i].resource, limits[i].soft, limits[i].hard };
}

int startopts_exec(const struct ctr_manager *m, const struct ctr_config *cfg,
                   const struct rt_user *user, const char *group_file, struct start_opts *so,
                   struct rt_process *p, struct merr *err)
{
    const struct ctr_options *o = &cfg->opts;
    memset(so, 0, sizeof *so);
    rlimits(so, o, m);
    if (groups(so, o, user, group_file, err) < 0) {
        startopts_release(so);
        return -1;
    }
    p->additional_gids = so->gids;
    p->n_additional_gids = so->n_gids;
    p->rlimits = so->rlimits;
    p->n_rlimits = so->n_rlimits;
    p->oom_score_adj_set = o->oom_score_adj_set;
    p->oom_score_adj = o->oom_score_adj;
    return 0;
}

int startopts_prepare(struct ctr_manager *m, struct ctr_entry *e, const struct rt_user *user,
                      const char *group_file, struct start_opts *so, struct merr *err)
{
    const struct ctr_config *cfg = e->c->config;
    const struct ctr_options *o = &cfg->opts;
    memset(so, 0, sizeof *so);
    rlimits(so, o, m);
    int rc = groups(so, o, user, group_file, err);
    if (rc == 0)
        rc = links(m, e, so, err);
    if (rc == 0 && cfg->privileged) {
        host_devices(so, "/dev", 0);
        if (so->n_devices >= MAX_HOST_DEVICES)
            rc = merr_set(err, MERR_INVALID, 0,
                          "the host has more than %d device nodes: --privileged is not supported "
                          "by machine-engine here",
                          MAX_HOST_DEVICES);
    }
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

/* The links' lines go at the end of the /etc/hosts the network prepared for this start. */
static void append_hosts(const struct start_opts *so, const struct rt_spec *spec)
{
    if (so->link_hosts == NULL || so->link_hosts[0] == '\0')
        return;
    for (size_t i = 0; i < spec->n_mounts; i++) {
        const struct rt_bind_mount *bm = &spec->mounts[i];
        if (bm->fstype != NULL || strcmp(bm->destination, "/etc/hosts") != 0)
            continue;
        auto_fclose FILE *f = fopen(bm->source, "ae");
        if (f != NULL)
            fputs(so->link_hosts, f);
        return;
    }
}

void startopts_fill(struct start_opts *so, const struct ctr_config *cfg, struct rt_spec *spec)
{
    const struct ctr_options *o = &cfg->opts;
    if (so->link_env != NULL && so->link_env[0] != NULL) {
        so->env = strv_dup((char *const *)spec->process.env);
        for (size_t i = 0; so->link_env[i] != NULL; i++)
            so->env = strv_push(so->env, so->link_env[i]);
        spec->process.env = (const char *const *)so->env;
    }
    append_hosts(so, spec);
    struct rt_process *p = &spec->process;
    p->additional_gids = so->gids;
    p->n_additional_gids = so->n_gids;
    p->no_new_privileges = o->no_new_privileges;
    p->seccomp_unconfined = o->seccomp == CTR_SECCOMP_UNCONFINED;
    p->seccomp_profile = o->seccomp == CTR_SECCOMP_PROFILE ? o->seccomp_profile : NULL;
    p->rlimits = so->rlimits;
    p->n_rlimits = so->n_rlimits;
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
    spec->resources.cpu_rt_period = o->cpu_rt_period;
    spec->resources.cpu_rt_runtime = o->cpu_rt_runtime;
}
