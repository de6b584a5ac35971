/* Internals shared by builder.c and steps.c. */
#ifndef MACHINE_ENGINE_BUILD_BUILDER_PRIV_H
#define MACHINE_ENGINE_BUILD_BUILDER_PRIV_H

#ifndef MACHINE_BUILD_PRIV
#error "builder-priv.h is internal to engine/build/ and its tests (they define MACHINE_BUILD_PRIV)"
#endif

#include "build/builder.h"
#include "build/dockerfile.h"

struct bld_stage {
    char *name;     /* lowercase "AS" name, or NULL */
    char *image_id; /* its final image */
};

struct builder {
    const struct build_env *env;
    const struct build_opts *o;
    struct df_file *df;
    struct df_ignore *ignore;
    size_t n_meta, end, step, total;
    json_t *meta;       /* ARGs before the first FROM: name → value | null */
    json_t *used_args;  /* build args some ARG declared */
    json_t *stage_args; /* the current stage's ARGs: name → value | null */
    /* the current stage */
    char *cur;          /* image ID of the last step */
    json_t *cfg;        /* its config ("config" of the image config) */
    bool cmd_set;
    bool scratch;       /* cur is a placeholder for FROM scratch (no layers, no history) */
    json_t *placeholders; /* their IDs, removed when the build ends */
    json_t *cache_from;   /* with cachefrom: {image ID: config} of those images and their parents */
    char *author;       /* MAINTAINER */
    struct bld_stage *stages;
    size_t n_stages;
    bool gone;          /* the client went away */
    int exit_code;      /* of a failed RUN */
};

int bld_emit_stream(struct builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *bld_short(const char *id);
const char *bld_lookup_arg(void *ctx, const char *name);
const char *bld_lookup_env_arg(void *ctx, const char *name);
const char *bld_lookup_meta(void *ctx, const char *name);
/* One ARG declaration NAME[=DEFAULT] into `into`: the build arg the client gave (marked used),
 * else DEFAULT expanded with `lookup`, else `fallback` (NULL: json null). */
MUST_CHECK int bld_declare_arg(struct builder *b, const char *decl, json_t *into,
                               df_lookup_fn lookup, json_t *fallback, struct merr *err);
/* dockerd's builtinAllowedBuildArgs: the proxy variables, usable by RUN without an ARG. */
bool bld_is_builtin_arg(const char *name);
void bld_stage_release(struct bld_stage *st);
/* openat2 beneath rootfd (RESOLVE_IN_ROOT); -1 with errno. */
int bld_open_beneath(int rootfd, const char *rel, int flags);

/* steps.c, shared with copystep.c */
MUST_CHECK int bld_set_image(struct builder *b, const char *id, struct merr *err);
char *bld_cache_key(struct builder *b, const char *created_by);
/* true when the step came from the cache (*rc: its outcome) */
bool bld_cache_hit(struct builder *b, const char *key, const char *created_by, struct merr *err,
                   int *rc);
/* Commits the stage's config, and cid's changes as a layer when cid is set. */
MUST_CHECK int bld_commit_step(struct builder *b, const char *cid, const char *created_by,
                               const char *key, struct merr *err);
MUST_CHECK int bld_step_container(struct builder *b, json_t *cmd, json_t *env, char **cid,
                                  struct merr *err);
void bld_remove_container(struct builder *b, const char *cid, bool announce);
/* copystep.c */
MUST_CHECK int bld_from_image(struct builder *b, const char *ref, struct merr *err);
MUST_CHECK int bld_step_copy(struct builder *b, const struct df_instr *in, struct merr *err);
MUST_CHECK int bld_step_workdir(struct builder *b, const struct df_instr *in, struct merr *err);

/* Runs one instruction (numbered: prints its Step line). */
MUST_CHECK int bld_dispatch(struct builder *b, const struct df_instr *in, bool numbered,
                            struct merr *err);

#endif
