/* Unit tests: fabric/can-bus/client — a tool on a CAN bus, against a fake
 * bus home written here: a SERVER channel on a loopback port that admits
 * the tool's key and answers JOIN / SUBMIT / LEAVE as docs/can-bus.md says
 * (or, per test, refuses frames or sends DELIVER records of its choosing).
 *
 * Every wait runs the loop until a condition holds or a deadline passes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fabric/can-bus/client.h"
#include "fabric/can-bus/proto.h"
#include "fabric/core/wire.h"

#define WAIT_MS 10000u
#define MAXREC  2048u

/* ---- waiting ---- */

static void deadline_cb(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

typedef bool (*cond_fn)(void *);

static bool run_until(uv_loop_t *loop, cond_fn cond, void *arg, unsigned ms)
{
    uv_timer_t timer;
    bool expired = false;
    uv_timer_init(loop, &timer);
    timer.data = &expired;
    uv_timer_start(&timer, deadline_cb, ms, 0);
    while (!cond(arg) && !expired)
        uv_run(loop, UV_RUN_ONCE);
    bool ok = cond(arg);
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

typedef struct at_least {
    const uint64_t *val;
    uint64_t want;
} at_least;

static bool cond_at_least(void *arg)
{
    at_least *a = arg;
    return *a->val >= a->want;
}

static bool wait_u64(uv_loop_t *loop, const uint64_t *val, uint64_t want)
{
    at_least a = {val, want};
    return run_until(loop, cond_at_least, &a, WAIT_MS);
}

/* Run the loop for a while (to show that something does NOT happen). */
static bool never(void *arg)
{
    (void)arg;
    return false;
}

/* ---- the fake home ---- */

typedef enum home_mode { HOME_ECHO, HOME_REFUSE, HOME_SILENT } home_mode;

typedef struct home {
    uv_loop_t *loop;
    px_transport *tp;
    px_chan *ch;
    px_keypair key;
    home_mode mode;
    uint64_t seq;
    uint64_t joins, leaves, submit_msgs, submit_recs;
    bool submit_before_join;
    bool have_tool;
    px_peer tool;
    uint32_t tool_node; /* the member id the tool used */
    uint64_t last_tag;  /* as on the wire */
    uint64_t bus;
    px_msg *in, *out;
    px_wbuf wb;
    int closed;
} home;

static void home_send(home *h, const px_msg_can *body)
{
    memset(&h->out->env, 0, sizeof(h->out->env));
    h->out->env.type = PX_MSG_CAN;
    h->out->body.can = *body;
    px_wbuf_reset(&h->wb);
    px_errmsg em = {{0}};
    assert_int_equal(px_wire_encode(&h->wb, h->out, &em), PX_OK);
    assert_true(h->have_tool);
    assert_int_equal(px_chan_send(h->ch, &h->tool, h->wb.data, h->wb.len), PX_OK);
}

static void home_recv(px_chan *ch, const px_peer *from, const uint8_t *data, size_t len, void *ud)
{
    (void)ch;
    home *h = ud;
    size_t off = 0;
    while (off < len) {
        size_t used = 0;
        px_errmsg em = {{0}};
        assert_int_equal(px_wire_decode(data + off, len - off, &used, h->in, &em), PX_OK);
        off += used;
        assert_int_equal(h->in->env.type, PX_MSG_CAN);
        const px_msg_can *m = &h->in->body.can;
        assert_true(m->bus == h->bus);
        if (m->op == PX_CAN_JOIN) {
            h->joins++;
            h->tool = *from;
            h->have_tool = true;
            h->tool_node = m->node;
        } else if (m->op == PX_CAN_LEAVE) {
            h->leaves++;
        } else if (m->op == PX_CAN_SUBMIT) {
            if (!h->joins)
                h->submit_before_join = true;
            h->submit_msgs++;
            h->submit_recs += m->n_recs;
            if (m->n_recs)
                h->last_tag = m->recs[m->n_recs - 1].tag;
            if (h->mode == HOME_SILENT)
                continue;
            static px_msg_can d;
            memset(&d, 0, sizeof(d));
            d.bus = h->bus;
            d.op = PX_CAN_DELIVER;
            for (uint32_t i = 0; i < m->n_recs; i++) {
                const px_can_rec *r = &m->recs[i];
                assert_int_equal(r->ep, PX_CANCLIENT_EP);
                d.recs[d.n_recs++] = (px_can_rec){.seq = h->mode == HOME_ECHO ? ++h->seq : 0,
                                                  .ts_ns = 1700000000123456789ull + h->seq * 1000,
                                                  .node = m->node,
                                                  .ep = r->ep,
                                                  .tag = r->tag,
                                                  .frame = r->frame};
            }
            home_send(h, &d);
        } else {
            fail_msg("unexpected op %u", m->op);
        }
    }
}

static void home_closed(px_chan *ch, void *ud)
{
    (void)ch;
    ((home *)ud)->closed++;
}

static void home_start(home *h, uv_loop_t *loop, const px_keypair *tool, const char *lab,
                       const char *bus)
{
    memset(h, 0, sizeof(*h));
    h->loop = loop;
    assert_int_equal(px_keypair_generate(&h->key, NULL), PX_OK);
    const char *allow[1] = {tool->public_z85};
    px_transport_opts to = {.self = h->key, .allow = allow, .n_allow = 1};
    px_errmsg em = {{0}};
    assert_int_equal(px_transport_new(loop, &to, &h->tp, &em), PX_OK);
    px_chan_opts co = {.role = PX_CHAN_SERVER,
                       .endpoint = "tcp://127.0.0.1:*",
                       .policy = PX_QUEUE_DROP,
                       .on_recv = home_recv,
                       .ud = h};
    assert_int_equal(px_chan_open(h->tp, &co, &h->ch, &em), PX_OK);
    h->in = malloc(sizeof(*h->in));
    h->out = malloc(sizeof(*h->out));
    assert_non_null(h->in);
    assert_non_null(h->out);
    h->bus = px_can_bus_key(lab, bus);
}

static void home_stop(home *h)
{
    px_chan_close(h->ch, home_closed, h);
    while (!h->closed)
        uv_run(h->loop, UV_RUN_ONCE);
    assert_int_equal(px_transport_free(h->tp), PX_OK);
    uv_run(h->loop, UV_RUN_NOWAIT);
    free(h->in);
    free(h->out);
    px_wbuf_fini(&h->wb);
}

/* ---- the tool's side ---- */

typedef struct seen {
    px_canclient_rec recs[MAXREC];
    uint64_t n;
    uint64_t lost_calls, lost_n, last_next;
    uint64_t resets, connected, done;
} seen;

static void on_rec(px_canclient *cc, const px_canclient_rec *r, void *ud)
{
    (void)cc;
    seen *s = ud;
    assert_true(s->n < MAXREC);
    s->recs[s->n++] = *r;
}

static void on_lost(px_canclient *cc, uint64_t n, uint64_t next, void *ud)
{
    (void)cc;
    seen *s = ud;
    s->lost_calls++;
    s->lost_n += n;
    s->last_next = next;
}

static void on_event(px_canclient *cc, px_canclient_event ev, void *ud)
{
    (void)cc;
    seen *s = ud;
    if (ev == PX_CANCLIENT_RESET)
        s->resets++;
    else if (ev == PX_CANCLIENT_CONNECTED)
        s->connected++;
}

static void on_done(void *ud)
{
    ((seen *)ud)->done++;
}

typedef struct fx {
    uv_loop_t loop;
    px_keypair tool;
    px_transport *tp;
    home h;
    px_canclient *cc;
    seen s;
} fx;

static px_canclient_opts client_opts(fx *f)
{
    return (px_canclient_opts){.loop = &f->loop,
                               .tp = f->tp,
                               .self_key = f->tool.public_z85,
                               .endpoint = px_chan_endpoint(f->h.ch),
                               .server_key = f->h.key.public_z85,
                               .lab = "lab1",
                               .bus = "body",
                               .on_rec = on_rec,
                               .on_lost = on_lost,
                               .on_event = on_event,
                               .ud = &f->s};
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    if (!f || uv_loop_init(&f->loop) != 0 || px_keypair_generate(&f->tool, NULL) != PX_OK)
        return -1;
    px_transport_opts to = {.self = f->tool};
    if (px_transport_new(&f->loop, &to, &f->tp, NULL) != PX_OK)
        return -1;
    home_start(&f->h, &f->loop, &f->tool, "lab1", "body");
    *state = f;
    return 0;
}

static void client_open(fx *f, uint32_t keepalive_ms)
{
    px_canclient_opts o = client_opts(f);
    o.keepalive_ms = keepalive_ms;
    px_errmsg em = {{0}};
    assert_int_equal(px_canclient_open(&o, &f->cc, &em), PX_OK);
}

static void client_close(fx *f)
{
    if (!f->cc)
        return;
    uint64_t before = f->s.done;
    px_canclient_close(f->cc, on_done, &f->s);
    px_canclient_close(f->cc, on_done, &f->s); /* a second call does nothing */
    assert_int_equal(f->s.done, before);       /* never synchronous */
    assert_true(wait_u64(&f->loop, &f->s.done, before + 1));
    f->cc = NULL;
}

static int teardown(void **state)
{
    fx *f = *state;
    client_close(f);
    home_stop(&f->h);
    assert_int_equal(px_transport_free(f->tp), PX_OK);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0); /* nothing left behind */
    free(f);
    return 0;
}

static px_can_frame frame(uint32_t id, uint8_t len, uint8_t fill)
{
    px_can_frame fr;
    memset(&fr, 0, sizeof(fr));
    fr.can_id = id;
    fr.len = len;
    memset(fr.data, fill, len);
    return fr;
}

/* The home sends DELIVER records with these sequence numbers, from another
 * member. */
static void deliver_seqs(fx *f, const uint64_t *seqs, uint32_t n)
{
    static px_msg_can d;
    static uint8_t packed[16][PX_CAN_PACKED_MAX];
    memset(&d, 0, sizeof(d));
    d.bus = f->h.bus;
    d.op = PX_CAN_DELIVER;
    for (uint32_t i = 0; i < n; i++) {
        px_can_frame fr = frame(0x100 + (uint32_t)seqs[i], 2, (uint8_t)seqs[i]);
        size_t l = px_can_frame_pack(&fr, packed[i], sizeof(packed[i]));
        assert_true(l > 0);
        d.recs[d.n_recs++] = (px_can_rec){.seq = seqs[i],
                                          .ts_ns = 1000 + seqs[i],
                                          .node = 0x1234,
                                          .ep = 9,
                                          .tag = 7,
                                          .frame = {packed[i], (uint32_t)l}};
    }
    home_send(&f->h, &d);
}

/* ---- tests ---- */

static void test_send_completes(void **state)
{
    fx *f = *state;
    client_open(f, 0);
    char name[8 + PX_KEY_Z85_LEN + 1];
    snprintf(name, sizeof(name), "tool:%s", f->tool.public_z85);
    assert_int_equal(px_canclient_member_id(f->cc), px_can_member_id(name));
    px_can_frame in[3] = {frame(0x123, 4, 0xAB), frame(0x18FEF100u | PX_CAN_EFF_FLAG, 8, 1),
                          frame(0x7DF, 12, 0x55)};
    in[2].flags = PX_CANFD_FDF | PX_CANFD_BRS;
    for (uint64_t i = 0; i < 3; i++)
        assert_int_equal(px_canclient_submit(f->cc, &in[i], 100 + i), PX_OK);
    assert_true(wait_u64(&f->loop, &f->s.n, 3));
    assert_false(f->h.submit_before_join); /* JOIN goes first */
    assert_int_equal(f->h.tool_node, px_canclient_member_id(f->cc));
    assert_int_equal(f->h.submit_msgs, 1); /* one iteration's frames: one message */
    for (uint64_t i = 0; i < 3; i++) {
        const px_canclient_rec *r = &f->s.recs[i];
        assert_int_equal(r->seq, i + 1);
        assert_true(r->own);
        assert_int_equal(r->tag, 100 + i);
        assert_int_equal(r->ep, PX_CANCLIENT_EP);
        assert_int_equal(r->frame.can_id, in[i].can_id);
        assert_int_equal(r->frame.len, in[i].len);
        assert_int_equal(r->frame.flags, in[i].flags);
        assert_memory_equal(r->frame.data, in[i].data, in[i].len);
    }
    px_canclient_stats st;
    px_canclient_stats_get(f->cc, &st);
    assert_int_equal(st.submitted, 3);
    assert_int_equal(st.delivered, 3);
    assert_int_equal(st.own, 3);
    assert_int_equal(st.lost + st.refused + st.stale + st.bad, 0);

    /* An invalid frame is refused before anything is sent. */
    px_can_frame bad = frame(0x800, 2, 0); /* standard id above 0x7ff */
    assert_int_equal(px_canclient_submit(f->cc, &bad, 1), PX_E_INVAL);
}

/* More frames in one go than one CAN message holds: all arrive, in order. */
static void test_send_many(void **state)
{
    fx *f = *state;
    client_open(f, 0);
    const uint64_t n = 3 * PX_WIRE_MAX_CAN_BATCH + 17;
    for (uint64_t i = 0; i < n; i++) {
        px_can_frame fr = frame((uint32_t)(i & 0x7ff), 8, (uint8_t)i);
        assert_int_equal(px_canclient_submit(f->cc, &fr, i + 1), PX_OK);
    }
    assert_true(wait_u64(&f->loop, &f->s.n, n));
    for (uint64_t i = 0; i < n; i++) {
        assert_int_equal(f->s.recs[i].tag, i + 1);
        assert_int_equal(f->s.recs[i].seq, i + 1);
    }
    assert_true(f->h.submit_msgs >= 4);
}

static void test_refused(void **state)
{
    fx *f = *state;
    f->h.mode = HOME_REFUSE;
    client_open(f, 0);
    px_can_frame fr = frame(0x10, 1, 1);
    assert_int_equal(px_canclient_submit(f->cc, &fr, 5), PX_OK);
    assert_int_equal(px_canclient_submit(f->cc, &fr, 6), PX_OK);
    assert_true(wait_u64(&f->loop, &f->s.n, 2));
    assert_int_equal(f->s.recs[0].seq, 0);
    assert_int_equal(f->s.recs[0].tag, 5);
    assert_int_equal(f->s.recs[1].tag, 6);
    px_canclient_stats st;
    px_canclient_stats_get(f->cc, &st);
    assert_int_equal(st.refused, 2);
    assert_int_equal(st.delivered, 0);
    assert_int_equal(st.lost, 0); /* refusals are outside the bus sequence */
}

static void test_gaps_stale_reset(void **state)
{
    fx *f = *state;
    client_open(f, 0);
    px_can_frame fr = frame(0x10, 1, 1);
    f->h.mode = HOME_SILENT;
    assert_int_equal(px_canclient_submit(f->cc, &fr, 1), PX_OK); /* so the home knows us */
    assert_true(wait_u64(&f->loop, &f->h.submit_msgs, 1));

    /* The first record sets where counting starts: frames before the tool
     * joined are not lost. */
    uint64_t a[] = {41, 42, 45, 46, 50};
    deliver_seqs(f, a, 5);
    assert_true(wait_u64(&f->loop, &f->s.n, 5));
    assert_int_equal(f->s.lost_calls, 2);
    assert_int_equal(f->s.lost_n, 2 + 3);
    assert_int_equal(f->s.last_next, 50);
    assert_false(f->s.recs[0].own);
    assert_int_equal(f->s.recs[2].seq, 45);
    assert_int_equal(f->s.recs[2].frame.can_id, 0x100 + 45);
    assert_int_equal(f->s.recs[2].node, 0x1234);

    /* At or below what was seen: stale, dropped. Back to 1: a reset. */
    uint64_t b[] = {47, 50, 1, 2, 4};
    deliver_seqs(f, b, 5);
    assert_true(wait_u64(&f->loop, &f->s.n, 8));
    assert_int_equal(f->s.recs[5].seq, 1);
    assert_int_equal(f->s.recs[6].seq, 2);
    assert_int_equal(f->s.recs[7].seq, 4);
    assert_int_equal(f->s.resets, 1);
    assert_int_equal(f->s.lost_n, 6);
    px_canclient_stats st;
    px_canclient_stats_get(f->cc, &st);
    assert_int_equal(st.lost, 6);
    assert_int_equal(st.stale, 2);
    assert_int_equal(st.resets, 1);
    assert_int_equal(st.delivered, 8);
    assert_int_equal(st.own, 0);
}

/* Another tool with the same key (so the same member id) in another
 * session: its frames are not this client's, its refusals not passed on. */
static void test_other_session_same_key(void **state)
{
    fx *f = *state;
    f->h.mode = HOME_SILENT;
    client_open(f, 0);
    px_can_frame fr = frame(0x10, 1, 1);
    assert_int_equal(px_canclient_submit(f->cc, &fr, 3), PX_OK);
    assert_true(wait_u64(&f->loop, &f->h.submit_msgs, 1));
    assert_int_equal(f->h.last_tag & 0xffffffffu, 3);
    uint64_t other = f->h.last_tag ^ (1ull << 40); /* same low half, other session */

    static px_msg_can d;
    static uint8_t packed[PX_CAN_PACKED_MAX];
    size_t l = px_can_frame_pack(&fr, packed, sizeof(packed));
    memset(&d, 0, sizeof(d));
    d.bus = f->h.bus;
    d.op = PX_CAN_DELIVER;
    uint32_t me = px_canclient_member_id(f->cc);
    px_can_rec base = {.node = me, .ep = 1, .frame = {packed, (uint32_t)l}};
    d.recs[0] = base;
    d.recs[0].seq = 0, d.recs[0].tag = other; /* its refusal: dropped */
    d.recs[1] = base;
    d.recs[1].seq = 1, d.recs[1].tag = other; /* its frame: not own */
    d.recs[2] = base;
    d.recs[2].seq = 2, d.recs[2].tag = f->h.last_tag; /* ours */
    d.n_recs = 3;
    home_send(&f->h, &d);
    assert_true(wait_u64(&f->loop, &f->s.n, 2));
    assert_false(f->s.recs[0].own);
    assert_int_equal(f->s.recs[0].seq, 1);
    assert_int_equal(f->s.recs[0].tag, other);
    assert_true(f->s.recs[1].own);
    assert_int_equal(f->s.recs[1].tag, 3);
    px_canclient_stats st;
    px_canclient_stats_get(f->cc, &st);
    assert_int_equal(st.refused, 0);
    assert_int_equal(st.own, 1);
}

static void test_bad_messages(void **state)
{
    fx *f = *state;
    f->h.mode = HOME_SILENT;
    client_open(f, 0);
    px_can_frame fr = frame(0x10, 1, 1);
    assert_int_equal(px_canclient_submit(f->cc, &fr, 1), PX_OK);
    assert_true(wait_u64(&f->loop, &f->h.submit_msgs, 1));

    static px_msg_can d;
    uint8_t junk[3] = {1, 2, 3};
    memset(&d, 0, sizeof(d));
    d.bus = px_can_bus_key("lab1", "other"); /* another bus */
    d.op = PX_CAN_DELIVER;
    home_send(&f->h, &d);
    d.bus = f->h.bus;
    d.op = PX_CAN_SUBMIT; /* not for a tool */
    home_send(&f->h, &d);
    d.op = PX_CAN_DELIVER; /* a frame that does not unpack */
    d.n_recs = 1;
    d.recs[0] = (px_can_rec){.seq = 1, .frame = {junk, 3}};
    home_send(&f->h, &d);
    uint64_t ok[] = {2};
    deliver_seqs(f, ok, 1);
    assert_true(wait_u64(&f->loop, &f->s.n, 1));
    assert_int_equal(f->s.recs[0].seq, 2);
    px_canclient_stats st;
    px_canclient_stats_get(f->cc, &st);
    assert_int_equal(st.bad, 3);
    assert_int_equal(st.delivered, 1);
}

static void test_keepalive_and_leave(void **state)
{
    fx *f = *state;
    client_open(f, 20);
    assert_true(wait_u64(&f->loop, &f->h.joins, 4));
    assert_true(f->s.connected >= 1);
    client_close(f);
    assert_true(wait_u64(&f->loop, &f->h.leaves, 1));
    uint64_t joins = f->h.joins;
    run_until(&f->loop, never, NULL, 100);
    assert_int_equal(f->h.joins, joins); /* no keep-alive after close */
}

/* Closing from inside on_rec: no further records are delivered. */
static void close_in_rec(px_canclient *cc, const px_canclient_rec *r, void *ud)
{
    seen *s = ud;
    on_rec(cc, r, ud);
    px_canclient_close(cc, on_done, s);
}

static void test_close_inside_callback(void **state)
{
    fx *f = *state;
    px_canclient_opts o = client_opts(f);
    o.on_rec = close_in_rec;
    assert_int_equal(px_canclient_open(&o, &f->cc, NULL), PX_OK);
    px_can_frame fr = frame(0x10, 1, 1);
    for (uint64_t i = 0; i < 5; i++)
        assert_int_equal(px_canclient_submit(f->cc, &fr, i), PX_OK);
    assert_true(wait_u64(&f->loop, &f->s.done, 1));
    assert_int_equal(f->s.n, 1);
    f->cc = NULL;
}

static void test_open_errors(void **state)
{
    fx *f = *state;
    px_canclient *cc = NULL;
    px_errmsg em = {{0}};
    px_canclient_opts o = client_opts(f);
    o.server_key = "not a key";
    assert_int_equal(px_canclient_open(&o, &cc, &em), PX_E_INVAL);
    assert_null(cc);
    assert_non_null(strstr(em.text, "key"));
    o = client_opts(f);
    o.on_rec = NULL;
    assert_int_equal(px_canclient_open(&o, &cc, &em), PX_E_INVAL);
    o = client_opts(f);
    o.bus = "";
    assert_int_equal(px_canclient_open(&o, &cc, &em), PX_E_INVAL);
    o = client_opts(f);
    o.endpoint = "nonsense://x";
    assert_true(px_canclient_open(&o, &cc, &em) != PX_OK);
    assert_null(cc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_send_completes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gaps_stale_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_session_same_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keepalive_and_leave, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_inside_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
