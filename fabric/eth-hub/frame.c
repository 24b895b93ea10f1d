/* Ethernet frame headers. See frame.h. */
#include "frame.h"
#include "fabric/core/text.h"

#include <string.h>

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

px_err px_eth_parse(const uint8_t *f, size_t len, px_eth_hdr *h, px_errmsg *em)
{
    memset(h, 0, sizeof(*h));
    if (len > PX_ETH_MAX_FRAME)
        return px_errmsg_set(em, PX_E_TOOBIG, "frame of %zu bytes is longer than %u", len,
                             PX_ETH_MAX_FRAME);
    if (len < PX_ETH_HLEN)
        return px_errmsg_set(em, PX_E_TRUNCATED,
                             "frame of %zu bytes is shorter than an Ethernet header (%d)", len,
                             PX_ETH_HLEN);
    uint16_t type = be16(f + 2 * PX_ETH_ALEN);
    if (type == PX_ETH_P_8021Q) {
        if (len < PX_ETH_HLEN + PX_ETH_VLAN_HLEN)
            return px_errmsg_set(em, PX_E_TRUNCATED,
                                 "frame of %zu bytes is shorter than a tagged Ethernet header (%d)",
                                 len, PX_ETH_HLEN + PX_ETH_VLAN_HLEN);
        uint16_t tci = be16(f + PX_ETH_HLEN);
        h->tagged = true;
        h->vid = tci & PX_ETH_VID_MASK;
        h->pcp = (uint8_t)(tci >> 13);
        h->ethertype = be16(f + PX_ETH_HLEN + 2);
        h->hlen = PX_ETH_HLEN + PX_ETH_VLAN_HLEN;
    } else {
        h->ethertype = type;
        h->hlen = PX_ETH_HLEN;
    }
    h->dst = f;
    h->src = f + PX_ETH_ALEN;
    return PX_OK;
}

uint8_t *px_eth_untag(uint8_t *f, size_t *len)
{
    memmove(f + PX_ETH_VLAN_HLEN, f, 2 * PX_ETH_ALEN);
    *len -= PX_ETH_VLAN_HLEN;
    return f + PX_ETH_VLAN_HLEN;
}

size_t px_eth_tag(const uint8_t *f, size_t len, uint16_t vid, uint8_t pcp, uint8_t *out)
{
    /* In this order, out == f - 4 works: the addresses move back first, the
     * tag lands where they were, and the rest is already in place. */
    if (len < 2 * PX_ETH_ALEN)
        return 0;
    uint16_t tci = (uint16_t)((pcp & 7u) << 13 | (vid & PX_ETH_VID_MASK));
    memmove(out, f, 2 * PX_ETH_ALEN);
    out[12] = PX_ETH_P_8021Q >> 8;
    out[13] = PX_ETH_P_8021Q & 0xff;
    out[14] = (uint8_t)(tci >> 8);
    out[15] = (uint8_t)tci;
    memmove(out + 16, f + 12, len - 12);
    return len + PX_ETH_VLAN_HLEN;
}

void px_eth_mac_str(const uint8_t mac[6], char out[18])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < PX_ETH_ALEN; i++) {
        out[3 * i] = hex[mac[i] >> 4];
        out[3 * i + 1] = hex[mac[i] & 15];
        out[3 * i + 2] = i == PX_ETH_ALEN - 1 ? '\0' : ':';
    }
}

bool px_eth_mac_parse(const char *s, uint8_t mac[6])
{
    uint8_t m[PX_ETH_ALEN];
    for (int i = 0; i < PX_ETH_ALEN; i++) {
        int hi = px_hex_digit(s[3 * i]);
        int lo = hi < 0 ? -1 : px_hex_digit(s[3 * i + 1]);
        if (lo < 0)
            return false;
        char sep = s[3 * i + 2];
        if (sep != (i == PX_ETH_ALEN - 1 ? '\0' : ':'))
            return false;
        m[i] = (uint8_t)(hi << 4 | lo);
    }
    memcpy(mac, m, sizeof(m));
    return true;
}
