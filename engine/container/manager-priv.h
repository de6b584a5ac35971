/* Internals shared by manager.c, run.c and exec.c. */
#ifndef MACHINE_ENGINE_CONTAINER_MANAGER_PRIV_H
#define MACHINE_ENGINE_CONTAINER_MANAGER_PRIV_H

#ifndef MACHINE_CONTAINER_PRIV
#error "manager-priv.h is internal to engine/container/ and its tests (they define MACHINE_CONTAINER_PRIV)"
#endif

#include <pthread.h>
#include <stdio.h>

#include "container.h"
#include "manager.h"
#include "layer/layer.h"
#include "runtime/runtime.h"

struct rt_container;

struct ctr_sub {
    int wfd; /* write end of a subscriber's pipe */
    int64_t skip_ns; /* logs -f: output up to this time was read from the log already */
    struct ctr_sub *next;
};

struct ctr_entry {
    struct container *c;
    char *dir, *log_path, *rootfs, *upper, *work;
    /* While running (all under the manager lock unless noted). */
    struct rt_container *rt;
    int stdin_w;    /* container stdin (pipe write end or a dup of the pty master), -1 */
    int pty_master; /* -1 without a TTY */
    /* Prepared before start when a client attaches first (docker run attaches, then starts):
     * the pty's slave side, or the read end of the stdin pipe; handed to the container. */
    int pty_slave, stdin_r;
    int out_r, err_r;
    bool io_running; /* an I/O thread owns this container's output */
    /* The run has a machine-monitor (monitor.c): it writes the log; the engine reaches it over
     * mon_fd (under out_lock, -1 when not connected). adopted: taken over from an engine that
     * went away (no stdin or tty of the engine's own). */
    bool monitored, adopted;
    int mon_fd;
    uint64_t exit_seq; /* bumped at every exit */
    bool removed;
    int refs;
    /* Output fan-out: the log file and live subscribers, under out_lock. */
    pthread_mutex_t out_lock;
    FILE *log;
    int64_t log_size;
    struct ctr_sub *subs;
};

struct ctr_exec;

struct ctr_manager {
    pthread_mutex_t lock;
    pthread_cond_t changed; /* broadcast on every state change */
    char *root;
    struct rt_runtime *rt;
    struct ctr_image_source images;
    const struct layer_driver *layers;
    const struct ctr_ulimit *default_ulimits;
    size_t n_default_ulimits;
    const json_t *default_log_opts;
    const char *default_log_driver;
    struct ctr_network_hooks net;
    const struct mlog *log;
    struct vol_store *volumes; /* may be NULL */
    struct evt_bus *events;    /* may be NULL */
    struct ctr_entry **entries;
    size_t n_entries;
    struct ctr_exec **execs;
    size_t n_execs;
    int health_threads; /* running health checks (health.c), waited for by ctr_manager_free */
    bool live_restore;  /* containers outlive the engine (else stopped at its shutdown) */
};

/* Under m->lock. NULL with MERR_NOT_FOUND "No such container: ref". */
struct ctr_entry *mgr_find_locked(struct ctr_manager *m, const char *ref, struct merr *err);
void mgr_entry_unref_locked(struct ctr_manager *m, struct ctr_entry *e);
int mgr_persist_locked(struct ctr_manager *m, struct ctr_entry *e, struct merr *err) MUST_CHECK;
int64_t mgr_now_ns(void);
void mgr_random_hex(char *out, size_t nbytes);
/* Removes a stopped container (lock held); frees the entry when nobody refers to it. */
int mgr_remove_locked(struct ctr_manager *m, struct ctr_entry *e, bool remove_volumes,
                      struct merr *err) MUST_CHECK;

/* run.c */
int run_start_locked(struct ctr_manager *m, struct ctr_entry *e, struct merr *err) MUST_CHECK;
/* Waits (lock held, released while waiting) until e's I/O thread is gone or timeout_ms passes. */
bool run_wait_stopped_locked(struct ctr_manager *m, struct ctr_entry *e, uint64_t seq, int timeout_ms);
void run_close_subs(struct ctr_entry *e);
/* Output of a monitored run to its attach and logs -f clients (ns: its log record's time). */
void run_fanout(struct ctr_entry *e, int stream, const char *data, size_t len, int64_t ns);
/* The end of a run, from its output thread: exit recorded, cleanup, restart policy, the
 * thread's reference dropped. finished_ns 0: now; why: State.Error or NULL. */
void run_finish(struct ctr_manager *m, struct ctr_entry *e, int exit_code, int64_t finished_ns,
                const char *why);
struct run_io_args {
    struct ctr_manager *m;
    struct ctr_entry *e;
    int mon_fd; /* monitored: a connection to the monitor already made, or -1 */
};
/* Starts the output thread of an adopted container (lock held). */
void run_adopted_locked(struct ctr_manager *m, struct ctr_entry *e, int mon_fd);

/* monitor.c: machine-monitor, the parent of each container */
#include "monitor/monproto.h"
char *monitor_find(void); /* NULL when it is missing */
struct monitor_launch {
    char *args[RT_MONITOR_ARGS];
    size_t n_args;
    int listen_fd;
    int conn_fd; /* the engine's connection, made before the monitor runs: no output missed */
    struct rt_monitor rt;
};
/* The monitor's socket (listening) and command line for e's start; out_r/err_r (or the pty
 * master), stdin_w (may be -1) are lent. */
int monitor_prepare(const struct ctr_entry *e, const char *path, int out_r, int err_r,
                    int stdin_w, struct monitor_launch *l, struct merr *err) MUST_CHECK;
void monitor_launch_release(struct monitor_launch *l);
int monitor_connect(const char *dir, struct merr *err) MUST_CHECK;
int monitor_read_state(const char *dir, struct mon_state *out, struct merr *err) MUST_CHECK;
int monitor_send(struct ctr_entry *e, enum mon_frame_type type, const void *data, size_t len);
void *monitor_io_thread(void *opaque); /* takes a malloc'd struct run_io_args */
/* An attach's input to an adopted run (lock held): the write end of a pipe whose bytes go to
 * the monitor as input frames (its end closes stdin for StdinOnce); -1 on failure. */
int monitor_input_locked(struct ctr_manager *m, struct ctr_entry *e);
/* A container the previous engine left running (lock held): 0 not monitored (the caller
 * settles it as before), 1 settled here (ended while the engine was down, or its monitor is
 * gone), 2 re-adopted (e->rt set; *mon_fd a connection to its monitor). */
int monitor_recover_locked(struct ctr_manager *m, struct ctr_entry *e, int *mon_fd);

/* Container events ("create", "start", "die", ...) with the image, name and labels as
 * attributes; extra (stolen, may be NULL) adds more. */
void mgr_emit(struct ctr_manager *m, const struct container *c, const char *action, json_t *extra);

/* lifecycle.c: a paused container is thawed after sig (0: always) so it can act on it, as
 * dockerd: for SIGKILL and the stop signal (every signal when none is configured). */
void mgr_thaw_if_paused_locked(struct ctr_manager *m, struct ctr_entry *e, int sig);

/* mounts.c */
/* create_config: the request's Config (its Volumes are `-v /path` anonymous volumes). */
json_t *mounts_resolve(struct ctr_manager *m, const json_t *create_config,
                       const json_t *host_config, const json_t *image_config, const char *ctr_id,
                       struct merr *err) MUST_CHECK;
void mounts_release(struct ctr_manager *m, const json_t *mounts, const char *ctr_id,
                    bool remove_anonymous);
void mounts_reref(struct ctr_manager *m, const json_t *mounts, const char *ctr_id);
struct mounts_plan {
    struct rt_bind_mount *items;
    size_t n;
};
/* layers: the container's upper dir then the image's layers, top first (for copy-up). */
int mounts_prepare(struct ctr_manager *m, const struct container *c, char *const *layers,
                   struct mounts_plan *plan, struct merr *err) MUST_CHECK;
void mounts_plan_release(struct mounts_plan *p);
/* volumesfrom.c: HostConfig.VolumesFrom's mounts added to mounts (takes the lock). */
int mounts_volumes_from(struct ctr_manager *m, const json_t *host_config, json_t *mounts,
                        const char *ctr_id, struct merr *err) MUST_CHECK;

/* logwriter.c: json-file logs with rotation */
FILE *logw_open(const char *path, int64_t *size);
int logw_append(FILE **f, int64_t *size, const char *path, const struct ctr_log_config *cfg,
                const char *line, size_t len, struct merr *err) MUST_CHECK;
/* The files to read, oldest first (rotated ones that exist, then path). */
char **logw_files(const char *path, int max_file);

/* init.c: --init puts our init at /sbin/docker-init (as dockerd) and runs the command under it */
#define INIT_CONTAINER_PATH "/sbin/docker-init"
char *init_find(void); /* NULL when it is missing */
char **init_argv(char *const *argv);

/* pty.c: the container's own devpts instance at <dir>/pts, and ptys in it */
char *pty_devpts_path(const char *dir);
int pty_devpts_ensure(const char *dir, struct merr *err) MUST_CHECK;
void pty_devpts_release(const char *dir);
/* Falls back to the engine's /dev/ptmx when the instance is not mounted. */
int pty_open(const char *dir, int *master, int *slave, struct merr *err) MUST_CHECK;

/* health.c: the health-check thread of the run that just started (no-op without a check) */
void health_start_locked(struct ctr_manager *m, struct ctr_entry *e);

/* exec.c */
void exec_forget_container_locked(struct ctr_manager *m, const char *ctr_id);
void exec_free_all(struct ctr_manager *m);

#endif
