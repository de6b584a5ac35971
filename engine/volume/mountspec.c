/* Docker's mount specifications → struct mnt_spec. Pure: text and JSON in, structs out. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

#include "error.h"
#include "fsutil.h"
#include "volume.h"

#define MNT_MAX 256

void mnt_spec_release(struct mnt_spec *m)
{
    if (m == NULL)
        return;
    free(m->source);
    free(m->target);
    free(m->mode);
    free(m->propagation);
    free(m->tmpfs_options);
    json_decref(m->labels);
    memset(m, 0, sizeof *m);
}

void mnt_list_release(struct mnt_list *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++)
        mnt_spec_release(&l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

bool mnt_volume_name_ok(const char *name)
{
    if (name == NULL || strlen(name) < 2 || strlen(name) > 255)
        return false;
    for (const char *p = name; *p != '\0'; p++) {
        bool alnum = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9');
        if (!alnum && (p == name || (*p != '_' && *p != '.' && *p != '-')))
            return false;
    }
    return true;
}

char *mnt_clean_path(const char *path)
{
    if (path == NULL || path[0] != '/')
        return NULL;
    size_t len = strlen(path);
    char *out = xcalloc(len + 2, 1);
    size_t o = 0;
    const char *p = path;
    while (*p != '\0') {
        while (*p == '/')
            p++;
        const char *end = strchrnul(p, '/');
        size_t n = (size_t)(end - p);
        if (n == 0 || (n == 1 && p[0] == '.')) {
            /* nothing */
        } else if (n == 2 && p[0] == '.' && p[1] == '.') {
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--; /* the slash */
        } else {
            out[o++] = '/';
            memcpy(out + o, p, n);
            o += n;
        }
        p = end;
    }
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
    return out;
}

static bool is_propagation(const char *w)
{
    static const char *const ok[] = { "shared", "rshared", "slave", "rslave", "private",
                                      "rprivate" };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strcmp(w, ok[i]) == 0)
            return true;
    return false;
}

/* The -v mode field: ro|rw, z|Z, nocopy, a propagation; comma-separated, each at most once. */
static int parse_mode(const char *mode, struct mnt_spec *out)
{
    auto_free char *copy = xstrdup(mode);
    bool rw_seen = false, label_seen = false, copy_seen = false, prop_seen = false;
    char *save = NULL;
    for (char *w = strtok_r(copy, ",", &save); w != NULL; w = strtok_r(NULL, ",", &save)) {
        if (strcmp(w, "ro") == 0 || strcmp(w, "rw") == 0) {
            if (rw_seen)
                return -1;
            rw_seen = true;
            out->readonly = w[1] == 'o';
        } else if (strcmp(w, "z") == 0 || strcmp(w, "Z") == 0) {
            if (label_seen)
                return -1;
            label_seen = true;
        } else if (strcmp(w, "nocopy") == 0) {
            if (copy_seen)
                return -1;
            copy_seen = true;
            out->nocopy = true;
        } else if (is_propagation(w)) {
            if (prop_seen)
                return -1;
            prop_seen = true;
            free(out->propagation);
            out->propagation = xstrdup(w);
        } else {
            return -1;
        }
    }
    return 0;
}

int mnt_parse_bind(const char *text, struct mnt_spec *out, struct merr *err)
{
    memset(out, 0, sizeof *out);
    if (text == NULL || text[0] == '\0')
        return merr_set(err, MERR_INVALID, 0, "invalid volume specification: ''");
    auto_free char *copy = xstrdup(text);
    char *parts[4] = { 0 };
    size_t n = 0;
    char *save = NULL;
    for (char *w = strtok_r(copy, ":", &save); w != NULL; w = strtok_r(NULL, ":", &save)) {
        if (n == 3)
            return merr_set(err, MERR_INVALID, 0, "invalid volume specification: '%s'", text);
        parts[n++] = w;
    }
    if (n == 0 || strstr(text, "::") != NULL || text[strlen(text) - 1] == ':')
        return merr_set(err, MERR_INVALID, 0, "invalid volume specification: '%s'", text);
    const char *src = n >= 2 ? parts[0] : NULL;
    const char *dst = n >= 2 ? parts[1] : parts[0];
    const char *mode = n == 3 ? parts[2] : "";
    if (dst[0] != '/')
        return merr_set(err, MERR_INVALID, 0,
                        "invalid volume specification: '%s': invalid mount config for type "
                        "\"volume\": invalid mount path: '%s' mount path must be absolute",
                        text, dst);
    out->mode = xstrdup(mode);
    if (parse_mode(mode, out) < 0) {
        mnt_spec_release(out);
        return merr_set(err, MERR_INVALID, 0, "invalid mode: %s", mode);
    }
    out->target = mnt_clean_path(dst);
    if (strcmp(out->target, "/") == 0) {
        mnt_spec_release(out);
        return merr_set(err, MERR_INVALID, 0,
                        "invalid volume specification: '%s': invalid mount config: destination "
                        "can't be '/'",
                        text);
    }
    if (src == NULL) {
        out->type = MNT_VOLUME;
    } else if (src[0] == '/') {
        out->type = MNT_BIND;
        out->source = mnt_clean_path(src);
        out->create_source = true;
        if (out->propagation == NULL)
            out->propagation = xstrdup("rprivate");
    } else if (mnt_volume_name_ok(src)) {
        out->type = MNT_VOLUME;
        out->source = xstrdup(src);
    } else {
        mnt_spec_release(out);
        return merr_set(err, MERR_INVALID, 0,
                        "create %s: \"%s\" includes invalid characters for a local volume name, "
                        "only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass "
                        "a host directory, use absolute path",
                        src, src);
    }
    if (out->type == MNT_VOLUME && out->propagation != NULL) {
        mnt_spec_release(out);
        return merr_set(err, MERR_INVALID, 0, "invalid mode: %s", mode);
    }
    return 0;
}

static int mount_error(struct mnt_spec *out, struct merr *err, const char *type, const char *what)
{
    mnt_spec_release(out);
    return merr_set(err, MERR_INVALID, 0, "invalid mount config for type \"%s\": %s", type, what);
}

int mnt_parse_mount(const json_t *obj, struct mnt_spec *out, struct merr *err)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(obj))
        return merr_set(err, MERR_INVALID, 0, "invalid mount: not an object");
    const char *type = json_string_value(json_object_get(obj, "Type"));
    const char *src = json_string_value(json_object_get(obj, "Source"));
    const char *dst = json_string_value(json_object_get(obj, "Target"));
    if (type == NULL)
        type = "volume";
    if (src != NULL && src[0] == '\0')
        src = NULL;
    if (strcmp(type, "bind") == 0)
        out->type = MNT_BIND;
    else if (strcmp(type, "volume") == 0)
        out->type = MNT_VOLUME;
    else if (strcmp(type, "tmpfs") == 0)
        out->type = MNT_TMPFS;
    else
        return merr_set(err, MERR_INVALID, 0, "mount type unknown: \"%s\"", type);
    out->readonly = json_is_true(json_object_get(obj, "ReadOnly"));
    out->mode = xstrdup("");
    if (dst == NULL || dst[0] == '\0')
        return mount_error(out, err, type, "field Target must not be empty");
    if (dst[0] != '/')
        return mount_error(out, err, type, "invalid mount path: mount path must be absolute");
    out->target = mnt_clean_path(dst);
    if (strcmp(out->target, "/") == 0)
        return mount_error(out, err, type, "invalid specification: destination can't be '/'");
    switch (out->type) {
    case MNT_BIND: {
        if (src == NULL)
            return mount_error(out, err, type, "field Source must not be empty");
        if (src[0] != '/')
            return mount_error(out, err, type, "invalid mount path: mount path must be absolute");
        out->source = mnt_clean_path(src);
        const char *prop = json_string_value(
            json_object_get(json_object_get(obj, "BindOptions"), "Propagation"));
        if (prop != NULL && prop[0] != '\0' && !is_propagation(prop))
            return mount_error(out, err, type, "invalid propagation mode");
        out->propagation = xstrdup(prop != NULL && prop[0] != '\0' ? prop : "rprivate");
        out->create_source = json_is_true(
            json_object_get(json_object_get(obj, "BindOptions"), "CreateMountpoint"));
        if (json_object_get(obj, "TmpfsOptions") != NULL || json_object_get(obj, "VolumeOptions"))
            return mount_error(out, err, type, "only BindOptions may be given");
        break;
    }
    case MNT_VOLUME:
        if (src != NULL && !mnt_volume_name_ok(src))
            return mount_error(out, err, type, "invalid volume name");
        out->source = src != NULL ? xstrdup(src) : NULL;
        out->nocopy = json_is_true(json_object_get(json_object_get(obj, "VolumeOptions"), "NoCopy"));
        const json_t *labels = json_object_get(json_object_get(obj, "VolumeOptions"), "Labels");
        if (labels != NULL && !json_is_null(labels) && !json_is_object(labels))
            return mount_error(out, err, type, "invalid VolumeOptions.Labels");
        if (json_is_object(labels) && json_object_size(labels) > 0)
            out->labels = json_deep_copy(labels);
        if (json_object_get(obj, "BindOptions") != NULL || json_object_get(obj, "TmpfsOptions"))
            return mount_error(out, err, type, "only VolumeOptions may be given");
        break;
    case MNT_TMPFS: {
        if (src != NULL)
            return mount_error(out, err, type, "field Source must not be specified");
        const json_t *to = json_object_get(obj, "TmpfsOptions");
        json_int_t size = json_integer_value(json_object_get(to, "SizeBytes"));
        json_int_t mode = json_integer_value(json_object_get(to, "Mode"));
        if (size < 0)
            return mount_error(out, err, type, "invalid SizeBytes");
        char opts[128] = "";
        size_t o = 0;
        if (size > 0)
            o += (size_t)snprintf(opts + o, sizeof opts - o, "size=%lld", (long long)size);
        if (mode > 0)
            snprintf(opts + o, sizeof opts - o, "%smode=%llo", o > 0 ? "," : "",
                     (unsigned long long)mode & 07777);
        out->tmpfs_options = xstrdup(opts);
        if (json_object_get(obj, "BindOptions") != NULL || json_object_get(obj, "VolumeOptions"))
            return mount_error(out, err, type, "only TmpfsOptions may be given");
        break;
    }
    }
    return 0;
}

int mnt_tmpfs_options(const char *text, unsigned long *flags, char **data, struct merr *err)
{
    static const struct {
        const char *word;
        unsigned long set, clear;
    } words[] = {
        { "ro", MS_RDONLY, 0 },      { "rw", 0, MS_RDONLY },      { "noexec", MS_NOEXEC, 0 },
        { "exec", 0, MS_NOEXEC },    { "nosuid", MS_NOSUID, 0 },  { "suid", 0, MS_NOSUID },
        { "nodev", MS_NODEV, 0 },    { "dev", 0, MS_NODEV },      { "noatime", MS_NOATIME, 0 },
        { "atime", 0, MS_NOATIME },  { "sync", MS_SYNCHRONOUS, 0 },
        { "async", 0, MS_SYNCHRONOUS },
    };
    static const char *const data_keys[] = { "size=", "mode=", "uid=", "gid=", "nr_inodes=",
                                             "nr_blocks=", "huge=", "mpol=" };
    unsigned long f = MS_NOSUID | MS_NODEV | MS_NOEXEC;
    auto_free char *copy = xstrdup(text != NULL ? text : "");
    auto_free char *out = xcalloc(strlen(copy) + 1, 1);
    size_t o = 0;
    char *save = NULL;
    for (char *w = strtok_r(copy, ",", &save); w != NULL; w = strtok_r(NULL, ",", &save)) {
        bool known = false;
        for (size_t i = 0; i < sizeof words / sizeof words[0] && !known; i++)
            if (strcmp(w, words[i].word) == 0) {
                f = (f | words[i].set) & ~words[i].clear;
                known = true;
            }
        for (size_t i = 0; i < sizeof data_keys / sizeof data_keys[0] && !known; i++)
            if (strncmp(w, data_keys[i], strlen(data_keys[i])) == 0) {
                if (strpbrk(w + strlen(data_keys[i]), ",=") != NULL || w[strlen(data_keys[i])] == '\0')
                    break;
                o += (size_t)sprintf(out + o, "%s%s", o > 0 ? "," : "", w);
                known = true;
            }
        if (!known)
            return merr_set(err, MERR_INVALID, 0, "invalid tmpfs option [\"%s\"]", w);
    }
    *flags = f;
    *data = steal_pointer(&out);
    return 0;
}

static int list_add(struct mnt_list *l, struct mnt_spec *m, struct merr *err)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->items[i].target, m->target) == 0) {
            merr_set(err, MERR_INVALID, 0, "Duplicate mount point: %s", m->target);
            mnt_spec_release(m);
            return -1;
        }
    if (l->n >= MNT_MAX) {
        mnt_spec_release(m);
        return merr_set(err, MERR_INVALID, 0, "too many mounts");
    }
    struct mnt_spec *items = realloc(l->items, (l->n + 1) * sizeof *items);
    if (items == NULL)
        abort();
    l->items = items;
    l->items[l->n++] = *m;
    memset(m, 0, sizeof *m);
    return 0;
}

static bool has_target(const struct mnt_list *l, const char *target)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->items[i].target, target) == 0)
            return true;
    return false;
}

int mnt_list_from_config(const json_t *host_config, const json_t *image_volumes,
                         struct mnt_list *out, struct merr *err)
{
    struct mnt_list l = { 0 };
    struct mnt_spec m;
    size_t i;
    const json_t *v;
    json_array_foreach(json_object_get(host_config, "Binds"), i, v) {
        if (!json_is_string(v)) {
            mnt_list_release(&l);
            return merr_set(err, MERR_INVALID, 0, "invalid volume specification: not a string");
        }
        if (mnt_parse_bind(json_string_value(v), &m, err) < 0 || list_add(&l, &m, err) < 0) {
            mnt_list_release(&l);
            return -1;
        }
    }
    json_array_foreach(json_object_get(host_config, "Mounts"), i, v) {
        if (mnt_parse_mount(v, &m, err) < 0 || list_add(&l, &m, err) < 0) {
            mnt_list_release(&l);
            return -1;
        }
    }
    const char *key;
    json_object_foreach((json_t *)json_object_get(host_config, "Tmpfs"), key, v) {
        unsigned long flags;
        auto_free char *data = NULL;
        const char *opts = json_is_string(v) ? json_string_value(v) : "";
        if (key[0] != '/') {
            mnt_list_release(&l);
            return merr_set(err, MERR_INVALID, 0, "invalid mount path: '%s' mount path must be "
                            "absolute", key);
        }
        if (mnt_tmpfs_options(opts, &flags, &data, err) < 0) {
            mnt_list_release(&l);
            return -1;
        }
        memset(&m, 0, sizeof m);
        m.type = MNT_TMPFS;
        m.target = mnt_clean_path(key);
        m.mode = xstrdup("");
        m.tmpfs_options = xstrdup(opts);
        m.readonly = (flags & MS_RDONLY) != 0;
        if (list_add(&l, &m, err) < 0) {
            mnt_list_release(&l);
            return -1;
        }
    }
    json_object_foreach((json_t *)image_volumes, key, v) {
        auto_free char *target = mnt_clean_path(key);
        if (target == NULL || strcmp(target, "/") == 0 || has_target(&l, target))
            continue;
        memset(&m, 0, sizeof m);
        m.type = MNT_VOLUME;
        m.target = steal_pointer(&target);
        m.mode = xstrdup("");
        if (list_add(&l, &m, err) < 0) {
            mnt_list_release(&l);
            return -1;
        }
    }
    *out = l;
    return 0;
}

static const char *type_name(enum mnt_type t)
{
    return t == MNT_BIND ? "bind" : t == MNT_TMPFS ? "tmpfs" : "volume";
}

json_t *mnt_spec_to_json(const struct mnt_spec *m)
{
    json_t *j = json_pack("{s:s,s:s,s:b,s:s}", "Type", type_name(m->type), "Destination",
                          m->target, "RW", !m->readonly, "Mode", m->mode != NULL ? m->mode : "");
    if (m->source != NULL)
        json_object_set_new(j, m->type == MNT_VOLUME ? "Name" : "Source", json_string(m->source));
    if (m->propagation != NULL)
        json_object_set_new(j, "Propagation", json_string(m->propagation));
    if (m->create_source)
        json_object_set_new(j, "CreateSource", json_true());
    if (m->nocopy)
        json_object_set_new(j, "NoCopy", json_true());
    if (m->tmpfs_options != NULL)
        json_object_set_new(j, "TmpfsOptions", json_string(m->tmpfs_options));
    return j;
}

static char *opt_str(const json_t *j, const char *key)
{
    const char *s = json_string_value(json_object_get(j, key));
    return s != NULL ? xstrdup(s) : NULL;
}

int mnt_spec_from_json(const json_t *j, struct mnt_spec *out, struct merr *err)
{
    memset(out, 0, sizeof *out);
    const char *type = json_string_value(json_object_get(j, "Type"));
    const char *dst = json_string_value(json_object_get(j, "Destination"));
    if (type == NULL || dst == NULL || dst[0] != '/')
        return merr_set(err, MERR_CORRUPT, 0, "invalid mount record");
    out->type = strcmp(type, "bind") == 0    ? MNT_BIND
                : strcmp(type, "tmpfs") == 0 ? MNT_TMPFS
                                             : MNT_VOLUME;
    out->target = mnt_clean_path(dst);
    out->source = opt_str(j, out->type == MNT_VOLUME ? "Name" : "Source");
    out->readonly = !json_is_true(json_object_get(j, "RW"));
    out->mode = opt_str(j, "Mode");
    if (out->mode == NULL)
        out->mode = xstrdup("");
    out->propagation = opt_str(j, "Propagation");
    out->tmpfs_options = opt_str(j, "TmpfsOptions");
    out->create_source = json_is_true(json_object_get(j, "CreateSource"));
    out->nocopy = json_is_true(json_object_get(j, "NoCopy"));
    if (out->type != MNT_TMPFS && out->source == NULL) {
        mnt_spec_release(out);
        return merr_set(err, MERR_CORRUPT, 0, "mount record for '%s' has no source", dst);
    }
    return 0;
}
