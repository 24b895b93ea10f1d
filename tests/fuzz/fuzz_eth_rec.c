/* plexus — libFuzzer target: Ethernet frame records (fabric/eth-hub/rec.h),
 * the blob of frames a segment member receives from its peers.
 *
 * Input: the blob, any length.
 *
 * Properties checked on every input:
 *   - iteration ends: every PX_OK moves the offset forward by the record's
 *     size, and the walk stops with PX_E_NOTFOUND exactly at the end or
 *     with PX_E_TRUNCATED / PX_E_PROTO, an explanation and the offset left
 *     where the bad record starts;
 *   - every record read satisfies the limits (frame 14..65535 bytes, vid
 *     at most 4094) and lies inside the blob;
 *   - re-encoding every record read with px_ethrec_put gives back exactly
 *     the input bytes it came from.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fabric/eth-hub/rec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly the input's length, so ASan sees any over-read. */
    uint8_t *buf = malloc(size ? size : 1);
    uint8_t *out = malloc(size ? size : 1);
    if (!buf || !out)
        goto done;
    memcpy(buf, data, size);

    size_t off = 0, written = 0;
    for (;;) {
        px_ethrec r;
        px_errmsg em;
        em.text[0] = '\0';
        size_t before = off;
        px_err err = px_ethrec_next(buf, size, &off, &r, &em);
        if (err == PX_E_NOTFOUND) {
            CHECK(off == size && before == size);
            CHECK(written == size);
            break;
        }
        if (err != PX_OK) {
            CHECK(err == PX_E_TRUNCATED || err == PX_E_PROTO);
            CHECK(off == before && em.text[0] != '\0');
            CHECK(written == off);
            break;
        }
        CHECK(r.len >= PX_ETH_MIN_FRAME && r.len <= PX_ETH_MAX_FRAME);
        CHECK(r.vid <= PX_ETHREC_MAX_VID);
        CHECK(off == before + px_ethrec_size(r.len) && off <= size);
        CHECK(r.frame == buf + before + PX_ETHREC_HDR);
        size_t w = px_ethrec_put(out + written, size - written, &r);
        CHECK(w == px_ethrec_size(r.len));
        written += w;
    }
    CHECK(memcmp(out, buf, written) == 0);
done:
    free(out);
    free(buf);
    return 0;
}
