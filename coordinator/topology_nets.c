/* plexus — topology loader: nets, impairments, guest attachments. */
#include "coordinator/topology_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const net_types[] = {"can_bus",    "eth_segment", "ivshmem",
                                        "cxl_switch", "cxl_pool",    NULL};
static const px_topo_obj net_objs[] = {PX_TOPO_OBJ_CAN_BUS, PX_TOPO_OBJ_ETH_SEGMENT,
                                       PX_TOPO_OBJ_IVSHMEM, PX_TOPO_OBJ_CXL_SWITCH,
                                       PX_TOPO_OBJ_CXL_POOL};

static const char *const can_bus_keys[] = {"type",   "bitrate",  "data_bitrate",    "fd", "mode",
                                           "impair", "gateways", "host_interfaces", NULL};
static const char *const hostif_keys[] = {"host", "interface", NULL};
static const char *const gateway_keys[] = {"to", "filter", "modify", "fd", "hops", NULL};
static const char *const eth_keys[] = {"type", "mode",   "vlans", "mtu",
                                       "nat",  "impair", "taps",  NULL};
static const char *const shm_net_keys[] = {"type", "size", "vectors", "sync", "hosts", NULL};
static const char *const cxl_switch_keys[] = {"type", "ports", NULL};
static const char *const cxl_pool_keys[] = {"type", "switch", "capacity", "ld_size", "sync", NULL};
static const char *const nat_keys[] = {"subnet", "forwards", NULL};
static const char *const fwd_keys[] = {"proto", "listen", "guest", "port", NULL};
static const char *const impair_keys[] = {"delay",   "jitter",  "loss",       "rate", "duplicate",
                                          "corrupt", "reorder", "loss_burst", NULL};
static const char *const impair_keys_nic[] = {"delay",     "jitter",  "loss",    "rate",
                                              "duplicate", "corrupt", "reorder", "loss_burst",
                                              "direction", NULL};
static const char *const directions[] = {"egress", "ingress", "both", NULL};
static const char *const impair_keys_can[] = {"delay",     "jitter",  "loss",
                                              "duplicate", "corrupt", NULL};

static const char *const can_modes[] = {"ideal", "timed", NULL};
static const char *const eth_modes[] = {"switch", "hub", NULL};
static const char *const protos[] = {"tcp", "udp", NULL};

#define CXL_GRAIN       (256ull << 20) /* QEMU 7.2 CXL sizes come in 256 MiB steps */
#define CAN_RATE_MIN    1000u
#define CAN_RATE_MAX    1000000u
#define CAN_DATA_MAX    10000000u
#define CAN_DATA_DEF    2000000u
#define CAN_RATE_DEF    500000u
#define ETH_MTU_MIN     68u
#define ETH_MTU_MAX     65517u /* 65535-byte frames minus Ethernet and 802.1Q headers */
#define SHM_SIZE_MIN    4096ull
#define SHM_SIZE_MAX    (4ull << 30)
#define SHM_SIZE_DEF    (4ull << 20)
#define SHM_VECTORS_MAX 64u
#define SHM_SYNC_MIN    1000000ull           /* 1 ms */
#define SHM_SYNC_MAX    3600000000000ull     /* 1 h */
#define CXL_PORTS_DEF   4u
#define CXL_POOL_MAX    (64ull << 40)
#define IMPAIR_TIME_MAX 60000000000ull /* 60 s */
#define IMPAIR_RATE_MAX 400000000000ull

/* ---- nets: names and types first, so anything can refer to any net ---- */

px_err pxt_parse_nets(tctx *c)
{
    px_topo *t = c->t;
    px_err err = pxt_check_name_map(c, c->nets, "nets", "net", PX_TOPO_MAX_NETS);
    if (err)
        return err;
    if (pxt_is_null(c->nets)) {
        c->nets = NULL;
        return PX_OK;
    }
    uint32_t n = c->nets->n, count[5] = {0};
    c->net_refs = px_tarena_array(&c->tree, n ? n : 1, sizeof(*c->net_refs));
    if (!c->net_refs)
        return pxt_nomem(c);
    for (uint32_t i = 0; i < n; i++) {
        tnode *key = c->nets->kids[2 * i], *v = c->nets->kids[2 * i + 1];
        tnode *type = pxt_map_get(v, "type");
        if (v->type != TN_MAP && !pxt_is_null(v))
            return pxt_fail(c, v, PX_E_CONFIG,
                            "wrong type for net \"%s\": got %s; expected a mapping with type: "
                            "and its settings",
                            key->str, pxt_kind_str(v));
        if (!type)
            return pxt_fail(c, key, PX_E_CONFIG,
                            "net \"%s\" has no type; expected type: can_bus | eth_segment | "
                            "ivshmem | cxl_switch | cxl_pool",
                            key->str);
        unsigned e;
        if ((err = pxt_get_enum(c, type, "net type", net_types, &e)))
            return err;
        c->net_refs[i] = (px_topo_ref){net_objs[e], count[e]++};
    }
    t->can_buses = px_tarena_array(t->arena, count[0], sizeof(*t->can_buses));
    t->eth_segments = px_tarena_array(t->arena, count[1], sizeof(*t->eth_segments));
    t->ivshmem = px_tarena_array(t->arena, count[2], sizeof(*t->ivshmem));
    t->cxl_switches = px_tarena_array(t->arena, count[3], sizeof(*t->cxl_switches));
    t->cxl_pools = px_tarena_array(t->arena, count[4], sizeof(*t->cxl_pools));
    if (!t->can_buses || !t->eth_segments || !t->ivshmem || !t->cxl_switches || !t->cxl_pools)
        return pxt_nomem(c);
    t->n_can_buses = count[0];
    t->n_eth_segments = count[1];
    t->n_ivshmem = count[2];
    t->n_cxl_switches = count[3];
    t->n_cxl_pools = count[4];
    for (uint32_t i = 0; i < n; i++) {
        tnode *key = c->nets->kids[2 * i];
        uint32_t j = c->net_refs[i].index;
        char *name;
        px_topo_mark *mark;
        switch (c->net_refs[i].type) {
        case PX_TOPO_OBJ_CAN_BUS:
            name = t->can_buses[j].name, mark = &t->can_buses[j].mark;
            break;
        case PX_TOPO_OBJ_ETH_SEGMENT:
            name = t->eth_segments[j].name, mark = &t->eth_segments[j].mark;
            break;
        case PX_TOPO_OBJ_IVSHMEM:
            name = t->ivshmem[j].name, mark = &t->ivshmem[j].mark;
            break;
        case PX_TOPO_OBJ_CXL_SWITCH:
            name = t->cxl_switches[j].name, mark = &t->cxl_switches[j].mark;
            break;
        default:
            name = t->cxl_pools[j].name, mark = &t->cxl_pools[j].mark;
            break;
        }
        memcpy(name, key->str, key->len + 1);
        *mark = pxt_mark(key);
    }
    c->cxl_port_owner = px_tarena_array(&c->tree, (size_t)count[3] * PX_TOPO_MAX_CXL_PORTS + 1,
                                        sizeof(*c->cxl_port_owner));
    c->pool_lds_used = px_tarena_array(&c->tree, count[4] + 1, sizeof(*c->pool_lds_used));
    c->fwd_used = px_tarena_alloc(&c->tree, 2 * 65536 / 8);
    if (!c->cxl_port_owner || !c->pool_lds_used || !c->fwd_used)
        return pxt_nomem(c);
    return PX_OK;
}

/* ---- impairments ---- */

px_err pxt_parse_impair(tctx *c, const tnode *n, const char *what, bool allow_rate,
                        px_topo_impair *out)
{
    tnode *rk = NULL;
    if (!allow_rate && pxt_map_get_key(n, "rate", &rk))
        return pxt_fail(c, rk, PX_E_CONFIG,
                        "rate does not apply to %s; expected delay, jitter, loss, duplicate or "
                        "corrupt (hint: a CAN bus is paced by its bitrate)",
                        what);
    bool nic = strcmp(what, "a NIC impairment") == 0;
    px_err err = pxt_check_map(c, n, what,
                               !allow_rate ? impair_keys_can
                               : nic       ? impair_keys_nic
                                           : impair_keys);
    if (err)
        return err;
    memset(out, 0, sizeof(*out));
    out->set = true;
    out->direction = nic ? PX_TOPO_DIR_EGRESS : PX_TOPO_DIR_BOTH;
    tnode *v, *jk = NULL;
    if ((v = pxt_map_get(n, "delay")) &&
        (err = pxt_get_duration(c, v, "delay", 0, IMPAIR_TIME_MAX, &out->delay_ns)))
        return err;
    if ((v = pxt_map_get_key(n, "jitter", &jk))) {
        if ((err = pxt_get_duration(c, v, "jitter", 0, IMPAIR_TIME_MAX, &out->jitter_ns)))
            return err;
        if (out->jitter_ns && !out->delay_ns)
            return pxt_fail(c, jk, PX_E_CONFIG,
                            "jitter without a delay; expected delay: alongside (jitter varies "
                            "the delay)");
    }
    if ((v = pxt_map_get(n, "loss")) && (err = pxt_get_percent(c, v, "loss", &out->loss_ppm)))
        return err;
    if ((v = pxt_map_get(n, "duplicate")) &&
        (err = pxt_get_percent(c, v, "duplicate", &out->duplicate_ppm)))
        return err;
    if ((v = pxt_map_get(n, "corrupt")) &&
        (err = pxt_get_percent(c, v, "corrupt", &out->corrupt_ppm)))
        return err;
    if ((v = pxt_map_get(n, "rate")) &&
        (err = pxt_get_bitrate(c, v, "rate", 1000, IMPAIR_RATE_MAX, &out->rate_bps)))
        return err;
    tnode *ok = NULL, *bk = NULL;
    if ((v = pxt_map_get_key(n, "reorder", &ok))) {
        if ((err = pxt_get_percent(c, v, "reorder", &out->reorder_ppm)))
            return err;
        if (out->reorder_ppm && !out->delay_ns)
            return pxt_fail(c, ok, PX_E_CONFIG,
                            "reorder without a delay; expected delay: alongside (reordered frames "
                            "are the ones that skip the delay)");
    }
    if ((v = pxt_map_get_key(n, "loss_burst", &bk))) {
        uint64_t u;
        if ((err = pxt_get_uint(c, v, "loss_burst", 1, 1000, &u)))
            return err;
        out->loss_burst = (uint32_t)u;
        if (!out->loss_ppm)
            return pxt_fail(c, bk, PX_E_CONFIG,
                            "loss_burst without a loss; expected loss: alongside (loss_burst is "
                            "the mean length of a run of lost frames)");
    }
    unsigned e;
    if ((v = pxt_map_get(n, "direction"))) {
        if ((err = pxt_get_enum(c, v, "direction", directions, &e)))
            return err;
        out->direction = (px_topo_direction)e;
    }
    return PX_OK;
}

/* ---- CAN gateways (fabric/can-bus/gateway.h does the cangw syntax) ---- */

static px_err parse_gateway(tctx *c, const tnode *item, uint32_t src, px_topo_can_gateway *gw)
{
    px_topo *t = c->t;
    px_err err = pxt_check_map(c, item, "a gateway", gateway_keys);
    if (err)
        return err;
    if (item->type != TN_MAP)
        return pxt_fail(c, item, PX_E_CONFIG,
                        "empty gateway; expected {to: BUS, filter, modify, fd, hops}");
    gw->mark = pxt_mark(item);
    tnode *to = pxt_map_get(item, "to"), *v;
    if (!to)
        return pxt_fail(c, item, PX_E_CONFIG,
                        "gateway has no to; expected to: NAME of the can_bus it routes frames to");
    px_topo_ref r;
    if ((err = pxt_resolve_net(c, to, PX_TOPO_OBJ_CAN_BUS, "gateway destination", &r)))
        return err;
    if (r.index == src)
        return pxt_fail(c, to, PX_E_CONFIG,
                        "gateway from bus \"%s\" to itself; expected another can_bus as to:",
                        t->can_buses[src].name);
    px_cangw_rule_init(&gw->rule, src, r.index);
    px_errmsg em = {{0}};
    char *s;
    if ((v = pxt_map_get(item, "fd")) && (err = pxt_get_bool(c, v, "fd", &gw->rule.fd)))
        return err;
    if ((v = pxt_map_get(item, "hops"))) {
        uint64_t u;
        if ((err = pxt_get_uint(c, v, "hops", 1, PX_CANGW_HOPS_MAX, &u)))
            return err;
        gw->rule.hops = (uint8_t)u;
    }
    if ((v = pxt_map_get(item, "filter"))) {
        if ((err = pxt_get_str(c, v, "filter", &s)))
            return err;
        if (px_cangw_parse_filter(s, strlen(s), &gw->rule.filter, &em))
            return pxt_fail(c, v, PX_E_CONFIG, "gateway %s", em.text);
    }
    if (!(v = pxt_map_get(item, "modify")))
        return PX_OK;
    if ((err = pxt_check_seq(c, v, "modify", PX_CANGW_MAX_MODS)) || pxt_is_null(v))
        return err;
    for (uint32_t i = 0; i < v->n; i++) {
        px_cangw_mod m;
        if ((err = pxt_get_str(c, v->kids[i], "modification", &s)))
            return err;
        if (px_cangw_parse_mod(s, strlen(s), &m, &em) || px_cangw_add_mod(&gw->rule, &m, &em))
            return pxt_fail(c, v->kids[i], PX_E_CONFIG, "gateway %s", em.text);
    }
    return PX_OK;
}

static px_err parse_gateways(tctx *c, const tnode *n, uint32_t src, px_topo_can_bus *b)
{
    px_err err = pxt_check_seq(c, n, "gateways", PX_TOPO_MAX_GATEWAYS);
    if (err || pxt_is_null(n) || n->n == 0)
        return err;
    b->gateways = px_tarena_array(c->t->arena, n->n, sizeof(*b->gateways));
    if (!b->gateways)
        return pxt_nomem(c);
    for (uint32_t i = 0; i < n->n; i++) {
        if ((err = parse_gateway(c, n->kids[i], src, &b->gateways[i])))
            return err;
        b->n_gateways = i + 1;
    }
    return PX_OK;
}

/* ---- host CAN interfaces (real hardware as bus members) ---- */

/* What the kernel takes as a name (dev_valid_name): 1..15 bytes, no '/',
 * ':' or white space, not "." or "..". */
static bool ifname_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= PX_TOPO_IFNAME_MAX || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    for (; *s; s++)
        if (*s == '/' || *s == ':' || *s <= ' ' || *s == 0x7f)
            return false;
    return true;
}

/* One {host, interface} item of a net's list (a bus's host_interfaces, a
 * segment's taps); prev[0..n_prev) are the items before it. */
static px_err parse_hostif(tctx *c, const tnode *item, const px_topo_hostif *prev, uint32_t n_prev,
                           const char *net, const char *example, px_topo_hostif *hi)
{
    px_err err = pxt_check_map(c, item, "a host interface", hostif_keys);
    if (err)
        return err;
    if (item->type != TN_MAP)
        return pxt_fail(c, item, PX_E_CONFIG,
                        "empty host interface; expected {host: HOST, interface: IFNAME}");
    hi->mark = pxt_mark(item);
    tnode *h = pxt_map_get(item, "host"), *i = pxt_map_get(item, "interface");
    if (!h)
        return pxt_fail(c, item, PX_E_CONFIG,
                        "host interface has no host; expected host: NAME of a host under hosts");
    if (!i)
        return pxt_fail(c, item, PX_E_CONFIG,
                        "host interface has no interface; expected interface: IFNAME on that "
                        "host (like %s)",
                        example);
    if ((err = pxt_resolve_host(c, h, "host", &hi->host)))
        return err;
    char *s;
    if ((err = pxt_get_str(c, i, "interface", &s)))
        return err;
    if (!ifname_valid(s))
        return pxt_fail(c, i, PX_E_CONFIG,
                        "invalid interface \"%.64s\"; expected a Linux interface name of 1 to %u "
                        "characters without '/', ':' or spaces (like %s)",
                        s, PX_TOPO_IFNAME_MAX - 1, example);
    snprintf(hi->ifname, sizeof(hi->ifname), "%s", s);
    for (uint32_t k = 0; k < n_prev; k++)
        if (prev[k].host == hi->host && strcmp(prev[k].ifname, s) == 0)
            return pxt_fail(c, item, PX_E_CONFIG,
                            "interface %s of host \"%s\" is already on %s \"%s\" (at %u:%u); "
                            "expected each host interface once",
                            s, c->t->hosts[hi->host].name,
                            strcmp(example, "can0") ? "segment" : "bus", net, prev[k].mark.line,
                            prev[k].mark.col);
    return PX_OK;
}

static px_err parse_host_ifs(tctx *c, const tnode *n, const char *key, const char *net,
                             const char *example, px_topo_hostif **out, uint32_t *n_out)
{
    px_err err = pxt_check_seq(c, n, key, PX_TOPO_MAX_HOST_IFS);
    if (err || pxt_is_null(n) || n->n == 0)
        return err;
    px_topo_hostif *a = px_tarena_array(c->t->arena, n->n, sizeof(*a));
    if (!a)
        return pxt_nomem(c);
    *out = a;
    for (uint32_t i = 0; i < n->n; i++) {
        if ((err = parse_hostif(c, n->kids[i], a, i, net, example, &a[i])))
            return err;
        *n_out = i + 1;
    }
    return PX_OK;
}

/* ---- per-type details ---- */

static px_err parse_can_bus(tctx *c, const tnode *v, uint32_t idx, const char *what)
{
    px_topo_can_bus *b = &c->t->can_buses[idx];
    px_err err = pxt_check_map(c, v, what, can_bus_keys);
    if (err)
        return err;
    tnode *n, *dk = NULL;
    b->bitrate = CAN_RATE_DEF;
    if ((n = pxt_map_get(v, "bitrate")) &&
        (err = pxt_get_bitrate(c, n, "bitrate", CAN_RATE_MIN, CAN_RATE_MAX, &b->bitrate)))
        return err;
    if ((n = pxt_map_get(v, "fd")) && (err = pxt_get_bool(c, n, "fd", &b->fd)))
        return err;
    unsigned e;
    if ((n = pxt_map_get(v, "mode"))) {
        if ((err = pxt_get_enum(c, n, "mode", can_modes, &e)))
            return err;
        b->mode = (px_topo_can_mode)e;
    }
    if ((n = pxt_map_get_key(v, "data_bitrate", &dk))) {
        if (!b->fd)
            return pxt_fail(c, dk, PX_E_CONFIG,
                            "data_bitrate on a classic CAN bus; expected fd: true alongside it");
        if ((err = pxt_get_bitrate(c, n, "data_bitrate", CAN_RATE_MIN, CAN_DATA_MAX,
                                   &b->data_bitrate)))
            return err;
        if (b->data_bitrate < b->bitrate)
            return pxt_fail(c, n, PX_E_CONFIG,
                            "data_bitrate %s is below the bitrate; expected at least %" PRIu64
                            " bit/s",
                            n->str, b->bitrate);
    } else if (b->fd) {
        b->data_bitrate = CAN_DATA_DEF > b->bitrate ? CAN_DATA_DEF : b->bitrate;
    }
    if ((n = pxt_map_get(v, "impair")) &&
        (err = pxt_parse_impair(c, n, "a CAN bus impairment", false, &b->impair)))
        return err;
    if ((n = pxt_map_get(v, "gateways")) && (err = parse_gateways(c, n, idx, b)))
        return err;
    if ((n = pxt_map_get(v, "host_interfaces")) &&
        (err = parse_host_ifs(c, n, "host_interfaces", b->name, "can0", &b->host_ifs,
                              &b->n_host_ifs)))
        return err;
    return PX_OK;
}

static px_err parse_subnet(tctx *c, const tnode *n, px_topo_nat *nat)
{
    static const char expect[] = "an IPv4 network like 10.0.2.0/24 (prefix 8..30)";
    px_err err = PX_OK;
    char *s;
    if ((err = pxt_get_str(c, n, "subnet", &s)))
        return err;
    uint32_t addr = 0, oct = 0, parts = 0, digits = 0, prefix = 0;
    const char *p = s;
    for (; *p && *p != '/'; p++) {
        if (*p >= '0' && *p <= '9' && digits < 3) {
            oct = oct * 10 + (uint32_t)(*p - '0');
            digits++;
        } else if (*p == '.' && digits && parts < 3) {
            if (oct > 255)
                break;
            addr = addr << 8 | oct;
            oct = digits = 0;
            parts++;
        } else {
            break;
        }
    }
    bool ok = *p == '/' && parts == 3 && digits && oct <= 255;
    addr = addr << 8 | oct;
    digits = 0;
    for (p += ok; ok && *p; p++) {
        ok = *p >= '0' && *p <= '9' && ++digits <= 2;
        prefix = prefix * 10 + (uint32_t)(*p - '0');
    }
    if (!ok || !digits || prefix < 8 || prefix > 30)
        return pxt_fail(c, n, PX_E_CONFIG, "invalid subnet \"%.64s\"; expected %s", n->str, expect);
    if (addr & (0xffffffffu >> prefix))
        return pxt_fail(c, n, PX_E_CONFIG,
                        "subnet %.64s has host bits set; expected the network address (%u.%u.%u.%u"
                        "/%u)",
                        n->str, (addr >> 24) & 255, (addr >> 16) & 255, (addr >> 8) & 255,
                        addr & 255 & ~(0xffffffffu >> prefix), prefix);
    nat->subnet = addr;
    nat->prefix = (uint8_t)prefix;
    return err;
}

static const px_topo_forward *find_forward(const px_topo *t, uint32_t upto, px_topo_proto proto,
                                           uint16_t listen)
{
    for (uint32_t s = 0; s <= upto && s < t->n_eth_segments; s++) {
        const px_topo_nat *nat = &t->eth_segments[s].nat;
        for (uint32_t i = 0; i < nat->n_forwards; i++)
            if (nat->forwards[i].proto == proto && nat->forwards[i].listen == listen)
                return &nat->forwards[i];
    }
    return NULL;
}

static px_err parse_forward(tctx *c, const tnode *f, uint32_t seg, px_topo_forward *fw)
{
    px_err err = pxt_check_map(c, f, "a port forward", fwd_keys);
    if (err)
        return err;
    fw->mark = pxt_mark(f);
    if (f->type != TN_MAP)
        return pxt_fail(c, f, PX_E_CONFIG,
                        "empty port forward; expected {proto, listen, guest, port}");
    tnode *listen = pxt_map_get(f, "listen"), *guest = pxt_map_get(f, "guest");
    tnode *port = pxt_map_get(f, "port"), *proto = pxt_map_get(f, "proto");
    if (!listen || !guest || !port)
        return pxt_fail(c, f, PX_E_CONFIG, "port forward has no %s; expected %s",
                        !listen  ? "listen"
                        : !guest ? "guest"
                                 : "port",
                        !listen  ? "listen: PORT (on the host running the NAT)"
                        : !guest ? "guest: NAME"
                                 : "port: PORT (in the guest)");
    unsigned e = 0;
    uint64_t u;
    if (proto && (err = pxt_get_enum(c, proto, "proto", protos, &e)))
        return err;
    fw->proto = (px_topo_proto)e;
    if ((err = pxt_get_uint(c, listen, "listen", 1, 65535, &u)))
        return err;
    fw->listen = (uint16_t)u;
    if ((err = pxt_resolve_guest(c, guest, "guest", &fw->guest)))
        return err;
    if ((err = pxt_get_uint(c, port, "port", 1, 65535, &u)))
        return err;
    fw->port = (uint16_t)u;
    uint32_t bit = (uint32_t)fw->proto * 65536u + fw->listen;
    if (c->fwd_used[bit / 8] & (1u << (bit % 8))) {
        const px_topo_forward *first = find_forward(c->t, seg, fw->proto, fw->listen);
        return pxt_fail(c, listen, PX_E_CONFIG,
                        "%s port %u is forwarded twice (first at %u:%u); expected each listen "
                        "port once across all NAT uplinks",
                        protos[fw->proto], fw->listen, first ? first->mark.line : 0,
                        first ? first->mark.col : 0);
    }
    c->fwd_used[bit / 8] |= (uint8_t)(1u << (bit % 8));
    return PX_OK;
}

static px_err parse_nat(tctx *c, const tnode *n, uint32_t seg, px_topo_nat *nat)
{
    px_err err;
    nat->subnet = 0x0a000200u; /* 10.0.2.0/24, what QEMU's user networking uses */
    nat->prefix = 24;
    if (n->type == TN_SCALAR && !pxt_is_null(n))
        return pxt_get_bool(c, n, "nat", &nat->enabled);
    if ((err = pxt_check_map(c, n, "nat", nat_keys)))
        return err;
    nat->enabled = true;
    tnode *v;
    if ((v = pxt_map_get(n, "subnet")) && (err = parse_subnet(c, v, nat)))
        return err;
    if (!(v = pxt_map_get(n, "forwards")))
        return PX_OK;
    if ((err = pxt_check_seq(c, v, "forwards", PX_TOPO_MAX_FORWARDS)) || pxt_is_null(v))
        return err;
    nat->forwards = px_tarena_array(c->t->arena, v->n, sizeof(*nat->forwards));
    if (!nat->forwards && v->n)
        return pxt_nomem(c);
    for (uint32_t i = 0; i < v->n; i++) {
        if ((err = parse_forward(c, v->kids[i], seg, &nat->forwards[i])))
            return err;
        nat->n_forwards++; /* counted as parsed, so find_forward sees only real ones */
    }
    return PX_OK;
}

int pxt_u16_cmp(const void *a, const void *b)
{
    return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

static px_err parse_vlans(tctx *c, const tnode *n, px_topo_eth_segment *s)
{
    px_err err = pxt_check_seq(c, n, "vlans", PX_TOPO_MAX_VLANS);
    if (err || pxt_is_null(n))
        return err;
    s->vlans = px_tarena_array(c->t->arena, n->n, sizeof(*s->vlans));
    if (!s->vlans && n->n)
        return pxt_nomem(c);
    uint8_t seen[4096 / 8] = {0};
    for (uint32_t i = 0; i < n->n; i++) {
        uint64_t u;
        if ((err = pxt_get_uint(c, n->kids[i], "vlan", 1, 4094, &u)))
            return err;
        if (seen[u / 8] & (1u << (u % 8))) {
            uint32_t j = 0;
            while (j < i && s->vlans[j] != u)
                j++;
            return pxt_fail(c, n->kids[i], PX_E_CONFIG,
                            "vlan %" PRIu64 " is listed twice (first at %u:%u); expected each "
                            "vlan once",
                            u, n->kids[j]->line, n->kids[j]->col);
        }
        seen[u / 8] |= (uint8_t)(1u << (u % 8));
        s->vlans[i] = (uint16_t)u;
    }
    s->n_vlans = n->n;
    qsort(s->vlans, s->n_vlans, sizeof(*s->vlans), pxt_u16_cmp);
    return PX_OK;
}

static px_err parse_eth(tctx *c, const tnode *v, uint32_t idx, const char *what)
{
    px_topo_eth_segment *s = &c->t->eth_segments[idx];
    px_err err = pxt_check_map(c, v, what, eth_keys);
    if (err)
        return err;
    tnode *n;
    unsigned e;
    uint64_t u;
    if ((n = pxt_map_get(v, "mode"))) {
        if ((err = pxt_get_enum(c, n, "mode", eth_modes, &e)))
            return err;
        s->mode = (px_topo_eth_mode)e;
    }
    if ((n = pxt_map_get(v, "vlans")) && (err = parse_vlans(c, n, s)))
        return err;
    s->mtu = 1500;
    if ((n = pxt_map_get(v, "mtu"))) {
        if ((err = pxt_get_uint(c, n, "mtu", ETH_MTU_MIN, ETH_MTU_MAX, &u)))
            return err;
        s->mtu = (uint32_t)u;
    }
    if ((n = pxt_map_get(v, "nat")) && (err = parse_nat(c, n, idx, &s->nat)))
        return err;
    if ((n = pxt_map_get(v, "impair")) &&
        (err = pxt_parse_impair(c, n, "a segment impairment", true, &s->impair)))
        return err;
    if ((n = pxt_map_get(v, "taps")) &&
        (err = parse_host_ifs(c, n, "taps", s->name, "tap0", &s->taps, &s->n_taps)))
        return err;
    return PX_OK;
}

/* `hosts: [NAME, ...]`: hosts that serve the region to host programs even
 * without a guest on it there. */
static px_err parse_shm_hosts(tctx *c, const tnode *n, px_topo_ivshmem *r)
{
    px_err err = pxt_check_seq(c, n, "hosts", PX_TOPO_MAX_HOST_IFS);
    if (err || pxt_is_null(n) || n->n == 0)
        return err;
    if (!(r->hosts = px_tarena_array(c->t->arena, n->n, sizeof(*r->hosts))))
        return pxt_nomem(c);
    for (uint32_t i = 0; i < n->n; i++) {
        if ((err = pxt_resolve_host(c, n->kids[i], "host", &r->hosts[i])))
            return err;
        for (uint32_t k = 0; k < i; k++)
            if (r->hosts[k] == r->hosts[i])
                return pxt_fail(c, n->kids[i], PX_E_CONFIG,
                                "host \"%s\" is listed twice in hosts; expected each host once",
                                c->t->hosts[r->hosts[i]].name);
        r->n_hosts = i + 1;
    }
    return PX_OK;
}

static px_err parse_shm(tctx *c, const tnode *v, px_topo_ivshmem *r, const char *what)
{
    px_err err = pxt_check_map(c, v, what, shm_net_keys);
    if (err)
        return err;
    tnode *n;
    uint64_t u;
    r->size = SHM_SIZE_DEF;
    if ((n = pxt_map_get(v, "size"))) {
        if ((err = pxt_get_size(c, n, "size", SHM_SIZE_MIN, SHM_SIZE_MAX, &r->size)))
            return err;
        if (r->size & (r->size - 1))
            return pxt_fail(c, n, PX_E_CONFIG,
                            "ivshmem size %s is not a power of two; expected a power of two "
                            "like 1M or 4M (QEMU aborts otherwise)",
                            n->str);
    }
    r->vectors = 1;
    if ((n = pxt_map_get(v, "vectors"))) {
        if ((err = pxt_get_uint(c, n, "vectors", 1, SHM_VECTORS_MAX, &u)))
            return err;
        r->vectors = (uint32_t)u;
    }
    if ((n = pxt_map_get(v, "sync")) &&
        (err = pxt_get_duration(c, n, "sync", SHM_SYNC_MIN, SHM_SYNC_MAX, &r->sync_ns)))
        return err;
    if ((n = pxt_map_get(v, "hosts")))
        return parse_shm_hosts(c, n, r);
    return PX_OK;
}

static px_err cxl_multiple(tctx *c, const tnode *n, const char *what, uint64_t v)
{
    if (v % CXL_GRAIN == 0)
        return PX_OK;
    return pxt_fail(c, n, PX_E_CONFIG,
                    "%s %s is not a multiple of 256M; expected a multiple of 256 MiB (QEMU 7.2 "
                    "CXL memory comes in 256 MiB steps)",
                    what, n->str);
}

static px_err parse_pool(tctx *c, const tnode *key, const tnode *v, px_topo_cxl_pool *p,
                         const char *what)
{
    px_err err = pxt_check_map(c, v, what, cxl_pool_keys);
    if (err)
        return err;
    tnode *sw = pxt_map_get(v, "switch"), *cap = pxt_map_get(v, "capacity");
    tnode *lds = pxt_map_get(v, "ld_size");
    if (!sw || !cap)
        return pxt_fail(c, key, PX_E_CONFIG, "%s has no %s; expected %s", what,
                        !sw ? "switch" : "capacity",
                        !sw ? "switch: NAME of a cxl_switch" : "capacity: SIZE like 4G");
    px_topo_ref r;
    if ((err = pxt_resolve_net(c, sw, PX_TOPO_OBJ_CXL_SWITCH, "switch", &r)))
        return err;
    p->sw = r.index;
    if ((err = pxt_get_size(c, cap, "capacity", CXL_GRAIN, CXL_POOL_MAX, &p->capacity)) ||
        (err = cxl_multiple(c, cap, "capacity", p->capacity)))
        return err;
    p->ld_size = CXL_GRAIN;
    if (lds && ((err = pxt_get_size(c, lds, "ld_size", CXL_GRAIN, CXL_POOL_MAX, &p->ld_size)) ||
                (err = cxl_multiple(c, lds, "ld_size", p->ld_size))))
        return err;
    if (p->capacity % p->ld_size)
        return pxt_fail(c, cap, PX_E_CONFIG,
                        "capacity %s is not a whole number of LDs of %s; expected a multiple "
                        "of ld_size",
                        cap->str, lds ? lds->str : "256M");
    if (p->capacity / p->ld_size > PX_TOPO_MAX_CXL_LDS)
        return pxt_fail(c, cap, PX_E_TOOBIG,
                        "capacity %s makes %" PRIu64 " LDs; expected at most %u (raise ld_size)",
                        cap->str, p->capacity / p->ld_size, PX_TOPO_MAX_CXL_LDS);
    p->n_lds = (uint32_t)(p->capacity / p->ld_size);
    /* How often hosts exchange their changes to an LD bound to several
     * vPPBs (docs/cxl.md, "Shared LDs"); as ivshmem's sync:. */
    p->sync_ns = PX_TOPO_CXL_SYNC_DEF_NS;
    tnode *sy = pxt_map_get(v, "sync");
    if (sy && (err = pxt_get_duration(c, sy, "sync", SHM_SYNC_MIN, SHM_SYNC_MAX, &p->sync_ns)))
        return err;
    return PX_OK;
}

px_err pxt_parse_net_details(tctx *c)
{
    px_topo *t = c->t;
    px_err err = PX_OK;
    /* Switches before pools: a pool may be written before its switch. */
    for (int pass = 0; pass < 2 && !err; pass++) {
        for (uint32_t i = 0; c->nets && i < c->nets->n && !err; i++) {
            tnode *key = c->nets->kids[2 * i], *v = c->nets->kids[2 * i + 1];
            px_topo_ref r = c->net_refs[i];
            if ((r.type == PX_TOPO_OBJ_CXL_POOL) != (pass == 1))
                continue;
            char what[PX_TOPO_NAME_MAX + 24];
            snprintf(what, sizeof(what), "%s \"%s\"", px_topo_obj_str(r.type), key->str);
            switch (r.type) {
            case PX_TOPO_OBJ_CAN_BUS:
                err = parse_can_bus(c, v, r.index, what);
                break;
            case PX_TOPO_OBJ_ETH_SEGMENT:
                err = parse_eth(c, v, r.index, what);
                break;
            case PX_TOPO_OBJ_IVSHMEM:
                err = parse_shm(c, v, &t->ivshmem[r.index], what);
                break;
            case PX_TOPO_OBJ_CXL_SWITCH: {
                px_topo_cxl_switch *s = &t->cxl_switches[r.index];
                tnode *n = pxt_map_get(v, "ports");
                uint64_t u = CXL_PORTS_DEF;
                err = pxt_check_map(c, v, what, cxl_switch_keys);
                if (!err && n)
                    err = pxt_get_uint(c, n, "ports", 1, PX_TOPO_MAX_CXL_PORTS, &u);
                s->ports = (uint32_t)u;
                break;
            }
            default:
                err = parse_pool(c, key, v, &t->cxl_pools[r.index], what);
                break;
            }
        }
    }
    return err;
}

/* ---- impairments from the command line (`plexus link set`) ---- */

px_err px_topo_impair_parse(const char *const *kv, uint32_t n_pairs, bool nic, px_topo_impair *out,
                            px_errmsg *em)
{
    enum { MAX_PAIRS = 16 };
    if (n_pairs > MAX_PAIRS)
        return px_errmsg_set(em, PX_E_CONFIG, "more than %u impairment settings", MAX_PAIRS);
    tnode nodes[2 * MAX_PAIRS], *kids[2 * MAX_PAIRS];
    memset(nodes, 0, sizeof(nodes));
    for (uint32_t i = 0; i < 2 * n_pairs; i++) {
        nodes[i].type = TN_SCALAR;
        nodes[i].plain = true;
        nodes[i].str = (char *)kv[i];
        nodes[i].len = (uint32_t)strlen(kv[i]);
        kids[i] = &nodes[i];
    }
    tnode map = {.type = TN_MAP, .n = n_pairs, .kids = kids};
    tctx c = {.file = "impairment", .em = em};
    return pxt_parse_impair(&c, &map, nic ? "a NIC impairment" : "a segment impairment", true, out);
}
