/* Declared query parameters of the routes: the router refuses a parameter the engine cannot
 * carry out instead of dropping it (docs/engine-api.md, "Query parameters"). Pure. */
#include "api-priv.h"

#include <string.h>

const struct api_param api_params_none[] = { API_PARAMS_END };

const struct api_param api_params_unreached[] = {
    { "*", API_PARAM_UNREACHED, NULL, NULL },
    API_PARAMS_END,
};

const char *api_param_use_name(enum api_param_use use)
{
    switch (use) {
    case API_PARAM_HONOURED:
        return "honoured";
    case API_PARAM_REFUSED:
        return "refused";
    case API_PARAM_IGNORED:
        return "ignored-as-dockerd";
    case API_PARAM_UNREACHED:
        return "unreached";
    }
    return "?";
}

const struct api_param *api_params_find(const struct api_param *params, const char *name)
{
    for (const struct api_param *p = params; p != NULL && p->name != NULL; p++)
        if (strcmp(p->name, name) == 0 || strcmp(p->name, "*") == 0)
            return p;
    return NULL;
}

/* value is one of the '|'-separated words of list. */
static bool listed(const char *list, const char *value)
{
    size_t len = strlen(value);
    for (const char *w = list; w != NULL && *w != '\0';) {
        const char *end = strchr(w, '|');
        size_t wl = end != NULL ? (size_t)(end - w) : strlen(w);
        if (wl == len && strncmp(w, value, len) == 0)
            return true;
        w = end != NULL ? end + 1 : NULL;
    }
    return false;
}

bool api_param_is_default(const struct api_param *p, const char *value)
{
    if (value == NULL || !api_bool_value(value))
        return true; /* "", "0", "no", "false", "none" */
    static const char *const empty_json[] = { "null", "[]", "{}" };
    for (size_t i = 0; i < sizeof empty_json / sizeof empty_json[0]; i++)
        if (strcmp(value, empty_json[i]) == 0)
            return true;
    return listed(p->accepted, value);
}

int api_params_check(const struct api_param *params, const struct api_kv *query, size_t n_query,
                     struct merr *err)
{
    for (size_t i = 0; i < n_query; i++) {
        const struct api_param *p = api_params_find(params, query[i].key);
        if (p == NULL || p->use != API_PARAM_REFUSED || api_param_is_default(p, query[i].value))
            continue;
        return merr_set(err, MERR_INVALID, 0,
                        "query parameter '%s' is not supported by machine-engine%s%s",
                        query[i].key, p->note != NULL ? ": " : "",
                        p->note != NULL ? p->note : "");
    }
    return 0;
}
