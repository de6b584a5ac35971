#include "osrelease.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fsutil.h"

void os_release_clear(struct os_release *os)
{
    free(os->id);
    free(os->id_like);
    free(os->version_id);
    free(os->pretty_name);
    memset(os, 0, sizeof *os);
}

static char *unquote(const char *v, size_t len)
{
    if (len >= 2 && (v[0] == '"' || v[0] == '\'') && v[len - 1] == v[0]) {
        v++;
        len -= 2;
    }
    char *out = xcalloc(len + 1, 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] == '\\' && i + 1 < len)
            i++;
        out[o++] = v[i];
    }
    return out;
}

static char **slot_of(struct os_release *out, const char *key, size_t klen)
{
    static const struct {
        const char *key;
        size_t off;
    } keys[] = {
        { "ID", offsetof(struct os_release, id) },
        { "ID_LIKE", offsetof(struct os_release, id_like) },
        { "VERSION_ID", offsetof(struct os_release, version_id) },
        { "PRETTY_NAME", offsetof(struct os_release, pretty_name) },
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strlen(keys[i].key) == klen && strncmp(key, keys[i].key, klen) == 0)
            return (char **)((char *)out + keys[i].off);
    return NULL;
}

void os_release_scan(const char *text, struct os_release *out)
{
    memset(out, 0, sizeof *out);
    for (const char *p = text; p != NULL && *p != '\0';) {
        const char *eol = strchr(p, '\n');
        size_t len = eol != NULL ? (size_t)(eol - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (eq != NULL && p[0] != '#') {
            size_t klen = (size_t)(eq - p);
            char **slot = slot_of(out, p, klen);
            if (slot != NULL) {
                free(*slot);
                *slot = unquote(eq + 1, len - klen - 1);
            }
        }
        p = eol != NULL ? eol + 1 : NULL;
    }
}

int os_release_parse(const char *text, struct os_release *out, struct merr *err)
{
    os_release_scan(text, out);
    if (out->id == NULL || out->id[0] == '\0') {
        os_release_clear(out);
        return merr_set(err, MERR_PROTOCOL, 0, "os-release has no ID");
    }
    return 0;
}
