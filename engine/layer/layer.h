/* Hardened extraction of image layers into overlayfs diff directories, and the
 * reverse (a diff directory back to a layer tar for `docker save`).
 *
 * Nothing outside `dest` is ever written: every entry is created relative to a
 * directory fd of dest, parents are resolved as if dest were "/", the final
 * component is never followed, hardlinks never get their metadata changed, and
 * no external decompressor is ever run.
 *
 * Error codes: MERR_INVALID for hostile or unsupported content (path escapes,
 * bad whiteouts, absurd devices, limits exceeded), MERR_CORRUPT for a damaged
 * compressed stream or tar, MERR_IO (or MERR_PERM) for a failed system call,
 * MERR_NOMEM. After a failure dest is in an unspecified state: delete it with
 * layer_remove_tree(). */
#ifndef MACHINE_ENGINE_LAYER_H
#define MACHINE_ENGINE_LAYER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
struct merr;
enum layer_compression { LAYER_COMP_NONE, LAYER_COMP_GZIP, LAYER_COMP_ZSTD, LAYER_COMP_DETECT };
/* A NULL limits pointer or a 0 field means the default below. whiteout_files: `.wh.` entries
 * are kept as empty regular files of that name (the vfs store applies them as deletions with
 * layer_vfs_apply; a filesystem such as overlayfs cannot hold overlay whiteouts). */
struct layer_limits { uint64_t max_uncompressed; uint64_t max_entries; bool whiteout_files; };
struct layer_result { char diff_id[72]; /* "sha256:<hex>" of the uncompressed tar */ uint64_t size; };

#define LAYER_DEFAULT_MAX_UNCOMPRESSED (64ULL << 30) /* 64 GiB */
#define LAYER_DEFAULT_MAX_ENTRIES (1ULL << 20)

/* Reads a (compressed) layer tar from fd until EOF and extracts it into dest (an existing empty dir)
 * in overlayfs form (whiteouts → 0:0 char devices, opaque dirs → trusted.overlay.opaque=y). */
int layer_extract_fd(int fd, enum layer_compression comp, const char *dest,
                     const struct layer_limits *lim, struct layer_result *res, struct merr *err)
    __attribute__((warn_unused_result));

/* layer_extract_fd for a tar that is not a layer (a build context, an archive ADD unpacks):
 * every protection the same, but `.wh.*` names are ordinary files, not whiteouts. */
int layer_extract_plain_fd(int fd, enum layer_compression comp, const char *dest,
                           const struct layer_limits *lim, struct layer_result *res,
                           struct merr *err) __attribute__((warn_unused_result));

/* A source of tar bytes: how many were put into buf, 0 at the end, -1 with err set. */
typedef ssize_t (*layer_read_fn)(void *ctx, void *buf, size_t len, struct merr *err);
/* layer_extract_plain_fd reading from `read` (a request body as it arrives) instead of a file:
 * the extraction keeps pace with the sender, and nothing is spooled. No DiffID is computed
 * (res gets the size alone). */
/* What a plain extraction reports of each regular file it wrote (when asked): its inode, size
 * and the SHA-256 of its contents (holes of sparse entries read as zeros), so a caller that
 * checksums the files later need not read them again. */
struct layer_file_digest {
    dev_t dev;
    ino_t ino;
    uint64_t size;
    unsigned char sha256[32];
};
typedef void (*layer_file_fn)(void *ctx, const struct layer_file_digest *d);
int layer_extract_plain_reader(layer_read_fn read, void *ctx, enum layer_compression comp,
                               const char *dest, const struct layer_limits *lim,
                               layer_file_fn on_file, void *file_ctx, struct layer_result *res,
                               struct merr *err)
    __attribute__((warn_unused_result));

/* Writes the diff directory src to out_fd as an uncompressed tar (sorted, no
 * record padding beyond the two end blocks), turning overlay whiteouts back into
 * `.wh.<name>` entries and opaque directories into `.wh..wh..opq` entries. res
 * (may be NULL) receives the DiffID and size of the bytes written. */
int layer_tar_dir(const char *src, int out_fd, struct layer_result *res, struct merr *err)
    __attribute__((warn_unused_result));

/* ---- diff.c: what a container changed (docker diff) and its layer (docker commit) ---- */

/* Paths (relative, no leading "/") the engine creates in a container's upper directory as
 * mount targets for its own files: dockerd keeps them in an "init" layer below the container's,
 * so they never show in `docker diff` nor in a committed image. NULL-terminated. */
extern const char *const layer_init_paths[];

/* docker's Kind numbers: 0 = C, 1 = A, 2 = D. */
enum layer_change_kind { LAYER_CHANGE_MODIFY = 0, LAYER_CHANGE_ADD = 1, LAYER_CHANGE_DELETE = 2 };
struct layer_change {
    char *path; /* "/etc/passwd" */
    enum layer_change_kind kind;
};
struct layer_changes {
    struct layer_change *v;
    size_t n, cap;
};
void layer_changes_release(struct layer_changes *c);

/* Lists the changes of the overlay upper directory `upper` against the lower directories
 * `lowers` (top first, NULL-terminated) in the order and with the rules of dockerd's overlay
 * driver: a whiteout (0:0 char device) is a deletion, an opaque directory that existed below
 * is a deletion (its new contents follow as additions), a path that exists below is a
 * modification (a directory only when its mode, size or mtime differ, or a child changed),
 * anything else an addition; the parent of an addition or deletion is a modification. Paths
 * in skip (relative, NULL-terminated; may be NULL), and directories holding only such paths,
 * are left out. Nothing is followed. */
int layer_diff_changes(const char *upper, const char *const *lowers, const char *const *skip,
                       struct layer_changes *out, struct merr *err)
    __attribute__((warn_unused_result));

/* layer_tar_dir that leaves out the paths in skip (as layer_diff_changes does). */
int layer_tar_dir_skip(const char *src, int out_fd, const char *const *skip,
                       struct layer_result *res, struct merr *err)
    __attribute__((warn_unused_result));

/* ---- vfs.c, naive.c: the copy-based store ---- */

/* Creates dst (must not exist) as a copy of the directory src: owners, modes, times, the
 * xattrs a layer carries and hard links kept; nothing followed. */
int layer_copy_tree(const char *src, const char *dst, struct merr *err)
    __attribute__((warn_unused_result));
/* Applies a layer extracted with whiteout_files onto root (a chain directory): `.wh..wh..opq`
 * empties the directory, `.wh.NAME` removes NAME, every other entry replaces what root has
 * there (files are moved out of diff, directories merged). */
int layer_vfs_apply(const char *diff, const char *root, struct merr *err)
    __attribute__((warn_unused_result));
/* docker diff of a full tree against the tree it was copied from, by dockerd's naive rules
 * (see naive.c). */
int layer_naive_changes(const char *new_root, const char *old_root, const char *const *skip,
                        struct layer_changes *out, struct merr *err)
    __attribute__((warn_unused_result));
/* The layer tar of a change list (paths under root): deletions as `.wh.` markers, the rest as
 * their entries (directories without their contents). */
int layer_tar_changes(const char *root, const struct layer_changes *changes, int out_fd,
                      struct layer_result *res, struct merr *err)
    __attribute__((warn_unused_result));

/* ---- driver.c: how layers and container filesystems are kept, chosen once at start ---- */
struct layer_driver {
    const char *name;    /* docker info's Storage Driver: "overlay2", "vfs" */
    const char *dir;     /* the store's directory of layers, under the image root */
    bool whiteout_files; /* extraction keeps `.wh.` markers as files (finish_layer applies them) */
    bool copies;         /* an image is its top layer's directory and a container's rootfs a
                          * directory of its own, bound without an overlay */
    /* An extracted layer (the directory diff) becomes what the store keeps; parent is the
     * parent layer's directory, NULL for a base layer. NULL: nothing to do. */
    int (*finish_layer)(const char *diff, const char *parent, struct merr *err);
    /* Makes a container's upper (and work) directory from its image's directories (top
     * first); a prepared container is left as it is. */
    int (*prepare_container)(const char *upper, const char *work, const char *const *lowers,
                             struct merr *err);
    /* docker diff and the layer of docker commit. */
    int (*changes)(const char *upper, const char *const *lowers, const char *const *skip,
                   struct layer_changes *out, struct merr *err);
    int (*tar_changes)(const char *upper, const char *const *lowers, const char *const *skip,
                       int out_fd, struct merr *err);
};
extern const struct layer_driver layer_driver_overlay, layer_driver_vfs;
/* "overlay2" (or "overlay") and "vfs"; NULL for anything else. */
const struct layer_driver *layer_driver_find(const char *name);

/* rm -rf that never follows symlinks (dirfd + unlinkat) and uses a bounded number
 * of file descriptors however deep the tree. A missing path is not an error. */
int layer_remove_tree(const char *path, struct merr *err) __attribute__((warn_unused_result));

#endif
