/* plexus-node — one supervised QEMU guest.
 *
 * State machine (reported to the coordinator on every change):
 *
 *   defined --start--> starting --QMP ready, cont ok--> running
 *   starting|running --QEMU exits--> failed (exit reason in detail)
 *                                    \--restart policy--> starting (after back-off)
 *   starting|running --stop--> stopping --QEMU gone--> stopped
 *
 * QEMU is spawned with uv_spawn from an argv array (qemu_cmd.h), paused (-S);
 * the supervisor connects QMP, then sends `cont`. A graceful stop is
 * system_powerdown, then quit after the stop timeout, then SIGKILL if QEMU
 * still has not exited. Restart policy (topology `restart:`): no; on-failure
 * (restart after an exit the guest did not ask for); always (also after the
 * guest powered itself off). Back-off doubles from 1 s to 30 s and resets
 * after a guest stayed up for 60 s.
 *
 * QEMU runs in a session of its own and outlives a node that is killed or
 * crashes. A node started again takes such a QEMU over instead of starting
 * another (px_guest_adopt): defined --adopt--> starting --QMP ready--> running,
 * then supervised as any other, except that its exit status cannot be had
 * (it is not our child): a SHUTDOWN event with reason guest-shutdown before
 * it exits counts as a power-off, any other exit as a failure.
 *
 * Everything runs on the node's loop; nothing blocks except the few small
 * /proc and pid-file reads of px_guest_adopt.
 */
#ifndef PX_NODE_GUEST_H
#define PX_NODE_GUEST_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "coordinator/topology.h"
#include "node/qemu_cmd.h"
#include "node/qmp.h"

typedef enum px_guest_state {
    PX_GUEST_DEFINED,
    PX_GUEST_STARTING,
    PX_GUEST_RUNNING,
    PX_GUEST_STOPPING,
    PX_GUEST_STOPPED,
    PX_GUEST_FAILED,
} px_guest_state;

typedef struct px_guest px_guest;

/* Called after every state change (and detail change). */
typedef void (*px_guest_change_cb)(px_guest *g, void *ud);
/* Called once, from the loop, when the guest's handles are released after
 * px_guest_close; g is freed after it returns. */
typedef void (*px_guest_closed_cb)(px_guest *g, void *ud);

typedef struct px_guest_opts {
    const px_topo *topo;      /* borrowed for px_guest_new only (copied what is needed) */
    uint32_t index;           /* guest index in topo */
    px_qemu_cfg qemu;         /* strings borrowed for px_guest_new only */
    uint32_t stop_timeout_ms; /* powerdown -> quit; 0 = 3000 */
    px_guest_change_cb on_change;
    void *ud;
} px_guest_opts;

/* Build the command line (errors such as a missing kernel come back here,
 * with em saying what; nothing is started then) and create the guest in
 * state defined. */
px_err px_guest_new(uv_loop_t *loop, const px_guest_opts *opts, px_guest **out, px_errmsg *em);

/* Spawn QEMU. A spawn failure is reported as state failed (with detail), not
 * as an error here; PX_E_INVAL if the guest is not defined/stopped/failed. */
px_err px_guest_start(px_guest *g);

/* Take over the QEMU an earlier run of this node left running for this
 * guest (the node was killed or crashed; docs/guests.md "Node restarts"):
 * QEMU's pid file in the lab's runtime directory names a live process, not
 * a zombie, whose command line holds this guest's QMP socket argument. Its
 * sockets and files are left as they are; the supervisor connects QMP (and
 * sends `cont` if the vCPUs are still paused), watches the process through
 * a pidfd, and reports it running with a detail naming the adopted pid.
 * PX_E_NOTFOUND: no such QEMU runs; start one with px_guest_start.
 * PX_E_INVAL: the guest is not in state defined. Otherwise PX_OK, also when
 * the QEMU was found but cannot be watched (state failed, detail says why:
 * no second QEMU is started on its sockets). Reads the pid file and /proc
 * (small, local reads); runs no callback before returning other than the
 * state change. */
px_err px_guest_adopt(px_guest *g);

/* Graceful stop; done when the state becomes stopped. No-op if not running. */
void px_guest_stop(px_guest *g);

/* Stop (if needed, without waiting for the guest) and free. cb may be NULL. */
void px_guest_close(px_guest *g, px_guest_closed_cb cb, void *ud);

const char *px_guest_name(const px_guest *g);
px_guest_state px_guest_get_state(const px_guest *g);
const char *px_guest_state_str(px_guest_state s);
const char *px_guest_detail(const px_guest *g);
const char *px_guest_log_path(const px_guest *g);
int px_guest_pid(const px_guest *g); /* 0 when no QEMU runs; an adopted QEMU's pid */
uint32_t px_guest_restarts(const px_guest *g);

#endif
