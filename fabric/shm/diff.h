/* plexus — twin/diff of an ivshmem region (docs/ivshmem.md, "Contents").
 *
 * Each member node keeps a twin: a copy of the region as it was when last
 * synchronised. At a doorbell to another host (or a periodic sync) the
 * node compares region and twin and sends the bytes that differ — byte
 * exact, never a neighbouring unchanged byte, so two hosts writing
 * different bytes of one page both keep their writes — and updates its
 * twin. A receiving node writes those bytes into its region and its twin.
 *
 * Records (little-endian, packed back to back in a message's `recs`):
 *
 *   u32 offset   into the region
 *   u32 length   1.. bytes
 *   length bytes
 *
 * A region is at most 4 GiB, so offsets fit 32 bits; offset + length must
 * not pass the region's end.
 */
#ifndef PX_SHM_DIFF_H
#define PX_SHM_DIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fabric/core/err.h"

#define PX_SHMDIFF_REC_HDR 8u

/* A scan in progress over [0, size): px_shmdiff_next fills one buffer of
 * records at a time, so a large diff goes out as several messages. */
typedef struct px_shmdiff_scan {
    const volatile uint8_t *region; /* read while guests may write it */
    uint8_t *twin;
    uint64_t size;
    uint64_t pos;     /* next byte to compare */
    uint64_t changed; /* bytes found so far */
} px_shmdiff_scan;

/* Start a scan of region against twin (both `size` bytes, owned by the
 * caller and alive until the scan is done). A size over 4 GiB is scanned as
 * 4 GiB: offsets are u32. */
void px_shmdiff_begin(px_shmdiff_scan *sc, const volatile uint8_t *region, uint8_t *twin,
                      uint64_t size);

/* Append records of changed bytes to buf (at most cap bytes; cap >= 64),
 * copying each changed byte into the twin as it goes. Returns the bytes
 * written; 0 when the scan is done. A run that does not fit is split. */
size_t px_shmdiff_next(px_shmdiff_scan *sc, uint8_t *buf, size_t cap);

/* Check every record of recs against a region of `size` bytes without
 * applying anything: PX_E_PROTO (em: which record, what) for a truncated
 * record, a zero length or a range past the end. */
px_err px_shmdiff_check(const uint8_t *recs, size_t len, uint64_t size, px_errmsg *em);

/* Write the records into region and twin (twin may be NULL). Checks first:
 * on error nothing is written. Returns the bytes applied in *applied. */
px_err px_shmdiff_apply(const uint8_t *recs, size_t len, volatile uint8_t *region, uint8_t *twin,
                        uint64_t size, uint64_t *applied, px_errmsg *em);

#endif
