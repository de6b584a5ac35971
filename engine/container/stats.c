/* docker stats: a running container's cgroup counters through the runtime. */
#include <string.h>

#include "error.h"
#include "fsutil.h"
#include "manager-priv.h"

int ctr_stats(struct ctr_manager *m, const char *ref, struct rt_stats *out, bool *running,
              char id[65], char **name, struct merr *err)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&m->lock);
    struct ctr_entry *e = mgr_find_locked(m, ref, err);
    int rc = -1;
    if (e != NULL) {
        memcpy(id, e->c->id, CTR_ID_LEN + 1);
        *name = xstrdup(e->c->name);
        *running = e->rt != NULL && (e->c->state.status == CTR_RUNNING ||
                                      e->c->state.status == CTR_PAUSED); /* dockerd: paused still runs */
        rc = *running ? rt_stats(e->rt, out, err) : 0;
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}
