/* Pure parsers for OCI / Docker schema2 manifests, indexes and image configs,
 * platform selection and ChainID computation. No I/O. */
#ifndef ENGINE_IMAGE_MANIFEST_H
#define ENGINE_IMAGE_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "cleanup.h"
#include "image/reference.h"

struct merr;

#define MEDIA_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MEDIA_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MEDIA_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MEDIA_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
/* The Accept header of a manifest request: all four types we understand. */
#define MANIFEST_ACCEPT                                                                            \
    MEDIA_OCI_INDEX ", " MEDIA_DOCKER_LIST ", " MEDIA_OCI_MANIFEST ", " MEDIA_DOCKER_MANIFEST

#define MANIFEST_MAX_SIZE (4u * 1024 * 1024) /* CVE-2021-41190 hardening, as containerd */
#define IMAGE_CONFIG_MAX_SIZE (8u * 1024 * 1024)
#define MANIFEST_MAX_LAYERS 128
#define MANIFEST_MAX_ENTRIES 1024

enum manifest_kind { MANIFEST_KIND_INDEX, MANIFEST_KIND_IMAGE };

enum layer_comp { LAYER_COMPRESSION_NONE, LAYER_COMPRESSION_GZIP, LAYER_COMPRESSION_ZSTD };

struct platform {
    char os[32];
    char arch[32];
    char variant[32];
};

struct descriptor {
    char media_type[128];
    char digest[DIGEST_BUF_LEN]; /* validated */
    int64_t size;
    struct platform platform;    /* index entries only */
    enum layer_comp comp;        /* layers only */
    bool attestation;            /* index entry annotated as an attestation manifest */
};

struct manifest {
    enum manifest_kind kind;
    char media_type[128];
    struct descriptor config;    /* image manifests */
    size_t n_layers;
    struct descriptor *layers;
    size_t n_entries;            /* indexes */
    struct descriptor *entries;
};

/* Parses a manifest or index of at most MANIFEST_MAX_SIZE bytes. content_type (may be
 * NULL) is used when the document has no mediaType. Rejects documents holding both
 * `manifests` and `layers`, schema 1, unknown layer types and malformed digests. */
MUST_CHECK int image_manifest_parse(const char *buf, size_t len, const char *content_type,
                              struct manifest **out, struct merr *err);
void image_manifest_free(struct manifest *m);
DEFINE_CLEANUP(struct manifest, image_manifest_free)
#define auto_manifest __attribute__((cleanup(cleanup_image_manifest_freep)))

/* "os/arch[/variant]"; NULL or "" gives the host platform (linux/amd64 on x86-64).
 * Architecture aliases are normalized (x86_64 → amd64, aarch64 → arm64). */
MUST_CHECK int image_platform_parse(const char *s, struct platform *p, struct merr *err);
void image_platform_host(struct platform *p);

/* The index entry for want: os and arch equal, variant equal when want has one;
 * `unknown/unknown` and attestation entries never match. NULL + MERR_NOT_FOUND. */
const struct descriptor *image_manifest_select_platform(const struct manifest *index,
                                                  const struct platform *want, struct merr *err);

struct image_config_info {
    struct platform platform;
    char created[64];        /* RFC 3339 as found, or "" */
    size_t n_diff_ids;
    char (*diff_ids)[DIGEST_BUF_LEN];
};

/* Parses the parts of an image config the store needs; rootfs.type must be "layers". */
MUST_CHECK int image_config_parse(const char *buf, size_t len, struct image_config_info **out,
                                  struct merr *err);
void image_config_info_free(struct image_config_info *c);
DEFINE_CLEANUP(struct image_config_info, image_config_info_free)
#define auto_config_info __attribute__((cleanup(cleanup_image_config_info_freep)))

/* "sha256:<hex>" of buf. */
void sha256_digest(const void *buf, size_t len, char out[DIGEST_BUF_LEN]);

/* ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)). */
MUST_CHECK int image_chain_ids_compute(const char (*diff_ids)[DIGEST_BUF_LEN], size_t n,
                                 char (*out)[DIGEST_BUF_LEN], struct merr *err);

/* RFC 3339 timestamp → seconds since the epoch (fraction and zone honoured); -1 if bad. */
long long rfc3339_to_unix(const char *s);

#endif
