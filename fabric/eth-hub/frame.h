/* plexus — Ethernet frames as an Ethernet segment sees them.
 *
 * A frame here is what a QEMU NIC backend, a tap or a pcap file carries:
 * destination MAC, source MAC, EtherType (or an 802.1Q tag, TPID 0x8100,
 * then the EtherType), payload. No preamble, no FCS. Sizes are not checked
 * against Ethernet's 64..1518 bytes: guests with offloads and jumbo frames
 * send shorter and longer ones, and the segment passes them on. The only
 * limits are PX_ETH_MIN_FRAME (shorter is not a frame at all) and
 * PX_ETH_MAX_FRAME (what one record of the data plane can carry, rec.h).
 *
 * Only the outer tag is looked at: a QinQ frame (0x8100 inside 0x8100) is a
 * tagged frame whose EtherType is 0x8100. The 802.1ad TPID 0x88a8 is an
 * ordinary EtherType here. The tag's DEI bit is not kept: px_eth_hdr has no
 * field for it and px_eth_tag writes it as 0.
 *
 * Every function here is pure: no allocation, no I/O, no global state;
 * safe from any thread and inside any callback.
 */
#ifndef PX_ETH_FRAME_H
#define PX_ETH_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fabric/core/err.h"

#define PX_ETH_ALEN       6
#define PX_ETH_HLEN       14
#define PX_ETH_VLAN_HLEN  4
#define PX_ETH_MIN_FRAME  14u /* dst, src, type: shorter is garbage */
#define PX_ETH_MAX_FRAME  65535u
#define PX_ETH_P_8021Q    0x8100u
#define PX_ETH_VID_MASK   0x0fffu /* the TCI's VLAN id bits */
#define PX_ETH_MAC_STRLEN 18      /* "52:54:00:12:34:56" and its NUL */

/* A parsed header. The pointers point into the frame given to
 * px_eth_parse and are valid as long as it is. */
typedef struct px_eth_hdr {
    const uint8_t *dst, *src; /* into the frame */
    bool tagged;              /* an 802.1Q tag (TPID 0x8100) follows the source */
    uint16_t vid;             /* the tag's VLAN id 0..4095; 0 when untagged */
    uint8_t pcp;              /* the tag's priority; 0 when untagged */
    uint16_t ethertype;       /* after the tag, if any */
    size_t hlen;              /* 14, or 18 when tagged */
} px_eth_hdr;

/* Parse the header of the len bytes at f into *h. Nothing past the header
 * is looked at. Errors (h is then all zero, em says why):
 *   PX_E_TRUNCATED  "frame of N bytes is shorter than an Ethernet header
 *                   (14)", or "... than a tagged Ethernet header (18)" when
 *                   the TPID is 0x8100 but the tag is cut off;
 *   PX_E_TOOBIG     len > PX_ETH_MAX_FRAME. */
px_err px_eth_parse(const uint8_t *f, size_t len, px_eth_hdr *h, px_errmsg *em);

/* A group (multicast or broadcast) address: the I/G bit, bit 0 of byte 0. */
static inline bool px_eth_mac_is_group(const uint8_t *mac)
{
    return mac[0] & 1;
}

/* Remove the 802.1Q tag of the tagged frame at f (the caller checked it with
 * px_eth_parse) in place: the 12 address bytes move 4 bytes forward over
 * the tag. Returns f + 4, where the untagged frame now starts, and
 * subtracts 4 from *len. The 4 bytes at f are left as they were. */
uint8_t *px_eth_untag(uint8_t *f, size_t *len);

/* Write the untagged frame f of len bytes to out with an 802.1Q tag
 * carrying vid (low 12 bits used) and pcp (low 3 bits used), DEI 0. out has
 * room for len + 4 bytes and either does not overlap f or is exactly f - 4
 * (tagging in place in 4 bytes of headroom). Returns len + 4; 0, writing
 * nothing, when len < 12 (no addresses to put the tag after). */
size_t px_eth_tag(const uint8_t *f, size_t len, uint16_t vid, uint8_t pcp, uint8_t *out);

/* "52:54:00:12:34:56": lower-case hex, colons, NUL-terminated. */
void px_eth_mac_str(const uint8_t mac[6], char out[18]);

/* Parse "52:54:00:12:34:56" (either case, exactly 6 pairs of hex digits
 * separated by colons, nothing else). On false mac is left unchanged. */
bool px_eth_mac_parse(const char *s, uint8_t mac[6]);

#endif
