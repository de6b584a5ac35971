/* Pure text builders for provisioning: shell quoting, the engine's command line, the systemd
 * unit and the supervisor script. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_flags.h"
#include "error.h"
#include "fsutil.h"
#include "provision.h"

char *sh_quote(const char *s)
{
    size_t n = 3;
    for (const char *p = s; *p != '\0'; p++)
        n += *p == '\'' ? 4 : 1;
    char *out = xcalloc(n, 1);
    char *w = out;
    *w++ = '\'';
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '\'') {
            memcpy(w, "'\\''", 4);
            w += 4;
        } else {
            *w++ = *p;
        }
    }
    *w++ = '\'';
    return out;
}

struct sb {
    char *buf;
    size_t len;
    FILE *f;
};

static void sb_open(struct sb *b)
{
    b->buf = NULL;
    b->len = 0;
    b->f = open_memstream(&b->buf, &b->len);
    if (b->f == NULL)
        abort();
}

static char *sb_close(struct sb *b)
{
    fclose(b->f);
    return b->buf;
}

static void put_flag(struct sb *b, const char *flag, const char *value)
{
    auto_free char *q = sh_quote(value);
    fprintf(b->f, " %s %s", flag, q);
}

/* --engine-opt key=value becomes --key=value; keys are plain flag names. */
static int put_opt(struct sb *b, const char *kv, struct merr *err)
{
    const char *eq = strchr(kv, '=');
    size_t klen = eq != NULL ? (size_t)(eq - kv) : strlen(kv);
    if (klen == 0)
        return merr_set(err, MERR_INVALID, 0, "invalid --engine-opt '%s'", kv);
    for (size_t i = 0; i < klen; i++)
        if (!(islower((unsigned char)kv[i]) || isdigit((unsigned char)kv[i]) || kv[i] == '-'))
            return merr_set(err, MERR_INVALID, 0, "invalid --engine-opt '%s': bad flag name", kv);
    /* machine provision / upgrade with options stored before: the engine's own table decides */
    if (engine_flag_check_opt(kv, err) < 0)
        return -1;
    if (eq == NULL) {
        fprintf(b->f, " --%.*s", (int)klen, kv);
        return 0;
    }
    auto_free char *q = sh_quote(eq + 1);
    fprintf(b->f, " --%.*s=%s", (int)klen, kv, q);
    return 0;
}

char *provision_engine_args(const struct engine_launch *l, struct merr *err)
{
    bool vfs = l->storage_driver != NULL && strcmp(l->storage_driver, "vfs") == 0;
    if (l->storage_driver != NULL && l->storage_driver[0] != '\0' && !vfs &&
        strcmp(l->storage_driver, "overlay2") != 0 && strcmp(l->storage_driver, "overlay") != 0) {
        merr_set(err, MERR_INVALID, 0,
                 "storage driver '%s' is not supported (machine-engine uses overlay2 or vfs)",
                 l->storage_driver);
        return NULL;
    }
    struct sb b;
    sb_open(&b);
    fprintf(b.f, "-H unix:///var/run/machine-engine.sock -H tcp://0.0.0.0:%d --tlsverify", l->port);
    fprintf(b.f, " --tlscacert %s/ca.pem --tlscert %s/server.pem --tlskey %s/server-key.pem",
            ENGINE_CONF_DIR, ENGINE_CONF_DIR, ENGINE_CONF_DIR);
    fprintf(b.f, " --data-root %s --pidfile /var/run/machine-engine.pid", ENGINE_DATA_DIR);
    if (vfs) /* overlay2 needs no flag: the engine takes it where the data root can hold it */
        fprintf(b.f, " --storage-driver vfs");
    for (size_t i = 0; l->labels != NULL && l->labels[i] != NULL; i++)
        put_flag(&b, "--label", l->labels[i]);
    for (size_t i = 0; l->insecure_registries != NULL && l->insecure_registries[i] != NULL; i++)
        put_flag(&b, "--insecure-registry", l->insecure_registries[i]);
    for (size_t i = 0; l->registry_mirrors != NULL && l->registry_mirrors[i] != NULL; i++)
        put_flag(&b, "--registry-mirror", l->registry_mirrors[i]);
    for (size_t i = 0; l->opts != NULL && l->opts[i] != NULL; i++)
        if (put_opt(&b, l->opts[i], err) < 0) {
            free(sb_close(&b));
            return NULL;
        }
    return sb_close(&b);
}

static int check_env(const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (eq == NULL || eq == kv)
        return -1;
    for (const char *p = kv; p < eq; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_'))
            return -1;
    return 0;
}

char *provision_render_unit(const char *args, char *const *env)
{
    struct sb b;
    sb_open(&b);
    fputs("# Written by machine provisioning; re-provisioning replaces it.\n"
          "[Unit]\nDescription=machine-engine container engine\n"
          "After=network-online.target\nWants=network-online.target\n\n[Service]\nType=simple\n",
          b.f);
    for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
        if (check_env(env[i]) < 0)
            continue;
        fputs("Environment=\"", b.f);
        for (const char *p = env[i]; *p != '\0'; p++) {
            if (*p == '"' || *p == '\\')
                fputc('\\', b.f);
            if (*p == '%')
                fputc('%', b.f); /* systemd specifier escape */
            fputc(*p, b.f);
        }
        fputs("\"\n", b.f);
    }
    fprintf(b.f, "ExecStart=/bin/sh -c 'exec %s/bin/machine-engine \"$@\"' machine-engine %s\n",
            ENGINE_DIR, args);
    /* KillMode=process (as docker.service): a restart or upgrade stops the engine, not the
     * containers' monitors forked into its cgroup (live-restore) */
    fputs("Restart=always\nRestartSec=2\nDelegate=yes\nKillMode=process\nLimitNOFILE=1048576\n"
          "TasksMax=infinity\n\n"
          "[Install]\nWantedBy=multi-user.target\n",
          b.f);
    return sb_close(&b);
}

char *provision_render_supervisor(const char *args, char *const *env)
{
    struct sb b;
    sb_open(&b);
    fputs("#!/bin/sh\n# machine-engine supervisor (hosts without systemd), written by machine.\n"
          "# Restarts the engine when it exits, with back-off; exits when stopped on purpose.\n",
          b.f);
    for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
        if (check_env(env[i]) < 0)
            continue;
        const char *eq = strchr(env[i], '=');
        auto_free char *q = sh_quote(eq + 1);
        fprintf(b.f, "export %.*s=%s\n", (int)(eq - env[i]), env[i], q);
    }
    fprintf(b.f,
            "rm -f %s/stopped\n"
            "delay=1\n"
            "while :; do\n"
            "    started=$(date +%%s)\n"
            "    %s/bin/machine-engine %s >>/var/log/machine-engine.log 2>&1\n"
            "    [ -e %s/stopped ] && exit 0\n"
            "    [ $(( $(date +%%s) - started )) -gt 30 ] && delay=1\n"
            "    sleep \"$delay\"\n"
            "    [ \"$delay\" -lt 30 ] && delay=$((delay * 2))\n"
            "done\n",
            ENGINE_CONF_DIR, ENGINE_DIR, args, ENGINE_CONF_DIR);
    return sb_close(&b);
}

/* ---- what the host's kernel offers (the "Checking the host" report) ---- */

static const char *report_value(const char *report, const char *key, char *buf, size_t size)
{
    size_t n = strlen(key);
    for (const char *p = report; p != NULL && *p != '\0';) {
        const char *end = strchr(p, '\n');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len > n && strncmp(p, key, n) == 0 && p[n] == '=') {
            snprintf(buf, size, "%.*s", (int)(len - n - 1), p + n + 1);
            return buf;
        }
        p = end != NULL ? end + 1 : NULL;
    }
    return NULL;
}

int provision_check_features(const char *report, struct merr *err)
{
    char kernel[128] = "", v[64];
    unsigned major = 0, minor = 0;
    if (report_value(report, "kernel", kernel, sizeof kernel) == NULL ||
        sscanf(kernel, "%u.%u", &major, &minor) != 2)
        return merr_set(err, MERR_REMOTE, 0, "cannot read the host's kernel version");
    if (major < 4 || (major == 4 && minor < 14))
        return merr_set(err, MERR_UNSUPPORTED, 0,
                        "the host's kernel %s is too old: machine-engine needs Linux 4.14 or later",
                        kernel);
    const char *ov = report_value(report, "overlay", v, sizeof v);
    if (ov == NULL || strcmp(ov, "yes") != 0)
        return merr_set(err, MERR_UNSUPPORTED, 0,
                        "the host's kernel %s has no overlayfs ('overlay' is not in "
                        "/proc/filesystems and 'modprobe overlay' did not load it): "
                        "machine-engine needs it for image layers",
                        kernel);
    const char *v2 = report_value(report, "cgroup2", v, sizeof v);
    bool has_v2 = v2 != NULL && strcmp(v2, "yes") == 0;
    const char *v1 = report_value(report, "cgroup_controllers", v, sizeof v);
    bool has_v1 = v1 != NULL && strtol(v1, NULL, 10) > 0;
    if (!has_v2 && !has_v1)
        return merr_set(err, MERR_UNSUPPORTED, 0,
                        "the host's kernel %s has no cgroups (neither cgroup2 in /proc/filesystems "
                        "nor an enabled controller in /proc/cgroups): machine-engine needs them "
                        "for containers",
                        kernel);
    const char *sc = report_value(report, "seccomp", v, sizeof v);
    if (sc == NULL || strcmp(sc, "yes") != 0)
        return merr_set(err, MERR_UNSUPPORTED, 0,
                        "the host's kernel %s has no seccomp (no 'Seccomp:' in /proc/self/status): "
                        "machine-engine needs it to confine containers",
                        kernel);
    return 0;
}

char *provision_engine_fatal(const char *log_tail)
{
    static const char prefix[] = "machine-engine: ";
    const char *found = NULL;
    size_t found_len = 0;
    for (const char *p = log_tail; p != NULL && *p != '\0';) {
        const char *end = strchr(p, '\n');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len > sizeof prefix - 1 && strncmp(p, prefix, sizeof prefix - 1) == 0) {
            found = p + sizeof prefix - 1;
            found_len = len - (sizeof prefix - 1);
        }
        p = end != NULL ? end + 1 : NULL;
    }
    return found != NULL ? xasprintf("%.*s", (int)found_len, found) : NULL;
}
