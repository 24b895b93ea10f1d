/* plexus — CXL LD data across hosts. See ldsvc.h and docs/cxl.md.
 *
 * The guest's node drives every transfer: it asks, the pool's node
 * answers each request on its own. So the pool side needs no per-transfer
 * state, a lost message costs one resend, and flow control is the guest's
 * window: at most tuning.window chunks (4 MiB by default) are asked for and
 * not yet answered, whatever the LD's size.
 *
 * User callbacks run only from on_later (and from the final close
 * callback): everything that completes an operation moves its waiters to
 * s->comps and arms that timer. Transfers own no libuv handles, so they are
 * freed at once; the service's two timers are closed in px_cxlld_close.
 */
#include "fabric/cxl-switch/ldsvc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fabric/core/fsutil.h"
#include "fabric/core/log.h"
#include "fabric/core/outq.h"
#include "fabric/core/text.h"

#define DEF_WINDOW      PX_CXLLD_WINDOW
#define MAX_WINDOW      256u
#define DEF_RETRY_MS    2000u
#define DEF_TIMEOUT_MS  30000u
#define DEF_QUEUE_BYTES ((size_t)32 << 20)
#define AGAIN_MS        1u  /* a full link: send again this soon */
#define SCAN_BUDGET     32u /* chunks a write-back reads and hashes per loop iteration */
#define PATH_CAP        4096
#define NAME_CAP        64

/* The chunk hash is part of the protocol (wire.h: px_msg_cxl). */
static const uint8_t hash_key[crypto_shorthash_KEYBYTES] = {'p', 'l', 'e', 'x', 'u', 's', '-', 'c',
                                                            'x', 'l', '-', 'l', 'd', '-', 'v', '1'};

/* ---- structures ---- */

typedef struct lpool {
    char lab[NAME_CAP], name[NAME_CAP];
    char dir[PATH_CAP];
    uint64_t key;
    uint32_t n_lds;
    uint64_t ld_size; /* what it was opened with: the size of LDs it creates */
    uint64_t *size;   /* [n_lds]: each LD's memory bytes, its .mem file's length */
    int (*fd)[2];     /* [n_lds][area], -1 until first used */
} lpool;

/* Encoded answers waiting for a full link to a node. */
typedef struct nqueue {
    struct nqueue *next;
    char node[NAME_CAP];
    px_outq q;
} nqueue;

/* A caller waiting for an operation; becomes a completion when it ends. */
typedef struct waiter {
    struct waiter *next;
    px_cxlld_done done;
    void *ud;
    px_err err;
    char msg[512];
} waiter;

typedef enum xphase {
    X_OPENING,  /* OPEN sent, waiting for INFO */
    X_FETCHING, /* READs out */
    X_READY,    /* the local files hold the LD (or the pool is local) */
    X_WRITING,  /* a write-back runs */
    X_FAILED,   /* the fetch failed: the files are not the LD */
} xphase;

#define NO_CHUNK UINT32_MAX

typedef struct slot {
    uint32_t chunk; /* NO_CHUNK: free */
    uint8_t zero;   /* WRITE: sent as zero */
    uint64_t hash;  /* WRITE: the hash sent */
    uint64_t sent_ms;
} slot;

typedef struct xfer {
    struct xfer *next;
    px_cxlld *s;
    uint64_t id;
    char lab[NAME_CAP], pool[NAME_CAP], node[NAME_CAP];
    uint64_t key;
    uint32_t ld;
    bool local;
    xphase phase;
    int fd[2];
    char path[2][PATH_CAP];
    uint64_t size[2];
    uint32_t nch[2]; /* chunks per area */
    uint32_t total;
    bool keep;      /* adopt: the local files are kept as they are (a running guest's) */
    uint64_t want;  /* the memory size the caller expects; 0: whatever the pool says */
    bool other;     /* the last INFO had another memory size than want ... */
    uint64_t seen;  /* ... this one */
    uint64_t *hash; /* [total]: the pool's copy's chunk hashes, as far as we know */
    uint8_t *zero;  /* [total]: 1 = that chunk is all zero there */
    uint32_t cursor;
    uint32_t received;
    bool open_sent, pump_due;
    uint64_t open_ms;
    uint64_t progress_ms;
    slot *win;
    uint32_t window, n_win;
    waiter *cur, *nxt; /* this operation's callers; the next write-back's */
} xfer;

struct px_cxlld {
    uv_loop_t *loop;
    px_svc_io io;
    px_cxlld_tuning tun;
    lpool **pools;
    uint32_t n_pools;
    xfer *xfers;
    nqueue *queues;
    waiter *comps, **comps_tail;
    uv_timer_t tick;  /* resends and timeouts while transfers run */
    uv_timer_t later; /* pumps, held answers, completions */
    bool tick_on;
    uint64_t later_due; /* loop time the later timer fires; 0 = not armed */
    uint64_t next_id, seq;
    px_msg *scratch;
    px_wbuf wb;
    uint8_t *buf; /* one chunk */
    px_cxlld_stats st;
    bool shutting;
    unsigned closing;
    void (*done)(void *ud);
    void *done_ud;
};

/* ---- small helpers ---- */

static uint64_t now_ms(px_cxlld *s)
{
    return uv_now(s->loop);
}

static uint64_t chunk_hash(const uint8_t *p, size_t n)
{
    uint8_t out[crypto_shorthash_BYTES];
    crypto_shorthash(out, p, n, hash_key);
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--)
        h = h << 8 | out[i];
    return h;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* True when [off, off+len) of fd is a hole (reads as zeros without being
 * read). Filesystems without SEEK_DATA say "data" and are read. */
static bool is_hole(int fd, uint64_t off, uint64_t len)
{
    off_t d = lseek(fd, (off_t)off, SEEK_DATA);
    if (d < 0)
        return errno == ENXIO;
    return (uint64_t)d >= off + len;
}

/* A read past the end of a file (someone shortened it) reads as zeros. */
static int pread_full(int fd, uint8_t *p, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, p + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0) {
            memset(p + got, 0, n - got);
            break;
        }
        got += (size_t)r;
    }
    return 0;
}

static int pwrite_full(int fd, const uint8_t *p, size_t n, uint64_t off)
{
    size_t put = 0;
    while (put < n) {
        ssize_t r = pwrite(fd, p + put, n - put, (off_t)(off + put));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        put += (size_t)r;
    }
    return 0;
}

static bool name_ok(const char *s)
{
    return s && s[0] && strlen(s) < NAME_CAP;
}

static void later(px_cxlld *s, uint64_t ms);

/* ---- completions ---- */

static void comp_push(px_cxlld *s, waiter *w, px_err err, const char *msg)
{
    w->err = err;
    snprintf(w->msg, sizeof(w->msg), "%s", msg ? msg : "");
    w->next = NULL;
    *s->comps_tail = w;
    s->comps_tail = &w->next;
    later(s, 0);
}

static void comp_all(px_cxlld *s, waiter **list, px_err err, const char *msg)
{
    waiter *w = *list;
    *list = NULL;
    while (w) {
        waiter *n = w->next;
        comp_push(s, w, err, msg);
        w = n;
    }
}

static waiter *waiter_new(px_cxlld_done done, void *ud)
{
    waiter *w = calloc(1, sizeof(*w));
    if (w) {
        w->done = done;
        w->ud = ud;
    }
    return w;
}

static void waiter_append(waiter **list, waiter *w)
{
    while (*list)
        list = &(*list)->next;
    *list = w;
}

/* Runs the callbacks queued so far; ones they queue run next time. */
static void comp_run(px_cxlld *s)
{
    waiter *w = s->comps;
    s->comps = NULL;
    s->comps_tail = &s->comps;
    while (w) {
        waiter *n = w->next;
        if (w->done)
            w->done(w->ud, w->err, w->msg);
        free(w);
        w = n;
    }
}

/* ---- sending ---- */

static px_err encode(px_cxlld *s, const px_msg_cxl *b)
{
    px_msg *m = s->scratch;
    memset(&m->env, 0, sizeof(m->env));
    m->env.type = PX_MSG_CXL;
    m->env.object = b->pool;
    m->env.seq = ++s->seq;
    m->body.cxl = *b;
    px_wbuf_reset(&s->wb);
    px_errmsg em = {{0}};
    px_err err = px_wire_encode(&s->wb, m, &em);
    if (err)
        PX_ERROR("cxl", "cannot encode a CXL message", "err=%s detail=\"%s\"", px_errname(err),
                 em.text);
    return err;
}

/* A request from the guest side: PX_E_AGAIN when the link is full (the
 * caller tries again soon); any other failure counts as sent and lost (the
 * resend timer and the timeout deal with it). */
static px_err request(px_cxlld *s, const char *node, const px_msg_cxl *b)
{
    px_err err = encode(s, b);
    if (err)
        return PX_OK;
    err = s->io.to_node(s->io.ud, node, s->wb.data, s->wb.len);
    if (err == PX_E_AGAIN) {
        s->st.again++;
        return err;
    }
    return PX_OK;
}

static nqueue *queue_for(px_cxlld *s, const char *node, bool make)
{
    for (nqueue *q = s->queues; q; q = q->next)
        if (strcmp(q->node, node) == 0)
            return q;
    if (!make)
        return NULL;
    nqueue *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    snprintf(q->node, sizeof(q->node), "%s", node);
    q->next = s->queues;
    s->queues = q;
    return q;
}

/* An answer from the pool side, in order behind anything held for that
 * node. A full link holds it (up to queue_bytes per node); past that, or
 * with no link at all, it is dropped and the asker resends. */
static void answer(px_cxlld *s, const char *node, const px_msg_cxl *b)
{
    if (encode(s, b) != PX_OK)
        return;
    nqueue *q = queue_for(s, node, true);
    px_err err = q ? px_outq_send(&q->q, &s->io, node, s->wb.data, s->wb.len, s->tun.queue_bytes)
                   : s->io.to_node(s->io.ud, node, s->wb.data, s->wb.len);
    if (err == PX_E_AGAIN) {
        s->st.held++;
        later(s, AGAIN_MS);
    } else if (err == PX_E_TOOBIG || err == PX_E_NOMEM) {
        if (s->st.dropped++ == 0)
            PX_WARN("cxl", "link to a node stays full; dropping LD data answers (it asks again)",
                    "node=%s held=%zu", node, q ? q->q.bytes : 0);
    } else if (err != PX_OK) {
        s->st.dropped++;
    }
}

/* Returns true while something is still held. */
static bool queues_flush(px_cxlld *s)
{
    bool held = false;
    for (nqueue *q = s->queues; q; q = q->next)
        held |= px_outq_flush(&q->q, &s->io, q->node, &s->st.dropped);
    return held;
}

static void queues_free(px_cxlld *s)
{
    while (s->queues) {
        nqueue *q = s->queues;
        s->queues = q->next;
        px_outq_clear(&q->q);
        free(q);
    }
}

/* ---- the pool side ---- */

static lpool *pool_by_key(px_cxlld *s, uint64_t key)
{
    for (uint32_t i = 0; i < s->n_pools; i++)
        if (s->pools[i]->key == key)
            return s->pools[i];
    return NULL;
}

static lpool *pool_named(px_cxlld *s, const char *lab, const char *name, uint32_t *at)
{
    for (uint32_t i = 0; i < s->n_pools; i++)
        if (strcmp(s->pools[i]->lab, lab) == 0 && strcmp(s->pools[i]->name, name) == 0) {
            if (at)
                *at = i;
            return s->pools[i];
        }
    return NULL;
}

static uint64_t pool_area_size(const lpool *p, uint32_t ld, uint32_t area)
{
    return area ? PX_CXLLD_LSA_SIZE : p->size[ld];
}

static bool ld_size_ok(uint64_t size)
{
    return size % PX_CXLLD_ALIGN == 0 && size <= PX_CXLLD_MAX_LD_SIZE;
}

static int ld_path(char *out, size_t cap, const char *dir, uint32_t ld, uint32_t area)
{
    int n = snprintf(out, cap, "%s/ld%u.%s", dir, ld, area ? "lsa" : "mem");
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* The LD's file, opened on first use and kept open. */
static int pool_fd(lpool *p, uint32_t ld, uint32_t area)
{
    if (p->fd[ld][area] >= 0)
        return p->fd[ld][area];
    char path[PATH_CAP];
    if (ld_path(path, sizeof(path), p->dir, ld, area) != 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    p->fd[ld][area] = open(path, O_RDWR | O_CLOEXEC);
    return p->fd[ld][area];
}

static void pool_free(lpool *p)
{
    if (!p)
        return;
    for (uint32_t k = 0; p->fd && k < p->n_lds; k++)
        for (int a = 0; a < 2; a++)
            if (p->fd[k][a] >= 0)
                close(p->fd[k][a]);
    free(p->fd);
    free(p->size);
    free(p);
}

/* Creates the file sparse at `want` bytes. An existing one keeps its
 * contents: label storage (lsa) is extended to `want`; memory keeps its
 * length, which is the LD's size (*got), since an allocation may have
 * resized it. */
static px_err ld_file_prepare(const char *path, uint64_t want, bool lsa, uint64_t *got,
                              px_errmsg *em)
{
    /* O_EXCL tells a file made now (sized here) from one that was there. */
    bool made = true;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) {
        made = false;
        fd = open(path, O_RDWR | O_CLOEXEC);
    }
    if (fd < 0)
        return px_errmsg_set(em, px_err_from_errno(errno), "cannot open %s: %s", path,
                             strerror(errno));
    struct stat st;
    px_err err = PX_OK;
    *got = want;
    if (fstat(fd, &st) != 0)
        err = px_errmsg_set(em, PX_E_IO, "cannot stat %s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        err = px_errmsg_set(em, PX_E_CONFIG, "%s is not a regular file", path);
    else if (!lsa && !made && !ld_size_ok((uint64_t)st.st_size))
        err = px_errmsg_set(em, PX_E_CONFIG,
                            "%s holds %" PRIu64 " bytes, not a multiple of %u up to %" PRIu64
                            ", so it is no LD's memory; move it away to start the LD empty",
                            path, (uint64_t)st.st_size, PX_CXLLD_ALIGN,
                            (uint64_t)PX_CXLLD_MAX_LD_SIZE);
    else if (!lsa && !made)
        *got = (uint64_t)st.st_size;
    else if ((uint64_t)st.st_size > want)
        err = px_errmsg_set(em, PX_E_CONFIG,
                            "%s holds %" PRIu64 " bytes, more than the %" PRIu64
                            " of an LD's label storage; move it away to start the LD's labels "
                            "empty",
                            path, (uint64_t)st.st_size, want);
    else if ((uint64_t)st.st_size < want && ftruncate(fd, (off_t)want) != 0)
        err = px_errmsg_set(em, PX_E_IO, "cannot extend %s to %" PRIu64 " bytes: %s", path, want,
                            strerror(errno));
    close(fd);
    if (err && made) /* not left behind as an empty LD */
        unlink(path);
    return err;
}

px_err px_cxlld_pool_open(px_cxlld *s, const char *lab, const char *pool, const char *dir,
                          uint32_t n_lds, uint64_t ld_size, px_errmsg *em)
{
    if (!name_ok(lab) || !name_ok(pool) || !dir || !dir[0] || strlen(dir) >= PATH_CAP - 32)
        return px_errmsg_set(em, PX_E_INVAL,
                             "cxl pool: lab, pool name or directory missing or "
                             "too long");
    if (n_lds == 0 || n_lds > PX_CXLLD_MAX_LDS)
        return px_errmsg_set(em, PX_E_INVAL, "pool %s: %u LDs; 1..%u allowed", pool, n_lds,
                             PX_CXLLD_MAX_LDS);
    if (ld_size == 0 || ld_size % PX_CXLLD_ALIGN || ld_size > PX_CXLLD_MAX_LD_SIZE)
        return px_errmsg_set(em, PX_E_INVAL,
                             "pool %s: ld_size %" PRIu64 " is not a multiple of %u up to %" PRIu64,
                             pool, ld_size, PX_CXLLD_ALIGN, (uint64_t)PX_CXLLD_MAX_LD_SIZE);
    uint32_t at = 0;
    lpool *old = pool_named(s, lab, pool, &at);
    /* The same pool: its LDs keep the sizes they were given since. */
    if (old && old->n_lds == n_lds && old->ld_size == ld_size && strcmp(old->dir, dir) == 0)
        return PX_OK;
    px_err err = px_mkdir_p(dir, 0700, em);
    if (err) {
        px_errmsg_prefix(em, "pool %s: ", pool);
        return err;
    }
    lpool *p = calloc(1, sizeof(*p));
    if (!p || !(p->fd = malloc(n_lds * sizeof(*p->fd))) ||
        !(p->size = calloc(n_lds, sizeof(*p->size)))) {
        if (p)
            free(p->fd);
        free(p);
        return px_errmsg_set(em, PX_E_NOMEM, "pool %s: out of memory", pool);
    }
    for (uint32_t k = 0; k < n_lds; k++)
        p->fd[k][0] = p->fd[k][1] = -1;
    p->n_lds = n_lds;
    uint32_t resized = 0;
    for (uint32_t k = 0; k < n_lds; k++)
        for (uint32_t a = 0; a < 2; a++) {
            char path[PATH_CAP];
            uint64_t got = 0;
            if (ld_path(path, sizeof(path), dir, k, a) != 0) {
                pool_free(p);
                return px_errmsg_set(em, PX_E_TOOBIG, "pool %s: directory %s is too long", pool,
                                     dir);
            }
            err = ld_file_prepare(path, a ? PX_CXLLD_LSA_SIZE : ld_size, a == 1, &got, em);
            if (err) {
                pool_free(p);
                px_errmsg_prefix(em, "pool %s: ", pool);
                return err;
            }
            if (a == 0) {
                p->size[k] = got;
                resized += got != ld_size;
            }
        }
    snprintf(p->lab, sizeof(p->lab), "%s", lab);
    snprintf(p->name, sizeof(p->name), "%s", pool);
    snprintf(p->dir, sizeof(p->dir), "%s", dir);
    p->key = px_net_key(lab, pool);
    p->ld_size = ld_size;
    if (old) {
        pool_free(old);
        s->pools[at] = p;
    } else {
        lpool **np = realloc(s->pools, (s->n_pools + 1) * sizeof(*np));
        if (!np) {
            pool_free(p);
            return px_errmsg_set(em, PX_E_NOMEM, "pool %s: out of memory", pool);
        }
        s->pools = np;
        s->pools[s->n_pools++] = p;
    }
    PX_INFO("cxl", "pool open", "lab=%s pool=%s lds=%u ld_size=%" PRIu64 " other_sizes=%u dir=%s",
            lab, pool, n_lds, ld_size, resized, dir);
    return PX_OK;
}

px_err px_cxlld_ld_resize(px_cxlld *s, const char *lab, const char *pool, uint32_t ld,
                          uint64_t size, px_errmsg *em)
{
    if (!ld_size_ok(size))
        return px_errmsg_set(em, PX_E_INVAL,
                             "LD %u of pool %s: size %" PRIu64 " is not a multiple of %u up to "
                             "%" PRIu64,
                             ld, pool ? pool : "?", size, PX_CXLLD_ALIGN,
                             (uint64_t)PX_CXLLD_MAX_LD_SIZE);
    lpool *p = lab && pool ? pool_named(s, lab, pool, NULL) : NULL;
    if (!p || ld >= p->n_lds)
        return px_errmsg_set(em, PX_E_NOTFOUND, "pool %s of lab %s is not open on this node%s",
                             pool ? pool : "?", lab ? lab : "?", p ? " with that many LDs" : "");
    uint64_t from = p->size[ld];
    if (from == size)
        return PX_OK;
    char path[PATH_CAP];
    if (ld_path(path, sizeof(path), p->dir, ld, 0) != 0)
        return px_errmsg_set(em, PX_E_TOOBIG, "pool %s: directory %s is too long", p->name, p->dir);
    int fd = pool_fd(p, ld, 0);
    if (fd < 0)
        return px_errmsg_set(em, PX_E_IO, "cannot open %s: %s", path, strerror(errno));
    if (ftruncate(fd, (off_t)size) != 0)
        return px_errmsg_set(em, PX_E_IO,
                             "cannot resize %s from %" PRIu64 " to %" PRIu64 " bytes: %s", path,
                             from, size, strerror(errno));
    p->size[ld] = size;
    PX_INFO("cxl", "LD resized", "lab=%s pool=%s ld=%u from=%" PRIu64 " to=%" PRIu64, lab, pool, ld,
            from, size);
    return PX_OK;
}

uint64_t px_cxlld_ld_size(px_cxlld *s, const char *lab, const char *pool, uint32_t ld)
{
    lpool *p = lab && pool ? pool_named(s, lab, pool, NULL) : NULL;
    return p && ld < p->n_lds ? p->size[ld] : 0;
}

px_err px_cxlld_pool_paths(px_cxlld *s, const char *lab, const char *pool, uint32_t ld, char *mem,
                           size_t mcap, char *lsa, size_t lcap)
{
    lpool *p = lab && pool ? pool_named(s, lab, pool, NULL) : NULL;
    if (!p || ld >= p->n_lds)
        return PX_E_NOTFOUND;
    if (ld_path(mem, mcap, p->dir, ld, 0) != 0 || ld_path(lsa, lcap, p->dir, ld, 1) != 0)
        return PX_E_TOOBIG;
    return PX_OK;
}

static void bad(px_cxlld *s, const char *what, const char *node)
{
    if (s->st.bad_msgs++ % 1000 == 0)
        PX_WARN("cxl", "bad LD data message, dropped", "what=\"%s\" node=%s count=%" PRIu64, what,
                node, s->st.bad_msgs);
}

static void answer_fail(px_cxlld *s, const char *node, const px_msg_cxl *m, px_err code,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void answer_fail(px_cxlld *s, const char *node, const px_msg_cxl *m, px_err code,
                        const char *fmt, ...)
{
    char text[PX_WIRE_MAX_CXL_MSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    px_msg_cxl f = {.pool = m->pool,
                    .op = PX_CXL_FAIL,
                    .node = px_str_c(s->io.self),
                    .xfer = m->xfer,
                    .ld = m->ld,
                    .code = code,
                    .msg = px_str_c(text)};
    answer(s, node, &f);
}

static bool range_ok(uint64_t size, uint64_t off, uint32_t len)
{
    return len > 0 && off <= size && len <= size - off;
}

static void pool_msg(px_cxlld *s, const char *node, const px_msg_cxl *m)
{
    lpool *p = pool_by_key(s, m->pool);
    if (!p) {
        answer_fail(s, node, m, PX_E_NOTFOUND, "node %s holds no such pool", s->io.self);
        return;
    }
    if (m->ld >= p->n_lds) {
        answer_fail(s, node, m, PX_E_NOTFOUND, "pool %s has %u LDs: there is no LD %u", p->name,
                    p->n_lds, m->ld);
        return;
    }
    if (m->op == PX_CXL_OPEN) {
        px_msg_cxl i = {.pool = m->pool,
                        .op = PX_CXL_INFO,
                        .node = px_str_c(s->io.self),
                        .xfer = m->xfer,
                        .ld = m->ld,
                        .size = p->size[m->ld],
                        .lsa = PX_CXLLD_LSA_SIZE};
        answer(s, node, &i);
        return;
    }
    if (!range_ok(pool_area_size(p, m->ld, m->area), m->off, m->len)) {
        bad(s, "a range outside the LD", node);
        return;
    }
    int fd = pool_fd(p, m->ld, m->area);
    if (fd < 0) {
        answer_fail(s, node, m, PX_E_IO, "pool %s LD %u: cannot open its file: %s", p->name, m->ld,
                    strerror(errno));
        return;
    }
    px_msg_cxl r = {.pool = m->pool,
                    .node = px_str_c(s->io.self),
                    .xfer = m->xfer,
                    .ld = m->ld,
                    .area = m->area,
                    .off = m->off,
                    .len = m->len};
    if (m->op == PX_CXL_READ) {
        bool zero = is_hole(fd, m->off, m->len);
        if (!zero) {
            if (pread_full(fd, s->buf, m->len, m->off) != 0) {
                answer_fail(s, node, m, PX_E_IO, "pool %s LD %u: read failed: %s", p->name, m->ld,
                            strerror(errno));
                return;
            }
            zero = all_zero(s->buf, m->len);
        }
        r.op = PX_CXL_DATA;
        r.zero = zero;
        if (!zero) {
            r.d = (px_bin){s->buf, m->len};
            s->st.data_out++;
            s->st.bytes_out += m->len;
        }
        s->st.reads++;
        answer(s, node, &r);
        return;
    }
    /* WRITE. A zero range becomes a hole where the file system can punch
     * one (the pool's files stay sparse), zeros otherwise. */
    int rc;
    if (m->zero) {
        rc =
            fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)m->off, (off_t)m->len);
        if (rc != 0) {
            memset(s->buf, 0, m->len);
            rc = pwrite_full(fd, s->buf, m->len, m->off);
        }
    } else {
        rc = pwrite_full(fd, m->d.ptr, m->len, m->off);
    }
    if (rc != 0) {
        answer_fail(s, node, m, PX_E_IO, "pool %s LD %u: write failed: %s", p->name, m->ld,
                    strerror(errno));
        return;
    }
    s->st.writes++;
    s->st.bytes_in += m->zero ? 0 : m->len;
    r.op = PX_CXL_ACK;
    r.hash = m->hash;
    answer(s, node, &r);
}

/* ---- the guest side: transfers ---- */

static xfer *xfer_find(px_cxlld *s, uint64_t id)
{
    for (xfer *x = s->xfers; x; x = x->next)
        if (x->id == id)
            return x;
    return NULL;
}

static bool running(const xfer *x)
{
    return x->phase == X_OPENING || x->phase == X_FETCHING || x->phase == X_WRITING;
}

static void tick_start(px_cxlld *s);

static void schedule(xfer *x, uint64_t ms)
{
    x->pump_due = true;
    later(x->s, ms);
}

static void chunk_range(const xfer *x, uint32_t c, uint32_t *area, uint64_t *off, uint32_t *len)
{
    uint32_t a = c >= x->nch[0];
    uint64_t o = (uint64_t)(a ? c - x->nch[0] : c) * PX_CXLLD_CHUNK;
    uint64_t n = x->size[a] - o;
    *area = a;
    *off = o;
    *len = (uint32_t)(n < PX_CXLLD_CHUNK ? n : PX_CXLLD_CHUNK);
}

/* The chunk an answer names, or NO_CHUNK when no chunk is exactly that
 * range. */
static uint32_t chunk_of(const xfer *x, uint32_t area, uint64_t off, uint32_t len)
{
    if (area > 1 || off % PX_CXLLD_CHUNK || off / PX_CXLLD_CHUNK >= x->nch[area])
        return NO_CHUNK;
    uint32_t c = (uint32_t)(off / PX_CXLLD_CHUNK) + (area ? x->nch[0] : 0);
    uint32_t a;
    uint64_t o;
    uint32_t l;
    chunk_range(x, c, &a, &o, &l);
    return l == len ? c : NO_CHUNK;
}

static slot *slot_find(xfer *x, uint32_t c)
{
    for (uint32_t i = 0; i < x->window; i++)
        if (x->win[i].chunk == c)
            return &x->win[i];
    return NULL;
}

static slot *slot_take(xfer *x, uint32_t c)
{
    slot *sl = slot_find(x, NO_CHUNK);
    if (sl) {
        *sl = (slot){.chunk = c};
        x->n_win++;
    }
    return sl;
}

static void slot_drop(xfer *x, slot *sl)
{
    sl->chunk = NO_CHUNK;
    x->n_win--;
}

static void slots_clear(xfer *x)
{
    for (uint32_t i = 0; i < x->window; i++)
        x->win[i].chunk = NO_CHUNK;
    x->n_win = 0;
}

static const char *what(const xfer *x)
{
    return x->phase == X_WRITING ? "write-back" : "fetch";
}

/* The operation ends with an error. A failed fetch leaves the handle
 * unusable; a failed write-back leaves it as it was (unacknowledged chunks
 * keep their old hash, so the next write-back sends them again). */
static void xfer_fail(xfer *x, px_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void xfer_fail(xfer *x, px_err err, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    PX_WARN("cxl", "LD transfer failed", "lab=%s pool=%s ld=%u node=%s op=%s err=%s detail=\"%s\"",
            x->lab, x->pool, x->ld, x->node, what(x), px_errname(err), text);
    x->phase = x->phase == X_WRITING ? X_READY : X_FAILED;
    slots_clear(x);
    x->pump_due = false;
    comp_all(x->s, &x->cur, err, text);
    comp_all(x->s, &x->nxt, err, text);
}

static void xfer_free(xfer *x)
{
    for (int a = 0; a < 2; a++)
        if (x->fd[a] >= 0)
            close(x->fd[a]);
    free(x->hash);
    free(x->zero);
    free(x->win);
    free(x);
}

/* Unlinks x and ends its callers with `err`. */
static void xfer_end(xfer *x, px_err err, const char *msg)
{
    px_cxlld *s = x->s;
    for (xfer **pp = &s->xfers; *pp; pp = &(*pp)->next)
        if (*pp == x) {
            *pp = x->next;
            break;
        }
    comp_all(s, &x->cur, err, msg);
    comp_all(s, &x->nxt, err, msg);
    xfer_free(x);
}

static px_msg_cxl req(const xfer *x, uint32_t op)
{
    return (px_msg_cxl){
        .pool = x->key, .op = op, .node = px_str_c(x->s->io.self), .xfer = x->id, .ld = x->ld};
}

static px_err send_read(xfer *x, uint32_t c)
{
    px_msg_cxl r = req(x, PX_CXL_READ);
    chunk_range(x, c, &r.area, &r.off, &r.len);
    return request(x->s, x->node, &r);
}

/* ---- fetch ---- */

static void fetch_done(xfer *x)
{
    x->phase = X_READY;
    PX_INFO("cxl", "LD fetched", "lab=%s pool=%s ld=%u node=%s chunks=%u", x->lab, x->pool, x->ld,
            x->node, x->total);
    comp_all(x->s, &x->cur, PX_OK, "");
}

static void fetch_pump(xfer *x)
{
    px_cxlld *s = x->s;
    if (x->phase == X_OPENING) {
        if (x->open_sent)
            return;
        px_msg_cxl o = req(x, PX_CXL_OPEN);
        if (request(s, x->node, &o) == PX_E_AGAIN) {
            schedule(x, AGAIN_MS);
            return;
        }
        x->open_sent = true;
        x->open_ms = now_ms(s);
        return;
    }
    while (x->n_win < x->window && x->cursor < x->total) {
        if (send_read(x, x->cursor) == PX_E_AGAIN) {
            schedule(x, AGAIN_MS);
            return;
        }
        slot_take(x, x->cursor)->sent_ms = now_ms(s);
        x->cursor++;
    }
}

static void on_info(xfer *x, const px_msg_cxl *m)
{
    px_cxlld *s = x->s;
    if (x->phase != X_OPENING) {
        s->st.dups++;
        return;
    }
    /* 0 is a size: an LD may be given no memory. */
    if (!ld_size_ok(m->size) || m->lsa == 0 || m->lsa > PX_CXLLD_MAX_LSA_SIZE) {
        s->st.bad_msgs++;
        xfer_fail(x, PX_E_PROTO,
                  "pool node %s gave LD %u of pool %s sizes %" PRIu64 " and %" PRIu64
                  " bytes (label storage); expected a multiple of %u up to %" PRIu64 " and 1..%u",
                  x->node, x->ld, x->pool, m->size, m->lsa, PX_CXLLD_ALIGN,
                  (uint64_t)PX_CXLLD_MAX_LD_SIZE, PX_CXLLD_MAX_LSA_SIZE);
        return;
    }
    if (x->want && m->size != x->want) {
        /* Not taken: the pool's node may not have applied the plan that
         * resized the LD yet. The OPEN stays unanswered, so it is sent
         * again after retry_ms; the timeout ends the wait. */
        if (!x->other)
            PX_WARN("cxl", "pool's node has the LD at another size; asking again",
                    "lab=%s pool=%s ld=%u node=%s size=%" PRIu64 " want=%" PRIu64, x->lab, x->pool,
                    x->ld, x->node, m->size, x->want);
        x->other = true;
        x->seen = m->size;
        return;
    }
    x->size[0] = m->size;
    x->size[1] = m->lsa;
    for (int a = 0; a < 2; a++)
        x->nch[a] = (uint32_t)((x->size[a] + PX_CXLLD_CHUNK - 1) / PX_CXLLD_CHUNK);
    x->total = x->nch[0] + x->nch[1];
    x->hash = calloc(x->total, sizeof(*x->hash));
    x->zero = calloc(x->total, sizeof(*x->zero));
    if (!x->hash || !x->zero) {
        xfer_fail(x, PX_E_NOMEM, "no memory for the chunk table of LD %u (%u chunks)", x->ld,
                  x->total);
        return;
    }
    if (x->keep) {
        /* A running guest's files (its QEMU outlived a node restart):
         * keep them; not knowing what the pool holds, the next write-back
         * sends every chunk. size[0] is also the caller's size when it
         * gave one (an INFO with another was not taken above). */
        struct stat st[2];
        if (fstat(x->fd[0], &st[0]) == 0 && fstat(x->fd[1], &st[1]) == 0 &&
            (uint64_t)st[0].st_size == x->size[0] && (uint64_t)st[1].st_size == x->size[1]) {
            x->phase = X_READY;
            comp_all(s, &x->cur, PX_OK, "");
            return;
        }
    }
    /* Empty first: what is not sent is zero. */
    for (int a = 0; a < 2; a++)
        if (ftruncate(x->fd[a], 0) != 0 || ftruncate(x->fd[a], (off_t)x->size[a]) != 0) {
            xfer_fail(x, PX_E_IO, "cannot size %s to %" PRIu64 " bytes: %s", x->path[a], x->size[a],
                      strerror(errno));
            return;
        }
    x->phase = X_FETCHING;
    x->progress_ms = now_ms(s);
    fetch_pump(x);
}

static void on_data(xfer *x, const px_msg_cxl *m)
{
    px_cxlld *s = x->s;
    if (x->phase != X_FETCHING) {
        s->st.dups++;
        return;
    }
    uint32_t c = chunk_of(x, m->area, m->off, m->len);
    if (c == NO_CHUNK) {
        bad(s, "DATA for a range that is no chunk of the LD", x->node);
        return;
    }
    slot *sl = slot_find(x, c);
    if (!sl) {
        s->st.dups++;
        return;
    }
    if (!m->zero && pwrite_full(x->fd[m->area], m->d.ptr, m->len, m->off) != 0) {
        xfer_fail(x, PX_E_IO, "cannot write %s: %s", x->path[m->area], strerror(errno));
        return;
    }
    /* The guest hashes what it wrote, not the pool what it read: a pool
     * serves many guests, and the bytes are in this cache now. */
    x->hash[c] = m->zero ? 0 : chunk_hash(m->d.ptr, m->len);
    x->zero[c] = m->zero ? 1 : 0;
    slot_drop(x, sl);
    x->received++;
    x->progress_ms = now_ms(s);
    s->st.fetched++;
    s->st.fetched_zero += m->zero ? 1 : 0;
    if (x->received == x->total)
        fetch_done(x);
    else
        fetch_pump(x);
}

/* ---- write-back ---- */

/* Reads chunk c; sends it if it differs from what the pool holds (or
 * always, with force). 1: sent (or lost: it is resent), 0: unchanged,
 * PX_E_AGAIN: link full, other errors: the local file cannot be read. */
static int wb_chunk(xfer *x, uint32_t c, bool force, slot *sl)
{
    px_cxlld *s = x->s;
    px_msg_cxl w = req(x, PX_CXL_WRITE);
    chunk_range(x, c, &w.area, &w.off, &w.len);
    int fd = x->fd[w.area];
    bool zero = is_hole(fd, w.off, w.len);
    if (!zero) {
        if (pread_full(fd, s->buf, w.len, w.off) != 0)
            return px_err_from_errno(errno);
        zero = all_zero(s->buf, w.len);
    }
    if (zero) {
        if (!force && x->zero[c])
            return 0;
        w.zero = 1;
    } else {
        w.hash = chunk_hash(s->buf, w.len);
        if (!force && !x->zero[c] && x->hash[c] == w.hash)
            return 0;
        w.d = (px_bin){s->buf, w.len};
    }
    if (request(s, x->node, &w) == PX_E_AGAIN)
        return PX_E_AGAIN;
    if (!sl)
        sl = slot_take(x, c);
    sl->zero = w.zero;
    sl->hash = w.hash;
    sl->sent_ms = now_ms(s);
    return 1;
}

static void wb_start(xfer *x);

static void wb_done(xfer *x)
{
    x->phase = X_READY;
    comp_all(x->s, &x->cur, PX_OK, "");
    if (x->nxt) {
        x->cur = x->nxt;
        x->nxt = NULL;
        wb_start(x);
    }
}

static void wb_pump(xfer *x)
{
    px_cxlld *s = x->s;
    uint32_t budget = SCAN_BUDGET;
    while (x->n_win < x->window && x->cursor < x->total) {
        if (budget-- == 0) {
            schedule(x, 0);
            return;
        }
        int r = wb_chunk(x, x->cursor, false, NULL);
        if (r == PX_E_AGAIN) {
            schedule(x, AGAIN_MS);
            return;
        }
        if (r < 0) {
            uint32_t a;
            uint64_t o;
            uint32_t l;
            chunk_range(x, x->cursor, &a, &o, &l);
            xfer_fail(x, (px_err)r, "cannot read %s at %" PRIu64 ": %s", x->path[a], o,
                      px_strerror((px_err)r));
            return;
        }
        if (r == 0)
            s->st.wb_same++;
        else
            s->st.wb_sent++;
        x->cursor++;
    }
    if (x->cursor == x->total && x->n_win == 0)
        wb_done(x);
}

static void wb_start(xfer *x)
{
    x->phase = X_WRITING;
    x->cursor = 0;
    x->progress_ms = now_ms(x->s);
    tick_start(x->s);
    schedule(x, 0);
}

static void on_ack(xfer *x, const px_msg_cxl *m)
{
    px_cxlld *s = x->s;
    if (x->phase != X_WRITING) {
        s->st.dups++;
        return;
    }
    uint32_t c = chunk_of(x, m->area, m->off, m->len);
    if (c == NO_CHUNK) {
        bad(s, "ACK for a range that is no chunk of the LD", x->node);
        return;
    }
    slot *sl = slot_find(x, c);
    if (!sl || sl->hash != m->hash) {
        s->st.dups++; /* an earlier send of a chunk that was resent since */
        return;
    }
    x->hash[c] = sl->hash;
    x->zero[c] = sl->zero;
    slot_drop(x, sl);
    x->progress_ms = now_ms(s);
    wb_pump(x);
}

/* ---- timers ---- */

static void pump(xfer *x)
{
    if (x->phase == X_OPENING || x->phase == X_FETCHING)
        fetch_pump(x);
    else if (x->phase == X_WRITING)
        wb_pump(x);
}

static void on_later(uv_timer_t *t)
{
    px_cxlld *s = t->data;
    s->later_due = 0;
    bool held = queues_flush(s);
    /* Pumps may fail a transfer but never unlink one (only the API does,
     * and user callbacks run after this walk). */
    for (xfer *x = s->xfers; x; x = x->next)
        if (x->pump_due) {
            x->pump_due = false;
            pump(x);
        }
    comp_run(s);
    if (held)
        later(s, AGAIN_MS);
}

static void later(px_cxlld *s, uint64_t ms)
{
    if (s->shutting)
        return;
    uint64_t due = now_ms(s) + ms;
    if (s->later_due && s->later_due <= due)
        return;
    s->later_due = due;
    uv_timer_start(&s->later, on_later, ms, 0);
}

static void resend(xfer *x, uint64_t now)
{
    px_cxlld *s = x->s;
    uint64_t retry = s->tun.retry_ms;
    if (x->phase == X_OPENING) {
        if (x->open_sent && now - x->open_ms >= retry) {
            x->open_sent = false;
            s->st.resent++;
            fetch_pump(x);
        }
        return;
    }
    for (uint32_t i = 0; i < x->window && running(x); i++) {
        slot *sl = &x->win[i];
        if (sl->chunk == NO_CHUNK || now - sl->sent_ms < retry)
            continue;
        if (x->phase == X_FETCHING) {
            if (send_read(x, sl->chunk) == PX_E_AGAIN)
                return;
            sl->sent_ms = now;
        } else {
            uint32_t c = sl->chunk, a = c >= x->nch[0];
            int r = wb_chunk(x, c, true, sl);
            if (r == PX_E_AGAIN)
                return;
            if (r < 0) {
                xfer_fail(x, (px_err)r, "cannot read %s again: %s", x->path[a],
                          px_strerror((px_err)r));
                return;
            }
        }
        s->st.resent++;
    }
}

static void on_tick(uv_timer_t *t)
{
    px_cxlld *s = t->data;
    uint64_t now = now_ms(s);
    bool any = false;
    for (xfer *x = s->xfers; x; x = x->next) {
        if (!running(x))
            continue;
        if (now - x->progress_ms >= s->tun.timeout_ms && x->phase == X_OPENING && x->other) {
            xfer_fail(x, PX_E_TIMEOUT,
                      "%s of LD %u of pool %s (lab %s): pool %s's node %s has LD %u at %" PRIu64
                      " bytes, this node's plan says %" PRIu64
                      "; has that node applied the plan that resized it?",
                      what(x), x->ld, x->pool, x->lab, x->pool, x->node, x->ld, x->seen, x->want);
            continue;
        }
        if (now - x->progress_ms >= s->tun.timeout_ms) {
            xfer_fail(x, PX_E_TIMEOUT,
                      "%s of LD %u of pool %s (lab %s): pool node %s did not answer for %.1f s; "
                      "is it up and reachable? (plexus nodes)",
                      what(x), x->ld, x->pool, x->lab, x->node,
                      (double)(now - x->progress_ms) / 1000.0);
            continue;
        }
        resend(x, now);
        any |= running(x);
    }
    if (!any) {
        uv_timer_stop(&s->tick);
        s->tick_on = false;
    }
}

static void tick_start(px_cxlld *s)
{
    if (s->tick_on || s->shutting)
        return;
    uint64_t every =
        (s->tun.retry_ms < s->tun.timeout_ms ? s->tun.retry_ms : s->tun.timeout_ms) / 4;
    every = every < 5 ? 5 : every > 250 ? 250 : every;
    s->tick_on = true;
    uv_timer_start(&s->tick, on_tick, every, every);
}

/* ---- the guest side: API ---- */

static px_err xfer_new(px_cxlld *s, const char *lab, const char *pool, const char *pool_node,
                       uint32_t ld, xfer **out)
{
    xfer *x = calloc(1, sizeof(*x));
    if (!x)
        return PX_E_NOMEM;
    x->s = s;
    x->id = ++s->next_id;
    snprintf(x->lab, sizeof(x->lab), "%s", lab);
    snprintf(x->pool, sizeof(x->pool), "%s", pool);
    snprintf(x->node, sizeof(x->node), "%s", pool_node);
    x->key = px_net_key(lab, pool);
    x->ld = ld;
    x->fd[0] = x->fd[1] = -1;
    x->window = s->tun.window;
    x->win = calloc(x->window, sizeof(*x->win));
    if (!x->win) {
        free(x);
        return PX_E_NOMEM;
    }
    slots_clear(x);
    *out = x;
    return PX_OK;
}

static px_err fetch(px_cxlld *s, const char *lab, const char *pool, const char *pool_node,
                    uint32_t ld, uint64_t size, const char *mem_path, const char *lsa_path,
                    bool keep, px_cxlld_done done, void *ud, uint64_t *handle, px_errmsg *em);

px_err px_cxlld_fetch(px_cxlld *s, const char *lab, const char *pool, const char *pool_node,
                      uint32_t ld, uint64_t size, const char *mem_path, const char *lsa_path,
                      px_cxlld_done done, void *ud, uint64_t *handle, px_errmsg *em)
{
    return fetch(s, lab, pool, pool_node, ld, size, mem_path, lsa_path, false, done, ud, handle,
                 em);
}

px_err px_cxlld_adopt(px_cxlld *s, const char *lab, const char *pool, const char *pool_node,
                      uint32_t ld, uint64_t size, const char *mem_path, const char *lsa_path,
                      px_cxlld_done done, void *ud, uint64_t *handle, px_errmsg *em)
{
    return fetch(s, lab, pool, pool_node, ld, size, mem_path, lsa_path, true, done, ud, handle, em);
}

static px_err fetch(px_cxlld *s, const char *lab, const char *pool, const char *pool_node,
                    uint32_t ld, uint64_t size, const char *mem_path, const char *lsa_path,
                    bool keep, px_cxlld_done done, void *ud, uint64_t *handle, px_errmsg *em)
{
    if (s->shutting)
        return px_errmsg_set(em, PX_E_CLOSED, "the CXL LD service is closing");
    if (!name_ok(lab) || !name_ok(pool) || !name_ok(pool_node) || ld >= PX_CXLLD_MAX_LDS)
        return px_errmsg_set(em, PX_E_INVAL,
                             "fetch: lab, pool or node name missing or too long, "
                             "or LD over %u",
                             PX_CXLLD_MAX_LDS - 1);
    bool local = strcmp(pool_node, s->io.self) == 0;
    if (!local && !ld_size_ok(size))
        return px_errmsg_set(em, PX_E_INVAL,
                             "fetch of LD %u: size %" PRIu64 " is not a multiple of %u up to "
                             "%" PRIu64,
                             ld, size, PX_CXLLD_ALIGN, (uint64_t)PX_CXLLD_MAX_LD_SIZE);
    if (local) {
        lpool *p = pool_named(s, lab, pool, NULL);
        if (!p || ld >= p->n_lds)
            return px_errmsg_set(em, PX_E_NOTFOUND,
                                 "pool %s of lab %s is not open on this node (%s)%s", pool, lab,
                                 s->io.self, p ? " with that many LDs" : "");
    } else if (!mem_path || !lsa_path || strlen(mem_path) >= PATH_CAP ||
               strlen(lsa_path) >= PATH_CAP) {
        return px_errmsg_set(em, PX_E_INVAL, "fetch of LD %u: file paths missing or too long", ld);
    }
    waiter *w = waiter_new(done, ud);
    xfer *x = NULL;
    if (!w || xfer_new(s, lab, pool, pool_node, ld, &x) != PX_OK) {
        free(w);
        return px_errmsg_set(em, PX_E_NOMEM, "fetch of LD %u: out of memory", ld);
    }
    x->local = local;
    x->keep = keep;
    x->want = size;
    if (!local) {
        const char *paths[2] = {mem_path, lsa_path};
        for (int a = 0; a < 2; a++) {
            snprintf(x->path[a], sizeof(x->path[a]), "%s", paths[a]);
            x->fd[a] = open(paths[a], O_RDWR | O_CREAT | O_CLOEXEC, 0600);
            if (x->fd[a] < 0) {
                px_err err = px_errmsg_set(em, px_err_from_errno(errno),
                                           "fetch of LD %u: cannot open %s: %s", ld, paths[a],
                                           strerror(errno));
                free(w);
                xfer_free(x);
                return err;
            }
        }
    }
    x->next = s->xfers;
    s->xfers = x;
    x->cur = w;
    if (local) {
        x->phase = X_READY;
        comp_all(s, &x->cur, PX_OK, "");
    } else {
        x->phase = X_OPENING;
        x->progress_ms = now_ms(s);
        tick_start(s);
        schedule(x, 0);
    }
    if (handle)
        *handle = x->id;
    return PX_OK;
}

px_err px_cxlld_writeback(px_cxlld *s, uint64_t handle, px_cxlld_done done, void *ud, px_errmsg *em)
{
    xfer *x = s->shutting ? NULL : xfer_find(s, handle);
    if (!x)
        return px_errmsg_set(em, PX_E_NOTFOUND, "write-back: no LD copy %" PRIu64, handle);
    if (x->phase == X_OPENING || x->phase == X_FETCHING)
        return px_errmsg_set(em, PX_E_AGAIN,
                             "write-back of LD %u of pool %s: its fetch is still running", x->ld,
                             x->pool);
    if (x->phase == X_FAILED)
        return px_errmsg_set(em, PX_E_INVAL,
                             "write-back of LD %u of pool %s: its fetch failed; the local files "
                             "are not the LD",
                             x->ld, x->pool);
    waiter *w = waiter_new(done, ud);
    if (!w)
        return px_errmsg_set(em, PX_E_NOMEM, "write-back: out of memory");
    if (x->local) {
        comp_push(s, w, PX_OK, "");
    } else if (x->phase == X_WRITING) {
        waiter_append(&x->nxt, w);
    } else {
        x->cur = w;
        wb_start(x);
    }
    return PX_OK;
}

void px_cxlld_forget(px_cxlld *s, uint64_t handle)
{
    xfer *x = xfer_find(s, handle);
    if (x)
        xfer_end(x, PX_E_CLOSED, "the LD copy was forgotten while a transfer ran");
}

/* ---- messages ---- */

void px_cxlld_on_msg(px_cxlld *s, const px_peer *from, const px_msg_cxl *m)
{
    if (s->shutting)
        return;
    char node[NAME_CAP];
    px_str_copy(node, sizeof(node), m->node);
    const char *key = node[0] && m->node.len < NAME_CAP && strcmp(node, s->io.self) != 0
                          ? s->io.node_key(s->io.ud, node)
                          : NULL;
    if (!key || !from || strcmp(key, from->key_z85) != 0) {
        bad(s, "a message from a node that is not the one it names", node);
        return;
    }
    switch (m->op) {
    case PX_CXL_OPEN:
    case PX_CXL_READ:
    case PX_CXL_WRITE:
        pool_msg(s, node, m);
        return;
    default:
        break;
    }
    xfer *x = xfer_find(s, m->xfer);
    if (!x || x->local || x->key != m->pool || x->ld != m->ld || strcmp(x->node, node) != 0) {
        bad(s, "an answer to no transfer of ours", node);
        return;
    }
    switch (m->op) {
    case PX_CXL_INFO:
        on_info(x, m);
        return;
    case PX_CXL_DATA:
        on_data(x, m);
        return;
    case PX_CXL_ACK:
        on_ack(x, m);
        return;
    case PX_CXL_FAIL:
        if (!running(x)) {
            s->st.dups++;
            return;
        }
        {
            char text[PX_WIRE_MAX_CXL_MSG + 1];
            px_str_copy(text, sizeof(text), m->msg);
            xfer_fail(x, m->code < 0 ? (px_err)m->code : PX_E_PROTO,
                      "%s of LD %u of pool %s (lab %s): pool node %s refused: %s", what(x), x->ld,
                      x->pool, x->lab, x->node, text);
        }
        return;
    default:
        bad(s, "an unknown op", node);
    }
}

/* ---- the service ---- */

px_err px_cxlld_new(uv_loop_t *loop, const px_svc_io *io, px_cxlld **out)
{
    if (sodium_init() < 0)
        return PX_E_UNSUPP;
    px_cxlld *s = calloc(1, sizeof(*s));
    if (!s)
        return PX_E_NOMEM;
    s->loop = loop;
    s->io = *io;
    s->tun = (px_cxlld_tuning){.window = DEF_WINDOW,
                               .retry_ms = DEF_RETRY_MS,
                               .timeout_ms = DEF_TIMEOUT_MS,
                               .queue_bytes = DEF_QUEUE_BYTES};
    s->comps_tail = &s->comps;
    /* Ids differ across restarts, so a late answer to a transfer of an
     * earlier run of this node names no transfer of this one. */
    s->next_id = uv_hrtime();
    s->scratch = calloc(1, sizeof(*s->scratch));
    s->buf = malloc(PX_CXLLD_CHUNK);
    if (!s->scratch || !s->buf) {
        free(s->scratch);
        free(s->buf);
        free(s);
        return PX_E_NOMEM;
    }
    uv_timer_init(loop, &s->tick);
    uv_timer_init(loop, &s->later);
    s->tick.data = s->later.data = s;
    *out = s;
    return PX_OK;
}

void px_cxlld_tune(px_cxlld *s, const px_cxlld_tuning *t)
{
    if (t->window)
        s->tun.window = t->window < MAX_WINDOW ? t->window : MAX_WINDOW;
    if (t->retry_ms)
        s->tun.retry_ms = t->retry_ms;
    if (t->timeout_ms)
        s->tun.timeout_ms = t->timeout_ms;
    if (t->queue_bytes)
        s->tun.queue_bytes = t->queue_bytes;
    if (s->tick_on) { /* a new period */
        s->tick_on = false;
        uv_timer_stop(&s->tick);
        tick_start(s);
    }
}

void px_cxlld_stats_get(const px_cxlld *s, px_cxlld_stats *out)
{
    *out = s->st;
}

void px_cxlld_lab_remove(px_cxlld *s, const char *lab)
{
    for (uint32_t i = 0; i < s->n_pools;) {
        if (strcmp(s->pools[i]->lab, lab) == 0) {
            pool_free(s->pools[i]);
            s->pools[i] = s->pools[--s->n_pools];
        } else {
            i++;
        }
    }
    xfer *x = s->xfers;
    while (x) {
        xfer *n = x->next;
        if (strcmp(x->lab, lab) == 0)
            xfer_end(x, PX_E_CLOSED, "the lab was removed while its LD transfer ran");
        x = n;
    }
}

static void svc_closed(uv_handle_t *h)
{
    px_cxlld *s = h->data;
    if (--s->closing)
        return;
    comp_run(s);
    void (*done)(void *) = s->done;
    void *done_ud = s->done_ud;
    px_wbuf_fini(&s->wb);
    free(s->scratch);
    free(s->buf);
    free(s->pools);
    free(s);
    if (done)
        done(done_ud);
}

void px_cxlld_close(px_cxlld *s, void (*done)(void *ud), void *ud)
{
    if (!s) {
        if (done)
            done(ud);
        return;
    }
    if (s->shutting)
        return;
    while (s->xfers)
        xfer_end(s->xfers, PX_E_CLOSED, "the CXL LD service closed while the transfer ran");
    while (s->n_pools)
        pool_free(s->pools[--s->n_pools]);
    queues_free(s);
    s->shutting = true;
    s->done = done;
    s->done_ud = ud;
    s->closing = 2;
    uv_close((uv_handle_t *)&s->tick, svc_closed);
    uv_close((uv_handle_t *)&s->later, svc_closed);
}
