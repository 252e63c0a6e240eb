// Allocates memory until something stops it: for the memory limit.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Kept reachable so the compiler cannot drop the allocations.
char *volatile last;

int main(void) {
    size_t total = 0;
    for (;;) {
        char *block = malloc(1 << 20);
        if (!block) {
            printf("malloc failed after %zu MiB\n", total >> 20);
            return 4;
        }
        memset(block, 1, 1 << 20);
        last = block;
        total += 1 << 20;
    }
}
