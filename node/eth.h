/* plexus-node — the Ethernet segment service wired into the node: plans
 * become segment configurations (ports of this node's guests, TAPs, the NAT
 * uplink at the home), the mesh carries FRAMES between members, tool
 * commands (`link`, `capture`) reach it. See fabric/eth-hub/service.h. */
#ifndef PX_NODE_ETH_H
#define PX_NODE_ETH_H

#include "fabric/eth-hub/service.h"
#include "node/agent.h"

px_err px_node_eth_start(px_node *n, px_errmsg *em);

/* The Ethernet segments of lab l that this node homes or has ports on. */
px_err px_node_eth_apply(px_node *n, px_node_lab *l, const px_msg_plan *p, px_errmsg *em);
void px_node_eth_remove(px_node *n, const char *lab);

#endif
