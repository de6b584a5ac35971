/* machine-os's config disk (docs/machine-os.md) and boot image, shared by the VM drivers that
 * boot it. */
#ifndef MACHINE_OS_CONFIG_H
#define MACHINE_OS_CONFIG_H

#include <stddef.h>

#include "cleanup.h"

struct merr;

#define MACHINE_OS_CONFIG_DISK_BYTES (1u << 20)

/* A ustar archive with hostname and authorized_keys (root's), zero padded to
 * MACHINE_OS_CONFIG_DISK_BYTES: what machine-os reads from the disk with serial machine-config. */
int machine_os_config_disk(const char *hostname, const char *authorized_keys, char **out,
                           size_t *len, struct merr *err) MUST_CHECK;

#define MACHINE_OS_IMAGE_NAME "machine-os.iso"

/* machine-os.iso of this build (build/machine-os/) or installation (lib/machine/), found beside
 * the running program; NULL with MERR_NOT_FOUND naming image_flag, the flag that gives another. */
char *machine_os_default_image(const char *image_flag, struct merr *err);

#endif
