/* plexus — libFuzzer target: CAN frame validation and translation
 * (devices/can/frame.h), the path every frame from a node or from QEMU
 * takes through libpxcanshim.so.
 *
 * Input: byte 0 picks the parser (0 node wire message, 1 QEMU write,
 * 2 Linux SocketCAN read, 3 the packed cross-host form a peer node sends);
 * the rest is the buffer, any length.
 *
 * Properties checked on every input:
 *   - a refused buffer leaves the output frame all zero, with a status in
 *     range and a text for it;
 *   - an accepted frame passes px_can_check (strict: nothing past len);
 *   - its QEMU form is 16 bytes for classic and 72 for FD, FD is refused
 *     with PX_CAN_FD_DISABLED when FD is off, and parsing the QEMU form
 *     again gives the same frame (the translation loses nothing);
 *   - an accepted node message is the same frame byte for byte once the
 *     bytes past len are cleared;
 *   - an accepted packed frame packs back to exactly the input bytes, and
 *     every accepted frame survives pack + unpack unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/can/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned mode = data[0] % 4;
    /* A copy of exactly the input's length, so ASan sees any over-read. */
    size_t n = size - 1;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return 0;
    memcpy(buf, data + 1, n);

    px_can_frame f, zero, back;
    memset(&zero, 0, sizeof(zero));
    memset(&f, 0xa5, sizeof(f));
    px_can_status st = mode == 0   ? px_can_from_wire(buf, n, &f)
                       : mode == 1 ? px_can_from_qemu(buf, n, &f)
                       : mode == 2 ? px_can_from_linux(buf, n, &f)
                                   : px_can_frame_unpack(buf, n, &f);
    CHECK((unsigned)st < PX_CAN_STATUS_COUNT);
    CHECK(px_can_status_str(st) != NULL);
    if (st != PX_CAN_OK) {
        CHECK(memcmp(&f, &zero, sizeof(f)) == 0);
        free(buf);
        return 0;
    }
    CHECK(px_can_check(&f, true) == PX_CAN_OK);
    bool fd = f.flags & PX_CANFD_FDF;
    if (mode == 0) {
        CHECK(n == PX_CAN_FRAME_SIZE);
        px_can_frame raw;
        memcpy(&raw, buf, sizeof(raw));
        unsigned used = (raw.can_id & PX_CAN_RTR_FLAG) ? 0 : raw.len;
        memset(raw.data + used, 0, sizeof(raw.data) - used);
        CHECK(memcmp(&raw, &f, sizeof(f)) == 0);
    }

    uint8_t pk[PX_CAN_PACKED_MAX];
    size_t pn = px_can_frame_pack(&f, pk, sizeof(pk));
    CHECK(pn == 6u + f.len);
    if (mode == 3)
        CHECK(pn == n && memcmp(pk, buf, n) == 0);
    CHECK(px_can_frame_unpack(pk, pn, &back) == PX_CAN_OK);
    CHECK(memcmp(&back, &f, sizeof(f)) == 0);

    uint8_t q[PX_CANFD_MTU + 1];
    px_can_status qst;
    size_t qn = px_can_to_qemu(&f, false, q, sizeof(q), &qst);
    CHECK(fd ? (qn == 0 && qst == PX_CAN_FD_DISABLED) : (qn == PX_CAN_MTU && qst == PX_CAN_OK));
    qn = px_can_to_qemu(&f, true, q, sizeof(q), &qst);
    CHECK(qst == PX_CAN_OK && qn == (fd ? PX_CANFD_MTU : PX_CAN_MTU));
    CHECK(px_can_from_qemu(q, qn, &back) == PX_CAN_OK);
    CHECK(memcmp(&back, &f, sizeof(f)) == 0);
    free(buf);
    return 0;
}
