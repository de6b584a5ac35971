/* machine-engine: the container engine daemon. Runs in the foreground, logs
 * to stderr, stops cleanly on SIGTERM or SIGINT. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "daemon/daemon.h"

#ifndef NDEBUG
/* Test hook, compiled out of Release builds (the bundle): widens the window between listen()
 * and publishing the Unix socket so the socket-mode race test has something to probe. */
static unsigned publish_delay_from_env(void)
{
    const char *s = getenv("MACHINE_ENGINE_TEST_PUBLISH_DELAY_MS");
    if (s == NULL)
        return 0;
    long v = strtol(s, NULL, 10);
    return v > 0 && v <= 2000 ? (unsigned)v : 0;
}
#endif

/* A positive number from the environment, or 0 (the default) when unset or invalid. */
static unsigned env_unsigned(const char *name)
{
    const char *s = getenv(name);
    if (s == NULL || *s == '\0')
        return 0;
    char *end = NULL;
    unsigned long v = strtoul(s, &end, 10);
    if (*end != '\0' || v > 24UL * 3600 * 1000) {
        fprintf(stderr, "machine-engine: ignoring %s='%s': not a number of ms or connections\n",
                name, s);
        return 0;
    }
    return (unsigned)v;
}

/* prefix + cwd + "/" + the rest, for a relative path given on the command line: the engine
 * works from "/" (a relative name the engine builds by mistake then never lands in whatever
 * directory it was started from). */
static int absolutize(char **value, const char *prefix)
{
    size_t plen = strlen(prefix);
    if (*value == NULL || strncmp(*value, prefix, plen) != 0 || (*value)[plen] == '/' ||
        (*value)[plen] == '\0')
        return 0;
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd) == NULL)
        return -1;
    char *abs = NULL;
    if (asprintf(&abs, "%s%s/%s", prefix, cwd, *value + plen) < 0)
        return -1;
    free(*value);
    *value = abs;
    return 0;
}

static int enter_root_dir(struct engine_config *cfg)
{
    int r = absolutize(&cfg->pidfile, "") | absolutize(&cfg->exec_root, "") |
            absolutize(&cfg->tlscacert, "") | absolutize(&cfg->tlscert, "") |
            absolutize(&cfg->tlskey, "");
    for (char **h = cfg->hosts; h != NULL && *h != NULL; h++)
        r |= absolutize(h, "unix://");
    if (r != 0)
        return -1;
    return chdir("/");
}

/* Each API connection holds a descriptor: let the engine have as many as the hard limit
 * allows (up to 64 Ki), as dockerd's unit does, so the connection limits are what bounds
 * them rather than EMFILE. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    rlim_t want = rl.rlim_max < 65536 ? rl.rlim_max : 65536;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    struct engine_config cfg;
    struct merr err = MERR_INIT;
    if (engine_config_parse(&cfg, argc, argv, &err) < 0) {
        fprintf(stderr, "machine-engine: %s\nSee 'machine-engine --help'.\n", err.msg);
        return 2;
    }
    if (cfg.show_help) {
        fputs(engine_config_usage(), stdout);
        engine_config_release(&cfg);
        return 0;
    }
    if (cfg.show_version) {
        printf("machine-engine version %s, build %s\n", engine_version(), engine_git_commit());
        engine_config_release(&cfg);
        return 0;
    }
#ifndef NDEBUG
    cfg.unix_publish_delay_ms = publish_delay_from_env();
#endif
    cfg.api_max_conns_per_source = env_unsigned("MACHINE_ENGINE_API_MAX_CONNS_PER_SOURCE");
    cfg.api_handshake_timeout_ms = env_unsigned("MACHINE_ENGINE_API_HANDSHAKE_TIMEOUT_MS");
    cfg.api_header_timeout_ms = env_unsigned("MACHINE_ENGINE_API_HEADER_TIMEOUT_MS");
    cfg.api_idle_timeout_ms = env_unsigned("MACHINE_ENGINE_API_IDLE_TIMEOUT_MS");
    /* Relative paths never resolve against wherever the engine was started from. */
    if (enter_root_dir(&cfg) < 0) {
        fprintf(stderr, "machine-engine: cannot change to '/': %s\n", strerror(errno));
        engine_config_release(&cfg);
        return 1;
    }
    raise_fd_limit();
    struct mlog log = { .level = cfg.log_level, .out = stderr };

    /* Blocked before any thread starts, so only the signalfd sees them. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    signal(SIGPIPE, SIG_IGN);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
        fprintf(stderr, "machine-engine: cannot block signals: %s\n", strerror(errno));
        engine_config_release(&cfg);
        return 1;
    }
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) {
        fprintf(stderr, "machine-engine: cannot create a signalfd: %s\n", strerror(errno));
        engine_config_release(&cfg);
        return 1;
    }

    int status = 0;
    struct engine *e = engine_new(&cfg, &log, &err);
    if (e == NULL || engine_run(e, sfd, &err) < 0) {
        fprintf(stderr, "machine-engine: %s\n", err.msg);
        status = 1;
    } else {
        mlog_info(&log, "shutting down");
    }
    engine_free(e);
    close(sfd);
    engine_config_release(&cfg);
    return status;
}
