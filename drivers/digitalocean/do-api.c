/* DigitalOcean API v2 calls over the shared cloud client (core/cloud.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cloud.h"
#include "do-priv.h"
#include "driver.h"
#include "error.h"
#include "fsutil.h"
#include "http.h"
#include "jsonutil.h"
#include "machine.h"
#include "registry.h"
#include "secrets.h"

/* An action (power on, shutdown, ...) normally completes within a minute. */
#define DO_ACTION_WAIT_MS (5 * 60 * 1000)

void do_api_clear(struct do_api *api)
{
    cloud_client_free(api->cc);
    free(api->base);
    if (api->auth != NULL)
        explicit_bzero(api->auth, strlen(api->auth));
    free(api->auth);
    *api = (struct do_api){ 0 };
}

/* Plain http only to this machine (a simulator): the token must not cross a network in clear. */
bool do_api_url_ok(const char *url)
{
    if (strncmp(url, "https://", 8) == 0)
        return url[8] != '\0' && url[8] != '/';
    if (strncmp(url, "http://", 7) != 0)
        return false;
    static const char *const local[] = { "127.0.0.1", "localhost", "[::1]" };
    for (size_t i = 0; i < sizeof local / sizeof local[0]; i++) {
        size_t n = strlen(local[i]);
        if (strncmp(url + 7, local[i], n) == 0 && strchr(":/", url[7 + n]) != NULL)
            return true;
    }
    return false;
}

int do_api_open(struct do_api *api, const struct driver_ctx *ctx, const struct machine *m,
                struct merr *err)
{
    *api = (struct do_api){ .ctx = ctx };
    const char *token = driver_secret(&driver_digitalocean, m, DO_KEY_TOKEN, err);
    if (token == NULL)
        return -1;
    const char *url = machine_driver_str(m, DO_KEY_API_URL);
    if (url == NULL || url[0] == '\0')
        url = DO_DEFAULT_API_URL;
    if (!do_api_url_ok(url))
        return merr_set(err, MERR_INVALID, 0,
                        "invalid --digitalocean-api-url '%s': https://HOST, or http:// to this "
                        "machine only (the token is sent with every request)", url);
    api->base = xstrdup(url);
    size_t n = strlen(api->base);
    while (n > 0 && api->base[n - 1] == '/')
        api->base[--n] = '\0';
    api->auth = xasprintf("Authorization: Bearer %s", token);
    struct cloud_client_opts o = {
        .service = "digitalocean",
        .endpoint = api->base,
        .account = token,
        /* DigitalOcean allows 5,000 requests an hour and 250 a minute */
        .per_sec = 4,
        .burst = 20,
        .quota_remaining_header = "RateLimit-Remaining",
        .quota_reset_header = "RateLimit-Reset",
    };
    api->cc = cloud_client_new(ctx, &o, err);
    if (api->cc == NULL) {
        do_api_clear(api);
        return -1;
    }
    return 0;
}

static char *error_id(const struct http_response *resp)
{
    char *id = NULL, *msg = NULL;
    do_parse_error(resp->body, resp->len, &id, &msg);
    free(msg);
    return id;
}

int do_api_call(struct do_api *api, const char *method, const char *path, json_t *body,
                struct http_response *resp, struct merr *err)
{
    auto_free char *url = strncmp(path, "http://", 7) == 0 || strncmp(path, "https://", 8) == 0
                              ? xstrdup(path)
                              : xasprintf("%s%s", api->base, path);
    const char *headers[] = { api->auth, "Accept: application/json", NULL };
    struct http_request rq = {
        .method = method,
        .url = url,
        .headers = headers,
        .json = body,
        .deadline_ms = driver_http_deadline(api->ctx),
        .attempt_timeout_ms = api->ctx->timeout_ms > 0 ? api->ctx->timeout_ms : 60000,
    };
    if (cloud_do(api->cc, &rq, resp, error_id, err) < 0)
        return -1;
    if (resp->status >= 200 && resp->status <= 299)
        return 0;
    auto_free char *id = NULL;
    auto_free char *msg = NULL;
    do_parse_error(resp->body, resp->len, &id, &msg);
    return cloud_error(err, "digitalocean", resp->status, id, msg);
}

int do_api_check_token(struct do_api *api, struct merr *err)
{
    struct http_response resp = { 0 };
    int rc = do_api_call(api, "GET", "/v2/account", NULL, &resp, err);
    http_response_clear(&resp);
    return rc;
}

int do_api_create_key(struct do_api *api, const char *name, const char *public_key,
                      long long *id, struct merr *err)
{
    auto_json json_t *body = do_key_request(name, public_key);
    struct http_response resp = { 0 };
    int rc = do_api_call(api, "POST", "/v2/account/keys", body, &resp, err);
    if (rc == 0)
        rc = do_parse_key(resp.body, resp.len, id, NULL, err);
    http_response_clear(&resp);
    return rc < 0 ? merr_prefix(err, "cannot upload the SSH key") : 0;
}

struct key_search {
    struct do_api *api;
    const char *name;
    long long id;
};

static int key_page(void *opaque, const char *cursor, char **next, struct merr *err)
{
    struct key_search *ks = opaque;
    struct http_response resp = { 0 };
    int rc = do_api_call(ks->api, "GET", cursor != NULL ? cursor : "/v2/account/keys?per_page=200",
                         NULL, &resp, err);
    if (rc == 0)
        rc = do_parse_key_page(resp.body, resp.len, ks->name, &ks->id, next, err);
    http_response_clear(&resp);
    return rc;
}

int do_api_find_key(struct do_api *api, const char *name, long long *id, struct merr *err)
{
    struct key_search ks = { .api = api, .name = name };
    if (cloud_paginate(key_page, &ks, 0, err) < 0)
        return merr_prefix(err, "cannot list the SSH keys");
    *id = ks.id;
    return 0;
}

static int delete_path(struct do_api *api, const char *path, struct merr *err)
{
    struct http_response resp = { 0 };
    int rc = do_api_call(api, "DELETE", path, NULL, &resp, err);
    http_response_clear(&resp);
    return rc;
}

int do_api_delete_key(struct do_api *api, long long id, struct merr *err)
{
    auto_free char *path = xasprintf("/v2/account/keys/%lld", id);
    return delete_path(api, path, err);
}

int do_api_create_droplet(struct do_api *api, const struct do_droplet_spec *spec,
                          long long *id, struct merr *err)
{
    auto_json json_t *body = do_droplet_request(spec, err);
    if (body == NULL)
        return -1;
    struct http_response resp = { 0 };
    struct do_droplet d = { 0 };
    int rc = do_api_call(api, "POST", "/v2/droplets", body, &resp, err);
    if (rc == 0)
        rc = do_parse_droplet(resp.body, resp.len, &d, err);
    *id = d.id;
    do_droplet_clear(&d);
    http_response_clear(&resp);
    return rc < 0 ? merr_prefix(err, "cannot create the droplet") : 0;
}

int do_api_get_droplet(struct do_api *api, long long id, struct do_droplet *out,
                       struct merr *err)
{
    auto_free char *path = xasprintf("/v2/droplets/%lld", id);
    struct http_response resp = { 0 };
    int rc = do_api_call(api, "GET", path, NULL, &resp, err);
    if (rc == 0)
        rc = do_parse_droplet(resp.body, resp.len, out, err);
    http_response_clear(&resp);
    return rc;
}

struct tag_search {
    struct do_api *api;
    const char *tag;
    long long *ids;
    size_t cap, n;
};

static int collect_droplet(void *opaque, const struct do_droplet *d, struct merr *err)
{
    struct tag_search *ts = opaque;
    if (ts->n == ts->cap)
        return merr_set(err, MERR_PROTOCOL, 0, "more than %zu droplets carry the tag '%s'",
                        ts->cap, ts->tag);
    ts->ids[ts->n++] = d->id;
    return 0;
}

static int tag_page(void *opaque, const char *cursor, char **next, struct merr *err)
{
    struct tag_search *ts = opaque;
    auto_free char *first = xasprintf("/v2/droplets?tag_name=%s&per_page=200", ts->tag);
    struct http_response resp = { 0 };
    int rc = do_api_call(ts->api, "GET", cursor != NULL ? cursor : first, NULL, &resp, err);
    if (rc == 0)
        rc = do_parse_droplet_page(resp.body, resp.len, collect_droplet, ts, next, err);
    http_response_clear(&resp);
    return rc;
}

int do_api_tagged_droplets(struct do_api *api, const char *tag, long long *ids, size_t cap,
                           size_t *n, struct merr *err)
{
    struct tag_search ts = { .api = api, .tag = tag, .ids = ids, .cap = cap };
    int rc = cloud_paginate(tag_page, &ts, 0, err);
    *n = ts.n;
    return rc < 0 ? merr_prefix(err, "cannot list the droplets tagged '%s'", tag) : 0;
}

int do_api_delete_droplet(struct do_api *api, long long id, struct merr *err)
{
    auto_free char *path = xasprintf("/v2/droplets/%lld", id);
    return delete_path(api, path, err);
}

int do_poll_failed(const struct do_api *api, struct merr *err)
{
    const struct driver_ctx *ctx = api->ctx;
    if (err->code == MERR_TIMEOUT && ctx->deadline_ms > 0 && clock_now_ms() >= ctx->deadline_ms) {
        merr_clear(err);
        return 0; /* the request ran into the operation's deadline: the wait says what timed out */
    }
    return -1;
}

struct action_wait {
    struct do_api *api;
    long long id;
};

static int poll_action(void *opaque, struct merr *err)
{
    struct action_wait *w = opaque;
    auto_free char *path = xasprintf("/v2/actions/%lld", w->id);
    struct http_response resp = { 0 };
    struct do_action a = { 0 };
    int rc = do_api_call(w->api, "GET", path, NULL, &resp, err);
    if (rc == 0)
        rc = do_parse_action(resp.body, resp.len, &a, err);
    http_response_clear(&resp);
    if (rc == 0 && a.status != NULL && strcmp(a.status, "completed") == 0)
        rc = 1;
    else if (rc == 0 && a.status != NULL && strcmp(a.status, "errored") == 0)
        rc = merr_set(err, MERR_REMOTE, 0, "digitalocean: action %lld errored", w->id);
    else if (rc < 0)
        rc = do_poll_failed(w->api, err);
    do_action_clear(&a);
    return rc;
}

int do_api_action(struct do_api *api, long long droplet, const char *type, int limit_ms,
                  struct merr *err)
{
    auto_free char *path = xasprintf("/v2/droplets/%lld/actions", droplet);
    auto_json json_t *body = json_pack("{s:s}", "type", type);
    struct http_response resp = { 0 };
    struct do_action a = { 0 };
    int rc = do_api_call(api, "POST", path, body, &resp, err);
    if (rc == 0)
        rc = do_parse_action(resp.body, resp.len, &a, err);
    http_response_clear(&resp);
    if (rc < 0) {
        do_action_clear(&a);
        return merr_prefix(err, "%s of droplet %lld", type, droplet);
    }
    struct action_wait w = { .api = api, .id = a.id };
    do_action_clear(&a);
    auto_free char *what = xasprintf("the %s of droplet %lld", type, droplet);
    return driver_wait_until(api->ctx, limit_ms > 0 ? limit_ms : DO_ACTION_WAIT_MS, what,
                             poll_action, &w, err);
}
