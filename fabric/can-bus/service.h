/* plexus — the CAN bus service of one node.
 *
 * For every CAN bus of every lab this node runs, the service is the bus's
 * home (if placement chose this node), a member (if guests here attach to
 * it), or both. docs/can-bus.md describes the protocol; in short:
 *
 *   guest QEMU --SEQPACKET--> endpoint --SUBMIT--> home (px_canbus_home:
 *   order, timed mode) --DELIVER (one message per member node)--> member
 *   (px_canbus_member: order check, loss count) --> endpoints --> QEMU
 *
 * A home on this node delivers to itself without the network; tools (the
 * CLI's `plexus can send/dump/replay`) JOIN a bus at its home over the data
 * plane and are delivered to like member nodes.
 *
 * Flow control: an endpoint has at most a window of frames submitted but
 * not yet back as TX-complete (256 on an ideal bus, 16 on a timed one); at the
 * window it stops reading from QEMU. A frame the home does not put on the
 * bus comes back as a refusal (sequence 0) and is counted.
 *
 * Every message is checked against who may send it: SUBMIT only from a
 * member node of the bus (its data-plane key) or a joined tool, DELIVER
 * only from the bus's home. A malformed frame from a peer is counted and
 * skipped; a malformed frame from QEMU cuts that endpoint off
 * (devices/can/endpoint.h).
 *
 * The node translates its plans into px_cansvc_bus_cfg (node/agent.c) and
 * passes data-plane messages in; the service sends through px_cansvc_io.
 * Loop thread only.
 */
#ifndef PX_CANBUS_SERVICE_H
#define PX_CANBUS_SERVICE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "fabric/can-bus/bus.h"
#include "fabric/can-bus/fault.h"
#include "fabric/can-bus/gateway.h"
#include "fabric/core/svcio.h"
#include "fabric/core/transport.h"
#include "fabric/core/wire.h"

#define PX_CANSVC_MAX_MEMBERS    64u
#define PX_CAN_EPS_PER_GUEST_MAX 32u
#define PX_CANSVC_MAX_TOOLS      16u
#define PX_CANSVC_WINDOW_IDEAL   256u
#define PX_CANSVC_WINDOW_TIMED   16u
#define PX_CANSVC_MAX_BUS_EPS    256u        /* controllers on one bus, all nodes */
#define PX_CANSVC_MAX_GWS        64u         /* gateways from one bus */
#define PX_CANSVC_MAX_FAULTS     16u         /* scheduled faults on one bus */
#define PX_CAN_GW_EP             0xfffffff0u /* source endpoint of gatewayed frames; tag = hops */

typedef struct px_cansvc px_cansvc;

typedef px_svc_io px_cansvc_io; /* fabric/core/svcio.h */

/* A guest controller on this node. */
typedef struct px_cansvc_ep_cfg {
    char guest[64];
    char ifname[16]; /* inside the guest, for people: "can0" */
    uint32_t id;     /* px_can_guest_ep(guest index, controller index) */
    char path[108];  /* its socket: LABDIR/can/g<G>c<I>.sock */
    /* Set: a SocketCAN interface instead of the socket (path unused) - the
     * node's end of a guest's vxcan pair, or a host interface (real CAN
     * hardware, id PX_CAN_HOSTIF_EP(k)); px_canep_open_socketcan. */
    char socketcan_if[16];
} px_cansvc_ep_cfg;

/* Any controller on the bus, on any node: faults name guests. */
typedef struct px_cansvc_guest_ep {
    char guest[64];
    char ifname[16];
    uint32_t id;
} px_cansvc_guest_ep;

typedef struct px_cansvc_gw_cfg {
    char to[64]; /* destination bus (same lab) */
    px_cangw_rule rule;
} px_cansvc_gw_cfg;

/* A scheduled fault of the topology (`faults:`), times from lab start. */
typedef struct px_cansvc_fault_cfg {
    char name[64];
    px_canfault_kind kind;
    uint32_t n_eps; /* 0: the whole bus */
    uint32_t eps[PX_CAN_EPS_PER_GUEST_MAX];
    uint64_t at_ms, duration_ms, every_ms; /* duration 0: until teardown; every 0: once */
    uint32_t loss_ppm, corrupt_ppm;
} px_cansvc_fault_cfg;

typedef struct px_cansvc_bus_cfg {
    char name[64];
    bool fd;
    px_canbus_mode mode;
    uint32_t bitrate, data_bitrate;
    char home[64];
    uint32_t n_members; /* member nodes (the home's view; may include the home) */
    char members[PX_CANSVC_MAX_MEMBERS][64];
    uint32_t n_eps; /* controllers of guests on this node */
    px_cansvc_ep_cfg eps[PX_CANBUS_MAX_EPS];
    uint32_t n_all; /* every controller on the bus */
    px_cansvc_guest_ep all[PX_CANSVC_MAX_BUS_EPS];
    uint32_t loss_ppm, corrupt_ppm; /* the bus's impairment (topology) */
    uint32_t n_gws;                 /* gateways from this bus (run at its home) */
    px_cansvc_gw_cfg gws[PX_CANSVC_MAX_GWS];
    uint32_t n_faults;
    px_cansvc_fault_cfg faults[PX_CANSVC_MAX_FAULTS];
} px_cansvc_bus_cfg;

typedef px_svc_reply px_cansvc_reply; /* fabric/core/svcio.h */

px_err px_cansvc_new(uv_loop_t *loop, const px_cansvc_io *io, px_cansvc **out);

/* The lab's buses on this node are exactly `buses`: new ones start, changed
 * ones are updated in place (endpoints that stay keep their connections),
 * the others stop. The directory LABDIR/can is created. em says which bus
 * and what went wrong; buses before the failing one are applied. */
px_err px_cansvc_lab_apply(px_cansvc *s, const char *lab, const char *labdir,
                           const px_cansvc_bus_cfg *buses, uint32_t n, px_errmsg *em);
void px_cansvc_lab_remove(px_cansvc *s, const char *lab);

/* A CAN message that arrived on this node's data-plane server from `from`. */
void px_cansvc_on_msg(px_cansvc *s, const px_peer *from, const px_msg_can *m);

/* A tool command (args[0] == "can") for bus `net` of `lab`. */
void px_cansvc_tool(px_cansvc *s, const px_msg_tool *t, px_cansvc_reply *out);

/* Close every endpoint and timer; done(ud) once all handles are released. */
void px_cansvc_close(px_cansvc *s, void (*done)(void *ud), void *ud);

#endif
