/* Unit tests: devices/ivshmem — the protocol (proto.h), the server
 * (server.h) and the host client (client.h), and stock QEMU 7.2 against
 * the server.
 *
 * The server runs on the test thread's loop. px_ivc_open blocks until the
 * client is admitted, so it runs on a helper thread while the test thread
 * runs the loop; everything else a client does is called from the test
 * thread (the server writes its messages inside the px_ivsrv_* call, so
 * they are in the client's socket when that call returns). Every wait runs
 * the loop until a condition holds or a deadline passes; a 2 ms tick wakes
 * the loop so conditions outside it (a thread, QEMU) are checked too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <linux/sockios.h>
#include <unistd.h>
#include <uv.h>

#include "devices/ivshmem/client.h"
#include "devices/ivshmem/proto.h"
#include "devices/ivshmem/server.h"

#define WAIT_MS  5000u
#define VEC      2u
#define SHM_SIZE (64u << 10)
#define MAXREC   256u

extern char **environ;

/* ---- helpers ---- */

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own fd */
}

static int make_memfd(size_t size)
{
    int fd = memfd_create("px-ivshmem-test", MFD_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    return fd;
}

static int raw_connect(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void set_nonblock(int fd)
{
    assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
}

static bool readable(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) == 1;
}

/* ---- decoder ---- */

static px_err feed(px_ivshm_dec *d, int64_t v, int fd, px_ivshm_ev *ev)
{
    px_errmsg em = {{0}};
    px_err e = px_ivshm_dec_feed(d, v, fd, ev, &em);
    if (e != PX_OK)
        assert_true(em.text[0] != '\0');
    else if (fd < 0)
        assert_int_equal(ev->fd, -1);
    else
        assert_int_equal(ev->fd, fd);
    return e;
}

/* Stage 0: fresh; 1: after the version; 2: after own ID 7; 3: ready, and
 * peer 3 has one eventfd. */
static px_ivshm_dec *dec_at(int stage, uint32_t maxv)
{
    px_ivshm_dec *d = malloc(sizeof(*d));
    assert_non_null(d);
    px_ivshm_dec_init(d, maxv);
    px_ivshm_ev ev;
    if (stage >= 1)
        assert_int_equal(feed(d, 0, -1, &ev), PX_OK);
    if (stage >= 2)
        assert_int_equal(feed(d, 7, -1, &ev), PX_OK);
    if (stage >= 3) {
        assert_int_equal(feed(d, -1, 100, &ev), PX_OK);
        assert_int_equal(feed(d, 3, 101, &ev), PX_OK);
    }
    return d;
}

static void test_dec_greeting(void **state)
{
    (void)state;
    px_ivshm_dec *d = dec_at(0, VEC);
    px_ivshm_ev ev;
    assert_int_equal(feed(d, 0, -1, &ev), PX_OK);
    assert_int_equal(ev.kind, PX_IVSHM_EV_NONE);
    assert_false(px_ivshm_dec_ready(d));
    assert_int_equal(feed(d, 7, -1, &ev), PX_OK);
    assert_int_equal(ev.kind, PX_IVSHM_EV_ID);
    assert_int_equal(ev.peer, 7);
    assert_false(px_ivshm_dec_ready(d));
    assert_int_equal(feed(d, -1, 100, &ev), PX_OK);
    assert_int_equal(ev.kind, PX_IVSHM_EV_SHM);
    assert_int_equal(ev.fd, 100);
    assert_true(px_ivshm_dec_ready(d));
    /* other peers, then own fds, each numbered in order */
    const struct {
        int64_t peer;
        int fd;
        uint32_t vector;
    } seq[] = {{3, 101, 0},     {3, 102, 1}, {65535, 103, 0},
               {65535, 104, 1}, {7, 105, 0}, {7, 106, 1}};
    for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
        assert_int_equal(feed(d, seq[i].peer, seq[i].fd, &ev), PX_OK);
        assert_int_equal(ev.kind, PX_IVSHM_EV_PEER_FD);
        assert_int_equal(ev.peer, seq[i].peer);
        assert_int_equal(ev.vector, seq[i].vector);
        assert_int_equal(ev.fd, seq[i].fd);
    }
    assert_int_equal(d->own, 7);
    free(d);
}

static void test_dec_join_leave(void **state)
{
    (void)state;
    px_ivshm_dec *d = dec_at(3, VEC);
    px_ivshm_ev ev;
    assert_int_equal(feed(d, 9, 110, &ev), PX_OK);
    assert_int_equal(ev.vector, 0);
    assert_int_equal(feed(d, 9, 111, &ev), PX_OK);
    assert_int_equal(ev.vector, 1);
    assert_int_equal(feed(d, 9, -1, &ev), PX_OK);
    assert_int_equal(ev.kind, PX_IVSHM_EV_PEER_GONE);
    assert_int_equal(ev.peer, 9);
    /* the same ID again: vectors count from 0 */
    assert_int_equal(feed(d, 9, 112, &ev), PX_OK);
    assert_int_equal(ev.kind, PX_IVSHM_EV_PEER_FD);
    assert_int_equal(ev.vector, 0);
    /* peer 3 (one fd so far) leaves too */
    assert_int_equal(feed(d, 3, -1, &ev), PX_OK);
    assert_int_equal(ev.kind, PX_IVSHM_EV_PEER_GONE);
    assert_int_equal(ev.peer, 3);
    assert_true(px_ivshm_dec_ready(d));
    free(d);
}

static void test_dec_rejects(void **state)
{
    (void)state;
    const struct {
        int stage;
        int64_t value;
        int fd;
        const char *what;
    } bad[] = {
        {0, 1, -1, "version 1"},
        {0, 0, 100, "version with an fd"},
        {0, 5, -1, "an ID before the version"},
        {0, -1, 100, "the shm before the version"},
        {1, 5, 100, "own ID with an fd"},
        {1, -1, -1, "own ID -1"},
        {1, 65536, -1, "own ID 65536"},
        {1, INT64_MIN, -1, "own ID INT64_MIN"},
        {2, 3, 100, "a peer's fd before the shm"},
        {2, 3, -1, "a leave before the shm"},
        {2, -1, -1, "shm without an fd"},
        {2, 0, -1, "a second version"},
        {3, -1, 120, "a second shm"},
        {3, -1, -1, "-1 without an fd after the greeting"},
        {3, -2, 120, "value -2"},
        {3, 65536, 120, "peer 65536"},
        {3, INT64_MAX, -1, "INT64_MAX"},
        {3, INT64_MIN, 120, "INT64_MIN"},
        {3, 7, -1, "own ID leaving"},
        {3, 44, -1, "an unknown peer leaving"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        px_ivshm_dec *d = dec_at(bad[i].stage, VEC);
        px_ivshm_ev ev;
        px_errmsg em = {{0}};
        px_err e = px_ivshm_dec_feed(d, bad[i].value, bad[i].fd, &ev, &em);
        if (e != PX_E_PROTO)
            fail_msg("%s: accepted (%d)", bad[i].what, e);
        assert_true(em.text[0] != '\0');
        assert_false(px_ivshm_dec_ready(d));
        /* failed for good: even a valid-looking message is refused */
        assert_int_equal(feed(d, 3, 130, &ev), PX_E_PROTO);
        assert_int_equal(feed(d, 0, -1, &ev), PX_E_PROTO);
        free(d);
    }
}

static void test_dec_vector_limits(void **state)
{
    (void)state;
    px_ivshm_ev ev;
    /* peer 3 has 1 of 2 */
    px_ivshm_dec *d = dec_at(3, VEC);
    assert_int_equal(feed(d, 3, 102, &ev), PX_OK);
    assert_int_equal(feed(d, 3, 103, &ev), PX_E_PROTO);
    free(d);
    d = dec_at(3, VEC);
    assert_int_equal(feed(d, 7, 102, &ev), PX_OK);
    assert_int_equal(feed(d, 7, 103, &ev), PX_OK);
    assert_int_equal(feed(d, 7, 104, &ev), PX_E_PROTO);
    free(d);
    /* 0 and too many mean PX_IVSHM_MAX_VECTORS */
    uint32_t maxes[] = {0, PX_IVSHM_MAX_VECTORS, 1000};
    for (size_t k = 0; k < 3; k++) {
        d = dec_at(3, maxes[k]);
        for (uint32_t v = 1; v < PX_IVSHM_MAX_VECTORS; v++) {
            assert_int_equal(feed(d, 3, 200, &ev), PX_OK);
            assert_int_equal(ev.vector, v);
        }
        assert_int_equal(feed(d, 3, 200, &ev), PX_E_PROTO);
        free(d);
    }
}

/* ---- send / recv ---- */

static void test_proto_values(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    const int64_t vals[] = {0, 1, -1, 65535, INT64_MIN, INT64_MAX, 0x0102030405060708};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
        assert_int_equal(px_ivshm_send(sv[0], vals[i], -1), PX_OK);
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        int64_t v;
        int fd;
        assert_int_equal(px_ivshm_recv(sv[1], &v, &fd), PX_OK);
        assert_true(v == vals[i]);
        assert_int_equal(fd, -1);
    }
    /* little-endian on the wire, one message = 8 bytes */
    assert_int_equal(px_ivshm_send(sv[0], 0x0102030405060708, -1), PX_OK);
    uint8_t raw[16];
    assert_int_equal(recv(sv[1], raw, sizeof(raw), 0), 8);
    const uint8_t want[8] = {8, 7, 6, 5, 4, 3, 2, 1};
    assert_memory_equal(raw, want, 8);
    /* empty, non-blocking: AGAIN */
    set_nonblock(sv[1]);
    int64_t v;
    int fd;
    assert_int_equal(px_ivshm_recv(sv[1], &v, &fd), PX_E_AGAIN);
    /* full, non-blocking: AGAIN on send */
    set_nonblock(sv[0]);
    px_err e;
    unsigned n = 0;
    while ((e = px_ivshm_send(sv[0], 5, -1)) == PX_OK)
        assert_true(++n < 10000000u);
    assert_int_equal(e, PX_E_AGAIN);
    close(sv[0]);
    close(sv[1]);
}

static void test_proto_fds(void **state)
{
    (void)state;
    int base = count_fds();
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    int mfd = make_memfd(8192);
    assert_int_equal(px_ivshm_send(sv[0], -1, mfd), PX_OK);
    int64_t v;
    int fd;
    assert_int_equal(px_ivshm_recv(sv[1], &v, &fd), PX_OK);
    assert_true(v == -1);
    assert_true(fd >= 0 && fd != mfd);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    struct stat a, b;
    assert_int_equal(fstat(fd, &a), 0);
    assert_int_equal(fstat(mfd, &b), 0);
    assert_true(a.st_ino == b.st_ino && a.st_size == 8192);
    close(fd);

    /* three fds in one message: the first is kept, the others closed */
    int before = count_fds();
    uint8_t buf[8] = {9};
    struct iovec iov = {.iov_base = buf, .iov_len = 8};
    union {
        struct cmsghdr align;
        char b[CMSG_SPACE(3 * sizeof(int))];
    } ctl;
    memset(&ctl, 0, sizeof(ctl));
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(3 * sizeof(int));
    int three[3] = {mfd, mfd, mfd};
    memcpy(CMSG_DATA(c), three, sizeof(three));
    assert_int_equal(sendmsg(sv[0], &m, 0), 8);
    assert_int_equal(px_ivshm_recv(sv[1], &v, &fd), PX_OK);
    assert_true(v == 9 && fd >= 0);
    close(fd);
    assert_int_equal(count_fds(), before);

    /* a short message, then the end */
    assert_int_equal(send(sv[0], buf, 3, 0), 3);
    assert_int_equal(shutdown(sv[0], SHUT_WR), 0);
    assert_int_equal(px_ivshm_recv(sv[1], &v, &fd), PX_E_TRUNCATED);
    assert_int_equal(fd, -1);
    assert_int_equal(px_ivshm_recv(sv[1], &v, &fd), PX_E_CLOSED);
    close(sv[0]);
    close(sv[1]);
    close(mfd);
    assert_int_equal(count_fds(), base);
}

/* ---- server fixture ---- */

typedef struct fx {
    uv_loop_t loop;
    char dir[64];
    char path[128];
    int memfd;
    uint8_t *map;
    px_ivsrv *s;
    bool manual; /* on_connect leaves clients pending */
    bool reject; /* on_connect rejects clients */
    uint16_t next_id;
    px_err admit_err;
    uint64_t conn[MAXREC];
    pid_t pid[MAXREC];
    unsigned n_conn;
    uint64_t aband[MAXREC];
    unsigned n_aband;
    uint16_t left[MAXREC];
    unsigned n_left;
    uint64_t rings[PX_IVSHM_MAX_VECTORS];
    unsigned ring_calls;
    uint16_t ring_id;
    bool ring_bad;
    bool close_on_leave;
    bool closed;
} fx;

static void tick_cb(uv_timer_t *t)
{
    (void)t; /* only wakes the loop so conditions are checked */
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
    bool ok; /* cond is called once per turn: some have side effects */
    while (!(ok = cond(f, arg)) && !expired)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&deadline, NULL);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    return ok;
}

static void on_connect(void *ud, uint64_t conn, pid_t pid)
{
    fx *f = ud;
    assert_true(f->n_conn < MAXREC);
    f->conn[f->n_conn] = conn;
    f->pid[f->n_conn++] = pid;
    if (f->reject)
        px_ivsrv_reject(f->s, conn);
    else if (!f->manual)
        f->admit_err = px_ivsrv_admit(f->s, conn, f->next_id++, NULL);
}

static void on_abandon(void *ud, uint64_t conn)
{
    fx *f = ud;
    assert_true(f->n_aband < MAXREC);
    f->aband[f->n_aband++] = conn;
}

static void srv_done(void *ud)
{
    ((fx *)ud)->closed = true;
}

static void on_leave(void *ud, uint16_t id)
{
    fx *f = ud;
    assert_true(f->n_left < MAXREC);
    f->left[f->n_left++] = id;
    if (f->close_on_leave) {
        px_ivsrv_close(f->s, srv_done, f);
        f->s = NULL;
    }
}

static void on_ring(void *ud, uint16_t id, uint32_t vector, uint64_t count)
{
    fx *f = ud;
    if (count < 1 || vector >= PX_IVSHM_MAX_VECTORS)
        f->ring_bad = true;
    else
        f->rings[vector] += count;
    f->ring_id = id;
    f->ring_calls++;
}

static const px_ivsrv_cbs test_cbs = {
    .on_connect = on_connect, .on_abandon = on_abandon, .on_leave = on_leave, .on_ring = on_ring};

static fx *fx_new(size_t shm_size)
{
    fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    snprintf(f->dir, sizeof(f->dir), "/tmp/pxivXXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/iv.sock", f->dir);
    f->memfd = make_memfd(shm_size);
    f->map = mmap(NULL, shm_size, PROT_READ | PROT_WRITE, MAP_SHARED, f->memfd, 0);
    assert_true(f->map != MAP_FAILED);
    f->next_id = 10;
    px_errmsg em = {{0}};
    px_err e = px_ivsrv_new(&f->loop, f->path, f->memfd, VEC, &test_cbs, f, &f->s, &em);
    if (e != PX_OK)
        fail_msg("px_ivsrv_new: %s", em.text);
    return f;
}

static int setup(void **state)
{
    *state = fx_new(SHM_SIZE);
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    if (f->s != NULL)
        px_ivsrv_close(f->s, srv_done, f);
    f->s = NULL;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_true(f->closed);
    /* everything the server opened is closed: the loop has nothing left */
    assert_int_equal(uv_loop_close(&f->loop), 0);
    assert_int_equal(access(f->path, F_OK), -1);
    munmap(f->map, SHM_SIZE);
    close(f->memfd);
    char log[160];
    snprintf(log, sizeof(log), "%s/qemu.log", f->dir);
    unlink(log);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* ---- clients joining from a thread ---- */

typedef struct opener {
    pthread_t th;
    const char *path;
    uint32_t vectors;
    int timeout;
    px_ivc *c;
    px_err err;
    px_errmsg em;
    atomic_bool done;
} opener;

static void *opener_main(void *a)
{
    opener *o = a;
    o->err = px_ivc_open_n(o->path, o->vectors, o->timeout, &o->c, &o->em);
    atomic_store(&o->done, true);
    return NULL;
}

static bool opener_done(fx *f, void *a)
{
    (void)f;
    return atomic_load(&((opener *)a)->done);
}

/* A px_ivc_open_n on a thread while the loop runs; want: its result. */
static px_ivc *join_n(fx *f, uint32_t vectors, px_err want)
{
    opener o = {.path = f->path, .vectors = vectors, .timeout = (int)WAIT_MS};
    atomic_init(&o.done, false);
    assert_int_equal(pthread_create(&o.th, NULL, opener_main, &o), 0);
    bool done = run_until(f, opener_done, &o, WAIT_MS + 1000);
    assert_int_equal(pthread_join(o.th, NULL), 0);
    assert_true(done);
    if (o.err != want)
        fail_msg("px_ivc_open_n: %d, wanted %d (%s)", o.err, want, o.em.text);
    if (want != PX_OK)
        assert_true(o.em.text[0] != '\0');
    return o.c;
}

static px_ivc *join(fx *f)
{
    px_ivc *c = join_n(f, 0, PX_OK);
    assert_int_equal(f->admit_err, PX_OK);
    return c;
}

static void assert_peers(const px_ivc *c, const uint16_t *want, uint32_t n)
{
    uint16_t ids[64];
    uint32_t got = px_ivc_peers(c, ids, 64);
    assert_int_equal(got, n);
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(ids[i], want[i]);
}

static bool n_conn_at_least(fx *f, void *a)
{
    return f->n_conn >= *(unsigned *)a;
}

static bool has_left(fx *f, void *a)
{
    for (unsigned i = 0; i < f->n_left; i++)
        if (f->left[i] == *(uint16_t *)a)
            return true;
    return false;
}

static bool fd_readable(fx *f, void *a)
{
    (void)f;
    return readable(*(int *)a, 0);
}

/* ---- server and client ---- */

static void test_srv_greeting(void **state)
{
    fx *f = *state;
    assert_int_equal(px_ivsrv_add_proxy(f->s, 2, NULL), PX_OK);
    px_ivc *a = join(f);
    assert_int_equal(px_ivc_id(a), 10);
    assert_int_equal(px_ivc_vectors(a), VEC);
    assert_peers(a, (uint16_t[]){2}, 1);
    assert_int_equal(f->pid[0], getpid());
    px_ivc *b = join(f);
    assert_int_equal(px_ivc_id(b), 11);
    assert_int_equal(px_ivc_vectors(b), VEC);
    assert_peers(b, (uint16_t[]){2, 10}, 2);
    assert_int_equal(px_ivc_process(a, NULL), PX_OK);
    assert_peers(a, (uint16_t[]){2, 11}, 2);

    px_ivsrv_peer pl[8];
    assert_int_equal(px_ivsrv_peers(f->s, pl, 8), 3);
    assert_int_equal(pl[0].id, 2);
    assert_false(pl[0].local);
    assert_int_equal(pl[1].id, 10);
    assert_true(pl[1].local);
    assert_int_equal(pl[1].pid, getpid());
    assert_int_equal(pl[2].id, 11);
    assert_int_equal(px_ivsrv_peers(f->s, pl, 1), 3); /* copies 1, counts all */

    /* The exact greeting, message by message, on a raw socket. */
    int r = raw_connect(f->path);
    unsigned three = 3;
    assert_true(run_until(f, n_conn_at_least, &three, WAIT_MS));
    const struct {
        int64_t v;
        bool fd;
    } want[] = {{0, false}, {12, false}, {-1, true}, {2, true},  {2, true}, {10, true},
                {10, true}, {11, true},  {11, true}, {12, true}, {12, true}};
    int fds[16];
    struct stat mst;
    assert_int_equal(fstat(f->memfd, &mst), 0);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        int64_t v;
        assert_int_equal(px_ivshm_recv(r, &v, &fds[i]), PX_OK);
        assert_true(v == want[i].v);
        assert_int_equal(fds[i] >= 0, want[i].fd);
    }
    struct stat st;
    assert_int_equal(fstat(fds[2], &st), 0);
    assert_true(st.st_ino == mst.st_ino && st.st_size == SHM_SIZE);
    set_nonblock(r);
    int64_t v;
    int fd;
    assert_int_equal(px_ivshm_recv(r, &v, &fd), PX_E_AGAIN);

    /* The eventfds are in vector order: peer 10's vector 1 rings A's 1. */
    uint64_t one = 1;
    uint32_t vec = 99;
    assert_int_equal(write(fds[6], &one, 8), 8);
    assert_int_equal(px_ivc_wait(a, (int)WAIT_MS, &vec, NULL), PX_OK);
    assert_int_equal(vec, 1);
    assert_int_equal(write(fds[5], &one, 8), 8);
    assert_int_equal(px_ivc_wait(a, (int)WAIT_MS, &vec, NULL), PX_OK);
    assert_int_equal(vec, 0);
    /* and the newcomer's own: A rings 12 at 1, the raw client's last fd */
    assert_int_equal(px_ivc_process(a, NULL), PX_OK);
    assert_peers(a, (uint16_t[]){2, 11, 12}, 3);
    assert_int_equal(px_ivc_ring(a, 12, 1), PX_OK);
    assert_true(readable(fds[10], 0));
    assert_false(readable(fds[9], 0));

    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    close(r);
    px_ivc_close(a);
    px_ivc_close(b);
}

static void test_srv_shm_shared(void **state)
{
    fx *f = *state;
    px_ivc *a = join(f);
    px_ivc *b = join(f);
    size_t sa = 0, sb = 0;
    uint8_t *ma = px_ivc_mem(a, &sa);
    uint8_t *mb = px_ivc_mem(b, &sb);
    assert_int_equal(sa, SHM_SIZE);
    assert_int_equal(sb, SHM_SIZE);
    assert_ptr_not_equal(ma, mb);
    memcpy(ma + 4000, "hello", 6);
    assert_string_equal((char *)mb + 4000, "hello");
    assert_string_equal((char *)f->map + 4000, "hello");
    memcpy(f->map + SHM_SIZE - 6, "world", 6);
    assert_string_equal((char *)ma + SHM_SIZE - 6, "world");
    px_ivc_close(a);
    px_ivc_close(b);
}

static void test_srv_ring_local(void **state)
{
    fx *f = *state;
    px_ivc *a = join(f);
    px_ivc *b = join(f);
    assert_int_equal(px_ivc_process(a, NULL), PX_OK);
    uint32_t v = 99;
    assert_int_equal(px_ivc_wait(b, 0, &v, NULL), PX_E_TIMEOUT);
    assert_int_equal(px_ivc_ring(a, 11, 1), PX_OK);
    assert_int_equal(px_ivc_wait(b, (int)WAIT_MS, &v, NULL), PX_OK);
    assert_int_equal(v, 1);
    assert_int_equal(px_ivc_take(b, 1), 0); /* cleared by wait */
    assert_int_equal(px_ivc_ring(a, 11, 0), PX_OK);
    assert_int_equal(px_ivc_ring(a, 11, 0), PX_OK);
    assert_true(readable(px_ivc_vector_fd(b, 0), (int)WAIT_MS));
    assert_int_equal(px_ivc_take(b, 0), 2);
    assert_int_equal(px_ivc_take(b, 0), 0);
    /* both vectors rung: the lowest first */
    assert_int_equal(px_ivc_ring(a, 11, 1), PX_OK);
    assert_int_equal(px_ivc_ring(a, 11, 0), PX_OK);
    assert_int_equal(px_ivc_wait(b, (int)WAIT_MS, &v, NULL), PX_OK);
    assert_int_equal(v, 0);
    assert_int_equal(px_ivc_wait(b, (int)WAIT_MS, &v, NULL), PX_OK);
    assert_int_equal(v, 1);
    /* itself */
    assert_int_equal(px_ivc_ring(b, 11, 1), PX_OK);
    assert_int_equal(px_ivc_wait(b, (int)WAIT_MS, &v, NULL), PX_OK);
    assert_int_equal(v, 1);
    assert_int_equal(px_ivc_ring(a, 11, 2), PX_E_NOTFOUND);
    assert_int_equal(px_ivc_ring(a, 99, 0), PX_E_NOTFOUND);
    assert_int_equal(px_ivc_vector_fd(b, 2), -1);
    px_ivc_close(a);
    px_ivc_close(b);
}

static bool rings_reach(fx *f, void *a)
{
    const uint64_t *w = a;
    return f->rings[0] >= w[0] && f->rings[1] >= w[1];
}

static void test_srv_ring_proxy(void **state)
{
    fx *f = *state;
    assert_int_equal(px_ivsrv_add_proxy(f->s, 2, NULL), PX_OK);
    px_ivc *a = join(f);
    for (int i = 0; i < 3; i++)
        assert_int_equal(px_ivc_ring(a, 2, 1), PX_OK);
    uint64_t want[2] = {0, 3};
    assert_true(run_until(f, rings_reach, want, WAIT_MS));
    assert_int_equal(f->rings[1], 3);
    assert_int_equal(f->rings[0], 0);
    assert_int_equal(f->ring_id, 2);
    assert_false(f->ring_bad);
    want[0] = 1;
    assert_int_equal(px_ivc_ring(a, 2, 0), PX_OK);
    assert_true(run_until(f, rings_reach, want, WAIT_MS));
    px_ivsrv_peer pl[4];
    assert_int_equal(px_ivsrv_peers(f->s, pl, 4), 2);
    assert_int_equal(pl[0].id, 2);
    assert_int_equal(pl[0].rings_out, 4);
    /* a proxy's eventfd made blocking (as QEMU does to the fds it gets)
     * is still only read when it has something */
    int pfd = -1;
    {
        int r = raw_connect(f->path);
        unsigned two = 2;
        assert_true(run_until(f, n_conn_at_least, &two, WAIT_MS));
        int64_t v;
        int fd;
        for (int i = 0; i < 5; i++) { /* version, ID, shm, 2 x peer 2 */
            assert_int_equal(px_ivshm_recv(r, &v, &fd), PX_OK);
            if (i == 3)
                pfd = fd;
            else if (fd >= 0)
                close(fd);
        }
        assert_int_equal(fcntl(pfd, F_SETFL, fcntl(pfd, F_GETFL) & ~O_NONBLOCK), 0);
        uint64_t one = 1;
        assert_int_equal(write(pfd, &one, 8), 8);
        want[0] = 2;
        assert_true(run_until(f, rings_reach, want, WAIT_MS));
        close(r);
    }
    close(pfd);
    px_ivc_close(a);
}

static void test_srv_notify(void **state)
{
    fx *f = *state;
    assert_int_equal(px_ivsrv_add_proxy(f->s, 2, NULL), PX_OK);
    px_ivc *a = join(f);
    uint32_t v = 99;
    assert_int_equal(px_ivsrv_notify(f->s, 10, 1), PX_OK);
    assert_int_equal(px_ivc_wait(a, (int)WAIT_MS, &v, NULL), PX_OK);
    assert_int_equal(v, 1);
    assert_int_equal(px_ivsrv_notify(f->s, 10, 0), PX_OK);
    assert_int_equal(px_ivc_wait(a, (int)WAIT_MS, &v, NULL), PX_OK);
    assert_int_equal(v, 0);
    assert_int_equal(px_ivsrv_notify(f->s, 10, 2), PX_E_NOTFOUND);
    assert_int_equal(px_ivsrv_notify(f->s, 2, 0), PX_E_NOTFOUND); /* a proxy */
    assert_int_equal(px_ivsrv_notify(f->s, 99, 0), PX_E_NOTFOUND);
    px_ivsrv_peer pl[4];
    assert_int_equal(px_ivsrv_peers(f->s, pl, 4), 2);
    assert_int_equal(pl[1].id, 10);
    assert_int_equal(pl[1].rings_in, 2);
    assert_int_equal(pl[0].rings_in, 0);
    px_ivc_close(a);
}

static void test_srv_leave(void **state)
{
    fx *f = *state;
    assert_int_equal(px_ivsrv_add_proxy(f->s, 2, NULL), PX_OK);
    px_ivc *a = join(f);
    px_ivc *b = join(f);
    px_ivc *c = join(f);
    assert_peers(c, (uint16_t[]){2, 10, 11}, 3);
    px_ivc_close(a);
    uint16_t id = 10;
    assert_true(run_until(f, has_left, &id, WAIT_MS));
    assert_int_equal(f->n_left, 1);
    /* the others were told before on_leave; px_ivc_wait handles notices */
    uint32_t v;
    assert_int_equal(px_ivc_wait(b, 20, &v, NULL), PX_E_TIMEOUT);
    assert_peers(b, (uint16_t[]){2, 12}, 2);
    px_ivsrv_remove(f->s, 2);
    px_ivsrv_remove(f->s, 2); /* not there any more: nothing */
    px_ivsrv_remove(f->s, 777);
    assert_int_equal(px_ivc_process(b, NULL), PX_OK);
    assert_peers(b, (uint16_t[]){12}, 1);
    assert_int_equal(px_ivc_ring(b, 2, 0), PX_E_NOTFOUND);
    /* removing a local peer closes its socket, without on_leave */
    px_ivsrv_remove(f->s, 12);
    int cfd = px_ivc_fd(c);
    assert_true(run_until(f, fd_readable, &cfd, WAIT_MS));
    assert_int_equal(px_ivc_process(c, NULL), PX_E_CLOSED);
    assert_int_equal(px_ivc_process(b, NULL), PX_OK);
    assert_peers(b, NULL, 0);
    px_ivsrv_peer pl[4];
    assert_int_equal(px_ivsrv_peers(f->s, pl, 4), 1);
    assert_int_equal(pl[0].id, 11);
    /* the ID can be used again */
    px_ivc_close(c);
    f->next_id = 12;
    px_ivc *d = join(f);
    assert_int_equal(px_ivc_id(d), 12);
    assert_int_equal(f->n_left, 1);
    px_ivc_close(d);
    px_ivc_close(b);
}

/* Drain the raw client that stopped reading: every message goes through a
 * decoder (any protocol slip fails), fds are closed, known[] tracks. */
typedef struct drain {
    int fd;
    px_ivshm_dec dec;
    bool failed;
    bool closed;
    unsigned msgs;
    const uint16_t *want;
    unsigned n_want;
} drain;

static bool drained_to(fx *f, void *a)
{
    (void)f;
    drain *d = a;
    for (;;) {
        int64_t v;
        int fd;
        px_err e = px_ivshm_recv(d->fd, &v, &fd);
        if (e == PX_E_AGAIN)
            break;
        if (e != PX_OK) {
            d->closed = true;
            return true;
        }
        d->msgs++;
        px_ivshm_ev ev;
        px_errmsg em;
        if (px_ivshm_dec_feed(&d->dec, v, fd, &ev, &em) != PX_OK) {
            print_error("raw client: %s\n", em.text);
            d->failed = true;
            if (fd >= 0)
                close(fd);
            return true;
        }
        if (ev.fd >= 0)
            close(ev.fd);
    }
    if (!px_ivshm_dec_ready(&d->dec))
        return false;
    unsigned known = 0;
    for (unsigned id = 0; id < PX_IVSHM_MAX_PEERS; id++) {
        if (id == d->dec.own || d->dec.n_fds[id] == 0)
            continue;
        bool wanted = false;
        for (unsigned k = 0; k < d->n_want; k++)
            wanted |= d->want[k] == id && d->dec.n_fds[id] == VEC;
        if (!wanted)
            return false;
        known++;
    }
    return known == d->n_want && d->dec.n_fds[d->dec.own] == VEC;
}

static void test_srv_not_reading(void **state)
{
    fx *f = *state;
    drain *d = calloc(1, sizeof(*d));
    assert_non_null(d);
    px_ivshm_dec_init(&d->dec, VEC);
    d->fd = raw_connect(f->path); /* admitted as 10, and then not read */
    unsigned one = 1;
    assert_true(run_until(f, n_conn_at_least, &one, WAIT_MS));
    px_ivc *b = join(f); /* 11 */
    int before = count_fds();
    /* 3000 messages to each client: far more than a socket buffer holds */
    for (unsigned k = 0; k < 1000; k++) {
        uint16_t id = (uint16_t)(1000 + k % 50);
        assert_int_equal(px_ivsrv_add_proxy(f->s, id, NULL), PX_OK);
        px_ivsrv_remove(f->s, id);
        if (k % 16 == 0) {
            assert_int_equal(px_ivc_process(b, NULL), PX_OK);
            uv_run(&f->loop, UV_RUN_NOWAIT);
        }
    }
    for (uint16_t id = 500; id < 503; id++)
        assert_int_equal(px_ivsrv_add_proxy(f->s, id, NULL), PX_OK);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(px_ivc_process(b, NULL), PX_OK);
    assert_peers(b, (uint16_t[]){10, 500, 501, 502}, 4);
    assert_int_equal(f->n_left, 0);
    /* Queued messages hold no fds: what is open now is the 3 proxies'
     * eventfds, twice (the server's, and b's copies). */
    assert_int_equal(count_fds() - before, 3 * VEC * 2);
    /* The server goes on serving: a newcomer gets its greeting. */
    px_ivc *c = join(f); /* 12 */
    assert_peers(c, (uint16_t[]){10, 11, 500, 501, 502}, 5);
    /* Now the raw client reads it all: a valid stream, the right peers. */
    set_nonblock(d->fd);
    d->want = (const uint16_t[]){11, 12, 500, 501, 502};
    d->n_want = 5;
    bool ok = run_until(f, drained_to, d, WAIT_MS);
    assert_false(d->failed);
    assert_false(d->closed);
    assert_true(ok);
    assert_int_equal(d->dec.own, 10);
    assert_int_equal(f->n_left, 0);
    close(d->fd);
    free(d);
    px_ivc_close(b);
    px_ivc_close(c);
}

/* A client that never reads and then goes, while its queue is full. */
static void test_srv_not_reading_gone(void **state)
{
    fx *f = *state;
    int r = raw_connect(f->path); /* 10 */
    unsigned one = 1;
    assert_true(run_until(f, n_conn_at_least, &one, WAIT_MS));
    for (uint16_t id = 100; id < 600; id++)
        assert_int_equal(px_ivsrv_add_proxy(f->s, id, NULL), PX_OK);
    close(r);
    uint16_t id = 10;
    assert_true(run_until(f, has_left, &id, WAIT_MS));
    px_ivsrv_peer pl[1];
    assert_int_equal(px_ivsrv_peers(f->s, pl, 1), 500);
}

static bool aband_and_conn(fx *f, void *a)
{
    unsigned n = *(unsigned *)a;
    return f->n_aband >= n && f->n_conn >= n;
}

static bool out_drained(fx *f, void *a)
{
    (void)f;
    int n = -1;
    return ioctl(*(int *)a, SIOCOUTQ, &n) == 0 && n == 0;
}

static void test_srv_misbehave(void **state)
{
    fx *f = *state;
    f->manual = true;
    int base = count_fds();
    /* connect and close at once */
    for (int i = 0; i < 20; i++)
        close(raw_connect(f->path));
    unsigned twenty = 20;
    assert_true(run_until(f, aband_and_conn, &twenty, WAIT_MS));
    for (unsigned i = 0; i < 20; i++)
        assert_true(f->aband[i] == f->conn[i]);
    assert_int_equal(px_ivsrv_admit(f->s, f->conn[0], 30, NULL), PX_E_NOTFOUND);

    /* admitted, then gone before reading a thing */
    int r1 = raw_connect(f->path);
    unsigned n = 21;
    assert_true(run_until(f, n_conn_at_least, &n, WAIT_MS));
    assert_int_equal(px_ivsrv_admit(f->s, f->conn[20], 30, NULL), PX_OK);
    close(r1);
    uint16_t id = 30;
    assert_true(run_until(f, has_left, &id, WAIT_MS));

    /* one that talks: bytes and an fd, all ignored; it stays */
    int r2 = raw_connect(f->path);
    n = 22;
    assert_true(run_until(f, n_conn_at_least, &n, WAIT_MS));
    uint64_t c2 = f->conn[21];
    assert_int_equal(px_ivsrv_admit(f->s, c2, 31, NULL), PX_OK);
    int fds_before = count_fds();
    char junk[4096];
    memset(junk, 0x5a, sizeof(junk));
    for (int i = 0; i < 8; i++)
        assert_int_equal(send(r2, junk, sizeof(junk), 0), (ssize_t)sizeof(junk));
    assert_int_equal(px_ivshm_send(r2, -1, f->memfd), PX_OK);
    assert_true(run_until(f, out_drained, &r2, WAIT_MS));
    assert_int_equal(count_fds(), fds_before);
    assert_int_equal(f->n_left, 1);
    assert_int_equal(px_ivsrv_add_proxy(f->s, 40, NULL), PX_OK);
    px_ivshm_dec *dd = malloc(sizeof(*dd));
    assert_non_null(dd);
    px_ivshm_dec_init(dd, VEC);
    for (int i = 0; i < 3 + 2 * (int)VEC; i++) { /* greeting (own fds only), proxy 40 joined */
        int64_t v;
        int fd;
        px_ivshm_ev ev;
        assert_int_equal(px_ivshm_recv(r2, &v, &fd), PX_OK);
        assert_int_equal(px_ivshm_dec_feed(dd, v, fd, &ev, NULL), PX_OK);
        if (ev.fd >= 0)
            close(ev.fd);
    }
    assert_int_equal(dd->n_fds[40], VEC);
    free(dd);

    /* API misuse */
    assert_int_equal(px_ivsrv_admit(f->s, c2, 32, NULL), PX_E_INVAL);
    assert_int_equal(px_ivsrv_admit(f->s, 999999, 32, NULL), PX_E_NOTFOUND);
    int r3 = raw_connect(f->path);
    n = 23;
    assert_true(run_until(f, n_conn_at_least, &n, WAIT_MS));
    px_errmsg em = {{0}};
    assert_int_equal(px_ivsrv_admit(f->s, f->conn[22], 31, &em), PX_E_EXISTS);
    assert_non_null(strstr(em.text, "31"));
    assert_int_equal(px_ivsrv_admit(f->s, f->conn[22], 40, NULL), PX_E_EXISTS);
    assert_int_equal(px_ivsrv_add_proxy(f->s, 31, NULL), PX_E_EXISTS);
    assert_int_equal(px_ivsrv_add_proxy(f->s, 40, NULL), PX_E_EXISTS);
    /* rejected: the client sees the end, no on_abandon */
    px_ivsrv_reject(f->s, f->conn[22]);
    px_ivsrv_reject(f->s, c2); /* admitted: not a pending client, nothing */
    assert_true(run_until(f, fd_readable, &r3, WAIT_MS));
    char b;
    assert_int_equal(recv(r3, &b, 1, 0), 0);
    assert_int_equal(f->n_aband, 20);
    close(r3);
    /* r2 is still served */
    px_ivsrv_remove(f->s, 40);
    int64_t v;
    int fd;
    assert_int_equal(px_ivshm_recv(r2, &v, &fd), PX_OK);
    assert_true(v == 40 && fd == -1);
    close(r2);
    id = 31;
    assert_true(run_until(f, has_left, &id, WAIT_MS));
    assert_int_equal(count_fds(), base);
}

static void test_srv_close_in_callback(void **state)
{
    fx *f = *state;
    px_ivc *a = join(f);
    px_ivc *b = join(f);
    f->close_on_leave = true;
    px_ivc_close(a);
    int bfd = px_ivc_fd(b);
    assert_true(run_until(f, fd_readable, &bfd, WAIT_MS));
    assert_null(f->s);
    assert_int_equal(f->n_left, 1);
    px_errmsg em = {{0}};
    px_err e;
    /* the leave notice may come first, then the end */
    while ((e = px_ivc_process(b, &em)) == PX_OK)
        assert_true(readable(bfd, (int)WAIT_MS));
    assert_int_equal(e, PX_E_CLOSED);
    px_ivc_close(b);
}

static void test_srv_new_checks(void **state)
{
    (void)state;
    int base0 = count_fds();
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    int base = count_fds();
    char dir[] = "/tmp/pxivXXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/iv.sock", dir);
    px_ivsrv *s = (px_ivsrv *)1;
    px_errmsg em = {{0}};

    int m = make_memfd(12288);
    assert_int_equal(px_ivsrv_new(&loop, path, m, VEC, &test_cbs, NULL, &s, &em), PX_E_CONFIG);
    assert_null(s);
    assert_non_null(strstr(em.text, "power of two"));
    assert_non_null(strstr(em.text, "QEMU"));
    assert_non_null(strstr(em.text, "12288"));
    close(m);
    m = make_memfd(2048);
    assert_int_equal(px_ivsrv_new(&loop, path, m, VEC, &test_cbs, NULL, &s, &em), PX_E_CONFIG);
    close(m);
    m = make_memfd(0);
    assert_int_equal(px_ivsrv_new(&loop, path, m, VEC, &test_cbs, NULL, &s, &em), PX_E_CONFIG);
    close(m);
    m = make_memfd(4096);
    assert_int_equal(px_ivsrv_new(&loop, path, m, 0, &test_cbs, NULL, &s, &em), PX_E_CONFIG);
    assert_int_equal(
        px_ivsrv_new(&loop, path, m, PX_IVSHM_MAX_VECTORS + 1, &test_cbs, NULL, &s, &em),
        PX_E_CONFIG);
    char longp[200];
    memset(longp, 'x', sizeof(longp) - 1);
    longp[0] = '/';
    longp[sizeof(longp) - 1] = '\0';
    assert_int_equal(px_ivsrv_new(&loop, longp, m, VEC, &test_cbs, NULL, &s, &em), PX_E_CONFIG);
    char nodir[160];
    snprintf(nodir, sizeof(nodir), "%s/no/such/dir.sock", dir);
    assert_int_equal(px_ivsrv_new(&loop, nodir, m, VEC, &test_cbs, NULL, &s, &em), PX_E_IO);
    assert_non_null(strstr(em.text, nodir));
    assert_null(s);
    assert_int_equal(count_fds(), base + 1);

    /* a stale file is replaced; the socket is 0600 */
    int junk = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    assert_true(junk >= 0);
    close(junk);
    assert_int_equal(px_ivsrv_new(&loop, path, m, PX_IVSHM_MAX_VECTORS, &test_cbs, NULL, &s, &em),
                     PX_OK);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    close(m); /* the server has its own copy */
    px_ivsrv_close(s, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(access(path, F_OK), -1);
    rmdir(dir);
    assert_int_equal(count_fds(), base0);
}

/* ---- client ---- */

static void test_cli_open(void **state)
{
    fx *f = *state;
    px_errmsg em = {{0}};
    px_ivc *c = (px_ivc *)1;
    char nopath[160];
    snprintf(nopath, sizeof(nopath), "%s/none.sock", f->dir);
    assert_int_equal(px_ivc_open(nopath, 1000, &c, &em), PX_E_NOTFOUND);
    assert_null(c);
    assert_non_null(strstr(em.text, nopath));
    assert_int_equal(px_ivc_open_n(f->path, PX_IVSHM_MAX_VECTORS + 1, 1000, &c, &em), PX_E_INVAL);

    /* not admitted in time (the loop is not even running) */
    f->manual = true;
    assert_int_equal(px_ivc_open(f->path, 50, &c, &em), PX_E_TIMEOUT);
    assert_non_null(strstr(em.text, "admitted"));
    unsigned one = 1;
    assert_true(run_until(f, aband_and_conn, &one, WAIT_MS));
    f->manual = false;
    /* rejected */
    f->reject = true;
    join_n(f, 0, PX_E_CLOSED);
    f->reject = false;
    assert_int_equal(f->n_aband, 1);

    /* alone in the region: N from the quiet after its own fds (rule 3).
     * The server wrote the whole greeting before join() returned, so even
     * if the client's thread was held up past PX_IVC_SETTLE_MS between
     * two own fds, px_ivc_process takes the rest now. */
    px_ivc *a = join(f);
    assert_int_equal(px_ivc_process(a, NULL), PX_OK);
    assert_int_equal(px_ivc_vectors(a), VEC);
    assert_int_equal(px_ivc_vector_fd(a, VEC), -1);
    assert_true(px_ivc_vector_fd(a, VEC - 1) >= 0);
    assert_peers(a, NULL, 0);
    /* N from the other peers (rule 2), and given (rule 1) */
    px_ivc *b = join(f);
    assert_int_equal(px_ivc_vectors(b), VEC);
    px_ivc *c3 = join_n(f, VEC, PX_OK);
    assert_int_equal(px_ivc_vectors(c3), VEC);
    /* fewer vectors than the server's: a protocol error, as for QEMU */
    join_n(f, 1, PX_E_PROTO);
    /* the server goes away */
    px_ivsrv_close(f->s, srv_done, f);
    f->s = NULL;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_true(readable(px_ivc_fd(a), (int)WAIT_MS));
    px_err e;
    while ((e = px_ivc_process(a, &em)) == PX_OK)
        assert_true(readable(px_ivc_fd(a), (int)WAIT_MS));
    assert_int_equal(e, PX_E_CLOSED);
    uint32_t v;
    assert_int_equal(px_ivc_wait(b, (int)WAIT_MS, &v, &em), PX_E_CLOSED);
    px_ivc_close(a);
    px_ivc_close(b);
    px_ivc_close(c3);
    px_ivc_close(NULL);
}

/* The greeting-complete rules (client.h) against a server played by the
 * test: it writes each message itself and waits for px_ivc_open_n to
 * return by joining its thread. */
typedef struct fake {
    char dir[64];
    char path[128];
    int lfd, s, shm;
    opener o;
} fake;

static void fake_open(fake *k, uint32_t vectors, int timeout)
{
    k->o = (opener){.path = k->path, .vectors = vectors, .timeout = timeout};
    atomic_init(&k->o.done, false);
    assert_int_equal(pthread_create(&k->o.th, NULL, opener_main, &k->o), 0);
    k->s = accept4(k->lfd, NULL, NULL, SOCK_CLOEXEC);
    assert_true(k->s >= 0);
    assert_int_equal(px_ivshm_send(k->s, 0, -1), PX_OK);
    assert_int_equal(px_ivshm_send(k->s, 7, -1), PX_OK);
    assert_int_equal(px_ivshm_send(k->s, -1, k->shm), PX_OK);
}

static void fake_send(fake *k, int64_t v, bool fd)
{
    int e = fd ? eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) : -1;
    assert_int_equal(px_ivshm_send(k->s, v, e), PX_OK);
    if (e >= 0)
        close(e);
}

static px_err fake_wait(fake *k)
{
    assert_int_equal(pthread_join(k->o.th, NULL), 0);
    return k->o.err;
}

static void test_cli_greeting_rules(void **state)
{
    (void)state;
    int base = count_fds();
    fake *k = calloc(1, sizeof(*k));
    assert_non_null(k);
    snprintf(k->dir, sizeof(k->dir), "/tmp/pxivXXXXXX");
    assert_non_null(mkdtemp(k->dir));
    snprintf(k->path, sizeof(k->path), "%s/fake.sock", k->dir);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", k->path);
    k->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(k->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(k->lfd, 4), 0);
    k->shm = make_memfd(4096);

    /* Rule 3, alone: one own fd, then quiet: open returns with 1 vector.
     * A late own fd still counts, until another message fixes N. */
    fake_open(k, 0, (int)WAIT_MS);
    fake_send(k, 7, true);
    assert_int_equal(fake_wait(k), PX_OK);
    px_ivc *c = k->o.c;
    assert_int_equal(px_ivc_vectors(c), 1);
    fake_send(k, 7, true);
    assert_int_equal(px_ivc_process(c, NULL), PX_OK);
    assert_int_equal(px_ivc_vectors(c), 2);
    fake_send(k, 3, true);
    fake_send(k, 3, true);
    assert_int_equal(px_ivc_process(c, NULL), PX_OK);
    assert_peers(c, (uint16_t[]){3}, 1);
    fake_send(k, 7, true); /* N is 2 now */
    px_errmsg em = {{0}};
    assert_int_equal(px_ivc_process(c, &em), PX_E_PROTO);
    px_ivc_close(c);
    close(k->s);

    /* Rule 2: the peers have 2, the own fds stop at 1: a protocol error */
    fake_open(k, 0, (int)WAIT_MS);
    fake_send(k, 3, true);
    fake_send(k, 3, true);
    fake_send(k, 7, true);
    fake_send(k, 3, false);
    assert_int_equal(fake_wait(k), PX_E_PROTO);
    assert_non_null(strstr(k->o.em.text, "1 own eventfds, not 2"));
    close(k->s);

    /* Rule 1: told 2, it waits for the second */
    fake_open(k, 2, (int)WAIT_MS);
    fake_send(k, 7, true);
    fake_send(k, 7, true);
    assert_int_equal(fake_wait(k), PX_OK);
    assert_int_equal(px_ivc_vectors(k->o.c), 2);
    assert_int_equal(px_ivc_id(k->o.c), 7);
    px_ivc_close(k->o.c);
    close(k->s);
    /* ... and gives up when it does not come */
    fake_open(k, 2, 100);
    fake_send(k, 7, true);
    assert_int_equal(fake_wait(k), PX_E_TIMEOUT);
    assert_non_null(strstr(k->o.em.text, "1 own eventfds of 2"));
    close(k->s);

    close(k->shm);
    close(k->lfd);
    unlink(k->path);
    rmdir(k->dir);
    free(k);
    assert_int_equal(count_fds(), base);
}

/* ---- stock QEMU ---- */

static bool in_path(const char *prog)
{
    const char *p = getenv("PATH");
    if (p == NULL)
        return false;
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", p);
    for (char *save = NULL, *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        char full[4200];
        snprintf(full, sizeof(full), "%s/%s", d, prog);
        if (access(full, X_OK) == 0)
            return true;
    }
    return false;
}

typedef struct qmp {
    int fd;
    char buf[1 << 16];
    size_t len;
} qmp;

/* Read lines until one contains needle (copied to out); false on timeout or EOF. */
static bool qmp_line(qmp *q, const char *needle, char *out, size_t cap, int ms)
{
    for (;;) {
        char *nl;
        while ((nl = memchr(q->buf, '\n', q->len)) != NULL) {
            size_t n = (size_t)(nl - q->buf) + 1;
            *nl = '\0';
            bool hit = strstr(q->buf, needle) != NULL;
            if (hit)
                snprintf(out, cap, "%s", q->buf);
            memmove(q->buf, q->buf + n, q->len - n);
            q->len -= n;
            if (hit)
                return true;
        }
        if (q->len >= sizeof(q->buf) - 1 || !readable(q->fd, ms))
            return false;
        ssize_t r = recv(q->fd, q->buf + q->len, sizeof(q->buf) - 1 - q->len, 0);
        if (r <= 0)
            return false;
        q->len += (size_t)r;
    }
}

static bool qmp_cmd(qmp *q, const char *cmd, char *out, size_t cap)
{
    size_t n = strlen(cmd);
    if (send(q->fd, cmd, n, MSG_NOSIGNAL) != (ssize_t)n)
        return false;
    return qmp_line(q, "\"return\"", out, cap, (int)WAIT_MS);
}

typedef struct qemu_proc {
    pid_t pid;
    bool exited;
    char qmp_path[160];
    int qmp_fd;
} qemu_proc;

static bool qemu_connected(fx *f, void *a)
{
    qemu_proc *q = a;
    int st;
    if (!q->exited && waitpid(q->pid, &st, WNOHANG) == q->pid)
        q->exited = true;
    return q->exited || f->n_conn >= 1;
}

static bool qmp_up(fx *f, void *a)
{
    (void)f;
    qemu_proc *q = a;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", q->qmp_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        q->qmp_fd = fd;
        return true;
    }
    if (fd >= 0)
        close(fd);
    int st;
    if (!q->exited && waitpid(q->pid, &st, WNOHANG) == q->pid)
        q->exited = true;
    return q->exited;
}

static bool qemu_alive(qemu_proc *q)
{
    int st;
    if (!q->exited && waitpid(q->pid, &st, WNOHANG) == q->pid)
        q->exited = true;
    return !q->exited;
}

static void dump_log(const fx *f)
{
    char path[160], buf[4096];
    snprintf(path, sizeof(path), "%s/qemu.log", f->dir);
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return;
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    print_error("QEMU's output:\n%s\n", buf);
}

static void test_qemu(void **state)
{
    fx *f = *state;
    if (!in_path("qemu-system-x86_64")) {
        print_message("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)\n");
        skip();
    }
    f->next_id = 1;
    qemu_proc q = {.qmp_fd = -1};
    snprintf(q.qmp_path, sizeof(q.qmp_path), "%s/qmp.sock", f->dir);
    char chardev[200], qmparg[200], logp[160];
    snprintf(chardev, sizeof(chardev), "socket,path=%s,id=iv0", f->path);
    snprintf(qmparg, sizeof(qmparg), "unix:%s,server=on,wait=off", q.qmp_path);
    snprintf(logp, sizeof(logp), "%s/qemu.log", f->dir);
    char *argv[] = {"qemu-system-x86_64",
                    "-M",
                    "q35",
                    "-accel",
                    "tcg",
                    "-nodefaults",
                    "-display",
                    "none",
                    "-S",
                    "-m",
                    "64M",
                    "-chardev",
                    chardev,
                    "-device",
                    "ivshmem-doorbell,vectors=2,chardev=iv0,bus=pcie.0",
                    "-qmp",
                    qmparg,
                    NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, logp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    assert_int_equal(posix_spawnp(&q.pid, argv[0], &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);

    /* QEMU connects while it realizes the device, and waits for its
     * greeting; on_connect admits it as peer 1 with its pid. */
    bool ok = run_until(f, qemu_connected, &q, WAIT_MS);
    if (!ok || q.exited)
        dump_log(f);
    assert_true(ok && !q.exited);
    assert_int_equal(f->pid[0], q.pid);
    assert_int_equal(f->admit_err, PX_OK);
    ok = run_until(f, qmp_up, &q, WAIT_MS);
    if (!ok || q.exited)
        dump_log(f);
    assert_true(ok && !q.exited);
    qmp *m = calloc(1, sizeof(*m));
    assert_non_null(m);
    m->fd = q.qmp_fd;
    static char line[1 << 16];
    if (!qmp_line(m, "\"QMP\"", line, sizeof(line), (int)WAIT_MS)) {
        dump_log(f);
        fail_msg("no QMP greeting from QEMU (alive: %d)", qemu_alive(&q));
    }
    assert_true(qmp_cmd(m, "{\"execute\":\"qmp_capabilities\"}\n", line, sizeof(line)));
    assert_true(qmp_cmd(m, "{\"execute\":\"query-status\"}\n", line, sizeof(line)));
    assert_non_null(strstr(line, "prelaunch"));
    /* the device is there: Red Hat 0x1af4, ivshmem 0x1110 */
    assert_true(qmp_cmd(m, "{\"execute\":\"query-pci\"}\n", line, sizeof(line)));
    assert_non_null(strstr(line, "\"device\": 4368"));

    /* a host program joins: QEMU takes the join notice (2 fds, vectors=2),
     * and a proxy peer's */
    px_ivc *c = join(f);
    assert_int_equal(px_ivc_id(c), 2);
    assert_int_equal(px_ivc_vectors(c), VEC);
    assert_peers(c, (uint16_t[]){1}, 1);
    assert_int_equal(px_ivsrv_add_proxy(f->s, 50, NULL), PX_OK);
    assert_true(qmp_cmd(m, "{\"execute\":\"query-status\"}\n", line, sizeof(line)));
    assert_true(qemu_alive(&q));
    /* doorbells at QEMU's peer: from the client and from the server */
    assert_int_equal(px_ivc_ring(c, 1, 0), PX_OK);
    assert_int_equal(px_ivc_ring(c, 1, 1), PX_OK);
    assert_int_equal(px_ivsrv_notify(f->s, 1, 1), PX_OK);
    assert_true(qmp_cmd(m, "{\"execute\":\"query-status\"}\n", line, sizeof(line)));
    /* the client and the proxy leave */
    px_ivc_close(c);
    uint16_t id = 2;
    assert_true(run_until(f, has_left, &id, WAIT_MS));
    px_ivsrv_remove(f->s, 50);
    assert_true(qmp_cmd(m, "{\"execute\":\"query-status\"}\n", line, sizeof(line)));
    assert_true(qemu_alive(&q));

    /* QEMU goes: its peer leaves */
    kill(q.pid, SIGKILL);
    int st;
    assert_int_equal(waitpid(q.pid, &st, 0), q.pid);
    id = 1;
    assert_true(run_until(f, has_left, &id, WAIT_MS));
    close(m->fd);
    free(m);
    /* QEMU complained about nothing it was sent */
    char buf[4096];
    FILE *fp = fopen(logp, "r");
    assert_non_null(fp);
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    if (strstr(buf, "ivshmem") != NULL || strstr(buf, "eventfd") != NULL)
        fail_msg("QEMU said: %s", buf);
    unlink(q.qmp_path);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    /* libuv opens some fds once per process (its signal lock pipe): open
     * them now, so that fd counts in the tests see only the tests' own. */
    uv_loop_t warm;
    uv_loop_init(&warm);
    uv_loop_close(&warm);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dec_greeting),
        cmocka_unit_test(test_dec_join_leave),
        cmocka_unit_test(test_dec_rejects),
        cmocka_unit_test(test_dec_vector_limits),
        cmocka_unit_test(test_proto_values),
        cmocka_unit_test(test_proto_fds),
        cmocka_unit_test(test_srv_new_checks),
        cmocka_unit_test_setup_teardown(test_srv_greeting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_srv_shm_shared, setup, teardown),
        cmocka_unit_test_setup_teardown(test_srv_ring_local, setup, teardown),
        cmocka_unit_test_setup_teardown(test_srv_ring_proxy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_srv_notify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_srv_leave, setup, teardown),
        cmocka_unit_test_setup_teardown(test_srv_not_reading, setup, teardown),
        cmocka_unit_test_setup_teardown(test_srv_not_reading_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_srv_misbehave, setup, teardown),
        cmocka_unit_test_setup_teardown(test_srv_close_in_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_open, setup, teardown),
        cmocka_unit_test(test_cli_greeting_rules),
        cmocka_unit_test_setup_teardown(test_qemu, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
