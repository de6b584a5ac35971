/* Certificates for mutual TLS between the machine CLI and an engine: one CA and
 * one client certificate per store (<store>/certs), one server certificate per
 * machine. Keys are ECDSA P-256, signatures SHA-256, serials 128-bit random,
 * NotBefore = now - 5 minutes (guest clock skew). Files are PEM; keys are written
 * 0600, certificates 0644, directories 0700, always atomically
 * (temp file + fsync + rename + fsync of the directory). */
#ifndef MACHINE_CERTS_H
#define MACHINE_CERTS_H

#include <stdbool.h>
#include <stddef.h>

#include "cleanup.h"

struct merr;

/* File names inside a certs directory (docker-machine's layout). */
#define CERTS_CA_CERT "ca.pem"
#define CERTS_CA_KEY "ca-key.pem"
#define CERTS_CLIENT_CERT "cert.pem"
#define CERTS_CLIENT_KEY "key.pem"

/* Ensures certs_dir (created 0700, with missing parents) holds ca.pem, ca-key.pem,
 * cert.pem (client, clientAuth) and key.pem. Runs under an exclusive flock on
 * <certs_dir>/.lock, so N processes racing a first run produce exactly one CA.
 * Existing valid files are kept byte for byte. A file that does not parse, a key
 * that does not match its certificate, a client certificate not signed by the CA,
 * or a certificate present without its key (or the reverse) is MERR_CORRUPT and
 * nothing is replaced; a private key readable by group or others is MERR_PERM.
 * MERR_BUSY if the lock is not obtained within CERTS_LOCK_TIMEOUT_MS.
 * Temp files left by an interrupted write are removed under the lock, so write
 * into certs_dir only through certs_bootstrap / certs_regenerate_ca.
 * Validity dates of existing files are not checked (an expired CA is kept).
 * `org` becomes the subject O of every certificate. */
int certs_bootstrap(const char *certs_dir, const char *org, struct merr *err) MUST_CHECK;

/* Replaces the CA and the client certificate (regenerate-certs --client-certs)
 * under the same lock. Server certificates issued by the old CA stop verifying. */
int certs_regenerate_ca(const char *certs_dir, const char *org, struct merr *err) MUST_CHECK;

/* Issues a server certificate (ExtKeyUsage serverAuth, KeyUsage digitalSignature +
 * keyEncipherment) signed by the CA. Each SAN that parses as IPv4/IPv6 becomes an
 * IP SAN, any other a DNS SAN (letters, digits, '-', '.', '_', leading "*." only;
 * anything else is MERR_INVALID). "localhost" is always added; duplicates are
 * removed (IPs compared as addresses, names case-insensitively). CN is the first
 * SAN given (if it fits in 64 bytes), otherwise org. */
int certs_issue_server(const char *ca_cert, const char *ca_key, const char *org,
                       const char *const *sans, size_t n_sans, const char *cert_out,
                       const char *key_out, struct merr *err) MUST_CHECK;

/* Issues a client certificate (ExtKeyUsage clientAuth) signed by the CA. */
int certs_issue_client(const char *ca_cert, const char *ca_key, const char *org,
                       const char *cert_out, const char *key_out, struct merr *err) MUST_CHECK;

/* Sets *has to whether the certificate at cert_path lists name_or_ip among its
 * SANs: an IP address is matched against IP SANs (as an address, so "::1" equals
 * "0::1"), anything else against DNS SANs, case-insensitively and literally
 * (no wildcard expansion). Used to renew a server cert when a machine's IP changes. */
int certs_has_san(const char *cert_path, const char *name_or_ip, bool *has,
                  struct merr *err) MUST_CHECK;

/* Sets *ok to whether cert_path chains to a certificate in ca_path and is within
 * its validity period (now). *ok = false is not an error; a missing or unparsable
 * file is. */
int certs_verify_against_ca(const char *cert_path, const char *ca_path, bool *ok,
                            struct merr *err) MUST_CHECK;

/* How long certs_bootstrap / certs_regenerate_ca wait for another process. */
#define CERTS_LOCK_TIMEOUT_MS 30000

#endif
