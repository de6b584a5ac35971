/* Fuzz target for machine's config.json as the store reads it (security case 30):
 * machine_from_text (the parser store_load_machine uses), then the round trip the store makes
 * when it saves a machine (machine_to_json, dumped the way store.c writes it, parsed again: a
 * config machine loaded must load again after a save), the driver field accessors and the name
 * rules. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "machine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct merr err = MERR_INIT;
    struct machine *m = machine_from_text((const char *)data, size, &err);
    if (m == NULL)
        return 0;
    (void)!machine_validate_name(m->name, &err);
    (void)machine_driver_str(m, "IPAddress");
    (void)machine_driver_int(m, "SSHPort", 22);
    json_t *j = machine_to_json(m);
    char *text = j != NULL ? json_dumps(j, JSON_INDENT(4) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (text == NULL)
        abort();
    struct machine *again = machine_from_text(text, strlen(text), &err);
    if (again == NULL || strcmp(again->name, m->name) != 0)
        abort(); /* what the store saves it must read back */
    machine_free(again);
    free(text);
    machine_free(m);
    return 0;
}
