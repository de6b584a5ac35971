/* docker's default seccomp profile, built with libseccomp in the engine and
 * handed to the container's first process as a ready BPF program (loading it
 * needs no allocation after clone). Default action EPERM; an allow-list close
 * to moby's profiles/seccomp/default.json; clone3 answers ENOSYS so libcs fall
 * back to clone, whose namespace flags stay filtered; capabilities granted to
 * the container unlock the syscalls docker unlocks for them. */
#include "runtime-priv.h"

#include <errno.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <sched.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Allowed for everybody (moby's first, unconditional rule). Names unknown to
 * this libseccomp, or absent on every architecture in the filter, are skipped. */
static const char *const allowed[] = {
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat", "capget",
    "capset", "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64",
    "clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
    "clock_nanosleep_time64", "close", "close_range", "connect", "copy_file_range", "creat",
    "dup", "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old",
    "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2",
    "execve", "execveat", "exit", "exit_group", "faccessat", "faccessat2", "fadvise64",
    "fadvise64_64", "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchmodat2",
    "fchown", "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr",
    "flock", "fork", "fremovexattr", "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs",
    "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futex", "futex_requeue", "futex_time64",
    "futex_wait", "futex_waitv", "futex_wake", "futimesat", "getcpu", "getcwd", "getdents",
    "getdents64", "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32",
    "getgroups", "getgroups32", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid",
    "getppid", "getpriority", "getrandom", "getresgid", "getresgid32", "getresuid",
    "getresuid32", "getrlimit", "get_robust_list", "getrusage", "getsid", "getsockname",
    "getsockopt", "get_thread_area", "gettid", "gettimeofday", "getuid", "getuid32", "getxattr",
    "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel",
    "ioctl", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64", "ioprio_get",
    "ioprio_set", "io_setup", "io_submit", "ipc", "kill", "landlock_add_rule",
    "landlock_create_ruleset", "landlock_restrict_self", "lchown", "lchown32", "lgetxattr",
    "link", "linkat", "listen", "listxattr", "llistxattr", "_llseek", "lremovexattr", "lseek",
    "lsetxattr", "lstat", "lstat64", "madvise", "map_shadow_stack", "membarrier", "memfd_create",
    "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2",
    "mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open",
    "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64",
    "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock",
    "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat", "_newselect", "open",
    "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2",
    "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl",
    "pread64", "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6",
    "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink",
    "readlinkat", "readv", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg",
    "remap_file_pages", "removexattr", "rename", "renameat", "renameat2", "restart_syscall",
    "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
    "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr", "sched_getparam",
    "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
    "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity",
    "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select",
    "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send", "sendfile",
    "sendfile64", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid",
    "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer", "setpgid",
    "setpriority", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid",
    "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list", "setsid",
    "setsockopt", "set_thread_area", "set_tid_address", "setuid", "setuid32", "setxattr",
    "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4",
    "sigprocmask", "sigreturn", "socketcall", "socketpair", "splice", "stat", "stat64", "statfs",
    "statfs64", "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "sysinfo",
    "tee", "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
    "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime",
    "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate",
    "truncate64", "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "utime", "utimensat",
    "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid", "write",
    "writev",
    /* moby allows these on kernels >= 4.8, where ptrace can no longer bypass seccomp */
    "process_vm_readv", "process_vm_writev", "ptrace",
    /* x86 only */
    "arch_prctl", "modify_ldt",
    NULL,
};

/* Syscalls a granted capability unlocks (moby's "includes: caps" rules). */
struct cap_syscalls {
    int cap;
    const char *const *names;
};
static const struct cap_syscalls cap_rules[] = {
    { CAP_SYS_ADMIN,
      (const char *const[]){ "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount",
                             "fsopen", "fspick", "lookup_dcookie", "mount", "mount_setattr",
                             "move_mount", "open_tree", "perf_event_open", "quotactl",
                             "quotactl_fd", "setdomainname", "sethostname", "setns", "syslog",
                             "umount", "umount2", "unshare", NULL } },
    { CAP_SYS_BOOT, (const char *const[]){ "reboot", NULL } },
    { CAP_SYS_CHROOT, (const char *const[]){ "chroot", NULL } },
    { CAP_SYS_MODULE,
      (const char *const[]){ "delete_module", "init_module", "finit_module", NULL } },
    { CAP_SYS_PACCT, (const char *const[]){ "acct", NULL } },
    { CAP_SYS_PTRACE, (const char *const[]){ "kcmp", "pidfd_getfd", "process_madvise", NULL } },
    { CAP_SYS_RAWIO, (const char *const[]){ "iopl", "ioperm", NULL } },
    { CAP_SYS_TIME,
      (const char *const[]){ "settimeofday", "stime", "clock_settime", "clock_settime64", NULL } },
    { CAP_SYS_TTY_CONFIG, (const char *const[]){ "vhangup", NULL } },
    { CAP_SYS_NICE,
      (const char *const[]){ "get_mempolicy", "mbind", "set_mempolicy",
                             "set_mempolicy_home_node", NULL } },
    { CAP_SYSLOG, (const char *const[]){ "syslog", NULL } },
    { CAP_BPF, (const char *const[]){ "bpf", NULL } },
    { CAP_PERFMON, (const char *const[]){ "perf_event_open", NULL } },
};

struct rt_bpf_impl {
    struct rt_bpf pub;
    struct sock_fprog prog;
    struct sock_filter insns[];
};

void rt_bpf_free(struct rt_bpf *bpf)
{
    free(bpf); /* pub is the first member of the allocation */
}

size_t rt_bpf_len(const struct rt_bpf *bpf)
{
    return bpf != NULL ? bpf->prog->len : 0;
}

DEFINE_CLEANUP(void, seccomp_release)

/* seccomp_rule_add for a syscall by name; unknown names are not an error. */
static int allow_name(scmp_filter_ctx ctx, const char *name, uint32_t action, struct merr *err)
{
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR)
        return 0;
    int r = seccomp_rule_add(ctx, action, nr, 0);
    /* -EEXIST: a rule for it is already there; -EDOM etc.: not on these arches */
    if (r < 0 && r != -EEXIST && r != -EDOM && r != -EOPNOTSUPP)
        return merr_set(err, MERR_INTERNAL, -r, "cannot add seccomp rule for '%s'", name);
    return 0;
}

static int add_conditional_rules(scmp_filter_ctx ctx, uint64_t caps, struct merr *err)
{
    bool sys_admin = caps & (UINT64_C(1) << CAP_SYS_ADMIN);
    int r;
    /* personality(2): only the harmless personas moby lets through. */
    static const uint64_t personas[] = { 0x0, 0x8, 0x20000, 0x20008, 0xffffffff };
    for (size_t i = 0; i < sizeof personas / sizeof personas[0]; i++) {
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(personality), 1,
                             SCMP_A0(SCMP_CMP_EQ, personas[i]));
        if (r < 0)
            return merr_set(err, MERR_INTERNAL, -r, "cannot add seccomp rule for 'personality'");
    }
    /* socket(2): everything but AF_VSOCK (40). */
    r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_NE, 40));
    if (r < 0)
        return merr_set(err, MERR_INTERNAL, -r, "cannot add seccomp rule for 'socket'");
    if (!sys_admin) {
        /* clone(2) without namespace flags; clone3 cannot be filtered on its
         * flags (they sit behind a pointer), so it says ENOSYS. */
        uint64_t ns_flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
                            CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP;
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                             SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags, 0));
        if (r < 0)
            return merr_set(err, MERR_INTERNAL, -r, "cannot add seccomp rule for 'clone'");
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
        if (r < 0)
            return merr_set(err, MERR_INTERNAL, -r, "cannot add seccomp rule for 'clone3'");
    }
    for (size_t i = 0; i < sizeof cap_rules / sizeof cap_rules[0]; i++) {
        if (!(caps & (UINT64_C(1) << cap_rules[i].cap)))
            continue;
        for (const char *const *n = cap_rules[i].names; *n != NULL; n++) {
            if (allow_name(ctx, *n, SCMP_ACT_ALLOW, err) < 0)
                return -1;
        }
    }
    return 0;
}

/* Exports the filter through a memfd (libseccomp 2.5 only writes to fds). */
int rt_seccomp_export(void *ctx, struct rt_bpf **out, struct merr *err)
{
    auto_close int fd = memfd_create("seccomp-bpf", MFD_CLOEXEC);
    if (fd < 0)
        return merr_set(err, MERR_IO, errno, "cannot create memfd for seccomp");
    int r = seccomp_export_bpf(ctx, fd);
    if (r < 0)
        return merr_set(err, MERR_INTERNAL, -r, "cannot export seccomp filter");
    struct stat st;
    if (fstat(fd, &st) < 0)
        return merr_set(err, MERR_IO, errno, "cannot stat seccomp memfd");
    size_t n = (size_t)st.st_size / sizeof(struct sock_filter);
    if (n == 0 || n > BPF_MAXINSNS || (size_t)st.st_size % sizeof(struct sock_filter) != 0)
        return merr_set(err, MERR_INTERNAL, 0, "seccomp filter has a bad size (%lld bytes)",
                        (long long)st.st_size);
    auto_free struct rt_bpf_impl *b = malloc(sizeof *b + (size_t)st.st_size);
    if (b == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate seccomp filter");
    size_t done = 0;
    while (done < (size_t)st.st_size) {
        ssize_t k = pread(fd, (char *)b->insns + done, (size_t)st.st_size - done, (off_t)done);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return merr_set(err, MERR_IO, k < 0 ? errno : EIO, "cannot read seccomp memfd");
        done += (size_t)k;
    }
    b->prog.len = (unsigned short)n;
    b->prog.filter = b->insns;
    b->pub.prog = &b->prog;
    *out = &((struct rt_bpf_impl *)steal_pointer(&b))->pub;
    return 0;
}

int rt_seccomp_build(uint64_t caps, struct rt_bpf **out, struct merr *err)
{
    __attribute__((cleanup(cleanup_seccomp_releasep))) void *ctx =
        seccomp_init(SCMP_ACT_ERRNO(EPERM));
    if (ctx == NULL)
        return merr_set(err, MERR_INTERNAL, 0, "cannot initialise seccomp filter");
    /* The filter is loaded by hand; whether no_new_privs is set is our call. */
    int r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
    if (r < 0)
        return merr_set(err, MERR_INTERNAL, -r, "cannot configure seccomp filter");
    if (seccomp_arch_native() == SCMP_ARCH_X86_64) {
        /* 32-bit syscalls reach the same kernel: filter them too. */
        if ((r = seccomp_arch_add(ctx, SCMP_ARCH_X86)) < 0 && r != -EEXIST)
            return merr_set(err, MERR_INTERNAL, -r, "cannot add x86 to seccomp filter");
        if ((r = seccomp_arch_add(ctx, SCMP_ARCH_X32)) < 0 && r != -EEXIST)
            return merr_set(err, MERR_INTERNAL, -r, "cannot add x32 to seccomp filter");
    }
    for (size_t i = 0; allowed[i] != NULL; i++) {
        if (allow_name(ctx, allowed[i], SCMP_ACT_ALLOW, err) < 0)
            return -1;
    }
    if (add_conditional_rules(ctx, caps, err) < 0)
        return -1;
    return rt_seccomp_export(ctx, out, err);
}

int rt_seccomp_get(struct rt_runtime *rt, uint64_t caps, struct rt_bpf **out, struct merr *err)
{
    pthread_mutex_lock(&rt->seccomp_lock);
    int rc = 0;
    if (rt->seccomp_cache == NULL || rt->seccomp_cache_caps != caps) {
        struct rt_bpf *fresh = NULL;
        rc = rt_seccomp_build(caps, &fresh, err);
        if (rc == 0) {
            rt_bpf_free(rt->seccomp_cache);
            rt->seccomp_cache = fresh;
            rt->seccomp_cache_caps = caps;
        }
    }
    if (rc == 0) {
        const struct sock_fprog *src = rt->seccomp_cache->prog;
        size_t bytes = (size_t)src->len * sizeof(struct sock_filter);
        struct rt_bpf_impl *b = malloc(sizeof *b + bytes);
        if (b == NULL) {
            rc = merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate seccomp filter");
        } else {
            memcpy(b->insns, src->filter, bytes);
            b->prog.len = src->len;
            b->prog.filter = b->insns;
            b->pub.prog = &b->prog;
            *out = &b->pub;
        }
    }
    pthread_mutex_unlock(&rt->seccomp_lock);
    return rc;
}
