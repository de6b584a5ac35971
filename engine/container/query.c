/* Queries for the list filters and sizes: every container's ps entry with the facts the
 * filters need, and the size of a container's writable layer. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "manager-priv.h"

/* ---- directory size, as moby's directory.Size: files (not directories), hard links once ---- */

#define SIZE_MAX_INODES 65536
#define SIZE_MAX_DEPTH 256

struct size_walk {
    int64_t total;
    ino_t seen[SIZE_MAX_INODES];
    size_t n_seen;
};

static void size_dir(struct size_walk *w, int dfd, unsigned depth)
{
    DIR *d = fdopendir(dfd);
    if (d == NULL) {
        close(dfd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            int sub = depth < SIZE_MAX_DEPTH
                          ? openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                          : -1;
            if (sub >= 0)
                size_dir(w, sub, depth + 1);
            continue;
        }
        if (st.st_nlink > 1) {
            bool seen = false;
            for (size_t i = 0; i < w->n_seen && !seen; i++)
                seen = w->seen[i] == st.st_ino;
            if (seen)
                continue;
            if (w->n_seen < SIZE_MAX_INODES)
                w->seen[w->n_seen++] = st.st_ino;
        }
        w->total += st.st_size;
    }
    closedir(d);
}

int64_t ctr_dir_size(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct size_walk *w = xcalloc(1, sizeof *w);
    size_dir(w, fd, 0);
    int64_t total = w->total;
    free(w);
    return total;
}

/* ---- list with facts ---- */

static json_t *facts_of(const struct ctr_entry *e)
{
    const struct ctr_state *st = &e->c->state;
    const char *health = "none";
    json_t *inspect = ctr_inspect_json(e->c, e->rootfs, e->log_path);
    const char *h = json_string_value(
        json_object_get(json_object_get(json_object_get(inspect, "State"), "Health"), "Status"));
    if (h != NULL && h[0] != '\0')
        health = h;
    bool running = st->status == CTR_RUNNING || st->status == CTR_PAUSED ||
                   st->status == CTR_RESTARTING;
    json_t *facts = json_pack("{s:b,s:b,s:i,s:s}", "Running", running, "Started",
                              st->started_ns != 0, "ExitCode", st->exit_code, "Health", health);
    json_decref(inspect);
    return facts;
}

static int cmp_created_desc(const void *a, const void *b)
{
    const struct ctr_entry *x = *(struct ctr_entry *const *)a, *y = *(struct ctr_entry *const *)b;
    return x->c->created_ns < y->c->created_ns ? 1 : x->c->created_ns > y->c->created_ns ? -1 : 0;
}

json_t *ctr_list_filterable(struct ctr_manager *m, bool size, struct merr *err)
{
    (void)err;
    json_t *arr = json_array();
    int64_t now = mgr_now_ns();
    pthread_mutex_lock(&m->lock);
    struct ctr_entry **sorted = xcalloc(m->n_entries + 1, sizeof *sorted);
    if (m->n_entries > 0)
        memcpy(sorted, m->entries, m->n_entries * sizeof *sorted);
    qsort(sorted, m->n_entries, sizeof *sorted, cmp_created_desc);
    for (size_t i = 0; i < m->n_entries; i++) {
        json_t *item = ctr_ps_json(sorted[i]->c, now);
        if (m->net.describe != NULL)
            m->net.describe(m->net.data, sorted[i]->c->id, item, true);
        json_object_set_new(item, "_facts", facts_of(sorted[i]));
        if (size)
            json_object_set_new(item, "SizeRw", json_integer(ctr_dir_size(sorted[i]->upper)));
        json_array_append_new(arr, item);
    }
    free(sorted);
    pthread_mutex_unlock(&m->lock);
    return arr;
}

int ctr_size_rw(struct ctr_manager *m, const char *ref, int64_t *out, struct merr *err)
{
    pthread_mutex_lock(&m->lock);
    struct ctr_entry *e = mgr_find_locked(m, ref, err);
    auto_free char *upper = e != NULL ? xstrdup(e->upper) : NULL;
    pthread_mutex_unlock(&m->lock);
    if (upper == NULL)
        return -1;
    *out = ctr_dir_size(upper);
    return 0;
}
