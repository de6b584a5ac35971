/* docker rm --link PARENT/ALIAS (DELETE /containers/PARENT/ALIAS?link=1): the legacy link ALIAS
 * leaves PARENT's HostConfig.Links; both containers stay. As dockerd, the environment and hosts
 * lines of a running PARENT stay until it starts again. */
#include <string.h>

#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "manager-priv.h"
#include "options.h"

/* Links of hc without the one called alias; NULL when none is. */
static json_t *links_without(const json_t *hc, const char *alias)
{
    json_t *kept = json_array();
    bool found = false;
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(hc, "Links"), i, it) {
        char name[256], a[256];
        struct merr ignored;
        const char *spec = json_string_value(it);
        if (spec != NULL && ctr_link_parse(spec, name, sizeof name, a, sizeof a, &ignored) == 0 &&
            strcmp(a, alias) == 0) {
            found = true;
            continue;
        }
        json_array_append(kept, it);
    }
    if (!found) {
        json_decref(kept);
        return NULL;
    }
    return kept;
}

static int remove_link_locked(struct ctr_manager *m, const char *ref, const char *parent,
                              const char *alias, struct merr *err)
{
    struct merr ignored;
    struct ctr_entry *e = mgr_find_locked(m, parent, &ignored);
    if (e == NULL)
        return merr_set(err, MERR_NOT_FOUND, 0, "No such container: %s", ref);
    struct container *c = e->c;
    json_t *kept = links_without(c->config->raw_host_config, alias);
    if (kept == NULL)
        return merr_set(err, MERR_NOT_FOUND, 0, "No such container: %s", ref);
    json_t *hc = json_deep_copy(c->config->raw_host_config);
    json_object_set_new(hc, "Links", kept);
    json_t *rec = json_pack("{s:O,s:o}", "Config", c->config->raw_config, "HostConfig", hc);
    struct ctr_config *next = ctr_config_from_json(rec, err);
    json_decref(rec);
    if (next == NULL)
        return -1;
    ctr_config_free(c->config);
    c->config = next;
    return mgr_persist_locked(m, e, err);
}

int ctr_remove_link(struct ctr_manager *m, const char *ref, struct merr *err)
{
    const char *name = ref[0] == '/' ? ref + 1 : ref;
    const char *slash = strrchr(name, '/');
    if (slash == NULL)
        return merr_set(err, MERR_EXISTS, 0,
                        "Conflict, cannot remove the default link name of the container");
    auto_free char *parent = xasprintf("%.*s", (int)(slash - name), name);
    pthread_mutex_lock(&m->lock);
    int rc = remove_link_locked(m, ref, parent, slash + 1, err);
    pthread_mutex_unlock(&m->lock);
    return rc;
}
