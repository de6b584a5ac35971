/* The amazonec2 driver's pure parts: the XML reader (core/xml.c) and the EC2 answer parsers on
 * the API reference's example answers (tests/unit/data/ec2, sources in its README), the Query
 * body builder, the tag flag, the error-code mapping; and the driver's flag table. */
#define MACHINE_EC2_PRIV
#include "test_helpers.h"

#include "amazonec2/ec2-priv.h"
#include "cloud.h"
#include "driver.h"
#include "machine.h"
#include "registry.h"
#include "strv.h"
#include "xml.h"

static char *data(const char *name, size_t *len)
{
    auto_free char *path = xasprintf("%s/unit/data/ec2/%s", MACHINE_TEST_DIR, name);
    char *text = NULL;
    struct merr err = MERR_INIT;
    assert_int_equal(fs_read_file(path, 1 << 20, &text, len, &err), 0);
    return text;
}

static void test_xml_reader(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    const char doc[] = "<a xmlns='urn:x'><b><c> one </c><c>two</c></b><d/></a>";
    auto_xml_doc struct xml_doc *x = xml_parse(doc, strlen(doc), &err);
    assert_non_null(x);
    assert_string_equal(xml_name(xml_root(x)), "a");
    auto_free char *one = xml_text(xml_root(x), "b/c");
    assert_string_equal(one, "one");
    const struct xml_node *c = xml_first(xml_path(xml_root(x), "b"), "c");
    auto_free char *two = xml_text(xml_next(c, "c"), NULL);
    assert_string_equal(two, "two");
    assert_null(xml_next(xml_next(c, "c"), "c"));
    auto_free char *empty = xml_text(xml_root(x), "d");
    assert_string_equal(empty, "");
    assert_null(xml_text(xml_root(x), "b/missing"));
    assert_non_null(xml_find(xml_root(x), "c"));

    assert_null(xml_parse("<a><b></a>", 10, &err));
    assert_int_equal(err.code, MERR_PROTOCOL);
    /* an external entity is never fetched nor expanded */
    const char xxe[] = "<?xml version='1.0'?><!DOCTYPE a [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>"
                       "<a>&e;</a>";
    auto_xml_doc struct xml_doc *y = xml_parse(xxe, strlen(xxe), &err);
    if (y != NULL) {
        auto_free char *t = xml_text(xml_root(y), NULL);
        assert_null(strstr(t, "root:"));
    }
}

static void test_instances(void **state)
{
    (void)state;
    size_t len = 0;
    auto_free char *body = data("describe-instances.xml", &len);
    struct merr err = MERR_INIT;
    struct ec2_instance *v = NULL;
    size_t n = 0;
    auto_free char *next = NULL;
    assert_int_equal(ec2_parse_instances(body, len, &v, &n, &next, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].id, "i-1234567890abcdef0");
    assert_string_equal(v[0].state, "running");
    assert_string_equal(v[0].public_ip, "54.194.252.215");
    assert_string_equal(v[0].private_ip, "192.168.1.88");
    assert_string_equal(v[1].state, "stopped");
    assert_null(v[1].public_ip);
    assert_string_equal(next, "eyJ2IjoiMSIsImMiOiJleGFtcGxlIn0=");
    ec2_instances_free(v, n);

    auto_free char *run = data("run-instances.xml", &len);
    auto_free char *none = NULL;
    assert_int_equal(ec2_parse_instances(run, len, &v, &n, &none, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].id, "i-1234567890abcdef0");
    assert_string_equal(v[0].state, "pending");
    assert_null(none);
    ec2_instances_free(v, n);
}

static void test_other_answers(void **state)
{
    (void)state;
    size_t len = 0;
    struct merr err = MERR_INIT;
    auto_free char *images = data("describe-images.xml", &len);
    auto_free char *newest = ec2_parse_newest_image(images, len, &err);
    assert_string_equal(newest, "ami-0newest000000000");
    const char empty[] = "<DescribeImagesResponse><imagesSet/></DescribeImagesResponse>";
    assert_null(ec2_parse_newest_image(empty, strlen(empty), &err));
    assert_int_equal(err.code, MERR_NOT_FOUND);

    auto_free char *sg = data("create-security-group.xml", &len);
    auto_free char *gid = ec2_parse_field(sg, len, "groupId", &err);
    assert_string_equal(gid, "sg-1a2b3c4d");

    auto_free char *subnets = data("describe-subnets.xml", &len);
    auto_strv char **ids = ec2_parse_column(subnets, len, "subnetSet", "subnetId", &err);
    assert_int_equal(strv_len(ids), 2);
    assert_string_equal(ids[0], "subnet-9d4a7b6c");
    assert_string_equal(ids[1], "subnet-6e7f829e");

    auto_free char *spot = data("request-spot-instances.xml", &len);
    auto_strv char **sir = ec2_parse_column(spot, len, "spotInstanceRequestSet",
                                            "spotInstanceRequestId", &err);
    assert_string_equal(sir[0], "sir-1a2b3c4d");
    auto_strv char **inst = ec2_parse_column(spot, len, "spotInstanceRequestSet", "instanceId",
                                             &err);
    assert_string_equal(inst[0], ""); /* not fulfilled yet */

    auto_free char *e = data("error.xml", &len);
    auto_free char *code = NULL, *msg = NULL;
    assert_int_equal(ec2_parse_error(e, len, &code, &msg), 1);
    assert_string_equal(code, "InvalidInstanceID.NotFound");
    assert_string_equal(msg, "The instance ID 'i-1a2b3c4d' does not exist");
    auto_free char *c2 = NULL, *m2 = NULL;
    assert_int_equal(ec2_parse_error("not xml", 7, &c2, &m2), 0);
}

static void test_query_tags_codes(void **state)
{
    (void)state;
    char **p = NULL;
    ec2_param(&p, "a b/c", "Filter.%d.Value.1", 1);
    ec2_param(&p, NULL, "Skipped");
    ec2_param(&p, "x=y", "Key");
    auto_free char *q = ec2_query("DescribeInstances", (const char *const *)p);
    assert_string_equal(q, "Action=DescribeInstances&Version=2016-11-15&"
                           "Filter.1.Value.1=a%20b%2Fc&Key=x%3Dy");
    strv_free(p);

    struct merr err = MERR_INIT;
    auto_strv char **t = ec2_parse_tags("team,web,env,prod", &err);
    assert_int_equal(strv_len(t), 4);
    assert_string_equal(t[3], "prod");
    assert_null(ec2_parse_tags("team,web,env", &err));
    assert_int_equal(err.code, MERR_INVALID);
    assert_null(ec2_parse_tags(",v", &err));
    auto_strv char **none = ec2_parse_tags(NULL, &err);
    assert_int_equal(strv_len(none), 0);

    /* the EC2 codes through the shared mapping (core/cloud.c) */
    assert_int_equal(cloud_error_code(401, "AuthFailure"), MERR_AUTH);
    assert_int_equal(cloud_error_code(403, "UnauthorizedOperation"), MERR_PERM);
    assert_int_equal(cloud_error_code(400, "InvalidInstanceID.NotFound"), MERR_NOT_FOUND);
    assert_int_equal(cloud_error_code(400, "InvalidKeyPair.Duplicate"), MERR_EXISTS);
    assert_int_equal(cloud_error_code(503, "RequestLimitExceeded"), MERR_BUSY);
    assert_int_equal(cloud_error_code(400, "InvalidParameterValue"), MERR_INVALID);
    assert_true(ec2_throttled(400, "Throttling"));
    assert_true(ec2_throttled(500, NULL));
    assert_true(ec2_throttled(500, "InternalError"));
    assert_false(ec2_throttled(500, "InvalidParameterValue"));
    assert_false(ec2_throttled(400, "DependencyViolation"));
}

/* The RunInstances and RequestSpotInstances bodies a machine's fields make (golden files:
 * one parameter a line). */
static void test_launch_bodies(void **state)
{
    (void)state;
    auto_machine struct machine *m = machine_new("c1", "amazonec2");
    machine_driver_set_str(m, "Region", "eu-west-1");
    machine_driver_set_str(m, "Zone", "b");
    machine_driver_set_str(m, "AMI", "ami-0debian12new");
    machine_driver_set_str(m, "InstanceType", "t3.small");
    machine_driver_set_str(m, "KeyPairName", "machine-c1-0123abcd");
    machine_driver_set_str(m, "SubnetId", "subnet-0sima");
    machine_driver_set_str(m, "SecurityGroupId", "sg-1a2b3c4d");
    machine_driver_set_int(m, "RootSize", 32);
    machine_driver_set_str(m, "Tags", "team,web,env,prod");
    machine_driver_set_str(m, "OwnerToken", "0123abcd4567ef89");
    json_object_set_new(m->driver, "UseEbsOptimizedInstance", json_true());
    struct merr err = MERR_INIT;

    char **p = NULL;
    ec2_param(&p, "1", "MinCount");
    ec2_param(&p, "1", "MaxCount");
    ec2_launch_params(&p, "", m, "I2Nsb3VkLWNvbmZpZwo=");
    assert_int_equal(ec2_instance_tags(&p, 1, m, &err), 0);
    auto_free char *run = ec2_query("RunInstances", (const char *const *)p);
    strv_free(p);
    for (char *c = run; *c != '\0'; c++)
        if (*c == '&')
            *c = '\n';
    test_assert_golden("ec2-run-instances.txt", run);

    json_object_set_new(m->driver, "PrivateIPOnly", json_true());
    json_object_set_new(m->driver, "UseEbsOptimizedInstance", json_false());
    p = NULL;
    ec2_param(&p, "0.12", "SpotPrice");
    ec2_launch_params(&p, "LaunchSpecification.", m, NULL);
    auto_free char *spot = ec2_query("RequestSpotInstances", (const char *const *)p);
    strv_free(p);
    for (char *c = spot; *c != '\0'; c++)
        if (*c == '&')
            *c = '\n';
    test_assert_golden("ec2-request-spot.txt", spot);

    machine_driver_set_str(m, "Tags", "odd");
    p = NULL;
    assert_int_equal(ec2_instance_tags(&p, 0, m, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    strv_free(p);
}

static void test_flags(void **state)
{
    (void)state;
    const struct driver *d = driver_find(machine_drivers(), "amazonec2");
    assert_non_null(d);
    int secrets = 0;
    for (const struct driver_flag *f = d->flags; f->name != NULL; f++) {
        if (f->secret)
            secrets++;
        if (strcmp(f->name, "amazonec2-profile") == 0)
            assert_false(f->secret);
    }
    assert_int_equal(secrets, 3); /* access key, secret key, session token */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xml_reader),      cmocka_unit_test(test_instances),
        cmocka_unit_test(test_other_answers),   cmocka_unit_test(test_query_tags_codes),
        cmocka_unit_test(test_launch_bodies), cmocka_unit_test(test_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
