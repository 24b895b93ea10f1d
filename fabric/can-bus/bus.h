/* plexus — the CAN bus semantics, as pure state machines.
 *
 * A bus has one home (the node placement chose) and member nodes. Members
 * submit frames to the home; the home puts every frame of the bus into one
 * global order (sequence numbers 1, 2, 3, ...) with a bus timestamp and
 * emits it; the node sends each emitted frame once to every member node;
 * each member hands it to its local endpoints. Hence every member sees every
 * frame in the same order. A member that finds a gap in the sequence counts
 * the missing frames as lost (never silent); a repeated or old sequence is
 * counted and dropped. The endpoint that sent a frame gets it back only as
 * TX-complete (like SocketCAN's echo), the others receive it.
 *
 * Modes (topology `mode:`):
 *   ideal  a frame is sequenced the moment it arrives.
 *   timed  the home models the wire: a frame occupies the bus for its exact
 *          length (timing.h: stuff bits, CRC, FD data phase at the data bit
 *          rate, intermission) at the configured bit rates; frames waiting
 *          when the bus becomes free arbitrate by their arbitration bits
 *          (lowest id wins); a frame is emitted when its last bit is on the
 *          wire, stamped with that time. At most PX_CANBUS_MAX_PENDING frames
 *          wait: past that, submit says PX_E_AGAIN and the sender must hold
 *          back (its endpoint stops reading) instead of queueing without bound.
 *
 * No I/O, no clock of its own (callers pass CLOCK_MONOTONIC nanoseconds), no
 * allocation after init; emit callbacks run synchronously inside the call
 * that caused them. Loop thread only.
 */
#ifndef PX_CANBUS_BUS_H
#define PX_CANBUS_BUS_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/can/frame.h"
#include "fabric/core/err.h"

#define PX_CANBUS_MAX_PENDING 256u /* timed mode: frames waiting for the bus */
#define PX_CANBUS_MAX_EPS     64u  /* local endpoints of one member */

typedef enum px_canbus_mode { PX_CANBUS_IDEAL = 0, PX_CANBUS_TIMED = 1 } px_canbus_mode;

/* One frame in the bus's global order. */
typedef struct px_canbus_msg {
    uint64_t seq;      /* 1, 2, 3, ... per bus */
    uint64_t ts_ns;    /* bus time: sequenced (ideal) or end of frame (timed) */
    uint32_t src_node; /* the member node that submitted it */
    uint32_t src_ep;   /* the endpoint on that node */
    uint64_t src_tag;  /* the sender's own tag, returned with TX-complete */
    px_can_frame frame;
} px_canbus_msg;

typedef void (*px_canbus_emit_cb)(void *ud, const px_canbus_msg *m);

typedef struct px_canbus_stats {
    uint64_t frames, bytes; /* emitted */
    uint64_t busy_ns;       /* timed: wire time of emitted frames (load = busy / elapsed) */
    uint64_t pushed_back;   /* submits refused with PX_E_AGAIN */
    uint64_t invalid;       /* submits refused as malformed */
    uint64_t errors;        /* error frames emitted */
} px_canbus_stats;

typedef struct px_canbus_pending {
    px_canbus_msg m;
    uint64_t arrival_ns;
    uint64_t order; /* submit order: the tie-break after arbitration */
} px_canbus_pending;

typedef struct px_canbus_home {
    px_canbus_mode mode;
    uint32_t bitrate, data_bitrate;
    uint64_t next_seq;
    uint64_t submitted;
    /* timed mode */
    uint64_t bus_free_ns;
    bool on_bus;
    px_canbus_pending wire; /* the frame being transmitted */
    uint64_t wire_end_ns;
    uint32_t n_pending;
    px_canbus_pending pending[PX_CANBUS_MAX_PENDING];
    px_canbus_stats stats;
    px_canbus_emit_cb emit;
    void *ud;
} px_canbus_home;

/* bitrate/data_bitrate in bit/s (data_bitrate 0 for classic buses); timed
 * mode needs bitrate > 0. PX_E_INVAL otherwise. */
px_err px_canbus_home_init(px_canbus_home *h, px_canbus_mode mode, uint32_t bitrate,
                           uint32_t data_bitrate, px_canbus_emit_cb emit, void *ud);

/* A member's frame arrives at the home at now_ns. Ideal: emitted at once.
 * Timed: queued; px_canbus_home_advance emits it when the wire model says.
 * PX_E_PROTO (counted in stats.invalid) for a malformed frame, PX_E_AGAIN
 * (stats.pushed_back) when PX_CANBUS_MAX_PENDING frames already wait. */
px_err px_canbus_home_submit(px_canbus_home *h, uint32_t src_node, uint32_t src_ep,
                             uint64_t src_tag, const px_can_frame *f, uint64_t now_ns);

/* Timed mode: run the wire up to now_ns, emitting every frame whose last
 * bit is on the wire by then. Returns when to call again (UINT64_MAX: the
 * bus is idle). Ideal mode: returns UINT64_MAX. */
uint64_t px_canbus_home_advance(px_canbus_home *h, uint64_t now_ns);

/* ---- members ---- */

typedef struct px_canbus_member_stats {
    uint64_t delivered; /* frames accepted in order */
    uint64_t lost;      /* sequence numbers that never arrived */
    uint64_t stale;     /* repeated or old sequence numbers, dropped */
} px_canbus_member_stats;

/* rx: endpoint ep receives m. txdone: endpoint ep's own frame completed. */
typedef void (*px_canbus_rx_cb)(void *ud, uint32_t ep, const px_canbus_msg *m);
typedef void (*px_canbus_txdone_cb)(void *ud, uint32_t ep, const px_canbus_msg *m);

typedef struct px_canbus_member {
    uint32_t node;
    uint64_t expect_seq; /* next sequence number wanted */
    uint32_t n_eps;
    uint32_t eps[PX_CANBUS_MAX_EPS];
    px_canbus_member_stats stats;
    px_canbus_rx_cb rx;
    px_canbus_txdone_cb txdone;
    void *ud;
} px_canbus_member;

void px_canbus_member_init(px_canbus_member *m, uint32_t node, px_canbus_rx_cb rx,
                           px_canbus_txdone_cb txdone, void *ud);

/* Local endpoints; PX_E_TOOBIG past PX_CANBUS_MAX_EPS, PX_E_EXISTS twice. */
px_err px_canbus_member_attach(px_canbus_member *m, uint32_t ep);
void px_canbus_member_detach(px_canbus_member *m, uint32_t ep);

/* A frame from the home, in whatever order the network brought it. */
void px_canbus_member_deliver(px_canbus_member *m, const px_canbus_msg *msg);

#endif
