/* The container manager: containers on disk and in memory, their lifecycle (create, start,
 * stop, kill, wait, remove, restart policies), their output (json-file logs, attach) and exec.
 * It is the only owner of container state; the API handlers call it. Thread-safe. */
#ifndef MACHINE_ENGINE_CONTAINER_MANAGER_H
#define MACHINE_ENGINE_CONTAINER_MANAGER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cleanup.h"

struct merr;
struct mlog;
struct rt_runtime;
struct ctr_manager;
struct ctr_ulimit;

/* Where images come from: the image store, behind a seam. */
struct ctr_image_source {
    /* Resolves a reference or ID: image ID, the image's "config" object (new reference) and the
     * layer directories for the overlay, top first. MERR_NOT_FOUND → "No such image". */
    int (*resolve)(void *data, const char *ref, char **image_id, json_t **config,
                   char ***lowerdirs, struct merr *err);
    void *data;
};

struct vol_store;
struct evt_bus;
/* Networking, behind a seam (engine/network). Without it (NULL members) every container but
 * --network host gets a namespace with only loopback. */
#define CTR_NET_HOLD 3
struct ctr_net_run {
    char *netns_path;               /* the namespace to join; NULL: none plus loopback */
    char *hosts, *resolv, *hostname; /* files bind-mounted over /etc/... (may be NULL) */
    /* fds the container's monitor keeps open for the network (valid when > 2) */
    int hold[CTR_NET_HOLD];
};
struct ctr_network_hooks {
    /* Validates and records the network part of a create request. */
    int (*create)(void *data, const char *id, const char *name, const json_t *body,
                  const json_t *image_config, struct merr *err);
    /* Prepares the container's network before it starts; stop undoes it (idempotent). */
    int (*start)(void *data, const char *id, const char *hostname, struct ctr_net_run *out,
                 struct merr *err);
    void (*stop)(void *data, const char *id);
    /* A container still running after an engine restart: its namespace is kept, its ports
     * published and its DNS names served again (may be NULL). holder: its monitor's pid (0:
     * none), which has start's hold fds as fds holder_fd, holder_fd + 1, ... */
    int (*adopt)(void *data, const char *id, pid_t holder, int holder_fd, struct merr *err);
    void (*remove)(void *data, const char *id);
    /* Adds NetworkSettings (and for ps the Ports array) to a rendered container. */
    void (*describe)(void *data, const char *id, json_t *obj, bool ps);
    void *data;
};

struct ctr_manager_config {
    const char *root; /* <data-root>/containers */
    struct rt_runtime *rt;
    struct ctr_image_source images;
    struct ctr_network_hooks net;
    const struct mlog *log;
    struct vol_store *volumes; /* named and anonymous volumes; NULL: none */
    struct evt_bus *events;    /* container events; may be NULL */
    const struct layer_driver *layers; /* overlay2 or vfs (layer/layer.h); NULL: overlay2 */
    /* --default-ulimit and --log-opt (defaults.h); borrowed, may be NULL/0 */
    const struct ctr_ulimit *default_ulimits;
    size_t n_default_ulimits;
    const json_t *default_log_opts;
    const char *default_log_driver; /* --log-driver: json-file or none; NULL: json-file */
    bool no_live_restore; /* --live-restore=false: containers stop with the engine */
};

int ctr_manager_new(const struct ctr_manager_config *cfg, struct ctr_manager **out,
                    struct merr *err) MUST_CHECK;
/* Loads the containers on disk. Those that were running when the engine went: re-adopted when
 * their monitor still answers; with the exit code and FinishedAt their monitor recorded when
 * they ended meanwhile; else cleaned up and marked exited with a reason. Then restarted if
 * their policy says so. */
int ctr_manager_recover(struct ctr_manager *m, struct merr *err) MUST_CHECK;
/* Containers keep running under their monitors (with no_live_restore they are killed). */
void ctr_manager_free(struct ctr_manager *m);

/* ---- lifecycle. Errors: MERR_NOT_FOUND "No such container: X", MERR_EXISTS for conflicts ---- */
int ctr_create(struct ctr_manager *m, const char *name, const json_t *body, char **id_out,
               struct merr *err) MUST_CHECK;
/* Returns 1 when it was already running (HTTP 304). */
int ctr_start(struct ctr_manager *m, const char *ref, struct merr *err) MUST_CHECK;
/* timeout_s < 0: the container's StopTimeout or 10 s. signal NULL: its StopSignal.
 * Returns 1 when it was not running (304). */
int ctr_stop(struct ctr_manager *m, const char *ref, int timeout_s, const char *signal,
             struct merr *err) MUST_CHECK;
int ctr_kill(struct ctr_manager *m, const char *ref, const char *signal, struct merr *err) MUST_CHECK;
/* As ctr_stop (timeout_s, signal), then a start. */
int ctr_restart(struct ctr_manager *m, const char *ref, int timeout_s, const char *signal,
                struct merr *err) MUST_CHECK;
/* lifecycle.c. pause/unpause: MERR_EXISTS (409) "Container X is not running" / "is already
 * paused" / "is not paused", as dockerd. */
int ctr_pause(struct ctr_manager *m, const char *ref, struct merr *err) MUST_CHECK;
int ctr_unpause(struct ctr_manager *m, const char *ref, struct merr *err) MUST_CHECK;
int ctr_rename(struct ctr_manager *m, const char *ref, const char *new_name,
               struct merr *err) MUST_CHECK;
/* POST /containers/{id}/update body: resources applied live to a running container's cgroup
 * and kept, a new restart policy; other non-zero fields are refused (MERR_INVALID). */
int ctr_update(struct ctr_manager *m, const char *ref, const json_t *body,
               struct merr *err) MUST_CHECK;
/* docker container prune: removes the stopped containers match accepts (created time, labels);
 * returns their IDs, *reclaimed the bytes of their writable layers. */
typedef bool (*ctr_prune_match_fn)(void *data, int64_t created_ns, const json_t *labels);
json_t *ctr_prune(struct ctr_manager *m, ctr_prune_match_fn match, void *data, int64_t *reclaimed,
                  struct merr *err) MUST_CHECK;
/* docker rm --link "PARENT/ALIAS": PARENT's legacy link ALIAS is removed (rmlink.c). */
int ctr_remove_link(struct ctr_manager *m, const char *ref, struct merr *err) MUST_CHECK;
/* remove_volumes (rm -v): the container's anonymous volumes go too. */
int ctr_remove(struct ctr_manager *m, const char *ref, bool force, bool remove_volumes,
               struct merr *err) MUST_CHECK;

enum ctr_wait_condition { CTR_WAIT_NOT_RUNNING, CTR_WAIT_NEXT_EXIT, CTR_WAIT_REMOVED };
/* Two steps so the HTTP layer can send its headers between them: prepare registers the waiter
 * (the container may be started right after), finish blocks until the condition holds or
 * cancel_fd becomes readable. */
struct ctr_waiter;
int ctr_wait_prepare(struct ctr_manager *m, const char *ref, enum ctr_wait_condition cond,
                     struct ctr_waiter **out, struct merr *err) MUST_CHECK;
int ctr_wait_finish(struct ctr_waiter *w, int cancel_fd, int *exit_code, char **error,
                    struct merr *err) MUST_CHECK;
void ctr_waiter_free(struct ctr_waiter *w);

/* ---- queries ---- */
json_t *ctr_list_json(struct ctr_manager *m, bool all, struct merr *err) MUST_CHECK;
json_t *ctr_inspect(struct ctr_manager *m, const char *ref, struct merr *err) MUST_CHECK;
/* Full 64-hex ID and whether the container has a TTY. */
int ctr_lookup(struct ctr_manager *m, const char *ref, char id[65], bool *tty,
               struct merr *err) MUST_CHECK;
bool ctr_image_in_use(struct ctr_manager *m, const char *image_id);
void ctr_counts(struct ctr_manager *m, long long *total, long long *running, long long *paused,
                long long *stopped);
/* Every container's GET /containers/json entry, newest first, with "_facts" for the list
 * filters (engine/filters) and, with size, "SizeRw" (query.c). */
json_t *ctr_list_filterable(struct ctr_manager *m, bool size, struct merr *err) MUST_CHECK;
/* Size of the container's writable layer (bytes of its files, hard links once). */
int ctr_size_rw(struct ctr_manager *m, const char *ref, int64_t *out, struct merr *err) MUST_CHECK;
int64_t ctr_dir_size(const char *dir);
/* Samples a container's cgroup counters (stats.c). *running is false, and out zeroed, when it
 * is not running. id and name (without '/') are filled either way; *name is malloc'd. */
struct rt_stats;
int ctr_stats(struct ctr_manager *m, const char *ref, struct rt_stats *out, bool *running,
              char id[65], char **name, struct merr *err) MUST_CHECK;
/* The raw text of the files dockerd's stats read (stats_raw.c), NULL where absent; all NULL
 * and running false when the container is not running. */
struct ctr_stats_raw {
    bool running, v2;
    char *memory_stat, *blkio, *blkio_ops, *cpu_stat, *cpuacct_stat, *percpu, *max_usage,
        *failcnt, *net_dev;
};
int ctr_stats_raw(struct ctr_manager *m, const char *ref, struct ctr_stats_raw *out,
                  struct merr *err) MUST_CHECK;
void ctr_stats_raw_release(struct ctr_stats_raw *r);
/* `top`: ps -ef style rows of the container's processes. */
json_t *ctr_top(struct ctr_manager *m, const char *ref, struct merr *err) MUST_CHECK;
/* `top -o`: the host's ps with ps_args, the container's lines (top.c); dockerd's errors. */
json_t *ctr_top_ps(struct ctr_manager *m, const char *ref, const char *ps_args,
                   struct merr *err) MUST_CHECK;
/* A container event without attributes beyond its image, name and labels ("top"). */
void ctr_emit_event(struct ctr_manager *m, const char *ref, const char *action);
/* Pure parts, for the unit tests: dockerd's validatePSArgs and parsePSOutput. */
int top_validate_ps_args(const char *args, struct merr *err) MUST_CHECK;
json_t *top_parse_ps(const char *output, const pid_t *pids, size_t n_pids,
                     struct merr *err) MUST_CHECK;
int ctr_resize(struct ctr_manager *m, const char *ref, unsigned short h, unsigned short w,
               struct merr *err) MUST_CHECK;

/* ---- output ---- */
/* A subscription to a container's live output: read frames from fd ([stream,0,0,0,len BE32] +
 * payload, the stdcopy format); EOF when the container's output ends. */
struct ctr_output_sub {
    int fd;
};
/* Attach: subscribe to live output; with stdin, stdin_fd is where to write the client's input
 * (-1 otherwise). close_stdin_on_eof: StdinOnce. */
int ctr_attach(struct ctr_manager *m, const char *ref, bool want_stdin, struct ctr_output_sub *sub,
               int *stdin_fd, bool *close_stdin_on_eof, struct merr *err) MUST_CHECK;
void ctr_detach_stdin(struct ctr_manager *m, const char *ref, int stdin_fd);

struct ctr_logs_opts {
    bool stdout_, stderr_, follow, timestamps;
    bool details; /* docker logs --details: the empty attribute list and a space before lines */
    long long tail; /* -1: all */
    int64_t since_ns, until_ns; /* 0: unbounded */
};
/* Writes matching log records to sink (stream, payload with timestamp prefix when asked);
 * with follow, then a live subscription in *sub (fd -1 when the container is not running). */
typedef int (*ctr_log_sink_fn)(void *data, int stream, const char *payload, size_t len,
                               struct merr *err);
/* MERR_INVALID "configured logging driver does not support reading" (--log-driver none). */
int ctr_logs_readable(struct ctr_manager *m, const char *ref, struct merr *err) MUST_CHECK;
int ctr_logs(struct ctr_manager *m, const char *ref, const struct ctr_logs_opts *o,
             ctr_log_sink_fn sink, void *data, struct ctr_output_sub *sub, struct merr *err) MUST_CHECK;

/* ---- docker cp (archive.c): paths resolve inside the container's root, never outside ---- */
struct ctr_path_stat {
    char name[256];
    int64_t size;
    uint32_t mode; /* Go os.FileMode bits */
    int64_t mtime_ns;
    char link_target[4096]; /* symlinks: the target as an absolute container path */
};
/* X-Docker-Container-Path-Stat: base64 of {"name","size","mode","mtime","linkTarget"}. */
char *ctr_path_stat_header(const struct ctr_path_stat *st);
uint32_t ctr_go_file_mode(unsigned int st_mode);
/* "/a/b" → "/a" + "b"; "/a/." → "/a" + "."; "/" → "/" + ".". */
int ctr_archive_split(const char *path, char **parent, char **leaf, struct merr *err) MUST_CHECK;
/* A tar entry name relative to the extraction directory, cleaned; MERR_INVALID when it climbs
 * out ("../x"). "" for the directory itself. */
int ctr_archive_entry_path(const char *name, char **out, struct merr *err) MUST_CHECK;

/* MERR_NOT_FOUND "Could not find the file P in container C". */
int ctr_archive_stat(struct ctr_manager *m, const char *ref, const char *path,
                     struct ctr_path_stat *out, struct merr *err) MUST_CHECK;
/* GET: begin is called once the path is known (send the headers), then the tar is written. */
typedef int (*ctr_archive_begin_fn)(void *data, const struct ctr_path_stat *st, struct merr *err);
typedef int (*ctr_archive_write_fn)(void *data, const void *buf, size_t len, struct merr *err);
int ctr_archive_get(struct ctr_manager *m, const char *ref, const char *path,
                    struct ctr_path_stat *st, ctr_archive_begin_fn begin,
                    ctr_archive_write_fn write, void *data, struct merr *err) MUST_CHECK;
/* PUT: extracts a tar (plain or gzip) read from read() into the directory path. */
typedef ssize_t (*ctr_archive_read_fn)(void *data, void *buf, size_t len, struct merr *err);
struct ctr_archive_put_opts {
    bool no_overwrite_dir_non_dir;
    bool copy_uid_gid; /* keep the archive's owners; otherwise root */
};
int ctr_archive_put(struct ctr_manager *m, const char *ref, const char *path,
                    const struct ctr_archive_put_opts *o, ctr_archive_read_fn read, void *data,
                    struct merr *err) MUST_CHECK;

/* ---- docker diff, commit, export (commit.c, archive.c) ---- */
/* [{"Path": "/etc/x", "Kind": 0|1|2}] as GET /containers/{id}/changes answers. */
json_t *ctr_changes(struct ctr_manager *m, const char *ref, struct merr *err) MUST_CHECK;
/* What docker commit needs of a container: its upper dir, its Config (inspect's), its image. */
struct ctr_commit_src {
    char id[65];
    char *upper;
    char **lowers; /* the image's directories, top first */
    const struct layer_driver *layers;
    char *image_id;
    json_t *config;
    json_t *event_attrs; /* its labels, "image" and "name", as its events carry them */
};
int ctr_commit_source(struct ctr_manager *m, const char *ref, struct ctr_commit_src *out,
                      struct merr *err) MUST_CHECK;
void ctr_commit_src_release(struct ctr_commit_src *s);
/* The container's changes as a layer tar (an image_layer_writer_fn body). */
int ctr_commit_write_layer(const struct ctr_commit_src *s, int fd, struct merr *err) MUST_CHECK;
/* docker export: the container's filesystem (image layers and its changes, no volumes, no
 * /proc or /sys contents) as a tar, running or not. */
int ctr_archive_export(struct ctr_manager *m, const char *ref, ctr_archive_write_fn write,
                       void *data, struct merr *err) MUST_CHECK;

/* ---- exec ---- */
int ctr_exec_create(struct ctr_manager *m, const char *ref, const json_t *body, char **exec_id,
                    struct merr *err) MUST_CHECK;
struct ctr_exec_io {
    int stdin_fd;  /* write client input here (-1: none) */
    int stdout_fd; /* read process output (tty: everything) */
    int stderr_fd; /* -1 with a tty */
    int pidfd;     /* readable when the process exits */
    bool tty;
};
int ctr_exec_start(struct ctr_manager *m, const char *exec_id, struct ctr_exec_io *io,
                   struct merr *err) MUST_CHECK;
/* Records the exit status (reaps the process). */
int ctr_exec_finish(struct ctr_manager *m, const char *exec_id, struct merr *err) MUST_CHECK;
json_t *ctr_exec_inspect(struct ctr_manager *m, const char *exec_id, struct merr *err) MUST_CHECK;
/* Drops a finished exec (the engine's own execs: health probes). */
void ctr_exec_forget(struct ctr_manager *m, const char *exec_id);
int ctr_exec_resize(struct ctr_manager *m, const char *exec_id, unsigned short h, unsigned short w,
                    struct merr *err) MUST_CHECK;

#endif
