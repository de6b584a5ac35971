/* create and remove: key pair, security group, the instance (on demand or spot), waits; rm
 * finds everything by the machine's owner tag as well as by the ids it recorded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "driver.h"
#include "ec2-priv.h"
#include "fsutil.h"
#include "log.h"
#include "machine.h"
#include "strv.h"

#define EC2_USERDATA_MAX (16 * 1024)

static bool flag_on(const struct machine *m, const char *key)
{
    return json_is_true(json_object_get(m->driver, key));
}

static const char *str_or(const struct machine *m, const char *key, const char *def)
{
    const char *v = machine_driver_str(m, key);
    return v != NULL && v[0] != '\0' ? v : def;
}

static char *base64(const void *data, size_t len)
{
    char *out = xcalloc(4 * ((len + 2) / 3) + 1, 1);
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}


int ec2_describe_instance(struct ec2 *e, const char *id, struct ec2_instance *out,
                          struct merr *err)
{
    *out = (struct ec2_instance){ 0 };
    const char *p[] = { "InstanceId.1", id, NULL };
    auto_free char *body = NULL;
    size_t len = 0;
    if (ec2_call(e, "DescribeInstances", p, &body, &len, err) < 0)
        return err->code == MERR_NOT_FOUND ? (merr_clear(err), 0) : -1;
    struct ec2_instance *v = NULL;
    size_t n = 0;
    if (ec2_parse_instances(body, len, &v, &n, NULL, err) < 0)
        return -1;
    if (n > 0 && v[0].state != NULL && strcmp(v[0].state, "terminated") != 0) {
        *out = v[0];
        v[0] = (struct ec2_instance){ 0 };
    }
    ec2_instances_free(v, n);
    return 0;
}

const char *ec2_machine_address(const struct machine *m, const struct ec2_instance *in)
{
    if (flag_on(m, "PrivateIPOnly") || flag_on(m, "UsePrivateIP"))
        return in->private_ip;
    return in->public_ip;
}

/* A poll's failed call that the wait should simply try again (throttled past its retries, a
 * request cut by the operation's deadline: driver_wait_until then says what did not happen). */
static int transient(struct merr *err)
{
    if (err->code != MERR_BUSY && err->code != MERR_TIMEOUT)
        return -1;
    merr_clear(err);
    return 0;
}

struct wait_state {
    struct ec2 *e;
    struct machine *m;
    const char *want;
    bool need_address;
};

static int poll_state(void *opaque, struct merr *err)
{
    struct wait_state *w = opaque;
    const char *id = machine_driver_str(w->m, "InstanceId");
    struct ec2_instance in = { 0 };
    if (ec2_describe_instance(w->e, id, &in, err) < 0)
        return transient(err);
    int r = 0;
    if (in.id == NULL) {
        r = merr_set(err, MERR_NOT_FOUND, 0, "instance %s is gone (terminated)", id);
    } else if (strcmp(in.state, w->want) == 0) {
        const char *addr = ec2_machine_address(w->m, &in);
        if (addr != NULL)
            machine_driver_set_str(w->m, DKEY_IP, addr);
        if (in.private_ip != NULL)
            machine_driver_set_str(w->m, "PrivateIPAddress", in.private_ip);
        r = !w->need_address || addr != NULL ? 1 : 0;
    } else if (strcmp(w->want, "running") == 0 &&
               (strcmp(in.state, "stopped") == 0 || strcmp(in.state, "shutting-down") == 0)) {
        r = merr_set(err, MERR_REMOTE, 0, "instance %s is %s instead of running", id, in.state);
    }
    ec2_instance_clear(&in);
    return r;
}

int ec2_wait_state(struct ec2 *e, struct machine *m, const char *want, bool need_address,
                   struct merr *err)
{
    struct wait_state w = { e, m, want, need_address };
    auto_free char *what = xasprintf("instance %s %s%s", machine_driver_str(m, "InstanceId"),
                                     want, need_address ? " with an address" : "");
    return driver_wait_until(e->ctx, 0, what, poll_state, &w, err);
}

/* ---- create ---- */

static void owner_tags(char ***p, const char *prefix, int spec, const char *type,
                       const struct machine *m)
{
    ec2_param(p, type, "%sTagSpecification.%d.ResourceType", prefix, spec);
    ec2_param(p, EC2_OWNER_TAG, "%sTagSpecification.%d.Tag.1.Key", prefix, spec);
    ec2_param(p, machine_driver_str(m, "OwnerToken"), "%sTagSpecification.%d.Tag.1.Value",
              prefix, spec);
}

static int import_key(struct ec2 *e, const struct driver_ctx *ctx, struct machine *m,
                      struct merr *err)
{
    if (machine_driver_str(m, "KeyName") != NULL && machine_driver_str(m, "KeyName")[0] != '\0')
        return 0; /* the user's own key pair */
    if (ctx->ssh_public_key == NULL)
        return merr_set(err, MERR_INTERNAL, 0, "no public key to import");
    auto_free char *material = base64(ctx->ssh_public_key, strlen(ctx->ssh_public_key));
    auto_strv char **p = NULL;
    ec2_param(&p, machine_driver_str(m, "KeyPairName"), "KeyName");
    ec2_param(&p, material, "PublicKeyMaterial");
    owner_tags(&p, "", 1, "key-pair", m);
    auto_free char *body = NULL;
    if (ec2_call(e, "ImportKeyPair", (const char *const *)p, &body, NULL, err) < 0)
        return -1;
    machine_driver_set_int(m, "KeyPairImported", 1);
    return 0;
}

static int authorize_ports(struct ec2 *e, const char *group_id, int engine_port,
                           struct merr *err)
{
    char engine[16];
    snprintf(engine, sizeof engine, "%d", engine_port);
    const char *p[] = {
        "GroupId", group_id,
        "IpPermissions.1.IpProtocol", "tcp", "IpPermissions.1.FromPort", "22",
        "IpPermissions.1.ToPort", "22", "IpPermissions.1.IpRanges.1.CidrIp", "0.0.0.0/0",
        "IpPermissions.2.IpProtocol", "tcp", "IpPermissions.2.FromPort", engine,
        "IpPermissions.2.ToPort", engine, "IpPermissions.2.IpRanges.1.CidrIp", "0.0.0.0/0",
        NULL,
    };
    auto_free char *body = NULL;
    return ec2_call(e, "AuthorizeSecurityGroupIngress", p, &body, NULL, err);
}

/* The named group of the VPC, or a new one with SSH and the engine port open. */
static int ensure_group(struct ec2 *e, struct machine *m, struct merr *err)
{
    const char *name = str_or(m, "SecurityGroup", "docker-machine");
    const char *vpc = machine_driver_str(m, "VpcId");
    const char *q[] = { "Filter.1.Name", "group-name", "Filter.1.Value.1", name,
                        "Filter.2.Name", "vpc-id", "Filter.2.Value.1", vpc, NULL };
    auto_free char *body = NULL;
    size_t len = 0;
    if (ec2_call(e, "DescribeSecurityGroups", q, &body, &len, err) < 0)
        return -1;
    auto_strv char **ids = ec2_parse_column(body, len, "securityGroupInfo", "groupId", err);
    if (ids == NULL)
        return -1;
    if (ids[0] != NULL) {
        machine_driver_set_str(m, "SecurityGroupId", ids[0]);
        return 0;
    }
    auto_strv char **p = NULL;
    ec2_param(&p, name, "GroupName");
    ec2_param(&p, "machine: SSH and the engine's TLS port", "GroupDescription");
    ec2_param(&p, vpc, "VpcId");
    owner_tags(&p, "", 1, "security-group", m);
    auto_free char *made = NULL;
    len = 0;
    if (ec2_call(e, "CreateSecurityGroup", (const char *const *)p, &made, &len, err) < 0)
        return -1;
    auto_free char *gid = ec2_parse_field(made, len, "groupId", err);
    if (gid == NULL)
        return -1;
    machine_driver_set_str(m, "SecurityGroupId", gid);
    machine_driver_set_int(m, "SecurityGroupCreated", 1);
    return authorize_ports(e, gid, m->engine.port, err);
}

/* The user data file, base64-encoded (NULL when none). */
static int userdata(const struct machine *m, char **b64, struct merr *err)
{
    *b64 = NULL;
    const char *ud = machine_driver_str(m, "UserDataFile");
    if (ud == NULL || ud[0] == '\0')
        return 0;
    auto_free char *data = NULL;
    size_t len = 0;
    if (fs_read_file(ud, EC2_USERDATA_MAX, &data, &len, err) < 0)
        return merr_prefix(err, "--amazonec2-userdata");
    *b64 = base64(data, len);
    return 0;
}

static int poll_spot(void *opaque, struct merr *err)
{
    struct wait_state *w = opaque;
    const char *p[] = { "SpotInstanceRequestId.1", machine_driver_str(w->m, "SpotRequestId"), NULL };
    auto_free char *body = NULL;
    size_t len = 0;
    if (ec2_call(w->e, "DescribeSpotInstanceRequests", p, &body, &len, err) < 0)
        return err->code == MERR_NOT_FOUND ? (merr_clear(err), 0) : transient(err);
    auto_strv char **ids = ec2_parse_column(body, len, "spotInstanceRequestSet", "instanceId", err);
    auto_strv char **st = ec2_parse_column(body, len, "spotInstanceRequestSet", "state", err);
    if (ids == NULL || st == NULL)
        return -1;
    if (st[0] != NULL && (strcmp(st[0], "cancelled") == 0 || strcmp(st[0], "failed") == 0 ||
                          strcmp(st[0], "closed") == 0))
        return merr_set(err, MERR_REMOTE, 0, "spot request %s is %s",
                        machine_driver_str(w->m, "SpotRequestId"), st[0]);
    if (ids[0] == NULL || ids[0][0] == '\0')
        return 0;
    machine_driver_set_str(w->m, "InstanceId", ids[0]);
    return 1;
}

static int launch_spot(struct ec2 *e, struct machine *m, struct merr *err)
{
    auto_strv char **p = NULL;
    ec2_param(&p, str_or(m, "SpotPrice", "0.50"), "SpotPrice");
    ec2_param(&p, "1", "InstanceCount");
    owner_tags(&p, "", 1, "spot-instances-request", m);
    auto_free char *ud = NULL;
    if (userdata(m, &ud, err) < 0)
        return -1;
    ec2_launch_params(&p, "LaunchSpecification.", m, ud);
    auto_free char *body = NULL;
    size_t len = 0;
    if (ec2_call(e, "RequestSpotInstances", (const char *const *)p, &body, &len, err) < 0)
        return -1;
    auto_strv char **ids = ec2_parse_column(body, len, "spotInstanceRequestSet",
                                            "spotInstanceRequestId", err);
    if (ids == NULL)
        return -1;
    if (ids[0] == NULL || ids[0][0] == '\0')
        return merr_set(err, MERR_PROTOCOL, 0, "ec2 RequestSpotInstances: no request id");
    machine_driver_set_str(m, "SpotRequestId", ids[0]);
    struct wait_state w = { e, m, NULL, false };
    auto_free char *what = xasprintf("spot request %s fulfilled", ids[0]);
    if (driver_wait_until(e->ctx, 0, what, poll_spot, &w, err) < 0)
        return -1;
    auto_strv char **t = NULL;
    ec2_param(&t, machine_driver_str(m, "InstanceId"), "ResourceId.1");
    if (ec2_instance_tags(&t, 0, m, err) < 0)
        return -1;
    auto_free char *tb = NULL;
    return ec2_call(e, "CreateTags", (const char *const *)t, &tb, NULL, err);
}

static int launch(struct ec2 *e, struct machine *m, struct merr *err)
{
    if (flag_on(m, "RequestSpotInstance"))
        return launch_spot(e, m, err);
    auto_strv char **p = NULL;
    ec2_param(&p, "1", "MinCount");
    ec2_param(&p, "1", "MaxCount");
    /* the same token on a retried call launches nothing more (EC2 idempotency) */
    ec2_param(&p, machine_driver_str(m, "OwnerToken"), "ClientToken");
    auto_free char *ud = NULL;
    if (userdata(m, &ud, err) < 0)
        return -1;
    ec2_launch_params(&p, "", m, ud);
    if (ec2_instance_tags(&p, 1, m, err) < 0)
        return -1;
    auto_free char *body = NULL;
    size_t len = 0;
    if (ec2_call(e, "RunInstances", (const char *const *)p, &body, &len, err) < 0)
        return -1;
    struct ec2_instance *v = NULL;
    size_t n = 0;
    if (ec2_parse_instances(body, len, &v, &n, NULL, err) < 0)
        return -1;
    if (n == 0) {
        ec2_instances_free(v, n);
        return merr_set(err, MERR_PROTOCOL, 0, "ec2 RunInstances: no instance in the answer");
    }
    machine_driver_set_str(m, "InstanceId", v[0].id);
    ec2_instances_free(v, n);
    return 0;
}

int ec2_create(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    if (m->engine.port <= 0)
        m->engine.port = MACHINE_DEFAULT_ENGINE_PORT;
    machine_driver_set_int(m, DKEY_SSH_PORT, 22);
    struct ec2 e;
    if (ec2_open(&e, ctx, m, err) < 0)
        return -1;
    int r = -1;
    if (import_key(&e, ctx, m, err) == 0 && ensure_group(&e, m, err) == 0 &&
        launch(&e, m, err) == 0) {
        mlog_debug(ctx->log, "amazonec2: instance %s launched, waiting for it to run",
                   machine_driver_str(m, "InstanceId"));
        r = ec2_wait_state(&e, m, "running", true, err);
    }
    ec2_close(&e);
    return r;
}
