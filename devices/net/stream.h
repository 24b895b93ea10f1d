/* plexus — QEMU `-netdev stream` framing.
 *
 * QEMU 7.2 carries one Ethernet frame (no FCS) as a 4-byte big-endian
 * length followed by the frame, the same in both directions. This module
 * only cuts a byte stream into frames and writes headers: no I/O, no
 * allocation, no logging, so it can be fuzzed on its own
 * (tests/fuzz/fuzz_net_stream.c).
 *
 * Limits: a length of 0 or over PX_NET_STREAM_MAX is a protocol error (QEMU
 * itself closes a stream whose prefix exceeds 69632; nothing plexus carries
 * is longer than 65535). Frames shorter than an Ethernet header (14 bytes)
 * are delivered: judging them is the bridge's business, not the framing's.
 */
#ifndef PX_NET_STREAM_H
#define PX_NET_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "fabric/core/err.h"

#define PX_NET_STREAM_MAX 65535u /* longest frame accepted or produced */
#define PX_NET_STREAM_HDR 4u     /* bytes of length prefix */

/* One frame cut from the stream. f points either into the data being fed
 * (a frame wholly inside one px_stream_dec_feed call: zero-copy) or into the
 * decoder's buffer; valid only until the callback returns. */
typedef void (*px_stream_frame_cb)(void *ud, const uint8_t *f, size_t len);

/* Decoder state. Caller-allocated; plain data, no fini needed.
 *   hdr, have_hdr  length prefix bytes collected so far (0..4)
 *   need           the current frame's length once the prefix is complete
 *   have           bytes of the current frame collected in buf
 *   buf            PX_NET_STREAM_MAX bytes owned by the caller
 *   off            stream bytes consumed since init (for error messages) */
typedef struct px_stream_dec {
    uint8_t hdr[4];
    uint32_t have_hdr, need, have;
    uint8_t *buf;
    uint64_t off;
} px_stream_dec;

/* Start (or restart, for a new connection) a decoder. buf: PX_NET_STREAM_MAX
 * bytes that stay the caller's and must outlive the decoder's use. */
void px_stream_dec_init(px_stream_dec *d, uint8_t *buf);

/* Feed the next len bytes of the stream; cb(ud, frame, len) runs for every
 * frame completed by them, in order, before this returns. A frame split
 * over several calls is assembled in d->buf; one wholly inside data is
 * passed in place.
 *
 * PX_E_PROTO, with em naming the length and its stream offset, when a
 * length prefix is 0 or over PX_NET_STREAM_MAX: frames before it have been
 * delivered, nothing after it is; the stream cannot be resynchronised, so
 * the caller cuts the connection off and calls px_stream_dec_init before
 * feeding a new one (until then every call fails the same way). Never
 * blocks, never allocates. cb may not feed the same decoder. */
px_err px_stream_dec_feed(px_stream_dec *d, const uint8_t *data, size_t len, px_stream_frame_cb cb,
                          void *ud, px_errmsg *em);

/* The 4-byte prefix for a frame of len bytes (big-endian). */
void px_stream_hdr(uint32_t len, uint8_t out[4]);

#endif
