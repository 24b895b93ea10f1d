/* plexus — names and numbers the CAN bus service and its clients agree on.
 *
 * A bus is known on the data plane by a 64-bit key derived from its lab and
 * name; a member (a node, or a tool such as `plexus can dump` that joined a
 * bus at its home) by a 32-bit id derived from its name. Both are FNV-1a
 * hashes: every node computes them from the same topology without asking
 * anyone. The home refuses a second member whose id collides.
 *
 * Endpoint numbers are per lab and global: guest index g's CAN controller i
 * is endpoint g * PX_CAN_EPS_PER_GUEST + i + 1, so the home can name a
 * guest's controller (faults) without knowing where the guest runs. Tools
 * use endpoint 1 of their own member id. A bus's k-th host interface (real
 * CAN hardware, `host_interfaces:`) is endpoint PX_CAN_HOSTIF_EP(k), far
 * above any guest's (PX_TOPO_MAX_GUESTS * PX_CAN_EPS_PER_GUEST) and below
 * the gateways' PX_CAN_GW_EP (service.h).
 *
 * Wire messages: PX_MSG_CAN (fabric/core/wire.h); docs/can-bus.md.
 */
#ifndef PX_CANBUS_PROTO_H
#define PX_CANBUS_PROTO_H

#include <stdint.h>

#define PX_CAN_EPS_PER_GUEST 32u /* CAN controllers a guest may have (PX_TOPO_MAX_ATTACH) */

/* The socket of guest g's controller i in a lab's runtime directory:
 * DIR/can/g<G>c<I>.sock; QEMU's can-host-socketcan if= name is g<G>c<I>. */
#define PX_CAN_IFNAME_FMT "g%uc%u"

#define PX_CAN_HOSTIF_EP_BASE 0x40000000u
#define PX_CAN_HOSTIF_EP(k)   (PX_CAN_HOSTIF_EP_BASE + (uint32_t)(k))

/* The node's end and QEMU's end of guest g's controller i's vxcan pair
 * (attach: vxcan): pxv / pxq, 4 hex digits of the lab (two labs on one node
 * must not collide), g, 'c', i; at most 15 characters for any guest index. */
#define PX_CAN_VXCAN_NODE_FMT "pxv%04x%uc%u"
#define PX_CAN_VXCAN_QEMU_FMT "pxq%04x%uc%u"
#define PX_CAN_VXCAN_TAG(lab) (px_can_member_id(lab) & 0xffffu)

uint64_t px_can_bus_key(const char *lab, const char *bus);
uint32_t px_can_member_id(const char *name);
static inline uint32_t px_can_guest_ep(uint32_t guest, uint32_t ctrl)
{
    return guest * PX_CAN_EPS_PER_GUEST + ctrl + 1;
}

#endif
