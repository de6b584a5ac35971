/* EC2 Query API requests and answers: pure text in, text out (core/xml.c reads the XML). */
#include "ec2-priv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "machine.h"
#include "fsutil.h"
#include "sigv4.h"
#include "strv.h"
#include "xml.h"

static void add_pair(struct abuf *b, const char *k, const char *v)
{
    auto_free char *ek = sigv4_uri_encode(k, false);
    auto_free char *ev = sigv4_uri_encode(v, false);
    if (abuf_printf(b, NULL, "&%s=%s", ek, ev) < 0)
        abort();
}

char *ec2_query(const char *action, const char *const *params)
{
    struct abuf b = { 0 };
    auto_free char *ea = sigv4_uri_encode(action, false);
    if (abuf_printf(&b, NULL, "Action=%s&Version=%s", ea, EC2_API_VERSION) < 0)
        abort();
    for (size_t i = 0; params != NULL && params[i] != NULL; i += 2)
        if (params[i + 1] != NULL)
            add_pair(&b, params[i], params[i + 1]);
    return b.data;
}

int ec2_parse_error(const char *body, size_t len, char **code, char **message)
{
    struct merr err = MERR_INIT;
    auto_xml_doc struct xml_doc *doc = xml_parse(body, len, &err);
    if (doc == NULL)
        return 0;
    const struct xml_node *e = xml_find(xml_root(doc), "Error");
    if (e == NULL)
        return 0;
    *code = xml_text(e, "Code");
    *message = xml_text(e, "Message");
    if (*code == NULL) {
        free(*message);
        *message = NULL;
        return 0;
    }
    return 1;
}

void ec2_instance_clear(struct ec2_instance *in)
{
    free(in->id);
    free(in->state);
    free(in->public_ip);
    free(in->private_ip);
    *in = (struct ec2_instance){ 0 };
}

void ec2_instances_free(struct ec2_instance *v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        ec2_instance_clear(&v[i]);
    free(v);
}

static char *nonempty(char *s)
{
    if (s != NULL && s[0] == '\0') {
        free(s);
        return NULL;
    }
    return s;
}

static void push_instance(struct ec2_instance **v, size_t *n, const struct xml_node *item)
{
    *v = realloc(*v, (*n + 1) * sizeof **v);
    if (*v == NULL)
        abort();
    struct ec2_instance *in = &(*v)[(*n)++];
    in->id = nonempty(xml_text(item, "instanceId"));
    in->state = nonempty(xml_text(item, "instanceState/name"));
    in->public_ip = nonempty(xml_text(item, "ipAddress"));
    in->private_ip = nonempty(xml_text(item, "privateIpAddress"));
}

int ec2_parse_instances(const char *body, size_t len, struct ec2_instance **out, size_t *n,
                        char **next_token, struct merr *err)
{
    *out = NULL;
    *n = 0;
    if (next_token != NULL)
        *next_token = NULL;
    auto_xml_doc struct xml_doc *doc = xml_parse(body, len, err);
    if (doc == NULL)
        return -1;
    const struct xml_node *root = xml_root(doc);
    const struct xml_node *rset = xml_path(root, "reservationSet");
    if (rset != NULL) {
        for (const struct xml_node *r = xml_first(rset, "item"); r != NULL; r = xml_next(r, "item"))
            for (const struct xml_node *i = xml_first(xml_path(r, "instancesSet"), "item");
                 i != NULL; i = xml_next(i, "item"))
                push_instance(out, n, i);
    } else {
        /* RunInstancesResponse: the reservation is the root */
        for (const struct xml_node *i = xml_first(xml_path(root, "instancesSet"), "item");
             i != NULL; i = xml_next(i, "item"))
            push_instance(out, n, i);
    }
    for (size_t i = 0; i < *n; i++)
        if ((*out)[i].id == NULL) {
            ec2_instances_free(*out, *n);
            *out = NULL;
            *n = 0;
            return merr_set(err, MERR_PROTOCOL, 0, "ec2: an instance without an instanceId");
        }
    if (next_token != NULL)
        *next_token = nonempty(xml_text(root, "nextToken"));
    return 0;
}

char *ec2_parse_newest_image(const char *body, size_t len, struct merr *err)
{
    auto_xml_doc struct xml_doc *doc = xml_parse(body, len, err);
    if (doc == NULL)
        return NULL;
    char *best = NULL, *best_date = NULL;
    for (const struct xml_node *i = xml_first(xml_path(xml_root(doc), "imagesSet"), "item");
         i != NULL; i = xml_next(i, "item")) {
        char *id = nonempty(xml_text(i, "imageId"));
        char *date = xml_text(i, "creationDate");
        if (id != NULL && date != NULL && (best_date == NULL || strcmp(date, best_date) > 0)) {
            free(best);
            free(best_date);
            best = id;
            best_date = date;
        } else {
            free(id);
            free(date);
        }
    }
    free(best_date);
    if (best == NULL)
        merr_set(err, MERR_NOT_FOUND, 0, "ec2: no image matched");
    return best;
}

char *ec2_parse_field(const char *body, size_t len, const char *name, struct merr *err)
{
    auto_xml_doc struct xml_doc *doc = xml_parse(body, len, err);
    if (doc == NULL)
        return NULL;
    const struct xml_node *root = xml_root(doc);
    const struct xml_node *f = strcmp(xml_name(root), name) == 0 ? root : xml_find(root, name);
    if (f == NULL) {
        merr_set(err, MERR_PROTOCOL, 0, "ec2: the answer has no %s", name);
        return NULL;
    }
    return xml_text(f, NULL);
}

char **ec2_parse_column(const char *body, size_t len, const char *set, const char *field,
                        struct merr *err)
{
    auto_xml_doc struct xml_doc *doc = xml_parse(body, len, err);
    if (doc == NULL)
        return NULL;
    char **v = xcalloc(1, sizeof *v);
    const struct xml_node *s = xml_find(xml_root(doc), set);
    for (const struct xml_node *i = xml_first(s, "item"); i != NULL; i = xml_next(i, "item")) {
        auto_free char *t = xml_text(i, field);
        v = strv_push(v, t != NULL ? t : "");
    }
    return v;
}

void ec2_param(char ***v, const char *value, const char *key_fmt, ...)
{
    if (value == NULL)
        return;
    va_list ap;
    va_start(ap, key_fmt);
    char *key = NULL;
    if (vasprintf(&key, key_fmt, ap) < 0)
        abort();
    va_end(ap);
    *v = strv_push(*v, key);
    *v = strv_push(*v, value);
    free(key);
}

char **ec2_parse_tags(const char *text, struct merr *err)
{
    char **v = xcalloc(1, sizeof *v);
    if (text == NULL || text[0] == '\0')
        return v;
    for (const char *p = text;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
        auto_free char *one = strndup(p, n);
        if (one == NULL)
            abort();
        v = strv_push(v, one);
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    size_t n = strv_len(v);
    for (size_t i = 0; i < n; i += 2)
        if (v[i][0] == '\0')
            n = 1; /* an empty key: refused below */
    if (n % 2 != 0) {
        strv_free(v);
        merr_set(err, MERR_INVALID, 0,
                 "invalid --amazonec2-tags '%s': expected key1,value1,key2,value2", text);
        return NULL;
    }
    return v;
}

static bool flag_on(const struct machine *m, const char *key)
{
    return json_is_true(json_object_get(m->driver, key));
}

static const char *str_or(const struct machine *m, const char *key, const char *def)
{
    const char *v = machine_driver_str(m, key);
    return v != NULL && v[0] != '\0' ? v : def;
}

/* What RunInstances and a spot request's LaunchSpecification share, under prefix. */
void ec2_launch_params(char ***p, const char *prefix, const struct machine *m,
                       const char *userdata_b64)
{
    auto_free char *az = xasprintf("%s%s", str_or(m, "Region", "us-east-1"),
                                   str_or(m, "Zone", "a"));
    ec2_param(p, machine_driver_str(m, "AMI"), "%sImageId", prefix);
    ec2_param(p, str_or(m, "InstanceType", "t3.micro"), "%sInstanceType", prefix);
    ec2_param(p, machine_driver_str(m, "KeyPairName"), "%sKeyName", prefix);
    ec2_param(p, az, "%sPlacement.AvailabilityZone", prefix);
    ec2_param(p, "0", "%sNetworkInterface.1.DeviceIndex", prefix);
    ec2_param(p, machine_driver_str(m, "SubnetId"), "%sNetworkInterface.1.SubnetId", prefix);
    ec2_param(p, machine_driver_str(m, "SecurityGroupId"), "%sNetworkInterface.1.SecurityGroupId.1",
              prefix);
    ec2_param(p, flag_on(m, "PrivateIPOnly") ? "false" : "true",
              "%sNetworkInterface.1.AssociatePublicIpAddress", prefix);
    char size[24];
    snprintf(size, sizeof size, "%lld", machine_driver_int(m, "RootSize", 16));
    ec2_param(p, str_or(m, "DeviceName", "/dev/xvda"), "%sBlockDeviceMapping.1.DeviceName", prefix);
    ec2_param(p, size, "%sBlockDeviceMapping.1.Ebs.VolumeSize", prefix);
    ec2_param(p, str_or(m, "VolumeType", "gp3"), "%sBlockDeviceMapping.1.Ebs.VolumeType", prefix);
    ec2_param(p, "true", "%sBlockDeviceMapping.1.Ebs.DeleteOnTermination", prefix);
    ec2_param(p, flag_on(m, "UseEbsOptimizedInstance") ? "true" : NULL, "%sEbsOptimized", prefix);
    ec2_param(p, flag_on(m, "Monitoring") ? "true" : NULL, "%sMonitoring.Enabled", prefix);
    ec2_param(p, machine_driver_str(m, "IamInstanceProfile"), "%sIamInstanceProfile.Name", prefix);
    ec2_param(p, userdata_b64, "%sUserData", prefix);
}

/* Name, owner and the user's tags, as TagSpecification (spec > 0) or CreateTags (0). */
int ec2_instance_tags(char ***p, int spec, const struct machine *m, struct merr *err)
{
    auto_strv char **user = ec2_parse_tags(machine_driver_str(m, "Tags"), err);
    if (user == NULL)
        return -1;
    auto_free char *pre = spec > 0 ? xasprintf("TagSpecification.%d.", spec) : xstrdup("");
    if (spec > 0)
        ec2_param(p, "instance", "%sResourceType", pre);
    const char *fixed[] = { "Name", m->name, EC2_OWNER_TAG, machine_driver_str(m, "OwnerToken") };
    int t = 1;
    for (size_t i = 0; i < 4; i += 2, t++) {
        ec2_param(p, fixed[i], "%sTag.%d.Key", pre, t);
        ec2_param(p, fixed[i + 1], "%sTag.%d.Value", pre, t);
    }
    for (size_t i = 0; user[i] != NULL; i += 2, t++) {
        ec2_param(p, user[i], "%sTag.%d.Key", pre, t);
        ec2_param(p, user[i + 1], "%sTag.%d.Value", pre, t);
    }
    return 0;
}

