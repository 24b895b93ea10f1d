/* Twin/diff of an ivshmem region. See diff.h.
 *
 * The scan is a skip loop: almost all of a region is unchanged at any one
 * doorbell, so the cost that matters is comparing equal memory. It reads
 * the region 64 bytes at a time as aligned 8-byte words and goes to bytes
 * only inside a word that differs. Every region word is read exactly once
 * (a volatile load) and everything after works on that value: guests may
 * be writing the region while we scan, and the twin must hold exactly what
 * the records carry, or a later scan would miss a change or send a stale
 * byte.
 */
#include "diff.h"

#include <string.h>

#define WORD  8u
#define BLOCK 64u

#define ONES  UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/* Offsets are u32 on the wire: a region is at most 4 GiB. */
#define MAX_SIZE (UINT64_C(1) << 32)

static void put32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The buffer being filled and the record still growing at its end. */
typedef struct out {
    uint8_t *buf;
    size_t cap;
    size_t len;
    size_t rec; /* header of the open record */
    bool open;
    uint64_t changed;
} out;

static void rec_close(out *o)
{
    if (!o->open)
        return;
    put32le(o->buf + o->rec + 4, (uint32_t)(o->len - o->rec - PX_SHMDIFF_REC_HDR));
    o->open = false;
}

/* Room for n more changed bytes starting at region offset off; opens a
 * record if none is open. Runs arrive in order and any equal byte closes
 * the record, so an open record always ends right before off. */
static bool rec_room(out *o, uint64_t off, size_t n)
{
    if (o->open)
        return o->cap - o->len >= n;
    if (o->cap - o->len < PX_SHMDIFF_REC_HDR + n)
        return false;
    o->rec = o->len;
    put32le(o->buf + o->len, (uint32_t)off);
    o->len += PX_SHMDIFF_REC_HDR;
    o->open = true;
    return true;
}

/* One byte read from the region at off. Returns false when the buffer is
 * full: the byte was not taken and the twin keeps its old value. */
static bool do_byte(out *o, uint8_t *twin, uint64_t off, uint8_t b)
{
    if (b == twin[off]) {
        rec_close(o);
        return true;
    }
    if (!rec_room(o, off, 1)) {
        rec_close(o);
        return false;
    }
    o->buf[o->len++] = b;
    twin[off] = b;
    o->changed++;
    return true;
}

/* One aligned word w read from the region at off. Returns how many of its
 * bytes were taken: 8, or fewer when the buffer filled up. */
static unsigned do_word(out *o, uint8_t *twin, uint64_t off, uint64_t w)
{
    uint64_t t;
    memcpy(&t, twin + off, WORD);
    uint64_t x = w ^ t;
    if (x == 0) {
        rec_close(o);
        return WORD;
    }
    uint8_t b[WORD], d[WORD];
    memcpy(b, &w, WORD);
    memcpy(d, &x, WORD);
    /* Every byte differs (no zero byte in x): the common case of a buffer
     * the guest rewrote, taken whole. */
    if (((x - ONES) & ~x & HIGHS) == 0 && rec_room(o, off, WORD)) {
        memcpy(o->buf + o->len, b, WORD);
        o->len += WORD;
        memcpy(twin + off, b, WORD);
        o->changed += WORD;
        return WORD;
    }
    for (unsigned i = 0; i < WORD; i++) {
        if (d[i] == 0) {
            rec_close(o);
            continue;
        }
        if (!rec_room(o, off + i, 1)) {
            rec_close(o);
            return i;
        }
        o->buf[o->len++] = b[i];
        twin[off + i] = b[i];
        o->changed++;
    }
    return WORD;
}

void px_shmdiff_begin(px_shmdiff_scan *sc, const volatile uint8_t *region, uint8_t *twin,
                      uint64_t size)
{
    sc->region = region;
    sc->twin = twin;
    sc->size = size > MAX_SIZE ? MAX_SIZE : size;
    sc->pos = 0;
    sc->changed = 0;
}

size_t px_shmdiff_next(px_shmdiff_scan *sc, uint8_t *buf, size_t cap)
{
    /* A record's length is a u32: keep one buffer's worth below that. */
    out o = {.buf = buf, .cap = cap > UINT32_MAX ? UINT32_MAX : cap};
    if (!sc || !buf || o.cap < PX_SHMDIFF_REC_HDR + 1)
        return 0;
    const volatile uint8_t *rg = sc->region;
    uint8_t *tw = sc->twin;
    const uint64_t size = sc->size;
    uint64_t pos = sc->pos;

    /* Bytes up to the first aligned word (a split run resumes mid-word). */
    while (pos < size && ((uintptr_t)(rg + pos) & (WORD - 1))) {
        if (!do_byte(&o, tw, pos, rg[pos]))
            goto full;
        pos++;
    }
    while (size - pos >= BLOCK) {
        const volatile uint64_t *rw = (const volatile uint64_t *)(rg + pos);
        uint64_t r[BLOCK / WORD], t[BLOCK / WORD], x = 0;
        memcpy(t, tw + pos, BLOCK);
        for (unsigned k = 0; k < BLOCK / WORD; k++) {
            r[k] = rw[k];
            x |= r[k] ^ t[k];
        }
        if (x == 0) {
            rec_close(&o);
            pos += BLOCK;
            continue;
        }
        for (unsigned k = 0; k < BLOCK / WORD; k++) {
            unsigned took = do_word(&o, tw, pos, r[k]);
            pos += took;
            if (took < WORD)
                goto full;
        }
    }
    while (size - pos >= WORD) {
        unsigned took = do_word(&o, tw, pos, *(const volatile uint64_t *)(rg + pos));
        pos += took;
        if (took < WORD)
            goto full;
    }
    while (pos < size) {
        if (!do_byte(&o, tw, pos, rg[pos]))
            goto full;
        pos++;
    }
full:
    rec_close(&o);
    sc->pos = pos;
    sc->changed += o.changed;
    return o.len;
}

/* ---- receiving ---- */

/* The record starting at recs[off], the idx-th: its offset and length if
 * it is whole and inside a region of `size` bytes. All sums in 64 bits, so
 * offset + length cannot wrap. */
static px_err rec_get(const uint8_t *recs, size_t len, size_t off, size_t idx, uint64_t size,
                      uint32_t *roff, uint32_t *rlen, px_errmsg *em)
{
    size_t left = len - off;
    if (left < PX_SHMDIFF_REC_HDR)
        return px_errmsg_set(em, PX_E_PROTO,
                             "diff record %zu at byte %zu: header truncated (%zu bytes left, a "
                             "header is %u)",
                             idx, off, left, PX_SHMDIFF_REC_HDR);
    uint32_t o = get32le(recs + off), n = get32le(recs + off + 4);
    if (n == 0)
        return px_errmsg_set(em, PX_E_PROTO,
                             "diff record %zu at byte %zu (region offset %u): length 0", idx, off,
                             o);
    if ((uint64_t)n > left - PX_SHMDIFF_REC_HDR)
        return px_errmsg_set(em, PX_E_PROTO,
                             "diff record %zu at byte %zu (region offset %u): data truncated (%u "
                             "bytes claimed, %zu left)",
                             idx, off, o, n, left - PX_SHMDIFF_REC_HDR);
    if ((uint64_t)o + n > size)
        return px_errmsg_set(em, PX_E_PROTO,
                             "diff record %zu at byte %zu: region offset %u + length %u passes "
                             "the region's end (%llu bytes)",
                             idx, off, o, n, (unsigned long long)size);
    *roff = o;
    *rlen = n;
    return PX_OK;
}

px_err px_shmdiff_check(const uint8_t *recs, size_t len, uint64_t size, px_errmsg *em)
{
    if (!recs && len)
        return px_errmsg_set(em, PX_E_INVAL, "px_shmdiff_check: NULL records");
    size_t off = 0;
    for (size_t idx = 0; off < len; idx++) {
        uint32_t o, n;
        px_err err = rec_get(recs, len, off, idx, size, &o, &n, em);
        if (err)
            return err;
        off += PX_SHMDIFF_REC_HDR + (size_t)n;
    }
    return PX_OK;
}

px_err px_shmdiff_apply(const uint8_t *recs, size_t len, volatile uint8_t *region, uint8_t *twin,
                        uint64_t size, uint64_t *applied, px_errmsg *em)
{
    if (applied)
        *applied = 0;
    if (len && !region)
        return px_errmsg_set(em, PX_E_INVAL, "px_shmdiff_apply: NULL region");
    px_err err = px_shmdiff_check(recs, len, size, em);
    if (err)
        return err;
    uint64_t total = 0;
    size_t off = 0;
    for (size_t idx = 0; off < len; idx++) {
        uint32_t o, n;
        rec_get(recs, len, off, idx, size, &o, &n, NULL);
        const uint8_t *data = recs + off + PX_SHMDIFF_REC_HDR;
        /* A plain copy into the region: each byte is stored once, and how
         * our stores interleave with a guest's is not ordered by ivshmem
         * anyway. Only reads need volatile (the scan must use the value it
         * compared). */
        memcpy((void *)(uintptr_t)(region + o), data, n);
        if (twin)
            memcpy(twin + o, data, n);
        total += n;
        off += PX_SHMDIFF_REC_HDR + (size_t)n;
    }
    if (applied)
        *applied = total;
    return PX_OK;
}
