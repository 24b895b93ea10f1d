/* plexus — a tool on a CAN bus. See client.h. */
#include "fabric/can-bus/client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "fabric/can-bus/proto.h"
#include "fabric/core/log.h"
#include "fabric/core/wire.h"

#define NAME_MAX_LEN PX_WIRE_MAX_NAME

struct px_canclient {
    uv_loop_t *loop;
    px_transport *tp;
    px_chan *ch;
    uv_timer_t timer;     /* keep-alive JOIN; after close: the linger before the channel goes */
    uv_prepare_t prepare; /* sends the frames submitted during this iteration */
    px_canclient_opts o;  /* callbacks and ud; the strings below are the copies */
    char lab[NAME_MAX_LEN + 1], bus[NAME_MAX_LEN + 1];
    uint64_t bus_key;
    uint32_t self_id;
    uint64_t session; /* the high half of every tag this client sends */
    uint32_t keepalive_ms;
    px_msg *in, *out; /* decoding, encoding: a px_msg is large */
    px_wbuf wb;
    uint32_t n_pending;
    px_can_rec pending[PX_WIRE_MAX_CAN_BATCH];
    uint8_t frames[PX_WIRE_MAX_CAN_BATCH][PX_CAN_PACKED_MAX];
    bool want_writable; /* submit said PX_E_AGAIN: tell the caller when there is room */
    uint64_t next_seq;  /* the bus sequence expected next; 0 before the first record */
    px_canclient_stats st;
    bool closing;
    unsigned open_handles; /* timer, prepare, channel */
    void (*done)(void *ud);
    void *done_ud;
};

/* ---- sending ---- */

static px_err send_can(px_canclient *cc, uint32_t op, const px_can_rec *recs, uint32_t n)
{
    px_msg *m = cc->out;
    memset(&m->env, 0, sizeof(m->env));
    m->env.type = PX_MSG_CAN;
    m->body.can.bus = cc->bus_key;
    m->body.can.op = op;
    m->body.can.node = cc->self_id;
    m->body.can.n_recs = n;
    if (n)
        memcpy(m->body.can.recs, recs, n * sizeof(*recs));
    px_wbuf_reset(&cc->wb);
    px_errmsg em = {{0}};
    px_err err = px_wire_encode(&cc->wb, m, &em);
    if (err) {
        PX_ERROR("canclient", "cannot encode a CAN message", "err=%s detail=\"%s\"",
                 px_errname(err), em.text);
        return err;
    }
    return px_chan_send(cc->ch, NULL, cc->wb.data, cc->wb.len);
}

static void send_join(px_canclient *cc)
{
    px_err err = send_can(cc, PX_CAN_JOIN, NULL, 0);
    if (err)
        PX_DEBUG("canclient", "JOIN not sent; the next keep-alive tries again", "err=%s",
                 px_errname(err));
}

static px_err send_pending(px_canclient *cc)
{
    if (!cc->n_pending)
        return PX_OK;
    px_err err = send_can(cc, PX_CAN_SUBMIT, cc->pending, cc->n_pending);
    if (err == PX_OK)
        cc->n_pending = 0;
    return err;
}

static void on_prepare(uv_prepare_t *p)
{
    px_canclient *cc = p->data;
    /* On PX_E_AGAIN the frames wait for on_writable; polling for it here
     * would spin. */
    send_pending(cc);
    uv_prepare_stop(&cc->prepare);
    px_chan_flush(cc->ch); /* this may run after the channel's own flush */
}

static void on_writable(px_chan *ch, const px_peer *peer, void *ud)
{
    (void)ch;
    (void)peer;
    px_canclient *cc = ud;
    if (send_pending(cc) != PX_OK)
        return;
    if (cc->want_writable && !cc->closing) {
        cc->want_writable = false;
        if (cc->o.on_event)
            cc->o.on_event(cc, PX_CANCLIENT_WRITABLE, cc->o.ud);
    }
}

px_err px_canclient_submit(px_canclient *cc, const px_can_frame *f, uint32_t tag)
{
    if (cc->closing)
        return PX_E_CLOSED;
    if (px_can_check(f, false) != PX_CAN_OK)
        return PX_E_INVAL;
    if (cc->n_pending == PX_WIRE_MAX_CAN_BATCH && send_pending(cc) != PX_OK) {
        cc->want_writable = true;
        return PX_E_AGAIN;
    }
    uint32_t i = cc->n_pending;
    size_t len = px_can_frame_pack(f, cc->frames[i], sizeof(cc->frames[i]));
    if (!len)
        return PX_E_INVAL;
    cc->pending[i] = (px_can_rec){.ep = PX_CANCLIENT_EP,
                                  .tag = cc->session | tag,
                                  .frame = {.ptr = cc->frames[i], .len = (uint32_t)len}};
    cc->n_pending++;
    cc->st.submitted++;
    if (!uv_is_active((uv_handle_t *)&cc->prepare))
        uv_prepare_start(&cc->prepare, on_prepare);
    return PX_OK;
}

/* ---- receiving ---- */

/* Sequence bookkeeping for a record with seq != 0; false: drop it. */
static bool seq_accept(px_canclient *cc, uint64_t seq)
{
    if (cc->next_seq == 0 || seq == cc->next_seq) {
        cc->next_seq = seq + 1;
        return true;
    }
    if (seq > cc->next_seq) {
        uint64_t gap = seq - cc->next_seq;
        cc->st.lost += gap;
        cc->next_seq = seq + 1;
        if (cc->o.on_lost)
            cc->o.on_lost(cc, gap, seq, cc->o.ud);
        return !cc->closing;
    }
    if (seq == 1) {
        cc->st.resets++;
        cc->next_seq = 2;
        if (cc->o.on_event)
            cc->o.on_event(cc, PX_CANCLIENT_RESET, cc->o.ud);
        return !cc->closing;
    }
    cc->st.stale++;
    return false;
}

static void on_deliver(px_canclient *cc, const px_msg_can *m)
{
    for (uint32_t i = 0; i < m->n_recs && !cc->closing; i++) {
        const px_can_rec *wr = &m->recs[i];
        bool own = wr->node == cc->self_id && (wr->tag & ~0xffffffffull) == cc->session;
        px_canclient_rec r = {.seq = wr->seq,
                              .ts_ns = wr->ts_ns,
                              .node = wr->node,
                              .ep = wr->ep,
                              .tag = own ? wr->tag & 0xffffffffull : wr->tag,
                              .own = own};
        if (r.seq == 0 && !own)
            continue; /* another session's refusal (same key): not ours */
        if (px_can_frame_unpack(wr->frame.ptr, wr->frame.len, &r.frame) != PX_CAN_OK) {
            cc->st.bad++;
            /* A refusal still says which frame, whatever came with it. */
            if (r.seq != 0)
                continue;
        }
        if (r.seq == 0) {
            cc->st.refused++;
        } else {
            if (!seq_accept(cc, r.seq))
                continue;
            cc->st.delivered++;
            cc->st.own += r.own;
        }
        cc->o.on_rec(cc, &r, cc->o.ud);
    }
}

static void on_recv(px_chan *ch, const px_peer *from, const uint8_t *data, size_t len, void *ud)
{
    (void)ch;
    (void)from;
    px_canclient *cc = ud;
    size_t off = 0;
    while (off < len && !cc->closing) {
        size_t used = 0;
        px_errmsg em = {{0}};
        if (px_wire_decode(data + off, len - off, &used, cc->in, &em) != PX_OK) {
            cc->st.bad++;
            PX_WARN("canclient", "bad message from the bus home dropped", "bus=%s detail=\"%s\"",
                    cc->bus, em.text);
            return; /* the rest of the batch cannot be delimited */
        }
        off += used;
        const px_msg_can *m = &cc->in->body.can;
        if (cc->in->env.type != PX_MSG_CAN || m->bus != cc->bus_key || m->op != PX_CAN_DELIVER) {
            cc->st.bad++;
            continue;
        }
        on_deliver(cc, m);
    }
}

static void on_chan_event(px_chan *ch, px_chan_event ev, void *ud)
{
    (void)ch;
    px_canclient *cc = ud;
    px_canclient_event out;
    switch (ev) {
    case PX_CHAN_EV_CONNECTED:
        send_join(cc); /* a new connection may be a restarted home: join it now */
        out = PX_CANCLIENT_CONNECTED;
        break;
    case PX_CHAN_EV_DISCONNECTED:
        out = PX_CANCLIENT_DISCONNECTED;
        break;
    case PX_CHAN_EV_AUTH_FAILED:
        out = PX_CANCLIENT_AUTH_FAILED;
        break;
    default:
        return;
    }
    if (cc->o.on_event && !cc->closing)
        cc->o.on_event(cc, out, cc->o.ud);
}

static void on_keepalive(uv_timer_t *t)
{
    send_join(t->data);
}

/* ---- life cycle ---- */

static void client_free(px_canclient *cc)
{
    px_wbuf_fini(&cc->wb);
    free(cc->in);
    free(cc->out);
    free(cc);
}

static void one_closed(px_canclient *cc)
{
    if (--cc->open_handles)
        return;
    void (*done)(void *) = cc->done;
    void *done_ud = cc->done_ud;
    client_free(cc);
    if (done)
        done(done_ud);
}

static void handle_closed(uv_handle_t *h)
{
    one_closed(h->data);
}

static void chan_closed(px_chan *ch, void *ud)
{
    (void)ch;
    one_closed(ud);
}

px_err px_canclient_open(const px_canclient_opts *o, px_canclient **out, px_errmsg *em)
{
    *out = NULL;
    if (!o->loop || !o->tp || !o->on_rec)
        return px_errmsg_set(em, PX_E_INVAL, "CAN client: loop, transport and on_rec are required");
    if (!o->self_key || !px_key_valid(o->self_key) || !o->server_key ||
        !px_key_valid(o->server_key))
        return px_errmsg_set(em, PX_E_INVAL,
                             "CAN client: the tool's and the bus home's keys must be Z85 keys");
    if (!o->endpoint || !*o->endpoint)
        return px_errmsg_set(em, PX_E_INVAL, "CAN client: no endpoint for the bus home");
    if (!o->lab || !*o->lab || strlen(o->lab) > NAME_MAX_LEN || !o->bus || !*o->bus ||
        strlen(o->bus) > NAME_MAX_LEN)
        return px_errmsg_set(em, PX_E_INVAL, "CAN client: lab and bus need names of 1..%u bytes",
                             NAME_MAX_LEN);
    px_canclient *cc = calloc(1, sizeof(*cc));
    if (!cc)
        return px_errmsg_set(em, PX_E_NOMEM, "CAN client: out of memory");
    cc->in = malloc(sizeof(*cc->in));
    cc->out = malloc(sizeof(*cc->out));
    if (!cc->in || !cc->out) {
        client_free(cc);
        return px_errmsg_set(em, PX_E_NOMEM, "CAN client: out of memory");
    }
    cc->loop = o->loop;
    cc->tp = o->tp;
    cc->o = *o;
    snprintf(cc->lab, sizeof(cc->lab), "%s", o->lab);
    snprintf(cc->bus, sizeof(cc->bus), "%s", o->bus);
    cc->o.lab = cc->lab;
    cc->o.bus = cc->bus;
    cc->o.self_key = cc->o.endpoint = cc->o.server_key = NULL; /* not kept */
    cc->bus_key = px_can_bus_key(cc->lab, cc->bus);
    char member[8 + PX_KEY_Z85_LEN + 1];
    snprintf(member, sizeof(member), "tool:%s", o->self_key);
    cc->self_id = px_can_member_id(member);
    cc->keepalive_ms = o->keepalive_ms ? o->keepalive_ms : PX_CANCLIENT_KEEPALIVE_MS;
    uint32_t rnd;
    if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
        rnd = (uint32_t)(uv_hrtime() ^ ((uint64_t)getpid() << 16));
    cc->session = (uint64_t)rnd << 32;

    px_chan_opts co = {.role = PX_CHAN_CLIENT,
                       .endpoint = o->endpoint,
                       .server_key = o->server_key,
                       .policy = PX_QUEUE_BACKPRESSURE,
                       .batch_bytes = PX_DATA_PLANE_BATCH_BYTES,
                       .on_recv = on_recv,
                       .on_event = on_chan_event,
                       .on_writable = on_writable,
                       .ud = cc};
    px_err err = px_chan_open(cc->tp, &co, &cc->ch, em);
    if (err) {
        client_free(cc);
        return err;
    }
    uv_timer_init(cc->loop, &cc->timer);
    cc->timer.data = cc;
    uv_prepare_init(cc->loop, &cc->prepare);
    cc->prepare.data = cc;
    cc->open_handles = 3;
    uv_timer_start(&cc->timer, on_keepalive, cc->keepalive_ms, cc->keepalive_ms);
    send_join(cc); /* held by the channel until the handshake is done */
    *out = cc;
    return PX_OK;
}

uint32_t px_canclient_member_id(const px_canclient *cc)
{
    return cc->self_id;
}

void px_canclient_stats_get(const px_canclient *cc, px_canclient_stats *out)
{
    *out = cc->st;
}

static void on_linger(uv_timer_t *t)
{
    px_canclient *cc = t->data;
    px_chan_close(cc->ch, chan_closed, cc);
    uv_close((uv_handle_t *)&cc->timer, handle_closed);
    uv_close((uv_handle_t *)&cc->prepare, handle_closed);
}

void px_canclient_close(px_canclient *cc, void (*done)(void *ud), void *ud)
{
    if (!cc || cc->closing)
        return;
    cc->closing = true;
    cc->done = done;
    cc->done_ud = ud;
    /* ZeroMQ drops what it has not sent when the socket closes (no linger):
     * the LEAVE gets a moment to go. The home forgets silent tools anyway. */
    send_pending(cc);
    send_can(cc, PX_CAN_LEAVE, NULL, 0);
    px_chan_flush(cc->ch);
    uv_prepare_stop(&cc->prepare);
    uv_timer_stop(&cc->timer);
    uv_timer_start(&cc->timer, on_linger, PX_CANCLIENT_LINGER_MS, 0);
}
