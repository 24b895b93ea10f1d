/* Unit tests: fabric/core/transport and fabric/core/keys.
 *
 * Every wait is "run the loop until a condition holds, or fail at a
 * deadline"; nothing sleeps in place of a condition. Records in these tests
 * are [u32 length][u64 sequence][filler derived from the sequence], so every
 * record is checked for loss, duplication, reordering and corruption.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include <cmocka.h>

#include "fabric/core/log.h"
#include "fabric/core/transport.h"

#define REC_HDR     12
#define N_EXCHANGE  1000000u
#define MAX_SENDERS 8
#define WAIT_MS     10000
#define EXCHANGE_MS 50000

/* ---- records ---- */

static size_t rec_len_for(uint64_t seq)
{
    return REC_HDR + (size_t)(seq * 7 % 89); /* 12..100 bytes, varied */
}

static size_t rec_make(uint8_t *buf, uint64_t seq, size_t len)
{
    uint32_t l = (uint32_t)len;
    memcpy(buf, &l, 4);
    memcpy(buf + 4, &seq, 8);
    for (size_t i = REC_HDR; i < len; i++)
        buf[i] = (uint8_t)(seq + i);
    return len;
}

/* Parse one record; false if it is malformed or corrupt. */
static bool rec_parse(const uint8_t *p, size_t avail, size_t *used, uint64_t *seq)
{
    uint32_t l;
    if (avail < REC_HDR)
        return false;
    memcpy(&l, p, 4);
    if (l < REC_HDR || l > avail)
        return false;
    memcpy(seq, p + 4, 8);
    for (size_t i = REC_HDR; i < l; i++)
        if (p[i] != (uint8_t)(*seq + i))
            return false;
    *used = l;
    return true;
}

/* ---- a receiving side that checks per-sender order ---- */

typedef struct sink {
    struct {
        uint8_t id[PX_PEER_ID_MAX];
        uint8_t id_len;
        uint64_t next, count;
    } senders[MAX_SENDERS];
    int n_senders;
    uint64_t recs, msgs;
    uint64_t burst, max_burst; /* messages delivered between two loop checks */
    bool corrupt, order_broken;
    int connected, disconnected, auth_failed, writable, closed;
    px_peer last_from;
    /* echo: send each received record straight back (SERVER side) */
    bool echo;
    px_err echo_err;
} sink;

static uint64_t *sender_slot(sink *s, const px_peer *from)
{
    for (int i = 0; i < s->n_senders; i++)
        if (s->senders[i].id_len == from->id_len &&
            memcmp(s->senders[i].id, from->id, from->id_len) == 0)
            return &s->senders[i].next;
    assert_true(s->n_senders < MAX_SENDERS);
    int i = s->n_senders++;
    memcpy(s->senders[i].id, from->id, from->id_len);
    s->senders[i].id_len = from->id_len;
    s->senders[i].next = 0;
    return &s->senders[i].next;
}

static uint64_t sink_count_from(const sink *s, const char *id)
{
    for (int i = 0; i < s->n_senders; i++)
        if (s->senders[i].id_len == strlen(id) && memcmp(s->senders[i].id, id, strlen(id)) == 0)
            return s->senders[i].next;
    return 0;
}

static void sink_recv(px_chan *ch, const px_peer *from, const uint8_t *data, size_t len, void *ud)
{
    sink *s = ud;
    s->msgs++;
    if (++s->burst > s->max_burst)
        s->max_burst = s->burst;
    s->last_from = *from;
    uint64_t *next = sender_slot(s, from);
    size_t off = 0;
    while (off < len) {
        size_t used;
        uint64_t seq;
        if (!rec_parse(data + off, len - off, &used, &seq)) {
            s->corrupt = true;
            return;
        }
        if (seq != *next)
            s->order_broken = true;
        *next = seq + 1;
        s->recs++;
        if (s->echo) {
            px_err e = px_chan_send(ch, from, data + off, used);
            if (e != PX_OK)
                s->echo_err = e;
        }
        off += used;
    }
}

static void sink_event(px_chan *ch, px_chan_event ev, void *ud)
{
    (void)ch;
    sink *s = ud;
    if (ev == PX_CHAN_EV_CONNECTED)
        s->connected++;
    else if (ev == PX_CHAN_EV_DISCONNECTED)
        s->disconnected++;
    else if (ev == PX_CHAN_EV_AUTH_FAILED)
        s->auth_failed++;
}

static void sink_writable(px_chan *ch, const px_peer *peer, void *ud)
{
    (void)ch;
    (void)peer;
    ((sink *)ud)->writable++;
}

static void sink_closed(px_chan *ch, void *ud)
{
    (void)ch;
    ((sink *)ud)->closed++;
}

/* ---- waiting on the loop ---- */

static void deadline_cb(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

typedef bool (*cond_fn)(void *);

static bool run_until(uv_loop_t *loop, cond_fn cond, void *arg, unsigned ms)
{
    uv_timer_t timer;
    bool expired = false;
    uv_timer_init(loop, &timer);
    timer.data = &expired;
    uv_timer_start(&timer, deadline_cb, ms, 0);
    while (!cond(arg) && !expired)
        uv_run(loop, UV_RUN_ONCE);
    bool ok = cond(arg);
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(loop, UV_RUN_NOWAIT); /* the timer lives on this stack frame */
    return ok;
}

typedef struct {
    const uint64_t *val;
    uint64_t want;
} at_least;

static bool cond_at_least(void *arg)
{
    at_least *a = arg;
    return *a->val >= a->want;
}

static bool wait_u64(uv_loop_t *loop, const uint64_t *val, uint64_t want, unsigned ms)
{
    at_least a = {val, want};
    return run_until(loop, cond_at_least, &a, ms);
}

typedef struct {
    const int *val;
    int want;
} int_at_least;

static bool cond_int_at_least(void *arg)
{
    int_at_least *a = arg;
    return *a->val >= a->want;
}

static bool wait_int(uv_loop_t *loop, const int *val, int want, unsigned ms)
{
    int_at_least a = {val, want};
    return run_until(loop, cond_int_at_least, &a, ms);
}

/* ---- fixtures ---- */

static px_transport *transport(uv_loop_t *loop, const px_keypair *self, const char *const *allow,
                               size_t n_allow)
{
    px_transport_opts o = {.self = *self, .allow = allow, .n_allow = n_allow};
    px_transport *t = NULL;
    px_errmsg em = {{0}};
    px_err e = px_transport_new(loop, &o, &t, &em);
    if (e != PX_OK)
        fail_msg("px_transport_new: %s", em.text);
    return t;
}

static px_chan *server_chan(px_transport *t, sink *s)
{
    px_chan_opts o = {
        .role = PX_CHAN_SERVER,
        .endpoint = "tcp://127.0.0.1:*",
        .on_recv = sink_recv,
        .on_event = sink_event,
        .on_writable = sink_writable,
        .ud = s,
    };
    px_chan *ch = NULL;
    px_errmsg em = {{0}};
    if (px_chan_open(t, &o, &ch, &em) != PX_OK)
        fail_msg("px_chan_open server: %s", em.text);
    return ch;
}

static px_chan *client_chan_opts(px_transport *t, px_chan_opts o)
{
    px_chan *ch = NULL;
    px_errmsg em = {{0}};
    if (px_chan_open(t, &o, &ch, &em) != PX_OK)
        fail_msg("px_chan_open client: %s", em.text);
    return ch;
}

static px_chan *client_chan(px_transport *t, const char *ep, const char *server_key,
                            const char *identity, sink *s)
{
    px_chan_opts o = {
        .role = PX_CHAN_CLIENT,
        .endpoint = ep,
        .server_key = server_key,
        .identity = identity,
        .on_recv = sink_recv,
        .on_event = sink_event,
        .on_writable = sink_writable,
        .ud = s,
    };
    return client_chan_opts(t, o);
}

static void close_chan(uv_loop_t *loop, px_chan *ch, sink *s)
{
    int before = s->closed;
    px_chan_close(ch, sink_closed, s);
    assert_int_equal(s->closed, before); /* never synchronous */
    assert_true(wait_int(loop, &s->closed, before + 1, WAIT_MS));
}

static void free_transport(uv_loop_t *loop, px_transport *t)
{
    assert_int_equal(px_transport_free(t), PX_OK);
    /* One iteration releases its handles; other transports may still be
     * polling on this loop, so do not run it dry. uv_loop_close at the end of
     * each test proves nothing was left behind. */
    uv_run(loop, UV_RUN_NOWAIT);
}

static void send_seq(px_chan *ch, const px_peer *to, uint64_t from, uint64_t n)
{
    uint8_t buf[128];
    for (uint64_t s = from; s < from + n; s++) {
        size_t len = rec_make(buf, s, rec_len_for(s));
        assert_int_equal(px_chan_send(ch, to, buf, len), PX_OK);
    }
}

static px_peer peer_named(const char *id)
{
    px_peer p = {.id_len = (uint8_t)strlen(id)};
    memcpy(p.id, id, p.id_len);
    return p;
}

typedef struct keys {
    px_keypair server, a, b;
} keys;

static int setup_keys(void **state)
{
    keys *k = calloc(1, sizeof(*k));
    if (!k || px_keypair_generate(&k->server, NULL) != PX_OK ||
        px_keypair_generate(&k->a, NULL) != PX_OK || px_keypair_generate(&k->b, NULL) != PX_OK)
        return -1;
    *state = k;
    return 0;
}

static int teardown_keys(void **state)
{
    free(*state);
    return 0;
}

/* ---- keys ---- */

static char tmpdir[256];

static int setup_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/px-test-keys-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmpdir(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void test_keys_round_trip(void **state)
{
    (void)state;
    px_keypair kp, back;
    px_errmsg em = {{0}};
    assert_int_equal(px_keypair_generate(&kp, &em), PX_OK);
    assert_true(px_key_valid(kp.public_z85));
    assert_true(px_key_valid(kp.secret_z85));
    assert_string_not_equal(kp.public_z85, kp.secret_z85);

    char path[512];
    snprintf(path, sizeof(path), "%s/node.key", tmpdir);
    assert_int_equal(px_keypair_save(&kp, path, &em), PX_OK);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(px_keypair_load(path, &back, &em), PX_OK);
    assert_string_equal(back.public_z85, kp.public_z85);
    assert_string_equal(back.secret_z85, kp.secret_z85);

    /* Overwrite in place (rename over the old file). */
    px_keypair kp2;
    assert_int_equal(px_keypair_generate(&kp2, &em), PX_OK);
    assert_int_equal(px_keypair_save(&kp2, path, &em), PX_OK);
    assert_int_equal(px_keypair_load(path, &back, &em), PX_OK);
    assert_string_equal(back.public_z85, kp2.public_z85);

    /* Public-only file. */
    px_keypair pub;
    memset(&pub, 0, sizeof(pub));
    memcpy(pub.public_z85, kp.public_z85, sizeof(pub.public_z85));
    snprintf(path, sizeof(path), "%s/peer.pub", tmpdir);
    assert_int_equal(px_keypair_save(&pub, path, &em), PX_OK);
    assert_int_equal(px_keypair_load(path, &back, &em), PX_OK);
    assert_string_equal(back.public_z85, kp.public_z85);
    assert_string_equal(back.secret_z85, "");

    assert_false(px_key_valid(NULL));
    assert_false(px_key_valid(""));
    assert_false(px_key_valid("short"));
    char bad[41];
    memcpy(bad, kp.public_z85, 41);
    bad[5] = '"'; /* not in the Z85 alphabet */
    assert_false(px_key_valid(bad));
    memcpy(bad, "########################################", 41); /* group overflows */
    assert_false(px_key_valid(bad));
    /* Refuses to write garbage. */
    memcpy(pub.public_z85, "nope", 5);
    assert_int_equal(px_keypair_save(&pub, path, &em), PX_E_INVAL);
}

static void expect_load_error(const char *name, const char *text, mode_t mode, px_err want,
                              const char *where, const char *expect)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    write_file(path, text, mode);
    px_keypair kp;
    px_errmsg em = {{0}};
    assert_int_equal(px_keypair_load(path, &kp, &em), want);
    char loc[600];
    snprintf(loc, sizeof(loc), "%s%s", path, where);
    if (!strstr(em.text, loc) || !strstr(em.text, expect))
        fail_msg("for %s got \"%s\", wanted \"%s\" and \"%s\"", name, em.text, loc, expect);
    assert_string_equal(kp.secret_z85, ""); /* nothing half-loaded */
}

static void test_keys_malformed(void **state)
{
    (void)state;
    px_keypair a, b;
    assert_int_equal(px_keypair_generate(&a, NULL), PX_OK);
    assert_int_equal(px_keypair_generate(&b, NULL), PX_OK);
    char text[512];

    expect_load_error("empty", "", 0600, PX_E_CONFIG, ":1:", "expected 'public <key>'");
    expect_load_error("word", "publik abc\n", 0600, PX_E_CONFIG,
                      ":1:", "expected 'public <40-character Z85 key>'");
    expect_load_error("short", "public abc\n", 0600, PX_E_CONFIG,
                      ":1:", "has 3 characters, expected 40");
    snprintf(text, sizeof(text), "public %.39s\"\n", a.public_z85);
    expect_load_error("alphabet", text, 0600, PX_E_CONFIG, ":1:", "not valid Z85");
    snprintf(text, sizeof(text), "public %s\r\nsecret %s\r\n", a.public_z85, a.secret_z85);
    expect_load_error("crlf", text, 0600, PX_E_CONFIG, ":1:", "carriage return");
    snprintf(text, sizeof(text), "public %s\nsekret %s\n", a.public_z85, a.secret_z85);
    expect_load_error("word2", text, 0600, PX_E_CONFIG, ":2:", "expected 'secret <40-character");
    snprintf(text, sizeof(text), "public %s\nsecret %s\n", a.public_z85, b.secret_z85);
    expect_load_error("mismatch", text, 0600, PX_E_CONFIG, ":2:", "does not belong");
    snprintf(text, sizeof(text), "public %s\nsecret %s\nmore\n", a.public_z85, a.secret_z85);
    expect_load_error("extra", text, 0600, PX_E_CONFIG, ":3:", "unexpected text");
    snprintf(text, sizeof(text), "public %s\nsecret %s\n", a.public_z85, a.secret_z85);
    expect_load_error("mode", text, 0644, PX_E_AUTH, ": holds a secret", "chmod 600");
    char longline[400];
    memset(longline, 'x', sizeof(longline) - 2);
    longline[sizeof(longline) - 2] = '\n';
    longline[sizeof(longline) - 1] = '\0';
    expect_load_error("long", longline, 0600, PX_E_CONFIG, ":1:", "too long");

    /* A well-formed file without a final newline is accepted. */
    char path[512];
    snprintf(path, sizeof(path), "%s/nonl", tmpdir);
    snprintf(text, sizeof(text), "public %s\nsecret %s", a.public_z85, a.secret_z85);
    write_file(path, text, 0600);
    px_keypair kp;
    px_errmsg em = {{0}};
    assert_int_equal(px_keypair_load(path, &kp, &em), PX_OK);
    assert_string_equal(kp.secret_z85, a.secret_z85);

    snprintf(path, sizeof(path), "%s/absent", tmpdir);
    assert_int_equal(px_keypair_load(path, &kp, &em), PX_E_NOTFOUND);
    assert_non_null(strstr(em.text, path));
}

/* ---- contract checks that need no traffic ---- */

static void test_open_errors(void **state)
{
    keys *k = *state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    px_transport *t = transport(&loop, &k->server, NULL, 0);
    sink s = {0};
    px_chan *srv = server_chan(t, &s);

    /* Same port twice: the error names the endpoint. */
    px_chan_opts o = {
        .role = PX_CHAN_SERVER, .endpoint = px_chan_endpoint(srv), .on_recv = sink_recv, .ud = &s};
    px_chan *dup = NULL;
    px_errmsg em = {{0}};
    assert_int_equal(px_chan_open(t, &o, &dup, &em), PX_E_EXISTS);
    assert_null(dup);
    assert_non_null(strstr(em.text, px_chan_endpoint(srv)));

    o.role = PX_CHAN_CLIENT;
    o.server_key = "not a key";
    assert_int_equal(px_chan_open(t, &o, &dup, &em), PX_E_INVAL);
    assert_non_null(strstr(em.text, "server's public key"));
    o.server_key = k->server.public_z85;
    o.batch_bytes = 1 << 20;
    o.queue_bytes = 1 << 10;
    assert_int_equal(px_chan_open(t, &o, &dup, &em), PX_E_INVAL);
    o.batch_bytes = o.queue_bytes = 0;
    o.on_recv = NULL;
    assert_int_equal(px_chan_open(t, &o, &dup, &em), PX_E_INVAL);

    const char *bad_allow[] = {"garbage"};
    px_transport_opts to = {.self = k->a, .allow = bad_allow, .n_allow = 1};
    px_transport *t2 = NULL;
    assert_int_equal(px_transport_new(&loop, &to, &t2, &em), PX_E_INVAL);
    assert_null(t2);
    to.allow = NULL;
    to.n_allow = 0;
    to.self.secret_z85[0] = '\0';
    assert_int_equal(px_transport_new(&loop, &to, &t2, &em), PX_E_INVAL);

    /* Allow-list edits. */
    assert_int_equal(px_transport_allow(t, "bad"), PX_E_INVAL);
    assert_int_equal(px_transport_allow(t, k->a.public_z85), PX_OK);
    assert_int_equal(px_transport_allow(t, k->a.public_z85), PX_OK);
    assert_int_equal(px_transport_revoke(t, k->a.public_z85), PX_OK);
    assert_int_equal(px_transport_revoke(t, k->a.public_z85), PX_E_NOTFOUND);

    /* Sends that never reach the queue. */
    px_peer nobody = peer_named("nobody");
    uint8_t big[70000] = {0};
    assert_int_equal(px_chan_send(srv, &nobody, big, 0), PX_E_INVAL);
    assert_int_equal(px_chan_send(srv, NULL, big, 10), PX_E_INVAL);
    assert_int_equal(px_chan_send(srv, &nobody, big, sizeof(big)), PX_E_TOOBIG);

    /* A transport with a live channel cannot be freed. */
    assert_int_equal(px_transport_free(t), PX_E_INVAL);
    px_chan_close(srv, sink_closed, &s);
    assert_int_equal(px_chan_send(srv, &nobody, big, 10), PX_E_CLOSED);
    px_chan_close(srv, sink_closed, &s); /* second close: nothing */
    assert_int_equal(s.closed, 0);
    assert_true(wait_int(&loop, &s.closed, 1, WAIT_MS));
    free_transport(&loop, t);
    assert_int_equal(s.closed, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- authentication ---- */

static void test_unlisted_client_refused(void **state)
{
    keys *k = *state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    const char *allow[] = {k->a.public_z85};
    px_transport *ts = transport(&loop, &k->server, allow, 1);
    px_transport *tb = transport(&loop, &k->b, NULL, 0);
    px_transport *ta = transport(&loop, &k->a, NULL, 0);
    sink ss = {0}, sb = {0}, sa = {0};
    px_chan *srv = server_chan(ts, &ss);

    px_chan *cb = client_chan(tb, px_chan_endpoint(srv), k->server.public_z85, "b", &sb);
    send_seq(cb, NULL, 0, 10);
    assert_true(wait_int(&loop, &sb.auth_failed, 1, WAIT_MS));
    px_chan_stats st;
    px_chan_stats_get(srv, &st);
    assert_true(st.auth_failures >= 1);

    /* An admitted client on the same server proves records do get through
     * (so the zero below can fail), and carries its authenticated key. */
    px_chan *ca = client_chan(ta, px_chan_endpoint(srv), k->server.public_z85, "a", &sa);
    send_seq(ca, NULL, 0, 10);
    assert_true(wait_u64(&loop, &ss.recs, 10, WAIT_MS));
    assert_int_equal(sa.connected, 1);
    assert_int_equal(sa.auth_failed, 0);
    assert_string_equal(ss.last_from.key_z85, k->a.public_z85);
    assert_int_equal(sink_count_from(&ss, "b"), 0);
    assert_int_equal(sink_count_from(&ss, "a"), 10);
    assert_int_equal(ss.recs, 10);
    assert_false(ss.corrupt || ss.order_broken);
    assert_int_equal(sb.connected, 0);
    px_chan_stats_get(cb, &st);
    assert_int_equal(st.records_sent, 0); /* never left the refused client's queue */
    assert_true(st.queued_bytes > 0);

    close_chan(&loop, cb, &sb);
    close_chan(&loop, ca, &sa);
    close_chan(&loop, srv, &ss);
    free_transport(&loop, tb);
    free_transport(&loop, ta);
    free_transport(&loop, ts);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void raw_refused(keys *k, bool plain)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    const char *allow[] = {k->a.public_z85};
    px_transport *ts = transport(&loop, &k->server, allow, 1);
    px_transport *ta = transport(&loop, &k->a, NULL, 0);
    sink ss = {0}, sa = {0};
    px_chan *srv = server_chan(ts, &ss);

    void *ctx = zmq_ctx_new();
    void *d = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(d, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(d, ZMQ_ROUTING_ID, "raw", 3);
    if (plain) {
        zmq_setsockopt(d, ZMQ_PLAIN_USERNAME, "admin", 5);
        zmq_setsockopt(d, ZMQ_PLAIN_PASSWORD, "admin", 5);
    }
    assert_int_equal(zmq_connect(d, px_chan_endpoint(srv)), 0);
    uint8_t rec[64];
    size_t len = rec_make(rec, 0, sizeof(rec));
    assert_int_equal(zmq_send(d, rec, len, ZMQ_DONTWAIT), (int)len);

    /* libzmq does not retry after a mechanism mismatch, so one refusal is
     * all there is to wait for. */
    assert_true(wait_int(&loop, &ss.auth_failed, 1, WAIT_MS));
    px_chan_stats st;
    px_chan_stats_get(srv, &st);
    assert_true(st.auth_failures >= 1);
    /* An admitted client's records arrive after the refusal, and the raw
     * one's never do. */
    px_chan *ca = client_chan(ta, px_chan_endpoint(srv), k->server.public_z85, "a", &sa);
    send_seq(ca, NULL, 0, 5);
    assert_true(wait_u64(&loop, &ss.recs, 5, WAIT_MS));
    assert_int_equal(sink_count_from(&ss, "raw"), 0);
    assert_int_equal(ss.recs, 5);
    assert_int_equal(ss.n_senders, 1);

    zmq_close(d);
    zmq_ctx_term(ctx);
    close_chan(&loop, ca, &sa);
    close_chan(&loop, srv, &ss);
    free_transport(&loop, ta);
    free_transport(&loop, ts);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_plain_zmq_client_refused(void **state)
{
    raw_refused(*state, false); /* NULL mechanism */
    raw_refused(*state, true);  /* PLAIN mechanism */
}

static void test_revoke_and_allow(void **state)
{
    keys *k = *state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    const char *allow[] = {k->a.public_z85};
    px_transport *ts = transport(&loop, &k->server, allow, 1);
    px_transport *ta = transport(&loop, &k->a, NULL, 0);
    sink ss = {0}, s1 = {0}, s2 = {0}, s3 = {0};
    px_chan *srv = server_chan(ts, &ss);

    px_chan *a1 = client_chan(ta, px_chan_endpoint(srv), k->server.public_z85, "a1", &s1);
    send_seq(a1, NULL, 0, 5);
    assert_true(wait_u64(&loop, &ss.recs, 5, WAIT_MS));

    assert_int_equal(px_transport_revoke(ts, k->a.public_z85), PX_OK);
    /* The admitted connection stays up... */
    send_seq(a1, NULL, 5, 5);
    assert_true(wait_u64(&loop, &ss.recs, 10, WAIT_MS));
    /* ...a new one with the same key is refused. */
    px_chan *a2 = client_chan(ta, px_chan_endpoint(srv), k->server.public_z85, "a2", &s2);
    send_seq(a2, NULL, 0, 5);
    assert_true(wait_int(&loop, &s2.auth_failed, 1, WAIT_MS));
    assert_int_equal(s2.connected, 0);
    assert_int_equal(sink_count_from(&ss, "a2"), 0);

    /* Allowed again at run time: a new connection gets through, and the
     * refused client redials by itself and delivers what it had queued. */
    assert_int_equal(px_transport_allow(ts, k->a.public_z85), PX_OK);
    px_chan *a3 = client_chan(ta, px_chan_endpoint(srv), k->server.public_z85, "a3", &s3);
    send_seq(a3, NULL, 0, 5);
    assert_true(wait_u64(&loop, &ss.recs, 20, WAIT_MS));
    assert_int_equal(s2.connected, 1);
    assert_int_equal(sink_count_from(&ss, "a1"), 10);
    assert_int_equal(sink_count_from(&ss, "a2"), 5);
    assert_int_equal(sink_count_from(&ss, "a3"), 5);
    assert_false(ss.corrupt || ss.order_broken);

    close_chan(&loop, a1, &s1);
    close_chan(&loop, a2, &s2);
    close_chan(&loop, a3, &s3);
    close_chan(&loop, srv, &ss);
    free_transport(&loop, ta);
    free_transport(&loop, ts);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- one million records each way between two loops on two threads ---- */

typedef struct xside {
    uv_loop_t loop;
    uv_async_t wake;
    px_transport *t;
    px_chan *ch;
    px_peer peer; /* SERVER: the client, once heard from */
    bool have_peer;
    uint64_t sent, recvd, next;
    bool bad, done_sent, done_seen;
    px_err send_err;
} xside;

typedef struct xfer {
    keys *k;
    xside srv, cli;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char endpoint[256];
    int ready; /* 1 = endpoint published, -1 = server failed to start */
    atomic_bool server_done;
} xfer;

#define DONE_SEQ UINT64_MAX

static void x_send_more(xside *x)
{
    uint8_t buf[128];
    const px_peer *to = x->have_peer ? &x->peer : NULL;
    while (x->sent < N_EXCHANGE) {
        size_t len = rec_make(buf, x->sent, rec_len_for(x->sent));
        px_err e = px_chan_send(x->ch, to, buf, len);
        if (e == PX_E_AGAIN)
            return; /* on_writable resumes */
        if (e != PX_OK) {
            x->send_err = e;
            return;
        }
        x->sent++;
    }
}

static void x_writable(px_chan *ch, const px_peer *peer, void *ud)
{
    (void)ch;
    (void)peer;
    xside *x = ud;
    x_send_more(x);
    if (!x->have_peer && x->sent == N_EXCHANGE && x->recvd == N_EXCHANGE && !x->done_sent) {
        uint8_t buf[16];
        if (px_chan_send(x->ch, NULL, buf, rec_make(buf, DONE_SEQ, REC_HDR)) == PX_OK)
            x->done_sent = true;
    }
}

static void x_recv(px_chan *ch, const px_peer *from, const uint8_t *data, size_t len, void *ud)
{
    xside *x = ud;
    size_t off = 0;
    while (off < len) {
        size_t used;
        uint64_t seq;
        if (!rec_parse(data + off, len - off, &used, &seq)) {
            x->bad = true;
            return;
        }
        off += used;
        if (seq == DONE_SEQ) {
            x->done_seen = true;
            continue;
        }
        if (seq != x->next || (used != rec_len_for(seq)))
            x->bad = true;
        x->next = seq + 1;
        x->recvd++;
    }
    if (from->id_len > 0 && !x->have_peer) {
        x->peer = *from;
        x->have_peer = true;
        x_send_more(x);
    }
    x_writable(ch, from, x); /* client: maybe send DONE */
}

static bool x_server_finished(void *arg)
{
    xside *x = arg;
    return x->done_seen || x->bad || x->send_err;
}

static void x_closed(px_chan *ch, void *ud)
{
    (void)ch;
    *(int *)ud = 1;
}

static bool cond_int_nonzero(void *arg)
{
    return *(int *)arg != 0;
}

static void x_wake_cb(uv_async_t *a)
{
    (void)a; /* only wakes the loop; the condition is read afterwards */
}

static void *x_server(void *arg)
{
    xfer *xf = arg;
    xside *x = &xf->srv;
    uv_loop_init(&x->loop);
    const char *allow[] = {xf->k->a.public_z85};
    px_transport_opts to = {.self = xf->k->server, .allow = allow, .n_allow = 1};
    px_chan_opts co = {.role = PX_CHAN_SERVER,
                       .endpoint = "tcp://127.0.0.1:*",
                       .on_recv = x_recv,
                       .on_writable = x_writable,
                       .ud = x};
    bool ok = px_transport_new(&x->loop, &to, &x->t, NULL) == PX_OK &&
              px_chan_open(x->t, &co, &x->ch, NULL) == PX_OK;
    pthread_mutex_lock(&xf->mu);
    if (ok)
        snprintf(xf->endpoint, sizeof(xf->endpoint), "%s", px_chan_endpoint(x->ch));
    xf->ready = ok ? 1 : -1;
    pthread_cond_signal(&xf->cv);
    pthread_mutex_unlock(&xf->mu);
    if (!ok)
        return NULL;
    run_until(&x->loop, x_server_finished, x, EXCHANGE_MS);
    int closed = 0;
    px_chan_close(x->ch, x_closed, &closed);
    run_until(&x->loop, cond_int_nonzero, &closed, WAIT_MS);
    px_transport_free(x->t);
    uv_run(&x->loop, UV_RUN_DEFAULT);
    uv_loop_close(&x->loop);
    atomic_store(&xf->server_done, true);
    uv_async_send(&xf->cli.wake);
    return NULL;
}

static bool x_client_finished(void *arg)
{
    xfer *xf = arg;
    return atomic_load(&xf->server_done) || xf->cli.bad || xf->cli.send_err;
}

static void test_million_records_two_loops(void **state)
{
    keys *k = *state;
    xfer *xf = calloc(1, sizeof(*xf));
    assert_non_null(xf);
    xf->k = k;
    pthread_mutex_init(&xf->mu, NULL);
    pthread_cond_init(&xf->cv, NULL);
    xside *c = &xf->cli;
    uv_loop_init(&c->loop);
    uv_async_init(&c->loop, &c->wake, x_wake_cb);

    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, x_server, xf), 0);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&xf->mu);
    while (xf->ready == 0 && pthread_cond_timedwait(&xf->cv, &xf->mu, &dl) == 0)
        ;
    int ready = xf->ready;
    pthread_mutex_unlock(&xf->mu);
    assert_int_equal(ready, 1);

    c->t = transport(&c->loop, &k->a, NULL, 0);
    px_chan_opts co = {.role = PX_CHAN_CLIENT,
                       .endpoint = xf->endpoint,
                       .server_key = k->server.public_z85,
                       .on_recv = x_recv,
                       .on_writable = x_writable,
                       .ud = c};
    c->ch = client_chan_opts(c->t, co);
    x_send_more(c); /* queues until connected, then on_writable carries on */

    uint64_t t0 = uv_hrtime();
    bool finished = run_until(&c->loop, x_client_finished, xf, EXCHANGE_MS + 5000);
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    px_chan_stats st;
    px_chan_stats_get(c->ch, &st);
    print_message("# exchange: %u records each way in %.2f s; client sent %llu batches\n",
                  N_EXCHANGE, secs, (unsigned long long)st.batches_sent);
    if (!finished)
        atomic_store(&xf->server_done, true); /* the server thread ends at its deadline */
    pthread_join(th, NULL);

    assert_true(finished);
    assert_false(c->bad);
    assert_false(xf->srv.bad);
    assert_int_equal(c->send_err, PX_OK);
    assert_int_equal(xf->srv.send_err, PX_OK);
    assert_int_equal(xf->srv.recvd, N_EXCHANGE);
    assert_int_equal(xf->srv.next, N_EXCHANGE);
    assert_true(xf->srv.done_seen);
    assert_int_equal(c->recvd, N_EXCHANGE);
    assert_int_equal(c->next, N_EXCHANGE);
    assert_int_equal(st.records_sent, N_EXCHANGE + 1);
    assert_true(st.batches_sent < st.records_sent / 10);

    int closed = 0;
    px_chan_close(c->ch, x_closed, &closed);
    assert_true(run_until(&c->loop, cond_int_nonzero, &closed, WAIT_MS));
    uv_close((uv_handle_t *)&c->wake, NULL);
    free_transport(&c->loop, c->t);
    assert_int_equal(uv_loop_close(&c->loop), 0);
    pthread_cond_destroy(&xf->cv);
    pthread_mutex_destroy(&xf->mu);
    free(xf);
}

/* ---- a peer killed mid-stream ---- */

static char self_exe[4096];

static void stop_loop_cb(uv_timer_t *t)
{
    uv_stop(t->loop);
}

/* Child: connect and stream numbered records until killed. */
static int stream_child(const char *endpoint, const char *server_pub_file, const char *key_file)
{
    px_keypair spub, self;
    px_errmsg em = {{0}};
    if (px_keypair_load(server_pub_file, &spub, &em) != PX_OK ||
        px_keypair_load(key_file, &self, &em) != PX_OK) {
        fprintf(stderr, "stream child: %s\n", em.text);
        return 2;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    xside x = {0};
    px_transport_opts to = {.self = self};
    px_chan_opts co = {.role = PX_CHAN_CLIENT,
                       .endpoint = endpoint,
                       .server_key = spub.public_z85,
                       .identity = "child",
                       .on_recv = x_recv,
                       .on_writable = x_writable,
                       .ud = &x};
    if (px_transport_new(&loop, &to, &x.t, &em) != PX_OK ||
        px_chan_open(x.t, &co, &x.ch, &em) != PX_OK) {
        fprintf(stderr, "stream child: %s\n", em.text);
        return 2;
    }
    x_send_more(&x);
    /* Bounded even if nobody kills us. */
    uv_timer_t stop;
    uv_timer_init(&loop, &stop);
    uv_timer_start(&stop, stop_loop_cb, 30000, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    return 3;
}

static void test_peer_killed_mid_stream(void **state)
{
    keys *k = *state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    const char *allow[] = {k->a.public_z85, k->b.public_z85};
    px_transport *ts = transport(&loop, &k->server, allow, 2);
    sink ss = {0};
    px_chan *srv = server_chan(ts, &ss);

    char spub[512], ckey[512];
    snprintf(spub, sizeof(spub), "%s/server.pub", tmpdir);
    snprintf(ckey, sizeof(ckey), "%s/child.key", tmpdir);
    px_keypair pub;
    memset(&pub, 0, sizeof(pub));
    memcpy(pub.public_z85, k->server.public_z85, sizeof(pub.public_z85));
    assert_int_equal(px_keypair_save(&pub, spub, NULL), PX_OK);
    assert_int_equal(px_keypair_save(&k->b, ckey, NULL), PX_OK);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execl(self_exe, self_exe, "--stream-child", px_chan_endpoint(srv), spub, ckey,
              (char *)NULL);
        _exit(127);
    }
    /* Let it stream a while, then kill it without warning. */
    uint64_t deadline = uv_hrtime() + (uint64_t)WAIT_MS * 1000000u;
    while (sink_count_from(&ss, "child") < 20000 && uv_hrtime() < deadline)
        wait_u64(&loop, &ss.recs, ss.recs + 1, 200);
    uint64_t got = sink_count_from(&ss, "child");
    kill(pid, SIGKILL);
    int wst = 0;
    assert_int_equal(waitpid(pid, &wst, 0), pid);
    assert_true(got >= 20000);
    assert_true(WIFSIGNALED(wst));
    assert_false(ss.corrupt || ss.order_broken);
    assert_true(wait_int(&loop, &ss.disconnected, 1, WAIT_MS));
    assert_int_equal(ss.connected, 1);

    /* Records for a peer that is not connected are dropped and counted
     * (ZeroMQ may still hold the dead child's pipe for a moment, so the
     * unknown id is the deterministic case), and never block the queue. */
    px_peer nobody = peer_named("nobody"), child = peer_named("child");
    px_chan_stats st;
    px_chan_stats_get(srv, &st);
    uint64_t dropped0 = st.dropped;
    send_seq(srv, &nobody, 0, 3);
    send_seq(srv, &child, 0, 3);
    uv_run(&loop, UV_RUN_NOWAIT);
    px_chan_stats_get(srv, &st);
    assert_true(st.dropped >= dropped0 + 3);
    assert_int_equal(st.queued_bytes, 0);

    /* The server still serves a second client, both ways. */
    px_transport *ta = transport(&loop, &k->a, NULL, 0);
    sink sa = {0};
    px_chan *ca = client_chan(ta, px_chan_endpoint(srv), k->server.public_z85, "second", &sa);
    ss.echo = true;
    send_seq(ca, NULL, 0, 1000);
    assert_true(wait_u64(&loop, &sa.recs, 1000, WAIT_MS));
    assert_int_equal(sink_count_from(&ss, "second"), 1000);
    assert_int_equal(ss.echo_err, PX_OK);
    assert_false(ss.corrupt || ss.order_broken || sa.corrupt || sa.order_broken);
    assert_string_equal(sa.last_from.key_z85, k->server.public_z85);

    close_chan(&loop, ca, &sa);
    close_chan(&loop, srv, &ss);
    free_transport(&loop, ta);
    free_transport(&loop, ts);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- queue policies, limits, batching ---- */

typedef struct pair {
    uv_loop_t loop;
    px_transport *ts, *tc;
    px_chan *srv, *cli;
    sink ss, sc;
} pair;

/* A server, and a client that is opened but has not run the loop yet, so
 * nothing it queues can leave before the test says so. */
static void pair_open(pair *p, keys *k, px_chan_opts copts)
{
    memset(p, 0, sizeof(*p));
    uv_loop_init(&p->loop);
    const char *allow[] = {k->a.public_z85};
    p->ts = transport(&p->loop, &k->server, allow, 1);
    p->tc = transport(&p->loop, &k->a, NULL, 0);
    p->srv = server_chan(p->ts, &p->ss);
    copts.role = PX_CHAN_CLIENT;
    copts.endpoint = px_chan_endpoint(p->srv);
    copts.server_key = k->server.public_z85;
    copts.on_recv = sink_recv;
    copts.on_event = sink_event;
    copts.on_writable = sink_writable;
    copts.ud = &p->sc;
    p->cli = client_chan_opts(p->tc, copts);
}

static void pair_close(pair *p)
{
    close_chan(&p->loop, p->cli, &p->sc);
    close_chan(&p->loop, p->srv, &p->ss);
    free_transport(&p->loop, p->tc);
    free_transport(&p->loop, p->ts);
    assert_int_equal(uv_loop_close(&p->loop), 0);
}

static void test_backpressure(void **state)
{
    pair p;
    pair_open(
        &p, *state,
        (px_chan_opts){.policy = PX_QUEUE_BACKPRESSURE, .queue_bytes = 16384, .batch_bytes = 2048});
    uint8_t buf[128];
    uint64_t seq = 0;
    px_err e;
    while ((e = px_chan_send(p.cli, NULL, buf, rec_make(buf, seq, 100))) == PX_OK)
        seq++;
    assert_int_equal(e, PX_E_AGAIN);
    assert_true(seq >= 16384 / 100 - 20 && seq <= 16384 / 100);
    assert_int_equal(p.sc.writable, 0); /* never from inside px_chan_send */
    px_chan_stats st;
    px_chan_stats_get(p.cli, &st);
    assert_int_equal(st.backpressured, 1);
    assert_int_equal(st.queued_bytes, seq * 100);

    /* Connecting drains the queue; room comes back; on_writable says so. */
    assert_true(wait_int(&p.loop, &p.sc.writable, 1, WAIT_MS));
    uint64_t first = seq;
    while (seq < 3 * first && px_chan_send(p.cli, NULL, buf, rec_make(buf, seq, 100)) == PX_OK)
        seq++;
    assert_true(wait_u64(&p.loop, &p.ss.recs, seq, WAIT_MS));
    assert_int_equal(p.ss.recs, seq);
    assert_false(p.ss.corrupt || p.ss.order_broken);
    assert_int_equal(p.sc.writable, 1);
    px_chan_stats_get(p.cli, &st);
    assert_int_equal(st.dropped, 0);
    assert_int_equal(st.records_sent, seq);
    pair_close(&p);
}

static void test_drop_policy(void **state)
{
    pair p;
    pair_open(&p, *state,
              (px_chan_opts){.policy = PX_QUEUE_DROP, .queue_bytes = 16384, .batch_bytes = 2048});
    uint8_t buf[128];
    uint64_t accepted = 0, refused = 0;
    for (uint64_t i = 0; i < 1000; i++) {
        /* Only accepted records are numbered, so order stays checkable. */
        px_err e = px_chan_send(p.cli, NULL, buf, rec_make(buf, accepted, 100));
        if (e == PX_OK)
            accepted++;
        else {
            assert_int_equal(e, PX_E_AGAIN);
            refused++;
        }
    }
    assert_true(refused > 0);
    px_chan_stats st;
    px_chan_stats_get(p.cli, &st);
    assert_int_equal(st.dropped, refused);
    assert_int_equal(st.backpressured, 0);
    assert_true(wait_u64(&p.loop, &p.ss.recs, accepted, WAIT_MS));
    assert_int_equal(p.ss.recs, accepted);
    assert_false(p.ss.corrupt || p.ss.order_broken);
    assert_int_equal(p.sc.writable, 0); /* drop policy owes nobody a callback */
    pair_close(&p);
}

static void test_record_limits(void **state)
{
    pair p;
    pair_open(&p, *state, (px_chan_opts){.batch_bytes = 4096});
    static uint8_t buf[4097];
    assert_int_equal(px_chan_send(p.cli, NULL, buf, 4097), PX_E_TOOBIG);
    assert_int_equal(px_chan_send(p.cli, NULL, buf, 0), PX_E_INVAL);
    /* Exactly batch_bytes fits, CURVE framing included, both ways. */
    rec_make(buf, 0, 4096);
    assert_int_equal(px_chan_send(p.cli, NULL, buf, 4096), PX_OK);
    assert_true(wait_u64(&p.loop, &p.ss.recs, 1, WAIT_MS));
    assert_int_equal(px_chan_send(p.srv, &p.ss.last_from, buf, 4096), PX_OK);
    assert_true(wait_u64(&p.loop, &p.sc.recs, 1, WAIT_MS));
    assert_false(p.ss.corrupt || p.sc.corrupt);
    pair_close(&p);
}

static void test_batching_coalesces(void **state)
{
    pair p;
    pair_open(&p, *state, (px_chan_opts){0});
    /* Connected first, so this measures coalescing, not queueing. */
    assert_true(wait_int(&p.loop, &p.sc.connected, 1, WAIT_MS));
    send_seq(p.cli, NULL, 0, 1000); /* one burst, as from one callback */
    assert_true(wait_u64(&p.loop, &p.ss.recs, 1000, WAIT_MS));
    px_chan_stats cs, ss;
    px_chan_stats_get(p.cli, &cs);
    px_chan_stats_get(p.srv, &ss);
    assert_int_equal(cs.records_sent, 1000);
    assert_true(cs.batches_sent < cs.records_sent);
    assert_true(cs.batches_sent <= 2); /* ~56 KB in 64 KiB batches */
    assert_int_equal(ss.batches_recv, cs.batches_sent);
    assert_int_equal(ss.bytes_recv, cs.bytes_sent);
    assert_int_equal(p.ss.msgs, cs.batches_sent);
    assert_false(p.ss.corrupt || p.ss.order_broken);

    /* A record sent on an idle queue is not held back for company. */
    send_seq(p.cli, NULL, 1000, 1);
    assert_true(wait_u64(&p.loop, &p.ss.recs, 1001, WAIT_MS));
    pair_close(&p);
}

static void count_check(uv_check_t *h)
{
    sink *s = h->data;
    s->burst = 0;
}

/* Thousands of one-record messages arrive at once: the receiver handles
 * them a budget at a time, lets the rest of the loop run in between, and
 * loses no edge doing so (nothing else will wake it). */
static void test_receive_budget(void **state)
{
    pair p;
    pair_open(&p, *state, (px_chan_opts){.batch_bytes = 128, .hwm = 10000});
    assert_true(wait_int(&p.loop, &p.sc.connected, 1, WAIT_MS));
    uint8_t buf[128];
    const uint64_t n = 5000;
    for (uint64_t i = 0; i < n; i++)
        assert_int_equal(px_chan_send(p.cli, NULL, buf, rec_make(buf, i, 100)), PX_OK);
    uv_check_t check;
    uv_check_init(&p.loop, &check);
    check.data = &p.ss;
    uv_check_start(&check, count_check);
    assert_true(wait_u64(&p.loop, &p.ss.recs, n, WAIT_MS));
    assert_int_equal(p.ss.msgs, n);
    assert_false(p.ss.corrupt || p.ss.order_broken);
    /* The pump may run from the poll, idle and prepare phases of one
     * iteration, each with its budget of 256. */
    print_message("# largest burst between loop checks: %llu messages\n",
                  (unsigned long long)p.ss.max_burst);
    assert_true(p.ss.max_burst <= 3 * 256);
    uv_close((uv_handle_t *)&check, NULL);
    pair_close(&p);
}

static void test_malformed_messages_counted(void **state)
{
    keys *k = *state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    const char *allow[] = {k->a.public_z85};
    px_transport *ts = transport(&loop, &k->server, allow, 1);
    sink ss = {0};
    px_chan *srv = server_chan(ts, &ss);

    /* An admitted peer that does not speak our framing. */
    void *ctx = zmq_ctx_new();
    void *d = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(d, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(d, ZMQ_CURVE_SERVERKEY, k->server.public_z85, 40);
    zmq_setsockopt(d, ZMQ_CURVE_PUBLICKEY, k->a.public_z85, 40);
    zmq_setsockopt(d, ZMQ_CURVE_SECRETKEY, k->a.secret_z85, 40);
    zmq_setsockopt(d, ZMQ_ROUTING_ID, "raw", 3);
    assert_int_equal(zmq_connect(d, px_chan_endpoint(srv)), 0);
    uint8_t rec[32];
    size_t len = rec_make(rec, 0, sizeof(rec));
    zmq_send(d, "x", 1, ZMQ_SNDMORE);
    zmq_send(d, rec, len, 0); /* two frames */
    zmq_send(d, "", 0, 0);    /* empty */
    zmq_send(d, rec, len, 0); /* fine */
    assert_true(wait_u64(&loop, &ss.recs, 1, WAIT_MS));
    px_chan_stats st;
    px_chan_stats_get(srv, &st);
    assert_int_equal(st.bad_recv, 2);
    assert_int_equal(ss.msgs, 1);
    assert_string_equal(ss.last_from.key_z85, k->a.public_z85);

    zmq_close(d);
    zmq_ctx_term(ctx);
    close_chan(&loop, srv, &ss);
    free_transport(&loop, ts);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* Closing from inside the channel's own callback: no more callbacks, then
 * the close callback, then the transport can go. */
typedef struct {
    px_chan *ch;
    sink *s;
    int recv_after_close;
    bool closed_in_cb;
} closer;

static void closer_recv(px_chan *ch, const px_peer *from, const uint8_t *data, size_t len, void *ud)
{
    (void)from;
    (void)data;
    (void)len;
    closer *c = ud;
    if (c->closed_in_cb) {
        c->recv_after_close++;
        return;
    }
    c->closed_in_cb = true;
    px_chan_close(ch, sink_closed, c->s);
    assert_int_equal(c->s->closed, 0);
}

static void test_close_inside_callback(void **state)
{
    keys *k = *state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    const char *allow[] = {k->a.public_z85};
    px_transport *ts = transport(&loop, &k->server, allow, 1);
    px_transport *tc = transport(&loop, &k->a, NULL, 0);
    sink ss = {0}, sc = {0};
    closer cl = {.s = &ss};
    px_chan_opts so = {.role = PX_CHAN_SERVER,
                       .endpoint = "tcp://127.0.0.1:*",
                       .batch_bytes = 128,
                       .queue_bytes = 1 << 20,
                       .on_recv = closer_recv,
                       .ud = &cl};
    px_chan *srv = NULL;
    assert_int_equal(px_chan_open(ts, &so, &srv, NULL), PX_OK);
    px_chan_opts co = {.role = PX_CHAN_CLIENT,
                       .endpoint = px_chan_endpoint(srv),
                       .server_key = k->server.public_z85,
                       .batch_bytes = 128,
                       .queue_bytes = 1 << 20,
                       .on_recv = sink_recv,
                       .ud = &sc};
    px_chan *cli = client_chan_opts(tc, co);
    send_seq(cli, NULL, 0, 500); /* many small batches: many messages pending */
    assert_true(wait_int(&loop, &ss.closed, 1, WAIT_MS));
    assert_int_equal(cl.recv_after_close, 0);
    free_transport(&loop, ts);
    close_chan(&loop, cli, &sc);
    free_transport(&loop, tc);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(int argc, char **argv)
{
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
    if (n > 0)
        self_exe[n] = '\0';
    if (argc == 5 && strcmp(argv[1], "--stream-child") == 0)
        return stream_child(argv[2], argv[3], argv[4]);
    px_log_setup(PX_LOG_ERROR, NULL, NULL);
    const char *filter = getenv("PX_TEST_FILTER"); /* e.g. "test_million*" */
    if (filter && *filter)
        cmocka_set_test_filter(filter);

    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_keys_round_trip, setup_tmpdir, teardown_tmpdir),
        cmocka_unit_test_setup_teardown(test_keys_malformed, setup_tmpdir, teardown_tmpdir),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_unlisted_client_refused),
        cmocka_unit_test(test_plain_zmq_client_refused),
        cmocka_unit_test(test_revoke_and_allow),
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test(test_drop_policy),
        cmocka_unit_test(test_record_limits),
        cmocka_unit_test(test_batching_coalesces),
        cmocka_unit_test(test_receive_budget),
        cmocka_unit_test(test_malformed_messages_counted),
        cmocka_unit_test(test_close_inside_callback),
        cmocka_unit_test_setup_teardown(test_peer_killed_mid_stream, setup_tmpdir, teardown_tmpdir),
        cmocka_unit_test(test_million_records_two_loops),
    };
    return cmocka_run_group_tests(tests, setup_keys, teardown_keys);
}
