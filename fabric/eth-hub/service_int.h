/* plexus — Ethernet segment service internals, shared by the three files of
 * the service. Not part of the public API: nothing outside fabric/eth-hub
 * includes this header; other modules see fabric/eth-hub/service.h.
 *
 *   service.c       the service's life cycle, labs and segments (build,
 *                   rebuild, free), ports (open, free) and scheduled faults
 *   service_path.c  the data path: the bridge and flooding, delivery to
 *                   local ports, impairment queues and changes, FRAMES to
 *                   and from member nodes with back-pressure, captures, the
 *                   ETH messages (px_ethsvc_on_msg) and the periodic sweep
 *   service_tool.c  TOOL commands: link show | set | reset, capture
 *
 * Loop thread only. Nothing here blocks; nothing here calls a user callback
 * (except px_ethsvc_close's done, in service.c).
 */
#ifndef PX_ETHHUB_SERVICE_INT_H
#define PX_ETHHUB_SERVICE_INT_H

#include <pcap/pcap.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "devices/net/slirp.h"
#include "fabric/eth-hub/fdb.h"
#include "fabric/eth-hub/frame.h"
#include "fabric/eth-hub/service.h"

#define MAX_CAPS 8u

typedef struct eseg eseg;

typedef struct eport {
    eseg *seg;
    uint32_t idx;
    px_ethsvc_port_cfg cfg;
    px_netport *np; /* NULL for the uplink */
    bool uplink;
    px_impair_cfg eg_cfg, in_cfg; /* in force: the topology's or set at run time */
    bool live;                    /* eg/in set by `link set` */
    bool down;                    /* a link_down fault holds it */
    px_impair *eg, *in;           /* NULL while not impaired */
    uint64_t cut_until_ms;
    char cut_why[160];
    uint64_t oversize, runts, vlan_drops, tagged_on_access, cutoffs;
} eport;

typedef struct ecap {
    uint64_t id;
    px_peer peer;
    bool used;
    bool has_prog;
    struct bpf_program prog;
    int32_t port; /* -1: every port, entry frames only */
    uint64_t renewed_ms;
    uint8_t *buf;
    size_t len;
    uint32_t n; /* frames in buf */
    uint64_t sent, dropped;
} ecap;

typedef struct eout {
    uint8_t *buf;
    size_t len;
    uint32_t n;          /* frames in buf */
    bool blocked;        /* the link's queue is full: buf is kept and sent again */
    bool shedding;       /* blocked too long: frames to it are dropped, no pause */
    uint64_t blocked_ms; /* since when */
} eout;

typedef struct elab elab;

struct eseg {
    px_ethsvc *svc;
    elab *lab;
    uint64_t key;
    px_ethsvc_seg_cfg cfg; /* ports pointer not kept */
    uint32_t self;         /* this node's index in cfg.members, or UINT32_MAX */
    eport **ports;
    uint32_t n_ports;
    px_fdb *fdb;
    px_impair *imp; /* the segment's impairment, NULL when none */
    px_slirp *nat;
    eout out[PX_ETHSVC_MAX_MEMBERS];
    bool dirty;
    ecap caps[MAX_CAPS];
    uint32_t n_caps;
    uv_timer_t timer; /* impairment queues */
    bool timer_open;
    uint64_t timer_due;
    /* scheduled faults */
    uint64_t start_ms;
    uv_timer_t ftimer;
    bool ftimer_open;
    uv_timer_t btimer; /* retries held messages while a member link is full */
    bool btimer_open;
    bool paused;              /* the local ports are paused (back-pressure) */
    unsigned closing;         /* timers still closing */
    bool down;                /* a link_down fault holds the whole segment */
    px_impair_cfg seg_impair; /* the segment's own impairment */
    bool fault_on[PX_ETHSVC_MAX_FAULTS];
    uint64_t fault_next[PX_ETHSVC_MAX_FAULTS]; /* next start or end, UINT64_MAX: none */
    uint64_t down_drops;
    uint64_t pushbacks; /* times the ports were paused for a full member link */
    /* counters */
    uint64_t frames, bytes, flooded, local_unicast, remote_unicast, from_remote, remote_bad,
        vlan_drops, oversize, runts, to_remote_dropped;
    eseg *next_dirty;
};

struct elab {
    char name[64];
    char dir[4096];
    eseg **segs;
    uint32_t n_segs;
};

struct px_ethsvc {
    uv_loop_t *loop;
    px_ethsvc_io io;
    char self[64], data_ep[256], data_key[64];
    elab **labs;
    uint32_t n_labs;
    uv_check_t check;     /* flushes what I/O callbacks queued */
    uv_prepare_t prepare; /* ... and what check handles queued, before the loop waits */
    uv_idle_t kick;       /* then keeps that wait short: the transport sends next iteration */
    uv_timer_t sweep;
    px_msg *scratch;
    px_wbuf wb;
    uint8_t untag[PX_ETH_MAX_FRAME + 8]; /* port_in: a trunk's frame without its tag */
    uint8_t tag[PX_ETH_MAX_FRAME + 8];   /* deliver: a frame for a trunk, tagged */
    uint8_t cap[PX_ETH_MAX_FRAME + 8];   /* capture: a frame as a trunk carries it */
    pcap_t *pcap;                        /* dead handle: compiles capture filters */
    eseg *dirty;
    void (*done)(void *);
    void *done_ud;
    unsigned pending; /* handles still closing */
    bool closing;
};

static inline uint64_t esvc_now_ms(const px_ethsvc *s)
{
    return uv_now(s->loop);
}

/* ---- service.c ---- */

/* The lab called name (owned by s, valid until px_ethsvc_lab_remove), or
 * NULL; with idx, its index in s->labs. */
elab *esvc_lab_find(px_ethsvc *s, const char *name, uint32_t *idx);

/* Segment name of lab l (l may be NULL), owned by l, or NULL. */
eseg *esvc_seg_find(const elab *l, const char *name);

/* The index in g->ports of the local port called name, or -1. */
int32_t esvc_port_index(const eseg *g, const char *name);

/* ---- service_path.c ---- */

/* A frame (the caller's, read during the call) from the guest, TAP or NAT
 * uplink on port p: checked, maybe cut the port off, then through the
 * impairments into the bridge. The netport's and slirp's receive
 * callbacks call it. */
void esvc_port_in(eport *p, const uint8_t *f, size_t len);

/* *out (NULL or an impairment owned by the caller) becomes c: created with
 * seed when c is active and *out is NULL, set to NULL (not freed) when c is
 * inactive. Fails only for memory. */
px_err esvc_impair_make(const px_impair_cfg *c, uint64_t seed, px_impair **out);

/* Port p's impairments in force become eg and in; queued frames of a
 * direction switched off go on at once (they may reach the bridge, other
 * ports and members). Fails only for memory. */
px_err esvc_port_impair(eport *p, const px_impair_cfg *eg, const px_impair_cfg *in);

/* The segment's own impairment becomes c; frames queued under an
 * impairment that is switched off go on at once. */
px_err esvc_seg_impair_set(eseg *g, const px_impair_cfg *c);

/* (Re)starts g's impairment timer for the earliest queued frame, if any.
 * Call after anything that may have queued a frame. */
void esvc_arm_timer(eseg *g);

/* Handle callbacks of px_ethsvc (s in handle->data), started by
 * px_ethsvc_new: check and prepare flush the member out buffers queued
 * during the iteration; the sweep timer expires learned MACs and
 * captures not renewed. */
void esvc_on_check(uv_check_t *h);
void esvc_on_prepare(uv_prepare_t *h);
void esvc_on_sweep(uv_timer_t *t);

#endif
