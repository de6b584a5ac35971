/* The classic builder: stages, steps, the build cache and dockerd's messages. The steps that
 * touch files (RUN, COPY, ADD, WORKDIR) are in steps.c. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build/builder-priv.h"
#include "container/manager.h"
#include "error.h"
#include "fsutil.h"
#include "image/image.h"
#include "strv.h"

#define DOCKERFILE_MAX (4u << 20)
#define IGNORE_MAX (1u << 20)

int bld_emit_stream(struct builder *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = NULL;
    int r = vasprintf(&text, fmt, ap);
    va_end(ap);
    if (r < 0)
        return -1;
    json_t *msg = json_pack("{s:s}", "stream", text);
    free(text);
    int rc = b->env->emit(b->env->emit_ctx, msg);
    json_decref(msg);
    if (rc < 0)
        b->gone = true;
    return rc;
}

const char *bld_short(const char *id)
{
    return strncmp(id, "sha256:", 7) == 0 ? id + 7 : id;
}

/* Build args visible to expansion: the stage's declared ARGs. */
const char *bld_lookup_arg(void *ctx, const char *name)
{
    struct builder *b = ctx;
    return json_string_value(json_object_get(b->stage_args, name));
}

/* Expansion in COPY/ADD/ARG: the config's Env first, then the stage's ARGs. */
const char *bld_lookup_env_arg(void *ctx, const char *name)
{
    struct builder *b = ctx;
    const char *v = df_lookup_env_array(json_object_get(b->cfg, "Env"), name);
    return v != NULL ? v : bld_lookup_arg(ctx, name);
}

static int read_small(int rootfd, const char *rel, size_t max, char **out, size_t *len,
                      struct merr *err)
{
    auto_close int fd = bld_open_beneath(rootfd, rel, O_RDONLY);
    struct stat st;
    if (fd < 0)
        return merr_set(err, errno == ENOENT ? MERR_NOT_FOUND : MERR_IO, errno,
                        "cannot open '%s' in the build context", rel);
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > max)
        return merr_set(err, MERR_INVALID, 0, "'%s' is not a regular file of at most %zu bytes",
                        rel, max);
    char *buf = xcalloc(1, (size_t)st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    *out = buf;
    *len = got;
    return 0;
}

static int load_files(struct builder *b, struct merr *err)
{
    auto_close int rootfd = open(b->o->context_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return merr_set(err, MERR_IO, errno, "cannot open the build context");
    const char *name = b->o->dockerfile != NULL && b->o->dockerfile[0] ? b->o->dockerfile
                                                                       : "Dockerfile";
    auto_free char *text = NULL;
    size_t len = 0;
    if (read_small(rootfd, name, DOCKERFILE_MAX, &text, &len, err) < 0) {
        if (err->code == MERR_NOT_FOUND)
            merr_set(err, MERR_INVALID, 0,
                     "Cannot locate specified Dockerfile: %s", name);
        return -1;
    }
    if (df_parse(text, len, &b->df, err) < 0)
        return -1;
    auto_free char *ig = NULL;
    struct merr missing = MERR_INIT;
    if (read_small(rootfd, ".dockerignore", IGNORE_MAX, &ig, &len, &missing) == 0 &&
        df_ignore_parse(ig, len, &b->ignore, err) < 0)
        return merr_prefix(err, ".dockerignore");
    return 0;
}

/* --label k=v: a LABEL instruction appended to the Dockerfile, as dockerd does. */
static int add_label_option(struct builder *b, struct merr *err)
{
    if (json_object_size(b->o->labels) == 0)
        return 0;
    char *line = xstrdup("LABEL");
    const char *k;
    json_t *v;
    json_object_foreach(b->o->labels, k, v)
    {
        json_t *jk = json_string(k), *jv = json_string(json_string_value(v) ? json_string_value(v) : "");
        char *ek = json_dumps(jk, JSON_ENCODE_ANY), *ev = json_dumps(jv, JSON_ENCODE_ANY);
        char *next = xasprintf("%s %s=%s", line, ek, ev);
        free(line);
        free(ek);
        free(ev);
        json_decref(jk);
        json_decref(jv);
        line = next;
    }
    struct df_instr *in = NULL;
    int rc = df_parse_line(line, b->df->escape, &in, err);
    free(line);
    if (rc < 0)
        return -1;
    struct df_instr *v2 = realloc(b->df->v, (b->df->n + 1) * sizeof *v2);
    if (v2 == NULL)
        abort();
    b->df->v = v2;
    b->df->v[b->df->n++] = *in;
    free(in);
    return 0;
}

/* Which instructions run: meta ARGs, then the stages up to the target. */
static int plan(struct builder *b, struct merr *err)
{
    size_t i = 0;
    while (i < b->df->n && strcmp(b->df->v[i].cmd, "arg") == 0)
        i++;
    b->n_meta = i;
    if (i == b->df->n || strcmp(b->df->v[i].cmd, "from") != 0)
        return merr_set(err, MERR_INVALID, 0,
                        "no build stage in current context: the first instruction must be FROM");
    b->end = b->df->n;
    const char *target = b->o->target;
    bool found = target == NULL || target[0] == '\0';
    for (size_t k = i; k < b->df->n && target != NULL && target[0]; k++) {
        const struct df_instr *in = &b->df->v[k];
        if (strcmp(in->cmd, "from") != 0)
            continue;
        if (found) {
            b->end = k;
            break;
        }
        if (in->args[1] != NULL && in->args[2] != NULL && strcasecmp(in->args[1], "as") == 0 &&
            strcasecmp(in->args[2], target) == 0)
            found = true;
    }
    if (!found)
        return merr_set(err, MERR_INVALID, 0, "failed to reach build target %s in Dockerfile",
                        target);
    b->total = b->end;
    return 0;
}

static int meta_args(struct builder *b, struct merr *err)
{
    for (size_t i = 0; i < b->n_meta; i++) {
        const struct df_instr *in = &b->df->v[i];
        if (bld_emit_stream(b, "Step %zu/%zu : %s\n", ++b->step, b->total, in->original) < 0)
            return merr_set(err, MERR_IO, 0, "the client went away");
        for (size_t k = 0; in->args[k] != NULL; k++)
            if (bld_declare_arg(b, in->args[k], b->meta, bld_lookup_meta, NULL, err) < 0)
                return -1;
    }
    return 0;
}

int bld_declare_arg(struct builder *b, const char *decl, json_t *into, df_lookup_fn lookup,
                    json_t *fallback, struct merr *err)
{
    auto_free char *name = xstrdup(decl);
    char *eq = strchr(name, '=');
    const char *dflt = NULL;
    if (eq != NULL) {
        *eq = '\0';
        dflt = eq + 1;
    }
    json_t *given = json_object_get(b->o->buildargs, name);
    if (json_is_string(given)) {
        json_object_set(into, name, given);
        json_object_set_new(b->used_args, name, json_true());
    } else if (dflt != NULL) {
        auto_free char *v = df_expand_word(dflt, b->df->escape, lookup, b, err);
        if (v == NULL)
            return -1;
        json_object_set_new(into, name, json_string(v));
    } else {
        json_object_set(into, name, fallback != NULL ? fallback : json_null());
    }
    return 0;
}

const char *bld_lookup_meta(void *ctx, const char *name)
{
    struct builder *b = ctx;
    return json_string_value(json_object_get(b->meta, name));
}

bool bld_is_builtin_arg(const char *name)
{
    static const char *const builtin[] = { "HTTP_PROXY", "http_proxy", "HTTPS_PROXY",
                                           "https_proxy", "FTP_PROXY", "ftp_proxy", "NO_PROXY",
                                           "no_proxy", "ALL_PROXY", "all_proxy", NULL };
    for (size_t i = 0; builtin[i] != NULL; i++)
        if (strcmp(name, builtin[i]) == 0)
            return true;
    return false;
}

void bld_stage_release(struct bld_stage *st)
{
    free(st->name);
    free(st->image_id);
}

/* cachefrom: the named images and their parent chains, image ID → its config (a name that is
 * not there adds nothing, as dockerd only warns). */
static void cache_from_set(struct builder *b)
{
    if (json_array_size(b->o->cache_from) == 0)
        return;
    b->cache_from = json_object();
    size_t i;
    json_t *name;
    json_array_foreach(b->o->cache_from, i, name)
    {
        struct merr ignored = MERR_INIT;
        char *id = json_is_string(name) ? image_lookup(b->env->images, json_string_value(name),
                                                       &ignored)
                                        : NULL;
        for (int depth = 0; id != NULL && depth < 4096 &&
                            json_object_get(b->cache_from, id) == NULL;
             depth++) {
            auto_free char *text = image_config_json(b->env->images, id, &ignored);
            json_t *cfg = text != NULL ? json_loads(text, 0, NULL) : NULL;
            if (cfg == NULL)
                break;
            json_object_set_new(b->cache_from, id, cfg);
            const char *parent = json_string_value(json_object_get(cfg, "parent"));
            free(id);
            id = parent != NULL && parent[0] ? xstrdup(parent) : NULL;
        }
        free(id);
    }
}

static bool placeholder_in_use(const char *image_id, void *ctx)
{
    return ctr_image_in_use(ctx, image_id);
}

static void builder_release(struct builder *b)
{
    size_t k;
    json_t *id;
    json_array_foreach(b->placeholders, k, id)
    {
        struct merr ignored = MERR_INIT;
        char *report = NULL;
        if (image_remove(b->env->images, json_string_value(id), false, placeholder_in_use,
                         b->env->containers, &report, &ignored) == 0)
            free(report);
    }
    json_decref(b->placeholders);
    json_decref(b->cache_from);
    df_file_free(b->df);
    df_ignore_free(b->ignore);
    json_decref(b->meta);
    json_decref(b->used_args);
    json_decref(b->stage_args);
    json_decref(b->cfg);
    free(b->cur);
    free(b->author);
    for (size_t i = 0; i < b->n_stages; i++)
        bld_stage_release(&b->stages[i]);
    free(b->stages);
}

static int finish(struct builder *b, char **image_id_out, struct merr *err)
{
    /* build args nobody declared */
    const char *k;
    json_t *v;
    char *unused = NULL;
    json_object_foreach(b->o->buildargs, k, v)
    {
        if (json_object_get(b->used_args, k) != NULL || bld_is_builtin_arg(k))
            continue;
        char *next = xasprintf("%s%s%s", unused ? unused : "", unused ? " " : "", k);
        free(unused);
        unused = next;
    }
    if (unused != NULL) {
        bld_emit_stream(b, "[Warning] One or more build-args [%s] were not consumed\n", unused);
        free(unused);
    }
    json_t *aux = json_pack("{s:{s:s}}", "aux", "ID", b->cur);
    if (b->env->emit(b->env->emit_ctx, aux) < 0)
        b->gone = true;
    json_decref(aux);
    bld_emit_stream(b, "Successfully built %.12s\n", bld_short(b->cur));
    for (size_t i = 0; b->o->tags != NULL && b->o->tags[i] != NULL; i++) {
        if (image_tag(b->env->images, b->cur, b->o->tags[i], err) < 0)
            return merr_prefix(err, "cannot tag '%s'", b->o->tags[i]);
        bld_emit_stream(b, "Successfully tagged %s\n", b->o->tags[i]);
    }
    *image_id_out = xstrdup(b->cur);
    return 0;
}

int build_run(const struct build_env *env, const struct build_opts *o, char **image_id_out,
              int *exit_code, struct merr *err)
{
    struct builder b = { .env = env, .o = o, .meta = json_object(), .used_args = json_object(),
                         .stage_args = json_object(), .placeholders = json_array() };
    *exit_code = 0;
    cache_from_set(&b);
    int rc = load_files(&b, err);
    if (rc == 0)
        rc = add_label_option(&b, err);
    if (rc == 0)
        rc = plan(&b, err);
    if (rc == 0)
        rc = meta_args(&b, err);
    for (size_t i = b.n_meta; rc == 0 && i < b.end; i++) {
        if (b.gone) {
            rc = merr_set(err, MERR_IO, 0, "the client went away");
            break;
        }
        rc = bld_dispatch(&b, &b.df->v[i], true, err);
    }
    if (rc == 0)
        rc = finish(&b, image_id_out, err);
    *exit_code = b.exit_code;
    builder_release(&b);
    return rc;
}
