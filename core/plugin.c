/* Driver plugins: discovery, one process per call, and the adapter to `struct driver`. */
#include "plugin.h"

#include <dirent.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "command.h"
#include "context.h"
#include "driver.h"
#include "fsutil.h"
#include "jsonutil.h"
#include "lifecycle-priv.h"
#include "log.h"
#include "machine.h"
#include "store.h"
#include "strv.h"

#define PLUGIN_ERR_MAX (64 * 1024)
#define PLUGIN_MUTATE_DEFAULT_MS 300000

static bool is_executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* The directories searched, in order. */
static char **search_dirs(const struct store *s)
{
    char **dirs = xcalloc(1, sizeof(char *));
    const char *lists[] = { getenv("MACHINE_DRIVER_PATH"), NULL, getenv("PATH") };
    auto_free char *store_dir = s != NULL && s->root != NULL ? path_join(s->root, "drivers") : NULL;
    for (size_t i = 0; i < 3; i++) {
        if (i == 1) {
            if (store_dir != NULL)
                dirs = strv_push(dirs, store_dir);
            continue;
        }
        const char *p = lists[i];
        while (p != NULL && *p != '\0') {
            size_t len = strcspn(p, ":");
            if (len > 0) {
                auto_free char *d = xasprintf("%.*s", (int)len, p);
                dirs = strv_push(dirs, d);
            }
            p += len + (p[len] == ':');
        }
    }
    return dirs;
}

static bool valid_name(const char *name)
{
    if (name == NULL || name[0] == '\0' || strlen(name) > 64)
        return false;
    return strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-_") == strlen(name);
}

char *plugin_find(const struct store *s, const char *name)
{
    if (!valid_name(name))
        return NULL;
    auto_strv char **dirs = search_dirs(s);
    for (size_t i = 0; dirs[i] != NULL; i++) {
        char *path = xasprintf("%s/%s%s", dirs[i], PLUGIN_PREFIX, name);
        if (is_executable(path))
            return path;
        free(path);
    }
    return NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **plugin_list(const struct store *s, const struct driver *const *builtins)
{
    char **names = xcalloc(1, sizeof(char *));
    auto_strv char **dirs = search_dirs(s);
    for (size_t i = 0; dirs[i] != NULL; i++) {
        DIR *d = opendir(dirs[i]);
        struct dirent *e;
        while (d != NULL && (e = readdir(d)) != NULL) {
            const char *name = e->d_name + strlen(PLUGIN_PREFIX);
            if (strncmp(e->d_name, PLUGIN_PREFIX, strlen(PLUGIN_PREFIX)) != 0 || !valid_name(name) ||
                driver_find(builtins, name) != NULL)
                continue;
            bool seen = false;
            for (size_t k = 0; names[k] != NULL && !seen; k++)
                seen = strcmp(names[k], name) == 0;
            auto_free char *path = path_join(dirs[i], e->d_name);
            if (!seen && is_executable(path))
                names = strv_push(names, name);
        }
        if (d != NULL)
            closedir(d);
    }
    qsort(names, strv_len(names), sizeof *names, cmp_str);
    return names;
}

static void log_stderr(const struct mlog *log, const char *name, const char *text)
{
    while (log != NULL && text != NULL && *text != '\0') {
        size_t len = strcspn(text, "\n");
        mlog_debug(log, "driver plugin '%s': %.*s", name, (int)len, text);
        text += len + (text[len] == '\n');
    }
}

/* Runs plugin `name` once with one request; parses its answer. */
static int plugin_run(const struct cmd_runner *runner, const struct mlog *log, const char *path,
                      const char *name, const char *request, int timeout_ms,
                      struct plugin_reply *out, struct merr *err)
{
    char *argv[] = { (char *)path, NULL };
    struct cmd_spec spec = { .path = path, .argv = argv, .in = request, .in_len = strlen(request),
                             .timeout_ms = timeout_ms, .out_max = PLUGIN_OUT_MAX,
                             .err_max = PLUGIN_ERR_MAX };
    struct cmd_result res = { 0 };
    struct merr run_err = MERR_INIT;
    int rc = cmd_run(runner, &spec, &res, &run_err);
    log_stderr(log, name, res.err.data);
    if (rc < 0 && run_err.code == MERR_NOT_FOUND) {
        cmd_result_release(&res);
        *err = run_err;
        return merr_prefix(err, "driver plugin '%s'", name);
    }
    if (res.timed_out) {
        cmd_result_release(&res);
        return merr_set(err, MERR_TIMEOUT, 0, "driver plugin '%s' did not answer within %d s", name,
                        (timeout_ms + 999) / 1000);
    }
    if (res.truncated) {
        cmd_result_release(&res);
        return merr_set(err, MERR_PROTOCOL, 0, "driver plugin '%s' wrote more than %d bytes", name,
                        PLUGIN_OUT_MAX);
    }
    struct merr perr = MERR_INIT;
    int prc = plugin_parse_reply(name, res.out.data != NULL ? res.out.data : "", out, &perr);
    for (char **p = out->progress; prc < 0 && p != NULL && *p != NULL; p++)
        mlog_debug(log, "driver plugin '%s' (failed call): %s", name, *p); /* not lost */
    bool answered = prc == 0 || (perr.code != MERR_PROTOCOL);
    if (rc < 0 && !(answered && prc < 0)) {
        /* died (or exited non-zero) without an error answer: a crash */
        merr_set(err, MERR_PROTOCOL, 0, "driver plugin '%s' %s %d%s", name,
                 res.signaled ? "was killed by signal" : "exited with status",
                 res.signaled ? res.status - 128 : res.status,
                 prc == 0 ? "" : " before answering");
        plugin_reply_release(out);
        cmd_result_release(&res);
        return -1;
    }
    cmd_result_release(&res);
    if (prc < 0) {
        *err = perr;
        plugin_reply_release(out);
        return -1;
    }
    return 0;
}

/* ---- the adapter ---- */

struct plugin_driver {
    struct driver d; /* first: the table core sees */
    struct plugin_info info;
    struct driver_flag *flags;
    char *path;
};

struct plugin_set {
    pthread_mutex_t lock; /* `ls` asks for drivers from several threads */
    struct plugin_driver **items;
    size_t n;
};

static int call_timeout(const struct driver_ctx *ctx, bool query)
{
    if (query)
        return ctx->timeout_ms > 0 ? ctx->timeout_ms : 10000;
    if (ctx->deadline_ms > 0) {
        long long left = ctx->deadline_ms - clock_now_ms();
        return left > 1000 ? (int)left : 1000;
    }
    return PLUGIN_MUTATE_DEFAULT_MS;
}

static int call(const struct driver_ctx *ctx, const struct machine *m, const char *verb,
                const char *pubkey, struct plugin_reply *out, struct merr *err)
{
    const char *name = m->driver_name;
    auto_free char *path = plugin_find(ctx->store, name);
    if (path == NULL)
        return merr_set(err, MERR_NOT_FOUND, 0, "driver plugin '%s' not found (no %s%s in "
                        "$MACHINE_DRIVER_PATH, the store's drivers/ or PATH)", name, PLUGIN_PREFIX, name);
    bool query = strcmp(verb, "state") == 0 || strcmp(verb, "ip") == 0 || strcmp(verb, "url") == 0;
    int timeout = call_timeout(ctx, query);
    auto_free char *req = plugin_request(verb, m, pubkey, timeout);
    if (plugin_run(ctx->command, ctx->log, path, name, req, timeout, out, err) < 0)
        return -1;
    const struct machine_ctx *mctx = ctx->owner;
    for (char **p = out->progress; mctx != NULL && *p != NULL; p++)
        lifecycle_progress(mctx, "%s", *p);
    return 0;
}

/* The members a verb's result may carry. */
static int check_result(const struct plugin_reply *r, const char *member, struct merr *err)
{
    const char *key;
    json_t *v;
    json_object_foreach(r->result, key, v) {
        if (strcmp(key, member) != 0)
            return merr_set(err, MERR_PROTOCOL, 0, "driver plugin '%s' sent an unknown field '%s'",
                            r->info.name, key);
    }
    return 0;
}

static int mutate(const struct driver_ctx *ctx, struct machine *m, const char *verb,
                  const char *pubkey, struct merr *err)
{
    struct plugin_reply r;
    if (call(ctx, m, verb, pubkey, &r, err) < 0)
        return -1;
    int rc = check_result(&r, "fields", err) < 0 ? -1 : plugin_apply_fields(&r.info, r.result, m, err);
    plugin_reply_release(&r);
    return rc;
}

static int op_precreate(const struct driver_ctx *c, struct machine *m, struct merr *e)
{
    return mutate(c, m, "precreate_check", NULL, e);
}
static int op_create(const struct driver_ctx *c, struct machine *m, struct merr *e)
{
    return mutate(c, m, "create", c->ssh_public_key, e);
}
static int op_remove(const struct driver_ctx *c, struct machine *m, struct merr *e)
{
    return mutate(c, m, "remove", NULL, e);
}
static int op_start(const struct driver_ctx *c, struct machine *m, struct merr *e)
{
    return mutate(c, m, "start", NULL, e);
}
static int op_stop(const struct driver_ctx *c, struct machine *m, struct merr *e)
{
    return mutate(c, m, "stop", NULL, e);
}
static int op_restart(const struct driver_ctx *c, struct machine *m, struct merr *e)
{
    return mutate(c, m, "restart", NULL, e);
}
static int op_kill(const struct driver_ctx *c, struct machine *m, struct merr *e)
{
    return mutate(c, m, "kill", NULL, e);
}
static int op_upgrade(const struct driver_ctx *c, struct machine *m, struct merr *e)
{
    return mutate(c, m, "upgrade", NULL, e);
}

/* A query's single string answer. */
static char *query(const struct driver_ctx *ctx, const struct machine *m, const char *verb,
                   struct merr *err)
{
    struct plugin_reply r;
    if (call(ctx, m, verb, NULL, &r, err) < 0)
        return NULL;
    const char *v = json_string_value(json_object_get(r.result, verb));
    char *out = NULL;
    if (check_result(&r, verb, err) == 0) {
        if (v == NULL)
            merr_set(err, MERR_PROTOCOL, 0, "driver plugin '%s' answered %s without a string '%s'",
                     m->driver_name, verb, verb);
        else
            out = xstrdup(v);
    }
    plugin_reply_release(&r);
    return out;
}

static int op_state(const struct driver_ctx *ctx, const struct machine *m, enum machine_state *st,
                    struct merr *err)
{
    auto_free char *s = query(ctx, m, "state", err);
    if (s == NULL)
        return -1;
    for (int i = MSTATE_RUNNING; i <= MSTATE_TIMEOUT; i++) {
        if (strcmp(machine_state_name((enum machine_state)i), s) == 0) {
            *st = (enum machine_state)i;
            return 0;
        }
    }
    return merr_set(err, MERR_PROTOCOL, 0, "driver plugin '%s' answered an unknown state '%s'",
                    m->driver_name, s);
}

static char *op_ip(const struct driver_ctx *c, const struct machine *m, struct merr *e)
{
    return query(c, m, "ip", e);
}
static char *op_url(const struct driver_ctx *c, const struct machine *m, struct merr *e)
{
    return query(c, m, "url", e);
}

static void plugin_driver_free(struct plugin_driver *p)
{
    if (p == NULL)
        return;
    plugin_info_release(&p->info);
    plugin_flags_free(p->flags);
    free(p->path);
    free(p);
}

static void fill_ops(struct plugin_driver *p)
{
    const struct plugin_info *i = &p->info;
    struct driver *d = &p->d;
    d->name = i->name;
    d->description = i->description;
    d->flags = p->flags;
    d->uses_ssh = i->uses_ssh;
    d->precreate_check = plugin_info_can(i, "precreate_check") ? op_precreate : NULL;
    d->create = plugin_info_can(i, "create") ? op_create : NULL;
    d->remove = plugin_info_can(i, "remove") ? op_remove : NULL;
    d->start = plugin_info_can(i, "start") ? op_start : NULL;
    d->stop = plugin_info_can(i, "stop") ? op_stop : NULL;
    d->restart = plugin_info_can(i, "restart") ? op_restart : NULL;
    d->kill = plugin_info_can(i, "kill") ? op_kill : NULL;
    d->upgrade = plugin_info_can(i, "upgrade") ? op_upgrade : NULL;
    d->get_state = plugin_info_can(i, "state") ? op_state : NULL;
    d->get_ip = plugin_info_can(i, "ip") ? op_ip : NULL;
    d->get_url = plugin_info_can(i, "url") ? op_url : NULL;
}

static struct plugin_driver *plugin_load(const struct store *s, const struct mlog *log,
                                         const char *name, int timeout_ms, struct merr *err)
{
    auto_free char *path = plugin_find(s, name);
    if (path == NULL) {
        merr_set(err, MERR_NOT_FOUND, 0, "unknown driver '%s' (no built-in driver and no %s%s in "
                 "$MACHINE_DRIVER_PATH, the store's drivers/ or PATH)", name, PLUGIN_PREFIX, name);
        return NULL;
    }
    auto_free char *req = plugin_request("flags", NULL, NULL, timeout_ms);
    struct plugin_reply r;
    if (plugin_run(NULL, log, path, name, req, timeout_ms, &r, err) < 0)
        return NULL;
    struct plugin_driver *p = xcalloc(1, sizeof *p);
    p->info = r.info;
    memset(&r.info, 0, sizeof r.info);
    if (check_result(&r, "flags", err) == 0)
        p->flags = plugin_flags_import(name, r.result, err);
    plugin_reply_release(&r);
    if (p->flags == NULL) {
        plugin_driver_free(p);
        return NULL;
    }
    p->path = steal_pointer(&path);
    fill_ops(p);
    return p;
}

struct plugin_set *plugin_set_new(void)
{
    struct plugin_set *set = xcalloc(1, sizeof *set);
    pthread_mutex_init(&set->lock, NULL);
    return set;
}

void plugin_set_free(struct plugin_set *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->n; i++)
        plugin_driver_free(set->items[i]);
    free(set->items);
    pthread_mutex_destroy(&set->lock);
    free(set);
}

const struct driver *plugin_set_load(struct plugin_set *set, const struct store *s,
                                     const struct mlog *log, const struct driver *const *builtins,
                                     const char *name, int timeout_ms, struct merr *err)
{
    if (driver_find(builtins, name) != NULL) {
        merr_set(err, MERR_EXISTS, 0, "'%s' is a built-in driver: plugins cannot replace it", name);
        return NULL;
    }
    pthread_mutex_lock(&set->lock);
    struct plugin_driver *p = NULL;
    for (size_t i = 0; i < set->n && p == NULL; i++)
        if (strcmp(set->items[i]->info.name, name) == 0)
            p = set->items[i];
    if (p == NULL && (p = plugin_load(s, log, name, timeout_ms, err)) != NULL) {
        struct plugin_driver **items = realloc(set->items, (set->n + 1) * sizeof *items);
        if (items == NULL)
            abort();
        set->items = items;
        set->items[set->n++] = p;
    }
    pthread_mutex_unlock(&set->lock);
    return p != NULL ? &p->d : NULL;
}

const struct plugin_info *plugin_driver_info(const struct plugin_set *set, const struct driver *d)
{
    const struct plugin_info *info = NULL;
    if (set == NULL)
        return NULL;
    pthread_mutex_lock((pthread_mutex_t *)&set->lock);
    for (size_t i = 0; i < set->n && info == NULL; i++)
        if (&set->items[i]->d == d)
            info = &set->items[i]->info;
    pthread_mutex_unlock((pthread_mutex_t *)&set->lock);
    return info;
}
