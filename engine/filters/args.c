/* The `filters` query parameter as moby's filters.Args: parsed once by the API, read by the
 * modules that filter (events, volumes, images, containers) without their including the API. */
#include "filters/args.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

void api_filters_release(struct api_filters *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->n; i++) {
        free(f->items[i].name);
        char **v = f->items[i].values;
        cleanup_strvp(&v);
    }
    free(f->items);
    f->items = NULL;
    f->n = 0;
}

static int filter_add_value(struct api_filter *item, size_t *n_values, const char *value,
                            struct merr *err)
{
    char **grown = realloc(item->values, (*n_values + 2) * sizeof *grown);
    if (grown == NULL)
        return merr_set(err, MERR_NOMEM, 0, "out of memory");
    item->values = grown;
    grown[*n_values] = strdup(value);
    grown[*n_values + 1] = NULL;
    if (grown[*n_values] == NULL)
        return merr_set(err, MERR_NOMEM, 0, "out of memory");
    (*n_values)++;
    return 0;
}

static int filter_parse_item(const char *name, json_t *vals, struct api_filter *item,
                             struct merr *err)
{
    size_t n_values = 0;
    item->name = strdup(name);
    item->values = calloc(1, sizeof *item->values);
    if (item->name == NULL || item->values == NULL)
        return merr_set(err, MERR_NOMEM, 0, "out of memory");
    if (json_is_object(vals)) {
        const char *value;
        json_t *flag;
        json_object_foreach (vals, value, flag) {
            if (!json_is_boolean(flag))
                return merr_set(err, MERR_INVALID, 0, "invalid filter '%s'", name);
            if (json_is_true(flag) && filter_add_value(item, &n_values, value, err) < 0)
                return -1;
        }
        return 0;
    }
    if (json_is_array(vals)) { /* legacy format: {"name": ["value"]} */
        size_t i;
        json_t *v;
        json_array_foreach (vals, i, v) {
            if (!json_is_string(v))
                return merr_set(err, MERR_INVALID, 0, "invalid filter '%s'", name);
            if (filter_add_value(item, &n_values, json_string_value(v), err) < 0)
                return -1;
        }
        return 0;
    }
    return merr_set(err, MERR_INVALID, 0, "invalid filter '%s'", name);
}

int api_filters_parse(const char *text, struct api_filters *out, struct merr *err)
{
    out->items = NULL;
    out->n = 0;
    if (text == NULL || *text == '\0')
        return 0;
    json_error_t jerr;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return merr_set(err, MERR_INVALID, 0, "invalid filters '%s': %s", text, jerr.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return merr_set(err, MERR_INVALID, 0, "invalid filters '%s': not a JSON object", text);
    }
    size_t n = json_object_size(root);
    out->items = calloc(n != 0 ? n : 1, sizeof *out->items);
    if (out->items == NULL) {
        json_decref(root);
        return merr_set(err, MERR_NOMEM, 0, "out of memory");
    }
    const char *name;
    json_t *vals;
    json_object_foreach (root, name, vals) {
        struct api_filter *item = &out->items[out->n++];
        if (filter_parse_item(name, vals, item, err) < 0) {
            json_decref(root);
            api_filters_release(out);
            return -1;
        }
    }
    json_decref(root);
    return 0;
}

char *const *api_filters_get(const struct api_filters *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->items[i].name, name) == 0)
            return f->items[i].values;
    return NULL;
}

bool api_filters_match(const struct api_filters *f, const char *name, const char *value)
{
    char *const *values = api_filters_get(f, name);
    if (values == NULL)
        return true;
    for (; *values != NULL; values++)
        if (value != NULL && strcmp(*values, value) == 0)
            return true;
    return false;
}

int api_filters_validate(const struct api_filters *f, const char *const *allowed, struct merr *err)
{
    for (size_t i = 0; i < f->n; i++) {
        bool ok = false;
        for (const char *const *a = allowed; *a != NULL && !ok; a++)
            ok = strcmp(*a, f->items[i].name) == 0;
        if (!ok)
            return merr_set(err, MERR_INVALID, 0, "invalid filter '%s'", f->items[i].name);
    }
    return 0;
}
