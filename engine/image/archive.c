/* docker save / docker load: images as one tar, moved between hosts with no registry.
 *
 * save writes what docker 25+ writes: an OCI image layout (oci-layout, index.json,
 * blobs/sha256/...) plus docker's manifest.json, so both `docker load` and OCI tools read it.
 * Layers go out as the blobs the store keeps (compressed as pulled).
 *
 * load reads that, older `docker save` tars (<id>/layer.tar, <id>.json, symlinked duplicate
 * layers) and plain OCI layouts (index.json only). Every entry is spooled to the store's tmp/
 * under a numbered name (entry names never become paths), hashed on the way; nothing is
 * committed until every blob under blobs/sha256 matched its name and every layer matched the
 * DiffID its config names. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "image/internal.h"
#include "image/manifest.h"
#include "layer/layer.h"

#define LOAD_MAX_ENTRIES 100000
#define LOAD_MAX_SMALL (8u << 20) /* manifest.json, index.json, configs */
#define LOAD_MAX_LINK_HOPS 8
#define IO_CHUNK (256u << 10)

#define MEDIA_OCI_LAYER "application/vnd.oci.image.layer.v1.tar"
#define MEDIA_OCI_CONFIG "application/vnd.oci.image.config.v1+json"

DEFINE_CLEANUP(struct archive, archive_free)
#define auto_archive __attribute__((cleanup(cleanup_archive_freep)))

static const char *layer_media_type(const char *stored)
{
    if (stored != NULL && strstr(stored, "zstd") != NULL)
        return MEDIA_OCI_LAYER "+zstd";
    if (stored != NULL && strstr(stored, "gzip") != NULL)
        return MEDIA_OCI_LAYER "+gzip";
    return MEDIA_OCI_LAYER;
}

/* ================================ save ================================ */

struct save_image {
    char id[DIGEST_BUF_LEN];
    json_t *tags;   /* familiar "repo:tag" strings */
    json_t *record; /* store record */
    char manifest_digest[DIGEST_BUF_LEN];
    char *manifest;
};

struct saver {
    struct image_store *s;
    struct tarw tar;
    json_t *written; /* set of blob digests already in the tar */
};

static int put_data(struct saver *sv, const char *name, const void *buf, size_t len,
                    struct merr *err)
{
    if (tarw_header(&sv->tar, name, false, len, err) < 0)
        return -1;
    return len > 0 ? tarw_data(&sv->tar, buf, len, err) : 0;
}

/* Copies an open file of `size` bytes into the tar under name. */
static int put_fd(struct saver *sv, const char *name, int fd, uint64_t size, struct merr *err)
{
    if (tarw_header(&sv->tar, name, false, size, err) < 0)
        return -1;
    auto_free char *buf = malloc(IO_CHUNK);
    if (buf == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    for (uint64_t left = size; left > 0;) {
        ssize_t n = read(fd, buf, left < IO_CHUNK ? (size_t)left : IO_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return merr_set(err, MERR_IO, n < 0 ? errno : EIO, "cannot read '%s'", name);
        if (tarw_data(&sv->tar, buf, (size_t)n, err) < 0)
            return -1;
        left -= (uint64_t)n;
    }
    return 0;
}

static bool mark_written(struct saver *sv, const char *digest)
{
    if (json_object_get(sv->written, digest) != NULL)
        return false;
    json_object_set_new(sv->written, digest, json_true());
    return true;
}

/* A layer as the blob the store keeps for it (every pulled or loaded layer has one). */
static int put_layer(struct saver *sv, json_t *layer, json_t *desc_out, struct merr *err)
{
    const char *blob = json_string_value(json_object_get(layer, "blob"));
    const char *media = json_string_value(json_object_get(layer, "media_type"));
    if (blob == NULL || !image_digest_is_valid(blob))
        return merr_set(err, MERR_CORRUPT, 0, "image record names no layer blob");
    auto_free char *path = store_path(sv->s, "blobs/sha256/%s", image_digest_hex(blob));
    auto_close int fd = path != NULL ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return merr_set(err, errno == ENOENT ? MERR_NOT_FOUND : MERR_IO, errno,
                        "layer blob %s is missing from the store; pull the image again", blob);
    json_object_set_new(desc_out, "mediaType", json_string(layer_media_type(media)));
    json_object_set_new(desc_out, "digest", json_string(blob));
    json_object_set_new(desc_out, "size", json_integer((json_int_t)st.st_size));
    if (!mark_written(sv, blob))
        return 0;
    auto_free char *name = xasprintf("blobs/sha256/%s", image_digest_hex(blob));
    return put_fd(sv, name, fd, (uint64_t)st.st_size, err);
}

static int put_blob_buf(struct saver *sv, const char *digest, const char *buf, size_t len,
                        struct merr *err)
{
    if (!mark_written(sv, digest))
        return 0;
    auto_free char *name = xasprintf("blobs/sha256/%s", image_digest_hex(digest));
    return put_data(sv, name, buf, len, err);
}

static int save_one(struct saver *sv, struct save_image *im, struct merr *err)
{
    auto_free char *config = NULL;
    size_t config_len = 0;
    if (store_blob_get(sv->s, im->id, IMAGE_CONFIG_MAX_SIZE, &config, &config_len, err) < 0 ||
        put_blob_buf(sv, im->id, config, config_len, err) < 0)
        return merr_prefix(err, "image %s", im->id);
    auto_json json_t *layers = json_array();
    json_t *layer;
    size_t i;
    json_array_foreach(json_object_get(im->record, "layers"), i, layer)
    {
        json_t *desc = json_object();
        json_array_append_new(layers, desc);
        if (put_layer(sv, layer, desc, err) < 0)
            return -1;
    }
    auto_json json_t *m = json_pack("{s:i,s:s,s:{s:s,s:s,s:I},s:O}", "schemaVersion", 2,
                                    "mediaType", MEDIA_OCI_MANIFEST, "config", "mediaType",
                                    MEDIA_OCI_CONFIG, "digest", im->id, "size",
                                    (json_int_t)config_len, "layers", layers);
    im->manifest = m != NULL ? json_dumps(m, JSON_COMPACT) : NULL;
    if (im->manifest == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    sha256_digest(im->manifest, strlen(im->manifest), im->manifest_digest);
    return put_blob_buf(sv, im->manifest_digest, im->manifest, strlen(im->manifest), err);
}

/* The OCI index entry for one image under one tag (tag NULL: untagged). */
static json_t *index_entry(const struct save_image *im, const char *tag, struct merr *err)
{
    json_t *desc = json_pack("{s:s,s:s,s:I}", "mediaType", MEDIA_OCI_MANIFEST, "digest",
                             im->manifest_digest, "size", (json_int_t)strlen(im->manifest));
    if (desc == NULL || tag == NULL)
        return desc;
    struct image_ref ref;
    char repo[REF_NAME_MAX + 2];
    if (image_ref_parse(tag, &ref, err) < 0) {
        json_decref(desc);
        return NULL;
    }
    image_ref_repo(&ref, repo, sizeof repo);
    json_t *a = json_object();
    json_object_set_new(a, "io.containerd.image.name", json_sprintf("%s:%s", repo, ref.tag));
    json_object_set_new(a, "org.opencontainers.image.ref.name", json_string(ref.tag));
    json_object_set_new(desc, "annotations", a);
    return desc;
}

/* index.json and manifest.json over the images written. */
static int save_indexes(struct saver *sv, struct save_image *ims, size_t n, struct merr *err)
{
    auto_json json_t *entries = json_array();
    auto_json json_t *docker = json_array();
    for (size_t i = 0; i < n; i++) {
        auto_manifest struct manifest *m = NULL;
        if (image_manifest_parse(ims[i].manifest, strlen(ims[i].manifest), NULL, &m, err) < 0)
            return -1;
        json_t *paths = json_array();
        for (size_t k = 0; k < m->n_layers; k++)
            json_array_append_new(paths, json_sprintf("blobs/sha256/%s", image_digest_hex(m->layers[k].digest)));
        json_t *d = json_object();
        json_object_set_new(d, "Config", json_sprintf("blobs/sha256/%s", image_digest_hex(ims[i].id)));
        json_object_set(d, "RepoTags", ims[i].tags);
        json_object_set_new(d, "Layers", paths);
        json_array_append_new(docker, d);
        size_t n_tags = json_array_size(ims[i].tags);
        for (size_t k = 0; k < (n_tags > 0 ? n_tags : 1); k++) {
            const char *tag = n_tags > 0 ? json_string_value(json_array_get(ims[i].tags, k)) : NULL;
            json_t *desc = index_entry(&ims[i], tag, err);
            if (desc == NULL)
                return err->code != MERR_OK ? -1 : merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
            json_array_append_new(entries, desc);
        }
    }
    auto_json json_t *index = json_pack("{s:i,s:s,s:O}", "schemaVersion", 2, "mediaType",
                                        MEDIA_OCI_INDEX, "manifests", entries);
    auto_free char *index_text = index != NULL ? json_dumps(index, JSON_COMPACT) : NULL;
    auto_free char *docker_text = json_dumps(docker, JSON_COMPACT);
    static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
    if (index_text == NULL || docker_text == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    if (put_data(sv, "oci-layout", layout, strlen(layout), err) < 0 ||
        put_data(sv, "index.json", index_text, strlen(index_text), err) < 0 ||
        put_data(sv, "manifest.json", docker_text, strlen(docker_text), err) < 0)
        return -1;
    return 0;
}

/* Resolves every name first, so a missing image fails before a byte is written. */
static int save_resolve(struct image_store *s, const char *const *names, struct save_image **out,
                        size_t *n_out, struct merr *err)
{
    size_t cap = 0;
    while (names[cap] != NULL)
        cap++;
    struct save_image *ims = calloc(cap ? cap : 1, sizeof *ims);
    if (ims == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    *out = ims;
    size_t n = 0;
    for (size_t i = 0; i < cap; i++) {
        auto_free char *id = image_lookup(s, names[i], err);
        if (id == NULL)
            return -1;
        size_t k = 0;
        while (k < n && strcmp(ims[k].id, id) != 0)
            k++;
        if (k == n) {
            snprintf(ims[n].id, sizeof ims[n].id, "%s", id);
            ims[n].tags = json_array();
            ims[n].record = store_image_load(s, id, err);
            n++;
            *n_out = n;
            if (ims[k].record == NULL)
                return -1;
        }
        /* A name that is not an ID becomes a RepoTag, as docker does. */
        struct image_ref ref;
        struct merr ignored = MERR_INIT;
        const char *hex = image_digest_hex(id);
        bool by_id = strncmp(names[i], "sha256:", 7) == 0 ||
                     (strlen(names[i]) <= 64 && strncmp(hex, names[i], strlen(names[i])) == 0);
        if (!by_id && image_ref_parse(names[i], &ref, &ignored) == 0 && ref.digest[0] == '\0') {
            char repo[REF_NAME_MAX + 2];
            image_ref_familiar_repo(&ref, repo, sizeof repo);
            json_t *tag = json_sprintf("%s:%s", repo, ref.tag);
            size_t j;
            json_t *t;
            bool dup = false;
            json_array_foreach(ims[k].tags, j, t) dup = dup || json_equal(t, tag);
            if (dup)
                json_decref(tag);
            else
                json_array_append_new(ims[k].tags, tag);
        }
    }
    *n_out = n;
    return 0;
}

int image_save(struct image_store *s, const char *const *names, image_write_fn write, void *ctx,
               struct merr *err)
{
    if (names == NULL || names[0] == NULL)
        return merr_set(err, MERR_INVALID, 0, "no image to save");
    struct save_image *ims = NULL;
    size_t n = 0;
    int rc = save_resolve(s, names, &ims, &n, err);
    struct saver sv = { .s = s, .tar = { .write = write, .ctx = ctx }, .written = json_object() };
    if (rc == 0 && (tarw_header(&sv.tar, "blobs/", true, 0, err) < 0 ||
                    tarw_header(&sv.tar, "blobs/sha256/", true, 0, err) < 0))
        rc = -1;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = save_one(&sv, &ims[i], err);
    if (rc == 0)
        rc = save_indexes(&sv, ims, n, err);
    if (rc == 0)
        rc = tarw_close(&sv.tar, err);
    tarw_release(&sv.tar);
    for (size_t i = 0; i < n; i++) {
        json_decref(ims[i].tags);
        json_decref(ims[i].record);
        free(ims[i].manifest);
    }
    free(ims);
    json_decref(sv.written);
    return rc;
}

/* ================================ load ================================ */

struct spooled {
    char *name;  /* normalized entry name */
    char *link;  /* symlink entries: normalized target; no data */
    char *escaping_link; /* a symlink whose target leaves the archive: its raw target */
    char *path;  /* tmp file with the data */
    char digest[DIGEST_BUF_LEN];
    int64_t size;
    bool committed; /* renamed into blobs/ (read it from there) */
};

struct loader {
    struct image_store *s;
    image_read_fn read;
    void *read_ctx;
    struct merr read_err;
    bool read_failed;
    char *buf;    /* input handed to libarchive */
    char *data;   /* entry data read out of libarchive */
    char *tmp_dir;
    struct spooled *entries;
    size_t n, cap;
    image_progress_fn cb;
    void *cb_ctx;
};

static la_ssize_t load_read_cb(struct archive *a, void *opaque, const void **out)
{
    (void)a;
    struct loader *ld = opaque;
    ssize_t n = ld->read(ld->read_ctx, ld->buf, IO_CHUNK, &ld->read_err);
    if (n < 0) {
        ld->read_failed = true;
        return ARCHIVE_FATAL;
    }
    *out = ld->buf;
    return n;
}

/* "./a//b/" → "a/b"; ".." and "." components resolved lexically; NULL when the path climbs
 * above the archive's root or is empty. */
static char *norm_path(const char *dir, const char *name)
{
    auto_free char *joined = dir != NULL && name[0] != '/' ? xasprintf("%s/%s", dir, name)
                                                            : xasprintf("%s", name);
    char *out = calloc(1, strlen(joined) + 1);
    if (out == NULL)
        return NULL;
    size_t len = 0;
    for (char *save = NULL, *c = strtok_r(joined, "/", &save); c != NULL;
         c = strtok_r(NULL, "/", &save)) {
        if (strcmp(c, ".") == 0)
            continue;
        if (strcmp(c, "..") == 0) {
            if (len == 0) {
                free(out);
                return NULL;
            }
            while (len > 0 && out[len - 1] != '/')
                len--;
            if (len > 0)
                len--;
            out[len] = '\0';
            continue;
        }
        len += (size_t)sprintf(out + len, "%s%s", len ? "/" : "", c);
    }
    if (len == 0) {
        free(out);
        return NULL;
    }
    return out;
}

static bool blob_name_digest(const char *name, char digest[DIGEST_BUF_LEN])
{
    if (strncmp(name, "blobs/sha256/", 13) != 0)
        return false;
    snprintf(digest, DIGEST_BUF_LEN, "sha256:%s", name + 13);
    return image_digest_is_valid(digest);
}

static int spool_data(struct loader *ld, struct archive *a, struct spooled *e, struct merr *err)
{
    e->path = xasprintf("%s/e%zu", ld->tmp_dir, ld->n);
    auto_close int fd = open(e->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return merr_set(err, MERR_IO, errno, "cannot create '%s'", e->path);
    EVP_MD_CTX *sha = EVP_MD_CTX_new();
    if (sha == NULL || EVP_DigestInit_ex(sha, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(sha);
        return merr_set(err, MERR_CRYPTO, 0, "cannot initialise sha256");
    }
    int rc = 0;
    for (;;) {
        la_ssize_t n = archive_read_data(a, ld->data, IO_CHUNK);
        if (n == 0)
            break;
        if (n < 0) {
            rc = -1;
            break;
        }
        if (EVP_DigestUpdate(sha, ld->data, (size_t)n) != 1 ||
            fs_write_all(fd, ld->data, (size_t)n) < 0) {
            rc = merr_set(err, MERR_IO, errno, "cannot spool '%s'", e->name);
            break;
        }
        e->size += n;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (rc == 0 && EVP_DigestFinal_ex(sha, md, &md_len) != 1)
        rc = merr_set(err, MERR_CRYPTO, 0, "cannot finish sha256");
    EVP_MD_CTX_free(sha);
    if (rc < 0) {
        if (err->code == MERR_OK && ld->read_failed)
            *err = ld->read_err;
        else if (err->code == MERR_OK)
            merr_set(err, MERR_CORRUPT, 0, "cannot read '%s' from the archive: %s", e->name,
                     archive_error_string(a));
        return -1;
    }
    memcpy(e->digest, "sha256:", 7);
    for (unsigned i = 0; i < md_len; i++)
        sprintf(e->digest + 7 + 2 * i, "%02x", md[i]);
    char named[DIGEST_BUF_LEN];
    if (blob_name_digest(e->name, named) && strcmp(named, e->digest) != 0)
        return merr_set(err, MERR_CORRUPT, 0, "'%s' does not match its digest (content is %s)",
                        e->name, e->digest);
    return 0;
}

/* Reads the whole tar into tmp files. */
static int load_spool(struct loader *ld, struct merr *err)
{
    auto_archive struct archive *a = archive_read_new();
    if (a == NULL || archive_read_support_format_tar(a) != ARCHIVE_OK ||
        archive_read_support_filter_gzip(a) != ARCHIVE_OK ||
        archive_read_support_filter_none(a) != ARCHIVE_OK)
        return merr_set(err, MERR_INTERNAL, 0, "cannot set up the archive reader");
    if (archive_read_open(a, ld, NULL, load_read_cb, NULL) != ARCHIVE_OK) {
        if (ld->read_failed) {
            *err = ld->read_err;
            return -1;
        }
        return merr_set(err, MERR_INVALID, 0, "the input is not a tar archive: %s",
                        archive_error_string(a));
    }
    for (;;) {
        struct archive_entry *ae;
        int r = archive_read_next_header(a, &ae);
        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            if (ld->read_failed) {
                *err = ld->read_err;
                return -1;
            }
            return merr_set(err, MERR_CORRUPT, 0, "broken archive: %s", archive_error_string(a));
        }
        mode_t type = archive_entry_filetype(ae);
        if (type != AE_IFREG && type != AE_IFLNK)
            continue; /* directories and anything else carry nothing we read */
        if (ld->n >= LOAD_MAX_ENTRIES)
            return merr_set(err, MERR_INVALID, 0, "the archive has more than %d files",
                            LOAD_MAX_ENTRIES);
        if (ld->n == ld->cap) {
            size_t cap = ld->cap ? 2 * ld->cap : 64;
            struct spooled *grown = realloc(ld->entries, cap * sizeof *grown);
            if (grown == NULL)
                return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
            ld->entries = grown;
            ld->cap = cap;
        }
        struct spooled *e = &ld->entries[ld->n];
        memset(e, 0, sizeof *e);
        const char *name = archive_entry_pathname(ae);
        e->name = name != NULL ? norm_path(NULL, name) : NULL;
        if (e->name == NULL)
            continue; /* "", "/", "../x": nothing a loader would ever look up */
        ld->n++;
        if (type == AE_IFLNK) {
            const char *target = archive_entry_symlink(ae);
            auto_free char *dir = xasprintf("%s", e->name);
            char *slash = strrchr(dir, '/');
            if (slash != NULL)
                *slash = '\0';
            e->link = target != NULL ? norm_path(slash != NULL ? dir : NULL, target) : NULL;
            if (e->link == NULL) /* refused when read: it names nothing inside the archive */
                e->escaping_link = xasprintf("%s", target != NULL ? target : "");
            continue;
        }
        if (spool_data(ld, a, e, err) < 0)
            return -1;
    }
    return 0;
}

/* The data entry named name, following symlink entries inside the archive. */
static struct spooled *find_entry(struct loader *ld, const char *name, struct merr *err)
{
    auto_free char *want = norm_path(NULL, name);
    for (int hop = 0; want != NULL && hop <= LOAD_MAX_LINK_HOPS; hop++) {
        struct spooled *e = NULL;
        for (size_t i = ld->n; i-- > 0;) /* the last entry of a name wins, as in tar */
            if (strcmp(ld->entries[i].name, want) == 0) {
                e = &ld->entries[i];
                break;
            }
        if (e == NULL)
            break;
        if (e->escaping_link != NULL) {
            merr_set(err, MERR_INVALID, 0,
                     "'%s' in the archive is a symlink to '%s', which is outside the archive",
                     e->name, e->escaping_link);
            return NULL;
        }
        if (e->link == NULL)
            return e;
        free(want);
        want = strdup(e->link);
    }
    merr_set(err, MERR_INVALID, 0, "the archive has no file '%s'", name);
    return NULL;
}

static bool has_entry(const struct loader *ld, const char *name)
{
    for (size_t i = 0; i < ld->n; i++)
        if (strcmp(ld->entries[i].name, name) == 0)
            return true;
    return false;
}

static char *entry_path(struct loader *ld, const struct spooled *e)
{
    return e->committed ? store_path(ld->s, "blobs/sha256/%s", image_digest_hex(e->digest))
                        : xasprintf("%s", e->path);
}

static int read_small(struct loader *ld, const struct spooled *e, char **buf, size_t *len,
                      struct merr *err)
{
    if (e->size > (int64_t)LOAD_MAX_SMALL)
        return merr_set(err, MERR_INVALID, 0, "'%s' is too large", e->name);
    auto_free char *path = entry_path(ld, e);
    return fs_read_file(path, LOAD_MAX_SMALL, buf, len, err);
}

static int read_json(struct loader *ld, const char *name, json_t **out, struct merr *err)
{
    struct spooled *e = find_entry(ld, name, err);
    auto_free char *buf = NULL;
    size_t len = 0;
    if (e == NULL || read_small(ld, e, &buf, &len, err) < 0)
        return -1;
    json_error_t jerr;
    *out = json_loadb(buf, len, 0, &jerr);
    if (*out == NULL)
        return merr_set(err, MERR_INVALID, 0, "'%s' is not valid JSON: %s", name, jerr.text);
    return 0;
}

/* One image to commit: config + layer entries + tags. */
struct load_image {
    struct spooled *config;
    struct spooled **layers;
    size_t n_layers;
    json_t *tags; /* strings */
};

static void load_images_free(struct load_image *ims, size_t n)
{
    for (size_t i = 0; ims != NULL && i < n; i++) {
        free(ims[i].layers);
        json_decref(ims[i].tags);
    }
    free(ims);
}

static int add_image(struct load_image **ims, size_t *n, struct merr *err)
{
    struct load_image *grown = realloc(*ims, (*n + 1) * sizeof *grown);
    if (grown == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    *ims = grown;
    memset(&grown[*n], 0, sizeof grown[*n]);
    grown[*n].tags = json_array();
    (*n)++;
    return 0;
}

/* docker's manifest.json: [{"Config": path, "RepoTags": [..]|null, "Layers": [paths]}] */
static int plan_docker(struct loader *ld, json_t *mj, struct load_image **ims, size_t *n,
                       struct merr *err)
{
    if (!json_is_array(mj) || json_array_size(mj) > MANIFEST_MAX_ENTRIES)
        return merr_set(err, MERR_INVALID, 0, "manifest.json is not a list of images");
    size_t i;
    json_t *d;
    json_array_foreach(mj, i, d)
    {
        const char *config = json_string_value(json_object_get(d, "Config"));
        json_t *layers = json_object_get(d, "Layers");
        if (config == NULL || !json_is_array(layers) || json_array_size(layers) > MANIFEST_MAX_LAYERS)
            return merr_set(err, MERR_INVALID, 0, "manifest.json entry %zu is malformed", i);
        if (add_image(ims, n, err) < 0)
            return -1;
        struct load_image *im = &(*ims)[*n - 1];
        if ((im->config = find_entry(ld, config, err)) == NULL)
            return -1;
        im->layers = calloc(json_array_size(layers) + 1, sizeof *im->layers);
        if (im->layers == NULL)
            return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
        size_t k;
        json_t *l;
        json_array_foreach(layers, k, l)
        {
            if (!json_is_string(l) || (im->layers[k] = find_entry(ld, json_string_value(l), err)) == NULL)
                return err->code != MERR_OK ? -1 : merr_set(err, MERR_INVALID, 0, "bad layer path");
            im->n_layers++;
        }
        json_t *t;
        json_array_foreach(json_object_get(d, "RepoTags"), k, t) if (json_is_string(t))
            json_array_append(im->tags, t);
    }
    return 0;
}

static struct spooled *find_blob(struct loader *ld, const char *digest, struct merr *err)
{
    if (image_digest_validate(digest, err) < 0)
        return NULL;
    auto_free char *name = xasprintf("blobs/sha256/%s", image_digest_hex(digest));
    return find_entry(ld, name, err);
}

static int read_manifest(struct loader *ld, const struct descriptor *desc, struct manifest **out,
                         struct merr *err)
{
    struct spooled *e = find_blob(ld, desc->digest, err);
    auto_free char *buf = NULL;
    size_t len = 0;
    if (e == NULL || read_small(ld, e, &buf, &len, err) < 0)
        return -1;
    return image_manifest_parse(buf, len, desc->media_type[0] ? desc->media_type : NULL, out, err);
}

/* An OCI layout: index.json → manifests (an index inside picks the host's platform). */
static int plan_oci(struct loader *ld, json_t *index_json, struct load_image **ims, size_t *n,
                    struct merr *err)
{
    auto_free char *text = json_dumps(index_json, JSON_COMPACT);
    auto_manifest struct manifest *index = NULL;
    if (text == NULL || image_manifest_parse(text, strlen(text), MEDIA_OCI_INDEX, &index, err) < 0 ||
        index->kind != MANIFEST_KIND_INDEX)
        return err->code != MERR_OK ? merr_prefix(err, "index.json")
                                    : merr_set(err, MERR_INVALID, 0, "index.json is not an index");
    json_t *raw_entries = json_object_get(index_json, "manifests");
    for (size_t i = 0; i < index->n_entries; i++) {
        auto_manifest struct manifest *m = NULL;
        if (read_manifest(ld, &index->entries[i], &m, err) < 0)
            return -1;
        if (m->kind == MANIFEST_KIND_INDEX) {
            struct platform host;
            image_platform_host(&host);
            const struct descriptor *pick = image_manifest_select_platform(m, &host, err);
            auto_manifest struct manifest *inner = NULL;
            if (pick == NULL || read_manifest(ld, pick, &inner, err) < 0)
                return -1;
            image_manifest_free(m);
            m = steal_pointer(&inner);
            if (m->kind != MANIFEST_KIND_IMAGE)
                return merr_set(err, MERR_INVALID, 0, "nested indexes are not supported");
        }
        if (add_image(ims, n, err) < 0)
            return -1;
        struct load_image *im = &(*ims)[*n - 1];
        if ((im->config = find_blob(ld, m->config.digest, err)) == NULL)
            return -1;
        im->layers = calloc(m->n_layers + 1, sizeof *im->layers);
        if (im->layers == NULL)
            return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
        for (size_t k = 0; k < m->n_layers; k++, im->n_layers++)
            if ((im->layers[k] = find_blob(ld, m->layers[k].digest, err)) == NULL)
                return -1;
        json_t *ann = json_object_get(json_array_get(raw_entries, i), "annotations");
        const char *name = json_string_value(json_object_get(ann, "io.containerd.image.name"));
        const char *ref = json_string_value(json_object_get(ann, "org.opencontainers.image.ref.name"));
        if (name == NULL && ref != NULL && (strchr(ref, ':') != NULL || strchr(ref, '/') != NULL))
            name = ref; /* a full reference rather than just a tag */
        if (name != NULL)
            json_array_append_new(im->tags, json_string(name));
    }
    return 0;
}

static const char *sniff_media_type(struct loader *ld, const struct spooled *e)
{
    unsigned char magic[4] = { 0 };
    auto_free char *path = entry_path(ld, e);
    auto_close int fd = path != NULL ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0 || read(fd, magic, sizeof magic) != (ssize_t)sizeof magic)
        return MEDIA_OCI_LAYER;
    if (magic[0] == 0x1f && magic[1] == 0x8b)
        return MEDIA_OCI_LAYER "+gzip";
    if (magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd)
        return MEDIA_OCI_LAYER "+zstd";
    return MEDIA_OCI_LAYER;
}

struct new_layer {
    char *tmp_dir; /* extracted diff/ waiting for commit (dropped if the layer exists by then) */
    uint64_t size;
};

static int emit_stream(struct loader *ld, const char *text)
{
    if (ld->cb == NULL)
        return 0;
    auto_json json_t *o = json_pack("{s:s}", "stream", text);
    auto_free char *line = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    auto_free char *crlf = line != NULL ? xasprintf("%s\r\n", line) : NULL;
    return crlf != NULL ? ld->cb(crlf, ld->cb_ctx) : 0;
}

/* Caller holds s->lock. Blobs, layers, config and record; tags come after. */
static int commit_image(struct loader *ld, struct load_image *im, const char *id, const char *config,
                        size_t config_len, const struct image_config_info *ci,
                        char (*chain)[DIGEST_BUF_LEN], struct new_layer *nl, struct merr *err)
{
    struct image_store *s = ld->s;
    auto_close int rootfd = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0 || syncfs(rootfd) < 0)
        return merr_set(err, MERR_IO, errno, "cannot sync '%s'", s->root);
    json_t *layers = json_array();
    auto_json json_t *rec = json_pack("{s:s,s:[],s:o,s:I,s:I}", "id", id, "manifests", "layers",
                                      layers, "size", (json_int_t)0, "pulled", (json_int_t)time(NULL));
    uint64_t total = 0;
    for (size_t i = 0; i < im->n_layers; i++) {
        struct spooled *e = im->layers[i];
        const char *media = sniff_media_type(ld, e);
        if (!e->committed && !store_blob_exists(s, e->digest)) {
            auto_close int fd = open(e->path, O_RDONLY | O_CLOEXEC);
            if (fd < 0 || fsync(fd) < 0 || store_blob_commit_file(s, e->path, e->digest, err) < 0)
                return err->code != MERR_OK ? -1 : merr_set(err, MERR_IO, errno, "cannot sync '%s'", e->path);
            e->committed = true;
        }
        if (nl[i].tmp_dir != NULL) {
            if (store_layer_commit(s, nl[i].tmp_dir, chain[i], i > 0 ? chain[i - 1] : NULL,
                                   ci->diff_ids[i], nl[i].size, err) < 0)
                return -1;
            free(nl[i].tmp_dir);
            nl[i].tmp_dir = NULL;
        }
        total += nl[i].size;
        json_array_append_new(layers, json_pack("{s:s,s:s,s:s,s:I,s:s}", "blob", e->digest, "chain",
                                                chain[i], "diff", ci->diff_ids[i], "size",
                                                (json_int_t)nl[i].size, "media_type", media));
    }
    json_object_set_new(rec, "size", json_integer((json_int_t)total));
    if (store_blob_put(s, id, config, config_len, err) < 0)
        return -1;
    if (store_image_exists(s, id))
        return 0; /* already known: its record stays */
    return store_image_save(s, id, rec, err);
}

static int load_one(struct loader *ld, struct load_image *im, struct merr *err)
{
    struct image_store *s = ld->s;
    auto_free char *config = NULL;
    size_t config_len = 0;
    if (read_small(ld, im->config, &config, &config_len, err) < 0)
        return -1;
    char id[DIGEST_BUF_LEN];
    sha256_digest(config, config_len, id);
    auto_config_info struct image_config_info *ci = NULL;
    if (image_config_parse(config, config_len, &ci, err) < 0)
        return merr_prefix(err, "image config %s", id);
    if (ci->n_diff_ids != im->n_layers)
        return merr_set(err, MERR_INVALID, 0, "image %s: the config names %zu layers, the archive has %zu",
                        id, ci->n_diff_ids, im->n_layers);
    size_t n = im->n_layers;
    auto_free char(*chain)[DIGEST_BUF_LEN] = calloc(n ? n : 1, sizeof *chain);
    auto_free struct new_layer *nl = calloc(n ? n : 1, sizeof *nl);
    if (chain == NULL || nl == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    int rc = image_chain_ids_compute((const char(*)[DIGEST_BUF_LEN])ci->diff_ids, n, chain, err);
    struct layer_limits lim = store_layer_limits(s);
    /* Every layer is extracted and checked, even one the store has: its blob is recorded for
     * the image and must be what the config says (a later save exports it). */
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if ((rc = store_tmp_dir(s, &nl[i].tmp_dir, err)) < 0)
            break;
        auto_free char *diff = xasprintf("%s/diff", nl[i].tmp_dir);
        auto_free char *path = entry_path(ld, im->layers[i]);
        auto_close int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct layer_result res;
        if (mkdir(diff, 0755) < 0 || fd < 0) {
            rc = merr_set(err, MERR_IO, errno, "cannot prepare layer %zu", i + 1);
        } else if (layer_extract_fd(fd, LAYER_COMP_DETECT, diff, &lim, &res, err) < 0) {
            rc = merr_prefix(err, "image %s, layer %zu", id, i + 1);
        } else if (strcmp(res.diff_id, ci->diff_ids[i]) != 0) {
            /* The content must be what the config says it is. */
            rc = merr_set(err, MERR_CORRUPT, 0, "image %s, layer %zu: content is %s, the config says %s",
                          id, i + 1, res.diff_id, ci->diff_ids[i]);
        } else {
            nl[i].size = res.size;
        }
    }
    if (rc == 0) {
        pthread_mutex_lock(&s->lock);
        rc = commit_image(ld, im, id, config, config_len, ci, chain, nl, err);
        pthread_mutex_unlock(&s->lock);
    }
    for (size_t i = 0; i < n; i++) {
        if (nl[i].tmp_dir != NULL) {
            struct merr ignored = MERR_INIT;
            if (fs_remove_tree(nl[i].tmp_dir, &ignored) < 0) {
                /* collected by the next image_store_open() */
            }
            free(nl[i].tmp_dir);
        }
    }
    if (rc < 0)
        return -1;
    size_t k;
    json_t *t;
    char line[REF_NAME_MAX * 2 + 64];
    if (json_array_size(im->tags) == 0) {
        snprintf(line, sizeof line, "Loaded image ID: %s\n", id);
        return emit_stream(ld, line);
    }
    json_array_foreach(im->tags, k, t)
    {
        if (image_tag(s, id, json_string_value(t), err) < 0)
            return merr_prefix(err, "cannot tag '%s'", json_string_value(t));
        struct image_ref ref; /* shown in docker's familiar form, as docker load does */
        char repo[REF_NAME_MAX + 2];
        if (image_ref_parse(json_string_value(t), &ref, err) < 0)
            return -1;
        image_ref_familiar_repo(&ref, repo, sizeof repo);
        snprintf(line, sizeof line, "Loaded image: %s:%s\n", repo, ref.tag);
        if (emit_stream(ld, line) < 0)
            return merr_set(err, MERR_IO, 0, "the client went away");
    }
    return 0;
}

int image_load(struct image_store *s, image_read_fn read_fn, void *read_ctx, image_progress_fn cb,
               void *cb_ctx, struct merr *err)
{
    struct loader ld = { .s = s, .read = read_fn, .read_ctx = read_ctx, .cb = cb, .cb_ctx = cb_ctx,
                         .read_err = MERR_INIT };
    struct load_image *ims = NULL;
    size_t n = 0;
    ld.buf = malloc(IO_CHUNK);
    ld.data = malloc(IO_CHUNK);
    int rc = ld.buf != NULL && ld.data != NULL ? store_tmp_dir(s, &ld.tmp_dir, err)
                            : merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    if (rc == 0)
        rc = load_spool(&ld, err);
    if (rc == 0) {
        struct merr missing = MERR_INIT;
        auto_json json_t *mj = NULL;
        if (find_entry(&ld, "manifest.json", &missing) != NULL)
            rc = read_json(&ld, "manifest.json", &mj, err) < 0 ? -1 : plan_docker(&ld, mj, &ims, &n, err);
        else if (has_entry(&ld, "manifest.json")) /* there, but a link to nothing usable */
            rc = (*err = missing, -1);
        else if (find_entry(&ld, "index.json", &missing) != NULL)
            rc = read_json(&ld, "index.json", &mj, err) < 0 ? -1 : plan_oci(&ld, mj, &ims, &n, err);
        else if (has_entry(&ld, "index.json"))
            rc = (*err = missing, -1);
        else
            rc = merr_set(err, MERR_INVALID, 0,
                          "the archive has neither manifest.json nor index.json: not a docker save archive");
    }
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = load_one(&ld, &ims[i], err);
    load_images_free(ims, n);
    for (size_t i = 0; i < ld.n; i++) {
        free(ld.entries[i].name);
        free(ld.entries[i].link);
        free(ld.entries[i].escaping_link);
        free(ld.entries[i].path);
    }
    free(ld.entries);
    if (ld.tmp_dir != NULL) {
        struct merr ignored = MERR_INIT;
        if (fs_remove_tree(ld.tmp_dir, &ignored) < 0) {
            /* collected by the next image_store_open() */
        }
        free(ld.tmp_dir);
    }
    free(ld.buf);
    free(ld.data);
    return rc;
}
