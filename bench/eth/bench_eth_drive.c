/* bench_eth_drive — Ethernet frames through a plexus segment, through
 * vde_switch, or through a bare relay, with the same code on every path
 * (bench/eth/bench_eth.py runs it).
 *
 *   bench_eth_drive --mode tput|lat [-n N] [--size BYTES] [--period-us P] [--dump FILE]
 *                   (--listen TX_SOCK RX_SOCK | --vde SWITCH_DIR [--vde-plug PATH]
 *                    | --relay | --direct)
 *
 * Two guests, tx and rx, each one NIC. The driver plays both QEMUs:
 *
 *   --listen   plexus: TX_SOCK and RX_SOCK are the guests' stream sockets
 *              (LABDIR/n<G>-<I>.sock). Like QEMU `-netdev stream,server=on`
 *              the driver listens there (a stale file is replaced) and
 *              accepts the node's connection. Framing: 4-byte big-endian
 *              length, then the frame (no FCS).
 *   --vde      vde_switch (vde2) listening in SWITCH_DIR: the driver starts
 *              two `vde_plug SWITCH_DIR` processes and talks to each over its
 *              stdin/stdout pipes. vde_plug's stream framing (libvdeplug's
 *              vdestream): 2-byte big-endian length, then the frame. Each
 *              record is written with one write(2) of at most PIPE_BUF bytes,
 *              so vde_plug never sees a record cut inside its length prefix
 *              (vdestream drops a lone trailing prefix byte).
 *   --relay    a relay thread between two socket pairs: it reads framed
 *              records (4-byte prefix) from tx's socket and writes the whole
 *              records of each read to rx's socket with one write. What any
 *              user-space relay costs at the least.
 *   --direct   one socket pair, tx writes, rx reads: the guest edge alone
 *              (latency baseline: "added" latency is relative to this).
 *
 * Every frame: destination rx's MAC, source tx's MAC, EtherType 0x88B5
 * (local experimental), then a magic, the run id (this process's pid), the
 * sequence number, flags and CLOCK_MONOTONIC ns at the send (one machine,
 * one clock at the receiver), padded to --size bytes (no FCS; 38..65535).
 *
 * Before measuring (plexus and vde): rx sends "learn" frames (source rx's
 * MAC) every 20 ms until tx has received one, so the bridge knows where rx
 * is; tx sends warm-up frames every 20 ms until rx has received one. Frames
 * arriving at tx are read and discarded throughout (QEMU would hand them to
 * the guest). Stale frames of an earlier run (another run id) are ignored.
 *
 *   tput  N frames as fast as tx's socket (pipe) takes them, one write
 *         per frame as QEMU does (--batch B: B frames per write); a full
 *         socket is the back-pressure. frames/s and Gbit/s (frame bytes * 8,
 *         no framing) from the first send to the last receive; rx checks
 *         the sequence (lost = sent - received, a frame of the wrong length
 *         included; out of order = a sequence number below the next
 *         expected).
 *   lat   N frames, one every P microseconds (absolute pacing); one-way
 *         latency at rx: p50/p90/p99/max; --dump FILE writes "SEQ NS"
 *         lines. --batch B: B frames in one write every P microseconds
 *         instead (a diagnostic: bursts of a known size).
 *
 * Output: one JSON line on stdout. Exit status 0 if it ran (even with loss:
 * the harness judges), 1 on a setup failure or a stall.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "bench/bench_report.h"
#include <unistd.h>

#define ETHERTYPE     0x88b5u
#define MAGIC         0x50584542u /* "PXEB" */
#define F_WARM        1u
#define F_LEARN       2u
#define MIN_SIZE      38u
#define MAX_SIZE      65535u
#define RBUF          (1u << 20)     /* bytes per read at the receiver */
#define RELAY_BUF     (256u << 10)   /* bytes per read in the relay */
#define STALL_NS      10000000000ull /* no progress for 10 s: give up */
#define DRAIN_IDLE_NS 3000000000ull  /* after the last send: wait this long for stragglers */
#define ACCEPT_MS     30000          /* plexus: the nodes must connect within 30 s */
#define WBUF          (256u << 10)   /* --batch: bytes of records per write at most */

enum kind { PLEXUS, VDE, RELAY, DIRECT };
enum mode { TPUT, LAT };

static const uint8_t MAC_TX[6] = {0x52, 0x54, 0x00, 0xe7, 0x00, 0x01};
static const uint8_t MAC_RX[6] = {0x52, 0x54, 0x00, 0xe7, 0x00, 0x02};

static struct cfg {
    enum kind kind;
    enum mode mode;
    uint32_t n, size, period_us, hdr; /* hdr: length prefix bytes, 4 or 2 */
    uint32_t batch;                   /* tput: frames per write */
} C = {
    .kind = PLEXUS, .mode = TPUT, .n = 100000, .size = 64, .period_us = 1000, .hdr = 4, .batch = 1};

/* Frame records being written (prefix + frame each), and how much went out. */
typedef struct wrec {
    uint8_t buf[WBUF];
    size_t len, off;
} wrec;

/* Cuts a byte stream into records; keeps the first bytes of each frame. */
typedef struct dec {
    uint8_t pre[4];
    uint32_t have_pre, need, have;
    uint8_t head[64];
} dec;

/* One guest's NIC as the driver sees it. */
typedef struct nic {
    int wfd; /* where this guest's frames go (-1: it never sends) */
    int rfd; /* where frames to it come from (-1: nothing comes) */
    int lfd; /* plexus: the listening socket */
    const char *path;
    pid_t plug; /* vde: its vde_plug */
    dec d;
    wrec w;
} nic;

static nic TX = {.wfd = -1, .rfd = -1, .lfd = -1}, RX = {.wfd = -1, .rfd = -1, .lfd = -1};
static int relay_in = -1, relay_out = -1; /* --relay: the relay thread's ends */
static uint32_t run_id;

/* receiver state (receiver thread; the sender reads the atomics) */
static _Atomic bool rx_warm, tx_learnt, sender_done, abort_run;
static _Atomic uint64_t first_send_ns;
static uint32_t expect = 1;
static uint64_t got, ooo, gaps, max_gap, backlog_max, last_ns, wrong_len, foreign, tx_frames;
static uint32_t wrong_len_last; /* the length of the last frame of a wrong length */
static uint32_t *lat_ns;
static char fail_msg[256];
static double relay_cpu_s;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void fail(const char *msg)
{
    if (!fail_msg[0])
        snprintf(fail_msg, sizeof(fail_msg), "%s", msg);
    atomic_store(&abort_run, true);
}

static void put_be(uint8_t *p, uint32_t v, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static uint32_t get_be(const uint8_t *p, uint32_t n)
{
    uint32_t v = 0;
    for (uint32_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static int set_nonblock(int fd, bool on)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -1;
    return fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

/* ---- frames ---- */

/* Append one frame record to w (prefix, header, payload, zero padding);
 * fresh: start a new write. */
static void stage(wrec *w, bool fresh, bool from_rx, uint32_t seq, uint32_t flags)
{
    if (fresh)
        w->len = w->off = 0;
    uint8_t *p = w->buf + w->len;
    put_be(p, C.size, C.hdr);
    uint8_t *f = p + C.hdr;
    memset(f + MIN_SIZE, 0, C.size - MIN_SIZE);
    memcpy(f, from_rx ? MAC_TX : MAC_RX, 6);
    memcpy(f + 6, from_rx ? MAC_RX : MAC_TX, 6);
    put_be(f + 12, ETHERTYPE, 2);
    put_be(f + 14, MAGIC, 4);
    put_be(f + 18, run_id, 4);
    put_be(f + 22, seq, 4);
    put_be(f + 26, flags, 4);
    uint64_t t = now_ns();
    memcpy(f + 30, &t, 8);
    w->len += C.hdr + C.size;
}

/* Write what is left of w. 1 done, 0 would block, -1 broken. */
static int flush(int fd, wrec *w)
{
    while (w->off < w->len) {
        ssize_t r = write(fd, w->buf + w->off, w->len - w->off);
        if (r < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
        w->off += (size_t)r;
    }
    return 1;
}

static void on_rx_frame(const uint8_t *f, uint32_t len, uint64_t t)
{
    if (len < MIN_SIZE || get_be(f + 12, 2) != ETHERTYPE || get_be(f + 14, 4) != MAGIC ||
        get_be(f + 18, 4) != run_id) {
        foreign++;
        return;
    }
    uint32_t seq = get_be(f + 22, 4), flags = get_be(f + 26, 4);
    if (flags & F_WARM) {
        atomic_store(&rx_warm, true);
        return;
    }
    if (flags)
        return;
    if (len != C.size) { /* cut short (vde_switch) or padded: not the frame that was sent */
        wrong_len++;
        wrong_len_last = len;
        return;
    }
    if (seq < expect) {
        ooo++;
    } else {
        if (seq > expect) {
            gaps++;
            if (seq - expect > max_gap)
                max_gap = seq - expect;
        }
        expect = seq + 1;
    }
    got++;
    last_ns = t;
    if (lat_ns && seq >= 1 && seq <= C.n) {
        uint64_t ts;
        memcpy(&ts, f + 30, 8);
        uint64_t d = t > ts ? t - ts : 1;
        lat_ns[seq - 1] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
    }
}

static void on_tx_frame(const uint8_t *f, uint32_t len, uint64_t t)
{
    (void)t;
    tx_frames++;
    if (len >= MIN_SIZE && get_be(f + 14, 4) == MAGIC && get_be(f + 18, 4) == run_id &&
        (get_be(f + 26, 4) & F_LEARN))
        atomic_store(&tx_learnt, true);
}

/* Feed n stream bytes to d; cb for each complete frame. -1 on a bad prefix. */
static int feed(dec *d, const uint8_t *p, size_t n, void (*cb)(const uint8_t *, uint32_t, uint64_t),
                uint64_t t)
{
    while (n) {
        if (d->have_pre < C.hdr) {
            size_t k = C.hdr - d->have_pre < n ? C.hdr - d->have_pre : n;
            memcpy(d->pre + d->have_pre, p, k);
            d->have_pre += (uint32_t)k;
            p += k;
            n -= k;
            if (d->have_pre < C.hdr)
                break;
            d->need = get_be(d->pre, C.hdr);
            d->have = 0;
            if (d->need == 0 || d->need > MAX_SIZE)
                return -1;
        }
        size_t k = d->need - d->have < n ? d->need - d->have : n;
        if (d->have < sizeof(d->head)) {
            size_t h = sizeof(d->head) - d->have < k ? sizeof(d->head) - d->have : k;
            memcpy(d->head + d->have, p, h);
        }
        d->have += (uint32_t)k;
        p += k;
        n -= k;
        if (d->have == d->need) {
            cb(d->head, d->need, t);
            d->have_pre = 0;
        }
    }
    return 0;
}

/* ---- receiver thread: rx's frames, and whatever reaches tx ---- */

static void *receiver(void *arg)
{
    (void)arg;
    static uint8_t buf[RBUF];
    struct pollfd pv[2] = {{.fd = RX.rfd, .events = POLLIN}, {.fd = TX.rfd, .events = POLLIN}};
    uint64_t want = C.n, done_at = 0;
    while (!atomic_load(&abort_run) && got < want) {
        if (atomic_load(&sender_done)) {
            uint64_t t = now_ns();
            if (!done_at)
                done_at = t;
            uint64_t last = last_ns > done_at ? last_ns : done_at;
            if (t - last > DRAIN_IDLE_NS)
                break; /* the rest is lost */
        }
        int r = poll(pv, TX.rfd >= 0 ? 2 : 1, 100);
        if (r < 0 && errno != EINTR) {
            fail("receiver: poll failed");
            break;
        }
        if (r <= 0)
            continue;
        for (int i = 0; i < 2; i++) {
            if (pv[i].fd < 0 || !(pv[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            nic *c = i == 0 ? &RX : &TX;
            if (i == 0) {
                int q = 0; /* bytes queued for rx: the guest's backlog */
                if (ioctl(c->rfd, FIONREAD, &q) == 0 &&
                    (uint64_t)q / (C.hdr + C.size) > backlog_max)
                    backlog_max = (uint64_t)q / (C.hdr + C.size);
            }
            for (int k = 0; k < 16; k++) {
                ssize_t n = read(c->rfd, buf, sizeof(buf));
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                    break;
                if (n <= 0) {
                    fail(i == 0 ? "receiver: rx's connection closed by the other side"
                                : "receiver: tx's connection closed by the other side");
                    return NULL;
                }
                if (feed(&c->d, buf, (size_t)n, i == 0 ? on_rx_frame : on_tx_frame, now_ns()) < 0) {
                    fail("receiver: bad length prefix in the stream");
                    return NULL;
                }
                if ((size_t)n < sizeof(buf))
                    break;
            }
        }
    }
    return NULL;
}

/* ---- the relay (--relay) ---- */

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t r = write(fd, p, n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static void *relay(void *arg)
{
    (void)arg;
    static uint8_t buf[RELAY_BUF + 4 + MAX_SIZE];
    size_t have = 0;
    for (;;) {
        ssize_t r = read(relay_in, buf + have, sizeof(buf) - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        have += (size_t)r;
        size_t whole = 0; /* bytes of complete records at the start of buf */
        while (have - whole >= 4) {
            size_t len = get_be(buf + whole, 4);
            if (len == 0 || len > MAX_SIZE)
                goto out; /* a relay would cut the stream */
            if (have - whole < 4 + len)
                break;
            whole += 4 + len;
        }
        if (whole && write_all(relay_out, buf, whole) < 0)
            break;
        memmove(buf, buf + whole, have - whole);
        have -= whole;
    }
out:;
    struct timespec ts;
    clockid_t cid;
    if (pthread_getcpuclockid(pthread_self(), &cid) == 0 && clock_gettime(cid, &ts) == 0)
        relay_cpu_s = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    close(relay_out);
    relay_out = -1;
    return NULL;
}

/* ---- setup ---- */

static int listen_at(nic *c)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(c->path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "bench_eth_drive: socket path too long: %s\n", c->path);
        return -1;
    }
    memcpy(sa.sun_path, c->path, strlen(c->path) + 1);
    c->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->lfd < 0)
        return -1;
    unlink(c->path); /* a stale socket of an earlier run */
    if (bind(c->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(c->lfd, 1) != 0) {
        fprintf(stderr, "bench_eth_drive: listen %s: %s\n", c->path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Wait until the node has connected to both listening sockets. */
static int accept_both(void)
{
    uint64_t t0 = now_ns();
    while (TX.wfd < 0 || RX.wfd < 0) {
        struct pollfd pv[2] = {{.fd = TX.wfd < 0 ? TX.lfd : -1, .events = POLLIN},
                               {.fd = RX.wfd < 0 ? RX.lfd : -1, .events = POLLIN}};
        int left = ACCEPT_MS - (int)((now_ns() - t0) / 1000000);
        if (left <= 0)
            return -1;
        if (poll(pv, 2, left) < 0 && errno != EINTR)
            return -1;
        for (int i = 0; i < 2; i++) {
            if (!(pv[i].revents & POLLIN))
                continue;
            nic *c = i == 0 ? &TX : &RX;
            int fd = accept4(c->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd >= 0)
                c->wfd = c->rfd = fd;
        }
    }
    return 0;
}

static int spawn_plug(nic *c, const char *plug, const char *dir)
{
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(in[0], STDIN_FILENO);
        dup2(out[1], STDOUT_FILENO);
        execlp(plug, plug, dir, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    c->plug = pid;
    c->wfd = in[1];
    c->rfd = out[0];
    set_nonblock(c->wfd, true);
    set_nonblock(c->rfd, true);
    return 0;
}

/* ---- sender ---- */

/* Send w on c, waiting (poll) while the socket is full. */
static int send_blocking(nic *c)
{
    uint64_t t0 = now_ns();
    for (;;) {
        int r = flush(c->wfd, &c->w);
        if (r != 0)
            return r;
        if (now_ns() - t0 > STALL_NS || atomic_load(&abort_run))
            return -1;
        struct pollfd pv = {.fd = c->wfd, .events = POLLOUT};
        poll(&pv, 1, 100);
    }
}

static int warm_up(void)
{
    bool learn = C.kind == PLEXUS || C.kind == VDE;
    uint64_t t0 = now_ns();
    while (!atomic_load(&rx_warm) || (learn && !atomic_load(&tx_learnt))) {
        if (atomic_load(&abort_run))
            return -1;
        if (now_ns() - t0 > 20000000000ull) {
            fail(atomic_load(&rx_warm) ? "no learn frame reached tx within 20 s"
                                       : "no warm-up frame reached rx within 20 s");
            return -1;
        }
        if (learn && !atomic_load(&tx_learnt)) {
            stage(&RX.w, true, true, 0, F_LEARN);
            if (flush(RX.wfd, &RX.w) < 0) {
                fail("rx's link broke during warm-up");
                return -1;
            }
        }
        stage(&TX.w, true, false, 0, F_WARM);
        if (flush(TX.wfd, &TX.w) < 0) {
            fail("tx's link broke during warm-up");
            return -1;
        }
        /* A record cut short by a full socket must still go out whole. */
        if (send_blocking(&TX) < 0 || (learn && send_blocking(&RX) < 0)) {
            fail("a link stalled during warm-up");
            return -1;
        }
        usleep(20000);
    }
    usleep(100000); /* let the last warm-up frames drain */
    return 0;
}

static uint32_t sent;

static void sender_tput(void)
{
    uint64_t t0 = now_ns(), progress = t0;
    atomic_store(&first_send_ns, t0);
    for (;;) {
        if (TX.w.off >= TX.w.len) {
            if (sent >= C.n)
                return;
            uint32_t m = C.n - sent < C.batch ? C.n - sent : C.batch;
            for (uint32_t j = 0; j < m; j++)
                stage(&TX.w, j == 0, false, ++sent, 0);
        }
        int r = flush(TX.wfd, &TX.w);
        if (r < 0) {
            fail("sender: link broken");
            return;
        }
        if (r > 0) {
            if (!(sent & 255))
                progress = now_ns();
            continue;
        }
        uint64_t t = now_ns();
        if (TX.w.off)
            progress = t; /* part of the record went */
        if (t - progress > STALL_NS) {
            fail("sender: the socket took nothing for 10 s (stalled)");
            return;
        }
        if (atomic_load(&abort_run))
            return;
        struct pollfd pv = {.fd = TX.wfd, .events = POLLOUT};
        poll(&pv, 1, 100);
    }
}

static void sender_lat(void)
{
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    atomic_store(&first_send_ns, now_ns());
    for (uint32_t s = 1; s <= C.n && !atomic_load(&abort_run); s++) {
        next.tv_nsec += (long)C.period_us * 1000;
        while (next.tv_nsec >= 1000000000) {
            next.tv_nsec -= 1000000000;
            next.tv_sec++;
        }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
        stage(&TX.w, true, false, s, 0);
        for (uint32_t j = 1; j < C.batch && s < C.n; j++) /* --batch: a burst per period */
            stage(&TX.w, false, false, ++s, 0);
        sent = s;
        if (send_blocking(&TX) < 0) {
            fail("sender: could not send a paced frame");
            return;
        }
    }
}

/* ---- results ---- */

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_eth_drive --mode tput|lat [-n N] [--size BYTES] "
                    "[--batch B] [--period-us P] [--dump FILE]\n"
                    "       (--listen TX_SOCK RX_SOCK | --vde SWITCH_DIR [--vde-plug PATH] "
                    "| --relay | --direct)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *dump = NULL, *vde_dir = NULL, *plug = "vde_plug";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--listen") && i + 2 < argc) {
            C.kind = PLEXUS;
            TX.path = argv[i + 1];
            RX.path = argv[i + 2];
            i += 2;
        } else if (!strcmp(a, "--vde") && v) {
            C.kind = VDE;
            vde_dir = v;
            i++;
        } else if (!strcmp(a, "--vde-plug") && v) {
            plug = v;
            i++;
        } else if (!strcmp(a, "--relay")) {
            C.kind = RELAY;
        } else if (!strcmp(a, "--direct")) {
            C.kind = DIRECT;
        } else if (!strcmp(a, "--mode") && v) {
            if (!strcmp(v, "tput"))
                C.mode = TPUT;
            else if (!strcmp(v, "lat"))
                C.mode = LAT;
            else
                usage();
            i++;
        } else if (!strcmp(a, "-n") && v) {
            C.n = (uint32_t)strtoul(v, NULL, 10);
            i++;
        } else if (!strcmp(a, "--size") && v) {
            C.size = (uint32_t)strtoul(v, NULL, 10);
            i++;
        } else if (!strcmp(a, "--batch") && v) {
            C.batch = (uint32_t)strtoul(v, NULL, 10);
            i++;
        } else if (!strcmp(a, "--period-us") && v) {
            C.period_us = (uint32_t)strtoul(v, NULL, 10);
            i++;
        } else if (!strcmp(a, "--dump") && v) {
            dump = v;
            i++;
        } else {
            usage();
        }
    }
    if (C.n == 0 || C.n >= INT32_MAX || C.size < MIN_SIZE || C.size > MAX_SIZE ||
        C.period_us == 0 || C.batch == 0 || (C.kind == PLEXUS && !TX.path))
        usage();
    C.hdr = C.kind == VDE ? 2 : 4;
    /* Whole records per write, within WBUF (vde: within PIPE_BUF, see above). */
    uint32_t cap = (C.kind == VDE ? PIPE_BUF : WBUF) / (C.hdr + C.size);
    if (C.batch > cap)
        C.batch = cap ? cap : 1;
    if (C.kind == VDE && C.hdr + C.size > PIPE_BUF) {
        printf("{\"error\":\"vde: frames over %d bytes are not written atomically\"}\n",
               PIPE_BUF - 2);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    run_id = (uint32_t)getpid();

    pthread_t relay_t;
    bool relay_on = false;
    if (C.kind == PLEXUS) {
        if (listen_at(&TX) != 0 || listen_at(&RX) != 0) {
            printf("{\"error\":\"cannot listen\"}\n");
            return 1;
        }
        if (accept_both() != 0) {
            printf("{\"error\":\"the node did not connect to %s within %d s\"}\n",
                   TX.wfd < 0 ? TX.path : RX.path, ACCEPT_MS / 1000);
            return 1;
        }
    } else if (C.kind == VDE) {
        if (spawn_plug(&TX, plug, vde_dir) != 0 || spawn_plug(&RX, plug, vde_dir) != 0) {
            printf("{\"error\":\"cannot start %s: %s\"}\n", plug, strerror(errno));
            return 1;
        }
    } else {
        int a[2], b[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a) != 0 ||
            (C.kind == RELAY && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b) != 0)) {
            printf("{\"error\":\"socketpair: %s\"}\n", strerror(errno));
            return 1;
        }
        TX.wfd = a[0];
        set_nonblock(TX.wfd, true);
        if (C.kind == DIRECT) {
            RX.rfd = a[1];
        } else {
            relay_in = a[1];
            relay_out = b[0];
            RX.rfd = b[1];
            relay_on = pthread_create(&relay_t, NULL, relay, NULL) == 0;
        }
        set_nonblock(RX.rfd, true);
    }
    if (C.mode == LAT) {
        lat_ns = calloc(C.n, sizeof(*lat_ns));
        if (!lat_ns)
            return 1;
    }
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    pthread_t rt;
    pthread_create(&rt, NULL, receiver, NULL);
    if (warm_up() == 0) {
        if (C.mode == TPUT)
            sender_tput();
        else
            sender_lat();
    }
    uint64_t send_end = now_ns();
    atomic_store(&sender_done, true);
    pthread_join(rt, NULL);
    getrusage(RUSAGE_SELF, &ru1);
    int q = 0;
    uint64_t left_in_rx = 0; /* bytes still queued for rx at the end (a stall) */
    if (RX.rfd >= 0 && ioctl(RX.rfd, FIONREAD, &q) == 0)
        left_in_rx = (uint64_t)q;

    /* Tear down: the relay and the plugs end when their input closes. */
    close(TX.wfd);
    if (TX.rfd >= 0 && TX.rfd != TX.wfd)
        close(TX.rfd);
    if (RX.wfd >= 0 && RX.wfd != RX.rfd)
        close(RX.wfd);
    if (relay_on) {
        close(RX.rfd); /* unblocks a relay stuck in write */
        RX.rfd = -1;
        pthread_join(relay_t, NULL);
        close(relay_in);
    }
    if (RX.rfd >= 0)
        close(RX.rfd);
    double plug_cpu = 0;
    for (int i = 0; i < 2; i++) {
        nic *c = i ? &RX : &TX;
        if (!c->plug)
            continue;
        struct rusage ru;
        int st;
        if (wait4(c->plug, &st, 0, &ru) == c->plug)
            plug_cpu += tv_s(ru.ru_utime) + tv_s(ru.ru_stime);
    }
    if (C.kind == PLEXUS) {
        close(TX.lfd);
        close(RX.lfd);
        unlink(TX.path);
        unlink(RX.path);
    }

    double cpu_user = tv_s(ru1.ru_utime) - tv_s(ru0.ru_utime);
    double cpu_sys = tv_s(ru1.ru_stime) - tv_s(ru0.ru_stime);
    uint64_t t0 = atomic_load(&first_send_ns);
    double secs = last_ns > t0 ? (double)(last_ns - t0) / 1e9 : 0;
    double send_secs = (double)(send_end - t0) / 1e9;
    static const char *names[] = {"plexus", "vde", "relay", "direct"};
    printf("{\"transport\":\"%s\",\"mode\":\"%s\",\"size\":%u,\"batch\":%u,\"frames\":%u,"
           "\"sent\":%u,"
           "\"received\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"out_of_order\":%" PRIu64
           ",\"gaps\":%" PRIu64 ",\"max_gap\":%" PRIu64 ",\"wrong_len\":%" PRIu64
           ",\"wrong_len_last\":%u,\"foreign\":%" PRIu64 ",\"to_tx\":%" PRIu64
           ",\"rx_backlog_max\":%" PRIu64 ",\"rx_left_bytes\":%" PRIu64
           ",\"secs\":%.6f,\"send_secs\":%.6f,"
           "\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,\"relay_cpu_s\":%.3f,\"plug_cpu_s\":%.3f",
           names[C.kind], C.mode == TPUT ? "tput" : "lat", C.size, C.batch, C.n, sent, got,
           sent > got ? sent - got : 0, ooo, gaps, max_gap, wrong_len, wrong_len_last, foreign,
           tx_frames, backlog_max, left_in_rx, secs, send_secs, cpu_user, cpu_sys, relay_cpu_s,
           plug_cpu);
    if (C.mode == TPUT) {
        printf(",\"fps\":%.1f,\"gbps\":%.4f,\"send_fps\":%.1f", secs > 0 ? (double)got / secs : 0,
               secs > 0 ? (double)got * C.size * 8 / secs / 1e9 : 0,
               send_secs > 0 ? sent / send_secs : 0);
    } else {
        bench_print_latency(lat_ns, C.n, C.period_us, dump); /* dump: "seq ns" in send order */
    }
    bench_print_error(fail_msg);
    printf("}\n");
    fflush(stdout);
    free(lat_ns);
    return fail_msg[0] ? 1 : 0;
}
