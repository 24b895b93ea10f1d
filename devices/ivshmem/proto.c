/* plexus — QEMU's ivshmem-server protocol, both ends. See proto.h. */
#include "devices/ivshmem/proto.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_RX_FDS 16 /* room for fds a misbehaving sender attaches, so they get closed */

enum dec_state {
    ST_VERSION = 0, /* px_ivshm_dec_init zeroes the struct: VERSION must be 0 */
    ST_ID,
    ST_SHM,
    ST_READY,
    ST_FAILED,
};

static void put_le64(uint8_t b[8], int64_t value)
{
    uint64_t v = (uint64_t)value;
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}

static int64_t get_le64(const uint8_t b[8])
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b[i];
    return (int64_t)v;
}

px_err px_ivshm_send(int sock, int64_t value, int fd)
{
    uint8_t buf[8];
    put_le64(buf, value);
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
    union {
        struct cmsghdr align;
        char b[CMSG_SPACE(sizeof(int))];
    } ctl;
    memset(&ctl, 0, sizeof(ctl));
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        m.msg_control = ctl.b;
        m.msg_controllen = sizeof(ctl.b);
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    for (;;) {
        ssize_t n = sendmsg(sock, &m, MSG_NOSIGNAL);
        if (n == (ssize_t)sizeof(buf))
            return PX_OK;
        if (n >= 0) {
            /* A UNIX stream socket takes an 8-byte message whole or not at
             * all; if it ever split one, the fd went with the first part and
             * the stream can no longer be kept in step. */
            errno = EIO;
            return PX_E_IO;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return PX_E_AGAIN;
        return PX_E_IO;
    }
}

/* Keep the first SCM_RIGHTS fd, close every other one. */
static int take_fds(struct msghdr *m)
{
    int keep = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c != NULL; c = CMSG_NXTHDR(m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const unsigned char *p = CMSG_DATA(c);
        for (size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, p + i * sizeof(int), sizeof(int));
            if (keep < 0)
                keep = fd;
            else
                close(fd);
        }
    }
    return keep;
}

px_err px_ivshm_recv(int sock, int64_t *value, int *fd)
{
    uint8_t buf[8];
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
    union {
        struct cmsghdr align;
        char b[CMSG_SPACE(MAX_RX_FDS * sizeof(int))];
    } ctl;
    *fd = -1;
    *value = 0;
    for (;;) {
        struct msghdr m = {.msg_iov = &iov,
                           .msg_iovlen = 1,
                           .msg_control = ctl.b,
                           .msg_controllen = sizeof(ctl.b)};
        ssize_t n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return PX_E_AGAIN;
            if (errno == ECONNRESET)
                return PX_E_CLOSED;
            return PX_E_IO;
        }
        int got = take_fds(&m);
        if (n == 0) {
            if (got >= 0)
                close(got);
            return PX_E_CLOSED;
        }
        /* The kernel never joins the bytes of two messages into one read
         * of 8 when the sender wrote them 8 at a time, so a short read is a
         * sender that did not. */
        if (n != (ssize_t)sizeof(buf)) {
            if (got >= 0)
                close(got);
            return PX_E_TRUNCATED;
        }
        *value = get_le64(buf);
        *fd = got;
        return PX_OK;
    }
}

void px_ivshm_dec_init(px_ivshm_dec *d, uint32_t max_vectors)
{
    memset(d, 0, sizeof(*d));
    d->state = ST_VERSION;
    if (max_vectors == 0 || max_vectors > PX_IVSHM_MAX_VECTORS)
        max_vectors = PX_IVSHM_MAX_VECTORS;
    d->max_vectors = max_vectors;
}

bool px_ivshm_dec_ready(const px_ivshm_dec *d)
{
    return d->state == ST_READY;
}

static px_err fail(px_ivshm_dec *d, px_errmsg *em, const char *what, int64_t value, int fd)
{
    d->state = ST_FAILED;
    return px_errmsg_set(em, PX_E_PROTO, "ivshmem server sent %s (value %lld, %s)", what,
                         (long long)value, fd >= 0 ? "with an fd" : "no fd");
}

px_err px_ivshm_dec_feed(px_ivshm_dec *d, int64_t value, int fd, px_ivshm_ev *ev, px_errmsg *em)
{
    memset(ev, 0, sizeof(*ev));
    ev->kind = PX_IVSHM_EV_NONE;
    ev->fd = -1;
    switch (d->state) {
    case ST_VERSION:
        if (value != PX_IVSHM_VERSION)
            return fail(d, em, "a protocol version other than 0 first", value, fd);
        if (fd >= 0)
            return fail(d, em, "an fd with the version", value, fd);
        d->state = ST_ID;
        return PX_OK;
    case ST_ID:
        if (fd >= 0 || value < 0 || value >= (int64_t)PX_IVSHM_MAX_PEERS)
            return fail(d, em, "no valid own ID (0..65535, no fd) after the version", value, fd);
        d->own = (uint16_t)value;
        d->state = ST_SHM;
        ev->kind = PX_IVSHM_EV_ID;
        ev->peer = d->own;
        return PX_OK;
    case ST_SHM:
        if (value != -1 || fd < 0)
            return fail(d, em,
                        "something other than the shared memory (-1 with an fd) after the ID",
                        value, fd);
        d->state = ST_READY;
        ev->kind = PX_IVSHM_EV_SHM;
        ev->fd = fd;
        return PX_OK;
    case ST_READY:
        break;
    default:
        return px_errmsg_set(em, PX_E_PROTO, "ivshmem protocol already failed on this connection");
    }
    if (value == -1)
        return fail(d, em, "a second shared memory message", value, fd);
    if (value < 0 || value >= (int64_t)PX_IVSHM_MAX_PEERS)
        return fail(d, em, "a peer ID out of range (0..65535)", value, fd);
    uint16_t peer = (uint16_t)value;
    if (fd >= 0) {
        if (d->n_fds[peer] >= d->max_vectors) {
            d->state = ST_FAILED;
            return px_errmsg_set(em, PX_E_PROTO,
                                 "ivshmem server sent peer %u more than %u eventfds (vectors)",
                                 (unsigned)peer, (unsigned)d->max_vectors);
        }
        ev->kind = PX_IVSHM_EV_PEER_FD;
        ev->peer = peer;
        ev->vector = d->n_fds[peer]++;
        ev->fd = fd;
        return PX_OK;
    }
    if (peer == d->own)
        return fail(d, em, "a leave notice for the client's own ID", value, fd);
    if (d->n_fds[peer] == 0)
        return fail(d, em, "a leave notice for a peer it never announced", value, fd);
    d->n_fds[peer] = 0;
    ev->kind = PX_IVSHM_EV_PEER_GONE;
    ev->peer = peer;
    return PX_OK;
}
