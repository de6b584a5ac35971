/* The classic builder (POST /build without BuildKit): a Dockerfile run step by step, each step
 * a container of the previous step's image committed into a new image (config-only steps
 * commit no layer), with dockerd's messages and its build cache (parent image + instruction,
 * + a content checksum for COPY/ADD). RUN steps are containers of the engine's runtime with
 * the confinement of any container; COPY/ADD read only inside the context directory. */
#ifndef MACHINE_ENGINE_BUILD_BUILDER_H
#define MACHINE_ENGINE_BUILD_BUILDER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cleanup.h"

struct merr;
struct ctr_manager;
struct image_store;
struct registry_config;

/* Receives one message ({"stream": ...}, {"aux": ...}, {"status": ...}) in order; < 0 when the
 * client went away (the build stops at the next step). */
typedef int (*build_emit_fn)(void *ctx, const json_t *msg);

struct build_digests;
struct build_opts {
    const char *context_dir;  /* the extracted context (read-only for the builder) */
    const struct build_digests *context_digests; /* its files' digests, taken as they
                                                  * arrived (may be NULL) */
    const char *dockerfile;   /* path inside the context ("Dockerfile") */
    const char *const *tags;  /* "name:tag", NULL-terminated (may be NULL) */
    json_t *buildargs;        /* {"NAME": "value" | null} (may be NULL) */
    json_t *labels;           /* {"k": "v"} (may be NULL) */
    const char *target;       /* stage name, or NULL */
    const char *network_mode; /* RUN containers' network ("default", "none", "host", ...) */
    bool nocache, rm, forcerm, pull;
    const char *x_registry_config; /* credentials for FROM pulls (may be NULL) */
    json_t *host_config;      /* HostConfig fields of RUN containers (resources, ExtraHosts) */
    json_t *cache_from;       /* ["image", ...]: only their steps serve as cache (may be NULL) */
};

struct build_env {
    struct ctr_manager *containers;
    struct image_store *images;
    const struct registry_config *registry;
    build_emit_fn emit;
    void *emit_ctx;
    bool defer_cache_uses; /* hits are counted after the answer (image_build_cache_count) */
};

/* Runs the build. On success *image_id_out gets "sha256:<hex>" of the final image (tagged as
 * asked). Step failures are errors (MERR_INVALID for Dockerfile problems, MERR_REMOTE for a RUN
 * that failed, with exit_code set); the caller turns them into an errorDetail message. */
MUST_CHECK int build_run(const struct build_env *env, const struct build_opts *o,
                         char **image_id_out, int *exit_code, struct merr *err);

/* ---- copy.c: COPY/ADD sources from a directory as a tar ---- */
struct df_ignore;
struct copy_spec {
    const char *root;              /* the directory sources are read from (context or stage) */
    bool extract_archives;         /* ADD: a local tar archive is unpacked at dest */
    const char *work;              /* a scratch directory (archives are unpacked there) */
    const struct df_ignore *ignore; /* paths of root left out (may be NULL) */
    char *const *srcs;              /* as written, relative to root ('/' = root), globs allowed */
    const char *dest;               /* absolute path in the image */
    bool dest_is_dir;               /* dest ends with '/' (or there are several sources) */
    bool (*dest_dir_probe)(void *ctx); /* else: is dest a directory in the image? (may be NULL) */
    void *probe_ctx;
    long uid, gid;                  /* owner of what is copied */
    long chmod;                     /* -1: keep the modes */
    const struct build_digests *digests; /* digests of root's files by inode (may be NULL) */
};
/* Writes the tar of what COPY adds (entries named by their path in the image, without the
 * leading '/') to fd, and a description for the history ("file:<sha>", "dir:<sha>",
 * "multi:<sha>") of its content. Sources never leave root: ".." stops at it and symlinks are
 * resolved inside it. MERR_NOT_FOUND for a missing source, MERR_INVALID for a bad one.
 * fd -1: the description alone (what the cache needs), nothing written. */
MUST_CHECK int build_copy_tar(const struct copy_spec *spec, int fd, char **what_out,
                              struct merr *err);

/* ---- digests.c: the digests of a context's files, taken as the extractor wrote them ---- */
struct layer_file_digest;
struct build_digests {
    struct build_digest_rec *v;
    size_t n, cap;
    bool sealed;
};
/* A layer_file_fn: records one file (ctx is the struct build_digests). */
void build_digests_add(void *ctx, const struct layer_file_digest *d);
/* After the extraction: sorted for lookups; a later record of an inode replaces an earlier. */
void build_digests_seal(struct build_digests *ds);
/* The SHA-256 of the contents of the file (dev, ino) if it was recorded with that size. */
const unsigned char *build_digests_find(const struct build_digests *ds, dev_t dev, ino_t ino,
                                        uint64_t size);
void build_digests_release(struct build_digests *ds);

/* ---- unpack.c ---- */
/* ADD's auto-extraction: when fd holds a tar (plain, gzip, bzip2, xz or zstd) it is unpacked
 * into dir (created; spool is scratch space) with the hardened extractor: 1. 0 when it is not
 * an archive (copied as a file); MERR_INVALID for a hostile one. */
MUST_CHECK int build_unpack_archive(int fd, const char *spool, const char *dir,
                                    struct merr *err);
/* ADD <url>'s file name, as dockerd's: the last element of the URL's path (query and fragment
 * left out); NULL when there is none ("http://h/", "http://h/a/.."). Pure. */
MUST_CHECK char *build_url_file_name(const char *url);

#endif
