/* Ethernet frame records. See rec.h. */
#include "rec.h"

#include <string.h>

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)get16(p) << 16 | get16(p + 2);
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

size_t px_ethrec_put(uint8_t *buf, size_t cap, const px_ethrec *r)
{
    if (r->len < PX_ETH_MIN_FRAME || r->len > PX_ETH_MAX_FRAME || r->vid > PX_ETHREC_MAX_VID)
        return 0;
    size_t n = px_ethrec_size(r->len);
    if (n > cap)
        return 0;
    put32(buf, r->len);
    put16(buf + 4, r->vid);
    put16(buf + 6, r->flags);
    put64(buf + 8, r->ts_ns);
    memcpy(buf + PX_ETHREC_HDR, r->frame, r->len);
    return n;
}

px_err px_ethrec_next(const uint8_t *buf, size_t len, size_t *off, px_ethrec *r, px_errmsg *em)
{
    size_t o = *off;
    if (o == len)
        return PX_E_NOTFOUND;
    if (o > len)
        return px_errmsg_set(em, PX_E_TRUNCATED, "record offset %zu is past the end (%zu bytes)", o,
                             len);
    size_t left = len - o;
    if (left < PX_ETHREC_HDR)
        return px_errmsg_set(em, PX_E_TRUNCATED,
                             "record at offset %zu: %zu bytes left, a record header is %u", o, left,
                             PX_ETHREC_HDR);
    const uint8_t *p = buf + o;
    uint32_t flen = get32(p);
    uint16_t vid = get16(p + 4);
    if (flen < PX_ETH_MIN_FRAME)
        return px_errmsg_set(em, PX_E_PROTO,
                             "record at offset %zu: frame of %u bytes is shorter than an "
                             "Ethernet header (%u)",
                             o, flen, PX_ETH_MIN_FRAME);
    if (flen > PX_ETH_MAX_FRAME)
        return px_errmsg_set(em, PX_E_PROTO,
                             "record at offset %zu: frame of %u bytes is longer than %u", o, flen,
                             PX_ETH_MAX_FRAME);
    if (vid > PX_ETHREC_MAX_VID)
        return px_errmsg_set(em, PX_E_PROTO, "record at offset %zu: VLAN id %u is over %u", o, vid,
                             PX_ETHREC_MAX_VID);
    if (flen > left - PX_ETHREC_HDR)
        return px_errmsg_set(em, PX_E_TRUNCATED,
                             "record at offset %zu: frame of %u bytes runs past the end (%zu "
                             "bytes left after the header)",
                             o, flen, left - PX_ETHREC_HDR);
    r->len = flen;
    r->vid = vid;
    r->flags = get16(p + 6);
    r->ts_ns = get64(p + 8);
    r->frame = p + PX_ETHREC_HDR;
    *off = o + PX_ETHREC_HDR + flen;
    return PX_OK;
}
