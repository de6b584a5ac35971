/* SSH keys: ed25519 generation in OpenSSH's own format, and permission checks. */
#ifndef MACHINE_SSHKEY_H
#define MACHINE_SSHKEY_H

#include <stddef.h>
#include <stdint.h>

#include "cleanup.h"

struct merr;

/* Writes an unencrypted "openssh-key-v1" private key (0600) and "ssh-ed25519 AAAA… comment"
 * public key (0644), both atomically. */
int sshkey_generate_ed25519(const char *priv_path, const char *pub_path, const char *comment,
                            struct merr *err) MUST_CHECK;

/* MERR_PERM when the key is readable or writable by group or others (as OpenSSH refuses). */
int sshkey_check_private_perms(const char *path, struct merr *err) MUST_CHECK;

/* "SHA256:<base64 without padding>" of a key blob, as `ssh-keygen -l` prints. */
char *sshkey_fingerprint(const unsigned char *blob, size_t len);

/* Base64 without line breaks (pure helpers, shared with known_hosts handling). */
char *sshkey_base64(const unsigned char *data, size_t len);
/* Returns decoded length, or -1 for invalid input; *out malloc'd. */
long sshkey_unbase64(const char *text, unsigned char **out);

#endif
