/* machine env: the environment that points the docker CLI at a machine. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "driver.h"
#include "engine.h"
#include "error.h"
#include "fsutil.h"
#include "lifecycle.h"
#include "machine.h"
#include "shellenv.h"
#include "store.h"

static const struct opt_spec env_opts[] = {
    { "shell", 0, OPT_STRING, "bash, zsh, fish, powershell, cmd, tcsh or emacs (default: from $SHELL)",
      NULL, NULL },
    { "unset", 'u', OPT_BOOL, "print the commands that unset the variables", NULL, NULL },
    { "no-proxy", 0, OPT_BOOL, "add the machine's IP to NO_PROXY", NULL, NULL },
    { "swarm", 0, OPT_BOOL, "not supported (docker-machine's classic Swarm)", NULL, NULL },
};

/* The NO_PROXY list with ip appended once; the variable name follows whichever the user has. */
static char *no_proxy_value(const char *ip, const char **var)
{
    const char *cur = getenv("NO_PROXY");
    *var = "NO_PROXY";
    if (cur == NULL || cur[0] == '\0') {
        const char *lower = getenv("no_proxy");
        if (lower != NULL && lower[0] != '\0') {
            cur = lower;
            *var = "no_proxy";
        }
    }
    if (cur == NULL || cur[0] == '\0')
        return xstrdup(ip);
    auto_free char *copy = xstrdup(cur);
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save))
        if (strcmp(tok, ip) == 0)
            return xstrdup(cur);
    return xasprintf("%s,%s", cur, ip);
}

static int env_run(struct cli *cli, struct parsed_args *a, struct merr *err)
{
    if (args_npositional(a) > 1)
        return merr_set(err, MERR_INVALID, 0, "env takes at most one machine name");
    enum shell_kind shell = shell_detect(getenv("SHELL"));
    const char *shell_flag = args_get(a, "shell");
    if (shell_flag != NULL && shell_from_name(shell_flag, &shell, err) < 0)
        return -1;
    if (args_get_bool(a, "swarm"))
        return merr_set(err, MERR_UNSUPPORTED, 0, CLI_SWARM_UNSUPPORTED, 7, "--swarm");
    bool unset = args_get_bool(a, "unset");
    if (unset && args_npositional(a) > 0)
        return merr_set(err, MERR_INVALID, 0, "Expected no machine name when the -u flag is present");
    bool no_proxy = args_get_bool(a, "no-proxy");
    auto_free char *hint = xasprintf("%s env%s%s%s%s", cli->prog, shell_flag != NULL ? " --shell " : "",
                                     shell_flag != NULL ? shell_flag : "", unset ? " --unset" : "",
                                     "");
    if (unset) {
        struct env_var vars[] = { { "DOCKER_TLS_VERIFY", NULL },
                                  { "DOCKER_HOST", NULL },
                                  { "DOCKER_CERT_PATH", NULL },
                                  { "DOCKER_MACHINE_NAME", NULL },
                                  { "NO_PROXY", NULL } };
        auto_free char *text = shellenv_render(shell, vars, no_proxy ? 5 : 4, true, hint);
        fputs(text, cli->out);
        return 0;
    }

    auto_machine struct machine *m = cli_load_machine(cli, cli_machine_arg(a, 0), err);
    if (m == NULL)
        return -1;
    if (strcmp(m->status, MACHINE_STATUS_CREATED) != 0)
        return merr_set(err, MERR_INVALID, 0, "machine '%s' is not ready (%s%s%s); run 'machine rm %s'",
                        m->name, m->status, m->error != NULL ? ": " : "",
                        m->error != NULL ? m->error : "", m->name);
    const struct driver *d = lifecycle_driver(&cli->ctx, m, err);
    if (d == NULL)
        return -1;
    struct driver_ctx sctx;
    lifecycle_driver_ctx(&cli->ctx, &sctx);
    if (cli_require_running(d, &sctx, m, err) < 0)
        return -1;
    /* Check the connection first, as docker-machine does; renew a certificate that no longer
     * names the machine's address instead of only telling the user to. */
    if (cli_renew_certs_if_needed(&cli->ctx, m, cli->err, err) < 0)
        return -1;
    auto_free char *version = cli_engine_version(&cli->ctx, m, 10000, err);
    if (version == NULL)
        return merr_prefix(err, "cannot reach the engine of '%s' (is it running? 'machine "
                                "provision %s' reinstalls it)", m->name, m->name);
    struct driver_ctx dctx;
    lifecycle_driver_ctx(&cli->ctx, &dctx);
    auto_free char *url = driver_get_url(d, &dctx, m, err);
    if (url == NULL)
        return -1;
    auto_free char *dir = store_machine_dir(&cli->ctx.store, m->name);
    struct env_var vars[5] = {
        { "DOCKER_TLS_VERIFY", "1" },
        { "DOCKER_HOST", url },
        { "DOCKER_CERT_PATH", dir },
        { "DOCKER_MACHINE_NAME", m->name },
    };
    size_t n = 4;
    auto_free char *np = NULL;
    auto_free char *ip = NULL;
    if (no_proxy) {
        ip = driver_get_ip(d, &dctx, m, err);
        if (ip == NULL)
            return -1;
        const char *var = NULL;
        np = no_proxy_value(ip, &var);
        vars[n++] = (struct env_var){ var, np };
    }
    free(hint);
    hint = xasprintf("%s env%s%s %s", cli->prog, shell_flag != NULL ? " --shell " : "",
                     shell_flag != NULL ? shell_flag : "", m->name);
    auto_free char *text = shellenv_render(shell, vars, n, false, hint);
    fputs(text, cli->out);
    return 0;
}

const struct cli_command cmd_env = {
    .name = "env",
    .usage = "[OPTIONS] [NAME]",
    .summary = "Print the commands that point the docker CLI at a machine",
    .opts = env_opts,
    .n_opts = sizeof env_opts / sizeof env_opts[0],
    .flags = CMD_NEEDS_STORE,
    .run = env_run,
};
