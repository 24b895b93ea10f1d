/* plexus — the ivshmem region service of one node (docs/ivshmem.md).
 *
 * Every member node of a region (a node with a guest on it, a host in its
 * `hosts:`, or its home) runs one copy of the region: a memfd the node's
 * ivshmem server (devices/ivshmem/server.h) hands to local QEMUs and host
 * programs, and a twin of it (fabric/shm/diff.h) when the region spans
 * hosts.
 *
 *   peer IDs    the home hands them out: a guest gets its place among the
 *               region's guests in topology order, a host program the
 *               lowest free ID above those. JOIN asks, PEER tells every
 *               member, LEAVE ends it. Peers on other members are proxy
 *               peers in the local server.
 *   doorbells   a local client rings a proxy (writes its eventfd): the node
 *               sends the region's changed bytes to every other member
 *               (DIFF), then RING to the member the peer lives on, which
 *               writes the changes into its copy and then rings the peer's
 *               eventfd. Ordered per pair of nodes, so the receiver's copy
 *               holds the writes before its interrupt fires (release
 *               consistency). Doorbells between peers on one node never
 *               reach the node (QEMU writes the eventfd).
 *   sync        `sync:` sends changed bytes every period as well; a member
 *               that starts asks the home for the peers and contents (SYNC,
 *               answered by PEERs, DIFFs and SYNCED) and admits no local
 *               client before that.
 *
 * Loop thread only.
 */
#ifndef PX_SHM_SERVICE_H
#define PX_SHM_SERVICE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "fabric/core/svcio.h"
#include "fabric/core/wire.h"

#define PX_SHMSVC_MAX_MEMBERS 64u
#define PX_SHMSVC_MAX_GUESTS  1024u /* guests on one region */

typedef struct px_shmsvc px_shmsvc;

typedef struct px_shmsvc_region_cfg {
    char name[64];
    uint64_t size; /* a power of two, 4 KiB..4 GiB */
    uint32_t vectors;
    uint64_t sync_ms; /* 0: contents move at doorbells only */
    char home[64];
    uint32_t n_members; /* every member node, the same list on each */
    char members[PX_SHMSVC_MAX_MEMBERS][64];
    char socket[108]; /* where local QEMUs and host programs connect */
    /* The region's guests in topology order: guest k gets peer ID k. */
    uint32_t n_guests;
    char (*guests)[64]; /* [n_guests], the caller's until lab_apply returns */
} px_shmsvc_region_cfg;

/* Which of the lab's guests a connecting process is (its QEMU's pid):
 * copies the guest's name into name and returns true, or false for a
 * process that is not one (a host program). */
typedef bool (*px_shmsvc_pid_name)(void *ud, const char *lab, pid_t pid, char *name, size_t cap);

px_err px_shmsvc_new(uv_loop_t *loop, const px_svc_io *io, px_shmsvc_pid_name pid_name,
                     void *pid_ud, px_shmsvc **out);

/* The lab's regions on this node are exactly `regs`: new ones start (the
 * socket listens before this returns, so QEMU can be started next),
 * unchanged ones keep their clients and contents, changed ones (size,
 * vectors, socket) are rebuilt, the others stop. A region that fails is
 * left out, em says which and why, and the others go on. */
px_err px_shmsvc_lab_apply(px_shmsvc *s, const char *lab, const px_shmsvc_region_cfg *regs,
                           uint32_t n, px_errmsg *em);
void px_shmsvc_lab_remove(px_shmsvc *s, const char *lab);

/* A SHM message from the data plane. A bad one is logged and dropped. */
void px_shmsvc_on_msg(px_shmsvc *s, const px_peer *from, const px_msg_shm *m);

/* A tool command: args "ivshmem" "peers" | "ivshmem" "ring" PEER VECTOR. */
void px_shmsvc_tool(px_shmsvc *s, const px_msg_tool *t, px_svc_reply *out);

void px_shmsvc_close(px_shmsvc *s, void (*done)(void *ud), void *ud);

#endif
