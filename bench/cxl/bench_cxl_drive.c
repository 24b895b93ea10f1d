/* bench_cxl_drive — one side of the CXL LD data bench (bench/cxl).
 *
 *   bench_cxl_drive --role pool  --name ha --dir DIR --size BYTES [--listen EP]
 *   bench_cxl_drive --role guest --name hb --dir DIR --pool-dir DIR --size BYTES
 *                   [--rounds N] [--window CHUNKS] [--listen EP]
 *
 * Each process is one host: a libuv loop, a plexus transport (CurveZMQ) with
 * a data-plane SERVER channel and a CLIENT channel to the other side's
 * server, configured as plexus-node's mesh configures them (drop policy,
 * PX_DATA_PLANE_BATCH_BYTES, PX_DATA_PLANE_HWM), and a px_cxlld on that
 * loop whose px_svc_io sends on the client channel and takes the peer's key
 * from the exchange below, as the node does. bench_cxl.py runs the two in
 * the network namespaces of a dry-run local lab's two nodes (across their
 * veth pairs), or both on 127.0.0.1 without root.
 *
 * Set-up over stdin/stdout, one line each:
 *   -> "ready EP KEY PID"       this side's data endpoint, public key and pid
 *   <- "peer NAME EP KEY PID"   the other side's (the guest reads the pool's
 *                               CPU time from /proc/PID/stat)
 *   -> "allowed"                its key is admitted here
 *   <- "go"                     both admitted: open the client channel
 * The pool side holds pool "dense" (one LD of BYTES of pseudo-random data,
 * written once when its file is missing) and pool "sparse" (one LD, all
 * zero) under its DIR, and serves until "quit" or EOF on stdin.
 *
 * The guest side measures, per round: a plain copy of the dense LD's file
 * (read/write in 128 KiB pieces, and copy_file_range as cp(1) does), the
 * fetch of the dense LD, write-backs after every chunk changed, after every
 * tenth chunk changed and after no change, and the fetch of the sparse LD;
 * then prints one JSON line with the seconds of every round and the
 * services' counters. The first round checks that the fetched copy equals
 * the pool's file byte for byte.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "fabric/core/fsutil.h"
#include "fabric/core/log.h"
#include "fabric/core/transport.h"
#include "fabric/core/wire.h"
#include "fabric/cxl-switch/ldsvc.h"

#define LAB        "cxlbench"
#define MAX_ROUNDS 16
#define PIECE      (128u << 10)

typedef struct side {
    char name[64], peer[64], peer_key[PX_KEY_Z85_LEN + 1], peer_ep[256];
    long peer_pid;
    uv_loop_t loop;
    px_transport *tp;
    px_chan *srv, *cli;
    px_keypair kp;
    px_cxlld *svc;
    px_msg *in;
    uv_async_t quit;
    unsigned closing;
    /* the raw row: PROBE requests and 128 KiB PROBE answers */
    px_msg *out;
    px_wbuf wb;
    uint8_t *payload;
    uint64_t owed;   /* pool: answers not yet sent (link full) */
    uv_timer_t owe;  /* pool: sends them */
    uint64_t raw_in; /* guest: answers received */
    bool raw_on;
} side;

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "bench_cxl_drive: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

static double mono(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* ---- the data plane, as plexus-node wires it ---- */

static px_err io_to_node(void *ud, const char *node, const uint8_t *data, size_t len)
{
    side *s = ud;
    if (strcmp(node, s->peer) != 0 || !s->cli)
        return PX_E_NOTFOUND;
    return px_chan_send(s->cli, NULL, data, len);
}

static const char *io_node_key(void *ud, const char *node)
{
    side *s = ud;
    return strcmp(node, s->peer) == 0 ? s->peer_key : NULL;
}

/* A PROBE of n payload bytes into s->wb. */
static void probe(side *s, uint32_t n)
{
    px_msg *m = s->out;
    memset(&m->env, 0, sizeof(m->env));
    m->env.type = PX_MSG_PROBE;
    m->body.probe = (px_msg_probe){.t_ns = 1, .payload = {s->payload, n}};
    px_wbuf_reset(&s->wb);
    if (px_wire_encode(&s->wb, m, NULL) != PX_OK)
        die("cannot encode a PROBE", NULL);
}

/* Pool: the answers owed, as far as the link takes them. */
static void owe_flush(uv_timer_t *t)
{
    side *s = t->data;
    while (s->owed) {
        probe(s, PX_CXLLD_CHUNK);
        if (px_chan_send(s->cli, NULL, s->wb.data, s->wb.len) == PX_E_AGAIN) {
            uv_timer_start(&s->owe, owe_flush, 1, 0);
            return;
        }
        s->owed--;
    }
}

static void on_srv_recv(px_chan *ch, const px_peer *from, const uint8_t *data, size_t len, void *ud)
{
    (void)ch;
    side *s = ud;
    size_t off = 0;
    while (off < len) {
        size_t used;
        if (px_wire_decode(data + off, len - off, &used, s->in, NULL) != PX_OK)
            return;
        const px_msg *m = s->in;
        if (m->env.type == PX_MSG_CXL && s->svc) {
            px_cxlld_on_msg(s->svc, from, &m->body.cxl);
        } else if (m->env.type == PX_MSG_PROBE && m->body.probe.payload.len == 8) {
            s->owed++;
            owe_flush(&s->owe);
        } else if (m->env.type == PX_MSG_PROBE && s->raw_on) {
            s->raw_in++;
        }
        off += used;
    }
}

static void on_cli_recv(px_chan *ch, const px_peer *from, const uint8_t *data, size_t len, void *ud)
{
    (void)ch, (void)from, (void)data, (void)len, (void)ud;
}

static void side_open(side *s, const char *listen)
{
    px_errmsg em = {{0}};
    if (uv_loop_init(&s->loop) != 0)
        die("uv_loop_init", NULL);
    if (px_keypair_generate(&s->kp, &em) != PX_OK)
        die("keypair", em.text);
    px_transport_opts to = {.self = s->kp};
    if (px_transport_new(&s->loop, &to, &s->tp, &em) != PX_OK)
        die("transport", em.text);
    px_chan_opts so = {.role = PX_CHAN_SERVER,
                       .endpoint = listen,
                       .policy = PX_QUEUE_DROP,
                       .batch_bytes = PX_DATA_PLANE_BATCH_BYTES,
                       .hwm = PX_DATA_PLANE_HWM,
                       .on_recv = on_srv_recv,
                       .ud = s};
    if (px_chan_open(s->tp, &so, &s->srv, &em) != PX_OK)
        die("server channel", em.text);
    s->in = malloc(sizeof(*s->in));
    s->out = malloc(sizeof(*s->out));
    s->payload = malloc(PX_CXLLD_CHUNK);
    if (!s->in || !s->out || !s->payload)
        die("out of memory", NULL);
    for (uint32_t i = 0; i < PX_CXLLD_CHUNK; i++)
        s->payload[i] = (uint8_t)(i * 131 + (i >> 11));
    uv_timer_init(&s->loop, &s->owe);
    s->owe.data = s;
}

static void read_line(char *buf, size_t cap)
{
    if (!fgets(buf, (int)cap, stdin))
        die("stdin closed during set-up", NULL);
    buf[strcspn(buf, "\n")] = '\0';
}

/* The set-up exchange; on return the client channel is open and the
 * service exists. */
static void side_meet(side *s)
{
    char line[1024];
    printf("ready %s %s %ld\n", px_chan_endpoint(s->srv), s->kp.public_z85, (long)getpid());
    fflush(stdout);
    read_line(line, sizeof(line));
    if (sscanf(line, "peer %63s %255s %40s %ld", s->peer, s->peer_ep, s->peer_key, &s->peer_pid) !=
        4)
        die("expected 'peer NAME EP KEY PID', got", line);
    if (px_transport_allow(s->tp, s->peer_key) != PX_OK)
        die("bad peer key", s->peer_key);
    printf("allowed\n");
    fflush(stdout);
    read_line(line, sizeof(line));
    if (strcmp(line, "go") != 0)
        die("expected 'go', got", line);
    px_errmsg em = {{0}};
    px_chan_opts co = {.role = PX_CHAN_CLIENT,
                       .endpoint = s->peer_ep,
                       .server_key = s->peer_key,
                       .policy = PX_QUEUE_DROP,
                       .batch_bytes = PX_DATA_PLANE_BATCH_BYTES,
                       .hwm = PX_DATA_PLANE_HWM,
                       .on_recv = on_cli_recv,
                       .ud = s};
    if (px_chan_open(s->tp, &co, &s->cli, &em) != PX_OK)
        die("client channel", em.text);
    px_svc_io io = {.to_node = io_to_node, .node_key = io_node_key, .ud = s, .self = s->name};
    if (px_cxlld_new(&s->loop, &io, &s->svc) != PX_OK)
        die("px_cxlld_new", NULL);
}

static void chan_closed(px_chan *ch, void *ud)
{
    (void)ch;
    side *s = ud;
    s->closing--;
}

static void svc_closed(void *ud)
{
    side *s = ud;
    s->closing--;
}

static void side_close(side *s)
{
    s->closing = 3;
    uv_close((uv_handle_t *)&s->owe, NULL);
    px_cxlld_close(s->svc, svc_closed, s);
    px_chan_close(s->cli, chan_closed, s);
    px_chan_close(s->srv, chan_closed, s);
    while (s->closing)
        uv_run(&s->loop, UV_RUN_ONCE);
    if (px_transport_free(s->tp) != PX_OK)
        die("transport still busy", NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_loop_close(&s->loop);
    px_wbuf_fini(&s->wb);
    free(s->in);
    free(s->out);
    free(s->payload);
}

/* ---- files ---- */

static void fill_dense(const char *path, uint64_t size)
{
    struct stat st;
    if (stat(path, &st) == 0 && (uint64_t)st.st_size == size)
        return;
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0)
        die("cannot create the dense LD", strerror(errno));
    static uint64_t buf[PIECE / 8];
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (uint64_t off = 0; off < size; off += PIECE) {
        for (size_t i = 0; i < PIECE / 8; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[i] = x;
        }
        size_t n = size - off < PIECE ? (size_t)(size - off) : PIECE;
        if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n)
            die("cannot write the dense LD", strerror(errno));
    }
    close(fd);
}

/* A plain copy: read() and write() in 128 KiB pieces. */
static double copy_rw(const char *from, const char *to)
{
    static uint8_t buf[PIECE];
    unlink(to);
    double t0 = mono();
    int in = open(from, O_RDONLY | O_CLOEXEC), out = open(to, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    if (in < 0 || out < 0)
        die("copy: open", strerror(errno));
    ssize_t n;
    while ((n = read(in, buf, sizeof(buf))) > 0)
        if (write(out, buf, (size_t)n) != n)
            die("copy: write", strerror(errno));
    close(in);
    close(out);
    return mono() - t0;
}

/* What cp(1) of coreutils 9 does: copy_file_range, in the kernel. */
static double copy_cfr(const char *from, const char *to)
{
    unlink(to);
    double t0 = mono();
    int in = open(from, O_RDONLY | O_CLOEXEC), out = open(to, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    if (in < 0 || out < 0)
        die("copy: open", strerror(errno));
    ssize_t n;
    while ((n = copy_file_range(in, NULL, out, NULL, 1u << 30, 0)) > 0)
        ;
    if (n < 0)
        die("copy_file_range", strerror(errno));
    close(in);
    close(out);
    return mono() - t0;
}

static void same_or_die(const char *a, const char *b, uint64_t size)
{
    int fa = open(a, O_RDONLY | O_CLOEXEC), fb = open(b, O_RDONLY | O_CLOEXEC);
    if (fa < 0 || fb < 0)
        die("compare: open", strerror(errno));
    void *pa = mmap(NULL, size, PROT_READ, MAP_SHARED, fa, 0);
    void *pb = mmap(NULL, size, PROT_READ, MAP_SHARED, fb, 0);
    if (pa == MAP_FAILED || pb == MAP_FAILED)
        die("compare: mmap", strerror(errno));
    if (memcmp(pa, pb, size) != 0)
        die("the fetched LD differs from the pool's file", b);
    munmap(pa, size);
    munmap(pb, size);
    close(fa);
    close(fb);
}

/* Changes one byte in every `every`-th chunk of the guest's copy. */
static void touch(const char *path, uint64_t size, unsigned every, unsigned round)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        die("touch: open", strerror(errno));
    for (uint64_t off = 0; off < size; off += (uint64_t)every * PX_CXLLD_CHUNK) {
        uint8_t b = (uint8_t)(0xa5 ^ round ^ (off >> 17));
        if (pwrite(fd, &b, 1, (off_t)(off + 100 + round)) != 1)
            die("touch: write", strerror(errno));
    }
    close(fd);
}

/* ---- roles ---- */

static void *stdin_waiter(void *arg)
{
    side *s = arg;
    char line[256];
    while (fgets(line, sizeof(line), stdin) && strncmp(line, "quit", 4) != 0)
        ;
    uv_async_send(&s->quit);
    return NULL;
}

static void on_quit(uv_async_t *a)
{
    uv_stop(a->loop);
}

static int run_pool(side *s, const char *dir, uint64_t size)
{
    char d[4096], f[4200];
    snprintf(d, sizeof(d), "%s/dense", dir);
    px_errmsg em = {{0}};
    if (px_mkdir_p(d, 0700, &em) != PX_OK)
        die("mkdir", em.text);
    snprintf(f, sizeof(f), "%s/ld0.mem", d);
    fill_dense(f, size);
    side_meet(s);
    if (px_cxlld_pool_open(s->svc, LAB, "dense", d, 1, size, &em) != PX_OK)
        die("pool dense", em.text);
    snprintf(d, sizeof(d), "%s/sparse", dir);
    if (px_cxlld_pool_open(s->svc, LAB, "sparse", d, 1, size, &em) != PX_OK)
        die("pool sparse", em.text);
    /* An existing file keeps its length: one of an earlier run with another
     * --size takes this one (the sparse LD holds only zeros). */
    if (px_cxlld_ld_resize(s->svc, LAB, "sparse", 0, size, &em) != PX_OK)
        die("pool sparse size", em.text);
    uv_async_init(&s->loop, &s->quit, on_quit);
    pthread_t th;
    if (pthread_create(&th, NULL, stdin_waiter, s) != 0)
        die("pthread_create", NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    uv_close((uv_handle_t *)&s->quit, NULL);
    side_close(s);
    return 0;
}

typedef struct op {
    bool done;
    px_err err;
    char msg[512];
} op;

static void op_done(void *ud, px_err err, const char *msg)
{
    op *o = ud;
    o->done = true;
    o->err = err;
    snprintf(o->msg, sizeof(o->msg), "%s", msg);
}

static void wait_op(side *s, op *o, const char *what)
{
    while (!o->done)
        uv_run(&s->loop, UV_RUN_ONCE);
    if (o->err)
        die(what, o->msg);
}

static double timed_fetch(side *s, const char *pool, uint64_t size, const char *mem,
                          const char *lsa, uint64_t *h)
{
    op o = {0};
    px_errmsg em = {{0}};
    double t0 = mono();
    if (px_cxlld_fetch(s->svc, LAB, pool, s->peer, 0, size, mem, lsa, op_done, &o, h, &em) != PX_OK)
        die("fetch", em.text);
    wait_op(s, &o, "fetch");
    return mono() - t0;
}

static double timed_writeback(side *s, uint64_t h)
{
    op o = {0};
    px_errmsg em = {{0}};
    double t0 = mono();
    if (px_cxlld_writeback(s->svc, h, op_done, &o, &em) != PX_OK)
        die("write-back", em.text);
    wait_op(s, &o, "write-back");
    return mono() - t0;
}

static void on_raw_tick(uv_timer_t *t)
{
    (void)t;
}

/* The data plane alone, in the fetch's pattern: `window` small requests
 * out, a 128 KiB answer to each, until size bytes came back. The answers
 * arrive on the server channel, as DATA does. */
static double timed_raw(side *s, uint64_t size, uint32_t window)
{
    uint64_t total = size / PX_CXLLD_CHUNK, sent = 0;
    uv_timer_t tick;
    uv_timer_init(&s->loop, &tick);
    uv_timer_start(&tick, on_raw_tick, 1, 1); /* wakes the loop after a full link */
    s->raw_in = 0;
    s->raw_on = true;
    double t0 = mono();
    while (s->raw_in < total) {
        while (sent < total && sent - s->raw_in < window) {
            probe(s, 8);
            if (px_chan_send(s->cli, NULL, s->wb.data, s->wb.len) != PX_OK)
                break;
            sent++;
        }
        uv_run(&s->loop, UV_RUN_ONCE);
    }
    double t = mono() - t0;
    s->raw_on = false;
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&s->loop, UV_RUN_NOWAIT);
    return t;
}

/* CPU seconds of this process (every thread: loop and ZeroMQ's) and of
 * process pid (the other host). */
static double cpu_self(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static double cpu_of(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime stime */
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

enum { M_COPY, M_CFR, M_RAW, M_FETCH, M_WB_ALL, M_WB_10, M_WB_NONE, M_FETCH_SPARSE, N_M };
static const char *const m_name[N_M] = {"copy",   "copy_cfr", "raw",     "fetch",
                                        "wb_all", "wb_10pct", "wb_none", "fetch_sparse"};

static int run_guest(side *s, const char *dir, const char *pool_dir, uint64_t size, int rounds,
                     uint32_t window)
{
    char mem[4200], lsa[4200], smem[4200], slsa[4200], copy[4200], src[4200];
    snprintf(mem, sizeof(mem), "%s/g.mem", dir);
    snprintf(lsa, sizeof(lsa), "%s/g.lsa", dir);
    snprintf(smem, sizeof(smem), "%s/s.mem", dir);
    snprintf(slsa, sizeof(slsa), "%s/s.lsa", dir);
    snprintf(copy, sizeof(copy), "%s/copy.mem", dir);
    snprintf(src, sizeof(src), "%s/dense/ld0.mem", pool_dir);
    px_errmsg em = {{0}};
    if (px_mkdir_p(dir, 0700, &em) != PX_OK)
        die("mkdir", em.text);
    side_meet(s);
    px_cxlld_tune(s->svc, &(px_cxlld_tuning){.window = window});
    /* Warm-up: the handshakes, and the pool file in the page cache. */
    uint64_t h;
    timed_fetch(s, "sparse", size, smem, slsa, &h);
    px_cxlld_forget(s->svc, h);
    static double t[N_M][MAX_ROUNDS], cs[N_M][MAX_ROUNDS], cp[N_M][MAX_ROUNDS];
#define MEASURE(m, expr)                                                                           \
    do {                                                                                           \
        double s0 = cpu_self(), p0 = cpu_of(s->peer_pid);                                          \
        t[m][r] = (expr);                                                                          \
        cs[m][r] = cpu_self() - s0;                                                                \
        cp[m][r] = cpu_of(s->peer_pid) - p0;                                                       \
    } while (0)
    for (int r = 0; r < rounds; r++) {
        fprintf(stderr, "bench_cxl_drive: round %d/%d\n", r + 1, rounds);
        MEASURE(M_COPY, copy_rw(src, copy));
        MEASURE(M_CFR, copy_cfr(src, copy));
        unlink(copy);
        MEASURE(M_RAW, timed_raw(s, size, window ? window : PX_CXLLD_WINDOW));
        unlink(mem);
        MEASURE(M_FETCH, timed_fetch(s, "dense", size, mem, lsa, &h));
        if (r == 0)
            same_or_die(src, mem, size);
        touch(mem, size, 1, (unsigned)r);
        MEASURE(M_WB_ALL, timed_writeback(s, h));
        touch(mem, size, 10, (unsigned)r + 50);
        MEASURE(M_WB_10, timed_writeback(s, h));
        MEASURE(M_WB_NONE, timed_writeback(s, h));
        if (r == 0)
            same_or_die(src, mem, size);
        px_cxlld_forget(s->svc, h);
        unlink(mem);
        MEASURE(M_FETCH_SPARSE, timed_fetch(s, "sparse", size, smem, slsa, &h));
        px_cxlld_forget(s->svc, h);
        unlink(smem);
    }
#undef MEASURE
    px_cxlld_stats st;
    px_cxlld_stats_get(s->svc, &st);
    printf("{\"size\":%" PRIu64 ",\"rounds\":%d,\"chunk\":%u", size, rounds, PX_CXLLD_CHUNK);
    for (int m = 0; m < N_M; m++) {
        printf(",\"%s\":[", m_name[m]);
        for (int r = 0; r < rounds; r++)
            printf("%s%.6f", r ? "," : "", t[m][r]);
        printf("]");
    }
    /* CPU seconds per phase and round: [this side (guest), the pool's side] */
    printf(",\"cpu\":{");
    for (int m = 0; m < N_M; m++) {
        printf("%s\"%s\":[", m ? "," : "", m_name[m]);
        for (int r = 0; r < rounds; r++)
            printf("%s[%.3f,%.3f]", r ? "," : "", cs[m][r], cp[m][r]);
        printf("]");
    }
    printf("}");
    printf(",\"stats\":{\"fetched\":%" PRIu64 ",\"fetched_zero\":%" PRIu64 ",\"wb_sent\":%" PRIu64
           ",\"wb_same\":%" PRIu64 ",\"resent\":%" PRIu64 ",\"again\":%" PRIu64 ",\"dups\":%" PRIu64
           ",\"bad_msgs\":%" PRIu64 "}}\n",
           st.fetched, st.fetched_zero, st.wb_sent, st.wb_same, st.resent, st.again, st.dups,
           st.bad_msgs);
    fflush(stdout);
    side_close(s);
    return 0;
}

int main(int argc, char **argv)
{
    const char *role = NULL, *name = NULL, *dir = NULL, *pool_dir = NULL,
               *listen = "tcp://127.0.0.1:*";
    uint64_t size = 1ull << 30;
    int rounds = 3;
    uint32_t window = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--role"))
            role = v;
        else if (!strcmp(k, "--name"))
            name = v;
        else if (!strcmp(k, "--dir"))
            dir = v;
        else if (!strcmp(k, "--pool-dir"))
            pool_dir = v;
        else if (!strcmp(k, "--listen"))
            listen = v;
        else if (!strcmp(k, "--size"))
            size = strtoull(v, NULL, 0);
        else if (!strcmp(k, "--rounds"))
            rounds = atoi(v);
        else if (!strcmp(k, "--window"))
            window = (uint32_t)atoi(v);
        else
            die("unknown option", k);
    }
    if (!role || !name || !dir || (strcmp(role, "pool") && strcmp(role, "guest")) ||
        (!strcmp(role, "guest") && !pool_dir) || size == 0 || size % PX_CXLLD_ALIGN || rounds < 1 ||
        rounds > MAX_ROUNDS)
        die("usage: --role pool|guest --name NAME --dir DIR [--pool-dir DIR] --size BYTES "
            "[--rounds N] [--window CHUNKS] [--listen EP]",
            NULL);
    px_log_setup(PX_LOG_WARN, NULL, NULL);
    static side s;
    snprintf(s.name, sizeof(s.name), "%s", name);
    side_open(&s, listen);
    return !strcmp(role, "pool") ? run_pool(&s, dir, size)
                                 : run_guest(&s, dir, pool_dir, size, rounds, window);
}
