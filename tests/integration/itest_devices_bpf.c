/* The devices cgroup program (engine/runtime/devices-bpf.c) against the real kernel: a child in
 * a cgroup2 directory carrying the program may open the devices its rules allow and no other.
 * Works on v2 and hybrid hosts (the program runs for the cgroup2 cgroup even where v1
 * controllers are mounted); needs root and a cgroup2 mount; skips otherwise. */
#define MACHINE_RUNTIME_PRIV
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/runtime-priv.h"

#define CGROUP2_MAGIC 0x63677270

static char cgdir[700];

static bool is_cgroup2(const char *path)
{
    struct statfs st;
    return statfs(path, &st) == 0 && (unsigned long)st.f_type == CGROUP2_MAGIC;
}

/* In a child moved into cgdir: 0 when path opens for reading, else the errno. */
static int open_in_cgroup(const char *path)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char procs[640];
        snprintf(procs, sizeof procs, "%.600s/cgroup.procs", cgdir);
        int fd = open(procs, O_WRONLY);
        if (fd < 0 || write(fd, "0", 1) != 1)
            _exit(200);
        close(fd);
        fd = open(path, O_RDONLY);
        _exit(fd >= 0 ? 0 : errno);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_not_equal(WEXITSTATUS(st), 200);
    return WEXITSTATUS(st);
}

static void test_rules_enforced(void **state)
{
    (void)state;
    const char *mount = is_cgroup2("/sys/fs/cgroup")           ? "/sys/fs/cgroup"
                        : is_cgroup2("/sys/fs/cgroup/unified") ? "/sys/fs/cgroup/unified"
                                                               : NULL;
    if (getuid() != 0 || mount == NULL) {
        printf("skip: needs root and a cgroup2 mount\n");
        skip();
    }
    char nodes[] = "/tmp/machine-devbpf-XXXXXX";
    assert_non_null(mkdtemp(nodes));
    char zero[600], loop[600];
    snprintf(zero, sizeof zero, "%s/zero", nodes);
    snprintf(loop, sizeof loop, "%s/loop", nodes);
    assert_int_equal(mknod(zero, S_IFCHR | 0666, makedev(1, 5)), 0);
    assert_int_equal(mknod(loop, S_IFBLK | 0666, makedev(7, 0)), 0);
    snprintf(cgdir, sizeof cgdir, "%s/machine-devbpf-%d", mount, (int)getpid());
    assert_int_equal(mkdir(cgdir, 0755), 0);

    static const char *const rules[] = { "c 1:3 rwm", "b 7:* r", NULL };
    const char *const *const lists[] = { rules, NULL };
    struct merr err = MERR_INIT;
    int rc = rt_devices_bpf_attach(cgdir, lists, &err);
    if (rc < 0)
        printf("attach: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(open_in_cgroup("/dev/null"), 0);      /* c 1:3 allowed */
    assert_int_equal(open_in_cgroup(zero), EPERM);          /* c 1:5 not listed */
    assert_int_not_equal(open_in_cgroup(loop), EPERM);      /* b 7:0 r allowed (ENXIO at most) */

    static const char *const ro[] = { "c 1:3 r", NULL };
    const char *const *const lists2[] = { ro, NULL };
    char sub[600];
    snprintf(sub, sizeof sub, "%.590s/ro", cgdir);
    assert_int_equal(mkdir(sub, 0755), 0);
    assert_int_equal(rt_devices_bpf_attach(sub, lists2, &err), 0);
    snprintf(cgdir, sizeof cgdir, "%.599s", sub);
    assert_int_equal(open_in_cgroup("/dev/null"), 0); /* read allowed by both */
    pid_t pid = fork();
    if (pid == 0) {
        char procs[640];
        snprintf(procs, sizeof procs, "%.600s/cgroup.procs", cgdir);
        int fd = open(procs, O_WRONLY);
        if (fd < 0 || write(fd, "0", 1) != 1)
            _exit(200);
        close(fd);
        fd = open("/dev/null", O_WRONLY);
        _exit(fd >= 0 ? 0 : errno);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    assert_int_equal(WEXITSTATUS(st), EPERM); /* write is not in "c 1:3 r" */

    rmdir(sub);
    *strrchr(cgdir, '/') = '\0';
    rmdir(cgdir);
    unlink(zero);
    unlink(loop);
    rmdir(nodes);
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_rules_enforced) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
