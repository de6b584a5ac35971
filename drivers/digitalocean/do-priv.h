/* Internals of the digitalocean driver shared with its unit tests: the pure JSON builders and
 * readers of DigitalOcean's API v2 (do-json.c) and the API calls (do-api.c). */
#ifndef MACHINE_DO_PRIV_H
#define MACHINE_DO_PRIV_H

#ifndef MACHINE_DO_PRIV
#error "do-priv.h is internal to drivers/digitalocean/ and its tests (they define MACHINE_DO_PRIV)"
#endif

#include <stdbool.h>
#include <stddef.h>

#include "cleanup.h"

struct cloud_client;
struct driver_ctx;
struct http_response;
struct json_t;
struct machine;
struct merr;

#define DO_DEFAULT_API_URL "https://api.digitalocean.com"

/* Driver-object keys (docker-machine's names where it had one). */
#define DO_KEY_TOKEN "AccessToken"
#define DO_KEY_API_URL "APIURL"
#define DO_KEY_REGION "Region"
#define DO_KEY_SIZE "Size"
#define DO_KEY_IMAGE "Image"
#define DO_KEY_FINGERPRINT "SSHKeyFingerprint"
#define DO_KEY_IPV6 "IPv6"
#define DO_KEY_PRIVATE_NET "PrivateNetworking"
#define DO_KEY_BACKUPS "Backups"
#define DO_KEY_MONITORING "Monitoring"
#define DO_KEY_TAGS "Tags"
#define DO_KEY_USERDATA "UserDataFile"
#define DO_KEY_DROPLET_ID "DropletID"
#define DO_KEY_DROPLET_NAME "DropletName"
#define DO_KEY_SSH_KEY_ID "SSHKeyID"
/* "machine-NAME-RANDOM": the name of the key machine uploads and a tag on the droplet, chosen
 * before anything is made so that rm finds both after a create killed half way. */
#define DO_KEY_OWNER_TAG "OwnerTag"

/* ---- pure (do-json.c) ---- */

struct do_droplet_spec {
    const char *name, *region, *size, *image;
    const char *ssh_key;       /* an uploaded key's id (digits) or a fingerprint */
    const char *tags;          /* comma-separated user tags, or NULL */
    const char *owner_tag;     /* added to the tags */
    const char *user_data;     /* contents, or NULL */
    bool ipv6, private_networking, backups, monitoring;
};

struct do_droplet {
    long long id;
    char *name;
    char *status;              /* new, active, off, archive */
    char *public_ipv4;         /* NULL until the droplet has one */
};
void do_droplet_clear(struct do_droplet *d);

struct do_action {
    long long id;
    char *status;              /* in-progress, completed, errored */
};
void do_action_clear(struct do_action *a);

/* POST /v2/droplets body; NULL with err for a tag DigitalOcean would refuse. */
struct json_t *do_droplet_request(const struct do_droplet_spec *spec, struct merr *err);
/* POST /v2/account/keys body. */
struct json_t *do_key_request(const char *name, const char *public_key);

/* {"droplet": {...}} */
int do_parse_droplet(const char *body, size_t len, struct do_droplet *out, struct merr *err);
/* {"droplets": [...], "links": ...}: calls fn for each; *next: links.pages.next or NULL. */
typedef int (*do_droplet_fn)(void *opaque, const struct do_droplet *d, struct merr *err);
int do_parse_droplet_page(const char *body, size_t len, do_droplet_fn fn, void *opaque,
                          char **next, struct merr *err);
/* {"ssh_key": {"id": N, "fingerprint": ...}} */
int do_parse_key(const char *body, size_t len, long long *id, char **fingerprint,
                 struct merr *err);
/* {"ssh_keys": [...], "links": ...}: the id of the key called name (0: none on this page). */
int do_parse_key_page(const char *body, size_t len, const char *name, long long *id, char **next,
                      struct merr *err);
/* {"action": {...}} */
int do_parse_action(const char *body, size_t len, struct do_action *out, struct merr *err);
/* {"id": "not_found", "message": "..."}: malloc'd id and message (NULL when absent). */
void do_parse_error(const char *body, size_t len, char **id, char **message);

/* The machine state of a droplet status. */
int do_status_state(const char *status);

/* ---- API calls (do-api.c) ---- */

struct do_api {
    struct cloud_client *cc;
    const struct driver_ctx *ctx;
    char *base;                /* the API URL without a trailing slash */
    char *auth;                /* "Authorization: Bearer …" (never logged: util/http redacts) */
};
void do_api_clear(struct do_api *api);
/* An API URL the token may be sent to: https://…, or http:// to 127.0.0.1, localhost, [::1]. */
bool do_api_url_ok(const char *url);
int do_api_open(struct do_api *api, const struct driver_ctx *ctx, const struct machine *m,
                struct merr *err);

/* Sends a request to PATH (or a full URL from links) and answers the parsed body's JSON text:
 * 2xx is 0 with resp filled, anything else an error from the API's words; a 404 is
 * MERR_NOT_FOUND so callers may treat "already gone" apart. */
int do_api_call(struct do_api *api, const char *method, const char *path, struct json_t *body,
                struct http_response *resp, struct merr *err);

int do_api_check_token(struct do_api *api, struct merr *err);
int do_api_create_key(struct do_api *api, const char *name, const char *public_key,
                      long long *id, struct merr *err);
int do_api_find_key(struct do_api *api, const char *name, long long *id, struct merr *err);
int do_api_delete_key(struct do_api *api, long long id, struct merr *err);
int do_api_create_droplet(struct do_api *api, const struct do_droplet_spec *spec,
                          long long *id, struct merr *err);
int do_api_get_droplet(struct do_api *api, long long id, struct do_droplet *out,
                       struct merr *err);
/* The ids of the droplets carrying tag (every page), at most cap of them. */
int do_api_tagged_droplets(struct do_api *api, const char *tag, long long *ids, size_t cap,
                           size_t *n, struct merr *err);
int do_api_delete_droplet(struct do_api *api, long long id, struct merr *err);
/* For a poll whose request failed: 0 (not done yet, err cleared) when it ran into the
 * operation's deadline, so driver_wait_until names what did not happen; else -1. */
int do_poll_failed(const struct do_api *api, struct merr *err);
/* Starts the action (power_on, shutdown, power_off, reboot) and waits for it to complete,
 * at most limit_ms (0: a few minutes) and within the operation's deadline. */
int do_api_action(struct do_api *api, long long droplet, const char *type, int limit_ms,
                  struct merr *err);

#endif
