/* `machine env` output for each shell (pure). */
#ifndef MACHINE_CLI_SHELLENV_H
#define MACHINE_CLI_SHELLENV_H

#include <stdbool.h>
#include <stddef.h>

#include "cleanup.h"

struct merr;

enum shell_kind { SHELL_POSIX, SHELL_FISH, SHELL_POWERSHELL, SHELL_CMD, SHELL_TCSH, SHELL_EMACS };

struct env_var {
    const char *name;
    const char *value;
};

/* "bash", "zsh", "sh" → POSIX; "fish", "powershell"/"pwsh", "cmd", "tcsh"/"csh", "emacs". */
int shell_from_name(const char *name, enum shell_kind *out, struct merr *err) MUST_CHECK;
/* From $SHELL (a path); POSIX when unknown or unset. */
enum shell_kind shell_detect(const char *shell_env);

/* Renders set (or unset) lines for vars, then the usage hint for `hint_cmd` (e.g.
 * "machine env h1"), as comments in the shell's syntax. */
char *shellenv_render(enum shell_kind shell, const struct env_var *vars, size_t n, bool unset,
                      const char *hint_cmd);

#endif
