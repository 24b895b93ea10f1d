/* plexus — the Ethernet segment service of one node. See service.h and
 * docs/ethernet.md.
 *
 * Port numbers in a segment's MAC table: local ports are 0..n_ports-1 (the
 * NAT uplink is one of them at the home), a member node k is
 * REMOTE_PORT(k). Frames between members travel in FRAMES messages, several
 * per message: each member has an out buffer that the loop's check phase
 * flushes once per iteration (or earlier when full).
 */
#include "fabric/eth-hub/service.h"

#include <inttypes.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "devices/net/slirp.h"
#include "fabric/core/log.h"
#include "fabric/core/text.h"
#include "fabric/eth-hub/fdb.h"
#include "fabric/eth-hub/frame.h"
#include "fabric/eth-hub/proto.h"
#include "fabric/eth-hub/rec.h"

#define REMOTE_BASE    0x10000u
#define REMOTE_PORT(k) (REMOTE_BASE + (k))
/* An out buffer this full is sent at once; a message never holds more than
 * OUT_CAP bytes of records, so it fits the data plane's batch (the
 * envelope and the other fields take far less than the 8 KiB left). */
#define OUT_FLUSH_BYTES   (64u << 10)
#define OUT_CAP           (PX_DATA_PLANE_BATCH_BYTES - (8u << 10))
/* A member link that takes nothing this long: drop for it, stop pausing.
 * Long enough that a busy peer on a loaded host (a scheduler slice, a
 * sanitizer build) is waited for; short against the seconds ZeroMQ's
 * heartbeats take to notice a lost one. */
#define PUSHBACK_MS       500u
#define CUTOFF_HOLD_MS    2000u /* a port cut off for bad frames stays off this long */
#define MAX_CAPS          8u
#define CAP_EXPIRE_MS     5000u /* a capture not renewed by its tool this long ends */
#define FDB_SWEEP_MS      1000u
#define REC_FLAG_VIA_PORT 1u /* CAPTURE: frame as sent to the port (else: as it entered) */

typedef struct eseg eseg;

typedef struct eport {
    eseg *seg;
    uint32_t idx;
    px_ethsvc_port_cfg cfg;
    px_netport *np; /* NULL for the uplink */
    bool uplink;
    px_impair_cfg eg_cfg, in_cfg; /* in force: the topology's or set at run time */
    bool live;                    /* eg/in set by `link set` */
    bool down;                    /* a link_down fault holds it */
    px_impair *eg, *in;           /* NULL while not impaired */
    uint64_t cut_until_ms;
    char cut_why[160];
    uint64_t oversize, runts, vlan_drops, tagged_on_access, cutoffs;
} eport;

typedef struct ecap {
    uint64_t id;
    px_peer peer;
    bool used;
    bool has_prog;
    struct bpf_program prog;
    int32_t port; /* -1: every port, entry frames only */
    uint64_t renewed_ms;
    uint8_t *buf;
    size_t len;
    uint32_t n; /* frames in buf */
    uint64_t sent, dropped;
} ecap;

typedef struct eout {
    uint8_t *buf;
    size_t len;
    uint32_t n;          /* frames in buf */
    bool blocked;        /* the link's queue is full: buf is kept and sent again */
    bool shedding;       /* blocked too long: frames to it are dropped, no pause */
    uint64_t blocked_ms; /* since when */
} eout;

typedef struct elab elab;

struct eseg {
    px_ethsvc *svc;
    elab *lab;
    uint64_t key;
    px_ethsvc_seg_cfg cfg; /* ports pointer not kept */
    uint32_t self;         /* this node's index in cfg.members, or UINT32_MAX */
    eport **ports;
    uint32_t n_ports;
    px_fdb *fdb;
    px_impair *imp; /* the segment's impairment, NULL when none */
    px_slirp *nat;
    eout out[PX_ETHSVC_MAX_MEMBERS];
    bool dirty;
    ecap caps[MAX_CAPS];
    uint32_t n_caps;
    uv_timer_t timer; /* impairment queues */
    bool timer_open;
    uint64_t timer_due;
    /* scheduled faults */
    uint64_t start_ms;
    uv_timer_t ftimer;
    bool ftimer_open;
    uv_timer_t btimer; /* retries held messages while a member link is full */
    bool btimer_open;
    bool paused;              /* the local ports are paused (back-pressure) */
    unsigned closing;         /* timers still closing */
    bool down;                /* a link_down fault holds the whole segment */
    px_impair_cfg seg_impair; /* the segment's own impairment */
    bool fault_on[PX_ETHSVC_MAX_FAULTS];
    uint64_t fault_next[PX_ETHSVC_MAX_FAULTS]; /* next start or end, UINT64_MAX: none */
    uint64_t down_drops;
    uint64_t pushbacks; /* times the ports were paused for a full member link */
    /* counters */
    uint64_t frames, bytes, flooded, local_unicast, remote_unicast, from_remote, remote_bad,
        vlan_drops, oversize, runts, to_remote_dropped;
    eseg *next_dirty;
};

struct elab {
    char name[64];
    char dir[4096];
    eseg **segs;
    uint32_t n_segs;
};

struct px_ethsvc {
    uv_loop_t *loop;
    px_ethsvc_io io;
    char self[64], data_ep[256], data_key[64];
    elab **labs;
    uint32_t n_labs;
    uv_check_t check;     /* flushes what I/O callbacks queued */
    uv_prepare_t prepare; /* ... and what check handles queued, before the loop waits */
    uv_idle_t kick;       /* then keeps that wait short: the transport sends next iteration */
    uv_timer_t sweep;
    px_msg *scratch;
    px_wbuf wb;
    uint8_t untag[PX_ETH_MAX_FRAME + 8]; /* port_in: a trunk's frame without its tag */
    uint8_t tag[PX_ETH_MAX_FRAME + 8];   /* deliver: a frame for a trunk, tagged */
    uint8_t cap[PX_ETH_MAX_FRAME + 8];   /* capture: a frame as a trunk carries it */
    pcap_t *pcap;                        /* dead handle: compiles capture filters */
    eseg *dirty;
    void (*done)(void *);
    void *done_ud;
    unsigned pending; /* handles still closing */
    bool closing;
};

static void release(px_ethsvc *s);

static uint64_t now_ns(const px_ethsvc *s)
{
    (void)s;
    return uv_hrtime();
}

static uint64_t now_ms(const px_ethsvc *s)
{
    return uv_now(s->loop);
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
    uint64_t now = now_ms(s);
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
static void on_prepare(uv_prepare_t *h)
{
    px_ethsvc *s = h->data;
    if (!s->dirty)
        return;
    flush_dirty(s);
    uv_idle_start(&s->kick, on_kick);
}

static void on_check(uv_check_t *h)
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

static void arm_timer(eseg *g);

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
    if (p->cut_until_ms && now_ms(g->svc) < p->cut_until_ms)
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
            arm_timer(g);
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
            arm_timer(g);
        return;
    }
    bridge(g, p->idx, vid, f, len);
}

static void cut_off(eport *p, const char *why)
{
    eseg *g = p->seg;
    p->cutoffs++;
    p->cut_until_ms = now_ms(g->svc) + CUTOFF_HOLD_MS;
    snprintf(p->cut_why, sizeof(p->cut_why), "%s", why);
    px_fdb_flush_port(g->fdb, p->idx);
    PX_WARN("eth", "port cut off", "lab=%s segment=%s port=%s why=\"%s\" hold_ms=%u", g->lab->name,
            g->cfg.name, p->cfg.name, why, CUTOFF_HOLD_MS);
    if (p->np)
        px_netport_cutoff(p->np, why, CUTOFF_HOLD_MS);
}

/* A frame from the guest (or TAP, or the uplink) on port p. */
static void port_in(eport *p, const uint8_t *f, size_t len)
{
    eseg *g = p->seg;
    char why[160];
    if (p->cut_until_ms) {
        if (now_ms(g->svc) < p->cut_until_ms)
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
            arm_timer(g);
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

static void arm_timer(eseg *g)
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
    arm_timer(g);
}

/* ---- ports ---- */

static void np_rx(void *ud, px_netport *np, const uint8_t *f, size_t len)
{
    (void)np;
    port_in(ud, f, len);
}

static void nat_out(void *ud, const uint8_t *f, size_t len)
{
    port_in(ud, f, len);
}

static px_err impair_make(const px_impair_cfg *c, uint64_t seed, px_impair **out)
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

static px_err port_impair(eport *p, const px_impair_cfg *eg, const px_impair_cfg *in)
{
    p->eg_cfg = *eg;
    p->in_cfg = *in;
    uint64_t seed = px_eth_seg_key(p->seg->cfg.name, p->cfg.name);
    px_impair *old_eg = p->eg, *old_in = p->in;
    px_err err = impair_make(eg, seed, &p->eg);
    if (!err)
        err = impair_make(in, seed ^ 0x5555u, &p->in);
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
        err = port_impair(p, &c->egress, &c->ingress);
    if (err) {
        port_free(p);
        return err;
    }
    *out = p;
    return PX_OK;
}

/* The segment's own impairment becomes c; frames queued under an
 * impairment that is switched off go on at once. */
static px_err seg_impair_set(eseg *g, const px_impair_cfg *c)
{
    px_impair *old = g->imp;
    px_err err = impair_make(c, g->key, &g->imp);
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

/* ---- scheduled faults (the topology's link_down and impair) ---- */

static int32_t port_index(const eseg *g, const char *name)
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
    int32_t pi = f->port[0] ? port_index(g, f->port) : -1;
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
        port_impair(p, on ? &f->egress : &p->cfg.egress, on ? &f->ingress : &p->cfg.ingress);
        p->live = false;
    } else {
        seg_impair_set(g, on ? &f->egress : &g->seg_impair);
    }
    arm_timer(g);
}

static void on_fault_timer(uv_timer_t *t);

/* Every fault whose time has come changes state (a timer that fired late,
 * or a segment rebuilt by a new plan, catches up in order); then the
 * timer waits for the next change. */
static void faults_run(eseg *g)
{
    uint64_t now = now_ms(g->svc), next = UINT64_MAX;
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
        err = impair_make(&c->impair, g->key, &g->imp);
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
    g->start_ms = old ? old->start_ms : now_ms(s);
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
                err = port_impair(kept, &c->ports[i].egress, &c->ports[i].ingress);
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

static elab *lab_find(px_ethsvc *s, const char *name, uint32_t *idx)
{
    for (uint32_t i = 0; i < s->n_labs; i++)
        if (strcmp(s->labs[i]->name, name) == 0) {
            if (idx)
                *idx = i;
            return s->labs[i];
        }
    return NULL;
}

static eseg *seg_find(const elab *l, const char *name)
{
    for (uint32_t i = 0; l && i < l->n_segs; i++)
        if (strcmp(l->segs[i]->cfg.name, name) == 0)
            return l->segs[i];
    return NULL;
}

px_err px_ethsvc_lab_apply(px_ethsvc *s, const char *lab, const char *labdir,
                           const px_ethsvc_seg_cfg *segs, uint32_t n, px_errmsg *em)
{
    elab *l = lab_find(s, lab, NULL);
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
        eseg *old = seg_find(l, segs[i].name);
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
    elab *l = lab_find(s, lab, &i);
    if (!l)
        return;
    for (uint32_t k = 0; k < l->n_segs; k++)
        seg_free(l->segs[k]);
    free(l->segs);
    free(l);
    s->labs[i] = s->labs[--s->n_labs];
}

static eseg *seg_by_key(px_ethsvc *s, uint64_t key)
{
    for (uint32_t i = 0; i < s->n_labs; i++)
        for (uint32_t k = 0; k < s->labs[i]->n_segs; k++)
            if (s->labs[i]->segs[k]->key == key)
                return s->labs[i]->segs[k];
    return NULL;
}

/* ---- messages from members and tools ---- */

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
        c->renewed_ms = now_ms(s);
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
    if (port[0] && (c->port = port_index(g, port)) < 0)
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
    c->renewed_ms = now_ms(s);
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

static void on_sweep(uv_timer_t *t)
{
    px_ethsvc *s = t->data;
    uint64_t ms = now_ms(s), ns = now_ns(s);
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
    uint64_t ms = now_ms(s);
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
           ",\"vlan_drops\":%" PRIu64
           ",\"oversize\":%" PRIu64 ",\"runts\":%" PRIu64 ",\"macs\":%u,\"ports\":[",
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
    int32_t pi = whole ? -1 : port_index(g, target);
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
        if (port_impair(p, &eg, &in) != PX_OK) {
            out->code = PX_E_NOMEM;
            snprintf(out->text, sizeof(out->text), "node %s: out of memory", s->self);
            return;
        }
        p->live = true;
        PX_INFO("eth", "impairment set", "segment=%s port=%s", g->cfg.name, p->cfg.name);
    } else if (strcmp(sub, "reset") == 0) {
        p->live = false;
        p->cut_until_ms = 0;
        port_impair(p, &p->cfg.egress, &p->cfg.ingress);
    } else {
        out->code = PX_E_INVAL;
        snprintf(out->text, sizeof(out->text),
                 "unknown link command '%s'; expected show, set or reset", sub);
        return;
    }
    arm_timer(g);
    tool_show(g, p->cfg.name, out);
}

void px_ethsvc_tool(px_ethsvc *s, const px_msg_tool *t, px_ethsvc_reply *out)
{
    char lab[64], net[64], what[16] = "";
    px_str_copy(lab, sizeof(lab), t->lab);
    px_str_copy(net, sizeof(net), t->net);
    if (t->n_args)
        px_str_copy(what, sizeof(what), t->args[0]);
    eseg *g = seg_find(lab_find(s, lab, NULL), net);
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
    uv_check_start(&s->check, on_check);
    uv_prepare_init(loop, &s->prepare);
    s->prepare.data = s;
    uv_prepare_start(&s->prepare, on_prepare);
    uv_unref((uv_handle_t *)&s->prepare);
    uv_idle_init(loop, &s->kick);
    s->kick.data = s;
    uv_unref((uv_handle_t *)&s->kick);
    uv_unref((uv_handle_t *)&s->check);
    uv_timer_init(loop, &s->sweep);
    s->sweep.data = s;
    uv_timer_start(&s->sweep, on_sweep, FDB_SWEEP_MS, FDB_SWEEP_MS);
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
