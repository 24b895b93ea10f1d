/* plexus-node — the ivshmem region service wired into the node: plans
 * become region configurations (members, home, the region's guests in
 * topology order, the socket QEMU connects to), the mesh carries SHM
 * messages between members, `ivshmem` tool commands reach it. See
 * fabric/shm/service.h. */
#ifndef PX_NODE_SHM_H
#define PX_NODE_SHM_H

#include "fabric/shm/service.h"
#include "node/agent.h"

px_err px_node_shm_start(px_node *n, px_errmsg *em);

/* The ivshmem regions of lab l this node is a member of. Their sockets
 * listen when this returns: QEMU needs them as it starts. */
px_err px_node_shm_apply(px_node *n, px_node_lab *l, const px_msg_plan *p, px_errmsg *em);
void px_node_shm_remove(px_node *n, const char *lab);

#endif
