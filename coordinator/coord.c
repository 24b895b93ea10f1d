/* plexus-coordinator: channel, dispatch, node registry, liveness tick. */
#include "coord.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fabric/core/fsutil.h"
#include "fabric/core/log.h"

#define TICK_MS 250u

uint64_t px_coord_now_ms(const px_coord *c)
{
    return uv_now(c->loop);
}

static bool peer_eq(const px_peer *a, const px_peer *b)
{
    return a->id_len == b->id_len && memcmp(a->id, b->id, a->id_len) == 0;
}

px_cnode *px_coord_node(px_coord *c, const char *name)
{
    for (uint32_t i = 0; i < c->n_nodes; i++)
        if (strcmp(c->nodes[i].name, name) == 0)
            return &c->nodes[i];
    return NULL;
}

static px_cnode *node_by_peer(px_coord *c, const px_peer *p)
{
    for (uint32_t i = 0; i < c->n_nodes; i++)
        if (c->nodes[i].state != PX_NODE_UNKNOWN && peer_eq(&c->nodes[i].peer, p) &&
            strcmp(c->nodes[i].key, p->key_z85) == 0)
            return &c->nodes[i];
    return NULL;
}

static bool said_hello(const px_coord *c, const px_peer *p)
{
    for (uint32_t i = 0; i < c->n_hello; i++)
        if (peer_eq(&c->hello[i], p))
            return true;
    return false;
}

static void remember_hello(px_coord *c, const px_peer *p)
{
    if (said_hello(c, p))
        return;
    c->hello[c->hello_next] = *p;
    c->hello_next = (c->hello_next + 1) % PX_COORD_MAX_PEERS;
    if (c->n_hello < PX_COORD_MAX_PEERS)
        c->n_hello++;
}

void px_coord_send(px_coord *c, const px_peer *to, px_msg *msg)
{
    px_errmsg em = {{0}};
    msg->env.sender = 0;
    if (!msg->env.seq)
        msg->env.seq = ++c->seq;
    px_wbuf_reset(&c->out);
    px_err err = px_wire_encode(&c->out, msg, &em);
    if (err) {
        PX_ERROR("coord", "cannot encode message", "type=%s err=%s detail=\"%s\"",
                 px_msg_type_name(msg->env.type), px_errname(err), em.text);
        return;
    }
    err = px_chan_send(c->ch, to, c->out.data, c->out.len);
    if (err)
        PX_WARN("coord", "send failed", "type=%s err=%s", px_msg_type_name(msg->env.type),
                px_errname(err));
}

static void send_error(px_coord *c, const px_peer *to, px_err code, uint64_t re, const char *text)
{
    px_msg *m = c->scratch;
    memset(m, 0, sizeof(m->env) + sizeof(m->body.error));
    m->env.type = PX_MSG_ERROR;
    m->body.error.code = code;
    m->body.error.message = px_str_c(text);
    m->body.error.in_reply_to = re;
    px_coord_send(c, to, m);
}

static void on_hello(px_coord *c, const px_peer *from, const px_msg *m)
{
    const px_msg_hello *h = &m->body.hello;
    if (h->proto_min > PX_WIRE_VERSION || h->proto_max < PX_WIRE_VERSION) {
        char text[160];
        snprintf(text, sizeof(text), "protocol %u..%u not supported; this coordinator speaks %u",
                 h->proto_min, h->proto_max, PX_WIRE_VERSION);
        send_error(c, from, PX_E_VERSION, m->env.seq, text);
        return;
    }
    remember_hello(c, from);
    px_msg *r = c->scratch;
    memset(r, 0, sizeof(r->env) + sizeof(r->body.hello));
    r->env.type = PX_MSG_HELLO;
    r->env.seq = m->env.seq;
    r->body.hello = (px_msg_hello){.proto_min = PX_WIRE_VERSION,
                                   .proto_max = PX_WIRE_VERSION,
                                   .role = px_str_c("coordinator"),
                                   .name = px_str_c("coordinator")};
    px_coord_send(c, from, r);
}

static void on_register(px_coord *c, const px_peer *from, const px_msg *m)
{
    const px_msg_register *rg = &m->body.reg;
    char name[PX_NAME];
    px_str_copy(name, sizeof(name), rg->name);
    px_cnode *n = px_coord_node(c, name);
    if (n && n->key[0] && strcmp(n->key, from->key_z85) != 0) {
        char text[256];
        snprintf(text, sizeof(text),
                 "node name %s is registered with another key; pick another --name or remove "
                 "the old node's state",
                 name);
        PX_WARN("coord", "registration refused", "node=%s reason=key-mismatch", name);
        send_error(c, from, PX_E_AUTH, m->env.seq, text);
        return;
    }
    if (!n) {
        if (c->n_nodes == PX_COORD_MAX_NODES) {
            send_error(c, from, PX_E_TOOBIG, m->env.seq, "too many nodes");
            return;
        }
        n = &c->nodes[c->n_nodes++];
        memset(n, 0, sizeof(*n));
        snprintf(n->name, sizeof(n->name), "%s", name);
        n->id = ++c->next_node_id;
    }
    bool was_up = n->state == PX_NODE_UP;
    snprintf(n->key, sizeof(n->key), "%s", from->key_z85);
    n->peer = *from;
    px_str_copy(n->data_ep, sizeof(n->data_ep), rg->data_endpoint);
    px_str_copy(n->data_key, sizeof(n->data_key), rg->data_key);
    n->cpus = rg->cpus;
    n->mem_mb = rg->mem_mb;
    n->n_features = rg->n_features;
    for (uint32_t i = 0; i < rg->n_features; i++)
        px_str_copy(n->features[i], sizeof(n->features[i]), rg->features[i]);
    n->state = PX_NODE_UP;
    n->last_seen_ms = px_coord_now_ms(c);
    PX_INFO("coord", was_up ? "node re-registered" : "node registered",
            "node=%s id=%u cpus=%u mem_mb=%llu data=%s labs=%u", n->name, n->id, n->cpus,
            (unsigned long long)n->mem_mb, n->data_ep, rg->n_labs);

    px_msg *r = c->scratch;
    memset(r, 0, sizeof(r->env) + sizeof(r->body.registered));
    r->env.type = PX_MSG_REGISTERED;
    r->env.seq = m->env.seq;
    r->body.registered.node_id = n->id;
    r->body.registered.heartbeat_ms = c->opts.heartbeat_ms;
    px_coord_send(c, from, r);
    px_lab_on_register(c, n, rg);
    px_journal_save(c);
}

static void on_request(px_coord *c, const px_peer *from, const px_msg *m)
{
    /* Its own message: handling the request sends plans through c->scratch.
     * The request's strings live in the receive buffer, valid during this
     * callback: the whole reply is built and sent before returning. */
    px_msg *r = malloc(sizeof(*r));
    if (!r)
        return;
    memset(r, 0, sizeof(r->env) + sizeof(r->body.reply));
    px_lab_request(c, &m->body.request, &r->body.reply);
    r->env.type = PX_MSG_REPLY;
    r->env.seq = m->env.seq;
    px_coord_send(c, from, r);
    free(r);
}

static void dispatch(px_coord *c, const px_peer *from, const px_msg *m)
{
    if (m->env.type == PX_MSG_HELLO) {
        on_hello(c, from, m);
        return;
    }
    if (!said_hello(c, from)) {
        send_error(c, from, PX_E_PROTO, m->env.seq, "send HELLO first");
        return;
    }
    px_cnode *n;
    switch (m->env.type) {
    case PX_MSG_REGISTER:
        on_register(c, from, m);
        break;
    case PX_MSG_HEARTBEAT:
        if ((n = node_by_peer(c, from))) {
            n->last_seen_ms = px_coord_now_ms(c);
            n->n_guests = m->body.heartbeat.n_guests;
            n->links_up = m->body.heartbeat.links_up;
            n->links_total = m->body.heartbeat.links_total;
            n->rtt_us = m->body.heartbeat.rtt_us;
            if (n->state == PX_NODE_LOST) {
                /* Back from the dead without re-registering: make it say
                 * what it runs before it gets work again. */
                send_error(c, from, PX_E_NOTFOUND, m->env.seq, "register again");
            }
        } else {
            send_error(c, from, PX_E_NOTFOUND, m->env.seq, "unknown node; register first");
        }
        break;
    case PX_MSG_STATUS:
        if ((n = node_by_peer(c, from)) && n->state == PX_NODE_UP) {
            n->last_seen_ms = px_coord_now_ms(c);
            px_lab_on_status(c, n, &m->body.status);
        }
        break;
    case PX_MSG_REQUEST:
        on_request(c, from, m);
        break;
    case PX_MSG_TOOL:
        if (!px_cxl_tool(c, from, m)) /* the FM API is the coordinator's own */
            px_tool_on_request(c, from, m);
        break;
    case PX_MSG_TOOL_REPLY:
        /* Only the nodes a relay asked may answer it: a CLI cannot. */
        if ((n = node_by_peer(c, from)) && n->state == PX_NODE_UP)
            px_tool_on_reply(c, n, &m->body.tool_reply);
        else
            send_error(c, from, PX_E_PROTO, m->env.seq,
                       "TOOL_REPLY from a peer that is not a node");
        break;
    case PX_MSG_ERROR:
        PX_WARN("coord", "peer reported an error", "code=%d msg=\"%.*s\"", m->body.error.code,
                (int)m->body.error.message.len, m->body.error.message.ptr);
        break;
    default:
        send_error(c, from, PX_E_UNKNOWN, m->env.seq, "message type not handled by coordinator");
    }
}

static void on_recv(px_chan *ch, const px_peer *from, const uint8_t *data, size_t len, void *ud)
{
    (void)ch;
    px_coord *c = ud;
    size_t off = 0;
    while (off < len) {
        size_t used = 0;
        px_errmsg em = {{0}};
        /* Decode into a private message: dispatch reuses c->scratch for replies. */
        px_msg *m = malloc(sizeof(*m));
        if (!m)
            return;
        px_err err = px_wire_decode(data + off, len - off, &used, m, &em);
        if (err) {
            PX_WARN("coord", "bad message dropped", "peer_key=%.8s err=%s detail=\"%s\"",
                    from->key_z85, px_errname(err), em.text);
            free(m);
            send_error(c, from, err, 0, em.text);
            return; /* the rest of the batch cannot be delimited */
        }
        dispatch(c, from, m);
        free(m);
        off += used;
    }
}

static void tick(uv_timer_t *t)
{
    px_coord *c = t->data;
    uint64_t now = px_coord_now_ms(c);
    uint64_t limit = (uint64_t)c->opts.heartbeat_ms * PX_LOST_AFTER;
    bool changed = false;
    for (uint32_t i = 0; i < c->n_nodes; i++) {
        px_cnode *n = &c->nodes[i];
        /* After a restart, nodes get twice as long: they must notice the
         * dropped connection and reconnect with back-off first. */
        uint64_t since = n->state == PX_NODE_UNKNOWN ? c->start_ms : n->last_seen_ms;
        bool silent = now - since > (n->state == PX_NODE_UNKNOWN ? 2 * limit : limit);
        if (n->state != PX_NODE_LOST && silent) {
            PX_WARN("coord", "node lost", "node=%s silent_ms=%llu", n->name,
                    (unsigned long long)(now - since));
            n->state = PX_NODE_LOST;
            px_lab_on_node_lost(c, n);
            changed = true;
        }
    }
    px_lab_reconcile(c);
    px_tool_tick(c);
    if (changed)
        px_journal_save(c);
}

px_err px_coord_start(px_coord *c, uv_loop_t *loop, const px_coord_opts *opts, px_errmsg *em)
{
    memset(c, 0, sizeof(*c));
    c->loop = loop;
    c->opts = *opts;
    if (!c->opts.heartbeat_ms)
        c->opts.heartbeat_ms = 1000;
    c->start_ms = uv_now(loop);
    c->scratch = malloc(sizeof(px_msg));
    if (!c->scratch)
        return PX_E_NOMEM;
    px_err err = px_mkdir_p(opts->state_dir, 0700, em);
    if (err)
        goto fail_scratch;
    snprintf(c->journal_path, sizeof(c->journal_path), "%s/coordinator.json", opts->state_dir);
    err = px_journal_load(c, em);
    if (err)
        goto fail_labs;

    px_transport_opts to = {.self = opts->key, .allow = opts->allow, .n_allow = opts->n_allow};
    err = px_transport_new(loop, &to, &c->tp, em);
    if (err)
        goto fail_labs;
    /* A coordinator restarted with a wildcard port takes the port it had, so
     * nodes reconnecting to the old address find it again. */
    char epfile[4200], prev_ep[256] = "";
    snprintf(epfile, sizeof(epfile), "%s/endpoint", opts->state_dir);
    const char *listen = opts->listen;
    size_t ll = strlen(listen);
    char *prev = NULL;
    if (ll > 2 && strcmp(listen + ll - 2, ":*") == 0 &&
        px_read_file(epfile, sizeof(prev_ep) - 1, &prev, NULL, NULL) == PX_OK) {
        if (strncmp(prev, listen, ll - 1) == 0)
            snprintf(prev_ep, sizeof(prev_ep), "%s", prev);
        free(prev);
    }
    px_chan_opts co = {.role = PX_CHAN_SERVER,
                       .endpoint = prev_ep[0] ? prev_ep : listen,
                       /* control messages carry whole topologies */
                       .batch_bytes = PX_WIRE_MAX_MSG + 4096,
                       .queue_bytes = 4 * PX_WIRE_MAX_MSG,
                       .policy = PX_QUEUE_DROP,
                       .on_recv = on_recv,
                       .ud = c};
    err = px_chan_open(c->tp, &co, &c->ch, em);
    if (err && prev_ep[0]) {
        PX_WARN("coord", "previous endpoint is taken; binding a new port", "endpoint=%s", prev_ep);
        co.endpoint = listen;
        err = px_chan_open(c->tp, &co, &c->ch, em);
    }
    if (err)
        goto fail_tp;
    /* Tools (local mode, scripts) find a wildcard-bound coordinator here. */
    const char *ep = px_chan_endpoint(c->ch);
    err = px_write_file_atomic(epfile, ep, strlen(ep), 0600, em);
    if (err)
        goto fail_chan;
    uv_timer_init(loop, &c->tick);
    c->tick.data = c;
    uv_timer_start(&c->tick, tick, TICK_MS, TICK_MS);
    PX_INFO("coord", "listening", "endpoint=%s key=%s labs=%u nodes=%u", px_chan_endpoint(c->ch),
            opts->key.public_z85, c->n_labs, c->n_nodes);
    return PX_OK;

fail_chan:
    px_chan_close(c->ch, NULL, NULL);
    uv_run(loop, UV_RUN_DEFAULT); /* start-up: only the channel's handles are on the loop */
fail_tp:
    px_transport_free(c->tp);
    c->tp = NULL;
fail_labs:
    for (uint32_t i = 0; i < c->n_labs; i++)
        px_lab_free(c->labs[i]);
    c->n_labs = 0;
fail_scratch:
    free(c->scratch);
    c->scratch = NULL;
    return err;
}

static void chan_closed(px_chan *ch, void *ud)
{
    (void)ch;
    px_coord *c = ud;
    c->ch = NULL;
    px_transport_free(c->tp);
    c->tp = NULL;
}

void px_coord_stop(px_coord *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_timer_stop(&c->tick);
    uv_close((uv_handle_t *)&c->tick, NULL);
    if (c->ch)
        px_chan_close(c->ch, chan_closed, c);
}

void px_coord_fini(px_coord *c)
{
    px_tool_fini(c);
    for (uint32_t i = 0; i < c->n_labs; i++)
        px_lab_free(c->labs[i]);
    c->n_labs = 0;
    px_wbuf_fini(&c->out);
    free(c->scratch);
    c->scratch = NULL;
}
