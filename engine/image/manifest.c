/* Manifests, indexes, image configs and ChainIDs. */
#include "image/manifest.h"

#include <ctype.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "jsonutil.h"

static const struct {
    const char *media_type;
    enum layer_comp comp;
} layer_types[] = {
    { "application/vnd.docker.image.rootfs.diff.tar.gzip", LAYER_COMPRESSION_GZIP },
    { "application/vnd.oci.image.layer.v1.tar", LAYER_COMPRESSION_NONE },
    { "application/vnd.oci.image.layer.v1.tar+gzip", LAYER_COMPRESSION_GZIP },
    { "application/vnd.oci.image.layer.v1.tar+zstd", LAYER_COMPRESSION_ZSTD },
};

void sha256_digest(const void *buf, size_t len, char out[DIGEST_BUF_LEN])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(buf, len, md);
    memcpy(out, "sha256:", 7);
    for (size_t i = 0; i < sizeof md; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

static int copy_str(char *dst, size_t cap, json_t *v, const char *what, struct merr *err)
{
    if (v == NULL) {
        dst[0] = '\0';
        return 0;
    }
    const char *s = json_string_value(v);
    if (s == NULL || strlen(s) >= cap)
        return merr_set(err, MERR_INVALID, 0, "invalid manifest: bad '%s'", what);
    strcpy(dst, s);
    return 0;
}

static int parse_descriptor(json_t *o, struct descriptor *d, struct merr *err)
{
    if (!json_is_object(o))
        return merr_set(err, MERR_INVALID, 0, "invalid manifest: descriptor is not an object");
    if (copy_str(d->media_type, sizeof d->media_type, json_object_get(o, "mediaType"), "mediaType",
                 err) < 0)
        return -1;
    const char *digest = json_string_value(json_object_get(o, "digest"));
    if (digest == NULL || !image_digest_is_valid(digest))
        return merr_set(err, MERR_INVALID, 0, "invalid manifest: bad digest '%.80s'",
                        digest != NULL ? digest : "");
    strcpy(d->digest, digest);
    json_t *size = json_object_get(o, "size");
    if (!json_is_integer(size) || json_integer_value(size) < 0)
        return merr_set(err, MERR_INVALID, 0, "invalid manifest: bad size for '%s'", d->digest);
    d->size = json_integer_value(size);
    return 0;
}

static int parse_index(json_t *root, struct manifest *m, struct merr *err)
{
    json_t *list = json_object_get(root, "manifests");
    if (!json_is_array(list))
        return merr_set(err, MERR_INVALID, 0, "invalid index: 'manifests' is not an array");
    size_t n = json_array_size(list);
    if (n > MANIFEST_MAX_ENTRIES)
        return merr_set(err, MERR_INVALID, 0, "invalid index: %zu entries", n);
    m->entries = calloc(n ? n : 1, sizeof *m->entries);
    if (m->entries == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate index");
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(list, i);
        struct descriptor *d = &m->entries[i];
        if (parse_descriptor(e, d, err) < 0)
            return -1;
        m->n_entries = i + 1;
        json_t *p = json_object_get(e, "platform");
        if (json_is_object(p)) {
            if (copy_str(d->platform.os, sizeof d->platform.os, json_object_get(p, "os"), "os",
                         err) < 0 ||
                copy_str(d->platform.arch, sizeof d->platform.arch,
                         json_object_get(p, "architecture"), "architecture", err) < 0 ||
                copy_str(d->platform.variant, sizeof d->platform.variant,
                         json_object_get(p, "variant"), "variant", err) < 0)
                return -1;
        }
        const char *reftype = json_string_value(
            json_object_get(json_object_get(e, "annotations"), "vnd.docker.reference.type"));
        d->attestation = reftype != NULL && strcmp(reftype, "attestation-manifest") == 0;
    }
    return 0;
}

static int parse_image_manifest(json_t *root, struct manifest *m, struct merr *err)
{
    if (parse_descriptor(json_object_get(root, "config"), &m->config, err) < 0)
        return merr_prefix(err, "config");
    json_t *layers = json_object_get(root, "layers");
    if (!json_is_array(layers))
        return merr_set(err, MERR_INVALID, 0, "invalid manifest: 'layers' is not an array");
    size_t n = json_array_size(layers);
    if (n > MANIFEST_MAX_LAYERS)
        return merr_set(err, MERR_INVALID, 0, "invalid manifest: %zu layers (max %d)", n,
                        MANIFEST_MAX_LAYERS);
    m->layers = calloc(n ? n : 1, sizeof *m->layers);
    if (m->layers == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate manifest");
    for (size_t i = 0; i < n; i++) {
        struct descriptor *d = &m->layers[i];
        if (parse_descriptor(json_array_get(layers, i), d, err) < 0)
            return -1;
        m->n_layers = i + 1;
        size_t t = 0;
        for (; t < sizeof layer_types / sizeof layer_types[0]; t++)
            if (strcmp(d->media_type, layer_types[t].media_type) == 0)
                break;
        if (t == sizeof layer_types / sizeof layer_types[0])
            return merr_set(err, MERR_UNSUPPORTED, 0, "unsupported layer media type '%s'",
                            d->media_type);
        d->comp = layer_types[t].comp;
    }
    return 0;
}

/* Strips parameters: "application/json; charset=utf-8" → "application/json". */
static void media_type_base(const char *in, char *out, size_t cap)
{
    size_t n = strcspn(in, ";");
    while (n > 0 && isspace((unsigned char)in[n - 1]))
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(out, in, n);
    out[n] = '\0';
}

int image_manifest_parse(const char *buf, size_t len, const char *content_type, struct manifest **out,
                   struct merr *err)
{
    *out = NULL;
    if (len > MANIFEST_MAX_SIZE)
        return merr_set(err, MERR_INVALID, 0, "manifest too large: %zu bytes (max %u)", len,
                        MANIFEST_MAX_SIZE);
    json_error_t jerr;
    auto_json json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL || !json_is_object(root))
        return merr_set(err, MERR_INVALID, 0, "invalid manifest: %s",
                        root == NULL ? jerr.text : "not an object");
    bool has_manifests = json_object_get(root, "manifests") != NULL;
    bool has_layers = json_object_get(root, "layers") != NULL;
    /* An ambiguous document could be read as an index by one party and as an image
     * by another (CVE-2021-41190). */
    if (has_manifests && has_layers)
        return merr_set(err, MERR_INVALID, 0,
                        "invalid manifest: document has both 'manifests' and 'layers'");
    json_t *schema = json_object_get(root, "schemaVersion");
    if (!json_is_integer(schema) || json_integer_value(schema) != 2)
        return merr_set(err, MERR_UNSUPPORTED, 0, "unsupported manifest schema version");

    auto_manifest struct manifest *m = calloc(1, sizeof *m);
    if (m == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate manifest");
    if (copy_str(m->media_type, sizeof m->media_type, json_object_get(root, "mediaType"),
                 "mediaType", err) < 0)
        return -1;
    if (m->media_type[0] == '\0' && content_type != NULL)
        media_type_base(content_type, m->media_type, sizeof m->media_type);

    if (strcmp(m->media_type, MEDIA_OCI_INDEX) == 0 ||
        strcmp(m->media_type, MEDIA_DOCKER_LIST) == 0) {
        m->kind = MANIFEST_KIND_INDEX;
    } else if (strcmp(m->media_type, MEDIA_OCI_MANIFEST) == 0 ||
               strcmp(m->media_type, MEDIA_DOCKER_MANIFEST) == 0) {
        m->kind = MANIFEST_KIND_IMAGE;
    } else if (has_manifests) { /* OCI allows an index without mediaType */
        m->kind = MANIFEST_KIND_INDEX;
        strcpy(m->media_type, MEDIA_OCI_INDEX);
    } else if (has_layers) {
        m->kind = MANIFEST_KIND_IMAGE;
        strcpy(m->media_type, MEDIA_OCI_MANIFEST);
    } else {
        return merr_set(err, MERR_UNSUPPORTED, 0, "unsupported manifest media type '%s'",
                        m->media_type);
    }
    if (m->kind == MANIFEST_KIND_INDEX && (has_layers || json_object_get(root, "config")))
        return merr_set(err, MERR_INVALID, 0, "invalid index: has image manifest fields");
    if (m->kind == MANIFEST_KIND_IMAGE && has_manifests)
        return merr_set(err, MERR_INVALID, 0, "invalid manifest: has index fields");

    int r = m->kind == MANIFEST_KIND_INDEX ? parse_index(root, m, err)
                                           : parse_image_manifest(root, m, err);
    if (r < 0)
        return -1;
    *out = steal_pointer(&m);
    return 0;
}

void image_manifest_free(struct manifest *m)
{
    if (m == NULL)
        return;
    free(m->layers);
    free(m->entries);
    free(m);
}

static void normalize_arch(struct platform *p)
{
    if (strcmp(p->arch, "x86_64") == 0 || strcmp(p->arch, "x86-64") == 0) {
        strcpy(p->arch, "amd64");
    } else if (strcmp(p->arch, "aarch64") == 0) {
        strcpy(p->arch, "arm64");
    } else if (strcmp(p->arch, "armhf") == 0) {
        strcpy(p->arch, "arm");
        if (p->variant[0] == '\0')
            strcpy(p->variant, "v7");
    } else if (strcmp(p->arch, "armel") == 0) {
        strcpy(p->arch, "arm");
        if (p->variant[0] == '\0')
            strcpy(p->variant, "v6");
    }
}

void image_platform_host(struct platform *p)
{
    memset(p, 0, sizeof *p);
    strcpy(p->os, "linux");
#if defined(__x86_64__)
    strcpy(p->arch, "amd64");
#elif defined(__aarch64__)
    strcpy(p->arch, "arm64");
#elif defined(__arm__)
    strcpy(p->arch, "arm");
#elif defined(__i386__)
    strcpy(p->arch, "386");
#elif defined(__s390x__)
    strcpy(p->arch, "s390x");
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    strcpy(p->arch, "ppc64le");
#elif defined(__riscv) && __riscv_xlen == 64
    strcpy(p->arch, "riscv64");
#else
    strcpy(p->arch, "amd64");
#endif
}

static bool platform_field_valid(const char *s)
{
    for (; *s != '\0'; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.')
            return false;
    return true;
}

int image_platform_parse(const char *s, struct platform *p, struct merr *err)
{
    if (s == NULL || s[0] == '\0') {
        image_platform_host(p);
        return 0;
    }
    memset(p, 0, sizeof *p);
    char *fields[3] = { p->os, p->arch, p->variant };
    const char *cur = s;
    size_t i = 0;
    for (; i < 3; i++) {
        size_t n = strcspn(cur, "/");
        if (n == 0 || n >= sizeof p->os)
            return merr_set(err, MERR_INVALID, 0, "invalid platform '%.80s'", s);
        for (size_t k = 0; k < n; k++)
            fields[i][k] = (char)tolower((unsigned char)cur[k]);
        fields[i][n] = '\0';
        if (!platform_field_valid(fields[i]))
            return merr_set(err, MERR_INVALID, 0, "invalid platform '%.80s'", s);
        if (cur[n] == '\0')
            break;
        cur += n + 1;
    }
    if (i == 3 || p->arch[0] == '\0')
        return merr_set(err, MERR_INVALID, 0, "invalid platform '%.80s': want os/arch[/variant]",
                        s);
    normalize_arch(p);
    return 0;
}

static bool variant_matches(const struct platform *want, const struct platform *have)
{
    if (want->variant[0] == '\0')
        return true;
    if (strcmp(want->variant, have->variant) == 0)
        return true;
    /* arm64 images often omit the default variant */
    return strcmp(want->arch, "arm64") == 0 && strcmp(want->variant, "v8") == 0 &&
           have->variant[0] == '\0';
}

const struct descriptor *image_manifest_select_platform(const struct manifest *index,
                                                  const struct platform *want, struct merr *err)
{
    const struct descriptor *best = NULL;
    for (size_t i = 0; i < index->n_entries; i++) {
        const struct descriptor *d = &index->entries[i];
        if (d->attestation || strcmp(d->platform.os, "unknown") == 0 ||
            strcmp(d->platform.arch, "unknown") == 0)
            continue;
        if (strcmp(d->media_type, MEDIA_OCI_MANIFEST) != 0 &&
            strcmp(d->media_type, MEDIA_DOCKER_MANIFEST) != 0)
            continue; /* nested indexes are not followed */
        struct platform have = d->platform;
        normalize_arch(&have);
        if (strcmp(have.os, want->os) != 0 || strcmp(have.arch, want->arch) != 0 ||
            !variant_matches(want, &have))
            continue;
        /* Without a wanted variant, prefer an entry that has none (the base variant). */
        if (best == NULL || (want->variant[0] == '\0' && best->platform.variant[0] != '\0' &&
                             have.variant[0] == '\0'))
            best = d;
    }
    if (best == NULL)
        merr_set(err, MERR_NOT_FOUND, 0, "no matching manifest for %s/%s%s%s in the manifest list",
                 want->os, want->arch, want->variant[0] ? "/" : "", want->variant);
    return best;
}

int image_config_parse(const char *buf, size_t len, struct image_config_info **out,
                       struct merr *err)
{
    *out = NULL;
    if (len > IMAGE_CONFIG_MAX_SIZE)
        return merr_set(err, MERR_INVALID, 0, "image config too large: %zu bytes", len);
    json_error_t jerr;
    auto_json json_t *root = json_loadb(buf, len, 0, &jerr);
    if (root == NULL || !json_is_object(root))
        return merr_set(err, MERR_INVALID, 0, "invalid image config: %s",
                        root == NULL ? jerr.text : "not an object");
    auto_config_info struct image_config_info *c = calloc(1, sizeof *c);
    if (c == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate image config");
    if (copy_str(c->platform.os, sizeof c->platform.os, json_object_get(root, "os"), "os", err) <
            0 ||
        copy_str(c->platform.arch, sizeof c->platform.arch, json_object_get(root, "architecture"),
                 "architecture", err) < 0 ||
        copy_str(c->platform.variant, sizeof c->platform.variant, json_object_get(root, "variant"),
                 "variant", err) < 0 ||
        copy_str(c->created, sizeof c->created, json_object_get(root, "created"), "created", err) <
            0)
        return merr_prefix(err, "image config");
    json_t *rootfs = json_object_get(root, "rootfs");
    const char *type = json_string_value(json_object_get(rootfs, "type"));
    json_t *ids = json_object_get(rootfs, "diff_ids");
    if (type == NULL || strcmp(type, "layers") != 0 || !json_is_array(ids))
        return merr_set(err, MERR_INVALID, 0, "invalid image config: bad rootfs");
    size_t n = json_array_size(ids);
    if (n > MANIFEST_MAX_LAYERS)
        return merr_set(err, MERR_INVALID, 0, "invalid image config: %zu layers", n);
    c->diff_ids = calloc(n ? n : 1, sizeof *c->diff_ids);
    if (c->diff_ids == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate image config");
    for (size_t i = 0; i < n; i++) {
        const char *d = json_string_value(json_array_get(ids, i));
        if (!image_digest_is_valid(d))
            return merr_set(err, MERR_INVALID, 0, "invalid image config: bad diff_id '%.80s'",
                            d != NULL ? d : "");
        strcpy(c->diff_ids[i], d);
    }
    c->n_diff_ids = n;
    *out = steal_pointer(&c);
    return 0;
}

void image_config_info_free(struct image_config_info *c)
{
    if (c == NULL)
        return;
    free(c->diff_ids);
    free(c);
}

int image_chain_ids_compute(const char (*diff_ids)[DIGEST_BUF_LEN], size_t n,
                      char (*out)[DIGEST_BUF_LEN], struct merr *err)
{
    for (size_t i = 0; i < n; i++) {
        if (image_digest_validate(diff_ids[i], err) < 0)
            return -1;
        if (i == 0) {
            memcpy(out[0], diff_ids[0], DIGEST_BUF_LEN);
            continue;
        }
        char buf[2 * DIGEST_BUF_LEN];
        int len = snprintf(buf, sizeof buf, "%s %s", out[i - 1], diff_ids[i]);
        sha256_digest(buf, (size_t)len, out[i]);
    }
    return 0;
}

long long rfc3339_to_unix(const char *s)
{
    struct tm tm = { 0 };
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (p == NULL)
        return -1;
    if (*p == '.')
        for (p++; isdigit((unsigned char)*p); p++)
            ;
    long long offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int hh, mm;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
            return -1;
        offset = (hh * 3600LL + mm * 60LL) * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    return (long long)timegm(&tm) - offset;
}
