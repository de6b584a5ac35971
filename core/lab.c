#include "lab.h"

#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fsutil.h"
#include "lab-tree.h"
#include "machine.h"

#define LAB_FILE_MAX ((size_t)4 << 20)

/* Where a check is: the file, the node's line and its dotted field path. */
struct where {
    const char *path;
    int line;
    const char *field;
};

__attribute__((format(printf, 3, 4))) static int fail(const struct where *w, struct merr *err,
                                                      const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (w->line > 0)
        return merr_set(err, MERR_INVALID, 0, "%s:%d: %s: %s", w->path, w->line, w->field, msg);
    return merr_set(err, MERR_INVALID, 0, "%s: %s: %s", w->path, w->field, msg);
}

static const char *kind_name(const struct lnode *n)
{
    return n->kind == LNODE_MAP ? "a mapping" : n->kind == LNODE_SEQ ? "a list" : "a value";
}

static int want(const struct lnode *n, enum lnode_kind kind, const struct where *w, struct merr *err)
{
    if (n->kind == kind)
        return 0;
    static const char *const names[] = { "a value", "a list", "a mapping" };
    return fail(w, err, "expected %s, found %s", names[kind], kind_name(n));
}

/* Refuses keys of map that are not in allowed (NULL-terminated). */
static int only_keys(const struct lnode *map, const char *const *allowed, const struct where *w,
                     struct merr *err)
{
    for (size_t i = 0; i < map->n; i++) {
        bool ok = false;
        for (size_t j = 0; allowed[j] != NULL && !ok; j++)
            ok = strcmp(map->keys[i], allowed[j]) == 0;
        if (!ok) {
            char list[256] = "";
            for (size_t j = 0; allowed[j] != NULL; j++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", j ? ", " : "",
                         allowed[j]);
            struct where kw = { w->path, map->key_lines[i], w->field };
            return fail(&kw, err, "unknown field '%s' (known: %s)", map->keys[i], list);
        }
    }
    return 0;
}

/* A list of values; a single value is a list of one. */
static json_t *string_list(const struct lnode *n, const struct where *w, struct merr *err)
{
    json_t *a = json_array();
    if (n->kind == LNODE_SCALAR) {
        json_array_append_new(a, json_string(n->scalar));
        return a;
    }
    if (want(n, LNODE_SEQ, w, err) < 0) {
        json_decref(a);
        return NULL;
    }
    for (size_t i = 0; i < n->n; i++) {
        struct where iw = { w->path, n->items[i]->line, w->field };
        if (want(n->items[i], LNODE_SCALAR, &iw, err) < 0) {
            json_decref(a);
            return NULL;
        }
        json_array_append_new(a, json_string(n->items[i]->scalar));
    }
    return a;
}

/* A mapping of names to values; with lists_ok a value may also be a list (a repeated flag). */
static json_t *string_map(const struct lnode *n, bool lists_ok, const struct where *w,
                          struct merr *err)
{
    if (want(n, LNODE_MAP, w, err) < 0)
        return NULL;
    json_t *o = json_object();
    for (size_t i = 0; i < n->n; i++) {
        auto_free char *field = xasprintf("%s.%s", w->field, n->keys[i]);
        struct where iw = { w->path, n->key_lines[i], field };
        const struct lnode *v = n->items[i];
        json_t *jv = v->kind == LNODE_SCALAR ? json_string(v->scalar)
                     : lists_ok             ? string_list(v, &iw, err)
                                            : NULL;
        if (jv == NULL) {
            if (v->kind != LNODE_SCALAR && !lists_ok)
                fail(&iw, err, "expected a value, found %s", kind_name(v));
            json_decref(o);
            return NULL;
        }
        json_object_set_new(o, n->keys[i], jv);
    }
    return o;
}

static json_t *parse_engine(const struct lnode *n, const struct where *w, struct merr *err)
{
    static const char *const keys[] = { "opts", "env", "labels", "insecure-registry",
                                        "registry-mirror", "storage-driver", NULL };
    if (want(n, LNODE_MAP, w, err) < 0 || only_keys(n, keys, w, err) < 0)
        return NULL;
    json_t *o = json_object();
    for (size_t i = 0; i < n->n; i++) {
        auto_free char *field = xasprintf("%s.%s", w->field, n->keys[i]);
        struct where iw = { w->path, n->key_lines[i], field };
        bool scalar = strcmp(n->keys[i], "storage-driver") == 0;
        json_t *v = scalar ? (want(n->items[i], LNODE_SCALAR, &iw, err) < 0
                                  ? NULL
                                  : json_string(n->items[i]->scalar))
                           : string_list(n->items[i], &iw, err);
        if (v == NULL) {
            json_decref(o);
            return NULL;
        }
        json_object_set_new(o, n->keys[i], v);
    }
    return o;
}

/* setup.files: [{src, dest}] or ["src:dest"]. */
static json_t *parse_files(const struct lnode *n, const struct where *w, struct merr *err)
{
    static const char *const keys[] = { "src", "dest", NULL };
    if (want(n, LNODE_SEQ, w, err) < 0)
        return NULL;
    json_t *a = json_array();
    for (size_t i = 0; i < n->n; i++) {
        const struct lnode *it = n->items[i];
        struct where iw = { w->path, it->line, w->field };
        const char *src = NULL, *dest = NULL;
        auto_free char *copy = NULL;
        if (it->kind == LNODE_SCALAR) {
            copy = xstrdup(it->scalar);
            char *colon = strrchr(copy, ':');
            if (colon != NULL) {
                *colon = '\0';
                src = copy;
                dest = colon + 1;
            }
        } else if (it->kind == LNODE_MAP) {
            if (only_keys(it, keys, &iw, err) < 0) {
                json_decref(a);
                return NULL;
            }
            const struct lnode *s = lnode_get(it, "src"), *d = lnode_get(it, "dest");
            src = s != NULL && s->kind == LNODE_SCALAR ? s->scalar : NULL;
            dest = d != NULL && d->kind == LNODE_SCALAR ? d->scalar : NULL;
        }
        if (src == NULL || dest == NULL || src[0] == '\0' || dest[0] != '/') {
            json_decref(a);
            return fail(&iw, err, "expected {src: PATH, dest: /ABSOLUTE/PATH} or \"PATH:/ABSOLUTE/PATH\""),
                   NULL;
        }
        json_array_append_new(a, json_pack("{s:s,s:s}", "src", src, "dest", dest));
    }
    return a;
}

static json_t *parse_setup(const struct lnode *n, const struct where *w, struct merr *err)
{
    static const char *const keys[] = { "files", "run", "images", NULL };
    if (want(n, LNODE_MAP, w, err) < 0 || only_keys(n, keys, w, err) < 0)
        return NULL;
    json_t *o = json_object();
    for (size_t i = 0; i < n->n; i++) {
        auto_free char *field = xasprintf("%s.%s", w->field, n->keys[i]);
        struct where iw = { w->path, n->key_lines[i], field };
        json_t *v = strcmp(n->keys[i], "files") == 0 ? parse_files(n->items[i], &iw, err)
                                                      : string_list(n->items[i], &iw, err);
        if (v == NULL) {
            json_decref(o);
            return NULL;
        }
        json_object_set_new(o, n->keys[i], v);
    }
    return o;
}

/* The spec fields of a host (or of defaults) as JSON; count and depends_on are read apart. */
static json_t *parse_spec(const struct lnode *n, bool is_defaults, const struct where *w,
                          struct merr *err)
{
    static const char *const host_keys[] = { "driver", "flags", "engine", "labels", "setup",
                                             "depends_on", "count", NULL };
    if (want(n, LNODE_MAP, w, err) < 0 ||
        only_keys(n, host_keys, w, err) < 0)
        return NULL;
    json_t *spec = json_object();
    for (size_t i = 0; i < n->n; i++) {
        const char *k = n->keys[i];
        const struct lnode *v = n->items[i];
        auto_free char *field = xasprintf("%s.%s", w->field, k);
        struct where iw = { w->path, n->key_lines[i], field };
        if (is_defaults && (strcmp(k, "depends_on") == 0 || strcmp(k, "count") == 0)) {
            json_decref(spec);
            return fail(&iw, err, "belongs to a host, not to defaults"), NULL;
        }
        json_t *jv = NULL;
        if (strcmp(k, "driver") == 0)
            jv = want(v, LNODE_SCALAR, &iw, err) < 0 ? NULL : json_string(v->scalar);
        else if (strcmp(k, "flags") == 0)
            jv = string_map(v, true, &iw, err);
        else if (strcmp(k, "labels") == 0)
            jv = string_map(v, false, &iw, err);
        else if (strcmp(k, "engine") == 0)
            jv = parse_engine(v, &iw, err);
        else if (strcmp(k, "setup") == 0)
            jv = parse_setup(v, &iw, err);
        else
            continue; /* depends_on, count: read by the caller */
        if (jv == NULL) {
            json_decref(spec);
            return NULL;
        }
        json_object_set_new(spec, k, jv);
    }
    return spec;
}

/* defaults, then the host: mappings merged key by key, the host's value winning. */
static json_t *merge_spec(const json_t *defaults, const json_t *host)
{
    json_t *out = json_deep_copy(defaults);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)host, k, v) {
        json_t *base = json_object_get(out, k);
        if (json_is_object(base) && json_is_object(v))
            json_object_update(base, v); /* lists (setup.run, engine.opts, ...) replaced whole */
        else
            json_object_set(out, k, v);
    }
    return out;
}

void lab_free(struct lab *lab)
{
    if (lab == NULL)
        return;
    for (size_t i = 0; i < lab->n_hosts; i++) {
        free(lab->hosts[i].name);
        free(lab->hosts[i].group);
        strv_free(lab->hosts[i].depends_on);
        json_decref(lab->hosts[i].spec);
    }
    free(lab->hosts);
    free(lab->name);
    free(lab->path);
    free(lab->dir);
    free(lab);
}

const struct lab_host *lab_find(const struct lab *lab, const char *name)
{
    for (size_t i = 0; i < lab->n_hosts; i++)
        if (strcmp(lab->hosts[i].name, name) == 0)
            return &lab->hosts[i];
    return NULL;
}

static int host_count(const struct lnode *host, const struct where *w, long *count,
                      struct merr *err)
{
    const struct lnode *c = lnode_get(host, "count");
    *count = 0;
    if (c == NULL)
        return 0;
    char *end = NULL;
    long n = c->kind == LNODE_SCALAR ? strtol(c->scalar, &end, 10) : 0;
    if (c->kind != LNODE_SCALAR || end == c->scalar || *end != '\0' || n < 1 ||
        n > LAB_MAX_HOSTS)
        return fail(w, err, "count must be a number from 1 to %d", LAB_MAX_HOSTS);
    if (strchr(w->field, '{') != NULL)
        return fail(w, err, "use either a {..} pattern or count, not both");
    *count = n;
    return 0;
}

/* The machine names a hosts key stands for. */
static char **host_names(const char *key, long count, const struct where *w, struct merr *err)
{
    if (count == 0) {
        struct merr e = MERR_INIT;
        char **names = lab_expand(key, LAB_MAX_HOSTS, &e);
        if (names == NULL)
            fail(w, err, "%s", e.msg);
        return names;
    }
    char **names = NULL;
    for (long i = 1; i <= count; i++) {
        auto_free char *name = xasprintf("%s-%ld", key, i);
        names = strv_push(names, name);
    }
    return names;
}

static int add_hosts(struct lab *lab, const char *key, int line, const struct lnode *hn,
                     const json_t *defaults, struct merr *err)
{
    auto_free char *field = xasprintf("hosts.%s", key);
    struct where w = { lab->path, line, field };
    long count;
    if (host_count(hn, &w, &count, err) < 0)
        return -1;
    json_t *own = parse_spec(hn, false, &w, err);
    if (own == NULL)
        return -1;
    json_t *spec = merge_spec(defaults, own);
    json_decref(own);
    if (json_string_value(json_object_get(spec, "driver")) == NULL) {
        json_decref(spec);
        return fail(&w, err, "no driver (give one here or in defaults)");
    }
    json_t *labels = json_object_get(spec, "labels");
    if (labels == NULL)
        json_object_set_new(spec, "labels", labels = json_object());
    json_object_set_new(labels, "lab", json_string(lab->name));
    auto_strv char **names = host_names(key, count, &w, err);
    for (size_t i = 0; names != NULL && names[i] != NULL; i++) {
        struct merr e = MERR_INIT;
        if (machine_validate_name(names[i], &e) < 0 || lab_find(lab, names[i]) != NULL ||
            lab->n_hosts >= LAB_MAX_HOSTS) {
            json_decref(spec);
            return lab->n_hosts >= LAB_MAX_HOSTS ? fail(&w, err, "more than %d hosts", LAB_MAX_HOSTS)
                   : e.code != MERR_OK          ? fail(&w, err, "'%s': %s", names[i], e.msg)
                                                : fail(&w, err, "host '%s' is defined twice", names[i]);
        }
        struct lab_host *h = &lab->hosts[lab->n_hosts++];
        h->name = xstrdup(names[i]);
        h->group = xstrdup(key);
        h->line = line;
        h->spec = json_deep_copy(spec);
    }
    json_decref(spec);
    return names == NULL ? -1 : 0;
}

/* depends_on entries name a host, or a hosts key (every host it made). */
static int resolve_deps(struct lab *lab, const struct lnode *hosts, struct merr *err)
{
    for (size_t i = 0; i < hosts->n; i++) {
        const struct lnode *d = lnode_get(hosts->items[i], "depends_on");
        if (d == NULL)
            continue;
        auto_free char *field = xasprintf("hosts.%s.depends_on", hosts->keys[i]);
        struct where w = { lab->path, d->line > 0 ? d->line : hosts->key_lines[i], field };
        json_t *list = string_list(d, &w, err);
        if (list == NULL)
            return -1;
        auto_strv char **deps = NULL;
        size_t j;
        json_t *v;
        json_array_foreach(list, j, v) {
            const char *dep = json_string_value(v);
            bool found = false;
            for (size_t k = 0; k < lab->n_hosts; k++)
                if (strcmp(lab->hosts[k].name, dep) == 0 || strcmp(lab->hosts[k].group, dep) == 0) {
                    deps = strv_push(deps, lab->hosts[k].name);
                    found = true;
                }
            if (!found) {
                fail(&w, err, "unknown host '%s'", dep);
                json_decref(list);
                return -1;
            }
        }
        json_decref(list);
        for (size_t k = 0; k < lab->n_hosts; k++) {
            struct lab_host *h = &lab->hosts[k];
            if (strcmp(h->group, hosts->keys[i]) != 0)
                continue;
            for (size_t m = 0; deps[m] != NULL; m++) {
                if (strcmp(deps[m], h->name) == 0)
                    return fail(&w, err, "host '%s' depends on itself", h->name);
                h->depends_on = strv_push(h->depends_on, deps[m]);
            }
        }
    }
    return 0;
}

static int parse_root(struct lab *lab, const struct lnode *root, struct merr *err)
{
    static const char *const keys[] = { "name", "defaults", "hosts", NULL };
    struct where w = { lab->path, root->line, "lab" };
    if (want(root, LNODE_MAP, &w, err) < 0 || only_keys(root, keys, &w, err) < 0)
        return -1;
    const struct lnode *name = lnode_get(root, "name"), *hosts = lnode_get(root, "hosts");
    struct merr e = MERR_INIT;
    if (name == NULL || name->kind != LNODE_SCALAR || machine_validate_name(name->scalar, &e) < 0) {
        struct where nw = { lab->path, name != NULL ? name->line : 0, "name" };
        return fail(&nw, err, "the lab needs a name (letters, digits, '.', '-')");
    }
    lab->name = xstrdup(name->scalar);
    struct where hw = { lab->path, hosts != NULL ? hosts->line : 0, "hosts" };
    if (hosts == NULL || want(hosts, LNODE_MAP, &hw, err) < 0 || hosts->n == 0)
        return hosts != NULL && hosts->kind != LNODE_MAP ? -1 : fail(&hw, err, "no hosts");
    const struct lnode *dn = lnode_get(root, "defaults");
    struct where dw = { lab->path, dn != NULL ? dn->line : 0, "defaults" };
    json_t *defaults = dn != NULL ? parse_spec(dn, true, &dw, err) : json_object();
    if (defaults == NULL)
        return -1;
    lab->hosts = xcalloc(LAB_MAX_HOSTS, sizeof *lab->hosts);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < hosts->n; i++)
        rc = add_hosts(lab, hosts->keys[i], hosts->key_lines[i], hosts->items[i], defaults, err);
    json_decref(defaults);
    if (rc == 0)
        rc = resolve_deps(lab, hosts, err);
    if (rc == 0) {
        auto_free size_t *order = xcalloc(lab->n_hosts, sizeof *order);
        rc = lab_order(lab, order, err);
        if (rc < 0)
            merr_prefix(err, "%s: hosts", lab->path);
    }
    return rc;
}

struct lab *lab_parse(const char *text, size_t len, const char *path, struct merr *err)
{
    auto_lnode struct lnode *root = lnode_parse(text, len, path, err);
    if (root == NULL)
        return NULL;
    auto_lab struct lab *lab = xcalloc(1, sizeof *lab);
    lab->path = xstrdup(path);
    auto_free char *copy = xstrdup(path);
    lab->dir = xstrdup(dirname(copy));
    if (parse_root(lab, root, err) < 0)
        return NULL;
    return steal_pointer(&lab);
}

struct lab *lab_load(const char *path, struct merr *err)
{
    auto_free char *text = NULL;
    size_t len = 0;
    if (fs_read_file(path, LAB_FILE_MAX, &text, &len, err) < 0) {
        merr_prefix(err, "lab file");
        return NULL;
    }
    return lab_parse(text, len, path, err);
}
