/* A plain HTTP(S) download with the store's libcurl: ADD <url> and POST /build?remote=<tarball
 * URL>. Redirects are followed (at most 10, to http or https only); a status of 400 or more
 * fails; the Last-Modified of the final answer is kept for ADD's mtime. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "image/image.h"
#include "image/internal.h"

#define FETCH_MAX_REDIRECTS 10L

struct fetch_sink {
    int fd;
    int write_errno;
    long long last_modified;
    unsigned long long got, max;
    bool too_big;
};

static size_t on_data(char *p, size_t size, size_t n, void *ctx)
{
    struct fetch_sink *f = ctx;
    size_t len = size * n;
    if ((f->got += len) > f->max) {
        f->too_big = true;
        return 0;
    }
    for (size_t done = 0; done < len;) {
        ssize_t w = write(f->fd, p + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            f->write_errno = errno;
            return 0;
        }
        done += (size_t)w;
    }
    return len;
}

long long image_http_date_parse(const char *v)
{
    struct tm tm = { 0 };
    while (*v == ' ' || *v == '\t')
        v++;
    const char *end = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (end == NULL)
        return 0;
    time_t t = timegm(&tm);
    return t < 0 ? 0 : (long long)t;
}

/* Every answer of a redirect chain starts with its status line: the Last-Modified kept is the
 * final answer's. */
static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
    struct fetch_sink *f = ctx;
    size_t len = size * n;
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0)
        f->last_modified = 0;
    else if (len > 14 && strncasecmp(p, "Last-Modified:", 14) == 0) {
        char v[128];
        size_t vl = len - 14 < sizeof v - 1 ? len - 14 : sizeof v - 1;
        memcpy(v, p + 14, vl);
        v[vl] = '\0';
        v[strcspn(v, "\r\n")] = '\0';
        f->last_modified = image_http_date_parse(v);
    }
    return len;
}

int image_fetch_url(struct image_store *s, const char *url, int fd, unsigned long long max,
                    long long *mtime_out, struct merr *err)
{
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return merr_set(err, MERR_INVALID, 0, "unsupported URL '%s': http and https only", url);
    pthread_mutex_lock(&s->lock);
    int loaded = curl_api_load(&s->curl, err);
    pthread_mutex_unlock(&s->lock);
    if (loaded < 0)
        return -1;
    const struct curl_api *c = &s->curl;
    CURL *h = c->easy_init();
    if (h == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot create an HTTP request");
    struct fetch_sink f = { .fd = fd, .max = max };
    char errbuf[CURL_ERROR_SIZE] = "";
    c->easy_setopt(h, CURLOPT_URL, url);
    c->easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    c->easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    c->easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    c->easy_setopt(h, CURLOPT_MAXREDIRS, FETCH_MAX_REDIRECTS);
    c->easy_setopt(h, CURLOPT_FAILONERROR, 1L);
    c->easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    c->easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
    c->easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    c->easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
    c->easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    c->easy_setopt(h, CURLOPT_WRITEDATA, &f);
    c->easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    c->easy_setopt(h, CURLOPT_HEADERDATA, &f);
    c->easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode cc = c->easy_perform(h);
    c->easy_cleanup(h);
    if (f.too_big)
        return merr_set(err, MERR_INVALID, 0, "'%s' is larger than %llu bytes", url, max);
    if (f.write_errno != 0)
        return merr_set(err, MERR_IO, f.write_errno, "cannot store the download of '%s'", url);
    if (cc != CURLE_OK)
        return merr_set(err, MERR_REMOTE, 0, "failed to GET %s: %s", url,
                        errbuf[0] ? errbuf : c->easy_strerror(cc));
    if (mtime_out != NULL)
        *mtime_out = f.last_modified;
    return 0;
}
