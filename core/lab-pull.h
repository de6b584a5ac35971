/* setup.images references pulled once on this computer (core/lab-pull.c). */
#ifndef MACHINE_LAB_PULL_H
#define MACHINE_LAB_PULL_H

#include "cleanup.h"

struct merr;

struct lab_image_ref {
    char *registry; /* host[:port]; Docker Hub is registry-1.docker.io */
    char *repo;     /* library/busybox */
    char *tag;      /* NULL with a digest alone */
    char *digest;   /* sha256:..., or NULL */
    char *familiar; /* the name the image gets on the hosts: busybox:latest, host:5000/a/b:v1 */
};

/* Parses busybox, busybox:1.36, host:5000/team/app:v1, repo@sha256:... (pure). */
MUST_CHECK int lab_image_ref_parse(const char *s, struct lab_image_ref *out, struct merr *err);
void lab_image_ref_clear(struct lab_image_ref *r);

/* A parameter of a "Bearer realm=\"...\",service=\"...\"" challenge, or NULL (pure). */
char *lab_bearer_param(const char *header, const char *key);

/* The docker-archive of image in cache_dir, pulled from its registry when it is not there yet
 * (one pull at a time per image across threads and processes). Caller frees the path. */
MUST_CHECK char *lab_pull_image(const char *cache_dir, const char *image, struct merr *err);

#endif
