#include "sshkey.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "fsutil.h"

int sshkey_check_private_perms(const char *path, struct merr *err)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return merr_set(err, errno == ENOENT ? MERR_NOT_FOUND : MERR_IO, errno,
                        "cannot use SSH key '%s'", path);
    if ((st.st_mode & 077) != 0)
        return merr_set(err, MERR_PERM, 0,
                        "permissions %04o for SSH key '%s' are too open: it must not be "
                        "accessible by others (chmod 600)",
                        (unsigned)(st.st_mode & 07777), path);
    return 0;
}

char *sshkey_base64(const unsigned char *data, size_t len)
{
    size_t cap = 4 * ((len + 2) / 3) + 1;
    char *out = xcalloc(cap, 1);
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

long sshkey_unbase64(const char *text, unsigned char **out)
{
    size_t len = strlen(text);
    if (len % 4 != 0)
        return -1;
    unsigned char *buf = xcalloc(len / 4 * 3 + 1, 1);
    int n = EVP_DecodeBlock(buf, (const unsigned char *)text, (int)len);
    if (n < 0) {
        free(buf);
        return -1;
    }
    /* EVP_DecodeBlock counts padding as data. */
    if (len >= 1 && text[len - 1] == '=')
        n--;
    if (len >= 2 && text[len - 2] == '=')
        n--;
    *out = buf;
    return n;
}

char *sshkey_fingerprint(const unsigned char *blob, size_t len)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(blob, len, md, &mdlen, EVP_sha256(), NULL);
    char *b64 = sshkey_base64(md, mdlen);
    size_t n = strlen(b64);
    while (n > 0 && b64[n - 1] == '=')
        b64[--n] = '\0';
    char *fp = xasprintf("SHA256:%s", b64);
    free(b64);
    return fp;
}

/* SSH wire encoding into a growing buffer. */
struct wbuf {
    unsigned char *p;
    size_t len, cap;
};

static void wb_put(struct wbuf *b, const void *data, size_t len)
{
    if (b->len + len > b->cap) {
        size_t cap = (b->cap + len) * 2;
        unsigned char *n = realloc(b->p, cap);
        if (n == NULL)
            abort();
        b->p = n;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
}

static void wb_u32(struct wbuf *b, uint32_t v)
{
    unsigned char x[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                           (unsigned char)v };
    wb_put(b, x, 4);
}

static void wb_string(struct wbuf *b, const void *data, size_t len)
{
    wb_u32(b, (uint32_t)len);
    wb_put(b, data, len);
}

static void wb_cstring(struct wbuf *b, const char *s)
{
    wb_string(b, s, strlen(s));
}

int sshkey_generate_ed25519(const char *priv_path, const char *pub_path, const char *comment,
                            struct merr *err)
{
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
    if (ctx == NULL || EVP_PKEY_keygen_init(ctx) <= 0 || EVP_PKEY_keygen(ctx, &pkey) <= 0) {
        EVP_PKEY_CTX_free(ctx);
        return merr_set(err, MERR_CRYPTO, 0, "cannot generate an ed25519 key");
    }
    EVP_PKEY_CTX_free(ctx);
    unsigned char pub[32], seed[32];
    size_t publen = sizeof pub, seedlen = sizeof seed;
    int ok = EVP_PKEY_get_raw_public_key(pkey, pub, &publen) == 1 &&
             EVP_PKEY_get_raw_private_key(pkey, seed, &seedlen) == 1;
    EVP_PKEY_free(pkey);
    if (!ok)
        return merr_set(err, MERR_CRYPTO, 0, "cannot export the ed25519 key");

    struct wbuf pubblob = { 0 };
    wb_cstring(&pubblob, "ssh-ed25519");
    wb_string(&pubblob, pub, 32);

    /* The private section: checkints, key, 64-byte private (seed || public), comment, padding. */
    uint32_t check;
    RAND_bytes((unsigned char *)&check, sizeof check);
    struct wbuf priv = { 0 };
    wb_u32(&priv, check);
    wb_u32(&priv, check);
    wb_cstring(&priv, "ssh-ed25519");
    wb_string(&priv, pub, 32);
    unsigned char sk[64];
    memcpy(sk, seed, 32);
    memcpy(sk + 32, pub, 32);
    wb_string(&priv, sk, 64);
    wb_cstring(&priv, comment != NULL ? comment : "");
    for (unsigned char pad = 1; priv.len % 8 != 0; pad++)
        wb_put(&priv, &pad, 1);

    struct wbuf file = { 0 };
    wb_put(&file, "openssh-key-v1", 15); /* including the NUL */
    wb_cstring(&file, "none");
    wb_cstring(&file, "none");
    wb_string(&file, "", 0);
    wb_u32(&file, 1);
    wb_string(&file, pubblob.p, pubblob.len);
    wb_string(&file, priv.p, priv.len);
    OPENSSL_cleanse(sk, sizeof sk);
    OPENSSL_cleanse(seed, sizeof seed);
    OPENSSL_cleanse(priv.p, priv.len);
    free(priv.p);

    auto_free char *b64 = sshkey_base64(file.p, file.len);
    OPENSSL_cleanse(file.p, file.len);
    free(file.p);
    size_t n = strlen(b64);
    char *pem = xcalloc(n + n / 70 + 128, 1);
    strcpy(pem, "-----BEGIN OPENSSH PRIVATE KEY-----\n");
    for (size_t i = 0; i < n; i += 70) {
        strncat(pem, b64 + i, 70);
        strcat(pem, "\n");
    }
    strcat(pem, "-----END OPENSSH PRIVATE KEY-----\n");
    OPENSSL_cleanse(b64, n);

    auto_free char *pub64 = sshkey_base64(pubblob.p, pubblob.len);
    free(pubblob.p);
    auto_free char *publine = xasprintf("ssh-ed25519 %s%s%s\n", pub64, comment != NULL ? " " : "",
                                        comment != NULL ? comment : "");
    int rc = fs_write_atomic(priv_path, pem, strlen(pem), 0600, err);
    OPENSSL_cleanse(pem, strlen(pem));
    free(pem);
    if (rc < 0)
        return -1;
    if (pub_path != NULL && fs_write_atomic(pub_path, publine, strlen(publine), 0644, err) < 0)
        return -1;
    return 0;
}
