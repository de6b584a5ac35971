/* SSH key files: ed25519 key generation in OpenSSH formats, permission checks
 * and OpenSSH-style SHA256 fingerprints. No network, no libssh2. */
#ifndef MACHINE_SSHKEY_H
#define MACHINE_SSHKEY_H

#include <stddef.h>

#include "cleanup.h"

struct merr;

/* "SHA256:" + 43 base64 characters + NUL, with room to spare. */
#define SSHKEY_FINGERPRINT_MAX 64

/* Writes an "openssh-key-v1" private key (cipher none) with mode 0600 and an
 * "ssh-ed25519 AAAA... comment" public key with mode 0644, each through a temp
 * file and rename. Refuses (MERR_EXISTS) to replace an existing key file. */
int sshkey_generate_ed25519(const char *priv_path, const char *pub_path, const char *comment,
                            struct merr *err) MUST_CHECK;

/* MERR_PERM if the file is readable or writable by group/others (mode & 077),
 * MERR_NOT_FOUND if it does not exist. */
int sshkey_check_private_perms(const char *path, struct merr *err) MUST_CHECK;

/* Reads a private key file after the permission check above, from the same
 * open file (no race between check and read). *data is NUL-terminated. */
int sshkey_read_private(const char *path, char **data, size_t *len, struct merr *err) MUST_CHECK;

/* OpenSSH fingerprint "SHA256:<base64 without padding>" of a public key blob
 * (the SSH wire encoding, i.e. the base64-decoded middle field of a .pub line). */
int sshkey_fingerprint_sha256(const void *blob, size_t len, char out[SSHKEY_FINGERPRINT_MAX],
                              struct merr *err) MUST_CHECK;

/* The same, from the base64 text of the blob (as found in known_hosts or .pub). */
int sshkey_fingerprint_base64(const char *b64, char out[SSHKEY_FINGERPRINT_MAX],
                              struct merr *err) MUST_CHECK;

#endif
