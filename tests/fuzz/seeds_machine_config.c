/* Writes a seed corpus for fuzz_machine_config into the directory argv[1]: config.json files
 * as machine's store writes them (machine_to_json, dumped like store.c does) for a generic
 * host with engine options, a kvm VM with its OS, and a failed create. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "machine.h"

static int write_machine(const char *dir, const char *file, const struct machine *m)
{
    json_t *j = machine_to_json(m);
    char *text = j != NULL ? json_dumps(j, JSON_INDENT(4) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "wb");
    int rc = text == NULL || f == NULL || fputs(text, f) < 0;
    if (f != NULL && fclose(f) != 0)
        rc = 1;
    if (rc)
        perror(path);
    free(text);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: seeds_machine_config DIR\n");
        return 2;
    }
    int rc = 0;
    struct machine *g = machine_new("lab2", "generic");
    machine_driver_set_str(g, "IPAddress", "192.0.2.10");
    machine_driver_set_str(g, "SSHUser", "root");
    machine_driver_set_int(g, "SSHPort", 22);
    machine_driver_set_str(g, "SSHKeyPath", "/root/.machine/machines/lab2/id_ssh");
    machine_set_status(g, MACHINE_STATUS_CREATED, NULL);
    g->engine.env = strv_push(g->engine.env, "HTTP_PROXY=http://proxy.test:3128");
    g->engine.labels = strv_push(g->engine.labels, "zone=a");
    g->engine.insecure_registry = strv_push(g->engine.insecure_registry, "10.0.0.1:5000");
    g->engine.opts = strv_push(g->engine.opts, "log-level=debug");
    g->auth.sans = strv_push(g->auth.sans, "lab2.test");
    g->engine.port = 2376;
    rc |= write_machine(argv[1], "generic", g);
    machine_free(g);

    struct machine *k = machine_new("k1", "kvm");
    machine_driver_set_int(k, "Memory", 1024);
    machine_driver_set_int(k, "CPU", 1);
    machine_driver_set_str(k, "URI", "qemu:///system");
    machine_driver_set_str(k, "Network", "machine");
    machine_set_status(k, MACHINE_STATUS_CREATED, NULL);
    k->os.id = strdup("machine-os");
    k->os.version_id = strdup("1");
    k->os.pretty_name = strdup("machine-os 1");
    rc |= write_machine(argv[1], "kvm", k);
    machine_free(k);

    struct machine *w = machine_new("w1", "generic");
    machine_set_status(w, MACHINE_STATUS_ERROR, "cannot connect to 192.0.2.10:22: timed out");
    rc |= write_machine(argv[1], "failed", w);
    machine_free(w);
    return rc;
}
