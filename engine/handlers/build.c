/* POST /build: the classic builder (what `DOCKER_BUILDKIT=0 docker build`, the docker CLI
 * without buildx, docker-compose 1.29 and docker-py send). The context tar is streamed to the
 * store's work area and extracted with the hardened layer extractor; the build's messages are
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
};

static int emit(void *ctx, const json_t *msg)
{
    struct build_out *o = ctx;
    struct merr err = MERR_INIT;
    if (o->gone)
        return -1;
    if (o->quiet && json_object_get(msg, "stream") != NULL)
        return 0;
    if (api_stream_write_json(o->req, msg, &err) < 0) {
        o->gone = true;
        return -1;
    }
    return 0;
}

static int spool_context(struct api_request *req, const char *path, struct merr *err)
{
    auto_close int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return merr_set(err, MERR_IO, errno, "cannot spool the build context");
    return api_request_body_to_fd(req, fd, "the build context", err);
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
    if (layer_extract_fd(fd, LAYER_COMP_DETECT, dir, NULL, &res, err) < 0)
        return merr_prefix(err, "the build context");
    return 0;
}

/* Options the classic builder has and machine-engine does not do: refused, never dropped. */
static int refuse_unsupported(struct api_request *req, struct merr *err)
{
    static const char *const numeric[] = { "memory", "memswap", "cpushares", "cpuquota",
                                           "cpuperiod", "shmsize", NULL };
    static const char *const text[] = { "remote", "cpusetcpus", "cpusetmems", "cgroupparent",
                                        "outputs", "session", NULL };
    const char *v = api_request_query(req, "version");
    if (v != NULL && strcmp(v, "2") == 0)
        return merr_set(err, MERR_UNSUPPORTED, 0,
                        "BuildKit is not supported by machine-engine; use the classic builder "
                        "(DOCKER_BUILDKIT=0)");
    if (api_request_query_bool(req, "squash"))
        return merr_set(err, MERR_INVALID, 0, "squash is not supported by machine-engine");
    for (size_t i = 0; numeric[i] != NULL; i++) {
        v = api_request_query(req, numeric[i]);
        if (v != NULL && v[0] != '\0' && strcmp(v, "0") != 0 && strcmp(v, "-1") != 0)
            return merr_set(err, MERR_INVALID, 0, "build option %s is not supported by "
                            "machine-engine", numeric[i]);
    }
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
    json_t *buildargs = NULL, *labels = NULL;
    if (refuse_unsupported(req, err) < 0 || json_query(req, "buildargs", &buildargs, err) < 0 ||
        json_query(req, "labels", &labels, err) < 0) {
        json_decref(buildargs);
        return -1;
    }
    auto_free const char **tags = api_request_query_all(req, "t");
    auto_free char *work = image_store_work_dir(s->images, err);
    auto_free char *tar = work != NULL ? xasprintf("%s/context.tar", work) : NULL;
    auto_free char *dir = work != NULL ? xasprintf("%s/context", work) : NULL;
    int rc = work == NULL ? -1 : spool_context(req, tar, err);
    if (rc == 0)
        rc = extract_context(tar, dir, err);
    if (rc == 0)
        unlink(tar);
    const char *rm = api_request_query(req, "rm");
    struct build_opts o = {
        .context_dir = dir,
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
    };
    struct build_out out = { req, api_request_query_bool(req, "q"), false };
    struct build_env env = { s->containers, s->images, s->registry, emit, &out };
    char *id = NULL;
    int code = 0;
    if (rc == 0 && api_stream_begin(req, 200, API_MEDIA_JSON, err) < 0)
        rc = -2;
    if (rc == 0) {
        struct merr berr = MERR_INIT;
        if (build_run(&env, &o, &id, &code, &berr) < 0)
            rc = out.gone ? -2 : stream_error(req, &berr, code, err) < 0 ? -2 : 0;
        else {
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
    json_decref(buildargs);
    json_decref(labels);
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
    API_PARAM_REFUSE("extrahosts"),
    API_PARAM_REFUSE("remote"),
    API_PARAM("q"),
    API_PARAM("nocache"),
    API_PARAM_REFUSE("cachefrom"),
    API_PARAM("pull"),
    API_PARAM("rm"),
    API_PARAM("forcerm"),
    API_PARAM_REFUSE_BUT("memory", "-1"),
    API_PARAM_REFUSE_BUT("memswap", "-1"),
    API_PARAM_REFUSE_BUT("cpushares", "-1"),
    API_PARAM_REFUSE("cpusetcpus"),
    API_PARAM_REFUSE_BUT("cpuperiod", "-1"),
    API_PARAM_REFUSE_BUT("cpuquota", "-1"),
    API_PARAM("buildargs"),
    API_PARAM_REFUSE_BUT("shmsize", "-1"),
    API_PARAM_REFUSE("squash"),
    API_PARAM("labels"),
    API_PARAM("networkmode"),
    API_PARAM_NOTE("platform", "linux and linux/amd64"),
    API_PARAM("target"),
    API_PARAM_REFUSE("outputs"),
    API_PARAM_NOTE("version", "1; 2 (BuildKit) is refused"),
    API_PARAM_NOTE("isolation", "default, the only one on Linux; others refused as dockerd does"),
    API_PARAM_REFUSE("cpusetmems"),
    API_PARAM_REFUSE("cgroupparent"),
    API_PARAM_REFUSE("ulimits"),
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
