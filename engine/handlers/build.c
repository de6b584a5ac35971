/* POST /build: the classic builder (what `DOCKER_BUILDKIT=0 docker build`, the docker CLI
 * without buildx, docker-compose 1.29 and docker-py send). The context tar is extracted into the
 * store's work area with the hardened layer extractor as it arrives; the build's messages are
 * streamed back as dockerd's JSON lines. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "build/builder.h"
#include "error.h"
#include "events/events.h"
#include "fsutil.h"
#include "handlers.h"
#include "image/image.h"
#include "layer/layer.h"


struct build_out {
    struct api_request *req;
    bool quiet;
    bool gone;
    bool begun; /* the 200 is sent with the first message: a build that fails before any
                 * (an empty or unparsable Dockerfile) is an HTTP error, as dockerd answers */
};

static int out_begin(struct build_out *o, struct merr *err)
{
    if (o->begun)
        return 0;
    if (api_stream_begin(o->req, 200, API_MEDIA_JSON, err) < 0)
        return -1;
    o->begun = true;
    return 0;
}

static int emit(void *ctx, const json_t *msg)
{
    struct build_out *o = ctx;
    struct merr err = MERR_INIT;
    if (o->gone)
        return -1;
    if (o->quiet && json_object_get(msg, "stream") != NULL)
        return 0;
    if (out_begin(o, &err) < 0 || api_stream_write_json(o->req, msg, &err) < 0) {
        o->gone = true;
        return -1;
    }
    return 0;
}

static ssize_t read_body(void *ctx, void *buf, size_t len, struct merr *err)
{
    return api_request_body_read(ctx, buf, len, err);
}

/* The request body extracted as it arrives (nothing spooled), each file's digest taken as it
 * is written (COPY's checksum then reads nothing back): an empty body is an empty context,
 * whose missing Dockerfile the builder reports. */
static int receive_context(struct api_request *req, const char *dir, struct build_digests *ds,
                           struct merr *err)
{
    struct layer_result res;
    if (mkdir(dir, 0755) < 0)
        return merr_set(err, MERR_IO, errno, "cannot prepare the build context");
    if (layer_extract_plain_reader(read_body, req, LAYER_COMP_DETECT, dir, NULL,
                                   build_digests_add, ds, &res, err) < 0)
        return merr_prefix(err, "the build context");
    build_digests_seal(ds);
    return 0;
}

static int extract_context(const char *tar, const char *dir, struct merr *err)
{
    auto_close int fd = open(tar, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || mkdir(dir, 0755) < 0)
        return merr_set(err, MERR_IO, errno, "cannot prepare the build context");
    if (st.st_size == 0)
        return 0; /* no context: the Dockerfile must come from it, and is missing */
    struct layer_result res;
    if (layer_extract_plain_fd(fd, LAYER_COMP_DETECT, dir, NULL, &res, err) < 0)
        return merr_prefix(err, "the build context");
    return 0;
}

#define REMOTE_CONTEXT_MAX (8ULL << 30)

static bool looks_like_archive(int fd)
{
    unsigned char h[512];
    ssize_t n = pread(fd, h, sizeof h, 0);
    return (n >= 2 && h[0] == 0x1f && h[1] == 0x8b) ||                          /* gzip */
           (n >= 4 && h[0] == 0x28 && h[1] == 0xb5 && h[2] == 0x2f && h[3] == 0xfd) || /* zstd */
           (n == (ssize_t)sizeof h && memcmp(h + 257, "ustar", 5) == 0);
}

/* remote=<URL>: a tarball (plain, gzip or zstd) is the context; any other text is the
 * Dockerfile alone, as dockerd takes it. Git repositories are refused. */
static int remote_context(struct engine_services *s, const char *url, const char *tar,
                          const char *dir, const char *dockerfile, struct merr *err)
{
    size_t n = strlen(url);
    if (strncmp(url, "git@", 4) == 0 || strncmp(url, "git://", 6) == 0 ||
        (n > 4 && strcmp(url + n - 4, ".git") == 0) || strstr(url, ".git#") != NULL)
        return merr_set(err, MERR_INVALID, 0, "a git repository as build context (%s) is not "
                        "supported by machine-engine; send the context as a tar", url);
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return merr_set(err, MERR_INVALID, 0, "remote build context '%s' is not supported by "
                        "machine-engine: http and https URLs of a tarball or a Dockerfile only",
                        url);
    auto_close int fd = open(tar, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return merr_set(err, MERR_IO, errno, "cannot spool the build context");
    if (image_fetch_url(s->images, url, fd, REMOTE_CONTEXT_MAX, NULL, err) < 0)
        return merr_prefix(err, "the remote build context");
    if (looks_like_archive(fd))
        return extract_context(tar, dir, err);
    auto_free char *df = xasprintf("%s/%s", dir, dockerfile != NULL && dockerfile[0] &&
                                                  strchr(dockerfile, '/') == NULL
                                              ? dockerfile
                                              : "Dockerfile");
    if (mkdir(dir, 0755) < 0 || rename(tar, df) < 0)
        return merr_set(err, MERR_IO, errno, "cannot prepare the build context");
    return 0;
}

/* Options the classic builder has and machine-engine does not do: refused, never dropped. */
static int refuse_unsupported(struct api_request *req, struct merr *err)
{
    static const char *const text[] = { "cgroupparent", "outputs", "session", NULL };
    const char *v = api_request_query(req, "version");
    if (v != NULL && strcmp(v, "2") == 0)
        return merr_set(err, MERR_UNSUPPORTED, 0,
                        "BuildKit is not supported by machine-engine; use the classic builder "
                        "(DOCKER_BUILDKIT=0)");
    if (api_request_query_bool(req, "squash"))
        return merr_set(err, MERR_INVALID, 0, "squash is not supported by machine-engine");
    for (size_t i = 0; text[i] != NULL; i++) {
        v = api_request_query(req, text[i]);
        if (v != NULL && v[0] != '\0' && strcmp(v, "[]") != 0)
            return merr_set(err, MERR_INVALID, 0, "build option %s is not supported by "
                            "machine-engine", text[i]);
    }
    v = api_request_query(req, "isolation"); /* "default" is the only one on Linux */
    if (v != NULL && v[0] != '\0' && strcmp(v, "default") != 0)
        return merr_set(err, MERR_INVALID, 0, "isolation %s is not supported by machine-engine", v);
    v = api_request_query(req, "platform");
    if (v != NULL && v[0] != '\0' && strcmp(v, "linux") != 0 && strcmp(v, "linux/amd64") != 0)
        return merr_set(err, MERR_INVALID, 0, "platform %s is not supported by machine-engine",
                        v);
    return 0;
}

/* The RUN steps' resources, as a container's HostConfig fields (checked where containers'
 * are): memory, memswap, cpushares, cpuquota, cpuperiod, shmsize, cpusetcpus, cpusetmems,
 * ulimits, extrahosts. */
static int step_host_config(struct api_request *req, json_t **out, struct merr *err)
{
    static const struct {
        const char *query, *field;
    } numeric[] = { { "memory", "Memory" },       { "memswap", "MemorySwap" },
                    { "cpushares", "CpuShares" }, { "cpuquota", "CpuQuota" },
                    { "cpuperiod", "CpuPeriod" }, { "shmsize", "ShmSize" } },
      text[] = { { "cpusetcpus", "CpusetCpus" }, { "cpusetmems", "CpusetMems" } };
    json_t *hc = json_object();
    *out = hc;
    for (size_t i = 0; i < sizeof numeric / sizeof numeric[0]; i++) {
        long long v = 0;
        if (api_request_query_int(req, numeric[i].query, 0, &v, err) < 0)
            return -1;
        if (v != 0)
            json_object_set_new(hc, numeric[i].field, json_integer(v));
    }
    for (size_t i = 0; i < sizeof text / sizeof text[0]; i++) {
        const char *v = api_request_query(req, text[i].query);
        if (v != NULL && v[0] != '\0')
            json_object_set_new(hc, text[i].field, json_string(v));
    }
    const char *ul = api_request_query(req, "ulimits");
    if (ul != NULL && ul[0] != '\0') {
        json_t *v = json_loads(ul, 0, NULL);
        if (!json_is_array(v)) {
            json_decref(v);
            return merr_set(err, MERR_INVALID, 0, "invalid ulimits: %s", ul);
        }
        json_object_set_new(hc, "Ulimits", v);
    }
    auto_free const char **hosts = api_request_query_all(req, "extrahosts");
    json_t *eh = json_array();
    /* the docker CLI sends each host:ip as its own value, older clients one comma list */
    for (size_t i = 0; hosts != NULL && hosts[i] != NULL; i++) {
        auto_free char *copy = xstrdup(hosts[i]);
        for (char *save = NULL, *t = strtok_r(copy, ",", &save); t != NULL;
             t = strtok_r(NULL, ",", &save))
            json_array_append_new(eh, json_string(t));
    }
    if (json_array_size(eh) > 0)
        json_object_set_new(hc, "ExtraHosts", eh);
    else
        json_decref(eh);
    return 0;
}

/* cachefrom: a JSON list of images whose steps may serve as cache (alone, as dockerd). */
static int cache_from(struct api_request *req, json_t **out, struct merr *err)
{
    const char *v = api_request_query(req, "cachefrom");
    *out = NULL;
    if (v == NULL || v[0] == '\0')
        return 0;
    *out = json_loads(v, 0, NULL);
    if (!json_is_array(*out)) {
        json_decref(*out);
        *out = NULL;
        return merr_set(err, MERR_INVALID, 0, "invalid cachefrom: %s", v);
    }
    return 0;
}

static int json_query(struct api_request *req, const char *key, json_t **out, struct merr *err)
{
    const char *v = api_request_query(req, key);
    *out = NULL;
    if (v == NULL || v[0] == '\0')
        return 0;
    json_error_t jerr;
    *out = json_loads(v, 0, &jerr);
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return merr_set(err, MERR_INVALID, 0, "invalid %s: %s", key, jerr.text);
    }
    return 0;
}

static int stream_error(struct api_request *req, const struct merr *cause, int code,
                        struct merr *err)
{
    json_t *e = code != 0 ? json_pack("{s:{s:i,s:s},s:s}", "errorDetail", "code", code,
                                      "message", cause->msg, "error", cause->msg)
                          : json_pack("{s:{s:s},s:s}", "errorDetail", "message", cause->msg,
                                      "error", cause->msg);
    int rc = api_stream_write_json(req, e, err);
    json_decref(e);
    return rc;
}

static int build(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    json_t *buildargs = NULL, *labels = NULL, *hc = NULL, *cachefrom = NULL;
    if (refuse_unsupported(req, err) < 0 || json_query(req, "buildargs", &buildargs, err) < 0 ||
        json_query(req, "labels", &labels, err) < 0 || step_host_config(req, &hc, err) < 0 ||
        cache_from(req, &cachefrom, err) < 0) {
        json_decref(buildargs);
        json_decref(labels);
        json_decref(hc);
        return -1;
    }
    auto_free const char **tags = api_request_query_all(req, "t");
    auto_free char *work = image_store_work_dir(s->images, err);
    auto_free char *tar = work != NULL ? xasprintf("%s/context.tar", work) : NULL;
    auto_free char *dir = work != NULL ? xasprintf("%s/context", work) : NULL;
    const char *remote = api_request_query(req, "remote");
    struct build_digests digests = { 0 };
    int rc = work == NULL ? -1
             : remote != NULL && remote[0] != '\0'
                 ? remote_context(s, remote, tar, dir, api_request_query(req, "dockerfile"), err)
                 : receive_context(req, dir, &digests, err);
    if (rc == 0)
        unlink(tar);
    const char *rm = api_request_query(req, "rm");
    struct build_opts o = {
        .context_dir = dir,
        .context_digests = &digests,
        .dockerfile = api_request_query(req, "dockerfile"),
        .tags = tags,
        .buildargs = buildargs,
        .labels = labels,
        .target = api_request_query(req, "target"),
        .network_mode = api_request_query(req, "networkmode"),
        .nocache = api_request_query_bool(req, "nocache"),
        .rm = rm == NULL || rm[0] == '\0' || api_request_query_bool(req, "rm"),
        .forcerm = api_request_query_bool(req, "forcerm"),
        .pull = api_request_query_bool(req, "pull"),
        .x_registry_config = api_request_header(req, "X-Registry-Config"),
        .host_config = hc,
        .cache_from = cachefrom,
    };
    struct build_out out = { req, api_request_query_bool(req, "q"), false, false };
    struct build_env env = { s->containers, s->images, s->registry, emit, &out, true };
    char *id = NULL;
    int code = 0;
    if (rc == 0) {
        struct merr berr = MERR_INIT;
        if (build_run(&env, &o, &id, &code, &berr) < 0) {
            if (!out.begun && !out.gone) {
                *err = berr;
                rc = -1;
            } else {
                rc = out.gone ? -2 : stream_error(req, &berr, code, err) < 0 ? -2 : 0;
            }
        } else if (out_begin(&out, err) < 0) {
            rc = -2;
        } else {
            evt_emit(s->events, "image", "build", id, NULL);
            /* -q: the daemon's only output is the image ID, as dockerd sends it */
            if (out.quiet) {
                auto_free char *line = xasprintf("%s\n", id);
                json_t *msg = json_pack("{s:s}", "stream", line);
                rc = api_stream_write_json(req, msg, err) < 0 ? -2 : 0;
                json_decref(msg);
            }
        }
        rc = rc == 0 ? api_stream_end(req, err) : rc;
    }
    free(id);
    image_build_cache_count(s->images); /* after the answer: nobody waits for it */
    build_digests_release(&digests);
    json_decref(buildargs);
    json_decref(labels);
    json_decref(hc);
    json_decref(cachefrom);
    struct merr ignored = MERR_INIT;
    if (work != NULL && layer_remove_tree(work, &ignored) < 0) {
        /* collected at the next start */
    }
    return rc < 0 ? -1 : 0;
}

/* What the classic builder's client sends; refuse_unsupported() above checks some of the refused
 * ones too, with the values it lets through. */
static const struct api_param build_params[] = {
    API_PARAM("dockerfile"),
    API_PARAM("t"),
    API_PARAM("extrahosts"),
    API_PARAM_NOTE("remote", "a tarball or Dockerfile URL; git refused"),
    API_PARAM("q"),
    API_PARAM("nocache"),
    API_PARAM("cachefrom"),
    API_PARAM("pull"),
    API_PARAM("rm"),
    API_PARAM("forcerm"),
    API_PARAM("memory"),
    API_PARAM("memswap"),
    API_PARAM("cpushares"),
    API_PARAM("cpusetcpus"),
    API_PARAM("cpuperiod"),
    API_PARAM("cpuquota"),
    API_PARAM("buildargs"),
    API_PARAM("shmsize"),
    API_PARAM_REFUSE("squash"),
    API_PARAM("labels"),
    API_PARAM("networkmode"),
    API_PARAM_NOTE("platform", "linux and linux/amd64"),
    API_PARAM("target"),
    API_PARAM_REFUSE("outputs"),
    API_PARAM_NOTE("version", "1; 2 (BuildKit) is refused"),
    API_PARAM_NOTE("isolation", "default, the only one on Linux; others refused as dockerd does"),
    API_PARAM("cpusetmems"),
    API_PARAM_REFUSE("cgroupparent"),
    API_PARAM("ulimits"),
    API_PARAM_REFUSE("securityopt"),
    API_PARAM_REFUSE("session"),
    API_PARAMS_END,
};

static const struct api_route routes[] = {
    { "POST", "/build", build, API_ROUTE_WORKER | API_ROUTE_STREAM_BODY, build_params },
};

int handlers_register_build(struct api_router *r, struct engine_services *s, struct merr *err)
{
    return api_router_add_table(r, routes, sizeof routes / sizeof routes[0], s, err);
}
