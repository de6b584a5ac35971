/* The digests the context extractor took of each regular file as it wrote it, kept by inode
 * for the COPY checksum (copy.c), so a warm build does not read its context back. Keyed by
 * (dev, ino), not by name: a name a later tar entry replaced, or a hardlink, cannot be given
 * another file's digest; a size that differs from the record's is not trusted either. */
#include <stdlib.h>
#include <string.h>

#include "build/builder.h"
#include "error.h"
#include "layer/layer.h"

struct build_digest_rec {
    struct layer_file_digest d;
    size_t seq; /* order of arrival: the last record of an inode wins */
};

void build_digests_add(void *ctx, const struct layer_file_digest *d)
{
    struct build_digests *ds = ctx;
    if (ds->n == ds->cap) {
        size_t cap = ds->cap ? ds->cap * 2 : 64;
        struct build_digest_rec *v = realloc(ds->v, cap * sizeof *v);
        if (v == NULL)
            return; /* that file is read again for its checksum */
        ds->v = v;
        ds->cap = cap;
    }
    ds->v[ds->n] = (struct build_digest_rec){ *d, ds->n };
    ds->n++;
    ds->sealed = false;
}

static int rec_cmp(const void *a, const void *b)
{
    const struct build_digest_rec *x = a, *y = b;
    if (x->d.dev != y->d.dev)
        return x->d.dev < y->d.dev ? -1 : 1;
    if (x->d.ino != y->d.ino)
        return x->d.ino < y->d.ino ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void build_digests_seal(struct build_digests *ds)
{
    if (ds->n > 1)
        qsort(ds->v, ds->n, sizeof *ds->v, rec_cmp);
    size_t out = 0; /* keep the last record of each inode */
    for (size_t i = 0; i < ds->n; i++) {
        if (i + 1 < ds->n && ds->v[i + 1].d.dev == ds->v[i].d.dev &&
            ds->v[i + 1].d.ino == ds->v[i].d.ino)
            continue;
        ds->v[out++] = ds->v[i];
    }
    ds->n = out;
    ds->sealed = true;
}

const unsigned char *build_digests_find(const struct build_digests *ds, dev_t dev, ino_t ino,
                                        uint64_t size)
{
    if (ds == NULL || !ds->sealed)
        return NULL;
    size_t lo = 0, hi = ds->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct layer_file_digest *d = &ds->v[mid].d;
        if (d->dev == dev && d->ino == ino)
            return d->size == size ? d->sha256 : NULL;
        if (d->dev < dev || (d->dev == dev && d->ino < ino))
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

void build_digests_release(struct build_digests *ds)
{
    free(ds->v);
    *ds = (struct build_digests){ 0 };
}
