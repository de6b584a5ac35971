#include "engine_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "curl_linked.h"
#include "curlapi.h"
#include "error.h"
#include "http.h"
#include "fsutil.h"
#include "netutil.h"

#define BODY_MAX (4u << 20)

/* The https:// (or socket) URL of path on ep, and a client for it. */
static struct http_client *engine_http(const struct engine_endpoint *ep, const char *path,
                                       long timeout, struct curl_api *curl, char **http_url,
                                       struct merr *err)
{
    bool unix_socket = strncmp(ep->url, "unix://", 7) == 0;
    if (unix_socket) {
        *http_url = xasprintf("http://localhost%s", path);
    } else {
        auto_free char *host = NULL;
        int port = 0;
        if (net_parse_tcp_url(ep->url, &host, &port, err) < 0)
            return NULL;
        bool v6 = strchr(host, ':') != NULL;
        *http_url = xasprintf("https://%s%s%s:%d%s", v6 ? "[" : "", host, v6 ? "]" : "", port, path);
    }
    curl_api_linked(curl);
    struct http_client_opts o = {
        .curl = curl,
        .connect_timeout_ms = timeout,
        .no_proxy = true, /* the engine is dialled directly, never via a proxy */
        .max_attempts = 1, /* a check: the caller decides whether to try again */
        .unix_socket = unix_socket ? ep->url + 7 : NULL,
        .allow_http = unix_socket,
        .ca_file = unix_socket ? NULL : ep->ca,
        .cert_file = unix_socket ? NULL : ep->cert,
        .key_file = unix_socket ? NULL : ep->key,
        .tls12_min = !unix_socket,
    };
    return http_client_new(&o, err);
}

json_t *engine_get_json(const struct engine_endpoint *ep, const char *path, struct merr *err)
{
    auto_free char *http_url = NULL;
    struct curl_api curl;
    long timeout = ep->timeout_ms > 0 ? ep->timeout_ms : 10000;
    auto_http_client struct http_client *hc = engine_http(ep, path, timeout, &curl, &http_url, err);
    if (hc == NULL)
        return NULL;
    struct http_request rq = { .url = http_url, .max_response = BODY_MAX, .deadline_ms = timeout };
    struct http_response resp;
    if (http_do(hc, &rq, &resp, err) < 0) {
        if (err->code == MERR_AUTH) {
            char msg[MERR_MSG_MAX];
            snprintf(msg, sizeof msg, "%s", err->msg);
            merr_set(err, MERR_AUTH, 0, "%s (if the machine's address changed, run 'machine "
                     "regenerate-certs')", msg);
        }
        merr_prefix(err, "the engine at '%s'", ep->url);
        return NULL;
    }
    long status = resp.status;
    auto_free char *data = steal_pointer(&resp.body);
    size_t len = resp.len;
    http_response_clear(&resp);
    if (status < 200 || status > 299) {
        merr_set(err, MERR_PROTOCOL, 0, "the engine at '%s' answered %s with HTTP %ld", ep->url, path,
                 status);
        return NULL;
    }
    json_error_t jerr;
    json_t *j = json_loadb(data != NULL ? data : "", len, 0, &jerr);
    if (j == NULL)
        merr_set(err, MERR_PROTOCOL, 0, "the engine at '%s' sent invalid JSON for %s: %s", ep->url,
                 path, jerr.text);
    return j;
}

char *engine_version(const struct engine_endpoint *ep, struct merr *err)
{
    json_t *j = engine_get_json(ep, "/version", err);
    if (j == NULL)
        return NULL;
    const char *v = json_string_value(json_object_get(j, "Version"));
    char *out = v != NULL ? xstrdup(v) : NULL;
    json_decref(j);
    if (out == NULL)
        merr_set(err, MERR_PROTOCOL, 0, "the engine at '%s' sent no version", ep->url);
    return out;
}

/* The error of a docker load answer (JSON messages, one a line), or NULL. */
static char *load_error(const char *body, size_t len)
{
    json_error_t jerr;
    for (size_t off = 0; off < len;) {
        const char *nl = memchr(body + off, '\n', len - off);
        size_t n = (nl != NULL ? (size_t)(nl - body) : len) - off;
        json_t *j = json_loadb(body + off, n, 0, &jerr);
        const char *e = json_string_value(json_object_get(j, "error"));
        if (e == NULL)
            e = json_string_value(json_object_get(json_object_get(j, "errorDetail"), "message"));
        char *out = e != NULL ? xstrdup(e) : NULL;
        json_decref(j);
        if (out != NULL)
            return out;
        off += n + 1;
    }
    return NULL;
}

int engine_load_image(const struct engine_endpoint *ep, int fd, off_t size, struct merr *err)
{
    auto_free char *http_url = NULL;
    struct curl_api curl;
    long timeout = ep->timeout_ms > 0 ? ep->timeout_ms : 300000;
    auto_http_client struct http_client *hc =
        engine_http(ep, "/images/load?quiet=1", 10000, &curl, &http_url, err);
    if (hc == NULL)
        return -1;
    static const char *const headers[] = { "Content-Type: application/x-tar", NULL };
    struct http_fd_body body = { .fd = fd };
    struct http_request rq = { .method = "POST", .url = http_url, .headers = headers,
                               .body_read = http_fd_read, .body_rewind = http_fd_rewind,
                               .body_ctx = &body, .body_len = (size_t)size,
                               .retry = HTTP_RETRY_NEVER, .max_response = BODY_MAX,
                               .deadline_ms = timeout };
    struct http_response resp;
    if (http_do(hc, &rq, &resp, err) < 0)
        return merr_prefix(err, "the engine at '%s'", ep->url);
    long status = resp.status;
    auto_free char *data = steal_pointer(&resp.body);
    size_t len = resp.len;
    http_response_clear(&resp);
    auto_free char *why = data != NULL ? load_error(data, len) : NULL;
    if (status < 200 || status > 299 || why != NULL)
        return merr_set(err, MERR_REMOTE, 0, "the engine at '%s' did not load the image (HTTP %ld): %s",
                        ep->url, status, why != NULL ? why : data != NULL ? data : "");
    return 0;
}
