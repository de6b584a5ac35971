#include "upview.h"

#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "lab.h"

static double since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

void upview_init(struct upview *v, FILE *out, bool tty, const struct lab *lab)
{
    *v = (struct upview){ .out = out, .tty = tty, .n = lab->n_hosts };
    clock_gettime(CLOCK_MONOTONIC, &v->t0);
    v->hosts = xcalloc(lab->n_hosts + 1, sizeof *v->hosts);
    for (size_t i = 0; i < lab->n_hosts; i++) {
        v->hosts[i].name = lab->hosts[i].name;
        v->hosts[i].start = -1;
        snprintf(v->hosts[i].step, sizeof v->hosts[i].step, "waiting");
    }
    pthread_mutex_init(&v->mu, NULL);
}

void upview_release(struct upview *v)
{
    free(v->hosts);
    v->hosts = NULL;
    pthread_mutex_destroy(&v->mu);
}

char *upview_frame(const struct upview_host *hosts, size_t n, size_t drawn, double now)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (f == NULL)
        abort();
    if (drawn > 0)
        fprintf(f, "\033[%zuA", drawn);
    for (size_t i = 0; i < n; i++) {
        const struct upview_host *h = &hosts[i];
        fprintf(f, "\r\033[2K%-20s %-50.50s", h->name, h->step);
        if (h->start >= 0)
            fprintf(f, " %6.1fs", (h->finished ? h->end : now) - h->start);
        fputc('\n', f);
    }
    if (fclose(f) != 0)
        abort();
    return out;
}

/* With v->mu held. */
static void draw(struct upview *v)
{
    auto_free char *frame = upview_frame(v->hosts, v->n, v->drawn, since(&v->t0));
    fputs(frame, v->out);
    fflush(v->out);
    v->drawn = v->n;
}

void upview_step(void *opaque, const char *host, const char *step)
{
    struct upview *v = opaque;
    double now = since(&v->t0);
    pthread_mutex_lock(&v->mu);
    if (!v->tty) {
        fprintf(v->out, "[%6.1fs] %-20s %s\n", now, host, step);
        fflush(v->out);
        pthread_mutex_unlock(&v->mu);
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        struct upview_host *h = &v->hosts[i];
        if (strcmp(h->name, host) != 0)
            continue;
        if (h->start < 0 || h->finished) /* a second run over it (roll back) restarts its clock */
            h->start = now;
        h->finished = strcmp(step, "done") == 0 || strcmp(step, "failed") == 0 ||
                      strcmp(step, "rolled back") == 0;
        h->end = now;
        snprintf(h->step, sizeof h->step, "%s", step);
    }
    draw(v);
    pthread_mutex_unlock(&v->mu);
}

void upview_tick(struct upview *v)
{
    if (!v->tty)
        return;
    pthread_mutex_lock(&v->mu);
    draw(v);
    pthread_mutex_unlock(&v->mu);
}

void upview_note(struct upview *v, const char *msg)
{
    pthread_mutex_lock(&v->mu);
    if (v->tty && v->drawn > 0) {
        /* the note takes the frame's place; the frame is drawn again below it */
        fprintf(v->out, "\033[%zuA\r\033[J%s\n", v->drawn, msg);
        v->drawn = 0;
        draw(v);
    } else {
        fprintf(v->out, "%s\n", msg);
        fflush(v->out);
    }
    pthread_mutex_unlock(&v->mu);
}
