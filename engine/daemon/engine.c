/* struct engine: builds every subsystem from the configuration, plugs their
 * routes into the API server, and tears everything down again. */
#include "daemon.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "api/tls.h"
#include "container/defaults.h"
#include "container/manager.h"
#include "events/events.h"
#include "layer/layer.h"
#include "volume/volume.h"
#include "fsutil.h"
#include "network/network.h"
#include "runtime/runtime.h"

#ifndef ENGINE_GIT_COMMIT
#define ENGINE_GIT_COMMIT "unknown"
#endif
#ifndef ENGINE_BUILD_TIME
#define ENGINE_BUILD_TIME ""
#endif

const char *engine_version(void)
{
    return MACHINE_VERSION;
}

const char *engine_git_commit(void)
{
    return ENGINE_GIT_COMMIT;
}

/* mkdir -p with mode for the missing components. */
static int make_dirs(const char *path, mode_t mode, struct merr *err)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return merr_set(err, MERR_INVALID, 0, "path '%s' is too long", path);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
            return merr_set(err, MERR_IO, errno, "cannot create '%s'", buf);
        *p = saved;
        if (saved == '\0')
            return 0;
    }
}

/* The daemon's ID survives restarts: <data-root>/engine-id, a random UUID. */
static int load_engine_id(const char *data_root, char *id, size_t size, struct merr *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/engine-id", data_root);
    FILE *auto_fclose f = fopen(path, "re");
    if (f != NULL && fgets(id, (int)size, f) != NULL) {
        id[strcspn(id, "\n")] = '\0';
        if (strlen(id) == 36)
            return 0;
    }
    unsigned char r[16];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
        return merr_set(err, MERR_IO, errno, "cannot get random bytes");
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(id, size,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1],
             r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14],
             r[15]);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int auto_close fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return merr_set(err, MERR_IO, errno, "cannot create '%s'", tmp);
    if (dprintf(fd, "%s\n", id) < 0 || fsync(fd) < 0 || rename(tmp, path) < 0)
        return merr_set(err, MERR_IO, errno, "cannot write '%s'", path);
    return 0;
}

/* Container and image counts for GET /info. The container manager and the
 * image store answer here once they exist. */
static int engine_counts(void *data, struct api_system_counts *out, struct merr *err)
{
    struct engine *e = data;
    memset(out, 0, sizeof *out);
    if (e->containers != NULL)
        ctr_counts(e->containers, &out->containers, &out->running, &out->paused, &out->stopped);
    if (e->images != NULL) {
        char *text = image_list_json(e->images, err);
        if (text == NULL)
            return -1;
        json_t *j = json_loads(text, 0, NULL);
        out->images = (long long)json_array_size(j);
        json_decref(j);
        free(text);
    }
    return 0;
}

static int push_warning(struct engine *e, const char *text, struct merr *err)
{
    size_t n = 0;
    while (e->warnings != NULL && e->warnings[n] != NULL)
        n++;
    char **grown = realloc(e->warnings, (n + 2) * sizeof *grown);
    if (grown == NULL)
        return merr_set(err, MERR_NOMEM, 0, "out of memory");
    e->warnings = grown;
    grown[n] = strdup(text);
    grown[n + 1] = NULL;
    return grown[n] != NULL ? 0 : merr_set(err, MERR_NOMEM, 0, "out of memory");
}

/* ---- the container manager's network hooks, over the network service ---- */

static int net_hook_create(void *data, const char *id, const char *name, const json_t *body,
                           const json_t *image_config, struct merr *err)
{
    return net_ctr_create(data, id, name, body, image_config, err);
}

static int net_hook_start(void *data, const char *id, const char *hostname, struct ctr_net_run *out,
                          struct merr *err)
{
    struct net_ctr_run run;
    if (net_ctr_start(data, id, hostname, &run, err) < 0)
        return -1;
    *out = (struct ctr_net_run){ .netns_path = run.netns_path, .hosts = run.hosts,
                                 .resolv = run.resolv, .hostname = run.hostname };
    for (size_t i = 0; i < CTR_NET_HOLD && i < NET_HOLD_FDS; i++)
        out->hold[i] = run.hold[i];
    return 0;
}

static int net_hook_adopt(void *data, const char *id, pid_t holder, int holder_fd,
                          struct merr *err)
{
    return net_ctr_adopt(data, id, holder, holder_fd, err);
}

static void net_hook_stop(void *data, const char *id)
{
    net_ctr_stop(data, id);
}

static void net_hook_remove(void *data, const char *id)
{
    net_ctr_remove(data, id);
}

static void net_hook_describe(void *data, const char *id, json_t *obj, bool ps)
{
    net_ctr_describe(data, id, obj, ps);
}

static int net_ctr_lookup(void *data, const char *ref, char id[65], struct merr *err)
{
    struct engine *e = data;
    return ctr_lookup(e->containers, ref, id, NULL, err);
}

/* Every subsystem registers its routes in handlers_register_all (engine/handlers/routes.c). */
static int engine_register_routes(struct engine *e, struct merr *err)
{
    return handlers_register_all(api_server_router(e->server), e->system, &e->services, err);
}

/* The layer driver: --storage-driver, else overlay2 where the data root can hold overlay layers
 * (a whiteout and an overlay mount tried in a scratch directory) and vfs where it cannot (it is
 * itself on overlayfs, for one), said in the log and in docker info's warnings. */
static int engine_choose_layers(struct engine *e, struct merr *err)
{
    const struct engine_config *cfg = e->cfg;
    e->layers = layer_driver_find(cfg->storage_driver);
    if (e->layers == &layer_driver_vfs) {
        mlog_info(e->log, "storage driver vfs (--storage-driver): layers and containers are "
                          "plain copies");
        return 0;
    }
    struct merr probe = MERR_INIT;
    if (engine_probe_overlay(cfg->data_root, &probe) == 0) {
        e->layers = &layer_driver_overlay;
        return 0;
    }
    if (e->layers != NULL)
        return merr_set(err, MERR_UNSUPPORTED, probe.sys_errno,
                        "--storage-driver %s: the data root '%s' cannot hold overlay layers (%s)",
                        cfg->storage_driver, cfg->data_root, probe.msg);
    e->layers = &layer_driver_vfs;
    char warning[sizeof probe.msg + PATH_MAX + 256];
    snprintf(warning, sizeof warning,
             "WARNING: the data root '%s' cannot hold overlay layers (%s): the engine uses the "
             "vfs storage driver (every layer and container a full copy; put --data-root on a "
             "filesystem such as ext4 or xfs for overlay2)",
             cfg->data_root, probe.msg);
    mlog_warn(e->log, "storage driver vfs: %s", warning + strlen("WARNING: "));
    return push_warning(e, warning, err);
}

/* --default-ulimit and --log-opt, parsed and checked once (a bad one stops the engine, named). */
static int engine_container_defaults(struct engine *e, struct merr *err)
{
    const struct engine_config *cfg = e->cfg;
    size_t n = 0;
    while (cfg->default_ulimits != NULL && cfg->default_ulimits[n] != NULL)
        n++;
    e->default_ulimits = calloc(n + 1, sizeof *e->default_ulimits);
    e->default_log_opts = json_object();
    if (e->default_ulimits == NULL || e->default_log_opts == NULL)
        return merr_set(err, MERR_NOMEM, 0, "out of memory");
    for (size_t i = 0; i < n; i++) {
        struct ctr_ulimit u;
        if (ctr_default_ulimit_parse(cfg->default_ulimits[i], &u, err) < 0)
            return merr_prefix(err, "invalid --default-ulimit '%s'", cfg->default_ulimits[i]);
        size_t k = 0; /* a later one for the same resource wins, as dockerd's map */
        while (k < e->n_default_ulimits && e->default_ulimits[k].resource != u.resource)
            k++;
        e->default_ulimits[k] = u;
        if (k == e->n_default_ulimits)
            e->n_default_ulimits++;
    }
    for (char **o = cfg->log_opts; o != NULL && *o != NULL; o++)
        if (ctr_default_log_opt_parse(*o, e->default_log_opts, err) < 0)
            return merr_prefix(err, "invalid --log-opt '%s'", *o);
    if (ctr_default_log_opts_check(cfg->log_driver, e->default_log_opts, err) < 0)
        return merr_prefix(err, "invalid --log-opt");
    return 0;
}

/* The image store, the runtime and the container manager, which recovers the containers a
 * previous engine left behind. */
static int engine_services_new(struct engine *e, struct merr *err)
{
    const struct engine_config *cfg = e->cfg;
    auto_free char *image_root = path_join(cfg->data_root, "image");
    auto_free char *ctr_root = path_join(cfg->data_root, "containers");
    e->images = image_store_open(image_root, e->log, err);
    if (e->images == NULL || image_store_use_driver(e->images, e->layers, err) < 0)
        return -1;
    image_registry_config_init(&e->registry);
    e->registry.insecure_registries = (const char *const *)cfg->insecure_registries;
    e->registry.mirrors = (const char *const *)cfg->registry_mirrors;
    e->registry.log = e->log;
    if (cfg->max_concurrent_downloads > 0)
        e->registry.max_parallel_layers = cfg->max_concurrent_downloads;
    if (cfg->max_concurrent_uploads > 0)
        e->registry.max_parallel_uploads = cfg->max_concurrent_uploads;
    struct rt_runtime_config rcfg = { .log = e->log };
    if (rt_runtime_new(&rcfg, &e->rt, err) < 0)
        return -1;
    e->events = evt_bus_new(0);
    auto_free char *vol_root = path_join(cfg->data_root, "volumes");
    struct vol_store_config vcfg = { .root = vol_root, .log = e->log, .events = e->events };
    if (vol_store_new(&vcfg, &e->volumes, err) < 0)
        return -1;
    struct net_service_config ncfg = {
        .data_root = cfg->data_root,
        .exec_root = cfg->exec_root,
        .bridge = cfg->bridge,
        .bip = cfg->bip,
        .default_pool = cfg->default_address_pool,
        .dns = { cfg->dns, cfg->dns_search, cfg->dns_options },
        .mtu = cfg->mtu,
        .log = e->log,
        .ctr_lookup = net_ctr_lookup,
        .ctr_data = e,
    };
    if (net_service_new(&ncfg, &e->net, err) < 0)
        return merr_prefix(err, "cannot set up networking");
    if (engine_container_defaults(e, err) < 0)
        return -1;
    struct ctr_manager_config mcfg = {
        .root = ctr_root,
        .rt = e->rt,
        .images = { .resolve = handlers_image_resolve, .data = e->images },
        .net = { .create = net_hook_create, .start = net_hook_start, .stop = net_hook_stop,
                 .adopt = net_hook_adopt, .remove = net_hook_remove,
                 .describe = net_hook_describe, .data = e->net },
        .log = e->log,
        .volumes = e->volumes,
        .events = e->events,
        .layers = e->layers,
        .default_ulimits = e->default_ulimits,
        .n_default_ulimits = e->n_default_ulimits,
        .default_log_opts = e->default_log_opts,
        .default_log_driver = cfg->log_driver,
        .no_live_restore = !cfg->live_restore,
    };
    if (ctr_manager_new(&mcfg, &e->containers, err) < 0 || ctr_manager_recover(e->containers, err) < 0)
        return -1;
    net_service_remove_stale(e->net); /* after the re-adopted containers kept theirs */
    e->services = (struct engine_services){
        .containers = e->containers,
        .images = e->images,
        .registry = &e->registry,
        .volumes = e->volumes,
        .events = e->events,
        .net = e->net,
    };
    if (strcmp(net_service_firewall(e->net), "none") == 0 &&
        push_warning(e, "WARNING: neither nftables nor iptables is usable: containers have no "
                        "outbound NAT", err) < 0)
        return -1;
    return 0;
}

static int engine_listen(struct engine *e, struct merr *err)
{
    for (char **h = e->cfg->hosts; *h != NULL; h++) {
        struct api_listen_spec spec;
        if (api_listen_spec_parse(*h, e->cfg->tlsverify, &spec, err) < 0)
            return -1;
        int r = api_server_listen(e->server, &spec, err);
        if (r == 0 && spec.kind == API_LISTEN_TCP && !spec.tls) {
            char warning[512];
            snprintf(warning, sizeof warning,
                     "WARNING: API is accessible on http://%s:%u without encryption.",
                     spec.host, spec.port);
            mlog_warn(e->log, "%s", warning + strlen("WARNING: "));
            r = push_warning(e, warning, err);
        }
        api_listen_spec_release(&spec);
        if (r < 0)
            return merr_prefix(err, "cannot listen on '%s'", *h);
        mlog_info(e->log, "API listen on %s", *h);
    }
    return 0;
}

struct engine *engine_new(const struct engine_config *cfg, const struct mlog *log,
                          struct merr *err)
{
    struct engine *e = calloc(1, sizeof *e);
    if (e == NULL) {
        merr_set(err, MERR_NOMEM, 0, "out of memory");
        return NULL;
    }
    e->cfg = cfg;
    e->log = log;
    if (pidfile_acquire(cfg->pidfile, &e->pidfile, err) < 0)
        goto fail;
    if (make_dirs(cfg->data_root, 0711, err) < 0 ||
        load_engine_id(cfg->data_root, e->engine_id, sizeof e->engine_id, err) < 0)
        goto fail;
    if (engine_choose_layers(e, err) < 0)
        goto fail;
    e->system = calloc(1, sizeof *e->system);
    if (e->system == NULL) {
        merr_set(err, MERR_NOMEM, 0, "out of memory");
        goto fail;
    }
    if (cfg->tlsverify &&
        api_tls_new(cfg->tlscacert, cfg->tlscert, cfg->tlskey, &e->tls, err) < 0)
        goto fail;
    if (engine_services_new(e, err) < 0)
        goto fail;
    struct api_server_config scfg = {
        .server_version = engine_version(),
        .log = log,
        .tls = e->tls != NULL ? api_tls_transport(e->tls) : NULL,
        .unix_publish_delay_ms = cfg->unix_publish_delay_ms,
        .max_conns_per_source = cfg->api_max_conns_per_source,
        .handshake_timeout_ms = cfg->api_handshake_timeout_ms,
        .header_timeout_ms = cfg->api_header_timeout_ms,
        .idle_timeout_ms = cfg->api_idle_timeout_ms,
    };
    e->server = api_server_new(&scfg, err);
    if (e->server == NULL)
        goto fail;
    if (engine_listen(e, err) < 0)
        goto fail;
    *e->system = (struct api_system){
        .engine_id = e->engine_id,
        .server_version = engine_version(),
        .git_commit = engine_git_commit(),
        .build_time = ENGINE_BUILD_TIME,
        .data_root = cfg->data_root,
        .storage_driver = e->layers->name,
        .labels = cfg->labels,
        .insecure_registries = cfg->insecure_registries,
        .registry_mirrors = cfg->registry_mirrors,
        .warnings = e->warnings,
        .debug = cfg->log_level == MLOG_DEBUG,
        .counts = engine_counts,
        .counts_data = e,
    };
    if (engine_register_routes(e, err) < 0)
        goto fail;
    return e;
fail:
    engine_free(e);
    return NULL;
}

int engine_run(struct engine *e, int stop_fd, struct merr *err)
{
    mlog_info(e->log, "machine-engine %s (%s) started, data root '%s'", engine_version(),
              engine_git_commit(), e->cfg->data_root);
    return api_server_run(e->server, stop_fd, err);
}

void engine_free(struct engine *e)
{
    if (e == NULL)
        return;
    api_server_free(e->server);
    ctr_manager_free(e->containers);
    vol_store_free(e->volumes);
    evt_bus_free(e->events);
    net_service_free(e->net);
    rt_runtime_free(e->rt);
    image_store_free(e->images);
    free(e->default_ulimits);
    json_decref(e->default_log_opts);
    api_tls_free(e->tls);
    free(e->system);
    cleanup_strvp(&e->warnings);
    pidfile_release(e->pidfile);
    free(e);
}
