/* The machine-engine daemon: command-line configuration, the pid file, and
 * struct engine, the one context that owns every subsystem (no globals).
 * Subsystems plug their API routes into the server in engine_new(). */
#ifndef MACHINE_ENGINE_DAEMON_H
#define MACHINE_ENGINE_DAEMON_H

#include <stdbool.h>
#include <sys/types.h>

#include "cleanup.h"
#include "error.h"
#include "log.h"

#define ENGINE_DEFAULT_HOST "unix:///var/run/machine-engine.sock"
#define ENGINE_DEFAULT_DATA_ROOT "/var/lib/machine-engine"
#define ENGINE_DEFAULT_PIDFILE "/var/run/machine-engine.pid"
#define ENGINE_DEFAULT_EXEC_ROOT "/var/run/machine-engine"

struct engine_config {
    char **hosts; /* NULL-terminated -H values, validated */
    char *data_root;
    char *exec_root; /* network namespaces live in <exec-root>/netns */
    char *pidfile;
    char *bridge;       /* the default bridge's interface (NULL: machine0) */
    char *bip;          /* the default bridge's address/prefix (NULL: 172.18.0.1/16) */
    char *default_address_pool; /* base=CIDR,size=N for user networks */
    char **insecure_registries;
    char **registry_mirrors; /* normalized with a trailing '/' */
    char **labels;           /* key=value */
    char **dns, **dns_search, **dns_options; /* container defaults (dockerd's --dns*) */
    unsigned max_concurrent_downloads;       /* 0: the default (3) */
    unsigned max_concurrent_uploads;         /* 0: the default (5) */
    unsigned mtu;                            /* the default bridge's endpoints (0: 1500) */
    bool live_restore;                       /* default true: containers outlive the engine */
    char **default_ulimits; /* name=soft[:hard] (dockerd's --default-ulimit) */
    char **log_opts;        /* key=value json-file options (dockerd's --log-opt) */
    char *log_driver;       /* json-file or none for containers without their own; NULL: json-file */
    char *storage_driver; /* overlay2 (overlay) or vfs; NULL: chosen by the overlay probe */
    enum mlog_level log_level;
    bool tlsverify;
    char *tlscacert;
    char *tlscert;
    char *tlskey;
    bool show_version;
    bool show_help;
    /* Test hook (env MACHINE_ENGINE_TEST_PUBLISH_DELAY_MS, read by main in debug builds only). */
    unsigned unix_publish_delay_ms;
    /* API connection limits and deadlines (env MACHINE_ENGINE_API_*, set by main; 0: defaults,
     * see struct api_server_config). */
    unsigned api_max_conns_per_source;
    unsigned api_handshake_timeout_ms;
    unsigned api_header_timeout_ms;
    unsigned api_idle_timeout_ms;
};

/* Parses dockerd-style flags (argv[0] is skipped). Pure: touches nothing but
 * cfg; on failure cfg is released. MERR_INVALID for bad input, MERR_PERM for
 * a non-loopback TCP host without --tlsverify. */
MUST_CHECK int engine_config_parse(struct engine_config *cfg, int argc, char *const argv[],
                                   struct merr *err);
void engine_config_release(struct engine_config *cfg);
const char *engine_config_usage(void);

/* ---- pid file -------------------------------------------------------------- */

struct pidfile;

/* Refuses (MERR_BUSY) when the file is locked or names a live process. */
MUST_CHECK int pidfile_acquire(const char *path, struct pidfile **out, struct merr *err);
/* Removes the file if it is still ours. */
void pidfile_release(struct pidfile *pf);
/* Parses "1234\n"; MERR_CORRUPT otherwise. */
MUST_CHECK int pidfile_parse(const char *text, pid_t *out, struct merr *err);

/* ---- the engine ------------------------------------------------------------ */

struct api_server;
struct pidfile;
struct api_tls;
struct rt_runtime;
struct image_store;
struct ctr_manager;
struct net_service;

#include "handlers/handlers.h"
#include "image/image.h"

struct engine {
    const struct engine_config *cfg; /* borrowed, outlives the engine */
    const struct mlog *log;
    struct pidfile *pidfile;
    char engine_id[64];
    char **warnings; /* for GET /info */
    struct api_server *server;
    struct api_system *system;
    struct api_tls *tls;
    struct rt_runtime *rt;
    const struct layer_driver *layers; /* overlay2 or vfs, chosen at start */
    struct ctr_ulimit *default_ulimits; /* --default-ulimit, parsed */
    size_t n_default_ulimits;
    struct json_t *default_log_opts;    /* --log-opt, checked as json-file options */
    struct image_store *images;
    struct ctr_manager *containers;
    struct vol_store *volumes;
    struct evt_bus *events;
    struct net_service *net;
    struct registry_config registry;
    struct engine_services services;
};

/* Creates a whiteout and mounts an overlay in a scratch directory of data_root: MERR_UNSUPPORTED
 * when the data root cannot hold overlay layers (it is itself on overlayfs, for one). */
MUST_CHECK int engine_probe_overlay(const char *data_root, struct merr *err);

MUST_CHECK struct engine *engine_new(const struct engine_config *cfg, const struct mlog *log,
                                     struct merr *err);
/* Serves until stop_fd (e.g. a signalfd) becomes readable. */
MUST_CHECK int engine_run(struct engine *e, int stop_fd, struct merr *err);
/* Stops everything and removes the sockets and the pid file. */
void engine_free(struct engine *e);
DEFINE_CLEANUP(struct engine, engine_free)

const char *engine_version(void);
const char *engine_git_commit(void);

#endif
