/* plexus — Ethernet ports. See port.h. */
#include "devices/net/port.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/if_tun.h>

#include "fabric/core/log.h"

#define STREAM_CHUNK                                                                               \
    (64u << 10)                    /* bytes read per wake-up (and at most this much after a pause) \
                                    */
#define DGRAM_BATCH   32u          /* datagrams per recvmmsg */
#define SEND_BATCH    64u          /* datagrams per sendmmsg */
#define TAP_BATCH     64u          /* frames read per wake-up */
#define TAP_FRAME_MAX 65536u       /* read buffer: longer TAP frames are truncated, malformed */
#define FLUSH_AT      (256u << 10) /* queued bytes that are written at once, not at the prepare */
#define OUTQ_FIRST    (64u << 10)  /* first allocation of the outgoing queue */
#define RETRY_FIRST   100u
#define SOCKBUF       (2 << 20) /* STREAM send buffer: room for a burst while QEMU is busy */

#define SUN_PATH_MAX sizeof(((struct sockaddr_un *)0)->sun_path)

struct px_netport {
    uv_loop_t *loop;
    px_netport_kind kind;
    char path[SUN_PATH_MAX];
    char bind_path[SUN_PATH_MAX];
    char ifname[IFNAMSIZ];
    char name[128];
    uint32_t id;

    int fd;           /* STREAM connection, DGRAM send socket (connected to path), TAP */
    int rfd;          /* DGRAM: the bound socket frames arrive on; else -1 */
    uv_poll_t *poll;  /* watches fd; heap, freed in its close callback */
    uv_poll_t *rpoll; /* watches rfd */
    int poll_events;  /* events requested on poll */
    uv_timer_t retry; /* STREAM: reconnect (also the end of a cutoff); DGRAM: connect to path */
    uv_timer_t hold;  /* DGRAM, TAP: end of a cutoff */
    uv_prepare_t prep;
    bool prep_on;
    unsigned open_handles;
    bool closing;
    bool held;       /* cut off: input ignored (DGRAM, TAP) / not connecting yet (STREAM) */
    bool paused;     /* px_netport_pause: not reading from the peer */
    bool wait_w;     /* the peer did not take everything: waiting for writable */
    bool state_due;  /* on_state(connected) owed: the change happened inside an API call */
    unsigned in_api; /* inside px_netport_send / flush / cutoff / close: no callbacks now */
    bool quiet_fail; /* a failed connect was logged; further failures at debug level */
    uint32_t retry_first, retry_cur;
    uint64_t t_conn; /* STREAM: when the connection was made (uv_now) */

    uint8_t *rbuf; /* read buffer: STREAM chunk, DGRAM slots, TAP frame */
    uint8_t *dbuf; /* STREAM decoder buffer */
    px_stream_dec dec;

    /* Outgoing queue: frames as [4-byte big-endian length][frame], bytes
     * [q_off, q_len) not written yet. The first q_frames frames end at
     * q_first_end (the first may be partly written: STREAM only). */
    uint8_t *q;
    size_t q_cap, q_off, q_len, q_first_end;
    uint32_t q_first_len;
    uint64_t q_frames;

    px_netport_stats st;
    px_netport_rx_cb on_rx;
    px_netport_batch_cb on_batch;
    px_netport_state_cb on_state;
    void *ud;
};

static uint32_t rd32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static bool would_block(int e)
{
    return e == EAGAIN || e == EWOULDBLOCK || e == EINTR;
}

/* ---- handles and teardown ---- */

static void port_free(px_netport *p)
{
    free(p->q);
    free(p->rbuf);
    free(p->dbuf);
    free(p);
}

static void handle_closed(uv_handle_t *h)
{
    px_netport *p = h->data;
    if (h->type == UV_POLL)
        free(h);
    if (--p->open_handles == 0 && p->closing)
        port_free(p);
}

static void poll_drop(px_netport *p, uv_poll_t **pp)
{
    if (!*pp)
        return;
    uv_poll_stop(*pp);
    uv_close((uv_handle_t *)*pp, handle_closed);
    *pp = NULL;
}

static void on_io(uv_poll_t *h, int status, int events);
static void on_rio(uv_poll_t *h, int status, int events);

static int poll_new(px_netport *p, uv_poll_t **pp, int fd)
{
    uv_poll_t *h = malloc(sizeof(*h));
    if (!h)
        return UV_ENOMEM;
    int rc = uv_poll_init(p->loop, h, fd);
    if (rc != 0) {
        free(h);
        return rc;
    }
    h->data = p;
    p->open_handles++;
    *pp = h;
    return 0;
}

/* Requested events on poll: input unless held, output while waiting. */
static void poll_update(px_netport *p)
{
    if (!p->poll)
        return;
    int ev = 0;
    if (p->kind != PX_NETPORT_DGRAM && !(p->kind == PX_NETPORT_STREAM && p->held))
        ev |= p->paused ? (p->kind == PX_NETPORT_STREAM ? UV_DISCONNECT : 0) : UV_READABLE;
    if (p->wait_w)
        ev |= UV_WRITABLE;
    if (ev == p->poll_events)
        return;
    p->poll_events = ev;
    if (ev)
        uv_poll_start(p->poll, ev, on_io);
    else
        uv_poll_stop(p->poll);
}

/* ---- connection state ---- */

static void prep_want(px_netport *p);

/* Record a change; on_state runs now from a loop callback, or from the
 * prepare handle when the change happened inside an API call. */
static void set_connected(px_netport *p, bool c)
{
    bool in_api = p->in_api > 0;
    if (p->st.connected == c)
        return;
    if (p->state_due && !in_api && !p->closing && p->on_state) {
        /* A disconnect from an API call is still owed: tell it first. */
        p->state_due = false;
        p->on_state(p->ud, p, p->st.connected);
    }
    p->st.connected = c;
    if (p->closing || !p->on_state)
        return;
    if (in_api) {
        p->state_due = !p->state_due; /* a change and its undo cancel out */
        prep_want(p);
        return;
    }
    p->on_state(p->ud, p, c);
}

static void q_reset(px_netport *p)
{
    p->st.tx_dropped += p->q_frames;
    p->q_off = p->q_len = p->q_first_end = 0;
    p->q_frames = 0;
    p->q_first_len = 0;
    p->wait_w = false;
}

/* STREAM: close the connection (the caller schedules the reconnect). */
static void stream_down(px_netport *p)
{
    poll_drop(p, &p->poll);
    p->poll_events = 0;
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    q_reset(p);
    set_connected(p, false);
}

/* ---- output ---- */

static void flush(px_netport *p);

static void on_prep(uv_prepare_t *h)
{
    px_netport *p = h->data;
    uv_prepare_stop(h);
    p->prep_on = false;
    if (p->state_due && !p->closing && p->on_state) {
        p->state_due = false;
        p->on_state(p->ud, p, p->st.connected);
    }
    if (!p->closing)
        flush(p);
}

static void prep_want(px_netport *p)
{
    if (p->prep_on || p->closing)
        return;
    p->prep_on = true;
    uv_prepare_start(&p->prep, on_prep);
}

/* Account for n more bytes written from the head of the queue. */
static void q_advance(px_netport *p, size_t n)
{
    p->q_off += n;
    while (p->q_frames && p->q_off >= p->q_first_end) {
        p->st.tx++;
        p->st.tx_bytes += p->q_first_len;
        if (--p->q_frames) {
            p->q_first_len = rd32(p->q + p->q_first_end);
            p->q_first_end += PX_NET_STREAM_HDR + p->q_first_len;
        }
    }
    if (p->q_off == p->q_len)
        p->q_off = p->q_len = p->q_first_end = 0;
}

/* Drop the (whole, unwritten) first frame: the peer refused it. */
static void q_skip(px_netport *p)
{
    p->st.tx--; /* q_advance counts it as sent */
    p->st.tx_bytes -= p->q_first_len;
    p->st.tx_dropped++;
    q_advance(p, PX_NET_STREAM_HDR + p->q_first_len);
}

static void flush_stream(px_netport *p)
{
    while (p->q_off < p->q_len) {
        ssize_t n = send(p->fd, p->q + p->q_off, p->q_len - p->q_off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            q_advance(p, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && would_block(errno)) {
            p->wait_w = true;
            return;
        }
        /* Broken connection: the read side sees the end and reconnects. */
        PX_DEBUG("net", "write to QEMU failed; queued frames dropped", "port=%s err=\"%s\"",
                 p->name, strerror(errno));
        q_reset(p);
        return;
    }
    p->wait_w = false;
}

static bool dgram_connect(px_netport *p);

static void flush_dgram(px_netport *p)
{
    struct mmsghdr msgs[SEND_BATCH];
    struct iovec iov[SEND_BATCH];
    bool reconnected = false;
    while (p->q_off < p->q_len) {
        unsigned m = 0;
        for (size_t at = p->q_off; at < p->q_len && m < SEND_BATCH; m++) {
            uint32_t len = rd32(p->q + at);
            iov[m] = (struct iovec){.iov_base = p->q + at + PX_NET_STREAM_HDR, .iov_len = len};
            msgs[m] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[m], .msg_iovlen = 1}};
            at += PX_NET_STREAM_HDR + len;
        }
        int k = sendmmsg(p->fd, msgs, m, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (k > 0) {
            size_t bytes = 0;
            for (int i = 0; i < k; i++)
                bytes += PX_NET_STREAM_HDR + iov[i].iov_len;
            q_advance(p, bytes);
            continue;
        }
        int e = errno;
        if (would_block(e)) {
            p->wait_w = true;
            return;
        }
        if ((e == ECONNREFUSED || e == ENOTCONN) && !reconnected) {
            /* QEMU restarted: its socket at path is a new one. */
            reconnected = true;
            if (dgram_connect(p))
                continue;
        }
        if (e == ECONNREFUSED || e == ENOTCONN || e == ENOENT) {
            q_reset(p);
            return;
        }
        PX_DEBUG("net", "frame refused by QEMU's socket; dropped", "port=%s bytes=%zu err=\"%s\"",
                 p->name, iov[0].iov_len, strerror(e));
        q_skip(p);
    }
    p->wait_w = false;
}

static void flush_tap(px_netport *p)
{
    while (p->q_off < p->q_len) {
        ssize_t n = write(p->fd, p->q + p->q_off + PX_NET_STREAM_HDR, p->q_first_len);
        if (n == (ssize_t)p->q_first_len) {
            q_advance(p, PX_NET_STREAM_HDR + p->q_first_len);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && would_block(errno)) {
            p->wait_w = true;
            return;
        }
        PX_DEBUG("net", "frame refused by the TAP interface; dropped",
                 "port=%s bytes=%u err=\"%s\"", p->name, p->q_first_len,
                 n < 0 ? strerror(errno) : "short write");
        q_skip(p);
    }
    p->wait_w = false;
}

static void flush(px_netport *p)
{
    if (p->fd < 0) {
        q_reset(p);
        return;
    }
    if (p->q_off == p->q_len) {
        p->wait_w = false;
    } else if (p->kind == PX_NETPORT_STREAM) {
        flush_stream(p);
    } else if (p->kind == PX_NETPORT_DGRAM) {
        flush_dgram(p);
    } else {
        flush_tap(p);
    }
    if (p->fd >= 0)
        poll_update(p);
}

void px_netport_flush(px_netport *p)
{
    if (!p || p->closing || p->wait_w)
        return;
    p->in_api++;
    flush(p);
    p->in_api--;
}

/* Room for need more bytes at the end of the queue (within the cap). */
static bool q_room(px_netport *p, size_t need)
{
    if (p->q_len + need <= p->q_cap)
        return true;
    if (p->q_off > 0) {
        memmove(p->q, p->q + p->q_off, p->q_len - p->q_off);
        p->q_len -= p->q_off;
        p->q_first_end -= p->q_off;
        p->q_off = 0;
        if (p->q_len + need <= p->q_cap)
            return true;
    }
    size_t cap = p->q_cap ? p->q_cap : OUTQ_FIRST;
    while (cap < p->q_len + need)
        cap *= 2;
    if (cap > PX_NETPORT_OUTQ_MAX)
        cap = PX_NETPORT_OUTQ_MAX;
    uint8_t *q = realloc(p->q, cap);
    if (!q)
        return false;
    p->q = q;
    p->q_cap = cap;
    return true;
}

px_err px_netport_send(px_netport *p, const uint8_t *f, size_t len)
{
    if (len == 0 || len > PX_NET_STREAM_MAX) {
        p->st.tx_dropped++;
        return PX_E_TOOBIG;
    }
    size_t need = PX_NET_STREAM_HDR + len;
    if (p->closing || p->fd < 0 || (p->kind != PX_NETPORT_TAP && !p->st.connected) ||
        p->q_len - p->q_off + need > PX_NETPORT_OUTQ_MAX || !q_room(p, need)) {
        p->st.tx_dropped++;
        return PX_E_AGAIN;
    }
    px_stream_hdr((uint32_t)len, p->q + p->q_len);
    memcpy(p->q + p->q_len + PX_NET_STREAM_HDR, f, len);
    if (p->q_frames++ == 0) {
        p->q_first_len = (uint32_t)len;
        p->q_first_end = p->q_len + need;
    }
    p->q_len += need;
    if (p->wait_w)
        return PX_OK; /* the writable callback takes it */
    if (p->q_len - p->q_off >= FLUSH_AT) {
        p->in_api++;
        flush(p);
        p->in_api--;
    } else {
        prep_want(p);
    }
    return PX_OK;
}

/* ---- STREAM ---- */

static void on_retry(uv_timer_t *t);

static void stream_retry_later(px_netport *p, uint32_t ms)
{
    if (!p->closing)
        uv_timer_start(&p->retry, on_retry, ms, 0);
}

static void stream_frame(void *ud, const uint8_t *f, size_t len)
{
    px_netport *p = ud;
    if (p->closing || p->held || p->fd < 0)
        return; /* cut off or closed by an earlier frame of this chunk */
    p->st.rx++;
    p->st.rx_bytes += len;
    p->on_rx(p->ud, p, f, len);
}

/* The delay before the next attempt, doubling up to the ceiling. */
static uint32_t backoff(px_netport *p)
{
    uint32_t ms = p->retry_cur;
    uint32_t cap = p->retry_first > PX_NETPORT_RETRY_MAX ? p->retry_first : PX_NETPORT_RETRY_MAX;
    p->retry_cur = ms * 2 > cap ? cap : ms * 2;
    return ms;
}

/* The connection ended: reconnect. One that lasted under a second does not
 * reset the back-off (a peer that accepts and closes at once is not hammered). */
static void stream_lost(px_netport *p)
{
    if (uv_now(p->loop) - p->t_conn >= 1000)
        p->retry_cur = p->retry_first;
    stream_down(p);
    stream_retry_later(p, backoff(p));
}

static void stream_read(px_netport *p)
{
    ssize_t n = read(p->fd, p->rbuf, STREAM_CHUNK);
    if (n < 0 && would_block(errno))
        return;
    if (n <= 0) {
        PX_INFO("net", "QEMU closed the stream; reconnecting", "port=%s err=\"%s\"", p->name,
                n == 0 ? "end of stream" : strerror(errno));
        stream_lost(p);
        return;
    }
    uint64_t rx0 = p->st.rx;
    px_errmsg em = {{0}};
    px_err e = px_stream_dec_feed(&p->dec, p->rbuf, (size_t)n, stream_frame, p, &em);
    if (e != PX_OK && !p->closing && !p->held && p->fd >= 0) {
        p->st.malformed++;
        px_netport_cutoff(p, em.text, PX_NETPORT_BAD_HOLD_MS);
    }
    if (p->st.rx != rx0 && !p->closing && p->on_batch)
        p->on_batch(p->ud, p);
}

static void stream_try(px_netport *p)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, p->path, strlen(p->path));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int e = fd < 0 ? errno : 0;
    /* A UNIX stream connect completes or fails at once (EAGAIN: QEMU's
     * backlog is full, try later like any failure). */
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        e = errno;
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        if (!p->quiet_fail)
            PX_INFO("net", "QEMU's stream socket not ready; retrying", "port=%s path=%s err=\"%s\"",
                    p->name, p->path, strerror(e));
        else
            PX_DEBUG("net", "connect to QEMU failed", "port=%s err=\"%s\"", p->name, strerror(e));
        p->quiet_fail = true;
        stream_retry_later(p, backoff(p));
        return;
    }
    int sz = SOCKBUF;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) != 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    if (poll_new(p, &p->poll, fd) != 0) {
        close(fd);
        stream_retry_later(p, backoff(p));
        return;
    }
    p->fd = fd;
    p->poll_events = 0;
    p->quiet_fail = false;
    p->t_conn = uv_now(p->loop);
    px_stream_dec_init(&p->dec, p->dbuf);
    p->st.connects++;
    PX_INFO("net", "connected to QEMU", "port=%s path=%s", p->name, p->path);
    poll_update(p);
    set_connected(p, true);
}

/* ---- DGRAM ---- */

/* Connect the send socket to QEMU's socket (again: a restarted QEMU has a
 * new one at the same path). Connected, poll(2) reports writable only when
 * QEMU's receive queue has room. */
static bool dgram_connect(px_netport *p)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, p->path, strlen(p->path));
    if (connect(p->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        PX_INFO("net",
                p->st.connected ? "QEMU's datagram socket replaced (QEMU restarted)"
                                : "QEMU's datagram socket found",
                "port=%s path=%s", p->name, p->path);
        p->quiet_fail = false;
        p->retry_cur = p->retry_first;
        p->st.connects++;
        uv_timer_stop(&p->retry);
        set_connected(p, true);
        return true;
    }
    int e = errno;
    if (!p->quiet_fail)
        PX_INFO("net", "QEMU's datagram socket not there yet; retrying",
                "port=%s path=%s err=\"%s\"", p->name, p->path, strerror(e));
    p->quiet_fail = true;
    uint32_t ms = p->retry_cur;
    p->retry_cur = ms * 2 > PX_NETPORT_RETRY_MAX ? PX_NETPORT_RETRY_MAX : ms * 2;
    if (!p->closing)
        uv_timer_start(&p->retry, on_retry, ms, 0);
    set_connected(p, false);
    return false;
}

static bool from_path(const px_netport *p, const struct sockaddr_un *sa, socklen_t salen)
{
    size_t off = offsetof(struct sockaddr_un, sun_path);
    if (salen <= off)
        return false;
    size_t n = strnlen(sa->sun_path, salen - off);
    return n == strlen(p->path) && memcmp(sa->sun_path, p->path, n) == 0;
}

static void dgram_read(px_netport *p)
{
    struct mmsghdr msgs[DGRAM_BATCH];
    struct iovec iov[DGRAM_BATCH];
    struct sockaddr_un from[DGRAM_BATCH];
    for (unsigned i = 0; i < DGRAM_BATCH; i++) {
        iov[i] = (struct iovec){.iov_base = p->rbuf + (size_t)i * PX_NETPORT_DGRAM_MAX,
                                .iov_len = PX_NETPORT_DGRAM_MAX};
        msgs[i] = (struct mmsghdr){.msg_hdr = {.msg_name = &from[i],
                                               .msg_namelen = sizeof(from[i]),
                                               .msg_iov = &iov[i],
                                               .msg_iovlen = 1}};
    }
    int n = recvmmsg(p->rfd, msgs, DGRAM_BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0)
        return;
    uint64_t rx0 = p->st.rx;
    for (int i = 0; i < n && !p->closing && !p->held; i++) {
        struct msghdr *h = &msgs[i].msg_hdr;
        size_t len = msgs[i].msg_len;
        if (!from_path(p, h->msg_name, h->msg_namelen) || len == 0 || (h->msg_flags & MSG_TRUNC)) {
            p->st.malformed++;
            PX_DEBUG("net", "datagram ignored", "port=%s bytes=%zu reason=\"%s\"", p->name, len,
                     len == 0                     ? "empty"
                     : (h->msg_flags & MSG_TRUNC) ? "longer than 16384 bytes"
                                                  : "not from QEMU's socket");
            continue;
        }
        if (!p->st.connected)
            dgram_connect(p); /* QEMU is (back) there: no need to wait for the retry */
        if (p->closing || p->held)
            break;
        p->st.rx++;
        p->st.rx_bytes += len;
        p->on_rx(p->ud, p, iov[i].iov_base, len);
    }
    if (p->st.rx != rx0 && !p->closing && p->on_batch)
        p->on_batch(p->ud, p);
}

/* ---- TAP ---- */

static void tap_read(px_netport *p)
{
    uint64_t rx0 = p->st.rx;
    for (unsigned i = 0; i < TAP_BATCH && !p->closing && p->fd >= 0; i++) {
        ssize_t n = read(p->fd, p->rbuf, TAP_FRAME_MAX);
        if (n < 0 && would_block(errno))
            break;
        if (n < 0) {
            PX_WARN("net", "TAP interface read failed; port stops reading",
                    "port=%s if=%s err=\"%s\"", p->name, p->ifname, strerror(errno));
            poll_drop(p, &p->poll);
            p->poll_events = 0;
            set_connected(p, false);
            break;
        }
        if (p->held)
            continue; /* cut off: drain and discard */
        if (n == 0 || (size_t)n > PX_NET_STREAM_MAX) {
            p->st.malformed++;
            continue;
        }
        p->st.rx++;
        p->st.rx_bytes += (size_t)n;
        p->on_rx(p->ud, p, p->rbuf, (size_t)n);
    }
    if (p->st.rx != rx0 && !p->closing && p->on_batch)
        p->on_batch(p->ud, p);
}

/* ---- loop callbacks ---- */

static void on_io(uv_poll_t *h, int status, int events)
{
    px_netport *p = h->data;
    if (p->closing || h != p->poll)
        return;
    if (status < 0) {
        PX_WARN("net", "port socket error", "port=%s err=\"%s\"", p->name, uv_strerror(status));
        if (p->kind == PX_NETPORT_STREAM) {
            stream_lost(p);
        } else {
            poll_drop(p, &p->poll); /* not to spin on it; the port carries nothing more */
            p->poll_events = 0;
            set_connected(p, false);
        }
        return;
    }
    if ((events & UV_WRITABLE) && p->wait_w) {
        p->wait_w = false;
        flush(p);
        if (p->closing || h != p->poll)
            return;
    }
    if (!(events & (UV_READABLE | UV_DISCONNECT)))
        return;
    if (p->kind == PX_NETPORT_STREAM)
        stream_read(p);
    else if (p->kind == PX_NETPORT_TAP)
        tap_read(p);
}

static void on_rio(uv_poll_t *h, int status, int events)
{
    px_netport *p = h->data;
    if (p->closing || status < 0)
        return;
    if (p->held) {
        /* Cut off: read and discard, so stale frames do not pile up. */
        uint8_t *b = p->rbuf;
        for (unsigned i = 0; i < DGRAM_BATCH; i++)
            if (recv(p->rfd, b, PX_NETPORT_DGRAM_MAX, MSG_DONTWAIT) < 0)
                break;
        return;
    }
    dgram_read(p);
}

static void on_retry(uv_timer_t *t)
{
    px_netport *p = t->data;
    if (p->closing)
        return;
    if (p->kind == PX_NETPORT_STREAM) {
        p->held = false;
        if (p->fd < 0)
            stream_try(p);
    } else if (p->kind == PX_NETPORT_DGRAM && !p->st.connected) {
        dgram_connect(p);
    }
}

static void on_hold(uv_timer_t *t)
{
    px_netport *p = t->data;
    if (p->closing)
        return;
    p->held = false;
    PX_INFO("net", "port's hold over; input accepted again", "port=%s", p->name);
}

/* ---- public ---- */

void px_netport_pause(px_netport *p, bool paused)
{
    if (p->closing || p->paused == paused)
        return;
    p->paused = paused;
    poll_update(p);
    if (p->rpoll) {
        if (paused)
            uv_poll_stop(p->rpoll);
        else
            uv_poll_start(p->rpoll, UV_READABLE, on_rio);
    }
}

void px_netport_cutoff(px_netport *p, const char *why, uint32_t hold_ms)
{
    if (!p || p->closing)
        return;
    p->in_api++;
    p->st.cutoffs++;
    PX_WARN("net", "port cut off", "port=%s reason=\"%s\" hold_ms=%u", p->name, why ? why : "",
            hold_ms);
    p->held = true;
    if (p->kind == PX_NETPORT_STREAM) {
        if (p->fd >= 0)
            stream_down(p);
        p->retry_cur = p->retry_first;
        uv_timer_start(&p->retry, on_retry, hold_ms, 0);
    } else {
        uv_timer_start(&p->hold, on_hold, hold_ms, 0);
    }
    p->in_api--;
}

static px_err open_stream(px_netport *p, px_errmsg *em)
{
    p->rbuf = malloc(STREAM_CHUNK);
    p->dbuf = malloc(PX_NET_STREAM_MAX);
    if (!p->rbuf || !p->dbuf)
        return px_errmsg_set(em, PX_E_NOMEM, "port %s: out of memory", p->name);
    px_stream_dec_init(&p->dec, p->dbuf);
    /* The first attempt from the loop: no callback inside px_netport_open. */
    uv_timer_start(&p->retry, on_retry, 0, 0);
    return PX_OK;
}

static px_err open_dgram(px_netport *p, px_errmsg *em)
{
    p->rbuf = malloc((size_t)DGRAM_BATCH * PX_NETPORT_DGRAM_MAX);
    if (!p->rbuf)
        return px_errmsg_set(em, PX_E_NOMEM, "port %s: out of memory", p->name);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, p->bind_path, strlen(p->bind_path));
    p->rfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    p->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p->rfd < 0 || p->fd < 0)
        return px_errmsg_set(em, PX_E_IO, "port %s: socket: %s", p->name, strerror(errno));
    unlink(p->bind_path);
    if (bind(p->rfd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        return px_errmsg_set(em, PX_E_IO,
                             "port %s: cannot bind %s: %s (is the directory there "
                             "and writable?)",
                             p->name, p->bind_path, strerror(errno));
    int sz = SOCKBUF;
    if (setsockopt(p->rfd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) != 0)
        setsockopt(p->rfd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    if (poll_new(p, &p->rpoll, p->rfd) != 0 || poll_new(p, &p->poll, p->fd) != 0)
        return px_errmsg_set(em, PX_E_IO, "port %s: cannot watch its sockets", p->name);
    uv_poll_start(p->rpoll, UV_READABLE, on_rio);
    p->st.connects = 0;
    uv_timer_start(&p->retry, on_retry, 0, 0);
    return PX_OK;
}

static px_err open_tap(px_netport *p, px_errmsg *em)
{
    p->rbuf = malloc(TAP_FRAME_MAX);
    if (!p->rbuf)
        return px_errmsg_set(em, PX_E_NOMEM, "port %s: out of memory", p->name);
    p->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (p->fd < 0) {
        int e = errno;
        if (e == ENOENT || e == ENXIO || e == ENODEV)
            return px_errmsg_set(em, PX_E_UNSUPP,
                                 "port %s: TAP interface %s: this host has no /dev/net/tun (%s); "
                                 "load the tun module (modprobe tun) or, in a container, pass "
                                 "the device in (--device /dev/net/tun)",
                                 p->name, p->ifname, strerror(e));
        return px_errmsg_set(em, PX_E_IO,
                             "port %s: TAP interface %s: cannot open /dev/net/tun: %s (run the "
                             "node as root or with CAP_NET_ADMIN)",
                             p->name, p->ifname, strerror(e));
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, p->ifname, strlen(p->ifname));
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    if (ioctl(p->fd, TUNSETIFF, &ifr) != 0) {
        int e = errno;
        return px_errmsg_set(em, PX_E_IO,
                             "port %s: TAP interface %s: %s (creating a TAP needs CAP_NET_ADMIN; "
                             "or create it beforehand: ip tuntap add dev %s mode tap user "
                             "<node user>; an existing non-TAP interface of that name also "
                             "fails)",
                             p->name, p->ifname, strerror(e), p->ifname);
    }
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int rc = s < 0 ? -1 : ioctl(s, SIOCGIFFLAGS, &ifr);
    if (rc == 0 && !(ifr.ifr_flags & IFF_UP)) {
        ifr.ifr_flags |= IFF_UP;
        rc = ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    int e = errno;
    if (s >= 0)
        close(s);
    if (rc != 0)
        return px_errmsg_set(em, PX_E_IO,
                             "port %s: TAP interface %s: cannot bring it up: %s (needs "
                             "CAP_NET_ADMIN, or bring it up beforehand: ip link set %s up)",
                             p->name, p->ifname, strerror(e), p->ifname);
    if (poll_new(p, &p->poll, p->fd) != 0)
        return px_errmsg_set(em, PX_E_IO, "port %s: cannot watch the TAP interface", p->name);
    p->st.connected = true;
    p->st.connects = 1;
    poll_update(p);
    return PX_OK;
}

static px_err check_path(const char *what, const char *path, const char *name, px_errmsg *em)
{
    if (!path || !*path)
        return px_errmsg_set(em, PX_E_CONFIG, "port %s: no %s given", name, what);
    if (strlen(path) >= SUN_PATH_MAX)
        return px_errmsg_set(em, PX_E_CONFIG,
                             "port %s: %s %s is longer than %zu bytes (use a shorter runtime "
                             "directory or lab name)",
                             name, what, path, SUN_PATH_MAX - 1);
    return PX_OK;
}

px_err px_netport_open(uv_loop_t *loop, const px_netport_opts *o, px_netport **out, px_errmsg *em)
{
    *out = NULL;
    const char *name = o->name ? o->name : "?";
    px_err e = PX_OK;
    if (!o->on_rx)
        return px_errmsg_set(em, PX_E_INVAL, "port %s: no on_rx callback", name);
    if (o->kind == PX_NETPORT_STREAM || o->kind == PX_NETPORT_DGRAM)
        e = check_path("socket path", o->path, name, em);
    if (e == PX_OK && o->kind == PX_NETPORT_DGRAM)
        e = check_path("bind path", o->bind_path, name, em);
    if (e == PX_OK && o->kind == PX_NETPORT_TAP &&
        (!o->ifname || !*o->ifname || strlen(o->ifname) >= IFNAMSIZ || strchr(o->ifname, '/')))
        e = px_errmsg_set(em, PX_E_CONFIG, "port %s: bad interface name '%s' (1 to %d characters)",
                          name, o->ifname ? o->ifname : "", IFNAMSIZ - 1);
    if (e == PX_OK && o->kind != PX_NETPORT_STREAM && o->kind != PX_NETPORT_DGRAM &&
        o->kind != PX_NETPORT_TAP)
        e = px_errmsg_set(em, PX_E_INVAL, "port %s: unknown kind %d", name, (int)o->kind);
    if (e != PX_OK)
        return e;

    px_netport *p = calloc(1, sizeof(*p));
    if (!p)
        return px_errmsg_set(em, PX_E_NOMEM, "port %s: out of memory", name);
    p->loop = loop;
    p->kind = o->kind;
    snprintf(p->path, sizeof(p->path), "%s", o->path ? o->path : "");
    snprintf(p->bind_path, sizeof(p->bind_path), "%s", o->bind_path ? o->bind_path : "");
    snprintf(p->ifname, sizeof(p->ifname), "%s", o->ifname ? o->ifname : "");
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->id = o->id;
    p->fd = p->rfd = -1;
    p->retry_first = p->retry_cur = o->retry_ms ? o->retry_ms : RETRY_FIRST;
    p->on_rx = o->on_rx;
    p->on_batch = o->on_batch;
    p->on_state = o->on_state;
    p->ud = o->ud;
    uv_timer_init(loop, &p->retry);
    uv_timer_init(loop, &p->hold);
    uv_prepare_init(loop, &p->prep);
    p->retry.data = p->hold.data = p->prep.data = p;
    p->open_handles = 3;

    if (o->kind == PX_NETPORT_STREAM)
        e = open_stream(p, em);
    else if (o->kind == PX_NETPORT_DGRAM)
        e = open_dgram(p, em);
    else
        e = open_tap(p, em);
    if (e != PX_OK) {
        p->on_state = NULL;
        px_netport_close(p);
        return e;
    }
    *out = p;
    return PX_OK;
}

void px_netport_close(px_netport *p)
{
    if (!p || p->closing)
        return;
    /* A last attempt at what is queued (never blocking). */
    p->in_api++;
    if (p->fd >= 0 && !p->wait_w && p->q_off < p->q_len &&
        (p->kind != PX_NETPORT_DGRAM || p->st.connected))
        flush(p);
    p->closing = true;
    q_reset(p);
    poll_drop(p, &p->poll);
    poll_drop(p, &p->rpoll);
    if (p->fd >= 0)
        close(p->fd);
    if (p->rfd >= 0) {
        close(p->rfd);
        unlink(p->bind_path);
    }
    p->fd = p->rfd = -1;
    p->st.connected = false;
    uv_close((uv_handle_t *)&p->retry, handle_closed);
    uv_close((uv_handle_t *)&p->hold, handle_closed);
    uv_close((uv_handle_t *)&p->prep, handle_closed);
}

void px_netport_stats_get(const px_netport *p, px_netport_stats *out)
{
    *out = p->st;
}

uint32_t px_netport_id(const px_netport *p)
{
    return p->id;
}

const char *px_netport_name(const px_netport *p)
{
    return p->name;
}

px_netport_kind px_netport_kind_of(const px_netport *p)
{
    return p->kind;
}
