/* plexus — a CAN endpoint: the node's end of one guest CAN controller.
 *
 * A SOCK_SEQPACKET UNIX socket listening at a path in the lab's private
 * runtime directory; QEMU's can-host-socketcan, through libpxcanshim.so,
 * connects to it (docs/can-shim.md). One connection at a time: a QEMU that
 * restarts connects again and replaces the old connection. Every message is
 * one 72-byte frame (devices/can/frame.h).
 *
 * Bad input cuts off this endpoint alone: a message that is not a valid
 * frame closes the connection (logged with the reason, counted); the
 * listening socket stays, so a restarted QEMU can connect again. Frames for
 * the guest are sent without blocking; when QEMU does not keep up they are
 * dropped and counted (a controller's receive overrun), never queued without
 * bound. px_canep_pause stops reading from QEMU (the bus pushes back; QEMU's
 * writes then block in the kernel's socket buffer).
 *
 * Loop thread only.
 */
#ifndef PX_CAN_ENDPOINT_H
#define PX_CAN_ENDPOINT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "devices/can/frame.h"
#include "fabric/core/err.h"

typedef struct px_canep px_canep;

typedef struct px_canep_stats {
    uint64_t rx;         /* frames from QEMU */
    uint64_t tx;         /* frames to QEMU */
    uint64_t tx_dropped; /* frames for QEMU dropped: not connected or not reading */
    uint64_t malformed;  /* messages from QEMU that were not frames (each cut it off) */
    uint64_t connects;   /* connections accepted */
    bool connected;
} px_canep_stats;

/* f arrived from QEMU on ep. */
typedef void (*px_canep_rx_cb)(void *ud, px_canep *ep, const px_can_frame *f);
/* Called after a batch of reads (a good moment to flush what rx produced). */
typedef void (*px_canep_batch_cb)(void *ud, px_canep *ep);

typedef struct px_canep_opts {
    const char *path;   /* socket path; must fit sun_path; an old file there is replaced */
    const char *name;   /* for logs: "lab/guest/can0" */
    uint32_t id;        /* the caller's number for it */
    unsigned max_batch; /* frames read per wake-up (0 = 64): frames read are all passed on */
    px_canep_rx_cb on_rx;
    px_canep_batch_cb on_batch; /* may be NULL */
    void *ud;
} px_canep_opts;

px_err px_canep_open(uv_loop_t *loop, const px_canep_opts *o, px_canep **out, px_errmsg *em);

/* The same for a host SocketCAN interface (real CAN hardware, or the host
 * end of a guest's vxcan pair): a CAN_RAW socket with FD frames on, bound to
 * ifname; frames in Linux's own format (16 or 72 bytes). o->path is unused.
 * PX_E_UNSUPP, saying so, where the kernel has no AF_CAN (as on the CI
 * machines of this project); PX_E_IO if the interface does not exist. A
 * frame the interface delivers that plexus cannot carry is counted in
 * `malformed` and skipped (a real bus has nobody to cut off). */
px_err px_canep_open_socketcan(uv_loop_t *loop, const char *ifname, const px_canep_opts *o,
                               px_canep **out, px_errmsg *em);

#define PX_CANEP_OUTQ 64u /* frames queued for one sendmmsg */

/* To QEMU: queued, and sent by px_canep_flush (or when PX_CANEP_OUTQ frames
 * wait) in one system call. PX_E_CLOSED when nobody is connected (counted
 * in tx_dropped). Frames QEMU's full socket does not take at the flush are
 * dropped and counted in tx_dropped (a receive overrun). */
px_err px_canep_send(px_canep *ep, const px_can_frame *f);
void px_canep_flush(px_canep *ep);

/* Stop / resume reading frames from QEMU. */
void px_canep_pause(px_canep *ep, bool paused);

uint32_t px_canep_id(const px_canep *ep);
const char *px_canep_name(const px_canep *ep);
const px_canep_stats *px_canep_get_stats(const px_canep *ep);

/* Close the sockets and remove the socket file; frees ep (later, once
 * libuv has released the handles). */
void px_canep_close(px_canep *ep);

#endif
