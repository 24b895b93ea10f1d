/* plexus — the state of one emulated CXL switch and its Fabric Manager API.
 *
 * A `cxl_switch` net with `ports` upstream ports is modelled as that many
 * Virtual CXL Switches (VCS): VCS n is upstream port n, the one a guest's
 * `cxl:` attachment with `port: n` plugs into. Each VCS has the same
 * number of vPPBs (virtual downstream bridges, PX_CXLSW_VPPBS unless the
 * configuration says otherwise). Each `cxl_pool` of the switch is one
 * multi-logical device (MLD) on a downstream physical port: pools are
 * numbered in configuration (= topology) order and pool k sits on physical
 * port n_ports + k, after the upstream ports 0..n_ports-1.
 *
 * Binding vPPB (vcs, vppb) to (pool, LD) puts that LD behind the VCS; an LD
 * may be bound to several vPPBs at once (a shared LD; the data side
 * replicates it). Each LD has an allocation (two ranges, in 256 MiB units)
 * that the FM can change while the LD is not bound; the allocations of a
 * pool never exceed its capacity (n_lds * ld_size).
 *
 * The state changes only through px_cxlsw_execute (FM API requests as
 * whole CCI messages, fmapi.h) and the convenience calls below, which share
 * one implementation and answer with the same return codes. It is pure:
 * no I/O, no clock, no randomness; the same calls in the same order give
 * the same state and the same bytes. Not thread-safe: one switch, one
 * thread. Nothing here blocks or calls back; any function may run inside a
 * libuv callback.
 *
 * Addressing (docs/cxl-fmapi.md): a request is addressed to the switch's
 * own CCI (port PX_CXLSW_PORT_SWITCH), which implements the 51xxh, 52xxh
 * and 5300h commands, or to the FM-owned LD of the MLD on a pool's
 * physical port, which implements the 54xxh commands. That port argument
 * stands for the one level of Tunnel Management Command (5300h) the
 * specification puts around MLD commands; a real 5300h sent to the switch
 * reaches the same place.
 */
#ifndef PX_CXL_SWITCH_H
#define PX_CXL_SWITCH_H

#include <stddef.h>
#include <stdint.h>

#include "fabric/core/err.h"
#include "fabric/cxl-switch/fmapi.h"

#define PX_CXLSW_VPPBS          4u             /* vPPBs per VCS by default */
#define PX_CXLSW_MAX_VPPBS      255u           /* vPPB count is 8 bits on the wire */
#define PX_CXLSW_MAX_PHYS_PORTS 255u           /* USPs + pools; port IDs 0..254 */
#define PX_CXLSW_MAX_LDS        256u           /* LDs of one pool (topology limit) */
#define PX_CXLSW_NAME_MAX       64u            /* buffer size: names 1..63 chars */
#define PX_CXLSW_GRANULE        (256ull << 20) /* allocation unit, 256 MiB */
#define PX_CXLSW_MAX_LD_SIZE    (64ull << 40)  /* 64 TiB */
#define PX_CXLSW_PORT_SWITCH    0xffffu        /* px_cxlsw_execute: the switch's CCI */
#define PX_CXLSW_MSG_MAX        65536u         /* longest response message written */
#define PX_CXLSW_INGRESS_PORT   0xffu          /* Identify's ingress port: the FM, no port */
#define PX_CXLSW_HDM_DECODERS   1u             /* per USP, as QEMU 7.2's cxl-upstream */

/* Vendor specific extended status in plexus's responses: which rule a
 * failed request broke (0 when the return code says it all). Stable
 * values; px_cxlsw_vs_name() names them. */
typedef enum px_cxlsw_vs {
    PX_CXLSW_VS_NONE = 0,
    PX_CXLSW_VS_VCS = 1,          /* no such VCS */
    PX_CXLSW_VS_VPPB = 2,         /* no such vPPB in the VCS */
    PX_CXLSW_VS_PORT = 3,         /* no such pool (physical port) */
    PX_CXLSW_VS_LD = 4,           /* no such LD in the pool */
    PX_CXLSW_VS_VPPB_BOUND = 5,   /* bind: the vPPB is already bound */
    PX_CXLSW_VS_VPPB_UNBOUND = 6, /* unbind: the vPPB is not bound */
    PX_CXLSW_VS_LD_BOUND = 7,     /* set allocations: the LD is bound, cannot change */
    PX_CXLSW_VS_CAPACITY = 8,     /* set allocations: more than the pool holds */
    PX_CXLSW_VS_LD_EMPTY = 9,     /* bind: the LD has no memory allocated */
    PX_CXLSW_VS_RSP_TOO_BIG = 10, /* the response would not fit the buffer */
    PX_CXLSW_VS_FIELD = 11,       /* a field is out of its range (count, limit, option) */
    PX_CXLSW_VS_TARGET = 12,      /* command not implemented by the addressed CCI */
} px_cxlsw_vs;

typedef struct px_cxlsw px_cxlsw;

typedef struct px_cxlsw_pool_cfg {
    const char *name; /* 1..63 characters, unique in the switch */
    uint32_t n_lds;   /* 1..PX_CXLSW_MAX_LDS */
    uint64_t ld_size; /* bytes: a multiple of 256 MiB, at most 64 TiB */
} px_cxlsw_pool_cfg;

/* A binding: vPPB (vcs, vppb) to LD ld of pool (index in the pools). */
typedef struct px_cxlsw_binding {
    uint32_t vcs;
    uint32_t vppb;
    uint32_t pool;
    uint32_t ld;
} px_cxlsw_binding;

typedef struct px_cxlsw_cfg {
    const char *name;               /* the switch's net name, 1..63 characters */
    uint32_t n_ports;               /* upstream ports = VCSs, at least 1 */
    uint32_t vppbs;                 /* per VCS, 0: PX_CXLSW_VPPBS */
    const px_cxlsw_pool_cfg *pools; /* n_ports + n_pools <= PX_CXLSW_MAX_PHYS_PORTS */
    uint32_t n_pools;
    const px_cxlsw_binding *bindings; /* made at creation, in order */
    uint32_t n_bindings;
} px_cxlsw_cfg;

/* A switch in its initial state: every LD allocated ld_size (range 1),
 * then cfg->bindings bound one by one as px_cxlsw_bind would. cfg and what
 * it points to are copied; the caller keeps them. PX_E_CONFIG (with em
 * naming the field) when a limit above is broken or an initial binding is
 * refused; PX_E_NOMEM. *out is NULL on error. Free with px_cxlsw_free. */
px_err px_cxlsw_new(const px_cxlsw_cfg *cfg, px_cxlsw **out, px_errmsg *em);

/* NULL is allowed. */
void px_cxlsw_free(px_cxlsw *sw);

/* Execute one FM API request: req[0..len) is a whole CCI request message;
 * a whole CCI response message (same tag and opcode, category response)
 * is written to rsp[0..cap) and its length to *rsp_len. port is
 * PX_CXLSW_PORT_SWITCH for the switch's CCI, or a pool's physical port for
 * that MLD's FM-owned LD (the 54xxh commands).
 *
 * Whatever the bytes, the answer is a well-formed response: a malformed or
 * refused request gets the specification's return code (Invalid Payload
 * Length, Invalid Input, Unsupported) and no payload, with a px_cxlsw_vs
 * in the vendor specific status. A header too short to read answers with
 * tag and opcode taken from what there is (0 otherwise). Bind and Unbind
 * complete at once and answer Success, not Background Command Started.
 * A response longer than min(cap, PX_CXLSW_MSG_MAX) is replaced by Invalid
 * Input with PX_CXLSW_VS_RSP_TOO_BIG (ask for fewer items).
 *
 * PX_OK when a response was written (whatever its return code);
 * PX_E_TOOBIG when cap < PX_CCI_HDR_LEN (nothing written, *rsp_len = 0);
 * PX_E_INVAL for NULL pointers. */
px_err px_cxlsw_execute(px_cxlsw *sw, const uint8_t *req, size_t len, uint16_t port, uint8_t *rsp,
                        size_t cap, size_t *rsp_len);

/* Bind vPPB (vcs, vppb) to LD ld of pool, as the Bind vPPB command does.
 * PX_CCI_SUCCESS, or PX_CCI_INVALID_INPUT with *vs (NULL allowed) saying
 * why: VCS, VPPB, PORT (pool), LD, VPPB_BOUND, LD_EMPTY. */
px_cci_rc px_cxlsw_bind(px_cxlsw *sw, uint32_t vcs, uint32_t vppb, uint32_t pool, uint32_t ld,
                        uint16_t *vs);

/* Unbind vPPB (vcs, vppb), as the Unbind vPPB command does. PX_CCI_SUCCESS,
 * or PX_CCI_INVALID_INPUT with *vs (NULL allowed): VCS, VPPB,
 * VPPB_UNBOUND. */
px_cci_rc px_cxlsw_unbind(px_cxlsw *sw, uint32_t vcs, uint32_t vppb, uint16_t *vs);

/* The bindings, ordered by (vcs, vppb): the first min(cap, total) are
 * written to out (NULL allowed when cap is 0); returns the total. */
size_t px_cxlsw_bindings(const px_cxlsw *sw, px_cxlsw_binding *out, size_t cap);

/* LD ld of pool: its allocation (in 256 MiB units); PX_CCI_INVALID_INPUT
 * for no such pool or LD (out untouched). */
px_cci_rc px_cxlsw_ld_alloc_get(const px_cxlsw *sw, uint32_t pool, uint32_t ld,
                                px_fm_ld_alloc *out);

/* Set the allocations of LDs start..start+n-1 of pool to allocs[0..n), as
 * the Set LD Allocations command does: all or nothing. PX_CCI_SUCCESS, or
 * PX_CCI_INVALID_INPUT with *vs (NULL allowed): PORT (pool), FIELD (n is
 * 0), LD (past the last LD), LD_BOUND (a bound LD would change; setting
 * it to what it has is allowed), CAPACITY (the pool's allocations would
 * exceed its capacity). */
px_cci_rc px_cxlsw_ld_alloc_set(px_cxlsw *sw, uint32_t pool, uint32_t start, uint32_t n,
                                const px_fm_ld_alloc *allocs, uint16_t *vs);

/* Bytes of LD ld of pool ((range1 + range2) * 256 MiB): the size of its
 * backing memory. 0 for no such LD (or nothing allocated). */
uint64_t px_cxlsw_ld_bytes(const px_cxlsw *sw, uint32_t pool, uint32_t ld);

/* How many vPPBs LD ld of pool is bound to (more than 1: shared). */
uint32_t px_cxlsw_ld_users(const px_cxlsw *sw, uint32_t pool, uint32_t ld);

typedef struct px_cxlsw_pool_info {
    const char *name; /* owned by the switch, valid until px_cxlsw_free */
    uint32_t port;    /* physical port */
    uint32_t n_lds;
    uint64_t ld_size;
} px_cxlsw_pool_info;

const char *px_cxlsw_name(const px_cxlsw *sw); /* owned by the switch */
uint32_t px_cxlsw_n_vcs(const px_cxlsw *sw);
uint32_t px_cxlsw_vppbs(const px_cxlsw *sw);
uint32_t px_cxlsw_n_pools(const px_cxlsw *sw);

/* PX_E_NOTFOUND when pool >= px_cxlsw_n_pools. */
px_err px_cxlsw_pool(const px_cxlsw *sw, uint32_t pool, px_cxlsw_pool_info *out);

/* The index of the pool called name: PX_E_NOTFOUND when none is. */
px_err px_cxlsw_pool_find(const px_cxlsw *sw, const char *name, uint32_t *pool);

/* Counts changes to bindings and allocations (starts at 0 after
 * px_cxlsw_new): a caller compares it to know whether to republish. */
uint64_t px_cxlsw_generation(const px_cxlsw *sw);

/* "vPPB already bound" and so on. Static, never NULL. */
const char *px_cxlsw_vs_name(uint16_t vs);

#endif
