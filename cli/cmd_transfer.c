/* machine export / machine import: one machine as a tar, to move it between computers
 * (core/transfer.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "error.h"
#include "fsutil.h"
#include "transfer.h"

static const struct opt_spec export_opts[] = {
    { "output", 'o', OPT_STRING, "write to this file (mode 0600) instead of standard output", NULL,
      NULL },
};

static const struct opt_spec import_opts[] = {
    { "name", 0, OPT_STRING, "import under this name instead of the exported one", NULL, NULL },
};

static int write_stream(void *opaque, const void *buf, size_t len, struct merr *err)
{
    if (fwrite(buf, 1, len, opaque) != len)
        return merr_set(err, MERR_IO, errno, "cannot write the archive");
    return 0;
}

static int write_fd(void *opaque, const void *buf, size_t len, struct merr *err)
{
    if (fs_write_all(*(int *)opaque, buf, len) < 0)
        return merr_set(err, MERR_IO, errno, "cannot write the archive");
    return 0;
}

/* -o FILE: written beside it and renamed when complete, so a failed export leaves no tar. */
static int export_to_file(struct cli *cli, const char *name, const char *path, struct merr *err)
{
    auto_free char *tmp = xasprintf("%s.tmp-%d", path, (int)getpid());
    auto_close int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return merr_set(err, MERR_IO, errno, "cannot create '%s'", tmp);
    if (machine_export(&cli->ctx, name, write_fd, &fd, err) < 0 || fsync(fd) < 0 ||
        rename(tmp, path) < 0) {
        if (err->code == MERR_OK)
            merr_set(err, MERR_IO, errno, "cannot write '%s'", path);
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int export_run(struct cli *cli, struct parsed_args *a, struct merr *err)
{
    if (args_npositional(a) != 1)
        return merr_set(err, MERR_INVALID, 0, "export takes one machine name");
    const char *name = a->positional[0];
    const char *out = args_get(a, "output");
    if (out != NULL)
        return export_to_file(cli, name, out, err);
    if (isatty(fileno(cli->out)))
        return merr_set(err, MERR_INVALID, 0,
                        "refusing to write an archive to a terminal: redirect it (machine export "
                        "%s > %s.tar) or give -o FILE", name, name);
    if (machine_export(&cli->ctx, name, write_stream, cli->out, err) < 0)
        return -1;
    if (fflush(cli->out) != 0)
        return merr_set(err, MERR_IO, errno, "cannot write the archive");
    return 0;
}

static int import_run(struct cli *cli, struct parsed_args *a, struct merr *err)
{
    if (args_npositional(a) != 1)
        return merr_set(err, MERR_INVALID, 0, "import takes one archive (- for standard input)");
    const char *path = a->positional[0];
    auto_close int fd = strcmp(path, "-") == 0 ? dup(STDIN_FILENO)
                                               : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return merr_set(err, errno == ENOENT ? MERR_NOT_FOUND : MERR_IO, errno,
                        "cannot open '%s'", path);
    auto_free char *name = NULL;
    if (machine_import(&cli->ctx, fd, args_get(a, "name"), &name, err) < 0)
        return -1;
    fprintf(cli->out, "Imported %s\n", name);
    return 0;
}

const struct cli_command cmd_export = {
    .name = "export",
    .usage = "[-o FILE] NAME",
    .summary = "Write a machine (config, certificates, SSH key, known_hosts; no credentials) as a tar",
    .opts = export_opts,
    .n_opts = sizeof export_opts / sizeof export_opts[0],
    .flags = CMD_NEEDS_STORE,
    .run = export_run,
};

const struct cli_command cmd_import = {
    .name = "import",
    .usage = "[--name NEW] FILE",
    .summary = "Add a machine from a tar written by 'machine export'",
    .opts = import_opts,
    .n_opts = sizeof import_opts / sizeof import_opts[0],
    .flags = CMD_NEEDS_STORE,
    .run = import_run,
};
