/* plexus-node — CXL memory for this node's guests. See node/cxl.h. */
#include "node/cxl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fabric/core/fsutil.h"
#include "fabric/core/log.h"
#include "fabric/cxl-switch/ldsvc.h"
#include "node/guest.h"

/* One LD bound to a local guest. */
typedef struct nld {
    uint32_t attach, vppb;
    char pool[64];
    uint32_t ld;
    uint64_t size;
    char pool_node[64];
    bool local; /* the pool is on this node: its own files */
    char mem[PX_QEMU_CXL_MAX_PATH], lsa[PX_QEMU_CXL_MAX_PATH];
    uint64_t handle; /* the fetch's (remote LDs) */
    bool have_handle;
    bool ready; /* the files hold the LD */
} nld;

/* The CXL side of one guest of a lab on this node, by name (the lab's guest
 * rows are rebuilt at every plan). */
typedef struct ngst {
    char name[64];
    nld *lds; /* as the guest was (or will be) started with */
    uint32_t n;
    nld *next; /* bindings changed: for its next start */
    uint32_t n_next;
    bool stale;
    uint32_t fetching, writing; /* in flight */
    bool stop_wb;               /* a stop's write-back runs */
    bool ran;                   /* was running: its next stop writes back */
    bool hold;                  /* stopped with its LDs unbound: not started until a bind */
    px_qemu_cxl_ld q[PX_QEMU_CXL_VPPBS * 32];
} ngst;

typedef struct nlab {
    char name[64];
    ngst *g;
    uint32_t n;
    char pools[64][64]; /* pools opened here */
    uint32_t n_pools;
} nlab;

struct px_node_cxl {
    px_cxlld *ld;
    nlab **labs;
    uint32_t n_labs;
    uv_timer_t ckpt;
};

/* ---- lookup ---- */

static nlab *lab_of(px_node *n, const char *name, bool create)
{
    struct px_node_cxl *c = n->cxlst;
    for (uint32_t i = 0; i < c->n_labs; i++)
        if (strcmp(c->labs[i]->name, name) == 0)
            return c->labs[i];
    if (!create)
        return NULL;
    nlab **nl = realloc(c->labs, (c->n_labs + 1) * sizeof(*nl));
    if (!nl)
        return NULL;
    c->labs = nl;
    nlab *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    snprintf(l->name, sizeof(l->name), "%s", name);
    c->labs[c->n_labs++] = l;
    return l;
}

static ngst *guest_of(nlab *l, const char *name, bool create)
{
    for (uint32_t i = 0; i < l->n; i++)
        if (strcmp(l->g[i].name, name) == 0)
            return &l->g[i];
    if (!create)
        return NULL;
    ngst *ng = realloc(l->g, (l->n + 1) * sizeof(*ng));
    if (!ng)
        return NULL;
    l->g = ng;
    memset(&l->g[l->n], 0, sizeof(l->g[l->n]));
    snprintf(l->g[l->n].name, sizeof(l->g[l->n].name), "%s", name);
    return &l->g[l->n++];
}

static px_node_lab *node_lab(px_node *n, const char *name)
{
    for (uint32_t i = 0; i < n->n_labs; i++)
        if (strcmp(n->labs[i]->name, name) == 0)
            return n->labs[i];
    return NULL;
}

static px_node_guest *node_guest(px_node_lab *l, const char *name)
{
    for (uint32_t i = 0; i < l->n_guests; i++)
        if (strcmp(l->guests[i].name, name) == 0)
            return &l->guests[i];
    return NULL;
}

/* ---- the service ---- */

static void on_ckpt(uv_timer_t *t);

px_err px_node_cxl_start(px_node *n, px_errmsg *em)
{
    px_svc_io io;
    px_node_svc_io(n, &io);
    struct px_node_cxl *c = calloc(1, sizeof(*c));
    if (!c || px_cxlld_new(n->loop, &io, &c->ld) != PX_OK) {
        free(c);
        return px_errmsg_set(em, PX_E_NOMEM, "CXL service: out of memory");
    }
    uv_timer_init(n->loop, &c->ckpt);
    c->ckpt.data = n;
    uv_timer_start(&c->ckpt, on_ckpt, PX_NODE_CXL_CHECKPOINT_MS, PX_NODE_CXL_CHECKPOINT_MS);
    uv_unref((uv_handle_t *)&c->ckpt);
    n->cxlst = c;
    return PX_OK;
}

/* The LDs guest gu (topology index g) has bound in the plan. */
static uint32_t wanted(const px_node_lab *l, const px_msg_plan *p, uint32_t g, nld *out,
                       uint32_t cap)
{
    const px_topo *t = l->topo;
    const px_topo_guest *gu = &t->guests[g];
    uint32_t k = 0;
    for (uint32_t b = 0; b < p->n_cxl && k < cap; b++) {
        const px_plan_cxl *pc = &p->cxl[b];
        for (uint32_t a = 0; a < gu->n_cxls; a++) {
            const px_topo_cxlif *ci = &gu->cxls[a];
            if (!px_str_eq(pc->sw, t->cxl_switches[ci->sw].name) || pc->vcs != ci->port ||
                pc->vppb >= PX_QEMU_CXL_VPPBS)
                continue;
            char pool[64];
            px_str_copy(pool, sizeof(pool), pc->pool);
            px_topo_ref pr;
            if (!px_topo_find_net(t, pool, &pr) || pr.type != PX_TOPO_OBJ_CXL_POOL)
                continue;
            nld *d = &out[k++];
            memset(d, 0, sizeof(*d));
            d->attach = a;
            d->vppb = pc->vppb;
            snprintf(d->pool, sizeof(d->pool), "%s", pool);
            d->ld = pc->ld;
            d->size = t->cxl_pools[pr.index].ld_size;
            /* The pool's node: the home of its switch. */
            for (uint32_t i = 0; i < p->n_nets; i++)
                if (px_str_eq(p->nets[i].name, t->cxl_switches[ci->sw].name))
                    px_str_copy(d->pool_node, sizeof(d->pool_node), p->nets[i].home);
        }
    }
    return k;
}

static bool same_lds(const nld *a, uint32_t na, const nld *b, uint32_t nb)
{
    if (na != nb)
        return false;
    for (uint32_t i = 0; i < na; i++)
        if (a[i].attach != b[i].attach || a[i].vppb != b[i].vppb ||
            strcmp(a[i].pool, b[i].pool) != 0 || a[i].ld != b[i].ld ||
            strcmp(a[i].pool_node, b[i].pool_node) != 0)
            return false;
    return true;
}

typedef struct cbctx {
    px_node *n;
    char lab[64], guest[64];
    uint32_t idx; /* in the guest's lds */
    bool stop;    /* a stop's write-back */
} cbctx;

static void guest_ready(px_node *n, const char *lab, const char *guest);
static void restart_stale(px_node *n, px_node_lab *nl, px_node_guest *ng, ngst *g);

static void fetched(void *ud, px_err err, const char *msg)
{
    cbctx *cb = ud;
    px_node *n = cb->n;
    nlab *l = n->cxlst ? lab_of(n, cb->lab, false) : NULL;
    ngst *g = l ? guest_of(l, cb->guest, false) : NULL;
    if (g) {
        g->fetching--;
        if (err) {
            PX_WARN("cxl", "LD cannot be copied to this host", "lab=%s guest=%s detail=\"%s\"",
                    cb->lab, cb->guest, msg ? msg : px_errname(err));
            px_node_lab *nl = node_lab(n, cb->lab);
            px_node_guest *ng = nl ? node_guest(nl, cb->guest) : NULL;
            if (ng && !ng->g) {
                snprintf(ng->state, sizeof(ng->state), "failed");
                snprintf(ng->detail, sizeof(ng->detail), "CXL LD copy failed: %s",
                         msg ? msg : px_errname(err));
                px_node_lab_changed(n, nl);
            }
        } else if (cb->idx < g->n) {
            g->lds[cb->idx].ready = true;
            if (!g->fetching)
                guest_ready(n, cb->lab, cb->guest);
        }
    }
    free(cb);
}

/* Start copying g's LDs that are not on this host yet. */
static void materialise(px_node *n, px_node_lab *nl, ngst *g)
{
    struct px_node_cxl *c = n->cxlst;
    for (uint32_t i = 0; i < g->n; i++) {
        nld *d = &g->lds[i];
        if (d->ready)
            continue;
        if (strcmp(d->pool_node, n->name) == 0) {
            d->local = true;
            if (px_cxlld_pool_paths(c->ld, nl->name, d->pool, d->ld, d->mem, sizeof(d->mem), d->lsa,
                                    sizeof(d->lsa)) == PX_OK)
                d->ready = true;
            continue;
        }
        snprintf(d->mem, sizeof(d->mem), "%s/cxl/%s-a%u-v%u.mem", nl->dir, g->name, d->attach,
                 d->vppb);
        snprintf(d->lsa, sizeof(d->lsa), "%s/cxl/%s-a%u-v%u.lsa", nl->dir, g->name, d->attach,
                 d->vppb);
        cbctx *cb = calloc(1, sizeof(*cb));
        if (!cb)
            continue;
        *cb = (cbctx){.n = n, .idx = i};
        snprintf(cb->lab, sizeof(cb->lab), "%s", nl->name);
        snprintf(cb->guest, sizeof(cb->guest), "%s", g->name);
        px_errmsg em = {{0}};
        if (d->have_handle) {
            px_cxlld_forget(c->ld, d->handle);
            d->have_handle = false;
        }
        if (px_cxlld_fetch(c->ld, nl->name, d->pool, d->pool_node, d->ld, d->mem, d->lsa, fetched,
                           cb, &d->handle, &em) != PX_OK) {
            PX_WARN("cxl", "LD copy cannot start", "lab=%s guest=%s pool=%s ld=%u detail=\"%s\"",
                    nl->name, g->name, d->pool, d->ld, em.text);
            free(cb);
            continue;
        }
        d->have_handle = true;
        g->fetching++;
    }
}

px_err px_node_cxl_apply(px_node *n, px_node_lab *l, const px_msg_plan *p, px_errmsg *em)
{
    struct px_node_cxl *c = n->cxlst;
    const px_topo *t = l->topo;
    if (!c || (!t->n_cxl_switches && !lab_of(n, l->name, false)))
        return PX_OK;
    nlab *cl = lab_of(n, l->name, true);
    if (!cl)
        return px_errmsg_set(em, PX_E_NOMEM, "CXL: out of memory");
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/cxl", l->dir);
    if (t->n_cxl_switches && px_mkdir_p(dir, 0700, em) != PX_OK)
        return PX_E_IO;
    /* The pools of the switches homed here. */
    for (uint32_t i = 0; i < p->n_nets; i++) {
        char name[64];
        px_str_copy(name, sizeof(name), p->nets[i].name);
        px_topo_ref ref;
        if (!px_topo_find_net(t, name, &ref) || ref.type != PX_TOPO_OBJ_CXL_SWITCH ||
            !px_str_eq(p->nets[i].home, n->name))
            continue;
        for (uint32_t k = 0; k < t->n_cxl_pools; k++) {
            const px_topo_cxl_pool *pl = &t->cxl_pools[k];
            bool open = false;
            for (uint32_t j = 0; j < cl->n_pools && !open; j++)
                open = strcmp(cl->pools[j], pl->name) == 0;
            if (pl->sw != ref.index || open || cl->n_pools == 64)
                continue;
            snprintf(dir, sizeof(dir), "%s/cxl/%s", l->dir, pl->name);
            px_err err =
                px_cxlld_pool_open(c->ld, l->name, pl->name, dir, pl->n_lds, pl->ld_size, em);
            if (err)
                return err;
            snprintf(cl->pools[cl->n_pools++], sizeof(cl->pools[0]), "%s", pl->name);
            PX_INFO("cxl", "pool open", "lab=%s pool=%s lds=%u ld_size=%" PRIu64, l->name, pl->name,
                    pl->n_lds, pl->ld_size);
        }
    }
    /* The LDs of this node's guests. */
    nld want[PX_QEMU_CXL_VPPBS * 32];
    for (uint32_t i = 0; i < l->n_guests; i++) {
        px_node_guest *ng = &l->guests[i];
        if (ng->index == PX_TOPO_NONE || !t->guests[ng->index].n_cxls)
            continue;
        uint32_t nw = wanted(l, p, ng->index, want, sizeof(want) / sizeof(want[0]));
        ngst *g = guest_of(cl, ng->name, true);
        if (!g)
            return px_errmsg_set(em, PX_E_NOMEM, "CXL: out of memory");
        bool created = ng->g != NULL;
        if (same_lds(g->lds, g->n, want, nw) && !g->stale)
            continue;
        nld *copy = calloc(nw + 1, sizeof(*copy));
        if (!copy)
            return px_errmsg_set(em, PX_E_NOMEM, "CXL: out of memory");
        memcpy(copy, want, nw * sizeof(*copy));
        if (created) {
            /* Running (or stopped but kept): the new bindings wait for
             * its next start. */
            free(g->next);
            g->next = copy;
            g->n_next = nw;
            g->stale = !same_lds(g->lds, g->n, want, nw);
            if (!g->stale) {
                free(g->next);
                g->next = NULL;
                g->n_next = 0;
            }
            restart_stale(n, l, ng, g); /* stopped: now */
            continue;
        }
        for (uint32_t k = 0; k < g->n; k++)
            if (g->lds[k].have_handle)
                px_cxlld_forget(c->ld, g->lds[k].handle);
        free(g->lds);
        g->lds = copy;
        g->n = nw;
        if (g->hold && nw) { /* a bind starts a guest its unbind stopped */
            g->hold = false;
            snprintf(ng->state, sizeof(ng->state), "defined");
            ng->detail[0] = '\0';
        }
        materialise(n, l, g);
    }
    return PX_OK;
}

bool px_node_cxl_ready(px_node *n, px_node_lab *l, px_node_guest *ng, px_qemu_cfg *cfg)
{
    cfg->cxl_lds = NULL;
    cfg->n_cxl_lds = 0;
    if (!n->cxlst)
        return true;
    nlab *cl = lab_of(n, l->name, false);
    ngst *g = cl ? guest_of(cl, ng->name, false) : NULL;
    if (!g)
        return true;
    if (g->hold)
        return false; /* state and detail say why */
    if (g->fetching || g->writing) {
        snprintf(ng->state, sizeof(ng->state), "defined");
        snprintf(ng->detail, sizeof(ng->detail), "%s",
                 g->writing ? "writing CXL LDs back to their pool"
                            : "copying CXL LDs to this host");
        return false;
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < g->n && k < sizeof(g->q) / sizeof(g->q[0]); i++) {
        if (!g->lds[i].ready) {
            snprintf(ng->state, sizeof(ng->state), "failed");
            snprintf(ng->detail, sizeof(ng->detail), "CXL LD %u of %s is not on this host",
                     g->lds[i].ld, g->lds[i].pool);
            return false;
        }
        g->q[k++] = (px_qemu_cxl_ld){.attach = g->lds[i].attach,
                                     .vppb = g->lds[i].vppb,
                                     .mem_path = g->lds[i].mem,
                                     .lsa_path = g->lds[i].lsa,
                                     .size = g->lds[i].size};
    }
    cfg->cxl_lds = g->q;
    cfg->n_cxl_lds = k;
    return true;
}

static void guest_ready(px_node *n, const char *lab, const char *guest)
{
    px_node_lab *nl = node_lab(n, lab);
    if (nl) {
        PX_INFO("cxl", "LDs on this host", "lab=%s guest=%s", lab, guest);
        px_node_lab_start(n, nl);
    }
}

/* A stopped guest whose bindings changed starts again with its new LDs: a
 * new QEMU command line, once they are on this host. */
static void restart_stale(px_node *n, px_node_lab *nl, px_node_guest *ng, ngst *g)
{
    if (!g->stale || !ng->g || g->writing || g->stop_wb)
        return;
    px_guest_state st = px_guest_get_state(ng->g);
    if (st != PX_GUEST_STOPPED && st != PX_GUEST_FAILED)
        return;
    /* Only a bind starts a stopped guest; after an unbind alone it stays
     * stopped, with fewer LDs for whenever it starts. */
    bool added = false;
    for (uint32_t i = 0; i < g->n_next && !added; i++) {
        added = true;
        for (uint32_t k = 0; k < g->n && added; k++)
            added = !same_lds(&g->next[i], 1, &g->lds[k], 1);
    }
    bool restart = added || st == PX_GUEST_FAILED;
    PX_INFO("cxl", "new CXL bindings for a stopped guest", "lab=%s guest=%s lds=%u restart=%s",
            nl->name, g->name, g->n_next, restart ? "yes" : "no");
    px_guest_close(ng->g, NULL, NULL);
    ng->g = NULL;
    snprintf(ng->state, sizeof(ng->state), "defined");
    ng->detail[0] = '\0';
    for (uint32_t k = 0; k < g->n; k++)
        if (g->lds[k].have_handle)
            px_cxlld_forget(n->cxlst->ld, g->lds[k].handle);
    free(g->lds);
    g->lds = g->next;
    g->n = g->n_next;
    g->next = NULL;
    g->n_next = 0;
    g->stale = false;
    g->ran = false;
    if (!restart) {
        g->hold = true; /* defined, not started, until a bind */
        snprintf(ng->state, sizeof(ng->state), "stopped");
        snprintf(ng->detail, sizeof(ng->detail), "its CXL LDs were unbound; a bind starts it");
        return;
    }
    materialise(n, nl, g);
    if (!g->fetching)
        px_node_lab_start(n, nl);
}

static void written(void *ud, px_err err, const char *msg)
{
    cbctx *cb = ud;
    px_node *n = cb->n;
    nlab *l = n->cxlst ? lab_of(n, cb->lab, false) : NULL;
    ngst *g = l ? guest_of(l, cb->guest, false) : NULL;
    if (err)
        PX_WARN("cxl", "LD write-back failed", "lab=%s guest=%s detail=\"%s\"", cb->lab, cb->guest,
                msg ? msg : px_errname(err));
    if (g && cb->stop && --g->writing == 0) {
        g->stop_wb = false;
        PX_INFO("cxl", "LDs written back", "lab=%s guest=%s", cb->lab, cb->guest);
        px_node_lab *nl = node_lab(n, cb->lab);
        px_node_guest *ng = nl ? node_guest(nl, cb->guest) : NULL;
        if (nl && ng)
            restart_stale(n, nl, ng, g);
        if (nl)
            px_node_lab_changed(n, nl);
    }
    free(cb);
}

/* Write g's remote LDs back to their pools. */
static void write_back(px_node *n, const char *lab, ngst *g, bool stop)
{
    for (uint32_t i = 0; i < g->n; i++) {
        nld *d = &g->lds[i];
        if (d->local || !d->have_handle || !d->ready)
            continue;
        cbctx *cb = calloc(1, sizeof(*cb));
        if (!cb)
            continue;
        *cb = (cbctx){.n = n, .idx = i, .stop = stop};
        snprintf(cb->lab, sizeof(cb->lab), "%s", lab);
        snprintf(cb->guest, sizeof(cb->guest), "%s", g->name);
        px_errmsg em = {{0}};
        if (px_cxlld_writeback(n->cxlst->ld, d->handle, written, cb, &em) != PX_OK) {
            PX_WARN("cxl", "LD write-back cannot start", "lab=%s guest=%s detail=\"%s\"", lab,
                    g->name, em.text);
            free(cb);
            continue;
        }
        if (stop)
            g->writing++;
    }
}

void px_node_cxl_guest_changed(px_node *n, px_node_lab *l, px_node_guest *ng)
{
    if (!n->cxlst || !ng->g)
        return;
    nlab *cl = lab_of(n, l->name, false);
    ngst *g = cl ? guest_of(cl, ng->name, false) : NULL;
    if (!g)
        return;
    px_guest_state st = px_guest_get_state(ng->g);
    if (st == PX_GUEST_RUNNING || st == PX_GUEST_STARTING) {
        g->ran = true;
        return;
    }
    if ((st != PX_GUEST_STOPPED && st != PX_GUEST_FAILED) || !g->ran)
        return;
    g->ran = false;
    g->stop_wb = true;
    write_back(n, l->name, g, true);
    if (!g->writing) { /* nothing remote: done at once */
        g->stop_wb = false;
        g->writing = 1;
        cbctx *cb = calloc(1, sizeof(*cb));
        if (cb) {
            *cb = (cbctx){.n = n, .stop = true};
            snprintf(cb->lab, sizeof(cb->lab), "%s", l->name);
            snprintf(cb->guest, sizeof(cb->guest), "%s", g->name);
            written(cb, PX_OK, NULL);
        } else {
            g->writing = 0;
        }
    }
}

bool px_node_cxl_busy(const px_node *n, const px_node_lab *l, const px_node_guest *ng)
{
    if (!n->cxlst)
        return false;
    nlab *cl = lab_of((px_node *)n, l->name, false);
    ngst *g = cl ? guest_of(cl, ng->name, false) : NULL;
    return g && g->stop_wb;
}

static void on_ckpt(uv_timer_t *t)
{
    px_node *n = t->data;
    struct px_node_cxl *c = n->cxlst;
    for (uint32_t i = 0; i < c->n_labs; i++) {
        nlab *cl = c->labs[i];
        px_node_lab *nl = node_lab(n, cl->name);
        for (uint32_t k = 0; nl && k < cl->n; k++) {
            px_node_guest *ng = node_guest(nl, cl->g[k].name);
            if (ng && ng->g && px_guest_get_state(ng->g) == PX_GUEST_RUNNING)
                write_back(n, cl->name, &cl->g[k], false);
        }
    }
}

static void lab_free(struct px_node_cxl *c, nlab *l)
{
    for (uint32_t i = 0; i < l->n; i++) {
        for (uint32_t k = 0; k < l->g[i].n; k++)
            if (l->g[i].lds[k].have_handle)
                px_cxlld_forget(c->ld, l->g[i].lds[k].handle);
        free(l->g[i].lds);
        free(l->g[i].next);
    }
    free(l->g);
    free(l);
}

void px_node_cxl_remove(px_node *n, const char *lab)
{
    struct px_node_cxl *c = n->cxlst;
    if (!c)
        return;
    for (uint32_t i = 0; i < c->n_labs; i++)
        if (strcmp(c->labs[i]->name, lab) == 0) {
            lab_free(c, c->labs[i]);
            c->labs[i] = c->labs[--c->n_labs];
            break;
        }
    px_cxlld_lab_remove(c->ld, lab);
}

void px_node_cxl_msg(px_node *n, const px_peer *from, const px_msg_cxl *m)
{
    if (n->cxlst)
        px_cxlld_on_msg(n->cxlst->ld, from, m);
}

typedef struct closing {
    struct px_node_cxl *c;
    void (*done)(void *ud);
    void *ud;
    unsigned left;
} closing;

static void close_step(closing *k)
{
    if (--k->left)
        return;
    void (*done)(void *) = k->done;
    void *ud = k->ud;
    free(k->c->labs);
    free(k->c);
    free(k);
    if (done)
        done(ud);
}

static void ckpt_closed(uv_handle_t *h)
{
    close_step(h->data);
}

static void ld_closed(void *ud)
{
    close_step(ud);
}

void px_node_cxl_close(px_node *n, void (*done)(void *ud), void *ud)
{
    struct px_node_cxl *c = n->cxlst;
    n->cxlst = NULL;
    closing *k = c ? calloc(1, sizeof(*k)) : NULL;
    if (!k) {
        if (c) { /* out of memory: leak rather than free live handles */
            uv_timer_stop(&c->ckpt);
        }
        if (done)
            done(ud);
        return;
    }
    for (uint32_t i = 0; i < c->n_labs; i++)
        lab_free(c, c->labs[i]);
    c->n_labs = 0;
    *k = (closing){.c = c, .done = done, .ud = ud, .left = 2};
    c->ckpt.data = k;
    uv_close((uv_handle_t *)&c->ckpt, ckpt_closed);
    px_cxlld_close(c->ld, ld_closed, k);
}
