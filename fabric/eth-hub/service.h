/* plexus — the Ethernet segment service of one node.
 *
 * A segment is a distributed learning bridge: every member node (a node
 * with ports on the segment) runs one bridge for it, with its own MAC table
 * keyed on (VLAN, MAC). docs/ethernet.md describes it; in short:
 *
 *   guest QEMU --stream/dgram--> port --ingress impairment--> bridge
 *     known unicast, local port:   straight to that port (never leaves the host)
 *     known unicast, remote:       one FRAMES message to the node that owns the MAC
 *     broadcast/multicast/unknown: every local port and every member node once
 *   member node --FRAMES--> bridge: learns the source behind that node and
 *     delivers to its local ports only (split horizon: never forwarded on)
 *   bridge --egress impairment--> port --> QEMU
 *
 * Hub mode floods every frame. Ports are access ports (one VLAN, untagged
 * frames) or trunks (802.1Q tags kept; untagged frames are VLAN 0). Frames
 * over the segment's MTU, shorter than an Ethernet header, or tagged on an
 * access port are dropped and counted; oversized and runt frames also cut
 * the port off for a while (like a switch's err-disable), alone.
 *
 * The segment's home runs the NAT uplink (libslirp, devices/net/slirp.h),
 * a port on the untagged VLAN, with the topology's port forwards.
 *
 * Tools: `link show|set|reset` and `capture` come in as TOOL commands
 * (px_ethsvc_tool); captures stream over the data plane (CAP_JOIN from the
 * CLI, CAPTURE records back), filtered with a compiled pcap filter.
 *
 * Loop thread only.
 */
#ifndef PX_ETHHUB_SERVICE_H
#define PX_ETHHUB_SERVICE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "devices/net/port.h"
#include "fabric/core/svcio.h"
#include "fabric/core/transport.h"
#include "fabric/core/wire.h"
#include "fabric/eth-hub/impair.h"

#define PX_ETHSVC_MAX_MEMBERS 64u
#define PX_ETHSVC_MAX_PORTS   256u /* local ports of one segment */
#define PX_ETHSVC_MAX_FWDS    256u

typedef struct px_ethsvc px_ethsvc;

typedef px_svc_io px_ethsvc_io; /* fabric/core/svcio.h */

/* A port on this node. */
typedef struct px_ethsvc_port_cfg {
    char name[80];         /* "GUEST:ethN", or "tap:IFNAME" */
    px_netport_kind kind;  /* STREAM, DGRAM or TAP */
    char path[108];        /* STREAM: QEMU's socket; DGRAM: QEMU's own socket */
    char bind_path[108];   /* DGRAM: the node's socket */
    char ifname[16];       /* TAP */
    uint16_t vlan;         /* access VLAN, 0 = trunk */
    uint8_t mac[6];        /* the NIC's MAC (guests) */
    px_impair_cfg egress;  /* frames from the guest (netem on its interface) */
    px_impair_cfg ingress; /* frames to the guest */
} px_ethsvc_port_cfg;

/* A NAT uplink port forward (at the home). */
typedef struct px_ethsvc_fwd_cfg {
    bool udp;
    uint16_t listen; /* port on this host */
    uint16_t port;   /* in the guest */
    uint8_t mac[6];  /* the guest's NIC on this segment */
    char guest[64];
} px_ethsvc_fwd_cfg;

#define PX_ETHSVC_MAX_FAULTS 16u

/* A scheduled fault of the topology (`faults:` link_down or impair on this
 * segment), times from when the segment started on this node. */
typedef struct px_ethsvc_fault_cfg {
    char name[64];
    bool down;            /* link_down; else impair */
    char port[80];        /* a port on this node ("GUEST:ethN"), "" = the whole segment */
    px_impair_cfg egress; /* impair: what replaces the port's (or segment's: egress) */
    px_impair_cfg ingress;
    uint64_t at_ms, duration_ms, every_ms; /* duration 0: until teardown; every 0: once */
} px_ethsvc_fault_cfg;

typedef struct px_ethsvc_seg_cfg {
    char name[64];
    bool hub;
    uint32_t mtu;         /* payload bytes (the topology's mtu) */
    uint8_t vlan_ok[512]; /* bit per VLAN id the segment carries (all set: any) */
    px_impair_cfg impair; /* the segment's, once per frame where it enters */
    char home[64];
    uint32_t n_members; /* every member node, the same list on each */
    char members[PX_ETHSVC_MAX_MEMBERS][64];
    uint32_t n_ports;
    px_ethsvc_port_cfg *ports; /* [n_ports], the caller's until lab_apply returns */
    bool nat;                  /* run the uplink (this node is the home) */
    uint32_t nat_net;
    uint8_t nat_prefix;
    uint32_t n_fwds;
    px_ethsvc_fwd_cfg fwds[PX_ETHSVC_MAX_FWDS];
    uint32_t n_faults;
    px_ethsvc_fault_cfg faults[PX_ETHSVC_MAX_FAULTS];
} px_ethsvc_seg_cfg;

typedef px_svc_reply px_ethsvc_reply; /* fabric/core/svcio.h */

px_err px_ethsvc_new(uv_loop_t *loop, const px_ethsvc_io *io, px_ethsvc **out);

/* The lab's segments on this node are exactly `segs`: new ones start,
 * changed ones are rebuilt (ports that stay keep their connections), the
 * others stop. em says which segment and what went wrong; a segment that
 * fails is left out and the others go on. */
px_err px_ethsvc_lab_apply(px_ethsvc *s, const char *lab, const char *labdir,
                           const px_ethsvc_seg_cfg *segs, uint32_t n, px_errmsg *em);
void px_ethsvc_lab_remove(px_ethsvc *s, const char *lab);

/* An ETH message that arrived on this node's data-plane server. */
void px_ethsvc_on_msg(px_ethsvc *s, const px_peer *from, const px_msg_eth *m);

/* A tool command (args[0] "link" or "capture") for segment `net` of `lab`. */
void px_ethsvc_tool(px_ethsvc *s, const px_msg_tool *t, px_ethsvc_reply *out);

void px_ethsvc_close(px_ethsvc *s, void (*done)(void *ud), void *ud);

#endif
