/* docker top -o (ps_args): the host's ps with the caller's arguments, its lines kept for the
 * container's processes, as dockerd does (moby daemon/top_unix.go). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "command.h"
#include "error.h"
#include "fsutil.h"
#include "strv.h"
#include "manager-priv.h"

#define PS_OUTPUT_MAX (4u << 20)
#define PS_TIMEOUT_MS 10000

extern char **environ;

int top_validate_ps_args(const char *args, struct merr *err)
{
    /* dockerd refuses `x=PID...` column renames other than pid= (its PID column finder) */
    for (const char *p = args; (p = strchr(p, '=')) != NULL; p++) {
        const char *v = p + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        if (strncmp(v, "PID", 3) != 0)
            continue;
        const char *k = p;
        while (k > args && k[-1] != ' ' && k[-1] != '\t')
            k--;
        if (k == args)
            continue; /* dockerd's pattern needs whitespace before the key */
        size_t vl = strcspn(v, " \t");
        if ((size_t)(p - k) != 3 || strncmp(k, "pid", 3) != 0)
            return merr_set(err, MERR_INVALID, 0, "specifying \"%.*s=%.*s\" is not allowed",
                            (int)(p - k), k, (int)vl, v);
    }
    return 0;
}

static bool has_pid(const pid_t *pids, size_t n, long pid)
{
    for (size_t i = 0; i < n; i++)
        if (pids[i] == pid)
            return true;
    return false;
}

/* Splits on ASCII whitespace into a NULL-terminated list (malloc'd strings). */
static char **fields_of(const char *line)
{
    char **v = NULL;
    const char *p = line;
    for (;;) {
        p += strspn(p, " \t\r\f\n");
        if (*p == '\0')
            break;
        size_t l = strcspn(p, " \t\r\f\n");
        char *f = strndup(p, l);
        v = strv_push(v, f);
        free(f);
        p += l;
    }
    return v != NULL ? v : xcalloc(1, sizeof *v);
}

static json_t *process_row(char **fields, size_t n_titles)
{
    json_t *row = json_array();
    size_t nf = 0;
    while (fields[nf] != NULL)
        nf++;
    for (size_t i = 0; i + 1 < n_titles && i < nf; i++)
        json_array_append_new(row, json_string(fields[i]));
    /* the last column takes the rest of the line (a command with spaces) */
    size_t len = 1;
    for (size_t i = n_titles - 1; i < nf; i++)
        len += strlen(fields[i]) + 1;
    char *last = xcalloc(len, 1);
    for (size_t i = n_titles - 1; i < nf; i++) {
        if (i > n_titles - 1)
            strcat(last, " ");
        strcat(last, fields[i]);
    }
    json_array_append_new(row, json_string(last));
    free(last);
    return row;
}

json_t *top_parse_ps(const char *output, const pid_t *pids, size_t n_pids, struct merr *err)
{
    char *copy = xstrdup(output);
    char *save = NULL;
    char *line = strtok_r(copy, "\n", &save);
    char **titles = fields_of(line != NULL ? line : "");
    size_t n_titles = 0, pid_index = (size_t)-1;
    for (; titles[n_titles] != NULL; n_titles++)
        if (pid_index == (size_t)-1 && strcmp(titles[n_titles], "PID") == 0)
            pid_index = n_titles;
    if (pid_index == (size_t)-1) {
        strv_free(titles);
        free(copy);
        merr_set(err, MERR_INTERNAL, 0, "Couldn't find PID field in ps output");
        return NULL;
    }
    json_t *procs = json_array();
    bool prev_kept = false;
    json_t *out = NULL;
    while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
        char **f = fields_of(line);
        size_t nf = 0;
        while (f[nf] != NULL)
            nf++;
        if (nf <= pid_index) {
            strv_free(f);
            continue;
        }
        if (strcmp(f[pid_index], "-") == 0) { /* a thread line (ps -T): follows its process */
            if (prev_kept)
                json_array_append_new(procs, process_row(f, n_titles));
            strv_free(f);
            continue;
        }
        char *end;
        long pid = strtol(f[pid_index], &end, 10);
        if (*end != '\0') {
            merr_set(err, MERR_INTERNAL, 0, "Unexpected pid '%s'", f[pid_index]);
            strv_free(f);
            goto done;
        }
        prev_kept = has_pid(pids, n_pids, pid);
        if (prev_kept)
            json_array_append_new(procs, process_row(f, n_titles));
        strv_free(f);
    }
    out = json_pack("{s:[],s:O}", "Titles", "Processes", procs);
    for (size_t i = 0; i < n_titles; i++)
        json_array_append_new(json_object_get(out, "Titles"), json_string(titles[i]));
done:
    json_decref(procs);
    strv_free(titles);
    free(copy);
    return out;
}

/* The pids whose pid namespace is the container's first process's. */
static int container_pids(struct ctr_manager *m, const char *ref, pid_t **out, size_t *n,
                          struct merr *err)
{
    pthread_mutex_lock(&m->lock);
    struct ctr_entry *e = mgr_find_locked(m, ref, err);
    pid_t pid = e != NULL && e->rt != NULL ? rt_container_pid(e->rt) : 0;
    char id[CTR_ID_LEN + 1] = "";
    if (e != NULL)
        memcpy(id, e->c->id, sizeof id);
    pthread_mutex_unlock(&m->lock);
    if (e == NULL)
        return -1;
    char nspath[64], want[128], got[128];
    snprintf(nspath, sizeof nspath, "/proc/%d/ns/pid", (int)pid);
    ssize_t wl = pid > 0 ? readlink(nspath, want, sizeof want - 1) : -1;
    if (wl < 0)
        return merr_set(err, MERR_EXISTS, 0, "container %s is not running", id);
    want[wl] = '\0';
    *out = NULL;
    *n = 0;
    auto_closedir DIR *d = opendir("/proc");
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        snprintf(nspath, sizeof nspath, "/proc/%.20s/ns/pid", de->d_name);
        ssize_t gl = readlink(nspath, got, sizeof got - 1);
        if (gl < 0)
            continue;
        got[gl] = '\0';
        if (strcmp(got, want) != 0)
            continue;
        pid_t *grown = realloc(*out, (*n + 1) * sizeof *grown);
        if (grown == NULL)
            abort();
        *out = grown;
        (*out)[(*n)++] = (pid_t)atoi(de->d_name);
    }
    return 0;
}

/* Processes of the container, ps -ef style, read from /proc (docker top without ps_args). */
json_t *ctr_top(struct ctr_manager *m, const char *ref, struct merr *err)
{
    auto_free pid_t *pids = NULL;
    size_t n = 0;
    if (container_pids(m, ref, &pids, &n, err) < 0)
        return NULL;
    json_t *procs = json_array();
    for (size_t i = 0; i < n; i++) {
        auto_free char *statp = xasprintf("/proc/%d/stat", (int)pids[i]);
        auto_free char *cmdp = xasprintf("/proc/%d/cmdline", (int)pids[i]);
        auto_free char *stat_text = NULL, *cmd = NULL;
        size_t cmdlen = 0;
        struct merr ignored;
        struct stat st;
        if (fs_read_file(statp, 4096, &stat_text, NULL, &ignored) < 0 || stat(statp, &st) < 0)
            continue; /* gone meanwhile */
        if (fs_read_file(cmdp, 65536, &cmd, &cmdlen, &ignored) < 0)
            cmd = xstrdup("");
        for (size_t j = 0; j + 1 < cmdlen; j++)
            if (cmd[j] == '\0')
                cmd[j] = ' ';
        const char *rp = strrchr(stat_text, ')');
        int ppid = 0;
        char state = '?';
        if (rp != NULL)
            sscanf(rp + 2, "%c %d", &state, &ppid);
        char uid[16], pid[16], ppids[16];
        snprintf(uid, sizeof uid, "%u", (unsigned)st.st_uid);
        snprintf(pid, sizeof pid, "%d", (int)pids[i]);
        snprintf(ppids, sizeof ppids, "%d", ppid);
        json_array_append_new(procs, json_pack("[s,s,s,s,s,s,s,s]", uid, pid, ppids, "0", "",
                                               "?", "00:00:00", cmd));
    }
    return json_pack("{s:[s,s,s,s,s,s,s,s],s:o}", "Titles", "UID", "PID", "PPID", "C", "STIME",
                     "TTY", "TIME", "CMD", "Processes", procs);
}

/* Runs argv, collecting stdout (bounded) and the first line of stderr; *status is the exit
 * status (128 + signal when killed, also at the timeout). */
static int run_ps(char **argv, char **out, char **first_err, int *status, struct merr *err)
{
    struct cmd_spec spec = { .argv = argv, .timeout_ms = PS_TIMEOUT_MS, .out_max = PS_OUTPUT_MAX,
                             .err_max = 4096 };
    struct cmd_result res;
    struct merr run_err = MERR_INIT;
    if (cmd_run(NULL, &spec, &res, &run_err) < 0 && run_err.code != MERR_REMOTE &&
        run_err.code != MERR_TIMEOUT) {
        cmd_result_release(&res);
        return merr_set(err, MERR_INTERNAL, 0,
                        "Error running ps: exec: \"ps\": executable file not found in $PATH");
    }
    res.err.data[strcspn(res.err.data, "\n")] = '\0';
    *status = res.status;
    *out = steal_pointer(&res.out.data);
    *first_err = steal_pointer(&res.err.data);
    cmd_result_release(&res);
    return 0;
}

static char **ps_argv(const char *ps_args, const pid_t *pids, size_t n)
{
    char **argv = strv_push(NULL, "ps");
    /* dockerd splits on single spaces */
    auto_free char *copy = xstrdup(ps_args);
    for (char *p = copy, *sp; p != NULL; p = sp != NULL ? sp + 1 : NULL) {
        sp = strchr(p, ' ');
        if (sp != NULL)
            *sp = '\0';
        argv = strv_push(argv, p);
    }
    if (pids != NULL) {
        size_t len = 3 + n * 12;
        auto_free char *q = xcalloc(len, 1);
        strcpy(q, "-q");
        for (size_t i = 0; i < n; i++)
            snprintf(q + strlen(q), len - strlen(q), "%s%d", i > 0 ? "," : "", (int)pids[i]);
        argv = strv_push(argv, q);
    }
    return argv;
}

json_t *ctr_top_ps(struct ctr_manager *m, const char *ref, const char *ps_args,
                   struct merr *err)
{
    if (top_validate_ps_args(ps_args, err) < 0)
        return NULL;
    pid_t *pids = NULL;
    size_t n = 0;
    if (container_pids(m, ref, &pids, &n, err) < 0)
        return NULL;
    json_t *out = NULL;
    char *text = NULL, *first_err = NULL;
    int status = 0;
    /* with -q PIDS first, like dockerd; without it when this ps refuses the option */
    for (int attempt = 0; attempt < 2 && out == NULL; attempt++) {
        char **argv = ps_argv(ps_args, attempt == 0 ? pids : NULL, n);
        free(text);
        free(first_err);
        text = first_err = NULL;
        int rc = run_ps(argv, &text, &first_err, &status, err);
        strv_free(argv);
        if (rc < 0)
            break;
        if (status == 0)
            out = top_parse_ps(text, pids, n, err);
        else if (attempt == 1)
            merr_set(err, MERR_INTERNAL, 0, "ps: %s",
                     first_err[0] != '\0' ? first_err : "exited with an error");
    }
    free(text);
    free(first_err);
    free(pids);
    return out;
}

void ctr_emit_event(struct ctr_manager *m, const char *ref, const char *action)
{
    struct merr ignored;
    pthread_mutex_lock(&m->lock);
    struct ctr_entry *e = mgr_find_locked(m, ref, &ignored);
    if (e != NULL)
        mgr_emit(m, e->c, action, NULL);
    pthread_mutex_unlock(&m->lock);
}
