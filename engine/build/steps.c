/* The builder's steps: FROM, configuration steps (committed without a layer), RUN (a container
 * of the engine), COPY/ADD and WORKDIR (files put into a container, committed as a layer), and
 * the build cache in front of each. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "build/builder-priv.h"
#include "container/manager.h"
#include "error.h"
#include "fsutil.h"
#include "image/image.h"
#include "strv.h"

#define FRAME_MAX (1u << 20)

int bld_open_beneath(int rootfd, const char *rel, int flags)
{
    struct open_how how = { .flags = (uint64_t)(flags | O_CLOEXEC),
                            .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
    int fd;
    do
        fd = (int)syscall(SYS_openat2, rootfd, rel[0] ? rel : ".", &how, sizeof how);
    while (fd < 0 && errno == EAGAIN);
    return fd;
}

int bld_set_image(struct builder *b, const char *id, struct merr *err)
{
    auto_free char *text = image_config_json(b->env->images, id, err);
    if (text == NULL)
        return -1;
    json_error_t jerr;
    json_t *full = json_loads(text, 0, &jerr);
    if (full == NULL)
        return merr_set(err, MERR_CORRUPT, 0, "image %s has an invalid config", id);
    json_t *cfg = json_object_get(full, "config");
    json_decref(b->cfg);
    b->cfg = json_is_object(cfg) ? json_deep_copy(cfg) : json_object();
    json_decref(full);
    free(b->cur);
    b->cur = xstrdup(id);
    b->scratch = false;
    return 0;
}

/* "[\"a\" \"b\"]": Go's %q of a []string, as dockerd writes CMD/ENTRYPOINT/SHELL steps. */
static char *go_quoted(const json_t *list)
{
    char *out = xstrdup("[");
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        json_t *s = json_string(json_string_value(v) ? json_string_value(v) : "");
        char *q = json_dumps(s, JSON_ENCODE_ANY);
        char *next = xasprintf("%s%s%s", out, i ? " " : "", q);
        free(q);
        json_decref(s);
        free(out);
        out = next;
    }
    char *done = xasprintf("%s]", out);
    free(out);
    return done;
}

/* The cache key of a step: parent image, what the step does, the config it leaves. */
char *bld_cache_key(struct builder *b, const char *created_by)
{
    char *cfg = json_dumps(b->cfg, JSON_COMPACT | JSON_SORT_KEYS);
    char *key = xasprintf("%s\n%s\n%s\n%s", b->scratch ? "scratch" : b->cur, created_by,
                          cfg != NULL ? cfg : "",
                          b->author != NULL ? b->author : "");
    free(cfg);
    return key;
}

/* cachefrom: an image of those chains made by the same step (parent, history text, config),
 * as dockerd's image source cache matches them. */
static const char *cache_from_match(struct builder *b, const char *created_by)
{
    const char *id;
    json_t *cfg;
    json_object_foreach(b->cache_from, id, cfg)
    {
        const char *parent = json_string_value(json_object_get(cfg, "parent"));
        bool parentless = parent == NULL || parent[0] == '\0';
        if (b->scratch ? !parentless : parentless || strcmp(parent, b->cur) != 0)
            continue;
        json_t *hist = json_object_get(cfg, "history");
        json_t *last = json_array_get(hist, json_array_size(hist) - 1);
        const char *by = json_string_value(json_object_get(last, "created_by"));
        json_t *c = json_object_get(cfg, "config");
        if (by != NULL && strcmp(by, created_by) == 0 &&
            (json_equal(c, b->cfg) || (c == NULL && json_object_size(b->cfg) == 0)))
            return id;
    }
    return NULL;
}

/* A hit moves the stage on: " ---> Using cache" and the image. With cachefrom only those
 * images' steps are the cache. */
bool bld_cache_hit(struct builder *b, const char *key, const char *created_by, struct merr *err,
                   int *rc)
{
    *rc = 0;
    if (b->o->nocache)
        return false;
    auto_free char *id = b->cache_from == NULL ? image_build_cache_get(b->env->images, key,
                                                                       b->env->defer_cache_uses)
                                               : NULL;
    if (b->cache_from != NULL && cache_from_match(b, created_by) != NULL)
        id = xstrdup(cache_from_match(b, created_by));
    if (id == NULL)
        return false;
    if ((*rc = bld_set_image(b, id, err)) == 0) {
        bld_emit_stream(b, " ---> Using cache\n");
        bld_emit_stream(b, " ---> %.12s\n", bld_short(id));
    }
    return true;
}

struct layer_src {
    struct ctr_commit_src src;
};

static int write_ctr_layer(void *ctx, int fd, struct merr *err)
{
    return ctr_commit_write_layer(&((struct layer_src *)ctx)->src, fd, err);
}

/* Commits the stage's config (and cid's changes when cid is set) as the next image. */
int bld_commit_step(struct builder *b, const char *cid, const char *created_by,
                       const char *key, struct merr *err)
{
    struct layer_src ls;
    bool have = cid != NULL;
    if (have && ctr_commit_source(b->env->containers, cid, &ls.src, err) < 0)
        return -1;
    struct image_commit_spec spec = {
        .parent_id = b->scratch ? NULL : b->cur,
        .write_layer = have ? write_ctr_layer : NULL,
        .layer_ctx = &ls,
        .drop_empty_layer = true,
        .config = b->cfg,
        .author = b->author,
        .created_by = created_by,
        .record_parent = !b->scratch,
    };
    char *id = NULL;
    int rc = image_commit(b->env->images, &spec, &id, err);
    if (have)
        ctr_commit_src_release(&ls.src);
    if (rc < 0)
        return -1;
    struct merr ignored = MERR_INIT;
    if (image_build_cache_put(b->env->images, key, id, created_by, &ignored) < 0) {
        /* a missing cache entry only costs the next build time */
    }
    rc = bld_set_image(b, id, err);
    free(id);
    return rc;
}

static const char *str_or_empty(const json_t *v)
{
    return json_string_value(v) != NULL ? json_string_value(v) : "";
}

/* A container of the current image for a step (never started unless RUN). */
int bld_step_container(struct builder *b, json_t *cmd, json_t *env, char **cid,
                          struct merr *err)
{
    const char *nm = b->o->network_mode != NULL && b->o->network_mode[0] ? b->o->network_mode
                                                                         : "default";
    json_t *body = json_pack("{s:s,s:O,s:[s],s:O,s:s,s:s,s:{s:s}}", "Image", b->cur, "Cmd", cmd,
                             "Entrypoint", "", "Env", env != NULL ? env : json_array(), "User",
                             str_or_empty(json_object_get(b->cfg, "User")), "WorkingDir",
                             str_or_empty(json_object_get(b->cfg, "WorkingDir")),
                             "HostConfig", "NetworkMode", nm);
    if (json_is_object(b->o->host_config))
        json_object_update(json_object_get(body, "HostConfig"), b->o->host_config);
    if (env == NULL)
        json_decref(json_object_get(body, "Env")); /* the O above took its own reference */
    int rc = ctr_create(b->env->containers, NULL, body, cid, err);
    json_decref(body);
    return rc;
}

void bld_remove_container(struct builder *b, const char *cid, bool announce)
{
    struct merr ignored = MERR_INIT;
    if (announce)
        bld_emit_stream(b, "Removing intermediate container %.12s\n", cid);
    if (ctr_remove(b->env->containers, cid, true, true, &ignored) < 0) {
        /* left for docker rm, as dockerd leaves what it cannot remove */
    }
}

/* A configuration step: " ---> Running in", the commit, "Removing intermediate container". */
static int step_nop(struct builder *b, const char *text, struct merr *err)
{
    auto_free char *created_by = xasprintf("/bin/sh -c #(nop)  %s", text);
    auto_free char *key = bld_cache_key(b, created_by);
    int rc;
    if (bld_cache_hit(b, key, created_by, err, &rc))
        return rc;
    json_t *cmd = json_pack("[s,s,s,s]", "/bin/sh", "-c", "#(nop) ", text);
    char *cid = NULL;
    rc = bld_step_container(b, cmd, NULL, &cid, err);
    json_decref(cmd);
    if (rc < 0)
        return -1;
    bld_emit_stream(b, " ---> Running in %.12s\n", cid);
    rc = bld_commit_step(b, NULL, created_by, key, err);
    bld_remove_container(b, cid, b->o->rm || b->o->forcerm);
    free(cid);
    if (rc == 0)
        bld_emit_stream(b, " ---> %.12s\n", bld_short(b->cur));
    return rc;
}

/* FROM scratch: an image without layers or history that only step containers use; the first
 * commit has no parent, as dockerd's. */
static int from_scratch(struct builder *b, struct merr *err)
{
    json_t *cfg = json_object();
    struct image_commit_spec spec = { .config = cfg };
    char *id = NULL;
    int rc = image_commit(b->env->images, &spec, &id, err);
    json_decref(cfg);
    if (rc < 0)
        return -1;
    json_array_append_new(b->placeholders, json_string(id));
    rc = bld_set_image(b, id, err);
    free(id);
    b->scratch = rc == 0;
    return rc;
}

static int step_from(struct builder *b, const struct df_instr *in, struct merr *err)
{
    for (size_t i = 0; in->flags[i] != NULL; i++) {
        if (strncmp(in->flags[i], "--platform=", 11) != 0)
            return merr_set(err, MERR_INVALID, 0, "Unknown flag: %s", in->flags[i] + 2);
        const char *p = in->flags[i] + 11;
        if (strcmp(p, "linux/amd64") != 0 && strcmp(p, "linux") != 0 &&
            strcmp(p, "$BUILDPLATFORM") != 0 && strcmp(p, "$TARGETPLATFORM") != 0)
            return merr_set(err, MERR_INVALID, 0,
                            "FROM --platform=%s: other platforms are not supported by "
                            "machine-engine", p);
    }
    if (in->args[1] != NULL && (in->args[2] == NULL || strcasecmp(in->args[1], "as") != 0 ||
                                in->args[3] != NULL))
        return merr_set(err, MERR_INVALID, 0, "FROM requires either one or three arguments");
    auto_free char *ref = df_expand_word(in->args[0], b->df->escape, bld_lookup_meta, b, err);
    if (ref == NULL)
        return -1;
    /* the previous stage is done */
    if (b->cur != NULL && b->n_stages > 0)
        b->stages[b->n_stages - 1].image_id = xstrdup(b->cur);
    b->stages = realloc(b->stages, (b->n_stages + 1) * sizeof *b->stages);
    if (b->stages == NULL)
        abort();
    struct bld_stage *st = &b->stages[b->n_stages++];
    memset(st, 0, sizeof *st);
    if (in->args[1] != NULL) {
        st->name = xstrdup(in->args[2]);
        for (char *c = st->name; *c; c++)
            *c = (char)tolower((unsigned char)*c);
    }
    json_decref(b->stage_args);
    b->stage_args = json_object();
    b->cmd_set = false;
    free(b->author);
    b->author = NULL;
    if (strcasecmp(ref, "scratch") == 0)
        return from_scratch(b, err);
    for (size_t i = 0; i + 1 < b->n_stages; i++)
        if (b->stages[i].name != NULL && strcasecmp(b->stages[i].name, ref) == 0) {
            int rc = bld_set_image(b, b->stages[i].image_id, err);
            if (rc == 0)
                bld_emit_stream(b, " ---> %.12s\n", bld_short(b->cur));
            return rc;
        }
    return bld_from_image(b, ref, err);
}

/* The shell form wrapped in SHELL, or the JSON form, with expansion left to the shell. */
static json_t *run_cmd(struct builder *b, const struct df_instr *in)
{
    if (in->json) {
        json_t *a = json_array();
        for (size_t i = 0; in->args[i] != NULL; i++)
            json_array_append_new(a, json_string(in->args[i]));
        return a;
    }
    json_t *shell = json_object_get(b->cfg, "Shell");
    json_t *a = json_array_size(shell) > 0 ? json_deep_copy(shell)
                                           : json_pack("[s,s]", "/bin/sh", "-c");
    json_array_append_new(a, json_string(in->args[0] != NULL ? in->args[0] : ""));
    return a;
}

static char *joined(const json_t *list)
{
    char *out = xstrdup("");
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        char *next = xasprintf("%s%s%s", out, i ? " " : "", json_string_value(v));
        free(out);
        out = next;
    }
    return out;
}

/* Copies a container's output (stdcopy frames) into {"stream": ...} messages. */
static void pump_output(struct builder *b, int fd)
{
    unsigned char hdr[8];
    char *buf = xcalloc(1, FRAME_MAX);
    for (;;) {
        size_t got = 0;
        while (got < sizeof hdr) {
            ssize_t n = read(fd, hdr + got, sizeof hdr - got);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                goto out;
            got += (size_t)n;
        }
        size_t len = (size_t)hdr[4] << 24 | (size_t)hdr[5] << 16 | (size_t)hdr[6] << 8 | hdr[7];
        for (size_t left = len; left > 0;) {
            size_t want = left < FRAME_MAX ? left : FRAME_MAX;
            ssize_t n = read(fd, buf, want);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                goto out;
            /* stderr in red, each write on its own, as dockerd's stderr writer */
            json_t *text = json_stringn_nocheck(buf, (size_t)n);
            if (hdr[0] == 2) {
                char *red = xasprintf("\x1b[91m%s\x1b[0m", json_string_value(text));
                json_decref(text);
                text = json_string_nocheck(red);
                free(red);
            }
            json_t *msg = json_pack("{s:o}", "stream", text);
            if (!b->gone && b->env->emit(b->env->emit_ctx, msg) < 0)
                b->gone = true;
            json_decref(msg);
            left -= (size_t)n;
        }
    }
out:
    free(buf);
}

/* Starts cid, streams its output and waits: its exit code. */
static int run_container(struct builder *b, const char *cid, int *code, struct merr *err)
{
    struct ctr_output_sub sub = { -1 };
    int stdin_fd = -1;
    bool once = false;
    struct ctr_waiter *w = NULL;
    if (ctr_attach(b->env->containers, cid, false, &sub, &stdin_fd, &once, err) < 0)
        return -1;
    int rc = ctr_wait_prepare(b->env->containers, cid, CTR_WAIT_NEXT_EXIT, &w, err);
    if (rc == 0)
        rc = ctr_start(b->env->containers, cid, err) < 0 ? -1 : 0;
    if (rc == 0)
        pump_output(b, sub.fd);
    close(sub.fd);
    if (stdin_fd >= 0)
        close(stdin_fd);
    char *msg = NULL;
    if (rc == 0)
        rc = ctr_wait_finish(w, -1, code, &msg, err);
    free(msg);
    ctr_waiter_free(w);
    return rc;
}

static int kv_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The build args a RUN sees, as dockerd's FilterAllowed: the stage's declared ARGs with values
 * and the proxy args the client gave (declared or not), less the names ENV set. Only the
 * declared ones go into the history (and so the cache key), sorted: "|N K=V ... ". A proxy
 * arg's value (often with credentials) is never baked into the image unless an ARG names it. */
static json_t *arg_env(struct builder *b, char **prefix)
{
    json_t *env = json_array(), *cfg_env = json_object_get(b->cfg, "Env");
    char **hist = xcalloc(1, sizeof *hist);
    size_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach(b->stage_args, k, v)
    {
        if (!json_is_string(v) || df_lookup_env_array(cfg_env, k) != NULL)
            continue;
        auto_free char *kv = xasprintf("%s=%s", k, json_string_value(v));
        json_array_append_new(env, json_string(kv));
        hist = strv_push(hist, kv);
        n++;
    }
    json_object_foreach(b->o->buildargs, k, v)
    {
        if (!json_is_string(v) || !bld_is_builtin_arg(k) ||
            json_object_get(b->stage_args, k) != NULL || df_lookup_env_array(cfg_env, k) != NULL)
            continue;
        auto_free char *kv = xasprintf("%s=%s", k, json_string_value(v));
        json_array_append_new(env, json_string(kv));
    }
    qsort(hist, n, sizeof *hist, kv_cmp);
    char *p = xstrdup("");
    for (size_t i = 0; i < n; i++) {
        char *next = xasprintf("%s %s", p, hist[i]);
        free(p);
        p = next;
    }
    *prefix = n > 0 ? xasprintf("|%zu%s ", n, p) : xstrdup("");
    free(p);
    strv_free(hist);
    return env;
}

static int step_run(struct builder *b, const struct df_instr *in, struct merr *err)
{
    if (in->flags[0] != NULL)
        return merr_set(err, MERR_INVALID, 0, "RUN %s is not supported by machine-engine's "
                        "classic builder", in->flags[0]);
    json_t *cmd = run_cmd(b, in);
    auto_free char *prefix = NULL;
    json_t *env = arg_env(b, &prefix);
    auto_free char *text = joined(cmd);
    auto_free char *created_by = xasprintf("%s%s", prefix, text);
    auto_free char *key = bld_cache_key(b, created_by);
    int rc;
    if (bld_cache_hit(b, key, created_by, err, &rc)) {
        json_decref(cmd);
        json_decref(env);
        return rc;
    }
    char *cid = NULL;
    rc = bld_step_container(b, cmd, env, &cid, err);
    json_decref(cmd);
    json_decref(env);
    if (rc < 0)
        return -1;
    bld_emit_stream(b, " ---> Running in %.12s\n", cid);
    int code = 0;
    rc = run_container(b, cid, &code, err);
    if (rc == 0 && code != 0) {
        b->exit_code = code;
        rc = merr_set(err, MERR_REMOTE, 0, "The command '%s' returned a non-zero code: %d", text,
                      code);
        if (b->o->forcerm)
            bld_remove_container(b, cid, false);
        free(cid);
        return rc;
    }
    if (rc == 0)
        rc = bld_commit_step(b, cid, created_by, key, err);
    if (rc == 0 || b->o->forcerm)
        bld_remove_container(b, cid, rc == 0 && (b->o->rm || b->o->forcerm));
    free(cid);
    if (rc == 0)
        bld_emit_stream(b, " ---> %.12s\n", bld_short(b->cur));
    return rc;
}

static int step_arg(struct builder *b, const struct df_instr *in, struct merr *err)
{
    for (size_t k = 0; in->args[k] != NULL; k++) {
        /* an ARG without a value inside a stage takes the value declared before FROM */
        auto_free char *name = xstrdup(in->args[k]);
        char *eq = strchr(name, '=');
        if (eq != NULL)
            *eq = '\0';
        json_t *meta = json_object_get(b->meta, name);
        if (bld_declare_arg(b, in->args[k], b->stage_args, bld_lookup_env_arg,
                            json_is_string(meta) ? meta : NULL, err) < 0)
            return -1;
    }
    return step_nop(b, in->original, err);
}

/* Config steps: the config changes, then a layerless commit named as dockerd names it. */
static int step_config(struct builder *b, const struct df_instr *in, struct merr *err)
{
    if (df_apply_config(b->cfg, in, b->df->escape, bld_lookup_arg, b, &b->author, &b->cmd_set,
                        err) < 0)
        return -1;
    const char *c = in->cmd;
    auto_free char *text = NULL;
    if (strcmp(c, "cmd") == 0 || strcmp(c, "entrypoint") == 0 || strcmp(c, "shell") == 0) {
        json_t *v = json_object_get(b->cfg, strcmp(c, "cmd") == 0          ? "Cmd"
                                            : strcmp(c, "entrypoint") == 0 ? "Entrypoint"
                                                                           : "Shell");
        auto_free char *q = go_quoted(v);
        text = xasprintf("%s %s", strcmp(c, "cmd") == 0          ? "CMD"
                                  : strcmp(c, "entrypoint") == 0 ? "ENTRYPOINT"
                                                                 : "SHELL",
                         q);
    } else {
        text = xstrdup(in->original);
    }
    return step_nop(b, text, err);
}

int bld_dispatch(struct builder *b, const struct df_instr *in, bool numbered, struct merr *err)
{
    if (numbered &&
        bld_emit_stream(b, "Step %zu/%zu : %s\n", ++b->step, b->total, in->original) < 0)
        return merr_set(err, MERR_IO, 0, "the client went away");
    const char *c = in->cmd;
    if (strcmp(c, "from") == 0)
        return step_from(b, in, err);
    if (b->cur == NULL)
        return merr_set(err, MERR_INVALID, 0, "no build stage in current context");
    if (strcmp(c, "run") == 0)
        return step_run(b, in, err);
    if (strcmp(c, "arg") == 0)
        return step_arg(b, in, err);
    if (strcmp(c, "copy") == 0 || strcmp(c, "add") == 0)
        return bld_step_copy(b, in, err);
    if (strcmp(c, "workdir") == 0)
        return bld_step_workdir(b, in, err);
    return step_config(b, in, err);
}
