/* Registry client (OCI distribution: pull, and the push primitives) over util/http.
 *
 * Trust rules: digests are always computed from the bytes received, never taken
 * from Docker-Content-Digest (case 7); the Authorization header is set by us only
 * on requests to the registry's own base URL or to the token realm, and libcurl
 * strips it when a redirect leaves that host (util/http, case 11); 429/5xx and broken
 * transfers are retried with capped, jittered exponential backoff honouring Retry-After
 * (util/http, case 28); a broken blob download resumes with Range here. */
#include <arpa/inet.h>
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "clock.h"
#include "error.h"
#include "http.h"
#include "image/auth.h"
#include "image/internal.h"
#include "image/manifest.h"
#include "log.h"

#define DOCKER_IO_ENDPOINT "https://registry-1.docker.io"
#define ERROR_BODY_MAX (64 * 1024)
#define TOKEN_BODY_MAX (1024 * 1024)
#define USER_AGENT "machine-engine/" MACHINE_VERSION

struct registry_client {
    const struct registry_config *cfg;
    const struct curl_api *curl;
    char *base_url;  /* "https://host:port", no trailing slash */
    char *repo_path; /* "library/alpine" */
    struct http_client *http;
    pthread_mutex_t lock;     /* auth state; held while fetching a token */
    enum auth_scheme scheme;
    struct auth_challenge challenge;
    char *basic;     /* "user:password" base64, or NULL */
    char *identitytoken;
    char *token;
    int64_t token_expiry; /* clock_now_ms() deadline */
    char *actions;    /* the token scope's actions: "pull" or "push,pull" */
    char *mount_from; /* another repository of the registry read too (blob mounts) */
};

void image_registry_config_init(struct registry_config *rc)
{
    memset(rc, 0, sizeof *rc);
    rc->connect_timeout_ms = 10000;
    rc->low_speed_time_s = 30;
    rc->low_speed_limit = 1024;
    rc->request_timeout_s = 60;
    rc->max_attempts = 5;
    rc->backoff_base_ms = 500;
    rc->backoff_max_ms = 10000;
    rc->max_parallel_layers = 3;
    rc->max_parallel_uploads = 5;
}

/* ---- endpoints ---- */

static bool list_has(const char *const *list, const char *s)
{
    for (; list != NULL && *list != NULL; list++)
        if (strcmp(*list, s) == 0)
            return true;
    return false;
}

/* An IPv4 host inside an insecure "a.b.c.d/len" entry (dockerd accepts CIDRs too). */
static bool in_insecure_cidr(const struct registry_config *cfg, const char *host)
{
    struct in_addr h;
    if (cfg->insecure_registries == NULL || inet_pton(AF_INET, host, &h) != 1)
        return false;
    for (const char *const *e = cfg->insecure_registries; *e != NULL; e++) {
        char net[INET_ADDRSTRLEN];
        unsigned len;
        char extra;
        struct in_addr n;
        if (sscanf(*e, "%15[0-9.]/%u%c", net, &len, &extra) != 2 || len > 32 ||
            inet_pton(AF_INET, net, &n) != 1)
            continue;
        uint32_t mask = len == 0 ? 0 : 0xffffffffu << (32 - len);
        if ((ntohl(h.s_addr) & mask) == (ntohl(n.s_addr) & mask))
            return true;
    }
    return false;
}

bool registry_host_insecure(const struct registry_config *cfg, const char *hostport)
{
    if (image_host_is_loopback(hostport))
        return true;
    if (list_has(cfg->insecure_registries, hostport))
        return true;
    /* an entry without a port covers every port of that host */
    char host[REF_NAME_MAX + 1];
    snprintf(host, sizeof host, "%s", hostport);
    char *colon = host[0] == '[' ? strstr(host, "]:") : strrchr(host, ':');
    if (colon == NULL)
        return in_insecure_cidr(cfg, host);
    colon[host[0] == '[' ? 1 : 0] = '\0';
    return list_has(cfg->insecure_registries, host) || in_insecure_cidr(cfg, host);
}

/* "https://h:p/" → host "h:p"; false for other schemes. */
static bool url_split(const char *url, bool *https, char *host, size_t cap)
{
    const char *rest;
    if (strncmp(url, "https://", 8) == 0) {
        *https = true;
        rest = url + 8;
    } else if (strncmp(url, "http://", 7) == 0) {
        *https = false;
        rest = url + 7;
    } else {
        return false;
    }
    size_t n = strcspn(rest, "/?#");
    if (n == 0 || n >= cap || memchr(rest, '@', n) != NULL)
        return false;
    memcpy(host, rest, n);
    host[n] = '\0';
    return true;
}

static char *endpoint_from_url(const struct registry_config *cfg, const char *url,
                               struct merr *err)
{
    bool https;
    char host[REF_NAME_MAX + 1];
    if (!url_split(url, &https, host, sizeof host)) {
        merr_set(err, MERR_INVALID, 0, "invalid registry endpoint '%s'", url);
        return NULL;
    }
    if (!https && !registry_host_insecure(cfg, host)) {
        merr_set(err, MERR_INVALID, 0, "plain http endpoint '%s' is not an insecure registry", url);
        return NULL;
    }
    char *out = NULL;
    if (asprintf(&out, "%s://%s", https ? "https" : "http", host) < 0) {
        merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
        return NULL;
    }
    return out;
}

char **registry_endpoints(const struct registry_config *cfg, const struct image_ref *ref,
                          struct merr *err)
{
    size_t n_mirrors = 0;
    bool docker_io = strcmp(ref->domain, "docker.io") == 0;
    if (docker_io)
        for (const char *const *m = cfg->mirrors; m != NULL && *m != NULL; m++)
            n_mirrors++;
    auto_strv char **out = calloc(n_mirrors + 2, sizeof *out);
    if (out == NULL) {
        merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
        return NULL;
    }
    size_t i = 0;
    for (; i < n_mirrors; i++)
        if ((out[i] = endpoint_from_url(cfg, cfg->mirrors[i], err)) == NULL)
            return NULL;
    if (docker_io) {
        const char *official = cfg->docker_io_endpoint ? cfg->docker_io_endpoint : DOCKER_IO_ENDPOINT;
        out[i] = endpoint_from_url(cfg, official, err);
    } else {
        const char *scheme = registry_host_insecure(cfg, ref->domain) ? "http" : "https";
        if (asprintf(&out[i], "%s://%s", scheme, ref->domain) < 0)
            out[i] = NULL;
        if (out[i] == NULL)
            merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    }
    if (out[i] == NULL)
        return NULL;
    return steal_pointer(&out);
}

/* ---- client ---- */

static void free_secret(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}


struct registry_client *registry_client_new(const struct registry_config *cfg,
                                            const struct curl_api *curl, const char *base_url,
                                            const char *repo_path,
                                            const struct registry_creds *creds, struct merr *err)
{
    struct registry_client *c = calloc(1, sizeof *c);
    if (c == NULL) {
        merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
        return NULL;
    }
    c->cfg = cfg;
    c->curl = curl;
    pthread_mutex_init(&c->lock, NULL);
    struct http_client_opts o = {
        .curl = curl,
        .log = cfg->log,
        .user_agent = USER_AGENT,
        .ca_file = cfg->ca_file,
        /* plain http only to a registry reached that way (loopback, --insecure-registry) */
        .allow_http = strncmp(base_url, "http://", 7) == 0,
        .follow_redirects = true,
        .connect_timeout_ms = cfg->connect_timeout_ms,
        .low_speed_time_s = cfg->low_speed_time_s,
        .low_speed_limit = cfg->low_speed_limit,
        .max_attempts = cfg->max_attempts,
        .backoff_base_ms = cfg->backoff_base_ms,
        .backoff_max_ms = cfg->backoff_max_ms,
    };
    if ((c->http = http_client_new(&o, err)) == NULL) {
        registry_client_free(c);
        return NULL;
    }
    c->base_url = strdup(base_url);
    c->repo_path = strdup(repo_path);
    c->actions = strdup("pull");
    if (c->base_url == NULL || c->repo_path == NULL || c->actions == NULL)
        goto nomem;
    if (creds != NULL && image_registry_creds_have_basic(creds)) {
        auto_free char *pair = NULL;
        if (asprintf(&pair, "%s:%s", creds->username, creds->password) < 0)
            goto nomem;
        c->basic = base64_encode(pair, strlen(pair));
        explicit_bzero(pair, strlen(pair));
        if (c->basic == NULL)
            goto nomem;
    }
    if (creds != NULL && creds->identitytoken != NULL && creds->identitytoken[0] != '\0' &&
        (c->identitytoken = strdup(creds->identitytoken)) == NULL)
        goto nomem;
    return c;
nomem:
    registry_client_free(c);
    merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    return NULL;
}

int registry_client_set_scope(struct registry_client *c, const char *actions,
                              const char *mount_from, struct merr *err)
{
    char *a = strdup(actions);
    char *m = mount_from != NULL ? strdup(mount_from) : NULL;
    if (a == NULL || (mount_from != NULL && m == NULL)) {
        free(a);
        free(m);
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    }
    pthread_mutex_lock(&c->lock);
    free(c->actions);
    free(c->mount_from);
    c->actions = a;
    c->mount_from = m;
    free_secret(c->token); /* a token is for one scope */
    c->token = NULL;
    pthread_mutex_unlock(&c->lock);
    return 0;
}

bool registry_client_has_credentials(const struct registry_client *c)
{
    return c->basic != NULL || c->identitytoken != NULL;
}

const char *registry_client_base_url(const struct registry_client *c)
{
    return c->base_url;
}

void registry_client_free(struct registry_client *c)
{
    if (c == NULL)
        return;
    http_client_free(c->http);
    free(c->base_url);
    free(c->repo_path);
    free(c->actions);
    free(c->mount_from);
    free_secret(c->basic);
    free_secret(c->identitytoken);
    free_secret(c->token);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

void fetched_clear(struct fetched *f)
{
    free(f->buf);
    memset(f, 0, sizeof *f);
}

/* ---- one HTTP exchange (util/http) ---- */

/* A streamed blob: bytes go to the sink and the digest, resuming with Range. */
struct stream_state {
    const struct blob_sink *sink;
    EVP_MD_CTX *sha;
    uint64_t delivered; /* bytes handed to the sink over all attempts */
    uint64_t size;      /* expected total */
    uint64_t skip;      /* bytes of this response already delivered */
    bool started;       /* this response's first payload byte seen */
    bool too_large;
};

/* "bytes 100-199/200" → 100 */
static bool content_range_start(const char *v, uint64_t *start)
{
    if (v == NULL || strncmp(v, "bytes ", 6) != 0)
        return false;
    char *end;
    unsigned long long s = strtoull(v + 6, &end, 10);
    if (end == v + 6 || *end != '-')
        return false;
    *start = s;
    return true;
}

static int stream_write(void *ctx, const struct http_response *resp, const void *buf, size_t n,
                        struct merr *err)
{
    struct stream_state *x = ctx;
    if (!x->started) {
        x->started = true;
        if (resp->status == 200) {
            x->skip = x->delivered; /* the server ignored our Range: drop what we have */
        } else {
            uint64_t start;
            const char *cr = http_response_header(resp, "Content-Range");
            if (resp->status != 206 || !content_range_start(cr, &start) || start != x->delivered)
                return merr_set(err, MERR_PROTOCOL, 0, "bad Content-Range '%.100s'",
                                cr != NULL ? cr : "");
        }
    }
    const char *data = buf;
    size_t len = n;
    if (x->skip > 0) {
        size_t drop = x->skip < len ? (size_t)x->skip : len;
        x->skip -= drop;
        data += drop;
        len -= drop;
    }
    if (len == 0)
        return 0;
    if (x->delivered + len > x->size) {
        x->too_large = true;
        return merr_set(err, MERR_CORRUPT, 0, "larger than its descriptor says");
    }
    const struct blob_sink *sink = x->sink;
    if (sink->cancelled != NULL && sink->cancelled(sink->ctx))
        return merr_set(err, MERR_INTERNAL, 0, "cancelled");
    if (EVP_DigestUpdate(x->sha, data, len) != 1)
        return merr_set(err, MERR_CRYPTO, 0, "cannot hash");
    if (sink->write(sink->ctx, data, len, err) < 0)
        return -1;
    x->delivered += len;
    if (sink->progress != NULL)
        sink->progress(sink->ctx, x->delivered, x->size);
    return 0;
}

static int status_error(long status, const char *what, const char *body, struct merr *err)
{
    const char *detail = body != NULL ? body : "";
    int n = (int)strcspn(detail, "\r\n");
    if (n > 200)
        n = 200;
    switch (status) {
    case 401:
    case 403:
        return merr_set(err, MERR_AUTH, 0, "%s: access denied (HTTP %ld) %.*s", what, status, n,
                        detail);
    case 404:
        return merr_set(err, MERR_NOT_FOUND, 0, "%s: not found (HTTP 404) %.*s", what, n, detail);
    default:
        return merr_set(err, http_status_transient(status) ? MERR_UNREACHABLE : MERR_PROTOCOL, 0,
                        "%s: unexpected HTTP status %ld %.*s", what, status, n, detail);
    }
}

/* ---- authentication ---- */

static bool url_may_get_credentials(const struct registry_client *c, const char *url)
{
    bool https;
    char host[REF_NAME_MAX + 1];
    if (!url_split(url, &https, host, sizeof host))
        return false;
    return https || registry_host_insecure(c->cfg, host);
}

/* The token request's URL and (for an identity token) form body. */
static int token_request_text(struct registry_client *c, char **url, char **form,
                              struct merr *err)
{
    const struct auth_challenge *ch = &c->challenge;
    CURL *esc = c->curl->easy_init();
    if (esc == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    auto_free char *scope = NULL;
    auto_free char *scope2 = NULL;
    int r = asprintf(&scope, "repository:%s:%s", c->repo_path, c->actions);
    if (r >= 0 && c->mount_from != NULL)
        r = asprintf(&scope2, "repository:%s:pull", c->mount_from);
    char *e_service = r >= 0 ? c->curl->easy_escape(esc, ch->service, 0) : NULL;
    char *e_scope = r >= 0 ? c->curl->easy_escape(esc, scope, 0) : NULL;
    char *e_scope2 = scope2 != NULL ? c->curl->easy_escape(esc, scope2, 0) : NULL;
    char *e_refresh = c->identitytoken ? c->curl->easy_escape(esc, c->identitytoken, 0) : NULL;
    auto_free char *scopes = NULL;
    if (r >= 0 && c->repo_path[0] == '\0') /* docker login: no repository, no scope */
        r = asprintf(&scopes, "%s", "");
    else if (r >= 0)
        r = asprintf(&scopes, "&scope=%s%s%s", e_scope ? e_scope : "",
                     e_scope2 ? "&scope=" : "", e_scope2 ? e_scope2 : "");
    if (r >= 0 && c->identitytoken != NULL) {
        /* OAuth2 refresh-token grant, as docker does with an identity token */
        r = asprintf(url, "%s", ch->realm);
        if (r >= 0)
            r = asprintf(form,
                         "grant_type=refresh_token&refresh_token=%s&service=%s%s"
                         "&client_id=machine-engine",
                         e_refresh ? e_refresh : "", e_service ? e_service : "", scopes);
    } else if (r >= 0) {
        r = asprintf(url, "%s%cservice=%s%s", ch->realm, strchr(ch->realm, '?') ? '&' : '?',
                     e_service ? e_service : "", scopes);
    }
    c->curl->free(e_service);
    c->curl->free(e_scope);
    c->curl->free(e_scope2);
    if (e_refresh != NULL) {
        explicit_bzero(e_refresh, strlen(e_refresh));
        c->curl->free(e_refresh);
    }
    c->curl->easy_cleanup(esc);
    if (r < 0)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    return 0;
}

static int fetch_token(struct registry_client *c, struct merr *err)
{
    const struct auth_challenge *ch = &c->challenge;
    if (!url_may_get_credentials(c, ch->realm))
        return merr_set(err, MERR_AUTH, 0, "refusing token realm '%.200s': not https",
                        ch->realm);
    auto_free char *url = NULL;
    auto_free char *form = NULL;
    if (token_request_text(c, &url, &form, err) < 0)
        return -1;
    auto_free char *authz = NULL;
    if (c->identitytoken == NULL && c->basic != NULL &&
        asprintf(&authz, "Authorization: Basic %s", c->basic) < 0)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    const char *hdrs[3] = { NULL };
    size_t nh = 0;
    if (authz != NULL)
        hdrs[nh++] = authz;
    if (form != NULL)
        hdrs[nh++] = "Content-Type: application/x-www-form-urlencoded";
    struct http_request rq = {
        .method = form != NULL ? "POST" : "GET",
        .url = url,
        .headers = hdrs,
        .body = form,
        .body_len = form != NULL ? strlen(form) : 0,
        .retry = HTTP_RETRY_ALWAYS, /* a token request changes nothing */
        .max_response = TOKEN_BODY_MAX,
        .attempt_timeout_ms = c->cfg->request_timeout_s * 1000,
    };
    struct http_response resp;
    int ret = -1;
    if (http_do(c->http, &rq, &resp, err) < 0) {
        merr_prefix(err, "cannot get token from '%.200s'", ch->realm);
    } else if (resp.status != 200) {
        status_error(resp.status, "token request", resp.body, err);
    } else {
        char *tok = NULL;
        long expires;
        if (image_token_response_parse(resp.body != NULL ? resp.body : "", resp.len, &tok, &expires,
                                 err) == 0) {
            free_secret(c->token);
            c->token = tok;
            c->token_expiry = clock_deadline_ms((expires > 20 ? expires - 10 : expires) * 1000LL);
            ret = 0;
        }
    }
    if (resp.body != NULL)
        explicit_bzero(resp.body, resp.len);
    http_response_clear(&resp);
    if (authz != NULL)
        explicit_bzero(authz, strlen(authz));
    if (form != NULL)
        explicit_bzero(form, strlen(form));
    return ret;
}

/* The Authorization header line for a registry request, or NULL for anonymous. */
static int auth_header(struct registry_client *c, bool force_refresh, char **out,
                       struct merr *err)
{
    *out = NULL;
    int r = 0;
    pthread_mutex_lock(&c->lock);
    if (c->scheme == AUTH_SCHEME_BEARER) {
        if (force_refresh || c->token == NULL || clock_expired(c->token_expiry))
            r = fetch_token(c, err);
        if (r == 0 && asprintf(out, "Authorization: Bearer %s", c->token) < 0)
            r = merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    } else if (c->scheme == AUTH_SCHEME_BASIC && c->basic != NULL) {
        if (asprintf(out, "Authorization: Basic %s", c->basic) < 0)
            r = merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    }
    pthread_mutex_unlock(&c->lock);
    return r;
}

/* Adopts the challenge of a 401. */
static int setup_auth(struct registry_client *c, const char *www_auth, struct merr *err)
{
    struct auth_challenge ch;
    if (www_auth[0] == '\0')
        return merr_set(err, MERR_AUTH, 0, "registry '%s' refused access without a challenge",
                        c->base_url);
    if (image_www_authenticate_parse(www_auth, &ch, err) < 0)
        return -1;
    if (ch.scheme == AUTH_SCHEME_BASIC && c->basic == NULL)
        return merr_set(err, MERR_AUTH, 0, "registry '%s' requires credentials", c->base_url);
    if (ch.scheme == AUTH_SCHEME_BASIC && !url_may_get_credentials(c, c->base_url))
        return merr_set(err, MERR_AUTH, 0, "refusing to send credentials over plain http");
    pthread_mutex_lock(&c->lock);
    c->scheme = ch.scheme;
    c->challenge = ch;
    free_secret(c->token);
    c->token = NULL;
    pthread_mutex_unlock(&c->lock);
    return 0;
}

/* ---- requests ---- */

#define REGISTRY_HEADERS_MAX 8

/* Performs rq against the registry with authentication (util/http retries what may be
 * retried). On return resp holds the final answer; transport failures are errors. */
static int registry_request(struct registry_client *c, struct http_request *rq,
                            const char *const *extra, struct http_response *resp,
                            const char *what, struct merr *err)
{
    bool reauthed = false;
    /* An upload Location may name another host: it gets no credentials (case 11). */
    size_t bl = strlen(c->base_url);
    bool ours = strncmp(rq->url, c->base_url, bl) == 0 &&
                (rq->url[bl] == '/' || rq->url[bl] == '\0' || rq->url[bl] == '?');
    for (;;) {
        auto_free char *authz = NULL;
        if (ours && auth_header(c, false, &authz, err) < 0)
            return -1;
        const char *hdrs[REGISTRY_HEADERS_MAX + 2];
        size_t n = 0;
        if (authz != NULL)
            hdrs[n++] = authz;
        for (const char *const *e = extra; e != NULL && *e != NULL && n < REGISTRY_HEADERS_MAX;
             e++)
            hdrs[n++] = *e;
        hdrs[n] = NULL;
        rq->headers = hdrs;
        int r = http_do(c->http, rq, resp, err);
        rq->headers = NULL;
        if (authz != NULL)
            explicit_bzero(authz, strlen(authz));
        if (r < 0)
            return merr_prefix(err, "%s", what);
        if (resp->status == 401 && !reauthed && ours) {
            reauthed = true;
            const char *wa = http_response_header(resp, "WWW-Authenticate");
            auto_free char *challenge = strdup(wa != NULL ? wa : "");
            http_response_clear(resp);
            if (challenge == NULL)
                return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
            if (setup_auth(c, challenge, err) < 0)
                return -1;
            if (rq->body_rewind != NULL && rq->body_rewind(rq->body_ctx, err) < 0)
                return -1;
            continue;
        }
        return 0;
    }
}

int registry_ping(struct registry_client *c, struct merr *err)
{
    auto_free char *url = NULL;
    if (asprintf(&url, "%s/v2/", c->base_url) < 0)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    struct http_request rq = { .url = url, .max_response = ERROR_BODY_MAX,
                               .attempt_timeout_ms = c->cfg->request_timeout_s * 1000 };
    struct http_response resp;
    int r = registry_request(c, &rq, NULL, &resp, "registry ping", err);
    if (r == 0 && resp.status != 200)
        r = status_error(resp.status, "registry ping", resp.body, err);
    http_response_clear(&resp);
    if (r < 0)
        return merr_prefix(err, "%s", c->base_url);
    /* fail early on bad credentials */
    auto_free char *authz = NULL;
    if (auth_header(c, false, &authz, err) < 0)
        return -1;
    if (authz != NULL)
        explicit_bzero(authz, strlen(authz));
    return 0;
}

static int fetch_small(struct registry_client *c, const char *kind, const char *reference,
                       const char *accept, size_t max, struct fetched *out, struct merr *err)
{
    memset(out, 0, sizeof *out);
    auto_free char *url = NULL;
    auto_free char *what = NULL;
    auto_free char *accept_line = NULL;
    if (asprintf(&url, "%s/v2/%s/%s/%s", c->base_url, c->repo_path, kind, reference) < 0 ||
        asprintf(&what, "%s '%s'", kind[0] == 'm' ? "manifest" : "blob", reference) < 0 ||
        (accept != NULL && asprintf(&accept_line, "Accept: %s", accept) < 0))
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    const char *extra[] = { accept_line, NULL };
    struct http_request rq = { .url = url, .max_response = max,
                               .attempt_timeout_ms = c->cfg->request_timeout_s * 1000 };
    struct http_response resp;
    int r = registry_request(c, &rq, extra, &resp, what, err);
    if (r == 0 && resp.status != 200)
        r = status_error(resp.status, what, resp.body, err);
    if (r < 0) {
        http_response_clear(&resp);
        return -1;
    }
    const char *ct = http_response_header(&resp, "Content-Type");
    snprintf(out->content_type, sizeof out->content_type, "%s", ct != NULL ? ct : "");
    out->buf = resp.body != NULL ? steal_pointer(&resp.body) : strdup("");
    out->len = resp.len;
    http_response_clear(&resp);
    if (out->buf == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    sha256_digest(out->buf, out->len, out->digest);
    if (image_digest_is_valid(reference) && strcmp(reference, out->digest) != 0) {
        fetched_clear(out);
        return merr_set(err, MERR_CORRUPT, 0, "%s: digest mismatch", what);
    }
    return 0;
}

int registry_get_manifest(struct registry_client *c, const char *reference, struct fetched *out,
                          struct merr *err)
{
    return fetch_small(c, "manifests", reference, MANIFEST_ACCEPT, MANIFEST_MAX_SIZE, out, err);
}

int registry_get_blob(struct registry_client *c, const char *digest, size_t max,
                      struct fetched *out, struct merr *err)
{
    if (image_digest_validate(digest, err) < 0)
        return -1;
    return fetch_small(c, "blobs", digest, NULL, max, out, err);
}

/* One GET of the rest of a blob (Range from x->delivered). */
static int stream_once(struct registry_client *c, const char *url, const char *what,
                       struct stream_state *x, struct merr *err)
{
    char range[64] = "";
    if (x->delivered > 0)
        snprintf(range, sizeof range, "Range: bytes=%llu-", (unsigned long long)x->delivered);
    const char *extra[] = { range[0] != '\0' ? range : NULL, NULL };
    struct http_request rq = { .url = url, .max_response = ERROR_BODY_MAX,
                               .on_body = stream_write, .on_body_ctx = x };
    struct http_response resp;
    x->started = false;
    x->skip = 0;
    int r = registry_request(c, &rq, extra, &resp, what, err);
    if (r == 0 && resp.status != 200 && resp.status != 206)
        r = status_error(resp.status, what, resp.body, err);
    http_response_clear(&resp);
    return r;
}

int registry_stream_blob(struct registry_client *c, const char *digest, uint64_t size,
                         const struct blob_sink *sink, struct merr *err)
{
    if (image_digest_validate(digest, err) < 0)
        return -1;
    auto_free char *url = NULL;
    auto_free char *what = NULL;
    if (asprintf(&url, "%s/v2/%s/blobs/%s", c->base_url, c->repo_path, digest) < 0 ||
        asprintf(&what, "blob '%s'", digest) < 0)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    struct stream_state x = { .sink = sink, .size = size };
    x.sha = EVP_MD_CTX_new();
    if (x.sha == NULL || EVP_DigestInit_ex(x.sha, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(x.sha);
        return merr_set(err, MERR_CRYPTO, 0, "cannot initialise sha256");
    }
    int r = 0;
    /* A transfer that breaks after some bytes resumes where it stopped; the budget
     * of attempts covers resumptions (util/http retries what broke before a byte came). */
    for (unsigned resume = 0; r == 0; resume++) {
        uint64_t before = x.delivered;
        r = stream_once(c, url, what, &x, err);
        if (r < 0 && x.delivered > before && resume + 1 < c->cfg->max_attempts &&
            (err->code == MERR_UNREACHABLE || err->code == MERR_TIMEOUT)) {
            mlog_debug(c->cfg->log, "registry: resuming %s at %llu", digest,
                       (unsigned long long)x.delivered);
            merr_clear(err);
            r = 0;
            continue;
        }
        if (r < 0)
            break;
        if (x.delivered < size && resume + 1 < c->cfg->max_attempts)
            continue; /* a short 200/206: ask for the rest */
        break;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (r == 0 && EVP_DigestFinal_ex(x.sha, md, &mdlen) != 1)
        r = merr_set(err, MERR_CRYPTO, 0, "cannot finish sha256");
    EVP_MD_CTX_free(x.sha);
    if (r < 0)
        return -1;
    if (x.delivered != size)
        return merr_set(err, MERR_CORRUPT, 0, "%s: size mismatch (%llu of %llu bytes)", what,
                        (unsigned long long)x.delivered, (unsigned long long)size);
    char got[DIGEST_BUF_LEN] = "sha256:";
    for (unsigned i = 0; i < mdlen && i < 32; i++)
        snprintf(got + 7 + 2 * i, 3, "%02x", md[i]);
    if (strcmp(got, digest) != 0)
        return merr_set(err, MERR_CORRUPT, 0, "%s: digest mismatch (got %s)", what, got);
    return 0;
}

/* ---- push side ---- */

int registry_blob_exists(struct registry_client *c, const char *digest, bool *exists,
                         struct merr *err)
{
    if (image_digest_validate(digest, err) < 0)
        return -1;
    auto_free char *url = NULL;
    auto_free char *what = NULL;
    if (asprintf(&url, "%s/v2/%s/blobs/%s", c->base_url, c->repo_path, digest) < 0 ||
        asprintf(&what, "blob '%s'", digest) < 0)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    struct http_request rq = { .method = "HEAD", .url = url, .max_response = ERROR_BODY_MAX,
                               .attempt_timeout_ms = c->cfg->request_timeout_s * 1000 };
    struct http_response resp;
    int r = registry_request(c, &rq, NULL, &resp, what, err);
    if (r == 0) {
        *exists = resp.status == 200;
        if (resp.status != 200 && resp.status != 404)
            r = status_error(resp.status, what, resp.body, err);
    }
    http_response_clear(&resp);
    return r;
}

/* The Location of an upload answer, made absolute against the URL that answered. */
static char *upload_location(const struct http_response *resp, const char *url, const char *what,
                             struct merr *err)
{
    const char *loc = http_response_header(resp, "Location");
    if (loc == NULL || loc[0] == '\0') {
        merr_set(err, MERR_PROTOCOL, 0, "%s: the registry answered %ld without a Location", what,
                 resp->status);
        return NULL;
    }
    return http_resolve_location(url, loc, err);
}

/* Starts an upload: POST .../blobs/uploads/ (with mount=&from= when from_repo is given).
 * *location gets the upload URL, or NULL when the blob was mounted (201). */
static int upload_start(struct registry_client *c, const char *digest, const char *from_repo,
                        char **location, const char *what, struct merr *err)
{
    *location = NULL;
    auto_free char *url = NULL;
    int n;
    if (from_repo != NULL) {
        CURL *esc = c->curl->easy_init();
        char *e_from = esc != NULL ? c->curl->easy_escape(esc, from_repo, 0) : NULL;
        n = e_from != NULL ? asprintf(&url, "%s/v2/%s/blobs/uploads/?mount=%s&from=%s",
                                      c->base_url, c->repo_path, digest, e_from)
                           : -1;
        if (e_from != NULL)
            c->curl->free(e_from);
        if (esc != NULL)
            c->curl->easy_cleanup(esc);
    } else {
        n = asprintf(&url, "%s/v2/%s/blobs/uploads/", c->base_url, c->repo_path);
    }
    if (n < 0)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    struct http_request rq = { .method = "POST", .url = url, .max_response = ERROR_BODY_MAX,
                               .retry = HTTP_RETRY_ALWAYS, /* an unused upload expires */
                               .attempt_timeout_ms = c->cfg->request_timeout_s * 1000 };
    struct http_response resp;
    int r = registry_request(c, &rq, NULL, &resp, what, err);
    if (r == 0 && resp.status == 201 && from_repo != NULL) {
        http_response_clear(&resp);
        return 0;
    }
    if (r == 0 && resp.status != 202)
        r = status_error(resp.status, what, resp.body, err);
    if (r == 0 && (*location = upload_location(&resp, url, what, err)) == NULL)
        r = -1;
    http_response_clear(&resp);
    return r;
}

/* location + "digest=<d>" with ? or & as its query calls for. */
static char *with_digest(const char *location, const char *digest)
{
    char *out = NULL;
    if (asprintf(&out, "%s%cdigest=%s", location, strchr(location, '?') ? '&' : '?', digest) < 0)
        return NULL;
    return out;
}

struct counted_body {
    struct http_fd_body fd;
    off_t end; /* read no further */
    const struct blob_upload *up;
    uint64_t base; /* bytes acknowledged before this request */
};

static ssize_t counted_read(void *ctx, void *buf, size_t len, struct merr *err)
{
    struct counted_body *b = ctx;
    if (b->fd.pos >= b->end)
        return 0;
    if ((off_t)len > b->end - b->fd.pos)
        len = (size_t)(b->end - b->fd.pos);
    if (b->up->cancelled != NULL && b->up->cancelled(b->up->ctx))
        return merr_set(err, MERR_INTERNAL, 0, "cancelled");
    ssize_t n = http_fd_read(&b->fd, buf, len, err);
    if (n > 0 && b->up->progress != NULL)
        b->up->progress(b->up->ctx, (uint64_t)(b->fd.pos - b->fd.start) + b->base,
                        b->up->size);
    return n;
}

static int counted_rewind(void *ctx, struct merr *err)
{
    struct counted_body *b = ctx;
    return http_fd_rewind(&b->fd, err);
}

/* Sends [start, end) of the blob: a PATCH (chunk) or the final PUT with ?digest=. The
 * answer's Location (PATCH) replaces *location. */
static int upload_send(struct registry_client *c, const struct blob_upload *up, char **location,
                       uint64_t start, uint64_t end, bool final, const char *what,
                       struct merr *err)
{
    auto_free char *url = final ? with_digest(*location, up->digest) : strdup(*location);
    char range[96];
    snprintf(range, sizeof range, "Content-Range: %llu-%llu", (unsigned long long)start,
             (unsigned long long)(end > start ? end - 1 : start));
    const char *extra[] = { "Content-Type: application/octet-stream",
                            final || end == start ? NULL : range, NULL };
    if (url == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    struct counted_body body = { .fd = { up->fd, (off_t)start, (off_t)start },
                                 .end = (off_t)end, .up = up, .base = start };
    struct http_request rq = { .method = final ? "PUT" : "PATCH", .url = url,
                               .max_response = ERROR_BODY_MAX };
    if (end > start) {
        rq.body_read = counted_read;
        rq.body_rewind = counted_rewind;
        rq.body_ctx = &body;
        rq.body_len = (size_t)(end - start);
    }
    struct http_response resp;
    int r = registry_request(c, &rq, extra, &resp, what, err);
    long want = final ? 201 : 202;
    if (r == 0 && resp.status != want)
        r = status_error(resp.status, what, resp.body, err);
    if (r == 0 && !final) {
        char *next = upload_location(&resp, url, what, err);
        if (next == NULL)
            r = -1;
        else {
            free(*location);
            *location = next;
        }
    }
    http_response_clear(&resp);
    return r;
}

int registry_blob_upload(struct registry_client *c, const struct blob_upload *up, bool *mounted,
                         struct merr *err)
{
    *mounted = false;
    if (image_digest_validate(up->digest, err) < 0)
        return -1;
    auto_free char *what = NULL;
    if (asprintf(&what, "blob upload '%s'", up->digest) < 0)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    auto_free char *location = NULL;
    if (upload_start(c, up->digest, up->mount_from, &location, what, err) < 0)
        return -1;
    if (location == NULL) {
        *mounted = true;
        return 0;
    }
    uint64_t chunk = up->chunk_size > 0 ? up->chunk_size : UINT64_MAX;
    if (up->size <= chunk) /* monolithic: PUT ?digest= with the whole blob */
        return upload_send(c, up, &location, 0, up->size, true, what, err);
    for (uint64_t off = 0; off < up->size;) {
        uint64_t end = up->size - off > chunk ? off + chunk : up->size;
        if (upload_send(c, up, &location, off, end, false, what, err) < 0)
            return -1;
        off = end;
    }
    return upload_send(c, up, &location, up->size, up->size, true, what, err);
}

int registry_put_manifest(struct registry_client *c, const char *reference,
                          const char *media_type, const char *buf, size_t len, struct merr *err)
{
    auto_free char *url = NULL;
    auto_free char *what = NULL;
    auto_free char *ct = NULL;
    if (asprintf(&url, "%s/v2/%s/manifests/%s", c->base_url, c->repo_path, reference) < 0 ||
        asprintf(&what, "manifest '%s'", reference) < 0 ||
        asprintf(&ct, "Content-Type: %s", media_type) < 0)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    const char *extra[] = { ct, NULL };
    struct http_request rq = { .method = "PUT", .url = url, .body = buf, .body_len = len,
                               .max_response = ERROR_BODY_MAX,
                               .attempt_timeout_ms = c->cfg->request_timeout_s * 1000 };
    struct http_response resp;
    int r = registry_request(c, &rq, extra, &resp, what, err);
    if (r == 0 && resp.status != 201 && resp.status != 200)
        r = status_error(resp.status, what, resp.body, err);
    http_response_clear(&resp);
    return r;
}
