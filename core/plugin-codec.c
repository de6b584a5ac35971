/* The driver-plugin protocol's messages (docs/driver-plugins.md): pure functions on text. */
#include "plugin.h"

#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "fsutil.h"
#include "jsonutil.h"
#include "machine.h"
#include "strv.h"

void plugin_info_release(struct plugin_info *info)
{
    free(info->name);
    free(info->version);
    free(info->description);
    strv_free(info->capabilities);
    strv_free(info->fields);
    memset(info, 0, sizeof *info);
}

bool plugin_info_can(const struct plugin_info *info, const char *verb)
{
    for (char **c = info->capabilities; c != NULL && *c != NULL; c++)
        if (strcmp(*c, verb) == 0)
            return true;
    return false;
}

void plugin_reply_release(struct plugin_reply *r)
{
    plugin_info_release(&r->info);
    strv_free(r->progress);
    json_decref(r->result);
    memset(r, 0, sizeof *r);
}

static const struct {
    const char *name;
    enum merr_code code;
} error_codes[] = {
    { "invalid", MERR_INVALID },         { "not_found", MERR_NOT_FOUND },
    { "exists", MERR_EXISTS },           { "unsupported", MERR_UNSUPPORTED },
    { "timeout", MERR_TIMEOUT },         { "unreachable", MERR_UNREACHABLE },
    { "auth", MERR_AUTH },               { "permission", MERR_PERM },
    { "precreate", MERR_PRECREATE },     { "remote", MERR_REMOTE },
    { "busy", MERR_BUSY },               { "io", MERR_IO },
};

enum merr_code plugin_error_code(const char *code)
{
    for (size_t i = 0; code != NULL && i < sizeof error_codes / sizeof error_codes[0]; i++)
        if (strcmp(error_codes[i].name, code) == 0)
            return error_codes[i].code;
    return MERR_REMOTE;
}

char *plugin_request(const char *verb, const struct machine *m, const char *ssh_public_key,
                     int timeout_ms)
{
    auto_json json_t *req = json_object();
    json_object_set_new(req, "protocol", json_integer(PLUGIN_PROTOCOL));
    json_object_set_new(req, "verb", json_string(verb));
    json_object_set_new(req, "timeout_ms", json_integer(timeout_ms));
    if (m != NULL) {
        json_t *jm = json_object();
        json_object_set_new(jm, "name", json_string(m->name));
        json_object_set_new(jm, "fields",
                            m->driver != NULL ? json_deep_copy(m->driver) : json_object());
        json_object_set_new(jm, "secrets",
                            m->secrets != NULL ? json_deep_copy(m->secrets) : json_object());
        json_object_set_new(req, "machine", jm);
    }
    if (ssh_public_key != NULL)
        json_object_set_new(req, "ssh_public_key", json_string(ssh_public_key));
    char *text = json_dumps(req, JSON_COMPACT | JSON_SORT_KEYS);
    if (text == NULL)
        abort();
    char *line = xasprintf("%s\n", text);
    free(text);
    return line;
}

/* Every member of o must be among allowed (NULL-terminated). */
static int only_members(const char *plugin, const char *what, const json_t *o,
                        const char *const *allowed, struct merr *err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)o, key, v) {
        bool ok = false;
        for (size_t i = 0; allowed[i] != NULL && !ok; i++)
            ok = strcmp(allowed[i], key) == 0;
        if (!ok)
            return merr_set(err, MERR_PROTOCOL, 0, "driver plugin '%s' sent an unknown field '%s' in %s",
                            plugin, key, what);
    }
    return 0;
}

static char **string_array(const json_t *a, bool *ok)
{
    char **v = xcalloc(1, sizeof(char *));
    *ok = a == NULL || json_is_array(a);
    size_t i;
    json_t *e;
    json_array_foreach(a, i, e) {
        if (!json_is_string(e))
            *ok = false;
        else
            v = strv_push(v, json_string_value(e));
    }
    return v;
}

static int parse_handshake(const char *plugin, const json_t *h, struct plugin_info *out,
                           struct merr *err)
{
    static const char *const members[] = { "protocol", "name", "version", "description",
                                           "capabilities", "fields", "ssh", NULL };
    if (!json_is_object(h))
        return merr_set(err, MERR_PROTOCOL, 0, "driver plugin '%s' did not start with its handshake",
                        plugin);
    json_t *proto = json_object_get(h, "protocol");
    if (!json_is_integer(proto))
        return merr_set(err, MERR_PROTOCOL, 0, "driver plugin '%s' did not start with its handshake",
                        plugin);
    if (json_integer_value(proto) != PLUGIN_PROTOCOL)
        return merr_set(err, MERR_PROTOCOL, 0,
                        "driver plugin '%s' speaks protocol %lld, machine speaks protocol %d",
                        plugin, (long long)json_integer_value(proto), PLUGIN_PROTOCOL);
    if (only_members(plugin, "its handshake", h, members, err) < 0)
        return -1;
    const char *name = json_string_value(json_object_get(h, "name"));
    const char *version = json_string_value(json_object_get(h, "version"));
    if (name == NULL || version == NULL)
        return merr_set(err, MERR_PROTOCOL, 0, "driver plugin '%s' sent a handshake without name or version",
                        plugin);
    if (strcmp(name, plugin) != 0)
        return merr_set(err, MERR_PROTOCOL, 0, "driver plugin '%s' calls itself '%s'", plugin, name);
    json_t *ssh = json_object_get(h, "ssh");
    if (ssh != NULL && !json_is_boolean(ssh))
        return merr_set(err, MERR_PROTOCOL, 0, "driver plugin '%s': handshake 'ssh' is not a boolean",
                        plugin);
    bool ok_caps, ok_fields;
    out->capabilities = string_array(json_object_get(h, "capabilities"), &ok_caps);
    out->fields = string_array(json_object_get(h, "fields"), &ok_fields);
    out->name = xstrdup(name);
    out->version = xstrdup(version);
    const char *desc = json_string_value(json_object_get(h, "description"));
    out->description = xstrdup(desc != NULL ? desc : "");
    out->uses_ssh = ssh == NULL || json_is_true(ssh);
    if (!ok_caps || !ok_fields)
        return merr_set(err, MERR_PROTOCOL, 0,
                        "driver plugin '%s': handshake capabilities and fields must be lists of strings",
                        plugin);
    return 0;
}

/* One line after the handshake: 1 for progress, 0 for the final answer, < 0 on error. */
static int parse_line(const char *plugin, const json_t *msg, struct plugin_reply *out,
                      struct merr *err)
{
    if (!json_is_object(msg) || json_object_size(msg) != 1)
        return merr_set(err, MERR_PROTOCOL, 0,
                        "driver plugin '%s' sent a message that is not one of progress, result, error",
                        plugin);
    json_t *v;
    if ((v = json_object_get(msg, "progress")) != NULL) {
        if (!json_is_string(v))
            return merr_set(err, MERR_PROTOCOL, 0, "driver plugin '%s': progress is not a string", plugin);
        out->progress = strv_push(out->progress, json_string_value(v));
        return 1;
    }
    if ((v = json_object_get(msg, "result")) != NULL) {
        if (!json_is_object(v))
            return merr_set(err, MERR_PROTOCOL, 0, "driver plugin '%s': result is not an object", plugin);
        out->result = json_incref(v);
        return 0;
    }
    if ((v = json_object_get(msg, "error")) != NULL) {
        static const char *const members[] = { "code", "message", NULL };
        const char *code = json_string_value(json_object_get(v, "code"));
        const char *text = json_string_value(json_object_get(v, "message"));
        if (!json_is_object(v) || code == NULL || text == NULL)
            return merr_set(err, MERR_PROTOCOL, 0,
                            "driver plugin '%s': error needs a code and a message", plugin);
        if (only_members(plugin, "an error", v, members, err) < 0)
            return -1;
        return merr_set(err, plugin_error_code(code), 0, "driver plugin '%s': %s", plugin, text);
    }
    const char *key = json_object_iter_key(json_object_iter((json_t *)msg));
    return merr_set(err, MERR_PROTOCOL, 0, "driver plugin '%s' sent an unknown message '%s'", plugin,
                    key);
}

int plugin_parse_reply(const char *name, const char *text, struct plugin_reply *out,
                       struct merr *err)
{
    memset(out, 0, sizeof *out);
    out->progress = xcalloc(1, sizeof(char *));
    int state = -1; /* -1: handshake next, 1: progress or answer, 0: answered */
    const char *p = text;
    while (*p != '\0') {
        size_t len = strcspn(p, "\n");
        const char *line = p;
        p += len + (p[len] == '\n');
        if (strspn(line, " \t\r") >= len)
            continue;
        if (state == 0)
            return merr_set(err, MERR_PROTOCOL, 0, "driver plugin '%s' wrote after its answer", name);
        json_error_t jerr;
        auto_json json_t *msg = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
        if (msg == NULL)
            return merr_set(err, MERR_PROTOCOL, 0, "driver plugin '%s' wrote a line that is not JSON: '%.*s'",
                            name, (int)(len > 80 ? 80 : len), line);
        int rc = state < 0 ? parse_handshake(name, msg, &out->info, err)
                           : parse_line(name, msg, out, err);
        if (rc < 0)
            return -1;
        state = state < 0 ? 1 : rc;
    }
    if (state != 0)
        return merr_set(err, MERR_PROTOCOL, 0, "driver plugin '%s' ended without an answer", name);
    return 0;
}

void plugin_flags_free(struct driver_flag *flags)
{
    for (struct driver_flag *f = flags; f != NULL && f->name != NULL; f++) {
        free((char *)f->name);
        free((char *)f->env);
        free((char *)f->def);
        free((char *)f->help);
        free((char *)f->key);
        strv_free((char **)f->choices);
    }
    free(flags);
}

static const char *const flag_types[] = { [DFLAG_STRING] = "string", [DFLAG_INT] = "int",
                                          [DFLAG_BOOL] = "bool", [DFLAG_STRING_LIST] = "list" };

static int import_flag(const char *plugin, const json_t *j, struct driver_flag *f, struct merr *err)
{
    static const char *const members[] = { "name", "env", "default", "help", "key", "type",
                                           "required", "secret", "min", "max", "choices", NULL };
    if (!json_is_object(j))
        return merr_set(err, MERR_PROTOCOL, 0, "driver plugin '%s': a flag is not an object", plugin);
    if (only_members(plugin, "a flag", j, members, err) < 0)
        return -1;
    const char *name = json_string_value(json_object_get(j, "name"));
    const char *key = json_string_value(json_object_get(j, "key"));
    const char *type = json_string_value(json_object_get(j, "type"));
    if (name == NULL || key == NULL || name[0] == '\0' || key[0] == '\0')
        return merr_set(err, MERR_PROTOCOL, 0, "driver plugin '%s': a flag needs a name and a key", plugin);
    if (strncmp(name, plugin, strlen(plugin)) != 0 || name[strlen(plugin)] != '-')
        return merr_set(err, MERR_PROTOCOL, 0, "driver plugin '%s': flag '%s' must start with '%s-'",
                        plugin, name, plugin);
    int t = -1;
    for (size_t i = 0; i < sizeof flag_types / sizeof flag_types[0]; i++)
        if (strcmp(flag_types[i], type != NULL ? type : "string") == 0)
            t = (int)i;
    if (t < 0)
        return merr_set(err, MERR_PROTOCOL, 0, "driver plugin '%s': flag '%s' has an unknown type '%s'",
                        plugin, name, type);
    const json_t *def = json_object_get(j, "default");
    if (def != NULL && !json_is_string(def))
        return merr_set(err, MERR_PROTOCOL, 0, "driver plugin '%s': the default of '%s' is not a string",
                        plugin, name);
    const char *env = json_string_value(json_object_get(j, "env"));
    const char *help = json_string_value(json_object_get(j, "help"));
    bool ok = true;
    auto_strv char **choices = string_array(json_object_get(j, "choices"), &ok);
    if (!ok)
        return merr_set(err, MERR_PROTOCOL, 0, "driver plugin '%s': choices of '%s' are not strings",
                        plugin, name);
    *f = (struct driver_flag){
        .name = xstrdup(name),
        .key = xstrdup(key),
        .env = env != NULL ? xstrdup(env) : NULL,
        .def = def != NULL ? xstrdup(json_string_value(def)) : NULL,
        .help = xstrdup(help != NULL ? help : ""),
        .type = (enum driver_flag_type)t,
        .required = json_is_true(json_object_get(j, "required")),
        .secret = json_is_true(json_object_get(j, "secret")),
        .min = json_integer_value(json_object_get(j, "min")),
        .max = json_integer_value(json_object_get(j, "max")),
        .choices = choices[0] != NULL ? (const char *const *)steal_pointer(&choices) : NULL,
    };
    return 0;
}

struct driver_flag *plugin_flags_import(const char *name, const json_t *result, struct merr *err)
{
    const json_t *a = json_object_get(result, "flags");
    if (!json_is_array(a)) {
        merr_set(err, MERR_PROTOCOL, 0, "driver plugin '%s': the flags result has no list 'flags'", name);
        return NULL;
    }
    size_t n = json_array_size(a);
    struct driver_flag *flags = xcalloc(n + 1, sizeof *flags);
    for (size_t i = 0; i < n; i++) {
        if (import_flag(name, json_array_get(a, i), &flags[i], err) < 0) {
            plugin_flags_free(flags);
            return NULL;
        }
    }
    return flags;
}

static const char *const standard_fields[] = { DKEY_IP, DKEY_SSH_USER, DKEY_SSH_PORT,
                                               DKEY_ENGINE_PORT, NULL };

static bool may_set(const struct plugin_info *info, const char *key)
{
    for (size_t i = 0; standard_fields[i] != NULL; i++)
        if (strcmp(standard_fields[i], key) == 0)
            return true;
    for (char **f = info->fields; f != NULL && *f != NULL; f++)
        if (strcmp(*f, key) == 0)
            return true;
    return false;
}

int plugin_apply_fields(const struct plugin_info *info, const json_t *result, struct machine *m,
                        struct merr *err)
{
    const json_t *fields = json_object_get(result, "fields");
    if (fields == NULL)
        return 0;
    if (!json_is_object(fields))
        return merr_set(err, MERR_PROTOCOL, 0, "driver plugin '%s': 'fields' is not an object", info->name);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)fields, key, v) {
        if (m->secrets != NULL && json_object_get(m->secrets, key) != NULL)
            return merr_set(err, MERR_PROTOCOL, 0,
                            "driver plugin '%s' sent back the secret field '%s' (refused)", info->name, key);
        if (!may_set(info, key))
            return merr_set(err, MERR_PROTOCOL, 0, "driver plugin '%s' sent an unknown field '%s'",
                            info->name, key);
        if (!json_is_string(v) && !json_is_integer(v) && !json_is_boolean(v) && !json_is_null(v))
            return merr_set(err, MERR_PROTOCOL, 0,
                            "driver plugin '%s': field '%s' is not a string, integer, boolean or null",
                            info->name, key);
    }
    if (m->driver == NULL)
        m->driver = json_object();
    json_object_foreach((json_t *)fields, key, v) {
        if (json_is_null(v))
            json_object_del(m->driver, key);
        else
            json_object_set(m->driver, key, v);
    }
    return 0;
}
