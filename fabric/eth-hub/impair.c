/* netem-like impairment stage. See impair.h. */
#include "impair.h"

#include <stdlib.h>
#include <string.h>

#define MIN_SHIFT 6u  /* smallest buffer class: 64 bytes */
#define NCLASS    11u /* 64 B .. 64 KiB */

typedef struct imp_buf {
    struct imp_buf *next; /* free list */
    uint8_t cls;
    uint8_t data[];
} imp_buf;

typedef struct imp_item {
    uint64_t due, seq, tag;
    imp_buf *buf;
    uint32_t len;
} imp_item;

struct px_impair {
    px_impair_cfg cfg;             /* limit already defaulted */
    double p_good_bad, p_bad_good; /* Gilbert transitions (loss_burst > 1) */
    bool bad;
    uint64_t rng;
    uint64_t link_free_ns; /* rate: the last queued frame's due time */
    uint64_t seq;
    imp_item *heap;
    uint32_t n, cap;
    imp_buf *idle[NCLASS];
    size_t idle_bytes;
    imp_buf *out; /* the frame last popped: the caller reads it until our next call */
    px_impair_stats stats;
};

/* ---- PRNG: splitmix64 (Steele, Lea, Flood 2014) ---- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double rng_unit(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) * 0x1.0p-53;
}

static bool chance(px_impair *im, uint32_t ppm)
{
    if (ppm == 0)
        return false;
    if (ppm >= PX_IMPAIR_PPM)
        return true;
    return (uint32_t)(((rng_next(&im->rng) >> 32) * PX_IMPAIR_PPM) >> 32) < ppm;
}

/* ---- buffers ---- */

static size_t class_size(unsigned c)
{
    return (size_t)1 << (MIN_SHIFT + c);
}

static unsigned class_of(size_t len)
{
    unsigned c = 0;
    while (class_size(c) < len)
        c++;
    return c;
}

static imp_buf *buf_get(px_impair *im, size_t len)
{
    unsigned c = class_of(len);
    imp_buf *b = im->idle[c];
    if (b) {
        im->idle[c] = b->next;
        im->idle_bytes -= class_size(c);
        return b;
    }
    b = malloc(sizeof(*b) + class_size(c));
    if (b)
        b->cls = (uint8_t)c;
    return b;
}

static void buf_put(px_impair *im, imp_buf *b)
{
    size_t sz = class_size(b->cls);
    if (im->idle_bytes + sz > PX_IMPAIR_CACHE_BYTES) {
        free(b);
        return;
    }
    b->next = im->idle[b->cls];
    im->idle[b->cls] = b;
    im->idle_bytes += sz;
}

static void release_out(px_impair *im)
{
    if (im->out) {
        buf_put(im, im->out);
        im->out = NULL;
    }
}

/* ---- the heap, ordered by (due, seq) ---- */

static bool before(const imp_item *a, const imp_item *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static px_err heap_push(px_impair *im, imp_item it)
{
    if (im->n == im->cap) {
        if (im->cap > UINT32_MAX / 2)
            return PX_E_NOMEM;
        uint32_t cap = im->cap ? 2 * im->cap : 64;
        imp_item *h = realloc(im->heap, cap * sizeof(*h));
        if (!h)
            return PX_E_NOMEM;
        im->heap = h;
        im->cap = cap;
    }
    uint32_t i = im->n++;
    while (i > 0 && before(&it, &im->heap[(i - 1) / 2])) {
        im->heap[i] = im->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    im->heap[i] = it;
    return PX_OK;
}

static imp_item heap_pop(px_impair *im)
{
    imp_item top = im->heap[0];
    imp_item last = im->heap[--im->n];
    uint32_t i = 0;
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = l;
        if (l >= im->n)
            break;
        if (r < im->n && before(&im->heap[r], &im->heap[l]))
            m = r;
        if (!before(&im->heap[m], &last))
            break;
        im->heap[i] = im->heap[m];
        i = m;
    }
    if (im->n > 0)
        im->heap[i] = last;
    return top;
}

/* ---- the stage ---- */

bool px_impair_cfg_active(const px_impair_cfg *c)
{
    return c->delay_ns || c->jitter_ns || c->loss_ppm || c->duplicate_ppm || c->corrupt_ppm ||
           c->rate_bps;
}

px_err px_impair_new(uint64_t seed, px_impair **out)
{
    px_impair *im = calloc(1, sizeof(*im));
    *out = im;
    if (!im)
        return PX_E_NOMEM;
    im->rng = seed;
    px_impair_set(im, &(px_impair_cfg){0});
    return PX_OK;
}

void px_impair_free(px_impair *im)
{
    if (!im)
        return;
    px_impair_clear(im);
    for (unsigned c = 0; c < NCLASS; c++)
        while (im->idle[c]) {
            imp_buf *b = im->idle[c];
            im->idle[c] = b->next;
            free(b);
        }
    free(im->heap);
    free(im);
}

void px_impair_set(px_impair *im, const px_impair_cfg *c)
{
    im->cfg = *c;
    if (im->cfg.limit == 0)
        im->cfg.limit = PX_IMPAIR_DEFAULT_LIMIT;
    /* Gilbert: leave "bad" with r = 1 / burst so bursts average `burst`;
     * enter it with q so that q / (q + r) = loss. q is a probability, so
     * q <= 1 caps r at (1 - loss) / loss. */
    double loss = (double)c->loss_ppm / PX_IMPAIR_PPM;
    if (c->loss_burst > 1 && loss > 0 && loss < 1) {
        double r = 1.0 / c->loss_burst;
        if (r > (1 - loss) / loss)
            r = (1 - loss) / loss;
        im->p_bad_good = r;
        im->p_good_bad = r * loss / (1 - loss);
    }
}

static bool lose(px_impair *im)
{
    const px_impair_cfg *c = &im->cfg;
    if (c->loss_ppm == 0 || c->loss_ppm >= PX_IMPAIR_PPM || c->loss_burst <= 1) {
        im->bad = false;
        return chance(im, c->loss_ppm);
    }
    double u = rng_unit(&im->rng);
    if (im->bad)
        im->bad = !(u < im->p_bad_good);
    else
        im->bad = u < im->p_good_bad;
    return im->bad;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - 1 - b ? UINT64_MAX - 1 : a + b;
}

/* When a copy of len bytes pushed at now is due. */
static uint64_t due_time(px_impair *im, uint64_t now, size_t len)
{
    const px_impair_cfg *c = &im->cfg;
    if (c->delay_ns && chance(im, c->reorder_ppm)) {
        im->stats.reordered++;
        return now;
    }
    uint64_t d = c->delay_ns;
    if (c->jitter_ns) {
        uint64_t j = c->jitter_ns > UINT64_MAX / 4 ? UINT64_MAX / 4 : c->jitter_ns;
        uint64_t u = rng_next(&im->rng) % (2 * j + 1); /* the bias is below 2^-60 */
        d = u >= j ? add_sat(d, u - j) : (d > j - u ? d - (j - u) : 0);
    }
    uint64_t due = add_sat(now, d);
    if (c->rate_bps) {
        uint64_t bits_ns = (uint64_t)len * 8u * 1000000000u;
        uint64_t tx = bits_ns / c->rate_bps + (bits_ns % c->rate_bps != 0);
        if (due < im->link_free_ns)
            due = im->link_free_ns;
        due = add_sat(due, tx);
        im->link_free_ns = due;
    }
    return due;
}

static px_err enqueue(px_impair *im, uint64_t now, const uint8_t *f, size_t len, uint64_t tag,
                      bool corrupt)
{
    imp_buf *b = buf_get(im, len);
    if (!b)
        return PX_E_NOMEM;
    memcpy(b->data, f, len);
    if (corrupt && len > 0) {
        uint64_t r = rng_next(&im->rng);
        b->data[(r >> 3) % len] ^= (uint8_t)(1u << (r & 7));
        im->stats.corrupted++;
    }
    imp_item it = {.due = due_time(im, now, len),
                   .seq = im->seq++,
                   .tag = tag,
                   .buf = b,
                   .len = (uint32_t)len};
    px_err err = heap_push(im, it);
    if (err != PX_OK)
        buf_put(im, b);
    return err;
}

px_err px_impair_push(px_impair *im, uint64_t now_ns, const uint8_t *f, size_t len, uint64_t tag)
{
    release_out(im);
    if (len > PX_IMPAIR_MAX_FRAME)
        return PX_E_TOOBIG;
    im->stats.in++;
    if (lose(im)) {
        im->stats.lost++;
        return PX_OK;
    }
    bool dup = chance(im, im->cfg.duplicate_ppm);
    bool corrupt = chance(im, im->cfg.corrupt_ppm);
    if (im->n >= im->cfg.limit) {
        im->stats.overlimit++;
        return PX_E_AGAIN;
    }
    px_err err = enqueue(im, now_ns, f, len, tag, corrupt);
    if (err != PX_OK || !dup)
        return err;
    if (im->n >= im->cfg.limit) {
        im->stats.overlimit++;
        return PX_OK;
    }
    if (enqueue(im, now_ns, f, len, tag, false) == PX_OK)
        im->stats.duplicated++;
    return PX_OK;
}

bool px_impair_pop(px_impair *im, uint64_t now_ns, const uint8_t **f, size_t *len, uint64_t *tag)
{
    release_out(im);
    if (im->n == 0 || im->heap[0].due > now_ns)
        return false;
    imp_item it = heap_pop(im);
    im->out = it.buf;
    *f = it.buf->data;
    *len = it.len;
    *tag = it.tag;
    im->stats.out++;
    return true;
}

uint64_t px_impair_next_ns(const px_impair *im)
{
    return im->n ? im->heap[0].due : UINT64_MAX;
}

void px_impair_clear(px_impair *im)
{
    release_out(im);
    for (uint32_t i = 0; i < im->n; i++)
        buf_put(im, im->heap[i].buf);
    im->n = 0;
    im->link_free_ns = 0;
}

void px_impair_stats_get(const px_impair *im, px_impair_stats *out)
{
    *out = im->stats;
    out->queued = im->n;
}
