/* Capability sets: docker's names, its default set and its add/drop rules.
 * Names go through libcap; the masks are applied in the container's first
 * process with plain capset()/prctl() (see runtime.c), which need no memory
 * allocation after clone. */
#include "runtime-priv.h"

#include <ctype.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/capability.h>

static const int default_caps[] = {
    CAP_CHOWN,  CAP_DAC_OVERRIDE, CAP_FSETID,           CAP_FOWNER,     CAP_MKNOD,
    CAP_NET_RAW, CAP_SETGID,      CAP_SETUID,           CAP_SETFCAP,    CAP_SETPCAP,
    CAP_NET_BIND_SERVICE,         CAP_SYS_CHROOT,       CAP_KILL,       CAP_AUDIT_WRITE,
};

uint64_t rt_caps_default_mask(void)
{
    uint64_t mask = 0;
    for (size_t i = 0; i < sizeof default_caps / sizeof default_caps[0]; i++)
        mask |= UINT64_C(1) << default_caps[i];
    return mask;
}

int rt_cap_last(void)
{
    int last = (int)cap_max_bits() - 1;
    if (last < CAP_LAST_CAP || last > 63)
        last = CAP_LAST_CAP; /* kernel unknown to libcap: trust our headers */
    return last;
}

bool rt_cap_name_valid(const char *name)
{
    return name != NULL && (strcasecmp(name, "ALL") == 0 || rt_cap_from_name(name) >= 0);
}

int rt_cap_from_name(const char *name)
{
    if (name == NULL || name[0] == '\0')
        return -1;
    char lower[64];
    const char *bare = strncasecmp(name, "CAP_", 4) == 0 ? name + 4 : name;
    int n = snprintf(lower, sizeof lower, "cap_%s", bare);
    if (n < 0 || (size_t)n >= sizeof lower)
        return -1;
    for (char *p = lower; *p != '\0'; p++) {
        if (!isalnum((unsigned char)*p) && *p != '_')
            return -1; /* libcap also accepts "all" and numbers: docker does not */
        *p = (char)tolower((unsigned char)*p);
    }
    cap_value_t v;
    if (cap_from_name(lower, &v) != 0 || v < 0 || v > 63 || isdigit((unsigned char)bare[0]))
        return -1;
    return (int)v;
}

static bool list_has_all(const char *const *list)
{
    for (size_t i = 0; list != NULL && list[i] != NULL; i++) {
        if (strcasecmp(list[i], "ALL") == 0)
            return true;
    }
    return false;
}

static int list_mask(const char *const *list, uint64_t *mask, struct merr *err)
{
    *mask = 0;
    for (size_t i = 0; list != NULL && list[i] != NULL; i++) {
        if (strcasecmp(list[i], "ALL") == 0)
            continue;
        int c = rt_cap_from_name(list[i]);
        if (c < 0)
            return merr_set(err, MERR_INVALID, 0, "unknown capability '%s'", list[i]);
        *mask |= UINT64_C(1) << c;
    }
    return 0;
}

int rt_caps_compute(const struct rt_process *p, uint64_t *mask, struct merr *err)
{
    int last = rt_cap_last();
    uint64_t all = last >= 63 ? UINT64_MAX : (UINT64_C(1) << (last + 1)) - 1;
    if (p->privileged) {
        *mask = all;
        return 0;
    }
    uint64_t add, drop;
    if (list_mask(p->cap_add, &add, err) < 0 || list_mask(p->cap_drop, &drop, err) < 0)
        return -1;
    if (list_has_all(p->cap_add))
        *mask = all & ~drop;
    else if (list_has_all(p->cap_drop))
        *mask = add;
    else
        *mask = (rt_caps_default_mask() & ~drop) | add;
    *mask &= all;
    return 0;
}
