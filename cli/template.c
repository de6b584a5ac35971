#include "template.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fsutil.h"

enum tfunc { TF_NONE, TF_JSON, TF_PRETTYJSON, TF_UPPER, TF_LOWER };

struct action {
    enum tfunc func;
    char path[256];
};

static int parse_action(const char *text, size_t len, struct action *a, struct merr *err)
{
    while (len > 0 && isspace((unsigned char)text[0])) {
        text++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)text[len - 1]))
        len--;
    a->func = TF_NONE;
    static const struct {
        const char *name;
        enum tfunc f;
    } funcs[] = { { "json", TF_JSON },
                  { "prettyjson", TF_PRETTYJSON },
                  { "upper", TF_UPPER },
                  { "lower", TF_LOWER } };
    for (size_t i = 0; i < sizeof funcs / sizeof funcs[0]; i++) {
        size_t n = strlen(funcs[i].name);
        if (len > n && strncmp(text, funcs[i].name, n) == 0 && isspace((unsigned char)text[n])) {
            a->func = funcs[i].f;
            text += n;
            len -= n;
            while (len > 0 && isspace((unsigned char)text[0])) {
                text++;
                len--;
            }
            break;
        }
    }
    if (len == 0 || text[0] != '.' || len >= sizeof a->path)
        return merr_set(err, MERR_INVALID, 0, "unsupported template action '{{%.*s}}'", (int)len,
                        text);
    for (size_t i = 1; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (!(isalnum(c) || c == '_' || c == '.') || (c == '.' && text[i - 1] == '.'))
            return merr_set(err, MERR_INVALID, 0, "unsupported template action '{{%.*s}}'",
                            (int)len, text);
    }
    memcpy(a->path, text, len);
    a->path[len] = '\0';
    return 0;
}

static const json_t *lookup(const json_t *data, const char *path)
{
    if (strcmp(path, ".") == 0)
        return data;
    auto_free char *copy = xstrdup(path + 1);
    const json_t *cur = data;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ".", &save); tok != NULL; tok = strtok_r(NULL, ".", &save)) {
        if (!json_is_object(cur))
            return NULL;
        cur = json_object_get(cur, tok);
        if (cur == NULL)
            return NULL;
    }
    return cur;
}

static void emit_value(FILE *out, const json_t *v, enum tfunc func)
{
    if (func == TF_JSON || func == TF_PRETTYJSON) {
        if (v == NULL) {
            fputs("null", out);
            return;
        }
        /* prettyjson: Go's json.MarshalIndent(v, "", "    ") as docker-machine uses it */
        size_t flags = func == TF_JSON ? JSON_COMPACT : JSON_INDENT(4);
        char *s = json_dumps(v, flags | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
        fputs(s != NULL ? s : "null", out);
        free(s);
        return;
    }
    if (v == NULL) {
        fputs("<no value>", out);
        return;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        for (; *s != '\0'; s++) {
            int c = (unsigned char)*s;
            fputc(func == TF_UPPER ? toupper(c) : func == TF_LOWER ? tolower(c) : c, out);
        }
    } else if (json_is_integer(v)) {
        fprintf(out, "%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        fprintf(out, "%g", json_real_value(v));
    } else if (json_is_boolean(v)) {
        fputs(json_is_true(v) ? "true" : "false", out);
    } else if (json_is_null(v)) {
        fputs("<nil>", out);
    } else {
        emit_value(out, v, TF_JSON);
    }
}

static int walk(const char *tmpl, const json_t *data, FILE *out, struct merr *err)
{
    const char *p = tmpl;
    for (;;) {
        const char *open = strstr(p, "{{");
        if (open == NULL) {
            if (out != NULL)
                fputs(p, out);
            return 0;
        }
        if (out != NULL)
            fwrite(p, 1, (size_t)(open - p), out);
        const char *close = strstr(open + 2, "}}");
        if (close == NULL)
            return merr_set(err, MERR_INVALID, 0, "unterminated template action in '%s'", tmpl);
        struct action a;
        if (parse_action(open + 2, (size_t)(close - open - 2), &a, err) < 0)
            return -1;
        if (out != NULL)
            emit_value(out, lookup(data, a.path), a.func);
        p = close + 2;
    }
}

int template_check(const char *tmpl, struct merr *err)
{
    return walk(tmpl, NULL, NULL, err);
}

char *template_render(const char *tmpl, const json_t *data, struct merr *err)
{
    if (template_check(tmpl, err) < 0)
        return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        abort();
    int rc = walk(tmpl, data, f, err);
    fclose(f);
    if (rc < 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

char *template_unescape(const char *tmpl)
{
    char *out = xstrdup(tmpl);
    char *w = out;
    for (const char *r = tmpl; *r != '\0'; r++) {
        if (r[0] == '\\' && (r[1] == 't' || r[1] == 'n')) {
            *w++ = r[1] == 't' ? '\t' : '\n';
            r++;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return out;
}

/* Display width of n bytes of UTF-8 text: continuation bytes do not count. */
static size_t text_width(const char *s, size_t n)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        w += ((unsigned char)s[i] & 0xC0) != 0x80;
    return w;
}

char *template_tabulate(const char *text, size_t minwidth, size_t padding)
{
    /* widths[i]: the widest tab-terminated cell i of any line */
    size_t widths[64] = { 0 };
    const size_t max_cols = sizeof widths / sizeof widths[0];
    size_t col = 0, cell_start = 0;
    for (size_t i = 0; text[i] != '\0'; i++) {
        if (text[i] == '\n') {
            col = 0;
            cell_start = i + 1;
        } else if (text[i] == '\t') {
            size_t w = text_width(text + cell_start, i - cell_start) + padding;
            if (w < minwidth)
                w = minwidth;
            if (col < max_cols && w > widths[col])
                widths[col] = w;
            col++;
            cell_start = i + 1;
        }
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        abort();
    col = 0;
    cell_start = 0;
    for (size_t i = 0;; i++) {
        char c = text[i];
        if (c == '\t') {
            size_t w = text_width(text + cell_start, i - cell_start);
            fwrite(text + cell_start, 1, i - cell_start, f);
            size_t target = col < max_cols ? widths[col] : w + padding;
            for (; w < target; w++)
                fputc(' ', f);
            col++;
            cell_start = i + 1;
        } else if (c == '\n' || c == '\0') {
            fwrite(text + cell_start, 1, i - cell_start, f);
            if (c == '\0')
                break;
            fputc('\n', f);
            col = 0;
            cell_start = i + 1;
        }
    }
    fclose(f);
    return buf;
}
