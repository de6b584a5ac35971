/* Command-line option parsing (pure): options declared as data, values collected per option. */
#ifndef MACHINE_CLI_ARGS_H
#define MACHINE_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#include "cleanup.h"

struct merr;

enum opt_type { OPT_BOOL, OPT_STRING, OPT_INT, OPT_LIST };

struct opt_spec {
    const char *name; /* long name without dashes */
    char short_name;  /* 0 if none */
    enum opt_type type;
    const char *help;
    const char *def; /* shown in help; applied by args_get_* */
    const char *env; /* shown in help */
};

struct parsed_args {
    const struct opt_spec *specs;
    size_t n_specs;
    char ***values;   /* per spec: NULL-terminated values (bools: "true"/"false") */
    char **positional; /* NULL-terminated */
    bool help;
};

/* Parses argv (argv[0] is NOT skipped: pass the arguments after the command name).
 * Accepts --name value, --name=value, -s value, -svalue, bool flags alone or --name=false,
 * grouped short bools (-fy), "--" ends options. With stop_at_positional, everything from the
 * first positional argument on is positional. --help/-h sets help. */
int args_parse(const struct opt_spec *specs, size_t n_specs, int argc, char *const *argv,
               bool stop_at_positional, struct parsed_args *out, struct merr *err) MUST_CHECK;
void args_release(struct parsed_args *a);

/* Values given for an option (NULL when none). */
char *const *args_values(const struct parsed_args *a, const char *name);
/* Last value given, else the spec's default, else NULL. */
const char *args_get(const struct parsed_args *a, const char *name);
bool args_get_bool(const struct parsed_args *a, const char *name);
/* MERR_INVALID when not an integer. */
int args_get_int(const struct parsed_args *a, const char *name, long *out, struct merr *err) MUST_CHECK;
size_t args_npositional(const struct parsed_args *a);

/* Appends a help block for specs to a malloc'd string. */
char *args_help(const struct opt_spec *specs, size_t n_specs);

#endif
