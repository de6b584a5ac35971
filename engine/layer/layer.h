/* engine/layer/layer.h */
#include <stdint.h>
struct merr;
enum layer_compression { LAYER_COMP_NONE, LAYER_COMP_GZIP, LAYER_COMP_ZSTD, LAYER_COMP_DETECT };
struct layer_limits { uint64_t max_uncompressed; uint64_t max_entries; };
struct layer_result { char diff_id[72]; /* "sha256:<hex>" of the uncompressed tar */ uint64_t size; };
/* Reads a (compressed) layer tar from fd until EOF and extracts it into dest (an existing empty dir)
 * in overlayfs form (whiteouts → 0:0 char devices, opaque dirs → trusted.overlay.opaque=y). */
int layer_extract_fd(int fd, enum layer_compression comp, const char *dest,
                     const struct layer_limits *lim, struct layer_result *res, struct merr *err);
