/* plexus — QEMU stream framing. See stream.h. */
#include "devices/net/stream.h"

#include <string.h>

void px_stream_dec_init(px_stream_dec *d, uint8_t *buf)
{
    memset(d, 0, sizeof(*d));
    d->buf = buf;
}

void px_stream_hdr(uint32_t len, uint8_t out[4])
{
    out[0] = (uint8_t)(len >> 24);
    out[1] = (uint8_t)(len >> 16);
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* need == 0 with a complete prefix is the "failed" state: a valid prefix
 * always leaves need >= 1. */
static px_err bad_len(const px_stream_dec *d, px_errmsg *em)
{
    uint32_t n = be32(d->hdr);
    return px_errmsg_set(em, PX_E_PROTO, "frame length %u at stream offset %llu is %s", n,
                         (unsigned long long)(d->off - PX_NET_STREAM_HDR),
                         n == 0 ? "0" : "over 65535");
}

px_err px_stream_dec_feed(px_stream_dec *d, const uint8_t *data, size_t len, px_stream_frame_cb cb,
                          void *ud, px_errmsg *em)
{
    if (d->have_hdr == PX_NET_STREAM_HDR && d->need == 0)
        return bad_len(d, em);
    while (len > 0) {
        if (d->have_hdr < PX_NET_STREAM_HDR) {
            size_t k = PX_NET_STREAM_HDR - d->have_hdr;
            if (k > len)
                k = len;
            memcpy(d->hdr + d->have_hdr, data, k);
            d->have_hdr += (uint32_t)k;
            d->off += k;
            data += k;
            len -= k;
            if (d->have_hdr < PX_NET_STREAM_HDR)
                break;
            uint32_t n = be32(d->hdr);
            if (n == 0 || n > PX_NET_STREAM_MAX)
                return bad_len(d, em);
            d->need = n;
            d->have = 0;
        }
        /* Header complete: collect the body. */
        if (d->have == 0 && len >= d->need) {
            uint32_t n = d->need;
            d->have_hdr = 0;
            d->need = 0;
            d->off += n;
            cb(ud, data, n);
            data += n;
            len -= n;
            continue;
        }
        size_t k = d->need - d->have;
        if (k > len)
            k = len;
        memcpy(d->buf + d->have, data, k);
        d->have += (uint32_t)k;
        d->off += k;
        data += k;
        len -= k;
        if (d->have == d->need) {
            uint32_t n = d->need;
            d->have_hdr = 0;
            d->need = 0;
            d->have = 0;
            cb(ud, d->buf, n);
        }
    }
    return PX_OK;
}
