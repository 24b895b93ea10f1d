/* plexus — placement: which host runs each guest, and where each net is homed.
 *
 * Each net is a hyperedge over the guests attached to it. The objective is
 * the weighted cut: sum over nets of (hosts the net spans − 1) × weight,
 * where weight is the net's expected traffic. Subject to:
 *   - per-host CPU and memory capacity (callers pass capacity already reduced
 *     by any headroom);
 *   - pins (guest → host), colocate groups (same host), anti-affinity groups
 *     (pairwise different hosts).
 * The home of a net is the host holding most of its members (ties: lowest
 * host index), i.e. where most of its traffic starts.
 *
 * Method: colocate groups are contracted, nets are expanded into weighted
 * cliques and partitioned by METIS (multi-constraint k-way, CPU and memory,
 * target weights proportional to host capacity); pins and capacity are then
 * enforced by least-damage moves and the cut improved by gain-driven local
 * moves. A greedy start refined the same way runs too, and the lower cut
 * wins. Everything is deterministic for the same input (fixed METIS seed,
 * index-ordered tie breaks).
 *
 * Pure computation: no I/O, never blocks on anything but CPU, thread-safe
 * (no shared state).
 */
#ifndef PX_PLACE_H
#define PX_PLACE_H

#include <stdint.h>

#include "fabric/core/err.h"

#define PX_PLACE_NONE UINT32_MAX /* "no host" (unpinned guest, unplaced) */

typedef struct px_place_guest {
    const char *name; /* borrowed; for error messages */
    uint32_t cpus;
    uint64_t mem_mb;
    uint32_t pin; /* host index, or PX_PLACE_NONE */
} px_place_guest;

typedef struct px_place_host {
    const char *name; /* borrowed */
    uint32_t cpus;
    uint64_t mem_mb;
} px_place_host;

typedef struct px_place_net {
    const char *name; /* borrowed */
    uint32_t weight;  /* expected traffic; 0 counts as 1 */
    uint32_t n_members;
    const uint32_t *members; /* guest indices (duplicates allowed, ignored) */
} px_place_net;

typedef struct px_place_group {
    uint32_t n_members;
    const uint32_t *members; /* guest indices */
} px_place_group;

typedef struct px_place_problem {
    uint32_t n_guests, n_hosts, n_nets, n_colocate, n_anti;
    const px_place_guest *guests;
    const px_place_host *hosts;
    const px_place_net *nets;
    const px_place_group *colocate;
    const px_place_group *anti;
} px_place_problem;

typedef enum px_place_method {
    PX_PLACE_METIS,       /* METIS k-way + repair + refinement (the default) */
    PX_PLACE_GREEDY,      /* greedy affinity fill + repair + refinement (baseline) */
    PX_PLACE_ROUND_ROBIN, /* guest i on the next host with room (baseline) */
    PX_PLACE_BEST,        /* METIS and GREEDY both, lower cut wins */
} px_place_method;

typedef struct px_place_result {
    uint32_t *guest_host;   /* [n_guests], owned */
    uint32_t *net_home;     /* [n_nets], owned */
    uint32_t *net_span;     /* [n_nets] hosts each net spans, owned */
    uint64_t cut;           /* weighted cut of guest_host */
    px_place_method method; /* which method produced it */
} px_place_result;

/* Place the guests. On success r owns three arrays (release with
 * px_place_result_fini). Errors (PX_E_CONFIG, with em naming the guest, host
 * or group): a guest larger than every host it may go to, conflicting pins
 * in a colocate group, a colocate group that is also anti-affine, too many
 * anti-affine guests for the hosts, or no assignment found within capacity.
 * On error r is left zeroed and safe to fini. */
px_err px_place(const px_place_problem *p, px_place_method method, px_place_result *r,
                px_errmsg *em);

void px_place_result_fini(px_place_result *r);

/* Weighted cut of an assignment (PX_PLACE_NONE entries are ignored). */
uint64_t px_place_cut(const px_place_problem *p, const uint32_t *guest_host);

const char *px_place_method_name(px_place_method m);

#endif
