/* machine-os's config disk: a plain tar from byte 0, zero padded (pure). */
#include "machine-os-config.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fsutil.h"
#include "tarw.h"

struct membuf {
    char *data;
    size_t len;
};

static int membuf_write(void *ctx, const void *buf, size_t len, struct merr *err)
{
    struct membuf *b = ctx;
    if (b->len + len > MACHINE_OS_CONFIG_DISK_BYTES)
        return merr_set(err, MERR_INVALID, 0, "the machine's config does not fit its config disk");
    memcpy(b->data + b->len, buf, len);
    b->len += len;
    return 0;
}

int machine_os_config_disk(const char *hostname, const char *authorized_keys, char **out,
                           size_t *len, struct merr *err)
{
    if (authorized_keys == NULL)
        return merr_set(err, MERR_INVALID, 0, "no SSH public key for machine '%s'", hostname);
    struct membuf b = { calloc(1, MACHINE_OS_CONFIG_DISK_BYTES), 0 };
    if (b.data == NULL)
        return merr_set(err, MERR_NOMEM, 0, "out of memory");
    auto_free char *host = xasprintf("%s\n", hostname);
    struct tarw w = { .write = membuf_write, .ctx = &b };
    int rc = tarw_header(&w, "hostname", false, strlen(host), err) < 0 ||
                     tarw_data(&w, host, strlen(host), err) < 0 ||
                     tarw_header(&w, "authorized_keys", false, strlen(authorized_keys), err) < 0 ||
                     tarw_data(&w, authorized_keys, strlen(authorized_keys), err) < 0 ||
                     tarw_close(&w, err) < 0
                 ? -1
                 : 0;
    tarw_release(&w);
    if (rc < 0) {
        free(b.data);
        return -1;
    }
    *out = b.data;
    *len = MACHINE_OS_CONFIG_DISK_BYTES;
    return 0;
}

char *machine_os_default_image(const char *image_flag, struct merr *err)
{
    static const char *const rel[] = { "../machine-os/" MACHINE_OS_IMAGE_NAME,
                                       "../lib/machine/" MACHINE_OS_IMAGE_NAME,
                                       MACHINE_OS_IMAGE_NAME, NULL };
    char *found = fs_find_beside_exe(rel);
    if (found == NULL)
        merr_set(err, MERR_NOT_FOUND, 0,
                 "cannot find the boot image (%s): build it with 'make -C build machine-os' or "
                 "pass %s", MACHINE_OS_IMAGE_NAME, image_flag);
    return found;
}
