/* CAN bus state machines. See bus.h. */
#include "bus.h"

#include <string.h>

#include "timing.h"

px_err px_canbus_home_init(px_canbus_home *h, px_canbus_mode mode, uint32_t bitrate,
                           uint32_t data_bitrate, px_canbus_emit_cb emit, void *ud)
{
    memset(h, 0, sizeof(*h));
    if (!emit || (mode == PX_CANBUS_TIMED && bitrate == 0))
        return PX_E_INVAL;
    h->mode = mode;
    h->bitrate = bitrate;
    h->data_bitrate = data_bitrate;
    h->next_seq = 1;
    h->emit = emit;
    h->ud = ud;
    return PX_OK;
}

static void emit(px_canbus_home *h, px_canbus_msg *m, uint64_t ts)
{
    m->seq = h->next_seq++;
    m->ts_ns = ts;
    h->stats.frames++;
    h->stats.bytes += m->frame.len;
    if (m->frame.can_id & PX_CAN_ERR_FLAG)
        h->stats.errors++;
    h->emit(h->ud, m);
}

px_err px_canbus_home_submit(px_canbus_home *h, uint32_t src_node, uint32_t src_ep,
                             uint64_t src_tag, const px_can_frame *f, uint64_t now_ns)
{
    if (px_can_check(f, true) != PX_CAN_OK) {
        h->stats.invalid++;
        return PX_E_PROTO;
    }
    px_canbus_msg m = {.src_node = src_node, .src_ep = src_ep, .src_tag = src_tag, .frame = *f};
    if (h->mode == PX_CANBUS_IDEAL) {
        emit(h, &m, now_ns);
        return PX_OK;
    }
    if (h->n_pending == PX_CANBUS_MAX_PENDING) {
        h->stats.pushed_back++;
        return PX_E_AGAIN;
    }
    h->pending[h->n_pending++] =
        (px_canbus_pending){.m = m, .arrival_ns = now_ns, .order = h->submitted++};
    return PX_OK;
}

/* The winner among frames that were waiting when the bus became free at
 * `start`: arbitration bits first, then who came first. */
static uint32_t arbitrate(const px_canbus_home *h, uint64_t start)
{
    uint32_t best = UINT32_MAX;
    for (uint32_t i = 0; i < h->n_pending; i++) {
        const px_canbus_pending *p = &h->pending[i];
        if (p->arrival_ns > start)
            continue;
        if (best == UINT32_MAX) {
            best = i;
            continue;
        }
        int c = px_can_arb_cmp(&p->m.frame, &h->pending[best].m.frame);
        if (c < 0 || (c == 0 && p->order < h->pending[best].order))
            best = i;
    }
    return best;
}

uint64_t px_canbus_home_advance(px_canbus_home *h, uint64_t now_ns)
{
    if (h->mode != PX_CANBUS_TIMED)
        return UINT64_MAX;
    for (;;) {
        if (h->on_bus) {
            if (now_ns < h->wire_end_ns)
                return h->wire_end_ns;
            h->on_bus = false;
            h->bus_free_ns = h->wire_end_ns;
            emit(h, &h->wire.m, h->wire_end_ns);
            continue;
        }
        if (h->n_pending == 0)
            return UINT64_MAX;
        /* The next transmission starts when the bus is free and a frame is
         * there to send, whichever is later. */
        uint64_t first = UINT64_MAX;
        for (uint32_t i = 0; i < h->n_pending; i++)
            if (h->pending[i].arrival_ns < first)
                first = h->pending[i].arrival_ns;
        uint64_t start = first > h->bus_free_ns ? first : h->bus_free_ns;
        if (start > now_ns)
            return start;
        uint32_t w = arbitrate(h, start);
        uint64_t dur = 0;
        if (px_can_duration_ns(&h->pending[w].m.frame, h->bitrate, h->data_bitrate, &dur, NULL) !=
            PX_OK)
            dur = 0; /* validated at submit: cannot happen; never stall the bus */
        h->wire = h->pending[w];
        h->pending[w] = h->pending[--h->n_pending];
        h->on_bus = true;
        h->wire_end_ns = start + dur;
        h->stats.busy_ns += dur;
    }
}

void px_canbus_member_init(px_canbus_member *m, uint32_t node, px_canbus_rx_cb rx,
                           px_canbus_txdone_cb txdone, void *ud)
{
    memset(m, 0, sizeof(*m));
    m->node = node;
    m->expect_seq = 1;
    m->rx = rx;
    m->txdone = txdone;
    m->ud = ud;
}

px_err px_canbus_member_attach(px_canbus_member *m, uint32_t ep)
{
    for (uint32_t i = 0; i < m->n_eps; i++)
        if (m->eps[i] == ep)
            return PX_E_EXISTS;
    if (m->n_eps == PX_CANBUS_MAX_EPS)
        return PX_E_TOOBIG;
    m->eps[m->n_eps++] = ep;
    return PX_OK;
}

void px_canbus_member_detach(px_canbus_member *m, uint32_t ep)
{
    for (uint32_t i = 0; i < m->n_eps; i++)
        if (m->eps[i] == ep) {
            m->eps[i] = m->eps[--m->n_eps];
            return;
        }
}

void px_canbus_member_deliver(px_canbus_member *m, const px_canbus_msg *msg)
{
    if (msg->seq < m->expect_seq) {
        m->stats.stale++;
        return;
    }
    if (msg->seq > m->expect_seq)
        m->stats.lost += msg->seq - m->expect_seq;
    m->expect_seq = msg->seq + 1;
    m->stats.delivered++;
    for (uint32_t i = 0; i < m->n_eps; i++) {
        uint32_t ep = m->eps[i];
        if (msg->src_node == m->node && msg->src_ep == ep) {
            if (m->txdone)
                m->txdone(m->ud, ep, msg);
        } else if (m->rx) {
            m->rx(m->ud, ep, msg);
        }
    }
}
