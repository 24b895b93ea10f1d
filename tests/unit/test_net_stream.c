/* Unit tests: devices/net/stream — QEMU -netdev stream framing: frames cut
 * the same way whatever the chunking, zero-copy where a frame is whole in
 * a chunk, the 65535 limit, and lengths 0 / 65536 refused with the offset.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "devices/net/stream.h"

#define MAXF 64u

typedef struct got {
    unsigned n;
    size_t len[MAXF];
    uint8_t *copy[MAXF];
    const uint8_t *ptr[MAXF];
} got;

static void on_frame(void *ud, const uint8_t *f, size_t len)
{
    got *g = ud;
    assert_true(g->n < MAXF);
    g->len[g->n] = len;
    g->ptr[g->n] = f;
    g->copy[g->n] = malloc(len);
    memcpy(g->copy[g->n], f, len);
    g->n++;
}

static void got_free(got *g)
{
    for (unsigned i = 0; i < g->n; i++)
        free(g->copy[i]);
    memset(g, 0, sizeof(*g));
}

/* Append frame i (length lens[i], bytes i*7+k) to a stream buffer. */
static size_t put_frame(uint8_t *s, size_t at, unsigned i, size_t len)
{
    px_stream_hdr((uint32_t)len, s + at);
    for (size_t k = 0; k < len; k++)
        s[at + 4 + k] = (uint8_t)(i * 7 + k);
    return at + 4 + len;
}

static void check_frames(const got *g, const size_t *lens, unsigned n)
{
    assert_int_equal(g->n, n);
    for (unsigned i = 0; i < n; i++) {
        assert_int_equal(g->len[i], lens[i]);
        for (size_t k = 0; k < lens[i]; k++)
            assert_int_equal(g->copy[i][k], (uint8_t)(i * 7 + k));
    }
}

static void test_hdr_is_big_endian(void **state)
{
    (void)state;
    uint8_t h[4];
    px_stream_hdr(0x0102u, h);
    assert_memory_equal(h, "\x00\x00\x01\x02", 4);
    px_stream_hdr(65535u, h);
    assert_memory_equal(h, "\x00\x00\xff\xff", 4);
}

/* Three frames (one shorter than an Ethernet header) split at every pair
 * of byte boundaries: always the same three frames. */
static void test_every_split(void **state)
{
    (void)state;
    static const size_t lens[] = {60, 1, 1514};
    uint8_t s[4 * 3 + 60 + 1 + 1514];
    size_t n = 0;
    for (unsigned i = 0; i < 3; i++)
        n = put_frame(s, n, i, lens[i]);
    assert_int_equal(n, sizeof(s));
    uint8_t *buf = malloc(PX_NET_STREAM_MAX);
    for (size_t a = 0; a <= n; a++) {
        for (size_t b = a; b <= n; b += (a % 13 == 0) ? 1 : 37) {
            px_stream_dec d;
            px_stream_dec_init(&d, buf);
            got g = {0};
            assert_int_equal(px_stream_dec_feed(&d, s, a, on_frame, &g, NULL), PX_OK);
            assert_int_equal(px_stream_dec_feed(&d, s + a, b - a, on_frame, &g, NULL), PX_OK);
            assert_int_equal(px_stream_dec_feed(&d, s + b, n - b, on_frame, &g, NULL), PX_OK);
            check_frames(&g, lens, 3);
            got_free(&g);
        }
    }
    /* One byte at a time. */
    px_stream_dec d;
    px_stream_dec_init(&d, buf);
    got g = {0};
    for (size_t i = 0; i < n; i++)
        assert_int_equal(px_stream_dec_feed(&d, s + i, 1, on_frame, &g, NULL), PX_OK);
    check_frames(&g, lens, 3);
    assert_int_equal(d.have_hdr, 0);
    got_free(&g);
    free(buf);
}

/* Many frames in one chunk: all delivered in place (zero-copy). */
static void test_many_in_one_chunk(void **state)
{
    (void)state;
    size_t lens[MAXF];
    static uint8_t s[MAXF * (4 + 100)];
    size_t n = 0;
    for (unsigned i = 0; i < MAXF; i++) {
        lens[i] = 14 + i;
        n = put_frame(s, n, i, lens[i]);
    }
    uint8_t *buf = malloc(PX_NET_STREAM_MAX);
    px_stream_dec d;
    px_stream_dec_init(&d, buf);
    got g = {0};
    assert_int_equal(px_stream_dec_feed(&d, s, n, on_frame, &g, NULL), PX_OK);
    check_frames(&g, lens, MAXF);
    size_t at = 0;
    for (unsigned i = 0; i < MAXF; i++) {
        assert_ptr_equal(g.ptr[i], s + at + 4);
        at += 4 + lens[i];
    }
    assert_int_equal(d.off, n);
    got_free(&g);
    free(buf);
}

/* A 65535-byte frame, whole and split; it lands in the caller's buffer
 * when split. */
static void test_max_frame(void **state)
{
    (void)state;
    size_t lens[2] = {PX_NET_STREAM_MAX, 64};
    uint8_t *s = malloc(8 + PX_NET_STREAM_MAX + 64);
    size_t n = put_frame(s, 0, 0, lens[0]);
    n = put_frame(s, n, 1, lens[1]);
    uint8_t *buf = malloc(PX_NET_STREAM_MAX);
    px_stream_dec d;
    px_stream_dec_init(&d, buf);
    got g = {0};
    assert_int_equal(px_stream_dec_feed(&d, s, n, on_frame, &g, NULL), PX_OK);
    check_frames(&g, lens, 2);
    got_free(&g);
    px_stream_dec_init(&d, buf);
    assert_int_equal(px_stream_dec_feed(&d, s, 30000, on_frame, &g, NULL), PX_OK);
    assert_int_equal(g.n, 0);
    assert_int_equal(px_stream_dec_feed(&d, s + 30000, n - 30000, on_frame, &g, NULL), PX_OK);
    check_frames(&g, lens, 2);
    assert_ptr_equal(g.ptr[0], buf);
    got_free(&g);
    free(buf);
    free(s);
}

static void test_bad_lengths(void **state)
{
    (void)state;
    uint8_t *buf = malloc(PX_NET_STREAM_MAX);
    uint8_t s[4 + 60 + 4 + 8];
    size_t lens[1] = {60};
    size_t n = put_frame(s, 0, 0, 60);
    static const uint32_t bad[] = {0, PX_NET_STREAM_MAX + 1, 0xffffffffu};
    for (unsigned b = 0; b < 3; b++) {
        px_stream_hdr(bad[b], s + n);
        memset(s + n + 4, 0xaa, 8);
        for (size_t split = 0; split <= sizeof(s); split++) {
            px_stream_dec d;
            px_stream_dec_init(&d, buf);
            got g = {0};
            px_errmsg em = {{0}};
            px_err e1 = px_stream_dec_feed(&d, s, split, on_frame, &g, &em);
            px_err e2 = e1 != PX_OK ? e1
                                    : px_stream_dec_feed(&d, s + split, sizeof(s) - split, on_frame,
                                                         &g, &em);
            assert_int_equal(e2, PX_E_PROTO);
            check_frames(&g, lens, 1); /* the good frame before it, nothing after */
            char want[96];
            snprintf(want, sizeof(want), "frame length %u at stream offset 64 is %s", bad[b],
                     bad[b] == 0 ? "0" : "over 65535");
            assert_string_equal(em.text, want);
            /* The decoder stays failed until it is started again. */
            assert_int_equal(px_stream_dec_feed(&d, s, 1, on_frame, &g, NULL), PX_E_PROTO);
            assert_int_equal(g.n, 1);
            got_free(&g);
        }
    }
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hdr_is_big_endian), cmocka_unit_test(test_every_split),
        cmocka_unit_test(test_many_in_one_chunk), cmocka_unit_test(test_max_frame),
        cmocka_unit_test(test_bad_lengths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
