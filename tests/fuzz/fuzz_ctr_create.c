/* Fuzz target for the body of POST /containers/create (security case 30): the JSON a client
 * sends goes through the container config parser, the record round trip (to JSON and back, as
 * the engine stores and reloads it), the process plan against an image config taken from the
 * same input's "ImageConfig" member, and the mount specifications (Binds, Mounts, Tmpfs and the
 * image's Volumes, with tmpfs options). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "container/config.h"
#include "error.h"
#include "volume/volume.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_mounts(const json_t *body, const json_t *image_config)
{
    struct mnt_list l = { 0 };
    struct merr err = MERR_INIT;
    json_t *hc = json_object_get(body, "HostConfig");
    if (mnt_list_from_config(json_is_object(hc) ? hc : NULL,
                             json_object_get(image_config, "Volumes"), &l, &err) < 0)
        return;
    for (size_t i = 0; i < l.n; i++) {
        json_t *j = mnt_spec_to_json(&l.items[i]);
        struct mnt_spec back = { 0 };
        if (j != NULL && mnt_spec_from_json(j, &back, &err) == 0)
            mnt_spec_release(&back);
        json_decref(j);
        if (l.items[i].type == MNT_TMPFS) {
            unsigned long flags = 0;
            char *opts = NULL;
            if (mnt_tmpfs_options(l.items[i].tmpfs_options, &flags, &opts, &err) == 0)
                free(opts);
        }
    }
    mnt_list_release(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *body = json_loadb((const char *)data, size, JSON_DECODE_ANY, &jerr);
    if (body == NULL)
        return 0;
    struct merr err = MERR_INIT;
    json_t *image_config = json_object_get(body, "ImageConfig");
    struct ctr_config *c = ctr_config_from_create(body, &err);
    if (c != NULL) {
        json_t *record = ctr_config_to_json(c);
        struct ctr_config *again = record != NULL ? ctr_config_from_json(record, &err) : NULL;
        if (record != NULL && again == NULL)
            abort(); /* a config the engine accepted must load again after a restart */
        ctr_config_free(again);
        json_decref(record);
        struct ctr_process_plan plan;
        if (ctr_plan(c, json_is_object(image_config) ? image_config : NULL, &plan, &err) == 0)
            ctr_process_plan_release(&plan);
        ctr_config_free(c);
    }
    fuzz_mounts(body, image_config);
    json_t *name = json_object_get(body, "Name");
    if (json_is_string(name))
        (void)!ctr_name_validate(json_string_value(name), &err);
    json_decref(body);
    return 0;
}
