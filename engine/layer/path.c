/* Pure checks on names found in layer tars. */
#include "layer-priv.h"

#include "error.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

int layer_clean_path(const char *name, char *out, size_t outsz, struct merr *err)
{
    if (outsz == 0)
        return merr_set(err, MERR_INTERNAL, 0, "no room to clean a path");
    bool absolute = name[0] == '/';
    size_t len = 0;
    const char *p = name;
    out[0] = '\0';
    while (*p != '\0') {
        while (*p == '/')
            p++;
        const char *end = p;
        while (*end != '\0' && *end != '/')
            end++;
        size_t clen = (size_t)(end - p);
        if (clen == 0)
            break;
        if (clen == 1 && p[0] == '.') {
            /* nothing */
        } else if (clen == 2 && p[0] == '.' && p[1] == '.') {
            if (len > 0) {
                char *slash = strrchr(out, '/');
                len = slash != NULL ? (size_t)(slash - out) : 0;
                out[len] = '\0';
            } else if (!absolute) {
                return merr_set(err, MERR_INVALID, 0, "path '%s' climbs out of the layer", name);
            }
        } else {
            if (clen > NAME_MAX)
                return merr_set(err, MERR_INVALID, ENAMETOOLONG, "path '%.64s...' is invalid", name);
            size_t need = len + (len > 0) + clen + 1;
            if (need > outsz || need > PATH_MAX)
                return merr_set(err, MERR_INVALID, ENAMETOOLONG, "path '%.64s...' is invalid", name);
            if (len > 0)
                out[len++] = '/';
            memcpy(out + len, p, clen);
            len += clen;
            out[len] = '\0';
        }
        p = end;
    }
    return 0;
}

static size_t count_components(const char *path)
{
    size_t n = 0;
    for (const char *p = path; *p != '\0';) {
        while (*p == '/')
            p++;
        if (*p == '\0')
            break;
        n++;
        while (*p != '\0' && *p != '/')
            p++;
    }
    return n;
}

bool layer_symlink_escapes(const char *parent, const char *target)
{
    if (target[0] == '/')
        return false;
    long depth = (long)count_components(parent);
    for (const char *p = target; *p != '\0';) {
        while (*p == '/')
            p++;
        const char *end = p;
        while (*end != '\0' && *end != '/')
            end++;
        size_t clen = (size_t)(end - p);
        if (clen == 2 && p[0] == '.' && p[1] == '.') {
            if (--depth < 0)
                return true;
        } else if (clen > 0 && !(clen == 1 && p[0] == '.')) {
            depth++;
        }
        p = end;
    }
    return false;
}

bool layer_uid_map_is_initial(const char *uid_map)
{
    unsigned long inside, outside, count;
    int used = 0;
    if (sscanf(uid_map, " %lu %lu %lu %n", &inside, &outside, &count, &used) != 3)
        return false;
    if (uid_map[used] != '\0')
        return false; /* more than one line: not the identity map */
    return inside == 0 && outside == 0 && count == 4294967295UL;
}
