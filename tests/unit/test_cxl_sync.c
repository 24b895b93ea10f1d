/* Unit tests: fabric/cxl-switch/ldsync.h — a shared CXL LD kept in step
 * between hosts.
 *
 * Three px_cxlsync on one loop: "hc" is the pool's node (the hub: the
 * pool's files in DIR/pool), "ha" and "hb" hold copies (DIR/ha-ld<K>.mem,
 * DIR/hb-ld<K>.mem), and "hx" is a node with a key but no part in the pool.
 * Their px_svc_io is a fake data plane: to_node checks that what it gets
 * decodes as CXLSYNC from the node it says, and queues it for delivery on a
 * later loop iteration, where it is handed to the receiver with the
 * sender's key, as the node does. Knobs: refuse every Nth send with
 * PX_E_AGAIN (a full link), hold everything (a slow link), forge the
 * sender's key. "Guest writes" are pwrites into the files, as QEMU's
 * share=on mapping makes them. Every wait runs the loop until a condition
 * holds or a deadline passes.
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
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "fabric/core/fsutil.h"
#include "fabric/core/text.h"
#include "fabric/core/wire.h"
#include "fabric/cxl-switch/ldsync.h"

#define WAIT_MS 10000u
#define LAB     "lab1"
#define POOL    "pool0"
/* Not a multiple of the scan's 1 MiB pieces. */
#define LD_SIZE ((uint64_t)(3u << 20) + 12288)
#define N_LDS   2u
#define N_NODES 4

enum { HA, HB, HC, HX };

/* ---- the fake data plane ---- */

typedef struct pend {
    struct pend *next;
    int to;
    px_peer from;
    size_t len;
    uint8_t data[];
} pend;

typedef struct tnode {
    const char *name;
    char key[PX_KEY_Z85_LEN + 1];
    px_cxlsync *svc;
    px_svc_io io;
    int idx;
} tnode;

typedef struct world {
    uv_loop_t loop;
    uv_timer_t deliver, keepalive;
    tnode n[N_NODES];
    pend *head, *tail;
    unsigned calls, again_every, again, sent, delivered;
    bool hold;                 /* queue but do not deliver */
    int forge;                 /* >= 0: messages arrive with this node's key instead */
    unsigned to_node[N_NODES]; /* messages accepted per destination */
    char dir[64];
} world;

static world W;

static int node_named(const char *name)
{
    for (int i = 0; i < N_NODES; i++)
        if (strcmp(W.n[i].name, name) == 0)
            return i;
    return -1;
}

static void on_deliver(uv_timer_t *t);

static px_err fake_to_node(void *ud, const char *node, const uint8_t *data, size_t len)
{
    tnode *self = ud;
    int to = node_named(node);
    if (to < 0)
        return PX_E_NOTFOUND;
    W.calls++;
    if (W.again_every && W.calls % W.again_every == 0) {
        W.again++;
        return PX_E_AGAIN;
    }
    size_t off = 0;
    while (off < len) {
        static px_msg m;
        size_t used;
        px_errmsg em = {{0}};
        if (px_wire_decode(data + off, len - off, &used, &m, &em) != PX_OK)
            fail_msg("the service sent bytes that do not decode: %s", em.text);
        assert_int_equal(m.env.type, PX_MSG_CXLSYNC);
        assert_true(px_str_eq(m.body.cxlsync.node, self->name));
        assert_true(m.body.cxlsync.pool == px_net_key(LAB, POOL) ||
                    m.body.cxlsync.pool == px_net_key(LAB, "big") ||
                    m.body.cxlsync.pool == px_net_key(LAB, "sized"));
        off += used;
    }
    pend *p = malloc(sizeof(*p) + len);
    assert_non_null(p);
    p->next = NULL;
    p->to = to;
    memset(&p->from, 0, sizeof(p->from));
    snprintf(p->from.key_z85, sizeof(p->from.key_z85), "%s",
             W.forge >= 0 ? W.n[W.forge].key : self->key);
    p->len = len;
    memcpy(p->data, data, len);
    if (W.tail)
        W.tail->next = p;
    else
        W.head = p;
    W.tail = p;
    W.sent++;
    W.to_node[to]++;
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
            px_cxlsync_on_msg(W.n[p->to].svc, &p->from, &m.body.cxlsync);
        off += used;
    }
    W.delivered++;
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
        deliver_one(p);
        free(p);
        p = n;
    }
}

static void on_keepalive(uv_timer_t *t)
{
    (void)t;
}

typedef bool (*cond_fn)(void);

static bool wait_until(cond_fn ok, uint32_t ms)
{
    uv_update_time(&W.loop);
    uint64_t end = uv_now(&W.loop) + ms;
    while (!ok() && uv_now(&W.loop) < end)
        uv_run(&W.loop, UV_RUN_ONCE);
    return ok();
}

/* Nothing on the fake links, nothing held in a service for a full one. */
static bool nothing_pending(void)
{
    for (int i = 0; i < N_NODES; i++) {
        px_cxlsync_stats st;
        if (W.n[i].svc && (px_cxlsync_stats_get(W.n[i].svc, &st), st.waiting))
            return false;
    }
    return !W.head;
}

/* Every message sent so far (and what they cause) delivered. */
static void drain(void)
{
    assert_true(wait_until(nothing_pending, WAIT_MS));
}

/* ---- files ---- */

static void ld_path(int node, uint32_t ld, char *out, size_t cap)
{
    if (node == HC)
        snprintf(out, cap, "%s/pool/ld%u.mem", W.dir, ld);
    else
        snprintf(out, cap, "%s/%s-ld%u.mem", W.dir, W.n[node].name, ld);
}

static void make_file(const char *path, uint64_t size)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    close(fd);
}

static void put(int node, uint32_t ld, uint64_t off, const void *p, size_t n)
{
    char path[256];
    ld_path(node, ld, path, sizeof(path));
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, p, n, (off_t)off), (ssize_t)n);
    close(fd);
}

static void get(int node, uint32_t ld, uint64_t off, void *p, size_t n)
{
    char path[256];
    ld_path(node, ld, path, sizeof(path));
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, p, n, (off_t)off), (ssize_t)n);
    close(fd);
}

static uint8_t *read_all(int node, uint32_t ld)
{
    char path[256];
    ld_path(node, ld, path, sizeof(path));
    char *p = NULL;
    size_t len = 0;
    assert_int_equal(px_read_file(path, 1u << 30, &p, &len, NULL), PX_OK);
    assert_int_equal(len, LD_SIZE);
    return (uint8_t *)p;
}

/* The three files of LD ld hold the same bytes. */
static void assert_in_step(uint32_t ld)
{
    uint8_t *c = read_all(HC, ld), *a = read_all(HA, ld), *b = read_all(HB, ld);
    for (size_t i = 0; i < LD_SIZE; i++)
        if (a[i] != c[i] || b[i] != c[i])
            fail_msg("LD %u differs at byte %zu: ha %02x hb %02x hc %02x", ld, i, a[i], b[i], c[i]);
    free(a);
    free(b);
    free(c);
}

/* ---- the services ---- */

static void svc_start(int i)
{
    tnode *n = &W.n[i];
    n->io = (px_svc_io){.to_node = fake_to_node,
                        .to_peer = fake_to_peer,
                        .node_key = fake_node_key,
                        .ud = n,
                        .self = n->name};
    assert_int_equal(px_cxlsync_new(&W.loop, &n->io, &n->svc), PX_OK);
}

static void closed(void *ud)
{
    *(bool *)ud = true;
}

static bool close_flag;
static bool is_closed(void)
{
    return close_flag;
}

static void svc_stop(int i)
{
    close_flag = false;
    px_cxlsync_close(W.n[i].svc, closed, &close_flag);
    assert_true(wait_until(is_closed, WAIT_MS));
    W.n[i].svc = NULL;
}

static bool shared_flags[N_LDS] = {true, false};

/* The pool as each node's plan gives it: the hub knows the hosts. */
static void pool_set(int i, uint64_t period_ms)
{
    static const char *hosts[] = {"ha", "hb", "hc"};
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/pool", W.dir);
    px_cxlsync_pool_cfg c = {.lab = LAB,
                             .pool = POOL,
                             .hub = "hc",
                             .ld_size = LD_SIZE,
                             .n_lds = N_LDS,
                             .period_ms = period_ms,
                             .dir = dir,
                             .hosts = hosts,
                             .n_hosts = 3,
                             .shared = shared_flags};
    px_errmsg em = {{0}};
    if (px_cxlsync_pool_set(W.n[i].svc, &c, &em) != PX_OK)
        fail_msg("pool_set on %s: %s", W.n[i].name, em.text);
}

/* A copy fetched: its file made from the pool's, then ready. */
static void copy_up(int i, uint32_t ld)
{
    char path[256], src[256];
    ld_path(i, ld, path, sizeof(path));
    ld_path(HC, ld, src, sizeof(src));
    px_errmsg em = {{0}};
    assert_int_equal(px_cxlsync_copy_open(W.n[i].svc, LAB, POOL, ld, path, &em), PX_OK);
    uint8_t *d = read_all(HC, ld);
    make_file(path, LD_SIZE);
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    for (size_t off = 0; off < LD_SIZE; off += 4096) { /* keep the copy sparse */
        bool zero = true;
        for (size_t k = off; k < off + 4096 && zero; k++)
            zero = d[k] == 0;
        if (!zero)
            assert_int_equal(pwrite(fd, d + off, 4096, (off_t)off), 4096);
    }
    close(fd);
    free(d);
    if (px_cxlsync_copy_ready(W.n[i].svc, LAB, POOL, ld, &em) != PX_OK)
        fail_msg("copy_ready on %s: %s", W.n[i].name, em.text);
}

static void sync_now(int i, uint32_t ld, px_cxlsync_result *res)
{
    px_errmsg em = {{0}};
    px_cxlsync_result r;
    if (px_cxlsync_now(W.n[i].svc, LAB, POOL, ld, &r, &em) != PX_OK)
        fail_msg("sync on %s: %s", W.n[i].name, em.text);
    if (res)
        *res = r;
}

static px_cxlsync_stats stats(int i)
{
    px_cxlsync_stats st;
    px_cxlsync_stats_get(W.n[i].svc, &st);
    return st;
}

/* Default world: period 0 (on demand only), LD 0 shared and copied to ha
 * and hb. */
static int setup_world(uint64_t period_ms)
{
    memset(&W, 0, sizeof(W));
    W.forge = -1;
    shared_flags[0] = true;
    shared_flags[1] = false;
    assert_int_equal(uv_loop_init(&W.loop), 0);
    uv_timer_init(&W.loop, &W.deliver);
    uv_timer_init(&W.loop, &W.keepalive);
    uv_timer_start(&W.keepalive, on_keepalive, 5, 5);
    static const char *names[N_NODES] = {"ha", "hb", "hc", "hx"};
    for (int i = 0; i < N_NODES; i++) {
        W.n[i].name = names[i];
        W.n[i].idx = i;
        /* Stand-ins for Z85 keys: 40 characters, one per node. */
        memset(W.n[i].key, 'A' + i, PX_KEY_Z85_LEN);
    }
    snprintf(W.dir, sizeof(W.dir), "/tmp/px-cxlsync-XXXXXX");
    assert_non_null(mkdtemp(W.dir));
    char path[256];
    snprintf(path, sizeof(path), "%s/pool", W.dir);
    assert_int_equal(mkdir(path, 0700), 0);
    for (uint32_t k = 0; k < N_LDS; k++) {
        ld_path(HC, k, path, sizeof(path));
        make_file(path, LD_SIZE);
    }
    /* Something in the pool before anyone copies it. */
    put(HC, 0, 4096, "pool data", 9);
    for (int i = 0; i < N_NODES; i++)
        svc_start(i);
    pool_set(HC, period_ms);
    pool_set(HA, period_ms);
    pool_set(HB, period_ms);
    copy_up(HA, 0);
    copy_up(HB, 0);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    return setup_world(0);
}

static int setup_periodic(void **state)
{
    (void)state;
    return setup_world(20);
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < N_NODES; i++)
        if (W.n[i].svc)
            svc_stop(i);
    W.hold = false;
    on_deliver(NULL); /* free what is still queued (no service gets it) */
    uv_close((uv_handle_t *)&W.deliver, NULL);
    uv_close((uv_handle_t *)&W.keepalive, NULL);
    uv_run(&W.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&W.loop), 0);
    px_rm_tree(W.dir);
    return 0;
}

/* ---- tests ---- */

/* Two hosts write different bytes of one 8-byte word and of one page; after
 * a sync point on each, all three files hold both writes: byte exact. */
static void test_both_writes_kept(void **state)
{
    (void)state;
    uint8_t v[8];
    get(HA, 0, 4096, v, 8);
    assert_memory_equal(v, "pool dat", 8); /* the copy came from the pool */
    put(HA, 0, 0x2000, "\x11", 1);
    put(HB, 0, 0x2001, "\x22", 1);
    put(HA, 0, 0x2003, "A-side", 6);
    put(HB, 0, 0x2100, "B-side", 6);
    put(HB, 0, LD_SIZE - 3, "end", 3); /* the last bytes, in the short piece */
    px_cxlsync_result ra, rb;
    sync_now(HA, 0, &ra);
    sync_now(HB, 0, &rb);
    assert_false(ra.hub);
    assert_int_equal(ra.bytes, 7);
    assert_int_equal(rb.bytes, 10);
    assert_int_equal(ra.msgs, 1);
    assert_int_equal(ra.to, 1);
    drain();
    uint8_t w[16];
    get(HC, 0, 0x2000, w, 9);
    assert_memory_equal(w, "\x11\x22\0A-side", 9);
    assert_in_step(0);
    /* The hub passed each host's change to the other host only. */
    px_cxlsync_stats c = stats(HC);
    assert_int_equal(c.msgs_in, 2);
    assert_int_equal(c.relayed, 2);
    assert_int_equal(c.bad_msgs, 0);
    assert_int_equal(stats(HA).msgs_in, 1);
    assert_int_equal(stats(HB).msgs_in, 1);
    /* Nothing changed since: the next sync point sends nothing. */
    unsigned sent = W.sent;
    sync_now(HA, 0, &ra);
    sync_now(HB, 0, &rb);
    sync_now(HC, 0, &rb);
    assert_int_equal(ra.bytes + rb.bytes, 0);
    assert_int_equal(W.sent, sent);
}

/* The hub's own writes (its guests use the pool's file) go to every host. */
static void test_hub_writes(void **state)
{
    (void)state;
    put(HC, 0, 0x30000, "from the pool node", 18);
    px_cxlsync_result r;
    sync_now(HC, 0, &r);
    assert_true(r.hub);
    assert_int_equal(r.bytes, 18);
    assert_int_equal(r.to, 2); /* ha and hb, not itself */
    drain();
    assert_in_step(0);
    /* Data that becomes a hole (the pool's node punches one for a chunk
     * written back as zero) is a change to zeros: the twin held bytes
     * there, so the hole is compared. */
    char path[256];
    ld_path(HC, 0, path, sizeof(path));
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0x30000, 4096), 0);
    close(fd);
    sync_now(HC, 0, &r);
    assert_int_equal(r.bytes, 18);
    drain();
    uint8_t v[18];
    get(HA, 0, 0x30000, v, sizeof(v));
    static const uint8_t zero[18];
    assert_memory_equal(v, zero, sizeof(v));
    assert_in_step(0);
}

/* Periodic: a write reaches the other host without anyone asking. */
static bool hb_has_it(void)
{
    uint8_t v[5];
    get(HB, 0, 0x1234, v, 5);
    return memcmp(v, "tick!", 5) == 0;
}

static void test_periodic(void **state)
{
    (void)state;
    put(HA, 0, 0x1234, "tick!", 5);
    assert_true(wait_until(hb_has_it, WAIT_MS));
    drain();
    assert_in_step(0);
    assert_true(stats(HA).syncs >= 1);
}

/* Changes that arrive while a copy is still being fetched are held and
 * written after it arrived: they may be newer than what the fetch read. */
static void test_held_while_copying(void **state)
{
    (void)state;
    char path[256];
    ld_path(HB, 0, path, sizeof(path));
    px_errmsg em = {{0}};
    /* hb copies again (say its old copy was forgotten). */
    assert_int_equal(px_cxlsync_copy_open(W.n[HB].svc, LAB, POOL, 0, path, &em), PX_OK);
    px_cxlsync_result r;
    assert_int_equal(px_cxlsync_now(W.n[HB].svc, LAB, POOL, 0, &r, &em), PX_OK);
    assert_true(r.arriving);
    put(HA, 0, 0x100, "early", 5);
    sync_now(HA, 0, NULL);
    drain();
    assert_int_equal(stats(HB).held, 1);
    /* The fetch read the pool before ha's change reached it. */
    make_file(path, LD_SIZE);
    put(HB, 0, 4096, "pool data", 9);
    assert_int_equal(px_cxlsync_copy_ready(W.n[HB].svc, LAB, POOL, 0, &em), PX_OK);
    assert_in_step(0);
    assert_int_equal(stats(HB).msgs_in, 1);
}

/* More held changes than PX_CXLSYNC_HOLD_MAX: the copy must be fetched
 * again; opening it again starts clean. */
static void test_hold_overflow(void **state)
{
    (void)state;
    char path[256];
    ld_path(HB, 0, path, sizeof(path));
    px_errmsg em = {{0}};
    assert_int_equal(px_cxlsync_copy_open(W.n[HB].svc, LAB, POOL, 0, path, &em), PX_OK);
    /* Forged-free DIFFs straight from the hub: 100 KiB each. */
    static uint8_t recs[8 + (100u << 10)];
    recs[0] = 0;
    recs[4] = 0;
    recs[5] = 0x90;
    recs[6] = 0x01; /* length 0x19000 = 100 KiB */
    px_msg_cxlsync m = {.pool = px_net_key(LAB, POOL),
                        .ld = 0,
                        .node = px_str_c("hc"),
                        .op = PX_CXLSYNC_DIFF,
                        .recs = {recs, sizeof(recs)}};
    px_peer from;
    memset(&from, 0, sizeof(from));
    snprintf(from.key_z85, sizeof(from.key_z85), "%s", W.n[HC].key);
    for (unsigned i = 0; i < (PX_CXLSYNC_HOLD_MAX / sizeof(recs)) + 2; i++)
        px_cxlsync_on_msg(W.n[HB].svc, &from, &m);
    assert_int_equal(px_cxlsync_copy_ready(W.n[HB].svc, LAB, POOL, 0, &em), PX_E_TOOBIG);
    assert_non_null(strstr(em.text, "copy it again"));
    assert_int_equal(px_cxlsync_copy_open(W.n[HB].svc, LAB, POOL, 0, path, &em), PX_OK);
    assert_int_equal(px_cxlsync_copy_ready(W.n[HB].svc, LAB, POOL, 0, &em), PX_OK);
}

/* A full link holds messages in order and sends them later; nothing is
 * lost or reordered. */
static void test_full_link(void **state)
{
    (void)state;
    W.again_every = 2;
    for (unsigned round = 0; round < 20; round++) {
        uint8_t b = (uint8_t)(round + 1);
        put(HA, 0, 0x5000, &b, 1);                /* the same byte again and again: */
        put(HA, 0, 0x6000 + round * 200u, &b, 1); /* order matters for the last value */
        put(HB, 0, 0x7000 + round, &b, 1);
        sync_now(HA, 0, NULL);
        sync_now(HB, 0, NULL);
        sync_now(HC, 0, NULL);
    }
    drain();
    assert_true(W.again > 0);
    assert_true(stats(HA).queued + stats(HB).queued + stats(HC).queued > 0);
    uint8_t v;
    get(HB, 0, 0x5000, &v, 1);
    assert_int_equal(v, 20);
    assert_in_step(0);
}

/* Hostile or confused peers: nothing is written, each is counted. */
static void test_bad_messages(void **state)
{
    (void)state;
    uint8_t before[64], after[64];
    get(HC, 0, 0, before, sizeof(before));
    static const uint8_t rec[] = {0, 0, 0, 0, 4, 0, 0, 0, 'e', 'v', 'i', 'l'};
    px_msg_cxlsync m = {.pool = px_net_key(LAB, POOL),
                        .ld = 0,
                        .node = px_str_c("ha"),
                        .op = PX_CXLSYNC_DIFF,
                        .recs = {rec, sizeof(rec)}};
    px_peer from;
    memset(&from, 0, sizeof(from));
    /* 1. hb's key, claiming to be ha. */
    snprintf(from.key_z85, sizeof(from.key_z85), "%s", W.n[HB].key);
    px_cxlsync_on_msg(W.n[HC].svc, &from, &m);
    /* 2. hx, a node with a key but not a host of the switch, as itself. */
    m.node = px_str_c("hx");
    snprintf(from.key_z85, sizeof(from.key_z85), "%s", W.n[HX].key);
    px_cxlsync_on_msg(W.n[HC].svc, &from, &m);
    /* 3. ha to hb directly: only the hub sends to a host. */
    m.node = px_str_c("ha");
    snprintf(from.key_z85, sizeof(from.key_z85), "%s", W.n[HA].key);
    px_cxlsync_on_msg(W.n[HB].svc, &from, &m);
    /* 4. an LD the pool does not have. */
    m.ld = N_LDS;
    px_cxlsync_on_msg(W.n[HC].svc, &from, &m);
    m.ld = 0;
    /* 5. a record past the end, after a good one: neither is written. */
    uint8_t two[12 + 9];
    memcpy(two, rec, 12);
    uint32_t end = (uint32_t)LD_SIZE - 4;
    uint8_t past[9] = {
        (uint8_t)end, (uint8_t)(end >> 8), (uint8_t)(end >> 16), (uint8_t)(end >> 24), 5, 0, 0, 0,
        'x'};
    memcpy(two + 12, past, 9);
    m.recs = (px_bin){two, sizeof(two)};
    px_cxlsync_on_msg(W.n[HC].svc, &from, &m);
    m.recs = (px_bin){two, sizeof(two) - 4}; /* and truncated */
    px_cxlsync_on_msg(W.n[HC].svc, &from, &m);
    /* 6. a base past the LD. */
    m.recs = (px_bin){rec, sizeof(rec)};
    m.base = LD_SIZE + 1;
    px_cxlsync_on_msg(W.n[HC].svc, &from, &m);
    /* 7. a base that puts the record past the end. */
    m.base = LD_SIZE - 2;
    px_cxlsync_on_msg(W.n[HC].svc, &from, &m);
    /* 8. no key at all, a node naming the receiver itself. */
    m.base = 0;
    px_cxlsync_on_msg(W.n[HC].svc, NULL, &m);
    m.node = px_str_c("hc");
    snprintf(from.key_z85, sizeof(from.key_z85), "%s", W.n[HC].key);
    px_cxlsync_on_msg(W.n[HC].svc, &from, &m);
    drain();
    assert_int_equal(stats(HC).bad_msgs, 9);
    assert_int_equal(stats(HB).bad_msgs, 1);
    assert_int_equal(stats(HC).msgs_in, 0);
    assert_int_equal(W.sent, 0); /* nothing was passed on */
    get(HC, 0, 0, after, sizeof(after));
    assert_memory_equal(before, after, sizeof(before));
    uint8_t tail[4];
    get(HC, 0, LD_SIZE - 4, tail, 4);
    assert_memory_equal(tail, "\0\0\0\0", 4);
    /* An unknown pool is stray, not an attack. */
    m.node = px_str_c("ha");
    m.pool = px_net_key(LAB, "other");
    snprintf(from.key_z85, sizeof(from.key_z85), "%s", W.n[HA].key);
    px_cxlsync_on_msg(W.n[HC].svc, &from, &m);
    assert_int_equal(stats(HC).stray, 1);
}

/* A forged key on the data plane: the sender's real key decides. */
static void test_forged_key(void **state)
{
    (void)state;
    put(HA, 0, 0x800, "forged", 6);
    W.forge = HX;
    sync_now(HA, 0, NULL);
    drain();
    W.forge = -1;
    assert_int_equal(stats(HC).bad_msgs, 1);
    uint8_t v[6];
    get(HC, 0, 0x800, v, 6);
    assert_memory_equal(v, "\0\0\0\0\0\0", 6);
}

/* An LD bound once has no replica at the hub until a host sends changes
 * for it (plans reach nodes at different times); the hub takes it then.
 * When an LD stops being shared, the hub's replica sends its last
 * changes and goes. */
static void test_sharing_changes(void **state)
{
    (void)state;
    px_cxlsync_result r;
    px_errmsg em = {{0}};
    assert_int_equal(px_cxlsync_now(W.n[HC].svc, LAB, POOL, 1, &r, &em), PX_E_NOTFOUND);
    /* ha thinks LD 1 is shared already. */
    copy_up(HA, 1);
    put(HA, 0 + 1, 0x10, "ld1", 3);
    sync_now(HA, 1, NULL);
    drain();
    uint8_t v[3];
    get(HC, 1, 0x10, v, 3);
    assert_memory_equal(v, "ld1", 3);
    assert_int_equal(px_cxlsync_now(W.n[HC].svc, LAB, POOL, 1, &r, &em), PX_OK);
    /* LD 0 is bound once now: the hub's last changes go out with it. */
    put(HC, 0, 0x40, "last", 4);
    shared_flags[0] = false;
    pool_set(HC, 0);
    drain();
    get(HA, 0, 0x40, v, 3);
    assert_memory_equal(v, "las", 3);
    assert_int_equal(px_cxlsync_now(W.n[HC].svc, LAB, POOL, 0, &r, &em), PX_E_NOTFOUND);
    /* A host's copy closed: its last changes go to the hub first. */
    put(HB, 0, 0x50, "bye", 3);
    px_cxlsync_copy_close(W.n[HB].svc, LAB, POOL, 0);
    drain();
    get(HC, 0, 0x50, v, 3);
    assert_memory_equal(v, "bye", 3);
    assert_int_equal(px_cxlsync_now(W.n[HB].svc, LAB, POOL, 0, &r, &em), PX_E_NOTFOUND);
}

/* Refusals of the API itself. */
static void test_api(void **state)
{
    (void)state;
    px_errmsg em = {{0}};
    px_cxlsync_result r;
    char path[256];
    ld_path(HA, 0, path, sizeof(path));
    assert_int_equal(px_cxlsync_copy_open(W.n[HC].svc, LAB, POOL, 0, path, &em), PX_E_INVAL);
    assert_non_null(strstr(em.text, "on this node"));
    assert_int_equal(px_cxlsync_copy_open(W.n[HA].svc, LAB, POOL, N_LDS, path, &em), PX_E_NOTFOUND);
    assert_int_equal(px_cxlsync_copy_open(W.n[HA].svc, LAB, "nope", 0, path, &em), PX_E_NOTFOUND);
    assert_int_equal(px_cxlsync_copy_ready(W.n[HA].svc, LAB, POOL, 1, &em), PX_E_NOTFOUND);
    assert_int_equal(px_cxlsync_now(W.n[HX].svc, LAB, POOL, 0, &r, &em), PX_E_NOTFOUND);
    px_cxlsync_pool_cfg c = {.lab = LAB, .pool = POOL, .hub = "hc", .ld_size = LD_SIZE};
    assert_int_equal(px_cxlsync_pool_set(W.n[HA].svc, &c, &em), PX_E_INVAL); /* no LDs */
    c.n_lds = PX_WIRE_MAX_CXL_LDS + 1;
    assert_int_equal(px_cxlsync_pool_set(W.n[HA].svc, &c, &em), PX_E_INVAL);
    c.n_lds = 1;
    c.hub = "hx";
    assert_int_equal(px_cxlsync_pool_set(W.n[HX].svc, &c, &em), PX_E_INVAL); /* hub, no dir */
    /* A hub whose pool file is missing says which. */
    c.dir = "/nonexistent/px";
    static const bool yes = true;
    c.shared = &yes;
    assert_int_equal(px_cxlsync_pool_set(W.n[HX].svc, &c, &em), PX_E_IO);
    assert_non_null(strstr(em.text, "/nonexistent/px/ld0.mem"));
    /* A copy whose file is gone. */
    ld_path(HA, 1, path, sizeof(path));
    assert_int_equal(px_cxlsync_copy_open(W.n[HA].svc, LAB, POOL, 1, path, &em), PX_OK);
    assert_int_equal(px_cxlsync_copy_ready(W.n[HA].svc, LAB, POOL, 1, &em), PX_E_IO);
    px_cxlsync_copy_close(W.n[HA].svc, LAB, POOL, 1);
    px_cxlsync_lab_remove(W.n[HA].svc, LAB);
    assert_int_equal(px_cxlsync_now(W.n[HA].svc, LAB, POOL, 0, &r, &em), PX_E_NOTFOUND);
}

/* An LD over 4 GiB: record offsets are u32, so changes past 4 GiB travel
 * with a base. The files are sparse and the twins untouched zero pages. */
static void test_big_ld(void **state)
{
    (void)state;
    const uint64_t big = (4ull << 30) + (1u << 20);
    char dir[128], path[256];
    snprintf(dir, sizeof(dir), "%s/big", W.dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/ld0.mem", dir);
    make_file(path, big);
    static const char *hosts[] = {"ha", "hc"};
    static const bool yes = true;
    px_cxlsync_pool_cfg c = {.lab = LAB,
                             .pool = "big",
                             .hub = "hc",
                             .ld_size = big,
                             .n_lds = 1,
                             .dir = dir,
                             .hosts = hosts,
                             .n_hosts = 2,
                             .shared = &yes};
    px_errmsg em = {{0}};
    assert_int_equal(px_cxlsync_pool_set(W.n[HC].svc, &c, &em), PX_OK);
    assert_int_equal(px_cxlsync_pool_set(W.n[HA].svc, &c, &em), PX_OK);
    char copy[256];
    snprintf(copy, sizeof(copy), "%s/ha-big.mem", W.dir);
    make_file(copy, big);
    assert_int_equal(px_cxlsync_copy_open(W.n[HA].svc, LAB, "big", 0, copy, &em), PX_OK);
    assert_int_equal(px_cxlsync_copy_ready(W.n[HA].svc, LAB, "big", 0, &em), PX_OK);
    int fd = open(copy, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "low", 3, 7), 3);
    assert_int_equal(pwrite(fd, "high", 4, (off_t)(big - 4)), 4);
    close(fd);
    px_cxlsync_result r;
    assert_int_equal(px_cxlsync_now(W.n[HA].svc, LAB, "big", 0, &r, &em), PX_OK);
    assert_int_equal(r.bytes, 7);
    assert_int_equal(r.msgs, 2); /* one per 4 GiB of offsets */
    drain();
    fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    char v[4];
    assert_int_equal(pread(fd, v, 3, 7), 3);
    assert_memory_equal(v, "low", 3);
    assert_int_equal(pread(fd, v, 4, (off_t)(big - 4)), 4);
    assert_memory_equal(v, "high", 4);
    close(fd);
    /* Still sparse: the hub wrote two pages, not 4 GiB. */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true((uint64_t)st.st_blocks * 512 < (1u << 20));
}

/* LDs of one pool with different sizes (their allocations): a shared LD
 * twice the pool's ld_size carries changes past ld_size, in both
 * directions; an LD size of 0 is refused. */
static void test_ld_sizes(void **state)
{
    (void)state;
    const uint64_t sizes[2] = {LD_SIZE, 2 * LD_SIZE};
    char dir[128], path[256], copy[256];
    snprintf(dir, sizeof(dir), "%s/sized", W.dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/ld1.mem", dir);
    make_file(path, 2 * LD_SIZE);
    static const char *hosts[] = {"ha", "hc"};
    static const bool flags[2] = {false, true};
    px_cxlsync_pool_cfg c = {.lab = LAB,
                             .pool = "sized",
                             .hub = "hc",
                             .ld_size = LD_SIZE,
                             .ld_sizes = sizes,
                             .n_lds = 2,
                             .dir = dir,
                             .hosts = hosts,
                             .n_hosts = 2,
                             .shared = flags};
    px_errmsg em = {{0}};
    assert_int_equal(px_cxlsync_pool_set(W.n[HC].svc, &c, &em), PX_OK);
    assert_int_equal(px_cxlsync_pool_set(W.n[HA].svc, &c, &em), PX_OK);
    snprintf(copy, sizeof(copy), "%s/ha-sized.mem", W.dir);
    make_file(copy, 2 * LD_SIZE);
    assert_int_equal(px_cxlsync_copy_open(W.n[HA].svc, LAB, "sized", 1, copy, &em), PX_OK);
    assert_int_equal(px_cxlsync_copy_ready(W.n[HA].svc, LAB, "sized", 1, &em), PX_OK);
    int fd = open(copy, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "past", 4, (off_t)(LD_SIZE + 100)), 4);
    assert_int_equal(pwrite(fd, "last", 4, (off_t)(2 * LD_SIZE - 4)), 4);
    px_cxlsync_result r;
    assert_int_equal(px_cxlsync_now(W.n[HA].svc, LAB, "sized", 1, &r, &em), PX_OK);
    assert_int_equal(r.bytes, 8);
    drain();
    int pfd = open(path, O_RDWR);
    assert_true(pfd >= 0);
    char v[4];
    assert_int_equal(pread(pfd, v, 4, (off_t)(LD_SIZE + 100)), 4);
    assert_memory_equal(v, "past", 4);
    assert_int_equal(pread(pfd, v, 4, (off_t)(2 * LD_SIZE - 4)), 4);
    assert_memory_equal(v, "last", 4);
    /* and the hub's own write past ld_size reaches the copy */
    assert_int_equal(pwrite(pfd, "hub!", 4, (off_t)(LD_SIZE + 200)), 4);
    assert_int_equal(px_cxlsync_now(W.n[HC].svc, LAB, "sized", 1, &r, &em), PX_OK);
    assert_int_equal(r.bytes, 4);
    drain();
    assert_int_equal(pread(fd, v, 4, (off_t)(LD_SIZE + 200)), 4);
    assert_memory_equal(v, "hub!", 4);
    close(fd);
    close(pfd);
    const uint64_t bad[2] = {LD_SIZE, 0};
    c.ld_sizes = bad;
    assert_int_equal(px_cxlsync_pool_set(W.n[HA].svc, &c, &em), PX_E_INVAL);
    assert_non_null(strstr(em.text, "LD 1 has no memory"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_both_writes_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hub_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_periodic, setup_periodic, teardown),
        cmocka_unit_test_setup_teardown(test_held_while_copying, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hold_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_link, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sharing_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_ld, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ld_sizes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
