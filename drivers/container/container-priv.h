/* `container` driver internals: an engine API client (container-api.c), the default host image
 * (container-image.c) and the lab network with its fixed addresses (container-net.c). */
#ifndef MACHINE_CONTAINER_PRIV_H
#define MACHINE_CONTAINER_PRIV_H

#include <jansson.h>
#include <stdbool.h>

#include "cleanup.h"

struct driver_ctx;
struct http_client;
struct machine;
struct merr;

/* Driver-object keys of a container machine. */
#define CKEY_URL "EngineURL"
#define CKEY_CERTS "EngineCertPath"
#define CKEY_IMAGE "Image"
#define CKEY_NETWORK "Network"
#define CKEY_MEMORY "Memory"  /* MiB, 0: no limit */
#define CKEY_CPUS "CPUs"      /* 0: no limit */
#define CKEY_CONTAINER "ContainerName"
#define CKEY_VOLUME "VolumeName"

#define CTR_DEFAULT_URL "unix:///var/run/machine-engine.sock"
#define CTR_DEFAULT_NETWORK "machine-lab"
#define CTR_HOST_IMAGE "machine-host" /* the default image's repository */
#define CTR_LABEL "machine.container" /* label value: the machine's name */

/* One engine, reached over its Unix socket or tcp+TLS (ca.pem, cert.pem, key.pem of the cert
 * path), each request bounded by the operation's deadline. */
struct ctr_api {
    const struct driver_ctx *ctx;
    struct http_client *http;
    char *base; /* "http://localhost/v1.41" or "https://HOST:PORT/v1.41" */
    long attempt_ms; /* bound of one request (0: the context's timeout, else 60 s) */
};

int ctr_api_open(struct ctr_api *api, const struct driver_ctx *ctx, const struct machine *m,
                 struct merr *err) MUST_CHECK;
void ctr_api_close(struct ctr_api *api);

/* METHOD path (below the version prefix) with an optional JSON body; returns the status (any),
 * -1 on a transport error. *out (when not NULL) gets the body parsed as JSON (NULL if none). A
 * status >= 400 also leaves the engine's "message" in err (prefixed with what) without failing,
 * so callers can treat 404 and 409 as answers. */
long ctr_api_call(struct ctr_api *api, const char *method, const char *path, json_t *body,
                  json_t **out, const char *what, struct merr *err);
/* Same, failing (-1, err set) on any status outside 2xx and ok (0: none). */
int ctr_api_expect(struct ctr_api *api, const char *method, const char *path, json_t *body,
                   json_t **out, long ok, const char *what, struct merr *err) MUST_CHECK;
/* POST path with the file at file_path as the body (application/x-tar). */
int ctr_api_post_file(struct ctr_api *api, const char *path, const char *file_path,
                      const char *what, struct merr *err) MUST_CHECK;

/* Makes sure the image of m exists on the engine: --container-image is used as given (never
 * pulled here: pull it first); the default is machine-host.tar of this build, imported as
 * machine-host:TAG once. Stores the reference in CKEY_IMAGE. */
int ctr_image_ensure(struct ctr_api *api, struct machine *m, struct merr *err) MUST_CHECK;

/* Makes sure the network exists (creating the default lab network, labelled as made by this
 * driver), then picks a free IPv4 address on it; the caller creates the container with
 * it while holding *lock_fd (released with fs_unlock). */
int ctr_net_reserve(struct ctr_api *api, struct machine *m, char **ip, int *lock_fd,
                    struct merr *err) MUST_CHECK;
/* Removes the network when this driver made it (its label) and no container is left on it. */
int ctr_net_release(struct ctr_api *api, struct machine *m, struct merr *err) MUST_CHECK;

/* Pure: the first address of subnet (a.b.c.d/len) that is neither the network, broadcast or
 * gateway address nor listed in used (NULL-terminated); NULL if none is left. */
char *ctr_net_pick(const char *subnet, const char *gateway, const char *const *used,
                   struct merr *err);

#endif
