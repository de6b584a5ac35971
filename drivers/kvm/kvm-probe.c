/* Does KVM really run a guest here? /dev/kvm can exist where guests never get far (without
 * nested virtualisation, SeaBIOS runs but a kernel entering long mode hangs inside KVM_RUN), so
 * the probe boots the machine-os kernel itself under `qemu -accel kvm` and waits, bounded, for
 * its first line on the serial port. qemu is killed whatever happens. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "kvm-priv.h"

bool kvm_probe_runs_guest(const char *kernel, int timeout_ms)
{
    if (kernel == NULL || access(kernel, R_OK) != 0 || access("/dev/kvm", R_OK | W_OK) != 0)
        return false;
    char log[] = "/tmp/machine-kvm-probe-XXXXXX";
    int fd = mkstemp(log);
    if (fd < 0)
        return false;
    close(fd);
    auto_free char *serial = xasprintf("file:%s", log);
    pid_t pid = fork();
    if (pid < 0) {
        unlink(log);
        return false;
    }
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        execlp("qemu-system-x86_64", "qemu-system-x86_64", "-accel", "kvm", "-m", "128",
               "-nodefaults", "-display", "none", "-no-reboot", "-kernel", kernel, "-append",
               "console=ttyS0 panic=-1", "-serial", serial, (char *)NULL);
        _exit(127);
    }
    bool ok = false;
    for (int waited = 0; waited < timeout_ms && !ok; waited += 50) {
        struct timespec ts = { 0, 50 * 1000 * 1000 };
        nanosleep(&ts, NULL);
        char buf[4096] = "";
        FILE *f = fopen(log, "re");
        if (f != NULL) {
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            buf[n] = '\0';
            fclose(f);
        }
        ok = strstr(buf, "Linux version") != NULL;
        if (!ok && waitpid(pid, NULL, WNOHANG) == pid) {
            pid = -1; /* qemu gave up (no KVM access, no qemu) */
            break;
        }
    }
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    unlink(log);
    return ok;
}
