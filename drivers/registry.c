#include "registry.h"

#include <stddef.h>

#include "driver.h"

static const struct driver *const drivers[] = {
    &driver_kvm,
    &driver_virtualbox,
    &driver_generic,
    &driver_digitalocean,
    &driver_amazonec2,
    &driver_container,
    &driver_none,
    NULL,
};

const struct driver *const *machine_drivers(void)
{
    return drivers;
}
