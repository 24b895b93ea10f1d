/* plexus — CXL LD data: the guest side. See ldsvc.h and docs/cxl.md.
 *
 * Transfers of an LD between this node's local files and the pool's node:
 * fetch (and adopt), write-back, their windows of chunks in flight,
 * resends and timeouts (the tick timer), and the waiters whose callbacks
 * ldsvc_comp_run runs from the later timer (ldsvc.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fabric/core/log.h"
#include "fabric/core/text.h"
#include "fabric/cxl-switch/ldsvc_int.h"

#define SCAN_BUDGET 32u /* chunks a write-back reads and hashes per loop iteration */

/* The chunk hash is part of the protocol (wire.h: px_msg_cxl). */
static const uint8_t hash_key[crypto_shorthash_KEYBYTES] = {'p', 'l', 'e', 'x', 'u', 's', '-', 'c',
                                                            'x', 'l', '-', 'l', 'd', '-', 'v', '1'};

/* ---- structures ---- */

/* A caller waiting for an operation; becomes a completion when it ends. */
struct waiter {
    struct waiter *next;
    px_cxlld_done done;
    void *ud;
    px_err err;
    char msg[512];
};

typedef enum xphase {
    X_OPENING,  /* OPEN sent, waiting for INFO */
    X_FETCHING, /* READs out */
    X_READY,    /* the local files hold the LD (or the pool is local) */
    X_WRITING,  /* a write-back runs */
    X_FAILED,   /* the fetch failed: the files are not the LD */
} xphase;

#define NO_CHUNK UINT32_MAX

typedef struct slot {
    uint32_t chunk; /* NO_CHUNK: free */
    uint8_t zero;   /* WRITE: sent as zero */
    uint64_t hash;  /* WRITE: the hash sent */
    uint64_t sent_ms;
} slot;

struct xfer {
    struct xfer *next;
    px_cxlld *s;
    uint64_t id;
    char lab[NAME_CAP], pool[NAME_CAP], node[NAME_CAP];
    uint64_t key;
    uint32_t ld;
    bool local;
    xphase phase;
    int fd[2];
    char path[2][PATH_CAP];
    uint64_t size[2];
    uint32_t nch[2]; /* chunks per area */
    uint32_t total;
    bool keep;      /* adopt: the local files are kept as they are (a running guest's) */
    uint64_t want;  /* the memory size the caller expects; 0: whatever the pool says */
    bool other;     /* the last INFO had another memory size than want ... */
    uint64_t seen;  /* ... this one */
    uint64_t *hash; /* [total]: the pool's copy's chunk hashes, as far as we know */
    uint8_t *zero;  /* [total]: 1 = that chunk is all zero there */
    uint32_t cursor;
    uint32_t received;
    bool open_sent, pump_due;
    uint64_t open_ms;
    uint64_t progress_ms;
    slot *win;
    uint32_t window, n_win;
    waiter *cur, *nxt; /* this operation's callers; the next write-back's */
};

/* ---- small helpers ---- */

static uint64_t chunk_hash(const uint8_t *p, size_t n)
{
    uint8_t out[crypto_shorthash_BYTES];
    crypto_shorthash(out, p, n, hash_key);
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--)
        h = h << 8 | out[i];
    return h;
}

/* ---- completions ---- */

static void comp_push(px_cxlld *s, waiter *w, px_err err, const char *msg)
{
    w->err = err;
    snprintf(w->msg, sizeof(w->msg), "%s", msg ? msg : "");
    w->next = NULL;
    *s->comps_tail = w;
    s->comps_tail = &w->next;
    ldsvc_later(s, 0);
}

static void comp_all(px_cxlld *s, waiter **list, px_err err, const char *msg)
{
    waiter *w = *list;
    *list = NULL;
    while (w) {
        waiter *n = w->next;
        comp_push(s, w, err, msg);
        w = n;
    }
}

static waiter *waiter_new(px_cxlld_done done, void *ud)
{
    waiter *w = calloc(1, sizeof(*w));
    if (w) {
        w->done = done;
        w->ud = ud;
    }
    return w;
}

static void waiter_append(waiter **list, waiter *w)
{
    while (*list)
        list = &(*list)->next;
    *list = w;
}

/* Runs the callbacks queued so far; ones they queue run next time. */
void ldsvc_comp_run(px_cxlld *s)
{
    waiter *w = s->comps;
    s->comps = NULL;
    s->comps_tail = &s->comps;
    while (w) {
        waiter *n = w->next;
        if (w->done)
            w->done(w->ud, w->err, w->msg);
        free(w);
        w = n;
    }
}

/* ---- the guest side: transfers ---- */

static xfer *xfer_find(px_cxlld *s, uint64_t id)
{
    for (xfer *x = s->xfers; x; x = x->next)
        if (x->id == id)
            return x;
    return NULL;
}

static bool running(const xfer *x)
{
    return x->phase == X_OPENING || x->phase == X_FETCHING || x->phase == X_WRITING;
}

static void schedule(xfer *x, uint64_t ms)
{
    x->pump_due = true;
    ldsvc_later(x->s, ms);
}

static void chunk_range(const xfer *x, uint32_t c, uint32_t *area, uint64_t *off, uint32_t *len)
{
    uint32_t a = c >= x->nch[0];
    uint64_t o = (uint64_t)(a ? c - x->nch[0] : c) * PX_CXLLD_CHUNK;
    uint64_t n = x->size[a] - o;
    *area = a;
    *off = o;
    *len = (uint32_t)(n < PX_CXLLD_CHUNK ? n : PX_CXLLD_CHUNK);
}

/* The chunk an answer names, or NO_CHUNK when no chunk is exactly that
 * range. */
static uint32_t chunk_of(const xfer *x, uint32_t area, uint64_t off, uint32_t len)
{
    if (area > 1 || off % PX_CXLLD_CHUNK || off / PX_CXLLD_CHUNK >= x->nch[area])
        return NO_CHUNK;
    uint32_t c = (uint32_t)(off / PX_CXLLD_CHUNK) + (area ? x->nch[0] : 0);
    uint32_t a;
    uint64_t o;
    uint32_t l;
    chunk_range(x, c, &a, &o, &l);
    return l == len ? c : NO_CHUNK;
}

static slot *slot_find(xfer *x, uint32_t c)
{
    for (uint32_t i = 0; i < x->window; i++)
        if (x->win[i].chunk == c)
            return &x->win[i];
    return NULL;
}

static slot *slot_take(xfer *x, uint32_t c)
{
    slot *sl = slot_find(x, NO_CHUNK);
    if (sl) {
        *sl = (slot){.chunk = c};
        x->n_win++;
    }
    return sl;
}

static void slot_drop(xfer *x, slot *sl)
{
    sl->chunk = NO_CHUNK;
    x->n_win--;
}

static void slots_clear(xfer *x)
{
    for (uint32_t i = 0; i < x->window; i++)
        x->win[i].chunk = NO_CHUNK;
    x->n_win = 0;
}

static const char *what(const xfer *x)
{
    return x->phase == X_WRITING ? "write-back" : "fetch";
}

/* The operation ends with an error. A failed fetch leaves the handle
 * unusable; a failed write-back leaves it as it was (unacknowledged chunks
 * keep their old hash, so the next write-back sends them again). */
static void xfer_fail(xfer *x, px_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void xfer_fail(xfer *x, px_err err, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    PX_WARN("cxl", "LD transfer failed", "lab=%s pool=%s ld=%u node=%s op=%s err=%s detail=\"%s\"",
            x->lab, x->pool, x->ld, x->node, what(x), px_errname(err), text);
    x->phase = x->phase == X_WRITING ? X_READY : X_FAILED;
    slots_clear(x);
    x->pump_due = false;
    comp_all(x->s, &x->cur, err, text);
    comp_all(x->s, &x->nxt, err, text);
}

static void xfer_free(xfer *x)
{
    for (int a = 0; a < 2; a++)
        if (x->fd[a] >= 0)
            close(x->fd[a]);
    free(x->hash);
    free(x->zero);
    free(x->win);
    free(x);
}

/* Unlinks x and ends its callers with `err`. */
static void xfer_end(xfer *x, px_err err, const char *msg)
{
    px_cxlld *s = x->s;
    for (xfer **pp = &s->xfers; *pp; pp = &(*pp)->next)
        if (*pp == x) {
            *pp = x->next;
            break;
        }
    comp_all(s, &x->cur, err, msg);
    comp_all(s, &x->nxt, err, msg);
    xfer_free(x);
}

static px_msg_cxl req(const xfer *x, uint32_t op)
{
    return (px_msg_cxl){
        .pool = x->key, .op = op, .node = px_str_c(x->s->io.self), .xfer = x->id, .ld = x->ld};
}

static px_err send_read(xfer *x, uint32_t c)
{
    px_msg_cxl r = req(x, PX_CXL_READ);
    chunk_range(x, c, &r.area, &r.off, &r.len);
    return ldsvc_request(x->s, x->node, &r);
}

/* ---- fetch ---- */

static void fetch_done(xfer *x)
{
    x->phase = X_READY;
    PX_INFO("cxl", "LD fetched", "lab=%s pool=%s ld=%u node=%s chunks=%u", x->lab, x->pool, x->ld,
            x->node, x->total);
    comp_all(x->s, &x->cur, PX_OK, "");
}

static void fetch_pump(xfer *x)
{
    px_cxlld *s = x->s;
    if (x->phase == X_OPENING) {
        if (x->open_sent)
            return;
        px_msg_cxl o = req(x, PX_CXL_OPEN);
        if (ldsvc_request(s, x->node, &o) == PX_E_AGAIN) {
            schedule(x, AGAIN_MS);
            return;
        }
        x->open_sent = true;
        x->open_ms = ldsvc_now_ms(s);
        return;
    }
    while (x->n_win < x->window && x->cursor < x->total) {
        if (send_read(x, x->cursor) == PX_E_AGAIN) {
            schedule(x, AGAIN_MS);
            return;
        }
        slot_take(x, x->cursor)->sent_ms = ldsvc_now_ms(s);
        x->cursor++;
    }
}

static void on_info(xfer *x, const px_msg_cxl *m)
{
    px_cxlld *s = x->s;
    if (x->phase != X_OPENING) {
        s->st.dups++;
        return;
    }
    /* 0 is a size: an LD may be given no memory. */
    if (!ldsvc_ld_size_ok(m->size) || m->lsa == 0 || m->lsa > PX_CXLLD_MAX_LSA_SIZE) {
        s->st.bad_msgs++;
        xfer_fail(x, PX_E_PROTO,
                  "pool node %s gave LD %u of pool %s sizes %" PRIu64 " and %" PRIu64
                  " bytes (label storage); expected a multiple of %u up to %" PRIu64 " and 1..%u",
                  x->node, x->ld, x->pool, m->size, m->lsa, PX_CXLLD_ALIGN,
                  (uint64_t)PX_CXLLD_MAX_LD_SIZE, PX_CXLLD_MAX_LSA_SIZE);
        return;
    }
    if (x->want && m->size != x->want) {
        /* Not taken: the pool's node may not have applied the plan that
         * resized the LD yet. The OPEN stays unanswered, so it is sent
         * again after retry_ms; the timeout ends the wait. */
        if (!x->other)
            PX_WARN("cxl", "pool's node has the LD at another size; asking again",
                    "lab=%s pool=%s ld=%u node=%s size=%" PRIu64 " want=%" PRIu64, x->lab, x->pool,
                    x->ld, x->node, m->size, x->want);
        x->other = true;
        x->seen = m->size;
        return;
    }
    x->size[0] = m->size;
    x->size[1] = m->lsa;
    for (int a = 0; a < 2; a++)
        x->nch[a] = (uint32_t)((x->size[a] + PX_CXLLD_CHUNK - 1) / PX_CXLLD_CHUNK);
    x->total = x->nch[0] + x->nch[1];
    x->hash = calloc(x->total, sizeof(*x->hash));
    x->zero = calloc(x->total, sizeof(*x->zero));
    if (!x->hash || !x->zero) {
        xfer_fail(x, PX_E_NOMEM, "no memory for the chunk table of LD %u (%u chunks)", x->ld,
                  x->total);
        return;
    }
    if (x->keep) {
        /* A running guest's files (its QEMU outlived a node restart):
         * keep them; not knowing what the pool holds, the next write-back
         * sends every chunk. size[0] is also the caller's size when it
         * gave one (an INFO with another was not taken above). */
        struct stat st[2];
        if (fstat(x->fd[0], &st[0]) == 0 && fstat(x->fd[1], &st[1]) == 0 &&
            (uint64_t)st[0].st_size == x->size[0] && (uint64_t)st[1].st_size == x->size[1]) {
            x->phase = X_READY;
            comp_all(s, &x->cur, PX_OK, "");
            return;
        }
    }
    /* Empty first: what is not sent is zero. */
    for (int a = 0; a < 2; a++)
        if (ftruncate(x->fd[a], 0) != 0 || ftruncate(x->fd[a], (off_t)x->size[a]) != 0) {
            xfer_fail(x, PX_E_IO, "cannot size %s to %" PRIu64 " bytes: %s", x->path[a], x->size[a],
                      strerror(errno));
            return;
        }
    x->phase = X_FETCHING;
    x->progress_ms = ldsvc_now_ms(s);
    fetch_pump(x);
}

static void on_data(xfer *x, const px_msg_cxl *m)
{
    px_cxlld *s = x->s;
    if (x->phase != X_FETCHING) {
        s->st.dups++;
        return;
    }
    uint32_t c = chunk_of(x, m->area, m->off, m->len);
    if (c == NO_CHUNK) {
        ldsvc_bad(s, "DATA for a range that is no chunk of the LD", x->node);
        return;
    }
    slot *sl = slot_find(x, c);
    if (!sl) {
        s->st.dups++;
        return;
    }
    if (!m->zero && ldsvc_pwrite_full(x->fd[m->area], m->d.ptr, m->len, m->off) != 0) {
        xfer_fail(x, PX_E_IO, "cannot write %s: %s", x->path[m->area], strerror(errno));
        return;
    }
    /* The guest hashes what it wrote, not the pool what it read: a pool
     * serves many guests, and the bytes are in this cache now. */
    x->hash[c] = m->zero ? 0 : chunk_hash(m->d.ptr, m->len);
    x->zero[c] = m->zero ? 1 : 0;
    slot_drop(x, sl);
    x->received++;
    x->progress_ms = ldsvc_now_ms(s);
    s->st.fetched++;
    s->st.fetched_zero += m->zero ? 1 : 0;
    if (x->received == x->total)
        fetch_done(x);
    else
        fetch_pump(x);
}

/* ---- write-back ---- */

/* Reads chunk c; sends it if it differs from what the pool holds (or
 * always, with force). 1: sent (or lost: it is resent), 0: unchanged,
 * PX_E_AGAIN: link full, other errors: the local file cannot be read. */
static int wb_chunk(xfer *x, uint32_t c, bool force, slot *sl)
{
    px_cxlld *s = x->s;
    px_msg_cxl w = req(x, PX_CXL_WRITE);
    chunk_range(x, c, &w.area, &w.off, &w.len);
    int fd = x->fd[w.area];
    bool zero = ldsvc_is_hole(fd, w.off, w.len);
    if (!zero) {
        if (ldsvc_pread_full(fd, s->buf, w.len, w.off) != 0)
            return px_err_from_errno(errno);
        zero = ldsvc_all_zero(s->buf, w.len);
    }
    if (zero) {
        if (!force && x->zero[c])
            return 0;
        w.zero = 1;
    } else {
        w.hash = chunk_hash(s->buf, w.len);
        if (!force && !x->zero[c] && x->hash[c] == w.hash)
            return 0;
        w.d = (px_bin){s->buf, w.len};
    }
    if (ldsvc_request(s, x->node, &w) == PX_E_AGAIN)
        return PX_E_AGAIN;
    if (!sl)
        sl = slot_take(x, c);
    sl->zero = w.zero;
    sl->hash = w.hash;
    sl->sent_ms = ldsvc_now_ms(s);
    return 1;
}

static void wb_start(xfer *x);

static void wb_done(xfer *x)
{
    x->phase = X_READY;
    comp_all(x->s, &x->cur, PX_OK, "");
    if (x->nxt) {
        x->cur = x->nxt;
        x->nxt = NULL;
        wb_start(x);
    }
}

static void wb_pump(xfer *x)
{
    px_cxlld *s = x->s;
    uint32_t budget = SCAN_BUDGET;
    while (x->n_win < x->window && x->cursor < x->total) {
        if (budget-- == 0) {
            schedule(x, 0);
            return;
        }
        int r = wb_chunk(x, x->cursor, false, NULL);
        if (r == PX_E_AGAIN) {
            schedule(x, AGAIN_MS);
            return;
        }
        if (r < 0) {
            uint32_t a;
            uint64_t o;
            uint32_t l;
            chunk_range(x, x->cursor, &a, &o, &l);
            xfer_fail(x, (px_err)r, "cannot read %s at %" PRIu64 ": %s", x->path[a], o,
                      px_strerror((px_err)r));
            return;
        }
        if (r == 0)
            s->st.wb_same++;
        else
            s->st.wb_sent++;
        x->cursor++;
    }
    if (x->cursor == x->total && x->n_win == 0)
        wb_done(x);
}

static void wb_start(xfer *x)
{
    x->phase = X_WRITING;
    x->cursor = 0;
    x->progress_ms = ldsvc_now_ms(x->s);
    ldsvc_tick_start(x->s);
    schedule(x, 0);
}

static void on_ack(xfer *x, const px_msg_cxl *m)
{
    px_cxlld *s = x->s;
    if (x->phase != X_WRITING) {
        s->st.dups++;
        return;
    }
    uint32_t c = chunk_of(x, m->area, m->off, m->len);
    if (c == NO_CHUNK) {
        ldsvc_bad(s, "ACK for a range that is no chunk of the LD", x->node);
        return;
    }
    slot *sl = slot_find(x, c);
    if (!sl || sl->hash != m->hash) {
        s->st.dups++; /* an earlier send of a chunk that was resent since */
        return;
    }
    x->hash[c] = sl->hash;
    x->zero[c] = sl->zero;
    slot_drop(x, sl);
    x->progress_ms = ldsvc_now_ms(s);
    wb_pump(x);
}

/* ---- timers ---- */

static void pump(xfer *x)
{
    if (x->phase == X_OPENING || x->phase == X_FETCHING)
        fetch_pump(x);
    else if (x->phase == X_WRITING)
        wb_pump(x);
}

void ldsvc_xfers_pump(px_cxlld *s)
{
    /* Pumps may fail a transfer but never unlink one (only the API does,
     * and user callbacks run after this walk). */
    for (xfer *x = s->xfers; x; x = x->next)
        if (x->pump_due) {
            x->pump_due = false;
            pump(x);
        }
}

static void resend(xfer *x, uint64_t now)
{
    px_cxlld *s = x->s;
    uint64_t retry = s->tun.retry_ms;
    if (x->phase == X_OPENING) {
        if (x->open_sent && now - x->open_ms >= retry) {
            x->open_sent = false;
            s->st.resent++;
            fetch_pump(x);
        }
        return;
    }
    for (uint32_t i = 0; i < x->window && running(x); i++) {
        slot *sl = &x->win[i];
        if (sl->chunk == NO_CHUNK || now - sl->sent_ms < retry)
            continue;
        if (x->phase == X_FETCHING) {
            if (send_read(x, sl->chunk) == PX_E_AGAIN)
                return;
            sl->sent_ms = now;
        } else {
            uint32_t c = sl->chunk, a = c >= x->nch[0];
            int r = wb_chunk(x, c, true, sl);
            if (r == PX_E_AGAIN)
                return;
            if (r < 0) {
                xfer_fail(x, (px_err)r, "cannot read %s again: %s", x->path[a],
                          px_strerror((px_err)r));
                return;
            }
        }
        s->st.resent++;
    }
}

static void on_tick(uv_timer_t *t)
{
    px_cxlld *s = t->data;
    uint64_t now = ldsvc_now_ms(s);
    bool any = false;
    for (xfer *x = s->xfers; x; x = x->next) {
        if (!running(x))
            continue;
        if (now - x->progress_ms >= s->tun.timeout_ms && x->phase == X_OPENING && x->other) {
            xfer_fail(x, PX_E_TIMEOUT,
                      "%s of LD %u of pool %s (lab %s): pool %s's node %s has LD %u at %" PRIu64
                      " bytes, this node's plan says %" PRIu64
                      "; has that node applied the plan that resized it?",
                      what(x), x->ld, x->pool, x->lab, x->pool, x->node, x->ld, x->seen, x->want);
            continue;
        }
        if (now - x->progress_ms >= s->tun.timeout_ms) {
            xfer_fail(x, PX_E_TIMEOUT,
                      "%s of LD %u of pool %s (lab %s): pool node %s did not answer for %.1f s; "
                      "is it up and reachable? (plexus nodes)",
                      what(x), x->ld, x->pool, x->lab, x->node,
                      (double)(now - x->progress_ms) / 1000.0);
            continue;
        }
        resend(x, now);
        any |= running(x);
    }
    if (!any) {
        uv_timer_stop(&s->tick);
        s->tick_on = false;
    }
}

void ldsvc_tick_start(px_cxlld *s)
{
    if (s->tick_on || s->shutting)
        return;
    uint64_t every =
        (s->tun.retry_ms < s->tun.timeout_ms ? s->tun.retry_ms : s->tun.timeout_ms) / 4;
    every = every < 5 ? 5 : every > 250 ? 250 : every;
    s->tick_on = true;
    uv_timer_start(&s->tick, on_tick, every, every);
}

/* ---- the guest side: API ---- */

static px_err xfer_new(px_cxlld *s, const char *lab, const char *pool, const char *pool_node,
                       uint32_t ld, xfer **out)
{
    xfer *x = calloc(1, sizeof(*x));
    if (!x)
        return PX_E_NOMEM;
    x->s = s;
    x->id = ++s->next_id;
    snprintf(x->lab, sizeof(x->lab), "%s", lab);
    snprintf(x->pool, sizeof(x->pool), "%s", pool);
    snprintf(x->node, sizeof(x->node), "%s", pool_node);
    x->key = px_net_key(lab, pool);
    x->ld = ld;
    x->fd[0] = x->fd[1] = -1;
    x->window = s->tun.window;
    x->win = calloc(x->window, sizeof(*x->win));
    if (!x->win) {
        free(x);
        return PX_E_NOMEM;
    }
    slots_clear(x);
    *out = x;
    return PX_OK;
}

static px_err fetch(px_cxlld *s, const char *lab, const char *pool, const char *pool_node,
                    uint32_t ld, uint64_t size, const char *mem_path, const char *lsa_path,
                    bool keep, px_cxlld_done done, void *ud, uint64_t *handle, px_errmsg *em);

px_err px_cxlld_fetch(px_cxlld *s, const char *lab, const char *pool, const char *pool_node,
                      uint32_t ld, uint64_t size, const char *mem_path, const char *lsa_path,
                      px_cxlld_done done, void *ud, uint64_t *handle, px_errmsg *em)
{
    return fetch(s, lab, pool, pool_node, ld, size, mem_path, lsa_path, false, done, ud, handle,
                 em);
}

px_err px_cxlld_adopt(px_cxlld *s, const char *lab, const char *pool, const char *pool_node,
                      uint32_t ld, uint64_t size, const char *mem_path, const char *lsa_path,
                      px_cxlld_done done, void *ud, uint64_t *handle, px_errmsg *em)
{
    return fetch(s, lab, pool, pool_node, ld, size, mem_path, lsa_path, true, done, ud, handle, em);
}

static px_err fetch(px_cxlld *s, const char *lab, const char *pool, const char *pool_node,
                    uint32_t ld, uint64_t size, const char *mem_path, const char *lsa_path,
                    bool keep, px_cxlld_done done, void *ud, uint64_t *handle, px_errmsg *em)
{
    if (s->shutting)
        return px_errmsg_set(em, PX_E_CLOSED, "the CXL LD service is closing");
    if (!ldsvc_name_ok(lab) || !ldsvc_name_ok(pool) || !ldsvc_name_ok(pool_node) ||
        ld >= PX_CXLLD_MAX_LDS)
        return px_errmsg_set(em, PX_E_INVAL,
                             "fetch: lab, pool or node name missing or too long, "
                             "or LD over %u",
                             PX_CXLLD_MAX_LDS - 1);
    bool local = strcmp(pool_node, s->io.self) == 0;
    if (!local && !ldsvc_ld_size_ok(size))
        return px_errmsg_set(em, PX_E_INVAL,
                             "fetch of LD %u: size %" PRIu64 " is not a multiple of %u up to "
                             "%" PRIu64,
                             ld, size, PX_CXLLD_ALIGN, (uint64_t)PX_CXLLD_MAX_LD_SIZE);
    if (local) {
        lpool *p = ldsvc_pool_named(s, lab, pool, NULL);
        if (!p || ld >= p->n_lds)
            return px_errmsg_set(em, PX_E_NOTFOUND,
                                 "pool %s of lab %s is not open on this node (%s)%s", pool, lab,
                                 s->io.self, p ? " with that many LDs" : "");
    } else if (!mem_path || !lsa_path || strlen(mem_path) >= PATH_CAP ||
               strlen(lsa_path) >= PATH_CAP) {
        return px_errmsg_set(em, PX_E_INVAL, "fetch of LD %u: file paths missing or too long", ld);
    }
    waiter *w = waiter_new(done, ud);
    xfer *x = NULL;
    if (!w || xfer_new(s, lab, pool, pool_node, ld, &x) != PX_OK) {
        free(w);
        return px_errmsg_set(em, PX_E_NOMEM, "fetch of LD %u: out of memory", ld);
    }
    x->local = local;
    x->keep = keep;
    x->want = size;
    if (!local) {
        const char *paths[2] = {mem_path, lsa_path};
        for (int a = 0; a < 2; a++) {
            snprintf(x->path[a], sizeof(x->path[a]), "%s", paths[a]);
            x->fd[a] = open(paths[a], O_RDWR | O_CREAT | O_CLOEXEC, 0600);
            if (x->fd[a] < 0) {
                px_err err = px_errmsg_set(em, px_err_from_errno(errno),
                                           "fetch of LD %u: cannot open %s: %s", ld, paths[a],
                                           strerror(errno));
                free(w);
                xfer_free(x);
                return err;
            }
        }
    }
    x->next = s->xfers;
    s->xfers = x;
    x->cur = w;
    if (local) {
        x->phase = X_READY;
        comp_all(s, &x->cur, PX_OK, "");
    } else {
        x->phase = X_OPENING;
        x->progress_ms = ldsvc_now_ms(s);
        ldsvc_tick_start(s);
        schedule(x, 0);
    }
    if (handle)
        *handle = x->id;
    return PX_OK;
}

px_err px_cxlld_writeback(px_cxlld *s, uint64_t handle, px_cxlld_done done, void *ud, px_errmsg *em)
{
    xfer *x = s->shutting ? NULL : xfer_find(s, handle);
    if (!x)
        return px_errmsg_set(em, PX_E_NOTFOUND, "write-back: no LD copy %" PRIu64, handle);
    if (x->phase == X_OPENING || x->phase == X_FETCHING)
        return px_errmsg_set(em, PX_E_AGAIN,
                             "write-back of LD %u of pool %s: its fetch is still running", x->ld,
                             x->pool);
    if (x->phase == X_FAILED)
        return px_errmsg_set(em, PX_E_INVAL,
                             "write-back of LD %u of pool %s: its fetch failed; the local files "
                             "are not the LD",
                             x->ld, x->pool);
    waiter *w = waiter_new(done, ud);
    if (!w)
        return px_errmsg_set(em, PX_E_NOMEM, "write-back: out of memory");
    if (x->local) {
        comp_push(s, w, PX_OK, "");
    } else if (x->phase == X_WRITING) {
        waiter_append(&x->nxt, w);
    } else {
        x->cur = w;
        wb_start(x);
    }
    return PX_OK;
}

void px_cxlld_forget(px_cxlld *s, uint64_t handle)
{
    xfer *x = xfer_find(s, handle);
    if (x)
        xfer_end(x, PX_E_CLOSED, "the LD copy was forgotten while a transfer ran");
}

void ldsvc_xfers_end(px_cxlld *s, const char *lab, const char *msg)
{
    xfer *x = s->xfers;
    while (x) {
        xfer *n = x->next;
        if (!lab || strcmp(x->lab, lab) == 0)
            xfer_end(x, PX_E_CLOSED, msg);
        x = n;
    }
}

/* ---- answers ---- */

void ldsvc_xfer_msg(px_cxlld *s, const char *node, const px_msg_cxl *m)
{
    xfer *x = xfer_find(s, m->xfer);
    if (!x || x->local || x->key != m->pool || x->ld != m->ld || strcmp(x->node, node) != 0) {
        ldsvc_bad(s, "an answer to no transfer of ours", node);
        return;
    }
    switch (m->op) {
    case PX_CXL_INFO:
        on_info(x, m);
        return;
    case PX_CXL_DATA:
        on_data(x, m);
        return;
    case PX_CXL_ACK:
        on_ack(x, m);
        return;
    case PX_CXL_FAIL:
        if (!running(x)) {
            s->st.dups++;
            return;
        }
        {
            char text[PX_WIRE_MAX_CXL_MSG + 1];
            px_str_copy(text, sizeof(text), m->msg);
            xfer_fail(x, m->code < 0 ? (px_err)m->code : PX_E_PROTO,
                      "%s of LD %u of pool %s (lab %s): pool node %s refused: %s", what(x), x->ld,
                      x->pool, x->lab, x->node, text);
        }
        return;
    default:
        ldsvc_bad(s, "an unknown op", node);
    }
}
