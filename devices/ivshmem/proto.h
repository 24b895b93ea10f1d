/* plexus — QEMU's ivshmem-server protocol, both ends (docs/ivshmem.md).
 *
 * The server talks, the client only listens. Every message is one
 * little-endian int64 in its own sendmsg, with at most one file descriptor
 * in SCM_RIGHTS. On connect the client receives:
 *
 *   PX_IVSHM_VERSION (0)                  no fd
 *   its own ID (0..65535)                 no fd
 *   -1                                    the shared memory fd
 *   for each other peer P: P, N times     one eventfd each (vectors 0..N-1)
 *   its own ID, N times                   its own eventfds
 *
 * and later: ID with an fd (a peer joined: one message per vector, in
 * vector order), ID without an fd (that peer left). N is the region's
 * vector count.
 *
 * px_ivshm_send/px_ivshm_recv move one message over a connected UNIX
 * stream socket. px_ivshm_dec is the client side's decoder: a pure state
 * machine fed one received message at a time, fuzzed on its own
 * (tests/fuzz/fuzz_ivshmem_proto.c). It never keeps an fd: what it hands
 * back in an event the caller owns; a message it rejects, the caller
 * closes the fd of.
 */
#ifndef PX_IVSHMEM_PROTO_H
#define PX_IVSHMEM_PROTO_H

#include <stdbool.h>
#include <stdint.h>

#include "fabric/core/err.h"

#define PX_IVSHM_VERSION     0
#define PX_IVSHM_MAX_PEERS   65536u /* IDs are 0..65535 (Doorbell's high 16 bits) */
#define PX_IVSHM_MAX_VECTORS 64u    /* per peer; the topology allows 1..64 */

/* Send value with fd (-1: none). Retries on EINTR; PX_E_IO on failure,
 * PX_E_AGAIN if the socket is non-blocking and full. */
px_err px_ivshm_send(int sock, int64_t value, int fd);

/* Receive one message: value and the fd it carried (-1: none; extra fds
 * are closed). PX_E_CLOSED at end of stream, PX_E_AGAIN if non-blocking
 * and empty, PX_E_TRUNCATED on a short message. Received fds are
 * close-on-exec. */
px_err px_ivshm_recv(int sock, int64_t *value, int *fd);

typedef enum px_ivshm_ev_kind {
    PX_IVSHM_EV_NONE = 0,  /* consumed, nothing to report (a VERSION) */
    PX_IVSHM_EV_ID,        /* own ID known: ev.peer */
    PX_IVSHM_EV_SHM,       /* the shared memory fd: ev.fd */
    PX_IVSHM_EV_PEER_FD,   /* eventfd ev.fd for vector ev.vector of ev.peer (own ID: own fds) */
    PX_IVSHM_EV_PEER_GONE, /* ev.peer left: close its fds */
} px_ivshm_ev_kind;

typedef struct px_ivshm_ev {
    px_ivshm_ev_kind kind;
    uint16_t peer;
    uint32_t vector;
    int fd;
} px_ivshm_ev;

typedef struct px_ivshm_dec {
    int state;    /* internal: what comes next */
    uint16_t own; /* own ID once known */
    uint32_t max_vectors;
    /* eventfds received so far per peer, to number vectors: a peer's count
     * goes back to 0 when it leaves */
    uint8_t n_fds[PX_IVSHM_MAX_PEERS];
} px_ivshm_dec;

/* max_vectors: fds beyond it for one peer are a protocol error (QEMU's
 * `vectors=`), as they are fatal to QEMU. 0 or more than
 * PX_IVSHM_MAX_VECTORS means PX_IVSHM_MAX_VECTORS. */
void px_ivshm_dec_init(px_ivshm_dec *d, uint32_t max_vectors);

/* Feed one message. PX_E_PROTO (with em saying what) for a message out of
 * order (no version first, a wrong version, an fd with the version or the
 * own ID, an ID before the shm fd, an ID out of range, too many fds for a
 * peer, a second shm fd, a leave of the own ID or of a peer never
 * announced); the caller then closes the connection and the fd, and the
 * decoder stays failed. On PX_OK, ev->fd is the fd fed (SHM, PEER_FD) or
 * -1 (a message with an fd is always SHM or PEER_FD). */
px_err px_ivshm_dec_feed(px_ivshm_dec *d, int64_t value, int fd, px_ivshm_ev *ev, px_errmsg *em);

/* True once the own ID and shm fd came (own eventfds may still follow). */
bool px_ivshm_dec_ready(const px_ivshm_dec *d);

#endif
