/* docker stats' extra counters: the raw text of the cgroup and /proc files dockerd reads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fsutil.h"
#include "manager-priv.h"
#include "runtime/runtime.h"

static char *read_cg(struct rt_container *rc, const char *controller, const char *file)
{
    char *out = NULL;
    struct merr ignored;
    return rt_cgroup_read(rc, controller, file, &out, &ignored) == 0 ? out : NULL;
}

int ctr_stats_raw(struct ctr_manager *m, const char *ref, struct ctr_stats_raw *out,
                  struct merr *err)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&m->lock);
    struct ctr_entry *e = mgr_find_locked(m, ref, err);
    if (e == NULL) {
        pthread_mutex_unlock(&m->lock);
        return -1;
    }
    struct rt_container *rc = e->rt;
    if (rc != NULL && (e->c->state.status == CTR_RUNNING || e->c->state.status == CTR_PAUSED)) {
        out->running = true;
        out->v2 = rt_container_cgroup_v2(rc);
        out->memory_stat = read_cg(rc, "memory", "memory.stat");
        if (out->v2) {
            out->blkio = read_cg(rc, "io", "io.stat");
            out->cpu_stat = read_cg(rc, "cpu", "cpu.stat");
        } else {
            out->blkio = read_cg(rc, "blkio", "blkio.throttle.io_service_bytes_recursive");
            out->blkio_ops = read_cg(rc, "blkio", "blkio.throttle.io_serviced_recursive");
            out->cpu_stat = read_cg(rc, "cpu", "cpu.stat");
            out->cpuacct_stat = read_cg(rc, "cpuacct", "cpuacct.stat");
            out->percpu = read_cg(rc, "cpuacct", "cpuacct.usage_percpu");
            out->max_usage = read_cg(rc, "memory", "memory.max_usage_in_bytes");
            out->failcnt = read_cg(rc, "memory", "memory.failcnt");
        }
        auto_free char *netdev = xasprintf("/proc/%d/net/dev", (int)rt_container_pid(rc));
        struct merr ignored;
        if (fs_read_file(netdev, 1 << 20, &out->net_dev, NULL, &ignored) < 0)
            out->net_dev = NULL;
    }
    pthread_mutex_unlock(&m->lock);
    return 0;
}

void ctr_stats_raw_release(struct ctr_stats_raw *r)
{
    free(r->memory_stat);
    free(r->blkio);
    free(r->blkio_ops);
    free(r->cpu_stat);
    free(r->cpuacct_stat);
    free(r->percpu);
    free(r->max_usage);
    free(r->failcnt);
    free(r->net_dev);
    memset(r, 0, sizeof *r);
}
