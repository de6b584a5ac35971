/* dockerd-style command-line flags for machine-engine. */
#include "daemon.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "engine_flags.h"

/* Where each flag of the shared table (core/engine_flags.c) lands; a flag of the table with
 * no field here is checked and has nothing more to do (--icc=true, --mtu=1500). */
struct flag_field {
    const char *name;
    size_t offset;
};

#define FIELD(n, f) { n, offsetof(struct engine_config, f) }

static const struct flag_field fields[] = {
    FIELD("host", hosts),
    FIELD("data-root", data_root),
    FIELD("pidfile", pidfile),
    FIELD("exec-root", exec_root),
    FIELD("bridge", bridge),
    FIELD("bip", bip),
    FIELD("default-address-pool", default_address_pool),
    FIELD("insecure-registry", insecure_registries),
    FIELD("registry-mirror", registry_mirrors),
    FIELD("label", labels),
    FIELD("log-level", log_level),
    FIELD("debug", log_level),
    FIELD("tlsverify", tlsverify),
    FIELD("tlscacert", tlscacert),
    FIELD("tlscert", tlscert),
    FIELD("tlskey", tlskey),
    FIELD("version", show_version),
    FIELD("help", show_help),
    FIELD("dns", dns),
    FIELD("dns-search", dns_search),
    FIELD("dns-opt", dns_options),
    FIELD("max-concurrent-downloads", max_concurrent_downloads),
    FIELD("max-concurrent-uploads", max_concurrent_uploads),
    FIELD("live-restore", live_restore),
    FIELD("mtu", mtu),
    FIELD("storage-driver", storage_driver),
    FIELD("default-ulimit", default_ulimits),
    FIELD("log-opt", log_opts),
    FIELD("log-driver", log_driver),
};

static const struct flag_field *field_of(const struct engine_flag *f)
{
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (strcmp(fields[i].name, f->name) == 0)
            return &fields[i];
    return NULL;
}

const char *engine_config_usage(void)
{
    return "Usage: machine-engine [OPTIONS]\n"
           "\n"
           "A container engine that speaks the Docker Engine API.\n"
           "\n"
           "Options:\n"
           "  -H, --host list               Daemon socket(s) to listen on, repeatable\n"
           "                                (default " ENGINE_DEFAULT_HOST ")\n"
           "      --data-root string        Root of persistent state\n"
           "                                (default " ENGINE_DEFAULT_DATA_ROOT ")\n"
           "  -p, --pidfile string          Path of the pid file\n"
           "                                (default " ENGINE_DEFAULT_PIDFILE ")\n"
           "      --exec-root string        Root of runtime state (network namespaces)\n"
           "                                (default " ENGINE_DEFAULT_EXEC_ROOT ")\n"
           "  -b, --bridge string           Interface of the default bridge (default machine0)\n"
           "      --bip string              Address/prefix of the default bridge\n"
           "                                (default 172.18.0.1/16)\n"
           "      --default-address-pool string  Subnets of user networks\n"
           "                                (default base=172.19.0.0/16,size=24)\n"
           "      --insecure-registry list  Registries (host[:port] or CIDR) reached without TLS\n"
           "      --registry-mirror list    Mirrors for docker.io (http[s]://host[:port])\n"
           "      --label list              Daemon labels (key=value)\n"
           "  -l, --log-level string        debug, info, warn or error (default info)\n"
           "  -D, --debug                   Same as --log-level debug\n"
           "      --tlsverify               Require TLS with client certificates on TCP\n"
           "      --tlscacert string        CA that client certificates must chain to\n"
           "      --tlscert string          Server certificate\n"
           "      --tlskey string           Server private key\n"
           "      --dns list                DNS servers of containers without --dns\n"
           "      --dns-search list         DNS search domains of containers without --dns-search\n"
           "      --dns-opt list            DNS options of containers without --dns-option\n"
           "      --default-ulimit list     Ulimits of containers without their own\n"
           "                                (name=soft[:hard])\n"
           "      --log-opt list            json-file options of containers without their own\n"
           "                                (max-size=10m, max-file=3)\n"
           "      --max-concurrent-downloads int  Layers pulled at once (default 3, at most 16)\n"
           "      --max-concurrent-uploads int    Layers pushed at once (default 5, at most 16)\n"
           "      --log-driver string       Log driver of containers without their own\n"
           "                                (json-file or none; default json-file)\n"
           "      --mtu int                 MTU of the default bridge's containers (default 1500)\n"
           "      --storage-driver string   overlay2 or vfs (default: overlay2 where the data root\n"
           "                                can hold overlay layers, else vfs)\n"
           "      --live-restore            Containers keep running while the engine is down and\n"
           "                                are re-adopted when it starts (default true)\n"
           "  -v, --version                 Print the version and exit\n"
           "  -h, --help                    Print this help and exit\n";
}

static int strv_push(char ***v, const char *s, struct merr *err)
{
    size_t n = 0;
    while (*v != NULL && (*v)[n] != NULL)
        n++;
    char **grown = realloc(*v, (n + 2) * sizeof *grown);
    if (grown == NULL)
        return merr_set(err, MERR_NOMEM, 0, "out of memory");
    *v = grown;
    grown[n] = strdup(s);
    grown[n + 1] = NULL;
    if (grown[n] == NULL)
        return merr_set(err, MERR_NOMEM, 0, "out of memory");
    return 0;
}

static int parse_log_level(const char *s, enum mlog_level *out, struct merr *err)
{
    static const struct {
        const char *name;
        enum mlog_level level;
    } levels[] = {
        { "debug", MLOG_DEBUG }, { "info", MLOG_INFO },   { "warn", MLOG_WARN },
        { "warning", MLOG_WARN }, { "error", MLOG_ERROR }, { "fatal", MLOG_ERROR },
    };
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        if (strcmp(s, levels[i].name) == 0) {
            *out = levels[i].level;
            return 0;
        }
    }
    return merr_set(err, MERR_INVALID, 0,
                    "invalid log level '%s': use debug, info, warn or error", s);
}

static int parse_bool(const char *name, const char *s, bool *out, struct merr *err)
{
    if (s == NULL || strcmp(s, "true") == 0 || strcmp(s, "1") == 0) {
        *out = true;
        return 0;
    }
    if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0) {
        *out = false;
        return 0;
    }
    return merr_set(err, MERR_INVALID, 0, "invalid value '%s' for flag '--%s'", s, name);
}

static int apply_flag(struct engine_config *cfg, const struct engine_flag *f, const char *value,
                      struct merr *err)
{
    if (engine_flag_check(f, value, err) < 0)
        return -1;
    const struct flag_field *ff = field_of(f);
    if (ff == NULL)
        return 0;
    void *field = (char *)cfg + ff->offset;
    switch (f->kind) {
    case EFLAG_BOOL:
    case EFLAG_TRUE_ONLY:
        return parse_bool(f->name, value, field, err);
    case EFLAG_DEBUG: {
        bool on;
        if (parse_bool(f->name, value, &on, err) < 0)
            return -1;
        if (on)
            cfg->log_level = MLOG_DEBUG;
        return 0;
    }
    case EFLAG_STRING:
    case EFLAG_CHOICE: {
        char **s = field;
        free(*s);
        *s = strdup(value);
        return *s != NULL ? 0 : merr_set(err, MERR_NOMEM, 0, "out of memory");
    }
    case EFLAG_LIST:
        return strv_push(field, value, err);
    case EFLAG_LOG_LEVEL:
        return parse_log_level(value, field, err);
    case EFLAG_UINT:
        *(unsigned *)field = (unsigned)strtoul(value, NULL, 10);
        return 0;
    case EFLAG_REFUSED:
        break;
    }
    return merr_set(err, MERR_INTERNAL, 0, "flag '--%s' has no field", f->name);
}

/* Handles argv[*i]; may consume argv[*i + 1] as the value. */
static int parse_one(struct engine_config *cfg, int argc, char *const argv[], int *i,
                     struct merr *err)
{
    const char *arg = argv[*i];
    const struct engine_flag *f;
    const char *value = NULL;
    if (arg[1] == '-') {
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        f = engine_flag_find(name, eq != NULL ? (size_t)(eq - name) : strlen(name));
        if (f == NULL)
            return merr_set(err, MERR_INVALID, 0, "unknown flag '%.*s'",
                            (int)(eq != NULL ? (size_t)(eq - arg) : strlen(arg)), arg);
        value = eq != NULL ? eq + 1 : NULL;
    } else {
        f = engine_flag_find_short(arg[1]);
        if (f == NULL)
            return merr_set(err, MERR_INVALID, 0, "unknown shorthand flag '%c' in '%s'", arg[1],
                            arg);
        if (arg[2] != '\0') {
            if (!engine_flag_takes_value(f))
                return merr_set(err, MERR_INVALID, 0, "flag '-%c' takes no value in '%s'",
                                arg[1], arg);
            value = arg[2] == '=' ? arg + 3 : arg + 2;
        }
    }
    if (engine_flag_takes_value(f) && value == NULL) {
        if (*i + 1 >= argc)
            return merr_set(err, MERR_INVALID, 0, "flag '--%s' needs a value", f->name);
        value = argv[++*i];
    }
    return apply_flag(cfg, f, value, err);
}

static int validate_label(const char *label, struct merr *err)
{
    const char *eq = strchr(label, '=');
    if (eq == NULL || eq == label)
        return merr_set(err, MERR_INVALID, 0, "invalid label '%s': use key=value", label);
    return 0;
}

static int normalize_mirror(char **mirror, struct merr *err)
{
    const char *m = *mirror;
    const char *rest = strncmp(m, "https://", 8) == 0 ? m + 8
                       : strncmp(m, "http://", 7) == 0 ? m + 7
                                                        : NULL;
    if (rest == NULL || *rest == '\0' || *rest == '/')
        return merr_set(err, MERR_INVALID, 0,
                        "invalid registry mirror '%s': use http(s)://host[:port]", m);
    const char *slash = strchr(rest, '/');
    if (slash != NULL && slash[1] != '\0')
        return merr_set(err, MERR_INVALID, 0, "invalid registry mirror '%s': no path allowed", m);
    if (strpbrk(rest, "?#") != NULL)
        return merr_set(err, MERR_INVALID, 0, "invalid registry mirror '%s'", m);
    if (slash == NULL) {
        char *with_slash;
        if (asprintf(&with_slash, "%s/", m) < 0)
            return merr_set(err, MERR_NOMEM, 0, "out of memory");
        free(*mirror);
        *mirror = with_slash;
    }
    return 0;
}

static int validate_insecure_registry(const char *r, struct merr *err)
{
    if (*r == '\0' || strstr(r, "://") != NULL || strpbrk(r, " \t") != NULL)
        return merr_set(err, MERR_INVALID, 0,
                        "invalid insecure registry '%s': use host[:port] or a CIDR", r);
    return 0;
}

static int set_default(char **field, const char *value, struct merr *err)
{
    if (*field == NULL && (*field = strdup(value)) == NULL)
        return merr_set(err, MERR_NOMEM, 0, "out of memory");
    return 0;
}

static int validate(struct engine_config *cfg, struct merr *err)
{
    if (cfg->hosts == NULL && strv_push(&cfg->hosts, ENGINE_DEFAULT_HOST, err) < 0)
        return -1;
    for (char **h = cfg->hosts; *h != NULL; h++) {
        struct api_listen_spec spec;
        if (api_listen_spec_parse(*h, cfg->tlsverify, &spec, err) < 0)
            return -1;
        api_listen_spec_release(&spec);
    }
    for (char **l = cfg->labels; l != NULL && *l != NULL; l++)
        if (validate_label(*l, err) < 0)
            return -1;
    for (char **m = cfg->registry_mirrors; m != NULL && *m != NULL; m++)
        if (normalize_mirror(m, err) < 0)
            return -1;
    for (char **r = cfg->insecure_registries; r != NULL && *r != NULL; r++)
        if (validate_insecure_registry(*r, err) < 0)
            return -1;
    if (set_default(&cfg->data_root, ENGINE_DEFAULT_DATA_ROOT, err) < 0 ||
        set_default(&cfg->pidfile, ENGINE_DEFAULT_PIDFILE, err) < 0 ||
        set_default(&cfg->exec_root, ENGINE_DEFAULT_EXEC_ROOT, err) < 0)
        return -1;
    if (cfg->data_root[0] != '/')
        return merr_set(err, MERR_INVALID, 0, "--data-root '%s' must be an absolute path",
                        cfg->data_root);
    if (cfg->pidfile[0] == '\0')
        return merr_set(err, MERR_INVALID, 0, "--pidfile must not be empty");
    return 0;
}

int engine_config_parse(struct engine_config *cfg, int argc, char *const argv[],
                        struct merr *err)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->log_level = MLOG_INFO;
    cfg->live_restore = true; /* containers outlive the engine unless --live-restore=false */
    int r = 0;
    for (int i = 1; r == 0 && i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--") == 0) {
            if (i + 1 < argc)
                r = merr_set(err, MERR_INVALID, 0, "unexpected argument '%s'", argv[i + 1]);
            break;
        }
        if (arg[0] != '-' || arg[1] == '\0')
            r = merr_set(err, MERR_INVALID, 0, "unexpected argument '%s'", arg);
        else
            r = parse_one(cfg, argc, argv, &i, err);
    }
    if (r == 0 && !cfg->show_help && !cfg->show_version)
        r = validate(cfg, err);
    if (r < 0)
        engine_config_release(cfg);
    return r;
}

void engine_config_release(struct engine_config *cfg)
{
    if (cfg == NULL)
        return;
    cleanup_strvp(&cfg->hosts);
    cleanup_strvp(&cfg->insecure_registries);
    cleanup_strvp(&cfg->registry_mirrors);
    cleanup_strvp(&cfg->labels);
    cleanup_strvp(&cfg->dns);
    cleanup_strvp(&cfg->dns_search);
    cleanup_strvp(&cfg->dns_options);
    cleanup_strvp(&cfg->default_ulimits);
    cleanup_strvp(&cfg->log_opts);
    free(cfg->data_root);
    free(cfg->pidfile);
    free(cfg->exec_root);
    free(cfg->bridge);
    free(cfg->bip);
    free(cfg->default_address_pool);
    free(cfg->tlscacert);
    free(cfg->tlscert);
    free(cfg->tlskey);
    free(cfg->storage_driver);
    free(cfg->log_driver);
    memset(cfg, 0, sizeof *cfg);
}
