/* plexus — shared CXL LDs kept in step between hosts (docs/cxl.md, "Shared
 * LDs").
 *
 * An LD bound to more than one vPPB is shared. Guests on one host map one
 * file (QEMU share=on): shared memory. Guests on different hosts map
 * different files - the pool's own file on the pool's node, a copy
 * (fabric/cxl-switch/ldsvc.h) elsewhere - and this service brings those in
 * step with the ivshmem issue's twin/diff machinery (fabric/shm/diff.h):
 *
 *   twin   every file of a shared LD on this node (a replica) has a twin:
 *          a calloc'd buffer of the LD's size holding the file as it was
 *          at the last sync point; taken from the file when the replica
 *          starts (only its data extents are read: holes stay untouched
 *          zero pages).
 *   sync   at a sync point - every `period_ms`, and px_cxlsync_now - a
 *          replica compares its file with its twin and sends the bytes that
 *          changed, byte exact (never an unchanged neighbour), as CXLSYNC
 *          DIFFs.
 *   hub    the pool's node. A host sends its changes to the hub; the hub
 *          checks them against the LD's size, writes them into the pool's
 *          file and its twin and passes them on, in order, to every other
 *          host of the pool's switch; a host writes what the hub sends into
 *          its copy and its twin. The hub's own changes (its local guests
 *          use the pool's file) go to every host. So two hosts writing
 *          different bytes, even of one word, both keep their writes.
 *
 * Messages leave in order per destination node; one that the data plane
 * refuses for a full link is held (in order, behind anything held before,
 * up to PX_CXLSYNC_QUEUE_MAX bytes per node, then dropped and counted). A
 * message whose `node` is not the node its data-plane key belongs to, from
 * a node that may not send it (a host that is not the hub, to a host; a
 * node that is not a host of the switch, to the hub), for an LD that does
 * not exist, or with a record past the LD's end, is dropped and counted
 * (stats.bad_msgs); nothing of it is written. A DIFF for a pool or LD this
 * node holds no replica of is dropped as stray (the hub sends every DIFF to
 * every host of the switch, whether it has a copy or not).
 *
 * Only the LD's memory is kept in step, not its label storage (Linux 6.1
 * writes none for a region).
 *
 * Loop thread only. File I/O is pread/pwrite on the loop: a sync of an LD
 * reads its data extents (about 0.1 ms per MiB with data; holes cost
 * nothing unless the twin held bytes there). Nothing here calls back
 * except close.
 */
#ifndef PX_CXLSW_LDSYNC_H
#define PX_CXLSW_LDSYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "fabric/core/svcio.h"
#include "fabric/core/wire.h"

#define PX_CXLSYNC_QUEUE_MAX (256u << 20) /* bytes held for one node while its link is full */
#define PX_CXLSYNC_HOLD_MAX  (64u << 20)  /* bytes of changes held for a copy still arriving */
#define PX_CXLSYNC_MAX_HOSTS 256u         /* hosts of one pool's switch */

typedef struct px_cxlsync px_cxlsync;

/* Create the service. io is copied (its strings must outlive the service).
 * Never calls back. */
px_err px_cxlsync_new(uv_loop_t *loop, const px_svc_io *io, px_cxlsync **out);

/* A pool of a lab that this node takes part in (the hub, or a host of its
 * switch). Strings and arrays are copied. */
typedef struct px_cxlsync_pool_cfg {
    const char *lab, *pool;
    const char *hub;  /* the pool's node (its switch's home) */
    uint64_t ld_size; /* bytes of each LD's memory */
    /* Or n_lds sizes, one per LD (none 0), where LDs differ (their
     * allocations); NULL: ld_size for every LD. A replica whose LD's size
     * changes is dropped and taken again. */
    const uint64_t *ld_sizes;
    uint32_t n_lds;     /* 1..PX_WIRE_MAX_CXL_LDS */
    uint64_t period_ms; /* periodic sync; 0 = on demand only */
    /* The hub only: */
    const char *dir;          /* the pool's files: dir/ld<K>.mem */
    const char *const *hosts; /* every host of the switch (this node and the hub skipped) */
    uint32_t n_hosts;         /* up to PX_CXLSYNC_MAX_HOSTS */
    const bool *shared;       /* n_lds flags: LD K is bound to more than one vPPB */
} px_cxlsync_pool_cfg;

/* Add or update a pool. At the hub every shared LD gets a replica of the
 * pool's file (twin taken now) and an LD no longer shared loses its
 * replica after a last sync; an LD that is not shared gets a replica as
 * well when a host sends changes for it (plans reach nodes at different
 * times). Elsewhere it only records the hub, sizes and period for copies.
 * Blocks on the file system (reads the data extents of new replicas).
 * PX_E_INVAL for a bad configuration, PX_E_IO for a pool file that cannot
 * be opened or read (em says which). */
px_err px_cxlsync_pool_set(px_cxlsync *s, const px_cxlsync_pool_cfg *cfg, px_errmsg *em);

/* ---- copies (not at the hub) ---- */

/* This node is fetching LD ld of the pool into file `path`: changes the hub
 * sends for it until px_cxlsync_copy_ready are held (up to
 * PX_CXLSYNC_HOLD_MAX bytes), since they may be newer than the bytes the
 * fetch reads. Opening a copy that is open starts it over (held changes
 * dropped). PX_E_NOTFOUND for an unknown pool or LD, PX_E_INVAL at the
 * hub. */
px_err px_cxlsync_copy_open(px_cxlsync *s, const char *lab, const char *pool, uint32_t ld,
                            const char *path, px_errmsg *em);

/* The copy's file holds the LD: its twin is taken, the held changes are
 * written into file and twin, and it syncs from now on (the first periodic
 * sync one period later). PX_E_TOOBIG when more changes arrived than could
 * be held (they are dropped: fetch the copy again, then px_cxlsync_copy_open
 * again); PX_E_IO for a file that cannot be read. */
px_err px_cxlsync_copy_ready(px_cxlsync *s, const char *lab, const char *pool, uint32_t ld,
                             px_errmsg *em);

/* Sync the copy a last time (if it is ready) and forget it; the file stays.
 * Unknown copies are ignored. */
void px_cxlsync_copy_close(px_cxlsync *s, const char *lab, const char *pool, uint32_t ld);

/* ---- both ---- */

typedef struct px_cxlsync_result {
    bool hub;       /* this node is the pool's node */
    bool arriving;  /* a copy still being fetched: nothing to scan yet */
    uint64_t bytes; /* changed bytes found and sent */
    uint32_t msgs;  /* DIFFs sent (or held for a full link) */
    uint32_t to;    /* nodes they went to */
} px_cxlsync_result;

/* A sync point of this node's replica of LD ld now: its changes since the
 * last one are on their way (sent, or held behind earlier messages for a
 * full link) when this returns. PX_E_NOTFOUND when this node has no
 * replica of it. */
px_err px_cxlsync_now(px_cxlsync *s, const char *lab, const char *pool, uint32_t ld,
                      px_cxlsync_result *res, px_errmsg *em);

/* A CXLSYNC message from the data plane (from: the authenticated sender). */
void px_cxlsync_on_msg(px_cxlsync *s, const px_peer *from, const px_msg_cxlsync *m);

/* Forget the lab's pools and replicas (no last sync); files stay. */
void px_cxlsync_lab_remove(px_cxlsync *s, const char *lab);

typedef struct px_cxlsync_stats {
    uint64_t syncs;     /* sync points of replicas that were ready */
    uint64_t bytes_out; /* changed bytes found here and sent */
    uint64_t msgs_out;  /* DIFFs sent with them */
    uint64_t bytes_in;  /* bytes written from DIFFs */
    uint64_t msgs_in;   /* DIFFs applied */
    uint64_t relayed;   /* DIFFs the hub passed on (one per destination) */
    uint64_t held;      /* DIFFs held for a copy still arriving */
    uint64_t queued;    /* messages queued for a full link */
    uint64_t waiting;   /* bytes of them still waiting now */
    uint64_t dropped;   /* messages dropped: no link, or a link full past the queue's bound */
    uint64_t stray;     /* DIFFs for a pool or LD with no replica here */
    uint64_t bad_msgs;  /* dropped: wrong key or sender, bad LD, bad records */
    uint64_t io_errors; /* reads or writes of an LD file that failed */
} px_cxlsync_stats;

void px_cxlsync_stats_get(const px_cxlsync *s, px_cxlsync_stats *out);

/* Forget everything (no last sync); done(ud) runs from the loop once the
 * timers are closed; s is freed before done. NULL s calls done at once. */
void px_cxlsync_close(px_cxlsync *s, void (*done)(void *ud), void *ud);

#endif
