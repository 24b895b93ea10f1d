/* plexus — topology loader: checks over the whole model.
 *
 * By the time these run every name is resolved and every value parsed.
 * What is left needs all guests at once: generated MACs and CXL ports,
 * NAT forwards to guests on the segment, CAN gateways between FD buses,
 * placement constraints, faults, and
 * whether the guests can fit the hosts at all. The capacity checks here are
 * necessary conditions only; finding an actual placement is the placement
 * module's job. */
#include "coordinator/topology_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const placement_keys[] = {"pin", "colocate", "anti_affinity", "headroom", NULL};
static const char *const headroom_keys[] = {"cpus", "memory", NULL};
static const char *const fault_keys[] = {"name",  "type", "at",     "duration", "every",
                                         "guest", "net",  "impair", NULL};
static const char *const fault_types[] = {"link_down",   "kill",   "pause", "can_error",
                                          "can_bus_off", "impair", NULL};

#define FAULT_TIME_MAX (7ull * 24 * 3600 * 1000000000ull) /* a week */

const char *px_topo_fault_type_str(px_topo_fault_type f)
{
    return (unsigned)f < 6 ? fault_types[f] : "?";
}

/* ---- MACs ---- */

static uint64_t mac_key(const uint8_t m[6])
{
    return (uint64_t)m[0] << 40 | (uint64_t)m[1] << 32 | (uint64_t)m[2] << 24 |
           (uint64_t)m[3] << 16 | (uint64_t)m[4] << 8 | m[5] | 1ull << 48;
}

static tmac *mac_slot(const tctx *c, uint64_t key)
{
    uint32_t i = (uint32_t)((key * 0x9e3779b97f4a7c15ull) >> 40) & (c->mac_cap - 1);
    while (c->macs[i].key && c->macs[i].key != key)
        i = (i + 1) & (c->mac_cap - 1);
    return &c->macs[i];
}

px_err pxt_mac_insert(tctx *c, const uint8_t mac[6], uint32_t guest, px_topo_mark mark,
                      const tmac **dup)
{
    *dup = NULL;
    if (!c->macs) {
        /* Twice the most NICs the guests can have: probing never fills it. */
        uint64_t want = 2ull * c->t->n_guests * PX_TOPO_MAX_ATTACH;
        uint32_t cap = 64;
        while (cap < want)
            cap <<= 1;
        c->macs = calloc(cap, sizeof(*c->macs));
        if (!c->macs)
            return pxt_nomem(c);
        c->mac_cap = cap;
    }
    tmac *s = mac_slot(c, mac_key(mac));
    if (s->key) {
        *dup = s;
        return PX_OK;
    }
    *s = (tmac){mac_key(mac), guest, mark};
    return PX_OK;
}

bool pxt_mac_present(const tctx *c, const uint8_t mac[6])
{
    return c->macs && mac_slot(c, mac_key(mac))->key != 0;
}

/* A MAC derived from the guest's name and NIC position stays the same when
 * other guests are added or reordered; QEMU's 52:54:00 prefix marks it as
 * a virtual NIC. */
static px_err generate_macs(tctx *c)
{
    px_topo *t = c->t;
    for (uint32_t i = 0; i < t->n_guests; i++) {
        px_topo_guest *g = &t->guests[i];
        for (uint32_t k = 0; k < g->n_nics; k++) {
            px_topo_nic *nic = &g->nics[k];
            if (!nic->mac_generated)
                continue;
            uint32_t h = 2166136261u;
            for (const char *p = g->name; *p; p++)
                h = (h ^ (uint8_t)*p) * 16777619u;
            h = (h ^ '/') * 16777619u;
            h = (h ^ k) * 16777619u;
            for (;;) {
                uint8_t mac[6] = {0x52,      0x54, 0x00, (uint8_t)(h >> 16), (uint8_t)(h >> 8),
                                  (uint8_t)h};
                const tmac *dup;
                px_err err = pxt_mac_insert(c, mac, i, nic->mark, &dup);
                if (err)
                    return err;
                if (!dup) {
                    memcpy(nic->mac, mac, 6);
                    break;
                }
                h++;
            }
        }
    }
    return PX_OK;
}

/* ---- attachments that need every guest ---- */

static px_err assign_cxl_ports(tctx *c)
{
    px_topo *t = c->t;
    for (uint32_t i = 0; i < t->n_guests; i++) {
        px_topo_guest *g = &t->guests[i];
        for (uint32_t k = 0; k < g->n_cxls; k++) {
            px_topo_cxlif *ci = &g->cxls[k];
            if (!ci->port_auto)
                continue;
            const px_topo_cxl_switch *sw = &t->cxl_switches[ci->sw];
            uint32_t *owner = &c->cxl_port_owner[ci->sw * PX_TOPO_MAX_CXL_PORTS];
            uint32_t p = 0;
            while (p < sw->ports && owner[p])
                p++;
            if (p == sw->ports)
                return pxt_fail_at(c, ci->mark, PX_E_CONFIG,
                                   "cxl_switch \"%s\" has no free port left for guest \"%s\"; "
                                   "expected at most %u attachments (raise ports:)",
                                   sw->name, g->name, sw->ports);
            owner[p] = i + 1;
            ci->port = p;
        }
    }
    return PX_OK;
}

/* A forward's guest was resolved before guests were parsed; whether it has
 * a NIC on the segment is known only now. The YAML tree is still there, so
 * the error can point at the guest's name in the forward. */
static px_err check_forwards(tctx *c)
{
    px_topo *t = c->t;
    for (uint32_t i = 0; c->nets && i < c->nets->n; i++) {
        if (c->net_refs[i].type != PX_TOPO_OBJ_ETH_SEGMENT)
            continue;
        uint32_t s = c->net_refs[i].index;
        const px_topo_eth_segment *seg = &t->eth_segments[s];
        const tnode *fwds = pxt_map_get(pxt_map_get(c->nets->kids[2 * i + 1], "nat"), "forwards");
        for (uint32_t j = 0; j < seg->nat.n_forwards; j++) {
            const px_topo_forward *f = &seg->nat.forwards[j];
            const px_topo_guest *g = &t->guests[f->guest];
            if (px_topo_guest_on_net(g, (px_topo_ref){PX_TOPO_OBJ_ETH_SEGMENT, s}))
                continue;
            return pxt_fail(c, pxt_map_get(fwds->kids[j], "guest"), PX_E_CONFIG,
                            "guest \"%s\" has no NIC on segment \"%s\"; expected a guest "
                            "attached to it (hint: add nics: [%s] to %s)",
                            g->name, seg->name, seg->name, g->name);
        }
    }
    return PX_OK;
}

/* A gateway's `to:` may name a bus written later in the file, so whether
 * both ends of an fd gateway are CAN FD buses is known only now. */
static px_err check_gateways(tctx *c)
{
    px_topo *t = c->t;
    for (uint32_t i = 0; c->nets && i < c->nets->n; i++) {
        if (c->net_refs[i].type != PX_TOPO_OBJ_CAN_BUS)
            continue;
        const px_topo_can_bus *b = &t->can_buses[c->net_refs[i].index];
        const tnode *list = pxt_map_get(c->nets->kids[2 * i + 1], "gateways");
        for (uint32_t j = 0; j < b->n_gateways; j++) {
            const px_cangw_rule *r = &b->gateways[j].rule;
            const px_topo_can_bus *dst = &t->can_buses[r->dst_bus];
            if (!r->fd || (b->fd && dst->fd))
                continue;
            return pxt_fail(c, pxt_map_get(list->kids[j], "fd"), PX_E_CONFIG,
                            "gateway from \"%s\" to \"%s\" forwards CAN FD frames but bus "
                            "\"%s\" is classic CAN; expected fd: true only between two buses "
                            "with fd: true (hint: without it, classic frames are routed)",
                            b->name, dst->name, b->fd ? dst->name : b->name);
        }
    }
    return PX_OK;
}

/* ---- placement ---- */

static px_err parse_group(tctx *c, const tnode *n, const char *what, px_topo_group *grp)
{
    px_err err = pxt_check_seq(c, n, what, PX_TOPO_MAX_GROUP);
    if (err)
        return err;
    if (pxt_is_null(n) || n->n < 2)
        return pxt_fail(c, n, PX_E_CONFIG, "%s group has %u guest%s; expected a list of at least 2",
                        what, pxt_is_null(n) ? 0 : n->n, !pxt_is_null(n) && n->n == 1 ? "" : "s");
    grp->guests = px_tarena_array(c->t->arena, n->n, sizeof(*grp->guests));
    if (!grp->guests)
        return pxt_nomem(c);
    grp->mark = pxt_mark(n);
    for (uint32_t i = 0; i < n->n; i++) {
        if ((err = pxt_resolve_guest(c, n->kids[i], "guest", &grp->guests[i])))
            return err;
        for (uint32_t j = 0; j < i; j++)
            if (grp->guests[j] == grp->guests[i])
                return pxt_fail(c, n->kids[i], PX_E_CONFIG,
                                "guest \"%s\" is listed twice in this %s group (first at %u:%u); "
                                "expected each guest once",
                                n->kids[i]->str, what, n->kids[j]->line, n->kids[j]->col);
        grp->n = i + 1;
    }
    return PX_OK;
}

static px_err parse_groups(tctx *c, const tnode *n, const char *what, px_topo_group **out,
                           uint32_t *count)
{
    px_err err = pxt_check_seq(c, n, what, PX_TOPO_MAX_CONSTRAINTS);
    if (err || pxt_is_null(n) || n->n == 0)
        return err;
    *out = px_tarena_array(c->t->arena, n->n, sizeof(**out));
    if (!*out)
        return pxt_nomem(c);
    for (uint32_t i = 0; i < n->n; i++) {
        if ((err = parse_group(c, n->kids[i], what, &(*out)[i])))
            return err;
        *count = i + 1;
    }
    return PX_OK;
}

static px_err parse_pins(tctx *c, const tnode *n)
{
    px_topo_placement *pl = &c->t->placement;
    px_err err = pxt_check_name_map(c, n, "pin", "pinned guest or net", PX_TOPO_MAX_CONSTRAINTS);
    if (err || pxt_is_null(n) || n->n == 0)
        return err;
    pl->pins = px_tarena_array(c->t->arena, n->n, sizeof(*pl->pins));
    if (!pl->pins)
        return pxt_nomem(c);
    for (uint32_t i = 0; i < n->n; i++) {
        tnode *k = n->kids[2 * i];
        const tname *f = pxt_find(c->names, c->n_names, k->str);
        if (!f)
            return pxt_fail(c, k, PX_E_CONFIG,
                            "unknown guest or net \"%s\" in pin; expected a guest under nodes or "
                            "a net under nets",
                            k->str);
        px_topo_pin *p = &pl->pins[i];
        p->what = f->ref;
        p->mark = pxt_mark(n->kids[2 * i + 1]);
        if ((err = pxt_resolve_host(c, n->kids[2 * i + 1], "host", &p->host)))
            return err;
        pl->n_pins = i + 1;
    }
    return PX_OK;
}

static px_err parse_placement(tctx *c)
{
    px_topo_placement *pl = &c->t->placement;
    const tnode *n = c->placement;
    px_err err = pxt_check_map(c, n, "placement", placement_keys);
    if (err || pxt_is_null(n))
        return err;
    tnode *v;
    if ((v = pxt_map_get(n, "headroom"))) {
        if ((err = pxt_check_map(c, v, "headroom", headroom_keys)))
            return err;
        tnode *x;
        uint64_t u;
        if ((x = pxt_map_get(v, "cpus"))) {
            if ((err = pxt_get_uint(c, x, "cpus", 0, 4096, &u)))
                return err;
            pl->headroom_cpus = (uint32_t)u;
        }
        if ((x = pxt_map_get(v, "memory")) &&
            (err = pxt_get_size(c, x, "memory", 0, 64ull << 40, &pl->headroom_memory)))
            return err;
    }
    if ((v = pxt_map_get(n, "pin")) && (err = parse_pins(c, v)))
        return err;
    if ((v = pxt_map_get(n, "colocate")) &&
        (err = parse_groups(c, v, "colocate", &pl->colocate, &pl->n_colocate)))
        return err;
    if ((v = pxt_map_get(n, "anti_affinity")) &&
        (err = parse_groups(c, v, "anti_affinity", &pl->anti_affinity, &pl->n_anti_affinity)))
        return err;
    return PX_OK;
}

/* ---- capacity ---- */

typedef struct need {
    uint64_t cpus;
    uint64_t memory;
} need;

static void fmt_mem(char *buf, size_t cap, uint64_t v)
{
    if (v % (1ull << 30) == 0)
        snprintf(buf, cap, "%" PRIu64 "G", v >> 30);
    else if (v % (1ull << 20) == 0)
        snprintf(buf, cap, "%" PRIu64 "M", v >> 20);
    else
        snprintf(buf, cap, "%" PRIu64 "B", v);
}

static need host_room(const px_topo *t, uint32_t h)
{
    need r = {t->hosts[h].cpus - t->placement.headroom_cpus,
              t->hosts[h].memory - t->placement.headroom_memory};
    return r;
}

static bool fits(need n, need room)
{
    return n.cpus <= room.cpus && n.memory <= room.memory;
}

static uint32_t find_root(uint32_t *parent, uint32_t i)
{
    while (parent[i] != i) {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    return i;
}

typedef struct capctx {
    uint32_t *parent;   /* colocate components (union-find over guests) */
    uint32_t *pin;      /* host + 1 per guest, 0 = not pinned */
    need *comp;         /* per component root: total need */
    uint32_t *comp_pin; /* per component root: host + 1 */
} capctx;

static px_err check_hosts(tctx *c)
{
    px_topo *t = c->t;
    const px_topo_placement *pl = &t->placement;
    char a[32], b[32];
    for (uint32_t h = 0; h < t->n_hosts; h++) {
        if (pl->headroom_cpus < t->hosts[h].cpus && pl->headroom_memory < t->hosts[h].memory)
            continue;
        fmt_mem(a, sizeof(a), t->hosts[h].memory);
        tnode *hr = pxt_map_get(c->placement, "headroom");
        return pxt_fail(c, hr, PX_E_CONFIG,
                        "headroom leaves host \"%s\" (%u cpus, %s) nothing to run guests; "
                        "expected headroom below every host's capacity",
                        t->hosts[h].name, t->hosts[h].cpus, a);
    }
    need total = {0, 0}, offer = {0, 0}, biggest = {0, 0};
    for (uint32_t h = 0; h < t->n_hosts; h++) {
        need r = host_room(t, h);
        offer.cpus += r.cpus;
        offer.memory += r.memory;
        biggest.cpus = r.cpus > biggest.cpus ? r.cpus : biggest.cpus;
        biggest.memory = r.memory > biggest.memory ? r.memory : biggest.memory;
    }
    for (uint32_t i = 0; i < t->n_guests; i++) {
        const px_topo_guest *g = &t->guests[i];
        need n = {g->cpus, g->memory};
        total.cpus += n.cpus;
        total.memory += n.memory;
        bool ok = false;
        for (uint32_t h = 0; h < t->n_hosts && !ok; h++)
            ok = fits(n, host_room(t, h));
        if (ok)
            continue;
        fmt_mem(a, sizeof(a), g->memory);
        fmt_mem(b, sizeof(b), biggest.memory);
        return pxt_fail_at(c, g->mark, PX_E_CONFIG,
                           "guest \"%s\" needs %u cpus and %s but no host has that much room "
                           "(largest: %" PRIu64 " cpus, %s after headroom); expected a guest "
                           "that fits one host",
                           g->name, g->cpus, a, biggest.cpus, b);
    }
    if (!fits(total, offer)) {
        fmt_mem(a, sizeof(a), total.memory);
        fmt_mem(b, sizeof(b), offer.memory);
        return pxt_fail(c, c->hosts_key, PX_E_CONFIG,
                        "the guests need %" PRIu64
                        " cpus and %s in total but the hosts offer %" PRIu64
                        " cpus and %s after headroom; expected enough host capacity",
                        total.cpus, a, offer.cpus, b);
    }
    return PX_OK;
}

static px_err check_pins(tctx *c, capctx *k)
{
    px_topo *t = c->t;
    const px_topo_placement *pl = &t->placement;
    need *used = px_tarena_array(&c->tree, t->n_hosts ? t->n_hosts : 1, sizeof(*used));
    if (!used)
        return pxt_nomem(c);
    char a[32], b[32];
    for (uint32_t i = 0; i < pl->n_pins; i++) {
        const px_topo_pin *p = &pl->pins[i];
        if (p->what.type != PX_TOPO_OBJ_GUEST)
            continue;
        const px_topo_guest *g = &t->guests[p->what.index];
        k->pin[p->what.index] = p->host + 1;
        used[p->host].cpus += g->cpus;
        used[p->host].memory += g->memory;
        need room = host_room(t, p->host);
        if (fits(used[p->host], room))
            continue;
        fmt_mem(a, sizeof(a), used[p->host].memory);
        fmt_mem(b, sizeof(b), room.memory);
        return pxt_fail_at(c, p->mark, PX_E_CONFIG,
                           "guests pinned to host \"%s\" need %" PRIu64 " cpus and %s but it has "
                           "%" PRIu64 " cpus and %s after headroom; expected pins that fit the "
                           "host",
                           t->hosts[p->host].name, used[p->host].cpus, a, room.cpus, b);
    }
    return PX_OK;
}

static px_err check_groups(tctx *c, capctx *k)
{
    px_topo *t = c->t;
    const px_topo_placement *pl = &t->placement;
    char a[32];
    for (uint32_t i = 0; i < t->n_guests; i++)
        k->parent[i] = i;
    for (uint32_t g = 0; g < pl->n_colocate; g++)
        for (uint32_t m = 1; m < pl->colocate[g].n; m++)
            k->parent[find_root(k->parent, pl->colocate[g].guests[m])] =
                find_root(k->parent, pl->colocate[g].guests[0]);
    /* Component totals and pins; two pins in one component must agree. */
    for (uint32_t i = 0; i < t->n_guests; i++) {
        uint32_t r = find_root(k->parent, i);
        k->comp[r].cpus += t->guests[i].cpus;
        k->comp[r].memory += t->guests[i].memory;
        if (!k->pin[i])
            continue;
        if (k->comp_pin[r] && k->comp_pin[r] != k->pin[i]) {
            const px_topo_pin *p = NULL;
            for (uint32_t j = 0; j < pl->n_pins && !p; j++)
                if (pl->pins[j].what.type == PX_TOPO_OBJ_GUEST && pl->pins[j].what.index == i)
                    p = &pl->pins[j];
            return pxt_fail_at(c, p->mark, PX_E_CONFIG,
                               "guest \"%s\" is pinned to host \"%s\" but colocated with a guest "
                               "pinned to host \"%s\"; expected colocated guests pinned to one "
                               "host",
                               t->guests[i].name, t->hosts[k->pin[i] - 1].name,
                               t->hosts[k->comp_pin[r] - 1].name);
        }
        k->comp_pin[r] = k->pin[i];
    }
    for (uint32_t g = 0; g < pl->n_colocate && t->n_hosts; g++) {
        uint32_t r = find_root(k->parent, pl->colocate[g].guests[0]);
        bool ok = false;
        for (uint32_t h = 0; h < t->n_hosts && !ok; h++)
            ok = (!k->comp_pin[r] || k->comp_pin[r] == h + 1) && fits(k->comp[r], host_room(t, h));
        if (ok)
            continue;
        fmt_mem(a, sizeof(a), k->comp[r].memory);
        return pxt_fail_at(c, pl->colocate[g].mark, PX_E_CONFIG,
                           "colocated guests need %" PRIu64 " cpus and %s together; expected "
                           "them to fit %s",
                           k->comp[r].cpus, a,
                           k->comp_pin[r] ? "the host they are pinned to" : "one host");
    }
    for (uint32_t g = 0; g < pl->n_anti_affinity; g++) {
        const px_topo_group *grp = &pl->anti_affinity[g];
        if (t->n_hosts && grp->n > t->n_hosts)
            return pxt_fail_at(c, grp->mark, PX_E_CONFIG,
                               "anti_affinity group of %u guests needs %u hosts; expected at most "
                               "%u guests (there are %u hosts)",
                               grp->n, grp->n, t->n_hosts, t->n_hosts);
        for (uint32_t m = 1; m < grp->n; m++) {
            uint32_t gm = grp->guests[m], rm = find_root(k->parent, gm);
            for (uint32_t j = 0; j < m; j++) {
                uint32_t gj = grp->guests[j], rj = find_root(k->parent, gj);
                const char *why = rm == rj ? "colocated"
                                  : k->comp_pin[rm] && k->comp_pin[rm] == k->comp_pin[rj]
                                      ? "pinned to the same host"
                                      : NULL;
                if (why)
                    return pxt_fail_at(c, grp->mark, PX_E_CONFIG,
                                       "guests \"%s\" and \"%s\" must be apart (anti_affinity) "
                                       "but are %s; expected constraints that can all hold",
                                       t->guests[gj].name, t->guests[gm].name, why);
            }
        }
    }
    return PX_OK;
}

static px_err check_capacity(tctx *c)
{
    px_topo *t = c->t;
    size_t n = t->n_guests;
    capctx k = {
        .parent = px_tarena_array(&c->tree, n, sizeof(uint32_t)),
        .pin = px_tarena_array(&c->tree, n, sizeof(uint32_t)),
        .comp = px_tarena_array(&c->tree, n, sizeof(need)),
        .comp_pin = px_tarena_array(&c->tree, n, sizeof(uint32_t)),
    };
    if (!k.parent || !k.pin || !k.comp || !k.comp_pin)
        return pxt_nomem(c);
    px_err err = PX_OK;
    if (t->n_hosts && (err = check_hosts(c)))
        return err;
    if ((err = check_pins(c, &k)))
        return err;
    return check_groups(c, &k);
}

/* ---- faults ---- */

enum { NO = 0, OPT, REQ };

static const struct fault_rule {
    uint8_t guest, net, impair;
    bool duration;
    px_topo_obj nets[2];
} fault_rules[] = {
    [PX_TOPO_FAULT_LINK_DOWN] =
        {OPT, REQ, NO, true, {PX_TOPO_OBJ_ETH_SEGMENT, PX_TOPO_OBJ_CAN_BUS}},
    [PX_TOPO_FAULT_KILL] = {REQ, NO, NO, false, {0, 0}},
    [PX_TOPO_FAULT_PAUSE] = {REQ, NO, NO, true, {0, 0}},
    [PX_TOPO_FAULT_CAN_ERROR] = {NO, REQ, NO, true, {PX_TOPO_OBJ_CAN_BUS, PX_TOPO_OBJ_CAN_BUS}},
    [PX_TOPO_FAULT_CAN_BUS_OFF] = {REQ, REQ, NO, true, {PX_TOPO_OBJ_CAN_BUS, PX_TOPO_OBJ_CAN_BUS}},
    [PX_TOPO_FAULT_IMPAIR] = {OPT, REQ, REQ, true, {PX_TOPO_OBJ_ETH_SEGMENT, PX_TOPO_OBJ_CAN_BUS}},
};

static px_err fault_field(tctx *c, const tnode *item, const char *key, uint8_t rule,
                          const char *type, tnode **out)
{
    tnode *k = NULL;
    *out = pxt_map_get_key(item, key, &k);
    if (*out && rule == NO)
        return pxt_fail(c, k, PX_E_CONFIG,
                        "%s does not apply to a %s fault; expected only the keys that fault "
                        "takes (see docs/topology.md, faults)",
                        key, type);
    if (!*out && rule == REQ)
        return pxt_fail(c, item, PX_E_CONFIG, "%s fault has no %s; expected %s: NAME", type, key,
                        key);
    return PX_OK;
}

static px_err parse_fault(tctx *c, const tnode *item, uint32_t idx, px_topo_fault *f)
{
    px_topo *t = c->t;
    px_err err = pxt_check_map(c, item, "a fault", fault_keys);
    if (err)
        return err;
    if (item->type != TN_MAP)
        return pxt_fail(c, item, PX_E_CONFIG, "empty fault; expected a mapping with type:");
    f->mark = pxt_mark(item);
    f->guest = PX_TOPO_NONE;
    tnode *v = pxt_map_get(item, "type");
    if (!v)
        return pxt_fail(c, item, PX_E_CONFIG,
                        "fault has no type; expected type: link_down | kill | pause | can_error | "
                        "can_bus_off | impair");
    unsigned e;
    if ((err = pxt_get_enum(c, v, "fault type", fault_types, &e)))
        return err;
    f->type = (px_topo_fault_type)e;
    const struct fault_rule *rule = &fault_rules[e];
    const char *type = fault_types[e];
    if ((v = pxt_map_get(item, "name"))) {
        if ((err = pxt_get_name(c, v, "fault name", f->name)))
            return err;
    } else {
        snprintf(f->name, sizeof(f->name), "fault-%u", idx + 1);
    }
    for (uint32_t j = 0; j < idx; j++)
        if (strcmp(t->faults[j].name, f->name) == 0)
            return pxt_fail(c, v ? v : item, PX_E_CONFIG,
                            "duplicate fault name \"%s\" (first at %u:%u); expected unique names",
                            f->name, t->faults[j].mark.line, t->faults[j].mark.col);
    if ((v = pxt_map_get(item, "at")) &&
        (err = pxt_get_duration(c, v, "at", 0, FAULT_TIME_MAX, &f->at_ns)))
        return err;
    tnode *dur;
    if ((err = fault_field(c, item, "duration", rule->duration ? OPT : NO, type, &dur)))
        return err;
    if (dur && (err = pxt_get_duration(c, dur, "duration", 1000, FAULT_TIME_MAX, &f->duration_ns)))
        return err;
    if ((v = pxt_map_get(item, "every"))) {
        if ((err = pxt_get_duration(c, v, "every", 1000000, FAULT_TIME_MAX, &f->every_ns)))
            return err;
        if (f->duration_ns >= f->every_ns && dur)
            return pxt_fail(c, v, PX_E_CONFIG,
                            "every %s is not longer than the duration %s; expected a period "
                            "longer than each fault",
                            v->str, dur->str);
    }
    tnode *g, *n, *imp;
    if ((err = fault_field(c, item, "guest", rule->guest, type, &g)) ||
        (err = fault_field(c, item, "net", rule->net, type, &n)) ||
        (err = fault_field(c, item, "impair", rule->impair, type, &imp)))
        return err;
    if (g && (err = pxt_resolve_guest(c, g, "guest", &f->guest)))
        return err;
    if (n) {
        if ((err = pxt_resolve_net(c, n, PX_TOPO_OBJ_NONE, "net", &f->net)))
            return err;
        if (f->net.type != rule->nets[0] && f->net.type != rule->nets[1])
            return pxt_fail(c, n, PX_E_CONFIG, "net \"%s\" is %s; expected %s%s%s for a %s fault",
                            n->str, pxt_obj_a(f->net.type), pxt_obj_a(rule->nets[0]),
                            rule->nets[0] != rule->nets[1] ? " or " : "",
                            rule->nets[0] != rule->nets[1] ? px_topo_obj_str(rule->nets[1]) : "",
                            type);
        if (g && !px_topo_guest_on_net(&t->guests[f->guest], f->net))
            return pxt_fail(c, g, PX_E_CONFIG,
                            "guest \"%s\" is not attached to %s \"%s\"; expected a guest on that "
                            "net",
                            g->str, px_topo_obj_str(f->net.type), n->str);
    }
    if (imp)
        err = pxt_parse_impair(c, imp, "a fault impairment", f->net.type != PX_TOPO_OBJ_CAN_BUS,
                               &f->impair);
    return err;
}

static px_err parse_faults(tctx *c)
{
    px_topo *t = c->t;
    px_err err = pxt_check_seq(c, c->faults, "faults", PX_TOPO_MAX_FAULTS);
    if (err || pxt_is_null(c->faults) || c->faults->n == 0)
        return err;
    t->faults = px_tarena_array(t->arena, c->faults->n, sizeof(*t->faults));
    if (!t->faults)
        return pxt_nomem(c);
    for (uint32_t i = 0; i < c->faults->n; i++) {
        if ((err = parse_fault(c, c->faults->kids[i], i, &t->faults[i])))
            return err;
        t->n_faults = i + 1;
    }
    return PX_OK;
}

px_err pxt_validate(tctx *c)
{
    px_err err;
    if ((err = generate_macs(c)) || (err = assign_cxl_ports(c)) || (err = check_forwards(c)) ||
        (err = check_gateways(c)) || (err = parse_placement(c)) || (err = check_capacity(c)) ||
        (err = parse_faults(c)))
        return err;
    return PX_OK;
}
