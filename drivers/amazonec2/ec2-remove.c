/* rm: everything the machine made, found by its owner tag and by the ids it recorded; what is
 * already gone is success, said once. */
#include <stdlib.h>
#include <string.h>

#include "cloud.h"
#include "driver.h"
#include "ec2-priv.h"
#include "fsutil.h"
#include "log.h"
#include "machine.h"
#include "strv.h"

#define EC2_MAX_PAGES 100

struct owned {
    struct ec2 *e;
    const char *token;
    char **ids;
};

/* One DescribeInstances page of live instances carrying the owner tag. */
static int owned_page(void *opaque, const char *cursor, char **next, struct merr *err)
{
    struct owned *o = opaque;
    auto_free char *tag = xasprintf("tag:%s", EC2_OWNER_TAG);
    const char *p[] = { "Filter.1.Name", tag, "Filter.1.Value.1", o->token,
                        "Filter.2.Name", "instance-state-name",
                        "Filter.2.Value.1", "pending", "Filter.2.Value.2", "running",
                        "Filter.2.Value.3", "stopping", "Filter.2.Value.4", "stopped",
                        "Filter.2.Value.5", "shutting-down",
                        "MaxResults", "5", "NextToken", cursor, NULL };
    auto_free char *body = NULL;
    size_t len = 0;
    if (ec2_call(o->e, "DescribeInstances", p, &body, &len, err) < 0)
        return -1;
    struct ec2_instance *v = NULL;
    size_t n = 0;
    if (ec2_parse_instances(body, len, &v, &n, next, err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].state != NULL ? v[i].state : "", "shutting-down") != 0)
            o->ids = strv_push(o->ids, v[i].id);
    ec2_instances_free(v, n);
    return 0;
}

/* Live instance ids carrying the owner tag, every page (NextToken) read. */
static int owned_instances(struct ec2 *e, const char *token, char ***ids, struct merr *err)
{
    struct owned o = { e, token, *ids };
    int r = cloud_paginate(owned_page, &o, EC2_MAX_PAGES, err);
    *ids = o.ids;
    return r;
}

static bool in_list(char *const *v, const char *s)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

static int cancel_spot(struct ec2 *e, const struct machine *m, const char *token,
                       struct merr *err)
{
    auto_strv char **ids = NULL;
    const char *recorded = machine_driver_str(m, "SpotRequestId");
    if (recorded != NULL && recorded[0] != '\0')
        ids = strv_push(ids, recorded);
    if (token != NULL) {
        auto_free char *tag = xasprintf("tag:%s", EC2_OWNER_TAG);
        const char *p[] = { "Filter.1.Name", tag, "Filter.1.Value.1", token, NULL };
        auto_free char *body = NULL;
        size_t len = 0;
        if (ec2_call(e, "DescribeSpotInstanceRequests", p, &body, &len, err) < 0)
            return -1;
        auto_strv char **found = ec2_parse_column(body, len, "spotInstanceRequestSet",
                                                  "spotInstanceRequestId", err);
        if (found == NULL)
            return -1;
        for (size_t i = 0; found[i] != NULL; i++)
            if (!in_list(ids, found[i]))
                ids = strv_push(ids, found[i]);
    }
    if (ids == NULL)
        return 0;
    auto_strv char **p = NULL;
    for (size_t i = 0; ids[i] != NULL; i++)
        ec2_param(&p, ids[i], "SpotInstanceRequestId.%zu", i + 1);
    auto_free char *body = NULL;
    if (ec2_call(e, "CancelSpotInstanceRequests", (const char *const *)p, &body, NULL, err) < 0 &&
        err->code != MERR_NOT_FOUND)
        return -1;
    merr_clear(err);
    return 0;
}

struct gone_wait {
    struct ec2 *e;
    char **ids;
};

static int poll_gone(void *opaque, struct merr *err)
{
    struct gone_wait *w = opaque;
    for (size_t i = 0; w->ids[i] != NULL; i++) {
        struct ec2_instance in = { 0 };
        if (ec2_describe_instance(w->e, w->ids[i], &in, err) < 0) {
            if (err->code != MERR_BUSY && err->code != MERR_TIMEOUT)
                return -1;
            merr_clear(err);
            return 0;
        }
        bool live = in.id != NULL;
        ec2_instance_clear(&in);
        if (live)
            return 0;
    }
    return 1;
}

static int terminate(struct ec2 *e, struct machine *m, const char *token, bool wait,
                     struct merr *err)
{
    auto_strv char **ids = NULL;
    if (token != NULL && owned_instances(e, token, &ids, err) < 0)
        return -1;
    const char *recorded = machine_driver_str(m, "InstanceId");
    if (recorded != NULL && recorded[0] != '\0' && !in_list(ids, recorded)) {
        struct ec2_instance in = { 0 };
        if (ec2_describe_instance(e, recorded, &in, err) < 0)
            return -1;
        if (in.id != NULL)
            ids = strv_push(ids, recorded);
        else
            mlog_warn(e->ctx->log, "amazonec2: instance %s is already gone", recorded);
        ec2_instance_clear(&in);
    }
    if (ids == NULL)
        return 0;
    auto_strv char **p = NULL;
    for (size_t i = 0; ids[i] != NULL; i++)
        ec2_param(&p, ids[i], "InstanceId.%zu", i + 1);
    auto_free char *body = NULL;
    if (ec2_call(e, "TerminateInstances", (const char *const *)p, &body, NULL, err) < 0)
        return err->code == MERR_NOT_FOUND ? (merr_clear(err), 0) : -1;
    if (!wait)
        return 0;
    struct gone_wait w = { e, ids };
    return driver_wait_until(e->ctx, 0, "the instance terminated", poll_gone, &w, err);
}

static int delete_one_key(struct ec2 *e, const char *name, struct merr *err)
{
    const char *p[] = { "KeyName", name, NULL };
    auto_free char *body = NULL;
    if (ec2_call(e, "DeleteKeyPair", p, &body, NULL, err) < 0)
        return err->code == MERR_NOT_FOUND ? (merr_clear(err), 0) : -1;
    return 0;
}

/* The key pair the machine imported: recorded, or found by the owner tag (a killed create). */
static int delete_key(struct ec2 *e, const struct machine *m, const char *token,
                      struct merr *err)
{
    const char *user = machine_driver_str(m, "KeyName");
    if (user != NULL && user[0] != '\0')
        return 0; /* the user's own key pair stays */
    const char *name = machine_driver_str(m, "KeyPairName");
    bool recorded = machine_driver_int(m, "KeyPairImported", 0) != 0 && name != NULL;
    if (recorded && delete_one_key(e, name, err) < 0)
        return -1;
    if (token == NULL)
        return 0;
    auto_free char *tag = xasprintf("tag:%s", EC2_OWNER_TAG);
    const char *p[] = { "Filter.1.Name", tag, "Filter.1.Value.1", token, NULL };
    auto_free char *body = NULL;
    size_t len = 0;
    if (ec2_call(e, "DescribeKeyPairs", p, &body, &len, err) < 0)
        return -1;
    auto_strv char **names = ec2_parse_column(body, len, "keySet", "keyName", err);
    if (names == NULL)
        return -1;
    for (size_t i = 0; names[i] != NULL; i++)
        if (!(recorded && strcmp(names[i], name) == 0) && delete_one_key(e, names[i], err) < 0)
            return -1;
    return 0;
}

/* The groups this machine made (owner tag); one still used by another instance stays. */
static int delete_groups(struct ec2 *e, const char *token, struct merr *err)
{
    auto_free char *tag = xasprintf("tag:%s", EC2_OWNER_TAG);
    const char *p[] = { "Filter.1.Name", tag, "Filter.1.Value.1", token, NULL };
    auto_free char *body = NULL;
    size_t len = 0;
    if (ec2_call(e, "DescribeSecurityGroups", p, &body, &len, err) < 0)
        return -1;
    auto_strv char **ids = ec2_parse_column(body, len, "securityGroupInfo", "groupId", err);
    if (ids == NULL)
        return -1;
    for (size_t i = 0; ids[i] != NULL; i++) {
        const char *d[] = { "GroupId", ids[i], NULL };
        auto_free char *out = NULL;
        if (ec2_call(e, "DeleteSecurityGroup", d, &out, NULL, err) == 0 ||
            err->code == MERR_NOT_FOUND) {
            merr_clear(err);
            continue;
        }
        if (e->last_code == NULL || strcmp(e->last_code, "DependencyViolation") != 0)
            return -1;
        mlog_warn(e->ctx->log, "amazonec2: security group %s is still used by other instances; "
                  "left in place", ids[i]);
        merr_clear(err);
    }
    return 0;
}

int ec2_remove(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    const char *token = machine_driver_str(m, "OwnerToken");
    if (token != NULL && token[0] == '\0')
        token = NULL;
    const char *id = machine_driver_str(m, "InstanceId");
    if (token == NULL && (id == NULL || id[0] == '\0'))
        return 0; /* precreate never finished: nothing was made */
    struct ec2 e;
    if (ec2_open(&e, ctx, m, err) < 0)
        return -1;
    int r = -1;
    if (cancel_spot(&e, m, token, err) == 0 && terminate(&e, m, token, token != NULL, err) == 0 &&
        delete_key(&e, m, token, err) == 0 && (token == NULL || delete_groups(&e, token, err) == 0))
        r = 0;
    ec2_close(&e);
    return r;
}
