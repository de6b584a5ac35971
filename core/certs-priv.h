/* Internals shared by certs.c and certs-io.c, and reachable from the unit tests.
 * Not part of the public API. */
#ifndef MACHINE_CERTS_PRIV_H
#define MACHINE_CERTS_PRIV_H

#ifndef MACHINE_CERTS_PRIV
#error "certs-priv.h is internal to core/certs/ and its tests (they define MACHINE_CERTS_PRIV)"
#endif

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <openssl/types.h>

#include "cleanup.h"
#include "error.h"

/* PEM files we read are small; anything bigger is not ours. */
#define CERTS_MAX_FILE_SIZE (256 * 1024)

/* The one place OpenSSL errors become a struct merr: formats the message, appends
 * the reason of the earliest queued OpenSSL error (the root cause), clears the
 * queue, returns -1. `code` is MERR_CRYPTO, or MERR_CORRUPT for stored data that
 * does not parse. */
int certs_ossl_fail(struct merr *err, enum merr_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- files (certs-io.c) ---- */

/* Creates dir and its missing parents with mode 0700 (umask notwithstanding).
 * An existing dir is left as it is. */
int certs_mkdir_private(const char *dir, struct merr *err) MUST_CHECK;

/* Takes an exclusive flock on <dir>/.lock, polling for at most timeout_ms;
 * MERR_BUSY on timeout. The lock is held until *fd_out is closed. */
int certs_lock_dir(const char *dir, int timeout_ms, int *fd_out, struct merr *err) MUST_CHECK;

/* Removes temp files left in dir by an interrupted certs_stage_file (call it
 * only while holding the dir's lock). Best effort. */
void certs_collect_temps(const char *dir);

/* Reads a whole regular file of at most CERTS_MAX_FILE_SIZE bytes (MERR_CORRUPT
 * if larger, MERR_NOT_FOUND if missing). With `private_key`, a file readable or
 * writable by group or others is refused with MERR_PERM. The buffer is
 * NUL-terminated; free it with certs_secret_free() when it held a key. */
int certs_read_file(const char *path, bool private_key, char **data, size_t *len,
                    struct merr *err) MUST_CHECK;
void certs_secret_free(char *data, size_t len);

/* Atomic write, in two steps so that several files can be prepared before any
 * is published: stage writes data to a temp file next to path (mode `mode`,
 * fsynced) and returns its name; commit renames it over path and fsyncs the
 * directory; discard unlinks and frees it. */
int certs_stage_file(const char *path, const void *data, size_t len, mode_t mode,
                     char **tmp_out, struct merr *err) MUST_CHECK;
int certs_commit_file(char *tmp, const char *path, struct merr *err) MUST_CHECK;
void certs_discard_file(char *tmp);

/* stage + commit. */
int certs_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                       struct merr *err) MUST_CHECK;

/* Loads the first certificate of a PEM file / a PEM private key (mode-checked,
 * never prompts for a passphrase). Parse failures are MERR_CORRUPT. */
X509 *certs_load_cert(const char *path, struct merr *err);
EVP_PKEY *certs_load_key(const char *path, struct merr *err);

/* Serializes a certificate + key and publishes both (key first): either both
 * files are replaced or, on error, neither. */
int certs_write_pair(X509 *cert, EVP_PKEY *key, const char *cert_path, const char *key_path,
                     struct merr *err) MUST_CHECK;

/* Cleanup helpers for OpenSSL objects (their free functions accept NULL). */
void certs_x509_freep(X509 **p);
void certs_pkey_freep(EVP_PKEY **p);
#define auto_x509 __attribute__((cleanup(certs_x509_freep)))
#define auto_pkey __attribute__((cleanup(certs_pkey_freep)))

/* Joins dir and name into a newly allocated path (NULL when out of memory). */
char *certs_path_join(const char *dir, const char *name);

#endif
