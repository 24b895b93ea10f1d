/* Unit tests: fabric/can-bus/bus — global order, echo, loss, timed mode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fabric/can-bus/bus.h"
#include "fabric/can-bus/timing.h"

#define MAXLOG 4096

/* What the home emitted, in order. */
static px_canbus_msg emitted[MAXLOG];
static unsigned n_emitted;

static void on_emit(void *ud, const px_canbus_msg *m)
{
    (void)ud;
    assert_true(n_emitted < MAXLOG);
    emitted[n_emitted++] = *m;
}

/* What a member's endpoints saw: (ep, seq, txdone?). */
typedef struct seen {
    uint32_t ep;
    uint64_t seq;
    int txdone;
    uint32_t id;
} seen;

typedef struct log_ {
    seen s[MAXLOG];
    unsigned n;
} log_;

static void on_rx(void *ud, uint32_t ep, const px_canbus_msg *m)
{
    log_ *l = ud;
    l->s[l->n++] = (seen){ep, m->seq, 0, m->frame.can_id};
}

static void on_txdone(void *ud, uint32_t ep, const px_canbus_msg *m)
{
    log_ *l = ud;
    l->s[l->n++] = (seen){ep, m->seq, 1, m->frame.can_id};
}

static px_can_frame frame(uint32_t id, uint8_t len, uint8_t fill)
{
    px_can_frame f;
    memset(&f, 0, sizeof(f));
    f.can_id = id;
    f.len = len;
    memset(f.data, fill, len);
    return f;
}

static void test_ideal_one_order_and_echo(void **state)
{
    (void)state;
    n_emitted = 0;
    px_canbus_home h;
    assert_int_equal(px_canbus_home_init(&h, PX_CANBUS_IDEAL, 500000, 0, on_emit, NULL), PX_OK);
    /* Three nodes, interleaved senders. */
    for (uint32_t i = 0; i < 30; i++) {
        px_can_frame f = frame(0x100 + i, 8, (uint8_t)i);
        assert_int_equal(px_canbus_home_submit(&h, 1 + i % 3, 7, i, &f, 1000 * i), PX_OK);
    }
    assert_int_equal(n_emitted, 30);
    for (unsigned i = 0; i < n_emitted; i++)
        assert_int_equal(emitted[i].seq, i + 1);

    /* Every member, fed the emitted stream, sees the same order; the sender
     * endpoint gets its own frames only as TX-complete. */
    static log_ logs[3];
    px_canbus_member mem[3];
    for (uint32_t n = 0; n < 3; n++) {
        memset(&logs[n], 0, sizeof(logs[n]));
        px_canbus_member_init(&mem[n], 1 + n, on_rx, on_txdone, &logs[n]);
        assert_int_equal(px_canbus_member_attach(&mem[n], 7), PX_OK);
        assert_int_equal(px_canbus_member_attach(&mem[n], 7), PX_E_EXISTS);
        for (unsigned i = 0; i < n_emitted; i++)
            px_canbus_member_deliver(&mem[n], &emitted[i]);
        assert_int_equal(logs[n].n, 30);
        assert_int_equal(mem[n].stats.lost, 0);
    }
    for (unsigned i = 0; i < 30; i++) {
        assert_int_equal(logs[0].s[i].seq, logs[1].s[i].seq);
        assert_int_equal(logs[1].s[i].seq, logs[2].s[i].seq);
        for (uint32_t n = 0; n < 3; n++)
            assert_int_equal(logs[n].s[i].txdone, emitted[i].src_node == 1 + n);
    }
    assert_int_equal(h.stats.frames, 30);
    assert_int_equal(h.stats.bytes, 240);
}

static void test_loss_and_stale_are_counted(void **state)
{
    (void)state;
    log_ l = {0};
    px_canbus_member m;
    px_canbus_member_init(&m, 9, on_rx, on_txdone, &l);
    px_canbus_member_attach(&m, 1);
    px_canbus_msg msg = {.src_node = 2, .frame = frame(0x10, 1, 0)};
    uint64_t seqs[] = {1, 2, 5, 5, 3, 6};
    for (unsigned i = 0; i < 6; i++) {
        msg.seq = seqs[i];
        px_canbus_member_deliver(&m, &msg);
    }
    assert_int_equal(m.stats.delivered, 4); /* 1 2 5 6 */
    assert_int_equal(m.stats.lost, 2);      /* 3 and 4 never came in order */
    assert_int_equal(m.stats.stale, 2);     /* the second 5, the late 3 */
    assert_int_equal(l.n, 4);
}

static void test_invalid_frames_refused(void **state)
{
    (void)state;
    n_emitted = 0;
    px_canbus_home h;
    px_canbus_home_init(&h, PX_CANBUS_IDEAL, 500000, 0, on_emit, NULL);
    px_can_frame f = frame(0x800, 1, 0); /* 12-bit id on a standard frame */
    assert_int_equal(px_canbus_home_submit(&h, 1, 1, 0, &f, 0), PX_E_PROTO);
    f = frame(0x10, 9, 0); /* 9 bytes classic */
    assert_int_equal(px_canbus_home_submit(&h, 1, 1, 0, &f, 0), PX_E_PROTO);
    assert_int_equal(h.stats.invalid, 2);
    assert_int_equal(n_emitted, 0);
    assert_int_equal(px_canbus_home_init(&h, PX_CANBUS_TIMED, 0, 0, on_emit, NULL), PX_E_INVAL);
}

/* Timed mode at 125 kbit/s, saturated: the frames leave back to back, each
 * taking exactly its wire time, lowest id first among those waiting. */
static void test_timed_saturation_and_arbitration(void **state)
{
    (void)state;
    n_emitted = 0;
    px_canbus_home h;
    assert_int_equal(px_canbus_home_init(&h, PX_CANBUS_TIMED, 125000, 0, on_emit, NULL), PX_OK);
    /* Three senders each queue 20 frames at t=0; ids 0x300 (A), 0x100 (B),
     * 0x200 (C): B's frames all win, then C's, then A's. */
    uint64_t total_ns = 0;
    const uint32_t ids[3] = {0x300, 0x100, 0x200};
    for (uint32_t k = 0; k < 20; k++)
        for (uint32_t s = 0; s < 3; s++) {
            px_can_frame f = frame(ids[s], 8, (uint8_t)k);
            assert_int_equal(px_canbus_home_submit(&h, s + 1, 1, k, &f, 0), PX_OK);
            uint64_t d;
            assert_int_equal(px_can_duration_ns(&f, 125000, 0, &d, NULL), PX_OK);
            total_ns += d;
        }
    /* Nothing leaves before its last bit is on the wire. */
    uint64_t next = px_canbus_home_advance(&h, 0);
    assert_int_equal(n_emitted, 0);
    assert_true(next > 0 && next != UINT64_MAX);
    /* Run the clock in 1 ms steps: never ahead of the physical maximum. */
    uint64_t t = 0;
    while (n_emitted < 60) {
        t += 1000000;
        px_canbus_home_advance(&h, t);
        assert_true(emitted[n_emitted ? n_emitted - 1 : 0].ts_ns <= t);
    }
    assert_int_equal(emitted[59].ts_ns, total_ns); /* back to back, no gaps */
    for (unsigned i = 0; i < 60; i++) {
        uint32_t want = i < 20 ? 0x100 : i < 40 ? 0x200 : 0x300;
        assert_int_equal(emitted[i].frame.can_id, want);
        assert_int_equal(emitted[i].seq, i + 1);
        if (i)
            assert_true(emitted[i].ts_ns > emitted[i - 1].ts_ns);
    }
    assert_int_equal(h.stats.busy_ns, total_ns);
    assert_int_equal(px_canbus_home_advance(&h, t), UINT64_MAX);
}

/* A frame that arrives while another is on the wire waits for it to end;
 * contention is decided among frames present when the bus frees. */
static void test_timed_late_arrival_waits(void **state)
{
    (void)state;
    n_emitted = 0;
    px_canbus_home h;
    px_canbus_home_init(&h, PX_CANBUS_TIMED, 125000, 0, on_emit, NULL);
    px_can_frame hi = frame(0x700, 8, 0), lo = frame(0x001, 8, 0);
    uint64_t d_hi;
    px_can_duration_ns(&hi, 125000, 0, &d_hi, NULL);
    px_canbus_home_submit(&h, 1, 1, 0, &hi, 0);
    px_canbus_home_advance(&h, 10); /* 0x700 is on the wire */
    px_canbus_home_submit(&h, 2, 1, 0, &lo, 20);
    px_canbus_home_advance(&h, 10 * d_hi);
    assert_int_equal(n_emitted, 2);
    assert_int_equal(emitted[0].frame.can_id, 0x700); /* no pre-emption */
    assert_int_equal(emitted[0].ts_ns, d_hi);
    assert_int_equal(emitted[1].frame.can_id, 0x001);
}

static void test_timed_pushes_back(void **state)
{
    (void)state;
    n_emitted = 0;
    px_canbus_home h;
    px_canbus_home_init(&h, PX_CANBUS_TIMED, 125000, 0, on_emit, NULL);
    px_can_frame f = frame(0x123, 8, 0);
    for (unsigned i = 0; i < PX_CANBUS_MAX_PENDING; i++)
        assert_int_equal(px_canbus_home_submit(&h, 1, 1, i, &f, 0), PX_OK);
    assert_int_equal(px_canbus_home_submit(&h, 1, 1, 0, &f, 0), PX_E_AGAIN);
    assert_int_equal(h.stats.pushed_back, 1);
    /* Room returns as frames leave. */
    uint64_t d;
    px_can_duration_ns(&f, 125000, 0, &d, NULL);
    px_canbus_home_advance(&h, d);
    assert_int_equal(n_emitted, 1);
    assert_int_equal(px_canbus_home_submit(&h, 1, 1, 0, &f, d), PX_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ideal_one_order_and_echo),
        cmocka_unit_test(test_loss_and_stale_are_counted),
        cmocka_unit_test(test_invalid_frames_refused),
        cmocka_unit_test(test_timed_saturation_and_arbitration),
        cmocka_unit_test(test_timed_late_arrival_waits),
        cmocka_unit_test(test_timed_pushes_back),
    };
    return cmocka_run_group_tests_name("can_bus", tests, NULL, NULL);
}
