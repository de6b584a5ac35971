/* machine ls: every machine's state, queried in parallel with a bound per machine. */
#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "clock.h"
#include "driver.h"
#include "engine.h"
#include "error.h"
#include "fsutil.h"
#include "lifecycle.h"
#include "machine.h"
#include "store.h"
#include "template.h"

#define LS_MAX_WORKERS 16

static const struct opt_spec ls_opts[] = {
    { "quiet", 'q', OPT_BOOL, "print only machine names", NULL, NULL },
    { "filter", 0, OPT_LIST, "filter: driver=, state=, name= (regular expression), label=k=v, swarm= (matches none)", NULL,
      NULL },
    { "timeout", 't', OPT_INT, "seconds to wait for each machine's state", "10", NULL },
    { "format", 'f', OPT_STRING,
      "Go-style template ({{.Name}} ...; 'table ...' prints a header and aligns columns) or 'json'",
      NULL, NULL },
};

struct ls_row {
    char *name;
    struct machine *m;
    const struct driver *d;
    enum machine_state state;
    char *url;
    char *docker;
    char *error;
    bool active;
    long response_ms;
};

struct ls_job {
    struct cli *cli;
    struct ls_row *rows;
    size_t n;
    atomic_size_t next;
    int timeout_ms;
    const char *docker_host;
};

static void query_row(struct ls_job *job, struct ls_row *r)
{
    if (r->m == NULL)
        return;
    struct merr err = MERR_INIT;
    if (strcmp(r->m->status, MACHINE_STATUS_ERROR) == 0) {
        r->state = MSTATE_ERROR;
        r->error = xstrdup(r->m->error != NULL ? r->m->error : "create failed");
        return;
    }
    r->d = lifecycle_driver(&job->cli->ctx, r->m, &err);
    if (r->d == NULL) {
        r->state = MSTATE_ERROR;
        r->error = xstrdup(err.msg);
        return;
    }
    struct driver_ctx dctx;
    lifecycle_driver_ctx(&job->cli->ctx, &dctx);
    dctx.timeout_ms = job->timeout_ms;
    int64_t start = clock_now_ms();
    if (driver_get_state(r->d, &dctx, r->m, &r->state, &err) < 0) {
        r->state = err.code == MERR_TIMEOUT ? MSTATE_TIMEOUT : MSTATE_ERROR;
        r->error = xstrdup(err.msg);
    }
    r->response_ms = clock_since_ms(start);
    if (r->state == MSTATE_RUNNING) {
        r->url = driver_get_url(r->d, &dctx, r->m, &err);
        if (r->url == NULL && r->error == NULL)
            r->error = xstrdup(err.msg);
    }
    if (r->state == MSTATE_RUNNING && strcmp(r->m->status, MACHINE_STATUS_CREATED) == 0) {
        struct merr e = MERR_INIT;
        if (cli_renew_certs_if_needed(&job->cli->ctx, r->m, job->cli->err, &e) < 0 && r->error == NULL)
            r->error = xstrdup(e.msg);
        r->docker = cli_engine_version(&job->cli->ctx, r->m, job->timeout_ms, &e);
        if (r->docker == NULL) {
            if (e.code == MERR_TIMEOUT)
                r->state = MSTATE_TIMEOUT;
            if (r->error == NULL)
                r->error = xstrdup(e.msg);
        }
    }
    if (strcmp(r->m->status, MACHINE_STATUS_CREATING) == 0 && r->error == NULL)
        r->error = xstrdup("still being created (or the create was interrupted)");
    r->active = r->url != NULL && job->docker_host != NULL && strcmp(r->url, job->docker_host) == 0;
}

static void *ls_worker(void *opaque)
{
    struct ls_job *job = opaque;
    for (;;) {
        size_t i = atomic_fetch_add(&job->next, 1);
        if (i >= job->n)
            return NULL;
        query_row(job, &job->rows[i]);
    }
}

static void query_all(struct ls_job *job)
{
    size_t nthreads = job->n < LS_MAX_WORKERS ? job->n : LS_MAX_WORKERS;
    pthread_t threads[LS_MAX_WORKERS];
    size_t started = 0;
    for (; started < nthreads; started++)
        if (pthread_create(&threads[started], NULL, ls_worker, job) != 0)
            break;
    if (started == 0)
        ls_worker(job);
    for (size_t i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
}

/* --filter key=value: values of one key are OR'ed, different keys AND'ed. */
static bool filter_key_matches(const struct ls_row *r, char *const *filters, const char *key,
                               bool *seen)
{
    size_t klen = strlen(key);
    bool any = false, match = false;
    for (size_t i = 0; filters != NULL && filters[i] != NULL; i++) {
        if (strncmp(filters[i], key, klen) != 0 || filters[i][klen] != '=')
            continue;
        any = true;
        const char *v = filters[i] + klen + 1;
        if (strcmp(key, "driver") == 0)
            match |= r->m != NULL && strcasecmp(r->m->driver_name, v) == 0;
        else if (strcmp(key, "state") == 0)
            match |= strcasecmp(machine_state_name(r->state), v) == 0;
        else if (strcmp(key, "name") == 0) {
            regex_t re;
            if (regcomp(&re, v, REG_EXTENDED | REG_NOSUB) == 0) {
                match |= regexec(&re, r->name, 0, NULL, 0) == 0;
                regfree(&re);
            }
        } else if (strcmp(key, "swarm") == 0) {
            /* no machine is a classic Swarm member: such a filter matches none */
        } else if (strcmp(key, "label") == 0 && r->m != NULL) {
            for (char *const *l = r->m->engine.labels; l != NULL && *l != NULL; l++)
                match |= strcmp(*l, v) == 0;
        }
    }
    *seen = any;
    return !any || match;
}

static int check_filters(char *const *filters, struct merr *err)
{
    static const char *const keys[] = { "driver", "state", "name", "label", "swarm" };
    for (size_t i = 0; filters != NULL && filters[i] != NULL; i++) {
        const char *eq = strchr(filters[i], '=');
        bool ok = false;
        for (size_t k = 0; eq != NULL && k < sizeof keys / sizeof keys[0]; k++)
            ok |= strlen(keys[k]) == (size_t)(eq - filters[i]) &&
                  strncmp(filters[i], keys[k], (size_t)(eq - filters[i])) == 0;
        if (!ok)
            return merr_set(err, MERR_INVALID, 0,
                            "invalid filter '%s' (use driver=, state=, name=, label= or swarm=)", filters[i]);
        if (strncmp(filters[i], "name=", 5) == 0) {
            regex_t re;
            if (regcomp(&re, eq + 1, REG_EXTENDED | REG_NOSUB) != 0)
                return merr_set(err, MERR_INVALID, 0, "invalid name filter '%s'", eq + 1);
            regfree(&re);
        }
    }
    return 0;
}

static bool row_passes(const struct ls_row *r, char *const *filters)
{
    bool seen;
    return filter_key_matches(r, filters, "driver", &seen) &&
           filter_key_matches(r, filters, "state", &seen) &&
           filter_key_matches(r, filters, "name", &seen) &&
           filter_key_matches(r, filters, "label", &seen) &&
           filter_key_matches(r, filters, "swarm", &seen);
}

static json_t *row_json(const struct ls_row *r)
{
    return json_pack("{s:s,s:s,s:b,s:s,s:s,s:s,s:s,s:s,s:s,s:I}", "Name", r->name, "Active",
                     r->active ? "*" : "-", "ActiveHost", r->active, "DriverName",
                     r->m != NULL ? r->m->driver_name : "", "State", machine_state_name(r->state),
                     "URL", r->url != NULL ? r->url : "", "Swarm", "", "DockerVersion",
                     r->docker != NULL ? r->docker : "Unknown",
                     "Error", r->error != NULL ? r->error : "", "ResponseTime",
                     (json_int_t)r->response_ms);
}

/* docker-machine's default and its column headers (a `table` format renders this object first). */
#define LS_DEFAULT_FORMAT                                                                          \
    "table {{ .Name }}\t{{ .Active }}\t{{ .DriverName}}\t{{ .State }}\t{{ .URL }}\t{{ .Swarm }}\t"   \
    "{{ .DockerVersion }}\t{{ .Error}}"

static json_t *header_json(void)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "Name", "NAME",
                     "Active", "ACTIVE", "ActiveHost", "ACTIVE_HOST", "ActiveSwarm", "ACTIVE_SWARM",
                     "DriverName", "DRIVER", "State", "STATE", "URL", "URL", "SwarmOptions",
                     "SWARM_OPTIONS", "Swarm", "SWARM", "EngineOptions", "ENGINE_OPTIONS", "Error",
                     "ERRORS", "DockerVersion", "DOCKER", "ResponseTime", "RESPONSE");
}

/* Renders rows (and the header for a table) through tmpl; "json" prints each row as JSON. */
static int print_rows(struct cli *cli, struct ls_row *rows, size_t n, char *const *filters,
                      const char *tmpl, bool table, struct merr *err)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        abort();
    int rc = 0;
    if (table) {
        json_t *h = header_json();
        char *line = template_render(tmpl, h, err);
        json_decref(h);
        if (line == NULL)
            rc = -1;
        else
            fprintf(f, "%s\n", line);
        free(line);
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!row_passes(&rows[i], filters))
            continue;
        json_t *j = row_json(&rows[i]);
        char *line = tmpl != NULL ? template_render(tmpl, j, err)
                                  : json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(j);
        if (line == NULL) {
            rc = -1;
            break;
        }
        fprintf(f, "%s\n", line);
        free(line);
    }
    fclose(f);
    if (rc == 0 && table) {
        auto_free char *aligned = template_tabulate(buf, 5, 3);
        fputs(aligned, cli->out);
    } else if (rc == 0) {
        fputs(buf, cli->out);
    }
    free(buf);
    return rc;
}

static int ls_run(struct cli *cli, struct parsed_args *a, struct merr *err)
{
    long timeout_s = 10;
    if (args_get_int(a, "timeout", &timeout_s, err) < 0)
        return -1;
    if (timeout_s <= 0 || timeout_s > 3600)
        return merr_set(err, MERR_INVALID, 0, "invalid --timeout %ld: must be 1-3600 seconds",
                        timeout_s);
    char *const *filters = args_values(a, "filter");
    if (check_filters(filters, err) < 0)
        return -1;
    const char *format = args_get(a, "format");
    if (format == NULL || format[0] == '\0')
        format = LS_DEFAULT_FORMAT;
    bool table = strncmp(format, "table", 5) == 0;
    auto_free char *tmpl = NULL;
    if (strcmp(format, "json") != 0) {
        const char *t = format + (table ? 5 : 0);
        t += strspn(t, " ");
        tmpl = template_unescape(t);
        if (template_check(tmpl, err) < 0)
            return -1;
    }
    auto_strv char **names = store_list_names(&cli->ctx.store, err);
    if (names == NULL)
        return -1;
    size_t n = strv_len(names);
    struct ls_row *rows = xcalloc(n, sizeof *rows);
    for (size_t i = 0; i < n; i++) {
        struct merr lerr = MERR_INIT;
        rows[i].name = names[i];
        rows[i].m = store_load_machine(&cli->ctx.store, names[i], &lerr);
        if (rows[i].m == NULL) {
            rows[i].state = MSTATE_ERROR;
            rows[i].error = xstrdup(lerr.msg);
        }
    }
    bool quiet = args_get_bool(a, "quiet");
    struct ls_job job = {
        .cli = cli,
        .rows = rows,
        .n = n,
        .timeout_ms = (int)timeout_s * 1000,
        .docker_host = getenv("DOCKER_HOST"),
    };
    /* -q without filters needs no state. */
    if (!quiet || filters != NULL)
        query_all(&job);

    int rc = 0;
    if (quiet) {
        for (size_t i = 0; i < n; i++)
            if (row_passes(&rows[i], filters))
                fprintf(cli->out, "%s\n", rows[i].name);
    } else {
        rc = print_rows(cli, rows, n, filters, tmpl, table, err);
    }
    for (size_t i = 0; i < n; i++) {
        machine_free(rows[i].m);
        free(rows[i].url);
        free(rows[i].docker);
        free(rows[i].error);
    }
    free(rows);
    return rc;
}

const struct cli_command cmd_ls = {
    .name = "ls",
    .usage = "[OPTIONS]",
    .summary = "List machines",
    .opts = ls_opts,
    .n_opts = sizeof ls_opts / sizeof ls_opts[0],
    .flags = CMD_NEEDS_STORE,
    .run = ls_run,
};
