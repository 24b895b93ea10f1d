/* plexus-node — the CAN bus service inside the node (node/can.c). */
#ifndef PX_NODE_CAN_H
#define PX_NODE_CAN_H

#include "fabric/can-bus/service.h"
#include "node/agent.h"

px_err px_node_can_start(px_node *n, px_errmsg *em);

/* Lab l was (re)planned: its CAN buses on this node follow p. Call before
 * guests start (their QEMUs connect to the endpoints at start). */
px_err px_node_can_apply(px_node *n, px_node_lab *l, const px_msg_plan *p, px_errmsg *em);
void px_node_can_remove(px_node *n, const char *lab);

/* px_mesh_msg_cb for data-plane messages (ud = the node). */
void px_node_can_msg(void *ud, const px_peer *from, const px_msg *m);

#endif
