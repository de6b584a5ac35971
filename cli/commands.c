/* CLI command table; filled as commands land. */
#include <stddef.h>
const void *const machine_command_table_placeholder[] = { NULL };
