/* plexus-node — the Ethernet segment service wired into the node. See
 * node/eth.h and fabric/eth-hub/service.h. */
#include "node/eth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fabric/core/log.h"
#include "node/qemu_cmd.h"

px_err px_node_eth_start(px_node *n, px_errmsg *em)
{
    px_svc_io io;
    px_node_svc_io(n, &io);
    if (px_ethsvc_new(n->loop, &io, &n->eth) != PX_OK)
        return px_errmsg_set(em, PX_E_NOMEM, "Ethernet service: out of memory");
    return PX_OK;
}

static px_impair_cfg impair_cfg(const px_topo_impair *t)
{
    return (px_impair_cfg){.delay_ns = t->delay_ns,
                           .jitter_ns = t->jitter_ns,
                           .loss_ppm = t->loss_ppm,
                           .loss_burst = t->loss_burst,
                           .duplicate_ppm = t->duplicate_ppm,
                           .reorder_ppm = t->reorder_ppm,
                           .corrupt_ppm = t->corrupt_ppm,
                           .rate_bps = t->rate_bps};
}

/* The ports of this node's guests on segment si, then its TAPs. */
static px_err add_ports(px_node_lab *l, uint32_t si, px_ethsvc_seg_cfg *c, px_errmsg *em)
{
    const px_topo *t = l->topo;
    const px_topo_eth_segment *ts = &t->eth_segments[si];
    uint32_t cap = 8;
    c->ports = calloc(cap, sizeof(*c->ports));
    if (!c->ports)
        return px_errmsg_set(em, PX_E_NOMEM, "Ethernet: out of memory");
    for (uint32_t k = 0; k < l->n_guests + ts->n_taps; k++) {
        const px_topo_guest *gu = NULL;
        uint32_t g = 0, n_items = 1;
        if (k < l->n_guests) {
            g = l->guests[k].index;
            if (g == PX_TOPO_NONE)
                continue;
            gu = &t->guests[g];
            n_items = gu->n_nics;
        } else if (strcmp(t->hosts[ts->taps[k - l->n_guests].host].name, l->node->name) != 0) {
            continue;
        }
        for (uint32_t i = 0; i < n_items; i++) {
            if (gu && gu->nics[i].segment != si)
                continue;
            if (c->n_ports == PX_ETHSVC_MAX_PORTS)
                return px_errmsg_set(em, PX_E_TOOBIG, "segment %s: more than %u ports on this node",
                                     ts->name, PX_ETHSVC_MAX_PORTS);
            if (c->n_ports == cap) {
                px_ethsvc_port_cfg *np = realloc(c->ports, 2 * cap * sizeof(*np));
                if (!np)
                    return px_errmsg_set(em, PX_E_NOMEM, "Ethernet: out of memory");
                memset(np + cap, 0, cap * sizeof(*np));
                c->ports = np;
                cap *= 2;
            }
            px_ethsvc_port_cfg *p = &c->ports[c->n_ports++];
            if (!gu) {
                const px_topo_hostif *tap = &ts->taps[k - l->n_guests];
                snprintf(p->name, sizeof(p->name), "tap:%s", tap->ifname);
                p->kind = PX_NETPORT_TAP;
                snprintf(p->ifname, sizeof(p->ifname), "%s", tap->ifname);
                continue;
            }
            const px_topo_nic *nic = &gu->nics[i];
            snprintf(p->name, sizeof(p->name), "%s:eth%u", gu->name, i);
            p->vlan = nic->vlan;
            memcpy(p->mac, nic->mac, 6);
            if (nic->port == PX_TOPO_NIC_DGRAM) {
                p->kind = PX_NETPORT_DGRAM;
                snprintf(p->path, sizeof(p->path), PX_NODE_NIC_DGRAM, l->dir, g, i);
                snprintf(p->bind_path, sizeof(p->bind_path), PX_NODE_NIC_NODE, l->dir, g, i);
            } else {
                p->kind = PX_NETPORT_STREAM;
                snprintf(p->path, sizeof(p->path), PX_NODE_NIC_STREAM, l->dir, g, i);
            }
            if (nic->impair.set) {
                px_impair_cfg ic = impair_cfg(&nic->impair);
                if (nic->impair.direction != PX_TOPO_DIR_INGRESS)
                    p->egress = ic;
                if (nic->impair.direction != PX_TOPO_DIR_EGRESS)
                    p->ingress = ic;
            }
        }
    }
    return PX_OK;
}

/* The topology's link_down and impair faults on segment si: whole-segment
 * ones on every member, a guest's only where its ports are. */
static void add_faults(const px_node_lab *l, uint32_t si, px_ethsvc_seg_cfg *c)
{
    const px_topo *t = l->topo;
    for (uint32_t k = 0; k < t->n_faults; k++) {
        const px_topo_fault *tf = &t->faults[k];
        if (tf->net.type != PX_TOPO_OBJ_ETH_SEGMENT || tf->net.index != si ||
            (tf->type != PX_TOPO_FAULT_LINK_DOWN && tf->type != PX_TOPO_FAULT_IMPAIR))
            continue;
        px_ethsvc_fault_cfg f = {.down = tf->type == PX_TOPO_FAULT_LINK_DOWN,
                                 .at_ms = tf->at_ns / 1000000,
                                 .duration_ms = tf->duration_ns / 1000000,
                                 .every_ms = tf->every_ns / 1000000};
        snprintf(f.name, sizeof(f.name), "%s", tf->name);
        if (tf->type == PX_TOPO_FAULT_IMPAIR) {
            px_impair_cfg ic = impair_cfg(&tf->impair);
            if (tf->guest == PX_TOPO_NONE || tf->impair.direction != PX_TOPO_DIR_INGRESS)
                f.egress = ic;
            if (tf->guest != PX_TOPO_NONE && tf->impair.direction != PX_TOPO_DIR_EGRESS)
                f.ingress = ic;
        }
        if (tf->guest == PX_TOPO_NONE) {
            if (c->n_faults < PX_ETHSVC_MAX_FAULTS)
                c->faults[c->n_faults++] = f;
            continue;
        }
        const px_topo_guest *gu = &t->guests[tf->guest];
        for (uint32_t i = 0; i < gu->n_nics; i++) {
            char port[80];
            snprintf(port, sizeof(port), "%s:eth%u", gu->name, i);
            for (uint32_t p = 0; p < c->n_ports && c->n_faults < PX_ETHSVC_MAX_FAULTS; p++)
                if (strcmp(c->ports[p].name, port) == 0) {
                    c->faults[c->n_faults] = f;
                    snprintf(c->faults[c->n_faults++].port, sizeof(f.port), "%s", port);
                }
        }
    }
}

static px_err seg_cfg(px_node *n, px_node_lab *l, const px_msg_plan *p, uint32_t pi, uint32_t si,
                      px_ethsvc_seg_cfg *c, px_errmsg *em)
{
    const px_topo *t = l->topo;
    const px_topo_eth_segment *ts = &t->eth_segments[si];
    snprintf(c->name, sizeof(c->name), "%s", ts->name);
    px_str_copy(c->home, sizeof(c->home), p->nets[pi].home);
    c->hub = ts->mode == PX_TOPO_ETH_HUB;
    c->mtu = ts->mtu;
    if (ts->n_vlans == 0)
        memset(c->vlan_ok, 0xff, sizeof(c->vlan_ok));
    for (uint32_t v = 0; v < ts->n_vlans; v++)
        c->vlan_ok[ts->vlans[v] >> 3] |= (uint8_t)(1u << (ts->vlans[v] & 7));
    if (ts->impair.set)
        c->impair = impair_cfg(&ts->impair);
    for (uint32_t k = 0; k < p->n_members && c->n_members < PX_ETHSVC_MAX_MEMBERS; k++)
        if (px_str_eq(p->members[k].net, ts->name))
            px_str_copy(c->members[c->n_members++], sizeof(c->members[0]), p->members[k].node);
    if (ts->nat.enabled && strcmp(c->home, n->name) == 0) {
        c->nat = true;
        c->nat_net = ts->nat.subnet;
        c->nat_prefix = ts->nat.prefix;
        for (uint32_t f = 0; f < ts->nat.n_forwards && c->n_fwds < PX_ETHSVC_MAX_FWDS; f++) {
            const px_topo_forward *tf = &ts->nat.forwards[f];
            const px_topo_guest *gu = &t->guests[tf->guest];
            px_ethsvc_fwd_cfg *fw = &c->fwds[c->n_fwds];
            for (uint32_t i = 0; i < gu->n_nics; i++)
                if (gu->nics[i].segment == si) {
                    memcpy(fw->mac, gu->nics[i].mac, 6);
                    fw->udp = tf->proto == PX_TOPO_PROTO_UDP;
                    fw->listen = tf->listen;
                    fw->port = tf->port;
                    snprintf(fw->guest, sizeof(fw->guest), "%s", gu->name);
                    c->n_fwds++;
                    break;
                }
        }
    }
    px_err err = add_ports(l, si, c, em);
    if (!err)
        add_faults(l, si, c);
    return err;
}

px_err px_node_eth_apply(px_node *n, px_node_lab *l, const px_msg_plan *p, px_errmsg *em)
{
    const px_topo *t = l->topo;
    px_ethsvc_seg_cfg *cfgs = calloc(p->n_nets + 1, sizeof(*cfgs));
    if (!cfgs)
        return px_errmsg_set(em, PX_E_NOMEM, "Ethernet: out of memory");
    uint32_t ns = 0;
    px_err err = PX_OK;
    for (uint32_t i = 0; i < p->n_nets && !err; i++) {
        char name[64];
        px_str_copy(name, sizeof(name), p->nets[i].name);
        px_topo_ref ref;
        if (!px_topo_find_net(t, name, &ref) || ref.type != PX_TOPO_OBJ_ETH_SEGMENT)
            continue;
        err = seg_cfg(n, l, p, i, ref.index, &cfgs[ns++], em);
    }
    if (!err)
        err = px_ethsvc_lab_apply(n->eth, l->name, l->dir, cfgs, ns, em);
    for (uint32_t i = 0; i < ns; i++)
        free(cfgs[i].ports);
    free(cfgs);
    return err;
}

void px_node_eth_remove(px_node *n, const char *lab)
{
    if (n->eth)
        px_ethsvc_lab_remove(n->eth, lab);
}
