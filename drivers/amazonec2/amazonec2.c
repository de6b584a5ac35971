/* `amazonec2`: an Amazon EC2 instance (or one of an EC2-compatible cloud) over the EC2 Query
 * API, with docker-machine's flags and environment variables. Credentials are secret flags
 * (kept in the store's credentials/, never config.json) or an AWS profile whose name alone is
 * recorded and whose files are re-read on every call. Every resource a machine makes carries
 * the machine's owner tag, so `rm` finds what a killed create never recorded. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "awsprofile.h"
#include "driver.h"
#include "ec2-priv.h"
#include "fsutil.h"
#include "log.h"
#include "machine.h"
#include "registry.h"
#include "secrets.h"
#include "strv.h"

/* Debian's AWS account, which publishes the official Debian AMIs (wiki.debian.org/Cloud/AmazonEC2Image). */
#define DEBIAN_OWNER "136693071363"
#define DEBIAN_IMAGES "debian-12-amd64-*"

static const char *const volume_types[] = { "gp3", "gp2", "io1", "io2", "st1", "sc1",
                                            "standard", NULL };

static const struct driver_flag ec2_flags[] = {
    { .name = "amazonec2-access-key", .env = "AWS_ACCESS_KEY_ID", .key = "AccessKey",
      .help = "AWS access key ID", .type = DFLAG_STRING, .secret = true },
    { .name = "amazonec2-secret-key", .env = "AWS_SECRET_ACCESS_KEY", .key = "SecretKey",
      .help = "AWS secret access key", .type = DFLAG_STRING, .secret = true },
    { .name = "amazonec2-session-token", .env = "AWS_SESSION_TOKEN", .key = "SessionToken",
      .help = "AWS session token (temporary credentials)", .type = DFLAG_STRING, .secret = true },
    { .name = "amazonec2-profile", .env = "AWS_PROFILE", .key = "Profile",
      .help = "profile of ~/.aws/credentials and ~/.aws/config to read the keys from (only its "
              "name is recorded)", .type = DFLAG_STRING },
    { .name = "amazonec2-region", .env = "AWS_DEFAULT_REGION", .def = "us-east-1",
      .key = "Region", .help = "region", .type = DFLAG_STRING },
    { .name = "amazonec2-zone", .env = "AWS_ZONE", .def = "a", .key = "Zone",
      .help = "availability zone letter", .type = DFLAG_STRING },
    { .name = "amazonec2-ami", .env = "AWS_AMI", .key = "AMI",
      .help = "AMI id (default: the newest official Debian 12 amd64 image)", .type = DFLAG_STRING },
    { .name = "amazonec2-instance-type", .env = "AWS_INSTANCE_TYPE", .def = "t3.micro",
      .key = "InstanceType", .help = "instance type", .type = DFLAG_STRING },
    { .name = "amazonec2-device-name", .env = "AWS_DEVICE_NAME", .def = "/dev/xvda",
      .key = "DeviceName", .help = "root device name of the image", .type = DFLAG_STRING },
    { .name = "amazonec2-root-size", .env = "AWS_ROOT_SIZE", .def = "16", .key = "RootSize",
      .help = "root disk size in GB", .type = DFLAG_INT, .min = 1, .max = 16384 },
    { .name = "amazonec2-volume-type", .env = "AWS_VOLUME_TYPE", .def = "gp3",
      .key = "VolumeType", .help = "root volume type", .type = DFLAG_STRING,
      .choices = volume_types },
    { .name = "amazonec2-vpc-id", .env = "AWS_VPC_ID", .key = "VpcId",
      .help = "VPC id (default: the subnet's, or the zone's default subnet's)",
      .type = DFLAG_STRING },
    { .name = "amazonec2-subnet-id", .env = "AWS_SUBNET_ID", .key = "SubnetId",
      .help = "subnet id (default: the zone's default subnet in the VPC)", .type = DFLAG_STRING },
    { .name = "amazonec2-security-group", .env = "AWS_SECURITY_GROUP", .def = "docker-machine",
      .key = "SecurityGroup", .help = "security group name (created with SSH and the engine "
              "port open when missing, and removed by rm then)", .type = DFLAG_STRING },
    { .name = "amazonec2-keypair-name", .env = "AWS_KEYPAIR_NAME", .key = "KeyName",
      .help = "an existing key pair to use (with --amazonec2-ssh-keypath) instead of importing "
              "the machine's key", .type = DFLAG_STRING },
    { .name = "amazonec2-ssh-keypath", .env = "AWS_SSH_KEYPATH", .key = DKEY_SSH_KEY_SOURCE,
      .help = "private key to use instead of a new one", .type = DFLAG_STRING },
    { .name = "amazonec2-ssh-user", .env = "AWS_SSH_USER", .def = "admin", .key = DKEY_SSH_USER,
      .help = "SSH user (Debian's images: admin)", .type = DFLAG_STRING },
    { .name = "amazonec2-tags", .env = "AWS_TAGS", .key = "Tags",
      .help = "tags as key1,value1,key2,value2", .type = DFLAG_STRING },
    { .name = "amazonec2-request-spot-instance", .env = "AWS_REQUEST_SPOT_INSTANCE",
      .key = "RequestSpotInstance", .help = "request a spot instance", .type = DFLAG_BOOL },
    { .name = "amazonec2-spot-price", .env = "AWS_SPOT_PRICE", .def = "0.50", .key = "SpotPrice",
      .help = "highest spot price per hour", .type = DFLAG_STRING },
    { .name = "amazonec2-private-address-only", .env = "AWS_PRIVATE_ADDRESS_ONLY",
      .key = "PrivateIPOnly", .help = "no public address: the machine is reached on its private "
              "one", .type = DFLAG_BOOL },
    { .name = "amazonec2-use-private-address", .env = "AWS_USE_PRIVATE_ADDRESS",
      .key = "UsePrivateIP", .help = "reach the machine on its private address",
      .type = DFLAG_BOOL },
    { .name = "amazonec2-use-ebs-optimized-instance", .env = "AWS_USE_EBS_OPTIMIZED_INSTANCE",
      .key = "UseEbsOptimizedInstance", .help = "an EBS-optimized instance", .type = DFLAG_BOOL },
    { .name = "amazonec2-monitoring", .env = "AWS_MONITORING", .key = "Monitoring",
      .help = "detailed CloudWatch monitoring", .type = DFLAG_BOOL },
    { .name = "amazonec2-iam-instance-profile", .env = "AWS_INSTANCE_PROFILE",
      .key = "IamInstanceProfile", .help = "IAM instance profile name", .type = DFLAG_STRING },
    { .name = "amazonec2-userdata", .env = "AWS_USERDATA", .key = "UserDataFile",
      .help = "file of user data (cloud-init) given to the instance", .type = DFLAG_STRING },
    { .name = "amazonec2-endpoint", .env = "AWS_ENDPOINT", .key = "Endpoint",
      .help = "EC2 API URL (an EC2-compatible cloud or a simulator; default: the region's)",
      .type = DFLAG_STRING },
    { 0 },
};

static bool flag_on(const struct machine *m, const char *key)
{
    return json_is_true(json_object_get(m->driver, key));
}

/* No keys given and no profile named: the AWS CLI's "default" profile when the files have it. */
static void default_profile(struct machine *m)
{
    const char *p = machine_driver_str(m, "Profile");
    if ((p != NULL && p[0] != '\0') || machine_secret(m, "AccessKey") != NULL ||
        getenv("AWS_ACCESS_KEY_ID") != NULL)
        return;
    struct aws_profile prof = { 0 };
    struct merr ignore = MERR_INIT;
    if (aws_profile_load("default", &prof, &ignore) == 0)
        machine_driver_set_str(m, "Profile", "default");
    aws_profile_clear(&prof);
}

/* The AMI: given (and checked to exist), or the newest official Debian 12 amd64 one. */
static int pick_image(struct ec2 *e, struct machine *m, struct merr *err)
{
    const char *ami = machine_driver_str(m, "AMI");
    auto_strv char **p = NULL;
    if (ami != NULL && ami[0] != '\0') {
        ec2_param(&p, ami, "ImageId.1");
    } else {
        ec2_param(&p, DEBIAN_OWNER, "Owner.1");
        ec2_param(&p, "name", "Filter.1.Name");
        ec2_param(&p, DEBIAN_IMAGES, "Filter.1.Value.1");
        ec2_param(&p, "state", "Filter.2.Name");
        ec2_param(&p, "available", "Filter.2.Value.1");
    }
    auto_free char *body = NULL;
    size_t len = 0;
    if (ec2_call(e, "DescribeImages", (const char *const *)p, &body, &len, err) < 0)
        return -1;
    auto_free char *id = ec2_parse_newest_image(body, len, err);
    if (id == NULL)
        return merr_prefix(err, "image %s", ami != NULL && ami[0] != '\0' ? ami :
                                            DEBIAN_IMAGES " of Debian's account " DEBIAN_OWNER);
    machine_driver_set_str(m, "AMI", id);
    return 0;
}

/* Subnet and VPC as docker-machine chooses them: the given subnet's VPC, or the zone's
 * default subnet (in the given VPC). */
static int pick_subnet(struct ec2 *e, struct machine *m, struct merr *err)
{
    const char *subnet = machine_driver_str(m, "SubnetId");
    const char *vpc = machine_driver_str(m, "VpcId");
    auto_free char *az = xasprintf("%s%s", e->region, machine_driver_str(m, "Zone") != NULL ?
                                                          machine_driver_str(m, "Zone") : "a");
    auto_strv char **p = NULL;
    int f = 1;
    if (subnet != NULL && subnet[0] != '\0') {
        ec2_param(&p, subnet, "SubnetId.1");
    } else {
        ec2_param(&p, "availability-zone", "Filter.%d.Name", f);
        ec2_param(&p, az, "Filter.%d.Value.1", f++);
        if (vpc != NULL && vpc[0] != '\0') {
            ec2_param(&p, "vpc-id", "Filter.%d.Name", f);
            ec2_param(&p, vpc, "Filter.%d.Value.1", f++);
        } else {
            ec2_param(&p, "default-for-az", "Filter.%d.Name", f);
            ec2_param(&p, "true", "Filter.%d.Value.1", f++);
        }
    }
    auto_free char *body = NULL;
    size_t len = 0;
    if (ec2_call(e, "DescribeSubnets", (const char *const *)p, &body, &len, err) < 0)
        return -1;
    auto_strv char **ids = ec2_parse_column(body, len, "subnetSet", "subnetId", err);
    auto_strv char **vpcs = ec2_parse_column(body, len, "subnetSet", "vpcId", err);
    if (ids == NULL || vpcs == NULL)
        return -1;
    if (ids[0] == NULL || vpcs[0] == NULL)
        return merr_set(err, MERR_NOT_FOUND, 0,
                        "no subnet in zone %s%s: pass --amazonec2-subnet-id", az,
                        vpc != NULL && vpc[0] != '\0' ? " of the VPC" : " (no default subnet)");
    machine_driver_set_str(m, "SubnetId", ids[0]);
    machine_driver_set_str(m, "VpcId", vpcs[0]);
    return 0;
}

static int ec2_precreate_check(const struct driver_ctx *ctx, struct machine *m,
                               struct merr *err)
{
    auto_strv char **tags = ec2_parse_tags(machine_driver_str(m, "Tags"), err);
    if (tags == NULL)
        return -1;
    const char *ud = machine_driver_str(m, "UserDataFile");
    if (ud != NULL && ud[0] != '\0' && access(ud, R_OK) < 0)
        return merr_set(err, MERR_INVALID, errno, "cannot read --amazonec2-userdata '%s'", ud);
    const char *kn = machine_driver_str(m, "KeyName");
    const char *ks = machine_driver_str(m, DKEY_SSH_KEY_SOURCE);
    if (kn != NULL && kn[0] != '\0' && (ks == NULL || ks[0] == '\0'))
        return merr_set(err, MERR_INVALID, 0,
                        "--amazonec2-keypair-name needs --amazonec2-ssh-keypath (its private key)");
    const char *price = machine_driver_str(m, "SpotPrice");
    char *end = NULL;
    if (flag_on(m, "RequestSpotInstance") &&
        (price == NULL || strtod(price, &end) <= 0 || end == NULL || *end != '\0'))
        return merr_set(err, MERR_INVALID, 0, "invalid --amazonec2-spot-price '%s'",
                        price != NULL ? price : "");
    default_profile(m);

    unsigned char rnd[8];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        return merr_set(err, MERR_IO, errno, "getrandom");
    char token[17];
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(token + 2 * i, 3, "%02x", rnd[i]);
    machine_driver_set_str(m, "OwnerToken", token);
    auto_free char *keyname = xasprintf("machine-%s-%.8s", m->name, token);
    machine_driver_set_str(m, "KeyPairName", kn != NULL && kn[0] != '\0' ? kn : keyname);

    struct ec2 e;
    if (ec2_open(&e, ctx, m, err) < 0)
        return -1;
    int r = pick_image(&e, m, err) < 0 || pick_subnet(&e, m, err) < 0 ? -1 : 0;
    ec2_close(&e);
    return r;
}

static int ec2_get_state(const struct driver_ctx *ctx, const struct machine *m,
                         enum machine_state *state, struct merr *err)
{
    const char *id = machine_driver_str(m, "InstanceId");
    if (id == NULL || id[0] == '\0') {
        *state = MSTATE_NONE;
        return 0;
    }
    struct ec2 e;
    if (ec2_open(&e, ctx, m, err) < 0)
        return -1;
    struct ec2_instance in = { 0 };
    int r = ec2_describe_instance(&e, id, &in, err);
    ec2_close(&e);
    if (r < 0)
        return -1;
    static const struct { const char *name; enum machine_state st; } map[] = {
        { "pending", MSTATE_STARTING }, { "running", MSTATE_RUNNING },
        { "stopping", MSTATE_STOPPING }, { "stopped", MSTATE_STOPPED },
        { "shutting-down", MSTATE_STOPPING }, { "terminated", MSTATE_ERROR },
    };
    *state = MSTATE_ERROR;
    for (size_t i = 0; in.state != NULL && i < sizeof map / sizeof map[0]; i++)
        if (strcmp(in.state, map[i].name) == 0)
            *state = map[i].st;
    ec2_instance_clear(&in);
    return 0;
}

/* One power action on the machine's instance, then a bounded wait for `want` (NULL: none). */
static int power(const struct driver_ctx *ctx, struct machine *m, const char *action,
                 bool force, const char *want, struct merr *err)
{
    const char *id = machine_driver_str(m, "InstanceId");
    if (id == NULL || id[0] == '\0')
        return merr_set(err, MERR_NOT_FOUND, 0, "machine %s has no instance", m->name);
    struct ec2 e;
    if (ec2_open(&e, ctx, m, err) < 0)
        return -1;
    const char *p[] = { "InstanceId.1", id, "Force", force ? "true" : NULL, NULL };
    auto_free char *body = NULL;
    int r = ec2_call(&e, action, p, &body, NULL, err);
    if (r == 0 && want != NULL)
        r = ec2_wait_state(&e, m, want, strcmp(want, "running") == 0, err);
    ec2_close(&e);
    return r;
}

static int ec2_start(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    return power(ctx, m, "StartInstances", false, "running", err);
}

static int ec2_stop(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    return power(ctx, m, "StopInstances", false, "stopped", err);
}

static int ec2_kill(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    return power(ctx, m, "StopInstances", true, "stopped", err);
}

static int ec2_restart(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    return power(ctx, m, "RebootInstances", false, NULL, err);
}

const struct driver driver_amazonec2 = {
    .name = "amazonec2",
    .description = "an Amazon EC2 instance (or an EC2-compatible cloud's)",
    .flags = ec2_flags,
    .uses_ssh = true,
    .precreate_check = ec2_precreate_check,
    .create = ec2_create,
    .remove = ec2_remove,
    .start = ec2_start,
    .stop = ec2_stop,
    .restart = ec2_restart,
    .kill = ec2_kill,
    .get_state = ec2_get_state,
};
