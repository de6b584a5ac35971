/* The drivers compiled into machine. */
#ifndef MACHINE_DRIVERS_REGISTRY_H
#define MACHINE_DRIVERS_REGISTRY_H

struct driver;

extern const struct driver driver_none;
extern const struct driver driver_generic;
extern const struct driver driver_container;
extern const struct driver driver_kvm;

/* NULL-terminated, in the order `machine create --help` lists them. */
const struct driver *const *machine_drivers(void);

#endif
