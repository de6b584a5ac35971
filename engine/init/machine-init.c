/* machine-init: the tiny init `docker run --init` puts at PID 1 (mounted at /sbin/docker-init).
 * It starts the command as its child, forwards every signal it receives to it, reaps every
 * zombie reparented to it, and exits with the command's status (128 + signal when killed).
 * Static, no dependencies: it runs inside any image.
 *
 *     docker-init -- COMMAND [ARG...]
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_signal(int sig)
{
    (void)sig; /* a handler makes every signal deliverable to a namespace's PID 1 */
}

static pid_t start_child(char **argv, const sigset_t *old)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* its own process group, in the foreground of the terminal when there is one */
    setpgid(0, 0);
    if (isatty(STDIN_FILENO)) {
        signal(SIGTTOU, SIG_IGN);
        tcsetpgrp(STDIN_FILENO, getpgrp());
    }
    for (int s = 1; s < NSIG; s++)
        signal(s, SIG_DFL);
    sigprocmask(SIG_SETMASK, old, NULL);
    execvp(argv[0], argv);
    int e = errno;
    fprintf(stderr, "docker-init: cannot run '%s': %s\n", argv[0], strerror(e));
    _exit(e == ENOENT ? 127 : 126);
}

static int exit_code(int status)
{
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int main(int argc, char **argv)
{
    int first = 1;
    if (first < argc && strcmp(argv[first], "--") == 0)
        first++;
    if (first >= argc) {
        fprintf(stderr, "usage: docker-init -- COMMAND [ARG...]\n");
        return 2;
    }
    sigset_t all, old;
    sigfillset(&all);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGABRT);
    sigdelset(&all, SIGTRAP);
    sigdelset(&all, SIGSYS);
    sigprocmask(SIG_BLOCK, &all, &old);
    struct sigaction sa = { .sa_handler = on_signal };
    sigfillset(&sa.sa_mask);
    for (int s = 1; s < NSIG; s++)
        if (sigismember(&all, s) && s != SIGKILL && s != SIGSTOP)
            sigaction(s, &sa, NULL);

    pid_t child = start_child(argv + first, &old);
    if (child < 0) {
        fprintf(stderr, "docker-init: fork: %s\n", strerror(errno));
        return 1;
    }
    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(&all, &info);
        if (sig < 0)
            continue;
        if (sig != SIGCHLD) {
            /* SIGTTIN/SIGTTOU/SIGTSTP are terminal job control aimed at us: forward too */
            kill(child, sig);
            continue;
        }
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
            if (pid == child)
                return exit_code(status);
    }
}
