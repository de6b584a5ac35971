/* SFTP copies: files and trees, scp's destination rules, temp name + rename on the remote. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "ssh-priv.h"

#define CHUNK 32768
#define MAX_DEPTH 64

struct sftp {
    struct ssh_conn *c;
    LIBSSH2_SFTP *s;
};

static int sftp_fail(struct sftp *f, struct merr *err, const char *what, const char *path)
{
    unsigned long code = libssh2_sftp_last_error(f->s);
    enum merr_code mc = code == LIBSSH2_FX_NO_SUCH_FILE || code == LIBSSH2_FX_NO_SUCH_PATH
                            ? MERR_NOT_FOUND
                        : code == LIBSSH2_FX_PERMISSION_DENIED ? MERR_PERM
                                                               : MERR_REMOTE;
    if (code == 0)
        return ssh_fail(f->c, err, what);
    return merr_set(err, mc, 0, "%s '%s' on %s (SFTP error %lu)", what, path, f->c->where, code);
}

static int sftp_open_session(struct ssh_conn *c, struct sftp *f, struct merr *err)
{
    libssh2_session_set_blocking(c->session, 1);
    f->c = c;
    f->s = libssh2_sftp_init(c->session);
    if (f->s == NULL)
        return ssh_fail(c, err, "cannot start SFTP");
    return 0;
}

static void sftp_close_session(struct sftp *f)
{
    if (f->s != NULL)
        libssh2_sftp_shutdown(f->s);
    f->s = NULL;
}

/* 1 dir, 0 other, -1 missing. */
static int remote_kind(struct sftp *f, const char *path, LIBSSH2_SFTP_ATTRIBUTES *attrs)
{
    LIBSSH2_SFTP_ATTRIBUTES a;
    if (libssh2_sftp_stat(f->s, path, &a) != 0)
        return -1;
    if (attrs != NULL)
        *attrs = a;
    return (a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) && LIBSSH2_SFTP_S_ISDIR(a.permissions) ? 1 : 0;
}

static const char *base_name(const char *path)
{
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        len--;
    const char *p = path + len;
    while (p > path && p[-1] != '/')
        p--;
    return p;
}

static char *child_path(const char *dir, const char *name)
{
    size_t n = strcspn(name, "/");
    return xasprintf("%s%s%.*s", dir, dir[0] != '\0' && dir[strlen(dir) - 1] == '/' ? "" : "/",
                     (int)n, name);
}

static int put_stream(struct sftp *f, int fd, const void *data, size_t len, const char *remote,
                      int mode, struct merr *err)
{
    auto_free char *tmp = xasprintf("%s.machine-tmp-%d", remote, (int)getpid());
    LIBSSH2_SFTP_HANDLE *h =
        libssh2_sftp_open(f->s, tmp, LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_TRUNC,
                          mode & 07777);
    if (h == NULL)
        return sftp_fail(f, err, "cannot create", tmp);
    char buf[CHUNK];
    size_t off = 0;
    int rc = 0;
    for (;;) {
        const char *chunk;
        size_t n;
        if (fd >= 0) {
            ssize_t r = read(fd, buf, sizeof buf);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0) {
                rc = merr_set(err, MERR_IO, errno, "cannot read local file");
                break;
            }
            chunk = buf;
            n = (size_t)r;
        } else {
            chunk = (const char *)data + off;
            n = len - off > CHUNK ? CHUNK : len - off;
            off += n;
        }
        if (n == 0)
            break;
        while (n > 0) {
            ssize_t w = libssh2_sftp_write(h, chunk, n);
            if (w < 0) {
                rc = sftp_fail(f, err, "cannot write", tmp);
                break;
            }
            chunk += w;
            n -= (size_t)w;
        }
        if (rc < 0)
            break;
    }
    LIBSSH2_SFTP_ATTRIBUTES a = { .flags = LIBSSH2_SFTP_ATTR_PERMISSIONS,
                                  .permissions = (unsigned long)(mode & 07777) };
    if (rc == 0 && libssh2_sftp_fsetstat(h, &a) != 0)
        rc = sftp_fail(f, err, "cannot set the mode of", tmp);
    libssh2_sftp_close(h);
    if (rc == 0 && libssh2_sftp_rename_ex(f->s, tmp, (unsigned)strlen(tmp), remote,
                                          (unsigned)strlen(remote),
                                          LIBSSH2_SFTP_RENAME_OVERWRITE | LIBSSH2_SFTP_RENAME_ATOMIC |
                                              LIBSSH2_SFTP_RENAME_NATIVE) != 0) {
        /* Servers without posix-rename refuse to overwrite: remove, then rename. */
        libssh2_sftp_unlink(f->s, remote);
        if (libssh2_sftp_rename(f->s, tmp, remote) != 0)
            rc = sftp_fail(f, err, "cannot rename onto", remote);
    }
    if (rc < 0)
        libssh2_sftp_unlink(f->s, tmp);
    return rc;
}

static int upload_path(struct sftp *f, const char *local, const char *remote, bool recursive,
                       int depth, struct merr *err)
{
    struct stat st;
    if (lstat(local, &st) < 0)
        return merr_set(err, errno == ENOENT ? MERR_NOT_FOUND : MERR_IO, errno, "cannot read '%s'",
                        local);
    if (S_ISLNK(st.st_mode) && stat(local, &st) < 0)
        return merr_set(err, MERR_IO, errno, "cannot follow '%s'", local);
    if (S_ISDIR(st.st_mode)) {
        if (!recursive)
            return merr_set(err, MERR_INVALID, 0, "'%s' is a directory (use -r)", local);
        if (depth > MAX_DEPTH)
            return merr_set(err, MERR_INVALID, 0, "'%s' is nested too deeply", local);
        if (remote_kind(f, remote, NULL) != 1 &&
            libssh2_sftp_mkdir(f->s, remote, (long)(st.st_mode & 07777)) != 0)
            return sftp_fail(f, err, "cannot create directory", remote);
        auto_closedir DIR *d = opendir(local);
        if (d == NULL)
            return merr_set(err, MERR_IO, errno, "cannot read '%s'", local);
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            auto_free char *l = child_path(local, de->d_name);
            auto_free char *r = child_path(remote, de->d_name);
            if (upload_path(f, l, r, recursive, depth + 1, err) < 0)
                return -1;
        }
        LIBSSH2_SFTP_ATTRIBUTES a = { .flags = LIBSSH2_SFTP_ATTR_PERMISSIONS,
                                      .permissions = (unsigned long)(st.st_mode & 07777) };
        if (libssh2_sftp_setstat(f->s, remote, &a) != 0)
            return sftp_fail(f, err, "cannot set the mode of", remote);
        return 0;
    }
    if (!S_ISREG(st.st_mode))
        return merr_set(err, MERR_INVALID, 0, "'%s' is not a regular file", local);
    auto_close int fd = open(local, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return merr_set(err, MERR_IO, errno, "cannot open '%s'", local);
    return put_stream(f, fd, NULL, 0, remote, (int)st.st_mode, err);
}

int ssh_upload(struct ssh_conn *c, const char *local, const char *remote, bool recursive,
               struct merr *err)
{
    struct sftp f;
    if (sftp_open_session(c, &f, err) < 0)
        return -1;
    /* scp: copying into an existing directory puts the source inside it. */
    auto_free char *target = remote_kind(&f, remote, NULL) == 1 ? child_path(remote, base_name(local))
                                                                : xstrdup(remote);
    int rc = upload_path(&f, local, target, recursive, 0, err);
    sftp_close_session(&f);
    return rc;
}

int ssh_upload_buf(struct ssh_conn *c, const void *data, size_t len, const char *remote, int mode,
                   struct merr *err)
{
    struct sftp f;
    if (sftp_open_session(c, &f, err) < 0)
        return -1;
    int rc = put_stream(&f, -1, data, len, remote, mode, err);
    sftp_close_session(&f);
    return rc;
}

static int get_file(struct sftp *f, const char *remote, const char *local, int mode,
                    struct merr *err)
{
    LIBSSH2_SFTP_HANDLE *h = libssh2_sftp_open(f->s, remote, LIBSSH2_FXF_READ, 0);
    if (h == NULL)
        return sftp_fail(f, err, "cannot open", remote);
    auto_free char *tmp = xasprintf("%s.machine-tmp-%d", local, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode & 07777);
    if (fd < 0) {
        libssh2_sftp_close(h);
        return merr_set(err, MERR_IO, errno, "cannot create '%s'", tmp);
    }
    char buf[CHUNK];
    int rc = 0;
    for (;;) {
        ssize_t n = libssh2_sftp_read(h, buf, sizeof buf);
        if (n == 0)
            break;
        if (n < 0) {
            rc = sftp_fail(f, err, "cannot read", remote);
            break;
        }
        const char *p = buf;
        while (n > 0) {
            ssize_t w = write(fd, p, (size_t)n);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                rc = merr_set(err, MERR_IO, errno, "cannot write '%s'", tmp);
                break;
            }
            p += w;
            n -= w;
        }
        if (rc < 0)
            break;
    }
    libssh2_sftp_close(h);
    if (rc == 0 && (fchmod(fd, (mode_t)(mode & 07777)) < 0 || fsync(fd) < 0))
        rc = merr_set(err, MERR_IO, errno, "cannot write '%s'", tmp);
    close(fd);
    if (rc == 0 && rename(tmp, local) < 0)
        rc = merr_set(err, MERR_IO, errno, "cannot rename onto '%s'", local);
    if (rc < 0)
        unlink(tmp);
    return rc;
}

static int download_path(struct sftp *f, const char *remote, const char *local, bool recursive,
                         int depth, struct merr *err)
{
    LIBSSH2_SFTP_ATTRIBUTES a;
    int kind = remote_kind(f, remote, &a);
    if (kind < 0)
        return sftp_fail(f, err, "cannot find", remote);
    int mode = (a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) ? (int)(a.permissions & 07777) : 0644;
    if (kind == 0)
        return get_file(f, remote, local, mode, err);
    if (!recursive)
        return merr_set(err, MERR_INVALID, 0, "'%s' is a directory (use -r)", remote);
    if (depth > MAX_DEPTH)
        return merr_set(err, MERR_INVALID, 0, "'%s' is nested too deeply", remote);
    if (mkdir(local, 0700) < 0 && errno != EEXIST)
        return merr_set(err, MERR_IO, errno, "cannot create '%s'", local);
    LIBSSH2_SFTP_HANDLE *dh = libssh2_sftp_opendir(f->s, remote);
    if (dh == NULL)
        return sftp_fail(f, err, "cannot list", remote);
    char name[1024];
    int rc = 0;
    for (int n = 0; n < 1000000; n++) {
        LIBSSH2_SFTP_ATTRIBUTES ea;
        int len = libssh2_sftp_readdir(dh, name, sizeof name, &ea);
        if (len <= 0) {
            if (len < 0)
                rc = sftp_fail(f, err, "cannot list", remote);
            break;
        }
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strchr(name, '/') != NULL)
            continue;
        if ((ea.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) && LIBSSH2_SFTP_S_ISLNK(ea.permissions))
            continue; /* symlinks on the remote are not followed */
        auto_free char *r = child_path(remote, name);
        auto_free char *l = child_path(local, name);
        if (download_path(f, r, l, recursive, depth + 1, err) < 0) {
            rc = -1;
            break;
        }
    }
    libssh2_sftp_closedir(dh);
    if (rc == 0 && chmod(local, (mode_t)mode) < 0)
        rc = merr_set(err, MERR_IO, errno, "cannot set the mode of '%s'", local);
    return rc;
}

int ssh_download(struct ssh_conn *c, const char *remote, const char *local, bool recursive,
                 struct merr *err)
{
    struct sftp f;
    if (sftp_open_session(c, &f, err) < 0)
        return -1;
    struct stat st;
    auto_free char *target = stat(local, &st) == 0 && S_ISDIR(st.st_mode)
                                 ? child_path(local, base_name(remote))
                                 : xstrdup(local);
    int rc = download_path(&f, remote, target, recursive, 0, err);
    sftp_close_session(&f);
    return rc;
}
