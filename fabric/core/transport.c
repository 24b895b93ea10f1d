/* plexus — the transport object: ZeroMQ context, allow-list and the ZAP
 * handler that enforces it (contract in transport.h; the module's layout is
 * in transport_int.h).
 *
 * ZAP (ZeroMQ RFC 27) is how libzmq asks "may this peer in?": during every
 * CURVE handshake on a SERVER socket it sends a request to the REP socket
 * bound at inproc://zeromq.zap.01 in the same context and waits for the
 * answer. We serve that socket from the caller's loop like any other, so the
 * allow-list needs no lock and a key allowed or revoked on the loop applies to
 * the very next handshake. Without a handler libzmq 4.3 admits every CURVE
 * client, so the handler is bound before any channel exists.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "transport_int.h"

#define ZAP_ENDPOINT   "inproc://zeromq.zap.01"
#define ZAP_MAX_FRAMES 8

/* ---- helpers shared by the module ---- */

px_err tp_zerr(void)
{
    int e = zmq_errno();
    if (e == ETERM)
        return PX_E_CLOSED;
    if (e == EHOSTUNREACH)
        return PX_E_NOTFOUND;
    return px_err_from_errno(e);
}

/* Log a repeated condition at counts 1, 2, 4, 8, ...: a hostile peer can make
 * it happen at line rate, and the log must stay readable. */
bool tp_log_this_one(uint64_t count)
{
    return count != 0 && (count & (count - 1)) == 0;
}

/* Routing ids are arbitrary bytes: show printable ones as they are. */
const char *tp_id_str(const uint8_t *id, size_t len, char *buf, size_t n)
{
    bool printable = len > 0;
    for (size_t i = 0; i < len; i++)
        if (id[i] < 0x20 || id[i] > 0x7e)
            printable = false;
    if (printable) {
        snprintf(buf, n, "%.*s", (int)len, (const char *)id);
        return buf;
    }
    size_t o = 0;
    o += (size_t)snprintf(buf, n, "0x");
    for (size_t i = 0; i < len && o + 3 < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%02x", id[i]);
    return buf;
}

/* ---- allow-list ---- */

static int key_cmp(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static bool allow_has(const px_transport *t, const char *key)
{
    return t->n_allow > 0 &&
           bsearch(key, t->allow, t->n_allow, sizeof(t->allow[0]), key_cmp) != NULL;
}

px_err px_transport_allow(px_transport *t, const char *key_z85)
{
    if (!px_key_valid(key_z85))
        return PX_E_INVAL;
    if (allow_has(t, key_z85))
        return PX_OK;
    if (t->n_allow >= PX_TRANSPORT_MAX_ALLOW)
        return PX_E_TOOBIG;
    if (t->n_allow == t->cap_allow) {
        size_t cap = t->cap_allow ? t->cap_allow * 2 : 16;
        if (cap > PX_TRANSPORT_MAX_ALLOW)
            cap = PX_TRANSPORT_MAX_ALLOW;
        void *p = realloc(t->allow, cap * sizeof(t->allow[0]));
        if (!p)
            return PX_E_NOMEM;
        t->allow = p;
        t->cap_allow = cap;
    }
    size_t i = 0;
    while (i < t->n_allow && strcmp(t->allow[i], key_z85) < 0)
        i++;
    memmove(&t->allow[i + 1], &t->allow[i], (t->n_allow - i) * sizeof(t->allow[0]));
    memcpy(t->allow[i], key_z85, PX_KEY_Z85_LEN + 1);
    t->n_allow++;
    return PX_OK;
}

px_err px_transport_revoke(px_transport *t, const char *key_z85)
{
    if (!px_key_valid(key_z85))
        return PX_E_INVAL;
    char(*hit)[PX_KEY_Z85_LEN + 1] =
        t->n_allow ? bsearch(key_z85, t->allow, t->n_allow, sizeof(t->allow[0]), key_cmp) : NULL;
    if (!hit)
        return PX_E_NOTFOUND;
    size_t i = (size_t)(hit - t->allow);
    memmove(&t->allow[i], &t->allow[i + 1], (t->n_allow - i - 1) * sizeof(t->allow[0]));
    t->n_allow--;
    return PX_OK;
}

/* ---- ZAP handler ---- */

static bool frame_is(zmq_msg_t *m, const char *s)
{
    size_t n = strlen(s);
    return zmq_msg_size(m) == n && memcmp(zmq_msg_data(m), s, n) == 0;
}

/* Answer one ZAP request (RFC 27). Requests come from libzmq itself, but
 * they describe a remote peer, so every frame is checked, never trusted. */
static void zap_serve_one(px_transport *t)
{
    zmq_msg_t f[ZAP_MAX_FRAMES];
    int n = 0;
    bool more = true, overflow = false;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, t->zap, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            if (n == 0)
                return; /* nothing there after all */
            break;
        }
        more = zmq_msg_more(&m);
        if (n < ZAP_MAX_FRAMES)
            f[n++] = m;
        else {
            overflow = true;
            zmq_msg_close(&m);
        }
    }

    const char *status = "400", *text = "not allowed";
    char user[PX_KEY_Z85_LEN + 1] = "";
    if (overflow || n < 6 || !frame_is(&f[0], "1.0")) {
        status = "500";
        text = "malformed ZAP request";
    } else if (!frame_is(&f[5], "CURVE")) {
        text = "only CURVE clients are admitted";
    } else if (n != 7 || zmq_msg_size(&f[6]) != 32) {
        status = "500";
        text = "malformed CURVE credentials";
    } else {
        char key[PX_KEY_Z85_LEN + 1];
        zmq_z85_encode(key, zmq_msg_data(&f[6]), 32);
        if (allow_has(t, key)) {
            status = "200";
            text = "OK";
            memcpy(user, key, sizeof(user));
        } else {
            text = "key not on the allow-list";
            memcpy(user, key, sizeof(user)); /* for the log line only */
        }
    }
    if (status[0] != '2') {
        t->zap_refused++;
        if (tp_log_this_one(t->zap_refused)) {
            char addr[64] = "?";
            if (n >= 4)
                snprintf(addr, sizeof(addr), "%.*s", (int)zmq_msg_size(&f[3]),
                         (const char *)zmq_msg_data(&f[3]));
            PX_WARN(MOD, "refused a handshake", "reason=\"%s\" key=%s address=%s refused=%llu",
                    text, user[0] ? user : "-", addr, (unsigned long long)t->zap_refused);
        }
        user[0] = '\0';
    }

    /* The reply must carry the request id back; the socket is REP, so it
     * must be sent even for a malformed request or the next recv fails. SNDHWM
     * is unlimited on this socket, so these sends do not fail with EAGAIN. */
    const void *rid = n >= 2 ? zmq_msg_data(&f[1]) : "";
    size_t rid_len = n >= 2 ? zmq_msg_size(&f[1]) : 0;
    int fl = ZMQ_SNDMORE | ZMQ_DONTWAIT;
    if (zmq_send(t->zap, "1.0", 3, fl) < 0 || zmq_send(t->zap, rid, rid_len, fl) < 0 ||
        zmq_send(t->zap, status, 3, fl) < 0 || zmq_send(t->zap, text, strlen(text), fl) < 0 ||
        zmq_send(t->zap, user, strlen(user), fl) < 0 || zmq_send(t->zap, "", 0, ZMQ_DONTWAIT) < 0)
        PX_ERROR(MOD, "cannot answer a ZAP request", "error=\"%s\"", zmq_strerror(zmq_errno()));
    for (int i = 0; i < n; i++)
        zmq_msg_close(&f[i]);
}

static void zap_idle_cb(uv_idle_t *h);

static void zap_pump(px_transport *t)
{
    for (int budget = TP_PUMP_BUDGET;; budget--) {
        int ev = 0;
        size_t sz = sizeof(ev);
        if (zmq_getsockopt(t->zap, ZMQ_EVENTS, &ev, &sz) != 0) {
            PX_ERROR(MOD, "ZAP socket failed", "error=\"%s\"", zmq_strerror(zmq_errno()));
            return;
        }
        if (!(ev & ZMQ_POLLIN))
            return;
        if (budget == 0) {
            uv_idle_start(&t->zap_idle, zap_idle_cb);
            return;
        }
        zap_serve_one(t);
    }
}

static void zap_poll_cb(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    zap_pump(h->data);
}

static void zap_idle_cb(uv_idle_t *h)
{
    uv_idle_stop(h);
    zap_pump(h->data);
}

/* ---- lifecycle ---- */

static void transport_handle_closed(uv_handle_t *h)
{
    px_transport *t = h->data;
    if (--t->open_handles > 0)
        return;
    free(t->allow);
    explicit_bzero(&t->self, sizeof(t->self));
    free(t);
}

px_err px_transport_new(uv_loop_t *loop, const px_transport_opts *opts, px_transport **out,
                        px_errmsg *em)
{
    *out = NULL;
    if (!px_key_valid(opts->self.public_z85) || !px_key_valid(opts->self.secret_z85))
        return px_errmsg_set(em, PX_E_INVAL, "transport: own key pair is missing or malformed");
    if (opts->n_allow > PX_TRANSPORT_MAX_ALLOW)
        return px_errmsg_set(em, PX_E_TOOBIG, "transport: %zu allowed keys, at most %d",
                             opts->n_allow, PX_TRANSPORT_MAX_ALLOW);
    px_err err;
    px_transport *t = calloc(1, sizeof(*t));
    if (!t)
        return px_errmsg_set(em, PX_E_NOMEM, "transport: out of memory");
    t->loop = loop;
    t->self = opts->self;
    for (size_t i = 0; i < opts->n_allow; i++) {
        err = px_transport_allow(t, opts->allow[i]);
        if (err != PX_OK) {
            px_errmsg_set(em, err, "transport: allowed key %zu (\"%.48s\"): %s", i,
                          opts->allow[i] ? opts->allow[i] : "(null)",
                          err == PX_E_INVAL ? "not a 40-character Z85 key" : px_strerror(err));
            goto fail_alloc;
        }
    }

    t->zctx = zmq_ctx_new();
    if (!t->zctx) {
        err = px_errmsg_set(em, tp_zerr(), "transport: cannot create a ZeroMQ context: %s",
                            zmq_strerror(zmq_errno()));
        goto fail_alloc;
    }
    t->zap = zmq_socket(t->zctx, ZMQ_REP);
    if (!t->zap) {
        err = px_errmsg_set(em, tp_zerr(), "transport: cannot create the ZAP socket: %s",
                            zmq_strerror(zmq_errno()));
        goto fail_ctx;
    }
    int zero = 0;
    int fd = -1;
    size_t fdsz = sizeof(fd);
    if (zmq_setsockopt(t->zap, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
        zmq_setsockopt(t->zap, ZMQ_SNDHWM, &zero, sizeof(zero)) != 0 ||
        zmq_bind(t->zap, ZAP_ENDPOINT) != 0 || zmq_getsockopt(t->zap, ZMQ_FD, &fd, &fdsz) != 0) {
        err = px_errmsg_set(em, tp_zerr(), "transport: cannot start the ZAP handler: %s",
                            zmq_strerror(zmq_errno()));
        goto fail_zap;
    }
    int rc = uv_poll_init(loop, &t->zap_poll, fd);
    if (rc != 0) {
        err = px_errmsg_set(em, PX_E_IO, "transport: cannot poll the ZAP socket: %s",
                            uv_strerror(rc));
        goto fail_zap;
    }
    /* From here on nothing fails: handles exist and are only ever closed. */
    uv_idle_init(loop, &t->zap_idle);
    t->zap_poll.data = t;
    t->zap_idle.data = t;
    t->open_handles = 2;
    uv_poll_start(&t->zap_poll, UV_READABLE, zap_poll_cb);
    /* The fd may have been signalled before we polled it. */
    uv_idle_start(&t->zap_idle, zap_idle_cb);
    *out = t;
    return PX_OK;

fail_zap:
    zmq_close(t->zap);
fail_ctx:
    zmq_ctx_term(t->zctx);
fail_alloc:
    free(t->allow);
    explicit_bzero(&t->self, sizeof(t->self));
    free(t);
    return err;
}

px_err px_transport_free(px_transport *t)
{
    if (!t)
        return PX_OK;
    if (t->n_chans > 0)
        return PX_E_INVAL;
    /* Stop polling before the fd's owner (the socket) goes away. */
    uv_close((uv_handle_t *)&t->zap_poll, transport_handle_closed);
    uv_close((uv_handle_t *)&t->zap_idle, transport_handle_closed);
    zmq_close(t->zap);
    zmq_ctx_term(t->zctx); /* every socket is closed: returns at once */
    return PX_OK;
}
