/* Pure parsers of the runtime: mountinfo, /proc/PID/cgroup, /proc/PID/stat,
 * cgroup key-value files, /etc/passwd and /etc/group. They take buffers so the
 * unit tests feed them captured samples instead of a real /proc. */
#include "runtime-priv.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define CGROUP2_MAGIC 0x63677270UL
#define TMPFS_MAGIC_VALUE 0x01021994UL
#define CGROUP_V1_MAGIC 0x27e0ebUL

int rt_decode_status(int wstatus)
{
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus))
        return 128 + WTERMSIG(wstatus);
    return 128; /* stopped/continued: not an exit, report something non-zero */
}

bool rt_id_valid(const char *id)
{
    if (id == NULL || !isalnum((unsigned char)id[0]))
        return false;
    size_t n = 0;
    for (const char *p = id; *p != '\0'; p++, n++) {
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-')
            return false;
    }
    return n <= RT_ID_MAX;
}

/* Splits off the next space-separated field, NUL-terminating it. */
static char *next_field(char **p)
{
    char *s = *p;
    while (*s == ' ')
        s++;
    if (*s == '\0')
        return NULL;
    char *start = s;
    while (*s != ' ' && *s != '\0')
        s++;
    if (*s == ' ')
        *s++ = '\0';
    *p = s;
    return start;
}

/* Decodes mountinfo's \ooo escapes in place. */
static void unescape_octal(char *s)
{
    char *w = s;
    for (char *r = s; *r != '\0'; r++) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)(((r[1] - '0') << 6) | ((r[2] - '0') << 3) | (r[3] - '0'));
            r += 3;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

static int parse_mountinfo_line(char *line, struct rt_mountinfo *out)
{
    char *p = line;
    char *f[6];
    for (int i = 0; i < 6; i++) {
        f[i] = next_field(&p);
        if (f[i] == NULL)
            return -1;
    }
    char *end;
    errno = 0;
    unsigned long id = strtoul(f[0], &end, 10);
    if (*end != '\0' || errno != 0 || id > UINT_MAX)
        return -1;
    unsigned long parent = strtoul(f[1], &end, 10);
    if (*end != '\0' || errno != 0 || parent > UINT_MAX)
        return -1;
    unsigned major, minor;
    char extra;
    if (sscanf(f[2], "%u:%u%c", &major, &minor, &extra) != 2)
        return -1;
    /* Optional fields ("shared:1 master:2") end with a lone "-". */
    char *sep;
    while ((sep = next_field(&p)) != NULL && strcmp(sep, "-") != 0)
        ;
    if (sep == NULL)
        return -1;
    char *fstype = next_field(&p);
    char *source = next_field(&p);
    char *super = next_field(&p);
    if (fstype == NULL || source == NULL || super == NULL)
        return -1;
    unescape_octal(f[3]);
    unescape_octal(f[4]);
    unescape_octal(source);
    *out = (struct rt_mountinfo){
        .id = (unsigned)id,
        .parent_id = (unsigned)parent,
        .major = major,
        .minor = minor,
        .root = f[3],
        .mount_point = f[4],
        .mount_options = f[5],
        .fstype = fstype,
        .source = source,
        .super_options = super,
    };
    return 0;
}

/* Cuts the next line out of *cursor. */
static char *next_line(char **cursor)
{
    char *s = *cursor;
    if (s == NULL || *s == '\0')
        return NULL;
    char *nl = strchr(s, '\n');
    if (nl != NULL) {
        *nl = '\0';
        *cursor = nl + 1;
    } else {
        *cursor = s + strlen(s);
    }
    return s;
}

int rt_mountinfo_next(char **cursor, struct rt_mountinfo *out, struct merr *err)
{
    char *line;
    do {
        line = next_line(cursor);
        if (line == NULL)
            return 0;
    } while (line[0] == '\0');
    if (parse_mountinfo_line(line, out) < 0)
        return merr_set(err, MERR_CORRUPT, 0, "malformed mountinfo line");
    return 1;
}

bool rt_option_present(const char *options, const char *opt)
{
    size_t n = strlen(opt);
    for (const char *p = options; p != NULL && *p != '\0';) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (len == n && strncmp(p, opt, n) == 0)
            return true;
        p = comma != NULL ? comma + 1 : NULL;
    }
    return false;
}

/* Whether path is root itself or directly below it. */
static bool is_direct_child(const char *path, const char *root)
{
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/')
        n--;
    if (strncmp(path, root, n) != 0 || path[n] != '/' || path[n + 1] == '\0')
        return false;
    return strchr(path + n + 1, '/') == NULL;
}

/* Keeps only controller names from a v1 super-options list ("rw,cpu,cpuacct"). */
static void controllers_from_options(const char *options, char *out, size_t size)
{
    static const char *const not_controllers[] = { "rw", "ro", "relatime", "noatime", "nosuid",
                                                   "nodev", "noexec", "xattr", "clone_children",
                                                   "noprefix", "cpuset_v2_mode", NULL };
    out[0] = '\0';
    size_t used = 0;
    for (const char *p = options; p != NULL && *p != '\0';) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        bool skip = memchr(p, '=', len) != NULL && strncmp(p, "name=", 5) != 0;
        for (int i = 0; !skip && not_controllers[i] != NULL; i++)
            skip = strlen(not_controllers[i]) == len && strncmp(p, not_controllers[i], len) == 0;
        if (!skip && used + len + 2 < size) {
            if (used > 0)
                out[used++] = ',';
            memcpy(out + used, p, len);
            used += len;
            out[used] = '\0';
        }
        p = comma != NULL ? comma + 1 : NULL;
    }
}

int rt_cg_hierarchies_parse(char *mountinfo, const char *cgroup_root, struct rt_cg_hierarchy *out,
                            size_t max, char *unified, size_t unified_size, struct merr *err)
{
    char *cursor = mountinfo;
    struct rt_mountinfo m;
    size_t n = 0;
    int r;
    unified[0] = '\0';
    while ((r = rt_mountinfo_next(&cursor, &m, err)) > 0) {
        if (!is_direct_child(m.mount_point, cgroup_root))
            continue;
        if (strcmp(m.fstype, "cgroup2") == 0) {
            snprintf(unified, unified_size, "%s", m.mount_point);
            continue;
        }
        if (strcmp(m.fstype, "cgroup") != 0)
            continue;
        if (n == max)
            return merr_set(err, MERR_UNSUPPORTED, 0, "too many cgroup hierarchies under '%s'",
                            cgroup_root);
        if (strlen(m.mount_point) >= sizeof out[n].mount_point)
            return merr_set(err, MERR_INVALID, 0, "cgroup mount point '%s' too long",
                            m.mount_point);
        snprintf(out[n].mount_point, sizeof out[n].mount_point, "%s", m.mount_point);
        controllers_from_options(m.super_options, out[n].controllers, sizeof out[n].controllers);
        n++;
    }
    if (r < 0)
        return -1;
    return (int)n;
}

bool rt_mountinfo_has_mount_point(char *mountinfo, const char *path)
{
    char *cursor = mountinfo;
    struct rt_mountinfo m;
    while (rt_mountinfo_next(&cursor, &m, NULL) > 0) {
        if (strcmp(m.mount_point, path) == 0)
            return true;
    }
    return false;
}

int rt_proc_cgroup_next(char **cursor, struct rt_proc_cgroup *out, struct merr *err)
{
    char *line;
    do {
        line = next_line(cursor);
        if (line == NULL)
            return 0;
    } while (line[0] == '\0');
    char *c1 = strchr(line, ':');
    char *c2 = c1 != NULL ? strchr(c1 + 1, ':') : NULL;
    if (c2 == NULL || c1 == line)
        return merr_set(err, MERR_CORRUPT, 0, "malformed /proc cgroup line");
    *c1 = '\0';
    *c2 = '\0';
    char *end;
    errno = 0;
    unsigned long id = strtoul(line, &end, 10);
    if (*end != '\0' || errno != 0 || id > UINT_MAX || c2[1] != '/')
        return merr_set(err, MERR_CORRUPT, 0, "malformed /proc cgroup line");
    *out = (struct rt_proc_cgroup){ .hierarchy_id = (unsigned)id,
                                    .controllers = c1 + 1,
                                    .path = c2 + 1 };
    return 1;
}

char *rt_proc_cgroup_path(const char *buf, const char *controller)
{
    auto_free char *copy = strdup(buf);
    if (copy == NULL)
        return NULL;
    char *cursor = copy;
    struct rt_proc_cgroup e;
    while (rt_proc_cgroup_next(&cursor, &e, NULL) > 0) {
        bool match = controller[0] == '\0'
                         ? e.hierarchy_id == 0 && e.controllers[0] == '\0'
                         : rt_option_present(e.controllers, controller);
        if (match)
            return strdup(e.path);
    }
    return NULL;
}

int rt_proc_stat_parse(const char *buf, char *state, uint64_t *start_time, struct merr *err)
{
    /* comm (field 2) may hold spaces and parentheses: fields resume after the
     * LAST ')'. */
    const char *rparen = strrchr(buf, ')');
    if (rparen == NULL || rparen[1] != ' ')
        return merr_set(err, MERR_CORRUPT, 0, "malformed /proc stat");
    const char *p = rparen + 2;
    /* p is at field 3 (state); starttime is field 22, 19 fields later. */
    if (*p == '\0' || p[1] != ' ')
        return merr_set(err, MERR_CORRUPT, 0, "malformed /proc stat");
    *state = *p;
    for (int field = 3; field < 22; field++) {
        p = strchr(p, ' ');
        if (p == NULL)
            return merr_set(err, MERR_CORRUPT, 0, "truncated /proc stat");
        p++;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(p, &end, 10);
    if (end == p || errno != 0 || (*end != ' ' && *end != '\n' && *end != '\0'))
        return merr_set(err, MERR_CORRUPT, 0, "malformed starttime in /proc stat");
    *start_time = v;
    return 0;
}

int rt_kv_lookup(const char *buf, const char *key, uint64_t *out)
{
    size_t n = strlen(key);
    for (const char *p = buf; p != NULL && *p != '\0';) {
        if (strncmp(p, key, n) == 0 && p[n] == ' ') {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(p + n + 1, &end, 10);
            if (end == p + n + 1 || errno != 0 || (*end != '\n' && *end != '\0'))
                return -1;
            *out = v;
            return 0;
        }
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return -1;
}

int rt_cgroup_mode_detect(unsigned long root_fstype, unsigned long unified_fstype,
                          enum rt_cgroup_mode *out, struct merr *err)
{
    if (root_fstype == CGROUP2_MAGIC) {
        *out = RT_CGROUP_V2;
        return 0;
    }
    if (root_fstype != TMPFS_MAGIC_VALUE && root_fstype != CGROUP_V1_MAGIC)
        return merr_set(err, MERR_UNSUPPORTED, 0, "cgroup root is neither tmpfs nor cgroup2");
    *out = unified_fstype == CGROUP2_MAGIC ? RT_CGROUP_HYBRID : RT_CGROUP_V1;
    return 0;
}

/* The two functions the weight needs, here rather than libm: libm is 300 KiB of an idle
 * engine's resident memory for this one formula. Both are exact to about 1e-15 over the
 * range used (checked against libm by the unit test). */
#define LN2 0.69314718055994530942
#define LN10 2.30258509299404568402

/* log2(x) for x >= 1: x = 2^k * m, m in [1, 2); ln m = 2 atanh(z), z = (m - 1) / (m + 1). */
static double log2_u64(uint64_t x)
{
    int k = 63 - __builtin_clzll(x);
    double m = (double)x / (double)(1ULL << k);
    double z = (m - 1.0) / (m + 1.0), z2 = z * z, term = z, sum = 0.0;
    for (int i = 1; i < 60; i += 2) {
        sum += term / i;
        term *= z2;
    }
    return k + 2.0 * sum / LN2;
}

/* e^y for |y| < 40: y = n ln2 + r, |r| <= ln2 / 2, e^r by its series, times 2^n. */
static double exp_small(double y)
{
    int n = (int)(y / LN2 + (y >= 0 ? 0.5 : -0.5));
    double r = y - n * LN2, term = 1.0, sum = 1.0;
    for (int i = 1; i < 30; i++) {
        term *= r / i;
        sum += term;
    }
    for (; n > 0; n--)
        sum *= 2.0;
    for (; n < 0; n++)
        sum /= 2.0;
    return sum;
}

uint64_t rt_shares_to_weight(uint64_t shares)
{
    if (shares == 0)
        return 0;
    if (shares <= 2)
        return 1;
    if (shares >= 262144)
        return 10000;
    /* log10(weight) = (l^2 + 125 l) / 612 - 7/34 with l = log2(shares): the
     * parabola through (1, 0), (10, 2), (18, 4). */
    double l = log2_u64(shares);
    double w = exp_small(((l * l + 125.0 * l) / 612.0 - 7.0 / 34.0) * LN10);
    uint64_t r = (uint64_t)(w + 0.5);
    return r < 1 ? 1 : r > 10000 ? 10000 : r;
}

void rt_cpu_quota_period(const struct rt_resources *res, int64_t *quota, uint64_t *period)
{
    *quota = -1;
    *period = 0;
    if (res->nano_cpus > 0) {
        *period = 100000;
        *quota = res->nano_cpus / 10000; /* nano_cpus * 100000 us / 1e9 */
        if (*quota < 1000)
            *quota = 1000; /* the kernel's minimum quota */
        return;
    }
    if (res->cpu_period > 0)
        *period = (uint64_t)res->cpu_period;
    if (res->cpu_quota > 0)
        *quota = res->cpu_quota;
}

int64_t rt_memsw_limit(const struct rt_resources *res)
{
    if (res->memory <= 0)
        return res->memory_swap > 0 ? res->memory_swap : 0;
    if (res->memory_swap == 0)
        return res->memory; /* docker: no swap beyond the memory limit */
    if (res->memory_swap < 0)
        return -1;
    return res->memory_swap;
}

int64_t rt_swap_only_limit(const struct rt_resources *res)
{
    if (res->memory <= 0)
        return -2;
    if (res->memory_swap == 0)
        return 0;
    if (res->memory_swap < 0)
        return -1;
    return res->memory_swap > res->memory ? res->memory_swap - res->memory : 0;
}

/* ---- /etc/passwd and /etc/group ---------------------------------------- */

static bool parse_id(const char *s, size_t len, uint32_t *out)
{
    if (len == 0 || len > 10)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > INT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

/* Splits a colon-separated line into at most max fields (ptr+len). */
struct field {
    const char *s;
    size_t len;
};
static size_t split_colon(const char *line, size_t line_len, struct field *f, size_t max)
{
    size_t n = 0;
    const char *p = line, *end = line + line_len;
    while (n < max) {
        const char *c = memchr(p, ':', (size_t)(end - p));
        f[n].s = p;
        f[n].len = c != NULL ? (size_t)(c - p) : (size_t)(end - p);
        n++;
        if (c == NULL)
            break;
        p = c + 1;
    }
    return n;
}

static bool field_eq(const struct field *f, const char *s)
{
    return strlen(s) == f->len && strncmp(f->s, s, f->len) == 0;
}

struct pw_entry {
    struct field name, home;
    uint32_t uid, gid;
};

/* Finds a passwd entry by name (when name != NULL) or by uid. */
static bool passwd_find(const char *passwd, const char *name, uint32_t uid, struct pw_entry *out)
{
    for (const char *p = passwd; p != NULL && *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
        struct field f[7];
        if (len > 0 && p[0] != '#' && split_colon(p, len, f, 7) == 7) {
            uint32_t u, g;
            if (parse_id(f[2].s, f[2].len, &u) && parse_id(f[3].s, f[3].len, &g) &&
                (name != NULL ? field_eq(&f[0], name) : u == uid)) {
                *out = (struct pw_entry){ .name = f[0], .home = f[5], .uid = u, .gid = g };
                return true;
            }
        }
        p = nl != NULL ? nl + 1 : NULL;
    }
    return false;
}

static bool group_find(const char *group, const char *name, uint32_t *gid)
{
    for (const char *p = group; p != NULL && *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
        struct field f[4];
        if (len > 0 && p[0] != '#' && split_colon(p, len, f, 4) >= 3 && field_eq(&f[0], name) &&
            parse_id(f[2].s, f[2].len, gid))
            return true;
        p = nl != NULL ? nl + 1 : NULL;
    }
    return false;
}

static bool member_of(const struct field *members, const struct field *user)
{
    const char *p = members->s, *end = members->s + members->len;
    while (p < end) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        size_t len = c != NULL ? (size_t)(c - p) : (size_t)(end - p);
        if (len == user->len && strncmp(p, user->s, len) == 0)
            return true;
        p = c != NULL ? c + 1 : end;
    }
    return false;
}

/* Supplementary groups: every /etc/group entry listing the user by name. */
static int collect_groups(const char *group, const struct field *user, struct rt_user *out,
                          struct merr *err)
{
    for (const char *p = group; p != NULL && *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
        struct field f[4];
        uint32_t gid;
        if (len > 0 && p[0] != '#' && split_colon(p, len, f, 4) == 4 && member_of(&f[3], user) &&
            parse_id(f[2].s, f[2].len, &gid)) {
            bool dup = gid == out->gid;
            for (size_t i = 0; i < out->n_additional_gids && !dup; i++)
                dup = out->additional_gids[i] == gid;
            if (!dup) {
                if (out->n_additional_gids == RT_USER_MAX_GROUPS)
                    return merr_set(err, MERR_INVALID, 0, "user '%.*s' is in too many groups",
                                    (int)user->len, user->s);
                out->additional_gids[out->n_additional_gids++] = gid;
            }
        }
        p = nl != NULL ? nl + 1 : NULL;
    }
    return 0;
}

int rt_user_resolve(const char *user, const char *passwd, const char *group, struct rt_user *out,
                    struct merr *err)
{
    *out = (struct rt_user){ .uid = 0, .gid = 0 };
    snprintf(out->home, sizeof out->home, "/");
    if (user == NULL)
        user = "";
    char user_part[256], group_part[256] = "";
    const char *colon = strchr(user, ':');
    size_t ulen = colon != NULL ? (size_t)(colon - user) : strlen(user);
    if (ulen >= sizeof user_part || (colon != NULL && strlen(colon + 1) >= sizeof group_part))
        return merr_set(err, MERR_INVALID, 0, "user '%s' is too long", user);
    memcpy(user_part, user, ulen);
    user_part[ulen] = '\0';
    if (colon != NULL) {
        snprintf(group_part, sizeof group_part, "%s", colon + 1);
        if (group_part[0] == '\0' || strchr(group_part, ':') != NULL)
            return merr_set(err, MERR_INVALID, 0, "invalid user '%s'", user);
    }
    if (ulen == 0 && colon != NULL)
        return merr_set(err, MERR_INVALID, 0, "invalid user '%s'", user);
    if (ulen == 0)
        snprintf(user_part, sizeof user_part, "root");

    struct pw_entry pw;
    bool found;
    uint32_t num;
    if (parse_id(user_part, strlen(user_part), &num)) {
        found = passwd != NULL && passwd_find(passwd, NULL, num, &pw);
        out->uid = num;
    } else {
        found = passwd != NULL && passwd_find(passwd, user_part, 0, &pw);
        if (!found && strcmp(user_part, "root") != 0)
            return merr_set(err, MERR_NOT_FOUND, 0, "no user '%s' in the image's /etc/passwd",
                            user_part);
        if (found)
            out->uid = pw.uid;
    }
    if (found) {
        out->gid = pw.gid;
        if (pw.home.len > 0 && pw.home.len < sizeof out->home)
            snprintf(out->home, sizeof out->home, "%.*s", (int)pw.home.len, pw.home.s);
    }

    if (group_part[0] != '\0') {
        /* An explicit group replaces the primary group and, like runc, leaves
         * no supplementary groups from /etc/group. */
        if (parse_id(group_part, strlen(group_part), &num)) {
            out->gid = num;
        } else if (group == NULL || !group_find(group, group_part, &num)) {
            return merr_set(err, MERR_NOT_FOUND, 0, "no group '%s' in the image's /etc/group",
                            group_part);
        } else {
            out->gid = num;
        }
        return 0;
    }
    if (found && group != NULL)
        return collect_groups(group, &pw.name, out, err);
    return 0;
}
