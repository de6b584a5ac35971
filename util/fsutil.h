/* Small filesystem helpers: atomic writes, directory creation, capped reads, locks. */
#ifndef MACHINE_FSUTIL_H
#define MACHINE_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "cleanup.h"

struct merr;

/* Writes data to path atomically: a temp file in the same directory, fsync, rename over path,
 * fsync of the directory. An existing file is never truncated: it is either the old or the new one. */
int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                    struct merr *err) MUST_CHECK;

/* Reads a whole file (at most max bytes, else MERR_INVALID); *out is NUL-terminated. */
int fs_read_file(const char *path, size_t max, char **out, size_t *len, struct merr *err) MUST_CHECK;

/* fs_read_file for files this program wrote itself: a symlink, a non-regular file or one larger
 * than max is MERR_CORRUPT. */
int fs_read_regular(const char *path, size_t max, char **out, size_t *len,
                    struct merr *err) MUST_CHECK;

/* fsync of the directory holding path, so a rename into it is durable. */
int fs_sync_dir_of(const char *path, struct merr *err) MUST_CHECK;

/* mkdir -p with the given mode for each created component. */
int fs_mkdir_p(const char *path, mode_t mode, struct merr *err) MUST_CHECK;

/* rm -rf that never follows symlinks. A missing path is not an error. */
int fs_remove_tree(const char *path, struct merr *err) MUST_CHECK;

/* Takes an exclusive flock on path (created 0600), waiting at most timeout_ms; returns the fd.
 * Release with fs_unlock (or close). */
int fs_lock(const char *path, int timeout_ms, struct merr *err) MUST_CHECK;
void fs_unlock(int fd);

bool fs_exists(const char *path);
/* The first readable file among the paths rel[] (NULL-terminated) taken relative to the directory
 * of the running program, e.g. "../machine-os/machine-os.iso"; NULL if none. */
char *fs_find_beside_exe(const char *const *rel);

/* write(2) until everything is written (EINTR retried); -1 with errno on failure. */
int fs_write_all(int fd, const void *data, size_t len);

/* Copies a file (mode preserved unless mode != 0) atomically. */
int fs_copy_file(const char *src, const char *dst, mode_t mode, struct merr *err) MUST_CHECK;

/* Joins path components with '/'; returns a malloc'd string (never NULL: aborts on OOM). */
char *path_join(const char *a, const char *b);

/* asprintf that aborts on OOM: this project treats malloc failure of small strings as fatal. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xstrdup(const char *s);
void *xcalloc(size_t n, size_t size);

#endif
