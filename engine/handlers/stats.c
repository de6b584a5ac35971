/* GET /containers/{id}/stats in dockerd's shape (docker stats, docker-py): cgroup counters
 * through the runtime, memory.stat, block I/O, per-CPU usage, throttling and the container's
 * network interfaces, one sample (stream=false, with precpu from a second one unless one-shot)
 * or a stream of them. */
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "container/container.h"
#include "container/manager.h"
#include "error.h"
#include "fsutil.h"
#include "handlers.h"
#include "runtime/runtime.h"

#define STATS_INTERVAL_MS 1000
#define STATS_STREAM_MAX 86400 /* samples: a day at one per second */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint64_t system_cpu_ns(void)
{
    auto_fclose FILE *f = fopen("/proc/stat", "re");
    if (f == NULL)
        return 0;
    char line[512];
    if (fgets(line, sizeof line, f) == NULL || strncmp(line, "cpu ", 4) != 0)
        return 0;
    uint64_t total = 0;
    char *p = line + 4;
    for (int i = 0; i < 8; i++) {
        char *end;
        unsigned long long v = strtoull(p, &end, 10);
        if (end == p)
            break;
        total += v;
        p = end;
    }
    long hz = sysconf(_SC_CLK_TCK);
    return hz > 0 ? total * (1000000000ULL / (uint64_t)hz) : 0;
}

/* ---- pure builders over the files' text ---- */

/* "key value" lines → {key: value}. */
static json_t *stats_kv_json(const char *text)
{
    json_t *o = json_object();
    for (const char *p = text; p != NULL && *p != '\0';) {
        const char *eol = strchr(p, '\n');
        size_t len = eol != NULL ? (size_t)(eol - p) : strlen(p);
        char key[128];
        unsigned long long v;
        char line[512];
        snprintf(line, sizeof line, "%.*s", (int)(len < 511 ? len : 511), p);
        if (sscanf(line, "%127s %llu", key, &v) == 2)
            json_object_set_new(o, key, json_integer((json_int_t)v));
        p = eol != NULL ? eol + 1 : NULL;
    }
    return o;
}

static json_int_t kv(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* v1 blkio "8:0 Read 4096" lines, v2 io.stat "8:0 rbytes=4096 wbytes=0 rios=1 wios=0 ..." */
static json_t *stats_blkio_json(const char *text, bool v2, bool ops)
{
    if (text == NULL)
        return json_null();
    json_t *arr = json_array();
    for (const char *p = text; *p != '\0';) {
        const char *eol = strchr(p, '\n');
        size_t len = eol != NULL ? (size_t)(eol - p) : strlen(p);
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)(len < 1023 ? len : 1023), p);
        unsigned maj, min;
        int n = 0;
        if (sscanf(line, "%u:%u%n", &maj, &min, &n) == 2) {
            if (!v2) {
                char op[32];
                unsigned long long v;
                if (sscanf(line + n, "%31s %llu", op, &v) == 2)
                    json_array_append_new(arr, json_pack("{s:i,s:i,s:s,s:I}", "major", maj,
                                                         "minor", min, "op", op, "value",
                                                         (json_int_t)v));
            } else {
                json_t *f = json_object();
                char *save = NULL;
                for (char *t = strtok_r(line + n, " ", &save); t != NULL;
                     t = strtok_r(NULL, " ", &save)) {
                    char *eq = strchr(t, '=');
                    if (eq != NULL) {
                        *eq = '\0';
                        json_object_set_new(f, t, json_integer(strtoll(eq + 1, NULL, 10)));
                    }
                }
                const char *rk = ops ? "rios" : "rbytes", *wk = ops ? "wios" : "wbytes";
                json_array_append_new(arr, json_pack("{s:i,s:i,s:s,s:I}", "major", maj, "minor",
                                                     min, "op", "read", "value", kv(f, rk)));
                json_array_append_new(arr, json_pack("{s:i,s:i,s:s,s:I}", "major", maj, "minor",
                                                     min, "op", "write", "value", kv(f, wk)));
                json_decref(f);
            }
        }
        p = eol != NULL ? eol + 1 : p + len;
    }
    return arr;
}

/* /proc/PID/net/dev → {"eth0": {rx_bytes, rx_packets, rx_errors, rx_dropped, tx_...}}, lo left
 * out; NULL when there is no other interface. */
static json_t *stats_networks_json(const char *text)
{
    if (text == NULL)
        return NULL;
    json_t *o = json_object();
    for (const char *p = text; *p != '\0';) {
        const char *eol = strchr(p, '\n');
        size_t len = eol != NULL ? (size_t)(eol - p) : strlen(p);
        char line[512];
        snprintf(line, sizeof line, "%.*s", (int)(len < 511 ? len : 511), p);
        char *colon = strchr(line, ':');
        unsigned long long f[16];
        if (colon != NULL) {
            *colon = '\0';
            char *name = line + strspn(line, " ");
            int got = sscanf(colon + 1,
                             "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu "
                             "%llu %llu %llu",
                             &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7], &f[8], &f[9],
                             &f[10], &f[11], &f[12], &f[13], &f[14], &f[15]);
            if (got == 16 && strcmp(name, "lo") != 0)
                json_object_set_new(
                    o, name,
                    json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "rx_bytes", (json_int_t)f[0],
                              "rx_packets", (json_int_t)f[1], "rx_errors", (json_int_t)f[2],
                              "rx_dropped", (json_int_t)f[3], "tx_bytes", (json_int_t)f[8],
                              "tx_packets", (json_int_t)f[9], "tx_errors", (json_int_t)f[10],
                              "tx_dropped", (json_int_t)f[11]));
        }
        p = eol != NULL ? eol + 1 : p + len;
    }
    if (json_object_size(o) == 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- samples ---- */

struct stats_sample {
    struct rt_stats st;
    struct ctr_stats_raw raw;
    uint64_t system_ns;
    int64_t at_ns;
    bool running;
};

static void sample_release(struct stats_sample *s)
{
    ctr_stats_raw_release(&s->raw);
    memset(s, 0, sizeof *s);
}

static json_t *cpu_json(const struct stats_sample *s, long cpus)
{
    json_int_t user = 0, kernel = 0, periods = 0, throttled = 0, throttled_ns = 0;
    json_t *cpu_stat = stats_kv_json(s->raw.cpu_stat);
    periods = kv(cpu_stat, "nr_periods");
    throttled = kv(cpu_stat, "nr_throttled");
    if (s->raw.v2) {
        user = kv(cpu_stat, "user_usec") * 1000;
        kernel = kv(cpu_stat, "system_usec") * 1000;
        throttled_ns = kv(cpu_stat, "throttled_usec") * 1000;
    } else {
        json_t *acct = stats_kv_json(s->raw.cpuacct_stat);
        long hz = sysconf(_SC_CLK_TCK);
        json_int_t tick = hz > 0 ? 1000000000LL / hz : 10000000LL;
        user = kv(acct, "user") * tick;
        kernel = kv(acct, "system") * tick;
        json_decref(acct);
        throttled_ns = kv(cpu_stat, "throttled_time");
    }
    json_decref(cpu_stat);
    json_t *usage = json_pack("{s:I,s:I,s:I}", "total_usage", (json_int_t)s->st.cpu_usage_ns,
                              "usage_in_kernelmode", kernel, "usage_in_usermode", user);
    if (!s->raw.v2 && s->raw.percpu != NULL) {
        json_t *per = json_array();
        for (char *p = s->raw.percpu, *end;; p = end) {
            unsigned long long v = strtoull(p, &end, 10);
            if (end == p)
                break;
            json_array_append_new(per, json_integer((json_int_t)v));
        }
        json_object_set_new(usage, "percpu_usage", per);
    }
    json_t *cpu = json_pack("{s:o,s:I,s:I,s:{s:I,s:I,s:I}}", "cpu_usage", usage,
                            "system_cpu_usage", (json_int_t)s->system_ns, "online_cpus",
                            (json_int_t)cpus, "throttling_data", "periods", periods,
                            "throttled_periods", throttled, "throttled_time", throttled_ns);
    if (!s->running || cpus == 0) { /* omitempty in dockerd's CPUStats */
        json_object_del(cpu, "system_cpu_usage");
        json_object_del(cpu, "online_cpus");
    }
    return cpu;
}

static json_t *memory_json(const struct stats_sample *s)
{
    json_t *mem = json_object();
    if (!s->running)
        return mem;
    uint64_t limit = s->st.memory_limit;
    if (limit == UINT64_MAX || limit == 0) {
        long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
        limit = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : 0;
    }
    json_object_set_new(mem, "usage", json_integer((json_int_t)s->st.memory_usage));
    if (s->raw.max_usage != NULL)
        json_object_set_new(mem, "max_usage",
                            json_integer(strtoll(s->raw.max_usage, NULL, 10)));
    json_t *st = stats_kv_json(s->raw.memory_stat);
    if (json_object_get(st, "inactive_file") == NULL && !s->raw.v2)
        json_object_set_new(st, "inactive_file",
                            json_integer((json_int_t)s->st.memory_inactive_file));
    json_object_set_new(mem, "stats", st);
    if (s->raw.failcnt != NULL)
        json_object_set_new(mem, "failcnt", json_integer(strtoll(s->raw.failcnt, NULL, 10)));
    json_object_set_new(mem, "limit", json_integer((json_int_t)limit));
    return mem;
}

static json_t *blkio_json(const struct stats_sample *s)
{
    const char *const rest[] = { "io_queue_recursive",    "io_service_time_recursive",
                                 "io_wait_time_recursive", "io_merged_recursive",
                                 "io_time_recursive",      "sectors_recursive" };
    json_t *b = json_object();
    json_object_set_new(b, "io_service_bytes_recursive",
                        s->running ? stats_blkio_json(s->raw.blkio, s->raw.v2, false) : json_null());
    json_object_set_new(b, "io_serviced_recursive",
                        s->running && !s->raw.v2 ? stats_blkio_json(s->raw.blkio_ops, false, true)
                                                 : json_null());
    for (size_t i = 0; i < sizeof rest / sizeof rest[0]; i++)
        json_object_set_new(b, rest[i], json_null());
    return b;
}

static json_t *stats_json(const char *id, const char *name, const struct stats_sample *cur,
                          const struct stats_sample *pre)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    struct stats_sample zero = { 0 };
    if (pre == NULL)
        pre = &zero;
    auto_free char *read = fmt_rfc3339_nano(cur->running ? cur->at_ns : 0);
    auto_free char *preread = fmt_rfc3339_nano(pre->running ? pre->at_ns : 0);
    auto_free char *slash = xasprintf("/%s", name);
    json_t *pids = json_object();
    if (cur->running) {
        json_object_set_new(pids, "current", json_integer((json_int_t)cur->st.pids_current));
        if (cur->st.pids_limit != UINT64_MAX)
            json_object_set_new(pids, "limit", json_integer((json_int_t)cur->st.pids_limit));
    }
    json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:o,s:o,s:i,s:{},s:o,s:o,s:o}", "name", slash, "id", id,
                          "read", read, "preread", preread, "pids_stats", pids, "blkio_stats",
                          blkio_json(cur), "num_procs", 0, "storage_stats", "cpu_stats",
                          cpu_json(cur, cur->running ? cpus : 0), "precpu_stats",
                          cpu_json(pre, pre->running ? cpus : 0), "memory_stats",
                          memory_json(cur));
    json_t *nets = cur->running ? stats_networks_json(cur->raw.net_dev) : NULL;
    if (nets != NULL)
        json_object_set_new(j, "networks", nets);
    return j;
}

static int sample(struct engine_services *s, const char *ref, struct stats_sample *out,
                  char id[65], char **name, struct merr *err)
{
    sample_release(out);
    free(*name);
    *name = NULL;
    if (ctr_stats(s->containers, ref, &out->st, &out->running, id, name, err) < 0) {
        if (err->code == MERR_NOT_FOUND)
            return -1;
        out->running = false; /* it stopped between the lookup and the sample */
        memset(&out->st, 0, sizeof out->st);
    }
    struct merr ignored;
    if (out->running && ctr_stats_raw(s->containers, ref, &out->raw, &ignored) < 0)
        memset(&out->raw, 0, sizeof out->raw);
    out->system_ns = system_cpu_ns();
    out->at_ns = now_ns();
    return 0;
}

static int stream_samples(struct api_request *req, struct engine_services *s, const char *ref,
                          struct stats_sample *pre, char id[65], char **name, struct merr *err)
{
    struct stats_sample cur = { 0 };
    int rc = api_stream_begin(req, 200, API_MEDIA_JSON, err);
    json_t *first = stats_json(id, *name, pre, NULL);
    if (rc == 0)
        rc = api_stream_write_json(req, first, err);
    json_decref(first);
    for (int i = 0; rc == 0 && i < STATS_STREAM_MAX; i++) {
        struct pollfd p[2] = { { .fd = api_request_cancel_fd(req), .events = POLLIN },
                               { .fd = api_request_fd(req), .events = POLLRDHUP } };
        if (poll(p, 2, STATS_INTERVAL_MS) > 0)
            break; /* stopping, or the client hung up */
        if (sample(s, ref, &cur, id, name, err) < 0)
            break; /* removed */
        json_t *j = stats_json(id, *name, &cur, pre);
        rc = api_stream_write_json(req, j, err);
        json_decref(j);
        sample_release(pre);
        *pre = cur;
        memset(&cur, 0, sizeof cur);
    }
    sample_release(&cur);
    return rc == 0 ? api_stream_end(req, err) : -1;
}

static int stats(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    const char *ref = api_request_var(req, "id");
    const char *stream_q = api_request_query(req, "stream");
    bool stream = stream_q == NULL || api_request_query_bool(req, "stream");
    bool one_shot = api_request_query_bool(req, "one-shot");
    char id[65];
    auto_free char *name = NULL;
    struct stats_sample pre = { 0 }, cur = { 0 };
    int rc = -1;
    if (sample(s, ref, &pre, id, &name, err) < 0)
        goto out;
    if (stream) {
        rc = stream_samples(req, s, ref, &pre, id, &name, err);
        goto out;
    }
    if (!one_shot && pre.running) {
        struct pollfd p = { .fd = api_request_cancel_fd(req), .events = POLLIN };
        poll(&p, 1, STATS_INTERVAL_MS);
        if (sample(s, ref, &cur, id, &name, err) < 0)
            goto out;
        rc = api_reply_json(req, 200, stats_json(id, name, &cur, &pre), err);
    } else {
        rc = api_reply_json(req, 200, stats_json(id, name, &pre, NULL), err);
    }
out:
    sample_release(&pre);
    sample_release(&cur);
    return rc;
}

static const struct api_param stats_params[] = {
    API_PARAM("stream"), API_PARAM("one-shot"), API_PARAMS_END,
};

static const struct api_route routes[] = {
    { "GET", "/containers/{id}/stats", stats, API_ROUTE_WORKER, stats_params },
};

int handlers_register_stats(struct api_router *r, struct engine_services *s, struct merr *err)
{
    return api_router_add_table(r, routes, sizeof routes / sizeof routes[0], s, err);
}
