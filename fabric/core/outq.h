/* plexus — an ordered send queue to one node, for fabric services whose
 * messages must not be lost or reordered when a data-plane link is full
 * (ivshmem DIFFs and RINGs, CXL LD data and shared-LD syncs).
 *
 * px_outq_send sends at once while nothing is held; a message the link
 * refuses for now (PX_E_AGAIN) is copied and held, and so is every later
 * one, in order, until px_outq_flush gets them out. The caller retries
 * px_outq_flush from a timer while px_outq_held says something waits.
 */
#ifndef PX_CORE_OUTQ_H
#define PX_CORE_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fabric/core/err.h"
#include "fabric/core/svcio.h"

typedef struct px_outq_msg px_outq_msg;

typedef struct px_outq {
    px_outq_msg *head, *tail;
    size_t bytes; /* held */
} px_outq;

/* Send data[0..len) to node, or hold it behind what is held. PX_OK: sent;
 * PX_E_AGAIN: held (arm the retry); PX_E_TOOBIG: not held, more than max
 * bytes would be (dropped); PX_E_NOMEM; any other: the link refused it for
 * good (no link to that node: dropped). */
px_err px_outq_send(px_outq *q, const px_svc_io *io, const char *node, const uint8_t *data,
                    size_t len, size_t max);

/* Send what is held, in order, until the link is full again. Messages the
 * link refuses for good are dropped and counted in *dropped (NULL
 * allowed). Returns true while something is still held. */
bool px_outq_flush(px_outq *q, const px_svc_io *io, const char *node, uint64_t *dropped);

static inline bool px_outq_held(const px_outq *q)
{
    return q->head != NULL;
}

/* Drop everything held. */
void px_outq_clear(px_outq *q);

#endif
