/* plexus-node — CXL memory for this node's guests (docs/cxl.md).
 *
 * The plan carries the lab's CXL bindings (the coordinator's FM state).
 * This node:
 *   - holds the pools of every CXL switch it is the home of
 *     (LABDIR/cxl/POOL/ld<K>.mem|.lsa, fabric/cxl-switch/ldsvc.h): they
 *     outlive a restart of the node;
 *   - before a guest starts, materialises each LD bound to it: a guest on
 *     the pool's node uses the pool's files, one elsewhere gets a local
 *     copy (only non-zero chunks travel); the guest is held in state
 *     defined ("copying CXL LDs") until they are there;
 *   - when a guest stops or fails, and every PX_NODE_CXL_CHECKPOINT_MS while
 *     it runs, writes the chunks that changed back to the pool; the guest
 *     reads as "stopping" until a stop's write-back is done, so the
 *     coordinator does not let its LDs be unbound before;
 *   - keeps one copy per LD, not per guest: guests on this host bound to
 *     the same LD map the same file (QEMU share=on: shared memory on one
 *     host); the copy is counted by its guests and written back and
 *     forgotten when the last one lets go of it;
 *   - keeps a shared LD (bound to more than one vPPB in the plan) in step
 *     with its other hosts through fabric/cxl-switch/ldsync.h: the pool's
 *     node is the hub; a host's copy sends its changes there every `sync:`
 *     period of the pool, on `plexus cxl sync` (TOOL "cxl-sync") and when
 *     its last guest stops (instead of the chunk write-back, which would
 *     overwrite other hosts' bytes with stale ones);
 *   - a guest whose bindings changed runs on with what it started with and
 *     gets the new ones at its next start: after it stops or fails (and
 *     its LDs are written back) its node starts it again with a new QEMU
 *     command line once the new LDs are on this host - also a guest that
 *     had stopped for good (restart: no): binding it an LD starts it.
 */
#ifndef PX_NODE_CXL_H
#define PX_NODE_CXL_H

#include <stdbool.h>

#include "node/agent.h"
#include "node/qemu_cmd.h"

#define PX_NODE_CXL_CHECKPOINT_MS 30000u

px_err px_node_cxl_start(px_node *n, px_errmsg *em);
px_err px_node_cxl_apply(px_node *n, px_node_lab *l, const px_msg_plan *p, px_errmsg *em);
void px_node_cxl_remove(px_node *n, const char *lab);

/* May guest ng start now? True with cfg->cxl_lds / n_cxl_lds filled (valid
 * until the next apply or remove) when every LD bound to it is on this
 * host (or it has none); false while they are being copied (ng's state and
 * detail say so; the node starts it when they are there). */
bool px_node_cxl_ready(px_node *n, px_node_lab *l, px_node_guest *ng, px_qemu_cfg *cfg);

/* ng's guest changed state: a stop or failure writes its LDs back. */
void px_node_cxl_guest_changed(px_node *n, px_node_lab *l, px_node_guest *ng);

/* A write-back of ng's LDs after a stop is still running. */
bool px_node_cxl_busy(const px_node *n, const px_node_lab *l, const px_node_guest *ng);

void px_node_cxl_msg(px_node *n, const px_peer *from, const px_msg_cxl *m);
void px_node_cxl_sync_msg(px_node *n, const px_peer *from, const px_msg_cxlsync *m);

/* TOOL "cxl-sync" POOL LD (net: the pool's switch): a sync point of this
 * node's replica of the LD now - its changes are sent (or held in order
 * for a full link) when the answer goes. Answers OK with nothing done on a
 * node without a replica of it; PX_E_INVAL for an LD that is not shared,
 * PX_E_NOTFOUND for a pool, switch or LD the lab does not have. Never
 * blocks beyond reading the replica's file. */
void px_node_cxl_tool(px_node *n, const px_msg_tool *t, px_svc_reply *r);
void px_node_cxl_close(px_node *n, void (*done)(void *ud), void *ud);

#endif
