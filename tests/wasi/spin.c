// Never ends on its own: for the time limit.
#include <stdio.h>

int main(void) {
    printf("spinning\n");
    fflush(stdout);
    volatile unsigned long n = 0;
    for (;;) n++;
}
