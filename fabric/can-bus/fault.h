/* plexus — fault injection on one CAN bus, as a pure state machine.
 *
 * The bus's node calls this around px_canbus_home / px_canbus_member
 * (bus.h): before a submitted frame enters the bus (px_canfault_submit),
 * before a bus frame is handed to a local endpoint (px_canfault_deliver),
 * and when a fault starts or ends: a scheduled topology fault, or the
 * run-time command `plexus can fault BUS ARGS...` (px_canfault_command).
 *
 * State:
 *   bus      drop and corrupt probabilities (parts per million), "down"
 *            (the topology's link_down on the whole bus). The topology's
 *            impairment of the bus is the baseline px_canfault_clear and an
 *            ended impair fault return to.
 *   members  per endpoint (px_can_guest_ep numbers, proto.h): a delivery
 *            drop probability, a corrupt probability for the frames it
 *            sends, partitioned (link_down of one guest), and the
 *            controller state ACTIVE / PASSIVE / BUSOFF. Only endpoints
 *            whose state differs from the default take a slot; at most
 *            PX_CANFAULT_MAX_MEMBERS at a time.
 *
 * Error frames are Linux SocketCAN's (linux/can/error.h): classic frames
 * with PX_CAN_ERR_FLAG | class in can_id and PX_CANERR_DLC data bytes.
 *   corruption   PROT | BUSERROR, data[2] BIT (data[3] LOC_DATA) or FORM
 *                (data[3] LOC_CRC_DEL), picked by the PRNG
 *   can_error    PROT | BUSERROR, BIT, FORM or STUFF at a PRNG-picked
 *                location (px_canfault_error_frame)
 *   to PASSIVE   CRTL | CNT, data[1] RX_PASSIVE | TX_PASSIVE, data[6..7]
 *                (TX and RX error counters) 128; from BUSOFF also RESTARTED
 *   to BUSOFF    BUSOFF, data all zero (as the kernel's can_bus_off())
 *   to ACTIVE    from PASSIVE: CRTL | CNT, data[1] CRTL_ACTIVE, counters 0;
 *                from BUSOFF: RESTARTED, data all zero (can_restart())
 * A state frame goes to the endpoint whose state changed, directly (not
 * through px_canfault_deliver: a bus-off controller still learns that it
 * is bus-off). A PASSIVE or BUSOFF state lasts until set ACTIVE again.
 *
 * Randomness is a splitmix64 generator seeded by the caller: the same seed
 * and the same calls give the same verdicts (tests, replays). It is drawn
 * only when a probability is neither 0 nor 100%.
 *
 * No I/O, no clock, no allocation; the notify callback runs synchronously
 * inside the call that caused it, and never when that call fails. Loop
 * thread only (one px_canfault per bus, owned by its caller).
 */
#ifndef PX_CANBUS_FAULT_H
#define PX_CANBUS_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/can/frame.h"
#include "fabric/core/err.h"

#define PX_CANFAULT_MAX_MEMBERS 256u /* endpoints with a non-default state */
#define PX_CANFAULT_MAX_ARGS    64u  /* arguments of one fault command */
#define PX_CANFAULT_GUEST_EPS   32u  /* endpoints a resolver may return (PX_CAN_EPS_PER_GUEST) */
#define PX_CANFAULT_PPM         1000000u
#define PX_CANFAULT_ALL         0u /* notify: an error frame for the whole bus */
/* Room for px_canfault_command's summary; longer ones are cut with "...". */
#define PX_CANFAULT_SUMMARY_MAX 512u

/* Linux's error frame encoding (linux/can/error.h; same values). */
#define PX_CANERR_DLC              8u
#define PX_CANERR_TX_TIMEOUT       0x001u
#define PX_CANERR_LOSTARB          0x002u
#define PX_CANERR_CRTL             0x004u /* data[1] */
#define PX_CANERR_PROT             0x008u /* data[2] type, data[3] location */
#define PX_CANERR_TRX              0x010u
#define PX_CANERR_ACK              0x020u
#define PX_CANERR_BUSOFF           0x040u
#define PX_CANERR_BUSERROR         0x080u
#define PX_CANERR_RESTARTED        0x100u
#define PX_CANERR_CNT              0x200u /* data[6] TX, data[7] RX error counter */
#define PX_CANERR_CRTL_RX_WARNING  0x04u
#define PX_CANERR_CRTL_TX_WARNING  0x08u
#define PX_CANERR_CRTL_RX_PASSIVE  0x10u
#define PX_CANERR_CRTL_TX_PASSIVE  0x20u
#define PX_CANERR_CRTL_ACTIVE      0x40u
#define PX_CANERR_PROT_BIT         0x01u
#define PX_CANERR_PROT_FORM        0x02u
#define PX_CANERR_PROT_STUFF       0x04u
#define PX_CANERR_PROT_TX          0x80u
#define PX_CANERR_PROT_LOC_ID28_21 0x02u
#define PX_CANERR_PROT_LOC_CRC_SEQ 0x08u
#define PX_CANERR_PROT_LOC_DATA    0x0Au
#define PX_CANERR_PROT_LOC_DLC     0x0Bu
#define PX_CANERR_PROT_LOC_CRC_DEL 0x18u

typedef enum px_canfault_state {
    PX_CANFAULT_ACTIVE = 0, /* error active: normal */
    PX_CANFAULT_PASSIVE,    /* error passive: still sends and receives */
    PX_CANFAULT_BUSOFF      /* sends nothing, receives nothing */
} px_canfault_state;

typedef enum px_canfault_verdict {
    PX_CANFAULT_PASS = 0, /* put the frame on the bus */
    PX_CANFAULT_DROP,     /* the frame vanishes; the sender's frame fails */
    PX_CANFAULT_CORRUPT   /* put the error frame on the bus instead; the sender's frame fails */
} px_canfault_verdict;

typedef struct px_canfault_stats {
    uint64_t dropped;           /* submits lost to the drop probabilities */
    uint64_t corrupted;         /* submits turned into error frames */
    uint64_t refused_down;      /* submits and deliveries while the bus is down */
    uint64_t refused_busoff;    /* submits from and deliveries to bus-off endpoints */
    uint64_t refused_partition; /* submits from and deliveries to partitioned endpoints */
    uint64_t delivery_drops;    /* deliveries lost to a member's drop probability */
    uint64_t error_frames;      /* error frames made (corruption, can_error, --error) */
} px_canfault_stats;

typedef struct px_canfault_member {
    uint32_t ep;
    uint32_t drop_ppm;    /* deliveries to ep */
    uint32_t corrupt_ppm; /* frames ep sends */
    bool partitioned;
    px_canfault_state state;
} px_canfault_member;

/* ep receives err (ep == PX_CANFAULT_ALL: put err on the bus, every member
 * sees it). err is valid during the call only. */
typedef void (*px_canfault_notify_cb)(void *ud, uint32_t ep, const px_can_frame *err);

typedef struct px_canfault {
    uint64_t rng;
    uint32_t base_drop_ppm, base_corrupt_ppm; /* the topology's impairment */
    uint32_t drop_ppm, corrupt_ppm;           /* in force */
    bool down;
    uint32_t n_members;
    px_canfault_member members[PX_CANFAULT_MAX_MEMBERS]; /* sorted by ep */
    px_canfault_stats stats;
    px_canfault_notify_cb notify;
    void *ud;
} px_canfault;

/* No faults, PRNG seeded with seed. notify receives every error frame a
 * composite call (command, topology fault, clear) makes; it must not be
 * NULL and must not call back into f. */
void px_canfault_init(px_canfault *f, uint64_t seed, px_canfault_notify_cb notify, void *ud);

/* ---- the data path ---- */

/* A frame from endpoint src_ep is about to be submitted to the bus. In this
 * order: bus down, src_ep partitioned, src_ep bus-off -> DROP (counted as
 * refused); the bus's drop probability -> DROP; the bus's, then src_ep's
 * corrupt probability -> CORRUPT with *err the error frame to put on the
 * bus in its place (*err untouched otherwise); else PASS. */
px_canfault_verdict px_canfault_submit(px_canfault *f, uint32_t src_ep, px_can_frame *err);

/* May a bus frame be handed to endpoint dst_ep? Not when the bus is down,
 * dst_ep is partitioned or bus-off, or dst_ep's drop probability says so
 * (each counted). Not for a sender's own TX-complete: that follows from
 * its submit's verdict. */
bool px_canfault_deliver(px_canfault *f, uint32_t dst_ep);

/* ---- error frames ---- */

/* One bus error frame (a can_error fault): PROT | BUSERROR with a
 * PRNG-picked type and location. Counted in stats.error_frames. */
void px_canfault_error_frame(px_canfault *f, px_can_frame *out);

/* The frame an endpoint receives when its controller goes from `from` to
 * `to`; false (and *out untouched) when from == to. Pure. */
bool px_canfault_state_frame(px_canfault_state from, px_canfault_state to, px_can_frame *out);

/* ---- state, one piece at a time ---- */

/* Sets ep's controller state. If it changed, *err is the frame ep must
 * receive and *has_err is true (the caller sends it; notify is not called).
 * PX_E_TOOBIG when PX_CANFAULT_MAX_MEMBERS endpoints already have state;
 * PX_E_INVAL for ep 0 or an unknown state. */
px_err px_canfault_set_state(px_canfault *f, uint32_t ep, px_canfault_state st, px_can_frame *err,
                             bool *has_err);
px_err px_canfault_set_partition(px_canfault *f, uint32_t ep, bool partitioned);
px_err px_canfault_set_member_drop(px_canfault *f, uint32_t ep, uint32_t drop_ppm);
px_err px_canfault_set_member_corrupt(px_canfault *f, uint32_t ep, uint32_t corrupt_ppm);
void px_canfault_set_down(px_canfault *f, bool down);
/* Probabilities in force (PX_E_INVAL above PX_CANFAULT_PPM). */
px_err px_canfault_set_bus(px_canfault *f, uint32_t drop_ppm, uint32_t corrupt_ppm);

/* ep's state; defaults for an endpoint without a slot. */
px_canfault_member px_canfault_member_get(const px_canfault *f, uint32_t ep);

/* ---- topology ---- */

/* The bus's impairment from the topology (px_topo_can_bus.impair:
 * loss_ppm, corrupt_ppm): baseline and in force. */
px_err px_canfault_configure(px_canfault *f, uint32_t loss_ppm, uint32_t corrupt_ppm);

typedef enum px_canfault_kind {
    PX_CANFAULT_K_CAN_ERROR = 0, /* start: one bus error frame (the caller repeats it) */
    PX_CANFAULT_K_BUS_OFF,       /* eps go bus-off; end: back to active (RESTARTED) */
    PX_CANFAULT_K_LINK_DOWN,     /* n_eps 0: the bus is down; else eps are partitioned */
    PX_CANFAULT_K_IMPAIR         /* n_eps 0: bus probabilities; else the eps' */
} px_canfault_kind;

/* A scheduled topology fault (px_topo_fault) on this bus. eps are the
 * endpoints of the fault's guest on this bus (n_eps 0 for a fault on the
 * whole bus); loss_ppm / corrupt_ppm are the fault's impairment (IMPAIR
 * only). The error frames the change causes go to notify. Ending IMPAIR
 * restores the baseline (bus) or the defaults (eps); ending LINK_DOWN
 * brings the bus up or heals the eps; ending CAN_ERROR does nothing.
 * PX_E_INVAL for a kind that needs eps without them (BUS_OFF) or bad
 * probabilities; PX_E_TOOBIG when the member table is full (nothing
 * changed). */
px_err px_canfault_topo(px_canfault *f, px_canfault_kind kind, bool start, const uint32_t *eps,
                        uint32_t n_eps, uint32_t loss_ppm, uint32_t corrupt_ppm);

/* Everything back to normal: the baseline impairment, bus up, every member
 * healed and active (bus-off and passive ones get their recovery frame
 * through notify). */
void px_canfault_clear(px_canfault *f);

/* ---- the run-time command ---- */

/* Resolves a guest name to its endpoints on this bus: writes up to cap of
 * them to eps and their count to *n. Returns PX_E_NOTFOUND when the guest
 * does not exist or has no endpoint on the bus. May not call into f. */
typedef px_err (*px_canfault_resolve_cb)(void *ud, const char *guest, uint32_t *eps, uint32_t cap,
                                         uint32_t *n);

/* `plexus can fault BUS ARGS...`: argv[0..argc) are the ARGS, each one
 * argument (never split on spaces). Options, applied left to right:
 *   --drop P       bus: drop probability of submitted frames;
 *                  after --guest: drop probability of deliveries to it
 *   --corrupt P    bus, or after --guest: frames the guest sends
 *   --guest NAME   the following --drop, --corrupt, --partition, --heal,
 *                  --state apply to NAME's endpoints (resolve)
 *   --state S      active | passive | bus-off (needs --guest)
 *   --partition    cut the guest off the bus (needs --guest)
 *   --heal         undo --partition: the guest's, or every member's
 *   --down, --up   the whole bus
 *   --error        put one error frame on the bus now (notify, ep 0)
 *   --clear        px_canfault_clear
 * P is a percentage with at most 4 decimals ("5%", "0.0001%") or parts per
 * million ("250ppm"). "--opt=VALUE" is the same as "--opt VALUE".
 * The whole command is checked before anything changes: on error nothing
 * did, notify was not called, and *em names the argument (1-based
 * position), what was wrong and the valid forms. On success summary (if
 * not NULL) gets one line saying what changed. PX_E_CONFIG for a bad
 * command, PX_E_NOTFOUND for an unknown guest, PX_E_TOOBIG when the member
 * table or PX_CANFAULT_MAX_ARGS would overflow. */
px_err px_canfault_command(px_canfault *f, int argc, const char *const *argv,
                           px_canfault_resolve_cb resolve, void *rud, char *summary, size_t cap,
                           px_errmsg *em);

/* ---- reports ---- */

/* A name for an endpoint in reports ("ecu1 can0"), or NULL for none. */
typedef const char *(*px_canfault_name_cb)(void *ud, uint32_t ep);

/* The fault state and counters as text (a few lines, each ending "\n")
 * and as one JSON object:
 *   {"down":false,"drop_ppm":0,"corrupt_ppm":0,"base_drop_ppm":0,
 *    "base_corrupt_ppm":0,"members":[{"ep":9,"name":"ecu1",
 *    "state":"bus-off","partitioned":false,"drop_ppm":0,"corrupt_ppm":0}],
 *    "counters":{"dropped":0,...}}
 * name may be NULL ("name" is then left out). Both NUL-terminate within
 * cap (cap > 0) and return PX_E_TOOBIG when the text was cut. */
px_err px_canfault_describe(const px_canfault *f, px_canfault_name_cb name, void *nud, char *buf,
                            size_t cap);
px_err px_canfault_json(const px_canfault *f, px_canfault_name_cb name, void *nud, char *buf,
                        size_t cap);

/* "active", "passive", "bus-off" (the command's words); never NULL. */
const char *px_canfault_state_str(px_canfault_state st);

#endif
