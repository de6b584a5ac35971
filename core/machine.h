/* A machine as the store keeps it, and its (versioned) config.json form. */
#ifndef MACHINE_MACHINE_H
#define MACHINE_MACHINE_H

#include <jansson.h>
#include <stdbool.h>

#include "cleanup.h"
#include "osrelease.h"
#include "strv.h"

struct merr;

#define MACHINE_CONFIG_VERSION 1
#define MACHINE_DEFAULT_ENGINE_PORT 2376

enum machine_state {
    MSTATE_NONE = 0,
    MSTATE_RUNNING,
    MSTATE_PAUSED,
    MSTATE_SAVED,
    MSTATE_STOPPED,
    MSTATE_STOPPING,
    MSTATE_STARTING,
    MSTATE_ERROR,
    MSTATE_TIMEOUT,
};
const char *machine_state_name(enum machine_state s);

/* Lifecycle markers kept in config.json so a failed create stays visible. */
#define MACHINE_STATUS_CREATING "creating"
#define MACHINE_STATUS_CREATED "created"
#define MACHINE_STATUS_ERROR "error"

struct engine_options {
    char **opts;              /* --engine-opt k=v */
    char **env;               /* --engine-env K=V */
    char **labels;            /* --engine-label k=v */
    char **insecure_registry; /* --engine-insecure-registry */
    char **registry_mirror;   /* --engine-registry-mirror */
    char *storage_driver;
    int port;
};

struct auth_options {
    char **sans; /* --tls-san values */
};

struct machine {
    int config_version;
    char *name;
    char *driver_name;
    json_t *driver; /* the driver's own fields: IPAddress, SSHUser, SSHPort, SSHKeyPath, ... */
    char *status;   /* MACHINE_STATUS_* */
    char *error;    /* why the last lifecycle step failed, or NULL */
    char *created_at;
    struct os_release os;
    struct engine_options engine;
    struct auth_options auth;
    /* `machine up`: {"Name": lab, "Group": key, "Spec": {...}} as last brought up, or NULL */
    json_t *lab;
    /* Secret driver fields (core/secrets.h): {"AccessToken": "..."}; never in config.json. */
    json_t *secrets;
};

struct machine *machine_new(const char *name, const char *driver_name);
void machine_free(struct machine *m);
DEFINE_CLEANUP(struct machine, machine_free)
#define auto_machine __attribute__((cleanup(cleanup_machine_freep)))

/* Serialisation (pure). machine_from_json reports MERR_CORRUPT on anything malformed. */
json_t *machine_to_json(const struct machine *m);
struct machine *machine_from_json(const json_t *root, struct merr *err) MUST_CHECK;
struct machine *machine_from_text(const char *text, size_t len, struct merr *err) MUST_CHECK;

/* Driver field accessors (NULL / default when absent). */
const char *machine_driver_str(const struct machine *m, const char *key);
long long machine_driver_int(const struct machine *m, const char *key, long long def);
void machine_driver_set_str(struct machine *m, const char *key, const char *value);
void machine_driver_set_int(struct machine *m, const char *key, long long value);

void machine_set_status(struct machine *m, const char *status, const char *error);

/* Name rules: ^[a-zA-Z0-9][a-zA-Z0-9.-]*$, at most 63 characters. */
int machine_validate_name(const char *name, struct merr *err) MUST_CHECK;

#endif
