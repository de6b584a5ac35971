/* machine up's live progress. On a terminal: one line per host (its current step and the time
 * it has taken), redrawn in place with ANSI cursor moves at each step and every tick. Otherwise:
 * one plain line per step as it happens ("[  1.2s] web-1  Creating the VM"). */
#ifndef MACHINE_UPVIEW_H
#define MACHINE_UPVIEW_H

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

struct lab;

struct upview_host {
    const char *name; /* borrowed from the lab */
    char step[96];
    double start, end; /* seconds since the view began; start < 0: not started yet */
    bool finished;
};

struct upview {
    FILE *out;
    bool tty;
    struct timespec t0;
    struct upview_host *hosts;
    size_t n;
    size_t drawn; /* lines of the last frame, to move back over */
    pthread_mutex_t mu;
};

void upview_init(struct upview *v, FILE *out, bool tty, const struct lab *lab);
void upview_release(struct upview *v);
/* A lab_progress_fn: host reached step ("done" and "failed" end its clock). */
void upview_step(void *opaque, const char *host, const char *step);
/* Redraws the frame (a terminal only): the running hosts' times move on. */
void upview_tick(struct upview *v);
/* A message above the frame (a terminal) or as a line of its own. */
void upview_note(struct upview *v, const char *msg);

/* The text of a frame (pure): back over `drawn` lines, then one cleared line per host. */
char *upview_frame(const struct upview_host *hosts, size_t n, size_t drawn, double now);

#endif
