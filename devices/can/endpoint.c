/* plexus — CAN endpoint. See endpoint.h. */
#include "devices/can/endpoint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/can.h>
#include <linux/can/raw.h>

#include "fabric/core/log.h"

#define READ_BUDGET 64 /* frames per wake-up: other endpoints get their turn */

struct px_canep {
    uv_loop_t *loop;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char name[128];
    uint32_t id;
    int lfd, cfd;
    uv_poll_t lpoll, cpoll;
    bool cpoll_on, paused, closing;
    unsigned max_batch; /* frames per read; 0 = READ_BUDGET */
    unsigned n_out;     /* frames for QEMU not sent yet (px_canep_flush) */
    px_can_frame outq[PX_CANEP_OUTQ];
    size_t outlen[PX_CANEP_OUTQ];
    bool socketcan; /* a host SocketCAN interface, not a QEMU connection */
    unsigned open_handles;
    px_canep_stats st;
    px_canep_rx_cb on_rx;
    px_canep_batch_cb on_batch;
    void *ud;
};

static void handle_closed(uv_handle_t *h)
{
    px_canep *ep = h->data;
    if (--ep->open_handles == 0 && ep->closing)
        free(ep);
}

static void conn_close(px_canep *ep)
{
    if (ep->cfd < 0)
        return;
    if (ep->cpoll_on) {
        uv_poll_stop(&ep->cpoll);
        uv_close((uv_handle_t *)&ep->cpoll, handle_closed);
        ep->cpoll_on = false;
    }
    close(ep->cfd);
    ep->cfd = -1;
    ep->st.connected = false;
}

static void on_conn(uv_poll_t *p, int status, int events);

static void conn_watch(px_canep *ep)
{
    if (ep->cfd < 0 || !ep->cpoll_on)
        return;
    if (ep->paused)
        uv_poll_stop(&ep->cpoll);
    else
        uv_poll_start(&ep->cpoll, UV_READABLE | UV_DISCONNECT, on_conn);
}

static void on_conn(uv_poll_t *p, int status, int events)
{
    px_canep *ep = p->data;
    if (status < 0) {
        PX_WARN("can", "endpoint connection error; closed", "ep=%s err=%s", ep->name,
                uv_strerror(status));
        conn_close(ep);
        return;
    }
    /* One system call for up to a batch of frames (a frame per call is
     * most of a node's CPU when a guest floods its bus). Frames already
     * read are all handed on, even if on_rx pauses the endpoint: the window
     * is exceeded by less than one batch. */
    enum { BATCH = READ_BUDGET };
    static unsigned char bufs[BATCH][PX_CAN_FRAME_SIZE + 1];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    unsigned vlen = ep->max_batch && ep->max_batch < BATCH ? ep->max_batch : BATCH;
    for (unsigned i = 0; i < vlen; i++) {
        iov[i] = (struct iovec){.iov_base = bufs[i], .iov_len = sizeof(bufs[i])};
        msgs[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[i], .msg_iovlen = 1}};
    }
    bool got = false;
    int nm = ep->cfd >= 0 && !ep->paused ? recvmmsg(ep->cfd, msgs, vlen, MSG_DONTWAIT, NULL) : 0;
    if (nm < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        nm = 0;
    if (nm == 0 && (events & UV_DISCONNECT)) {
        PX_INFO("can",
                ep->socketcan ? "host CAN interface gone"
                              : "QEMU disconnected from "
                                "endpoint",
                "ep=%s", ep->name);
        conn_close(ep);
        return;
    }
    if (nm < 0) {
        PX_INFO("can",
                ep->socketcan ? "host CAN interface gone"
                              : "QEMU disconnected from "
                                "endpoint",
                "ep=%s err=\"%s\"", ep->name, strerror(errno));
        conn_close(ep);
        return;
    }
    for (int i = 0; i < nm && ep->cfd >= 0; i++) {
        size_t n = (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) ? sizeof(bufs[i]) : msgs[i].msg_len;
        if (n == 0) {
            /* SOCK_SEQPACKET: a zero-length read is the peer's end. */
            PX_INFO("can",
                    ep->socketcan ? "host CAN interface gone"
                                  : "QEMU disconnected from "
                                    "endpoint",
                    "ep=%s", ep->name);
            conn_close(ep);
            break;
        }
        px_can_frame f;
        px_can_status cs =
            ep->socketcan ? px_can_from_linux(bufs[i], n, &f) : px_can_from_wire(bufs[i], n, &f);
        if (cs != PX_CAN_OK && ep->socketcan) {
            /* A real bus has no one to cut off: count it and go on. */
            ep->st.malformed++;
            PX_WARN("can", "frame from a host CAN interface not carried", "ep=%s reason=\"%s\"",
                    ep->name, px_can_status_str(cs));
            continue;
        }
        if (cs != PX_CAN_OK) {
            ep->st.malformed++;
            PX_ERROR("can", "malformed frame from QEMU; endpoint cut off",
                     "ep=%s bytes=%zu reason=\"%s\" hint=\"the guest's QEMU must restart to "
                     "reconnect\"",
                     ep->name, n, px_can_status_str(cs));
            conn_close(ep);
            break;
        }
        ep->st.rx++;
        got = true;
        ep->on_rx(ep->ud, ep, &f);
    }
    if (got && ep->on_batch)
        ep->on_batch(ep->ud, ep);
}

static void on_listen(uv_poll_t *p, int status, int events)
{
    px_canep *ep = p->data;
    (void)events;
    if (status < 0)
        return;
    int fd = accept4(ep->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    if (ep->cfd >= 0) {
        PX_INFO("can", "endpoint reconnected; old connection replaced", "ep=%s", ep->name);
        conn_close(ep);
    }
    /* Room for bursts towards a guest that is busy for a moment (a TCG vCPU
     * thread holding QEMU's lock): about 2000 frames. Beyond that the
     * guest's controller overruns, as a real one would. */
    int sz = 4 << 20;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) != 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    ep->cfd = fd;
    ep->st.connected = true;
    ep->st.connects++;
    if (uv_poll_init(ep->loop, &ep->cpoll, fd) != 0) {
        close(fd);
        ep->cfd = -1;
        ep->st.connected = false;
        return;
    }
    ep->cpoll.data = ep;
    ep->cpoll_on = true;
    ep->open_handles++;
    conn_watch(ep);
    PX_INFO("can", "QEMU connected to endpoint", "ep=%s", ep->name);
}

px_err px_canep_open(uv_loop_t *loop, const px_canep_opts *o, px_canep **out, px_errmsg *em)
{
    *out = NULL;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(o->path) >= sizeof(sa.sun_path))
        return px_errmsg_set(em, PX_E_CONFIG,
                             "CAN endpoint %s: socket path %s is longer than %zu bytes (use a "
                             "shorter runtime directory or lab name)",
                             o->name, o->path, sizeof(sa.sun_path) - 1);
    px_canep *ep = calloc(1, sizeof(*ep));
    if (!ep)
        return px_errmsg_set(em, PX_E_NOMEM, "CAN endpoint %s: out of memory", o->name);
    ep->loop = loop;
    snprintf(ep->path, sizeof(ep->path), "%s", o->path);
    snprintf(ep->name, sizeof(ep->name), "%s", o->name);
    ep->id = o->id;
    ep->max_batch = o->max_batch;
    ep->on_rx = o->on_rx;
    ep->on_batch = o->on_batch;
    ep->ud = o->ud;
    ep->cfd = -1;
    memcpy(sa.sun_path, o->path, strlen(o->path));
    ep->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (ep->lfd < 0) {
        free(ep);
        return px_errmsg_set(em, PX_E_IO, "CAN endpoint %s: socket: %s", o->name, strerror(errno));
    }
    unlink(o->path);
    if (bind(ep->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(ep->lfd, 4) != 0) {
        int e = errno;
        close(ep->lfd);
        free(ep);
        return px_errmsg_set(em, PX_E_IO, "CAN endpoint %s: cannot listen on %s: %s", o->name,
                             o->path, strerror(e));
    }
    uv_poll_init(loop, &ep->lpoll, ep->lfd);
    ep->lpoll.data = ep;
    ep->open_handles = 1;
    uv_poll_start(&ep->lpoll, UV_READABLE, on_listen);
    *out = ep;
    return PX_OK;
}

px_err px_canep_send(px_canep *ep, const px_can_frame *f)
{
    if (ep->cfd < 0) {
        ep->st.tx_dropped++;
        return PX_E_CLOSED;
    }
    unsigned i = ep->n_out++;
    size_t len = sizeof(*f);
    if (ep->socketcan && !(f->flags & PX_CANFD_FDF))
        len = PX_CAN_MTU; /* struct can_frame: the first 16 bytes, flags byte is padding */
    ep->outq[i] = *f;
    if (ep->socketcan && len == PX_CAN_MTU)
        ep->outq[i].flags = 0;
    ep->outlen[i] = len;
    if (ep->n_out == PX_CANEP_OUTQ)
        px_canep_flush(ep);
    return PX_OK;
}

void px_canep_flush(px_canep *ep)
{
    unsigned n = ep->n_out;
    ep->n_out = 0;
    if (!n)
        return;
    if (ep->cfd < 0) {
        ep->st.tx_dropped += n;
        return;
    }
    struct mmsghdr msgs[PX_CANEP_OUTQ];
    struct iovec iov[PX_CANEP_OUTQ];
    for (unsigned i = 0; i < n; i++) {
        iov[i] = (struct iovec){.iov_base = &ep->outq[i], .iov_len = ep->outlen[i]};
        msgs[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[i], .msg_iovlen = 1}};
    }
    /* As many as the guest's socket takes; the rest is a receive overrun. */
    int k = sendmmsg(ep->cfd, msgs, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (k < 0)
        k = 0;
    ep->st.tx += (unsigned)k;
    ep->st.tx_dropped += n - (unsigned)k;
}

void px_canep_pause(px_canep *ep, bool paused)
{
    if (ep->paused == paused)
        return;
    ep->paused = paused;
    conn_watch(ep);
}

uint32_t px_canep_id(const px_canep *ep)
{
    return ep->id;
}

const char *px_canep_name(const px_canep *ep)
{
    return ep->name;
}

const px_canep_stats *px_canep_get_stats(const px_canep *ep)
{
    return &ep->st;
}

void px_canep_close(px_canep *ep)
{
    if (!ep || ep->closing)
        return;
    ep->closing = true;
    px_canep_flush(ep);
    conn_close(ep);
    if (ep->lfd >= 0) {
        uv_poll_stop(&ep->lpoll);
        uv_close((uv_handle_t *)&ep->lpoll, handle_closed);
        close(ep->lfd);
        unlink(ep->path);
    }
    if (ep->open_handles == 0)
        free(ep);
}

px_err px_canep_open_socketcan(uv_loop_t *loop, const char *ifname, const px_canep_opts *o,
                               px_canep **out, px_errmsg *em)
{
    *out = NULL;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    if (!*ifname || strlen(ifname) >= sizeof(ifr.ifr_name))
        return px_errmsg_set(em, PX_E_CONFIG, "CAN endpoint %s: bad interface name '%s'", o->name,
                             ifname);
    int fd = socket(PF_CAN, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, CAN_RAW);
    if (fd < 0) {
        int e = errno;
        if (e == EAFNOSUPPORT || e == EPROTONOSUPPORT)
            return px_errmsg_set(em, PX_E_UNSUPP,
                                 "CAN endpoint %s: this host's kernel has no SocketCAN (AF_CAN); "
                                 "host CAN interfaces cannot join a bus here (guests attach "
                                 "through the rootless shim instead)",
                                 o->name);
        return px_errmsg_set(em, PX_E_IO, "CAN endpoint %s: socket(PF_CAN): %s", o->name,
                             strerror(e));
    }
    int on = 1;
    setsockopt(fd, SOL_CAN_RAW, CAN_RAW_FD_FRAMES, &on, sizeof(on));
    memcpy(ifr.ifr_name, ifname, strlen(ifname));
    struct sockaddr_can sa = {.can_family = AF_CAN};
    if (ioctl(fd, SIOCGIFINDEX, &ifr) != 0 ||
        (sa.can_ifindex = ifr.ifr_ifindex, bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)) {
        int e = errno;
        close(fd);
        return px_errmsg_set(em, PX_E_IO, "CAN endpoint %s: host interface %s: %s", o->name, ifname,
                             strerror(e));
    }
    px_canep *ep = calloc(1, sizeof(*ep));
    if (!ep) {
        close(fd);
        return px_errmsg_set(em, PX_E_NOMEM, "CAN endpoint %s: out of memory", o->name);
    }
    ep->loop = loop;
    ep->socketcan = true;
    ep->lfd = -1;
    ep->cfd = fd;
    snprintf(ep->path, sizeof(ep->path), "%s", ifname);
    snprintf(ep->name, sizeof(ep->name), "%s", o->name);
    ep->id = o->id;
    ep->max_batch = o->max_batch;
    ep->on_rx = o->on_rx;
    ep->on_batch = o->on_batch;
    ep->ud = o->ud;
    uv_poll_init(loop, &ep->cpoll, fd);
    ep->cpoll.data = ep;
    ep->cpoll_on = true;
    ep->open_handles = 1;
    ep->st.connected = true;
    ep->st.connects = 1;
    conn_watch(ep);
    *out = ep;
    return PX_OK;
}
