/* `generic`: an existing Linux host reachable over SSH. machine never creates or destroys it:
 * state is "SSH port answers", restart is a reboot over SSH, rm leaves the host alone. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driver.h"
#include "error.h"
#include "fsutil.h"
#include "netutil.h"
#include "registry.h"
#include "sshkey.h"

static const struct driver_flag generic_flags[] = {
    { .name = "generic-ip-address", .env = "GENERIC_IP_ADDRESS", .key = DKEY_IP,
      .help = "IP address (or DNS name) of the host", .type = DFLAG_STRING, .required = true },
    { .name = "generic-ssh-user", .env = "GENERIC_SSH_USER", .def = "root", .key = DKEY_SSH_USER,
      .help = "SSH user (root, or a user with passwordless sudo)", .type = DFLAG_STRING },
    { .name = "generic-ssh-key", .env = "GENERIC_SSH_KEY", .key = DKEY_SSH_KEY_SOURCE,
      .help = "SSH private key (default ~/.ssh/id_ed25519, then ~/.ssh/id_rsa)",
      .type = DFLAG_STRING },
    { .name = "generic-ssh-port", .env = "GENERIC_SSH_PORT", .def = "22", .key = DKEY_SSH_PORT,
      .help = "SSH port", .type = DFLAG_INT, .min = 1, .max = 65535 },
    { .name = "generic-engine-port", .env = "GENERIC_ENGINE_PORT", .def = "2376",
      .key = DKEY_ENGINE_PORT, .help = "port of the engine's TLS API", .type = DFLAG_INT,
      .min = 1, .max = 65535 },
    { 0 },
};

/* A literal address, or a plausible DNS name that is not a malformed dotted quad. */
static bool valid_host(const char *h)
{
    if (h == NULL || h[0] == '\0' || strlen(h) > 253)
        return false;
    if (net_is_ip(h))
        return true;
    bool all_numeric = true;
    for (const char *p = h; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (!(isalnum(c) || c == '-' || c == '.'))
            return false;
        if (isalpha(c) || c == '-')
            all_numeric = false;
    }
    return !all_numeric && h[0] != '-' && h[0] != '.';
}

static char *default_key(void)
{
    const char *home = getenv("HOME");
    if (home == NULL)
        return NULL;
    static const char *const names[] = { ".ssh/id_ed25519", ".ssh/id_rsa" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *p = path_join(home, names[i]);
        if (access(p, R_OK) == 0)
            return p;
        free(p);
    }
    return NULL;
}

static int generic_precreate_check(const struct driver_ctx *ctx, struct machine *m,
                                   struct merr *err)
{
    const char *ip = machine_driver_str(m, DKEY_IP);
    if (!valid_host(ip))
        return merr_set(err, MERR_INVALID, 0, "invalid --generic-ip-address '%s'",
                        ip != NULL ? ip : "");
    const char *user = machine_driver_str(m, DKEY_SSH_USER);
    if (user == NULL || user[0] == '\0' || user[0] == '-' || strpbrk(user, "@: /\t\n") != NULL)
        return merr_set(err, MERR_INVALID, 0, "invalid --generic-ssh-user '%s'",
                        user != NULL ? user : "");

    const char *key = machine_driver_str(m, DKEY_SSH_KEY_SOURCE);
    auto_free char *found = NULL;
    if (key == NULL || key[0] == '\0') {
        found = default_key();
        if (found == NULL)
            return merr_set(err, MERR_INVALID, 0,
                            "no SSH key: pass --generic-ssh-key (no ~/.ssh/id_ed25519 or id_rsa)");
        machine_driver_set_str(m, DKEY_SSH_KEY_SOURCE, found);
        key = found;
    }
    if (access(key, R_OK) < 0)
        return merr_set(err, MERR_INVALID, errno, "cannot read SSH key '%s'", key);
    return sshkey_check_private_perms(key, err);
}

/* Lifecycle copies the key (SSHKeySource) into the machine directory and points SSHKeyPath at
 * the copy; what is left is the engine's port. */
static int generic_create(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    (void)ctx;
    (void)err;
    m->engine.port = (int)machine_driver_int(m, DKEY_ENGINE_PORT, MACHINE_DEFAULT_ENGINE_PORT);
    return 0;
}

/* The host is not ours: removing the machine only forgets it. */
static int generic_remove(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    return 0;
}

static int generic_get_state(const struct driver_ctx *ctx, const struct machine *m,
                             enum machine_state *state, struct merr *err)
{
    const char *ip = machine_driver_str(m, DKEY_IP);
    int port = (int)machine_driver_int(m, DKEY_SSH_PORT, 22);
    struct merr dial_err = MERR_INIT;
    int fd = net_dial(ip != NULL ? ip : "", port, ctx->timeout_ms > 0 ? ctx->timeout_ms : 10000,
                      &dial_err);
    if (fd >= 0) {
        close(fd);
        *state = MSTATE_RUNNING;
    } else {
        *state = dial_err.code == MERR_TIMEOUT ? MSTATE_TIMEOUT : MSTATE_STOPPED;
    }
    return 0;
}

static int generic_restart(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    /* The connection drops while the host goes down, so only a refusal to start counts. */
    const char *cmd = "if [ \"$(id -u)\" = 0 ]; then (sleep 1; shutdown -r now || reboot) "
                      ">/dev/null 2>&1 & else (sleep 1; sudo -n shutdown -r now || sudo -n reboot) "
                      ">/dev/null 2>&1 & fi";
    return ctx->ssh_run(ctx, m, cmd, err);
}

const struct driver driver_generic = {
    .name = "generic",
    .description = "an existing Linux host reachable over SSH",
    .flags = generic_flags,
    .uses_ssh = true,
    .precreate_check = generic_precreate_check,
    .create = generic_create,
    .remove = generic_remove,
    .restart = generic_restart,
    .get_state = generic_get_state,
};
