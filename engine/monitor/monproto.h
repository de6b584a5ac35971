/* machine-monitor's contract with the engine (pure: buffers in, buffers out; linked into both).
 *
 * The state file <container dir>/monitor.state (0600, written atomically by the monitor) says
 * what the engine needs after a restart: the monitor's and the container's pids, and once the
 * container is gone its exit code and FinishedAt. "key=value" lines:
 *   version=1 monitor_pid=N pid=N boot_id=ID status=running|exited exit_code=N finished_ns=N
 * (boot_id: the kernel's random boot id when the monitor started, so a restarted engine tells a
 * host reboot from a monitor that died). 
 *
 * The stream socket <container dir>/monitor.sock carries frames both ways: a 16-byte header
 * (type, stream, 2 zero bytes, payload length big-endian u32, time in unix ns big-endian u64)
 * and the payload. Monitor to engine: MON_FRAME_OUTPUT (stream 1 stdout, 2 stderr; the time
 * is the one its json-file record got), MON_FRAME_EXIT (the state file's text). Engine to
 * monitor: MON_FRAME_INPUT (bytes for the container's stdin), MON_FRAME_CLOSE_STDIN,
 * MON_FRAME_RESIZE (rows, cols as two big-endian u16). */
#ifndef MACHINE_ENGINE_MONPROTO_H
#define MACHINE_ENGINE_MONPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cleanup.h"

struct merr;

#define MON_STATE_FILE "monitor.state"
#define MON_SOCKET_FILE "monitor.sock"
#define MON_BINARY "machine-monitor"
/* The monitor's fds: 3 output, 4 stderr, 5 stdin hold, 6 listening socket, then 7-9 fds it
 * keeps open for the container's network and never touches (the port proxy's hold pipe, the
 * embedded DNS server's udp and tcp sockets: they outlive the engine with it). */
#define MON_FD_HOLD 7
#define MON_FD_HOLD_LAST 9

enum mon_status { MON_RUNNING = 1, MON_EXITED = 2 };

struct mon_state {
    pid_t monitor_pid;
    pid_t pid; /* the container's first process */
    enum mon_status status;
    int exit_code;       /* MON_EXITED: the exit status, or 128 + signal */
    int64_t finished_ns; /* MON_EXITED */
    char boot_id[40];    /* "" when unknown */
};

/* The file's text into buf (NUL-terminated); its length, or -1 when size is too small. */
int mon_state_format(const struct mon_state *st, char *buf, size_t size);
/* MERR_CORRUPT for a text that is not a state file (unknown version, missing pid or status,
 * an exited state without its exit code). Unknown keys are ignored. */
int mon_state_parse(const char *text, size_t len, struct mon_state *out,
                    struct merr *err) MUST_CHECK;

enum mon_frame_type {
    MON_FRAME_OUTPUT = 1,
    MON_FRAME_EXIT = 2,
    MON_FRAME_INPUT = 3,
    MON_FRAME_CLOSE_STDIN = 4,
    MON_FRAME_RESIZE = 5,
};
#define MON_FRAME_HDR 16
#define MON_FRAME_MAX (1u << 20) /* payload */

struct mon_frame {
    enum mon_frame_type type;
    int stream;
    uint32_t len;
    int64_t ns;
};
void mon_frame_pack(const struct mon_frame *f, unsigned char hdr[MON_FRAME_HDR]);
/* MERR_PROTOCOL for an unknown type, non-zero padding or a payload over MON_FRAME_MAX. */
int mon_frame_unpack(const unsigned char hdr[MON_FRAME_HDR], struct mon_frame *out,
                     struct merr *err) MUST_CHECK;

/* Reads exactly len bytes (a frame header or payload) from a blocking fd; false at end of file
 * or on an error. */
bool mon_read_exact(int fd, void *buf, size_t len);

/* One json-file record, as dockerd writes it and engine/container/logfile.c reads it:
 * {"log":"…","stream":"stdout","time":"RFC3339Nano"}\n — invalid UTF-8 becomes U+FFFD, as Go's
 * encoder. Returns the length written into buf, or -1 when size (see MON_LOGLINE_MAX) is too
 * small. */
#define MON_LOGLINE_MAX(len) ((len) * 6 + 96)
long mon_logline_format(int stream, const char *data, size_t len, int64_t unix_ns, char *buf,
                        size_t size);

/* What a restarted engine does with a container its previous run left running. */
enum mon_recovery {
    MON_RECOVER_LEGACY,  /* no state file (started without a monitor): stop it as before */
    MON_RECOVER_ADOPT,   /* the monitor answers: take the container over */
    MON_RECOVER_EXITED,  /* it ended while the engine was down: its exit code and FinishedAt */
    MON_RECOVER_LOST,    /* the monitor is gone without a word: kill what is left, exited */
    MON_RECOVER_REBOOTED, /* it was running when the host went down (another boot id) */
};
/* st: the parsed state file or NULL; monitor_answers: its socket accepted a connection;
 * boot_id: the host's now ("" or NULL when unknown). */
enum mon_recovery mon_recovery_decide(const struct mon_state *st, bool monitor_answers,
                                      const char *boot_id);

/* /proc/sys/kernel/random/boot_id's text into out (a uuid); -1 when it is not one. */
#define MON_BOOT_ID_FILE "/proc/sys/kernel/random/boot_id"
int mon_boot_id_parse(const char *text, size_t len, char out[40]);

#endif
