/* The table of drivers; filled as drivers land. */
#include <stddef.h>
const void *const machine_driver_table_placeholder[] = { NULL };
