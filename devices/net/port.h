/* plexus — one Ethernet port of a segment on this node.
 *
 * A port is the node's end of one guest NIC (or of a host interface):
 *
 *   STREAM  QEMU `-netdev stream,server=on,addr.type=unix,addr.path=PATH`.
 *           QEMU listens; the port connects, and reconnects with back-off
 *           whenever QEMU is not there yet, quits or restarts. Framing is
 *           devices/net/stream.h.
 *   DGRAM   QEMU `-netdev dgram,local.path=PATH,remote.path=BIND_PATH`:
 *           one datagram is one frame. The port binds BIND_PATH and sends to
 *           PATH; datagrams from any other sender are ignored (malformed).
 *   TAP     a Linux TAP interface (IFF_TAP|IFF_NO_PI), created if absent
 *           and brought up; one read()/write() per frame.
 *
 * Output: px_netport_send copies the frame into the port's outgoing queue
 * and returns; everything sent during one loop iteration is written right
 * before the loop next polls (a uv_prepare handle), in one write(2) for
 * STREAM and sendmmsg(2) batches for DGRAM, or as soon as 256 KiB wait.
 * What the peer does not take stays queued and is written when the socket
 * becomes writable; beyond PX_NETPORT_OUTQ_MAX bytes queued (QEMU not
 * reading) frames are dropped and counted. Nothing ever blocks.
 *
 * Input: a STREAM port reads up to 256 KiB per wake-up and decodes in place;
 * DGRAM reads up to 32 datagrams per recvmmsg(2); TAP up to 64 frames.
 * on_rx runs for each frame, then on_batch once (the caller's flush point).
 *
 * Bad input cuts a port off alone (px_netport_cutoff): a STREAM connection
 * is closed and reopened after a hold; DGRAM and TAP input is read and
 * discarded for the hold.
 *
 * Callbacks never run inside a px_netport_* call that returns an error,
 * nor after px_netport_close. Loop thread only.
 */
#ifndef PX_NET_PORT_H
#define PX_NET_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "devices/net/stream.h"
#include "fabric/core/err.h"

typedef enum px_netport_kind {
    PX_NETPORT_STREAM,
    PX_NETPORT_DGRAM,
    PX_NETPORT_TAP
} px_netport_kind;

typedef struct px_netport px_netport;

#define PX_NETPORT_OUTQ_MAX    (4u << 20) /* bytes queued for the peer before frames drop */
#define PX_NETPORT_DGRAM_MAX   16384u     /* longest DGRAM frame received (longer: malformed) */
#define PX_NETPORT_RETRY_MAX   2000u      /* STREAM reconnect back-off ceiling, ms */
#define PX_NETPORT_BAD_HOLD_MS 1000u      /* STREAM hold after a framing error, ms */

typedef struct px_netport_stats {
    uint64_t rx, rx_bytes; /* frames (and their bytes) from the peer, passed to on_rx */
    uint64_t tx, tx_bytes; /* frames (and bytes) written to the peer */
    uint64_t tx_dropped;   /* frames for the peer dropped: not connected, queue full, refused */
    uint64_t malformed;    /* bad input: framing errors, wrong DGRAM sender, oversized */
    uint64_t cutoffs;      /* px_netport_cutoff calls, including the port's own */
    uint64_t connects;     /* STREAM: connections made; DGRAM/TAP: 1 once open */
    bool connected;        /* STREAM: connected now; DGRAM: QEMU's socket took the last
                              frame or sent one; TAP: open */
} px_netport_stats;

/* f (len bytes) arrived on p; f is valid only during the call. */
typedef void (*px_netport_rx_cb)(void *ud, px_netport *p, const uint8_t *f, size_t len);
/* After a burst of reads that delivered at least one frame: flush point. */
typedef void (*px_netport_batch_cb)(void *ud, px_netport *p);
/* Connection state changed (STREAM connect / disconnect; DGRAM: QEMU's
 * socket appeared or went). */
typedef void (*px_netport_state_cb)(void *ud, px_netport *p, bool connected);

typedef struct px_netport_opts {
    px_netport_kind kind;
    const char *path;      /* STREAM: QEMU's listening socket (QEMU is the server:
                              -netdev stream,server=on); the node connects and reconnects.
                              DGRAM: QEMU's own socket path (its local.path=), where the
                              node sends */
    const char *bind_path; /* DGRAM: the node's socket (QEMU's remote.path=); an old file
                              there is replaced, and removed at close */
    const char *ifname;    /* TAP: interface name; created if absent and brought up */
    const char *name;      /* for logs: "lab/guest/eth0" */
    uint32_t id;           /* the caller's number for it */
    uint32_t retry_ms;     /* STREAM: first reconnect delay, 0 = 100 ms, doubling to 2 s
                              while it fails (a connection closed within a second
                              counts as failing) */
    px_netport_rx_cb on_rx;
    px_netport_batch_cb on_batch; /* may be NULL */
    px_netport_state_cb on_state; /* may be NULL */
    void *ud;
} px_netport_opts;

/* Open a port on loop; strings in o are copied. On error *out is NULL, em
 * says why (and what to do) and no callback ever runs.
 *   STREAM never fails because QEMU is not there yet: it keeps retrying
 *          (the first attempt is made from the loop, not inside this call).
 *   DGRAM  PX_E_IO if bind_path cannot be bound.
 *   TAP    PX_E_UNSUPP without /dev/net/tun; PX_E_IO without permission
 *          (CAP_NET_ADMIN) or when the interface cannot be set up.
 *   PX_E_CONFIG for a path longer than sun_path or a bad interface name. */
px_err px_netport_open(uv_loop_t *loop, const px_netport_opts *o, px_netport **out, px_errmsg *em);

/* Queue f (copied) for the peer. Never blocks, never calls back.
 * PX_E_AGAIN (counted in tx_dropped) when not connected, cut off (STREAM),
 * or PX_NETPORT_OUTQ_MAX bytes already wait; PX_E_TOOBIG (also counted)
 * for len 0 or over PX_NET_STREAM_MAX. Safe inside any port's callbacks. */
px_err px_netport_send(px_netport *p, const uint8_t *f, size_t len);

/* Write what is queued now instead of right before the next poll. Never
 * blocks, never calls back. */
void px_netport_flush(px_netport *p);

/* Bad input from this port: STREAM closes its connection (frames queued for
 * it are dropped and counted) and reconnects after hold_ms; DGRAM and TAP
 * discard input for hold_ms. Logs why (a WARN naming the port), counts a
 * cutoff. A cutoff during a hold restarts the hold. Safe inside on_rx: no
 * further frame of the burst is delivered. */
void px_netport_cutoff(px_netport *p, const char *why, uint32_t hold_ms);

/* Stop (paused) or go on reading frames from the peer: back-pressure. While
 * paused the peer's socket fills and QEMU waits, as on a full link; frames
 * to the peer still go, a STREAM disconnect is still noticed. A read burst
 * already under way ends first (at most 64 KiB for STREAM). */
void px_netport_pause(px_netport *p, bool paused);

void px_netport_stats_get(const px_netport *p, px_netport_stats *out);
uint32_t px_netport_id(const px_netport *p);
const char *px_netport_name(const px_netport *p);
px_netport_kind px_netport_kind_of(const px_netport *p);

/* Close: no callbacks after it returns. Queued output gets one last
 * non-blocking write attempt. The memory is freed once libuv has closed the
 * handles (run the loop). Safe inside on_rx / on_batch / on_state of this
 * port; NULL is ignored. */
void px_netport_close(px_netport *p);

#endif
