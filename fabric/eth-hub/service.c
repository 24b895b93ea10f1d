/* plexus — the Ethernet segment service of one node: its life cycle, labs
 * and segments, ports and scheduled faults. See service.h and
 * docs/ethernet.md; service_int.h says which file holds what.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "fabric/core/log.h"
#include "fabric/eth-hub/proto.h"
#include "fabric/eth-hub/service_int.h"

#define FDB_SWEEP_MS 1000u

static void release(px_ethsvc *s);

/* ---- ports ---- */

static void np_rx(void *ud, px_netport *np, const uint8_t *f, size_t len)
{
    (void)np;
    esvc_port_in(ud, f, len);
}

static void nat_out(void *ud, const uint8_t *f, size_t len)
{
    esvc_port_in(ud, f, len);
}

static void port_free(eport *p)
{
    if (!p)
        return;
    if (p->np)
        px_netport_close(p->np);
    px_impair_free(p->eg);
    px_impair_free(p->in);
    free(p);
}

static px_err port_open(eseg *g, uint32_t idx, const px_ethsvc_port_cfg *c, const char *labname,
                        eport **out, px_errmsg *em)
{
    eport *p = calloc(1, sizeof(*p));
    if (!p)
        return px_errmsg_set(em, PX_E_NOMEM, "out of memory");
    p->seg = g;
    p->idx = idx;
    p->cfg = *c;
    char logname[200];
    snprintf(logname, sizeof(logname), "%s/%s/%s", labname, g->cfg.name, c->name);
    px_netport_opts o = {.kind = c->kind,
                         .path = c->path,
                         .bind_path = c->bind_path[0] ? c->bind_path : NULL,
                         .ifname = c->ifname,
                         .name = logname,
                         .id = idx,
                         .on_rx = np_rx,
                         .ud = p};
    px_err err = px_netport_open(g->svc->loop, &o, &p->np, em);
    if (!err)
        err = esvc_port_impair(p, &c->egress, &c->ingress);
    if (err) {
        port_free(p);
        return err;
    }
    *out = p;
    return PX_OK;
}

/* ---- scheduled faults (the topology's link_down and impair) ---- */

int32_t esvc_port_index(const eseg *g, const char *name)
{
    for (uint32_t i = 0; i < g->n_ports; i++)
        if (strcmp(g->ports[i]->cfg.name, name) == 0)
            return (int32_t)i;
    return -1;
}

static void fault_set(eseg *g, uint32_t i, bool on)
{
    const px_ethsvc_fault_cfg *f = &g->cfg.faults[i];
    g->fault_on[i] = on;
    int32_t pi = f->port[0] ? esvc_port_index(g, f->port) : -1;
    PX_INFO("eth", on ? "fault starts" : "fault ends", "lab=%s segment=%s fault=%s port=%s",
            g->lab->name, g->cfg.name, f->name, f->port[0] ? f->port : "*");
    if (f->port[0] && pi < 0)
        return;
    eport *p = pi >= 0 ? g->ports[pi] : NULL;
    if (f->down) {
        if (p)
            p->down = on;
        else
            g->down = on;
        if (on && p)
            px_fdb_flush_port(g->fdb, p->idx);
        else if (on)
            px_fdb_flush(g->fdb);
        return;
    }
    if (p) {
        esvc_port_impair(p, on ? &f->egress : &p->cfg.egress, on ? &f->ingress : &p->cfg.ingress);
        p->live = false;
    } else {
        esvc_seg_impair_set(g, on ? &f->egress : &g->seg_impair);
    }
    esvc_arm_timer(g);
}

static void on_fault_timer(uv_timer_t *t);

/* Every fault whose time has come changes state (a timer that fired late,
 * or a segment rebuilt by a new plan, catches up in order); then the
 * timer waits for the next change. */
static void faults_run(eseg *g)
{
    uint64_t now = esvc_now_ms(g->svc), next = UINT64_MAX;
    for (uint32_t i = 0; i < g->cfg.n_faults; i++) {
        const px_ethsvc_fault_cfg *f = &g->cfg.faults[i];
        while (g->fault_next[i] <= now) {
            uint64_t at = g->fault_next[i];
            if (!g->fault_on[i]) {
                fault_set(g, i, true);
                g->fault_next[i] = f->duration_ms ? at + f->duration_ms : UINT64_MAX;
            } else {
                fault_set(g, i, false);
                g->fault_next[i] = f->every_ms ? at - f->duration_ms + f->every_ms : UINT64_MAX;
            }
        }
        if (g->fault_next[i] < next)
            next = g->fault_next[i];
    }
    if (next != UINT64_MAX && g->ftimer_open)
        uv_timer_start(&g->ftimer, on_fault_timer, next - now, 0);
}

static void on_fault_timer(uv_timer_t *t)
{
    faults_run(t->data);
}

/* ---- segments ---- */

/* g holds its two timers: it is freed when the last one has closed. */
static void seg_handle_closed(uv_handle_t *h)
{
    eseg *g = h->data;
    px_ethsvc *s = g->svc;
    if (--g->closing == 0)
        free(g);
    release(s);
}

static void seg_free(eseg *g)
{
    px_ethsvc *s = g->svc;
    /* Out of the dirty list. */
    for (eseg **pp = &s->dirty; *pp; pp = &(*pp)->next_dirty)
        if (*pp == g) {
            *pp = g->next_dirty;
            break;
        }
    for (uint32_t i = 0; i < g->n_ports; i++)
        port_free(g->ports[i]);
    free(g->ports);
    if (g->nat)
        px_slirp_close(g->nat);
    px_fdb_free(g->fdb);
    px_impair_free(g->imp);
    for (uint32_t k = 0; k < PX_ETHSVC_MAX_MEMBERS; k++)
        free(g->out[k].buf);
    for (uint32_t i = 0; i < g->n_caps; i++) {
        free(g->caps[i].buf);
        if (g->caps[i].has_prog)
            pcap_freecode(&g->caps[i].prog);
    }
    g->closing =
        (g->timer_open ? 1u : 0u) + (g->ftimer_open ? 1u : 0u) + (g->btimer_open ? 1u : 0u);
    if (!g->closing) {
        free(g);
        return;
    }
    s->pending += g->closing;
    if (g->ftimer_open)
        uv_close((uv_handle_t *)&g->ftimer, seg_handle_closed);
    if (g->btimer_open)
        uv_close((uv_handle_t *)&g->btimer, seg_handle_closed);
    if (g->timer_open)
        uv_close((uv_handle_t *)&g->timer, seg_handle_closed);
}

static bool port_same(const px_ethsvc_port_cfg *a, const px_ethsvc_port_cfg *b)
{
    return strcmp(a->name, b->name) == 0 && a->kind == b->kind && strcmp(a->path, b->path) == 0 &&
           strcmp(a->bind_path, b->bind_path) == 0 && strcmp(a->ifname, b->ifname) == 0;
}

/* Build segment c; ports of `old` (same segment, previous plan) that stay
 * are moved over with their connections. */
static px_err seg_open(px_ethsvc *s, elab *l, const px_ethsvc_seg_cfg *c, eseg *old, eseg **out,
                       px_errmsg *em)
{
    eseg *g = calloc(1, sizeof(*g));
    if (!g)
        return px_errmsg_set(em, PX_E_NOMEM, "segment %s: out of memory", c->name);
    g->svc = s;
    g->lab = l;
    g->cfg = *c;
    g->cfg.ports = NULL;
    g->key = px_eth_seg_key(l->name, c->name);
    g->self = UINT32_MAX;
    for (uint32_t k = 0; k < c->n_members; k++)
        if (strcmp(c->members[k], s->self) == 0)
            g->self = k;
    uint64_t seed;
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
        seed = uv_hrtime() ^ g->key;
    /* Keyed hashing: guests cannot pick MACs that collide in the table. */
    px_err err = px_fdb_new_seeded(0, 0, seed, &g->fdb);
    if (!err)
        err = esvc_impair_make(&c->impair, g->key, &g->imp);
    uint32_t np = c->n_ports + (c->nat ? 1u : 0u);
    if (!err && !(g->ports = calloc(np + 1, sizeof(*g->ports))))
        err = PX_E_NOMEM;
    if (err) {
        seg_free(g);
        return px_errmsg_set(em, err, "segment %s: out of memory", c->name);
    }
    uv_timer_init(s->loop, &g->timer);
    g->timer.data = g;
    g->timer_open = true;
    uv_timer_init(s->loop, &g->ftimer);
    g->ftimer.data = g;
    g->ftimer_open = true;
    uv_timer_init(s->loop, &g->btimer);
    g->btimer.data = g;
    g->btimer_open = true;
    g->seg_impair = c->impair;
    g->start_ms = old ? old->start_ms : esvc_now_ms(s);
    for (uint32_t i = 0; i < c->n_ports && !err; i++) {
        eport *kept = NULL;
        for (uint32_t j = 0; old && j < old->n_ports && !kept; j++)
            if (old->ports[j] && !old->ports[j]->uplink &&
                port_same(&old->ports[j]->cfg, &c->ports[i])) {
                kept = old->ports[j];
                old->ports[j] = NULL;
            }
        if (kept) {
            kept->seg = g;
            kept->idx = i;
            kept->cfg = c->ports[i];
            if (kept->np) /* the old segment may have paused it */
                px_netport_pause(kept->np, false);
            if (!kept->live)
                err = esvc_port_impair(kept, &c->ports[i].egress, &c->ports[i].ingress);
            g->ports[g->n_ports++] = kept;
            continue;
        }
        err = port_open(g, i, &c->ports[i], l->name, &g->ports[g->n_ports], em);
        if (!err)
            g->n_ports++;
        else
            px_errmsg_prefix(em, "segment %s, port %s", c->name, c->ports[i].name);
    }
    eport *up = NULL; /* the old uplink port, kept with its NAT state */
    for (uint32_t j = 0; c->nat && old && old->nat && j < old->n_ports && !up; j++)
        if (old->ports[j] && old->ports[j]->uplink) {
            up = old->ports[j];
            old->ports[j] = NULL;
        }
    if (err && up)
        free(up); /* old->nat still points at it, but closes with old, unused */
    if (!err && c->nat) {
        eport *p = up ? up : calloc(1, sizeof(*p));
        up = NULL;
        if (!p) {
            err = px_errmsg_set(em, PX_E_NOMEM, "segment %s: out of memory", c->name);
        } else {
            p->idx = g->n_ports;
            p->uplink = true;
            snprintf(p->cfg.name, sizeof(p->cfg.name), "uplink");
            g->ports[g->n_ports++] = p;
            if (!p->seg) /* new */
                p->seg = g;
            if (p->seg != g) { /* kept: the NAT state (leases, connections) too */
                p->seg = g;
                g->nat = old->nat;
                old->nat = NULL;
            } else {
                char name[200];
                snprintf(name, sizeof(name), "%s/%s/uplink", l->name, c->name);
                px_slirp_opts so = {.net = c->nat_net,
                                    .prefix = c->nat_prefix,
                                    .name = name,
                                    .out = nat_out,
                                    .ud = p};
                err = px_slirp_open(s->loop, &so, &g->nat, em);
                if (err)
                    px_errmsg_prefix(em, "segment %s: NAT uplink", c->name);
            }
            for (uint32_t i = 0; !err && i < c->n_fwds; i++) {
                const px_ethsvc_fwd_cfg *fw = &c->fwds[i];
                px_err e2 = px_slirp_fwd_add(g->nat, fw->udp, fw->listen, fw->mac, fw->port, em);
                if (e2 && e2 != PX_E_EXISTS) {
                    err = e2;
                    px_errmsg_prefix(em, "segment %s: port forward %s %u -> %s:%u", c->name,
                                     fw->udp ? "udp" : "tcp", fw->listen, fw->guest, fw->port);
                }
            }
        }
    }
    if (err) {
        seg_free(g);
        return err;
    }
    for (uint32_t i = 0; i < c->n_faults; i++)
        g->fault_next[i] = g->start_ms + c->faults[i].at_ms;
    faults_run(g);
    *out = g;
    return PX_OK;
}

/* ---- labs ---- */

elab *esvc_lab_find(px_ethsvc *s, const char *name, uint32_t *idx)
{
    for (uint32_t i = 0; i < s->n_labs; i++)
        if (strcmp(s->labs[i]->name, name) == 0) {
            if (idx)
                *idx = i;
            return s->labs[i];
        }
    return NULL;
}

eseg *esvc_seg_find(const elab *l, const char *name)
{
    for (uint32_t i = 0; l && i < l->n_segs; i++)
        if (strcmp(l->segs[i]->cfg.name, name) == 0)
            return l->segs[i];
    return NULL;
}

px_err px_ethsvc_lab_apply(px_ethsvc *s, const char *lab, const char *labdir,
                           const px_ethsvc_seg_cfg *segs, uint32_t n, px_errmsg *em)
{
    elab *l = esvc_lab_find(s, lab, NULL);
    if (!l) {
        if (n == 0)
            return PX_OK;
        elab **labs = realloc(s->labs, (s->n_labs + 1) * sizeof(*labs));
        if (!labs || !(l = calloc(1, sizeof(*l))))
            return px_errmsg_set(em, PX_E_NOMEM, "Ethernet: out of memory");
        s->labs = labs;
        s->labs[s->n_labs++] = l;
        snprintf(l->name, sizeof(l->name), "%s", lab);
    }
    snprintf(l->dir, sizeof(l->dir), "%s", labdir);
    eseg **next = calloc(n + 1, sizeof(*next));
    if (!next)
        return px_errmsg_set(em, PX_E_NOMEM, "Ethernet: out of memory");
    px_err first = PX_OK;
    uint32_t nn = 0;
    for (uint32_t i = 0; i < n; i++) {
        eseg *old = esvc_seg_find(l, segs[i].name);
        px_errmsg one = {{0}};
        px_err err = seg_open(s, l, &segs[i], old, &next[nn], &one);
        if (err) {
            PX_WARN("eth", "segment cannot start", "lab=%s segment=%s detail=\"%s\"", lab,
                    segs[i].name, one.text);
            if (!first) {
                first = err;
                if (em)
                    *em = one;
            }
            continue;
        }
        nn++;
    }
    for (uint32_t i = 0; i < l->n_segs; i++)
        seg_free(l->segs[i]);
    free(l->segs);
    l->segs = next;
    l->n_segs = nn;
    return first;
}

void px_ethsvc_lab_remove(px_ethsvc *s, const char *lab)
{
    uint32_t i;
    elab *l = esvc_lab_find(s, lab, &i);
    if (!l)
        return;
    for (uint32_t k = 0; k < l->n_segs; k++)
        seg_free(l->segs[k]);
    free(l->segs);
    free(l);
    s->labs[i] = s->labs[--s->n_labs];
}

/* ---- life cycle ---- */

px_err px_ethsvc_new(uv_loop_t *loop, const px_ethsvc_io *io, px_ethsvc **out)
{
    px_ethsvc *s = calloc(1, sizeof(*s));
    if (!s || !(s->scratch = malloc(sizeof(px_msg)))) {
        free(s);
        return PX_E_NOMEM;
    }
    s->loop = loop;
    s->io = *io;
    snprintf(s->self, sizeof(s->self), "%s", io->self);
    snprintf(s->data_ep, sizeof(s->data_ep), "%s", io->data_ep ? io->data_ep : "");
    snprintf(s->data_key, sizeof(s->data_key), "%s", io->data_key ? io->data_key : "");
    s->io.self = s->self;
    s->pcap = pcap_open_dead(DLT_EN10MB, PX_ETH_MAX_FRAME);
    if (!s->pcap) {
        free(s->scratch);
        free(s);
        return PX_E_NOMEM;
    }
    uv_check_init(loop, &s->check);
    s->check.data = s;
    uv_check_start(&s->check, esvc_on_check);
    uv_prepare_init(loop, &s->prepare);
    s->prepare.data = s;
    uv_prepare_start(&s->prepare, esvc_on_prepare);
    uv_unref((uv_handle_t *)&s->prepare);
    uv_idle_init(loop, &s->kick);
    s->kick.data = s;
    uv_unref((uv_handle_t *)&s->kick);
    uv_unref((uv_handle_t *)&s->check);
    uv_timer_init(loop, &s->sweep);
    s->sweep.data = s;
    uv_timer_start(&s->sweep, esvc_on_sweep, FDB_SWEEP_MS, FDB_SWEEP_MS);
    uv_unref((uv_handle_t *)&s->sweep);
    *out = s;
    return PX_OK;
}

static void release(px_ethsvc *s)
{
    if (--s->pending || !s->closing)
        return;
    void (*done)(void *) = s->done;
    void *ud = s->done_ud;
    pcap_close(s->pcap);
    px_wbuf_fini(&s->wb);
    free(s->scratch);
    free(s->labs);
    free(s);
    if (done)
        done(ud);
}

static void svc_handle_closed(uv_handle_t *h)
{
    release(h->data);
}

void px_ethsvc_close(px_ethsvc *s, void (*done)(void *ud), void *ud)
{
    s->pending++; /* held until everything below has been asked to close */
    while (s->n_labs)
        px_ethsvc_lab_remove(s, s->labs[0]->name);
    s->closing = true;
    s->done = done;
    s->done_ud = ud;
    s->pending += 4;
    uv_close((uv_handle_t *)&s->kick, svc_handle_closed);
    uv_close((uv_handle_t *)&s->prepare, svc_handle_closed);
    uv_close((uv_handle_t *)&s->check, svc_handle_closed);
    uv_close((uv_handle_t *)&s->sweep, svc_handle_closed);
    release(s);
}
