/* Shared between the files of engine/image only: the registry client and the
 * content store. Not part of the module's API (that is image.h). */
#ifndef ENGINE_IMAGE_INTERNAL_H
#define ENGINE_IMAGE_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cleanup.h"
#include "image/image.h"
#include "image/reference.h"
#include "layer/layer.h"
#include "jsonutil.h"
#include "tarw.h"

struct registry_creds;


#include "curlapi.h"

/* ---- registry client (registry.c) ---- */

struct registry_client;

/* Base URLs to try for ref, in order: mirrors then the official endpoint for
 * docker.io; otherwise http://domain for loopback and insecure registries and
 * https://domain for the rest. NULL-terminated, malloc'd. */
MUST_CHECK char **registry_endpoints(const struct registry_config *cfg, const struct image_ref *ref,
                                     struct merr *err);

/* True when plain HTTP is allowed to hostport (loopback, or listed as insecure). */
bool registry_host_insecure(const struct registry_config *cfg, const char *hostport);

/* curl: a loaded libcurl (curl_api_load), borrowed for the client's lifetime. */
MUST_CHECK struct registry_client *registry_client_new(const struct registry_config *cfg,
                                                       const struct curl_api *curl,
                                                       const char *base_url, const char *repo_path,
                                                       const struct registry_creds *creds,
                                                       struct merr *err);
void registry_client_free(struct registry_client *c);
DEFINE_CLEANUP(struct registry_client, registry_client_free)
#define auto_registry_client __attribute__((cleanup(cleanup_registry_client_freep)))

/* The token scope of later requests: actions "pull" (the default) or "push,pull", and another
 * repository of the registry to read from (cross-repository blob mounts), or NULL. */
MUST_CHECK int registry_client_set_scope(struct registry_client *c, const char *actions,
                                         const char *mount_from, struct merr *err);
bool registry_client_has_credentials(const struct registry_client *c);
const char *registry_client_base_url(const struct registry_client *c);

/* GET /v2/ and sets up authentication (anonymous, Basic, or a Bearer token). */
MUST_CHECK int registry_ping(struct registry_client *c, struct merr *err);

struct fetched {
    char *buf;
    size_t len;
    char content_type[128];
    char digest[DIGEST_BUF_LEN]; /* sha256 of buf, computed here */
};
void fetched_clear(struct fetched *f);

/* GET /v2/<repo>/manifests/<reference> (a tag or a valid digest), at most
 * MANIFEST_MAX_SIZE bytes. When reference is a digest the bytes must hash to it. */
MUST_CHECK int registry_get_manifest(struct registry_client *c, const char *reference,
                                     struct fetched *out, struct merr *err);

/* GET a small blob fully into memory (at most max bytes) and verify its digest. */
MUST_CHECK int registry_get_blob(struct registry_client *c, const char *digest, size_t max,
                                 struct fetched *out, struct merr *err);

struct blob_sink {
    /* Receives the blob's bytes in order, exactly once each; < 0 aborts. */
    int (*write)(void *ctx, const void *buf, size_t len, struct merr *err);
    /* Called as bytes arrive (may be NULL). */
    void (*progress)(void *ctx, uint64_t current, uint64_t total);
    /* Checked between chunks; true aborts the transfer (may be NULL). */
    bool (*cancelled)(void *ctx);
    void *ctx;
};

/* Streams a blob of the given size into sink, resuming with Range after a broken
 * transfer, and verifies its sha256 at the end (MERR_CORRUPT on mismatch). */
MUST_CHECK int registry_stream_blob(struct registry_client *c, const char *digest, uint64_t size,
                                    const struct blob_sink *sink, struct merr *err);

/* HEAD /v2/<repo>/blobs/<digest>: *exists for 200, false for 404, an error otherwise. */
MUST_CHECK int registry_blob_exists(struct registry_client *c, const char *digest, bool *exists,
                                    struct merr *err);

struct blob_upload {
    const char *digest;
    int fd;              /* the blob's bytes, read with pread from 0 to size */
    uint64_t size;
    const char *mount_from; /* a repository of the same registry holding it, or NULL */
    uint64_t chunk_size;    /* larger blobs go in PATCH chunks of this size (0: one PUT) */
    void (*progress)(void *ctx, uint64_t sent, uint64_t total); /* may be NULL */
    bool (*cancelled)(void *ctx);                              /* may be NULL */
    void *ctx;
};

/* Uploads a blob: POST (a mount attempt when mount_from is set: *mounted on 201), then one PUT
 * ?digest= or PATCH chunks and a closing PUT, following each Location (relative or absolute). */
MUST_CHECK int registry_blob_upload(struct registry_client *c, const struct blob_upload *up,
                                    bool *mounted, struct merr *err);

/* PUT /v2/<repo>/manifests/<reference> with Content-Type media_type. */
MUST_CHECK int registry_put_manifest(struct registry_client *c, const char *reference,
                                     const char *media_type, const char *buf, size_t len,
                                     struct merr *err);

/* ---- content store (store.c) ---- */

struct image_store {
    char *root;
    const struct mlog *log;
    uint64_t max_layer_uncompressed;
    uint64_t max_layer_entries;
    const struct layer_driver *driver; /* overlay2 unless image_store_use_driver said vfs */
    pthread_mutex_t lock; /* tags, image records, layer commit and removal */
    /* libcurl is loaded and initialised at the first pull, not at start: an idle engine never
     * pays for it (about 5 MiB of resident memory). Under lock. */
    struct curl_api curl;
    /* build cache entries whose use a hit has not counted yet (image_build_cache_get with
     * defer): under lock; counted by image_build_cache_count under uses_lock */
    char **pending_uses;
    pthread_mutex_t uses_lock;
};

/* malloc'd "<root>/<fmt...>" */
char *store_path(const struct image_store *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Extraction limits, and the whiteout form the store's driver keeps. */
struct layer_limits store_layer_limits(const struct image_store *s);

MUST_CHECK int store_tmp_dir(struct image_store *s, char **path_out, struct merr *err);
/* Writes buf to a temp file, fsyncs it, renames it to path and syncs the directory. */
MUST_CHECK int store_write_atomic(struct image_store *s, const char *path, const void *buf,
                                  size_t len, struct merr *err);

bool store_blob_exists(struct image_store *s, const char *digest);
/* Renames an already fsynced temp file into blobs/ under digest. */
MUST_CHECK int store_blob_commit_file(struct image_store *s, const char *tmp_path,
                                      const char *digest, struct merr *err);
/* Stores buf under digest after checking that it hashes to it. */
MUST_CHECK int store_blob_put(struct image_store *s, const char *digest, const void *buf,
                              size_t len, struct merr *err);
/* Reads a blob (at most max bytes) and checks its digest. */
MUST_CHECK int store_blob_get(struct image_store *s, const char *digest, size_t max, char **buf,
                              size_t *len, struct merr *err);
void store_blob_delete(struct image_store *s, const char *digest);

bool store_layer_exists(struct image_store *s, const char *chain_id);
/* tmp_dir holds diff/; writes diffid, size and parent, then renames it to
 * layers/sha256/<chain>. A layer that appeared meanwhile wins; tmp_dir goes. */
MUST_CHECK int store_layer_commit(struct image_store *s, const char *tmp_dir, const char *chain_id,
                                  const char *parent_chain_id, const char *diff_id, uint64_t size,
                                  struct merr *err);
MUST_CHECK int store_layer_size(struct image_store *s, const char *chain_id, uint64_t *size,
                                struct merr *err);
MUST_CHECK int store_layer_delete(struct image_store *s, const char *chain_id, struct merr *err);

/* Image records: {"id", "manifests": [every manifest/index digest it was pulled
 * through], "layers": [{blob, chain, diff, size, media_type}], "size", "pulled"}. */
MUST_CHECK json_t *store_image_load(struct image_store *s, const char *id, struct merr *err);
MUST_CHECK int store_image_save(struct image_store *s, const char *id, json_t *rec,
                                struct merr *err);
bool store_image_exists(struct image_store *s, const char *id);
MUST_CHECK int store_image_delete(struct image_store *s, const char *id, struct merr *err);
/* All image IDs ("sha256:<hex>"), NULL-terminated. */
MUST_CHECK char **store_image_ids(struct image_store *s, struct merr *err);

/* repositories.json: {"Repositories": {repo: {"repo:tag"|"repo@digest": id}}} */
MUST_CHECK json_t *store_tags_load(struct image_store *s, struct merr *err);
MUST_CHECK int store_tags_save(struct image_store *s, json_t *tags, struct merr *err);
/* Sets key (a full "repo:tag" or "repo@digest") to id; true when it already was. */
bool tags_set(json_t *tags, const char *repo, const char *key, const char *id);
const char *tags_get(json_t *tags, const char *key);
/* Removes key; true when it existed. */
bool tags_remove(json_t *tags, const char *key);

/* ---- progress.c ---- */

/* docker's progress text for cur of total bytes: "[=====>    ]  1.2MB/3.4MB" (as pull and push
 * print it). */
void image_progress_text(uint64_t cur, uint64_t total, char *out, size_t cap);

#endif
