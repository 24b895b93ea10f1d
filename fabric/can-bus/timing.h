/* plexus — exact on-the-wire length of a CAN frame, and bus arbitration.
 *
 * The CAN bus service's timed mode holds the bus for each frame's real
 * length: this module builds the frame's actual bit sequence (ISO
 * 11898-1:2015 classic CAN 2.0A/2.0B and CAN FD), stuffs it and counts.
 * docs/can-timing.md describes the model, its choices and its references.
 *
 * Frames are px_can_frame (devices/can/frame.h, Linux canfd_frame layout):
 *   - PX_CAN_ERR_FLAG set: an error frame, whatever else is set;
 *   - PX_CANFD_FDF set: a CAN FD frame (len 0..8,12,16,20,24,32,48,64,
 *     flags BRS/ESI allowed, no RTR);
 *   - otherwise a classic frame (len 0..8, flags 0); with PX_CAN_RTR_FLAG a
 *     remote frame whose DLC is len and that carries no data.
 * res0/res1 and data past len are ignored.
 *
 * Every function here is pure: no allocation, no I/O, no global state; safe
 * from any thread and inside any callback.
 */
#ifndef PX_CANBUS_TIMING_H
#define PX_CANBUS_TIMING_H

#include <stddef.h>
#include <stdint.h>

#include "devices/can/frame.h"
#include "fabric/core/err.h"

/* Fixed trailer after the CRC sequence: CRC delimiter, ACK slot, ACK
 * delimiter, 7 EOF bits, then the 3-bit intermission counted as part of
 * the frame (a bus cannot start the next frame sooner). */
#define PX_CAN_EOF_BITS          7u
#define PX_CAN_INTERMISSION_BITS 3u
#define PX_CAN_TRAILER_BITS      (3u + PX_CAN_EOF_BITS + PX_CAN_INTERMISSION_BITS)

/* Error frame model: 6-bit error flag + 8-bit delimiter + intermission.
 * (Superposed flags of other nodes can stretch the flag to 12 bits; the
 * model takes the single-flag length, see docs/can-timing.md.) */
#define PX_CAN_ERROR_FLAG_BITS      6u
#define PX_CAN_ERROR_DELIMITER_BITS 8u
#define PX_CAN_ERROR_FRAME_BITS                                                                    \
    (PX_CAN_ERROR_FLAG_BITS + PX_CAN_ERROR_DELIMITER_BITS + PX_CAN_INTERMISSION_BITS)

/* Upper bound on the bits of any frame, intermission included (an extended
 * FD frame of 64 bytes, fully stuffed, is under 700). Size for
 * px_can_wire_bits buffers. */
#define PX_CAN_MAX_WIRE_BITS 1024u

/* The length of one frame on the wire. */
typedef struct px_can_bitlen {
    uint32_t arb_bits;         /* bits at the nominal (arbitration) bit rate, trailer included */
    uint32_t data_bits;        /* bits at the data bit rate: FD with BRS only, else 0 */
    uint32_t stuff_bits;       /* dynamic stuff bits (already in the two counts above) */
    uint32_t fixed_stuff_bits; /* FD: fixed stuff bits in the CRC field (likewise) */
    uint32_t crc;              /* CRC sequence as sent; 0 for an error frame */
    uint8_t crc_bits;          /* 15 classic, 17 FD <= 16 bytes, 21 FD > 16 bytes; 0 error */
    uint8_t stuff_count;       /* FD: the 4-bit stuff count field (Gray code, parity) */
} px_can_bitlen;

/* Total bits of a frame: arb_bits + data_bits. */
uint32_t px_can_bitlen_total(const px_can_bitlen *bl);

/* Computes the length of *f on the wire into *out. PX_E_INVAL, with a
 * sentence in *em, if *f is not a frame as described at the top of this
 * header (standard id above 0x7ff, classic len > 8, FD len not a DLC
 * length, RTR on FD, BRS/ESI on classic, unknown flags). */
px_err px_can_timing(const px_can_frame *f, px_can_bitlen *out, px_errmsg *em);

/* As px_can_timing, and writes the frame's bits as sent (0 = dominant,
 * 1 = recessive), one per byte, SOF through intermission, into bits[0..cap)
 * and their count into *nbits. PX_E_TOOBIG if cap is too small
 * (PX_CAN_MAX_WIRE_BITS always suffices). For tests and for tools that
 * draw the frame. */
px_err px_can_wire_bits(const px_can_frame *f, uint8_t *bits, size_t cap, size_t *nbits,
                        px_can_bitlen *out, px_errmsg *em);

/* Nanoseconds the frame occupies the bus: arb_bits at bitrate plus
 * data_bits at data_bitrate (bit/s), each phase rounded up to a whole ns.
 * PX_E_INVAL if bitrate is 0, or data_bits > 0 and data_bitrate is 0. */
px_err px_can_bitlen_ns(const px_can_bitlen *bl, uint32_t bitrate, uint32_t data_bitrate,
                        uint64_t *ns, px_errmsg *em);

/* px_can_timing then px_can_bitlen_ns. */
px_err px_can_duration_ns(const px_can_frame *f, uint32_t bitrate, uint32_t data_bitrate,
                          uint64_t *ns, px_errmsg *em);

/* Which frame wins arbitration if both start in the same bit: < 0 if a
 * wins, > 0 if b wins, 0 if their arbitration fields are identical (both
 * would go on transmitting; a real bus would then see a bit error, the bus
 * service must order them some other way). Compares the arbitration bits
 * as sent (identifier, SRR, IDE, RTR/RRS): the first difference decides,
 * dominant (0) wins. Lowest id, standard before extended with the same base
 * id, data before remote with the same id all follow. An error frame wins
 * over any other frame (its flag destroys the frame in progress); two error
 * frames tie. Invalid frames compare as their bits would (no validation). */
int px_can_arb_cmp(const px_can_frame *a, const px_can_frame *b);

/* CRC register after shifting nbits bits (one per byte, 0 or 1) into a
 * register of width 15, 17 or 21 bits (ISO 11898-1 polynomials 0x4599,
 * 0x1685b, 0x102899) starting from init. Returns 0 for another width. */
uint32_t px_can_crc(unsigned width, uint32_t init, const uint8_t *bits, size_t nbits);

/* FD data length for a DLC (0..15) and back. px_can_len_to_dlc returns -1
 * for a length that is no DLC's. */
unsigned px_can_dlc_to_len(unsigned dlc);
int px_can_len_to_dlc(unsigned len);

#endif
