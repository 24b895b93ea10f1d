/* plexus — join an ivshmem region as a peer from a host program
 * (docs/ivshmem.md, "Host programs").
 *
 * A host program is a peer like a guest: it connects to the region's
 * socket on its node (the path `plexus ivshmem peers REGION --json` shows),
 * gets a global ID, maps the region and rings other peers; doorbells to it
 * arrive on its own eventfds. Writes to the region before a ring at a peer
 * on another host reach that peer before its doorbell does.
 *
 *     px_ivc *c;
 *     if (px_ivc_open(path, 5000, &c, &em) != PX_OK) ...
 *     size_t size;
 *     uint8_t *mem = px_ivc_mem(c, &size);
 *     memcpy(mem, "hello", 5);
 *     px_ivc_ring(c, 3, 0);                  // peer 3, vector 0
 *     uint32_t v;
 *     px_ivc_wait(c, 1000, &v);              // a doorbell to us
 *     px_ivc_close(c);
 *
 * No threads, no libuv: px_ivc_fd and px_ivc_vector_fd can go into the
 * program's own poll loop. Not thread-safe; one px_ivc per thread.
 */
#ifndef PX_IVSHMEM_CLIENT_H
#define PX_IVSHMEM_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "fabric/core/err.h"

typedef struct px_ivc px_ivc;

/* Connect to the region's socket and wait up to timeout_ms (-1: for ever)
 * for the greeting (own ID, memory, the other peers, own eventfds); map the
 * memory shared. Blocks. em says what failed: PX_E_NOTFOUND (no server at
 * path), PX_E_TIMEOUT (not admitted in time, or the greeting stopped),
 * PX_E_PROTO (the server broke the protocol), PX_E_CLOSED (rejected).
 *
 * When the greeting is complete. The protocol never states N, the number
 * of vectors; QEMU knows it from its own `vectors=`. The server sends the
 * own ID's N eventfds last, right after every other peer's N. So the
 * greeting is complete when the own ID has N eventfds, where N is:
 *   1. `vectors` of px_ivc_open_n, when not 0 (fully deterministic);
 *   2. else the eventfd count of the other peers in the greeting (all
 *      have N; deterministic whenever the client is not alone);
 *   3. else (the first peer of a region: nobody to count) the own fds that
 *      came before the first other message, or before the socket stayed
 *      quiet for PX_IVC_SETTLE_MS after them. The server writes the
 *      greeting in one go, so quiet means done; if the server was slow
 *      anyway, own fds arriving later are still taken by px_ivc_process
 *      (px_ivc_vectors grows) until the first other message, which fixes N.
 * Once N is fixed, any peer (own ID included) sent more than N eventfds
 * is a protocol error, as it would be for QEMU. Own fds that stop short of
 * N followed by another message are one too. */
px_err px_ivc_open(const char *path, int timeout_ms, px_ivc **out, px_errmsg *em);

#define PX_IVC_SETTLE_MS 20 /* rule 3 above */

/* px_ivc_open with the region's vector count, when the caller knows it
 * (1..PX_IVSHM_MAX_VECTORS; 0: learn it as px_ivc_open does). */
px_err px_ivc_open_n(const char *path, uint32_t vectors, int timeout_ms, px_ivc **out,
                     px_errmsg *em);

uint16_t px_ivc_id(const px_ivc *c);
void *px_ivc_mem(const px_ivc *c, size_t *size);
/* Own eventfds: N (see px_ivc_open). */
uint32_t px_ivc_vectors(const px_ivc *c);

/* The socket: readable when join/leave notices wait; then px_ivc_process
 * (never blocks; handles up to 1024 notices per call). PX_E_CLOSED once the
 * server went away, PX_E_PROTO if it broke the protocol: px_ivc_close. */
int px_ivc_fd(const px_ivc *c);
px_err px_ivc_process(px_ivc *c, px_errmsg *em);

/* The known peers (not counting itself), lowest first; returns the count. */
uint32_t px_ivc_peers(const px_ivc *c, uint16_t *ids, uint32_t cap);

/* Ring `peer` at `vector` (its own ID rings itself). PX_E_NOTFOUND: no
 * such peer (now), or vector beyond its eventfds. Does not block. */
px_err px_ivc_ring(px_ivc *c, uint16_t peer, uint32_t vector);

/* Own eventfd of vector v (-1 if out of range): poll it, then
 * px_ivc_take. */
int px_ivc_vector_fd(const px_ivc *c, uint32_t v);
/* Read (and clear) vector v's counter without blocking: doorbells since
 * the last take, 0 if none. */
uint64_t px_ivc_take(px_ivc *c, uint32_t v);

/* Wait up to timeout_ms (-1: for ever) for a doorbell on any own vector,
 * handling notices meanwhile; the lowest rung vector in *vector, its
 * counter cleared. PX_E_TIMEOUT, PX_E_CLOSED. */
px_err px_ivc_wait(px_ivc *c, int timeout_ms, uint32_t *vector, px_errmsg *em);

/* Close everything and unmap the memory; NULL is allowed. */
void px_ivc_close(px_ivc *c);

#endif
