#include "lab-tree.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "error.h"
#include "fsutil.h"

#define LNODE_MAX_DEPTH 64

void lnode_free(struct lnode *n)
{
    if (n == NULL)
        return;
    free(n->scalar);
    for (size_t i = 0; i < n->n; i++) {
        if (n->keys != NULL)
            free(n->keys[i]);
        lnode_free(n->items[i]);
    }
    free(n->keys);
    free(n->key_lines);
    free(n->items);
    free(n);
}

const struct lnode *lnode_get(const struct lnode *map, const char *key)
{
    if (map == NULL || map->kind != LNODE_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->keys[i], key) == 0)
            return map->items[i];
    return NULL;
}

static struct lnode *lnode_new(enum lnode_kind kind, int line)
{
    struct lnode *n = xcalloc(1, sizeof *n);
    n->kind = kind;
    n->line = line;
    return n;
}

static void lnode_append(struct lnode *parent, char *key, int key_line, struct lnode *child)
{
    size_t n = parent->n + 1;
    parent->items = realloc(parent->items, n * sizeof *parent->items);
    if (parent->items == NULL)
        abort();
    parent->items[n - 1] = child;
    if (parent->kind == LNODE_MAP) {
        parent->keys = realloc(parent->keys, n * sizeof *parent->keys);
        parent->key_lines = realloc(parent->key_lines, n * sizeof *parent->key_lines);
        if (parent->keys == NULL || parent->key_lines == NULL)
            abort();
        parent->keys[n - 1] = key;
        parent->key_lines[n - 1] = key_line;
    }
    parent->n = n;
}

/* ---- YAML ---- */

struct yreader {
    yaml_parser_t parser;
    const char *path;
};

static int yaml_fail(struct yreader *r, struct merr *err)
{
    if (r->parser.error == YAML_NO_ERROR)
        return merr_set(err, MERR_INVALID, 0, "%s: not a valid lab file", r->path);
    return merr_set(err, MERR_INVALID, 0, "%s:%zu: %s%s%s", r->path,
                    (size_t)r->parser.problem_mark.line + 1,
                    r->parser.problem ? r->parser.problem : "syntax error",
                    r->parser.context ? " " : "", r->parser.context ? r->parser.context : "");
}

static int next_event(struct yreader *r, yaml_event_t *ev, struct merr *err)
{
    if (!yaml_parser_parse(&r->parser, ev))
        return yaml_fail(r, err);
    return 0;
}

static struct lnode *read_node(struct yreader *r, yaml_event_t *ev, int depth, struct merr *err);

/* Reads the items of the collection opened by ev, up to its end event. */
static int read_children(struct yreader *r, struct lnode *node, int depth, struct merr *err)
{
    for (;;) {
        yaml_event_t ev;
        if (next_event(r, &ev, err) < 0)
            return -1;
        if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        char *key = NULL;
        int key_line = (int)ev.start_mark.line + 1;
        if (node->kind == LNODE_MAP) {
            if (ev.type != YAML_SCALAR_EVENT) {
                yaml_event_delete(&ev);
                return merr_set(err, MERR_INVALID, 0, "%s:%d: a key must be a plain value",
                                r->path, key_line);
            }
            key = xstrdup((const char *)ev.data.scalar.value);
            yaml_event_delete(&ev);
            if (lnode_get(node, key) != NULL) {
                merr_set(err, MERR_INVALID, 0, "%s:%d: '%s' appears twice", r->path, key_line,
                         key);
                free(key);
                return -1;
            }
            if (next_event(r, &ev, err) < 0) {
                free(key);
                return -1;
            }
        }
        struct lnode *child = read_node(r, &ev, depth + 1, err);
        yaml_event_delete(&ev);
        if (child == NULL) {
            free(key);
            return -1;
        }
        lnode_append(node, key, key_line, child);
    }
}

/* The node that starts with ev (a scalar, a sequence start or a mapping start). */
static struct lnode *read_node(struct yreader *r, yaml_event_t *ev, int depth, struct merr *err)
{
    int line = (int)ev->start_mark.line + 1;
    if (depth > LNODE_MAX_DEPTH) {
        merr_set(err, MERR_INVALID, 0, "%s:%d: nested too deeply", r->path, line);
        return NULL;
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT: {
        struct lnode *n = lnode_new(LNODE_SCALAR, line);
        n->scalar = xstrdup((const char *)ev->data.scalar.value);
        return n;
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        struct lnode *n =
            lnode_new(ev->type == YAML_MAPPING_START_EVENT ? LNODE_MAP : LNODE_SEQ, line);
        if (read_children(r, n, depth, err) < 0) {
            lnode_free(n);
            return NULL;
        }
        return n;
    }
    case YAML_ALIAS_EVENT:
        merr_set(err, MERR_INVALID, 0,
                 "%s:%d: YAML aliases (*name) are not supported in lab files: use 'defaults'",
                 r->path, line);
        return NULL;
    default:
        merr_set(err, MERR_INVALID, 0, "%s:%d: unexpected YAML structure", r->path, line);
        return NULL;
    }
}

/* Skips the stream and document starts; returns the root (an empty map for an empty file). */
static struct lnode *read_document(struct yreader *r, struct merr *err)
{
    struct lnode *root = NULL;
    for (int guard = 0; guard < 8; guard++) { /* stream, document, root, ends: 5 events */
        yaml_event_t ev;
        if (next_event(r, &ev, err) < 0) {
            lnode_free(root);
            return NULL;
        }
        yaml_event_type_t t = ev.type;
        int line = (int)ev.start_mark.line + 1;
        if (t == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            return root != NULL ? root : lnode_new(LNODE_MAP, 1);
        }
        if (t == YAML_DOCUMENT_START_EVENT && root != NULL) {
            yaml_event_delete(&ev);
            lnode_free(root);
            merr_set(err, MERR_INVALID, 0, "%s:%d: one YAML document per lab file", r->path,
                     line);
            return NULL;
        }
        if (t == YAML_DOCUMENT_START_EVENT || t == YAML_STREAM_START_EVENT ||
            t == YAML_DOCUMENT_END_EVENT) {
            yaml_event_delete(&ev);
            continue;
        }
        root = read_node(r, &ev, 0, err);
        yaml_event_delete(&ev);
        if (root == NULL)
            return NULL;
    }
    lnode_free(root);
    merr_set(err, MERR_INVALID, 0, "%s: unexpected YAML structure", r->path);
    return NULL;
}

static struct lnode *parse_yaml(const char *text, size_t len, const char *path, struct merr *err)
{
    struct yreader r = { .path = path };
    if (!yaml_parser_initialize(&r.parser)) {
        merr_set(err, MERR_NOMEM, 0, "out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&r.parser, (const unsigned char *)text, len);
    struct lnode *root = read_document(&r, err);
    yaml_parser_delete(&r.parser);
    return root;
}

/* ---- JSON ---- */

static struct lnode *from_json(const json_t *v, int depth, const char *path, struct merr *err)
{
    if (depth > LNODE_MAX_DEPTH) {
        merr_set(err, MERR_INVALID, 0, "%s: nested too deeply", path);
        return NULL;
    }
    struct lnode *n;
    if (json_is_object(v)) {
        n = lnode_new(LNODE_MAP, 0);
        const char *k;
        json_t *item;
        json_object_foreach((json_t *)v, k, item) {
            struct lnode *c = from_json(item, depth + 1, path, err);
            if (c == NULL) {
                lnode_free(n);
                return NULL;
            }
            lnode_append(n, xstrdup(k), 0, c);
        }
    } else if (json_is_array(v)) {
        n = lnode_new(LNODE_SEQ, 0);
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item) {
            struct lnode *c = from_json(item, depth + 1, path, err);
            if (c == NULL) {
                lnode_free(n);
                return NULL;
            }
            lnode_append(n, NULL, 0, c);
        }
    } else {
        n = lnode_new(LNODE_SCALAR, 0);
        if (json_is_string(v))
            n->scalar = xstrdup(json_string_value(v));
        else if (json_is_integer(v))
            n->scalar = xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
        else if (json_is_real(v))
            n->scalar = xasprintf("%g", json_real_value(v));
        else
            n->scalar = xstrdup(json_is_true(v) ? "true" : json_is_false(v) ? "false" : "");
    }
    return n;
}

static struct lnode *parse_json(const char *text, size_t len, const char *path, struct merr *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        merr_set(err, MERR_INVALID, 0, "%s:%d: %s", path, jerr.line, jerr.text);
        return NULL;
    }
    struct lnode *n = from_json(root, 0, path, err);
    json_decref(root);
    return n;
}

struct lnode *lnode_parse(const char *text, size_t len, const char *path, struct merr *err)
{
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r'))
        i++;
    if (i < len && text[i] == '{')
        return parse_json(text, len, path, err);
    return parse_yaml(text, len, path, err);
}
