/* The network of container machines: the lab network (created on first use) and a fixed address
 * per machine, so the engine's certificate stays valid across stop and start. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "container-priv.h"
#include "driver.h"
#include "error.h"
#include "fsutil.h"
#include "jsonutil.h"
#include "machine.h"
#include "store.h"
#include "strv.h"

char *ctr_net_pick(const char *subnet, const char *gateway, const char *const *used,
                   struct merr *err)
{
    char addr[INET_ADDRSTRLEN];
    const char *slash = subnet != NULL ? strchr(subnet, '/') : NULL;
    char *end = NULL;
    long len = slash != NULL ? strtol(slash + 1, &end, 10) : -1;
    struct in_addr net;
    if (slash == NULL || (size_t)(slash - subnet) >= sizeof addr || end == slash + 1 ||
        *end != '\0' || len < 8 || len > 30) {
        merr_set(err, MERR_INVALID, 0, "network subnet '%s' is not an IPv4 /8../30",
                 subnet != NULL ? subnet : "");
        return NULL;
    }
    memcpy(addr, subnet, (size_t)(slash - subnet));
    addr[slash - subnet] = '\0';
    if (inet_pton(AF_INET, addr, &net) != 1) {
        merr_set(err, MERR_INVALID, 0, "network subnet '%s' is not IPv4", subnet);
        return NULL;
    }
    uint32_t mask = len == 0 ? 0 : 0xffffffffu << (32 - len);
    uint32_t base = ntohl(net.s_addr) & mask, last = base | ~mask;
    for (uint32_t a = base + 1; a < last; a++) {
        struct in_addr cand = { .s_addr = htonl(a) };
        if (inet_ntop(AF_INET, &cand, addr, sizeof addr) == NULL)
            break;
        bool taken = gateway != NULL && strcmp(gateway, addr) == 0;
        for (size_t i = 0; !taken && used != NULL && used[i] != NULL; i++)
            taken = strcmp(used[i], addr) == 0;
        if (!taken)
            return xstrdup(addr);
    }
    merr_set(err, MERR_EXISTS, 0, "no free address left in %s", subnet);
    return NULL;
}

/* The default network gets an explicit subnet (fixed addresses need one): the one the engine
 * picks for a network made without, which is then made again with it. */
static int create_network(struct ctr_api *api, const char *name, struct merr *err)
{
    auto_free char *probe = xasprintf("%s-probe", name);
    auto_json json_t *pbody = json_pack("{s:s, s:s}", "Name", probe, "Driver", "bridge");
    auto_json json_t *made = NULL;
    if (ctr_api_expect(api, "POST", "/networks/create", pbody, NULL, 0, "creating the network",
                       err) < 0)
        return -1;
    auto_free char *ppath = xasprintf("/networks/%s", probe);
    int rc = ctr_api_expect(api, "GET", ppath, NULL, &made, 0, "inspecting the network", err);
    struct merr ignored = MERR_INIT;
    (void)ctr_api_call(api, "DELETE", ppath, NULL, NULL, "removing the network", &ignored);
    if (rc < 0)
        return -1;
    json_t *cfg = json_array_get(json_object_get(json_object_get(made, "IPAM"), "Config"), 0);
    const char *subnet = json_string_value(json_object_get(cfg, "Subnet"));
    const char *gw = json_string_value(json_object_get(cfg, "Gateway"));
    if (subnet == NULL)
        return merr_set(err, MERR_PROTOCOL, 0, "the engine gave network '%s' no IPv4 subnet",
                        probe);
    auto_json json_t *body = json_pack("{s:s, s:s, s:b, s:{s:s}, s:{s:[{s:s}]}}", "Name", name,
                                       "Driver", "bridge", "CheckDuplicate", 1, "Labels",
                                       CTR_LABEL, "network", "IPAM", "Config", "Subnet", subnet);
    if (gw != NULL)
        json_object_set_new(json_array_get(json_object_get(json_object_get(body, "IPAM"),
                                                           "Config"),
                                           0),
                            "Gateway", json_string(gw));
    return ctr_api_expect(api, "POST", "/networks/create", body, NULL, 0, "creating the network",
                          err);
}

static int ensure_network(struct ctr_api *api, const char *name,
                          json_t **net, struct merr *err)
{
    auto_free char *path = xasprintf("/networks/%s", name);
    long st = ctr_api_call(api, "GET", path, NULL, net, "inspecting the network", err);
    if (st == 404 && strcmp(name, CTR_DEFAULT_NETWORK) == 0) {
        json_decref(*net);
        *net = NULL;
        if (create_network(api, name, err) < 0)
            return -1;
        st = ctr_api_call(api, "GET", path, NULL, net, "inspecting the network", err);
    } else if (st == 404) {
        return merr_set(err, MERR_NOT_FOUND, 0, "no network '%s' on the engine", name);
    }
    return st >= 200 && st < 300 ? 0 : -1;
}

/* The addresses containers on the engine hold or asked for on network net_id. */
static char **used_addresses(struct ctr_api *api, const char *net_name, struct merr *err)
{
    auto_json json_t *list = NULL;
    if (ctr_api_expect(api, "GET", "/containers/json?all=1", NULL, &list, 0,
                       "listing containers", err) < 0)
        return NULL;
    char **used = xcalloc(1, sizeof *used);
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c) {
        json_t *ep = json_object_get(json_object_get(json_object_get(c, "NetworkSettings"),
                                                     "Networks"),
                                     net_name);
        const char *ip = json_string_value(json_object_get(ep, "IPAddress"));
        const char *want = json_string_value(
            json_object_get(json_object_get(ep, "IPAMConfig"), "IPv4Address"));
        if (ip != NULL && ip[0] != '\0')
            used = strv_push(used, ip);
        if (want != NULL && want[0] != '\0')
            used = strv_push(used, want);
    }
    return used;
}

static int lock_network(const struct driver_ctx *ctx, struct merr *err)
{
    auto_free char *dir = path_join(ctx->store->root, "locks");
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return merr_set(err, MERR_IO, errno, "cannot create '%s'", dir);
    auto_free char *path = path_join(dir, "container-network.lock");
    return fs_lock(path, 120000, err);
}

int ctr_net_reserve(struct ctr_api *api, struct machine *m, char **ip, int *lock_fd,
                    struct merr *err)
{
    *ip = NULL;
    *lock_fd = lock_network(api->ctx, err);
    if (*lock_fd < 0)
        return -1;
    const char *name = machine_driver_str(m, CKEY_NETWORK);
    auto_json json_t *net = NULL;
    auto_strv char **used = NULL;
    if (ensure_network(api, name, &net, err) < 0 ||
        (used = used_addresses(api, name, err)) == NULL)
        goto fail;
    json_t *cfg = json_array_get(json_object_get(json_object_get(net, "IPAM"), "Config"), 0);
    *ip = ctr_net_pick(json_string_value(json_object_get(cfg, "Subnet")),
                       json_string_value(json_object_get(cfg, "Gateway")),
                       (const char *const *)used, err);
    if (*ip != NULL)
        return 0;
fail:
    fs_unlock(*lock_fd);
    *lock_fd = -1;
    return -1;
}

int ctr_net_release(struct ctr_api *api, struct machine *m, struct merr *err)
{
    const char *name = machine_driver_str(m, CKEY_NETWORK);
    if (name == NULL || name[0] == '\0')
        return 0;
    /* under the lock a create holds from choosing an address until its container exists */
    int lock = lock_network(api->ctx, err);
    if (lock < 0)
        return -1;
    auto_free char *path = xasprintf("/networks/%s", name);
    auto_json json_t *net = NULL;
    auto_strv char **used = NULL;
    int rc = 0;
    long st = ctr_api_call(api, "GET", path, NULL, &net, "inspecting the network", err);
    const char *made = json_string_value(
        json_object_get(json_object_get(net, "Labels"), CTR_LABEL));
    if (st < 0 || (st >= 300 && st != 404)) {
        rc = -1;
    } else if (st == 404 || made == NULL || strcmp(made, "network") != 0) {
        rc = 0; /* gone, or not made by this driver: never removed */
    } else if ((used = used_addresses(api, name, err)) == NULL) {
        /* stopped containers are not in the network's Containers but keep their endpoint */
        rc = -1;
    } else if (used[0] == NULL) {
        st = ctr_api_call(api, "DELETE", path, NULL, NULL, "removing the network", err);
        rc = st < 0 || st >= 500 ? -1 : 0;
    }
    fs_unlock(lock);
    return rc;
}
