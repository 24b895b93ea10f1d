/* plexus — shared CXL LDs kept in step between hosts. See ldsync.h.
 *
 * A replica is one file of a shared LD on this node and its twin. The scan
 * walks the file's data extents (SEEK_DATA/SEEK_HOLE) a piece at a time:
 * a data piece is read with pread and compared with the twin; a hole is
 * compared as zeros, and only where the twin may hold something else - a
 * bit per piece says whether any byte of the twin there was ever written -
 * so an LD that is mostly holes costs neither page cache for the holes,
 * nor resident twin pages, nor a compare. Writes go through pwrite:
 * QEMU maps the same file MAP_SHARED (share=on), and the page cache is one,
 * so a guest sees them at once.
 */
#include "fabric/cxl-switch/ldsync.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fabric/core/log.h"
#include "fabric/core/outq.h"
#include "fabric/core/text.h"
#include "fabric/shm/diff.h"

#define PIECE          (1u << 20) /* bytes read and compared at a time */
#define QUEUE_RETRY_MS 1u         /* held messages to a full link */
#define NAME_CAP       PX_WIRE_MAX_NAME
#define PATH_CAP       4096u
#define BLOB           PX_WIRE_MAX_SHM_BLOB
#define NO_LD          UINT32_MAX

/* Messages to one node, in order. */
typedef struct dest {
    char node[NAME_CAP + 1];
    px_outq q;
} dest;

/* Changes from the hub for a copy still arriving. */
typedef struct held {
    struct held *next;
    uint64_t base;
    uint32_t len;
    uint8_t recs[];
} held;

typedef struct spool spool;

typedef struct rep {
    spool *pool;
    uint32_t ld;
    bool ready; /* file and twin agree as of the last sync point */
    bool lost;  /* a copy: more changes arrived than could be held */
    char path[PATH_CAP];
    int fd;
    uint8_t *twin;
    uint8_t *touched; /* a bit per PIECE of the twin: written since calloc */
    held *hhead, *htail;
    size_t hbytes;
    uint64_t due_ms;
} rep;

struct spool {
    char lab[NAME_CAP + 1], name[NAME_CAP + 1], hub[NAME_CAP + 1];
    uint64_t key;
    uint64_t size[PX_WIRE_MAX_CXL_LDS]; /* bytes of each LD's memory */
    uint32_t n_lds;
    uint64_t period_ms;
    bool is_hub;
    char dir[PATH_CAP];
    char (*hosts)[NAME_CAP + 1];
    uint32_t n_hosts;
    rep *reps[PX_WIRE_MAX_CXL_LDS];
};

struct px_cxlsync {
    uv_loop_t *loop;
    px_svc_io io;
    spool **pools;
    uint32_t n_pools;
    dest *dests;
    uint32_t n_dests;
    uv_timer_t tick, qtimer;
    bool qtimer_on;
    px_msg *scratch;
    px_wbuf wb;
    uint8_t *rbuf;  /* PIECE read from a file */
    uint8_t *zeros; /* PIECE of zeros: what a hole reads as */
    uint8_t *dbuf;  /* BLOB of records being filled */
    px_cxlsync_stats st;
    unsigned closing;
    void (*done)(void *ud);
    void *done_ud;
};

static uint32_t get32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* ---- sending, in order per node ---- */

static void on_qtimer(uv_timer_t *t);

static dest *dest_of(px_cxlsync *s, const char *node)
{
    for (uint32_t i = 0; i < s->n_dests; i++)
        if (strcmp(s->dests[i].node, node) == 0)
            return &s->dests[i];
    dest *nd = realloc(s->dests, (s->n_dests + 1) * sizeof(*nd));
    if (!nd)
        return NULL;
    s->dests = nd;
    dest *d = &s->dests[s->n_dests++];
    memset(d, 0, sizeof(*d));
    snprintf(d->node, sizeof(d->node), "%s", node);
    return d;
}

/* The encoded message in s->wb to `node`, behind anything held for it; a
 * full link holds it (up to PX_CXLSYNC_QUEUE_MAX), no link drops it: a
 * lost DIFF cannot be sent again (the twin has moved on), so it is held
 * rather than lost whenever the data plane says "later". */
static void out_send(px_cxlsync *s, const char *node)
{
    dest *d = dest_of(s, node);
    if (!d) {
        s->st.dropped++;
        return;
    }
    px_err err = px_outq_send(&d->q, &s->io, node, s->wb.data, s->wb.len, PX_CXLSYNC_QUEUE_MAX);
    if (err == PX_E_AGAIN) {
        s->st.queued++;
        if (!s->qtimer_on) {
            s->qtimer_on = true;
            uv_timer_start(&s->qtimer, on_qtimer, QUEUE_RETRY_MS, QUEUE_RETRY_MS);
        }
    } else if (err == PX_E_TOOBIG || err == PX_E_NOMEM) {
        if (s->st.dropped++ == 0)
            PX_WARN("cxlsync", "link to a node stays full; dropping LD changes for it",
                    "node=%s held=%zu", node, d->q.bytes);
    } else if (err != PX_OK) {
        s->st.dropped++;
        PX_DEBUG("cxlsync", "no link to a node", "node=%s err=%s", node, px_errname(err));
    }
}

static void on_qtimer(uv_timer_t *t)
{
    px_cxlsync *s = t->data;
    bool waiting = false;
    for (uint32_t i = 0; i < s->n_dests; i++)
        waiting |= px_outq_flush(&s->dests[i].q, &s->io, s->dests[i].node, &s->st.dropped);
    if (!waiting) {
        uv_timer_stop(&s->qtimer);
        s->qtimer_on = false;
    }
}

static px_err encode(px_cxlsync *s, const px_msg_cxlsync *b)
{
    px_msg *m = s->scratch;
    memset(&m->env, 0, sizeof(m->env));
    m->env.type = PX_MSG_CXLSYNC;
    m->body.cxlsync = *b;
    px_wbuf_reset(&s->wb);
    px_errmsg em = {{0}};
    px_err err = px_wire_encode(&s->wb, m, &em);
    if (err)
        PX_ERROR("cxlsync", "cannot encode a CXLSYNC message", "err=%s detail=\"%s\"",
                 px_errname(err), em.text);
    return err;
}

/* To the hub from a host; from the hub to every host but `except`.
 * Returns the nodes it went to. */
static uint32_t send_diff(px_cxlsync *s, const spool *p, const px_msg_cxlsync *b,
                          const char *except)
{
    if (encode(s, b) != PX_OK)
        return 0;
    if (!p->is_hub) {
        out_send(s, p->hub);
        return 1;
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < p->n_hosts; i++) {
        const char *h = p->hosts[i];
        if (strcmp(h, s->io.self) == 0 || (except && strcmp(h, except) == 0))
            continue;
        out_send(s, h);
        n++;
    }
    return n;
}

/* ---- replicas ---- */

static void held_free(rep *r)
{
    held *h = r->hhead;
    while (h) {
        held *n = h->next;
        free(h);
        h = n;
    }
    r->hhead = r->htail = NULL;
    r->hbytes = 0;
}

static void rep_free(rep *r)
{
    if (!r)
        return;
    held_free(r);
    if (r->fd >= 0)
        close(r->fd);
    free(r->twin);
    free(r->touched);
    free(r);
}

/* [a, b) of the file's data, from `from` on: the next data extent, or
 * a = b = size when only holes are left. A file system without
 * SEEK_DATA gives one extent: all of it. */
static void next_data(int fd, uint64_t from, uint64_t size, uint64_t *a, uint64_t *b)
{
    off_t d = lseek(fd, (off_t)from, SEEK_DATA);
    if (d < 0) {
        *a = *b = errno == ENXIO ? size : from;
        if (errno != ENXIO)
            *b = size;
        return;
    }
    off_t h = lseek(fd, d, SEEK_HOLE);
    *a = (uint64_t)d < size ? (uint64_t)d : size;
    *b = h < 0 || (uint64_t)h > size ? size : (uint64_t)h;
}

static px_err read_full(int fd, uint8_t *buf, size_t len, uint64_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, buf + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return PX_E_IO;
        if (n == 0) { /* past the end: reads as zeros */
            memset(buf + done, 0, len - done);
            break;
        }
        done += (size_t)n;
    }
    return PX_OK;
}

/* Twin bytes [off, off + len) may be other than zero now. */
static void touch(rep *r, uint64_t off, uint64_t len)
{
    if (!len)
        return;
    for (uint64_t k = off / PIECE; k <= (off + len - 1) / PIECE; k++)
        r->touched[k / 8] |= (uint8_t)(1u << (k % 8));
}

static bool touched(const rep *r, uint64_t off)
{
    uint64_t k = off / PIECE;
    return r->touched[k / 8] & (1u << (k % 8));
}

/* The twin: the file's data extents copied, the rest left as calloc's
 * untouched zero pages. */
static px_err take_twin(px_cxlsync *s, rep *r, px_errmsg *em)
{
    uint64_t size = r->pool->size[r->ld];
    if (!r->twin && !(r->twin = calloc(1, size)))
        return px_errmsg_set(em, PX_E_NOMEM,
                             "no memory for the twin of LD %u of pool %s (%" PRIu64 " bytes)",
                             r->ld, r->pool->name, size);
    if (!r->touched && !(r->touched = calloc(1, (size + PIECE - 1) / PIECE / 8 + 1)))
        return px_errmsg_set(em, PX_E_NOMEM, "out of memory");
    uint64_t off = 0;
    while (off < size) {
        uint64_t a, b;
        next_data(r->fd, off, size, &a, &b);
        if (a >= size)
            break;
        if (read_full(r->fd, r->twin + a, (size_t)(b - a), a) != PX_OK) {
            s->st.io_errors++;
            return px_errmsg_set(em, PX_E_IO, "cannot read %s: %s", r->path, strerror(errno));
        }
        touch(r, a, b - a);
        off = b;
    }
    return PX_OK;
}

static px_err rep_open_file(rep *r, px_errmsg *em)
{
    if (r->fd >= 0)
        return PX_OK;
    r->fd = open(r->path, O_RDWR | O_CLOEXEC);
    if (r->fd < 0)
        return px_errmsg_set(em, PX_E_IO, "cannot open %s: %s", r->path, strerror(errno));
    return PX_OK;
}

static rep *rep_new(spool *p, uint32_t ld)
{
    rep *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->pool = p;
    r->ld = ld;
    r->fd = -1;
    return r;
}

static void reschedule(px_cxlsync *s);

/* The pool's file of LD ld at the hub, twin taken now. */
static px_err hub_rep(px_cxlsync *s, spool *p, uint32_t ld, px_errmsg *em)
{
    if (p->reps[ld])
        return PX_OK;
    rep *r = rep_new(p, ld);
    if (!r)
        return px_errmsg_set(em, PX_E_NOMEM, "out of memory");
    snprintf(r->path, sizeof(r->path), "%s/ld%u.mem", p->dir, ld);
    px_err err = rep_open_file(r, em);
    if (!err)
        err = take_twin(s, r, em);
    if (err) {
        rep_free(r);
        return err;
    }
    r->ready = true;
    r->due_ms = uv_now(s->loop) + p->period_ms;
    p->reps[ld] = r;
    PX_INFO("cxlsync", "shared LD synchronised at its pool's node", "lab=%s pool=%s ld=%u", p->lab,
            p->name, ld);
    reschedule(s);
    return PX_OK;
}

/* ---- the scan ---- */

typedef struct scanst {
    px_cxlsync *s;
    rep *r;
    uint64_t base; /* of the message being filled */
    size_t len;    /* its record bytes in s->dbuf */
    px_cxlsync_result *res;
} scanst;

static void flush(scanst *x)
{
    if (!x->len)
        return;
    spool *p = x->r->pool;
    px_msg_cxlsync b = {.pool = p->key,
                        .ld = x->r->ld,
                        .node = px_str_c(x->s->io.self),
                        .op = PX_CXLSYNC_DIFF,
                        .base = x->base,
                        .recs = {x->s->dbuf, (uint32_t)x->len}};
    uint32_t to = send_diff(x->s, p, &b, NULL);
    x->s->st.msgs_out++;
    x->res->msgs++;
    if (to > x->res->to)
        x->res->to = to;
    x->len = 0;
}

/* Compare src (the file's bytes of [off, off + len), or zeros for a hole)
 * with the twin; records of what differs into the message. */
static void scan_piece(scanst *x, const uint8_t *src, uint64_t off, size_t len)
{
    px_cxlsync *s = x->s;
    if (!x->len)
        x->base = off;
    else if (off + len - x->base > UINT32_MAX) {
        flush(x);
        x->base = off;
    }
    px_shmdiff_scan sc;
    px_shmdiff_begin(&sc, src, x->r->twin + off, len);
    for (;;) {
        if (BLOB - x->len < 64)
            flush(x); /* base stays: the piece is within 4 GiB of it */
        size_t n = px_shmdiff_next(&sc, s->dbuf + x->len, BLOB - x->len);
        if (!n)
            break;
        /* Records count from the piece; the message counts from base. */
        uint32_t delta = (uint32_t)(off - x->base);
        for (size_t q = x->len; q < x->len + n;) {
            uint32_t rl = get32le(s->dbuf + q + 4);
            put32le(s->dbuf + q, get32le(s->dbuf + q) + delta);
            q += PX_SHMDIFF_REC_HDR + rl;
        }
        x->len += n;
    }
    if (sc.changed && src != s->zeros)
        touch(x->r, off, len);
    x->res->bytes += sc.changed;
}

/* From p up to end or the next PIECE boundary, so that each piece has one
 * `touched` bit. */
static uint64_t piece_len(uint64_t p, uint64_t end)
{
    uint64_t room = PIECE - p % PIECE;
    return end - p < room ? end - p : room;
}

static void scan(px_cxlsync *s, rep *r, px_cxlsync_result *res)
{
    if (!r->ready) {
        res->arriving = true;
        return;
    }
    s->st.syncs++;
    uint64_t size = r->pool->size[r->ld], off = 0, before = res->bytes;
    scanst x = {.s = s, .r = r, .res = res};
    while (off < size) {
        uint64_t a, b;
        next_data(r->fd, off, size, &a, &b);
        for (uint64_t p = off, len; p < a; p += len) { /* a hole */
            len = piece_len(p, a);
            if (touched(r, p))
                scan_piece(&x, s->zeros, p, (size_t)len);
        }
        for (uint64_t p = a, plen; p < b; p += plen) {
            plen = piece_len(p, b);
            size_t len = (size_t)plen;
            if (read_full(r->fd, s->rbuf, len, p) != PX_OK) {
                if (s->st.io_errors++ == 0)
                    PX_WARN("cxlsync", "cannot read an LD file; its changes wait for the next sync",
                            "file=%s detail=\"%s\"", r->path, strerror(errno));
                flush(&x);
                return;
            }
            scan_piece(&x, s->rbuf, p, len);
        }
        off = b > a ? b : size;
    }
    flush(&x);
    s->st.bytes_out += res->bytes - before;
}

/* ---- applying ---- */

/* Every record checked against the LD before anything is written. */
static px_err apply(px_cxlsync *s, rep *r, uint64_t base, const uint8_t *recs, size_t len,
                    uint64_t *applied, px_errmsg *em)
{
    uint64_t size = r->pool->size[r->ld];
    *applied = 0;
    if (base > size)
        return px_errmsg_set(em, PX_E_PROTO, "base %" PRIu64 " is past the LD's %" PRIu64 " bytes",
                             base, size);
    px_err err = px_shmdiff_check(recs, len, size - base, em);
    if (err)
        return err;
    for (size_t q = 0; q < len;) {
        uint64_t off = base + get32le(recs + q);
        uint32_t rl = get32le(recs + q + 4);
        const uint8_t *d = recs + q + PX_SHMDIFF_REC_HDR;
        for (uint32_t done = 0; done < rl;) {
            ssize_t n = pwrite(r->fd, d + done, rl - done, (off_t)(off + done));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                s->st.io_errors++;
                return px_errmsg_set(em, PX_E_IO, "cannot write %s: %s", r->path,
                                     n < 0 ? strerror(errno) : "no progress");
            }
            done += (uint32_t)n;
        }
        memcpy(r->twin + off, d, rl);
        touch(r, off, rl);
        *applied += rl;
        q += PX_SHMDIFF_REC_HDR + rl;
    }
    return PX_OK;
}

/* ---- pools ---- */

static spool *pool_by_key(px_cxlsync *s, uint64_t key)
{
    for (uint32_t i = 0; i < s->n_pools; i++)
        if (s->pools[i]->key == key)
            return s->pools[i];
    return NULL;
}

static spool *pool_named(px_cxlsync *s, const char *lab, const char *pool)
{
    spool *p = pool_by_key(s, px_net_key(lab, pool));
    return p && strcmp(p->lab, lab) == 0 && strcmp(p->name, pool) == 0 ? p : NULL;
}

static void pool_free(spool *p)
{
    for (uint32_t k = 0; k < PX_WIRE_MAX_CXL_LDS; k++)
        rep_free(p->reps[k]);
    free(p->hosts);
    free(p);
}

static bool is_host(const spool *p, const char *node)
{
    for (uint32_t i = 0; i < p->n_hosts; i++)
        if (strcmp(p->hosts[i], node) == 0)
            return true;
    return false;
}

px_err px_cxlsync_pool_set(px_cxlsync *s, const px_cxlsync_pool_cfg *c, px_errmsg *em)
{
    if (!c->lab || !c->pool || !c->hub || !c->hub[0] || strlen(c->lab) > NAME_CAP ||
        strlen(c->pool) > NAME_CAP || strlen(c->hub) > NAME_CAP || !c->n_lds ||
        c->n_lds > PX_WIRE_MAX_CXL_LDS || !c->ld_size || c->n_hosts > PX_CXLSYNC_MAX_HOSTS)
        return px_errmsg_set(em, PX_E_INVAL, "CXL sync: bad settings for pool %s",
                             c->pool ? c->pool : "?");
    for (uint32_t k = 0; c->ld_sizes && k < c->n_lds; k++)
        if (!c->ld_sizes[k])
            return px_errmsg_set(em, PX_E_INVAL, "CXL sync: pool %s: LD %u has no memory", c->pool,
                                 k);
    bool hub = strcmp(c->hub, s->io.self) == 0;
    if (hub && (!c->dir || strlen(c->dir) + 16 > PATH_CAP || (c->n_hosts && !c->hosts)))
        return px_errmsg_set(em, PX_E_INVAL, "CXL sync: pool %s has no directory at its node",
                             c->pool);
    spool *p = pool_named(s, c->lab, c->pool);
    if (!p) {
        spool **np = realloc(s->pools, (s->n_pools + 1) * sizeof(*np));
        if (!np || !(p = calloc(1, sizeof(*p))))
            return px_errmsg_set(em, PX_E_NOMEM, "out of memory");
        s->pools = np;
        s->pools[s->n_pools++] = p;
        snprintf(p->lab, sizeof(p->lab), "%s", c->lab);
        snprintf(p->name, sizeof(p->name), "%s", c->pool);
        p->key = px_net_key(c->lab, c->pool);
    }
    /* Another role: no replica fits; another size: that LD's does not. */
    bool other_role = p->is_hub != hub || strcmp(p->hub, c->hub) != 0;
    for (uint32_t k = 0; k < PX_WIRE_MAX_CXL_LDS; k++) {
        uint64_t size = k >= c->n_lds ? 0 : c->ld_sizes ? c->ld_sizes[k] : c->ld_size;
        if (other_role || k >= c->n_lds || p->size[k] != size) {
            rep_free(p->reps[k]);
            p->reps[k] = NULL;
        }
        p->size[k] = size;
    }
    snprintf(p->hub, sizeof(p->hub), "%s", c->hub);
    p->is_hub = hub;
    p->n_lds = c->n_lds;
    p->period_ms = c->period_ms;
    p->dir[0] = '\0';
    if (hub)
        snprintf(p->dir, sizeof(p->dir), "%s", c->dir);
    char(*hosts)[NAME_CAP + 1] = c->n_hosts ? calloc(c->n_hosts, sizeof(*hosts)) : NULL;
    if (c->n_hosts && !hosts)
        return px_errmsg_set(em, PX_E_NOMEM, "out of memory");
    for (uint32_t i = 0; i < c->n_hosts; i++)
        snprintf(hosts[i], sizeof(hosts[i]), "%s", c->hosts[i] ? c->hosts[i] : "");
    free(p->hosts);
    p->hosts = hosts;
    p->n_hosts = c->n_hosts;
    if (!hub) {
        reschedule(s);
        return PX_OK;
    }
    for (uint32_t k = 0; k < p->n_lds; k++) {
        bool shared = c->shared && c->shared[k];
        if (shared) {
            px_err err = hub_rep(s, p, k, em);
            if (err)
                return err;
        } else if (p->reps[k]) { /* no longer shared: the last changes go out */
            px_cxlsync_result res = {0};
            scan(s, p->reps[k], &res);
            rep_free(p->reps[k]);
            p->reps[k] = NULL;
        }
    }
    reschedule(s);
    return PX_OK;
}

/* ---- copies ---- */

static px_err copy_find(px_cxlsync *s, const char *lab, const char *pool, uint32_t ld, spool **pp,
                        px_errmsg *em)
{
    spool *p = pool_named(s, lab, pool);
    if (!p || ld >= p->n_lds)
        return px_errmsg_set(em, PX_E_NOTFOUND, "CXL sync: no pool %s with an LD %u in lab %s",
                             pool, ld, lab);
    if (p->is_hub)
        return px_errmsg_set(
            em, PX_E_INVAL, "CXL sync: pool %s is on this node; its LDs have no copies here", pool);
    *pp = p;
    return PX_OK;
}

px_err px_cxlsync_copy_open(px_cxlsync *s, const char *lab, const char *pool, uint32_t ld,
                            const char *path, px_errmsg *em)
{
    spool *p;
    px_err err = copy_find(s, lab, pool, ld, &p, em);
    if (err)
        return err;
    if (!path || strlen(path) >= PATH_CAP)
        return px_errmsg_set(em, PX_E_INVAL, "CXL sync: no file, or a path too long, for a copy");
    rep *r = rep_new(p, ld);
    if (!r)
        return px_errmsg_set(em, PX_E_NOMEM, "out of memory");
    snprintf(r->path, sizeof(r->path), "%s", path);
    rep_free(p->reps[ld]);
    p->reps[ld] = r;
    return PX_OK;
}

px_err px_cxlsync_copy_ready(px_cxlsync *s, const char *lab, const char *pool, uint32_t ld,
                             px_errmsg *em)
{
    spool *p;
    px_err err = copy_find(s, lab, pool, ld, &p, em);
    if (err)
        return err;
    rep *r = p->reps[ld];
    if (!r)
        return px_errmsg_set(em, PX_E_NOTFOUND, "CXL sync: LD %u of pool %s has no copy open", ld,
                             pool);
    if (r->ready)
        return PX_OK;
    if (r->lost) {
        held_free(r);
        r->lost = false;
        return px_errmsg_set(em, PX_E_TOOBIG,
                             "more than %u MiB of changes to LD %u of pool %s arrived while it "
                             "was being copied; copy it again",
                             PX_CXLSYNC_HOLD_MAX >> 20, ld, pool);
    }
    if ((err = rep_open_file(r, em)) || (err = take_twin(s, r, em)))
        return err;
    for (held *h = r->hhead; h; h = h->next) {
        uint64_t n;
        px_errmsg aem = {{0}};
        if (apply(s, r, h->base, h->recs, h->len, &n, &aem) != PX_OK) {
            s->st.bad_msgs++;
            PX_WARN("cxlsync", "held changes do not fit the copy, dropped",
                    "lab=%s pool=%s ld=%u detail=\"%s\"", lab, pool, ld, aem.text);
            continue;
        }
        s->st.bytes_in += n;
        s->st.msgs_in++;
    }
    held_free(r);
    r->ready = true;
    r->due_ms = uv_now(s->loop) + p->period_ms;
    PX_INFO("cxlsync", "shared LD copy synchronised", "lab=%s pool=%s ld=%u hub=%s", lab, pool, ld,
            p->hub);
    reschedule(s);
    return PX_OK;
}

void px_cxlsync_copy_close(px_cxlsync *s, const char *lab, const char *pool, uint32_t ld)
{
    spool *p = pool_named(s, lab, pool);
    if (!p || p->is_hub || ld >= p->n_lds || !p->reps[ld])
        return;
    px_cxlsync_result res = {0};
    scan(s, p->reps[ld], &res);
    rep_free(p->reps[ld]);
    p->reps[ld] = NULL;
}

/* ---- sync points ---- */

px_err px_cxlsync_now(px_cxlsync *s, const char *lab, const char *pool, uint32_t ld,
                      px_cxlsync_result *res, px_errmsg *em)
{
    memset(res, 0, sizeof(*res));
    spool *p = pool_named(s, lab, pool);
    rep *r = p && ld < p->n_lds ? p->reps[ld] : NULL;
    if (!r)
        return px_errmsg_set(em, PX_E_NOTFOUND, "no replica of LD %u of pool %s here", ld, pool);
    res->hub = p->is_hub;
    scan(s, r, res);
    if (r->ready)
        r->due_ms = uv_now(s->loop) + p->period_ms;
    reschedule(s);
    return PX_OK;
}

static void on_tick(uv_timer_t *t)
{
    px_cxlsync *s = t->data;
    uint64_t now = uv_now(s->loop);
    for (uint32_t i = 0; i < s->n_pools; i++) {
        spool *p = s->pools[i];
        for (uint32_t k = 0; p->period_ms && k < p->n_lds; k++) {
            rep *r = p->reps[k];
            if (!r || !r->ready || r->due_ms > now)
                continue;
            px_cxlsync_result res = {0};
            scan(s, r, &res);
            r->due_ms = now + p->period_ms;
        }
    }
    reschedule(s);
}

/* The tick fires at the earliest due replica. */
static void reschedule(px_cxlsync *s)
{
    if (s->closing)
        return;
    uint64_t now = uv_now(s->loop), next = UINT64_MAX;
    for (uint32_t i = 0; i < s->n_pools; i++) {
        spool *p = s->pools[i];
        for (uint32_t k = 0; p->period_ms && k < p->n_lds; k++)
            if (p->reps[k] && p->reps[k]->ready && p->reps[k]->due_ms < next)
                next = p->reps[k]->due_ms;
    }
    uv_timer_stop(&s->tick);
    if (next != UINT64_MAX)
        uv_timer_start(&s->tick, on_tick, next > now ? next - now : 0, 0);
}

/* ---- messages ---- */

/* Counted always, logged at the first and every 1000th: a peer that keeps
 * sending them cannot flood the log. */
static void bad(px_cxlsync *s, const char *what, const char *node, const char *detail)
{
    if (s->st.bad_msgs++ % 1000 == 0)
        PX_WARN("cxlsync", "CXLSYNC message dropped",
                "why=\"%s\" node=%s detail=\"%s\" count=%" PRIu64, what, node, detail ? detail : "",
                s->st.bad_msgs);
}

/* Held for a copy that is still arriving, in order. */
static void hold(px_cxlsync *s, rep *r, const px_msg_cxlsync *m)
{
    if (r->lost)
        return;
    held *h =
        r->hbytes + m->recs.len <= PX_CXLSYNC_HOLD_MAX ? malloc(sizeof(*h) + m->recs.len) : NULL;
    if (!h) {
        PX_WARN("cxlsync", "too many changes for a copy still arriving; it will be copied again",
                "pool=%s ld=%u held=%zu", r->pool->name, r->ld, r->hbytes);
        held_free(r);
        r->lost = true;
        return;
    }
    h->next = NULL;
    h->base = m->base;
    h->len = m->recs.len;
    if (m->recs.len)
        memcpy(h->recs, m->recs.ptr, m->recs.len);
    if (r->htail)
        r->htail->next = h;
    else
        r->hhead = h;
    r->htail = h;
    r->hbytes += h->len;
    s->st.held++;
}

void px_cxlsync_on_msg(px_cxlsync *s, const px_peer *from, const px_msg_cxlsync *m)
{
    if (s->closing)
        return;
    char node[NAME_CAP + 1];
    px_str_copy(node, sizeof(node), m->node);
    const char *key = node[0] && m->node.len <= NAME_CAP && strcmp(node, s->io.self) != 0
                          ? s->io.node_key(s->io.ud, node)
                          : NULL;
    if (!key || !from || strcmp(key, from->key_z85) != 0) {
        bad(s, "sent by a node that is not the one it names", node, NULL);
        return;
    }
    if (m->op != PX_CXLSYNC_DIFF) {
        bad(s, "unknown op", node, NULL);
        return;
    }
    spool *p = pool_by_key(s, m->pool);
    if (!p) {
        s->st.stray++;
        return;
    }
    if (m->ld >= p->n_lds) {
        bad(s, "an LD the pool does not have", node, p->name);
        return;
    }
    if (p->is_hub ? !is_host(p, node) : strcmp(node, p->hub) != 0) {
        bad(s,
            p->is_hub ? "from a node that is not a host of the pool's switch"
                      : "from a node that is not the pool's node",
            node, p->name);
        return;
    }
    px_errmsg em = {{0}};
    if (p->is_hub && !p->reps[m->ld] && hub_rep(s, p, m->ld, &em) != PX_OK) {
        s->st.io_errors++;
        PX_WARN("cxlsync", "changes to an LD whose pool file cannot be read, dropped",
                "pool=%s ld=%u detail=\"%s\"", p->name, m->ld, em.text);
        return;
    }
    rep *r = p->reps[m->ld];
    if (!r) {
        s->st.stray++;
        return;
    }
    if (!r->ready) {
        hold(s, r, m);
        return;
    }
    uint64_t n;
    if (apply(s, r, m->base, m->recs.ptr, m->recs.len, &n, &em) != PX_OK) {
        bad(s, "records that do not fit the LD", node, em.text);
        return;
    }
    s->st.bytes_in += n;
    s->st.msgs_in++;
    if (p->is_hub) {
        px_msg_cxlsync fwd = *m;
        fwd.node = px_str_c(s->io.self);
        s->st.relayed += send_diff(s, p, &fwd, node);
    }
}

/* ---- the service ---- */

px_err px_cxlsync_new(uv_loop_t *loop, const px_svc_io *io, px_cxlsync **out)
{
    px_cxlsync *s = calloc(1, sizeof(*s));
    if (!s)
        return PX_E_NOMEM;
    s->loop = loop;
    s->io = *io;
    s->scratch = malloc(sizeof(*s->scratch));
    s->rbuf = malloc(PIECE);
    s->zeros = calloc(1, PIECE);
    s->dbuf = malloc(BLOB);
    if (!s->scratch || !s->rbuf || !s->zeros || !s->dbuf) {
        free(s->scratch);
        free(s->rbuf);
        free(s->zeros);
        free(s->dbuf);
        free(s);
        return PX_E_NOMEM;
    }
    uv_timer_init(loop, &s->tick);
    uv_timer_init(loop, &s->qtimer);
    s->tick.data = s->qtimer.data = s;
    uv_unref((uv_handle_t *)&s->tick);
    *out = s;
    return PX_OK;
}

void px_cxlsync_lab_remove(px_cxlsync *s, const char *lab)
{
    for (uint32_t i = 0; i < s->n_pools;) {
        if (strcmp(s->pools[i]->lab, lab) == 0) {
            pool_free(s->pools[i]);
            s->pools[i] = s->pools[--s->n_pools];
        } else {
            i++;
        }
    }
    reschedule(s);
}

void px_cxlsync_stats_get(const px_cxlsync *s, px_cxlsync_stats *out)
{
    *out = s->st;
    out->waiting = 0;
    for (uint32_t i = 0; i < s->n_dests; i++)
        out->waiting += s->dests[i].q.bytes;
}

static void timer_closed(uv_handle_t *h)
{
    px_cxlsync *s = h->data;
    if (--s->closing)
        return;
    void (*done)(void *) = s->done;
    void *ud = s->done_ud;
    free(s);
    if (done)
        done(ud);
}

void px_cxlsync_close(px_cxlsync *s, void (*done)(void *ud), void *ud)
{
    if (!s) {
        if (done)
            done(ud);
        return;
    }
    for (uint32_t i = 0; i < s->n_pools; i++)
        pool_free(s->pools[i]);
    free(s->pools);
    s->pools = NULL;
    s->n_pools = 0;
    for (uint32_t i = 0; i < s->n_dests; i++)
        px_outq_clear(&s->dests[i].q);
    free(s->dests);
    s->dests = NULL;
    s->n_dests = 0;
    free(s->scratch);
    free(s->rbuf);
    free(s->zeros);
    free(s->dbuf);
    px_wbuf_fini(&s->wb);
    s->done = done;
    s->done_ud = ud;
    s->closing = 2;
    uv_close((uv_handle_t *)&s->tick, timer_closed);
    uv_close((uv_handle_t *)&s->qtimer, timer_closed);
}
