#include "machine.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fsutil.h"

const char *machine_state_name(enum machine_state s)
{
    static const char *const names[] = {
        [MSTATE_NONE] = "",           [MSTATE_RUNNING] = "Running", [MSTATE_PAUSED] = "Paused",
        [MSTATE_SAVED] = "Saved",     [MSTATE_STOPPED] = "Stopped", [MSTATE_STOPPING] = "Stopping",
        [MSTATE_STARTING] = "Starting", [MSTATE_ERROR] = "Error",   [MSTATE_TIMEOUT] = "Timeout",
    };
    if ((size_t)s < sizeof names / sizeof names[0])
        return names[s];
    return "Error";
}

struct machine *machine_new(const char *name, const char *driver_name)
{
    struct machine *m = xcalloc(1, sizeof *m);
    m->config_version = MACHINE_CONFIG_VERSION;
    m->name = xstrdup(name);
    m->driver_name = xstrdup(driver_name);
    m->driver = json_object();
    m->status = xstrdup(MACHINE_STATUS_CREATING);
    m->engine.port = MACHINE_DEFAULT_ENGINE_PORT;
    return m;
}


static void engine_options_clear(struct engine_options *e)
{
    strv_free(e->opts);
    strv_free(e->env);
    strv_free(e->labels);
    strv_free(e->insecure_registry);
    strv_free(e->registry_mirror);
    free(e->storage_driver);
    memset(e, 0, sizeof *e);
}

void machine_free(struct machine *m)
{
    if (m == NULL)
        return;
    free(m->name);
    free(m->driver_name);
    json_decref(m->driver);
    free(m->status);
    free(m->error);
    free(m->created_at);
    os_release_clear(&m->os);
    engine_options_clear(&m->engine);
    strv_free(m->auth.sans);
    json_decref(m->lab);
    json_decref(m->secrets);
    free(m);
}

void machine_set_status(struct machine *m, const char *status, const char *error)
{
    free(m->status);
    m->status = xstrdup(status);
    free(m->error);
    m->error = error != NULL ? xstrdup(error) : NULL;
}

const char *machine_driver_str(const struct machine *m, const char *key)
{
    return json_string_value(json_object_get(m->driver, key));
}

long long machine_driver_int(const struct machine *m, const char *key, long long def)
{
    json_t *v = json_object_get(m->driver, key);
    return json_is_integer(v) ? json_integer_value(v) : def;
}

void machine_driver_set_str(struct machine *m, const char *key, const char *value)
{
    json_object_set_new(m->driver, key, json_string(value != NULL ? value : ""));
}

void machine_driver_set_int(struct machine *m, const char *key, long long value)
{
    json_object_set_new(m->driver, key, json_integer(value));
}

int machine_validate_name(const char *name, struct merr *err)
{
    size_t len = name != NULL ? strlen(name) : 0;
    if (len == 0)
        return merr_set(err, MERR_INVALID, 0, "machine name must not be empty");
    if (len > 63)
        return merr_set(err, MERR_INVALID, 0, "invalid machine name '%s': longer than 63 characters",
                        name);
    /* docker-machine's wording: scripts and its test suite match it */
    bool ok = isalnum((unsigned char)name[0]);
    for (size_t i = 0; ok && i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        ok = isascii(c) && (isalnum(c) || c == '.' || c == '-');
    }
    if (!ok)
        return merr_set(err, MERR_INVALID, 0,
                        "Invalid hostname specified. Allowed hostname chars are: 0-9a-zA-Z . -");
    return 0;
}

/* ---- JSON ---- */

static json_t *strv_to_json(char *const *v)
{
    json_t *a = json_array();
    for (size_t i = 0; v != NULL && v[i] != NULL; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static json_t *str_or_empty(const char *s)
{
    return json_string(s != NULL ? s : "");
}

json_t *machine_to_json(const struct machine *m)
{
    json_t *engine = json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:i}", "Opts", strv_to_json(m->engine.opts),
                               "Env", strv_to_json(m->engine.env), "Labels",
                               strv_to_json(m->engine.labels), "InsecureRegistry",
                               strv_to_json(m->engine.insecure_registry), "RegistryMirror",
                               strv_to_json(m->engine.registry_mirror), "StorageDriver",
                               str_or_empty(m->engine.storage_driver), "Port", m->engine.port);
    json_t *auth = json_pack("{s:o}", "ServerCertSANs", strv_to_json(m->auth.sans));
    json_t *os = json_pack("{s:o,s:o,s:o,s:o}", "ID", str_or_empty(m->os.id), "IDLike",
                           str_or_empty(m->os.id_like), "VersionID", str_or_empty(m->os.version_id),
                           "PrettyName", str_or_empty(m->os.pretty_name));
    json_t *root = json_pack("{s:i,s:s,s:s,s:O,s:{s:s,s:o,s:o},s:o,s:{s:o,s:o}}", "ConfigVersion",
                             m->config_version, "Name", m->name, "DriverName", m->driver_name,
                             "Driver", m->driver, "Lifecycle", "Status", m->status, "Error",
                             str_or_empty(m->error), "CreatedAt", str_or_empty(m->created_at), "OS",
                             os, "HostOptions", "EngineOptions", engine, "AuthOptions", auth);
    if (root == NULL)
        abort();
    if (m->lab != NULL)
        json_object_set(root, "Lab", m->lab);
    /* The names of the secret fields only; their values live in the store's credentials/. */
    if (m->secrets != NULL && json_object_size(m->secrets) > 0) {
        json_t *names = json_array();
        const char *k;
        json_t *v;
        json_object_foreach(m->secrets, k, v)
            json_array_append_new(names, json_string(k));
        json_object_set_new(root, "Secrets", names);
    }
    return root;
}

static int get_string(const json_t *obj, const char *key, bool required, char **out,
                      struct merr *err)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v)) {
        if (required)
            return merr_set(err, MERR_CORRUPT, 0, "missing field '%s'", key);
        *out = NULL;
        return 0;
    }
    if (!json_is_string(v))
        return merr_set(err, MERR_CORRUPT, 0, "field '%s' is not a string", key);
    const char *s = json_string_value(v);
    *out = s[0] != '\0' || required ? xstrdup(s) : NULL;
    return 0;
}

static int get_strv(const json_t *obj, const char *key, char ***out, struct merr *err)
{
    json_t *v = json_object_get(obj, key);
    char **res = xcalloc(1, sizeof *res);
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_array(v)) {
            strv_free(res);
            return merr_set(err, MERR_CORRUPT, 0, "field '%s' is not a list", key);
        }
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            if (!json_is_string(e)) {
                strv_free(res);
                return merr_set(err, MERR_CORRUPT, 0, "field '%s' holds a non-string", key);
            }
            res = strv_push(res, json_string_value(e));
        }
    }
    *out = res;
    return 0;
}

static json_t *get_object(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_object(v) ? v : NULL;
}

struct machine *machine_from_json(const json_t *root, struct merr *err)
{
    if (!json_is_object(root)) {
        merr_set(err, MERR_CORRUPT, 0, "config is not a JSON object");
        return NULL;
    }
    json_t *ver = json_object_get(root, "ConfigVersion");
    if (!json_is_integer(ver)) {
        merr_set(err, MERR_CORRUPT, 0, "missing field 'ConfigVersion'");
        return NULL;
    }
    if (json_integer_value(ver) > MACHINE_CONFIG_VERSION || json_integer_value(ver) < 1) {
        merr_set(err, MERR_CORRUPT, 0, "config version %lld is not supported by this machine",
                 (long long)json_integer_value(ver));
        return NULL;
    }
    auto_machine struct machine *m = xcalloc(1, sizeof *m);
    m->config_version = (int)json_integer_value(ver);
    if (get_string(root, "Name", true, &m->name, err) < 0 ||
        get_string(root, "DriverName", true, &m->driver_name, err) < 0)
        return NULL;
    json_t *drv = get_object(root, "Driver");
    m->driver = drv != NULL ? json_deep_copy(drv) : json_object();

    json_t *lab = get_object(root, "Lab");
    m->lab = lab != NULL ? json_deep_copy(lab) : NULL;

    /* Secret names without values: the store fills them in from its credentials/. */
    json_t *names = json_object_get(root, "Secrets");
    size_t i;
    json_t *name;
    json_array_foreach(names, i, name)
        if (json_is_string(name)) {
            if (m->secrets == NULL)
                m->secrets = json_object();
            json_object_set_new(m->secrets, json_string_value(name), json_null());
        }

    json_t *lc = get_object(root, "Lifecycle");
    if (lc == NULL) {
        merr_set(err, MERR_CORRUPT, 0, "missing field 'Lifecycle'");
        return NULL;
    }
    if (get_string(lc, "Status", true, &m->status, err) < 0 ||
        get_string(lc, "Error", false, &m->error, err) < 0 ||
        get_string(lc, "CreatedAt", false, &m->created_at, err) < 0)
        return NULL;

    json_t *os = get_object(root, "OS");
    if (os != NULL && (get_string(os, "ID", false, &m->os.id, err) < 0 ||
                       get_string(os, "IDLike", false, &m->os.id_like, err) < 0 ||
                       get_string(os, "VersionID", false, &m->os.version_id, err) < 0 ||
                       get_string(os, "PrettyName", false, &m->os.pretty_name, err) < 0))
        return NULL;

    json_t *host = get_object(root, "HostOptions");
    json_t *eng = host != NULL ? get_object(host, "EngineOptions") : NULL;
    json_t *auth = host != NULL ? get_object(host, "AuthOptions") : NULL;
    json_t *empty = json_object();
    if (eng == NULL)
        eng = empty;
    if (auth == NULL)
        auth = empty;
    int rc = 0;
    if (get_strv(eng, "Opts", &m->engine.opts, err) < 0 ||
        get_strv(eng, "Env", &m->engine.env, err) < 0 ||
        get_strv(eng, "Labels", &m->engine.labels, err) < 0 ||
        get_strv(eng, "InsecureRegistry", &m->engine.insecure_registry, err) < 0 ||
        get_strv(eng, "RegistryMirror", &m->engine.registry_mirror, err) < 0 ||
        get_string(eng, "StorageDriver", false, &m->engine.storage_driver, err) < 0 ||
        get_strv(auth, "ServerCertSANs", &m->auth.sans, err) < 0)
        rc = -1;
    json_t *port = json_object_get(eng, "Port");
    m->engine.port = json_is_integer(port) ? (int)json_integer_value(port)
                                           : MACHINE_DEFAULT_ENGINE_PORT;
    json_decref(empty);
    if (rc < 0)
        return NULL;
    if (m->engine.port <= 0 || m->engine.port > 65535) {
        merr_set(err, MERR_CORRUPT, 0, "engine port %d is out of range", m->engine.port);
        return NULL;
    }
    return steal_pointer(&m);
}

struct machine *machine_from_text(const char *text, size_t len, struct merr *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        merr_set(err, MERR_CORRUPT, 0, "invalid JSON at line %d: %s", jerr.line, jerr.text);
        return NULL;
    }
    struct machine *m = machine_from_json(root, err);
    json_decref(root);
    return m;
}
