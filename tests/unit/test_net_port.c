/* Unit tests: devices/net/port — Ethernet ports against a fake QEMU played
 * by the test: a listening UNIX stream socket (-netdev stream,server=on), a
 * bound datagram socket (-netdev dgram), and a real TAP interface read and
 * written through an AF_PACKET socket (skipped without /dev/net/tun or
 * CAP_NET_ADMIN).
 *
 * Every wait runs the loop until a condition holds or a deadline passes; a
 * 2 ms tick timer wakes the loop so conditions on the test's own sockets
 * (not watched by the loop) are checked too.
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
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/if_ether.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "devices/net/port.h"

#define WAIT_MS 10000u
#define MAXREC  4096u

/* ---- fixture ---- */

typedef struct fx {
    uv_loop_t loop;
    char dir[64];
    char qpath[128]; /* QEMU's socket */
    char npath[128]; /* the node's socket (DGRAM) */
    px_netport *p;
    int lfd, qfd; /* fake QEMU: listening socket, connection / datagram socket */
    /* what the port delivered */
    uint64_t n_rx, n_batch, n_up, n_down;
    size_t rx_len[MAXREC];
    uint8_t rx_first[MAXREC];
    uint8_t last_rx[2048];
    /* behaviour inside on_rx */
    bool cut_on_cc, close_on_dd;
    /* fake QEMU's decoder */
    px_stream_dec qdec;
    uint8_t *qbuf;
    uint64_t q_frames;
    size_t q_len[MAXREC];
    uint8_t q_first[MAXREC];
} fx;

static void tick_cb(uv_timer_t *t)
{
    (void)t; /* only wakes the loop so conditions are checked */
}

static void deadline_cb(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

typedef bool (*cond_fn)(fx *);

static bool run_until(fx *f, cond_fn cond, unsigned ms)
{
    uv_timer_t deadline, tick;
    bool expired = false;
    uv_timer_init(&f->loop, &deadline);
    uv_timer_init(&f->loop, &tick);
    deadline.data = &expired;
    uv_timer_start(&deadline, deadline_cb, ms, 0);
    uv_timer_start(&tick, tick_cb, 2, 2);
    while (!cond(f) && !expired)
        uv_run(&f->loop, UV_RUN_ONCE);
    bool ok = cond(f);
    uv_close((uv_handle_t *)&deadline, NULL);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    return ok;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    uv_loop_init(&f->loop);
    snprintf(f->dir, sizeof(f->dir), "/tmp/pxnetXXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->qpath, sizeof(f->qpath), "%s/qemu.sock", f->dir);
    snprintf(f->npath, sizeof(f->npath), "%s/node.sock", f->dir);
    f->lfd = f->qfd = -1;
    f->qbuf = malloc(PX_NET_STREAM_MAX);
    px_stream_dec_init(&f->qdec, f->qbuf);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    px_netport_close(f->p);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    /* Everything the port opened is closed: the loop has nothing left. */
    assert_int_equal(uv_loop_close(&f->loop), 0);
    if (f->lfd >= 0)
        close(f->lfd);
    if (f->qfd >= 0)
        close(f->qfd);
    unlink(f->qpath);
    unlink(f->npath);
    rmdir(f->dir);
    free(f->qbuf);
    free(f);
    return 0;
}

/* ---- port callbacks ---- */

static void on_rx(void *ud, px_netport *p, const uint8_t *fr, size_t len)
{
    fx *f = ud;
    assert_ptr_equal(p, f->p);
    if (f->n_rx < MAXREC) {
        f->rx_len[f->n_rx] = len;
        f->rx_first[f->n_rx] = fr[0];
    }
    memcpy(f->last_rx, fr, len < sizeof(f->last_rx) ? len : sizeof(f->last_rx));
    f->n_rx++;
    if (f->cut_on_cc && fr[0] == 0xcc)
        px_netport_cutoff(p, "test: frame starting 0xcc", 50);
    if (f->close_on_dd && fr[0] == 0xdd) {
        px_netport_close(p);
        f->p = NULL;
    }
}

static void on_batch(void *ud, px_netport *p)
{
    fx *f = ud;
    (void)p;
    f->n_batch++;
}

static void on_state(void *ud, px_netport *p, bool up)
{
    fx *f = ud;
    assert_ptr_equal(p, f->p);
    px_netport_stats st;
    px_netport_stats_get(p, &st);
    assert_int_equal(st.connected, up);
    if (up)
        f->n_up++;
    else
        f->n_down++;
}

static px_netport_stats stats(const fx *f)
{
    px_netport_stats st;
    px_netport_stats_get(f->p, &st);
    return st;
}

/* ---- fake QEMU, stream ---- */

static void qemu_listen(fx *f)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->qpath);
    unlink(f->qpath);
    f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(f->lfd >= 0);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(f->lfd, 1), 0);
}

static void qemu_unlisten(fx *f)
{
    close(f->lfd);
    f->lfd = -1;
    unlink(f->qpath);
}

static bool accepted(fx *f)
{
    if (f->qfd < 0 && f->lfd >= 0)
        f->qfd = accept4(f->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    return f->qfd >= 0;
}

static bool connected_and_accepted(fx *f)
{
    return accepted(f) && f->p && stats(f).connected;
}

static void q_frame(void *ud, const uint8_t *fr, size_t len)
{
    fx *f = ud;
    if (f->q_frames < MAXREC) {
        f->q_len[f->q_frames] = len;
        f->q_first[f->q_frames] = fr[0];
    }
    f->q_frames++;
}

/* Fake QEMU reads what is there (stream): decoded into q_*. */
static void qemu_read(fx *f)
{
    static uint8_t b[1 << 16];
    for (;;) {
        ssize_t n = read(f->qfd, b, sizeof(b));
        if (n <= 0)
            return;
        assert_int_equal(px_stream_dec_feed(&f->qdec, b, (size_t)n, q_frame, f, NULL), PX_OK);
    }
}

static uint64_t want_q;
static bool qemu_got(fx *f)
{
    if (f->qfd >= 0)
        qemu_read(f);
    return f->q_frames >= want_q;
}

static uint64_t want_rx;
static bool port_got(fx *f)
{
    return f->n_rx >= want_rx;
}

static bool port_down(fx *f)
{
    return !stats(f).connected;
}

static uint64_t want_connects;
static bool port_connects(fx *f)
{
    accepted(f);
    return stats(f).connects >= want_connects && stats(f).connected;
}

/* Peer closed: the read side sees EOF. */
static bool qemu_sees_eof(fx *f)
{
    uint8_t b[256];
    ssize_t n = read(f->qfd, b, sizeof(b));
    return n == 0 || (n < 0 && errno != EAGAIN);
}

static void put(uint8_t *s, size_t *at, uint8_t first, size_t len)
{
    px_stream_hdr((uint32_t)len, s + *at);
    memset(s + *at + 4, first, len);
    *at += 4 + len;
}

static px_netport_opts opts(fx *f, px_netport_kind kind)
{
    return (px_netport_opts){.kind = kind,
                             .path = f->qpath,
                             .bind_path = f->npath,
                             .name = "t/guest/eth0",
                             .id = 7,
                             .retry_ms = 10,
                             .on_rx = on_rx,
                             .on_batch = on_batch,
                             .on_state = on_state,
                             .ud = f};
}

/* ---- STREAM ---- */

/* QEMU not there yet: open succeeds, the port keeps trying and connects
 * when QEMU listens; frames both ways; QEMU restarts → reconnect. */
static void test_stream_connect_frames_reconnect(void **state)
{
    fx *f = *state;
    px_netport_opts o = opts(f, PX_NETPORT_STREAM);
    px_errmsg em = {{0}};
    assert_int_equal(px_netport_open(&f->loop, &o, &f->p, &em), PX_OK);
    assert_int_equal(px_netport_id(f->p), 7);
    assert_string_equal(px_netport_name(f->p), "t/guest/eth0");
    assert_int_equal(f->n_up, 0); /* no callback inside open */
    /* Not connected: sends are dropped and counted. */
    uint8_t fr[1514];
    memset(fr, 0x11, sizeof(fr));
    assert_int_equal(px_netport_send(f->p, fr, 60), PX_E_AGAIN);
    assert_int_equal(stats(f).tx_dropped, 1);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    qemu_listen(f);
    assert_true(run_until(f, connected_and_accepted, WAIT_MS));
    assert_int_equal(f->n_up, 1);
    assert_int_equal(stats(f).connects, 1);

    /* QEMU → node: three frames in one write, the last split off. */
    uint8_t s[3 * (4 + 1514)];
    size_t n = 0;
    put(s, &n, 0xa1, 60);
    put(s, &n, 0xa2, 1514);
    put(s, &n, 0xa3, 1); /* shorter than an Ethernet header: passed on */
    assert_int_equal(write(f->qfd, s, n - 3), (ssize_t)(n - 3));
    want_rx = 2;
    assert_true(run_until(f, port_got, WAIT_MS));
    assert_int_equal(write(f->qfd, s + n - 3, 3), 3);
    want_rx = 3;
    assert_true(run_until(f, port_got, WAIT_MS));
    assert_int_equal(f->rx_len[0], 60);
    assert_int_equal(f->rx_first[0], 0xa1);
    assert_int_equal(f->rx_len[1], 1514);
    assert_int_equal(f->rx_first[1], 0xa2);
    assert_int_equal(f->rx_len[2], 1);
    assert_int_equal(f->rx_first[2], 0xa3);
    assert_true(f->n_batch >= 2);
    assert_int_equal(stats(f).rx, 3);
    assert_int_equal(stats(f).rx_bytes, 60 + 1514 + 1);

    /* node → QEMU. */
    for (unsigned i = 0; i < 3; i++) {
        memset(fr, 0xb0 + i, sizeof(fr));
        assert_int_equal(px_netport_send(f->p, fr, i == 1 ? 1514 : 64), PX_OK);
    }
    want_q = 3;
    assert_true(run_until(f, qemu_got, WAIT_MS));
    assert_int_equal(f->q_len[0], 64);
    assert_int_equal(f->q_first[0], 0xb0);
    assert_int_equal(f->q_len[1], 1514);
    assert_int_equal(f->q_first[1], 0xb1);
    assert_int_equal(f->q_first[2], 0xb2);
    assert_int_equal(stats(f).tx, 3);
    assert_int_equal(stats(f).tx_bytes, 64 + 1514 + 64);
    /* Out of range lengths are refused. */
    assert_int_equal(px_netport_send(f->p, fr, 0), PX_E_TOOBIG);
    assert_int_equal(px_netport_send(f->p, fr, PX_NET_STREAM_MAX + 1), PX_E_TOOBIG);

    /* QEMU quits (connection and listening socket go), then comes back. */
    close(f->qfd);
    f->qfd = -1;
    qemu_unlisten(f);
    assert_true(run_until(f, port_down, WAIT_MS));
    assert_int_equal(f->n_down, 1);
    /* A few failed attempts while it is away (back-off), then it listens. */
    uint64_t c0 = stats(f).connects;
    want_connects = c0 + 1;
    assert_false(run_until(f, port_connects, 50));
    qemu_listen(f);
    want_connects = 2;
    assert_true(run_until(f, port_connects, WAIT_MS));
    assert_int_equal(stats(f).connects, 2);
    assert_int_equal(f->n_up, 2);
    /* The new connection carries frames. */
    assert_int_equal(px_netport_send(f->p, fr, 100), PX_OK);
    want_q = 4;
    assert_true(run_until(f, qemu_got, WAIT_MS));
    assert_int_equal(f->q_len[3], 100);
}

/* A length prefix over 65535: cut off, counted, reconnected after 1 s. */
static void test_stream_garbage_cutoff(void **state)
{
    fx *f = *state;
    px_netport_opts o = opts(f, PX_NETPORT_STREAM);
    qemu_listen(f);
    assert_int_equal(px_netport_open(&f->loop, &o, &f->p, NULL), PX_OK);
    assert_true(run_until(f, connected_and_accepted, WAIT_MS));
    uint8_t s[4 + 60 + 12];
    size_t n = 0;
    put(s, &n, 0xa1, 60);
    memcpy(s + n, "\x00\x01\x00\x00garbage!", 12); /* 65536 */
    n += 12;
    assert_int_equal(write(f->qfd, s, n), (ssize_t)n);
    assert_true(run_until(f, port_down, WAIT_MS));
    uint64_t t0 = uv_now(&f->loop);
    assert_int_equal(f->n_rx, 1); /* the good frame before it was delivered */
    assert_int_equal(stats(f).malformed, 1);
    assert_int_equal(stats(f).cutoffs, 1);
    assert_true(run_until(f, qemu_sees_eof, WAIT_MS));
    close(f->qfd);
    f->qfd = -1;
    want_connects = 2;
    assert_true(run_until(f, port_connects, WAIT_MS));
    uint64_t held = uv_now(&f->loop) - t0;
    assert_true(held >= PX_NETPORT_BAD_HOLD_MS - 20);
    assert_true(held < PX_NETPORT_BAD_HOLD_MS + 2000);
    /* A fresh decoder on the new connection. */
    n = 0;
    put(s, &n, 0xa4, 60);
    assert_int_equal(write(f->qfd, s, n), (ssize_t)n);
    want_rx = 2;
    assert_true(run_until(f, port_got, WAIT_MS));
    assert_int_equal(f->rx_first[1], 0xa4);
}

/* px_netport_cutoff inside on_rx: the rest of the chunk is not delivered;
 * px_netport_close inside on_rx: no callbacks afterwards. */
static void test_stream_cutoff_and_close_inside_rx(void **state)
{
    fx *f = *state;
    px_netport_opts o = opts(f, PX_NETPORT_STREAM);
    qemu_listen(f);
    assert_int_equal(px_netport_open(&f->loop, &o, &f->p, NULL), PX_OK);
    assert_true(run_until(f, connected_and_accepted, WAIT_MS));
    f->cut_on_cc = true;
    f->close_on_dd = true;
    uint8_t s[4 * 70];
    size_t n = 0;
    put(s, &n, 0xa1, 60);
    put(s, &n, 0xcc, 60);
    put(s, &n, 0xa2, 60);
    assert_int_equal(write(f->qfd, s, n), (ssize_t)n);
    want_rx = 2;
    assert_true(run_until(f, port_got, WAIT_MS));
    assert_true(run_until(f, port_down, WAIT_MS));
    assert_int_equal(stats(f).cutoffs, 1);
    assert_int_equal(stats(f).malformed, 0); /* the caller's judgement, not framing */
    assert_int_equal(f->n_rx, 2);
    assert_true(run_until(f, qemu_sees_eof, WAIT_MS));
    close(f->qfd);
    f->qfd = -1;
    want_connects = 2;
    assert_true(run_until(f, port_connects, WAIT_MS)); /* after the 50 ms hold */
    n = 0;
    put(s, &n, 0xdd, 60);
    put(s, &n, 0xa3, 60);
    assert_int_equal(write(f->qfd, s, n), (ssize_t)n);
    want_rx = 3;
    assert_true(run_until(f, port_got, WAIT_MS));
    assert_null(f->p);
    uint64_t down = f->n_down, batch = f->n_batch;
    close(f->qfd); /* would be a disconnect; nobody may hear of it */
    f->qfd = -1;
    uv_run(&f->loop, UV_RUN_NOWAIT);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->n_rx, 3);
    assert_int_equal(f->n_down, down);
    assert_int_equal(f->n_batch, batch);
}

/* QEMU does not read: frames queue up to 4 MiB, then drop; nothing blocks;
 * when QEMU reads again, every frame that was not dropped arrives. */
static void test_stream_peer_not_reading(void **state)
{
    fx *f = *state;
    px_netport_opts o = opts(f, PX_NETPORT_STREAM);
    qemu_listen(f);
    assert_int_equal(px_netport_open(&f->loop, &o, &f->p, NULL), PX_OK);
    assert_true(run_until(f, connected_and_accepted, WAIT_MS));
    uint8_t fr[1514];
    memset(fr, 0x5a, sizeof(fr));
    uint64_t sent = 0;
    uint64_t t0 = uv_hrtime();
    while (stats(f).tx_dropped < 100) {
        for (int i = 0; i < 100; i++)
            px_netport_send(f->p, fr, sizeof(fr));
        sent += 100;
        uv_run(&f->loop, UV_RUN_NOWAIT);
        assert_true(sent < 100000); /* bounded: it must start dropping */
    }
    /* Never blocked: the whole burst took well under a second. */
    assert_true(uv_hrtime() - t0 < 2000000000ull);
    px_netport_stats st = stats(f);
    assert_true(st.connected);
    assert_true(st.tx < sent);
    /* The kernel buffer plus 4 MiB queued, then drops. */
    assert_true((sent - st.tx_dropped) * (4 + sizeof(fr)) > PX_NETPORT_OUTQ_MAX);
    assert_true((sent - st.tx_dropped) * (4 + sizeof(fr)) < PX_NETPORT_OUTQ_MAX + (16u << 20));
    want_q = sent - st.tx_dropped;
    assert_true(run_until(f, qemu_got, WAIT_MS));
    assert_int_equal(f->q_frames, sent - st.tx_dropped);
    assert_int_equal(stats(f).tx, sent - st.tx_dropped);
    for (uint64_t i = 0; i < f->q_frames && i < MAXREC; i++)
        assert_int_equal(f->q_len[i], sizeof(fr));
}

/* A QEMU that accepts and closes at once (not the one it wants) is not
 * hammered: the back-off grows as for a refused connect. */
static bool accept_and_close(fx *f)
{
    for (;;) {
        int c = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            return false;
        close(c);
    }
}

static void test_stream_flapping_peer_backs_off(void **state)
{
    fx *f = *state;
    px_netport_opts o = opts(f, PX_NETPORT_STREAM);
    qemu_listen(f);
    assert_int_equal(px_netport_open(&f->loop, &o, &f->p, NULL), PX_OK);
    assert_false(run_until(f, accept_and_close, 1500));
    /* 10 ms doubling: about 8 attempts in 1.5 s; without back-off 100+. */
    assert_true(stats(f).connects >= 3);
    assert_true(stats(f).connects <= 12);
    assert_int_equal(f->n_up, stats(f).connects);
}

/* ---- DGRAM ---- */

static int qemu_dgram(fx *f)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->qpath);
    unlink(f->qpath);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void dgram_to_node(fx *f, int fd, uint8_t first, size_t len)
{
    uint8_t b[2048];
    memset(b, first, len);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->npath);
    assert_int_equal(sendto(fd, b, len, 0, (struct sockaddr *)&sa, sizeof(sa)), (ssize_t)len);
}

static bool qemu_dgram_got(fx *f)
{
    uint8_t b[2048];
    for (;;) {
        ssize_t n = recv(f->qfd, b, sizeof(b), MSG_DONTWAIT);
        if (n < 0)
            break;
        if (f->q_frames < MAXREC) {
            f->q_len[f->q_frames] = (size_t)n;
            f->q_first[f->q_frames] = b[0];
        }
        f->q_frames++;
    }
    return f->q_frames >= want_q;
}

static bool port_up(fx *f)
{
    return stats(f).connected;
}

static void test_dgram_both_ways(void **state)
{
    fx *f = *state;
    px_netport_opts o = opts(f, PX_NETPORT_DGRAM);
    /* An old file at the bind path is replaced. */
    int old = open(f->npath, O_CREAT | O_WRONLY, 0600);
    close(old);
    assert_int_equal(px_netport_open(&f->loop, &o, &f->p, NULL), PX_OK);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_false(stats(f).connected); /* QEMU's socket is not there yet */
    f->qfd = qemu_dgram(f);
    assert_true(run_until(f, port_up, WAIT_MS));
    assert_int_equal(f->n_up, 1);

    dgram_to_node(f, f->qfd, 0xa1, 60);
    dgram_to_node(f, f->qfd, 0xa2, 1514);
    want_rx = 2;
    assert_true(run_until(f, port_got, WAIT_MS));
    assert_int_equal(f->rx_len[0], 60);
    assert_int_equal(f->rx_first[1], 0xa2);
    assert_int_equal(f->rx_len[1], 1514);
    /* From someone else: ignored, counted. */
    int other = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    dgram_to_node(f, other, 0xee, 60);
    close(other);
    dgram_to_node(f, f->qfd, 0xa3, 60);
    want_rx = 3;
    assert_true(run_until(f, port_got, WAIT_MS));
    assert_int_equal(f->rx_first[2], 0xa3);
    assert_int_equal(stats(f).malformed, 1);

    uint8_t fr[1514];
    memset(fr, 0xb1, sizeof(fr));
    assert_int_equal(px_netport_send(f->p, fr, 1514), PX_OK);
    memset(fr, 0xb2, sizeof(fr));
    assert_int_equal(px_netport_send(f->p, fr, 64), PX_OK);
    want_q = 2;
    assert_true(run_until(f, qemu_dgram_got, WAIT_MS));
    assert_int_equal(f->q_len[0], 1514);
    assert_int_equal(f->q_first[0], 0xb1);
    assert_int_equal(f->q_len[1], 64);
    assert_int_equal(stats(f).tx, 2);

    /* QEMU not reading: its queue holds few datagrams; the port queues the
     * rest and sends them when QEMU's socket has room again. */
    for (unsigned i = 0; i < 500; i++)
        assert_int_equal(px_netport_send(f->p, fr, 1000), PX_OK);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_true(stats(f).tx < 2 + 500);
    want_q = 2 + 500;
    assert_true(run_until(f, qemu_dgram_got, WAIT_MS));
    assert_int_equal(stats(f).tx, 502);
    assert_int_equal(stats(f).tx_dropped, 0);

    /* QEMU restarts: a new socket at the same path. */
    close(f->qfd);
    f->qfd = qemu_dgram(f);
    assert_int_equal(px_netport_send(f->p, fr, 70), PX_OK);
    want_q = 503;
    assert_true(run_until(f, qemu_dgram_got, WAIT_MS));
    assert_int_equal(f->q_len[502], 70);
    assert_int_equal(stats(f).connects, 2);
    /* ... and reaches the node again. */
    dgram_to_node(f, f->qfd, 0xa4, 60);
    want_rx = 4;
    assert_true(run_until(f, port_got, WAIT_MS));

    /* Cut off: input ignored for the hold, then accepted again. */
    px_netport_cutoff(f->p, "test", 100);
    dgram_to_node(f, f->qfd, 0xa5, 60);
    assert_false(run_until(f, port_got, 50) && f->n_rx > 4);
    assert_int_equal(f->n_rx, 4);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    want_rx = 5;
    uint64_t t0 = uv_now(&f->loop);
    while (f->n_rx < 5 && uv_now(&f->loop) - t0 < WAIT_MS) {
        dgram_to_node(f, f->qfd, 0xa6, 60);
        run_until(f, port_got, 20);
    }
    assert_int_equal(f->rx_first[4], 0xa6);
    assert_int_equal(stats(f).cutoffs, 1);

    px_netport_close(f->p);
    f->p = NULL;
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(access(f->npath, F_OK), -1); /* the node's socket file is removed */
}

static void test_open_errors(void **state)
{
    fx *f = *state;
    px_netport_opts o = opts(f, PX_NETPORT_DGRAM);
    px_errmsg em = {{0}};
    char longp[200];
    memset(longp, 'x', sizeof(longp) - 1);
    longp[sizeof(longp) - 1] = 0;
    o.path = longp;
    assert_int_equal(px_netport_open(&f->loop, &o, &f->p, &em), PX_E_CONFIG);
    assert_null(f->p);
    assert_non_null(strstr(em.text, "longer than"));
    o = opts(f, PX_NETPORT_DGRAM);
    o.bind_path = "/nonexistent-dir/x.sock";
    assert_int_equal(px_netport_open(&f->loop, &o, &f->p, &em), PX_E_IO);
    assert_non_null(strstr(em.text, "/nonexistent-dir/x.sock"));
    o = opts(f, PX_NETPORT_TAP);
    o.ifname = "this-name-is-too-long";
    assert_int_equal(px_netport_open(&f->loop, &o, &f->p, &em), PX_E_CONFIG);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* ---- TAP ---- */

typedef struct tapfx {
    int pk; /* AF_PACKET socket on the interface */
    bool seen;
    uint8_t want;
} tapfx;
static tapfx tf;

static bool pk_got(fx *f)
{
    (void)f;
    uint8_t b[2048];
    for (;;) {
        ssize_t n = recv(tf.pk, b, sizeof(b), MSG_DONTWAIT);
        if (n < 0)
            break;
        if (n >= 15 && b[12] == 0x88 && b[13] == 0xb5 && b[14] == tf.want)
            tf.seen = true;
    }
    return tf.seen;
}

static uint8_t tap_marker;
static bool tap_rx(fx *f)
{
    return f->n_rx > 0 && f->last_rx[12] == 0x88 && f->last_rx[13] == 0xb5 &&
           f->last_rx[14] == tap_marker;
}

static void test_tap(void **state)
{
    fx *f = *state;
    char ifname[IFNAMSIZ];
    snprintf(ifname, sizeof(ifname), "pxt%u", (unsigned)getpid() % 100000u);
    px_netport_opts o = opts(f, PX_NETPORT_TAP);
    o.ifname = ifname;
    px_errmsg em = {{0}};
    px_err e = px_netport_open(&f->loop, &o, &f->p, &em);
    if (e == PX_E_UNSUPP || (e == PX_E_IO && (strstr(em.text, "not permitted") ||
                                              strstr(em.text, "ermission denied")))) {
        printf("# SKIP TAP: %s\n", em.text);
        skip();
    }
    if (e != PX_OK)
        fail_msg("%s", em.text);
    assert_true(stats(f).connected);
    unsigned idx = if_nametoindex(ifname);
    assert_true(idx > 0);
    tf.pk = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    assert_true(tf.pk >= 0);
    struct sockaddr_ll ll = {
        .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = (int)idx};
    assert_int_equal(bind(tf.pk, (struct sockaddr *)&ll, sizeof(ll)), 0);

    /* Injected on the interface → read from the TAP → on_rx. */
    uint8_t fr[64];
    memset(fr, 0, sizeof(fr));
    memset(fr, 0xff, 6);
    memcpy(fr + 6, "\x02\x00\x00\x00\x00\x01", 6);
    fr[12] = 0x88;
    fr[13] = 0xb5;
    fr[14] = tap_marker = 0x42;
    assert_int_equal(send(tf.pk, fr, sizeof(fr), 0), (ssize_t)sizeof(fr));
    assert_true(run_until(f, tap_rx, WAIT_MS));
    assert_true(stats(f).rx >= 1);

    /* Sent by the port → written to the TAP → seen on the interface. */
    fr[14] = tf.want = 0x43;
    assert_int_equal(px_netport_send(f->p, fr, sizeof(fr)), PX_OK);
    assert_true(run_until(f, pk_got, WAIT_MS));
    assert_int_equal(stats(f).tx, 1);
    close(tf.pk);
    px_netport_close(f->p);
    f->p = NULL;
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(if_nametoindex(ifname), 0); /* created by the port, gone with it */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stream_connect_frames_reconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_garbage_cutoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_cutoff_and_close_inside_rx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_peer_not_reading, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_flapping_peer_backs_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dgram_both_ways, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tap, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
