/* plexus — wire module internals: the descriptor tables that drive the
 * generic msgpack encoder and decoder in wire.c.
 *
 * Included by wire.c, wire_msgs.c and the wire unit tests and fuzz targets;
 * nothing else. Services see only wire.h.
 *
 * Adding a message type: declare its body struct in wire.h and add it to the
 * px_msg union, give it the next px_msg_type value, then write one field
 * table and one px_wire_struct in wire_msgs.c and list it in the type
 * registry there. Nothing in wire.c changes unless a new field kind is
 * needed. docs/wire-protocol.md walks through it.
 */
#ifndef PX_WIRE_TABLE_H
#define PX_WIRE_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

/* How a C field maps to a msgpack value. Values are internal (not on the
 * wire) and may be renumbered. */
typedef enum px_wf_kind {
    PX_WF_U32,       /* uint32_t            <- msgpack int, 0..UINT32_MAX */
    PX_WF_U64,       /* uint64_t            <- msgpack int, 0..UINT64_MAX */
    PX_WF_I32,       /* int32_t             <- msgpack int, INT32_MIN..INT32_MAX */
    PX_WF_STR,       /* px_str              <- msgpack str, UTF-8, no NUL, ≤ max_len */
    PX_WF_BIN,       /* px_bin              <- msgpack bin, ≤ max_len */
    PX_WF_STR_ARRAY, /* px_str[max_count] + uint32_t count <- array of str */
    /* The extension point for lists of records (a plan's guests, a switch's
     * bindings): an inline C array of sub-structs, each encoded as a map
     * described by `sub`. Decoded in place, like everything else: no
     * allocation, and the capacity is the C array's size. */
    PX_WF_STRUCT_ARRAY, /* T[max_count] + uint32_t count <- array of maps */
} px_wf_kind;

struct px_wire_struct;

typedef struct px_wire_field {
    const char *key;                  /* msgpack map key: short, ASCII */
    uint8_t key_len;                  /* strlen(key), precomputed for the lookup */
    uint8_t kind;                     /* px_wf_kind */
    uint8_t required;                 /* decode fails if absent; encode always writes it.
                                         Optional fields are omitted when zero/empty and
                                         decode to zero when absent. */
    uint32_t off;                     /* offsetof the value (of element 0 for arrays) */
    uint32_t count_off;               /* *_ARRAY: offsetof the uint32_t element count */
    uint32_t max_len;                 /* STR, BIN, STR_ARRAY: bytes per string/bin */
    uint32_t max_count;               /* *_ARRAY: capacity of the C array */
    uint32_t elem_size;               /* STRUCT_ARRAY: sizeof one element (the stride) */
    const struct px_wire_struct *sub; /* STRUCT_ARRAY: element layout */
} px_wire_field;

/* One C struct <-> one msgpack map. */
typedef struct px_wire_struct {
    const char *name; /* "HELLO": used in error messages */
    size_t size;      /* sizeof the C struct */
    const px_wire_field *fields;
    uint32_t n_fields; /* ≤ PX_WIRE_MAX_FIELDS */
    /* Cross-field rules (e.g. proto_min ≤ proto_max), run after a successful
     * decode and before encoding. NULL if none. Returns PX_E_PROTO with em
     * filled; the encoder reports that as PX_E_INVAL. */
    px_err (*check)(const void *s, px_errmsg *em);
} px_wire_struct;

/* Duplicate keys are found with a 64-bit "seen" mask. */
#define PX_WIRE_MAX_FIELDS 64u

/* ---- table-building macros ----
 * Each one checks the member's C type at compile time through _Generic (a
 * mismatch has no matching association and fails to compile), so a table
 * cannot silently disagree with its struct. Array capacities come from the
 * C array itself. */

#define PX_WF_OFF_(T, m, ctype) _Generic(((T *)0)->m, ctype : offsetof(T, m))
#define PX_WF_CAP_(T, m)        (sizeof(((T *)0)->m) / sizeof(((T *)0)->m[0]))
#define PX_WF_KEY_(k)           .key = k, .key_len = sizeof(k) - 1

#define PX_WF_U32(k, T, m, req)                                                                    \
    {                                                                                              \
        PX_WF_KEY_(k), .kind = PX_WF_U32, .required = (req), .off = PX_WF_OFF_(T, m, uint32_t)     \
    }
#define PX_WF_U64(k, T, m, req)                                                                    \
    {                                                                                              \
        PX_WF_KEY_(k), .kind = PX_WF_U64, .required = (req), .off = PX_WF_OFF_(T, m, uint64_t)     \
    }
#define PX_WF_I32(k, T, m, req)                                                                    \
    {                                                                                              \
        PX_WF_KEY_(k), .kind = PX_WF_I32, .required = (req), .off = PX_WF_OFF_(T, m, int32_t)      \
    }
#define PX_WF_STR(k, T, m, req, maxlen)                                                            \
    {                                                                                              \
        PX_WF_KEY_(k), .kind = PX_WF_STR, .required = (req), .off = PX_WF_OFF_(T, m, px_str),      \
                       .max_len = (maxlen)                                                         \
    }
#define PX_WF_BIN(k, T, m, req, maxlen)                                                            \
    {                                                                                              \
        PX_WF_KEY_(k), .kind = PX_WF_BIN, .required = (req), .off = PX_WF_OFF_(T, m, px_bin),      \
                       .max_len = (maxlen)                                                         \
    }
#define PX_WF_STR_ARRAY(k, T, m, n, req, maxlen)                                                   \
    {                                                                                              \
        PX_WF_KEY_(k), .kind = PX_WF_STR_ARRAY, .required = (req),                                 \
                       .off = PX_WF_OFF_(T, m[0], px_str),                                         \
                       .count_off = PX_WF_OFF_(T, n, uint32_t), .max_len = (maxlen),               \
                       .max_count = PX_WF_CAP_(T, m)                                               \
    }
/* ET is the element C type, desc its px_wire_struct (whose size must be
 * sizeof(ET): checked by px_wire_table_ok()). */
#define PX_WF_STRUCT_ARRAY(k, T, m, n, req, ET, desc)                                              \
    {                                                                                              \
        PX_WF_KEY_(k), .kind = PX_WF_STRUCT_ARRAY, .required = (req),                              \
                       .off = PX_WF_OFF_(T, m[0], ET), .count_off = PX_WF_OFF_(T, n, uint32_t),    \
                       .max_count = PX_WF_CAP_(T, m), .elem_size = sizeof(ET), .sub = (desc)       \
    }

#define PX_WIRE_STRUCT(nm, T, fieldtab, chk)                                                       \
    {                                                                                              \
        .name = (nm), .size = sizeof(T), .fields = (fieldtab),                                     \
        .n_fields = sizeof(fieldtab) / sizeof((fieldtab)[0]), .check = (chk)                       \
    }

/* Typed access to a field of a struct described by a table. */
#define PX_WF_PTR(base, f, T)  ((T *)(void *)((uint8_t *)(base) + (f)->off))
#define PX_WF_CPTR(base, f, T) ((const T *)(const void *)((const uint8_t *)(base) + (f)->off))
#define PX_WF_COUNT(base, f)   (*(uint32_t *)(void *)((uint8_t *)(base) + (f)->count_off))
#define PX_WF_CCOUNT(base, f)                                                                      \
    (*(const uint32_t *)(const void *)((const uint8_t *)(base) + (f)->count_off))

/* ---- registry (wire_msgs.c) ---- */

/* The body layout of a message type, or NULL if the type is unknown. */
const px_wire_struct *px_wire_body_desc(uint32_t type);

/* ---- generic codec (wire.c) and table support (wire_msgs.c) ----
 * Exported for the message registry, tests and fuzz targets only. */

/* Append the map for struct `s` (layout d) to out. Same limits and error
 * rules as px_wire_encode(); on error out->len is unchanged. */
px_err px_wire_encode_struct(px_wbuf *out, const px_wire_struct *d, const void *s, px_errmsg *em);

/* Decode exactly one map of layout d covering all of buf[0..len) into *s
 * (zeroed first). Limits are checked as for a body inside an envelope
 * (depth starts at 2). Trailing bytes are PX_E_PROTO. Allocates nothing;
 * strings and bins point into buf. */
px_err px_wire_decode_struct(const px_wire_struct *d, const uint8_t *buf, size_t len, void *s,
                             px_errmsg *em);

/* Field-by-field equality (string and bin contents compared, not pointers). */
bool px_wire_struct_eq(const px_wire_struct *d, const void *a, const void *b);

/* Self-check of a table (field count, key lengths, kinds, sub-struct sizes).
 * Cheap; the unit tests run it over every registered type. */
bool px_wire_table_ok(const px_wire_struct *d, px_errmsg *em);

#endif
