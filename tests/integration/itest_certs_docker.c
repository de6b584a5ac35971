/* The real docker CLI (Go's crypto/tls and x509) against certificates issued by
 * core/certs: it must complete mutual TLS with our CA, client and server certs
 * (ECDSA P-256, PKCS#8 keys), and refuse a server from another CA or one
 * lacking the dialled IP as SAN (security case 2). The server is a small
 * OpenSSL listener on 127.0.0.1 that records verified handshakes and requests;
 * nothing leaves loopback. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "certs.h"
#include "error.h"

#define ORG "itest"
#define DOCKER_TIMEOUT_MS 30000
#define SERVER_POLL_MS 100
#define IO_TIMEOUT_S 10

static const char *docker_bin(void)
{
    static const char *const candidates[] = { "/usr/local/bin/docker", "/usr/bin/docker" };
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++)
        if (access(candidates[i], X_OK) == 0)
            return candidates[i];
    return NULL;
}

struct fixture {
    char root[64];
    char store[128];
    char other[128];
};

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
        char child[512];
        snprintf(child, sizeof child, "%s/%s", path, de->d_name);
        remove_tree(child);
    }
    closedir(d);
    rmdir(path);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->root, sizeof f->root, "/tmp/itest_certs.XXXXXX");
    assert_non_null(mkdtemp(f->root));
    snprintf(f->store, sizeof f->store, "%s/certs", f->root);
    snprintf(f->other, sizeof f->other, "%s/other", f->root);
    struct merr err = MERR_INIT;
    if (certs_bootstrap(f->store, ORG, &err) < 0 || certs_bootstrap(f->other, ORG, &err) < 0)
        fail_msg("bootstrap: %s", err.msg);
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

static char *in(const char *dir, const char *name)
{
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
    return p;
}

/* ---- a one-thread TLS listener on 127.0.0.1 ---- */

struct listener {
    SSL_CTX *ctx;
    int fd;
    int port;
    atomic_bool stop;
    atomic_int verified_handshakes;
    atomic_int requests;
    pthread_t thread;
};

static void serve_connection(struct listener *l, int conn)
{
    struct timeval tv = { IO_TIMEOUT_S, 0 };
    setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(conn, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    SSL *ssl = SSL_new(l->ctx);
    if (ssl == NULL)
        return;
    SSL_set_fd(ssl, conn);
    if (SSL_accept(ssl) == 1 && SSL_get_verify_result(ssl) == X509_V_OK) {
        X509 *peer = SSL_get1_peer_certificate(ssl);
        if (peer != NULL)
            atomic_fetch_add(&l->verified_handshakes, 1);
        X509_free(peer);
        char buf[512];
        int n = SSL_read(ssl, buf, sizeof buf - 1);
        /* any HTTP method line counts as a request from the CLI */
        if (n > 4 && buf[0] >= 'A' && buf[0] <= 'Z') {
            atomic_fetch_add(&l->requests, 1);
            static const char reply[] = "HTTP/1.1 500 Internal Server Error\r\n"
                                        "Content-Length: 0\r\nConnection: close\r\n\r\n";
            SSL_write(ssl, reply, (int)sizeof reply - 1);
        }
        SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    ERR_clear_error();
}

static void *listener_run(void *arg)
{
    struct listener *l = arg;
    /* bounded: DOCKER_TIMEOUT_MS plus slack, even if nobody sets stop */
    int max_polls = (DOCKER_TIMEOUT_MS + 5000) / SERVER_POLL_MS;
    for (int i = 0; i < max_polls && !atomic_load(&l->stop); i++) {
        struct pollfd p = { .fd = l->fd, .events = POLLIN };
        if (poll(&p, 1, SERVER_POLL_MS) <= 0)
            continue;
        int conn = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
        if (conn < 0)
            continue;
        serve_connection(l, conn);
        close(conn);
    }
    return NULL;
}

static void listener_start(struct listener *l, const char *cert, const char *key, const char *ca)
{
    memset(l, 0, sizeof *l);
    l->ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(l->ctx);
    assert_int_equal(SSL_CTX_set_min_proto_version(l->ctx, TLS1_2_VERSION), 1);
    assert_int_equal(SSL_CTX_use_certificate_file(l->ctx, cert, SSL_FILETYPE_PEM), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(l->ctx, key, SSL_FILETYPE_PEM), 1);
    assert_int_equal(SSL_CTX_load_verify_locations(l->ctx, ca, NULL), 1);
    SSL_CTX_set_verify(l->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);

    l->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(l->fd >= 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = 0 };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(l->fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(l->fd, 8), 0);
    socklen_t len = sizeof sa;
    assert_int_equal(getsockname(l->fd, (struct sockaddr *)&sa, &len), 0);
    l->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&l->thread, NULL, listener_run, l), 0);
}

static void listener_stop(struct listener *l)
{
    atomic_store(&l->stop, true);
    pthread_join(l->thread, NULL);
    close(l->fd);
    SSL_CTX_free(l->ctx);
}

/* Runs `docker --tlsverify ... -H tcp://127.0.0.1:port version` with a private
 * config dir and a bounded wait; returns its exit status. */
static int run_docker(const struct fixture *f, int port, const char *ca, const char *cert,
                      const char *key)
{
    char host[64], log_path[160], env_home[160], env_cfg[200];
    snprintf(host, sizeof host, "tcp://127.0.0.1:%d", port);
    snprintf(log_path, sizeof log_path, "%s/docker.log", f->root);
    snprintf(env_home, sizeof env_home, "HOME=%s", f->root);
    snprintf(env_cfg, sizeof env_cfg, "DOCKER_CONFIG=%s/docker-config", f->root);
    const char *bin = docker_bin();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int out = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (out >= 0) {
            dup2(out, 1);
            dup2(out, 2);
        }
        char *argv[] = { (char *)"docker", (char *)"--tlsverify", (char *)"--tlscacert", (char *)ca,
                         (char *)"--tlscert", (char *)cert, (char *)"--tlskey", (char *)key,
                         (char *)"-H", host, (char *)"version", NULL };
        char *envp[] = { (char *)"PATH=/usr/bin:/bin", env_home, env_cfg, NULL };
        execve(bin, argv, envp);
        _exit(127);
    }
    int status = 0;
    for (int waited = 0; waited < DOCKER_TIMEOUT_MS; waited += 50) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
        struct timespec ts = { 0, 50 * 1000000L };
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    fail_msg("docker CLI did not finish within %d ms", DOCKER_TIMEOUT_MS);
    return -1;
}

struct outcome {
    int handshakes;
    int requests;
    int exit_status;
};

/* Issues a server cert from `server_ca_dir` with `san`, serves it, trusts
 * `client_ca` for clients, and runs the CLI with the given client material. */
static struct outcome try_docker(const struct fixture *f, const char *server_ca_dir,
                                 const char *san, const char *client_ca,
                                 const char *cli_store, const char *cli_ca)
{
    char *ca = in(server_ca_dir, CERTS_CA_CERT), *ca_key = in(server_ca_dir, CERTS_CA_KEY);
    char *srv = in(f->root, "server.pem"), *srv_key = in(f->root, "server-key.pem");
    const char *sans[] = { san };
    struct merr err = MERR_INIT;
    if (certs_issue_server(ca, ca_key, ORG, sans, 1, srv, srv_key, &err) < 0)
        fail_msg("issue: %s", err.msg);

    struct listener l;
    listener_start(&l, srv, srv_key, client_ca);
    char *cert = in(cli_store, CERTS_CLIENT_CERT), *key = in(cli_store, CERTS_CLIENT_KEY);
    int status = run_docker(f, l.port, cli_ca, cert, key);
    listener_stop(&l);

    struct outcome o = { atomic_load(&l.verified_handshakes), atomic_load(&l.requests), status };
    free(ca);
    free(ca_key);
    free(srv);
    free(srv_key);
    free(cert);
    free(key);
    return o;
}

static void test_docker_cli_accepts_our_certificates(void **state)
{
    struct fixture *f = *state;
    if (docker_bin() == NULL)
        skip(); /* no docker CLI installed: nothing to check Go's TLS against */
    char *ca = in(f->store, CERTS_CA_CERT);
    struct outcome o = try_docker(f, f->store, "127.0.0.1", ca, f->store, ca);
    /* the CLI verified our server, we verified its client cert, then it spoke HTTP */
    assert_true(o.handshakes >= 1);
    assert_true(o.requests >= 1);
    free(ca);
}

static void test_docker_cli_refuses_server_from_other_ca(void **state)
{
    struct fixture *f = *state;
    if (docker_bin() == NULL)
        skip();
    char *ca = in(f->store, CERTS_CA_CERT);
    struct outcome o = try_docker(f, f->other, "127.0.0.1", ca, f->store, ca);
    assert_int_equal(o.requests, 0);
    assert_int_not_equal(o.exit_status, 0);
    free(ca);
}

static void test_docker_cli_refuses_server_without_dialled_ip(void **state)
{
    struct fixture *f = *state;
    if (docker_bin() == NULL)
        skip();
    char *ca = in(f->store, CERTS_CA_CERT);
    /* "localhost" is in the cert, but an IP dial needs the IP itself */
    struct outcome o = try_docker(f, f->store, "10.0.0.5", ca, f->store, ca);
    assert_int_equal(o.requests, 0);
    assert_int_not_equal(o.exit_status, 0);
    free(ca);
}

static void test_server_refuses_docker_cli_with_client_from_other_ca(void **state)
{
    struct fixture *f = *state;
    if (docker_bin() == NULL)
        skip();
    char *ca = in(f->store, CERTS_CA_CERT);
    /* the CLI trusts our server, but presents the other store's client cert */
    struct outcome o = try_docker(f, f->store, "127.0.0.1", ca, f->other, ca);
    assert_int_equal(o.handshakes, 0);
    assert_int_equal(o.requests, 0);
    assert_int_not_equal(o.exit_status, 0);
    free(ca);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        T(test_docker_cli_accepts_our_certificates),
        T(test_docker_cli_refuses_server_from_other_ca),
        T(test_docker_cli_refuses_server_without_dialled_ip),
        T(test_server_refuses_docker_cli_with_client_from_other_ca),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
