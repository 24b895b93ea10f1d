/* plexus-node — CXL: the pool side. See node/cxl.h; internals in
 * node/cxl_int.h.
 *
 * The pools of the CXL switches homed on this node (px_cxlld), which LDs
 * the plan shares and px_cxlsync's configuration of every pool of a switch
 * this node takes part in; the services' messages and the `plexus cxl
 * sync` tool. The guests' rows and the copies are node/cxl.c's.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fabric/core/log.h"
#include "node/cxl_int.h"

/* Bound to more than one vPPB in the last plan. */
uint32_t px_ncxl_bound_count(const nlab *l, const char *pool, uint32_t ld)
{
    for (uint32_t i = 0; i < l->n_binds; i++)
        if (l->binds[i].ld == ld && strcmp(l->binds[i].pool, pool) == 0)
            return l->binds[i].n;
    return 0;
}

/* ---- plans ---- */

static px_err count_binds(nlab *l, const px_msg_plan *p, px_errmsg *em)
{
    nbind *b = p->n_cxl ? calloc(p->n_cxl, sizeof(*b)) : NULL;
    if (p->n_cxl && !b)
        return px_errmsg_set(em, PX_E_NOMEM, "CXL: out of memory");
    uint32_t nb = 0;
    for (uint32_t i = 0; i < p->n_cxl; i++) {
        char pool[64];
        px_str_copy(pool, sizeof(pool), p->cxl[i].pool);
        uint32_t k = 0;
        while (k < nb && !(b[k].ld == p->cxl[i].ld && strcmp(b[k].pool, pool) == 0))
            k++;
        if (k == nb) {
            snprintf(b[nb].pool, sizeof(b[nb].pool), "%s", pool);
            b[nb++].ld = p->cxl[i].ld;
        }
        b[k].n++;
    }
    free(l->binds);
    l->binds = b;
    l->n_binds = nb;
    return PX_OK;
}

/* The size LD ld of pool has in the plan's bindings (its allocation), or
 * dflt (the pool's ld_size) when it is not bound or no size was sent. */
static uint64_t plan_ld_size(const px_msg_plan *p, const char *pool, uint32_t ld, uint64_t dflt)
{
    for (uint32_t i = 0; i < p->n_cxl; i++)
        if (p->cxl[i].ld == ld && p->cxl[i].size && px_str_eq(p->cxl[i].pool, pool))
            return p->cxl[i].size;
    return dflt;
}

/* Every pool of a switch this node takes part in, to px_cxlsync: the hub,
 * the period, and at the hub the switch's hosts and which LDs are shared. */
static px_err sync_pools(px_node *n, px_node_lab *nl, nlab *l, const px_msg_plan *p, px_errmsg *em)
{
    const px_topo *t = nl->topo;
    const char *hosts[PX_CXLSYNC_MAX_HOSTS];
    char names[PX_CXLSYNC_MAX_HOSTS][64];
    bool shared[PX_WIRE_MAX_CXL_LDS];
    uint64_t sizes[PX_WIRE_MAX_CXL_LDS];
    for (uint32_t i = 0; i < p->n_nets; i++) {
        char sw[64], home[64];
        px_str_copy(sw, sizeof(sw), p->nets[i].name);
        px_str_copy(home, sizeof(home), p->nets[i].home);
        px_topo_ref ref;
        if (!px_topo_find_net(t, sw, &ref) || ref.type != PX_TOPO_OBJ_CXL_SWITCH)
            continue;
        uint32_t nh = 0;
        for (uint32_t k = 0; k < p->n_members && nh < PX_CXLSYNC_MAX_HOSTS; k++)
            if (px_str_eq(p->members[k].net, sw)) {
                px_str_copy(names[nh], sizeof(names[nh]), p->members[k].node);
                hosts[nh] = names[nh];
                nh++;
            }
        for (uint32_t k = 0; k < t->n_cxl_pools; k++) {
            const px_topo_cxl_pool *pl = &t->cxl_pools[k];
            if (pl->sw != ref.index || !pl->n_lds || pl->n_lds > PX_WIRE_MAX_CXL_LDS)
                continue;
            for (uint32_t d = 0; d < pl->n_lds; d++) {
                shared[d] = px_ncxl_bound_count(l, pl->name, d) > 1;
                sizes[d] = plan_ld_size(p, pl->name, d, pl->ld_size);
            }
            char dir[4200];
            snprintf(dir, sizeof(dir), "%s/cxl/%s", nl->dir, pl->name);
            uint64_t ms = pl->sync_ns / 1000000u;
            px_cxlsync_pool_cfg cfg = {.lab = nl->name,
                                       .pool = pl->name,
                                       .hub = home,
                                       .ld_size = pl->ld_size,
                                       .ld_sizes = sizes,
                                       .n_lds = pl->n_lds,
                                       .period_ms = ms ? ms : 1,
                                       .dir = dir,
                                       .hosts = hosts,
                                       .n_hosts = nh,
                                       .shared = shared};
            px_err err = px_cxlsync_pool_set(n->cxlst->sync, &cfg, em);
            if (err)
                return err;
        }
    }
    return PX_OK;
}

/* A bound LD of a pool here takes the size of its allocation: its file
 * grows (zeros) or shrinks (the FM API's Set LD Allocations only changes
 * an unbound LD, so no guest maps it at the old size). A guest's node
 * checks the size its fetch finds against its plan's. */
static void pools_resize(struct px_node_cxl *c, const px_node_lab *l, const nlab *cl,
                         const px_msg_plan *p)
{
    for (uint32_t i = 0; i < p->n_cxl; i++) {
        char pool[64];
        px_str_copy(pool, sizeof(pool), p->cxl[i].pool);
        bool here = false;
        for (uint32_t j = 0; j < cl->n_pools && !here; j++)
            here = strcmp(cl->pools[j], pool) == 0;
        if (!here || !p->cxl[i].size)
            continue;
        px_errmsg em = {{0}}; /* the size it has already: nothing happens */
        if (px_cxlld_ld_resize(c->ld, l->name, pool, p->cxl[i].ld, p->cxl[i].size, &em) != PX_OK)
            PX_WARN("cxl", "cannot give an LD its allocation", "lab=%s pool=%s ld=%u detail=\"%s\"",
                    l->name, pool, p->cxl[i].ld, em.text);
    }
}

/* The pools of the switches homed here. */
static px_err pools_open(px_node *n, px_node_lab *l, nlab *cl, const px_msg_plan *p, px_errmsg *em)
{
    struct px_node_cxl *c = n->cxlst;
    const px_topo *t = l->topo;
    char dir[4200];
    for (uint32_t i = 0; i < p->n_nets; i++) {
        char name[64];
        px_str_copy(name, sizeof(name), p->nets[i].name);
        px_topo_ref ref;
        if (!px_topo_find_net(t, name, &ref) || ref.type != PX_TOPO_OBJ_CXL_SWITCH ||
            !px_str_eq(p->nets[i].home, n->name))
            continue;
        for (uint32_t k = 0; k < t->n_cxl_pools; k++) {
            const px_topo_cxl_pool *pl = &t->cxl_pools[k];
            bool open = false;
            for (uint32_t j = 0; j < cl->n_pools && !open; j++)
                open = strcmp(cl->pools[j], pl->name) == 0;
            if (pl->sw != ref.index || open || cl->n_pools == 64)
                continue;
            snprintf(dir, sizeof(dir), "%s/cxl/%s", l->dir, pl->name);
            px_err err =
                px_cxlld_pool_open(c->ld, l->name, pl->name, dir, pl->n_lds, pl->ld_size, em);
            if (err)
                return err;
            snprintf(cl->pools[cl->n_pools++], sizeof(cl->pools[0]), "%s", pl->name);
            PX_INFO("cxl", "pool open", "lab=%s pool=%s lds=%u ld_size=%" PRIu64, l->name, pl->name,
                    pl->n_lds, pl->ld_size);
        }
    }
    return PX_OK;
}

px_err px_ncxl_pools_apply(px_node *n, px_node_lab *nl, nlab *cl, const px_msg_plan *p,
                           px_errmsg *em)
{
    px_err err = pools_open(n, nl, cl, p, em);
    if (err)
        return err;
    pools_resize(n->cxlst, nl, cl, p);
    /* Which LDs are shared now. */
    err = count_binds(cl, p, em);
    if (!err)
        err = sync_pools(n, nl, cl, p, em);
    return err;
}

/* ---- the services ---- */

void px_node_cxl_msg(px_node *n, const px_peer *from, const px_msg_cxl *m)
{
    if (n->cxlst)
        px_cxlld_on_msg(n->cxlst->ld, from, m);
}

void px_node_cxl_sync_msg(px_node *n, const px_peer *from, const px_msg_cxlsync *m)
{
    if (n->cxlst)
        px_cxlsync_on_msg(n->cxlst->sync, from, m);
}

/* ---- plexus cxl sync ---- */

void px_node_cxl_tool(px_node *n, const px_msg_tool *t, px_svc_reply *r)
{
    char lab[64], sw[64], pool[64] = "", lds[16] = "";
    px_str_copy(lab, sizeof(lab), t->lab);
    px_str_copy(sw, sizeof(sw), t->net);
    if (t->n_args > 1)
        px_str_copy(pool, sizeof(pool), t->args[1]);
    if (t->n_args > 2)
        px_str_copy(lds, sizeof(lds), t->args[2]);
    px_node_lab *nl = px_ncxl_node_lab(n, lab);
    struct px_node_cxl *c = n->cxlst;
    nlab *cl = c && nl ? px_ncxl_lab_of(n, lab, false) : NULL;
    px_topo_ref pr;
    char *end;
    unsigned long ld = strtoul(lds, &end, 10);
    if (t->n_args != 3 || !lds[0] || *end || lds[0] == '-') {
        r->code = PX_E_INVAL;
        snprintf(r->text, sizeof(r->text), "node %s: cxl-sync takes POOL LD", n->name);
        return;
    }
    if (!nl || !cl) {
        r->code = PX_E_NOTFOUND;
        snprintf(r->text, sizeof(r->text), "node %s runs no CXL memory of lab %s", n->name, lab);
        return;
    }
    const px_topo *tp = nl->topo;
    if (!px_topo_find_net(tp, pool, &pr) || pr.type != PX_TOPO_OBJ_CXL_POOL ||
        strcmp(tp->cxl_switches[tp->cxl_pools[pr.index].sw].name, sw) != 0 ||
        ld >= tp->cxl_pools[pr.index].n_lds) {
        r->code = PX_E_NOTFOUND;
        snprintf(r->text, sizeof(r->text), "lab %s has no pool %s with an LD %s on switch %s", lab,
                 pool, lds, sw);
        return;
    }
    uint32_t bound = px_ncxl_bound_count(cl, pool, (uint32_t)ld);
    if (bound < 2) {
        r->code = PX_E_INVAL;
        snprintf(r->text, sizeof(r->text),
                 "LD %lu of %s is bound to %u vPPB%s; only a shared LD (bound to two or more) "
                 "is kept in step between hosts",
                 ld, pool, bound, bound == 1 ? "" : "s");
        return;
    }
    px_cxlsync_result res;
    px_errmsg em = {{0}};
    px_err err = px_cxlsync_now(c->sync, lab, pool, (uint32_t)ld, &res, &em);
    px_cxlsync_stats st;
    px_cxlsync_stats_get(c->sync, &st);
    const char *role = err ? "none" : res.hub ? "pool" : "copy";
    if (err)
        snprintf(r->text, sizeof(r->text), "node %s: no copy of %s LD %lu here", n->name, pool, ld);
    else if (res.arriving)
        snprintf(r->text, sizeof(r->text),
                 "node %s: its copy of %s LD %lu is still arriving; it is in step once here",
                 n->name, pool, ld);
    else
        snprintf(r->text, sizeof(r->text),
                 "node %s: %s LD %lu%s: %" PRIu64 " bytes changed, %u message%s to %u node%s",
                 n->name, pool, ld, res.hub ? " (the pool's node)" : "", res.bytes, res.msgs,
                 res.msgs == 1 ? "" : "s", res.to, res.to == 1 ? "" : "s");
    snprintf(r->json, sizeof(r->json),
             "{\"node\":\"%s\",\"pool\":\"%s\",\"ld\":%lu,\"role\":\"%s\",\"arriving\":%s,"
             "\"bytes\":%" PRIu64 ",\"msgs\":%u,\"to\":%u,\"stats\":{\"syncs\":%" PRIu64
             ",\"bytes_out\":%" PRIu64 ",\"bytes_in\":%" PRIu64 ",\"relayed\":%" PRIu64
             ",\"queued\":%" PRIu64 ",\"waiting\":%" PRIu64 ",\"dropped\":%" PRIu64
             ",\"stray\":%" PRIu64 ",\"bad_msgs\":%" PRIu64 ",\"io_errors\":%" PRIu64 "}}",
             n->name, pool, ld, role, !err && res.arriving ? "true" : "false", err ? 0 : res.bytes,
             err ? 0 : res.msgs, err ? 0 : res.to, st.syncs, st.bytes_out, st.bytes_in, st.relayed,
             st.queued, st.waiting, st.dropped, st.stray, st.bad_msgs, st.io_errors);
    r->code = PX_OK;
}
