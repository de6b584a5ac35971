/* The seed-corpus writers whose seeds are texts: seeds_main(argc, argv, seeds, n) writes each
 * seed as a file named after it into the directory argv[1]. Exit status 0 when all were
 * written. Header-only: each seeds program is one file. */
#ifndef MACHINE_SEEDS_TEXT_H
#define MACHINE_SEEDS_TEXT_H

#include <stdio.h>
#include <string.h>

struct text_seed {
    const char *name, *text;
};

static inline int seeds_write_text(const char *dir, const char *name, const char *text)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    size_t n = strlen(text);
    if (f == NULL || fwrite(text, 1, n, f) != n) {
        perror(path);
        if (f != NULL)
            fclose(f);
        return 1;
    }
    return fclose(f) != 0;
}

static inline int seeds_main(int argc, char **argv, const struct text_seed *seeds, size_t n)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    int rc = 0;
    for (size_t i = 0; i < n; i++)
        rc |= seeds_write_text(argv[1], seeds[i].name, seeds[i].text);
    return rc;
}

#endif
