/* Dockerfiles: a pure parser (text → instructions) with the classic builder's and BuildKit's
 * rules, the shell-word expansion they apply ($VAR, ${VAR:-x}, quotes, escapes), and the
 * effect of the configuration instructions on an image config (also used by docker commit -c).
 * No I/O anywhere: everything takes buffers. */
#ifndef MACHINE_ENGINE_BUILD_DOCKERFILE_H
#define MACHINE_ENGINE_BUILD_DOCKERFILE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "cleanup.h"

struct merr;

/* One instruction. ONBUILD's trigger is parsed into `sub` as well. */
struct df_instr {
    char *cmd;      /* lowercase keyword: "from", "run", ... */
    char *original; /* the logical line, continuations joined, trimmed ("Step N/M : ...") */
    char *rest;     /* what follows the keyword and the flags, trimmed */
    char **flags;   /* "--name=value" words in front of the arguments, NULL-terminated */
    char **args;    /* arguments as the instruction's grammar splits them, NULL-terminated */
    bool json;      /* exec form: args came from a JSON array */
    size_t line;    /* 1-based line of the keyword */
    struct df_instr *sub; /* ONBUILD's trigger; NULL otherwise */
};

struct df_file {
    struct df_instr *v;
    size_t n;
    char escape;   /* '\\' or '`' */
    char *syntax;  /* a "# syntax=" directive (ignored by the classic builder), or NULL */
};

/* Parses a Dockerfile. MERR_INVALID with docker's wording for unknown instructions, heredocs
 * ("heredocs are not supported by machine-engine's builder"), bad JSON-less forms that need
 * JSON (SHELL), a missing argument; the message names the line. */
MUST_CHECK int df_parse(const char *buf, size_t len, struct df_file **out, struct merr *err);
void df_file_free(struct df_file *f);
DEFINE_CLEANUP(struct df_file, df_file_free)
#define auto_df_file __attribute__((cleanup(cleanup_df_file_freep)))

/* Parses one instruction line (docker commit --change). */
MUST_CHECK int df_parse_line(const char *line, char escape, struct df_instr **out,
                             struct merr *err);
void df_instr_free(struct df_instr *i);

/* ---- shell-word expansion (shellwords.c) ---- */
/* A lookup of variables: NULL when unset. */
typedef const char *(*df_lookup_fn)(void *ctx, const char *name);
/* Expands one word as the builder does for ENV, LABEL, WORKDIR, ...: $VAR, ${VAR},
 * ${VAR:-word}, ${VAR-word}, ${VAR:+word}, ${VAR+word}, ${VAR:?msg}, quotes removed ('...'
 * literal, "..." expanding), the escape character quoting the next one. malloc'd, NULL with
 * MERR_INVALID for a bad substitution or an unterminated quote. */
MUST_CHECK char *df_expand_word(const char *word, char escape, df_lookup_fn lookup, void *ctx,
                                struct merr *err);
/* The same, split into fields on unquoted whitespace (EXPOSE, VOLUME, COPY sources). */
MUST_CHECK char **df_expand_words(const char *text, char escape, df_lookup_fn lookup, void *ctx,
                                  struct merr *err);
/* A lookup in a docker Env array (["K=V", ...]) given as ctx (json_t *). */
const char *df_lookup_env_array(void *ctx, const char *name);

/* ---- config instructions (config.c) ---- */
/* Applies a configuration instruction (ENV, LABEL, EXPOSE, USER, WORKDIR, VOLUME, STOPSIGNAL,
 * CMD, ENTRYPOINT, SHELL, HEALTHCHECK, ONBUILD, MAINTAINER) to a container config object
 * (the image config's "config"), expanding variables from its Env (and from extra, a lookup
 * for build args, may be NULL). author gets MAINTAINER's value. cmd_set tracks whether CMD was
 * given in this stage (ENTRYPOINT clears an inherited Cmd otherwise); may be NULL.
 * MERR_INVALID for bad values; MERR_UNSUPPORTED for an instruction that is not a config one. */
MUST_CHECK int df_apply_config(json_t *config, const struct df_instr *in, char escape,
                               df_lookup_fn extra, void *extra_ctx, char **author,
                               bool *cmd_set, struct merr *err);
/* docker commit --change: parses each line and applies it; only CMD, ENTRYPOINT, ENV, EXPOSE,
 * HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR are accepted, as dockerd
 * ("X is not a valid change command"). */
MUST_CHECK int df_apply_changes(json_t *config, const char *const *changes, struct merr *err);

/* ---- .dockerignore (ignore.c) ---- */
struct df_ignore;
/* Parses .dockerignore text: one pattern a line, '#' comments, blank lines skipped, patterns
 * cleaned like filepath.Clean, leading '/' dropped, '!' exceptions. MERR_INVALID for a bad
 * pattern. */
MUST_CHECK int df_ignore_parse(const char *buf, size_t len, struct df_ignore **out,
                               struct merr *err);
void df_ignore_free(struct df_ignore *ig);
DEFINE_CLEANUP(struct df_ignore, df_ignore_free)
#define auto_df_ignore __attribute__((cleanup(cleanup_df_ignore_freep)))
/* Whether path (relative to the context, '/'-separated, clean) is excluded: the last matching
 * pattern wins (docker's patternmatcher: a pattern also matches every path below a match). */
bool df_ignore_match(const struct df_ignore *ig, const char *path);
/* True when some '!' exception could re-include something below dir (so a walk must go in). */
bool df_ignore_has_exceptions(const struct df_ignore *ig);
/* Go's filepath.Match with '/' separators plus '**' (any number of path segments), as
 * docker's patternmatcher compiles them. -1 for a malformed pattern. Pure. */
int df_pattern_match(const char *pattern, const char *name);

#endif
