/* Device access on cgroup v2: an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE attached to
 * the container's cgroup, assembled by hand from the same allow-list rules the v1 devices
 * controller takes ("c 1:3 rwm", "b *:* m", "a"), as crun does. Default deny: the program
 * answers 1 (allow) when one rule matches the access, 0 otherwise.
 *
 * The kernel runs it for the task's cgroup2 cgroup whether or not v1 controllers are mounted
 * too, so on a hybrid host it backs up the v1 devices controller. */
#include "runtime-priv.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct dev_rule {
    int type;       /* BPF_DEVCG_DEV_CHAR, BPF_DEVCG_DEV_BLOCK, 0 for any */
    int64_t major;  /* -1 for any */
    int64_t minor;  /* -1 for any */
    unsigned access; /* BPF_DEVCG_ACC_* bits */
};

static int parse_num(const char *s, size_t len, int64_t *out)
{
    if (len == 1 && s[0] == '*')
        return *out = -1, 0;
    if (len == 0 || len > 10)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return *out = v, 0;
}

int rt_dev_rule_parse(const char *text, int *type, int64_t *major, int64_t *minor,
                      unsigned *access)
{
    *type = 0;
    *major = *minor = -1;
    *access = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;
    if (strcmp(text, "a") == 0)
        return 0;
    const char *sp1 = strchr(text, ' ');
    const char *colon = sp1 != NULL ? strchr(sp1, ':') : NULL;
    const char *sp2 = colon != NULL ? strchr(colon, ' ') : NULL;
    if (sp1 != text + 1 || colon == NULL || sp2 == NULL || sp2[1] == '\0')
        return -1;
    switch (text[0]) {
    case 'a':
        break;
    case 'c':
        *type = BPF_DEVCG_DEV_CHAR;
        break;
    case 'b':
        *type = BPF_DEVCG_DEV_BLOCK;
        break;
    default:
        return -1;
    }
    if (parse_num(sp1 + 1, (size_t)(colon - sp1 - 1), major) < 0 ||
        parse_num(colon + 1, (size_t)(sp2 - colon - 1), minor) < 0)
        return -1;
    *access = 0;
    for (const char *p = sp2 + 1; *p != '\0'; p++) {
        unsigned bit = *p == 'r' ? BPF_DEVCG_ACC_READ : *p == 'w' ? BPF_DEVCG_ACC_WRITE
                       : *p == 'm'                     ? BPF_DEVCG_ACC_MKNOD
                                                       : 0;
        if (bit == 0)
            return -1;
        *access |= bit;
    }
    return 0;
}

static struct bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
    return (struct bpf_insn){ .code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm };
}

#define LDX_W(dst, src, off) insn(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0)
#define AND32_IMM(dst, imm) insn(BPF_ALU | BPF_AND | BPF_K, dst, 0, 0, imm)
#define RSH32_IMM(dst, imm) insn(BPF_ALU | BPF_RSH | BPF_K, dst, 0, 0, imm)
#define MOV32_REG(dst, src) insn(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0)
#define MOV64_IMM(dst, imm) insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
#define JNE_IMM(dst, imm, off) insn(BPF_JMP | BPF_JNE | BPF_K, dst, 0, off, imm)
#define JNE_REG(dst, src, off) insn(BPF_JMP | BPF_JNE | BPF_X, dst, src, off, 0)
#define EXIT() insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

/* Registers after the prologue: r2 device type, r3 requested access, r4 major, r5 minor. */
static size_t emit_rule(const int type, int64_t major, int64_t minor, unsigned access,
                        struct bpf_insn *out)
{
    struct bpf_insn body[8];
    size_t n = 0;
    /* each test jumps past the rest of this block (filled in below) */
    if (type != 0)
        body[n++] = JNE_IMM(2, type, 0);
    if (access != (BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE)) {
        body[n++] = MOV32_REG(1, 3);
        body[n++] = AND32_IMM(1, (int32_t)access);
        body[n++] = JNE_REG(1, 3, 0); /* some requested access is not in the rule */
    }
    if (major >= 0)
        body[n++] = JNE_IMM(4, (int32_t)major, 0);
    if (minor >= 0)
        body[n++] = JNE_IMM(5, (int32_t)minor, 0);
    body[n++] = MOV64_IMM(0, 1);
    body[n++] = EXIT();
    for (size_t i = 0; i < n; i++) {
        if (BPF_CLASS(body[i].code) == BPF_JMP && BPF_OP(body[i].code) == BPF_JNE)
            body[i].off = (int16_t)(n - i - 1);
        out[i] = body[i];
    }
    return n;
}

int rt_devices_bpf_build(const char *const *const *lists, struct bpf_insn **out, size_t *n_out,
                         struct merr *err)
{
    size_t rules = 0;
    for (size_t l = 0; lists[l] != NULL; l++)
        for (size_t i = 0; lists[l][i] != NULL; i++)
            rules++;
    struct bpf_insn *prog = calloc(6 + rules * 8 + 2, sizeof *prog);
    if (prog == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot build the device program");
    size_t n = 0;
    /* struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; } */
    prog[n++] = LDX_W(2, 1, 0);
    prog[n++] = AND32_IMM(2, 0xFFFF); /* type */
    prog[n++] = LDX_W(3, 1, 0);
    prog[n++] = RSH32_IMM(3, 16); /* access */
    prog[n++] = LDX_W(4, 1, 4);
    prog[n++] = LDX_W(5, 1, 8);
    for (size_t l = 0; lists[l] != NULL; l++) {
        for (size_t i = 0; lists[l][i] != NULL; i++) {
            int type;
            int64_t major, minor;
            unsigned access;
            if (rt_dev_rule_parse(lists[l][i], &type, &major, &minor, &access) < 0) {
                free(prog);
                return merr_set(err, MERR_INVALID, 0, "invalid device cgroup rule '%s'",
                                lists[l][i]);
            }
            n += emit_rule(type, major, minor, access, prog + n);
        }
    }
    prog[n++] = MOV64_IMM(0, 0);
    prog[n++] = EXIT();
    *out = prog;
    *n_out = n;
    return 0;
}

int rt_devices_bpf_attach(const char *cgroup_dir, const char *const *const *lists,
                          struct merr *err)
{
    struct bpf_insn *prog = NULL;
    size_t n = 0;
    if (rt_devices_bpf_build(lists, &prog, &n, err) < 0)
        return -1;
    /* Loaded without a verifier log (a log too small for it fails the load with ENOSPC);
     * only a failed load is retried with one, for the message. */
    union bpf_attr load;
    memset(&load, 0, sizeof load);
    load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    load.insns = (uint64_t)(uintptr_t)prog;
    load.insn_cnt = (uint32_t)n;
    load.license = (uint64_t)(uintptr_t) "Apache";
    int prog_fd = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof load);
    int saved = errno;
    if (prog_fd < 0) {
        auto_free char *log = calloc(1, 1 << 20);
        if (log != NULL) {
            load.log_buf = (uint64_t)(uintptr_t)log;
            load.log_size = 1 << 20;
            load.log_level = 1;
            int again = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof load);
            if (again >= 0)
                close(again);
        }
        free(prog);
        size_t len = log != NULL ? strlen(log) : 0;
        const char *tail = len > 200 ? log + len - 200 : log; /* the verifier's verdict */
        return merr_set(err, MERR_IO, saved, "cannot load the devices cgroup program%s%s",
                        len > 0 ? ": " : "", len > 0 ? tail : "");
    }
    free(prog);
    int cg_fd = open(cgroup_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cg_fd < 0) {
        saved = errno;
        close(prog_fd);
        return merr_set(err, MERR_IO, saved, "cannot open cgroup '%s'", cgroup_dir);
    }
    union bpf_attr attach;
    memset(&attach, 0, sizeof attach);
    attach.target_fd = (uint32_t)cg_fd;
    attach.attach_bpf_fd = (uint32_t)prog_fd;
    attach.attach_type = BPF_CGROUP_DEVICE;
    attach.attach_flags = BPF_F_ALLOW_MULTI;
    int r = (int)syscall(SYS_bpf, BPF_PROG_ATTACH, &attach, sizeof attach);
    saved = errno;
    close(cg_fd);
    close(prog_fd); /* the attachment keeps the program until the cgroup goes */
    if (r < 0)
        return merr_set(err, MERR_IO, saved, "cannot attach the devices program to '%s'",
                        cgroup_dir);
    return 0;
}
