/* FROM an image (local or pulled, with its ONBUILD triggers), COPY/ADD (from the context or
 * another stage) and WORKDIR: files put into a step container with the engine's docker cp
 * path (symlink-safe inside the container), then committed as a layer. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build/builder-priv.h"
#include "container/manager.h"
#include "error.h"
#include "fsutil.h"
#include "image/image.h"
#include "layer/layer.h"
#include "strv.h"
#include "runtime/runtime.h"
#include "tarw.h"

#define GO_MODE_DIR (1u << 31)
#define BLD_DOWNLOAD_MAX (16ULL << 30) /* one ADD download */

static int on_pull(const char *line, void *ctx)
{
    struct builder *b = ctx;
    json_error_t jerr;
    json_t *msg = json_loads(line, JSON_DISABLE_EOF_CHECK, &jerr);
    if (msg != NULL && !b->gone && b->env->emit(b->env->emit_ctx, msg) < 0)
        b->gone = true;
    json_decref(msg);
    return 0;
}

/* A pull with the credentials X-Registry-Config has for the image's registry. */
static int pull(struct builder *b, const char *ref, char **id, struct merr *err)
{
    auto_free char *auth = NULL;
    if (image_registry_config_auth(b->o->x_registry_config, ref, &auth, err) < 0)
        return -1;
    int rc = image_pull(b->env->images, b->env->registry, ref, NULL, auth, on_pull, b, id, err);
    if (auth != NULL)
        explicit_bzero(auth, strlen(auth));
    return rc;
}

static int run_triggers(struct builder *b, struct merr *err)
{
    json_t *ob = json_incref(json_object_get(b->cfg, "OnBuild"));
    size_t n = json_array_size(ob);
    json_object_set_new(b->cfg, "OnBuild", json_null());
    if (n > 0)
        bld_emit_stream(b, "# Executing %zu build trigger%s\n", n, n > 1 ? "s" : "");
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct df_instr *in = NULL;
        rc = df_parse_line(json_string_value(json_array_get(ob, i)), b->df->escape, &in, err);
        if (rc == 0)
            rc = bld_dispatch(b, in, false, err);
        df_instr_free(in);
        free(in);
    }
    json_decref(ob);
    return rc;
}

int bld_from_image(struct builder *b, const char *ref, struct merr *err)
{
    struct merr miss = MERR_INIT;
    auto_free char *id = b->o->pull ? NULL : image_lookup(b->env->images, ref, &miss);
    if (id == NULL && pull(b, ref, &id, err) < 0)
        return -1;
    if (bld_set_image(b, id, err) < 0)
        return -1;
    bld_emit_stream(b, " ---> %.12s\n", bld_short(id));
    return run_triggers(b, err);
}

/* "uid[:gid]" in numbers: 1 when parsed, 0 when names need the image's files. docker: without a
 * group the gid is the uid. */
static int parse_chown_numeric(const char *v, long *uid, long *gid)
{
    char *end;
    long u = strtol(v, &end, 10);
    if (end == v || (*end != '\0' && *end != ':') || u < 0)
        return 0;
    long g = u;
    if (*end == ':') {
        const char *gs = end + 1;
        g = strtol(gs, &end, 10);
        if (end == gs || *end != '\0' || g < 0)
            return 0;
    }
    *uid = u;
    *gid = g;
    return 1;
}

struct copy_flags {
    const char *from;
    const char *chown; /* names to resolve in the image, or NULL */
    long uid, gid, chmod;
};

static int copy_flags(const struct df_instr *in, struct copy_flags *f, struct merr *err)
{
    *f = (struct copy_flags){ NULL, NULL, 0, 0, -1 };
    for (size_t i = 0; in->flags[i] != NULL; i++) {
        const char *fl = in->flags[i] + 2;
        if (strncmp(fl, "from=", 5) == 0) {
            f->from = fl + 5;
        } else if (strncmp(fl, "chown=", 6) == 0) {
            if (fl[6] == '\0')
                return merr_set(err, MERR_INVALID, 0, "invalid --chown");
            if (!parse_chown_numeric(fl + 6, &f->uid, &f->gid))
                f->chown = fl + 6;
        } else if (strncmp(fl, "chmod=", 6) == 0) {
            char *end;
            f->chmod = strtol(fl + 6, &end, 8);
            if (fl[6] == '\0' || *end != '\0' || f->chmod < 0 || f->chmod > 07777)
                return merr_set(err, MERR_INVALID, 0, "invalid chmod %s", fl + 6);
        } else {
            return merr_set(err, MERR_INVALID, 0, "Unknown flag: %s", fl);
        }
    }
    return 0;
}

struct file_writer {
    int fd;
};

static int begin_nop(void *data, const struct ctr_path_stat *st, struct merr *err)
{
    (void)data;
    (void)st;
    (void)err;
    return 0;
}

static int write_fd(void *data, const void *buf, size_t len, struct merr *err)
{
    struct file_writer *w = data;
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(w->fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return merr_set(err, MERR_IO, errno, "cannot spool a file of another stage");
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static ssize_t read_fd(void *data, void *buf, size_t len, struct merr *err)
{
    struct file_writer *r = data;
    ssize_t n;
    do
        n = read(r->fd, buf, len);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        merr_set(err, MERR_IO, errno, "cannot read the COPY layer");
    return n;
}

/* The part of a source to fetch from the stage: the whole path, or for a glob the directory
 * above its first component with a glob character ("/a/x*.c/d" gives "/a"). */
static char *fetch_path(const char *src)
{
    char *abs = src[0] == '/' ? xstrdup(src) : xasprintf("/%s", src);
    char *glob = strpbrk(abs, "*?[");
    if (glob != NULL) {
        while (glob > abs && *glob != '/')
            glob--;
        *glob = '\0';
        if (abs[0] == '\0') {
            free(abs);
            abs = xstrdup("/");
        }
    }
    return abs;
}

/* Takes path out of the container cid into root (at the same path), with the engine's
 * docker cp path (symlink-safe in the container). */
static int fetch_one(struct builder *b, const char *cid, const char *from, const char *path,
                     const char *root, const char *spool, struct merr *err)
{
    char *slash = strrchr(path, '/');
    auto_free char *parent = slash == path ? xstrdup("") : strndup(path + 1, (size_t)(slash - path - 1));
    auto_free char *dest = parent[0] ? xasprintf("%s/%s", root, parent) : xstrdup(root);
    struct file_writer w = { open(spool, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) };
    struct ctr_path_stat st;
    struct layer_result res;
    int rc = 0;
    if (w.fd < 0 || fs_mkdir_p(dest, 0755, err) < 0)
        rc = w.fd < 0 ? merr_set(err, MERR_IO, errno, "cannot create '%s'", spool) : -1;
    else if (ctr_archive_get(b->env->containers, cid, path, &st, begin_nop, write_fd, &w, err) < 0)
        rc = err->code == MERR_NOT_FOUND
                 ? merr_set(err, MERR_NOT_FOUND, 0, "COPY --from=%s: %s not found", from, path)
                 : -1;
    else if (lseek(w.fd, 0, SEEK_SET) < 0)
        rc = merr_set(err, MERR_IO, errno, "cannot rewind");
    else if (layer_extract_plain_fd(w.fd, LAYER_COMP_NONE, dest, NULL, &res, err) < 0)
        rc = -1;
    if (w.fd >= 0)
        close(w.fd);
    return rc;
}

/* COPY --from: what the sources name taken out of a container of that stage or image into
 * work/from/, where they are matched and read as from a context. */
/* The image COPY --from names: a stage of this build (by name or index), else a local or
 * pulled image; malloc'd "sha256:..." */
static char *from_image(struct builder *b, const char *from, struct merr *err)
{
    char *end;
    long idx = strtol(from, &end, 10);
    for (size_t i = 0; i + 1 < b->n_stages; i++)
        if ((b->stages[i].name != NULL && strcasecmp(b->stages[i].name, from) == 0) ||
            (*end == '\0' && from[0] != '\0' && (size_t)idx == i))
            return xstrdup(b->stages[i].image_id);
    struct merr miss = MERR_INIT;
    char *looked = image_lookup(b->env->images, from, &miss);
    if (looked == NULL && pull(b, from, &looked, err) < 0)
        return NULL;
    return looked;
}

static int fetch_from(struct builder *b, const char *from, const char *image, char **srcs,
                      const char *work, char **root_out, struct merr *err)
{
    json_t *body = json_pack("{s:s,s:[s]}", "Image", image, "Cmd", "true");
    char *cid = NULL;
    int rc = ctr_create(b->env->containers, NULL, body, &cid, err);
    json_decref(body);
    if (rc < 0)
        return -1;
    auto_free char *root = xasprintf("%s/from", work);
    auto_free char *spool = xasprintf("%s/from.tar", work);
    auto_strv char **done = xcalloc(1, sizeof *done);
    rc = mkdir(root, 0755) < 0 ? merr_set(err, MERR_IO, errno, "cannot create '%s'", root) : 0;
    for (size_t i = 0; rc == 0 && srcs[i] != NULL; i++) {
        auto_free char *path = fetch_path(srcs[i]);
        bool covered = false; /* already fetched with a directory above it */
        for (size_t k = 0; done[k] != NULL && !covered; k++) {
            size_t l = strlen(done[k]);
            covered = strcmp(done[k], "/") == 0 ||
                      (strncmp(path, done[k], l) == 0 && (path[l] == '\0' || path[l] == '/'));
        }
        if (!covered) {
            rc = fetch_one(b, cid, from, path, root, spool, err);
            done = strv_push(done, path);
        }
    }
    bld_remove_container(b, cid, false);
    free(cid);
    if (rc < 0)
        return -1;
    *root_out = xstrdup(root);
    return 0;
}

static bool is_url(const char *w)
{
    return strncmp(w, "http://", 7) == 0 || strncmp(w, "https://", 8) == 0;
}

static bool is_git(const char *w)
{
    size_t n = strlen(w);
    return strncmp(w, "git@", 4) == 0 || strncmp(w, "git://", 6) == 0 ||
           (n > 4 && strcmp(w + n - 4, ".git") == 0 && strstr(w, "://") != NULL);
}

/* ADD <url>...: each download put into work/url/<its file name> (mode 0600, mtime the
 * Last-Modified), which then serves as the sources' root; the words become the names. 1 when
 * the sources were URLs, 0 when none was; URLs mixed with local sources and git are refused. */
static int fetch_urls(struct builder *b, char **words, const char *work, char **root_out,
                      struct merr *err)
{
    size_t n = 0, remote = 0;
    for (; words[n] != NULL; n++) {
        if (is_git(words[n]))
            return merr_set(err, MERR_UNSUPPORTED, 0, "ADD from a git repository (%s) is not "
                            "supported by machine-engine's builder", words[n]);
        remote += is_url(words[n]);
    }
    if (remote == 0)
        return 0;
    if (remote != n)
        return merr_set(err, MERR_UNSUPPORTED, 0, "ADD of URLs together with local sources is "
                        "not supported by machine-engine's builder; use one ADD for each");
    auto_free char *root = xasprintf("%s/url", work);
    if (mkdir(root, 0755) < 0)
        return merr_set(err, MERR_IO, errno, "cannot create '%s'", root);
    for (size_t i = 0; i < n; i++) {
        auto_free char *name = build_url_file_name(words[i]);
        if (name == NULL)
            return merr_set(err, MERR_INVALID, 0, "cannot determine filename from url: %s",
                            words[i]);
        bld_emit_stream(b, "Downloading %s\n", words[i]);
        auto_free char *path = xasprintf("%s/%s", root, name);
        auto_close int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        long long mtime = 0;
        if (fd < 0)
            return merr_set(err, MERR_INVALID, errno, "cannot download '%s' to '%s'", words[i],
                            name);
        if (image_fetch_url(b->env->images, words[i], fd, BLD_DOWNLOAD_MAX, &mtime, err) < 0)
            return -1;
        struct timespec t[2] = { { mtime, 0 }, { mtime, 0 } };
        if (mtime > 0 && futimens(fd, t) < 0)
            return merr_set(err, MERR_IO, errno, "cannot set the mtime of '%s'", name);
        free(words[i]);
        words[i] = xstrdup(name);
    }
    *root_out = xstrdup(root);
    return 1;
}

struct mem_sink {
    char *buf;
    size_t len;
};

static int mem_write(void *data, const void *buf, size_t len, struct merr *err)
{
    struct mem_sink *m = data;
    if (m->len + len > (8u << 20))
        return merr_set(err, MERR_INVALID, 0, "the image's user database is too large");
    char *n = realloc(m->buf, m->len + len + 1);
    if (n == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    memcpy(n + m->len, buf, len);
    m->buf = n;
    m->len += len;
    n[m->len] = '\0';
    return 0;
}

/* A small file of the step container (the tar of one regular file, unwrapped), or NULL. */
static char *image_file(struct builder *b, const char *cid, const char *path)
{
    struct mem_sink m = { NULL, 0 };
    struct ctr_path_stat st;
    struct merr ignored = MERR_INIT;
    if (ctr_archive_get(b->env->containers, cid, path, &st, begin_nop, mem_write, &m,
                        &ignored) < 0 ||
        m.len < 512 || m.buf[156] != '0') {
        free(m.buf);
        return NULL;
    }
    unsigned long long size = strtoull(m.buf + 124, NULL, 8);
    size_t off = 512;
    if (memcmp(m.buf, "PaxHeader", 9) == 0 || m.buf[156] == 'x') {
        free(m.buf);
        return NULL;
    }
    if (size > m.len - off) {
        free(m.buf);
        return NULL;
    }
    char *out = strndup(m.buf + off, (size_t)size);
    free(m.buf);
    return out;
}

/* --chown=user[:group] by name, from the image's /etc/passwd and /etc/group. */
static int resolve_chown(struct builder *b, const char *cid, const char *spec, long *uid,
                         long *gid, struct merr *err)
{
    auto_free char *passwd = image_file(b, cid, "/etc/passwd");
    auto_free char *group = image_file(b, cid, "/etc/group");
    auto_free char *user = xstrdup(spec);
    char *colon = strchr(user, ':');
    if (colon != NULL)
        *colon = '\0';
    struct rt_user u, g;
    if (rt_user_resolve(user, passwd, group, &u, err) < 0)
        return merr_prefix(err, "--chown=%s", spec);
    *uid = (long)u.uid;
    *gid = (long)u.uid; /* docker: a user without a group gets the uid as gid */
    if (colon != NULL) {
        auto_free char *root_group = xasprintf("0:%s", colon + 1);
        if (rt_user_resolve(root_group, passwd, group, &g, err) < 0)
            return merr_prefix(err, "--chown=%s", spec);
        *gid = (long)g.gid;
    }
    return 0;
}

static int copy_words(struct builder *b, const struct df_instr *in, char ***out, struct merr *err)
{
    char **w = NULL;
    if (in->json) {
        w = xcalloc(1, sizeof *w);
        for (size_t i = 0; in->args[i] != NULL; i++) {
            char *v = df_expand_word(in->args[i], b->df->escape, bld_lookup_env_arg, b, err);
            if (v == NULL) {
                strv_free(w);
                return -1;
            }
            w = strv_push(w, v);
            free(v);
        }
    } else if ((w = df_expand_words(in->rest, b->df->escape, bld_lookup_env_arg, b, err)) == NULL) {
        return -1;
    }
    size_t n = 0;
    while (w[n] != NULL)
        n++;
    if (n < 2) {
        strv_free(w);
        return merr_set(err, MERR_INVALID, 0,
                        "%s requires at least two arguments, but only one was provided. "
                        "Destination could not be determined.",
                        strcmp(in->cmd, "add") == 0 ? "ADD" : "COPY");
    }
    *out = w;
    return 0;
}

static bool is_dir_in(struct builder *b, const char *cid, const char *path)
{
    struct ctr_path_stat st;
    struct merr ignored = MERR_INIT;
    return ctr_archive_stat(b->env->containers, cid, path, &st, &ignored) == 0 &&
           (st.mode & GO_MODE_DIR) != 0;
}

/* Puts the spooled tar into cid at "/", commits, and tells. */
static int put_and_commit(struct builder *b, const char *cid, int fd, const char *created_by,
                          const char *key, struct merr *err)
{
    struct file_writer r = { fd };
    struct ctr_archive_put_opts po = { .copy_uid_gid = true };
    bld_emit_stream(b, " ---> Running in %.12s\n", cid);
    int rc = lseek(fd, 0, SEEK_SET) < 0 ? merr_set(err, MERR_IO, errno, "cannot rewind")
                                        : ctr_archive_put(b->env->containers, cid, "/", &po,
                                                          read_fd, &r, err);
    if (rc == 0)
        rc = bld_commit_step(b, cid, created_by, key, err);
    bld_remove_container(b, cid, rc == 0 && (b->o->rm || b->o->forcerm));
    if (rc == 0)
        bld_emit_stream(b, " ---> %.12s\n", bld_short(b->cur));
    return rc;
}

/* The step container of a COPY, made only when needed: a cache hit without --chown names and
 * with a destination that says what it is needs none. */
struct lazy_ctr {
    struct builder *b;
    char *cid;
    const char *dest;
    bool failed;
    struct merr err;
};

static const char *lazy_cid(struct lazy_ctr *l)
{
    if (l->cid != NULL || l->failed)
        return l->cid;
    json_t *cmd = json_pack("[s,s,s]", "/bin/sh", "-c", "#(nop) COPY");
    if (bld_step_container(l->b, cmd, NULL, &l->cid, &l->err) < 0) {
        l->failed = true;
        l->cid = NULL;
    }
    json_decref(cmd);
    return l->cid;
}

static bool probe_dest_dir(void *ctx)
{
    struct lazy_ctr *l = ctx;
    return lazy_cid(l) != NULL && is_dir_in(l->b, l->cid, l->dest);
}

static int merr_copy_out(struct merr *to, const struct merr *from)
{
    *to = *from;
    return -1;
}

static char *copy_from_memo_key(struct builder *b, const struct copy_flags *f,
                                const char *from_id, char *const *srcs, const char *dest_word,
                                const char *dest)
{
    char *key = xasprintf("copy-from\n%s\n%s\n%s\n%s\n%ld:%ld:%s:%lo\n", from_id,
                          b->scratch ? "scratch" : b->cur, dest_word, dest, f->uid, f->gid,
                          f->chown != NULL ? f->chown : "", f->chmod);
    for (size_t i = 0; srcs[i] != NULL; i++) {
        char *next = xasprintf("%s%s\n", key, srcs[i]);
        free(key);
        key = next;
    }
    return key;
}

/* The step's scratch directory, made when first needed (a cache hit needs none). */
static const char *need_work(struct builder *b, char **work, struct merr *err)
{
    if (*work == NULL)
        *work = image_store_work_dir(b->env->images, err);
    return *work;
}

static int copy_in(struct builder *b, const struct df_instr *in, const struct copy_flags *f,
                   char **words, char **workp, struct merr *err)
{
    size_t n = 0;
    while (words[n] != NULL)
        n++;
    auto_free char *dest_word = words[n - 1];
    words[n - 1] = NULL;
    const char *wd = json_string_value(json_object_get(b->cfg, "WorkingDir"));
    auto_free char *dest = dest_word[0] == '/' ? xstrdup(dest_word)
                                               : xasprintf("%s/%s", wd && wd[0] ? wd : "", dest_word);
    bool add = strcmp(in->cmd, "add") == 0;
    auto_free char *from_root = NULL;
    /* ADD may fetch or unpack before its checksum: its scratch directory is made at once */
    const char *work = add ? need_work(b, workp, err) : NULL;
    if (add && work == NULL)
        return -1;
    int urls = add ? fetch_urls(b, words, work, &from_root, err) : 0;
    if (urls < 0)
        return -1;
    /* COPY --from an image (content-addressed): what it copies is known by the image, the
     * sources and the step's own inputs, so a memo of the checksum spares the fetch on a hit */
    auto_free char *from_id = f->from != NULL ? from_image(b, f->from, err) : NULL;
    if (f->from != NULL && from_id == NULL)
        return -1;
    auto_free char *memo_key = from_id != NULL ? copy_from_memo_key(b, f, from_id, words,
                                                                    dest_word, dest)
                                               : NULL;
    auto_free char *memo = memo_key != NULL ? image_build_cache_memo_get(b->env->images, memo_key)
                                            : NULL;
    if (memo != NULL) {
        auto_free char *created_by = xasprintf("/bin/sh -c #(nop) %s %s in %s ",
                                               add ? "ADD" : "COPY", memo, dest);
        auto_free char *key = bld_cache_key(b, created_by);
        int hit_rc;
        if (bld_cache_hit(b, key, created_by, err, &hit_rc))
            return hit_rc;
    }
    if (from_id != NULL && ((work = need_work(b, workp, err)) == NULL ||
                            fetch_from(b, f->from, from_id, words, work, &from_root, err) < 0))
        return -1;
    struct lazy_ctr lc = { b, NULL, dest, 0, MERR_INIT };
    long uid = f->uid, gid = f->gid;
    int rc = 0;
    if (f->chown != NULL)
        rc = lazy_cid(&lc) == NULL ? merr_copy_out(err, &lc.err)
                                   : resolve_chown(b, lc.cid, f->chown, &uid, &gid, err);
    size_t dl = strlen(dest_word);
    struct copy_spec spec = {
        .root = from_root == NULL ? b->o->context_dir : from_root,
        .ignore = from_root == NULL ? b->ignore : NULL,
        .srcs = words,
        .dest = dest,
        .dest_is_dir = (dl > 0 && dest_word[dl - 1] == '/') || n > 2,
        .dest_dir_probe = probe_dest_dir,
        .probe_ctx = &lc,
        .uid = uid,
        .gid = gid,
        .chmod = f->chmod,
        .extract_archives = add && urls == 0, /* a remote archive is not unpacked */
        .work = work,
        .digests = from_root == NULL ? b->o->context_digests : NULL,
    };
    /* the checksum first, without the tar: a hit writes nothing */
    auto_free char *what = NULL;
    if (rc == 0)
        rc = build_copy_tar(&spec, -1, &what, err);
    if (rc == 0 && lc.failed)
        rc = merr_copy_out(err, &lc.err);
    auto_free char *created_by = rc == 0 ? xasprintf("/bin/sh -c #(nop) %s %s in %s ",
                                                     add ? "ADD" : "COPY", what, dest)
                                         : NULL;
    auto_free char *key = rc == 0 ? bld_cache_key(b, created_by) : NULL;
    if (rc < 0 || bld_cache_hit(b, key, created_by, err, &rc)) {
        if (lc.cid != NULL)
            bld_remove_container(b, lc.cid, false);
        free(lc.cid);
        return rc;
    }
    struct merr ignored = MERR_INIT;
    if (memo_key != NULL && image_build_cache_memo_put(b->env->images, memo_key, what,
                                                        &ignored) < 0) {
        /* the next build fetches again */
    }
    if ((work = need_work(b, workp, err)) == NULL) {
        if (lc.cid != NULL)
            bld_remove_container(b, lc.cid, false);
        free(lc.cid);
        return -1;
    }
    auto_free char *spool = xasprintf("%s/copy.tar", work);
    auto_close int fd = open(spool, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    auto_free char *written = NULL;
    if (fd < 0)
        rc = merr_set(err, MERR_IO, errno, "cannot create '%s'", spool);
    else if (build_copy_tar(&spec, fd, &written, err) < 0)
        rc = -1;
    else if (strcmp(written, what) != 0) /* the step is keyed by what it copies */
        rc = merr_set(err, MERR_IO, 0, "the sources of %s changed while they were copied",
                      add ? "ADD" : "COPY");
    if (rc == 0)
        rc = lazy_cid(&lc) == NULL ? merr_copy_out(err, &lc.err)
                                   : put_and_commit(b, lc.cid, fd, created_by, key, err);
    else if (lc.cid != NULL)
        bld_remove_container(b, lc.cid, false);
    free(lc.cid);
    return rc;
}

int bld_step_copy(struct builder *b, const struct df_instr *in, struct merr *err)
{
    struct copy_flags f;
    auto_strv char **words = NULL;
    if (copy_flags(in, &f, err) < 0 || copy_words(b, in, &words, err) < 0)
        return -1;
    auto_free char *work = NULL;
    int rc = copy_in(b, in, &f, words, &work, err);
    struct merr ignored = MERR_INIT;
    if (work != NULL && layer_remove_tree(work, &ignored) < 0) {
        /* collected at the next start */
    }
    return rc;
}

static int write_dir_tar(int fd, const char *path, struct merr *err)
{
    struct file_writer w = { fd };
    struct tarw tw = { .write = write_fd, .ctx = &w };
    auto_free char *name = xasprintf("%s/", path[0] == '/' ? path + 1 : path);
    struct tarw_meta m = { .name = name, .type = '5', .mode = 0755 };
    int rc = tarw_entry(&tw, &m, err) < 0 ? -1 : tarw_close(&tw, err);
    tarw_release(&tw);
    return rc;
}

int bld_step_workdir(struct builder *b, const struct df_instr *in, struct merr *err)
{
    if (df_apply_config(b->cfg, in, b->df->escape, bld_lookup_arg, b, NULL, NULL, err) < 0)
        return -1;
    const char *wd = json_string_value(json_object_get(b->cfg, "WorkingDir"));
    auto_free char *created_by = xasprintf("/bin/sh -c #(nop) WORKDIR %s", wd);
    auto_free char *key = bld_cache_key(b, created_by);
    int rc;
    if (bld_cache_hit(b, key, created_by, err, &rc))
        return rc;
    json_t *cmd = json_pack("[s,s,s]", "/bin/sh", "-c", created_by + 11);
    char *cid = NULL;
    rc = bld_step_container(b, cmd, NULL, &cid, err);
    json_decref(cmd);
    if (rc < 0)
        return -1;
    auto_free char *work = NULL;
    if (is_dir_in(b, cid, wd)) {
        /* already there: a layerless commit */
        bld_emit_stream(b, " ---> Running in %.12s\n", cid);
        rc = bld_commit_step(b, NULL, created_by, key, err);
        bld_remove_container(b, cid, rc == 0 && (b->o->rm || b->o->forcerm));
        if (rc == 0)
            bld_emit_stream(b, " ---> %.12s\n", bld_short(b->cur));
    } else if ((work = image_store_work_dir(b->env->images, err)) == NULL) {
        bld_remove_container(b, cid, false);
        rc = -1;
    } else {
        auto_free char *spool = xasprintf("%s/workdir.tar", work);
        auto_close int fd = open(spool, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0 || write_dir_tar(fd, wd, err) < 0) {
            rc = fd < 0 ? merr_set(err, MERR_IO, errno, "cannot create '%s'", spool) : -1;
            bld_remove_container(b, cid, false);
        } else {
            rc = put_and_commit(b, cid, fd, created_by, key, err);
        }
    }
    free(cid);
    struct merr ignored = MERR_INIT;
    if (work != NULL && layer_remove_tree(work, &ignored) < 0) {
        /* collected at the next start */
    }
    return rc;
}
