#include <stdio.h>

int main(void)
{
    puts("machine " MACHINE_VERSION);
    return 0;
}
