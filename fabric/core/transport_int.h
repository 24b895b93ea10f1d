/* plexus — transport internals, shared by the three files of the module:
 *
 *   transport.c        px_transport: ZeroMQ context, allow-list, ZAP handler
 *   transport_chan.c   px_chan: sockets on the loop, the pump, events, send
 *   transport_queue.c  per-peer queues: peer table, batches, flushing
 *
 * Nothing outside the transport includes this header. Everything here runs
 * on the loop thread; nothing blocks and nothing here calls a user callback
 * unless its comment says so.
 */
#ifndef PX_TRANSPORT_INT_H
#define PX_TRANSPORT_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>
#include <zmq.h>

#include "transport.h"

#define MOD            "transport" /* log module name */
#define TP_PUMP_BUDGET 256         /* messages per socket per loop iteration */

struct px_transport {
    uv_loop_t *loop;
    void *zctx;
    void *zap; /* REP socket serving ZAP requests from this context */
    uv_poll_t zap_poll;
    uv_idle_t zap_idle; /* continues a ZAP pump that ran out of budget */
    px_keypair self;
    char (*allow)[PX_KEY_Z85_LEN + 1]; /* sorted, for bsearch */
    size_t n_allow, cap_allow;
    unsigned n_chans; /* opened and not yet fully closed */
    unsigned mon_seq; /* makes monitor endpoints unique in the context */
    int open_handles; /* the transport is freed when this reaches 0 */
    bool in_prepare;  /* a channel's prepare callback is running */
    uint64_t zap_refused;
};

/* One ZeroMQ message in the making: records back to back. */
typedef struct tp_batch {
    struct tp_batch *next;
    uint8_t *buf; /* owned by msg once has_msg */
    size_t len, cap;
    uint32_t n_rec;
    bool sealed;  /* no more appends: full, or already offered to ZeroMQ */
    bool has_msg; /* msg wraps buf (zero copy), kept across EAGAIN */
    zmq_msg_t msg;
} tp_batch;

/* A destination and its queue: the server on a CLIENT (embedded in the
 * channel), a routing id on a SERVER (in the channel's table, and only
 * while it has something queued or owed). */
typedef struct tp_peer {
    struct tp_peer *dprev, *dnext; /* dirty list: peers with queued batches */
    struct tp_peer *wnext;         /* peers owed an on_writable */
    tp_batch *head, *tail;         /* tail is the open batch */
    size_t queued;                 /* bytes ZeroMQ has not accepted yet */
    size_t want_len;               /* largest record refused while want_writable */
    size_t cap_hint;               /* size of the last batch sent: the next one starts there */
    uint32_t hash;
    bool dirty, want_writable, on_wlist;
    bool pinned; /* its on_writable is running: the caller holds it */
    uint8_t id_len;
    uint8_t id[PX_PEER_ID_MAX];
} tp_peer;

struct px_chan {
    px_transport *t;
    px_chan_role role;
    px_queue_policy policy;
    size_t queue_bytes, batch_bytes;
    px_chan_recv_cb on_recv;
    px_chan_event_cb on_event;
    px_chan_writable_cb on_writable;
    void *ud;
    char *endpoint;
    char server_key[PX_KEY_Z85_LEN + 1];

    void *sock, *mon;
    uv_poll_t poll, mon_poll;
    uv_prepare_t prepare; /* flush right before the loop polls */
    uv_idle_t idle;       /* continue a pump: budget ran out or an edge may be consumed */
    uv_timer_t retry;     /* a peer is blocked and nothing may announce its room */
    uv_timer_t redial;    /* CLIENT: connect again after a refused handshake */
    unsigned redial_ms;
    int open_handles;
    bool closing, connected;
    px_chan_close_cb close_cb;
    void *close_ud;

    tp_peer server; /* CLIENT: the only peer */
    tp_peer **tab;  /* SERVER: open addressing, linear probing */
    size_t tab_cap, tab_n;
    uint32_t seed;                    /* hash seed: peers choose their ids */
    tp_peer *dirty_head, *dirty_tail; /* FIFO, so no peer starves the others */
    tp_peer *wlist;
    px_chan_stats st;
    uint64_t gone; /* flushes that found their peer gone (log rate limit) */
};

/* ---- helpers (transport.c) ---- */

/* The current zmq_errno() as px_err: the one place zmq errors are mapped. */
px_err tp_zerr(void);

/* True at counts 1, 2, 4, 8, ...: for logging conditions a hostile peer can
 * repeat at line rate without flooding the log. */
bool tp_log_this_one(uint64_t count);

/* Routing id for a log line: as text when printable, else hex. Returns buf. */
const char *tp_id_str(const uint8_t *id, size_t len, char *buf, size_t n);

/* ---- per-peer queues (transport_queue.c) ---- */

/* SERVER: the peer for id (1..PX_PEER_ID_MAX bytes), created empty if
 * absent; NULL only when out of memory. */
tp_peer *tp_peer_get(px_chan *ch, const uint8_t *id, size_t n);

/* Forget a SERVER peer that has nothing queued and nothing owed (not pinned,
 * not waiting for on_writable); otherwise, and on a CLIENT, do nothing. Never
 * call it on a peer a caller up the stack still holds unless it is pinned. */
void tp_peer_maybe_free(px_chan *ch, tp_peer *p);

/* Drop p's queued records, counting them in stats.dropped. Does not free p. */
void tp_peer_drop_all(px_chan *ch, tp_peer *p);

/* Copy one record into p's open batch, sealing it and starting another when
 * it would pass batch_bytes (*sealed says so). The caller has checked len and
 * the queue bound. PX_E_NOMEM leaves the queue as it was. */
px_err tp_peer_append(px_chan *ch, tp_peer *p, const void *rec, size_t len, bool *sealed);

/* Hand p's batches to ZeroMQ in order until it pushes back (sealed_only:
 * leave the open batch to collect more). A peer ZeroMQ does not know has its
 * records dropped and counted. Queues p for on_writable when its room has
 * come back. Never calls a callback and never frees p. Returns batches sent. */
unsigned tp_peer_flush(px_chan *ch, tp_peer *p, bool sealed_only);

/* tp_peer_flush every dirty peer, oldest first, then forget the emptied
 * ones. Returns batches sent. */
unsigned tp_flush_all(px_chan *ch);

/* Run on_writable for every peer owed one; stops early if a callback closes
 * the channel. Returns true if any callback ran. */
bool tp_fire_writable(px_chan *ch);

#endif
