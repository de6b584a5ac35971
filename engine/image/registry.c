/* Registry client (OCI distribution, pull side) over libcurl.
 *
 * Trust rules: digests are always computed from the bytes received, never taken
 * from Docker-Content-Digest (case 7); the Authorization header is set by us only
 * on requests to the registry's own base URL or to the token realm, and libcurl
 * strips it when a redirect leaves that host (CURLOPT_UNRESTRICTED_AUTH=0, case 11);
 * 429/5xx and broken transfers are retried with capped, jittered exponential
 * backoff honouring Retry-After (case 28). Every handle has connect and
 * low-speed timeouts. */
#include <curl/curl.h>
#include <arpa/inet.h>
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "clock.h"
#include "error.h"
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
    pthread_mutex_t lock;     /* auth state; held while fetching a token */
    pthread_mutex_t rng_lock;
    enum auth_scheme scheme;
    struct auth_challenge challenge;
    char *basic;     /* "user:password" base64, or NULL */
    char *identitytoken;
    char *token;
    int64_t token_expiry; /* clock_now_ms() deadline */
    uint64_t rng;
};

void registry_config_init(struct registry_config *rc)
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
    if (host_is_loopback(hostport))
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

struct registry_client *registry_client_new(const struct registry_config *cfg,
                                            const struct curl_api *curl, const char *base_url, const char *repo_path,
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
    pthread_mutex_init(&c->rng_lock, NULL);
    c->base_url = strdup(base_url);
    c->repo_path = strdup(repo_path);
    if (c->base_url == NULL || c->repo_path == NULL)
        goto nomem;
    if (creds != NULL && registry_creds_have_basic(creds)) {
        auto_free char *pair = NULL;
        if (asprintf(&pair, "%s:%s", creds->username, creds->password) < 0)
            goto nomem;
        c->basic = base64_encode(pair, strlen(pair));
        explicit_bzero(pair, strlen(pair));
        if (c->basic == NULL)
            goto nomem;
    }
    if (creds != NULL && creds->identitytoken != NULL &&
        (c->identitytoken = strdup(creds->identitytoken)) == NULL)
        goto nomem;
    if (getrandom(&c->rng, sizeof c->rng, 0) != sizeof c->rng || c->rng == 0)
        c->rng = (uint64_t)time(NULL) | 1;
    return c;
nomem:
    registry_client_free(c);
    merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    return NULL;
}

static void free_secret(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

void registry_client_free(struct registry_client *c)
{
    if (c == NULL)
        return;
    free(c->base_url);
    free(c->repo_path);
    free_secret(c->basic);
    free_secret(c->identitytoken);
    free_secret(c->token);
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->rng_lock);
    free(c);
}

void fetched_clear(struct fetched *f)
{
    free(f->buf);
    memset(f, 0, sizeof *f);
}

/* ---- one HTTP exchange ---- */

struct xfer {
    long status;
    char content_type[128];
    char www_auth[2048];
    char retry_after[64];
    char content_range[128];
    /* buffered body (errors, manifests, tokens) */
    char *buf;
    size_t len, cap, max;
    bool too_large;
    /* streamed payload (blobs) */
    const struct blob_sink *sink;
    EVP_MD_CTX *sha;
    uint64_t delivered; /* bytes handed to the sink over all attempts */
    uint64_t size;      /* expected total */
    uint64_t skip;      /* bytes of this response already delivered */
    bool payload_started;
    bool range_bad;
    bool sink_failed;
    struct merr sink_err;
};

static void copy_header_value(char *dst, size_t cap, const char *v, size_t n)
{
    while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
        n--;
    while (n > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t n = size * nmemb;
    if (n > 5 && memcmp(p, "HTTP/", 5) == 0) {
        /* a new response (after a redirect or 100-continue): forget the old headers */
        x->content_type[0] = x->www_auth[0] = x->retry_after[0] = x->content_range[0] = '\0';
        const char *sp = memchr(p, ' ', n);
        x->status = sp != NULL ? strtol(sp + 1, NULL, 10) : 0;
        return n;
    }
    static const struct {
        const char *name;
        size_t off, cap;
    } wanted[] = {
        { "content-type:", offsetof(struct xfer, content_type), sizeof((struct xfer *)0)->content_type },
        { "www-authenticate:", offsetof(struct xfer, www_auth), sizeof((struct xfer *)0)->www_auth },
        { "retry-after:", offsetof(struct xfer, retry_after), sizeof((struct xfer *)0)->retry_after },
        { "content-range:", offsetof(struct xfer, content_range),
          sizeof((struct xfer *)0)->content_range },
    };
    for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
        size_t k = strlen(wanted[i].name);
        if (n > k && strncasecmp(p, wanted[i].name, k) == 0) {
            char *dst = (char *)x + wanted[i].off;
            if (dst[0] == '\0') /* keep the first WWW-Authenticate */
                copy_header_value(dst, wanted[i].cap, p + k, n - k);
        }
    }
    return n;
}

static bool buffer_append(struct xfer *x, const char *p, size_t n)
{
    if (x->len + n > x->max) {
        x->too_large = true;
        return false;
    }
    if (x->len + n + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 4096;
        while (cap < x->len + n + 1)
            cap *= 2;
        char *nb = realloc(x->buf, cap);
        if (nb == NULL)
            return false;
        x->buf = nb;
        x->cap = cap;
    }
    memcpy(x->buf + x->len, p, n);
    x->len += n;
    x->buf[x->len] = '\0';
    return true;
}

/* "bytes 100-199/200" → 100 */
static bool content_range_start(const char *v, uint64_t *start)
{
    if (strncmp(v, "bytes ", 6) != 0)
        return false;
    char *end;
    unsigned long long s = strtoull(v + 6, &end, 10);
    if (end == v + 6 || *end != '-')
        return false;
    *start = s;
    return true;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t n = size * nmemb;
    bool payload = x->sink != NULL && (x->status == 200 || x->status == 206);
    if (!payload)
        return buffer_append(x, p, n) ? n : 0;
    if (!x->payload_started) {
        x->payload_started = true;
        if (x->status == 200) {
            x->skip = x->delivered; /* the server ignored our Range: drop what we have */
        } else {
            uint64_t start;
            if (!content_range_start(x->content_range, &start) || start != x->delivered) {
                x->range_bad = true;
                return 0;
            }
        }
    }
    const char *data = p;
    size_t len = n;
    if (x->skip > 0) {
        size_t drop = x->skip < len ? (size_t)x->skip : len;
        x->skip -= drop;
        data += drop;
        len -= drop;
    }
    if (len == 0)
        return n;
    if (x->delivered + len > x->size) {
        x->too_large = true;
        return 0;
    }
    const struct blob_sink *sink = x->sink;
    if ((sink->cancelled != NULL && sink->cancelled(sink->ctx)) ||
        EVP_DigestUpdate(x->sha, data, len) != 1 ||
        sink->write(sink->ctx, data, len, &x->sink_err) < 0) {
        x->sink_failed = true;
        return 0;
    }
    x->delivered += len;
    if (sink->progress != NULL)
        sink->progress(sink->ctx, x->delivered, x->size);
    return n;
}

static void xfer_reset(struct xfer *x)
{
    x->status = 0;
    x->content_type[0] = x->www_auth[0] = x->retry_after[0] = x->content_range[0] = '\0';
    x->len = 0;
    if (x->buf != NULL)
        x->buf[0] = '\0';
    x->too_large = false;
    x->skip = 0;
    x->payload_started = false;
    x->range_bad = false;
}

struct request {
    const char *url;
    const char *accept;
    const char *authorization; /* full header line or NULL */
    const char *post_fields;   /* form body for POST, or NULL for GET */
    bool stream;               /* no total timeout; Range from x->delivered */
};

static CURLcode perform(struct registry_client *c, const struct request *rq, struct xfer *x)
{
    const struct registry_config *cfg = c->cfg;
    CURL *h = c->curl->easy_init();
    if (h == NULL)
        return CURLE_OUT_OF_MEMORY;
    struct curl_slist *hdrs = NULL;
    char line[256];
    if (rq->accept != NULL) {
        auto_free char *a = NULL;
        if (asprintf(&a, "Accept: %s", rq->accept) >= 0)
            hdrs = c->curl->slist_append(hdrs, a);
    }
    if (rq->authorization != NULL)
        hdrs = c->curl->slist_append(hdrs, rq->authorization);
    char range[64];
    if (rq->stream && x->delivered > 0) {
        snprintf(range, sizeof range, "%llu-", (unsigned long long)x->delivered);
        c->curl->easy_setopt(h, CURLOPT_RANGE, range);
    }
    snprintf(line, sizeof line, "Expect:");
    hdrs = c->curl->slist_append(hdrs, line);

    c->curl->easy_setopt(h, CURLOPT_URL, rq->url);
    c->curl->easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    c->curl->easy_setopt(h, CURLOPT_USERAGENT, USER_AGENT);
    c->curl->easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    c->curl->easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    c->curl->easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    c->curl->easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    c->curl->easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
    /* Never re-send credentials to a host a redirect points at (CVE-2020-15157). */
    c->curl->easy_setopt(h, CURLOPT_UNRESTRICTED_AUTH, 0L);
    c->curl->easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, cfg->connect_timeout_ms);
    c->curl->easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, cfg->low_speed_limit);
    c->curl->easy_setopt(h, CURLOPT_LOW_SPEED_TIME, cfg->low_speed_time_s);
    if (!rq->stream)
        c->curl->easy_setopt(h, CURLOPT_TIMEOUT, cfg->request_timeout_s);
    if (cfg->ca_file != NULL)
        c->curl->easy_setopt(h, CURLOPT_CAINFO, cfg->ca_file);
    if (rq->post_fields != NULL)
        c->curl->easy_setopt(h, CURLOPT_POSTFIELDS, rq->post_fields);
    c->curl->easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    c->curl->easy_setopt(h, CURLOPT_HEADERDATA, x);
    c->curl->easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    c->curl->easy_setopt(h, CURLOPT_WRITEDATA, x);
    CURLcode cc = c->curl->easy_perform(h);
    c->curl->easy_cleanup(h);
    c->curl->slist_free_all(hdrs);
    return cc;
}

static bool curl_transient(CURLcode cc)
{
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
        return true;
    default:
        return false;
    }
}

static bool status_transient(long status)
{
    return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

static uint64_t next_random(struct registry_client *c)
{
    pthread_mutex_lock(&c->rng_lock);
    uint64_t x = c->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c->rng = x;
    pthread_mutex_unlock(&c->rng_lock);
    return x;
}

/* Sleeps before attempt number `attempt` (1 = first retry). Returns -1 when the
 * server asks for a longer wait than we allow. */
static int backoff_wait(struct registry_client *c, unsigned attempt, const char *retry_after,
                        struct merr *err)
{
    const struct registry_config *cfg = c->cfg;
    long delay = cfg->backoff_base_ms;
    for (unsigned i = 1; i < attempt && delay < cfg->backoff_max_ms; i++)
        delay *= 2;
    if (delay > cfg->backoff_max_ms)
        delay = cfg->backoff_max_ms;
    /* "equal jitter": half fixed, half random, so retries of parallel layers spread */
    if (delay > 1)
        delay = delay / 2 + (long)(next_random(c) % (uint64_t)(delay / 2 + 1));
    long ra = retry_after[0] != '\0' ? retry_after_parse(retry_after, time(NULL)) : -1;
    if (ra >= 0) {
        if (ra * 1000 > cfg->backoff_max_ms)
            return merr_set(err, MERR_UNREACHABLE, 0,
                            "registry asks to retry after %ld s (limit %ld ms)", ra,
                            cfg->backoff_max_ms);
        if (ra * 1000 > delay)
            delay = ra * 1000;
    }
    mlog_debug(cfg->log, "registry: retry %u in %ld ms", attempt, delay);
    struct timespec ts = { delay / 1000, (delay % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
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
        return merr_set(err, status_transient(status) ? MERR_UNREACHABLE : MERR_PROTOCOL, 0,
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

static int fetch_token(struct registry_client *c, struct merr *err)
{
    const struct auth_challenge *ch = &c->challenge;
    if (!url_may_get_credentials(c, ch->realm))
        return merr_set(err, MERR_AUTH, 0, "refusing token realm '%.200s': not https",
                        ch->realm);
    CURL *esc = c->curl->easy_init();
    if (esc == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    auto_free char *scope = NULL;
    if (asprintf(&scope, "repository:%s:pull", c->repo_path) < 0) {
        c->curl->easy_cleanup(esc);
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    }
    char *e_service = c->curl->easy_escape(esc, ch->service, 0);
    char *e_scope = c->curl->easy_escape(esc, scope, 0);
    char *e_refresh = c->identitytoken ? c->curl->easy_escape(esc, c->identitytoken, 0) : NULL;
    auto_free char *url = NULL;
    auto_free char *form = NULL;
    int r;
    if (c->identitytoken != NULL) {
        /* OAuth2 refresh-token grant, as docker does with an identity token */
        r = asprintf(&url, "%s", ch->realm);
        if (r >= 0)
            r = asprintf(&form,
                         "grant_type=refresh_token&refresh_token=%s&service=%s&scope=%s"
                         "&client_id=machine-engine",
                         e_refresh ? e_refresh : "", e_service ? e_service : "",
                         e_scope ? e_scope : "");
    } else {
        r = asprintf(&url, "%s%cservice=%s&scope=%s", ch->realm,
                     strchr(ch->realm, '?') ? '&' : '?', e_service ? e_service : "",
                     e_scope ? e_scope : "");
    }
    c->curl->free(e_service);
    c->curl->free(e_scope);
    if (e_refresh != NULL) {
        explicit_bzero(e_refresh, strlen(e_refresh));
        c->curl->free(e_refresh);
    }
    c->curl->easy_cleanup(esc);
    if (r < 0)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");

    auto_free char *authz = NULL;
    if (c->identitytoken == NULL && c->basic != NULL &&
        asprintf(&authz, "Authorization: Basic %s", c->basic) < 0)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    struct request rq = { .url = url, .authorization = authz, .post_fields = form };
    struct xfer x = { .max = TOKEN_BODY_MAX };
    int ret = -1;
    for (unsigned attempt = 1;; attempt++) {
        xfer_reset(&x);
        CURLcode cc = perform(c, &rq, &x);
        bool last = attempt >= c->cfg->max_attempts;
        if (cc != CURLE_OK) {
            if (!last && curl_transient(cc) && backoff_wait(c, attempt, "", err) == 0)
                continue;
            merr_set(err, cc == CURLE_OPERATION_TIMEDOUT ? MERR_TIMEOUT : MERR_UNREACHABLE, 0,
                     "cannot get token from '%.200s': %s", ch->realm, c->curl->easy_strerror(cc));
            break;
        }
        if (status_transient(x.status) && !last) {
            if (backoff_wait(c, attempt, x.retry_after, err) < 0)
                break;
            continue;
        }
        if (x.status != 200) {
            status_error(x.status, "token request", x.buf, err);
            break;
        }
        char *tok = NULL;
        long expires;
        if (token_response_parse(x.buf, x.len, &tok, &expires, err) < 0)
            break;
        free_secret(c->token);
        c->token = tok;
        c->token_expiry = clock_deadline_ms((expires > 20 ? expires - 10 : expires) * 1000LL);
        ret = 0;
        break;
    }
    if (x.buf != NULL)
        explicit_bzero(x.buf, x.cap);
    free(x.buf);
    if (authz != NULL)
        explicit_bzero(authz, strlen(authz));
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
    if (www_authenticate_parse(www_auth, &ch, err) < 0)
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

/* ---- requests with retries ---- */

/* Performs rq against the registry with authentication and retries. On return
 * x->status is final; transport failures and exhausted retries are errors. */
static int registry_request(struct registry_client *c, struct request *rq, struct xfer *x,
                            const char *what, struct merr *err)
{
    bool reauthed = false;
    for (unsigned attempt = 1;; attempt++) {
        auto_free char *authz = NULL;
        if (auth_header(c, false, &authz, err) < 0)
            return -1;
        rq->authorization = authz;
        xfer_reset(x);
        CURLcode cc = perform(c, rq, x);
        if (authz != NULL)
            explicit_bzero(authz, strlen(authz));
        bool last = attempt >= c->cfg->max_attempts;
        if (x->sink_failed) {
            if (x->sink_err.code != MERR_OK) {
                *err = x->sink_err;
                return -1;
            }
            return merr_set(err, MERR_INTERNAL, 0, "%s: cancelled", what);
        }
        if (x->too_large && x->sink != NULL && x->payload_started)
            return merr_set(err, MERR_CORRUPT, 0, "%s: larger than its descriptor says", what);
        if (x->too_large)
            return merr_set(err, MERR_INVALID, 0, "%s: response too large", what);
        if (x->range_bad)
            return merr_set(err, MERR_PROTOCOL, 0, "%s: bad Content-Range '%s'", what,
                            x->content_range);
        if (cc != CURLE_OK) {
            mlog_debug(c->cfg->log, "registry: %s: %s", what, c->curl->easy_strerror(cc));
            if (!last && curl_transient(cc)) {
                if (backoff_wait(c, attempt, "", err) < 0)
                    return -1;
                continue;
            }
            return merr_set(err, cc == CURLE_OPERATION_TIMEDOUT ? MERR_TIMEOUT : MERR_UNREACHABLE,
                            0, "%s: %s", what, c->curl->easy_strerror(cc));
        }
        if (x->status == 401 && !reauthed) {
            reauthed = true;
            if (setup_auth(c, x->www_auth, err) < 0)
                return -1;
            continue;
        }
        if (status_transient(x->status) && !last) {
            if (backoff_wait(c, attempt, x->retry_after, err) < 0)
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
    struct request rq = { .url = url };
    struct xfer x = { .max = ERROR_BODY_MAX };
    int r = registry_request(c, &rq, &x, "registry ping", err);
    if (r == 0 && x.status != 200)
        r = status_error(x.status, "registry ping", x.buf, err);
    free(x.buf);
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
    if (asprintf(&url, "%s/v2/%s/%s/%s", c->base_url, c->repo_path, kind, reference) < 0 ||
        asprintf(&what, "%s '%s'", kind[0] == 'm' ? "manifest" : "blob", reference) < 0)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    struct request rq = { .url = url, .accept = accept };
    struct xfer x = { .max = max };
    int r = registry_request(c, &rq, &x, what, err);
    if (r == 0 && x.status != 200)
        r = status_error(x.status, what, x.buf, err);
    if (r < 0) {
        free(x.buf);
        return -1;
    }
    out->buf = x.buf != NULL ? x.buf : strdup("");
    out->len = x.len;
    snprintf(out->content_type, sizeof out->content_type, "%s", x.content_type);
    sha256_digest(out->buf, out->len, out->digest);
    if (digest_is_valid(reference) && strcmp(reference, out->digest) != 0) {
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
    if (digest_validate(digest, err) < 0)
        return -1;
    return fetch_small(c, "blobs", digest, NULL, max, out, err);
}

int registry_stream_blob(struct registry_client *c, const char *digest, uint64_t size,
                         const struct blob_sink *sink, struct merr *err)
{
    if (digest_validate(digest, err) < 0)
        return -1;
    auto_free char *url = NULL;
    auto_free char *what = NULL;
    if (asprintf(&url, "%s/v2/%s/blobs/%s", c->base_url, c->repo_path, digest) < 0 ||
        asprintf(&what, "blob '%s'", digest) < 0)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    struct xfer x = { .max = ERROR_BODY_MAX, .sink = sink, .size = size };
    x.sha = EVP_MD_CTX_new();
    if (x.sha == NULL || EVP_DigestInit_ex(x.sha, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(x.sha);
        return merr_set(err, MERR_CRYPTO, 0, "cannot initialise sha256");
    }
    struct request rq = { .url = url, .stream = true };
    int r = 0;
    /* A transfer that breaks after some bytes resumes where it stopped; the budget
     * of attempts covers both HTTP retries and resumptions. */
    for (unsigned resume = 0; r == 0; resume++) {
        uint64_t before = x.delivered;
        r = registry_request(c, &rq, &x, what, err);
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
        if (x.status != 200 && x.status != 206) {
            r = status_error(x.status, what, x.buf, err);
            break;
        }
        if (x.delivered < size && resume + 1 < c->cfg->max_attempts)
            continue; /* a short 200/206: ask for the rest */
        break;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (r == 0 && EVP_DigestFinal_ex(x.sha, md, &mdlen) != 1)
        r = merr_set(err, MERR_CRYPTO, 0, "cannot finish sha256");
    EVP_MD_CTX_free(x.sha);
    free(x.buf);
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
