/* machine inventory's renderers: Ansible YAML, JSON, ssh_config, with groups from labels and
 * values that need quoting. */
#include "test_helpers.h"

#include <jansson.h>

#include "inventory.h"
#include "strv.h"

static char *labels_a[] = { "lab=class-1", "lab-group=web", "other=x", NULL };
static char *labels_b[] = { "lab=class-1", NULL };

static const struct inventory_host hosts[] = {
    { "web-1", "generic", "10.0.0.5", 22, "root", "/st/machines/web-1/id_rsa",
      "/st/machines/web-1/known_hosts", labels_a },
    { "db", "kvm", "192.168.122.9", 2222, "docker", "/a b/id \"q\"", "/a b/known_hosts", labels_b },
};

static char *render(enum inventory_format fmt, size_t n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    inventory_render(f, fmt, hosts, n);
    fclose(f);
    return buf;
}

static void test_groups(void **state)
{
    char **g = inventory_groups(&hosts[0]);
    assert_int_equal(strv_len(g), 2);
    assert_string_equal(g[0], "class_1");
    assert_string_equal(g[1], "web");
    strv_free(g);
    char *digit_labels[] = { "lab=1st", "lab-group=1st", NULL };
    struct inventory_host h = hosts[0];
    h.labels = digit_labels;
    g = inventory_groups(&h);
    assert_int_equal(strv_len(g), 1); /* the same group once */
    assert_string_equal(g[0], "g_1st");
    strv_free(g);
}

static void test_ansible(void **state)
{
    auto_free char *out = render(INVENTORY_ANSIBLE, 2);
    const char *want =
        "# machine inventory --format ansible\n"
        "all:\n"
        "  hosts:\n"
        "    \"web-1\":\n"
        "      ansible_host: \"10.0.0.5\"\n"
        "      ansible_port: 22\n"
        "      ansible_user: \"root\"\n"
        "      ansible_ssh_private_key_file: \"/st/machines/web-1/id_rsa\"\n"
        "      ansible_ssh_common_args: \"-o StrictHostKeyChecking=yes -o 'UserKnownHostsFile=/st/machines/web-1/known_hosts'\"\n"
        "      machine_driver: \"generic\"\n"
        "    \"db\":\n"
        "      ansible_host: \"192.168.122.9\"\n"
        "      ansible_port: 2222\n"
        "      ansible_user: \"docker\"\n"
        "      ansible_ssh_private_key_file: \"/a b/id \\\"q\\\"\"\n"
        "      ansible_ssh_common_args: \"-o StrictHostKeyChecking=yes -o 'UserKnownHostsFile=/a b/known_hosts'\"\n"
        "      machine_driver: \"kvm\"\n"
        "  children:\n"
        "    class_1:\n"
        "      hosts:\n"
        "        \"web-1\": {}\n"
        "        \"db\": {}\n"
        "    web:\n"
        "      hosts:\n"
        "        \"web-1\": {}\n";
    assert_string_equal(out, want);
    auto_free char *none = render(INVENTORY_ANSIBLE, 0);
    assert_string_equal(none, "# machine inventory --format ansible\nall:\n  hosts: {}\n");
}

static void test_ansible_python(void **state)
{
    /* a container host runs machine-host, whose python3 is named; other hosts are left to
     * Ansible's interpreter discovery */
    struct inventory_host two[] = { hosts[0], hosts[0] };
    two[1].name = "node-1";
    two[1].driver = "container";
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    inventory_render(f, INVENTORY_ANSIBLE, two, 2);
    fclose(f);
    const char *node = strstr(buf, "\"node-1\":\n");
    assert_non_null(node);
    assert_non_null(strstr(node, "\n      ansible_python_interpreter: \"/usr/bin/python3\"\n"
                                 "      machine_driver: \"container\"\n"));
    assert_int_equal(strstr(buf, "ansible_python_interpreter") - buf,
                     strstr(node, "ansible_python_interpreter") - buf); /* once: not for web-1 */
    free(buf);
}

static void test_json(void **state)
{
    auto_free char *out = render(INVENTORY_JSON, 2);
    json_error_t jerr;
    json_t *arr = json_loads(out, 0, &jerr);
    assert_non_null(arr);
    assert_int_equal(json_array_size(arr), 2);
    json_t *db = json_array_get(arr, 1);
    assert_string_equal(json_string_value(json_object_get(db, "Name")), "db");
    assert_int_equal(json_integer_value(json_object_get(db, "Port")), 2222);
    assert_string_equal(json_string_value(json_object_get(db, "SSHKeyPath")), "/a b/id \"q\"");
    json_t *w = json_array_get(arr, 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(w, "Labels"), "other")), "x");
    assert_string_equal(json_string_value(json_array_get(json_object_get(w, "Groups"), 1)), "web");
    json_decref(arr);
}

static void test_ssh_config(void **state)
{
    auto_free char *out = render(INVENTORY_SSH_CONFIG, 2);
    assert_non_null(strstr(out, "\nHost web-1\n  HostName 10.0.0.5\n  Port 22\n  User root\n"
                                "  IdentityFile /st/machines/web-1/id_rsa\n  IdentitiesOnly yes\n"
                                "  UserKnownHostsFile /st/machines/web-1/known_hosts\n"
                                "  StrictHostKeyChecking yes\n"));
    assert_non_null(strstr(out, "\nHost db\n  HostName 192.168.122.9\n  Port 2222\n"));
    assert_non_null(strstr(out, "  UserKnownHostsFile \"/a b/known_hosts\"\n"));
}

static void test_format_names(void **state)
{
    enum inventory_format f;
    struct merr err = MERR_INIT;
    assert_int_equal(inventory_format_parse("ssh-config", &f, &err), 0);
    assert_int_equal(f, INVENTORY_SSH_CONFIG);
    assert_int_equal(inventory_format_parse("yaml", &f, &err), -1);
    assert_non_null(strstr(err.msg, "ansible, json or ssh-config"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_groups), cmocka_unit_test(test_ansible),
        cmocka_unit_test(test_ansible_python), cmocka_unit_test(test_json),
        cmocka_unit_test(test_ssh_config), cmocka_unit_test(test_format_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
