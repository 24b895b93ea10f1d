/* plexus-node — CXL memory for this node's guests. See node/cxl.h.
 *
 * Three layers: a guest's bindings (nld rows, as it was or will be started
 * with), the materialised LDs they point at (ncopy: one per LD of a lab on
 * this node, counted by the guests' rows), and the services that move LD
 * data - px_cxlld for fetches and chunk write-backs, px_cxlsync for the
 * changes of shared LDs.
 *
 * This file holds the node's CXL state, the rows and the copies; the pools
 * of the switches homed here, which LDs are shared and the services'
 * configuration and messages are in node/cxl_pools.c. What the two share
 * is in node/cxl_int.h.
 */
#include "node/cxl.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fabric/core/fsutil.h"
#include "fabric/core/log.h"
#include "fabric/cxl-switch/ldsvc.h"
#include "fabric/cxl-switch/ldsync.h"
#include "node/cxl_int.h"
#include "node/guest.h"

/* ---- lookup ---- */

nlab *px_ncxl_lab_of(px_node *n, const char *name, bool create)
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

px_node_lab *px_ncxl_node_lab(px_node *n, const char *name)
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

static ncopy *copy_find(nlab *l, const char *pool, uint32_t ld)
{
    for (uint32_t i = 0; i < l->n_copies; i++)
        if (l->copies[i]->ld == ld && strcmp(l->copies[i]->pool, pool) == 0)
            return l->copies[i];
    return NULL;
}

static bool guest_fetching(const ngst *g)
{
    for (uint32_t i = 0; i < g->n; i++)
        if (g->lds[i].cp && g->lds[i].cp->fetching)
            return true;
    return false;
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
    if (px_cxlsync_new(n->loop, &io, &c->sync) != PX_OK) {
        px_cxlld_close(c->ld, NULL, NULL);
        free(c);
        return px_errmsg_set(em, PX_E_NOMEM, "CXL sync service: out of memory");
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
            /* Its allocation; the pool's ld_size from a coordinator that
             * does not send it. */
            d->size = pc->size ? pc->size : t->cxl_pools[pr.index].ld_size;
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
            strcmp(a[i].pool, b[i].pool) != 0 || a[i].ld != b[i].ld || a[i].size != b[i].size ||
            strcmp(a[i].pool_node, b[i].pool_node) != 0)
            return false;
    return true;
}

/* What a callback is about: a guest (a stop's write-back) or a copy (its
 * fetch, its last write-back), by name - the rows may be gone by then. */
typedef struct cbctx {
    px_node *n;
    char lab[64], guest[64];
    char pool[64];
    uint32_t ld;
    uint64_t gen;
    bool stop; /* a stop's write-back */
} cbctx;

static cbctx *cb_new(px_node *n, const char *lab)
{
    cbctx *cb = calloc(1, sizeof(*cb));
    if (cb) {
        cb->n = n;
        snprintf(cb->lab, sizeof(cb->lab), "%s", lab);
    }
    return cb;
}

static ncopy *cb_copy(const cbctx *cb, nlab **lp)
{
    nlab *l = cb->n->cxlst ? px_ncxl_lab_of(cb->n, cb->lab, false) : NULL;
    ncopy *cp = l ? copy_find(l, cb->pool, cb->ld) : NULL;
    if (lp)
        *lp = l;
    return cp && cp->gen == cb->gen ? cp : NULL;
}

/* ---- copies ---- */

static void copy_drop(struct px_node_cxl *c, nlab *l, ncopy *cp)
{
    if (cp->synced)
        px_cxlsync_copy_close(c->sync, l->name, cp->pool, cp->ld);
    if (cp->have_handle)
        px_cxlld_forget(c->ld, cp->handle);
    for (uint32_t i = 0; i < l->n_copies; i++)
        if (l->copies[i] == cp) {
            l->copies[i] = l->copies[--l->n_copies];
            break;
        }
    free(cp);
}

static void materialise(px_node *n, px_node_lab *nl, nlab *l, ngst *g);

static void left(void *ud, px_err err, const char *msg)
{
    cbctx *cb = ud;
    nlab *l;
    ncopy *cp = cb_copy(cb, &l);
    if (err && err != PX_E_CLOSED)
        PX_WARN("cxl", "last write-back of an LD failed", "lab=%s pool=%s ld=%u detail=\"%s\"",
                cb->lab, cb->pool, cb->ld, msg ? msg : px_errname(err));
    if (cp && cp->leaving && !cp->refs) {
        copy_drop(cb->n->cxlst, l, cp);
        /* Rows that waited for this copy to go (their LD came back at
         * another size) take theirs now. */
        px_node_lab *nl = px_ncxl_node_lab(cb->n, cb->lab);
        bool waited = false;
        for (uint32_t k = 0; nl && k < l->n; k++)
            for (uint32_t i = 0; i < l->g[k].n; i++)
                if (!l->g[k].lds[i].cp && strcmp(l->g[k].lds[i].pool, cb->pool) == 0 &&
                    l->g[k].lds[i].ld == cb->ld) {
                    materialise(cb->n, nl, l, &l->g[k]);
                    waited = true;
                    break;
                }
        if (waited)
            px_node_lab_start(cb->n, nl);
    }
    free(cb);
}

/* The last guest let go of cp: a shared copy sends its last changes, a
 * private one writes back what changed, then the copy is forgotten (its
 * files stay until the lab goes). */
static void copy_put(px_node *n, nlab *l, ncopy *cp)
{
    if (!cp || --cp->refs)
        return;
    struct px_node_cxl *c = n->cxlst;
    if (cp->local || !cp->ready || !cp->have_handle || cp->synced) {
        copy_drop(c, l, cp);
        return;
    }
    cbctx *cb = cb_new(n, l->name);
    px_errmsg em = {{0}};
    if (cb) {
        snprintf(cb->pool, sizeof(cb->pool), "%s", cp->pool);
        cb->ld = cp->ld;
        cb->gen = cp->gen;
    }
    if (!cb || px_cxlld_writeback(c->ld, cp->handle, left, cb, &em) != PX_OK) {
        PX_WARN("cxl", "last write-back of an LD cannot start",
                "lab=%s pool=%s ld=%u detail=\"%s\"", l->name, cp->pool, cp->ld,
                cb ? em.text : "out of memory");
        free(cb);
        copy_drop(c, l, cp);
        return;
    }
    cp->leaving = true;
}

static ncopy *copy_get(px_node *n, nlab *l, const nld *d)
{
    ncopy *cp = copy_find(l, d->pool, d->ld);
    if (cp && cp->size != d->size) {
        /* Unbound, given another allocation and bound again while its
         * last write-back at the old size runs: not the same LD. The row
         * waits; left() materialises it once that copy is gone. */
        PX_INFO("cxl", "LD rebound at another size: waiting for its last write-back",
                "lab=%s pool=%s ld=%u size=%" PRIu64 " new_size=%" PRIu64, l->name, d->pool, d->ld,
                cp->size, d->size);
        return NULL;
    }
    if (cp) {
        cp->refs++;
        cp->leaving = false; /* its last write-back ends without forgetting it */
        return cp;
    }
    ncopy **nc = realloc(l->copies, (l->n_copies + 1) * sizeof(*nc));
    if (!nc)
        return NULL;
    l->copies = nc;
    if (!(cp = calloc(1, sizeof(*cp))))
        return NULL;
    snprintf(cp->pool, sizeof(cp->pool), "%s", d->pool);
    cp->ld = d->ld;
    cp->size = d->size;
    snprintf(cp->pool_node, sizeof(cp->pool_node), "%s", d->pool_node);
    cp->local = strcmp(d->pool_node, n->name) == 0;
    cp->gen = ++n->cxlst->gen;
    cp->refs = 1;
    l->copies[l->n_copies++] = cp;
    return cp;
}

static void lds_release(px_node *n, nlab *l, nld *lds, uint32_t nl)
{
    for (uint32_t i = 0; i < nl; i++) {
        copy_put(n, l, lds[i].cp);
        lds[i].cp = NULL;
    }
    free(lds);
}

/* A guest that cannot start: its state says why (while no QEMU runs). */
static void guests_failed(px_node *n, nlab *l, const ncopy *cp, const char *why)
{
    px_node_lab *nl = px_ncxl_node_lab(n, l->name);
    for (uint32_t k = 0; nl && k < l->n; k++) {
        ngst *g = &l->g[k];
        bool uses = false;
        for (uint32_t i = 0; i < g->n && !uses; i++)
            uses = g->lds[i].cp == cp;
        px_node_guest *ng = uses ? node_guest(nl, g->name) : NULL;
        if (ng && !ng->g) {
            snprintf(ng->state, sizeof(ng->state), "failed");
            snprintf(ng->detail, sizeof(ng->detail), "%s", why);
            px_node_lab_changed(n, nl);
        }
    }
}

static void start_fetch(px_node *n, px_node_lab *nl, nlab *l, ncopy *cp);

/* A shared LD's copy starts syncing: from now on if it is arriving (the
 * changes the hub sends meanwhile are held), at once if it is here. */
static void sync_open(px_node *n, nlab *l, ncopy *cp)
{
    struct px_node_cxl *c = n->cxlst;
    px_errmsg em = {{0}};
    if (px_cxlsync_copy_open(c->sync, l->name, cp->pool, cp->ld, cp->mem, &em) != PX_OK) {
        PX_WARN("cxl", "shared LD cannot be kept in step here",
                "lab=%s pool=%s ld=%u detail=\"%s\"", l->name, cp->pool, cp->ld, em.text);
        return;
    }
    cp->synced = true;
}

static void fetched(void *ud, px_err err, const char *msg)
{
    cbctx *cb = ud;
    px_node *n = cb->n;
    nlab *l;
    ncopy *cp = cb_copy(cb, &l);
    px_node_lab *nl = cp ? px_ncxl_node_lab(n, cb->lab) : NULL;
    if (!cp || !nl || !cp->fetching) {
        free(cb);
        return;
    }
    cp->fetching = false;
    char why[256];
    if (err) {
        PX_WARN("cxl", "LD cannot be copied to this host", "lab=%s pool=%s ld=%u detail=\"%s\"",
                cb->lab, cb->pool, cb->ld, msg ? msg : px_errname(err));
        snprintf(why, sizeof(why), "CXL LD copy failed: %s", msg ? msg : px_errname(err));
        guests_failed(n, l, cp, why);
        free(cb);
        return;
    }
    px_errmsg em = {{0}};
    if (cp->synced) {
        px_err e = px_cxlsync_copy_ready(n->cxlst->sync, cb->lab, cp->pool, cp->ld, &em);
        if (e == PX_E_TOOBIG) { /* changes came faster than the copy: again */
            PX_WARN("cxl", "shared LD copied again", "lab=%s pool=%s ld=%u detail=\"%s\"", cb->lab,
                    cp->pool, cp->ld, em.text);
            free(cb);
            start_fetch(n, nl, l, cp);
            return;
        }
        if (e) {
            snprintf(why, sizeof(why), "CXL LD %u of %s cannot be kept in step: %s", cp->ld,
                     cp->pool, em.text);
            PX_WARN("cxl", "shared LD copy cannot sync", "lab=%s pool=%s ld=%u detail=\"%s\"",
                    cb->lab, cp->pool, cp->ld, em.text);
            guests_failed(n, l, cp, why);
            free(cb);
            return;
        }
    }
    cp->ready = true;
    free(cb);
    PX_INFO("cxl", "LD on this host", "lab=%s pool=%s ld=%u shared=%s", l->name, cp->pool, cp->ld,
            cp->synced ? "yes" : "no");
    px_node_lab_start(n, nl);
}

/* Does a live QEMU of a guest bound to cp's LD run here (its pid file in
 * the lab's directory names a live process)? */
static bool copy_in_use(const px_node_lab *nl, const nlab *l, const ncopy *cp)
{
    for (uint32_t i = 0; i < l->n; i++) {
        bool uses = false;
        for (uint32_t k = 0; k < l->g[i].n && !uses; k++)
            uses = l->g[i].lds[k].ld == cp->ld && strcmp(l->g[i].lds[k].pool, cp->pool) == 0;
        if (!uses)
            continue;
        char path[4200], buf[32] = "";
        snprintf(path, sizeof(path), "%s/%s.pid", nl->dir, l->g[i].name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        bool got = fgets(buf, sizeof(buf), f) != NULL;
        fclose(f);
        long pid = got ? strtol(buf, NULL, 10) : 0;
        if (pid > 0 && kill((pid_t)pid, 0) == 0)
            return true;
    }
    return false;
}

/* Copy cp's LD from its pool's node into LABDIR/cxl/POOL-ld<K>.mem|.lsa. */
static void start_fetch(px_node *n, px_node_lab *nl, nlab *l, ncopy *cp)
{
    struct px_node_cxl *c = n->cxlst;
    snprintf(cp->mem, sizeof(cp->mem), "%s/cxl/%s-ld%u.mem", nl->dir, cp->pool, cp->ld);
    snprintf(cp->lsa, sizeof(cp->lsa), "%s/cxl/%s-ld%u.lsa", nl->dir, cp->pool, cp->ld);
    if (cp->have_handle) {
        px_cxlld_forget(c->ld, cp->handle);
        cp->have_handle = false;
    }
    cbctx *cb = cb_new(n, l->name);
    if (!cb)
        return;
    /* A new generation: the forgotten fetch's PX_E_CLOSED is not ours. */
    cp->gen = ++c->gen;
    snprintf(cb->pool, sizeof(cb->pool), "%s", cp->pool);
    cb->ld = cp->ld;
    cb->gen = cp->gen;
    px_errmsg em = {{0}};
    /* A QEMU that outlived a restart of this node runs on the copy: keep
     * it rather than fetch over the guest's memory. */
    bool keep = copy_in_use(nl, l, cp);
    if (keep)
        PX_INFO("cxl", "LD copy kept for a running guest", "lab=%s pool=%s ld=%u", l->name,
                cp->pool, cp->ld);
    if ((keep ? px_cxlld_adopt : px_cxlld_fetch)(c->ld, l->name, cp->pool, cp->pool_node, cp->ld,
                                                 cp->size, cp->mem, cp->lsa, fetched, cb,
                                                 &cp->handle, &em) != PX_OK) {
        PX_WARN("cxl", "LD copy cannot start", "lab=%s pool=%s ld=%u detail=\"%s\"", l->name,
                cp->pool, cp->ld, em.text);
        free(cb);
        return;
    }
    cp->have_handle = true;
    cp->fetching = true;
    if (px_ncxl_bound_count(l, cp->pool, cp->ld) > 1)
        sync_open(n, l, cp); /* again if it was open: held changes start over */
}

/* Point g's rows at their LDs on this host, starting copies of those not
 * here yet. */
static void materialise(px_node *n, px_node_lab *nl, nlab *l, ngst *g)
{
    struct px_node_cxl *c = n->cxlst;
    for (uint32_t i = 0; i < g->n; i++) {
        nld *d = &g->lds[i];
        if (!d->cp && !(d->cp = copy_get(n, l, d)))
            continue;
        ncopy *cp = d->cp;
        if (cp->ready || cp->fetching)
            continue;
        if (cp->local) {
            if (px_cxlld_pool_paths(c->ld, nl->name, cp->pool, cp->ld, cp->mem, sizeof(cp->mem),
                                    cp->lsa, sizeof(cp->lsa)) == PX_OK)
                cp->ready = true;
            continue;
        }
        start_fetch(n, nl, l, cp);
    }
}

/* The LD's sharing changed (or not): a copy joins or leaves px_cxlsync.
 * A copy that is here when its LD becomes shared takes its twin now and
 * writes back what changed before (the hub's next sync passes that on). */
static void copy_sharing(px_node *n, nlab *l, ncopy *cp);

static void wb_done(void *ud, px_err err, const char *msg)
{
    cbctx *cb = ud;
    if (err && err != PX_E_CLOSED)
        PX_WARN("cxl", "LD write-back failed", "lab=%s pool=%s ld=%u detail=\"%s\"", cb->lab,
                cb->pool, cb->ld, msg ? msg : px_errname(err));
    free(cb);
}

static void copy_sharing(px_node *n, nlab *l, ncopy *cp)
{
    struct px_node_cxl *c = n->cxlst;
    bool shared = px_ncxl_bound_count(l, cp->pool, cp->ld) > 1;
    if (cp->local || shared == cp->synced || (!cp->ready && !cp->fetching))
        return;
    if (!shared) {
        PX_INFO("cxl", "LD no longer shared", "lab=%s pool=%s ld=%u", l->name, cp->pool, cp->ld);
        px_cxlsync_copy_close(c->sync, l->name, cp->pool, cp->ld);
        cp->synced = false;
        return;
    }
    sync_open(n, l, cp);
    if (!cp->synced || cp->fetching)
        return;
    px_errmsg em = {{0}};
    if (px_cxlsync_copy_ready(c->sync, l->name, cp->pool, cp->ld, &em) != PX_OK) {
        PX_WARN("cxl", "shared LD copy cannot sync", "lab=%s pool=%s ld=%u detail=\"%s\"", l->name,
                cp->pool, cp->ld, em.text);
        px_cxlsync_copy_close(c->sync, l->name, cp->pool, cp->ld);
        cp->synced = false;
        return;
    }
    cbctx *cb = cb_new(n, l->name);
    if (!cb)
        return;
    snprintf(cb->pool, sizeof(cb->pool), "%s", cp->pool);
    cb->ld = cp->ld;
    if (px_cxlld_writeback(c->ld, cp->handle, wb_done, cb, &em) != PX_OK) {
        PX_WARN("cxl", "LD write-back cannot start", "lab=%s pool=%s ld=%u detail=\"%s\"", l->name,
                cp->pool, cp->ld, em.text);
        free(cb);
    }
}

/* ---- plans ---- */

static void restart_stale(px_node *n, px_node_lab *nl, px_node_guest *ng, ngst *g);

px_err px_node_cxl_apply(px_node *n, px_node_lab *l, const px_msg_plan *p, px_errmsg *em)
{
    struct px_node_cxl *c = n->cxlst;
    const px_topo *t = l->topo;
    if (!c || (!t->n_cxl_switches && !px_ncxl_lab_of(n, l->name, false)))
        return PX_OK;
    nlab *cl = px_ncxl_lab_of(n, l->name, true);
    if (!cl)
        return px_errmsg_set(em, PX_E_NOMEM, "CXL: out of memory");
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/cxl", l->dir);
    if (t->n_cxl_switches && px_mkdir_p(dir, 0700, em) != PX_OK)
        return PX_E_IO;
    /* The pools of the switches homed here, which LDs are shared now, and
     * the copies that start or stop syncing for it. */
    px_err err = px_ncxl_pools_apply(n, l, cl, p, em);
    if (err)
        return err;
    for (uint32_t i = 0; i < cl->n_copies; i++)
        copy_sharing(n, cl, cl->copies[i]);
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
        /* The new rows take their copies before the old ones let go, so
         * an LD in both is neither forgotten nor fetched again. */
        nld *old = g->lds;
        uint32_t n_old = g->n;
        g->lds = copy;
        g->n = nw;
        if (g->hold && nw) { /* a bind starts a guest its unbind stopped */
            g->hold = false;
            snprintf(ng->state, sizeof(ng->state), "defined");
            ng->detail[0] = '\0';
        }
        materialise(n, l, cl, g);
        lds_release(n, cl, old, n_old);
    }
    return PX_OK;
}

bool px_node_cxl_ready(px_node *n, px_node_lab *l, px_node_guest *ng, px_qemu_cfg *cfg)
{
    cfg->cxl_lds = NULL;
    cfg->n_cxl_lds = 0;
    if (!n->cxlst)
        return true;
    nlab *cl = px_ncxl_lab_of(n, l->name, false);
    ngst *g = cl ? guest_of(cl, ng->name, false) : NULL;
    if (!g)
        return true;
    if (g->hold)
        return false; /* state and detail say why */
    if (guest_fetching(g) || g->writing) {
        snprintf(ng->state, sizeof(ng->state), "defined");
        snprintf(ng->detail, sizeof(ng->detail), "%s",
                 g->writing ? "writing CXL LDs back to their pool"
                            : "copying CXL LDs to this host");
        return false;
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < g->n && k < sizeof(g->q) / sizeof(g->q[0]); i++) {
        const ncopy *cp = g->lds[i].cp;
        const ncopy *old = cp ? NULL : copy_find(cl, g->lds[i].pool, g->lds[i].ld);
        if (old && old->leaving) {
            snprintf(ng->state, sizeof(ng->state), "defined");
            snprintf(ng->detail, sizeof(ng->detail),
                     "CXL LD %u of %s: waiting for its last write-back at its old size",
                     g->lds[i].ld, g->lds[i].pool);
            return false;
        }
        if (!cp || !cp->ready) {
            snprintf(ng->state, sizeof(ng->state), "failed");
            snprintf(ng->detail, sizeof(ng->detail), "CXL LD %u of %s is not on this host",
                     g->lds[i].ld, g->lds[i].pool);
            return false;
        }
        g->q[k++] = (px_qemu_cxl_ld){.attach = g->lds[i].attach,
                                     .vppb = g->lds[i].vppb,
                                     .mem_path = cp->mem,
                                     .lsa_path = cp->lsa,
                                     .size = g->lds[i].size};
    }
    cfg->cxl_lds = g->q;
    cfg->n_cxl_lds = k;
    return true;
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
    nlab *cl = px_ncxl_lab_of(n, nl->name, false);
    if (!cl)
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
    nld *old = g->lds;
    uint32_t n_old = g->n;
    g->lds = g->next;
    g->n = g->n_next;
    g->next = NULL;
    g->n_next = 0;
    g->stale = false;
    g->ran = false;
    if (!restart) {
        lds_release(n, cl, old, n_old);
        g->hold = true; /* defined, not started, until a bind */
        snprintf(ng->state, sizeof(ng->state), "stopped");
        snprintf(ng->detail, sizeof(ng->detail), "its CXL LDs were unbound; a bind starts it");
        return;
    }
    materialise(n, nl, cl, g);
    lds_release(n, cl, old, n_old);
    if (!guest_fetching(g))
        px_node_lab_start(n, nl);
}

static void written(void *ud, px_err err, const char *msg)
{
    cbctx *cb = ud;
    px_node *n = cb->n;
    nlab *l = n->cxlst ? px_ncxl_lab_of(n, cb->lab, false) : NULL;
    ngst *g = l ? guest_of(l, cb->guest, false) : NULL;
    if (err)
        PX_WARN("cxl", "LD write-back failed", "lab=%s guest=%s detail=\"%s\"", cb->lab, cb->guest,
                msg ? msg : px_errname(err));
    if (g && cb->stop && --g->writing == 0) {
        g->stop_wb = false;
        PX_INFO("cxl", "LDs written back", "lab=%s guest=%s", cb->lab, cb->guest);
        px_node_lab *nl = px_ncxl_node_lab(n, cb->lab);
        px_node_guest *ng = nl ? node_guest(nl, cb->guest) : NULL;
        if (nl && ng)
            restart_stale(n, nl, ng, g);
        if (nl)
            px_node_lab_changed(n, nl);
    }
    free(cb);
}

/* A stop of g: its remote LDs go back to their pools - a private copy's
 * changed chunks (acknowledged by the pool's node), a shared copy's changes
 * as a sync point (on their way, in order, when this returns). */
static void write_back(px_node *n, const char *lab, ngst *g)
{
    struct px_node_cxl *c = n->cxlst;
    for (uint32_t i = 0; i < g->n; i++) {
        ncopy *cp = g->lds[i].cp;
        if (!cp || cp->local || !cp->have_handle || !cp->ready)
            continue;
        px_errmsg em = {{0}};
        if (cp->synced) {
            px_cxlsync_result res;
            if (px_cxlsync_now(c->sync, lab, cp->pool, cp->ld, &res, &em) == PX_OK)
                PX_INFO("cxl", "shared LD synchronised at a guest's stop",
                        "lab=%s guest=%s pool=%s ld=%u bytes=%" PRIu64, lab, g->name, cp->pool,
                        cp->ld, res.bytes);
            continue;
        }
        cbctx *cb = cb_new(n, lab);
        if (!cb)
            continue;
        snprintf(cb->guest, sizeof(cb->guest), "%s", g->name);
        cb->stop = true;
        if (px_cxlld_writeback(c->ld, cp->handle, written, cb, &em) != PX_OK) {
            PX_WARN("cxl", "LD write-back cannot start", "lab=%s guest=%s detail=\"%s\"", lab,
                    g->name, em.text);
            free(cb);
            continue;
        }
        g->writing++;
    }
}

void px_node_cxl_guest_changed(px_node *n, px_node_lab *l, px_node_guest *ng)
{
    if (!n->cxlst || !ng->g)
        return;
    nlab *cl = px_ncxl_lab_of(n, l->name, false);
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
    write_back(n, l->name, g);
    if (!g->writing) { /* nothing to wait for: done at once */
        g->stop_wb = false;
        g->writing = 1;
        cbctx *cb = cb_new(n, l->name);
        if (cb) {
            snprintf(cb->guest, sizeof(cb->guest), "%s", g->name);
            cb->stop = true;
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
    nlab *cl = px_ncxl_lab_of((px_node *)n, l->name, false);
    ngst *g = cl ? guest_of(cl, ng->name, false) : NULL;
    return g && g->stop_wb;
}

/* Every PX_NODE_CXL_CHECKPOINT_MS: the private copies that a running guest
 * uses write back what changed (once per copy, however many guests use
 * it). Shared copies have their own, shorter, sync period. */
static void on_ckpt(uv_timer_t *t)
{
    px_node *n = t->data;
    struct px_node_cxl *c = n->cxlst;
    for (uint32_t i = 0; i < c->n_labs; i++) {
        nlab *cl = c->labs[i];
        px_node_lab *nl = px_ncxl_node_lab(n, cl->name);
        for (uint32_t k = 0; nl && k < cl->n_copies; k++) {
            ncopy *cp = cl->copies[k];
            if (cp->local || cp->synced || !cp->ready || !cp->have_handle || cp->leaving)
                continue;
            bool running = false;
            for (uint32_t j = 0; j < cl->n && !running; j++) {
                px_node_guest *ng = node_guest(nl, cl->g[j].name);
                if (!ng || !ng->g || px_guest_get_state(ng->g) != PX_GUEST_RUNNING)
                    continue;
                for (uint32_t d = 0; d < cl->g[j].n && !running; d++)
                    running = cl->g[j].lds[d].cp == cp;
            }
            if (!running)
                continue;
            cbctx *cb = cb_new(n, cl->name);
            px_errmsg em = {{0}};
            if (!cb)
                continue;
            snprintf(cb->pool, sizeof(cb->pool), "%s", cp->pool);
            cb->ld = cp->ld;
            if (px_cxlld_writeback(c->ld, cp->handle, wb_done, cb, &em) != PX_OK)
                free(cb);
        }
    }
}

static void lab_free(struct px_node_cxl *c, nlab *l)
{
    for (uint32_t i = 0; i < l->n; i++) {
        free(l->g[i].lds);
        free(l->g[i].next);
    }
    free(l->g);
    for (uint32_t i = 0; i < l->n_copies; i++) {
        if (l->copies[i]->have_handle)
            px_cxlld_forget(c->ld, l->copies[i]->handle);
        free(l->copies[i]);
    }
    free(l->copies);
    free(l->binds);
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
    px_cxlsync_lab_remove(c->sync, lab);
    px_cxlld_lab_remove(c->ld, lab);
}

/* ---- closing ---- */

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

static void svc_closed(void *ud)
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
    *k = (closing){.c = c, .done = done, .ud = ud, .left = 3};
    c->ckpt.data = k;
    uv_close((uv_handle_t *)&c->ckpt, ckpt_closed);
    px_cxlsync_close(c->sync, svc_closed, k);
    px_cxlld_close(c->ld, svc_closed, k);
}
