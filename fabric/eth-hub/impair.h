/* plexus — netem-like impairment of one port direction of a segment.
 *
 * Frames go in with px_impair_push and come out with px_impair_pop once
 * they are due; in between the stage delays, jitters, loses, duplicates,
 * reorders, corrupts and rate-limits them like Linux's netem qdisc, so a
 * topology can give a link the qualities of a real one. The caller drives
 * it from its loop: push what arrives, arm a timer for px_impair_next_ns,
 * pop everything due when it fires. With no impairment configured
 * (px_impair_cfg_active false) the caller should not use the stage at all.
 *
 * What happens to a pushed frame, in this order:
 *   loss       lost with probability loss_ppm (counted in stats.lost; push
 *              still says PX_OK: the frame went into the void). With
 *              loss_burst > 1, losses come in bursts (simple Gilbert model:
 *              a "bad" state loses every frame, a "good" one none), of mean
 *              length loss_burst, and the long-run share lost is still
 *              loss_ppm. Past loss_burst / (loss_burst + 1) the bursts have
 *              to be longer than loss_burst for that: mean loss_ppm /
 *              (1e6 - loss_ppm) frames.
 *   duplicate  with probability duplicate_ppm a second copy is queued; it
 *              takes its own delay, jitter, reorder and rate below, and is
 *              never corrupted.
 *   corrupt    with probability corrupt_ppm one random bit of one random
 *              byte of the (first) copy is flipped.
 *   reorder    when delay_ns > 0, with probability reorder_ppm the frame
 *              skips delay, jitter and rate: it is due at once and so
 *              overtakes the frames still delayed (netem's reorder).
 *   delay      otherwise due at now + delay_ns + uniform[-jitter_ns,
 *              +jitter_ns], never before now. Jitter reorders frames, as
 *              netem's does without a rate.
 *   rate       rate_bps > 0: the link sends one frame after the other, each
 *              taking ceil(len * 8 s / rate_bps); a frame is due when its
 *              last bit is sent: max(its delayed time, the previous frame's
 *              due time) + its own transmission time (netem's order:
 *              delay, then the link).
 *   limit      at most `limit` frames are held (0: PX_IMPAIR_DEFAULT_LIMIT,
 *              netem's 1000); a push over it is refused with PX_E_AGAIN and
 *              counted in stats.overlimit, and so is a duplicate that
 *              finds no room (its original is queued, push says PX_OK).
 *
 * Frames leave in order of due time, then of push. Randomness is a
 * splitmix64 generator seeded by the caller, drawn only for probabilities
 * strictly between 0 and 1e6 ppm and for jitter: the same seed, settings and
 * calls give the same results (tests, replays).
 *
 * Memory: frames are copied into buffers kept on free lists by size class
 * (powers of two, 64 bytes .. 64 KiB, at most PX_IMPAIR_CACHE_BYTES idle),
 * and the queue is a binary min-heap that grows by doubling, so in a steady
 * state push and pop do not allocate. No I/O, no clock (callers pass
 * CLOCK_MONOTONIC nanoseconds), no callbacks. One stage, one thread.
 */
#ifndef PX_ETH_IMPAIR_H
#define PX_ETH_IMPAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fabric/core/err.h"

#define PX_IMPAIR_PPM           1000000u
#define PX_IMPAIR_DEFAULT_LIMIT 1000u
#define PX_IMPAIR_MAX_FRAME     65535u
#define PX_IMPAIR_CACHE_BYTES   (4u << 20) /* idle buffers kept for reuse */

typedef struct px_impair_cfg {
    uint64_t delay_ns,
        jitter_ns; /* each frame: delay + uniform(-jitter, +jitter), never before now */
    uint32_t loss_ppm;
    uint32_t loss_burst;    /* mean loss burst length in frames (Gilbert model, stationary loss =
                               loss_ppm); 0 or 1: independent */
    uint32_t duplicate_ppm; /* a second copy is queued */
    uint32_t reorder_ppm;   /* like netem: that share of frames skips the delay (goes out at now);
                               needs delay */
    uint32_t corrupt_ppm;   /* one random bit flipped in a random byte */
    uint64_t rate_bps;      /* 0 = unlimited; frames leave no faster than rate (serialisation: len*8
                               bits, each after the previous one finished) */
    uint32_t limit; /* frames held at most; 0 = 1000 (netem's default); over it: dropped, counted */
} px_impair_cfg;

/* Whether c impairs anything: a delay, jitter, loss, duplication,
 * corruption or rate (reorder counts only with a delay; a limit alone is
 * not an impairment). When false the caller bypasses the stage. */
bool px_impair_cfg_active(const px_impair_cfg *c);

typedef struct px_impair px_impair;

typedef struct px_impair_stats {
    uint64_t in;         /* pushes accepted for processing (len <= PX_IMPAIR_MAX_FRAME) */
    uint64_t out;        /* frames popped */
    uint64_t lost;       /* dropped by the loss model */
    uint64_t overlimit;  /* frames and duplicates dropped over the limit */
    uint64_t duplicated; /* second copies queued */
    uint64_t reordered;  /* copies that skipped the delay */
    uint64_t corrupted;  /* copies with a flipped bit */
    uint32_t queued;     /* held now */
} px_impair_stats;

/* A stage with no impairment (every frame due at once) until px_impair_set.
 * PX_E_NOMEM; *out is NULL then. Free with px_impair_free. */
px_err px_impair_new(uint64_t seed, px_impair **out);

/* Frees the queued frames too. NULL is allowed. */
void px_impair_free(px_impair *im);

/* Take c (copied) for frames pushed from now on; queued frames keep their
 * due times. The loss burst state and the link's busy time carry over. */
void px_impair_set(px_impair *im, const px_impair_cfg *c);

/* Offer the len bytes at f (copied; the caller keeps f) at now. PX_OK also
 * when the loss model dropped it. PX_E_TOOBIG when len > PX_IMPAIR_MAX_FRAME,
 * PX_E_AGAIN over the limit, PX_E_NOMEM: the frame was not queued. */
px_err px_impair_push(px_impair *im, uint64_t now_ns, const uint8_t *f, size_t len, uint64_t tag);

/* The next frame due at or before now (by due time, then push order): true
 * with *f, *len and the tag it was pushed with; false when none is due.
 * *f is owned by the stage and valid until the next push/pop/clear/free. */
bool px_impair_pop(px_impair *im, uint64_t now_ns, const uint8_t **f, size_t *len, uint64_t *tag);

/* Due time of the next frame; UINT64_MAX when empty. */
uint64_t px_impair_next_ns(const px_impair *im);

/* Drop everything queued (not counted; the link is idle again). */
void px_impair_clear(px_impair *im);

void px_impair_stats_get(const px_impair *im, px_impair_stats *out);

#endif
