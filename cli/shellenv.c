#include "shellenv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

int shell_from_name(const char *name, enum shell_kind *out, struct merr *err)
{
    static const struct {
        const char *name;
        enum shell_kind kind;
    } shells[] = {
        { "bash", SHELL_POSIX }, { "zsh", SHELL_POSIX },   { "sh", SHELL_POSIX },
        { "dash", SHELL_POSIX }, { "ksh", SHELL_POSIX },   { "fish", SHELL_FISH },
        { "powershell", SHELL_POWERSHELL },                { "pwsh", SHELL_POWERSHELL },
        { "cmd", SHELL_CMD },    { "tcsh", SHELL_TCSH },   { "csh", SHELL_TCSH },
        { "emacs", SHELL_EMACS },
    };
    for (size_t i = 0; i < sizeof shells / sizeof shells[0]; i++)
        if (strcmp(name, shells[i].name) == 0) {
            *out = shells[i].kind;
            return 0;
        }
    return merr_set(err, MERR_INVALID, 0,
                    "unknown shell '%s' (use bash, zsh, fish, powershell, cmd, tcsh or emacs)", name);
}

enum shell_kind shell_detect(const char *shell_env)
{
    if (shell_env == NULL || shell_env[0] == '\0')
        return SHELL_POSIX;
    const char *base = strrchr(shell_env, '/');
    base = base != NULL ? base + 1 : shell_env;
    enum shell_kind k = SHELL_POSIX;
    struct merr ignored;
    if (shell_from_name(base, &k, &ignored) < 0)
        return SHELL_POSIX;
    return k;
}

/* Double-quoted value with the characters each shell would interpret escaped. */
static void put_quoted(FILE *f, const char *v, const char *specials, char esc)
{
    fputc('"', f);
    for (; *v != '\0'; v++) {
        if (strchr(specials, *v) != NULL)
            fputc(esc, f);
        fputc(*v, f);
    }
    fputc('"', f);
}

static void put_set(FILE *f, enum shell_kind shell, const struct env_var *v)
{
    switch (shell) {
    case SHELL_POSIX:
        fprintf(f, "export %s=", v->name);
        put_quoted(f, v->value, "\"\\$`", '\\');
        fputc('\n', f);
        break;
    case SHELL_FISH:
        fprintf(f, "set -gx %s ", v->name);
        put_quoted(f, v->value, "\"\\$", '\\');
        fputs(";\n", f);
        break;
    case SHELL_POWERSHELL:
        fprintf(f, "$Env:%s = ", v->name);
        put_quoted(f, v->value, "\"`$", '`');
        fputc('\n', f);
        break;
    case SHELL_CMD:
        fprintf(f, "SET %s=%s\n", v->name, v->value);
        break;
    case SHELL_TCSH:
        fprintf(f, "setenv %s ", v->name);
        put_quoted(f, v->value, "\"\\$`", '\\');
        fputs(";\n", f);
        break;
    case SHELL_EMACS:
        fprintf(f, "(setenv \"%s\" ", v->name);
        put_quoted(f, v->value, "\"\\", '\\');
        fputs(")\n", f);
        break;
    }
}

static void put_unset(FILE *f, enum shell_kind shell, const char *name)
{
    switch (shell) {
    case SHELL_POSIX:
        fprintf(f, "unset %s\n", name);
        break;
    case SHELL_FISH:
        fprintf(f, "set -e %s;\n", name);
        break;
    case SHELL_POWERSHELL:
        fprintf(f, "Remove-Item Env:\\\\%s\n", name);
        break;
    case SHELL_CMD:
        fprintf(f, "SET %s=\n", name);
        break;
    case SHELL_TCSH:
        fprintf(f, "unsetenv %s;\n", name);
        break;
    case SHELL_EMACS:
        fprintf(f, "(setenv \"%s\" nil)\n", name);
        break;
    }
}

static void put_hint(FILE *f, enum shell_kind shell, const char *cmd)
{
    switch (shell) {
    case SHELL_POSIX:
        fprintf(f, "# Run this command to configure your shell:\n# eval $(%s)\n", cmd);
        break;
    case SHELL_FISH:
        fprintf(f, "# Run this command to configure your shell:\n# eval (%s)\n", cmd);
        break;
    case SHELL_POWERSHELL:
        fprintf(f, "# Run this command to configure your shell:\n# & %s | Invoke-Expression\n", cmd);
        break;
    case SHELL_CMD:
        fprintf(f, "REM Run this command to configure your shell:\n"
                   "REM \t@FOR /f \"tokens=*\" %%i IN ('%s') DO @%%i\n", cmd);
        break;
    case SHELL_TCSH:
        fprintf(f, "# Run this command to configure your shell:\n# eval `%s`\n", cmd);
        break;
    case SHELL_EMACS:
        fprintf(f, ";; Run this command to configure your shell:\n;; (with-temp-buffer "
                   "(shell-command \"%s\" (current-buffer)) (eval-buffer))\n", cmd);
        break;
    }
}

char *shellenv_render(enum shell_kind shell, const struct env_var *vars, size_t n, bool unset,
                      const char *hint_cmd)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        abort();
    for (size_t i = 0; i < n; i++) {
        if (unset)
            put_unset(f, shell, vars[i].name);
        else
            put_set(f, shell, &vars[i]);
    }
    if (hint_cmd != NULL)
        put_hint(f, shell, hint_cmd);
    fclose(f);
    return buf;
}
