/* image_push (docker push) and image_login (docker login) over the registry client.
 *
 * A push sends, for each tag, the blobs the registry lacks (HEAD first; a blob that an image
 * tagged in another repository of the same registry holds is mounted from there, as dockerd
 * does with its blob-to-repository metadata), then the config and the manifest. The manifest
 * is the one the image was pulled through, byte for byte, when the store has it (so the digest
 * is the registry's; the last one when there are several); otherwise one is made: Docker schema2 when every layer is gzip (dockerd's
 * choice), OCI otherwise. Progress lines are dockerd's. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "image/auth.h"
#include "image/internal.h"
#include "image/manifest.h"
#include "log.h"

#define PUSH_CHUNK_SIZE ((uint64_t)8 << 20) /* larger layers go in PATCH chunks */
#define PROGRESS_INTERVAL_NS 100000000L
#define MAX_PARALLEL_UPLOADS 16
#define MEDIA_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define MEDIA_DOCKER_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define MEDIA_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define MEDIA_OCI_LAYER "application/vnd.oci.image.layer.v1.tar"

struct push;

struct push_layer {
    char digest[DIGEST_BUF_LEN];
    char short_id[13]; /* dockerd shows the DiffID's first 12 hex digits */
    uint64_t size;
    char *mount_from;  /* set while pushing: the repository to mount it from, or NULL */
    struct push *p;
    struct timespec last_progress;
};

struct push_image {
    char id[DIGEST_BUF_LEN];
    char *manifest;
    size_t manifest_len;
    char media_type[128];
    char digest[DIGEST_BUF_LEN];
    struct push_layer *layers; /* bottom first */
    size_t n;
};

struct push {
    struct image_store *s;
    const struct registry_config *cfg;
    struct registry_client *client;
    struct image_ref ref;
    char repo[REF_NAME_MAX + 2];     /* "127.0.0.1:5000/x/y" as the store keys it */
    char familiar[REF_NAME_MAX + 2];
    image_progress_fn cb;
    void *cb_ctx;
    pthread_mutex_t progress_lock;
    atomic_bool gone; /* the client went away, or a layer failed: stop */
    /* layer workers of one tag */
    pthread_mutex_t lock; /* next, failed, first_err */
    struct push_layer *layers;
    size_t n, next;
    bool failed;
    struct merr first_err;
};

static void push_image_clear(struct push_image *im)
{
    free(im->manifest);
    for (size_t i = 0; im->layers != NULL && i < im->n; i++)
        free(im->layers[i].mount_from);
    free(im->layers);
    memset(im, 0, sizeof *im);
}

/* ---- progress (dockerd's JSON messages) ---- */

static void emit_json(struct push *p, json_t *o)
{
    auto_free char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (text == NULL || p->cb == NULL || atomic_load(&p->gone))
        return;
    auto_free char *line = NULL;
    if (asprintf(&line, "%s\r\n", text) < 0)
        return;
    pthread_mutex_lock(&p->progress_lock);
    if (p->cb(line, p->cb_ctx) < 0)
        atomic_store(&p->gone, true);
    pthread_mutex_unlock(&p->progress_lock);
}

static void emit(struct push *p, const char *status, const char *id)
{
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string(status));
    if (id != NULL) {
        json_object_set_new(o, "progressDetail", json_object());
        json_object_set_new(o, "id", json_string(id));
    }
    emit_json(p, o);
}

static void on_upload_progress(void *ctx, uint64_t cur, uint64_t total)
{
    struct push_layer *l = ctx;
    struct push *p = l->p;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long ns = (now.tv_sec - l->last_progress.tv_sec) * 1000000000LL +
                   (now.tv_nsec - l->last_progress.tv_nsec);
    if (cur < total && ns < PROGRESS_INTERVAL_NS)
        return;
    l->last_progress = now;
    char text[128];
    image_progress_text(cur, total, text, sizeof text);
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string("Pushing"));
    json_object_set_new(o, "progressDetail", json_pack("{s:I,s:I}", "current", (json_int_t)cur,
                                                       "total", (json_int_t)total));
    json_object_set_new(o, "progress", json_string(text));
    json_object_set_new(o, "id", json_string(l->short_id));
    emit_json(p, o);
}

static bool upload_cancelled(void *ctx)
{
    return atomic_load(&((struct push_layer *)ctx)->p->gone);
}

static bool config_cancelled(void *ctx)
{
    return atomic_load(&((struct push *)ctx)->gone);
}

/* ---- what to push ---- */

static void short_of(const char *digest, char out[13])
{
    snprintf(out, 13, "%s", image_digest_is_valid(digest) ? image_digest_hex(digest) : digest);
}

static int blob_size(struct image_store *s, const char *digest, uint64_t *size, struct merr *err)
{
    auto_free char *path = store_path(s, "blobs/sha256/%s", image_digest_hex(digest));
    struct stat st;
    if (path == NULL || stat(path, &st) < 0)
        return merr_set(err, MERR_NOT_FOUND, errno,
                        "blob %s is missing from the store; pull or build the image again",
                        digest);
    *size = (uint64_t)st.st_size;
    return 0;
}

/* The manifest the image was last pulled through, when the store keeps it (an image pulled
 * as OCI and as Docker schema2 goes out as it came last). */
static int stored_manifest(struct image_store *s, json_t *rec, struct push_image *im,
                           struct merr *err)
{
    json_t *list = json_object_get(rec, "manifests");
    for (size_t i = json_array_size(list); i-- > 0;) {
        const char *digest = json_string_value(json_array_get(list, i));
        if (digest == NULL || !image_digest_is_valid(digest) || !store_blob_exists(s, digest))
            continue;
        auto_free char *buf = NULL;
        size_t len = 0;
        struct merr ignored = MERR_INIT;
        if (store_blob_get(s, digest, MANIFEST_MAX_SIZE, &buf, &len, &ignored) < 0)
            continue;
        auto_manifest struct manifest *m = NULL;
        if (image_manifest_parse(buf, len, NULL, &m, &ignored) < 0 || m->kind != MANIFEST_KIND_IMAGE ||
            strcmp(m->config.digest, im->id) != 0)
            continue;
        im->layers = calloc(m->n_layers + 1, sizeof *im->layers);
        if (im->layers == NULL)
            return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
        json_t *rl = json_object_get(rec, "layers");
        for (size_t k = 0; k < m->n_layers; k++) {
            struct push_layer *l = &im->layers[k];
            snprintf(l->digest, sizeof l->digest, "%s", m->layers[k].digest);
            l->size = (uint64_t)m->layers[k].size;
            const char *diff = json_string_value(json_object_get(json_array_get(rl, k), "diff"));
            short_of(diff != NULL ? diff : l->digest, l->short_id);
        }
        im->n = m->n_layers;
        snprintf(im->media_type, sizeof im->media_type, "%s",
                 m->media_type[0] ? m->media_type : MEDIA_OCI_MANIFEST);
        snprintf(im->digest, sizeof im->digest, "%s", digest);
        im->manifest = steal_pointer(&buf);
        im->manifest_len = len;
        return 1;
    }
    return 0;
}

/* A manifest for an image made here (built, committed, loaded, imported). */
static int made_manifest(struct image_store *s, json_t *rec, struct push_image *im,
                         struct merr *err)
{
    json_t *rl = json_object_get(rec, "layers");
    size_t n = json_array_size(rl);
    im->layers = calloc(n + 1, sizeof *im->layers);
    if (im->layers == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    bool all_gzip = true;
    for (size_t k = 0; k < n; k++) {
        json_t *l = json_array_get(rl, k);
        const char *blob = json_string_value(json_object_get(l, "blob"));
        const char *media = json_string_value(json_object_get(l, "media_type"));
        const char *diff = json_string_value(json_object_get(l, "diff"));
        if (blob == NULL || !image_digest_is_valid(blob))
            return merr_set(err, MERR_CORRUPT, 0, "image %s: a layer without a blob", im->id);
        snprintf(im->layers[k].digest, DIGEST_BUF_LEN, "%s", blob);
        short_of(diff != NULL ? diff : blob, im->layers[k].short_id);
        if (blob_size(s, blob, &im->layers[k].size, err) < 0)
            return -1;
        all_gzip = all_gzip && media != NULL && strstr(media, "gzip") != NULL;
    }
    im->n = n;
    uint64_t config_size;
    if (blob_size(s, im->id, &config_size, err) < 0)
        return -1;
    auto_json json_t *layers = json_array();
    for (size_t k = 0; k < n; k++) {
        const char *media = json_string_value(json_object_get(json_array_get(rl, k), "media_type"));
        const char *type = all_gzip                                       ? MEDIA_DOCKER_LAYER_GZIP
                           : media != NULL && strstr(media, "zstd") != NULL ? MEDIA_OCI_LAYER "+zstd"
                           : media != NULL && strstr(media, "gzip") != NULL ? MEDIA_OCI_LAYER "+gzip"
                                                                            : MEDIA_OCI_LAYER;
        json_array_append_new(layers, json_pack("{s:s,s:I,s:s}", "mediaType", type, "size",
                                                (json_int_t)im->layers[k].size, "digest",
                                                im->layers[k].digest));
    }
    const char *mt = all_gzip ? MEDIA_DOCKER_MANIFEST : MEDIA_OCI_MANIFEST;
    auto_json json_t *m = json_pack("{s:i,s:s,s:{s:s,s:I,s:s},s:O}", "schemaVersion", 2,
                                    "mediaType", mt, "config", "mediaType",
                                    all_gzip ? MEDIA_DOCKER_CONFIG : MEDIA_OCI_CONFIG, "size",
                                    (json_int_t)config_size, "digest", im->id, "layers", layers);
    im->manifest = m != NULL ? json_dumps(m, JSON_PRESERVE_ORDER | JSON_INDENT(3)) : NULL;
    if (im->manifest == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    im->manifest_len = strlen(im->manifest);
    snprintf(im->media_type, sizeof im->media_type, "%s", mt);
    sha256_digest(im->manifest, im->manifest_len, im->digest);
    return 0;
}

static int plan_image(struct image_store *s, const char *id, struct push_image *im,
                      struct merr *err)
{
    snprintf(im->id, sizeof im->id, "%s", id);
    auto_json json_t *rec = store_image_load(s, id, err);
    if (rec == NULL)
        return -1;
    int r = stored_manifest(s, rec, im, err);
    if (r != 0)
        return r < 0 ? -1 : 0;
    return made_manifest(s, rec, im, err);
}

/* ---- mounts ---- */

/* A repository of the same registry (not the target) whose tagged images hold blob: the path
 * to mount from, or NULL. */
static char *mount_source(struct push *p, json_t *tags, const char *blob)
{
    json_t *repos = json_object_get(tags, "Repositories");
    const char *repo;
    json_t *entries;
    size_t dlen = strlen(p->ref.domain);
    json_object_foreach(repos, repo, entries)
    {
        if (strncmp(repo, p->ref.domain, dlen) != 0 || repo[dlen] != '/' ||
            strcmp(repo, p->repo) == 0)
            continue;
        const char *key;
        json_t *v;
        json_object_foreach(entries, key, v)
        {
            const char *id = json_string_value(v);
            struct merr ignored = MERR_INIT;
            auto_json json_t *rec = id != NULL ? store_image_load(p->s, id, &ignored) : NULL;
            json_t *l;
            size_t i;
            json_array_foreach(json_object_get(rec, "layers"), i, l)
            {
                const char *b = json_string_value(json_object_get(l, "blob"));
                if (b != NULL && strcmp(b, blob) == 0)
                    return strdup(repo + dlen + 1);
            }
        }
    }
    return NULL;
}

/* ---- sending ---- */

/* Uploads a blob of the store: a layer (with progress and maybe a mount) or, l NULL, the
 * config. */
static int send_blob(struct push *p, const char *digest, uint64_t size, struct push_layer *l,
                     bool *mounted, struct merr *err)
{
    auto_free char *path = store_path(p->s, "blobs/sha256/%s", image_digest_hex(digest));
    auto_close int fd = path != NULL ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0)
        return merr_set(err, MERR_NOT_FOUND, errno, "blob %s is missing from the store", digest);
    struct blob_upload up = {
        .digest = digest,
        .fd = fd,
        .size = size,
        .mount_from = l != NULL ? l->mount_from : NULL,
        .chunk_size = PUSH_CHUNK_SIZE,
        .progress = l != NULL ? on_upload_progress : NULL,
        .cancelled = l != NULL ? upload_cancelled : config_cancelled,
        .ctx = l != NULL ? (void *)l : (void *)p,
    };
    return registry_blob_upload(p->client, &up, mounted, err);
}

static int push_layer(struct push *p, struct push_layer *l, struct merr *err)
{
    bool exists = false;
    if (registry_blob_exists(p->client, l->digest, &exists, err) < 0)
        return -1;
    if (exists) {
        emit(p, "Layer already exists", l->short_id);
        return 0;
    }
    bool mounted = false;
    if (send_blob(p, l->digest, l->size, l, &mounted, err) < 0)
        return -1;
    if (mounted) {
        char status[REF_NAME_MAX + 32];
        snprintf(status, sizeof status, "Mounted from %s", l->mount_from);
        emit(p, status, l->short_id);
    } else {
        emit(p, "Pushed", l->short_id);
    }
    return 0;
}

static int record_digest(struct push *p, const struct push_image *im, struct merr *err)
{
    char key[2 * REF_NAME_MAX];
    snprintf(key, sizeof key, "%s@%s", p->repo, im->digest);
    pthread_mutex_lock(&p->s->lock);
    json_t *tags = store_tags_load(p->s, err);
    int r = tags != NULL ? 0 : -1;
    if (r == 0 && !tags_set(tags, p->repo, key, im->id))
        r = store_tags_save(p->s, tags, err);
    json_decref(tags);
    pthread_mutex_unlock(&p->s->lock);
    return r;
}

/* Mount sources for the layers. One token scope covers one source repository, so the layers
 * another repository holds are mounted from the first such repository only. */
static int plan_mounts(struct push *p, struct push_image *im, struct merr *err)
{
    pthread_mutex_lock(&p->s->lock);
    auto_json json_t *tags = store_tags_load(p->s, err);
    pthread_mutex_unlock(&p->s->lock);
    if (tags == NULL)
        return -1;
    const char *from = NULL;
    for (size_t k = 0; k < im->n; k++) {
        struct push_layer *l = &im->layers[k];
        l->p = p;
        l->mount_from = mount_source(p, tags, l->digest);
        if (l->mount_from != NULL && from != NULL && strcmp(l->mount_from, from) != 0) {
            free(l->mount_from);
            l->mount_from = NULL;
        }
        if (l->mount_from != NULL)
            from = l->mount_from;
    }
    return registry_client_set_scope(p->client, "push,pull", from, err);
}

static void *layer_worker(void *arg)
{
    struct push *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        size_t k = p->next < p->n ? p->n - 1 - p->next++ : SIZE_MAX; /* top first */
        pthread_mutex_unlock(&p->lock);
        if (k == SIZE_MAX || atomic_load(&p->gone))
            return NULL;
        struct merr err = MERR_INIT;
        if (push_layer(p, &p->layers[k], &err) < 0) {
            pthread_mutex_lock(&p->lock);
            if (!p->failed) {
                p->failed = true;
                p->first_err = err;
            }
            pthread_mutex_unlock(&p->lock);
            atomic_store(&p->gone, true);
            return NULL;
        }
    }
}

/* The layers, max_parallel_uploads at a time (dockerd's --max-concurrent-uploads). */
static int push_layers(struct push *p, struct push_image *im, struct merr *err)
{
    size_t width = p->cfg->max_parallel_uploads > 0 ? p->cfg->max_parallel_uploads : 1;
    if (width > MAX_PARALLEL_UPLOADS)
        width = MAX_PARALLEL_UPLOADS;
    for (size_t k = im->n; k-- > 0;) /* top first, as dockerd lists them */
        emit(p, "Preparing", im->layers[k].short_id);
    for (size_t k = im->n; k-- > 0;)
        if (im->n - 1 - k >= width)
            emit(p, "Waiting", im->layers[k].short_id);
    p->layers = im->layers;
    p->n = im->n;
    p->next = 0;
    p->failed = false;
    pthread_t workers[MAX_PARALLEL_UPLOADS];
    size_t started = 0;
    for (; started < width && started < im->n; started++)
        if (pthread_create(&workers[started], NULL, layer_worker, p) != 0)
            break;
    if (started == 0 && im->n > 0)
        layer_worker(p);
    for (size_t i = 0; i < started; i++)
        pthread_join(workers[i], NULL);
    p->layers = NULL;
    if (p->failed) {
        *err = p->first_err;
        return -1;
    }
    if (atomic_load(&p->gone))
        return merr_set(err, MERR_INTERNAL, 0, "push cancelled");
    return 0;
}

static int push_config(struct push *p, const struct push_image *im, struct merr *err)
{
    bool exists = false;
    bool mounted;
    uint64_t size = 0;
    if (registry_blob_exists(p->client, im->id, &exists, err) < 0)
        return -1;
    if (exists)
        return 0;
    if (blob_size(p->s, im->id, &size, err) < 0)
        return -1;
    return send_blob(p, im->id, size, NULL, &mounted, err);
}

static int push_tag(struct push *p, const char *tag, const char *id, struct merr *err)
{
    struct push_image im = { 0 };
    int r = plan_image(p->s, id, &im, err);
    if (r == 0)
        r = plan_mounts(p, &im, err);
    if (r == 0)
        r = push_layers(p, &im, err);
    if (r == 0)
        r = push_config(p, &im, err);
    if (r == 0)
        r = registry_put_manifest(p->client, tag, im.media_type, im.manifest, im.manifest_len,
                                  err);
    if (r == 0) {
        char status[REF_TAG_MAX + DIGEST_BUF_LEN + 64];
        snprintf(status, sizeof status, "%s: digest: %s size: %zu", tag, im.digest,
                 im.manifest_len);
        emit(p, status, NULL);
        emit_json(p, json_pack("{s:{},s:{s:s,s:s,s:I}}", "progressDetail", "aux", "Tag", tag,
                               "Digest", im.digest, "Size", (json_int_t)im.manifest_len));
        r = record_digest(p, &im, err);
    }
    push_image_clear(&im);
    return r;
}

/* The tags to push: the one asked for, or every tag of the repository. */
static json_t *tags_to_push(struct push *p, const char *tag, struct merr *err)
{
    pthread_mutex_lock(&p->s->lock);
    auto_json json_t *tags = store_tags_load(p->s, err);
    pthread_mutex_unlock(&p->s->lock);
    if (tags == NULL)
        return NULL;
    json_t *out = json_object(); /* tag → image ID */
    json_t *entries = json_object_get(json_object_get(tags, "Repositories"), p->repo);
    size_t rl = strlen(p->repo);
    const char *key;
    json_t *v;
    json_object_foreach(entries, key, v)
    {
        if (strncmp(key, p->repo, rl) != 0 || key[rl] != ':' || !json_is_string(v))
            continue;
        if (tag == NULL || strcmp(key + rl + 1, tag) == 0)
            json_object_set(out, key + rl + 1, v);
    }
    if (json_object_size(out) == 0) {
        json_decref(out);
        char name[REF_NAME_MAX + REF_TAG_MAX + 4];
        snprintf(name, sizeof name, "%s%s%s", p->familiar, tag != NULL ? ":" : "",
                 tag != NULL ? tag : "");
        merr_set(err, MERR_NOT_FOUND, 0, "An image does not exist locally with the tag: %s",
                 name);
        return NULL;
    }
    return out;
}

/* dockerd's words for refused credentials. */
static int auth_words(struct push *p, struct merr *err)
{
    if (err->code != MERR_AUTH)
        return -1;
    return merr_set(err, MERR_AUTH, 0, "%s",
                    registry_client_has_credentials(p->client)
                        ? "unauthorized: authentication required"
                        : "no basic auth credentials");
}

static int push_run(struct push *p, const char *tag, const struct registry_creds *creds,
                    struct merr *err)
{
    auto_json json_t *todo = tags_to_push(p, tag, err);
    if (todo == NULL)
        return -1;
    auto_strv char **endpoints = registry_endpoints(p->cfg, &p->ref, err);
    if (endpoints == NULL)
        return -1;
    /* the last endpoint is the registry itself: mirrors are for pulls */
    size_t last = 0;
    while (endpoints[last + 1] != NULL)
        last++;
    char status[REF_NAME_MAX + 64];
    snprintf(status, sizeof status, "The push refers to repository [%s]", p->repo);
    emit(p, status, NULL);
    p->client = registry_client_new(p->cfg, &p->s->curl, endpoints[last], p->ref.path, creds, err);
    if (p->client == NULL || registry_client_set_scope(p->client, "push,pull", NULL, err) < 0)
        return -1;
    if (registry_ping(p->client, err) < 0)
        return auth_words(p, err);
    const char *t;
    json_t *id;
    json_object_foreach(todo, t, id)
    {
        if (push_tag(p, t, json_string_value(id), err) < 0)
            return auth_words(p, err);
    }
    return 0;
}

static int image_push_run(struct push *p, const char *name, const char *tag,
                          const char *x_registry_auth, struct merr *err)
{
    if (tag != NULL && tag[0] == '\0')
        tag = NULL;
    if (image_ref_parse(name, &p->ref, err) < 0)
        return -1;
    if (tag == NULL && p->ref.tag[0] != '\0' && strchr(name, ':') != NULL &&
        strrchr(name, ':') > strrchr(name, '/'))
        tag = p->ref.tag; /* "name:tag" given whole */
    if (p->ref.digest[0] != '\0')
        return merr_set(err, MERR_INVALID, 0, "cannot push a digest reference");
    image_ref_repo(&p->ref, p->repo, sizeof p->repo);
    image_ref_familiar_repo(&p->ref, p->familiar, sizeof p->familiar);
    struct registry_creds creds;
    if (image_x_registry_auth_decode(x_registry_auth, &creds, err) < 0)
        return -1;
    pthread_mutex_lock(&p->s->lock);
    int r = curl_api_load(&p->s->curl, err);
    pthread_mutex_unlock(&p->s->lock);
    if (r == 0)
        r = push_run(p, tag, &creds, err);
    image_registry_creds_clear(&creds);
    registry_client_free(p->client);
    return r;
}

int image_push(struct image_store *s, const struct registry_config *rc, const char *name,
               const char *tag, const char *x_registry_auth, image_progress_fn cb, void *cb_ctx,
               struct merr *err)
{
    struct push p = { .s = s, .cfg = rc, .cb = cb, .cb_ctx = cb_ctx };
    pthread_mutex_init(&p.lock, NULL);
    pthread_mutex_init(&p.progress_lock, NULL);
    int r = image_push_run(&p, name, tag, x_registry_auth, err);
    pthread_mutex_destroy(&p.lock);
    pthread_mutex_destroy(&p.progress_lock);
    return r;
}
