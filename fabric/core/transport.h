/* plexus — authenticated message transport (ZeroMQ + CurveZMQ on libuv).
 *
 * This is the seam where an RDMA transport goes later: callers see channels,
 * peers, records and callbacks, never a ZeroMQ socket.
 *
 * Model
 *   px_transport  one per process (or per loop): ZeroMQ context, this
 *                 process's CURVE key pair, the allow-list of client keys, and
 *                 the ZAP handler that enforces it. Driven by one uv_loop_t
 *                 that the caller owns and runs.
 *   px_chan       one socket. SERVER: binds, many peers (ROUTER); a peer is
 *                 admitted only if its CURVE public key is on the allow-list.
 *                 CLIENT: connects to one server (DEALER) whose public key
 *                 it must know. Reconnects by itself with back-off, also
 *                 after a refused handshake (0.5 s doubling to 30 s), so a
 *                 key allowed later lets a running client in.
 *   record        the caller's unit of sending: an opaque byte string (in
 *                 practice one encoded wire envelope). Records queued for the
 *                 same peer while its queue is non-empty are coalesced into
 *                 one ZeroMQ message of at most batch_bytes. Queued records
 *                 are flushed before the loop next polls (uv_prepare), or at
 *                 once when a batch is full: a batch is never held back
 *                 waiting for more.
 *
 * Callbacks run on the loop thread. A callback may call px_chan_send and
 * px_chan_close on any channel. A channel delivers at most 256 messages per
 * wake-up and continues on the next loop iteration, so one busy peer cannot
 * starve the rest of the loop. Functions here never block (except
 * px_transport_free, which joins ZeroMQ's I/O thread once every socket is
 * already closed). Every function must be called on the loop thread; several
 * transports may share one loop.
 *
 * Queues and policy: each (channel, peer) has a queue bounded by queue_bytes.
 * When ZeroMQ's own high-water mark is reached, records wait in that queue.
 * When the queue is full:
 *   PX_QUEUE_BACKPRESSURE  px_chan_send returns PX_E_AGAIN and queues
 *                          nothing; on_writable fires once for that peer
 *                          when its queue has drained to half of queue_bytes
 *                          (and the refused record would fit).
 *   PX_QUEUE_DROP          the record is dropped, stats.dropped counts it,
 *                          px_chan_send returns PX_E_AGAIN; no retry needed.
 *
 * Delivery: records reach a connected peer once each, in the order they were
 * queued. Records queued for a SERVER peer that is not connected (unknown
 * routing id, or it went away) are dropped when their batch is flushed and
 * counted in stats.dropped. A CLIENT holds records in its queue while it has
 * no authenticated connection; records ZeroMQ had already accepted when a
 * connection breaks may be lost. Services that need more number their
 * records (every wire envelope has a seq).
 *
 * Peers: a hostile or broken peer cannot abort the process. Malformed
 * messages (wrong frame count, empty) are dropped and counted in
 * stats.bad_recv; messages larger than batch_bytes (plus CURVE framing) close
 * that peer's connection. Both ends of a channel must use the same
 * batch_bytes. Dead peers are noticed by ZeroMQ heartbeats within seconds.
 * The routing id is an address chosen by the peer, not an identity: the
 * authenticated identity is from->key_z85.
 */
#ifndef PX_TRANSPORT_H
#define PX_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "err.h"

#define PX_KEY_Z85_LEN         40  /* a CURVE key in Z85 text, without NUL */
#define PX_PEER_ID_MAX         255 /* bytes in a peer's routing identity */
#define PX_TRANSPORT_MAX_ALLOW 4096
/* batch_bytes of every data-plane channel (node to node, tools to nodes):
 * an Ethernet message with a whole 65535-byte frame fits, with headroom.
 * Both ends of a channel must agree. */
#define PX_DATA_PLANE_BATCH_BYTES (160u << 10)
/* ... and its ZeroMQ high-water mark: with messages this large, ZeroMQ's own
 * queues (not bounded by queue_bytes) stay within a few MiB per peer. */
#define PX_DATA_PLANE_HWM 64

typedef struct px_keypair {
    char public_z85[PX_KEY_Z85_LEN + 1];
    char secret_z85[PX_KEY_Z85_LEN + 1];
} px_keypair;

/* Fresh CURVE key pair from the system's randomness. */
px_err px_keypair_generate(px_keypair *kp, px_errmsg *em);

/* Key files are text: "public <z85>\nsecret <z85>\n" (a public-only file has
 * just the first line; a kp with an empty secret_z85 saves as one). save
 * writes 0600 via a temporary file + fsync + rename, so a crash leaves the
 * old file or the new one. load rejects, with file:line and what was
 * expected, a malformed file, a secret that does not belong to the public
 * key (PX_E_CONFIG), and a file holding a secret that group or others may
 * access (PX_E_AUTH). A missing file is PX_E_NOTFOUND. Blocking (file I/O):
 * call at start-up, not from a loop callback. */
px_err px_keypair_save(const px_keypair *kp, const char *path, px_errmsg *em);
px_err px_keypair_load(const char *path, px_keypair *kp, px_errmsg *em);

/* True if s is a well-formed 40-character Z85 CURVE key. */
bool px_key_valid(const char *s);

typedef struct px_transport px_transport;
typedef struct px_chan px_chan;

/* Who sent a record, or whom to send to. On a SERVER channel id is the
 * peer's routing identity; on a CLIENT channel the only peer is the server
 * and a NULL px_peer * (or id_len 0) names it. key_z85 is the peer's
 * authenticated CURVE public key (on a CLIENT channel, the server's key);
 * px_chan_send ignores it. */
typedef struct px_peer {
    uint8_t id[PX_PEER_ID_MAX];
    uint8_t id_len;
    char key_z85[PX_KEY_Z85_LEN + 1];
} px_peer;

typedef enum px_chan_role { PX_CHAN_SERVER, PX_CHAN_CLIENT } px_chan_role;
typedef enum px_queue_policy { PX_QUEUE_BACKPRESSURE, PX_QUEUE_DROP } px_queue_policy;

/* Events carry no peer: ZeroMQ reports them per connection, not per routing
 * id. On a SERVER they say "some connection"; the records tell who. */
typedef enum px_chan_event {
    PX_CHAN_EV_CONNECTED,    /* a CURVE handshake completed (CLIENT: with the server) */
    PX_CHAN_EV_DISCONNECTED, /* CLIENT: the connection to the server closed after
                                CONNECTED. SERVER: any connection closed, including
                                ones whose handshake was refused */
    PX_CHAN_EV_AUTH_FAILED,  /* a handshake was refused (either side): key not on
                                the allow-list, wrong server key, no CURVE, ... */
} px_chan_event;

/* One ZeroMQ message as received: one or more whole records, exactly as the
 * sender queued them, back to back (records are self-delimiting wire
 * envelopes). data and from are valid only during the callback; len > 0. */
typedef void (*px_chan_recv_cb)(px_chan *ch, const px_peer *from, const uint8_t *data, size_t len,
                                void *ud);
typedef void (*px_chan_event_cb)(px_chan *ch, px_chan_event ev, void *ud);
/* Room returned to a queue after PX_E_AGAIN (BACKPRESSURE policy). peer is
 * NULL on a CLIENT channel. */
typedef void (*px_chan_writable_cb)(px_chan *ch, const px_peer *peer, void *ud);
typedef void (*px_chan_close_cb)(px_chan *ch, void *ud);

typedef struct px_transport_opts {
    px_keypair self;          /* this process's identity */
    const char *const *allow; /* client public keys (Z85) admitted by SERVER channels */
    size_t n_allow;
} px_transport_opts;

/* Create a transport on `loop` (borrowed; the caller runs and closes it).
 * opts->self must hold both keys; opts->allow is copied. Starts the ZAP
 * handler that enforces the allow-list: it admits only CURVE clients whose
 * key is listed (NULL and PLAIN clients are refused). On error nothing is
 * left behind. */
px_err px_transport_new(uv_loop_t *loop, const px_transport_opts *opts, px_transport **out,
                        px_errmsg *em);

/* Add or remove a client key at run time; affects new handshakes only
 * (connections already admitted stay up). allow: PX_E_INVAL for a malformed
 * key, PX_E_TOOBIG past PX_TRANSPORT_MAX_ALLOW, PX_OK if already listed.
 * revoke: PX_E_NOTFOUND if not listed. */
px_err px_transport_allow(px_transport *t, const char *key_z85);
px_err px_transport_revoke(px_transport *t, const char *key_z85);

/* Free the transport. All its channels must have completed closing (their
 * close callbacks have run); returns PX_E_INVAL otherwise and frees nothing.
 * The loop must run once more afterwards so libuv can release the handles
 * (uv_run(loop, UV_RUN_DEFAULT) returns when that is done). */
px_err px_transport_free(px_transport *t);

typedef struct px_chan_opts {
    px_chan_role role;
    const char *endpoint;   /* "tcp://127.0.0.1:5555", "ipc:///run/x.sock" */
    const char *server_key; /* CLIENT: the server's Z85 public key (required) */
    const char *identity;   /* CLIENT: routing identity shown to the server; NULL = random */
    px_queue_policy policy;
    size_t queue_bytes;              /* per-peer bound, bytes; 0 = 8 MiB */
    size_t batch_bytes;              /* max bytes coalesced per ZeroMQ message, and the largest
                                        record and message accepted; 0 = 64 KiB; must not
                                        exceed queue_bytes */
    int hwm;                         /* ZeroMQ send/recv high-water mark, messages; 0 = 1000 */
    px_chan_recv_cb on_recv;         /* required */
    px_chan_event_cb on_event;       /* optional */
    px_chan_writable_cb on_writable; /* optional */
    void *ud;
} px_chan_opts;

/* Open a channel (bind or connect). The strings in opts are copied. On error
 * em names the endpoint and the reason (address in use, bad key, ...) and
 * nothing is left for the caller to release (the loop may still run an
 * internal close callback). A SERVER binds with ZAP already running, so no
 * peer is ever admitted unchecked. */
px_err px_chan_open(px_transport *t, const px_chan_opts *opts, px_chan **out, px_errmsg *em);

/* Actual endpoint after bind (resolves "tcp://127.0.0.1:*" to a port).
 * Valid until the channel is closed. */
const char *px_chan_endpoint(const px_chan *ch);

/* Queue one record for `to` (NULL on a CLIENT channel). The record is copied.
 * PX_E_INVAL if len == 0 or a SERVER gets no peer; PX_E_TOOBIG if
 * len > batch_bytes; PX_E_AGAIN per the queue policy; PX_E_CLOSED after
 * px_chan_close. Never calls a callback. */
px_err px_chan_send(px_chan *ch, const px_peer *to, const void *rec, size_t len);

/* Push queued records to ZeroMQ now instead of before the next poll. Never
 * calls a callback. Needed only after sends made from the caller's own
 * uv_prepare callbacks, or from callbacks of another px_transport on the
 * same loop: those may run after this channel's flush for the iteration, so
 * without it the records wait until the loop next wakes. */
void px_chan_flush(px_chan *ch);

typedef struct px_chan_stats {
    uint64_t records_sent, batches_sent, bytes_sent;
    uint64_t batches_recv, bytes_recv;
    uint64_t dropped;       /* records dropped by PX_QUEUE_DROP */
    uint64_t backpressured; /* sends refused with PX_E_AGAIN under BACKPRESSURE */
    uint64_t queued_bytes;  /* waiting in plexus queues now, all peers */
    uint64_t auth_failures; /* handshakes refused */
    uint64_t bad_recv;      /* malformed messages from peers, dropped */
} px_chan_stats;

void px_chan_stats_get(const px_chan *ch, px_chan_stats *out);

/* Begin closing: pending records that ZeroMQ has not accepted are dropped
 * (counted); no further callbacks of this channel run except cb, which runs
 * from the loop once the channel's handles are released, after which ch is
 * freed. cb may be NULL. Safe inside any callback of this channel; a second
 * call does nothing. */
void px_chan_close(px_chan *ch, px_chan_close_cb cb, void *ud);

#endif
