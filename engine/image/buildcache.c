/* The classic builder's cache: <root>/buildcache/<sha256 of the key> holds one entry,
 * {"ID": image, "Description": the step, "CreatedAt", "LastUsedAt" (ns), "UsageCount"}
 * (an older entry is the bare image ID). Entries point at images, so a removed image is a
 * miss; docker builder prune drops entries, docker system df counts them. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "image/internal.h"
#include "image/manifest.h"
#include "image/reference.h"
#include "strv.h"

#define ENTRY_MAX (64u << 10)

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static bool is_entry_name(const char *name)
{
    size_t n = strlen(name);
    if (n != 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
            return false;
    return true;
}

/* The entry of buildcache/<name>, or NULL when it is missing or unreadable. */
static json_t *entry_load(struct image_store *s, const char *name)
{
    auto_free char *p = store_path(s, "buildcache/%s", name);
    auto_close int fd = p != NULL ? open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
    if (fd < 0)
        return NULL;
    auto_free char *buf = xcalloc(1, ENTRY_MAX + 1);
    size_t got = 0;
    for (ssize_t n; got < ENTRY_MAX && (n = read(fd, buf + got, ENTRY_MAX - got)) != 0;) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return NULL;
        got += (size_t)n;
    }
    if (strncmp(buf, "sha256:", 7) == 0) { /* an entry of an older engine: the ID alone */
        buf[strcspn(buf, "\n")] = '\0';
        struct stat st;
        int64_t t = fstat(fd, &st) == 0 ? (int64_t)st.st_mtim.tv_sec * 1000000000LL : 0;
        return json_pack("{s:s,s:s,s:I,s:I,s:i}", "ID", buf, "Description", "", "CreatedAt",
                         (json_int_t)t, "LastUsedAt", (json_int_t)t, "UsageCount", 0);
    }
    json_t *e = json_loadb(buf, got, 0, NULL);
    if (!json_is_object(e) || !json_is_string(json_object_get(e, "ID"))) {
        json_decref(e);
        return NULL;
    }
    return e;
}

static int entry_save(struct image_store *s, const char *name, const json_t *e, struct merr *err)
{
    auto_free char *dir = store_path(s, "buildcache");
    auto_free char *p = store_path(s, "buildcache/%s", name);
    auto_free char *text = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS);
    if (dir == NULL || p == NULL || text == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return merr_set(err, MERR_IO, errno, "cannot create '%s'", dir);
    return store_write_atomic(s, p, text, strlen(text), err);
}

/* The use figures of a hit: advisory, so written without the syncs of a durable write (a
 * crash loses a count, never an entry); a temp file in the same directory renamed over it. */
static void entry_touch(struct image_store *s, const char *name, const json_t *e)
{
    auto_free char *tmpl = store_path(s, "buildcache/%s.XXXXXX", name);
    auto_free char *p = store_path(s, "buildcache/%s", name);
    auto_free char *text = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS);
    if (tmpl == NULL || p == NULL || text == NULL)
        return;
    int fd = mkostemp(tmpl, O_CLOEXEC);
    if (fd < 0)
        return;
    size_t len = strlen(text), done = 0;
    while (done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    bool ok = done == len && fchmod(fd, 0600) == 0;
    close(fd);
    if (!ok || rename(tmpl, p) < 0)
        unlink(tmpl);
}

static void key_name(const char *key, char out[65])
{
    char d[DIGEST_BUF_LEN];
    sha256_digest(key, strlen(key), d);
    snprintf(out, 65, "%s", image_digest_hex(d));
}

static void count_use(struct image_store *s, const char *name, json_t *e)
{
    json_object_set_new(e, "LastUsedAt", json_integer(now_ns()));
    json_object_set_new(e, "UsageCount",
                        json_integer(json_integer_value(json_object_get(e, "UsageCount")) + 1));
    entry_touch(s, name, e);
}

char *image_build_cache_get(struct image_store *s, const char *key, bool defer)
{
    char name[65];
    key_name(key, name);
    auto_json json_t *e = entry_load(s, name);
    const char *id = json_string_value(json_object_get(e, "ID"));
    if (id == NULL)
        return NULL;
    pthread_mutex_lock(&s->lock);
    bool ok = image_digest_is_valid(id) && store_image_exists(s, id);
    if (ok && defer)
        s->pending_uses = strv_push(s->pending_uses, name);
    pthread_mutex_unlock(&s->lock);
    if (!ok)
        return NULL;
    if (!defer)
        count_use(s, name, e);
    return xstrdup(id);
}

void image_build_cache_count(struct image_store *s)
{
    pthread_mutex_lock(&s->uses_lock);
    pthread_mutex_lock(&s->lock);
    auto_strv char **used = s->pending_uses;
    s->pending_uses = NULL;
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; used != NULL && used[i] != NULL; i++) {
        auto_json json_t *e = entry_load(s, used[i]);
        if (e != NULL)
            count_use(s, used[i], e);
    }
    pthread_mutex_unlock(&s->uses_lock);
}

int image_build_cache_put(struct image_store *s, const char *key, const char *image_id,
                          const char *description, struct merr *err)
{
    char name[65];
    key_name(key, name);
    int64_t t = now_ns();
    auto_json json_t *e = json_pack("{s:s,s:s,s:I,s:I,s:i}", "ID", image_id, "Description",
                                    description != NULL ? description : "", "CreatedAt",
                                    (json_int_t)t, "LastUsedAt", (json_int_t)t, "UsageCount", 0);
    return entry_save(s, name, e, err);
}

json_t *image_build_cache_list(struct image_store *s, struct merr *err)
{
    image_build_cache_count(s); /* the uses of builds that just answered */
    auto_free char *dir = store_path(s, "buildcache");
    json_t *out = json_array();
    DIR *d = dir != NULL ? opendir(dir) : NULL;
    if (d == NULL) {
        if (dir != NULL && errno == ENOENT)
            return out;
        json_decref(out);
        merr_set(err, MERR_IO, errno, "cannot read the build cache");
        return NULL;
    }
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        if (!is_entry_name(de->d_name))
            continue;
        json_t *e = entry_load(s, de->d_name);
        const char *id = json_string_value(json_object_get(e, "ID"));
        pthread_mutex_lock(&s->lock);
        bool live = id != NULL && image_digest_is_valid(id) && store_image_exists(s, id);
        pthread_mutex_unlock(&s->lock);
        if (e == NULL)
            continue;
        json_object_set_new(e, "CacheID", json_string(de->d_name));
        if (!live)
            json_object_set_new(e, "Gone", json_true());
        json_array_append_new(out, e);
    }
    closedir(d);
    return out;
}

int image_build_cache_drop(struct image_store *s, const char *cache_id, struct merr *err)
{
    if (!is_entry_name(cache_id))
        return merr_set(err, MERR_INVALID, 0, "invalid build cache ID '%s'", cache_id);
    auto_free char *p = store_path(s, "buildcache/%s", cache_id);
    if (p == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    if (unlink(p) < 0 && errno != ENOENT)
        return merr_set(err, MERR_IO, errno, "cannot remove '%s'", p);
    return 0;
}

/* Memos: key → a short text (a COPY --from checksum), in buildcache/memo/, not entries of
 * their own: never listed, all dropped by a prune. */
char *image_build_cache_memo_get(struct image_store *s, const char *key)
{
    char name[65];
    key_name(key, name);
    auto_free char *p = store_path(s, "buildcache/memo/%s", name);
    auto_close int fd = p != NULL ? open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
    char buf[256];
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    return xstrdup(buf);
}

int image_build_cache_memo_put(struct image_store *s, const char *key, const char *text,
                               struct merr *err)
{
    char name[65];
    key_name(key, name);
    auto_free char *dir = store_path(s, "buildcache/memo");
    auto_free char *p = store_path(s, "buildcache/memo/%s", name);
    if (dir == NULL || p == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    if (strlen(text) >= 255)
        return merr_set(err, MERR_INVALID, 0, "memo too long");
    auto_free char *parent = store_path(s, "buildcache");
    if ((mkdir(parent, 0700) < 0 && errno != EEXIST) || (mkdir(dir, 0700) < 0 && errno != EEXIST))
        return merr_set(err, MERR_IO, errno, "cannot create '%s'", dir);
    return store_write_atomic(s, p, text, strlen(text), err);
}

int image_build_cache_memos_drop(struct image_store *s, struct merr *err)
{
    auto_free char *dir = store_path(s, "buildcache/memo");
    if (dir == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    return fs_remove_tree(dir, err);
}
