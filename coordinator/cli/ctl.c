/* plexus CLI — coordinator sessions. See ctl.h. */
#include "ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "fabric/core/fsutil.h"

struct px_ctl {
    uv_loop_t loop;
    uv_timer_t timer;
    px_transport *tp;
    px_chan *ch;
    px_ctl_target t;
    px_wbuf out;
    uint64_t seq;
    /* the request in flight */
    uint64_t want_seq;
    uint32_t want_type; /* PX_MSG_REPLY or PX_MSG_TOOL_REPLY */
    bool done, timed_out, auth_failed;
    px_err err;
    px_errmsg em;
    px_ctl_reply *reply;
};

static void on_recv(px_chan *ch, const px_peer *from, const uint8_t *data, size_t len, void *ud)
{
    (void)ch;
    (void)from;
    px_ctl *c = ud;
    size_t off = 0;
    while (off < len && !c->done) {
        size_t used;
        px_msg *m = malloc(sizeof(*m));
        uint8_t *copy = malloc(len - off);
        if (!m || !copy) {
            free(m);
            free(copy);
            c->err = PX_E_NOMEM;
            c->done = true;
            return;
        }
        memcpy(copy, data + off, len - off);
        px_err err = px_wire_decode(copy, len - off, &used, m, &c->em);
        if (err) {
            free(m);
            free(copy);
            c->err = err;
            c->done = true;
            return;
        }
        off += used;
        if (m->env.seq != c->want_seq ||
            (m->env.type != c->want_type && m->env.type != PX_MSG_ERROR)) {
            free(m);
            free(copy);
            continue; /* the HELLO answer, or a late reply */
        }
        c->done = true;
        if (m->env.type == PX_MSG_ERROR) {
            c->err = (px_err)m->body.error.code;
            px_errmsg_set(&c->em, c->err, "coordinator: %.*s", (int)m->body.error.message.len,
                          m->body.error.message.ptr);
            free(m);
            free(copy);
            return;
        }
        /* A tool's reply is returned whatever its code: the nodes that
         * answered are worth printing next to the one that failed. */
        if (m->env.type == PX_MSG_REPLY && m->body.reply.code != PX_OK) {
            c->err = (px_err)m->body.reply.code;
            px_errmsg_set(&c->em, c->err, "%.*s", (int)m->body.reply.message.len,
                          m->body.reply.message.ptr);
            free(m);
            free(copy);
            return;
        }
        c->reply->buf = copy;
        c->reply->msg = m;
        c->err = PX_OK;
    }
}

static void on_event(px_chan *ch, px_chan_event ev, void *ud)
{
    (void)ch;
    px_ctl *c = ud;
    if (ev == PX_CHAN_EV_AUTH_FAILED)
        c->auth_failed = true;
}

static void on_timer(uv_timer_t *t)
{
    px_ctl *c = t->data;
    c->timed_out = true;
}

static px_err send_msg(px_ctl *c, px_msg *m)
{
    px_errmsg em;
    m->env.seq = ++c->seq;
    px_wbuf_reset(&c->out);
    px_err err = px_wire_encode(&c->out, m, &em);
    if (err)
        return err;
    return px_chan_send(c->ch, NULL, c->out.data, c->out.len);
}

px_err px_ctl_open(const px_ctl_target *t, px_ctl **out, px_errmsg *em)
{
    px_ctl *c = calloc(1, sizeof(*c));
    if (!c)
        return PX_E_NOMEM;
    c->t = *t;
    uv_loop_init(&c->loop);
    uv_timer_init(&c->loop, &c->timer);
    c->timer.data = c;
    px_transport_opts to = {.self = t->key};
    px_err err = px_transport_new(&c->loop, &to, &c->tp, em);
    if (err)
        goto fail;
    px_chan_opts co = {.role = PX_CHAN_CLIENT,
                       .endpoint = t->endpoint,
                       .server_key = t->server_key,
                       /* control messages carry whole topologies */
                       .batch_bytes = PX_WIRE_MAX_MSG + 4096,
                       .queue_bytes = 4 * PX_WIRE_MAX_MSG,
                       .policy = PX_QUEUE_BACKPRESSURE,
                       .on_recv = on_recv,
                       .on_event = on_event,
                       .ud = c};
    err = px_chan_open(c->tp, &co, &c->ch, em);
    if (err) {
        px_transport_free(c->tp);
        goto fail;
    }
    px_msg m;
    memset(&m, 0, sizeof(m.env) + sizeof(m.body.hello));
    m.env.type = PX_MSG_HELLO;
    m.body.hello = (px_msg_hello){.proto_min = PX_WIRE_VERSION,
                                  .proto_max = PX_WIRE_VERSION,
                                  .role = px_str_c("cli"),
                                  .name = px_str_c("plexus")};
    send_msg(c, &m);
    *out = c;
    return PX_OK;
fail:
    uv_close((uv_handle_t *)&c->timer, NULL);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    uv_loop_close(&c->loop);
    free(c);
    return err;
}

/* Send m (a REQUEST or TOOL) and wait for the answer of type want. */
static px_err exchange(px_ctl *c, px_msg *m, uint32_t want, uint32_t timeout_ms, px_ctl_reply *out,
                       px_errmsg *em)
{
    memset(out, 0, sizeof(*out));
    px_err err = send_msg(c, m);
    c->want_seq = m->env.seq;
    c->want_type = want;
    free(m);
    if (err)
        return px_errmsg_set(em, err, "cannot queue the request: %s", px_strerror(err));
    c->done = c->timed_out = false;
    c->reply = out;
    c->err = PX_OK;
    uv_timer_start(&c->timer, on_timer, timeout_ms, 0);
    while (!c->done && !c->timed_out && !c->auth_failed)
        uv_run(&c->loop, UV_RUN_ONCE);
    uv_timer_stop(&c->timer);
    if (c->done) {
        if (c->err && em)
            *em = c->em;
        return c->err;
    }
    if (c->auth_failed)
        return px_errmsg_set(em, PX_E_AUTH,
                             "the coordinator at %s refused this CLI's key %s; authorise it "
                             "there with 'plexus keys authorize %s'",
                             c->t.endpoint, c->t.key.public_z85, c->t.key.public_z85);
    return px_errmsg_set(em, PX_E_TIMEOUT,
                         "no answer from the coordinator at %s within %u ms; is it running "
                         "(and is its public key %.8s... right)?",
                         c->t.endpoint, timeout_ms, c->t.server_key);
}

px_err px_ctl_request(px_ctl *c, const px_msg_request *rq, uint32_t timeout_ms, px_ctl_reply *out,
                      px_errmsg *em)
{
    px_msg *m = malloc(sizeof(*m));
    if (!m) {
        memset(out, 0, sizeof(*out));
        return PX_E_NOMEM;
    }
    memset(m, 0, sizeof(m->env) + sizeof(m->body.request));
    m->env.type = PX_MSG_REQUEST;
    m->body.request = *rq;
    return exchange(c, m, PX_MSG_REPLY, timeout_ms, out, em);
}

px_err px_ctl_tool(px_ctl *c, const px_msg_tool *t, uint32_t timeout_ms, px_ctl_reply *out,
                   px_errmsg *em)
{
    px_msg *m = malloc(sizeof(*m));
    if (!m) {
        memset(out, 0, sizeof(*out));
        return PX_E_NOMEM;
    }
    memset(m, 0, sizeof(m->env) + sizeof(m->body.tool));
    m->env.type = PX_MSG_TOOL;
    m->body.tool = *t;
    return exchange(c, m, PX_MSG_TOOL_REPLY, timeout_ms, out, em);
}

void px_ctl_reply_fini(px_ctl_reply *r)
{
    free(r->buf);
    free(r->msg);
    memset(r, 0, sizeof(*r));
}

static void chan_closed(px_chan *ch, void *ud)
{
    (void)ch;
    px_ctl *c = ud;
    px_transport_free(c->tp);
    c->tp = NULL;
}

void px_ctl_close(px_ctl *c)
{
    if (!c)
        return;
    px_chan_close(c->ch, chan_closed, c);
    uv_close((uv_handle_t *)&c->timer, NULL);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    uv_loop_close(&c->loop);
    px_wbuf_fini(&c->out);
    free(c);
}

px_err px_ctl_target_from_env(const char *endpoint, const char *server_key, const char *key_file,
                              px_ctl_target *t, px_errmsg *em)
{
    memset(t, 0, sizeof(*t));
    if (!endpoint)
        endpoint = getenv("PLEXUS_COORDINATOR");
    if (!server_key)
        server_key = getenv("PLEXUS_COORDINATOR_KEY");
    if (!key_file)
        key_file = getenv("PLEXUS_KEY");
    if (!endpoint || !*endpoint)
        return PX_E_NOTFOUND;
    snprintf(t->endpoint, sizeof(t->endpoint), "%s", endpoint);
    if (!server_key || !*server_key)
        return px_errmsg_set(em, PX_E_CONFIG,
                             "no coordinator key: give --coordinator-key KEY or set "
                             "PLEXUS_COORDINATOR_KEY (plexus keys show coordinator prints it)");
    if (px_key_valid(server_key)) {
        snprintf(t->server_key, sizeof(t->server_key), "%s", server_key);
    } else {
        px_keypair kp;
        px_err err = px_keypair_load(server_key, &kp, em);
        if (err)
            return err;
        snprintf(t->server_key, sizeof(t->server_key), "%s", kp.public_z85);
    }
    char def[4096];
    if (!key_file || !*key_file) {
        const char *home = getenv("HOME");
        const char *dir = getenv("PLEXUS_KEYS");
        if (dir && *dir)
            snprintf(def, sizeof(def), "%s/cli.key", dir);
        else
            snprintf(def, sizeof(def), "%s/.config/plexus/keys/cli.key", home ? home : "/root");
        key_file = def;
    }
    px_err err = px_keypair_load(key_file, &t->key, em);
    if (err)
        px_errmsg_prefix(em, "CLI key (create one with 'plexus keys create cli')");
    return err;
}
