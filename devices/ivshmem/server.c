/* plexus — an ivshmem server for one region on one node. See server.h.
 *
 * Peers are reference counted: the peer table holds one reference, every
 * message queued for a slow client that carries one of the peer's eventfds
 * holds one, and every uv_poll watching a proxy's eventfd holds one. The
 * eventfds are closed when the last reference goes, so a queued join notice
 * never needs a dup'ed fd. When a peer leaves, announcements of it still
 * wholly queued for a client are dropped along with the leave notice (the
 * client never knew it): a client that does not read costs memory for the
 * live peers and leave notices (bounded by PX_IVSRV_QUEUE_MAX) and no file
 * descriptors for peers that came and went.
 *
 * A client that fails (socket closed, a send refused) is only marked dead
 * where that is found; the reap timer (0 ms) removes it on the next loop
 * turn. So callbacks never run inside a px_ivsrv_* call, and removing one
 * client never happens while another is being iterated over.
 */
#include "devices/ivshmem/server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "devices/ivshmem/proto.h"
#include "fabric/core/log.h"

#define LISTEN_BACKLOG  64
#define ACCEPT_BATCH    32u  /* connections accepted per wake-up */
#define DRAIN_READS     16u  /* reads of client bytes (ignored) per wake-up */
#define ACCEPT_PAUSE_MS 100u /* accept(2) out of fds: try again after this */
#define QUEUE_FIRST     64u
#define MIN_SHM         4096u

#define SUN_PATH_MAX sizeof(((struct sockaddr_un *)0)->sun_path)
#define CONN_EVENTS  (UV_READABLE | UV_DISCONNECT)

typedef struct peer peer;
typedef struct conn conn;

typedef struct ring_poll {
    uv_poll_t h;
    px_ivsrv *s;
    peer *p;
    uint32_t vector;
} ring_poll;

struct peer {
    uint16_t id;
    bool local;
    uint32_t refs;
    conn *c; /* local: its client (NULL once that is closed) */
    pid_t pid;
    uint64_t rings_in, rings_out;
    uint32_t n_fds;
    ring_poll *polls[PX_IVSHM_MAX_VECTORS]; /* proxy: one watcher per vector */
    int fds[];
};

/* A message waiting for the client's socket. Its fd is looked up when it
 * is sent: the shared memory for -1, else p->fds[vector] (p NULL: none). */
typedef struct qmsg {
    int64_t value;
    peer *p;
    uint32_t vector;
} qmsg;

struct conn {
    uv_poll_t h;
    px_ivsrv *s;
    conn *prev, *next;
    uint64_t id;
    int fd;
    pid_t pid;
    peer *p;    /* admitted: its peer; NULL while pending */
    bool dead;  /* to reap: its socket closed or a send failed */
    int events; /* requested from h */
    qmsg *q;    /* ring buffer: q_len messages from q_head */
    uint32_t q_head, q_len, q_cap;
};

struct px_ivsrv {
    uv_loop_t *loop;
    char path[SUN_PATH_MAX];
    int lfd;
    int shm_fd;
    uint32_t vectors;
    px_ivsrv_cbs cbs;
    void *ud;
    uv_poll_t listen;
    uv_timer_t reap;
    uv_timer_t accept_pause;
    conn *conns; /* every open client, oldest first */
    conn *conns_tail;
    peer **peers; /* the table, sorted by ID */
    uint32_t n_peers, cap_peers;
    uint64_t next_conn;
    unsigned handles; /* open libuv handles; the server is freed when 0 after close */
    bool closing;
    void (*done)(void *ud);
    void *done_ud;
};

/* ---- handles and teardown ---- */

static void finish(px_ivsrv *s)
{
    void (*done)(void *) = s->done;
    void *ud = s->done_ud;
    if (s->shm_fd >= 0)
        close(s->shm_fd);
    free(s->peers);
    free(s);
    if (done != NULL)
        done(ud);
}

static void handle_gone(px_ivsrv *s)
{
    if (--s->handles == 0 && s->closing)
        finish(s);
}

static void listen_closed(uv_handle_t *h)
{
    px_ivsrv *s = h->data;
    close(s->lfd);
    s->lfd = -1;
    handle_gone(s);
}

static void timer_closed(uv_handle_t *h)
{
    handle_gone(h->data);
}

/* ---- peers ---- */

static void peer_unref(peer *p)
{
    if (--p->refs > 0)
        return;
    for (uint32_t v = 0; v < p->n_fds; v++)
        close(p->fds[v]);
    free(p);
}

static peer *peer_new(px_ivsrv *s, uint16_t id, bool local)
{
    peer *p = calloc(1, sizeof(*p) + s->vectors * sizeof(int));
    if (p == NULL)
        return NULL;
    p->id = id;
    p->local = local;
    p->refs = 1;
    for (uint32_t v = 0; v < s->vectors; v++) {
        int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (fd < 0) {
            peer_unref(p);
            return NULL;
        }
        p->fds[p->n_fds++] = fd;
    }
    return p;
}

/* Index of the first peer with ID >= id. */
static uint32_t peer_pos(const px_ivsrv *s, uint16_t id)
{
    uint32_t lo = 0, hi = s->n_peers;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->peers[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static peer *peer_find(const px_ivsrv *s, uint16_t id)
{
    uint32_t i = peer_pos(s, id);
    return i < s->n_peers && s->peers[i]->id == id ? s->peers[i] : NULL;
}

static px_err peer_insert(px_ivsrv *s, peer *p)
{
    if (s->n_peers == s->cap_peers) {
        uint32_t cap = s->cap_peers ? s->cap_peers * 2 : 16;
        peer **n = realloc(s->peers, cap * sizeof(*n));
        if (n == NULL)
            return PX_E_NOMEM;
        s->peers = n;
        s->cap_peers = cap;
    }
    uint32_t i = peer_pos(s, p->id);
    memmove(&s->peers[i + 1], &s->peers[i], (s->n_peers - i) * sizeof(*s->peers));
    s->peers[i] = p;
    s->n_peers++;
    return PX_OK;
}

static void peer_detach(px_ivsrv *s, peer *p)
{
    uint32_t i = peer_pos(s, p->id);
    memmove(&s->peers[i], &s->peers[i + 1], (s->n_peers - i - 1) * sizeof(*s->peers));
    s->n_peers--;
}

static void ring_closed(uv_handle_t *h)
{
    ring_poll *rp = h->data;
    px_ivsrv *s = rp->s;
    peer_unref(rp->p);
    free(rp);
    handle_gone(s);
}

static void proxy_stop(peer *p)
{
    for (uint32_t v = 0; v < p->n_fds; v++) {
        if (p->polls[v] != NULL) {
            uv_close((uv_handle_t *)&p->polls[v]->h, ring_closed);
            p->polls[v] = NULL;
        }
    }
}

/* ---- sending to clients ---- */

static void reap_cb(uv_timer_t *t);

static void reap_soon(px_ivsrv *s)
{
    if (!s->closing)
        uv_timer_start(&s->reap, reap_cb, 0, 0);
}

static qmsg *q_at(conn *c, uint32_t i)
{
    return &c->q[(c->q_head + i) % c->q_cap];
}

static void q_clear(conn *c)
{
    for (uint32_t i = 0; i < c->q_len; i++) {
        qmsg *m = q_at(c, i);
        if (m->p != NULL)
            peer_unref(m->p);
    }
    free(c->q);
    c->q = NULL;
    c->q_head = c->q_len = c->q_cap = 0;
}

static void conn_kill(conn *c, const char *why, int err)
{
    if (c->dead)
        return;
    c->dead = true;
    uv_poll_stop(&c->h);
    /* A peer going away (QEMU quits, a host program ends) is normal; the
     * server dropping one is not. */
    bool left = err == 0 ? strcmp(why, "closed") == 0 : err == ECONNRESET || err == EPIPE;
    if (c->p != NULL && left)
        PX_INFO("ivshmem", "peer left", "id=%u pid=%ld", (unsigned)c->p->id, (long)c->pid);
    else if (c->p != NULL)
        PX_WARN("ivshmem", "peer dropped", "id=%u pid=%ld reason=\"%s%s%s\"", (unsigned)c->p->id,
                (long)c->pid, why, err ? ": " : "", err ? strerror(err) : "");
    else
        PX_DEBUG("ivshmem", "pending client gone", "conn=%llu reason=\"%s\"",
                 (unsigned long long)c->id, why);
    q_clear(c);
    reap_soon(c->s);
}

static void conn_cb(uv_poll_t *h, int status, int events);

static void conn_watch(conn *c)
{
    int ev = CONN_EVENTS | (c->q_len > 0 ? UV_WRITABLE : 0);
    if (ev != c->events && uv_poll_start(&c->h, ev, conn_cb) == 0)
        c->events = ev;
}

static int msg_fd(const px_ivsrv *s, const qmsg *m)
{
    if (m->p != NULL)
        return m->p->fds[m->vector];
    return m->value == -1 ? s->shm_fd : -1;
}

/* Send now, or queue behind what is queued already. */
static void conn_send(conn *c, int64_t value, peer *p, uint32_t vector)
{
    if (c->dead)
        return;
    qmsg m = {.value = value, .p = p, .vector = vector};
    if (c->q_len == 0) {
        px_err e = px_ivshm_send(c->fd, value, msg_fd(c->s, &m));
        if (e == PX_OK)
            return;
        if (e != PX_E_AGAIN) {
            conn_kill(c, "send failed", errno);
            return;
        }
    }
    if (c->q_len >= PX_IVSRV_QUEUE_MAX) {
        conn_kill(c, "not reading: queue full", 0);
        return;
    }
    if (c->q_len == c->q_cap) {
        uint32_t cap = c->q_cap ? c->q_cap * 2 : QUEUE_FIRST;
        qmsg *n = malloc(cap * sizeof(*n));
        if (n == NULL) {
            conn_kill(c, "out of memory for its queue", ENOMEM);
            return;
        }
        for (uint32_t i = 0; i < c->q_len; i++)
            n[i] = *q_at(c, i);
        free(c->q);
        c->q = n;
        c->q_cap = cap;
        c->q_head = 0;
    }
    if (p != NULL)
        p->refs++;
    *q_at(c, c->q_len++) = m;
    conn_watch(c);
}

static void conn_flush(conn *c)
{
    while (c->q_len > 0 && !c->dead) {
        qmsg *m = q_at(c, 0);
        px_err e = px_ivshm_send(c->fd, m->value, msg_fd(c->s, m));
        if (e == PX_E_AGAIN)
            break;
        if (e != PX_OK) {
            conn_kill(c, "send failed", errno);
            return;
        }
        if (m->p != NULL)
            peer_unref(m->p);
        c->q_head = (c->q_head + 1) % c->q_cap;
        c->q_len--;
    }
    if (!c->dead)
        conn_watch(c);
}

/* Peer p's eventfds, one message per vector, to every admitted local
 * client but p's own. */
static void announce(px_ivsrv *s, peer *p)
{
    for (conn *c = s->conns; c != NULL; c = c->next) {
        if (c->p == NULL || c->p == p)
            continue;
        for (uint32_t v = 0; v < p->n_fds; v++)
            conn_send(c, p->id, p, v);
    }
}

/* Drop c's queued messages that carry p's eventfds; how many there were. */
static uint32_t q_drop(conn *c, const peer *p)
{
    uint32_t kept = 0, dropped = 0;
    for (uint32_t i = 0; i < c->q_len; i++) {
        qmsg m = *q_at(c, i);
        if (m.p == p) {
            dropped++;
            continue;
        }
        *q_at(c, kept++) = m;
    }
    c->q_len = kept;
    return dropped;
}

/* Peer p is gone. A client that has not been sent any of p's eventfds yet
 * (all p->n_fds still queued: each client is told of a peer once, in one
 * run of messages) never hears of p at all; the others get the leave
 * notice. So a client that does not read holds no references to peers
 * that came and went meanwhile, and its queue stays the size of the
 * region. */
static void announce_leave(px_ivsrv *s, peer *p)
{
    for (conn *c = s->conns; c != NULL; c = c->next) {
        if (c->p == NULL || c->p == p)
            continue;
        uint32_t queued = q_drop(c, p);
        p->refs -= queued; /* the table's reference keeps p */
        if (queued < p->n_fds)
            conn_send(c, p->id, NULL, 0);
    }
}

/* ---- clients ---- */

static void conn_closed(uv_handle_t *h)
{
    conn *c = h->data;
    px_ivsrv *s = c->s;
    close(c->fd);
    free(c);
    handle_gone(s);
}

/* Unlink and close, no callback. The peer (if any) is the caller's. */
static void conn_close(px_ivsrv *s, conn *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    else
        s->conns_tail = c->prev;
    q_clear(c);
    if (c->p != NULL)
        c->p->c = NULL;
    uv_close((uv_handle_t *)&c->h, conn_closed);
}

static conn *conn_find(const px_ivsrv *s, uint64_t id)
{
    for (conn *c = s->conns; c != NULL; c = c->next)
        if (c->id == id)
            return c;
    return NULL;
}

/* Remove one dead client: leave notices, then its callback. */
static void reap_one(px_ivsrv *s, conn *c)
{
    peer *p = c->p;
    uint64_t id = c->id;
    conn_close(s, c);
    if (p == NULL) {
        if (s->cbs.on_abandon != NULL)
            s->cbs.on_abandon(s->ud, id);
        return;
    }
    peer_detach(s, p);
    announce_leave(s, p);
    uint16_t pid = p->id;
    peer_unref(p);
    if (s->cbs.on_leave != NULL)
        s->cbs.on_leave(s->ud, pid);
}

static void reap_cb(uv_timer_t *t)
{
    px_ivsrv *s = t->data;
    /* Restart from the head after each one: its callback, and the leave
     * notices (which can kill other clients), may change the list. */
    for (;;) {
        if (s->closing)
            return;
        conn *c = s->conns;
        while (c != NULL && !c->dead)
            c = c->next;
        if (c == NULL)
            return;
        reap_one(s, c);
    }
}

static void conn_cb(uv_poll_t *h, int status, int events)
{
    conn *c = h->data;
    if (c->dead || c->s->closing)
        return;
    if (status < 0) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        conn_kill(c, "socket error", err);
        return;
    }
    if (events & (UV_READABLE | UV_DISCONNECT)) {
        /* Clients never speak: bytes are read and dropped, and reading is
         * how a closed socket shows. */
        char buf[512];
        for (unsigned i = 0; i < DRAIN_READS; i++) {
            ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
            if (n > 0)
                continue;
            if (n == 0) {
                conn_kill(c, "closed", 0);
                return;
            }
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                conn_kill(c, "read failed", errno);
                return;
            }
            break;
        }
    }
    if (events & UV_WRITABLE)
        conn_flush(c);
}

static void accept_resume(uv_timer_t *t);

static void listen_cb(uv_poll_t *h, int status, int events)
{
    px_ivsrv *s = h->data;
    if (status < 0) {
        PX_WARN("ivshmem", "listening socket error", "path=%s err=\"%s\"", s->path,
                uv_strerror(status));
        return;
    }
    for (unsigned i = 0; i < ACCEPT_BATCH && !s->closing; i++) {
        int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            /* Out of fds or memory: the listening socket stays readable, so
             * stop watching it for a while instead of spinning. */
            PX_WARN("ivshmem", "accept failed; pausing", "path=%s err=\"%s\" pause_ms=%u", s->path,
                    strerror(errno), ACCEPT_PAUSE_MS);
            uv_poll_stop(&s->listen);
            uv_timer_start(&s->accept_pause, accept_resume, ACCEPT_PAUSE_MS, 0);
            return;
        }
        struct ucred cred;
        socklen_t len = sizeof(cred);
        pid_t pid = 0;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
            pid = cred.pid;
        conn *c = calloc(1, sizeof(*c));
        if (c == NULL || uv_poll_init(s->loop, &c->h, fd) != 0) {
            free(c);
            close(fd);
            continue;
        }
        c->h.data = c;
        c->s = s;
        c->fd = fd;
        c->pid = pid;
        c->id = ++s->next_conn;
        c->prev = s->conns_tail;
        if (s->conns_tail != NULL)
            s->conns_tail->next = c;
        else
            s->conns = c;
        s->conns_tail = c;
        s->handles++;
        c->events = CONN_EVENTS;
        uv_poll_start(&c->h, CONN_EVENTS, conn_cb);
        if (s->cbs.on_connect != NULL)
            s->cbs.on_connect(s->ud, c->id, pid);
    }
}

static void accept_resume(uv_timer_t *t)
{
    px_ivsrv *s = t->data;
    if (!s->closing)
        uv_poll_start(&s->listen, UV_READABLE, listen_cb);
}

/* ---- proxy doorbells ---- */

static void ring_cb(uv_poll_t *h, int status, int events)
{
    ring_poll *rp = h->data;
    px_ivsrv *s = rp->s;
    if (s->closing)
        return;
    if (status < 0) {
        PX_WARN("ivshmem", "proxy eventfd error; not watched any more",
                "id=%u vector=%u err=\"%s\"", (unsigned)rp->p->id, rp->vector, uv_strerror(status));
        uv_poll_stop(h);
        return;
    }
    /* The fd may have been turned blocking by a QEMU that received it, so
     * the read must not wait: RWF_NOWAIT, or (kernels without it for
     * eventfds) a zero-timeout poll first. */
    int fd = rp->p->fds[rp->vector];
    uint64_t count = 0;
    struct iovec iov = {.iov_base = &count, .iov_len = sizeof(count)};
    ssize_t n = preadv2(fd, &iov, 1, -1, RWF_NOWAIT);
    if (n < 0 && (errno == EOPNOTSUPP || errno == EINVAL)) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        n = poll(&pfd, 1, 0) == 1 ? read(fd, &count, sizeof(count)) : -1;
    }
    if (n != (ssize_t)sizeof(count) || count == 0)
        return;
    rp->p->rings_out += count;
    if (s->cbs.on_ring != NULL)
        s->cbs.on_ring(s->ud, rp->p->id, rp->vector, count);
}

/* ---- API ---- */

static bool pow2(uint64_t x)
{
    return x != 0 && (x & (x - 1)) == 0;
}

px_err px_ivsrv_new(uv_loop_t *loop, const char *path, int shm_fd, uint32_t vectors,
                    const px_ivsrv_cbs *cbs, void *ud, px_ivsrv **out, px_errmsg *em)
{
    *out = NULL;
    if (vectors < 1 || vectors > PX_IVSHM_MAX_VECTORS)
        return px_errmsg_set(em, PX_E_CONFIG, "ivshmem: %u vectors; a region has 1..%u", vectors,
                             PX_IVSHM_MAX_VECTORS);
    struct stat st;
    if (fstat(shm_fd, &st) != 0)
        return px_errmsg_set(em, PX_E_INVAL, "ivshmem: shared memory fd %d: %s", shm_fd,
                             strerror(errno));
    if (st.st_size < (off_t)MIN_SHM || !pow2((uint64_t)st.st_size))
        return px_errmsg_set(em, PX_E_CONFIG,
                             "ivshmem: shared memory of %lld bytes: the size must be a power of "
                             "two of at least %u bytes (QEMU's ivshmem-doorbell would abort on "
                             "it); use e.g. 1M, 4M or 64M",
                             (long long)st.st_size, MIN_SHM);
    if (strlen(path) >= SUN_PATH_MAX)
        return px_errmsg_set(em, PX_E_CONFIG,
                             "ivshmem: socket path %s is longer than %zu bytes; use a shorter "
                             "lab directory",
                             path, SUN_PATH_MAX - 1);

    px_err err = PX_E_NOMEM;
    px_ivsrv *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return px_errmsg_set(em, PX_E_NOMEM, "ivshmem: out of memory");
    s->loop = loop;
    s->vectors = vectors;
    s->ud = ud;
    if (cbs != NULL)
        s->cbs = *cbs;
    snprintf(s->path, sizeof(s->path), "%s", path);
    s->shm_fd = fcntl(shm_fd, F_DUPFD_CLOEXEC, 3);
    if (s->shm_fd < 0) {
        err =
            px_errmsg_set(em, PX_E_IO, "ivshmem: dup of the shared memory fd: %s", strerror(errno));
        goto fail_dup;
    }
    s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->lfd < 0) {
        err = px_errmsg_set(em, PX_E_IO, "ivshmem: socket: %s", strerror(errno));
        goto fail_socket;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (unlink(path) != 0 && errno != ENOENT) {
        err = px_errmsg_set(em, PX_E_IO, "ivshmem: cannot replace %s: %s", path, strerror(errno));
        goto fail_bind;
    }
    if (bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        err = px_errmsg_set(em, PX_E_IO, "ivshmem: bind %s: %s", path, strerror(errno));
        goto fail_bind;
    }
    if (chmod(path, 0600) != 0 || listen(s->lfd, LISTEN_BACKLOG) != 0) {
        err = px_errmsg_set(em, PX_E_IO, "ivshmem: listen on %s: %s", path, strerror(errno));
        goto fail_listen;
    }
    if (uv_poll_init(loop, &s->listen, s->lfd) != 0) {
        err = px_errmsg_set(em, PX_E_IO, "ivshmem: cannot watch %s", path);
        goto fail_listen;
    }
    s->listen.data = s;
    uv_timer_init(loop, &s->reap);
    s->reap.data = s;
    uv_timer_init(loop, &s->accept_pause);
    s->accept_pause.data = s;
    s->handles = 3;
    uv_poll_start(&s->listen, UV_READABLE, listen_cb);
    *out = s;
    return PX_OK;

fail_listen:
    unlink(path);
fail_bind:
    close(s->lfd);
fail_socket:
    close(s->shm_fd);
fail_dup:
    free(s);
    return err;
}

px_err px_ivsrv_admit(px_ivsrv *s, uint64_t conn_id, uint16_t id, px_errmsg *em)
{
    if (s->closing)
        return px_errmsg_set(em, PX_E_CLOSED, "ivshmem: the server is closing");
    conn *c = conn_find(s, conn_id);
    if (c == NULL || c->dead)
        return px_errmsg_set(em, PX_E_NOTFOUND, "ivshmem: client %llu is gone",
                             (unsigned long long)conn_id);
    if (c->p != NULL)
        return px_errmsg_set(em, PX_E_INVAL, "ivshmem: client %llu was admitted already as %u",
                             (unsigned long long)conn_id, (unsigned)c->p->id);
    if (peer_find(s, id) != NULL)
        return px_errmsg_set(em, PX_E_EXISTS, "ivshmem: peer ID %u is taken", (unsigned)id);
    peer *p = peer_new(s, id, true);
    if (p == NULL)
        return px_errmsg_set(em, PX_E_IO, "ivshmem: eventfds for peer %u: %s", (unsigned)id,
                             strerror(errno));
    if (peer_insert(s, p) != PX_OK) {
        peer_unref(p);
        return px_errmsg_set(em, PX_E_NOMEM, "ivshmem: out of memory");
    }
    p->c = c;
    p->pid = c->pid;
    c->p = p;

    conn_send(c, PX_IVSHM_VERSION, NULL, 0);
    conn_send(c, id, NULL, 0);
    conn_send(c, -1, NULL, 0);
    for (uint32_t i = 0; i < s->n_peers; i++) {
        peer *o = s->peers[i];
        if (o == p)
            continue;
        for (uint32_t v = 0; v < o->n_fds; v++)
            conn_send(c, o->id, o, v);
    }
    /* Own eventfds last: QEMU counts them to know its setup is complete. */
    for (uint32_t v = 0; v < p->n_fds; v++)
        conn_send(c, id, p, v);
    announce(s, p);
    return PX_OK;
}

void px_ivsrv_reject(px_ivsrv *s, uint64_t conn_id)
{
    if (s->closing)
        return;
    conn *c = conn_find(s, conn_id);
    if (c != NULL && c->p == NULL)
        conn_close(s, c);
}

px_err px_ivsrv_add_proxy(px_ivsrv *s, uint16_t id, px_errmsg *em)
{
    if (s->closing)
        return px_errmsg_set(em, PX_E_CLOSED, "ivshmem: the server is closing");
    if (peer_find(s, id) != NULL)
        return px_errmsg_set(em, PX_E_EXISTS, "ivshmem: peer ID %u is taken", (unsigned)id);
    peer *p = peer_new(s, id, false);
    if (p == NULL)
        return px_errmsg_set(em, PX_E_IO, "ivshmem: eventfds for proxy peer %u: %s", (unsigned)id,
                             strerror(errno));
    for (uint32_t v = 0; v < p->n_fds; v++) {
        ring_poll *rp = calloc(1, sizeof(*rp));
        if (rp == NULL || uv_poll_init(s->loop, &rp->h, p->fds[v]) != 0) {
            free(rp);
            proxy_stop(p);
            peer_unref(p);
            return px_errmsg_set(em, PX_E_IO, "ivshmem: cannot watch proxy peer %u's eventfds",
                                 (unsigned)id);
        }
        rp->h.data = rp;
        rp->s = s;
        rp->p = p;
        rp->vector = v;
        p->refs++;
        p->polls[v] = rp;
        s->handles++;
        uv_poll_start(&rp->h, UV_READABLE, ring_cb);
    }
    if (peer_insert(s, p) != PX_OK) {
        proxy_stop(p);
        peer_unref(p);
        return px_errmsg_set(em, PX_E_NOMEM, "ivshmem: out of memory");
    }
    announce(s, p);
    return PX_OK;
}

void px_ivsrv_remove(px_ivsrv *s, uint16_t id)
{
    if (s->closing)
        return;
    peer *p = peer_find(s, id);
    if (p == NULL)
        return;
    peer_detach(s, p);
    announce_leave(s, p);
    if (p->local) {
        if (p->c != NULL)
            conn_close(s, p->c);
    } else {
        proxy_stop(p);
    }
    peer_unref(p);
}

px_err px_ivsrv_notify(px_ivsrv *s, uint16_t id, uint32_t vector)
{
    peer *p = peer_find(s, id);
    if (s->closing || p == NULL || !p->local || vector >= p->n_fds)
        return PX_E_NOTFOUND;
    uint64_t one = 1;
    ssize_t n;
    do
        n = write(p->fds[vector], &one, sizeof(one));
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof(one))
        return n < 0 && errno == EAGAIN ? PX_E_AGAIN : PX_E_IO;
    p->rings_in++;
    return PX_OK;
}

uint32_t px_ivsrv_peers(const px_ivsrv *s, px_ivsrv_peer *out, uint32_t cap)
{
    for (uint32_t i = 0; i < s->n_peers && i < cap; i++) {
        const peer *p = s->peers[i];
        out[i] = (px_ivsrv_peer){.id = p->id,
                                 .local = p->local,
                                 .pid = p->local ? p->pid : 0,
                                 .rings_in = p->rings_in,
                                 .rings_out = p->rings_out};
    }
    return s->n_peers;
}

void px_ivsrv_close(px_ivsrv *s, void (*done)(void *ud), void *ud)
{
    if (s == NULL || s->closing)
        return;
    s->closing = true;
    s->done = done;
    s->done_ud = ud;
    while (s->conns != NULL)
        conn_close(s, s->conns);
    for (uint32_t i = 0; i < s->n_peers; i++) {
        peer *p = s->peers[i];
        if (!p->local)
            proxy_stop(p);
        peer_unref(p);
    }
    s->n_peers = 0;
    unlink(s->path);
    uv_close((uv_handle_t *)&s->accept_pause, timer_closed);
    uv_close((uv_handle_t *)&s->reap, timer_closed);
    uv_close((uv_handle_t *)&s->listen, listen_closed);
}
