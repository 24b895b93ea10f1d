/* plexus can send / dump / replay: a tool on the bus's data plane.
 *
 * One private libuv loop per command: a transport with this CLI's key, a
 * px_canclient joined at the bus home, and the command's timers. send and
 * replay share one feeder: frames go out while fewer than a window's worth
 * are unconfirmed; each comes back as a TX-complete (DELIVER from this tool
 * with its tag) or a refusal (sequence 0).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "cmd_can.h"
#include "fabric/can-bus/canfmt.h"
#include "fabric/can-bus/client.h"
#include "fabric/can-bus/proto.h"

#define READ_BUF (64u * 1024u) /* replay: bytes of input held; a line must fit */

typedef enum mode { MODE_SEND, MODE_DUMP, MODE_REPLAY } mode;

/* replay's input: a file or a pipe, read line by line without blocking the
 * loop on a pipe (uv_poll tells when a read will not block). */
typedef struct reader {
    const char *name;
    int fd;
    bool regular, eof, polling;
    uv_poll_t poll;
    char buf[READ_BUF];
    size_t len;
    uint64_t line;
} reader;

typedef struct slot {
    bool used;
    uint32_t tag;
    uint64_t where; /* send: frame number; replay: line number */
} slot;

struct stream {
    const px_can_session *s;
    mode mode;
    uv_loop_t loop;
    px_transport *tp;
    px_canclient *cc;
    uv_timer_t idle; /* send/replay: confirmation timeout; dump: -t */
    uv_timer_t pace; /* replay: the next frame's time */
    uv_signal_t sigint, sigterm;
    bool stop, interrupted, auth_failed, told_disconnect, connected;
    int rc;
    /* send and replay */
    const px_can_frame *frames; /* send */
    char *const *texts;
    uint32_t n_frames, next_frame;
    reader *in; /* replay */
    bool timing, have_next, eof;
    px_can_frame next;
    uint64_t next_where, next_ts_us;
    uint64_t t0_ns, ts0_us; /* replay: when the first frame went, its log time */
    bool started;
    slot win[PX_CAN_REPLAY_WINDOW];
    uint32_t inflight;
    uint32_t tag;
    uint64_t sent, confirmed, refused;
    /* dump */
    uint64_t count, printed;
    uint32_t idle_ms;
    bool json;
};

static void fail(struct stream *st, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Print the failure (prefix, text, hint) and end the command with status 1. */
static void fail(struct stream *st, const char *hint, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: %s: ", st->s->cli->prog, st->s->cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (hint)
        fprintf(stderr, "hint: %s\n", hint);
    st->rc = PX_EXIT_FAIL;
    st->stop = true;
}

static void note(const struct stream *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void note(const struct stream *st, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: %s: ", st->s->cli->prog, st->s->cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- replay input ---- */

static void pump(struct stream *st);

/* Input that cannot be read further: what came before it is still sent
 * and waited for; the command fails. */
static void read_error(struct stream *st, const char *why)
{
    note(st, "reading %s: %s", st->in->name, why);
    st->in->eof = true;
    st->in->len = 0;
    st->rc = PX_EXIT_FAIL;
}

static void on_readable(uv_poll_t *p, int status, int events)
{
    (void)events;
    struct stream *st = p->data;
    reader *r = st->in;
    if (status < 0) {
        read_error(st, uv_strerror(status));
    } else {
        ssize_t n = read(r->fd, r->buf + r->len, sizeof(r->buf) - r->len);
        if (n > 0)
            r->len += (size_t)n;
        else if (n == 0)
            r->eof = true;
        else if (errno != EAGAIN && errno != EINTR)
            read_error(st, strerror(errno));
    }
    /* Level-triggered: with no room left, stop until lines are consumed. */
    if (r->eof || r->len == sizeof(r->buf)) {
        uv_poll_stop(&r->poll);
        r->polling = false;
    }
    pump(st);
}

/* The next line in *line (NUL-terminated, no newline): 1; 0 when a pipe
 * has nothing yet; -1 at the end; -2 on an error (printed). */
static int reader_line(struct stream *st, char *line, size_t cap)
{
    reader *r = st->in;
    for (;;) {
        char *nl = memchr(r->buf, '\n', r->len);
        if (nl || (r->eof && r->len)) {
            size_t n = nl ? (size_t)(nl - r->buf) : r->len;
            size_t used = nl ? n + 1 : n;
            r->line++;
            if (n >= cap) {
                note(st, "%s:%llu: line too long (%zu bytes; a candump -L line has at most %u)",
                     r->name, (unsigned long long)r->line, n, PX_CANFMT_LINE_MAX - 1);
                st->rc = PX_EXIT_FAIL;
                return -2;
            }
            memcpy(line, r->buf, n);
            line[n] = '\0';
            memmove(r->buf, r->buf + used, r->len - used);
            r->len -= used;
            if (!r->regular && !r->eof && !r->polling) {
                uv_poll_start(&r->poll, UV_READABLE, on_readable);
                r->polling = true;
            }
            return 1;
        }
        if (r->eof)
            return -1;
        if (r->len == sizeof(r->buf)) {
            note(st, "%s:%llu: line too long", r->name, (unsigned long long)r->line + 1);
            st->rc = PX_EXIT_FAIL;
            return -2;
        }
        if (!r->regular)
            return 0; /* on_readable brings more */
        ssize_t n = read(r->fd, r->buf + r->len, sizeof(r->buf) - r->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            read_error(st, strerror(errno));
            return -2;
        }
        if (n == 0)
            r->eof = true;
        r->len += (size_t)n;
    }
}

/* ---- the feeder (send, replay) ---- */

/* The next frame into st->next: 1, 0 (not yet), -1 (no more). */
static int next_frame(struct stream *st)
{
    if (st->mode == MODE_SEND) {
        if (st->next_frame == st->n_frames)
            return -1;
        st->next = st->frames[st->next_frame++];
        st->next_where = st->next_frame;
        return 1;
    }
    for (;;) {
        char line[PX_CANFMT_LINE_MAX + 2];
        int r = reader_line(st, line, sizeof(line));
        if (r <= 0)
            return r == 0 ? 0 : -1;
        if (!line[0] || line[0] == '#' || (line[0] == '\r' && !line[1]))
            continue;
        px_canfmt_log l;
        px_errmsg em = {{0}};
        if (px_canfmt_parse_log(line, strlen(line), &l, &em) != PX_OK) {
            /* The frames before it still go out and are waited for. */
            note(st, "%s:%llu: %s", st->in->name, (unsigned long long)st->in->line, em.text);
            fprintf(stderr, "hint: lines look like '(1700000000.123456) can0 123#DEADBEEF' "
                            "(candump -L)\n");
            st->rc = PX_EXIT_FAIL;
            return -1;
        }
        st->next = l.frame;
        st->next_where = st->in->line;
        st->next_ts_us = l.sec * 1000000u + l.usec;
        return 1;
    }
}

static void on_pace(uv_timer_t *t)
{
    pump(t->data);
}

static void on_idle(uv_timer_t *t)
{
    struct stream *st = t->data;
    if (st->mode == MODE_DUMP) {
        if (st->count && st->printed < st->count)
            fail(st, NULL, "timed out: %llu of %llu frames in %u ms",
                 (unsigned long long)st->printed, (unsigned long long)st->count, st->idle_ms);
        st->stop = true;
        return;
    }
    if (!st->inflight)
        return;
    char hint[256];
    snprintf(hint, sizeof(hint),
             "is the lab running? 'plexus can stats %s' shows the home's counters, "
             "'plexus nodes' which nodes are up",
             st->s->bus);
    fail(st, hint, "%u frame%s not confirmed by the bus home within %u s (%llu of %llu confirmed)",
         st->inflight, st->inflight == 1 ? "" : "s", PX_CAN_CONFIRM_MS / 1000,
         (unsigned long long)st->confirmed, (unsigned long long)st->sent);
}

static void arm_idle(struct stream *st)
{
    uv_timer_start(&st->idle, on_idle, PX_CAN_CONFIRM_MS, 0);
}

static uint32_t pace_wait_ms(struct stream *st)
{
    if (!st->timing)
        return 0;
    uint64_t now = uv_hrtime();
    if (!st->started) {
        st->started = true;
        st->t0_ns = now;
        st->ts0_us = st->next_ts_us;
        return 0;
    }
    uint64_t off_us = st->next_ts_us > st->ts0_us ? st->next_ts_us - st->ts0_us : 0;
    uint64_t due = st->t0_ns + off_us * 1000u;
    if (due <= now)
        return 0;
    uint64_t ms = (due - now + 999999u) / 1000000u;
    return ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

static void pump(struct stream *st)
{
    while (!st->stop && !st->eof && st->inflight < PX_CAN_REPLAY_WINDOW) {
        if (!st->have_next) {
            int r = next_frame(st);
            if (r == 0)
                break;
            if (r < 0) {
                st->eof = true;
                break;
            }
            st->have_next = true;
        }
        uint32_t wait = pace_wait_ms(st);
        if (wait) {
            uv_timer_start(&st->pace, on_pace, wait, 0);
            break;
        }
        px_err err = px_canclient_submit(st->cc, &st->next, st->tag + 1);
        if (err == PX_E_AGAIN)
            break; /* PX_CANCLIENT_WRITABLE calls pump again */
        if (err) {
            fail(st, NULL, "cannot send frame %llu: %s", (unsigned long long)st->next_where,
                 px_strerror(err));
            return;
        }
        st->tag++;
        for (uint32_t i = 0; i < PX_CAN_REPLAY_WINDOW; i++)
            if (!st->win[i].used) {
                st->win[i] = (slot){.used = true, .tag = st->tag, .where = st->next_where};
                break;
            }
        if (st->inflight++ == 0)
            arm_idle(st);
        st->sent++;
        st->have_next = false;
    }
    if (st->eof && !st->inflight)
        st->stop = true;
}

/* What frame `where` was, for messages. */
static void describe(const struct stream *st, uint64_t where, char *buf, size_t cap)
{
    if (st->mode == MODE_SEND)
        snprintf(buf, cap, "frame %llu (%s)", (unsigned long long)where, st->texts[where - 1]);
    else
        snprintf(buf, cap, "%s:%llu", st->in->name, (unsigned long long)where);
}

static void on_own(struct stream *st, const px_canclient_rec *r)
{
    slot *w = NULL;
    for (uint32_t i = 0; i < PX_CAN_REPLAY_WINDOW && !w; i++)
        if (st->win[i].used && st->win[i].tag == r->tag)
            w = &st->win[i];
    if (!w)
        return; /* not ours any more (a duplicate) */
    w->used = false;
    st->inflight--;
    if (r->seq == 0) {
        char what[160];
        describe(st, w->where, what, sizeof(what));
        st->refused++;
        st->rc = PX_EXIT_FAIL;
        note(st, "%s refused by the bus (fault or back-pressure)", what);
    } else {
        st->confirmed++;
    }
    if (st->inflight)
        arm_idle(st);
    else
        uv_timer_stop(&st->idle);
    pump(st);
}

/* ---- dump ---- */

static void print_json(struct stream *st, const px_canclient_rec *r, const char *text)
{
    const px_can_frame *f = &r->frame;
    bool ext = f->can_id & PX_CAN_EFF_FLAG;
    uint32_t id = f->can_id & (ext ? PX_CAN_EFF_MASK : PX_CAN_SFF_MASK);
    printf("{\"seq\":%llu,\"ts\":%llu,\"frame\":\"%s\",\"can_id\":%u,\"id\":%u,\"ext\":%s,"
           "\"len\":%u,\"flags\":%u,\"data\":\"",
           (unsigned long long)r->seq, (unsigned long long)r->ts_ns, text, f->can_id, id,
           ext ? "true" : "false", f->len, f->flags);
    for (unsigned i = 0; !(f->can_id & PX_CAN_RTR_FLAG) && i < f->len; i++)
        printf("%02X", f->data[i]); /* a remote frame's len is its DLC: no data */
    const char *src = NULL;
    if (r->own)
        src = "self";
    for (uint32_t i = 0; !src && i < st->s->n_srcs; i++) {
        const px_can_src *g = &st->s->srcs[i];
        if (g->node == r->node && r->ep >= g->ep_first &&
            r->ep < g->ep_first + PX_CAN_EPS_PER_GUEST)
            src = g->guest;
    }
    printf("\",\"src\":");
    if (src)
        px_cli_json_str(stdout, src);
    else
        printf("null");
    printf(",\"node\":%u,\"ep\":%u}\n", r->node, r->ep);
}

static void on_frame(struct stream *st, const px_canclient_rec *r)
{
    char text[PX_CANFMT_LINE_MAX];
    px_errmsg em = {{0}};
    px_canfmt_log l = {.sec = r->ts_ns / 1000000000u,
                       .usec = (uint32_t)(r->ts_ns % 1000000000u / 1000u),
                       .frame = r->frame};
    snprintf(l.ifname, sizeof(l.ifname), "%s", st->s->bus);
    px_err err = st->json ? px_canfmt_format(&r->frame, false, text, sizeof(text), NULL, &em)
                          : px_canfmt_format_log(&l, text, sizeof(text), NULL, &em);
    if (err) {
        note(st, "frame %llu cannot be written: %s", (unsigned long long)r->seq, em.text);
        return;
    }
    if (st->json)
        print_json(st, r, text);
    else
        printf("%s\n", text);
    fflush(stdout);
    st->printed++;
    if (st->idle_ms)
        uv_timer_start(&st->idle, on_idle, st->idle_ms, 0);
    if (st->count && st->printed == st->count)
        st->stop = true;
}

/* ---- client callbacks ---- */

static void on_rec(px_canclient *cc, const px_canclient_rec *r, void *ud)
{
    (void)cc;
    struct stream *st = ud;
    if (st->stop)
        return;
    if (st->mode == MODE_DUMP) {
        if (r->seq != 0)
            on_frame(st, r);
    } else if (r->own || r->seq == 0) {
        on_own(st, r); /* a refusal (sequence 0) goes to its sender only */
    }
}

static void on_lost(px_canclient *cc, uint64_t n, uint64_t next, void *ud)
{
    (void)cc;
    struct stream *st = ud;
    if (st->mode == MODE_DUMP)
        note(st, "lost %llu frames before sequence %llu", (unsigned long long)n,
             (unsigned long long)next);
}

static void on_event(px_canclient *cc, px_canclient_event ev, void *ud)
{
    (void)cc;
    struct stream *st = ud;
    switch (ev) {
    case PX_CANCLIENT_AUTH_FAILED: {
        char hint[128];
        snprintf(hint, sizeof(hint),
                 "the home admits tools after 'open'; try again, or see "
                 "'plexus can stats %s'",
                 st->s->bus);
        st->auth_failed = true;
        fail(st, hint, "the bus home at %s refused this CLI's key %.8s...", st->s->ep,
             st->s->key.public_z85);
        break;
    }
    case PX_CANCLIENT_DISCONNECTED:
        if (!st->told_disconnect)
            note(st, "connection to the bus home at %s lost; reconnecting", st->s->ep);
        st->told_disconnect = true;
        break;
    case PX_CANCLIENT_CONNECTED:
        if (st->told_disconnect)
            note(st, "connected to the bus home again");
        st->told_disconnect = false;
        st->connected = true;
        break;
    case PX_CANCLIENT_RESET:
        note(st, "the bus home started the bus afresh (sequence back to 1)");
        break;
    case PX_CANCLIENT_WRITABLE:
        pump(st);
        break;
    }
}

static void on_signal(uv_signal_t *h, int signum)
{
    (void)signum;
    struct stream *st = h->data;
    st->interrupted = true;
    st->stop = true;
}

/* ---- life cycle ---- */

static int stream_open(struct stream *st)
{
    uv_loop_init(&st->loop);
    px_errmsg em = {{0}};
    px_transport_opts to = {.self = st->s->key};
    if (px_transport_new(&st->loop, &to, &st->tp, &em) != PX_OK) {
        uv_loop_close(&st->loop);
        return px_cli_fail(st->s->cli, st->s->cmd, NULL, "%s", em.text);
    }
    px_canclient_opts co = {.loop = &st->loop,
                            .tp = st->tp,
                            .self_key = st->s->key.public_z85,
                            .endpoint = st->s->ep,
                            .server_key = st->s->server_key,
                            .lab = st->s->lab,
                            .bus = st->s->bus,
                            .on_rec = on_rec,
                            .on_lost = on_lost,
                            .on_event = on_event,
                            .ud = st};
    if (px_canclient_open(&co, &st->cc, &em) != PX_OK) {
        px_transport_free(st->tp);
        uv_run(&st->loop, UV_RUN_DEFAULT);
        uv_loop_close(&st->loop);
        return px_cli_fail(st->s->cli, st->s->cmd, NULL, "%s", em.text);
    }
    uv_timer_init(&st->loop, &st->idle);
    uv_timer_init(&st->loop, &st->pace);
    st->idle.data = st->pace.data = st;
    uv_signal_init(&st->loop, &st->sigint);
    uv_signal_init(&st->loop, &st->sigterm);
    st->sigint.data = st->sigterm.data = st;
    uv_signal_start(&st->sigint, on_signal, SIGINT);
    uv_signal_start(&st->sigterm, on_signal, SIGTERM);
    return PX_EXIT_OK;
}

static void set_true(void *ud)
{
    *(bool *)ud = true;
}

static void stream_run(struct stream *st)
{
    while (!st->stop)
        uv_run(&st->loop, UV_RUN_ONCE);
}

static void stream_close(struct stream *st)
{
    bool done = false;
    px_canclient_close(st->cc, set_true, &done);
    uv_close((uv_handle_t *)&st->idle, NULL);
    uv_close((uv_handle_t *)&st->pace, NULL);
    uv_close((uv_handle_t *)&st->sigint, NULL);
    uv_close((uv_handle_t *)&st->sigterm, NULL);
    if (st->in && !st->in->regular)
        uv_close((uv_handle_t *)&st->in->poll, NULL);
    while (!done)
        uv_run(&st->loop, UV_RUN_ONCE);
    px_transport_free(st->tp);
    uv_run(&st->loop, UV_RUN_DEFAULT);
    uv_loop_close(&st->loop);
}

/* The end of send and replay: what was confirmed, what was not. */
static int feeder_result(struct stream *st)
{
    if (st->interrupted) {
        note(st, "interrupted: %llu of %llu frames sent confirmed",
             (unsigned long long)st->confirmed, (unsigned long long)st->sent);
        return PX_EXIT_FAIL;
    }
    if (st->refused)
        note(st, "%llu of %llu frames refused by the bus; 'plexus can stats %s' shows why",
             (unsigned long long)st->refused, (unsigned long long)st->sent, st->s->bus);
    return st->rc;
}

int px_can_send(const px_can_session *s, const px_can_frame *frames, char *const *texts, uint32_t n)
{
    struct stream *st = calloc(1, sizeof(*st));
    if (!st)
        return px_cli_fail(s->cli, s->cmd, NULL, "out of memory");
    *st =
        (struct stream){.s = s, .mode = MODE_SEND, .frames = frames, .texts = texts, .n_frames = n};
    int rc = stream_open(st);
    if (rc) {
        free(st);
        return rc;
    }
    pump(st);
    stream_run(st);
    rc = feeder_result(st);
    stream_close(st);
    free(st);
    return rc;
}

int px_can_replay(const px_can_session *s, const char *file, bool timing)
{
    struct stream *st = calloc(1, sizeof(*st));
    reader *in = calloc(1, sizeof(*in));
    if (!st || !in) {
        free(st);
        free(in);
        return px_cli_fail(s->cli, s->cmd, NULL, "out of memory");
    }
    *st = (struct stream){.s = s, .mode = MODE_REPLAY, .in = in, .timing = timing};
    bool std_in = strcmp(file, "-") == 0;
    in->name = std_in ? "stdin" : file;
    in->fd = std_in ? 0 : open(file, O_RDONLY | O_CLOEXEC);
    if (in->fd < 0) {
        int e = errno;
        free(st);
        free(in);
        return px_cli_fail(s->cli, s->cmd, NULL, "cannot open %s: %s", file, strerror(e));
    }
    struct stat sb;
    in->regular = fstat(in->fd, &sb) == 0 && S_ISREG(sb.st_mode);
    int rc = stream_open(st);
    if (!rc && !in->regular) {
        in->poll.data = st;
        if (uv_poll_init(&st->loop, &in->poll, in->fd) != 0) {
            /* Not pollable (e.g. /dev/null): read it as a file. */
            in->regular = true;
        } else {
            uv_poll_start(&in->poll, UV_READABLE, on_readable);
            in->polling = true;
        }
    }
    if (!rc) {
        pump(st);
        stream_run(st);
        rc = feeder_result(st);
        stream_close(st);
    }
    if (!std_in)
        close(in->fd);
    free(in);
    free(st);
    return rc;
}

/* dump waits for frames as long as it is told to: say so when it cannot
 * even reach the home. */
static void on_no_connection(uv_timer_t *t)
{
    struct stream *st = t->data;
    if (!st->connected)
        note(st,
             "no connection to the bus home at %s yet; still trying (are the nodes up? "
             "'plexus nodes')",
             st->s->ep);
}

int px_can_dump(const px_can_session *s, uint64_t count, uint32_t idle_ms, bool json)
{
    struct stream *st = calloc(1, sizeof(*st));
    if (!st)
        return px_cli_fail(s->cli, s->cmd, NULL, "out of memory");
    *st = (struct stream){
        .s = s, .mode = MODE_DUMP, .count = count, .idle_ms = idle_ms, .json = json};
    int rc = stream_open(st);
    if (rc) {
        free(st);
        return rc;
    }
    if (idle_ms)
        uv_timer_start(&st->idle, on_idle, idle_ms, 0);
    uv_timer_start(&st->pace, on_no_connection, PX_CAN_CONFIRM_MS, 0);
    stream_run(st);
    px_canclient_stats cs;
    px_canclient_stats_get(st->cc, &cs);
    if (cs.lost)
        note(st, "lost %llu frames in all (%llu printed)", (unsigned long long)cs.lost,
             (unsigned long long)st->printed);
    if (cs.bad)
        note(st, "%llu messages from the bus home were malformed or not for this bus (ignored)",
             (unsigned long long)cs.bad);
    rc = st->rc;
    stream_close(st);
    free(st);
    return rc;
}
