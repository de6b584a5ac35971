/* Container lifecycle: start (clone into new namespaces, cgroup, mounts,
 * security profile, exec), exec into a running container, signals, stats,
 * cleanup and adoption after an engine restart.
 *
 * The engine talks to each child over a SOCK_SEQPACKET socketpair: it sends GO
 * once the child is in its cgroup; the child answers EXEC just before execve()
 * or ERROR (a struct merr) when something fails. The child's end is
 * close-on-exec, so EOF after EXEC means the user's binary is running. The
 * engine binary is never executed inside a container: the child is a clone of
 * the engine that execs the user's binary directly (CVE-2019-5736). */
#include "runtime-priv.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define SYNC_FD 3
#define SYNC_TIMEOUT_MS 30000
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct rt_container {
    struct rt_runtime *rt;
    char id[RT_ID_MAX + 1];
    char rootfs[4096];
    pid_t pid;
    int pidfd;
    uint64_t start_time;
    pid_t monitor_pid;
    struct rt_cgroup *cg;
};

enum msg_type { MSG_GO = 1, MSG_EXEC, MSG_ERROR, MSG_PID };

struct msg {
    int32_t type;
    int32_t code;
    int32_t sys_errno;
    int32_t pid;
    int32_t monitor_pid; /* MSG_PID from a monitor: its own pid */
    char text[MERR_MSG_MAX];
};

/* ---- helpers usable in the child (no allocation) ------------------------- */

struct clone_args_v0 {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

/* fork()-like clone3: returns 0 in the child, the pid in the parent. */
static pid_t raw_clone(uint64_t flags, int *pidfd, int exit_signal)
{
    struct clone_args_v0 args = { .flags = flags,
                                  .pidfd = (uint64_t)(uintptr_t)pidfd,
                                  .exit_signal = (uint64_t)exit_signal };
    return (pid_t)syscall(SYS_clone3, &args, sizeof args);
}

static void send_msg(int fd, const struct msg *m)
{
    ssize_t r;
    do
        r = send(fd, m, sizeof *m, MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
}

static _Noreturn void child_fail(const struct merr *e)
{
    struct msg m = { .type = MSG_ERROR, .code = e->code, .sys_errno = e->sys_errno };
    snprintf(m.text, sizeof m.text, "%s", e->msg);
    send_msg(SYNC_FD, &m);
    _exit(127);
}

/* Installs stdio as 0/1/2, the sync socket as 3 and keep_fd (if >= 0) as 4,
 * and closes everything else: no engine fd (a cgroup dir, a socket) may leak
 * into the container. */
static int child_setup_fds(const int stdio[3], int sync_fd, int keep_fd, struct merr *err)
{
    int high[5];
    int n = keep_fd >= 0 ? 5 : 4;
    for (int i = 0; i < n; i++) {
        int src = i < 3 ? stdio[i] : i == 3 ? sync_fd : keep_fd;
        if (src < 0)
            src = open("/dev/null", O_RDWR | O_CLOEXEC);
        high[i] = src < 0 ? -1 : fcntl(src, F_DUPFD_CLOEXEC, 16);
        if (high[i] < 0)
            return merr_set(err, MERR_IO, errno, "cannot set up stdio");
    }
    for (int i = 0; i < n; i++) {
        if (dup2(high[i], i) < 0)
            return merr_set(err, MERR_IO, errno, "cannot set up stdio");
    }
    if (fcntl(SYNC_FD, F_SETFD, FD_CLOEXEC) < 0 || close_range((unsigned)n, ~0U, 0) < 0)
        return merr_set(err, MERR_IO, errno, "cannot close inherited fds");
    return 0;
}

static int wait_go(struct merr *err)
{
    struct msg m;
    ssize_t r;
    do
        r = recv(SYNC_FD, &m, sizeof m, 0);
    while (r < 0 && errno == EINTR);
    if (r != (ssize_t)sizeof m || m.type != MSG_GO)
        return merr_set(err, MERR_PROTOCOL, r < 0 ? errno : 0, "engine went away during start");
    return 0;
}

static int loopback_up(struct merr *err)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return merr_set(err, MERR_IO, errno, "cannot open a socket to bring lo up");
    struct ifreq ifr = { 0 };
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
    int r = ioctl(s, SIOCGIFFLAGS, &ifr);
    if (r == 0) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        r = ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    int saved = errno;
    close(s);
    if (r < 0)
        return merr_set(err, MERR_IO, saved, "cannot bring lo up");
    return 0;
}

/* mkdir -p of an absolute path inside the (already pivoted) root. */
static void mkdir_p(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return;
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0755);
            *p = '/';
        }
    }
    mkdir(buf, 0755);
}

/* The cwd must exist inside the container's root. getcwd() of a directory
 * outside the root (reached through a leaked fd, CVE-2024-21626) does not
 * start with '/' (or fails with ENOENT). */
static int child_enter_cwd(const char *cwd, bool create, struct merr *err)
{
    if (cwd == NULL)
        cwd = "/";
    if (cwd[0] != '/')
        return merr_set(err, MERR_INVALID, 0, "working directory '%s' is not absolute", cwd);
    if (chdir(cwd) < 0) {
        if (errno != ENOENT || !create)
            return merr_set(err, MERR_INVALID, errno, "cannot enter working directory '%s'", cwd);
        mkdir_p(cwd);
        if (chdir(cwd) < 0)
            return merr_set(err, MERR_INVALID, errno, "cannot enter working directory '%s'", cwd);
    }
    char buf[4096];
    if (getcwd(buf, sizeof buf) == NULL || buf[0] != '/')
        return merr_set(err, MERR_PERM, 0, "working directory '%s' is outside the container",
                        cwd);
    return 0;
}

struct cap_data_v3 {
    uint32_t effective, permitted, inheritable;
};

static int capset_masks(uint64_t effective, uint64_t permitted)
{
    struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct cap_data_v3 data[2] = {
        { (uint32_t)effective, (uint32_t)permitted, 0 },
        { (uint32_t)(effective >> 32), (uint32_t)(permitted >> 32), 0 },
    };
    return (int)syscall(SYS_capset, &hdr, data);
}

static int current_permitted(uint64_t *out)
{
    struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct cap_data_v3 data[2];
    if (syscall(SYS_capget, &hdr, data) < 0)
        return -1;
    *out = (uint64_t)data[0].permitted | ((uint64_t)data[1].permitted << 32);
    return 0;
}

/* User, capabilities and seccomp. Seccomp goes last but one: without
 * no_new_privs loading it needs CAP_SYS_ADMIN, so the final capset (allowed
 * by the profile) comes right after it. */
static int child_drop_privileges(const struct rt_child *ch, struct merr *err)
{
    const struct rt_process *p = ch->proc;
    if (rt_child_apply_limits(p, err) < 0)
        return -1;
    int last = rt_cap_last();
    for (int c = 0; c <= last; c++) {
        if (!(ch->caps & (UINT64_C(1) << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 &&
            errno != EINVAL)
            return merr_set(err, MERR_IO, errno, "cannot drop capability %d", c);
    }
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
        return merr_set(err, MERR_IO, errno, "cannot keep capabilities");
    /* raw system calls: glibc's wrappers would try to change the credentials
     * of the engine's other threads, which this clone does not have */
    if (syscall(SYS_setgroups, p->n_additional_gids, p->additional_gids) < 0)
        return merr_set(err, MERR_IO, errno, "cannot set supplementary groups");
    if (syscall(SYS_setresgid, p->gid, p->gid, p->gid) < 0)
        return merr_set(err, MERR_IO, errno, "cannot set gid %u", (unsigned)p->gid);
    if (syscall(SYS_setresuid, p->uid, p->uid, p->uid) < 0)
        return merr_set(err, MERR_IO, errno, "cannot set uid %u", (unsigned)p->uid);
    if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
        return merr_set(err, MERR_IO, errno, "cannot reset keep-capabilities");
    uint64_t permitted;
    if (current_permitted(&permitted) < 0 || capset_masks(permitted, permitted) < 0)
        return merr_set(err, MERR_IO, errno, "cannot raise capabilities");
    if (p->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return merr_set(err, MERR_IO, errno, "cannot set no_new_privs");
    if (ch->seccomp != NULL &&
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, ch->seccomp) < 0)
        return merr_set(err, MERR_IO, errno, "cannot load the seccomp profile");
    if (capset_masks(ch->caps & permitted, ch->caps & permitted) < 0)
        return merr_set(err, MERR_IO, errno, "cannot set capabilities");
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        return merr_set(err, MERR_IO, errno, "cannot clear ambient capabilities");
    return 0;
}

/* execvp() with PATH from the container's environment, not the engine's. */
static void child_exec(const struct rt_child *ch, struct merr *err)
{
    const char *file = ch->argv[0];
    if (strchr(file, '/') != NULL) {
        execve(file, ch->argv, ch->envp);
        merr_set(err, errno == ENOENT ? MERR_NOT_FOUND : MERR_PERM, errno, "cannot execute '%s'",
                 file);
        return;
    }
    int first_error = 0;
    for (const char *dir = ch->path; dir != NULL && *dir != '\0';) {
        const char *colon = strchr(dir, ':');
        size_t len = colon != NULL ? (size_t)(colon - dir) : strlen(dir);
        char full[4096];
        if (len > 0 && snprintf(full, sizeof full, "%.*s/%s", (int)len, dir, file) <
                           (int)sizeof full) {
            execve(full, ch->argv, ch->envp);
            if (errno != ENOENT && errno != ENOTDIR && first_error == 0)
                first_error = errno;
        }
        dir = colon != NULL ? colon + 1 : NULL;
    }
    if (first_error != 0)
        merr_set(err, MERR_PERM, first_error, "cannot execute '%s'", file);
    else
        merr_set(err, MERR_NOT_FOUND, ENOENT, "executable '%s' not found in $PATH", file);
}

/* Shared tail of a container's first process and of an exec'd process. */
/* The engine blocks SIGTERM/SIGINT (signalfd) and ignores SIGPIPE; blocked and ignored
 * signals survive execve(), so the container's process would inherit them. */
static void child_reset_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &sa, NULL); /* EINVAL for libc-reserved signals is fine */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* A tty opened by the engine names a path of the engine's mount namespace: reopen it through
 * the container's /dev/pts (the same devpts instance, checked by device) so ttyname() is
 * /dev/pts/N, and give it to the process's user as runc does. Best effort: the old fds stay
 * when the container's /dev/pts is another instance. */
static void child_reopen_tty(const struct rt_child *ch)
{
    struct stat st0, st;
    if (fstat(0, &st0) < 0 || !S_ISCHR(st0.st_mode))
        return;
    unsigned maj = major(st0.st_rdev), min = minor(st0.st_rdev);
    if (maj < 136 || maj > 143)
        return;
    rt_best_effort(fchown(0, ch->proc->uid, (gid_t)-1));
    char path[64];
    snprintf(path, sizeof path, "/dev/pts/%u", (maj - 136) * 256 + min);
    int fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return;
    if (fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == st0.st_rdev &&
        st.st_dev == st0.st_dev) {
        for (int i = 0; i < 3; i++) {
            struct stat si;
            if (fstat(i, &si) == 0 && S_ISCHR(si.st_mode) && si.st_rdev == st0.st_rdev)
                rt_best_effort(dup3(fd, i, 0));
        }
    }
    close(fd);
}

static _Noreturn void child_finish(const struct rt_child *ch, bool create_cwd)
{
    struct merr err = MERR_INIT;
    if (ch->proc->tty)
        child_reopen_tty(ch);
    if (setsid() < 0) {
        merr_set(&err, MERR_IO, errno, "cannot start a session");
        child_fail(&err);
    }
    if (ch->proc->tty && ioctl(0, TIOCSCTTY, 0) < 0) {
        merr_set(&err, MERR_IO, errno, "cannot set the controlling terminal");
        child_fail(&err);
    }
    /* only stdio and the sync socket are left open while we pick the cwd */
    if (close_range(SYNC_FD + 1, ~0U, 0) < 0 ||
        child_enter_cwd(ch->proc->cwd, create_cwd, &err) < 0 ||
        close_range(SYNC_FD, ~0U, CLOSE_RANGE_CLOEXEC) < 0 ||
        child_drop_privileges(ch, &err) < 0)
        child_fail(&err);
    child_reset_signals();
    struct msg m = { .type = MSG_EXEC };
    send_msg(SYNC_FD, &m);
    child_exec(ch, &err);
    child_fail(&err);
}

/* Until execve() this process is an image of the engine binary: keep
 * container processes from opening its /proc/PID/exe (CVE-2019-5736, runc
 * does the same). execve() makes the user's binary dumpable again. */
static void child_hide_engine(void)
{
    struct merr err = MERR_INIT;
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
        merr_set(&err, MERR_IO, errno, "cannot make the container process non-dumpable");
        child_fail(&err);
    }
}

static _Noreturn void child_start(const struct rt_child *ch, int sync_fd)
{
    struct merr err = MERR_INIT;
    const struct rt_spec *spec = ch->spec;
    child_hide_engine();
    if (child_setup_fds(ch->proc->stdio, sync_fd, -1, &err) < 0 || wait_go(&err) < 0)
        child_fail(&err);
    /* a monitor that dies takes its container with it */
    if (spec->monitor != NULL && prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) {
        merr_set(&err, MERR_IO, errno, "cannot tie the container to its monitor");
        child_fail(&err);
    }
    /* after the engine moved us into our cgroup, so that it is our root */
    bool cgroupns = spec->cgroupns == 2 || (spec->cgroupns == 0 && ch->cg_mode == RT_CGROUP_V2);
    if (cgroupns && unshare(CLONE_NEWCGROUP) < 0) {
        merr_set(&err, MERR_IO, errno, "cannot create a cgroup namespace");
        child_fail(&err);
    }
    if (spec->network == RT_NET_PATH) {
        int fd = open(spec->netns_path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
            merr_set(&err, MERR_IO, errno, "cannot join network namespace '%s'",
                     spec->netns_path);
            child_fail(&err);
        }
        close(fd);
    }
    if (spec->ipc_ns_path != NULL) {
        int fd = open(spec->ipc_ns_path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, CLONE_NEWIPC) < 0) {
            merr_set(&err, MERR_IO, errno, "cannot join IPC namespace '%s'", spec->ipc_ns_path);
            child_fail(&err);
        }
        close(fd);
    }
    umask(0);
    if (rt_child_mount(ch, &err) < 0)
        child_fail(&err);
    umask(022);
    if (spec->network == RT_NET_NONE && loopback_up(&err) < 0)
        child_fail(&err);
    if (!spec->uts_host && spec->hostname != NULL &&
        sethostname(spec->hostname, strlen(spec->hostname)) < 0) {
        merr_set(&err, MERR_IO, errno, "cannot set hostname '%s'", spec->hostname);
        child_fail(&err);
    }
    if (!spec->uts_host && spec->domainname != NULL &&
        setdomainname(spec->domainname, strlen(spec->domainname)) < 0) {
        merr_set(&err, MERR_IO, errno, "cannot set domainname '%s'", spec->domainname);
        child_fail(&err);
    }
    child_finish(ch, true);
}

/* ---- engine side ----------------------------------------------------------- */

/* Waits for the child's verdict: EXEC then EOF is success. want_pid also
 * expects a MSG_PID (rt_exec's intermediate child reports its grandchild). */
static int wait_child(int fd, bool want_pid, pid_t *pid_out, struct merr *err)
{
    bool exec_seen = false;
    for (;;) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int r = poll(&pfd, 1, SYNC_TIMEOUT_MS);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return merr_set(err, MERR_IO, errno, "cannot wait for the container process");
        if (r == 0)
            return merr_set(err, MERR_TIMEOUT, 0, "container process did not start in %d s",
                            SYNC_TIMEOUT_MS / 1000);
        struct msg m;
        ssize_t n = recv(fd, &m, sizeof m, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return merr_set(err, MERR_IO, errno, "cannot read from the container process");
        if (n == 0) {
            if (exec_seen && (!want_pid || *pid_out > 0))
                return 0;
            return merr_set(err, MERR_INTERNAL, 0, "container process died during setup");
        }
        if (n != (ssize_t)sizeof m)
            return merr_set(err, MERR_PROTOCOL, 0, "short message from the container process");
        m.text[sizeof m.text - 1] = '\0';
        switch (m.type) {
        case MSG_EXEC:
            exec_seen = true;
            break;
        case MSG_PID:
            if (want_pid)
                *pid_out = m.pid;
            break;
        case MSG_ERROR:
            if (err != NULL) {
                err->code = (enum merr_code)m.code;
                err->sys_errno = m.sys_errno;
                snprintf(err->msg, sizeof err->msg, "%s", m.text);
            }
            return -1;
        default:
            return merr_set(err, MERR_PROTOCOL, 0, "unexpected message from the container");
        }
    }
}

static void reap(pid_t pid)
{
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

static int read_start_time(pid_t pid, char *state, uint64_t *start, struct merr *err)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    auto_free char *buf = NULL;
    if (rt_read_all(path, &buf, err) < 0)
        return -1;
    return rt_proc_stat_parse(buf, state, start, err);
}

static const char *env_path(const char *const *env)
{
    for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
        if (strncmp(env[i], "PATH=", 5) == 0)
            return env[i] + 5;
    }
    return DEFAULT_PATH;
}

static const char *const empty_env[] = { NULL };

/* The part of the child context common to start and exec. */
static int prepare_process(struct rt_runtime *rt, const struct rt_process *p, struct rt_child *ch,
                           struct rt_bpf **bpf, struct merr *err)
{
    if (p->argv == NULL || p->argv[0] == NULL || p->argv[0][0] == '\0')
        return merr_set(err, MERR_INVALID, 0, "no command to run");
    if (p->n_additional_gids > 0 && p->additional_gids == NULL)
        return merr_set(err, MERR_INVALID, 0, "missing supplementary groups");
    if (rt_caps_compute(p, &ch->caps, err) < 0)
        return -1;
    *bpf = NULL;
    if (p->seccomp_profile != NULL && !p->privileged && !p->seccomp_unconfined) {
        if (rt_seccomp_from_profile(p->seccomp_profile, ch->caps, bpf, err) < 0)
            return -1;
        ch->seccomp = *bpf != NULL ? (*bpf)->prog : NULL;
    } else if (!p->privileged && !p->seccomp_unconfined) {
        if (rt_seccomp_get(rt, ch->caps, bpf, err) < 0)
            return -1;
        ch->seccomp = (*bpf)->prog;
    }
    ch->proc = p;
    ch->argv = (char *const *)p->argv;
    ch->envp = (char *const *)(p->env != NULL ? p->env : empty_env);
    ch->path = env_path(p->env);
    return 0;
}

static void container_free(struct rt_container *c)
{
    if (c == NULL)
        return;
    if (c->pidfd >= 0)
        close(c->pidfd);
    rt_cgroup_free(c->cg);
    free(c);
}
DEFINE_CLEANUP(struct rt_container, container_free)

static int spec_check(const struct rt_spec *spec, struct merr *err)
{
    if (!rt_id_valid(spec->id))
        return merr_set(err, MERR_INVALID, 0, "invalid container id '%s'",
                        spec->id != NULL ? spec->id : "");
    if (spec->rootfs == NULL || spec->rootfs[0] != '/' || strlen(spec->rootfs) >= 4096)
        return merr_set(err, MERR_INVALID, 0, "invalid rootfs for '%s'", spec->id);
    if (spec->network == RT_NET_PATH && (spec->netns_path == NULL || spec->netns_path[0] != '/'))
        return merr_set(err, MERR_INVALID, 0, "network namespace path missing for '%s'",
                        spec->id);
    if (spec->hostname != NULL && strlen(spec->hostname) > 64)
        return merr_set(err, MERR_INVALID, 0, "hostname '%s' is too long", spec->hostname);
    return 0;
}

/* ---- the monitor (rt_spec.monitor) ------------------------------------------ */

/* In the monitor-to-be (a fork of the engine, no allocation): its fds as 3.., 0-2 on
 * /dev/null, nothing else kept, signals as a fresh process has them. */
static int monitor_setup_fds(const struct rt_monitor *mon)
{
    int high[3 + RT_MONITOR_FDS];
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0)
        return -1;
    for (int i = 0; i < 3 + RT_MONITOR_FDS; i++) {
        int src = i < 3 || mon->fds[i - 3] < 0 ? devnull : mon->fds[i - 3];
        high[i] = fcntl(src, F_DUPFD_CLOEXEC, 64);
        if (high[i] < 0)
            return -1;
    }
    for (int i = 0; i < 3 + RT_MONITOR_FDS; i++)
        if (dup2(high[i], i) < 0)
            return -1;
    return close_range(3 + RT_MONITOR_FDS, ~0U, 0);
}

/* The monitor-to-be: a session and a subreaper of its own, the container cloned as its child,
 * both pids told to the engine, then the monitor's program. */
static _Noreturn void monitor_start(const struct rt_child *ch, int sync_fd, uint64_t flags)
{
    const struct rt_spec *spec = ch->spec;
    const struct rt_monitor *mon = spec->monitor;
    struct merr err = MERR_INIT;
    struct msg m = { .type = MSG_ERROR };
    setsid();
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
        merr_set(&err, MERR_IO, errno, "cannot make the monitor a subreaper");
        goto fail;
    }
    if (spec->pid_ns_path != NULL) {
        int target = open(spec->pid_ns_path, O_RDONLY | O_CLOEXEC);
        if (target < 0 || setns(target, CLONE_NEWPID) < 0) {
            merr_set(&err, MERR_IO, errno, "cannot join PID namespace '%s'", spec->pid_ns_path);
            goto fail;
        }
        close(target);
    }
    pid_t pid = raw_clone(flags & ~(uint64_t)CLONE_PIDFD, NULL, SIGCHLD);
    if (pid == 0)
        child_start(ch, sync_fd);
    if (pid < 0) {
        merr_set(&err, MERR_IO, errno, "cannot clone the container process");
        goto fail;
    }
    m = (struct msg){ .type = MSG_PID, .pid = pid, .monitor_pid = getpid() };
    send_msg(sync_fd, &m);
    char pid_text[16];
    snprintf(pid_text, sizeof pid_text, "%d", (int)pid);
    const char *argv[RT_MONITOR_ARGS + 3];
    size_t n = 0;
    for (; mon->argv[n] != NULL && n < RT_MONITOR_ARGS; n++)
        argv[n] = mon->argv[n];
    argv[n++] = "--pid";
    argv[n++] = pid_text;
    argv[n] = NULL;
    child_reset_signals();
    if (monitor_setup_fds(mon) < 0)
        _exit(127); /* the container dies with us (PDEATHSIG); the engine sees it gone */
    static const char *const no_env[] = { NULL };
    execve(mon->path, (char *const *)argv, (char *const *)no_env);
    _exit(127);
fail:
    m.code = err.code;
    m.sys_errno = err.sys_errno;
    snprintf(m.text, sizeof m.text, "%s", err.msg);
    send_msg(sync_fd, &m);
    _exit(127);
}

/* Double fork: the monitor is nobody's child in the engine, so nothing needs reaping here. */
static int spawn_monitor(const struct rt_child *ch, int child_end, uint64_t flags,
                         struct merr *err)
{
    pid_t mid = raw_clone(0, NULL, SIGCHLD);
    if (mid < 0)
        return merr_set(err, MERR_IO, errno, "cannot fork the container's monitor");
    if (mid == 0) {
        pid_t mon = raw_clone(0, NULL, SIGCHLD);
        if (mon == 0)
            monitor_start(ch, child_end, flags);
        _exit(mon < 0 ? 1 : 0);
    }
    int status = 0;
    while (waitpid(mid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return merr_set(err, MERR_IO, 0, "cannot fork the container's monitor");
    return 0;
}

/* The first message of a monitored start: the container's pid and the monitor's. */
static int wait_monitor_pids(int fd, pid_t *pid, pid_t *monitor_pid, struct merr *err)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    int r;
    do
        r = poll(&pfd, 1, SYNC_TIMEOUT_MS);
    while (r < 0 && errno == EINTR);
    struct msg m;
    ssize_t n = r > 0 ? recv(fd, &m, sizeof m, 0) : -1;
    if (n != (ssize_t)sizeof m)
        return merr_set(err, MERR_INTERNAL, 0, "the container's monitor died during setup");
    m.text[sizeof m.text - 1] = '\0';
    if (m.type == MSG_ERROR) {
        err->code = (enum merr_code)m.code;
        err->sys_errno = m.sys_errno;
        snprintf(err->msg, sizeof err->msg, "%s", m.text);
        return -1;
    }
    if (m.type != MSG_PID || m.pid <= 0 || m.monitor_pid <= 0)
        return merr_set(err, MERR_PROTOCOL, 0, "unexpected message from the container's monitor");
    *pid = m.pid;
    *monitor_pid = m.monitor_pid;
    return 0;
}

/* spawn_init through a monitor: the container is the monitor's child; the engine holds a
 * pidfd on it to signal and poll, never to reap. */
static int spawn_init_monitored(struct rt_container *c, const struct rt_child *ch, int parent_end,
                                int *child_end, uint64_t flags, struct merr *err)
{
    int rc = spawn_monitor(ch, *child_end, flags, err);
    cleanup_closep(child_end);
    pid_t pid = 0, monitor_pid = 0;
    if (rc == 0)
        rc = wait_monitor_pids(parent_end, &pid, &monitor_pid, err);
    if (rc < 0)
        return -1;
    c->pid = pid;
    c->monitor_pid = monitor_pid;
    c->pidfd = pidfd_open(pid, 0);
    struct msg go = { .type = MSG_GO };
    rc = c->pidfd < 0 ? merr_set(err, MERR_IO, errno, "cannot open the container process")
                      : rt_cgroup_attach(c->cg, pid, err);
    if (rc == 0)
        send_msg(parent_end, &go);
    if (rc == 0)
        rc = wait_child(parent_end, false, NULL, err);
    if (rc < 0) {
        /* the monitor sees it die and records the exit; the caller undoes the rest */
        if (c->pidfd >= 0)
            pidfd_send_signal(c->pidfd, SIGKILL, NULL, 0);
        else
            kill(pid, SIGKILL);
        c->pid = 0;
        return -1;
    }
    char state;
    if (read_start_time(pid, &state, &c->start_time, NULL) < 0)
        c->start_time = 0;
    return 0;
}

/* Clones the first process, lets it into its cgroup and waits for its exec. */
static int spawn_init(struct rt_container *c, const struct rt_child *ch, struct merr *err)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return merr_set(err, MERR_IO, errno, "cannot create a socketpair");
    auto_close int parent_end = sv[0];
    auto_close int child_end = sv[1];
    const struct rt_spec *spec = ch->spec;
    uint64_t flags = CLONE_NEWNS | CLONE_PIDFD;
    if (spec->network == RT_NET_NONE)
        flags |= CLONE_NEWNET;
    if (!spec->pid_host && spec->pid_ns_path == NULL)
        flags |= CLONE_NEWPID;
    if (!spec->ipc_host && spec->ipc_ns_path == NULL)
        flags |= CLONE_NEWIPC;
    if (!spec->uts_host)
        flags |= CLONE_NEWUTS;
    if (spec->monitor != NULL) /* the monitor joins another container's pid namespace itself */
        return spawn_init_monitored(c, ch, parent_end, &child_end, flags, err);
    /* Another container's pid namespace is joined by the cloning thread (it sets the
     * namespace of its future children) and left again right after the clone. */
    auto_close int own_pidns = -1;
    if (spec->pid_ns_path != NULL) {
        own_pidns = open("/proc/thread-self/ns/pid", O_RDONLY | O_CLOEXEC);
        auto_close int target = open(spec->pid_ns_path, O_RDONLY | O_CLOEXEC);
        if (own_pidns < 0 || target < 0 || setns(target, CLONE_NEWPID) < 0)
            return merr_set(err, MERR_IO, errno, "cannot join PID namespace '%s'",
                            spec->pid_ns_path);
    }
    int pidfd = -1;
    pid_t pid = raw_clone(flags, &pidfd, SIGCHLD);
    int clone_errno = errno;
    if (pid != 0 && own_pidns >= 0 && setns(own_pidns, CLONE_NEWPID) < 0)
        abort(); /* this engine thread would start every later container in that namespace */
    errno = clone_errno;
    if (pid < 0)
        return merr_set(err, MERR_IO, errno, "cannot clone the container process");
    if (pid == 0) {
        child_start(ch, child_end);
    }
    c->pid = pid;
    c->pidfd = pidfd;
    cleanup_closep(&child_end);
    struct msg go = { .type = MSG_GO };
    int rc = rt_cgroup_attach(c->cg, pid, err);
    if (rc == 0)
        send_msg(parent_end, &go);
    if (rc == 0)
        rc = wait_child(parent_end, false, NULL, err);
    if (rc < 0) {
        pidfd_send_signal(pidfd, SIGKILL, NULL, 0);
        reap(pid);
        c->pid = 0;
        return -1;
    }
    char state;
    if (read_start_time(pid, &state, &c->start_time, NULL) < 0)
        c->start_time = 0; /* exited already and reaped by someone: adoption will say gone */
    return 0;
}

int rt_start(struct rt_runtime *rt, const struct rt_spec *spec, struct rt_container **out,
             struct merr *err)
{
    if (spec_check(spec, err) < 0)
        return -1;
    struct rt_child ch = { .spec = spec, .cg_mode = rt->mode, .target_pidfd = -1 };
    __attribute__((cleanup(cleanup_rt_bpf_freep))) struct rt_bpf *bpf = NULL;
    if (prepare_process(rt, &spec->process, &ch, &bpf, err) < 0)
        return merr_prefix(err, "cannot start '%s'", spec->id);
    ch.masked = spec->masked_paths != NULL ? spec->masked_paths : rt_default_masked_paths;
    ch.readonly = spec->readonly_paths != NULL ? spec->readonly_paths : rt_default_readonly_paths;

    __attribute__((cleanup(cleanup_container_freep))) struct rt_container *c =
        calloc(1, sizeof *c);
    if (c == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate container");
    c->rt = rt;
    c->pidfd = -1;
    snprintf(c->id, sizeof c->id, "%s", spec->id);
    snprintf(c->rootfs, sizeof c->rootfs, "%s", spec->rootfs);

    if (rt_cgroup_open(rt, spec->id, true, &c->cg, err) < 0)
        return -1;
    ch.cg = c->cg;
    int rc = rt->cg_ops->set_resources(c->cg, &spec->resources, err);
    if (rc == 0)
        rc = rt_cgroup_set_extras(c->cg, &spec->resources, err);
    auto_free char **rules = rc == 0 ? rt_device_rules(spec) : NULL;
    if (rc == 0)
        rc = rt->cg_ops->set_devices(c->cg, spec->process.privileged,
                                     (const char *const *)rules, err);
    if (rc == 0) {
        rc = rt_rootfs_mount(spec, err);
        if (rc == 0) {
            rc = spawn_init(c, &ch, err);
            if (rc < 0)
                rt_best_effort(rt_rootfs_umount(spec->rootfs, NULL));
        }
    }
    if (rc < 0) {
        rt_best_effort(rt_cgroup_destroy(c->cg, NULL));
        return merr_prefix(err, "cannot start '%s'", spec->id);
    }
    mlog_debug(rt->log, "container %s started as pid %d", c->id, (int)c->pid);
    *out = steal_pointer(&c);
    return 0;
}

pid_t rt_container_pid(const struct rt_container *c)
{
    return c->pid;
}

int rt_container_pidfd(const struct rt_container *c)
{
    return c->pidfd;
}

pid_t rt_container_monitor_pid(const struct rt_container *c)
{
    return c->monitor_pid;
}

const char *rt_container_id(const struct rt_container *c)
{
    return c->id;
}

void rt_container_state(const struct rt_container *c, struct rt_state *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->id, sizeof out->id, "%s", c->id);
    snprintf(out->rootfs, sizeof out->rootfs, "%s", c->rootfs);
    out->pid = c->pid;
    out->start_time = c->start_time;
}

int rt_kill(struct rt_container *c, int sig, struct merr *err)
{
    int r = c->pidfd >= 0 ? pidfd_send_signal(c->pidfd, sig, NULL, 0) : kill(c->pid, sig);
    if (r < 0)
        return merr_set(err, errno == ESRCH ? MERR_NOT_FOUND : MERR_IO, errno,
                        "cannot signal container '%s'", c->id);
    return 0;
}

/* Whether the first process is gone (or a zombie) within timeout_ms. */
static bool wait_gone(struct rt_container *c, int timeout_ms)
{
    if (c->pidfd >= 0) {
        struct pollfd pfd = { .fd = c->pidfd, .events = POLLIN };
        int r;
        do
            r = poll(&pfd, 1, timeout_ms);
        while (r < 0 && errno == EINTR);
        return r > 0;
    }
    for (int waited = 0;; waited += 10) {
        char state;
        uint64_t start;
        if (read_start_time(c->pid, &state, &start, NULL) < 0 || state == 'Z' ||
            start != c->start_time)
            return true;
        if (waited >= timeout_ms)
            return false;
        struct timespec ts = { 0, 10000000L };
        nanosleep(&ts, NULL);
    }
}

int rt_stop(struct rt_container *c, int sig, int timeout_ms, int kill_timeout_ms,
            struct merr *err)
{
    if (rt_kill(c, sig, err) < 0)
        return err != NULL && err->code == MERR_NOT_FOUND ? 0 : -1;
    if (wait_gone(c, timeout_ms))
        return 0;
    if (rt_kill(c, SIGKILL, err) < 0)
        return err != NULL && err->code == MERR_NOT_FOUND ? 0 : -1;
    if (wait_gone(c, kill_timeout_ms))
        return 0;
    return merr_set(err, MERR_TIMEOUT, 0, "container '%s' did not stop", c->id);
}

int rt_oom_killed(struct rt_container *c, bool *out, struct merr *err)
{
    return c->rt->cg_ops->oom_killed(c->cg, out, err);
}

int rt_stats(struct rt_container *c, struct rt_stats *out, struct merr *err)
{
    return c->rt->cg_ops->stats(c->cg, out, err);
}

int rt_update_resources(struct rt_container *c, const struct rt_resources *res, struct merr *err)
{
    return c->rt->cg_ops->set_resources(c->cg, res, err);
}

struct rt_cgroup *rt_container_cgroup(struct rt_container *c)
{
    return c->cg;
}

int rt_container_destroy(struct rt_container *c, struct merr *err)
{
    if (c == NULL)
        return 0;
    int rc = rt_cgroup_destroy(c->cg, err);
    if (rt_rootfs_umount(c->rootfs, rc == 0 ? err : NULL) < 0)
        rc = -1;
    container_free(c);
    return rc;
}

void rt_container_release(struct rt_container *c)
{
    container_free(c);
}

/* ---- exec ------------------------------------------------------------------ */

static int join_namespaces(const struct rt_child *ch, struct merr *err)
{
    int flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWPID;
    if (ch->cg_mode == RT_CGROUP_V2)
        flags |= CLONE_NEWCGROUP;
    if (ch->target_pidfd >= 0 && setns(ch->target_pidfd, flags) == 0)
        return 0;
    /* kernels before 5.8: one /proc/PID/ns file at a time, all opened before
     * the mount namespace changes what /proc is */
    static const struct {
        const char *name;
        int type;
    } nss[] = { { "cgroup", CLONE_NEWCGROUP }, { "ipc", CLONE_NEWIPC }, { "uts", CLONE_NEWUTS },
                { "net", CLONE_NEWNET },       { "pid", CLONE_NEWPID }, { "mnt", CLONE_NEWNS } };
    int fds[6];
    for (int i = 0; i < 6; i++) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)ch->target_pid, nss[i].name);
        fds[i] = (nss[i].type & flags) ? open(path, O_RDONLY | O_CLOEXEC) : -1;
        if ((nss[i].type & flags) && fds[i] < 0)
            return merr_set(err, MERR_NOT_FOUND, errno, "cannot open '%s'", path);
    }
    for (int i = 0; i < 6; i++) {
        if (fds[i] >= 0 && setns(fds[i], nss[i].type) < 0)
            return merr_set(err, MERR_IO, errno, "cannot join %s namespace", nss[i].name);
    }
    return 0;
}

/* The intermediate child: into the cgroup and the namespaces, then a clone
 * that lands in the container's pid namespace as a child of the engine. */
static _Noreturn void child_exec_intermediate(const struct rt_child *shared, int sync_fd)
{
    struct merr err = MERR_INIT;
    struct rt_child local = *shared;
    const struct rt_child *ch = &local;
    child_hide_engine();
    if (child_setup_fds(ch->proc->stdio, sync_fd, shared->target_pidfd, &err) < 0)
        child_fail(&err);
    if (shared->target_pidfd >= 0)
        local.target_pidfd = SYNC_FD + 1;
    if (rt_cgroup_attach(ch->cg, 0, &err) < 0 || join_namespaces(ch, &err) < 0)
        child_fail(&err);
    pid_t pid = raw_clone(CLONE_PARENT, NULL, 0);
    if (pid < 0) {
        merr_set(&err, MERR_IO, errno, "cannot fork inside the container");
        child_fail(&err);
    }
    if (pid == 0)
        child_finish(ch, false);
    struct msg m = { .type = MSG_PID, .pid = pid };
    send_msg(SYNC_FD, &m);
    _exit(0);
}

/* env with extra entries overriding same-named ones; one allocation. */
static char **merge_env(const char *const *env, const char *const *extra)
{
    size_t n = 0, k = 0;
    while (env != NULL && env[n] != NULL)
        n++;
    while (extra != NULL && extra[k] != NULL)
        k++;
    char **out = calloc(n + k + 1, sizeof *out);
    if (out == NULL)
        return NULL;
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(env[i], '=');
        size_t len = eq != NULL ? (size_t)(eq - env[i]) : strlen(env[i]);
        bool overridden = false;
        for (size_t j = 0; j < k && !overridden; j++)
            overridden = strncmp(extra[j], env[i], len) == 0 && extra[j][len] == '=';
        if (!overridden)
            out[used++] = (char *)env[i];
    }
    for (size_t j = 0; j < k; j++)
        out[used++] = (char *)extra[j];
    return out;
}

int rt_exec(struct rt_container *c, const struct rt_process *process, const char *const *extra_env,
            pid_t *pid_out, struct merr *err)
{
    *pid_out = 0;
    struct rt_child ch = { .cg = c->cg,
                           .cg_mode = c->rt->mode,
                           .target_pidfd = c->pidfd,
                           .target_pid = c->pid };
    __attribute__((cleanup(cleanup_rt_bpf_freep))) struct rt_bpf *bpf = NULL;
    if (prepare_process(c->rt, process, &ch, &bpf, err) < 0)
        return merr_prefix(err, "cannot exec in '%s'", c->id);
    auto_free char **envp = merge_env(process->env, extra_env);
    if (envp == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot exec in '%s'", c->id);
    ch.envp = envp;
    ch.path = env_path((const char *const *)envp);

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return merr_set(err, MERR_IO, errno, "cannot create a socketpair");
    auto_close int parent_end = sv[0];
    auto_close int child_end = sv[1];
    pid_t mid = raw_clone(0, NULL, SIGCHLD);
    if (mid < 0)
        return merr_set(err, MERR_IO, errno, "cannot clone for exec in '%s'", c->id);
    if (mid == 0)
        child_exec_intermediate(&ch, child_end);
    cleanup_closep(&child_end);
    pid_t pid = 0;
    int rc = wait_child(parent_end, true, &pid, err);
    reap(mid);
    if (rc < 0) {
        if (pid > 0) {
            kill(pid, SIGKILL);
            reap(pid);
        }
        return merr_prefix(err, "cannot exec in '%s'", c->id);
    }
    *pid_out = pid;
    return 0;
}

/* ---- adoption --------------------------------------------------------------- */

/* Whether pid is the process that started at start_time and lives in the
 * container's cgroup. */
static bool same_process(const struct rt_runtime *rt, const struct rt_state *st)
{
    char state;
    uint64_t start;
    if (st->pid <= 0 || read_start_time(st->pid, &state, &start, NULL) < 0)
        return false;
    if (state == 'Z' || state == 'X' || start != st->start_time)
        return false;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/cgroup", (int)st->pid);
    auto_free char *buf = NULL;
    if (rt_read_all(path, &buf, NULL) < 0)
        return false;
    auto_free char *cg = rt_proc_cgroup_path(buf, rt->mode == RT_CGROUP_V2 ? "" : "pids");
    if (cg == NULL)
        cg = rt_proc_cgroup_path(buf, "memory");
    char want[300];
    snprintf(want, sizeof want, "/%s/%s", rt->cgroup_parent, st->id);
    size_t n = cg != NULL ? strlen(cg) : 0, w = strlen(want);
    return n >= w && strcmp(cg + n - w, want) == 0;
}

int rt_adopt(struct rt_runtime *rt, const struct rt_state *st, struct rt_container **out,
             struct merr *err)
{
    *out = NULL;
    if (!rt_id_valid(st->id) || st->rootfs[0] != '/')
        return merr_set(err, MERR_INVALID, 0, "invalid saved container state");
    __attribute__((cleanup(cleanup_container_freep))) struct rt_container *c =
        calloc(1, sizeof *c);
    if (c == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate container");
    c->rt = rt;
    c->pidfd = -1;
    snprintf(c->id, sizeof c->id, "%s", st->id);
    snprintf(c->rootfs, sizeof c->rootfs, "%s", st->rootfs);
    if (rt_cgroup_open(rt, st->id, false, &c->cg, err) < 0)
        return -1;
    if (same_process(rt, st)) {
        int pidfd = pidfd_open(st->pid, 0);
        /* re-check after taking the pidfd: it now pins this very process */
        if (pidfd >= 0 && same_process(rt, st)) {
            c->pid = st->pid;
            c->pidfd = pidfd;
            c->start_time = st->start_time;
            *out = steal_pointer(&c);
            return 1;
        }
        if (pidfd >= 0)
            close(pidfd);
    }
    /* gone: collect what it left behind */
    int rc = rt_cgroup_destroy(c->cg, err);
    if (rt_rootfs_umount(c->rootfs, rc == 0 ? err : NULL) < 0)
        rc = -1;
    if (rc < 0)
        return merr_prefix(err, "cannot clean up container '%s'", st->id);
    return 0;
}
