/* Image references and digests, after github.com/distribution/reference:
 *   reference  := name [ ":" tag ] [ "@" digest ]
 *   name       := [domain "/"] path-component ["/" path-component]*
 *   domain     := host [":" port] ; host is dotted labels or "[" ipv6 "]"
 *   path-comp  := alnum+ ( ( "." | "_" | "__" | "-"+ ) alnum+ )*   (lowercase)
 *   tag        := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
 * Digests are restricted to sha256 with 64 lowercase hex digits. */
#include "image/reference.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

#define DOCKER_IO "docker.io"

bool image_digest_is_valid(const char *s)
{
    if (s == NULL || strncmp(s, "sha256:", 7) != 0)
        return false;
    const char *hex = s + 7;
    size_t i = 0;
    for (; hex[i] != '\0'; i++) {
        char c = hex[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
        if (i >= 64)
            return false;
    }
    return i == 64;
}

int image_digest_validate(const char *s, struct merr *err)
{
    if (!image_digest_is_valid(s))
        return merr_set(err, MERR_INVALID, 0, "invalid digest '%.80s'", s != NULL ? s : "");
    return 0;
}

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One path component: alnum runs joined by ".", "_", "__" or "-"+. */
static bool path_component_valid(const char *s, size_t len)
{
    size_t i = 0;
    if (len == 0 || !is_lower_alnum(s[0]))
        return false;
    while (i < len) {
        while (i < len && is_lower_alnum(s[i]))
            i++;
        if (i == len)
            return true;
        size_t sep = i;
        if (s[i] == '.') {
            i++;
        } else if (s[i] == '_') {
            i++;
            if (i < len && s[i] == '_')
                i++;
        } else if (s[i] == '-') {
            while (i < len && s[i] == '-')
                i++;
        } else {
            return false;
        }
        if (i == len || !is_lower_alnum(s[i]) || i == sep)
            return false;
    }
    return true;
}

static bool path_valid(const char *s)
{
    const char *p = s;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash != NULL ? (size_t)(slash - p) : strlen(p);
        if (!path_component_valid(p, len))
            return false;
        if (slash == NULL)
            return true;
        p = slash + 1;
    }
}

static bool domain_label_valid(const char *s, size_t len)
{
    if (len == 0 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[len - 1]))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-')
            return false;
    return true;
}

static bool port_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 5)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

static bool domain_valid(const char *s)
{
    const char *port = NULL;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL || end == s + 1)
            return false;
        for (const char *c = s + 1; c < end; c++)
            if (!isxdigit((unsigned char)*c) && *c != ':')
                return false;
        if (end[1] == ':')
            port = end + 2;
        else if (end[1] != '\0')
            return false;
        return port == NULL || port_valid(port);
    }
    const char *colon = strchr(s, ':');
    size_t hostlen = colon != NULL ? (size_t)(colon - s) : strlen(s);
    if (colon != NULL && !port_valid(colon + 1))
        return false;
    const char *p = s;
    const char *end = s + hostlen;
    while (p <= end) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        const char *lend = dot != NULL ? dot : end;
        if (!domain_label_valid(p, (size_t)(lend - p)))
            return false;
        if (dot == NULL)
            break;
        p = dot + 1;
    }
    return true;
}

static bool tag_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > REF_TAG_MAX)
        return false;
    if (!isalnum((unsigned char)s[0]) && s[0] != '_')
        return false;
    for (size_t i = 1; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
            return false;
    return true;
}

static bool is_hex64(const char *s)
{
    size_t i = 0;
    for (; s[i] != '\0'; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return i == 64;
}

static bool has_upper(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (isupper((unsigned char)s[i]))
            return true;
    return false;
}

static int copy_field(char *dst, size_t cap, const char *src, size_t len, const char *what,
                      const char *input, struct merr *err)
{
    if (len >= cap)
        return merr_set(err, MERR_INVALID, 0, "invalid reference format: %s too long in '%.80s'",
                        what, input);
    memcpy(dst, src, len);
    dst[len] = '\0';
    return 0;
}

int image_ref_parse(const char *s, struct image_ref *ref, struct merr *err)
{
    memset(ref, 0, sizeof *ref);
    if (s == NULL || s[0] == '\0')
        return merr_set(err, MERR_INVALID, 0, "invalid reference format: empty reference");
    if (is_hex64(s))
        return merr_set(err, MERR_INVALID, 0,
                        "invalid repository name '%.80s': cannot specify 64-byte hexadecimal strings",
                        s);
    size_t total = strlen(s);
    if (total > REF_NAME_MAX + 1 + REF_TAG_MAX + 1 + DIGEST_STR_LEN)
        return merr_set(err, MERR_INVALID, 0, "invalid reference format: too long");

    /* Split off the digest first, and validate it before anything else uses it. */
    const char *at = strchr(s, '@');
    size_t name_tag_len = at != NULL ? (size_t)(at - s) : total;
    if (at != NULL) {
        if (image_digest_validate(at + 1, err) < 0)
            return merr_prefix(err, "invalid reference format");
        memcpy(ref->digest, at + 1, DIGEST_STR_LEN + 1);
    }

    /* A ':' after the last '/' separates the tag. */
    const char *colon = NULL;
    for (const char *p = s; p < s + name_tag_len; p++) {
        if (*p == '/')
            colon = NULL;
        else if (*p == ':')
            colon = p;
    }
    size_t name_len = colon != NULL ? (size_t)(colon - s) : name_tag_len;
    if (colon != NULL) {
        if (copy_field(ref->tag, sizeof ref->tag, colon + 1, name_tag_len - name_len - 1, "tag", s,
                       err) < 0)
            return -1;
        if (!tag_valid(ref->tag))
            return merr_set(err, MERR_INVALID, 0, "invalid reference format: bad tag in '%.80s'", s);
    }
    if (name_len == 0)
        return merr_set(err, MERR_INVALID, 0, "invalid reference format: empty name in '%.80s'", s);

    /* The first component is a domain when it looks like one (docker's rule). */
    const char *slash = memchr(s, '/', name_len);
    const char *path = s;
    size_t path_len = name_len;
    if (slash != NULL) {
        size_t first_len = (size_t)(slash - s);
        bool is_domain = memchr(s, '.', first_len) != NULL || memchr(s, ':', first_len) != NULL ||
                         (first_len == 9 && memcmp(s, "localhost", 9) == 0) ||
                         has_upper(s, first_len);
        if (is_domain) {
            if (copy_field(ref->domain, sizeof ref->domain, s, first_len, "domain", s, err) < 0)
                return -1;
            path = slash + 1;
            path_len = name_len - first_len - 1;
        }
    }
    if (ref->domain[0] == '\0' || strcmp(ref->domain, "index.docker.io") == 0)
        strcpy(ref->domain, DOCKER_IO);
    if (!domain_valid(ref->domain))
        return merr_set(err, MERR_INVALID, 0, "invalid reference format: bad domain in '%.80s'", s);

    bool add_library = strcmp(ref->domain, DOCKER_IO) == 0 && memchr(path, '/', path_len) == NULL;
    size_t prefix = add_library ? 8 : 0;
    if (prefix + path_len >= sizeof ref->path)
        return merr_set(err, MERR_INVALID, 0, "invalid reference format: name too long");
    memcpy(ref->path, "library/", prefix);
    memcpy(ref->path + prefix, path, path_len);
    ref->path[prefix + path_len] = '\0';
    if (has_upper(ref->path, strlen(ref->path)))
        return merr_set(err, MERR_INVALID, 0,
                        "invalid reference format: repository name must be lowercase in '%.80s'", s);
    if (!path_valid(ref->path))
        return merr_set(err, MERR_INVALID, 0, "invalid reference format: bad name in '%.80s'", s);
    if (strlen(ref->domain) + 1 + strlen(ref->path) > REF_NAME_MAX)
        return merr_set(err, MERR_INVALID, 0,
                        "invalid reference format: repository name must not be more than %d "
                        "characters",
                        REF_NAME_MAX);

    if (ref->tag[0] == '\0' && ref->digest[0] == '\0')
        strcpy(ref->tag, "latest");
    return 0;
}

void image_ref_repo(const struct image_ref *ref, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", ref->domain, ref->path);
}

void image_repo_familiar(const char *full, char *buf, size_t len)
{
    const char *p = full;
    if (strncmp(p, DOCKER_IO "/", sizeof DOCKER_IO) == 0) {
        p += sizeof DOCKER_IO;
        if (strncmp(p, "library/", 8) == 0 && strchr(p + 8, '/') == NULL)
            p += 8;
    }
    snprintf(buf, len, "%s", p);
}

void image_ref_familiar_repo(const struct image_ref *ref, char *buf, size_t len)
{
    char full[REF_NAME_MAX + 2];
    image_ref_repo(ref, full, sizeof full);
    image_repo_familiar(full, buf, len);
}

const char *image_ref_registry_host(const struct image_ref *ref)
{
    if (strcmp(ref->domain, DOCKER_IO) == 0)
        return "registry-1.docker.io";
    return ref->domain;
}

bool image_host_is_loopback(const char *hostport)
{
    char host[256];
    const char *end;
    const char *start = hostport;
    if (hostport[0] == '[') {
        start = hostport + 1;
        end = strchr(start, ']');
        if (end == NULL)
            return false;
    } else {
        end = strchr(hostport, ':');
        if (end == NULL)
            end = hostport + strlen(hostport);
    }
    size_t n = (size_t)(end - start);
    if (n == 0 || n >= sizeof host)
        return false;
    memcpy(host, start, n);
    host[n] = '\0';
    if (strcmp(host, "localhost") == 0)
        return true;
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    struct in6_addr a6;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}
