/* machine ssh / machine scp, over the built-in client (host key pinned) or the system ssh. */
#include <errno.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "engine.h"
#include "error.h"
#include "fsutil.h"
#include "lifecycle.h"
#include "machine.h"
#include "scppath.h"
#include "ssh.h"
#include "sshcmd.h"

extern char **environ;

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

/* Runs argv (searched in PATH) and waits: its exit status, or -1 (MERR_NOT_FOUND when the
 * program is not installed: hint names the package). */
static int run_program(char *const *argv, const char *hint, struct merr *err)
{
    fflush(NULL);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
    if (rc != 0)
        return merr_set(err, rc == ENOENT ? MERR_NOT_FOUND : MERR_IO, rc, "cannot run '%s'%s%s",
                        argv[0], rc == ENOENT && hint != NULL ? ": " : "",
                        rc == ENOENT && hint != NULL ? hint : "");
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return merr_set(err, MERR_IO, errno, "cannot wait for '%s'", argv[0]);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The system ssh with machine's options (pinned known_hosts, key, port), then the user's own
 * ssh options (opts), then the destination and the command. */
static int exec_external(struct cli *cli, const struct machine *m, char *const *opts, size_t n_opts,
                         char *const *cmd, struct merr *err)
{
    struct machine_ssh ms;
    if (machine_ssh_init(&cli->ctx, m, &ms, err) < 0)
        return -1;
    auto_strv char **base = ssh_external_argv(&ms.target, isatty(STDIN_FILENO) && cmd[0] == NULL,
                                              cmd, err);
    machine_ssh_release(&ms);
    if (base == NULL)
        return -1;
    auto_strv char **argv = ssh_argv_with_options(base, opts, n_opts);
    fflush(NULL);
    execvp(argv[0], argv);
    return merr_set(err, MERR_IO, errno, "cannot run '%s'", argv[0]);
}

static int ssh_run(struct cli *cli, struct parsed_args *a, struct merr *err)
{
    const char *name = cli_machine_arg(a, 0);
    char *const *cmd = a->positional + (args_npositional(a) > 0 ? 1 : 0);
    /* ssh options before the command (machine ssh NAME -L 8080:localhost:80 -N) go to the
     * system ssh, as docker-machine passes them */
    char *const *opts = cmd;
    size_t n_opts = ssh_option_words(cmd);
    cmd += n_opts;
    if (cmd[0] != NULL && strcmp(cmd[0], "--") == 0)
        cmd++;
    auto_machine struct machine *m = cli_load_machine(cli, name, err);
    if (m == NULL || require_ssh_ready(m, err) < 0)
        return -1;
    struct merr renew = MERR_INIT;
    if (cli_renew_certs_if_needed(&cli->ctx, m, cli->err, &renew) < 0)
        fprintf(cli->err, "warning: %s\n", renew.msg);
    if (cli->ctx.external_ssh || n_opts > 0)
        return exec_external(cli, m, opts, n_opts, cmd, err);
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
    .usage = "[NAME] [SSH-OPTIONS] [--] [COMMAND...]",
    .summary = "Log into a machine or run a command on it over SSH (ssh options before the "
               "command, such as -L 8080:localhost:80, go to the system ssh)",
    .flags = CMD_NEEDS_STORE | CMD_STOP_AT_POSITIONAL,
    .run = ssh_run,
};

static const struct opt_spec scp_opts[] = {
    { "recursive", 'r', OPT_BOOL, "copy directories recursively", NULL, NULL },
    { "quiet", 'q', OPT_BOOL, "print nothing on success", NULL, NULL },
    { "delta", 'd', OPT_BOOL,
      "copy only what differs, with rsync over the system ssh (rsync needed on both ends)", NULL,
      NULL },
};

/* The system ssh argv for a machine (user overridden when given) and the remote spec of path. */
static char **machine_ssh_argv(struct cli *cli, const char *name, const char *user,
                               const char *path, char **remote, struct merr *err)
{
    auto_machine struct machine *m = cli_load_machine(cli, name, err);
    if (m == NULL || require_ssh_ready(m, err) < 0)
        return NULL;
    struct machine_ssh ms;
    if (machine_ssh_init(&cli->ctx, m, &ms, err) < 0)
        return NULL;
    if (user != NULL)
        ms.target.user = user;
    char **argv = ssh_external_argv(&ms.target, false, NULL, err);
    if (argv != NULL)
        *remote = remote_spec(ms.target.user, ms.target.host, path);
    machine_ssh_release(&ms);
    return argv;
}

/* scp -d: rsync -e "<machine's ssh>" between this computer and one machine. */
static int scp_rsync(struct cli *cli, const struct scp_path *src, const struct scp_path *dst,
                     bool recursive, bool quiet, struct merr *err)
{
    if (src->machine != NULL && dst->machine != NULL)
        return merr_set(err, MERR_UNSUPPORTED, 0,
                        "scp -d copies between this computer and one machine, not machine to machine");
    const struct scp_path *r = src->machine != NULL ? src : dst;
    auto_free char *remote = NULL;
    auto_strv char **ssh_argv = machine_ssh_argv(cli, r->machine, r->user, r->path, &remote, err);
    if (ssh_argv == NULL)
        return -1;
    auto_machine struct machine *m = cli_load_machine(cli, r->machine, err);
    if (m == NULL)
        return -1;
    struct merr probe = MERR_INIT;
    auto_free char *where = machine_ssh_output(&cli->ctx, m, "command -v rsync", &probe);
    if (where == NULL || where[0] == '\0')
        return merr_set(err, MERR_NOT_FOUND, 0,
                        "scp -d needs rsync on machine '%s' too (install it there, or copy "
                        "without -d)", m->name);
    auto_free char *rsh = rsync_rsh(ssh_argv);
    char *argv[] = { "rsync",  recursive ? "-a" : "-lptgoD", quiet ? "-q" : "-v", "-e", rsh, "--",
                     src->machine != NULL ? remote : src->path,
                     dst->machine != NULL ? remote : dst->path, NULL };
    int rc = run_program(argv, "scp -d needs rsync on this computer (apt install rsync)", err);
    if (rc > 0)
        return merr_set(err, MERR_REMOTE, 0, "rsync failed (exit status %d)", rc);
    return rc;
}

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
    } else if (args_get_bool(a, "delta")) {
        rc = scp_rsync(cli, &src, &dst, recursive, args_get_bool(a, "quiet"), err);
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
    .usage = "[-r] [-d] [[USER@]NAME:]SRC [[USER@]NAME:]DEST",
    .summary = "Copy files between machines and this computer (SFTP; rsync with -d)",
    .opts = scp_opts,
    .n_opts = sizeof scp_opts / sizeof scp_opts[0],
    .flags = CMD_NEEDS_STORE,
    .run = scp_run,
};

static const struct opt_spec mount_opts[] = {
    { "unmount", 'u', OPT_BOOL, "unmount MOUNTPOINT instead", NULL, NULL },
};

/* machine mount NAME:PATH MOUNTPOINT: sshfs over the machine's SFTP server, with machine's key
 * and pinned known_hosts; -u: fusermount -u. */
static int mount_run(struct cli *cli, struct parsed_args *a, struct merr *err)
{
    if (args_npositional(a) != 2)
        return merr_set(err, MERR_INVALID, 0, "mount takes [USER@]NAME:PATH and a mount point");
    struct scp_path src;
    if (scp_path_parse(a->positional[0], &src, err) < 0)
        return -1;
    const char *mountpoint = a->positional[1];
    int rc = -1;
    if (src.machine == NULL) {
        merr_set(err, MERR_INVALID, 0, "'%s' is not a machine path (NAME:PATH)", a->positional[0]);
    } else if (args_get_bool(a, "unmount")) {
        char *argv[] = { "fusermount", "-u", (char *)mountpoint, NULL };
        rc = run_program(argv, "install fuse3", err);
        if (rc > 0)
            rc = merr_set(err, MERR_IO, 0, "cannot unmount '%s' (fusermount exit status %d)",
                          mountpoint, rc);
    } else {
        auto_free char *remote = NULL;
        auto_strv char **ssh_argv =
            machine_ssh_argv(cli, src.machine, src.user, src.path, &remote, err);
        if (ssh_argv != NULL) {
            auto_strv char **argv = sshfs_argv(ssh_argv, remote, mountpoint);
            rc = run_program(argv, "machine mount needs sshfs (apt install sshfs)", err);
            if (rc > 0)
                rc = merr_set(err, MERR_REMOTE, 0, "sshfs failed (exit status %d)", rc);
        }
    }
    scp_path_release(&src);
    return rc;
}

const struct cli_command cmd_mount = {
    .name = "mount",
    .usage = "[-u] [USER@]NAME:PATH MOUNTPOINT",
    .summary = "Mount (or with -u unmount) a machine's directory here with sshfs",
    .opts = mount_opts,
    .n_opts = sizeof mount_opts / sizeof mount_opts[0],
    .flags = CMD_NEEDS_STORE,
    .run = mount_run,
};
