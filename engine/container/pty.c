/* Terminals of a container: a devpts instance of its own, mounted by the engine at <dir>/pts and
 * bound at the container's /dev/pts, so the ptys the engine opens for `run -t` and `exec -t`
 * are the container's /dev/pts/N (as runc's console socket gives). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <termios.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "strv.h"
#include "manager-priv.h"

#define DEVPTS_MAGIC 0x1cd1

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

char *pty_devpts_path(const char *dir)
{
    return path_join(dir, "pts");
}

static bool is_devpts(const char *path)
{
    struct statfs sf;
    return statfs(path, &sf) == 0 && sf.f_type == DEVPTS_MAGIC;
}

int pty_devpts_ensure(const char *dir, struct merr *err)
{
    auto_free char *path = pty_devpts_path(dir);
    if (mkdir(path, 0755) < 0 && errno != EEXIST)
        return merr_set(err, MERR_IO, errno, "cannot create '%s'", path);
    if (is_devpts(path))
        return 0;
    if (mount("devpts", path, "devpts", MS_NOSUID | MS_NOEXEC,
              "newinstance,ptmxmode=0666,mode=0620,gid=5") < 0)
        return merr_set(err, MERR_IO, errno, "cannot mount a devpts instance on '%s'", path);
    return 0;
}

void pty_devpts_release(const char *dir)
{
    auto_free char *path = pty_devpts_path(dir);
    while (is_devpts(path) && umount2(path, MNT_DETACH) == 0)
        ;
    rmdir(path);
}

int pty_open(const char *dir, int *master, int *slave, struct merr *err)
{
    auto_free char *path = pty_devpts_path(dir);
    int mfd = -1;
    if (is_devpts(path)) {
        auto_free char *ptmx = path_join(path, "ptmx");
        mfd = open(ptmx, O_RDWR | O_NOCTTY | O_CLOEXEC);
    } else {
        mfd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC); /* no instance: the engine's own */
        if (mfd >= 0 && grantpt(mfd) < 0) {
            close(mfd);
            mfd = -1;
        }
    }
    if (mfd < 0 || unlockpt(mfd) < 0) {
        int e = errno;
        if (mfd >= 0)
            close(mfd);
        return merr_set(err, MERR_IO, e, "cannot allocate a pseudo-terminal");
    }
    int sfd = ioctl(mfd, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (sfd < 0) {
        char name[64];
        if (ptsname_r(mfd, name, sizeof name) == 0)
            sfd = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    }
    if (sfd < 0) {
        int e = errno;
        close(mfd);
        return merr_set(err, MERR_IO, e, "cannot open the pseudo-terminal's slave side");
    }
    *master = mfd;
    *slave = sfd;
    return 0;
}
