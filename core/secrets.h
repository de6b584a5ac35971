/* Secret driver fields (API tokens, access keys, passwords): never written to config.json,
 * never printed by `inspect`, never logged (security case 29).
 *
 * A create flag marked `.secret` in a driver's flag table lands in m->secrets, not in m->driver
 * (driver_apply_flags does this). The store keeps m->secrets in <root>/credentials/NAME.json,
 * mode 0600 in a 0700 directory, outside the machine's directory (which users copy, archive and
 * export; security case 29): store_create_machine/store_save_machine write it (or remove it
 * when there is none), store_load_machine reads it, store_remove_machine deletes it.
 * config.json lists the key names only ("Secrets": ["AccessToken"]), so a machine whose
 * credentials file is gone is told apart from one that never had any. */
#ifndef MACHINE_SECRETS_H
#define MACHINE_SECRETS_H

#include "cleanup.h"

struct driver;
struct machine;
struct merr;

/* The saved value of key, or NULL. Borrowed from m. */
const char *machine_secret(const struct machine *m, const char *key);

/* Sets (value != NULL) or removes (value == NULL) a secret of m. */
void machine_secret_set(struct machine *m, const char *key, const char *value);

/* What a driver calls for a credential it needs: m's saved value, else the environment
 * variable of d's flag with that key (read now, so users may keep tokens in their own
 * environment), else MERR_INVALID "machine NAME has no credential for --FLAG: set ENV or
 * create the machine again". Borrowed (from m or the environment). */
const char *driver_secret(const struct driver *d, const struct machine *m, const char *key,
                          struct merr *err) MUST_CHECK;

/* For the store: writes m's secrets to path (0600, atomically; its directory made 0700), or
 * removes that file when m has none. */
int secrets_save(const char *path, const struct machine *m, struct merr *err) MUST_CHECK;

/* For the store: fills m->secrets from path when it exists (a missing file leaves the keys
 * config.json named without values). */
int secrets_load(const char *path, struct machine *m, struct merr *err) MUST_CHECK;

#endif
