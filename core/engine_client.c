#include "engine_client.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fsutil.h"
#include "netutil.h"

#define BODY_MAX (4u << 20)

struct body {
    char *data;
    size_t len;
    bool overflow;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *opaque)
{
    struct body *b = opaque;
    size_t n = size * nmemb;
    if (b->len + n > BODY_MAX) {
        b->overflow = true;
        return 0;
    }
    char *nd = realloc(b->data, b->len + n + 1);
    if (nd == NULL)
        return 0;
    b->data = nd;
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* The one place curl's codes become ours. */
static int curl_fail(CURLcode rc, const char *url, const char *detail, struct merr *err)
{
    switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
        return merr_set(err, MERR_AUTH, 0,
                        "TLS verification of the engine at '%s' failed: %s (if the machine's "
                        "address changed, run 'machine regenerate-certs')",
                        url, detail[0] != '\0' ? detail : curl_easy_strerror(rc));
    case CURLE_OPERATION_TIMEDOUT:
        return merr_set(err, MERR_TIMEOUT, 0, "the engine at '%s' did not answer in time", url);
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
        return merr_set(err, MERR_UNREACHABLE, 0, "cannot connect to the engine at '%s': %s", url,
                        detail[0] != '\0' ? detail : curl_easy_strerror(rc));
    default:
        return merr_set(err, MERR_PROTOCOL, 0, "request to the engine at '%s' failed: %s", url,
                        detail[0] != '\0' ? detail : curl_easy_strerror(rc));
    }
}

json_t *engine_get_json(const struct engine_endpoint *ep, const char *path, struct merr *err)
{
    auto_free char *http_url = NULL;
    bool unix_socket = strncmp(ep->url, "unix://", 7) == 0;
    if (unix_socket) {
        http_url = xasprintf("http://localhost%s", path);
    } else {
        auto_free char *host = NULL;
        int port = 0;
        if (net_parse_tcp_url(ep->url, &host, &port, err) < 0)
            return NULL;
        bool v6 = strchr(host, ':') != NULL;
        http_url = xasprintf("https://%s%s%s:%d%s", v6 ? "[" : "", host, v6 ? "]" : "", port, path);
    }
    CURL *c = curl_easy_init();
    if (c == NULL) {
        merr_set(err, MERR_NOMEM, 0, "cannot initialise libcurl");
        return NULL;
    }
    struct body b = { 0 };
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, http_url);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(ep->timeout_ms > 0 ? ep->timeout_ms : 10000));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(ep->timeout_ms > 0 ? ep->timeout_ms : 10000));
    curl_easy_setopt(c, CURLOPT_PROXY, ""); /* the engine is dialled directly, never via a proxy */
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    if (unix_socket) {
        curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, ep->url + 7);
    } else {
        curl_easy_setopt(c, CURLOPT_CAINFO, ep->ca);
        curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
        curl_easy_setopt(c, CURLOPT_SSLCERT, ep->cert);
        curl_easy_setopt(c, CURLOPT_SSLKEY, ep->key);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
        curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    }
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    auto_free char *data = b.data;
    if (rc != CURLE_OK) {
        if (b.overflow)
            merr_set(err, MERR_PROTOCOL, 0, "the engine at '%s' sent more than %u bytes", ep->url,
                     BODY_MAX);
        else
            curl_fail(rc, ep->url, errbuf, err);
        return NULL;
    }
    if (status < 200 || status > 299) {
        merr_set(err, MERR_PROTOCOL, 0, "the engine at '%s' answered %s with HTTP %ld", ep->url, path,
                 status);
        return NULL;
    }
    json_error_t jerr;
    json_t *j = json_loadb(data != NULL ? data : "", b.len, 0, &jerr);
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
