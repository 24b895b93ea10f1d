/* plexus-coordinator: the CXL switches of a lab (docs/cxl.md). The
 * coordinator holds each switch's Fabric Manager state (px_cxlsw) and
 * serves the FM API to the CLI: a TOOL {lab, net: SWITCH, args: "cxl" "fm"
 * TARGET HEX} carries one whole CCI request (TARGET "switch" for the
 * switch's own CCI, else a pool's name for its MLD), answered with the
 * whole CCI response in the reply's JSON. Every plan carries the lab's
 * bindings; a change of them re-sends the plans and is journaled, so that
 * a restarted coordinator serves the switches as they were.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord.h"
#include "fabric/core/log.h"
#include "fabric/cxl-switch/switch.h"
#include "fabric/core/text.h"

/* The guest on upstream port `vcs` of switch `sw` (topology indices), or
 * PX_TOPO_NONE. */
static uint32_t guest_on_port(const px_topo *t, uint32_t sw, uint32_t vcs)
{
    for (uint32_t g = 0; g < t->n_guests; g++)
        for (uint32_t i = 0; i < t->guests[g].n_cxls; i++)
            if (t->guests[g].cxls[i].sw == sw && t->guests[g].cxls[i].port == vcs)
                return g;
    return PX_TOPO_NONE;
}

/* The switch's pools in topology order: their topology indices. */
static uint32_t switch_pools(const px_topo *t, uint32_t sw, uint32_t *idx, uint32_t cap)
{
    uint32_t n = 0;
    for (uint32_t p = 0; p < t->n_cxl_pools; p++)
        if (t->cxl_pools[p].sw == sw && n < cap)
            idx[n++] = p;
    return n;
}

static px_err new_switch(const px_topo *t, uint32_t sw, px_cxlsw **out, px_errmsg *em)
{
    uint32_t pidx[PX_CXLSW_MAX_PHYS_PORTS];
    uint32_t np = switch_pools(t, sw, pidx, PX_CXLSW_MAX_PHYS_PORTS);
    px_cxlsw_pool_cfg pools[PX_CXLSW_MAX_PHYS_PORTS];
    uint32_t next_ld[PX_CXLSW_MAX_PHYS_PORTS] = {0};
    for (uint32_t k = 0; k < np; k++) {
        const px_topo_cxl_pool *p = &t->cxl_pools[pidx[k]];
        pools[k] = (px_cxlsw_pool_cfg){
            .name = p->name, .n_lds = (uint32_t)(p->capacity / p->ld_size), .ld_size = p->ld_size};
    }
    /* The LDs the topology binds at start: each attachment's `lds` LDs of
     * its pool, lowest free first, on vPPBs 0.. in guest order. */
    px_cxlsw_binding *b = calloc((size_t)t->n_guests * 32 * PX_CXLSW_VPPBS + 1, sizeof(*b));
    if (!b)
        return px_errmsg_set(em, PX_E_NOMEM, "out of memory");
    uint32_t nb = 0;
    px_err err = PX_OK;
    for (uint32_t g = 0; g < t->n_guests && !err; g++)
        for (uint32_t i = 0; i < t->guests[g].n_cxls && !err; i++) {
            const px_topo_cxlif *a = &t->guests[g].cxls[i];
            if (a->sw != sw || a->pool == PX_TOPO_NONE)
                continue;
            uint32_t k = 0;
            while (k < np && pidx[k] != a->pool)
                k++;
            if (a->lds > PX_CXLSW_VPPBS) {
                err = px_errmsg_set(em, PX_E_CONFIG,
                                    "guest %s: lds: %u on switch %s; a switch port has %u vPPBs, "
                                    "so at most %u LDs per attachment",
                                    t->guests[g].name, a->lds, t->cxl_switches[sw].name,
                                    PX_CXLSW_VPPBS, PX_CXLSW_VPPBS);
                break;
            }
            for (uint32_t v = 0; v < a->lds && k < np; v++)
                b[nb++] =
                    (px_cxlsw_binding){.vcs = a->port, .vppb = v, .pool = k, .ld = next_ld[k]++};
        }
    px_cxlsw_cfg cfg = {.name = t->cxl_switches[sw].name,
                        .n_ports = t->cxl_switches[sw].ports,
                        .vppbs = PX_CXLSW_VPPBS,
                        .pools = pools,
                        .n_pools = np,
                        .bindings = b,
                        .n_bindings = nb};
    if (!err)
        err = px_cxlsw_new(&cfg, out, em);
    free(b);
    return err;
}

px_err px_lab_cxl_init(px_lab *lab, px_errmsg *em)
{
    const px_topo *t = lab->topo;
    if (lab->cxl || !t->n_cxl_switches)
        return PX_OK;
    lab->cxl = calloc(t->n_cxl_switches, sizeof(*lab->cxl));
    if (!lab->cxl)
        return px_errmsg_set(em, PX_E_NOMEM, "out of memory");
    for (uint32_t s = 0; s < t->n_cxl_switches; s++) {
        px_err err = new_switch(t, s, &lab->cxl[s], em);
        if (err) {
            px_errmsg_prefix(em, "CXL switch %s", t->cxl_switches[s].name);
            px_lab_cxl_fini(lab);
            return err;
        }
    }
    return PX_OK;
}

void px_lab_cxl_fini(px_lab *lab)
{
    if (!lab->cxl)
        return;
    for (uint32_t s = 0; s < lab->topo->n_cxl_switches; s++)
        px_cxlsw_free(lab->cxl[s]);
    free(lab->cxl);
    lab->cxl = NULL;
}

void px_lab_cxl_plan(const px_lab *lab, px_msg_plan *p)
{
    if (!lab->cxl)
        return;
    for (uint32_t s = 0; s < lab->topo->n_cxl_switches; s++) {
        px_cxlsw_binding b[256];
        size_t n = px_cxlsw_bindings(lab->cxl[s], b, 256);
        for (size_t i = 0; i < n && i < 256 && p->n_cxl < PX_WIRE_MAX_ROWS; i++) {
            px_cxlsw_pool_info pi;
            if (px_cxlsw_pool(lab->cxl[s], b[i].pool, &pi) != PX_OK)
                continue;
            p->cxl[p->n_cxl++] =
                (px_plan_cxl){.sw = px_str_c(lab->topo->cxl_switches[s].name),
                              .vcs = b[i].vcs,
                              .vppb = b[i].vppb,
                              .pool = px_str_c(pi.name),
                              .ld = b[i].ld,
                              .size = px_cxlsw_ld_bytes(lab->cxl[s], b[i].pool, b[i].ld)};
        }
    }
}

/* The journal's view of one switch: {"bindings": [[vcs, vppb, pool, ld],
 * ...], "allocs": [[[range1, range2] per LD] per pool]}. */
static json_t *switch_to_json(const px_cxlsw *sw)
{
    json_t *bind = json_array(), *allocs = json_array();
    px_cxlsw_binding b[256];
    size_t n = px_cxlsw_bindings(sw, b, 256);
    for (size_t i = 0; i < n && i < 256; i++)
        json_array_append_new(bind, json_pack("[i, i, i, i]", (int)b[i].vcs, (int)b[i].vppb,
                                              (int)b[i].pool, (int)b[i].ld));
    for (uint32_t p = 0; p < px_cxlsw_n_pools(sw); p++) {
        px_cxlsw_pool_info pi;
        json_t *lds = json_array();
        px_cxlsw_pool(sw, p, &pi);
        for (uint32_t ld = 0; ld < pi.n_lds; ld++) {
            px_fm_ld_alloc a = {0};
            px_cxlsw_ld_alloc_get(sw, p, ld, &a);
            json_array_append_new(lds,
                                  json_pack("[I, I]", (json_int_t)a.range1, (json_int_t)a.range2));
        }
        json_array_append_new(allocs, lds);
    }
    return json_pack("{s:o, s:o}", "bindings", bind, "allocs", allocs);
}

json_t *px_lab_cxl_to_json(const px_lab *lab)
{
    if (!lab->cxl)
        return json_null();
    json_t *a = json_array();
    for (uint32_t s = 0; s < lab->topo->n_cxl_switches; s++)
        json_array_append_new(a, switch_to_json(lab->cxl[s]));
    return a;
}

/* Put switch sw in the journaled state j: every binding undone, the
 * allocations set, the journal's bindings made; each step as the FM API
 * would do it, so a journal that does not fit the topology is refused. */
static px_err switch_from_json(px_cxlsw *sw, json_t *j, px_errmsg *em)
{
    json_t *bind = json_object_get(j, "bindings"), *allocs = json_object_get(j, "allocs");
    if (!json_is_array(bind) || !json_is_array(allocs) ||
        json_array_size(allocs) != px_cxlsw_n_pools(sw))
        return px_errmsg_set(em, PX_E_CONFIG, "bindings or allocs missing, or pools differ");
    px_cxlsw_binding b[256];
    size_t n = px_cxlsw_bindings(sw, b, 256);
    for (size_t i = 0; i < n && i < 256; i++)
        px_cxlsw_unbind(sw, b[i].vcs, b[i].vppb, NULL);
    uint16_t vs = 0;
    size_t i;
    json_t *v;
    json_array_foreach(allocs, i, v)
    {
        px_fm_ld_alloc a[PX_CXLSW_MAX_LDS];
        size_t ld, nld = json_array_size(v);
        json_t *e;
        if (nld == 0 || nld > PX_CXLSW_MAX_LDS)
            return px_errmsg_set(em, PX_E_CONFIG, "pool %zu: bad allocation list", i);
        json_array_foreach(v, ld, e)
        {
            json_int_t r1 = -1, r2 = -1;
            json_unpack(e, "[I, I]", &r1, &r2);
            if (r1 < 0 || r2 < 0)
                return px_errmsg_set(em, PX_E_CONFIG, "pool %zu LD %zu: bad allocation", i, ld);
            a[ld] = (px_fm_ld_alloc){.range1 = (uint64_t)r1, .range2 = (uint64_t)r2};
        }
        if (px_cxlsw_ld_alloc_set(sw, (uint32_t)i, 0, (uint32_t)nld, a, &vs) != PX_CCI_SUCCESS)
            return px_errmsg_set(em, PX_E_CONFIG, "pool %zu: allocations refused: %s", i,
                                 px_cxlsw_vs_name(vs));
    }
    json_array_foreach(bind, i, v)
    {
        int vcs = -1, vppb = -1, pool = -1, ld = -1;
        if (json_unpack(v, "[i, i, i, i]", &vcs, &vppb, &pool, &ld) != 0 || vcs < 0 || vppb < 0 ||
            pool < 0 || ld < 0)
            return px_errmsg_set(em, PX_E_CONFIG, "binding %zu: not [vcs, vppb, pool, ld]", i);
        if (px_cxlsw_bind(sw, (uint32_t)vcs, (uint32_t)vppb, (uint32_t)pool, (uint32_t)ld, &vs) !=
            PX_CCI_SUCCESS)
            return px_errmsg_set(em, PX_E_CONFIG, "binding %zu (VCS %d vPPB %d): refused: %s", i,
                                 vcs, vppb, px_cxlsw_vs_name(vs));
    }
    return PX_OK;
}

px_err px_lab_cxl_from_json(px_lab *lab, json_t *j, px_errmsg *em)
{
    if (!j || json_is_null(j))
        return PX_OK; /* no switch state yet: the topology's start bindings */
    px_err err = px_lab_cxl_init(lab, em);
    if (err)
        return err;
    if (!json_is_array(j) || json_array_size(j) != lab->topo->n_cxl_switches)
        return px_errmsg_set(em, PX_E_CONFIG, "lab %s: cxl: one entry per CXL switch expected",
                             lab->name);
    for (uint32_t s = 0; s < lab->topo->n_cxl_switches; s++) {
        err = switch_from_json(lab->cxl[s], json_array_get(j, s), em);
        if (err) {
            px_errmsg_prefix(em, "lab %s: CXL switch %s", lab->name,
                             lab->topo->cxl_switches[s].name);
            return err;
        }
    }
    return PX_OK;
}

/* Unbinding a vPPB of a guest that runs would pull memory from under it
 * (QEMU 7.2 cannot hot-remove a cxl-type3): the guest must be stopped, so
 * that its node has written the LD's data back. A bind is fine: it takes
 * effect when the guest next starts. */
static const char *unbind_refused(const px_lab *lab, uint32_t sw, const uint8_t *req, size_t len)
{
    px_cci_hdr h;
    if (px_cci_decode(req, len, &h, NULL) != PX_OK || h.opcode != PX_FM_UNBIND_VPPB ||
        h.payload_len < 2)
        return NULL;
    uint32_t vcs = req[PX_CCI_HDR_LEN];
    uint32_t g = guest_on_port(lab->topo, sw, vcs);
    if (g == PX_TOPO_NONE)
        return NULL;
    const char *st = lab->guests[g].state;
    if (strcmp(st, "running") == 0 || strcmp(st, "starting") == 0 || strcmp(st, "stopping") == 0)
        return lab->topo->guests[g].name;
    return NULL;
}

/* The FM API command of a TOOL; the answer in text, json, *code. */
static void fm_command(px_coord *c, px_lab *lab, const px_msg_tool *t, char *text, size_t tcap,
                       char *json, size_t jcap, int32_t *code)
{
    char sub[16] = "", target[PX_NAME] = "", net[PX_NAME];
    px_str_copy(net, sizeof(net), t->net);
    if (t->n_args > 1)
        px_str_copy(sub, sizeof(sub), t->args[1]);
    if (t->n_args > 2)
        px_str_copy(target, sizeof(target), t->args[2]);
    *code = PX_OK;
    px_topo_ref ref;
    px_errmsg em = {{0}};
    if (!px_topo_find_net(lab->topo, net, &ref) || ref.type != PX_TOPO_OBJ_CXL_SWITCH) {
        *code = PX_E_NOTFOUND;
        snprintf(text, tcap, "lab %s has no CXL switch %s (hint: plexus cxl switches)", lab->name,
                 net);
        return;
    }
    if (px_lab_cxl_init(lab, &em) != PX_OK) {
        *code = PX_E_CONFIG;
        snprintf(text, tcap, "%s", em.text);
        return;
    }
    px_cxlsw *sw = lab->cxl[ref.index];
    uint8_t req[4096], rsp[PX_CXLSW_MSG_MAX];
    size_t rlen = 0, qlen = 0;
    uint16_t port = PX_CXLSW_PORT_SWITCH;
    if (strcmp(sub, "fm") != 0 || t->n_args != 4 ||
        !px_hex_decode(t->args[3].ptr, t->args[3].len, req, sizeof(req), &qlen)) {
        *code = PX_E_PROTO;
        snprintf(text, tcap, "cxl: expected \"fm\" TARGET HEX (a CCI request) for switch %s", net);
        return;
    }
    if (strcmp(target, "switch") != 0) {
        uint32_t pool;
        px_cxlsw_pool_info pi;
        if (px_cxlsw_pool_find(sw, target, &pool) != PX_OK ||
            px_cxlsw_pool(sw, pool, &pi) != PX_OK) {
            *code = PX_E_NOTFOUND;
            snprintf(text, tcap, "switch %s has no pool %s (hint: plexus cxl switches)", net,
                     target);
            return;
        }
        port = (uint16_t)pi.port;
    }
    const char *busy =
        port == PX_CXLSW_PORT_SWITCH ? unbind_refused(lab, ref.index, req, qlen) : NULL;
    if (busy) {
        px_cci_hdr h, r;
        px_cci_decode(req, qlen, &h, NULL);
        r = (px_cci_hdr){
            .category = PX_CCI_CAT_RESPONSE, .tag = h.tag, .opcode = h.opcode, .rc = PX_CCI_BUSY};
        px_cci_hdr_encode(&r, rsp, sizeof(rsp));
        rlen = PX_CCI_HDR_LEN;
        snprintf(text, tcap,
                 "guest %s runs on that port: stop it first (plexus can only unbind a stopped "
                 "guest's LDs; its node writes their data back as it stops)",
                 busy);
    } else {
        uint64_t gen = px_cxlsw_generation(sw);
        px_cxlsw_execute(sw, req, qlen, port, rsp, sizeof(rsp), &rlen);
        if (px_cxlsw_generation(sw) != gen) {
            /* Bindings or allocations changed: every node learns the new
             * bindings with a new epoch; guests keep running. */
            lab->epoch++;
            PX_INFO("coord", "CXL bindings changed", "lab=%s switch=%s epoch=%llu", lab->name, net,
                    (unsigned long long)lab->epoch);
            for (uint32_t h = 0; h < lab->plan.n_hosts; h++)
                px_lab_send_plan(c, lab, h);
            px_journal_save(c);
        }
    }
    char hex[2 * sizeof(rsp) + 1];
    px_hex_encode(rsp, rlen, hex, sizeof(hex));
    if ((size_t)snprintf(json, jcap, "{\"switch\":\"%s\",\"rsp\":\"%s\"}", net, hex) >= jcap) {
        json[0] = '\0';
        *code = PX_E_TOOBIG;
        snprintf(text, tcap,
                 "the response to that request does not fit one reply; ask for fewer "
                 "items");
    }
}

/* `cxl list`: the lab's switches, their pools (name, physical port, LDs)
 * and which guest is on which upstream port, for the CLI to name things. */
static void list_switches(px_lab *lab, char *json, size_t jcap, char *text, size_t tcap,
                          int32_t *code)
{
    px_errmsg em = {{0}};
    if (px_lab_cxl_init(lab, &em) != PX_OK) {
        *code = PX_E_CONFIG;
        snprintf(text, tcap, "%s", em.text);
        return;
    }
    const px_topo *t = lab->topo;
    size_t off = 0;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        if (off < jcap)                                                                            \
            off += (size_t)snprintf(json + off, jcap - off, __VA_ARGS__);                          \
    } while (0)
    PUT("{\"switches\":[");
    for (uint32_t s = 0; s < t->n_cxl_switches; s++) {
        px_cxlsw *sw = lab->cxl[s];
        PUT("%s{\"name\":\"%s\",\"ports\":%u,\"vppbs\":%u,\"pools\":[", s ? "," : "",
            t->cxl_switches[s].name, px_cxlsw_n_vcs(sw), px_cxlsw_vppbs(sw));
        for (uint32_t p = 0; p < px_cxlsw_n_pools(sw); p++) {
            px_cxlsw_pool_info pi;
            if (px_cxlsw_pool(sw, p, &pi) == PX_OK)
                PUT("%s{\"name\":\"%s\",\"port\":%u,\"lds\":%u,\"ld_size\":%llu}", p ? "," : "",
                    pi.name, pi.port, pi.n_lds, (unsigned long long)pi.ld_size);
        }
        PUT("],\"guests\":[");
        bool first = true;
        for (uint32_t v = 0; v < t->cxl_switches[s].ports; v++) {
            uint32_t g = guest_on_port(t, s, v);
            if (g == PX_TOPO_NONE)
                continue;
            PUT("%s{\"vcs\":%u,\"guest\":\"%s\",\"state\":\"%s\"}", first ? "" : ",", v,
                t->guests[g].name, lab->guests[g].state);
            first = false;
        }
        PUT("]}");
    }
    PUT("]}");
#undef PUT
    if (off >= jcap) {
        *code = PX_E_TOOBIG;
        json[0] = '\0';
        snprintf(text, tcap, "lab %s: the CXL switch list does not fit one reply", lab->name);
    }
}

bool px_cxl_tool(px_coord *c, const px_peer *from, const px_msg *m)
{
    const px_msg_tool *t = &m->body.tool;
    char what[16] = "", name[PX_NAME];
    if (t->n_args)
        px_str_copy(what, sizeof(what), t->args[0]);
    if (strcmp(what, "cxl") != 0)
        return false;
    static char text[1024], json[PX_WIRE_MAX_STR];
    int32_t code = PX_OK;
    text[0] = json[0] = '\0';
    px_str_copy(name, sizeof(name), t->lab);
    px_lab *lab = px_lab_find(c, name);
    char sub[16] = "";
    if (t->n_args > 1)
        px_str_copy(sub, sizeof(sub), t->args[1]);
    if (!lab) {
        code = PX_E_NOTFOUND;
        snprintf(text, sizeof(text), "no lab named %s; 'plexus status' lists them", name);
    } else if (strcmp(sub, "list") == 0) {
        list_switches(lab, json, sizeof(json), text, sizeof(text), &code);
    } else {
        fm_command(c, lab, t, text, sizeof(text), json, sizeof(json), &code);
    }
    px_msg *r = c->scratch;
    memset(r, 0, sizeof(r->env) + sizeof(r->body.tool_reply));
    r->env.type = PX_MSG_TOOL_REPLY;
    r->env.seq = m->env.seq;
    r->body.tool_reply =
        (px_msg_tool_reply){.code = code, .message = px_str_c(text), .json = px_str_c(json)};
    px_coord_send(c, from, r);
    return true;
}
