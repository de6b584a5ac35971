/* The drivers compiled into machine. */
#ifndef MACHINE_DRIVERS_REGISTRY_H
#define MACHINE_DRIVERS_REGISTRY_H

struct driver;

extern const struct driver driver_none;
extern const struct driver driver_generic;
extern const struct driver driver_container;
extern const struct driver driver_kvm;
extern const struct driver driver_virtualbox;
extern const struct driver driver_digitalocean;
extern const struct driver driver_amazonec2;

/* NULL-terminated, in the order `machine create --help` lists them. */
const struct driver *const *machine_drivers(void);

#endif
