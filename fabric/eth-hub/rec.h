/* plexus — Ethernet frame records: many frames in one data-plane message.
 *
 * A segment's data plane moves frames in batches: one message carries a
 * binary blob of records packed back to back, no padding, no count (the
 * blob's length ends it). Each record is a 16-byte header, big-endian,
 * then the frame:
 *
 *   offset 0   u32 len     frame bytes that follow, PX_ETH_MIN_FRAME..
 *                          PX_ETH_MAX_FRAME
 *   offset 4   u16 vid     the VLAN the frame belongs to, 1..4094; 0 = none
 *   offset 6   u16 flags   the segment service's; carried unchanged
 *   offset 8   u64 ts_ns   the sender's timestamp
 *   offset 16  len bytes   the frame (frame.h), as on the wire
 *
 * The blob comes from a peer: px_ethrec_next checks every field before it
 * trusts it and never reads outside [buf, buf + len).
 *
 * Pure: no allocation, no I/O, no global state; any thread, any callback.
 */
#ifndef PX_ETH_REC_H
#define PX_ETH_REC_H

#include <stddef.h>
#include <stdint.h>

#include "fabric/core/err.h"
#include "fabric/eth-hub/frame.h"

/* header (16 bytes, big-endian): u32 len, u16 vid (0 = none), u16 flags, u64 ts_ns; then len frame
 * bytes */
#define PX_ETHREC_HDR     16u
#define PX_ETHREC_MAX_VID 4094u /* 4095 is reserved by 802.1Q */

/* One record. frame points into the blob it was read from (px_ethrec_next)
 * or at the caller's frame (px_ethrec_put). */
typedef struct px_ethrec {
    uint16_t vid;
    uint16_t flags;
    uint64_t ts_ns;
    const uint8_t *frame;
    uint32_t len;
} px_ethrec;

/* Bytes a record of a len-byte frame takes in the blob. */
static inline size_t px_ethrec_size(uint32_t len)
{
    return PX_ETHREC_HDR + len;
}

/* Append r at buf (cap bytes free there). Returns the bytes written,
 * px_ethrec_size(r->len); 0, writing nothing, if they do not fit in cap or
 * r is not a record px_ethrec_next would accept (len outside
 * PX_ETH_MIN_FRAME..PX_ETH_MAX_FRAME, vid > PX_ETHREC_MAX_VID): a blob we
 * write is never one a peer refuses. r->frame may not overlap buf. */
size_t px_ethrec_put(uint8_t *buf, size_t cap, const px_ethrec *r);

/* Read the record at *off of the len-byte blob buf.
 *   PX_OK           *r filled (r->frame points into buf), *off advanced past
 *                   the record;
 *   PX_E_NOTFOUND   no more records: *off == len;
 *   PX_E_TRUNCATED  the header or the frame runs past the end of the blob;
 *   PX_E_PROTO      frame shorter than PX_ETH_MIN_FRAME or longer than
 *                   PX_ETH_MAX_FRAME, vid > PX_ETHREC_MAX_VID.
 * On an error em says what and at which offset, and *off and *r are left
 * as they were: the rest of the blob cannot be trusted, the caller drops it
 * (the records before it were good). *off > len is PX_E_TRUNCATED too. */
px_err px_ethrec_next(const uint8_t *buf, size_t len, size_t *off, px_ethrec *r, px_errmsg *em);

#endif
