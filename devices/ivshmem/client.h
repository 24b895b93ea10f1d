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

/* Connect to the region's socket and wait up to timeout_ms for the
 * greeting (own ID, memory, the other peers, own eventfds); map the
 * memory shared. em says what failed (no server, a protocol error, ...). */
px_err px_ivc_open(const char *path, int timeout_ms, px_ivc **out, px_errmsg *em);

uint16_t px_ivc_id(const px_ivc *c);
void *px_ivc_mem(const px_ivc *c, size_t *size);
uint32_t px_ivc_vectors(const px_ivc *c);

/* The socket: readable when join/leave notices wait; then px_ivc_process.
 * PX_E_CLOSED once the server went away. */
int px_ivc_fd(const px_ivc *c);
px_err px_ivc_process(px_ivc *c, px_errmsg *em);

/* The known peers (not counting itself), lowest first; returns the count. */
uint32_t px_ivc_peers(const px_ivc *c, uint16_t *ids, uint32_t cap);

/* Ring `peer` at `vector`. PX_E_NOTFOUND: no such peer (now), or vector
 * beyond its eventfds. */
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

void px_ivc_close(px_ivc *c);

#endif
