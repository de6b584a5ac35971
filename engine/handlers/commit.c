/* Images made from containers and tars: docker diff (GET /containers/{id}/changes), docker
 * export (GET /containers/{id}/export), docker commit (POST /commit), docker history
 * (GET /images/{name}/history) and docker import (POST /images/create?fromSrc=-). Thin
 * adapters over the container manager, engine/build's config instructions and the image
 * store's image_commit. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "build/dockerfile.h"
#include "container/manager.h"
#include "error.h"
#include "events/events.h"
#include "fsutil.h"
#include "handlers.h"
#include "image/image.h"


static int changes(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    json_t *list = ctr_changes(s->containers, api_request_var(req, "id"), err);
    if (list == NULL)
        return -1;
    return api_reply_json(req, 200, list, err);
}

struct export_ctx {
    struct api_request *req;
    bool begun;
};

static int export_write(void *data, const void *buf, size_t len, struct merr *err)
{
    struct export_ctx *c = data;
    if (!c->begun) {
        if (api_stream_begin(c->req, 200, "application/x-tar", err) < 0)
            return -1;
        c->begun = true;
    }
    return api_stream_write(c->req, buf, len, err);
}

static int export_(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    const char *id = api_request_var(req, "id");
    struct export_ctx c = { req, false };
    if (ctr_archive_export(s->containers, id, export_write, &c, err) < 0)
        return -1; /* before the first byte: an error reply; after: the connection closes */
    if (!c.begun && api_stream_begin(req, 200, "application/x-tar", err) < 0)
        return -1;
    evt_emit(s->events, "container", "export", id, NULL);
    return api_stream_end(req, err);
}

/* "repo" and "tag" → "repo:tag" (NULL when no repo; no tag means latest); a digest is refused
 * as dockerd does. */
static int target_ref(struct api_request *req, char **out, struct merr *err)
{
    const char *repo = api_request_query(req, "repo");
    const char *tag = api_request_query(req, "tag");
    *out = NULL;
    if (repo == NULL || repo[0] == '\0')
        return 0;
    if (tag != NULL && strncmp(tag, "sha256:", 7) == 0)
        return merr_set(err, MERR_INVALID, 0, "refusing to create a tag with a digest reference");
    /* docker import sends "name:tag" in repo alone; docker commit splits them */
    *out = tag != NULL && tag[0] != '\0' ? xasprintf("%s:%s", repo, tag) : xstrdup(repo);
    return 0;
}

/* The Cmd of the container, joined with spaces: the history's created_by for a commit. */
static char *joined_cmd(json_t *config)
{
    json_t *cmd = json_object_get(config, "Cmd");
    size_t len = 1, i;
    json_t *v;
    json_array_foreach(cmd, i, v) len += strlen(json_string_value(v) ? json_string_value(v) : "") + 1;
    char *out = xcalloc(1, len);
    json_array_foreach(cmd, i, v)
    {
        if (i > 0)
            strcat(out, " ");
        strcat(out, json_string_value(v) ? json_string_value(v) : "");
    }
    return out;
}

/* Fields of the request body's Config override the container's (dockerd's merge). */
static void overlay_config(json_t *config, const json_t *body)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)body, key, v)
    {
        bool empty = json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0) ||
                     (json_is_array(v) && json_array_size(v) == 0) ||
                     (json_is_object(v) && json_object_size(v) == 0) || json_is_false(v);
        if (!empty)
            json_object_set(config, key, v);
    }
}

static int write_layer(void *ctx, int fd, struct merr *err)
{
    return ctr_commit_write_layer(ctx, fd, err);
}

/* pause (default true, as dockerd): a running container is frozen while its layer is read, and
 * thawed after; one that is not running or already paused is left as it is. */
static bool commit_pause(struct engine_services *s, struct api_request *req, const char *id)
{
    const char *q = api_request_query(req, "pause");
    if (q != NULL && !api_request_query_bool(req, "pause"))
        return false;
    struct merr ignored = MERR_INIT;
    return ctr_pause(s->containers, id, &ignored) == 0;
}

static int commit(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    const char *container = api_request_query(req, "container");
    if (container == NULL || container[0] == '\0')
        return merr_set(err, MERR_INVALID, 0, "No container given");
    auto_free char *tag = NULL;
    json_t *body = NULL;
    if (target_ref(req, &tag, err) < 0 || api_request_body_json(req, &body, err) < 0)
        return -1;
    struct ctr_commit_src src;
    if (ctr_commit_source(s->containers, container, &src, err) < 0) {
        json_decref(body);
        return -1;
    }
    if (json_is_object(body))
        overlay_config(src.config, body);
    json_decref(body);
    auto_free const char **list = api_request_query_all(req, "changes");
    auto_free char *created_by = joined_cmd(src.config);
    char *id = NULL;
    int rc = df_apply_changes(src.config, list, err);
    bool paused = rc == 0 && commit_pause(s, req, src.id);
    if (rc == 0) {
        struct image_commit_spec spec = {
            .parent_id = src.image_id,
            .write_layer = write_layer,
            .layer_ctx = &src,
            .drop_empty_layer = true,
            .config = src.config,
            .author = api_request_query(req, "author"),
            .comment = api_request_query(req, "comment"),
            .created_by = created_by,
            .record_parent = true,
            .tag = tag,
            .container_id = src.id,
            .container_config = src.config,
        };
        rc = image_commit(s->images, &spec, &id, err);
    }
    char cid[65];
    memcpy(cid, src.id, sizeof cid);
    /* the container's labels, image and name (docker events --filter container=NAME), as
     * dockerd's container events carry them */
    json_t *attrs = src.event_attrs;
    src.event_attrs = NULL;
    ctr_commit_src_release(&src);
    const char *comment = api_request_query(req, "comment");
    if (rc == 0) {
        json_object_set_new(attrs, "comment", json_string(comment != NULL ? comment : ""));
        json_object_set_new(attrs, "imageID", json_string(id));
        evt_emit(s->events, "container", "commit", cid, attrs);
    } else {
        json_decref(attrs);
    }
    /* thawed after the commit event, as dockerd's deferred unpause */
    struct merr ignored = MERR_INIT;
    if (paused && ctr_unpause(s->containers, cid, &ignored) < 0) {
        /* removed meanwhile (rm -f thaws first) */
    }
    if (rc < 0)
        return -1;
    if (tag != NULL)
        evt_emit(s->events, "image", "tag", id, json_pack("{s:s}", "name", tag));
    json_t *reply = json_pack("{s:s}", "Id", id);
    free(id);
    return api_reply_json(req, 201, reply, err);
}

static int history(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    const char *name = api_request_var(req, "name");
    char *text = image_history_json(s->images, name, err);
    if (text == NULL) {
        if (err->code == MERR_NOT_FOUND)
            merr_set(err, MERR_NOT_FOUND, 0, "No such image: %s", name);
        return -1;
    }
    int rc = api_reply_raw(req, 200, API_MEDIA_JSON, text, strlen(text), err);
    free(text);
    return rc;
}

/* ---- docker import ---- */

static int copy_body(void *ctx, int fd, struct merr *err)
{
    return api_request_body_to_fd(ctx, fd, "the imported tar", err);
}

int handlers_image_import(struct api_request *req, struct engine_services *s, struct merr *err)
{
    const char *src = api_request_query(req, "fromSrc");
    if (strcmp(src, "-") != 0)
        return merr_set(err, MERR_UNSUPPORTED, 0,
                        "importing from a URL is not supported by machine-engine; "
                        "download the file and import it from stdin");
    const char *platform = api_request_query(req, "platform");
    if (platform != NULL && platform[0] != '\0' && strcmp(platform, "linux") != 0 &&
        strncmp(platform, "linux/", 6) != 0)
        return merr_set(err, MERR_INVALID, 0, "platform %s is not supported by machine-engine",
                        platform);
    auto_free char *tag = NULL;
    if (target_ref(req, &tag, err) < 0)
        return -1;
    json_t *config = json_object();
    auto_free const char **list = api_request_query_all(req, "changes");
    const char *msg = api_request_query(req, "message");
    auto_free char *comment = msg != NULL && msg[0] != '\0' ? xstrdup(msg)
                                                            : xasprintf("Imported from %s", src);
    char *id = NULL;
    int rc = df_apply_changes(config, list, err);
    if (rc == 0) {
        struct image_commit_spec spec = {
            .write_layer = copy_body,
            .layer_ctx = req,
            .config = config,
            .comment = comment,
            .tag = tag,
        };
        rc = image_commit(s->images, &spec, &id, err);
    }
    json_decref(config);
    if (rc < 0)
        return -1;
    evt_emit(s->events, "image", "import", id, json_pack("{s:s}", "name", id));
    if (tag != NULL)
        evt_emit(s->events, "image", "tag", id, json_pack("{s:s}", "name", tag));
    json_t *line = json_pack("{s:s}", "status", id);
    free(id);
    rc = api_stream_begin(req, 200, API_MEDIA_JSON, err) < 0 ||
                 api_stream_write_json(req, line, err) < 0
             ? -1
             : api_stream_end(req, err);
    json_decref(line);
    return rc;
}

static const struct api_param commit_params[] = {
    API_PARAM("container"), API_PARAM("repo"),  API_PARAM("tag"),     API_PARAM("comment"),
    API_PARAM("author"),    API_PARAM("pause"), API_PARAM("changes"), API_PARAMS_END,
};

static const struct api_route routes[] = {
    { "GET", "/containers/{id}/changes", changes, API_ROUTE_WORKER, api_params_none },
    { "GET", "/containers/{id}/export", export_, API_ROUTE_WORKER, api_params_none },
    { "POST", "/commit", commit, API_ROUTE_WORKER, commit_params },
    { "GET", "/images/{name}/history", history, 0, api_params_none },
};

int handlers_register_commit(struct api_router *r, struct engine_services *s, struct merr *err)
{
    return api_router_add_table(r, routes, sizeof routes / sizeof routes[0], s, err);
}
