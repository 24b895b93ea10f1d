/* plexus — CXL LD data across hosts. See ldsvc.h and docs/cxl.md.
 *
 * The guest's node drives every transfer: it asks, the pool's node
 * answers each request on its own. So the pool side needs no per-transfer
 * state, a lost message costs one resend, and flow control is the guest's
 * window: at most tuning.window chunks (4 MiB by default) are asked for and
 * not yet answered, whatever the LD's size.
 *
 * User callbacks run only from on_later (and from the final close
 * callback): everything that completes an operation moves its waiters to
 * s->comps and arms that timer. Transfers own no libuv handles, so they are
 * freed at once; the service's two timers are closed in px_cxlld_close.
 *
 * This file: the service object, sending, the later timer and dispatch.
 * The pool side is in ldsvc_pool.c, the transfers in ldsvc_xfer.c
 * (ldsvc_int.h says what they share).
 */
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fabric/core/log.h"
#include "fabric/core/outq.h"
#include "fabric/core/text.h"
#include "fabric/cxl-switch/ldsvc_int.h"

#define DEF_WINDOW      PX_CXLLD_WINDOW
#define MAX_WINDOW      256u
#define DEF_RETRY_MS    2000u
#define DEF_TIMEOUT_MS  30000u
#define DEF_QUEUE_BYTES ((size_t)32 << 20)

/* Encoded answers waiting for a full link to a node. */
struct nqueue {
    struct nqueue *next;
    char node[NAME_CAP];
    px_outq q;
};

/* ---- small helpers ---- */

bool ldsvc_all_zero(const uint8_t *p, size_t n)
{
    return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* True when [off, off+len) of fd is a hole (reads as zeros without being
 * read). Filesystems without SEEK_DATA say "data" and are read. */
bool ldsvc_is_hole(int fd, uint64_t off, uint64_t len)
{
    off_t d = lseek(fd, (off_t)off, SEEK_DATA);
    if (d < 0)
        return errno == ENXIO;
    return (uint64_t)d >= off + len;
}

/* A read past the end of a file (someone shortened it) reads as zeros. */
int ldsvc_pread_full(int fd, uint8_t *p, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, p + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0) {
            memset(p + got, 0, n - got);
            break;
        }
        got += (size_t)r;
    }
    return 0;
}

int ldsvc_pwrite_full(int fd, const uint8_t *p, size_t n, uint64_t off)
{
    size_t put = 0;
    while (put < n) {
        ssize_t r = pwrite(fd, p + put, n - put, (off_t)(off + put));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        put += (size_t)r;
    }
    return 0;
}

/* ---- sending ---- */

static px_err encode(px_cxlld *s, const px_msg_cxl *b)
{
    px_msg *m = s->scratch;
    memset(&m->env, 0, sizeof(m->env));
    m->env.type = PX_MSG_CXL;
    m->env.object = b->pool;
    m->env.seq = ++s->seq;
    m->body.cxl = *b;
    px_wbuf_reset(&s->wb);
    px_errmsg em = {{0}};
    px_err err = px_wire_encode(&s->wb, m, &em);
    if (err)
        PX_ERROR("cxl", "cannot encode a CXL message", "err=%s detail=\"%s\"", px_errname(err),
                 em.text);
    return err;
}

/* A request from the guest side: PX_E_AGAIN when the link is full (the
 * caller tries again soon); any other failure counts as sent and lost (the
 * resend timer and the timeout deal with it). */
px_err ldsvc_request(px_cxlld *s, const char *node, const px_msg_cxl *b)
{
    px_err err = encode(s, b);
    if (err)
        return PX_OK;
    err = s->io.to_node(s->io.ud, node, s->wb.data, s->wb.len);
    if (err == PX_E_AGAIN) {
        s->st.again++;
        return err;
    }
    return PX_OK;
}

static nqueue *queue_for(px_cxlld *s, const char *node, bool make)
{
    for (nqueue *q = s->queues; q; q = q->next)
        if (strcmp(q->node, node) == 0)
            return q;
    if (!make)
        return NULL;
    nqueue *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    snprintf(q->node, sizeof(q->node), "%s", node);
    q->next = s->queues;
    s->queues = q;
    return q;
}

/* An answer from the pool side, in order behind anything held for that
 * node. A full link holds it (up to queue_bytes per node); past that, or
 * with no link at all, it is dropped and the asker resends. */
void ldsvc_answer(px_cxlld *s, const char *node, const px_msg_cxl *b)
{
    if (encode(s, b) != PX_OK)
        return;
    nqueue *q = queue_for(s, node, true);
    px_err err = q ? px_outq_send(&q->q, &s->io, node, s->wb.data, s->wb.len, s->tun.queue_bytes)
                   : s->io.to_node(s->io.ud, node, s->wb.data, s->wb.len);
    if (err == PX_E_AGAIN) {
        s->st.held++;
        ldsvc_later(s, AGAIN_MS);
    } else if (err == PX_E_TOOBIG || err == PX_E_NOMEM) {
        if (s->st.dropped++ == 0)
            PX_WARN("cxl", "link to a node stays full; dropping LD data answers (it asks again)",
                    "node=%s held=%zu", node, q ? q->q.bytes : 0);
    } else if (err != PX_OK) {
        s->st.dropped++;
    }
}

/* Returns true while something is still held. */
static bool queues_flush(px_cxlld *s)
{
    bool held = false;
    for (nqueue *q = s->queues; q; q = q->next)
        held |= px_outq_flush(&q->q, &s->io, q->node, &s->st.dropped);
    return held;
}

static void queues_free(px_cxlld *s)
{
    while (s->queues) {
        nqueue *q = s->queues;
        s->queues = q->next;
        px_outq_clear(&q->q);
        free(q);
    }
}

void ldsvc_bad(px_cxlld *s, const char *what, const char *node)
{
    if (s->st.bad_msgs++ % 1000 == 0)
        PX_WARN("cxl", "bad LD data message, dropped", "what=\"%s\" node=%s count=%" PRIu64, what,
                node, s->st.bad_msgs);
}

/* ---- timers ---- */

static void on_later(uv_timer_t *t)
{
    px_cxlld *s = t->data;
    s->later_due = 0;
    bool held = queues_flush(s);
    ldsvc_xfers_pump(s);
    ldsvc_comp_run(s);
    if (held)
        ldsvc_later(s, AGAIN_MS);
}

void ldsvc_later(px_cxlld *s, uint64_t ms)
{
    if (s->shutting)
        return;
    uint64_t due = ldsvc_now_ms(s) + ms;
    if (s->later_due && s->later_due <= due)
        return;
    s->later_due = due;
    uv_timer_start(&s->later, on_later, ms, 0);
}

/* ---- messages ---- */

void px_cxlld_on_msg(px_cxlld *s, const px_peer *from, const px_msg_cxl *m)
{
    if (s->shutting)
        return;
    char node[NAME_CAP];
    px_str_copy(node, sizeof(node), m->node);
    const char *key = node[0] && m->node.len < NAME_CAP && strcmp(node, s->io.self) != 0
                          ? s->io.node_key(s->io.ud, node)
                          : NULL;
    if (!key || !from || strcmp(key, from->key_z85) != 0) {
        ldsvc_bad(s, "a message from a node that is not the one it names", node);
        return;
    }
    switch (m->op) {
    case PX_CXL_OPEN:
    case PX_CXL_READ:
    case PX_CXL_WRITE:
        ldsvc_pool_msg(s, node, m);
        return;
    default:
        break;
    }
    ldsvc_xfer_msg(s, node, m);
}

/* ---- the service ---- */

px_err px_cxlld_new(uv_loop_t *loop, const px_svc_io *io, px_cxlld **out)
{
    if (sodium_init() < 0)
        return PX_E_UNSUPP;
    px_cxlld *s = calloc(1, sizeof(*s));
    if (!s)
        return PX_E_NOMEM;
    s->loop = loop;
    s->io = *io;
    s->tun = (px_cxlld_tuning){.window = DEF_WINDOW,
                               .retry_ms = DEF_RETRY_MS,
                               .timeout_ms = DEF_TIMEOUT_MS,
                               .queue_bytes = DEF_QUEUE_BYTES};
    s->comps_tail = &s->comps;
    /* Ids differ across restarts, so a late answer to a transfer of an
     * earlier run of this node names no transfer of this one. */
    s->next_id = uv_hrtime();
    s->scratch = calloc(1, sizeof(*s->scratch));
    s->buf = malloc(PX_CXLLD_CHUNK);
    if (!s->scratch || !s->buf) {
        free(s->scratch);
        free(s->buf);
        free(s);
        return PX_E_NOMEM;
    }
    uv_timer_init(loop, &s->tick);
    uv_timer_init(loop, &s->later);
    s->tick.data = s->later.data = s;
    *out = s;
    return PX_OK;
}

void px_cxlld_tune(px_cxlld *s, const px_cxlld_tuning *t)
{
    if (t->window)
        s->tun.window = t->window < MAX_WINDOW ? t->window : MAX_WINDOW;
    if (t->retry_ms)
        s->tun.retry_ms = t->retry_ms;
    if (t->timeout_ms)
        s->tun.timeout_ms = t->timeout_ms;
    if (t->queue_bytes)
        s->tun.queue_bytes = t->queue_bytes;
    if (s->tick_on) { /* a new period */
        s->tick_on = false;
        uv_timer_stop(&s->tick);
        ldsvc_tick_start(s);
    }
}

void px_cxlld_stats_get(const px_cxlld *s, px_cxlld_stats *out)
{
    *out = s->st;
}

void px_cxlld_lab_remove(px_cxlld *s, const char *lab)
{
    for (uint32_t i = 0; i < s->n_pools;) {
        if (strcmp(s->pools[i]->lab, lab) == 0) {
            ldsvc_pool_free(s->pools[i]);
            s->pools[i] = s->pools[--s->n_pools];
        } else {
            i++;
        }
    }
    ldsvc_xfers_end(s, lab, "the lab was removed while its LD transfer ran");
}

static void svc_closed(uv_handle_t *h)
{
    px_cxlld *s = h->data;
    if (--s->closing)
        return;
    ldsvc_comp_run(s);
    void (*done)(void *) = s->done;
    void *done_ud = s->done_ud;
    px_wbuf_fini(&s->wb);
    free(s->scratch);
    free(s->buf);
    free(s->pools);
    free(s);
    if (done)
        done(done_ud);
}

void px_cxlld_close(px_cxlld *s, void (*done)(void *ud), void *ud)
{
    if (!s) {
        if (done)
            done(ud);
        return;
    }
    if (s->shutting)
        return;
    ldsvc_xfers_end(s, NULL, "the CXL LD service closed while the transfer ran");
    while (s->n_pools)
        ldsvc_pool_free(s->pools[--s->n_pools]);
    queues_free(s);
    s->shutting = true;
    s->done = done;
    s->done_ud = ud;
    s->closing = 2;
    uv_close((uv_handle_t *)&s->tick, svc_closed);
    uv_close((uv_handle_t *)&s->later, svc_closed);
}
