/* plexus — the Ethernet segment service's data path: the bridge and
 * flooding, delivery to local ports, impairment queues, FRAMES to and from
 * member nodes with back-pressure, captures. See service_int.h.
 *
 * Port numbers in a segment's MAC table: local ports are 0..n_ports-1 (the
 * NAT uplink is one of them at the home), a member node k is
 * REMOTE_PORT(k). Frames between members travel in FRAMES messages, several
 * per message: each member has an out buffer that the loop's check phase
 * flushes once per iteration (or earlier when full).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fabric/core/log.h"
#include "fabric/core/text.h"
#include "fabric/eth-hub/proto.h"
#include "fabric/eth-hub/rec.h"
#include "fabric/eth-hub/service_int.h"

#define REMOTE_BASE    0x10000u
#define REMOTE_PORT(k) (REMOTE_BASE + (k))
/* An out buffer this full is sent at once; a message never holds more than
 * OUT_CAP bytes of records, so it fits the data plane's batch (the
 * envelope and the other fields take far less than the 8 KiB left). */
#define OUT_FLUSH_BYTES (64u << 10)
#define OUT_CAP         (PX_DATA_PLANE_BATCH_BYTES - (8u << 10))
/* A member link that takes nothing this long: drop for it, stop pausing.
 * Long enough that a busy peer on a loaded host (a scheduler slice, a
 * sanitizer build) is waited for; short against the seconds ZeroMQ's
 * heartbeats take to notice a lost one. */
#define PUSHBACK_MS       500u
#define CUTOFF_HOLD_MS    2000u /* a port cut off for bad frames stays off this long */
#define CAP_EXPIRE_MS     5000u /* a capture not renewed by its tool this long ends */
#define REC_FLAG_VIA_PORT 1u    /* CAPTURE: frame as sent to the port (else: as it entered) */

static uint64_t now_ns(const px_ethsvc *s)
{
    (void)s;
    return uv_hrtime();
}

static uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool vlan_ok(const eseg *g, uint16_t vid)
{
    return vid == 0 || (g->cfg.vlan_ok[vid >> 3] & (1u << (vid & 7)));
}

static void mark_dirty(eseg *g)
{
    if (!g->dirty) {
        g->dirty = true;
        g->next_dirty = g->svc->dirty;
        g->svc->dirty = g;
    }
}

/* ---- sending to members and tools ---- */

static px_err send_eth(px_ethsvc *s, const char *node, const px_peer *peer, const px_msg_eth *e)
{
    px_msg *m = s->scratch;
    memset(&m->env, 0, sizeof(m->env));
    m->env.type = PX_MSG_ETH;
    m->body.eth = *e;
    px_wbuf_reset(&s->wb);
    px_errmsg em = {{0}};
    px_err err = px_wire_encode(&s->wb, m, &em);
    if (err) {
        PX_ERROR("eth", "cannot encode an ETH message", "err=%s detail=\"%s\"", px_errname(err),
                 em.text);
        return err;
    }
    if (node)
        return s->io.to_node(s->io.ud, node, s->wb.data, s->wb.len);
    return s->io.to_peer(s->io.ud, peer, s->wb.data, s->wb.len);
}

static void on_btimer(uv_timer_t *t);

/* Back-pressure: while a member's link is full the segment's guest ports
 * stop reading (their sockets fill and QEMU waits, as on a full link), and
 * the held message is tried again every millisecond. A link that takes
 * nothing for PUSHBACK_MS (a peer that is gone or far too slow) must not
 * stall the rest of the segment: its frames are then dropped and counted
 * until it takes a message again. */
static void pushback(eseg *g)
{
    bool want = false;
    for (uint32_t k = 0; k < g->cfg.n_members && !want; k++)
        want = g->out[k].blocked;
    if (want == g->paused)
        return;
    g->paused = want;
    g->pushbacks += want;
    for (uint32_t i = 0; i < g->n_ports; i++)
        if (g->ports[i]->np)
            px_netport_pause(g->ports[i]->np, want);
    if (want && g->btimer_open)
        uv_timer_start(&g->btimer, on_btimer, 1, 1);
    else if (g->btimer_open)
        uv_timer_stop(&g->btimer);
}

static void flush_seg(eseg *g)
{
    px_ethsvc *s = g->svc;
    uint64_t now = esvc_now_ms(s);
    for (uint32_t k = 0; k < g->cfg.n_members; k++) {
        eout *o = &g->out[k];
        if (!o->len)
            continue;
        px_msg_eth e = {.seg = g->key,
                        .op = PX_ETH_FRAMES,
                        .node = g->self,
                        .recs = {o->buf, (uint32_t)o->len}};
        px_err err = send_eth(s, g->cfg.members[k], NULL, &e);
        if (err == PX_E_AGAIN && !o->shedding) {
            if (!o->blocked) {
                o->blocked = true;
                o->blocked_ms = now;
            }
            if (now - o->blocked_ms < PUSHBACK_MS)
                continue; /* kept; sent again */
            o->shedding = true;
            PX_WARN("eth", "link to a member stays full; dropping frames for it",
                    "segment=%s member=%s after_ms=%u", g->cfg.name, g->cfg.members[k],
                    PUSHBACK_MS);
        }
        /* No link to the member (yet), or one that stays full: the frames
         * are lost, and counted. */
        if (err != PX_OK)
            g->to_remote_dropped += o->n;
        else
            o->shedding = false;
        o->blocked = false;
        o->len = 0;
        o->n = 0;
    }
    pushback(g);
    for (uint32_t i = 0; i < g->n_caps; i++) {
        ecap *c = &g->caps[i];
        if (!c->used || !c->len)
            continue;
        px_msg_eth e = {
            .seg = g->key, .op = PX_ETH_CAPTURE, .id = c->id, .recs = {c->buf, (uint32_t)c->len}};
        if (send_eth(s, NULL, &c->peer, &e) != PX_OK)
            c->dropped += c->n;
        c->len = 0;
        c->n = 0;
    }
}

static void on_btimer(uv_timer_t *t)
{
    flush_seg(t->data);
}

static void flush_dirty(px_ethsvc *s)
{
    while (s->dirty) {
        eseg *g = s->dirty;
        s->dirty = g->next_dirty;
        g->dirty = false;
        flush_seg(g);
    }
}

static void on_kick(uv_idle_t *h)
{
    uv_idle_stop(h);
}

/* Frames queued after the check phase (by other check handles, such as the
 * NAT uplink's) would wait for the next wake-up: send them, and since the
 * transport batches its sends in a prepare handle that has already run,
 * keep the loop from sleeping for one more iteration. */
void esvc_on_prepare(uv_prepare_t *h)
{
    px_ethsvc *s = h->data;
    if (!s->dirty)
        return;
    flush_dirty(s);
    uv_idle_start(&s->kick, on_kick);
}

void esvc_on_check(uv_check_t *h)
{
    flush_dirty(h->data);
}

static void to_member(eseg *g, uint32_t k, uint16_t vid, const uint8_t *f, size_t len)
{
    eout *o = &g->out[k];
    if (!o->buf && !(o->buf = malloc(OUT_CAP))) {
        g->to_remote_dropped++;
        return;
    }
    px_ethrec r = {.vid = vid, .frame = f, .len = (uint32_t)len};
    if (o->len + px_ethrec_size((uint32_t)len) > OUT_CAP)
        flush_seg(g);
    if (o->len + px_ethrec_size((uint32_t)len) > OUT_CAP) {
        g->to_remote_dropped++; /* still held: the link is full */
        return;
    }
    o->len += px_ethrec_put(o->buf + o->len, OUT_CAP - o->len, &r);
    o->n++;
    if (o->len >= OUT_FLUSH_BYTES)
        flush_seg(g);
    else
        mark_dirty(g);
}

/* ---- captures ---- */

static void capture(eseg *g, int32_t port, uint16_t flags, uint16_t vid, const uint8_t *f,
                    size_t len)
{
    if (!g->n_caps)
        return;
    const uint8_t *wire = f;
    size_t wlen = len;
    uint64_t ts = 0;
    for (uint32_t i = 0; i < g->n_caps; i++) {
        ecap *c = &g->caps[i];
        if (!c->used)
            continue;
        if (c->port < 0 ? (flags & REC_FLAG_VIA_PORT) != 0 : c->port != port)
            continue;
        if (wire == f && vid) { /* as on a trunk: with its tag */
            wlen = px_eth_tag(f, len, vid, 0, g->svc->cap);
            wire = g->svc->cap;
        }
        if (c->has_prog) {
            struct pcap_pkthdr h = {.caplen = (bpf_u_int32)wlen, .len = (bpf_u_int32)wlen};
            if (!pcap_offline_filter(&c->prog, &h, wire))
                continue;
        }
        if (!ts)
            ts = wall_ns();
        if (!c->buf && !(c->buf = malloc(OUT_CAP))) {
            c->dropped++;
            continue;
        }
        if (c->len + px_ethrec_size((uint32_t)wlen) > OUT_CAP)
            flush_seg(g);
        px_ethrec r = {.flags = flags, .ts_ns = ts, .frame = wire, .len = (uint32_t)wlen};
        c->len += px_ethrec_put(c->buf + c->len, OUT_CAP - c->len, &r);
        c->n++;
        c->sent++;
        mark_dirty(g);
    }
}

/* ---- delivery to local ports ---- */

static void port_out(eport *p, const uint8_t *f, size_t len)
{
    eseg *g = p->seg;
    capture(g, (int32_t)p->idx, REC_FLAG_VIA_PORT, 0, f, len);
    if (p->uplink) {
        if (g->nat)
            px_slirp_input(g->nat, f, len);
        return;
    }
    if (p->np)
        px_netport_send(p->np, f, len);
}

/* A frame of VLAN vid leaves through local port p (the bridge chose it). */
static void deliver(eport *p, uint16_t vid, const uint8_t *f, size_t len)
{
    eseg *g = p->seg;
    if (p->cut_until_ms && esvc_now_ms(g->svc) < p->cut_until_ms)
        return;
    if (p->down) {
        g->down_drops++;
        return;
    }
    uint16_t pv = p->uplink ? 0 : p->cfg.vlan;
    if (pv) { /* access port: its VLAN only, untagged */
        if (vid != pv)
            return;
    } else if (vid) { /* trunk: tagged */
        if (p->uplink)
            return;
        len = px_eth_tag(f, len, vid, 0, g->svc->tag);
        f = g->svc->tag;
    }
    if (p->in) {
        if (px_impair_push(p->in, now_ns(g->svc), f, len, p->idx) == PX_OK)
            esvc_arm_timer(g);
        return;
    }
    port_out(p, f, len);
}

static void flood_local(eseg *g, uint32_t except, uint16_t vid, const uint8_t *f, size_t len)
{
    for (uint32_t i = 0; i < g->n_ports; i++)
        if (i != except)
            deliver(g->ports[i], vid, f, len);
}

/* ---- the bridge ---- */

/* A frame of VLAN vid (untagged in f) enters the bridge from local port
 * src (or, with src >= REMOTE_BASE, from a member node). */
static void bridge(eseg *g, uint32_t src, uint16_t vid, const uint8_t *f, size_t len)
{
    if (g->down) {
        g->down_drops++;
        return;
    }
    uint64_t t = now_ns(g->svc);
    const uint8_t *dst = f, *smac = f + 6;
    g->frames++;
    g->bytes += len;
    if (!g->cfg.hub)
        px_fdb_learn(g->fdb, vid, smac, src, t);
    uint32_t to = PX_FDB_NONE;
    if (!g->cfg.hub && !px_eth_mac_is_group(dst))
        to = px_fdb_lookup(g->fdb, vid, dst, t);
    bool local_src = src < REMOTE_BASE;
    if (local_src)
        capture(g, (int32_t)src, 0, vid, f, len);
    if (to == PX_FDB_NONE || (to >= REMOTE_BASE && !local_src)) {
        g->flooded++;
        flood_local(g, src, vid, f, len);
        if (local_src)
            for (uint32_t k = 0; k < g->cfg.n_members; k++)
                if (k != g->self)
                    to_member(g, k, vid, f, len);
        return;
    }
    if (to == src)
        return; /* both ends behind the same port */
    if (to < REMOTE_BASE) {
        g->local_unicast++;
        if (to < g->n_ports)
            deliver(g->ports[to], vid, f, len);
        return;
    }
    g->remote_unicast++;
    if (to - REMOTE_BASE < g->cfg.n_members)
        to_member(g, to - REMOTE_BASE, vid, f, len);
}

/* After the port's egress impairment: the segment's, then the bridge. */
static void enter(eport *p, uint16_t vid, const uint8_t *f, size_t len)
{
    eseg *g = p->seg;
    if (g->imp) {
        if (px_impair_push(g->imp, now_ns(g->svc), f, len, ((uint64_t)vid << 32) | p->idx) == PX_OK)
            esvc_arm_timer(g);
        return;
    }
    bridge(g, p->idx, vid, f, len);
}

static void cut_off(eport *p, const char *why)
{
    eseg *g = p->seg;
    p->cutoffs++;
    p->cut_until_ms = esvc_now_ms(g->svc) + CUTOFF_HOLD_MS;
    snprintf(p->cut_why, sizeof(p->cut_why), "%s", why);
    px_fdb_flush_port(g->fdb, p->idx);
    PX_WARN("eth", "port cut off", "lab=%s segment=%s port=%s why=\"%s\" hold_ms=%u", g->lab->name,
            g->cfg.name, p->cfg.name, why, CUTOFF_HOLD_MS);
    if (p->np)
        px_netport_cutoff(p->np, why, CUTOFF_HOLD_MS);
}

/* A frame from the guest (or TAP, or the uplink) on port p. */
void esvc_port_in(eport *p, const uint8_t *f, size_t len)
{
    eseg *g = p->seg;
    char why[160];
    if (p->cut_until_ms) {
        if (esvc_now_ms(g->svc) < p->cut_until_ms)
            return;
        p->cut_until_ms = 0;
    }
    if (p->down) {
        g->down_drops++;
        return;
    }
    px_eth_hdr h;
    px_errmsg em = {{0}};
    if (px_eth_parse(f, len, &h, &em) != PX_OK) {
        p->runts++;
        g->runts++;
        snprintf(why, sizeof(why), "garbage frame: %s", em.text);
        cut_off(p, why);
        return;
    }
    size_t max = (size_t)g->cfg.mtu + PX_ETH_HLEN + (h.tagged ? PX_ETH_VLAN_HLEN : 0);
    if (len > max) {
        p->oversize++;
        g->oversize++;
        snprintf(why, sizeof(why), "oversized frame: %zu bytes, the segment's MTU %u allows %zu",
                 len, g->cfg.mtu, max);
        cut_off(p, why);
        return;
    }
    uint16_t vid;
    uint16_t pv = p->uplink ? 0 : p->cfg.vlan;
    if (pv) {
        if (h.tagged) {
            p->tagged_on_access++;
            return;
        }
        vid = pv;
    } else if (h.tagged) {
        vid = h.vid;
        memcpy(g->svc->untag, f, len);
        size_t l = len;
        f = px_eth_untag(g->svc->untag, &l);
        len = l;
    } else {
        vid = 0;
    }
    if (!vlan_ok(g, vid)) {
        p->vlan_drops++;
        g->vlan_drops++;
        return;
    }
    if (p->eg) {
        if (px_impair_push(p->eg, now_ns(g->svc), f, len, ((uint64_t)vid << 32) | p->idx) == PX_OK)
            esvc_arm_timer(g);
        return;
    }
    enter(p, vid, f, len);
}

/* ---- impairment queues ---- */

static uint64_t next_due(const eseg *g)
{
    uint64_t due = g->imp ? px_impair_next_ns(g->imp) : UINT64_MAX;
    for (uint32_t i = 0; i < g->n_ports; i++) {
        const eport *p = g->ports[i];
        if (p->eg && px_impair_next_ns(p->eg) < due)
            due = px_impair_next_ns(p->eg);
        if (p->in && px_impair_next_ns(p->in) < due)
            due = px_impair_next_ns(p->in);
    }
    return due;
}

static void on_timer(uv_timer_t *t);

void esvc_arm_timer(eseg *g)
{
    uint64_t due = next_due(g);
    if (due == UINT64_MAX || !g->timer_open)
        return;
    if (g->timer_due && g->timer_due <= due && uv_is_active((uv_handle_t *)&g->timer))
        return;
    uint64_t t = now_ns(g->svc);
    uint64_t ms = due > t ? (due - t + 999999) / 1000000 : 0;
    g->timer_due = due;
    uv_timer_start(&g->timer, on_timer, ms, 0);
}

static void drain(eseg *g)
{
    uint64_t t = now_ns(g->svc);
    const uint8_t *f;
    size_t len;
    uint64_t tag;
    bool again = true;
    while (again) {
        again = false;
        for (uint32_t i = 0; i < g->n_ports; i++) {
            eport *p = g->ports[i];
            while (p->eg && px_impair_pop(p->eg, t, &f, &len, &tag)) {
                enter(p, (uint16_t)(tag >> 32), f, len);
                again = true;
            }
            while (p->in && px_impair_pop(p->in, t, &f, &len, &tag)) {
                port_out(p, f, len);
                again = true;
            }
        }
        while (g->imp && px_impair_pop(g->imp, t, &f, &len, &tag)) {
            uint32_t src = (uint32_t)tag;
            bridge(g, src, (uint16_t)(tag >> 32), f, len);
            again = true;
        }
    }
}

static void on_timer(uv_timer_t *t)
{
    eseg *g = t->data;
    g->timer_due = 0;
    drain(g);
    /* Timers run before the loop polls: send what drain queued for other
     * members now, while the transport's own prepare phase is still ahead. */
    flush_dirty(g->svc);
    esvc_arm_timer(g);
}

/* ---- impairment changes ---- */

px_err esvc_impair_make(const px_impair_cfg *c, uint64_t seed, px_impair **out)
{
    if (!px_impair_cfg_active(c)) {
        *out = NULL;
        return PX_OK;
    }
    if (!*out) {
        px_err err = px_impair_new(seed, out);
        if (err)
            return err;
    }
    px_impair_set(*out, c);
    return PX_OK;
}

px_err esvc_port_impair(eport *p, const px_impair_cfg *eg, const px_impair_cfg *in)
{
    p->eg_cfg = *eg;
    p->in_cfg = *in;
    uint64_t seed = px_eth_seg_key(p->seg->cfg.name, p->cfg.name);
    px_impair *old_eg = p->eg, *old_in = p->in;
    px_err err = esvc_impair_make(eg, seed, &p->eg);
    if (!err)
        err = esvc_impair_make(in, seed ^ 0x5555u, &p->in);
    /* An impairment switched off lets its queued frames go first. */
    if (old_eg && !p->eg) {
        p->eg = old_eg;
        const uint8_t *f;
        size_t len;
        uint64_t tag;
        while (px_impair_pop(old_eg, UINT64_MAX, &f, &len, &tag))
            enter(p, (uint16_t)(tag >> 32), f, len);
        px_impair_free(old_eg);
        p->eg = NULL;
    }
    if (old_in && !p->in) {
        p->in = old_in;
        const uint8_t *f;
        size_t len;
        uint64_t tag;
        while (px_impair_pop(old_in, UINT64_MAX, &f, &len, &tag))
            port_out(p, f, len);
        px_impair_free(old_in);
        p->in = NULL;
    }
    return err;
}

/* The segment's own impairment becomes c; frames queued under an
 * impairment that is switched off go on at once. */
px_err esvc_seg_impair_set(eseg *g, const px_impair_cfg *c)
{
    px_impair *old = g->imp;
    px_err err = esvc_impair_make(c, g->key, &g->imp);
    if (old && !g->imp) {
        const uint8_t *f;
        size_t len;
        uint64_t tag;
        while (px_impair_pop(old, UINT64_MAX, &f, &len, &tag))
            bridge(g, (uint32_t)tag, (uint16_t)(tag >> 32), f, len);
        px_impair_free(old);
    }
    return err;
}

/* ---- messages from members ---- */

static eseg *seg_by_key(px_ethsvc *s, uint64_t key)
{
    for (uint32_t i = 0; i < s->n_labs; i++)
        for (uint32_t k = 0; k < s->labs[i]->n_segs; k++)
            if (s->labs[i]->segs[k]->key == key)
                return s->labs[i]->segs[k];
    return NULL;
}

static void on_frames(eseg *g, const px_peer *from, const px_msg_eth *m)
{
    px_ethsvc *s = g->svc;
    if (m->node >= g->cfg.n_members || m->node == g->self) {
        g->remote_bad++;
        return;
    }
    const char *key = s->io.node_key(s->io.ud, g->cfg.members[m->node]);
    if (!key || strcmp(key, from->key_z85) != 0) {
        g->remote_bad++;
        PX_DEBUG("eth", "frames from a peer that is not that member", "segment=%s member=%u",
                 g->cfg.name, m->node);
        return;
    }
    size_t off = 0;
    px_ethrec r;
    px_errmsg em = {{0}};
    px_err err;
    while ((err = px_ethrec_next(m->recs.ptr, m->recs.len, &off, &r, &em)) == PX_OK) {
        if (r.len > (size_t)g->cfg.mtu + PX_ETH_HLEN || !vlan_ok(g, r.vid)) {
            g->remote_bad++;
            continue;
        }
        g->from_remote++;
        bridge(g, REMOTE_PORT(m->node), r.vid, r.frame, r.len);
    }
    if (err != PX_E_NOTFOUND) {
        g->remote_bad++;
        PX_WARN("eth", "malformed frames from a member", "segment=%s member=%s detail=\"%s\"",
                g->cfg.name, g->cfg.members[m->node], em.text);
    }
}

static void cap_free(ecap *c)
{
    free(c->buf);
    if (c->has_prog)
        pcap_freecode(&c->prog);
    memset(c, 0, sizeof(*c));
}

static void on_cap_join(eseg *g, const px_peer *from, const px_msg_eth *m)
{
    px_ethsvc *s = g->svc;
    ecap *c = NULL;
    for (uint32_t i = 0; i < g->n_caps && !c; i++)
        if (g->caps[i].used && g->caps[i].id == m->id)
            c = &g->caps[i];
    if (c) {
        c->renewed_ms = esvc_now_ms(s);
        c->peer = *from;
        return;
    }
    for (uint32_t i = 0; i < MAX_CAPS && !c; i++)
        if (!g->caps[i].used)
            c = &g->caps[i];
    if (!c) {
        PX_WARN("eth", "capture refused: too many", "segment=%s max=%u", g->cfg.name, MAX_CAPS);
        return;
    }
    memset(c, 0, sizeof(*c));
    char filter[PX_WIRE_MAX_STR + 1], port[80];
    px_str_copy(filter, sizeof(filter), m->filter);
    px_str_copy(port, sizeof(port), m->port);
    c->port = -1;
    if (port[0] && (c->port = esvc_port_index(g, port)) < 0)
        return; /* not on this node */
    if (filter[0]) {
        if (pcap_compile(s->pcap, &c->prog, filter, 1, PCAP_NETMASK_UNKNOWN) != 0) {
            PX_WARN("eth", "capture filter does not compile", "segment=%s filter=\"%s\" err=%s",
                    g->cfg.name, filter, pcap_geterr(s->pcap));
            return;
        }
        c->has_prog = true;
    }
    c->used = true;
    c->id = m->id;
    c->peer = *from;
    c->renewed_ms = esvc_now_ms(s);
    uint32_t idx = (uint32_t)(c - g->caps);
    if (idx + 1 > g->n_caps)
        g->n_caps = idx + 1;
    PX_INFO("eth", "capture started", "segment=%s id=%" PRIu64 " port=%s filter=\"%s\"",
            g->cfg.name, m->id, port[0] ? port : "*", filter);
}

void px_ethsvc_on_msg(px_ethsvc *s, const px_peer *from, const px_msg_eth *m)
{
    eseg *g = seg_by_key(s, m->seg);
    if (!g)
        return;
    switch (m->op) {
    case PX_ETH_FRAMES:
        on_frames(g, from, m);
        break;
    case PX_ETH_CAP_JOIN:
        on_cap_join(g, from, m);
        break;
    case PX_ETH_CAP_LEAVE:
        for (uint32_t i = 0; i < g->n_caps; i++)
            if (g->caps[i].used && g->caps[i].id == m->id) {
                flush_seg(g);
                cap_free(&g->caps[i]);
            }
        break;
    default:
        break;
    }
}

void esvc_on_sweep(uv_timer_t *t)
{
    px_ethsvc *s = t->data;
    uint64_t ms = esvc_now_ms(s), ns = now_ns(s);
    for (uint32_t i = 0; i < s->n_labs; i++)
        for (uint32_t k = 0; k < s->labs[i]->n_segs; k++) {
            eseg *g = s->labs[i]->segs[k];
            px_fdb_expire(g->fdb, ns);
            for (uint32_t c = 0; c < g->n_caps; c++)
                if (g->caps[c].used && ms - g->caps[c].renewed_ms > CAP_EXPIRE_MS) {
                    PX_INFO("eth", "capture expired", "segment=%s id=%" PRIu64, g->cfg.name,
                            g->caps[c].id);
                    cap_free(&g->caps[c]);
                }
        }
}
