/* plexus-node — the CAN bus service wired into the node: plans become bus
 * configurations, the data plane and the mesh carry its messages, tool
 * commands from the coordinator reach it. See fabric/can-bus/service.h. */
#include "node/can.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/can/vxcan.h"
#include "fabric/can-bus/proto.h"
#include "fabric/core/log.h"

_Static_assert(PX_CAN_EPS_PER_GUEST >= PX_TOPO_MAX_ATTACH,
               "every CAN controller the topology allows has an endpoint number");

px_err px_node_can_start(px_node *n, px_errmsg *em)
{
    px_svc_io io;
    px_node_svc_io(n, &io);
    if (px_cansvc_new(n->loop, &io, &n->can) != PX_OK)
        return px_errmsg_set(em, PX_E_NOMEM, "CAN service: out of memory");
    return PX_OK;
}

static px_err vxcan_sync(px_node_lab *l, const px_cansvc_bus_cfg *cfgs, uint32_t nb, px_errmsg *em);

/* The CAN buses of lab l that this node homes, has guests or host CAN
 * interfaces on. */
px_err px_node_can_apply(px_node *n, px_node_lab *l, const px_msg_plan *p, px_errmsg *em)
{
    const px_topo *t = l->topo;
    px_cansvc_bus_cfg *cfgs = calloc(p->n_nets + 1, sizeof(*cfgs));
    if (!cfgs)
        return px_errmsg_set(em, PX_E_NOMEM, "CAN service: out of memory");
    uint32_t nb = 0;
    px_err err = PX_OK;
    for (uint32_t i = 0; i < p->n_nets && !err; i++) {
        char name[64];
        px_str_copy(name, sizeof(name), p->nets[i].name);
        px_topo_ref ref;
        if (!px_topo_find_net(t, name, &ref) || ref.type != PX_TOPO_OBJ_CAN_BUS)
            continue;
        const px_topo_can_bus *tb = &t->can_buses[ref.index];
        px_cansvc_bus_cfg *c = &cfgs[nb++];
        snprintf(c->name, sizeof(c->name), "%s", name);
        px_str_copy(c->home, sizeof(c->home), p->nets[i].home);
        c->fd = tb->fd;
        c->mode = tb->mode == PX_TOPO_CAN_TIMED ? PX_CANBUS_TIMED : PX_CANBUS_IDEAL;
        c->bitrate = (uint32_t)tb->bitrate;
        c->data_bitrate = (uint32_t)(tb->fd ? tb->data_bitrate : 0);
        for (uint32_t k = 0; k < p->n_members && c->n_members < PX_CANSVC_MAX_MEMBERS; k++)
            if (px_str_eq(p->members[k].net, name))
                px_str_copy(c->members[c->n_members++], sizeof(c->members[0]), p->members[k].node);
        c->loss_ppm = tb->impair.loss_ppm;
        c->corrupt_ppm = tb->impair.corrupt_ppm;
        /* Every controller on the bus, wherever it runs: faults name guests. */
        for (uint32_t gi = 0; gi < t->n_guests; gi++) {
            const px_topo_guest *tg = &t->guests[gi];
            uint32_t ifidx = 0;
            for (uint32_t ci = 0; ci < tg->n_cans && ci < PX_CAN_EPS_PER_GUEST; ci++) {
                uint32_t here = ifidx;
                ifidx += tg->cans[ci].controller == PX_TOPO_CAN_CTUCAN_PCI ? 2 : 1;
                if (tg->cans[ci].bus != ref.index || c->n_all == PX_CANSVC_MAX_BUS_EPS)
                    continue;
                px_cansvc_guest_ep *a = &c->all[c->n_all++];
                snprintf(a->guest, sizeof(a->guest), "%s", tg->name);
                snprintf(a->ifname, sizeof(a->ifname), "can%u", here);
                a->id = px_can_guest_ep(gi, ci);
            }
        }
        for (uint32_t k = 0; k < tb->n_gateways && c->n_gws < PX_CANSVC_MAX_GWS; k++) {
            px_cansvc_gw_cfg *gw = &c->gws[c->n_gws++];
            gw->rule = tb->gateways[k].rule;
            snprintf(gw->to, sizeof(gw->to), "%s", t->can_buses[gw->rule.dst_bus].name);
        }
        for (uint32_t k = 0; k < t->n_faults && c->n_faults < PX_CANSVC_MAX_FAULTS; k++) {
            const px_topo_fault *tf = &t->faults[k];
            if (tf->net.type != PX_TOPO_OBJ_CAN_BUS || tf->net.index != ref.index)
                continue;
            px_cansvc_fault_cfg *fc = &c->faults[c->n_faults];
            switch (tf->type) {
            case PX_TOPO_FAULT_CAN_ERROR:
                fc->kind = PX_CANFAULT_K_CAN_ERROR;
                break;
            case PX_TOPO_FAULT_CAN_BUS_OFF:
                fc->kind = PX_CANFAULT_K_BUS_OFF;
                break;
            case PX_TOPO_FAULT_LINK_DOWN:
                fc->kind = PX_CANFAULT_K_LINK_DOWN;
                break;
            case PX_TOPO_FAULT_IMPAIR:
                fc->kind = PX_CANFAULT_K_IMPAIR;
                break;
            default:
                continue;
            }
            snprintf(fc->name, sizeof(fc->name), "%s", tf->name);
            fc->at_ms = tf->at_ns / 1000000;
            fc->duration_ms = tf->duration_ns / 1000000;
            fc->every_ms = tf->every_ns / 1000000;
            fc->loss_ppm = tf->impair.loss_ppm;
            fc->corrupt_ppm = tf->impair.corrupt_ppm;
            for (uint32_t a = 0; tf->guest != PX_TOPO_NONE && a < c->n_all; a++)
                if (strcmp(c->all[a].guest, t->guests[tf->guest].name) == 0 &&
                    fc->n_eps < PX_CAN_EPS_PER_GUEST_MAX)
                    fc->eps[fc->n_eps++] = c->all[a].id;
            c->n_faults++;
        }
        for (uint32_t g = 0; g < l->n_guests && !err; g++) {
            uint32_t gi = l->guests[g].index;
            if (gi == PX_TOPO_NONE)
                continue;
            const px_topo_guest *tg = &t->guests[gi];
            uint32_t ifidx = 0;
            for (uint32_t ci = 0; ci < tg->n_cans && ci < PX_CAN_EPS_PER_GUEST; ci++) {
                uint32_t here = ifidx;
                ifidx += tg->cans[ci].controller == PX_TOPO_CAN_CTUCAN_PCI ? 2 : 1;
                if (tg->cans[ci].bus != ref.index)
                    continue;
                if (c->n_eps == PX_CANBUS_MAX_EPS) {
                    err = px_errmsg_set(em, PX_E_TOOBIG,
                                        "bus %s: more than %u controllers on node %s", name,
                                        PX_CANBUS_MAX_EPS, n->name);
                    break;
                }
                px_cansvc_ep_cfg *e = &c->eps[c->n_eps++];
                snprintf(e->guest, sizeof(e->guest), "%s", tg->name);
                snprintf(e->ifname, sizeof(e->ifname), "can%u", here);
                e->id = px_can_guest_ep(gi, ci);
                if (tg->cans[ci].attach == PX_TOPO_CAN_ATTACH_VXCAN)
                    snprintf(e->socketcan_if, sizeof(e->socketcan_if), PX_CAN_VXCAN_NODE_FMT,
                             PX_CAN_VXCAN_TAG(l->name), gi, ci);
                if (snprintf(e->path, sizeof(e->path), "%s/can/" PX_CAN_IFNAME_FMT ".sock", l->dir,
                             gi, ci) >= (int)sizeof(e->path))
                    err = px_errmsg_set(em, PX_E_CONFIG,
                                        "bus %s: runtime directory %s is too long for CAN "
                                        "sockets (keep it under 90 characters)",
                                        name, l->dir);
            }
        }
        /* This host's CAN interfaces on the bus (real hardware). */
        for (uint32_t k = 0; k < tb->n_host_ifs && !err; k++) {
            const px_topo_can_hostif *hi = &tb->host_ifs[k];
            if (strcmp(t->hosts[hi->host].name, n->name) != 0)
                continue;
            if (c->n_eps == PX_CANBUS_MAX_EPS) {
                err = px_errmsg_set(em, PX_E_TOOBIG, "bus %s: more than %u controllers on node %s",
                                    name, PX_CANBUS_MAX_EPS, n->name);
                break;
            }
            px_cansvc_ep_cfg *e = &c->eps[c->n_eps++];
            snprintf(e->guest, sizeof(e->guest), "host:%s", n->name);
            snprintf(e->ifname, sizeof(e->ifname), "%s", hi->ifname);
            snprintf(e->socketcan_if, sizeof(e->socketcan_if), "%s", hi->ifname);
            e->id = PX_CAN_HOSTIF_EP(k);
        }
    }
    if (!err)
        err = vxcan_sync(l, cfgs, nb, em);
    if (!err)
        err = px_cansvc_lab_apply(n->can, l->name, l->dir, cfgs, nb, em);
    free(cfgs);
    return err;
}

/* Delete every vxcan pair made for l. */
static void vxcan_drop(px_node_lab *l)
{
    for (uint32_t i = 0; i < l->n_vxcan; i++) {
        px_errmsg em = {{0}};
        if (px_vxcan_delete(l->vxcan[i], &em) != PX_OK)
            PX_WARN("can", "vxcan pair not deleted", "lab=%s detail=\"%s\"", l->name, em.text);
    }
    l->n_vxcan = 0;
    free(l->vxcan);
    l->vxcan = NULL;
}

/* The vxcan pairs of lab l's guests here are exactly those cfgs name:
 * pairs no longer named go, new ones are made (before the service opens
 * their node ends and before QEMU opens the others). */
static px_err vxcan_sync(px_node_lab *l, const px_cansvc_bus_cfg *cfgs, uint32_t nb, px_errmsg *em)
{
    uint32_t want = 0;
    for (uint32_t b = 0; b < nb; b++)
        for (uint32_t i = 0; i < cfgs[b].n_eps; i++)
            want += cfgs[b].eps[i].id < PX_CAN_HOSTIF_EP_BASE && cfgs[b].eps[i].socketcan_if[0];
    for (uint32_t i = 0; i < l->n_vxcan;) {
        bool keep = false;
        for (uint32_t b = 0; b < nb && !keep; b++)
            for (uint32_t k = 0; k < cfgs[b].n_eps && !keep; k++)
                keep = cfgs[b].eps[k].id < PX_CAN_HOSTIF_EP_BASE &&
                       strcmp(cfgs[b].eps[k].socketcan_if, l->vxcan[i]) == 0;
        if (keep) {
            i++;
            continue;
        }
        char gone[16];
        memcpy(gone, l->vxcan[i], sizeof(gone));
        memcpy(l->vxcan[i], l->vxcan[--l->n_vxcan], sizeof(gone));
        px_errmsg dm = {{0}};
        if (px_vxcan_delete(gone, &dm) != PX_OK)
            PX_WARN("can", "vxcan pair not deleted", "lab=%s detail=\"%s\"", l->name, dm.text);
    }
    if (!want)
        return PX_OK;
    char(*arr)[16] = realloc(l->vxcan, (size_t)(l->n_vxcan + want) * sizeof(*arr));
    if (!arr)
        return px_errmsg_set(em, PX_E_NOMEM, "CAN: out of memory");
    l->vxcan = arr;
    for (uint32_t b = 0; b < nb; b++)
        for (uint32_t i = 0; i < cfgs[b].n_eps; i++) {
            const px_cansvc_ep_cfg *e = &cfgs[b].eps[i];
            if (e->id >= PX_CAN_HOSTIF_EP_BASE || !e->socketcan_if[0])
                continue;
            bool have = false;
            for (uint32_t k = 0; k < l->n_vxcan && !have; k++)
                have = strcmp(l->vxcan[k], e->socketcan_if) == 0;
            if (have)
                continue;
            uint32_t g = (e->id - 1) / PX_CAN_EPS_PER_GUEST,
                     ci = (e->id - 1) % PX_CAN_EPS_PER_GUEST;
            char peer[16];
            snprintf(peer, sizeof(peer), PX_CAN_VXCAN_QEMU_FMT, PX_CAN_VXCAN_TAG(l->name), g, ci);
            px_errmsg why = {{0}};
            px_err err = px_vxcan_create(e->socketcan_if, peer, &why);
            if (err)
                return px_errmsg_set(em, err, "bus %s: guest %s %s: %s", cfgs[b].name, e->guest,
                                     e->ifname, why.text);
            memcpy(l->vxcan[l->n_vxcan++], e->socketcan_if, sizeof(l->vxcan[0]));
        }
    return PX_OK;
}

void px_node_can_remove(px_node *n, const char *lab)
{
    if (n->can)
        px_cansvc_lab_remove(n->can, lab);
    /* Endpoints closed first: then the pairs go, with QEMU's ends. */
    for (uint32_t i = 0; i < n->n_labs; i++)
        if (strcmp(n->labs[i]->name, lab) == 0)
            vxcan_drop(n->labs[i]);
}

void px_node_can_msg(void *ud, const px_peer *from, const px_msg *m)
{
    px_node *n = ud;
    if (m->env.type == PX_MSG_CAN && n->can)
        px_cansvc_on_msg(n->can, from, &m->body.can);
    else
        PX_DEBUG("node", "data-plane message without a service", "type=%u", m->env.type);
}
