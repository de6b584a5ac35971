/* File side of the certificate module: private directories, the store lock,
 * atomic writes and PEM loading. The one translation of OpenSSL errors lives
 * here too (certs_ossl_fail). */
#include "certs-priv.h"
#include "fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define LOCK_FILE ".lock"
#define TEMP_MARK ".tmp-"

int certs_ossl_fail(struct merr *err, enum merr_code code, const char *fmt, ...)
{
    char msg[MERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        msg[0] = '\0';

    unsigned long e = ERR_get_error();
    char reason[256] = "";
    if (e != 0) {
        const char *r = ERR_reason_error_string(e);
        if (r != NULL)
            snprintf(reason, sizeof reason, "%s", r);
        else
            ERR_error_string_n(e, reason, sizeof reason);
    }
    ERR_clear_error();
    if (reason[0] == '\0')
        return merr_set(err, code, 0, "%s", msg);
    return merr_set(err, code, 0, "%s: %s", msg, reason);
}

void certs_x509_freep(X509 **p)
{
    X509_free(*p);
    *p = NULL;
}

void certs_pkey_freep(EVP_PKEY **p)
{
    EVP_PKEY_free(*p);
    *p = NULL;
}

static void bio_freep(BIO **p)
{
    BIO_free(*p);
    *p = NULL;
}
#define auto_bio __attribute__((cleanup(bio_freep)))

char *certs_path_join(const char *dir, const char *name)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s", dir, name) < 0)
        return NULL;
    return p;
}

/* Splits path into its directory ("." when none) and base name. */
static int split_path(const char *path, char **dir, const char **base, struct merr *err)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        *dir = strdup(".");
        *base = path;
    } else if (slash == path) {
        *dir = strdup("/");
        *base = slash + 1;
    } else {
        *dir = strndup(path, (size_t)(slash - path));
        *base = slash + 1;
    }
    if (*dir == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot split '%s'", path);
    if (**base == '\0')
        return merr_set(err, MERR_INVALID, 0, "'%s' names a directory, not a file", path);
    return 0;
}

static int fsync_dir(const char *dir, struct merr *err)
{
    auto_close int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return merr_set(err, MERR_IO, errno, "cannot open directory '%s'", dir);
    if (fsync(fd) < 0)
        return merr_set(err, MERR_IO, errno, "cannot sync directory '%s'", dir);
    return 0;
}

int certs_mkdir_private(const char *dir, struct merr *err)
{
    auto_free char *copy = strdup(dir);
    if (copy == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot create '%s'", dir);
    if (copy[0] == '\0')
        return merr_set(err, MERR_INVALID, 0, "empty directory name");

    /* Walk the components so missing parents are created too, each 0700. */
    for (char *p = copy + 1;; p++) {
        bool last = *p == '\0';
        if (*p != '/' && !last)
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(copy, 0700) == 0) {
            if (chmod(copy, 0700) < 0)
                return merr_set(err, MERR_IO, errno, "cannot set mode of '%s'", copy);
        } else if (errno != EEXIST) {
            return merr_set(err, MERR_IO, errno, "cannot create directory '%s'", copy);
        }
        *p = saved;
        if (last)
            break;
    }

    struct stat st;
    if (stat(dir, &st) < 0)
        return merr_set(err, MERR_IO, errno, "cannot stat '%s'", dir);
    if (!S_ISDIR(st.st_mode))
        return merr_set(err, MERR_INVALID, ENOTDIR, "'%s' is not a directory", dir);
    return 0;
}

int certs_lock_dir(const char *dir, int timeout_ms, int *fd_out, struct merr *err)
{
    auto_free char *path = certs_path_join(dir, LOCK_FILE);
    if (path == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot lock '%s'", dir);
    int fd = fs_lock(path, timeout_ms, err);
    if (fd < 0)
        return -1;
    *fd_out = fd;
    return 0;
}

void certs_collect_temps(const char *dir)
{
    auto_closedir DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' && strstr(de->d_name, TEMP_MARK) != NULL)
            unlinkat(dirfd(d), de->d_name, 0);
    }
}

void certs_secret_free(char *data, size_t len)
{
    if (data == NULL)
        return;
    OPENSSL_cleanse(data, len);
    free(data);
}

int certs_read_file(const char *path, bool private_key, char **data, size_t *len,
                    struct merr *err)
{
    auto_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return merr_set(err, MERR_NOT_FOUND, errno, "cannot open '%s'", path);
        return merr_set(err, MERR_IO, errno, "cannot open '%s'", path);
    }
    struct stat st;
    if (fstat(fd, &st) < 0)
        return merr_set(err, MERR_IO, errno, "cannot stat '%s'", path);
    if (!S_ISREG(st.st_mode))
        return merr_set(err, MERR_INVALID, 0, "'%s' is not a regular file", path);
    if (private_key && (st.st_mode & 077) != 0)
        return merr_set(err, MERR_PERM, 0, "private key '%s' is accessible by others (mode %04o)",
                        path, (unsigned)(st.st_mode & 07777));
    if (st.st_size > CERTS_MAX_FILE_SIZE)
        return merr_set(err, MERR_CORRUPT, 0, "'%s' is too large (%lld bytes)", path,
                        (long long)st.st_size);

    size_t cap = (size_t)st.st_size + 1;
    char *buf = malloc(cap);
    if (buf == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot read '%s'", path);
    size_t used = 0;
    /* The file may change size under us: never read past cap - 1. */
    while (used < cap - 1) {
        ssize_t n = read(fd, buf + used, cap - 1 - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            certs_secret_free(buf, cap);
            return merr_set(err, MERR_IO, e, "cannot read '%s'", path);
        }
        if (n == 0)
            break;
        used += (size_t)n;
    }
    buf[used] = '\0';
    *data = buf;
    *len = used;
    return 0;
}

int certs_stage_file(const char *path, const void *data, size_t len, mode_t mode,
                     char **tmp_out, struct merr *err)
{
    auto_free char *dir = NULL;
    const char *base = NULL;
    if (split_path(path, &dir, &base, err) < 0)
        return -1;
    auto_free char *tmp = NULL;
    if (asprintf(&tmp, "%s/.%s" TEMP_MARK "XXXXXX", dir, base) < 0) {
        tmp = NULL;
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot write '%s'", path);
    }

    /* mkostemp creates the file 0600, so a key is never readable by others. */
    auto_close int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return merr_set(err, MERR_IO, errno, "cannot create a temp file for '%s'", path);
    int e = 0;
    const char *what = NULL;
    if (fchmod(fd, mode) < 0)
        e = errno, what = "set mode of";
    else if (fs_write_all(fd, data, len) < 0)
        e = errno, what = "write";
    else if (fsync(fd) < 0)
        e = errno, what = "sync";
    else if (close(steal_fd(&fd)) < 0)
        e = errno, what = "close";
    if (what != NULL) {
        unlink(tmp);
        return merr_set(err, MERR_IO, e, "cannot %s '%s'", what, tmp);
    }
    *tmp_out = steal_pointer(&tmp);
    return 0;
}

int certs_commit_file(char *tmp, const char *path, struct merr *err)
{
    if (rename(tmp, path) < 0) {
        merr_set(err, MERR_IO, errno, "cannot rename '%s' to '%s'", tmp, path);
        certs_discard_file(tmp);
        return -1;
    }
    free(tmp);
    auto_free char *dir = NULL;
    const char *base = NULL;
    if (split_path(path, &dir, &base, err) < 0)
        return -1;
    return fsync_dir(dir, err);
}

void certs_discard_file(char *tmp)
{
    if (tmp == NULL)
        return;
    unlink(tmp);
    free(tmp);
}

int certs_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                       struct merr *err)
{
    char *tmp = NULL;
    if (certs_stage_file(path, data, len, mode, &tmp, err) < 0)
        return -1;
    return certs_commit_file(tmp, path, err);
}

/* Refuses to prompt on the terminal for an encrypted key. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    return -1;
}

X509 *certs_load_cert(const char *path, struct merr *err)
{
    auto_free char *data = NULL;
    size_t len = 0;
    if (certs_read_file(path, false, &data, &len, err) < 0)
        return NULL;
    auto_bio BIO *bio = BIO_new_mem_buf(data, (int)len);
    if (bio == NULL) {
        certs_ossl_fail(err, MERR_NOMEM, "cannot read '%s'", path);
        return NULL;
    }
    X509 *cert = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
    if (cert == NULL)
        certs_ossl_fail(err, MERR_CORRUPT, "cannot parse certificate '%s'", path);
    return cert;
}

EVP_PKEY *certs_load_key(const char *path, struct merr *err)
{
    char *data = NULL;
    size_t len = 0;
    if (certs_read_file(path, true, &data, &len, err) < 0)
        return NULL;
    EVP_PKEY *key = NULL;
    BIO *bio = BIO_new_mem_buf(data, (int)len);
    if (bio == NULL)
        certs_ossl_fail(err, MERR_NOMEM, "cannot read '%s'", path);
    else if ((key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL)) == NULL)
        certs_ossl_fail(err, MERR_CORRUPT, "cannot parse private key '%s'", path);
    BIO_free(bio);
    certs_secret_free(data, len);
    return key;
}

/* Renders an OpenSSL object to PEM in a memory BIO; `secure` keeps key
 * material in OpenSSL's secure heap, cleared when the BIO is freed. */
static BIO *pem_bio(X509 *cert, EVP_PKEY *key, struct merr *err)
{
    BIO *bio = BIO_new(key != NULL ? BIO_s_secmem() : BIO_s_mem());
    if (bio == NULL) {
        certs_ossl_fail(err, MERR_NOMEM, "cannot allocate a PEM buffer");
        return NULL;
    }
    int ok = key != NULL ? PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)
                         : PEM_write_bio_X509(bio, cert);
    if (ok != 1) {
        BIO_free(bio);
        certs_ossl_fail(err, MERR_CRYPTO, "cannot encode %s as PEM",
                        key != NULL ? "a private key" : "a certificate");
        return NULL;
    }
    return bio;
}

int certs_write_pair(X509 *cert, EVP_PKEY *key, const char *cert_path, const char *key_path,
                     struct merr *err)
{
    auto_bio BIO *cert_pem = pem_bio(cert, NULL, err);
    if (cert_pem == NULL)
        return -1;
    auto_bio BIO *key_pem = pem_bio(NULL, key, err);
    if (key_pem == NULL)
        return -1;
    char *cert_data = NULL, *key_data = NULL;
    long cert_len = BIO_get_mem_data(cert_pem, &cert_data);
    long key_len = BIO_get_mem_data(key_pem, &key_data);

    char *key_tmp = NULL, *cert_tmp = NULL;
    if (certs_stage_file(key_path, key_data, (size_t)key_len, 0600, &key_tmp, err) < 0)
        return -1;
    if (certs_stage_file(cert_path, cert_data, (size_t)cert_len, 0644, &cert_tmp, err) < 0) {
        certs_discard_file(key_tmp);
        return -1;
    }
    /* Key first: a crash in between leaves a new key beside the old certificate,
     * which the next bootstrap reports as a mismatch instead of using. */
    if (certs_commit_file(key_tmp, key_path, err) < 0) {
        certs_discard_file(cert_tmp);
        return -1;
    }
    return certs_commit_file(cert_tmp, cert_path, err);
}
