/* plexus-coordinator — desired state, placement, per-node plans, node health.
 *
 * One libuv loop, one SERVER channel (ROUTER) that nodes and CLIs connect
 * to, a tick timer for liveness and reconcile, and a journal on disk.
 *
 *   coord.c    channel, message dispatch, node registry, tick
 *   lab.c      lab lifecycle: up, down, status, node-loss policy, plans
 *   journal.c  crash-safe state file (JSON, write + fsync + rename)
 *   tool.c     TOOL relay: a CLI's tool command to the nodes of a net, one
 *              merged TOOL_REPLY back
 *
 * Everything runs on the loop thread; nothing here blocks except journal
 * writes (small, fsync'd on purpose: a lab is not "up" before it is durable).
 */
#ifndef PX_COORD_H
#define PX_COORD_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "coordinator/plan.h"
#include "coordinator/topology.h"
#include "fabric/core/transport.h"
#include "fabric/core/wire.h"

#define PX_COORD_MAX_NODES  64u
#define PX_COORD_MAX_LABS   64u
#define PX_COORD_MAX_PEERS  256u /* connections that said HELLO, remembered */
#define PX_NAME             64u
#define PX_LOST_AFTER       3u    /* missed heartbeats */
#define PX_PLAN_RESEND_MS   2000u /* re-send a plan not acknowledged by then */
#define PX_TOOL_MAX_PENDING 64u   /* TOOL relays in flight; more are answered "busy" */
#define PX_TOOL_TIMEOUT_MS  3000u /* nodes' answers count until then (checked per tick) */

typedef struct px_coord_opts {
    const char *listen;       /* e.g. "tcp://0.0.0.0:7600" */
    const char *state_dir;    /* journal lives here (created 0700) */
    px_keypair key;           /* the coordinator's key pair */
    const char *const *allow; /* node and CLI public keys */
    size_t n_allow;
    uint32_t heartbeat_ms; /* asked of nodes; 0 = 1000 */
} px_coord_opts;

typedef enum px_node_state { PX_NODE_UNKNOWN, PX_NODE_UP, PX_NODE_LOST } px_node_state;

typedef struct px_cnode {
    char name[PX_NAME];
    char key[PX_KEY_Z85_LEN + 1]; /* the key it registered with: names are bound to keys */
    px_peer peer;                 /* where to send (routing id) */
    char data_ep[PX_WIRE_MAX_ENDPOINT];
    char data_key[PX_KEY_Z85_LEN + 1];
    uint32_t cpus;
    uint64_t mem_mb;
    uint32_t n_features;
    char features[PX_WIRE_MAX_FEATURES][PX_NAME];
    px_node_state state;
    uint64_t last_seen_ms;
    uint32_t id;
    uint32_t n_guests; /* from heartbeats */
    uint32_t links_up, links_total, rtt_us;
} px_cnode;

typedef enum px_lab_state {
    PX_LAB_DEPLOYING,
    PX_LAB_RUNNING,
    PX_LAB_DEGRADED, /* lost a node, rescheduling */
    PX_LAB_FAILED,
    PX_LAB_STOPPING,
} px_lab_state;

typedef enum px_host_state {
    PX_HOST_PENDING, /* plan sent, no answer for this epoch */
    PX_HOST_APPLIED,
    PX_HOST_FAILED,
    PX_HOST_REMOVED, /* teardown acknowledged (or node lost while stopping) */
} px_host_state;

typedef struct px_lab_host {
    px_host_state state;
    uint64_t acked_epoch;
    uint64_t sent_ms; /* when the current plan went out */
} px_lab_host;

typedef struct px_guest_status {
    char state[16];
    char detail[128];
} px_guest_status;

typedef struct px_lab {
    char name[PX_NAME];
    char source[256];
    char *text; /* topology YAML, owned */
    size_t text_len;
    px_topo *topo;
    char policy[16]; /* "reschedule" | "stop" */
    px_lab_state state;
    char message[256];
    uint64_t epoch;
    px_lab_plan plan;        /* hosts are node names */
    px_lab_host *hosts;      /* [plan.n_hosts] */
    px_guest_status *guests; /* [topo->n_guests] */
    struct px_cxlsw **cxl;   /* [topo->n_cxl_switches], NULL until px_lab_cxl_init */
} px_lab;

struct px_tool_relay;

typedef struct px_coord {
    uv_loop_t *loop;
    px_transport *tp;
    px_chan *ch;
    uv_timer_t tick;
    px_coord_opts opts;
    char journal_path[4096];
    uint64_t start_ms;
    px_cnode nodes[PX_COORD_MAX_NODES];
    uint32_t n_nodes;
    uint32_t next_node_id;
    px_lab *labs[PX_COORD_MAX_LABS];
    uint32_t n_labs;
    px_peer hello[PX_COORD_MAX_PEERS]; /* peers that completed HELLO (ring) */
    uint32_t n_hello, hello_next;
    px_wbuf out;
    uint64_t seq;
    px_msg *scratch; /* a px_msg is large (plans, replies): one, on the heap */
    struct px_tool_relay *tools[PX_TOOL_MAX_PENDING]; /* owned; NULL = free slot */
    uint64_t tool_id;                                 /* last correlation id handed out */
    bool closing;
} px_coord;

/* Start listening, load the journal. On error nothing is left open. */
px_err px_coord_start(px_coord *c, uv_loop_t *loop, const px_coord_opts *opts, px_errmsg *em);

/* Begin shutdown; the loop ends once handles are closed. */
void px_coord_stop(px_coord *c);

/* Free what px_coord_start allocated, after the loop has ended. */
void px_coord_fini(px_coord *c);

uint64_t px_coord_now_ms(const px_coord *c);

/* ---- coord.c, used by lab.c ---- */
px_cnode *px_coord_node(px_coord *c, const char *name);
/* Encode msg to the peer and queue it; logs and counts failures. */
void px_coord_send(px_coord *c, const px_peer *to, px_msg *msg);

/* ---- lab.c ---- */
px_lab *px_lab_find(px_coord *c, const char *name);
void px_lab_free(px_lab *lab);
/* Handle a CLI request; fills c->scratch with the REPLY body. */
void px_lab_request(px_coord *c, const px_msg_request *rq, px_msg_reply *rep);
void px_lab_on_status(px_coord *c, px_cnode *n, const px_msg_status *st);
void px_lab_on_node_lost(px_coord *c, px_cnode *n);
/* A node (re)registered reporting the labs it runs. */
void px_lab_on_register(px_coord *c, px_cnode *n, const px_msg_register *rg);
/* Resend unacknowledged plans. */
void px_lab_reconcile(px_coord *c);
/* Send the current plan (apply or teardown) to plan host h. */
void px_lab_send_plan(px_coord *c, px_lab *lab, uint32_t h);
/* Rebuild a lab from journal data (topology text + saved plan). */
px_err px_lab_restore(px_coord *c, px_lab *lab, px_errmsg *em);
const char *px_lab_state_str(px_lab_state s);
/* Plan host h takes part in plan net n: it is the net's home or runs a
 * guest attached to it. */
bool px_lab_host_has_net(const px_lab *lab, uint32_t h, uint32_t n);
/* Index of the net called `name` in lab->plan.nets, UINT32_MAX if none. */
uint32_t px_lab_net_find(const px_lab *lab, const char *name);

/* ---- cxl.c: CXL switches (docs/cxl.md) ----
 *
 * Each CXL switch of a lab has its Fabric Manager state (px_cxlsw), made
 * from the topology's start bindings by px_lab_cxl_init. A TOOL whose
 * args[0] is "cxl" is the FM API: px_cxl_tool answers it (and returns
 * true); a change of bindings re-sends every plan with a new epoch and
 * writes the journal. */
px_err px_lab_cxl_init(px_lab *lab, px_errmsg *em);
void px_lab_cxl_fini(px_lab *lab);
/* The switches' FM state (bindings, LD allocations) for the journal: an
 * array in topology order, or JSON null before px_lab_cxl_init. */
json_t *px_lab_cxl_to_json(const px_lab *lab);
/* Restore what px_lab_cxl_to_json saved (NULL or null: nothing to do);
 * PX_E_CONFIG with em saying what when it does not fit the topology. */
px_err px_lab_cxl_from_json(px_lab *lab, json_t *j, px_errmsg *em);
/* The lab's bindings into p->cxl (nothing before px_lab_cxl_init). */
void px_lab_cxl_plan(const px_lab *lab, px_msg_plan *p);
bool px_cxl_tool(px_coord *c, const px_peer *from, const px_msg *m);

/* ---- tool.c: the TOOL relay (docs/control-plane.md, docs/can-bus.md) ----
 *
 * A CLI's TOOL {lab, net, args, json} goes to every node of the lab that has
 * the net (px_lab_host_has_net), with a fresh correlation `id` and `cli` =
 * the CLI's authenticated public key. The nodes' TOOL_REPLYs (matched by id
 * and by the node they came from) are merged by px_tool_merge into one
 * TOOL_REPLY to the CLI, whose envelope seq is the TOOL's, once every node
 * answered or PX_TOOL_TIMEOUT_MS passed. At most PX_TOOL_MAX_PENDING relays
 * are in flight; a TOOL beyond that is answered PX_E_AGAIN at once, as is an
 * unknown lab or net (PX_E_NOTFOUND, with the lab's nets as a hint). All of
 * it runs on the loop thread and never blocks. */

/* A TOOL from a peer that said HELLO. m and its strings are valid during
 * the call only: whatever outlives it is copied. */
void px_tool_on_request(px_coord *c, const px_peer *from, const px_msg *m);
/* A TOOL_REPLY from registered node n. Unknown or stale ids are ignored. */
void px_tool_on_reply(px_coord *c, const px_cnode *n, const px_msg_tool_reply *r);
/* Answer relays whose deadline passed (call from the tick). */
void px_tool_tick(px_coord *c);
/* Free every relay without answering (shutdown). */
void px_tool_fini(px_coord *c);

/* One node's part of a relay: its name and, if it answered, its reply's
 * fields (borrowed). */
typedef struct px_tool_answer {
    const char *node;
    bool answered; /* false: did not answer in time, or was not up */
    int32_t code;
    px_str msg, json, ep, key;
} px_tool_answer;

/* The merged reply; every string is NUL-terminated, valid UTF-8 when the
 * answers' strings are, and within the wire's limits. */
typedef struct px_tool_merged {
    int32_t code;
    char msg[PX_WIRE_MAX_STR + 1];
    char json[PX_WIRE_MAX_STR + 1];
    char ep[PX_WIRE_MAX_ENDPOINT + 1];
    char key[PX_WIRE_MAX_NAME + 1];
} px_tool_merged;

/* Merge n answers (in plan host order). code: the first non-zero code of a
 * node that answered, else PX_E_TIMEOUT if one did not, else 0. msg: the
 * node whose code was taken first, then the other non-empty messages in
 * order, one per line, then "node X: no answer (is it up? plexus nodes)"
 * per silent node (first, when that is where the code came from); cut at
 * a character boundary with a final "[cut ...]" line when longer than
 * PX_WIRE_MAX_STR. json: "[" the non-empty JSON values joined by "," "]";
 * a value that does not fit is left out and named in msg, so json stays
 * well-formed. ep/key: the first non-empty ones. Pure: no allocation. */
void px_tool_merge(const px_tool_answer *a, uint32_t n, px_tool_merged *out);

/* ---- journal.c ---- */
px_err px_journal_save(px_coord *c);
px_err px_journal_load(px_coord *c, px_errmsg *em);

#endif
