/* `none`: records an engine that already exists at --url. No SSH, no provisioning.
 * Like docker-machine's, it stores any URL (`none`, `unix://…`); only a tcp:// URL gives the
 * machine an address and an engine port. */
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "error.h"
#include "fsutil.h"
#include "netutil.h"
#include "registry.h"

#define KEY_URL "URL"

static const struct driver_flag none_flags[] = {
    { .name = "url", .env = "NONE_URL", .help = "URL of the engine (tcp://HOST:PORT; any other URL is stored as given)", .key = KEY_URL,
      .type = DFLAG_STRING, .required = true },
    { 0 },
};

static int none_precreate_check(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    auto_free char *host = NULL;
    int port = 0;
    const char *url = machine_driver_str(m, KEY_URL);
    if (url == NULL || url[0] == '\0')
        return merr_set(err, MERR_INVALID, 0, "--url option is required when no driver is selected");
    if (strncmp(url, "tcp://", 6) == 0 && net_parse_tcp_url(url, &host, &port, err) < 0)
        return -1;
    return 0;
}

static int none_create(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    auto_free char *host = NULL;
    int port = 0;
    const char *url = machine_driver_str(m, KEY_URL);
    if (url == NULL || strncmp(url, "tcp://", 6) != 0)
        return 0;
    if (net_parse_tcp_url(url, &host, &port, err) < 0)
        return -1;
    machine_driver_set_str(m, DKEY_IP, host);
    m->engine.port = port;
    return 0;
}

/* Nothing to remove: the engine is not ours. */
static int none_remove(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    return 0;
}

/* docker-machine reports `none` machines as Running: their state is the engine's. */
static int none_get_state(const struct driver_ctx *ctx, const struct machine *m,
                          enum machine_state *state, struct merr *err)
{
    *state = MSTATE_RUNNING;
    return 0;
}

static char *none_get_url(const struct driver_ctx *ctx, const struct machine *m, struct merr *err)
{
    const char *url = machine_driver_str(m, KEY_URL);
    if (url == NULL || url[0] == '\0') {
        merr_set(err, MERR_CORRUPT, 0, "machine '%s' has no URL", m->name);
        return NULL;
    }
    return xstrdup(url);
}

const struct driver driver_none = {
    .name = "none",
    .description = "an engine that already exists at a URL",
    .flags = none_flags,
    .uses_ssh = false,
    .precreate_check = none_precreate_check,
    .create = none_create,
    .remove = none_remove,
    .get_state = none_get_state,
    .get_url = none_get_url,
};
