/* sshkey: ed25519 key files (format proven by ssh-keygen when present), key
 * permission checks, fingerprints, and the system ssh argv. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "error.h"
#include "ssh.h"
#include "sshkey.h"

#define SSH_KEYGEN "/usr/bin/ssh-keygen"

struct fixture {
    char dir[64];
    char priv[128];
    char pub[128];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_sshkey.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->priv, sizeof f->priv, "%s/id_ed25519", f->dir);
    snprintf(f->pub, sizeof f->pub, "%s/id_ed25519.pub", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static char *slurp(const char *path)
{
    auto_fclose FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    char *buf = calloc(1, 65536);
    assert_non_null(buf);
    size_t n = fread(buf, 1, 65535, fp);
    buf[n] = '\0';
    return buf;
}

static void test_generate_modes_and_format(void **state)
{
    struct fixture *f = *state;
    struct merr err = MERR_INIT;
    mode_t old = umask(0077); /* modes must not depend on the caller's umask */
    int r = sshkey_generate_ed25519(f->priv, f->pub, "machine@test", &err);
    umask(old);
    assert_int_equal(r, 0);

    struct stat st;
    assert_int_equal(stat(f->priv, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(stat(f->pub, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);

    auto_free char *priv = slurp(f->priv);
    assert_true(strncmp(priv, "-----BEGIN OPENSSH PRIVATE KEY-----\n", 36) == 0);
    assert_non_null(strstr(priv, "\n-----END OPENSSH PRIVATE KEY-----\n"));
    auto_free char *pub = slurp(f->pub);
    assert_true(strncmp(pub, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI", 37) == 0);
    size_t n = strlen(pub);
    assert_true(n > 14 && strcmp(pub + n - 14, " machine@test\n") == 0);
}

static void test_generate_refuses_existing(void **state)
{
    struct fixture *f = *state;
    struct merr err = MERR_INIT;
    assert_int_equal(sshkey_generate_ed25519(f->priv, f->pub, "a", &err), 0);
    auto_free char *before = slurp(f->priv);
    assert_int_equal(sshkey_generate_ed25519(f->priv, f->pub, "b", &err), -1);
    assert_int_equal(err.code, MERR_EXISTS);
    auto_free char *after = slurp(f->priv);
    assert_string_equal(before, after);
}

/* The strongest proof of the format: OpenSSH itself reads the private key and
 * derives exactly our public key from it. */
static void test_ssh_keygen_reads_private_key(void **state)
{
    struct fixture *f = *state;
    if (access(SSH_KEYGEN, X_OK) != 0) {
        print_message("skipped: " SSH_KEYGEN " not installed\n");
        skip();
    }
    struct merr err = MERR_INIT;
    assert_int_equal(sshkey_generate_ed25519(f->priv, f->pub, "proof", &err), 0);
    char cmd[256];
    snprintf(cmd, sizeof cmd, SSH_KEYGEN " -y -f '%s' 2>&1", f->priv);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[1024] = "";
    assert_non_null(fgets(line, sizeof line, p));
    assert_int_equal(pclose(p), 0);

    auto_free char *pub = slurp(f->pub);
    /* compare "type base64" (ssh-keygen may or may not repeat the comment) */
    char *sp = strchr(pub, ' ');
    assert_non_null(sp);
    sp = strchr(sp + 1, ' ');
    assert_non_null(sp);
    size_t material = (size_t)(sp - pub);
    assert_true(strlen(line) >= material);
    assert_memory_equal(line, pub, material);
    assert_true(line[material] == ' ' || line[material] == '\n');

    /* and its fingerprint matches ours */
    snprintf(cmd, sizeof cmd, SSH_KEYGEN " -l -f '%s'", f->pub);
    p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(line, sizeof line, p));
    assert_int_equal(pclose(p), 0);
    char b64[256];
    const char *start = strchr(pub, ' ') + 1;
    snprintf(b64, sizeof b64, "%.*s", (int)(sp - start), start);
    char fp[SSHKEY_FINGERPRINT_MAX];
    assert_int_equal(sshkey_fingerprint_base64(b64, fp, &err), 0);
    assert_non_null(strstr(line, fp));
}

static void test_private_key_permissions(void **state)
{
    struct fixture *f = *state;
    struct merr err = MERR_INIT;
    assert_int_equal(sshkey_generate_ed25519(f->priv, f->pub, "perm", &err), 0);
    assert_int_equal(sshkey_check_private_perms(f->priv, &err), 0);

    char *data = NULL;
    size_t len = 0;
    assert_int_equal(sshkey_read_private(f->priv, &data, &len, &err), 0);
    assert_true(len > 100);
    free(data);

    static const mode_t bad[] = { 0644, 0640, 0604, 0660, 0606 };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(chmod(f->priv, bad[i]), 0);
        merr_clear(&err);
        assert_int_equal(sshkey_check_private_perms(f->priv, &err), -1);
        assert_int_equal(err.code, MERR_PERM);
        merr_clear(&err);
        data = NULL;
        assert_int_equal(sshkey_read_private(f->priv, &data, &len, &err), -1);
        assert_int_equal(err.code, MERR_PERM);
        assert_null(data);
    }
    assert_int_equal(chmod(f->priv, 0400), 0);
    assert_int_equal(sshkey_check_private_perms(f->priv, &err), 0);

    assert_int_equal(unlink(f->priv), 0);
    merr_clear(&err);
    assert_int_equal(sshkey_check_private_perms(f->priv, &err), -1);
    assert_int_equal(err.code, MERR_NOT_FOUND);
}

/* Captured from OpenSSH 9.2: `ssh-keygen -t ... ; ssh-keygen -lf key.pub`. */
static void test_fingerprint_known_keys(void **state)
{
    (void)state;
    static const struct {
        const char *b64, *fp;
    } samples[] = {
        { "AAAAC3NzaC1lZDI1NTE5AAAAIA6eJDVlvKLhgB3RHLJLAHx/r7lx2ASvd1ZpxPcK6+Ro",
          "SHA256:w3K5wYbK3ZqI8dAM+2x+qioJwcB5QsP7PNB885yTMaI" },
        { "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPIkp5wcrvAHB6LjDO7V8ugSLd8Tsv9C6QDw"
          "AgHB8jZMx/MamYJ2S9CLH4acFR8vP/Rt7Kntq96rbybfR8wW53c=",
          "SHA256:1ei7OtfPeVmEPFxghR/hg5IyD7QnDmALs/e05RssGwg" },
    };
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        struct merr err = MERR_INIT;
        char fp[SSHKEY_FINGERPRINT_MAX];
        assert_int_equal(sshkey_fingerprint_base64(samples[i].b64, fp, &err), 0);
        assert_string_equal(fp, samples[i].fp);
    }

    /* the raw-blob entry point gives the same answer */
    static const unsigned char ed25519_blob[] = {
        0x00, 0x00, 0x00, 0x0b, 's', 's', 'h', '-', 'e', 'd', '2', '5', '5', '1', '9',
        0x00, 0x00, 0x00, 0x20, 0x0e, 0x9e, 0x24, 0x35, 0x65, 0xbc, 0xa2, 0xe1, 0x80, 0x1d,
        0xd1, 0x1c, 0xb2, 0x4b, 0x00, 0x7c, 0x7f, 0xaf, 0xb9, 0x71, 0xd8, 0x04, 0xaf, 0x77,
        0x56, 0x69, 0xc4, 0xf7, 0x0a, 0xeb, 0xe4, 0x68,
    };
    struct merr err = MERR_INIT;
    char fp[SSHKEY_FINGERPRINT_MAX];
    assert_int_equal(sshkey_fingerprint_sha256(ed25519_blob, sizeof ed25519_blob, fp, &err), 0);
    assert_string_equal(fp, samples[0].fp);

    assert_int_equal(sshkey_fingerprint_base64("not base64!", fp, &err), -1);
    assert_int_equal(err.code, MERR_CORRUPT);
}

static void assert_argv(char **argv, const char *const *want)
{
    size_t i = 0;
    for (; want[i] != NULL; i++) {
        assert_non_null(argv[i]);
        assert_string_equal(argv[i], want[i]);
    }
    assert_null(argv[i]);
}

static void test_external_argv_golden(void **state)
{
    (void)state;
    struct ssh_target t = {
        .host = "192.168.122.10", .port = 2222, .user = "docker",
        .key_path = "/store/machines/m1/id_ed25519",
        .known_hosts_path = "/store/machines/m1/known_hosts", .timeout_ms = 2500,
    };
    struct merr err = MERR_INIT;
    char *const cmd[] = { "uname", "-a", NULL };
    auto_strv char **argv = ssh_external_argv(&t, true, cmd, &err);
    assert_non_null(argv);
    static const char *const want[] = {
        "ssh", "-i", "/store/machines/m1/id_ed25519", "-p", "2222",
        "-o", "IdentitiesOnly=yes",
        "-o", "UserKnownHostsFile=/store/machines/m1/known_hosts",
        "-o", "StrictHostKeyChecking=yes",
        "-o", "ConnectTimeout=3",
        "-o", "LogLevel=ERROR",
        "docker@192.168.122.10", "-t", "--", "uname", "-a", NULL,
    };
    assert_argv(argv, want);

    /* no tty, no command: a login shell, nothing after the destination */
    t.timeout_ms = 10000;
    auto_strv char **shell = ssh_external_argv(&t, false, NULL, &err);
    assert_non_null(shell);
    static const char *const want_shell[] = {
        "ssh", "-i", "/store/machines/m1/id_ed25519", "-p", "2222",
        "-o", "IdentitiesOnly=yes",
        "-o", "UserKnownHostsFile=/store/machines/m1/known_hosts",
        "-o", "StrictHostKeyChecking=yes",
        "-o", "ConnectTimeout=10",
        "-o", "LogLevel=ERROR",
        "docker@192.168.122.10", NULL,
    };
    assert_argv(shell, want_shell);
}

static void test_external_argv_rejects_option_injection(void **state)
{
    (void)state;
    struct ssh_target t = {
        .host = "-oProxyCommand=touch /tmp/pwned", .port = 22, .user = "root",
        .key_path = "k", .known_hosts_path = "kh", .timeout_ms = 1000,
    };
    struct merr err = MERR_INIT;
    assert_null(ssh_external_argv(&t, false, NULL, &err));
    assert_int_equal(err.code, MERR_INVALID);

    t.host = "10.0.0.1";
    t.user = "root@evil";
    merr_clear(&err);
    assert_null(ssh_external_argv(&t, false, NULL, &err));
    assert_int_equal(err.code, MERR_INVALID);

    t.user = "root";
    t.port = 0;
    merr_clear(&err);
    assert_null(ssh_external_argv(&t, false, NULL, &err));
    assert_int_equal(err.code, MERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_generate_modes_and_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generate_refuses_existing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ssh_keygen_reads_private_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_private_key_permissions, setup, teardown),
        cmocka_unit_test(test_fingerprint_known_keys),
        cmocka_unit_test(test_external_argv_golden),
        cmocka_unit_test(test_external_argv_rejects_option_injection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
