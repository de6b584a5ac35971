/* The machine CLI: a table of commands sharing one context. Only cli/ prints errors. */
#ifndef MACHINE_CLI_H
#define MACHINE_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "args.h"
#include "cleanup.h"
#include "context.h"
#include "curlapi.h"

struct merr;
struct machine;
struct driver;

struct cli {
    struct machine_ctx ctx;
    FILE *out;
    FILE *err;
    const char *prog;
    char *storage_path; /* from -s/--storage-path, env or default */
    bool store_open;
    struct curl_api curl; /* the linked libcurl, lent to drivers through ctx.curl */
};

enum cli_cmd_flags {
    CMD_NEEDS_STORE = 1 << 0,    /* open (create) the store before running */
    CMD_STOP_AT_POSITIONAL = 1 << 1, /* everything after the first positional is positional */
    CMD_RAW_ARGS = 1 << 2,       /* run() parses its own arguments (a->positional is raw argv) */
};

struct cli_command {
    const char *name;
    const char *usage; /* after "machine NAME " */
    const char *summary;
    const struct opt_spec *opts;
    size_t n_opts;
    unsigned flags;
    /* Returns the exit status, or -1 with err filled (exit 1, or 3 for MERR_PRECREATE). */
    int (*run)(struct cli *cli, struct parsed_args *a, struct merr *err);
};

int cli_main(int argc, char **argv);

/* The tables --help prints from, for the generator of completions and the man page (gendoc.c).
 * cli_create_specs: create's common options followed by driver d's flags (d may be NULL). */
const struct cli_command *const *cli_commands(void);
const struct opt_spec *cli_global_opts(size_t *n);
struct opt_spec *cli_create_specs(const struct driver *d, size_t *n);
/* The driver called name: a built-in one, else a machine-driver-NAME plugin (loaded once). */
const struct driver *cli_find_driver(struct cli *cli, const char *name, struct merr *err) MUST_CHECK;

/* Helpers shared by commands. */
/* The machine a command uses when given no name. cli_machine_arg returns this very array for an
 * omitted name, so cli_load_machine can say "no name given and no default machine" then. */
extern const char cli_default_machine[];
const char *cli_machine_arg(const struct parsed_args *a, size_t idx);
struct machine *cli_load_machine(struct cli *cli, const char *name, struct merr *err) MUST_CHECK;
/* "Error: MSG", or MSG alone when it already starts with "Error" (docker-machine's wording, such
 * as "Error creating machine: …", which scripts match). */
void cli_print_error(struct cli *cli, const struct merr *err);
/* For drivers that reach hosts over SSH: MERR_REMOTE "Host is not running (…)" unless the driver
 * says Running (docker-machine's answer for url, config, env, version of such a host). */
struct driver_ctx;
int cli_require_running(const struct driver *d, const struct driver_ctx *dctx,
                        const struct machine *m, struct merr *err) MUST_CHECK;
void cli_print_command_help(struct cli *cli, const struct cli_command *c, const struct opt_spec *opts,
                            size_t n_opts, const char *extra);

/* The answer to docker-machine's --swarm* flags (a printf format taking "%.*s" of the flag). */
#define CLI_SWARM_UNSUPPORTED                                                                      \
    "'%.*s' is not supported: machine does not set up classic Docker Swarm (swarm support is "     \
    "to come with machine's multi-machine labs)"

/* Commands, one per file group. */
extern const struct cli_command cmd_create, cmd_drivers, cmd_ls, cmd_inspect, cmd_inventory, cmd_ip, cmd_url, cmd_status,
    cmd_config, cmd_active, cmd_version, cmd_env, cmd_ssh, cmd_scp, cmd_mount, cmd_start, cmd_stop,
    cmd_restart, cmd_kill, cmd_rm, cmd_up, cmd_down, cmd_provision, cmd_upgrade, cmd_regenerate_certs,
    cmd_export, cmd_import;

#endif
