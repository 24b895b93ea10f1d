/* plexus — the CAN bus service of one node. See service.h. */
#include "fabric/can-bus/service.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "devices/can/endpoint.h"
#include "fabric/can-bus/canfmt.h"
#include "fabric/can-bus/proto.h"
#include "fabric/can-bus/timing.h"
#include "fabric/core/fsutil.h"
#include "fabric/core/log.h"

#define MAX_BUSES         256u
#define HOUSEKEEP_MS      1000u
#define TOOL_TIMEOUT_MS   6000u
#define INFLIGHT_STALL_MS 3000u

struct svc_bus;

typedef struct svc_ep {
    px_cansvc_ep_cfg cfg;
    px_canep *ep;
    struct svc_bus *bus;
    uint32_t inflight;
    uint64_t next_tag;
    uint64_t progress_ms; /* last TX-complete or refusal */
    uint64_t refused;     /* frames the home did not put on the bus */
    uint64_t unconfirmed; /* frames whose TX-complete never came */
    uint64_t fd_refused;  /* FD frames on a classic bus */
    uint64_t to_guest;    /* frames handed to the guest */
    bool paused;
} svc_ep;

typedef struct svc_tool {
    bool used;
    px_peer peer;
    uint32_t id;
    uint64_t last_ms;
    uint64_t submitted;
} svc_tool;

typedef struct svc_sched {
    bool active;
    uint64_t next_ms; /* next start (inactive) or end (active); UINT64_MAX: never */
    uint64_t last_error_ms;
} svc_sched;

typedef struct svc_batch {
    uint32_t n;
    px_can_rec recs[PX_WIRE_MAX_CAN_BATCH];
    uint8_t frames[PX_WIRE_MAX_CAN_BATCH][PX_CAN_PACKED_MAX];
} svc_batch;

typedef struct svc_bus {
    px_cansvc *svc;
    char lab[64];
    char candir[4096];
    px_cansvc_bus_cfg cfg;
    uint64_t key;
    uint32_t self_id;
    bool is_home, is_member;
    /* home */
    px_canbus_home *home;
    uint32_t member_ids[PX_CANSVC_MAX_MEMBERS];
    bool has_remote; /* members other than this node */
    svc_tool tools[PX_CANSVC_MAX_TOOLS];
    uint32_t n_tools;    /* tools[] in use */
    int64_t wall_off_ns; /* bus time (CLOCK_MONOTONIC) + this = Unix time */
    uint64_t next_wake_ns;
    svc_batch out;    /* DELIVER for remote members and tools */
    uint64_t wire_ns; /* wire time of emitted frames, both modes */
    uint64_t refused, bad_frames, unauthorised, fd_refused;
    uint64_t load_mark_ms, load_mark_wire_ns;
    FILE *rec_log, *rec_pcap;
    px_cangw gws[PX_CANSVC_MAX_GWS]; /* rule + counters, from cfg.gws */
    uint64_t gw_lost;                /* gatewayed frames the destination could not take */
    /* faults: every node of the bus keeps the same state (tool commands go
     * to all of them); the home judges submits, members deliveries */
    px_canfault fault;
    uint64_t lab_start_ms;
    svc_sched sched[PX_CANSVC_MAX_FAULTS];
    /* member */
    px_canbus_member member;
    bool synced;
    svc_ep *eps[PX_CANBUS_MAX_EPS];
    uint32_t n_eps;
    svc_batch sub; /* SUBMIT towards a remote home */
    uint64_t start_ms;
} svc_bus;

struct px_cansvc {
    uv_loop_t *loop;
    px_cansvc_io io;
    char self[64];
    char data_ep[256];
    char data_key[64];
    svc_bus *buses[MAX_BUSES];
    uint32_t n_buses;
    px_msg *scratch; /* encoding; px_msg is large: one per service */
    px_wbuf wb;
    uv_timer_t wake;      /* timed buses: next frame end */
    uv_timer_t housekeep; /* tools, stalled windows, recording flush */
    uv_timer_t sched;     /* scheduled topology faults */
    unsigned open_handles;
    void (*done)(void *ud);
    void *done_ud;
};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int64_t wall_offset(void)
{
    struct timespec r, m;
    clock_gettime(CLOCK_REALTIME, &r);
    clock_gettime(CLOCK_MONOTONIC, &m);
    return ((int64_t)r.tv_sec - (int64_t)m.tv_sec) * 1000000000ll +
           ((int64_t)r.tv_nsec - (int64_t)m.tv_nsec);
}

static uint32_t window(const svc_bus *b)
{
    return b->cfg.mode == PX_CANBUS_TIMED ? PX_CANSVC_WINDOW_TIMED : PX_CANSVC_WINDOW_IDEAL;
}

/* ---- sending ---- */

static px_err encode_can(px_cansvc *s, uint64_t bus, uint32_t op, uint32_t node,
                         const px_can_rec *recs, uint32_t n)
{
    px_msg *m = s->scratch;
    memset(&m->env, 0, sizeof(m->env));
    m->env.type = PX_MSG_CAN;
    m->body.can.bus = bus;
    m->body.can.op = op;
    m->body.can.node = node;
    m->body.can.n_recs = n;
    if (n)
        memcpy(m->body.can.recs, recs, n * sizeof(*recs));
    px_wbuf_reset(&s->wb);
    px_errmsg em = {{0}};
    px_err err = px_wire_encode(&s->wb, m, &em);
    if (err)
        PX_ERROR("can", "cannot encode a CAN message", "err=%s detail=\"%s\"", px_errname(err),
                 em.text);
    return err;
}

static void batch_add(svc_batch *b, const px_canbus_msg *m, uint64_t seq, uint64_t ts)
{
    uint32_t i = b->n++;
    size_t len = px_can_frame_pack(&m->frame, b->frames[i], sizeof(b->frames[i]));
    b->recs[i] = (px_can_rec){.seq = seq,
                              .ts_ns = ts,
                              .node = m->src_node,
                              .ep = m->src_ep,
                              .tag = m->src_tag,
                              .frame = {b->frames[i], (uint32_t)len}};
}

static void flush_out(svc_bus *b)
{
    if (!b->out.n)
        return;
    px_cansvc *s = b->svc;
    if (encode_can(s, b->key, PX_CAN_DELIVER, b->self_id, b->out.recs, b->out.n) == PX_OK) {
        for (uint32_t i = 0; i < b->cfg.n_members; i++)
            if (strcmp(b->cfg.members[i], s->self) != 0)
                s->io.to_node(s->io.ud, b->cfg.members[i], s->wb.data, s->wb.len);
        for (uint32_t i = 0; i < PX_CANSVC_MAX_TOOLS; i++)
            if (b->tools[i].used)
                s->io.to_peer(s->io.ud, &b->tools[i].peer, s->wb.data, s->wb.len);
    }
    b->out.n = 0;
}

static void flush_sub(svc_bus *b)
{
    if (!b->sub.n)
        return;
    px_cansvc *s = b->svc;
    if (encode_can(s, b->key, PX_CAN_SUBMIT, b->self_id, b->sub.recs, b->sub.n) == PX_OK)
        s->io.to_node(s->io.ud, b->cfg.home, s->wb.data, s->wb.len);
    b->sub.n = 0;
}

static void flush_bus(svc_bus *b)
{
    flush_sub(b);
    flush_out(b);
    for (uint32_t i = 0; i < b->n_eps; i++)
        px_canep_flush(b->eps[i]->ep);
}

/* ---- member side ---- */

static svc_ep *ep_by_id(svc_bus *b, uint32_t id)
{
    for (uint32_t i = 0; i < b->n_eps; i++)
        if (b->eps[i]->cfg.id == id)
            return b->eps[i];
    return NULL;
}

static void ep_progress(svc_ep *e)
{
    if (e->inflight)
        e->inflight--;
    e->progress_ms = uv_now(e->bus->svc->loop);
    if (e->paused && e->inflight < window(e->bus)) {
        e->paused = false;
        px_canep_pause(e->ep, false);
    }
}

static void member_rx(void *ud, uint32_t ep, const px_canbus_msg *m)
{
    svc_bus *b = ud;
    svc_ep *e = ep_by_id(b, ep);
    if (!e || !px_canfault_deliver(&b->fault, ep))
        return;
    /* A classic controller cannot take an FD frame; the bus is FD-only for
     * FD-capable controllers (the topology enforces it), so this is QEMU's
     * choice: it said whether it enabled FD frames. */
    if (px_canep_send(e->ep, &m->frame) == PX_OK)
        e->to_guest++;
}

/* The guest's own frame is complete. QEMU's controller model already
 * completed it towards the guest (its TX is instantaneous), so the frame
 * is not sent back: it only frees a place in the window. */
static void member_txdone(void *ud, uint32_t ep, const px_canbus_msg *m)
{
    (void)m;
    svc_bus *b = ud;
    svc_ep *e = ep_by_id(b, ep);
    if (e)
        ep_progress(e);
}

static void member_refused(svc_bus *b, uint32_t ep)
{
    svc_ep *e = ep_by_id(b, ep);
    if (!e)
        return;
    e->refused++;
    ep_progress(e);
}

static void member_deliver(svc_bus *b, const px_canbus_msg *m)
{
    /* A member that starts (or restarts) mid-bus takes the bus from where it
     * is: what it never could have seen is not "lost". */
    if (!b->synced) {
        b->synced = true;
        b->member.expect_seq = m->seq;
    }
    px_canbus_member_deliver(&b->member, m);
}

/* ---- home side ---- */

static void record_frame(svc_bus *b, const px_canbus_msg *m, uint64_t wall)
{
    uint64_t sec = wall / 1000000000ull;
    uint32_t usec = (uint32_t)(wall % 1000000000ull / 1000u);
    if (b->rec_log) {
        px_canfmt_log l = {.sec = sec, .usec = usec, .frame = m->frame};
        snprintf(l.ifname, sizeof(l.ifname), "%.15s", b->cfg.name);
        char line[PX_CANFMT_LINE_MAX];
        size_t n = 0;
        if (px_canfmt_format_log(&l, line, sizeof(line), &n, NULL) == PX_OK) {
            fwrite(line, 1, n, b->rec_log);
            fputc('\n', b->rec_log);
        }
    }
    if (b->rec_pcap)
        px_canpcap_write_frame(b->rec_pcap, sec, usec, &m->frame, NULL);
}

static void home_submit(svc_bus *b, uint32_t node, uint32_t ep, uint64_t tag, const px_can_frame *f,
                        const px_peer *tool);
static svc_bus *bus_find(px_cansvc *s, const char *lab, const char *name, uint32_t *idx);

/* Gateways of bus b (at its home): a frame on b that a rule forwards goes
 * to the destination bus's home, as a frame from this node's gateway
 * endpoint whose tag counts the gateways it crossed. */
static void gateways(svc_bus *b, const px_canbus_msg *m)
{
    uint32_t hops = m->src_ep == PX_CAN_GW_EP ? (uint32_t)m->src_tag : 0;
    for (uint32_t i = 0; i < b->cfg.n_gws; i++) {
        px_can_frame out;
        if (px_cangw_route(&b->gws[i], &m->frame, hops, &out) != PX_CANGW_FORWARD)
            continue;
        svc_bus *d = bus_find(b->svc, b->lab, b->cfg.gws[i].to, NULL);
        if (!d) {
            b->gw_lost++;
            continue;
        }
        if (d->is_home) {
            home_submit(d, d->self_id, PX_CAN_GW_EP, hops + 1, &out, NULL);
            flush_bus(d);
            continue;
        }
        px_canbus_msg g = {
            .src_node = d->self_id, .src_ep = PX_CAN_GW_EP, .src_tag = hops + 1, .frame = out};
        batch_add(&d->sub, &g, 0, 0);
        flush_sub(d);
    }
}

/* Wire time without stuff bits: the load figure of an ideal bus. (The
 * exact model, which timed buses run anyway, costs about a microsecond a
 * frame, a fifth of an ideal bus's home.) Classic: SOF, identifier, control,
 * CRC 15, delimiters, ACK, EOF and the 3-bit intermission. FD: the fields
 * after BRS up to the CRC delimiter go at the data bit rate when BRS is set. */
static uint64_t nominal_ns(const px_can_frame *f, uint32_t br, uint32_t dbr)
{
    bool ext = f->can_id & PX_CAN_EFF_FLAG;
    uint64_t data = (f->can_id & PX_CAN_RTR_FLAG) ? 0 : 8ull * f->len;
    if (!(f->flags & PX_CANFD_FDF))
        return ((ext ? 67u : 47u) + data) * 1000000000ull / br;
    uint64_t arb = (ext ? 36u : 17u) + 12u;                             /* ... BRS; ACK, EOF, IFS */
    uint64_t dp = 1u + 4u + data + 4u + (f->len > 16 ? 21u : 17u) + 1u; /* ESI .. CRC del */
    uint32_t rate = (f->flags & PX_CANFD_BRS) && dbr ? dbr : br;
    return arb * 1000000000ull / br + dp * 1000000000ull / rate;
}

static void home_emit(void *ud, const px_canbus_msg *m)
{
    svc_bus *b = ud;
    uint64_t wall = (uint64_t)((int64_t)m->ts_ns + b->wall_off_ns);
    uint64_t dur = 0;
    if (b->cfg.mode == PX_CANBUS_IDEAL)
        b->wire_ns +=
            b->cfg.bitrate ? nominal_ns(&m->frame, b->cfg.bitrate, b->cfg.data_bitrate) : 0;
    else if (px_can_duration_ns(&m->frame, b->cfg.bitrate,
                                b->cfg.data_bitrate ? b->cfg.data_bitrate : b->cfg.bitrate, &dur,
                                NULL) == PX_OK)
        b->wire_ns += dur;
    record_frame(b, m, wall);
    px_canbus_msg w = *m;
    w.ts_ns = wall;
    if (b->is_member)
        member_deliver(b, &w);
    if (b->has_remote || b->n_tools) {
        batch_add(&b->out, &w, w.seq, wall);
        if (b->out.n == PX_WIRE_MAX_CAN_BATCH)
            flush_out(b);
    }
    if (b->cfg.n_gws)
        gateways(b, m);
}

/* An error frame from the fault state: for the whole bus (the home puts it
 * on the bus) or for one controller (its node hands it over). */
static void fault_notify(void *ud, uint32_t ep, const px_can_frame *err)
{
    svc_bus *b = ud;
    if (ep == PX_CANFAULT_ALL) {
        if (b->is_home)
            home_submit(b, b->self_id, 0, 0, err, NULL);
        return;
    }
    svc_ep *e = ep_by_id(b, ep);
    if (e && px_canep_send(e->ep, err) == PX_OK)
        e->to_guest++;
}

static const char *member_name(const svc_bus *b, uint32_t id)
{
    for (uint32_t i = 0; i < b->cfg.n_members; i++)
        if (b->member_ids[i] == id)
            return b->cfg.members[i];
    return NULL;
}

static bool peer_eq(const px_peer *a, const px_peer *b)
{
    return a->id_len == b->id_len && memcmp(a->id, b->id, a->id_len) == 0;
}

/* Tools are told apart by their connection: two CLIs with one key are two
 * tools with one member id. */
static svc_tool *tool_by_peer(svc_bus *b, const px_peer *p)
{
    for (uint32_t i = 0; p && i < PX_CANSVC_MAX_TOOLS; i++)
        if (b->tools[i].used && peer_eq(&b->tools[i].peer, p))
            return &b->tools[i];
    return NULL;
}

/* Tell a sender its frame did not go on the bus (tool: its connection). */
static void refuse(svc_bus *b, uint32_t node, uint32_t ep, uint64_t tag, const px_can_frame *f,
                   const px_peer *tool)
{
    px_cansvc *s = b->svc;
    b->refused++;
    if (node == b->self_id) {
        member_refused(b, ep);
        return;
    }
    uint8_t packed[PX_CAN_PACKED_MAX];
    size_t len = f ? px_can_frame_pack(f, packed, sizeof(packed)) : 0;
    if (!len) { /* the frame itself was bad: say which tag with an empty frame */
        memset(packed, 0, 6);
        len = 6;
    }
    px_can_rec r = {.seq = 0, .node = node, .ep = ep, .tag = tag, .frame = {packed, (uint32_t)len}};
    if (encode_can(s, b->key, PX_CAN_DELIVER, b->self_id, &r, 1) != PX_OK)
        return;
    const char *name = member_name(b, node);
    if (tool)
        s->io.to_peer(s->io.ud, tool, s->wb.data, s->wb.len);
    else if (name)
        s->io.to_node(s->io.ud, name, s->wb.data, s->wb.len);
}

static void schedule_wake(px_cansvc *s);

/* A frame for the bus from member node `node` (or a tool, or a gateway).
 * Guest controllers' frames are judged by the fault state of their
 * endpoint; tools' and gateways' only by the bus's. */
static void home_submit(svc_bus *b, uint32_t node, uint32_t ep, uint64_t tag, const px_can_frame *f,
                        const px_peer *tool)
{
    if ((f->flags & PX_CANFD_FDF) && !b->cfg.fd) {
        b->fd_refused++;
        refuse(b, node, ep, tag, f, tool);
        return;
    }
    uint32_t fault_ep = (tool || ep == PX_CAN_GW_EP) ? 0 : ep;
    px_can_frame err;
    px_canfault_verdict v = px_canfault_submit(&b->fault, fault_ep, &err);
    if (v != PX_CANFAULT_PASS) {
        refuse(b, node, ep, tag, f, tool);
        if (v == PX_CANFAULT_CORRUPT)
            f = &err, node = b->self_id, ep = 0, tag = 0, tool = NULL; /* on the bus instead */
        else
            return;
    }
    uint64_t now = mono_ns();
    px_err e = px_canbus_home_submit(b->home, node, ep, tag, f, now);
    if (e) {
        if (ep != 0 || node != b->self_id)
            refuse(b, node, ep, tag, f, tool);
        return;
    }
    if (b->cfg.mode == PX_CANBUS_TIMED) {
        b->next_wake_ns = px_canbus_home_advance(b->home, now);
        schedule_wake(b->svc);
    }
}

static void on_wake(uv_timer_t *t)
{
    px_cansvc *s = t->data;
    uint64_t now = mono_ns();
    for (uint32_t i = 0; i < s->n_buses; i++) {
        svc_bus *b = s->buses[i];
        if (b->is_home && b->cfg.mode == PX_CANBUS_TIMED && b->next_wake_ns <= now) {
            b->next_wake_ns = px_canbus_home_advance(b->home, now);
            flush_bus(b);
        }
    }
    schedule_wake(s);
}

static void schedule_wake(px_cansvc *s)
{
    uint64_t next = UINT64_MAX;
    for (uint32_t i = 0; i < s->n_buses; i++)
        if (s->buses[i]->is_home && s->buses[i]->next_wake_ns < next)
            next = s->buses[i]->next_wake_ns;
    if (next == UINT64_MAX) {
        uv_timer_stop(&s->wake);
        return;
    }
    uint64_t now = mono_ns();
    uint64_t ms = next > now ? (next - now + 999999) / 1000000 : 0;
    uv_timer_start(&s->wake, on_wake, ms, 0);
}

/* ---- endpoints: frames from QEMU ---- */

static void ep_rx(void *ud, px_canep *pe, const px_can_frame *f)
{
    (void)pe;
    svc_ep *e = ud;
    svc_bus *b = e->bus;
    if ((f->flags & PX_CANFD_FDF) && !b->cfg.fd) {
        e->fd_refused++;
        return;
    }
    uint64_t tag = ++e->next_tag;
    e->inflight++;
    if (e->inflight >= window(b) && !e->paused) {
        e->paused = true;
        px_canep_pause(e->ep, true);
    }
    if (b->is_home) {
        home_submit(b, b->self_id, e->cfg.id, tag, f, NULL);
        return;
    }
    svc_batch *sb = &b->sub;
    px_canbus_msg m = {.src_node = b->self_id, .src_ep = e->cfg.id, .src_tag = tag, .frame = *f};
    batch_add(sb, &m, 0, 0);
    if (sb->n == PX_WIRE_MAX_CAN_BATCH)
        flush_sub(b);
}

static void ep_batch(void *ud, px_canep *pe)
{
    (void)pe;
    svc_ep *e = ud;
    flush_bus(e->bus);
}

static void ep_free(svc_ep *e)
{
    if (e->ep)
        px_canep_close(e->ep);
    free(e);
}

static px_err ep_new(svc_bus *b, const px_cansvc_ep_cfg *c, px_errmsg *em)
{
    px_cansvc *s = b->svc;
    if (b->n_eps == PX_CANBUS_MAX_EPS)
        return px_errmsg_set(em, PX_E_TOOBIG, "bus %s: more than %u controllers on one node",
                             b->cfg.name, PX_CANBUS_MAX_EPS);
    svc_ep *e = calloc(1, sizeof(*e));
    if (!e)
        return px_errmsg_set(em, PX_E_NOMEM, "bus %s: out of memory", b->cfg.name);
    e->cfg = *c;
    e->bus = b;
    e->progress_ms = uv_now(s->loop);
    char name[200];
    snprintf(name, sizeof(name), "%s/%s/%s", b->lab, c->guest, c->ifname);
    px_canep_opts o = {.path = c->path,
                       .name = name,
                       .id = c->id,
                       .max_batch = window(b),
                       .on_rx = ep_rx,
                       .on_batch = ep_batch,
                       .ud = e};
    px_err err = c->socketcan_if[0]
                     ? px_canep_open_socketcan(s->loop, c->socketcan_if, &o, &e->ep, em)
                     : px_canep_open(s->loop, &o, &e->ep, em);
    if (err) {
        free(e);
        if (!c->socketcan_if[0] || !em)
            return err;
        px_errmsg why = *em; /* which bus: a host may lack AF_CAN for one */
        return px_errmsg_set(em, err, "bus %s: %s", b->cfg.name, why.text);
    }
    px_canbus_member_attach(&b->member, c->id);
    b->eps[b->n_eps++] = e;
    return PX_OK;
}

/* ---- buses ---- */

static void rec_close(svc_bus *b)
{
    if (b->rec_log)
        fclose(b->rec_log);
    if (b->rec_pcap)
        fclose(b->rec_pcap);
    b->rec_log = b->rec_pcap = NULL;
}

static void bus_free(svc_bus *b)
{
    flush_bus(b);
    for (uint32_t i = 0; i < b->n_eps; i++)
        ep_free(b->eps[i]);
    rec_close(b);
    free(b->home);
    free(b);
}

static svc_bus *bus_find(px_cansvc *s, const char *lab, const char *name, uint32_t *idx)
{
    for (uint32_t i = 0; i < s->n_buses; i++)
        if (strcmp(s->buses[i]->lab, lab) == 0 && strcmp(s->buses[i]->cfg.name, name) == 0) {
            if (idx)
                *idx = i;
            return s->buses[i];
        }
    return NULL;
}

/* (Re)configure b from c, keeping endpoints whose id stays. */
static px_err bus_configure(svc_bus *b, const px_cansvc_bus_cfg *c, px_errmsg *em)
{
    px_cansvc *s = b->svc;
    bool home_changed = !b->home || strcmp(b->cfg.home, c->home) != 0 || b->cfg.mode != c->mode ||
                        b->cfg.bitrate != c->bitrate || b->cfg.data_bitrate != c->data_bitrate ||
                        b->cfg.fd != c->fd;
    /* Endpoints that leave. */
    for (uint32_t i = 0; i < b->n_eps;) {
        bool keep = false;
        for (uint32_t k = 0; k < c->n_eps && !keep; k++)
            keep = c->eps[k].id == b->eps[i]->cfg.id &&
                   strcmp(c->eps[k].path, b->eps[i]->cfg.path) == 0 &&
                   strcmp(c->eps[k].socketcan_if, b->eps[i]->cfg.socketcan_if) == 0;
        if (keep) {
            i++;
            continue;
        }
        px_canbus_member_detach(&b->member, b->eps[i]->cfg.id);
        ep_free(b->eps[i]);
        b->eps[i] = b->eps[--b->n_eps];
    }
    b->cfg.n_members = c->n_members;
    memcpy(b->cfg.members, c->members, sizeof(c->members));
    snprintf(b->cfg.home, sizeof(b->cfg.home), "%s", c->home);
    b->cfg.mode = c->mode;
    b->cfg.bitrate = c->bitrate;
    b->cfg.data_bitrate = c->data_bitrate;
    b->cfg.fd = c->fd;
    b->is_home = strcmp(c->home, s->self) == 0;
    b->has_remote = false;
    for (uint32_t i = 0; i < c->n_members; i++) {
        b->member_ids[i] = px_can_member_id(c->members[i]);
        if (strcmp(c->members[i], s->self) != 0)
            b->has_remote = true;
    }
    if (home_changed) {
        free(b->home);
        b->home = NULL;
        b->next_wake_ns = UINT64_MAX;
        if (b->is_home) {
            b->home = malloc(sizeof(*b->home));
            if (!b->home)
                return px_errmsg_set(em, PX_E_NOMEM, "bus %s: out of memory", c->name);
            if (px_canbus_home_init(b->home, c->mode, c->bitrate, c->data_bitrate, home_emit, b) !=
                PX_OK) {
                free(b->home);
                b->home = NULL;
                return px_errmsg_set(em, PX_E_CONFIG, "bus %s: timed mode needs a bit rate",
                                     c->name);
            }
            b->wall_off_ns = wall_offset();
        }
        b->synced = false;
        /* Frames in flight to the old home will never come back: count
         * them and give every controller its window back. */
        for (uint32_t i = 0; i < b->n_eps; i++) {
            svc_ep *e = b->eps[i];
            e->unconfirmed += e->inflight;
            e->inflight = 0;
            if (e->paused) {
                e->paused = false;
                px_canep_pause(e->ep, false);
            }
        }
    }
    /* Endpoints that arrive. */
    for (uint32_t k = 0; k < c->n_eps; k++) {
        if (ep_by_id(b, c->eps[k].id))
            continue;
        px_err err = ep_new(b, &c->eps[k], em);
        if (err)
            return err;
    }
    b->cfg.n_eps = c->n_eps;
    memcpy(b->cfg.eps, c->eps, sizeof(c->eps));
    b->is_member = b->n_eps > 0;
    b->cfg.n_all = c->n_all;
    memcpy(b->cfg.all, c->all, c->n_all * sizeof(c->all[0]));
    if (b->cfg.loss_ppm != c->loss_ppm || b->cfg.corrupt_ppm != c->corrupt_ppm || home_changed) {
        b->cfg.loss_ppm = c->loss_ppm;
        b->cfg.corrupt_ppm = c->corrupt_ppm;
        if (px_canfault_configure(&b->fault, c->loss_ppm, c->corrupt_ppm) != PX_OK)
            return px_errmsg_set(em, PX_E_CONFIG, "bus %s: impairment out of range", c->name);
    }
    b->cfg.n_gws = b->is_home ? c->n_gws : 0;
    for (uint32_t i = 0; i < b->cfg.n_gws; i++) {
        b->cfg.gws[i] = c->gws[i];
        if (memcmp(&b->gws[i].rule, &c->gws[i].rule, sizeof(c->gws[i].rule)) != 0)
            b->gws[i] = (px_cangw){.rule = c->gws[i].rule};
    }
    if (b->cfg.n_faults != c->n_faults ||
        memcmp(b->cfg.faults, c->faults, c->n_faults * sizeof(c->faults[0])) != 0) {
        b->cfg.n_faults = c->n_faults;
        memcpy(b->cfg.faults, c->faults, c->n_faults * sizeof(c->faults[0]));
        for (uint32_t i = 0; i < c->n_faults; i++)
            b->sched[i] = (svc_sched){.next_ms = b->lab_start_ms + c->faults[i].at_ms};
    }
    return PX_OK;
}

px_err px_cansvc_lab_apply(px_cansvc *s, const char *lab, const char *labdir,
                           const px_cansvc_bus_cfg *buses, uint32_t n, px_errmsg *em)
{
    char candir[4096];
    snprintf(candir, sizeof(candir), "%s/can", labdir);
    if (n) {
        px_err err = px_mkdir_p(candir, 0700, em);
        if (err)
            return err;
    }
    /* Buses that leave. */
    for (uint32_t i = 0; i < s->n_buses;) {
        svc_bus *b = s->buses[i];
        bool keep = strcmp(b->lab, lab) != 0;
        for (uint32_t k = 0; k < n && !keep; k++)
            keep = strcmp(buses[k].name, b->cfg.name) == 0;
        if (keep) {
            i++;
            continue;
        }
        bus_free(b);
        s->buses[i] = s->buses[--s->n_buses];
    }
    for (uint32_t k = 0; k < n; k++) {
        svc_bus *b = bus_find(s, lab, buses[k].name, NULL);
        if (!b) {
            if (s->n_buses == MAX_BUSES)
                return px_errmsg_set(em, PX_E_TOOBIG, "bus %s: more than %u CAN buses on a node",
                                     buses[k].name, MAX_BUSES);
            b = calloc(1, sizeof(*b));
            if (!b)
                return px_errmsg_set(em, PX_E_NOMEM, "bus %s: out of memory", buses[k].name);
            b->svc = s;
            snprintf(b->lab, sizeof(b->lab), "%s", lab);
            snprintf(b->candir, sizeof(b->candir), "%s", candir);
            snprintf(b->cfg.name, sizeof(b->cfg.name), "%s", buses[k].name);
            b->key = px_can_bus_key(lab, buses[k].name);
            b->self_id = px_can_member_id(s->self);
            b->next_wake_ns = UINT64_MAX;
            b->start_ms = uv_now(s->loop);
            b->load_mark_ms = b->start_ms;
            px_canbus_member_init(&b->member, b->self_id, member_rx, member_txdone, b);
            px_canfault_init(&b->fault, b->key, fault_notify, b);
            b->lab_start_ms = b->start_ms;
            for (uint32_t i = 0; i < s->n_buses; i++)
                if (s->buses[i]->key == b->key) {
                    free(b);
                    return px_errmsg_set(em, PX_E_EXISTS,
                                         "bus %s of lab %s: its key collides with bus %s of lab "
                                         "%s (rename one)",
                                         buses[k].name, lab, s->buses[i]->cfg.name,
                                         s->buses[i]->lab);
                }
            s->buses[s->n_buses++] = b;
        }
        px_err err = bus_configure(b, &buses[k], em);
        if (err)
            return err;
    }
    schedule_wake(s);
    return PX_OK;
}

void px_cansvc_lab_remove(px_cansvc *s, const char *lab)
{
    for (uint32_t i = 0; i < s->n_buses;) {
        if (strcmp(s->buses[i]->lab, lab) != 0) {
            i++;
            continue;
        }
        bus_free(s->buses[i]);
        s->buses[i] = s->buses[--s->n_buses];
    }
    schedule_wake(s);
}

/* ---- the data plane ---- */

static svc_bus *bus_by_key(px_cansvc *s, uint64_t key)
{
    for (uint32_t i = 0; i < s->n_buses; i++)
        if (s->buses[i]->key == key)
            return s->buses[i];
    return NULL;
}

static bool from_node(px_cansvc *s, const char *node, const px_peer *from)
{
    const char *key = s->io.node_key(s->io.ud, node);
    return key && strcmp(key, from->key_z85) == 0;
}

static uint32_t tool_id_of(const px_peer *from)
{
    char name[80];
    snprintf(name, sizeof(name), "tool:%s", from->key_z85);
    return px_can_member_id(name);
}

static void on_join(svc_bus *b, const px_peer *from, const px_msg_can *m, bool leave)
{
    if (m->node != tool_id_of(from)) {
        b->unauthorised++;
        return;
    }
    svc_tool *t = tool_by_peer(b, from);
    if (leave) {
        if (t) {
            t->used = false;
            b->n_tools--;
        }
        return;
    }
    if (!t) {
        for (uint32_t i = 0; i < PX_CANSVC_MAX_TOOLS && !t; i++)
            if (!b->tools[i].used)
                t = &b->tools[i];
        if (!t) {
            PX_WARN("can", "too many tools on a bus; join refused", "lab=%s bus=%s max=%u", b->lab,
                    b->cfg.name, PX_CANSVC_MAX_TOOLS);
            return;
        }
        memset(t, 0, sizeof(*t));
        t->used = true;
        b->n_tools++;
        t->id = m->node;
        PX_INFO("can", "tool joined bus", "lab=%s bus=%s", b->lab, b->cfg.name);
    }
    t->peer = *from;
    t->last_ms = uv_now(b->svc->loop);
}

static void on_submit(svc_bus *b, const px_peer *from, const px_msg_can *m)
{
    const char *name = member_name(b, m->node);
    svc_tool *t = tool_by_peer(b, from);
    if (t && t->id != m->node)
        t = NULL;
    if (!b->is_home || !((name && from_node(b->svc, name, from)) || t)) {
        b->unauthorised++;
        return;
    }
    if (t)
        t->submitted += m->n_recs;
    for (uint32_t i = 0; i < m->n_recs; i++) {
        const px_can_rec *r = &m->recs[i];
        px_can_frame f;
        if (px_can_frame_unpack(r->frame.ptr, r->frame.len, &f) != PX_CAN_OK) {
            b->bad_frames++;
            refuse(b, m->node, r->ep, r->tag, NULL, t ? from : NULL);
            continue;
        }
        home_submit(b, m->node, r->ep, r->tag, &f, t ? from : NULL);
    }
}

static void on_deliver(svc_bus *b, const px_peer *from, const px_msg_can *m)
{
    if (b->is_home || !from_node(b->svc, b->cfg.home, from)) {
        b->unauthorised++;
        return;
    }
    for (uint32_t i = 0; i < m->n_recs; i++) {
        const px_can_rec *r = &m->recs[i];
        if (r->seq == 0) {
            if (r->node == b->self_id)
                member_refused(b, r->ep);
            continue;
        }
        px_canbus_msg cm = {.seq = r->seq,
                            .ts_ns = r->ts_ns,
                            .src_node = r->node,
                            .src_ep = r->ep,
                            .src_tag = r->tag};
        if (px_can_frame_unpack(r->frame.ptr, r->frame.len, &cm.frame) != PX_CAN_OK) {
            /* Its sequence number is then missing: counted as lost. */
            b->bad_frames++;
            continue;
        }
        member_deliver(b, &cm);
    }
}

void px_cansvc_on_msg(px_cansvc *s, const px_peer *from, const px_msg_can *m)
{
    svc_bus *b = bus_by_key(s, m->bus);
    if (!b) {
        PX_DEBUG("can", "message for an unknown bus", "bus=%016llx op=%u",
                 (unsigned long long)m->bus, m->op);
        return;
    }
    switch (m->op) {
    case PX_CAN_SUBMIT:
        on_submit(b, from, m);
        break;
    case PX_CAN_DELIVER:
        on_deliver(b, from, m);
        break;
    case PX_CAN_JOIN:
    case PX_CAN_LEAVE:
        if (b->is_home)
            on_join(b, from, m, m->op == PX_CAN_LEAVE);
        break;
    default:
        break;
    }
    flush_bus(b);
}

/* ---- housekeeping ---- */

static void on_housekeep(uv_timer_t *t)
{
    px_cansvc *s = t->data;
    uint64_t now = uv_now(s->loop);
    for (uint32_t i = 0; i < s->n_buses; i++) {
        svc_bus *b = s->buses[i];
        for (uint32_t k = 0; k < PX_CANSVC_MAX_TOOLS; k++)
            if (b->tools[k].used && now - b->tools[k].last_ms > TOOL_TIMEOUT_MS) {
                b->tools[k].used = false;
                b->n_tools--;
                PX_INFO("can", "tool left bus (silent)", "lab=%s bus=%s", b->lab, b->cfg.name);
            }
        for (uint32_t k = 0; k < b->n_eps; k++) {
            svc_ep *e = b->eps[k];
            /* On a timed bus a frame that keeps losing arbitration may
             * wait as long as higher-priority traffic lasts: not a stall. */
            if (e->inflight && b->cfg.mode == PX_CANBUS_IDEAL &&
                now - e->progress_ms > INFLIGHT_STALL_MS) {
                /* The home never answered (unreachable, restarted): count
                 * the frames and take the endpoint's window back. */
                PX_WARN("can", "frames never confirmed by the bus home",
                        "lab=%s bus=%s ep=%s "
                        "frames=%u home=%s",
                        b->lab, b->cfg.name, px_canep_name(e->ep), e->inflight, b->cfg.home);
                e->unconfirmed += e->inflight;
                e->inflight = 1;
                ep_progress(e);
            }
        }
        if (b->rec_log)
            fflush(b->rec_log);
        if (b->rec_pcap)
            fflush(b->rec_pcap);
    }
}

/* ---- scheduled faults (topology `faults:`) ---- */

#define CAN_ERROR_EVERY_MS 100u /* error frames while a can_error fault lasts */

static void on_sched(uv_timer_t *t)
{
    px_cansvc *s = t->data;
    uint64_t now = uv_now(s->loop);
    for (uint32_t i = 0; i < s->n_buses; i++) {
        svc_bus *b = s->buses[i];
        for (uint32_t k = 0; k < b->cfg.n_faults; k++) {
            const px_cansvc_fault_cfg *fc = &b->cfg.faults[k];
            svc_sched *sc = &b->sched[k];
            if (!sc->active && now >= sc->next_ms) {
                px_canfault_topo(&b->fault, fc->kind, true, fc->eps, fc->n_eps, fc->loss_ppm,
                                 fc->corrupt_ppm);
                PX_INFO("can", "fault started", "lab=%s bus=%s fault=%s", b->lab, b->cfg.name,
                        fc->name);
                sc->active = true;
                sc->last_error_ms = now;
                uint64_t start = sc->next_ms;
                sc->next_ms = fc->duration_ms ? start + fc->duration_ms : UINT64_MAX;
                if (fc->every_ms)
                    sc->last_error_ms = now; /* next start computed at the end */
            } else if (sc->active && now >= sc->next_ms) {
                px_canfault_topo(&b->fault, fc->kind, false, fc->eps, fc->n_eps, fc->loss_ppm,
                                 fc->corrupt_ppm);
                PX_INFO("can", "fault ended", "lab=%s bus=%s fault=%s", b->lab, b->cfg.name,
                        fc->name);
                sc->active = false;
                uint64_t start = sc->next_ms - fc->duration_ms;
                sc->next_ms = fc->every_ms ? start + fc->every_ms : UINT64_MAX;
            } else if (sc->active && fc->kind == PX_CANFAULT_K_CAN_ERROR && b->is_home &&
                       now - sc->last_error_ms >= CAN_ERROR_EVERY_MS) {
                px_can_frame err;
                px_canfault_error_frame(&b->fault, &err);
                home_submit(b, b->self_id, 0, 0, &err, NULL);
                sc->last_error_ms = now;
            }
        }
        flush_bus(b);
    }
}

/* ---- tool commands ---- */

static px_err resolve_guest(void *ud, const char *guest, uint32_t *eps, uint32_t cap, uint32_t *n)
{
    svc_bus *b = ud;
    *n = 0;
    for (uint32_t i = 0; i < b->cfg.n_all && *n < cap; i++)
        if (strcmp(b->cfg.all[i].guest, guest) == 0)
            eps[(*n)++] = b->cfg.all[i].id;
    return *n ? PX_OK : PX_E_NOTFOUND;
}

static const char *ep_label(void *ud, uint32_t ep)
{
    svc_bus *b = ud;
    for (uint32_t i = 0; i < b->cfg.n_all; i++)
        if (b->cfg.all[i].id == ep)
            return b->cfg.all[i].guest;
    return NULL;
}

static void reply_set(px_cansvc_reply *r, px_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void reply_set(px_cansvc_reply *r, px_err code, const char *fmt, ...)
{
    va_list ap;
    r->code = code;
    va_start(ap, fmt);
    vsnprintf(r->text, sizeof(r->text), fmt, ap);
    va_end(ap);
}

/* Append to a fixed buffer, never past its end. */
static void app(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void app(char *buf, size_t cap, const char *fmt, ...)
{
    size_t len = strlen(buf);
    if (len + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, cap - len, fmt, ap);
    va_end(ap);
}

static void tool_stats(px_cansvc *s, svc_bus *b, px_cansvc_reply *r)
{
    uint64_t now = uv_now(s->loop);
    char *t = r->text, *j = r->json;
    size_t tc = sizeof(r->text), jc = sizeof(r->json);
    app(j, jc, "{\"node\":\"%s\",\"bus\":\"%s\"", s->self, b->cfg.name);
    if (b->is_home) {
        const px_canbus_stats *st = &b->home->stats;
        double elapsed = (double)(now - b->start_ms) * 1e6;
        double load = elapsed > 0 ? 100.0 * (double)b->wire_ns / elapsed : 0;
        double win_ns = (double)(now - b->load_mark_ms) * 1e6;
        double load_now =
            win_ns > 0 ? 100.0 * (double)(b->wire_ns - b->load_mark_wire_ns) / win_ns : 0;
        b->load_mark_ms = now;
        b->load_mark_wire_ns = b->wire_ns;
        uint32_t ntools = b->n_tools;
        uint64_t drops = b->refused;
        app(t, tc,
            "bus %s (home %s, %s, %u bit/s%s): frames %llu, bytes %llu, load %.1f%% "
            "(%.1f%% since the last stats), errors %llu, drops %llu (pushed back %llu, "
            "invalid %llu, FD on a classic bus %llu), unauthorised messages %llu, "
            "members %u, tools %u\n",
            b->cfg.name, s->self, b->cfg.mode == PX_CANBUS_TIMED ? "timed" : "ideal",
            b->cfg.bitrate, b->cfg.fd ? ", FD" : "", (unsigned long long)st->frames,
            (unsigned long long)st->bytes, load, load_now, (unsigned long long)st->errors,
            (unsigned long long)drops, (unsigned long long)st->pushed_back,
            (unsigned long long)(st->invalid + b->bad_frames), (unsigned long long)b->fd_refused,
            (unsigned long long)b->unauthorised, b->cfg.n_members, ntools);
        app(j, jc,
            ",\"home\":{\"mode\":\"%s\",\"bitrate\":%u,\"data_bitrate\":%u,\"fd\":%s,"
            "\"frames\":%llu,\"bytes\":%llu,\"wire_ns\":%llu,\"load_pct\":%.3f,"
            "\"errors\":%llu,\"drops\":%llu,\"pushed_back\":%llu,\"invalid\":%llu,"
            "\"fd_refused\":%llu,\"unauthorised\":%llu,\"members\":%u,\"tools\":%u}",
            b->cfg.mode == PX_CANBUS_TIMED ? "timed" : "ideal", b->cfg.bitrate, b->cfg.data_bitrate,
            b->cfg.fd ? "true" : "false", (unsigned long long)st->frames,
            (unsigned long long)st->bytes, (unsigned long long)b->wire_ns, load,
            (unsigned long long)st->errors, (unsigned long long)drops,
            (unsigned long long)st->pushed_back, (unsigned long long)(st->invalid + b->bad_frames),
            (unsigned long long)b->fd_refused, (unsigned long long)b->unauthorised,
            b->cfg.n_members, ntools);
        const px_canfault_stats *fs = &b->fault.stats;
        uint64_t fdrops =
            fs->dropped + fs->refused_down + fs->refused_busoff + fs->refused_partition;
        app(t, tc, "faults: dropped %llu, corrupted %llu, error frames %llu\n",
            (unsigned long long)fdrops, (unsigned long long)fs->corrupted,
            (unsigned long long)fs->error_frames);
        size_t jl = strlen(j);
        if (jl > 0 && j[jl - 1] == '}') {
            j[jl - 1] = '\0';
            app(j, jc, ",\"fault\":");
            char fj[1500];
            if (px_canfault_json(&b->fault, ep_label, b, fj, sizeof(fj)) == PX_OK)
                app(j, jc, "%s", fj);
            else
                app(j, jc, "null");
            app(j, jc, ",\"gateways\":[");
            for (uint32_t i = 0; i < b->cfg.n_gws; i++) {
                const px_cangw_stats *gs = &b->gws[i].stats;
                app(t, tc,
                    "gateway to %s: forwarded %llu, filtered %llu, hop limit %llu, "
                    "invalid %llu\n",
                    b->cfg.gws[i].to, (unsigned long long)gs->forwarded,
                    (unsigned long long)gs->filtered, (unsigned long long)gs->hop_limited,
                    (unsigned long long)gs->invalid);
                app(j, jc,
                    "%s{\"to\":\"%s\",\"forwarded\":%llu,\"filtered\":%llu,"
                    "\"hop_limited\":%llu,\"invalid\":%llu}",
                    i ? "," : "", b->cfg.gws[i].to, (unsigned long long)gs->forwarded,
                    (unsigned long long)gs->filtered, (unsigned long long)gs->hop_limited,
                    (unsigned long long)gs->invalid);
            }
            app(j, jc, "]}");
        }
    }
    if (b->is_member) {
        const px_canbus_member_stats *ms = &b->member.stats;
        app(t, tc, "member %s: delivered %llu, lost %llu, stale %llu, withheld by faults %llu\n",
            s->self, (unsigned long long)ms->delivered, (unsigned long long)ms->lost,
            (unsigned long long)ms->stale, (unsigned long long)b->fault.stats.delivery_drops);
        app(j, jc, ",\"member\":{\"delivered\":%llu,\"lost\":%llu,\"stale\":%llu,\"endpoints\":[",
            (unsigned long long)ms->delivered, (unsigned long long)ms->lost,
            (unsigned long long)ms->stale);
        for (uint32_t i = 0; i < b->n_eps; i++) {
            svc_ep *e = b->eps[i];
            const px_canep_stats *es = px_canep_get_stats(e->ep);
            app(t, tc,
                "  %s %s: %s, from guest %llu, to guest %llu, to guest dropped %llu, "
                "refused %llu, unconfirmed %llu, malformed (connection cut) %llu\n",
                e->cfg.guest, e->cfg.ifname, es->connected ? "connected" : "not connected",
                (unsigned long long)es->rx, (unsigned long long)es->tx,
                (unsigned long long)es->tx_dropped,
                (unsigned long long)(e->refused + e->fd_refused),
                (unsigned long long)e->unconfirmed, (unsigned long long)es->malformed);
            app(j, jc,
                "%s{\"guest\":\"%s\",\"if\":\"%s\",\"connected\":%s,\"rx\":%llu,\"tx\":%llu,"
                "\"tx_dropped\":%llu,\"refused\":%llu,\"unconfirmed\":%llu,\"malformed\":%llu}",
                i ? "," : "", e->cfg.guest, e->cfg.ifname, es->connected ? "true" : "false",
                (unsigned long long)es->rx, (unsigned long long)es->tx,
                (unsigned long long)es->tx_dropped,
                (unsigned long long)(e->refused + e->fd_refused),
                (unsigned long long)e->unconfirmed, (unsigned long long)es->malformed);
        }
        app(j, jc, "]}");
    }
    app(j, jc, "}");
    size_t tl = strlen(t);
    if (tl && t[tl - 1] == '\n')
        t[tl - 1] = '\0';
}

static void tool_record(svc_bus *b, const px_msg_tool *tm, px_cansvc_reply *r)
{
    if (!b->is_home)
        return; /* only the home records */
    char what[16] = "";
    if (tm->n_args >= 3)
        px_str_copy(what, sizeof(what), tm->args[2]);
    if (strcmp(what, "off") == 0) {
        rec_close(b);
        reply_set(r, PX_OK, "bus %s: recording stopped", b->cfg.name);
        return;
    }
    if (strcmp(what, "on") != 0) {
        reply_set(r, PX_E_INVAL, "can record: say 'on' or 'off' (got '%s')", what);
        return;
    }
    char log[4200], pcap[4200];
    snprintf(log, sizeof(log), "%s/%s.log", b->candir, b->cfg.name);
    snprintf(pcap, sizeof(pcap), "%s/%s.pcap", b->candir, b->cfg.name);
    if (!b->rec_log)
        b->rec_log = fopen(log, "ae");
    if (!b->rec_pcap) {
        b->rec_pcap = fopen(pcap, "we");
        if (b->rec_pcap && px_canpcap_write_header(b->rec_pcap, NULL) != PX_OK) {
            fclose(b->rec_pcap);
            b->rec_pcap = NULL;
        }
    }
    if (!b->rec_log || !b->rec_pcap) {
        int e = errno;
        rec_close(b);
        reply_set(r, PX_E_IO, "bus %s: cannot open the recording in %s: %s", b->cfg.name, b->candir,
                  strerror(e));
        return;
    }
    reply_set(r, PX_OK, "bus %s: recording on node %s to %s and %s", b->cfg.name, b->svc->self, log,
              pcap);
    app(r->json, sizeof(r->json), "{\"node\":\"%s\",\"log\":\"%s\",\"pcap\":\"%s\"}", b->svc->self,
        log, pcap);
}

/* Every node of the bus applies the command (the coordinator sends it to
 * all): the home answers for the bus, members stay quiet unless asked for
 * nothing at all. */
static void tool_fault(svc_bus *b, const px_msg_tool *tm, px_cansvc_reply *r)
{
    char argbuf[PX_CANFAULT_MAX_ARGS][256];
    const char *argv[PX_CANFAULT_MAX_ARGS];
    int argc = 0;
    for (uint32_t i = 2; i < tm->n_args && argc < (int)PX_CANFAULT_MAX_ARGS; i++) {
        px_str_copy(argbuf[argc], sizeof(argbuf[0]), tm->args[i]);
        argv[argc] = argbuf[argc];
        argc++;
    }
    char summary[PX_CANFAULT_SUMMARY_MAX] = "";
    px_errmsg em = {{0}};
    if (argc == 0) {
        if (b->is_home) {
            px_canfault_describe(&b->fault, ep_label, b, r->text, sizeof(r->text));
            px_canfault_json(&b->fault, ep_label, b, r->json, sizeof(r->json));
        }
        return;
    }
    px_err err =
        px_canfault_command(&b->fault, argc, argv, resolve_guest, b, summary, sizeof(summary), &em);
    r->code = err;
    if (!b->is_home)
        return;
    if (err)
        reply_set(r, err, "%s", em.text);
    else
        reply_set(r, PX_OK, "bus %s: %s", b->cfg.name, summary);
}

void px_cansvc_tool(px_cansvc *s, const px_msg_tool *tm, px_cansvc_reply *r)
{
    memset(r, 0, sizeof(*r));
    char lab[64], net[64], sub[32] = "";
    px_str_copy(lab, sizeof(lab), tm->lab);
    px_str_copy(net, sizeof(net), tm->net);
    if (tm->n_args >= 2)
        px_str_copy(sub, sizeof(sub), tm->args[1]);
    svc_bus *b = bus_find(s, lab, net, NULL);
    if (!b) {
        reply_set(r, PX_E_NOTFOUND, "node %s has no CAN bus %s in lab %s", s->self, net, lab);
        return;
    }
    if (strcmp(sub, "open") == 0) {
        if (!b->is_home)
            return;
        char key[64];
        px_str_copy(key, sizeof(key), tm->client);
        if (!key[0] || s->io.admit(s->io.ud, key) != PX_OK) {
            reply_set(r, PX_E_AUTH, "bus %s: cannot admit the tool's key", net);
            return;
        }
        snprintf(r->endpoint, sizeof(r->endpoint), "%s", s->data_ep);
        snprintf(r->key, sizeof(r->key), "%s", s->data_key);
        return;
    }
    if (strcmp(sub, "stats") == 0) {
        tool_stats(s, b, r);
        return;
    }
    if (strcmp(sub, "record") == 0) {
        tool_record(b, tm, r);
        return;
    }
    if (strcmp(sub, "fault") == 0) {
        tool_fault(b, tm, r);
        flush_bus(b);
        return;
    }
    reply_set(r, PX_E_UNKNOWN,
              "unknown CAN command '%s' (hint: plexus can --help lists send, dump, replay, stats, "
              "fault, record)",
              sub);
}

/* ---- life cycle ---- */

px_err px_cansvc_new(uv_loop_t *loop, const px_cansvc_io *io, px_cansvc **out)
{
    px_cansvc *s = calloc(1, sizeof(*s));
    if (!s)
        return PX_E_NOMEM;
    s->scratch = malloc(sizeof(*s->scratch));
    if (!s->scratch) {
        free(s);
        return PX_E_NOMEM;
    }
    s->loop = loop;
    s->io = *io;
    snprintf(s->self, sizeof(s->self), "%s", io->self);
    snprintf(s->data_ep, sizeof(s->data_ep), "%s", io->data_ep ? io->data_ep : "");
    snprintf(s->data_key, sizeof(s->data_key), "%s", io->data_key ? io->data_key : "");
    s->io.self = s->self;
    s->io.data_ep = s->data_ep;
    s->io.data_key = s->data_key;
    uv_timer_init(loop, &s->wake);
    uv_timer_init(loop, &s->housekeep);
    uv_timer_init(loop, &s->sched);
    s->wake.data = s->housekeep.data = s->sched.data = s;
    s->open_handles = 3;
    uv_timer_start(&s->housekeep, on_housekeep, HOUSEKEEP_MS, HOUSEKEEP_MS);
    uv_timer_start(&s->sched, on_sched, 20, 20);
    *out = s;
    return PX_OK;
}

static void svc_handle_closed(uv_handle_t *h)
{
    px_cansvc *s = h->data;
    if (--s->open_handles)
        return;
    void (*done)(void *) = s->done;
    void *ud = s->done_ud;
    px_wbuf_fini(&s->wb);
    free(s->scratch);
    free(s);
    if (done)
        done(ud);
}

void px_cansvc_close(px_cansvc *s, void (*done)(void *ud), void *ud)
{
    while (s->n_buses)
        bus_free(s->buses[--s->n_buses]);
    s->done = done;
    s->done_ud = ud;
    uv_close((uv_handle_t *)&s->wake, svc_handle_closed);
    uv_close((uv_handle_t *)&s->housekeep, svc_handle_closed);
    uv_close((uv_handle_t *)&s->sched, svc_handle_closed);
}
