/* plexus — topology loader: guest attachments (NICs, CAN controllers,
 * ivshmem devices, CXL ports). Nets are parsed before any guest, so every
 * check against a net happens here, at the attachment that breaks it. */
#include "coordinator/topology_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const nic_models[] = {"virtio-net-pci", "e1000", "e1000e", "rtl8139", NULL};
static const char *const can_ctrls[] = {"kvaser_pci", "ctucan_pci", NULL};
static const char *const nic_keys[] = {"segment", "mac", "model", "vlan", "port", "impair", NULL};
static const char *const nic_ports[] = {"stream", "dgram", NULL};
static const char *const can_attaches[] = {"shim", "vxcan", NULL};
static const char *const canif_keys[] = {"bus", "controller", "attach", NULL};
static const char *const shmif_keys[] = {"region", NULL};
static const char *const cxlif_keys[] = {"switch", "port", "pool", "lds", NULL};

const char *px_topo_nic_model_str(px_topo_nic_model m)
{
    return (unsigned)m < 4 ? nic_models[m] : "?";
}

const char *px_topo_can_ctrl_str(px_topo_can_ctrl ctl)
{
    return (unsigned)ctl < 2 ? can_ctrls[ctl] : "?";
}

const char *px_topo_can_attach_str(px_topo_can_attach a)
{
    return (unsigned)a < 2 ? can_attaches[a] : "?";
}

/* ---- one entry of each list ---- */

static px_err parse_mac(tctx *c, const tnode *n, uint8_t mac[6])
{
    static const char expect[] = "a unicast MAC like 52:54:00:12:34:56";
    if (n->type != TN_SCALAR || pxt_is_null(n))
        return pxt_fail(c, n, PX_E_CONFIG, "wrong type for mac: got %s; expected %s",
                        pxt_kind_str(n), expect);
    bool ok = n->len == 17;
    for (unsigned i = 0; ok && i < 6; i++) {
        unsigned v = 0;
        for (unsigned j = 0; ok && j < 2; j++) {
            char ch = n->str[3 * i + j];
            unsigned d = ch >= '0' && ch <= '9'   ? (unsigned)(ch - '0')
                         : ch >= 'a' && ch <= 'f' ? (unsigned)(ch - 'a' + 10)
                         : ch >= 'A' && ch <= 'F' ? (unsigned)(ch - 'A' + 10)
                                                  : 16u;
            ok = d < 16;
            v = v * 16 + d;
        }
        if (ok && i < 5)
            ok = n->str[3 * i + 2] == n->str[2] && (n->str[2] == ':' || n->str[2] == '-');
        mac[i] = (uint8_t)v;
    }
    if (!ok)
        return pxt_fail(c, n, PX_E_CONFIG, "invalid mac \"%.64s\"; expected %s", n->str, expect);
    if (mac[0] & 1)
        return pxt_fail(c, n, PX_E_CONFIG,
                        "mac %s is a multicast address; expected %s (first octet even)", n->str,
                        expect);
    if (!(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]))
        return pxt_fail(c, n, PX_E_CONFIG, "mac %s is all zeros; expected %s", n->str, expect);
    return PX_OK;
}

/* An attachment is a bare net name or a mapping with `key` naming the net. */
static px_err item_target(tctx *c, const tnode *item, const char *what, const char *key,
                          const char *const *keys, const tnode **target)
{
    if (item->type == TN_SCALAR && !pxt_is_null(item)) {
        *target = item;
        return PX_OK;
    }
    if (item->type != TN_MAP) {
        return pxt_fail(c, item, PX_E_CONFIG,
                        "wrong type for %s: got %s; expected a %s name or a mapping with %s:", what,
                        pxt_kind_str(item), key, key);
    }
    px_err err = pxt_check_map(c, item, what, keys);
    if (err)
        return err;
    *target = pxt_map_get(item, key);
    if (!*target)
        return pxt_fail(c, item, PX_E_CONFIG, "%s has no %s; expected %s: NAME", what, key, key);
    return PX_OK;
}

static px_err parse_nic(tctx *c, const tnode *item, px_topo_nic *nic, uint32_t guest)
{
    const tnode *target;
    px_err err = item_target(c, item, "nics entry", "segment", nic_keys, &target);
    if (err)
        return err;
    px_topo_ref r;
    if ((err = pxt_resolve_net(c, target, PX_TOPO_OBJ_ETH_SEGMENT, "segment", &r)))
        return err;
    nic->segment = r.index;
    nic->mark = pxt_mark(item);
    const px_topo_eth_segment *seg = &c->t->eth_segments[r.index];
    const tnode *map = item->type == TN_MAP ? item : NULL;
    tnode *n;
    unsigned e;
    uint64_t u;
    if ((n = pxt_map_get(map, "model"))) {
        if ((err = pxt_get_enum(c, n, "model", nic_models, &e)))
            return err;
        nic->model = (px_topo_nic_model)e;
    }
    if ((n = pxt_map_get(map, "vlan"))) {
        if ((err = pxt_get_uint(c, n, "vlan", 1, 4094, &u)))
            return err;
        nic->vlan = (uint16_t)u;
        uint16_t key = nic->vlan;
        if (seg->n_vlans && !bsearch(&key, seg->vlans, seg->n_vlans, sizeof(key), pxt_u16_cmp)) {
            char list[64] = "";
            size_t used = 0;
            for (uint32_t i = 0; i < seg->n_vlans && used < sizeof(list) - 8; i++)
                used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%u", i ? ", " : "",
                                         seg->vlans[i]);
            return pxt_fail(c, n, PX_E_CONFIG,
                            "vlan %u is not carried by segment \"%s\"; expected one of its "
                            "vlans: %s%s",
                            nic->vlan, seg->name, list, used >= sizeof(list) - 8 ? " ..." : "");
        }
    }
    if ((n = pxt_map_get(map, "port"))) {
        if ((err = pxt_get_enum(c, n, "port", nic_ports, &e)))
            return err;
        nic->port = (px_topo_nic_port)e;
    }
    if ((n = pxt_map_get(map, "impair")) &&
        (err = pxt_parse_impair(c, n, "a NIC impairment", true, &nic->impair)))
        return err;
    if (!(n = pxt_map_get(map, "mac"))) {
        nic->mac_generated = true; /* filled in by pxt_validate */
        return PX_OK;
    }
    if ((err = parse_mac(c, n, nic->mac)))
        return err;
    if (!c->real_guest)
        return PX_OK;
    const tmac *dup = NULL;
    if ((err = pxt_mac_insert(c, nic->mac, guest, pxt_mark(n), &dup)))
        return err;
    if (dup)
        return pxt_fail(c, n, PX_E_CONFIG,
                        "mac %s is already used by guest \"%s\" (at %u:%u); expected a unique "
                        "MAC per NIC%s",
                        n->str, c->t->guests[dup->guest].name, dup->mark.line, dup->mark.col,
                        dup->mark.line == n->line && dup->mark.col == n->col
                            ? " (hint: a mac in a kind or defaults goes to every guest that "
                              "inherits it)"
                            : "");
    return PX_OK;
}

static px_err parse_canif(tctx *c, const tnode *item, px_topo_canif *ci)
{
    const tnode *target;
    px_err err = item_target(c, item, "can entry", "bus", canif_keys, &target);
    if (err)
        return err;
    px_topo_ref r;
    if ((err = pxt_resolve_net(c, target, PX_TOPO_OBJ_CAN_BUS, "bus", &r)))
        return err;
    ci->bus = r.index;
    ci->mark = pxt_mark(item);
    const px_topo_can_bus *bus = &c->t->can_buses[r.index];
    /* An FD bus needs FD-capable controllers: a classic one would flag
     * every FD frame as an error. On a classic bus either works. */
    ci->controller = bus->fd ? PX_TOPO_CAN_CTUCAN_PCI : PX_TOPO_CAN_KVASER_PCI;
    unsigned e;
    tnode *n = item->type == TN_MAP ? pxt_map_get(item, "attach") : NULL;
    if (n) {
        if ((err = pxt_get_enum(c, n, "attach", can_attaches, &e)))
            return err;
        ci->attach = (px_topo_can_attach)e;
    }
    n = item->type == TN_MAP ? pxt_map_get(item, "controller") : NULL;
    if (!n)
        return PX_OK;
    if ((err = pxt_get_enum(c, n, "controller", can_ctrls, &e)))
        return err;
    ci->controller = (px_topo_can_ctrl)e;
    if (bus->fd && ci->controller == PX_TOPO_CAN_KVASER_PCI)
        return pxt_fail(c, n, PX_E_CONFIG,
                        "kvaser_pci is a classic CAN controller but bus \"%s\" is CAN FD; "
                        "expected controller: ctucan_pci (hint: a classic controller answers FD "
                        "frames with error frames)",
                        bus->name);
    return PX_OK;
}

static px_err parse_shmif(tctx *c, const tnode *item, px_topo_guest *g, uint32_t k)
{
    const tnode *target;
    px_err err = item_target(c, item, "ivshmem entry", "region", shmif_keys, &target);
    if (err)
        return err;
    px_topo_ref r;
    if ((err = pxt_resolve_net(c, target, PX_TOPO_OBJ_IVSHMEM, "region", &r)))
        return err;
    for (uint32_t j = 0; j < k; j++)
        if (g->shms[j].region == r.index)
            return pxt_fail(c, target, PX_E_CONFIG,
                            "region \"%s\" is attached twice (first at %u:%u); expected each "
                            "region once per guest",
                            target->str, g->shms[j].mark.line, g->shms[j].mark.col);
    g->shms[k].region = r.index;
    g->shms[k].mark = pxt_mark(item);
    return PX_OK;
}

static px_err parse_cxlif(tctx *c, const tnode *item, px_topo_cxlif *ci, uint32_t guest)
{
    px_topo *t = c->t;
    const tnode *target;
    px_err err = item_target(c, item, "cxl entry", "switch", cxlif_keys, &target);
    if (err)
        return err;
    px_topo_ref r;
    if ((err = pxt_resolve_net(c, target, PX_TOPO_OBJ_CXL_SWITCH, "switch", &r)))
        return err;
    const px_topo_cxl_switch *sw = &t->cxl_switches[r.index];
    ci->sw = r.index;
    ci->mark = pxt_mark(item);
    ci->pool = PX_TOPO_NONE;
    ci->port_auto = true;
    const tnode *map = item->type == TN_MAP ? item : NULL;
    tnode *n, *lk = NULL;
    uint64_t u;
    if ((n = pxt_map_get(map, "port"))) {
        if ((err = pxt_get_uint(c, n, "port", 0, sw->ports - 1, &u)))
            return err;
        ci->port = (uint32_t)u;
        ci->port_auto = false;
        uint32_t *owner = &c->cxl_port_owner[ci->sw * PX_TOPO_MAX_CXL_PORTS + ci->port];
        if (c->real_guest && *owner) {
            const px_topo_guest *o = &t->guests[*owner - 1];
            px_topo_mark m = {0, 0};
            for (uint32_t j = 0; j < o->n_cxls; j++)
                if (o->cxls[j].sw == ci->sw && o->cxls[j].port == ci->port)
                    m = o->cxls[j].mark;
            return pxt_fail(c, n, PX_E_CONFIG,
                            "port %u of cxl_switch \"%s\" is already taken by guest \"%s\" (at "
                            "%u:%u); expected a free port 0..%u or no port: (picks one)",
                            ci->port, sw->name, o->name, m.line, m.col, sw->ports - 1);
        }
        if (c->real_guest)
            *owner = guest + 1;
    }
    tnode *pool = pxt_map_get(map, "pool"), *lds = pxt_map_get_key(map, "lds", &lk);
    if (lds && !pool)
        return pxt_fail(c, lk, PX_E_CONFIG, "lds without a pool; expected pool: NAME alongside");
    if (!pool)
        return PX_OK;
    if ((err = pxt_resolve_net(c, pool, PX_TOPO_OBJ_CXL_POOL, "pool", &r)))
        return err;
    const px_topo_cxl_pool *p = &t->cxl_pools[r.index];
    if (p->sw != ci->sw)
        return pxt_fail(c, pool, PX_E_CONFIG,
                        "pool \"%s\" belongs to cxl_switch \"%s\", not \"%s\"; expected a pool "
                        "of switch \"%s\"",
                        p->name, t->cxl_switches[p->sw].name, sw->name, sw->name);
    ci->pool = r.index;
    ci->lds = 1;
    if (lds) {
        if ((err = pxt_get_uint(c, lds, "lds", 1, p->n_lds, &u)))
            return err;
        ci->lds = (uint32_t)u;
    }
    if (!c->real_guest)
        return PX_OK;
    uint32_t *used = &c->pool_lds_used[r.index];
    if (*used + ci->lds > p->n_lds)
        return pxt_fail(c, lds ? lds : pool, PX_E_CONFIG,
                        "cxl_pool \"%s\" has %u LDs but guests bind %u at start; expected at "
                        "most %u in total",
                        p->name, p->n_lds, *used + ci->lds, p->n_lds);
    *used += ci->lds;
    return PX_OK;
}

px_err pxt_parse_attachments(tctx *c, px_topo_guest *g, const tnode *const *chain)
{
    static const char *const lists[] = {"nics", "can", "ivshmem", "cxl"};
    static const size_t sizes[] = {sizeof(px_topo_nic), sizeof(px_topo_canif),
                                   sizeof(px_topo_shmif), sizeof(px_topo_cxlif)};
    uint32_t guest = c->guest_index;
    px_err err = PX_OK;
    for (int l = 0; l < 4 && !err; l++) {
        tnode *v = pxt_chain_get(chain, lists[l]);
        if (!v)
            continue;
        if ((err = pxt_check_seq(c, v, lists[l], PX_TOPO_MAX_ATTACH)))
            return err;
        if (pxt_is_null(v) || v->n == 0)
            continue;
        void *arr = px_tarena_array(c->t->arena, v->n, sizes[l]);
        if (!arr)
            return pxt_nomem(c);
        switch (l) {
        case 0:
            g->nics = arr;
            for (uint32_t k = 0; k < v->n && !err; k++, g->n_nics++)
                err = parse_nic(c, v->kids[k], &g->nics[k], guest);
            break;
        case 1:
            g->cans = arr;
            for (uint32_t k = 0; k < v->n && !err; k++, g->n_cans++)
                err = parse_canif(c, v->kids[k], &g->cans[k]);
            for (uint32_t k = 1; k < g->n_cans && !err; k++)
                if (g->cans[k].attach != g->cans[0].attach)
                    err = pxt_fail_at(
                        c, g->cans[k].mark, PX_E_CONFIG,
                        "CAN controller attaches through %s but an earlier one (at %u:%u) "
                        "through %s; expected one attach for every CAN controller of a guest "
                        "(hint: the shim takes over every PF_CAN socket of the guest's QEMU)",
                        px_topo_can_attach_str(g->cans[k].attach), g->cans[0].mark.line,
                        g->cans[0].mark.col, px_topo_can_attach_str(g->cans[0].attach));
            break;
        case 2:
            g->shms = arr;
            for (uint32_t k = 0; k < v->n && !err; k++, g->n_shms++)
                err = parse_shmif(c, v->kids[k], g, k);
            break;
        default:
            g->cxls = arr;
            for (uint32_t k = 0; k < v->n && !err; k++, g->n_cxls++)
                err = parse_cxlif(c, v->kids[k], &g->cxls[k], guest);
            break;
        }
    }
    return err;
}
