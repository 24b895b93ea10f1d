/* plexus — CXL LD data service internals, shared by the three files of
 * px_cxlld. Not part of the public API: nothing outside
 * fabric/cxl-switch/ldsvc*.c includes this header; other modules see
 * fabric/cxl-switch/ldsvc.h.
 *
 *   ldsvc.c       the service object (new, tune, stats, lab removal,
 *                 close), sending (requests; answers held per node while a
 *                 link is full), the later timer, message dispatch, and the
 *                 file helpers both sides use
 *   ldsvc_pool.c  the pool side: pools open on this node, their LDs' files
 *                 and sizes, resize, answering OPEN/READ/WRITE
 *   ldsvc_xfer.c  the guest side: transfers (fetch, adopt, write-back),
 *                 their waiters and completions, resends and timeouts (the
 *                 tick timer)
 *
 * Loop thread only. Nothing here calls a user callback except
 * ldsvc_comp_run; file I/O is a chunk at a time unless a comment says more.
 */
#ifndef PX_CXLSW_LDSVC_INT_H
#define PX_CXLSW_LDSVC_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <uv.h>

#include "fabric/cxl-switch/ldsvc.h"

#define AGAIN_MS 1u /* a full link: send again this soon */
#define PATH_CAP 4096
#define NAME_CAP 64

/* ---- structures ---- */

typedef struct lpool {
    char lab[NAME_CAP], name[NAME_CAP];
    char dir[PATH_CAP];
    uint64_t key;
    uint32_t n_lds;
    uint64_t ld_size; /* what it was opened with: the size of LDs it creates */
    uint64_t *size;   /* [n_lds]: each LD's memory bytes, its .mem file's length */
    int (*fd)[2];     /* [n_lds][area], -1 until first used */
} lpool;

/* Defined where they are used: nqueue in ldsvc.c, the others in
 * ldsvc_xfer.c. */
typedef struct nqueue nqueue;
typedef struct xfer xfer;
typedef struct waiter waiter;

struct px_cxlld {
    uv_loop_t *loop;
    px_svc_io io;
    px_cxlld_tuning tun;
    lpool **pools;
    uint32_t n_pools;
    xfer *xfers;
    nqueue *queues;
    waiter *comps, **comps_tail;
    uv_timer_t tick;  /* resends and timeouts while transfers run */
    uv_timer_t later; /* pumps, held answers, completions */
    bool tick_on;
    uint64_t later_due; /* loop time the later timer fires; 0 = not armed */
    uint64_t next_id, seq;
    px_msg *scratch;
    px_wbuf wb;
    uint8_t *buf; /* one chunk */
    px_cxlld_stats st;
    bool shutting;
    unsigned closing;
    void (*done)(void *ud);
    void *done_ud;
};

static inline uint64_t ldsvc_now_ms(px_cxlld *s)
{
    return uv_now(s->loop);
}

static inline bool ldsvc_name_ok(const char *s)
{
    return s && s[0] && strlen(s) < NAME_CAP;
}

/* An LD's memory size: a multiple of PX_CXLLD_ALIGN up to
 * PX_CXLLD_MAX_LD_SIZE, 0 included. */
static inline bool ldsvc_ld_size_ok(uint64_t size)
{
    return size % PX_CXLLD_ALIGN == 0 && size <= PX_CXLLD_MAX_LD_SIZE;
}

/* ---- ldsvc.c ---- */

/* Fire the later timer in ms (or keep it, if it fires sooner): it flushes
 * held answers, pumps the transfers that asked to be (ldsvc_xfers_pump),
 * then runs the completions (ldsvc_comp_run). Nothing once closing. */
void ldsvc_later(px_cxlld *s, uint64_t ms);

/* Send a guest-side request b to node. PX_E_AGAIN: the link is full, try
 * again soon; any other outcome is PX_OK (sent, or lost and resent later).
 * Never calls a callback. */
px_err ldsvc_request(px_cxlld *s, const char *node, const px_msg_cxl *b);

/* Send a pool-side answer b to node, in order behind those held for it;
 * held or dropped (counted) when its link is full. Never calls a callback. */
void ldsvc_answer(px_cxlld *s, const char *node, const px_msg_cxl *b);

/* Count (stats.bad_msgs) and now and then log a message dropped as bad:
 * what was wrong, from which node. */
void ldsvc_bad(px_cxlld *s, const char *what, const char *node);

/* Byte and file helpers, errno set on failure (-1). */
bool ldsvc_all_zero(const uint8_t *p, size_t n);
bool ldsvc_is_hole(int fd, uint64_t off, uint64_t len);
int ldsvc_pread_full(int fd, uint8_t *p, size_t n, uint64_t off);
int ldsvc_pwrite_full(int fd, const uint8_t *p, size_t n, uint64_t off);

/* ---- ldsvc_pool.c ---- */

/* The pool lab/name open here (owned by s), or NULL; *at (if not NULL) gets
 * its index in s->pools. */
lpool *ldsvc_pool_named(px_cxlld *s, const char *lab, const char *name, uint32_t *at);

/* Close p's files and free it (NULL is ignored); the caller unlinks it from
 * s->pools. */
void ldsvc_pool_free(lpool *p);

/* An OPEN, READ or WRITE from node (already checked to be the node its key
 * belongs to): answered (INFO, DATA, ACK or FAIL through ldsvc_answer), or
 * dropped as bad. Reads or writes at most one chunk of a pool's file. */
void ldsvc_pool_msg(px_cxlld *s, const char *node, const px_msg_cxl *m);

/* ---- ldsvc_xfer.c ---- */

/* An answer (INFO, DATA, ACK, FAIL) from node for one of this node's
 * transfers, or anything else that is not a request: taken, counted as a
 * duplicate or dropped as bad. Completions it causes are queued, not run. */
void ldsvc_xfer_msg(px_cxlld *s, const char *node, const px_msg_cxl *m);

/* Pump the transfers that asked for it (from the later timer). May fail a
 * transfer, never unlinks one; a write-back reads a bounded number of
 * chunks per call. */
void ldsvc_xfers_pump(px_cxlld *s);

/* End and free the transfers of lab (all of them for NULL); their waiters
 * complete with PX_E_CLOSED and msg (queued, not run). */
void ldsvc_xfers_end(px_cxlld *s, const char *lab, const char *msg);

/* Start the tick timer (resends, timeouts) unless it runs or s is closing. */
void ldsvc_tick_start(px_cxlld *s);

/* Run the user callbacks queued so far (ones they queue run next time) and
 * free their waiters. */
void ldsvc_comp_run(px_cxlld *s);

#endif
