/* Read-only commands: inspect, ip, url, status, config, active, version. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "driver.h"
#include "engine.h"
#include "error.h"
#include "fsutil.h"
#include "lifecycle.h"
#include "machine.h"
#include "store.h"
#include "template.h"

/* Loads a machine and its driver; dctx is filled for driver calls. */
static struct machine *load_with_driver(struct cli *cli, const char *name, const struct driver **d,
                                        struct driver_ctx *dctx, struct merr *err)
{
    struct machine *m = cli_load_machine(cli, name, err);
    if (m == NULL)
        return NULL;
    *d = lifecycle_driver(&cli->ctx, m, err);
    if (*d == NULL) {
        machine_free(m);
        return NULL;
    }
    lifecycle_driver_ctx(&cli->ctx, dctx);
    return m;
}

/* Runs fn for each named machine (or "default"); stops at the first error. */
static int for_each_name(struct cli *cli, struct parsed_args *a,
                         int (*fn)(struct cli *cli, const char *name, struct merr *err),
                         struct merr *err)
{
    size_t n = args_npositional(a);
    if (n == 0)
        return fn(cli, CLI_DEFAULT_MACHINE, err);
    for (size_t i = 0; i < n; i++)
        if (fn(cli, a->positional[i], err) < 0)
            return -1;
    return 0;
}

static const struct opt_spec inspect_opts[] = {
    { "format", 'f', OPT_STRING, "Go-style template, e.g. '{{.Driver.IPAddress}}'", NULL, NULL },
};

static int inspect_run(struct cli *cli, struct parsed_args *a, struct merr *err)
{
    if (args_npositional(a) > 1)
        return merr_set(err, MERR_INVALID, 0, "inspect takes at most one machine name");
    auto_machine struct machine *m = cli_load_machine(cli, cli_machine_arg(a, 0), err);
    if (m == NULL)
        return -1;
    json_t *j = machine_to_json(m);
    const char *format = args_get(a, "format");
    char *text = format != NULL ? template_render(format, j, err)
                                : json_dumps(j, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (text == NULL)
        return -1;
    fprintf(cli->out, "%s\n", text);
    free(text);
    return 0;
}

const struct cli_command cmd_inspect = {
    .name = "inspect",
    .usage = "[OPTIONS] [NAME]",
    .summary = "Show a machine's configuration",
    .opts = inspect_opts,
    .n_opts = 1,
    .flags = CMD_NEEDS_STORE,
    .run = inspect_run,
};

static int print_ip(struct cli *cli, const char *name, struct merr *err)
{
    const struct driver *d;
    struct driver_ctx dctx;
    auto_machine struct machine *m = load_with_driver(cli, name, &d, &dctx, err);
    if (m == NULL)
        return -1;
    auto_free char *ip = driver_get_ip(d, &dctx, m, err);
    if (ip == NULL)
        return -1;
    fprintf(cli->out, "%s\n", ip);
    return 0;
}

static int ip_run(struct cli *cli, struct parsed_args *a, struct merr *err)
{
    return for_each_name(cli, a, print_ip, err);
}

const struct cli_command cmd_ip = {
    .name = "ip",
    .usage = "[NAME...]",
    .summary = "Print a machine's IP address",
    .flags = CMD_NEEDS_STORE,
    .run = ip_run,
};

static int print_url(struct cli *cli, const char *name, struct merr *err)
{
    const struct driver *d;
    struct driver_ctx dctx;
    auto_machine struct machine *m = load_with_driver(cli, name, &d, &dctx, err);
    if (m == NULL)
        return -1;
    auto_free char *url = driver_get_url(d, &dctx, m, err);
    if (url == NULL)
        return -1;
    fprintf(cli->out, "%s\n", url);
    return 0;
}

static int url_run(struct cli *cli, struct parsed_args *a, struct merr *err)
{
    return for_each_name(cli, a, print_url, err);
}

const struct cli_command cmd_url = {
    .name = "url",
    .usage = "[NAME]",
    .summary = "Print a machine's engine URL",
    .flags = CMD_NEEDS_STORE,
    .run = url_run,
};

static int status_run(struct cli *cli, struct parsed_args *a, struct merr *err)
{
    if (args_npositional(a) > 1)
        return merr_set(err, MERR_INVALID, 0, "status takes at most one machine name");
    const struct driver *d;
    struct driver_ctx dctx;
    auto_machine struct machine *m = load_with_driver(cli, cli_machine_arg(a, 0), &d, &dctx, err);
    if (m == NULL)
        return -1;
    if (strcmp(m->status, MACHINE_STATUS_ERROR) == 0) {
        fprintf(cli->out, "%s\n", machine_state_name(MSTATE_ERROR));
        return 0;
    }
    enum machine_state st = MSTATE_NONE;
    if (driver_get_state(d, &dctx, m, &st, err) < 0)
        return -1;
    fprintf(cli->out, "%s\n", machine_state_name(st));
    return 0;
}

const struct cli_command cmd_status = {
    .name = "status",
    .usage = "[NAME]",
    .summary = "Print a machine's state",
    .flags = CMD_NEEDS_STORE,
    .run = status_run,
};

static int config_run(struct cli *cli, struct parsed_args *a, struct merr *err)
{
    if (args_npositional(a) > 1)
        return merr_set(err, MERR_INVALID, 0, "config takes at most one machine name");
    const struct driver *d;
    struct driver_ctx dctx;
    auto_machine struct machine *m = load_with_driver(cli, cli_machine_arg(a, 0), &d, &dctx, err);
    if (m == NULL)
        return -1;
    auto_free char *url = driver_get_url(d, &dctx, m, err);
    if (url == NULL)
        return -1;
    auto_free char *dir = store_machine_dir(&cli->ctx.store, m->name);
    fprintf(cli->out,
            "--tlsverify\n--tlscacert=\"%s/ca.pem\"\n--tlscert=\"%s/cert.pem\"\n"
            "--tlskey=\"%s/key.pem\"\n-H=%s\n",
            dir, dir, dir, url);
    return 0;
}

const struct cli_command cmd_config = {
    .name = "config",
    .usage = "[NAME]",
    .summary = "Print the docker CLI flags to reach a machine's engine",
    .flags = CMD_NEEDS_STORE,
    .run = config_run,
};

/* The machine whose URL is $DOCKER_HOST and which is running. */
static int active_run(struct cli *cli, struct parsed_args *a, struct merr *err)
{
    const char *docker_host = getenv("DOCKER_HOST");
    if (docker_host == NULL || docker_host[0] == '\0')
        return merr_set(err, MERR_NOT_FOUND, 0, "no active host: DOCKER_HOST is not set");
    auto_strv char **names = store_list_names(&cli->ctx.store, err);
    if (names == NULL)
        return -1;
    for (size_t i = 0; names[i] != NULL; i++) {
        struct merr e = MERR_INIT;
        const struct driver *d;
        struct driver_ctx dctx;
        auto_machine struct machine *m = load_with_driver(cli, names[i], &d, &dctx, &e);
        if (m == NULL || strcmp(m->status, MACHINE_STATUS_CREATED) != 0)
            continue;
        auto_free char *url = driver_get_url(d, &dctx, m, &e);
        enum machine_state st = MSTATE_NONE;
        if (url == NULL || strcmp(url, docker_host) != 0 ||
            driver_get_state(d, &dctx, m, &st, &e) < 0 || st != MSTATE_RUNNING)
            continue;
        fprintf(cli->out, "%s\n", m->name);
        return 0;
    }
    return merr_set(err, MERR_NOT_FOUND, 0, "no active host found for DOCKER_HOST=%s", docker_host);
}

const struct cli_command cmd_active = {
    .name = "active",
    .usage = "",
    .summary = "Print the machine that $DOCKER_HOST points at",
    .flags = CMD_NEEDS_STORE,
    .run = active_run,
};

static int version_run(struct cli *cli, struct parsed_args *a, struct merr *err)
{
    if (args_npositional(a) == 0) {
        fprintf(cli->out, "machine version %s\n", MACHINE_VERSION);
        return 0;
    }
    auto_machine struct machine *m = cli_load_machine(cli, a->positional[0], err);
    if (m == NULL)
        return -1;
    auto_free char *v = cli_engine_version(&cli->ctx, m, 10000, err);
    if (v == NULL)
        return -1;
    fprintf(cli->out, "%s\n", v);
    return 0;
}

const struct cli_command cmd_version = {
    .name = "version",
    .usage = "[NAME]",
    .summary = "Print machine's version (or a machine's engine version)",
    .flags = CMD_NEEDS_STORE,
    .run = version_run,
};
