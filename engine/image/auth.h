/* Pure parsers for registry authentication: WWW-Authenticate challenges, token
 * responses, docker's X-Registry-Auth header and Retry-After. No I/O. */
#ifndef ENGINE_IMAGE_AUTH_H
#define ENGINE_IMAGE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "cleanup.h"

struct merr;

enum auth_scheme { AUTH_SCHEME_NONE, AUTH_SCHEME_BASIC, AUTH_SCHEME_BEARER };

struct auth_challenge {
    enum auth_scheme scheme;
    char realm[1024];
    char service[256];
    char scope[512];
};

/* `Bearer realm="https://auth.docker.io/token",service="registry.docker.io"` or
 * `Basic realm="x"`. Unknown schemes give MERR_UNSUPPORTED. */
MUST_CHECK int image_www_authenticate_parse(const char *header, struct auth_challenge *c,
                                      struct merr *err);

/* Credentials from X-Registry-Auth. Every field is NULL when absent. */
struct registry_creds {
    char *username;
    char *password;
    char *serveraddress;
    char *identitytoken;
};

/* Decodes base64url (padded or not; standard base64 accepted too) JSON
 * {username, password, serveraddress, identitytoken[, auth]}; "auth" is base64
 * "user:password". NULL, "" and "{}" give empty credentials. */
MUST_CHECK int image_x_registry_auth_decode(const char *header, struct registry_creds *creds,
                                      struct merr *err);
void image_registry_creds_clear(struct registry_creds *creds);
static inline bool image_registry_creds_have_basic(const struct registry_creds *c)
{
    return c->username != NULL && c->username[0] != '\0' && c->password != NULL;
}

/* Token server reply: "token" or "access_token"; expires_in defaults to 60 s. */
MUST_CHECK int image_token_response_parse(const char *buf, size_t len, char **token, long *expires_in,
                                    struct merr *err);

/* Standard base64 of buf (NUL-terminated, malloc'd), for Basic credentials. */
char *base64_encode(const void *buf, size_t len);

/* X-Registry-Config (POST /build): base64url JSON {"registry": {username, password, auth,
 * identitytoken, serveraddress}, ...}. *out gets the entry for the registry domain ("docker.io"
 * matches docker's "https://index.docker.io/v1/" key too) as an X-Registry-Auth value, or NULL
 * when there is none. MERR_INVALID when the header does not decode. */
MUST_CHECK int image_x_registry_config_pick(const char *header, const char *domain, char **out,
                                      struct merr *err);

#endif
