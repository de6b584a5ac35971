/* .dockerignore: docker's patternmatcher rules. Patterns are cleaned like filepath.Clean, a
 * leading "/" is dropped, "!" makes an exception; '*' and '?' never cross '/', "**" crosses any
 * number of segments ("**" at the end matches everything below), '[...]' classes and '\'
 * escapes as in filepath.Match; a path is excluded when it or one of its parent directories
 * matches, the last matching pattern deciding. Pure. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "build/dockerfile.h"
#include "error.h"
#include "fsutil.h"
#include "strv.h"

#define IGNORE_MAX_PATTERNS 10000
#define MATCH_BUDGET 200000

struct pattern {
    char *text;
    bool exclusion;
};

struct df_ignore {
    struct pattern *v;
    size_t n;
};

void df_ignore_free(struct df_ignore *ig)
{
    if (ig == NULL)
        return;
    for (size_t i = 0; i < ig->n; i++)
        free(ig->v[i].text);
    free(ig->v);
    free(ig);
}

/* Go's path.Clean for a relative or absolute path ("" → "."). */
static char *clean(const char *p)
{
    size_t len = strlen(p);
    bool abs = p[0] == '/';
    char *out = malloc(len + 2);
    if (out == NULL)
        abort();
    size_t o = 0, r = 0, dotdot = 0;
    if (abs) {
        out[o++] = '/';
        r = dotdot = 1;
    }
    while (r < len) {
        if (p[r] == '/') {
            r++;
        } else if (p[r] == '.' && (r + 1 == len || p[r + 1] == '/')) {
            r++;
        } else if (p[r] == '.' && p[r + 1] == '.' && (r + 2 == len || p[r + 2] == '/')) {
            r += 2;
            if (o > dotdot) {
                o--;
                while (o > dotdot && out[o] != '/')
                    o--;
            } else if (!abs) {
                if (o > 0)
                    out[o++] = '/';
                out[o++] = '.';
                out[o++] = '.';
                dotdot = o;
            }
        } else {
            if ((abs && o != 1) || (!abs && o != 0))
                out[o++] = '/';
            for (; r < len && p[r] != '/'; r++)
                out[o++] = p[r];
        }
    }
    if (o == 0)
        out[o++] = '.';
    out[o] = '\0';
    return out;
}

/* Length of the class starting at p ('['), or 0 when it is not terminated. */
static size_t class_len(const char *p)
{
    size_t i = 1;
    if (p[i] == '^' || p[i] == '!')
        i++;
    if (p[i] == ']')
        i++;
    for (; p[i] != '\0'; i++) {
        if (p[i] == '\\' && p[i + 1] != '\0')
            i++;
        else if (p[i] == ']')
            return i + 1;
    }
    return 0;
}

static bool class_match(const char *p, size_t len, char c)
{
    size_t i = 1;
    bool neg = false, hit = false;
    if (p[i] == '^' || p[i] == '!') {
        neg = true;
        i++;
    }
    for (; i < len - 1; i++) {
        char lo = p[i];
        if (lo == '\\' && i + 1 < len - 1)
            lo = p[++i];
        char hi = lo;
        if (p[i + 1] == '-' && i + 2 < len - 1) {
            hi = p[i + 2];
            if (hi == '\\' && i + 3 < len - 1)
                hi = p[++i + 2];
            i += 2;
        }
        if (c >= lo && c <= hi)
            hit = true;
    }
    return hit != neg;
}

static bool match_at(const char *p, const char *s, long *budget)
{
    if (--*budget < 0)
        return false;
    for (;;) {
        if (*p == '\0')
            return *s == '\0';
        if (p[0] == '*' && p[1] == '*') {
            p += 2;
            if (*p == '/')
                p++;
            if (*p == '\0')
                return true;
            /* the regexp docker compiles "**" to: nothing, or anything that ends with '/' */
            if (match_at(p, s, budget))
                return true;
            for (const char *t = s; *t != '\0'; t++)
                if (*t == '/' && match_at(p, t + 1, budget))
                    return true;
            return false;
        }
        if (*p == '*') {
            for (const char *t = s;; t++) {
                if (match_at(p + 1, t, budget))
                    return true;
                if (*t == '\0' || *t == '/')
                    return false;
            }
        }
        if (*s == '\0')
            return false;
        if (*p == '?') {
            if (*s == '/')
                return false;
        } else if (*p == '[') {
            size_t len = class_len(p);
            if (len == 0 || !class_match(p, len, *s))
                return false;
            p += len - 1;
        } else if (*p == '\\' && p[1] != '\0') {
            if (*++p != *s)
                return false;
        } else if (*p != *s) {
            return false;
        }
        p++;
        s++;
    }
}

static bool pattern_valid(const char *p)
{
    for (; *p != '\0'; p++) {
        if (*p == '\\') {
            if (p[1] == '\0')
                return false;
            p++;
        } else if (*p == '[') {
            size_t len = class_len(p);
            if (len == 0 || len == 2)
                return false;
            p += len - 1;
        }
    }
    return true;
}

int df_pattern_match(const char *pattern, const char *name)
{
    if (!pattern_valid(pattern))
        return -1;
    long budget = MATCH_BUDGET;
    return match_at(pattern, name, &budget) ? 1 : 0;
}

static int add_pattern(struct df_ignore *ig, const char *line, struct merr *err)
{
    while (isspace((unsigned char)*line))
        line++;
    size_t len = strlen(line);
    while (len > 0 && isspace((unsigned char)line[len - 1]))
        len--;
    if (len == 0)
        return 0;
    auto_free char *raw = strndup(line, len);
    bool exclusion = raw[0] == '!';
    const char *body = raw + (exclusion ? 1 : 0);
    while (isspace((unsigned char)*body))
        body++;
    if (exclusion && *body == '\0')
        return merr_set(err, MERR_INVALID, 0, "illegal exclusion pattern: \"!\"");
    char *c = clean(body);
    if (strlen(c) > 1 && c[0] == '/')
        memmove(c, c + 1, strlen(c));
    if (!pattern_valid(c)) {
        int rc = merr_set(err, MERR_INVALID, 0, "syntax error in pattern: %s", c);
        free(c);
        return rc;
    }
    if (ig->n == IGNORE_MAX_PATTERNS) {
        free(c);
        return merr_set(err, MERR_INVALID, 0, ".dockerignore has more than %d patterns",
                        IGNORE_MAX_PATTERNS);
    }
    struct pattern *v = realloc(ig->v, (ig->n + 1) * sizeof *v);
    if (v == NULL)
        abort();
    ig->v = v;
    ig->v[ig->n++] = (struct pattern){ c, exclusion };
    return 0;
}

int df_ignore_parse(const char *buf, size_t len, struct df_ignore **out, struct merr *err)
{
    auto_df_ignore struct df_ignore *ig = calloc(1, sizeof *ig);
    if (ig == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) {
        buf += 3;
        len -= 3;
    }
    const char *p = buf, *end = buf + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl != NULL ? nl : end;
        auto_free char *line = strndup(p, (size_t)(stop - p));
        p = nl != NULL ? nl + 1 : end;
        if (line == NULL)
            return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
        if (line[0] == '#')
            continue; /* a comment only when '#' is the first character */
        if (add_pattern(ig, line, err) < 0)
            return -1;
    }
    *out = steal_pointer(&ig);
    return 0;
}

bool df_ignore_match(const struct df_ignore *ig, const char *path)
{
    if (ig == NULL)
        return false;
    bool matched = false;
    for (size_t i = 0; i < ig->n; i++) {
        const struct pattern *pt = &ig->v[i];
        if (pt->exclusion != matched)
            continue;
        long budget = MATCH_BUDGET;
        bool m = match_at(pt->text, path, &budget);
        /* or one of its parent directories */
        for (const char *s = strchr(path, '/'); !m && s != NULL; s = strchr(s + 1, '/')) {
            auto_free char *parent = strndup(path, (size_t)(s - path));
            budget = MATCH_BUDGET;
            m = parent != NULL && match_at(pt->text, parent, &budget);
        }
        if (m)
            matched = !pt->exclusion;
    }
    return matched;
}

bool df_ignore_has_exceptions(const struct df_ignore *ig)
{
    for (size_t i = 0; ig != NULL && i < ig->n; i++)
        if (ig->v[i].exclusion)
            return true;
    return false;
}
