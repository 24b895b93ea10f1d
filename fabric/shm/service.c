/* plexus — the ivshmem region service of one node. See service.h and
 * docs/ivshmem.md.
 *
 * Between hosts the home is the hub: a member sends its DIFFs and RINGs to
 * the home, which applies the DIFFs to its own copy and passes them on to
 * every other member, and passes a RING on to the member its peer lives on
 * (or rings it, if local). One hub keeps causality with any number of
 * hosts: when A rings B and B then rings C, the home has sent A's changes to
 * C before it passed A's ring to B, so before B's ring to C, on the same
 * ordered link. With two hosts one of them is the home and nothing takes an
 * extra hop.
 */
#include "fabric/shm/service.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "devices/ivshmem/proto.h"
#include "devices/ivshmem/server.h"
#include "fabric/core/log.h"
#include "fabric/core/outq.h"
#include "fabric/core/text.h"
#include "fabric/shm/diff.h"

#define SYNC_RETRY_MS  500u         /* a member asks the home again until SYNCED */
#define QUEUE_RETRY_MS 1u           /* held messages to a full member link */
#define QUEUE_MAX      (256u << 20) /* bytes held for one member before dropping */
#define NO_MEMBER      UINT32_MAX

typedef struct speer {
    uint16_t id;
    uint32_t owner; /* member index */
    char name[64];
} speer;

/* A local client waiting for its ID from the home. */
typedef struct spend {
    uint64_t conn, tag;
    char name[64];
    bool asked; /* JOIN sent */
} spend;

typedef struct sout {
    px_outq q;
    uint64_t dropped;
} sout;

typedef struct slab slab;

typedef struct sreg {
    px_shmsvc *svc;
    slab *lab;
    uint64_t key;
    px_shmsvc_region_cfg cfg; /* guests: the owned copy below */
    char (*guests)[64];
    uint32_t self; /* this node's member index */
    uint32_t home; /* the home's member index */
    int memfd;
    uint8_t *mem;
    uint8_t *twin; /* NULL on a region with one member */
    px_ivsrv *srv;
    speer *peers; /* every peer of the region, lowest ID first */
    uint32_t n_peers, cap_peers;
    spend *pend;
    uint32_t n_pend, cap_pend;
    uint64_t next_tag;
    bool synced;      /* the home: always */
    uv_timer_t timer; /* SYNC retries, then the periodic sync */
    uv_timer_t qtimer;
    bool qtimer_on;
    unsigned closing;
    sout out[PX_SHMSVC_MAX_MEMBERS];
    /* counters */
    uint64_t rings_out, rings_in, rings_relayed, rings_lost, diff_out, diff_in, diff_msgs_out,
        diff_msgs_in, bad_msgs, refused;
} sreg;

struct slab {
    char name[64];
    sreg **regs;
    uint32_t n_regs;
};

struct px_shmsvc {
    uv_loop_t *loop;
    px_svc_io io;
    px_shmsvc_pid_name pid_name;
    void *pid_ud;
    slab **labs;
    uint32_t n_labs;
    px_msg *scratch;
    px_wbuf wb;
    uint8_t *dbuf;   /* PX_WIRE_MAX_SHM_BLOB of diff records */
    uint32_t n_live; /* regions not yet freed (some may be closing) */
    bool shutting;   /* px_shmsvc_close: free once n_live is 0 */
    void (*done)(void *ud);
    void *done_ud;
};

static void svc_free(px_shmsvc *s);

static bool is_home(const sreg *r)
{
    return r->self == r->home;
}

/* ---- the peer table ---- */

static speer *peer_find(sreg *r, uint32_t id)
{
    for (uint32_t i = 0; i < r->n_peers; i++)
        if (r->peers[i].id == id)
            return &r->peers[i];
    return NULL;
}

static speer *peer_named(sreg *r, const char *name)
{
    for (uint32_t i = 0; i < r->n_peers; i++)
        if (strcmp(r->peers[i].name, name) == 0)
            return &r->peers[i];
    return NULL;
}

static px_err peer_add(sreg *r, uint16_t id, uint32_t owner, const char *name)
{
    if (peer_find(r, id))
        return PX_E_EXISTS;
    if (r->n_peers == r->cap_peers) {
        uint32_t cap = r->cap_peers ? 2 * r->cap_peers : 16;
        speer *np = realloc(r->peers, cap * sizeof(*np));
        if (!np)
            return PX_E_NOMEM;
        r->peers = np;
        r->cap_peers = cap;
    }
    uint32_t at = r->n_peers;
    while (at > 0 && r->peers[at - 1].id > id)
        at--;
    memmove(&r->peers[at + 1], &r->peers[at], (r->n_peers - at) * sizeof(*r->peers));
    r->peers[at] = (speer){.id = id, .owner = owner};
    snprintf(r->peers[at].name, sizeof(r->peers[at].name), "%s", name);
    r->n_peers++;
    return PX_OK;
}

static void peer_del(sreg *r, uint32_t id)
{
    speer *p = peer_find(r, id);
    if (!p)
        return;
    uint32_t at = (uint32_t)(p - r->peers);
    memmove(&r->peers[at], &r->peers[at + 1], (r->n_peers - at - 1) * sizeof(*r->peers));
    r->n_peers--;
}

/* The home's choice: a guest's place among the region's guests, else the
 * lowest free ID above them. -1 when there is none (or the guest is
 * already a peer: its old connection has not left yet). */
static int32_t assign_id(sreg *r, const char *name)
{
    for (uint32_t k = 0; k < r->cfg.n_guests; k++)
        if (strcmp(r->guests[k], name) == 0)
            return peer_find(r, k) ? -1 : (int32_t)k;
    for (uint32_t id = r->cfg.n_guests; id < PX_IVSHM_MAX_PEERS; id++)
        if (!peer_find(r, id))
            return (int32_t)id;
    return -1;
}

/* ---- sending ---- */

static void queue_kick(sreg *r);

static px_err encode(px_shmsvc *s, const px_msg_shm *b)
{
    px_msg *m = s->scratch;
    memset(&m->env, 0, sizeof(m->env));
    m->env.type = PX_MSG_SHM;
    m->body.shm = *b;
    px_wbuf_reset(&s->wb);
    px_errmsg em = {{0}};
    px_err err = px_wire_encode(&s->wb, m, &em);
    if (err)
        PX_ERROR("shm", "cannot encode a SHM message", "err=%s detail=\"%s\"", px_errname(err),
                 em.text);
    return err;
}

/* The encoded message in s->wb to member k, in order behind anything held
 * for it; a full link holds it (up to QUEUE_MAX), no link drops it. */
static void out_send(sreg *r, uint32_t k)
{
    px_shmsvc *s = r->svc;
    sout *o = &r->out[k];
    px_err err = px_outq_send(&o->q, &s->io, r->cfg.members[k], s->wb.data, s->wb.len, QUEUE_MAX);
    if (err == PX_E_AGAIN) {
        queue_kick(r);
    } else if (err == PX_E_TOOBIG || err == PX_E_NOMEM) {
        if (o->dropped++ == 0)
            PX_WARN("shm", "link to a member stays full; dropping region messages for it",
                    "region=%s member=%s held=%zu", r->cfg.name, r->cfg.members[k], o->q.bytes);
    } else if (err != PX_OK) {
        o->dropped++;
        PX_DEBUG("shm", "no link to a member", "region=%s member=%s err=%s", r->cfg.name,
                 r->cfg.members[k], px_errname(err));
    }
}

static void send_to(sreg *r, uint32_t k, const px_msg_shm *b)
{
    if (k != r->self && k < r->cfg.n_members && encode(r->svc, b) == PX_OK)
        out_send(r, k);
}

/* To every member but this node and `except`. */
static void send_all(sreg *r, uint32_t except, const px_msg_shm *b)
{
    if (encode(r->svc, b) != PX_OK)
        return;
    for (uint32_t k = 0; k < r->cfg.n_members; k++)
        if (k != r->self && k != except)
            out_send(r, k);
}

static void on_qtimer(uv_timer_t *t)
{
    sreg *r = t->data;
    bool held = false;
    for (uint32_t k = 0; k < r->cfg.n_members; k++)
        held |= px_outq_flush(&r->out[k].q, &r->svc->io, r->cfg.members[k], &r->out[k].dropped);
    if (!held) {
        uv_timer_stop(&r->qtimer);
        r->qtimer_on = false;
    }
}

static void queue_kick(sreg *r)
{
    if (!r->qtimer_on) {
        r->qtimer_on = true;
        uv_timer_start(&r->qtimer, on_qtimer, QUEUE_RETRY_MS, QUEUE_RETRY_MS);
    }
}

static void queue_free(sreg *r)
{
    for (uint32_t k = 0; k < PX_SHMSVC_MAX_MEMBERS; k++) {
        px_outq_clear(&r->out[k].q);
        r->out[k].dropped = 0;
    }
}

/* The region's changed bytes since the last time (twin), as DIFFs: to the
 * home from a member, to every other member from the home. */
static void publish(sreg *r)
{
    if (!r->twin)
        return;
    px_shmsvc *s = r->svc;
    px_shmdiff_scan sc;
    px_shmdiff_begin(&sc, r->mem, r->twin, r->cfg.size);
    size_t n;
    while ((n = px_shmdiff_next(&sc, s->dbuf, PX_WIRE_MAX_SHM_BLOB)) > 0) {
        px_msg_shm d = {
            .region = r->key, .op = PX_SHM_DIFF, .node = r->self, .recs = {s->dbuf, (uint32_t)n}};
        if (is_home(r))
            send_all(r, NO_MEMBER, &d);
        else
            send_to(r, r->home, &d);
        r->diff_msgs_out++;
    }
    r->diff_out += sc.changed;
}

/* ---- the local server ---- */

static void pend_del(sreg *r, uint32_t i)
{
    r->pend[i] = r->pend[--r->n_pend];
}

static void ask_home(sreg *r, spend *p)
{
    px_msg_shm j = {.region = r->key,
                    .op = PX_SHM_JOIN,
                    .node = r->self,
                    .tag = p->tag,
                    .name = px_str_c(p->name)};
    send_to(r, r->home, &j);
    p->asked = true;
}

/* A peer joined on this node with `id`: everyone else hears of it from the
 * home. */
static void admitted(sreg *r, uint64_t conn, uint16_t id, const char *name)
{
    px_errmsg em = {{0}};
    if (px_ivsrv_admit(r->srv, conn, id, &em) != PX_OK) {
        PX_WARN("shm", "cannot admit a client", "region=%s id=%u detail=\"%s\"", r->cfg.name, id,
                em.text);
        px_ivsrv_reject(r->srv, conn);
        if (!is_home(r)) { /* the home counts it as joined: undo */
            px_msg_shm l = {.region = r->key, .op = PX_SHM_LEAVE, .node = r->self, .peer = id};
            send_to(r, r->home, &l);
        }
        peer_del(r, id);
        return;
    }
    PX_INFO("shm", "peer joined", "region=%s id=%u peer=%s", r->cfg.name, id, name);
}

static void home_join(sreg *r, uint32_t owner, uint64_t tag, const char *name, uint64_t conn)
{
    int32_t id = assign_id(r, name);
    if (id < 0) {
        r->refused++;
        PX_WARN("shm", "no peer ID for a client", "region=%s peer=%s hint=\"%s\"", r->cfg.name,
                name,
                peer_named(r, name) ? "it is a peer already; its old connection has not left"
                                    : "all 65536 IDs are taken");
        if (owner == r->self) {
            px_ivsrv_reject(r->srv, conn);
        } else {
            px_msg_shm no = {
                .region = r->key, .op = PX_SHM_LEAVE, .node = r->self, .peer = 0, .tag = tag};
            send_to(r, owner, &no);
        }
        return;
    }
    if (peer_add(r, (uint16_t)id, owner, name) != PX_OK) {
        if (owner == r->self)
            px_ivsrv_reject(r->srv, conn);
        return;
    }
    px_msg_shm p = {.region = r->key,
                    .op = PX_SHM_PEER,
                    .node = r->self,
                    .owner = owner,
                    .peer = (uint32_t)id,
                    .tag = tag,
                    .name = px_str_c(name)};
    send_all(r, NO_MEMBER, &p);
    if (owner == r->self) {
        admitted(r, conn, (uint16_t)id, name);
        return;
    }
    px_errmsg em = {{0}};
    if (px_ivsrv_add_proxy(r->srv, (uint16_t)id, &em) != PX_OK)
        PX_WARN("shm", "cannot add a proxy peer", "region=%s id=%d detail=\"%s\"", r->cfg.name, id,
                em.text);
}

static void on_connect(void *ud, uint64_t conn, pid_t pid)
{
    sreg *r = ud;
    px_shmsvc *s = r->svc;
    char name[64];
    if (!(pid > 0 && s->pid_name && s->pid_name(s->pid_ud, r->lab->name, pid, name, sizeof(name))))
        snprintf(name, sizeof(name), "host:%ld", (long)pid);
    if (is_home(r)) {
        home_join(r, r->self, 0, name, conn);
        return;
    }
    if (r->n_pend == r->cap_pend) {
        uint32_t cap = r->cap_pend ? 2 * r->cap_pend : 8;
        spend *np = realloc(r->pend, cap * sizeof(*np));
        if (!np) {
            px_ivsrv_reject(r->srv, conn);
            return;
        }
        r->pend = np;
        r->cap_pend = cap;
    }
    spend *p = &r->pend[r->n_pend++];
    *p = (spend){.conn = conn, .tag = ++r->next_tag};
    snprintf(p->name, sizeof(p->name), "%s", name);
    if (r->synced)
        ask_home(r, p);
}

static void on_abandon(void *ud, uint64_t conn)
{
    sreg *r = ud;
    for (uint32_t i = 0; i < r->n_pend; i++)
        if (r->pend[i].conn == conn) {
            /* If the home already gave it an ID, its PEER finds no client
             * and gives the ID back. */
            pend_del(r, i);
            return;
        }
}

static void on_leave(void *ud, uint16_t id)
{
    sreg *r = ud;
    speer *p = peer_find(r, id);
    PX_INFO("shm", "peer left", "region=%s id=%u peer=%s", r->cfg.name, id, p ? p->name : "?");
    peer_del(r, id);
    px_msg_shm l = {.region = r->key, .op = PX_SHM_LEAVE, .node = r->self, .peer = id};
    if (is_home(r))
        send_all(r, NO_MEMBER, &l);
    else
        send_to(r, r->home, &l);
}

/* A local client rang a peer on another node. */
static void on_ring(void *ud, uint16_t id, uint32_t vector, uint64_t count)
{
    (void)count; /* rings coalesce, as interrupts do */
    sreg *r = ud;
    speer *p = peer_find(r, id);
    if (!p || p->owner == r->self) {
        r->rings_lost++;
        return;
    }
    publish(r);
    px_msg_shm g = {
        .region = r->key, .op = PX_SHM_RING, .node = r->self, .peer = id, .vector = vector};
    send_to(r, is_home(r) ? p->owner : r->home, &g);
    r->rings_out++;
}

/* Until SYNCED: ask the home again; then the periodic sync, if any. */
static void on_timer(uv_timer_t *t)
{
    sreg *r = t->data;
    if (r->synced) {
        publish(r);
        return;
    }
    px_msg_shm q = {.region = r->key, .op = PX_SHM_SYNC, .node = r->self};
    send_to(r, r->home, &q);
}

/* ---- messages from other members ---- */

static void on_sync(sreg *r, uint32_t from)
{
    px_shmsvc *s = r->svc;
    for (uint32_t i = 0; i < r->n_peers; i++) {
        px_msg_shm p = {.region = r->key,
                        .op = PX_SHM_PEER,
                        .node = r->self,
                        .owner = r->peers[i].owner,
                        .peer = r->peers[i].id,
                        .name = px_str_c(r->peers[i].name)};
        send_to(r, from, &p);
    }
    /* The contents: every non-zero byte, against a zero twin (calloc'd
     * pages stay the shared zero page until written). */
    uint8_t *zero = calloc(1, r->cfg.size);
    if (zero) {
        px_shmdiff_scan sc;
        px_shmdiff_begin(&sc, r->mem, zero, r->cfg.size);
        size_t n;
        while ((n = px_shmdiff_next(&sc, s->dbuf, PX_WIRE_MAX_SHM_BLOB)) > 0) {
            px_msg_shm d = {.region = r->key,
                            .op = PX_SHM_DIFF,
                            .node = r->self,
                            .recs = {s->dbuf, (uint32_t)n}};
            send_to(r, from, &d);
        }
        free(zero);
    } else {
        PX_WARN("shm", "cannot send the region's contents to a new member: out of memory",
                "region=%s member=%s", r->cfg.name, r->cfg.members[from]);
    }
    px_msg_shm done = {.region = r->key, .op = PX_SHM_SYNCED, .node = r->self};
    send_to(r, from, &done);
}

static void on_peer(sreg *r, const px_msg_shm *m)
{
    char name[64];
    px_str_copy(name, sizeof(name), m->name);
    uint16_t id = (uint16_t)m->peer;
    speer *old = peer_find(r, id);
    if (old && old->owner == m->owner && strcmp(old->name, name) == 0)
        return; /* known: a SYNC repeats what PEERs said */
    if (old) {
        px_ivsrv_remove(r->srv, id);
        peer_del(r, id);
    }
    if (m->owner == r->self) {
        for (uint32_t i = 0; i < r->n_pend; i++)
            if (r->pend[i].tag == m->tag && m->tag) {
                uint64_t conn = r->pend[i].conn;
                pend_del(r, i);
                if (peer_add(r, id, r->self, name) == PX_OK)
                    admitted(r, conn, id, name);
                return;
            }
        /* The client left while the home chose: give the ID back. */
        px_msg_shm l = {.region = r->key, .op = PX_SHM_LEAVE, .node = r->self, .peer = id};
        send_to(r, r->home, &l);
        return;
    }
    if (peer_add(r, id, m->owner, name) != PX_OK)
        return;
    px_errmsg em = {{0}};
    if (px_ivsrv_add_proxy(r->srv, id, &em) != PX_OK)
        PX_WARN("shm", "cannot add a proxy peer", "region=%s id=%u detail=\"%s\"", r->cfg.name, id,
                em.text);
}

static void on_leave_msg(sreg *r, const px_msg_shm *m)
{
    if (m->tag) { /* the home refused a JOIN */
        for (uint32_t i = 0; i < r->n_pend; i++)
            if (r->pend[i].tag == m->tag) {
                PX_WARN("shm", "the home gave no peer ID", "region=%s peer=%s", r->cfg.name,
                        r->pend[i].name);
                px_ivsrv_reject(r->srv, r->pend[i].conn);
                pend_del(r, i);
                return;
            }
        return;
    }
    speer *p = peer_find(r, m->peer);
    if (!p)
        return;
    if (is_home(r) && p->owner != m->node)
        return; /* only the member it lives on says it left */
    if (p->owner == r->self)
        return; /* ours: it leaves when its socket closes */
    uint32_t id = m->peer;
    px_ivsrv_remove(r->srv, (uint16_t)id);
    peer_del(r, id);
    if (is_home(r)) {
        px_msg_shm fwd = *m;
        fwd.node = r->self;
        send_all(r, m->node, &fwd);
    }
}

static void on_diff(sreg *r, const px_msg_shm *m)
{
    px_errmsg em = {{0}};
    uint64_t n = 0;
    if (px_shmdiff_apply(m->recs.ptr, m->recs.len, r->mem, r->twin, r->cfg.size, &n, &em) !=
        PX_OK) {
        r->bad_msgs++;
        PX_WARN("shm", "bad DIFF from a member, dropped", "region=%s member=%s detail=\"%s\"",
                r->cfg.name, r->cfg.members[m->node], em.text);
        return;
    }
    r->diff_in += n;
    r->diff_msgs_in++;
    if (is_home(r)) {
        px_msg_shm fwd = *m;
        fwd.node = r->self;
        send_all(r, m->node, &fwd);
    }
}

static void on_ring_msg(sreg *r, const px_msg_shm *m)
{
    speer *p = peer_find(r, m->peer);
    if (!p) {
        r->rings_lost++;
        return;
    }
    if (p->owner == r->self) {
        if (px_ivsrv_notify(r->srv, (uint16_t)m->peer, m->vector) == PX_OK)
            r->rings_in++;
        else
            r->rings_lost++;
        return;
    }
    if (is_home(r) && p->owner != m->node) {
        px_msg_shm fwd = *m;
        fwd.node = r->self;
        send_to(r, p->owner, &fwd);
        r->rings_relayed++;
    }
}

static sreg *reg_by_key(px_shmsvc *s, uint64_t key)
{
    for (uint32_t i = 0; i < s->n_labs; i++)
        for (uint32_t k = 0; k < s->labs[i]->n_regs; k++)
            if (s->labs[i]->regs[k]->key == key)
                return s->labs[i]->regs[k];
    return NULL;
}

void px_shmsvc_on_msg(px_shmsvc *s, const px_peer *from, const px_msg_shm *m)
{
    sreg *r = reg_by_key(s, m->region);
    if (!r || r->closing)
        return;
    if (m->node >= r->cfg.n_members || m->node == r->self) {
        r->bad_msgs++;
        return;
    }
    const char *key = s->io.node_key(s->io.ud, r->cfg.members[m->node]);
    if (!key || strcmp(key, from->key_z85) != 0) {
        r->bad_msgs++;
        PX_WARN("shm", "SHM message from a node that is not the member it names, dropped",
                "region=%s member=%s", r->cfg.name, r->cfg.members[m->node]);
        return;
    }
    /* Only the home hands out IDs and answers SYNC; members talk to the
     * home only. */
    bool from_home = m->node == r->home;
    switch (m->op) {
    case PX_SHM_SYNC:
        if (is_home(r))
            on_sync(r, m->node);
        return;
    case PX_SHM_SYNCED:
        if (from_home && !r->synced) {
            r->synced = true;
            PX_INFO("shm", "region synchronised with its home", "region=%s home=%s", r->cfg.name,
                    r->cfg.home);
            for (uint32_t i = 0; i < r->n_pend; i++)
                if (!r->pend[i].asked)
                    ask_home(r, &r->pend[i]);
            uv_timer_stop(&r->timer);
            if (r->cfg.sync_ms)
                uv_timer_start(&r->timer, on_timer, r->cfg.sync_ms, r->cfg.sync_ms);
        }
        return;
    case PX_SHM_JOIN:
        if (is_home(r)) {
            char name[64];
            px_str_copy(name, sizeof(name), m->name);
            home_join(r, m->node, m->tag, name, 0);
        }
        return;
    case PX_SHM_PEER:
        if (from_home && m->owner < r->cfg.n_members)
            on_peer(r, m);
        return;
    case PX_SHM_LEAVE:
        if (is_home(r) || from_home)
            on_leave_msg(r, m);
        return;
    case PX_SHM_DIFF:
        if (is_home(r) || from_home)
            on_diff(r, m);
        return;
    case PX_SHM_RING:
        if (is_home(r) || from_home)
            on_ring_msg(r, m);
        return;
    default:
        r->bad_msgs++;
    }
}

/* ---- regions ---- */

static uint32_t member_index(const px_shmsvc_region_cfg *c, const char *name)
{
    for (uint32_t k = 0; k < c->n_members; k++)
        if (strcmp(c->members[k], name) == 0)
            return k;
    return NO_MEMBER;
}

static void reg_free_now(sreg *r)
{
    px_shmsvc *s = r->svc;
    queue_free(r);
    if (r->mem)
        munmap(r->mem, r->cfg.size);
    if (r->memfd >= 0)
        close(r->memfd);
    free(r->twin);
    free(r->peers);
    free(r->pend);
    free(r->guests);
    free(r);
    if (--s->n_live == 0 && s->shutting)
        svc_free(s);
}

/* Each of the two timers and the server report here once closed. */
static void reg_release(sreg *r)
{
    if (--r->closing == 0)
        reg_free_now(r);
}

static void reg_closed(uv_handle_t *h)
{
    reg_release(h->data);
}

static void srv_closed(void *ud)
{
    reg_release(ud);
}

static void reg_free(sreg *r)
{
    if (!r)
        return;
    r->closing = 3;
    uv_close((uv_handle_t *)&r->timer, reg_closed);
    uv_close((uv_handle_t *)&r->qtimer, reg_closed);
    if (r->srv)
        px_ivsrv_close(r->srv, srv_closed, r);
    else
        r->closing--;
}

/* A region kept across a new plan only when nothing it was built from
 * changed: its clients and contents stay. */
static bool reg_same(const sreg *r, const px_shmsvc_region_cfg *c)
{
    const px_shmsvc_region_cfg *o = &r->cfg;
    if (o->size != c->size || o->vectors != c->vectors || strcmp(o->socket, c->socket) != 0 ||
        strcmp(o->home, c->home) != 0 || o->n_members != c->n_members || o->n_guests != c->n_guests)
        return false;
    for (uint32_t k = 0; k < c->n_members; k++)
        if (strcmp(o->members[k], c->members[k]) != 0)
            return false;
    for (uint32_t k = 0; k < c->n_guests; k++)
        if (strcmp(r->guests[k], c->guests[k]) != 0)
            return false;
    return true;
}

static px_err reg_open(px_shmsvc *s, slab *l, const px_shmsvc_region_cfg *c, sreg **out,
                       px_errmsg *em)
{
    uint32_t self = member_index(c, s->io.self), home = member_index(c, c->home);
    if (self == NO_MEMBER || home == NO_MEMBER)
        return px_errmsg_set(em, PX_E_CONFIG,
                             "region %s: node %s or home %s is not in the member list", c->name,
                             s->io.self, c->home);
    if (c->n_guests > PX_SHMSVC_MAX_GUESTS)
        return px_errmsg_set(em, PX_E_TOOBIG, "region %s: more than %u guests", c->name,
                             PX_SHMSVC_MAX_GUESTS);
    sreg *r = calloc(1, sizeof(*r));
    if (!r)
        return px_errmsg_set(em, PX_E_NOMEM, "ivshmem: out of memory");
    s->n_live++;
    r->svc = s;
    r->lab = l;
    r->key = px_net_key(l->name, c->name);
    r->cfg = *c;
    r->self = self;
    r->home = home;
    r->memfd = -1;
    r->synced = self == home;
    r->guests = calloc(c->n_guests + 1, sizeof(*r->guests));
    if (!r->guests) {
        s->n_live--;
        free(r);
        return px_errmsg_set(em, PX_E_NOMEM, "ivshmem: out of memory");
    }
    memcpy(r->guests, c->guests, c->n_guests * sizeof(*r->guests));
    r->cfg.guests = NULL;
    uv_timer_init(s->loop, &r->timer);
    uv_timer_init(s->loop, &r->qtimer);
    r->timer.data = r->qtimer.data = r;
    px_err err = PX_OK;
    char memname[80];
    snprintf(memname, sizeof(memname), "plexus-%s", c->name);
    r->memfd = memfd_create(memname, MFD_CLOEXEC);
    if (r->memfd < 0 || ftruncate(r->memfd, (off_t)c->size) != 0) {
        err = px_errmsg_set(em, PX_E_IO, "region %s: cannot make %" PRIu64 " bytes of memory: %s",
                            c->name, c->size, strerror(errno));
    } else {
        void *m = mmap(NULL, c->size, PROT_READ | PROT_WRITE, MAP_SHARED, r->memfd, 0);
        if (m == MAP_FAILED)
            err = px_errmsg_set(em, PX_E_IO, "region %s: cannot map its memory: %s", c->name,
                                strerror(errno));
        else
            r->mem = m;
    }
    if (!err && c->n_members > 1 && !(r->twin = calloc(1, c->size)))
        err = px_errmsg_set(em, PX_E_NOMEM, "region %s: no memory for its twin (%" PRIu64 " bytes)",
                            c->name, c->size);
    if (!err) {
        px_ivsrv_cbs cbs = {.on_connect = on_connect,
                            .on_abandon = on_abandon,
                            .on_leave = on_leave,
                            .on_ring = on_ring};
        err = px_ivsrv_new(s->loop, c->socket, r->memfd, c->vectors, &cbs, r, &r->srv, em);
        if (err)
            px_errmsg_prefix(em, "region %s", c->name);
    }
    if (err) {
        reg_free(r);
        return err;
    }
    if (!r->synced)
        uv_timer_start(&r->timer, on_timer, 0, SYNC_RETRY_MS);
    else if (c->sync_ms && r->twin)
        uv_timer_start(&r->timer, on_timer, c->sync_ms, c->sync_ms);
    PX_INFO("shm", "region up", "region=%s size=%" PRIu64 " vectors=%u home=%s members=%u", c->name,
            c->size, c->vectors, c->home, c->n_members);
    *out = r;
    return PX_OK;
}

static slab *lab_find(px_shmsvc *s, const char *name, uint32_t *at)
{
    for (uint32_t i = 0; i < s->n_labs; i++)
        if (strcmp(s->labs[i]->name, name) == 0) {
            if (at)
                *at = i;
            return s->labs[i];
        }
    return NULL;
}

px_err px_shmsvc_lab_apply(px_shmsvc *s, const char *lab, const px_shmsvc_region_cfg *regs,
                           uint32_t n, px_errmsg *em)
{
    slab *l = lab_find(s, lab, NULL);
    if (!l) {
        if (n == 0)
            return PX_OK;
        slab **labs = realloc(s->labs, (s->n_labs + 1) * sizeof(*labs));
        if (!labs)
            return px_errmsg_set(em, PX_E_NOMEM, "ivshmem: out of memory");
        s->labs = labs;
        if (!(l = calloc(1, sizeof(*l))))
            return px_errmsg_set(em, PX_E_NOMEM, "ivshmem: out of memory");
        s->labs[s->n_labs++] = l;
        snprintf(l->name, sizeof(l->name), "%s", lab);
    }
    sreg **next = calloc(n + 1, sizeof(*next));
    if (!next)
        return px_errmsg_set(em, PX_E_NOMEM, "ivshmem: out of memory");
    px_err first = PX_OK;
    uint32_t nn = 0;
    for (uint32_t i = 0; i < n; i++) {
        sreg *keep = NULL;
        for (uint32_t k = 0; k < l->n_regs && !keep; k++)
            if (l->regs[k] && strcmp(l->regs[k]->cfg.name, regs[i].name) == 0 &&
                reg_same(l->regs[k], &regs[i])) {
                keep = l->regs[k];
                l->regs[k] = NULL;
            }
        if (keep) {
            keep->cfg.sync_ms = regs[i].sync_ms;
            next[nn++] = keep;
            continue;
        }
        /* A changed region is rebuilt: the old one must let its socket go
         * first. */
        for (uint32_t k = 0; k < l->n_regs; k++)
            if (l->regs[k] && strcmp(l->regs[k]->cfg.name, regs[i].name) == 0) {
                PX_WARN("shm", "region changed; its clients are disconnected", "lab=%s region=%s",
                        lab, regs[i].name);
                reg_free(l->regs[k]);
                l->regs[k] = NULL;
            }
        px_errmsg one = {{0}};
        px_err err = reg_open(s, l, &regs[i], &next[nn], &one);
        if (err) {
            PX_WARN("shm", "region cannot start", "lab=%s region=%s detail=\"%s\"", lab,
                    regs[i].name, one.text);
            if (!first) {
                first = err;
                if (em)
                    *em = one;
            }
            continue;
        }
        nn++;
    }
    for (uint32_t k = 0; k < l->n_regs; k++)
        reg_free(l->regs[k]);
    free(l->regs);
    l->regs = next;
    l->n_regs = nn;
    return first;
}

void px_shmsvc_lab_remove(px_shmsvc *s, const char *lab)
{
    uint32_t i;
    slab *l = lab_find(s, lab, &i);
    if (!l)
        return;
    for (uint32_t k = 0; k < l->n_regs; k++)
        reg_free(l->regs[k]);
    free(l->regs);
    free(l);
    s->labs[i] = s->labs[--s->n_labs];
}

/* ---- tools ---- */

static bool parse_id(const char *s, uint32_t max, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || errno || v > max || *s == '-' || *s == '+')
        return false;
    *out = (uint32_t)v;
    return true;
}

/* `ivshmem peers`: this node's part, as JSON: the region, its local peers
 * and counters. */
static void tool_peers(sreg *r, px_svc_reply *out)
{
    px_shmsvc *s = r->svc;
    px_ivsrv_peer loc[256];
    uint32_t nl = px_ivsrv_peers(r->srv, loc, 256);
    if (nl > 256)
        nl = 256;
    size_t cap = sizeof(out->json), len = 0;
    char *j = out->json;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        if (len < cap)                                                                             \
            len += (size_t)snprintf(j + len, cap - len, __VA_ARGS__);                              \
    } while (0)
    uint64_t dropped = 0;
    for (uint32_t k = 0; k < r->cfg.n_members; k++)
        dropped += r->out[k].dropped;
    PUT("{\"node\":\"%s\",\"region\":\"%s\",\"home\":\"%s\",\"size\":%" PRIu64
        ",\"vectors\":%u,\"socket\":\"%s\",\"synced\":%s,\"sync_ms\":%" PRIu64
        ",\"rings_out\":%" PRIu64 ",\"rings_in\":%" PRIu64 ",\"rings_relayed\":%" PRIu64
        ",\"rings_lost\":%" PRIu64 ",\"diff_bytes_out\":%" PRIu64 ",\"diff_bytes_in\":%" PRIu64
        ",\"diff_msgs_out\":%" PRIu64 ",\"diff_msgs_in\":%" PRIu64 ",\"bad_msgs\":%" PRIu64
        ",\"refused\":%" PRIu64 ",\"dropped\":%" PRIu64 ",\"peers\":[",
        s->io.self, r->cfg.name, r->cfg.home, r->cfg.size, r->cfg.vectors, r->cfg.socket,
        r->synced ? "true" : "false", r->cfg.sync_ms, r->rings_out, r->rings_in, r->rings_relayed,
        r->rings_lost, r->diff_out, r->diff_in, r->diff_msgs_out, r->diff_msgs_in, r->bad_msgs,
        r->refused, dropped);
    bool first = true;
    int tl = snprintf(out->text, sizeof(out->text), "node %s:", s->io.self);
    for (uint32_t i = 0; i < nl; i++) {
        if (!loc[i].local)
            continue;
        speer *p = peer_find(r, loc[i].id);
        const char *name = p ? p->name : "?";
        /* JSON strings: names are topology names or host:PID, no escapes */
        PUT("%s{\"id\":%u,\"name\":\"%s\",\"node\":\"%s\",\"pid\":%ld,\"rings_in\":%" PRIu64 "}",
            first ? "" : ",", loc[i].id, name, s->io.self, (long)loc[i].pid, loc[i].rings_in);
        if (tl > 0 && (size_t)tl < sizeof(out->text))
            tl +=
                snprintf(out->text + tl, sizeof(out->text) - (size_t)tl, " %u=%s", loc[i].id, name);
        first = false;
    }
    PUT("]}");
#undef PUT
    if (len >= cap) {
        out->json[0] = '\0';
        out->code = PX_E_TOOBIG;
        snprintf(out->text, sizeof(out->text),
                 "node %s: region %s has too many local peers to list in one reply", s->io.self,
                 r->cfg.name);
        return;
    }
    if (first && tl > 0 && (size_t)tl < sizeof(out->text))
        snprintf(out->text + tl, sizeof(out->text) - (size_t)tl, " no local peers");
}

static void peer_list(sreg *r, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < r->n_peers && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%u (%s)", i ? ", " : "", r->peers[i].id,
                                r->peers[i].name);
    if (!r->n_peers)
        snprintf(buf, cap, "none");
}

/* `ivshmem ring PEER VECTOR`: the node the peer lives on rings it; the home
 * answers for a peer nobody has; every other node says nothing. */
static void tool_ring(sreg *r, const px_msg_tool *t, px_svc_reply *out)
{
    char who[80] = "", vec[16] = "0";
    if (t->n_args > 2)
        px_str_copy(who, sizeof(who), t->args[2]);
    if (t->n_args > 3)
        px_str_copy(vec, sizeof(vec), t->args[3]);
    uint32_t id, v;
    speer *p = parse_id(who, PX_IVSHM_MAX_PEERS - 1, &id) ? peer_find(r, id) : peer_named(r, who);
    if (!p) {
        if (r->self == r->home) {
            char list[1024];
            peer_list(r, list, sizeof(list));
            out->code = PX_E_NOTFOUND;
            snprintf(out->text, sizeof(out->text),
                     "region %s has no peer '%s'; its peers: %s (hint: plexus ivshmem peers %s)",
                     r->cfg.name, who, list, r->cfg.name);
        }
        return;
    }
    if (p->owner != r->self)
        return;
    if (!parse_id(vec, 255, &v) || v >= r->cfg.vectors) {
        out->code = PX_E_INVAL;
        snprintf(out->text, sizeof(out->text),
                 "vector '%s' is out of range: region %s has %u vector(s), 0..%u", vec, r->cfg.name,
                 r->cfg.vectors, r->cfg.vectors - 1);
        return;
    }
    if (px_ivsrv_notify(r->srv, p->id, v) != PX_OK) {
        out->code = PX_E_NOTFOUND;
        snprintf(out->text, sizeof(out->text), "peer %u (%s) of region %s cannot be rung: %s",
                 p->id, p->name, r->cfg.name, "it is leaving");
        return;
    }
    snprintf(out->text, sizeof(out->text), "rang peer %u (%s) on %s at vector %u", p->id, p->name,
             r->svc->io.self, v);
    snprintf(out->json, sizeof(out->json),
             "{\"rang\":%u,\"name\":\"%s\",\"node\":\"%s\",\"vector\":%u}", p->id, p->name,
             r->svc->io.self, v);
}

void px_shmsvc_tool(px_shmsvc *s, const px_msg_tool *t, px_svc_reply *out)
{
    char lab[64], net[64], sub[16] = "";
    px_str_copy(lab, sizeof(lab), t->lab);
    px_str_copy(net, sizeof(net), t->net);
    if (t->n_args > 1)
        px_str_copy(sub, sizeof(sub), t->args[1]);
    out->code = PX_OK;
    slab *l = lab_find(s, lab, NULL);
    sreg *r = NULL;
    for (uint32_t k = 0; l && k < l->n_regs && !r; k++)
        if (strcmp(l->regs[k]->cfg.name, net) == 0)
            r = l->regs[k];
    if (!r) {
        out->code = PX_E_NOTFOUND;
        snprintf(out->text, sizeof(out->text), "node %s: no ivshmem region %s in lab %s",
                 s->io.self, net, lab);
        return;
    }
    if (strcmp(sub, "peers") == 0) {
        tool_peers(r, out);
        return;
    }
    if (strcmp(sub, "ring") == 0) {
        tool_ring(r, t, out);
        return;
    }
    out->code = PX_E_UNKNOWN;
    snprintf(out->text, sizeof(out->text), "node %s: no ivshmem tool '%s'", s->io.self, sub);
}

/* ---- the service ---- */

px_err px_shmsvc_new(uv_loop_t *loop, const px_svc_io *io, px_shmsvc_pid_name pid_name,
                     void *pid_ud, px_shmsvc **out)
{
    px_shmsvc *s = calloc(1, sizeof(*s));
    if (!s)
        return PX_E_NOMEM;
    s->loop = loop;
    s->io = *io;
    s->pid_name = pid_name;
    s->pid_ud = pid_ud;
    s->scratch = calloc(1, sizeof(*s->scratch));
    s->dbuf = malloc(PX_WIRE_MAX_SHM_BLOB);
    if (!s->scratch || !s->dbuf) {
        free(s->scratch);
        free(s->dbuf);
        free(s);
        return PX_E_NOMEM;
    }
    *out = s;
    return PX_OK;
}

static void svc_free(px_shmsvc *s)
{
    void (*done)(void *) = s->done;
    void *done_ud = s->done_ud;
    px_wbuf_fini(&s->wb);
    free(s->scratch);
    free(s->dbuf);
    free(s->labs);
    free(s);
    if (done)
        done(done_ud);
}

void px_shmsvc_close(px_shmsvc *s, void (*done)(void *ud), void *ud)
{
    if (!s) {
        if (done)
            done(ud);
        return;
    }
    s->shutting = true;
    s->done = done;
    s->done_ud = ud;
    while (s->n_labs)
        px_shmsvc_lab_remove(s, s->labs[0]->name);
    if (s->n_live == 0)
        svc_free(s);
}
