/* plexus — from a topology to a lab plan: which host runs each guest and
 * which host is the home of each net. Bridges the topology model
 * (topology.h) and the placement solver (place.h); used by the coordinator
 * and by `plexus plan`.
 *
 * Hosts: when the topology has a hosts: section those are the hosts, each
 * of which must be among `avail` when avail is given (a coordinator passes
 * its registered nodes; `plexus plan` passes NULL); otherwise `avail` is the
 * host list. Capacity is the smaller of the topology's and the node's, less
 * the placement headroom.
 *
 * Net weights (expected traffic, see docs/topology.md): CAN bus 1 + bit
 * rate / 125 kbit/s (+ data bit rate / 500 kbit/s for FD), Ethernet segment
 * 8, ivshmem region 16, CXL switch 16. A net pinned to a host is homed there;
 * otherwise its home is the host with most of its members.
 */
#ifndef PX_PLAN_H
#define PX_PLAN_H

#include <stdint.h>

#include "coordinator/place.h"
#include "coordinator/topology.h"
#include "fabric/core/err.h"

typedef struct px_plan_host {
    char name[PX_TOPO_NAME_MAX];
    uint32_t cpus;
    uint64_t mem_mb;
} px_plan_host;

typedef struct px_lab_plan {
    uint32_t n_hosts;
    px_plan_host *hosts; /* [n_hosts]: capacity after headroom */
    uint32_t n_guests;
    uint32_t *guest_host; /* [n_guests] index into hosts */
    uint32_t n_nets;
    px_topo_ref *nets;     /* [n_nets]: every CAN bus, segment, region, CXL switch */
    uint32_t *net_weight;  /* [n_nets] */
    uint32_t *net_home;    /* [n_nets] index into hosts */
    uint32_t *net_span;    /* [n_nets] hosts the net's members are on */
    uint32_t *net_members; /* [n_nets] guests attached */
    uint64_t cut;          /* weighted: sum (span - 1) x weight */
    px_place_method method;
} px_lab_plan;

/* Plan t onto hosts. On error (PX_E_CONFIG: unknown host, no capacity, ...)
 * em says what and *out is zeroed. Pure computation. */
#define PX_PLAN_SKIP_MISSING                                                                       \
    1u /* hosts: entries not in avail are left out (a re-plan                                      \
          after a node loss) instead of an error */
px_err px_lab_plan_make(const px_topo *t, const px_plan_host *avail, uint32_t n_avail,
                        unsigned flags, px_lab_plan *out, px_errmsg *em);

void px_lab_plan_fini(px_lab_plan *p);

/* The nets of t in plan order (CAN buses, segments, regions, CXL switches)
 * and their weights; nets and weight hold px_plan_net_count(t) entries. */
uint32_t px_plan_net_count(const px_topo *t);
void px_plan_list_nets(const px_topo *t, px_topo_ref *nets, uint32_t *weight);

/* Simulated equal hosts "host1".."hostN" sharing this machine's resources
 * (for `plexus plan --hosts N` and local mode without a hosts: section). */
void px_plan_sim_hosts(uint32_t n, uint32_t cpus_each, uint64_t mem_mb_each, px_plan_host *out);

#endif
