/* The container driver's engine client: the Docker API over a Unix socket or tcp+TLS. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "container-priv.h"
#include "driver.h"
#include "error.h"
#include "fsutil.h"
#include "http.h"
#include "jsonutil.h"
#include "machine.h"

#define API_VERSION "v1.41"

static int open_tls(struct ctr_api *api, const struct machine *m, const char *url,
                    struct http_client_opts *o, struct merr *err)
{
    const char *dir = machine_driver_str(m, CKEY_CERTS);
    if (dir == NULL || dir[0] == '\0')
        return merr_set(err, MERR_INVALID, 0,
                        "--container-engine-url %s needs --container-engine-cert-path (a "
                        "directory with ca.pem, cert.pem and key.pem, such as a machine's)",
                        url);
    static char *const names[] = { "ca.pem", "cert.pem", "key.pem" };
    char **slots[] = { (char **)&o->ca_file, (char **)&o->cert_file, (char **)&o->key_file };
    for (size_t i = 0; i < 3; i++) {
        *slots[i] = path_join(dir, names[i]);
        if (access(*slots[i], R_OK) < 0)
            return merr_set(err, MERR_INVALID, errno, "cannot read '%s'", *slots[i]);
    }
    o->tls12_min = true;
    api->base = xasprintf("https://%s/" API_VERSION, url + strlen("tcp://"));
    return 0;
}

int ctr_api_open(struct ctr_api *api, const struct driver_ctx *ctx, const struct machine *m,
                 struct merr *err)
{
    *api = (struct ctr_api){ .ctx = ctx };
    const char *url = machine_driver_str(m, CKEY_URL);
    if (url == NULL || url[0] == '\0')
        url = CTR_DEFAULT_URL;
    struct http_client_opts o = { .no_proxy = true, .max_attempts = 3 };
    int rc = 0;
    if (strncmp(url, "unix://", 7) == 0 && url[7] == '/') {
        o.unix_socket = url + 7;
        o.allow_http = true;
        api->base = xstrdup("http://localhost/" API_VERSION);
    } else if (strncmp(url, "tcp://", 6) == 0 && url[6] != '\0' && strchr(url + 6, '/') == NULL) {
        rc = open_tls(api, m, url, &o, err);
    } else {
        rc = merr_set(err, MERR_INVALID, 0,
                      "invalid --container-engine-url '%s' (unix:///PATH or tcp://HOST:PORT)", url);
    }
    if (rc == 0) {
        api->http = driver_http_client(ctx, &o, err);
        rc = api->http != NULL ? 0 : -1;
    }
    free((char *)o.ca_file);
    free((char *)o.cert_file);
    free((char *)o.key_file);
    if (rc < 0)
        ctr_api_close(api);
    return rc;
}

void ctr_api_close(struct ctr_api *api)
{
    http_client_free(api->http);
    free(api->base);
    *api = (struct ctr_api){ 0 };
}

/* The engine's {"message": ...} of a failed request, else the body's start. */
static void failed_status(const struct http_response *r, json_t *body, const char *what,
                          struct merr *err)
{
    const char *msg = json_string_value(json_object_get(body, "message"));
    enum merr_code code = r->status == 404   ? MERR_NOT_FOUND
                          : r->status == 409 ? MERR_EXISTS
                          : r->status < 500  ? MERR_INVALID
                                             : MERR_REMOTE;
    merr_set(err, code, 0, "%s: %s (HTTP %ld)", what,
             msg != NULL ? msg : (r->body != NULL ? r->body : "no message"), r->status);
}

long ctr_api_call(struct ctr_api *api, const char *method, const char *path, json_t *body,
                  json_t **out, const char *what, struct merr *err)
{
    if (out != NULL)
        *out = NULL;
    auto_free char *url = xasprintf("%s%s", api->base, path);
    struct http_request rq = {
        .method = method,
        .url = url,
        .json = body,
        .retry = strcmp(method, "GET") == 0 ? HTTP_RETRY_IDEMPOTENT : HTTP_RETRY_NEVER,
        .deadline_ms = driver_http_deadline(api->ctx),
        .attempt_timeout_ms = api->attempt_ms > 0            ? api->attempt_ms
                              : api->ctx->timeout_ms > 0 ? api->ctx->timeout_ms
                                                         : 60000,
        .max_response = 16u << 20,
    };
    struct http_response r = { 0 };
    if (http_do(api->http, &rq, &r, err) < 0) {
        merr_prefix(err, "%s", what);
        return -1;
    }
    json_t *parsed = NULL;
    if (r.body != NULL && r.len > 0)
        parsed = json_loadb(r.body, r.len, JSON_DECODE_ANY, NULL);
    long status = r.status;
    if (status >= 400)
        failed_status(&r, parsed, what, err);
    if (out != NULL)
        *out = parsed;
    else
        json_decref(parsed);
    http_response_clear(&r);
    return status;
}

int ctr_api_expect(struct ctr_api *api, const char *method, const char *path, json_t *body,
                   json_t **out, long ok, const char *what, struct merr *err)
{
    long status = ctr_api_call(api, method, path, body, out, what, err);
    if (status < 0)
        return -1;
    if ((status >= 200 && status < 300) || (ok != 0 && status == ok))
        return 0;
    if (out != NULL) {
        json_decref(*out);
        *out = NULL;
    }
    if (status < 400)
        merr_set(err, MERR_PROTOCOL, 0, "%s: unexpected HTTP %ld", what, status);
    return -1;
}

int ctr_api_post_file(struct ctr_api *api, const char *path, const char *file_path,
                      const char *what, struct merr *err)
{
    auto_close int fd = open(file_path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return merr_set(err, MERR_IO, errno, "cannot open '%s'", file_path);
    auto_free char *url = xasprintf("%s%s", api->base, path);
    static const char *const headers[] = { "Content-Type: application/x-tar", NULL };
    struct http_fd_body fb = { fd, 0, 0 };
    struct http_request rq = {
        .method = "POST",
        .url = url,
        .headers = headers,
        .body_read = http_fd_read,
        .body_rewind = http_fd_rewind,
        .body_ctx = &fb,
        .body_len = (size_t)st.st_size,
        .retry = HTTP_RETRY_NEVER,
        .deadline_ms = driver_http_deadline(api->ctx),
        .max_response = 1u << 20,
    };
    struct http_response r = { 0 };
    if (http_do(api->http, &rq, &r, err) < 0)
        return merr_prefix(err, "%s", what);
    int rc = 0;
    if (r.status >= 300) {
        failed_status(&r, NULL, what, err);
        rc = -1;
    } else if (r.body != NULL && strstr(r.body, "\"error\"") != NULL) {
        /* a 200 stream that ends with an error (dockerd's way for import and load) */
        rc = merr_set(err, MERR_REMOTE, 0, "%s: %.300s", what, r.body);
    }
    http_response_clear(&r);
    return rc;
}
