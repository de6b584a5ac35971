/* `container`: a machine that is a system container on a machine-engine (or dockerd) — its own
 * hostname, a fixed address on a lab network, delegated cgroups (private cgroup namespace,
 * writable cgroup mount), privileged, a volume for /var/lib/machine-engine (overlay layers cannot
 * live on an overlay root) — reached over SSH and provisioned like any other host. */
#include <string.h>

#include "container-priv.h"
#include "driver.h"
#include "error.h"
#include "fsutil.h"
#include "jsonutil.h"
#include "machine.h"
#include "registry.h"

static const struct driver_flag container_flags[] = {
    { .name = "container-engine-url", .env = "CONTAINER_ENGINE_URL", .def = CTR_DEFAULT_URL,
      .key = CKEY_URL, .type = DFLAG_STRING,
      .help = "engine holding the machine: unix:///PATH or tcp://HOST:PORT (TLS)" },
    { .name = "container-engine-cert-path", .env = "CONTAINER_ENGINE_CERT_PATH",
      .key = CKEY_CERTS, .type = DFLAG_STRING,
      .help = "ca.pem, cert.pem and key.pem for a tcp:// engine (a machine's directory works)" },
    { .name = "container-image", .env = "CONTAINER_IMAGE", .key = CKEY_IMAGE,
      .type = DFLAG_STRING,
      .help = "image already on the engine (default: machine-host, imported on first use)" },
    { .name = "container-network", .env = "CONTAINER_NETWORK", .def = CTR_DEFAULT_NETWORK,
      .key = CKEY_NETWORK, .type = DFLAG_STRING,
      .help = "network of the machine (the default one is created when missing)" },
    { .name = "container-memory", .env = "CONTAINER_MEMORY", .def = "0", .key = CKEY_MEMORY,
      .type = DFLAG_INT, .min = 0, .max = 1048576, .help = "memory limit in MiB (0: none)" },
    { .name = "container-cpus", .env = "CONTAINER_CPUS", .def = "0", .key = CKEY_CPUS,
      .type = DFLAG_INT, .min = 0, .max = 1024, .help = "CPU limit (0: none)" },
    { 0 },
};

static const char *ctr_name(const struct machine *m)
{
    const char *n = machine_driver_str(m, CKEY_CONTAINER);
    return n != NULL && n[0] != '\0' ? n : m->name;
}

static int container_precreate_check(const struct driver_ctx *ctx, struct machine *m,
                                     struct merr *err)
{
    const char *net = machine_driver_str(m, CKEY_NETWORK);
    if (net == NULL || net[0] == '\0' || strpbrk(net, "/?&%# ") != NULL)
        return merr_set(err, MERR_INVALID, 0, "invalid --container-network '%s'",
                        net != NULL ? net : "");
    const char *img = machine_driver_str(m, CKEY_IMAGE);
    if (img != NULL && strpbrk(img, "?&%# ") != NULL)
        return merr_set(err, MERR_INVALID, 0, "invalid --container-image '%s'", img);
    struct ctr_api api;
    if (ctr_api_open(&api, ctx, m, err) < 0)
        return -1;
    const char *url = machine_driver_str(m, CKEY_URL);
    auto_free char *what = xasprintf("asking the engine at %s",
                                     url != NULL && url[0] != '\0' ? url : CTR_DEFAULT_URL);
    int rc = ctr_api_expect(&api, "GET", "/_ping", NULL, NULL, 0, what, err);
    ctr_api_close(&api);
    return rc;
}

static json_t *create_body(const struct driver_ctx *ctx, const struct machine *m, const char *ip,
                           const char *volume)
{
    const char *net = machine_driver_str(m, CKEY_NETWORK);
    auto_free char *key = xasprintf("MACHINE_AUTHORIZED_KEY=%s",
                                    ctx->ssh_public_key != NULL ? ctx->ssh_public_key : "");
    auto_free char *bind = xasprintf("%s:/var/lib/machine-engine", volume);
    json_t *hc = json_pack("{s:b, s:s, s:[s], s:s, s:{s:s}}", "Privileged", 1, "CgroupnsMode",
                           "private", "Binds", bind, "NetworkMode", net, "RestartPolicy", "Name",
                           "no");
    long long mem = machine_driver_int(m, CKEY_MEMORY, 0), cpus = machine_driver_int(m, CKEY_CPUS, 0);
    if (mem > 0)
        json_object_set_new(hc, "Memory", json_integer(mem << 20));
    if (cpus > 0)
        json_object_set_new(hc, "NanoCpus", json_integer(cpus * 1000000000LL));
    json_t *eps = json_object();
    json_object_set_new(eps, net, json_pack("{s:{s:s}}", "IPAMConfig", "IPv4Address", ip));
    return json_pack("{s:s, s:s, s:[s], s:{s:s}, s:o, s:{s:o}}", "Image",
                     machine_driver_str(m, CKEY_IMAGE), "Hostname", m->name, "Env", key,
                     "Labels", CTR_LABEL, m->name, "HostConfig", hc, "NetworkingConfig",
                     "EndpointsConfig", eps);
}

/* The volume, then the container with its address (chosen under the network lock). */
static int make_container(struct ctr_api *api, const struct driver_ctx *ctx, struct machine *m,
                          struct merr *err)
{
    auto_free char *volume = xasprintf("%s-engine", m->name);
    auto_json json_t *vbody = json_pack("{s:s, s:{s:s}}", "Name", volume, "Labels", CTR_LABEL,
                                        m->name);
    if (ctr_api_expect(api, "POST", "/volumes/create", vbody, NULL, 0, "creating the volume",
                       err) < 0)
        return -1;
    machine_driver_set_str(m, CKEY_VOLUME, volume);
    auto_free char *ip = NULL;
    int lock = -1;
    if (ctr_net_reserve(api, m, &ip, &lock, err) < 0)
        return -1;
    auto_json json_t *body = create_body(ctx, m, ip, volume);
    auto_free char *path = xasprintf("/containers/create?name=%s", m->name);
    int rc = ctr_api_expect(api, "POST", path, body, NULL, 0, "creating the container", err);
    fs_unlock(lock);
    if (rc < 0)
        return -1;
    machine_driver_set_str(m, CKEY_CONTAINER, m->name);
    machine_driver_set_str(m, DKEY_IP, ip);
    return 0;
}

static int container_create(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    machine_driver_set_str(m, DKEY_SSH_USER, "root");
    machine_driver_set_int(m, DKEY_SSH_PORT, 22);
    m->engine.port = MACHINE_DEFAULT_ENGINE_PORT;
    struct ctr_api api;
    if (ctr_api_open(&api, ctx, m, err) < 0)
        return -1;
    auto_free char *start = xasprintf("/containers/%s/start", m->name);
    api.attempt_ms = 300000; /* the first import of the image */
    int rc = ctr_image_ensure(&api, m, err) < 0 || make_container(&api, ctx, m, err) < 0 ||
                     ctr_api_expect(&api, "POST", start, NULL, NULL, 304,
                                    "starting the container", err) < 0
                 ? -1
                 : 0;
    ctr_api_close(&api);
    return rc;
}

/* Removes the container, its volume and (when this machine made it and it is empty) the
 * network; each may already be gone (a create that failed half way). */
static int container_remove(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    struct ctr_api api;
    if (ctr_api_open(&api, ctx, m, err) < 0)
        return -1;
    auto_free char *cpath = xasprintf("/containers/%s?force=1", ctr_name(m));
    auto_free char *vpath = xasprintf("/volumes/%s-engine", m->name);
    int rc = ctr_api_expect(&api, "DELETE", cpath, NULL, NULL, 404, "removing the container",
                            err) < 0 ||
                     ctr_api_expect(&api, "DELETE", vpath, NULL, NULL, 404,
                                    "removing the volume", err) < 0 ||
                     ctr_net_release(&api, m, err) < 0
                 ? -1
                 : 0;
    ctr_api_close(&api);
    return rc;
}

/* POST /containers/NAME/VERB[QUERY]; ok: a status that also means done (304, 409). */
static int verb(const struct driver_ctx *ctx, const struct machine *m, const char *v,
                const char *query, long ok, struct merr *err)
{
    struct ctr_api api;
    if (ctr_api_open(&api, ctx, m, err) < 0)
        return -1;
    /* stop and restart wait for the grace time; start runs the machine's init */
    api.attempt_ms = (ctx->stop_grace_ms > 0 ? ctx->stop_grace_ms : 10000) + 60000;
    auto_free char *path = xasprintf("/containers/%s/%s%s", ctr_name(m), v, query);
    auto_free char *what = xasprintf("%s of container '%s'", v, ctr_name(m));
    int rc = ctr_api_expect(&api, "POST", path, NULL, NULL, ok, what, err);
    ctr_api_close(&api);
    return rc;
}

static int container_start(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    return verb(ctx, m, "start", "", 304, err);
}

static int container_stop(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    auto_free char *q = xasprintf("?t=%d", ctx->stop_grace_ms > 0 ? ctx->stop_grace_ms / 1000 : 10);
    return verb(ctx, m, "stop", q, 304, err);
}

static int container_restart(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    auto_free char *q = xasprintf("?t=%d", ctx->stop_grace_ms > 0 ? ctx->stop_grace_ms / 1000 : 10);
    return verb(ctx, m, "restart", q, 0, err);
}

static int container_kill(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    return verb(ctx, m, "kill", "", 409, err); /* 409: not running */
}

static int container_get_state(const struct driver_ctx *ctx, const struct machine *m,
                               enum machine_state *state, struct merr *err)
{
    struct ctr_api api;
    if (ctr_api_open(&api, ctx, m, err) < 0)
        return -1;
    auto_free char *path = xasprintf("/containers/%s/json", ctr_name(m));
    auto_json json_t *c = NULL;
    long st = ctr_api_call(&api, "GET", path, NULL, &c, "inspecting the container", err);
    ctr_api_close(&api);
    if (st == 404) {
        *state = MSTATE_ERROR;
        return 0;
    }
    if (st < 200 || st >= 300)
        return -1;
    const char *s = json_string_value(json_object_get(json_object_get(c, "State"), "Status"));
    s = s != NULL ? s : "";
    *state = strcmp(s, "running") == 0      ? MSTATE_RUNNING
             : strcmp(s, "paused") == 0     ? MSTATE_PAUSED
             : strcmp(s, "restarting") == 0 ? MSTATE_STARTING
             : strcmp(s, "removing") == 0   ? MSTATE_STOPPING
                                            : MSTATE_STOPPED;
    return 0;
}

const struct driver driver_container = {
    .name = "container",
    .description = "a system container on a machine-engine (lab hosts)",
    .flags = container_flags,
    .uses_ssh = true,
    .precreate_check = container_precreate_check,
    .create = container_create,
    .remove = container_remove,
    .start = container_start,
    .stop = container_stop,
    .restart = container_restart,
    .kill = container_kill,
    .get_state = container_get_state,
};
