/* image_pull: resolve, verify, download and extract in parallel, then commit.
 *
 * Each missing layer is streamed once: the bytes go to a temp blob file and, over a
 * socketpair, to layer_extract_fd() running in its own thread, so download and
 * extraction overlap. Up to three layers run at a time. Only when every blob digest
 * and every DiffID has been verified is anything renamed into the store, in order:
 * layer blobs and layer dirs (parents first), config and manifests, image record,
 * then the tag. Any failure removes every temp file and commits nothing. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "error.h"
#include "fsutil.h"
#include "image/auth.h"
#include "image/internal.h"
#include "image/manifest.h"
#include "layer/layer.h"
#include "log.h"

#define MAX_PARALLEL_LAYERS 16 /* --max-concurrent-downloads at most */
#define PROGRESS_INTERVAL_MS 100

struct pull;

struct layer_job {
    struct pull *p;
    size_t index;
    const struct descriptor *desc;
    const char *diff_id;  /* expected, from the config */
    const char *chain_id;
    char short_id[13];
    bool exists;          /* "Already exists": not downloaded */
    char *tmp_dir;        /* tmp/d-XXXXXX with blob and diff/ */
    char *blob_path;
    int blob_fd;
    int sock[2];          /* [0] we write, [1] the extractor reads */
    bool sock_closed;
    pthread_t extractor;
    atomic_bool extract_done;
    int extract_rc;
    struct merr extract_err;
    struct layer_result res;
    uint64_t size;        /* uncompressed */
    int64_t last_progress; /* clock_now_ms() */
    int rc;
    struct merr err;
};

struct pull {
    struct image_store *s;
    const struct registry_config *cfg;
    struct registry_client *client;
    struct image_ref ref;
    char familiar[REF_NAME_MAX + 2];
    struct platform platform;
    bool platform_explicit;
    const struct registry_creds *creds;
    image_progress_fn cb;
    void *cb_ctx;
    pthread_mutex_t progress_lock;

    struct fetched top;    /* what the tag or digest points at */
    struct fetched image;  /* the image manifest (a copy of top when not an index) */
    struct fetched config;
    struct manifest *m;
    struct image_config_info *ci;
    char (*chain)[DIGEST_BUF_LEN];
    struct layer_job *jobs;
    size_t n;

    pthread_mutex_t lock;  /* next, first_err */
    size_t next;
    atomic_bool abort;
    bool failed;
    struct merr first_err;
};

/* ---- progress ---- */

static void emit_json(struct pull *p, json_t *o)
{
    auto_free char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (text == NULL || p->cb == NULL)
        return;
    auto_free char *line = NULL;
    if (asprintf(&line, "%s\r\n", text) < 0)
        return;
    pthread_mutex_lock(&p->progress_lock);
    int r = p->cb(line, p->cb_ctx);
    pthread_mutex_unlock(&p->progress_lock);
    if (r < 0)
        atomic_store(&p->abort, true);
}

/* {"status":...[,"progressDetail":{}][,"id":...]}: docker adds an empty
 * progressDetail to per-layer events only. */
static void emit_status(struct pull *p, const char *status, const char *id, bool layer)
{
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string(status));
    if (layer)
        json_object_set_new(o, "progressDetail", json_object());
    if (id != NULL)
        json_object_set_new(o, "id", json_string(id));
    emit_json(p, o);
}

static void emit(struct pull *p, const char *status, const char *layer_id)
{
    emit_status(p, status, layer_id, layer_id != NULL);
}

static void emit_bytes(struct pull *p, const char *status, const char *id, uint64_t cur,
                       uint64_t total)
{
    char text[128];
    image_progress_text(cur, total, text, sizeof text);
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string(status));
    json_object_set_new(o, "progressDetail",
                        json_pack("{s:I,s:I}", "current", (json_int_t)cur, "total",
                                  (json_int_t)total));
    json_object_set_new(o, "progress", json_string(text));
    json_object_set_new(o, "id", json_string(id));
    emit_json(p, o);
}

static void pull_fail(struct pull *p, const struct merr *err)
{
    pthread_mutex_lock(&p->lock);
    if (!p->failed) {
        p->failed = true;
        p->first_err = *err;
    }
    pthread_mutex_unlock(&p->lock);
    atomic_store(&p->abort, true);
}

/* ---- one layer ---- */

static void *extract_main(void *arg)
{
    struct layer_job *j = arg;
    const struct descriptor *d = j->desc;
    enum layer_compression comp = d->comp == LAYER_COMPRESSION_GZIP   ? LAYER_COMP_GZIP
                                  : d->comp == LAYER_COMPRESSION_ZSTD ? LAYER_COMP_ZSTD
                                                                      : LAYER_COMP_NONE;
    struct layer_limits lim = store_layer_limits(j->p->s);
    auto_free char *diff = NULL;
    if (asprintf(&diff, "%s/diff", j->tmp_dir) < 0) {
        j->extract_rc = merr_set(&j->extract_err, MERR_NOMEM, ENOMEM, "cannot allocate");
    } else {
        j->extract_rc = layer_extract_fd(j->sock[1], comp, diff, &lim, &j->res, &j->extract_err);
        if (j->extract_rc < 0 && j->extract_err.code == MERR_OK)
            merr_set(&j->extract_err, MERR_INTERNAL, 0, "layer extraction failed");
    }
    /* Publish the result before the writer can see EPIPE. */
    atomic_store(&j->extract_done, true);
    close(j->sock[1]);
    j->sock[1] = -1;
    return NULL;
}

static int job_write(void *ctx, const void *buf, size_t len, struct merr *err)
{
    struct layer_job *j = ctx;
    const char *p = buf;
    for (size_t left = len; left > 0;) {
        ssize_t n = write(j->blob_fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return merr_set(err, MERR_IO, errno, "cannot write '%s'", j->blob_path);
        p += n;
        left -= (size_t)n;
    }
    p = buf;
    for (size_t left = len; left > 0 && !j->sock_closed;) {
        ssize_t n = send(j->sock[0], p, left, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
            j->sock_closed = true;
            if (atomic_load(&j->extract_done) && j->extract_rc < 0) {
                *err = j->extract_err;
                return -1;
            }
            break; /* the extractor is done: trailing padding only */
        }
        if (n < 0)
            return merr_set(err, MERR_IO, errno, "cannot feed layer extraction");
        p += n;
        left -= (size_t)n;
    }
    return 0;
}

static void job_progress(void *ctx, uint64_t cur, uint64_t total)
{
    struct layer_job *j = ctx;
    int64_t now = clock_now_ms();
    if (now - j->last_progress < PROGRESS_INTERVAL_MS && cur != total)
        return;
    j->last_progress = now;
    emit_bytes(j->p, "Downloading", j->short_id, cur, total);
}

static bool job_cancelled(void *ctx)
{
    struct layer_job *j = ctx;
    return atomic_load(&j->p->abort);
}

static int job_prepare(struct layer_job *j, struct merr *err)
{
    if (store_tmp_dir(j->p->s, &j->tmp_dir, err) < 0)
        return -1;
    auto_free char *diff = NULL;
    if (asprintf(&diff, "%s/diff", j->tmp_dir) < 0 || asprintf(&j->blob_path, "%s/blob", j->tmp_dir) < 0)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    if (mkdir(diff, 0755) < 0)
        return merr_set(err, MERR_IO, errno, "cannot create '%s'", diff);
    j->blob_fd = open(j->blob_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (j->blob_fd < 0)
        return merr_set(err, MERR_IO, errno, "cannot create '%s'", j->blob_path);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, j->sock) < 0)
        return merr_set(err, MERR_IO, errno, "cannot create a socket pair");
    return 0;
}

static int job_run(struct layer_job *j, struct merr *err)
{
    struct pull *p = j->p;
    if (job_prepare(j, err) < 0)
        return -1;
    int r = pthread_create(&j->extractor, NULL, extract_main, j);
    if (r != 0) {
        close(j->sock[1]);
        j->sock[1] = -1;
        return merr_set(err, MERR_IO, r, "cannot start layer extraction");
    }
    struct blob_sink sink = {
        .write = job_write, .progress = job_progress, .cancelled = job_cancelled, .ctx = j
    };
    emit_bytes(p, "Downloading", j->short_id, 0, (uint64_t)j->desc->size);
    int dl = registry_stream_blob(p->client, j->desc->digest, (uint64_t)j->desc->size, &sink, err);
    /* EOF for the extractor, then wait for it whatever happened */
    close(j->sock[0]);
    j->sock[0] = -1;
    pthread_join(j->extractor, NULL);
    if (dl < 0) {
        /* a broken extraction surfaces as a write error: report the cause */
        if (j->extract_rc < 0 && j->sock_closed)
            *err = j->extract_err;
        return -1;
    }
    emit(p, "Verifying Checksum", j->short_id);
    if (fsync(j->blob_fd) < 0)
        return merr_set(err, MERR_IO, errno, "cannot sync '%s'", j->blob_path);
    close(j->blob_fd);
    j->blob_fd = -1;
    emit(p, "Download complete", j->short_id);
    if (j->extract_rc < 0) {
        *err = j->extract_err;
        return merr_prefix(err, "layer %s", j->short_id);
    }
    /* The uncompressed stream must be the one the config names (case 10). */
    if (strcmp(j->res.diff_id, j->diff_id) != 0)
        return merr_set(err, MERR_CORRUPT, 0, "layer %s: diff id %s does not match config's %s",
                        j->short_id, j->res.diff_id, j->diff_id);
    j->size = j->res.size;
    emit_bytes(p, "Extracting", j->short_id, (uint64_t)j->desc->size, (uint64_t)j->desc->size);
    return 0;
}

static void *worker_main(void *arg)
{
    struct pull *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (p->next < p->n && p->jobs[p->next].exists)
            p->next++;
        size_t i = p->next < p->n ? p->next++ : p->n;
        pthread_mutex_unlock(&p->lock);
        if (i == p->n || atomic_load(&p->abort))
            return NULL;
        struct layer_job *j = &p->jobs[i];
        if (job_run(j, &j->err) < 0) {
            j->rc = -1;
            pull_fail(p, &j->err);
        }
    }
}

static void job_cleanup(struct layer_job *j)
{
    if (j->blob_fd >= 0)
        close(j->blob_fd);
    if (j->sock[0] >= 0)
        close(j->sock[0]);
    if (j->sock[1] >= 0)
        close(j->sock[1]);
    if (j->tmp_dir != NULL) {
        struct merr ignored = MERR_INIT;
        if (fs_remove_tree(j->tmp_dir, &ignored) < 0) {
            /* left for the next image_store_open() to collect */
        }
    }
    free(j->tmp_dir);
    free(j->blob_path);
}

static int download_layers(struct pull *p, struct merr *err)
{
    size_t todo = 0;
    for (size_t i = 0; i < p->n; i++) {
        struct layer_job *j = &p->jobs[i];
        emit(p, j->exists ? "Already exists" : "Pulling fs layer", j->short_id);
        if (!j->exists)
            todo++;
    }
    unsigned want = p->cfg->max_parallel_layers;
    if (want == 0)
        want = 1;
    if (want > MAX_PARALLEL_LAYERS)
        want = MAX_PARALLEL_LAYERS;
    size_t nworkers = todo < want ? todo : want;
    pthread_t workers[MAX_PARALLEL_LAYERS];
    size_t started = 0;
    for (; started < nworkers; started++) {
        int r = pthread_create(&workers[started], NULL, worker_main, p);
        if (r != 0) {
            struct merr e = MERR_INIT;
            merr_set(&e, MERR_IO, r, "cannot start a download thread");
            pull_fail(p, &e);
            break;
        }
    }
    if (started == 0 && todo > 0 && !p->failed) /* no thread: do it here */
        worker_main(p);
    for (size_t i = 0; i < started; i++)
        pthread_join(workers[i], NULL);
    if (p->failed) {
        *err = p->first_err;
        return -1;
    }
    if (atomic_load(&p->abort))
        return merr_set(err, MERR_INTERNAL, 0, "pull cancelled");
    return 0;
}

/* ---- resolve ---- */

static int fetch_top(struct pull *p, struct merr *err)
{
    auto_strv char **endpoints = registry_endpoints(p->cfg, &p->ref, err);
    if (endpoints == NULL)
        return -1;
    const char *reference = p->ref.digest[0] ? p->ref.digest : p->ref.tag;
    for (size_t i = 0; endpoints[i] != NULL; i++) {
        bool last = endpoints[i + 1] == NULL;
        registry_client_free(p->client);
        /* Mirrors come first and never get the credentials meant for docker.io. */
        const struct registry_creds *creds = last ? p->creds : NULL;
        p->client = registry_client_new(p->cfg, &p->s->curl, endpoints[i], p->ref.path, creds, err);
        if (p->client == NULL)
            return -1;
        if (registry_ping(p->client, err) == 0 &&
            registry_get_manifest(p->client, reference, &p->top, err) == 0)
            return 0;
        /* Fall back to the next endpoint (a mirror failed) unless the content was bad. */
        if (last || err->code == MERR_CORRUPT || err->code == MERR_INVALID)
            return -1;
        mlog_debug(p->cfg->log, "pull: endpoint %s failed: %s", endpoints[i], err->msg);
    }
    return merr_set(err, MERR_INTERNAL, 0, "no registry endpoint");
}

static int resolve_image(struct pull *p, struct merr *err)
{
    auto_manifest struct manifest *top = NULL;
    if (image_manifest_parse(p->top.buf, p->top.len, p->top.content_type, &top, err) < 0)
        return -1;
    if (top->kind == MANIFEST_KIND_INDEX) {
        const struct descriptor *d = image_manifest_select_platform(top, &p->platform, err);
        if (d == NULL)
            return -1;
        if (registry_get_manifest(p->client, d->digest, &p->image, err) < 0)
            return -1;
        if (image_manifest_parse(p->image.buf, p->image.len, p->image.content_type, &p->m, err) < 0)
            return -1;
        if (p->m->kind != MANIFEST_KIND_IMAGE)
            return merr_set(err, MERR_UNSUPPORTED, 0, "nested image index '%s'", d->digest);
    } else {
        p->image = p->top;
        p->image.buf = malloc(p->top.len + 1);
        if (p->image.buf == NULL)
            return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
        memcpy(p->image.buf, p->top.buf, p->top.len + 1);
        p->m = steal_pointer(&top);
    }

    const struct descriptor *cd = &p->m->config;
    if (cd->size > (int64_t)IMAGE_CONFIG_MAX_SIZE)
        return merr_set(err, MERR_INVALID, 0, "image config too large: %" PRId64 " bytes",
                        cd->size);
    if (registry_get_blob(p->client, cd->digest, (size_t)cd->size, &p->config, err) < 0)
        return merr_prefix(err, "image config");
    if (image_config_parse(p->config.buf, p->config.len, &p->ci, err) < 0)
        return -1;
    if (p->platform_explicit &&
        (strcmp(p->ci->platform.os, p->platform.os) != 0 ||
         strcmp(p->ci->platform.arch, p->platform.arch) != 0))
        return merr_set(err, MERR_NOT_FOUND, 0,
                        "image with reference %s was found but does not match the specified "
                        "platform: wanted %s/%s, actual: %s/%s",
                        p->familiar, p->platform.os, p->platform.arch, p->ci->platform.os,
                        p->ci->platform.arch);
    /* The manifest's layers and the config's rootfs must describe the same stack. */
    if (p->ci->n_diff_ids != p->m->n_layers)
        return merr_set(err, MERR_CORRUPT, 0,
                        "manifest has %zu layers but the config lists %zu diff ids",
                        p->m->n_layers, p->ci->n_diff_ids);
    return 0;
}

static int plan_layers(struct pull *p, struct merr *err)
{
    p->n = p->m->n_layers;
    p->chain = calloc(p->n ? p->n : 1, sizeof *p->chain);
    p->jobs = calloc(p->n ? p->n : 1, sizeof *p->jobs);
    if (p->chain == NULL || p->jobs == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    for (size_t i = 0; i < p->n; i++) {
        struct layer_job *j = &p->jobs[i];
        j->blob_fd = j->sock[0] = j->sock[1] = -1;
    }
    if (image_chain_ids_compute((const char(*)[DIGEST_BUF_LEN])p->ci->diff_ids, p->n, p->chain, err) < 0)
        return -1;
    for (size_t i = 0; i < p->n; i++) {
        struct layer_job *j = &p->jobs[i];
        j->p = p;
        j->index = i;
        j->desc = &p->m->layers[i];
        j->diff_id = p->ci->diff_ids[i];
        j->chain_id = p->chain[i];
        snprintf(j->short_id, sizeof j->short_id, "%.12s", image_digest_hex(j->desc->digest));
        j->exists = store_layer_exists(p->s, j->chain_id);
        if (j->exists && store_layer_size(p->s, j->chain_id, &j->size, err) < 0)
            return -1;
    }
    return 0;
}

/* ---- commit ---- */

static json_t *image_record(struct pull *p)
{
    json_t *layers = json_array();
    uint64_t total = 0;
    for (size_t i = 0; i < p->n; i++) {
        struct layer_job *j = &p->jobs[i];
        total += j->size;
        json_array_append_new(layers,
                              json_pack("{s:s,s:s,s:s,s:I,s:s}", "blob", j->desc->digest, "chain",
                                        j->chain_id, "diff", j->diff_id, "size",
                                        (json_int_t)j->size, "media_type", j->desc->media_type));
    }
    return json_pack("{s:s,s:[],s:o,s:I,s:I}", "id", p->m->config.digest, "manifests", "layers",
                     layers, "size", (json_int_t)total, "pulled", (json_int_t)time(NULL));
}

/* Records a manifest (or index) digest the image was pulled through; true if new. */
static bool record_add_manifest(json_t *rec, const char *digest)
{
    json_t *list = json_object_get(rec, "manifests");
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) if (strcmp(json_string_value(v), digest) == 0) return false;
    json_array_append_new(list, json_string(digest));
    return true;
}

static int save_record(struct pull *p, struct merr *err)
{
    const char *id = p->m->config.digest;
    bool exists = store_image_exists(p->s, id);
    auto_json json_t *rec = exists ? store_image_load(p->s, id, err) : image_record(p);
    if (rec == NULL)
        return exists ? -1 : merr_set(err, MERR_NOMEM, ENOMEM, "cannot build image record");
    if (!json_is_array(json_object_get(rec, "manifests")))
        json_object_set_new(rec, "manifests", json_array());
    bool changed = record_add_manifest(rec, p->image.digest);
    changed = record_add_manifest(rec, p->top.digest) || changed;
    if (exists && !changed)
        return 0;
    return store_image_save(p->s, id, rec, err);
}

/* Caller holds s->lock. */
static int commit_locked(struct pull *p, bool *tag_unchanged, struct merr *err)
{
    struct image_store *s = p->s;
    const char *id = p->m->config.digest;
    /* The extracted trees were written without fsync; make them durable at once. */
    auto_close int rootfd = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0 || syncfs(rootfd) < 0)
        return merr_set(err, MERR_IO, errno, "cannot sync '%s'", s->root);
    for (size_t i = 0; i < p->n; i++) {
        struct layer_job *j = &p->jobs[i];
        if (j->exists) {
            if (!store_layer_exists(s, j->chain_id))
                return merr_set(err, MERR_BUSY, 0, "layer %s was removed during the pull",
                                j->chain_id);
            continue;
        }
        if (store_blob_commit_file(s, j->blob_path, j->desc->digest, err) < 0 ||
            store_layer_commit(s, j->tmp_dir, j->chain_id, i > 0 ? j[-1].chain_id : NULL,
                               j->diff_id, j->size, err) < 0)
            return -1;
        free(j->tmp_dir);
        j->tmp_dir = NULL;
        emit(p, "Pull complete", j->short_id);
    }
    if (store_blob_put(s, id, p->config.buf, p->config.len, err) < 0 ||
        store_blob_put(s, p->image.digest, p->image.buf, p->image.len, err) < 0 ||
        store_blob_put(s, p->top.digest, p->top.buf, p->top.len, err) < 0)
        return -1;
    if (save_record(p, err) < 0)
        return -1;
    auto_json json_t *tags = store_tags_load(s, err);
    if (tags == NULL)
        return -1;
    char repo[REF_NAME_MAX + 2], key[2 * REF_NAME_MAX];
    image_ref_repo(&p->ref, repo, sizeof repo);
    *tag_unchanged = true;
    if (p->ref.tag[0] != '\0' && p->ref.digest[0] == '\0') {
        snprintf(key, sizeof key, "%s:%s", repo, p->ref.tag);
        *tag_unchanged = tags_set(tags, repo, key, id);
    }
    snprintf(key, sizeof key, "%s@%s", repo, p->top.digest);
    bool digest_unchanged = tags_set(tags, repo, key, id);
    if (p->ref.digest[0] != '\0')
        *tag_unchanged = digest_unchanged;
    return store_tags_save(s, tags, err);
}

static void pull_release(struct pull *p)
{
    for (size_t i = 0; p->jobs != NULL && i < p->n; i++)
        job_cleanup(&p->jobs[i]);
    free(p->jobs);
    free(p->chain);
    image_manifest_free(p->m);
    image_config_info_free(p->ci);
    fetched_clear(&p->top);
    fetched_clear(&p->image);
    fetched_clear(&p->config);
    registry_client_free(p->client);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->progress_lock);
}

static int pull_run(struct pull *p, char **image_id_out, struct merr *err)
{
    char status[REF_NAME_MAX * 3];
    snprintf(status, sizeof status, "Pulling from %s", p->ref.path);
    emit_status(p, status, p->ref.digest[0] ? p->ref.digest : p->ref.tag, false);
    if (fetch_top(p, err) < 0 || resolve_image(p, err) < 0 || plan_layers(p, err) < 0)
        return -1;
    const char *id = p->m->config.digest;
    bool had_image = store_image_exists(p->s, id);
    for (size_t i = 0; had_image && i < p->n; i++)
        had_image = p->jobs[i].exists;
    if (!had_image && download_layers(p, err) < 0)
        return -1;
    if (atomic_load(&p->abort))
        return merr_set(err, MERR_INTERNAL, 0, "pull cancelled");
    bool tag_unchanged = false;
    pthread_mutex_lock(&p->s->lock);
    int r = commit_locked(p, &tag_unchanged, err);
    pthread_mutex_unlock(&p->s->lock);
    if (r < 0)
        return -1;
    snprintf(status, sizeof status, "Digest: %s", p->top.digest);
    emit(p, status, NULL);
    char name[REF_NAME_MAX * 2];
    if (p->ref.digest[0] != '\0')
        snprintf(name, sizeof name, "%s@%s", p->familiar, p->ref.digest);
    else
        snprintf(name, sizeof name, "%s:%s", p->familiar, p->ref.tag);
    snprintf(status, sizeof status, "Status: %s for %s",
             had_image && tag_unchanged ? "Image is up to date" : "Downloaded newer image", name);
    emit(p, status, NULL);
    if (image_id_out != NULL && (*image_id_out = strdup(id)) == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    return 0;
}

int image_pull(struct image_store *s, const struct registry_config *rc, const char *ref,
               const char *platform, const char *x_registry_auth, image_progress_fn cb,
               void *cb_ctx, char **image_id_out, struct merr *err)
{
    if (image_id_out != NULL)
        *image_id_out = NULL;
    struct pull p = { .s = s, .cfg = rc, .cb = cb, .cb_ctx = cb_ctx };
    if (image_ref_parse(ref, &p.ref, err) < 0)
        return -1;
    if (image_platform_parse(platform, &p.platform, err) < 0)
        return -1;
    p.platform_explicit = platform != NULL && platform[0] != '\0';
    image_ref_familiar_repo(&p.ref, p.familiar, sizeof p.familiar);
    struct registry_creds creds;
    if (image_x_registry_auth_decode(x_registry_auth, &creds, err) < 0)
        return -1;
    pthread_mutex_lock(&s->lock);
    int loaded = curl_api_load(&s->curl, err);
    pthread_mutex_unlock(&s->lock);
    if (loaded < 0) {
        image_registry_creds_clear(&creds);
        return -1;
    }
    pthread_mutex_init(&p.lock, NULL);
    pthread_mutex_init(&p.progress_lock, NULL);
    p.creds = &creds;
    int r = pull_run(&p, image_id_out, err);
    image_registry_creds_clear(&creds);
    pull_release(&p);
    return r;
}
