/* plexus — a host program as an ivshmem peer. See client.h. */
#include "devices/ivshmem/client.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "devices/ivshmem/proto.h"

#define PROCESS_BATCH 1024u /* messages handled per px_ivc_process call */

typedef struct ivc_peer {
    uint16_t id;
    uint32_t n;
    int fds[PX_IVSHM_MAX_VECTORS];
} ivc_peer;

struct px_ivc {
    int sock;
    uint16_t id;
    bool final; /* own vector count known for good (dec.max_vectors is it) */
    void *mem;
    size_t size;
    uint32_t n_own;
    int own[PX_IVSHM_MAX_VECTORS];
    ivc_peer *peers; /* sorted by ID */
    uint32_t n_peers, cap_peers;
    px_ivshm_dec dec;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left until deadline (-1: none) as a poll timeout. */
static int left_ms(int64_t deadline)
{
    if (deadline < 0)
        return -1;
    int64_t left = deadline - now_ms();
    return left <= 0 ? 0 : left > 60000 ? 60000 : (int)left;
}

static uint32_t peer_pos(const px_ivc *c, uint16_t id)
{
    uint32_t lo = 0, hi = c->n_peers;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (c->peers[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static ivc_peer *peer_find(const px_ivc *c, uint16_t id)
{
    uint32_t i = peer_pos(c, id);
    return i < c->n_peers && c->peers[i].id == id ? &c->peers[i] : NULL;
}

/* Close fd unless it is -1, keeping errno. */
static void close_keep(int fd)
{
    int e = errno;
    if (fd >= 0)
        close(fd);
    errno = e;
}

static px_err map_shm(px_ivc *c, int fd, px_errmsg *em)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size <= 0 || (uint64_t)st.st_size > SIZE_MAX) {
        close_keep(fd);
        return px_errmsg_set(em, PX_E_PROTO, "ivshmem: the shared memory fd has no usable size");
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close_keep(fd);
    if (m == MAP_FAILED)
        return px_errmsg_set(em, PX_E_IO, "ivshmem: mmap of %lld bytes: %s", (long long)st.st_size,
                             strerror(errno));
    c->mem = m;
    c->size = (size_t)st.st_size;
    return PX_OK;
}

/* Apply one decoded event; takes ownership of ev->fd in every case. */
static px_err apply(px_ivc *c, const px_ivshm_ev *ev, px_errmsg *em)
{
    switch (ev->kind) {
    case PX_IVSHM_EV_ID:
        c->id = ev->peer;
        return PX_OK;
    case PX_IVSHM_EV_SHM:
        return map_shm(c, ev->fd, em);
    case PX_IVSHM_EV_PEER_FD:
        if (ev->peer == c->id) {
            c->own[c->n_own++] = ev->fd; /* the decoder bounds it by max_vectors */
            return PX_OK;
        }
        break;
    case PX_IVSHM_EV_PEER_GONE: {
        ivc_peer *p = peer_find(c, ev->peer);
        if (p != NULL) {
            for (uint32_t v = 0; v < p->n; v++)
                close(p->fds[v]);
            uint32_t i = (uint32_t)(p - c->peers);
            memmove(p, p + 1, (c->n_peers - i - 1) * sizeof(*p));
            c->n_peers--;
        }
        return PX_OK;
    }
    default:
        return PX_OK;
    }
    ivc_peer *p = peer_find(c, ev->peer);
    if (p == NULL) {
        if (c->n_peers == c->cap_peers) {
            uint32_t cap = c->cap_peers ? c->cap_peers * 2 : 8;
            ivc_peer *n = realloc(c->peers, cap * sizeof(*n));
            if (n == NULL) {
                close(ev->fd);
                return px_errmsg_set(em, PX_E_NOMEM, "ivshmem: out of memory for peers");
            }
            c->peers = n;
            c->cap_peers = cap;
        }
        uint32_t i = peer_pos(c, ev->peer);
        memmove(&c->peers[i + 1], &c->peers[i], (c->n_peers - i) * sizeof(*c->peers));
        c->n_peers++;
        p = &c->peers[i];
        p->id = ev->peer;
        p->n = 0;
    }
    p->fds[p->n++] = ev->fd;
    return PX_OK;
}

/* Receive and decode one message. PX_E_AGAIN: nothing waiting. */
static px_err next_event(px_ivc *c, px_ivshm_ev *ev, px_errmsg *em)
{
    int64_t value;
    int fd;
    px_err e = px_ivshm_recv(c->sock, &value, &fd);
    if (e == PX_E_AGAIN)
        return e;
    if (e == PX_E_CLOSED)
        return px_errmsg_set(em, e, "ivshmem: the server closed the connection");
    if (e != PX_OK)
        return px_errmsg_set(em, e, "ivshmem: reading from the server: %s",
                             e == PX_E_TRUNCATED ? "a short message" : strerror(errno));
    e = px_ivshm_dec_feed(&c->dec, value, fd, ev, em);
    if (e != PX_OK)
        close_keep(fd);
    return e;
}

/* The own vector count is known for good: from now on a peer (own ID
 * included) with more eventfds is a protocol error. */
static void set_final(px_ivc *c, uint32_t n)
{
    c->final = true;
    c->dec.max_vectors = n;
}

static bool own_fd(const px_ivc *c, const px_ivshm_ev *ev)
{
    return ev->kind == PX_IVSHM_EV_PEER_FD && ev->peer == c->id;
}

/* Read the greeting; see "When the greeting is complete" in client.h. */
static px_err greet(px_ivc *c, uint32_t vectors, int64_t deadline, px_errmsg *em)
{
    uint32_t seen = 0; /* most eventfds of any other peer: N if there is one */
    for (;;) {
        px_ivshm_ev ev;
        px_err e = next_event(c, &ev, em);
        if (e == PX_OK) {
            bool own = own_fd(c, &ev);
            if (!own && c->n_own > 0) {
                /* The first message after the own fds: a notice. */
                uint32_t n = vectors ? vectors : seen;
                if (n != 0 && c->n_own != n) {
                    close_keep(ev.fd);
                    return px_errmsg_set(em, PX_E_PROTO,
                                         "ivshmem: the greeting ended with %u own eventfds, "
                                         "not %u",
                                         c->n_own, n);
                }
                set_final(c, c->n_own);
                return apply(c, &ev, em);
            }
            if ((e = apply(c, &ev, em)) != PX_OK)
                return e;
            if (ev.kind == PX_IVSHM_EV_PEER_FD && !own && c->dec.n_fds[ev.peer] > seen)
                seen = c->dec.n_fds[ev.peer];
            uint32_t n = vectors ? vectors : seen;
            if (own && n != 0 && c->n_own == n) {
                set_final(c, n);
                return PX_OK;
            }
            continue;
        }
        if (e == PX_E_CLOSED && !px_ivshm_dec_ready(&c->dec))
            return px_errmsg_set(em, e,
                                 "ivshmem: the server closed the connection before the greeting "
                                 "(rejected: the region is full, or its home is unreachable)");
        if (e != PX_E_AGAIN)
            return e;
        /* Nothing waiting. The first peer of a region has nobody to count
         * N from: its own fds are complete once the socket stays quiet. */
        bool settle = c->n_own > 0 && vectors == 0 && seen == 0;
        int wait = left_ms(deadline);
        if (settle && (wait < 0 || wait > PX_IVC_SETTLE_MS))
            wait = PX_IVC_SETTLE_MS;
        struct pollfd pfd = {.fd = c->sock, .events = POLLIN};
        int r = poll(&pfd, 1, wait);
        if (r < 0 && errno != EINTR)
            return px_errmsg_set(em, PX_E_IO, "ivshmem: poll: %s", strerror(errno));
        if (r == 0) {
            if (settle)
                return PX_OK;
            if (!px_ivshm_dec_ready(&c->dec))
                return px_errmsg_set(em, PX_E_TIMEOUT,
                                     "ivshmem: no greeting from the server in time (the client "
                                     "was not admitted: region full, or its home unreachable?)");
            return px_errmsg_set(em, PX_E_TIMEOUT,
                                 "ivshmem: the greeting stopped after %u own eventfds of %u",
                                 c->n_own, vectors ? vectors : seen);
        }
    }
}

px_err px_ivc_open_n(const char *path, uint32_t vectors, int timeout_ms, px_ivc **out,
                     px_errmsg *em)
{
    *out = NULL;
    if (vectors > PX_IVSHM_MAX_VECTORS)
        return px_errmsg_set(em, PX_E_INVAL, "ivshmem: %u vectors; at most %u", vectors,
                             PX_IVSHM_MAX_VECTORS);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return px_errmsg_set(em, PX_E_INVAL, "ivshmem: socket path %s is too long", path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;

    px_ivc *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return px_errmsg_set(em, PX_E_NOMEM, "ivshmem: out of memory");
    px_ivshm_dec_init(&c->dec, vectors);
    c->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->sock < 0) {
        px_errmsg_set(em, PX_E_IO, "ivshmem: socket: %s", strerror(errno));
        free(c);
        return PX_E_IO;
    }
    /* A full listen backlog makes connect wait; SO_SNDTIMEO bounds it. */
    if (timeout_ms >= 0) {
        struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
        if (timeout_ms == 0)
            tv.tv_usec = 1000;
        setsockopt(c->sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    px_err e;
    int r;
    do
        r = connect(c->sock, (struct sockaddr *)&sa, sizeof(sa));
    while (r != 0 && errno == EINTR);
    if (r != 0) {
        int err = errno;
        e = err == ENOENT || err == ECONNREFUSED  ? PX_E_NOTFOUND
            : err == EAGAIN || err == EINPROGRESS ? PX_E_TIMEOUT
                                                  : PX_E_IO;
        px_errmsg_set(em, e, "ivshmem: cannot connect to %s: %s%s", path, strerror(err),
                      e == PX_E_NOTFOUND ? " (is the region's node running? `plexus ivshmem "
                                           "peers REGION` shows the path)"
                                         : "");
        goto fail;
    }
    int fl = fcntl(c->sock, F_GETFL);
    if (fl < 0 || fcntl(c->sock, F_SETFL, fl | O_NONBLOCK) != 0) {
        e = px_errmsg_set(em, PX_E_IO, "ivshmem: fcntl: %s", strerror(errno));
        goto fail;
    }
    if ((e = greet(c, vectors, deadline, em)) != PX_OK)
        goto fail;
    *out = c;
    return PX_OK;

fail:
    px_ivc_close(c);
    return e;
}

px_err px_ivc_open(const char *path, int timeout_ms, px_ivc **out, px_errmsg *em)
{
    return px_ivc_open_n(path, 0, timeout_ms, out, em);
}

uint16_t px_ivc_id(const px_ivc *c)
{
    return c->id;
}

void *px_ivc_mem(const px_ivc *c, size_t *size)
{
    if (size != NULL)
        *size = c->size;
    return c->mem;
}

uint32_t px_ivc_vectors(const px_ivc *c)
{
    return c->n_own;
}

int px_ivc_fd(const px_ivc *c)
{
    return c->sock;
}

px_err px_ivc_process(px_ivc *c, px_errmsg *em)
{
    for (unsigned i = 0; i < PROCESS_BATCH; i++) {
        px_ivshm_ev ev;
        px_err e = next_event(c, &ev, em);
        if (e == PX_E_AGAIN)
            return PX_OK;
        if (e != PX_OK)
            return e;
        if (!c->final && !own_fd(c, &ev))
            set_final(c, c->n_own);
        if ((e = apply(c, &ev, em)) != PX_OK)
            return e;
    }
    return PX_OK;
}

uint32_t px_ivc_peers(const px_ivc *c, uint16_t *ids, uint32_t cap)
{
    for (uint32_t i = 0; i < c->n_peers && i < cap; i++)
        ids[i] = c->peers[i].id;
    return c->n_peers;
}

px_err px_ivc_ring(px_ivc *c, uint16_t peer, uint32_t vector)
{
    int fd = -1;
    if (peer == c->id) {
        if (vector < c->n_own)
            fd = c->own[vector];
    } else {
        const ivc_peer *p = peer_find(c, peer);
        if (p != NULL && vector < p->n)
            fd = p->fds[vector];
    }
    if (fd < 0)
        return PX_E_NOTFOUND;
    uint64_t one = 1;
    ssize_t n;
    do
        n = write(fd, &one, sizeof(one));
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof(one) ? PX_OK : PX_E_IO;
}

int px_ivc_vector_fd(const px_ivc *c, uint32_t v)
{
    return v < c->n_own ? c->own[v] : -1;
}

uint64_t px_ivc_take(px_ivc *c, uint32_t v)
{
    if (v >= c->n_own)
        return 0;
    /* A QEMU peer that received this fd turned it blocking (the flag is
     * shared): never read it without knowing it will not wait. */
    int fd = c->own[v];
    uint64_t count = 0;
    struct iovec iov = {.iov_base = &count, .iov_len = sizeof(count)};
    ssize_t n = preadv2(fd, &iov, 1, -1, RWF_NOWAIT);
    if (n < 0 && (errno == EOPNOTSUPP || errno == EINVAL)) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        n = poll(&pfd, 1, 0) == 1 ? read(fd, &count, sizeof(count)) : -1;
    }
    return n == (ssize_t)sizeof(count) ? count : 0;
}

px_err px_ivc_wait(px_ivc *c, int timeout_ms, uint32_t *vector, px_errmsg *em)
{
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    struct pollfd pfd[1 + PX_IVSHM_MAX_VECTORS];
    for (;;) {
        uint32_t n = c->n_own;
        pfd[0] = (struct pollfd){.fd = c->sock, .events = POLLIN};
        for (uint32_t v = 0; v < n; v++)
            pfd[1 + v] = (struct pollfd){.fd = c->own[v], .events = POLLIN};
        int r = poll(pfd, 1 + n, left_ms(deadline));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return px_errmsg_set(em, PX_E_IO, "ivshmem: poll: %s", strerror(errno));
        }
        if (r == 0)
            return px_errmsg_set(em, PX_E_TIMEOUT, "ivshmem: no doorbell within %d ms", timeout_ms);
        for (uint32_t v = 0; v < n; v++) {
            if ((pfd[1 + v].revents & POLLIN) && px_ivc_take(c, v) > 0) {
                *vector = v;
                return PX_OK;
            }
        }
        if (pfd[0].revents != 0) {
            px_err e = px_ivc_process(c, em);
            if (e != PX_OK)
                return e;
        }
    }
}

void px_ivc_close(px_ivc *c)
{
    if (c == NULL)
        return;
    if (c->sock >= 0)
        close(c->sock);
    for (uint32_t v = 0; v < c->n_own; v++)
        close(c->own[v]);
    for (uint32_t i = 0; i < c->n_peers; i++)
        for (uint32_t v = 0; v < c->peers[i].n; v++)
            close(c->peers[i].fds[v]);
    free(c->peers);
    if (c->mem != NULL)
        munmap(c->mem, c->size);
    free(c);
}
