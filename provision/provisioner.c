/* provision/'s table for lifecycle (struct machine_provisioner, context.h): what the CLI and
 * `machine up` plug into their machine_ctx so core installs engines without linking this. */
#include <stdlib.h>

#include "context.h"
#include "error.h"
#include "provision.h"

static int provision_with_bundle(const struct machine_ctx *ctx, struct machine *m,
                                 struct merr *err)
{
    auto_free char *bundle = provision_find_bundle(err);
    if (bundle == NULL)
        return -1;
    return provision_machine(ctx, m, bundle, err);
}

const struct machine_provisioner provision_engine_provisioner = {
    .provision = provision_with_bundle,
    .install_certs = provision_install_certs,
    .wait_engine = provision_wait_engine,
};
