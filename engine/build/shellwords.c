/* Shell-word expansion as the builder applies it to instruction arguments (BuildKit's shell
 * lexer, shared by the classic builder): variables, quotes and the escape character. With
 * splitting on, unquoted whitespace (also inside expanded values) separates words. Pure. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "build/dockerfile.h"
#include "error.h"
#include "fsutil.h"
#include "strv.h"

#define EXPAND_MAX_DEPTH 32

struct sbuf {
    char *s;
    size_t len, cap;
};

static void sb_add(struct sbuf *b, char c)
{
    if (b->len + 2 > b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->s = realloc(b->s, b->cap);
        if (b->s == NULL)
            abort();
    }
    b->s[b->len++] = c;
    b->s[b->len] = '\0';
}

struct lexer {
    const char *p;
    char escape;
    df_lookup_fn lookup;
    void *ctx;
    bool split;
    /* output: the current word, and the words done (split mode) */
    struct sbuf cur;
    bool cur_started;
    char **words;
    size_t n_words;
    struct merr *err;
};

static void end_word(struct lexer *lx)
{
    if (!lx->cur_started)
        return;
    char **v = realloc(lx->words, (lx->n_words + 2) * sizeof *v);
    if (v == NULL)
        abort();
    lx->words = v;
    v[lx->n_words++] = lx->cur.s != NULL ? lx->cur.s : xstrdup("");
    v[lx->n_words] = NULL;
    lx->cur = (struct sbuf){ 0 };
    lx->cur_started = false;
}

/* Adds a character; unquoted whitespace ends the word in split mode. */
static void add_char(struct lexer *lx, struct sbuf *out, char c, bool raw)
{
    if (out == &lx->cur && lx->split && !raw && isspace((unsigned char)c)) {
        end_word(lx);
        return;
    }
    if (out == &lx->cur)
        lx->cur_started = true;
    sb_add(out, c);
}

static void add_string(struct lexer *lx, struct sbuf *out, const char *s, bool raw)
{
    for (; s != NULL && *s; s++)
        add_char(lx, out, *s, raw);
    if (out == &lx->cur && raw)
        lx->cur_started = true;
}

static int lex_dollar(struct lexer *lx, struct sbuf *out, bool raw, int depth);

/* Reads up to the unescaped stop character (not included) into out; stop 0: the end. */
static int lex_until(struct lexer *lx, struct sbuf *out, char stop, bool raw, int depth);

static int lex_single(struct lexer *lx, struct sbuf *out)
{
    lx->p++; /* the opening quote */
    if (out == &lx->cur)
        lx->cur_started = true;
    while (*lx->p != '\'') {
        if (*lx->p == '\0')
            return merr_set(lx->err, MERR_INVALID, 0,
                            "unexpected end of statement while looking for matching single-quote");
        add_char(lx, out, *lx->p++, true);
    }
    lx->p++;
    return 0;
}

static int lex_double(struct lexer *lx, struct sbuf *out, int depth)
{
    lx->p++;
    if (out == &lx->cur)
        lx->cur_started = true;
    while (*lx->p != '"') {
        char c = *lx->p;
        if (c == '\0')
            return merr_set(lx->err, MERR_INVALID, 0,
                            "unexpected end of statement while looking for matching double-quote");
        if (c == '$') {
            if (lex_dollar(lx, out, true, depth) < 0)
                return -1;
            continue;
        }
        lx->p++;
        if (c == lx->escape && (*lx->p == '"' || *lx->p == '$' || *lx->p == lx->escape))
            c = *lx->p++; /* only these can be escaped inside double quotes */
        add_char(lx, out, c, true);
    }
    lx->p++;
    return 0;
}

static size_t name_len(const char *p)
{
    size_t n = 0;
    while (isalnum((unsigned char)p[n]) || p[n] == '_')
        n++;
    return n;
}

/* ${name<op>word}: the word is read (and expanded) whether it is used or not. */
static int lex_braced(struct lexer *lx, struct sbuf *out, bool raw, int depth)
{
    size_t n = name_len(lx->p);
    if (n == 0)
        return merr_set(lx->err, MERR_INVALID, 0, "bad substitution: no variable name");
    auto_free char *name = strndup(lx->p, n);
    lx->p += n;
    const char *value = lx->lookup(lx->ctx, name);
    if (*lx->p == '}') {
        lx->p++;
        add_string(lx, out, value, raw);
        return 0;
    }
    bool colon = *lx->p == ':';
    if (colon)
        lx->p++;
    char op = *lx->p;
    if (op != '-' && op != '+' && op != '?') {
        if (colon)
            return merr_set(lx->err, MERR_INVALID, 0, "unsupported modifier (%c) in substitution",
                            op);
        return merr_set(lx->err, MERR_INVALID, 0, "missing ':' in substitution");
    }
    lx->p++;
    struct sbuf word = { 0 };
    if (lex_until(lx, &word, '}', raw, depth + 1) < 0) {
        free(word.s);
        return -1;
    }
    bool set = value != NULL && (!colon || value[0] != '\0');
    const char *w = word.s != NULL ? word.s : "";
    int rc = 0;
    if (op == '-')
        add_string(lx, out, set ? value : w, raw);
    else if (op == '+')
        add_string(lx, out, set ? w : "", raw);
    else if (!set)
        rc = merr_set(lx->err, MERR_INVALID, 0, "%s: %s", name,
                      w[0] ? w : "is not allowed to be unset");
    else
        add_string(lx, out, value, raw);
    free(word.s);
    return rc;
}

static int lex_dollar(struct lexer *lx, struct sbuf *out, bool raw, int depth)
{
    if (depth > EXPAND_MAX_DEPTH)
        return merr_set(lx->err, MERR_INVALID, 0, "substitutions nested too deeply");
    lx->p++; /* '$' */
    if (*lx->p == '{') {
        lx->p++;
        return lex_braced(lx, out, raw, depth);
    }
    size_t n = name_len(lx->p);
    if (n == 0) {
        add_char(lx, out, '$', true);
        return 0;
    }
    auto_free char *name = strndup(lx->p, n);
    lx->p += n;
    add_string(lx, out, lx->lookup(lx->ctx, name), raw);
    return 0;
}

static int lex_until(struct lexer *lx, struct sbuf *out, char stop, bool raw, int depth)
{
    for (;;) {
        char c = *lx->p;
        if (c == '\0') {
            if (stop == 0)
                return 0;
            return merr_set(lx->err, MERR_INVALID, 0,
                            "unexpected end of statement while looking for matching %c", stop);
        }
        if (c == stop) {
            lx->p++;
            return 0;
        }
        int rc = 0;
        if (c == '\'')
            rc = lex_single(lx, out);
        else if (c == '"')
            rc = lex_double(lx, out, depth);
        else if (c == '$')
            rc = lex_dollar(lx, out, raw, depth);
        else if (c == lx->escape) {
            lx->p++;
            if (*lx->p != '\0')
                add_char(lx, out, *lx->p++, true); /* an escape at the very end is dropped */
        } else {
            lx->p++;
            add_char(lx, out, c, raw);
        }
        if (rc < 0)
            return -1;
    }
}

char *df_expand_word(const char *word, char escape, df_lookup_fn lookup, void *ctx,
                     struct merr *err)
{
    struct lexer lx = { .p = word, .escape = escape, .lookup = lookup, .ctx = ctx, .err = err };
    if (lex_until(&lx, &lx.cur, 0, true, 0) < 0) {
        free(lx.cur.s);
        return NULL;
    }
    return lx.cur.s != NULL ? lx.cur.s : xstrdup("");
}

char **df_expand_words(const char *text, char escape, df_lookup_fn lookup, void *ctx,
                       struct merr *err)
{
    struct lexer lx = { .p = text, .escape = escape, .lookup = lookup, .ctx = ctx, .err = err,
                        .split = true };
    if (lex_until(&lx, &lx.cur, 0, false, 0) < 0) {
        free(lx.cur.s);
        strv_free(lx.words);
        return NULL;
    }
    end_word(&lx);
    return lx.words != NULL ? lx.words : calloc(1, sizeof(char *));
}

const char *df_lookup_env_array(void *ctx, const char *name)
{
    json_t *env = ctx;
    size_t len = strlen(name), i;
    json_t *e;
    const char *found = NULL;
    json_array_foreach(env, i, e)
    {
        const char *s = json_string_value(e);
        if (s != NULL && strncmp(s, name, len) == 0 && s[len] == '=')
            found = s + len + 1; /* the last one wins, as in a process environment */
    }
    return found;
}
