/* The "local" volume driver: <root>/<name>/_data holds the data, <root>/<name>/volume.json the
 * record (written atomically). Which containers refer to a volume is kept in memory; the
 * container manager re-registers its containers' volumes when the engine starts. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "events/events.h"
#include "filters/args.h"
#include "filters/filters.h"
#include "fsutil.h"
#include "log.h"
#include "volume.h"

#define RECORD "volume.json"
#define RECORD_MAX (1u << 20)
#define ANON_LABEL "com.docker.volume.anonymous"

struct vol {
    char *name;
    json_t *record; /* Name, Driver, Labels, Options, CreatedAt, Populated */
    char **users;   /* container IDs */
    size_t n_users;
};

struct vol_store {
    pthread_mutex_t lock;
    char *root;
    const struct mlog *log;
    struct evt_bus *events;
    struct vol **vols;
    size_t n;
};

static void vol_free(struct vol *v)
{
    if (v == NULL)
        return;
    free(v->name);
    json_decref(v->record);
    for (size_t i = 0; i < v->n_users; i++)
        free(v->users[i]);
    free(v->users);
    free(v);
}

static struct vol *find_locked(struct vol_store *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->vols[i]->name, name) == 0)
            return s->vols[i];
    return NULL;
}

static void add_locked(struct vol_store *s, struct vol *v)
{
    struct vol **n = realloc(s->vols, (s->n + 1) * sizeof *n);
    if (n == NULL)
        abort();
    s->vols = n;
    s->vols[s->n++] = v;
}

static void drop_locked(struct vol_store *s, struct vol *v)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->vols[i] == v) {
            memmove(&s->vols[i], &s->vols[i + 1], (s->n - i - 1) * sizeof *s->vols);
            s->n--;
            return;
        }
}

static int save_locked(struct vol_store *s, struct vol *v, struct merr *err)
{
    auto_free char *text = json_dumps(v->record, JSON_COMPACT | JSON_SORT_KEYS);
    if (text == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot serialise volume '%s'", v->name);
    auto_free char *dir = path_join(s->root, v->name);
    auto_free char *path = path_join(dir, RECORD);
    return fs_write_atomic(path, text, strlen(text), 0600, err);
}

static struct vol *load(const char *root, const char *name, struct merr *err)
{
    auto_free char *dir = path_join(root, name);
    auto_free char *path = path_join(dir, RECORD);
    auto_free char *text = NULL;
    size_t len = 0;
    if (fs_read_file(path, RECORD_MAX, &text, &len, err) < 0)
        return NULL;
    json_error_t jerr;
    json_t *j = json_loadb(text, len, 0, &jerr);
    if (!json_is_object(j)) {
        json_decref(j);
        merr_set(err, MERR_CORRUPT, 0, "'%s': %s", path, jerr.text);
        return NULL;
    }
    struct vol *v = xcalloc(1, sizeof *v);
    v->name = xstrdup(name);
    v->record = j;
    return v;
}

int vol_store_new(const struct vol_store_config *cfg, struct vol_store **out, struct merr *err)
{
    if (fs_mkdir_p(cfg->root, 0700, err) < 0)
        return -1;
    struct vol_store *s = xcalloc(1, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    s->root = xstrdup(cfg->root);
    s->log = cfg->log;
    s->events = cfg->events;
    auto_closedir DIR *d = opendir(cfg->root);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        if (!mnt_volume_name_ok(de->d_name))
            continue;
        struct merr lerr = MERR_INIT;
        struct vol *v = load(cfg->root, de->d_name, &lerr);
        if (v == NULL) {
            mlog_warn(cfg->log, "ignoring volume %s: %s", de->d_name, lerr.msg);
            continue;
        }
        add_locked(s, v);
    }
    *out = s;
    return 0;
}

void vol_store_free(struct vol_store *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++)
        vol_free(s->vols[i]);
    free(s->vols);
    free(s->root);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static json_t *inspect_locked(struct vol_store *s, const struct vol *v)
{
    auto_free char *dir = path_join(s->root, v->name);
    auto_free char *data = path_join(dir, "_data");
    json_t *labels = json_object_get(v->record, "Labels");
    json_t *opts = json_object_get(v->record, "Options");
    return json_pack("{s:O?,s:s,s:O,s:s,s:s,s:O,s:s}", "CreatedAt",
                     json_object_get(v->record, "CreatedAt"), "Driver", "local", "Labels",
                     labels != NULL ? labels : json_null(), "Mountpoint", data, "Name", v->name,
                     "Options", opts != NULL ? opts : json_null(), "Scope", "local");
}

static char *now_rfc3339(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char buf[64];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return xstrdup(buf);
}

static struct vol *create_locked(struct vol_store *s, const char *name, const json_t *labels,
                                 const json_t *options, bool anonymous, struct merr *err)
{
    char random_name[65];
    if (name == NULL || name[0] == '\0') {
        unsigned char r[32];
        if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
            merr_set(err, MERR_IO, errno, "cannot name a volume");
            return NULL;
        }
        for (size_t i = 0; i < sizeof r; i++)
            sprintf(random_name + 2 * i, "%02x", r[i]);
        name = random_name;
    } else if (!mnt_volume_name_ok(name)) {
        merr_set(err, MERR_INVALID, 0,
                 "create %s: \"%s\" includes invalid characters for a local volume name, only "
                 "\"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host "
                 "directory, use absolute path",
                 name, name);
        return NULL;
    }
    struct vol *v = find_locked(s, name);
    if (v != NULL)
        return v;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)options, key, val) {
        merr_set(err, MERR_INVALID, 0, "create %s: invalid option: \"%s\"", name, key);
        return NULL;
    }
    auto_free char *dir = path_join(s->root, name);
    auto_free char *data = path_join(dir, "_data");
    if (mkdir(dir, 0701) < 0 && errno != EEXIST) {
        merr_set(err, MERR_IO, errno, "cannot create '%s'", dir);
        return NULL;
    }
    if (mkdir(data, 0755) < 0 && errno != EEXIST) {
        merr_set(err, MERR_IO, errno, "cannot create '%s'", data);
        return NULL;
    }
    v = xcalloc(1, sizeof *v);
    v->name = xstrdup(name);
    json_t *lab = json_is_object(labels) ? json_deep_copy(labels) : json_object();
    if (anonymous)
        json_object_set_new(lab, ANON_LABEL, json_string(""));
    auto_free char *created = now_rfc3339();
    v->record = json_pack("{s:s,s:s,s:o,s:o,s:s,s:b}", "Name", name, "Driver", "local", "Labels",
                          lab, "Options", json_object(), "CreatedAt", created, "Populated", false);
    if (save_locked(s, v, err) < 0) {
        struct merr ignored;
        if (fs_remove_tree(dir, &ignored) < 0)
            mlog_warn(s->log, "%s", ignored.msg);
        vol_free(v);
        return NULL;
    }
    add_locked(s, v);
    evt_emit(s->events, "volume", "create", name, json_pack("{s:s}", "driver", "local"));
    return v;
}

json_t *vol_create(struct vol_store *s, const char *name, const json_t *labels,
                   const json_t *options, bool anonymous, struct merr *err)
{
    pthread_mutex_lock(&s->lock);
    struct vol *v = create_locked(s, name, labels, options, anonymous, err);
    json_t *j = v != NULL ? inspect_locked(s, v) : NULL;
    pthread_mutex_unlock(&s->lock);
    return j;
}

json_t *vol_inspect(struct vol_store *s, const char *name, struct merr *err)
{
    pthread_mutex_lock(&s->lock);
    struct vol *v = find_locked(s, name);
    json_t *j = v != NULL ? inspect_locked(s, v) : NULL;
    pthread_mutex_unlock(&s->lock);
    if (v == NULL)
        merr_set(err, MERR_NOT_FOUND, 0, "get %s: no such volume", name);
    return j;
}

static bool labels_match(const struct api_filters *f, const json_t *labels)
{
    char *const *vals = api_filters_get(f, "label");
    for (size_t i = 0; vals != NULL && vals[i] != NULL; i++) {
        const char *eq = strchr(vals[i], '=');
        auto_free char *key = eq != NULL ? strndup(vals[i], (size_t)(eq - vals[i])) : xstrdup(vals[i]);
        const char *v = json_string_value(json_object_get(labels, key));
        if (v == NULL || (eq != NULL && strcmp(v, eq + 1) != 0))
            return false;
    }
    return true;
}

static bool filters_match(const struct api_filters *f, const struct vol *v)
{
    if (f == NULL)
        return true;
    /* moby's filters.Args.Match: exact or a regular expression */
    bool name_ok = flt_match(api_filters_get(f, "name"), v->name);
    bool dangling_ok = true, want = false;
    struct merr ignored;
    if (api_filters_get(f, "dangling") != NULL && flt_bool(f, "dangling", false, &want, &ignored) == 0)
        dangling_ok = want == (v->n_users == 0);
    return name_ok && dangling_ok && api_filters_match(f, "driver", "local") &&
           labels_match(f, json_object_get(v->record, "Labels"));
}

json_t *vol_list(struct vol_store *s, const struct api_filters *f, struct merr *err)
{
    static const char *const allowed[] = { "name", "label", "dangling", "driver", NULL };
    bool dangling;
    if (f != NULL && (api_filters_validate(f, allowed, err) < 0 ||
                      flt_bool(f, "dangling", false, &dangling, err) < 0))
        return NULL;
    json_t *arr = json_array();
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->n; i++)
        if (filters_match(f, s->vols[i]))
            json_array_append_new(arr, inspect_locked(s, s->vols[i]));
    pthread_mutex_unlock(&s->lock);
    return arr;
}

static int remove_locked(struct vol_store *s, struct vol *v, bool force, struct merr *err)
{
    (void)force; /* docker refuses an in-use volume even with --force */
    if (v->n_users > 0) {
        char users[512] = "";
        size_t o = 0;
        for (size_t i = 0; i < v->n_users && o < sizeof users - 80; i++)
            o += (size_t)snprintf(users + o, sizeof users - o, "%s%s", i > 0 ? ", " : "",
                                  v->users[i]);
        return merr_set(err, MERR_EXISTS, 0, "remove %s: volume is in use - [%s]", v->name, users);
    }
    auto_free char *dir = path_join(s->root, v->name);
    auto_free char *record = path_join(dir, RECORD);
    /* The record goes first: a crash half way leaves a directory that is not a volume. */
    if (unlink(record) < 0 && errno != ENOENT)
        return merr_set(err, MERR_IO, errno, "cannot remove '%s'", record);
    if (fs_remove_tree(dir, err) < 0)
        return -1;
    evt_emit(s->events, "volume", "destroy", v->name, json_pack("{s:s}", "driver", "local"));
    drop_locked(s, v);
    vol_free(v);
    return 0;
}

int vol_remove(struct vol_store *s, const char *name, bool force, struct merr *err)
{
    pthread_mutex_lock(&s->lock);
    struct vol *v = find_locked(s, name);
    int rc = v != NULL ? remove_locked(s, v, force, err)
           : force     ? 0 /* -f: a missing volume is not an error */
                       : merr_set(err, MERR_NOT_FOUND, 0, "get %s: no such volume", name);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static long long dir_usage(const char *path)
{
    /* du-like, bounded by what nftw would see; good enough for SpaceReclaimed */
    auto_closedir DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    long long total = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        auto_free char *p = path_join(path, de->d_name);
        struct stat st;
        if (lstat(p, &st) < 0)
            continue;
        total += (long long)st.st_blocks * 512;
        if (S_ISDIR(st.st_mode))
            total += dir_usage(p);
    }
    return total;
}

json_t *vol_prune(struct vol_store *s, bool all, const struct api_filters *f, struct merr *err)
{
    static const char *const allowed[] = { "label", "all", NULL };
    if (f != NULL && api_filters_validate(f, allowed, err) < 0)
        return NULL;
    char *const *all_f = f != NULL ? api_filters_get(f, "all") : NULL;
    if (all_f != NULL && all_f[0] != NULL)
        all = strcmp(all_f[0], "true") == 0 || strcmp(all_f[0], "1") == 0;
    json_t *deleted = json_array();
    long long reclaimed = 0;
    pthread_mutex_lock(&s->lock);
    for (size_t i = s->n; i-- > 0;) {
        struct vol *v = s->vols[i];
        json_t *labels = json_object_get(v->record, "Labels");
        if (v->n_users > 0 || (!all && json_object_get(labels, ANON_LABEL) == NULL) ||
            (f != NULL && !labels_match(f, labels)))
            continue;
        auto_free char *dir = path_join(s->root, v->name);
        long long used = dir_usage(dir);
        auto_free char *name = xstrdup(v->name);
        struct merr rerr = MERR_INIT;
        if (remove_locked(s, v, false, &rerr) < 0) {
            mlog_warn(s->log, "prune: %s", rerr.msg);
            continue;
        }
        json_array_append_new(deleted, json_string(name));
        reclaimed += used;
    }
    pthread_mutex_unlock(&s->lock);
    return json_pack("{s:o,s:I}", "VolumesDeleted", deleted, "SpaceReclaimed",
                     (json_int_t)reclaimed);
}

void vol_ref(struct vol_store *s, const char *name, const char *ctr_id)
{
    pthread_mutex_lock(&s->lock);
    struct vol *v = find_locked(s, name);
    bool have = false;
    for (size_t i = 0; v != NULL && i < v->n_users; i++)
        have |= strcmp(v->users[i], ctr_id) == 0;
    if (v != NULL && !have) {
        char **u = realloc(v->users, (v->n_users + 1) * sizeof *u);
        if (u == NULL)
            abort();
        v->users = u;
        v->users[v->n_users++] = xstrdup(ctr_id);
    }
    pthread_mutex_unlock(&s->lock);
}

void vol_unref(struct vol_store *s, const char *name, const char *ctr_id)
{
    pthread_mutex_lock(&s->lock);
    struct vol *v = find_locked(s, name);
    for (size_t i = 0; v != NULL && i < v->n_users; i++)
        if (strcmp(v->users[i], ctr_id) == 0) {
            free(v->users[i]);
            v->users[i] = v->users[--v->n_users];
            break;
        }
    pthread_mutex_unlock(&s->lock);
}

static bool dir_empty(const char *path)
{
    auto_closedir DIR *d = opendir(path);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            return false;
    return true;
}

char *vol_mount_path(struct vol_store *s, const char *name, const char *ctr_id, bool *fresh,
                     struct merr *err)
{
    pthread_mutex_lock(&s->lock);
    struct vol *v = create_locked(s, name, NULL, NULL, false, err);
    char *data = NULL;
    if (v != NULL) {
        auto_free char *dir = path_join(s->root, v->name);
        data = path_join(dir, "_data");
        *fresh = !json_is_true(json_object_get(v->record, "Populated")) && dir_empty(data);
        evt_emit(s->events, "volume", "mount", v->name,
                 json_pack("{s:s,s:s}", "driver", "local", "container", ctr_id));
    }
    pthread_mutex_unlock(&s->lock);
    return data;
}

void vol_mark_populated(struct vol_store *s, const char *name)
{
    pthread_mutex_lock(&s->lock);
    struct vol *v = find_locked(s, name);
    if (v != NULL) {
        json_object_set_new(v->record, "Populated", json_true());
        struct merr serr = MERR_INIT;
        if (save_locked(s, v, &serr) < 0)
            mlog_warn(s->log, "%s", serr.msg);
    }
    pthread_mutex_unlock(&s->lock);
}

bool vol_is_anonymous(struct vol_store *s, const char *name)
{
    pthread_mutex_lock(&s->lock);
    struct vol *v = find_locked(s, name);
    bool anon = v != NULL &&
                json_object_get(json_object_get(v->record, "Labels"), ANON_LABEL) != NULL;
    pthread_mutex_unlock(&s->lock);
    return anon;
}
