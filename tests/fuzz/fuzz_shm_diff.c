/* plexus — libFuzzer target: ivshmem twin/diff records (fabric/shm/diff.h),
 * what a member applies to its region when another host's DIFF arrives.
 *
 * Input: byte 0 picks the mode (bit 0) and a misalignment of the region
 * (bits 1-3); bytes 1-2 (little-endian) give the region size, 1..4096.
 *
 * Mode 0, records: the rest is a DIFF message's records.
 *   - px_shmdiff_check and px_shmdiff_apply agree, and agree with a
 *     reference walk written here with 64-bit sums;
 *   - a rejection names the record, and region and twin are untouched
 *     (nothing of the good records before the bad one is written);
 *   - an acceptance writes exactly the records' bytes into region and twin
 *     and reports their total;
 *   - region, twin and records are allocated at their exact sizes, so
 *     ASan catches any access out of bounds.
 *
 * Mode 1, round trip: byte 3 picks the buffer size (64..319); the rest is
 * writes of 4 bytes each (offset u16, length u8, value) into the region.
 *   - every buffer of the scan is within its size, passes the check and
 *     carries only changed bytes;
 *   - the records applied to a copy of the old twin give the region, the
 *     twin equals the region, `changed` counts the differing bytes, and a
 *     second scan finds nothing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fabric/shm/diff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

#define HDR PX_SHMDIFF_REC_HDR

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The reference: records valid for a region of rsize bytes? */
static int ref_valid(const uint8_t *r, size_t n, uint64_t rsize, uint64_t *total)
{
    uint64_t off = 0, sum = 0;
    while (off < n) {
        if (n - off < HDR)
            return 0;
        uint64_t o = rd32(r + off), l = rd32(r + off + 4);
        if (l == 0 || l > n - off - HDR || o + l > rsize)
            return 0;
        sum += l;
        off += HDR + l;
    }
    *total = sum;
    return 1;
}

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 29 + seed);
}

static void records(const uint8_t *in, size_t n, size_t rsize, unsigned mis)
{
    uint8_t *recs = malloc(n ? n : 1);
    uint8_t *rbase = malloc(rsize + mis);
    uint8_t *twin = malloc(rsize);
    uint8_t *want_r = malloc(rsize), *want_t = malloc(rsize);
    CHECK(recs && rbase && twin && want_r && want_t);
    memcpy(recs, in, n);
    uint8_t *region = rbase + mis;
    fill(region, rsize, 1);
    fill(twin, rsize, 2);
    memcpy(want_r, region, rsize);
    memcpy(want_t, twin, rsize);

    uint64_t total = 0;
    int ok = ref_valid(recs, n, rsize, &total);
    px_errmsg em;
    em.text[0] = '\0';
    px_err c = px_shmdiff_check(recs, n, rsize, &em);
    CHECK(ok ? c == PX_OK : c == PX_E_PROTO);
    CHECK(ok || strstr(em.text, "record") != NULL);

    if (ok)
        for (size_t off = 0; off < n;) {
            uint32_t o = rd32(recs + off), l = rd32(recs + off + 4);
            memcpy(want_r + o, recs + off + HDR, l);
            memcpy(want_t + o, recs + off + HDR, l);
            off += HDR + l;
        }
    uint64_t applied = 12345;
    em.text[0] = '\0';
    px_err a = px_shmdiff_apply(recs, n, region, twin, rsize, &applied, &em);
    CHECK(a == c);
    CHECK(applied == (ok ? total : 0));
    CHECK(ok || strstr(em.text, "record") != NULL);
    CHECK(memcmp(region, want_r, rsize) == 0);
    CHECK(memcmp(twin, want_t, rsize) == 0);

    free(want_t);
    free(want_r);
    free(twin);
    free(rbase);
    free(recs);
}

static void round_trip(const uint8_t *in, size_t n, size_t rsize, unsigned mis)
{
    if (n < 1)
        return;
    size_t cap = 64 + in[0] % 256;
    in++;
    n--;
    uint8_t *rbase = malloc(rsize + mis);
    uint8_t *twin = malloc(rsize), *old = malloc(rsize), *copy = malloc(rsize);
    uint8_t *buf = malloc(cap);
    CHECK(rbase && twin && old && copy && buf);
    uint8_t *region = rbase + mis;
    fill(region, rsize, 3);
    memcpy(twin, region, rsize);
    memcpy(old, twin, rsize);
    memcpy(copy, twin, rsize);
    for (size_t i = 0; i + 4 <= n; i += 4) {
        size_t at = (in[i] | (size_t)in[i + 1] << 8) % rsize;
        for (size_t k = at; k < at + in[i + 2] && k < rsize; k++)
            region[k] = in[i + 3];
    }
    uint64_t differ = 0;
    for (size_t i = 0; i < rsize; i++)
        differ += region[i] != old[i];

    px_shmdiff_scan sc;
    px_shmdiff_begin(&sc, region, twin, rsize);
    size_t got, calls = 0;
    while ((got = px_shmdiff_next(&sc, buf, cap)) > 0) {
        CHECK(got <= cap && ++calls <= rsize);
        px_errmsg em;
        CHECK(px_shmdiff_check(buf, got, rsize, &em) == PX_OK);
        for (size_t off = 0; off < got;) {
            uint32_t o = rd32(buf + off), l = rd32(buf + off + 4);
            for (uint32_t k = 0; k < l; k++)
                CHECK(buf[off + HDR + k] != old[o + k] && buf[off + HDR + k] == region[o + k]);
            off += HDR + l;
        }
        uint64_t applied = 0;
        CHECK(px_shmdiff_apply(buf, got, copy, NULL, rsize, &applied, &em) == PX_OK);
    }
    CHECK(sc.pos == rsize && sc.changed == differ);
    CHECK(memcmp(copy, region, rsize) == 0);
    CHECK(memcmp(twin, region, rsize) == 0);
    px_shmdiff_begin(&sc, region, twin, rsize);
    CHECK(px_shmdiff_next(&sc, buf, cap) == 0);

    free(buf);
    free(copy);
    free(old);
    free(twin);
    free(rbase);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    unsigned mode = data[0] & 1, mis = (data[0] >> 1) & 7;
    size_t rsize = 1 + (size_t)((data[1] | (unsigned)data[2] << 8) % 4096);
    if (mode == 0)
        records(data + 3, size - 3, rsize, mis);
    else
        round_trip(data + 3, size - 3, rsize, mis);
    return 0;
}
