#include "tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fsutil.h"

struct api_tls {
    SSL_CTX *ctx;
    struct api_transport transport;
};

/* The one place OpenSSL's error queue becomes a message. */
static int ossl_fail(struct merr *err, const char *what, const char *path)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "unknown error";
    if (e != 0)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return merr_set(err, MERR_CRYPTO, 0, "%s '%s': %s", what, path, buf);
}

static int tls_wrap(void *data, int fd, void **conn_ctx, struct merr *err)
{
    struct api_tls *t = data;
    SSL *ssl = SSL_new(t->ctx);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        return ossl_fail(err, "cannot set up TLS for connection", "");
    }
    SSL_set_accept_state(ssl);
    *conn_ctx = ssl;
    return 0;
}

/* Maps SSL results onto syscall conventions: EAGAIN while the handshake or a record is
 * incomplete, 0 at close_notify or EOF, -1/EIO/EPROTO on failure. */
static ssize_t map_result(SSL *ssl, int ok, size_t done, bool reading)
{
    if (ok == 1)
        return (ssize_t)done;
    int e = SSL_get_error(ssl, ok);
    switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        if (reading)
            return 0; /* close_notify: the client's half-close */
        errno = EPIPE;
        return -1;
    case SSL_ERROR_SYSCALL:
        if (reading && ERR_peek_error() == 0 && (errno == 0 || errno == ECONNRESET)) {
            ERR_clear_error();
            return 0;
        }
        ERR_clear_error();
        if (errno == 0)
            errno = EIO;
        return -1;
    default:
        ERR_clear_error();
        errno = EPROTO; /* handshake refused: no, bad or foreign client certificate */
        return -1;
    }
}

static ssize_t tls_read(void *conn_ctx, int fd, void *buf, size_t len)
{
    SSL *ssl = conn_ctx;
    size_t n = 0;
    errno = 0;
    int ok = SSL_read_ex(ssl, buf, len, &n);
    return map_result(ssl, ok, n, true);
}

static ssize_t tls_write(void *conn_ctx, int fd, const void *buf, size_t len)
{
    SSL *ssl = conn_ctx;
    size_t n = 0;
    errno = 0;
    int ok = SSL_write_ex(ssl, buf, len, &n);
    return map_result(ssl, ok, n, false);
}

static int tls_shutdown_write(void *conn_ctx, int fd)
{
    SSL *ssl = conn_ctx;
    if (SSL_shutdown(ssl) < 0)
        ERR_clear_error();
    return shutdown(fd, SHUT_WR);
}

static size_t tls_pending(void *conn_ctx)
{
    return (size_t)SSL_pending(conn_ctx);
}

static void tls_release(void *conn_ctx)
{
    SSL_free(conn_ctx);
}

int api_tls_new(const char *ca, const char *cert, const char *key, struct api_tls **out,
                struct merr *err)
{
    if (ca == NULL || cert == NULL || key == NULL)
        return merr_set(err, MERR_INVALID, 0, "TLS needs --tlscacert, --tlscert and --tlskey");
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        return ossl_fail(err, "cannot create a TLS context", "");
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
        SSL_CTX_free(ctx);
        return ossl_fail(err, "cannot require TLS 1.2", "");
    }
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        SSL_CTX_free(ctx);
        return ossl_fail(err, "cannot load certificate", cert);
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        SSL_CTX_free(ctx);
        return ossl_fail(err, "cannot load private key", key);
    }
    if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
        SSL_CTX_free(ctx);
        return ossl_fail(err, "cannot load CA", ca);
    }
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);
    if (names != NULL)
        SSL_CTX_set_client_CA_list(ctx, names);
    /* Client certs must chain to our CA and carry clientAuth (security case 1). */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_CLIENT);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);

    struct api_tls *t = xcalloc(1, sizeof *t);
    t->ctx = ctx;
    t->transport = (struct api_transport){
        .name = "tls",
        .data = t,
        .wrap = tls_wrap,
        .read = tls_read,
        .write = tls_write,
        .shutdown_write = tls_shutdown_write,
        .pending = tls_pending,
        .release = tls_release,
    };
    *out = t;
    return 0;
}

void api_tls_free(struct api_tls *t)
{
    if (t == NULL)
        return;
    SSL_CTX_free(t->ctx);
    free(t);
}

const struct api_transport *api_tls_transport(struct api_tls *t)
{
    return &t->transport;
}
