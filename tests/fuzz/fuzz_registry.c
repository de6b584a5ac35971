/* Fuzz target for registry responses as the pull client sees them (security case 30): the
 * input is a raw HTTP response ("HTTP/1.1 401 ...", headers, blank line, body). Its headers go
 * to the parsers the client applies (WWW-Authenticate challenges, Retry-After), its body to
 * the parser the status and Content-Type call for: a manifest or an index (with platform
 * selection and the digest check against Docker-Content-Digest), an image config with its
 * ChainIDs, or a token server's reply. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "http.h"
#include "image/auth.h"
#include "image/manifest.h"
#include "image/reference.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct response {
    long status;
    char content_type[128];
    char www_auth[2048];
    char retry_after[64];
    char digest[DIGEST_BUF_LEN + 8];
    const char *body;
    size_t body_len;
};

static void header_value(char *dst, size_t cap, const char *v, size_t n)
{
    while (n > 0 && (*v == ' ' || *v == '\t'))
        v++, n--;
    while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == ' '))
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static void split(const char *buf, size_t len, struct response *r)
{
    memset(r, 0, sizeof *r);
    const char *p = buf, *end = buf + len;
    bool first = true;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl != NULL ? nl : end;
        size_t n = (size_t)(line_end - p);
        if (n == 0 || (n == 1 && p[0] == '\r')) {
            p = nl != NULL ? nl + 1 : end;
            break;
        }
        static const struct {
            const char *name;
            size_t off, cap;
        } wanted[] = {
            { "content-type:", offsetof(struct response, content_type), 128 },
            { "www-authenticate:", offsetof(struct response, www_auth), 2048 },
            { "retry-after:", offsetof(struct response, retry_after), 64 },
            { "docker-content-digest:", offsetof(struct response, digest), DIGEST_BUF_LEN + 8 },
        };
        if (first && n > 9 && memcmp(p, "HTTP/", 5) == 0) {
            const char *sp = memchr(p, ' ', n);
            char code[4] = "";
            if (sp != NULL && (size_t)(line_end - sp) > 3)
                memcpy(code, sp + 1, 3);
            r->status = strtol(code, NULL, 10); /* the input is not NUL-terminated */
        }
        for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
            size_t k = strlen(wanted[i].name);
            if (n > k && strncasecmp(p, wanted[i].name, k) == 0)
                header_value((char *)r + wanted[i].off, wanted[i].cap, p + k, n - k);
        }
        first = false;
        p = nl != NULL ? nl + 1 : end;
    }
    r->body = p;
    r->body_len = (size_t)(end - p);
}

static void manifest_response(const struct response *r)
{
    struct merr err = MERR_INIT;
    char digest[DIGEST_BUF_LEN];
    sha256_digest(r->body, r->body_len, digest);
    if (r->digest[0] != '\0' && image_digest_is_valid(r->digest) && strcmp(r->digest, digest) != 0)
        return; /* the client refuses bytes that do not match */
    struct manifest *m = NULL;
    if (image_manifest_parse(r->body, r->body_len, r->content_type[0] != '\0' ? r->content_type : NULL,
                       &m, &err) < 0)
        return;
    if (m->kind == MANIFEST_KIND_INDEX) {
        struct platform host;
        image_platform_host(&host);
        (void)image_manifest_select_platform(m, &host, &err);
        struct platform arm;
        if (image_platform_parse("linux/arm/v7", &arm, &err) == 0)
            (void)image_manifest_select_platform(m, &arm, &err);
    }
    image_manifest_free(m);
}

static void config_response(const struct response *r)
{
    struct image_config_info *c = NULL;
    struct merr err = MERR_INIT;
    if (image_config_parse(r->body, r->body_len, &c, &err) < 0)
        return;
    char(*chain)[DIGEST_BUF_LEN] = calloc(c->n_diff_ids + 1, sizeof *chain);
    if (chain != NULL)
        (void)!image_chain_ids_compute((const char(*)[DIGEST_BUF_LEN])c->diff_ids, c->n_diff_ids, chain,
                                 &err);
    (void)rfc3339_to_unix(c->created);
    free(chain);
    image_config_info_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct response r;
    split((const char *)data, size, &r);
    struct merr err = MERR_INIT;
    if (r.www_auth[0] != '\0') {
        struct auth_challenge c;
        (void)!image_www_authenticate_parse(r.www_auth, &c, &err);
    }
    if (r.retry_after[0] != '\0')
        (void)http_retry_after_parse(r.retry_after, 1700000000);
    if (r.status != 200)
        return 0;
    if (strstr(r.content_type, "config") != NULL) {
        config_response(&r);
    } else if (strncmp(r.content_type, "application/json", 16) == 0) {
        char *token = NULL;
        long expires = 0;
        if (image_token_response_parse(r.body, r.body_len, &token, &expires, &err) == 0)
            free(token);
    } else {
        manifest_response(&r);
    }
    return 0;
}
