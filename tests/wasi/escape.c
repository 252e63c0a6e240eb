// Tries to read files outside its preopened directories: an absolute path, `..` out of its
// input's directory, and a symlink it plants in its output directory. Exits 3 when every
// attempt is refused, 0 if any file opened.
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int try_open(const char *path) {
    FILE *f = fopen(path, "r");
    if (f) {
        printf("opened %s\n", path);
        fclose(f);
        return 1;
    }
    perror(path);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: escape INPUT OUTPUT\n");
        return 2;
    }
    char input[1024], upward[1200], link[1200], through[1300];
    strncpy(input, argv[1], sizeof input - 1);
    input[sizeof input - 1] = 0;
    snprintf(upward, sizeof upward, "%s/../../../../kfbox.sqlite", dirname(input));
    snprintf(link, sizeof link, "%s", argv[2]);
    if (symlink("/etc", link) != 0) perror("symlink");
    snprintf(through, sizeof through, "%s/passwd", link);
    int opened = try_open("/etc/passwd") + try_open(upward) + try_open(through);
    return opened ? 0 : 3;
}
