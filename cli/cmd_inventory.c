/* machine inventory: every machine (or the named ones, or one lab's) as an Ansible inventory,
 * a JSON document or an ssh_config include, with the machine's key and pinned known_hosts. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "error.h"
#include "fsutil.h"
#include "inventory.h"
#include "lifecycle.h"
#include "machine.h"
#include "store.h"

static const struct opt_spec inventory_opts[] = {
    { "format", 'f', OPT_STRING, "ansible (YAML inventory), json or ssh-config", "ansible", NULL },
    { "lab", 0, OPT_STRING, "only the machines of this lab (label lab=NAME)", NULL, NULL },
};

struct inv_entry {
    struct machine *m;
    struct machine_ssh ssh;
};

static bool in_lab(const struct machine *m, const char *lab)
{
    auto_free char *want = xasprintf("lab=%s", lab);
    for (char *const *l = m->engine.labels; l != NULL && *l != NULL; l++)
        if (strcmp(*l, want) == 0)
            return true;
    return false;
}

/* Loads name into e; 1 when it is skipped (a warning printed unless explicit, then an error). */
static int collect(struct cli *cli, const char *name, const char *lab, bool explicit,
                   struct inv_entry *e, struct merr *err)
{
    struct merr why = MERR_INIT;
    e->m = store_load_machine(&cli->ctx.store, name, &why);
    if (e->m != NULL && lab != NULL && !in_lab(e->m, lab)) {
        if (!explicit)
            return 1;
        merr_set(&why, MERR_INVALID, 0, "not a machine of lab '%s'", lab);
    } else if (e->m != NULL && machine_ssh_init(&cli->ctx, e->m, &e->ssh, &why) == 0) {
        return 0;
    }
    if (explicit) {
        *err = why;
        return merr_prefix(err, "%s", name);
    }
    fprintf(cli->err, "skipping '%s': %s\n", name, why.msg);
    return 1;
}

static int inventory_run(struct cli *cli, struct parsed_args *a, struct merr *err)
{
    enum inventory_format fmt;
    if (inventory_format_parse(args_get(a, "format"), &fmt, err) < 0)
        return -1;
    const char *lab = args_get(a, "lab");
    bool explicit = args_npositional(a) > 0;
    auto_strv char **names = NULL;
    if (explicit)
        for (size_t i = 0; i < args_npositional(a); i++)
            names = strv_push(names, a->positional[i]);
    else if ((names = store_list_names(&cli->ctx.store, err)) == NULL)
        return -1;
    size_t n = strv_len(names), got = 0;
    struct inv_entry *entries = xcalloc(n + 1, sizeof *entries);
    struct inventory_host *hosts = xcalloc(n + 1, sizeof *hosts);
    int rc = 0;
    for (size_t i = 0; i < n && rc >= 0; i++) {
        struct inv_entry *e = &entries[got];
        rc = collect(cli, names[i], lab, explicit, e, err);
        if (rc == 0) {
            hosts[got] = (struct inventory_host){
                .name = e->m->name, .driver = e->m->driver_name, .host = e->ssh.host,
                .port = e->ssh.target.port, .user = e->ssh.user, .key_path = e->ssh.key_path,
                .known_hosts = e->ssh.known_hosts, .labels = e->m->engine.labels,
            };
            got++;
        } else {
            machine_free(e->m);
            machine_ssh_release(&e->ssh);
            memset(e, 0, sizeof *e);
        }
    }
    if (rc >= 0)
        inventory_render(cli->out, fmt, hosts, got);
    for (size_t i = 0; i < got; i++) {
        machine_ssh_release(&entries[i].ssh);
        machine_free(entries[i].m);
    }
    free(entries);
    free(hosts);
    return rc < 0 ? -1 : 0;
}

const struct cli_command cmd_inventory = {
    .name = "inventory",
    .usage = "[OPTIONS] [NAME...]",
    .summary = "Print machines as an Ansible inventory, JSON or an ssh_config include",
    .opts = inventory_opts,
    .n_opts = sizeof inventory_opts / sizeof inventory_opts[0],
    .flags = CMD_NEEDS_STORE,
    .run = inventory_run,
};
