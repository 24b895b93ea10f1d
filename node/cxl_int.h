/* plexus-node — CXL internals, shared by node/cxl.c and node/cxl_pools.c.
 * Not part of the public API: nothing else includes this header; other
 * modules see node/cxl.h.
 *
 *   cxl.c        the node's CXL state and its lifecycle, a guest's bindings
 *                (nld rows) and the materialised LDs they point at (ncopy):
 *                fetches, write-backs, stops, restarts, checkpoints
 *   cxl_pools.c  the pools of the switches homed here, which LDs the plan
 *                shares (nbind) and px_cxlsync's view of every pool; the
 *                services' messages and TOOL "cxl-sync"
 *
 * Everything here runs on the node's loop; nothing calls a callback.
 */
#ifndef PX_NODE_CXL_INT_H
#define PX_NODE_CXL_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "fabric/cxl-switch/ldsvc.h"
#include "fabric/cxl-switch/ldsync.h"
#include "node/cxl.h"

/* An LD of a lab on this node: the pool's own files on the pool's node, a
 * copy elsewhere. Every local guest bound to it maps these files. */
typedef struct ncopy {
    char pool[64];
    uint32_t ld;
    uint64_t size;
    char pool_node[64];
    bool local; /* the pool is on this node: its own files */
    char mem[PX_QEMU_CXL_MAX_PATH], lsa[PX_QEMU_CXL_MAX_PATH];
    uint64_t gen;    /* tells a callback whether it is still about this copy */
    uint64_t handle; /* the fetch's (remote LDs) */
    bool have_handle;
    bool fetching;
    bool ready;    /* the files hold the LD */
    bool synced;   /* open in px_cxlsync: the LD is shared */
    bool leaving;  /* no guest uses it: a last write-back runs */
    uint32_t refs; /* guests' rows pointing at it */
} ncopy;

/* One LD bound to a local guest. */
typedef struct nld {
    uint32_t attach, vppb;
    char pool[64];
    uint32_t ld;
    uint64_t size;
    char pool_node[64];
    ncopy *cp; /* once materialised (holds a reference) */
} nld;

/* The CXL side of one guest of a lab on this node, by name (the lab's guest
 * rows are rebuilt at every plan). */
typedef struct ngst {
    char name[64];
    nld *lds; /* as the guest was (or will be) started with */
    uint32_t n;
    nld *next; /* bindings changed: for its next start */
    uint32_t n_next;
    bool stale;
    uint32_t writing; /* a stop's write-backs in flight */
    bool stop_wb;     /* a stop's write-back runs */
    bool ran;         /* was running: its next stop writes back */
    bool hold;        /* stopped with its LDs unbound: not started until a bind */
    px_qemu_cxl_ld q[PX_QEMU_CXL_VPPBS * 32];
} ngst;

/* How many vPPBs an LD is bound to in the lab's plan. */
typedef struct nbind {
    char pool[64];
    uint32_t ld, n;
} nbind;

typedef struct nlab {
    char name[64];
    ngst *g;
    uint32_t n;
    char pools[64][64]; /* pools opened here */
    uint32_t n_pools;
    ncopy **copies;
    uint32_t n_copies;
    nbind *binds;
    uint32_t n_binds;
} nlab;

struct px_node_cxl {
    px_cxlld *ld;
    px_cxlsync *sync;
    nlab **labs;
    uint32_t n_labs;
    uint64_t gen;
    uv_timer_t ckpt;
};

/* ---- cxl.c ---- */

/* The CXL state of lab name (owned by n->cxlst, which must be set; valid
 * until px_node_cxl_remove or px_node_cxl_close), added when create is
 * true. NULL when there is none, or out of memory. Never blocks. */
nlab *px_ncxl_lab_of(px_node *n, const char *name, bool create);

/* The agent's lab name (owned by the agent), or NULL. */
px_node_lab *px_ncxl_node_lab(px_node *n, const char *name);

/* ---- cxl_pools.c ---- */

/* How many vPPBs LD ld of pool is bound to in the last plan applied to l
 * (px_ncxl_pools_apply): more than one makes it a shared LD. */
uint32_t px_ncxl_bound_count(const nlab *l, const char *pool, uint32_t ld);

/* The pool side of plan p for lab nl (cl its CXL state, created by the
 * caller): opens the pools of the switches homed here that are not open
 * yet, sizes their bound LDs to their allocations (a failure is logged and
 * the rest goes on), counts which LDs are shared and gives px_cxlsync every
 * pool of a switch this node takes part in. Stops at the first error (em
 * says what). The copies are the caller's: it then starts or stops their
 * syncing. Blocks on the file system (pool files, replicas at the hub). */
px_err px_ncxl_pools_apply(px_node *n, px_node_lab *nl, nlab *cl, const px_msg_plan *p,
                           px_errmsg *em);

#endif
