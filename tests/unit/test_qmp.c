/* Unit tests: node/qmp (QMP client).
 *
 * Framing and classification are tested as pure functions. The client is
 * tested against a fake QMP server served from the same libuv loop on a
 * UNIX socket (greeting, capabilities check, replies out of order, events,
 * garbage, an overlong line, disconnects), and against a real
 * qemu-system-x86_64 when one is installed.
 *
 * Every wait runs the loop until a condition holds or fails at a deadline;
 * nothing sleeps in place of a condition. Callbacks append to an order log
 * so tests assert the order callbacks ran in.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "node/qmp.h"

#define WAIT_MS 10000
#define MAX_LOG 256
#define MAX_EV  32
#define MAX_GOT 256
#define N_RECS  96

#define GREETING                                                                                   \
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 3, \"minor\": 2, \"major\": 7}, "              \
    "\"package\": \"fake\"}, \"capabilities\": [\"oob\"]}}\r\n"

/* ---- framing and classification, no sockets ---- */

typedef struct seen {
    int n;
    px_qmp_msg msgs[16];
    char dumps[16][256];
    px_err classify_err;
    px_errmsg em;   /* from the first failed classification */
    int stop_after; /* callback returns PX_E_INVAL after this many; 0 = never */
} seen;

static px_err collect(json_t *root, void *ud)
{
    seen *s = ud;
    assert_true(s->n < 16);
    s->classify_err = px_qmp_classify(root, &s->msgs[s->n], &s->em);
    char *d = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    snprintf(s->dumps[s->n], sizeof(s->dumps[0]), "%s", d);
    free(d);
    s->msgs[s->n].value = NULL; /* borrowed: gone after return */
    s->msgs[s->n].name = s->msgs[s->n].err_class = s->msgs[s->n].err_desc = NULL;
    s->n++;
    return s->stop_after && s->n >= s->stop_after ? PX_E_INVAL : PX_OK;
}

static const char stream[] =
    GREETING "\r\n"
             "{\"return\": {}, \"id\": 1}\r\n"
             "   \r\n"
             "{\"timestamp\": {\"seconds\": 5, \"microseconds\": 6}, \"event\": \"STOP\"}\n"
             "{\"id\": 2, \"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}}\r\n";

static void check_stream(const seen *s)
{
    assert_int_equal(s->n, 4);
    assert_int_equal(s->classify_err, PX_OK);
    assert_int_equal(s->msgs[0].kind, PX_QMP_GREETING);
    assert_int_equal(s->msgs[1].kind, PX_QMP_RETURN);
    assert_true(s->msgs[1].has_id);
    assert_int_equal(s->msgs[1].id, 1);
    assert_int_equal(s->msgs[2].kind, PX_QMP_EVENT);
    assert_int_equal(s->msgs[2].ts_sec, 5);
    assert_int_equal(s->msgs[2].ts_usec, 6);
    assert_int_equal(s->msgs[3].kind, PX_QMP_ERROR);
    assert_int_equal(s->msgs[3].id, 2);
    /* The event got an empty "data". */
    assert_non_null(strstr(s->dumps[2], "\"data\":{}"));
}

static void test_framer_chunking(void **state)
{
    (void)state;
    size_t len = strlen(stream);
    /* All at once, byte by byte, and in every two-piece split. */
    for (size_t split = 0; split <= len + 1; split++) {
        px_qmp_framer f;
        px_qmp_framer_init(&f, 0);
        seen s = {0};
        px_errmsg em;
        if (split == len + 1) {
            for (size_t i = 0; i < len; i++)
                assert_int_equal(px_qmp_framer_feed(&f, stream + i, 1, collect, &s, &em), PX_OK);
        } else {
            assert_int_equal(px_qmp_framer_feed(&f, stream, split, collect, &s, &em), PX_OK);
            assert_int_equal(px_qmp_framer_feed(&f, stream + split, len - split, collect, &s, &em),
                             PX_OK);
        }
        check_stream(&s);
        assert_int_equal(f.len, 0);
        px_qmp_framer_fini(&f);
    }
}

static void test_framer_limits(void **state)
{
    (void)state;
    px_qmp_framer f;
    px_errmsg em;
    seen s = {0};
    char line[64];
    /* Exactly 32 bytes before CRLF: accepted, even with the CR arriving
     * alone at the limit. */
    snprintf(line, sizeof(line), "{\"return\": 1, \"id\": 7}%10s", "");
    assert_int_equal(strlen(line), 32);
    px_qmp_framer_init(&f, 32);
    assert_int_equal(px_qmp_framer_feed(&f, line, 32, collect, &s, &em), PX_OK);
    assert_int_equal(px_qmp_framer_feed(&f, "\r", 1, collect, &s, &em), PX_OK);
    assert_int_equal(px_qmp_framer_feed(&f, "\n", 1, collect, &s, &em), PX_OK);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.msgs[0].id, 7);
    /* 33 bytes: refused once the 33rd byte is not a CR. */
    assert_int_equal(px_qmp_framer_feed(&f, line, 32, collect, &s, &em), PX_OK);
    assert_int_equal(px_qmp_framer_feed(&f, " ", 1, collect, &s, &em), PX_E_TOOBIG);
    assert_non_null(strstr(em.text, "32 bytes"));
    px_qmp_framer_fini(&f);
    /* 33 bytes plus CRLF in one piece. */
    char line33[64];
    snprintf(line33, sizeof(line33), " %s\r\n", line);
    px_qmp_framer_init(&f, 32);
    assert_int_equal(px_qmp_framer_feed(&f, line33, strlen(line33), collect, &s, &em), PX_E_TOOBIG);
    px_qmp_framer_fini(&f);
    /* 10 MB without a line end: refused, and the buffer never grew past
     * the limit. */
    px_qmp_framer_init(&f, 0);
    char *big = malloc(1 << 16);
    assert_non_null(big);
    memset(big, 'a', 1 << 16);
    px_err err = PX_OK;
    for (int i = 0; i < 160 && !err; i++)
        err = px_qmp_framer_feed(&f, big, 1 << 16, collect, &s, &em);
    assert_int_equal(err, PX_E_TOOBIG);
    assert_true(f.cap <= PX_QMP_LINE_MAX + 1);
    px_qmp_framer_fini(&f);
    free(big);
    assert_int_equal(s.n, 1);
}

static void expect_bad(const char *text, px_err want)
{
    px_qmp_framer f;
    px_errmsg em = {{0}};
    seen s = {0};
    px_qmp_framer_init(&f, 0);
    px_err err = px_qmp_framer_feed(&f, text, strlen(text), collect, &s, &em);
    if (err == PX_OK && s.n == 1) {
        err = s.classify_err;
        em = s.em;
    }
    if (err != want)
        fail_msg("%s: got %s, want %s", text, px_errname(err), px_errname(want));
    assert_true(em.text[0] != '\0');
    for (const char *p = em.text; *p; p++)
        assert_true(*p >= 0x20 && *p < 0x7f);
    px_qmp_framer_fini(&f);
}

static void test_framer_and_classify_reject(void **state)
{
    (void)state;
    expect_bad("this is not json\r\n", PX_E_PROTO);
    expect_bad("\x01\x02\xff{\r\n", PX_E_PROTO);
    expect_bad("[1, 2]\r\n", PX_E_PROTO);
    expect_bad("\"str\"\r\n", PX_E_PROTO);
    expect_bad("{\"return\": 1}{\"return\": 2}\r\n", PX_E_PROTO);
    expect_bad("{\"return\": 1, \"return\": 2}\r\n", PX_E_PROTO);
    expect_bad("{\"id\": 1}\r\n", PX_E_PROTO);
    expect_bad("{\"return\": 1, \"event\": \"X\"}\r\n", PX_E_PROTO);
    expect_bad("{\"QMP\": 1}\r\n", PX_E_PROTO);
    expect_bad("{\"error\": {\"class\": \"X\"}, \"id\": 1}\r\n", PX_E_PROTO);
    expect_bad("{\"error\": \"X\", \"id\": 1}\r\n", PX_E_PROTO);
    expect_bad("{\"event\": 5}\r\n", PX_E_PROTO);
    expect_bad("{\"event\": \"\"}\r\n", PX_E_PROTO);
    expect_bad(
        "{\"event\": \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}\r\n",
        PX_E_PROTO);
    expect_bad("{\"event\": \"X\", \"data\": []}\r\n", PX_E_PROTO);
    expect_bad("{\"event\": \"A\\u0000B\"}\r\n", PX_E_PROTO);
}

static void test_classify_ids_and_stop(void **state)
{
    (void)state;
    static const char *const in[] = {
        "{\"return\": 1, \"id\": \"x\"}\n",
        "{\"return\": 1, \"id\": -4}\n",
        "{\"return\": 1, \"id\": 1.5}\n",
        "{\"return\": 1}\n",
        "{\"return\": 1, \"id\": 9007199254740993}\n",
        /* An integer beyond int64 elsewhere: reparsed with reals, the id
         * still matches. */
        "{\"return\": {\"max\": 18446744073709551615}, \"id\": 3}\n",
        "{\"return\": 1, \"id\": 1e300}\n",
        "{\"return\": 18446744073709551615, \"id\": 1e300}\n",
    };
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        px_qmp_framer f;
        seen s = {0};
        px_qmp_framer_init(&f, 0);
        assert_int_equal(px_qmp_framer_feed(&f, in[i], strlen(in[i]), collect, &s, NULL), PX_OK);
        assert_int_equal(s.n, 1);
        assert_int_equal(s.classify_err, PX_OK);
        assert_int_equal(s.msgs[0].has_id, i == 4 || i == 5);
        if (i == 5)
            assert_int_equal(s.msgs[0].id, 3);
        px_qmp_framer_fini(&f);
    }
    /* A callback's error stops the feed: the second message is not seen. */
    px_qmp_framer f;
    seen s = {.stop_after = 1};
    px_qmp_framer_init(&f, 0);
    assert_int_equal(px_qmp_framer_feed(&f, stream, strlen(stream), collect, &s, NULL), PX_E_INVAL);
    assert_int_equal(s.n, 1);
    px_qmp_framer_fini(&f);
}

/* ---- a fake QMP server on the test's loop ---- */

typedef struct ctx ctx;
typedef void (*cmd_hook)(ctx *c, const char *name, json_int_t id, json_t *args);

typedef struct reply_rec {
    const char *tag;
    ctx *c;
    int calls;
    px_err err;
    char result[256];
    char em[512];
} reply_rec;

typedef struct ev_rec {
    px_qmp_event_kind kind;
    char name[64], reason[32], netdev[32], data[128];
    bool guest;
} ev_rec;

struct ctx {
    uv_loop_t loop;
    uv_timer_t guard;
    char dir[64], path[128];
    px_qmp *q;
    bool q_closed;
    /* what the client reported */
    int ready, lost, closed;
    px_err lost_why;
    char lost_em[512];
    ev_rec ev[MAX_EV];
    int n_ev;
    char log[MAX_LOG][48];
    int n_log;
    /* Reply records live here, not on a test's stack: a failing test
     * unwinds by longjmp and teardown then completes its commands. */
    reply_rec recs[N_RECS];
    char tags[N_RECS][8];
    int n_recs;
    /* the fake server */
    uv_pipe_t srv, conn;
    bool srv_up, conn_up;
    bool no_greeting;
    bool refuse_caps;
    px_qmp_framer sfr;
    cmd_hook hook;
    struct {
        char name[64];
        json_int_t id;
        bool has_args;
        char args[128];
    } got[MAX_GOT];
    int n_got;
    json_int_t held[8];
    int n_held;
    bool caps_first_ok;
    /* graceful stop */
    int stops;
    px_err stop_err;
    bool graceful;
    /* real QEMU */
    uv_process_t proc;
    bool proc_up, proc_exited;
    int64_t exit_status;
    int term_signal;
};

static void note(ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(ctx *c, const char *fmt, ...)
{
    if (c->n_log == MAX_LOG)
        return; /* order checks then fail to find their entries */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->log[c->n_log++], sizeof(c->log[0]), fmt, ap);
    va_end(ap);
}

static int log_index(const ctx *c, const char *entry)
{
    for (int i = 0; i < c->n_log; i++)
        if (strcmp(c->log[i], entry) == 0)
            return i;
    return -1;
}

static void guard_cb(uv_timer_t *t)
{
    (void)t; /* only wakes the loop so the deadline is checked */
}

#define WAIT_UNTIL(c, cond)                                                                        \
    do {                                                                                           \
        uint64_t dl_ = uv_hrtime() + (uint64_t)WAIT_MS * 1000000u;                                 \
        uv_timer_start(&(c)->guard, guard_cb, WAIT_MS, 0);                                         \
        while (!(cond)) {                                                                          \
            if (uv_hrtime() > dl_)                                                                 \
                fail_msg("timed out after %d ms waiting for %s", WAIT_MS, #cond);                  \
            uv_run(&(c)->loop, UV_RUN_ONCE);                                                       \
        }                                                                                          \
        uv_timer_stop(&(c)->guard);                                                                \
    } while (0)

static void srv_write_cb(uv_write_t *req, int status)
{
    (void)status; /* EPIPE after the client hung up is expected in some tests */
    free(req);
}

static void srv_send(ctx *c, const char *text)
{
    if (!c->conn_up)
        return;
    size_t len = strlen(text);
    uv_write_t *req = malloc(sizeof(*req) + len);
    assert_non_null(req);
    memcpy(req + 1, text, len);
    uv_buf_t b = uv_buf_init((char *)(req + 1), (unsigned)len);
    assert_int_equal(uv_write(req, (uv_stream_t *)&c->conn, &b, 1, srv_write_cb), 0);
}

static void srv_sendf(ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void srv_sendf(ctx *c, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    srv_send(c, buf);
}

static void srv_hangup(ctx *c)
{
    if (c->conn_up) {
        c->conn_up = false;
        uv_close((uv_handle_t *)&c->conn, NULL);
    }
}

static px_err srv_on_msg(json_t *root, void *ud)
{
    ctx *c = ud;
    json_t *ex = json_object_get(root, "execute");
    json_t *idv = json_object_get(root, "id");
    json_t *args = json_object_get(root, "arguments");
    assert_true(json_is_string(ex));
    assert_true(json_is_integer(idv)); /* the client always sends an id */
    assert_true(c->n_got < MAX_GOT);
    const char *name = json_string_value(ex);
    json_int_t id = json_integer_value(idv);
    snprintf(c->got[c->n_got].name, sizeof(c->got[0].name), "%s", name);
    c->got[c->n_got].id = id;
    c->got[c->n_got].has_args = args != NULL;
    if (args) {
        char *d = json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS);
        snprintf(c->got[c->n_got].args, sizeof(c->got[0].args), "%s", d);
        free(d);
    }
    c->n_got++;
    if (strcmp(name, "qmp_capabilities") == 0) {
        c->caps_first_ok = c->n_got == 1 && !args;
        if (c->refuse_caps)
            srv_sendf(c,
                      "{\"id\": %lld, \"error\": {\"class\": \"GenericError\", "
                      "\"desc\": \"nope\"}}\r\n",
                      (long long)id);
        else
            srv_sendf(c, "{\"return\": {}, \"id\": %lld}\r\n", (long long)id);
    } else if (c->hook) {
        c->hook(c, name, id, args);
    } else {
        srv_sendf(c, "{\"return\": {}, \"id\": %lld}\r\n", (long long)id);
    }
    return PX_OK;
}

static void srv_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    static char rb[65536];
    *buf = uv_buf_init(rb, sizeof(rb));
}

static void srv_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    ctx *c = s->data;
    if (nread < 0) {
        srv_hangup(c);
        return;
    }
    if (nread > 0)
        assert_int_equal(px_qmp_framer_feed(&c->sfr, buf->base, (size_t)nread, srv_on_msg, c, NULL),
                         PX_OK);
}

static void srv_on_conn(uv_stream_t *s, int status)
{
    ctx *c = s->data;
    assert_int_equal(status, 0);
    assert_false(c->conn_up); /* one client per test */
    uv_pipe_init(&c->loop, &c->conn, 0);
    c->conn.data = c;
    assert_int_equal(uv_accept(s, (uv_stream_t *)&c->conn), 0);
    c->conn_up = true;
    assert_int_equal(uv_read_start((uv_stream_t *)&c->conn, srv_alloc, srv_read), 0);
    if (!c->no_greeting)
        srv_send(c, GREETING);
}

static void srv_start(ctx *c)
{
    assert_int_equal(uv_pipe_init(&c->loop, &c->srv, 0), 0);
    c->srv.data = c;
    assert_int_equal(uv_pipe_bind(&c->srv, c->path), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&c->srv, 4, srv_on_conn), 0);
    c->srv_up = true;
}

/* ---- client callbacks ---- */

static void cl_ready(px_qmp *q, void *ud)
{
    ctx *c = ud;
    c->ready++;
    note(c, "ready");
}

static void cl_event(px_qmp *q, const px_qmp_event *ev, void *ud)
{
    ctx *c = ud;
    assert_true(c->n_ev < MAX_EV);
    ev_rec *r = &c->ev[c->n_ev++];
    r->kind = ev->kind;
    snprintf(r->name, sizeof(r->name), "%s", ev->name);
    snprintf(r->reason, sizeof(r->reason), "%s", ev->reason);
    snprintf(r->netdev, sizeof(r->netdev), "%s", ev->netdev_id);
    assert_non_null(ev->data);
    char *d = json_dumps(ev->data, JSON_COMPACT | JSON_SORT_KEYS);
    snprintf(r->data, sizeof(r->data), "%s", d);
    free(d);
    r->guest = ev->guest;
    note(c, "event:%s", ev->name);
}

static void cl_lost(px_qmp *q, px_err why, const px_errmsg *em, void *ud)
{
    ctx *c = ud;
    c->lost++;
    c->lost_why = why;
    snprintf(c->lost_em, sizeof(c->lost_em), "%s", em->text);
    note(c, "lost");
}

static void cl_closed(px_qmp *q, void *ud)
{
    ctx *c = ud;
    c->closed++;
    c->q_closed = true;
    note(c, "close");
}

static void cl_reply(px_qmp *q, px_err err, json_t *result, const px_errmsg *em, void *ud)
{
    reply_rec *r = ud;
    r->calls++;
    r->err = err;
    r->result[0] = '\0';
    if (result) {
        char *d = json_dumps(result, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        snprintf(r->result, sizeof(r->result), "%s", d);
        free(d);
    } else {
        assert_int_not_equal(err, PX_OK);
    }
    assert_non_null(em);
    snprintf(r->em, sizeof(r->em), "%s", em->text);
    note(r->c, "reply:%s:%s", r->tag, px_errname(err));
}

static void cl_stop(px_qmp *q, px_err err, bool graceful, const px_errmsg *em, void *ud)
{
    ctx *c = ud;
    c->stops++;
    c->stop_err = err;
    c->graceful = graceful;
    note(c, "stop:%s:%d", px_errname(err), graceful);
}

/* ---- set-up and tear-down ---- */

static int setup(void **state)
{
    ctx *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    assert_int_equal(uv_loop_init(&c->loop), 0);
    uv_timer_init(&c->loop, &c->guard);
    snprintf(c->dir, sizeof(c->dir), "/tmp/px-qmp-XXXXXX");
    assert_non_null(mkdtemp(c->dir));
    snprintf(c->path, sizeof(c->path), "%s/qmp.sock", c->dir);
    px_qmp_framer_init(&c->sfr, 0);
    px_qmp_opts o = {.on_ready = cl_ready, .on_event = cl_event, .on_lost = cl_lost, .ud = c};
    assert_int_equal(px_qmp_new(&c->loop, &o, &c->q, NULL), PX_OK);
    *state = c;
    return 0;
}

static void walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static int teardown(void **state)
{
    ctx *c = *state;
    if (!c->q_closed && c->closed == 0) {
        px_qmp_close(c->q, cl_closed, c);
        WAIT_UNTIL(c, c->q_closed);
    }
    if (c->proc_up && !c->proc_exited) {
        uv_process_kill(&c->proc, SIGKILL);
        WAIT_UNTIL(c, c->proc_exited);
    }
    srv_hangup(c);
    uv_walk(&c->loop, walk_close, NULL);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&c->loop), 0);
    px_qmp_framer_fini(&c->sfr);
    unlink(c->path);
    rmdir(c->dir);
    free(c);
    return 0;
}

static void connect_ready(ctx *c)
{
    srv_start(c);
    assert_int_equal(px_qmp_connect(c->q, c->path, WAIT_MS, NULL), PX_OK);
    WAIT_UNTIL(c, c->ready == 1);
    assert_true(c->caps_first_ok);
}

static reply_rec *rec(ctx *c, const char *tag)
{
    assert_true(c->n_recs < N_RECS);
    reply_rec *r = &c->recs[c->n_recs++];
    *r = (reply_rec){.tag = tag, .c = c};
    return r;
}

/* ---- client tests ---- */

static void test_connect_retries_until_socket_appears(void **state)
{
    ctx *c = *state;
    assert_int_equal(px_qmp_connect(c->q, c->path, WAIT_MS, NULL), PX_OK);
    px_qmp_stats st;
    /* Nothing listens yet: the client keeps trying. */
    WAIT_UNTIL(c, (px_qmp_stats_get(c->q, &st), st.connect_attempts >= 3));
    assert_int_equal(c->ready, 0);
    assert_int_equal(c->lost, 0);
    assert_false(px_qmp_ready(c->q));
    srv_start(c);
    WAIT_UNTIL(c, c->ready == 1);
    assert_true(px_qmp_ready(c->q));
    assert_true(c->caps_first_ok);
    assert_string_equal(c->got[0].name, "qmp_capabilities");
    px_qmp_info info;
    px_qmp_info_get(c->q, &info);
    assert_int_equal(info.major, 7);
    assert_int_equal(info.minor, 2);
    assert_int_equal(info.micro, 3);
    assert_string_equal(info.package, "fake");
}

static void test_connect_deadline(void **state)
{
    ctx *c = *state;
    uint64_t t0 = uv_hrtime();
    assert_int_equal(px_qmp_connect(c->q, c->path, 150, NULL), PX_OK);
    WAIT_UNTIL(c, c->lost == 1);
    assert_true(uv_hrtime() - t0 >= 150u * 1000000u);
    assert_int_equal(c->lost_why, PX_E_TIMEOUT);
    assert_non_null(strstr(c->lost_em, c->path));
    assert_int_equal(c->ready, 0);
    /* The session is over: commands are refused, no callback. */
    reply_rec *r = rec(c, "late");
    assert_int_equal(px_qmp_command(c->q, "cont", NULL, cl_reply, r), PX_E_CLOSED);
    assert_int_equal(r->calls, 0);
}

static void test_greeting_deadline(void **state)
{
    ctx *c = *state;
    c->no_greeting = true;
    srv_start(c);
    assert_int_equal(px_qmp_connect(c->q, c->path, 200, NULL), PX_OK);
    WAIT_UNTIL(c, c->lost == 1);
    assert_int_equal(c->lost_why, PX_E_TIMEOUT);
    assert_non_null(strstr(c->lost_em, "greeting"));
    assert_int_equal(c->n_got, 0);
}

static void test_not_a_greeting(void **state)
{
    ctx *c = *state;
    c->no_greeting = true;
    srv_start(c);
    assert_int_equal(px_qmp_connect(c->q, c->path, WAIT_MS, NULL), PX_OK);
    WAIT_UNTIL(c, c->conn_up);
    srv_send(c, "{\"return\": {}}\r\n");
    WAIT_UNTIL(c, c->lost == 1);
    assert_int_equal(c->lost_why, PX_E_PROTO);
    assert_non_null(strstr(c->lost_em, "greeting"));
}

static void hook_refuse_all(ctx *c, const char *name, json_int_t id, json_t *args)
{
    srv_sendf(c,
              "{\"id\": %lld, \"error\": {\"class\": \"CommandNotFound\", "
              "\"desc\": \"The command %s has not been found\"}}\r\n",
              (long long)id, name);
}

static void test_capabilities_refused(void **state)
{
    ctx *c = *state;
    c->refuse_caps = true;
    srv_start(c);
    assert_int_equal(px_qmp_connect(c->q, c->path, WAIT_MS, NULL), PX_OK);
    WAIT_UNTIL(c, c->lost == 1);
    assert_int_equal(c->lost_why, PX_E_PROTO);
    assert_non_null(strstr(c->lost_em, "nope"));
    assert_non_null(strstr(c->lost_em, "qmp_capabilities"));
    assert_int_equal(c->ready, 0);
    assert_true(c->caps_first_ok);
}

/* Hold "held" commands; once three are held, answer them out of order with
 * noise in between, all in one write. */
static void hook_out_of_order(ctx *c, const char *name, json_int_t id, json_t *args)
{
    if (strcmp(name, "held") != 0) {
        srv_sendf(c, "{\"return\": {}, \"id\": %lld}\r\n", (long long)id);
        return;
    }
    c->held[c->n_held++] = id;
    if (c->n_held < 3)
        return;
    char buf[2048];
    snprintf(buf, sizeof(buf),
             "{\"return\": {\"tag\": \"C\"}, \"id\": %lld}\r\n"
             "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"STOP\"}\r\n"
             "{\"return\": {\"tag\": \"stray\"}, \"id\": 999}\r\n"
             "{\"return\": {\"tag\": \"no id\"}}\r\n"
             "{\"return\": {\"tag\": \"not ours\"}, \"id\": \"abc\"}\r\n"
             "{\"return\": {\"tag\": \"A\"}, \"id\": %lld}\r\n"
             "{\"id\": %lld, \"error\": {\"class\": \"DeviceNotFound\", "
             "\"desc\": \"Device 'nic9' not found\"}}\r\n",
             (long long)c->held[2], (long long)c->held[0], (long long)c->held[1]);
    srv_send(c, buf);
}

static void test_replies_matched_by_id(void **state)
{
    ctx *c = *state;
    c->hook = hook_out_of_order;
    connect_ready(c);
    reply_rec *a = rec(c, "A"), *b = rec(c, "B"), *cc = rec(c, "C");
    json_t *args = json_pack("{s:s, s:i}", "tag", "A", "n", 1);
    assert_int_equal(px_qmp_command(c->q, "held", args, cl_reply, a), PX_OK);
    json_decref(args);
    assert_int_equal(px_qmp_command(c->q, "held", NULL, cl_reply, b), PX_OK);
    assert_int_equal(px_qmp_command(c->q, "held", NULL, cl_reply, cc), PX_OK);
    WAIT_UNTIL(c, a->calls && b->calls && cc->calls);
    /* The request carried its arguments; ids are distinct and increasing. */
    assert_string_equal(c->got[1].args, "{\"n\":1,\"tag\":\"A\"}");
    assert_false(c->got[2].has_args);
    assert_true(c->got[1].id < c->got[2].id && c->got[2].id < c->got[3].id);
    /* Each callback got its own reply, in the order the replies came. */
    assert_string_equal(a->result, "{\"tag\":\"A\"}");
    assert_string_equal(cc->result, "{\"tag\":\"C\"}");
    assert_int_equal(a->err, PX_OK);
    assert_int_equal(b->err, PX_E_NOTFOUND);
    assert_non_null(strstr(b->em, "DeviceNotFound"));
    assert_non_null(strstr(b->em, "held"));
    assert_non_null(strstr(b->em, "nic9"));
    assert_non_null(strstr(b->result, "\"class\":\"DeviceNotFound\""));
    int ic = log_index(c, "reply:C:OK"), ie = log_index(c, "event:STOP"),
        ia = log_index(c, "reply:A:OK"), ib = log_index(c, "reply:B:E_NOTFOUND");
    assert_true(ic >= 0 && ic < ie && ie < ia && ia < ib);
    assert_int_equal(a->calls + b->calls + cc->calls, 3);
    px_qmp_stats st;
    px_qmp_stats_get(c->q, &st);
    assert_int_equal(st.replies_dropped, 3);
    assert_int_equal(st.commands, 4);
    assert_int_equal(c->lost, 0);
    assert_true(px_qmp_ready(c->q));
}

static void hook_events(ctx *c, const char *name, json_int_t id, json_t *args)
{
    srv_send(c, "{\"timestamp\": {\"seconds\": 10, \"microseconds\": 1}, \"event\": \"SHUTDOWN\", "
                "\"data\": {\"guest\": true, \"reason\": \"guest-shutdown\"}}\r\n"
                "{\"event\": \"STOP\"}\r\n"
                "{\"event\": \"RESUME\"}\r\n"
                "{\"event\": \"RESET\", \"data\": {\"guest\": false, \"reason\": "
                "\"host-qmp-system-reset\"}}\r\n"
                "{\"event\": \"POWERDOWN\"}\r\n"
                "{\"event\": \"NETDEV_STREAM_CONNECTED\", \"data\": {\"netdev-id\": \"n0\", "
                "\"addr\": {\"type\": \"unix\", \"path\": \"/x\"}}}\r\n"
                "{\"event\": \"NETDEV_STREAM_DISCONNECTED\", \"data\": {\"netdev-id\": \"n0\"}}\r\n"
                "{\"event\": \"BLOCK_JOB_READY\", \"data\": {\"device\": \"d\"}}\r\n");
    srv_sendf(c, "{\"return\": {}, \"id\": %lld}\r\n", (long long)id);
}

static void test_events(void **state)
{
    ctx *c = *state;
    c->hook = hook_events;
    connect_ready(c);
    reply_rec *r = rec(c, "emit");
    assert_int_equal(px_qmp_command(c->q, "emit", NULL, cl_reply, r), PX_OK);
    WAIT_UNTIL(c, r->calls == 1);
    assert_int_equal(c->n_ev, 8);
    static const px_qmp_event_kind want[] = {
        PX_QMP_EV_SHUTDOWN,
        PX_QMP_EV_STOP,
        PX_QMP_EV_RESUME,
        PX_QMP_EV_RESET,
        PX_QMP_EV_POWERDOWN,
        PX_QMP_EV_NETDEV_STREAM_CONNECTED,
        PX_QMP_EV_NETDEV_STREAM_DISCONNECTED,
        PX_QMP_EV_OTHER,
    };
    for (int i = 0; i < 8; i++)
        assert_int_equal(c->ev[i].kind, want[i]);
    assert_string_equal(c->ev[0].reason, "guest-shutdown");
    assert_true(c->ev[0].guest);
    assert_string_equal(c->ev[1].data, "{}");
    assert_string_equal(c->ev[3].reason, ""); /* reason is a SHUTDOWN field only */
    assert_string_equal(c->ev[5].netdev, "n0");
    assert_non_null(strstr(c->ev[5].data, "\"path\":\"/x\""));
    assert_string_equal(c->ev[6].netdev, "n0");
    assert_string_equal(c->ev[7].name, "BLOCK_JOB_READY");
    assert_string_equal(c->ev[7].data, "{\"device\":\"d\"}");
    assert_true(log_index(c, "event:BLOCK_JOB_READY") < log_index(c, "reply:emit:OK"));
}

static void cl_status_unused(px_qmp *q, px_err err, const px_qmp_status *st, const px_errmsg *em,
                             void *ud)
{
    fail_msg("status callback after an error return");
}

static void hook_silent(ctx *c, const char *name, json_int_t id, json_t *args)
{
    (void)c; /* never answers */
}

static void test_garbage_ends_session(void **state)
{
    ctx *c = *state;
    c->hook = hook_silent;
    connect_ready(c);
    reply_rec *r = rec(c, "pending");
    assert_int_equal(px_qmp_command(c->q, "cont", NULL, cl_reply, r), PX_OK);
    WAIT_UNTIL(c, c->n_got == 2);
    srv_send(c, "{\"event\": \"STOP\"}\r\nthis is \x01 not json\r\n{\"event\": \"RESUME\"}\r\n");
    WAIT_UNTIL(c, c->lost == 1);
    assert_int_equal(c->lost_why, PX_E_PROTO);
    assert_non_null(strstr(c->lost_em, c->path));
    assert_non_null(strstr(c->lost_em, "not JSON"));
    assert_int_equal(r->calls, 1);
    assert_int_equal(r->err, PX_E_CLOSED);
    /* Nothing after the bad line was delivered; the pending command
     * completed before on_lost. */
    assert_int_equal(c->n_ev, 1);
    assert_true(log_index(c, "reply:pending:E_CLOSED") < log_index(c, "lost"));
    assert_false(px_qmp_ready(c->q));
    assert_int_equal(px_qmp_command(c->q, "cont", NULL, cl_reply, r), PX_E_CLOSED);
    /* The client hung up. */
    WAIT_UNTIL(c, !c->conn_up);
}

static void test_overlong_line(void **state)
{
    ctx *c = *state;
    c->hook = hook_silent;
    connect_ready(c);
    reply_rec *r = rec(c, "pending");
    assert_int_equal(px_qmp_command(c->q, "query-status", NULL, cl_reply, r), PX_OK);
    WAIT_UNTIL(c, c->n_got == 2);
    /* A valid JSON reply, 1 MiB + 64 KiB long: refused before its end. */
    size_t n = PX_QMP_LINE_MAX + 65536;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'a', n);
    memcpy(big, "{\"return\": \"", 12);
    snprintf(big + n - 15, 16, "\", \"id\": 2}  \r\n");
    srv_send(c, big);
    free(big);
    WAIT_UNTIL(c, c->lost == 1);
    assert_int_equal(c->lost_why, PX_E_TOOBIG);
    assert_int_equal(r->calls, 1);
    assert_int_equal(r->err, PX_E_CLOSED);
    WAIT_UNTIL(c, !c->conn_up);
}

/* "slow": hang up; "wait": never answer; anything else: answer. */
static void hook_hangup_on_slow(ctx *c, const char *name, json_int_t id, json_t *args)
{
    if (strcmp(name, "slow") == 0)
        srv_hangup(c);
    else if (strcmp(name, "wait") != 0)
        srv_sendf(c, "{\"return\": {}, \"id\": %lld}\r\n", (long long)id);
}

static void test_disconnect_mid_command(void **state)
{
    ctx *c = *state;
    c->hook = hook_hangup_on_slow;
    connect_ready(c);
    reply_rec *r1 = rec(c, "first"), *r2 = rec(c, "slow"), *r3 = rec(c, "a"), *r4 = rec(c, "b");
    assert_int_equal(px_qmp_command(c->q, "first", NULL, cl_reply, r1), PX_OK);
    WAIT_UNTIL(c, r1->calls == 1);
    assert_int_equal(px_qmp_command(c->q, "wait", NULL, cl_reply, r3), PX_OK);
    assert_int_equal(px_qmp_command(c->q, "wait", NULL, cl_reply, r4), PX_OK);
    assert_int_equal(px_qmp_command(c->q, "slow", NULL, cl_reply, r2), PX_OK);
    WAIT_UNTIL(c, c->lost == 1);
    assert_int_equal(c->lost_why, PX_E_CLOSED);
    assert_non_null(strstr(c->lost_em, c->path));
    assert_int_equal(r1->err, PX_OK);
    assert_int_equal(r2->err, PX_E_CLOSED);
    assert_int_equal(r3->err, PX_E_CLOSED);
    assert_int_equal(r4->err, PX_E_CLOSED);
    /* In the order they were sent, and all before on_lost. */
    int ia = log_index(c, "reply:a:E_CLOSED"), ib = log_index(c, "reply:b:E_CLOSED"),
        is = log_index(c, "reply:slow:E_CLOSED"), il = log_index(c, "lost");
    assert_true(ia >= 0 && ia < ib && ib < is && is < il);
    assert_int_equal(r1->calls + r2->calls + r3->calls + r4->calls, 4);
    reply_rec *late = rec(c, "late");
    assert_int_equal(px_qmp_command(c->q, "cont", NULL, cl_reply, late), PX_E_CLOSED);
    assert_int_equal(px_qmp_query_status(c->q, cl_status_unused, NULL), PX_E_CLOSED);
    assert_int_equal(px_qmp_powerdown_then_quit(c->q, 1, cl_stop, c), PX_E_CLOSED);
    assert_int_equal(late->calls, 0);
}

static void test_api_errors_and_close_with_pending(void **state)
{
    ctx *c = *state;
    reply_rec *r = rec(c, "x");
    px_errmsg em;
    /* Before ready. */
    assert_int_equal(px_qmp_command(c->q, "cont", NULL, cl_reply, r), PX_E_INVAL);
    char longpath[200];
    memset(longpath, 'p', sizeof(longpath) - 1);
    longpath[sizeof(longpath) - 1] = '\0';
    assert_int_equal(px_qmp_connect(c->q, longpath, 100, &em), PX_E_INVAL);
    assert_non_null(strstr(em.text, "107"));
    assert_int_equal(px_qmp_connect(c->q, "", 100, NULL), PX_E_INVAL);
    c->hook = hook_silent;
    connect_ready(c);
    assert_int_equal(px_qmp_connect(c->q, c->path, 100, NULL), PX_E_INVAL);
    assert_int_equal(px_qmp_command(c->q, "", NULL, cl_reply, r), PX_E_INVAL);
    assert_int_equal(px_qmp_command(c->q, NULL, NULL, cl_reply, r), PX_E_INVAL);
    char longname[80];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(px_qmp_command(c->q, longname, NULL, cl_reply, r), PX_E_INVAL);
    assert_int_equal(px_qmp_command(c->q, "\xff\xfe", NULL, cl_reply, r), PX_E_INVAL);
    json_t *num = json_integer(3);
    assert_int_equal(px_qmp_command(c->q, "cont", num, cl_reply, r), PX_E_INVAL);
    json_decref(num);
    assert_int_equal(px_qmp_command(c->q, "cont", NULL, NULL, r), PX_E_INVAL);
    assert_int_equal(px_qmp_powerdown_then_quit(c->q, 10, NULL, c), PX_E_INVAL);
    assert_int_equal(r->calls, 0);
    /* Fill the pending table, then one more. */
    reply_rec *recs[PX_QMP_MAX_PENDING];
    for (unsigned i = 0; i < PX_QMP_MAX_PENDING; i++) {
        snprintf(c->tags[i], sizeof(c->tags[i]), "%u", i);
        recs[i] = rec(c, c->tags[i]);
        assert_int_equal(px_qmp_command(c->q, "wait", NULL, cl_reply, recs[i]), PX_OK);
    }
    assert_int_equal(px_qmp_command(c->q, "wait", NULL, cl_reply, r), PX_E_AGAIN);
    assert_int_equal(px_qmp_query_status(c->q, NULL, NULL), PX_E_AGAIN);
    /* A graceful stop still has its slots. */
    assert_int_equal(px_qmp_powerdown_then_quit(c->q, WAIT_MS, cl_stop, c), PX_OK);
    assert_int_equal(px_qmp_powerdown_then_quit(c->q, WAIT_MS, cl_stop, c), PX_E_EXISTS);
    WAIT_UNTIL(c, c->n_got == 1 + (int)PX_QMP_MAX_PENDING + 1);
    assert_string_equal(c->got[c->n_got - 1].name, "system_powerdown");
    /* Close: every pending command completes from the loop, in order,
     * then the stop, then close_cb; on_lost never runs. */
    px_qmp_close(c->q, cl_closed, c);
    assert_int_equal(recs[0]->calls, 0);
    assert_int_equal(px_qmp_command(c->q, "cont", NULL, cl_reply, r), PX_E_CLOSED);
    WAIT_UNTIL(c, c->q_closed);
    for (unsigned i = 0; i < PX_QMP_MAX_PENDING; i++) {
        assert_int_equal(recs[i]->calls, 1);
        assert_int_equal(recs[i]->err, PX_E_CLOSED);
        char e[32];
        snprintf(e, sizeof(e), "reply:%u:E_CLOSED", i);
        assert_int_equal(log_index(c, e), c->n_log - 2 - (int)PX_QMP_MAX_PENDING + (int)i);
    }
    assert_int_equal(c->stops, 1);
    assert_int_equal(c->stop_err, PX_E_CLOSED);
    assert_string_equal(c->log[c->n_log - 2], "stop:E_CLOSED:0");
    assert_string_equal(c->log[c->n_log - 1], "close");
    assert_int_equal(c->lost, 0);
    assert_int_equal(r->calls, 0);
}

static void reply_then_close(px_qmp *q, px_err err, json_t *result, const px_errmsg *em, void *ud)
{
    reply_rec *r = ud;
    cl_reply(q, err, result, em, ud);
    px_qmp_close(q, cl_closed, r->c);
}

static void hook_reply_and_event(ctx *c, const char *name, json_int_t id, json_t *args)
{
    if (strcmp(name, "go") == 0)
        srv_sendf(c, "{\"return\": {}, \"id\": %lld}\r\n{\"event\": \"STOP\"}\r\n", (long long)id);
}

static void test_close_inside_reply_callback(void **state)
{
    ctx *c = *state;
    c->hook = hook_reply_and_event;
    connect_ready(c);
    reply_rec *other = rec(c, "other"), *go = rec(c, "go");
    assert_int_equal(px_qmp_command(c->q, "other", NULL, cl_reply, other), PX_OK);
    assert_int_equal(px_qmp_command(c->q, "go", NULL, reply_then_close, go), PX_OK);
    WAIT_UNTIL(c, c->q_closed);
    /* The event in the same read as the reply is not delivered after
     * close; the other command completed with PX_E_CLOSED before close_cb. */
    assert_int_equal(c->n_ev, 0);
    assert_int_equal(go->err, PX_OK);
    assert_int_equal(other->err, PX_E_CLOSED);
    assert_int_equal(c->n_log, 4);
    assert_string_equal(c->log[1], "reply:go:OK");
    assert_string_equal(c->log[2], "reply:other:E_CLOSED");
    assert_string_equal(c->log[3], "close");
    assert_int_equal(c->lost, 0);
}

static int status_calls;
static px_err status_err;
static px_qmp_status status_got;

static void cl_status(px_qmp *q, px_err err, const px_qmp_status *st, const px_errmsg *em, void *ud)
{
    status_calls++;
    status_err = err;
    if (!err)
        status_got = *st;
    else
        assert_null(st);
}

static void hook_status(ctx *c, const char *name, json_int_t id, json_t *args)
{
    static int n;
    if (strcmp(name, "query-status") != 0)
        return;
    if (n++ % 2 == 0)
        srv_sendf(c,
                  "{\"return\": {\"status\": \"paused\", \"singlestep\": false, "
                  "\"running\": false}, \"id\": %lld}\r\n",
                  (long long)id);
    else
        srv_sendf(c, "{\"return\": {\"status\": 3}, \"id\": %lld}\r\n", (long long)id);
}

static void test_query_status(void **state)
{
    ctx *c = *state;
    c->hook = hook_status;
    connect_ready(c);
    status_calls = 0;
    assert_int_equal(px_qmp_query_status(c->q, cl_status, NULL), PX_OK);
    WAIT_UNTIL(c, status_calls == 1);
    assert_int_equal(status_err, PX_OK);
    assert_string_equal(status_got.status, "paused");
    assert_false(status_got.running);
    assert_int_equal(px_qmp_query_status(c->q, cl_status, NULL), PX_OK);
    WAIT_UNTIL(c, status_calls == 2);
    assert_int_equal(status_err, PX_E_PROTO);
    assert_int_equal(c->lost, 0); /* a bad reply fails the command, not the session */
}

/* system_powerdown: accepted, and the guest powers off (SHUTDOWN);
 * quit: answered, then the socket closes. */
static void hook_guest_powers_off(ctx *c, const char *name, json_int_t id, json_t *args)
{
    srv_sendf(c, "{\"return\": {}, \"id\": %lld}\r\n", (long long)id);
    if (strcmp(name, "system_powerdown") == 0)
        srv_send(c, "{\"event\": \"POWERDOWN\"}\r\n{\"event\": \"SHUTDOWN\", \"data\": "
                    "{\"guest\": true, \"reason\": \"guest-shutdown\"}}\r\n");
    if (strcmp(name, "quit") == 0)
        srv_hangup(c);
}

static void test_powerdown_graceful(void **state)
{
    ctx *c = *state;
    c->hook = hook_guest_powers_off;
    connect_ready(c);
    assert_int_equal(px_qmp_powerdown_then_quit(c->q, WAIT_MS, cl_stop, c), PX_OK);
    WAIT_UNTIL(c, c->lost == 1);
    assert_int_equal(c->stops, 1);
    assert_int_equal(c->stop_err, PX_OK);
    assert_true(c->graceful);
    assert_string_equal(c->got[1].name, "system_powerdown");
    assert_string_equal(c->got[2].name, "quit");
    assert_int_equal(c->n_got, 3);
    assert_int_equal(c->lost_why, PX_E_CLOSED);
    assert_true(log_index(c, "event:SHUTDOWN") < log_index(c, "stop:OK:1"));
    assert_true(log_index(c, "stop:OK:1") < log_index(c, "lost"));
}

/* The guest ignores the power button; quit gets no reply, the socket just
 * goes away (as QEMU does). */
static void hook_guest_ignores(ctx *c, const char *name, json_int_t id, json_t *args)
{
    if (strcmp(name, "quit") == 0)
        srv_hangup(c);
    else
        srv_sendf(c, "{\"return\": {}, \"id\": %lld}\r\n", (long long)id);
}

static void test_powerdown_timeout_then_quit(void **state)
{
    ctx *c = *state;
    c->hook = hook_guest_ignores;
    connect_ready(c);
    uint64_t t0 = uv_hrtime();
    assert_int_equal(px_qmp_powerdown_then_quit(c->q, 150, cl_stop, c), PX_OK);
    WAIT_UNTIL(c, c->lost == 1);
    assert_true(uv_hrtime() - t0 >= 150u * 1000000u);
    assert_int_equal(c->stops, 1);
    assert_int_equal(c->stop_err, PX_OK);
    assert_false(c->graceful);
    assert_string_equal(c->got[2].name, "quit");
    assert_true(log_index(c, "stop:OK:0") < log_index(c, "lost"));
}

static void test_powerdown_refused_quits_at_once(void **state)
{
    ctx *c = *state;
    c->hook = hook_refuse_all;
    connect_ready(c);
    uint64_t t0 = uv_hrtime();
    assert_int_equal(px_qmp_powerdown_then_quit(c->q, WAIT_MS, cl_stop, c), PX_OK);
    WAIT_UNTIL(c, c->stops == 1);
    /* quit was sent without waiting out the deadline, and refused too. */
    assert_true(uv_hrtime() - t0 < (uint64_t)WAIT_MS * 1000000u / 2);
    assert_string_equal(c->got[2].name, "quit");
    assert_int_equal(c->stop_err, PX_E_UNSUPP);
    assert_false(c->graceful);
    assert_int_equal(c->lost, 0);
}

static void hook_dies(ctx *c, const char *name, json_int_t id, json_t *args)
{
    srv_hangup(c); /* QEMU crashes on the power button */
}

static void test_powerdown_qemu_dies(void **state)
{
    ctx *c = *state;
    connect_ready(c);
    c->hook = hook_dies;
    assert_int_equal(px_qmp_powerdown_then_quit(c->q, WAIT_MS, cl_stop, c), PX_OK);
    WAIT_UNTIL(c, c->lost == 1);
    assert_int_equal(c->stops, 1);
    assert_int_equal(c->stop_err, PX_E_CLOSED);
    assert_true(log_index(c, "stop:E_CLOSED:0") < log_index(c, "lost"));
}

/* ---- a real QEMU ---- */

static bool find_in_path(const char *prog)
{
    const char *path = getenv("PATH");
    char buf[4096];
    while (path && *path) {
        size_t n = strcspn(path, ":");
        snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, prog);
        if (access(buf, X_OK) == 0)
            return true;
        path += n + (path[n] == ':');
    }
    return false;
}

static void on_qemu_exit(uv_process_t *p, int64_t status, int sig)
{
    ctx *c = p->data;
    c->proc_exited = true;
    c->exit_status = status;
    c->term_signal = sig;
}

static bool start_qemu(ctx *c)
{
    if (!find_in_path("qemu-system-x86_64")) {
        printf("# SKIP: qemu-system-x86_64 not found in PATH (apt-get install "
               "qemu-system-x86)\n");
        return false;
    }
    char qmp[200];
    snprintf(qmp, sizeof(qmp), "unix:%s,server=on,wait=off", c->path);
    char *args[] = {"qemu-system-x86_64", "-S",          "-accel", "tcg", "-m", "64",
                    "-nographic",         "-nodefaults", "-qmp",   qmp,   NULL};
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE}, {.flags = UV_IGNORE}, {.flags = UV_INHERIT_FD, .data.fd = 2}};
    uv_process_options_t o = {
        .file = args[0], .args = args, .exit_cb = on_qemu_exit, .stdio_count = 3, .stdio = stdio};
    c->proc.data = c;
    int r = uv_spawn(&c->loop, &c->proc, &o);
    if (r < 0)
        fail_msg("uv_spawn qemu-system-x86_64: %s", uv_strerror(r));
    c->proc_up = true;
    return true;
}

static void test_real_qemu_status_cont_quit(void **state)
{
    ctx *c = *state;
    if (!start_qemu(c))
        skip();
    assert_int_equal(px_qmp_connect(c->q, c->path, 5000, NULL), PX_OK);
    WAIT_UNTIL(c, c->ready == 1 || c->lost);
    if (c->lost)
        fail_msg("QMP session to QEMU lost: %s", c->lost_em);
    px_qmp_info info;
    px_qmp_info_get(c->q, &info);
    printf("# QEMU %d.%d.%d (%s)\n", info.major, info.minor, info.micro, info.package);
    assert_true(info.major >= 7);

    status_calls = 0;
    assert_int_equal(px_qmp_query_status(c->q, cl_status, NULL), PX_OK);
    WAIT_UNTIL(c, status_calls == 1);
    assert_int_equal(status_err, PX_OK);
    assert_string_equal(status_got.status, "prelaunch");
    assert_false(status_got.running);

    reply_rec *cont = rec(c, "cont");
    assert_int_equal(px_qmp_command(c->q, "cont", NULL, cl_reply, cont), PX_OK);
    WAIT_UNTIL(c, cont->calls == 1 && log_index(c, "event:RESUME") >= 0);
    assert_int_equal(cont->err, PX_OK);
    assert_int_equal(px_qmp_query_status(c->q, cl_status, NULL), PX_OK);
    WAIT_UNTIL(c, status_calls == 2);
    assert_int_equal(status_err, PX_OK);
    assert_string_equal(status_got.status, "running");
    assert_true(status_got.running);

    reply_rec *stop = rec(c, "stop");
    assert_int_equal(px_qmp_command(c->q, "stop", NULL, cl_reply, stop), PX_OK);
    WAIT_UNTIL(c, stop->calls == 1 && log_index(c, "event:STOP") >= 0);
    assert_int_equal(px_qmp_query_status(c->q, cl_status, NULL), PX_OK);
    WAIT_UNTIL(c, status_calls == 3);
    assert_string_equal(status_got.status, "paused");

    reply_rec *bad = rec(c, "bad");
    assert_int_equal(px_qmp_command(c->q, "no-such-command", NULL, cl_reply, bad), PX_OK);
    WAIT_UNTIL(c, bad->calls == 1);
    assert_int_equal(bad->err, PX_E_UNSUPP);
    assert_non_null(strstr(bad->em, "CommandNotFound"));

    reply_rec *quit = rec(c, "quit");
    assert_int_equal(px_qmp_command(c->q, "quit", NULL, cl_reply, quit), PX_OK);
    WAIT_UNTIL(c, c->lost == 1 && c->proc_exited);
    assert_int_equal(quit->calls, 1);
    assert_true(quit->err == PX_OK || quit->err == PX_E_CLOSED);
    assert_int_equal(c->lost_why, PX_E_CLOSED);
    assert_int_equal(c->exit_status, 0);
    assert_int_equal(c->term_signal, 0);
    assert_true(log_index(c, "reply:quit:OK") < log_index(c, "lost") ||
                log_index(c, "reply:quit:E_CLOSED") < log_index(c, "lost"));
}

static void test_real_qemu_powerdown_then_quit(void **state)
{
    ctx *c = *state;
    if (!start_qemu(c))
        skip();
    assert_int_equal(px_qmp_connect(c->q, c->path, 5000, NULL), PX_OK);
    WAIT_UNTIL(c, c->ready == 1 || c->lost);
    if (c->lost)
        fail_msg("QMP session to QEMU lost: %s", c->lost_em);
    reply_rec *cont = rec(c, "cont");
    assert_int_equal(px_qmp_command(c->q, "cont", NULL, cl_reply, cont), PX_OK);
    WAIT_UNTIL(c, cont->calls == 1);
    /* No guest OS: nothing answers the power button, so quit follows the
     * deadline. */
    assert_int_equal(px_qmp_powerdown_then_quit(c->q, 300, cl_stop, c), PX_OK);
    WAIT_UNTIL(c, c->stops == 1 && c->lost == 1 && c->proc_exited);
    assert_int_equal(c->stop_err, PX_OK);
    assert_false(c->graceful);
    assert_true(log_index(c, "event:POWERDOWN") >= 0);
    assert_true(log_index(c, "event:SHUTDOWN") > log_index(c, "event:POWERDOWN"));
    assert_int_equal(c->lost_why, PX_E_CLOSED);
    assert_int_equal(c->exit_status, 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as plexus-node does; see qmp.h */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_framer_chunking),
        cmocka_unit_test(test_framer_limits),
        cmocka_unit_test(test_framer_and_classify_reject),
        cmocka_unit_test(test_classify_ids_and_stop),
        cmocka_unit_test_setup_teardown(test_connect_retries_until_socket_appears, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_greeting_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_greeting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capabilities_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replies_matched_by_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_ends_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlong_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disconnect_mid_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_errors_and_close_with_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_inside_reply_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_powerdown_graceful, setup, teardown),
        cmocka_unit_test_setup_teardown(test_powerdown_timeout_then_quit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_powerdown_refused_quits_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_powerdown_qemu_dies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_qemu_status_cont_quit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_qemu_powerdown_then_quit, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
