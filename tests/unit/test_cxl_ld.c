/* Unit tests: fabric/cxl-switch/ldsvc.h — CXL LD data between a pool's
 * node and a guest's host.
 *
 * Two px_cxlld in one process on one loop: "ha" holds the pools, "hb" is
 * the guest's host (and "hc" a third node that only exists to have a key).
 * Their px_svc_io is a fake data plane: to_node encodes nothing itself (the
 * service hands it whole envelopes), it decodes them to count the ops, and
 * queues them for delivery on a later loop iteration, where they are
 * decoded again and handed to the other service with the sender's key, as
 * the node does. Knobs: refuse every Nth send with PX_E_AGAIN (a full
 * link), lose every Nth accepted one (a broken connection), and make a node
 * unreachable (no link). Every wait runs the loop until a condition holds
 * or a deadline passes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "fabric/core/fsutil.h"
#include "fabric/core/text.h"
#include "fabric/core/wire.h"
#include "fabric/cxl-switch/ldsvc.h"

#define WAIT_MS 10000u
#define LAB     "lab1"
#define POOL    "pool0"
#define CH      PX_CXLLD_CHUNK
/* Not a multiple of the chunk: 8 whole chunks and one of 12 KiB. */
#define LD_SIZE ((uint64_t)8 * CH + 12288)
#define N_LDS   3u

/* ---- the fake data plane ---- */

typedef struct pend {
    struct pend *next;
    int to;
    px_peer from;
    size_t len;
    uint8_t data[];
} pend;

typedef struct world world;

typedef struct tnode {
    const char *name;
    char key[PX_KEY_Z85_LEN + 1];
    px_cxlld *svc;
    px_svc_io io;
    world *w;
    int idx;
} tnode;

struct world {
    uv_loop_t loop;
    uv_timer_t deliver, keepalive;
    tnode n[3];
    pend *head, *tail;
    size_t pending_bytes, max_pending;
    unsigned calls, again_every, drop_every, accepted;
    bool unreachable[3];
    bool hold; /* queue but do not deliver */
    unsigned again, lost;
    unsigned ops[PX_CXL_OP_MAX];    /* accepted messages per op */
    unsigned data_bytes, data_zero; /* DATA with bytes, with the zero flag */
    unsigned write_bytes, write_zero;
    char dir[64];
};

static world W;

static int node_named(const char *name)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(W.n[i].name, name) == 0)
            return i;
    return -1;
}

static void on_deliver(uv_timer_t *t);

static px_err fake_to_node(void *ud, const char *node, const uint8_t *data, size_t len)
{
    tnode *self = ud;
    int to = node_named(node);
    if (to < 0 || W.unreachable[to])
        return PX_E_NOTFOUND;
    W.calls++;
    if (W.again_every && W.calls % W.again_every == 0) {
        W.again++;
        return PX_E_AGAIN;
    }
    /* What the node's mesh would carry: whole envelopes that decode. */
    size_t off = 0;
    while (off < len) {
        px_msg m;
        size_t used;
        px_errmsg em = {{0}};
        px_err err = px_wire_decode(data + off, len - off, &used, &m, &em);
        if (err)
            fail_msg("the service sent bytes that do not decode: %s", em.text);
        assert_int_equal(m.env.type, PX_MSG_CXL);
        const px_msg_cxl *c = &m.body.cxl;
        assert_true(px_str_eq(c->node, self->name));
        W.ops[c->op]++;
        if (c->op == PX_CXL_DATA) {
            W.data_bytes += c->d.len > 0;
            W.data_zero += c->zero;
        }
        if (c->op == PX_CXL_WRITE) {
            W.write_bytes += c->d.len > 0;
            W.write_zero += c->zero;
        }
        off += used;
    }
    if (W.drop_every && ++W.accepted % W.drop_every == 0) {
        W.lost++;
        return PX_OK;
    }
    pend *p = malloc(sizeof(*p) + len);
    assert_non_null(p);
    p->next = NULL;
    p->to = to;
    memset(&p->from, 0, sizeof(p->from));
    snprintf(p->from.key_z85, sizeof(p->from.key_z85), "%s", self->key);
    p->len = len;
    memcpy(p->data, data, len);
    if (W.tail)
        W.tail->next = p;
    else
        W.head = p;
    W.tail = p;
    W.pending_bytes += len;
    if (W.pending_bytes > W.max_pending)
        W.max_pending = W.pending_bytes;
    uv_timer_start(&W.deliver, on_deliver, 0, 0);
    return PX_OK;
}

static const char *fake_node_key(void *ud, const char *node)
{
    (void)ud;
    int i = node_named(node);
    return i < 0 ? NULL : W.n[i].key;
}

static px_err fake_to_peer(void *ud, const px_peer *peer, const uint8_t *data, size_t len)
{
    (void)ud, (void)peer, (void)data, (void)len;
    return PX_E_NOTFOUND;
}

static void deliver_one(pend *p)
{
    size_t off = 0;
    while (off < p->len) {
        static px_msg m;
        size_t used;
        assert_int_equal(px_wire_decode(p->data + off, p->len - off, &used, &m, NULL), PX_OK);
        if (W.n[p->to].svc)
            px_cxlld_on_msg(W.n[p->to].svc, &p->from, &m.body.cxl);
        off += used;
    }
}

/* Messages queued while delivering wait for the next iteration, as on a
 * real link. */
static void on_deliver(uv_timer_t *t)
{
    if (t && W.hold)
        return;
    pend *p = W.head;
    W.head = W.tail = NULL;
    while (p) {
        pend *n = p->next;
        W.pending_bytes -= p->len;
        deliver_one(p);
        free(p);
        p = n;
    }
}

static void on_keepalive(uv_timer_t *t)
{
    (void)t;
}

static void wait_for(const bool *flag, uint32_t ms)
{
    uv_update_time(&W.loop);
    uint64_t end = uv_now(&W.loop) + ms;
    while (!*flag && uv_now(&W.loop) < end)
        uv_run(&W.loop, UV_RUN_ONCE);
}

/* Runs the loop for about ms (lets late messages arrive). */
static void settle(uint32_t ms)
{
    bool never = false;
    wait_for(&never, ms);
}

static void svc_start(int i)
{
    tnode *n = &W.n[i];
    n->io = (px_svc_io){.to_node = fake_to_node,
                        .to_peer = fake_to_peer,
                        .node_key = fake_node_key,
                        .ud = n,
                        .self = n->name};
    assert_int_equal(px_cxlld_new(&W.loop, &n->io, &n->svc), PX_OK);
}

static void closed(void *ud)
{
    *(bool *)ud = true;
}

static void svc_stop(int i)
{
    bool done = false;
    px_cxlld_close(W.n[i].svc, closed, &done);
    wait_for(&done, WAIT_MS);
    assert_true(done);
    W.n[i].svc = NULL;
}

static int setup(void **state)
{
    (void)state;
    memset(&W, 0, sizeof(W));
    assert_int_equal(uv_loop_init(&W.loop), 0);
    uv_timer_init(&W.loop, &W.deliver);
    uv_timer_init(&W.loop, &W.keepalive);
    uv_timer_start(&W.keepalive, on_keepalive, 5, 5);
    static const char *names[3] = {"ha", "hb", "hc"};
    for (int i = 0; i < 3; i++) {
        W.n[i].name = names[i];
        W.n[i].w = &W;
        W.n[i].idx = i;
        /* Stand-ins for Z85 keys: 40 characters, one per node. */
        memset(W.n[i].key, 'A' + i, PX_KEY_Z85_LEN);
    }
    snprintf(W.dir, sizeof(W.dir), "/tmp/px-cxlld-XXXXXX");
    assert_non_null(mkdtemp(W.dir));
    svc_start(0);
    svc_start(1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++)
        if (W.n[i].svc)
            svc_stop(i);
    on_deliver(NULL); /* free what is still queued (no service gets it) */
    uv_close((uv_handle_t *)&W.deliver, NULL);
    uv_close((uv_handle_t *)&W.keepalive, NULL);
    uv_run(&W.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&W.loop), 0);
    px_rm_tree(W.dir);
    return 0;
}

/* ---- files ---- */

static void path_in(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", W.dir, name);
}

static uint64_t file_size(const char *path, uint64_t *blocks)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    if (blocks)
        *blocks = (uint64_t)st.st_blocks;
    return (uint64_t)st.st_size;
}

static uint8_t *read_all(const char *path, size_t *len)
{
    char *p = NULL;
    assert_int_equal(px_read_file(path, 1u << 30, &p, len, NULL), PX_OK);
    return (uint8_t *)p;
}

static void assert_same_file(const char *a, const char *b)
{
    size_t la, lb;
    uint8_t *x = read_all(a, &la), *y = read_all(b, &lb);
    assert_int_equal(la, lb);
    if (memcmp(x, y, la) != 0) {
        size_t i = 0;
        while (x[i] == y[i])
            i++;
        fail_msg("%s and %s differ first at byte %zu", a, b, i);
    }
    free(x);
    free(y);
}

static void write_at(const char *path, uint64_t off, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, p, n, (off_t)off), (ssize_t)n);
    close(fd);
}

/* A recognisable pattern for chunk c, seed s. */
static void pattern(uint8_t *buf, size_t n, unsigned c, unsigned s)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)(i * 31 + c * 7 + s + (i >> 9));
}

static void pool_paths(uint32_t ld, char *mem, char *lsa)
{
    assert_int_equal(px_cxlld_pool_paths(W.n[0].svc, LAB, POOL, ld, mem, 4096, lsa, 4096), PX_OK);
}

/* The pool on ha with LD 1 holding data in chunks 0, 3 and 8 (the short
 * last one) and a label, the rest zero. */
static void pool_with_data(void)
{
    char dir[4096];
    path_in(dir, sizeof(dir), "pool");
    px_errmsg em = {{0}};
    assert_int_equal(px_cxlld_pool_open(W.n[0].svc, LAB, POOL, dir, N_LDS, LD_SIZE, &em), PX_OK);
    char mem[4096], lsa[4096];
    pool_paths(1, mem, lsa);
    static uint8_t buf[CH];
    pattern(buf, CH, 0, 1);
    write_at(mem, 0, buf, CH);
    pattern(buf, 100, 3, 1);
    write_at(mem, 3 * (uint64_t)CH + 5000, buf, 100);
    pattern(buf, 12288, 8, 1);
    write_at(mem, 8 * (uint64_t)CH, buf, 12288);
    write_at(lsa, 4096, "label", 5);
}

/* ---- callbacks ---- */

typedef struct res {
    bool done;
    px_err err;
    char msg[512];
    int calls;
    unsigned order; /* when it was called, among all callbacks */
} res;

static bool in_call;
static unsigned n_called;

static void on_done(void *ud, px_err err, const char *msg)
{
    res *r = ud;
    if (in_call)
        fail_msg("a callback ran inside the call that started it");
    r->done = true;
    r->err = err;
    r->calls++;
    r->order = ++n_called;
    snprintf(r->msg, sizeof(r->msg), "%s", msg);
}

/* A fetch expecting the LD at `size` bytes (0: any). */
static uint64_t fetch_sized(uint32_t ld, uint64_t size, const char *pool_node, res *r,
                            const char *mem, const char *lsa)
{
    uint64_t h = 0;
    px_errmsg em = {{0}};
    in_call = true;
    px_err err =
        px_cxlld_fetch(W.n[1].svc, LAB, POOL, pool_node, ld, size, mem, lsa, on_done, r, &h, &em);
    in_call = false;
    if (err)
        fail_msg("fetch: %s: %s", px_errname(err), em.text);
    return h;
}

static uint64_t fetch(uint32_t ld, const char *pool_node, res *r, const char *mem, const char *lsa)
{
    return fetch_sized(ld, 0, pool_node, r, mem, lsa);
}

static void writeback(uint64_t h, res *r)
{
    px_errmsg em = {{0}};
    in_call = true;
    px_err err = px_cxlld_writeback(W.n[1].svc, h, on_done, r, &em);
    in_call = false;
    if (err)
        fail_msg("write-back: %s: %s", px_errname(err), em.text);
}

static void expect_ok(res *r)
{
    wait_for(&r->done, WAIT_MS);
    if (!r->done)
        fail_msg("no callback within %u ms", WAIT_MS);
    if (r->err)
        fail_msg("%s: %s", px_errname(r->err), r->msg);
    assert_int_equal(r->calls, 1);
}

static void guest_paths(char *mem, char *lsa)
{
    path_in(mem, 4096, "g.mem");
    path_in(lsa, 4096, "g.lsa");
}

/* ---- tests ---- */

static void test_pool_open_sparse_and_kept(void **state)
{
    (void)state;
    char dir[4096], mem[4096], lsa[4096];
    path_in(dir, sizeof(dir), "a/b/pool"); /* made with its parents */
    px_errmsg em = {{0}};
    assert_int_equal(px_cxlld_pool_open(W.n[0].svc, LAB, POOL, dir, N_LDS, LD_SIZE, &em), PX_OK);
    for (uint32_t k = 0; k < N_LDS; k++) {
        assert_int_equal(
            px_cxlld_pool_paths(W.n[0].svc, LAB, POOL, k, mem, sizeof(mem), lsa, sizeof(lsa)),
            PX_OK);
        uint64_t blocks;
        assert_true(file_size(mem, &blocks) == LD_SIZE);
        assert_true(blocks == 0);
        assert_true(file_size(lsa, &blocks) == PX_CXLLD_LSA_SIZE);
        assert_true(blocks == 0);
    }
    assert_int_equal(
        px_cxlld_pool_paths(W.n[0].svc, LAB, POOL, N_LDS, mem, sizeof(mem), lsa, sizeof(lsa)),
        PX_E_NOTFOUND);
    assert_int_equal(
        px_cxlld_pool_paths(W.n[0].svc, LAB, "other", 0, mem, sizeof(mem), lsa, sizeof(lsa)),
        PX_E_NOTFOUND);
    assert_int_equal(px_cxlld_pool_paths(W.n[0].svc, LAB, POOL, 0, mem, 8, lsa, sizeof(lsa)),
                     PX_E_TOOBIG);

    /* Data written into LD 2 is there after the node restarts. */
    assert_int_equal(
        px_cxlld_pool_paths(W.n[0].svc, LAB, POOL, 2, mem, sizeof(mem), lsa, sizeof(lsa)), PX_OK);
    write_at(mem, 12345, "kept", 4);
    write_at(lsa, 0, "lbl", 3);
    svc_stop(0);
    svc_start(0);
    assert_int_equal(px_cxlld_pool_open(W.n[0].svc, LAB, POOL, dir, N_LDS, LD_SIZE, &em), PX_OK);
    size_t n;
    uint8_t *d = read_all(mem, &n);
    assert_int_equal(n, LD_SIZE);
    assert_memory_equal(d + 12345, "kept", 4);
    free(d);
    d = read_all(lsa, &n);
    assert_memory_equal(d, "lbl", 3);
    free(d);
    /* Same settings again: nothing happens. */
    assert_int_equal(px_cxlld_pool_open(W.n[0].svc, LAB, POOL, dir, N_LDS, LD_SIZE, &em), PX_OK);

    /* Another ld_size: the files that exist keep their length (and data),
     * a new LD gets the new size. */
    assert_int_equal(px_cxlld_pool_open(W.n[0].svc, LAB, POOL, dir, N_LDS + 1, LD_SIZE + 4096, &em),
                     PX_OK);
    assert_true(file_size(mem, NULL) == LD_SIZE);
    assert_true(px_cxlld_ld_size(W.n[0].svc, LAB, POOL, 2) == LD_SIZE);
    assert_true(px_cxlld_ld_size(W.n[0].svc, LAB, POOL, N_LDS) == LD_SIZE + 4096);
    d = read_all(mem, &n);
    assert_memory_equal(d + 12345, "kept", 4);
    free(d);
    /* A label file longer than label storage: refused, naming the file. */
    write_at(lsa, PX_CXLLD_LSA_SIZE, "x", 1);
    assert_int_equal(px_cxlld_pool_open(W.n[0].svc, LAB, POOL, dir, N_LDS, LD_SIZE, &em),
                     PX_E_CONFIG);
    assert_non_null(strstr(em.text, "ld2.lsa"));
    assert_true(file_size(lsa, NULL) == PX_CXLLD_LSA_SIZE + 1); /* untouched */

    /* Bad arguments. */
    assert_int_equal(px_cxlld_pool_open(W.n[0].svc, LAB, "p2", dir, 0, LD_SIZE, &em), PX_E_INVAL);
    assert_int_equal(
        px_cxlld_pool_open(W.n[0].svc, LAB, "p2", dir, PX_CXLLD_MAX_LDS + 1, LD_SIZE, &em),
        PX_E_INVAL);
    assert_int_equal(px_cxlld_pool_open(W.n[0].svc, LAB, "p2", dir, 1, 4097, &em), PX_E_INVAL);
    assert_int_equal(px_cxlld_pool_open(W.n[0].svc, LAB, "p2", dir, 1, 0, &em), PX_E_INVAL);
    assert_int_equal(px_cxlld_pool_open(W.n[0].svc, "", "p2", dir, 1, 4096, &em), PX_E_INVAL);
    path_in(dir, sizeof(dir), "a/b/pool/ld0.mem/x"); /* a file where a directory goes */
    assert_int_not_equal(px_cxlld_pool_open(W.n[0].svc, LAB, "p3", dir, 1, 4096, &em), PX_OK);
}

static void test_fetch_gives_identical_files_and_sends_no_zero_chunks(void **state)
{
    (void)state;
    pool_with_data();
    char mem[4096], lsa[4096], pmem[4096], plsa[4096];
    guest_paths(mem, lsa);
    pool_paths(1, pmem, plsa);
    /* A stale file at the guest's path: the fetch replaces its contents. */
    static uint8_t junk[2 * CH];
    memset(junk, 0xee, sizeof(junk));
    int fd = open(mem, O_CREAT | O_WRONLY, 0600);
    assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
    close(fd);

    res r = {0};
    fetch_sized(1, LD_SIZE, "ha", &r, mem, lsa);
    assert_false(r.done);
    expect_ok(&r);
    assert_same_file(pmem, mem);
    assert_same_file(plsa, lsa);
    /* 9 memory chunks (3 with data) and 8 label chunks (1 with data): only
     * the 4 travel as bytes. */
    assert_int_equal(W.ops[PX_CXL_OPEN], 1);
    assert_int_equal(W.ops[PX_CXL_INFO], 1);
    assert_int_equal(W.ops[PX_CXL_READ], 9 + PX_CXLLD_LSA_SIZE / CH);
    assert_int_equal(W.data_bytes, 4);
    assert_int_equal(W.data_zero, 9 + PX_CXLLD_LSA_SIZE / CH - 4);
    /* The guest's copy is sparse too: only the chunks with data take
     * blocks (in 512-byte units). */
    uint64_t blocks;
    file_size(mem, &blocks);
    assert_true(blocks * 512 <= 3 * (uint64_t)CH + 64 * 1024);
    px_cxlld_stats st;
    px_cxlld_stats_get(W.n[1].svc, &st);
    assert_int_equal(st.fetched, 9 + PX_CXLLD_LSA_SIZE / CH);
    assert_int_equal(st.fetched_zero, st.fetched - 4);
    px_cxlld_stats_get(W.n[0].svc, &st);
    assert_int_equal(st.reads, 9 + PX_CXLLD_LSA_SIZE / CH);
    assert_int_equal(st.data_out, 4);
    assert_int_equal(st.bad_msgs, 0);
}

static void test_writeback_sends_only_changed_chunks(void **state)
{
    (void)state;
    pool_with_data();
    char mem[4096], lsa[4096], pmem[4096], plsa[4096];
    guest_paths(mem, lsa);
    pool_paths(1, pmem, plsa);
    res r = {0};
    uint64_t h = fetch(1, "ha", &r, mem, lsa);
    expect_ok(&r);

    /* Nothing changed: a write-back reads everything and sends nothing. */
    memset(W.ops, 0, sizeof(W.ops));
    res w0 = {0};
    writeback(h, &w0);
    assert_false(w0.done);
    expect_ok(&w0);
    assert_int_equal(W.ops[PX_CXL_WRITE], 0);

    /* Chunk 1 (was zero) and chunk 3 change, chunk 0 becomes zero, the
     * short last chunk changes, one label byte changes. */
    static uint8_t buf[CH];
    pattern(buf, 4096, 1, 9);
    write_at(mem, CH + 8192, buf, 4096);
    write_at(mem, 3 * (uint64_t)CH + 5001, "x", 1);
    memset(buf, 0, CH);
    write_at(mem, 0, buf, CH);
    write_at(mem, LD_SIZE - 1, "z", 1);
    write_at(lsa, 4097, "L", 1);
    memset(W.ops, 0, sizeof(W.ops));
    res w1 = {0};
    writeback(h, &w1);
    expect_ok(&w1);
    assert_int_equal(W.ops[PX_CXL_WRITE], 5);
    assert_int_equal(W.write_zero, 1);
    assert_int_equal(W.write_bytes, 4);
    assert_int_equal(W.ops[PX_CXL_ACK], 5);
    assert_same_file(pmem, mem);
    assert_same_file(plsa, lsa);
    /* The zeroed chunk became a hole in the pool's file again. */
    uint64_t blocks;
    file_size(pmem, &blocks);
    assert_true(blocks * 512 <= 3 * (uint64_t)CH + 64 * 1024);

    /* And again: nothing new to send. */
    memset(W.ops, 0, sizeof(W.ops));
    res w2 = {0};
    writeback(h, &w2);
    expect_ok(&w2);
    assert_int_equal(W.ops[PX_CXL_WRITE], 0);
    px_cxlld_stats st;
    px_cxlld_stats_get(W.n[1].svc, &st);
    assert_int_equal(st.wb_sent, 5);
    px_cxlld_stats_get(W.n[0].svc, &st);
    assert_int_equal(st.writes, 5);
    assert_int_equal(st.bad_msgs, 0);

    /* The LD survives a move: another copy fetched afterwards (as on a
     * guest's new host) holds the written-back data. */
    char mem2[4096], lsa2[4096];
    path_in(mem2, sizeof(mem2), "g2.mem");
    path_in(lsa2, sizeof(lsa2), "g2.lsa");
    px_cxlld_forget(W.n[1].svc, h);
    res r2 = {0};
    fetch(1, "ha", &r2, mem2, lsa2);
    expect_ok(&r2);
    assert_same_file(mem, mem2);
    assert_same_file(lsa, lsa2);
}

/* Write-backs asked for while one runs run after it, and see what changed
 * in between; every caller hears once. */
/* A running guest's copy (its QEMU outlived a node restart) is adopted, not
 * fetched over; its first write-back sends every chunk, after which the pool
 * holds exactly the guest's copy. */
static void test_adopt_keeps_a_running_guests_copy(void **state)
{
    (void)state;
    pool_with_data();
    char mem[4096], lsa[4096], pmem[4096], plsa[4096];
    guest_paths(mem, lsa);
    pool_paths(1, pmem, plsa);
    res r = {0};
    uint64_t h = fetch(1, "ha", &r, mem, lsa);
    expect_ok(&r);
    px_cxlld_forget(W.n[1].svc, h);
    /* The guest writes on; the node that fetched is gone. */
    write_at(mem, 2 * (uint64_t)CH + 77, "guest", 5);
    res a = {0};
    px_errmsg em = {{0}};
    memset(W.ops, 0, sizeof(W.ops));
    assert_int_equal(
        px_cxlld_adopt(W.n[1].svc, LAB, POOL, "ha", 1, LD_SIZE, mem, lsa, on_done, &a, &h, &em),
        PX_OK);
    expect_ok(&a);
    assert_int_equal(W.ops[PX_CXL_READ], 0); /* nothing fetched over it */
    size_t n;
    uint8_t *got = read_all(mem, &n);
    assert_memory_equal(got + 2 * CH + 77, "guest", 5);
    free(got);
    res w = {0};
    writeback(h, &w);
    expect_ok(&w);
    assert_true(W.ops[PX_CXL_WRITE] >= 9); /* every chunk: the pool's hashes are not known */
    assert_same_file(pmem, mem);
    assert_same_file(plsa, lsa);
    /* Files of another size are not a running guest's: fetched as usual. */
    char mem2[4096], lsa2[4096];
    path_in(mem2, sizeof(mem2), "other.mem");
    path_in(lsa2, sizeof(lsa2), "other.lsa");
    FILE *f = fopen(mem2, "w");
    assert_non_null(f);
    fputs("short", f);
    fclose(f);
    res b = {0};
    assert_int_equal(
        px_cxlld_adopt(W.n[1].svc, LAB, POOL, "ha", 1, 0, mem2, lsa2, on_done, &b, NULL, &em),
        PX_OK);
    expect_ok(&b);
    assert_same_file(mem2, pmem);
}

static void test_writebacks_queue_behind_a_running_one(void **state)
{
    (void)state;
    pool_with_data();
    char mem[4096], lsa[4096], pmem[4096], plsa[4096];
    guest_paths(mem, lsa);
    pool_paths(1, pmem, plsa);
    res r = {0};
    uint64_t h = fetch(1, "ha", &r, mem, lsa);
    expect_ok(&r);
    write_at(mem, 5 * (uint64_t)CH, "first", 5);
    memset(W.ops, 0, sizeof(W.ops));
    res a = {0}, b = {0}, c = {0};
    W.hold = true; /* the first pass has read everything and waits for its ACK */
    writeback(h, &a);
    while (W.ops[PX_CXL_WRITE] == 0)
        uv_run(&W.loop, UV_RUN_ONCE);
    settle(20);
    assert_int_equal(W.ops[PX_CXL_WRITE], 1);
    write_at(mem, 6 * (uint64_t)CH, "second", 6);
    writeback(h, &b);
    writeback(h, &c);
    W.hold = false;
    uv_timer_start(&W.deliver, on_deliver, 0, 0);
    expect_ok(&a);
    expect_ok(&b);
    expect_ok(&c);
    assert_true(a.order < b.order && b.order < c.order);
    assert_int_equal(W.ops[PX_CXL_WRITE], 2); /* chunk 5, then chunk 6 in the second pass */
    assert_same_file(pmem, mem);
}

/* A link that is full now and then, and one that loses messages: the
 * transfers finish all the same, with retries and resends. */
static void test_full_and_lossy_links(void **state)
{
    (void)state;
    pool_with_data();
    px_cxlld_tuning t = {.retry_ms = 40};
    px_cxlld_tune(W.n[1].svc, &t);
    W.again_every = 3;
    W.drop_every = 7;
    char mem[4096], lsa[4096], pmem[4096], plsa[4096];
    guest_paths(mem, lsa);
    pool_paths(1, pmem, plsa);
    res r = {0};
    uint64_t h = fetch(1, "ha", &r, mem, lsa);
    expect_ok(&r);
    assert_same_file(pmem, mem);
    assert_same_file(plsa, lsa);
    static uint8_t buf[CH];
    for (unsigned c = 0; c < 9; c++) {
        pattern(buf, CH, c, 5);
        write_at(mem, (uint64_t)c * CH, buf, c == 8 ? 12288 : CH);
    }
    res w = {0};
    writeback(h, &w);
    expect_ok(&w);
    settle(100); /* late duplicates arrive and are ignored */
    assert_same_file(pmem, mem);
    assert_true(W.again > 0);
    assert_true(W.lost > 0);
    px_cxlld_stats st, sp;
    px_cxlld_stats_get(W.n[1].svc, &st);
    px_cxlld_stats_get(W.n[0].svc, &sp);
    assert_true(st.again > 0 || sp.held > 0);
    assert_true(st.resent > 0);
    assert_int_equal(st.bad_msgs + sp.bad_msgs, 0);
}

/* A bigger LD streams through a bounded window: what is in flight never
 * exceeds the window's chunks (plus the small requests). */
static void test_window_bounds_what_is_in_flight(void **state)
{
    (void)state;
    char dir[4096], mem[4096], lsa[4096], pmem[4096], plsa[4096];
    path_in(dir, sizeof(dir), "pool");
    const uint64_t size = 64ull << 20;
    assert_int_equal(px_cxlld_pool_open(W.n[0].svc, LAB, POOL, dir, 1, size, NULL), PX_OK);
    pool_paths(0, pmem, plsa);
    int fd = open(pmem, O_WRONLY);
    static uint8_t buf[CH];
    for (uint64_t off = 0; off < size; off += CH) {
        pattern(buf, CH, (unsigned)(off / CH), 3);
        assert_int_equal(pwrite(fd, buf, CH, (off_t)off), CH);
    }
    close(fd);
    px_cxlld_tuning t = {.window = 4};
    px_cxlld_tune(W.n[1].svc, &t);
    guest_paths(mem, lsa);
    res r = {0};
    uint64_t h = fetch(0, "ha", &r, mem, lsa);
    expect_ok(&r);
    assert_same_file(pmem, mem);
    assert_int_equal(W.data_bytes, size / CH);
    assert_true(W.max_pending <= 4 * (CH + 1024));
    for (uint64_t off = 0; off < size; off += 4 * CH)
        write_at(mem, off + 17, "w", 1);
    W.max_pending = 0;
    res w = {0};
    writeback(h, &w);
    expect_ok(&w);
    assert_same_file(pmem, mem);
    assert_int_equal(W.write_bytes, size / CH / 4);
    assert_true(W.max_pending <= 4 * (CH + 1024));
}

static void test_unreachable_pool_node_times_out(void **state)
{
    (void)state;
    px_cxlld_tuning t = {.retry_ms = 30, .timeout_ms = 300};
    px_cxlld_tune(W.n[1].svc, &t);
    W.unreachable[0] = true;
    char mem[4096], lsa[4096];
    guest_paths(mem, lsa);
    res r = {0};
    uv_update_time(&W.loop);
    uint64_t t0 = uv_now(&W.loop);
    fetch(1, "ha", &r, mem, lsa);
    wait_for(&r.done, WAIT_MS);
    assert_true(r.done);
    assert_int_equal(r.err, PX_E_TIMEOUT);
    assert_true(uv_now(&W.loop) - t0 >= 300);
    assert_non_null(strstr(r.msg, "pool node ha did not answer"));
    assert_non_null(strstr(r.msg, "LD 1 of pool pool0"));
    px_errmsg em = {{0}};
    uint64_t h;

    /* Reachable again, but the pool vanishes during a write-back. */
    W.unreachable[0] = false;
    pool_with_data();
    res r2 = {0};
    h = fetch(1, "ha", &r2, mem, lsa);
    expect_ok(&r2);
    write_at(mem, 0, "changed", 7);
    W.unreachable[0] = true;
    res w = {0};
    writeback(h, &w);
    wait_for(&w.done, WAIT_MS);
    assert_int_equal(w.err, PX_E_TIMEOUT);
    assert_non_null(strstr(w.msg, "write-back of LD 1"));
    /* The change was not acknowledged: the next write-back sends it. */
    W.unreachable[0] = false;
    memset(W.ops, 0, sizeof(W.ops));
    res w2 = {0};
    assert_int_equal(px_cxlld_writeback(W.n[1].svc, h, on_done, &w2, &em), PX_OK);
    expect_ok(&w2);
    assert_int_equal(W.ops[PX_CXL_WRITE], 1);
    char pmem[4096], plsa[4096];
    pool_paths(1, pmem, plsa);
    assert_same_file(pmem, mem);
}

static void test_pool_node_refuses(void **state)
{
    (void)state;
    char mem[4096], lsa[4096];
    guest_paths(mem, lsa);
    /* No pool on ha at all. */
    res r = {0};
    fetch(0, "ha", &r, mem, lsa);
    wait_for(&r.done, WAIT_MS);
    assert_int_equal(r.err, PX_E_NOTFOUND);
    assert_non_null(strstr(r.msg, "pool node ha refused"));
    /* An LD the pool does not have. */
    pool_with_data();
    res r2 = {0};
    uint64_t h = fetch(N_LDS + 2, "ha", &r2, mem, lsa);
    wait_for(&r2.done, WAIT_MS);
    assert_int_equal(r2.err, PX_E_NOTFOUND);
    assert_non_null(strstr(r2.msg, "no LD 5"));
    px_errmsg em = {{0}};
    res w = {0};
    assert_int_equal(px_cxlld_writeback(W.n[1].svc, h, on_done, &w, &em), PX_E_INVAL);
    assert_int_equal(px_cxlld_writeback(W.n[1].svc, 12345, on_done, &w, &em), PX_E_NOTFOUND);
    settle(20);
    assert_false(w.done);
    /* After lab_remove the pool is gone; its files stay. */
    char pmem[4096], plsa[4096];
    pool_paths(1, pmem, plsa);
    px_cxlld_lab_remove(W.n[0].svc, LAB);
    assert_int_equal(px_cxlld_pool_paths(W.n[0].svc, LAB, POOL, 1, mem, 4096, lsa, 4096),
                     PX_E_NOTFOUND);
    assert_true(file_size(pmem, NULL) == LD_SIZE);
    res r3 = {0};
    fetch(1, "ha", &r3, mem, lsa);
    wait_for(&r3.done, WAIT_MS);
    assert_int_equal(r3.err, PX_E_NOTFOUND);
}

/* A guest on the pool's node: no copy, the pool's own files. */
static void test_same_node_uses_the_pool_files(void **state)
{
    (void)state;
    char dir[4096], mem[4096], lsa[4096];
    path_in(dir, sizeof(dir), "pool");
    assert_int_equal(px_cxlld_pool_open(W.n[1].svc, LAB, POOL, dir, 2, LD_SIZE, NULL), PX_OK);
    res r = {0};
    /* The size is not looked at here: no OPEN happens. */
    uint64_t h = fetch_sized(1, 4097, "hb", &r, NULL, NULL);
    assert_false(r.done);
    expect_ok(&r);
    assert_int_equal(px_cxlld_pool_paths(W.n[1].svc, LAB, POOL, 1, mem, 4096, lsa, 4096), PX_OK);
    assert_non_null(strstr(mem, "/pool/ld1.mem"));
    res w = {0};
    writeback(h, &w);
    expect_ok(&w);
    assert_int_equal(W.calls, 0); /* nothing went anywhere */
    /* The pool must be here. */
    px_errmsg em = {{0}};
    uint64_t h2;
    res r2 = {0};
    assert_int_equal(
        px_cxlld_fetch(W.n[1].svc, LAB, "nopool", "hb", 0, 0, NULL, NULL, on_done, &r2, &h2, &em),
        PX_E_NOTFOUND);
    assert_int_equal(
        px_cxlld_fetch(W.n[1].svc, LAB, POOL, "hb", 2, 0, NULL, NULL, on_done, &r2, &h2, &em),
        PX_E_NOTFOUND);
    /* Bad arguments and unopenable files: errors, no callback. */
    assert_int_equal(
        px_cxlld_fetch(W.n[1].svc, LAB, POOL, "ha", 0, 0, NULL, NULL, on_done, &r2, &h2, &em),
        PX_E_INVAL);
    assert_int_equal(px_cxlld_fetch(W.n[1].svc, LAB, POOL, "ha", PX_CXLLD_MAX_LDS, 0, mem, lsa,
                                    on_done, &r2, &h2, &em),
                     PX_E_INVAL);
    assert_int_equal(
        px_cxlld_fetch(W.n[1].svc, LAB, POOL, "ha", 0, 4097, mem, lsa, on_done, &r2, &h2, &em),
        PX_E_INVAL);
    assert_int_equal(px_cxlld_adopt(W.n[1].svc, LAB, POOL, "ha", 0, PX_CXLLD_MAX_LD_SIZE + 4096,
                                    mem, lsa, on_done, &r2, &h2, &em),
                     PX_E_INVAL);
    assert_int_not_equal(px_cxlld_fetch(W.n[1].svc, LAB, POOL, "ha", 0, 0, "/nonexistent/dir/m",
                                        lsa, on_done, &r2, &h2, &em),
                         PX_OK);
    assert_non_null(strstr(em.text, "/nonexistent/dir/m"));
    settle(20);
    assert_false(r2.done);
}

static void test_forget_and_close_end_transfers(void **state)
{
    (void)state;
    pool_with_data();
    char mem[4096], lsa[4096];
    guest_paths(mem, lsa);
    res r = {0};
    uint64_t h = fetch(1, "ha", &r, mem, lsa);
    px_errmsg em = {{0}};
    res w = {0};
    assert_int_equal(px_cxlld_writeback(W.n[1].svc, h, on_done, &w, &em), PX_E_AGAIN);
    W.hold = true;
    while (W.ops[PX_CXL_OPEN] == 0) /* the OPEN is out: its INFO will find no transfer */
        uv_run(&W.loop, UV_RUN_ONCE);
    px_cxlld_forget(W.n[1].svc, h);
    W.hold = false;
    uv_timer_start(&W.deliver, on_deliver, 0, 0);
    px_cxlld_forget(W.n[1].svc, h); /* again: ignored */
    assert_false(r.done);           /* not inside forget */
    wait_for(&r.done, WAIT_MS);
    assert_int_equal(r.err, PX_E_CLOSED);
    settle(50); /* the answers to the forgotten transfer arrive: counted, dropped */
    px_cxlld_stats st;
    px_cxlld_stats_get(W.n[1].svc, &st);
    assert_true(st.bad_msgs > 0);
    assert_int_equal(r.calls, 1);

    /* Closing with a transfer running: its callback runs before close's. */
    res r2 = {0};
    fetch(1, "ha", &r2, mem, lsa);
    bool done = false;
    px_cxlld_close(W.n[1].svc, closed, &done);
    W.n[1].svc = NULL;
    assert_false(r2.done);
    wait_for(&done, WAIT_MS);
    assert_true(done);
    assert_true(r2.done);
    assert_int_equal(r2.err, PX_E_CLOSED);
    px_cxlld_close(NULL, closed, &done);
}

/* ---- hostile and buggy peers ---- */

static px_peer peer_of(int i)
{
    px_peer p;
    memset(&p, 0, sizeof(p));
    snprintf(p.key_z85, sizeof(p.key_z85), "%s", W.n[i].key);
    return p;
}

static void test_bad_messages_are_dropped(void **state)
{
    (void)state;
    pool_with_data();
    char pmem[4096], plsa[4096];
    pool_paths(1, pmem, plsa);
    size_t n0;
    uint8_t *before = read_all(pmem, &n0);
    static uint8_t buf[CH];
    memset(buf, 0x5a, sizeof(buf));
    px_peer hb = peer_of(1), hc = peer_of(2);
    uint64_t key = px_net_key(LAB, POOL);
    px_msg_cxl w = {.pool = key,
                    .op = PX_CXL_WRITE,
                    .node = px_str_c("hb"),
                    .xfer = 1,
                    .ld = 1,
                    .off = 0,
                    .len = 4096,
                    .hash = 1,
                    .d = {buf, 4096}};
    /* A node claiming to be another one: hc's key, hb's name. */
    px_cxlld_on_msg(W.n[0].svc, &hc, &w);
    /* A node nobody knows, and this node's own name. */
    px_msg_cxl x = w;
    x.node = px_str_c("hz");
    px_cxlld_on_msg(W.n[0].svc, &hb, &x);
    x.node = px_str_c("ha");
    px_peer ha = peer_of(0);
    px_cxlld_on_msg(W.n[0].svc, &ha, &x);
    x.node = (px_str){"hbhbhbhbhbhbhbhbhbhbhbhbhbhbhbhbhbhbhbhbhbhbhbhbhbhbhbhbhbhbhbhbhb", 66};
    px_cxlld_on_msg(W.n[0].svc, &hb, &x);
    /* Ranges outside the LD: past the end, wrapping, in the label area. */
    x = w;
    x.off = LD_SIZE - 4095;
    px_cxlld_on_msg(W.n[0].svc, &hb, &x);
    x.off = LD_SIZE;
    px_cxlld_on_msg(W.n[0].svc, &hb, &x);
    x.off = UINT64_MAX - 100;
    px_cxlld_on_msg(W.n[0].svc, &hb, &x);
    x.off = PX_CXLLD_LSA_SIZE;
    x.area = 1;
    px_cxlld_on_msg(W.n[0].svc, &hb, &x);
    x = w;
    x.op = PX_CXL_READ;
    x.d = (px_bin){NULL, 0};
    x.off = UINT64_MAX;
    px_cxlld_on_msg(W.n[0].svc, &hb, &x);
    settle(20);
    px_cxlld_stats st;
    px_cxlld_stats_get(W.n[0].svc, &st);
    assert_int_equal(st.bad_msgs, 9);
    assert_int_equal(st.writes, 0);
    assert_int_equal(st.reads, 0);
    assert_int_equal(W.calls, 0); /* nothing answered */
    size_t n1;
    uint8_t *after = read_all(pmem, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    free(after);
    assert_true(file_size(plsa, NULL) == PX_CXLLD_LSA_SIZE);

    /* Answers on the guest side: to no transfer, from the wrong node, for
     * a range that is no chunk, and a DATA longer than what was asked. */
    char mem[4096], lsa[4096];
    guest_paths(mem, lsa);
    res r = {0};
    uint64_t h = fetch(1, "ha", &r, mem, lsa);
    expect_ok(&r);
    res wb = {0};
    writeback(h, &wb); /* nothing changed: ends at once */
    expect_ok(&wb);
    px_msg_cxl d = {.pool = key,
                    .op = PX_CXL_DATA,
                    .node = px_str_c("ha"),
                    .xfer = h + 1000,
                    .ld = 1,
                    .len = 4096,
                    .hash = 1,
                    .d = {buf, 4096}};
    px_cxlld_on_msg(W.n[1].svc, &ha, &d); /* unknown transfer */
    d.xfer = h;
    px_cxlld_on_msg(W.n[1].svc, &hc, &d); /* hc's key */
    d.node = px_str_c("hc");
    px_cxlld_on_msg(W.n[1].svc, &hc, &d); /* hc is not the pool's node */
    d.node = px_str_c("ha");
    d.pool = key + 1;
    px_cxlld_on_msg(W.n[1].svc, &ha, &d); /* another pool */
    d.pool = key;
    d.ld = 2;
    px_cxlld_on_msg(W.n[1].svc, &ha, &d); /* another LD */
    px_cxlld_stats_get(W.n[1].svc, &st);
    assert_int_equal(st.bad_msgs, 5);
    /* The transfer is done: a late DATA or ACK is a duplicate, ignored. */
    d.ld = 1;
    px_cxlld_on_msg(W.n[1].svc, &ha, &d);
    d.op = PX_CXL_ACK;
    d.d = (px_bin){NULL, 0};
    px_cxlld_on_msg(W.n[1].svc, &ha, &d);
    px_cxlld_stats_get(W.n[1].svc, &st);
    assert_int_equal(st.dups, 2);
    /* During a write-back: ACKs for ranges that are no chunk. */
    write_at(mem, 0, "q", 1);
    res wb2 = {0};
    writeback(h, &wb2);
    d.op = PX_CXL_ACK;
    d.off = 4096; /* not a chunk's start */
    px_cxlld_on_msg(W.n[1].svc, &ha, &d);
    d.off = 0;
    d.len = 100; /* not the chunk's length */
    px_cxlld_on_msg(W.n[1].svc, &ha, &d);
    d.off = (uint64_t)9 * CH; /* past the last chunk */
    d.len = CH;
    px_cxlld_on_msg(W.n[1].svc, &ha, &d);
    d.area = 1;
    d.off = PX_CXLLD_LSA_SIZE;
    px_cxlld_on_msg(W.n[1].svc, &ha, &d);
    px_cxlld_stats_get(W.n[1].svc, &st);
    assert_int_equal(st.bad_msgs, 9);
    expect_ok(&wb2);
    size_t n2;
    uint8_t *g = read_all(mem, &n2);
    assert_int_equal(n2, LD_SIZE);
    free(g);
    assert_same_file(pmem, mem);
    free(before);
}

/* A pool node that sends nonsense sizes fails the fetch instead of making
 * the guest allocate or truncate to them. */
static void test_bad_info_fails_the_fetch(void **state)
{
    (void)state;
    W.unreachable[0] = true; /* ha stays silent: the test plays it */
    char mem[4096], lsa[4096];
    guest_paths(mem, lsa);
    res r = {0};
    uint64_t h = fetch(0, "ha", &r, mem, lsa);
    px_peer ha = peer_of(0);
    px_msg_cxl i = {.pool = px_net_key(LAB, POOL),
                    .op = PX_CXL_INFO,
                    .node = px_str_c("ha"),
                    .xfer = h,
                    .size = PX_CXLLD_MAX_LD_SIZE + 4096,
                    .lsa = PX_CXLLD_LSA_SIZE};
    px_cxlld_on_msg(W.n[1].svc, &ha, &i);
    wait_for(&r.done, WAIT_MS);
    assert_int_equal(r.err, PX_E_PROTO);
    assert_non_null(strstr(r.msg, "pool node ha gave LD 0"));
    assert_true(file_size(mem, NULL) == 0);
}

/* ---- per-LD sizes ---- */

static void make_file(const char *path, uint64_t size)
{
    int fd = open(path, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    close(fd);
}

static bool is_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* An LD file's length is its size: pool_open keeps a longer or shorter
 * one (an allocation resized it before the node restarted) and refuses one
 * that is no LD's size. */
static void test_pool_open_keeps_each_lds_length(void **state)
{
    (void)state;
    char dir[4096], f[4200];
    path_in(dir, sizeof(dir), "pool");
    assert_int_equal(px_mkdir_p(dir, 0700, NULL), PX_OK);
    const uint64_t longer = LD_SIZE + 2 * (uint64_t)CH, shorter = 3 * 4096;
    snprintf(f, sizeof(f), "%s/ld0.mem", dir);
    make_file(f, longer);
    write_at(f, longer - 5, "tail", 4); /* past ld_size: kept */
    snprintf(f, sizeof(f), "%s/ld1.mem", dir);
    make_file(f, shorter);
    write_at(f, 100, "head", 4);
    px_errmsg em = {{0}};
    px_cxlld *ha = W.n[0].svc;
    assert_int_equal(px_cxlld_pool_open(ha, LAB, POOL, dir, N_LDS, LD_SIZE, &em), PX_OK);
    assert_true(px_cxlld_ld_size(ha, LAB, POOL, 0) == longer);
    assert_true(px_cxlld_ld_size(ha, LAB, POOL, 1) == shorter);
    assert_true(px_cxlld_ld_size(ha, LAB, POOL, 2) == LD_SIZE); /* made now */
    assert_true(px_cxlld_ld_size(ha, LAB, POOL, N_LDS) == 0);
    assert_true(px_cxlld_ld_size(ha, LAB, "nopool", 0) == 0);
    assert_true(px_cxlld_ld_size(ha, "nolab", POOL, 0) == 0);
    char mem[4096], lsa[4096];
    pool_paths(0, mem, lsa);
    assert_true(file_size(mem, NULL) == longer);
    assert_true(file_size(lsa, NULL) == PX_CXLLD_LSA_SIZE);
    size_t n;
    uint8_t *d = read_all(mem, &n);
    assert_memory_equal(d + longer - 5, "tail", 4);
    free(d);
    pool_paths(1, mem, lsa);
    assert_true(file_size(mem, NULL) == shorter);
    d = read_all(mem, &n);
    assert_memory_equal(d + 100, "head", 4);
    free(d);

    /* Open again with the same settings: the sizes given since stay. */
    assert_int_equal(px_cxlld_ld_resize(ha, LAB, POOL, 2, 8192, &em), PX_OK);
    assert_int_equal(px_cxlld_pool_open(ha, LAB, POOL, dir, N_LDS, LD_SIZE, &em), PX_OK);
    assert_true(px_cxlld_ld_size(ha, LAB, POOL, 2) == 8192);
    /* And after a restart, from the files. */
    svc_stop(0);
    svc_start(0);
    ha = W.n[0].svc;
    assert_int_equal(px_cxlld_pool_open(ha, LAB, POOL, dir, N_LDS, LD_SIZE, &em), PX_OK);
    assert_true(px_cxlld_ld_size(ha, LAB, POOL, 0) == longer);
    assert_true(px_cxlld_ld_size(ha, LAB, POOL, 1) == shorter);
    assert_true(px_cxlld_ld_size(ha, LAB, POOL, 2) == 8192);

    /* A length that is no LD's size: refused, naming the file; the open
     * pool stays as it was. */
    pool_paths(1, mem, lsa);
    make_file(mem, shorter + 100);
    assert_int_equal(px_cxlld_pool_open(ha, LAB, POOL, dir, N_LDS, LD_SIZE + 4096, &em),
                     PX_E_CONFIG);
    assert_non_null(strstr(em.text, "ld1.mem"));
    assert_non_null(strstr(em.text, "12388 bytes"));
    assert_true(file_size(mem, NULL) == shorter + 100); /* untouched */
    assert_true(px_cxlld_ld_size(ha, LAB, POOL, 1) == shorter);
    /* In a pool opened for the first time too. */
    char dir2[4096];
    path_in(dir2, sizeof(dir2), "pool2");
    assert_int_equal(px_mkdir_p(dir2, 0700, NULL), PX_OK);
    snprintf(f, sizeof(f), "%s/ld0.mem", dir2);
    make_file(f, 4095);
    assert_int_equal(px_cxlld_pool_open(ha, LAB, "p2", dir2, 1, LD_SIZE, &em), PX_E_CONFIG);
    assert_non_null(strstr(em.text, "pool2/ld0.mem"));
    assert_int_equal(px_cxlld_pool_paths(ha, LAB, "p2", 0, mem, 4096, lsa, 4096), PX_E_NOTFOUND);
}

static void test_ld_resize_grows_and_shrinks(void **state)
{
    (void)state;
    pool_with_data();
    px_cxlld *ha = W.n[0].svc;
    char pmem[4096], plsa[4096];
    pool_paths(1, pmem, plsa);
    size_t n0;
    uint8_t *before = read_all(pmem, &n0);
    assert_int_equal(n0, LD_SIZE);
    uint64_t blocks0, blocks;
    file_size(pmem, &blocks0);
    px_errmsg em = {{0}};

    /* Grow: the data stays, the rest reads zero and takes no blocks. */
    const uint64_t big = 16 * (uint64_t)CH;
    assert_int_equal(px_cxlld_ld_resize(ha, LAB, POOL, 1, big, &em), PX_OK);
    assert_true(px_cxlld_ld_size(ha, LAB, POOL, 1) == big);
    assert_true(file_size(pmem, &blocks) == big);
    assert_true(blocks == blocks0);
    size_t n;
    uint8_t *d = read_all(pmem, &n);
    assert_int_equal(n, big);
    assert_memory_equal(d, before, LD_SIZE);
    assert_true(is_zero(d + LD_SIZE, big - LD_SIZE));
    free(d);
    /* The same size again: nothing happens. */
    assert_int_equal(px_cxlld_ld_resize(ha, LAB, POOL, 1, big, &em), PX_OK);
    assert_true(file_size(pmem, NULL) == big);

    /* Shrink: what was past the new end is gone, also after growing
     * again (chunk 3 held data). */
    const uint64_t small = 2 * (uint64_t)CH + 4096;
    assert_int_equal(px_cxlld_ld_resize(ha, LAB, POOL, 1, small, &em), PX_OK);
    assert_true(file_size(pmem, NULL) == small);
    assert_true(px_cxlld_ld_size(ha, LAB, POOL, 1) == small);
    d = read_all(pmem, &n);
    assert_int_equal(n, small);
    assert_memory_equal(d, before, small);
    free(d);
    assert_int_equal(px_cxlld_ld_resize(ha, LAB, POOL, 1, LD_SIZE, &em), PX_OK);
    d = read_all(pmem, &n);
    assert_int_equal(n, LD_SIZE);
    assert_memory_equal(d, before, small);
    assert_true(is_zero(d + small, LD_SIZE - small));
    free(d);
    free(before);

    /* The pool checks ranges against the LD's own size. */
    assert_int_equal(px_cxlld_ld_resize(ha, LAB, POOL, 1, 2 * (uint64_t)CH, &em), PX_OK);
    px_peer hb = peer_of(1);
    px_msg_cxl rd = {.pool = px_net_key(LAB, POOL),
                     .op = PX_CXL_READ,
                     .node = px_str_c("hb"),
                     .xfer = 1,
                     .ld = 1,
                     .off = 2 * (uint64_t)CH,
                     .len = CH};
    px_cxlld_on_msg(ha, &hb, &rd); /* past LD 1's end */
    rd.ld = 0;
    px_cxlld_on_msg(ha, &hb, &rd); /* inside LD 0 */
    px_cxlld_stats st;
    px_cxlld_stats_get(ha, &st);
    assert_int_equal(st.bad_msgs, 1);
    assert_int_equal(st.reads, 1);

    /* An empty LD. */
    assert_int_equal(px_cxlld_ld_resize(ha, LAB, POOL, 2, 0, &em), PX_OK);
    pool_paths(2, pmem, plsa);
    assert_true(file_size(pmem, NULL) == 0);
    assert_true(px_cxlld_ld_size(ha, LAB, POOL, 2) == 0);

    /* Bad sizes, unknown pools and LDs: refused, nothing changes. */
    assert_int_equal(px_cxlld_ld_resize(ha, LAB, POOL, 1, 4097, &em), PX_E_INVAL);
    assert_int_equal(px_cxlld_ld_resize(ha, LAB, POOL, 1, 100, &em), PX_E_INVAL);
    assert_int_equal(px_cxlld_ld_resize(ha, LAB, POOL, 1, PX_CXLLD_MAX_LD_SIZE + 4096, &em),
                     PX_E_INVAL);
    assert_int_equal(px_cxlld_ld_resize(ha, LAB, POOL, N_LDS, 4096, &em), PX_E_NOTFOUND);
    assert_int_equal(px_cxlld_ld_resize(ha, LAB, "nopool", 0, 4096, &em), PX_E_NOTFOUND);
    assert_non_null(strstr(em.text, "nopool"));
    assert_int_equal(px_cxlld_ld_resize(ha, "nolab", POOL, 0, 4096, &em), PX_E_NOTFOUND);
    pool_paths(1, pmem, plsa);
    assert_true(file_size(pmem, NULL) == 2 * (uint64_t)CH);
    assert_true(px_cxlld_ld_size(ha, LAB, POOL, 1) == 2 * (uint64_t)CH);
}

/* A guest fetches an LD at the size it was given. */
static void test_fetch_of_a_resized_ld(void **state)
{
    (void)state;
    pool_with_data();
    px_errmsg em = {{0}};
    const uint64_t big = 12 * (uint64_t)CH;
    assert_int_equal(px_cxlld_ld_resize(W.n[0].svc, LAB, POOL, 1, big, &em), PX_OK);
    char mem[4096], lsa[4096], pmem[4096], plsa[4096];
    guest_paths(mem, lsa);
    pool_paths(1, pmem, plsa);
    write_at(pmem, 11 * (uint64_t)CH + 7, "grown", 5);
    res r = {0};
    uint64_t h = fetch_sized(1, big, "ha", &r, mem, lsa);
    expect_ok(&r);
    assert_true(file_size(mem, NULL) == big);
    assert_same_file(pmem, mem);
    assert_same_file(plsa, lsa);
    assert_int_equal(W.ops[PX_CXL_OPEN], 1);
    assert_int_equal(W.ops[PX_CXL_READ], 12 + PX_CXLLD_LSA_SIZE / CH);
    /* Its write-back reaches the new part. */
    write_at(mem, 10 * (uint64_t)CH, "back", 4);
    res w = {0};
    writeback(h, &w);
    expect_ok(&w);
    assert_same_file(pmem, mem);
    px_cxlld_forget(W.n[1].svc, h);

    /* Shrunk, and fetched taking whatever size the pool has. */
    assert_int_equal(px_cxlld_ld_resize(W.n[0].svc, LAB, POOL, 1, 4 * (uint64_t)CH, &em), PX_OK);
    res r2 = {0};
    fetch(1, "ha", &r2, mem, lsa);
    expect_ok(&r2);
    assert_true(file_size(mem, NULL) == 4 * (uint64_t)CH);
    assert_same_file(pmem, mem);

    /* An empty LD: only its labels. */
    assert_int_equal(px_cxlld_ld_resize(W.n[0].svc, LAB, POOL, 2, 0, &em), PX_OK);
    res r3 = {0};
    fetch(2, "ha", &r3, mem, lsa);
    expect_ok(&r3);
    assert_true(file_size(mem, NULL) == 0);
    assert_true(file_size(lsa, NULL) == PX_CXLLD_LSA_SIZE);
}

/* The pool's node has not resized the LD (yet): the fetch does not take
 * its size, asks again, and fails after the timeout naming both sizes. */
static void test_fetch_waits_for_the_pools_size(void **state)
{
    (void)state;
    pool_with_data();
    px_cxlld_tuning t = {.retry_ms = 20, .timeout_ms = 300};
    px_cxlld_tune(W.n[1].svc, &t);
    char mem[4096], lsa[4096], pmem[4096], plsa[4096];
    guest_paths(mem, lsa);
    pool_paths(1, pmem, plsa);
    const uint64_t want = 16 * (uint64_t)CH;
    res r = {0};
    uv_update_time(&W.loop);
    uint64_t t0 = uv_now(&W.loop);
    fetch_sized(1, want, "ha", &r, mem, lsa);
    wait_for(&r.done, WAIT_MS);
    assert_true(r.done);
    assert_int_equal(r.err, PX_E_TIMEOUT);
    assert_true(uv_now(&W.loop) - t0 >= 300);
    char both[256];
    snprintf(both, sizeof(both),
             "pool pool0's node ha has LD 1 at %llu bytes, this node's plan says %llu",
             (unsigned long long)LD_SIZE, (unsigned long long)want);
    if (!strstr(r.msg, both))
        fail_msg("\"%s\" does not say \"%s\"", r.msg, both);
    assert_true(W.ops[PX_CXL_OPEN] >= 3); /* asked again */
    assert_true(W.ops[PX_CXL_INFO] >= 3); /* and answered, at the old size */
    assert_int_equal(W.ops[PX_CXL_READ], 0);
    assert_true(file_size(mem, NULL) == 0); /* never sized to the pool's answer */

    /* A running guest's files are not touched by an adopt that waits. */
    write_at(mem, 0, "guest", 5);
    res a = {0};
    px_errmsg em = {{0}};
    assert_int_equal(
        px_cxlld_adopt(W.n[1].svc, LAB, POOL, "ha", 1, want, mem, lsa, on_done, &a, NULL, &em),
        PX_OK);
    wait_for(&a.done, WAIT_MS);
    assert_int_equal(a.err, PX_E_TIMEOUT);
    assert_non_null(strstr(a.msg, both));
    assert_true(file_size(mem, NULL) == 5);

    /* The pool's node resizes the LD while the fetch asks: the fetch takes
     * the new size. The first INFO (old size) is out when it does. */
    t.timeout_ms = 5000;
    px_cxlld_tune(W.n[1].svc, &t);
    memset(W.ops, 0, sizeof(W.ops));
    res r2 = {0};
    fetch_sized(1, want, "ha", &r2, mem, lsa);
    while (W.ops[PX_CXL_INFO] == 0 && !r2.done)
        uv_run(&W.loop, UV_RUN_ONCE);
    assert_int_equal(px_cxlld_ld_resize(W.n[0].svc, LAB, POOL, 1, want, &em), PX_OK);
    expect_ok(&r2);
    assert_true(W.ops[PX_CXL_OPEN] >= 2);
    assert_true(file_size(mem, NULL) == want);
    assert_same_file(pmem, mem);
    assert_same_file(plsa, lsa);

    /* Adopt: files at the expected and the pool's size are kept. */
    write_at(mem, want - 10, "kept", 4);
    memset(W.ops, 0, sizeof(W.ops));
    res a2 = {0};
    assert_int_equal(
        px_cxlld_adopt(W.n[1].svc, LAB, POOL, "ha", 1, want, mem, lsa, on_done, &a2, NULL, &em),
        PX_OK);
    expect_ok(&a2);
    assert_int_equal(W.ops[PX_CXL_READ], 0);
    size_t n;
    uint8_t *d = read_all(mem, &n);
    assert_memory_equal(d + want - 10, "kept", 4);
    free(d);
    /* Files of another size than both agree on: fetched over. */
    int fd = open(mem, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)LD_SIZE), 0);
    close(fd);
    res a3 = {0};
    assert_int_equal(
        px_cxlld_adopt(W.n[1].svc, LAB, POOL, "ha", 1, want, mem, lsa, on_done, &a3, NULL, &em),
        PX_OK);
    expect_ok(&a3);
    assert_true(W.ops[PX_CXL_READ] > 0);
    assert_true(file_size(mem, NULL) == want);
    assert_same_file(pmem, mem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pool_open_sparse_and_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_gives_identical_files_and_sends_no_zero_chunks,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_writeback_sends_only_changed_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_adopt_keeps_a_running_guests_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writebacks_queue_behind_a_running_one, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_full_and_lossy_links, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_bounds_what_is_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable_pool_node_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_node_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_node_uses_the_pool_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forget_and_close_end_transfers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_messages_are_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_info_fails_the_fetch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_open_keeps_each_lds_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ld_resize_grows_and_shrinks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_of_a_resized_ld, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_waits_for_the_pools_size, setup, teardown),
    };
    return cmocka_run_group_tests_name("cxl_ld", tests, NULL, NULL);
}
