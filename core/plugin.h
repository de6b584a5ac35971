/* External driver plugins: `machine-driver-NAME` programs speaking JSON lines (protocol in
 * docs/driver-plugins.md). One process per call: machine writes one request line on the
 * plugin's stdin and closes it; the plugin answers on stdout with its handshake, any progress
 * lines and one result or error line, then exits. stderr goes to the debug log.
 *
 * The adapter presents a plugin as a `struct driver` whose ops run it, so lifecycle, SSH
 * waiting, certificates and provisioning treat it as any built-in driver. */
#ifndef MACHINE_PLUGIN_H
#define MACHINE_PLUGIN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "cleanup.h"
#include "error.h"

struct driver;
struct driver_flag;
struct machine;
struct mlog;
struct store;

#define PLUGIN_PROTOCOL 1
#define PLUGIN_PREFIX "machine-driver-"
#define PLUGIN_OUT_MAX (1024 * 1024) /* bytes of a plugin's stdout kept for one call */

/* The handshake, the first line of every answer. */
struct plugin_info {
    char *name;
    char *version;
    char *description;
    char **capabilities; /* verbs it implements: "create", "state", ... */
    char **fields;       /* driver fields it may set besides the standard ones */
    bool uses_ssh;       /* false: no SSH, no provisioning (as the `none` driver) */
};
void plugin_info_release(struct plugin_info *info);
bool plugin_info_can(const struct plugin_info *info, const char *verb);

/* One parsed answer. */
struct plugin_reply {
    struct plugin_info info;
    char **progress; /* the progress lines, in order */
    json_t *result;  /* the result object (success), or NULL */
};
void plugin_reply_release(struct plugin_reply *r);

/* ---- the codec: pure, unit-tested ---- */

/* The error codes of the protocol ("invalid", "not_found", ...) onto core's; an unknown code
 * is MERR_REMOTE (the plugin's error, passed on). */
enum merr_code plugin_error_code(const char *code);

/* The request line (with its '\n') for verb on m: the driver fields, the secrets apart, the
 * SSH public key (create; may be NULL) and the call's time bound. */
char *plugin_request(const char *verb, const struct machine *m, const char *ssh_public_key,
                     int timeout_ms);

/* Parses a whole answer (stdout of one call) of the plugin that should be `name`. Handshake
 * first, then {"progress": TEXT} lines, then exactly one {"result": {...}} or
 * {"error": {"code", "message"}}; nothing after. Garbage, a missing or unknown member, another
 * protocol or another name is MERR_PROTOCOL; an error answer is its mapped code with the
 * plugin's message. Messages name the plugin. */
int plugin_parse_reply(const char *name, const char *text, struct plugin_reply *out,
                       struct merr *err) MUST_CHECK;

/* The flags of a `flags` result as a driver flag table (terminated by name == NULL) whose
 * strings it owns; free with plugin_flags_free. MERR_PROTOCOL on a malformed entry. */
struct driver_flag *plugin_flags_import(const char *name, const json_t *result,
                                        struct merr *err) MUST_CHECK;
void plugin_flags_free(struct driver_flag *flags);

/* Applies the "fields" of a result to m->driver, all or nothing: a field the plugin may not set
 * (not a standard one, not in its handshake's fields), a secret, or a value that is not a
 * string, integer, boolean or null is MERR_PROTOCOL and m is left untouched. null removes. */
int plugin_apply_fields(const struct plugin_info *info, const json_t *result, struct machine *m,
                        struct merr *err) MUST_CHECK;

/* ---- discovery and the adapter ---- */

/* The executable machine-driver-NAME: in $MACHINE_DRIVER_PATH (colon-separated), then the
 * store's drivers/ directory (s may be NULL), then PATH. NULL when there is none. */
char *plugin_find(const struct store *s, const char *name);

/* Names of every plugin found (sorted, first location wins, names of builtins left out). */
char **plugin_list(const struct store *s, const struct driver *const *builtins);

/* Plugins loaded by one command (each is run once for its handshake and flags). */
struct plugin_set;
struct plugin_set *plugin_set_new(void);
void plugin_set_free(struct plugin_set *set);
DEFINE_CLEANUP(struct plugin_set, plugin_set_free)

/* The driver of plugin `name`, loaded once per set. A builtin name is never looked up (it
 * cannot be shadowed): MERR_EXISTS. No such program: MERR_NOT_FOUND. */
const struct driver *plugin_set_load(struct plugin_set *set, const struct store *s,
                                     const struct mlog *log, const struct driver *const *builtins,
                                     const char *name, int timeout_ms, struct merr *err) MUST_CHECK;
/* The handshake of a driver plugin_set_load returned (NULL for a builtin). */
const struct plugin_info *plugin_driver_info(const struct plugin_set *set, const struct driver *d);

#endif
