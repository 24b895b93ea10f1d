/* plexus — the Ethernet segment service's TOOL commands: link show | set |
 * reset and capture. See service.h and service_int.h.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fabric/core/log.h"
#include "fabric/core/text.h"
#include "fabric/eth-hub/service_int.h"

/* ---- tools: link show | set | reset, capture open ---- */

static void impair_text(const px_impair_cfg *c, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
#define ADD(...) n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, __VA_ARGS__)
    if (c->delay_ns)
        ADD(" delay %.3fms", (double)c->delay_ns / 1e6);
    if (c->jitter_ns)
        ADD(" jitter %.3fms", (double)c->jitter_ns / 1e6);
    if (c->loss_ppm)
        ADD(" loss %.4g%%", c->loss_ppm / 1e4);
    if (c->loss_burst > 1)
        ADD(" loss-burst %u", c->loss_burst);
    if (c->duplicate_ppm)
        ADD(" duplicate %.4g%%", c->duplicate_ppm / 1e4);
    if (c->reorder_ppm)
        ADD(" reorder %.4g%%", c->reorder_ppm / 1e4);
    if (c->corrupt_ppm)
        ADD(" corrupt %.4g%%", c->corrupt_ppm / 1e4);
    if (c->rate_bps)
        ADD(" rate %" PRIu64 "bit", c->rate_bps);
#undef ADD
    if (!out[0])
        snprintf(out, cap, " none");
}

static void impair_json(const px_impair_cfg *c, char *out, size_t cap)
{
    snprintf(out, cap,
             "{\"delay_ns\":%" PRIu64 ",\"jitter_ns\":%" PRIu64 ",\"loss_ppm\":%u,"
             "\"loss_burst\":%u,\"duplicate_ppm\":%u,\"reorder_ppm\":%u,\"corrupt_ppm\":%u,"
             "\"rate_bps\":%" PRIu64 "}",
             c->delay_ns, c->jitter_ns, c->loss_ppm, c->loss_burst, c->duplicate_ppm,
             c->reorder_ppm, c->corrupt_ppm, c->rate_bps);
}

static void tb_add(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void tb_add(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    if (*len >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len = *len + (size_t)n < cap ? *len + (size_t)n : cap - 1;
}

static bool impair_same(const px_impair_cfg *a, const px_impair_cfg *b)
{
    return a->delay_ns == b->delay_ns && a->jitter_ns == b->jitter_ns &&
           a->loss_ppm == b->loss_ppm && a->loss_burst == b->loss_burst &&
           a->duplicate_ppm == b->duplicate_ppm && a->reorder_ppm == b->reorder_ppm &&
           a->corrupt_ppm == b->corrupt_ppm && a->rate_bps == b->rate_bps && a->limit == b->limit;
}

static void port_show(const eport *p, uint64_t ms, char *txt, size_t tcap, size_t *tl, char *js,
                      size_t jcap, size_t *jl, bool first)
{
    px_netport_stats st = {0};
    if (p->np)
        px_netport_stats_get(p->np, &st);
    else if (p->uplink && p->seg->nat) {
        /* The port's view: rx from the uplink, tx to it. */
        px_slirp_stats ss;
        px_slirp_stats_get(p->seg->nat, &ss);
        st = (px_netport_stats){.rx = ss.tx,
                                .tx = ss.rx + ss.rx_ignored + ss.rx_fragments,
                                .tx_dropped = ss.rx_fragments,
                                .connected = true};
    }
    const char *state = p->cut_until_ms && ms < p->cut_until_ms ? "cut-off"
                        : st.connected                          ? "up"
                                                                : "down";
    char eg[200], in[200], ejs[300], ijs[300];
    impair_text(&p->eg_cfg, eg, sizeof(eg));
    impair_text(&p->in_cfg, in, sizeof(in));
    /* "(set)": this direction differs from the topology's (link set). */
    bool eg_set = p->live && !impair_same(&p->eg_cfg, &p->cfg.egress);
    bool in_set = p->live && !impair_same(&p->in_cfg, &p->cfg.ingress);
    impair_json(&p->eg_cfg, ejs, sizeof(ejs));
    impair_json(&p->in_cfg, ijs, sizeof(ijs));
    px_impair_stats es = {0}, is = {0};
    if (p->eg)
        px_impair_stats_get(p->eg, &es);
    if (p->in)
        px_impair_stats_get(p->in, &is);
    char vl[16];
    snprintf(vl, sizeof(vl), p->cfg.vlan ? "%u" : "trunk", p->cfg.vlan);
    /* The port counts every cut-off (ours and its own, for bad stream
     * framing); the uplink has none of its own. */
    uint64_t cutoffs = p->np ? st.cutoffs : p->cutoffs;
    tb_add(txt, tcap, tl,
           "  %-20s %-7s vlan %-5s rx %" PRIu64 " tx %" PRIu64 " dropped %" PRIu64
           " oversize %" PRIu64 " runts %" PRIu64 " cutoffs %" PRIu64 "\n"
           "  %-20s egress:%s%s  ingress:%s%s\n",
           p->cfg.name, state, vl, st.rx, st.tx, st.tx_dropped + es.lost + is.lost, p->oversize,
           p->runts, cutoffs, "", eg, eg_set ? " (set)" : "", in, in_set ? " (set)" : "");
    if (state[0] == 'c')
        tb_add(txt, tcap, tl, "  %-20s cut off: %s\n", "", p->cut_why);
    tb_add(js, jcap, jl,
           "%s{\"port\":\"%s\",\"state\":\"%s\",\"vlan\":%u,\"rx\":%" PRIu64 ",\"tx\":%" PRIu64
           ",\"tx_dropped\":%" PRIu64 ",\"oversize\":%" PRIu64 ",\"runts\":%" PRIu64
           ",\"cutoffs\":%" PRIu64 ",\"malformed\":%" PRIu64 ",\"connects\":%" PRIu64
           ",\"egress\":%s,\"ingress\":%s,"
           "\"egress_lost\":%" PRIu64 ",\"ingress_lost\":%" PRIu64 ",\"live\":%s}",
           first ? "" : ",", p->cfg.name, state, p->cfg.vlan, st.rx, st.tx, st.tx_dropped,
           p->oversize, p->runts, cutoffs, st.malformed, st.connects, ejs, ijs,
           es.lost + es.overlimit, is.lost + is.overlimit, p->live ? "true" : "false");
}

static uint32_t captures_running(const eseg *g)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < g->n_caps; i++)
        n += g->caps[i].used;
    return n;
}

static void tool_show(eseg *g, const char *only, px_ethsvc_reply *out)
{
    px_ethsvc *s = g->svc;
    size_t tl = 0, jl = 0;
    uint64_t ms = esvc_now_ms(s);
    px_fdb_stats fs = {0};
    px_fdb_stats_get(g->fdb, &fs);
    if (!only) {
        tb_add(out->text, sizeof(out->text), &tl,
               "segment %s on %s (%s, mtu %u): frames %" PRIu64 " bytes %" PRIu64
               " flooded %" PRIu64 " to-remote %" PRIu64 " from-remote %" PRIu64 " macs %u\n",
               g->cfg.name, s->self, g->cfg.hub ? "hub" : "switch", g->cfg.mtu, g->frames, g->bytes,
               g->flooded, g->remote_unicast, g->from_remote, fs.entries);
        if (g->to_remote_dropped || g->remote_bad)
            tb_add(out->text, sizeof(out->text), &tl,
                   "  lost on the way to other members %" PRIu64 ", bad from them %" PRIu64 "\n",
                   g->to_remote_dropped, g->remote_bad);
    }
    tb_add(out->json, sizeof(out->json), &jl,
           "{\"node\":\"%s\",\"segment\":\"%s\",\"mode\":\"%s\",\"mtu\":%u,\"frames\":%" PRIu64
           ",\"bytes\":%" PRIu64 ",\"flooded\":%" PRIu64 ",\"local_unicast\":%" PRIu64
           ",\"remote_unicast\":%" PRIu64 ",\"from_remote\":%" PRIu64 ",\"remote_bad\":%" PRIu64
           ",\"remote_dropped\":%" PRIu64 ",\"pushbacks\":%" PRIu64 ",\"captures\":%u"
           ",\"vlan_drops\":%" PRIu64 ",\"oversize\":%" PRIu64 ",\"runts\":%" PRIu64
           ",\"macs\":%u,\"ports\":[",
           s->self, g->cfg.name, g->cfg.hub ? "hub" : "switch", g->cfg.mtu, g->frames, g->bytes,
           g->flooded, g->local_unicast, g->remote_unicast, g->from_remote, g->remote_bad,
           g->to_remote_dropped, g->pushbacks, captures_running(g), g->vlan_drops, g->oversize,
           g->runts, fs.entries);
    bool first = true;
    for (uint32_t i = 0; i < g->n_ports; i++) {
        if (only && strcmp(only, g->ports[i]->cfg.name) != 0)
            continue;
        port_show(g->ports[i], ms, out->text, sizeof(out->text), &tl, out->json, sizeof(out->json),
                  &jl, first);
        first = false;
    }
    tb_add(out->json, sizeof(out->json), &jl, "],\"down_drops\":%" PRIu64 ",\"faults\":[",
           g->down_drops);
    for (uint32_t i = 0; i < g->cfg.n_faults; i++) {
        const px_ethsvc_fault_cfg *f = &g->cfg.faults[i];
        if (only && strcmp(only, f->port) != 0)
            continue;
        tb_add(out->json, sizeof(out->json), &jl,
               "%s{\"name\":\"%s\",\"type\":\"%s\",\"port\":\"%s\",\"active\":%s}",
               jl && out->json[jl - 1] == '[' ? "" : ",", f->name, f->down ? "link_down" : "impair",
               f->port, g->fault_on[i] ? "true" : "false");
        if (g->fault_on[i])
            tb_add(out->text, sizeof(out->text), &tl, "  fault %s (%s%s%s) is active\n", f->name,
                   f->down ? "link_down" : "impair", f->port[0] ? " on " : "", f->port);
    }
    tb_add(out->json, sizeof(out->json), &jl, "]}");
    if (tl && out->text[tl - 1] == '\n')
        out->text[tl - 1] = '\0';
}

/* "key=value" arguments with integer values (the CLI checked and converted
 * the user's units). */
static px_err parse_set(const px_msg_tool *t, uint32_t from, px_impair_cfg *c, int *dir,
                        px_ethsvc_reply *out)
{
    memset(c, 0, sizeof(*c));
    *dir = 0;
    for (uint32_t i = from; i < t->n_args; i++) {
        char a[128];
        px_str_copy(a, sizeof(a), t->args[i]);
        char *eq = strchr(a, '=');
        if (!eq)
            goto bad;
        *eq = '\0';
        const char *v = eq + 1;
        char *end;
        unsigned long long u = strtoull(v, &end, 10);
        if (strcmp(a, "direction") == 0) {
            *dir = strcmp(v, "ingress") == 0 ? 1 : strcmp(v, "both") == 0 ? 2 : 0;
            continue;
        }
        if (*end || end == v)
            goto bad;
        if (strcmp(a, "delay") == 0)
            c->delay_ns = u;
        else if (strcmp(a, "jitter") == 0)
            c->jitter_ns = u;
        else if (strcmp(a, "loss") == 0)
            c->loss_ppm = (uint32_t)u;
        else if (strcmp(a, "loss_burst") == 0)
            c->loss_burst = (uint32_t)u;
        else if (strcmp(a, "duplicate") == 0)
            c->duplicate_ppm = (uint32_t)u;
        else if (strcmp(a, "reorder") == 0)
            c->reorder_ppm = (uint32_t)u;
        else if (strcmp(a, "corrupt") == 0)
            c->corrupt_ppm = (uint32_t)u;
        else if (strcmp(a, "rate") == 0)
            c->rate_bps = u;
        else
            goto bad;
        continue;
    bad:
        out->code = PX_E_INVAL;
        snprintf(out->text, sizeof(out->text), "link set: bad argument '%s'", a);
        return PX_E_INVAL;
    }
    return PX_OK;
}

static void tool_link(eseg *g, const px_msg_tool *t, px_ethsvc_reply *out)
{
    px_ethsvc *s = g->svc;
    char sub[16] = "", target[80] = "";
    if (t->n_args >= 2)
        px_str_copy(sub, sizeof(sub), t->args[1]);
    if (t->n_args >= 3)
        px_str_copy(target, sizeof(target), t->args[2]);
    bool whole = !target[0] || strcmp(target, g->cfg.name) == 0;
    int32_t pi = whole ? -1 : esvc_port_index(g, target);
    if (strcmp(sub, "show") == 0) {
        if (!whole && pi < 0) { /* the port lives on another node */
            out->code = PX_OK;
            return;
        }
        tool_show(g, whole ? NULL : target, out);
        return;
    }
    if (whole || pi < 0) {
        if (whole) {
            out->code = PX_E_INVAL;
            snprintf(out->text, sizeof(out->text),
                     "link %s needs a port GUEST:IF (like %s); 'plexus link show %s' lists them",
                     sub, g->n_ports ? g->ports[0]->cfg.name : "web:eth0", g->cfg.name);
        }
        return; /* not here: another node answers */
    }
    eport *p = g->ports[pi];
    if (strcmp(sub, "set") == 0) {
        px_impair_cfg c;
        int dir;
        if (parse_set(t, 3, &c, &dir, out))
            return;
        px_impair_cfg eg = dir == 1 ? p->eg_cfg : c, in = dir == 0 ? p->in_cfg : c;
        if (esvc_port_impair(p, &eg, &in) != PX_OK) {
            out->code = PX_E_NOMEM;
            snprintf(out->text, sizeof(out->text), "node %s: out of memory", s->self);
            return;
        }
        p->live = true;
        PX_INFO("eth", "impairment set", "segment=%s port=%s", g->cfg.name, p->cfg.name);
    } else if (strcmp(sub, "reset") == 0) {
        p->live = false;
        p->cut_until_ms = 0;
        esvc_port_impair(p, &p->cfg.egress, &p->cfg.ingress);
    } else {
        out->code = PX_E_INVAL;
        snprintf(out->text, sizeof(out->text),
                 "unknown link command '%s'; expected show, set or reset", sub);
        return;
    }
    esvc_arm_timer(g);
    tool_show(g, p->cfg.name, out);
}

void px_ethsvc_tool(px_ethsvc *s, const px_msg_tool *t, px_ethsvc_reply *out)
{
    char lab[64], net[64], what[16] = "";
    px_str_copy(lab, sizeof(lab), t->lab);
    px_str_copy(net, sizeof(net), t->net);
    if (t->n_args)
        px_str_copy(what, sizeof(what), t->args[0]);
    eseg *g = esvc_seg_find(esvc_lab_find(s, lab, NULL), net);
    out->code = PX_OK;
    if (!g) {
        out->code = PX_E_NOTFOUND;
        snprintf(out->text, sizeof(out->text), "node %s: no segment %s in lab %s", s->self, net,
                 lab);
        return;
    }
    if (strcmp(what, "link") == 0) {
        tool_link(g, t, out);
        return;
    }
    if (strcmp(what, "capture") == 0) {
        char client[64];
        px_str_copy(client, sizeof(client), t->client);
        if (!client[0] || s->io.admit(s->io.ud, client) != PX_OK) {
            out->code = PX_E_AUTH;
            snprintf(out->text, sizeof(out->text), "node %s: cannot admit the CLI's key", s->self);
            return;
        }
        snprintf(out->json, sizeof(out->json),
                 "{\"node\":\"%s\",\"endpoint\":\"%s\",\"key\":\"%s\"}", s->self, s->data_ep,
                 s->data_key);
        return;
    }
    out->code = PX_E_UNKNOWN;
    snprintf(out->text, sizeof(out->text), "node %s: no Ethernet tool '%s'", s->self, what);
}
