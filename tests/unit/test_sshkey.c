/* SSH keys: OpenSSH-format ed25519 generation (checked by ssh-keygen), permissions,
 * fingerprints, base64, and the argv for --external-ssh. */
#include "test_helpers.h"

#include <sys/stat.h>
#include <unistd.h>

#include "machine.h"
#include "ssh.h"
#include "sshkey.h"

static char *run(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char buf[4096] = "";
    size_t n = fread(buf, 1, sizeof buf - 1, p);
    buf[n] = '\0';
    int st = pclose(p);
    if (st != 0)
        return NULL;
    return strdup(buf);
}

static void test_generate_ed25519(void **state)
{
    char *dir = test_tmpdir();
    auto_free char *priv = path_join(dir, "id");
    auto_free char *pub = path_join(dir, "id.pub");
    struct merr err = MERR_INIT;
    assert_int_equal(sshkey_generate_ed25519(priv, pub, "machine-test", &err), 0);
    struct stat st;
    assert_int_equal(stat(priv, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(pub, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    auto_free char *text = NULL;
    assert_int_equal(fs_read_file(priv, 8192, &text, NULL, &err), 0);
    assert_memory_equal(text, "-----BEGIN OPENSSH PRIVATE KEY-----\n", 36);
    auto_free char *pubtext = NULL;
    assert_int_equal(fs_read_file(pub, 8192, &pubtext, NULL, &err), 0);
    assert_memory_equal(pubtext, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5", 32);
    assert_non_null(strstr(pubtext, " machine-test\n"));
    assert_int_equal(sshkey_check_private_perms(priv, &err), 0);

    /* OpenSSH itself must accept the private key and derive the same public key. */
    if (access("/usr/bin/ssh-keygen", X_OK) == 0) {
        auto_free char *cmd = xasprintf("/usr/bin/ssh-keygen -y -f %s", priv);
        auto_free char *derived = run(cmd);
        assert_non_null(derived);
        size_t key_len = strlen("ssh-ed25519 ") + 68;
        assert_memory_equal(derived, pubtext, key_len);
    } else {
        skip();
    }
    test_tmpdir_remove(dir);
}

static void test_perms(void **state)
{
    char *dir = test_tmpdir();
    auto_free char *key = path_join(dir, "k");
    struct merr err = MERR_INIT;
    assert_int_equal(fs_write_atomic(key, "x", 1, 0640, &err), 0);
    assert_int_equal(sshkey_check_private_perms(key, &err), -1);
    assert_int_equal(err.code, MERR_PERM);
    assert_int_equal(chmod(key, 0400), 0);
    assert_int_equal(sshkey_check_private_perms(key, &err), 0);
    auto_free char *missing = path_join(dir, "nope");
    assert_int_equal(sshkey_check_private_perms(missing, &err), -1);
    assert_int_equal(err.code, MERR_NOT_FOUND);
    test_tmpdir_remove(dir);
}

static void test_fingerprint_and_base64(void **state)
{
    /* ssh-keygen -l of this public key prints SHA256:ZKjk0w6G8pNgXL8RjTTKdwyEDbpGz4ofSUB0zf3K20s */
    const char *b64 = "AAAAC3NzaC1lZDI1NTE5AAAAIBCmGrsGQU9Rwn3Cbtj8L1t9Slkb6hyd5y8VfbzYzLCM";
    unsigned char *blob = NULL;
    long n = sshkey_unbase64(b64, &blob);
    assert_int_equal(n, 51);
    auto_free char *fp = sshkey_fingerprint(blob, (size_t)n);
    auto_free char *again = sshkey_base64(blob, (size_t)n);
    assert_string_equal(again, b64);
    free(blob);
    assert_memory_equal(fp, "SHA256:", 7);
    assert_int_equal(strlen(fp), 7 + 43);
    if (access("/usr/bin/ssh-keygen", X_OK) == 0) {
        char *dir = test_tmpdir();
        auto_free char *pub = path_join(dir, "k.pub");
        auto_free char *line = xasprintf("ssh-ed25519 %s x\n", b64);
        struct merr err = MERR_INIT;
        assert_int_equal(fs_write_atomic(pub, line, strlen(line), 0644, &err), 0);
        auto_free char *cmd = xasprintf("/usr/bin/ssh-keygen -l -f %s", pub);
        auto_free char *out = run(cmd);
        assert_non_null(out);
        assert_non_null(strstr(out, fp));
        test_tmpdir_remove(dir);
    }
    assert_int_equal(sshkey_unbase64("abc", &blob), -1);
}

static void test_external_argv(void **state)
{
    struct ssh_target t = { .host = "10.1.2.3", .port = 2222, .user = "debian",
                            .key_path = "/s/id_ssh", .known_hosts_path = "/s/known_hosts",
                            .timeout_ms = 5000 };
    struct merr err = MERR_INIT;
    char *cmd[] = { "uname", "-a", NULL };
    char **argv = ssh_external_argv(&t, false, cmd, &err);
    assert_non_null(argv);
    const char *want[] = { "ssh", "-i", "/s/id_ssh", "-p", "2222", "-o", "IdentitiesOnly=yes",
                           "-o", "UserKnownHostsFile=/s/known_hosts", "-o",
                           "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=5", "-o",
                           "LogLevel=ERROR", "-o", "GlobalKnownHostsFile=/dev/null",
                           "debian@10.1.2.3", "--", "uname", "-a", NULL };
    for (size_t i = 0; want[i] != NULL; i++)
        assert_string_equal(argv[i], want[i]);
    assert_null(argv[sizeof want / sizeof want[0] - 1]);
    strv_free(argv);
    argv = ssh_external_argv(&t, true, NULL, &err);
    size_t n = strv_len(argv);
    assert_string_equal(argv[n - 2], "-t");
    assert_string_equal(argv[n - 1], "debian@10.1.2.3");
    strv_free(argv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_ed25519),
        cmocka_unit_test(test_perms),
        cmocka_unit_test(test_fingerprint_and_base64),
        cmocka_unit_test(test_external_argv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
