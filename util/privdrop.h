/* Dropping every privilege for good: the helpers that outlive the engine (machine-monitor,
 * machine-proxy) need none of root's capabilities once started. */
#ifndef MACHINE_UTIL_PRIVDROP_H
#define MACHINE_UTIL_PRIVDROP_H

/* Empties the bounding set and the capability sets and sets no_new_privs, so neither this
 * process nor anything it execs can regain a capability. Best effort: what the kernel refuses
 * is left as it is. */
void priv_drop_all(void);

#endif
