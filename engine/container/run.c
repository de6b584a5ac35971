/* Running containers: start, the per-container output thread, exit handling and restart
 * policies, stop/kill/wait, attach, logs, top and resize. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "logfile.h"
#include "strv.h"
#include "manager-priv.h"
#include "runtime/runtime.h"
#include "startopts.h"

#define READ_CHUNK 32768
#define DRAIN_MS 2000
#define USER_FILE_MAX (1u << 20)

/* ---- output fan-out ---- */

/* Frame = stdcopy header + payload; subscribers that went away are dropped (out_lock held). */
static void fanout_locked(struct ctr_entry *e, int stream, const char *data, size_t len, int64_t ns)
{
    unsigned char hdr[8] = { (unsigned char)stream, 0, 0, 0, (unsigned char)(len >> 24),
                             (unsigned char)(len >> 16), (unsigned char)(len >> 8), (unsigned char)len };
    struct ctr_sub **pp = &e->subs;
    while (*pp != NULL) {
        struct ctr_sub *s = *pp;
        if (ns <= s->skip_ns) {
            pp = &s->next;
            continue;
        }
        if (fs_write_all(s->wfd, hdr, sizeof hdr) < 0 || fs_write_all(s->wfd, data, len) < 0) {
            close(s->wfd);
            *pp = s->next;
            free(s);
            continue;
        }
        pp = &s->next;
    }
}

void run_fanout(struct ctr_entry *e, int stream, const char *data, size_t len, int64_t ns)
{
    pthread_mutex_lock(&e->out_lock);
    fanout_locked(e, stream, data, len, ns);
    pthread_mutex_unlock(&e->out_lock);
}

static void emit(struct ctr_manager *m, struct ctr_entry *e, int stream, const char *data, size_t len)
{
    int64_t now = mgr_now_ns();
    pthread_mutex_lock(&e->out_lock);
    /* One log record per line, as dockerd's json-file: logs --tail counts lines. */
    for (size_t at = 0; e->log != NULL && at < len;) {
        const char *nl = memchr(data + at, '\n', len - at);
        size_t n = nl != NULL ? (size_t)(nl - (data + at)) + 1 : len - at;
        size_t line_len = 0;
        auto_free char *line = logline_format(stream, data + at, n, now, &line_len);
        struct merr werr = MERR_INIT;
        if (logw_append(&e->log, &e->log_size, e->log_path, &e->c->config->log, line, line_len,
                        &werr) < 0)
            mlog_warn(m->log, "cannot write the log of %s: %s", e->c->id, werr.msg);
        at += n;
    }
    if (e->log != NULL && fflush(e->log) != 0)
        mlog_warn(m->log, "cannot write the log of %s: %s", e->c->id, strerror(errno));
    fanout_locked(e, stream, data, len, now);
    pthread_mutex_unlock(&e->out_lock);
}

void run_close_subs(struct ctr_entry *e)
{
    pthread_mutex_lock(&e->out_lock);
    while (e->subs != NULL) {
        struct ctr_sub *s = e->subs;
        e->subs = s->next;
        close(s->wfd);
        free(s);
    }
    pthread_mutex_unlock(&e->out_lock);
}

static int subscribe(struct ctr_entry *e, struct ctr_output_sub *sub, int64_t skip_ns,
                     struct merr *err)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return merr_set(err, MERR_IO, errno, "cannot create a pipe");
    /* The output thread must never block on a stalled client forever: a full pipe drops it. */
    int fl = fcntl(p[1], F_GETFL);
    fcntl(p[1], F_SETFL, fl & ~O_NONBLOCK);
    fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
    struct ctr_sub *s = xcalloc(1, sizeof *s);
    s->wfd = p[1];
    s->skip_ns = skip_ns;
    s->next = e->subs;
    e->subs = s;
    sub->fd = p[0];
    return 0;
}

static void network_stop(struct ctr_manager *m, const char *id);

/* ---- the output thread ---- */

static bool read_into(struct ctr_manager *m, struct ctr_entry *e, int *fd, int stream)
{
    char buf[READ_CHUNK];
    ssize_t n = read(*fd, buf, sizeof buf);
    if (n > 0) {
        emit(m, e, stream, buf, (size_t)n);
        return true;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return true;
    close(*fd); /* EOF, or EIO from a pty whose slave side is gone */
    *fd = -1;
    return false;
}

static void pump_output(struct ctr_manager *m, struct ctr_entry *e, int *out, int *errfd, int pidfd)
{
    bool exited = false;
    int64_t exit_at = 0;
    for (;;) {
        struct pollfd p[3];
        int n = 0;
        if (*out >= 0)
            p[n++] = (struct pollfd){ .fd = *out, .events = POLLIN };
        if (*errfd >= 0)
            p[n++] = (struct pollfd){ .fd = *errfd, .events = POLLIN };
        if (!exited && pidfd >= 0)
            p[n++] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
        if (n == 0)
            return;
        int timeout = exited ? 100 : -1;
        int r = poll(p, (nfds_t)n, timeout);
        if (r < 0 && errno != EINTR)
            return;
        for (int i = 0; r > 0 && i < n; i++) {
            if (p[i].revents == 0)
                continue;
            if (p[i].fd == pidfd) {
                exited = true;
                exit_at = clock_now_ms();
            } else if (p[i].fd == *out) {
                read_into(m, e, out, 1);
            } else if (p[i].fd == *errfd) {
                read_into(m, e, errfd, 2);
            }
        }
        if (exited) {
            /* Once the first process is gone its namespace dies; give the pipes a bounded drain. */
            int64_t ms = clock_since_ms(exit_at);
            if (ms > DRAIN_MS || (r == 0 && ms > 200))
                return;
        }
    }
}

static bool should_restart(const struct container *c)
{
    const struct ctr_state *st = &c->state;
    if (st->stopped_by_user)
        return false;
    switch (c->config->restart) {
    case RESTART_ALWAYS:
    case RESTART_UNLESS_STOPPED:
        return true;
    case RESTART_ON_FAILURE:
        return st->exit_code != 0 &&
               (c->config->restart_max_retries == 0 || st->restart_count < c->config->restart_max_retries);
    default:
        return false;
    }
}

static void *io_thread(void *opaque)
{
    struct run_io_args *a = opaque;
    struct ctr_manager *m = a->m;
    struct ctr_entry *e = a->e;
    free(a);

    pthread_mutex_lock(&m->lock);
    int out = e->pty_master >= 0 ? dup(e->pty_master) : e->out_r;
    int errfd = e->err_r;
    e->out_r = e->err_r = -1;
    int pidfd = rt_container_pidfd(e->rt);
    pid_t pid = rt_container_pid(e->rt);
    pthread_mutex_unlock(&m->lock);

    pump_output(m, e, &out, &errfd, pidfd);
    if (out >= 0)
        close(out);
    if (errfd >= 0)
        close(errfd);

    int wstatus = 0;
    while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
        ;
    run_finish(m, e, rt_decode_status(wstatus), 0, NULL);
    return NULL;
}

void run_finish(struct ctr_manager *m, struct ctr_entry *e, int exit_code, int64_t finished_ns,
                const char *why)
{
    pthread_mutex_lock(&m->lock);
    struct ctr_state *st = &e->c->state;
    st->exit_code = exit_code;
    if (why != NULL) {
        free(st->error);
        st->error = xstrdup(why);
    }
    bool oom = false;
    struct merr err = MERR_INIT;
    if (rt_oom_killed(e->rt, &oom, &err) < 0)
        mlog_debug(m->log, "oom check of %s: %s", e->c->id, err.msg);
    st->oom_killed = oom;
    if (oom)
        mgr_emit(m, e->c, "oom", NULL);
    {
        char code[16];
        snprintf(code, sizeof code, "%d", st->exit_code);
        mgr_emit(m, e->c, "die", json_pack("{s:s}", "exitCode", code));
    }
    if (rt_container_destroy(e->rt, &err) < 0)
        mlog_warn(m->log, "cleanup of container %s: %s", e->c->id, err.msg);
    e->rt = NULL;
    network_stop(m, e->c->id);
    startopts_stop(e);
    pty_devpts_release(e->dir);
    if (e->stdin_w >= 0)
        close(e->stdin_w);
    if (e->pty_master >= 0)
        close(e->pty_master);
    e->stdin_w = e->pty_master = -1;
    pthread_mutex_lock(&e->out_lock);
    if (e->log != NULL)
        fclose(e->log);
    e->log = NULL;
    pthread_mutex_unlock(&e->out_lock);
    run_close_subs(e);

    st->pid = 0;
    st->finished_ns = finished_ns > 0 ? finished_ns : mgr_now_ns();
    e->monitored = e->adopted = false;
    bool restart = should_restart(e->c);
    st->status = restart ? CTR_RESTARTING : CTR_EXITED;
    e->exit_seq++;
    if (mgr_persist_locked(m, e, &err) < 0)
        mlog_warn(m->log, "%s", err.msg);
    pthread_cond_broadcast(&m->changed);

    if (restart) {
        /* docker's back-off: 100 ms doubling, capped; a stop or rm during the wait wins. */
        int delay = 100 << (st->restart_count < 9 ? st->restart_count : 9);
        struct timespec until = clock_deadline_ts(delay);
        while (!e->removed && !st->stopped_by_user &&
               pthread_cond_timedwait(&m->changed, &m->lock, &until) != ETIMEDOUT)
            ;
        if (!e->removed && !st->stopped_by_user) {
            st->restart_count++;
            e->io_running = false;
            if (run_start_locked(m, e, &err) == 0) {
                mgr_entry_unref_locked(m, e);
                pthread_mutex_unlock(&m->lock);
                return;
            }
            mlog_warn(m->log, "restart of %s failed: %s", e->c->id, err.msg);
        }
        st->status = CTR_EXITED;
        if (mgr_persist_locked(m, e, &err) < 0)
            mlog_warn(m->log, "%s", err.msg);
    }
    e->io_running = false;
    pthread_cond_broadcast(&m->changed);
    if (e->c->config->auto_remove && !e->removed && mgr_remove_locked(m, e, true, &err) < 0)
        mlog_warn(m->log, "auto-remove of %s: %s", e->c->id, err.msg);
    mgr_entry_unref_locked(m, e);
    pthread_mutex_unlock(&m->lock);
}

/* ---- start ---- */

static bool wait_idle_locked(struct ctr_manager *m, struct ctr_entry *e, int timeout_ms);

/* A file of the image as the container would see it: upper layer first, then the lower layers
 * top-down; a whiteout (char device) hides it. NULL when absent. */
static char *read_image_file(const char *upper, char *const *lower, const char *rel)
{
    for (ssize_t i = -1; lower != NULL && (i < 0 || lower[i] != NULL); i++) {
        const char *base = i < 0 ? upper : lower[i];
        auto_free char *path = path_join(base, rel);
        struct stat st;
        if (lstat(path, &st) < 0)
            continue;
        if (!S_ISREG(st.st_mode))
            return NULL;
        char *text = NULL;
        struct merr ignored;
        if (fs_read_file(path, USER_FILE_MAX, &text, NULL, &ignored) < 0)
            return NULL;
        return text;
    }
    return NULL;
}

static bool has_env(char *const *env, const char *key)
{
    size_t k = strlen(key);
    for (size_t i = 0; env != NULL && env[i] != NULL; i++)
        if (strncmp(env[i], key, k) == 0 && (env[i][k] == '=' || env[i][k] == '\0'))
            return true;
    return false;
}

/* The input side exists from the first attach on, so input sent before start is kept. */
static int prepare_input_locked(struct ctr_entry *e, struct merr *err)
{
    const struct ctr_config *cfg = e->c->config;
    if (cfg->tty && e->pty_master < 0) {
        struct merr ignored;
        if (pty_devpts_ensure(e->dir, &ignored) < 0) {
            /* no instance of its own: pty_open takes one of the engine's ptys */
        }
        if (pty_open(e->dir, &e->pty_master, &e->pty_slave, err) < 0)
            return -1;
        /* HostConfig.ConsoleSize [h, w] (API 1.42): sized before the process starts */
        json_t *cs = json_object_get(cfg->raw_host_config, "ConsoleSize");
        struct winsize ws = { .ws_row = (unsigned short)json_integer_value(json_array_get(cs, 0)),
                              .ws_col = (unsigned short)json_integer_value(json_array_get(cs, 1)) };
        if (ws.ws_row > 0 && ws.ws_col > 0 && ioctl(e->pty_master, TIOCSWINSZ, &ws) < 0) {
            /* a nicety: the client resizes after the start too */
        }
        if (cfg->open_stdin)
            e->stdin_w = dup(e->pty_master);
    } else if (!cfg->tty && cfg->open_stdin && e->stdin_w < 0 && e->stdin_r < 0) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
            return merr_set(err, MERR_IO, errno, "cannot create a pipe");
        e->stdin_r = p[0];
        e->stdin_w = p[1];
    }
    return 0;
}

/* docker run exit codes come from the start error's wording. */
static void explain_start_error(struct merr *err, const char *argv0)
{
    if (err->code == MERR_NOT_FOUND)
        merr_set(err, MERR_INVALID, 0,
                 "failed to create task for container: exec: \"%s\": executable file not found in "
                 "$PATH",
                 argv0);
    else if (err->code == MERR_PERM)
        merr_set(err, MERR_INVALID, 0,
                 "failed to create task for container: exec: \"%s\": permission denied", argv0);
}

/* A start that failed: the exit code docker run reports, attached clients and waiters told,
 * an AutoRemove container removed. Returns -1. */
static int start_failed(struct ctr_manager *m, struct ctr_entry *e, struct merr *err)
{
    struct container *c = e->c;
    c->state.exit_code = strstr(err->msg, "not found") != NULL          ? 127
                         : strstr(err->msg, "permission denied") != NULL ? 126
                                                                         : 125;
    free(c->state.error);
    c->state.error = xstrdup(err->msg);
    /* Attached clients and waiters learn that nothing will run; an AutoRemove container
     * goes, as docker does when its start fails. */
    run_close_subs(e);
    e->exit_seq++;
    pthread_cond_broadcast(&m->changed);
    struct merr ignored;
    if (c->config->auto_remove && !e->io_running && !e->removed) {
        if (mgr_remove_locked(m, e, true, &ignored) < 0)
            mlog_warn(m->log, "%s", ignored.msg);
    } else if (mgr_persist_locked(m, e, &ignored) < 0) {
        mlog_warn(m->log, "%s", ignored.msg);
    }
    return -1;
}

/* The namespace the container joins: host, none (loopback only), another container's
 * (container:NAME), or one the network hooks built, with its /etc files. */
static int network_for_start(struct ctr_manager *m, struct ctr_entry *e, const char *hostname,
                             struct ctr_net_run *net, enum rt_network_mode *mode, char *ns,
                             size_t ns_size, struct merr *err)
{
    const char *want = e->c->config->network_mode;
    memset(net, 0, sizeof *net);
    *mode = RT_NET_NONE;
    if (strcmp(want, "host") == 0) {
        *mode = RT_NET_HOST;
    } else if (strncmp(want, "container:", 10) == 0) {
        struct ctr_entry *other = mgr_find_locked(m, want + 10, err);
        if (other == NULL)
            return -1;
        if (other->rt == NULL || other == e)
            return merr_set(err, MERR_EXISTS, 0, "cannot join network of a non running container: %s",
                            want + 10);
        snprintf(ns, ns_size, "/proc/%d/ns/net", (int)rt_container_pid(other->rt));
        *mode = RT_NET_PATH;
    } else if (strcmp(want, "none") != 0 && m->net.start != NULL) {
        if (m->net.start(m->net.data, e->c->id, hostname, net, err) < 0)
            return -1;
        if (net->netns_path != NULL) {
            snprintf(ns, ns_size, "%s", net->netns_path);
            *mode = RT_NET_PATH;
        }
    }
    return 0;
}

static void net_run_release(struct ctr_net_run *net)
{
    free(net->netns_path);
    free(net->hosts);
    free(net->resolv);
    free(net->hostname);
    for (size_t i = 0; i < CTR_NET_HOLD; i++)
        if (net->hold[i] > 2)
            close(net->hold[i]);
    memset(net, 0, sizeof *net);
}

static void network_stop(struct ctr_manager *m, const char *id)
{
    if (m->net.stop != NULL)
        m->net.stop(m->net.data, id);
}

static void mark_running_locked(struct ctr_manager *m, struct ctr_entry *e, struct rt_container *rc,
                                struct merr *err);
static void start_io_thread(struct ctr_manager *m, struct ctr_entry *e, void *(*fn)(void *),
                            int mon_fd);

/* The process's environment: the plan's, with HOSTNAME, TERM (with a tty) and HOME added when
 * the image and the caller did not set them. */
static char **start_env(const struct container *c, const char *hostname, const char *home)
{
    char **env = strv_dup(c->plan.env);
    auto_free char *hostname_env = xasprintf("HOSTNAME=%s", hostname);
    auto_free char *home_env = xasprintf("HOME=%s", home);
    if (!has_env(env, "HOSTNAME"))
        env = strv_push(env, hostname_env);
    if (c->config->tty && !has_env(env, "TERM"))
        env = strv_push(env, "TERM=xterm");
    if (!has_env(env, "HOME"))
        env = strv_push(env, home_env);
    ctr_env_drop_unset(env); /* a bare K in Env unsets K, dockerd's defaults included */
    return env;
}

/* The network's /etc files first, then the user's mounts (which may cover them); room is left
 * for the init binary. */
static struct rt_bind_mount *start_mounts(const struct ctr_net_run *net,
                                          const struct mounts_plan *mplan, size_t *n)
{
    struct rt_bind_mount *all = xcalloc(4 + mplan->n, sizeof *all);
    const char *const net_files[3][2] = { { net->hosts, "/etc/hosts" },
                                          { net->resolv, "/etc/resolv.conf" },
                                          { net->hostname, "/etc/hostname" } };
    *n = 0;
    for (size_t i = 0; i < 3; i++)
        if (net_files[i][0] != NULL)
            all[(*n)++] = (struct rt_bind_mount){ .source = net_files[i][0],
                                                  .destination = net_files[i][1] };
    for (size_t i = 0; i < mplan->n; i++)
        all[(*n)++] = mplan->items[i];
    return all;
}

/* The child's stdio: the pty slave for all three, or stdin's pipe and two new output pipes. */
static int start_stdio(struct ctr_entry *e, int child[3], int *out_r, int *err_r, struct merr *err)
{
    if (e->c->config->tty) {
        child[0] = child[1] = child[2] = e->pty_slave;
        return 0;
    }
    int out[2], errp[2];
    if (pipe2(out, O_CLOEXEC) < 0)
        return merr_set(err, MERR_IO, errno, "cannot create a pipe");
    if (pipe2(errp, O_CLOEXEC) < 0) {
        int saved = errno;
        close(out[0]);
        close(out[1]);
        return merr_set(err, MERR_IO, saved, "cannot create a pipe");
    }
    child[0] = e->stdin_r;
    child[1] = out[1];
    child[2] = errp[1];
    *out_r = out[0];
    *err_r = errp[0];
    return 0;
}

/* The image's layers, the directories of the container's file system, its user and the
 * options prepared before the process: -1 on failure, -2 when startopts_prepare failed (the
 * caller records that one as a failed start). */
static int start_prepare_locked(struct ctr_manager *m, struct ctr_entry *e, char ***lower,
                                struct rt_user *user, struct start_opts *so, struct merr *err)
{
    struct container *c = e->c;
    char *image_id = NULL;
    json_t *image_config = NULL;
    if (m->images.resolve(m->images.data, c->image_id, &image_id, &image_config, lower, err) < 0)
        return merr_prefix(err, "cannot start container %s: image %s", c->id, c->image_id);
    free(image_id);
    json_decref(image_config);
    if (fs_mkdir_p(e->rootfs, 0755, err) < 0 ||
        m->layers->prepare_container(e->upper, e->work, (const char *const *)*lower, err) < 0)
        return -1;
    auto_free char *passwd = read_image_file(e->upper, *lower, "etc/passwd");
    auto_free char *group = read_image_file(e->upper, *lower, "etc/group");
    if (rt_user_resolve(c->plan.user, passwd, group, user, err) < 0) {
        if (err->code == MERR_NOT_FOUND)
            merr_set(err, MERR_INVALID, 0,
                     "unable to find user %s: no matching entries in passwd file", c->plan.user);
        return -1;
    }
    return startopts_prepare(m, e, user, group, so, err) < 0 ? -2 : 0;
}

/* A devpts instance of its own (where the engine cannot mount one, the container gets a fresh
 * instance and its tty stays the engine's pty, as before). */
static char *start_devpts(struct ctr_manager *m, struct ctr_entry *e)
{
    struct merr pts_err = MERR_INIT;
    char *devpts = pty_devpts_path(e->dir);
    if (pty_devpts_ensure(e->dir, &pts_err) < 0) {
        mlog_warn(m->log, "%s", pts_err.msg);
        free(devpts);
        devpts = NULL;
    }
    return devpts;
}

static struct rt_resources start_resources(const struct container *c)
{
    return (struct rt_resources){
        .memory = c->config->memory,
        .memory_swap = c->config->memory_swap,
        .nano_cpus = c->config->nano_cpus,
        .cpu_quota = c->config->cpu_quota,
        .cpu_period = c->config->cpu_period,
        .cpu_shares = c->config->cpu_shares,
        .pids_limit = c->config->pids_limit,
    };
}

/* Undoes what a start set up before its process: the mount plan, the network. */
static void start_undo(struct ctr_manager *m, const struct container *c, struct ctr_net_run *net,
                       struct mounts_plan *mplan)
{
    mounts_plan_release(mplan);
    net_run_release(net);
    network_stop(m, c->id);
}

/* The container's main process: its command, environment, user and stdio. */
static struct rt_process start_process(const struct container *c, char **argv, char **env,
                                       const struct rt_user *user, const int child[3])
{
    return (struct rt_process){
        .argv = (const char *const *)argv,
        .env = (const char *const *)env,
        .cwd = c->plan.cwd,
        .uid = user->uid,
        .gid = user->gid,
        .additional_gids = user->additional_gids,
        .n_additional_gids = user->n_additional_gids,
        .tty = c->config->tty,
        .stdio = { child[0], child[1], child[2] },
        .cap_add = (const char *const *)c->config->cap_add,
        .cap_drop = (const char *const *)c->config->cap_drop,
        .privileged = c->config->privileged,
    };
}

/* The run's machine-monitor (monitor.c) when it is there: without one the engine is the
 * container's parent as before (and the container dies with it). */
static const struct rt_monitor *start_monitor(struct ctr_manager *m, struct ctr_entry *e, int out,
                                              int err_fd, int stdin_w, struct monitor_launch *l)
{
    auto_free char *path = monitor_find();
    struct merr err = MERR_INIT;
    if (path == NULL || monitor_prepare(e, path, out, err_fd, stdin_w, l, &err) < 0) {
        if (path != NULL)
            mlog_warn(m->log, "container %s runs without its monitor: %s", e->c->id, err.msg);
        e->monitored = false;
        return NULL;
    }
    e->monitored = true;
    return &l->rt;
}

/* The monitor reads the output now: the engine's ends go (the tty's master and stdin's write
 * end stay, for input and resizes while this engine runs). */
static void start_monitor_started(struct ctr_entry *e, struct monitor_launch *l, int *out_r,
                                  int *err_r)
{
    if (*out_r >= 0)
        close(*out_r);
    if (*err_r >= 0)
        close(*err_r);
    *out_r = *err_r = -1;
    pthread_mutex_lock(&e->out_lock);
    e->mon_fd = steal_fd(&l->conn_fd); /* the output thread's */
    pthread_mutex_unlock(&e->out_lock);
}

static int start_locked(struct ctr_manager *m, struct ctr_entry *e, struct merr *err)
{
    struct container *c = e->c;
    auto_strv char **lower = NULL;
    struct rt_user user;
    __attribute__((cleanup(startopts_release))) struct start_opts so = { 0 };
    int prepared = start_prepare_locked(m, e, &lower, &user, &so, err);
    if (prepared < 0)
        return prepared == -2 ? start_failed(m, e, err) : -1;
    char short_id[13];
    snprintf(short_id, sizeof short_id, "%.12s", c->id);
    const char *hostname = c->config->hostname != NULL ? c->config->hostname : short_id;
    auto_strv char **env = start_env(c, hostname, user.home);

    struct ctr_net_run net;
    enum rt_network_mode net_mode;
    char netns[4096];
    if (network_for_start(m, e, hostname, &net, &net_mode, netns, sizeof netns, err) < 0)
        return -1;
    struct mounts_plan mplan = { 0 };
    {
        auto_strv char **layers = strv_push(NULL, e->upper);
        for (size_t i = 0; lower != NULL && lower[i] != NULL && !m->layers->copies; i++)
            layers = strv_push(layers, lower[i]);
        if (mounts_prepare(m, c, layers, &mplan, err) < 0) {
            net_run_release(&net);
            network_stop(m, c->id);
            return -1;
        }
    }
    size_t n_mounts = 0;
    auto_free struct rt_bind_mount *all_mounts = start_mounts(&net, &mplan, &n_mounts);
    auto_free char *init_path = c->config->init ? init_find() : NULL;
    auto_strv char **argv = c->config->init ? init_argv(c->plan.argv) : strv_dup(c->plan.argv);
    if (c->config->init && init_path == NULL) {
        start_undo(m, c, &net, &mplan);
        return merr_set(err, MERR_INVALID, 0,
                        "exec: \"docker-init\": executable file not found in $PATH");
    }
    if (init_path != NULL)
        all_mounts[n_mounts++] = (struct rt_bind_mount){ .source = init_path,
                                                         .destination = INIT_CONTAINER_PATH,
                                                         .readonly = true };

    /* stdio: a pty, or pipes (stdin only when it is kept open). */
    auto_free char *devpts = start_devpts(m, e);
    if (prepare_input_locked(e, err) < 0) {
        start_undo(m, c, &net, &mplan);
        return -1;
    }
    int child[3] = { -1, -1, -1 };
    int pty_master = e->pty_master, stdin_w = e->stdin_w, out_r = -1, err_r = -1;
    if (start_stdio(e, child, &out_r, &err_r, err) < 0) {
        start_undo(m, c, &net, &mplan);
        return -1;
    }
    e->pty_slave = e->stdin_r = -1; /* closed below, with the other child ends */
    e->pty_master = e->stdin_w = -1;
    struct rt_spec spec = {
        .id = c->id,
        /* vfs: the container's own directory, bound writable (no overlay) */
        .lowerdirs = m->layers->copies ? NULL : (const char *const *)lower,
        .upperdir = e->upper,
        .workdir = m->layers->copies ? NULL : e->work,
        .rootfs = e->rootfs,
        .readonly_rootfs = c->config->readonly_rootfs,
        .devpts = devpts,
        .process = start_process(c, argv, env, &user, child),
        .hostname = hostname,
        .network = net_mode,
        .netns_path = net_mode == RT_NET_PATH ? netns : NULL,
        .resources = start_resources(c),
        .mounts = all_mounts,
        .n_mounts = n_mounts,
    };
    startopts_fill(&so, c->config, &spec);
    __attribute__((cleanup(monitor_launch_release))) struct monitor_launch mon = {
        .listen_fd = -1, .conn_fd = -1
    };
    spec.monitor = start_monitor(m, e, pty_master >= 0 ? pty_master : out_r, err_r,
                                 c->config->tty ? -1 : stdin_w, &mon);
    for (size_t i = 0; i < CTR_NET_HOLD && spec.monitor != NULL; i++) /* from fd MON_FD_HOLD */
        mon.rt.fds[RT_MONITOR_FDS - CTR_NET_HOLD + i] = net.hold[i] > 2 ? net.hold[i] : -1;
    struct rt_container *rc = NULL;
    int rc_start = rt_start(m->rt, &spec, &rc, err);
    if (rc_start == 0 && spec.monitor != NULL)
        start_monitor_started(e, &mon, &out_r, &err_r);
    mounts_plan_release(&mplan);
    net_run_release(&net);
    for (int i = 0; i < 3; i++)
        if (child[i] >= 0 && (i == 0 || child[i] != child[i - 1]))
            close(child[i]);
    if (rc_start < 0) {
        network_stop(m, c->id);
        startopts_stop(e);
        explain_start_error(err, c->plan.argv[0]);
        if (pty_master >= 0)
            close(pty_master);
        if (stdin_w >= 0)
            close(stdin_w);
        if (out_r >= 0)
            close(out_r);
        if (err_r >= 0)
            close(err_r);
        return -1;
    }
    e->pty_master = pty_master;
    e->stdin_w = stdin_w;
    e->out_r = out_r;
    e->err_r = err_r;
    mark_running_locked(m, e, rc, err);
    return 0;
}

/* The start went through: the container's state, its output thread, health checks, events. */
static void mark_running_locked(struct ctr_manager *m, struct ctr_entry *e, struct rt_container *rc,
                                struct merr *err)
{
    struct container *c = e->c;
    pthread_mutex_lock(&e->out_lock);
    /* a monitored run's log is its monitor's to write */
    e->log = c->config->log.driver == CTR_LOG_NONE || e->monitored
                 ? NULL
                 : logw_open(e->log_path, &e->log_size);
    pthread_mutex_unlock(&e->out_lock);
    e->rt = rc;
    struct rt_state rs;
    rt_container_state(rc, &rs);
    c->state.status = CTR_RUNNING;
    c->state.pid = rs.pid;
    c->state.rt_start_time = rs.start_time;
    c->state.started_ns = mgr_now_ns();
    c->state.oom_killed = false;
    c->state.stopped_by_user = false;
    c->state.exit_code = 0;
    free(c->state.error);
    c->state.error = NULL;
    start_io_thread(m, e, e->monitored ? monitor_io_thread : io_thread,
                    e->monitored ? e->mon_fd : -1);
    if (mgr_persist_locked(m, e, err) < 0)
        mlog_warn(m->log, "%s", err->msg);
    mgr_emit(m, c, "start", NULL);
    health_start_locked(m, e);
    pthread_cond_broadcast(&m->changed);
}

static void start_io_thread(struct ctr_manager *m, struct ctr_entry *e, void *(*fn)(void *),
                            int mon_fd)
{
    e->io_running = true;
    e->refs++; /* the output thread's */
    struct run_io_args *a = xcalloc(1, sizeof *a);
    a->m = m;
    a->e = e;
    a->mon_fd = mon_fd;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, fn, a) != 0) {
        pthread_attr_destroy(&attr);
        abort(); /* cannot supervise a running container: nothing sane to do */
    }
    pthread_attr_destroy(&attr);
}

void run_adopted_locked(struct ctr_manager *m, struct ctr_entry *e, int mon_fd)
{
    e->monitored = e->adopted = true;
    start_io_thread(m, e, monitor_io_thread, mon_fd);
    health_start_locked(m, e);
    pthread_cond_broadcast(&m->changed);
}

/* Every failed start is recorded the same way (State.Error, the exit code docker run reports,
 * an AutoRemove container removed), whichever step failed. */
int run_start_locked(struct ctr_manager *m, struct ctr_entry *e, struct merr *err)
{
    return start_locked(m, e, err) < 0 ? start_failed(m, e, err) : 0;
}

int ctr_start(struct ctr_manager *m, const char *ref, struct merr *err)
{
    pthread_mutex_lock(&m->lock);
    struct ctr_entry *e = mgr_find_locked(m, ref, err);
    int rc = -1;
    if (e == NULL)
        goto out;
    enum ctr_status st = e->c->state.status;
    if (st == CTR_RUNNING || st == CTR_PAUSED || st == CTR_RESTARTING) {
        rc = 1;
        goto out;
    }
    if (e->io_running && e->rt == NULL)
        wait_idle_locked(m, e, 5000); /* the previous run is still being wound up */
    if (st == CTR_REMOVING || st == CTR_DEAD || e->io_running) {
        merr_set(err, MERR_EXISTS, 0, "container %s cannot be started now (%s)", ref,
                 ctr_status_name(st));
        goto out;
    }
    rc = run_start_locked(m, e, err);
out:
    pthread_mutex_unlock(&m->lock);
    return rc;
}

/* ---- stop, kill, wait ---- */

bool run_wait_stopped_locked(struct ctr_manager *m, struct ctr_entry *e, uint64_t seq, int timeout_ms)
{
    struct timespec until = clock_deadline_ts(timeout_ms);
    while (!e->removed && e->io_running && e->exit_seq == seq)
        if (pthread_cond_timedwait(&m->changed, &m->lock, &until) == ETIMEDOUT)
            break;
    /* A restart policy may have started it again; what matters is that it exited. */
    return e->removed || !e->io_running || e->exit_seq != seq;
}

/* Waits until no output thread owns e (its previous run is fully finished). */
static bool wait_idle_locked(struct ctr_manager *m, struct ctr_entry *e, int timeout_ms)
{
    struct timespec until = clock_deadline_ts(timeout_ms);
    while (!e->removed && e->io_running && e->rt == NULL)
        if (pthread_cond_timedwait(&m->changed, &m->lock, &until) == ETIMEDOUT)
            break;
    return !e->io_running;
}

static int signal_of(const char *name, int def, struct merr *err)
{
    if (name == NULL || name[0] == '\0')
        return def;
    int sig = ctr_signal_parse(name);
    if (sig < 0)
        return merr_set(err, MERR_INVALID, 0, "Invalid signal: %s", name);
    return sig;
}

int ctr_stop(struct ctr_manager *m, const char *ref, int timeout_s, const char *signal,
             struct merr *err)
{
    pthread_mutex_lock(&m->lock);
    struct ctr_entry *e = mgr_find_locked(m, ref, err);
    int rc = -1;
    if (e == NULL)
        goto out;
    struct container *c = e->c;
    if (c->state.status == CTR_RESTARTING && e->rt == NULL) {
        c->state.stopped_by_user = true; /* cancels the pending restart */
        pthread_cond_broadcast(&m->changed);
        wait_idle_locked(m, e, 5000);
        rc = 0;
        goto out;
    }
    if (e->rt == NULL) {
        rc = 1;
        goto out;
    }
    int sig = signal_of(signal != NULL ? signal : c->plan.stop_signal, SIGTERM, err);
    if (sig < 0)
        goto out;
    if (timeout_s < 0)
        timeout_s = c->config->stop_timeout >= 0 ? c->config->stop_timeout : 10;
    c->state.stopped_by_user = true;
    uint64_t seq = e->exit_seq;
    e->refs++;
    struct merr kerr = MERR_INIT;
    if (rt_kill(e->rt, sig, &kerr) < 0)
        mlog_debug(m->log, "stop %s: %s", c->id, kerr.msg);
    mgr_thaw_if_paused_locked(m, e, 0);
    if (!run_wait_stopped_locked(m, e, seq, timeout_s * 1000) && e->rt != NULL) {
        if (rt_kill(e->rt, SIGKILL, &kerr) < 0)
            mlog_debug(m->log, "kill %s: %s", c->id, kerr.msg);
        run_wait_stopped_locked(m, e, seq, 15000);
    }
    bool stopped = e->removed || e->exit_seq != seq;
    if (stopped)
        mgr_emit(m, c, "stop", NULL);
    mgr_entry_unref_locked(m, e);
    rc = stopped ? 0 : merr_set(err, MERR_TIMEOUT, 0, "container %s did not stop", ref);
out:
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int ctr_kill(struct ctr_manager *m, const char *ref, const char *signal, struct merr *err)
{
    pthread_mutex_lock(&m->lock);
    struct ctr_entry *e = mgr_find_locked(m, ref, err);
    int rc = -1;
    if (e == NULL)
        goto out;
    int sig = signal_of(signal, SIGKILL, err);
    if (sig < 0)
        goto out;
    if (e->rt == NULL ||
        (e->c->state.status != CTR_RUNNING && e->c->state.status != CTR_PAUSED)) {
        merr_set(err, MERR_EXISTS, 0, "cannot kill container: %s: container %s is not running",
                 ref, e->c->id);
        goto out;
    }
    if (sig == SIGKILL || sig == SIGTERM || sig == SIGINT)
        e->c->state.stopped_by_user = true;
    uint64_t seq = e->exit_seq;
    rc = rt_kill(e->rt, sig, err);
    mgr_thaw_if_paused_locked(m, e, sig);
    if (rc == 0) {
        char signum[16];
        snprintf(signum, sizeof signum, "%d", sig);
        mgr_emit(m, e->c, "kill", json_pack("{s:s}", "signal", signum));
    }
    /* As dockerd: a SIGKILL returns once the container is dead and its exit recorded, so the
     * next inspect or start sees it stopped. */
    if (rc == 0 && sig == SIGKILL) {
        e->refs++;
        run_wait_stopped_locked(m, e, seq, 15000);
        mgr_entry_unref_locked(m, e);
    }
out:
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int ctr_restart(struct ctr_manager *m, const char *ref, int timeout_s, const char *signal,
                struct merr *err)
{
    if (ctr_stop(m, ref, timeout_s, signal, err) < 0)
        return -1;
    pthread_mutex_lock(&m->lock);
    struct ctr_entry *e = mgr_find_locked(m, ref, err);
    int rc = -1;
    if (e != NULL) {
        wait_idle_locked(m, e, 5000);
        rc = e->rt != NULL || e->io_running ? 0 : run_start_locked(m, e, err);
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

struct ctr_waiter {
    struct ctr_manager *m;
    struct ctr_entry *e;
    enum ctr_wait_condition cond;
    uint64_t seq;
};

int ctr_wait_prepare(struct ctr_manager *m, const char *ref, enum ctr_wait_condition cond,
                     struct ctr_waiter **out, struct merr *err)
{
    pthread_mutex_lock(&m->lock);
    struct ctr_entry *e = mgr_find_locked(m, ref, err);
    if (e == NULL) {
        pthread_mutex_unlock(&m->lock);
        return -1;
    }
    struct ctr_waiter *w = xcalloc(1, sizeof *w);
    w->m = m;
    w->e = e;
    w->cond = cond;
    w->seq = e->exit_seq;
    e->refs++;
    pthread_mutex_unlock(&m->lock);
    *out = w;
    return 0;
}

static bool wait_done_locked(const struct ctr_waiter *w)
{
    const struct ctr_entry *e = w->e;
    switch (w->cond) {
    case CTR_WAIT_REMOVED:
        return e->removed;
    case CTR_WAIT_NEXT_EXIT:
        return e->exit_seq != w->seq || e->removed;
    case CTR_WAIT_NOT_RUNNING:
    default:
        /* An exit counts even when a restart policy starts it again (dockerd wakes its
         * not-running waiters when a container goes to "restarting"). */
        return e->removed || e->exit_seq != w->seq ||
               (!e->io_running && e->c->state.status != CTR_RUNNING &&
                e->c->state.status != CTR_RESTARTING);
    }
}

int ctr_wait_finish(struct ctr_waiter *w, int cancel_fd, int *exit_code, char **error,
                    struct merr *err)
{
    struct ctr_manager *m = w->m;
    pthread_mutex_lock(&m->lock);
    while (!wait_done_locked(w)) {
        struct timespec until = clock_deadline_ts(250);
        pthread_cond_timedwait(&m->changed, &m->lock, &until);
        if (cancel_fd >= 0) {
            struct pollfd p = { .fd = cancel_fd, .events = POLLIN };
            if (poll(&p, 1, 0) > 0) {
                pthread_mutex_unlock(&m->lock);
                return merr_set(err, MERR_BUSY, 0, "the engine is shutting down");
            }
        }
    }
    *exit_code = w->e->c->state.exit_code;
    *error = w->e->c->state.error != NULL ? xstrdup(w->e->c->state.error) : NULL;
    pthread_mutex_unlock(&m->lock);
    return 0;
}

void ctr_waiter_free(struct ctr_waiter *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->m->lock);
    mgr_entry_unref_locked(w->m, w->e);
    pthread_mutex_unlock(&w->m->lock);
    free(w);
}

/* ---- attach, logs, resize, top ---- */

int ctr_attach(struct ctr_manager *m, const char *ref, bool want_stdin, struct ctr_output_sub *sub,
               int *stdin_fd, bool *close_stdin_on_eof, struct merr *err)
{
    pthread_mutex_lock(&m->lock);
    struct ctr_entry *e = mgr_find_locked(m, ref, err);
    int rc = -1;
    if (e == NULL)
        goto out;
    *stdin_fd = -1;
    *close_stdin_on_eof = e->c->config->stdin_once;
    pthread_mutex_lock(&e->out_lock);
    rc = subscribe(e, sub, 0, err);
    pthread_mutex_unlock(&e->out_lock);
    /* an adopted run's input goes through its monitor */
    if (rc == 0 && want_stdin && e->adopted && e->c->config->open_stdin)
        *stdin_fd = monitor_input_locked(m, e);
    else if (rc == 0 && want_stdin && !e->adopted && prepare_input_locked(e, err) == 0 &&
             e->stdin_w >= 0)
        *stdin_fd = dup(e->stdin_w);
out:
    pthread_mutex_unlock(&m->lock);
    return rc;
}

void ctr_detach_stdin(struct ctr_manager *m, const char *ref, int stdin_fd)
{
    if (stdin_fd >= 0)
        close(stdin_fd);
    struct merr ignored;
    pthread_mutex_lock(&m->lock);
    struct ctr_entry *e = mgr_find_locked(m, ref, &ignored);
    /* StdinOnce: the container sees EOF when its first attached client closes stdin. */
    if (e != NULL && e->c->config->stdin_once && e->stdin_w >= 0 && e->pty_master < 0) {
        close(e->stdin_w);
        e->stdin_w = -1;
        if (e->monitored) /* it holds the pipe open too */
            monitor_send(e, MON_FRAME_CLOSE_STDIN, NULL, 0);
    }
    pthread_mutex_unlock(&m->lock);
}

int ctr_resize(struct ctr_manager *m, const char *ref, unsigned short h, unsigned short w,
               struct merr *err)
{
    pthread_mutex_lock(&m->lock);
    struct ctr_entry *e = mgr_find_locked(m, ref, err);
    int rc = -1;
    if (e != NULL && e->pty_master < 0 && e->adopted && e->c->config->tty) {
        unsigned char size[4] = { (unsigned char)(h >> 8), (unsigned char)h,
                                  (unsigned char)(w >> 8), (unsigned char)w };
        rc = monitor_send(e, MON_FRAME_RESIZE, size, sizeof size) < 0
                 ? merr_set(err, MERR_IO, 0, "cannot resize the TTY of %s", ref)
                 : 0;
    } else if (e != NULL && e->pty_master < 0) {
        merr_set(err, MERR_EXISTS, 0, "container %s has no TTY or is not running", ref);
    } else if (e != NULL) {
        struct winsize ws = { .ws_row = h, .ws_col = w };
        rc = ioctl(e->pty_master, TIOCSWINSZ, &ws) < 0
                 ? merr_set(err, MERR_IO, errno, "cannot resize the TTY of %s", ref)
                 : 0;
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

struct log_rec {
    int stream;
    char *data;
    size_t len;
    int64_t ns;
};

/* Sends r's data from byte off on; with timestamps every line is stamped, as dockerd keeps
 * one record (one time) per line. */
static int emit_record(const struct ctr_logs_opts *o, const struct log_rec *r, size_t off,
                       ctr_log_sink_fn sink, void *data, struct merr *err)
{
    if ((r->stream == 1 && !o->stdout_) || (r->stream == 2 && !o->stderr_))
        return 0;
    if ((o->since_ns > 0 && r->ns < o->since_ns) || (o->until_ns > 0 && r->ns > o->until_ns))
        return 0;
    auto_free char *ts = o->timestamps ? fmt_rfc3339_nano(r->ns) : NULL;
    auto_free char *prefix = loglines_prefix(ts, o->details);
    if (prefix == NULL)
        return sink(data, r->stream, r->data + off, r->len - off, err);
    size_t n = 0;
    auto_free char *buf = loglines_stamp(prefix, r->data + off, r->len - off, &n);
    return sink(data, r->stream, buf, n, err);
}

/* --tail counts lines: the first record to send and where in it the last `tail` lines start. */
static void tail_start(const struct log_rec *recs, size_t n, long long tail, size_t *first,
                       size_t *off)
{
    *first = 0;
    *off = 0;
    if (tail < 0)
        return;
    size_t need = (size_t)tail;
    *first = n;
    for (size_t i = n; i-- > 0 && need > 0;) {
        size_t lines = loglines_count(recs[i].data, recs[i].len);
        *first = i;
        if (lines <= need) {
            need -= lines;
        } else {
            *off = loglines_tail_offset(recs[i].data, recs[i].len, need);
            need = 0;
        }
    }
}

int ctr_logs_readable(struct ctr_manager *m, const char *ref, struct merr *err)
{
    pthread_mutex_lock(&m->lock);
    struct ctr_entry *e = mgr_find_locked(m, ref, err);
    int rc = e == NULL ? -1 : 0;
    if (e != NULL && e->c->config->log.driver == CTR_LOG_NONE)
        rc = merr_set(err, MERR_INVALID, 0, "configured logging driver does not support reading");
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static void read_log_file(const char *path, struct log_rec **recs, size_t *n, size_t *cap)
{
    auto_fclose FILE *f = fopen(path, "re");
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while (f != NULL && (len = getline(&line, &lcap, f)) > 0) {
        struct log_rec r = { 0 };
        struct merr perr;
        if (logline_parse(line, (size_t)len, &r.stream, &r.data, &r.len, &r.ns, &perr) < 0)
            continue;
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 64;
            struct log_rec *nr = realloc(*recs, *cap * sizeof *nr);
            if (nr == NULL)
                abort();
            *recs = nr;
        }
        (*recs)[(*n)++] = r;
    }
    free(line);
}

int ctr_logs(struct ctr_manager *m, const char *ref, const struct ctr_logs_opts *o,
             ctr_log_sink_fn sink, void *data, struct ctr_output_sub *sub, struct merr *err)
{
    sub->fd = -1;
    pthread_mutex_lock(&m->lock);
    struct ctr_entry *e = mgr_find_locked(m, ref, err);
    if (e == NULL) {
        pthread_mutex_unlock(&m->lock);
        return -1;
    }
    if (e->c->config->log.driver == CTR_LOG_NONE) {
        pthread_mutex_unlock(&m->lock);
        return merr_set(err, MERR_INVALID, 0, "configured logging driver does not support reading");
    }
    auto_strv char **files = logw_files(e->log_path, e->c->config->log.max_file);
    /* Reading the files and subscribing happen under out_lock: no record is lost or doubled. */
    pthread_mutex_lock(&e->out_lock);
    struct log_rec *recs = NULL;
    size_t n = 0, cap = 0;
    for (size_t fi = 0; files[fi] != NULL; fi++)
        read_log_file(files[fi], &recs, &n, &cap);
    int rc = 0;
    /* dockerd does not follow past an `until` that has already passed */
    if (o->follow && e->io_running && (e->log != NULL || e->monitored) &&
        (o->until_ns == 0 || o->until_ns > mgr_now_ns()))
        rc = subscribe(e, sub, n > 0 ? recs[n - 1].ns : 0, err);
    pthread_mutex_unlock(&e->out_lock);
    pthread_mutex_unlock(&m->lock);

    size_t first, first_off;
    tail_start(recs, n, o->tail, &first, &first_off);
    for (size_t i = 0; i < n; i++) {
        if (rc == 0 && i >= first)
            rc = emit_record(o, &recs[i], i == first ? first_off : 0, sink, data, err);
        free(recs[i].data);
    }
    free(recs);
    if (rc < 0 && sub->fd >= 0) {
        close(sub->fd);
        sub->fd = -1;
    }
    return rc;
}

