// Counts the lines of an input artifact: argv[1] input file, argv[2] output parameter file,
// argv[3] output artifact file. Prints GREETING from the environment.
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: count INPUT OUTPUT_PARAMETER OUTPUT_ARTIFACT\n");
        return 2;
    }
    FILE *in = fopen(argv[1], "r");
    if (!in) {
        perror(argv[1]);
        return 1;
    }
    int lines = 0, c;
    while ((c = fgetc(in)) != EOF) {
        if (c == '\n') lines++;
    }
    fclose(in);
    FILE *param = fopen(argv[2], "w");
    FILE *report = fopen(argv[3], "w");
    if (!param || !report) {
        perror("output");
        return 1;
    }
    fprintf(param, "%d", lines);
    fprintf(report, "lines=%d\n", lines);
    fclose(param);
    fclose(report);
    const char *greeting = getenv("GREETING");
    printf("%s: counted %d lines\n", greeting ? greeting : "(no GREETING)", lines);
    return 0;
}
