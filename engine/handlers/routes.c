/* Every route the engine serves, registered in one place: the daemon and the query-parameter
 * table test (tests/unit/test_api_params.c) walk the same list. */
#include "api/api.h"
#include "handlers.h"

int handlers_register_all(struct api_router *r, const struct api_system *sys,
                          struct engine_services *s, struct merr *err)
{
    if (api_system_register(r, sys, err) < 0 || handlers_register_containers(r, s, err) < 0 ||
        handlers_register_exec(r, s, err) < 0 || handlers_register_images(r, s, err) < 0 ||
        handlers_register_commit(r, s, err) < 0 || handlers_register_build(r, s, err) < 0 ||
        handlers_register_storage(r, s, err) < 0 || handlers_register_networks(r, s, err) < 0 ||
        handlers_register_lists(r, s, err) < 0 || handlers_register_swarm(r, s, err) < 0 ||
        handlers_register_lifecycle(r, s, err) < 0 || handlers_register_prune(r, s, err) < 0 ||
        handlers_register_system_df(r, s, err) < 0 || handlers_register_stats(r, s, err) < 0 ||
        handlers_register_distribution(r, s, err) < 0 ||
        handlers_register_push(r, s, err) < 0)
        return -1;
    return 0;
}
