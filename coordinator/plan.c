#include "plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIB (1024ull * 1024ull)

uint32_t px_plan_net_count(const px_topo *t)
{
    return t->n_can_buses + t->n_eth_segments + t->n_ivshmem + t->n_cxl_switches;
}

void px_plan_list_nets(const px_topo *t, px_topo_ref *nets, uint32_t *weight)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < t->n_can_buses; i++) {
        const px_topo_can_bus *b = &t->can_buses[i];
        uint64_t w = 1 + b->bitrate / 125000 + (b->fd ? b->data_bitrate / 500000 : 0);
        weight[k] = (uint32_t)(w > 1000 ? 1000 : w);
        nets[k++] = (px_topo_ref){PX_TOPO_OBJ_CAN_BUS, i};
    }
    for (uint32_t i = 0; i < t->n_eth_segments; i++) {
        weight[k] = 8;
        nets[k++] = (px_topo_ref){PX_TOPO_OBJ_ETH_SEGMENT, i};
    }
    for (uint32_t i = 0; i < t->n_ivshmem; i++) {
        weight[k] = 16;
        nets[k++] = (px_topo_ref){PX_TOPO_OBJ_IVSHMEM, i};
    }
    for (uint32_t i = 0; i < t->n_cxl_switches; i++) {
        weight[k] = 16;
        nets[k++] = (px_topo_ref){PX_TOPO_OBJ_CXL_SWITCH, i};
    }
}

void px_plan_sim_hosts(uint32_t n, uint32_t cpus_each, uint64_t mem_mb_each, px_plan_host *out)
{
    for (uint32_t i = 0; i < n; i++) {
        snprintf(out[i].name, sizeof(out[i].name), "host%u", i + 1);
        out[i].cpus = cpus_each;
        out[i].mem_mb = mem_mb_each;
    }
}

/* topo_to_plan[i]: plan index of topology host i, PX_PLACE_NONE when it was
 * skipped (not registered, with PX_PLAN_SKIP_MISSING). */
static px_err pick_hosts(const px_topo *t, const px_plan_host *avail, uint32_t n_avail,
                         unsigned flags, px_lab_plan *p, uint32_t *topo_to_plan, px_errmsg *em)
{
    uint32_t n = t->n_hosts ? t->n_hosts : n_avail;
    if (n == 0)
        return px_errmsg_set(em, PX_E_CONFIG,
                             "%s: no hosts to place on (the file has no hosts: section and no "
                             "nodes are registered)",
                             t->source ? t->source : "topology");
    p->hosts = calloc(n, sizeof(*p->hosts));
    if (!p->hosts)
        return PX_E_NOMEM;
    p->n_hosts = 0;
    for (uint32_t i = 0; i < n; i++) {
        px_plan_host *h = &p->hosts[p->n_hosts];
        if (!t->n_hosts) {
            *h = avail[i];
        } else {
            const px_topo_host *th = &t->hosts[i];
            topo_to_plan[i] = PX_PLACE_NONE;
            snprintf(h->name, sizeof(h->name), "%s", th->name);
            h->cpus = th->cpus;
            h->mem_mb = th->memory / MIB;
            if (avail) {
                const px_plan_host *a = NULL;
                for (uint32_t j = 0; j < n_avail && !a; j++)
                    if (strcmp(avail[j].name, th->name) == 0)
                        a = &avail[j];
                if (!a && (flags & PX_PLAN_SKIP_MISSING))
                    continue;
                if (!a)
                    return px_errmsg_set(em, PX_E_CONFIG,
                                         "%s:%u:%u: host %s is not a registered node; start "
                                         "plexus-node --name %s there (or remove the host)",
                                         t->source ? t->source : "topology", th->mark.line,
                                         th->mark.col, th->name, th->name);
                if (!h->cpus || a->cpus < h->cpus)
                    h->cpus = a->cpus;
                if (!h->mem_mb || a->mem_mb < h->mem_mb)
                    h->mem_mb = a->mem_mb;
            }
            topo_to_plan[i] = p->n_hosts;
        }
        uint64_t hm = t->placement.headroom_memory / MIB;
        h->cpus = h->cpus > t->placement.headroom_cpus ? h->cpus - t->placement.headroom_cpus : 0;
        h->mem_mb = h->mem_mb > hm ? h->mem_mb - hm : 0;
        p->n_hosts++;
    }
    if (p->n_hosts == 0)
        return px_errmsg_set(em, PX_E_CONFIG, "%s: none of the file's hosts is available",
                             t->source ? t->source : "topology");
    return PX_OK;
}

px_err px_lab_plan_make(const px_topo *t, const px_plan_host *avail, uint32_t n_avail,
                        unsigned flags, px_lab_plan *p, px_errmsg *em)
{
    memset(p, 0, sizeof(*p));
    uint32_t *topo_to_plan = calloc(t->n_hosts + 1, sizeof(uint32_t));
    if (!topo_to_plan)
        return PX_E_NOMEM;
    px_err err = pick_hosts(t, avail, n_avail, flags, p, topo_to_plan, em);
    if (err)
        goto fail;

    uint32_t G = t->n_guests, N = px_plan_net_count(t);
    p->n_guests = G;
    p->n_nets = N;
    p->guest_host = calloc(G + 1, sizeof(uint32_t));
    p->nets = calloc(N + 1, sizeof(px_topo_ref));
    p->net_weight = calloc(N + 1, sizeof(uint32_t));
    p->net_home = calloc(N + 1, sizeof(uint32_t));
    p->net_span = calloc(N + 1, sizeof(uint32_t));
    p->net_members = calloc(N + 1, sizeof(uint32_t));
    px_place_guest *pg = calloc(G + 1, sizeof(*pg));
    px_place_host *ph = calloc(p->n_hosts, sizeof(*ph));
    px_place_net *pn = calloc(N + 1, sizeof(*pn));
    uint32_t *members = calloc((size_t)G * (N ? N : 1) + 1, sizeof(uint32_t));
    px_place_group *co = calloc(t->placement.n_colocate + 1, sizeof(*co));
    px_place_group *anti = calloc(t->placement.n_anti_affinity + 1, sizeof(*anti));
    err = PX_E_NOMEM;
    if (!p->guest_host || !p->nets || !p->net_weight || !p->net_home || !p->net_span ||
        !p->net_members || !pg || !ph || !pn || !members || !co || !anti)
        goto out;

    px_plan_list_nets(t, p->nets, p->net_weight);
    for (uint32_t g = 0; g < G; g++)
        pg[g] = (px_place_guest){.name = t->guests[g].name,
                                 .cpus = t->guests[g].cpus,
                                 .mem_mb = t->guests[g].memory / MIB,
                                 .pin = PX_PLACE_NONE};
    for (uint32_t h = 0; h < p->n_hosts; h++)
        ph[h] = (px_place_host){
            .name = p->hosts[h].name, .cpus = p->hosts[h].cpus, .mem_mb = p->hosts[h].mem_mb};
    size_t k = 0;
    for (uint32_t n = 0; n < N; n++) {
        uint32_t *m = members + k, cnt = 0;
        for (uint32_t g = 0; g < G; g++)
            if (px_topo_guest_on_net(&t->guests[g], p->nets[n]))
                m[cnt++] = g;
        k += cnt;
        p->net_members[n] = cnt;
        pn[n] = (px_place_net){.name = px_topo_ref_name(t, p->nets[n]),
                               .weight = p->net_weight[n],
                               .n_members = cnt,
                               .members = m};
    }
    for (uint32_t i = 0; i < t->placement.n_pins; i++) {
        const px_topo_pin *pin = &t->placement.pins[i];
        if (pin->what.type != PX_TOPO_OBJ_GUEST)
            continue;
        pg[pin->what.index].pin = topo_to_plan[pin->host];
        if (pg[pin->what.index].pin == PX_PLACE_NONE) {
            err = px_errmsg_set(em, PX_E_CONFIG,
                                "guest %s is pinned to host %s, which is not available",
                                t->guests[pin->what.index].name, t->hosts[pin->host].name);
            goto out;
        }
    }
    for (uint32_t i = 0; i < t->placement.n_colocate; i++)
        co[i] = (px_place_group){t->placement.colocate[i].n, t->placement.colocate[i].guests};
    for (uint32_t i = 0; i < t->placement.n_anti_affinity; i++)
        anti[i] =
            (px_place_group){t->placement.anti_affinity[i].n, t->placement.anti_affinity[i].guests};

    px_place_problem prob = {.n_guests = G,
                             .n_hosts = p->n_hosts,
                             .n_nets = N,
                             .n_colocate = t->placement.n_colocate,
                             .n_anti = t->placement.n_anti_affinity,
                             .guests = pg,
                             .hosts = ph,
                             .nets = pn,
                             .colocate = co,
                             .anti = anti};
    px_place_result r;
    err = px_place(&prob, PX_PLACE_BEST, &r, em);
    if (err) {
        px_errmsg_prefix(em, "%s: placement", t->source ? t->source : "topology");
        goto out;
    }
    memcpy(p->guest_host, r.guest_host, G * sizeof(uint32_t));
    memcpy(p->net_home, r.net_home, N * sizeof(uint32_t));
    memcpy(p->net_span, r.net_span, N * sizeof(uint32_t));
    p->cut = r.cut;
    p->method = r.method;
    px_place_result_fini(&r);
    /* A pinned net is homed where the file says, whatever its members do. */
    for (uint32_t i = 0; i < t->placement.n_pins; i++) {
        const px_topo_pin *pin = &t->placement.pins[i];
        for (uint32_t n = 0; n < N; n++)
            if (p->nets[n].type == pin->what.type && p->nets[n].index == pin->what.index &&
                topo_to_plan[pin->host] != PX_PLACE_NONE)
                p->net_home[n] = topo_to_plan[pin->host];
    }
    err = PX_OK;
out:
    free(pg);
    free(ph);
    free(pn);
    free(members);
    free(co);
    free(anti);
fail:
    free(topo_to_plan);
    if (err)
        px_lab_plan_fini(p);
    return err;
}

void px_lab_plan_fini(px_lab_plan *p)
{
    free(p->hosts);
    free(p->guest_host);
    free(p->nets);
    free(p->net_weight);
    free(p->net_home);
    free(p->net_span);
    free(p->net_members);
    memset(p, 0, sizeof(*p));
}
