/* machine inventory: machines as the tools that run labs read them — an Ansible inventory
 * (YAML), a JSON document, or an ssh_config include. Pure renderers (unit-tested). */
#ifndef MACHINE_INVENTORY_H
#define MACHINE_INVENTORY_H

#include <stddef.h>
#include <stdio.h>

struct merr;

enum inventory_format { INVENTORY_ANSIBLE, INVENTORY_JSON, INVENTORY_SSH_CONFIG };

struct inventory_host {
    const char *name;
    const char *driver;
    const char *host; /* address */
    int port;
    const char *user;
    const char *key_path;
    const char *known_hosts;
    char *const *labels; /* k=v; "lab" and "lab-group" make the Ansible groups */
};

int inventory_format_parse(const char *s, enum inventory_format *out, struct merr *err);

/* The group names a host belongs to ("lab" and "lab-group" labels), made safe for Ansible
 * (letters, digits, '_'); NULL-terminated, malloc'd. */
char **inventory_groups(const struct inventory_host *h);

void inventory_render(FILE *out, enum inventory_format fmt, const struct inventory_host *hosts,
                      size_t n);

#endif
