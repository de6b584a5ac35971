/* Outbound NAT for the engine's networks. Two backends behind one small vtable: nftables
 * through libnftables (opened for each transaction) with a table of our own (cleanup = delete the table), or iptables
 * commands with a chain of our own where nft is not usable. Rule texts come from pure
 * builders; the backends only run them. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdarg.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "command.h"
#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "strv.h"
#include "network-priv.h"

/* ---- pure builders ---- */

static char *append(char *s, char *more)
{
    char *t = xasprintf("%s%s", s, more);
    free(s);
    free(more);
    return t;
}

/* Like dockerd's bridge driver: a network's containers do not reach another network's, and an
 * internal network's reach nothing beyond their bridge. Empty when no rule is needed. */
static char *nft_forward_rules(const struct net_fw_net *nets, size_t n)
{
    char *s = xstrdup("");
    for (size_t i = 0; i < n; i++) {
        const char *br = nets[i].bridge;
        if (nets[i].internal) {
            s = append(s, xasprintf("\t\tiifname \"%s\" oifname != \"%s\" drop\n", br, br));
            s = append(s, xasprintf("\t\toifname \"%s\" iifname != \"%s\" drop\n", br, br));
            continue;
        }
        char *others = xstrdup("");
        for (size_t k = 0; k < n; k++)
            if (k != i && !nets[k].internal)
                others = append(others, xasprintf("%s\"%s\"", others[0] != '\0' ? ", " : "",
                                                  nets[k].bridge));
        if (others[0] != '\0')
            s = append(s, xasprintf("\t\tiifname \"%s\" oifname { %s } drop\n", br, others));
        free(others);
    }
    return s;
}

char *net_fw_nft_script(const struct net_fw_net *nets, size_t n)
{
    /* "add" then "delete" makes the delete succeed whether or not the table exists; the whole
     * buffer is one transaction, so the rules are never half there. */
    char *s = xstrdup("add table ip " NET_FW_TABLE "\ndelete table ip " NET_FW_TABLE "\n");
    if (n == 0)
        return s;
    s = append(s, xstrdup("table ip " NET_FW_TABLE " {\n"
                          "\tchain postrouting {\n"
                          "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"));
    for (size_t i = 0; i < n; i++)
        if (!nets[i].internal)
            s = append(s, xasprintf("\t\tip saddr %s oifname != \"%s\" masquerade\n",
                                    nets[i].subnet, nets[i].bridge));
    s = append(s, xstrdup("\t}\n"));
    char *fwd = nft_forward_rules(nets, n);
    if (fwd[0] != '\0')
        s = append(s, xasprintf("\tchain forward {\n"
                                "\t\ttype filter hook forward priority filter; policy accept;\n"
                                "%s\t}\n",
                                fwd));
    free(fwd);
    return append(s, xstrdup("}\n"));
}

static char **argv_of(const char *first, ...)
{
    char **v = NULL;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a != NULL; a = va_arg(ap, const char *))
        v = strv_push(v, a);
    va_end(ap);
    return v;
}

static char ***argvv_push(char ***vv, size_t *n, char **argv)
{
    char ***g = realloc(vv, (*n + 2) * sizeof *g);
    if (g == NULL)
        abort();
    g[(*n)++] = argv;
    g[*n] = NULL;
    return g;
}

void net_argvv_free(char ***v)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++)
        strv_free(v[i]);
    free(v);
}

char ***net_fw_iptables_setup(const struct net_fw_net *nets, size_t n)
{
    char ***vv = NULL;
    size_t k = 0;
    vv = argvv_push(vv, &k, argv_of("?iptables", "-w", "-t", "nat", "-N", NET_FW_CHAIN, NULL));
    vv = argvv_push(vv, &k, argv_of("iptables", "-w", "-t", "nat", "-F", NET_FW_CHAIN, NULL));
    /* -C fails when the jump is missing: then -A adds it (run_all skips -A after a good -C) */
    vv = argvv_push(vv, &k, argv_of("?iptables", "-w", "-t", "nat", "-C", "POSTROUTING", "-j",
                                    NET_FW_CHAIN, NULL));
    vv = argvv_push(vv, &k, argv_of("iptables", "-w", "-t", "nat", "-A", "POSTROUTING", "-j",
                                    NET_FW_CHAIN, NULL));
    for (size_t i = 0; i < n; i++) {
        if (nets[i].internal)
            continue;
        vv = argvv_push(vv, &k, argv_of("iptables", "-w", "-t", "nat", "-A", NET_FW_CHAIN, "-s",
                                        nets[i].subnet, "!", "-o", nets[i].bridge, "-j",
                                        "MASQUERADE", NULL));
    }
    return vv;
}

char ***net_fw_iptables_teardown(void)
{
    char ***vv = NULL;
    size_t k = 0;
    vv = argvv_push(vv, &k, argv_of("?iptables", "-w", "-t", "nat", "-D", "POSTROUTING", "-j",
                                    NET_FW_CHAIN, NULL));
    vv = argvv_push(vv, &k, argv_of("?iptables", "-w", "-t", "nat", "-F", NET_FW_CHAIN, NULL));
    vv = argvv_push(vv, &k, argv_of("?iptables", "-w", "-t", "nat", "-X", NET_FW_CHAIN, NULL));
    return vv;
}

#define IPT_FILTER(...) argv_of("iptables", "-w", "-t", "filter", __VA_ARGS__, NULL)
#define IPT_FILTER_OPT(...) argv_of("?iptables", "-w", "-t", "filter", __VA_ARGS__, NULL)

char ***net_fw_iptables_forward_setup(const struct net_fw_net *nets, size_t n)
{
    char ***vv = NULL;
    size_t k = 0;
    vv = argvv_push(vv, &k, IPT_FILTER_OPT("-N", NET_FW_FWD_CHAIN));
    vv = argvv_push(vv, &k, IPT_FILTER("-F", NET_FW_FWD_CHAIN));
    vv = argvv_push(vv, &k, IPT_FILTER_OPT("-C", "FORWARD", "-j", NET_FW_FWD_CHAIN));
    vv = argvv_push(vv, &k, IPT_FILTER("-I", "FORWARD", "1", "-j", NET_FW_FWD_CHAIN));
    /* the drops first (isolation, internal networks), then what our bridges may send */
    for (size_t i = 0; i < n; i++) {
        const char *br = nets[i].bridge;
        if (nets[i].internal) {
            vv = argvv_push(vv, &k, IPT_FILTER("-A", NET_FW_FWD_CHAIN, "-i", br, "!", "-o", br, "-j", "DROP"));
            vv = argvv_push(vv, &k, IPT_FILTER("-A", NET_FW_FWD_CHAIN, "-o", br, "!", "-i", br, "-j", "DROP"));
            continue;
        }
        for (size_t j = 0; j < n; j++)
            if (j != i && !nets[j].internal)
                vv = argvv_push(vv, &k, IPT_FILTER("-A", NET_FW_FWD_CHAIN, "-i", br, "-o",
                                                   nets[j].bridge, "-j", "DROP"));
    }
    for (size_t i = 0; i < n; i++) {
        const char *br = nets[i].bridge;
        vv = argvv_push(vv, &k, IPT_FILTER("-A", NET_FW_FWD_CHAIN, "-i", br, "-o", br, "-j", "ACCEPT"));
        if (nets[i].internal)
            continue;
        vv = argvv_push(vv, &k, IPT_FILTER("-A", NET_FW_FWD_CHAIN, "-i", br, "-j", "ACCEPT"));
        vv = argvv_push(vv, &k, IPT_FILTER("-A", NET_FW_FWD_CHAIN, "-o", br, "-m", "conntrack",
                                           "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"));
    }
    return vv;
}

char ***net_fw_iptables_forward_teardown(void)
{
    char ***vv = NULL;
    size_t k = 0;
    vv = argvv_push(vv, &k, IPT_FILTER_OPT("-D", "FORWARD", "-j", NET_FW_FWD_CHAIN));
    vv = argvv_push(vv, &k, IPT_FILTER_OPT("-F", NET_FW_FWD_CHAIN));
    vv = argvv_push(vv, &k, IPT_FILTER_OPT("-X", NET_FW_FWD_CHAIN));
    return vv;
}

bool net_fw_forward_blocked(const char *rules, bool *ours)
{
    bool drop = false;
    *ours = false;
    const char *p = rules != NULL ? rules : "";
    while (*p != '\0') {
        size_t len = strcspn(p, "\n");
        if (len == strlen("-P FORWARD DROP") && strncmp(p, "-P FORWARD DROP", len) == 0)
            drop = true;
        static const char jump[] = "-A FORWARD -j " NET_FW_FWD_CHAIN;
        if (len == strlen(jump) && strncmp(p, jump, len) == 0)
            *ours = true;
        p += len + (p[len] == '\n');
    }
    return drop;
}

/* ---- backends ---- */

struct fw_ops {
    const char *name;
    int (*apply)(struct net_fw *fw, const struct net_fw_net *nets, size_t n, struct merr *err);
    int (*clear)(struct net_fw *fw, struct merr *err);
};

struct net_fw {
    const struct fw_ops *ops;
    const struct mlog *log;
    const char *iptables;     /* its path, NULL when not installed */
    struct cmd_runner runner; /* zero: the real one */
};

/* libnftables (with libnftnl, libgmp, libxtables: 1.5 MiB resident, plus its caches) is
 * opened for each transaction and closed after it: an idle engine does not carry it. */
#define NFT_SONAME "libnftables.so.1"

struct nft_api {
    void *handle;
    struct nft_ctx *(*ctx_new)(uint32_t flags);
    void (*ctx_free)(struct nft_ctx *ctx);
    int (*buffer_output)(struct nft_ctx *ctx);
    int (*buffer_error)(struct nft_ctx *ctx);
    const char *(*get_error_buffer)(struct nft_ctx *ctx);
    int (*run_cmd_from_buffer)(struct nft_ctx *ctx, const char *buf);
};

static int nft_api_load(struct nft_api *a, struct merr *err)
{
    memset(a, 0, sizeof *a);
    a->handle = dlopen(NFT_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (a->handle == NULL)
        return merr_set(err, MERR_UNSUPPORTED, 0, "cannot load %s: %s", NFT_SONAME, dlerror());
    struct {
        const char *name;
        void **slot;
    } syms[] = {
        { "nft_ctx_new", (void **)&a->ctx_new },
        { "nft_ctx_free", (void **)&a->ctx_free },
        { "nft_ctx_buffer_output", (void **)&a->buffer_output },
        { "nft_ctx_buffer_error", (void **)&a->buffer_error },
        { "nft_ctx_get_error_buffer", (void **)&a->get_error_buffer },
        { "nft_run_cmd_from_buffer", (void **)&a->run_cmd_from_buffer },
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++)
        if ((*syms[i].slot = dlsym(a->handle, syms[i].name)) == NULL) {
            dlclose(a->handle);
            a->handle = NULL;
            return merr_set(err, MERR_UNSUPPORTED, 0, "%s has no %s", NFT_SONAME, syms[i].name);
        }
    return 0;
}

/* Runs script as one nft transaction. */
static int nft_exec(const char *script, struct merr *err)
{
    struct nft_api a;
    if (nft_api_load(&a, err) < 0)
        return -1;
    int rc = 0;
    struct nft_ctx *ctx = a.ctx_new(NFT_CTX_DEFAULT);
    if (ctx == NULL) {
        rc = merr_set(err, MERR_UNSUPPORTED, 0, "cannot create an nftables context");
    } else {
        a.buffer_output(ctx);
        a.buffer_error(ctx);
        if (a.run_cmd_from_buffer(ctx, script) != 0) {
            const char *msg = a.get_error_buffer(ctx);
            char first[256];
            snprintf(first, sizeof first, "%s", msg != NULL ? msg : "");
            first[strcspn(first, "\n")] = '\0';
            rc = merr_set(err, MERR_IO, 0, "nftables refused the rules: %s", first);
        }
        a.ctx_free(ctx);
    }
    dlclose(a.handle);
    malloc_trim(0); /* its caches go back to the system */
    return rc;
}

static int nft_run(struct net_fw *fw, const char *script, struct merr *err)
{
    (void)fw;
    return nft_exec(script, err);
}

static int nft_apply(struct net_fw *fw, const struct net_fw_net *nets, size_t n, struct merr *err)
{
    auto_free char *script = net_fw_nft_script(nets, n);
    return nft_run(fw, script, err);
}

static int nft_clear(struct net_fw *fw, struct merr *err)
{
    auto_free char *script = net_fw_nft_script(NULL, 0);
    return nft_run(fw, script, err);
}

#define CAPTURE_MAX (256u * 1024)

/* Runs an iptables command; with out, its standard output (at most CAPTURE_MAX) is returned
 * there. */
static int run_capture(struct net_fw *fw, char *const *argv, char **out)
{
    struct cmd_spec spec = { .path = fw->iptables, .argv = argv, .timeout_ms = 60000,
                             .out_max = out != NULL ? CAPTURE_MAX : 0, .err_max = 4096 };
    struct cmd_result res;
    struct merr err = MERR_INIT;
    int r = cmd_run(&fw->runner, &spec, &res, &err);
    if (out != NULL)
        *out = res.out.data != NULL ? steal_pointer(&res.out.data) : xstrdup("");
    cmd_result_release(&res);
    return r;
}

static const char *iptables_binary(void)
{
    static const char *const paths[] = { "/usr/sbin/iptables", "/sbin/iptables", "/usr/bin/iptables" };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        if (access(paths[i], X_OK) == 0)
            return paths[i];
    return NULL;
}

static int run_all(struct net_fw *fw, char ***vv, struct merr *err)
{
    if (fw->iptables == NULL)
        return merr_set(err, MERR_NOT_FOUND, 0, "cannot find 'iptables'");
    bool skip_next = false;
    for (size_t i = 0; vv[i] != NULL; i++) {
        if (skip_next) {
            skip_next = false;
            continue;
        }
        bool optional = vv[i][0][0] == '?';
        char *saved = vv[i][0];
        vv[i][0] = (char *)"iptables";
        int r = run_capture(fw, vv[i], NULL);
        vv[i][0] = saved;
        bool is_check = strcmp(vv[i][4], "-C") == 0;
        if (is_check && r == 0)
            skip_next = true; /* the jump exists */
        if (r < 0 && !optional)
            return merr_set(err, MERR_IO, 0, "'iptables %s %s %s' failed", vv[i][3], vv[i][4],
                            vv[i][5]);
    }
    return 0;
}

static int ipt_apply(struct net_fw *fw, const struct net_fw_net *nets, size_t n, struct merr *err)
{
    char ***vv = net_fw_iptables_setup(nets, n);
    int r = run_all(fw, vv, err);
    net_argvv_free(vv);
    return r;
}

static int ipt_clear(struct net_fw *fw, struct merr *err)
{
    char ***vv = net_fw_iptables_teardown();
    int r = run_all(fw, vv, err);
    net_argvv_free(vv);
    return r;
}

static int none_apply(struct net_fw *fw, const struct net_fw_net *nets, size_t n, struct merr *err)
{
    return 0;
}

static int none_clear(struct net_fw *fw, struct merr *err)
{
    return 0;
}

static const struct fw_ops nft_ops = { .name = "nftables", .apply = nft_apply, .clear = nft_clear };
static const struct fw_ops ipt_ops = { .name = "iptables", .apply = ipt_apply, .clear = ipt_clear };
static const struct fw_ops none_ops = { .name = "none", .apply = none_apply, .clear = none_clear };

struct net_fw *net_fw_new(const struct mlog *log)
{
    struct net_fw *fw = xcalloc(1, sizeof *fw);
    fw->log = log;
    fw->iptables = iptables_binary(); /* the FORWARD chain uses it with either backend */
    struct merr ignored;
    if (nft_exec("list tables ip", &ignored) == 0) {
        fw->ops = &nft_ops;
        return fw;
    }
    fw->ops = fw->iptables != NULL ? &ipt_ops : &none_ops;
    return fw;
}

struct net_fw *net_fw_new_iptables(const struct mlog *log, const struct cmd_runner *runner)
{
    struct net_fw *fw = xcalloc(1, sizeof *fw);
    fw->log = log;
    fw->iptables = "/usr/sbin/iptables";
    fw->runner = *runner;
    fw->ops = &ipt_ops;
    return fw;
}

const char *net_fw_name(const struct net_fw *fw)
{
    return fw->ops->name;
}

/* The iptables filter chain that lets our bridges' traffic past a FORWARD policy of DROP
 * (dockerd's, a host firewall's): installed while the policy is DROP, always with the
 * iptables backend (its isolation rules live there), removed otherwise. Failures are
 * warnings: NAT and isolation do not depend on it. */
static void forward_sync(struct net_fw *fw, const struct net_fw_net *nets, size_t n)
{
    if (fw->iptables == NULL)
        return;
    char *const list[] = { "iptables", "-w", "-t", "filter", "-S", "FORWARD", NULL };
    auto_free char *rules = NULL;
    if (run_capture(fw, list, &rules) < 0 && fw->ops != &ipt_ops)
        return; /* no filter table: nothing blocks */
    bool ours = false;
    bool blocked = net_fw_forward_blocked(rules, &ours);
    bool install = n > 0 && (blocked || fw->ops == &ipt_ops);
    if (!install && !ours)
        return;
    char ***vv = install ? net_fw_iptables_forward_setup(nets, n) : net_fw_iptables_forward_teardown();
    struct merr err = MERR_INIT;
    if (run_all(fw, vv, &err) < 0)
        mlog_warn(fw->log, "forwarding rules for the engine's networks: %s", err.msg);
    net_argvv_free(vv);
}

int net_fw_apply(struct net_fw *fw, const struct net_fw_net *nets, size_t n, struct merr *err)
{
    int r = fw->ops->apply(fw, nets, n, err);
    forward_sync(fw, nets, n);
    return r;
}

int net_fw_clear(struct net_fw *fw, struct merr *err)
{
    forward_sync(fw, NULL, 0);
    return fw->ops->clear(fw, err);
}

void net_fw_free(struct net_fw *fw)
{
    if (fw == NULL)
        return;
    free(fw);
}
