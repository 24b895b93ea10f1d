/* plexus-node QMP client. See qmp.h and docs/qmp.md. */
#include "qmp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fabric/core/log.h"

#define FRAMER_FIRST_CAP 4096u
#define RETRY_FIRST_MS   10u
#define RETRY_MAX_MS     200u
/* qmp_capabilities and the two commands of a graceful stop must never be
 * refused for want of a slot, so they have their own beyond the caller's. */
#define PENDING_RESERVED 3u
#define PENDING_SLOTS    (PX_QMP_MAX_PENDING + PENDING_RESERVED)

/* Peer text (jansson's messages quote the input, QMP descriptions) ends up
 * in logs: keep it to printable ASCII. */
static void sanitize(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            *s = '?';
}

/* ---- framing ---- */

void px_qmp_framer_init(px_qmp_framer *f, size_t max_line)
{
    memset(f, 0, sizeof(*f));
    f->max_line = max_line ? max_line : PX_QMP_LINE_MAX;
}

void px_qmp_framer_fini(px_qmp_framer *f)
{
    free(f->buf);
    f->buf = NULL;
    f->len = f->cap = 0;
}

/* Callers have checked that f->len + n <= max_line + 1. */
static px_err framer_append(px_qmp_framer *f, const char *p, size_t n, px_errmsg *em)
{
    if (f->len + n > f->cap) {
        size_t cap = f->cap ? f->cap : FRAMER_FIRST_CAP;
        while (cap < f->len + n)
            cap *= 2;
        if (cap > f->max_line + 1)
            cap = f->max_line + 1;
        char *nb = realloc(f->buf, cap);
        if (!nb)
            return px_errmsg_set(em, PX_E_NOMEM, "QMP: cannot buffer a %zu-byte line", f->len + n);
        f->buf = nb;
        f->cap = cap;
    }
    memcpy(f->buf + f->len, p, n);
    f->len += n;
    return PX_OK;
}

static px_err too_long(const px_qmp_framer *f, px_errmsg *em)
{
    return px_errmsg_set(em, PX_E_TOOBIG, "QMP message longer than %zu bytes", f->max_line);
}

static px_err deliver_line(const char *line, size_t len, px_qmp_line_cb cb, void *ud, px_errmsg *em)
{
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
        i++;
    if (i == len)
        return PX_OK; /* blank line: nothing to parse */
    json_error_t jerr;
    json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root && json_error_code(&jerr) == json_error_numeric_overflow)
        /* QEMU's uint64 fields can exceed json_int_t; take that one message
         * with its integers as reals rather than drop the session. */
        root = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &jerr);
    if (!root) {
        if (json_error_code(&jerr) == json_error_out_of_memory)
            return px_errmsg_set(em, PX_E_NOMEM, "QMP: out of memory parsing a message");
        px_err err = px_errmsg_set(em, PX_E_PROTO, "QMP message is not JSON (column %d): %s",
                                   jerr.column, jerr.text);
        if (em)
            sanitize(em->text);
        return err;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return px_errmsg_set(em, PX_E_PROTO, "QMP message is not a JSON object");
    }
    px_err err = cb(root, ud);
    json_decref(root);
    return err;
}

px_err px_qmp_framer_feed(px_qmp_framer *f, const void *data, size_t len, px_qmp_line_cb cb,
                          void *ud, px_errmsg *em)
{
    const char *p = data;
    while (len > 0) {
        const char *nl = memchr(p, '\n', len);
        size_t take = nl ? (size_t)(nl - p) : len;
        /* Even a CR before the line end cannot make this fit. */
        if (take > f->max_line + 1 - f->len)
            return too_long(f, em);
        if (!nl) {
            px_err err = framer_append(f, p, take, em);
            if (err)
                return err;
            if (f->len == f->max_line + 1 && f->buf[f->len - 1] != '\r')
                return too_long(f, em);
            return PX_OK;
        }
        const char *line = p;
        size_t line_len = take;
        if (f->len) {
            px_err err = framer_append(f, p, take, em);
            if (err)
                return err;
            line = f->buf;
            line_len = f->len;
        }
        if (line_len && line[line_len - 1] == '\r')
            line_len--;
        if (line_len > f->max_line)
            return too_long(f, em);
        px_err err = deliver_line(line, line_len, cb, ud, em);
        f->len = 0;
        if (err)
            return err;
        p = nl + 1;
        len -= take + 1;
    }
    return PX_OK;
}

/* ---- classification ---- */

static bool id_of(json_t *root, uint64_t *id)
{
    json_t *v = json_object_get(root, "id");
    if (json_is_integer(v) && json_integer_value(v) >= 1) {
        *id = (uint64_t)json_integer_value(v);
        return true;
    }
    /* Integers arrive as reals in a message that also held a huge one. */
    double d = json_real_value(v);
    if (json_is_real(v) && d >= 1 && d <= 9007199254740992.0 && d == (double)(uint64_t)d) {
        *id = (uint64_t)d;
        return true;
    }
    return false;
}

static px_err classify(json_t *root, px_qmp_msg *m, px_errmsg *em)
{
    memset(m, 0, sizeof(*m));
    if (!json_is_object(root))
        return px_errmsg_set(em, PX_E_PROTO, "QMP message is not a JSON object");
    json_t *greet = json_object_get(root, "QMP");
    json_t *ret = json_object_get(root, "return");
    json_t *error = json_object_get(root, "error");
    json_t *event = json_object_get(root, "event");
    int kinds = !!greet + !!ret + !!error + !!event;
    if (kinds != 1)
        return px_errmsg_set(em, PX_E_PROTO,
                             kinds ? "QMP message has more than one of QMP/return/error/event"
                                   : "QMP message has none of QMP/return/error/event");
    if (greet) {
        if (!json_is_object(greet))
            return px_errmsg_set(em, PX_E_PROTO, "QMP greeting: \"QMP\" is not an object");
        m->kind = PX_QMP_GREETING;
        m->value = greet;
        return PX_OK;
    }
    if (ret) {
        m->kind = PX_QMP_RETURN;
        m->value = ret;
        m->has_id = id_of(root, &m->id);
        return PX_OK;
    }
    if (error) {
        json_t *cls = json_object_get(error, "class");
        json_t *desc = json_object_get(error, "desc");
        if (!json_is_string(cls) || !json_is_string(desc))
            return px_errmsg_set(em, PX_E_PROTO,
                                 "QMP error reply without string \"class\" and \"desc\"");
        m->kind = PX_QMP_ERROR;
        m->value = error;
        m->err_class = json_string_value(cls);
        m->err_desc = json_string_value(desc);
        m->has_id = id_of(root, &m->id);
        return PX_OK;
    }
    size_t name_len = json_string_length(event);
    if (!json_is_string(event) || name_len == 0 || name_len > PX_QMP_NAME_MAX ||
        strlen(json_string_value(event)) != name_len)
        return px_errmsg_set(em, PX_E_PROTO, "QMP event name is not a string of 1..%u bytes",
                             PX_QMP_NAME_MAX);
    json_t *data = json_object_get(root, "data");
    if (data && !json_is_object(data))
        return px_errmsg_set(em, PX_E_PROTO, "QMP event %s: \"data\" is not an object",
                             json_string_value(event));
    if (!data) {
        data = json_object();
        if (!data || json_object_set_new(root, "data", data))
            return px_errmsg_set(em, PX_E_NOMEM, "QMP: out of memory");
    }
    m->kind = PX_QMP_EVENT;
    m->name = json_string_value(event);
    m->value = data;
    json_t *ts = json_object_get(root, "timestamp");
    json_t *sec = json_object_get(ts, "seconds");
    json_t *usec = json_object_get(ts, "microseconds");
    if (json_is_integer(sec) && json_is_integer(usec)) {
        m->ts_sec = json_integer_value(sec);
        m->ts_usec = json_integer_value(usec);
    }
    return PX_OK;
}

/* Every message that quotes the peer (an event name, a key) is sanitised
 * once here: peer bytes reach logs only as printable ASCII. */
px_err px_qmp_classify(json_t *root, px_qmp_msg *m, px_errmsg *em)
{
    px_err err = classify(root, m, em);
    if (err && em)
        sanitize(em->text);
    return err;
}

/* ---- the client ---- */

typedef enum qstate {
    Q_IDLE,       /* new, connect not called */
    Q_CONNECTING, /* connect attempts on the timer */
    Q_GREETING,   /* connected, waiting for {"QMP": ...} */
    Q_CAPS,       /* qmp_capabilities sent */
    Q_READY,
    Q_LOST,   /* session over, waiting for px_qmp_close */
    Q_CLOSING /* px_qmp_close called */
} qstate;

typedef enum pkind { P_USER, P_STATUS, P_CAPS, P_POWERDOWN, P_QUIT } pkind;

typedef struct pending {
    uint64_t id;
    pkind kind;
    char cmd[PX_QMP_NAME_MAX + 1];
    px_qmp_reply_cb reply;
    px_qmp_status_cb status;
    void *ud;
} pending;

typedef struct wreq {
    uv_write_t req;
    size_t len;
    char data[];
} wreq;

struct px_qmp {
    uv_loop_t *loop;
    px_qmp_opts opts;
    qstate st;
    char path[PX_QMP_PATH_MAX + 1];
    uint32_t timeout_ms;
    uint64_t deadline_ns; /* uv_hrtime: connect, greeting and capabilities */
    uint32_t retry_ms;
    uv_timer_t timer; /* connect retry, then the handshake deadline */
    uv_timer_t pd_timer;
    uv_pipe_t pipe;
    bool pipe_init;
    unsigned handles_open;
    px_qmp_framer fr;
    px_errmsg em; /* scratch for the read path */
    uint64_t next_id;
    pending pend[PENDING_SLOTS]; /* in id order: the order sent */
    unsigned n_pend, n_user;
    px_qmp_info info;
    px_qmp_stats stats;
    px_err lost_why;
    struct {
        bool active, quit_sent, shutdown_seen;
        px_qmp_stop_cb cb;
        void *ud;
    } pd;
    px_qmp_close_cb close_cb;
    void *close_ud;
    char rbuf[PX_QMP_READ_CHUNK];
};

static bool live(const px_qmp *q)
{
    return q->st >= Q_CONNECTING && q->st <= Q_READY;
}

static void on_handle_closed(uv_handle_t *h);
static void lose(px_qmp *q, px_err why, const px_errmsg *em);

px_err px_qmp_new(uv_loop_t *loop, const px_qmp_opts *opts, px_qmp **out, px_errmsg *em)
{
    *out = NULL;
    px_qmp *q = calloc(1, sizeof(*q));
    if (!q)
        return px_errmsg_set(em, PX_E_NOMEM, "QMP: out of memory");
    q->loop = loop;
    if (opts)
        q->opts = *opts;
    q->st = Q_IDLE;
    q->next_id = 1;
    px_qmp_framer_init(&q->fr, q->opts.max_line);
    uv_timer_init(loop, &q->timer);
    uv_timer_init(loop, &q->pd_timer);
    q->timer.data = q->pd_timer.data = q;
    q->handles_open = 2;
    *out = q;
    return PX_OK;
}

bool px_qmp_ready(const px_qmp *q)
{
    return q->st == Q_READY;
}

void px_qmp_info_get(const px_qmp *q, px_qmp_info *out)
{
    *out = q->info;
}

void px_qmp_stats_get(const px_qmp *q, px_qmp_stats *out)
{
    *out = q->stats;
}

/* ---- sending ---- */

static void on_write(uv_write_t *req, int status)
{
    px_qmp *q = req->handle->data;
    free(req->data);
    if (status < 0 && status != UV_ECANCELED && live(q)) {
        /* EPIPE: QEMU exited between our write and its read. */
        px_err err = status == UV_EPIPE || status == UV_ECONNRESET ? PX_E_CLOSED : PX_E_IO;
        px_errmsg em;
        px_errmsg_set(&em, err, "QMP socket %s: write: %s", q->path, uv_strerror(status));
        lose(q, err, &em);
    }
}

/* Serialize, write and register one command. The caller has checked the
 * state. Never runs a callback. */
static px_err send_command(px_qmp *q, const char *cmd, json_t *args, pkind kind, const pending *tpl)
{
    size_t name_len = cmd ? strlen(cmd) : 0;
    if (name_len == 0 || name_len > PX_QMP_NAME_MAX || (args && !json_is_object(args)))
        return PX_E_INVAL;
    if (q->n_pend == PENDING_SLOTS)
        return PX_E_AGAIN; /* not reached: user commands are capped below this */
    uint64_t id = q->next_id;
    json_t *o = json_object();
    json_t *name = json_string(cmd);
    if (!o || !name) {
        json_decref(o);
        json_decref(name);
        return name || !o ? PX_E_NOMEM : PX_E_INVAL; /* json_string: NULL for bad UTF-8 */
    }
    if (json_object_set_new(o, "execute", name) ||
        (args && json_object_set(o, "arguments", args)) ||
        json_object_set_new(o, "id", json_integer((json_int_t)id))) {
        json_decref(o);
        return PX_E_NOMEM;
    }
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!text)
        return PX_E_NOMEM;
    size_t len = strlen(text);
    if (len > q->fr.max_line) {
        free(text);
        return PX_E_TOOBIG;
    }
    wreq *w = malloc(sizeof(*w) + len + 2);
    if (!w) {
        free(text);
        return PX_E_NOMEM;
    }
    memcpy(w->data, text, len);
    memcpy(w->data + len, "\r\n", 2);
    w->len = len + 2;
    free(text);
    w->req.data = w;
    /* One write per command: QMP traffic is a handful of commands per guest
     * lifetime, so batching would buy nothing. */
    uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
    int r = uv_write(&w->req, (uv_stream_t *)&q->pipe, &b, 1, on_write);
    if (r < 0) {
        free(w);
        return r == UV_EPIPE || r == UV_EBADF ? PX_E_CLOSED : PX_E_IO;
    }
    pending *p = &q->pend[q->n_pend++];
    *p = *tpl;
    p->id = id;
    p->kind = kind;
    memcpy(p->cmd, cmd, name_len + 1);
    q->next_id++;
    q->stats.commands++;
    PX_DEBUG("qmp", "command sent", "path=%s cmd=%s id=%llu", q->path, cmd, (unsigned long long)id);
    return PX_OK;
}

static px_err user_check(const px_qmp *q)
{
    if (q->st == Q_LOST || q->st == Q_CLOSING)
        return PX_E_CLOSED;
    if (q->st != Q_READY)
        return PX_E_INVAL;
    if (q->n_user >= PX_QMP_MAX_PENDING)
        return PX_E_AGAIN;
    return PX_OK;
}

px_err px_qmp_command(px_qmp *q, const char *cmd, json_t *args, px_qmp_reply_cb cb, void *ud)
{
    px_err err = user_check(q);
    if (err)
        return err;
    if (!cb)
        return PX_E_INVAL;
    err = send_command(q, cmd, args, P_USER, &(pending){.reply = cb, .ud = ud});
    if (!err)
        q->n_user++;
    return err;
}

px_err px_qmp_query_status(px_qmp *q, px_qmp_status_cb cb, void *ud)
{
    px_err err = user_check(q);
    if (err)
        return err;
    if (!cb)
        return PX_E_INVAL;
    err = send_command(q, "query-status", NULL, P_STATUS, &(pending){.status = cb, .ud = ud});
    if (!err)
        q->n_user++;
    return err;
}

/* ---- graceful stop ---- */

static void pd_finish(px_qmp *q, px_err err, const px_errmsg *em)
{
    if (!q->pd.active)
        return;
    q->pd.active = false;
    uv_timer_stop(&q->pd_timer);
    px_errmsg none = {{0}};
    bool graceful = q->pd.shutdown_seen && !err;
    PX_INFO("qmp", "graceful stop done", "path=%s err=%s graceful=%d", q->path, px_errname(err),
            graceful);
    q->pd.cb(q, err, graceful, em ? em : &none, q->pd.ud);
}

static void pd_send_quit(px_qmp *q)
{
    q->pd.quit_sent = true;
    uv_timer_stop(&q->pd_timer);
    px_err err = send_command(q, "quit", NULL, P_QUIT, &(pending){0});
    if (err) {
        px_errmsg em;
        px_errmsg_set(&em, err, "QMP socket %s: cannot send quit", q->path);
        pd_finish(q, err, &em);
    }
}

static void on_pd_timer(uv_timer_t *t)
{
    px_qmp *q = t->data;
    if (q->pd.active && !q->pd.quit_sent && live(q)) {
        PX_INFO("qmp", "no SHUTDOWN before the deadline, sending quit", "path=%s", q->path);
        pd_send_quit(q);
    }
}

px_err px_qmp_powerdown_then_quit(px_qmp *q, uint32_t timeout_ms, px_qmp_stop_cb cb, void *ud)
{
    if (q->st == Q_LOST || q->st == Q_CLOSING)
        return PX_E_CLOSED;
    if (q->st != Q_READY || !cb)
        return PX_E_INVAL;
    if (q->pd.active)
        return PX_E_EXISTS;
    px_err err = send_command(q, "system_powerdown", NULL, P_POWERDOWN, &(pending){0});
    if (err)
        return err;
    q->pd.active = true;
    q->pd.quit_sent = q->pd.shutdown_seen = false;
    q->pd.cb = cb;
    q->pd.ud = ud;
    uv_timer_start(&q->pd_timer, on_pd_timer, timeout_ms, 0);
    return PX_OK;
}

/* ---- completing commands ---- */

static px_err error_class_err(const char *cls)
{
    if (strcmp(cls, "CommandNotFound") == 0)
        return PX_E_UNSUPP;
    if (strcmp(cls, "DeviceNotFound") == 0)
        return PX_E_NOTFOUND;
    return PX_E_INVAL;
}

static void on_ready(px_qmp *q)
{
    q->st = Q_READY;
    uv_timer_stop(&q->timer);
    PX_INFO("qmp", "ready", "path=%s qemu=%d.%d.%d", q->path, q->info.major, q->info.minor,
            q->info.micro);
    if (q->opts.on_ready)
        q->opts.on_ready(q, q->opts.ud);
}

/* Run p's callback. p is a copy already removed from the table, so a
 * callback that sends or closes sees a consistent client. */
static void complete(px_qmp *q, const pending *p, px_err err, json_t *result, const px_errmsg *em)
{
    if (p->kind == P_USER || p->kind == P_STATUS)
        q->n_user--;
    switch (p->kind) {
    case P_USER:
        p->reply(q, err, result, em, p->ud);
        return;
    case P_STATUS: {
        px_qmp_status st = {0};
        px_errmsg pem = *em;
        if (!err) {
            json_t *s = json_object_get(result, "status");
            json_t *r = json_object_get(result, "running");
            if (!json_is_string(s) || !json_is_boolean(r)) {
                err = px_errmsg_set(&pem, PX_E_PROTO,
                                    "QMP query-status: reply lacks string \"status\" and "
                                    "boolean \"running\"");
            } else {
                snprintf(st.status, sizeof(st.status), "%s", json_string_value(s));
                sanitize(st.status);
                st.running = json_is_true(r);
            }
        }
        p->status(q, err, err ? NULL : &st, &pem, p->ud);
        return;
    }
    case P_CAPS:
        if (err == PX_E_CLOSED)
            return; /* the session is already ending */
        if (err) {
            px_errmsg lem = *em;
            px_errmsg_prefix(&lem, "QMP socket %s", q->path);
            lose(q, PX_E_PROTO, &lem);
            return;
        }
        on_ready(q);
        return;
    case P_POWERDOWN:
        if (err && err != PX_E_CLOSED && q->pd.active && !q->pd.quit_sent && live(q)) {
            PX_WARN("qmp", "system_powerdown refused, sending quit", "path=%s detail=\"%s\"",
                    q->path, em->text);
            pd_send_quit(q);
        }
        return;
    case P_QUIT:
        /* QEMU resets the socket after quit, often before the reply is
         * read: the connection ending is the answer too. */
        if (err == PX_E_CLOSED && q->st == Q_LOST && q->lost_why == PX_E_CLOSED)
            err = PX_OK;
        pd_finish(q, err, em);
        return;
    }
}

static void fail_all_pending(px_qmp *q, const px_errmsg *em)
{
    while (q->n_pend) {
        pending p = q->pend[0];
        memmove(&q->pend[0], &q->pend[1], --q->n_pend * sizeof(q->pend[0]));
        complete(q, &p, PX_E_CLOSED, NULL, em);
    }
}

static void on_reply(px_qmp *q, const px_qmp_msg *m)
{
    unsigned i = 0;
    while (m->has_id && i < q->n_pend && q->pend[i].id != m->id)
        i++;
    if (!m->has_id || i == q->n_pend) {
        q->stats.replies_dropped++;
        PX_WARN("qmp", "reply matches no pending command, dropped", "path=%s id=%lld kind=%s",
                q->path, m->has_id ? (long long)m->id : -1LL,
                m->kind == PX_QMP_ERROR ? "error" : "return");
        return;
    }
    pending p = q->pend[i];
    memmove(&q->pend[i], &q->pend[i + 1], (--q->n_pend - i) * sizeof(q->pend[0]));
    px_errmsg em = {{0}};
    px_err err = PX_OK;
    if (m->kind == PX_QMP_ERROR) {
        err = px_errmsg_set(&em, error_class_err(m->err_class), "QMP %s: %s: %s", p.cmd,
                            m->err_class, m->err_desc);
        sanitize(em.text);
    }
    complete(q, &p, err, m->value, &em);
}

static const struct {
    const char *name;
    px_qmp_event_kind kind;
} event_names[] = {
    {"SHUTDOWN", PX_QMP_EV_SHUTDOWN},
    {"POWERDOWN", PX_QMP_EV_POWERDOWN},
    {"STOP", PX_QMP_EV_STOP},
    {"RESUME", PX_QMP_EV_RESUME},
    {"RESET", PX_QMP_EV_RESET},
    {"NETDEV_STREAM_CONNECTED", PX_QMP_EV_NETDEV_STREAM_CONNECTED},
    {"NETDEV_STREAM_DISCONNECTED", PX_QMP_EV_NETDEV_STREAM_DISCONNECTED},
};

static void on_event(px_qmp *q, const px_qmp_msg *m)
{
    px_qmp_event ev = {.kind = PX_QMP_EV_OTHER,
                       .name = m->name,
                       .data = m->value,
                       .reason = "",
                       .netdev_id = "",
                       .ts_sec = m->ts_sec,
                       .ts_usec = m->ts_usec};
    for (size_t i = 0; i < sizeof(event_names) / sizeof(event_names[0]); i++)
        if (strcmp(m->name, event_names[i].name) == 0)
            ev.kind = event_names[i].kind;
    if (ev.kind == PX_QMP_EV_SHUTDOWN) {
        json_t *r = json_object_get(m->value, "reason");
        if (json_is_string(r))
            ev.reason = json_string_value(r);
        ev.guest = json_is_true(json_object_get(m->value, "guest"));
    }
    if (ev.kind == PX_QMP_EV_NETDEV_STREAM_CONNECTED ||
        ev.kind == PX_QMP_EV_NETDEV_STREAM_DISCONNECTED) {
        json_t *id = json_object_get(m->value, "netdev-id");
        if (json_is_string(id))
            ev.netdev_id = json_string_value(id);
    }
    q->stats.events++;
    PX_DEBUG("qmp", "event", "path=%s event=%s", q->path, m->name);
    if (q->opts.on_event)
        q->opts.on_event(q, &ev, q->opts.ud);
    if (ev.kind == PX_QMP_EV_SHUTDOWN && q->pd.active && !q->pd.quit_sent && live(q)) {
        q->pd.shutdown_seen = true;
        pd_send_quit(q);
    }
}

static void on_greeting(px_qmp *q, const px_qmp_msg *m)
{
    json_t *v = json_object_get(m->value, "version");
    json_t *qv = json_object_get(v, "qemu");
    json_t *maj = json_object_get(qv, "major"), *min = json_object_get(qv, "minor"),
           *mic = json_object_get(qv, "micro"), *pkg = json_object_get(v, "package");
    if (json_is_integer(maj) && json_is_integer(min) && json_is_integer(mic)) {
        q->info.major = (int)json_integer_value(maj);
        q->info.minor = (int)json_integer_value(min);
        q->info.micro = (int)json_integer_value(mic);
    }
    if (json_is_string(pkg)) {
        snprintf(q->info.package, sizeof(q->info.package), "%s", json_string_value(pkg));
        sanitize(q->info.package);
    }
    q->st = Q_CAPS;
    px_err err = send_command(q, "qmp_capabilities", NULL, P_CAPS, &(pending){0});
    if (err) {
        px_errmsg em;
        px_errmsg_set(&em, err, "QMP socket %s: cannot send qmp_capabilities", q->path);
        lose(q, err, &em);
    }
}

/* Framer callback: one message. Returning non-zero stops the feed; when the
 * session ended inside a callback (lost or closed) the caller ignores it. */
static px_err on_line(json_t *root, void *ud)
{
    px_qmp *q = ud;
    if (!live(q))
        return PX_E_CLOSED;
    px_qmp_msg m;
    px_err err = px_qmp_classify(root, &m, &q->em);
    if (err)
        return err;
    q->stats.msgs_in++;
    if (q->st == Q_GREETING) {
        if (m.kind != PX_QMP_GREETING)
            return px_errmsg_set(&q->em, PX_E_PROTO, "expected the QMP greeting first");
        on_greeting(q, &m);
    } else if (m.kind == PX_QMP_GREETING) {
        return px_errmsg_set(&q->em, PX_E_PROTO, "a second QMP greeting");
    } else if (m.kind == PX_QMP_EVENT) {
        on_event(q, &m);
    } else {
        on_reply(q, &m);
    }
    return live(q) ? PX_OK : PX_E_CLOSED;
}

/* ---- reading and connecting ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    px_qmp *q = h->data;
    *buf = uv_buf_init(q->rbuf, sizeof(q->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    px_qmp *q = s->data;
    if (nread == 0 || !live(q))
        return;
    px_errmsg em;
    if (nread < 0) {
        if (nread == UV_EOF || nread == UV_ECONNRESET) {
            px_errmsg_set(&em, PX_E_CLOSED, "QMP socket %s: QEMU %s the connection", q->path,
                          nread == UV_EOF ? "closed" : "reset");
            lose(q, PX_E_CLOSED, &em);
        } else {
            px_errmsg_set(&em, PX_E_IO, "QMP socket %s: read: %s", q->path,
                          uv_strerror((int)nread));
            lose(q, PX_E_IO, &em);
        }
        return;
    }
    q->em.text[0] = '\0';
    px_err err = px_qmp_framer_feed(&q->fr, buf->base, (size_t)nread, on_line, q, &q->em);
    if (err && live(q)) {
        em = q->em;
        px_errmsg_prefix(&em, "QMP socket %s", q->path);
        lose(q, err, &em);
    }
}

static uint32_t ms_left(const px_qmp *q)
{
    uint64_t now = uv_hrtime();
    return now >= q->deadline_ns ? 0 : (uint32_t)((q->deadline_ns - now + 999999) / 1000000);
}

static void on_timer(uv_timer_t *t);

static void try_connect(px_qmp *q)
{
    px_errmsg em;
    q->stats.connect_attempts++;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        px_err err = px_err_from_errno(errno);
        px_errmsg_set(&em, err, "QMP socket %s: socket: %s", q->path, strerror(errno));
        lose(q, err, &em);
        return;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, q->path, strlen(q->path) + 1);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = errno;
        close(fd);
        bool retry = e == ENOENT || e == ECONNREFUSED || e == EAGAIN || e == EINTR;
        uint32_t left = ms_left(q);
        if (retry && left > 0) {
            uv_timer_start(&q->timer, on_timer, q->retry_ms < left ? q->retry_ms : left, 0);
            q->retry_ms = q->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : q->retry_ms * 2;
            return;
        }
        px_err err = retry ? PX_E_TIMEOUT : px_err_from_errno(e);
        if (retry)
            px_errmsg_set(&em, err, "QMP socket %s: nothing listening after %u ms (%s)", q->path,
                          q->timeout_ms, strerror(e));
        else
            px_errmsg_set(&em, err, "QMP socket %s: connect: %s", q->path, strerror(e));
        lose(q, err, &em);
        return;
    }
    uv_pipe_init(q->loop, &q->pipe, 0);
    q->pipe.data = q;
    q->pipe_init = true;
    q->handles_open++;
    int r = uv_pipe_open(&q->pipe, fd);
    if (r < 0)
        close(fd);
    else
        r = uv_read_start((uv_stream_t *)&q->pipe, on_alloc, on_read);
    if (r < 0) {
        px_errmsg_set(&em, PX_E_IO, "QMP socket %s: %s", q->path, uv_strerror(r));
        lose(q, PX_E_IO, &em);
        return;
    }
    q->st = Q_GREETING;
    PX_DEBUG("qmp", "connected", "path=%s attempts=%llu", q->path,
             (unsigned long long)q->stats.connect_attempts);
    uv_timer_start(&q->timer, on_timer, ms_left(q), 0);
}

static void on_timer(uv_timer_t *t)
{
    px_qmp *q = t->data;
    if (q->st == Q_CONNECTING) {
        try_connect(q);
    } else if (q->st == Q_GREETING || q->st == Q_CAPS) {
        px_errmsg em;
        px_errmsg_set(&em, PX_E_TIMEOUT, "QMP socket %s: no %s within %u ms", q->path,
                      q->st == Q_GREETING ? "greeting" : "reply to qmp_capabilities",
                      q->timeout_ms);
        lose(q, PX_E_TIMEOUT, &em);
    }
}

px_err px_qmp_connect(px_qmp *q, const char *path, uint32_t timeout_ms, px_errmsg *em)
{
    if (q->st == Q_CLOSING)
        return px_errmsg_set(em, PX_E_CLOSED, "QMP: client is closing");
    if (q->st != Q_IDLE)
        return px_errmsg_set(em, PX_E_INVAL, "QMP: connect called twice");
    size_t len = path ? strlen(path) : 0;
    if (len == 0 || len > PX_QMP_PATH_MAX)
        return px_errmsg_set(em, PX_E_INVAL, "QMP socket path must be 1..%u bytes, not %zu",
                             PX_QMP_PATH_MAX, len);
    memcpy(q->path, path, len + 1);
    q->timeout_ms = timeout_ms;
    q->deadline_ns = uv_hrtime() + (uint64_t)timeout_ms * 1000000u;
    q->retry_ms = RETRY_FIRST_MS;
    q->st = Q_CONNECTING;
    uv_timer_start(&q->timer, on_timer, 0, 0);
    return PX_OK;
}

/* ---- ending ---- */

static void lose(px_qmp *q, px_err why, const px_errmsg *em)
{
    if (!live(q))
        return;
    px_errmsg lem = *em; /* em may be q->em, which callbacks below may reuse */
    q->st = Q_LOST;
    q->lost_why = why;
    uv_timer_stop(&q->timer);
    uv_timer_stop(&q->pd_timer);
    if (q->pipe_init && !uv_is_closing((uv_handle_t *)&q->pipe))
        uv_close((uv_handle_t *)&q->pipe, on_handle_closed);
    if (why == PX_E_CLOSED)
        PX_INFO("qmp", "session ended", "path=%s detail=\"%s\"", q->path, lem.text);
    else
        PX_WARN("qmp", "session lost", "path=%s err=%s detail=\"%s\"", q->path, px_errname(why),
                lem.text);
    fail_all_pending(q, &lem);
    if (q->pd.active && q->st == Q_LOST) {
        px_errmsg pem;
        px_errmsg_set(&pem, PX_E_CLOSED, "QMP socket %s: QEMU went away before SHUTDOWN (%s)",
                      q->path, lem.text);
        pd_finish(q, PX_E_CLOSED, &pem);
    }
    if (q->st == Q_LOST && q->opts.on_lost)
        q->opts.on_lost(q, why, &lem, q->opts.ud);
}

static void on_handle_closed(uv_handle_t *h)
{
    px_qmp *q = h->data;
    if (--q->handles_open > 0 || q->st != Q_CLOSING)
        return;
    px_errmsg em;
    px_errmsg_set(&em, PX_E_CLOSED, "QMP socket %s: client closed", q->path);
    fail_all_pending(q, &em);
    pd_finish(q, PX_E_CLOSED, &em);
    if (q->close_cb)
        q->close_cb(q, q->close_ud);
    px_qmp_framer_fini(&q->fr);
    free(q);
}

void px_qmp_close(px_qmp *q, px_qmp_close_cb cb, void *ud)
{
    if (q->st == Q_CLOSING) {
        PX_ERROR("qmp", "px_qmp_close called twice", "path=%s", q->path);
        return;
    }
    q->st = Q_CLOSING;
    q->close_cb = cb;
    q->close_ud = ud;
    uv_close((uv_handle_t *)&q->timer, on_handle_closed);
    uv_close((uv_handle_t *)&q->pd_timer, on_handle_closed);
    if (q->pipe_init && !uv_is_closing((uv_handle_t *)&q->pipe))
        uv_close((uv_handle_t *)&q->pipe, on_handle_closed);
}
