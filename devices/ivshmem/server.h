/* plexus — an ivshmem server for one region on one node (docs/ivshmem.md).
 *
 * It listens on a UNIX socket in the lab's private directory and speaks
 * QEMU's ivshmem-server protocol (proto.h) byte for byte to every client:
 * QEMU's ivshmem-doorbell devices and host programs (client.h). The
 * region's shared memory is an fd the caller owns (a memfd of a power of
 * two size).
 *
 * The IDs are not the server's to choose: a region spans hosts and its
 * home hands out global IDs. A client that connects is reported with
 * on_connect and waits (QEMU blocks in device realize meanwhile) until
 * the caller admits it with an ID, or rejects it.
 *
 * Peers on other hosts are proxy peers: the server makes their eventfds,
 * announces them to local clients like any peer, and polls them; when a
 * local client rings a proxy (writes its eventfd), on_ring reports the
 * proxy's ID and the vector. QEMU turns the fds it receives blocking, which
 * changes the server's copy too: the server reads an eventfd only after
 * poll said it is readable.
 *
 * A client whose socket closes, or that a send fails on, is removed on
 * the next loop turn: on_leave (after the other clients were told) or
 * on_abandon. Callbacks never run inside a px_ivsrv_* call; they may call
 * any px_ivsrv_* function, px_ivsrv_close included. Clients never send
 * anything: bytes they send are read and dropped.
 *
 * Loop thread only.
 */
#ifndef PX_IVSHMEM_SERVER_H
#define PX_IVSHMEM_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "fabric/core/err.h"

typedef struct px_ivsrv px_ivsrv;

/* Messages queued for one client beyond what its socket buffer holds (a
 * client that does not read). Queued messages cost no fds (the server
 * keeps each peer's eventfds open while a message refers to them). Past
 * the limit the client is dropped (on_leave / on_abandon) and the others
 * are served as before: a peer that misses notices would be out of step. */
#define PX_IVSRV_QUEUE_MAX 65536u

typedef struct px_ivsrv_cbs {
    /* A client connected; `conn` names it until it is admitted, rejected or
     * gone, pid is its process (SO_PEERCRED; 0 if unknown). Call
     * px_ivsrv_admit or px_ivsrv_reject, now or later. */
    void (*on_connect)(void *ud, uint64_t conn, pid_t pid);
    /* A client that was never admitted went away. */
    void (*on_abandon)(void *ud, uint64_t conn);
    /* An admitted local peer left (socket closed, or a send to it failed);
     * the server has told the other local clients already. */
    void (*on_leave)(void *ud, uint16_t id);
    /* A local client rang proxy peer `id` at `vector`; count doorbells
     * since the last report (eventfd counter), at least 1. */
    void (*on_ring)(void *ud, uint16_t id, uint32_t vector, uint64_t count);
} px_ivsrv_cbs;

/* Listen on `path` (an existing file there is replaced; the socket is mode
 * 0600). shm_fd is dup'ed; its size must be a power of two of at least
 * 4 KiB (PX_E_CONFIG otherwise: QEMU would abort). vectors: eventfds per
 * peer (1..PX_IVSHM_MAX_VECTORS, PX_E_CONFIG otherwise). On error nothing
 * is left open and *out is NULL. */
px_err px_ivsrv_new(uv_loop_t *loop, const char *path, int shm_fd, uint32_t vectors,
                    const px_ivsrv_cbs *cbs, void *ud, px_ivsrv **out, px_errmsg *em);

/* Give pending client `conn` its ID and send it the whole greeting; tell
 * the other local clients it joined. PX_E_EXISTS if the ID is taken
 * (local or proxy), PX_E_NOTFOUND if conn is gone (or going: its
 * on_abandon follows), PX_E_INVAL if it was admitted already. */
px_err px_ivsrv_admit(px_ivsrv *s, uint64_t conn, uint16_t id, px_errmsg *em);
/* Close pending client `conn` (no ID to give: the region is full, or the
 * home cannot be reached). No on_abandon follows. Admitted clients: see
 * px_ivsrv_remove. */
void px_ivsrv_reject(px_ivsrv *s, uint64_t conn);

/* A peer on another host joined: make its eventfds, announce it to the
 * local clients, poll them. PX_E_EXISTS if the ID is taken. */
px_err px_ivsrv_add_proxy(px_ivsrv *s, uint16_t id, px_errmsg *em);
/* Peer `id` (proxy or local) is gone: tell the local clients, close its fds
 * (a local one's socket too; on_leave is not called for it). */
void px_ivsrv_remove(px_ivsrv *s, uint16_t id);

/* Ring local peer `id` at `vector` (write its eventfd): a doorbell from
 * another host, or from a tool. PX_E_NOTFOUND if id is not a local peer or
 * vector is out of range. */
px_err px_ivsrv_notify(px_ivsrv *s, uint16_t id, uint32_t vector);

typedef struct px_ivsrv_peer {
    uint16_t id;
    bool local;         /* false: proxy */
    pid_t pid;          /* local: the client's pid (SO_PEERCRED), 0 if unknown */
    uint64_t rings_in;  /* local: doorbells written to it by px_ivsrv_notify */
    uint64_t rings_out; /* proxy: doorbells read from it (on_ring) */
} px_ivsrv_peer;

/* The peers, lowest ID first; returns how many there are (copies up to cap). */
uint32_t px_ivsrv_peers(const px_ivsrv *s, px_ivsrv_peer *out, uint32_t cap);

/* Stop listening, close every client and fd; done (may be NULL) runs once
 * every handle is closed. The path is unlinked. */
void px_ivsrv_close(px_ivsrv *s, void (*done)(void *ud), void *ud);

#endif
