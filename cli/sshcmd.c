#include "sshcmd.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "machine.h"

/* OpenSSH's options that take an argument (ssh.c's getopt string). */
#define SSH_ARG_OPTS "BbcDEeFIiJLlmOoPpQRSWw"
#define SSH_FLAG_OPTS "1246AaCfGgKkMNnqsTtVvXxYy"

size_t ssh_option_words(char *const *words)
{
    size_t i = 0;
    while (words[i] != NULL && words[i][0] == '-' && words[i][1] != '\0' &&
           strcmp(words[i], "--") != 0) {
        const char *w = words[i] + 1;
        bool needs_next = false, ok = true;
        for (size_t k = 0; w[k] != '\0'; k++) {
            if (strchr(SSH_ARG_OPTS, w[k]) != NULL) {
                needs_next = w[k + 1] == '\0'; /* -L8080:... carries its value */
                break;
            }
            if (strchr(SSH_FLAG_OPTS, w[k]) == NULL) {
                ok = false;
                break;
            }
        }
        if (!ok || (needs_next && words[i + 1] == NULL))
            break;
        i += needs_next ? 2 : 1;
    }
    return i;
}

size_t ssh_argv_destination(char *const *ssh_argv)
{
    size_t i = 1;
    while (ssh_argv[i] != NULL && ssh_argv[i][0] == '-' && ssh_argv[i + 1] != NULL)
        i += 2;
    return i;
}

char **ssh_argv_with_options(char *const *ssh_argv, char *const *extra, size_t n_extra)
{
    size_t dest = ssh_argv_destination(ssh_argv);
    char **out = xcalloc(1, sizeof *out);
    for (size_t i = 0; i < dest; i++)
        out = strv_push(out, ssh_argv[i]);
    for (size_t i = 0; i < n_extra; i++)
        out = strv_push(out, extra[i]);
    for (size_t i = dest; ssh_argv[i] != NULL; i++)
        out = strv_push(out, ssh_argv[i]);
    return out;
}

char *rsync_rsh(char *const *ssh_argv)
{
    size_t dest = ssh_argv_destination(ssh_argv);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        abort();
    for (size_t i = 0; i < dest; i++) {
        fputs(i > 0 ? " '" : "'", f);
        for (const char *p = ssh_argv[i]; *p != '\0'; p++)
            fputs(*p == '\'' ? "'\\''" : (char[]){ *p, '\0' }, f);
        fputc('\'', f);
    }
    fclose(f);
    return buf;
}

/* An -o value for sshfs, whose option parser (libfuse) splits on commas: ',' and '\\' escaped. */
static char *fuse_opt_escape(const char *v)
{
    char *out = xcalloc(2 * strlen(v) + 1, 1);
    char *w = out;
    for (; *v != '\0'; v++) {
        if (*v == ',' || *v == '\\')
            *w++ = '\\';
        *w++ = *v;
    }
    return out;
}

char *remote_spec(const char *user, const char *host, const char *path)
{
    return xasprintf(strchr(host, ':') != NULL ? "%s@[%s]:%s" : "%s@%s:%s", user, host, path);
}

char **sshfs_argv(char *const *ssh_argv, const char *source, const char *mountpoint)
{
    size_t dest = ssh_argv_destination(ssh_argv);
    char **out = xcalloc(1, sizeof *out);
    out = strv_push(out, "sshfs");
    out = strv_push(out, source);
    out = strv_push(out, mountpoint);
    for (size_t i = 1; i + 1 <= dest && ssh_argv[i] != NULL; i += 2) {
        if (strcmp(ssh_argv[i], "-i") == 0) {
            auto_free char *o = xasprintf("IdentityFile=%s", ssh_argv[i + 1]);
            auto_free char *e = fuse_opt_escape(o);
            out = strv_push(strv_push(out, "-o"), e);
        } else if (strcmp(ssh_argv[i], "-o") == 0) {
            auto_free char *e = fuse_opt_escape(ssh_argv[i + 1]);
            out = strv_push(strv_push(out, "-o"), e);
        } else if (strcmp(ssh_argv[i], "-p") == 0) {
            out = strv_push(strv_push(out, "-p"), ssh_argv[i + 1]);
        }
    }
    return out;
}
