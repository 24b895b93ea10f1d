/* bench_ivshmem_drive — one-way doorbell latency, alone or after changed
 * contents, through plexus ivshmem regions or a bare eventfd or socket
 * pair, with the same harness on every path (bench/ivshmem/bench_ivshmem.py
 * runs it).
 *
 *   bench_ivshmem_drive [-n N] [--warmup W] [--period-us P] [--bytes B]
 *                       [--timeout-ms T] [--dump FILE]
 *                       (--ivshmem SOCK1 SOCK2 [--vectors V] | --eventfd | --socket | --zmq)
 *
 * Two peers in one process, a sender (the main thread) and a receiver (a
 * thread of its own, as a guest's vCPU would be):
 *
 *   --ivshmem  plexus: each joins the region as a host program
 *              (devices/ivshmem/client.h), the sender on SOCK1, the receiver
 *              on SOCK2: one node's socket twice (the doorbell is the
 *              receiver's own eventfd, written directly), or two nodes'
 *              (it crosses the data plane, with the sender's changes).
 *              --vectors: the region's vector count, so the end of the
 *              greeting is certain (px_ivc_open_n; default 0: the client
 *              works it out).
 *   --eventfd  the peer: the receiver polls an eventfd the sender writes;
 *              one buffer for both (shared memory on one host, no copy).
 *   --socket   the peer for contents: the sender writes B bytes (1 without
 *              --bytes) into a UNIX stream socket pair, the receiver reads
 *              them into its own buffer: what moving B bytes between two
 *              processes of one host costs at the least.
 *   --zmq      the peer across hosts: the sender sends the B bytes (1
 *              without --bytes) as one message over a libzmq PUSH/PULL link
 *              on tcp://127.0.0.1 (no CURVE, no network namespaces; one
 *              context, so one I/O thread, per side), the receiver receives
 *              it into its own buffer: one message between two nodes' data
 *              planes at the least.
 *
 * Each round (W warm-up rounds first, not counted, then N), one every P
 * microseconds (absolute pacing): the sender writes B bytes at offset 0 of
 * its memory, all of them changed (round r writes r % 251 + 1), reads
 * CLOCK_MONOTONIC and rings; the receiver wakes, reads the clock, and
 * checks that the first and last of the B bytes in its memory hold the
 * round's value (release consistency: the contents come before the
 * doorbell; a round that fails is `stale`). Latency is from just before the
 * ring to the receiver's wake-up: p50/p90/p99/max; --dump FILE writes
 * "ROUND NS" lines. The sender waits for the receiver's acknowledgement
 * (a pipe) before the next round, so rounds never overlap; after T ms
 * (default 1000) without it the sender moves on, and a round the receiver
 * never saw is `lost`. `stale` counts every round, warm-up included.
 *
 * Output: one JSON line on stdout. Exit status 0 if it ran (even with loss
 * or stale rounds: the harness judges), 1 on a setup failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "bench/bench_report.h"
#include "devices/ivshmem/client.h"

#define OPEN_MS    10000 /* a region socket must greet within this */
#define KNOWN_MS   10000 /* the sender must learn of the receiver within this */
#define RECV_POLL  200   /* ms: the receiver looks at `stop` this often */
#define MAX_ROUNDS 1000000u
#define MAX_BYTES  (1u << 30)
#define PEER_MEM   (64u << 20) /* the peers' buffers: --bytes up to this */

enum path { IVSHMEM, EVENTFD, SOCKET, ZMQ };
static const char *const path_names[] = {"ivshmem", "eventfd", "socket", "zmq"};

typedef struct bench {
    enum path path;
    uint32_t n, warmup, period_us, bytes, timeout_ms, vectors;
    const char *sock1, *sock2, *dump;

    /* the sender's and the receiver's view of the memory */
    volatile uint8_t *tx_mem, *rx_mem;
    size_t mem_size;

    px_ivc *c1, *c2; /* IVSHMEM: sender, receiver */
    uint16_t id2;
    int efd;       /* EVENTFD: the doorbell */
    int sp[2];     /* SOCKET: sender's end, receiver's end */
    uint8_t *sbuf; /* SOCKET, ZMQ: the receiver's buffer */
    void *zctx[2]; /* ZMQ: sender's and receiver's contexts */
    void *zpush, *zpull;
    int ack[2]; /* pipe, receiver -> sender: the round it saw (uint32) */

    _Atomic uint64_t t0;  /* ns, just before the current round's ring */
    _Atomic uint32_t cur; /* the current round */
    _Atomic bool stop;
    _Atomic bool failed; /* err is set */
    uint32_t *lat;       /* ns per counted round, 0 = lost */
    uint32_t stale;      /* receiver's count */
    char err[512];
} bench;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_ivshmem_drive [-n N] [--warmup W] [--period-us P] [--bytes B]\n"
            "         [--timeout-ms T] [--dump FILE]\n"
            "         (--ivshmem SOCK1 SOCK2 [--vectors V] | --eventfd | --socket | --zmq)\n");
    exit(2);
}

static uint32_t num(const char *what, const char *s, uint32_t min, uint32_t max)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < min || v > max) {
        fprintf(stderr, "bench_ivshmem_drive: %s: '%s' is not in %u..%u\n", what, s, min, max);
        exit(2);
    }
    return (uint32_t)v;
}

static uint8_t round_value(uint32_t r)
{
    return (uint8_t)(r % 251 + 1);
}

/* The sender's ring: 0, or -1 with b->err set. */
static int ring(bench *b)
{
    switch (b->path) {
    case IVSHMEM: {
        px_err e = px_ivc_ring(b->c1, b->id2, 0);
        if (e) {
            snprintf(b->err, sizeof(b->err), "ring peer %u: %s", b->id2, px_strerror(e));
            return -1;
        }
        return 0;
    }
    case EVENTFD: {
        uint64_t one = 1;
        if (write(b->efd, &one, 8) != 8) {
            snprintf(b->err, sizeof(b->err), "eventfd write: %s", strerror(errno));
            return -1;
        }
        return 0;
    }
    case ZMQ:
        if (zmq_send(b->zpush, (const uint8_t *)b->tx_mem, b->bytes ? b->bytes : 1, 0) < 0) {
            snprintf(b->err, sizeof(b->err), "zmq_send: %s", zmq_strerror(errno));
            return -1;
        }
        return 0;
    case SOCKET: {
        size_t len = b->bytes ? b->bytes : 1, off = 0;
        while (off < len) {
            ssize_t w = write(b->sp[0], (const uint8_t *)b->tx_mem + off, len - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                snprintf(b->err, sizeof(b->err), "socket write: %s", strerror(errno));
                return -1;
            }
            off += (size_t)w;
        }
        return 0;
    }
    }
    return -1;
}

/* The receiver's wait: 0 a doorbell, 1 nothing within timeout_ms, -1 a
 * failure (b->err). */
static int await(bench *b, int timeout_ms)
{
    switch (b->path) {
    case IVSHMEM: {
        uint32_t v;
        px_errmsg em = {{0}};
        px_err e = px_ivc_wait(b->c2, timeout_ms, &v, &em);
        if (e == PX_E_TIMEOUT)
            return 1;
        if (e) {
            snprintf(b->err, sizeof(b->err), "receiver: %s: %s", px_strerror(e), em.text);
            return -1;
        }
        return 0;
    }
    case EVENTFD: {
        struct pollfd p = {b->efd, POLLIN, 0};
        int r = poll(&p, 1, timeout_ms);
        if (r == 0 || (r < 0 && errno == EINTR))
            return 1;
        uint64_t x;
        if (r < 0 || read(b->efd, &x, 8) != 8) {
            snprintf(b->err, sizeof(b->err), "eventfd: %s", strerror(errno));
            return -1;
        }
        return 0;
    }
    case ZMQ: {
        zmq_pollitem_t it = {b->zpull, 0, ZMQ_POLLIN, 0};
        int r = zmq_poll(&it, 1, timeout_ms);
        if (r == 0 || (r < 0 && errno == EINTR))
            return 1;
        if (r < 0 || zmq_recv(b->zpull, b->sbuf, PEER_MEM, ZMQ_DONTWAIT) < 0) {
            snprintf(b->err, sizeof(b->err), "zmq: %s", zmq_strerror(errno));
            return -1;
        }
        return 0;
    }
    case SOCKET: {
        size_t len = b->bytes ? b->bytes : 1, off = 0;
        struct pollfd p = {b->sp[1], POLLIN, 0};
        int r = poll(&p, 1, timeout_ms);
        if (r == 0 || (r < 0 && errno == EINTR))
            return 1;
        while (off < len) {
            ssize_t got = read(b->sp[1], b->sbuf + off, len - off);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0) {
                snprintf(b->err, sizeof(b->err), "socket read: %s",
                         got ? strerror(errno) : "end of stream");
                return -1;
            }
            off += (size_t)got;
        }
        return 0;
    }
    }
    return -1;
}

static void *receiver(void *arg)
{
    bench *b = arg;
    while (!atomic_load(&b->stop)) {
        int r = await(b, RECV_POLL);
        if (r == 1)
            continue;
        uint64_t t1 = now_ns();
        if (r < 0) {
            atomic_store(&b->failed, true);
            break;
        }
        uint32_t i = atomic_load_explicit(&b->cur, memory_order_acquire);
        uint64_t t0 = atomic_load_explicit(&b->t0, memory_order_acquire);
        if (b->bytes) {
            uint8_t want = round_value(i);
            if (b->rx_mem[0] != want || b->rx_mem[b->bytes - 1] != want)
                b->stale++;
        }
        if (i >= b->warmup && i - b->warmup < b->n) {
            uint64_t d = t1 > t0 ? t1 - t0 : 1;
            b->lat[i - b->warmup] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
        }
        if (write(b->ack[1], &i, sizeof(i)) != (ssize_t)sizeof(i)) {
            snprintf(b->err, sizeof(b->err), "ack: %s", strerror(errno));
            atomic_store(&b->failed, true);
            break;
        }
    }
    return NULL;
}

/* IVSHMEM: both clients joined, and the sender knows the receiver's ID. */
static int setup_ivshmem(bench *b)
{
    px_errmsg em = {{0}};
    px_err e;
    if ((e = px_ivc_open_n(b->sock1, b->vectors, OPEN_MS, &b->c1, &em))) {
        snprintf(b->err, sizeof(b->err), "%s: %s: %s", b->sock1, px_strerror(e), em.text);
        return -1;
    }
    if ((e = px_ivc_open_n(b->sock2, b->vectors, OPEN_MS, &b->c2, &em))) {
        snprintf(b->err, sizeof(b->err), "%s: %s: %s", b->sock2, px_strerror(e), em.text);
        return -1;
    }
    b->id2 = px_ivc_id(b->c2);
    uint64_t deadline = now_ns() + (uint64_t)KNOWN_MS * 1000000u;
    for (;;) {
        uint16_t ids[256];
        uint32_t n = px_ivc_peers(b->c1, ids, 256);
        for (uint32_t i = 0; i < n && i < 256; i++)
            if (ids[i] == b->id2)
                goto known;
        uint64_t t = now_ns();
        if (t >= deadline) {
            snprintf(b->err, sizeof(b->err),
                     "peer %u (on %s) never joined the view of peer %u (on %s)", b->id2, b->sock2,
                     px_ivc_id(b->c1), b->sock1);
            return -1;
        }
        struct pollfd p = {px_ivc_fd(b->c1), POLLIN, 0};
        if (poll(&p, 1, (int)((deadline - t) / 1000000u) + 1) > 0 &&
            (e = px_ivc_process(b->c1, &em))) {
            snprintf(b->err, sizeof(b->err), "%s: %s: %s", b->sock1, px_strerror(e), em.text);
            return -1;
        }
    }
known:;
    size_t s1, s2;
    b->tx_mem = px_ivc_mem(b->c1, &s1);
    b->rx_mem = px_ivc_mem(b->c2, &s2);
    b->mem_size = s1 < s2 ? s1 : s2;
    return 0;
}

static int setup_zmq(bench *b)
{
    char ep[128];
    size_t len = sizeof(ep);
    int linger = 0;
    if (!(b->zctx[0] = zmq_ctx_new()) || !(b->zctx[1] = zmq_ctx_new()) ||
        !(b->zpush = zmq_socket(b->zctx[0], ZMQ_PUSH)) ||
        !(b->zpull = zmq_socket(b->zctx[1], ZMQ_PULL)) ||
        zmq_setsockopt(b->zpush, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
        zmq_setsockopt(b->zpull, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
        zmq_bind(b->zpull, "tcp://127.0.0.1:*") != 0 ||
        zmq_getsockopt(b->zpull, ZMQ_LAST_ENDPOINT, ep, &len) != 0 ||
        zmq_connect(b->zpush, ep) != 0) {
        snprintf(b->err, sizeof(b->err), "zmq link: %s", zmq_strerror(errno));
        return -1;
    }
    return 0;
}

static int setup(bench *b)
{
    if (pipe2(b->ack, O_CLOEXEC) != 0) {
        snprintf(b->err, sizeof(b->err), "pipe: %s", strerror(errno));
        return -1;
    }
    if (b->path == IVSHMEM)
        return setup_ivshmem(b);
    void *m = mmap(NULL, PEER_MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        snprintf(b->err, sizeof(b->err), "mmap: %s", strerror(errno));
        return -1;
    }
    b->tx_mem = b->rx_mem = m;
    b->mem_size = PEER_MEM;
    if (b->path == EVENTFD) {
        if ((b->efd = eventfd(0, EFD_CLOEXEC)) < 0) {
            snprintf(b->err, sizeof(b->err), "eventfd: %s", strerror(errno));
            return -1;
        }
        return 0;
    }
    if (!(b->sbuf = malloc(PEER_MEM))) {
        snprintf(b->err, sizeof(b->err), "out of memory");
        return -1;
    }
    b->rx_mem = b->sbuf;
    if (b->path == ZMQ)
        return setup_zmq(b);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b->sp) != 0) {
        snprintf(b->err, sizeof(b->err), "socketpair: %s", strerror(errno));
        return -1;
    }
    b->rx_mem = b->sbuf;
    return 0;
}

static void sleep_until(uint64_t t)
{
    struct timespec ts = {(time_t)(t / 1000000000u), (long)(t % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* Waits up to timeout_ms for the receiver to say it saw round i
 * (acknowledgements of earlier, late rounds are skipped): 0 or -1. */
static int acked(bench *b, uint32_t i)
{
    uint64_t deadline = now_ns() + (uint64_t)b->timeout_ms * 1000000u;
    for (;;) {
        uint64_t t = now_ns();
        if (t >= deadline)
            return -1;
        struct pollfd p = {b->ack[0], POLLIN, 0};
        int r = poll(&p, 1, (int)((deadline - t) / 1000000u) + 1);
        uint32_t got;
        if (r > 0 && read(b->ack[0], &got, sizeof(got)) == (ssize_t)sizeof(got) && got == i)
            return 0;
        if (atomic_load(&b->failed))
            return -1;
    }
}

/* The sender. It moves on after timeout_ms without an acknowledgement;
 * what the receiver never saw stays 0 in lat. */
static void run(bench *b)
{
    uint32_t total = b->warmup + b->n;
    uint64_t start = now_ns() + 1000000u;
    for (uint32_t i = 0; i < total && !atomic_load(&b->failed); i++) {
        sleep_until(start + (uint64_t)i * b->period_us * 1000u);
        if (b->bytes)
            memset((uint8_t *)b->tx_mem, round_value(i), b->bytes);
        atomic_store_explicit(&b->cur, i, memory_order_release);
        atomic_store_explicit(&b->t0, now_ns(), memory_order_release);
        if (ring(b) < 0)
            break;
        if (acked(b, i) < 0)
            /* pacing resumes from here: a lost round must not make a burst */
            start = now_ns() - (uint64_t)i * b->period_us * 1000u;
    }
}

int main(int argc, char **argv)
{
    static bench b = {.n = 2000,
                      .warmup = 50,
                      .period_us = 1000,
                      .timeout_ms = 1000,
                      .efd = -1,
                      .sp = {-1, -1},
                      .ack = {-1, -1}};
    int have_path = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--ivshmem") == 0 && i + 2 < argc) {
            b.path = IVSHMEM;
            b.sock1 = argv[++i];
            b.sock2 = argv[++i];
            have_path++;
        } else if (strcmp(a, "--eventfd") == 0) {
            b.path = EVENTFD;
            have_path++;
        } else if (strcmp(a, "--socket") == 0) {
            b.path = SOCKET;
            have_path++;
        } else if (strcmp(a, "--zmq") == 0) {
            b.path = ZMQ;
            have_path++;
        } else if (!v) {
            usage();
        } else if (strcmp(a, "-n") == 0) {
            b.n = num("-n", argv[++i], 1, MAX_ROUNDS);
        } else if (strcmp(a, "--warmup") == 0) {
            b.warmup = num("--warmup", argv[++i], 0, MAX_ROUNDS);
        } else if (strcmp(a, "--period-us") == 0) {
            b.period_us = num("--period-us", argv[++i], 1, 10000000);
        } else if (strcmp(a, "--bytes") == 0) {
            b.bytes = num("--bytes", argv[++i], 0, MAX_BYTES);
        } else if (strcmp(a, "--timeout-ms") == 0) {
            b.timeout_ms = num("--timeout-ms", argv[++i], 1, 600000);
        } else if (strcmp(a, "--vectors") == 0) {
            b.vectors = num("--vectors", argv[++i], 0, 64);
        } else if (strcmp(a, "--dump") == 0) {
            b.dump = argv[++i];
        } else {
            usage();
        }
    }
    if (have_path != 1)
        usage();

    printf("{\"path\":\"%s\",\"bytes\":%u,\"rounds\":%u,\"warmup\":%u", path_names[b.path], b.bytes,
           b.n, b.warmup);
    pthread_t th;
    bool started = false;
    uint32_t lost = 0;
    if (!(b.lat = calloc(b.n, sizeof(*b.lat)))) {
        snprintf(b.err, sizeof(b.err), "out of memory");
        goto out;
    }
    if (setup(&b) < 0)
        goto out;
    if (b.bytes > b.mem_size) {
        snprintf(b.err, sizeof(b.err), "--bytes %u: the memory has %zu", b.bytes, b.mem_size);
        goto out;
    }
    if (b.path == IVSHMEM)
        printf(",\"id1\":%u,\"id2\":%u,\"region_bytes\":%zu", px_ivc_id(b.c1), b.id2, b.mem_size);
    if (pthread_create(&th, NULL, receiver, &b) != 0) {
        snprintf(b.err, sizeof(b.err), "pthread_create failed");
        goto out;
    }
    started = true;
    run(&b);
    atomic_store(&b.stop, true);
    pthread_join(th, NULL);
    started = false;
    for (uint32_t i = 0; i < b.n; i++)
        lost += !b.lat[i];
    printf(",\"lost\":%u,\"stale\":%u", lost, b.stale);
    bench_print_latency(b.lat, b.n, b.period_us, b.dump);
out:
    if (started) {
        atomic_store(&b.stop, true);
        pthread_join(th, NULL);
    }
    bench_print_error(b.err);
    printf("}\n");
    if (b.c1)
        px_ivc_close(b.c1);
    if (b.c2)
        px_ivc_close(b.c2);
    if (b.zpush)
        zmq_close(b.zpush);
    if (b.zpull)
        zmq_close(b.zpull);
    for (int i = 0; i < 2; i++)
        if (b.zctx[i])
            zmq_ctx_term(b.zctx[i]);
    return b.err[0] ? 1 : 0;
}
