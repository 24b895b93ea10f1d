/* plexus — channels: ZeroMQ sockets on a libuv loop (contract in transport.h;
 * the module's layout is in transport_int.h; docs/transport.md explains it).
 *
 * Event handling. A ZeroMQ socket exposes one file descriptor (ZMQ_FD) that
 * turns readable when the socket's command mailbox has something, not when a
 * message is waiting, and any zmq call on the socket may drain it. So:
 *   - every time the fd fires we "pump": hand queued batches to ZeroMQ, ask
 *     ZMQ_EVENTS, receive until the socket says empty, and go round while
 *     that made progress;
 *   - the last zmq call of a pump is always a ZMQ_EVENTS that reported no
 *     input, so the next command is guaranteed to signal the fd again;
 *   - zmq_send processes commands only now and then, so the ZMQ_EVENTS after
 *     a refused send may be what attaches or reopens a pipe: when it reports
 *     POLLOUT with records queued, the pump tries once more;
 *   - a ROUTER's POLLOUT means "some peer has room", never which: while a
 *     peer stays blocked a 1 ms timer looks again, since nothing else would;
 *   - a pump handles at most TP_PUMP_BUDGET messages; if more remain it arms
 *     a uv_idle handle, which keeps the loop from sleeping and continues the
 *     pump next iteration, so the edge is never lost and other handles run;
 *   - a send outside a pump (px_chan_send sealing a full batch, px_chan_flush)
 *     may have consumed an edge, so it arms the idle handle too.
 * Batching: px_chan_send appends to the peer's open batch and arms a
 * uv_prepare handle, which pumps right before the loop polls: everything
 * queued during one loop iteration leaves as few messages as possible, and
 * nothing waits for more.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"
#include "transport_int.h"

#define DEFAULT_QUEUE_BYTES  (8u << 20)
#define DEFAULT_BATCH_BYTES  (64u << 10)
#define DEFAULT_HWM          1000
#define CURVE_FRAMING        256  /* MESSAGE command + nonce + MAC, rounded up */
#define HEARTBEAT_IVL_MS     1000 /* ping an idle connection this often */
#define HEARTBEAT_TIMEOUT_MS 3000 /* no traffic after a ping: connection dead */
#define HEARTBEAT_TTL_MS     3000 /* tell the peer to give up on us after this */
#define HANDSHAKE_IVL_MS     5000
#define BLOCKED_RETRY_MS     1   /* see the end of chan_pump */
#define REDIAL_MIN_MS        500 /* first redial after a refused handshake */
#define REDIAL_MAX_MS        30000
#define RECONNECT_IVL_MS     100
#define RECONNECT_IVL_MAX_MS 5000
#define ZAP_DOMAIN           "plexus"
#define MON_EVENTS                                                                                 \
    (ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |    \
     ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)

static void arm_idle(px_chan *ch);
static void arm_retry(px_chan *ch);

/* ---- receiving ---- */

static void count_bad(px_chan *ch, const char *why)
{
    ch->st.bad_recv++;
    if (tp_log_this_one(ch->st.bad_recv))
        PX_WARN(MOD, "dropped a malformed message", "endpoint=%s reason=\"%s\" bad_recv=%llu",
                ch->endpoint, why, (unsigned long long)ch->st.bad_recv);
}

static void drain_parts(void *sock)
{
    int more = 1;
    size_t sz = sizeof(more);
    while (more && zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz) == 0 && more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, sock, ZMQ_DONTWAIT) < 0)
            more = 0;
        zmq_msg_close(&m);
    }
}

/* Receive and deliver one message. Returns false when the socket is empty. */
static bool recv_one(px_chan *ch)
{
    zmq_msg_t head, body;
    zmq_msg_init(&head);
    if (zmq_msg_recv(&head, ch->sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&head);
        if (zmq_errno() != EAGAIN)
            PX_ERROR(MOD, "receive failed", "endpoint=%s error=\"%s\"", ch->endpoint,
                     zmq_strerror(zmq_errno()));
        return false;
    }
    px_peer from;
    from.id_len = 0;
    zmq_msg_t *data = &head;
    if (ch->role == PX_CHAN_SERVER) {
        /* ROUTER: [routing id][one batch]. */
        size_t idn = zmq_msg_size(&head);
        if (!zmq_msg_more(&head) || idn == 0 || idn > PX_PEER_ID_MAX) {
            count_bad(ch, "bad routing frame");
            drain_parts(ch->sock);
            zmq_msg_close(&head);
            return true;
        }
        from.id_len = (uint8_t)idn;
        memcpy(from.id, zmq_msg_data(&head), idn);
        zmq_msg_close(&head);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&body, ch->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&body);
            count_bad(ch, "routing frame without a body");
            return true;
        }
        data = &body;
    }
    if (zmq_msg_more(data)) {
        count_bad(ch, "more than one frame");
        drain_parts(ch->sock);
        zmq_msg_close(data);
        return true;
    }
    size_t len = zmq_msg_size(data);
    if (len == 0) {
        count_bad(ch, "empty message");
        zmq_msg_close(data);
        return true;
    }
    if (ch->role == PX_CHAN_SERVER) {
        /* Set by our ZAP handler; a message without it never passed ZAP. */
        const char *uid = zmq_msg_gets(data, "User-Id");
        if (!uid || strlen(uid) != PX_KEY_Z85_LEN) {
            count_bad(ch, "no authenticated key");
            zmq_msg_close(data);
            return true;
        }
        memcpy(from.key_z85, uid, PX_KEY_Z85_LEN + 1);
    } else {
        memcpy(from.key_z85, ch->server_key, PX_KEY_Z85_LEN + 1);
    }
    ch->st.batches_recv++;
    ch->st.bytes_recv += len;
    ch->on_recv(ch, &from, zmq_msg_data(data), len, ch->ud);
    zmq_msg_close(data);
    return true;
}

/* ---- the pump ---- */

/* See the top of this file. Safe to call at any time from the loop. */
static void chan_pump(px_chan *ch)
{
    unsigned budget = TP_PUMP_BUDGET;
    bool retried = false;
    /* Sending has its own bound: a peer that drains as fast as callbacks
     * refill must not keep the rest of the loop waiting. */
    for (unsigned rounds = TP_PUMP_BUDGET;; rounds--) {
        if (ch->closing)
            return;
        if (rounds == 0) {
            arm_idle(ch);
            return;
        }
        unsigned sent = ch->dirty_head ? tp_flush_all(ch) : 0;
        bool fired = ch->wlist && tp_fire_writable(ch);
        if (ch->closing)
            return;
        int ev = 0;
        size_t sz = sizeof(ev);
        if (zmq_getsockopt(ch->sock, ZMQ_EVENTS, &ev, &sz) != 0) {
            PX_ERROR(MOD, "socket failed", "endpoint=%s error=\"%s\"", ch->endpoint,
                     zmq_strerror(zmq_errno()));
            return;
        }
        if (ev & ZMQ_POLLIN) {
            if (budget == 0) {
                arm_idle(ch);
                return;
            }
            while (budget > 0 && !ch->closing && recv_one(ch))
                budget--;
            continue; /* sends from callbacks, and a fresh ZMQ_EVENTS */
        }
        /* Progress with more queued: go round. Nothing queued: the
         * ZMQ_EVENTS just above saw no input, and it was the last call. */
        if ((sent > 0 && ch->dirty_head) || fired) {
            retried = false;
            continue;
        }
        /* zmq_send processes commands only now and then, so ZMQ_EVENTS may
         * just have attached a pipe or reopened a full one: the edge that
         * announced it is gone, so try once more now. */
        if (ch->dirty_head && (ev & ZMQ_POLLOUT) && !retried) {
            retried = true;
            continue;
        }
        break;
    }
    /* A ROUTER's POLLOUT means "some peer has room", never which one, so a
     * peer whose pipe reopened inside that last ZMQ_EVENTS has no edge left
     * to announce it. While any peer is blocked, look again shortly. */
    if (ch->dirty_head && (ch->role == PX_CHAN_SERVER || retried))
        arm_retry(ch);
}

/* ---- events ---- */

static void emit(px_chan *ch, px_chan_event ev)
{
    if (ch->on_event && !ch->closing)
        ch->on_event(ch, ev, ch->ud);
}

static void chan_redial_cb(uv_timer_t *h)
{
    px_chan *ch = h->data;
    /* libzmq retries some failures by itself (a connection reset during the
     * handshake); if that worked there is nothing to redial. */
    if (ch->connected || ch->closing)
        return;
    /* Drop whatever is left of the old attempt first: two live connections
     * from one DEALER would split, and reorder, the stream. */
    zmq_disconnect(ch->sock, ch->endpoint);
    if (zmq_connect(ch->sock, ch->endpoint) != 0)
        PX_ERROR(MOD, "cannot connect again", "endpoint=%s error=\"%s\"", ch->endpoint,
                 zmq_strerror(zmq_errno()));
    arm_idle(ch); /* those calls may have eaten an edge */
}

static void mon_handle(px_chan *ch, uint16_t event, uint32_t value)
{
    switch (event) {
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        ch->connected = true;
        ch->redial_ms = REDIAL_MIN_MS;
        uv_timer_stop(&ch->redial);
        emit(ch, PX_CHAN_EV_CONNECTED);
        break;
    case ZMQ_EVENT_DISCONNECTED:
        /* A client reports only the end of a connection it announced. */
        if (ch->role == PX_CHAN_CLIENT && !ch->connected)
            break;
        ch->connected = false;
        emit(ch, PX_CHAN_EV_DISCONNECTED);
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        ch->st.auth_failures++;
        if (tp_log_this_one(ch->st.auth_failures))
            PX_WARN(MOD, "handshake refused", "endpoint=%s kind=%s detail=%u auth_failures=%llu",
                    ch->endpoint,
                    event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH       ? "auth"
                    : event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ? "protocol"
                                                                   : "closed",
                    value, (unsigned long long)ch->st.auth_failures);
        /* libzmq gives up on a connection whose handshake failed; we do not,
         * so a key authorised later lets a running client in. */
        if (ch->role == PX_CHAN_CLIENT && !uv_is_active((uv_handle_t *)&ch->redial)) {
            uv_timer_start(&ch->redial, chan_redial_cb, ch->redial_ms, 0);
            ch->redial_ms = ch->redial_ms * 2 > REDIAL_MAX_MS ? REDIAL_MAX_MS : ch->redial_ms * 2;
        }
        emit(ch, PX_CHAN_EV_AUTH_FAILED);
        break;
    default:
        break;
    }
}

/* Monitor messages are [6 bytes: u16 event, u32 value][endpoint]. They come
 * from libzmq, but are parsed with the same care as a peer's. */
static void mon_pump(px_chan *ch)
{
    for (int budget = TP_PUMP_BUDGET; !ch->closing; budget--) {
        int ev = 0;
        size_t sz = sizeof(ev);
        if (zmq_getsockopt(ch->mon, ZMQ_EVENTS, &ev, &sz) != 0 || !(ev & ZMQ_POLLIN))
            return;
        if (budget == 0) {
            arm_idle(ch);
            return;
        }
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, ch->mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            return;
        }
        bool ok = zmq_msg_size(&m) == 6 && zmq_msg_more(&m);
        uint16_t event = 0;
        uint32_t value = 0;
        if (ok) {
            memcpy(&event, zmq_msg_data(&m), 2);
            memcpy(&value, (uint8_t *)zmq_msg_data(&m) + 2, 4);
        }
        if (zmq_msg_more(&m))
            drain_parts(ch->mon);
        zmq_msg_close(&m);
        if (ok)
            mon_handle(ch, event, value);
    }
}

/* ---- loop handles ---- */

static void chan_poll_cb(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    chan_pump(h->data);
}

static void chan_mon_cb(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    mon_pump(h->data);
}

static void chan_prepare_cb(uv_prepare_t *h)
{
    px_chan *ch = h->data;
    px_transport *t = ch->t;
    uv_prepare_stop(h);
    /* A pump since the send may already have flushed it all; every pump
     * ends on ZMQ_EVENTS, so there is no edge to look after either. */
    if (!ch->dirty_head && !ch->wlist)
        return;
    bool outer = !t->in_prepare;
    t->in_prepare = true;
    chan_pump(ch);
    if (outer)
        t->in_prepare = false;
}

static void chan_idle_cb(uv_idle_t *h)
{
    px_chan *ch = h->data;
    /* Stop first: a pump that runs out of budget starts it again. */
    uv_idle_stop(h);
    chan_pump(ch);
    mon_pump(ch);
}

static void arm_idle(px_chan *ch)
{
    if (!uv_is_active((uv_handle_t *)&ch->idle))
        uv_idle_start(&ch->idle, chan_idle_cb);
}

static void chan_retry_cb(uv_timer_t *h)
{
    chan_pump(h->data);
}

static void arm_retry(px_chan *ch)
{
    if (!uv_is_active((uv_handle_t *)&ch->retry))
        uv_timer_start(&ch->retry, chan_retry_cb, BLOCKED_RETRY_MS, 0);
}

/* ---- closing ---- */

static void chan_handle_closed(uv_handle_t *h)
{
    px_chan *ch = h->data;
    if (--ch->open_handles > 0)
        return;
    /* Sockets first, so the close callback may free the transport (which
     * needs every socket of its context closed). */
    tp_peer_drop_all(ch, &ch->server);
    for (size_t i = 0; i < ch->tab_cap; i++)
        if (ch->tab[i])
            tp_peer_drop_all(ch, ch->tab[i]);
    if (ch->mon) {
        zmq_socket_monitor(ch->sock, NULL, 0);
        zmq_close(ch->mon);
    }
    zmq_close(ch->sock);
    ch->t->n_chans--;
    if (ch->close_cb)
        ch->close_cb(ch, ch->close_ud);
    for (size_t i = 0; i < ch->tab_cap; i++)
        free(ch->tab[i]);
    free(ch->tab);
    free(ch->endpoint);
    free(ch);
}

static void chan_close_handles(px_chan *ch)
{
    uv_handle_t *hs[] = {(uv_handle_t *)&ch->poll,    (uv_handle_t *)&ch->mon_poll,
                         (uv_handle_t *)&ch->prepare, (uv_handle_t *)&ch->idle,
                         (uv_handle_t *)&ch->retry,   (uv_handle_t *)&ch->redial};
    for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++)
        uv_close(hs[i], chan_handle_closed);
}

void px_chan_close(px_chan *ch, px_chan_close_cb cb, void *ud)
{
    if (!ch || ch->closing)
        return;
    ch->closing = true;
    ch->close_cb = cb;
    ch->close_ud = ud;
    uint64_t pending = ch->st.queued_bytes;
    if (pending)
        PX_INFO(MOD, "closing with records still queued; dropping them", "endpoint=%s bytes=%llu",
                ch->endpoint, (unsigned long long)pending);
    /* Memory (peers, batches, sockets) is released in the last close
     * callback: the caller may be deep inside a pump that still holds them. */
    chan_close_handles(ch);
}

/* ---- opening ---- */

static px_err set_int(void *s, int opt, int v)
{
    return zmq_setsockopt(s, opt, &v, sizeof(v)) == 0 ? PX_OK : tp_zerr();
}

static px_err set_str(void *s, int opt, const void *v, size_t n)
{
    return zmq_setsockopt(s, opt, v, n) == 0 ? PX_OK : tp_zerr();
}

static px_err configure(px_chan *ch, const px_chan_opts *o, int hwm, px_errmsg *em)
{
    void *s = ch->sock;
    bool server = ch->role == PX_CHAN_SERVER;
    const struct {
        int opt, val;
        bool on; /* applies to this role */
    } ints[] = {
        {ZMQ_LINGER, 0, true},
        {ZMQ_SNDHWM, hwm, true},
        {ZMQ_RCVHWM, hwm, true},
        {ZMQ_HEARTBEAT_IVL, HEARTBEAT_IVL_MS, true},
        {ZMQ_HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS, true},
        {ZMQ_HEARTBEAT_TTL, HEARTBEAT_TTL_MS, true},
        {ZMQ_HANDSHAKE_IVL, HANDSHAKE_IVL_MS, true},
        {ZMQ_RECONNECT_IVL, RECONNECT_IVL_MS, true},
        {ZMQ_RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS, true},
        {ZMQ_CURVE_SERVER, 1, server},
        {ZMQ_ROUTER_MANDATORY, 1, server}, /* unknown peer: an error, not a silent drop */
        /* A peer that reconnects with its old id replaces the dead
         * connection instead of being ignored until heartbeats notice. */
        {ZMQ_ROUTER_HANDOVER, 1, server},
        /* Records wait in our queue (bounded, counted) until a connection
         * has passed its handshake, not in an invisible ZeroMQ pipe. */
        {ZMQ_IMMEDIATE, 1, !server},
    };
    px_err err = PX_OK;
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
        if (ints[i].on && (err = set_int(s, ints[i].opt, ints[i].val)) != PX_OK)
            goto fail;
    /* Counted on the wire, where CURVE adds its framing to each message. */
    int64_t maxmsg = (int64_t)ch->batch_bytes + CURVE_FRAMING;
    if ((err = set_str(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg))) != PX_OK)
        goto fail;

    const px_keypair *self = &ch->t->self;
    if (server) {
        if ((err = set_str(s, ZMQ_CURVE_SECRETKEY, self->secret_z85, PX_KEY_Z85_LEN)) != PX_OK ||
            (err = set_str(s, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN, strlen(ZAP_DOMAIN))) != PX_OK)
            goto fail;
        return PX_OK;
    }
    char rid[PX_PEER_ID_MAX + 1];
    size_t rid_len;
    if (o->identity) {
        rid_len = strlen(o->identity);
        memcpy(rid, o->identity, rid_len);
    } else {
        uint64_t r = 0;
        if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
            r = (uint64_t)(uintptr_t)ch ^ (uint64_t)uv_hrtime();
        rid_len = (size_t)snprintf(rid, sizeof(rid), "px-%016llx", (unsigned long long)r);
    }
    if ((err = set_str(s, ZMQ_CURVE_SERVERKEY, ch->server_key, PX_KEY_Z85_LEN)) != PX_OK ||
        (err = set_str(s, ZMQ_CURVE_PUBLICKEY, self->public_z85, PX_KEY_Z85_LEN)) != PX_OK ||
        (err = set_str(s, ZMQ_CURVE_SECRETKEY, self->secret_z85, PX_KEY_Z85_LEN)) != PX_OK ||
        (err = set_str(s, ZMQ_ROUTING_ID, rid, rid_len)) != PX_OK)
        goto fail;
    return PX_OK;
fail:
    return px_errmsg_set(em, err, "%s: cannot configure the socket: %s", o->endpoint,
                         zmq_strerror(zmq_errno()));
}

static px_err check_opts(const px_chan_opts *o, px_errmsg *em)
{
    if (!o->endpoint || !*o->endpoint)
        return px_errmsg_set(em, PX_E_INVAL, "channel: no endpoint given");
    if (!o->on_recv)
        return px_errmsg_set(em, PX_E_INVAL, "%s: on_recv is required", o->endpoint);
    if (o->role != PX_CHAN_SERVER && o->role != PX_CHAN_CLIENT)
        return px_errmsg_set(em, PX_E_INVAL, "%s: unknown role %d", o->endpoint, (int)o->role);
    if (o->policy != PX_QUEUE_BACKPRESSURE && o->policy != PX_QUEUE_DROP)
        return px_errmsg_set(em, PX_E_INVAL, "%s: unknown queue policy %d", o->endpoint,
                             (int)o->policy);
    if (o->hwm < 0)
        return px_errmsg_set(em, PX_E_INVAL, "%s: negative hwm", o->endpoint);
    size_t q = o->queue_bytes ? o->queue_bytes : DEFAULT_QUEUE_BYTES;
    size_t b = o->batch_bytes ? o->batch_bytes : DEFAULT_BATCH_BYTES;
    if (b > q || b > (size_t)INT32_MAX)
        return px_errmsg_set(em, PX_E_INVAL,
                             "%s: batch_bytes %zu must not exceed queue_bytes %zu (nor 2 GiB)",
                             o->endpoint, b, q);
    if (o->role == PX_CHAN_CLIENT) {
        if (!px_key_valid(o->server_key))
            return px_errmsg_set(em, PX_E_INVAL,
                                 "%s: the server's public key is missing or not a 40-character "
                                 "Z85 key",
                                 o->endpoint);
        if (o->identity) {
            size_t n = strlen(o->identity);
            if (n == 0 || n > PX_PEER_ID_MAX)
                return px_errmsg_set(em, PX_E_INVAL, "%s: identity must be 1 to %d bytes, got %zu",
                                     o->endpoint, PX_PEER_ID_MAX, n);
        }
    }
    return PX_OK;
}

px_err px_chan_open(px_transport *t, const px_chan_opts *o, px_chan **out, px_errmsg *em)
{
    *out = NULL;
    px_err err = check_opts(o, em);
    if (err != PX_OK)
        return err;
    px_chan *ch = calloc(1, sizeof(*ch));
    if (!ch)
        return px_errmsg_set(em, PX_E_NOMEM, "%s: out of memory", o->endpoint);
    ch->t = t;
    ch->role = o->role;
    ch->policy = o->policy;
    ch->queue_bytes = o->queue_bytes ? o->queue_bytes : DEFAULT_QUEUE_BYTES;
    ch->batch_bytes = o->batch_bytes ? o->batch_bytes : DEFAULT_BATCH_BYTES;
    ch->on_recv = o->on_recv;
    ch->on_event = o->on_event;
    ch->on_writable = o->on_writable;
    ch->ud = o->ud;
    if (o->role == PX_CHAN_CLIENT)
        memcpy(ch->server_key, o->server_key, PX_KEY_Z85_LEN + 1);
    if (getrandom(&ch->seed, sizeof(ch->seed), 0) != (ssize_t)sizeof(ch->seed))
        ch->seed = (uint32_t)uv_hrtime();
    ch->endpoint = strdup(o->endpoint);
    if (!ch->endpoint) {
        err = px_errmsg_set(em, PX_E_NOMEM, "%s: out of memory", o->endpoint);
        goto fail_alloc;
    }

    ch->sock = zmq_socket(t->zctx, o->role == PX_CHAN_SERVER ? ZMQ_ROUTER : ZMQ_DEALER);
    if (!ch->sock) {
        err = px_errmsg_set(em, tp_zerr(), "%s: cannot create a socket: %s", o->endpoint,
                            zmq_strerror(zmq_errno()));
        goto fail_alloc;
    }
    err = configure(ch, o, o->hwm ? o->hwm : DEFAULT_HWM, em);
    if (err != PX_OK)
        goto fail_sock;

    /* The monitor is connected before bind/connect so no event is missed. */
    char mon_ep[64];
    snprintf(mon_ep, sizeof(mon_ep), "inproc://px-monitor-%u", t->mon_seq++);
    if (zmq_socket_monitor(ch->sock, mon_ep, MON_EVENTS) != 0) {
        err = px_errmsg_set(em, tp_zerr(), "%s: cannot monitor the socket: %s", o->endpoint,
                            zmq_strerror(zmq_errno()));
        goto fail_sock;
    }
    ch->mon = zmq_socket(t->zctx, ZMQ_PAIR);
    if (!ch->mon || set_int(ch->mon, ZMQ_LINGER, 0) != PX_OK || zmq_connect(ch->mon, mon_ep) != 0) {
        err = px_errmsg_set(em, tp_zerr(), "%s: cannot monitor the socket: %s", o->endpoint,
                            zmq_strerror(zmq_errno()));
        goto fail_mon;
    }

    if (o->role == PX_CHAN_SERVER) {
        if (zmq_bind(ch->sock, o->endpoint) != 0) {
            int e = zmq_errno();
            err =
                px_errmsg_set(em, tp_zerr(), "%s: cannot bind: %s%s", o->endpoint, zmq_strerror(e),
                              e == EADDRINUSE ? " (another process listens there)" : "");
            goto fail_mon;
        }
        char last[1024];
        size_t n = sizeof(last);
        if (zmq_getsockopt(ch->sock, ZMQ_LAST_ENDPOINT, last, &n) == 0 && n > 1) {
            char *dup = strdup(last);
            if (dup) {
                free(ch->endpoint);
                ch->endpoint = dup;
            }
        }
    } else if (zmq_connect(ch->sock, o->endpoint) != 0) {
        err = px_errmsg_set(em, tp_zerr(), "%s: cannot connect: %s", o->endpoint,
                            zmq_strerror(zmq_errno()));
        goto fail_mon;
    }

    int fd = -1, mfd = -1;
    size_t fsz = sizeof(fd);
    if (zmq_getsockopt(ch->sock, ZMQ_FD, &fd, &fsz) != 0 ||
        zmq_getsockopt(ch->mon, ZMQ_FD, &mfd, &fsz) != 0) {
        err = px_errmsg_set(em, tp_zerr(), "%s: cannot get the socket's fd: %s", o->endpoint,
                            zmq_strerror(zmq_errno()));
        goto fail_mon;
    }
    int rc = uv_poll_init(t->loop, &ch->poll, fd);
    if (rc != 0) {
        err = px_errmsg_set(em, PX_E_IO, "%s: cannot poll the socket: %s", o->endpoint,
                            uv_strerror(rc));
        goto fail_mon;
    }
    ch->poll.data = ch;
    t->n_chans++;
    rc = uv_poll_init(t->loop, &ch->mon_poll, mfd);
    if (rc != 0) {
        /* One handle exists now: it must be closed through the loop. */
        err = px_errmsg_set(em, PX_E_IO, "%s: cannot poll the monitor: %s", o->endpoint,
                            uv_strerror(rc));
        ch->closing = true;
        ch->open_handles = 1;
        uv_close((uv_handle_t *)&ch->poll, chan_handle_closed);
        return err;
    }
    uv_prepare_init(t->loop, &ch->prepare);
    uv_idle_init(t->loop, &ch->idle);
    uv_timer_init(t->loop, &ch->retry);
    uv_timer_init(t->loop, &ch->redial);
    ch->mon_poll.data = ch->prepare.data = ch->idle.data = ch->retry.data = ch->redial.data = ch;
    ch->open_handles = 6;
    ch->redial_ms = REDIAL_MIN_MS;
    uv_poll_start(&ch->poll, UV_READABLE, chan_poll_cb);
    uv_poll_start(&ch->mon_poll, UV_READABLE, chan_mon_cb);
    /* Either fd may have been signalled before we polled it. */
    arm_idle(ch);
    *out = ch;
    return PX_OK;

fail_mon:
    if (ch->mon)
        zmq_close(ch->mon);
    zmq_socket_monitor(ch->sock, NULL, 0);
fail_sock:
    zmq_close(ch->sock);
fail_alloc:
    free(ch->endpoint);
    free(ch);
    return err;
}

const char *px_chan_endpoint(const px_chan *ch)
{
    return ch->endpoint;
}

/* ---- sending ---- */

px_err px_chan_send(px_chan *ch, const px_peer *to, const void *rec, size_t len)
{
    if (ch->closing)
        return PX_E_CLOSED;
    if (len == 0 || !rec)
        return PX_E_INVAL;
    if (len > ch->batch_bytes)
        return PX_E_TOOBIG;
    tp_peer *p = &ch->server;
    if (ch->role == PX_CHAN_SERVER) {
        if (!to || to->id_len == 0)
            return PX_E_INVAL;
        p = tp_peer_get(ch, to->id, to->id_len);
        if (!p)
            return PX_E_NOMEM;
    }
    if (p->queued + len > ch->queue_bytes) {
        if (ch->policy == PX_QUEUE_DROP) {
            ch->st.dropped++;
        } else {
            ch->st.backpressured++;
            p->want_writable = true;
            if (len > p->want_len)
                p->want_len = len;
        }
        return PX_E_AGAIN;
    }
    bool sealed_one = false;
    px_err err = tp_peer_append(ch, p, rec, len, &sealed_one);
    if (err != PX_OK) {
        if (!p->head)
            tp_peer_maybe_free(ch, p);
        return err;
    }
    if (!uv_is_active((uv_handle_t *)&ch->prepare))
        uv_prepare_start(&ch->prepare, chan_prepare_cb);
    if (sealed_one) {
        /* A full batch goes at once; the attempt may have eaten an fd edge. */
        tp_peer_flush(ch, p, true);
        arm_idle(ch);
    } else if (ch->t->in_prepare) {
        /* Sent from a callback of another channel's prepare: this channel's
         * prepare may already have run, and the loop must not sleep on it. */
        arm_idle(ch);
    }
    return PX_OK;
}

void px_chan_flush(px_chan *ch)
{
    if (ch->closing || !ch->dirty_head)
        return;
    tp_peer *next;
    for (tp_peer *p = ch->dirty_head; p; p = next) {
        next = p->dnext;
        tp_peer_flush(ch, p, false);
        if (!p->head)
            tp_peer_maybe_free(ch, p);
    }
    arm_idle(ch); /* re-check ZMQ_EVENTS (the sends may have eaten an edge), fire on_writable */
}

void px_chan_stats_get(const px_chan *ch, px_chan_stats *out)
{
    *out = ch->st;
}
