/* Writes a small seed corpus for fuzz_dns into the directory argv[1]: queries as glibc's
 * resolver builds them (A, AAAA, ANY, with EDNS) and a resolv.conf. */
#include <arpa/nameser.h>
#include <resolv.h>
#include <stdio.h>
#include <string.h>

static int write_seed(const char *dir, const char *name, const void *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(p, 1, n, f) != n) {
        perror(path);
        return 1;
    }
    return fclose(f) != 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: seeds_dns DIR\n");
        return 2;
    }
    static const struct {
        const char *file, *name;
        int type;
    } qs[] = { { "q-a", "web", ns_t_a }, { "q-aaaa", "db.appnet", ns_t_aaaa },
               { "q-any", "Example.Test.", ns_t_any }, { "q-root", ".", ns_t_ns } };
    int rc = 0;
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        unsigned char buf[512];
        int n = res_mkquery(ns_o_query, qs[i].name, ns_c_in, qs[i].type, NULL, 0, NULL, buf,
                            sizeof buf);
        if (n < 0)
            return 1;
        rc |= write_seed(argv[1], qs[i].file, buf, (size_t)n);
        if (i == 0) { /* the same with an EDNS OPT record */
            static const unsigned char opt[] = { 0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0 };
            memcpy(buf + n, opt, sizeof opt);
            buf[11] = 1;
            rc |= write_seed(argv[1], "q-edns", buf, (size_t)n + sizeof opt);
        }
    }
    static const char resolv[] = "search corp.test lan\nnameserver 10.0.0.1\noptions ndots:0\n";
    rc |= write_seed(argv[1], "resolv", resolv, sizeof resolv - 1);
    return rc;
}
