/* Lab files: many machines described in one YAML (or JSON) file, for `machine up`.
 *
 *   name: classroom                 # the lab; every host gets the label lab=classroom
 *   defaults:                       # merged into every host (maps key by key, the host wins)
 *     driver: generic
 *     flags: { generic-ssh-user: root }
 *   hosts:
 *     db: { driver: kvm }
 *     web-{1..3}:                   # a group: web-1, web-2, web-3 ({01..10}, {a,b} work too)
 *       depends_on: [db]
 *       setup:
 *         files: [ { src: site/, dest: /srv/site } ]   # or "site/:/srv/site"
 *         run: [ "mkdir -p /srv/data" ]
 *         images: [ busybox:latest ]
 *     worker: { count: 2 }          # worker-1, worker-2
 *
 * The whole file is read and checked before anything is done with it; errors name the file,
 * the line and the field ("lab.yaml:7: hosts.web-{1..3}.depends_on: unknown host 'dbx'").
 * docs/lab.md has every field. */
#ifndef MACHINE_LAB_H
#define MACHINE_LAB_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "cleanup.h"

struct merr;

#define LAB_MAX_HOSTS 1000

struct lab_host {
    char *name;        /* the machine's name (web-2) */
    char *group;       /* the key it came from (web-{1..3}), or its name */
    int line;          /* line of that key in the file (0 for JSON input) */
    char **depends_on; /* host names, expanded */
    /* What the host should be, as recorded in its machine config and compared by lab_plan:
     * {"driver": s, "flags": {s: s}, "engine": {...}, "labels": {s: s},
     *  "setup": {"files": [{"src": s, "dest": s}], "run": [s], "images": [s]}} */
    json_t *spec;
};

struct lab {
    char *name;
    char *path; /* the file, as given */
    char *dir;  /* its directory: relative setup.files sources are resolved against it */
    struct lab_host *hosts;
    size_t n_hosts;
};

/* Parses and validates lab text (pure: no file system access). path names the file in errors
 * and gives dir. */
MUST_CHECK struct lab *lab_parse(const char *text, size_t len, const char *path, struct merr *err);
/* Reads path and parses it. */
MUST_CHECK struct lab *lab_load(const char *path, struct merr *err);
void lab_free(struct lab *lab);
DEFINE_CLEANUP(struct lab, lab_free)
#define auto_lab __attribute__((cleanup(cleanup_lab_freep)))

const struct lab_host *lab_find(const struct lab *lab, const char *name);

/* ---- lab-plan.c ---- */

/* Expands one brace pattern: "web-{1..3}" → web-1 web-2 web-3; "{01..10}" keeps the width;
 * "n{a,b}" → na nb; several groups multiply. A name without braces is itself. At most max
 * names; a malformed pattern is an error naming it. */
MUST_CHECK char **lab_expand(const char *pattern, size_t max, struct merr *err);

/* Hosts in an order where each comes after what it depends on (file order otherwise): order
 * receives n_hosts indices. A cycle is an error naming it ("a -> b -> a"). */
MUST_CHECK int lab_order(const struct lab *lab, size_t *order, struct merr *err);

enum lab_action {
    LAB_CREATE,      /* no machine of that name */
    LAB_KEEP,        /* the machine's recorded spec is this one */
    LAB_REPROVISION, /* engine options, labels or setup changed */
    LAB_RECREATE,    /* driver or driver flags changed: the machine must be made again */
};
const char *lab_action_name(enum lab_action a);

/* What `machine up` does with host h, given the spec recorded when it was last brought up
 * (NULL: no such machine). */
enum lab_action lab_plan_host(const struct lab_host *h, const json_t *recorded);

#endif
