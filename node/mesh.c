/* Data-plane links between nodes. See mesh.h. */
#include "mesh.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fabric/core/log.h"

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void px_mesh_init(px_mesh *m, uv_loop_t *loop, px_transport *tp, const char *self)
{
    memset(m, 0, sizeof(*m));
    m->loop = loop;
    m->tp = tp;
    m->tick_ms = 1000;
    snprintf(m->self, sizeof(m->self), "%s", self);
}

/* An echo came back on a peer's link. */
static void on_client_recv(px_chan *ch, const px_peer *from, const uint8_t *data, size_t len,
                           void *ud)
{
    (void)ch;
    (void)from;
    px_mesh_peer *p = ud;
    size_t off = 0;
    while (off < len) {
        px_msg msg;
        size_t used;
        if (px_wire_decode(data + off, len - off, &used, &msg, NULL) != PX_OK)
            return; /* the peer misbehaves: nothing here is worth more */
        off += used;
        if (msg.env.type != PX_MSG_PROBE)
            continue;
        uint64_t now = mono_ns();
        if (msg.body.probe.t_ns <= now) {
            p->rtt_us = (uint32_t)((now - msg.body.probe.t_ns) / 1000);
            p->last_echo_ms = now / 1000000;
        }
    }
}

static void chan_closed(px_chan *ch, void *ud)
{
    (void)ch;
    px_mesh *m = ud;
    if (--m->closing == 0 && m->closed)
        m->closed(m->closed_ud);
}

static void peer_connect(px_mesh *m, px_mesh_peer *p)
{
    px_errmsg em = {{0}};
    px_chan_opts o = {.role = PX_CHAN_CLIENT,
                      .endpoint = p->endpoint,
                      .server_key = p->key,
                      .policy = PX_QUEUE_DROP,
                      .batch_bytes = PX_DATA_PLANE_BATCH_BYTES,
                      .hwm = PX_DATA_PLANE_HWM,
                      .on_recv = on_client_recv,
                      .ud = p};
    if (px_chan_open(m->tp, &o, &p->ch, &em) != PX_OK) {
        p->ch = NULL;
        PX_WARN("mesh", "cannot open a link", "peer=%s endpoint=%s detail=\"%s\"", p->name,
                p->endpoint, em.text);
        return;
    }
    PX_INFO("mesh", "link opened", "peer=%s endpoint=%s", p->name, p->endpoint);
}

void px_mesh_update(px_mesh *m, const px_plan_peer *peers, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        char name[64], ep[PX_WIRE_MAX_ENDPOINT], key[PX_KEY_Z85_LEN + 1];
        px_str_copy(name, sizeof(name), peers[i].name);
        px_str_copy(ep, sizeof(ep), peers[i].endpoint);
        px_str_copy(key, sizeof(key), peers[i].key);
        if (!strcmp(name, m->self) || !px_key_valid(key) || !ep[0])
            continue;
        px_mesh_peer *p = NULL;
        for (uint32_t k = 0; k < m->n_peers && !p; k++)
            if (!strcmp(m->peers[k]->name, name))
                p = m->peers[k];
        if (p && !strcmp(p->endpoint, ep) && !strcmp(p->key, key))
            continue;
        if (p && p->ch) {
            /* The peer came back with a new address or key: new link. */
            m->closing++;
            px_chan_close(p->ch, chan_closed, m);
            p->ch = NULL;
        }
        if (!p) {
            if (m->n_peers == PX_MESH_MAX_PEERS)
                continue;
            p = calloc(1, sizeof(*p));
            if (!p)
                continue;
            snprintf(p->name, sizeof(p->name), "%s", name);
            m->peers[m->n_peers++] = p;
        }
        snprintf(p->endpoint, sizeof(p->endpoint), "%s", ep);
        snprintf(p->key, sizeof(p->key), "%s", key);
        p->last_echo_ms = 0;
        peer_connect(m, p);
    }
}

void px_mesh_tick(px_mesh *m, uint32_t tick_ms)
{
    m->tick_ms = tick_ms ? tick_ms : 1000;
    for (uint32_t i = 0; i < m->n_peers; i++) {
        px_mesh_peer *p = m->peers[i];
        if (!p->ch)
            continue;
        px_msg msg;
        memset(&msg, 0, sizeof(msg.env) + sizeof(msg.body.probe));
        msg.env.type = PX_MSG_PROBE;
        msg.env.seq = ++m->seq;
        msg.body.probe.t_ns = mono_ns();
        px_wbuf_reset(&m->out);
        if (px_wire_encode(&m->out, &msg, NULL) == PX_OK)
            px_chan_send(p->ch, NULL, m->out.data, m->out.len);
    }
}

void px_mesh_set_handler(px_mesh *m, px_mesh_msg_cb cb, void *ud)
{
    m->on_msg = cb;
    m->on_msg_ud = ud;
}

void px_mesh_on_server_recv(px_mesh *m, px_chan *server, const px_peer *from, const uint8_t *data,
                            size_t len)
{
    if (!m->in && !(m->in = malloc(sizeof(*m->in))))
        return;
    size_t off = 0;
    while (off < len) {
        size_t used;
        px_errmsg em = {{0}};
        if (px_wire_decode(data + off, len - off, &used, m->in, &em) != PX_OK) {
            PX_WARN("mesh", "bad data-plane message dropped", "peer_key=%.8s detail=\"%s\"",
                    from->key_z85, em.text);
            return;
        }
        if (m->in->env.type == PX_MSG_PROBE)
            px_chan_send(server, from, data + off, used); /* the echo, byte for byte */
        else if (m->on_msg)
            m->on_msg(m->on_msg_ud, from, m->in);
        else
            PX_DEBUG("mesh", "data-plane message without a service", "peer_key=%.8s type=%u",
                     from->key_z85, m->in->env.type);
        off += used;
    }
}

static px_mesh_peer *peer_by_name(const px_mesh *m, const char *name)
{
    for (uint32_t i = 0; i < m->n_peers; i++)
        if (strcmp(m->peers[i]->name, name) == 0)
            return m->peers[i];
    return NULL;
}

px_err px_mesh_send(px_mesh *m, const char *name, const uint8_t *data, size_t len)
{
    px_mesh_peer *p = peer_by_name(m, name);
    if (!p || !p->ch)
        return PX_E_NOTFOUND;
    return px_chan_send(p->ch, NULL, data, len);
}

const char *px_mesh_peer_key(const px_mesh *m, const char *name)
{
    const px_mesh_peer *p = peer_by_name(m, name);
    return p ? p->key : NULL;
}

void px_mesh_counts(const px_mesh *m, uint32_t *up, uint32_t *total, uint32_t *max_rtt_us)
{
    uint64_t now = mono_ns() / 1000000;
    uint32_t u = 0, rtt = 0;
    for (uint32_t i = 0; i < m->n_peers; i++) {
        const px_mesh_peer *p = m->peers[i];
        if (p->last_echo_ms && now - p->last_echo_ms <= 3ull * m->tick_ms) {
            u++;
            if (p->rtt_us > rtt)
                rtt = p->rtt_us;
        }
    }
    *up = u;
    *total = m->n_peers;
    *max_rtt_us = rtt;
}

void px_mesh_close(px_mesh *m, void (*done)(void *ud), void *ud)
{
    m->closed = done;
    m->closed_ud = ud;
    m->closing++; /* guard: done runs once, after the loop below */
    for (uint32_t i = 0; i < m->n_peers; i++) {
        if (m->peers[i]->ch) {
            m->closing++;
            px_chan_close(m->peers[i]->ch, chan_closed, m);
            m->peers[i]->ch = NULL;
        }
    }
    px_wbuf_fini(&m->out);
    chan_closed(NULL, m);
}

void px_mesh_fini(px_mesh *m)
{
    for (uint32_t i = 0; i < m->n_peers; i++)
        free(m->peers[i]);
    m->n_peers = 0;
    px_wbuf_fini(&m->out);
    free(m->in);
    m->in = NULL;
}
