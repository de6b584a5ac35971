/* GET /distribution/{name}/json (docker manifest inspect, `docker pull` pre-checks): the
 * registry's manifest descriptor for a reference and the platforms it serves. */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "image/auth.h"
#include "image/internal.h"
#include "image/manifest.h"
#include "log.h"

static json_t *platform_json(const char *os, const char *arch, const char *variant)
{
    json_t *p = json_pack("{s:s,s:s}", "architecture", arch, "os", os);
    if (variant != NULL && variant[0] != '\0')
        json_object_set_new(p, "variant", json_string(variant));
    return p;
}

/* The platform of a single manifest comes from its config blob. */
static json_t *config_platform(struct registry_client *c, const struct manifest *m,
                               struct merr *err)
{
    struct fetched cfg = { 0 };
    if (registry_get_blob(c, m->config.digest, IMAGE_CONFIG_MAX_SIZE, &cfg, err) < 0)
        return NULL;
    json_t *j = json_loadb(cfg.buf, cfg.len, 0, NULL);
    fetched_clear(&cfg);
    const char *os = json_string_value(json_object_get(j, "os"));
    const char *arch = json_string_value(json_object_get(j, "architecture"));
    json_t *p = platform_json(os != NULL ? os : "", arch != NULL ? arch : "",
                              json_string_value(json_object_get(j, "variant")));
    json_decref(j);
    return p;
}

static json_t *describe(struct registry_client *c, const struct fetched *top, struct merr *err)
{
    struct manifest *m = NULL;
    if (image_manifest_parse(top->buf, top->len, top->content_type, &m, err) < 0)
        return NULL;
    json_t *platforms = json_array();
    if (m->kind == MANIFEST_KIND_INDEX) {
        for (size_t i = 0; i < m->n_entries; i++) {
            const struct platform *p = &m->entries[i].platform;
            json_array_append_new(platforms, platform_json(p->os, p->arch, p->variant));
        }
    } else {
        json_t *p = config_platform(c, m, err);
        if (p == NULL) {
            image_manifest_free(m);
            json_decref(platforms);
            return NULL;
        }
        json_array_append_new(platforms, p);
    }
    json_t *out = json_pack("{s:{s:s,s:s,s:I},s:o}", "Descriptor", "mediaType", m->media_type,
                            "digest", top->digest, "size", (json_int_t)top->len, "Platforms",
                            platforms);
    image_manifest_free(m);
    return out;
}

json_t *image_distribution_inspect(struct image_store *s, const struct registry_config *rc,
                                   const char *name, const char *x_registry_auth,
                                   struct merr *err)
{
    struct image_ref ref;
    if (image_ref_parse(name, &ref, err) < 0)
        return NULL;
    struct registry_creds creds;
    if (image_x_registry_auth_decode(x_registry_auth, &creds, err) < 0)
        return NULL;
    pthread_mutex_lock(&s->lock);
    int loaded = curl_api_load(&s->curl, err);
    pthread_mutex_unlock(&s->lock);
    json_t *out = NULL;
    auto_strv char **endpoints = loaded == 0 ? registry_endpoints(rc, &ref, err) : NULL;
    const char *reference = ref.digest[0] != '\0' ? ref.digest : ref.tag;
    for (size_t i = 0; endpoints != NULL && endpoints[i] != NULL && out == NULL; i++) {
        bool last = endpoints[i + 1] == NULL;
        struct registry_client *c =
            registry_client_new(rc, &s->curl, endpoints[i], ref.path, last ? &creds : NULL, err);
        if (c == NULL)
            break;
        struct fetched top = { 0 };
        if (registry_ping(c, err) == 0 && registry_get_manifest(c, reference, &top, err) == 0)
            out = describe(c, &top, err);
        fetched_clear(&top);
        registry_client_free(c);
        if (out == NULL && (last || err->code == MERR_CORRUPT || err->code == MERR_INVALID))
            break;
    }
    image_registry_creds_clear(&creds);
    return out;
}
