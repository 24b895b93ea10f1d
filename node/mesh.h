/* plexus-node — the data plane's links to peer nodes.
 *
 * Every node serves a data-plane SERVER channel; for each peer named in its
 * plans it opens a CLIENT channel to that peer's data endpoint, pinned to
 * the peer's data key (CurveZMQ; the peer admits us because the same plans
 * put our key on its allow-list). So each pair of nodes has two channels,
 * one each way, and a node always sends on its own client channel.
 *
 * Link health: on every tick the mesh sends each peer a PROBE; the peer
 * echoes it back on the same connection; a peer whose echo is older than
 * three ticks is down. Counts and the slowest round trip go into the node's
 * heartbeat, so `plexus nodes` shows the data plane as well as the control
 * plane. Fabric services (CAN, Ethernet, ivshmem, CXL) send their traffic
 * over these links.
 *
 * Loop thread only; never blocks.
 */
#ifndef PX_NODE_MESH_H
#define PX_NODE_MESH_H

#include <stdint.h>
#include <uv.h>

#include "fabric/core/transport.h"
#include "fabric/core/wire.h"

#define PX_MESH_MAX_PEERS 64u

typedef struct px_mesh_peer {
    char name[64];
    char endpoint[PX_WIRE_MAX_ENDPOINT];
    char key[PX_KEY_Z85_LEN + 1];
    px_chan *ch;
    uint64_t last_echo_ms; /* 0: never */
    uint32_t rtt_us;       /* of the last echo */
} px_mesh_peer;

/* A data-plane message for a fabric service (anything but PROBE). msg and
 * the bytes it points into are valid during the call only. */
typedef void (*px_mesh_msg_cb)(void *ud, const px_peer *from, const px_msg *msg);

typedef struct px_mesh {
    uv_loop_t *loop;
    px_transport *tp;
    char self[64];
    px_mesh_peer *peers[PX_MESH_MAX_PEERS];
    uint32_t n_peers;
    uint32_t tick_ms;
    px_wbuf out;
    uint64_t seq;
    unsigned closing; /* channels still closing */
    void (*closed)(void *ud);
    void *closed_ud;
    px_mesh_msg_cb on_msg;
    void *on_msg_ud;
    px_msg *in; /* decoding (px_msg is large) */
} px_mesh;

void px_mesh_init(px_mesh *m, uv_loop_t *loop, px_transport *tp, const char *self);

/* Learn peers from a plan: new names get a link; a peer whose endpoint or
 * key changed (it restarted) is reconnected. Our own name is skipped. */
void px_mesh_update(px_mesh *m, const px_plan_peer *peers, uint32_t n);

/* Send a PROBE to every peer (call once per heartbeat period). */
void px_mesh_tick(px_mesh *m, uint32_t tick_ms);

/* Where messages for fabric services go. */
void px_mesh_set_handler(px_mesh *m, px_mesh_msg_cb cb, void *ud);

/* What the node's SERVER data channel received: PROBEs are echoed to the
 * sender; anything else goes to the handler. */
void px_mesh_on_server_recv(px_mesh *m, px_chan *server, const px_peer *from, const uint8_t *data,
                            size_t len);

/* Send bytes (whole envelopes) to peer `name` on our link to it.
 * PX_E_NOTFOUND if there is no such peer or no link (yet). */
px_err px_mesh_send(px_mesh *m, const char *name, const uint8_t *data, size_t len);

/* The data-plane key (Z85) of peer `name`, NULL if unknown. */
const char *px_mesh_peer_key(const px_mesh *m, const char *name);

/* Peers whose echo is recent, all peers, and the slowest last round trip. */
void px_mesh_counts(const px_mesh *m, uint32_t *up, uint32_t *total, uint32_t *max_rtt_us);

/* Close every link; done(ud) runs once all have closed (at once if none).
 * Then px_mesh_fini frees the peers. */
void px_mesh_close(px_mesh *m, void (*done)(void *ud), void *ud);
void px_mesh_fini(px_mesh *m);

#endif
