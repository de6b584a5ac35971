/* machine drivers: the built-in drivers and the driver plugins found (core/plugin.h). */
#include <stdio.h>

#include "cli.h"
#include "driver.h"
#include "error.h"
#include "plugin.h"
#include "strv.h"

static int drivers_run(struct cli *cli, struct parsed_args *a, struct merr *err)
{
    (void)a;
    (void)err;
    fprintf(cli->out, "%-14s %-9s %-10s %s\n", "NAME", "KIND", "VERSION", "DESCRIPTION");
    for (size_t i = 0; cli->ctx.drivers[i] != NULL; i++)
        fprintf(cli->out, "%-14s %-9s %-10s %s\n", cli->ctx.drivers[i]->name, "built-in",
                MACHINE_VERSION, cli->ctx.drivers[i]->description);
    auto_strv char **names = plugin_list(&cli->ctx.store, cli->ctx.drivers);
    for (size_t i = 0; names[i] != NULL; i++) {
        struct merr perr = MERR_INIT;
        const struct driver *d = plugin_set_load(cli->ctx.plugins, &cli->ctx.store, &cli->ctx.log,
                                                 cli->ctx.drivers, names[i],
                                                 cli->ctx.state_timeout_ms, &perr);
        const struct plugin_info *info = d != NULL ? plugin_driver_info(cli->ctx.plugins, d) : NULL;
        if (info == NULL) /* listed, with why it cannot be used */
            fprintf(cli->out, "%-14s %-9s %-10s error: %s\n", names[i], "plugin", "-", perr.msg);
        else
            fprintf(cli->out, "%-14s %-9s %-10s %s\n", names[i], "plugin", info->version,
                    info->description);
    }
    return 0;
}

const struct cli_command cmd_drivers = {
    .name = "drivers",
    .usage = "",
    .summary = "List the built-in drivers and the driver plugins found",
    .flags = CMD_NEEDS_STORE,
    .run = drivers_run,
};
