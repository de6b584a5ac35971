/* The machine store: <root>/certs and <root>/machines/<name>/config.json.
 * Root defaults to $MACHINE_STORAGE_PATH, else ~/.machine. Every write is atomic;
 * a machine directory appears complete with its first config.json or not at all. */
#ifndef MACHINE_STORE_H
#define MACHINE_STORE_H

#include "cleanup.h"

struct merr;
struct machine;

struct store {
    char *root;
    char *certs_dir;
    char *machines_dir;
};

/* Resolves the root (explicit path, env, home) without touching the disk. */
char *store_default_root(void);

/* Creates root, certs/ and machines/ (0700) if needed. */
int store_open(const char *root, struct store *out, struct merr *err) MUST_CHECK;
void store_release(struct store *s);

char *store_machine_dir(const struct store *s, const char *name);
char *store_machine_file(const struct store *s, const char *name, const char *file);

/* <root>/credentials/NAME.json: the machine's secret driver fields (core/secrets.h), kept
 * outside its directory. */
char *store_credentials_file(const struct store *s, const char *name);

/* Atomically creates the machine directory with its first config.json. MERR_EXISTS if the name
 * is taken (also when a concurrent create wins the race). */
int store_create_machine(const struct store *s, const struct machine *m, struct merr *err) MUST_CHECK;

/* Atomically replaces config.json of an existing machine. */
int store_save_machine(const struct store *s, const struct machine *m, struct merr *err) MUST_CHECK;

/* MERR_NOT_FOUND when there is no such machine, MERR_CORRUPT when config.json is unreadable. */
struct machine *store_load_machine(const struct store *s, const char *name, struct merr *err) MUST_CHECK;

/* Sorted machine names (directories under machines/ whose names are valid). */
char **store_list_names(const struct store *s, struct merr *err) MUST_CHECK;

/* Removes the machine directory and everything in it. */
int store_remove_machine(const struct store *s, const char *name, struct merr *err) MUST_CHECK;

/* Exclusive per-machine lock (for commands that change a machine); returns an fd. */
int store_lock_machine(const struct store *s, const char *name, int timeout_ms,
                       struct merr *err) MUST_CHECK;

#endif
