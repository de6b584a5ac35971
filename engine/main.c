/* machine-engine: the container engine daemon. Runs in the foreground, logs
 * to stderr, stops cleanly on SIGTERM or SIGINT. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "daemon/daemon.h"

/* Test hook: widens the window between listen() and publishing the Unix
 * socket so the socket-mode race test has something to probe. */
static unsigned publish_delay_from_env(void)
{
    const char *s = getenv("MACHINE_ENGINE_TEST_PUBLISH_DELAY_MS");
    if (s == NULL)
        return 0;
    long v = strtol(s, NULL, 10);
    return v > 0 && v <= 2000 ? (unsigned)v : 0;
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
    cfg.unix_publish_delay_ms = publish_delay_from_env();
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
