/* plexus — the CXL Fabric Manager API on the wire: CCI messages and the
 * payloads of the commands a plexus switch answers (docs/cxl-fmapi.md).
 *
 * Everything here is the CXL specification's byte layout (CXL 3.0/3.1,
 * section 7.6 "Fabric Management" and Figure 7-19 "CCI Message Format"),
 * little-endian, with no padding: the structs below are the decoded,
 * typed form, never the wire form (nothing is cast onto a buffer).
 *
 * Conventions of every codec in this file:
 *   - encoders write into out[0..cap) and set *len to the bytes written;
 *     PX_E_TOOBIG (nothing written, *len = 0) when cap is too small,
 *     PX_E_INVAL when the struct holds a value the layout cannot carry;
 *     reserved bytes and bits are written as zero;
 *   - decoders take a whole payload and check its length exactly:
 *     PX_E_TRUNCATED when it is shorter than the layout (or its own count
 *     fields) say, PX_E_PROTO when it is longer; PX_E_TOOBIG when the
 *     caller's array is too small for the list in it. Reserved bytes and
 *     bits are ignored, as the specification asks of receivers. On error
 *     the output is unspecified.
 *   - no allocation, no I/O, no global state; any thread, any callback.
 */
#ifndef PX_CXL_FMAPI_H
#define PX_CXL_FMAPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fabric/core/err.h"

/* ---- CCI message (CXL r3.1 Figure 7-19) --------------------------------
 *
 *   byte 0      bits 3:0 message category (0 request, 1 response), 7:4 rsvd
 *   byte 1      message tag (echoed in the response)
 *   byte 2      reserved
 *   bytes 3-4   command opcode, u16 (byte 3 = command, byte 4 = command set)
 *   bytes 5-7   bits 20:0 message payload length, 22:21 reserved,
 *               23 BO (background operation, responses only)
 *   bytes 8-9   return code, u16 (responses; px_cci_rc)
 *   bytes 10-11 vendor specific extended status, u16 (responses)
 *   bytes 12-   payload
 */
#define PX_CCI_HDR_LEN      12u
#define PX_CCI_MAX_PAYLOAD  0x1fffffu /* 21 bits */
#define PX_CCI_CAT_REQUEST  0u
#define PX_CCI_CAT_RESPONSE 1u

typedef struct px_cci_hdr {
    uint8_t category; /* PX_CCI_CAT_*, 4 bits */
    uint8_t tag;
    uint16_t opcode;      /* px_fm_opcode for the commands here */
    uint32_t payload_len; /* at most PX_CCI_MAX_PAYLOAD */
    bool bo;              /* background operation started (responses) */
    uint16_t rc;          /* px_cci_rc (responses; 0 in requests) */
    uint16_t vendor_status;
} px_cci_hdr;

/* Command return codes (CXL r3.1 Table 8-34), the whole table. */
typedef enum px_cci_rc {
    PX_CCI_SUCCESS = 0x00,
    PX_CCI_BACKGROUND_STARTED = 0x01,
    PX_CCI_INVALID_INPUT = 0x02,
    PX_CCI_UNSUPPORTED = 0x03,
    PX_CCI_INTERNAL_ERROR = 0x04,
    PX_CCI_RETRY_REQUIRED = 0x05,
    PX_CCI_BUSY = 0x06,
    PX_CCI_MEDIA_DISABLED = 0x07,
    PX_CCI_FW_TRANSFER_IN_PROGRESS = 0x08,
    PX_CCI_FW_TRANSFER_OUT_OF_ORDER = 0x09,
    PX_CCI_FW_VERIFICATION_FAILED = 0x0a,
    PX_CCI_INVALID_SLOT = 0x0b,
    PX_CCI_ACTIVATION_FAILED_ROLLED_BACK = 0x0c,
    PX_CCI_ACTIVATION_FAILED_RESET_REQUIRED = 0x0d,
    PX_CCI_INVALID_HANDLE = 0x0e,
    PX_CCI_INVALID_PHYSICAL_ADDRESS = 0x0f,
    PX_CCI_INJECT_POISON_LIMIT = 0x10,
    PX_CCI_PERMANENT_MEDIA_FAILURE = 0x11,
    PX_CCI_ABORTED = 0x12,
    PX_CCI_INVALID_SECURITY_STATE = 0x13,
    PX_CCI_INCORRECT_PASSPHRASE = 0x14,
    PX_CCI_UNSUPPORTED_MAILBOX = 0x15,
    PX_CCI_INVALID_PAYLOAD_LENGTH = 0x16,
    PX_CCI_INVALID_LOG = 0x17,
    PX_CCI_INTERRUPTED = 0x18,
    PX_CCI_UNSUPPORTED_FEATURE_VERSION = 0x19,
    PX_CCI_UNSUPPORTED_FEATURE_SELECTION = 0x1a,
    PX_CCI_FEATURE_TRANSFER_IN_PROGRESS = 0x1b,
    PX_CCI_FEATURE_TRANSFER_OUT_OF_ORDER = 0x1c,
    PX_CCI_RESOURCES_EXHAUSTED = 0x1d,
    PX_CCI_INVALID_EXTENT_LIST = 0x1e,
    PX_CCI_TRANSFER_OUT_OF_ORDER = 0x1f,
    PX_CCI_REQUEST_ABORT_NOT_SUPPORTED = 0x20,
} px_cci_rc;

/* FM API opcodes (CXL r3.1 section 7.6.7) that plexus implements; any
 * other opcode gets PX_CCI_UNSUPPORTED. */
typedef enum px_fm_opcode {
    PX_FM_IDENTIFY_SWITCH = 0x5100, /* Identify Switch Device */
    PX_FM_GET_PORT_STATE = 0x5101,  /* Get Physical Port State */
    PX_FM_GET_VCS_INFO = 0x5200,    /* Get Virtual CXL Switch Info */
    PX_FM_BIND_VPPB = 0x5201,       /* Bind vPPB */
    PX_FM_UNBIND_VPPB = 0x5202,     /* Unbind vPPB */
    PX_FM_TUNNEL = 0x5300,          /* Tunnel Management Command */
    PX_FM_GET_LD_INFO = 0x5400,     /* Get LD Info */
    PX_FM_GET_LD_ALLOC = 0x5401,    /* Get LD Allocations */
    PX_FM_SET_LD_ALLOC = 0x5402,    /* Set LD Allocations */
} px_fm_opcode;

/* Spec names ("Invalid Input", "Bind vPPB"). Static, never NULL: unknown
 * values give "unknown return code" / "unknown opcode". */
const char *px_cci_rc_name(uint16_t rc);
const char *px_fm_opcode_name(uint16_t opcode);

/* Write the 12-byte header. PX_E_TOOBIG if cap < PX_CCI_HDR_LEN;
 * PX_E_INVAL if category > 15 or payload_len > PX_CCI_MAX_PAYLOAD. */
px_err px_cci_hdr_encode(const px_cci_hdr *h, uint8_t *out, size_t cap);

/* Decode a whole message msg[0..len): header, then exactly payload_len
 * payload bytes. PX_E_TRUNCATED if len < PX_CCI_HDR_LEN (h untouched) or
 * the payload is shorter than the header says; PX_E_PROTO if bytes follow
 * the payload. In both length cases h is filled from the header, so a
 * receiver can still answer with the request's tag and opcode. The
 * payload is at msg + PX_CCI_HDR_LEN. em (NULL allowed) says what was
 * wrong. */
px_err px_cci_decode(const uint8_t *msg, size_t len, px_cci_hdr *h, px_errmsg *em);

/* A whole request message: header (category request, tag, opcode, length)
 * followed by a copy of payload[0..plen). Same errors as the encoders. */
px_err px_cci_request(uint16_t opcode, uint8_t tag, const uint8_t *payload, size_t plen,
                      uint8_t *out, size_t cap, size_t *len);

/* ---- Payloads -----------------------------------------------------------
 * Byte offsets are given as "off:size"; lists use 8-bit counts, so
 * PX_FM_LIST_MAX bounds every array. */
#define PX_FM_LIST_MAX 255u

/* Identify Switch Device (5100h), CXL r3.1 7.6.7.1.1. Request: no payload.
 * Response (0x49 bytes): 0:1 ingress port ID, 1:1 rsvd, 2:1 number of
 * physical ports, 3:1 number of VCSs, 4:32 active port bitmask (bit n =
 * port n), 36:32 active VCS bitmask, 68:2 total number of vPPBs, 70:2
 * number of bound vPPBs, 72:1 number of HDM decoders per USP. */
#define PX_FM_IDENTIFY_SW_LEN 0x49u

typedef struct px_fm_identify_sw {
    uint8_t ingress_port;
    uint8_t n_phys_ports;
    uint8_t n_vcs;
    uint8_t active_ports[32];
    uint8_t active_vcs[32];
    uint16_t total_vppbs;
    uint16_t bound_vppbs;
    uint8_t hdm_decoders;
} px_fm_identify_sw;

px_err px_fm_identify_sw_encode(const px_fm_identify_sw *v, uint8_t *out, size_t cap, size_t *len);
px_err px_fm_identify_sw_decode(const uint8_t *pl, size_t len, px_fm_identify_sw *v);

/* Get Physical Port State (5101h), CXL r3.1 7.6.7.1.2.
 * Request: 0:1 number of ports N, 1:N port IDs.
 * Response: 0:1 number of ports N, 1:3 rsvd, 4:16*N port information
 * blocks: 0:1 port ID, 1:1 current port configuration state (bits 3:0),
 * 2:1 connected device mode (CXL 2.0: connected device CXL version), 3:1
 * rsvd, 4:1 connected device type, 5:1 supported CXL modes (CXL 2.0: port
 * CXL version bitmask), 6:1 maximum link width, 7:1 negotiated link width,
 * 8:1 supported link speeds vector, 9:1 max link speed, 10:1 current link
 * speed, 11:1 LTSSM state, 12:1 first negotiated lane number, 13:2 link
 * state flags, 15:1 supported LD count. */
#define PX_FM_PORT_INFO_LEN 16u

/* Current port configuration state. */
#define PX_FM_PORT_DISABLED  0x0u
#define PX_FM_PORT_BINDING   0x1u
#define PX_FM_PORT_UNBINDING 0x2u
#define PX_FM_PORT_DSP       0x3u
#define PX_FM_PORT_USP       0x4u
#define PX_FM_PORT_FABRIC    0x5u
#define PX_FM_PORT_INVALID   0xfu /* no such port ID */
/* Connected device mode: 68B flit and VH (CXL 2.0). */
#define PX_FM_DEV_MODE_68B_VH 0x2u
/* Connected device type. */
#define PX_FM_DEV_NONE      0x0u
#define PX_FM_DEV_PCIE      0x1u
#define PX_FM_DEV_TYPE1     0x2u
#define PX_FM_DEV_TYPE2     0x3u
#define PX_FM_DEV_TYPE3_SLD 0x4u
#define PX_FM_DEV_TYPE3_MLD 0x5u
/* Supported CXL modes: bit 1, 68B flit and VH capable (CXL 2.0). */
#define PX_FM_CXL_MODE_68B_VH 0x02u
/* LTSSM state. */
#define PX_FM_LTSSM_DETECT   0x0u
#define PX_FM_LTSSM_L0       0x4u
#define PX_FM_LTSSM_DISABLED 0x8u

typedef struct px_fm_port_state_req {
    uint8_t n_ports;
    uint8_t ports[PX_FM_LIST_MAX];
} px_fm_port_state_req;

typedef struct px_fm_port_info {
    uint8_t port_id;
    uint8_t config_state; /* PX_FM_PORT_* */
    uint8_t dev_mode;
    uint8_t dev_type; /* PX_FM_DEV_* */
    uint8_t cxl_modes;
    uint8_t max_link_width; /* PCIe Link Capabilities encoding: 0x10 = x16 */
    uint8_t link_width;     /* PCIe Link Status encoding */
    uint8_t link_speeds;    /* PCIe Supported Link Speeds Vector: 0x1f = up to 32 GT/s */
    uint8_t max_link_speed; /* PCIe encoding: 5 = 32 GT/s */
    uint8_t link_speed;
    uint8_t ltssm; /* PX_FM_LTSSM_* */
    uint8_t first_lane;
    uint16_t link_flags;
    uint8_t ld_count;
} px_fm_port_info;

px_err px_fm_port_state_req_encode(const px_fm_port_state_req *v, uint8_t *out, size_t cap,
                                   size_t *len);
px_err px_fm_port_state_req_decode(const uint8_t *pl, size_t len, px_fm_port_state_req *v);
/* n blocks (at most PX_FM_LIST_MAX, else PX_E_INVAL). */
px_err px_fm_port_state_rsp_encode(const px_fm_port_info *ports, size_t n, uint8_t *out, size_t cap,
                                   size_t *len);
/* Up to max blocks into ports[], their count into *n. */
px_err px_fm_port_state_rsp_decode(const uint8_t *pl, size_t len, px_fm_port_info *ports,
                                   size_t max, size_t *n);

/* Get Virtual CXL Switch Info (5200h), CXL r3.1 7.6.7.2.1.
 * Request: 0:1 start vPPB, 1:1 vPPB list limit (at least 1), 2:1 number
 * of VCSs N (at least 1), 3:N VCS IDs.
 * Response: 0:1 number of VCSs, 1:3 rsvd, then one VCS information block
 * per VCS: 0:1 VCS ID, 1:1 VCS state, 2:1 USP ID, 3:1 number of vPPBs V
 * (all of the VCS), then min(limit, V - start) (0 if start >= V) vPPB
 * entries from the start vPPB on: 0:1 binding status, 1:1 bound port ID,
 * 2:1 bound LD ID (FFh unless bound to an LD), 3:1 rsvd. The entry count
 * is not on the wire: a decoder needs the request's start and limit. */
#define PX_FM_VCS_BLOCK_HDR_LEN 4u
#define PX_FM_VPPB_INFO_LEN     4u

#define PX_FM_VCS_DISABLED 0x00u
#define PX_FM_VCS_ENABLED  0x01u
#define PX_FM_VCS_INVALID  0xffu /* no such VCS ID */

#define PX_FM_VPPB_UNBOUND     0x0u
#define PX_FM_VPPB_IN_PROGRESS 0x1u /* binding or unbinding */
#define PX_FM_VPPB_BOUND_PORT  0x2u
#define PX_FM_VPPB_BOUND_LD    0x3u
#define PX_FM_NO_LD_ID         0xffu

typedef struct px_fm_vcs_info_req {
    uint8_t start_vppb;
    uint8_t vppb_limit;
    uint8_t n_vcs;
    uint8_t vcs[PX_FM_LIST_MAX];
} px_fm_vcs_info_req;

typedef struct px_fm_vppb_info {
    uint8_t status; /* PX_FM_VPPB_* */
    uint8_t port;
    uint8_t ld;
} px_fm_vppb_info;

typedef struct px_fm_vcs_block {
    uint8_t vcs_id;
    uint8_t state; /* PX_FM_VCS_* */
    uint8_t usp_id;
    uint8_t n_vppbs;   /* vPPBs the VCS has */
    uint8_t n_entries; /* entries[] carried (from the start vPPB on) */
    px_fm_vppb_info entries[PX_FM_LIST_MAX];
} px_fm_vcs_block;

px_err px_fm_vcs_info_req_encode(const px_fm_vcs_info_req *v, uint8_t *out, size_t cap,
                                 size_t *len);
px_err px_fm_vcs_info_req_decode(const uint8_t *pl, size_t len, px_fm_vcs_info_req *v);
/* Response, piecewise (one block at a time, as the switch writes it): the
 * 4-byte list header, then each block appended after it. */
px_err px_fm_vcs_info_rsp_begin(uint8_t n_vcs, uint8_t *out, size_t cap, size_t *len);
px_err px_fm_vcs_block_encode(const px_fm_vcs_block *b, uint8_t *out, size_t cap, size_t *len);
/* Response, whole: blocks[0..n) (n at most PX_FM_LIST_MAX). */
px_err px_fm_vcs_info_rsp_encode(const px_fm_vcs_block *blocks, size_t n, uint8_t *out, size_t cap,
                                 size_t *len);
/* Up to max blocks into blocks[], their count into *n; start_vppb and
 * vppb_limit are the request's. A block whose entry count
 * min(limit, n_vppbs - start) does not fit the rest is PX_E_TRUNCATED. */
px_err px_fm_vcs_info_rsp_decode(const uint8_t *pl, size_t len, uint8_t start_vppb,
                                 uint8_t vppb_limit, px_fm_vcs_block *blocks, size_t max,
                                 size_t *n);

/* Bind vPPB (5201h), CXL r3.1 7.6.7.2.2. Request (6 bytes): 0:1 VCS ID,
 * 1:1 vPPB ID, 2:1 physical port ID, 3:1 rsvd, 4:2 LD ID (FFFFh when the
 * port is not an MLD port). Response: no payload. */
#define PX_FM_BIND_REQ_LEN 6u
#define PX_FM_LD_ID_NONE   0xffffu

typedef struct px_fm_bind_req {
    uint8_t vcs;
    uint8_t vppb;
    uint8_t port;
    uint16_t ld;
} px_fm_bind_req;

px_err px_fm_bind_req_encode(const px_fm_bind_req *v, uint8_t *out, size_t cap, size_t *len);
px_err px_fm_bind_req_decode(const uint8_t *pl, size_t len, px_fm_bind_req *v);

/* Unbind vPPB (5202h), CXL r3.1 7.6.7.2.3. Request (3 bytes): 0:1 VCS ID,
 * 1:1 vPPB ID, 2:1 bits 3:0 unbind option (0 wait for port link down, 1
 * simulate managed hot-remove, 2 simulate surprise hot-remove), bits 7:4
 * rsvd. Response: no payload. */
#define PX_FM_UNBIND_REQ_LEN       3u
#define PX_FM_UNBIND_WAIT_LINKDOWN 0x0u
#define PX_FM_UNBIND_MANAGED       0x1u
#define PX_FM_UNBIND_SURPRISE      0x2u

typedef struct px_fm_unbind_req {
    uint8_t vcs;
    uint8_t vppb;
    uint8_t option; /* 4 bits */
} px_fm_unbind_req;

px_err px_fm_unbind_req_encode(const px_fm_unbind_req *v, uint8_t *out, size_t cap, size_t *len);
px_err px_fm_unbind_req_decode(const uint8_t *pl, size_t len, px_fm_unbind_req *v);

/* Tunnel Management Command (5300h), CXL r3.1 7.6.7.3.1.
 * Request: 0:1 port or LD ID, 1:1 target type (0 = port or LD based),
 * 2:2 command size S, 4:S a whole CCI request message.
 * Response: 0:2 response length R, 2:2 rsvd, 4:R a whole CCI response.
 * Decoded messages point into the payload; the decoders check only the
 * sizes (S and R at least PX_CCI_HDR_LEN and equal to what follows). */
#define PX_FM_TUNNEL_HDR_LEN    4u
#define PX_FM_TUNNEL_PORT_OR_LD 0x0u

typedef struct px_fm_tunnel {
    uint8_t target;      /* requests: port or LD ID */
    uint8_t target_type; /* requests: PX_FM_TUNNEL_PORT_OR_LD */
    const uint8_t *msg;
    size_t msg_len;
} px_fm_tunnel;

px_err px_fm_tunnel_req_encode(const px_fm_tunnel *v, uint8_t *out, size_t cap, size_t *len);
px_err px_fm_tunnel_req_decode(const uint8_t *pl, size_t len, px_fm_tunnel *v);
px_err px_fm_tunnel_rsp_encode(const px_fm_tunnel *v, uint8_t *out, size_t cap, size_t *len);
px_err px_fm_tunnel_rsp_decode(const uint8_t *pl, size_t len, px_fm_tunnel *v);

/* Get LD Info (5400h), CXL r3.1 7.6.7.4.1. Request: no payload.
 * Response (11 bytes): 0:8 memory size (bytes), 8:2 LD count, 10:1 QoS
 * telemetry capability (bit 0 egress port congestion, bit 1 temporary
 * throughput reduction). */
#define PX_FM_LD_INFO_LEN 11u

typedef struct px_fm_ld_info {
    uint64_t memory_size;
    uint16_t ld_count;
    uint8_t qos_caps;
} px_fm_ld_info;

px_err px_fm_ld_info_encode(const px_fm_ld_info *v, uint8_t *out, size_t cap, size_t *len);
px_err px_fm_ld_info_decode(const uint8_t *pl, size_t len, px_fm_ld_info *v);

/* LD allocations, one 16-byte entry per LD: 0:8 range 1 allocation
 * multiplier, 8:8 range 2 allocation multiplier (times the memory
 * granularity: bytes of the LD's two DPA ranges). */
#define PX_FM_LD_ALLOC_LEN 16u
#define PX_FM_GRAN_256M    0x0u /* memory granularity 256 MiB (1h 512 MiB, 2h 1 GiB) */

typedef struct px_fm_ld_alloc {
    uint64_t range1;
    uint64_t range2;
} px_fm_ld_alloc;

/* Get LD Allocations (5401h), CXL r3.1 7.6.7.4.2.
 * Request (2 bytes): 0:1 start LD ID, 1:1 LD allocation list limit.
 * Response: 0:1 number of LDs (enabled in the device), 1:1 memory
 * granularity, 2:1 start LD ID, 3:1 LD allocation list length N, 4:16*N
 * entries. */
#define PX_FM_GET_LD_ALLOC_REQ_LEN 2u

typedef struct px_fm_get_ld_alloc_req {
    uint8_t start_ld;
    uint8_t limit;
} px_fm_get_ld_alloc_req;

typedef struct px_fm_get_ld_alloc_rsp {
    uint8_t n_lds;
    uint8_t granularity;
    uint8_t start_ld;
    uint8_t n; /* entries in ld[] */
    px_fm_ld_alloc ld[PX_FM_LIST_MAX];
} px_fm_get_ld_alloc_rsp;

px_err px_fm_get_ld_alloc_req_encode(const px_fm_get_ld_alloc_req *v, uint8_t *out, size_t cap,
                                     size_t *len);
px_err px_fm_get_ld_alloc_req_decode(const uint8_t *pl, size_t len, px_fm_get_ld_alloc_req *v);
px_err px_fm_get_ld_alloc_rsp_encode(const px_fm_get_ld_alloc_rsp *v, uint8_t *out, size_t cap,
                                     size_t *len);
px_err px_fm_get_ld_alloc_rsp_decode(const uint8_t *pl, size_t len, px_fm_get_ld_alloc_rsp *v);

/* Set LD Allocations (5402h), CXL r3.1 7.6.7.4.3. Request and response
 * have the same layout: 0:1 number of LDs N, 1:1 start LD ID, 2:2 rsvd,
 * 4:16*N entries (the response's are the allocations in force after the
 * command). */
typedef struct px_fm_set_ld_alloc {
    uint8_t n;
    uint8_t start_ld;
    px_fm_ld_alloc ld[PX_FM_LIST_MAX];
} px_fm_set_ld_alloc;

px_err px_fm_set_ld_alloc_encode(const px_fm_set_ld_alloc *v, uint8_t *out, size_t cap,
                                 size_t *len);
px_err px_fm_set_ld_alloc_decode(const uint8_t *pl, size_t len, px_fm_set_ld_alloc *v);

#endif
