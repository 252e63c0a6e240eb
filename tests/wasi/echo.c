// Writes argv[1] to the file argv[2]: the trivial work of the executor benchmark.
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    FILE *out = fopen(argv[2], "w");
    if (!out) {
        perror(argv[2]);
        return 1;
    }
    fputs(argv[1], out);
    return fclose(out) == 0 ? 0 : 1;
}
