/* The engine's own TLS transport (api_tls_new, the one the daemon serves with) against real
 * OpenSSL clients over a socketpair (security cases 1 and 3): a client with our certificate
 * gets its bytes through; a client with no certificate, one from another CA, or a certificate
 * without clientAuth is refused; TLS 1.1 is refused, and the same TLS 1.1 client is first shown
 * to complete a handshake with a server that allows it. */
#include "test_helpers.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/tls.h"
#include "certs.h"

#define ORG "unit"
#define ROUNDS 200

struct fx {
    char *root;
    char store[256], other[256];
    char server[300], server_key[300];
    struct api_tls *tls;
};

static char *in(const char *dir, const char *name)
{
    return xasprintf("%s/%s", dir, name);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->root = test_tmpdir();
    snprintf(f->store, sizeof f->store, "%s/store", f->root);
    snprintf(f->other, sizeof f->other, "%s/other", f->root);
    snprintf(f->server, sizeof f->server, "%s/server.pem", f->root);
    snprintf(f->server_key, sizeof f->server_key, "%s/server-key.pem", f->root);
    struct merr err = MERR_INIT;
    assert_int_equal(certs_bootstrap(f->store, ORG, &err), 0);
    assert_int_equal(certs_bootstrap(f->other, ORG, &err), 0);
    auto_free char *ca = in(f->store, CERTS_CA_CERT), *ca_key = in(f->store, CERTS_CA_KEY);
    const char *sans[] = { "127.0.0.1" };
    assert_int_equal(certs_issue_server(ca, ca_key, ORG, sans, 1, f->server, f->server_key, &err), 0);
    assert_int_equal(api_tls_new(ca, f->server, f->server_key, &f->tls, &err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    api_tls_free(f->tls);
    test_tmpdir_remove(f->root);
    free(f);
    return 0;
}

/* A client context: trusts ca, presents cert/key when given; max_version 0 = any. */
static SSL_CTX *client_ctx(const char *ca, const char *cert, const char *key, int version)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_load_verify_locations(ctx, ca, NULL), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (cert != NULL) {
        assert_int_equal(SSL_CTX_use_certificate_file(ctx, cert, SSL_FILETYPE_PEM), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM), 1);
    }
    if (version != 0) { /* an old client: exactly this version, every cipher allowed */
        SSL_CTX_set_security_level(ctx, 0);
        assert_int_equal(SSL_CTX_set_cipher_list(ctx, "DEFAULT@SECLEVEL=0"), 1);
        assert_int_equal(SSL_CTX_set_min_proto_version(ctx, version), 1);
        assert_int_equal(SSL_CTX_set_max_proto_version(ctx, version), 1);
    }
    return ctx;
}

/* Server side through a transport; client side through OpenSSL. True when the server
 * received the client's request bytes. */
static bool exchange(const struct api_transport *io, SSL_CTX *cctx)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    void *conn = NULL;
    struct merr err = MERR_INIT;
    assert_int_equal(io->wrap(io->data, sv[0], &conn, &err), 0);
    SSL *c = SSL_new(cctx);
    assert_non_null(c);
    SSL_set_fd(c, sv[1]);
    SSL_set_connect_state(c);
    static const char request[] = "GET /_ping HTTP/1.1\r\n\r\n";
    bool sent = false, got = false, failed = false;
    for (int round = 0; round < ROUNDS && !got && !failed; round++) {
        if (!sent) {
            int r = SSL_write(c, request, (int)sizeof request - 1);
            sent = r > 0;
            int e = r > 0 ? SSL_ERROR_NONE : SSL_get_error(c, r);
            if (e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                failed = true; /* the client gave up: the server refused it */
        } else {
            char sink[256];
            (void)SSL_read(c, sink, sizeof sink); /* TLS 1.3: alerts and tickets arrive late */
        }
        char buf[256];
        ssize_t n = io->read(conn, sv[0], buf, sizeof buf);
        if (n > 0)
            got = (size_t)n == sizeof request - 1 && memcmp(buf, request, (size_t)n) == 0;
        else if (n == 0 || errno != EAGAIN)
            failed = true;
    }
    ERR_clear_error();
    SSL_free(c);
    io->release(conn);
    close(sv[0]);
    close(sv[1]);
    return got;
}

static void test_client_with_our_certificate_is_served(void **state)
{
    struct fx *f = *state;
    auto_free char *ca = in(f->store, CERTS_CA_CERT), *cert = in(f->store, CERTS_CLIENT_CERT),
                   *key = in(f->store, CERTS_CLIENT_KEY);
    SSL_CTX *ctx = client_ctx(ca, cert, key, 0);
    assert_true(exchange(api_tls_transport(f->tls), ctx));
    SSL_CTX_free(ctx);
}

static void test_client_without_certificate_is_refused(void **state)
{
    struct fx *f = *state;
    auto_free char *ca = in(f->store, CERTS_CA_CERT);
    SSL_CTX *ctx = client_ctx(ca, NULL, NULL, 0);
    assert_false(exchange(api_tls_transport(f->tls), ctx));
    SSL_CTX_free(ctx);
}

static void test_client_from_other_ca_is_refused(void **state)
{
    struct fx *f = *state;
    auto_free char *ca = in(f->store, CERTS_CA_CERT), *cert = in(f->other, CERTS_CLIENT_CERT),
                   *key = in(f->other, CERTS_CLIENT_KEY);
    SSL_CTX *ctx = client_ctx(ca, cert, key, 0);
    assert_false(exchange(api_tls_transport(f->tls), ctx));
    SSL_CTX_free(ctx);
}

static void test_certificate_without_client_auth_is_refused(void **state)
{
    struct fx *f = *state;
    /* our CA's server certificate: right CA, serverAuth only */
    auto_free char *ca = in(f->store, CERTS_CA_CERT);
    SSL_CTX *ctx = client_ctx(ca, f->server, f->server_key, 0);
    assert_false(exchange(api_tls_transport(f->tls), ctx));
    SSL_CTX_free(ctx);
}

/* A plain server context that accepts TLS 1.1: the control for the probe below. */
static ssize_t ctl_read(void *conn, int fd, void *buf, size_t len)
{
    size_t n = 0;
    int r = SSL_read_ex(conn, buf, len, &n);
    if (r == 1)
        return (ssize_t)n;
    int e = SSL_get_error(conn, r);
    errno = e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? EAGAIN : EPROTO;
    return -1;
}

static int ctl_wrap(void *data, int fd, void **conn, struct merr *err)
{
    SSL *s = SSL_new(data);
    SSL_set_fd(s, fd);
    SSL_set_accept_state(s);
    *conn = s;
    return 0;
}

static void ctl_release(void *conn)
{
    SSL_free(conn);
}

static void test_tls_1_1_is_refused(void **state)
{
    struct fx *f = *state;
    auto_free char *ca = in(f->store, CERTS_CA_CERT), *cert = in(f->store, CERTS_CLIENT_CERT),
                   *key = in(f->store, CERTS_CLIENT_KEY);
    SSL_CTX *old = client_ctx(ca, cert, key, TLS1_1_VERSION);

    /* control: the TLS 1.1 client completes against a server that allows TLS 1.1 */
    SSL_CTX *lax = SSL_CTX_new(TLS_server_method());
    assert_non_null(lax);
    SSL_CTX_set_security_level(lax, 0);
    assert_int_equal(SSL_CTX_set_cipher_list(lax, "DEFAULT@SECLEVEL=0"), 1);
    assert_int_equal(SSL_CTX_set_min_proto_version(lax, TLS1_1_VERSION), 1);
    assert_int_equal(SSL_CTX_use_certificate_file(lax, f->server, SSL_FILETYPE_PEM), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(lax, f->server_key, SSL_FILETYPE_PEM), 1);
    struct api_transport control = { .name = "control", .data = lax, .wrap = ctl_wrap,
                                     .read = ctl_read, .release = ctl_release };
    assert_true(exchange(&control, old));
    SSL_CTX_free(lax);

    assert_false(exchange(api_tls_transport(f->tls), old));
    SSL_CTX_free(old);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_client_with_our_certificate_is_served),
        T(test_client_without_certificate_is_refused),
        T(test_client_from_other_ca_is_refused),
        T(test_certificate_without_client_auth_is_refused),
        T(test_tls_1_1_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
