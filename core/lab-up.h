/* `machine up` / `machine down`: a lab file's hosts brought to what it says, in dependency order
 * and at most N at once, through the same lifecycle as `machine create`. */
#ifndef MACHINE_LAB_UP_H
#define MACHINE_LAB_UP_H

#include <stdatomic.h>
#include <stdbool.h>

#include "cleanup.h"
#include "lab.h"

struct machine_ctx;
struct merr;

/* One line of progress for one host ("Creating the VM", "setup: run 2/3", ...). Called from
 * worker threads, one call at a time. */
typedef void (*lab_progress_fn)(void *opaque, const char *host, const char *step);

struct lab_result {
    enum lab_action action;
    bool done;        /* the action ran to its end */
    bool skipped;     /* not tried: a host it depends on failed, or the run was stopped */
    bool rolled_back; /* created by this run, removed again by --abort-on-failure */
    atomic_bool running; /* being worked on now (read by the CLI's interrupt handler) */
    double seconds;
    char error[1024]; /* why it failed or was skipped */
};

/* Everything that can be checked before a host is touched: drivers exist, every flag is one of
 * the driver's, engine options are ones machine-engine takes, setup.images are archives that
 * exist. */
MUST_CHECK int lab_check(const struct machine_ctx *ctx, const struct lab *lab, struct merr *err);

struct lab_up_opts {
    int parallel; /* hosts worked on at once, 1..64 */
    /* The first host that fails stops the run: no other host is started, the running ones stop
     * at their next step, and the machines this run created (or re-created) are removed again;
     * machines it kept or re-provisioned stay. */
    bool abort_on_failure;
    /* Set from outside (the CLI's SIGINT handler): no host is started after it, the running
     * ones stop at their next step and are recorded as failed. NULL: none. */
    const atomic_int *interrupt;
    lab_progress_fn progress;
    void *opaque;
};

/* Brings every host up; results has lab->n_hosts entries (in the lab's host order). Returns the
 * number of hosts that failed or were skipped, or -1 when nothing could start (err). */
int lab_up(const struct machine_ctx *ctx, const struct lab *lab, const struct lab_up_opts *opts,
           struct lab_result *results, struct merr *err);

/* ---- lab-images.c: setup.images ---- */

/* The file of a setup.images entry that is a docker-archive tar (a name ending in .tar, .tar.gz
 * or .tgz, relative to dir unless absolute); NULL for an image reference (pulled once on this
 * computer, core/lab-pull.h). Pure. */
MUST_CHECK char *lab_image_archive(const char *dir, const char *image);

/* Every setup.images entry of h is an archive that exists or a valid image reference (errors
 * name file, line, field). */
MUST_CHECK int lab_check_images(const struct lab *lab, const struct lab_host *h, struct merr *err);

struct machine;
/* `docker load` of each of h's images into m's engine (its TLS API), one at a time, references
 * pulled first into <store>/cache/images (once: the other hosts wait for it and reuse it); say()
 * gets a progress step before each. */
MUST_CHECK int lab_load_images(const struct machine_ctx *ctx, const struct lab *lab,
                               const struct lab_host *h, const struct machine *m,
                               void (*say)(void *opaque, const char *step), void *opaque,
                               struct merr *err);

/* The machines of lab NAME (label lab=NAME), in store order; NULL-terminated. */
MUST_CHECK char **lab_members(const struct machine_ctx *ctx, const char *name, struct merr *err);

#endif
