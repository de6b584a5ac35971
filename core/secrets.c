/* Secret driver fields kept out of config.json (secrets.h). */
#include "secrets.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driver.h"
#include "error.h"
#include "fsutil.h"
#include "jsonutil.h"
#include "machine.h"


#define SECRETS_MAX (64 * 1024)

const char *machine_secret(const struct machine *m, const char *key)
{
    if (m->secrets == NULL)
        return NULL;
    return json_string_value(json_object_get(m->secrets, key));
}

void machine_secret_set(struct machine *m, const char *key, const char *value)
{
    if (m->secrets == NULL)
        m->secrets = json_object();
    if (value != NULL)
        json_object_set_new(m->secrets, key, json_string(value));
    else
        json_object_del(m->secrets, key);
}

const char *driver_secret(const struct driver *d, const struct machine *m, const char *key,
                          struct merr *err)
{
    const char *v = machine_secret(m, key);
    if (v != NULL && v[0] != '\0')
        return v;
    const struct driver_flag *flag = NULL;
    for (const struct driver_flag *f = d->flags; f != NULL && f->name != NULL; f++)
        if (strcmp(f->key, key) == 0)
            flag = f;
    const char *env = flag != NULL && flag->env != NULL ? getenv(flag->env) : NULL;
    if (env != NULL && env[0] != '\0')
        return env;
    if (flag == NULL) {
        merr_set(err, MERR_INVALID, 0, "machine '%s' has no credential '%s'", m->name, key);
        return NULL;
    }
    merr_set(err, MERR_INVALID, 0,
             "machine '%s' has no credential for --%s%s%s%s: set it there, or create the machine again",
             m->name, flag->name, flag->env != NULL ? " (" : "", flag->env != NULL ? flag->env : "",
             flag->env != NULL ? ")" : "");
    return NULL;
}

static bool has_values(const struct machine *m)
{
    const char *k;
    json_t *v;
    if (m->secrets == NULL)
        return false;
    json_object_foreach(m->secrets, k, v)
        if (json_is_string(v))
            return true;
    return false;
}

int secrets_save(const char *path, const struct machine *m, struct merr *err)
{
    if (!has_values(m)) {
        if (unlink(path) < 0 && errno != ENOENT)
            return merr_set(err, MERR_IO, errno, "cannot remove '%s'", path);
        return 0;
    }
    auto_json json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(m->secrets, k, v)
        if (json_is_string(v))
            json_object_set(out, k, v);
    auto_free char *text = json_dumps(out, JSON_INDENT(4) | JSON_SORT_KEYS);
    if (text == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot serialise credentials");
    auto_free char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash != NULL && slash != dir) {
        *slash = '\0';
        if (fs_mkdir_p(dir, 0700, err) < 0)
            return -1;
    }
    int rc = fs_write_atomic(path, text, strlen(text), 0600, err);
    explicit_bzero(text, strlen(text));
    return rc;
}

int secrets_load(const char *path, struct machine *m, struct merr *err)
{
    if (!fs_exists(path))
        return 0;
    auto_free char *text = NULL;
    size_t len = 0;
    if (fs_read_regular(path, SECRETS_MAX, &text, &len, err) < 0)
        return -1;
    json_error_t jerr;
    auto_json json_t *root = json_loadb(text, len, 0, &jerr);
    explicit_bzero(text, len);
    if (!json_is_object(root))
        return merr_set(err, MERR_CORRUPT, 0, "'%s' is not a JSON object", path);
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v)
        if (json_is_string(v))
            machine_secret_set(m, k, json_string_value(v));
    return 0;
}
