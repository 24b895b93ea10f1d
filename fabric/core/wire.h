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
    PX_MSG_HELLO = 1,     /* first message on every connection, both ways */
    PX_MSG_HEARTBEAT = 2, /* liveness and load */
    PX_MSG_ERROR = 3,     /* a request failed or a peer misbehaved */
    PX_MSG_PROBE = 4,     /* timestamped payload: tests, benches, latency checks */
    PX_MSG_TYPE_MAX       /* one past the highest type */
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

typedef struct px_msg {
    px_envelope env;
    union {
        px_msg_hello hello;
        px_msg_heartbeat heartbeat;
        px_msg_error error;
        px_msg_probe probe;
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

/* Make a px_str from a C string (borrowed). */
px_str px_str_c(const char *cstr);

#endif
