/* AWS Signature Version 4, written from AWS's "Create a signed AWS API request" steps. */
#include "sigv4.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "buf.h"
#include "error.h"
#include "fsutil.h"
#include "strv.h"

static const char hexdig[] = "0123456789abcdef";

static void hex(const unsigned char *in, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hexdig[in[i] >> 4];
        out[2 * i + 1] = hexdig[in[i] & 15];
    }
    out[2 * len] = '\0';
}

void sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(data != NULL ? data : (const void *)"", len, md);
    hex(md, sizeof md, out);
}

void sigv4_amz_date(time_t t, char out[17])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

char *sigv4_uri_encode(const char *s, bool keep_slash)
{
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1);
    if (out == NULL)
        abort();
    char *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~' ||
            (keep_slash && *p == '/')) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = "0123456789ABCDEF"[*p >> 4];
            *o++ = "0123456789ABCDEF"[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

struct hdr {
    char *name;  /* lower case */
    char *value; /* trimmed, inner runs of blanks collapsed */
};

static int hdr_cmp(const void *a, const void *b)
{
    return strcmp(((const struct hdr *)a)->name, ((const struct hdr *)b)->name);
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *trim_collapse(const char *v)
{
    char *out = xstrdup(v);
    char *o = out;
    bool blank = false;
    for (const char *p = v; *p != '\0'; p++) {
        if (*p == ' ' || *p == '\t') {
            blank = o != out;
            continue;
        }
        if (blank)
            *o++ = ' ';
        blank = false;
        *o++ = *p;
    }
    *o = '\0';
    return out;
}

static void hdrs_free(struct hdr *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(h[i].name);
        free(h[i].value);
    }
    free(h);
}

/* The headers lower-cased, trimmed and sorted by name. */
static struct hdr *hdrs_canonical(const char *const *lines, size_t *count, struct merr *err)
{
    size_t n = 0;
    while (lines != NULL && lines[n] != NULL)
        n++;
    struct hdr *h = calloc(n + 1, sizeof *h);
    if (h == NULL)
        abort();
    for (size_t i = 0; i < n; i++) {
        const char *colon = strchr(lines[i], ':');
        if (colon == NULL || colon == lines[i]) {
            hdrs_free(h, i);
            merr_set(err, MERR_INVALID, 0, "sigv4: malformed header line '%s'", lines[i]);
            return NULL;
        }
        h[i].name = strndup(lines[i], (size_t)(colon - lines[i]));
        if (h[i].name == NULL)
            abort();
        for (char *p = h[i].name; *p != '\0'; p++)
            *p = (char)tolower((unsigned char)*p);
        h[i].value = trim_collapse(colon + 1);
    }
    qsort(h, n, sizeof *h, hdr_cmp);
    *count = n;
    return h;
}

/* The query's pairs sorted by encoded name, then value. */
static char *query_canonical(const char *query)
{
    if (query == NULL || query[0] == '\0')
        return xstrdup("");
    auto_strv char **parts = NULL;
    for (const char *p = query;;) {
        const char *amp = strchr(p, '&');
        size_t len = amp != NULL ? (size_t)(amp - p) : strlen(p);
        auto_free char *one = strndup(p, len);
        if (one == NULL)
            abort();
        parts = strv_push(parts, one);
        if (amp == NULL)
            break;
        p = amp + 1;
    }
    size_t n = strv_len(parts);
    qsort(parts, n, sizeof *parts, str_cmp);
    struct abuf b = { 0 };
    for (size_t i = 0; i < n; i++) {
        if (parts[i][0] == '\0')
            continue;
        bool has_eq = strchr(parts[i], '=') != NULL;
        if (abuf_printf(&b, NULL, "%s%s%s", b.len > 0 ? "&" : "", parts[i],
                        has_eq ? "" : "=") < 0)
            abort();
    }
    return b.data != NULL ? b.data : xstrdup("");
}

static const char *find_value(const struct hdr *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(h[i].name, name) == 0)
            return h[i].value;
    return NULL;
}

/* canonical request; *signed_headers and *amz_date (malloc'd) when asked for. */
static char *canonical(const struct sigv4_request *rq, char **signed_headers, char **amz_date,
                       struct merr *err)
{
    size_t n = 0;
    struct hdr *h = hdrs_canonical(rq->headers, &n, err);
    if (h == NULL)
        return NULL;
    const char *date = find_value(h, n, "x-amz-date");
    if (date == NULL || find_value(h, n, "host") == NULL) {
        hdrs_free(h, n);
        merr_set(err, MERR_INVALID, 0, "sigv4: the request needs Host and X-Amz-Date headers");
        return NULL;
    }
    struct abuf hb = { 0 }, sb = { 0 };
    for (size_t i = 0; i < n; i++) {
        if (abuf_printf(&hb, NULL, "%s:%s\n", h[i].name, h[i].value) < 0 ||
            abuf_printf(&sb, NULL, "%s%s", i > 0 ? ";" : "", h[i].name) < 0)
            abort();
    }
    char payload_hash[65];
    sigv4_sha256_hex(rq->payload, rq->payload_len, payload_hash);
    auto_free char *q = query_canonical(rq->query);
    const char *path = rq->path != NULL && rq->path[0] != '\0' ? rq->path : "/";
    char *out = xasprintf("%s\n%s\n%s\n%s\n%s\n%s", rq->method != NULL ? rq->method : "GET",
                          path, q, hb.data != NULL ? hb.data : "", sb.data != NULL ? sb.data : "",
                          payload_hash);
    if (amz_date != NULL)
        *amz_date = xstrdup(date);
    if (signed_headers != NULL)
        *signed_headers = sb.data;
    else
        abuf_release(&sb);
    abuf_release(&hb);
    hdrs_free(h, n);
    return out;
}

char *sigv4_canonical_request(const struct sigv4_request *rq, struct merr *err)
{
    return canonical(rq, NULL, NULL, err);
}

char *sigv4_string_to_sign(const char *amz_date, const char *region, const char *service,
                           const char *canonical_request)
{
    char digest[65];
    sigv4_sha256_hex(canonical_request, strlen(canonical_request), digest);
    return xasprintf("AWS4-HMAC-SHA256\n%s\n%.8s/%s/%s/aws4_request\n%s", amz_date, amz_date,
                     region, service, digest);
}

static void hmac_sha256(const void *key, size_t key_len, const char *msg, unsigned char out[32])
{
    unsigned int len = 32;
    if (HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, strlen(msg), out,
             &len) == NULL)
        abort();
}

char *sigv4_authorization(const struct sigv4_request *rq, const struct sigv4_key *key,
                          struct merr *err)
{
    if (key->access_key == NULL || key->secret_key == NULL || key->region == NULL ||
        key->service == NULL) {
        merr_set(err, MERR_INVALID, 0, "sigv4: missing access key, secret key, region or service");
        return NULL;
    }
    auto_free char *signed_headers = NULL;
    auto_free char *date = NULL;
    auto_free char *creq = canonical(rq, &signed_headers, &date, err);
    if (creq == NULL)
        return NULL;
    if (strlen(date) < 8)
        return merr_set(err, MERR_INVALID, 0, "sigv4: bad X-Amz-Date '%s'", date), NULL;
    auto_free char *sts = sigv4_string_to_sign(date, key->region, key->service, creq);

    char day[9];
    memcpy(day, date, 8);
    day[8] = '\0';
    auto_free char *k0 = xasprintf("AWS4%s", key->secret_key);
    unsigned char k1[32], k2[32], k3[32], k4[32], sig[32];
    hmac_sha256(k0, strlen(k0), day, k1);
    hmac_sha256(k1, 32, key->region, k2);
    hmac_sha256(k2, 32, key->service, k3);
    hmac_sha256(k3, 32, "aws4_request", k4);
    hmac_sha256(k4, 32, sts, sig);
    explicit_bzero(k0, strlen(k0));
    explicit_bzero(k1, sizeof k1);
    explicit_bzero(k4, sizeof k4);
    char sighex[65];
    hex(sig, sizeof sig, sighex);
    return xasprintf("AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, "
                     "Signature=%s",
                     key->access_key, day, key->region, key->service, signed_headers, sighex);
}
