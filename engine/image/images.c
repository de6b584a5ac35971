/* Queries over the store (lookup, list, inspect, layer dirs) and removal. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "fsutil.h"
#include "image/internal.h"
#include "image/manifest.h"

static bool is_hex(const char *s, size_t min, size_t max)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
            return false;
    return n >= min && n <= max;
}

/* Unique ID with the given hex prefix; NULL + MERR_NOT_FOUND / MERR_INVALID. */
static char *find_by_prefix(struct image_store *s, const char *prefix, const char *name,
                            struct merr *err)
{
    auto_strv char **ids = store_image_ids(s, err);
    if (ids == NULL)
        return NULL;
    const char *found = NULL;
    size_t n = strlen(prefix);
    for (char **id = ids; *id != NULL; id++) {
        if (strncmp(image_digest_hex(*id), prefix, n) != 0)
            continue;
        if (found != NULL) {
            merr_set(err, MERR_INVALID, 0, "ambiguous image id prefix '%s'", name);
            return NULL;
        }
        found = *id;
    }
    if (found == NULL) {
        merr_set(err, MERR_NOT_FOUND, 0, "No such image: %s", name);
        return NULL;
    }
    char *out = strdup(found);
    if (out == NULL)
        merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    return out;
}

/* Resolves name against tags (already loaded). *key_out (when non-NULL) gets the
 * tag-index key that matched, or stays NULL when name was an ID. */
static char *resolve(struct image_store *s, json_t *tags, const char *name, char **key_out,
                     struct merr *err)
{
    if (key_out != NULL)
        *key_out = NULL;
    if (name == NULL || name[0] == '\0') {
        merr_set(err, MERR_INVALID, 0, "empty image name");
        return NULL;
    }
    const char *hex = strncmp(name, "sha256:", 7) == 0 ? name + 7 : NULL;
    if (hex != NULL) {
        if (!is_hex(hex, 1, 64)) {
            merr_set(err, MERR_INVALID, 0, "invalid image id '%.80s'", name);
            return NULL;
        }
        return find_by_prefix(s, hex, name, err);
    }
    if (is_hex(name, 64, 64))
        return find_by_prefix(s, name, name, err);
    struct image_ref ref;
    struct merr perr = MERR_INIT;
    if (image_ref_parse(name, &ref, &perr) == 0) {
        char repo[REF_NAME_MAX + 2], key[2 * REF_NAME_MAX];
        image_ref_repo(&ref, repo, sizeof repo);
        if (ref.digest[0] != '\0')
            snprintf(key, sizeof key, "%s@%s", repo, ref.digest);
        else
            snprintf(key, sizeof key, "%s:%s", repo, ref.tag);
        const char *id = tags_get(tags, key);
        if (id != NULL && store_image_exists(s, id)) {
            char *out = strdup(id);
            if (out == NULL || (key_out != NULL && (*key_out = strdup(key)) == NULL)) {
                free(out);
                merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
                return NULL;
            }
            return out;
        }
    }
    if (is_hex(name, 1, 63))
        return find_by_prefix(s, name, name, err);
    merr_set(err, MERR_NOT_FOUND, 0, "No such image: %s", name);
    return NULL;
}

char *image_lookup(struct image_store *s, const char *name, struct merr *err)
{
    pthread_mutex_lock(&s->lock);
    json_t *tags = store_tags_load(s, err);
    char *id = tags != NULL ? resolve(s, tags, name, NULL, err) : NULL;
    json_decref(tags);
    pthread_mutex_unlock(&s->lock);
    return id;
}

/* RepoTags and RepoDigests (familiar form) of id. */
static void repo_refs(json_t *tags, const char *id, json_t *repo_tags, json_t *repo_digests)
{
    json_t *repos = json_object_get(tags, "Repositories");
    const char *repo;
    json_t *r;
    json_object_foreach(repos, repo, r)
    {
        const char *key;
        json_t *v;
        json_object_foreach(r, key, v)
        {
            const char *target = json_string_value(v);
            size_t rl = strlen(repo);
            if (target == NULL || strcmp(target, id) != 0 || strncmp(key, repo, rl) != 0)
                continue;
            char fam[REF_NAME_MAX + 2], out[2 * REF_NAME_MAX];
            image_repo_familiar(repo, fam, sizeof fam);
            snprintf(out, sizeof out, "%s%s", fam, key + rl);
            json_array_append_new(key[rl] == '@' ? repo_digests : repo_tags, json_string(out));
        }
    }
}

static json_t *load_config(struct image_store *s, const char *id, struct merr *err)
{
    auto_free char *buf = NULL;
    size_t len;
    if (store_blob_get(s, id, IMAGE_CONFIG_MAX_SIZE, &buf, &len, err) < 0)
        return NULL;
    json_error_t jerr;
    json_t *cfg = json_loadb(buf, len, 0, &jerr);
    if (!json_is_object(cfg)) {
        json_decref(cfg);
        merr_set(err, MERR_CORRUPT, 0, "cannot parse config of image '%s'", id);
        return NULL;
    }
    return cfg;
}

static json_t *list_entry(struct image_store *s, json_t *tags, const char *id, struct merr *err)
{
    auto_json json_t *rec = store_image_load(s, id, err);
    auto_json json_t *cfg = rec != NULL ? load_config(s, id, err) : NULL;
    if (cfg == NULL)
        return NULL;
    json_t *repo_tags = json_array(), *repo_digests = json_array();
    repo_refs(tags, id, repo_tags, repo_digests);
    const char *created = json_string_value(json_object_get(cfg, "created"));
    long long t = created != NULL ? rfc3339_to_unix(created) : -1;
    json_t *labels = json_object_get(json_object_get(cfg, "config"), "Labels");
    json_int_t size = json_integer_value(json_object_get(rec, "size"));
    const char *parent = json_string_value(json_object_get(cfg, "parent"));
    return json_pack("{s:s,s:s,s:o,s:o,s:I,s:I,s:I,s:I,s:O,s:I}", "Id", id, "ParentId",
                     parent != NULL ? parent : "",
                     "RepoTags", repo_tags, "RepoDigests", repo_digests, "Created",
                     (json_int_t)(t < 0 ? 0 : t), "Size", size, "SharedSize", (json_int_t)-1,
                     "VirtualSize", size, "Labels", json_is_object(labels) ? labels : json_null(),
                     "Containers", (json_int_t)-1);
}

char *image_list_json(struct image_store *s, struct merr *err)
{
    pthread_mutex_lock(&s->lock);
    auto_json json_t *tags = store_tags_load(s, err);
    auto_strv char **ids = tags != NULL ? store_image_ids(s, err) : NULL;
    auto_json json_t *list = json_array();
    bool ok = ids != NULL;
    for (char **id = ids; ok && *id != NULL; id++) {
        json_t *e = list_entry(s, tags, *id, err);
        if (e == NULL)
            ok = false;
        else
            json_array_append_new(list, e);
    }
    pthread_mutex_unlock(&s->lock);
    if (!ok)
        return NULL;
    char *text = json_dumps(list, JSON_COMPACT);
    if (text == NULL)
        merr_set(err, MERR_NOMEM, ENOMEM, "cannot serialise image list");
    return text;
}

static const char *str_or_empty(json_t *v)
{
    const char *s = json_string_value(v);
    return s != NULL ? s : "";
}

static json_t *inspect_locked(struct image_store *s, const char *name, bool legacy,
                              struct merr *err)
{
    auto_json json_t *tags = store_tags_load(s, err);
    auto_free char *id = tags != NULL ? resolve(s, tags, name, NULL, err) : NULL;
    auto_json json_t *rec = id != NULL ? store_image_load(s, id, err) : NULL;
    auto_json json_t *cfg = rec != NULL ? load_config(s, id, err) : NULL;
    if (cfg == NULL)
        return NULL;
    json_t *repo_tags = json_array(), *repo_digests = json_array();
    repo_refs(tags, id, repo_tags, repo_digests);
    json_t *layers = json_array();
    json_t *diff_ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
    size_t i;
    json_t *d;
    json_array_foreach(diff_ids, i, d) json_array_append(layers, d);
    json_int_t size = json_integer_value(json_object_get(rec, "size"));
#define CFG_STR(k) str_or_empty(json_object_get(cfg, k))
    json_t *config = json_object_get(cfg, "config");
    json_t *out = json_pack(
        "{s:s,s:o,s:o,s:s,s:s,s:s,s:s,s:s,s:O,s:s,s:s,s:I,s:I,s:{s:s,s:n},s:{s:s,s:o},"
        "s:{s:s}}",
        "Id", id, "RepoTags", repo_tags, "RepoDigests", repo_digests, "Parent", CFG_STR("parent"), "Comment",
        CFG_STR("comment"), "Created", CFG_STR("created"), "DockerVersion",
        CFG_STR("docker_version"), "Author", CFG_STR("author"), "Config",
        json_is_object(config) ? config : json_null(), "Architecture", CFG_STR("architecture"),
        "Os", CFG_STR("os"), "Size", size, "VirtualSize", size, "GraphDriver", "Name", s->driver->name,
        "Data", "RootFS", "Type", "layers", "Layers", layers, "Metadata", "LastTagTime",
        "0001-01-01T00:00:00Z");
#undef CFG_STR
    if (out != NULL && legacy) {
        /* API < 1.45: the container a commit was made from, as dockerd recorded it */
        json_t *cc = json_object_get(cfg, "container_config");
        json_object_set_new(out, "Container",
                            json_string(str_or_empty(json_object_get(cfg, "container"))));
        json_object_set(out, "ContainerConfig", json_is_object(cc) ? cc : json_object_get(cfg, "config"));
    }
    const char *variant = json_string_value(json_object_get(cfg, "variant"));
    if (out != NULL && variant != NULL && variant[0] != '\0')
        json_object_set_new(out, "Variant", json_string(variant));
    if (out == NULL)
        merr_set(err, MERR_NOMEM, ENOMEM, "cannot build inspect reply");
    return out;
}

char *image_inspect_json(struct image_store *s, const char *name, struct merr *err)
{
    return image_inspect_json_api(s, name, false, err);
}

char *image_inspect_json_api(struct image_store *s, const char *name, bool legacy,
                             struct merr *err)
{
    pthread_mutex_lock(&s->lock);
    json_t *out = inspect_locked(s, name, legacy, err);
    pthread_mutex_unlock(&s->lock);
    if (out == NULL)
        return NULL;
    char *text = json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(out);
    if (text == NULL)
        merr_set(err, MERR_NOMEM, ENOMEM, "cannot serialise inspect reply");
    return text;
}

/* ---- docker history ---- */

/* One row per history entry, newest first, with the size of the layer it made. */
static json_t *history_rows(json_t *cfg, json_t *rec)
{
    json_t *rows = json_array();
    json_t *layers = json_object_get(rec, "layers");
    size_t i, layer = 0;
    json_t *h;
    json_array_foreach(json_object_get(cfg, "history"), i, h)
    {
        json_int_t size = 0;
        if (!json_is_true(json_object_get(h, "empty_layer")))
            size = json_integer_value(json_object_get(json_array_get(layers, layer++), "size"));
        const char *created = json_string_value(json_object_get(h, "created"));
        long long t = created != NULL ? rfc3339_to_unix(created) : -1;
        json_array_insert_new(
            rows, 0,
            json_pack("{s:s,s:I,s:s,s:n,s:I,s:s}", "Id", "<missing>", "Created",
                      (json_int_t)(t < 0 ? 0 : t), "CreatedBy",
                      str_or_empty(json_object_get(h, "created_by")), "Tags", "Size", size,
                      "Comment", str_or_empty(json_object_get(h, "comment"))));
    }
    return rows;
}

static json_t *history_locked(struct image_store *s, const char *id, struct merr *err)
{
    auto_json json_t *tags = store_tags_load(s, err);
    auto_json json_t *rec = tags != NULL ? store_image_load(s, id, err) : NULL;
    auto_json json_t *cfg = rec != NULL ? load_config(s, id, err) : NULL;
    if (cfg == NULL)
        return NULL;
    json_t *rows = history_rows(cfg, rec);
    /* The IDs (and tags) of the steps whose images are here: this one, its parent, ... */
    auto_free char *cur = xstrdup(id);
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        json_object_set_new(row, "Id", json_string(cur));
        json_t *repo_tags = json_array(), *repo_digests = json_array();
        repo_refs(tags, cur, repo_tags, repo_digests);
        json_decref(repo_digests);
        json_object_set_new(row, "Tags", json_array_size(repo_tags) ? repo_tags : json_null());
        if (json_array_size(repo_tags) == 0)
            json_decref(repo_tags);
        struct merr ignored = MERR_INIT;
        auto_json json_t *pcfg = load_config(s, cur, &ignored);
        const char *parent = json_string_value(json_object_get(pcfg, "parent"));
        if (parent == NULL || !image_digest_is_valid(parent) || !store_image_exists(s, parent))
            break;
        free(cur);
        cur = xstrdup(parent);
    }
    return rows;
}

char *image_history_json(struct image_store *s, const char *name, struct merr *err)
{
    auto_free char *id = image_lookup(s, name, err);
    if (id == NULL)
        return NULL;
    pthread_mutex_lock(&s->lock);
    json_t *rows = history_locked(s, id, err);
    pthread_mutex_unlock(&s->lock);
    if (rows == NULL)
        return NULL;
    char *text = json_dumps(rows, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(rows);
    if (text == NULL)
        merr_set(err, MERR_NOMEM, ENOMEM, "cannot serialise the history");
    return text;
}

char *image_config_json(struct image_store *s, const char *image_id, struct merr *err)
{
    char *buf = NULL;
    size_t len;
    if (image_digest_validate(image_id, err) < 0)
        return NULL;
    if (!store_image_exists(s, image_id)) {
        merr_set(err, MERR_NOT_FOUND, 0, "No such image: %s", image_id);
        return NULL;
    }
    if (store_blob_get(s, image_id, IMAGE_CONFIG_MAX_SIZE, &buf, &len, err) < 0)
        return NULL;
    return buf;
}

char **image_layer_dirs(struct image_store *s, const char *image_id, struct merr *err)
{
    if (image_digest_validate(image_id, err) < 0)
        return NULL;
    auto_json json_t *rec = store_image_load(s, image_id, err);
    if (rec == NULL)
        return NULL;
    json_t *layers = json_object_get(rec, "layers");
    size_t n = json_array_size(layers);
    auto_strv char **dirs = calloc(n + 2, sizeof *dirs);
    if (dirs == NULL) {
        merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
        return NULL;
    }
    if (n == 0) {
        /* FROM scratch and its first steps: an overlay needs one lower directory (and a vfs
         * container one to copy) */
        dirs[0] = store_path(s, "empty-layer");
        if (dirs[0] == NULL || (mkdir(dirs[0], 0755) < 0 && errno != EEXIST)) {
            merr_set(err, MERR_IO, errno, "cannot create the empty layer");
            return NULL;
        }
        return steal_pointer(&dirs);
    }
    for (size_t i = 0; i < n; i++) {
        const char *chain = json_string_value(json_object_get(json_array_get(layers, n - 1 - i),
                                                              "chain"));
        if (!image_digest_is_valid(chain)) {
            merr_set(err, MERR_CORRUPT, 0, "image record '%s' has a bad layer", image_id);
            return NULL;
        }
        if (!store_layer_exists(s, chain)) {
            merr_set(err, MERR_CORRUPT, 0, "layer '%s' of image '%s' is missing", chain, image_id);
            return NULL;
        }
        dirs[i] = store_path(s, "%s/sha256/%s/diff", s->driver->dir, image_digest_hex(chain));
        if (dirs[i] == NULL) {
            merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
            return NULL;
        }
        if (s->driver->copies)
            break; /* vfs: the top layer's directory is the whole image */
    }
    return steal_pointer(&dirs);
}

int image_tag(struct image_store *s, const char *image_id, const char *ref, struct merr *err)
{
    struct image_ref r;
    if (image_ref_parse(ref, &r, err) < 0)
        return -1;
    if (r.digest[0] != '\0')
        return merr_set(err, MERR_INVALID, 0, "refusing to create a tag with a digest reference");
    if (image_digest_validate(image_id, err) < 0)
        return -1;
    char repo[REF_NAME_MAX + 2], key[2 * REF_NAME_MAX];
    image_ref_repo(&r, repo, sizeof repo);
    snprintf(key, sizeof key, "%s:%s", repo, r.tag);
    pthread_mutex_lock(&s->lock);
    int ret = -1;
    auto_json json_t *tags = NULL;
    if (!store_image_exists(s, image_id)) {
        merr_set(err, MERR_NOT_FOUND, 0, "No such image: %s", image_id);
    } else if ((tags = store_tags_load(s, err)) != NULL) {
        /* a tag that already names the image (a rebuild from the cache) writes nothing */
        ret = tags_set(tags, repo, key, image_id) ? 0 : store_tags_save(s, tags, err);
    }
    pthread_mutex_unlock(&s->lock);
    return ret;
}

/* ---- removal ---- */

struct ref_key {
    char repo[REF_NAME_MAX + 2];
    char key[2 * REF_NAME_MAX];
    bool is_digest;
};

/* Every tag-index key pointing at id (at most cap). */
static size_t keys_of(json_t *tags, const char *id, struct ref_key *out, size_t cap)
{
    size_t n = 0;
    json_t *repos = json_object_get(tags, "Repositories");
    const char *repo;
    json_t *r;
    json_object_foreach(repos, repo, r)
    {
        const char *key;
        json_t *v;
        json_object_foreach(r, key, v)
        {
            const char *target = json_string_value(v);
            size_t rl = strlen(repo);
            if (target == NULL || strcmp(target, id) != 0 || strncmp(key, repo, rl) != 0)
                continue;
            if (n < cap) {
                snprintf(out[n].repo, sizeof out[n].repo, "%s", repo);
                snprintf(out[n].key, sizeof out[n].key, "%s", key);
                out[n].is_digest = key[rl] == '@';
            }
            n++;
        }
    }
    return n;
}

static void report_add(json_t *report, const char *what, const char *value)
{
    json_array_append_new(report, json_pack("{s:s}", what, value));
}

static void untag(json_t *tags, json_t *report, const struct ref_key *k)
{
    char fam[REF_NAME_MAX + 2], out[2 * REF_NAME_MAX];
    image_repo_familiar(k->repo, fam, sizeof fam);
    snprintf(out, sizeof out, "%s%s", fam, k->key + strlen(k->repo));
    if (tags_remove(tags, k->key))
        report_add(report, "Untagged", out);
}

static bool set_has(json_t *set, const char *key)
{
    return json_object_get(set, key) != NULL;
}

/* Removes the image record and whatever layers and blobs no other image uses. */
static int delete_image(struct image_store *s, const char *id, json_t *report, struct merr *err)
{
    auto_json json_t *rec = store_image_load(s, id, err);
    if (rec == NULL)
        return -1;
    /* What the other images still need. */
    auto_json json_t *used = json_object();
    auto_strv char **ids = store_image_ids(s, err);
    if (ids == NULL)
        return -1;
    for (char **other = ids; *other != NULL; other++) {
        if (strcmp(*other, id) == 0)
            continue;
        auto_json json_t *orec = store_image_load(s, *other, err);
        if (orec == NULL)
            return -1;
        size_t i;
        json_t *l;
        json_object_set_new(used, *other, json_true());
        json_array_foreach(json_object_get(orec, "manifests"), i, l)
        {
            if (json_is_string(l))
                json_object_set_new(used, json_string_value(l), json_true());
        }
        json_array_foreach(json_object_get(orec, "layers"), i, l)
        {
            const char *blob = json_string_value(json_object_get(l, "blob"));
            const char *chain = json_string_value(json_object_get(l, "chain"));
            if (blob != NULL)
                json_object_set_new(used, blob, json_true());
            if (chain != NULL)
                json_object_set_new(used, chain, json_true());
        }
    }
    if (store_image_delete(s, id, err) < 0)
        return -1;
    report_add(report, "Deleted", id);
    json_t *layers = json_object_get(rec, "layers");
    for (size_t i = json_array_size(layers); i-- > 0;) {
        json_t *l = json_array_get(layers, i);
        const char *chain = json_string_value(json_object_get(l, "chain"));
        const char *blob = json_string_value(json_object_get(l, "blob"));
        if (image_digest_is_valid(chain) && !set_has(used, chain) && store_layer_exists(s, chain)) {
            if (store_layer_delete(s, chain, err) < 0)
                return -1;
            report_add(report, "Deleted", chain);
        }
        if (image_digest_is_valid(blob) && !set_has(used, blob))
            store_blob_delete(s, blob);
    }
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(rec, "manifests"), i, m)
    {
        const char *b = json_string_value(m);
        if (image_digest_is_valid(b) && !set_has(used, b))
            store_blob_delete(s, b);
    }
    store_blob_delete(s, id);
    return 0;
}

/* Some image's config names id as its parent. */
static int has_children(struct image_store *s, const char *id, bool *out, struct merr *err)
{
    auto_strv char **ids = store_image_ids(s, err);
    if (ids == NULL)
        return -1;
    *out = false;
    for (char **other = ids; *other != NULL && !*out; other++) {
        auto_json json_t *cfg = strcmp(*other, id) != 0 ? load_config(s, *other, err) : NULL;
        const char *parent = json_string_value(json_object_get(cfg, "parent"));
        *out = parent != NULL && strcmp(parent, id) == 0;
    }
    return 0;
}

/* The parent of id from its config (NULL when it has none); read before id is deleted. */
static char *parent_of(struct image_store *s, const char *id)
{
    struct merr ignored = MERR_INIT;
    auto_json json_t *cfg = load_config(s, id, &ignored);
    const char *parent = json_string_value(json_object_get(cfg, "parent"));
    return parent != NULL && image_digest_is_valid(parent) ? xstrdup(parent) : NULL;
}

/* dockerd's prune after a delete (DELETE /images/{name} without noprune): up the chain, each
 * parent without a tag or digest, without other children and unused by containers goes too.
 * Takes parent. */
static int prune_parents_locked(struct image_store *s, json_t *tags, char *parent,
                                image_in_use_fn in_use, void *in_use_ctx, json_t *report,
                                struct merr *err)
{
    auto_free char *cur = parent;
    bool children = false;
    while (cur != NULL && store_image_exists(s, cur) && keys_of(tags, cur, NULL, 0) == 0 &&
           (in_use == NULL || !in_use(cur, in_use_ctx))) {
        if (has_children(s, cur, &children, err) < 0)
            return -1;
        if (children)
            break;
        char *next = parent_of(s, cur);
        if (delete_image(s, cur, report, err) < 0) {
            free(next);
            return -1;
        }
        free(cur);
        cur = next;
    }
    return 0;
}

#define MAX_REFS 256

static int remove_locked(struct image_store *s, const char *name, bool force, bool prune,
                         image_in_use_fn in_use, void *in_use_ctx, json_t *report,
                         struct merr *err)
{
    auto_json json_t *tags = store_tags_load(s, err);
    if (tags == NULL)
        return -1;
    auto_free char *key = NULL;
    auto_free char *id = resolve(s, tags, name, &key, err);
    if (id == NULL)
        return -1;
    auto_free struct ref_key *refs = calloc(MAX_REFS, sizeof *refs);
    if (refs == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    size_t n = keys_of(tags, id, refs, MAX_REFS);
    if (n > MAX_REFS)
        n = MAX_REFS;
    bool used = in_use != NULL && in_use(id, in_use_ctx);
    char short_id[13];
    snprintf(short_id, sizeof short_id, "%.12s", image_digest_hex(id));

    if (key != NULL) {
        size_t other_tags = 0;
        const struct ref_key *self = NULL;
        for (size_t i = 0; i < n; i++) {
            if (strcmp(refs[i].key, key) == 0)
                self = &refs[i];
            else if (!refs[i].is_digest)
                other_tags++;
        }
        if (self != NULL && other_tags > 0 && !self->is_digest) {
            untag(tags, report, self);
            return store_tags_save(s, tags, err);
        }
        if (used && !force)
            return merr_set(err, MERR_BUSY, 0,
                            "conflict: unable to remove repository reference \"%s\" (must "
                            "force) - container is using its referenced image %s",
                            name, short_id);
    } else {
        if (used && !force)
            return merr_set(err, MERR_BUSY, 0,
                            "conflict: unable to delete %s (must be forced) - image is being "
                            "used by a container",
                            short_id);
        for (size_t i = 1; i < n && !force; i++)
            if (strcmp(refs[i].repo, refs[0].repo) != 0)
                return merr_set(err, MERR_BUSY, 0,
                                "conflict: unable to delete %s (must be forced) - image is "
                                "referenced in multiple repositories",
                                short_id);
    }
    /* The last reference goes, and with it the image unless a container needs it. */
    for (size_t i = 0; i < n; i++)
        untag(tags, report, &refs[i]);
    if (store_tags_save(s, tags, err) < 0)
        return -1;
    if (used)
        return 0;
    char *parent = prune ? parent_of(s, id) : NULL;
    if (delete_image(s, id, report, err) < 0) {
        free(parent);
        return -1;
    }
    return prune_parents_locked(s, tags, parent, in_use, in_use_ctx, report, err);
}

int image_remove(struct image_store *s, const char *name, bool force, image_in_use_fn in_use,
                 void *in_use_ctx, char **report_out, struct merr *err)
{
    const struct image_remove_opts o = { force, false, in_use, in_use_ctx };
    return image_remove_with(s, name, &o, report_out, err);
}

int image_remove_with(struct image_store *s, const char *name, const struct image_remove_opts *o,
                      char **report_out, struct merr *err)
{
    if (report_out != NULL)
        *report_out = NULL;
    auto_json json_t *report = json_array();
    pthread_mutex_lock(&s->lock);
    int r = remove_locked(s, name, o->force, o->prune_parents, o->in_use, o->in_use_ctx, report,
                          err);
    pthread_mutex_unlock(&s->lock);
    if (r < 0)
        return -1;
    if (report_out != NULL && (*report_out = json_dumps(report, JSON_COMPACT)) == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot serialise report");
    return 0;
}
