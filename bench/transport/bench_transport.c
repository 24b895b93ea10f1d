/* bench_transport — the plexus transport against raw libzmq, side by side.
 *
 * Every figure comes from two forked processes talking over
 * tcp://127.0.0.1 in this same run, so the ratios compare like with like on
 * whatever machine runs it. The parent only forks, waits and prints: it never
 * creates a ZeroMQ context or a loop, so forking stays safe.
 *
 *   plexus+wire  records are PROBE envelopes: px_wire_encode per record on
 *                the sender, px_wire_decode of every envelope on the receiver
 *                (real usage), through CURVE, batching and the libuv loop
 *   plexus       the same transport with opaque records, no wire codec: the
 *                transport's own cost
 *   raw          libzmq PUSH/PULL, zmq_send/zmq_recv, one message per record,
 *                no security
 *   raw+curve    the same with CurveZMQ, to show what encryption costs
 *
 * Latency is half the round trip of a ping-pong on an otherwise idle
 * connection (DEALER/ROUTER for raw), 64-byte records.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include <zmq.h>

#include "fabric/core/log.h"
#include "fabric/core/transport.h"
#include "fabric/core/wire.h"

enum kind { PLEXUS_WIRE, PLEXUS, RAW, RAW_CURVE, N_KINDS };
static const char *const kind_name[N_KINDS] = {"plexus+wire", "plexus", "raw", "raw+curve"};

typedef struct keys {
    px_keypair server, client;
} keys;

typedef struct result {
    int ok;
    uint64_t n, msgs; /* records, transport messages received */
    double secs;
    double p50_us, p99_us;
    char err[200];
} result;

typedef struct job {
    enum kind kind;
    size_t size; /* bytes per record */
    uint64_t n;
    const keys *k;
    int ep_fd, res_fd; /* pipes to the parent */
    char endpoint[256];
} job;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void put_result(const job *j, const result *r)
{
    if (write(j->res_fd, r, sizeof(*r)) != (ssize_t)sizeof(*r))
        _exit(3);
}

static void fail_result(const job *j, const char *what)
{
    result r = {0};
    snprintf(r.err, sizeof(r.err), "%s", what);
    put_result(j, &r);
    _exit(2);
}

static void put_endpoint(const job *j, const char *ep)
{
    char buf[256] = {0};
    snprintf(buf, sizeof(buf), "%s", ep);
    if (write(j->ep_fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
        _exit(3);
}

/* ---- records ---- */

/* Payload length that makes a PROBE envelope exactly `size` bytes for a
 * 5-byte seq (the common case: seq ≥ 65536). */
static size_t probe_payload_for(size_t size)
{
    static uint8_t zero[16384];
    static px_msg m; /* large: see pside.msg */
    px_wbuf b = {0};
    m.env.type = PX_MSG_PROBE;
    m.env.seq = 1u << 20;
    m.body.probe.t_ns = now_ns();
    size_t pay = size > 40 ? size - 40 : 1;
    for (int i = 0; i < 8; i++) {
        px_wbuf_reset(&b);
        m.body.probe.payload = (px_bin){zero, (uint32_t)pay};
        if (px_wire_encode(&b, &m, NULL) != PX_OK)
            break;
        if (b.len == size)
            break;
        pay = b.len > size ? pay - (b.len - size) : pay + (size - b.len);
    }
    px_wbuf_fini(&b);
    return pay;
}

/* ---- plexus side ---- */

typedef struct pside {
    job *j;
    uv_loop_t loop;
    px_transport *t;
    px_chan *ch;
    px_wbuf wb;
    uint8_t *payload, *opaque;
    size_t pay_len;
    uint64_t sent, got, t0, msgs;
    uint64_t *rtt;
    px_msg *msg; /* reused: px_msg is large (its union holds every body), so
                    initialising one per record would cost more than encoding */
    result r;
} pside;

static px_err plexus_send_one(pside *s, const px_peer *to, uint64_t seq, uint64_t t_ns)
{
    if (s->j->kind == PLEXUS) {
        memcpy(s->opaque, &seq, 8);
        memcpy(s->opaque + 8, &t_ns, 8);
        return px_chan_send(s->ch, to, s->opaque, s->j->size);
    }
    px_msg *m = s->msg;
    m->env.type = PX_MSG_PROBE;
    m->env.seq = seq;
    m->body.probe.t_ns = t_ns;
    m->body.probe.payload = (px_bin){s->payload, (uint32_t)s->pay_len};
    px_wbuf_reset(&s->wb);
    px_err e = px_wire_encode(&s->wb, m, NULL);
    return e ? e : px_chan_send(s->ch, to, s->wb.data, s->wb.len);
}

/* Walk a received batch; returns the records in it (0 on a decode error). */
static uint64_t plexus_records(pside *s, const uint8_t *data, size_t len, uint64_t *last_t)
{
    if (s->j->kind == PLEXUS) {
        if (len % s->j->size)
            return 0;
        memcpy(last_t, data + len - s->j->size + 8, 8);
        return len / s->j->size;
    }
    uint64_t n = 0;
    size_t off = 0;
    while (off < len) {
        size_t used;
        if (px_wire_decode(data + off, len - off, &used, s->msg, NULL) != PX_OK ||
            s->msg->env.type != PX_MSG_PROBE)
            return 0;
        *last_t = s->msg->body.probe.t_ns;
        off += used;
        n++;
    }
    return n;
}

static void p_fill(pside *s)
{
    uint64_t t = now_ns();
    while (s->sent < s->j->n) {
        px_err e = plexus_send_one(s, NULL, s->sent, t);
        if (e == PX_E_AGAIN)
            return;
        if (e != PX_OK)
            fail_result(s->j, "plexus send failed");
        s->sent++;
    }
}

static void p_writable(px_chan *ch, const px_peer *peer, void *ud)
{
    (void)ch;
    (void)peer;
    p_fill(ud);
}

static void p_sink_recv(px_chan *ch, const px_peer *from, const uint8_t *data, size_t len, void *ud)
{
    (void)ch;
    (void)from;
    pside *s = ud;
    uint64_t t;
    uint64_t n = plexus_records(s, data, len, &t);
    if (n == 0)
        fail_result(s->j, "receiver: bad batch");
    if (s->got == 0)
        s->t0 = now_ns();
    s->got += n;
    s->msgs++;
    if (s->got >= s->j->n) {
        s->r.ok = 1;
        s->r.n = s->got;
        s->r.msgs = s->msgs;
        s->r.secs = (double)(now_ns() - s->t0) / 1e9;
        put_result(s->j, &s->r);
        uv_stop(&s->loop);
    }
}

static void p_echo_recv(px_chan *ch, const px_peer *from, const uint8_t *data, size_t len, void *ud)
{
    (void)ud;
    px_chan_send(ch, from, data, len);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

#define LAT_WARMUP 200

static void lat_report(const job *j, uint64_t *rtt, uint64_t n)
{
    qsort(rtt, n, sizeof(rtt[0]), cmp_u64);
    result r = {.ok = 1, .n = n};
    r.p50_us = (double)rtt[n / 2] / 2e3;
    r.p99_us = (double)rtt[n * 99 / 100] / 2e3;
    put_result(j, &r);
}

static void p_ping_recv(px_chan *ch, const px_peer *from, const uint8_t *data, size_t len, void *ud)
{
    (void)ch;
    (void)from;
    pside *s = ud;
    uint64_t t;
    if (plexus_records(s, data, len, &t) != 1)
        fail_result(s->j, "pinger: bad echo");
    uint64_t now = now_ns();
    if (s->got >= LAT_WARMUP)
        s->rtt[s->got - LAT_WARMUP] = now - t;
    s->got++;
    if (s->got == s->j->n + LAT_WARMUP) {
        lat_report(s->j, s->rtt, s->j->n);
        uv_stop(&s->loop);
        return;
    }
    if (plexus_send_one(s, NULL, s->got, now_ns()) != PX_OK)
        fail_result(s->j, "pinger: send failed");
}

static void plexus_setup(pside *s, job *j, bool server, px_chan_recv_cb cb)
{
    memset(s, 0, sizeof(*s));
    s->j = j;
    uv_loop_init(&s->loop);
    s->pay_len = probe_payload_for(j->size);
    s->payload = calloc(1, s->pay_len + 1);
    s->opaque = calloc(1, j->size + 16);
    s->msg = calloc(1, sizeof(*s->msg));
    if (!s->payload || !s->opaque || !s->msg)
        fail_result(j, "out of memory");
    const char *allow[] = {j->k->client.public_z85};
    px_transport_opts to = {
        .self = server ? j->k->server : j->k->client, .allow = allow, .n_allow = server ? 1 : 0};
    px_errmsg em = {{0}};
    if (px_transport_new(&s->loop, &to, &s->t, &em) != PX_OK)
        fail_result(j, em.text);
    px_chan_opts co = {
        .role = server ? PX_CHAN_SERVER : PX_CHAN_CLIENT,
        .endpoint = server ? "tcp://127.0.0.1:*" : j->endpoint,
        .server_key = j->k->server.public_z85,
        .on_recv = cb,
        .on_writable = p_writable,
        .ud = s,
    };
    if (px_chan_open(s->t, &co, &s->ch, &em) != PX_OK)
        fail_result(j, em.text);
    if (server)
        put_endpoint(j, px_chan_endpoint(s->ch));
}

static void plexus_sink(job *j)
{
    pside s;
    plexus_setup(&s, j, true, p_sink_recv);
    uv_run(&s.loop, UV_RUN_DEFAULT);
}

static void plexus_source(job *j)
{
    pside s;
    plexus_setup(&s, j, false, p_sink_recv);
    p_fill(&s);
    uv_run(&s.loop, UV_RUN_DEFAULT);
}

static void plexus_echo(job *j)
{
    pside s;
    plexus_setup(&s, j, true, p_echo_recv);
    uv_run(&s.loop, UV_RUN_DEFAULT);
}

static void plexus_ping(job *j)
{
    pside s;
    plexus_setup(&s, j, false, p_ping_recv);
    s.rtt = calloc(j->n, sizeof(uint64_t));
    if (plexus_send_one(&s, NULL, 0, now_ns()) != PX_OK)
        fail_result(j, "pinger: first send failed");
    uv_run(&s.loop, UV_RUN_DEFAULT);
}

/* ---- raw libzmq side ---- */

static void *raw_socket(void *ctx, int type, const job *j, bool server)
{
    void *s = zmq_socket(ctx, type);
    if (j->kind == RAW_CURVE) {
        int one = 1;
        if (server) {
            zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof(one));
            zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, j->k->server.secret_z85, 40);
        } else {
            zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, j->k->server.public_z85, 40);
            zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, j->k->client.public_z85, 40);
            zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, j->k->client.secret_z85, 40);
        }
    }
    if (server) {
        char ep[256];
        size_t n = sizeof(ep);
        if (zmq_bind(s, "tcp://127.0.0.1:*") != 0 ||
            zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, ep, &n) != 0)
            fail_result(j, "raw: bind failed");
        put_endpoint(j, ep);
    } else if (zmq_connect(s, j->endpoint) != 0) {
        fail_result(j, "raw: connect failed");
    }
    return s;
}

static void raw_sink(job *j)
{
    void *ctx = zmq_ctx_new();
    void *s = raw_socket(ctx, ZMQ_PULL, j, true);
    uint8_t *buf = malloc(j->size);
    uint64_t t0 = 0;
    for (uint64_t i = 0; i < j->n; i++) {
        int rc = zmq_recv(s, buf, j->size, 0);
        if (rc != (int)j->size)
            fail_result(j, "raw: short receive");
        if (i == 0)
            t0 = now_ns();
    }
    result r = {.ok = 1, .n = j->n, .msgs = j->n};
    r.secs = (double)(now_ns() - t0) / 1e9;
    put_result(j, &r);
    pause();
}

static void raw_source(job *j)
{
    void *ctx = zmq_ctx_new();
    void *s = raw_socket(ctx, ZMQ_PUSH, j, false);
    uint8_t *buf = calloc(1, j->size);
    for (uint64_t i = 0; i < j->n; i++) {
        memcpy(buf, &i, 8); /* what a real sender would touch per message */
        if (zmq_send(s, buf, j->size, 0) != (int)j->size)
            fail_result(j, "raw: send failed");
    }
    pause();
}

static void raw_echo(job *j)
{
    void *ctx = zmq_ctx_new();
    void *s = raw_socket(ctx, ZMQ_ROUTER, j, true);
    uint8_t id[256], buf[256];
    for (;;) {
        int idn = zmq_recv(s, id, sizeof(id), 0);
        int n = zmq_recv(s, buf, sizeof(buf), 0);
        if (idn <= 0 || n <= 0)
            fail_result(j, "raw echo: receive failed");
        zmq_send(s, id, (size_t)idn, ZMQ_SNDMORE);
        zmq_send(s, buf, (size_t)n, 0);
    }
}

static void raw_ping(job *j)
{
    void *ctx = zmq_ctx_new();
    void *s = raw_socket(ctx, ZMQ_DEALER, j, false);
    uint8_t buf[256] = {0};
    uint64_t *rtt = calloc(j->n, sizeof(uint64_t));
    for (uint64_t i = 0; i < j->n + LAT_WARMUP; i++) {
        uint64_t t = now_ns();
        memcpy(buf, &t, 8);
        if (zmq_send(s, buf, j->size, 0) != (int)j->size ||
            zmq_recv(s, buf, sizeof(buf), 0) != (int)j->size)
            fail_result(j, "raw ping: failed");
        if (i >= LAT_WARMUP)
            rtt[i - LAT_WARMUP] = now_ns() - t;
    }
    lat_report(j, rtt, j->n);
    pause();
}

/* ---- driver ---- */

static pid_t spawn(job *j, void (*fn)(job *))
{
    pid_t pid = fork();
    if (pid == 0) {
        fn(j);
        _exit(0);
    }
    return pid;
}

static bool read_timed(int fd, void *buf, size_t len, int ms)
{
    size_t got = 0;
    while (got < len) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, ms) <= 0)
            return false;
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n <= 0)
            return false;
        got += (size_t)n;
    }
    return true;
}

/* One measurement: a server process and a client process. For throughput
 * the server receives and measures; for latency the client pings and
 * measures. */
static result run_once(enum kind kind, size_t size, uint64_t n, bool latency, const keys *k)
{
    result r = {0};
    int ep[2], res[2];
    if (pipe(ep) != 0 || pipe(res) != 0) {
        snprintf(r.err, sizeof(r.err), "pipe: %s", strerror(errno));
        return r;
    }
    job j = {.kind = kind, .size = size, .n = n, .k = k, .ep_fd = ep[1], .res_fd = res[1]};
    bool px = kind == PLEXUS || kind == PLEXUS_WIRE;
    void (*server)(job *) = latency ? (px ? plexus_echo : raw_echo) : (px ? plexus_sink : raw_sink);
    void (*client)(job *) =
        latency ? (px ? plexus_ping : raw_ping) : (px ? plexus_source : raw_source);
    pid_t ps = spawn(&j, server), pc = -1;
    if (!read_timed(ep[0], j.endpoint, sizeof(j.endpoint), 10000)) {
        snprintf(r.err, sizeof(r.err), "server did not start");
        goto out;
    }
    pc = spawn(&j, client);
    if (!read_timed(res[0], &r, sizeof(r), 120000))
        snprintf(r.err, sizeof(r.err), "no result within 120 s");
out:
    kill(ps, SIGKILL);
    waitpid(ps, NULL, 0);
    if (pc > 0) {
        kill(pc, SIGKILL);
        waitpid(pc, NULL, 0);
    }
    close(ep[0]);
    close(ep[1]);
    close(res[0]);
    close(res[1]);
    return r;
}

static int cmp_rate(const void *a, const void *b)
{
    const result *x = a, *y = b;
    double rx = x->ok ? (double)x->n / x->secs : 0, ry = y->ok ? (double)y->n / y->secs : 0;
    return rx < ry ? -1 : rx > ry;
}

static int cmp_p99(const void *a, const void *b)
{
    const result *x = a, *y = b;
    return x->p99_us < y->p99_us ? -1 : x->p99_us > y->p99_us;
}

/* Every path, `reps` times, round-robin so slow phases of a shared machine
 * hit all paths alike; out[k] is the median of path k (failures win). */
static void measure_all(size_t size, uint64_t n, bool latency, int reps, const keys *k,
                        result out[N_KINDS])
{
    result rs[N_KINDS][9];
    for (int i = 0; i < reps; i++)
        for (int kd = 0; kd < N_KINDS; kd++)
            rs[kd][i] = run_once((enum kind)kd, size, n, latency, k);
    for (int kd = 0; kd < N_KINDS; kd++) {
        out[kd] = rs[kd][0];
        bool ok = true;
        for (int i = 0; i < reps; i++)
            if (!rs[kd][i].ok) {
                fprintf(stderr, "bench_transport: %s %zu B: %s\n", kind_name[kd], size,
                        rs[kd][i].err);
                out[kd] = rs[kd][i];
                ok = false;
            }
        if (!ok)
            continue;
        qsort(rs[kd], (size_t)reps, sizeof(result), latency ? cmp_p99 : cmp_rate);
        out[kd] = rs[kd][reps / 2];
    }
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--quick] [--reps N] [--only KIND SIZE N]\n"
            "  Forks pairs of processes and compares the plexus transport with raw\n"
            "  libzmq over tcp://127.0.0.1: throughput at 64, 1500 and 9000-byte\n"
            "  records, and one-way latency (half a ping-pong round trip).\n"
            "  --quick   about a tenth of the records, one run per figure\n"
            "  --reps N  runs per figure, the median is shown (default 5, 1-9)\n"
            "  --only KIND SIZE N  one throughput figure (N=0: latency) for profiling;\n"
            "            KIND is plexus+wire, plexus, raw or raw+curve\n",
            argv0);
}

int main(int argc, char **argv)
{
    bool quick = false;
    int reps = 5, only = -1;
    size_t only_size = 0;
    uint64_t only_n = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            quick = true;
        } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--only") && i + 3 < argc) {
            for (int kd = 0; kd < N_KINDS; kd++)
                if (!strcmp(argv[i + 1], kind_name[kd]))
                    only = kd;
            only_size = (size_t)atol(argv[i + 2]);
            only_n = (uint64_t)atoll(argv[i + 3]);
            i += 3;
        } else {
            usage(argv[0]);
            return 2;
        }
    }
    if (quick && reps == 5)
        reps = 1;
    if (reps < 1 || reps > 9) {
        usage(argv[0]);
        return 2;
    }
    px_log_setup(PX_LOG_ERROR, NULL, NULL);
    keys k;
    if (px_keypair_generate(&k.server, NULL) != PX_OK ||
        px_keypair_generate(&k.client, NULL) != PX_OK) {
        fprintf(stderr, "bench_transport: cannot generate CURVE keys\n");
        return 1;
    }

    static const struct {
        size_t size;
        uint64_t n;
        double target; /* plexus+wire / raw, from the brief */
    } sizes[] = {{64, 4000000, 0.8}, {1500, 400000, 0.9}, {9000, 80000, 0}};
    const uint64_t scale = quick ? 10 : 1;
    int failed = 0;
    if (only >= 0) {
        /* One figure, for profiling: --only KIND SIZE N (N=0: latency). */
        result r = run_once((enum kind)only, only_size, only_n ? only_n : 20000, only_n == 0, &k);
        if (!r.ok)
            printf("failed: %s\n", r.err);
        else if (only_n)
            printf("%s %zu B: %.0f records/s, %.1f records/message\n", kind_name[only], only_size,
                   (double)r.n / r.secs, (double)r.n / (double)r.msgs);
        else
            printf("%s: p50 %.1f us p99 %.1f us\n", kind_name[only], r.p50_us, r.p99_us);
        return r.ok ? 0 : 1;
    }

    printf("plexus transport vs raw libzmq, tcp://127.0.0.1, 2 processes, %d run(s) per figure "
           "(median)\n\n",
           reps);
    printf("%-6s %-12s %12s %10s %9s %10s %10s\n", "size", "path", "records/s", "MB/s", "rec/msg",
           "vs raw", "vs +curve");
    for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
        result r[N_KINDS];
        measure_all(sizes[si].size, sizes[si].n / scale, false, reps, &k, r);
        double rate[N_KINDS];
        for (int kd = 0; kd < N_KINDS; kd++)
            rate[kd] = r[kd].ok ? (double)r[kd].n / r[kd].secs : 0;
        for (int kd = 0; kd < N_KINDS; kd++) {
            if (!r[kd].ok) {
                printf("%-6zu %-12s %12s\n", sizes[si].size, kind_name[kd], "FAILED");
                failed++;
                continue;
            }
            printf("%-6zu %-12s %12.0f %10.1f %9.1f", sizes[si].size, kind_name[kd], rate[kd],
                   rate[kd] * (double)sizes[si].size / 1e6, (double)r[kd].n / (double)r[kd].msgs);
            if (kd == PLEXUS_WIRE || kd == PLEXUS)
                printf(" %9.2fx %9.2fx", rate[RAW] ? rate[kd] / rate[RAW] : 0,
                       rate[RAW_CURVE] ? rate[kd] / rate[RAW_CURVE] : 0);
            if (kd == PLEXUS_WIRE && sizes[si].target > 0 && rate[RAW] > 0)
                printf("   target >= %.1fx: %s", sizes[si].target,
                       rate[kd] / rate[RAW] >= sizes[si].target ? "met" : "MISSED");
            printf("\n");
        }
        printf("\n");
    }

    const uint64_t lat_n = quick ? 2000 : 20000;
    printf("one-way latency, 64-byte records, idle queue (half round trip, %llu pings)\n\n",
           (unsigned long long)lat_n);
    printf("%-12s %10s %10s %12s\n", "path", "p50 us", "p99 us", "p99 vs raw");
    result lat[N_KINDS];
    measure_all(64, lat_n, true, reps, &k, lat);
    for (int kd = 0; kd < N_KINDS; kd++) {
        if (!lat[kd].ok) {
            printf("%-12s %10s\n", kind_name[kd], "FAILED");
            failed++;
            continue;
        }
        printf("%-12s %10.1f %10.1f", kind_name[kd], lat[kd].p50_us, lat[kd].p99_us);
        if (lat[RAW].ok && lat[RAW].p99_us > 0)
            printf(" %11.2fx", lat[kd].p99_us / lat[RAW].p99_us);
        if (kd == PLEXUS_WIRE && lat[RAW].ok)
            printf("   target <= 1.2x: %s",
                   lat[kd].p99_us <= 1.2 * lat[RAW].p99_us ? "met" : "MISSED");
        printf("\n");
    }
    return failed ? 1 : 0;
}
