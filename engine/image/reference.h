/* Pure parsers for image references and content digests (docker's grammar,
 * github.com/distribution/reference). No I/O: every function works on buffers. */
#ifndef ENGINE_IMAGE_REFERENCE_H
#define ENGINE_IMAGE_REFERENCE_H

#include <stdbool.h>
#include <stddef.h>

#include "cleanup.h"

struct merr;

#define DIGEST_STR_LEN 71 /* "sha256:" + 64 lowercase hex */
#define DIGEST_BUF_LEN 72
#define REF_NAME_MAX 255  /* domain + "/" + path */
#define REF_TAG_MAX 128

/* A normalized reference: `alpine` is {docker.io, library/alpine, latest, ""}. */
struct image_ref {
    char domain[REF_NAME_MAX + 1]; /* "docker.io", "127.0.0.1:5000", "[::1]:5000" */
    char path[REF_NAME_MAX + 1];   /* "library/alpine", "x/y" */
    char tag[REF_TAG_MAX + 1];     /* "" when the reference names only a digest */
    char digest[DIGEST_BUF_LEN];   /* "" or "sha256:<hex>" */
};

/* True only for "sha256:" followed by exactly 64 lowercase hex digits. Every digest
 * that reaches a path or a URL goes through this first (CVE-2024-3727). */
bool image_digest_is_valid(const char *s);
MUST_CHECK int image_digest_validate(const char *s, struct merr *err);

/* The 64 hex digits of a valid digest. */
static inline const char *image_digest_hex(const char *digest)
{
    return digest + 7;
}

/* Parses and normalizes: adds docker.io and library/, and tag "latest" when neither
 * a tag nor a digest is given. "name:tag@digest" keeps both. */
MUST_CHECK int image_ref_parse(const char *s, struct image_ref *ref, struct merr *err);

/* "docker.io/library/alpine" */
void image_ref_repo(const struct image_ref *ref, char *buf, size_t len);
/* "alpine", "127.0.0.1:5000/x/y": docker's short form for display. */
void image_ref_familiar_repo(const struct image_ref *ref, char *buf, size_t len);
/* Host to dial for the reference's domain: docker.io is served by registry-1.docker.io. */
const char *image_ref_registry_host(const struct image_ref *ref);

/* Familiar form of a full repository name ("docker.io/library/alpine" → "alpine"). */
void image_repo_familiar(const char *full, char *buf, size_t len);

/* True when host (with optional ":port", "[v6]:port") is 127.0.0.0/8, ::1 or "localhost". */
bool image_host_is_loopback(const char *hostport);

#endif
