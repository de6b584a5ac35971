/* Fuzz target for engine/build's pure parsers (security case 30): the bytes as a Dockerfile
 * (parsed, every instruction's words expanded and the configuration ones applied to a config),
 * as one docker commit --change, and as a .dockerignore matched against a few paths. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "build/dockerfile.h"
#include "error.h"
#include "machine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *lookup(void *ctx, const char *name)
{
    (void)ctx;
    return strcmp(name, "A") == 0 ? "a b" : NULL;
}

static void dockerfile(const char *text, size_t size)
{
    struct df_file *f = NULL;
    struct merr err = MERR_INIT;
    if (df_parse(text, size, &f, &err) < 0)
        return;
    json_t *cfg = json_object();
    for (size_t i = 0; i < f->n; i++) {
        free(df_expand_word(f->v[i].rest, f->escape, lookup, NULL, &err));
        strv_free(df_expand_words(f->v[i].rest, f->escape, lookup, NULL, &err));
        char *author = NULL;
        bool cmd_set = false;
        if (df_apply_config(cfg, &f->v[i], f->escape, lookup, NULL, &author, &cmd_set, &err) < 0) {
            /* bad values are refused: fine */
        }
        free(author);
    }
    json_decref(cfg);
    df_file_free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    dockerfile(text, size);
    struct merr err = MERR_INIT;
    if (strlen(text) == size) {
        const char *changes[] = { text, NULL };
        json_t *cfg = json_object();
        if (df_apply_changes(cfg, changes, &err) < 0) {
            /* refused: fine */
        }
        json_decref(cfg);
        (void)df_pattern_match(text, "a/b/c.go");
    }
    struct df_ignore *ig = NULL;
    if (df_ignore_parse(text, size, &ig, &err) == 0) {
        static const char *const paths[] = { "a", "a/b", "a/b/c.go", ".git/x", "README.md" };
        for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
            (void)df_ignore_match(ig, paths[i]);
        df_ignore_free(ig);
    }
    free(text);
    return 0;
}
