/* engine/runtime against the real kernel: containers on a busybox rootfs
 * built here, cgroups of this machine (v1, hybrid or v2). Needs root and
 * busybox-static (/bin/busybox); skips otherwise. Covers security cases 19
 * (fds, cwd), 21 (symlinked /proc), 22 (memory and pids limits) and 24
 * (adoption and cleanup after a restart). No network traffic at all. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime/runtime.h"

#define CG_PARENT "machine-engine-itest"

static char tmpdir[256];
static char base_layer[512];
static char symproc_layer[512];
static const char *busybox;
static struct rt_runtime *rt;
static int counter;

static const char *const base_env[] = { "PATH=/bin:/usr/bin", "HOME=/", NULL };

/* ---- fixture ------------------------------------------------------------ */

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int copy_file(const char *from, const char *to, mode_t mode)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (in < 0 || out < 0)
        return -1;
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0) {
        if (write(out, buf, (size_t)n) != n)
            return -1;
    }
    close(in);
    close(out);
    return n < 0 ? -1 : 0;
}

static void build_layers(void)
{
    static const char *const dirs[] = { "bin", "etc", "proc", "dev", "sys", "tmp", "root", "home",
                                        "home/app" };
    static const char *const applets[] = { "sh",   "echo", "cat",  "ls",   "hostname", "sleep",
                                           "dd",   "grep", "wc",   "seq",  "head",     "id",
                                           "true", "false", "kill", "touch", "test", "pwd", "tr",
                                           "readlink", "sort" };
    char path[1024];
    snprintf(base_layer, sizeof base_layer, "%s/base", tmpdir);
    assert_int_equal(mkdir(base_layer, 0755), 0);
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", base_layer, dirs[i]);
        assert_int_equal(mkdir(path, 0755), 0);
    }
    snprintf(path, sizeof path, "%s/bin/busybox", base_layer);
    assert_int_equal(copy_file(busybox, path, 0755), 0);
    for (size_t i = 0; i < sizeof applets / sizeof applets[0]; i++) {
        snprintf(path, sizeof path, "%s/bin/%s", base_layer, applets[i]);
        assert_int_equal(symlink("busybox", path), 0);
    }
    snprintf(path, sizeof path, "%s/etc/passwd", base_layer);
    write_text(path, "root:x:0:0:root:/root:/bin/sh\n"
                     "app:x:1000:1000:app:/home/app:/bin/sh\n"
                     "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n");
    snprintf(path, sizeof path, "%s/etc/group", base_layer);
    write_text(path, "root:x:0:\napp:x:1000:\naudio:x:29:app\nnogroup:x:65534:\n");

    /* a layer whose /proc is a symlink to the (container's) /tmp: case 21 */
    snprintf(symproc_layer, sizeof symproc_layer, "%s/symproc", tmpdir);
    assert_int_equal(mkdir(symproc_layer, 0755), 0);
    snprintf(path, sizeof path, "%s/proc", symproc_layer);
    assert_int_equal(symlink("/tmp", path), 0);
}

static int setup(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        print_message("skipping: needs root (namespaces, mounts, cgroups)\n");
        return 0;
    }
    busybox = access("/bin/busybox", X_OK) == 0 ? "/bin/busybox" : NULL;
    if (busybox == NULL) {
        print_message("skipping: /bin/busybox missing (apt-get install busybox-static)\n");
        return 0;
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/itest-runtime-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    build_layers();
    struct rt_runtime_config cfg = { .cgroup_parent = CG_PARENT };
    struct merr err = MERR_INIT;
    if (rt_runtime_new(&cfg, &rt, &err) < 0) {
        print_message("runtime: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rt_runtime_free(rt);
    rt = NULL;
    glob_t g;
    if (glob("/sys/fs/cgroup/*/" CG_PARENT, GLOB_NOSORT, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++)
            rmdir(g.gl_pathv[i]);
        globfree(&g);
    }
    rmdir("/sys/fs/cgroup/" CG_PARENT);
    if (tmpdir[0] != '\0') {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            return -1;
    }
    return 0;
}

#define SKIP_UNLESS_READY()                                                                        \
    do {                                                                                           \
        if (rt == NULL)                                                                            \
            skip();                                                                                \
    } while (0)

/* ---- per-container helpers ------------------------------------------------- */

struct box {
    char id[64];
    char dir[512], upper[600], work[600], rootfs[600];
    const char *lowers[3];
    struct rt_spec spec;
    int out[2]; /* stdout+stderr pipe */
};

static void box_init(struct box *b, const char *const *argv)
{
    memset(b, 0, sizeof *b);
    snprintf(b->id, sizeof b->id, "it%d-%d", (int)getpid(), ++counter);
    snprintf(b->dir, sizeof b->dir, "%s/%s", tmpdir, b->id);
    snprintf(b->upper, sizeof b->upper, "%s/upper", b->dir);
    snprintf(b->work, sizeof b->work, "%s/work", b->dir);
    snprintf(b->rootfs, sizeof b->rootfs, "%s/rootfs", b->dir);
    assert_int_equal(mkdir(b->dir, 0700), 0);
    assert_int_equal(mkdir(b->upper, 0755), 0);
    assert_int_equal(mkdir(b->work, 0700), 0);
    assert_int_equal(mkdir(b->rootfs, 0755), 0);
    b->lowers[0] = base_layer;
    assert_int_equal(pipe2(b->out, O_CLOEXEC), 0);
    b->spec = (struct rt_spec){
        .id = b->id,
        .lowerdirs = b->lowers,
        .upperdir = b->upper,
        .workdir = b->work,
        .rootfs = b->rootfs,
        .process = { .argv = argv, .env = base_env, .cwd = "/",
                     .stdio = { -1, b->out[1], b->out[1] } },
        .hostname = "itest",
        .network = RT_NET_NONE,
    };
}

/* Reads the pipe until EOF (all writers gone), at most 20 s. */
static void read_all(int fd, char *buf, size_t size)
{
    size_t used = 0;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int r = poll(&pfd, 1, 1000);
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        assert_true(now.tv_sec - start.tv_sec < 20);
        if (r <= 0)
            continue;
        ssize_t n = read(fd, buf + used, size - used - 1);
        if (n <= 0)
            break;
        used += (size_t)n;
        if (used == size - 1)
            break;
    }
    buf[used] = '\0';
}

static int wait_status(pid_t pid)
{
    int status;
    pid_t r;
    do
        r = waitpid(pid, &status, 0);
    while (r < 0 && errno == EINTR);
    assert_int_equal(r, pid);
    return status;
}

static bool mounted_under(const char *prefix)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    assert_non_null(f);
    char line[4096];
    bool found = false;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strstr(line, prefix) != NULL)
            found = true;
    }
    fclose(f);
    return found;
}

static bool cgroup_left(const char *id)
{
    char pattern[512];
    snprintf(pattern, sizeof pattern, "/sys/fs/cgroup/*/" CG_PARENT "/%s", id);
    glob_t g;
    bool left = glob(pattern, GLOB_NOSORT, NULL, &g) == 0;
    if (left)
        globfree(&g);
    snprintf(pattern, sizeof pattern, "/sys/fs/cgroup/" CG_PARENT "/%s", id);
    return left || access(pattern, F_OK) == 0;
}

static void assert_clean(const struct box *b)
{
    assert_false(mounted_under(b->dir));
    assert_false(cgroup_left(b->id));
}

/* Runs b to completion: its output in out, its docker exit code returned. */
static int run(struct box *b, char *out, size_t size, bool *oom)
{
    struct rt_container *c = NULL;
    struct merr err = MERR_INIT;
    int rc = rt_start(rt, &b->spec, &c, &err);
    if (rc < 0)
        print_message("rt_start: %s\n", err.msg);
    assert_int_equal(rc, 0);
    close(b->out[1]);
    read_all(b->out[0], out, size);
    close(b->out[0]);
    int code = rt_decode_status(wait_status(rt_container_pid(c)));
    bool killed = false;
    assert_int_equal(rt_oom_killed(c, &killed, &err), 0);
    if (oom != NULL)
        *oom = killed;
    assert_int_equal(rt_container_destroy(c, &err), 0);
    assert_clean(b);
    return code;
}

static void close_box(struct box *b)
{
    close(b->out[0]);
    close(b->out[1]);
}

/* ---- tests --------------------------------------------------------------- */

static void test_echo_hi(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    struct box b;
    box_init(&b, (const char *const[]){ "echo", "hi", NULL });
    char out[256];
    assert_int_equal(run(&b, out, sizeof out, NULL), 0);
    assert_string_equal(out, "hi\n");
}

static void test_exit_codes(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    struct box b;
    char out[256];
    box_init(&b, (const char *const[]){ "sh", "-c", "exit 1", NULL });
    assert_int_equal(run(&b, out, sizeof out, NULL), 1);
    box_init(&b, (const char *const[]){ "false", NULL });
    assert_int_equal(run(&b, out, sizeof out, NULL), 1);

    /* a missing binary: start fails with NOT_FOUND (docker's 127), nothing left */
    box_init(&b, (const char *const[]){ "no-such-binary", NULL });
    struct rt_container *c = NULL;
    struct merr err = MERR_INIT;
    assert_int_equal(rt_start(rt, &b.spec, &c, &err), -1);
    assert_int_equal(err.code, MERR_NOT_FOUND);
    assert_null(c);
    assert_clean(&b);
    close_box(&b);

    box_init(&b, (const char *const[]){ "/etc/passwd", NULL }); /* not executable: 126 */
    assert_int_equal(rt_start(rt, &b.spec, &c, &err), -1);
    assert_int_equal(err.code, MERR_PERM);
    assert_clean(&b);
    close_box(&b);
}

static void test_signal_and_stop(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    struct box b;
    box_init(&b, (const char *const[]){ "sleep", "30", NULL });
    struct rt_container *c = NULL;
    struct merr err = MERR_INIT;
    assert_int_equal(rt_start(rt, &b.spec, &c, &err), 0);
    /* sleep as PID 1 has no SIGTERM handler, so the kernel drops SIGTERM:
     * rt_stop must escalate to SIGKILL within its bound */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(rt_stop(c, SIGTERM, 300, 5000, &err), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 5);
    assert_int_equal(rt_decode_status(wait_status(rt_container_pid(c))), 137);
    assert_int_equal(rt_container_destroy(c, &err), 0);
    assert_clean(&b);
    close_box(&b);
}

static void test_pid1_and_hostname(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    struct box b;
    box_init(&b, (const char *const[]){ "sh", "-c", "echo $$; hostname", NULL });
    b.spec.hostname = "box-one";
    char out[256];
    assert_int_equal(run(&b, out, sizeof out, NULL), 0);
    assert_string_equal(out, "1\nbox-one\n");
}

static void test_masked_and_readonly_proc(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    static const char *const masked_files[] = { "/proc/kcore", "/proc/interrupts", "/proc/keys",
                                                "/proc/timer_list", NULL };
    struct box b;
    /* kernel/domainname is per UTS namespace: harmless even if it were writable */
    box_init(&b, (const char *const[]){
                     "sh", "-c",
                     "for f in /proc/kcore /proc/interrupts /proc/keys /proc/timer_list; do "
                     "  [ -e $f ] && echo \"$f $(wc -c < $f)\"; done; "
                     "(echo x > /proc/sys/kernel/domainname) 2>/dev/null && echo rw || echo ro; "
                     "ls /sys/firmware | wc -l",
                     NULL });
    /* the kernel differs in which of these exist; /proc/interrupts always does
     * and is never empty on the host */
    char want[512] = "";
    for (size_t i = 0; masked_files[i] != NULL; i++) {
        if (access(masked_files[i], F_OK) == 0)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s 0\n", masked_files[i]);
    }
    strcat(want, "ro\n0\n");
    assert_non_null(strstr(want, "/proc/interrupts 0"));
    char out[512];
    assert_int_equal(run(&b, out, sizeof out, NULL), 0);
    assert_string_equal(out, want);
}

static uint64_t expected_default_caps(void)
{
    static const int caps[] = { CAP_CHOWN,      CAP_DAC_OVERRIDE,     CAP_FSETID,  CAP_FOWNER,
                                CAP_MKNOD,      CAP_NET_RAW,          CAP_SETGID,  CAP_SETUID,
                                CAP_SETFCAP,    CAP_SETPCAP,          CAP_NET_BIND_SERVICE,
                                CAP_SYS_CHROOT, CAP_KILL,             CAP_AUDIT_WRITE };
    uint64_t m = 0;
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++)
        m |= UINT64_C(1) << caps[i];
    return m;
}

static void test_capabilities(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    struct box b;
    box_init(&b, (const char *const[]){ "grep", "-E", "^Cap(Eff|Bnd|Inh|Amb)",
                                        "/proc/self/status", NULL });
    char out[512], want[512];
    assert_int_equal(run(&b, out, sizeof out, NULL), 0);
    uint64_t m = expected_default_caps();
    assert_int_equal(m, UINT64_C(0xa80425fb)); /* docker's well-known CapEff */
    snprintf(want, sizeof want,
             "CapInh:\t0000000000000000\nCapEff:\t%016llx\nCapBnd:\t%016llx\n"
             "CapAmb:\t0000000000000000\n",
             (unsigned long long)m, (unsigned long long)m);
    assert_string_equal(out, want);

    /* a non-root user keeps nothing effective */
    box_init(&b, (const char *const[]){ "sh", "-c", "id -u; id -g; grep ^CapEff /proc/self/status",
                                        NULL });
    b.spec.process.uid = 65534;
    b.spec.process.gid = 65534;
    assert_int_equal(run(&b, out, sizeof out, NULL), 0);
    assert_string_equal(out, "65534\n65534\nCapEff:\t0000000000000000\n");
}

static void test_seccomp_active(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    struct box b;
    box_init(&b, (const char *const[]){ "grep", "^Seccomp:", "/proc/self/status", NULL });
    char out[256];
    assert_int_equal(run(&b, out, sizeof out, NULL), 0);
    assert_string_equal(out, "Seccomp:\t2\n");
}

/* The fds of pid as seen from the host, "0 1 2". */
static void fds_of(pid_t pid, char *buf, size_t size)
{
    bool open_fd[64] = { false };
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] != '.' && fd >= 0 && fd < 64)
            open_fd[fd] = true;
        else if (e->d_name[0] != '.')
            open_fd[63] = true;
    }
    closedir(d);
    buf[0] = '\0';
    for (int i = 0; i < 64; i++) {
        if (open_fd[i])
            snprintf(buf + strlen(buf), size - strlen(buf), "%s%d", buf[0] ? " " : "", i);
    }
}

static void test_only_stdio_fds(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    /* fds the engine holds without O_CLOEXEC must not reach the container */
    int leak_dir = open("/", O_PATH);
    int leak_file = open("/etc/hostname", O_RDONLY);
    assert_true(leak_dir >= 0 && leak_file >= 0);
    struct box b;
    box_init(&b, (const char *const[]){ "sleep", "30", NULL });
    struct rt_container *c = NULL;
    struct merr err = MERR_INIT;
    assert_int_equal(rt_start(rt, &b.spec, &c, &err), 0);
    char fds[256];
    fds_of(rt_container_pid(c), fds, sizeof fds);
    assert_string_equal(fds, "0 1 2");

    struct rt_process p = { .argv = (const char *const[]){ "sleep", "30", NULL },
                            .env = base_env,
                            .stdio = { -1, -1, -1 } };
    pid_t pid;
    assert_int_equal(rt_exec(c, &p, NULL, &pid, &err), 0);
    fds_of(pid, fds, sizeof fds);
    assert_string_equal(fds, "0 1 2");
    kill(pid, SIGKILL);
    (void)wait_status(pid);

    assert_int_equal(rt_kill(c, SIGKILL, &err), 0);
    (void)wait_status(rt_container_pid(c));
    assert_int_equal(rt_container_destroy(c, &err), 0);
    assert_clean(&b);
    close_box(&b);
    close(leak_dir);
    close(leak_file);
}

static void test_cwd_outside_rootfs_fails(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    /* deliberately inheritable, and above the fds the child installs (0-4) */
    int low = open("/tmp", O_RDONLY | O_DIRECTORY);
    assert_true(low >= 0);
    int host_dir = fcntl(low, F_DUPFD, 40);
    assert_true(host_dir >= 40);
    close(low);
    char cwd[64];
    snprintf(cwd, sizeof cwd, "/proc/self/fd/%d", host_dir);
    struct box b;
    box_init(&b, (const char *const[]){ "pwd", NULL });
    b.spec.process.cwd = cwd;
    struct rt_container *c = NULL;
    struct merr err = MERR_INIT;
    assert_int_equal(rt_start(rt, &b.spec, &c, &err), -1);
    print_message("refused as expected: %s\n", err.msg);
    assert_true(err.code == MERR_INVALID || err.code == MERR_PERM);
    assert_null(c);
    assert_clean(&b);
    close_box(&b);
    close(host_dir);

    /* a cwd that does not exist yet is created inside the rootfs */
    box_init(&b, (const char *const[]){ "pwd", NULL });
    b.spec.process.cwd = "/work/dir";
    char out[256];
    assert_int_equal(run(&b, out, sizeof out, NULL), 0);
    assert_string_equal(out, "/work/dir\n");
}

static void test_symlinked_proc_refused(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    struct box b;
    box_init(&b, (const char *const[]){ "true", NULL });
    b.lowers[0] = symproc_layer;
    b.lowers[1] = base_layer;
    struct rt_container *c = NULL;
    struct merr err = MERR_INIT;
    assert_int_equal(rt_start(rt, &b.spec, &c, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    assert_clean(&b);
    close_box(&b);
}

static void test_readonly_rootfs(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    struct box b;
    box_init(&b, (const char *const[]){
                     "sh", "-c", "touch /x 2>/dev/null && echo rw || echo ro; touch /dev/shm/y && echo shm",
                     NULL });
    b.spec.readonly_rootfs = true;
    char out[256];
    assert_int_equal(run(&b, out, sizeof out, NULL), 0);
    assert_string_equal(out, "ro\nshm\n");
}

static void test_memory_limit_oom(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    struct box b;
    /* dd allocates its 64 MiB block and fills it from /dev/zero */
    box_init(&b, (const char *const[]){ "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1",
                                        NULL });
    b.spec.resources.memory = 16 << 20;
    char out[512];
    bool oom = false;
    assert_int_equal(run(&b, out, sizeof out, &oom), 137);
    assert_true(oom);

    /* the same without a limit completes and is not OOM-killed */
    box_init(&b, (const char *const[]){ "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1",
                                        NULL });
    assert_int_equal(run(&b, out, sizeof out, &oom), 0);
    assert_false(oom);
}

static void test_pids_limit(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    struct box b;
    box_init(&b, (const char *const[]){ "sleep", "60", NULL });
    b.spec.resources.pids_limit = 64;
    struct rt_container *c = NULL;
    struct merr err = MERR_INIT;
    assert_int_equal(rt_start(rt, &b.spec, &c, &err), 0);

    /* an exec'd shell forks sleepers until the limit stops it */
    struct rt_process bomb = {
        .argv = (const char *const[]){ "sh", "-c",
                                       "i=0; while [ $i -lt 100 ]; do sleep 30 & i=$((i+1)); done",
                                       NULL },
        .env = base_env,
        .stdio = { -1, -1, -1 },
    };
    pid_t pid;
    assert_int_equal(rt_exec(c, &bomb, NULL, &pid, &err), 0);
    (void)wait_status(pid);
    struct rt_stats st;
    assert_int_equal(rt_stats(c, &st, &err), 0);
    assert_int_equal(st.pids_limit, 64);
    assert_true(st.pids_current <= 64);
    assert_true(st.pids_current >= 60); /* the limit, not the loop, stopped it */

    assert_int_equal(rt_kill(c, SIGKILL, &err), 0);
    assert_int_equal(rt_decode_status(wait_status(rt_container_pid(c))), 137);
    assert_int_equal(rt_container_destroy(c, &err), 0);
    assert_clean(&b);
    close_box(&b);
}

static void test_exec_joins_container(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    struct box b;
    box_init(&b, (const char *const[]){ "sleep", "30", NULL });
    b.spec.hostname = "exec-box";
    struct rt_container *c = NULL;
    struct merr err = MERR_INIT;
    assert_int_equal(rt_start(rt, &b.spec, &c, &err), 0);

    int out[2];
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    struct rt_process p = {
        .argv = (const char *const[]){ "sh", "-c",
                                       "hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; "
                                       "test $$ -lt 100 && echo small-pid; echo $EXTRA; "
                                       "grep ^CapEff /proc/self/status; pwd",
                                       NULL },
        .env = (const char *const[]){ "PATH=/bin", "EXTRA=old", NULL },
        .cwd = "/tmp",
        .stdio = { -1, out[1], out[1] },
    };
    pid_t pid;
    int rc = rt_exec(c, &p, (const char *const[]){ "EXTRA=new", NULL }, &pid, &err);
    if (rc < 0)
        print_message("rt_exec: %s\n", err.msg);
    assert_int_equal(rc, 0);
    close(out[1]);
    char buf[512];
    read_all(out[0], buf, sizeof buf);
    close(out[0]);
    assert_int_equal(rt_decode_status(wait_status(pid)), 0);
    char want[512];
    snprintf(want, sizeof want, "exec-box\nsleep 30 \nsmall-pid\nnew\nCapEff:\t%016llx\n/tmp\n",
             (unsigned long long)expected_default_caps());
    assert_string_equal(buf, want);

    /* exec of a missing binary fails cleanly */
    p.argv = (const char *const[]){ "nope", NULL };
    p.stdio[1] = p.stdio[2] = -1;
    assert_int_equal(rt_exec(c, &p, NULL, &pid, &err), -1);
    assert_int_equal(err.code, MERR_NOT_FOUND);

    assert_int_equal(rt_kill(c, SIGKILL, &err), 0);
    (void)wait_status(rt_container_pid(c));
    assert_int_equal(rt_container_destroy(c, &err), 0);
    assert_clean(&b);
    close_box(&b);
}

static void test_network_none(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    struct box b;
    box_init(&b, (const char *const[]){ "sh", "-c", "ls /sys/class/net; cat /sys/class/net/lo/flags",
                                        NULL });
    char out[256];
    assert_int_equal(run(&b, out, sizeof out, NULL), 0);
    assert_string_equal(out, "lo\n0x9\n"); /* only lo, IFF_UP|IFF_LOOPBACK */
}

static void test_tty(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    assert_true(master >= 0);
    assert_int_equal(grantpt(master), 0);
    assert_int_equal(unlockpt(master), 0);
    int slave = open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
    assert_true(slave >= 0);
    struct box b;
    box_init(&b, (const char *const[]){ "sh", "-c",
                                        "test -t 0 && test -t 1 && echo tty; "
                                        "test -c /dev/console && echo console",
                                        NULL });
    b.spec.process.tty = true;
    b.spec.process.stdio[0] = b.spec.process.stdio[1] = b.spec.process.stdio[2] = slave;
    struct rt_container *c = NULL;
    struct merr err = MERR_INIT;
    int rc = rt_start(rt, &b.spec, &c, &err);
    if (rc < 0)
        print_message("rt_start: %s\n", err.msg);
    assert_int_equal(rc, 0);
    close(slave);
    assert_int_equal(rt_decode_status(wait_status(rt_container_pid(c))), 0);
    char out[256];
    ssize_t n = read(master, out, sizeof out - 1); /* the pty keeps what was written */
    assert_true(n > 0);
    out[n] = '\0';
    assert_string_equal(out, "tty\r\nconsole\r\n");
    close(master);
    assert_int_equal(rt_container_destroy(c, &err), 0);
    assert_clean(&b);
    close_box(&b);
}

static void test_bind_mounts(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    char vol[600], file[700], escape[700];
    snprintf(vol, sizeof vol, "%s/volume", tmpdir);
    mkdir(vol, 0755);
    snprintf(file, sizeof file, "%s/data.txt", vol);
    write_text(file, "from the host\n");
    /* an image layer with /evil -> /etc: the bind must land inside the rootfs */
    char layer[600];
    snprintf(layer, sizeof layer, "%s/evil-layer", tmpdir);
    mkdir(layer, 0755);
    snprintf(escape, sizeof escape, "%s/evil", layer);
    unlink(escape);
    assert_int_equal(symlink("/etc", escape), 0);

    struct box b;
    box_init(&b, (const char *const[]){
                     "sh", "-c",
                     "cat /data/data.txt; echo more > /data/new.txt && echo wrote; "
                     "(echo x > /ro/x) 2>/dev/null && echo ro-writable || echo ro-refused; "
                     "cat /etc/vol/data.txt",
                     NULL });
    b.lowers[0] = layer;
    b.lowers[1] = base_layer;
    struct rt_bind_mount mounts[] = {
        { .source = vol, .destination = "/data" },
        { .source = vol, .destination = "/ro", .readonly = true },
        { .source = vol, .destination = "/evil/vol" },
    };
    b.spec.mounts = mounts;
    b.spec.n_mounts = 3;
    char out[512];
    assert_int_equal(run(&b, out, sizeof out, NULL), 0);
    assert_string_equal(out, "from the host\nwrote\nro-refused\nfrom the host\n");
    snprintf(file, sizeof file, "%s/new.txt", vol);
    assert_int_equal(access(file, F_OK), 0);
    assert_int_equal(access("/etc/vol", F_OK), -1); /* nothing was created on the host */
}

static void test_privileged_and_groups(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    struct box b;
    box_init(&b, (const char *const[]){ "sh", "-c",
                                        "grep -E '^(CapEff|Seccomp):' /proc/self/status; "
                                        "wc -c < /proc/interrupts | grep -qv '^0$' && echo unmasked",
                                        NULL });
    b.spec.process.privileged = true;
    char out[256], want[256];
    assert_int_equal(run(&b, out, sizeof out, NULL), 0);
    /* privileged gets everything the engine itself may hand out */
    char status[4096] = "";
    FILE *f = fopen("/proc/self/status", "r");
    assert_non_null(f);
    size_t got = fread(status, 1, sizeof status - 1, f);
    status[got] = '\0';
    fclose(f);
    char *bnd = strstr(status, "CapBnd:\t");
    assert_non_null(bnd);
    snprintf(want, sizeof want, "CapEff:\t%.16s\nSeccomp:\t0\nunmasked\n", bnd + 8);
    assert_string_equal(out, want);

    /* a user with supplementary groups, cap_add/cap_drop */
    box_init(&b, (const char *const[]){ "sh", "-c", "id -G; grep ^CapBnd /proc/self/status",
                                        NULL });
    static const gid_t groups[] = { 29, 1000 };
    b.spec.process.uid = 1000;
    b.spec.process.gid = 1000;
    b.spec.process.additional_gids = groups;
    b.spec.process.n_additional_gids = 2;
    b.spec.process.cap_add = (const char *const[]){ "NET_ADMIN", NULL };
    b.spec.process.cap_drop = (const char *const[]){ "ALL", NULL };
    assert_int_equal(run(&b, out, sizeof out, NULL), 0);
    snprintf(want, sizeof want, "1000 29\nCapBnd:\t%016llx\n",
             (unsigned long long)(UINT64_C(1) << CAP_NET_ADMIN));
    assert_string_equal(out, want);
}

static void test_engine_binary_untouchable(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    /* this test program plays the engine: its binary must stay as it is */
    char self[1024];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(n > 0);
    self[n] = '\0';
    struct stat before, after;
    assert_int_equal(stat(self, &before), 0);

    struct box b;
    box_init(&b, (const char *const[]){ "sleep", "30", NULL });
    struct rt_container *c = NULL;
    struct merr err = MERR_INIT;
    assert_int_equal(rt_start(rt, &b.spec, &c, &err), 0);
    int out[2];
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    /* every process visible in the container runs the image's busybox, and
     * writing through /proc/PID/exe changes nothing on the host */
    struct rt_process p = {
        .argv = (const char *const[]){ "sh", "-c",
                                       "for e in /proc/[0-9]*/exe; do readlink $e; "
                                       "echo pwned >> $e; done 2>/dev/null | sort -u",
                                       NULL },
        .env = base_env,
        .stdio = { -1, out[1], out[1] },
    };
    pid_t pid;
    assert_int_equal(rt_exec(c, &p, NULL, &pid, &err), 0);
    close(out[1]);
    char buf[512];
    read_all(out[0], buf, sizeof buf);
    close(out[0]);
    (void)wait_status(pid);
    assert_string_equal(buf, "/bin/busybox\n");
    assert_int_equal(stat(self, &after), 0);
    assert_int_equal(before.st_size, after.st_size);
    assert_int_equal(before.st_mtim.tv_sec, after.st_mtim.tv_sec);
    assert_int_equal(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);

    assert_int_equal(rt_kill(c, SIGKILL, &err), 0);
    (void)wait_status(rt_container_pid(c));
    assert_int_equal(rt_container_destroy(c, &err), 0);
    assert_clean(&b);
    close_box(&b);
}

static uint64_t own_start_time(void)
{
    FILE *f = fopen("/proc/self/stat", "r");
    assert_non_null(f);
    char buf[1024];
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    char *p = strrchr(buf, ')') + 2;
    for (int field = 3; field < 22; field++)
        p = strchr(p, ' ') + 1;
    return strtoull(p, NULL, 10);
}

static void test_adopt_after_restart(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    struct box b;
    box_init(&b, (const char *const[]){ "sleep", "30", NULL });
    struct rt_container *c = NULL;
    struct merr err = MERR_INIT;
    assert_int_equal(rt_start(rt, &b.spec, &c, &err), 0);
    struct rt_state st;
    rt_container_state(c, &st);
    assert_int_equal(st.pid, rt_container_pid(c));
    assert_true(st.start_time > 0);
    rt_container_release(c); /* the engine "restarts": only the saved state is left */

    struct rt_container *again = NULL;
    assert_int_equal(rt_adopt(rt, &st, &again, &err), 1);
    assert_non_null(again);
    assert_int_equal(rt_container_pid(again), st.pid);

    /* a saved pid now used by another process (same pid, other start time,
     * other cgroup) is not adopted, and that process is left alone */
    struct rt_state reused = st;
    reused.pid = getpid();
    reused.start_time = own_start_time() + 1;
    snprintf(reused.id, sizeof reused.id, "%s-gone", b.id);
    snprintf(reused.rootfs, sizeof reused.rootfs, "%s/elsewhere", b.dir);
    struct rt_container *none = NULL;
    assert_int_equal(rt_adopt(rt, &reused, &none, &err), 0);
    assert_null(none);
    reused.start_time = own_start_time(); /* right start time, not in the cgroup */
    assert_int_equal(rt_adopt(rt, &reused, &none, &err), 0);
    assert_null(none);

    /* it dies while the engine is "down": adoption cleans up instead */
    assert_int_equal(rt_kill(again, SIGKILL, &err), 0);
    assert_int_equal(rt_decode_status(wait_status(st.pid)), 137);
    rt_container_release(again);
    assert_true(mounted_under(b.dir));
    assert_true(cgroup_left(b.id));
    assert_int_equal(rt_adopt(rt, &st, &none, &err), 0);
    assert_null(none);
    assert_clean(&b);
    close_box(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_hi),
        cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_signal_and_stop),
        cmocka_unit_test(test_pid1_and_hostname),
        cmocka_unit_test(test_masked_and_readonly_proc),
        cmocka_unit_test(test_capabilities),
        cmocka_unit_test(test_seccomp_active),
        cmocka_unit_test(test_only_stdio_fds),
        cmocka_unit_test(test_cwd_outside_rootfs_fails),
        cmocka_unit_test(test_symlinked_proc_refused),
        cmocka_unit_test(test_readonly_rootfs),
        cmocka_unit_test(test_memory_limit_oom),
        cmocka_unit_test(test_pids_limit),
        cmocka_unit_test(test_exec_joins_container),
        cmocka_unit_test(test_adopt_after_restart),
        cmocka_unit_test(test_network_none),
        cmocka_unit_test(test_tty),
        cmocka_unit_test(test_bind_mounts),
        cmocka_unit_test(test_privileged_and_groups),
        cmocka_unit_test(test_engine_binary_untouchable),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
