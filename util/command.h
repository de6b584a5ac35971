/* Running a program: argv (never a shell string), environment, stdin from a buffer, a timeout
 * that kills the whole process group, stdout/stderr captured up to a cap, and the exit status or
 * signal in the error. Callers run through a struct cmd_runner so unit tests can swap the real
 * fork/exec for a recorder and compare the argv sequence with a golden file (libvirt's
 * vircommand dry-run idea). */
#ifndef MACHINE_COMMAND_H
#define MACHINE_COMMAND_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "cleanup.h"

struct merr;

struct cmd_spec {
    const char *path;     /* the file to execute; NULL: argv[0] looked up in PATH */
    char *const *argv;    /* argv[0] is the name the program sees */
    char *const *envp;    /* NULL: this process's environment */
    const void *in;       /* stdin; NULL: /dev/null */
    size_t in_len;
    int timeout_ms;       /* > 0: then the process group is killed (MERR_TIMEOUT) */
    size_t out_max;       /* bytes of stdout kept (0: discarded); the rest is read and dropped */
    size_t err_max;       /* the same for stderr */
    const char *stop_on;  /* stdout containing this ends the run early, as a success */
};

struct cmd_result {
    int status;       /* exit code, or 128 + signal */
    bool signaled;
    bool timed_out;
    bool stopped;     /* ended by stop_on */
    bool truncated;   /* output went past out_max / err_max */
    struct abuf out;  /* NUL-terminated */
    struct abuf err;
};

/* The seam: what actually runs a command. */
struct cmd_runner {
    int (*run)(void *opaque, const struct cmd_spec *spec, struct cmd_result *res,
               struct merr *err);
    void *opaque;
};

/* Runs spec through runner (NULL: the real one). 0 when the program exited 0 (or stop_on was
 * seen); else -1 with MERR_NOT_FOUND (cannot execute), MERR_TIMEOUT, or MERR_REMOTE naming the
 * exit status or signal and stderr's first line. res is filled in every case where the program
 * ran; release it with cmd_result_release. */
int cmd_run(const struct cmd_runner *runner, const struct cmd_spec *spec, struct cmd_result *res,
            struct merr *err) MUST_CHECK;
void cmd_result_release(struct cmd_result *res);

/* fork/exec: the real runner's function. */
int cmd_run_real(void *opaque, const struct cmd_spec *spec, struct cmd_result *res,
                 struct merr *err) MUST_CHECK;

/* A dry-run recorder: every argv is appended to log as one line (words joined by spaces,
 * argv only, so a golden file does not depend on where the program lives), nothing runs; each
 * command exits with status and prints out. */
struct cmd_recorder {
    struct abuf log;
    int status;
    const char *out;
};
struct cmd_runner cmd_recorder_runner(struct cmd_recorder *rec);

#endif
