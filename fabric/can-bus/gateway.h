/* plexus — CAN gateways: cangw-like routing from one bus to another.
 *
 * A rule routes frames from a source bus to a destination bus, like a
 * Linux can-gw rule (`cangw -A -s SRC -d DST [-X] [-l HOPS] -f F -m M...`):
 *
 *   filter  cangw's -f syntax, ids and masks in hex (1..8 digits):
 *             <id>:<mask>  matches when (can_id & mask) == (id & mask)
 *             <id>~<mask>  matches when (can_id & mask) != (id & mask)
 *           The mask sees the whole can_id, flags included: PX_CAN_EFF_FLAG
 *           (0x80000000) and PX_CAN_RTR_FLAG (0x40000000). An id written
 *           with 8 digits gets PX_CAN_EFF_FLAG set, as candump's filters do
 *           ("12345678:1FFFFFFF"; add 80000000 to the mask to match only
 *           extended frames). No filter: every frame.
 *   modify  up to 4 modifications in cangw's -m syntax, at most one per
 *           operation, applied in the order AND, OR, XOR, SET whatever
 *           order they were written in (as the kernel does):
 *             <op>:<what>:<can_id>.<len>.<data>           classic form
 *             <op>:<what>:<can_id>.<flags>.<len>.<data>   FD form (fd rules)
 *           op is AND, OR, XOR or SET; what is one or more of I (can_id,
 *           flags included), L (len), D (data) and, in the FD form, F (the
 *           BRS/ESI flags); all values hex: can_id up to 8 digits, len 1..2
 *           digits (classic form: 0..F; SET: a valid length, 0..8 classic,
 *           an FD length in the FD form), flags 1..2 digits, data exactly
 *           16 digits (8 bytes, classic form) or 128 (64 bytes, FD form).
 *           A classic-form modification touches data bytes 0..7 only, so it
 *           works on FD frames too. FDF is never changed: a classic frame
 *           stays classic.
 *   fd      like cangw -X: only a rule with fd set forwards CAN FD frames;
 *           other rules skip them (counted as filtered).
 *   hops    1..PX_CANGW_HOPS_MAX (default 1): a frame that already crossed
 *           `hops` gateways is not routed again. With the default, frames
 *           that arrived through a gateway are never routed further (the
 *           kernel's max_hops=1), so two buses gatewayed both ways do not
 *           loop. The caller carries the count with each frame (0 for a
 *           frame a guest or tool sent).
 *
 * Error frames are never routed (they belong to the bus they happened on;
 * can-gw does not see them either). A rewritten frame that fails
 * px_can_check (an AND that leaves an FD frame a length like 13, a SET:I
 * that puts a 29-bit id without EFF, ...) or turns into an error frame is
 * not forwarded and is counted as invalid.
 *
 * Everything here is pure: no allocation, no I/O, no global state; safe
 * from any thread and inside any callback. A px_cangw belongs to one caller.
 */
#ifndef PX_CANBUS_GATEWAY_H
#define PX_CANBUS_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/can/frame.h"
#include "fabric/core/err.h"

#define PX_CANGW_MAX_MODS 4u /* AND, OR, XOR, SET: one each */
#define PX_CANGW_HOPS_DEF 1u
#define PX_CANGW_HOPS_MAX 8u
/* Longest filter text plus NUL: "12345678~12345678". */
#define PX_CANGW_FILTER_MAX 18u
/* Longest modification text plus NUL: "XOR:IFLD:" 8 "." 2 "." 2 "." 128. */
#define PX_CANGW_MOD_MAX (9u + 8u + 1u + 2u + 1u + 2u + 1u + 128u + 1u)

/* What a modification touches; the values of the kernel's CGW_MOD_*. */
#define PX_CANGW_MOD_ID    0x01u
#define PX_CANGW_MOD_LEN   0x02u
#define PX_CANGW_MOD_DATA  0x04u
#define PX_CANGW_MOD_FLAGS 0x08u /* FD form only: BRS and ESI */

typedef enum px_cangw_op { PX_CANGW_AND = 0, PX_CANGW_OR, PX_CANGW_XOR, PX_CANGW_SET } px_cangw_op;

typedef struct px_cangw_filter {
    uint32_t id;   /* as written, PX_CAN_EFF_FLAG added for an 8-digit id */
    uint32_t mask; /* 0 with !inverted: every frame */
    bool inverted; /* written with '~' */
} px_cangw_filter;

typedef struct px_cangw_mod {
    px_cangw_op op;
    uint8_t what; /* PX_CANGW_MOD_* */
    bool fd_form; /* written as id.flags.len.data: 64 data bytes */
    uint32_t can_id;
    uint8_t flags; /* FD form only */
    uint8_t len;
    uint8_t data[PX_CANFD_MAX_DLEN]; /* 8 bytes used in the classic form */
} px_cangw_mod;

typedef struct px_cangw_rule {
    uint32_t src_bus, dst_bus; /* the caller's bus numbers (topology: t->can_buses) */
    px_cangw_filter filter;
    px_cangw_mod mods[PX_CANGW_MAX_MODS]; /* in application order: AND, OR, XOR, SET */
    uint32_t n_mods;
    bool fd;
    uint8_t hops; /* 1..PX_CANGW_HOPS_MAX */
} px_cangw_rule;

typedef struct px_cangw_stats {
    uint64_t forwarded;
    uint64_t filtered;    /* filter did not match, FD frame on a classic rule, error frame */
    uint64_t hop_limited; /* already crossed rule.hops gateways (the kernel's "deleted") */
    uint64_t invalid;     /* the rewritten frame was not a valid frame */
} px_cangw_stats;

typedef struct px_cangw {
    px_cangw_rule rule;
    px_cangw_stats stats;
} px_cangw;

typedef enum px_cangw_result {
    PX_CANGW_FORWARD = 0, /* *out is the frame to put on the destination bus */
    PX_CANGW_FILTERED,
    PX_CANGW_HOP_LIMIT,
    PX_CANGW_INVALID
} px_cangw_result;

/* A rule that forwards every classic frame unchanged, hops 1. */
void px_cangw_rule_init(px_cangw_rule *r, uint32_t src_bus, uint32_t dst_bus);

/* Parses filter text s[0..n) (no NUL needed, nothing may follow). On error
 * *out is the pass-all filter and *em names the offending character and
 * its 1-based column, and shows the valid forms. PX_E_CONFIG. */
px_err px_cangw_parse_filter(const char *s, size_t n, px_cangw_filter *out, px_errmsg *em);

/* Parses one modification s[0..n). Errors as px_cangw_parse_filter; *out
 * is all zero on error. Whether an FD-form modification fits the rule is
 * px_cangw_add_mod's business. */
px_err px_cangw_parse_mod(const char *s, size_t n, px_cangw_mod *out, px_errmsg *em);

/* Adds m to r, keeping AND, OR, XOR, SET order. PX_E_EXISTS (with a
 * message) if r has that operation already, PX_E_CONFIG for an FD-form
 * modification on a rule without fd. r is unchanged on error. */
px_err px_cangw_add_mod(px_cangw_rule *r, const px_cangw_mod *m, px_errmsg *em);

/* cangw's spelling of f ("123:7FF", "12345678~1FFFFFFF" for an EFF id) and
 * of m (upper-case hex, data in full), NUL-terminated. Text written by these
 * parses back to the same value. PX_E_TOOBIG if cap is short (the _MAX
 * sizes above always suffice). */
px_err px_cangw_format_filter(const px_cangw_filter *f, char *buf, size_t cap);
px_err px_cangw_format_mod(const px_cangw_mod *m, char *buf, size_t cap);

/* Does the filter match can_id? */
bool px_cangw_filter_match(const px_cangw_filter *f, uint32_t can_id);

/* Applies r to frame *in (a frame that passes px_can_check) that has
 * crossed hops_in gateways so far. On PX_CANGW_FORWARD *out is the
 * rewritten frame (passes px_can_check with strict_pad; data past len is
 * cleared) to be put on r->dst_bus with hops_in + 1; otherwise *out is all
 * zero. Pure: counts nothing. in and out may be the same frame. */
px_cangw_result px_cangw_apply(const px_cangw_rule *r, const px_can_frame *in, uint32_t hops_in,
                               px_can_frame *out);

/* px_cangw_apply on gw->rule, counting the result in gw->stats. */
px_cangw_result px_cangw_route(px_cangw *gw, const px_can_frame *in, uint32_t hops_in,
                               px_can_frame *out);

/* "forward", "filtered", "hop-limit", "invalid"; never NULL. */
const char *px_cangw_result_str(px_cangw_result r);

#endif
