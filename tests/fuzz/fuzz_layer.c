/* libFuzzer target: arbitrary bytes as a (possibly compressed) layer, extracted
 * into a fresh temporary directory that is then removed. Any crash, sanitizer
 * report, or failure to remove what was extracted is a finding. */
#include "error.h"
#include "layer/layer.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *tmp = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/fuzz-layer-XXXXXX", tmp);
    if (mkdtemp(dir) == NULL)
        abort();
    int fd = memfd_create("fuzz-layer", MFD_CLOEXEC);
    if (fd < 0)
        abort();
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(fd, data + off, size - off);
        if (n <= 0)
            abort();
        off += (size_t)n;
    }
    if (lseek(fd, 0, SEEK_SET) != 0)
        abort();
    struct layer_limits lim = { .max_uncompressed = 16ULL << 20, .max_entries = 4096 };
    struct layer_result res;
    struct merr err = MERR_INIT;
    (void)layer_extract_fd(fd, LAYER_COMP_DETECT, dir, &lim, &res, &err);
    close(fd);
    struct merr rm_err = MERR_INIT;
    if (layer_remove_tree(dir, &rm_err) < 0) {
        fprintf(stderr, "cannot remove '%s': %s\n", dir, rm_err.msg);
        abort();
    }
    return 0;
}
