/* /images/... routes, and the image source the container manager uses. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "container/manager.h"
#include "error.h"
#include "fsutil.h"
#include "events/events.h"
#include "handlers.h"
#include "image/image.h"

static int reply_text_json(struct api_request *req, char *text, struct merr *err)
{
    if (text == NULL)
        return -1;
    int rc = api_reply_raw(req, 200, API_MEDIA_JSON, text, strlen(text), err);
    free(text);
    return rc;
}

static int inspect(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    const char *name = api_request_var(req, "name");
    char *text = image_inspect_json_api(s->images, name, !api_request_version_ge(req, 1, 45), err);
    if (text == NULL && err->code == MERR_NOT_FOUND)
        merr_set(err, MERR_NOT_FOUND, 0, "No such image: %s", name);
    return reply_text_json(req, text, err);
}

struct pull_ctx {
    struct api_request *req;
    bool failed;
};

static int on_progress(const char *line, void *opaque)
{
    struct pull_ctx *p = opaque;
    struct merr err;
    if (!p->failed && api_stream_write(p->req, line, strlen(line), &err) < 0)
        p->failed = true; /* the client went away; the pull still finishes for the next one */
    return 0;
}

static int create(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    const char *from = api_request_query(req, "fromImage");
    const char *tag = api_request_query(req, "tag");
    if (from == NULL || from[0] == '\0') {
        if (api_request_query(req, "fromSrc") != NULL)
            return handlers_image_import(req, s, err);
        return merr_set(err, MERR_INVALID, 0, "fromImage is required");
    }
    auto_free char *ref = NULL;
    if (tag != NULL && tag[0] != '\0')
        ref = xasprintf("%s%s%s", from, strncmp(tag, "sha256:", 7) == 0 ? "@" : ":", tag);
    else
        ref = xstrdup(from);
    if (api_stream_begin(req, 200, API_MEDIA_JSON, err) < 0)
        return -1;
    struct pull_ctx p = { req, false };
    struct merr perr = MERR_INIT;
    if (image_pull(s->images, s->registry, ref, api_request_query(req, "platform"),
                   api_request_header(req, "X-Registry-Auth"), on_progress, &p, NULL, &perr) < 0) {
        /* Errors after the 200 travel in the stream, as docker does. */
        json_t *e = json_pack("{s:{s:s},s:s}", "errorDetail", "message", perr.msg, "error", perr.msg);
        int rc = api_stream_write_json(req, e, err);
        json_decref(e);
        if (rc < 0)
            return -1;
    } else {
        evt_emit(s->events, "image", "pull", ref, json_pack("{s:s}", "name", ref));
    }
    return api_stream_end(req, err);
}

static bool in_use(const char *image_id, void *ctx)
{
    return ctr_image_in_use(ctx, image_id);
}

static int remove_(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    const char *name = api_request_var(req, "name");
    char *report = NULL;
    const struct image_remove_opts o = { .force = api_request_query_bool(req, "force"),
                                          .prune_parents = !api_request_query_bool(req, "noprune"),
                                          .in_use = in_use,
                                          .in_use_ctx = s->containers };
    if (image_remove_with(s->images, name, &o, &report, err) < 0) {
        if (err->code == MERR_NOT_FOUND)
            merr_set(err, MERR_NOT_FOUND, 0, "No such image: %s", name);
        else if (err->code == MERR_BUSY)
            err->code = MERR_EXISTS; /* 409 conflict, as docker */
        return -1;
    }
    evt_emit(s->events, "image", "delete", name, json_pack("{s:s}", "name", name));
    return reply_text_json(req, report, err);
}

static int tag(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    const char *repo = api_request_query(req, "repo");
    const char *t = api_request_query(req, "tag");
    if (repo == NULL || repo[0] == '\0')
        return merr_set(err, MERR_INVALID, 0, "repository name must be given");
    auto_free char *id = image_lookup(s->images, api_request_var(req, "name"), err);
    if (id == NULL)
        return -1;
    auto_free char *ref = xasprintf("%s:%s", repo, t != NULL && t[0] != '\0' ? t : "latest");
    if (image_tag(s->images, id, ref, err) < 0)
        return -1;
    evt_emit(s->events, "image", "tag", id, json_pack("{s:s}", "name", ref));
    return api_reply_empty(req, 201, err);
}

/* ---- docker save ---- */

struct save_ctx {
    struct api_request *req;
    bool begun;
};

static int save_write(void *opaque, const void *buf, size_t len, struct merr *err)
{
    struct save_ctx *c = opaque;
    if (!c->begun) {
        if (api_stream_begin(c->req, 200, "application/x-tar", err) < 0)
            return -1;
        c->begun = true;
    }
    return api_stream_write(c->req, buf, len, err);
}

static int save_names(struct api_request *req, struct engine_services *s, const char *const *names,
                      struct merr *err)
{
    struct save_ctx c = { req, false };
    if (image_save(s->images, names, save_write, &c, err) < 0)
        return -1; /* before the first byte: an error reply; after: the connection closes */
    return api_stream_end(req, err);
}

static int save_many(struct api_request *req, void *data, struct merr *err)
{
    auto_free const char **names = api_request_query_all(req, "names");
    if (names == NULL)
        return merr_set(err, MERR_NOMEM, 0, "out of memory");
    return save_names(req, data, names, err);
}

static int save_one(struct api_request *req, void *data, struct merr *err)
{
    const char *names[] = { api_request_var(req, "name"), NULL };
    return save_names(req, data, names, err);
}

/* ---- docker load ---- */

#define LOAD_DRAIN_MAX ((size_t)1 << 30)


static ssize_t load_read(void *opaque, void *buf, size_t len, struct merr *err)
{
    struct handlers_lines *c = opaque;
    return api_request_body_read(c->req, buf, len, err);
}

int handlers_stream_line(const char *line, void *opaque)
{
    struct handlers_lines *c = opaque;
    struct merr err = MERR_INIT;
    if (c->gone)
        return -1;
    if ((!c->begun && api_stream_begin(c->req, 200, API_MEDIA_JSON, &err) < 0) ||
        api_stream_write(c->req, line, strlen(line), &err) < 0) {
        c->gone = true;
        return -1;
    }
    c->begun = true;
    return 0;
}

static int load(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    struct handlers_lines c = { req, false, false };
    if (image_load(s->images, load_read, &c, handlers_stream_line, &c, err) == 0) {
        if (!c.begun && api_stream_begin(req, 200, API_MEDIA_JSON, err) < 0)
            return -1;
        return api_stream_end(req, err);
    }
    /* Read what the client still sends (bounded), so it gets our answer instead of a reset. */
    char scratch[16384];
    struct merr ignored = MERR_INIT;
    for (size_t total = 0; total < LOAD_DRAIN_MAX;) {
        ssize_t n = api_request_body_read(req, scratch, sizeof scratch, &ignored);
        if (n <= 0)
            break;
        total += (size_t)n;
    }
    /* As dockerd: the answer is a 200 JSON stream whatever happens, a failure its last message
     * (docker-py raises ImageLoadError from it; the docker CLI prints it and exits 1). */
    struct merr failure = *err;
    if (!c.begun && api_stream_begin(req, 200, API_MEDIA_JSON, err) < 0)
        return -1;
    *err = failure;
    json_t *e = json_pack("{s:{s:s},s:s}", "errorDetail", "message", err->msg, "error", err->msg);
    int rc = api_stream_write_json(req, e, err);
    json_decref(e);
    return rc < 0 ? -1 : api_stream_end(req, err);
}

static const struct api_param save_params[] = { API_PARAM("names"), API_PARAMS_END };
static const struct api_param load_params[] = {
    API_PARAM_NOTE("quiet", "the 'Loaded image' lines either way; no per-layer progress bars"),
    API_PARAMS_END,
};
/* repo, message and changes are read by docker import (fromSrc); dockerd ignores them in a
 * pull, as here. */
static const struct api_param create_params[] = {
    API_PARAM("fromImage"), API_PARAM("fromSrc"), API_PARAM("repo"),     API_PARAM("tag"),
    API_PARAM("message"),   API_PARAM("changes"), API_PARAM("platform"), API_PARAMS_END,
};
static const struct api_param remove_params[] = {
    API_PARAM("force"),
    API_PARAM("noprune"),
    API_PARAMS_END,
};
static const struct api_param tag_params[] = {
    API_PARAM("repo"), API_PARAM("tag"), API_PARAMS_END,
};

static const struct api_route routes[] = {
    { "GET", "/images/get", save_many, API_ROUTE_WORKER, save_params },
    { "GET", "/images/{name}/get", save_one, API_ROUTE_WORKER, api_params_none },
    { "POST", "/images/load", load, API_ROUTE_STREAM_BODY, load_params },
    { "POST", "/images/create", create, API_ROUTE_WORKER | API_ROUTE_STREAM_BODY, create_params },
    { "GET", "/images/{name}/json", inspect, 0, api_params_none },
    { "DELETE", "/images/{name}", remove_, API_ROUTE_WORKER, remove_params },
    { "POST", "/images/{name}/tag", tag, 0, tag_params },
};

int handlers_register_images(struct api_router *r, struct engine_services *s, struct merr *err)
{
    return api_router_add_table(r, routes, sizeof routes / sizeof routes[0], s, err);
}

int handlers_image_resolve(void *data, const char *ref, char **image_id, json_t **config,
                           char ***lowerdirs, struct merr *err)
{
    struct image_store *images = data;
    auto_free char *id = image_lookup(images, ref, err);
    if (id == NULL)
        return -1;
    auto_free char *text = image_config_json(images, id, err);
    if (text == NULL)
        return -1;
    json_error_t jerr;
    json_t *full = json_loads(text, 0, &jerr);
    if (full == NULL)
        return merr_set(err, MERR_CORRUPT, 0, "image %s has an invalid config: %s", id, jerr.text);
    char **dirs = image_layer_dirs(images, id, err);
    if (dirs == NULL) {
        json_decref(full);
        return -1;
    }
    json_t *cfg = json_object_get(full, "config");
    *config = json_is_object(cfg) ? json_incref(cfg) : json_object();
    json_decref(full);
    *lowerdirs = dirs;
    *image_id = steal_pointer(&id);
    return 0;
}
