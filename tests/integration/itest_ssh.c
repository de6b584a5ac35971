/* The SSH client against a real OpenSSH sshd started by this test on
 * 127.0.0.1 (own config, host key and authorized_keys in a temp directory).
 * Needs root (sshd privilege separation) and openssh-server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "error.h"
#include "ssh.h"
#include "sshkey.h"

#define SSHD "/usr/sbin/sshd"
#define SSH_KEYGEN "/usr/bin/ssh-keygen"
#define SFTP_SERVER "/usr/lib/openssh/sftp-server"
#define TIMEOUT_MS 5000

struct env {
    const char *skip_reason;
    char dir[64];
    char user[64];
    int port;
    pid_t sshd;
    char key[160], pub[160], known_hosts[160], config[160], log[160];
    char host_fp[SSHKEY_FINGERPRINT_MAX]; /* fingerprint of the first host key */
};

/* ---- helpers ------------------------------------------------------------------ */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static char *path_in(const struct env *e, const char *name)
{
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", e->dir, name) > 0);
    return p;
}

static char *read_file(const char *path, size_t *len)
{
    auto_fclose FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    assert_non_null(buf);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n, fp)) > 0) {
        n += r;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            assert_non_null(buf);
        }
    }
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static int run(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* "SHA256:..." of a .pub file according to ssh-keygen (independent of our code). */
static void keygen_fingerprint(const char *pub, char out[SSHKEY_FINGERPRINT_MAX])
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, SSH_KEYGEN " -l -E sha256 -f '%s'", pub);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[512] = "";
    assert_non_null(fgets(line, sizeof line, p));
    assert_int_equal(pclose(p), 0);
    char *start = strstr(line, "SHA256:");
    assert_non_null(start);
    size_t n = strcspn(start, " \n");
    assert_true(n < SSHKEY_FINGERPRINT_MAX);
    memcpy(out, start, n);
    out[n] = '\0';
}

static void make_host_key(const struct env *e, const char *name, const char *type)
{
    char cmd[320];
    snprintf(cmd, sizeof cmd, "rm -f '%s/%s' '%s/%s.pub'; " SSH_KEYGEN " -q -t %s -N '' -f '%s/%s'",
             e->dir, name, e->dir, name, type, e->dir, name);
    assert_int_equal(run(cmd), 0);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* A loopback socket that listens but never accepts: the kernel completes TCP
 * handshakes, nothing ever speaks SSH. */
static int silent_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 8), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static bool port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static void start_sshd(struct env *e, const char *hostkey_name)
{
    char cfg[2048];
    snprintf(cfg, sizeof cfg,
             "Port %d\nListenAddress 127.0.0.1\nHostKey %s/%s\nPidFile %s/sshd.pid\n"
             "AuthorizedKeysFile %s/authorized_keys\nUsePAM no\nStrictModes no\n"
             "PubkeyAuthentication yes\nPasswordAuthentication no\n"
             "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
             "AllowUsers %s\nSubsystem sftp " SFTP_SERVER "\n",
             e->port, e->dir, hostkey_name, e->dir, e->dir, e->user);
    write_file(e->config, cfg, strlen(cfg), 0600);
    assert_true(mkdir("/run/sshd", 0755) == 0 || errno == EEXIST);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive a crashed test */
        /* Sessions start in an empty home: the shell start-up files of whoever runs the tests
         * (a pyenv rehash in ~/.bashrc, say) must not write into the streams the tests check. */
        struct passwd *pw = getpwuid(geteuid());
        if (pw != NULL && unshare(CLONE_NEWNS) == 0 &&
            mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
            mount("tmpfs", pw->pw_dir, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700") < 0)
            _exit(125);
        int log = open(e->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        int null = open("/dev/null", O_RDONLY);
        if (log < 0 || null < 0)
            _exit(126);
        dup2(null, 0);
        dup2(log, 1);
        dup2(log, 2);
        execl(SSHD, SSHD, "-D", "-e", "-f", e->config, (char *)NULL);
        _exit(127);
    }
    e->sshd = pid;
    for (int i = 0; i < 100; i++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            e->sshd = 0;
            auto_free char *log = read_file(e->log, NULL);
            fail_msg("sshd exited: %s", log ? log : "(no log)");
        }
        if (port_open(e->port))
            return;
        sleep_ms(50);
    }
    fail_msg("sshd did not listen on port %d", e->port);
}

/* Sends sig to every process below root (sshd's per-connection processes and
 * the commands they run), found through /proc. */
static void signal_descendants(pid_t root, int sig)
{
    enum { MAXP = 8192 };
    static pid_t pids[MAXP], ppids[MAXP];
    size_t n = 0;
    auto_closedir DIR *d = opendir("/proc");
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < MAXP) {
        pid_t pid = (pid_t)atoi(de->d_name);
        if (pid <= 0)
            continue;
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        FILE *fp = fopen(path, "r");
        if (fp == NULL)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, fp);
        fclose(fp);
        buf[len] = '\0';
        char *rp = strrchr(buf, ')'); /* the command name may contain anything */
        int ppid = 0;
        if (rp == NULL || sscanf(rp + 1, " %*c %d", &ppid) != 1)
            continue;
        pids[n] = pid;
        ppids[n++] = ppid;
    }
    for (size_t i = 0; i < n; i++) {
        pid_t up = ppids[i];
        for (int hops = 0; hops < 32 && up > 1 && up != root; hops++) {
            size_t j = 0;
            while (j < n && pids[j] != up)
                j++;
            up = j < n ? ppids[j] : 0;
        }
        if (up == root)
            kill(pids[i], sig);
    }
}

static void stop_sshd(struct env *e)
{
    if (e->sshd <= 0)
        return;
    signal_descendants(e->sshd, SIGKILL); /* sessions left behind by failed tests */
    kill(e->sshd, SIGTERM);
    for (int i = 0; i < 60; i++) {
        if (waitpid(e->sshd, NULL, WNOHANG) == e->sshd) {
            e->sshd = 0;
            return;
        }
        sleep_ms(50);
    }
    kill(e->sshd, SIGKILL);
    waitpid(e->sshd, NULL, 0);
    e->sshd = 0;
}

static struct ssh_target target(const struct env *e)
{
    return (struct ssh_target){ .host = "127.0.0.1", .port = e->port, .user = e->user,
                                .key_path = e->key, .known_hosts_path = e->known_hosts,
                                .timeout_ms = TIMEOUT_MS };
}

static struct env *env_or_skip(void **state)
{
    struct env *e = *state;
    if (e->skip_reason != NULL) {
        print_message("skipped: %s\n", e->skip_reason);
        skip();
    }
    return e;
}

static struct ssh_conn *connect_ok(const struct env *e)
{
    struct ssh_target t = target(e);
    struct merr err = MERR_INIT;
    struct ssh_conn *c = NULL;
    if (ssh_connect(&t, &c, &err) < 0)
        fail_msg("ssh_connect: %s (%s)", err.msg, merr_code_name(err.code));
    return c;
}

/* ---- group setup ----------------------------------------------------------------- */

static int group_setup(void **state)
{
    struct env *e = calloc(1, sizeof *e);
    assert_non_null(e);
    *state = e;
    if (geteuid() != 0) {
        e->skip_reason = "needs root (sshd privilege separation)";
        return 0;
    }
    if (access(SSHD, X_OK) != 0 || access(SSH_KEYGEN, X_OK) != 0 ||
        access(SFTP_SERVER, X_OK) != 0) {
        e->skip_reason = "openssh-server/openssh-client not installed (scripts/install-deps)";
        return 0;
    }
    struct passwd *pw = getpwuid(geteuid());
    assert_non_null(pw);
    snprintf(e->user, sizeof e->user, "%s", pw->pw_name);
    snprintf(e->dir, sizeof e->dir, "/tmp/itest_ssh.XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    snprintf(e->key, sizeof e->key, "%s/id_ed25519", e->dir);
    snprintf(e->pub, sizeof e->pub, "%s/id_ed25519.pub", e->dir);
    snprintf(e->known_hosts, sizeof e->known_hosts, "%s/known_hosts", e->dir);
    snprintf(e->config, sizeof e->config, "%s/sshd_config", e->dir);
    snprintf(e->log, sizeof e->log, "%s/sshd.log", e->dir);

    struct merr err = MERR_INIT;
    assert_int_equal(sshkey_generate_ed25519(e->key, e->pub, "itest", &err), 0);
    size_t publen = 0;
    auto_free char *pub = read_file(e->pub, &publen);
    auto_free char *ak = path_in(e, "authorized_keys");
    write_file(ak, pub, publen, 0600);

    make_host_key(e, "hostkey1", "ed25519");
    auto_free char *hk1 = path_in(e, "hostkey1.pub");
    keygen_fingerprint(hk1, e->host_fp);
    e->port = free_port();
    start_sshd(e, "hostkey1");
    return 0;
}

static int group_teardown(void **state)
{
    struct env *e = *state;
    stop_sshd(e);
    if (e->dir[0] != '\0') {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", e->dir);
        (void)run(cmd);
    }
    free(e);
    return 0;
}

/* ---- connect, pinning, exec ---------------------------------------------------------- */

static void test_first_contact_pins_host_key(void **state)
{
    struct env *e = env_or_skip(state);
    assert_int_equal(access(e->known_hosts, F_OK), -1);

    auto_ssh_conn struct ssh_conn *c = connect_ok(e);
    assert_string_equal(ssh_conn_host_fingerprint(c), e->host_fp);

    struct stat st;
    assert_int_equal(stat(e->known_hosts, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    auto_free char *kh = read_file(e->known_hosts, NULL);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "[127.0.0.1]:%d ssh-ed25519 AAAA", e->port);
    assert_true(strncmp(kh, prefix, strlen(prefix)) == 0);

    struct ssh_target t = target(e);
    struct merr err = MERR_INIT;
    char fp[SSHKEY_FINGERPRINT_MAX];
    assert_int_equal(ssh_pinned_fingerprint(&t, fp, sizeof fp, &err), 0);
    assert_string_equal(fp, e->host_fp);

    auto_free char *out = NULL, *errout = NULL;
    size_t out_len = 0;
    int status = -1;
    assert_int_equal(ssh_exec(c, "uname -a", NULL, 0, &out, &out_len, &errout, NULL, &status, &err),
                     0);
    assert_int_equal(status, 0);
    assert_true(strncmp(out, "Linux ", 6) == 0);
    assert_int_equal(out_len, strlen(out));
    assert_string_equal(errout, "");

    /* second contact: the pin matches, the file is left alone */
    auto_ssh_conn struct ssh_conn *again = connect_ok(e);
    auto_free char *kh2 = read_file(e->known_hosts, NULL);
    assert_string_equal(kh, kh2);
}

static void test_exec_status_and_streams(void **state)
{
    struct env *e = env_or_skip(state);
    auto_ssh_conn struct ssh_conn *c = connect_ok(e);
    struct merr err = MERR_INIT;
    int status = -1;

    assert_int_equal(ssh_exec(c, "exit 7", NULL, 0, NULL, NULL, NULL, NULL, &status, &err), 0);
    assert_int_equal(status, 7);

    auto_free char *out = NULL, *errout = NULL;
    assert_int_equal(ssh_exec(c, "echo out; echo err >&2; exit 3", NULL, 0, &out, NULL, &errout,
                              NULL, &status, &err),
                     0);
    assert_string_equal(out, "out\n");
    assert_string_equal(errout, "err\n");
    assert_int_equal(status, 3);

    assert_int_equal(ssh_exec(c, "kill -KILL $$", NULL, 0, NULL, NULL, NULL, NULL, &status, &err),
                     0);
    assert_int_equal(status, 128 + SIGKILL);
}

static void test_exec_stdin_larger_than_window(void **state)
{
    struct env *e = env_or_skip(state);
    auto_ssh_conn struct ssh_conn *c = connect_ok(e);
    struct merr err = MERR_INIT;
    /* 5 MiB: more than libssh2's 2 MiB receive window, so input and output
     * must flow at the same time or this deadlocks. */
    size_t n = 5u << 20;
    auto_free unsigned char *in = malloc(n);
    assert_non_null(in);
    for (size_t i = 0; i < n; i++)
        in[i] = (unsigned char)(i * 131 + (i >> 12));
    auto_free char *out = NULL;
    size_t out_len = 0;
    int status = -1;
    assert_int_equal(ssh_exec(c, "cat", in, n, &out, &out_len, NULL, NULL, &status, &err), 0);
    assert_int_equal(status, 0);
    assert_int_equal(out_len, n);
    assert_memory_equal(out, in, n);

    /* a command that ignores its input still finishes */
    assert_int_equal(ssh_exec(c, "exit 0", in, n, NULL, NULL, NULL, NULL, &status, &err), 0);
    assert_int_equal(status, 0);
}

/* A command may run far longer than the per-operation timeout as long as the
 * server keeps answering keepalives. */
static void test_exec_outlives_operation_timeout(void **state)
{
    struct env *e = env_or_skip(state);
    struct ssh_target t = target(e);
    t.timeout_ms = 2000;
    struct merr err = MERR_INIT;
    auto_ssh_conn struct ssh_conn *c = NULL;
    assert_int_equal(ssh_connect(&t, &c, &err), 0);
    int status = -1;
    int64_t start = now_ms();
    assert_int_equal(ssh_exec(c, "sleep 7; exit 6", NULL, 0, NULL, NULL, NULL, NULL, &status, &err),
                     0);
    assert_int_equal(status, 6);
    assert_true(now_ms() - start >= 7000);
}

/* A server that stops answering in the middle of a command is detected. */
static void test_exec_detects_frozen_server(void **state)
{
    struct env *e = env_or_skip(state);
    struct ssh_target t = target(e);
    t.timeout_ms = 2000;
    struct merr err = MERR_INIT;
    auto_ssh_conn struct ssh_conn *c = NULL;
    assert_int_equal(ssh_connect(&t, &c, &err), 0);

    pid_t freezer = fork(); /* freezes the session once the command is running */
    assert_true(freezer >= 0);
    if (freezer == 0) {
        sleep_ms(1000);
        signal_descendants(e->sshd, SIGSTOP);
        _exit(0);
    }
    int status = -1;
    int64_t start = now_ms();
    int r = ssh_exec(c, "sleep 20", NULL, 0, NULL, NULL, NULL, NULL, &status, &err);
    int64_t elapsed = now_ms() - start;
    waitpid(freezer, NULL, 0);
    signal_descendants(e->sshd, SIGCONT);
    signal_descendants(e->sshd, SIGKILL);
    assert_int_equal(r, -1);
    assert_int_equal(err.code, MERR_TIMEOUT);
    assert_true(elapsed < 12000);
}

static void test_exec_capture_is_capped(void **state)
{
    struct env *e = env_or_skip(state);
    auto_ssh_conn struct ssh_conn *c = connect_ok(e);
    struct merr err = MERR_INIT;
    char *out = NULL;
    int status = -1;
    char cmd[64];
    snprintf(cmd, sizeof cmd, "head -c %u /dev/zero", SSH_EXEC_CAPTURE_MAX + 4096);
    assert_int_equal(ssh_exec(c, cmd, NULL, 0, &out, NULL, NULL, NULL, &status, &err), -1);
    assert_int_equal(err.code, MERR_PROTOCOL);
    assert_null(out);

    /* the connection is still usable afterwards */
    merr_clear(&err);
    assert_int_equal(ssh_exec(c, "exit 5", NULL, 0, NULL, NULL, NULL, NULL, &status, &err), 0);
    assert_int_equal(status, 5);
}

static void test_exec_stream_fds(void **state)
{
    struct env *e = env_or_skip(state);
    auto_ssh_conn struct ssh_conn *c = connect_ok(e);
    auto_free char *in_path = path_in(e, "stream.in");
    auto_free char *out_path = path_in(e, "stream.out");
    auto_free char *err_path = path_in(e, "stream.err");
    write_file(in_path, "line one\nline two\n", 18, 0600);
    auto_close int in = open(in_path, O_RDONLY | O_CLOEXEC);
    auto_close int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    auto_close int errfd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(in >= 0 && out >= 0 && errfd >= 0);
    struct merr err = MERR_INIT;
    int status = -1;
    assert_int_equal(ssh_exec_stream(c, "tac; echo oops >&2; exit 4", in, out, errfd, &status, &err),
                     0);
    assert_int_equal(status, 4);
    auto_free char *got_out = read_file(out_path, NULL);
    auto_free char *got_err = read_file(err_path, NULL);
    assert_string_equal(got_out, "line two\nline one\n");
    assert_string_equal(got_err, "oops\n");

    /* no stdin at all (-1): the command sees EOF at once */
    assert_int_equal(ssh_exec_stream(c, "cat; exit 2", -1, out, errfd, &status, &err), 0);
    assert_int_equal(status, 2);
}

/* ---- sftp -------------------------------------------------------------------------------- */

static void assert_file(const char *path, const char *content, size_t len, mode_t mode)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    if ((st.st_mode & 07777) != mode)
        fail_msg("'%s' has mode %04o, want %04o", path, st.st_mode & 07777, mode);
    size_t n = 0;
    auto_free char *got = read_file(path, &n);
    assert_int_equal(n, len);
    assert_memory_equal(got, content, len);
}

static void assert_no_temp_files(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "test -z \"$(find '%s' -name '*.tmp-*')\"", dir);
    assert_int_equal(run(cmd), 0);
}

static void test_sftp_files(void **state)
{
    struct env *e = env_or_skip(state);
    auto_ssh_conn struct ssh_conn *c = connect_ok(e);
    struct merr err = MERR_INIT;
    auto_free char *src = path_in(e, "upload.bin");
    auto_free char *rdir = path_in(e, "remote");
    auto_free char *rfile = path_in(e, "remote/file1");
    assert_int_equal(mkdir(rdir, 0755), 0);

    size_t n = 300000;
    auto_free char *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)(i * 7 + 3);
    write_file(src, data, n, 0751);
    assert_int_equal(ssh_upload(c, src, rfile, false, &err), 0);
    assert_file(rfile, data, n, 0751);

    /* replacing an existing file (SFTP v3 rename refuses; the fallback must not) */
    write_file(src, "second version\n", 15, 0600);
    assert_int_equal(ssh_upload(c, src, rfile, false, &err), 0);
    assert_file(rfile, "second version\n", 15, 0600);

    /* an existing directory as destination receives the file under its name */
    write_file(src, "into dir\n", 9, 0640);
    assert_int_equal(ssh_upload(c, src, rdir, false, &err), 0);
    auto_free char *indir = path_in(e, "remote/upload.bin");
    assert_file(indir, "into dir\n", 9, 0640);

    assert_int_equal(ssh_upload_buf(c, "buffer\n", 7, rfile, 0604, &err), 0);
    assert_file(rfile, "buffer\n", 7, 0604);
    assert_no_temp_files(rdir);

    auto_free char *dl = path_in(e, "downloaded");
    assert_int_equal(ssh_download(c, rfile, dl, false, &err), 0);
    assert_file(dl, "buffer\n", 7, 0604);

    merr_clear(&err);
    auto_free char *missing = path_in(e, "remote/nope");
    assert_int_equal(ssh_download(c, missing, dl, false, &err), -1);
    assert_int_equal(err.code, MERR_NOT_FOUND);
    merr_clear(&err);
    assert_int_equal(ssh_upload(c, rdir, missing, false, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
}

struct tree_entry {
    const char *path;
    mode_t mode;
    const char *content; /* NULL: directory */
};

static const struct tree_entry TREE[] = {
    { "", 0751, NULL },
    { "a.txt", 0640, "alpha\n" },
    { "sub", 0750, NULL },
    { "sub/b.sh", 0700, "#!/bin/sh\necho b\n" },
    { "sub/deeper", 0555, NULL }, /* read-only directory, still filled */
    { "sub/deeper/c", 0604, "c" },
    { "empty", 0711, NULL },
};

static void build_tree(const char *root)
{
    char p[512];
    /* create with permissive modes first, then tighten (deepest first) */
    for (size_t i = 0; i < sizeof TREE / sizeof TREE[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", root, TREE[i].path);
        if (TREE[i].content == NULL)
            assert_true(mkdir(p, 0755) == 0 || errno == EEXIST);
        else
            write_file(p, TREE[i].content, strlen(TREE[i].content), TREE[i].mode);
    }
    for (size_t i = sizeof TREE / sizeof TREE[0]; i-- > 0;) {
        snprintf(p, sizeof p, "%s/%s", root, TREE[i].path);
        assert_int_equal(chmod(p, TREE[i].mode), 0);
    }
}

static void assert_tree(const char *root)
{
    char p[512];
    for (size_t i = 0; i < sizeof TREE / sizeof TREE[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", root, TREE[i].path);
        if (TREE[i].content != NULL) {
            assert_file(p, TREE[i].content, strlen(TREE[i].content), TREE[i].mode);
            continue;
        }
        struct stat st;
        assert_int_equal(stat(p, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        if ((st.st_mode & 07777) != TREE[i].mode)
            fail_msg("'%s' has mode %04o, want %04o", p, st.st_mode & 07777, TREE[i].mode);
    }
}

static void test_sftp_directory_trees(void **state)
{
    struct env *e = env_or_skip(state);
    auto_ssh_conn struct ssh_conn *c = connect_ok(e);
    struct merr err = MERR_INIT;
    auto_free char *tree = path_in(e, "tree");
    auto_free char *rtree = path_in(e, "rtree");
    auto_free char *dtree = path_in(e, "dtree");
    auto_free char *into = path_in(e, "into");
    build_tree(tree);

    merr_clear(&err);
    assert_int_equal(ssh_upload(c, tree, rtree, false, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);

    assert_int_equal(ssh_upload(c, tree, rtree, true, &err), 0);
    assert_tree(rtree);
    assert_no_temp_files(rtree);

    assert_int_equal(ssh_download(c, rtree, dtree, true, &err), 0);
    assert_tree(dtree);
    assert_no_temp_files(dtree);

    /* an existing local directory receives the tree under its own name */
    assert_int_equal(mkdir(into, 0700), 0);
    assert_int_equal(ssh_download(c, rtree, into, true, &err), 0);
    auto_free char *nested = path_in(e, "into/rtree");
    assert_tree(nested);
}

/* ---- the system ssh with our known_hosts ------------------------------------------------------ */

static void test_external_ssh_uses_pinned_key(void **state)
{
    struct env *e = env_or_skip(state);
    if (access("/usr/bin/ssh", X_OK) != 0) {
        print_message("skipped: /usr/bin/ssh not installed\n");
        skip();
    }
    struct ssh_target t = target(e);
    struct merr err = MERR_INIT;
    char *const cmd[] = { "echo", "external-ok", NULL };
    auto_strv char **argv = ssh_external_argv(&t, false, cmd, &err);
    assert_non_null(argv);
    size_t n = 0;
    while (argv[n] != NULL)
        n++;
    /* BatchMode: any prompt (unknown host key, password) fails instead */
    const char **full = calloc(n + 3, sizeof *full);
    assert_non_null(full);
    full[0] = argv[0];
    full[1] = "-o";
    full[2] = "BatchMode=yes";
    for (size_t i = 1; i <= n; i++)
        full[i + 2] = argv[i];

    int pipefd[2];
    assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(pipefd[1], 1);
        execv("/usr/bin/ssh", (char *const *)full);
        _exit(127);
    }
    free(full);
    close(pipefd[1]);
    char buf[256] = "";
    size_t got = 0;
    ssize_t r;
    while (got < sizeof buf - 1 && (r = read(pipefd[0], buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)r;
    close(pipefd[0]);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_string_equal(buf, "external-ok\n");
}

/* ---- failures --------------------------------------------------------------------------------------- */

static void test_wrong_client_key_is_auth_error(void **state)
{
    struct env *e = env_or_skip(state);
    auto_free char *other = path_in(e, "other_key");
    auto_free char *other_pub = path_in(e, "other_key.pub");
    struct merr err = MERR_INIT;
    assert_int_equal(sshkey_generate_ed25519(other, other_pub, "stranger", &err), 0);
    struct ssh_target t = target(e);
    t.key_path = other;
    struct ssh_conn *c = NULL;
    assert_int_equal(ssh_connect(&t, &c, &err), -1);
    assert_int_equal(err.code, MERR_AUTH);
    assert_null(c);
}

static void test_loose_key_refused_before_any_traffic(void **state)
{
    struct env *e = env_or_skip(state);
    auto_free char *loose = path_in(e, "loose_key");
    size_t n = 0;
    auto_free char *key = read_file(e->key, &n);
    write_file(loose, key, n, 0644);

    int port = 0;
    auto_close int lfd = silent_listener(&port);
    struct ssh_target t = target(e);
    t.key_path = loose;
    t.port = port;
    struct merr err = MERR_INIT;
    struct ssh_conn *c = NULL;
    assert_int_equal(ssh_connect(&t, &c, &err), -1);
    assert_int_equal(err.code, MERR_PERM);
    /* nobody knocked */
    assert_int_equal(accept(lfd, NULL, NULL), -1);
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);

    merr_clear(&err);
    assert_int_equal(ssh_wait_ready(&t, 5000, 100, &err), -1);
    assert_int_equal(err.code, MERR_PERM);
}

static void test_closed_port_is_unreachable_quickly(void **state)
{
    struct env *e = env_or_skip(state);
    struct ssh_target t = target(e);
    t.port = free_port();
    struct merr err = MERR_INIT;
    struct ssh_conn *c = NULL;
    int64_t start = now_ms();
    assert_int_equal(ssh_connect(&t, &c, &err), -1);
    assert_int_equal(err.code, MERR_UNREACHABLE);
    assert_true(now_ms() - start < 1000);
}

static void test_silent_server_times_out(void **state)
{
    struct env *e = env_or_skip(state);
    int port = 0;
    auto_close int lfd = silent_listener(&port);
    struct ssh_target t = target(e);
    t.port = port;
    t.timeout_ms = 1000;
    struct merr err = MERR_INIT;
    struct ssh_conn *c = NULL;
    int64_t start = now_ms();
    assert_int_equal(ssh_connect(&t, &c, &err), -1);
    int64_t elapsed = now_ms() - start;
    assert_int_equal(err.code, MERR_TIMEOUT);
    /* libssh2 counts its timeout in whole seconds: allow for that */
    assert_true(elapsed >= 900 && elapsed < 3500);
}

static void test_wait_ready_is_bounded(void **state)
{
    struct env *e = env_or_skip(state);
    struct ssh_target t = target(e);
    struct merr err = MERR_INIT;
    assert_int_equal(ssh_wait_ready(&t, 10000, 200, &err), 0);

    t.port = free_port();
    int bound = 3000;
    int64_t start = now_ms();
    merr_clear(&err);
    assert_int_equal(ssh_wait_ready(&t, bound, 500, &err), -1);
    int64_t elapsed = now_ms() - start;
    assert_true(err.code == MERR_TIMEOUT || err.code == MERR_UNREACHABLE);
    assert_true(elapsed >= bound - 100 && elapsed < bound + 2000);

    /* a server that accepts but never answers: each try is cut to what is left */
    int port = 0;
    auto_close int lfd = silent_listener(&port);
    t.port = port;
    start = now_ms();
    merr_clear(&err);
    assert_int_equal(ssh_wait_ready(&t, bound, 500, &err), -1);
    elapsed = now_ms() - start;
    assert_true(err.code == MERR_TIMEOUT || err.code == MERR_UNREACHABLE);
    assert_true(elapsed < bound + 2000);
}

/* ---- interactive --------------------------------------------------------------------------------- */

static void test_interactive_without_tty(void **state)
{
    struct env *e = env_or_skip(state);
    int in[2], out[2];
    assert_int_equal(pipe2(in, O_CLOEXEC), 0);
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(in[1]); /* or cat never sees EOF */
        close(out[0]);
        dup2(in[0], 0);
        dup2(out[1], 1);
        struct ssh_target t = target(e);
        struct merr err = MERR_INIT;
        struct ssh_conn *c = NULL;
        int status = -1;
        if (ssh_connect(&t, &c, &err) < 0 || ssh_interactive(c, "cat; exit 3", &status, &err) < 0)
            _exit(100 + err.code);
        ssh_conn_free(c);
        _exit(status);
    }
    close(in[0]);
    close(out[1]);
    assert_int_equal(write(in[1], "piped\n", 6), 6);
    close(in[1]);
    char buf[64] = "";
    size_t got = 0;
    ssize_t r;
    while (got < sizeof buf - 1 && (r = read(out[0], buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)r;
    close(out[0]);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 3);
    assert_string_equal(buf, "piped\n");
}

/* Child side of the PTY test: its terminal is the pty slave. Exit codes: the
 * remote status, 90 if the terminal was not restored, 100+code on error. */
static void interactive_child(const struct env *e, int slave)
{
    setsid();
    ioctl(slave, TIOCSCTTY, 0); /* so that a size change on the master sends us SIGWINCH */
    dup2(slave, 0);
    dup2(slave, 1);
    struct termios before, after;
    if (tcgetattr(0, &before) < 0)
        _exit(91);
    struct ssh_target t = target(e);
    struct merr err = MERR_INIT;
    struct ssh_conn *c = NULL;
    int status = -1;
    if (ssh_connect(&t, &c, &err) < 0 ||
        ssh_interactive(c, "tty; stty size; sleep 2; stty size; exit 5", &status, &err) < 0)
        _exit(100 + err.code);
    ssh_conn_free(c);
    if (tcgetattr(0, &after) < 0 || before.c_lflag != after.c_lflag ||
        before.c_iflag != after.c_iflag || before.c_oflag != after.c_oflag)
        _exit(90);
    _exit(status);
}

static void test_interactive_with_pty(void **state)
{
    struct env *e = env_or_skip(state);
    int master = -1, slave = -1;
    struct winsize ws = { .ws_row = 30, .ws_col = 100 };
    assert_int_equal(openpty(&master, &slave, NULL, NULL, &ws), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(master);
        interactive_child(e, slave);
    }
    close(slave);

    char buf[4096] = "";
    size_t got = 0;
    bool resized = false;
    int64_t deadline = now_ms() + 20000;
    while (got < sizeof buf - 1 && now_ms() < deadline) {
        struct pollfd pfd = { .fd = master, .events = POLLIN };
        if (poll(&pfd, 1, 200) <= 0)
            continue;
        ssize_t r = read(master, buf + got, sizeof buf - 1 - got);
        if (r <= 0)
            break; /* EIO once the child has gone */
        got += (size_t)r;
        buf[got] = '\0';
        if (!resized && strstr(buf, "30 100") != NULL) {
            struct winsize bigger = { .ws_row = 40, .ws_col = 120 };
            assert_int_equal(ioctl(master, TIOCSWINSZ, &bigger), 0);
            resized = true;
        }
    }
    close(master);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st))
        fail_msg("child killed by signal %d, output: %s", WTERMSIG(st), buf);
    if (WEXITSTATUS(st) != 5)
        fail_msg("child exit %d, output: %s", WEXITSTATUS(st), buf);
    assert_non_null(strstr(buf, "/dev/pts/"));
    assert_non_null(strstr(buf, "30 100"));
    assert_non_null(strstr(buf, "40 120")); /* SIGWINCH reached the remote pty */
}

/* ---- host key change (last: restarts sshd) ------------------------------------------------------ */

static void assert_hostkey_refused(struct env *e, const char *new_pub)
{
    char new_fp[SSHKEY_FINGERPRINT_MAX];
    keygen_fingerprint(new_pub, new_fp);
    auto_free char *kh_before = read_file(e->known_hosts, NULL);
    struct ssh_target t = target(e);
    struct merr err = MERR_INIT;
    struct ssh_conn *c = NULL;
    assert_int_equal(ssh_connect(&t, &c, &err), -1);
    assert_int_equal(err.code, MERR_HOSTKEY);
    assert_null(c);
    /* the user must be able to compare both keys */
    assert_non_null(strstr(err.msg, e->host_fp));
    assert_non_null(strstr(err.msg, new_fp));
    auto_free char *kh_after = read_file(e->known_hosts, NULL);
    assert_string_equal(kh_before, kh_after);

    merr_clear(&err);
    assert_int_equal(ssh_wait_ready(&t, 10000, 200, &err), -1);
    assert_int_equal(err.code, MERR_HOSTKEY);
}

static void test_changed_host_key_is_refused(void **state)
{
    struct env *e = env_or_skip(state);
    stop_sshd(e);
    make_host_key(e, "hostkey2", "ed25519");
    start_sshd(e, "hostkey2");
    auto_free char *pub2 = path_in(e, "hostkey2.pub");
    assert_hostkey_refused(e, pub2);

    /* a server offering only another key type must not slip past the pin */
    stop_sshd(e);
    make_host_key(e, "hostkey3", "ecdsa");
    start_sshd(e, "hostkey3");
    auto_free char *pub3 = path_in(e, "hostkey3.pub");
    assert_hostkey_refused(e, pub3);

    /* the original key is still accepted */
    stop_sshd(e);
    start_sshd(e, "hostkey1");
    auto_ssh_conn struct ssh_conn *c = connect_ok(e);
    assert_string_equal(ssh_conn_host_fingerprint(c), e->host_fp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_contact_pins_host_key),
        cmocka_unit_test(test_exec_status_and_streams),
        cmocka_unit_test(test_exec_stdin_larger_than_window),
        cmocka_unit_test(test_exec_capture_is_capped),
        cmocka_unit_test(test_exec_outlives_operation_timeout),
        cmocka_unit_test(test_exec_detects_frozen_server),
        cmocka_unit_test(test_exec_stream_fds),
        cmocka_unit_test(test_sftp_files),
        cmocka_unit_test(test_sftp_directory_trees),
        cmocka_unit_test(test_external_ssh_uses_pinned_key),
        cmocka_unit_test(test_wrong_client_key_is_auth_error),
        cmocka_unit_test(test_loose_key_refused_before_any_traffic),
        cmocka_unit_test(test_closed_port_is_unreachable_quickly),
        cmocka_unit_test(test_silent_server_times_out),
        cmocka_unit_test(test_wait_ready_is_bounded),
        cmocka_unit_test(test_interactive_without_tty),
        cmocka_unit_test(test_interactive_with_pty),
        cmocka_unit_test(test_changed_host_key_is_refused),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
