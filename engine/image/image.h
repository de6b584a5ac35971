/* Images for machine-engine: registry pull into a content-addressed store.
 *
 * Layout under the data root:
 *   blobs/sha256/<hex>                 manifests, configs and layer blobs, verified by digest
 *   layers/sha256/<chainid-hex>/       diff/ (overlayfs form), diffid, size, parent
 *   images/sha256/<config-hex>         image record (image ID = config digest)
 *   repositories.json                  "repo:tag" and "repo@digest" → image ID
 *   tmp/                               work area; everything in it is removed at open
 * Layers are shared between images by ChainID. Nothing becomes visible under a
 * digest before it has been verified and synced. */
#ifndef ENGINE_IMAGE_IMAGE_H
#define ENGINE_IMAGE_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cleanup.h"

struct merr;
struct mlog;
struct image_store;

/* Registry settings the daemon fills (from --insecure-registry, --registry-mirror).
 * Arrays are NULL-terminated; the strings belong to the caller and must outlive
 * every pull that uses the config. */
struct registry_config {
    const char *const *insecure_registries; /* "host[:port]": plain HTTP allowed */
    const char *const *mirrors;             /* "https://mirror:port" for docker.io (tried
                                             * first, never sent credentials) */
    const char *docker_io_endpoint;         /* NULL: https://registry-1.docker.io */
    const char *ca_file;                    /* NULL: the system bundle */
    long connect_timeout_ms;                /* per connection attempt */
    long low_speed_time_s;                  /* abort a transfer slower than ... */
    long low_speed_limit;                   /* ... this many bytes/s for that long */
    long request_timeout_s;                 /* whole request, for manifests and tokens */
    unsigned max_attempts;                  /* per request, including the first */
    long backoff_base_ms;                   /* first retry delay (doubled each time) */
    long backoff_max_ms;                    /* cap of one delay, Retry-After included */
    unsigned max_parallel_layers;           /* concurrent layer downloads (3; ≤ 16 used) */
    unsigned max_parallel_uploads;          /* concurrent layer uploads (5; ≤ 16 used) */
    const struct mlog *log;                 /* debug log, may be NULL */
};

/* Sensible defaults: 10 s connect, 30 s under 1 KiB/s, 60 s requests, 5 attempts,
 * backoff 500 ms doubling to 10 s, 3 parallel layer downloads, 5 uploads (dockerd's). */
void image_registry_config_init(struct registry_config *rc);

/* Opens (creating when needed) the store under root and removes leftovers in tmp/. */
MUST_CHECK struct image_store *image_store_open(const char *root, const struct mlog *log,
                                                struct merr *err);
void image_store_free(struct image_store *s);
DEFINE_CLEANUP(struct image_store, image_store_free)

/* How layers are kept (layer/layer.h): overlay2 (the default) or vfs. Call before any other use;
 * creates the driver's layer directory. */
struct layer_driver;
MUST_CHECK int image_store_use_driver(struct image_store *s, const struct layer_driver *d,
                                      struct merr *err);

/* The driver's name, as docker info and inspect's GraphDriver give it. */
const char *image_store_driver_name(const struct image_store *s);

/* Limits passed to layer extraction (defaults: 64 GiB uncompressed, 4M entries). */
void image_store_set_layer_limits(struct image_store *s, uint64_t max_uncompressed,
                                  uint64_t max_entries);

/* Receives one docker-style JSON progress line, terminated by "\r\n", ready to be
 * forwarded verbatim on POST /images/create. Called from pull threads, never
 * concurrently. Returning < 0 (the client went away) cancels the pull. */
typedef int (*image_progress_fn)(const char *line, void *ctx);

/* Pulls ref ("alpine", "127.0.0.1:5000/x/y:tag", "name@sha256:...") for platform
 * ("os/arch[/variant]", NULL: the host's) with credentials from a docker
 * X-Registry-Auth header (may be NULL). On success *image_id_out (if non-NULL)
 * gets "sha256:<hex>". Nothing is committed unless every digest verified. */
MUST_CHECK int image_pull(struct image_store *s, const struct registry_config *rc,
                          const char *ref, const char *platform, const char *x_registry_auth,
                          image_progress_fn cb, void *cb_ctx, char **image_id_out,
                          struct merr *err);

/* docker push (push.c): pushes name's tag (NULL or "": every tag of the repository) to its
 * registry with credentials from X-Registry-Auth; cb gets dockerd's progress lines. Errors
 * before the first line (an unknown tag: MERR_NOT_FOUND "An image does not exist locally
 * with the tag: NAME") come without any line; refused credentials are MERR_AUTH with dockerd's
 * words. On success the image is also known as repo@digest. */
MUST_CHECK int image_push(struct image_store *s, const struct registry_config *rc,
                          const char *name, const char *tag, const char *x_registry_auth,
                          image_progress_fn cb, void *cb_ctx, struct merr *err);

/* docker login (login.c): checks the credentials (or identity token) against serveraddress's
 * /v2/ ("" or Docker Hub's addresses: docker.io). MERR_AUTH with dockerd's message when the
 * registry refuses them. */
MUST_CHECK int image_login(struct image_store *s, const struct registry_config *rc,
                           const char *username, const char *password,
                           const char *identitytoken, const char *serveraddress,
                           struct merr *err);

/* Resolves a name ("alpine", "alpine:3", "repo@sha256:..."), a full ID
 * ("sha256:<hex>" or <hex>) or a unique ID prefix to "sha256:<hex>" (malloc'd).
 * MERR_NOT_FOUND when nothing matches, MERR_INVALID for an ambiguous prefix. */
MUST_CHECK char *image_lookup(struct image_store *s, const char *name, struct merr *err);

/* GET /images/json: a JSON array of {Id, ParentId, RepoTags, RepoDigests, Created,
 * Size, SharedSize, VirtualSize, Labels, Containers}. */
MUST_CHECK char *image_list_json(struct image_store *s, struct merr *err);

/* GET /images/{name}/json: {Id, RepoTags, RepoDigests, Parent, Comment, Created,
 * Author, Config, Architecture, Variant, Os, Size, VirtualSize, RootFS, Metadata}. */
MUST_CHECK char *image_inspect_json(struct image_store *s, const char *name, struct merr *err);
/* With legacy (API < 1.45) also Container and ContainerConfig (what a commit was made from). */
MUST_CHECK char *image_inspect_json_api(struct image_store *s, const char *name, bool legacy,
                                        struct merr *err);

/* The raw image config JSON (Env, Cmd, Entrypoint, WorkingDir, User are under "config"). */
MUST_CHECK char *image_config_json(struct image_store *s, const char *image_id, struct merr *err);

/* Paths of the image's layer diff directories, top layer first, for an overlay
 * lowerdir. NULL-terminated, free with the auto_strv cleanup or strv loop. An image
 * without layers gives one empty directory (an overlay needs a lower one). Under the vfs
 * driver only the top layer's directory, which holds the whole image. */
MUST_CHECK char **image_layer_dirs(struct image_store *s, const char *image_id, struct merr *err);

/* Says whether a container uses image_id (the engine's container store answers). */
typedef bool (*image_in_use_fn)(const char *image_id, void *ctx);

/* DELETE /images/{name}. By name: untags; the image itself (and the layers and
 * blobs no other image needs) goes when its last reference goes. By ID: removes
 * every reference and the image. Refuses with MERR_BUSY when a container uses the
 * image or (by ID) it is tagged in several repositories, unless force. With force
 * an in-use image is only untagged. *report_out gets the docker reply
 * [{"Untagged":"alpine:latest"},{"Deleted":"sha256:..."}]. */
MUST_CHECK int image_remove(struct image_store *s, const char *name, bool force,
                            image_in_use_fn in_use, void *in_use_ctx, char **report_out,
                            struct merr *err);
/* The same with dockerd's prune (DELETE /images/{name} without noprune): after the image goes,
 * each parent up its chain that has no tag or digest, no other child and no container goes
 * too. */
struct image_remove_opts {
    bool force;
    bool prune_parents;
    image_in_use_fn in_use;
    void *in_use_ctx;
};
MUST_CHECK int image_remove_with(struct image_store *s, const char *name,
                                 const struct image_remove_opts *o, char **report_out,
                                 struct merr *err);

/* docker system df (usage.c): *shared_out = {image ID: bytes of its layers other images use
 * too}; *layers_size = the size of every layer once. */
struct json_t;
MUST_CHECK int image_disk_usage(struct image_store *s, struct json_t **shared_out,
                                int64_t *layers_size, struct merr *err);

/* GET /distribution/{name}/json (distribution.c): {"Descriptor": {mediaType, digest, size},
 * "Platforms": [...]} from the registry, without pulling. */
MUST_CHECK struct json_t *image_distribution_inspect(struct image_store *s,
                                                     const struct registry_config *rc,
                                                     const char *name,
                                                     const char *x_registry_auth,
                                                     struct merr *err);

/* Adds "repo:tag" for an existing image (docker tag). */
MUST_CHECK int image_tag(struct image_store *s, const char *image_id, const char *ref,
                         struct merr *err);

/* ---- docker save / docker load (archive.c) ---- */
/* Receives the archive's bytes in order; < 0 (with err set) aborts (a tarw_write_fn). */
typedef int (*image_write_fn)(void *ctx, const void *buf, size_t len, struct merr *err);
/* Fills buf with the next bytes: count, 0 at the end, -1 with err set. */
typedef ssize_t (*image_read_fn)(void *ctx, void *buf, size_t len, struct merr *err);
/* Writes the named images (names or IDs; every one is resolved before a byte is written) as one
 * tar: an OCI layout (oci-layout, index.json, blobs/sha256/...) plus docker's manifest.json. */
MUST_CHECK int image_save(struct image_store *s, const char *const *names, image_write_fn write,
                          void *ctx, struct merr *err);
/* Reads a `docker save` archive (manifest.json, legacy or OCI-layout entries, gzip allowed)
 * or a plain OCI layout (index.json) and stores its images and tags. Blobs named by digest must
 * match it and every layer must match its config's DiffID (MERR_CORRUPT), or nothing of that
 * image is committed. cb gets {"stream":"Loaded image: name:tag\n"} lines. */
MUST_CHECK int image_load(struct image_store *s, image_read_fn read, void *read_ctx,
                          image_progress_fn cb, void *cb_ctx, struct merr *err);

/* ---- images made on the engine (commit.c) ---- */
/* Writes a layer as a tar (plain, gzip or zstd) to fd; < 0 with err set aborts. */
typedef int (*image_layer_writer_fn)(void *ctx, int fd, struct merr *err);
struct json_t;
struct image_commit_spec {
    const char *parent_id;             /* "sha256:<hex>", or NULL for an image from scratch */
    image_layer_writer_fn write_layer; /* NULL: no new layer (a config-only step) */
    void *layer_ctx;
    bool drop_empty_layer;   /* a layer without entries is left out (docker commit does) */
    struct json_t *config;   /* the new image's "config" object (borrowed; NULL: {}) */
    const char *author, *comment, *created_by; /* history and config fields (NULL: none) */
    const char *container_id;       /* commit: the container, recorded as "container" and */
    struct json_t *container_config; /* "container_config" (borrowed; NULL: not recorded) */
    bool record_parent;      /* "parent" in the config: commit and build do, import does not */
    const char *tag;         /* "repo:tag" to set, or NULL */
};
/* A new image: the parent's layers plus the written one (stored as a gzip blob unless it came
 * compressed), the parent's config with spec's config, a history entry and the new DiffID.
 * *id_out (may be NULL) gets "sha256:<hex>". */
MUST_CHECK int image_commit(struct image_store *s, const struct image_commit_spec *spec,
                            char **id_out, struct merr *err);

/* The build cache (buildcache.c): key (any text) → image ID. get gives NULL (no error) on a miss
 * or when the image is gone, and counts the use: at once, or with defer when
 * image_build_cache_count is next called (after a build's answer, so a warm build waits for no
 * write; list counts them first, so nobody sees a use missing); put records the step (description: its
 * history text). list: [{CacheID, ID (the image), Description, CreatedAt, LastUsedAt (ns since
 * the epoch), UsageCount}], "Gone": true on those whose image is not there any more; drop
 * removes one by CacheID. */
MUST_CHECK char *image_build_cache_get(struct image_store *s, const char *key, bool defer);
void image_build_cache_count(struct image_store *s);
MUST_CHECK int image_build_cache_put(struct image_store *s, const char *key, const char *image_id,
                                     const char *description, struct merr *err);
MUST_CHECK struct json_t *image_build_cache_list(struct image_store *s, struct merr *err);
MUST_CHECK int image_build_cache_drop(struct image_store *s, const char *cache_id,
                                      struct merr *err);
/* Memos beside the cache (a COPY --from's checksum by its inputs): text of at most 254 bytes by
 * key; get gives NULL on a miss; a prune drops them all. */
MUST_CHECK char *image_build_cache_memo_get(struct image_store *s, const char *key);
MUST_CHECK int image_build_cache_memo_put(struct image_store *s, const char *key,
                                          const char *text, struct merr *err);
MUST_CHECK int image_build_cache_memos_drop(struct image_store *s, struct merr *err);
/* POST /build's X-Registry-Config → the X-Registry-Auth value for ref's registry (*out NULL
 * when it names none). */
MUST_CHECK int image_registry_config_auth(const char *x_registry_config, const char *ref,
                                          char **out, struct merr *err);
/* GET of an http(s) URL into fd (fetchurl.c; ADD <url>, a remote build context): redirects
 * followed (10, http/https only), a status >= 400 is MERR_REMOTE, more than max bytes
 * MERR_INVALID; *mtime_out (may be NULL) = Last-Modified in Unix seconds, 0 when absent. */
MUST_CHECK int image_fetch_url(struct image_store *s, const char *url, int fd,
                               unsigned long long max, long long *mtime_out, struct merr *err);
/* An HTTP-date ("Sun, 06 Nov 1994 08:49:37 GMT") in Unix seconds; 0 when it is not one. */
long long image_http_date_parse(const char *v);
/* A fresh work directory in the store's tmp/ (removed at the next open if left behind). */
MUST_CHECK char *image_store_work_dir(struct image_store *s, struct merr *err);

/* GET /images/{name}/history: [{Id, Created, CreatedBy, Tags, Size, Comment}], newest first,
 * "<missing>" for the steps whose image is not in the store, as dockerd answers. */
MUST_CHECK char *image_history_json(struct image_store *s, const char *name, struct merr *err);
#endif
