/* Docker's multiplexed stream format ("stdcopy"): each frame is an 8-byte
 * header [stream, 0, 0, 0, size as big-endian uint32] and size payload bytes. */
#include "api.h"

#include <string.h>

void stdcopy_header(uint8_t out[STDCOPY_HEADER_LEN], enum stdcopy_stream stream, uint32_t size)
{
    out[0] = (uint8_t)stream;
    out[1] = out[2] = out[3] = 0;
    out[4] = (uint8_t)(size >> 24);
    out[5] = (uint8_t)(size >> 16);
    out[6] = (uint8_t)(size >> 8);
    out[7] = (uint8_t)size;
}

void stdcopy_decoder_init(struct stdcopy_decoder *d)
{
    memset(d, 0, sizeof *d);
}

bool stdcopy_decoder_idle(const struct stdcopy_decoder *d)
{
    return d->header_len == 0 && d->remaining == 0;
}

int stdcopy_decode(struct stdcopy_decoder *d, const uint8_t *buf, size_t len,
                   stdcopy_sink_fn sink, void *data, struct merr *err)
{
    while (len > 0) {
        if (d->remaining == 0) {
            size_t take = STDCOPY_HEADER_LEN - d->header_len;
            if (take > len)
                take = len;
            memcpy(d->header + d->header_len, buf, take);
            d->header_len += take;
            buf += take;
            len -= take;
            if (d->header_len < STDCOPY_HEADER_LEN)
                return 0;
            if (d->header[0] > STDCOPY_SYSTEMERR)
                return merr_set(err, MERR_PROTOCOL, 0, "unknown stream id %u in multiplexed stream",
                                d->header[0]);
            d->stream = (enum stdcopy_stream)d->header[0];
            d->remaining = (uint32_t)d->header[4] << 24 | (uint32_t)d->header[5] << 16 |
                           (uint32_t)d->header[6] << 8 | (uint32_t)d->header[7];
            d->header_len = 0;
            continue;
        }
        size_t take = d->remaining < len ? d->remaining : len;
        if (sink(data, d->stream, buf, take, err) < 0)
            return -1;
        d->remaining -= (uint32_t)take;
        buf += take;
        len -= take;
    }
    return 0;
}
