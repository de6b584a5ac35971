/* A small client for an engine's Docker API over mutual TLS (or a Unix socket), used by
 * `env`, `ls`, `version NAME` and provisioning to check that an engine answers. libcurl. */
#ifndef MACHINE_ENGINE_CLIENT_H
#define MACHINE_ENGINE_CLIENT_H

#include <jansson.h>
#include <sys/types.h>

#include "cleanup.h"

struct merr;

struct engine_endpoint {
    const char *url;  /* tcp://HOST:PORT (TLS) or unix:///path */
    const char *ca;   /* CA that must have signed the engine's certificate */
    const char *cert; /* our client certificate and key */
    const char *key;
    int timeout_ms;
};

/* GET path; the body must be JSON. MERR_AUTH when TLS verification fails either way (an engine
 * certificate from another CA, or without the dialled address), MERR_UNREACHABLE / MERR_TIMEOUT
 * for network failures, MERR_PROTOCOL for a non-2xx status or a body that is not JSON. */
json_t *engine_get_json(const struct engine_endpoint *ep, const char *path, struct merr *err) MUST_CHECK;

/* The engine's version string (GET /version → Version). */
char *engine_version(const struct engine_endpoint *ep, struct merr *err) MUST_CHECK;

/* docker load: POST /images/load with the docker-archive tar read from fd (size bytes from its
 * current start). MERR_REMOTE with the engine's words when it refuses the archive. */
int engine_load_image(const struct engine_endpoint *ep, int fd, off_t size, struct merr *err) MUST_CHECK;

#endif
