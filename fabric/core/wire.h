/* plexus — the wire protocol. The only module that touches msgpack.
 *
 * Every message on every plexus socket (control plane and data plane) is an
 * envelope:
 *
 *     [version, type, sender, object, seq, body]      msgpack array of 6
 *
 * version  uint   PX_WIRE_VERSION; anything else is rejected (PX_E_VERSION)
 * type     uint   px_msg_type; unknown values are rejected (PX_E_UNKNOWN)
 * sender   uint   node id of the sender (0 = not yet assigned)
 * object   uint   id of the fabric object the message is about (0 = none)
 * seq      uint   sender's sequence number for (sender, object, type family)
 * body     map    string keys; fields per message type (see wire_msgs.c and
 *                 docs/wire-protocol.md); unknown keys are rejected
 *
 * A transport message (one ZeroMQ message) carries one or more envelopes
 * back to back; px_wire_decode() reports how many bytes each one used.
 *
 * Limits are named constants below and are checked on the raw bytes before
 * anything is allocated: a peer claiming a 4-billion-element array costs us
 * nothing but the rejection. (The decoder in fact allocates nothing at all.)
 *
 * Body fields marked optional in docs/wire-protocol.md are left out by the
 * encoder when zero or empty and decode as zero when absent; required ones
 * are always written and must be present.
 */
#ifndef PX_WIRE_H
#define PX_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define PX_WIRE_VERSION      1u
#define PX_WIRE_MAX_MSG      (4u << 20) /* bytes in one encoded envelope */
#define PX_WIRE_MAX_DEPTH    8u         /* nesting of arrays/maps, envelope = 1 */
#define PX_WIRE_MAX_COUNT    4096u      /* elements in one array or map */
#define PX_WIRE_MAX_STR      4096u      /* bytes in one string */
#define PX_WIRE_MAX_BIN      (1u << 20) /* bytes in one bin */
#define PX_WIRE_MAX_NAME     64u        /* names: node, role, feature, guest */
#define PX_WIRE_MAX_FEATURES 16u

/* Message types. Values are part of the protocol: never renumber. */
typedef enum px_msg_type {
    PX_MSG_HELLO = 1,       /* first message on every connection, both ways */
    PX_MSG_HEARTBEAT = 2,   /* liveness and load */
    PX_MSG_ERROR = 3,       /* a request failed or a peer misbehaved */
    PX_MSG_PROBE = 4,       /* timestamped payload: tests, benches, latency checks */
    PX_MSG_REGISTER = 5,    /* node -> coordinator: capacity, features, labs it runs */
    PX_MSG_REGISTERED = 6,  /* coordinator -> node: its id and heartbeat period */
    PX_MSG_PLAN = 7,        /* coordinator -> node: one lab's work for this node */
    PX_MSG_STATUS = 8,      /* node -> coordinator: outcome of a plan */
    PX_MSG_REQUEST = 9,     /* CLI -> coordinator: up, down, status, nodes */
    PX_MSG_REPLY = 10,      /* coordinator -> CLI */
    PX_MSG_CAN = 11,        /* data plane: CAN frames to a bus home, from it to members */
    PX_MSG_TOOL = 12,       /* CLI -> coordinator -> node: a fabric tool command */
    PX_MSG_TOOL_REPLY = 13, /* node -> coordinator -> CLI */
    PX_MSG_ETH = 14,        /* data plane: Ethernet frames between segment members, captures */
    PX_MSG_SHM = 15,        /* data plane: ivshmem peers, doorbells and region contents */
    PX_MSG_CXL = 16,        /* data plane: CXL logical-device data, pool <-> a guest's host */
    PX_MSG_CXLSYNC = 17,    /* data plane: changes to a shared CXL LD, host <-> the pool's node */
    PX_MSG_TYPE_MAX         /* one past the highest type */
} px_msg_type;

/* Borrowed views into the decoded buffer: valid as long as that buffer is;
 * never NUL-terminated. Strings are UTF-8 without NUL bytes: the decoder
 * rejects anything else and the encoder refuses to write it. */
typedef struct px_str {
    const char *ptr;
    uint32_t len;
} px_str;

typedef struct px_bin {
    const uint8_t *ptr;
    uint32_t len;
} px_bin;

typedef struct px_envelope {
    uint32_t version; /* filled by decode; encode always writes PX_WIRE_VERSION */
    uint32_t type;    /* px_msg_type */
    uint32_t sender;
    uint64_t object;
    uint64_t seq;
} px_envelope;

/* ---- bodies: one struct per message type ---- */

typedef struct px_msg_hello {
    uint32_t proto_min, proto_max; /* versions the sender speaks; 1 ≤ min ≤ max */
    px_str role;                   /* "coordinator" | "node" | "cli" */
    px_str name;                   /* ≤ PX_WIRE_MAX_NAME */
    uint32_t n_features;
    px_str features[PX_WIRE_MAX_FEATURES]; /* e.g. "kvm", "af_can", "rdma" */
} px_msg_hello;

typedef struct px_msg_heartbeat {
    uint64_t uptime_ms;
    uint32_t n_guests;
    uint32_t load_permille; /* 1-minute load average × 1000 / cores */
    uint32_t links_up;      /* data-plane peers answering (optional) */
    uint32_t links_total;   /* data-plane peers known (optional) */
    uint32_t rtt_us;        /* slowest recent data-plane round trip (optional) */
} px_msg_heartbeat;

typedef struct px_msg_error {
    int32_t code;         /* px_err value */
    px_str message;       /* ≤ PX_WIRE_MAX_STR */
    uint64_t in_reply_to; /* seq of the failed request, 0 if none */
} px_msg_error;

typedef struct px_msg_probe {
    uint64_t t_ns;  /* sender's CLOCK_MONOTONIC at send */
    px_bin payload; /* ≤ PX_WIRE_MAX_BIN */
} px_msg_probe;

/* ---- control plane (coordinator <-> node <-> CLI); docs/control-plane.md ---- */

#define PX_WIRE_MAX_LABS     64u        /* labs in one REGISTER or REPLY */
#define PX_WIRE_MAX_PEERS    64u        /* nodes in one PLAN or REPLY */
#define PX_WIRE_MAX_ROWS     1024u      /* guests or nets in one PLAN, STATUS or REPLY */
#define PX_WIRE_MAX_TOPO     (1u << 20) /* bytes of topology text in PLAN / REQUEST */
#define PX_WIRE_MAX_ENDPOINT 256u

typedef struct px_lab_epoch {
    px_str lab;
    uint64_t epoch;
} px_lab_epoch;

typedef struct px_msg_register { /* node -> coordinator, after HELLO */
    px_str name;
    uint32_t cpus;
    uint64_t mem_mb;
    uint32_t n_features;
    px_str features[PX_WIRE_MAX_FEATURES];
    px_str data_endpoint; /* where other nodes reach this node's data plane */
    px_str data_key;      /* Z85 public key of that data plane */
    uint32_t n_labs;      /* labs the node still runs (re-attach after restarts) */
    px_lab_epoch labs[PX_WIRE_MAX_LABS];
} px_msg_register;

typedef struct px_msg_registered { /* coordinator -> node */
    uint32_t node_id;
    uint32_t heartbeat_ms; /* send HEARTBEAT at least this often */
} px_msg_registered;

typedef struct px_plan_net {
    px_str name;
    px_str home;     /* node that is the net's authority */
    uint64_t object; /* object id used in envelopes about this net */
} px_plan_net;

typedef struct px_plan_member { /* a node with endpoints on a net */
    px_str net;
    px_str node;
} px_plan_member;

/* A CXL binding (docs/cxl.md): LD `ld` of pool `pool` on vPPB `vppb` of
 * virtual switch `vcs` of switch `sw` — the guest attached to that switch's
 * upstream port `vcs`. */
typedef struct px_plan_cxl {
    px_str sw;
    uint32_t vcs;
    uint32_t vppb;
    px_str pool;
    uint32_t ld;
    uint64_t size; /* bytes of the LD's memory (its allocation); 0: the pool's ld_size */
} px_plan_cxl;

typedef struct px_plan_peer {
    px_str name;
    px_str endpoint;
    px_str key;
} px_plan_peer;

typedef struct px_msg_plan { /* coordinator -> node: one per node per phase */
    px_str lab;
    uint64_t epoch;
    px_str op;       /* "apply" | "teardown" */
    px_bin topology; /* the lab's YAML text (apply only) */
    uint32_t n_guests;
    px_str guests[PX_WIRE_MAX_ROWS]; /* guests this node runs */
    uint32_t n_nets;
    px_plan_net nets[PX_WIRE_MAX_ROWS]; /* nets this node takes part in */
    uint32_t n_peers;
    px_plan_peer peers[PX_WIRE_MAX_PEERS]; /* data-plane directory */
    uint32_t n_members;
    px_plan_member members[PX_WIRE_MAX_ROWS]; /* member nodes of the nets homed here */
    uint32_t n_cxl;
    px_plan_cxl cxl[PX_WIRE_MAX_ROWS]; /* the lab's CXL bindings now (every node gets all) */
} px_msg_plan;

typedef struct px_guest_row {
    px_str name;
    px_str lab;
    px_str host;
    px_str state;  /* "planned" | "starting" | "running" | "stopped" | "failed" ... */
    px_str detail; /* why, for failed and stopped */
} px_guest_row;

typedef struct px_msg_status { /* node -> coordinator: result of a PLAN */
    px_str lab;
    uint64_t epoch;
    px_str state;   /* "applied" | "failed" | "removed" */
    px_str message; /* for failed */
    uint32_t n_guests;
    px_guest_row guests[PX_WIRE_MAX_ROWS];
} px_msg_status;

typedef struct px_msg_request { /* CLI -> coordinator */
    px_str op;                  /* "up" | "down" | "status" | "nodes" */
    px_str lab;                 /* up: the lab name from the file; down/status: optional filter */
    px_bin topology;            /* up: the YAML text */
    px_str source;              /* up: file name, for messages */
    px_str policy;              /* up: on node loss, "reschedule" (default) | "stop" */
} px_msg_request;

typedef struct px_lab_row {
    px_str name;
    px_str state; /* "deploying" | "running" | "degraded" | "failed" | "stopping" */
    uint64_t epoch;
    uint32_t guests;
    px_str policy;
    px_str message;
} px_lab_row;

typedef struct px_node_row {
    px_str name;
    px_str state; /* "up" | "lost" | "unknown" (not seen since a coordinator restart) */
    px_str endpoint;
    uint32_t cpus;
    uint64_t mem_mb;
    uint32_t guests;
    uint64_t seen_ms_ago;
    uint32_t n_features;
    px_str features[PX_WIRE_MAX_FEATURES];
    uint32_t links_up, links_total, rtt_us; /* data plane, from heartbeats */
} px_node_row;

typedef struct px_msg_reply { /* coordinator -> CLI, envelope seq = request's */
    int32_t code;             /* px_err */
    px_str message;           /* what happened, or what went wrong and a hint */
    uint32_t n_labs;
    px_lab_row labs[PX_WIRE_MAX_LABS];
    uint32_t n_nodes;
    px_node_row nodes[PX_WIRE_MAX_PEERS];
    uint32_t n_guests;
    px_guest_row guests[PX_WIRE_MAX_ROWS];
} px_msg_reply;

/* ---- fabric services: docs/wire-protocol.md ---- */

#define PX_WIRE_MAX_CAN_BATCH 256u /* frames in one CAN message */
#define PX_WIRE_MAX_CAN_FRAME 70u  /* packed frame: 4 id + 1 len + 1 flags + 64 data */
#define PX_WIRE_MAX_TOOL_ARGS 64u

/* CAN message ops. */
typedef enum px_can_op {
    PX_CAN_SUBMIT = 1,  /* member -> home: frames to put on the bus */
    PX_CAN_DELIVER = 2, /* home -> member: frames in bus order */
    PX_CAN_JOIN = 3,    /* tool -> home: attach as a member (repeat as keep-alive) */
    PX_CAN_LEAVE = 4,   /* tool -> home */
    PX_CAN_OP_MAX
} px_can_op;

typedef struct px_can_rec {
    uint64_t seq;   /* DELIVER: bus sequence number */
    uint64_t ts_ns; /* DELIVER: bus time */
    uint32_t node;  /* DELIVER: the member node that sent it */
    uint32_t ep;    /* the endpoint on that node */
    uint64_t tag;   /* the sender's tag, returned with TX-complete */
    px_bin frame;   /* packed frame (devices/can/frame.h: px_can_frame_pack) */
} px_can_rec;

typedef struct px_msg_can {
    uint64_t bus;  /* px_can_bus_key(lab, bus name) */
    uint32_t op;   /* px_can_op */
    uint32_t node; /* the sending member node's id */
    uint32_t n_recs;
    px_can_rec recs[PX_WIRE_MAX_CAN_BATCH];
} px_msg_can;

typedef struct px_msg_tool { /* CLI -> coordinator -> the node homing `net` */
    px_str lab;
    px_str net;      /* the fabric object the command is about */
    uint32_t n_args; /* e.g. "can" "stats" */
    px_str args[PX_WIRE_MAX_TOOL_ARGS];
    px_str client; /* coordinator -> node: the CLI's public key */
    uint64_t id;   /* coordinator -> node: correlation id */
    uint32_t json; /* 1: the CLI wants JSON in `json` */
} px_msg_tool;

#define PX_WIRE_MAX_ETH_BLOB (1u << 20) /* packed frame records in one ETH message */

/* Ethernet message ops (docs/ethernet.md). */
typedef enum px_eth_op {
    PX_ETH_FRAMES = 1,    /* member -> member: frames of a segment (fabric/eth-hub/rec.h) */
    PX_ETH_CAPTURE = 2,   /* member -> tool: captured frames of capture `id` */
    PX_ETH_CAP_JOIN = 3,  /* tool -> member: start capture `id` (repeat as keep-alive) */
    PX_ETH_CAP_LEAVE = 4, /* tool -> member */
    PX_ETH_OP_MAX
} px_eth_op;

typedef struct px_msg_eth {
    uint64_t seg;  /* px_eth_seg_key(lab, segment name) */
    uint32_t op;   /* px_eth_op */
    uint32_t node; /* FRAMES: the sending member's index in the segment's member list */
    uint64_t id;   /* CAPTURE, CAP_JOIN, CAP_LEAVE: the capture */
    px_str filter; /* CAP_JOIN: pcap filter expression ("" = every frame) */
    px_str port;   /* CAP_JOIN: only this port ("GUEST:IF"; "" = every port) */
    px_bin recs;   /* FRAMES, CAPTURE: packed records */
} px_msg_eth;

#define PX_WIRE_MAX_SHM_BLOB (128u << 10) /* diff records in one SHM message */

/* ivshmem region message ops (docs/ivshmem.md, "Between hosts"). `node` is
 * always the sender's index in the region's member list. */
typedef enum px_shm_op {
    PX_SHM_SYNC = 1, /* member -> home: send me the peers and the contents (repeat until SYNCED) */
    PX_SHM_SYNCED = 2, /* home -> member: the PEERs and DIFFs before this were the whole state */
    PX_SHM_JOIN = 3,   /* member -> home: a local client wants an ID (tag, name) */
    PX_SHM_PEER = 4, /* home -> members: peer `peer` is on member `owner` (tag, name echo a JOIN) */
    PX_SHM_LEAVE = 5, /* member -> home: local peer `peer` left; home -> members: it is gone */
    PX_SHM_DIFF = 6,  /* member -> members: changed bytes (recs, fabric/shm/diff.h) */
    PX_SHM_RING = 7,  /* member -> the peer's owner: doorbell `peer`, `vector` (after its DIFFs) */
    PX_SHM_OP_MAX
} px_shm_op;

typedef struct px_msg_shm {
    uint64_t region; /* px_net_key(lab, region name) */
    uint32_t op;     /* px_shm_op */
    uint32_t node;   /* the sender's index in the member list */
    uint32_t owner;  /* PEER: the member index the peer lives on */
    uint32_t peer;   /* PEER, LEAVE, RING: the peer ID, 0..65535 */
    uint32_t vector; /* RING */
    uint64_t tag;    /* JOIN, PEER: the joining member's request tag (0 in a SYNC's PEERs) */
    px_str name; /* JOIN, PEER: what the peer is: "GUEST" or "host:PID" (≤ PX_WIRE_MAX_NAME) */
    px_bin recs; /* DIFF: ≤ PX_WIRE_MAX_SHM_BLOB */
} px_msg_shm;

#define PX_WIRE_MAX_CXL_CHUNK (128u << 10) /* bytes of LD data in one CXL message */
#define PX_WIRE_MAX_CXL_LDS   256u         /* LDs in one pool: `ld` is below this */
#define PX_WIRE_MAX_CXL_MSG   256u         /* bytes of a FAIL's text */

/* CXL logical-device data (docs/cxl.md, "LD data"). The guest's host asks,
 * the pool's node answers; every request carries the asker's transfer id
 * `xfer`, which the answer echoes. `node` is always the sender's node name:
 * the receiver accepts a message only from the node whose data-plane key
 * that name has. `area` picks the LD's memory (0) or its label storage (1);
 * `off` and `len` are a byte range in it, `len` at most
 * PX_WIRE_MAX_CXL_CHUNK. Data travels as `d` (exactly `len` bytes) or, for
 * a range that is all zero bytes, as `zero` = 1 and no `d`. `hash` is the
 * range's SipHash-2-4 (libsodium crypto_shorthash, key "plexus-cxl-ld-v1")
 * as a little-endian uint64, 0 for a zero range: the pool's node echoes a
 * WRITE's in its ACK, so the guest knows which version of a chunk it
 * acknowledges. */
typedef enum px_cxl_op {
    PX_CXL_OPEN = 1,  /* guest -> pool: LD `ld`'s sizes, please */
    PX_CXL_INFO = 2,  /* pool -> guest: `size` bytes of memory, `lsa` bytes of label storage */
    PX_CXL_READ = 3,  /* guest -> pool: send area/off/len of LD `ld` */
    PX_CXL_DATA = 4,  /* pool -> guest: area/off/len's bytes (d or zero) */
    PX_CXL_WRITE = 5, /* guest -> pool: write d (or zeros) at area/off/len of LD `ld` */
    PX_CXL_ACK = 6,   /* pool -> guest: the WRITE of area/off/len with `hash` is in the file */
    PX_CXL_FAIL = 7,  /* pool -> guest: the request cannot be served: `code` (px_err), `msg` */
    PX_CXL_OP_MAX
} px_cxl_op;

typedef struct px_msg_cxl {
    uint64_t pool; /* px_net_key(lab, pool name) */
    uint32_t op;   /* px_cxl_op */
    px_str node;   /* the sender's node name (<= PX_WIRE_MAX_NAME) */
    uint64_t xfer; /* the asker's transfer id */
    uint32_t ld;   /* OPEN, READ, WRITE: the LD, below PX_WIRE_MAX_CXL_LDS */
    uint32_t area; /* READ, DATA, WRITE, ACK: 0 memory, 1 label storage */
    uint64_t off;  /* READ, DATA, WRITE, ACK: byte offset in the area */
    uint32_t len;  /* READ, DATA, WRITE, ACK: bytes, <= PX_WIRE_MAX_CXL_CHUNK */
    uint32_t zero; /* DATA, WRITE: 1 = the range is all zero bytes, no d */
    uint64_t hash; /* WRITE, ACK: the range's hash (the sender's; ACK echoes WRITE's) */
    uint64_t size; /* INFO: the LD's memory bytes */
    uint64_t lsa;  /* INFO: its label storage bytes */
    int32_t code;  /* FAIL: px_err */
    px_str msg;    /* FAIL: why (<= PX_WIRE_MAX_CXL_MSG) */
    px_bin d;      /* DATA, WRITE: exactly len bytes unless zero */
} px_msg_cxl;

/* Changes to a shared CXL LD (docs/cxl.md, "Shared LDs"): a host that holds
 * a copy sends the bytes that changed since its last sync to the pool's
 * node (the hub), which writes them into the pool's file and passes them on
 * to every other host of the switch. `node` is the sender's node name: the
 * receiver accepts a message only from the node whose data-plane key that
 * name has. The records in `recs` are those of fabric/shm/diff.h (u32
 * offset, u32 length >= 1, bytes), their offsets counted from byte `base`
 * of the LD's memory, so an LD over 4 GiB is covered by messages with
 * different bases; the receiver checks every record against the LD's size
 * (px_shmdiff_check) before it writes any. */
typedef enum px_cxlsync_op {
    PX_CXLSYNC_DIFF = 1, /* host -> hub, hub -> hosts: changed bytes (recs) */
    PX_CXLSYNC_OP_MAX
} px_cxlsync_op;

typedef struct px_msg_cxlsync {
    uint64_t pool; /* px_net_key(lab, pool name) */
    uint32_t ld;   /* the LD, below PX_WIRE_MAX_CXL_LDS */
    px_str node;   /* the sender's node name (<= PX_WIRE_MAX_NAME) */
    uint32_t op;   /* px_cxlsync_op */
    uint64_t base; /* the LD byte that record offsets count from */
    px_bin recs;   /* DIFF: <= PX_WIRE_MAX_SHM_BLOB of records */
} px_msg_cxlsync;

typedef struct px_msg_tool_reply {
    uint64_t id;     /* the TOOL's id (node -> coordinator) */
    int32_t code;    /* px_err */
    px_str message;  /* human-readable result, or the error and a hint */
    px_str json;     /* machine-readable result when asked for */
    px_str endpoint; /* data endpoint of the node to stream from/to, if any */
    px_str key;      /* that endpoint's public key */
} px_msg_tool_reply;

typedef struct px_msg {
    px_envelope env;
    union {
        px_msg_hello hello;
        px_msg_heartbeat heartbeat;
        px_msg_error error;
        px_msg_probe probe;
        px_msg_register reg;
        px_msg_registered registered;
        px_msg_plan plan;
        px_msg_status status;
        px_msg_request request;
        px_msg_reply reply;
        px_msg_can can;
        px_msg_shm shm;
        px_msg_cxl cxl;
        px_msg_cxlsync cxlsync;
        px_msg_eth eth;
        px_msg_tool tool;
        px_msg_tool_reply tool_reply;
    } body;
} px_msg;

/* ---- encoding ---- */

/* A growable output buffer owned by the caller. Zero-initialise it; release
 * with px_wbuf_fini(). Reuse with px_wbuf_reset() to avoid reallocations. */
typedef struct px_wbuf {
    uint8_t *data;
    size_t len, cap;
} px_wbuf;

void px_wbuf_reset(px_wbuf *b);
void px_wbuf_fini(px_wbuf *b);

/* Append one encoded envelope for `msg` (its env.type selects the body) to
 * out. On error out->len is unchanged. PX_E_TOOBIG if any field exceeds its
 * limit or the result would exceed PX_WIRE_MAX_MSG; PX_E_UNKNOWN for an
 * unknown type; PX_E_INVAL for a message no peer would accept (a string
 * that is not UTF-8 or holds NUL, a NULL pointer with a length, a HELLO
 * version range that is empty); PX_E_NOMEM if out cannot grow. em names the
 * field. Never blocks; allocates only to grow out. */
px_err px_wire_encode(px_wbuf *out, const px_msg *msg, px_errmsg *em);

/* ---- decoding ---- */

/* Decode one envelope starting at buf[0]. len may cover further envelopes
 * (a batch): on success *used is the size of this one, so the caller loops
 * `while (off < len) px_wire_decode(buf + off, len - off, &used, ...)`.
 * Strings and bins in *out point into buf. On any error *out is unspecified,
 * *used is 0 and em says what was wrong and at which byte offset (counted
 * from buf). An error ends the batch: without a valid envelope there is no
 * trustworthy place to resume. Every limit is checked on the raw bytes;
 * nothing is allocated. The version is checked first: PX_E_VERSION whatever
 * the rest of the envelope looks like. Never blocks; thread-safe. */
px_err px_wire_decode(const uint8_t *buf, size_t len, size_t *used, px_msg *out, px_errmsg *em);

/* Decode only a body of the given type from a standalone msgpack map that
 * fills exactly buf[0..len) (trailing bytes are PX_E_PROTO). out->env gets
 * version and type, the rest zero. Same limits as in an envelope, the map
 * counting as depth 2. Used by the per-body fuzz targets and the tests. */
px_err px_wire_decode_body(uint32_t type, const uint8_t *buf, size_t len, px_msg *out,
                           px_errmsg *em);

/* "HELLO", "HEARTBEAT", ... or NULL for an unknown type. */
const char *px_msg_type_name(uint32_t type);

/* Compare a borrowed string with a C string. */
bool px_str_eq(px_str s, const char *cstr);

/* Copy s into dst as a C string, truncated to cap - 1 bytes; returns the
 * bytes copied. An empty s (whose ptr may be NULL) gives "". */
size_t px_str_copy(char *dst, size_t cap, px_str s);

/* Make a px_str from a C string (borrowed). */
px_str px_str_c(const char *cstr);

#endif
