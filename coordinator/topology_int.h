/* plexus — topology loader internals, shared by coordinator/topology*.c.
 * Nothing here is for other modules: they see coordinator/topology.h.
 *
 * The loader works in three steps:
 *   1. topology_yaml.c turns libyaml events into a small tree (tnode) that
 *      keeps the 1-based line/column of every key and value, enforcing the
 *      size limits while it builds, and checks mapping keys;
 *      topology_units.c reads scalars (names, integers, units) and reports
 *      errors at the node;
 *   2. topology.c (top level, hosts, kinds, guests), topology_nets.c (nets,
 *      impairments) and topology_attach.c (a guest's NICs, CAN, ivshmem and
 *      CXL entries) walk the tree into the typed model, checking keys,
 *      types, ranges and references as they go;
 *   3. topology_validate.c checks what needs the whole model: derived MACs
 *      and CXL ports, NAT forwards, placement, capacity and faults.
 * Every step stops at the first error; the message is in c->em.
 */
#ifndef PX_TOPOLOGY_INT_H
#define PX_TOPOLOGY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coordinator/topology.h"

/* ---- arena: everything of one model (or one parse tree) in a few chunks */

struct px_topo_arena {
    struct px_topo_chunk *head;
};

/* Zeroed memory that lives until px_tarena_fini(); NULL when out of memory. */
void *px_tarena_alloc(px_topo_arena *a, size_t size);
/* n elements of size each, overflow-checked. */
void *px_tarena_array(px_topo_arena *a, size_t n, size_t size);
char *px_tarena_strdup(px_topo_arena *a, const char *s);
void px_tarena_fini(px_topo_arena *a);

/* ---- parse tree */

typedef enum tnode_type { TN_SCALAR = 0, TN_SEQ, TN_MAP } tnode_type;

typedef struct tnode tnode;
struct tnode {
    tnode_type type;
    bool plain;    /* scalar written without quotes */
    uint32_t line; /* 1-based */
    uint32_t col;  /* 1-based */
    uint32_t n;    /* TN_SEQ: items; TN_MAP: key/value pairs */
    char *str;     /* TN_SCALAR: NUL-terminated, no NUL inside */
    uint32_t len;
    tnode **kids; /* TN_SEQ: n items; TN_MAP: 2n, key, value, key, value ... */
    tnode *next;  /* sibling, only while building */
};

/* Loader context: one per load call, passed explicitly everywhere. */
typedef struct tctx {
    const char *file; /* name for messages */
    px_errmsg *em;
    px_topo *t;
    px_topo_arena tree; /* the parse tree, dropped after the load */
    tnode *root;
    /* top-level values (NULL when absent) and keys, for messages */
    tnode *defaults, *kinds, *nodes, *nets, *hosts, *placement, *faults;
    tnode *hosts_key, *nodes_key;
    px_topo_ref *net_refs; /* type and index of the i-th entry under nets */
    /* sorted name indices built in topology.c */
    struct tname *names; /* guests and nets: one namespace */
    uint32_t n_names;
    struct tname *host_names;
    uint32_t n_host_names;
    struct tname *kind_names;
    uint32_t n_kind_names;
    /* running duplicate/usage state while guests and nets are parsed */
    struct tmac *macs; /* open-addressing set of explicit and generated MACs */
    uint32_t mac_cap;
    uint8_t *fwd_used;        /* bit per (proto, listen port) over all NAT uplinks */
    uint32_t *cxl_port_owner; /* [switch * PX_TOPO_MAX_CXL_PORTS + port] = guest + 1 */
    uint32_t *pool_lds_used;  /* per CXL pool: LDs bound at start so far */
    bool real_guest;          /* parsing a guest (not a kind/defaults template) */
    uint32_t guest_index;     /* which, when real_guest */
} tctx;

/* One MAC in c->macs; key 0 = empty slot. */
typedef struct tmac {
    uint64_t key; /* 48-bit MAC | 1 << 48 */
    uint32_t guest;
    px_topo_mark mark;
} tmac;

/* MAC set (topology_validate.c). On a duplicate *dup is the entry already
 * there and nothing is inserted; else *dup is NULL. Fails only for memory. */
px_err pxt_mac_insert(tctx *c, const uint8_t mac[6], uint32_t guest, px_topo_mark mark,
                      const tmac **dup);
bool pxt_mac_present(const tctx *c, const uint8_t mac[6]);

/* One entry of a name index. */
typedef struct tname {
    const char *name;
    px_topo_ref ref; /* kinds use PX_TOPO_OBJ_NONE and index = position */
    tnode *at;
} tname;

/* Build c->root from buf. Rejects aliases, multiple documents and anything
 * above the limits in topology.h. */
px_err pxt_yaml_parse(tctx *c, const char *buf, size_t len);

/* ---- errors: all return the code they were given, message in c->em */

/* "FILE:L:C: <fmt>" at node n (n may be NULL: "FILE: <fmt>"). */
px_err pxt_fail(tctx *c, const tnode *n, px_err code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Same at an explicit mark. */
px_err pxt_fail_at(tctx *c, px_topo_mark m, px_err code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
px_err pxt_nomem(tctx *c);

static inline px_topo_mark pxt_mark(const tnode *n)
{
    px_topo_mark m = {n ? n->line : 0, n ? n->col : 0};
    return m;
}

/* ---- tree access */

const char *pxt_kind_str(const tnode *n); /* "a list", "a mapping", "a string" ... */
bool pxt_is_null(const tnode *n);         /* ~, null, or empty plain scalar */
/* Value for key in a map (NULL if absent or map is NULL). */
tnode *pxt_map_get(const tnode *map, const char *key);
/* Same, and the key node through *key_out. */
tnode *pxt_map_get_key(const tnode *map, const char *key, tnode **key_out);

/* Check that n is a map whose keys are scalars from `allowed` (NULL-ended),
 * with no key twice. `what` names the object in messages ("guest \"r1\"").
 * A null node counts as an empty map. */
px_err pxt_check_map(tctx *c, const tnode *n, const char *what, const char *const *allowed);
/* n must be a map (or null = empty) whose keys are scalar names, each once;
 * used for nodes/nets/hosts/kinds. `what` e.g. "guest". */
px_err pxt_check_name_map(tctx *c, const tnode *n, const char *section, const char *what,
                          uint32_t max);
/* n must be a list (null = empty) of at most max items. */
px_err pxt_check_seq(tctx *c, const tnode *n, const char *what, uint32_t max);

/* ---- scalar values; `what` names the key in messages */

px_err pxt_get_str(tctx *c, const tnode *n, const char *what, char **out);
/* A name: 1..63 of [A-Za-z0-9_.-], starting with a letter or digit. */
px_err pxt_get_name(tctx *c, const tnode *n, const char *what, char out[PX_TOPO_NAME_MAX]);
px_err pxt_get_uint(tctx *c, const tnode *n, const char *what, uint64_t min, uint64_t max,
                    uint64_t *out);
px_err pxt_get_bool(tctx *c, const tnode *n, const char *what, bool *out);
/* Index of the matching word in `words` (NULL-ended). */
px_err pxt_get_enum(tctx *c, const tnode *n, const char *what, const char *const *words,
                    unsigned *out);
/* Sizes: "512M", "1G", "256MiB", "64k", "4096B"; K/M/G/T are binary like
 * QEMU's -m. A unit is required. */
px_err pxt_get_size(tctx *c, const tnode *n, const char *what, uint64_t min, uint64_t max,
                    uint64_t *out);
/* Bit rates: "500k", "1M", "2000000", "10Mbit"; k/M/G decimal. */
px_err pxt_get_bitrate(tctx *c, const tnode *n, const char *what, uint64_t min, uint64_t max,
                       uint64_t *out);
/* Durations: "20ms", "1s", "500us", "1.5s", "2m", "1h", "0"; a unit is
 * required except for 0. */
px_err pxt_get_duration(tctx *c, const tnode *n, const char *what, uint64_t min, uint64_t max,
                        uint64_t *out);
/* Percentages "1%", "0.5%", "0.0001%" into parts per million. */
px_err pxt_get_percent(tctx *c, const tnode *n, const char *what, uint32_t *out_ppm);

/* Closest word in `words` to s within edit distance 2, or NULL. */
const char *pxt_suggest(const char *s, const char *const *words);

/* ---- name index and inheritance (topology.c) */

/* "a can_bus", "an eth_segment" ... for messages. */
const char *pxt_obj_a(px_topo_obj o);

/* First of chain[0..2] (node, kind, defaults; NULLs skipped) that has key. */
tnode *pxt_chain_get(const tnode *const *chain, const char *key);

const tname *pxt_find(const tname *idx, uint32_t n, const char *name);

/* ---- the walkers */

px_err pxt_parse_nets(tctx *c);        /* topology_nets.c: t->*_nets, names registered */
px_err pxt_parse_net_details(tctx *c); /* topology_nets.c: after guests are named */
px_err pxt_parse_impair(tctx *c, const tnode *n, const char *what, bool allow_rate,
                        px_topo_impair *out); /* topology_nets.c */
/* Sort order for uint16_t (VLAN lists); topology_nets.c. */
int pxt_u16_cmp(const void *a, const void *b);
/* The guest's attachment lists, each from the first of chain that has it. */
px_err pxt_parse_attachments(tctx *c, px_topo_guest *g,
                             const tnode *const *chain); /* topology_attach.c */
px_err pxt_validate(tctx *c);                            /* topology_validate.c */

/* Resolve a net name to a ref of an expected type (PX_TOPO_OBJ_NONE: any
 * net). `role` is what the reference is ("segment", "bus") for messages. */
px_err pxt_resolve_net(tctx *c, const tnode *n, px_topo_obj want, const char *role,
                       px_topo_ref *out);
px_err pxt_resolve_guest(tctx *c, const tnode *n, const char *role, uint32_t *out);
px_err pxt_resolve_host(tctx *c, const tnode *n, const char *role, uint32_t *out);

#endif
