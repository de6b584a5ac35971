/* The HostConfig options beyond the basic limits: ulimits, /dev/shm, security options,
 * namespaces, groups, sysctls, devices, OOM and cpuset settings. Pure parsers: JSON or strings
 * in, a struct out, docker's wording for bad values and "… is not supported by machine-engine"
 * for values the engine cannot carry out. */
#ifndef MACHINE_ENGINE_CONTAINER_OPTIONS_H
#define MACHINE_ENGINE_CONTAINER_OPTIONS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cleanup.h"

struct merr;

struct ctr_ulimit {
    int resource; /* RLIMIT_* */
    uint64_t soft, hard;
};

enum ctr_seccomp { CTR_SECCOMP_DEFAULT, CTR_SECCOMP_UNCONFINED, CTR_SECCOMP_PROFILE };

/* How a namespace is had: a new one, the host's, or another container's. */
enum ctr_ns { CTR_NS_PRIVATE, CTR_NS_HOST, CTR_NS_CONTAINER };

struct ctr_device {
    char *host;      /* path on the host */
    char *ctr;       /* path in the container */
    char perms[4];   /* subset of "rwm" */
};

struct ctr_options {
    struct ctr_ulimit *ulimits;
    size_t n_ulimits;
    int64_t shm_size; /* bytes; 0: docker's 64 MiB */
    bool no_new_privileges;
    enum ctr_seccomp seccomp;
    char *seccomp_profile; /* CTR_SECCOMP_PROFILE: the profile's JSON text */
    bool masked_paths_set, readonly_paths_set; /* given (even empty): replace the defaults */
    char **masked_paths, **readonly_paths;     /* NULL-terminated */
    char **group_add;                          /* names or ids, resolved at start */
    bool oom_score_adj_set;
    int oom_score_adj;
    char **sysctls; /* "key=value" */
    enum ctr_ns pid_ns, ipc_ns, uts_ns;
    char *pid_container, *ipc_container; /* CTR_NS_CONTAINER: name or id */
    bool ipc_shareable, ipc_none;
    bool cgroupns_host, cgroupns_private; /* neither: the engine's default for the layout */
    char *domainname;
    struct ctr_device *devices;
    size_t n_devices;
    char **device_cgroup_rules; /* "c 1:3 rwm" */
    int64_t memory_reservation;
    bool oom_kill_disable;
    char *cpuset_cpus, *cpuset_mems;
    int64_t blkio_weight;
    int64_t memory_swappiness; /* -1: not set */
    int64_t cpu_rt_period, cpu_rt_runtime; /* microseconds, cgroup v1 cpu.rt_*; 0: not set */
    char **links; /* legacy links on the default bridge: "name:alias" */
};

void ctr_options_release(struct ctr_options *o);

/* Fills o from a create body's Config (cfg) and HostConfig (hc). */
int ctr_options_parse(const json_t *cfg, const json_t *hc, struct ctr_options *o,
                      struct merr *err) MUST_CHECK;

/* One ulimit as the API carries it ({"Name":"nofile","Soft":100,"Hard":100}). */
int ctr_ulimit_parse(const json_t *j, struct ctr_ulimit *out, struct merr *err) MUST_CHECK;
/* One --security-opt entry into o. */
int ctr_security_opt_parse(const char *opt, struct ctr_options *o, struct merr *err) MUST_CHECK;
/* A --sysctl: only namespaced ones (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.*),
 * net.* only with a network namespace of the container's own, as dockerd's validation. */
int ctr_sysctl_check(const char *key, const char *network_mode, bool ipc_host, bool uts_host,
                     struct merr *err) MUST_CHECK;
/* One --device ("/dev/a", "/dev/a:/dev/b", "/dev/a:/dev/b:rw", "/dev/a:rwm"). */
int ctr_device_parse(const char *spec, struct ctr_device *out, struct merr *err) MUST_CHECK;
/* A --device-cgroup-rule: "c 1:3 rwm", "b *:* m", "a". */
int ctr_device_rule_check(const char *rule, struct merr *err) MUST_CHECK;
/* One --volumes-from entry "NAME[:ro|:rw]" (z/Z labels accepted and ignored, no SELinux):
 * *rw is 1 for rw, 0 for ro, -1 to keep each mount's own mode. */
int ctr_volumes_from_parse(const char *spec, char *name, size_t name_size, int *rw,
                           struct merr *err) MUST_CHECK;
/* One HostConfig.Links entry ("name:alias", "name", "/name:/me/alias") into name and alias. */
int ctr_link_parse(const char *spec, char *name, size_t name_size, char *alias,
                   size_t alias_size, struct merr *err) MUST_CHECK;
/* A group name or id in an /etc/group text (may be NULL): numeric ids need no entry. */
int ctr_group_lookup(const char *group_file, const char *name, unsigned *gid);
/* "0-2,4" within max_cpu (inclusive); MERR_INVALID otherwise. */
int ctr_cpuset_check(const char *list, unsigned max_cpu, struct merr *err) MUST_CHECK;

#endif
