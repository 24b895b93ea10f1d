/* bench_can_drive — CAN frames through plexus endpoints, or through raw
 * ZeroMQ, with the same code on both sides (bench/can/bench_can.py runs it).
 *
 *   bench_can_drive [--zmq [--batch B] | --unix] --mode tput|lat [-n N] [--rate F]
 *                   [--period-us P] [--links K] [--dump FILE] [--pair TX RX]...
 *
 * A link is one bus: a sender socket and a receiver socket.
 *   plexus  --pair TX RX: TX is a guest controller's endpoint socket on one
 *           host, RX another guest's controller on the same bus on another
 *           host; both are connected SOCK_SEQPACKET, as QEMU's shim does, and
 *           carry one 72-byte frame per message (docs/can-shim.md).
 *   --zmq   --links K: K raw libzmq PUSH/PULL links over tcp://127.0.0.1
 *           (no CURVE). The PUSH sockets live in one ZeroMQ context, the
 *           PULL sockets in another (one I/O thread each, like two nodes).
 *           --batch 1 (default): one 72-byte message per frame; --batch B:
 *           up to B frames per message (what plexus's data plane does).
 *   --unix  --links K: K SOCK_SEQPACKET socket pairs in this process, no node:
 *           one guest-edge hop alone (plexus has two: guest -> node, node ->
 *           guest), to tell the sockets' cost from the fabric's.
 *
 * Every frame is a classic frame with an extended id (the link number) and
 * 8 data bytes: the sequence number and the low 32 bits of CLOCK_MONOTONIC
 * in nanoseconds at the send (same machine, same clock at the receiver).
 * One sender thread and one receiver thread serve every link, multiplexed
 * with zmq_poll (which polls plain descriptors too), non-blocking sends and
 * receives: a full sender socket is the back-pressure.
 *
 * Before measuring, warm-up frames (id bit 28) go out on each link every
 * 20 ms until the receiver has seen one on every link: endpoints accepted,
 * data-plane links up, ZeroMQ connected.
 *
 *   tput  N frames per link as fast as the sockets take them; frames/s from
 *         the first send to the last receive; the receiver checks each link's
 *         sequence (lost = sent - received, out_of_order = a sequence number
 *         below the next expected). --rate F: offer F frames/s per link
 *         instead (paced from the start time; a full socket still blocks).
 *   lat   N frames on the first link, one every P microseconds (absolute
 *         pacing, no flood); one-way latency at the receiver: p50/p90/p99/max;
 *         --dump FILE writes every sample, "SEQ NS" per line in send order.
 *
 * Output: one JSON line on stdout. Exit status 0 if it ran (even with loss:
 * the harness judges), 1 on a setup failure or a stall.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <linux/sockios.h>
#include <unistd.h>
#include <zmq.h>

#include "bench/bench_report.h"
#include "devices/can/frame.h"

#define MAX_LINKS     64
#define WARM_FLAG     0x10000000u
#define DRAIN_BUDGET  256            /* messages per link per receiver wake-up */
#define SEND_BURST    64             /* frames per link before the next link's turn */
#define STALL_NS      10000000000ull /* no progress for 10 s: give up */
#define DRAIN_IDLE_NS 3000000000ull  /* after the last send: wait this long for stragglers */
#define MAX_BATCH     1024

enum kind { SEQ, UNIX, ZMQ };
enum mode { TPUT, LAT };

typedef struct blink {
    uint32_t idx;
    int tx_fd, rx_fd;
    void *tx_z, *rx_z;
    /* sender */
    uint32_t sent;
    uint32_t pend_n; /* frames waiting in pend (zmq batches) */
    px_can_frame pend[MAX_BATCH];
    /* receiver */
    _Atomic bool warm;
    uint32_t expect;
    uint64_t got, ooo, warm_seen;
    uint64_t gaps, max_gap; /* runs of missing sequence numbers, the longest */
    uint64_t backlog_max;   /* most frames seen queued in the receiver's socket */
    uint64_t last_ns;
} blink;

static struct cfg {
    enum kind kind;
    enum mode mode;
    uint32_t n;
    uint32_t batch;
    uint32_t period_us;
    uint32_t n_links;
    double rate; /* tput: frames/s per link, 0 = as fast as the sockets take them */
} C = {.kind = SEQ, .mode = TPUT, .n = 100000, .batch = 1, .period_us = 1000};

static blink L[MAX_LINKS];
static void *zctx_tx, *zctx_rx;
static _Atomic bool sender_done, abort_run;
static _Atomic uint64_t first_send_ns;
static char fail_msg[256];
static uint32_t *lat_ns; /* lat: per sequence number, 0 = not received */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The first failure wins; both threads stop. */
static void fail(const char *msg)
{
    if (!fail_msg[0])
        snprintf(fail_msg, sizeof(fail_msg), "%s", msg);
    atomic_store(&abort_run, true);
}

/* ---- the two transports: the only code that differs ---- */

static int seq_connect(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "bench_can_drive: socket path too long: %s\n", path);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    /* The listening socket may still be appearing; try for 10 s. */
    for (int i = 0; i < 200; i++) {
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            return fd;
        if (errno != ENOENT && errno != ECONNREFUSED && errno != EAGAIN)
            break;
        usleep(50000);
    }
    fprintf(stderr, "bench_can_drive: connect %s: %s\n", path, strerror(errno));
    close(fd);
    return -1;
}

static int zmq_link(blink *l)
{
    int linger = 0;
    l->rx_z = zmq_socket(zctx_rx, ZMQ_PULL);
    l->tx_z = zmq_socket(zctx_tx, ZMQ_PUSH);
    if (!l->rx_z || !l->tx_z)
        return -1;
    zmq_setsockopt(l->rx_z, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(l->tx_z, ZMQ_LINGER, &linger, sizeof(linger));
    char ep[256];
    size_t len = sizeof(ep);
    if (zmq_bind(l->rx_z, "tcp://127.0.0.1:*") != 0 ||
        zmq_getsockopt(l->rx_z, ZMQ_LAST_ENDPOINT, ep, &len) != 0 || zmq_connect(l->tx_z, ep) != 0)
        return -1;
    return 0;
}

/* 1 sent, 0 would block, -1 broken. Frames are staged in pend: for SEQ one at
 * a time, for ZMQ up to C.batch per message. */
static int tx_flush(blink *l)
{
    if (!l->pend_n)
        return 1;
    ssize_t r;
    if (C.kind != ZMQ) {
        r = send(l->tx_fd, &l->pend[0], sizeof(px_can_frame), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
    } else {
        r = zmq_send(l->tx_z, l->pend, l->pend_n * sizeof(px_can_frame), ZMQ_DONTWAIT);
        if (r < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
    }
    l->pend_n = 0;
    return 1;
}

/* One message into buf; returns its length, 0 if none, -1 if broken. */
static ssize_t rx_one(blink *l, void *buf, size_t cap)
{
    ssize_t r;
    if (C.kind != ZMQ) {
        r = recv(l->rx_fd, buf, cap, MSG_DONTWAIT);
        if (r < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
        return r == 0 ? -1 : r;
    }
    r = zmq_recv(l->rx_z, buf, cap, ZMQ_DONTWAIT);
    if (r < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    return r;
}

static void pollitem(zmq_pollitem_t *it, blink *l, bool tx)
{
    memset(it, 0, sizeof(*it));
    if (C.kind != ZMQ)
        it->fd = tx ? l->tx_fd : l->rx_fd;
    else
        it->socket = tx ? l->tx_z : l->rx_z;
    it->events = tx ? ZMQ_POLLOUT : ZMQ_POLLIN;
}

/* ---- frames ---- */

static void stage(blink *l, uint32_t seq, bool warm)
{
    px_can_frame *f = &l->pend[l->pend_n++];
    memset(f, 0, sizeof(*f));
    f->can_id = PX_CAN_EFF_FLAG | (warm ? WARM_FLAG : 0) | l->idx;
    f->len = 8;
    uint32_t ts = (uint32_t)now_ns();
    memcpy(f->data, &seq, 4);
    memcpy(f->data + 4, &ts, 4);
}

/* ---- receiver ---- */

static void on_frame(const px_can_frame *f, uint64_t t)
{
    uint32_t idx = f->can_id & 0xffffu;
    if (idx >= C.n_links || f->len != 8)
        return;
    blink *l = &L[idx];
    if (f->can_id & WARM_FLAG) {
        l->warm_seen++;
        atomic_store(&l->warm, true);
        return;
    }
    uint32_t seq, ts;
    memcpy(&seq, f->data, 4);
    memcpy(&ts, f->data + 4, 4);
    if (seq < l->expect) {
        l->ooo++;
    } else {
        if (seq > l->expect) {
            l->gaps++;
            if (seq - l->expect > l->max_gap)
                l->max_gap = seq - l->expect;
        }
        l->expect = seq + 1;
    }
    l->got++;
    l->last_ns = t;
    if (lat_ns && seq >= 1 && seq <= C.n) {
        uint32_t d = (uint32_t)t - ts;
        lat_ns[seq - 1] = d ? d : 1;
    }
}

static uint64_t total_got(void)
{
    uint64_t g = 0;
    for (uint32_t i = 0; i < C.n_links; i++)
        g += L[i].got;
    return g;
}

static void *receiver(void *arg)
{
    (void)arg;
    zmq_pollitem_t items[MAX_LINKS];
    for (uint32_t i = 0; i < C.n_links; i++)
        pollitem(&items[i], &L[i], false);
    uint64_t want = C.mode == TPUT ? (uint64_t)C.n * C.n_links : C.n;
    static px_can_frame buf[MAX_BATCH];
    uint64_t got = 0, done_at = 0;
    while (!atomic_load(&abort_run)) {
        if (got >= want)
            break;
        if (atomic_load(&sender_done)) {
            uint64_t t = now_ns();
            if (!done_at)
                done_at = t;
            uint64_t last = 0;
            for (uint32_t i = 0; i < C.n_links; i++)
                if (L[i].last_ns > last)
                    last = L[i].last_ns;
            if (last < done_at)
                last = done_at;
            if (t - last > DRAIN_IDLE_NS)
                break; /* the rest is lost */
        }
        int r = zmq_poll(items, (int)C.n_links, 100);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            fail("receiver: poll failed");
            break;
        }
        for (uint32_t i = 0; i < C.n_links; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            int q = 0; /* SEQPACKET: SIOCINQ is every queued byte */
            if (C.kind != ZMQ && ioctl(L[i].rx_fd, SIOCINQ, &q) == 0 &&
                (uint64_t)q / sizeof(px_can_frame) > L[i].backlog_max)
                L[i].backlog_max = (uint64_t)q / sizeof(px_can_frame);
            for (int k = 0; k < DRAIN_BUDGET; k++) {
                ssize_t n = rx_one(&L[i], buf, sizeof(buf));
                if (n == 0)
                    break;
                if (n < 0) {
                    fail("receiver: link closed by the other side");
                    goto out;
                }
                uint64_t t = now_ns();
                for (size_t off = 0; off + sizeof(px_can_frame) <= (size_t)n;
                     off += sizeof(px_can_frame))
                    on_frame(&buf[off / sizeof(px_can_frame)], t);
            }
        }
        got = total_got();
    }
out:
    return NULL;
}

/* ---- sender ---- */

static bool all_warm(void)
{
    for (uint32_t i = 0; i < C.n_links; i++)
        if (!atomic_load(&L[i].warm))
            return false;
    return true;
}

/* Send staged frames of l, waiting (poll) while the socket is full. */
static int send_blocking(blink *l)
{
    zmq_pollitem_t it;
    pollitem(&it, l, true);
    uint64_t t0 = now_ns();
    for (;;) {
        int r = tx_flush(l);
        if (r != 0)
            return r;
        if (now_ns() - t0 > STALL_NS || atomic_load(&abort_run))
            return -1;
        zmq_poll(&it, 1, 100);
    }
}

static int warm_up(void)
{
    uint64_t t0 = now_ns();
    while (!all_warm()) {
        if (now_ns() - t0 > 20000000000ull) {
            fail("no warm-up frame came through within 20 s");
            return -1;
        }
        for (uint32_t i = 0; i < C.n_links; i++)
            if (!atomic_load(&L[i].warm)) {
                stage(&L[i], 0, true);
                if (tx_flush(&L[i]) < 0) {
                    fail("sender: link broken during warm-up");
                    return -1;
                }
                L[i].pend_n = 0; /* a full socket during warm-up: skip this one */
            }
        usleep(20000);
    }
    usleep(100000); /* let the last warm-up frames drain */
    return 0;
}

/* Frames link l may have sent by now: all of them, or with --rate those due. */
static uint32_t due(const blink *l, uint64_t t0, uint64_t t)
{
    (void)l;
    if (!C.rate)
        return C.n;
    uint64_t d = (uint64_t)((double)(t - t0) * C.rate / 1e9) + 1;
    return d < C.n ? (uint32_t)d : C.n;
}

static void sender_tput(void)
{
    zmq_pollitem_t items[MAX_LINKS];
    uint32_t batch = C.kind == ZMQ ? C.batch : 1;
    uint64_t t0 = now_ns();
    atomic_store(&first_send_ns, t0);
    uint64_t progress = t0;
    for (;;) {
        bool any_left = false, moved = false, blocked = false;
        uint64_t t = now_ns();
        for (uint32_t i = 0; i < C.n_links; i++) {
            blink *l = &L[i];
            uint32_t lim = due(l, t0, t);
            for (int k = 0; k < SEND_BURST; k++) {
                if (!l->pend_n) {
                    if (l->sent >= lim)
                        break;
                    uint32_t m = lim - l->sent < batch ? lim - l->sent : batch;
                    for (uint32_t j = 0; j < m; j++)
                        stage(l, ++l->sent, false);
                }
                int r = tx_flush(l);
                if (r < 0) {
                    fail("sender: link broken");
                    return;
                }
                if (r == 0) {
                    blocked = true;
                    break;
                }
                moved = true;
            }
            if (l->pend_n || l->sent < C.n)
                any_left = true;
        }
        if (!any_left)
            return;
        t = now_ns();
        if (moved) {
            progress = t;
            continue;
        }
        if (t - progress > STALL_NS) {
            fail("sender: no socket took a frame for 10 s (stalled)");
            return;
        }
        if (atomic_load(&abort_run))
            return;
        if (!blocked) { /* --rate: nothing due yet */
            struct timespec ts = {0, 20000};
            nanosleep(&ts, NULL);
            continue;
        }
        uint32_t np = 0;
        for (uint32_t i = 0; i < C.n_links; i++)
            if (L[i].pend_n || L[i].sent < C.n)
                pollitem(&items[np++], &L[i], true);
        zmq_poll(items, (int)np, 100);
    }
}

static void sender_lat(void)
{
    blink *l = &L[0];
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
        stage(l, s, false);
        l->sent = s;
        if (send_blocking(l) < 0) {
            fail("sender: could not send a paced frame");
            return;
        }
    }
}

/* ---- results ---- */

static void usage(void)
{
    fprintf(stderr, "usage: bench_can_drive [--zmq [--batch B] --links K | --unix --links K] "
                    "--mode tput|lat [-n N] "
                    "[--rate F] [--period-us P] [--dump FILE] [--pair TX_SOCK RX_SOCK]...\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *pairs[MAX_LINKS][2];
    uint32_t n_pairs = 0, zlinks = 1;
    const char *dump = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--zmq")) {
            C.kind = ZMQ;
        } else if (!strcmp(a, "--unix")) {
            C.kind = UNIX;
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
        } else if (!strcmp(a, "--batch") && v) {
            C.batch = (uint32_t)strtoul(v, NULL, 10);
            i++;
        } else if (!strcmp(a, "--period-us") && v) {
            C.period_us = (uint32_t)strtoul(v, NULL, 10);
            i++;
        } else if (!strcmp(a, "--rate") && v) {
            C.rate = strtod(v, NULL);
            i++;
        } else if (!strcmp(a, "--dump") && v) {
            dump = v;
            i++;
        } else if (!strcmp(a, "--links") && v) {
            zlinks = (uint32_t)strtoul(v, NULL, 10);
            i++;
        } else if (!strcmp(a, "--pair") && i + 2 < argc && n_pairs < MAX_LINKS) {
            pairs[n_pairs][0] = argv[i + 1];
            pairs[n_pairs][1] = argv[i + 2];
            n_pairs++;
            i += 2;
        } else {
            usage();
        }
    }
    if (C.n == 0 || C.n >= WARM_FLAG || C.batch == 0 || C.batch > MAX_BATCH || C.period_us == 0)
        usage();
    C.n_links = C.kind == SEQ ? n_pairs : zlinks;
    if (C.n_links == 0 || C.n_links > MAX_LINKS)
        usage();
    if (C.mode == LAT)
        C.n_links = 1; /* one idle bus */
    if (C.kind == ZMQ) {
        zctx_tx = zmq_ctx_new();
        zctx_rx = zmq_ctx_new();
    }
    for (uint32_t i = 0; i < C.n_links; i++) {
        blink *l = &L[i];
        l->idx = i;
        l->expect = 1;
        l->tx_fd = l->rx_fd = -1;
        if (C.kind == SEQ) {
            /* The receiver first: frames for an endpoint nobody is connected
             * to are dropped by the node. */
            l->rx_fd = seq_connect(pairs[i][1]);
            l->tx_fd = l->rx_fd >= 0 ? seq_connect(pairs[i][0]) : -1;
            if (l->tx_fd < 0) {
                printf("{\"error\":\"cannot connect link %u\"}\n", i);
                return 1;
            }
        } else if (C.kind == UNIX) {
            int sv[2];
            if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
                printf("{\"error\":\"socketpair: %s\"}\n", strerror(errno));
                return 1;
            }
            l->tx_fd = sv[0];
            l->rx_fd = sv[1];
        } else if (zmq_link(l) != 0) {
            printf("{\"error\":\"zmq link %u: %s\"}\n", i, zmq_strerror(errno));
            return 1;
        }
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
    double cpu_user = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
                      (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6;
    double cpu_sys = (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
                     (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;

    uint64_t sent = 0, got = 0, ooo = 0, last = 0, gaps = 0, max_gap = 0, backlog = 0;
    double min_fps = 0, sum_fps = 0;
    uint64_t t0 = atomic_load(&first_send_ns);
    for (uint32_t i = 0; i < C.n_links; i++) {
        sent += L[i].sent;
        got += L[i].got;
        ooo += L[i].ooo;
        gaps += L[i].gaps;
        if (L[i].max_gap > max_gap)
            max_gap = L[i].max_gap;
        if (L[i].backlog_max > backlog)
            backlog = L[i].backlog_max;
        if (L[i].last_ns > last)
            last = L[i].last_ns;
        double f = L[i].last_ns > t0 ? (double)L[i].got / ((double)(L[i].last_ns - t0) / 1e9) : 0;
        sum_fps += f;
        if (i == 0 || f < min_fps)
            min_fps = f;
    }
    double secs = last > t0 ? (double)(last - t0) / 1e9 : 0;
    printf("{\"transport\":\"%s\",\"batch\":%u,\"mode\":\"%s\",\"links\":%u,\"frames_per_link\":%u,"
           "\"sent\":%" PRIu64 ",\"received\":%" PRIu64 ",\"lost\":%" PRIu64
           ",\"out_of_order\":%" PRIu64 ",\"gaps\":%" PRIu64 ",\"max_gap\":%" PRIu64
           ",\"rx_backlog_max\":%" PRIu64 ",\"secs\":%.6f,\"send_secs\":%.6f,"
           "\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f",
           C.kind == SEQ    ? "plexus"
           : C.kind == UNIX ? "unix"
                            : "zmq",
           C.kind == ZMQ ? C.batch : 1, C.mode == TPUT ? "tput" : "lat", C.n_links, C.n, sent, got,
           sent > got ? sent - got : 0, ooo, gaps, max_gap, backlog, secs,
           (double)(send_end - t0) / 1e9, cpu_user, cpu_sys);
    if (C.mode == TPUT) {
        printf(",\"rate\":%.0f", C.rate);
        printf(",\"fps\":%.1f,\"fps_per_link_avg\":%.1f,\"fps_per_link_min\":%.1f",
               secs > 0 ? (double)got / secs : 0, sum_fps / C.n_links, min_fps);
    } else {
        bench_print_latency(lat_ns, C.n, C.period_us, dump); /* dump: "seq ns" in send order */
    }
    bench_print_error(fail_msg);
    printf("}\n");
    fflush(stdout);
    for (uint32_t i = 0; i < C.n_links; i++) {
        if (L[i].tx_fd >= 0)
            close(L[i].tx_fd);
        if (L[i].rx_fd >= 0)
            close(L[i].rx_fd);
        if (L[i].tx_z)
            zmq_close(L[i].tx_z);
        if (L[i].rx_z)
            zmq_close(L[i].rx_z);
    }
    if (zctx_tx) {
        zmq_ctx_term(zctx_tx);
        zmq_ctx_term(zctx_rx);
    }
    free(lat_ns);
    return fail_msg[0] ? 1 : 0;
}
