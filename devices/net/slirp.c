/* plexus — NAT uplink (libslirp). See slirp.h. */
#include "devices/net/slirp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libslirp.h>

#include "fabric/core/log.h"

#define ETH_HLEN     14u
#define ETHTYPE_IP   0x0800u
#define ETHTYPE_ARP  0x0806u
#define EPOLL_BATCH  64
#define DHCP_FIRST   15u /* QEMU's layout: N+15 .. N+30 */
#define DHCP_CLIENTS 16u /* libslirp's NB_BOOTP_CLIENTS */

/* One fd libslirp asked to watch: its slot is the fd number. */
typedef struct pfd {
    uint32_t want;    /* epoll events registered (0: not registered) */
    uint32_t gen;     /* fill round it was last asked for */
    uint32_t revents; /* epoll events seen since */
} pfd;

typedef struct fwd {
    bool udp, active;
    uint16_t host_port, guest_port;
    uint8_t mac[6];
    uint32_t ip; /* installed for (host order), valid while active */
} fwd;

typedef struct lease {
    uint8_t mac[6];
    uint32_t ip;
    uint64_t seen; /* learn counter, for replacing the oldest */
} lease;

typedef struct stimer {
    uv_timer_t t;
    px_slirp *s;
    SlirpTimerCb cb;
    void *cb_opaque;
} stimer;

struct px_slirp {
    uv_loop_t *loop;
    Slirp *slirp;
    char name[128];
    uint32_t net, mask, gw, dns; /* host byte order */
    px_slirp_out_cb out;
    void *ud;

    int epfd;
    uv_poll_t ep_poll;
    uv_prepare_t prep;
    uv_check_t check;
    uv_timer_t tmo; /* wakes the loop for libslirp's TCP timers */
    unsigned open_handles;
    bool closing, ep_ready;
    bool follow_due; /* a guest address changed inside libslirp: fwds_sync when out */
    unsigned depth;  /* inside libslirp: close is finished when it returns */

    pfd *pfds;
    int n_pfds; /* slots in pfds (highest fd + 1 seen) */
    int *reg;   /* registered fds */
    int n_reg, cap_reg;
    uint32_t gen;

    /* Frames produced inside px_slirp_input, delivered at the check. */
    uint8_t *oq;
    size_t oq_len, oq_cap;
    bool holding;

    fwd fwds[PX_SLIRP_MAX_FWDS];
    uint32_t n_fwds;
    lease leases[PX_SLIRP_MAX_LEASES];
    uint32_t n_leases;
    uint64_t learn_seq;

    px_slirp_stats st;
};

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void ip_str(uint32_t ip, char out[16])
{
    snprintf(out, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

static void mac_str(const uint8_t *m, char out[18])
{
    snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

/* ---- guest addresses and forwards ---- */

static void fwds_sync(px_slirp *s);

static int fwd_install(px_slirp *s, fwd *f, uint32_t ip)
{
    struct in_addr any = {.s_addr = htonl(INADDR_ANY)};
    struct in_addr g = {.s_addr = htonl(ip)};
    s->depth++;
    int rc = slirp_add_hostfwd(s->slirp, f->udp, any, f->host_port, g, f->guest_port);
    s->depth--;
    return rc;
}

static void fwd_uninstall(px_slirp *s, fwd *f)
{
    if (!f->active)
        return;
    struct in_addr any = {.s_addr = htonl(INADDR_ANY)};
    s->depth++;
    slirp_remove_hostfwd(s->slirp, f->udp, any, f->host_port);
    s->depth--;
    f->active = false;
}

/* Install every forward whose guest's address is known and not the one
 * it is installed for. Not from inside libslirp (learn() defers to here). */
static void fwds_sync(px_slirp *s)
{
    s->follow_due = false;
    for (uint32_t i = 0; i < s->n_fwds; i++) {
        fwd *f = &s->fwds[i];
        uint32_t ip;
        if (!px_slirp_lease(s, f->mac, &ip) || (f->active && f->ip == ip))
            continue;
        fwd_uninstall(s, f);
        char a[16], m[18];
        ip_str(ip, a);
        mac_str(f->mac, m);
        if (fwd_install(s, f, ip) != 0) {
            PX_WARN("slirp", "port forward not installed: host port in use",
                    "uplink=%s %s=%u guest=%s:%u mac=%s hint=\"free port %u on this host; retried "
                    "at the guest's next DHCP renewal\"",
                    s->name, f->udp ? "udp" : "tcp", f->host_port, a, f->guest_port, m,
                    f->host_port);
            continue;
        }
        f->active = true;
        f->ip = ip;
        PX_INFO("slirp", "port forward installed", "uplink=%s %s=%u guest=%s:%u mac=%s", s->name,
                f->udp ? "udp" : "tcp", f->host_port, a, f->guest_port, m);
    }
}

/* A guest address: inside the subnet, not the network, broadcast, gateway
 * or DNS address. */
static bool guest_ip(const px_slirp *s, uint32_t ip)
{
    return (ip & s->mask) == s->net && ip != s->net && ip != (s->net | ~s->mask) && ip != s->gw &&
           ip != s->dns;
}

static bool mac_unicast(const uint8_t *m)
{
    static const uint8_t zero[6];
    return !(m[0] & 1) && memcmp(m, zero, 6) != 0;
}

/* mac uses ip. retry: also when known already (a DHCP ACK: a forward that
 * could not be installed is tried again). */
static void learn(px_slirp *s, const uint8_t mac[6], uint32_t ip, bool retry)
{
    if (!mac_unicast(mac) || !guest_ip(s, ip))
        return;
    lease *l = NULL;
    for (uint32_t i = 0; i < s->n_leases; i++)
        if (memcmp(s->leases[i].mac, mac, 6) == 0)
            l = &s->leases[i];
    if (l && l->ip == ip) {
        l->seen = ++s->learn_seq;
        if (retry) {
            s->follow_due = true;
            if (s->depth == 0)
                fwds_sync(s);
        }
        return;
    }
    if (!l && s->n_leases < PX_SLIRP_MAX_LEASES) {
        l = &s->leases[s->n_leases++];
    } else if (!l) {
        l = &s->leases[0];
        for (uint32_t i = 1; i < s->n_leases; i++)
            if (s->leases[i].seen < l->seen)
                l = &s->leases[i];
    }
    memcpy(l->mac, mac, 6);
    l->ip = ip;
    l->seen = ++s->learn_seq;
    char a[16], m[18];
    ip_str(ip, a);
    mac_str(mac, m);
    PX_DEBUG("slirp", "guest address learnt", "uplink=%s mac=%s ip=%s", s->name, m, a);
    /* Inside libslirp (a DHCP ACK being sent) its lists are not to be
     * touched: the forwards move once it returns. */
    s->follow_due = true;
    if (s->depth == 0)
        fwds_sync(s);
}

/* A frame from libslirp: a DHCP ACK names a guest's address. */
static void watch_out(px_slirp *s, const uint8_t *f, size_t len)
{
    if (len < ETH_HLEN + 20 || rd16(f + 12) != ETHTYPE_IP)
        return;
    const uint8_t *ip = f + ETH_HLEN;
    size_t ihl = (size_t)(ip[0] & 15) * 4;
    if ((ip[0] >> 4) != 4 || ihl < 20 || ip[9] != 17 || len < ETH_HLEN + ihl + 8)
        return;
    const uint8_t *udp = ip + ihl;
    if (rd16(udp) != 67 || rd16(udp + 2) != 68)
        return;
    const uint8_t *b = udp + 8;
    size_t blen = len - ETH_HLEN - ihl - 8;
    if (blen < 240 || b[0] != 2 || b[1] != 1 || b[2] != 6 || rd32(b + 236) != 0x63825363u)
        return;
    for (size_t at = 240; at < blen;) {
        uint8_t code = b[at];
        if (code == 255)
            break;
        if (code == 0) {
            at++;
            continue;
        }
        if (at + 2 > blen || at + 2 + b[at + 1] > blen)
            break;
        if (code == 53 && b[at + 1] == 1) {
            if (b[at + 2] == 5) /* DHCPACK */
                learn(s, b + 28, rd32(b + 16), true);
            return;
        }
        at += 2 + (size_t)b[at + 1];
    }
}

/* A frame from the segment: ARP and IPv4 senders inside the subnet. */
static void watch_in(px_slirp *s, const uint8_t *f, size_t len)
{
    uint16_t type = rd16(f + 12);
    if (type == ETHTYPE_ARP && len >= ETH_HLEN + 28) {
        const uint8_t *a = f + ETH_HLEN;
        if (rd16(a) == 1 && rd16(a + 2) == ETHTYPE_IP && a[4] == 6 && a[5] == 4 &&
            memcmp(a + 8, f + 6, 6) == 0)
            learn(s, a + 8, rd32(a + 14), false);
    } else if (type == ETHTYPE_IP && len >= ETH_HLEN + 20 && (f[ETH_HLEN] >> 4) == 4) {
        learn(s, f + 6, rd32(f + ETH_HLEN + 12), false);
    }
}

/* ---- frames out ---- */

static void deliver(px_slirp *s, const uint8_t *f, size_t len)
{
    s->st.tx++;
    s->out(s->ud, f, len);
}

static void oq_flush(px_slirp *s)
{
    size_t at = 0;
    while (at < s->oq_len && !s->closing) {
        uint32_t n = rd32(s->oq + at);
        deliver(s, s->oq + at + 4, n);
        at += 4 + n;
    }
    s->oq_len = 0;
}

static ssize_t cb_send(const void *buf, size_t len, void *opaque)
{
    px_slirp *s = opaque;
    const uint8_t *f = buf;
    if (s->closing)
        return (ssize_t)len;
    watch_out(s, f, len);
    if (!s->holding) {
        deliver(s, f, len);
        return (ssize_t)len;
    }
    if (s->oq_len + 4 + len > PX_SLIRP_OUTQ_MAX) {
        s->st.tx_dropped++;
        return (ssize_t)len; /* as a full wire would: TCP retransmits */
    }
    if (s->oq_len + 4 + len > s->oq_cap) {
        size_t cap = s->oq_cap ? s->oq_cap : 16384;
        while (cap < s->oq_len + 4 + len)
            cap *= 2;
        uint8_t *q = realloc(s->oq, cap);
        if (!q) {
            s->st.tx_dropped++;
            return (ssize_t)len;
        }
        s->oq = q;
        s->oq_cap = cap;
    }
    uint8_t *p = s->oq + s->oq_len;
    p[0] = (uint8_t)(len >> 24);
    p[1] = (uint8_t)(len >> 16);
    p[2] = (uint8_t)(len >> 8);
    p[3] = (uint8_t)len;
    memcpy(p + 4, f, len);
    s->oq_len += 4 + len;
    return (ssize_t)len;
}

/* ---- libslirp callbacks ---- */

static void cb_guest_error(const char *msg, void *opaque)
{
    px_slirp *s = opaque;
    s->st.guest_errors++;
    PX_WARN("slirp", "guest error", "uplink=%s msg=\"%s\"", s->name, msg);
}

static int64_t cb_clock(void *opaque)
{
    (void)opaque;
    return (int64_t)uv_hrtime();
}

static void handle_closed(uv_handle_t *h);
static void finish_close(px_slirp *s);

static void stimer_fire(uv_timer_t *t)
{
    stimer *st = t->data;
    if (st->s->closing)
        return;
    px_slirp *s = st->s;
    s->depth++;
    st->cb(st->cb_opaque);
    s->depth--;
    if (s->closing && s->depth == 0)
        finish_close(s);
    else if (s->follow_due && s->depth == 0)
        fwds_sync(s);
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
    px_slirp *s = opaque;
    stimer *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->s = s;
    st->cb = cb;
    st->cb_opaque = cb_opaque;
    uv_timer_init(s->loop, &st->t);
    st->t.data = st;
    s->open_handles++;
    return st;
}

static void stimer_closed(uv_handle_t *h)
{
    stimer *st = h->data;
    px_slirp *s = st->s;
    free(st);
    h->data = s;
    handle_closed(h);
}

static void cb_timer_free(void *timer, void *opaque)
{
    (void)opaque;
    stimer *st = timer;
    if (st)
        uv_close((uv_handle_t *)&st->t, stimer_closed);
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
    (void)opaque;
    stimer *st = timer;
    int64_t now = (int64_t)(uv_hrtime() / 1000000u);
    uv_timer_start(&st->t, stimer_fire, expire_ms > now ? (uint64_t)(expire_ms - now) : 0, 0);
}

static void pfd_forget(px_slirp *s, int fd);

static void cb_register_fd(int fd, void *opaque)
{
    /* A new socket may reuse the number of one closed behind our back: the
     * kernel dropped that registration, so register afresh. */
    pfd_forget(opaque, fd);
}

static void cb_unregister_fd(int fd, void *opaque)
{
    pfd_forget(opaque, fd);
}

static void cb_notify(void *opaque)
{
    (void)opaque; /* the fill before every poll picks the change up */
}

static const SlirpCb slirp_cbs = {
    .send_packet = cb_send,
    .guest_error = cb_guest_error,
    .clock_get_ns = cb_clock,
    .timer_new = cb_timer_new,
    .timer_free = cb_timer_free,
    .timer_mod = cb_timer_mod,
    .register_poll_fd = cb_register_fd,
    .unregister_poll_fd = cb_unregister_fd,
    .notify = cb_notify,
};

/* ---- libslirp's sockets in our epoll set ---- */

static void pfd_forget(px_slirp *s, int fd)
{
    if (fd < 0 || fd >= s->n_pfds || !s->pfds[fd].want)
        return;
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL); /* fails harmlessly if already closed */
    s->pfds[fd].want = 0;
    s->pfds[fd].revents = 0;
    for (int i = 0; i < s->n_reg; i++)
        if (s->reg[i] == fd) {
            s->reg[i] = s->reg[--s->n_reg];
            break;
        }
}

static int cb_add_poll(int fd, int events, void *opaque)
{
    px_slirp *s = opaque;
    if (fd < 0)
        return -1;
    if (fd >= s->n_pfds) {
        int n = s->n_pfds ? s->n_pfds : 64;
        while (n <= fd)
            n *= 2;
        pfd *p = realloc(s->pfds, (size_t)n * sizeof(*p));
        if (!p)
            return -1;
        memset(p + s->n_pfds, 0, (size_t)(n - s->n_pfds) * sizeof(*p));
        s->pfds = p;
        s->n_pfds = n;
    }
    pfd *p = &s->pfds[fd];
    uint32_t want = 0;
    if (events & SLIRP_POLL_IN)
        want |= EPOLLIN;
    if (events & SLIRP_POLL_OUT)
        want |= EPOLLOUT;
    if (events & SLIRP_POLL_PRI)
        want |= EPOLLPRI;
    if (!want)
        want = EPOLLERR; /* registered; only errors */
    p->gen = s->gen;
    if (p->want == want)
        return fd;
    struct epoll_event ev = {.events = want, .data.fd = fd};
    int rc = epoll_ctl(s->epfd, p->want ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev);
    if (rc != 0 && errno == ENOENT)
        rc = epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev);
    else if (rc != 0 && errno == EEXIST)
        rc = epoll_ctl(s->epfd, EPOLL_CTL_MOD, fd, &ev);
    if (rc != 0) {
        PX_WARN("slirp", "cannot watch a libslirp socket", "uplink=%s fd=%d err=\"%s\"", s->name,
                fd, strerror(errno));
        return -1;
    }
    if (!p->want) {
        if (s->n_reg == s->cap_reg) {
            int cap = s->cap_reg ? s->cap_reg * 2 : 32;
            int *r = realloc(s->reg, (size_t)cap * sizeof(*r));
            if (!r) {
                epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL);
                return -1;
            }
            s->reg = r;
            s->cap_reg = cap;
        }
        s->reg[s->n_reg++] = fd;
    }
    p->want = want;
    return fd;
}

static int cb_get_revents(int idx, void *opaque)
{
    px_slirp *s = opaque;
    if (idx < 0 || idx >= s->n_pfds)
        return 0;
    uint32_t e = s->pfds[idx].revents;
    int r = 0;
    if (e & EPOLLIN)
        r |= SLIRP_POLL_IN;
    if (e & EPOLLOUT)
        r |= SLIRP_POLL_OUT;
    if (e & EPOLLPRI)
        r |= SLIRP_POLL_PRI;
    if (e & EPOLLERR)
        r |= SLIRP_POLL_ERR;
    if (e & EPOLLHUP)
        r |= SLIRP_POLL_HUP;
    return r;
}

static void on_tmo(uv_timer_t *t)
{
    (void)t; /* only wakes the loop: the check runs libslirp's timers */
}

static void on_ep(uv_poll_t *h, int status, int events)
{
    px_slirp *s = h->data;
    (void)status;
    (void)events;
    s->ep_ready = true;
}

/* Before the loop polls: libslirp says what to watch and how long it may
 * sleep. */
static void on_prep(uv_prepare_t *h)
{
    px_slirp *s = h->data;
    if (s->closing)
        return;
    uint32_t timeout = UINT32_MAX;
    s->gen++;
    s->depth++;
    slirp_pollfds_fill(s->slirp, &timeout, cb_add_poll, s);
    s->depth--;
    for (int i = 0; i < s->n_reg;) {
        int fd = s->reg[i];
        if (s->pfds[fd].gen != s->gen)
            pfd_forget(s, fd); /* swaps the last one in: look at i again */
        else
            i++;
    }
    if (timeout != UINT32_MAX)
        uv_timer_start(&s->tmo, on_tmo, timeout, 0);
    else
        uv_timer_stop(&s->tmo);
}

/* After the loop polled: what happened on libslirp's sockets, its timers,
 * and the frames held back from px_slirp_input. */
static void on_check(uv_check_t *h)
{
    px_slirp *s = h->data;
    if (s->closing)
        return;
    oq_flush(s);
    if (s->closing)
        return; /* closed inside out: px_slirp_close finished it */
    int touched[EPOLL_BATCH * 4];
    int n_touched = 0;
    if (s->ep_ready) {
        s->ep_ready = false;
        struct epoll_event ev[EPOLL_BATCH];
        for (int round = 0; round < 4; round++) {
            int n = epoll_wait(s->epfd, ev, EPOLL_BATCH, 0);
            for (int i = 0; i < n; i++) {
                int fd = ev[i].data.fd;
                if (fd >= 0 && fd < s->n_pfds && s->pfds[fd].want) {
                    s->pfds[fd].revents |= ev[i].events;
                    touched[n_touched++] = fd;
                }
            }
            if (n < EPOLL_BATCH)
                break;
        }
    }
    s->depth++;
    slirp_pollfds_poll(s->slirp, 0, cb_get_revents, s);
    s->depth--;
    for (int i = 0; i < n_touched; i++)
        if (touched[i] < s->n_pfds)
            s->pfds[touched[i]].revents = 0;
    if (s->follow_due && !s->closing)
        fwds_sync(s);
    if (s->closing && s->depth == 0)
        finish_close(s);
}

/* ---- public ---- */

static void handle_closed(uv_handle_t *h)
{
    px_slirp *s = h->data;
    if (--s->open_handles == 0 && s->closing) {
        free(s->pfds);
        free(s->reg);
        free(s->oq);
        free(s);
    }
}

px_err px_slirp_open(uv_loop_t *loop, const px_slirp_opts *o, px_slirp **out, px_errmsg *em)
{
    *out = NULL;
    const char *name = o->name ? o->name : "?";
    if (o->prefix < 8 || o->prefix > 27)
        return px_errmsg_set(em, PX_E_CONFIG,
                             "uplink %s: prefix /%u not supported: use /8 to /27 (DHCP hands out "
                             "N+15 .. N+30, which must fit the subnet)",
                             name, o->prefix);
    uint32_t mask = 0xffffffffu << (32 - o->prefix);
    if (o->net & ~mask) {
        char a[16];
        ip_str(o->net, a);
        return px_errmsg_set(
            em, PX_E_CONFIG,
            "uplink %s: %s/%u has host bits set (the network address is %u.%u.%u.%u)", name, a,
            o->prefix, (o->net & mask) >> 24, ((o->net & mask) >> 16) & 255,
            ((o->net & mask) >> 8) & 255, o->net & mask & 255);
    }
    if (!o->out)
        return px_errmsg_set(em, PX_E_INVAL, "uplink %s: no out callback", name);
    px_slirp *s = calloc(1, sizeof(*s));
    if (!s)
        return px_errmsg_set(em, PX_E_NOMEM, "uplink %s: out of memory", name);
    s->loop = loop;
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->net = o->net;
    s->mask = mask;
    s->gw = o->net + 2;
    s->dns = o->net + 3;
    s->out = o->out;
    s->ud = o->ud;
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epfd < 0) {
        int e = errno;
        free(s);
        return px_errmsg_set(em, PX_E_IO, "uplink %s: epoll_create1: %s", name, strerror(e));
    }

    SlirpConfig cfg = {
        .version = 4,
        .restricted = 0,
        .in_enabled = true,
        .vnetwork = {.s_addr = htonl(o->net)},
        .vnetmask = {.s_addr = htonl(mask)},
        .vhost = {.s_addr = htonl(s->gw)},
        .in6_enabled = false,
        .vdhcp_start = {.s_addr = htonl(o->net + DHCP_FIRST)},
        .vnameserver = {.s_addr = htonl(s->dns)},
        .disable_host_loopback = false,
        .enable_emu = false,
    };
    s->slirp = slirp_new(&cfg, &slirp_cbs, s);
    if (!s->slirp) {
        close(s->epfd);
        free(s);
        return px_errmsg_set(em, PX_E_IO, "uplink %s: libslirp refused the configuration", name);
    }
    uv_poll_init(loop, &s->ep_poll, s->epfd);
    uv_prepare_init(loop, &s->prep);
    uv_check_init(loop, &s->check);
    uv_timer_init(loop, &s->tmo);
    s->ep_poll.data = s->prep.data = s->check.data = s->tmo.data = s;
    s->open_handles = 4;
    uv_poll_start(&s->ep_poll, UV_READABLE, on_ep);
    uv_prepare_start(&s->prep, on_prep);
    uv_check_start(&s->check, on_check);
    /* The uplink alone does not keep a loop running. */
    uv_unref((uv_handle_t *)&s->prep);
    uv_unref((uv_handle_t *)&s->check);
    uv_unref((uv_handle_t *)&s->tmo);
    uv_unref((uv_handle_t *)&s->ep_poll);
    char a[16];
    ip_str(o->net, a);
    PX_INFO("slirp", "uplink up", "uplink=%s net=%s/%u libslirp=%s", s->name, a, o->prefix,
            slirp_version_string());
    *out = s;
    return PX_OK;
}

static bool for_uplink(const uint8_t *dst)
{
    /* Broadcast / multicast, or one of libslirp's own MACs (52:55:...). */
    return (dst[0] & 1) || (dst[0] == 0x52 && dst[1] == 0x55);
}

/* IPv4 fragments never reach libslirp: Debian 12's libslirp 4.7 crashes
 * reassembling crafted ones (found by fuzz_net_slirp; a guest could take
 * the node down with one frame). Guests that need large datagrams through
 * NAT lose them; TCP is unaffected (it never fragments at the guest). */
static bool ipv4_fragment(const uint8_t *f, size_t len)
{
    return len >= ETH_HLEN + 20 && rd16(f + 12) == ETHTYPE_IP &&
           (rd16(f + ETH_HLEN + 6) & 0x3fffu) != 0; /* MF or an offset */
}

void px_slirp_input(px_slirp *s, const uint8_t *f, size_t len)
{
    if (s->closing || len < ETH_HLEN || len > 65535)
        return;
    watch_in(s, f, len);
    if (!for_uplink(f)) {
        s->st.rx_ignored++;
        return;
    }
    if (ipv4_fragment(f, len)) {
        s->st.rx_fragments++;
        return;
    }
    s->st.rx++;
    bool was = s->holding;
    s->holding = true;
    s->depth++;
    slirp_input(s->slirp, f, (int)len);
    s->depth--;
    s->holding = was;
    if (s->follow_due && s->depth == 0 && !s->closing)
        fwds_sync(s);
    if (s->closing && s->depth == 0)
        finish_close(s);
}

/* Would listening on the port work? libslirp binds with SO_REUSEADDR on
 * all addresses; so does the trial. */
static int port_free(bool udp, uint16_t port)
{
    int fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    int e = 0;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || (!udp && listen(fd, 1) != 0))
        e = errno;
    close(fd);
    return e;
}

px_err px_slirp_fwd_add(px_slirp *s, bool udp, uint16_t host_port, const uint8_t mac[6],
                        uint16_t guest_port, px_errmsg *em)
{
    const char *proto = udp ? "udp" : "tcp";
    for (uint32_t i = 0; i < s->n_fwds; i++)
        if (s->fwds[i].udp == udp && s->fwds[i].host_port == host_port)
            return px_errmsg_set(em, PX_E_EXISTS, "uplink %s: %s port %u is forwarded already",
                                 s->name, proto, host_port);
    if (s->n_fwds == PX_SLIRP_MAX_FWDS)
        return px_errmsg_set(em, PX_E_TOOBIG, "uplink %s: more than %u port forwards", s->name,
                             PX_SLIRP_MAX_FWDS);
    if (host_port == 0 || guest_port == 0)
        return px_errmsg_set(em, PX_E_INVAL, "uplink %s: port 0 cannot be forwarded", s->name);
    fwd *f = &s->fwds[s->n_fwds];
    *f = (fwd){.udp = udp, .host_port = host_port, .guest_port = guest_port};
    memcpy(f->mac, mac, 6);
    uint32_t ip = 0;
    int e = 0;
    if (px_slirp_lease(s, mac, &ip)) {
        if (fwd_install(s, f, ip) != 0) {
            e = port_free(udp, host_port);
            if (!e)
                e = EADDRINUSE;
        } else {
            f->active = true;
            f->ip = ip;
        }
    } else {
        e = port_free(udp, host_port);
    }
    if (e)
        return px_errmsg_set(em, PX_E_IO,
                             "uplink %s: %s port %u on this host is in use (%s); pick another "
                             "host port or stop what listens there",
                             s->name, proto, host_port, strerror(e));
    s->n_fwds++;
    char m[18];
    mac_str(mac, m);
    PX_INFO("slirp",
            f->active ? "port forward installed" : "port forward waits for the guest's address",
            "uplink=%s %s=%u mac=%s guest_port=%u", s->name, proto, host_port, m, guest_port);
    return PX_OK;
}

px_err px_slirp_fwd_del(px_slirp *s, bool udp, uint16_t host_port)
{
    for (uint32_t i = 0; i < s->n_fwds; i++) {
        if (s->fwds[i].udp != udp || s->fwds[i].host_port != host_port)
            continue;
        fwd_uninstall(s, &s->fwds[i]);
        memmove(&s->fwds[i], &s->fwds[i + 1], (s->n_fwds - i - 1) * sizeof(s->fwds[0]));
        s->n_fwds--;
        return PX_OK;
    }
    return PX_E_NOTFOUND;
}

uint32_t px_slirp_fwds(const px_slirp *s, px_slirp_fwd_info *out, uint32_t max)
{
    for (uint32_t i = 0; i < s->n_fwds && i < max; i++) {
        const fwd *f = &s->fwds[i];
        out[i] = (px_slirp_fwd_info){.udp = f->udp,
                                     .host_port = f->host_port,
                                     .guest_port = f->guest_port,
                                     .active = f->active};
        memcpy(out[i].mac, f->mac, 6);
        uint32_t ip = 0;
        if (f->active)
            ip = f->ip;
        else
            px_slirp_lease(s, f->mac, &ip);
        out[i].guest_ip = ip;
    }
    return s->n_fwds;
}

bool px_slirp_lease(const px_slirp *s, const uint8_t mac[6], uint32_t *ip)
{
    for (uint32_t i = 0; i < s->n_leases; i++)
        if (memcmp(s->leases[i].mac, mac, 6) == 0) {
            *ip = s->leases[i].ip;
            return true;
        }
    return false;
}

void px_slirp_gateway_mac(const px_slirp *s, uint8_t mac[6])
{
    mac[0] = 0x52;
    mac[1] = 0x55;
    mac[2] = (uint8_t)(s->gw >> 24);
    mac[3] = (uint8_t)(s->gw >> 16);
    mac[4] = (uint8_t)(s->gw >> 8);
    mac[5] = (uint8_t)s->gw;
}

void px_slirp_stats_get(const px_slirp *s, px_slirp_stats *out)
{
    *out = s->st;
}

static void finish_close(px_slirp *s)
{
    if (!s->slirp)
        return;
    Slirp *sl = s->slirp;
    s->slirp = NULL;
    slirp_cleanup(sl); /* closes its host sockets; frees its timers (cb_timer_free) */
    uv_close((uv_handle_t *)&s->ep_poll, handle_closed);
    close(s->epfd);
    s->epfd = -1;
    uv_close((uv_handle_t *)&s->prep, handle_closed);
    uv_close((uv_handle_t *)&s->check, handle_closed);
    uv_close((uv_handle_t *)&s->tmo, handle_closed);
}

void px_slirp_close(px_slirp *s)
{
    if (!s || s->closing)
        return;
    s->closing = true;
    PX_INFO("slirp", "uplink down", "uplink=%s", s->name);
    if (s->depth == 0)
        finish_close(s); /* else when libslirp returns (inside out) */
}
