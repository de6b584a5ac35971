/* `machine export` / `machine import`: one machine as a tar, to move it to another computer
 * (docker-machine #23).
 *
 * The archive is flat: config.json, the machine's SSH key pair, known_hosts and its certificates
 * (*.pem), then export.json ({"Version": 1, "Name": ..., "Dir": the machine directory it came
 * from}). credentials.json is never exported (core/secrets.h): an imported machine whose driver
 * needs a secret asks for it through the flag's environment variable.
 *
 * Import reads every entry into a private directory beside the store's machines, refuses any
 * entry that is not a regular file with a plain name (absolute paths, "..", subdirectories,
 * links, devices, credentials.json), rewrites the config's paths that pointed into the old
 * machine directory, and moves the directory into place only when all of it is there and the
 * name is free: nothing is half-imported. */
#ifndef MACHINE_TRANSFER_H
#define MACHINE_TRANSFER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "cleanup.h"

struct machine_ctx;
struct merr;

#define TRANSFER_MANIFEST "export.json"

/* Receives the archive's bytes in order; < 0 (with err set) aborts. */
typedef int (*transfer_write_fn)(void *opaque, const void *buf, size_t len, struct merr *err);

/* Writes machine NAME as a tar. */
MUST_CHECK int machine_export(const struct machine_ctx *ctx, const char *name,
                              transfer_write_fn write, void *opaque, struct merr *err);

/* Imports the tar read from fd as a new machine, named new_name (NULL: the name it had).
 * *imported receives the name (caller frees). MERR_EXISTS when that name is taken, MERR_INVALID
 * for an entry refused (naming it), MERR_CORRUPT for an archive that is not one of ours. */
MUST_CHECK int machine_import(const struct machine_ctx *ctx, int fd, const char *new_name,
                              char **imported, struct merr *err);

/* ---- pure parts, for tests ---- */

/* Whether a file of the machine directory goes into an export (config, key, known_hosts,
 * certificates; never credentials.json). */
bool transfer_exported_file(const char *name);

/* Checks one archive entry: type is the tar type flag ('0' or '\0' regular file, '5' directory,
 * '2' symlink, ...). Accepts a regular file whose name, after any leading "./", is one plain
 * component that transfer_exported_file takes or is the manifest; *base receives that
 * component (pointing into name). A top-level "." or "./" directory is accepted with *base
 * NULL (some tars start with it). Anything else is MERR_INVALID naming the entry. */
MUST_CHECK int transfer_check_entry(const char *name, char type, const char **base,
                                    struct merr *err);

/* Rewrites an imported config (config.json's object): Name becomes new_name, and every driver
 * string field starting with old_dir + "/" is moved under new_dir. */
void transfer_rewrite_config(json_t *config, const char *old_dir, const char *new_dir,
                             const char *new_name);

#endif
