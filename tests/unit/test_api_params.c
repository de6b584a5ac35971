#define MACHINE_API_PRIV
/* The query-parameter table: every route the engine serves declares its parameters, every
 * parameter moby's swagger gives those routes (tests/unit/data/swagger-query-params.txt) is
 * declared, docs/engine-api.md lists exactly the declarations, and the router's check refuses
 * a refused parameter only when it is set.
 * `test_api_params --print-table` prints the doc's rows from the declarations. */
#include "test_helpers.h"

#include "api/api-priv.h"
#include "handlers/handlers.h"

static struct api_router *all_routes(void)
{
    static struct api_system sys;
    static struct engine_services services;
    struct merr err = MERR_INIT;
    struct api_router *r = api_router_new(&err);
    assert_non_null(r);
    if (handlers_register_all(r, &sys, &services, &err) < 0)
        fail_msg("registering the routes: %s", err.msg);
    return r;
}

static const struct api_route *find_route(const struct api_router *r, const char *method,
                                          const char *pattern)
{
    for (size_t i = 0; i < api_router_count(r); i++) {
        const struct api_route *rt = api_router_route(r, i);
        if (strcmp(rt->method, method) == 0 && strcmp(rt->pattern, pattern) == 0)
            return rt;
    }
    return NULL;
}

static void test_every_route_declares(void **state)
{
    (void)state;
    struct api_router *r = all_routes();
    size_t missing = 0;
    for (size_t i = 0; i < api_router_count(r); i++) {
        const struct api_route *rt = api_router_route(r, i);
        if (rt->params == NULL) {
            print_error("%s %s declares no query parameters (api_params_none if it has none)\n",
                        rt->method, rt->pattern);
            missing++;
        }
    }
    api_router_free(r);
    assert_int_equal(missing, 0);
}

static void test_swagger_params_declared(void **state)
{
    (void)state;
    struct api_router *r = all_routes();
    char *text = NULL;
    struct merr err = MERR_INIT;
    assert_int_equal(fs_read_file(MACHINE_TEST_DIR "/unit/data/swagger-query-params.txt",
                                  1 << 20, &text, NULL, &err),
                     0);
    size_t missing = 0, served = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#')
            continue;
        char *wsave = NULL;
        const char *method = strtok_r(line, " ", &wsave);
        const char *path = strtok_r(NULL, " ", &wsave);
        assert_non_null(path);
        const struct api_route *rt = find_route(r, method, path);
        if (rt == NULL)
            continue; /* not served: answered 404 */
        served++;
        for (const char *p = strtok_r(NULL, " ", &wsave); p != NULL;
             p = strtok_r(NULL, " ", &wsave)) {
            if (rt->params != NULL && api_params_find(rt->params, p) == NULL) {
                print_error("%s %s: swagger's query parameter '%s' is not declared\n", method,
                            path, p);
                missing++;
            }
        }
    }
    free(text);
    api_router_free(r);
    assert_int_equal(missing, 0);
    assert_true(served > 50);
}

/* "| `GET /path` | `name` | use | notes |" */
static void format_row(char *out, size_t size, const struct api_route *rt,
                       const struct api_param *p)
{
    char notes[512] = "";
    if (p->accepted != NULL)
        snprintf(notes, sizeof notes, "accepted: %s%s", p->accepted, p->note != NULL ? "; " : "");
    if (p->note != NULL)
        snprintf(notes + strlen(notes), sizeof notes - strlen(notes), "%s", p->note);
    snprintf(out, size, "| `%s %s` | `%s` | %s | %s |", rt->method, rt->pattern, p->name,
             api_param_use_name(p->use), notes);
}

static void print_table(void)
{
    struct api_router *r = all_routes();
    for (size_t i = 0; i < api_router_count(r); i++) {
        const struct api_route *rt = api_router_route(r, i);
        for (const struct api_param *p = rt->params; p != NULL && p->name != NULL; p++) {
            char row[1024];
            format_row(row, sizeof row, rt, p);
            printf("%s\n", row);
        }
    }
    api_router_free(r);
}

static void test_doc_matches_declarations(void **state)
{
    (void)state;
    struct api_router *r = all_routes();
    char *text = NULL;
    struct merr err = MERR_INIT;
    assert_int_equal(fs_read_file(MACHINE_TEST_DIR "/../docs/engine-api.md", 1 << 20, &text, NULL,
                                  &err),
                     0);
    char *begin = strstr(text, "<!-- query-params begin -->");
    char *end = strstr(text, "<!-- query-params end -->");
    assert_non_null(begin);
    assert_non_null(end);
    *end = '\0';
    size_t declared = 0, bad = 0;
    for (size_t i = 0; i < api_router_count(r); i++) {
        const struct api_route *rt = api_router_route(r, i);
        for (const struct api_param *p = rt->params; p != NULL && p->name != NULL; p++) {
            char row[1024];
            format_row(row, sizeof row, rt, p);
            declared++;
            char *at = strstr(begin, row);
            if (at == NULL || (at[strlen(row)] != '\n' && at[strlen(row)] != '\0')) {
                print_error("docs/engine-api.md lacks the row\n%s\n", row);
                bad++;
            }
        }
    }
    size_t rows = 0;
    for (const char *l = strstr(begin, "\n| `"); l != NULL; l = strstr(l + 1, "\n| `"))
        rows++;
    free(text);
    api_router_free(r);
    assert_int_equal(bad, 0);
    assert_int_equal(rows, declared); /* and no row the engine does not declare */
}

static int check(const struct api_param *params, const char *key, const char *value)
{
    struct api_kv kv = { (char *)key, (char *)value };
    struct merr err = MERR_INIT;
    int rc = api_params_check(params, &kv, 1, &err);
    if (rc < 0) {
        assert_int_equal(err.code, MERR_INVALID);
        assert_non_null(strstr(err.msg, key));
    }
    return rc;
}

static void test_check(void **state)
{
    (void)state;
    static const struct api_param params[] = {
        API_PARAM("force"),
        API_PARAM_REFUSE("link"),
        API_PARAM_REFUSE_BUT("memswap", "-1"),
        API_PARAM_REFUSE_BUT("isolation", "default|process"),
        API_PARAM_IGNORE("digests", "dockerd does not read it"),
        API_PARAMS_END,
    };
    assert_int_equal(check(params, "force", "1"), 0);
    assert_int_equal(check(params, "digests", "1"), 0);
    assert_int_equal(check(params, "unknown", "1"), 0); /* unknown: ignored, as dockerd */
    const char *defaults[] = { "", "0", "false", "False", "no", "none", "null", "[]", "{}" };
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
        assert_int_equal(check(params, "link", defaults[i]), 0);
    assert_int_equal(check(params, "link", "1"), -1);
    assert_int_equal(check(params, "link", "true"), -1);
    assert_int_equal(check(params, "memswap", "-1"), 0);
    assert_int_equal(check(params, "memswap", "-2"), -1);
    assert_int_equal(check(params, "isolation", "default"), 0);
    assert_int_equal(check(params, "isolation", "process"), 0);
    assert_int_equal(check(params, "isolation", "proc"), -1);
    assert_int_equal(check(params, "isolation", "hyperv"), -1);
    assert_int_equal(check(NULL, "link", "1"), 0);
    assert_int_equal(check(api_params_none, "link", "1"), 0);
    assert_int_equal(check(api_params_unreached, "link", "1"), 0);

    /* every occurrence of a repeated key counts */
    struct api_kv kvs[] = { { "link", "0" }, { "link", "1" } };
    struct merr err = MERR_INIT;
    assert_int_equal(api_params_check(params, kvs, 2, &err), -1);
    assert_non_null(strstr(err.msg, "query parameter 'link' is not supported by machine-engine"));
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--print-table") == 0) {
        print_table();
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_route_declares),
        cmocka_unit_test(test_swagger_params_declared),
        cmocka_unit_test(test_doc_matches_declarations),
        cmocka_unit_test(test_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
