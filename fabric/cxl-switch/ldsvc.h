/* plexus — CXL logical-device (LD) data across hosts (docs/cxl.md, "LD
 * data").
 *
 * A `cxl_pool` is a multi-logical device split into LDs, each with its own
 * size: ld_size bytes until the Fabric Manager gives it another allocation
 * (px_cxlld_ld_resize). Its data lives on the pool's node (the switch net's
 * home) as two files per LD: DIR/ld<k>.mem (the LD's memory, QEMU's memdev;
 * its length is the LD's size) and DIR/ld<k>.lsa (its label storage,
 * PX_CXLLD_LSA_SIZE bytes). A guest bound to an LD needs the LD as local
 * files on its own host before QEMU starts:
 *
 *   fetch       the guest's node asks the pool's node for the LD's sizes
 *               (OPEN -> INFO; an INFO with another memory size than
 *               the one the guest's node expects is not taken, and the
 *               OPEN is sent again until the sizes agree or the fetch
 *               times out), then for every chunk of at most
 *               PX_CXLLD_CHUNK bytes (READ -> DATA), a bounded window of
 *               them at a time. A chunk of zero bytes travels as a flag,
 *               not as bytes, and the local files stay sparse. Every chunk's
 *               hash (SipHash-2-4 of what was written) is kept.
 *   write-back  reads the local files, hashes every chunk, and sends the
 *               chunks whose hash changed since the fetch or the last
 *               write-back (WRITE -> ACK); only acknowledged chunks take
 *               their new hash, so a write-back that fails is repeated in
 *               full by the next one.
 *   same node   a guest on the pool's node uses the pool's files directly
 *               (px_cxlld_pool_paths): nothing is copied.
 *
 * The pool side keeps no state per transfer: each request is answered on
 * its own, so a guest's node that restarts simply asks again. Requests are
 * resent after tuning.retry_ms without an answer (the data plane may lose
 * messages when a link breaks); a transfer that gets no answer for
 * tuning.timeout_ms fails with PX_E_TIMEOUT. A message whose `node` is not
 * the node its data-plane key belongs to, or that names a transfer, range
 * or LD that does not exist, is dropped and counted (stats.bad_msgs); it
 * never reaches a file.
 *
 * Loop thread only. File I/O is pread/pwrite of one chunk at a time on the
 * loop (page-cache speed; a write-back reads at most a few MiB per loop
 * iteration). Callbacks (px_cxlld_done) always run from the loop, never
 * inside the call that started them, exactly once per started operation,
 * also on close (PX_E_CLOSED).
 */
#ifndef PX_CXLSW_LDSVC_H
#define PX_CXLSW_LDSVC_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "fabric/core/svcio.h"
#include "fabric/core/wire.h"

#define PX_CXLLD_LSA_SIZE     (1u << 20)            /* label storage bytes of every LD */
#define PX_CXLLD_CHUNK        PX_WIRE_MAX_CXL_CHUNK /* bytes of one READ/DATA/WRITE */
#define PX_CXLLD_MAX_LDS      PX_WIRE_MAX_CXL_LDS   /* LDs in one pool */
#define PX_CXLLD_MAX_LD_SIZE  (64ull << 40)         /* the largest pool (docs/topology.md) */
#define PX_CXLLD_MAX_LSA_SIZE (256u << 20)          /* label storage a guest accepts */
#define PX_CXLLD_ALIGN        4096u                 /* every LD's size is a multiple of this */
#define PX_CXLLD_WINDOW       32u                   /* default chunks in flight (4 MiB) */

typedef struct px_cxlld px_cxlld;

/* Create the service. io is copied (its strings must outlive the service).
 * Never calls a callback. */
px_err px_cxlld_new(uv_loop_t *loop, const px_svc_io *io, px_cxlld **out);

typedef struct px_cxlld_tuning {
    uint32_t window;     /* chunks in flight per transfer; default PX_CXLLD_WINDOW, at most 256 */
    uint32_t retry_ms;   /* resend a request unanswered this long; default 2000 */
    uint32_t timeout_ms; /* fail a transfer that made no progress this long; default 30000 */
    size_t queue_bytes;  /* answers held for one node while its link is full; default 32 MiB */
} px_cxlld_tuning;

/* Change the defaults above; a zero field keeps the current value. Applies
 * to transfers started afterwards (and to the retry/timeout checks of all). */
void px_cxlld_tune(px_cxlld *s, const px_cxlld_tuning *t);

/* ---- the pool side ---- */

/* This node holds pool `pool` of lab `lab`: n_lds (1..PX_CXLLD_MAX_LDS) LDs
 * plus PX_CXLLD_LSA_SIZE of label storage each, in dir/ld<k>.mem and
 * dir/ld<k>.lsa. dir is created if missing. Each LD has its own size, the
 * length of its .mem file:
 *   - a missing .mem file is created sparse (all zero, no blocks) at
 *     ld_size bytes (a multiple of PX_CXLLD_ALIGN up to
 *     PX_CXLLD_MAX_LD_SIZE; the topology asks for multiples of 256 MiB);
 *   - an existing one keeps its contents and its length, whatever ld_size
 *     says (an allocation may have resized the LD before the node
 *     restarted), as long as that length is a multiple of PX_CXLLD_ALIGN up
 *     to PX_CXLLD_MAX_LD_SIZE (0 too: an empty LD); otherwise PX_E_CONFIG,
 *     em naming the file.
 * A .lsa file is created sparse, or kept with its contents; a shorter one
 * is extended with zeros, a longer one is an error (PX_E_CONFIG: it holds
 * data beyond the label storage; em says which file). Opening a pool that
 * is open with the same settings does nothing (its LDs keep their sizes);
 * with other settings the pool is replaced (its files stay, and their
 * lengths are the LDs' sizes again). On error the pool stays as it was.
 * Blocks on the file system (a few syscalls per LD). */
px_err px_cxlld_pool_open(px_cxlld *s, const char *lab, const char *pool, const char *dir,
                          uint32_t n_lds, uint64_t ld_size, px_errmsg *em);

/* Give LD `ld` of a pool open here `size` bytes of memory (its
 * allocation): its .mem file is truncated to size, so shrinking discards
 * the bytes past size and growing adds zeros (a hole, no blocks). size is
 * a multiple of PX_CXLLD_ALIGN up to PX_CXLLD_MAX_LD_SIZE, 0 included (an
 * empty LD); PX_E_INVAL otherwise. PX_E_NOTFOUND for no such pool or LD,
 * PX_E_IO when the file cannot be resized (em names it; the LD keeps its
 * size). The size it already has: nothing happens. From now on the pool
 * answers OPEN with the new size and checks READ/WRITE against it; a
 * transfer that runs at the old size meanwhile fails (its ranges past the
 * new end are dropped). Blocks on the file system (one ftruncate). */
px_err px_cxlld_ld_resize(px_cxlld *s, const char *lab, const char *pool, uint32_t ld,
                          uint64_t size, px_errmsg *em);

/* The size of LD `ld` of a pool open here; 0 when there is no such pool or
 * LD (or the LD is empty). */
uint64_t px_cxlld_ld_size(px_cxlld *s, const char *lab, const char *pool, uint32_t ld);

/* Where a guest on this node finds LD `ld` of a pool open here: its memdev
 * and label-storage files. PX_E_NOTFOUND if there is no such pool or LD;
 * PX_E_TOOBIG if a path does not fit its buffer. */
px_err px_cxlld_pool_paths(px_cxlld *s, const char *lab, const char *pool, uint32_t ld, char *mem,
                           size_t mcap, char *lsa, size_t lcap);

/* Close the lab's pools and end its transfers (their callbacks get
 * PX_E_CLOSED; their handles are forgotten). Files stay. */
void px_cxlld_lab_remove(px_cxlld *s, const char *lab);

/* ---- the guest side ---- */

/* ud, PX_OK or the error, and a sentence saying what failed (the pool's
 * node, the LD, the file) - "" on success. msg is valid during the call. */
typedef void (*px_cxlld_done)(void *ud, px_err err, const char *msg);

/* Make local files mem_path and lsa_path hold LD `ld` of pool `pool` of
 * lab `lab`, whose node is pool_node; done once they do (or the fetch
 * failed). The files are created (0600) or truncated, then filled;
 * chunks of zero bytes are not sent and stay holes. When pool_node is this
 * node nothing is copied: the pool must be open here, mem_path, lsa_path
 * and size are ignored, the caller uses px_cxlld_pool_paths, and done runs
 * with PX_OK on the next loop iteration.
 *
 * size is the LD's memory size this node's plan gives it (a multiple of
 * PX_CXLLD_ALIGN up to PX_CXLLD_MAX_LD_SIZE), or 0 to take whatever the
 * pool's node says. When the pool's node answers with another size, the
 * answer is not taken: that node may not have applied the plan that
 * resized the LD yet, so the fetch asks again every tuning.retry_ms, and
 * fails with PX_E_TIMEOUT after tuning.timeout_ms, its message naming both
 * sizes, if they still differ.
 *
 * On success *handle names the LD copy for px_cxlld_writeback and
 * px_cxlld_forget. Returns an error (em says why: a file that cannot be
 * opened, a pool that is not here, a bad argument) without calling done. */
px_err px_cxlld_fetch(px_cxlld *s, const char *lab, const char *pool, const char *pool_node,
                      uint32_t ld, uint64_t size, const char *mem_path, const char *lsa_path,
                      px_cxlld_done done, void *ud, uint64_t *handle, px_errmsg *em);

/* As px_cxlld_fetch, but for files a running guest already uses (its QEMU
 * outlived a restart of this node): when they have the LD's sizes - the
 * memory file's length equal to size (unless 0) and to what the pool's
 * node reports, which must agree as for a fetch - they are kept as they
 * are, not fetched over; the first write-back then sends every chunk (what
 * the pool holds is not known). Otherwise a fetch. While the sizes differ
 * the files are not touched. */
px_err px_cxlld_adopt(px_cxlld *s, const char *lab, const char *pool, const char *pool_node,
                      uint32_t ld, uint64_t size, const char *mem_path, const char *lsa_path,
                      px_cxlld_done done, void *ud, uint64_t *handle, px_errmsg *em);

/* Send the chunks of the local files that changed since the fetch or the
 * last write-back to the pool's node; done when that node has written all
 * of them into its files and acknowledged them. A write-back asked for
 * while one is running starts when that one ends (and covers changes made
 * in between); if the running one fails, the ones waiting fail with it.
 * A failed write-back leaves unacknowledged chunks to the next one.
 * PX_E_NOTFOUND for an unknown handle, PX_E_AGAIN while the
 * fetch is still running, PX_E_INVAL after a failed fetch; done is not
 * called then. For a pool on this node, done runs with PX_OK at once (on
 * the next loop iteration). */
px_err px_cxlld_writeback(px_cxlld *s, uint64_t handle, px_cxlld_done done, void *ud,
                          px_errmsg *em);

/* Drop the LD copy: a running fetch or write-back ends and its callbacks
 * get PX_E_CLOSED. The local files stay (the caller removes them). Unknown
 * handles are ignored. */
void px_cxlld_forget(px_cxlld *s, uint64_t handle);

/* ---- both ---- */

/* A CXL message from the data plane (from: the authenticated sender). */
void px_cxlld_on_msg(px_cxlld *s, const px_peer *from, const px_msg_cxl *m);

typedef struct px_cxlld_stats {
    /* pool side */
    uint64_t reads;     /* READs answered */
    uint64_t data_out;  /* of them, DATAs with bytes (the others: zero) */
    uint64_t writes;    /* WRITEs written and acknowledged */
    uint64_t bytes_out; /* bytes sent in DATAs */
    uint64_t bytes_in;  /* bytes written from WRITEs */
    uint64_t held;      /* answers held because a link was full */
    uint64_t dropped;   /* answers dropped: link full past queue_bytes, or none */
    /* guest side */
    uint64_t fetched;      /* chunks fetched */
    uint64_t fetched_zero; /* of them, zero chunks (no bytes travelled) */
    uint64_t wb_sent;      /* chunks sent by write-backs */
    uint64_t wb_same;      /* chunks a write-back found unchanged */
    uint64_t resent;       /* requests sent again after retry_ms */
    uint64_t again;        /* sends the data plane refused for a full link (retried) */
    uint64_t dups;         /* answers to requests already answered */
    /* both */
    uint64_t bad_msgs; /* dropped: wrong key, unknown transfer, bad range */
} px_cxlld_stats;

void px_cxlld_stats_get(const px_cxlld *s, px_cxlld_stats *out);

/* Forget everything (transfers end with PX_E_CLOSED, pools close, files
 * stay); done(ud) runs from the loop once every handle is closed and every
 * callback has run. s is freed before done; NULL s calls done at once. */
void px_cxlld_close(px_cxlld *s, void (*done)(void *ud), void *ud);

#endif
