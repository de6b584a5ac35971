/* Content store: blobs by digest, layers by ChainID, image records and the tag
 * index. Every file becomes visible only by rename() of a synced temp file from
 * <root>/tmp/, and tmp/ is emptied at open, so a crash never leaves a partial
 * object under a digest (case 23). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "image/internal.h"
#include "image/manifest.h"
#include "strv.h"

#define STORE_MAX_UNCOMPRESSED (64ULL << 30)
#define STORE_MAX_ENTRIES (4ULL << 20)

char *store_path(const struct image_store *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *rel = NULL;
    int r = vasprintf(&rel, fmt, ap);
    va_end(ap);
    if (r < 0)
        return NULL;
    char *out = NULL;
    r = asprintf(&out, "%s/%s", s->root, rel);
    free(rel);
    return r < 0 ? NULL : out;
}

static int tmp_file(struct image_store *s, char **path_out, int *fd_out, struct merr *err)
{
    char *path = store_path(s, "tmp/f-XXXXXX");
    if (path == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0) {
        merr_set(err, MERR_IO, errno, "cannot create a temp file in '%s/tmp'", s->root);
        free(path);
        return -1;
    }
    *path_out = path;
    *fd_out = fd;
    return 0;
}

int store_tmp_dir(struct image_store *s, char **path_out, struct merr *err)
{
    char *path = store_path(s, "tmp/d-XXXXXX");
    if (path == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    if (mkdtemp(path) == NULL) {
        merr_set(err, MERR_IO, errno, "cannot create a temp directory in '%s/tmp'", s->root);
        free(path);
        return -1;
    }
    *path_out = path;
    return 0;
}

int store_write_atomic(struct image_store *s, const char *path, const void *buf, size_t len,
                       struct merr *err)
{
    auto_free char *tmp = NULL;
    auto_close int fd = -1;
    if (tmp_file(s, &tmp, &fd, err) < 0)
        return -1;
    if (fchmod(fd, 0644) < 0 || fs_write_all(fd, buf, len) < 0 || fsync(fd) < 0) {
        merr_set(err, MERR_IO, errno, "cannot write '%s'", tmp);
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) < 0) {
        merr_set(err, MERR_IO, errno, "cannot rename to '%s'", path);
        unlink(tmp);
        return -1;
    }
    return fs_sync_dir_of(path, err);
}

/* ---- open ---- */

struct image_store *image_store_open(const char *root, const struct mlog *log, struct merr *err)
{
    auto_free struct image_store *s = calloc(1, sizeof *s);
    if (s == NULL) {
        merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
        return NULL;
    }
    s->root = strdup(root);
    if (s->root == NULL) {
        merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
        return NULL;
    }
    size_t n = strlen(s->root);
    while (n > 1 && s->root[n - 1] == '/')
        s->root[--n] = '\0';
    s->log = log;
    s->max_layer_uncompressed = STORE_MAX_UNCOMPRESSED;
    s->max_layer_entries = STORE_MAX_ENTRIES;
    s->driver = &layer_driver_overlay;
    static const char *const dirs[] = { "", "blobs/sha256", "layers/sha256", "images/sha256",
                                        "tmp" };
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        auto_free char *p = store_path(s, "%s", dirs[i]);
        if (p == NULL || fs_mkdir_p(p, 0700, err) < 0) {
            if (p == NULL)
                merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
            free(s->root);
            return NULL;
        }
    }
    /* Leftovers of an interrupted pull: never visible under a digest, now collected. */
    auto_free char *tmp = store_path(s, "tmp");
    auto_closedir DIR *d = tmp != NULL ? opendir(tmp) : NULL;
    if (d == NULL) {
        merr_set(err, MERR_IO, errno, "cannot open '%s'", tmp != NULL ? tmp : root);
        free(s->root);
        return NULL;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        auto_free char *left = path_join(tmp, e->d_name);
        if (fs_remove_tree(left, err) < 0) {
            free(s->root);
            return NULL;
        }
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->uses_lock, NULL);
    return steal_pointer(&s);
}

void image_store_free(struct image_store *s)
{
    if (s == NULL)
        return;
    image_build_cache_count(s);
    strv_free(s->pending_uses);
    pthread_mutex_destroy(&s->uses_lock);
    pthread_mutex_destroy(&s->lock);
    curl_api_unload(&s->curl);
    free(s->root);
    free(s);
}

int image_store_use_driver(struct image_store *s, const struct layer_driver *d,
                           struct merr *err)
{
    s->driver = d;
    auto_free char *p = store_path(s, "%s/sha256", d->dir);
    if (p == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    return fs_mkdir_p(p, 0700, err);
}

const char *image_store_driver_name(const struct image_store *s)
{
    return s->driver->name;
}

struct layer_limits store_layer_limits(const struct image_store *s)
{
    return (struct layer_limits){ .max_uncompressed = s->max_layer_uncompressed,
                                  .max_entries = s->max_layer_entries,
                                  .whiteout_files = s->driver->whiteout_files };
}

void image_store_set_layer_limits(struct image_store *s, uint64_t max_uncompressed,
                                  uint64_t max_entries)
{
    s->max_layer_uncompressed = max_uncompressed;
    s->max_layer_entries = max_entries;
}

/* ---- blobs ---- */

static char *blob_path(struct image_store *s, const char *digest)
{
    if (!image_digest_is_valid(digest))
        return NULL;
    return store_path(s, "blobs/sha256/%s", image_digest_hex(digest));
}

bool store_blob_exists(struct image_store *s, const char *digest)
{
    auto_free char *p = blob_path(s, digest);
    struct stat st;
    return p != NULL && lstat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int store_blob_commit_file(struct image_store *s, const char *tmp_path, const char *digest,
                           struct merr *err)
{
    if (image_digest_validate(digest, err) < 0)
        return -1;
    auto_free char *p = blob_path(s, digest);
    if (p == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    if (chmod(tmp_path, 0644) < 0 || rename(tmp_path, p) < 0)
        return merr_set(err, MERR_IO, errno, "cannot store blob '%s'", digest);
    return fs_sync_dir_of(p, err);
}

int store_blob_put(struct image_store *s, const char *digest, const void *buf, size_t len,
                   struct merr *err)
{
    if (image_digest_validate(digest, err) < 0)
        return -1;
    char got[DIGEST_BUF_LEN];
    sha256_digest(buf, len, got);
    if (strcmp(got, digest) != 0)
        return merr_set(err, MERR_CORRUPT, 0, "blob '%s' does not match its content", digest);
    if (store_blob_exists(s, digest))
        return 0;
    auto_free char *p = blob_path(s, digest);
    if (p == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    return store_write_atomic(s, p, buf, len, err);
}

int store_blob_get(struct image_store *s, const char *digest, size_t max, char **buf,
                   size_t *len, struct merr *err)
{
    if (image_digest_validate(digest, err) < 0)
        return -1;
    auto_free char *p = blob_path(s, digest);
    if (p == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    if (fs_read_regular(p, max, buf, len, err) < 0)
        return -1;
    char got[DIGEST_BUF_LEN];
    sha256_digest(*buf, *len, got);
    if (strcmp(got, digest) != 0) {
        free(*buf);
        *buf = NULL;
        return merr_set(err, MERR_CORRUPT, 0, "stored blob '%s' is corrupt", digest);
    }
    return 0;
}

void store_blob_delete(struct image_store *s, const char *digest)
{
    auto_free char *p = blob_path(s, digest);
    if (p != NULL)
        unlink(p);
}

/* ---- layers ---- */

static char *layer_path(struct image_store *s, const char *chain_id, const char *leaf)
{
    if (!image_digest_is_valid(chain_id))
        return NULL;
    return store_path(s, "%s/sha256/%s%s%s", s->driver->dir, image_digest_hex(chain_id), leaf ? "/" : "",
                      leaf ? leaf : "");
}

bool store_layer_exists(struct image_store *s, const char *chain_id)
{
    auto_free char *p = layer_path(s, chain_id, "diffid");
    struct stat st;
    return p != NULL && lstat(p, &st) == 0;
}

static int write_small(const char *dir, const char *name, const char *text, struct merr *err)
{
    auto_free char *p = NULL;
    if (asprintf(&p, "%s/%s", dir, name) < 0)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    auto_close int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0 || fs_write_all(fd, text, strlen(text)) < 0 || fsync(fd) < 0)
        return merr_set(err, MERR_IO, errno, "cannot write '%s'", p);
    return 0;
}

int store_layer_commit(struct image_store *s, const char *tmp_dir, const char *chain_id,
                       const char *parent_chain_id, const char *diff_id, uint64_t size,
                       struct merr *err)
{
    char num[32];
    snprintf(num, sizeof num, "%" PRIu64, size);
    if (image_digest_validate(chain_id, err) < 0 || image_digest_validate(diff_id, err) < 0 ||
        (parent_chain_id != NULL && image_digest_validate(parent_chain_id, err) < 0))
        return -1;
    if (s->driver->finish_layer != NULL) {
        /* vfs: the chain as one directory, from the parent's (committed before its child) */
        auto_free char *diff = NULL, *parent = NULL;
        if (asprintf(&diff, "%s/diff", tmp_dir) < 0 ||
            (parent_chain_id != NULL && (parent = layer_path(s, parent_chain_id, "diff")) == NULL))
            return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
        if (s->driver->finish_layer(diff, parent, err) < 0)
            return merr_prefix(err, "layer %s", chain_id);
    }
    if (write_small(tmp_dir, "diffid", diff_id, err) < 0 ||
        write_small(tmp_dir, "size", num, err) < 0 ||
        (parent_chain_id != NULL && write_small(tmp_dir, "parent", parent_chain_id, err) < 0))
        return -1;
    auto_free char *dst = layer_path(s, chain_id, NULL);
    if (dst == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    if (rename(tmp_dir, dst) < 0) {
        if (errno != EEXIST && errno != ENOTEMPTY)
            return merr_set(err, MERR_IO, errno, "cannot commit layer '%s'", chain_id);
        /* another pull committed the same layer first: the content is identical */
        return fs_remove_tree(tmp_dir, err);
    }
    return fs_sync_dir_of(dst, err);
}

int store_layer_size(struct image_store *s, const char *chain_id, uint64_t *size,
                     struct merr *err)
{
    auto_free char *p = layer_path(s, chain_id, "size");
    auto_free char *buf = NULL;
    size_t len;
    if (p == NULL)
        return merr_set(err, MERR_INVALID, 0, "invalid chain id");
    if (fs_read_regular(p, 64, &buf, &len, err) < 0)
        return -1;
    *size = strtoull(buf, NULL, 10);
    return 0;
}

int store_layer_delete(struct image_store *s, const char *chain_id, struct merr *err)
{
    auto_free char *p = layer_path(s, chain_id, NULL);
    if (p == NULL)
        return merr_set(err, MERR_INVALID, 0, "invalid chain id");
    /* Move it out of sight first so a half-deleted layer is never used. */
    auto_free char *tmp = store_path(s, "tmp/rm-%s", image_digest_hex(chain_id));
    if (tmp == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    if (rename(p, tmp) < 0) {
        if (errno == ENOENT)
            return 0;
        return merr_set(err, MERR_IO, errno, "cannot remove layer '%s'", chain_id);
    }
    return fs_remove_tree(tmp, err);
}

/* ---- image records ---- */

static char *image_path(struct image_store *s, const char *id)
{
    if (!image_digest_is_valid(id))
        return NULL;
    return store_path(s, "images/sha256/%s", image_digest_hex(id));
}

json_t *store_image_load(struct image_store *s, const char *id, struct merr *err)
{
    auto_free char *p = image_path(s, id);
    if (p == NULL) {
        merr_set(err, MERR_INVALID, 0, "invalid image id '%.80s'", id);
        return NULL;
    }
    auto_free char *buf = NULL;
    size_t len;
    if (fs_read_regular(p, 16u << 20, &buf, &len, err) < 0)
        return NULL;
    json_error_t jerr;
    json_t *rec = json_loadb(buf, len, 0, &jerr);
    if (rec == NULL || !json_is_object(rec)) {
        json_decref(rec);
        merr_set(err, MERR_CORRUPT, 0, "cannot parse image record '%s': %s", p, jerr.text);
        return NULL;
    }
    return rec;
}

int store_image_save(struct image_store *s, const char *id, json_t *rec, struct merr *err)
{
    auto_free char *p = image_path(s, id);
    if (p == NULL)
        return merr_set(err, MERR_INVALID, 0, "invalid image id '%.80s'", id);
    auto_free char *text = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
    if (text == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot serialise image record");
    return store_write_atomic(s, p, text, strlen(text), err);
}

bool store_image_exists(struct image_store *s, const char *id)
{
    auto_free char *p = image_path(s, id);
    struct stat st;
    return p != NULL && lstat(p, &st) == 0;
}

int store_image_delete(struct image_store *s, const char *id, struct merr *err)
{
    auto_free char *p = image_path(s, id);
    if (p == NULL)
        return merr_set(err, MERR_INVALID, 0, "invalid image id '%.80s'", id);
    if (unlink(p) < 0 && errno != ENOENT)
        return merr_set(err, MERR_IO, errno, "cannot remove '%s'", p);
    return fs_sync_dir_of(p, err);
}

char **store_image_ids(struct image_store *s, struct merr *err)
{
    auto_free char *dir = store_path(s, "images/sha256");
    auto_closedir DIR *d = dir != NULL ? opendir(dir) : NULL;
    if (d == NULL) {
        merr_set(err, MERR_IO, errno, "cannot open '%s'", dir != NULL ? dir : s->root);
        return NULL;
    }
    size_t n = 0, cap = 16;
    auto_strv char **ids = calloc(cap, sizeof *ids);
    if (ids == NULL)
        goto nomem;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char id[DIGEST_BUF_LEN];
        if (strlen(e->d_name) != 64)
            continue;
        memcpy(id, "sha256:", 7);
        memcpy(id + 7, e->d_name, 65);
        if (!image_digest_is_valid(id))
            continue;
        if (n + 2 > cap) {
            char **nids = realloc(ids, 2 * cap * sizeof *ids);
            if (nids == NULL)
                goto nomem;
            ids = nids;
            cap *= 2;
        }
        if ((ids[n] = strdup(id)) == NULL)
            goto nomem;
        ids[++n] = NULL;
    }
    return steal_pointer(&ids);
nomem:
    merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    return NULL;
}

/* ---- tag index ---- */

json_t *store_tags_load(struct image_store *s, struct merr *err)
{
    auto_free char *p = store_path(s, "repositories.json");
    auto_free char *buf = NULL;
    size_t len;
    struct merr rerr = MERR_INIT;
    if (p == NULL) {
        merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
        return NULL;
    }
    if (fs_read_regular(p, 64u << 20, &buf, &len, &rerr) < 0) {
        if (rerr.code != MERR_NOT_FOUND) {
            *err = rerr;
            return NULL;
        }
        return json_pack("{s:{}}", "Repositories");
    }
    json_error_t jerr;
    json_t *tags = json_loadb(buf, len, 0, &jerr);
    if (tags == NULL || !json_is_object(json_object_get(tags, "Repositories"))) {
        json_decref(tags);
        merr_set(err, MERR_CORRUPT, 0, "cannot parse '%s'", p);
        return NULL;
    }
    return tags;
}

int store_tags_save(struct image_store *s, json_t *tags, struct merr *err)
{
    /* drop repositories left empty */
    json_t *repos = json_object_get(tags, "Repositories");
    const char *key;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(repos, tmp, key, v)
    {
        if (json_object_size(v) == 0)
            json_object_del(repos, key);
    }
    auto_free char *p = store_path(s, "repositories.json");
    auto_free char *text = json_dumps(tags, JSON_COMPACT | JSON_SORT_KEYS);
    if (p == NULL || text == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot serialise tags");
    return store_write_atomic(s, p, text, strlen(text), err);
}

bool tags_set(json_t *tags, const char *repo, const char *key, const char *id)
{
    json_t *repos = json_object_get(tags, "Repositories");
    json_t *r = json_object_get(repos, repo);
    if (r == NULL) {
        r = json_object();
        json_object_set_new(repos, repo, r);
    }
    const char *prev = json_string_value(json_object_get(r, key));
    if (prev != NULL && strcmp(prev, id) == 0)
        return true;
    json_object_set_new(r, key, json_string(id));
    return false;
}

const char *tags_get(json_t *tags, const char *key)
{
    json_t *repos = json_object_get(tags, "Repositories");
    const char *repo;
    json_t *r;
    json_object_foreach(repos, repo, r)
    {
        const char *id = json_string_value(json_object_get(r, key));
        if (id != NULL)
            return id;
    }
    return NULL;
}

bool tags_remove(json_t *tags, const char *key)
{
    json_t *repos = json_object_get(tags, "Repositories");
    const char *repo;
    json_t *r;
    json_object_foreach(repos, repo, r)
    {
        if (json_object_get(r, key) != NULL) {
            json_object_del(r, key);
            return true;
        }
    }
    return false;
}
