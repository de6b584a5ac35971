/* The image of a container machine: --container-image as given, or machine-host.tar of this
 * build (scripts/build-machine-host) imported once per engine as machine-host:TAG. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "container-priv.h"
#include "driver.h"
#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "machine.h"
#include "store.h"

#define HOST_TAR "machine-host.tar"

/* The image tar and its tag file, beside the program (build tree or installation). */
static char *find_host_tar(char **tag, struct merr *err)
{
    static const char *const rel[] = { "../machine-os/" HOST_TAR, "../lib/machine/" HOST_TAR,
                                       HOST_TAR, NULL };
    auto_free char *tar = fs_find_beside_exe(rel);
    if (tar == NULL) {
        merr_set(err, MERR_NOT_FOUND, 0,
                 "cannot find the container machine image (%s): build it with 'make -C build "
                 "machine-host' or pass --container-image",
                 HOST_TAR);
        return NULL;
    }
    auto_free char *tag_path = xasprintf("%.*s.tag", (int)(strlen(tar) - 4), tar);
    FILE *f = fopen(tag_path, "re");
    char line[64] = "";
    bool ok = f != NULL && fgets(line, sizeof line, f) != NULL;
    if (f != NULL)
        fclose(f);
    line[strcspn(line, "\n")] = '\0';
    if (!ok || strlen(line) != 16 || strspn(line, "0123456789abcdef") != 16) {
        merr_set(err, MERR_CORRUPT, 0, "'%s' is missing or malformed", tag_path);
        return NULL;
    }
    *tag = xstrdup(line);
    char *out = tar;
    tar = NULL;
    return out;
}

static int lock_images(const struct driver_ctx *ctx, struct merr *err)
{
    auto_free char *dir = path_join(ctx->store->root, "locks");
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return merr_set(err, MERR_IO, errno, "cannot create '%s'", dir);
    auto_free char *path = path_join(dir, "container-image.lock");
    return fs_lock(path, 600000, err);
}

int ctr_image_ensure(struct ctr_api *api, struct machine *m, struct merr *err)
{
    const char *given = machine_driver_str(m, CKEY_IMAGE);
    if (given != NULL && given[0] != '\0') {
        auto_free char *path = xasprintf("/images/%s/json", given);
        long st = ctr_api_call(api, "GET", path, NULL, NULL, "inspecting the image", err);
        if (st == 404)
            return merr_set(err, MERR_NOT_FOUND, 0,
                            "no image '%s' on the engine: pull or load it first (create never "
                            "pulls)",
                            given);
        return st >= 200 && st < 300 ? 0 : -1;
    }
    auto_free char *tag = NULL;
    auto_free char *tar = find_host_tar(&tag, err);
    if (tar == NULL)
        return -1;
    auto_free char *ref = xasprintf(CTR_HOST_IMAGE ":%s", tag);
    machine_driver_set_str(m, CKEY_IMAGE, ref);
    auto_free char *path = xasprintf("/images/%s/json", ref);
    int fd = lock_images(api->ctx, err); /* one import when many machines are made at once */
    if (fd < 0)
        return -1;
    long st = ctr_api_call(api, "GET", path, NULL, NULL, "inspecting the image", err);
    int rc = st >= 200 && st < 300 ? 0 : -1;
    if (st == 404) {
        mlog_info(api->ctx->log, "importing %s into the engine (once)", ref);
        auto_free char *q = xasprintf("/images/create?fromSrc=-&repo=" CTR_HOST_IMAGE "&tag=%s"
                                      "&changes=CMD%%20%%5B%%22%%2Fetc%%2Frc.container%%22%%5D"
                                      "&changes=STOPSIGNAL%%20SIGTERM",
                                      tag);
        rc = ctr_api_post_file(api, q, tar, "importing the machine image", err);
    }
    fs_unlock(fd);
    return rc;
}
