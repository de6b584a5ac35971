/* Does KVM really run a guest here? /dev/kvm can exist where guests never get far (without
 * nested virtualisation, SeaBIOS runs but a kernel entering long mode hangs inside KVM_RUN), so
 * the probe boots the machine-os kernel itself under `qemu -accel kvm` and waits, bounded, for
 * its first line on the serial port (qemu's stdout). qemu's process group is killed whatever
 * happens (util/command). */
#include <string.h>
#include <unistd.h>

#include "command.h"
#include "error.h"
#include "fsutil.h"
#include "kvm-priv.h"
#include "strv.h"

#define PROBE_OUTPUT_MAX (64u * 1024)

char **kvm_probe_argv(const char *kernel)
{
    const char *const words[] = { "qemu-system-x86_64", "-accel", "kvm", "-m", "128",
                                  "-nodefaults", "-display", "none", "-no-reboot", "-kernel",
                                  kernel, "-append", "console=ttyS0 panic=-1", "-serial", "stdio" };
    char **argv = NULL;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        argv = strv_push(argv, words[i]);
    return argv;
}

bool kvm_probe_run(const struct cmd_runner *runner, const char *kernel, int timeout_ms)
{
    auto_strv char **argv = kvm_probe_argv(kernel);
    struct cmd_spec spec = { .argv = argv, .timeout_ms = timeout_ms, .out_max = PROBE_OUTPUT_MAX,
                             .stop_on = "Linux version" };
    struct cmd_result res;
    struct merr ignored = MERR_INIT;
    /* a kernel that boots without a root file system panics and qemu exits (-no-reboot): the
     * line is what counts, not how qemu ended */
    if (cmd_run(runner, &spec, &res, &ignored) < 0) {
        /* judged below */
    }
    bool ok = res.stopped || (res.out.data != NULL && strstr(res.out.data, "Linux version") != NULL);
    cmd_result_release(&res);
    return ok;
}

bool kvm_probe_runs_guest(const char *kernel, int timeout_ms)
{
    if (kernel == NULL || access(kernel, R_OK) != 0 || access("/dev/kvm", R_OK | W_OK) != 0)
        return false;
    return kvm_probe_run(NULL, kernel, timeout_ms);
}
