/* plexus — vxcan pairs: a guest's CAN controller through the host's
 * SocketCAN, where the kernel has AF_CAN and the vxcan module.
 *
 * A vxcan pair is two CAN interfaces wired back to back (the CAN analogue
 * of veth). The node keeps one end (a px_canep_open_socketcan endpoint,
 * devices/can/endpoint.h); QEMU's can-host-socketcan opens the other. No
 * shim and no UNIX socket are involved (docs/can-bus.md, "Attach paths").
 *
 * Through rtnetlink with libnl-route-3: libnl 3.7 has no vxcan helper, so
 * RTM_NEWLINK is built here with IFLA_INFO_DATA / VXCAN_INFO_PEER naming
 * the peer, as `ip link add NAME type vxcan peer name PEER` does.
 *
 * Needs CAP_NET_ADMIN in the node's network namespace. Each call opens its
 * own netlink socket and blocks on the kernel's answer (a few syscalls, no
 * network): fine on the loop thread for the handful of pairs a lab has.
 */
#ifndef PX_CAN_VXCAN_H
#define PX_CAN_VXCAN_H

#include <stdbool.h>
#include <stddef.h>

#include "fabric/core/err.h"

/* Create the pair NAME / PEER (each 1..15 characters) and set both up.
 * PX_E_UNSUPP, saying so, where the kernel has no vxcan (or no AF_CAN at
 * all, as on this project's CI machines); PX_E_EXISTS when either name is
 * taken; PX_E_AUTH without CAP_NET_ADMIN; PX_E_IO otherwise. On any
 * failure after creation the pair is deleted again. em names the pair. */
px_err px_vxcan_create(const char *name, const char *peer, px_errmsg *em);

/* Delete the pair that NAME is one end of (the kernel removes both ends).
 * PX_OK when it did not exist. */
px_err px_vxcan_delete(const char *name, px_errmsg *em);

/* Does interface NAME exist in this network namespace? */
bool px_vxcan_exists(const char *name);

/* Can this kernel open a CAN socket? When not, why (an errno text such as
 * "Address family not supported by protocol") in why[cap]. For tests and
 * messages; creates nothing. */
bool px_af_can_available(char *why, size_t cap);

#endif
