/* docker exec: processes started inside running containers. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "strv.h"
#include "lifecycle.h"
#include "manager-priv.h"
#include "startopts.h"
#include "runtime/runtime.h"
#include "defaults.h"

#define USER_FILE_MAX (1u << 20)

struct ctr_exec {
    char id[CTR_ID_LEN + 1];
    char ctr_id[CTR_ID_LEN + 1];
    char **argv, **env;
    char *cwd, *user;
    char *detach_keys; /* as given at create ("" when none: ctrl-p,ctrl-q with a tty) */
    bool tty, attach_stdin, attach_stdout, attach_stderr, privileged;
    bool started, running;
    int exit_code; /* -1 until it exited */
    pid_t pid;
    int pty_master;
    unsigned short rows, cols; /* ConsoleSize (API 1.42): the tty's size from the start */
};

static void exec_free(struct ctr_exec *x)
{
    if (x == NULL)
        return;
    strv_free(x->argv);
    strv_free(x->env);
    free(x->cwd);
    free(x->user);
    free(x->detach_keys);
    if (x->pty_master >= 0)
        close(x->pty_master);
    free(x);
}

void exec_free_all(struct ctr_manager *m)
{
    for (size_t i = 0; i < m->n_execs; i++)
        exec_free(m->execs[i]);
    free(m->execs);
    m->execs = NULL;
    m->n_execs = 0;
}

void exec_forget_container_locked(struct ctr_manager *m, const char *ctr_id)
{
    size_t w = 0;
    for (size_t i = 0; i < m->n_execs; i++) {
        if (strcmp(m->execs[i]->ctr_id, ctr_id) == 0 && !m->execs[i]->running)
            exec_free(m->execs[i]);
        else
            m->execs[w++] = m->execs[i];
    }
    m->n_execs = w;
}

static struct ctr_exec *find_exec_locked(struct ctr_manager *m, const char *id, struct merr *err)
{
    for (size_t i = 0; id != NULL && i < m->n_execs; i++)
        if (strcmp(m->execs[i]->id, id) == 0)
            return m->execs[i];
    merr_set(err, MERR_NOT_FOUND, 0, "No such exec instance: %s", id != NULL ? id : "");
    return NULL;
}

static int list_field(const json_t *body, const char *key, char ***out, struct merr *err)
{
    json_t *v = json_object_get(body, key);
    *out = xcalloc(1, sizeof **out);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_array(v))
        return merr_set(err, MERR_INVALID, 0, "invalid %s: expected a list of strings", key);
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
        if (!json_is_string(e))
            return merr_set(err, MERR_INVALID, 0, "invalid %s: expected a list of strings", key);
        *out = strv_push(*out, json_string_value(e));
    }
    return 0;
}

int ctr_exec_create(struct ctr_manager *m, const char *ref, const json_t *body, char **exec_id,
                    struct merr *err)
{
    if (!json_is_object(body))
        return merr_set(err, MERR_INVALID, 0, "exec configuration is missing");
    struct ctr_exec *x = xcalloc(1, sizeof *x);
    x->exit_code = -1;
    x->pty_master = -1;
    if (list_field(body, "Cmd", &x->argv, err) < 0 || list_field(body, "Env", &x->env, err) < 0) {
        exec_free(x);
        return -1;
    }
    if (x->argv[0] == NULL) {
        exec_free(x);
        return merr_set(err, MERR_INVALID, 0, "No exec command specified");
    }
    const char *wd = json_string_value(json_object_get(body, "WorkingDir"));
    const char *user = json_string_value(json_object_get(body, "User"));
    if (wd != NULL && wd[0] != '\0' && wd[0] != '/') {
        exec_free(x);
        return merr_set(err, MERR_INVALID, 0, "the working directory '%s' is invalid, it needs to be an absolute path", wd);
    }
    /* docker-py sends detachKeys: dockerd's decoder takes any case */
    const json_t *dkv = json_object_get(body, "DetachKeys");
    if (dkv == NULL)
        dkv = json_object_get(body, "detachKeys");
    const char *dk = json_string_value(dkv);
    unsigned char keys[CTR_DETACH_KEYS_MAX];
    size_t n_keys;
    if (dk != NULL && dk[0] != '\0' && ctr_detach_keys_parse(dk, keys, &n_keys, err) < 0) {
        exec_free(x);
        return -1;
    }
    x->detach_keys = xstrdup(dk != NULL ? dk : "");
    x->tty = json_is_true(json_object_get(body, "Tty"));
    x->attach_stdin = json_is_true(json_object_get(body, "AttachStdin"));
    x->attach_stdout = json_is_true(json_object_get(body, "AttachStdout"));
    x->attach_stderr = json_is_true(json_object_get(body, "AttachStderr"));
    x->privileged = json_is_true(json_object_get(body, "Privileged"));
    json_t *cs = json_object_get(body, "ConsoleSize");
    if (json_is_array(cs) && json_array_size(cs) == 2) {
        json_int_t h = json_integer_value(json_array_get(cs, 0));
        json_int_t w = json_integer_value(json_array_get(cs, 1));
        if (h > 0 && w > 0 && h < 65536 && w < 65536) {
            x->rows = (unsigned short)h;
            x->cols = (unsigned short)w;
        }
    }

    pthread_mutex_lock(&m->lock);
    struct ctr_entry *e = mgr_find_locked(m, ref, err);
    if (e == NULL || e->rt == NULL || e->c->state.status != CTR_RUNNING) {
        if (e != NULL && e->c->state.status == CTR_PAUSED)
            merr_set(err, MERR_EXISTS, 0,
                     "Container %s is paused, unpause the container before exec", e->c->id);
        else if (e != NULL)
            merr_set(err, MERR_EXISTS, 0, "container %s is not running", e->c->id);
        pthread_mutex_unlock(&m->lock);
        exec_free(x);
        return -1;
    }
    memcpy(x->ctr_id, e->c->id, sizeof x->ctr_id);
    x->cwd = xstrdup(wd != NULL && wd[0] != '\0' ? wd : e->c->plan.cwd);
    x->user = xstrdup(user != NULL && user[0] != '\0' ? user : e->c->plan.user);
    mgr_random_hex(x->id, CTR_ID_LEN / 2);
    struct ctr_exec **n = realloc(m->execs, (m->n_execs + 1) * sizeof *n);
    if (n == NULL)
        abort();
    m->execs = n;
    m->execs[m->n_execs++] = x;
    *exec_id = xstrdup(x->id);
    pthread_mutex_unlock(&m->lock);
    return 0;
}

/* The container's view of an image file: its mounted rootfs while it runs. */
static char *container_file(const struct ctr_entry *e, const char *rel)
{
    auto_free char *path = path_join(e->rootfs, rel);
    char *text = NULL;
    struct merr ignored;
    if (fs_read_file(path, USER_FILE_MAX, &text, NULL, &ignored) < 0)
        return NULL;
    return text;
}

static void rt_best_effort_ioctl(int fd, const struct winsize *ws)
{
    if (ioctl(fd, TIOCSWINSZ, ws) < 0) {
        /* the size is a nicety: the client resizes again */
    }
}

static int make_pipe(int fds[2], struct merr *err)
{
    if (pipe2(fds, O_CLOEXEC) < 0)
        return merr_set(err, MERR_IO, errno, "cannot create a pipe");
    return 0;
}

/* The runtime's start failure in the OCI runtime's words, which clients match. */
static void exec_start_error(const struct ctr_exec *x, struct merr *err)
{
    if (err->code == MERR_PERM)
        merr_set(err, MERR_INVALID, 0,
                 "OCI runtime exec failed: exec failed: unable to start container process: "
                 "exec: \"%s\": permission denied",
                 x->argv[0]);
    if (err->code == MERR_NOT_FOUND)
        merr_set(err, MERR_INVALID, 0,
                 "OCI runtime exec failed: exec failed: unable to start container process: "
                 "exec: \"%s\": executable file not found in $PATH",
                 x->argv[0]);
    else if (err->code == MERR_INVALID && err->sys_errno != 0 &&
             strstr(err->msg, "working directory") != NULL) { /* WorkingDir is missing */
        char why[128]; /* Go's lower-case errno text, as runc prints it */
        snprintf(why, sizeof why, "%s", strerror(err->sys_errno));
        why[0] = (char)tolower((unsigned char)why[0]);
        merr_set(err, MERR_INVALID, 0,
                 "OCI runtime exec failed: exec failed: unable to start container process: "
                 "chdir to cwd (\"%s\") set in config.json failed: %s: unknown",
                 x->cwd, why);
    }
}

/* As dockerd: HOSTNAME (and TERM with a tty) under the container's Env, under the exec's Env,
 * where a bare K unsets K; HOME from the exec user's passwd entry when none is set, as runc. */
static char **exec_env(const struct ctr_entry *e, const struct ctr_exec *x,
                       const struct rt_user *user)
{
    char short_id[13];
    snprintf(short_id, sizeof short_id, "%.12s", x->ctr_id);
    const char *host = e->c->config->hostname != NULL ? e->c->config->hostname : short_id;
    auto_free char *host_env = xasprintf("HOSTNAME=%s", host);
    auto_free char *home_env = xasprintf("HOME=%s", user->home);
    char **env = strv_push(NULL, host_env);
    if (x->tty)
        env = strv_push(env, "TERM=xterm");
    env = ctr_env_override(env, e->c->plan.env);
    env = ctr_env_override(env, x->env);
    bool has_home = false;
    for (size_t i = 0; env[i] != NULL; i++)
        has_home |= strncmp(env[i], "HOME=", 5) == 0;
    if (!has_home)
        env = strv_push(env, home_env);
    return env;
}

int ctr_exec_start(struct ctr_manager *m, const char *exec_id, struct ctr_exec_io *io,
                   struct merr *err)
{
    *io = (struct ctr_exec_io){ -1, -1, -1, -1, false };
    pthread_mutex_lock(&m->lock);
    int rc = -1;
    int child[3] = { -1, -1, -1 };
    auto_strv char **env = NULL; /* before any goto: the cleanup runs at every exit */
    __attribute__((cleanup(startopts_release))) struct start_opts so = { 0 };
    auto_free char *group = NULL; /* the container's /etc/group */
    bool starting = false;
    struct ctr_exec *x = find_exec_locked(m, exec_id, err);
    if (x == NULL)
        goto out;
    if (x->started) {
        merr_set(err, MERR_EXISTS, 0, "exec %s has already been started", exec_id);
        goto out;
    }
    struct ctr_entry *e = mgr_find_locked(m, x->ctr_id, err);
    if (e == NULL || e->rt == NULL) {
        if (e != NULL)
            merr_set(err, MERR_EXISTS, 0, "container %s is not running", x->ctr_id);
        goto out;
    }
    starting = true; /* failures from here on end the exec (exit code 126) */
    struct rt_user user;
    group = container_file(e, "etc/group");
    {
        auto_free char *passwd = container_file(e, "etc/passwd");
        if (rt_user_resolve(x->user, passwd, group, &user, err) < 0) {
            if (err->code == MERR_NOT_FOUND)
                merr_set(err, MERR_INVALID, 0,
                         "OCI runtime exec failed: exec failed: unable to start container "
                         "process: unable to find user %s: no matching entries in passwd file",
                         x->user);
            x->started = true; /* a failed start is final, with dockerd's exit code */
            x->exit_code = 126;
            goto out;
        }
    }
    io->tty = x->tty;
    int fds[2];
    if (x->tty) {
        int mfd = -1;
        if (pty_open(e->dir, &mfd, &child[0], err) < 0)
            goto out;
        child[1] = child[2] = child[0];
        if (x->rows > 0) {
            struct winsize ws = { .ws_row = x->rows, .ws_col = x->cols };
            rt_best_effort_ioctl(mfd, &ws);
        }
        x->pty_master = mfd;
        io->stdout_fd = dup(mfd);
        io->stdin_fd = x->attach_stdin ? dup(mfd) : -1;
    } else {
        if (make_pipe(fds, err) < 0)
            goto out;
        io->stdout_fd = fds[0];
        child[1] = fds[1];
        if (make_pipe(fds, err) < 0)
            goto out;
        io->stderr_fd = fds[0];
        child[2] = fds[1];
        if (x->attach_stdin) {
            if (make_pipe(fds, err) < 0)
                goto out;
            child[0] = fds[0];
            io->stdin_fd = fds[1];
        }
    }
    env = exec_env(e, x, &user);
    struct rt_process p = {
        .argv = (const char *const *)x->argv,
        .env = (const char *const *)env,
        .cwd = x->cwd,
        .uid = user.uid,
        .gid = user.gid,
        .additional_gids = user.additional_gids,
        .n_additional_gids = user.n_additional_gids,
        .tty = x->tty,
        .stdio = { child[0], child[1], child[2] },
        .cap_add = (const char *const *)e->c->config->cap_add,
        .cap_drop = (const char *const *)e->c->config->cap_drop,
        .privileged = x->privileged || e->c->config->privileged,
        /* the container's security options hold for its execs too, as in docker */
        .no_new_privileges = e->c->config->opts.no_new_privileges,
        .seccomp_unconfined = e->c->config->opts.seccomp == CTR_SECCOMP_UNCONFINED,
        .seccomp_profile = e->c->config->opts.seccomp_profile,
    };
    if (startopts_exec(m, e->c->config, &user, group, &so, &p, err) < 0)
        goto out;
    pid_t pid = -1;
    if (rt_exec(e->rt, &p, NULL, &pid, err) < 0) {
        /* an exec that cannot start ends with 126, found or not (dockerd's exec start; the
         * 127 of a missing binary is `docker run`'s), the OCI message telling which */
        x->started = true;
        x->exit_code = 126;
        exec_start_error(x, err);
        goto out;
    }
    x->started = x->running = true;
    x->pid = pid;
    io->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    rc = 0;
out:
    for (int i = 0; i < 3; i++)
        if (child[i] >= 0 && (i == 0 || child[i] != child[i - 1]))
            close(child[i]);
    if (rc < 0) {
        if (io->stdin_fd >= 0)
            close(io->stdin_fd);
        if (io->stdout_fd >= 0)
            close(io->stdout_fd);
        if (io->stderr_fd >= 0)
            close(io->stderr_fd);
        *io = (struct ctr_exec_io){ -1, -1, -1, -1, false };
        if (starting && x->exit_code < 0) {
            x->started = true;
            x->exit_code = 126;
        }
    }
    pthread_cond_broadcast(&m->changed); /* a resize may be waiting for the start */
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int ctr_exec_finish(struct ctr_manager *m, const char *exec_id, struct merr *err)
{
    pthread_mutex_lock(&m->lock);
    struct ctr_exec *x = find_exec_locked(m, exec_id, err);
    pid_t pid = x != NULL && x->running ? x->pid : -1;
    pthread_mutex_unlock(&m->lock);
    if (x == NULL)
        return -1;
    if (pid <= 0)
        return 0;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    pthread_mutex_lock(&m->lock);
    x = find_exec_locked(m, exec_id, err);
    if (x != NULL) {
        x->exit_code = rt_decode_status(status);
        x->running = false;
        if (x->pty_master >= 0)
            close(x->pty_master);
        x->pty_master = -1;
    }
    pthread_mutex_unlock(&m->lock);
    return x != NULL ? 0 : -1;
}

json_t *ctr_exec_inspect(struct ctr_manager *m, const char *exec_id, struct merr *err)
{
    pthread_mutex_lock(&m->lock);
    struct ctr_exec *x = find_exec_locked(m, exec_id, err);
    json_t *j = NULL;
    if (x != NULL) {
        json_t *args = json_array();
        for (size_t i = 1; x->argv[i] != NULL; i++)
            json_array_append_new(args, json_string(x->argv[i]));
        j = json_pack("{s:s,s:b,s:o,s:{s:b,s:s,s:o,s:b,s:s},s:b,s:b,s:b,s:s,s:s,s:b,s:i}", "ID",
                      x->id, "Running", x->running, "ExitCode",
                      x->exit_code >= 0 ? json_integer(x->exit_code) : json_null(), "ProcessConfig",
                      "tty", x->tty, "entrypoint", x->argv[0], "arguments", args, "privileged",
                      x->privileged, "user", x->user, "OpenStdin", x->attach_stdin, "OpenStdout",
                      x->attach_stdout, "OpenStderr", x->attach_stderr, "ContainerID", x->ctr_id,
                      "DetachKeys", x->detach_keys, "CanRemove", !x->running && x->started, "Pid",
                      x->running ? (int)x->pid : 0);
    }
    pthread_mutex_unlock(&m->lock);
    return j;
}

int ctr_exec_resize(struct ctr_manager *m, const char *exec_id, unsigned short h, unsigned short w,
                    struct merr *err)
{
    pthread_mutex_lock(&m->lock);
    struct ctr_exec *x = find_exec_locked(m, exec_id, err);
    int rc = -1;
    /* As dockerd: a resize sent right after the start (which answers 101 before the process
     * exists) waits for it, up to 10 s. */
    struct timespec until = clock_deadline_ts(10000);
    while (x != NULL && !x->started &&
           pthread_cond_timedwait(&m->changed, &m->lock, &until) != ETIMEDOUT)
        x = find_exec_locked(m, exec_id, err);
    if (x != NULL && x->pty_master < 0) {
        merr_set(err, MERR_EXISTS, 0, "exec %s has no TTY or is not running", exec_id);
    } else if (x != NULL) {
        struct winsize ws = { .ws_row = h, .ws_col = w };
        rc = ioctl(x->pty_master, TIOCSWINSZ, &ws) < 0 ? merr_set(err, MERR_IO, errno, "cannot resize") : 0;
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

void ctr_exec_forget(struct ctr_manager *m, const char *exec_id)
{
    pthread_mutex_lock(&m->lock);
    size_t w = 0;
    for (size_t i = 0; i < m->n_execs; i++) {
        if (strcmp(m->execs[i]->id, exec_id) == 0 && !m->execs[i]->running)
            exec_free(m->execs[i]);
        else
            m->execs[w++] = m->execs[i];
    }
    m->n_execs = w;
    pthread_mutex_unlock(&m->lock);
}
