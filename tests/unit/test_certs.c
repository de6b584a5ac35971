/* Unit tests of core/certs: store bootstrap (modes, idempotence, corruption,
 * concurrent first runs), issued certificate contents, SAN and chain checks, and
 * a mutual-TLS handshake in memory with the issued certificates. */
#define MACHINE_CERTS_PRIV
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certs-priv.h"
#include "certs.h"
#include "error.h"

#define ORG "tester"

struct fixture {
    char root[64];
    char store[128]; /* <root>/store/certs: parents do not exist yet */
    char other[128]; /* a second, unrelated store */
};

/* ---- helpers ---- */

static char *path_in(const char *dir, const char *name)
{
    char *p = certs_path_join(dir, name);
    assert_non_null(p);
    return p;
}

static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL) {
        unlink(path);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char *child = path_in(path, de->d_name);
        remove_tree(child);
        free(child);
    }
    closedir(d);
    rmdir(path);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->root, sizeof f->root, "/tmp/test_certs.XXXXXX");
    assert_non_null(mkdtemp(f->root));
    snprintf(f->store, sizeof f->store, "%s/store/certs", f->root);
    snprintf(f->other, sizeof f->other, "%s/other", f->root);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    remove_tree(f->root);
    free(f);
    return 0;
}

static void bootstrap_ok(const char *dir)
{
    struct merr err = MERR_INIT;
    int r = certs_bootstrap(dir, ORG, &err);
    if (r < 0)
        fail_msg("bootstrap '%s': %s", dir, err.msg);
}

static void *read_all(const char *path, size_t *len)
{
    char *data = NULL;
    struct merr err = MERR_INIT;
    if (certs_read_file(path, false, &data, len, &err) < 0)
        fail_msg("%s", err.msg);
    return data;
}

static void assert_same_file(const char *path, const void *data, size_t len)
{
    size_t now_len = 0;
    void *now = read_all(path, &now_len);
    assert_int_equal(now_len, len);
    assert_memory_equal(now, data, len);
    free(now);
}

static X509 *load_x509(const char *dir, const char *name)
{
    char *p = path_in(dir, name);
    FILE *fp = fopen(p, "r");
    assert_non_null(fp);
    X509 *x = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    free(p);
    assert_non_null(x);
    return x;
}

static mode_t mode_of(const char *dir, const char *name)
{
    char *p = path_in(dir, name);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    free(p);
    return st.st_mode & 07777;
}

/* Fails if dir holds anything but the expected names (no temp files). */
static void assert_dir_holds_only(const char *dir, const char *const *names, size_t n)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    size_t seen = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        bool known = false;
        for (size_t i = 0; i < n; i++)
            known = known || strcmp(de->d_name, names[i]) == 0;
        if (!known)
            fail_msg("unexpected file '%s' in '%s'", de->d_name, dir);
        seen++;
    }
    closedir(d);
    assert_int_equal(seen, n);
}

static const char *const store_files[] = { CERTS_CA_CERT, CERTS_CA_KEY, CERTS_CLIENT_CERT,
                                           CERTS_CLIENT_KEY, ".lock" };

static bool verify(const char *cert, const char *ca)
{
    bool ok = false;
    struct merr err = MERR_INIT;
    if (certs_verify_against_ca(cert, ca, &ok, &err) < 0)
        fail_msg("verify '%s': %s", cert, err.msg);
    return ok;
}

static bool has_san(const char *cert, const char *name)
{
    bool has = false;
    struct merr err = MERR_INIT;
    if (certs_has_san(cert, name, &has, &err) < 0)
        fail_msg("has_san '%s': %s", name, err.msg);
    return has;
}

static void issue_server_ok(const char *store, const char *const *sans, size_t n, const char *cert,
                            const char *key)
{
    char *ca = path_in(store, CERTS_CA_CERT), *ca_key = path_in(store, CERTS_CA_KEY);
    struct merr err = MERR_INIT;
    int r = certs_issue_server(ca, ca_key, ORG, sans, n, cert, key, &err);
    free(ca);
    free(ca_key);
    if (r < 0)
        fail_msg("issue server: %s", err.msg);
}

/* now + offset_seconds, for X509_cmp_time. */
static time_t now_plus(long offset_seconds)
{
    return time(NULL) + offset_seconds;
}

static const ASN1_OCTET_STRING *ext_key_id(X509 *x, int nid)
{
    return nid == NID_subject_key_identifier ? X509_get0_subject_key_id(x)
                                             : X509_get0_authority_key_id(x);
}

/* ---- bootstrap ---- */

static void test_bootstrap_creates_store_with_modes(void **state)
{
    struct fixture *f = *state;
    bootstrap_ok(f->store);

    struct stat st;
    assert_int_equal(stat(f->store, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    char parent[160];
    snprintf(parent, sizeof parent, "%s/store", f->root);
    assert_int_equal(stat(parent, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);

    assert_int_equal(mode_of(f->store, CERTS_CA_KEY), 0600);
    assert_int_equal(mode_of(f->store, CERTS_CLIENT_KEY), 0600);
    assert_int_equal(mode_of(f->store, CERTS_CA_CERT), 0644);
    assert_int_equal(mode_of(f->store, CERTS_CLIENT_CERT), 0644);
    assert_dir_holds_only(f->store, store_files, 5);
}

static void test_bootstrap_modes_ignore_umask(void **state)
{
    struct fixture *f = *state;
    mode_t old = umask(0);
    bootstrap_ok(f->store);
    umask(old);
    assert_int_equal(mode_of(f->store, "."), 0700);
    assert_int_equal(mode_of(f->store, CERTS_CA_KEY), 0600);
    assert_int_equal(mode_of(f->store, CERTS_CLIENT_KEY), 0600);
}

static void test_ca_certificate_profile(void **state)
{
    struct fixture *f = *state;
    bootstrap_ok(f->store);
    X509 *ca = load_x509(f->store, CERTS_CA_CERT);

    /* basicConstraints critical CA:TRUE */
    int crit = 0;
    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(ca, NID_basic_constraints, &crit, NULL);
    assert_non_null(bc);
    assert_true(bc->ca);
    assert_int_equal(crit, 1);
    BASIC_CONSTRAINTS_free(bc);

    uint32_t ku = X509_get_key_usage(ca);
    assert_true(ku & KU_KEY_CERT_SIGN);
    assert_true(ku & KU_CRL_SIGN);
    assert_true(ku & KU_DIGITAL_SIGNATURE);
    assert_non_null(ext_key_id(ca, NID_subject_key_identifier));

    /* ECDSA P-256, SHA-256 */
    EVP_PKEY *pub = X509_get0_pubkey(ca);
    assert_true(EVP_PKEY_is_a(pub, "EC"));
    char group[32] = "";
    assert_int_equal(EVP_PKEY_get_utf8_string_param(pub, "group", group, sizeof group, NULL), 1);
    assert_string_equal(group, "prime256v1");
    assert_int_equal(X509_get_signature_nid(ca), NID_ecdsa_with_SHA256);

    /* 128-bit random serial: the chance of fewer than 100 significant bits is 2^-28 */
    BIGNUM *serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(ca), NULL);
    assert_true(BN_num_bits(serial) > 100 && BN_num_bits(serial) <= 128);
    BN_free(serial);

    /* NotBefore = now - 5 min, NotAfter = now + 10 years */
    time_t t = now_plus(-4 * 60);
    assert_int_equal(X509_cmp_time(X509_get0_notBefore(ca), &t), -1);
    int days = 0, secs = 0;
    assert_int_equal(ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(ca)), 1);
    assert_in_range(days, 3649, 3650);

    X509_NAME *subject = X509_get_subject_name(ca);
    char o[80] = "";
    assert_true(X509_NAME_get_text_by_NID(subject, NID_organizationName, o, sizeof o) > 0);
    assert_string_equal(o, ORG);
    X509_free(ca);
}

static void test_client_certificate_has_client_auth_only(void **state)
{
    struct fixture *f = *state;
    bootstrap_ok(f->store);
    X509 *client = load_x509(f->store, CERTS_CLIENT_CERT);
    X509 *ca = load_x509(f->store, CERTS_CA_CERT);

    uint32_t xku = X509_get_extended_key_usage(client);
    assert_true(xku & XKU_SSL_CLIENT);
    assert_false(xku & XKU_SSL_SERVER);
    assert_int_equal(X509_check_ca(client), 0);
    assert_int_equal(X509_check_purpose(client, X509_PURPOSE_SSL_CLIENT, 0), 1);
    assert_int_not_equal(X509_check_purpose(client, X509_PURPOSE_SSL_SERVER, 0), 1);

    /* the leaf names its issuer's key */
    const ASN1_OCTET_STRING *aki = ext_key_id(client, NID_authority_key_identifier);
    assert_non_null(aki);
    assert_int_equal(ASN1_OCTET_STRING_cmp(aki, ext_key_id(ca, NID_subject_key_identifier)), 0);

    int days = 0, secs = 0;
    assert_int_equal(ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(client)), 1);
    assert_in_range(days, 1094, 1095);

    char *cert = path_in(f->store, CERTS_CLIENT_CERT), *ca_path = path_in(f->store, CERTS_CA_CERT);
    assert_true(verify(cert, ca_path));
    free(cert);
    free(ca_path);
    X509_free(client);
    X509_free(ca);
}

static void test_second_bootstrap_keeps_every_file(void **state)
{
    struct fixture *f = *state;
    bootstrap_ok(f->store);
    const char *names[] = { CERTS_CA_CERT, CERTS_CA_KEY, CERTS_CLIENT_CERT, CERTS_CLIENT_KEY };
    void *before[4];
    size_t len[4];
    for (int i = 0; i < 4; i++) {
        char *p = path_in(f->store, names[i]);
        before[i] = read_all(p, &len[i]);
        free(p);
    }
    bootstrap_ok(f->store);
    for (int i = 0; i < 4; i++) {
        char *p = path_in(f->store, names[i]);
        assert_same_file(p, before[i], len[i]);
        free(p);
        free(before[i]);
    }
}

static void test_missing_client_pair_is_reissued_from_same_ca(void **state)
{
    struct fixture *f = *state;
    bootstrap_ok(f->store);
    char *ca = path_in(f->store, CERTS_CA_CERT), *cert = path_in(f->store, CERTS_CLIENT_CERT),
         *key = path_in(f->store, CERTS_CLIENT_KEY);
    size_t ca_len = 0;
    void *ca_before = read_all(ca, &ca_len);
    assert_int_equal(unlink(cert), 0);
    assert_int_equal(unlink(key), 0);

    bootstrap_ok(f->store);
    assert_same_file(ca, ca_before, ca_len);
    assert_true(verify(cert, ca));
    assert_int_equal(mode_of(f->store, CERTS_CLIENT_KEY), 0600);
    free(ca_before);
    free(ca);
    free(cert);
    free(key);
}

/* Overwrites name in dir with content, then checks bootstrap reports `code`
 * and leaves the file exactly as it was. */
static void assert_bootstrap_refuses(const char *dir, const char *name, const char *content,
                                     size_t len, enum merr_code code)
{
    char *p = path_in(dir, name);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    assert_int_equal(fwrite(content, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);

    struct merr err = MERR_INIT;
    assert_int_equal(certs_bootstrap(dir, ORG, &err), -1);
    assert_int_equal(err.code, code);
    assert_same_file(p, content, len);
    free(p);
}

static void test_corrupt_ca_is_reported_and_untouched(void **state)
{
    struct fixture *f = *state;
    bootstrap_ok(f->store);
    char *ca = path_in(f->store, CERTS_CA_CERT);
    size_t len = 0;
    char *good = read_all(ca, &len);

    /* a half-written file, garbage, an empty file */
    assert_bootstrap_refuses(f->store, CERTS_CA_CERT, good, len / 2, MERR_CORRUPT);
    assert_bootstrap_refuses(f->store, CERTS_CA_CERT, "not a certificate\n", 18, MERR_CORRUPT);
    assert_bootstrap_refuses(f->store, CERTS_CA_CERT, "", 0, MERR_CORRUPT);
    assert_dir_holds_only(f->store, store_files, 5);
    free(good);
    free(ca);
}

static void test_corrupt_client_key_is_reported(void **state)
{
    struct fixture *f = *state;
    bootstrap_ok(f->store);
    char *key = path_in(f->store, CERTS_CLIENT_KEY);
    size_t len = 0;
    char *good = read_all(key, &len);
    assert_bootstrap_refuses(f->store, CERTS_CLIENT_KEY, good, len - 30, MERR_CORRUPT);
    free(good);
    free(key);
}

static void test_half_pair_is_reported(void **state)
{
    struct fixture *f = *state;
    bootstrap_ok(f->store);
    char *ca = path_in(f->store, CERTS_CA_CERT), *ca_key = path_in(f->store, CERTS_CA_KEY);
    size_t len = 0;
    char *ca_before = read_all(ca, &len);

    assert_int_equal(unlink(ca_key), 0);
    struct merr err = MERR_INIT;
    assert_int_equal(certs_bootstrap(f->store, ORG, &err), -1);
    assert_int_equal(err.code, MERR_CORRUPT);
    assert_same_file(ca, ca_before, len);

    /* client pair present, CA gone entirely: a new CA would orphan it */
    assert_int_equal(unlink(ca), 0);
    assert_int_equal(certs_bootstrap(f->store, ORG, &err), -1);
    assert_int_equal(err.code, MERR_CORRUPT);
    struct stat st;
    assert_int_equal(stat(ca, &st), -1);
    free(ca_before);
    free(ca);
    free(ca_key);
}

static void test_client_from_another_ca_is_reported(void **state)
{
    struct fixture *f = *state;
    bootstrap_ok(f->store);
    bootstrap_ok(f->other);
    char *src = path_in(f->other, CERTS_CLIENT_CERT), *dst = path_in(f->store, CERTS_CLIENT_CERT);
    char *src_key = path_in(f->other, CERTS_CLIENT_KEY),
         *dst_key = path_in(f->store, CERTS_CLIENT_KEY);
    assert_int_equal(rename(src, dst), 0);
    assert_int_equal(rename(src_key, dst_key), 0);
    struct merr err = MERR_INIT;
    assert_int_equal(certs_bootstrap(f->store, ORG, &err), -1);
    assert_int_equal(err.code, MERR_CORRUPT);
    free(src);
    free(dst);
    free(src_key);
    free(dst_key);
}

static void test_loose_key_mode_is_refused(void **state)
{
    struct fixture *f = *state;
    bootstrap_ok(f->store);
    char *ca = path_in(f->store, CERTS_CA_CERT), *ca_key = path_in(f->store, CERTS_CA_KEY);
    char *out = path_in(f->root, "server.pem"), *out_key = path_in(f->root, "server-key.pem");
    assert_int_equal(chmod(ca_key, 0644), 0);

    struct merr err = MERR_INIT;
    assert_int_equal(certs_bootstrap(f->store, ORG, &err), -1);
    assert_int_equal(err.code, MERR_PERM);
    assert_int_equal(certs_issue_server(ca, ca_key, ORG, NULL, 0, out, out_key, &err), -1);
    assert_int_equal(err.code, MERR_PERM);
    assert_int_equal(access(out, F_OK), -1);
    assert_int_equal(access(out_key, F_OK), -1);
    free(ca);
    free(ca_key);
    free(out);
    free(out_key);
}

static void test_stale_temp_files_are_collected(void **state)
{
    struct fixture *f = *state;
    bootstrap_ok(f->store);
    char *stale = path_in(f->store, ".ca.pem.tmp-Ab12Cd");
    FILE *fp = fopen(stale, "w");
    assert_non_null(fp);
    fclose(fp);
    bootstrap_ok(f->store);
    assert_dir_holds_only(f->store, store_files, 5);
    free(stale);
}

static void test_invalid_org_is_refused(void **state)
{
    struct fixture *f = *state;
    struct merr err = MERR_INIT;
    assert_int_equal(certs_bootstrap(f->store, "", &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    char longorg[80];
    memset(longorg, 'o', sizeof longorg - 1);
    longorg[sizeof longorg - 1] = '\0';
    assert_int_equal(certs_bootstrap(f->store, longorg, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
}

/* ---- concurrent first runs ---- */

#define RACERS 8
#define DIGEST_LEN 32

/* Child: wait for the start signal, bootstrap, report SHA-256 of the ca.pem it
 * sees and whether cert.pem verifies against it. Exit status 0 = all fine. */
static void racer(const char *dir, int start_fd, int report_fd)
{
    char c;
    while (read(start_fd, &c, 1) < 0 && errno == EINTR)
        ;
    struct merr err = MERR_INIT;
    if (certs_bootstrap(dir, ORG, &err) < 0)
        _exit(10 + err.code);
    char *ca = certs_path_join(dir, CERTS_CA_CERT), *cert = certs_path_join(dir, CERTS_CLIENT_CERT);
    char *data = NULL;
    size_t len = 0;
    unsigned char record[1 + DIGEST_LEN] = { 0 };
    if (ca == NULL || cert == NULL || certs_read_file(ca, false, &data, &len, &err) < 0)
        _exit(2);
    if (EVP_Digest(data, len, record + 1, NULL, EVP_sha256(), NULL) != 1)
        _exit(3);
    bool ok = false;
    if (certs_verify_against_ca(cert, ca, &ok, &err) < 0 || !ok)
        _exit(4);
    record[0] = 1;
    /* one write under PIPE_BUF is atomic, so records never interleave */
    if (write(report_fd, record, sizeof record) != (ssize_t)sizeof record)
        _exit(5);
    _exit(0);
}

static void test_racing_first_runs_create_one_ca(void **state)
{
    struct fixture *f = *state;
    int start[2], report[2];
    assert_int_equal(pipe(start), 0);
    assert_int_equal(pipe(report), 0);
    pid_t pids[RACERS];
    for (int i = 0; i < RACERS; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            close(start[1]);
            close(report[0]);
            racer(f->store, start[0], report[1]);
        }
    }
    close(start[0]);
    close(report[1]);
    close(start[1]); /* releases every racer at once */

    int failures = 0;
    for (int i = 0; i < RACERS; i++) {
        int status = 0;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            print_error("racer %d: status 0x%x\n", i, status);
            failures++;
        }
    }
    assert_int_equal(failures, 0);

    unsigned char records[RACERS + 1][1 + DIGEST_LEN];
    ssize_t got = read(report[0], records, sizeof records);
    close(report[0]);
    assert_int_equal(got, RACERS * (1 + DIGEST_LEN));

    /* every racer saw the ca.pem that is on disk now */
    char *ca = path_in(f->store, CERTS_CA_CERT), *cert = path_in(f->store, CERTS_CLIENT_CERT);
    size_t len = 0;
    void *data = read_all(ca, &len);
    unsigned char digest[DIGEST_LEN];
    assert_int_equal(EVP_Digest(data, len, digest, NULL, EVP_sha256(), NULL), 1);
    for (int i = 0; i < RACERS; i++)
        assert_memory_equal(records[i] + 1, digest, DIGEST_LEN);
    assert_true(verify(cert, ca));
    assert_dir_holds_only(f->store, store_files, 5);
    free(data);
    free(ca);
    free(cert);
}

/* ---- server certificates ---- */

static int count_names(X509 *x, int type)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    assert_non_null(names);
    int n = 0;
    for (int i = 0; i < sk_GENERAL_NAME_num(names); i++)
        n += sk_GENERAL_NAME_value(names, i)->type == type;
    GENERAL_NAMES_free(names);
    return n;
}

static bool names_have(X509 *x, int type, const void *data, int len)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    assert_non_null(names);
    bool found = false;
    for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
        if (gn->type != type)
            continue;
        ASN1_STRING *s = type == GEN_DNS ? gn->d.dNSName : gn->d.iPAddress;
        found = found || (ASN1_STRING_length(s) == len &&
                          memcmp(ASN1_STRING_get0_data(s), data, (size_t)len) == 0);
    }
    GENERAL_NAMES_free(names);
    return found;
}

static void test_server_certificate_profile_and_sans(void **state)
{
    struct fixture *f = *state;
    bootstrap_ok(f->store);
    const char *sans[] = { "192.168.99.100", "node1.example", "::1",
                           "192.168.99.100", "NODE1.example", "0:0::1" };
    char *cert = path_in(f->root, "server.pem"), *key = path_in(f->root, "server-key.pem");
    issue_server_ok(f->store, sans, 6, cert, key);

    X509 *x = load_x509(f->root, "server.pem");
    uint32_t xku = X509_get_extended_key_usage(x);
    assert_true(xku & XKU_SSL_SERVER);
    assert_false(xku & XKU_SSL_CLIENT);
    uint32_t ku = X509_get_key_usage(x);
    assert_true(ku & KU_DIGITAL_SIGNATURE);
    assert_true(ku & KU_KEY_ENCIPHERMENT);
    assert_false(ku & KU_KEY_CERT_SIGN);
    assert_int_equal(X509_check_ca(x), 0);

    /* IP entries as IP SANs, names as DNS SANs, localhost added, duplicates gone */
    unsigned char v4[4], v6[16];
    inet_pton(AF_INET, "192.168.99.100", v4);
    inet_pton(AF_INET6, "::1", v6);
    assert_int_equal(count_names(x, GEN_IPADD), 2);
    assert_int_equal(count_names(x, GEN_DNS), 2);
    assert_true(names_have(x, GEN_IPADD, v4, 4));
    assert_true(names_have(x, GEN_IPADD, v6, 16));
    assert_true(names_have(x, GEN_DNS, "node1.example", 13));
    assert_true(names_have(x, GEN_DNS, "localhost", 9));
    assert_false(names_have(x, GEN_DNS, "192.168.99.100", 14));

    /* NotBefore = now - 5 min (guest clock skew) */
    time_t t = now_plus(-4 * 60);
    assert_int_equal(X509_cmp_time(X509_get0_notBefore(x), &t), -1);
    t = now_plus(-6 * 60);
    assert_int_equal(X509_cmp_time(X509_get0_notBefore(x), &t), 1);

    char cn[80] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
    assert_string_equal(cn, "192.168.99.100");
    assert_int_equal(mode_of(f->root, "server-key.pem"), 0600);
    assert_int_equal(mode_of(f->root, "server.pem"), 0644);

    const char *root_files[] = { "store", "server.pem", "server-key.pem" };
    assert_dir_holds_only(f->root, root_files, 3);
    X509_free(x);
    free(cert);
    free(key);
}

static void test_server_localhost_once_and_cn_defaults_to_org(void **state)
{
    struct fixture *f = *state;
    bootstrap_ok(f->store);
    char *cert = path_in(f->root, "server.pem"), *key = path_in(f->root, "server-key.pem");
    issue_server_ok(f->store, NULL, 0, cert, key);
    X509 *x = load_x509(f->root, "server.pem");
    assert_int_equal(count_names(x, GEN_DNS), 1);
    assert_int_equal(count_names(x, GEN_IPADD), 0);
    char cn[80] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
    assert_string_equal(cn, ORG);
    X509_free(x);

    const char *sans[] = { "LocalHost" };
    issue_server_ok(f->store, sans, 1, cert, key);
    x = load_x509(f->root, "server.pem");
    assert_int_equal(count_names(x, GEN_DNS), 1);
    X509_free(x);
    free(cert);
    free(key);
}

static void test_server_invalid_san_is_refused(void **state)
{
    struct fixture *f = *state;
    bootstrap_ok(f->store);
    char *ca = path_in(f->store, CERTS_CA_CERT), *ca_key = path_in(f->store, CERTS_CA_KEY);
    char *cert = path_in(f->root, "server.pem"), *key = path_in(f->root, "server-key.pem");
    const char *bad[] = { "", "two words", "fe80::1%eth0", "a..b", "x,y", "-/etc", NULL };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *sans[] = { "10.0.0.1", bad[i] };
        struct merr err = MERR_INIT;
        assert_int_equal(certs_issue_server(ca, ca_key, ORG, sans, 2, cert, key, &err), -1);
        assert_int_equal(err.code, MERR_INVALID);
        assert_int_equal(access(cert, F_OK), -1);
        assert_int_equal(access(key, F_OK), -1);
    }
    free(ca);
    free(ca_key);
    free(cert);
    free(key);
}

static void test_server_verifies_only_against_its_ca(void **state)
{
    struct fixture *f = *state;
    bootstrap_ok(f->store);
    bootstrap_ok(f->other);
    char *cert = path_in(f->root, "server.pem"), *key = path_in(f->root, "server-key.pem");
    char *ca = path_in(f->store, CERTS_CA_CERT), *other_ca = path_in(f->other, CERTS_CA_CERT);
    const char *sans[] = { "10.1.2.3" };
    issue_server_ok(f->store, sans, 1, cert, key);
    assert_true(verify(cert, ca));
    assert_false(verify(cert, other_ca));

    bool ok = true;
    struct merr err = MERR_INIT;
    char *missing = path_in(f->root, "missing.pem");
    assert_int_equal(certs_verify_against_ca(missing, ca, &ok, &err), -1);
    assert_int_equal(err.code, MERR_NOT_FOUND);
    assert_int_equal(certs_verify_against_ca(cert, key, &ok, &err), -1);
    assert_int_equal(err.code, MERR_CORRUPT);
    free(missing);
    free(cert);
    free(key);
    free(ca);
    free(other_ca);
}

static void test_has_san(void **state)
{
    struct fixture *f = *state;
    bootstrap_ok(f->store);
    char *cert = path_in(f->root, "server.pem"), *key = path_in(f->root, "server-key.pem");
    const char *sans[] = { "192.168.99.100", "fd00::10", "node1.example" };
    issue_server_ok(f->store, sans, 3, cert, key);

    assert_true(has_san(cert, "192.168.99.100"));
    assert_true(has_san(cert, "fd00:0:0::10"));
    assert_true(has_san(cert, "Node1.Example"));
    assert_true(has_san(cert, "localhost"));
    assert_false(has_san(cert, "192.168.99.101"));
    assert_false(has_san(cert, "fd00::11"));
    assert_false(has_san(cert, "node2.example"));
    assert_false(has_san(cert, "node1"));

    /* the CA has no SAN extension: false, not an error */
    char *ca = path_in(f->store, CERTS_CA_CERT);
    assert_false(has_san(ca, "localhost"));
    bool has = true;
    struct merr err = MERR_INIT;
    assert_int_equal(certs_has_san(key, "localhost", &has, &err), -1);
    assert_int_equal(err.code, MERR_CORRUPT);
    free(ca);
    free(cert);
    free(key);
}

static void test_issue_client_into_other_paths(void **state)
{
    struct fixture *f = *state;
    bootstrap_ok(f->store);
    char *ca = path_in(f->store, CERTS_CA_CERT), *ca_key = path_in(f->store, CERTS_CA_KEY);
    char *cert = path_in(f->root, "c.pem"), *key = path_in(f->root, "c-key.pem");
    struct merr err = MERR_INIT;
    assert_int_equal(certs_issue_client(ca, ca_key, ORG, cert, key, &err), 0);
    assert_true(verify(cert, ca));
    X509 *x = load_x509(f->root, "c.pem");
    assert_true(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT);
    X509_free(x);

    /* a leaf certificate cannot act as CA */
    char *leaf = path_in(f->store, CERTS_CLIENT_CERT);
    char *leaf_key = path_in(f->store, CERTS_CLIENT_KEY);
    assert_int_equal(certs_issue_client(leaf, leaf_key, ORG, cert, key, &err), -1);
    assert_int_equal(err.code, MERR_CORRUPT);
    /* nor a CA with somebody else's key */
    assert_int_equal(certs_issue_client(ca, leaf_key, ORG, cert, key, &err), -1);
    assert_int_equal(err.code, MERR_CORRUPT);
    free(ca);
    free(ca_key);
    free(cert);
    free(key);
    free(leaf);
    free(leaf_key);
}

static void test_regenerate_ca_replaces_ca_and_client(void **state)
{
    struct fixture *f = *state;
    bootstrap_ok(f->store);
    char *ca = path_in(f->store, CERTS_CA_CERT), *client = path_in(f->store, CERTS_CLIENT_CERT);
    char *cert = path_in(f->root, "server.pem"), *key = path_in(f->root, "server-key.pem");
    issue_server_ok(f->store, NULL, 0, cert, key);
    size_t len = 0;
    char *old_ca = read_all(ca, &len);

    struct merr err = MERR_INIT;
    assert_int_equal(certs_regenerate_ca(f->store, ORG, &err), 0);
    size_t new_len = 0;
    char *new_ca = read_all(ca, &new_len);
    assert_false(new_len == len && memcmp(old_ca, new_ca, len) == 0);
    assert_true(verify(client, ca));
    assert_false(verify(cert, ca));
    assert_int_equal(mode_of(f->store, CERTS_CA_KEY), 0600);
    assert_dir_holds_only(f->store, store_files, 5);
    /* and the regenerated store passes bootstrap untouched */
    bootstrap_ok(f->store);
    assert_same_file(ca, new_ca, new_len);
    free(old_ca);
    free(new_ca);
    free(ca);
    free(client);
    free(cert);
    free(key);
}

/* ---- atomic write ---- */

static void test_write_atomic_replaces_by_rename(void **state)
{
    struct fixture *f = *state;
    char *path = path_in(f->root, "file"), *other = path_in(f->root, "old-link");
    struct merr err = MERR_INIT;
    assert_int_equal(certs_write_atomic(path, "old", 3, 0644, &err), 0);
    assert_int_equal(link(path, other), 0);

    /* A truncate + write in place would change what the hard link sees too. */
    assert_int_equal(certs_write_atomic(path, "new content", 11, 0600, &err), 0);
    assert_same_file(path, "new content", 11);
    assert_same_file(other, "old", 3);
    assert_int_equal(mode_of(f->root, "file"), 0600);

    const char *names[] = { "file", "old-link" };
    assert_dir_holds_only(f->root, names, 2);

    char *nodir = path_in(f->root, "missing/file");
    assert_int_equal(certs_write_atomic(nodir, "x", 1, 0600, &err), -1);
    assert_int_equal(err.code, MERR_IO);
    assert_dir_holds_only(f->root, names, 2);
    free(nodir);
    free(path);
    free(other);
}

/* ---- mutual TLS in memory with the issued certificates ---- */

struct tls_side {
    const char *cert, *key, *ca;
    const char *expect_ip; /* client only: the address it "dialled" */
};

static SSL_CTX *tls_ctx(bool server, const struct tls_side *s)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION), 1);
    assert_int_equal(SSL_CTX_use_certificate_file(ctx, s->cert, SSL_FILETYPE_PEM), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, s->key, SSL_FILETYPE_PEM), 1);
    assert_int_equal(SSL_CTX_load_verify_locations(ctx, s->ca, NULL), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), NULL);
    return ctx;
}

/* Runs a handshake over a BIO pair; true if both sides complete. */
static bool tls_handshake(const struct tls_side *server, const struct tls_side *client)
{
    SSL_CTX *sctx = tls_ctx(true, server), *cctx = tls_ctx(false, client);
    SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
    assert_non_null(s);
    assert_non_null(c);
    if (client->expect_ip != NULL)
        assert_int_equal(X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c), client->expect_ip), 1);
    BIO *sb = NULL, *cb = NULL;
    assert_int_equal(BIO_new_bio_pair(&sb, 0, &cb, 0), 1);
    SSL_set_bio(s, sb, sb);
    SSL_set_bio(c, cb, cb);
    SSL_set_accept_state(s);
    SSL_set_connect_state(c);

    bool s_done = false, c_done = false, failed = false;
    for (int round = 0; round < 50 && !(s_done && c_done) && !failed; round++) {
        if (!c_done) {
            int r = SSL_do_handshake(c);
            c_done = r == 1;
            failed = r <= 0 && SSL_get_error(c, r) != SSL_ERROR_WANT_READ;
        }
        if (!s_done && !failed) {
            int r = SSL_do_handshake(s);
            s_done = r == 1;
            failed = r <= 0 && SSL_get_error(s, r) != SSL_ERROR_WANT_READ;
        }
    }
    /* TLS 1.3 servers check the client cert after the client finishes: read once. */
    if (s_done && c_done && !failed) {
        char byte = 'x';
        assert_int_equal(SSL_write(c, &byte, 1), 1);
        failed = SSL_read(s, &byte, 1) != 1;
    }
    ERR_clear_error();
    SSL_free(s);
    SSL_free(c);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return s_done && c_done && !failed;
}

static void test_mutual_tls_with_issued_certificates(void **state)
{
    struct fixture *f = *state;
    bootstrap_ok(f->store);
    bootstrap_ok(f->other);
    char *ca = path_in(f->store, CERTS_CA_CERT), *other_ca = path_in(f->other, CERTS_CA_CERT);
    char *client = path_in(f->store, CERTS_CLIENT_CERT);
    char *client_key = path_in(f->store, CERTS_CLIENT_KEY);
    char *rogue_client = path_in(f->other, CERTS_CLIENT_CERT),
         *rogue_client_key = path_in(f->other, CERTS_CLIENT_KEY);
    char *server = path_in(f->root, "server.pem"), *server_key = path_in(f->root, "server-key.pem");
    char *rogue = path_in(f->root, "rogue.pem"), *rogue_key = path_in(f->root, "rogue-key.pem");
    const char *sans[] = { "127.0.0.1" };
    issue_server_ok(f->store, sans, 1, server, server_key);
    issue_server_ok(f->other, sans, 1, rogue, rogue_key);

    struct tls_side srv = { server, server_key, ca, NULL };
    struct tls_side cli = { client, client_key, ca, "127.0.0.1" };
    assert_true(tls_handshake(&srv, &cli));

    /* case 2: the client refuses a server from another CA, or without the dialled SAN */
    struct tls_side rogue_srv = { rogue, rogue_key, ca, NULL };
    assert_false(tls_handshake(&rogue_srv, &cli));
    struct tls_side cli_other_ip = { client, client_key, ca, "127.0.0.2" };
    assert_false(tls_handshake(&srv, &cli_other_ip));

    /* a server set up like the engine's refuses a client from another CA, or a cert without
     * clientAuth (these check the certificates; the engine's own TLS setup is tested with real
     * clients in test_api_tls.c and test_engine_security.sh) */
    struct tls_side rogue_cli = { rogue_client, rogue_client_key, other_ca, "127.0.0.1" };
    assert_false(tls_handshake(&srv, &rogue_cli));
    struct tls_side server_as_client = { server, server_key, ca, "127.0.0.1" };
    assert_false(tls_handshake(&srv, &server_as_client));

    free(ca);
    free(other_ca);
    free(client);
    free(client_key);
    free(rogue_client);
    free(rogue_client_key);
    free(server);
    free(server_key);
    free(rogue);
    free(rogue_key);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_bootstrap_creates_store_with_modes),
        T(test_bootstrap_modes_ignore_umask),
        T(test_ca_certificate_profile),
        T(test_client_certificate_has_client_auth_only),
        T(test_second_bootstrap_keeps_every_file),
        T(test_missing_client_pair_is_reissued_from_same_ca),
        T(test_corrupt_ca_is_reported_and_untouched),
        T(test_corrupt_client_key_is_reported),
        T(test_half_pair_is_reported),
        T(test_client_from_another_ca_is_reported),
        T(test_loose_key_mode_is_refused),
        T(test_stale_temp_files_are_collected),
        T(test_invalid_org_is_refused),
        T(test_racing_first_runs_create_one_ca),
        T(test_server_certificate_profile_and_sans),
        T(test_server_localhost_once_and_cn_defaults_to_org),
        T(test_server_invalid_san_is_refused),
        T(test_server_verifies_only_against_its_ca),
        T(test_has_san),
        T(test_issue_client_into_other_paths),
        T(test_regenerate_ca_replaces_ca_and_client),
        T(test_write_atomic_replaces_by_rename),
        T(test_mutual_tls_with_issued_certificates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
