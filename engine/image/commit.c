/* Images made on the engine (docker commit, docker import, build steps): a new layer from a
 * tar its maker writes, stored like a pulled one (a gzip blob by its digest, the extracted diff
 * by ChainID), and a config that extends the parent's (config, history, rootfs). The layer tar
 * is extracted with the hardened extractor, so a hostile import is handled like a hostile
 * pull (security cases 12-17); nothing is visible before everything is synced. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "error.h"
#include "fsutil.h"
#include "image/auth.h"
#include "image/internal.h"
#include "image/manifest.h"
#include "layer/layer.h"

#define IO_CHUNK (256u << 10)
#define MEDIA_LAYER_TAR "application/vnd.oci.image.layer.v1.tar"
/* sha256 of 1024 zero bytes: a tar without entries. */
#define EMPTY_TAR_DIFF_ID "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"

DEFINE_CLEANUP(EVP_MD_CTX, EVP_MD_CTX_free)
#define auto_md __attribute__((cleanup(cleanup_EVP_MD_CTX_freep)))

struct new_layer {
    char *dir;      /* tmp dir: diff/ (extracted), blob file */
    char *blob;     /* the blob file to commit */
    char blob_digest[DIGEST_BUF_LEN];
    const char *media_type;
    struct layer_result res;
    bool empty;
};

static void new_layer_release(struct new_layer *l)
{
    if (l->dir != NULL) {
        struct merr ignored = MERR_INIT;
        if (fs_remove_tree(l->dir, &ignored) < 0) {
            /* collected by the next image_store_open() */
        }
    }
    free(l->dir);
    free(l->blob);
}

static int md_final(EVP_MD_CTX *md, char out[DIGEST_BUF_LEN], struct merr *err)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(md, d, &len) != 1 || len != 32)
        return merr_set(err, MERR_CRYPTO, 0, "cannot finish sha256");
    strcpy(out, "sha256:");
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", d[i]);
    return 0;
}

/* Compresses in_fd (from its start) into out_path with gzip (no name, no mtime: the same
 * bytes give the same blob) and hashes the result. */
static int gzip_file(int in_fd, const char *out_path, char digest[DIGEST_BUF_LEN],
                     struct merr *err)
{
    auto_close int out = open(out_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    auto_md EVP_MD_CTX *md = EVP_MD_CTX_new();
    auto_free unsigned char *in = malloc(IO_CHUNK), *zout = malloc(IO_CHUNK);
    if (out < 0)
        return merr_set(err, MERR_IO, errno, "cannot create '%s'", out_path);
    if (md == NULL || in == NULL || zout == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot compress a layer");
    z_stream z = { 0 };
    if (deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot compress a layer");
    int rc = 0, flush = Z_NO_FLUSH;
    if (lseek(in_fd, 0, SEEK_SET) < 0)
        rc = merr_set(err, MERR_IO, errno, "cannot rewind a layer");
    while (rc == 0 && flush != Z_FINISH) {
        ssize_t n = read(in_fd, in, IO_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = merr_set(err, MERR_IO, errno, "cannot read a layer");
            break;
        }
        flush = n == 0 ? Z_FINISH : Z_NO_FLUSH;
        z.next_in = in;
        z.avail_in = (uInt)n;
        do {
            z.next_out = zout;
            z.avail_out = IO_CHUNK;
            if (deflate(&z, flush) == Z_STREAM_ERROR) {
                rc = merr_set(err, MERR_INTERNAL, 0, "cannot compress a layer");
                break;
            }
            size_t have = IO_CHUNK - z.avail_out;
            if (have > 0 && fs_write_all(out, zout, have) < 0)
                rc = merr_set(err, MERR_IO, errno, "cannot write a layer blob");
            else if (have > 0 && EVP_DigestUpdate(md, zout, have) != 1)
                rc = merr_set(err, MERR_CRYPTO, 0, "cannot hash");
        } while (rc == 0 && z.avail_out == 0);
    }
    deflateEnd(&z);
    if (rc == 0 && fsync(out) < 0)
        rc = merr_set(err, MERR_IO, errno, "cannot sync '%s'", out_path);
    return rc < 0 ? -1 : md_final(md, digest, err);
}

static int hash_fd(int fd, char digest[DIGEST_BUF_LEN], struct merr *err)
{
    auto_md EVP_MD_CTX *md = EVP_MD_CTX_new();
    auto_free unsigned char *buf = malloc(IO_CHUNK);
    if (md == NULL || buf == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot hash a layer");
    if (lseek(fd, 0, SEEK_SET) < 0)
        return merr_set(err, MERR_IO, errno, "cannot rewind a layer");
    for (;;) {
        ssize_t n = read(fd, buf, IO_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return merr_set(err, MERR_IO, errno, "cannot read a layer");
        if (n == 0)
            break;
        if (EVP_DigestUpdate(md, buf, (size_t)n) != 1)
            return merr_set(err, MERR_CRYPTO, 0, "cannot hash a layer");
    }
    return md_final(md, digest, err);
}

static const char *sniff_media(int fd)
{
    unsigned char m[4] = { 0 };
    if (pread(fd, m, sizeof m, 0) != (ssize_t)sizeof m)
        return MEDIA_LAYER_TAR;
    if (m[0] == 0x1f && m[1] == 0x8b)
        return MEDIA_LAYER_TAR "+gzip";
    if (m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd)
        return MEDIA_LAYER_TAR "+zstd";
    return MEDIA_LAYER_TAR;
}

/* Has the maker write the tar, extracts it (DiffID, size) and makes the blob. */
static int make_layer(struct image_store *s, const struct image_commit_spec *spec,
                      struct new_layer *l, struct merr *err)
{
    if (store_tmp_dir(s, &l->dir, err) < 0)
        return -1;
    auto_free char *raw = xasprintf("%s/layer", l->dir);
    auto_free char *diff = xasprintf("%s/diff", l->dir);
    auto_close int fd = open(raw, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || mkdir(diff, 0755) < 0)
        return merr_set(err, MERR_IO, errno, "cannot prepare a layer in '%s'", l->dir);
    if (spec->write_layer(spec->layer_ctx, fd, err) < 0)
        return -1;
    if (lseek(fd, 0, SEEK_SET) < 0)
        return merr_set(err, MERR_IO, errno, "cannot rewind a layer");
    struct layer_limits lim = store_layer_limits(s);
    if (layer_extract_fd(fd, LAYER_COMP_DETECT, diff, &lim, &l->res, err) < 0)
        return -1;
    l->empty = strcmp(l->res.diff_id, EMPTY_TAR_DIFF_ID) == 0;
    l->media_type = sniff_media(fd);
    if (strcmp(l->media_type, MEDIA_LAYER_TAR) == 0) {
        l->blob = xasprintf("%s/layer.gz", l->dir);
        l->media_type = MEDIA_LAYER_TAR "+gzip";
        return gzip_file(fd, l->blob, l->blob_digest, err);
    }
    l->blob = steal_pointer(&raw);
    if (fsync(fd) < 0)
        return merr_set(err, MERR_IO, errno, "cannot sync a layer");
    return hash_fd(fd, l->blob_digest, err);
}

static char *now_rfc3339_nano(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    return xasprintf("%s.%09ldZ", base, ts.tv_nsec);
}

static void set_or_drop(json_t *o, const char *key, const char *value)
{
    if (value != NULL && value[0] != '\0')
        json_object_set_new(o, key, json_string(value));
    else
        json_object_del(o, key);
}

/* The new config: the parent's with the spec's config, a history entry and the new DiffID. */
static json_t *build_config(const json_t *parent_cfg, const struct image_commit_spec *spec,
                            const struct new_layer *l, bool add_layer)
{
    json_t *cfg = parent_cfg != NULL ? json_deep_copy(parent_cfg) : json_object();
    if (parent_cfg == NULL) {
        struct platform p;
        image_platform_host(&p);
        json_object_set_new(cfg, "architecture", json_string(p.arch));
        json_object_set_new(cfg, "os", json_string(p.os));
    }
    auto_free char *created = now_rfc3339_nano();
    json_object_set_new(cfg, "created", json_string(created));
    set_or_drop(cfg, "author", spec->author);
    set_or_drop(cfg, "comment", spec->comment);
    json_object_del(cfg, "container");
    json_object_del(cfg, "container_config");
    if (spec->container_id != NULL && spec->container_config != NULL) {
        json_object_set_new(cfg, "container", json_string(spec->container_id));
        json_object_set(cfg, "container_config", spec->container_config);
    }
    json_object_del(cfg, "id");
    set_or_drop(cfg, "parent", spec->record_parent ? spec->parent_id : NULL);
    json_object_set(cfg, "config", spec->config != NULL ? spec->config : json_object());
    json_t *history = json_object_get(cfg, "history");
    if (!json_is_array(history)) {
        history = json_array();
        json_object_set_new(cfg, "history", history);
    }
    json_t *h = json_pack("{s:s}", "created", created);
    set_or_drop(h, "author", spec->author);
    set_or_drop(h, "created_by", spec->created_by);
    set_or_drop(h, "comment", spec->comment);
    if (!add_layer)
        json_object_set_new(h, "empty_layer", json_true());
    json_array_append_new(history, h);
    json_t *rootfs = json_object_get(cfg, "rootfs");
    if (!json_is_object(rootfs)) {
        rootfs = json_object();
        json_object_set_new(cfg, "rootfs", rootfs);
    }
    json_object_set_new(rootfs, "type", json_string("layers"));
    json_t *ids = json_object_get(rootfs, "diff_ids");
    if (!json_is_array(ids)) {
        ids = json_array();
        json_object_set_new(rootfs, "diff_ids", ids);
    }
    if (add_layer)
        json_array_append_new(ids, json_string(l->res.diff_id));
    return cfg;
}

/* Caller holds s->lock: the layer, the config blob and the image record. */
static int commit_locked(struct image_store *s, const struct image_commit_spec *spec,
                         json_t *cfg, struct new_layer *l, bool add_layer, char *id_out,
                         struct merr *err)
{
    json_t *layers = json_array();
    auto_json json_t *rec = json_pack("{s:s,s:[],s:o,s:I,s:I}", "id", "", "manifests", "layers",
                                      layers, "size", (json_int_t)0, "pulled",
                                      (json_int_t)time(NULL));
    json_int_t total = 0;
    if (spec->parent_id != NULL) {
        auto_json json_t *prec = store_image_load(s, spec->parent_id, err);
        if (prec == NULL)
            return merr_prefix(err, "parent image %s", spec->parent_id);
        json_object_set(rec, "layers", json_object_get(prec, "layers"));
        layers = json_object_get(rec, "layers");
        total = json_integer_value(json_object_get(prec, "size"));
    }
    json_t *ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
    size_t n = json_array_size(ids);
    if (n != json_array_size(layers) + (add_layer ? 1 : 0))
        return merr_set(err, MERR_CORRUPT, 0, "parent image %s: its config and record disagree",
                        spec->parent_id);
    if (add_layer) {
        auto_free char(*diff)[DIGEST_BUF_LEN] = calloc(n, sizeof *diff);
        auto_free char(*chain)[DIGEST_BUF_LEN] = calloc(n, sizeof *chain);
        if (diff == NULL || chain == NULL)
            return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
        for (size_t i = 0; i < n; i++)
            snprintf(diff[i], DIGEST_BUF_LEN, "%s", json_string_value(json_array_get(ids, i)));
        if (image_chain_ids_compute((const char(*)[DIGEST_BUF_LEN])diff, n, chain, err) < 0)
            return -1;
        auto_close int rootfd = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0 || syncfs(rootfd) < 0)
            return merr_set(err, MERR_IO, errno, "cannot sync '%s'", s->root);
        if (!store_blob_exists(s, l->blob_digest) &&
            store_blob_commit_file(s, l->blob, l->blob_digest, err) < 0)
            return -1;
        if (!store_layer_exists(s, chain[n - 1])) {
            auto_free char *ldir = xasprintf("%s/l", l->dir);
            auto_free char *diffdir = xasprintf("%s/diff", l->dir);
            auto_free char *moved = xasprintf("%s/diff", ldir);
            if (mkdir(ldir, 0700) < 0 || rename(diffdir, moved) < 0)
                return merr_set(err, MERR_IO, errno, "cannot prepare layer %s", chain[n - 1]);
            if (store_layer_commit(s, ldir, chain[n - 1], n > 1 ? chain[n - 2] : NULL,
                                   l->res.diff_id, l->res.size, err) < 0)
                return -1;
        }
        json_array_append_new(layers, json_pack("{s:s,s:s,s:s,s:I,s:s}", "blob", l->blob_digest,
                                                "chain", chain[n - 1], "diff", l->res.diff_id,
                                                "size", (json_int_t)l->res.size, "media_type",
                                                l->media_type));
        total += (json_int_t)l->res.size;
    }
    auto_free char *text = json_dumps(cfg, JSON_COMPACT);
    if (text == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot serialise the image config");
    sha256_digest(text, strlen(text), id_out);
    json_object_set_new(rec, "id", json_string(id_out));
    json_object_set_new(rec, "size", json_integer(total));
    if (store_blob_put(s, id_out, text, strlen(text), err) < 0)
        return -1;
    if (store_image_exists(s, id_out))
        return 0;
    return store_image_save(s, id_out, rec, err);
}

int image_commit(struct image_store *s, const struct image_commit_spec *spec, char **id_out,
                 struct merr *err)
{
    auto_json json_t *parent_cfg = NULL;
    if (spec->parent_id != NULL) {
        auto_free char *text = image_config_json(s, spec->parent_id, err);
        json_error_t jerr;
        if (text == NULL)
            return -1;
        if ((parent_cfg = json_loads(text, 0, &jerr)) == NULL || !json_is_object(parent_cfg))
            return merr_set(err, MERR_CORRUPT, 0, "image %s has an invalid config",
                            spec->parent_id);
    }
    struct new_layer l = { 0 };
    int rc = spec->write_layer != NULL ? make_layer(s, spec, &l, err) : 0;
    bool add_layer = spec->write_layer != NULL && !(l.empty && spec->drop_empty_layer);
    char id[DIGEST_BUF_LEN] = "";
    if (rc == 0) {
        auto_json json_t *cfg = build_config(parent_cfg, spec, &l, add_layer);
        pthread_mutex_lock(&s->lock);
        rc = commit_locked(s, spec, cfg, &l, add_layer, id, err);
        pthread_mutex_unlock(&s->lock);
    }
    new_layer_release(&l);
    if (rc < 0)
        return -1;
    if (spec->tag != NULL && image_tag(s, id, spec->tag, err) < 0)
        return -1;
    if (id_out != NULL)
        *id_out = xstrdup(id);
    return 0;
}

char *image_store_work_dir(struct image_store *s, struct merr *err)
{
    char *path = NULL;
    return store_tmp_dir(s, &path, err) < 0 ? NULL : path;
}

int image_registry_config_auth(const char *x_registry_config, const char *ref, char **out,
                               struct merr *err)
{
    struct image_ref r;
    *out = NULL;
    if (x_registry_config == NULL || x_registry_config[0] == '\0')
        return 0;
    if (image_ref_parse(ref, &r, err) < 0)
        return -1;
    return image_x_registry_config_pick(x_registry_config, r.domain, out, err);
}
