/* A docker seccomp profile (--security-opt seccomp=FILE: the CLI sends the file's JSON) built
 * with libseccomp: defaultAction/defaultErrnoRet, architectures, and syscalls[] with names,
 * action, errnoRet, args and includes/excludes by capability, architecture and minKernel, as
 * moby's profiles/seccomp reads them. An action the engine cannot carry out (notify, trace) is
 * refused. */
#include "runtime-priv.h"

#include <errno.h>
#include <jansson.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

static int action_of(const json_t *name, const json_t *errno_ret, uint32_t *out, struct merr *err)
{
    const char *n = json_string_value(name);
    int e = json_is_integer(errno_ret) ? (int)json_integer_value(errno_ret) : EPERM;
    if (n == NULL)
        return merr_set(err, MERR_INVALID, 0, "seccomp profile: an action is missing");
    if (strcmp(n, "SCMP_ACT_ALLOW") == 0)
        *out = SCMP_ACT_ALLOW;
    else if (strcmp(n, "SCMP_ACT_ERRNO") == 0)
        *out = SCMP_ACT_ERRNO((uint32_t)e);
    else if (strcmp(n, "SCMP_ACT_KILL") == 0 || strcmp(n, "SCMP_ACT_KILL_THREAD") == 0)
        *out = SCMP_ACT_KILL;
    else if (strcmp(n, "SCMP_ACT_KILL_PROCESS") == 0)
        *out = SCMP_ACT_KILL_PROCESS;
    else if (strcmp(n, "SCMP_ACT_TRAP") == 0)
        *out = SCMP_ACT_TRAP;
    else if (strcmp(n, "SCMP_ACT_LOG") == 0)
        *out = SCMP_ACT_LOG;
    else
        return merr_set(err, MERR_INVALID, 0,
                        "seccomp profile: action %s is not supported by machine-engine", n);
    return 0;
}

static int op_of(const char *n, enum scmp_compare *out)
{
    static const struct {
        const char *name;
        enum scmp_compare op;
    } ops[] = { { "SCMP_CMP_NE", SCMP_CMP_NE }, { "SCMP_CMP_LT", SCMP_CMP_LT },
                { "SCMP_CMP_LE", SCMP_CMP_LE }, { "SCMP_CMP_EQ", SCMP_CMP_EQ },
                { "SCMP_CMP_GE", SCMP_CMP_GE }, { "SCMP_CMP_GT", SCMP_CMP_GT },
                { "SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ } };
    for (size_t i = 0; n != NULL && i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(n, ops[i].name) == 0)
            return *out = ops[i].op, 0;
    return -1;
}

static bool kernel_at_least(const char *want)
{
    struct utsname u;
    unsigned a = 0, b = 0, x = 0, y = 0;
    if (want == NULL || uname(&u) < 0 || sscanf(want, "%u.%u", &a, &b) < 1 ||
        sscanf(u.release, "%u.%u", &x, &y) < 2)
        return true;
    return x > a || (x == a && y >= b);
}

static bool native_arch_listed(const json_t *arches)
{
    if (!json_is_array(arches) || json_array_size(arches) == 0)
        return true;
    size_t i;
    const json_t *a;
    json_array_foreach(arches, i, a) {
        const char *s = json_string_value(a);
        if (s != NULL && (strcmp(s, "amd64") == 0 || strcmp(s, "x86_64") == 0 ||
                          strcmp(s, "SCMP_ARCH_X86_64") == 0))
            return true;
    }
    return false;
}

/* includes.caps: all of them granted; excludes.caps: none of them granted. */
static bool caps_match(const json_t *list, uint64_t caps, bool all)
{
    size_t i;
    const json_t *c;
    json_array_foreach(list, i, c) {
        int v = rt_cap_from_name(json_string_value(c) != NULL ? json_string_value(c) : "");
        bool have = v >= 0 && (caps & (UINT64_C(1) << v));
        if (all && !have)
            return false;
        if (!all && have)
            return true;
    }
    return all;
}

static bool rule_applies(const json_t *rule, uint64_t caps)
{
    const json_t *inc = json_object_get(rule, "includes");
    const json_t *exc = json_object_get(rule, "excludes");
    if (!caps_match(json_object_get(inc, "caps"), caps, true) ||
        !native_arch_listed(json_object_get(inc, "arches")) ||
        !kernel_at_least(json_string_value(json_object_get(inc, "minKernel"))))
        return false;
    if (caps_match(json_object_get(exc, "caps"), caps, false) && json_object_get(exc, "caps"))
        return false;
    const json_t *exa = json_object_get(exc, "arches");
    if (json_is_array(exa) && json_array_size(exa) > 0 && native_arch_listed(exa))
        return false;
    return true;
}

static int add_rule(scmp_filter_ctx ctx, const json_t *rule, uint32_t def, struct merr *err)
{
    uint32_t action;
    if (action_of(json_object_get(rule, "action"), json_object_get(rule, "errnoRet"), &action,
                  err) < 0)
        return -1;
    if (action == def)
        return 0; /* libseccomp refuses rules that repeat the default */
    struct scmp_arg_cmp cmp[6];
    unsigned n_cmp = 0;
    size_t i;
    const json_t *a;
    json_array_foreach(json_object_get(rule, "args"), i, a) {
        enum scmp_compare op;
        const json_t *idx = json_object_get(a, "index");
        if (n_cmp == 6 || !json_is_integer(idx) || json_integer_value(idx) > 5 ||
            op_of(json_string_value(json_object_get(a, "op")), &op) < 0)
            return merr_set(err, MERR_INVALID, 0, "seccomp profile: invalid syscall argument");
        cmp[n_cmp++] = (struct scmp_arg_cmp){
            .arg = (unsigned)json_integer_value(idx), .op = op,
            .datum_a = (scmp_datum_t)json_integer_value(json_object_get(a, "value")),
            .datum_b = (scmp_datum_t)json_integer_value(json_object_get(a, "valueTwo")) };
    }
    json_t *names = json_object_get(rule, "names");
    json_t *one = json_object_get(rule, "name");
    json_t *list = json_is_array(names) ? json_incref(names) : json_pack("[O]", one ? one : json_null());
    const json_t *nm;
    int rc = 0;
    json_array_foreach(list, i, nm) {
        const char *s = json_string_value(nm);
        int nr = s != NULL ? seccomp_syscall_resolve_name(s) : __NR_SCMP_ERROR;
        if (nr == __NR_SCMP_ERROR)
            continue; /* unknown to this libseccomp or architecture, as moby skips it */
        int r = seccomp_rule_add_array(ctx, action, nr, n_cmp, cmp);
        if (r < 0 && r != -EEXIST) {
            rc = merr_set(err, MERR_INVALID, -r, "seccomp profile: cannot add a rule for %s", s);
            break;
        }
    }
    json_decref(list);
    return rc;
}

int rt_seccomp_from_profile(const char *text, uint64_t caps, struct rt_bpf **out,
                            struct merr *err)
{
    *out = NULL;
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    if (!json_is_object(j)) {
        json_decref(j);
        return merr_set(err, MERR_INVALID, 0, "invalid seccomp profile: %s", jerr.text);
    }
    uint32_t def;
    int rc = action_of(json_object_get(j, "defaultAction"), json_object_get(j, "defaultErrnoRet"),
                       &def, err);
    scmp_filter_ctx ctx = rc == 0 ? seccomp_init(def) : NULL;
    if (rc == 0 && ctx == NULL)
        rc = merr_set(err, MERR_INTERNAL, 0, "cannot create a seccomp filter");
    /* 32-bit x86 and x32 calls go through the same filter, as in docker's profile */
    if (rc == 0 && seccomp_arch_native() == SCMP_ARCH_X86_64) {
        (void)seccomp_arch_add(ctx, SCMP_ARCH_X86);
        (void)seccomp_arch_add(ctx, SCMP_ARCH_X32);
    }
    size_t i;
    const json_t *rule;
    json_array_foreach(json_object_get(j, "syscalls"), i, rule) {
        if (rc == 0 && rule_applies(rule, caps))
            rc = add_rule(ctx, rule, def, err);
    }
    if (rc == 0)
        rc = rt_seccomp_export(ctx, out, err);
    if (ctx != NULL)
        seccomp_release(ctx);
    json_decref(j);
    return rc;
}
