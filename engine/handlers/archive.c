/* /containers/{id}/archive: docker cp's stat (HEAD), copy out (GET) and copy in (PUT). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "container/manager.h"
#include "error.h"
#include "handlers.h"

#define STAT_HEADER "X-Docker-Container-Path-Stat"

static const char *path_of(struct api_request *req, struct merr *err)
{
    const char *path = api_request_query(req, "path");
    if (path == NULL || path[0] == '\0')
        merr_set(err, MERR_INVALID, 0, "no path given");
    return path != NULL && path[0] != '\0' ? path : NULL;
}

static int add_stat_header(struct api_request *req, const struct ctr_path_stat *st,
                           struct merr *err)
{
    char *h = ctr_path_stat_header(st);
    if (h == NULL)
        return merr_set(err, MERR_NOMEM, 0, "cannot encode the path stat");
    api_reply_add_header(req, STAT_HEADER, h);
    free(h);
    return 0;
}

static int archive_head(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    const char *path = path_of(req, err);
    struct ctr_path_stat st;
    if (path == NULL || ctr_archive_stat(s->containers, api_request_var(req, "id"), path, &st,
                                         err) < 0)
        return -1;
    if (add_stat_header(req, &st, err) < 0)
        return -1;
    return api_reply_empty(req, 200, err);
}

static int get_begin(void *data, const struct ctr_path_stat *st, struct merr *err)
{
    struct api_request *req = data;
    if (add_stat_header(req, st, err) < 0)
        return -1;
    return api_stream_begin(req, 200, "application/x-tar", err);
}

static int get_write(void *data, const void *buf, size_t len, struct merr *err)
{
    return api_stream_write(data, buf, len, err);
}

static int archive_get(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    const char *path = path_of(req, err);
    struct ctr_path_stat st;
    if (path == NULL || ctr_archive_get(s->containers, api_request_var(req, "id"), path, &st,
                                        get_begin, get_write, req, err) < 0)
        return -1;
    return api_stream_end(req, err);
}

static ssize_t put_read(void *data, void *buf, size_t len, struct merr *err)
{
    return api_request_body_read(data, buf, len, err);
}

static int archive_put(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    const char *path = path_of(req, err);
    struct ctr_archive_put_opts o = {
        .no_overwrite_dir_non_dir = api_request_query_bool(req, "noOverwriteDirNonDir"),
        .copy_uid_gid = api_request_query_bool(req, "copyUIDGID"),
    };
    if (path == NULL || ctr_archive_put(s->containers, api_request_var(req, "id"), path, &o,
                                        put_read, req, err) < 0)
        return -1;
    return api_reply_empty(req, 200, err);
}

static const struct api_param path_params[] = { API_PARAM("path"), API_PARAMS_END };
static const struct api_param put_params[] = {
    API_PARAM("path"), API_PARAM("noOverwriteDirNonDir"), API_PARAM("copyUIDGID"), API_PARAMS_END,
};

static const struct api_route routes[] = {
    { "HEAD", "/containers/{id}/archive", archive_head, API_ROUTE_WORKER, path_params },
    { "GET", "/containers/{id}/archive", archive_get, API_ROUTE_WORKER, path_params },
    { "PUT", "/containers/{id}/archive", archive_put, API_ROUTE_WORKER | API_ROUTE_STREAM_BODY,
      put_params },
};

int handlers_register_archive(struct api_router *r, struct engine_services *s, struct merr *err)
{
    return api_router_add_table(r, routes, sizeof routes / sizeof routes[0], s, err);
}
