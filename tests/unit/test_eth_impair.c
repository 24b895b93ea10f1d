/* Unit tests: fabric/eth-hub/impair — delay, jitter, loss (independent and
 * in bursts), duplication, reordering, corruption, rate, limit, set() while
 * frames wait, clear. Random impairments run over many frames with a fixed
 * seed and are checked against what the settings ask for, with tolerances
 * of several standard deviations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fabric/eth-hub/impair.h"

#define MS 1000000ull
#define T0 (1000 * MS)

static uint8_t frame[1500];

static px_impair *stage(uint64_t seed, const px_impair_cfg *c)
{
    for (size_t i = 0; i < sizeof(frame); i++)
        frame[i] = (uint8_t)(i * 13 + 5);
    px_impair *im;
    assert_int_equal(px_impair_new(seed, &im), PX_OK);
    if (c)
        px_impair_set(im, c);
    return im;
}

static px_impair_stats stats(const px_impair *im)
{
    px_impair_stats s;
    px_impair_stats_get(im, &s);
    return s;
}

/* Pop one frame that must be due exactly at `due`: not a nanosecond earlier. */
static uint64_t pop_at(px_impair *im, uint64_t due, size_t want_len)
{
    const uint8_t *f;
    size_t len;
    uint64_t tag;
    assert_int_equal(px_impair_next_ns(im), due);
    if (due > 0)
        assert_false(px_impair_pop(im, due - 1, &f, &len, &tag));
    assert_true(px_impair_pop(im, due, &f, &len, &tag));
    assert_int_equal(len, want_len);
    assert_memory_equal(f, frame, len);
    return tag;
}

static void test_passthrough_and_active(void **state)
{
    (void)state;
    px_impair_cfg c = {0};
    assert_false(px_impair_cfg_active(&c));
    c.limit = 5;
    c.loss_burst = 3;
    c.reorder_ppm = 1000; /* without a delay: nothing to reorder */
    assert_false(px_impair_cfg_active(&c));
    px_impair_cfg one[] = {{.delay_ns = 1},      {.jitter_ns = 1},   {.loss_ppm = 1},
                           {.duplicate_ppm = 1}, {.corrupt_ppm = 1}, {.rate_bps = 1}};
    for (size_t i = 0; i < sizeof(one) / sizeof(one[0]); i++)
        assert_true(px_impair_cfg_active(&one[i]));

    /* A stage with nothing set releases frames at once, in order. */
    px_impair *im = stage(1, NULL);
    assert_int_equal(px_impair_next_ns(im), UINT64_MAX);
    for (uint64_t i = 0; i < 3; i++)
        assert_int_equal(px_impair_push(im, T0, frame, 60, 100 + i), PX_OK);
    for (uint64_t i = 0; i < 3; i++)
        assert_int_equal(pop_at(im, T0, 60), 100 + i);
    const uint8_t *f;
    size_t len;
    uint64_t tag;
    assert_false(px_impair_pop(im, UINT64_MAX, &f, &len, &tag));
    px_impair_stats s = stats(im);
    assert_int_equal(s.in, 3);
    assert_int_equal(s.out, 3);
    assert_int_equal(s.queued, 0);
    px_impair_free(im);
    px_impair_free(NULL);
}

static void test_delay(void **state)
{
    (void)state;
    px_impair_cfg c = {.delay_ns = 10 * MS};
    px_impair *im = stage(1, &c);
    for (uint64_t i = 0; i < 5; i++)
        assert_int_equal(px_impair_push(im, T0 + i * MS, frame, 100 + i, i), PX_OK);
    assert_int_equal(stats(im).queued, 5);
    for (uint64_t i = 0; i < 5; i++)
        assert_int_equal(pop_at(im, T0 + 10 * MS + i * MS, 100 + i), i);
    assert_int_equal(px_impair_next_ns(im), UINT64_MAX);

    /* Largest frame; one byte more is refused. */
    static uint8_t big[PX_IMPAIR_MAX_FRAME + 1];
    memset(big, 0x77, sizeof(big));
    assert_int_equal(px_impair_push(im, T0, big, sizeof(big), 0), PX_E_TOOBIG);
    assert_int_equal(px_impair_push(im, T0, big, PX_IMPAIR_MAX_FRAME, 9), PX_OK);
    const uint8_t *f;
    size_t len;
    uint64_t tag;
    assert_true(px_impair_pop(im, T0 + 10 * MS, &f, &len, &tag));
    assert_int_equal(len, PX_IMPAIR_MAX_FRAME);
    assert_memory_equal(f, big, len);
    assert_int_equal(stats(im).in, 6);
    px_impair_free(im);
}

/* Push n frames at T0, pop them all, return their due times (sorted). */
static void dues(px_impair *im, uint32_t n, uint64_t *out)
{
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(px_impair_push(im, T0, frame, 60, i), PX_OK);
    for (uint32_t i = 0; i < n; i++) {
        out[i] = px_impair_next_ns(im);
        const uint8_t *f;
        size_t len;
        uint64_t tag;
        assert_true(px_impair_pop(im, out[i], &f, &len, &tag));
        if (i > 0)
            assert_true(out[i] >= out[i - 1]);
    }
}

static void test_jitter(void **state)
{
    (void)state;
    enum { N = 1000 };
    static uint64_t d[N];
    px_impair_cfg c = {.delay_ns = 10 * MS, .jitter_ns = 2 * MS, .limit = N};
    px_impair *im = stage(7, &c);
    dues(im, N, d);
    double sum = 0;
    for (int i = 0; i < N; i++) {
        assert_true(d[i] >= T0 + 8 * MS && d[i] <= T0 + 12 * MS);
        sum += (double)(d[i] - T0);
    }
    /* Uniform over the whole range: both ends reached, mean in the middle. */
    assert_true(d[0] < T0 + 8 * MS + 40000);
    assert_true(d[N - 1] > T0 + 12 * MS - 40000);
    assert_true(sum / N > 9.9 * MS && sum / N < 10.1 * MS);

    /* Jitter larger than the delay: never before now; a third at now. */
    c = (px_impair_cfg){.delay_ns = 1 * MS, .jitter_ns = 3 * MS, .limit = N};
    px_impair_set(im, &c);
    dues(im, N, d);
    int at_now = 0;
    for (int i = 0; i < N; i++) {
        assert_true(d[i] >= T0 && d[i] <= T0 + 4 * MS);
        at_now += d[i] == T0;
    }
    assert_in_range(at_now, 280, 390);

    /* The range includes both ends: 1 ns of jitter gives -1, 0 and +1. */
    c = (px_impair_cfg){.delay_ns = 10, .jitter_ns = 1, .limit = N};
    px_impair_set(im, &c);
    dues(im, 300, d);
    int seen[3] = {0};
    for (int i = 0; i < 300; i++) {
        assert_in_range(d[i], T0 + 9, T0 + 11);
        seen[d[i] - T0 - 9]++;
    }
    for (int k = 0; k < 3; k++)
        assert_in_range(seen[k], 60, 140);
    px_impair_free(im);
}

/* Push n frames, return the number lost and the mean length of runs of
 * consecutive losses. */
static uint64_t run_loss(px_impair *im, uint32_t n, double *mean_burst)
{
    uint64_t lost = 0, bursts = 0;
    bool prev = false;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t before = stats(im).lost;
        assert_int_equal(px_impair_push(im, T0, frame, 60, i), PX_OK);
        bool l = stats(im).lost != before;
        lost += l;
        bursts += l && !prev;
        prev = l;
        const uint8_t *f;
        size_t len;
        uint64_t tag;
        if (!l) {
            assert_true(px_impair_pop(im, T0, &f, &len, &tag));
            assert_int_equal(tag, i);
        }
    }
    *mean_burst = bursts ? (double)lost / (double)bursts : 0;
    return lost;
}

static void test_loss_independent(void **state)
{
    (void)state;
    px_impair_cfg c = {.loss_ppm = 100000}; /* 10 % */
    px_impair *im = stage(42, &c);
    double burst;
    /* 100000 frames: mean 10000, sd 95. */
    uint64_t lost = run_loss(im, 100000, &burst);
    assert_in_range(lost, 9600, 10400);
    assert_true(burst > 1.08 && burst < 1.14); /* geometric: 1 / (1 - p) = 1.111 */
    px_impair_stats s = stats(im);
    assert_int_equal(s.lost, lost);
    assert_int_equal(s.in, 100000);
    assert_int_equal(s.out, 100000 - lost);

    c.loss_ppm = 0;
    px_impair_set(im, &c);
    assert_int_equal(run_loss(im, 1000, &burst), 0);
    c.loss_ppm = PX_IMPAIR_PPM;
    px_impair_set(im, &c);
    assert_int_equal(run_loss(im, 1000, &burst), 1000);
    px_impair_free(im);
}

static void test_loss_bursts(void **state)
{
    (void)state;
    px_impair_cfg c = {.loss_ppm = 100000, .loss_burst = 5};
    px_impair *im = stage(43, &c);
    double burst;
    /* 200000 frames, ~4000 bursts of mean 5. */
    uint64_t lost = run_loss(im, 200000, &burst);
    assert_in_range(lost, 18500, 21500);
    assert_true(burst > 4.7 && burst < 5.3);

    /* 90 % loss cannot have bursts of only 2: they grow to 0.9 / 0.1 = 9. */
    c = (px_impair_cfg){.loss_ppm = 900000, .loss_burst = 2};
    px_impair_set(im, &c);
    lost = run_loss(im, 200000, &burst);
    assert_in_range(lost, 176000, 184000);
    assert_true(burst > 8.5 && burst < 9.5);
    px_impair_free(im);
}

static void test_duplicate(void **state)
{
    (void)state;
    enum { N = 50000 };
    px_impair_cfg c = {.duplicate_ppm = 200000, .limit = 2 * N};
    px_impair *im = stage(5, &c);
    for (uint32_t i = 0; i < N; i++)
        assert_int_equal(px_impair_push(im, T0, frame, 64, i), PX_OK);
    px_impair_stats s = stats(im);
    assert_in_range(s.duplicated, 9500, 10500);
    assert_int_equal(s.queued, N + s.duplicated);
    /* Copies follow their original, with the same tag and bytes. */
    uint64_t pops = 0, twice = 0, last = UINT64_MAX;
    const uint8_t *f;
    size_t len;
    uint64_t tag;
    while (px_impair_pop(im, T0, &f, &len, &tag)) {
        assert_int_equal(len, 64);
        assert_memory_equal(f, frame, 64);
        twice += tag == last;
        assert_true(last == UINT64_MAX || tag == last || tag == last + 1);
        last = tag;
        pops++;
    }
    assert_int_equal(pops, N + s.duplicated);
    assert_int_equal(twice, s.duplicated);
    px_impair_free(im);
}

static void test_reorder(void **state)
{
    (void)state;
    enum { N = 20000 };
    px_impair_cfg c = {.delay_ns = 10 * MS, .reorder_ppm = 250000, .limit = N};
    px_impair *im = stage(9, &c);
    for (uint32_t i = 0; i < N; i++)
        assert_int_equal(px_impair_push(im, T0 + i, frame, 60, i), PX_OK);
    px_impair_stats s = stats(im);
    assert_in_range(s.reordered, 4700, 5300);
    /* The reordered ones leave at their push time, ahead of every delayed one. */
    const uint8_t *f;
    size_t len;
    uint64_t tag, prev = 0;
    uint64_t early = 0;
    while (px_impair_pop(im, T0 + N, &f, &len, &tag)) {
        assert_true(early == 0 || tag > prev);
        prev = tag;
        early++;
    }
    assert_int_equal(early, s.reordered);
    uint64_t late = 0;
    while (px_impair_pop(im, T0 + 10 * MS + N, &f, &len, &tag))
        late++;
    assert_int_equal(early + late, N);

    /* Without a delay there is nothing to skip: nothing counted. */
    c.delay_ns = 0;
    px_impair_set(im, &c);
    for (uint32_t i = 0; i < 1000; i++)
        px_impair_push(im, T0, frame, 60, i);
    assert_int_equal(stats(im).reordered, s.reordered);
    px_impair_free(im);
}

static void test_corrupt(void **state)
{
    (void)state;
    enum { N = 20000 };
    px_impair_cfg c = {.corrupt_ppm = 300000, .limit = N};
    px_impair *im = stage(11, &c);
    uint64_t changed = 0;
    for (uint32_t i = 0; i < N; i++) {
        size_t n = 14 + i % 200;
        assert_int_equal(px_impair_push(im, T0, frame, n, i), PX_OK);
        const uint8_t *f;
        size_t len;
        uint64_t tag;
        assert_true(px_impair_pop(im, T0, &f, &len, &tag));
        assert_int_equal(len, n);
        int bits = 0;
        for (size_t k = 0; k < n; k++)
            bits += __builtin_popcount(f[k] ^ frame[k]);
        assert_true(bits <= 1);
        changed += bits;
    }
    uint64_t corrupted = stats(im).corrupted;
    assert_int_equal(changed, corrupted);
    assert_in_range(corrupted, 5700, 6300);
    px_impair_free(im);
}

static void test_rate(void **state)
{
    (void)state;
    /* 1 Mbit/s: 125 bytes take 1 ms, 250 bytes 2 ms. */
    px_impair_cfg c = {.rate_bps = 1000000};
    px_impair *im = stage(1, &c);
    for (uint64_t i = 0; i < 4; i++)
        assert_int_equal(px_impair_push(im, T0, frame, 125, i), PX_OK);
    assert_int_equal(px_impair_push(im, T0, frame, 250, 4), PX_OK);
    for (uint64_t i = 0; i < 4; i++)
        assert_int_equal(pop_at(im, T0 + (i + 1) * MS, 125), i);
    assert_int_equal(pop_at(im, T0 + 6 * MS, 250), 4);

    /* An idle link starts at once; with a delay, the link comes after it. */
    c.delay_ns = 5 * MS;
    px_impair_set(im, &c);
    assert_int_equal(px_impair_push(im, T0 + 100 * MS, frame, 125, 0), PX_OK);
    assert_int_equal(px_impair_push(im, T0 + 100 * MS, frame, 125, 1), PX_OK);
    assert_int_equal(pop_at(im, T0 + 106 * MS, 125), 0);
    assert_int_equal(pop_at(im, T0 + 107 * MS, 125), 1);

    /* Transmission times round up: never faster than the rate. */
    c = (px_impair_cfg){.rate_bps = 3};
    px_impair_set(im, &c);
    assert_int_equal(px_impair_push(im, T0 + 200 * MS, frame, 1, 0), PX_OK);
    assert_int_equal(px_impair_next_ns(im), T0 + 200 * MS + 2666666667ull);
    px_impair_free(im);
}

static void test_limit(void **state)
{
    (void)state;
    px_impair_cfg c = {.delay_ns = MS, .limit = 5};
    px_impair *im = stage(1, &c);
    for (uint64_t i = 0; i < 5; i++)
        assert_int_equal(px_impair_push(im, T0, frame, 60, i), PX_OK);
    assert_int_equal(px_impair_push(im, T0, frame, 60, 5), PX_E_AGAIN);
    assert_int_equal(px_impair_push(im, T0, frame, 60, 6), PX_E_AGAIN);
    px_impair_stats s = stats(im);
    assert_int_equal(s.overlimit, 2);
    assert_int_equal(s.queued, 5);
    assert_int_equal(pop_at(im, T0 + MS, 60), 0);
    assert_int_equal(px_impair_push(im, T0, frame, 60, 7), PX_OK);
    assert_int_equal(stats(im).queued, 5);

    /* A duplicate that finds no room is dropped and counted; the original stays. */
    px_impair_clear(im);
    c = (px_impair_cfg){.delay_ns = MS, .duplicate_ppm = PX_IMPAIR_PPM, .limit = 3};
    px_impair_set(im, &c);
    assert_int_equal(px_impair_push(im, T0, frame, 60, 0), PX_OK);
    assert_int_equal(px_impair_push(im, T0, frame, 60, 1), PX_OK);
    s = stats(im);
    assert_int_equal(s.queued, 3);
    assert_int_equal(s.duplicated, 1);
    assert_int_equal(s.overlimit, 3);

    /* The default limit is netem's 1000. */
    px_impair_clear(im);
    c = (px_impair_cfg){.delay_ns = MS};
    px_impair_set(im, &c);
    for (uint64_t i = 0; i < 1000; i++)
        assert_int_equal(px_impair_push(im, T0, frame, 60, i), PX_OK);
    assert_int_equal(px_impair_push(im, T0, frame, 60, 1000), PX_E_AGAIN);
    px_impair_free(im);
}

static void test_set_while_queued_and_clear(void **state)
{
    (void)state;
    px_impair_cfg c = {.delay_ns = 10 * MS};
    px_impair *im = stage(1, &c);
    assert_int_equal(px_impair_push(im, T0, frame, 60, 1), PX_OK);
    c.delay_ns = MS;
    px_impair_set(im, &c);
    assert_int_equal(px_impair_push(im, T0, frame, 60, 2), PX_OK);
    assert_int_equal(pop_at(im, T0 + MS, 60), 2);
    assert_int_equal(pop_at(im, T0 + 10 * MS, 60), 1);

    /* Equal due times leave in push order. */
    c.delay_ns = 0;
    px_impair_set(im, &c);
    for (uint64_t i = 0; i < 100; i++)
        px_impair_push(im, T0, frame, 60, i);
    for (uint64_t i = 0; i < 100; i++)
        assert_int_equal(pop_at(im, T0, 60), i);

    c = (px_impair_cfg){.delay_ns = MS, .rate_bps = 1000000};
    px_impair_set(im, &c);
    for (uint64_t i = 0; i < 10; i++)
        px_impair_push(im, T0, frame, 1000, i);
    assert_int_equal(stats(im).queued, 10);
    px_impair_clear(im);
    assert_int_equal(stats(im).queued, 0);
    assert_int_equal(px_impair_next_ns(im), UINT64_MAX);
    const uint8_t *f;
    size_t len;
    uint64_t tag;
    assert_false(px_impair_pop(im, UINT64_MAX, &f, &len, &tag));
    /* The link is idle again after a clear. */
    assert_int_equal(px_impair_push(im, T0, frame, 125, 3), PX_OK);
    assert_int_equal(pop_at(im, T0 + 2 * MS, 125), 3);
    px_impair_free(im);
}

static void test_same_seed_same_run(void **state)
{
    (void)state;
    px_impair_cfg c = {.delay_ns = 5 * MS,
                       .jitter_ns = 4 * MS,
                       .loss_ppm = 50000,
                       .loss_burst = 3,
                       .duplicate_ppm = 100000,
                       .reorder_ppm = 100000,
                       .corrupt_ppm = 100000,
                       .rate_bps = 100000000,
                       .limit = 50};
    px_impair *a = stage(77, &c), *b = stage(77, &c), *other = stage(78, &c);
    uint64_t now = T0, diff = 0;
    for (uint32_t i = 0; i < 5000; i++) {
        size_t n = 14 + (i * 31) % 1400;
        px_err ea = px_impair_push(a, now, frame, n, i);
        assert_int_equal(px_impair_push(b, now, frame, n, i), ea);
        px_impair_push(other, now, frame, n, i);
        now += 200000;
        const uint8_t *fa, *fb, *fo;
        size_t la, lb, lo;
        uint64_t ta, tb, to;
        for (;;) {
            bool pa = px_impair_pop(a, now, &fa, &la, &ta);
            assert_int_equal(px_impair_pop(b, now, &fb, &lb, &tb), pa);
            bool po = px_impair_pop(other, now, &fo, &lo, &to);
            diff += pa != po || (pa && (to != ta || lo != la || memcmp(fa, fo, la) != 0));
            if (!pa)
                break;
            assert_int_equal(la, lb);
            assert_int_equal(ta, tb);
            assert_memory_equal(fa, fb, la);
            if (!po)
                while (px_impair_pop(other, now, &fo, &lo, &to))
                    ;
        }
    }
    px_impair_stats sa = stats(a), sb = stats(b);
    assert_memory_equal(&sa, &sb, sizeof(sa));
    assert_true(sa.lost > 0 && sa.duplicated > 0 && sa.reordered > 0 && sa.corrupted > 0);
    assert_true(diff > 0); /* another seed, another run */
    px_impair_free(a);
    px_impair_free(b);
    px_impair_free(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_passthrough_and_active),
        cmocka_unit_test(test_delay),
        cmocka_unit_test(test_jitter),
        cmocka_unit_test(test_loss_independent),
        cmocka_unit_test(test_loss_bursts),
        cmocka_unit_test(test_duplicate),
        cmocka_unit_test(test_reorder),
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_rate),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_set_while_queued_and_clear),
        cmocka_unit_test(test_same_seed_same_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
