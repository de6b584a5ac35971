/* Mutual-TLS transport for the API server (OpenSSL): TLS >= 1.2, client certificates required
 * and verified against the CA with the clientAuth purpose. Plugs into struct api_transport. */
#ifndef MACHINE_ENGINE_API_TLS_H
#define MACHINE_ENGINE_API_TLS_H

#include "api.h"

struct api_tls;

/* Loads the server cert/key and the CA that client certs must chain to. */
MUST_CHECK int api_tls_new(const char *ca, const char *cert, const char *key, struct api_tls **out,
                           struct merr *err);
void api_tls_free(struct api_tls *t);
/* The transport to put in api_server_config.tls; valid while t lives. */
const struct api_transport *api_tls_transport(struct api_tls *t);

#endif
