/* The container's filesystem. The engine mounts the overlay rootfs on the
 * host; the cloned child, in its own mount namespace, mounts /proc, /dev,
 * /sys and the rest inside it and pivots into it.
 *
 * Mount targets inside the rootfs are resolved with openat2(RESOLVE_IN_ROOT)
 * and mounted on through /proc/self/fd/N, so a symlink planted in the image
 * can never send a mount to the host; /proc, /dev and /sys must not be
 * symlinks at all (RESOLVE_NO_SYMLINKS), like runc. */
#include "runtime-priv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

const char *const rt_default_masked_paths[] = {
    "/proc/asound",        "/proc/acpi",        "/proc/interrupts",   "/proc/kcore",
    "/proc/keys",          "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
    "/proc/sched_debug",   "/proc/scsi",        "/sys/firmware",      "/sys/devices/virtual/powercap",
    NULL,
};

const char *const rt_default_readonly_paths[] = {
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL,
};

/* ---- host side ------------------------------------------------------------ */

static bool option_safe(const char *path)
{
    return path != NULL && path[0] == '/' && strpbrk(path, ",:\n") == NULL;
}

int rt_rootfs_mount(const struct rt_spec *spec, struct merr *err)
{
    if (spec->upperdir != NULL && spec->workdir == NULL && spec->lowerdirs == NULL) {
        /* a directory that is the whole rootfs (the vfs store): a writable bind */
        if (!option_safe(spec->rootfs))
            return merr_set(err, MERR_INVALID, 0, "invalid rootfs path '%s'",
                            spec->rootfs != NULL ? spec->rootfs : "");
        if (mount(spec->upperdir, spec->rootfs, NULL, MS_BIND, NULL) < 0)
            return merr_set(err, MERR_IO, errno, "cannot bind '%s' to '%s'", spec->upperdir,
                            spec->rootfs);
        return 0;
    }
    if (spec->lowerdirs == NULL || spec->lowerdirs[0] == NULL)
        return merr_set(err, MERR_INVALID, 0, "container '%s' has no image layers", spec->id);
    if (!option_safe(spec->rootfs))
        return merr_set(err, MERR_INVALID, 0, "invalid rootfs path '%s'",
                        spec->rootfs != NULL ? spec->rootfs : "");
    if (spec->upperdir == NULL && spec->lowerdirs[1] == NULL) {
        /* a single read-only layer: a read-only bind is enough */
        if (mount(spec->lowerdirs[0], spec->rootfs, NULL, MS_BIND, NULL) < 0)
            return merr_set(err, MERR_IO, errno, "cannot bind '%s' to '%s'", spec->lowerdirs[0],
                            spec->rootfs);
        if (mount(NULL, spec->rootfs, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0) {
            int saved = errno;
            umount2(spec->rootfs, MNT_DETACH);
            return merr_set(err, MERR_IO, saved, "cannot make '%s' read-only", spec->rootfs);
        }
        return 0;
    }
    char opts[4096];
    size_t used = (size_t)snprintf(opts, sizeof opts, "lowerdir=");
    for (size_t i = 0; spec->lowerdirs[i] != NULL; i++) {
        if (!option_safe(spec->lowerdirs[i]))
            return merr_set(err, MERR_INVALID, 0, "invalid layer path '%s'", spec->lowerdirs[i]);
        used += (size_t)snprintf(opts + used, used < sizeof opts ? sizeof opts - used : 0, "%s%s",
                                 i > 0 ? ":" : "", spec->lowerdirs[i]);
    }
    if (spec->upperdir != NULL) {
        if (!option_safe(spec->upperdir) || !option_safe(spec->workdir))
            return merr_set(err, MERR_INVALID, 0, "invalid upper/work dir for '%s'", spec->id);
        used += (size_t)snprintf(opts + used, used < sizeof opts ? sizeof opts - used : 0,
                                 ",upperdir=%s,workdir=%s", spec->upperdir, spec->workdir);
    }
    if (used >= sizeof opts)
        return merr_set(err, MERR_UNSUPPORTED, 0, "too many layers for one overlay mount ('%s')",
                        spec->id);
    if (mount("overlay", spec->rootfs, "overlay", 0, opts) < 0)
        return merr_set(err, MERR_IO, errno, "cannot mount overlay at '%s'", spec->rootfs);
    return 0;
}

int rt_rootfs_umount(const char *rootfs, struct merr *err)
{
    auto_free char *mountinfo = NULL;
    if (rt_read_all("/proc/self/mountinfo", &mountinfo, err) < 0)
        return -1;
    if (!rt_mountinfo_has_mount_point(mountinfo, rootfs))
        return 0;
    if (umount2(rootfs, 0) == 0)
        return 0;
    if (errno == EINVAL || errno == ENOENT)
        return 0;
    /* still busy (a process holding a file open): detach it lazily */
    if (umount2(rootfs, MNT_DETACH) < 0 && errno != EINVAL)
        return merr_set(err, MERR_BUSY, errno, "cannot unmount '%s'", rootfs);
    return 0;
}

/* ---- child side ----------------------------------------------------------- */

static int openat2_in_root(int rootfd, const char *path, int flags, uint64_t resolve)
{
    struct open_how how = { .flags = (uint64_t)flags | O_CLOEXEC,
                            .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | resolve };
    while (*path == '/')
        path++;
    if (*path == '\0')
        path = ".";
    return (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how);
}

/* Makes every missing directory of rel (inside the rootfs), then opens it
 * O_PATH. With file set, the last component is created as an empty file. */
static int mkpath_in_root(int rootfd, const char *rel, bool file, uint64_t resolve,
                          struct merr *err)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", rel) >= (int)sizeof buf)
        return merr_set(err, MERR_INVALID, ENAMETOOLONG, "mount target '%s' too long", rel);
    int fd = openat2_in_root(rootfd, buf, O_PATH, resolve);
    if (fd >= 0 || errno != ENOENT) {
        if (fd < 0)
            return merr_set(err, errno == ELOOP ? MERR_INVALID : MERR_IO, errno,
                            "cannot open mount target '%s'", rel);
        return fd;
    }
    /* create component by component, each resolved inside the root */
    char *p = buf;
    while (*p == '/')
        p++;
    for (;;) {
        char *slash = strchr(p, '/');
        bool last = slash == NULL;
        if (!last)
            *slash = '\0';
        char *base = strrchr(buf, '/');
        const char *name = base != NULL ? base + 1 : buf;
        if (*name != '\0') {
            int dirfd;
            if (base != NULL && base != buf) {
                *base = '\0';
                dirfd = openat2_in_root(rootfd, buf, O_PATH | O_DIRECTORY, resolve);
                *base = '/';
            } else {
                dirfd = openat2_in_root(rootfd, "/", O_PATH | O_DIRECTORY, resolve);
            }
            if (dirfd < 0)
                return merr_set(err, errno == ELOOP ? MERR_INVALID : MERR_IO, errno,
                                "cannot open parent of mount target '%s'", rel);
            int r;
            if (last && file) {
                r = openat(dirfd, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC,
                           0644);
                if (r >= 0)
                    close(r);
            } else {
                r = mkdirat(dirfd, name, 0755);
            }
            int saved = errno;
            close(dirfd);
            if (r < 0 && saved != EEXIST)
                return merr_set(err, MERR_IO, saved, "cannot create mount target '%s'", rel);
        }
        if (last)
            break;
        *slash = '/';
        p = slash + 1;
    }
    fd = openat2_in_root(rootfd, rel, O_PATH, resolve);
    if (fd < 0)
        return merr_set(err, errno == ELOOP ? MERR_INVALID : MERR_IO, errno,
                        "cannot open mount target '%s'", rel);
    return fd;
}

static void fd_path(int fd, char *buf, size_t size)
{
    snprintf(buf, size, "/proc/self/fd/%d", fd);
}

/* Mounts fstype (or binds source, with MS_BIND) at rel inside the rootfs. */
static int mount_in_root(int rootfd, const char *source, const char *rel, const char *fstype,
                         unsigned long flags, const char *data, bool strict, struct merr *err)
{
    bool file = false;
    if ((flags & MS_BIND) && source != NULL) {
        struct stat st;
        if (stat(source, &st) < 0)
            return merr_set(err, errno == ENOENT ? MERR_NOT_FOUND : MERR_IO, errno,
                            "cannot stat mount source '%s'", source);
        file = !S_ISDIR(st.st_mode);
    }
    int fd = mkpath_in_root(rootfd, rel, file, strict ? RESOLVE_NO_SYMLINKS : 0, err);
    if (fd < 0) {
        if (err != NULL && err->sys_errno == ELOOP)
            return merr_set(err, MERR_INVALID, ELOOP,
                            "mount target '%s' in the rootfs is a symlink", rel);
        return -1;
    }
    char target[64];
    fd_path(fd, target, sizeof target);
    int r = mount(source, target, fstype, flags, data);
    int saved = errno;
    close(fd);
    if (r < 0)
        return merr_set(err, MERR_IO, saved, "cannot mount '%s' on '%s'",
                        source != NULL ? source : fstype, rel);
    if ((flags & MS_BIND) && (flags & MS_RDONLY)) {
        /* a bind ignores MS_RDONLY until remounted: reopen to reach the new mount */
        fd = openat2_in_root(rootfd, rel, O_PATH, 0);
        if (fd < 0)
            return merr_set(err, MERR_IO, errno, "cannot reopen '%s'", rel);
        fd_path(fd, target, sizeof target);
        r = mount(NULL, target, NULL,
                  MS_BIND | MS_REMOUNT | MS_RDONLY | (flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC)),
                  NULL);
        saved = errno;
        close(fd);
        if (r < 0)
            return merr_set(err, MERR_IO, saved, "cannot make '%s' read-only", rel);
    }
    return 0;
}

struct dev_node {
    const char *name;
    unsigned major, minor;
};
static const struct dev_node dev_nodes[] = {
    { "null", 1, 3 },    { "zero", 1, 5 }, { "full", 1, 7 },
    { "random", 1, 8 },  { "urandom", 1, 9 }, { "tty", 5, 0 },
};

/* Whether path is the character device open on fd 0 (same device number and filesystem). */
static bool is_fd0_device(const char *path, const struct stat *by_fd)
{
    struct stat by_path;
    return stat(path, &by_path) == 0 && S_ISCHR(by_path.st_mode) &&
           by_path.st_rdev == by_fd->st_rdev && by_path.st_dev == by_fd->st_dev;
}

/* Binds the pty on fd 0 to /dev/console. The fd was opened in the engine's mount namespace,
 * and a bind source must be in ours: the pty's path in the container's own devpts instance
 * (unix98 slaves are N from the device number), else the path the fd names, else our copy of
 * the host's /dev/pts, each checked to be the same device. The fd's own path alone is not
 * enough: an engine that runs chrooted, or whose devpts lies outside its root, sees a path
 * that does not lead back to the pty. */
static int bind_console(int rootfd, const struct rt_child *ch, struct merr *err)
{
    struct stat by_fd;
    if (fstat(0, &by_fd) < 0 || !S_ISCHR(by_fd.st_mode))
        return merr_set(err, MERR_INVALID, 0, "the container's stdin is not a tty");
    unsigned maj = major(by_fd.st_rdev), min = minor(by_fd.st_rdev);
    unsigned index = (maj - 136) * 256 + min;
    bool unix98 = maj >= 136 && maj <= 143;
    char path[PATH_MAX];
    if (unix98 && ch->spec->devpts != NULL &&
        (size_t)snprintf(path, sizeof path, "%s/%u", ch->spec->devpts, index) < sizeof path &&
        is_fd0_device(path, &by_fd))
        return mount_in_root(rootfd, path, "/dev/console", NULL, MS_BIND, NULL, true, err);
    ssize_t n = readlink("/proc/self/fd/0", path, sizeof path - 1);
    if (n > 0) {
        path[n] = '\0';
        if (is_fd0_device(path, &by_fd))
            return mount_in_root(rootfd, path, "/dev/console", NULL, MS_BIND, NULL, true, err);
    }
    if (unix98) {
        snprintf(path, sizeof path, "/dev/pts/%u", index);
        if (is_fd0_device(path, &by_fd))
            return mount_in_root(rootfd, path, "/dev/console", NULL, MS_BIND, NULL, true, err);
    }
    return merr_set(err, MERR_INVALID, 0,
                    "the container's tty (device %u:%u) is found under no path of the engine",
                    maj, min);
}

static int setup_dev(int rootfd, const struct rt_child *ch, struct merr *err)
{
    if (mount_in_root(rootfd, NULL, "/dev", "tmpfs", MS_NOSUID | MS_STRICTATIME,
                      "mode=755,size=65536k", true, err) < 0)
        return -1;
    int devfd = openat2_in_root(rootfd, "/dev", O_PATH | O_DIRECTORY, RESOLVE_NO_SYMLINKS);
    if (devfd < 0)
        return merr_set(err, MERR_IO, errno, "cannot open the container's /dev");
    int rc = 0;
    for (size_t i = 0; i < sizeof dev_nodes / sizeof dev_nodes[0] && rc == 0; i++) {
        const struct dev_node *d = &dev_nodes[i];
        if (mknodat(devfd, d->name, S_IFCHR | 0666, makedev(d->major, d->minor)) < 0)
            rc = merr_set(err, MERR_IO, errno, "cannot create /dev/%s", d->name);
    }
    static const char *const links[][2] = {
        { "pts/ptmx", "ptmx" },          { "/proc/self/fd", "fd" },
        { "/proc/self/fd/0", "stdin" },  { "/proc/self/fd/1", "stdout" },
        { "/proc/self/fd/2", "stderr" }, { "/proc/kcore", "core" },
    };
    for (size_t i = 0; i < sizeof links / sizeof links[0] && rc == 0; i++) {
        if (symlinkat(links[i][0], devfd, links[i][1]) < 0)
            rc = merr_set(err, MERR_IO, errno, "cannot create /dev/%s", links[i][1]);
    }
    close(devfd);
    if (rc < 0)
        return -1;
    const struct rt_spec *spec = ch->spec;
    char shm_opts[64];
    snprintf(shm_opts, sizeof shm_opts, "mode=1777,size=%llu",
             spec->shm_size > 0 ? (unsigned long long)spec->shm_size : 65536ULL * 1024);
    unsigned long shm_flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
    if ((spec->devpts != NULL
             ? mount_in_root(rootfd, spec->devpts, "/dev/pts", NULL, MS_BIND, NULL, true, err)
             : mount_in_root(rootfd, NULL, "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                             "newinstance,ptmxmode=0666,mode=0620,gid=5", true, err)) < 0 ||
        (!spec->no_shm && spec->shm_source == NULL &&
         mount_in_root(rootfd, NULL, "/dev/shm", "tmpfs", shm_flags, shm_opts, true, err) < 0) ||
        (spec->shm_source != NULL &&
         mount_in_root(rootfd, spec->shm_source, "/dev/shm", NULL, MS_BIND | shm_flags, NULL, true,
                       err) < 0) ||
        mount_in_root(rootfd, NULL, "/dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                      NULL, true, err) < 0)
        return -1;
    if (rt_child_make_devices(rootfd, spec, err) < 0)
        return -1;
    /* a tty container's console is its pty (fd 0, already installed) */
    if (ch->proc->tty && bind_console(rootfd, ch, err) < 0)
        return -1;
    return 0;
}

static int setup_cgroupfs(int rootfd, const struct rt_child *ch, bool privileged,
                          struct merr *err)
{
    unsigned long ro = privileged ? 0 : MS_RDONLY;
    unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
    if (ch->cg_mode == RT_CGROUP_V2) /* we are in a fresh cgroup namespace */
        return mount_in_root(rootfd, NULL, "/sys/fs/cgroup", "cgroup2", flags | ro, NULL, true,
                             err);
    if (mount_in_root(rootfd, NULL, "/sys/fs/cgroup", "tmpfs", flags, "mode=755", true, err) < 0)
        return -1;
    for (size_t i = 0; i < ch->cg->n_dirs; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "/sys/fs/cgroup/%s", ch->cg->names[i]);
        if (mount_in_root(rootfd, ch->cg->dirs[i], rel, NULL, MS_BIND | flags | ro, NULL, true,
                          err) < 0)
            return -1;
    }
    if (!privileged) {
        int fd = openat2_in_root(rootfd, "/sys/fs/cgroup", O_PATH, RESOLVE_NO_SYMLINKS);
        if (fd < 0)
            return merr_set(err, MERR_IO, errno, "cannot reopen /sys/fs/cgroup");
        char target[64];
        fd_path(fd, target, sizeof target);
        int r = mount(NULL, target, NULL, MS_REMOUNT | MS_RDONLY | flags, "mode=755");
        int saved = errno;
        close(fd);
        if (r < 0)
            return merr_set(err, MERR_IO, saved, "cannot make /sys/fs/cgroup read-only");
    }
    return 0;
}

static int mask_paths(const char *const *paths, struct merr *err)
{
    for (size_t i = 0; paths != NULL && paths[i] != NULL; i++) {
        struct stat st;
        if (lstat(paths[i], &st) < 0) {
            if (errno == ENOENT)
                continue;
            return merr_set(err, MERR_IO, errno, "cannot stat '%s'", paths[i]);
        }
        int r = S_ISDIR(st.st_mode)
                    ? mount("tmpfs", paths[i], "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                            "size=0")
                    : mount("/dev/null", paths[i], NULL, MS_BIND, NULL);
        if (r < 0 && errno != ENOENT)
            return merr_set(err, MERR_IO, errno, "cannot mask '%s'", paths[i]);
    }
    return 0;
}

static int readonly_paths(const char *const *paths, struct merr *err)
{
    for (size_t i = 0; paths != NULL && paths[i] != NULL; i++) {
        if (mount(paths[i], paths[i], NULL, MS_BIND | MS_REC, NULL) < 0) {
            if (errno == ENOENT)
                continue;
            return merr_set(err, MERR_IO, errno, "cannot bind '%s'", paths[i]);
        }
        struct statvfs sv;
        unsigned long keep = 0;
        if (statvfs(paths[i], &sv) == 0)
            keep = sv.f_flag & (ST_NOSUID | ST_NODEV | ST_NOEXEC);
        if (mount(NULL, paths[i], NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | keep, NULL) < 0)
            return merr_set(err, MERR_IO, errno, "cannot make '%s' read-only", paths[i]);
    }
    return 0;
}

static int pivot(int rootfd, struct merr *err)
{
    if (fchdir(rootfd) < 0)
        return merr_set(err, MERR_IO, errno, "cannot enter the rootfs");
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        return merr_set(err, MERR_IO, errno, "cannot pivot_root into the rootfs");
    /* the old root is stacked under the new one at "/": detach it without
     * letting the unmount propagate back to the host */
    if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
        return merr_set(err, MERR_IO, errno, "cannot make the old root a slave");
    if (umount2(".", MNT_DETACH) < 0)
        return merr_set(err, MERR_IO, errno, "cannot detach the old root");
    if (chdir("/") < 0)
        return merr_set(err, MERR_IO, errno, "cannot enter the new root");
    return 0;
}

static int mount_before_pivot(int rootfd, const struct rt_child *ch, struct merr *err)
{
    const struct rt_spec *spec = ch->spec;
    bool priv = ch->proc->privileged;
    unsigned long common = MS_NOSUID | MS_NODEV | MS_NOEXEC;
    if (mount_in_root(rootfd, NULL, "/proc", "proc", common, NULL, true, err) < 0 ||
        setup_dev(rootfd, ch, err) < 0 ||
        mount_in_root(rootfd, NULL, "/sys", "sysfs", common | (priv ? 0 : MS_RDONLY), NULL, true,
                      err) < 0 ||
        setup_cgroupfs(rootfd, ch, priv, err) < 0)
        return -1;
    for (size_t i = 0; i < spec->n_mounts; i++) {
        const struct rt_bind_mount *m = &spec->mounts[i];
        if (m->source == NULL || m->destination == NULL || m->destination[0] != '/')
            return merr_set(err, MERR_INVALID, 0, "invalid bind mount %zu", i);
        /* destinations resolve inside the rootfs (RESOLVE_IN_ROOT): an image symlink cannot
         * send a mount outside it */
        if (m->fstype != NULL) {
            unsigned long f = (m->flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME |
                                           MS_SYNCHRONOUS | MS_RDONLY)) |
                              (m->readonly ? MS_RDONLY : 0);
            if (mount_in_root(rootfd, m->source, m->destination, m->fstype, f, m->data, false,
                              err) < 0)
                return -1;
            continue;
        }
        if (mount_in_root(rootfd, m->source, m->destination, NULL,
                          MS_BIND | MS_REC | (m->readonly ? MS_RDONLY : 0), NULL, false, err) < 0)
            return -1;
    }
    return 0;
}

int rt_child_mount(const struct rt_child *ch, struct merr *err)
{
    /* nothing we mount from here on may propagate to the host */
    if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) < 0)
        return merr_set(err, MERR_IO, errno, "cannot make / a slave mount");
    int rootfd = open(ch->spec->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return merr_set(err, MERR_IO, errno, "cannot open rootfs '%s'", ch->spec->rootfs);
    int r = mount_before_pivot(rootfd, ch, err);
    if (r == 0)
        r = pivot(rootfd, err);
    close(rootfd);
    if (r < 0)
        return -1;
    if (rt_child_sysctls(ch->spec, err) < 0)
        return -1;
    if (!ch->proc->privileged &&
        (mask_paths(ch->masked, err) < 0 || readonly_paths(ch->readonly, err) < 0))
        return -1;
    if (ch->spec->readonly_rootfs &&
        mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0)
        return merr_set(err, MERR_IO, errno, "cannot make the rootfs read-only");
    return 0;
}
