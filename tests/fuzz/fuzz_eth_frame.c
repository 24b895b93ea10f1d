/* plexus — libFuzzer target: Ethernet headers and 802.1Q tags
 * (fabric/eth-hub/frame.h), the first thing every frame from a guest
 * meets on a segment.
 *
 * Input: bytes 0..1 are a TCI (PCP, DEI, VID) to tag with; the rest is the
 * frame, any length.
 *
 * Properties checked on every input:
 *   - a refused frame leaves the header all zero, and is refused for being
 *     shorter than its header (14, or 18 with TPID 0x8100);
 *   - an accepted frame's header fields are the bytes they come from;
 *   - tagged: untagging in place, then tagging with the parsed VID and PCP
 *     gives back the input (DEI cleared: it is not kept);
 *   - untagged: tagging then parsing gives the VID and PCP asked for and the
 *     same EtherType, and untagging that gives back the input;
 *   - MAC text: formatting either address and parsing it again round-trips.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fabric/eth-hub/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

static void check_mac(const uint8_t *mac)
{
    char s[PX_ETH_MAC_STRLEN];
    uint8_t back[PX_ETH_ALEN];
    px_eth_mac_str(mac, s);
    CHECK(strlen(s) == 17);
    CHECK(px_eth_mac_parse(s, back));
    CHECK(memcmp(back, mac, PX_ETH_ALEN) == 0);
}

static void check_tagged(const uint8_t *in, size_t n, const px_eth_hdr *h)
{
    CHECK(h->hlen == 18);
    uint8_t *buf = malloc(n);
    uint8_t *out = malloc(n);
    if (!buf || !out)
        goto done;
    memcpy(buf, in, n);
    size_t len = n;
    uint8_t *u = px_eth_untag(buf, &len);
    CHECK(u == buf + 4 && len == n - 4);
    CHECK(px_eth_tag(u, len, h->vid, h->pcp, out) == n);
    uint8_t want[18];
    memcpy(want, in, 18);
    want[14] &= 0xef; /* DEI */
    CHECK(memcmp(out, want, 18) == 0);
    CHECK(memcmp(out + 18, in + 18, n - 18) == 0);
done:
    free(out);
    free(buf);
}

static void check_untagged(const uint8_t *in, size_t n, const px_eth_hdr *h, uint16_t tci)
{
    CHECK(h->hlen == 14 && h->vid == 0 && h->pcp == 0);
    if (n + 4 > PX_ETH_MAX_FRAME)
        return;
    /* Tag in place in 4 bytes of headroom, as a receive path would. */
    uint8_t *buf = malloc(n + 4);
    if (!buf)
        return;
    memcpy(buf + 4, in, n);
    uint16_t vid = tci & PX_ETH_VID_MASK;
    uint8_t pcp = (uint8_t)(tci >> 13);
    CHECK(px_eth_tag(buf + 4, n, tci, pcp, buf) == n + 4);
    px_eth_hdr t;
    CHECK(px_eth_parse(buf, n + 4, &t, NULL) == PX_OK);
    CHECK(t.tagged && t.vid == vid && t.pcp == pcp && t.ethertype == h->ethertype);
    CHECK(memcmp(t.dst, in, 12) == 0);
    size_t len = n + 4;
    uint8_t *u = px_eth_untag(buf, &len);
    CHECK(len == n && memcmp(u, in, n) == 0);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint16_t tci = (uint16_t)(data[0] << 8 | data[1]);
    /* A copy of exactly the input's length, so ASan sees any over-read. */
    size_t n = size - 2;
    uint8_t *f = malloc(n ? n : 1);
    if (!f)
        return 0;
    memcpy(f, data + 2, n);

    px_eth_hdr h, zero;
    memset(&zero, 0, sizeof(zero));
    px_errmsg em;
    px_err err = px_eth_parse(f, n, &h, &em);
    if (err != PX_OK) {
        CHECK(err == PX_E_TRUNCATED);
        CHECK(memcmp(&h, &zero, sizeof(h)) == 0);
        CHECK(n < 14 || (n < 18 && f[12] == 0x81 && f[13] == 0x00));
        CHECK(em.text[0] != '\0');
        free(f);
        return 0;
    }
    CHECK(h.dst == f && h.src == f + 6);
    CHECK(h.tagged == (f[12] == 0x81 && f[13] == 0x00));
    CHECK(h.hlen <= n);
    CHECK(h.ethertype == (f[h.hlen - 2] << 8 | f[h.hlen - 1]));
    check_mac(h.dst);
    check_mac(h.src);
    if (h.tagged) {
        CHECK(h.vid == ((f[14] << 8 | f[15]) & 0xfff) && h.pcp == f[14] >> 5);
        check_tagged(f, n, &h);
    } else {
        check_untagged(f, n, &h, tci);
    }
    free(f);
    return 0;
}
