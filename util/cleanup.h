/* Cleanup attributes: variables released automatically when they leave scope.
 * Hand ownership out with steal_pointer() / steal_fd(). */
#ifndef MACHINE_CLEANUP_H
#define MACHINE_CLEANUP_H

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static inline void cleanup_freep(void *p)
{
    void **pp = p;
    free(*pp);
    *pp = NULL;
}

static inline void cleanup_closep(int *fd)
{
    if (*fd >= 0) {
        int saved = errno;
        close(*fd);
        errno = saved;
    }
    *fd = -1;
}

static inline void cleanup_fclosep(FILE **f)
{
    if (*f != NULL)
        fclose(*f);
    *f = NULL;
}

static inline void cleanup_closedirp(DIR **d)
{
    if (*d != NULL)
        closedir(*d);
    *d = NULL;
}

/* Frees a NULL-terminated array of strings. */
static inline void cleanup_strvp(char ***v)
{
    if (*v != NULL) {
        for (char **s = *v; *s != NULL; s++)
            free(*s);
        free(*v);
    }
    *v = NULL;
}

/* A child process that must not outlive the scope: killed (SIGKILL) and reaped unless the pid
 * was set to -1 after a successful wait. */
static inline void cleanup_pidp(pid_t *pid)
{
    if (*pid > 0) {
        int saved = errno;
        kill(*pid, SIGKILL);
        while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR)
            ;
        errno = saved;
    }
    *pid = -1;
}

#define auto_free __attribute__((cleanup(cleanup_freep)))
#define auto_close __attribute__((cleanup(cleanup_closep)))
#define auto_fclose __attribute__((cleanup(cleanup_fclosep)))
#define auto_closedir __attribute__((cleanup(cleanup_closedirp)))
#define auto_strv __attribute__((cleanup(cleanup_strvp)))
#define auto_pid __attribute__((cleanup(cleanup_pidp)))

static inline void *steal_pointer_impl(void *pp)
{
    void **p = pp;
    void *v = *p;
    *p = NULL;
    return v;
}
#define steal_pointer(pp) steal_pointer_impl(pp)

static inline int steal_fd(int *fd)
{
    int v = *fd;
    *fd = -1;
    return v;
}

/* Defines cleanup_<type>p for a type whose release function accepts NULL. */
#define DEFINE_CLEANUP(type, func)                                                                 \
    static inline void cleanup_##func##p(type **p)                                                 \
    {                                                                                              \
        if (*p != NULL)                                                                            \
            func(*p);                                                                              \
        *p = NULL;                                                                                 \
    }

#define MUST_CHECK __attribute__((warn_unused_result))

#endif
