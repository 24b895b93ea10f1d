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
} px_mesh;

void px_mesh_init(px_mesh *m, uv_loop_t *loop, px_transport *tp, const char *self);

/* Learn peers from a plan: new names get a link; a peer whose endpoint or
 * key changed (it restarted) is reconnected. Our own name is skipped. */
void px_mesh_update(px_mesh *m, const px_plan_peer *peers, uint32_t n);

/* Send a PROBE to every peer (call once per heartbeat period). */
void px_mesh_tick(px_mesh *m, uint32_t tick_ms);

/* What the node's SERVER data channel received: PROBEs are echoed to the
 * sender; anything else is for fabric services (logged for now). */
void px_mesh_on_server_recv(px_mesh *m, px_chan *server, const px_peer *from, const uint8_t *data,
                            size_t len);

/* Peers whose echo is recent, all peers, and the slowest last round trip. */
void px_mesh_counts(const px_mesh *m, uint32_t *up, uint32_t *total, uint32_t *max_rtt_us);

/* Close every link; done(ud) runs once all have closed (at once if none).
 * Then px_mesh_fini frees the peers. */
void px_mesh_close(px_mesh *m, void (*done)(void *ud), void *ud);
void px_mesh_fini(px_mesh *m);

#endif
