/* The engine's side of machine-monitor (engine/monitor/): what a start hands it, the output
 * thread of a monitored run (its frames fanned out to attach and logs -f clients), and what a
 * restarted engine makes of a container its previous run left running. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "manager-priv.h"
#include "monitor/monproto.h"
#include "runtime/runtime.h"

/* the network's hold fds (ctr_net_run.hold) are the last of the monitor's */
_Static_assert(3 + RT_MONITOR_FDS - CTR_NET_HOLD == MON_FD_HOLD &&
                   MON_FD_HOLD + CTR_NET_HOLD - 1 == MON_FD_HOLD_LAST,
               "the monitor's hold fds");

char *monitor_find(void)
{
    const char *const rel[] = { MON_BINARY, "../libexec/" MON_BINARY, NULL };
    return fs_find_beside_exe(rel);
}

/* A unix socket address for a file of dir, whatever dir's length (sun_path holds 108 bytes):
 * through /proc/self/fd of an O_PATH descriptor of dir. */
static int sock_addr(const char *dir, int *dirfd, struct sockaddr_un *sa, struct merr *err)
{
    *dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (*dirfd < 0)
        return merr_set(err, MERR_IO, errno, "cannot open '%s'", dir);
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    snprintf(sa->sun_path, sizeof sa->sun_path, "/proc/self/fd/%d/%s", *dirfd, MON_SOCKET_FILE);
    return 0;
}

static int listen_socket(const char *dir, struct merr *err)
{
    struct sockaddr_un sa;
    auto_close int dirfd = -1;
    if (sock_addr(dir, &dirfd, &sa, err) < 0)
        return -1;
    unlinkat(dirfd, MON_SOCKET_FILE, 0);
    auto_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 4) < 0)
        return merr_set(err, MERR_IO, errno, "cannot listen on the monitor socket of '%s'", dir);
    return steal_fd(&fd);
}

int monitor_connect(const char *dir, struct merr *err)
{
    struct sockaddr_un sa;
    auto_close int dirfd = -1;
    if (sock_addr(dir, &dirfd, &sa, err) < 0)
        return -1;
    auto_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        return merr_set(err, MERR_UNREACHABLE, errno, "the monitor of '%s' does not answer", dir);
    return steal_fd(&fd);
}

int monitor_read_state(const char *dir, struct mon_state *out, struct merr *err)
{
    auto_free char *path = path_join(dir, MON_STATE_FILE);
    auto_free char *text = NULL;
    size_t len = 0;
    if (fs_read_file(path, 4096, &text, &len, err) < 0)
        return -1;
    return mon_state_parse(text, len, out, err);
}

static void add_arg(struct monitor_launch *l, const char *arg)
{
    if (l->n_args < RT_MONITOR_ARGS - 1)
        l->args[l->n_args++] = xstrdup(arg);
}

int monitor_prepare(const struct ctr_entry *e, const char *path, int out_r, int err_r,
                    int stdin_w, struct monitor_launch *l, struct merr *err)
{
    memset(l, 0, sizeof *l);
    auto_free char *state = path_join(e->dir, MON_STATE_FILE);
    unlink(state); /* the previous run's */
    l->conn_fd = -1;
    l->listen_fd = listen_socket(e->dir, err);
    if (l->listen_fd < 0)
        return -1;
    /* queued on the socket: the monitor takes it before it reads any output, so an attached
     * client gets all of it */
    l->conn_fd = monitor_connect(e->dir, err);
    if (l->conn_fd < 0)
        return -1;
    const struct ctr_config *cfg = e->c->config;
    add_arg(l, path);
    add_arg(l, "--dir");
    add_arg(l, e->dir);
    if (cfg->tty)
        add_arg(l, "--tty");
    if (stdin_w >= 0)
        add_arg(l, "--stdin");
    if (cfg->log.driver != CTR_LOG_NONE) {
        char num[32];
        add_arg(l, "--log");
        add_arg(l, e->log_path);
        snprintf(num, sizeof num, "%lld", (long long)cfg->log.max_size);
        add_arg(l, "--max-size");
        add_arg(l, num);
        snprintf(num, sizeof num, "%d", cfg->log.max_file > 0 ? cfg->log.max_file : 1);
        add_arg(l, "--max-file");
        add_arg(l, num);
    }
    l->rt = (struct rt_monitor){ .path = l->args[0],
                                 .argv = (const char *const *)l->args,
                                 .fds = { out_r, err_r, stdin_w, l->listen_fd } };
    return 0;
}

void monitor_launch_release(struct monitor_launch *l)
{
    for (size_t i = 0; i < l->n_args; i++)
        free(l->args[i]);
    if (l->listen_fd >= 0)
        close(l->listen_fd);
    if (l->conn_fd >= 0)
        close(l->conn_fd);
    memset(l, 0, sizeof *l);
    l->listen_fd = l->conn_fd = -1;
}

int monitor_send(struct ctr_entry *e, enum mon_frame_type type, const void *data, size_t len)
{
    unsigned char hdr[MON_FRAME_HDR];
    mon_frame_pack(&(struct mon_frame){ .type = type, .len = (uint32_t)len }, hdr);
    pthread_mutex_lock(&e->out_lock);
    int rc = e->mon_fd < 0 ? -1
             : fs_write_all(e->mon_fd, hdr, sizeof hdr) < 0 ||
                     (len > 0 && fs_write_all(e->mon_fd, data, len) < 0)
                 ? -1
                 : 0;
    pthread_mutex_unlock(&e->out_lock);
    return rc;
}

/* Output frames to the run's clients until the monitor reports the exit (1) or goes away (0). */
static int pump_monitor(struct ctr_manager *m, struct ctr_entry *e, int fd, struct mon_state *st)
{
    char *buf = malloc(MON_FRAME_MAX + 1);
    if (buf == NULL)
        abort();
    int rc = 0;
    for (;;) {
        unsigned char hdr[MON_FRAME_HDR];
        struct mon_frame f;
        struct merr err;
        if (!mon_read_exact(fd, hdr, sizeof hdr) || mon_frame_unpack(hdr, &f, &err) < 0 ||
            !mon_read_exact(fd, buf, f.len))
            break;
        if (f.type == MON_FRAME_OUTPUT && (f.stream == 1 || f.stream == 2)) {
            run_fanout(e, f.stream, buf, f.len, f.ns);
        } else if (f.type == MON_FRAME_EXIT) {
            rc = mon_state_parse(buf, f.len, st, &err) == 0 && st->status == MON_EXITED;
            if (!rc)
                mlog_warn(m->log, "container %s: %s", e->c->id, err.msg);
            break;
        }
    }
    free(buf);
    return rc;
}

/* The monitor went away without reporting: what its state file says, else the container is
 * killed (it dies with its monitor anyway) and reported exited with the reason. */
static void monitor_lost(struct ctr_manager *m, struct ctr_entry *e, struct mon_state *st,
                         const char **why)
{
    struct merr err = MERR_INIT;
    if (monitor_read_state(e->dir, st, &err) == 0 && st->status == MON_EXITED)
        return;
    *why = "the container's monitor exited unexpectedly";
    pthread_mutex_lock(&m->lock);
    int pidfd = e->rt != NULL ? rt_container_pidfd(e->rt) : -1;
    if (e->rt != NULL && rt_kill(e->rt, SIGKILL, &err) < 0)
        mlog_debug(m->log, "kill %s: %s", e->c->id, err.msg);
    pthread_mutex_unlock(&m->lock);
    if (pidfd >= 0) { /* bounded: the pidfd stays ours until the run is finished below */
        struct pollfd p = { .fd = pidfd, .events = POLLIN };
        while (poll(&p, 1, 5000) < 0 && errno == EINTR)
            ;
    }
    st->exit_code = 137;
    st->finished_ns = mgr_now_ns();
}

void *monitor_io_thread(void *opaque)
{
    struct run_io_args *a = opaque;
    struct ctr_manager *m = a->m;
    struct ctr_entry *e = a->e;
    int fd = a->mon_fd;
    free(a);
    struct merr err = MERR_INIT;
    if (fd < 0)
        fd = monitor_connect(e->dir, &err);
    pthread_mutex_lock(&e->out_lock);
    e->mon_fd = fd;
    pthread_mutex_unlock(&e->out_lock);
    struct mon_state st = { 0 };
    const char *why = NULL;
    if (fd < 0 || pump_monitor(m, e, fd, &st) != 1)
        monitor_lost(m, e, &st, &why);
    pthread_mutex_lock(&e->out_lock);
    e->mon_fd = -1;
    pthread_mutex_unlock(&e->out_lock);
    if (fd >= 0)
        close(fd);
    run_finish(m, e, st.exit_code, st.finished_ns, why);
    return NULL;
}

struct input_args {
    struct ctr_manager *m;
    struct ctr_entry *e;
    int fd;
};

static void *input_thread(void *opaque)
{
    struct input_args *a = opaque;
    char buf[16384];
    ssize_t n;
    while ((n = read(a->fd, buf, sizeof buf)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || monitor_send(a->e, MON_FRAME_INPUT, buf, (size_t)n) < 0)
            break;
    }
    if (n == 0 && a->e->c->config->stdin_once)
        monitor_send(a->e, MON_FRAME_CLOSE_STDIN, NULL, 0);
    close(a->fd);
    pthread_mutex_lock(&a->m->lock);
    mgr_entry_unref_locked(a->m, a->e);
    pthread_mutex_unlock(&a->m->lock);
    free(a);
    return NULL;
}

int monitor_input_locked(struct ctr_manager *m, struct ctr_entry *e)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    struct input_args *a = xcalloc(1, sizeof *a);
    *a = (struct input_args){ .m = m, .e = e, .fd = p[0] };
    e->refs++;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, input_thread, a);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        e->refs--;
        close(p[0]);
        close(p[1]);
        free(a);
        return -1;
    }
    return p[1];
}

/* ---- recovery ---- */

static void settle_exited(struct ctr_manager *m, struct ctr_entry *e, int code, int64_t finished,
                          const char *why)
{
    struct ctr_state *st = &e->c->state;
    if (m->net.stop != NULL)
        m->net.stop(m->net.data, e->c->id);
    st->status = CTR_EXITED;
    st->pid = 0;
    st->exit_code = code;
    st->finished_ns = finished > 0 ? finished : mgr_now_ns();
    free(st->error);
    st->error = why != NULL ? xstrdup(why) : NULL;
}

int monitor_recover_locked(struct ctr_manager *m, struct ctr_entry *e, int *mon_fd)
{
    *mon_fd = -1;
    struct mon_state ms;
    struct merr err = MERR_INIT;
    bool have = monitor_read_state(e->dir, &ms, &err) == 0;
    int fd = have && ms.status == MON_RUNNING ? monitor_connect(e->dir, &err) : -1;
    char boot_id[40] = "";
    auto_free char *boot = NULL;
    size_t boot_len = 0;
    if (fs_read_file(MON_BOOT_ID_FILE, 64, &boot, &boot_len, &err) < 0 ||
        mon_boot_id_parse(boot, boot_len, boot_id) < 0)
        boot_id[0] = '\0';
    enum mon_recovery what = mon_recovery_decide(have ? &ms : NULL, fd >= 0, boot_id);
    if (what == MON_RECOVER_LEGACY)
        return 0;
    struct ctr_state *st = &e->c->state;
    struct rt_state rs = { 0 };
    snprintf(rs.id, sizeof rs.id, "%s", e->c->id);
    rs.pid = st->pid;
    rs.start_time = st->rt_start_time;
    snprintf(rs.rootfs, sizeof rs.rootfs, "%s", e->rootfs);
    struct rt_container *rc = NULL;
    if (what == MON_RECOVER_ADOPT && !m->live_restore) {
        /* --live-restore=false: what the dead engine ran goes, as dockerd's restore */
        close(fd);
        if (rt_adopt(m->rt, &rs, &rc, &err) == 1) {
            if (rt_stop(rc, SIGKILL, 0, 5000, &err) < 0)
                mlog_warn(m->log, "cannot stop container %s: %s", e->c->id, err.msg);
            if (rt_container_destroy(rc, &err) < 0)
                mlog_warn(m->log, "cannot clean up container %s: %s", e->c->id, err.msg);
        }
        settle_exited(m, e, 137, 0, "the engine stopped while the container was running");
        return 1;
    }
    if (what == MON_RECOVER_ADOPT) {
        int alive = rt_adopt(m->rt, &rs, &rc, &err);
        if (alive == 1) {
            e->rt = rc;
            *mon_fd = fd;
            mlog_info(m->log, "container %s re-adopted (pid %d)", e->c->id, (int)st->pid);
            return 2;
        }
        close(fd); /* gone already: the monitor writes its exit in a moment */
        for (int i = 0; i < 50 && (monitor_read_state(e->dir, &ms, &err) < 0 ||
                                   ms.status != MON_EXITED); i++)
            usleep(20000);
        what = ms.status == MON_EXITED ? MON_RECOVER_EXITED : MON_RECOVER_LOST;
        rc = NULL;
    } else if (rt_adopt(m->rt, &rs, &rc, &err) == 1) {
        /* MON_RECOVER_LOST with the container still there (it should have died with its
         * monitor), or an exit recorded for a pid that lives on: it goes */
        if (rt_stop(rc, SIGKILL, 0, 5000, &err) < 0)
            mlog_warn(m->log, "cannot stop container %s: %s", e->c->id, err.msg);
        if (rt_container_destroy(rc, &err) < 0)
            mlog_warn(m->log, "cannot clean up container %s: %s", e->c->id, err.msg);
    }
    if (what == MON_RECOVER_EXITED)
        settle_exited(m, e, ms.exit_code, ms.finished_ns, NULL);
    else if (what == MON_RECOVER_REBOOTED) /* dockerd's 255 after a reboot */
        settle_exited(m, e, 255, 0, "the host restarted while the container was running");
    else
        settle_exited(m, e, 137, 0, "the container's monitor exited unexpectedly");
    return 1;
}
