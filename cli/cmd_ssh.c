/* machine ssh / machine scp, over the built-in client (host key pinned) or the system ssh. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "engine.h"
#include "error.h"
#include "fsutil.h"
#include "lifecycle.h"
#include "machine.h"
#include "scppath.h"
#include "ssh.h"

static int require_ssh_ready(const struct machine *m, struct merr *err)
{
    if (strcmp(m->status, MACHINE_STATUS_ERROR) == 0)
        return merr_set(err, MERR_INVALID, 0, "machine '%s' failed to create: %s", m->name,
                        m->error != NULL ? m->error : "unknown error");
    return 0;
}

/* Joins the command words the way ssh does: with single spaces, unquoted. */
static char *join_command(char *const *words)
{
    size_t len = 1;
    for (size_t i = 0; words[i] != NULL; i++)
        len += strlen(words[i]) + 1;
    char *cmd = xcalloc(len, 1);
    for (size_t i = 0; words[i] != NULL; i++) {
        if (i > 0)
            strcat(cmd, " ");
        strcat(cmd, words[i]);
    }
    return cmd;
}

static int exec_external(struct cli *cli, const struct machine *m, char *const *cmd, struct merr *err)
{
    struct machine_ssh ms;
    if (machine_ssh_init(&cli->ctx, m, &ms, err) < 0)
        return -1;
    auto_strv char **argv = ssh_external_argv(&ms.target, isatty(STDIN_FILENO) && cmd[0] == NULL,
                                              cmd, err);
    machine_ssh_release(&ms);
    if (argv == NULL)
        return -1;
    fflush(NULL);
    execvp(argv[0], argv);
    return merr_set(err, MERR_IO, errno, "cannot run '%s'", argv[0]);
}

static int ssh_run(struct cli *cli, struct parsed_args *a, struct merr *err)
{
    const char *name = cli_machine_arg(a, 0);
    char *const *cmd = a->positional + (args_npositional(a) > 0 ? 1 : 0);
    if (cmd[0] != NULL && strcmp(cmd[0], "--") == 0)
        cmd++;
    auto_machine struct machine *m = cli_load_machine(cli, name, err);
    if (m == NULL || require_ssh_ready(m, err) < 0)
        return -1;
    struct merr renew = MERR_INIT;
    if (cli_renew_certs_if_needed(&cli->ctx, m, cli->err, &renew) < 0)
        fprintf(cli->err, "warning: %s\n", renew.msg);
    if (cli->ctx.external_ssh)
        return exec_external(cli, m, cmd, err);
    struct ssh_conn *c = NULL;
    if (machine_ssh_connect(&cli->ctx, m, &c, err) < 0)
        return -1;
    auto_free char *command = cmd[0] != NULL ? join_command(cmd) : NULL;
    int status = 0;
    int rc = ssh_interactive(c, command, &status, err);
    ssh_conn_free(c);
    return rc < 0 ? -1 : status;
}

const struct cli_command cmd_ssh = {
    .name = "ssh",
    .usage = "[NAME] [--] [COMMAND...]",
    .summary = "Log into a machine or run a command on it over SSH",
    .flags = CMD_NEEDS_STORE | CMD_STOP_AT_POSITIONAL,
    .run = ssh_run,
};

static const struct opt_spec scp_opts[] = {
    { "recursive", 'r', OPT_BOOL, "copy directories recursively", NULL, NULL },
    { "quiet", 'q', OPT_BOOL, "print nothing on success", NULL, NULL },
};

static int connect_for(struct cli *cli, const struct scp_path *p, struct ssh_conn **c,
                       struct merr *err)
{
    auto_machine struct machine *m = cli_load_machine(cli, p->machine, err);
    if (m == NULL || require_ssh_ready(m, err) < 0)
        return -1;
    struct machine_ssh ms;
    if (machine_ssh_init(&cli->ctx, m, &ms, err) < 0)
        return -1;
    if (p->user != NULL)
        ms.target.user = p->user;
    int rc = ssh_connect(&ms.target, c, err);
    machine_ssh_release(&ms);
    return rc;
}

static int copy_remote_to_remote(struct cli *cli, const struct scp_path *src,
                                 const struct scp_path *dst, bool recursive, struct merr *err)
{
    char tmpl[] = "/tmp/machine-scp-XXXXXX";
    if (mkdtemp(tmpl) == NULL)
        return merr_set(err, MERR_IO, errno, "cannot create a temporary directory");
    const char *base = strrchr(src->path, '/');
    base = base != NULL && base[1] != '\0' ? base + 1 : src->path;
    auto_free char *local = path_join(tmpl, strcmp(base, ".") == 0 ? "copy" : base);
    struct ssh_conn *c = NULL;
    int rc = connect_for(cli, src, &c, err);
    if (rc == 0)
        rc = ssh_download(c, src->path, local, recursive, err);
    ssh_conn_free(c);
    c = NULL;
    if (rc == 0)
        rc = connect_for(cli, dst, &c, err);
    if (rc == 0)
        rc = ssh_upload(c, local, dst->path, recursive, err);
    ssh_conn_free(c);
    struct merr ignored;
    if (fs_remove_tree(tmpl, &ignored) < 0)
        fprintf(cli->err, "warning: cannot remove '%s': %s\n", tmpl, ignored.msg);
    return rc;
}

static int scp_run(struct cli *cli, struct parsed_args *a, struct merr *err)
{
    if (args_npositional(a) != 2)
        return merr_set(err, MERR_INVALID, 0, "scp takes a source and a destination");
    bool recursive = args_get_bool(a, "recursive");
    struct scp_path src, dst;
    if (scp_path_parse(a->positional[0], &src, err) < 0)
        return -1;
    if (scp_path_parse(a->positional[1], &dst, err) < 0) {
        scp_path_release(&src);
        return -1;
    }
    int rc = -1;
    struct ssh_conn *c = NULL;
    if (src.machine == NULL && dst.machine == NULL) {
        merr_set(err, MERR_INVALID, 0, "scp needs at least one machine path (NAME:PATH)");
    } else if (src.machine != NULL && dst.machine != NULL) {
        rc = copy_remote_to_remote(cli, &src, &dst, recursive, err);
    } else if (src.machine != NULL) {
        rc = connect_for(cli, &src, &c, err);
        if (rc == 0)
            rc = ssh_download(c, src.path, dst.path, recursive, err);
    } else {
        rc = connect_for(cli, &dst, &c, err);
        if (rc == 0)
            rc = ssh_upload(c, src.path, dst.path, recursive, err);
    }
    ssh_conn_free(c);
    scp_path_release(&src);
    scp_path_release(&dst);
    return rc;
}

const struct cli_command cmd_scp = {
    .name = "scp",
    .usage = "[-r] [[USER@]NAME:]SRC [[USER@]NAME:]DEST",
    .summary = "Copy files between machines and this computer (SFTP)",
    .opts = scp_opts,
    .n_opts = sizeof scp_opts / sizeof scp_opts[0],
    .flags = CMD_NEEDS_STORE,
    .run = scp_run,
};
