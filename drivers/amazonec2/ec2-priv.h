/* The amazonec2 driver's internals: pure builders and parsers of the EC2 Query API (ec2-xml.c,
 * unit-tested with the API reference's example answers) and the signed, rate-limited client
 * (ec2-api.c). */
#ifndef MACHINE_EC2_PRIV_H
#define MACHINE_EC2_PRIV_H

#ifndef MACHINE_EC2_PRIV
#error "ec2-priv.h is private to drivers/amazonec2 and its tests"
#endif

#include <stdbool.h>
#include <stddef.h>

#include "cleanup.h"
#include "error.h"

struct driver_ctx;
struct machine;
struct http_client;
struct ratelimit;

#define EC2_API_VERSION "2016-11-15"
/* The tag every resource a machine makes carries, valued with the machine's owner token, so
 * `rm` finds them even when a killed create never recorded their ids. */
#define EC2_OWNER_TAG "machine-owner"

/* ---- pure (ec2-xml.c) ---- */

/* A Query API body: "Action=A&Version=V" then each key=value pair of params (NULL-terminated,
 * alternating key and value; a NULL value skips its pair), all form-encoded. malloc'd. */
char *ec2_query(const char *action, const char *const *params);

/* An error answer (<Response><Errors><Error><Code/><Message/>…): 1 with *code and *message
 * (malloc'd) filled, 0 when the body is not one. */
int ec2_parse_error(const char *body, size_t len, char **code, char **message);

struct ec2_instance {
    char *id;
    char *state;      /* pending, running, stopping, stopped, shutting-down, terminated */
    char *public_ip;  /* ipAddress, or NULL */
    char *private_ip; /* privateIpAddress, or NULL */
};
void ec2_instances_free(struct ec2_instance *v, size_t n);
void ec2_instance_clear(struct ec2_instance *in);

/* RunInstances or DescribeInstances: every instance of every reservation; *next_token
 * (malloc'd) when the answer has a nextToken. */
int ec2_parse_instances(const char *body, size_t len, struct ec2_instance **out, size_t *n,
                        char **next_token, struct merr *err) MUST_CHECK;

/* DescribeImages: the imageId of the image with the latest creationDate (ISO 8601, so the
 * text order), or NULL with MERR_NOT_FOUND when the answer lists none. */
char *ec2_parse_newest_image(const char *body, size_t len, struct merr *err) MUST_CHECK;

/* The text of the first element named `name` anywhere in the answer (groupId of
 * CreateSecurityGroup, keyFingerprint of ImportKeyPair), malloc'd; NULL with MERR_PROTOCOL
 * when there is none. */
char *ec2_parse_field(const char *body, size_t len, const char *name, struct merr *err) MUST_CHECK;

/* One field of every item of the first set named `set` (DescribeSubnets' subnetSet,
 * DescribeSecurityGroups' securityGroupInfo, DescribeSpotInstanceRequests'
 * spotInstanceRequestSet): a NULL-terminated vector with "" for an item without it. */
char **ec2_parse_column(const char *body, size_t len, const char *set, const char *field,
                        struct merr *err) MUST_CHECK;

/* Appends the pair (key formatted from key_fmt, value) to *v, a vector of alternating keys
 * and values for ec2_query; a NULL value adds nothing. */
void ec2_param(char ***v, const char *value, const char *key_fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* What RunInstances and a spot request's LaunchSpecification share, under prefix ("" or
 * "LaunchSpecification."), from the machine's driver fields; userdata_b64 may be NULL. */
void ec2_launch_params(char ***p, const char *prefix, const struct machine *m,
                       const char *userdata_b64);

/* The instance's Name, owner and user tags as TagSpecification.SPEC (spec > 0, RunInstances)
 * or as CreateTags' Tag.N (spec 0). MERR_INVALID for a malformed --amazonec2-tags. */
int ec2_instance_tags(char ***p, int spec, const struct machine *m, struct merr *err) MUST_CHECK;

/* docker-machine's --amazonec2-tags "k1,v1,k2,v2" into key/value pairs (a vector of
 * alternating keys and values); MERR_INVALID for an odd count or an empty key. */
char **ec2_parse_tags(const char *text, struct merr *err) MUST_CHECK;

/* ---- the client (ec2-api.c) ---- */

struct ec2 {
    const struct driver_ctx *ctx;
    struct http_client *http;
    struct ratelimit *rl;
    char *url;  /* endpoint URL, ends in '/' */
    char *host; /* host[:port] as sent in Host */
    char *path;
    char *region;
    char *access_key, *secret_key, *session_token;
    char *last_code; /* the EC2 error code of the last failed call, or NULL */
    unsigned throttled; /* throttled answers seen (for the debug log and tests) */
};

/* Credentials (saved secrets, else the recorded profile re-read from ~/.aws, else the
 * environment), the endpoint (--amazonec2-endpoint or https://ec2.REGION.amazonaws.com/) and
 * a client whose every attempt takes a token from the account's shared limiter. */
int ec2_open(struct ec2 *e, const struct driver_ctx *ctx, const struct machine *m,
             struct merr *err) MUST_CHECK;
void ec2_close(struct ec2 *e);

/* Performs a signed call, signed again at each attempt (SigV4 signs the time): a throttled
 * or 5xx answer is tried again after a capped backoff within the operation's deadline.
 * core/cloud.c's cloud_do cannot re-sign, so this loop is EC2's own; the rate limiter, the
 * error mapping (cloud_error) and the throttling codes are the shared ones. *body (malloc'd)
 * gets a 2xx answer; a failed answer is "ec2 ACTION: STATUS CODE: MESSAGE" with its merr code
 * from cloud_error_code, and e->last_code set. */
int ec2_call(struct ec2 *e, const char *action, const char *const *params, char **body,
             size_t *len, struct merr *err) MUST_CHECK;

/* Pure: cloud_throttled, plus a 5xx without a code or with InternalError/Unavailable. */
bool ec2_throttled(long status, const char *code);

/* ---- instances and what goes with them (ec2-run.c) ---- */

/* The instance id, NULL out->id when EC2 no longer knows it (or it is terminated). */
int ec2_describe_instance(struct ec2 *e, const char *id, struct ec2_instance *out,
                          struct merr *err) MUST_CHECK;
/* Waits (bounded by the operation) until the instance is in state `want`; with
 * need_address, until it also has the address the machine uses. */
int ec2_wait_state(struct ec2 *e, struct machine *m, const char *want, bool need_address,
                   struct merr *err) MUST_CHECK;
/* The address the machine uses: private with --amazonec2-private-address-only or
 * --amazonec2-use-private-address, else public. */
const char *ec2_machine_address(const struct machine *m, const struct ec2_instance *in);

int ec2_create(const struct driver_ctx *ctx, struct machine *m, struct merr *err);
int ec2_remove(const struct driver_ctx *ctx, struct machine *m, struct merr *err);

#endif
