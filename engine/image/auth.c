/* Registry authentication parsers. */
#include "image/auth.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "jsonutil.h"

#define X_REGISTRY_AUTH_MAX (64 * 1024)

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Reads a token or a quoted-string (with \-escapes) into out; returns the end. */
static const char *read_value(const char *p, char *out, size_t cap, bool *too_long)
{
    size_t n = 0;
    *too_long = false;
    if (*p == '"') {
        p++;
        while (*p != '\0' && *p != '"') {
            if (*p == '\\' && p[1] != '\0')
                p++;
            if (n + 1 < cap)
                out[n++] = *p;
            else
                *too_long = true;
            p++;
        }
        if (*p == '"')
            p++;
    } else {
        while (*p != '\0' && *p != ',' && *p != ' ' && *p != '\t') {
            if (n + 1 < cap)
                out[n++] = *p;
            else
                *too_long = true;
            p++;
        }
    }
    out[n] = '\0';
    return p;
}

int image_www_authenticate_parse(const char *header, struct auth_challenge *c, struct merr *err)
{
    memset(c, 0, sizeof *c);
    const char *p = skip_ws(header);
    size_t n = strcspn(p, " \t");
    if (n == 6 && strncasecmp(p, "bearer", 6) == 0)
        c->scheme = AUTH_SCHEME_BEARER;
    else if (n == 5 && strncasecmp(p, "basic", 5) == 0)
        c->scheme = AUTH_SCHEME_BASIC;
    else
        return merr_set(err, MERR_UNSUPPORTED, 0, "unsupported authentication scheme '%.*s'",
                        (int)(n > 32 ? 32 : n), p);
    p += n;
    for (unsigned guard = 0; guard < 64; guard++) {
        p = skip_ws(p);
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            break;
        size_t klen = strcspn(p, "= \t,");
        const char *key = p;
        p = skip_ws(p + klen);
        if (*p != '=')
            return merr_set(err, MERR_PROTOCOL, 0, "malformed authentication challenge");
        p = skip_ws(p + 1);
        char value[1024];
        bool too_long;
        p = read_value(p, value, sizeof value, &too_long);
        char *dst = NULL;
        size_t cap = 0;
        if (klen == 5 && strncasecmp(key, "realm", 5) == 0) {
            dst = c->realm;
            cap = sizeof c->realm;
        } else if (klen == 7 && strncasecmp(key, "service", 7) == 0) {
            dst = c->service;
            cap = sizeof c->service;
        } else if (klen == 5 && strncasecmp(key, "scope", 5) == 0) {
            dst = c->scope;
            cap = sizeof c->scope;
        }
        if (dst != NULL) {
            if (too_long || strlen(value) >= cap)
                return merr_set(err, MERR_PROTOCOL, 0, "authentication challenge too long");
            strcpy(dst, value);
        }
    }
    if (c->scheme == AUTH_SCHEME_BEARER && c->realm[0] == '\0')
        return merr_set(err, MERR_PROTOCOL, 0, "bearer challenge without realm");
    return 0;
}

/* Decodes base64 or base64url, with or without padding. */
static int base64_decode_any(const char *in, char **out, size_t *outlen, struct merr *err)
{
    size_t n = strlen(in);
    while (n > 0 && in[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return merr_set(err, MERR_INVALID, 0, "invalid base64 encoding");
    auto_free char *std = malloc(n + 4);
    auto_free unsigned char *bin = malloc(n + 4);
    if (std == NULL || bin == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
        else if (!isalnum((unsigned char)c) && c != '+' && c != '/')
            return merr_set(err, MERR_INVALID, 0, "invalid base64 encoding");
        std[i] = c;
    }
    size_t pad = (4 - n % 4) % 4;
    memset(std + n, '=', pad);
    std[n + pad] = '\0';
    int r = EVP_DecodeBlock(bin, (unsigned char *)std, (int)(n + pad));
    if (r < 0)
        return merr_set(err, MERR_INVALID, 0, "invalid base64 encoding");
    size_t len = (size_t)r - pad;
    bin[len] = '\0';
    *outlen = len;
    *out = (char *)steal_pointer(&bin);
    return 0;
}

char *base64_encode(const void *buf, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (out == NULL)
        return NULL;
    EVP_EncodeBlock((unsigned char *)out, buf, (int)len);
    return out;
}

static int dup_field(json_t *root, const char *key, char **dst, struct merr *err)
{
    json_t *v = json_object_get(root, key);
    if (v == NULL || json_is_null(v))
        return 0;
    const char *s = json_string_value(v);
    if (s == NULL)
        return merr_set(err, MERR_INVALID, 0, "invalid X-Registry-Auth: '%s' is not a string", key);
    if (s[0] == '\0')
        return 0;
    *dst = strdup(s);
    if (*dst == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    return 0;
}

int image_x_registry_auth_decode(const char *header, struct registry_creds *creds, struct merr *err)
{
    memset(creds, 0, sizeof *creds);
    if (header == NULL || header[0] == '\0')
        return 0;
    if (strlen(header) > X_REGISTRY_AUTH_MAX)
        return merr_set(err, MERR_INVALID, 0, "invalid X-Registry-Auth: too long");
    auto_free char *raw = NULL;
    size_t len;
    if (base64_decode_any(header, &raw, &len, err) < 0)
        return merr_prefix(err, "invalid X-Registry-Auth");
    json_error_t jerr;
    auto_json json_t *root = json_loadb(raw, len, 0, &jerr);
    if (root == NULL || !json_is_object(root))
        return merr_set(err, MERR_INVALID, 0, "invalid X-Registry-Auth: not a JSON object");
    if (dup_field(root, "username", &creds->username, err) < 0 ||
        dup_field(root, "password", &creds->password, err) < 0 ||
        dup_field(root, "serveraddress", &creds->serveraddress, err) < 0 ||
        dup_field(root, "identitytoken", &creds->identitytoken, err) < 0)
        goto fail;
    const char *auth = json_string_value(json_object_get(root, "auth"));
    if (auth != NULL && auth[0] != '\0' && creds->username == NULL) {
        auto_free char *pair = NULL;
        size_t plen;
        if (base64_decode_any(auth, &pair, &plen, err) < 0)
            goto fail;
        char *colon = memchr(pair, ':', plen);
        if (colon == NULL) {
            merr_set(err, MERR_INVALID, 0, "invalid X-Registry-Auth: bad 'auth'");
            goto fail;
        }
        *colon = '\0';
        creds->username = strdup(pair);
        creds->password = strdup(colon + 1);
        if (creds->username == NULL || creds->password == NULL) {
            merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
            goto fail;
        }
    }
    return 0;
fail:
    image_registry_creds_clear(creds);
    return -1;
}

static void free_secret(char **s)
{
    if (*s != NULL) {
        explicit_bzero(*s, strlen(*s));
        free(*s);
        *s = NULL;
    }
}

void image_registry_creds_clear(struct registry_creds *creds)
{
    if (creds == NULL)
        return;
    free_secret(&creds->username);
    free_secret(&creds->password);
    free_secret(&creds->serveraddress);
    free_secret(&creds->identitytoken);
}

int image_token_response_parse(const char *buf, size_t len, char **token, long *expires_in,
                         struct merr *err)
{
    *token = NULL;
    json_error_t jerr;
    auto_json json_t *root = json_loadb(buf, len, 0, &jerr);
    if (root == NULL || !json_is_object(root))
        return merr_set(err, MERR_PROTOCOL, 0, "invalid token response");
    const char *t = json_string_value(json_object_get(root, "token"));
    if (t == NULL || t[0] == '\0')
        t = json_string_value(json_object_get(root, "access_token"));
    if (t == NULL || t[0] == '\0')
        return merr_set(err, MERR_PROTOCOL, 0, "token response has no token");
    for (const char *p = t; *p != '\0'; p++)
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
            return merr_set(err, MERR_PROTOCOL, 0, "token response has a malformed token");
    json_t *exp = json_object_get(root, "expires_in");
    *expires_in = 60;
    if (json_is_integer(exp) && json_integer_value(exp) >= 60)
        *expires_in = (long)json_integer_value(exp);
    *token = strdup(t);
    if (*token == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    return 0;
}

/* The key names a registry: "host[:port]", "https://host[:port][/path]". */
static bool config_key_matches(const char *key, const char *domain)
{
    const char *k = key;
    if (strncmp(k, "https://", 8) == 0)
        k += 8;
    else if (strncmp(k, "http://", 7) == 0)
        k += 7;
    size_t len = strcspn(k, "/");
    if (strlen(domain) == len && strncmp(k, domain, len) == 0)
        return true;
    if (strcmp(domain, "docker.io") != 0)
        return false;
    static const char *const hub[] = { "index.docker.io", "registry-1.docker.io", NULL };
    for (size_t i = 0; hub[i] != NULL; i++)
        if (strlen(hub[i]) == len && strncmp(k, hub[i], len) == 0)
            return true;
    return false;
}

int image_x_registry_config_pick(const char *header, const char *domain, char **out, struct merr *err)
{
    *out = NULL;
    if (header == NULL || header[0] == '\0')
        return 0;
    if (strlen(header) > X_REGISTRY_AUTH_MAX * 16)
        return merr_set(err, MERR_INVALID, 0, "invalid X-Registry-Config: too long");
    auto_free char *raw = NULL;
    size_t len;
    if (base64_decode_any(header, &raw, &len, err) < 0)
        return merr_prefix(err, "invalid X-Registry-Config");
    json_error_t jerr;
    auto_json json_t *root = json_loadb(raw, len, 0, &jerr);
    if (!json_is_object(root))
        return merr_set(err, MERR_INVALID, 0, "invalid X-Registry-Config: not a JSON object");
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        if (!json_is_object(v) || !config_key_matches(key, domain))
            continue;
        auto_free char *text = json_dumps(v, JSON_COMPACT);
        if (text == NULL || (*out = base64_encode(text, strlen(text))) == NULL)
            return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
        explicit_bzero(text, strlen(text));
        return 0;
    }
    return 0;
}
