/* engine/build: the Dockerfile parser, shell-word expansion, configuration instructions and
 * docker commit --change, and the .dockerignore matcher (docker's documented examples). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "build/dockerfile.h"
#include "cleanup.h"
#include "error.h"

#include <stdlib.h>
#include <string.h>

static struct df_file *parse_ok(const char *text)
{
    struct df_file *f = NULL;
    struct merr err = MERR_INIT;
    if (df_parse(text, strlen(text), &f, &err) < 0)
        fail_msg("df_parse: %s", err.msg);
    return f;
}

static void parse_fails(const char *text, const char *needle)
{
    struct df_file *f = NULL;
    struct merr err = MERR_INIT;
    assert_int_equal(df_parse(text, strlen(text), &f, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    if (needle != NULL && strstr(err.msg, needle) == NULL)
        fail_msg("'%s' not in '%s'", needle, err.msg);
}

static void test_parse_basic(void **state)
{
    (void)state;
    auto_df_file struct df_file *f = parse_ok(
        "# syntax=docker/dockerfile:1\n"
        "# escape=\\\n"
        "ARG BASE=busybox\n"
        "FROM ${BASE} AS build\n"
        "# a comment\n"
        "\n"
        "RUN echo a \\\n"
        "  # inside a continuation\n"
        "\n"
        "    && echo b\n"
        "CMD [\"/bin/sh\", \"-c\", \"echo hi\"]\n"
        "ENTRYPOINT [not json\n"
        "COPY --from=build --chown=1:2 /a /b /dest/\n"
        "env A=1 B=\"two words\"\n"
        "ENV OLD value with spaces\n"
        "run   true   \r\n");
    assert_non_null(f->syntax);
    assert_string_equal(f->syntax, "docker/dockerfile:1");
    assert_int_equal(f->escape, '\\');
    assert_int_equal(f->n, 9);
    assert_string_equal(f->v[0].cmd, "arg");
    assert_string_equal(f->v[0].args[0], "BASE=busybox");
    assert_string_equal(f->v[1].cmd, "from");
    assert_string_equal(f->v[1].args[0], "${BASE}");
    assert_string_equal(f->v[1].args[1], "AS");
    assert_string_equal(f->v[1].args[2], "build");
    assert_int_equal(f->v[1].line, 4);
    /* continuation joined without the escape, comment and empty lines dropped */
    assert_string_equal(f->v[2].original, "RUN echo a     && echo b");
    assert_false(f->v[2].json);
    assert_string_equal(f->v[2].args[0], "echo a     && echo b");
    assert_int_equal(f->v[2].line, 7);
    assert_true(f->v[3].json);
    assert_string_equal(f->v[3].args[2], "echo hi");
    assert_null(f->v[3].args[3]);
    assert_false(f->v[4].json); /* not JSON: the shell form */
    assert_string_equal(f->v[4].args[0], "[not json");
    assert_string_equal(f->v[5].flags[0], "--from=build");
    assert_string_equal(f->v[5].flags[1], "--chown=1:2");
    assert_null(f->v[5].flags[2]);
    assert_string_equal(f->v[5].args[0], "/a");
    assert_string_equal(f->v[5].args[2], "/dest/");
    assert_string_equal(f->v[6].args[0], "A");
    assert_string_equal(f->v[6].args[1], "1");
    assert_string_equal(f->v[6].args[2], "B");
    assert_string_equal(f->v[6].args[3], "\"two words\"");
    assert_string_equal(f->v[7].args[0], "OLD");
    assert_string_equal(f->v[7].args[1], "value with spaces");
    assert_string_equal(f->v[8].cmd, "run");
    assert_string_equal(f->v[8].original, "run   true");
}

static void test_parse_escape_directive(void **state)
{
    (void)state;
    auto_df_file struct df_file *f = parse_ok("# escape=`\n"
                                              "FROM busybox\n"
                                              "RUN dir c:\\ `\n"
                                              "  && echo x\n");
    assert_int_equal(f->escape, '`');
    assert_int_equal(f->n, 2);
    assert_string_equal(f->v[1].args[0], "dir c:\\   && echo x");
    /* a directive after an instruction is only a comment */
    auto_df_file struct df_file *g = parse_ok("FROM busybox\n# escape=`\nRUN a \\\n b\n");
    assert_int_equal(g->escape, '\\');
    assert_string_equal(g->v[1].args[0], "a  b");
}

static void test_parse_instructions(void **state)
{
    (void)state;
    auto_df_file struct df_file *f = parse_ok(
        "FROM --platform=linux/amd64 busybox:1 AS base\n"
        "HEALTHCHECK --interval=5s --retries=3 CMD curl -f http://x/ || exit 1\n"
        "HEALTHCHECK NONE\n"
        "HEALTHCHECK CMD [\"true\"]\n"
        "ONBUILD RUN echo triggered\n"
        "SHELL [\"/bin/bash\", \"-c\"]\n"
        "VOLUME [\"/data\", \"/logs\"]\n"
        "VOLUME /a /b\n"
        "EXPOSE 80 443/tcp\n"
        "LABEL a=b \"c d\"=e\n"
        "MAINTAINER someone <x@y>\n"
        "STOPSIGNAL SIGKILL\n"
        "USER app:app\n"
        "WORKDIR /srv\n"
        "ADD --chmod=644 a.tar /x\n");
    assert_int_equal(f->n, 15);
    assert_string_equal(f->v[0].flags[0], "--platform=linux/amd64");
    assert_string_equal(f->v[0].args[0], "busybox:1");
    assert_string_equal(f->v[1].flags[1], "--retries=3");
    assert_string_equal(f->v[1].args[0], "CMD");
    assert_string_equal(f->v[1].args[1], "curl -f http://x/ || exit 1");
    assert_string_equal(f->v[2].args[0], "NONE");
    assert_true(f->v[3].json);
    assert_string_equal(f->v[3].args[1], "true");
    assert_non_null(f->v[4].sub);
    assert_string_equal(f->v[4].sub->cmd, "run");
    assert_string_equal(f->v[4].args[0], "RUN echo triggered");
    assert_true(f->v[5].json);
    assert_string_equal(f->v[6].args[1], "/logs");
    assert_string_equal(f->v[7].args[1], "/b");
    assert_string_equal(f->v[8].args[1], "443/tcp");
    assert_string_equal(f->v[9].args[2], "\"c d\"");
    assert_string_equal(f->v[10].args[0], "someone <x@y>");
    assert_string_equal(f->v[14].flags[0], "--chmod=644");
}

static void test_parse_errors(void **state)
{
    (void)state;
    parse_fails("FROM busybox\nFOO bar\n", "line 2: unknown instruction: FOO");
    parse_fails("FROM busybox\nRUN cat <<EOF\nhi\nEOF\n", "heredocs");
    parse_fails("FROM busybox\nCOPY <<-\"EOT\" /x\n", "heredocs");
    parse_fails("# escape=x\nFROM busybox\n", "invalid escape token");
    parse_fails("FROM busybox\nSHELL /bin/sh -c\n", "JSON form");
    parse_fails("FROM busybox\nENV A=1 B\n", "can't find =");
    parse_fails("FROM busybox\nENV A\n", "must have two arguments");
    parse_fails("FROM busybox\nONBUILD ONBUILD RUN x\n", "Chaining ONBUILD");
    parse_fails("FROM busybox\nONBUILD FROM x\n", "isn't allowed as an ONBUILD trigger");
    parse_fails("FROM busybox\nHEALTHCHECK FOO x\n", "Unknown type");
    parse_fails("FROM busybox\nWORKDIR\n", "WORKDIR requires at least one argument");
    parse_fails("# just a comment\n\n", "cannot be empty");
    /* << that is not a heredoc (a shell here-string operand needs a word) is fine */
    auto_df_file struct df_file *f = parse_ok("FROM busybox\nRUN echo $((1 << 2))\n");
    assert_int_equal(f->n, 2);
}

static const char *vars(void *ctx, const char *name)
{
    (void)ctx;
    if (strcmp(name, "A") == 0)
        return "alpha";
    if (strcmp(name, "EMPTY") == 0)
        return "";
    if (strcmp(name, "SP") == 0)
        return "x y";
    return NULL;
}

static void expands(const char *in, const char *want)
{
    struct merr err = MERR_INIT;
    auto_free char *got = df_expand_word(in, '\\', vars, NULL, &err);
    if (got == NULL)
        fail_msg("df_expand_word(%s): %s", in, err.msg);
    if (strcmp(got, want) != 0)
        fail_msg("df_expand_word(%s) = '%s', want '%s'", in, got, want);
}

static void test_expand(void **state)
{
    (void)state;
    expands("$A", "alpha");
    expands("${A}bc", "alphabc");
    expands("pre-$A-post", "pre-alpha-post");
    expands("$UNSET.", ".");
    expands("${UNSET:-dflt}", "dflt");
    expands("${EMPTY:-dflt}", "dflt");
    expands("${EMPTY-dflt}", "");
    expands("${UNSET-dflt}", "dflt");
    expands("${A:+alt}", "alt");
    expands("${UNSET:+alt}", "");
    expands("${EMPTY+alt}", "alt");
    expands("${UNSET:-$A}", "alpha");
    expands("\\$A", "$A");
    expands("'$A'", "$A");
    expands("\"$A\"", "alpha");
    expands("\"a \\\"q\\\" \\x\"", "a \"q\" \\x");
    expands("a\\ b", "a b");
    expands("$", "$");
    expands("100%", "100%");
    struct merr err = MERR_INIT;
    assert_null(df_expand_word("${UNSET:?must be set}", '\\', vars, NULL, &err));
    assert_non_null(strstr(err.msg, "must be set"));
    assert_null(df_expand_word("${A", '\\', vars, NULL, &err));
    assert_null(df_expand_word("'open", '\\', vars, NULL, &err));
    assert_null(df_expand_word("${A:%x}", '\\', vars, NULL, &err));
    /* backtick escape */
    auto_free char *bt = df_expand_word("`$A", '`', vars, NULL, &err);
    assert_string_equal(bt, "$A");
    /* splitting: unquoted whitespace, also inside values; quotes keep it */
    char **w = df_expand_words("a $SP \"c d\" '' e", '\\', vars, NULL, &err);
    assert_non_null(w);
    assert_string_equal(w[0], "a");
    assert_string_equal(w[1], "x");
    assert_string_equal(w[2], "y");
    assert_string_equal(w[3], "c d");
    assert_string_equal(w[4], "");
    assert_string_equal(w[5], "e");
    assert_null(w[6]);
    for (size_t i = 0; w[i] != NULL; i++)
        free(w[i]);
    free(w);
}

static json_t *apply(const char *lines, json_t *cfg)
{
    auto_df_file struct df_file *f = parse_ok(lines);
    struct merr err = MERR_INIT;
    bool cmd_set = false;
    char *author = NULL;
    for (size_t i = 0; i < f->n; i++)
        if (df_apply_config(cfg, &f->v[i], f->escape, NULL, NULL, &author, &cmd_set, &err) < 0)
            fail_msg("apply %s: %s", f->v[i].original, err.msg);
    if (author != NULL) {
        json_object_set_new(cfg, "author_for_test", json_string(author));
        free(author);
    }
    return cfg;
}

static void test_apply_config(void **state)
{
    (void)state;
    json_t *cfg = json_pack("{s:[s,s],s:[s],s:s}", "Env", "PATH=/bin", "B=old", "Cmd", "sh",
                            "WorkingDir", "/srv");
    apply("ENV A=1 B=$A C=${B}x\n"
          "ENV D ${A}z\n"
          "LABEL l1=v1 \"l 2\"=\"v 2\"\n"
          "EXPOSE 80 53/udp 8000-8001\n"
          "VOLUME /data $A\n"
          "WORKDIR app\n"
          "WORKDIR ../other/./x\n"
          "USER ${A}\n"
          "STOPSIGNAL SIGUSR1\n"
          "ENTRYPOINT [\"/e\"]\n"
          "HEALTHCHECK --interval=1m30s --timeout=500ms --retries=2 CMD true\n"
          "ONBUILD RUN echo hi\n"
          "MAINTAINER me\n",
          cfg);
    auto_free char *s = json_dumps(cfg, JSON_SORT_KEYS | JSON_COMPACT);
    assert_non_null(strstr(s, "\"Cmd\":null"));
    assert_non_null(strstr(s, "\"Entrypoint\":[\"/e\"]"));
    assert_non_null(strstr(s, "\"A=1\""));
    assert_non_null(strstr(s, "\"B=\""));   /* $A was unset before this ENV */
    assert_non_null(strstr(s, "\"C=oldx\"")); /* ${B} was "old" before this ENV */
    assert_non_null(strstr(s, "\"D=1z\""));
    assert_non_null(strstr(s, "\"ExposedPorts\":{\"53/udp\":{},\"80/tcp\":{},\"8000/tcp\":{},"
                              "\"8001/tcp\":{}}"));
    assert_non_null(strstr(s, "\"Interval\":90000000000"));
    assert_non_null(strstr(s, "\"Timeout\":500000000"));
    assert_non_null(strstr(s, "\"Test\":[\"CMD-SHELL\",\"true\"]"));
    assert_non_null(strstr(s, "\"Labels\":{\"l 2\":\"v 2\",\"l1\":\"v1\"}"));
    assert_non_null(strstr(s, "\"OnBuild\":[\"RUN echo hi\"]"));
    assert_non_null(strstr(s, "\"User\":\"1\""));
    assert_non_null(strstr(s, "\"Volumes\":{\"/data\":{},\"1\":{}}"));
    assert_non_null(strstr(s, "\"WorkingDir\":\"/srv/other/x\""));
    assert_non_null(strstr(s, "\"author_for_test\":\"me\""));
    json_decref(cfg);

    /* shell forms use SHELL; CMD before ENTRYPOINT in one stage is kept */
    cfg = apply("SHELL [\"/bin/bash\", \"-xc\"]\nCMD echo $HOME\nENTRYPOINT run it\n",
                json_object());
    auto_free char *t = json_dumps(cfg, JSON_SORT_KEYS | JSON_COMPACT);
    assert_non_null(strstr(t, "\"Cmd\":[\"/bin/bash\",\"-xc\",\"echo $HOME\"]"));
    assert_non_null(strstr(t, "\"Entrypoint\":[\"/bin/bash\",\"-xc\",\"run it\"]"));
    json_decref(cfg);
}

static void test_apply_errors(void **state)
{
    (void)state;
    const char *bad[] = { "EXPOSE 99999\n", "EXPOSE 80/xyz\n", "STOPSIGNAL SIGNOPE\n",
                          "HEALTHCHECK --interval=5 CMD true\n", "HEALTHCHECK --bogus=1 CMD x\n",
                          "USER --x=1 root\n", NULL };
    for (size_t i = 0; bad[i] != NULL; i++) {
        auto_df_file struct df_file *f = parse_ok(bad[i]);
        json_t *cfg = json_object();
        struct merr err = MERR_INIT;
        assert_int_equal(df_apply_config(cfg, &f->v[0], '\\', NULL, NULL, NULL, NULL, &err), -1);
        assert_int_equal(err.code, MERR_INVALID);
        json_decref(cfg);
    }
    auto_df_file struct df_file *f = parse_ok("RUN true\n");
    struct merr err = MERR_INIT;
    json_t *cfg = json_object();
    assert_int_equal(df_apply_config(cfg, &f->v[0], '\\', NULL, NULL, NULL, NULL, &err), -1);
    assert_int_equal(err.code, MERR_UNSUPPORTED);
    json_decref(cfg);
}

static void test_changes(void **state)
{
    (void)state;
    json_t *cfg = json_pack("{s:[s],s:[s]}", "Env", "PATH=/bin", "Cmd", "sh");
    const char *changes[] = { "ENV X=1", "CMD [\"echo\", \"$X\"]", "LABEL k=v", "  ", NULL };
    struct merr err = MERR_INIT;
    assert_int_equal(df_apply_changes(cfg, changes, &err), 0);
    auto_free char *s = json_dumps(cfg, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(s, "{\"Cmd\":[\"echo\",\"$X\"],\"Env\":[\"PATH=/bin\",\"X=1\"],"
                           "\"Labels\":{\"k\":\"v\"}}");
    const char *bad[] = { "RUN echo", NULL };
    assert_int_equal(df_apply_changes(cfg, bad, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    assert_non_null(strstr(err.msg, "run is not a valid change command"));
    const char *unknown[] = { "FOO bar", NULL };
    assert_int_equal(df_apply_changes(cfg, unknown, &err), -1);
    json_decref(cfg);
}

static bool ignored(const char *patterns, const char *path)
{
    struct df_ignore *ig = NULL;
    struct merr err = MERR_INIT;
    if (df_ignore_parse(patterns, strlen(patterns), &ig, &err) < 0)
        fail_msg("df_ignore_parse: %s", err.msg);
    bool r = df_ignore_match(ig, path);
    df_ignore_free(ig);
    return r;
}

/* The examples of docker's .dockerignore documentation. */
static void test_ignore_documented(void **state)
{
    (void)state;
    const char *doc = "# comment\n*/temp*\n*/*/temp*\ntemp?\n";
    assert_true(ignored(doc, "somedir/temporary.txt"));
    assert_true(ignored(doc, "somedir/temp"));
    assert_true(ignored(doc, "somedir/subdir/temporary.txt"));
    assert_true(ignored(doc, "tempa"));
    assert_true(ignored(doc, "tempb"));
    assert_false(ignored(doc, "temp"));
    assert_false(ignored(doc, "temporary.txt"));
    assert_false(ignored(doc, "a/b/c/temp"));
    assert_false(ignored(doc, "# comment"));
    assert_true(ignored("**/*.go\n", "main.go"));
    assert_true(ignored("**/*.go\n", "a/b/c.go"));
    assert_false(ignored("**/*.go\n", "a/b/c.goo"));
    assert_true(ignored("*.md\n!README.md\n", "CHANGES.md"));
    assert_false(ignored("*.md\n!README.md\n", "README.md"));
    const char *three = "*.md\n!README*.md\nREADME-secret.md\n";
    assert_true(ignored(three, "NOTES.md"));
    assert_false(ignored(three, "README-public.md"));
    assert_true(ignored(three, "README-secret.md"));
    const char *order = "*.md\nREADME-secret.md\n!README*.md\n";
    assert_false(ignored(order, "README-secret.md"));
}

static void test_ignore_rules(void **state)
{
    (void)state;
    /* a match excludes everything below it */
    assert_true(ignored("node_modules\n", "node_modules/a/b.js"));
    assert_true(ignored("/build/\n", "build/x"));          /* cleaned, leading / dropped */
    assert_true(ignored("./a/../secret\n", "secret"));
    assert_false(ignored("sub\n", "a/sub"));
    assert_true(ignored("**\n", "anything/at/all"));
    assert_true(ignored("a/**\n", "a/x/y"));
    assert_false(ignored("a/**\n", "a"));
    assert_true(ignored("a/**/z\n", "a/z"));
    assert_true(ignored("a/**/z\n", "a/b/c/z"));
    assert_true(ignored("[a-c]x\n", "bx"));
    assert_false(ignored("[a-c]x\n", "dx"));
    assert_true(ignored("[^a]x\n", "bx"));
    assert_true(ignored("\\*star\n", "*star"));
    assert_false(ignored("\\*star\n", "xstar"));
    assert_false(ignored("?\n", "ab"));
    assert_true(ignored("  spaced  \n", "spaced"));
    assert_false(ignored("", "x"));
    assert_true(ignored("docs\n!docs/keep\n", "docs/drop"));
    assert_false(ignored("docs\n!docs/keep\n", "docs/keep"));
    struct df_ignore *ig = NULL;
    struct merr err = MERR_INIT;
    assert_int_equal(df_ignore_parse("!\n", 2, &ig, &err), -1);
    assert_int_equal(df_ignore_parse("a[\n", 3, &ig, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    assert_int_equal(df_pattern_match("a\\", "a"), -1);
    assert_int_equal(df_pattern_match("*.c", "x.c"), 1);
    assert_int_equal(df_pattern_match("*.c", "d/x.c"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_basic),        cmocka_unit_test(test_parse_escape_directive),
        cmocka_unit_test(test_parse_instructions), cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_expand),             cmocka_unit_test(test_apply_config),
        cmocka_unit_test(test_apply_errors),       cmocka_unit_test(test_changes),
        cmocka_unit_test(test_ignore_documented),  cmocka_unit_test(test_ignore_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
