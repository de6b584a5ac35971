#include "args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fsutil.h"
#include "machine.h"

static const struct opt_spec *find_long(const struct opt_spec *specs, size_t n, const char *name,
                                        size_t len, size_t *idx)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(specs[i].name) == len && strncmp(specs[i].name, name, len) == 0) {
            *idx = i;
            return &specs[i];
        }
    return NULL;
}

static const struct opt_spec *find_short(const struct opt_spec *specs, size_t n, char c, size_t *idx)
{
    for (size_t i = 0; i < n; i++)
        if (specs[i].short_name != 0 && specs[i].short_name == c) {
            *idx = i;
            return &specs[i];
        }
    return NULL;
}

static void add_value(struct parsed_args *a, size_t idx, const char *v)
{
    a->values[idx] = strv_push(a->values[idx], v);
}

void args_release(struct parsed_args *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; a->values != NULL && i < a->n_specs; i++)
        strv_free(a->values[i]);
    free(a->values);
    strv_free(a->positional);
    memset(a, 0, sizeof *a);
}

static int check_bool(const struct opt_spec *s, const char *v, struct merr *err)
{
    if (strcmp(v, "true") == 0 || strcmp(v, "false") == 0 || strcmp(v, "1") == 0 ||
        strcmp(v, "0") == 0)
        return 0;
    return merr_set(err, MERR_INVALID, 0, "invalid value '%s' for --%s: expected true or false", v,
                    s->name);
}

static int parse_long(struct parsed_args *a, int argc, char *const *argv, int *i, struct merr *err)
{
    const char *arg = argv[*i] + 2;
    const char *eq = strchr(arg, '=');
    size_t len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
    if (len == 4 && strncmp(arg, "help", 4) == 0 && eq == NULL) {
        a->help = true;
        return 0;
    }
    size_t idx = 0;
    const struct opt_spec *s = find_long(a->specs, a->n_specs, arg, len, &idx);
    if (s == NULL)
        return merr_set(err, MERR_INVALID, 0, "unknown flag '--%.*s'", (int)len, arg);
    if (s->type == OPT_BOOL) {
        const char *v = eq != NULL ? eq + 1 : "true";
        if (check_bool(s, v, err) < 0)
            return -1;
        add_value(a, idx, strcmp(v, "1") == 0 || strcmp(v, "true") == 0 ? "true" : "false");
        return 0;
    }
    if (eq != NULL) {
        add_value(a, idx, eq + 1);
        return 0;
    }
    if (*i + 1 >= argc)
        return merr_set(err, MERR_INVALID, 0, "flag '--%s' needs a value", s->name);
    add_value(a, idx, argv[++*i]);
    return 0;
}

static int parse_short(struct parsed_args *a, int argc, char *const *argv, int *i, struct merr *err)
{
    const char *arg = argv[*i] + 1;
    for (size_t k = 0; arg[k] != '\0'; k++) {
        if (arg[k] == 'h') {
            size_t ignored;
            if (find_short(a->specs, a->n_specs, 'h', &ignored) == NULL) {
                a->help = true;
                continue;
            }
        }
        size_t idx = 0;
        const struct opt_spec *s = find_short(a->specs, a->n_specs, arg[k], &idx);
        if (s == NULL)
            return merr_set(err, MERR_INVALID, 0, "unknown flag '-%c'", arg[k]);
        if (s->type == OPT_BOOL) {
            add_value(a, idx, "true");
            continue;
        }
        if (arg[k + 1] != '\0') {
            add_value(a, idx, arg + k + 1 + (arg[k + 1] == '=' ? 1 : 0));
            return 0;
        }
        if (*i + 1 >= argc)
            return merr_set(err, MERR_INVALID, 0, "flag '-%c' needs a value", arg[k]);
        add_value(a, idx, argv[++*i]);
        return 0;
    }
    return 0;
}

int args_parse(const struct opt_spec *specs, size_t n_specs, int argc, char *const *argv,
               bool stop_at_positional, struct parsed_args *out, struct merr *err)
{
    memset(out, 0, sizeof *out);
    out->specs = specs;
    out->n_specs = n_specs;
    out->values = xcalloc(n_specs + 1, sizeof *out->values);
    out->positional = xcalloc(1, sizeof *out->positional);
    bool options_done = false;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (options_done || arg[0] != '-' || arg[1] == '\0') {
            out->positional = strv_push(out->positional, arg);
            if (stop_at_positional)
                options_done = true;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            options_done = true;
            continue;
        }
        int rc = arg[1] == '-' ? parse_long(out, argc, argv, &i, err)
                               : parse_short(out, argc, argv, &i, err);
        if (rc < 0) {
            args_release(out);
            return -1;
        }
    }
    return 0;
}

static const struct opt_spec *spec_named(const struct parsed_args *a, const char *name, size_t *idx)
{
    return find_long(a->specs, a->n_specs, name, strlen(name), idx);
}

char *const *args_values(const struct parsed_args *a, const char *name)
{
    size_t idx = 0;
    if (spec_named(a, name, &idx) == NULL)
        return NULL;
    return a->values[idx];
}

const char *args_get(const struct parsed_args *a, const char *name)
{
    size_t idx = 0;
    const struct opt_spec *s = spec_named(a, name, &idx);
    if (s == NULL)
        return NULL;
    size_t n = strv_len(a->values[idx]);
    return n > 0 ? a->values[idx][n - 1] : s->def;
}

bool args_get_bool(const struct parsed_args *a, const char *name)
{
    const char *v = args_get(a, name);
    return v != NULL && strcmp(v, "true") == 0;
}

int args_get_int(const struct parsed_args *a, const char *name, long *out, struct merr *err)
{
    const char *v = args_get(a, name);
    if (v == NULL)
        return merr_set(err, MERR_INVALID, 0, "flag '--%s' needs a value", name);
    char *end = NULL;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0')
        return merr_set(err, MERR_INVALID, 0, "invalid value '%s' for --%s: not a number", v, name);
    *out = n;
    return 0;
}

size_t args_npositional(const struct parsed_args *a)
{
    return strv_len(a->positional);
}

char *args_help(const struct opt_spec *specs, size_t n_specs)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        abort();
    for (size_t i = 0; i < n_specs; i++) {
        const struct opt_spec *s = &specs[i];
        char left[96];
        const char *arg = s->type == OPT_BOOL ? "" : s->type == OPT_INT ? " N" : " VALUE";
        if (s->short_name != 0)
            snprintf(left, sizeof left, "-%c, --%s%s", s->short_name, s->name, arg);
        else
            snprintf(left, sizeof left, "    --%s%s", s->name, arg);
        fprintf(f, "  %-36s %s", left, s->help != NULL ? s->help : "");
        if (s->def != NULL && s->def[0] != '\0')
            fprintf(f, " (default %s)", s->def);
        if (s->type == OPT_LIST)
            fprintf(f, " [repeatable]");
        if (s->env != NULL)
            fprintf(f, " [$%s]", s->env);
        fputc('\n', f);
    }
    fclose(f);
    return buf;
}
