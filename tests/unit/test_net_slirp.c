/* Unit tests: devices/net/slirp — the NAT uplink, played against by the
 * test as a guest on the segment: DHCP DISCOVER/OFFER/REQUEST/ACK and the
 * lease it teaches, ARP for the gateway, UDP out to the host's loopback and
 * back, and a host port forward that follows the guest's address (a
 * connection to the host port comes out as a SYN towards the guest).
 *
 * Every wait runs the loop until a condition holds or a deadline passes; a
 * 2 ms tick wakes the loop so conditions on the test's own sockets are
 * checked too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "devices/net/slirp.h"

#define WAIT_MS 10000u
#define MAXOUT  256u
#define NET     0x0a000200u /* 10.0.2.0 */
#define IP(d)   (NET + (d))

static const uint8_t MAC1[6] = {0x52, 0x54, 0x00, 0x00, 0x00, 0x01};
static const uint8_t MAC2[6] = {0x52, 0x54, 0x00, 0x00, 0x00, 0x02};
static const uint8_t BCAST[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
static const uint8_t GWMAC[6] = {0x52, 0x55, 0x0a, 0x00, 0x02, 0x02};

typedef struct fx {
    uv_loop_t loop;
    px_slirp *s;
    unsigned n_out;
    size_t len[MAXOUT];
    uint8_t *f[MAXOUT];
    unsigned seen; /* frames already looked at by a finder */
} fx;

/* ---- loop ---- */

static void tick_cb(uv_timer_t *t)
{
    (void)t;
}

static void deadline_cb(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

typedef bool (*cond_fn)(fx *, void *);

static bool run_until(fx *f, cond_fn cond, void *arg, unsigned ms)
{
    uv_timer_t deadline, tick;
    bool expired = false;
    uv_timer_init(&f->loop, &deadline);
    uv_timer_init(&f->loop, &tick);
    deadline.data = &expired;
    uv_timer_start(&deadline, deadline_cb, ms, 0);
    uv_timer_start(&tick, tick_cb, 2, 2);
    while (!cond(f, arg) && !expired)
        uv_run(&f->loop, UV_RUN_ONCE);
    bool ok = cond(f, arg);
    uv_close((uv_handle_t *)&deadline, NULL);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    return ok;
}

static void on_out(void *ud, const uint8_t *fr, size_t len)
{
    fx *f = ud;
    assert_true(f->n_out < MAXOUT);
    f->f[f->n_out] = malloc(len);
    memcpy(f->f[f->n_out], fr, len);
    f->len[f->n_out] = len;
    f->n_out++;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    uv_loop_init(&f->loop);
    px_slirp_opts o = {.net = NET, .prefix = 24, .name = "t/lan/uplink", .out = on_out, .ud = f};
    px_errmsg em = {{0}};
    if (px_slirp_open(&f->loop, &o, &f->s, &em) != PX_OK)
        fail_msg("%s", em.text);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    px_slirp_close(f->s);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    for (unsigned i = 0; i < f->n_out; i++)
        free(f->f[i]);
    free(f);
    return 0;
}

/* ---- frames ---- */

static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v)
{
    wr16(p, (uint16_t)(v >> 16));
    wr16(p + 2, (uint16_t)v);
}

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)rd16(p) << 16 | rd16(p + 2);
}

static size_t eth(uint8_t *b, const uint8_t *dst, const uint8_t *src, uint16_t type)
{
    memcpy(b, dst, 6);
    memcpy(b + 6, src, 6);
    wr16(b + 12, type);
    return 14;
}

/* IPv4 + UDP (checksum 0: none) around payload; returns the frame length. */
static size_t udp_frame(uint8_t *b, const uint8_t *dst_mac, const uint8_t *src_mac, uint32_t src,
                        uint32_t dst, uint16_t sport, uint16_t dport, const uint8_t *pl,
                        size_t pl_len)
{
    size_t at = eth(b, dst_mac, src_mac, 0x0800);
    uint8_t *ip = b + at;
    memset(ip, 0, 28);
    ip[0] = 0x45;
    wr16(ip + 2, (uint16_t)(28 + pl_len));
    ip[8] = 64;
    ip[9] = 17;
    wr32(ip + 12, src);
    wr32(ip + 16, dst);
    uint32_t sum = 0;
    for (int i = 0; i < 20; i += 2)
        sum += rd16(ip + i);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    wr16(ip + 10, (uint16_t)~sum);
    wr16(ip + 20, sport);
    wr16(ip + 22, dport);
    wr16(ip + 24, (uint16_t)(8 + pl_len));
    memcpy(ip + 28, pl, pl_len);
    return at + 28 + pl_len;
}

/* A DHCP message from mac: type 1 DISCOVER or 3 REQUEST (for req_ip). */
static size_t dhcp_frame(uint8_t *b, const uint8_t *mac, uint8_t type, uint32_t req_ip)
{
    uint8_t d[300];
    memset(d, 0, sizeof(d));
    d[0] = 1; /* BOOTREQUEST */
    d[1] = 1;
    d[2] = 6;
    wr32(d + 4, 0x12345678u);
    memcpy(d + 28, mac, 6);
    wr32(d + 236, 0x63825363u);
    size_t o = 240;
    d[o++] = 53;
    d[o++] = 1;
    d[o++] = type;
    if (req_ip) {
        d[o++] = 50;
        d[o++] = 4;
        wr32(d + o, req_ip);
        o += 4;
        d[o++] = 54;
        d[o++] = 4;
        wr32(d + o, IP(2));
        o += 4;
    }
    d[o++] = 255;
    return udp_frame(b, BCAST, mac, 0, 0xffffffffu, 68, 67, d, 300);
}

/* Frames from the uplink: the IPv4 header of frame i if it is IPv4 proto. */
static const uint8_t *ipv4_of(const fx *f, unsigned i, uint8_t proto)
{
    if (f->len[i] < 34 || rd16(f->f[i] + 12) != 0x0800 || f->f[i][14 + 9] != proto)
        return NULL;
    return f->f[i] + 14;
}

typedef struct dhcp_want {
    uint8_t type;
    uint32_t yiaddr, server;
    const uint8_t *chaddr;
} dhcp_want;

static bool got_dhcp(fx *f, void *arg)
{
    dhcp_want *w = arg;
    for (unsigned i = 0; i < f->n_out; i++) {
        const uint8_t *ip = ipv4_of(f, i, 17);
        if (!ip)
            continue;
        const uint8_t *u = ip + (ip[0] & 15) * 4;
        if (rd16(u) != 67 || rd16(u + 2) != 68)
            continue;
        const uint8_t *d = u + 8;
        size_t dlen = f->len[i] - (size_t)(d - f->f[i]);
        if (dlen < 244 || d[0] != 2 || rd32(d + 236) != 0x63825363u ||
            memcmp(d + 28, w->chaddr, 6) != 0)
            continue;
        uint8_t type = 0;
        uint32_t server = 0;
        for (size_t o = 240; o + 2 <= dlen && d[o] != 255;) {
            if (d[o] == 0) {
                o++;
                continue;
            }
            if (d[o] == 53)
                type = d[o + 2];
            if (d[o] == 54 && d[o + 1] == 4)
                server = rd32(d + o + 2);
            o += 2 + d[o + 1];
        }
        if (type == w->type) {
            w->yiaddr = rd32(d + 16);
            w->server = server;
            return true;
        }
    }
    return false;
}

static void do_dhcp(fx *f, const uint8_t *mac, uint32_t want_ip)
{
    uint8_t b[400];
    size_t n = dhcp_frame(b, mac, 1, 0);
    px_slirp_input(f->s, b, n);
    dhcp_want offer = {.type = 2, .chaddr = mac};
    assert_true(run_until(f, got_dhcp, &offer, WAIT_MS));
    assert_int_equal(offer.yiaddr, want_ip);
    assert_int_equal(offer.server, IP(2));
    uint32_t ip = 0;
    assert_false(px_slirp_lease(f->s, mac, &ip)); /* an offer is not a lease */
    n = dhcp_frame(b, mac, 3, offer.yiaddr);
    px_slirp_input(f->s, b, n);
    dhcp_want ack = {.type = 5, .chaddr = mac};
    assert_true(run_until(f, got_dhcp, &ack, WAIT_MS));
    assert_int_equal(ack.yiaddr, want_ip);
    assert_true(px_slirp_lease(f->s, mac, &ip));
    assert_int_equal(ip, want_ip);
}

/* ---- tests ---- */

static void test_dhcp_lease(void **state)
{
    fx *f = *state;
    do_dhcp(f, MAC1, IP(15));
    do_dhcp(f, MAC2, IP(16)); /* the next client, the next address */
    uint32_t ip;
    assert_true(px_slirp_lease(f->s, MAC1, &ip));
    assert_int_equal(ip, IP(15));
    uint8_t gw[6];
    px_slirp_gateway_mac(f->s, gw);
    assert_memory_equal(gw, GWMAC, 6);
}

/* The replies to a frame fed in are not delivered inside px_slirp_input. */
static void test_out_never_inside_input(void **state)
{
    fx *f = *state;
    uint8_t b[400];
    size_t n = dhcp_frame(b, MAC1, 1, 0);
    px_slirp_input(f->s, b, n);
    assert_int_equal(f->n_out, 0);
    dhcp_want offer = {.type = 2, .chaddr = MAC1};
    assert_true(run_until(f, got_dhcp, &offer, WAIT_MS));
}

typedef struct arp_want {
    uint16_t op;
    uint32_t spa, tpa;
    uint8_t sha[6];
} arp_want;

static bool got_arp(fx *f, void *arg)
{
    arp_want *w = arg;
    for (unsigned i = 0; i < f->n_out; i++) {
        const uint8_t *a = f->f[i] + 14;
        if (f->len[i] < 42 || rd16(f->f[i] + 12) != 0x0806 || rd16(a + 6) != w->op ||
            rd32(a + 24) != w->tpa || (w->spa && rd32(a + 14) != w->spa))
            continue;
        memcpy(w->sha, a + 8, 6);
        return true;
    }
    return false;
}

static size_t arp_frame(uint8_t *b, const uint8_t *dst, const uint8_t *mac, uint16_t op,
                        uint32_t spa, const uint8_t *tha, uint32_t tpa)
{
    size_t at = eth(b, dst, mac, 0x0806);
    uint8_t *a = b + at;
    wr16(a, 1);
    wr16(a + 2, 0x0800);
    a[4] = 6;
    a[5] = 4;
    wr16(a + 6, op);
    memcpy(a + 8, mac, 6);
    wr32(a + 14, spa);
    memcpy(a + 18, tha, 6);
    wr32(a + 24, tpa);
    memset(a + 28, 0, 14);
    return 60;
}

static void test_arp_gateway(void **state)
{
    fx *f = *state;
    static const uint8_t zero[6];
    uint8_t b[64];
    size_t n = arp_frame(b, BCAST, MAC1, 1, IP(20), zero, IP(2));
    px_slirp_input(f->s, b, n);
    arp_want w = {.op = 2, .spa = IP(2), .tpa = IP(20)};
    assert_true(run_until(f, got_arp, &w, WAIT_MS));
    assert_memory_equal(w.sha, GWMAC, 6);
    /* ... and it taught the uplink MAC1's address (no DHCP involved). */
    uint32_t ip = 0;
    assert_true(px_slirp_lease(f->s, MAC1, &ip));
    assert_int_equal(ip, IP(20));
    /* An ARP request for another guest gets no answer from the uplink. */
    n = arp_frame(b, BCAST, MAC1, 1, IP(20), zero, IP(77));
    px_slirp_input(f->s, b, n);
    arp_want w2 = {.op = 2, .tpa = IP(20), .spa = IP(77)};
    assert_false(run_until(f, got_arp, &w2, 100));
}

/* A guest's UDP datagram to the gateway reaches the host's loopback; the
 * answer comes back to the guest. Unicast frames for other MACs are
 * ignored. */
typedef struct udp_want {
    uint32_t dst;
    uint16_t dport;
    char payload[16];
} udp_want;

static bool got_udp(fx *f, void *arg)
{
    udp_want *w = arg;
    for (unsigned i = 0; i < f->n_out; i++) {
        const uint8_t *ip = ipv4_of(f, i, 17);
        if (!ip || rd32(ip + 16) != w->dst)
            continue;
        const uint8_t *u = ip + (ip[0] & 15) * 4;
        size_t plen = rd16(u + 4) - 8u;
        if (rd16(u + 2) == w->dport && plen == strlen(w->payload) &&
            memcmp(u + 8, w->payload, plen) == 0)
            return true;
    }
    return false;
}

typedef struct sock_wait {
    int fd;
    char buf[64];
    ssize_t n;
    struct sockaddr_in from;
} sock_wait;

static bool sock_got(fx *f, void *arg)
{
    (void)f;
    sock_wait *w = arg;
    if (w->n > 0)
        return true;
    socklen_t fl = sizeof(w->from);
    w->n = recvfrom(w->fd, w->buf, sizeof(w->buf), MSG_DONTWAIT, (struct sockaddr *)&w->from, &fl);
    return w->n > 0;
}

static uint16_t bound_port(int fd)
{
    struct sockaddr_in sa;
    socklen_t l = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &l), 0);
    return ntohs(sa.sin_port);
}

static void test_udp_to_host_loopback(void **state)
{
    fx *f = *state;
    do_dhcp(f, MAC1, IP(15));
    int hs = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(hs, (struct sockaddr *)&sa, sizeof(sa)), 0);
    uint16_t port = bound_port(hs);
    uint8_t b[128];
    size_t n = udp_frame(b, GWMAC, MAC1, IP(15), IP(2), 5555, port, (const uint8_t *)"hello", 5);
    px_slirp_input(f->s, b, n);
    sock_wait w = {.fd = hs};
    assert_true(run_until(f, sock_got, &w, WAIT_MS));
    assert_int_equal(w.n, 5);
    assert_memory_equal(w.buf, "hello", 5);
    assert_int_equal(sendto(hs, "world", 5, 0, (struct sockaddr *)&w.from, sizeof(w.from)), 5);
    udp_want uw = {.dst = IP(15), .dport = 5555, .payload = "world"};
    assert_true(run_until(f, got_udp, &uw, WAIT_MS));
    /* The same datagram unicast to another guest's MAC: not the uplink's. */
    px_slirp_stats st;
    px_slirp_stats_get(f->s, &st);
    uint64_t ign = st.rx_ignored;
    n = udp_frame(b, MAC2, MAC1, IP(15), IP(2), 5555, port, (const uint8_t *)"nope!", 5);
    px_slirp_input(f->s, b, n);
    w.n = 0;
    assert_false(run_until(f, sock_got, &w, 100));
    px_slirp_stats_get(f->s, &st);
    assert_int_equal(st.rx_ignored, ign + 1);
    assert_true(st.tx >= 3);
    /* A fragment (MF set) never reaches libslirp, and is counted. */
    n = udp_frame(b, GWMAC, MAC1, IP(15), IP(2), 5555, port, (const uint8_t *)"frag!", 5);
    b[14 + 6] |= 0x20;
    px_slirp_input(f->s, b, n);
    w.n = 0;
    assert_false(run_until(f, sock_got, &w, 100));
    px_slirp_stats_get(f->s, &st);
    assert_int_equal(st.rx_fragments, 1);
    close(hs);
}

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    uint16_t p = bound_port(fd);
    close(fd);
    return p;
}

static int tcp_connect(uint16_t port);

/* Connecting to 127.0.0.1:port is refused (at once, or reported on the
 * socket once the connect completes). */
static bool refused(uint16_t port)
{
    int c = tcp_connect(port);
    if (c < 0)
        return c == -ECONNREFUSED;
    struct pollfd pf = {.fd = c, .events = POLLOUT};
    assert_int_equal(poll(&pf, 1, WAIT_MS), 1);
    int err = 0;
    socklen_t el = sizeof(err);
    getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &el);
    close(c);
    return err == ECONNREFUSED;
}

static int tcp_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    if (rc != 0 && errno != EINPROGRESS) {
        close(fd);
        return -errno;
    }
    return fd;
}

/* A SYN towards dst:dport (answering the uplink's ARP for dst on the way). */
typedef struct syn_want {
    uint32_t dst, src;
    uint16_t dport;
    uint8_t dst_mac[6];
    const uint8_t *guest_mac;
} syn_want;

static bool got_syn(fx *f, void *arg)
{
    syn_want *w = arg;
    for (; f->seen < f->n_out; f->seen++) {
        unsigned i = f->seen;
        const uint8_t *fr = f->f[i];
        if (f->len[i] >= 42 && rd16(fr + 12) == 0x0806 && rd16(fr + 20) == 1 &&
            rd32(fr + 38) == w->dst) {
            uint8_t b[64];
            size_t n = arp_frame(b, fr + 6, w->guest_mac, 2, w->dst, fr + 22, rd32(fr + 28));
            px_slirp_input(f->s, b, n);
            continue;
        }
        const uint8_t *ip = ipv4_of(f, i, 6);
        if (!ip || rd32(ip + 16) != w->dst)
            continue;
        const uint8_t *t = ip + (ip[0] & 15) * 4;
        if (rd16(t + 2) != w->dport || (t[13] & 0x12) != 0x02)
            continue;
        memcpy(w->dst_mac, fr, 6);
        w->src = rd32(ip + 12);
        return true;
    }
    return false;
}

static void test_port_forward(void **state)
{
    fx *f = *state;
    px_errmsg em = {{0}};
    uint16_t p1 = free_port(), p2 = free_port();
    assert_int_not_equal(p1, p2);

    /* MAC1's address is not known yet: the forward waits; the port refuses. */
    assert_int_equal(px_slirp_fwd_add(f->s, false, p1, MAC1, 22, &em), PX_OK);
    px_slirp_fwd_info fi[4];
    assert_int_equal(px_slirp_fwds(f->s, fi, 4), 1);
    assert_false(fi[0].active);
    assert_int_equal(fi[0].guest_ip, 0);
    assert_true(refused(p1));

    do_dhcp(f, MAC1, IP(15));
    assert_int_equal(px_slirp_fwds(f->s, fi, 4), 1);
    assert_true(fi[0].active);
    assert_int_equal(fi[0].guest_ip, IP(15));
    assert_int_equal(fi[0].host_port, p1);
    assert_int_equal(fi[0].guest_port, 22);
    assert_memory_equal(fi[0].mac, MAC1, 6);

    /* Duplicates and ports in use are refused. */
    assert_int_equal(px_slirp_fwd_add(f->s, false, p1, MAC2, 80, &em), PX_E_EXISTS);
    int busy = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(busy, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(busy, 1), 0);
    uint16_t pb = bound_port(busy);
    assert_int_equal(px_slirp_fwd_add(f->s, false, pb, MAC1, 80, &em), PX_E_IO);
    char want[64];
    snprintf(want, sizeof(want), "port %u on this host is in use", pb);
    assert_non_null(strstr(em.text, want));
    assert_int_equal(px_slirp_fwd_add(f->s, false, pb, MAC2, 80, &em), PX_E_IO); /* no lease */
    close(busy);
    assert_int_equal(px_slirp_fwds(f->s, fi, 4), 1);

    /* A connection to the host port: a SYN to 10.0.2.15:22, from the
     * gateway (the loopback peer is shown as the host address). */
    int c = tcp_connect(p1);
    assert_true(c >= 0);
    syn_want sw = {.dst = IP(15), .dport = 22, .guest_mac = MAC1};
    assert_true(run_until(f, got_syn, &sw, WAIT_MS));
    assert_memory_equal(sw.dst_mac, MAC1, 6);
    assert_int_equal(sw.src, IP(2));
    close(c);

    /* The guest moves to another address: the forward follows. */
    static const uint8_t zero[6];
    uint8_t b[64];
    size_t n = arp_frame(b, BCAST, MAC1, 1, IP(40), zero, IP(2));
    px_slirp_input(f->s, b, n);
    assert_int_equal(px_slirp_fwds(f->s, fi, 4), 1);
    assert_true(fi[0].active);
    assert_int_equal(fi[0].guest_ip, IP(40));
    c = tcp_connect(p1);
    assert_true(c >= 0);
    syn_want sw2 = {.dst = IP(40), .dport = 22, .guest_mac = MAC1};
    assert_true(run_until(f, got_syn, &sw2, WAIT_MS));
    close(c);

    /* MAC2's port is taken by someone else before MAC2's address is known:
     * the forward stays inactive, and is retried at its next DHCP ACK. */
    uint16_t p3 = free_port();
    assert_int_equal(px_slirp_fwd_add(f->s, false, p3, MAC2, 80, &em), PX_OK);
    busy = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sa.sin_port = htons(p3);
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    assert_int_equal(bind(busy, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(busy, 1), 0);
    do_dhcp(f, MAC2, IP(16));
    assert_int_equal(px_slirp_fwds(f->s, fi, 4), 2);
    assert_int_equal(fi[1].host_port, p3);
    assert_false(fi[1].active);
    assert_int_equal(fi[1].guest_ip, IP(16)); /* known, not installed */
    close(busy);
    uint8_t d[400];
    n = dhcp_frame(d, MAC2, 3, IP(16)); /* renewal */
    px_slirp_input(f->s, d, n);
    assert_int_equal(px_slirp_fwds(f->s, fi, 4), 2);
    assert_true(fi[1].active);
    assert_int_equal(px_slirp_fwd_del(f->s, false, p3), PX_OK);

    /* Removed: nothing listens any more. */
    assert_int_equal(px_slirp_fwd_del(f->s, false, p1), PX_OK);
    assert_int_equal(px_slirp_fwd_del(f->s, false, p1), PX_E_NOTFOUND);
    assert_int_equal(px_slirp_fwds(f->s, fi, 4), 0);
    assert_true(refused(p1));
}

static void test_open_errors(void **state)
{
    fx *f = *state;
    px_slirp *s = NULL;
    px_errmsg em = {{0}};
    px_slirp_opts o = {.net = NET, .prefix = 28, .name = "x", .out = on_out, .ud = f};
    assert_int_equal(px_slirp_open(&f->loop, &o, &s, &em), PX_E_CONFIG);
    assert_null(s);
    assert_non_null(strstr(em.text, "/28"));
    o.prefix = 24;
    o.net = NET + 1;
    assert_int_equal(px_slirp_open(&f->loop, &o, &s, &em), PX_E_CONFIG);
    assert_non_null(strstr(em.text, "10.0.2.0"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dhcp_lease, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_never_inside_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_arp_gateway, setup, teardown),
        cmocka_unit_test_setup_teardown(test_udp_to_host_loopback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port_forward, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
