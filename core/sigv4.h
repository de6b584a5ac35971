/* AWS Signature Version 4 (header signing) as pure functions: the canonical request, the
 * string to sign and the Authorization header of a request, from its parts and a fixed
 * X-Amz-Date. Checked against AWS's published test suite (tests/unit/test_sigv4.c). Nothing here
 * reads a clock, the network or the environment; the secret key is never copied into a
 * result. */
#ifndef MACHINE_SIGV4_H
#define MACHINE_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "cleanup.h"

struct merr;

struct sigv4_request {
    const char *method;          /* "GET", "POST" */
    const char *path;            /* URI-encoded path ("" or NULL: "/") */
    const char *query;           /* encoded "k=v&k2=v2" in any order, or NULL */
    const char *const *headers;  /* "Name: value" lines, NULL-terminated; all are signed and
                                  * must include Host and X-Amz-Date (and X-Amz-Security-Token
                                  * with temporary credentials) */
    const void *payload;
    size_t payload_len;
};

struct sigv4_key {
    const char *access_key;
    const char *secret_key;
    const char *region;  /* "us-east-1" */
    const char *service; /* "ec2" */
};

/* The canonical request (AWS's CanonicalRequest), malloc'd. MERR_INVALID for a header line
 * without a colon or a request without X-Amz-Date. */
char *sigv4_canonical_request(const struct sigv4_request *rq, struct merr *err) MUST_CHECK;

/* "AWS4-HMAC-SHA256\nDATE\nSCOPE\nHEX(SHA256(canonical))", malloc'd. */
char *sigv4_string_to_sign(const char *amz_date, const char *region, const char *service,
                           const char *canonical_request) MUST_CHECK;

/* The whole Authorization header value ("AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…,
 * Signature=…"), malloc'd. */
char *sigv4_authorization(const struct sigv4_request *rq, const struct sigv4_key *key,
                          struct merr *err) MUST_CHECK;

/* Hex SHA-256 of a buffer into out (65 bytes). */
void sigv4_sha256_hex(const void *data, size_t len, char out[65]);

/* "20150830T123600Z" for t (UTC) into out (17 bytes). */
void sigv4_amz_date(time_t t, char out[17]);

/* RFC 3986 encoding as SigV4 wants it (unreserved A-Z a-z 0-9 - . _ ~ kept, the rest %XX in
 * upper case; '/' kept when keep_slash), malloc'd. */
char *sigv4_uri_encode(const char *s, bool keep_slash) MUST_CHECK;

#endif
