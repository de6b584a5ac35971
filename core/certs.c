/* Certificate issuing and checking with OpenSSL 3: the store's CA and client
 * certificate (bootstrap, regenerate), per-machine server certificates, and the
 * SAN / chain checks used to decide when a server certificate must be renewed. */
#include "certs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certs-priv.h"
#include "error.h"

#define NOT_BEFORE_SKEW_SECONDS (5 * 60)
#define CA_VALIDITY_DAYS (10 * 365)
#define LEAF_VALIDITY_DAYS (3 * 365)
#define SERIAL_BITS 128
#define X509_NAME_MAX 64 /* ub-common-name / ub-organization-name */
#define DNS_NAME_MAX 253

static void general_names_freep(GENERAL_NAMES **p)
{
    GENERAL_NAMES_free(*p);
    *p = NULL;
}
#define auto_general_names __attribute__((cleanup(general_names_freep)))

/* What distinguishes the three kinds of certificate we issue. */
struct cert_profile {
    const char *common_name;
    bool is_ca;
    int validity_days;
    const char *key_usage;
    const char *ext_key_usage; /* NULL: none */
};

static const struct cert_profile ca_profile = {
    .common_name = "machine CA",
    .is_ca = true,
    .validity_days = CA_VALIDITY_DAYS,
    .key_usage = "critical,keyCertSign,cRLSign,digitalSignature",
};

static const struct cert_profile client_profile = {
    .common_name = "machine client",
    .validity_days = LEAF_VALIDITY_DAYS,
    .key_usage = "critical,digitalSignature",
    .ext_key_usage = "clientAuth",
};

static const struct cert_profile server_profile = {
    .common_name = NULL, /* first SAN or org */
    .validity_days = LEAF_VALIDITY_DAYS,
    .key_usage = "critical,digitalSignature,keyEncipherment",
    .ext_key_usage = "serverAuth",
};

static int check_org(const char *org, struct merr *err)
{
    if (org == NULL || org[0] == '\0')
        return merr_set(err, MERR_INVALID, 0, "certificate organisation is empty");
    if (strlen(org) > X509_NAME_MAX)
        return merr_set(err, MERR_INVALID, 0,
                        "certificate organisation '%s' is longer than %d bytes", org,
                        X509_NAME_MAX);
    return 0;
}

static EVP_PKEY *generate_key(struct merr *err)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (key == NULL)
        certs_ossl_fail(err, MERR_CRYPTO, "cannot generate a P-256 key");
    return key;
}

static int set_random_serial(X509 *cert, struct merr *err)
{
    BIGNUM *bn = BN_new();
    int ok = bn != NULL && BN_rand(bn, SERIAL_BITS, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
             !BN_is_zero(bn) && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL;
    BN_free(bn);
    if (!ok)
        return certs_ossl_fail(err, MERR_CRYPTO, "cannot generate a certificate serial");
    return 0;
}

static int add_ext(X509 *cert, X509V3_CTX *ctx, int nid, const char *value, struct merr *err)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok = ext != NULL && X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    if (!ok)
        return certs_ossl_fail(err, MERR_CRYPTO, "cannot add extension %s '%s'", OBJ_nid2sn(nid),
                               value);
    return 0;
}

static int set_subject(X509 *cert, const char *org, const char *cn, struct merr *err)
{
    X509_NAME *name = X509_get_subject_name(cert);
    const unsigned char *o = (const unsigned char *)org, *c = (const unsigned char *)cn;
    if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, o, -1, -1, 0) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, c, -1, -1, 0) != 1)
        return certs_ossl_fail(err, MERR_CRYPTO, "cannot set certificate subject O=%s, CN=%s", org,
                               cn);
    return 0;
}

/* Builds and signs a certificate for subject_key. issuer == NULL makes it
 * self-signed (the CA). sans may be NULL. */
static X509 *build_cert(const struct cert_profile *profile, const char *org, const char *cn,
                        EVP_PKEY *subject_key, X509 *issuer, EVP_PKEY *issuer_key,
                        GENERAL_NAMES *sans, struct merr *err)
{
    auto_x509 X509 *cert = X509_new();
    if (cert == NULL) {
        certs_ossl_fail(err, MERR_NOMEM, "cannot allocate a certificate");
        return NULL;
    }
    if (X509_set_version(cert, X509_VERSION_3) != 1 ||
        X509_gmtime_adj(X509_getm_notBefore(cert), -NOT_BEFORE_SKEW_SECONDS) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(cert), profile->validity_days, 0, NULL) == NULL ||
        X509_set_pubkey(cert, subject_key) != 1) {
        certs_ossl_fail(err, MERR_CRYPTO, "cannot fill certificate fields");
        return NULL;
    }
    if (set_random_serial(cert, err) < 0 || set_subject(cert, org, cn, err) < 0)
        return NULL;
    X509_NAME *issuer_name = X509_get_subject_name(issuer != NULL ? issuer : cert);
    if (X509_set_issuer_name(cert, issuer_name) != 1) {
        certs_ossl_fail(err, MERR_CRYPTO, "cannot set certificate issuer");
        return NULL;
    }

    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer != NULL ? issuer : cert, cert, NULL, NULL, 0);
    if (add_ext(cert, &ctx, NID_basic_constraints,
                profile->is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE", err) < 0 ||
        add_ext(cert, &ctx, NID_key_usage, profile->key_usage, err) < 0 ||
        add_ext(cert, &ctx, NID_subject_key_identifier, "hash", err) < 0)
        return NULL;
    if (profile->ext_key_usage != NULL &&
        add_ext(cert, &ctx, NID_ext_key_usage, profile->ext_key_usage, err) < 0)
        return NULL;
    /* "issuer" is only a fallback for a CA made elsewhere without a key id. */
    if (issuer != NULL &&
        add_ext(cert, &ctx, NID_authority_key_identifier, "keyid,issuer", err) < 0)
        return NULL;
    if (sans != NULL &&
        X509_add1_ext_i2d(cert, NID_subject_alt_name, sans, 0, X509V3_ADD_DEFAULT) != 1) {
        certs_ossl_fail(err, MERR_CRYPTO, "cannot add subjectAltName");
        return NULL;
    }

    if (X509_sign(cert, issuer_key, EVP_sha256()) <= 0) {
        certs_ossl_fail(err, MERR_CRYPTO, "cannot sign certificate");
        return NULL;
    }
    return steal_pointer(&cert);
}

/* ---- subject alternative names ---- */

/* Parses an IPv4 or IPv6 literal into network-order bytes; returns their count
 * (4 or 16) or 0 when s is not an IP address. */
static int parse_ip(const char *s, unsigned char out[16])
{
    if (inet_pton(AF_INET, s, out) == 1)
        return 4;
    if (inet_pton(AF_INET6, s, out) == 1)
        return 16;
    return 0;
}

static bool valid_dns_name(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > DNS_NAME_MAX)
        return false;
    if (strncmp(s, "*.", 2) == 0)
        s += 2;
    size_t label = 0;
    for (const char *p = s;; p++) {
        if (*p == '.' || *p == '\0') {
            if (label == 0 || label > 63)
                return false;
            if (*p == '\0')
                return true;
            label = 0;
            continue;
        }
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '-' || *p == '_';
        if (!ok)
            return false;
        label++;
    }
}

/* True if names holds an entry of `type` (GEN_DNS or GEN_IPADD) equal to
 * data/len: IPs byte for byte, DNS names ignoring ASCII case. */
static bool names_contain(const GENERAL_NAMES *names, int type, const unsigned char *data,
                          int len)
{
    for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
        if (gn->type != type)
            continue;
        const ASN1_STRING *s = type == GEN_DNS ? gn->d.dNSName : gn->d.iPAddress;
        if (ASN1_STRING_length(s) != len)
            continue;
        const unsigned char *v = ASN1_STRING_get0_data(s);
        if (type == GEN_IPADD ? memcmp(v, data, (size_t)len) == 0
                              : strncasecmp((const char *)v, (const char *)data, (size_t)len) == 0)
            return true;
    }
    return false;
}

static int push_name(GENERAL_NAMES *names, int type, const unsigned char *data, int len,
                     struct merr *err)
{
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_STRING *value = type == GEN_DNS ? ASN1_IA5STRING_new() : ASN1_OCTET_STRING_new();
    if (gn == NULL || value == NULL || ASN1_STRING_set(value, data, len) != 1) {
        GENERAL_NAME_free(gn);
        ASN1_STRING_free(value);
        return certs_ossl_fail(err, MERR_NOMEM, "cannot build subjectAltName");
    }
    GENERAL_NAME_set0_value(gn, type, value);
    if (sk_GENERAL_NAME_push(names, gn) <= 0) {
        GENERAL_NAME_free(gn);
        return certs_ossl_fail(err, MERR_NOMEM, "cannot build subjectAltName");
    }
    return 0;
}

/* Adds one SAN (IP if it parses as one, else DNS) unless already present. */
static int add_san(GENERAL_NAMES *names, const char *san, struct merr *err)
{
    unsigned char ip[16];
    int ip_len = parse_ip(san, ip);
    if (ip_len > 0) {
        if (names_contain(names, GEN_IPADD, ip, ip_len))
            return 0;
        return push_name(names, GEN_IPADD, ip, ip_len, err);
    }
    if (!valid_dns_name(san))
        return merr_set(err, MERR_INVALID, 0, "'%s' is neither an IP address nor a DNS name", san);
    const unsigned char *d = (const unsigned char *)san;
    int len = (int)strlen(san);
    return names_contain(names, GEN_DNS, d, len) ? 0 : push_name(names, GEN_DNS, d, len, err);
}

static GENERAL_NAMES *build_sans(const char *const *sans, size_t n_sans, struct merr *err)
{
    auto_general_names GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
    if (names == NULL) {
        certs_ossl_fail(err, MERR_NOMEM, "cannot build subjectAltName");
        return NULL;
    }
    for (size_t i = 0; i < n_sans; i++) {
        if (sans[i] == NULL) {
            merr_set(err, MERR_INVALID, 0, "subjectAltName %zu is NULL", i);
            return NULL;
        }
        if (add_san(names, sans[i], err) < 0)
            return NULL;
    }
    if (add_san(names, "localhost", err) < 0)
        return NULL;
    return steal_pointer(&names);
}

/* ---- issuing ---- */

/* Loads a CA certificate and its key and checks that they belong together and
 * that the certificate may sign others. */
static int load_ca(const char *ca_cert, const char *ca_key, X509 **cert_out, EVP_PKEY **key_out,
                   struct merr *err)
{
    auto_x509 X509 *cert = certs_load_cert(ca_cert, err);
    if (cert == NULL)
        return -1;
    auto_pkey EVP_PKEY *key = certs_load_key(ca_key, err);
    if (key == NULL)
        return -1;
    if (X509_check_private_key(cert, key) != 1)
        return certs_ossl_fail(err, MERR_CORRUPT, "CA key '%s' does not match '%s'", ca_key,
                               ca_cert);
    if (X509_check_ca(cert) == 0)
        return merr_set(err, MERR_CORRUPT, 0, "'%s' is not a CA certificate", ca_cert);
    *cert_out = steal_pointer(&cert);
    *key_out = steal_pointer(&key);
    return 0;
}

static int issue_leaf(const struct cert_profile *profile, const char *ca_cert, const char *ca_key,
                      const char *org, const char *cn, GENERAL_NAMES *sans, const char *cert_out,
                      const char *key_out, struct merr *err)
{
    auto_x509 X509 *ca = NULL;
    auto_pkey EVP_PKEY *signer = NULL;
    if (load_ca(ca_cert, ca_key, &ca, &signer, err) < 0)
        return -1;
    auto_pkey EVP_PKEY *key = generate_key(err);
    if (key == NULL)
        return -1;
    auto_x509 X509 *cert = build_cert(profile, org, cn, key, ca, signer, sans, err);
    if (cert == NULL)
        return -1;
    return certs_write_pair(cert, key, cert_out, key_out, err);
}

int certs_issue_server(const char *ca_cert, const char *ca_key, const char *org,
                       const char *const *sans, size_t n_sans, const char *cert_out,
                       const char *key_out, struct merr *err)
{
    if (check_org(org, err) < 0)
        return -1;
    auto_general_names GENERAL_NAMES *names = build_sans(sans, n_sans, err);
    if (names == NULL)
        return -1;
    /* Any SAN passed validation, so it is printable; a CN over 64 bytes is not allowed. */
    const char *cn = n_sans > 0 && strlen(sans[0]) <= X509_NAME_MAX ? sans[0] : org;
    if (issue_leaf(&server_profile, ca_cert, ca_key, org, cn, names, cert_out, key_out, err) < 0)
        return merr_prefix(err, "cannot issue server certificate '%s'", cert_out);
    return 0;
}

int certs_issue_client(const char *ca_cert, const char *ca_key, const char *org,
                       const char *cert_out, const char *key_out, struct merr *err)
{
    if (check_org(org, err) < 0)
        return -1;
    if (issue_leaf(&client_profile, ca_cert, ca_key, org, client_profile.common_name, NULL,
                   cert_out, key_out, err) < 0)
        return merr_prefix(err, "cannot issue client certificate '%s'", cert_out);
    return 0;
}

/* ---- the store's CA and client certificate ---- */

struct store_paths {
    char *ca_cert, *ca_key, *cert, *key;
};

static void store_paths_release(struct store_paths *p)
{
    free(p->ca_cert);
    free(p->ca_key);
    free(p->cert);
    free(p->key);
}

static int store_paths_init(struct store_paths *p, const char *dir, struct merr *err)
{
    p->ca_cert = certs_path_join(dir, CERTS_CA_CERT);
    p->ca_key = certs_path_join(dir, CERTS_CA_KEY);
    p->cert = certs_path_join(dir, CERTS_CLIENT_CERT);
    p->key = certs_path_join(dir, CERTS_CLIENT_KEY);
    if (p->ca_cert == NULL || p->ca_key == NULL || p->cert == NULL || p->key == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot build paths under '%s'", dir);
    return 0;
}

static int file_exists(const char *path, bool *exists, struct merr *err)
{
    struct stat st;
    if (lstat(path, &st) == 0) {
        *exists = true;
        return 0;
    }
    if (errno != ENOENT)
        return merr_set(err, MERR_IO, errno, "cannot stat '%s'", path);
    *exists = false;
    return 0;
}

/* A certificate and its key are present together or absent together; one
 * without the other is an interrupted or damaged store. */
static int pair_present(const char *cert, const char *key, bool *present, struct merr *err)
{
    bool has_cert = false, has_key = false;
    if (file_exists(cert, &has_cert, err) < 0 || file_exists(key, &has_key, err) < 0)
        return -1;
    if (has_cert != has_key)
        return merr_set(err, MERR_CORRUPT, 0, "'%s' exists but '%s' does not",
                        has_cert ? cert : key, has_cert ? key : cert);
    *present = has_cert;
    return 0;
}

/* Makes a new CA and client certificate and publishes the CA first, then the
 * client pair: a crash after the CA leaves a store bootstrap completes. */
static int create_ca_and_client(const struct store_paths *p, const char *org, struct merr *err)
{
    auto_pkey EVP_PKEY *ca_key = generate_key(err);
    if (ca_key == NULL)
        return -1;
    auto_x509 X509 *ca = build_cert(&ca_profile, org, ca_profile.common_name, ca_key, NULL, ca_key,
                                    NULL, err);
    if (ca == NULL)
        return -1;
    auto_pkey EVP_PKEY *client_key = generate_key(err);
    if (client_key == NULL)
        return -1;
    auto_x509 X509 *client = build_cert(&client_profile, org, client_profile.common_name,
                                        client_key, ca, ca_key, NULL, err);
    if (client == NULL)
        return -1;
    if (certs_write_pair(ca, ca_key, p->ca_cert, p->ca_key, err) < 0)
        return -1;
    return certs_write_pair(client, client_key, p->cert, p->key, err);
}

/* Checks an existing client pair: parses, key matches, signed by the CA. */
static int check_client(const struct store_paths *p, X509 *ca, struct merr *err)
{
    auto_x509 X509 *cert = certs_load_cert(p->cert, err);
    if (cert == NULL)
        return -1;
    auto_pkey EVP_PKEY *key = certs_load_key(p->key, err);
    if (key == NULL)
        return -1;
    if (X509_check_private_key(cert, key) != 1)
        return certs_ossl_fail(err, MERR_CORRUPT, "'%s' does not match '%s'", p->key, p->cert);
    if (X509_verify(cert, X509_get0_pubkey(ca)) != 1)
        return certs_ossl_fail(err, MERR_CORRUPT, "'%s' was not signed by '%s'", p->cert,
                               p->ca_cert);
    return 0;
}

/* Completes the store under the lock; never replaces a file that exists. */
static int ensure_store(const struct store_paths *p, const char *org, struct merr *err)
{
    bool has_ca = false, has_client = false;
    if (pair_present(p->ca_cert, p->ca_key, &has_ca, err) < 0 ||
        pair_present(p->cert, p->key, &has_client, err) < 0)
        return -1;
    if (!has_ca) {
        /* A new CA would orphan the existing client certificate. */
        if (has_client)
            return merr_set(err, MERR_CORRUPT, 0, "'%s' exists but its CA '%s' does not", p->cert,
                            p->ca_cert);
        return create_ca_and_client(p, org, err);
    }

    auto_x509 X509 *ca = NULL;
    auto_pkey EVP_PKEY *ca_key = NULL;
    if (load_ca(p->ca_cert, p->ca_key, &ca, &ca_key, err) < 0)
        return -1;
    if (has_client)
        return check_client(p, ca, err);
    auto_pkey EVP_PKEY *key = generate_key(err);
    if (key == NULL)
        return -1;
    auto_x509 X509 *cert = build_cert(&client_profile, org, client_profile.common_name, key, ca,
                                      ca_key, NULL, err);
    if (cert == NULL)
        return -1;
    return certs_write_pair(cert, key, p->cert, p->key, err);
}

/* Shared frame of bootstrap and regenerate: directory, lock, stale temps. */
static int with_store_locked(const char *certs_dir, const char *org,
                             int (*fn)(const struct store_paths *, const char *, struct merr *),
                             struct merr *err)
{
    if (check_org(org, err) < 0)
        return -1;
    if (certs_mkdir_private(certs_dir, err) < 0)
        return -1;
    auto_close int lock = -1;
    if (certs_lock_dir(certs_dir, CERTS_LOCK_TIMEOUT_MS, &lock, err) < 0)
        return -1;
    certs_collect_temps(certs_dir);
    struct store_paths paths = { 0 };
    int r = store_paths_init(&paths, certs_dir, err);
    if (r == 0)
        r = fn(&paths, org, err);
    store_paths_release(&paths);
    return r;
}

int certs_bootstrap(const char *certs_dir, const char *org, struct merr *err)
{
    return with_store_locked(certs_dir, org, ensure_store, err);
}

int certs_regenerate_ca(const char *certs_dir, const char *org, struct merr *err)
{
    return with_store_locked(certs_dir, org, create_ca_and_client, err);
}

/* ---- checks ---- */

int certs_has_san(const char *cert_path, const char *name_or_ip, bool *has, struct merr *err)
{
    if (name_or_ip == NULL || name_or_ip[0] == '\0')
        return merr_set(err, MERR_INVALID, 0, "empty name to look up in '%s'", cert_path);
    auto_x509 X509 *cert = certs_load_cert(cert_path, err);
    if (cert == NULL)
        return -1;
    int crit = 0;
    auto_general_names GENERAL_NAMES *names =
        X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
    if (names == NULL) {
        /* crit == -1: no extension at all; anything else: it did not decode. */
        if (crit != -1)
            return certs_ossl_fail(err, MERR_CORRUPT, "cannot decode subjectAltName of '%s'",
                                   cert_path);
        *has = false;
        return 0;
    }
    unsigned char ip[16];
    int ip_len = parse_ip(name_or_ip, ip);
    if (ip_len > 0)
        *has = names_contain(names, GEN_IPADD, ip, ip_len);
    else
        *has = names_contain(names, GEN_DNS, (const unsigned char *)name_or_ip,
                             (int)strlen(name_or_ip));
    return 0;
}

static void store_freep(X509_STORE **p)
{
    X509_STORE_free(*p);
    *p = NULL;
}

static void store_ctx_freep(X509_STORE_CTX **p)
{
    X509_STORE_CTX_free(*p);
    *p = NULL;
}

/* Adds every certificate of a PEM bundle to store; an empty bundle is corrupt. */
static int load_trust(X509_STORE *store, const char *ca_path, struct merr *err)
{
    auto_free char *data = NULL;
    size_t len = 0;
    if (certs_read_file(ca_path, false, &data, &len, err) < 0)
        return -1;
    STACK_OF(X509_INFO) *infos = NULL;
    BIO *bio = BIO_new_mem_buf(data, (int)len);
    if (bio != NULL)
        infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (infos == NULL)
        return certs_ossl_fail(err, MERR_CORRUPT, "cannot parse CA bundle '%s'", ca_path);
    int added = 0, r = 0;
    for (int i = 0; i < sk_X509_INFO_num(infos) && r == 0; i++) {
        X509 *x = sk_X509_INFO_value(infos, i)->x509;
        if (x == NULL)
            continue;
        if (X509_STORE_add_cert(store, x) != 1)
            r = certs_ossl_fail(err, MERR_CRYPTO, "cannot trust a certificate of '%s'", ca_path);
        added++;
    }
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    if (r == 0 && added == 0)
        return merr_set(err, MERR_CORRUPT, 0, "'%s' holds no certificate", ca_path);
    return r;
}

int certs_verify_against_ca(const char *cert_path, const char *ca_path, bool *ok,
                            struct merr *err)
{
    auto_x509 X509 *cert = certs_load_cert(cert_path, err);
    if (cert == NULL)
        return -1;
    __attribute__((cleanup(store_freep))) X509_STORE *store = X509_STORE_new();
    __attribute__((cleanup(store_ctx_freep))) X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (store == NULL || ctx == NULL)
        return certs_ossl_fail(err, MERR_NOMEM, "cannot verify '%s'", cert_path);
    if (load_trust(store, ca_path, err) < 0)
        return -1;
    if (X509_STORE_CTX_init(ctx, store, cert, NULL) != 1)
        return certs_ossl_fail(err, MERR_CRYPTO, "cannot verify '%s'", cert_path);
    int r = X509_verify_cert(ctx);
    if (r < 0)
        return certs_ossl_fail(err, MERR_CRYPTO, "cannot verify '%s'", cert_path);
    ERR_clear_error();
    *ok = r == 1;
    return 0;
}
