/* The create options turned into the runtime's terms at each start (startopts.c). */
#ifndef MACHINE_ENGINE_CONTAINER_STARTOPTS_H
#define MACHINE_ENGINE_CONTAINER_STARTOPTS_H

#include <sys/types.h>

#include "error.h"
#include "runtime/runtime.h"

struct ctr_manager;
struct ctr_entry;
struct ctr_config;

struct start_opts {
    struct rt_rlimit *rlimits;
    size_t n_rlimits; /* the container's --ulimit, then the engine's --default-ulimit */
    struct rt_device *devices;
    size_t n_devices;
    gid_t *gids; /* supplementary groups: primary, /etc/group, GroupAdd */
    size_t n_gids;
    char pid_ns[64], ipc_ns[64]; /* another container's namespace, "" when not joined */
    char *shm_dir;               /* a host-side /dev/shm to bind (shareable IPC), or NULL */
    char **link_env;             /* legacy links: ALIAS_NAME, ALIAS_PORT..., ALIAS_ENV_... */
    char *link_hosts;            /* legacy links: /etc/hosts lines */
    char **env;                  /* the process environment with link_env, owned here */
};

/* Under the manager lock, before the start: resolves what needs the host or other containers.
 * group_file: the image's /etc/group (may be NULL). */
int startopts_prepare(struct ctr_manager *m, struct ctr_entry *e, const struct rt_user *user,
                      const char *group_file, struct start_opts *so, struct merr *err) MUST_CHECK;
/* At create, what dockerd checks then: the --device nodes exist on the host; real-time CPU
 * options need a host with real-time group scheduling (rt NULL: not checked). */
int startopts_check_create(const struct rt_runtime *rt, const struct ctr_config *cfg,
                           struct merr *err) MUST_CHECK;
/* An exec's process: the container's ulimits (over the engine's --default-ulimit), oom score adjustment and groups (the exec user's
 * primary group, its /etc/group groups, GroupAdd), as dockerd copies the container's process
 * spec. p's fields point into so. */
int startopts_exec(const struct ctr_manager *m, const struct ctr_config *cfg,
                   const struct rt_user *user,
                   const char *group_file, struct start_opts *so, struct rt_process *p,
                   struct merr *err) MUST_CHECK;
/* Points spec (already filled with the basics) at so and the container's options. */
void startopts_fill(struct start_opts *so, const struct ctr_config *cfg, struct rt_spec *spec);
void startopts_release(struct start_opts *so);
/* After the container stopped: its shareable /dev/shm goes. */
void startopts_stop(struct ctr_entry *e);

#endif
