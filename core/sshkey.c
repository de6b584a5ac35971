/* ed25519 key generation in OpenSSH formats, key file permission checks and
 * SHA256 fingerprints. The key pair comes from OpenSSL; the file formats
 * (PROTOCOL.key "openssh-key-v1" and the one-line public key) are built here. */
#include "sshkey.h"

#include <fcntl.h>
#include <libgen.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "error.h"
#include "fsutil.h"
#include "ssh-priv.h"

#define ED25519_KEY_LEN 32
#define PRIVATE_KEY_FILE_MAX (64 * 1024)
#define PEM_LINE_LEN 70

static const char OPENSSH_PRIV_BEGIN[] = "-----BEGIN OPENSSH PRIVATE KEY-----\n";
static const char OPENSSH_PRIV_END[] = "-----END OPENSSH PRIVATE KEY-----\n";
static const char ED25519_NAME[] = "ssh-ed25519";

/* A growable byte buffer for the SSH wire encoding; private key material goes
 * through it, so it is wiped before being freed. */
struct wbuf {
    unsigned char *data;
    size_t len, cap;
    bool failed;
};

static void wbuf_release(struct wbuf *b)
{
    if (b->data != NULL)
        OPENSSL_cleanse(b->data, b->cap);
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static void wbuf_put(struct wbuf *b, const void *p, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *d = malloc(cap);
        if (d == NULL) {
            b->failed = true;
            return;
        }
        if (b->len > 0)
            memcpy(d, b->data, b->len);
        size_t len = b->len;
        wbuf_release(b); /* wipe the old copy instead of realloc leaving it behind */
        b->data = d;
        b->len = len;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void wbuf_u32(struct wbuf *b, uint32_t v)
{
    unsigned char be[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16),
                            (unsigned char)(v >> 8), (unsigned char)v };
    wbuf_put(b, be, sizeof be);
}

static void wbuf_string(struct wbuf *b, const void *p, size_t n)
{
    wbuf_u32(b, (uint32_t)n);
    wbuf_put(b, p, n);
}

/* Standard base64 with padding; returns a malloc'd NUL-terminated string. */
char *ssh_base64_encode(const void *data, size_t len)
{
    if (len > INT32_MAX / 2)
        return NULL;
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (out == NULL)
        return NULL;
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

/* Decodes standard base64 (padding allowed, no whitespace); returns the byte
 * count or -1. out must hold 3 * strlen(in) / 4 bytes. */
ssize_t ssh_base64_decode(const char *in, unsigned char *out, size_t outsz)
{
    size_t n = strlen(in);
    if (n == 0 || n % 4 != 0 || n / 4 * 3 > outsz || n > INT32_MAX)
        return -1;
    int r = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    if (r < 0)
        return -1;
    if (in[n - 1] == '=')
        r--;
    if (in[n - 2] == '=')
        r--;
    return r;
}

/* The public key blob: string "ssh-ed25519", string pub. */
static void put_ed25519_public_blob(struct wbuf *b, const unsigned char pub[ED25519_KEY_LEN])
{
    wbuf_string(b, ED25519_NAME, strlen(ED25519_NAME));
    wbuf_string(b, pub, ED25519_KEY_LEN);
}

/* PROTOCOL.key: magic, cipher "none", kdf "none", empty kdf options, one key,
 * the public blob, then the private section padded to the cipher block size (8). */
static int format_ed25519_private(const unsigned char seed[ED25519_KEY_LEN],
                                  const unsigned char pub[ED25519_KEY_LEN], const char *comment,
                                  char **out, struct merr *err)
{
    struct wbuf pubblob = { 0 }, section = { 0 }, file = { 0 };
    uint32_t check;
    int ret = -1;
    auto_free char *b64 = NULL;

    if (RAND_bytes((unsigned char *)&check, sizeof check) != 1) {
        merr_set(err, MERR_CRYPTO, 0, "cannot get random bytes for the key check field");
        goto out;
    }
    put_ed25519_public_blob(&pubblob, pub);

    wbuf_u32(&section, check);
    wbuf_u32(&section, check);
    wbuf_string(&section, ED25519_NAME, strlen(ED25519_NAME));
    wbuf_string(&section, pub, ED25519_KEY_LEN);
    wbuf_u32(&section, 2 * ED25519_KEY_LEN); /* private key = seed || pub */
    wbuf_put(&section, seed, ED25519_KEY_LEN);
    wbuf_put(&section, pub, ED25519_KEY_LEN);
    wbuf_string(&section, comment, strlen(comment));
    for (unsigned char pad = 1; section.len % 8 != 0; pad++)
        wbuf_put(&section, &pad, 1);

    static const char magic[] = "openssh-key-v1"; /* written with its NUL */
    wbuf_put(&file, magic, sizeof magic);
    wbuf_string(&file, "none", 4);
    wbuf_string(&file, "none", 4);
    wbuf_string(&file, "", 0);
    wbuf_u32(&file, 1);
    wbuf_string(&file, pubblob.data, pubblob.len);
    wbuf_string(&file, section.data, section.len);
    if (pubblob.failed || section.failed || file.failed) {
        merr_set(err, MERR_NOMEM, ENOMEM, "cannot encode private key");
        goto out;
    }

    b64 = ssh_base64_encode(file.data, file.len);
    if (b64 == NULL) {
        merr_set(err, MERR_NOMEM, ENOMEM, "cannot encode private key");
        goto out;
    }
    size_t b64len = strlen(b64);
    size_t lines = (b64len + PEM_LINE_LEN - 1) / PEM_LINE_LEN;
    size_t total = strlen(OPENSSH_PRIV_BEGIN) + b64len + lines + strlen(OPENSSH_PRIV_END) + 1;
    char *text = malloc(total);
    if (text == NULL) {
        merr_set(err, MERR_NOMEM, ENOMEM, "cannot encode private key");
        goto out;
    }
    char *p = stpcpy(text, OPENSSH_PRIV_BEGIN);
    for (size_t i = 0; i < b64len; i += PEM_LINE_LEN) {
        size_t n = b64len - i < PEM_LINE_LEN ? b64len - i : PEM_LINE_LEN;
        memcpy(p, b64 + i, n);
        p += n;
        *p++ = '\n';
    }
    stpcpy(p, OPENSSH_PRIV_END);
    *out = text;
    ret = 0;
out:
    if (b64 != NULL)
        OPENSSL_cleanse(b64, strlen(b64));
    wbuf_release(&pubblob);
    wbuf_release(&section);
    wbuf_release(&file);
    return ret;
}

static int format_ed25519_public(const unsigned char pub[ED25519_KEY_LEN], const char *comment,
                                 char **out, struct merr *err)
{
    struct wbuf blob = { 0 };
    put_ed25519_public_blob(&blob, pub);
    auto_free char *b64 = blob.failed ? NULL : ssh_base64_encode(blob.data, blob.len);
    wbuf_release(&blob);
    if (b64 == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot encode public key");
    if (asprintf(out, "%s %s%s%s\n", ED25519_NAME, b64, comment[0] ? " " : "", comment) < 0)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot encode public key");
    return 0;
}

int ssh_write_file_atomic(const char *path, const void *data, size_t len, int mode,
                          struct merr *err)
{
    auto_free char *tmp = NULL;
    if (asprintf(&tmp, "%s.tmp-XXXXXX", path) < 0)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot write '%s'", path);
    auto_close int fd = mkostemp(tmp, O_CLOEXEC); /* created 0600 */
    if (fd < 0)
        return merr_set(err, MERR_IO, errno, "cannot create '%s'", tmp);
    if (fchmod(fd, (mode_t)mode) < 0 || fs_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
        int e = errno;
        unlink(tmp);
        return merr_set(err, MERR_IO, e, "cannot write '%s'", tmp);
    }
    if (rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        return merr_set(err, MERR_IO, e, "cannot rename '%s' to '%s'", tmp, path);
    }
    /* Make the rename itself durable. */
    auto_free char *dircopy = strdup(path);
    if (dircopy == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot write '%s'", path);
    auto_close int dfd = open(dirname(dircopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0)
        (void)fsync(dfd);
    return 0;
}

static int refuse_existing(const char *path, struct merr *err)
{
    struct stat st;
    if (lstat(path, &st) == 0)
        return merr_set(err, MERR_EXISTS, 0, "key file '%s' already exists", path);
    if (errno != ENOENT)
        return merr_set(err, MERR_IO, errno, "cannot stat '%s'", path);
    return 0;
}

int sshkey_generate_ed25519(const char *priv_path, const char *pub_path, const char *comment,
                            struct merr *err)
{
    if (comment == NULL)
        comment = "";
    if (strpbrk(comment, "\r\n") != NULL)
        return merr_set(err, MERR_INVALID, 0, "key comment must be a single line");
    if (refuse_existing(priv_path, err) < 0 || refuse_existing(pub_path, err) < 0)
        return -1;

    unsigned char seed[ED25519_KEY_LEN], pub[ED25519_KEY_LEN];
    size_t seedlen = sizeof seed, publen = sizeof pub;
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (pkey == NULL)
        return merr_set(err, MERR_CRYPTO, 0, "cannot generate an ed25519 key");
    int ok = EVP_PKEY_get_raw_private_key(pkey, seed, &seedlen) == 1 &&
             EVP_PKEY_get_raw_public_key(pkey, pub, &publen) == 1 && seedlen == sizeof seed &&
             publen == sizeof pub;
    EVP_PKEY_free(pkey);
    if (!ok) {
        OPENSSL_cleanse(seed, sizeof seed);
        return merr_set(err, MERR_CRYPTO, 0, "cannot export the ed25519 key");
    }

    char *priv_text = NULL;
    auto_free char *pub_text = NULL;
    int r = format_ed25519_private(seed, pub, comment, &priv_text, err);
    OPENSSL_cleanse(seed, sizeof seed);
    if (r < 0)
        return -1;
    r = format_ed25519_public(pub, comment, &pub_text, err);
    if (r == 0)
        r = ssh_write_file_atomic(priv_path, priv_text, strlen(priv_text), 0600, err);
    OPENSSL_cleanse(priv_text, strlen(priv_text));
    free(priv_text);
    if (r < 0)
        return -1;
    if (ssh_write_file_atomic(pub_path, pub_text, strlen(pub_text), 0644, err) < 0) {
        unlink(priv_path); /* no half key pair */
        return -1;
    }
    return 0;
}

static int check_private_stat(const char *path, const struct stat *st, struct merr *err)
{
    if (!S_ISREG(st->st_mode))
        return merr_set(err, MERR_INVALID, 0, "private key '%s' is not a regular file", path);
    if (st->st_mode & 077)
        return merr_set(err, MERR_PERM, 0,
                        "private key '%s' is accessible by others (mode %04o); run chmod 600",
                        path, (unsigned)(st->st_mode & 07777));
    return 0;
}

int sshkey_check_private_perms(const char *path, struct merr *err)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return merr_set(err, errno == ENOENT ? MERR_NOT_FOUND : MERR_IO, errno,
                        "cannot stat private key '%s'", path);
    return check_private_stat(path, &st, err);
}

int sshkey_read_private(const char *path, char **data, size_t *len, struct merr *err)
{
    auto_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return merr_set(err, errno == ENOENT ? MERR_NOT_FOUND : MERR_IO, errno,
                        "cannot open private key '%s'", path);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return merr_set(err, MERR_IO, errno, "cannot stat private key '%s'", path);
    if (check_private_stat(path, &st, err) < 0)
        return -1;
    if (st.st_size > PRIVATE_KEY_FILE_MAX)
        return merr_set(err, MERR_INVALID, 0, "private key '%s' is too large", path);

    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *buf = malloc(cap);
    if (buf == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot read private key '%s'", path);
    while (n + 1 < cap) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            OPENSSL_cleanse(buf, cap);
            free(buf);
            return merr_set(err, MERR_IO, e, "cannot read private key '%s'", path);
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

int sshkey_fingerprint_sha256(const void *blob, size_t len, char out[SSHKEY_FINGERPRINT_MAX],
                              struct merr *err)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (EVP_Digest(blob, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != sizeof md)
        return merr_set(err, MERR_CRYPTO, 0, "cannot hash public key");
    auto_free char *b64 = ssh_base64_encode(md, sizeof md);
    if (b64 == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot encode fingerprint");
    size_t n = strlen(b64);
    while (n > 0 && b64[n - 1] == '=') /* OpenSSH drops the padding */
        b64[--n] = '\0';
    snprintf(out, SSHKEY_FINGERPRINT_MAX, "SHA256:%s", b64);
    return 0;
}

int sshkey_fingerprint_base64(const char *b64, char out[SSHKEY_FINGERPRINT_MAX], struct merr *err)
{
    size_t cap = strlen(b64) / 4 * 3 + 3;
    auto_free unsigned char *blob = malloc(cap);
    if (blob == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot decode public key");
    ssize_t n = ssh_base64_decode(b64, blob, cap);
    if (n <= 0)
        return merr_set(err, MERR_CORRUPT, 0, "public key is not valid base64");
    return sshkey_fingerprint_sha256(blob, (size_t)n, out, err);
}
