/* A small ustar writer: regular files and directories with names up to 100 bytes, sizes past
 * 8 GiB in base-256 as GNU tar, Go's archive/tar and libarchive read them. For archives the
 * project writes itself (docker save, the kvm driver's config disk); reading stays with
 * libarchive. The engine's bundle links libarchive statically, and libarchive's writer pulls in
 * every archive format with their libraries (libxml2 for xar, liblzma, libbz2). */
#ifndef MACHINE_TARW_H
#define MACHINE_TARW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cleanup.h"

struct merr;

/* Receives the archive's bytes in order; < 0 (with err set) aborts. */
typedef int (*tarw_write_fn)(void *ctx, const void *buf, size_t len, struct merr *err);

struct tarw {
    tarw_write_fn write;
    void *ctx;
    char *buf;
    size_t len;
    uint64_t left; /* data bytes the current entry still expects */
    size_t pad;
};

/* One ustar header block: a regular file (0644) or a directory (0755), uid/gid 0, mtime 0; a
 * name of 1..100 bytes (MERR_INVALID otherwise); sizes of 8 GiB and more in base-256. */
MUST_CHECK int tar_header_encode(char block[512], const char *name, bool dir, uint64_t size,
                                 struct merr *err);
/* Entries: a header, then exactly `size` bytes of data (padding is added); close ends the
 * archive (two zero blocks) and flushes. Output goes to write in pieces of up to 64 KiB. */
MUST_CHECK int tarw_header(struct tarw *w, const char *name, bool dir, uint64_t size,
                           struct merr *err);
/* Any entry type with its metadata (docker cp): names and link targets past 100 bytes go in a
 * PAX extended header before the ustar one. */
/* An extended attribute, written as a PAX "SCHILY.xattr.<name>" record (what Go's archive/tar
 * and dockerd read); the value may hold any bytes. */
struct tarw_xattr {
    const char *name;
    const void *value;
    size_t len;
};
struct tarw_meta {
    const char *name;
    char type; /* '0' file, '1' hardlink, '5' directory, '2' symlink, '6' fifo, '3' char, '4' block */
    const char *linkname; /* symlink target ('2') or the first name of the inode ('1'), else NULL */
    const struct tarw_xattr *xattrs;
    size_t n_xattrs;
    unsigned mode;        /* permission bits, with setuid/setgid/sticky */
    unsigned long uid, gid;
    int64_t mtime;     /* seconds */
    uint64_t size;     /* files only */
    unsigned devmajor, devminor;
};
MUST_CHECK int tarw_entry(struct tarw *w, const struct tarw_meta *m, struct merr *err);
MUST_CHECK int tarw_data(struct tarw *w, const void *data, size_t len, struct merr *err);
MUST_CHECK int tarw_close(struct tarw *w, struct merr *err);
void tarw_release(struct tarw *w);

#endif
