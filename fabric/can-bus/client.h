/* plexus — a tool on a CAN bus: `plexus can send / dump / replay`, bench/can.
 *
 * After TOOL ["can", "open"] (docs/can-bus.md) the bus home has admitted
 * the tool's public key on its data plane and named its data endpoint and
 * key. A px_canclient opens a CLIENT channel there, pinned to that key,
 * JOINs the bus as member px_can_member_id("tool:" + own public key) and
 * JOINs again every keep-alive period (the home forgets a tool silent for
 * 6 s). Submitted frames go out as SUBMIT records from endpoint 1,
 * coalesced into one CAN message per loop iteration (at most
 * PX_WIRE_MAX_CAN_BATCH records). A record's tag on the wire is a random
 * 32-bit session number chosen at open (high half) and the caller's 32-bit
 * tag (low half): two tools with the same key (so the same member id) tell
 * their frames apart by it.
 *
 * The home answers with DELIVER records, passed to on_rec in arrival order:
 *   seq != 0  a frame on the bus, anyone's; own == true (this client sent
 *             it: its member id and session) makes it the TX-complete of
 *             the submitted frame `tag`;
 *   seq == 0  the home did not put this client's frame `tag` on the bus
 *             (back-pressure, a fault, bus-off). Refusals of another
 *             session's frames are not passed on.
 * Bus sequence numbers have no holes. A hole in what arrives is frames lost
 * between the home and this tool; it is counted and reported to on_lost,
 * never skipped silently. The first record sets where counting starts; a
 * sequence going back to 1 is a home that started the bus afresh (a
 * PX_CANCLIENT_RESET event; counting starts again); other records at or
 * below what was seen are counted as stale and dropped.
 *
 * Ownership and threads: the loop and transport are borrowed and must
 * outlive the client; strings in the options are copied. Loop thread only;
 * nothing here blocks. Callbacks run from the loop, never from inside a
 * px_canclient_* call; they may call px_canclient_submit and
 * px_canclient_close.
 */
#ifndef PX_CANBUS_CLIENT_H
#define PX_CANBUS_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "devices/can/frame.h"
#include "fabric/core/err.h"
#include "fabric/core/transport.h"

#define PX_CANCLIENT_EP           1u    /* the endpoint a tool's frames come from */
#define PX_CANCLIENT_KEEPALIVE_MS 1000u /* JOIN period by default */
#define PX_CANCLIENT_LINGER_MS    100u  /* close: time the LEAVE gets to go out */

typedef struct px_canclient px_canclient;

/* One DELIVER record, decoded and checked. */
typedef struct px_canclient_rec {
    uint64_t seq;   /* bus sequence; 0: the home refused this tool's frame `tag` */
    uint64_t ts_ns; /* bus time, ns since the Unix epoch (the home's clock) */
    uint32_t node;  /* source member id */
    uint32_t ep;    /* source endpoint */
    uint64_t tag;   /* source's tag; for own frames the tag given to submit */
    bool own;       /* sent by this client (its member id and session) */
    px_can_frame frame;
} px_canclient_rec;

typedef enum px_canclient_event {
    PX_CANCLIENT_CONNECTED,    /* handshake with the home done (also after a break) */
    PX_CANCLIENT_DISCONNECTED, /* the connection broke; the channel reconnects itself */
    PX_CANCLIENT_AUTH_FAILED,  /* the home refused our key, or its key is not the pinned one */
    PX_CANCLIENT_WRITABLE,     /* room again after submit returned PX_E_AGAIN */
    PX_CANCLIENT_RESET,        /* the bus sequence went back to 1 */
} px_canclient_event;

typedef struct px_canclient_stats {
    uint64_t submitted; /* frames accepted by px_canclient_submit */
    uint64_t delivered; /* records with seq != 0 passed to on_rec */
    uint64_t own;       /* of those, TX-completes of this tool's frames */
    uint64_t refused;   /* records with seq == 0 for this client's frames */
    uint64_t lost;      /* sequence numbers that never arrived */
    uint64_t stale;     /* records at or below the last sequence seen, dropped */
    uint64_t resets;    /* sequence went back to 1 */
    uint64_t bad;       /* undecodable messages and frames, other buses, other ops */
} px_canclient_stats;

typedef void (*px_canclient_rec_cb)(px_canclient *cc, const px_canclient_rec *r, void *ud);
/* n sequence numbers were skipped; next is the one that arrived. */
typedef void (*px_canclient_lost_cb)(px_canclient *cc, uint64_t n, uint64_t next, void *ud);
typedef void (*px_canclient_event_cb)(px_canclient *cc, px_canclient_event ev, void *ud);

typedef struct px_canclient_opts {
    uv_loop_t *loop;        /* borrowed; the caller runs it */
    px_transport *tp;       /* borrowed; its key pair is the tool's identity */
    const char *self_key;   /* that key pair's public key (Z85) */
    const char *endpoint;   /* the home's data endpoint (TOOL_REPLY ep) */
    const char *server_key; /* the home's data key (TOOL_REPLY key) */
    const char *lab, *bus;
    uint32_t keepalive_ms;          /* JOIN period; 0 = PX_CANCLIENT_KEEPALIVE_MS */
    px_canclient_rec_cb on_rec;     /* required */
    px_canclient_lost_cb on_lost;   /* optional */
    px_canclient_event_cb on_event; /* optional */
    void *ud;
} px_canclient_opts;

/* Open the channel and queue the first JOIN. PX_E_INVAL (em says which)
 * for a missing callback, a malformed key or an empty lab or bus name;
 * channel errors as px_chan_open. On error nothing is left to release and
 * no callback runs. */
px_err px_canclient_open(const px_canclient_opts *o, px_canclient **out, px_errmsg *em);

/* This tool's member id on the bus. */
uint32_t px_canclient_member_id(const px_canclient *cc);

/* Queue frame *f (which must pass px_can_check) with `tag`; it leaves
 * before the loop next polls. PX_E_INVAL for an invalid frame,
 * PX_E_AGAIN when PX_WIRE_MAX_CAN_BATCH frames are waiting and the channel
 * refuses more (a PX_CANCLIENT_WRITABLE event follows once it has room),
 * PX_E_CLOSED after px_canclient_close. Never calls a callback. */
px_err px_canclient_submit(px_canclient *cc, const px_can_frame *f, uint32_t tag);

void px_canclient_stats_get(const px_canclient *cc, px_canclient_stats *out);

/* Stop: frames still waiting are handed to the channel, then a LEAVE (both
 * best effort: what the connection has not sent PX_CANCLIENT_LINGER_MS
 * later is dropped). No callback runs any more except done, which runs
 * from the loop once everything is released and cc is freed; done may be
 * NULL. Safe inside the client's callbacks; a second call does nothing. */
void px_canclient_close(px_canclient *cc, void (*done)(void *ud), void *ud);

#endif
