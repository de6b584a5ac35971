/* The provisioning steps, as data, and the runner. */
#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "certs.h"
#include "clock.h"
#include "context.h"
#include "driver.h"
#include "engine_client.h"
#include "error.h"
#include "fsutil.h"
#include "lifecycle.h"
#include "log.h"
#include "machine.h"
#include "provision.h"
#include "ssh.h"
#include "store.h"

#define BUNDLE_NAME "machine-engine-bundle.tar.gz"
#define ENGINE_WAIT_MS 60000
#define ENGINE_LOG "/var/log/machine-engine.log"

enum step_kind { STEP_SCRIPT, STEP_FEATURES, STEP_BUNDLE, STEP_CERTS, STEP_SERVICE, STEP_START };

struct step {
    const char *title;
    enum step_kind kind;
    const char *script; /* STEP_SCRIPT / STEP_START: run as root with the MACHINE_* variables */
};

/* Shell fragments run as root (through sudo for other users). Variables come from run_root(). */
static const struct step steps[] = {
    { "Checking the host", STEP_SCRIPT,
      "[ \"$(uname -m)\" = x86_64 ] || { echo \"machine-engine needs x86_64, not $(uname -m)\" >&2; exit 1; }\n"
      "for t in tar sha256sum mkdir; do command -v $t >/dev/null || { echo \"$t is missing\" >&2; exit 1; }; done" },
    /* What the kernel offers, as key=value lines for provision_check_features(): a host that
     * lacks a feature fails here, named, instead of an engine that never answers. */
    { "Checking the kernel", STEP_FEATURES,
      "echo kernel=$(uname -r)\n"
      "grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true\n"
      "grep -qw overlay /proc/filesystems && echo overlay=yes || echo overlay=no\n"
      "grep -qw cgroup2 /proc/filesystems && echo cgroup2=yes || echo cgroup2=no\n"
      "echo cgroup_controllers=$(awk '!/^#/ && $4 == 1' /proc/cgroups 2>/dev/null | wc -l)\n"
      "grep -q '^Seccomp:' /proc/self/status && echo seccomp=yes || echo seccomp=no" },
    { "Setting the hostname", STEP_SCRIPT,
      "hostname \"$MACHINE_HOSTNAME\" 2>/dev/null || true\n"
      "echo \"$MACHINE_HOSTNAME\" > /etc/hostname\n"
      "grep -q \"^127.0.1.1[[:space:]]\\+$MACHINE_HOSTNAME\\$\" /etc/hosts 2>/dev/null || "
      "echo \"127.0.1.1 $MACHINE_HOSTNAME\" >> /etc/hosts" },
    { "Installing the engine", STEP_BUNDLE, NULL },
    { "Installing certificates", STEP_CERTS, NULL },
    { "Configuring the engine service", STEP_SERVICE, NULL },
    { "Starting the engine", STEP_START,
      "if [ \"$MACHINE_INIT\" = systemd ]; then\n"
      "  systemctl daemon-reload && systemctl enable machine-engine >/dev/null 2>&1 && "
      "systemctl restart machine-engine\n"
      "else\n"
      "  [ -f " ENGINE_LOG " ] && mv -f " ENGINE_LOG " " ENGINE_LOG ".1\n"
      "  /etc/init.d/machine-engine restart\n"
      "fi" },
};

/* init.d script for hosts without systemd: starts the supervisor, stops engine and supervisor. */
static const char init_script[] =
    "#!/bin/sh\n"
    "### BEGIN INIT INFO\n# Provides: machine-engine\n# Required-Start: $network $remote_fs\n"
    "# Required-Stop: $network $remote_fs\n# Default-Start: 2 3 4 5\n# Default-Stop: 0 1 6\n"
    "# Short-Description: machine-engine container engine\n### END INIT INFO\n"
    "SUP=/var/run/machine-engine-supervise.pid\nENG=/var/run/machine-engine.pid\n"
    "stop() {\n"
    "  touch " ENGINE_CONF_DIR "/stopped\n"
    "  [ -f $SUP ] && kill \"$(cat $SUP)\" 2>/dev/null\n"
    "  [ -f $ENG ] && kill \"$(cat $ENG)\" 2>/dev/null\n"
    "  i=0; while [ -f $ENG ] && kill -0 \"$(cat $ENG)\" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done\n"
    "  [ -f $ENG ] && kill -9 \"$(cat $ENG)\" 2>/dev/null\n"
    "  rm -f $SUP\n"
    "}\n"
    "start() {\n"
    "  rm -f " ENGINE_CONF_DIR "/stopped\n"
    "  setsid " ENGINE_CONF_DIR "/supervise </dev/null >/dev/null 2>&1 &\n"
    "  echo $! > $SUP\n"
    "}\n"
    "case \"$1\" in\n  start) start ;;\n  stop) stop ;;\n  restart) stop; start ;;\n"
    "  *) echo \"usage: $0 start|stop|restart\" >&2; exit 2 ;;\nesac\n";

struct prov {
    const struct machine_ctx *ctx;
    struct machine *m;
    struct ssh_conn *c;
    bool root;
    char *init; /* "systemd" or "other" */
};

static void progress(const struct machine_ctx *ctx, const char *line)
{
    mlog_debug(&ctx->log, "%s", line);
    if (ctx->progress != NULL)
        ctx->progress(ctx->progress_opaque, line);
}

/* Runs script as root with the provisioning variables; a failure carries stderr's last line. */
static int run_root(struct prov *p, const char *script, char **out, struct merr *err)
{
    auto_free char *qs = sh_quote(script);
    auto_free char *host = sh_quote(p->m->name);
    auto_free char *cmd = xasprintf("%sMACHINE_HOSTNAME=%s MACHINE_INIT=%s sh -c %s",
                                    p->root ? "env " : "sudo -n env ", host,
                                    p->init != NULL ? p->init : "unknown", qs);
    char *o = NULL, *e = NULL;
    size_t ol = 0, el = 0;
    int status = -1;
    if (ssh_exec(p->c, cmd, NULL, 0, &o, &ol, &e, &el, &status, err) < 0)
        return -1;
    int rc = 0;
    if (status != 0) {
        while (el > 0 && (e[el - 1] == '\n' || e[el - 1] == '\r'))
            e[--el] = '\0';
        const char *last = strrchr(e, '\n');
        last = last != NULL ? last + 1 : e;
        rc = merr_set(err, MERR_REMOTE, 0, "exit status %d%s%s", status, last[0] != '\0' ? ": " : "",
                      last);
        if (!p->root && strstr(e, "sudo") != NULL)
            merr_prefix(err, "user '%s' needs passwordless sudo",
                        machine_driver_str(p->m, DKEY_SSH_USER));
    }
    free(e);
    if (rc == 0 && out != NULL)
        *out = o;
    else
        free(o);
    return rc;
}

/* Puts data at path on the host as root with mode: upload as the SSH user, then install. */
static int put_root(struct prov *p, const void *data, size_t len, const char *path, int mode,
                    struct merr *err)
{
    auto_free char *tmp = xasprintf("/tmp/.machine-upload-%d-%ld", (int)getpid(), (long)random());
    if (ssh_upload_buf(p->c, data, len, tmp, 0600, err) < 0)
        return -1;
    auto_free char *qt = sh_quote(tmp);
    auto_free char *qp = sh_quote(path);
    /* POSIX tools only (busybox hosts such as machine-os have no `install`); the file appears
     * whole under its name (rename), owned by root. */
    auto_free char *qn = xasprintf("%s.new", qp);
    auto_free char *script = xasprintf("mkdir -p \"$(dirname %s)\" && cp %s %s && chown 0:0 %s && "
                                       "chmod %o %s && mv -f %s %s && rm -f %s",
                                       qp, qt, qn, qn, mode, qn, qn, qp, qt);
    return run_root(p, script, NULL, err);
}

static int put_root_file(struct prov *p, const char *local, const char *path, int mode,
                         struct merr *err)
{
    auto_free char *data = NULL;
    size_t len = 0;
    if (fs_read_file(local, 64u << 20, &data, &len, err) < 0)
        return -1;
    return put_root(p, data, len, path, mode, err);
}

static char *file_sha256(const char *path, struct merr *err)
{
    auto_fclose FILE *f = fopen(path, "re");
    if (f == NULL) {
        merr_set(err, MERR_IO, errno, "cannot open '%s'", path);
        return NULL;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        EVP_DigestUpdate(md, buf, n);
    unsigned char dig[32];
    unsigned int dl = 0;
    EVP_DigestFinal_ex(md, dig, &dl);
    EVP_MD_CTX_free(md);
    char *hex = xcalloc(65, 1);
    for (unsigned i = 0; i < dl; i++)
        sprintf(hex + 2 * i, "%02x", dig[i]);
    return hex;
}

static int step_bundle(struct prov *p, const char *bundle, struct merr *err)
{
    auto_free char *sum = file_sha256(bundle, err);
    if (sum == NULL)
        return -1;
    /* Already installed: nothing to copy (re-provisioning stays fast). */
    auto_free char *check = xasprintf("[ \"$(cat %s/.bundle-sha256 2>/dev/null)\" = %s ]", ENGINE_DIR, sum);
    struct merr ignored;
    if (run_root(p, check, NULL, &ignored) == 0)
        return 0;
    auto_free char *tmp = xasprintf("/tmp/.machine-bundle-%d.tar.gz", (int)getpid());
    struct ssh_conn *c = p->c;
    {
        auto_free char *data = NULL;
        size_t len = 0;
        if (fs_read_file(bundle, 512u << 20, &data, &len, err) < 0 ||
            ssh_upload_buf(c, data, len, tmp, 0600, err) < 0)
            return merr_prefix(err, "cannot upload the engine bundle");
    }
    auto_free char *script = xasprintf(
        "set -e\n"
        "b=%s\n"
        "[ \"$(sha256sum \"$b\" | cut -d' ' -f1)\" = %s ] || { echo 'the engine bundle arrived "
        "damaged (checksum mismatch)' >&2; rm -f \"$b\"; exit 1; }\n"
        "rm -rf %s.new && mkdir -p %s.new\n"
        "tar -xzf \"$b\" -C %s.new --strip-components=1 --no-same-owner\n"
        "rm -f \"$b\"\n"
        "(cd %s.new && sha256sum -c --quiet SHA256SUMS) || { echo 'the engine bundle does not "
        "match its SHA256SUMS' >&2; exit 1; }\n"
        "echo %s > %s.new/.bundle-sha256\n"
        "rm -rf %s.old; [ -d %s ] && mv %s %s.old; mv %s.new %s; rm -rf %s.old\n"
        "mkdir -p %s && chmod 0711 %s",
        tmp, sum, ENGINE_DIR, ENGINE_DIR, ENGINE_DIR, ENGINE_DIR, sum, ENGINE_DIR, ENGINE_DIR,
        ENGINE_DIR, ENGINE_DIR, ENGINE_DIR, ENGINE_DIR, ENGINE_DIR, ENGINE_DIR, ENGINE_DATA_DIR,
        ENGINE_DATA_DIR);
    return run_root(p, script, NULL, err);
}

int provision_issue_server_cert(const struct machine_ctx *ctx, const struct machine *m,
                                const char *ip, struct merr *err)
{
    const char *sans[66];
    size_t n = 0;
    sans[n++] = ip;
    sans[n++] = m->name;
    for (size_t i = 0; m->auth.sans != NULL && m->auth.sans[i] != NULL && n < 64; i++)
        sans[n++] = m->auth.sans[i];
    auto_free char *ca = path_join(ctx->store.certs_dir, "ca.pem");
    auto_free char *ca_key = path_join(ctx->store.certs_dir, "ca-key.pem");
    auto_free char *cert = store_machine_file(&ctx->store, m->name, "server.pem");
    auto_free char *key = store_machine_file(&ctx->store, m->name, "server-key.pem");
    return certs_issue_server(ca, ca_key, "machine", sans, n, cert, key, err);
}

static int step_certs(struct prov *p, struct merr *err)
{
    const struct machine_ctx *ctx = p->ctx;
    struct driver_ctx dctx;
    lifecycle_driver_ctx(ctx, &dctx);
    const struct driver *d = lifecycle_driver(ctx, p->m, err);
    if (d == NULL)
        return -1;
    auto_free char *ip = driver_get_ip(d, &dctx, p->m, err);
    if (ip == NULL || provision_issue_server_cert(ctx, p->m, ip, err) < 0)
        return -1;
    static const struct {
        const char *local, *remote;
        int mode;
    } files[] = {
        { "ca.pem", ENGINE_CONF_DIR "/ca.pem", 0644 },
        { "server.pem", ENGINE_CONF_DIR "/server.pem", 0644 },
        { "server-key.pem", ENGINE_CONF_DIR "/server-key.pem", 0600 },
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        auto_free char *local = store_machine_file(&ctx->store, p->m->name, files[i].local);
        if (put_root_file(p, local, files[i].remote, files[i].mode, err) < 0)
            return -1;
    }
    return run_root(p, "chmod 0755 " ENGINE_CONF_DIR, NULL, err);
}

static int step_service(struct prov *p, struct merr *err)
{
    const struct machine *m = p->m;
    struct engine_launch l = {
        .hostname = m->name,
        .port = m->engine.port,
        .labels = m->engine.labels,
        .insecure_registries = m->engine.insecure_registry,
        .registry_mirrors = m->engine.registry_mirror,
        .opts = m->engine.opts,
        .env = m->engine.env,
        .storage_driver = m->engine.storage_driver,
    };
    auto_free char *args = provision_engine_args(&l, err);
    if (args == NULL)
        return -1;
    if (strcmp(p->init, "systemd") == 0) {
        auto_free char *unit = provision_render_unit(args, m->engine.env);
        return put_root(p, unit, strlen(unit), "/etc/systemd/system/machine-engine.service", 0644, err);
    }
    auto_free char *sup = provision_render_supervisor(args, m->engine.env);
    if (put_root(p, sup, strlen(sup), ENGINE_CONF_DIR "/supervise", 0755, err) < 0 ||
        put_root(p, init_script, strlen(init_script), "/etc/init.d/machine-engine", 0755, err) < 0)
        return -1;
    /* Started at boot through the host's rc system, whichever it has. */
    return run_root(p,
                    "if command -v update-rc.d >/dev/null; then update-rc.d machine-engine defaults "
                    ">/dev/null 2>&1 || true; elif [ -d /etc/rc.d ]; then ln -sf "
                    "/etc/init.d/machine-engine /etc/rc.d/S90machine-engine; fi",
                    NULL, err);
}

char *provision_engine_version(const struct machine_ctx *ctx, const struct machine *m, int timeout_ms,
                               struct merr *err)
{
    const struct driver *d = lifecycle_driver(ctx, m, err);
    if (d == NULL)
        return NULL;
    struct driver_ctx dctx;
    lifecycle_driver_ctx(ctx, &dctx);
    auto_free char *url = driver_get_url(d, &dctx, m, err);
    if (url == NULL)
        return NULL;
    auto_free char *ca = store_machine_file(&ctx->store, m->name, "ca.pem");
    auto_free char *cert = store_machine_file(&ctx->store, m->name, "cert.pem");
    auto_free char *key = store_machine_file(&ctx->store, m->name, "key.pem");
    struct engine_endpoint ep = { .url = url, .ca = ca, .cert = cert, .key = key, .timeout_ms = timeout_ms };
    return engine_version(&ep, err);
}

static char *engine_fatal_on_host(struct prov *p, long long since);

/* Waiting for the engine's TLS API; with p set, the engine's log on the host is read every
 * fourth attempt so an engine that exits at start fails the wait with its own reason. */
struct engine_wait {
    const struct machine_ctx *ctx;
    const struct machine *m;
    struct prov *p;
    long long since;
    int per_try_ms;
    char *version;
    bool final; /* the probe ended the wait: err is the answer as it is */
};

static int engine_answers(void *opaque, int attempt, struct merr *err)
{
    struct engine_wait *w = opaque;
    w->version = provision_engine_version(w->ctx, w->m, w->per_try_ms, err);
    if (w->version != NULL)
        return 1;
    if (err->code == MERR_AUTH || err->code == MERR_NOT_FOUND) {
        w->final = true; /* a certificate problem does not fix itself by waiting */
        return -1;
    }
    auto_free char *fatal =
        w->p != NULL && attempt % 4 == 3 ? engine_fatal_on_host(w->p, w->since) : NULL;
    if (fatal != NULL) {
        w->final = true;
        return merr_set(err, MERR_REMOTE, 0, "the engine cannot start on '%s': %s", w->m->name,
                        fatal);
    }
    return 0;
}

static char *wait_engine(struct engine_wait *w, int total_ms, int pause_ms, struct merr *err)
{
    const struct clock_poll poll = { .timeout_ms = total_ms, .first_pause_ms = pause_ms,
                                     .max_pause_ms = pause_ms, .max_attempts = 10000 };
    if (clock_poll_until(&poll, engine_answers, w, err) == 0)
        return w->version;
    if (!w->final)
        merr_prefix(err, "the engine did not answer within %d s", total_ms / 1000);
    return NULL;
}

char *provision_wait_engine(const struct machine_ctx *ctx, const struct machine *m, int total_ms,
                            struct merr *err)
{
    struct engine_wait w = { .ctx = ctx, .m = m, .per_try_ms = 5000 };
    return wait_engine(&w, total_ms, 250, err);
}

char *provision_find_bundle(struct merr *err)
{
    const char *env = getenv("MACHINE_ENGINE_BUNDLE");
    if (env != NULL && env[0] != '\0') {
        if (access(env, R_OK) == 0)
            return xstrdup(env);
        merr_set(err, MERR_NOT_FOUND, errno, "cannot read MACHINE_ENGINE_BUNDLE '%s'", env);
        return NULL;
    }
    static const char *const rel[] = { "../" BUNDLE_NAME, "../lib/machine/" BUNDLE_NAME,
                                       BUNDLE_NAME, NULL };
    char *found = fs_find_beside_exe(rel);
    if (found != NULL)
        return found;
    merr_set(err, MERR_NOT_FOUND, 0,
             "cannot find the engine bundle (%s): build it with 'make -C build engine-bundle' or "
             "set MACHINE_ENGINE_BUNDLE",
             BUNDLE_NAME);
    return NULL;
}

static int prov_open(const struct machine_ctx *ctx, struct machine *m, struct prov *p,
                     struct merr *err)
{
    memset(p, 0, sizeof *p);
    p->ctx = ctx;
    p->m = m;
    const char *user = machine_driver_str(m, DKEY_SSH_USER);
    p->root = user == NULL || user[0] == '\0' || strcmp(user, "root") == 0;
    if (machine_ssh_connect(ctx, m, &p->c, err) < 0)
        return -1;
    char *init = NULL;
    if (run_root(p, "if [ -d /run/systemd/system ]; then echo systemd; else echo other; fi", &init,
                 err) < 0) {
        ssh_conn_free(p->c);
        return -1;
    }
    init[strcspn(init, "\n")] = '\0';
    p->init = init;
    return 0;
}

/* The engine's last fatal exit since it was started, from its log on the host. */
static char *engine_fatal_on_host(struct prov *p, long long since)
{
    auto_free char *script = xasprintf(
        "if [ \"$MACHINE_INIT\" = systemd ]; then journalctl -u machine-engine --since @%lld "
        "-o cat -n 20 --no-pager 2>/dev/null; else tail -n 20 " ENGINE_LOG " 2>/dev/null; fi; true",
        since);
    auto_free char *tail = NULL;
    struct merr ignored = MERR_INIT;
    if (run_root(p, script, &tail, &ignored) < 0 || tail == NULL)
        return NULL;
    return provision_engine_fatal(tail);
}

/* Waits (bounded) for the TLS API like provision_wait_engine, but looks at the engine's log
 * every few seconds: an engine that exits at start (an option it refuses, a host it cannot
 * run on) fails the create with its own reason at once, not after the whole wait. */
static char *wait_engine_or_fatal(struct prov *p, int total_ms, struct merr *err)
{
    const struct machine_ctx *ctx = p->ctx;
    auto_free char *host_now = NULL;
    struct merr ignored = MERR_INIT;
    long long since = 0;
    if (run_root(p, "date +%s", &host_now, &ignored) == 0 && host_now != NULL)
        since = strtoll(host_now, NULL, 10) - 2; /* the start step ran just before */
    struct engine_wait w = { .ctx = ctx, .m = p->m, .p = p, .since = since, .per_try_ms = 3000 };
    return wait_engine(&w, total_ms, 500, err);
}

static void prov_close(struct prov *p)
{
    ssh_conn_free(p->c);
    free(p->init);
}

/* --engine-opt live-restore=false (or `live-restore false`) among the machine's options. */
static bool live_restore_off(const struct machine *m)
{
    for (size_t i = 0; m->engine.opts != NULL && m->engine.opts[i] != NULL; i++) {
        const char *o = m->engine.opts[i];
        while (*o == '-')
            o++;
        if (strncmp(o, "live-restore", 12) == 0 && (o[12] == '=' || o[12] == ' ') &&
            (strcmp(o + 13, "false") == 0 || strcmp(o + 13, "0") == 0))
            return true;
    }
    return false;
}

/* Before the engine restarts: say what happens to the containers running on the host. */
static void tell_containers(const struct machine_ctx *ctx, struct prov *p)
{
    auto_free char *out = NULL;
    struct merr ignored = MERR_INIT;
    if (run_root(p, "pgrep -c -x machine-monitor || true", &out, &ignored) < 0 || out == NULL)
        return;
    long n = strtol(out, NULL, 10);
    if (n <= 0)
        return;
    char line[160];
    if (live_restore_off(p->m))
        snprintf(line, sizeof line,
                 "%ld running container(s) stop with the engine (it runs with live-restore=false)", n);
    else
        snprintf(line, sizeof line,
                 "%ld running container(s) keep running while the engine restarts (live-restore)", n);
    progress(ctx, line);
}

int provision_machine(const struct machine_ctx *ctx, struct machine *m, const char *bundle,
                      struct merr *err)
{
    struct prov p;
    if (prov_open(ctx, m, &p, err) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0] && rc == 0; i++) {
        const struct step *s = &steps[i];
        if (s->kind == STEP_START)
            tell_containers(ctx, &p);
        progress(ctx, s->title);
        switch (s->kind) {
        case STEP_SCRIPT:
        case STEP_START:
            rc = run_root(&p, s->script, NULL, err);
            break;
        case STEP_FEATURES: {
            auto_free char *report = NULL;
            rc = run_root(&p, s->script, &report, err);
            if (rc == 0)
                rc = provision_check_features(report, err);
            break;
        }
        case STEP_BUNDLE:
            rc = step_bundle(&p, bundle, err);
            break;
        case STEP_CERTS:
            rc = step_certs(&p, err);
            break;
        case STEP_SERVICE:
            rc = step_service(&p, err);
            break;
        }
        if (rc < 0)
            merr_prefix(err, "%s", s->title);
    }
    if (rc == 0) {
        progress(ctx, "Waiting for the engine's TLS API");
        auto_free char *v = wait_engine_or_fatal(&p, ENGINE_WAIT_MS, err);
        if (v == NULL) {
            char *log = NULL;
            struct merr ignored;
            if (run_root(&p, "tail -n 5 /var/log/machine-engine.log 2>/dev/null || journalctl -u "
                             "machine-engine -n 5 --no-pager 2>/dev/null",
                         &log, &ignored) == 0 && log != NULL && log[0] != '\0')
                mlog_warn(&ctx->log, "engine log on '%s':\n%s", m->name, log);
            free(log);
            rc = -1;
        }
    }
    prov_close(&p);
    return rc;
}

int provision_install_certs(const struct machine_ctx *ctx, struct machine *m, struct merr *err)
{
    struct prov p;
    if (prov_open(ctx, m, &p, err) < 0)
        return -1;
    int rc = step_certs(&p, err);
    if (rc == 0)
        rc = run_root(&p, steps[sizeof steps / sizeof steps[0] - 1].script, NULL, err);
    prov_close(&p);
    return rc;
}
