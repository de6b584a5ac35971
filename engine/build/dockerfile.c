/* The Dockerfile parser: parser directives, comments, line continuations, keywords, leading
 * --flags and each instruction's argument grammar, with the rules of BuildKit's parser (which
 * the classic builder shares): a continuation line is joined without its escape character,
 * comment and empty lines inside a continuation are dropped, JSON that does not parse is the
 * shell form. Pure: it takes a buffer. */
#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build/dockerfile.h"
#include "error.h"
#include "fsutil.h"
#include "strv.h"

#define DF_MAX_SIZE (4u << 20)
#define DF_MAX_INSTRUCTIONS 10000

static const char *const known_cmds[] = {
    "add",   "arg",    "cmd",        "copy",  "entrypoint", "env",     "expose",
    "from",  "healthcheck", "label", "maintainer", "onbuild", "run",  "shell",
    "stopsignal", "user", "volume",  "workdir", NULL,
};

static bool is_known(const char *cmd)
{
    for (size_t i = 0; known_cmds[i] != NULL; i++)
        if (strcmp(cmd, known_cmds[i]) == 0)
            return true;
    return false;
}

static char **strv_add(char **v, size_t *n, char *s)
{
    char **nv = realloc(v, (*n + 2) * sizeof *nv);
    if (nv == NULL)
        abort();
    nv[(*n)++] = s;
    nv[*n] = NULL;
    return nv;
}

static char *strndup_trim(const char *s, size_t len)
{
    while (len > 0 && isspace((unsigned char)*s)) {
        s++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    char *out = malloc(len + 1);
    if (out == NULL)
        abort();
    memcpy(out, s, len);
    out[len] = '\0';
    return out;
}

void df_instr_free(struct df_instr *i)
{
    if (i == NULL)
        return;
    df_instr_free(i->sub);
    free(i->sub);
    free(i->cmd);
    free(i->original);
    free(i->rest);
    strv_free(i->flags);
    strv_free(i->args);
}

void df_file_free(struct df_file *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->n; i++)
        df_instr_free(&f->v[i]);
    free(f->v);
    free(f->syntax);
    free(f);
}

/* Splits on whitespace outside quotes; quotes and escapes stay (BuildKit's parseWords). */
static char **parse_words(const char *s, char escape)
{
    char **v = NULL;
    size_t n = 0, len = strlen(s);
    auto_free char *word = malloc(len + 1);
    size_t wl = 0;
    char quote = 0;
    bool escaped = false, in_word = false;
    if (word == NULL)
        abort();
    for (size_t i = 0; i <= len; i++) {
        char c = s[i];
        if (c == '\0' || (!quote && !escaped && isspace((unsigned char)c))) {
            if (in_word) {
                word[wl] = '\0';
                v = strv_add(v, &n, xstrdup(word));
            }
            wl = 0;
            in_word = false;
            continue;
        }
        in_word = true;
        word[wl++] = c;
        if (escaped) {
            escaped = false;
        } else if (c == escape && quote != '\'') {
            escaped = true;
        } else if (quote && c == quote) {
            quote = 0;
        } else if (!quote && (c == '"' || c == '\'')) {
            quote = c;
        }
    }
    return v != NULL ? v : calloc(1, sizeof *v);
}

static char **split_whitespace(const char *s)
{
    char **v = NULL;
    size_t n = 0;
    while (*s != '\0') {
        while (isspace((unsigned char)*s))
            s++;
        const char *start = s;
        while (*s != '\0' && !isspace((unsigned char)*s))
            s++;
        if (s > start)
            v = strv_add(v, &n, strndup_trim(start, (size_t)(s - start)));
    }
    return v != NULL ? v : calloc(1, sizeof *v);
}

/* A JSON array of strings → args; false when text is not one (then it is the shell form). */
static bool parse_json_array(const char *text, char ***out)
{
    if (text[0] != '[')
        return false;
    json_error_t jerr;
    json_t *a = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (!json_is_array(a)) {
        json_decref(a);
        return false;
    }
    char **v = NULL;
    size_t n = 0, i;
    json_t *e;
    json_array_foreach(a, i, e)
    {
        if (!json_is_string(e)) {
            json_decref(a);
            strv_free(v);
            return false;
        }
        v = strv_add(v, &n, xstrdup(json_string_value(e)));
    }
    json_decref(a);
    *out = v != NULL ? v : calloc(1, sizeof *v);
    return true;
}

/* Leading "--name[=value]" words; *rest_out points after them. */
static char **extract_flags(const char *s, const char **rest_out)
{
    char **v = NULL;
    size_t n = 0;
    for (;;) {
        while (isspace((unsigned char)*s))
            s++;
        if (strncmp(s, "--", 2) != 0)
            break;
        const char *start = s;
        while (*s != '\0' && !isspace((unsigned char)*s))
            s++;
        if (s - start == 2) /* a bare "--" ends the flags */
            break;
        v = strv_add(v, &n, strndup_trim(start, (size_t)(s - start)));
    }
    *rest_out = s;
    return v != NULL ? v : calloc(1, sizeof *v);
}

__attribute__((format(printf, 3, 4))) static int fail(struct merr *err, size_t line,
                                                      const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return merr_set(err, MERR_INVALID, 0, "dockerfile parse error on line %zu: %s", line, msg);
}

static bool has_heredoc(const char *rest)
{
    for (const char *p = strstr(rest, "<<"); p != NULL; p = strstr(p + 2, "<<")) {
        const char *q = p + 2;
        if (*q == '-')
            q++;
        if (*q == '"' || *q == '\'')
            q++;
        if (isalpha((unsigned char)*q) || *q == '_')
            return true;
    }
    return false;
}

static int parse_args(struct df_instr *in, char escape, struct merr *err);

static int parse_name_val(struct df_instr *in, char escape, struct merr *err)
{
    char **words = parse_words(in->rest, escape);
    char **v = NULL;
    size_t n = 0;
    int rc = 0;
    if (words[0] == NULL) {
        rc = fail(err, in->line, "%s requires at least one argument", in->original);
    } else if (strchr(words[0], '=') == NULL) {
        /* the old form: KEY name value */
        const char *p = in->rest;
        while (*p != '\0' && !isspace((unsigned char)*p))
            p++;
        if (*p == '\0')
            rc = fail(err, in->line, "%s must have two arguments", in->cmd);
        else {
            v = strv_add(v, &n, strndup_trim(in->rest, (size_t)(p - in->rest)));
            v = strv_add(v, &n, strndup_trim(p, strlen(p)));
        }
    } else {
        for (size_t i = 0; rc == 0 && words[i] != NULL; i++) {
            char *eq = strchr(words[i], '=');
            if (eq == NULL) {
                rc = fail(err, in->line,
                          "Syntax error - can't find = in \"%s\". Must be of the form: name=value",
                          words[i]);
                break;
            }
            v = strv_add(v, &n, strndup_trim(words[i], (size_t)(eq - words[i])));
            v = strv_add(v, &n, xstrdup(eq + 1));
        }
    }
    strv_free(words);
    if (rc < 0) {
        strv_free(v);
        return -1;
    }
    in->args = v;
    return 0;
}

static int parse_healthcheck(struct df_instr *in, struct merr *err)
{
    const char *p = in->rest;
    const char *start = p;
    while (*p != '\0' && !isspace((unsigned char)*p))
        p++;
    size_t n = 0;
    char *kind = strndup_trim(start, (size_t)(p - start));
    for (char *c = kind; *c; c++)
        *c = (char)toupper((unsigned char)*c);
    if (strcmp(kind, "NONE") == 0) {
        in->args = strv_add(NULL, &n, kind);
        return *p != '\0' && p[strspn(p, " \t")] != '\0'
                   ? fail(err, in->line, "%s", "HEALTHCHECK NONE takes no arguments")
                   : 0;
    }
    if (strcmp(kind, "CMD") != 0) {
        int rc = fail(err, in->line, "Unknown type \"%s\" in HEALTHCHECK (try CMD)", kind);
        free(kind);
        return rc;
    }
    while (isspace((unsigned char)*p))
        p++;
    char **cmd = NULL;
    in->args = strv_add(NULL, &n, kind);
    if (parse_json_array(p, &cmd)) {
        in->json = true;
        for (size_t i = 0; cmd[i] != NULL; i++)
            in->args = strv_add(in->args, &n, xstrdup(cmd[i]));
        strv_free(cmd);
    } else if (*p != '\0') {
        in->args = strv_add(in->args, &n, xstrdup(p));
    }
    if (n < 2)
        return fail(err, in->line, "%s", "Missing command after HEALTHCHECK CMD");
    return 0;
}

static int parse_onbuild(struct df_instr *in, char escape, struct merr *err)
{
    if (in->rest[0] == '\0')
        return fail(err, in->line, "%s", "ONBUILD requires at least one argument");
    struct df_instr *sub = calloc(1, sizeof *sub);
    if (sub == NULL)
        abort();
    in->sub = sub;
    sub->line = in->line;
    sub->original = xstrdup(in->rest);
    const char *p = in->rest;
    while (*p != '\0' && !isspace((unsigned char)*p))
        p++;
    sub->cmd = strndup_trim(in->rest, (size_t)(p - in->rest));
    for (char *c = sub->cmd; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    if (strcmp(sub->cmd, "onbuild") == 0)
        return fail(err, in->line, "%s", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
    if (strcmp(sub->cmd, "from") == 0 || strcmp(sub->cmd, "maintainer") == 0)
        return fail(err, in->line, "%s isn't allowed as an ONBUILD trigger",
                    strcmp(sub->cmd, "from") == 0 ? "FROM" : "MAINTAINER");
    if (!is_known(sub->cmd))
        return fail(err, in->line, "unknown instruction: %s", sub->cmd);
    const char *rest;
    sub->flags = extract_flags(p, &rest);
    sub->rest = strndup_trim(rest, strlen(rest));
    in->args = calloc(2, sizeof *in->args);
    in->args[0] = xstrdup(in->rest);
    return parse_args(sub, escape, err);
}

static int parse_args(struct df_instr *in, char escape, struct merr *err)
{
    const char *c = in->cmd;
    size_t n = 0;
    if (strcmp(c, "onbuild") == 0)
        return parse_onbuild(in, escape, err);
    if (strcmp(c, "env") == 0 || strcmp(c, "label") == 0)
        return parse_name_val(in, escape, err);
    if (strcmp(c, "healthcheck") == 0)
        return parse_healthcheck(in, err);
    if ((strcmp(c, "run") == 0 || strcmp(c, "copy") == 0 || strcmp(c, "add") == 0) &&
        has_heredoc(in->rest))
        return fail(err, in->line, "%s",
                    "heredocs (<<EOF) are not supported by machine-engine's builder");
    if (strcmp(c, "arg") == 0) {
        in->args = parse_words(in->rest, escape);
    } else if (strcmp(c, "run") == 0 || strcmp(c, "cmd") == 0 || strcmp(c, "entrypoint") == 0 ||
               strcmp(c, "shell") == 0) {
        in->json = parse_json_array(in->rest, &in->args);
        if (!in->json)
            in->args = in->rest[0] != '\0' ? strv_add(NULL, &n, xstrdup(in->rest))
                                            : calloc(1, sizeof *in->args);
        if (strcmp(c, "shell") == 0 && !in->json)
            return fail(err, in->line, "%s", "SHELL requires the arguments to be in JSON form");
    } else if (strcmp(c, "add") == 0 || strcmp(c, "copy") == 0 || strcmp(c, "volume") == 0) {
        in->json = parse_json_array(in->rest, &in->args);
        if (!in->json)
            in->args = split_whitespace(in->rest);
    } else if (strcmp(c, "from") == 0 || strcmp(c, "expose") == 0) {
        in->args = split_whitespace(in->rest);
    } else {
        in->args = in->rest[0] != '\0' ? strv_add(NULL, &n, xstrdup(in->rest))
                                        : calloc(1, sizeof *in->args);
    }
    bool may_be_empty = strcmp(c, "cmd") == 0 || strcmp(c, "entrypoint") == 0 ||
                        strcmp(c, "run") == 0 || strcmp(c, "shell") == 0;
    if (in->args[0] == NULL && !(may_be_empty && in->json)) {
        char up[32];
        snprintf(up, sizeof up, "%s", c);
        for (char *p = up; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        return fail(err, in->line, "%s requires at least one argument", up);
    }
    return 0;
}

static int parse_logical(const char *line, size_t lineno, char escape, struct df_instr *in,
                         struct merr *err)
{
    memset(in, 0, sizeof *in);
    in->line = lineno;
    in->original = strndup_trim(line, strlen(line));
    const char *p = in->original;
    while (*p != '\0' && !isspace((unsigned char)*p))
        p++;
    in->cmd = strndup_trim(in->original, (size_t)(p - in->original));
    for (char *c = in->cmd; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    if (!is_known(in->cmd)) {
        char up[64];
        snprintf(up, sizeof up, "%s", in->cmd);
        for (char *c = up; *c; c++)
            *c = (char)toupper((unsigned char)*c);
        return fail(err, lineno, "unknown instruction: %s", up);
    }
    const char *rest;
    in->flags = extract_flags(p, &rest);
    in->rest = strndup_trim(rest, strlen(rest));
    return parse_args(in, escape, err);
}

int df_parse_line(const char *line, char escape, struct df_instr **out, struct merr *err)
{
    struct df_instr *in = calloc(1, sizeof *in);
    if (in == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    if (parse_logical(line, 1, escape, in, err) < 0) {
        df_instr_free(in);
        free(in);
        return -1;
    }
    *out = in;
    return 0;
}

/* ---- physical lines ---- */

struct lines {
    const char *p, *end;
    size_t no;
};

/* The next physical line (without "\n" or "\r\n") as a malloc'd string; NULL at the end. */
static char *next_line(struct lines *l)
{
    if (l->p >= l->end)
        return NULL;
    const char *nl = memchr(l->p, '\n', (size_t)(l->end - l->p));
    const char *stop = nl != NULL ? nl : l->end;
    size_t len = (size_t)(stop - l->p);
    if (len > 0 && l->p[len - 1] == '\r')
        len--;
    char *s = malloc(len + 1);
    if (s == NULL)
        abort();
    memcpy(s, l->p, len);
    s[len] = '\0';
    l->p = nl != NULL ? nl + 1 : l->end;
    l->no++;
    return s;
}

static const char *skip_ws(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* Strips a trailing escape character (and blanks after it): true when the line continues. */
static bool trim_continuation(char *s, char escape)
{
    size_t len = strlen(s);
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (len == 0 || s[len - 1] != escape)
        return false;
    s[len - 1] = '\0';
    return true;
}

/* "# key=value" at the top of the file; 1 when it was one (and recorded), 0 when not. */
static int directive(struct df_file *f, const char *line, size_t no, bool *seen_escape,
                     struct merr *err)
{
    const char *p = skip_ws(line);
    if (*p != '#')
        return 0;
    p = skip_ws(p + 1);
    const char *k = p;
    while (isalnum((unsigned char)*p))
        p++;
    size_t klen = (size_t)(p - k);
    p = skip_ws(p);
    if (klen == 0 || *p != '=')
        return 0;
    auto_free char *key = strndup_trim(k, klen);
    auto_free char *value = strndup_trim(p + 1, strlen(p + 1));
    for (char *c = key; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    if (strcmp(key, "escape") == 0) {
        if (*seen_escape)
            return fail(err, no, "%s", "only one escape parser directive can be used");
        if (strcmp(value, "\\") != 0 && strcmp(value, "`") != 0)
            return fail(err, no, "invalid escape token '%s' does not match ` or \\", value);
        f->escape = value[0];
        *seen_escape = true;
        return 1;
    }
    if (strcmp(key, "syntax") == 0) {
        free(f->syntax);
        f->syntax = steal_pointer(&value);
        return 1;
    }
    return strcmp(key, "check") == 0 ? 1 : 0;
}

static int add_instr(struct df_file *f, const char *line, size_t no, struct merr *err)
{
    if (f->n == DF_MAX_INSTRUCTIONS)
        return merr_set(err, MERR_INVALID, 0, "the Dockerfile has more than %d instructions",
                        DF_MAX_INSTRUCTIONS);
    struct df_instr *v = realloc(f->v, (f->n + 1) * sizeof *v);
    if (v == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    f->v = v;
    if (parse_logical(line, no, f->escape, &f->v[f->n], err) < 0) {
        df_instr_free(&f->v[f->n]);
        return -1;
    }
    f->n++;
    return 0;
}

static int parse_body(struct df_file *f, struct lines *l, struct merr *err)
{
    bool directives = true, seen_escape = false;
    char *raw;
    while ((raw = next_line(l)) != NULL) {
        auto_free char *first = raw;
        if (directives) {
            int d = directive(f, first, l->no, &seen_escape, err);
            if (d < 0)
                return -1;
            if (d == 1)
                continue;
            directives = false;
        }
        const char *s = skip_ws(first);
        if (*s == '#' || *s == '\0')
            continue;
        size_t start = l->no;
        auto_free char *line = xstrdup(s);
        bool more = trim_continuation(line, f->escape);
        if (!more && *skip_ws(line) == '\0')
            continue;
        char *cont;
        while (more && (cont = next_line(l)) != NULL) {
            auto_free char *c = cont;
            const char *t = skip_ws(c);
            if (*t == '#' || *t == '\0')
                continue; /* comments and empty lines inside a continuation are dropped */
            more = trim_continuation(c, f->escape);
            char *joined = xasprintf("%s%s", line, c);
            free(line);
            line = joined;
        }
        if (*skip_ws(line) == '\0')
            continue;
        if (add_instr(f, line, start, err) < 0)
            return -1;
    }
    return 0;
}

int df_parse(const char *buf, size_t len, struct df_file **out, struct merr *err)
{
    if (len > DF_MAX_SIZE)
        return merr_set(err, MERR_INVALID, 0, "the Dockerfile is larger than %u bytes",
                        DF_MAX_SIZE);
    if (memchr(buf, '\0', len) != NULL)
        return merr_set(err, MERR_INVALID, 0, "the Dockerfile contains a NUL byte");
    if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) {
        buf += 3;
        len -= 3;
    }
    auto_df_file struct df_file *f = calloc(1, sizeof *f);
    if (f == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    f->escape = '\\';
    struct lines l = { buf, buf + len, 0 };
    if (parse_body(f, &l, err) < 0)
        return -1;
    if (f->n == 0)
        return merr_set(err, MERR_INVALID, 0, "the Dockerfile (Dockerfile) cannot be empty");
    *out = steal_pointer(&f);
    return 0;
}
