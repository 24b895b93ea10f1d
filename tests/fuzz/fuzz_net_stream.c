/* plexus — libFuzzer target: QEMU -netdev stream framing
 * (devices/net/stream.h), the decoder every byte from a guest's NIC goes
 * through.
 *
 * Input: byte 0 seeds the chunking (how the stream is cut into feed calls:
 * 1 byte at a time, random sizes, or all at once); the rest is the stream.
 *
 * Properties checked on every input:
 *   - the frames delivered, each re-encoded as prefix + frame, are exactly
 *     a prefix of the stream, whatever the chunking;
 *   - every frame is 1..65535 bytes;
 *   - on PX_E_PROTO the bytes right after that prefix are a length of 0 or
 *     over 65535 and the message says so; the decoder stays failed;
 *   - on success what is left over is less than one whole frame, and the
 *     decoder's offset is the stream length.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/net/stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

typedef struct ctx {
    const uint8_t *in;
    size_t in_len;
    size_t matched; /* bytes of the stream re-encoded so far */
} ctx;

static void on_frame(void *ud, const uint8_t *f, size_t len)
{
    ctx *c = ud;
    CHECK(len >= 1 && len <= PX_NET_STREAM_MAX);
    uint8_t h[4];
    px_stream_hdr((uint32_t)len, h);
    CHECK(c->matched + 4 + len <= c->in_len);
    CHECK(memcmp(c->in + c->matched, h, 4) == 0);
    CHECK(memcmp(c->in + c->matched + 4, f, len) == 0);
    c->matched += 4 + len;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint32_t seed = data[0];
    /* A copy of exactly the stream's length, so ASan sees any over-read. */
    size_t n = size - 1;
    uint8_t *s = malloc(n ? n : 1);
    memcpy(s, data + 1, n);
    static uint8_t buf[PX_NET_STREAM_MAX];
    px_stream_dec d;
    px_stream_dec_init(&d, buf);
    ctx c = {.in = s, .in_len = n};
    px_errmsg em = {{0}};
    px_err e = PX_OK;
    size_t at = 0;
    while (at < n) {
        size_t k;
        if (seed % 4 == 0) {
            k = 1;
        } else if (seed % 4 == 1) {
            k = n - at;
        } else {
            seed = seed * 1103515245u + 12345u;
            k = 1 + (seed >> 8) % (seed % 4 == 2 ? 16 : 70000);
        }
        if (k > n - at)
            k = n - at;
        /* Each chunk in its own allocation too. */
        uint8_t *chunk = malloc(k);
        memcpy(chunk, s + at, k);
        e = px_stream_dec_feed(&d, chunk, k, on_frame, &c, &em);
        free(chunk);
        at += k;
        if (e != PX_OK)
            break;
    }
    if (e != PX_OK) {
        CHECK(e == PX_E_PROTO);
        CHECK(c.matched + 4 <= n);
        uint32_t bad = be32(s + c.matched);
        CHECK(bad == 0 || bad > PX_NET_STREAM_MAX);
        char want[80];
        snprintf(want, sizeof(want), "frame length %u at stream offset %zu is ", bad, c.matched);
        CHECK(strncmp(em.text, want, strlen(want)) == 0);
        size_t before = c.matched;
        CHECK(px_stream_dec_feed(&d, s, n, on_frame, &c, NULL) == PX_E_PROTO);
        CHECK(c.matched == before);
    } else {
        CHECK(d.off == n);
        size_t left = n - c.matched;
        CHECK(left < 4 || left < 4 + (size_t)be32(s + c.matched));
        if (left >= 4) {
            uint32_t l = be32(s + c.matched);
            CHECK(l >= 1 && l <= PX_NET_STREAM_MAX);
        }
    }
    free(s);
    return 0;
}
