/* plexus — per-peer queues of the transport (layout in transport_int.h).
 *
 * Each peer has a FIFO of batches; the last one is open and collects records
 * until it would pass batch_bytes. A batch goes to ZeroMQ without a copy
 * (zmq_msg_init_data), and ZeroMQ frees it when it is on the wire. Peers with
 * something queued are on the channel's dirty list, so a flush never walks
 * idle peers. A SERVER keeps peers in an open-addressing table keyed by
 * routing id (seeded hash: the ids are chosen by the peers) and forgets a
 * peer as soon as it has nothing queued or owed, so the table holds only the
 * peers being talked to right now.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "transport_int.h"

#define BATCH_MIN_CAP 2048 /* first allocation of a batch buffer */

/* ---- peer table ---- */

static uint32_t id_hash(uint32_t seed, const uint8_t *id, size_t n)
{
    uint32_t h = 2166136261u ^ seed;
    for (size_t i = 0; i < n; i++)
        h = (h ^ id[i]) * 16777619u;
    return h ^ (h >> 15);
}

static size_t peer_slot(const px_chan *ch, const uint8_t *id, size_t n, uint32_t h, bool *found)
{
    size_t mask = ch->tab_cap - 1, i = h & mask;
    while (ch->tab[i]) {
        tp_peer *p = ch->tab[i];
        if (p->hash == h && p->id_len == n && memcmp(p->id, id, n) == 0) {
            *found = true;
            return i;
        }
        i = (i + 1) & mask;
    }
    *found = false;
    return i;
}

static bool tab_grow(px_chan *ch)
{
    size_t cap = ch->tab_cap ? ch->tab_cap * 2 : 16;
    tp_peer **tab = calloc(cap, sizeof(*tab));
    if (!tab)
        return false;
    for (size_t i = 0; i < ch->tab_cap; i++) {
        tp_peer *p = ch->tab[i];
        if (!p)
            continue;
        size_t j = p->hash & (cap - 1);
        while (tab[j])
            j = (j + 1) & (cap - 1);
        tab[j] = p;
    }
    free(ch->tab);
    ch->tab = tab;
    ch->tab_cap = cap;
    return true;
}

/* The peer for `id`, created empty if absent; NULL only when out of memory. */
tp_peer *tp_peer_get(px_chan *ch, const uint8_t *id, size_t n)
{
    uint32_t h = id_hash(ch->seed, id, n);
    bool found = false;
    size_t i = 0;
    if (ch->tab_cap) {
        i = peer_slot(ch, id, n, h, &found);
        if (found)
            return ch->tab[i];
    }
    if ((ch->tab_n + 1) * 2 > ch->tab_cap) {
        if (!tab_grow(ch))
            return NULL;
        i = peer_slot(ch, id, n, h, &found);
    }
    tp_peer *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->hash = h;
    p->id_len = (uint8_t)n;
    memcpy(p->id, id, n);
    ch->tab[i] = p;
    ch->tab_n++;
    return p;
}

/* Remove with backward shift, so lookups never need tombstones. */
static void peer_remove(px_chan *ch, tp_peer *p)
{
    bool found = false;
    size_t mask = ch->tab_cap - 1;
    size_t i = peer_slot(ch, p->id, p->id_len, p->hash, &found);
    if (!found)
        return;
    ch->tab[i] = NULL;
    ch->tab_n--;
    for (size_t j = (i + 1) & mask; ch->tab[j]; j = (j + 1) & mask) {
        size_t home = ch->tab[j]->hash & mask;
        /* Move tab[j] into the hole unless its home lies cyclically in (i, j]. */
        bool stays = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            ch->tab[i] = ch->tab[j];
            ch->tab[j] = NULL;
            i = j;
        }
    }
}

/* ---- queues ---- */

static void batch_free(tp_batch *b)
{
    if (b->has_msg)
        zmq_msg_close(&b->msg); /* frees buf through buf_free */
    else
        free(b->buf);
    free(b);
}

static void dirty_add(px_chan *ch, tp_peer *p)
{
    if (p->dirty)
        return;
    p->dirty = true;
    p->dnext = NULL;
    p->dprev = ch->dirty_tail;
    if (ch->dirty_tail)
        ch->dirty_tail->dnext = p;
    else
        ch->dirty_head = p;
    ch->dirty_tail = p;
}

static void dirty_del(px_chan *ch, tp_peer *p)
{
    if (!p->dirty)
        return;
    if (p->dprev)
        p->dprev->dnext = p->dnext;
    else
        ch->dirty_head = p->dnext;
    if (p->dnext)
        p->dnext->dprev = p->dprev;
    else
        ch->dirty_tail = p->dprev;
    p->dirty = false;
    p->dprev = p->dnext = NULL;
}

/* Drop every queued record of p (peer gone, or the channel is closing). */
void tp_peer_drop_all(px_chan *ch, tp_peer *p)
{
    while (p->head) {
        tp_batch *b = p->head;
        p->head = b->next;
        ch->st.dropped += b->n_rec;
        ch->st.queued_bytes -= b->len;
        p->queued -= b->len;
        batch_free(b);
    }
    p->tail = NULL;
    dirty_del(ch, p);
}

/* A SERVER peer with nothing queued and nothing owed is forgotten, so the
 * table holds only peers we are talking to right now. */
void tp_peer_maybe_free(px_chan *ch, tp_peer *p)
{
    if (ch->role != PX_CHAN_SERVER || p->head || p->want_writable || p->on_wlist || p->pinned)
        return;
    dirty_del(ch, p);
    peer_remove(ch, p);
    free(p);
}

static void buf_free(void *data, void *hint)
{
    (void)hint;
    free(data); /* may run on ZeroMQ's I/O thread: free() is thread-safe */
}

enum send_result { SENT, BLOCKED, GONE, FAILED };

/* Offer one batch to ZeroMQ. The buffer is handed over without a copy; if
 * ZeroMQ says EAGAIN the wrapping zmq_msg_t is kept for the next try. */
static enum send_result batch_send(px_chan *ch, tp_peer *p, tp_batch *b)
{
    b->sealed = true;
    if (!b->has_msg) {
        if (zmq_msg_init_data(&b->msg, b->buf, b->len, buf_free, NULL) != 0)
            return FAILED;
        b->has_msg = true;
    }
    if (ch->role == PX_CHAN_SERVER &&
        zmq_send(ch->sock, p->id, p->id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        int e = zmq_errno();
        return e == EAGAIN ? BLOCKED : e == EHOSTUNREACH ? GONE : FAILED;
    }
    if (zmq_msg_send(&b->msg, ch->sock, ZMQ_DONTWAIT) < 0)
        /* On a ROUTER the routing frame committed the message, so only a
         * DEALER can see EAGAIN here. */
        return zmq_errno() == EAGAIN && ch->role == PX_CHAN_CLIENT ? BLOCKED : FAILED;
    b->has_msg = false; /* ZeroMQ owns buf now */
    b->buf = NULL;
    return SENT;
}

/* Send p's batches in order until ZeroMQ pushes back. sealed_only leaves the
 * open batch to collect more records. Never calls a callback, never frees p.
 * Returns the number of batches sent. */
unsigned tp_peer_flush(px_chan *ch, tp_peer *p, bool sealed_only)
{
    unsigned sent = 0;
    while (p->head && !(sealed_only && !p->head->sealed)) {
        tp_batch *b = p->head;
        enum send_result r = batch_send(ch, p, b);
        if (r == BLOCKED)
            break;
        if (r == GONE) {
            uint64_t before = ch->st.dropped;
            tp_peer_drop_all(ch, p);
            if (tp_log_this_one(++ch->gone)) {
                char ids[2 * PX_PEER_ID_MAX + 3];
                PX_INFO(MOD, "dropped records for a peer that is not connected",
                        "endpoint=%s peer=%s records=%llu times=%llu", ch->endpoint,
                        tp_id_str(p->id, p->id_len, ids, sizeof(ids)),
                        (unsigned long long)(ch->st.dropped - before),
                        (unsigned long long)ch->gone);
            }
            break;
        }
        p->head = b->next;
        if (!p->head)
            p->tail = NULL;
        p->queued -= b->len;
        ch->st.queued_bytes -= b->len;
        if (r == SENT) {
            p->cap_hint = b->len;
            ch->st.records_sent += b->n_rec;
            ch->st.batches_sent++;
            ch->st.bytes_sent += b->len;
            sent++;
        } else {
            ch->st.dropped += b->n_rec;
            PX_ERROR(MOD, "ZeroMQ refused a batch; dropped it",
                     "endpoint=%s records=%u error=\"%s\"", ch->endpoint, b->n_rec,
                     zmq_strerror(zmq_errno()));
        }
        batch_free(b);
    }
    if (!p->head)
        dirty_del(ch, p);
    /* Hysteresis: room for half a queue, and for the record that was
     * refused, so the callback is not a cue to fail again. */
    if (p->want_writable && !p->on_wlist && p->queued <= ch->queue_bytes / 2 &&
        p->queued + p->want_len <= ch->queue_bytes) {
        p->on_wlist = true;
        p->wnext = ch->wlist;
        ch->wlist = p;
    }
    return sent;
}

/* One pass over every peer with queued data, oldest first. */
unsigned tp_flush_all(px_chan *ch)
{
    unsigned sent = 0;
    tp_peer *next;
    for (tp_peer *p = ch->dirty_head; p; p = next) {
        next = p->dnext;
        sent += tp_peer_flush(ch, p, false);
        if (!p->head)
            tp_peer_maybe_free(ch, p);
    }
    return sent;
}

bool tp_fire_writable(px_chan *ch)
{
    bool fired = false;
    while (ch->wlist && !ch->closing) {
        tp_peer *p = ch->wlist;
        ch->wlist = p->wnext;
        p->on_wlist = false;
        p->want_writable = false;
        p->want_len = 0;
        if (ch->on_writable) {
            px_peer view = {.id_len = p->id_len};
            memcpy(view.id, p->id, p->id_len);
            p->pinned = true;
            ch->on_writable(ch, ch->role == PX_CHAN_SERVER ? &view : NULL, ch->ud);
            p->pinned = false;
            fired = true;
        }
        if (!ch->closing)
            tp_peer_maybe_free(ch, p);
    }
    return fired;
}

/* ---- appending ---- */

/* A busy peer fills whole batches, an idle one sends single records: start
 * from what the last batch needed so neither pays for repeated regrowth. */
static tp_batch *batch_new(px_chan *ch, const tp_peer *p, size_t first)
{
    tp_batch *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->cap = first > BATCH_MIN_CAP ? first : BATCH_MIN_CAP;
    if (p->cap_hint > b->cap)
        b->cap = p->cap_hint;
    if (b->cap > ch->batch_bytes)
        b->cap = ch->batch_bytes;
    b->buf = malloc(b->cap);
    if (!b->buf) {
        free(b);
        return NULL;
    }
    return b;
}

px_err tp_peer_append(px_chan *ch, tp_peer *p, const void *rec, size_t len, bool *sealed)
{
    *sealed = false;
    tp_batch *b = p->tail;
    if (!b || b->sealed || b->len + len > ch->batch_bytes) {
        if (b && !b->sealed) {
            b->sealed = true;
            *sealed = true;
        }
        b = batch_new(ch, p, len);
        if (!b)
            return PX_E_NOMEM;
        if (p->tail)
            p->tail->next = b;
        else
            p->head = b;
        p->tail = b;
    } else if (b->len + len > b->cap) {
        size_t cap = b->cap * 2;
        while (cap < b->len + len)
            cap *= 2;
        if (cap > ch->batch_bytes)
            cap = ch->batch_bytes;
        uint8_t *nb = realloc(b->buf, cap);
        if (!nb)
            return PX_E_NOMEM;
        b->buf = nb;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, rec, len);
    b->len += len;
    b->n_rec++;
    p->queued += len;
    ch->st.queued_bytes += len;
    dirty_add(ch, p);
    return PX_OK;
}
