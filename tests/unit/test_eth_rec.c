/* Unit tests: fabric/eth-hub/rec — frame records in a data-plane blob. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fabric/eth-hub/rec.h"

static uint8_t frame_a[60], frame_b[14];

static void fill(void)
{
    for (size_t i = 0; i < sizeof(frame_a); i++)
        frame_a[i] = (uint8_t)(i * 7 + 1);
    for (size_t i = 0; i < sizeof(frame_b); i++)
        frame_b[i] = (uint8_t)(0xf0 - i);
}

static void test_put_layout(void **state)
{
    (void)state;
    fill();
    uint8_t buf[128];
    px_ethrec r = {.vid = 0x0102,
                   .flags = 0xa5b6,
                   .ts_ns = 0x1122334455667788ull,
                   .frame = frame_b,
                   .len = sizeof(frame_b)};
    assert_int_equal(px_ethrec_size(14), 30);
    assert_int_equal(px_ethrec_put(buf, sizeof(buf), &r), 30);
    const uint8_t hdr[16] = {0,    0,    0,    14,   0x01, 0x02, 0xa5, 0xb6,
                             0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};
    assert_memory_equal(buf, hdr, 16);
    assert_memory_equal(buf + 16, frame_b, 14);

    /* Exactly fits; one byte short writes nothing. */
    memset(buf, 0xcc, sizeof(buf));
    assert_int_equal(px_ethrec_put(buf, 29, &r), 0);
    assert_int_equal(buf[0], 0xcc);
    assert_int_equal(px_ethrec_put(buf, 30, &r), 30);

    /* Records a peer would refuse are not written either. */
    px_ethrec bad = r;
    bad.len = 13;
    assert_int_equal(px_ethrec_put(buf, sizeof(buf), &bad), 0);
    bad = r;
    bad.vid = 4095;
    assert_int_equal(px_ethrec_put(buf, sizeof(buf), &bad), 0);
    bad = r;
    bad.len = PX_ETH_MAX_FRAME + 1;
    assert_int_equal(px_ethrec_put(buf, SIZE_MAX, &bad), 0);
    bad = r;
    bad.vid = 4094;
    assert_int_equal(px_ethrec_put(buf, sizeof(buf), &bad), 30);
}

static void test_iterate(void **state)
{
    (void)state;
    fill();
    uint8_t buf[256];
    size_t n = 0;
    px_ethrec in[3] = {
        {.vid = 0, .flags = 1, .ts_ns = 1000, .frame = frame_a, .len = sizeof(frame_a)},
        {.vid = 4094, .flags = 0, .ts_ns = UINT64_MAX, .frame = frame_b, .len = sizeof(frame_b)},
        {.vid = 7, .flags = 0xffff, .ts_ns = 0, .frame = frame_a, .len = 20},
    };
    for (int i = 0; i < 3; i++) {
        size_t w = px_ethrec_put(buf + n, sizeof(buf) - n, &in[i]);
        assert_int_equal(w, px_ethrec_size(in[i].len));
        n += w;
    }
    size_t off = 0;
    px_ethrec r;
    for (int i = 0; i < 3; i++) {
        size_t before = off;
        assert_int_equal(px_ethrec_next(buf, n, &off, &r, NULL), PX_OK);
        assert_int_equal(off, before + px_ethrec_size(in[i].len));
        assert_int_equal(r.vid, in[i].vid);
        assert_int_equal(r.flags, in[i].flags);
        assert_true(r.ts_ns == in[i].ts_ns);
        assert_int_equal(r.len, in[i].len);
        assert_ptr_equal(r.frame, buf + before + 16);
        assert_memory_equal(r.frame, in[i].frame, r.len);
    }
    assert_int_equal(off, n);
    assert_int_equal(px_ethrec_next(buf, n, &off, &r, NULL), PX_E_NOTFOUND);
    assert_int_equal(off, n);

    /* An empty blob has no records. */
    off = 0;
    assert_int_equal(px_ethrec_next(buf, 0, &off, &r, NULL), PX_E_NOTFOUND);
}

/* One record in buf with the given header fields, frame bytes following. */
static size_t raw(uint8_t *buf, uint32_t len, uint16_t vid)
{
    memset(buf, 0, 16);
    buf[0] = (uint8_t)(len >> 24);
    buf[1] = (uint8_t)(len >> 16);
    buf[2] = (uint8_t)(len >> 8);
    buf[3] = (uint8_t)len;
    buf[4] = (uint8_t)(vid >> 8);
    buf[5] = (uint8_t)vid;
    return 16;
}

static void expect_err(const uint8_t *buf, size_t len, size_t start, px_err want, const char *text)
{
    size_t off = start;
    px_ethrec r;
    memset(&r, 0x5a, sizeof(r));
    px_ethrec untouched = r;
    px_errmsg em = {{0}};
    assert_int_equal(px_ethrec_next(buf, len, &off, &r, &em), want);
    assert_int_equal(off, start);
    assert_memory_equal(&r, &untouched, sizeof(r));
    assert_string_equal(em.text, text);
    /* A NULL em is fine too. */
    assert_int_equal(px_ethrec_next(buf, len, &off, &r, NULL), want);
}

static void test_errors(void **state)
{
    (void)state;
    static uint8_t buf[70000];
    memset(buf, 0, sizeof(buf));
    /* A good record first, so offsets in the messages are not 0. */
    px_ethrec good = {.frame = frame_b, .len = 14};
    size_t at = px_ethrec_put(buf, sizeof(buf), &good);
    assert_int_equal(at, 30);

    expect_err(buf, at + 15, at, PX_E_TRUNCATED,
               "record at offset 30: 15 bytes left, a record header is 16");
    raw(buf + at, 13, 0);
    expect_err(buf, at + 16 + 13, at, PX_E_PROTO,
               "record at offset 30: frame of 13 bytes is shorter than an Ethernet header (14)");
    raw(buf + at, 65536, 0);
    expect_err(buf, sizeof(buf), at, PX_E_PROTO,
               "record at offset 30: frame of 65536 bytes is longer than 65535");
    raw(buf + at, 0xffffffffu, 0);
    expect_err(buf, sizeof(buf), at, PX_E_PROTO,
               "record at offset 30: frame of 4294967295 bytes is longer than 65535");
    raw(buf + at, 14, 4095);
    expect_err(buf, at + 30, at, PX_E_PROTO, "record at offset 30: VLAN id 4095 is over 4094");
    raw(buf + at, 14, 1);
    expect_err(buf, at + 29, at, PX_E_TRUNCATED,
               "record at offset 30: frame of 14 bytes runs past the end (13 bytes left after "
               "the header)");
    expect_err(buf, 10, 11, PX_E_TRUNCATED, "record offset 11 is past the end (10 bytes)");

    /* The largest frame is fine. */
    raw(buf, 65535, 4094);
    size_t off = 0;
    px_ethrec r;
    assert_int_equal(px_ethrec_next(buf, 16 + 65535, &off, &r, NULL), PX_OK);
    assert_int_equal(r.len, 65535);
    assert_int_equal(off, 16 + 65535);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_layout),
        cmocka_unit_test(test_iterate),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
