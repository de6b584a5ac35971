/* setup.images: docker-archive tars on this computer, or image references pulled once on this
 * computer into a docker-archive (lab-pull.c), read once per host and given to the host's
 * engine as a `docker load` (POST /images/load over its mutual-TLS API), so the hosts need no
 * registry. */
#include "lab-up.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "context.h"
#include "driver.h"
#include "engine_client.h"
#include "error.h"
#include "fsutil.h"
#include "lab-pull.h"
#include "lifecycle.h"
#include "machine.h"
#include "store.h"

#define IMAGE_LOAD_MS (10 * 60 * 1000)

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

char *lab_image_archive(const char *dir, const char *image)
{
    if (!ends_with(image, ".tar") && !ends_with(image, ".tar.gz") && !ends_with(image, ".tgz"))
        return NULL;
    return image[0] == '/' ? xstrdup(image) : path_join(dir, image);
}

int lab_check_images(const struct lab *lab, const struct lab_host *h, struct merr *err)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(json_object_get(h->spec, "setup"), "images"), i, v) {
        auto_free char *path = lab_image_archive(lab->dir, json_string_value(v));
        struct stat st;
        struct lab_image_ref ref;
        if (path != NULL && (stat(path, &st) < 0 || !S_ISREG(st.st_mode)))
            merr_set(err, MERR_NOT_FOUND, errno, "'%s': no such file", path);
        else if (path == NULL && lab_image_ref_parse(json_string_value(v), &ref, err) == 0)
            lab_image_ref_clear(&ref);
        if (err->code != MERR_OK)
            return merr_prefix(err, "%s:%d: hosts.%s.setup.images", lab->path, h->line, h->group);
    }
    return 0;
}

static int load_one(const struct engine_endpoint *ep, const char *path, struct merr *err)
{
    auto_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return merr_set(err, MERR_IO, errno, "cannot read '%s'", path);
    return engine_load_image(ep, fd, st.st_size, err);
}

int lab_load_images(const struct machine_ctx *ctx, const struct lab *lab, const struct lab_host *h,
                    const struct machine *m, void (*say)(void *opaque, const char *step),
                    void *opaque, struct merr *err)
{
    const json_t *images = json_object_get(json_object_get(h->spec, "setup"), "images");
    if (json_array_size(images) == 0)
        return 0;
    const struct driver *d = lifecycle_driver(ctx, m, err);
    if (d == NULL)
        return -1;
    struct driver_ctx dctx;
    lifecycle_driver_ctx(ctx, &dctx);
    auto_free char *url = driver_get_url(d, &dctx, m, err);
    if (url == NULL)
        return merr_prefix(err, "setup.images");
    auto_free char *ca = store_machine_file(&ctx->store, m->name, "ca.pem");
    auto_free char *cert = store_machine_file(&ctx->store, m->name, "cert.pem");
    auto_free char *key = store_machine_file(&ctx->store, m->name, "key.pem");
    struct engine_endpoint ep = { .url = url, .ca = ca, .cert = cert, .key = key,
                                  .timeout_ms = IMAGE_LOAD_MS };
    size_t i;
    json_t *v;
    json_array_foreach(images, i, v) {
        const char *image = json_string_value(v);
        auto_free char *path = lab_image_archive(lab->dir, image);
        if (path == NULL) {
            auto_free char *step = xasprintf("setup: pulling %s (once for the lab)", image);
            say(opaque, step);
            auto_free char *cache = xasprintf("%s/cache/images", ctx->store.root);
            if ((path = lab_pull_image(cache, image, err)) == NULL)
                return merr_prefix(err, "setup.images %s", image);
        }
        auto_free char *step = xasprintf("setup: loading %s", image);
        say(opaque, step);
        if (load_one(&ep, path, err) < 0)
            return merr_prefix(err, "setup.images %s", image);
    }
    return 0;
}
