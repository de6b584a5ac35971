/* Pure HTTP text helpers: URL decoding, query strings, filters, response
 * heads, chunked encoding, error bodies. Parsing of requests themselves is
 * left to http-parser (server.c). */
#include "api-priv.h"

#include <ctype.h>
#include <http_parser.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void api_kvs_free(struct api_kv *kvs, size_t n)
{
    if (kvs == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        free(kvs[i].key);
        free(kvs[i].value);
    }
    free(kvs);
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

char *api_url_decode(const char *src, size_t len, bool plus_is_space, struct merr *err)
{
    char *out = malloc(len + 1);
    if (out == NULL) {
        merr_set(err, MERR_NOMEM, 0, "out of memory");
        return NULL;
    }
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '%') {
            int hi = i + 1 < len ? hex_value(src[i + 1]) : -1;
            int lo = i + 2 < len ? hex_value(src[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                free(out);
                merr_set(err, MERR_INVALID, 0, "invalid URL escape in '%.*s'", (int)len, src);
                return NULL;
            }
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (c == '\0') {
            free(out);
            merr_set(err, MERR_INVALID, 0, "NUL byte in URL '%.*s'", (int)len, src);
            return NULL;
        }
        out[o++] = c;
    }
    out[o] = '\0';
    return out;
}

int api_query_parse(const char *qs, size_t len, struct api_kv **out, size_t *n_out,
                    struct merr *err)
{
    struct api_kv *kvs = NULL;
    size_t n = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *start = qs + pos;
        const char *amp = memchr(start, '&', len - pos);
        size_t part = amp != NULL ? (size_t)(amp - start) : len - pos;
        pos += part + 1;
        if (part == 0)
            continue;
        const char *eq = memchr(start, '=', part);
        size_t klen = eq != NULL ? (size_t)(eq - start) : part;
        struct api_kv *grown = realloc(kvs, (n + 1) * sizeof *kvs);
        if (grown == NULL) {
            api_kvs_free(kvs, n);
            return merr_set(err, MERR_NOMEM, 0, "out of memory");
        }
        kvs = grown;
        kvs[n].key = api_url_decode(start, klen, true, err);
        kvs[n].value = NULL;
        if (kvs[n].key != NULL)
            kvs[n].value = eq != NULL ? api_url_decode(eq + 1, part - klen - 1, true, err)
                                      : api_url_decode("", 0, false, err);
        if (kvs[n].value == NULL) {
            api_kvs_free(kvs, n + 1);
            return merr_prefix(err, "invalid query string");
        }
        n++;
    }
    *out = kvs;
    *n_out = n;
    return 0;
}

const char *api_kv_get(const struct api_kv *kvs, size_t n, const char *key, bool case_insensitive)
{
    for (size_t i = 0; i < n; i++) {
        int diff = case_insensitive ? strcasecmp(kvs[i].key, key) : strcmp(kvs[i].key, key);
        if (diff == 0)
            return kvs[i].value;
    }
    return NULL;
}

bool api_bool_value(const char *s)
{
    if (s == NULL)
        return false;
    while (isspace((unsigned char)*s))
        s++;
    size_t len = strlen(s);
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    static const char *const falsy[] = { "", "0", "no", "false", "none" };
    for (size_t i = 0; i < sizeof falsy / sizeof falsy[0]; i++)
        if (strlen(falsy[i]) == len && strncasecmp(s, falsy[i], len) == 0)
            return false;
    return true;
}

/* ---- responses ---------------------------------------------------------- */

int api_status_from_merr(const struct merr *err)
{
    switch (err != NULL ? err->code : MERR_INTERNAL) {
    case MERR_INVALID:
    case MERR_CORRUPT:
        return 400;
    case MERR_AUTH:
        return 401;
    case MERR_PERM:
        return 403;
    case MERR_NOT_FOUND:
        return 404;
    case MERR_EXISTS:
    case MERR_BUSY:
        return 409;
    case MERR_UNSUPPORTED:
        return 501;
    case MERR_UNREACHABLE:
    case MERR_TIMEOUT:
        return 503;
    default:
        return 500;
    }
}

static bool header_text_ok(const char *s)
{
    return s != NULL && strpbrk(s, "\r\n") == NULL;
}

int api_build_head(struct abuf *out, const struct api_head *h, struct merr *err)
{
    if (h->status < 100 || h->status > 599)
        return merr_set(err, MERR_INTERNAL, 0, "invalid HTTP status %d", h->status);
    const char *reason = h->reason != NULL ? h->reason : http_status_str(h->status);
    if (!header_text_ok(reason) || !header_text_ok(h->server) ||
        (h->content_type != NULL && !header_text_ok(h->content_type)))
        return merr_set(err, MERR_INVALID, 0, "line break in a response header");
    int r = abuf_printf(out, err,
                        "HTTP/1.1 %d %s\r\n"
                        "Api-Version: " API_VERSION_MAX "\r\n"
                        "Docker-Experimental: false\r\n"
                        "Ostype: linux\r\n"
                        "Server: %s\r\n",
                        h->status, reason, h->server);
    if (r == 0 && h->content_type != NULL)
        r = abuf_printf(out, err, "Content-Type: %s\r\n", h->content_type);
    if (r == 0 && h->content_length >= 0)
        r = abuf_printf(out, err, "Content-Length: %lld\r\n", h->content_length);
    else if (r == 0 && h->content_length == API_LENGTH_CHUNKED)
        r = abuf_printf(out, err, "Transfer-Encoding: chunked\r\n");
    if (r == 0 && h->upgrade)
        r = abuf_printf(out, err, "Connection: Upgrade\r\nUpgrade: tcp\r\n");
    else if (r == 0 && h->close)
        r = abuf_printf(out, err, "Connection: close\r\n");
    for (size_t i = 0; r == 0 && i < h->n_extra; i++) {
        if (!header_text_ok(h->extra[i].key) || !header_text_ok(h->extra[i].value) ||
            strchr(h->extra[i].key, ':') != NULL)
            return merr_set(err, MERR_INVALID, 0, "invalid response header '%s'", h->extra[i].key);
        r = abuf_printf(out, err, "%s: %s\r\n", h->extra[i].key, h->extra[i].value);
    }
    if (r == 0)
        r = abuf_append(out, "\r\n", 2, err);
    return r;
}

int api_chunk_encode(struct abuf *out, const void *data, size_t len, struct merr *err)
{
    if (len == 0) /* an empty chunk would end the stream */
        return 0;
    if (abuf_printf(out, err, "%zx\r\n", len) < 0 || abuf_append(out, data, len, err) < 0)
        return -1;
    return abuf_append(out, "\r\n", 2, err);
}

char *api_error_body(const char *message, size_t *len, struct merr *err)
{
    json_t *obj = json_pack("{s:s}", "message", message != NULL ? message : "");
    char *text = obj != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (text == NULL) {
        merr_set(err, MERR_NOMEM, 0, "cannot encode error message");
        return NULL;
    }
    size_t n = strlen(text);
    char *body = realloc(text, n + 2);
    if (body == NULL) {
        free(text);
        merr_set(err, MERR_NOMEM, 0, "out of memory");
        return NULL;
    }
    body[n] = '\n';
    body[n + 1] = '\0';
    *len = n + 1;
    return body;
}
