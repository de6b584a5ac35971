/* Read-only commands: inspect, ip, url, status, config, active, version. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "driver.h"
#include "engine.h"
#include "error.h"
#include "fsutil.h"
#include "lifecycle.h"
#include "log.h"
#include "machine.h"
#include "provision.h"
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

/* url and config of a host that does not answer fail as docker-machine's do, instead of
 * printing an address nothing listens on. */
int cli_require_running(const struct driver *d, const struct driver_ctx *dctx,
                        const struct machine *m, struct merr *err)
{
    if (!d->uses_ssh)
        return 0;
    enum machine_state st = MSTATE_NONE;
    struct merr e = MERR_INIT;
    if (driver_get_state(d, dctx, m, &st, &e) < 0 || st != MSTATE_RUNNING)
        return merr_set(err, MERR_REMOTE, 0, "Host is not running (machine '%s': %s)", m->name,
                        e.code != MERR_OK ? e.msg : machine_state_name(st));
    return 0;
}

/* Runs fn for each named machine (or "default"); stops at the first error. */
static int for_each_name(struct cli *cli, struct parsed_args *a,
                         int (*fn)(struct cli *cli, const char *name, struct merr *err),
                         struct merr *err)
{
    size_t n = args_npositional(a);
    if (n == 0)
        return fn(cli, cli_default_machine, err);
    for (size_t i = 0; i < n; i++)
        if (fn(cli, a->positional[i], err) < 0)
            return -1;
    return 0;
}

static const struct opt_spec inspect_opts[] = {
    { "format", 'f', OPT_STRING,
      "Go-style template, e.g. '{{.Driver.IPAddress}}', '{{json .}}', '{{prettyjson .Driver}}'", NULL,
      NULL },
};

static void set_path(json_t *obj, const char *key, char *path)
{
    json_object_set_new(obj, key, json_string(path));
    free(path);
}

/* config.json plus the paths docker-machine's inspect shows and templates use
 * ({{.Driver.StorePath}}, {{.HostOptions.AuthOptions.CertDir}}, ...), derived from where the
 * store is now rather than stored. */
static json_t *inspect_json(const struct cli *cli, const struct machine *m)
{
    const struct store *st = &cli->ctx.store;
    json_t *j = machine_to_json(m);
    json_t *drv = json_object_get(j, "Driver");
    if (json_is_object(drv)) {
        json_object_set_new(drv, "MachineName", json_string(m->name));
        json_object_set_new(drv, "StorePath", json_string(st->root));
    }
    json_t *ho = json_object_get(j, "HostOptions");
    json_t *auth = json_is_object(ho) ? json_object_get(ho, "AuthOptions") : NULL;
    if (json_is_object(auth)) {
        json_object_set_new(auth, "CertDir", json_string(st->certs_dir));
        set_path(auth, "CaCertPath", path_join(st->certs_dir, "ca.pem"));
        set_path(auth, "CaPrivateKeyPath", path_join(st->certs_dir, "ca-key.pem"));
        set_path(auth, "ClientCertPath", path_join(st->certs_dir, "cert.pem"));
        set_path(auth, "ClientKeyPath", path_join(st->certs_dir, "key.pem"));
        set_path(auth, "ServerCertPath", store_machine_file(st, m->name, "server.pem"));
        set_path(auth, "ServerKeyPath", store_machine_file(st, m->name, "server-key.pem"));
        set_path(auth, "StorePath", store_machine_dir(st, m->name));
    }
    return j;
}

static int inspect_run(struct cli *cli, struct parsed_args *a, struct merr *err)
{
    if (args_npositional(a) > 1)
        return merr_set(err, MERR_INVALID, 0, "inspect takes at most one machine name");
    auto_machine struct machine *m = cli_load_machine(cli, cli_machine_arg(a, 0), err);
    if (m == NULL)
        return -1;
    json_t *j = inspect_json(cli, m);
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
    if (cli_require_running(d, &dctx, m, err) < 0)
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
    if (cli_require_running(d, &dctx, m, err) < 0)
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
        if (cli->ctx.log.level >= MLOG_DEBUG) {
            /* where an installed machine finds what it installs on hosts */
            struct merr e = MERR_INIT;
            auto_free char *bundle = provision_find_bundle(&e);
            fprintf(cli->out, "engine bundle: %s\n", bundle != NULL ? bundle : e.msg);
        }
        return 0;
    }
    const struct driver *d;
    struct driver_ctx dctx;
    auto_machine struct machine *m = load_with_driver(cli, a->positional[0], &d, &dctx, err);
    if (m == NULL || cli_require_running(d, &dctx, m, err) < 0)
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
