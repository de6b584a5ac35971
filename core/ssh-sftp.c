/* File copies over SFTP. Writes never expose a half-written destination: the
 * data goes to a temp name in the destination directory, which is then renamed
 * over the destination (locally and remotely). */
#include "ssh-priv.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

#define COPY_CHUNK 32768
#define TREE_DEPTH_MAX 32
#define SFTP_NAME_MAX 1024

static int sftp_get(struct ssh_conn *c, LIBSSH2_SFTP **out, struct merr *err)
{
    libssh2_session_set_blocking(c->session, 1);
    if (c->sftp == NULL) {
        c->sftp = libssh2_sftp_init(c->session);
        if (c->sftp == NULL)
            return ssh_fail(c, libssh2_session_last_errno(c->session), err,
                            "cannot start sftp on '%s'", c->host);
    }
    *out = c->sftp;
    return 0;
}

static bool sftp_missing(struct ssh_conn *c, int rc)
{
    if (rc != LIBSSH2_ERROR_SFTP_PROTOCOL)
        return false;
    unsigned long st = libssh2_sftp_last_error(c->sftp);
    return st == LIBSSH2_FX_NO_SUCH_FILE || st == LIBSSH2_FX_NO_SUCH_PATH;
}

/* Stats path following symlinks; *exists false when it does not exist. */
static int remote_stat(struct ssh_conn *c, const char *path, LIBSSH2_SFTP_ATTRIBUTES *attrs,
                       bool *exists, struct merr *err)
{
    LIBSSH2_SFTP *sftp;
    if (sftp_get(c, &sftp, err) < 0)
        return -1;
    memset(attrs, 0, sizeof *attrs);
    int rc = libssh2_sftp_stat_ex(sftp, path, (unsigned)strlen(path), LIBSSH2_SFTP_STAT, attrs);
    if (rc == 0) {
        *exists = true;
        return 0;
    }
    if (sftp_missing(c, rc)) {
        *exists = false;
        return 0;
    }
    return ssh_fail(c, rc, err, "cannot stat '%s' on '%s'", path, c->host);
}

static bool attrs_is_dir(const LIBSSH2_SFTP_ATTRIBUTES *a)
{
    return (a->flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) && LIBSSH2_SFTP_S_ISDIR(a->permissions);
}

static bool attrs_is_reg(const LIBSSH2_SFTP_ATTRIBUTES *a)
{
    return (a->flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) && LIBSSH2_SFTP_S_ISREG(a->permissions);
}

static int attrs_mode(const LIBSSH2_SFTP_ATTRIBUTES *a, int fallback)
{
    return (a->flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) ? (int)(a->permissions & 07777) : fallback;
}

/* "dir/.base.tmp-<random>" next to path. */
static char *sibling_temp_name(const char *path)
{
    uint32_t rnd[2] = { 0, 0 };
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        return NULL;
    const char *slash = strrchr(path, '/');
    int dirlen = slash != NULL ? (int)(slash - path + 1) : 0;
    char *out = NULL;
    if (asprintf(&out, "%.*s.%s.tmp-%08x%08x", dirlen, path, path + dirlen, rnd[0], rnd[1]) < 0)
        return NULL;
    return out;
}

static char *path_join(const char *dir, const char *name)
{
    char *out = NULL;
    size_t n = strlen(dir);
    bool slash = n > 0 && dir[n - 1] == '/';
    if (asprintf(&out, "%s%s%s", dir, slash ? "" : "/", name) < 0)
        return NULL;
    return out;
}

/* The last path component, ignoring trailing slashes ("a/b/" -> "b"). */
static char *path_base(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    size_t start = n;
    while (start > 0 && path[start - 1] != '/')
        start--;
    return strndup(path + start, n - start);
}

static char *shell_quote(const char *s)
{
    size_t n = 3;
    for (const char *p = s; *p; p++)
        n += *p == '\'' ? 4 : 1;
    char *out = malloc(n);
    if (out == NULL)
        return NULL;
    char *o = out;
    *o++ = '\'';
    for (const char *p = s; *p; p++) {
        if (*p == '\'') {
            memcpy(o, "'\\''", 4);
            o += 4;
        } else {
            *o++ = *p;
        }
    }
    *o++ = '\'';
    *o = '\0';
    return out;
}

static void remote_unlink_quiet(struct ssh_conn *c, const char *path)
{
    if (c->sftp != NULL)
        (void)libssh2_sftp_unlink_ex(c->sftp, path, (unsigned)strlen(path));
}

/* Renames tmp over dst. OpenSSH's sftp-server speaks SFTP v3, whose RENAME
 * refuses an existing target, and libssh2 1.10 has no posix-rename@openssh.com;
 * so an existing target is replaced with an atomic `mv -f` on the host. */
static int remote_rename_over(struct ssh_conn *c, const char *tmp, const char *dst,
                              struct merr *err)
{
    int rc = libssh2_sftp_rename_ex(c->sftp, tmp, (unsigned)strlen(tmp), dst, (unsigned)strlen(dst),
                                    LIBSSH2_SFTP_RENAME_OVERWRITE | LIBSSH2_SFTP_RENAME_ATOMIC |
                                        LIBSSH2_SFTP_RENAME_NATIVE);
    if (rc == 0)
        return 0;
    if (rc != LIBSSH2_ERROR_SFTP_PROTOCOL) {
        ssh_fail(c, rc, err, "cannot rename '%s' to '%s' on '%s'", tmp, dst, c->host);
        remote_unlink_quiet(c, tmp);
        return -1;
    }
    auto_free char *qtmp = shell_quote(tmp);
    auto_free char *qdst = shell_quote(dst);
    auto_free char *cmd = NULL;
    if (qtmp == NULL || qdst == NULL || asprintf(&cmd, "mv -f -- %s %s", qtmp, qdst) < 0) {
        cmd = NULL;
        remote_unlink_quiet(c, tmp);
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot rename '%s'", tmp);
    }
    auto_free char *errout = NULL;
    int status = -1;
    if (ssh_exec(c, cmd, NULL, 0, NULL, NULL, &errout, NULL, &status, err) < 0) {
        remote_unlink_quiet(c, tmp);
        return -1;
    }
    if (status != 0) {
        remote_unlink_quiet(c, tmp);
        size_t n = strlen(errout);
        while (n > 0 && errout[n - 1] == '\n')
            errout[--n] = '\0';
        return merr_set(err, MERR_REMOTE, 0, "cannot rename '%s' to '%s' on '%s': %s", tmp, dst,
                        c->host, errout);
    }
    return 0;
}

/* Source of the bytes for a remote write: a local fd or a buffer. */
struct upload_src {
    int fd;
    const char *data;
    size_t len, off;
};

static ssize_t src_read(struct upload_src *s, char *buf, size_t n)
{
    if (s->fd >= 0) {
        ssize_t r;
        do
            r = read(s->fd, buf, n);
        while (r < 0 && errno == EINTR);
        return r;
    }
    size_t left = s->len - s->off;
    if (n > left)
        n = left;
    memcpy(buf, s->data + s->off, n);
    s->off += n;
    return (ssize_t)n;
}

static int write_handle(struct ssh_conn *c, LIBSSH2_SFTP_HANDLE *h, struct upload_src *src,
                        const char *tmp, int mode, struct merr *err)
{
    auto_free char *buf = malloc(COPY_CHUNK);
    if (buf == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot upload");
    for (;;) {
        ssize_t n = src_read(src, buf, COPY_CHUNK);
        if (n < 0)
            return merr_set(err, MERR_IO, errno, "cannot read local file");
        if (n == 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = libssh2_sftp_write(h, buf + off, (size_t)(n - off));
            if (w < 0)
                return ssh_fail(c, (int)w, err, "cannot write '%s' on '%s'", tmp, c->host);
            off += w;
        }
    }
    LIBSSH2_SFTP_ATTRIBUTES attrs = { .flags = LIBSSH2_SFTP_ATTR_PERMISSIONS,
                                      .permissions = (unsigned long)mode & 07777 };
    int rc = libssh2_sftp_fsetstat(h, &attrs);
    if (rc < 0)
        return ssh_fail(c, rc, err, "cannot set mode of '%s' on '%s'", tmp, c->host);
    (void)libssh2_sftp_fsync(h); /* fsync@openssh.com; older servers lack it */
    return 0;
}

/* Writes src to remote via a temp name, then renames it into place. */
static int remote_write(struct ssh_conn *c, struct upload_src *src, const char *remote, int mode,
                        struct merr *err)
{
    LIBSSH2_SFTP *sftp;
    if (sftp_get(c, &sftp, err) < 0)
        return -1;
    auto_free char *tmp = sibling_temp_name(remote);
    if (tmp == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot upload to '%s'", remote);
    LIBSSH2_SFTP_HANDLE *h = libssh2_sftp_open_ex(
        sftp, tmp, (unsigned)strlen(tmp),
        LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_EXCL | LIBSSH2_FXF_TRUNC, 0600,
        LIBSSH2_SFTP_OPENFILE);
    if (h == NULL)
        return ssh_fail(c, libssh2_session_last_errno(c->session), err,
                        "cannot create '%s' on '%s'", tmp, c->host);
    int r = write_handle(c, h, src, tmp, mode, err);
    int rc = libssh2_sftp_close_handle(h);
    if (r == 0 && rc < 0)
        r = ssh_fail(c, rc, err, "cannot close '%s' on '%s'", tmp, c->host);
    if (r < 0) {
        remote_unlink_quiet(c, tmp);
        return -1;
    }
    return remote_rename_over(c, tmp, remote, err);
}

int ssh_upload_buf(struct ssh_conn *c, const void *data, size_t len, const char *remote, int mode,
                   struct merr *err)
{
    if (c == NULL || remote == NULL || (data == NULL && len > 0) || mode < 0 || mode > 07777)
        return merr_set(err, MERR_INVALID, 0, "invalid ssh_upload_buf arguments");
    struct upload_src src = { .fd = -1, .data = data, .len = len };
    if (remote_write(c, &src, remote, mode, err) < 0)
        return merr_prefix(err, "cannot upload to '%s'", remote);
    return 0;
}

static int upload_file(struct ssh_conn *c, const char *local, const char *remote, int mode,
                       struct merr *err)
{
    auto_close int fd = open(local, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return merr_set(err, errno == ENOENT ? MERR_NOT_FOUND : MERR_IO, errno,
                        "cannot open '%s'", local);
    struct upload_src src = { .fd = fd };
    return remote_write(c, &src, remote, mode, err);
}

static int remote_mkdir(struct ssh_conn *c, const char *path, struct merr *err)
{
    int rc = libssh2_sftp_mkdir_ex(c->sftp, path, (unsigned)strlen(path), 0700);
    if (rc == 0)
        return 0;
    LIBSSH2_SFTP_ATTRIBUTES a;
    bool exists = false;
    struct merr ignored = MERR_INIT;
    if (remote_stat(c, path, &a, &exists, &ignored) == 0 && exists && attrs_is_dir(&a))
        return 0;
    return ssh_fail(c, rc, err, "cannot create directory '%s' on '%s'", path, c->host);
}

static int remote_chmod(struct ssh_conn *c, const char *path, int mode, struct merr *err)
{
    LIBSSH2_SFTP_ATTRIBUTES a = { .flags = LIBSSH2_SFTP_ATTR_PERMISSIONS,
                                  .permissions = (unsigned long)mode & 07777 };
    int rc = libssh2_sftp_stat_ex(c->sftp, path, (unsigned)strlen(path), LIBSSH2_SFTP_SETSTAT, &a);
    if (rc < 0)
        return ssh_fail(c, rc, err, "cannot set mode of '%s' on '%s'", path, c->host);
    return 0;
}

/* Directories are created 0700 and get their own mode once filled, so that a
 * read-only directory can still be populated. */
static int upload_tree(struct ssh_conn *c, const char *local, const char *remote, int mode,
                       int depth, struct merr *err)
{
    if (depth > TREE_DEPTH_MAX)
        return merr_set(err, MERR_INVALID, 0, "'%s' is nested too deeply (symlink loop?)", local);
    if (remote_mkdir(c, remote, err) < 0)
        return -1;
    auto_closedir DIR *d = opendir(local);
    if (d == NULL)
        return merr_set(err, MERR_IO, errno, "cannot open directory '%s'", local);
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (de == NULL) {
            if (errno != 0)
                return merr_set(err, MERR_IO, errno, "cannot read directory '%s'", local);
            break;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        auto_free char *lpath = path_join(local, de->d_name);
        auto_free char *rpath = path_join(remote, de->d_name);
        if (lpath == NULL || rpath == NULL)
            return merr_set(err, MERR_NOMEM, ENOMEM, "cannot upload '%s'", local);
        struct stat st;
        if (stat(lpath, &st) < 0)
            return merr_set(err, MERR_IO, errno, "cannot stat '%s'", lpath);
        int r = 0;
        if (S_ISDIR(st.st_mode))
            r = upload_tree(c, lpath, rpath, (int)(st.st_mode & 07777), depth + 1, err);
        else if (S_ISREG(st.st_mode))
            r = upload_file(c, lpath, rpath, (int)(st.st_mode & 07777), err);
        /* sockets, fifos and devices are not copied, as with scp */
        if (r < 0)
            return -1;
    }
    return remote_chmod(c, remote, mode, err);
}

int ssh_upload(struct ssh_conn *c, const char *local, const char *remote, bool recursive,
               struct merr *err)
{
    if (c == NULL || local == NULL || remote == NULL)
        return merr_set(err, MERR_INVALID, 0, "invalid ssh_upload arguments");
    struct stat st;
    if (stat(local, &st) < 0)
        return merr_set(err, errno == ENOENT ? MERR_NOT_FOUND : MERR_IO, errno,
                        "cannot stat '%s'", local);
    if (S_ISDIR(st.st_mode) && !recursive)
        return merr_set(err, MERR_INVALID, 0, "'%s' is a directory (copy it recursively)", local);
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
        return merr_set(err, MERR_INVALID, 0, "'%s' is not a regular file", local);

    LIBSSH2_SFTP_ATTRIBUTES a;
    bool exists = false;
    if (remote_stat(c, remote, &a, &exists, err) < 0)
        return -1;
    auto_free char *dest = NULL;
    if (exists && attrs_is_dir(&a)) {
        auto_free char *base = path_base(local);
        dest = base != NULL ? path_join(remote, base) : NULL;
    } else {
        dest = strdup(remote);
    }
    if (dest == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot upload '%s'", local);
    int r = S_ISDIR(st.st_mode) ? upload_tree(c, local, dest, (int)(st.st_mode & 07777), 0, err)
                                : upload_file(c, local, dest, (int)(st.st_mode & 07777), err);
    if (r < 0)
        return merr_prefix(err, "cannot upload '%s' to '%s'", local, dest);
    return 0;
}

/* ---- download ------------------------------------------------------------------ */

static int write_all_fd(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_handle_to_fd(struct ssh_conn *c, LIBSSH2_SFTP_HANDLE *h, const char *remote,
                             int fd, const char *tmp, struct merr *err)
{
    auto_free char *buf = malloc(COPY_CHUNK);
    if (buf == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot download '%s'", remote);
    for (;;) {
        ssize_t n = libssh2_sftp_read(h, buf, COPY_CHUNK);
        if (n < 0)
            return ssh_fail(c, (int)n, err, "cannot read '%s' on '%s'", remote, c->host);
        if (n == 0)
            return 0;
        if (write_all_fd(fd, buf, (size_t)n) < 0)
            return merr_set(err, MERR_IO, errno, "cannot write '%s'", tmp);
    }
}

static int download_file(struct ssh_conn *c, const char *remote, const char *local, int mode,
                         struct merr *err)
{
    LIBSSH2_SFTP_HANDLE *h = libssh2_sftp_open_ex(c->sftp, remote, (unsigned)strlen(remote),
                                                  LIBSSH2_FXF_READ, 0, LIBSSH2_SFTP_OPENFILE);
    if (h == NULL)
        return ssh_fail(c, libssh2_session_last_errno(c->session), err,
                        "cannot open '%s' on '%s'", remote, c->host);
    auto_free char *base = path_base(local);
    auto_free char *tmp = NULL;
    const char *slash = strrchr(local, '/');
    int dirlen = slash != NULL ? (int)(slash - local + 1) : 0;
    if (base == NULL || asprintf(&tmp, "%.*s.%s.tmp-XXXXXX", dirlen, local, base) < 0) {
        tmp = NULL;
        libssh2_sftp_close_handle(h);
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot download '%s'", remote);
    }
    auto_close int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        libssh2_sftp_close_handle(h);
        return merr_set(err, MERR_IO, e, "cannot create '%s'", tmp);
    }
    int r = read_handle_to_fd(c, h, remote, fd, tmp, err);
    libssh2_sftp_close_handle(h);
    if (r == 0 && (fchmod(fd, (mode_t)mode) < 0 || fsync(fd) < 0))
        r = merr_set(err, MERR_IO, errno, "cannot write '%s'", tmp);
    if (r == 0 && rename(tmp, local) < 0)
        r = merr_set(err, MERR_IO, errno, "cannot rename '%s' to '%s'", tmp, local);
    if (r < 0)
        unlink(tmp);
    return r;
}

static int local_mkdir(const char *path, struct merr *err)
{
    if (mkdir(path, 0700) == 0)
        return 0;
    int e = errno;
    struct stat st;
    if (e == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    return merr_set(err, MERR_IO, e, "cannot create directory '%s'", path);
}

static bool safe_entry_name(const char *name)
{
    return name[0] != '\0' && strchr(name, '/') == NULL && strcmp(name, ".") != 0 &&
           strcmp(name, "..") != 0;
}

static int download_tree(struct ssh_conn *c, const char *remote, const char *local, int mode,
                         int depth, struct merr *err);

static int download_entry(struct ssh_conn *c, const char *rdir, const char *ldir,
                          const char *name, LIBSSH2_SFTP_ATTRIBUTES *a, int depth,
                          struct merr *err)
{
    auto_free char *rpath = path_join(rdir, name);
    auto_free char *lpath = path_join(ldir, name);
    if (rpath == NULL || lpath == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot download '%s'", rdir);
    if ((a->flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) && LIBSSH2_SFTP_S_ISLNK(a->permissions)) {
        bool exists = false; /* readdir reports the link itself: follow it */
        if (remote_stat(c, rpath, a, &exists, err) < 0)
            return -1;
        if (!exists)
            return 0; /* dangling link */
    }
    if (attrs_is_dir(a))
        return download_tree(c, rpath, lpath, attrs_mode(a, 0755), depth + 1, err);
    if (attrs_is_reg(a))
        return download_file(c, rpath, lpath, attrs_mode(a, 0644), err);
    return 0; /* sockets, fifos, devices: not copied */
}

static int download_tree(struct ssh_conn *c, const char *remote, const char *local, int mode,
                         int depth, struct merr *err)
{
    if (depth > TREE_DEPTH_MAX)
        return merr_set(err, MERR_INVALID, 0, "'%s' is nested too deeply (symlink loop?)",
                        remote);
    if (local_mkdir(local, err) < 0)
        return -1;
    LIBSSH2_SFTP_HANDLE *h = libssh2_sftp_open_ex(c->sftp, remote, (unsigned)strlen(remote), 0, 0,
                                                  LIBSSH2_SFTP_OPENDIR);
    if (h == NULL)
        return ssh_fail(c, libssh2_session_last_errno(c->session), err,
                        "cannot open directory '%s' on '%s'", remote, c->host);
    char name[SFTP_NAME_MAX];
    int r = 0;
    for (;;) {
        LIBSSH2_SFTP_ATTRIBUTES a;
        memset(&a, 0, sizeof a);
        int n = libssh2_sftp_readdir_ex(h, name, sizeof name, NULL, 0, &a);
        if (n < 0) {
            r = ssh_fail(c, n, err, "cannot read directory '%s' on '%s'", remote, c->host);
            break;
        }
        if (n == 0)
            break;
        name[(size_t)n < sizeof name ? (size_t)n : sizeof name - 1] = '\0';
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        if (!safe_entry_name(name)) {
            r = merr_set(err, MERR_PROTOCOL, 0, "'%s' on '%s' lists a bad entry name", remote,
                         c->host);
            break;
        }
        if ((r = download_entry(c, remote, local, name, &a, depth, err)) < 0)
            break;
    }
    libssh2_sftp_close_handle(h);
    if (r == 0 && chmod(local, (mode_t)mode) < 0)
        r = merr_set(err, MERR_IO, errno, "cannot set mode of '%s'", local);
    return r;
}

int ssh_download(struct ssh_conn *c, const char *remote, const char *local, bool recursive,
                 struct merr *err)
{
    if (c == NULL || local == NULL || remote == NULL)
        return merr_set(err, MERR_INVALID, 0, "invalid ssh_download arguments");
    LIBSSH2_SFTP_ATTRIBUTES a;
    bool exists = false;
    if (remote_stat(c, remote, &a, &exists, err) < 0)
        return -1;
    if (!exists)
        return merr_set(err, MERR_NOT_FOUND, 0, "'%s' does not exist on '%s'", remote, c->host);
    if (attrs_is_dir(&a) && !recursive)
        return merr_set(err, MERR_INVALID, 0, "'%s' is a directory (copy it recursively)",
                        remote);
    if (!attrs_is_dir(&a) && !attrs_is_reg(&a))
        return merr_set(err, MERR_INVALID, 0, "'%s' on '%s' is not a regular file", remote,
                        c->host);

    struct stat st;
    auto_free char *dest = NULL;
    if (stat(local, &st) == 0 && S_ISDIR(st.st_mode)) {
        auto_free char *base = path_base(remote);
        if (base != NULL && !safe_entry_name(base))
            return merr_set(err, MERR_INVALID, 0, "cannot name a local copy of '%s'", remote);
        dest = base != NULL ? path_join(local, base) : NULL;
    } else {
        dest = strdup(local);
    }
    if (dest == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot download '%s'", remote);
    int r = attrs_is_dir(&a) ? download_tree(c, remote, dest, attrs_mode(&a, 0755), 0, err)
                             : download_file(c, remote, dest, attrs_mode(&a, 0644), err);
    if (r < 0)
        return merr_prefix(err, "cannot download '%s' to '%s'", remote, dest);
    return 0;
}
