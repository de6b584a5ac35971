/* The HTTP client (http.h). One attempt is perform(); http_do() adds retries, backoff and the
 * deadline; curl_error() is the only place libcurl's codes become struct merr. */
#include "http.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include "curlapi.h"
#include "clock.h"
#include "error.h"
#include "log.h"

#define RESPONSE_MAX_DEFAULT (1u << 20)
#define HEADERS_MAX 128
#define HEADER_LINE_MAX 8192
#define POOL_MAX 8 /* idle easy handles kept: their connections are reused */

struct http_client {
    struct http_client_opts o;
    char *user_agent;
    atomic_uint next_id;
    atomic_uint_fast64_t rng;
    pthread_mutex_t pool_lock;
    CURL *pool[POOL_MAX];
    size_t n_pool;
};

/* ================================ pure helpers ================================ */

long http_backoff_delay_ms(unsigned attempt, long base_ms, long max_ms, uint64_t rnd)
{
    long delay = base_ms > 0 ? base_ms : 1;
    for (unsigned i = 1; i < attempt && delay < max_ms; i++)
        delay *= 2;
    if (delay > max_ms)
        delay = max_ms;
    if (delay > 1)
        delay = delay / 2 + (long)(rnd % (uint64_t)(delay / 2 + 1));
    return delay;
}

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

long http_retry_after_parse(const char *value, time_t now)
{
    if (value == NULL)
        return -1;
    const char *p = skip_ws(value);
    if (isdigit((unsigned char)*p)) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno != 0 || *skip_ws(end) != '\0' || v < 0)
            return -1;
        return v;
    }
    struct tm tm = { 0 };
    const char *end = strptime(p, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (end == NULL || *skip_ws(end) != '\0')
        return -1;
    time_t when = timegm(&tm);
    return when > now ? (long)(when - now) : 0;
}

bool http_status_transient(long status)
{
    return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

static size_t trim_end(const char *s, size_t n)
{
    while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return n;
}

bool http_header_split(const char *line, size_t len, char *name, size_t name_cap, char *value,
                       size_t value_cap)
{
    const char *colon = memchr(line, ':', len);
    if (colon == NULL || colon == line || name_cap == 0 || value_cap == 0)
        return false;
    size_t nlen = (size_t)(colon - line);
    for (size_t i = 0; i < nlen; i++)
        if (!isgraph((unsigned char)line[i]))
            return false;
    const char *v = colon + 1;
    size_t vlen = len - nlen - 1;
    while (vlen > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        vlen--;
    }
    vlen = trim_end(v, vlen);
    if (nlen >= name_cap)
        nlen = name_cap - 1;
    if (vlen >= value_cap)
        vlen = value_cap - 1;
    memcpy(name, line, nlen);
    name[nlen] = '\0';
    memcpy(value, v, vlen);
    value[vlen] = '\0';
    return true;
}

long http_status_line_parse(const char *line, size_t len)
{
    if (len < 12 || strncmp(line, "HTTP/", 5) != 0)
        return -1;
    const char *sp = memchr(line, ' ', len);
    if (sp == NULL || (size_t)(sp - line) + 4 > len)
        return -1;
    if (!isdigit((unsigned char)sp[1]) || !isdigit((unsigned char)sp[2]) ||
        !isdigit((unsigned char)sp[3]))
        return -1;
    if ((size_t)(sp - line) + 4 < len && sp[4] != ' ' && sp[4] != '\r' && sp[4] != '\n')
        return -1;
    return (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
}

static bool secret_query_key(const char *k, size_t n)
{
    static const char *const exact[] = { "access_token", "refresh_token", "token", "password",
                                         "signature", "sig", "client_secret", NULL };
    if (n >= 6 && strncasecmp(k, "X-Amz-", 6) == 0)
        return true;
    for (size_t i = 0; exact[i] != NULL; i++)
        if (strlen(exact[i]) == n && strncasecmp(k, exact[i], n) == 0)
            return true;
    return false;
}

static void append(char **out, size_t *len, const char *s, size_t n)
{
    memcpy(*out + *len, s, n);
    *len += n;
}

char *http_redact_url(const char *url)
{
    static const char red[] = "REDACTED";
    size_t ulen = strlen(url);
    /* every secret becomes at most 8 bytes longer than it was */
    char *out = malloc(ulen * 2 + sizeof red * 4 + 1);
    if (out == NULL)
        return NULL;
    size_t len = 0;
    const char *p = url;
    const char *scheme_end = strstr(url, "://");
    if (scheme_end != NULL) {
        const char *auth = scheme_end + 3;
        size_t host_n = strcspn(auth, "/?#");
        const char *at = memchr(auth, '@', host_n);
        const char *colon = at != NULL ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
        if (colon != NULL) {
            append(&out, &len, url, (size_t)(colon + 1 - url));
            append(&out, &len, red, sizeof red - 1);
            p = at;
        }
    }
    const char *q = strchr(p, '?');
    if (q == NULL) {
        append(&out, &len, p, strlen(p));
        out[len] = '\0';
        return out;
    }
    append(&out, &len, p, (size_t)(q + 1 - p));
    for (const char *k = q + 1; *k != '\0';) {
        size_t pair = strcspn(k, "&#");
        const char *eq = memchr(k, '=', pair);
        if (eq != NULL && secret_query_key(k, (size_t)(eq - k))) {
            append(&out, &len, k, (size_t)(eq + 1 - k));
            append(&out, &len, red, sizeof red - 1);
        } else {
            append(&out, &len, k, pair);
        }
        k += pair;
        if (*k == '#') {
            append(&out, &len, k, strlen(k));
            break;
        }
        if (*k == '&')
            append(&out, &len, k++, 1);
    }
    out[len] = '\0';
    return out;
}

char *http_redact_header(const char *line)
{
    static const char *const secret[] = { "authorization", "proxy-authorization", "cookie",
                                          "set-cookie", "x-registry-auth",
                                          "x-amz-security-token", NULL };
    const char *colon = strchr(line, ':');
    if (colon != NULL)
        for (size_t i = 0; secret[i] != NULL; i++)
            if (strlen(secret[i]) == (size_t)(colon - line) &&
                strncasecmp(line, secret[i], (size_t)(colon - line)) == 0) {
                char *out = NULL;
                if (asprintf(&out, "%.*s: REDACTED", (int)(colon - line), line) < 0)
                    return NULL;
                return out;
            }
    return strdup(line);
}

char *http_resolve_location(const char *base_url, const char *location, struct merr *err)
{
    char *out = NULL;
    if (strstr(location, "://") != NULL) {
        if (strncmp(location, "http://", 7) != 0 && strncmp(location, "https://", 8) != 0) {
            merr_set(err, MERR_PROTOCOL, 0, "refusing Location '%.200s': not http(s)", location);
            return NULL;
        }
        out = strdup(location);
    } else {
        const char *scheme_end = strstr(base_url, "://");
        if (scheme_end == NULL) {
            merr_set(err, MERR_INVALID, 0, "'%.200s' is not an absolute URL", base_url);
            return NULL;
        }
        const char *host = scheme_end + 3;
        size_t origin = (size_t)(host - base_url) + strcspn(host, "/?#");
        if (strncmp(location, "//", 2) == 0) { /* scheme-relative */
            if (asprintf(&out, "%.*s%s", (int)(host - base_url - 2), base_url, location) < 0)
                out = NULL;
        } else if (location[0] == '/') {
            if (asprintf(&out, "%.*s%s", (int)origin, base_url, location) < 0)
                out = NULL;
        } else {
            size_t path_end = origin + strcspn(base_url + origin, "?#");
            size_t dir = path_end;
            while (dir > origin && base_url[dir - 1] != '/')
                dir--;
            if (dir == origin) { /* no path: the root */
                if (asprintf(&out, "%.*s/%s", (int)origin, base_url, location) < 0)
                    out = NULL;
            } else if (asprintf(&out, "%.*s%s", (int)dir, base_url, location) < 0) {
                out = NULL;
            }
        }
    }
    if (out == NULL)
        merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    return out;
}

ssize_t http_fd_read(void *ctx, void *buf, size_t len, struct merr *err)
{
    struct http_fd_body *b = ctx;
    for (;;) {
        ssize_t n = pread(b->fd, buf, len, b->pos);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return merr_set(err, MERR_IO, errno, "cannot read the request body");
        b->pos += n;
        return n;
    }
}

int http_fd_rewind(void *ctx, struct merr *err)
{
    struct http_fd_body *b = ctx;
    b->pos = b->start;
    return 0;
}

/* ================================ client ================================ */

struct http_client *http_client_new(const struct http_client_opts *opts, struct merr *err)
{
    if (opts->curl == NULL || !curl_api_loaded(opts->curl)) {
        merr_set(err, MERR_INTERNAL, 0, "http client without a loaded libcurl");
        return NULL;
    }
    struct http_client *c = calloc(1, sizeof *c);
    if (c == NULL) {
        merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
        return NULL;
    }
    c->o = *opts;
    pthread_mutex_init(&c->pool_lock, NULL);
    if (c->o.connect_timeout_ms <= 0)
        c->o.connect_timeout_ms = 10000;
    if (c->o.low_speed_time_s <= 0)
        c->o.low_speed_time_s = 30;
    if (c->o.low_speed_limit <= 0)
        c->o.low_speed_limit = 1024;
    if (c->o.max_attempts == 0)
        c->o.max_attempts = 5;
    if (c->o.backoff_base_ms <= 0)
        c->o.backoff_base_ms = 500;
    if (c->o.backoff_max_ms <= 0)
        c->o.backoff_max_ms = 10000;
    c->user_agent = strdup(opts->user_agent != NULL ? opts->user_agent
                                                    : "machine/" MACHINE_VERSION);
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, 0) != sizeof seed || seed == 0)
        seed = (uint64_t)time(NULL) | 1;
    atomic_store(&c->rng, seed);
    if (c->user_agent == NULL) {
        http_client_free(c);
        merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
        return NULL;
    }
    return c;
}

void http_client_free(struct http_client *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n_pool; i++)
        c->o.curl->easy_cleanup(c->pool[i]);
    pthread_mutex_destroy(&c->pool_lock);
    free(c->user_agent);
    free(c);
}

void http_response_clear(struct http_response *r)
{
    if (r == NULL)
        return;
    cleanup_strvp(&r->headers);
    free(r->body);
    memset(r, 0, sizeof *r);
}

const char *http_response_header(const struct http_response *r, const char *name)
{
    size_t n = strlen(name);
    for (char **h = r->headers; h != NULL && *h != NULL; h++)
        if (strncasecmp(*h, name, n) == 0 && (*h)[n] == ':')
            return skip_ws(*h + n + 1);
    return NULL;
}

static uint64_t next_random(struct http_client *c)
{
    uint64_t x = atomic_load(&c->rng), y;
    do {
        y = x;
        y ^= y << 13;
        y ^= y >> 7;
        y ^= y << 17;
    } while (!atomic_compare_exchange_weak(&c->rng, &x, y));
    return y;
}

/* ---- one attempt ---- */

struct attempt {
    struct http_client *c;
    const struct http_request *rq;
    struct http_response *resp;
    size_t nheaders;
    size_t cap, max;
    const char *up_buf; /* buffer or serialised JSON body */
    size_t up_len, up_pos;
    bool too_large;
    bool delivered;     /* on_body got bytes */
    bool cb_failed;
    struct merr cb_err;
};

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    struct attempt *a = ud;
    size_t n = size * nmemb;
    long status = http_status_line_parse(p, n);
    if (status >= 0) { /* a new response (a redirect, 100 Continue): forget the last one */
        a->resp->status = status;
        cleanup_strvp(&a->resp->headers);
        a->nheaders = 0;
        return n;
    }
    size_t len = trim_end(p, n);
    if (len == 0 || a->nheaders >= HEADERS_MAX || len > HEADER_LINE_MAX)
        return n;
    char **nh = realloc(a->resp->headers, (a->nheaders + 2) * sizeof *nh);
    if (nh == NULL)
        return 0;
    a->resp->headers = nh;
    if ((nh[a->nheaders] = strndup(p, len)) == NULL)
        return 0;
    nh[++a->nheaders] = NULL;
    return n;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    struct attempt *a = ud;
    struct http_response *r = a->resp;
    size_t n = size * nmemb;
    if (a->rq->on_body != NULL && r->status >= 200 && r->status < 300) {
        a->delivered = true;
        if (a->rq->on_body(a->rq->on_body_ctx, r, p, n, &a->cb_err) < 0) {
            a->cb_failed = true;
            return 0;
        }
        return n;
    }
    if (r->len + n > a->max) {
        a->too_large = true;
        return 0;
    }
    if (r->len + n + 1 > a->cap) {
        size_t cap = a->cap ? a->cap : 4096;
        while (cap < r->len + n + 1)
            cap *= 2;
        char *nb = realloc(r->body, cap);
        if (nb == NULL)
            return 0;
        r->body = nb;
        a->cap = cap;
    }
    memcpy(r->body + r->len, p, n);
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

static size_t on_read(char *p, size_t size, size_t nmemb, void *ud)
{
    struct attempt *a = ud;
    size_t n = size * nmemb;
    if (a->rq->body_read == NULL) {
        size_t left = a->up_len - a->up_pos;
        if (n > left)
            n = left;
        memcpy(p, a->up_buf + a->up_pos, n);
        a->up_pos += n;
        return n;
    }
    ssize_t got = a->rq->body_read(a->rq->body_ctx, p, n, &a->cb_err);
    if (got < 0) {
        a->cb_failed = true;
        return CURL_READFUNC_ABORT;
    }
    return (size_t)got;
}

static bool method_is(const struct http_request *rq, const char *m)
{
    return strcmp(rq->method != NULL ? rq->method : "GET", m) == 0;
}

static bool has_body(const struct http_request *rq)
{
    return rq->body != NULL || rq->body_read != NULL || rq->json != NULL;
}

static struct curl_slist *build_headers(const struct curl_api *api, const struct http_request *rq)
{
    struct curl_slist *h = api->slist_append(NULL, "Expect:");
    for (const char *const *l = rq->headers; h != NULL && l != NULL && *l != NULL; l++) {
        struct curl_slist *n = api->slist_append(h, *l);
        if (n == NULL) {
            api->slist_free_all(h);
            return NULL;
        }
        h = n;
    }
    if (h != NULL && rq->json != NULL) {
        struct curl_slist *n = api->slist_append(h, "Content-Type: application/json");
        if (n == NULL)
            api->slist_free_all(h);
        h = n;
    }
    return h;
}

static void set_body(const struct curl_api *api, CURL *h, const struct http_request *rq,
                     struct attempt *a)
{
    const char *m = rq->method != NULL ? rq->method : "GET";
    if (!has_body(rq)) {
        if (strcmp(m, "HEAD") == 0) {
            api->easy_setopt(h, CURLOPT_NOBODY, 1L);
        } else if (strcmp(m, "POST") == 0) {
            api->easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
            api->easy_setopt(h, CURLOPT_POSTFIELDS, "");
        } else if (strcmp(m, "GET") != 0) {
            api->easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
            if (strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0) /* send Content-Length: 0 */
                api->easy_setopt(h, CURLOPT_POSTFIELDS, "");
        }
        return;
    }
    /* every body is an upload read through on_read, whatever the method */
    api->easy_setopt(h, CURLOPT_UPLOAD, 1L);
    api->easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    api->easy_setopt(h, CURLOPT_READDATA, a);
    curl_off_t size = rq->body_read != NULL && rq->body_len == 0 ? -1 : (curl_off_t)a->up_len;
    if (rq->body_read != NULL && rq->body_len > 0)
        size = (curl_off_t)rq->body_len;
    api->easy_setopt(h, CURLOPT_INFILESIZE_LARGE, size);
    if (strcmp(m, "PUT") != 0)
        api->easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
}

static void set_transport(struct http_client *c, CURL *h, long timeout_ms)
{
    const struct curl_api *api = c->o.curl;
    api->easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    api->easy_setopt(h, CURLOPT_USERAGENT, c->user_agent);
    const char *protocols = c->o.allow_http ? "http,https" : "https";
    api->easy_setopt(h, CURLOPT_PROTOCOLS_STR, protocols);
    api->easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, protocols);
    /* never re-send credentials to a host a redirect points at (CVE-2020-15157) */
    api->easy_setopt(h, CURLOPT_UNRESTRICTED_AUTH, 0L);
    api->easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->o.connect_timeout_ms);
    api->easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, c->o.low_speed_limit);
    api->easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->o.low_speed_time_s);
    if (timeout_ms > 0)
        api->easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    if (c->o.ca_file != NULL) {
        api->easy_setopt(h, CURLOPT_CAINFO, c->o.ca_file);
        api->easy_setopt(h, CURLOPT_CAPATH, NULL);
    }
    if (c->o.cert_file != NULL)
        api->easy_setopt(h, CURLOPT_SSLCERT, c->o.cert_file);
    if (c->o.key_file != NULL)
        api->easy_setopt(h, CURLOPT_SSLKEY, c->o.key_file);
    if (c->o.tls12_min)
        api->easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (c->o.unix_socket != NULL)
        api->easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c->o.unix_socket);
    if (c->o.no_proxy) {
        api->easy_setopt(h, CURLOPT_PROXY, "");
        api->easy_setopt(h, CURLOPT_NOPROXY, "*");
    }
}

/* The one place libcurl's codes become ours. */
static int curl_error(const struct curl_api *api, CURLcode cc, const char *url,
                      const char *detail, struct merr *err)
{
    const char *why = detail != NULL && detail[0] != '\0' ? detail : api->easy_strerror(cc);
    switch (cc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
        return merr_set(err, MERR_AUTH, 0, "TLS verification of '%s' failed: %s", url, why);
    case CURLE_OPERATION_TIMEDOUT:
        return merr_set(err, MERR_TIMEOUT, 0, "'%s' did not answer in time: %s", url, why);
    case CURLE_OUT_OF_MEMORY:
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
        return merr_set(err, MERR_UNREACHABLE, 0, "cannot reach '%s': %s", url, why);
    default:
        return merr_set(err, MERR_PROTOCOL, 0, "request to '%s' failed: %s", url, why);
    }
}

static bool curl_transient(CURLcode cc)
{
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_COULDNT_CONNECT:
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

/* An easy handle: an idle one (its connections still open) or a new one. */
static CURL *handle_get(struct http_client *c)
{
    CURL *h = NULL;
    pthread_mutex_lock(&c->pool_lock);
    if (c->n_pool > 0)
        h = c->pool[--c->n_pool];
    pthread_mutex_unlock(&c->pool_lock);
    return h != NULL ? h : c->o.curl->easy_init();
}

/* Back to the pool with its options cleared (connections and caches stay), or closed. A
 * handle whose transfer failed is closed: its connection may be half-used. */
static void handle_put(struct http_client *c, CURL *h, bool reusable)
{
    if (reusable) {
        c->o.curl->easy_reset(h);
        pthread_mutex_lock(&c->pool_lock);
        if (c->n_pool < POOL_MAX) {
            c->pool[c->n_pool++] = h;
            h = NULL;
        }
        pthread_mutex_unlock(&c->pool_lock);
    }
    if (h != NULL)
        c->o.curl->easy_cleanup(h);
}

/* One exchange. Returns the curl code; a->resp holds what arrived. */
static CURLcode perform(struct attempt *a, long timeout_ms, char *errbuf)
{
    struct http_client *c = a->c;
    const struct curl_api *api = c->o.curl;
    const struct http_request *rq = a->rq;
    CURL *h = handle_get(c);
    if (h == NULL)
        return CURLE_OUT_OF_MEMORY;
    struct curl_slist *hdrs = build_headers(api, rq);
    if (hdrs == NULL) {
        handle_put(c, h, false);
        return CURLE_OUT_OF_MEMORY;
    }
    errbuf[0] = '\0';
    api->easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    api->easy_setopt(h, CURLOPT_URL, rq->url);
    api->easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    set_transport(c, h, timeout_ms);
    if (c->o.follow_redirects && (method_is(rq, "GET") || method_is(rq, "HEAD"))) {
        api->easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        api->easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
    }
    set_body(api, h, rq, a);
    api->easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    api->easy_setopt(h, CURLOPT_HEADERDATA, a);
    api->easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    api->easy_setopt(h, CURLOPT_WRITEDATA, a);
    CURLcode cc = api->easy_perform(h);
    handle_put(c, h, cc == CURLE_OK);
    api->slist_free_all(hdrs);
    return cc;
}

static bool may_retry(const struct http_request *rq)
{
    if (rq->retry == HTTP_RETRY_NEVER)
        return false;
    if (rq->body_read != NULL && rq->body_rewind == NULL)
        return false;
    if (rq->retry == HTTP_RETRY_ALWAYS)
        return true;
    return !method_is(rq, "POST") && !method_is(rq, "PATCH");
}

static int rewind_body(const struct http_request *rq, struct attempt *a, struct merr *err)
{
    a->up_pos = 0;
    if (rq->body_rewind != NULL)
        return rq->body_rewind(rq->body_ctx, err);
    return 0;
}

static void log_request(struct http_client *c, unsigned id, const struct http_request *rq,
                        unsigned attempt)
{
    if (c->o.log == NULL || c->o.log->level < MLOG_DEBUG)
        return;
    auto_free char *url = http_redact_url(rq->url);
    mlog_debug(c->o.log, "http[%u] %s %s (attempt %u)", id, rq->method ? rq->method : "GET",
               url ? url : "?", attempt);
    for (const char *const *l = rq->headers; l != NULL && *l != NULL; l++) {
        auto_free char *line = http_redact_header(*l);
        mlog_debug(c->o.log, "http[%u] > %s", id, line ? line : "?");
    }
}

/* Sleeps before retry `attempt`; -1 (err set) when Retry-After or the deadline forbid it. */
static int backoff(struct http_client *c, unsigned id, unsigned attempt,
                   const struct http_response *resp, long deadline, struct merr *err)
{
    long delay = http_backoff_delay_ms(attempt, c->o.backoff_base_ms, c->o.backoff_max_ms,
                                       next_random(c));
    const char *ra_text = resp != NULL ? http_response_header(resp, "Retry-After") : NULL;
    long ra = http_retry_after_parse(ra_text, time(NULL));
    if (ra >= 0) {
        if (ra * 1000 > c->o.backoff_max_ms)
            return merr_set(err, MERR_UNREACHABLE, 0,
                            "the server asks to retry after %ld s (limit %ld ms)", ra,
                            c->o.backoff_max_ms);
        if (ra * 1000 > delay)
            delay = ra * 1000;
    }
    if (deadline > 0 && (long)clock_now_ms() + delay >= deadline)
        return merr_set(err, MERR_TIMEOUT, 0, "no time left to retry within the deadline");
    mlog_debug(c->o.log, "http[%u] retry %u in %ld ms", id, attempt, delay);
    struct timespec ts = { delay / 1000, (delay % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    return 0;
}

/* The result of one attempt: 0 done, 1 retry, -1 failed (err set). */
static int judge(struct attempt *a, CURLcode cc, const char *errbuf, unsigned id,
                 struct merr *err)
{
    const struct http_request *rq = a->rq;
    const struct curl_api *api = a->c->o.curl;
    if (a->cb_failed) {
        if (a->cb_err.code != MERR_OK) {
            *err = a->cb_err;
            return -1;
        }
        return merr_set(err, MERR_INTERNAL, 0, "request to '%s' cancelled", rq->url);
    }
    if (a->too_large)
        return merr_set(err, MERR_INVALID, 0, "the answer of '%s' is larger than %zu bytes",
                        rq->url, a->max);
    bool retryable = may_retry(rq) && !a->delivered;
    if (cc != CURLE_OK) {
        mlog_debug(a->c->o.log, "http[%u] %s", id, errbuf[0] ? errbuf : api->easy_strerror(cc));
        if (retryable && curl_transient(cc))
            return 1;
        return curl_error(api, cc, rq->url, errbuf, err);
    }
    mlog_debug(a->c->o.log, "http[%u] < %ld", id, a->resp->status);
    if (retryable && http_status_transient(a->resp->status))
        return 1;
    return 0;
}

int http_do(struct http_client *c, const struct http_request *rq, struct http_response *resp,
            struct merr *err)
{
    memset(resp, 0, sizeof *resp);
    if (!c->o.allow_http && strncmp(rq->url, "https://", 8) != 0)
        return merr_set(err, MERR_INVALID, 0, "refusing '%.200s': only https is allowed here",
                        rq->url);
    struct attempt a = { .c = c, .rq = rq, .resp = resp };
    a.max = rq->max_response > 0 ? rq->max_response : RESPONSE_MAX_DEFAULT;
    auto_free char *json_text = NULL;
    if (rq->json != NULL) {
        json_text = json_dumps(rq->json, JSON_COMPACT);
        if (json_text == NULL)
            return merr_set(err, MERR_NOMEM, ENOMEM, "cannot serialise the request body");
        a.up_buf = json_text;
        a.up_len = strlen(json_text);
    } else if (rq->body != NULL) {
        a.up_buf = rq->body;
        a.up_len = rq->body_len;
    }
    unsigned id = atomic_fetch_add(&c->next_id, 1) + 1;
    long deadline = rq->deadline_ms > 0 ? (long)clock_now_ms() + rq->deadline_ms : 0;
    char errbuf[CURL_ERROR_SIZE];
    for (unsigned attempt = 1;; attempt++) {
        long left = 0;
        if (deadline > 0 && (left = deadline - (long)clock_now_ms()) <= 0)
            return merr_set(err, MERR_TIMEOUT, 0, "'%s' did not answer within %ld ms", rq->url,
                            rq->deadline_ms);
        if (attempt > 1 && rewind_body(rq, &a, err) < 0)
            return -1;
        if (c->o.before_attempt != NULL && c->o.before_attempt(c->o.before_attempt_ctx, err) < 0)
            return -1;
        http_response_clear(resp);
        a.nheaders = a.cap = 0;
        a.too_large = a.delivered = a.cb_failed = false;
        merr_clear(&a.cb_err);
        resp->attempts = attempt;
        log_request(c, id, rq, attempt);
        long timeout = rq->attempt_timeout_ms;
        if (left > 0 && (timeout <= 0 || left < timeout))
            timeout = left;
        CURLcode cc = perform(&a, timeout, errbuf);
        int v = judge(&a, cc, errbuf, id, err);
        if (v <= 0)
            return v;
        if (attempt >= c->o.max_attempts) {
            if (cc != CURLE_OK)
                return curl_error(c->o.curl, cc, rq->url, errbuf, err);
            return 0; /* the last transient status is the answer */
        }
        if (backoff(c, id, attempt, cc == CURLE_OK ? resp : NULL, deadline, err) < 0)
            return -1;
    }
}
