/* Internals shared by the files of engine/layer/ and exposed to its unit tests. */
#ifndef MACHINE_ENGINE_LAYER_PRIV_H
#define MACHINE_ENGINE_LAYER_PRIV_H

#ifndef MACHINE_LAYER_PRIV
#error "layer-priv.h is internal to engine/layer/ and its tests (they define MACHINE_LAYER_PRIV)"
#endif

#include "layer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#define LAYER_DIFF_ID_LEN 72

/* ---- stream.c: decompression + DiffID hashing + size cap ---- */
struct layer_stream;
/* Where the bytes come from: read() on fd, or the read function when it is set.
 * no_digest: the bytes are not hashed (no DiffID: a build context is no layer). */
struct layer_source {
    int fd;
    layer_read_fn read;
    void *ctx;
    bool no_digest;
};

int layer_stream_new(struct layer_stream **out, const struct layer_source *src,
                     enum layer_compression comp, uint64_t max_uncompressed, struct merr *err)
    __attribute__((warn_unused_result));
/* Points *buf at the next uncompressed bytes; returns their count, 0 at the end
 * of the stream, -1 on error. Every byte returned has been hashed and counted. */
ssize_t layer_stream_read(struct layer_stream *s, const void **buf, struct merr *err)
    __attribute__((warn_unused_result));
/* Reads (and hashes) what is left up to EOF, then yields the DiffID and size. */
int layer_stream_finish(struct layer_stream *s, struct layer_result *res, struct merr *err)
    __attribute__((warn_unused_result));
enum layer_compression layer_stream_compression(const struct layer_stream *s);
void layer_stream_free(struct layer_stream *s);

/* Formats "sha256:<hex>" of a 32-byte digest. */
void layer_format_diff_id(const unsigned char digest[32], char out[LAYER_DIFF_ID_LEN]);

/* ---- resolve.c: opening directories as if rootfd were "/" ---- */
enum layer_resolve_flags {
    LAYER_RESOLVE_NOFOLLOW = 1 << 0, /* any symlink on the way is an error (ELOOP) */
    LAYER_RESOLVE_FALLBACK = 1 << 1, /* do not use openat2 (tests; kernels < 5.6) */
};

/* Opens the directory `path` (a clean relative path, "" for the root) below
 * rootfd as an O_PATH fd. Symlinks met on the way are resolved inside the root
 * ("/" and ".." stop at rootfd) unless NOFOLLOW. Returns the fd, or -1 with errno
 * set (ENOENT, ENOTDIR, ELOOP, ...). Never fills an merr: callers classify. */
int layer_open_dir(int rootfd, const char *path, unsigned flags);

/* ---- path.c: pure checks on tar names ---- */
/* Cleans a tar entry name into a relative path without "", "." or ".."
 * components ("" is the root). An absolute name is taken relative to the root
 * and ".." stops there (Go's filepath.Clean on "/"+name, as dockerd does); a
 * relative name that climbs above the root is rejected with MERR_INVALID. */
int layer_clean_path(const char *name, char *out, size_t outsz, struct merr *err)
    __attribute__((warn_unused_result));
/* True when the symlink target, read relative to the directory `parent` (a
 * clean path), climbs above the root. Absolute targets never do. */
bool layer_symlink_escapes(const char *parent, const char *target);
/* True when /proc/self/uid_map text is the initial namespace's identity map. */
bool layer_uid_map_is_initial(const char *uid_map);

/* ---- tar.c ---- */
/* The names of a directory (without . and ..), sorted bytewise; *out is NULL-terminated. */
int layer_sorted_names(int dirfd, char ***out, size_t *count, struct merr *err)
    __attribute__((warn_unused_result));

/* The xattrs a layer tar carries (user.*, security.capability). */
bool layer_xattr_exported(const char *name);
/* ---- naive.c: dockerd's rule for a path both trees have (pure) ---- */
bool layer_naive_differ(const struct stat *n, const struct stat *o);

/* ---- diff.c ---- */
/* True when rel (a relative path, no leading "/") is in skip. Pure. */
bool layer_skip_listed(const char *rel, const char *const *skip);
/* True when rel is a proper ancestor directory of an entry of skip ("etc" of "etc/hosts"). */
bool layer_skip_is_ancestor(const char *rel, const char *const *skip);
/* True when the entry name (at rel below dirfd, with stat st) is left out: listed, or a
 * directory that is not opaque and holds only left-out entries. */
bool layer_skipped(int dirfd, const char *name, const char *rel, const struct stat *st,
                   const char *const *skip);

/* ---- remove.c ---- */
/* Removes name below dirfd (a file, or a directory with all its contents)
 * without following symlinks. A missing name is not an error. */
int layer_remove_at(int dirfd, const char *name, struct merr *err) __attribute__((warn_unused_result));

/* ---- extract.c: test hooks ---- */
struct layer_extract_opts {
    bool force_fallback_resolve; /* resolve paths without openat2 */
    bool assume_userns;          /* behave as inside a user namespace (skip devices) */
    bool plain;                  /* not a layer: .wh.* names are ordinary files */
    layer_file_fn on_file;       /* each regular file's digest (may be NULL) */
    void *file_ctx;
};

int layer_extract_fd_opts(int fd, enum layer_compression comp, const char *dest,
                          const struct layer_limits *lim, const struct layer_extract_opts *opts,
                          struct layer_result *res, struct merr *err)
    __attribute__((warn_unused_result));
int layer_extract_src_opts(const struct layer_source *src, enum layer_compression comp,
                           const char *dest, const struct layer_limits *lim,
                           const struct layer_extract_opts *opts, struct layer_result *res,
                           struct merr *err) __attribute__((warn_unused_result));

#endif
