/* plexus-coordinator: the TOOL relay. See coord.h (tool.c section).
 *
 * A relay remembers the CLI (routing id and the TOOL's seq), the nodes it
 * asked and copies of their answers: the answers arrive in other callbacks,
 * after the receive buffers of earlier ones are gone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord.h"
#include "fabric/core/log.h"

typedef struct tool_slot {
    char node[PX_NAME];
    bool sent;     /* the TOOL went out (the node was up) */
    bool answered; /* its TOOL_REPLY came */
    int32_t code;
    char *msg, *json, *ep, *key; /* owned copies, NUL-terminated */
} tool_slot;

typedef struct px_tool_relay {
    uint64_t id;
    px_peer cli;
    uint64_t cli_seq;
    uint64_t deadline_ms;
    char lab[PX_NAME], net[PX_NAME];
    uint32_t n;
    tool_slot slots[PX_COORD_MAX_NODES];
} px_tool_relay;

/* ---- merging (pure) ---- */

#define CUT_LINE "\n[cut: a reply holds at most 4096 bytes]"

/* A bounded text: cap bytes of content plus NUL. */
typedef struct tbuf {
    char *p;
    size_t cap, len;
    bool cut;
} tbuf;

/* Largest k <= min(n, max) that does not split a UTF-8 character. */
static size_t utf8_cut(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    size_t k = max;
    while (k > 0 && ((unsigned char)s[k] & 0xC0u) == 0x80u)
        k--;
    return k;
}

static void tb_put(tbuf *b, const char *s, size_t n)
{
    if (b->cut || n == 0)
        return;
    if (b->len + n <= b->cap) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
        return;
    }
    /* Keep what fits before the cut line, whole characters only. */
    size_t keep = b->cap - (sizeof(CUT_LINE) - 1);
    if (b->len > keep) {
        b->len = utf8_cut(b->p, b->len, keep);
    } else {
        size_t k = utf8_cut(s, n, keep - b->len);
        memcpy(b->p + b->len, s, k);
        b->len += k;
    }
    memcpy(b->p + b->len, CUT_LINE, sizeof(CUT_LINE) - 1);
    b->len += sizeof(CUT_LINE) - 1;
    b->p[b->len] = '\0';
    b->cut = true;
}

static void tb_line(tbuf *b, const char *s, size_t n)
{
    if (n == 0)
        return;
    if (b->len)
        tb_put(b, "\n", 1);
    tb_put(b, s, n);
}

static void no_answer_lines(const px_tool_answer *a, uint32_t n, tbuf *msg)
{
    for (uint32_t i = 0; i < n; i++) {
        if (a[i].answered)
            continue;
        char line[PX_NAME + 64];
        int l = snprintf(line, sizeof(line), "node %s: no answer (is it up? plexus nodes)",
                         a[i].node ? a[i].node : "?");
        tb_line(msg, line, l < (int)sizeof(line) ? (size_t)l : sizeof(line) - 1);
    }
}

void px_tool_merge(const px_tool_answer *a, uint32_t n, px_tool_merged *out)
{
    out->code = PX_OK;
    tbuf msg = {.p = out->msg, .cap = PX_WIRE_MAX_STR};
    tbuf json = {.p = out->json, .cap = PX_WIRE_MAX_STR};
    out->msg[0] = '\0';

    uint32_t first = n; /* the node whose code is the reply's */
    bool silent = false;
    for (uint32_t i = 0; i < n; i++) {
        if (!a[i].answered)
            silent = true;
        else if (a[i].code != PX_OK && first == n)
            first = i;
    }
    if (first < n) {
        out->code = a[first].code;
        tb_line(&msg, a[first].msg.ptr, a[first].msg.len);
    } else if (silent) {
        out->code = PX_E_TIMEOUT;
        no_answer_lines(a, n, &msg);
    }
    for (uint32_t i = 0; i < n; i++)
        if (a[i].answered && i != first)
            tb_line(&msg, a[i].msg.ptr, a[i].msg.len);
    if (first < n)
        no_answer_lines(a, n, &msg);

    /* JSON: whole values or nothing, so the array always parses. */
    tb_put(&json, "[", 1);
    bool any = false;
    for (uint32_t i = 0; i < n; i++) {
        if (!a[i].answered || !a[i].json.len)
            continue;
        size_t need = (any ? 1u : 0u) + a[i].json.len + 1u; /* comma, value, "]" */
        if (json.len + need > json.cap) {
            char line[PX_NAME + 96];
            int l = snprintf(line, sizeof(line),
                             "node %s: JSON answer left out (%u bytes; a reply holds %u)",
                             a[i].node ? a[i].node : "?", a[i].json.len, PX_WIRE_MAX_STR);
            tb_line(&msg, line, l < (int)sizeof(line) ? (size_t)l : sizeof(line) - 1);
            continue;
        }
        if (any)
            tb_put(&json, ",", 1);
        tb_put(&json, a[i].json.ptr, a[i].json.len);
        any = true;
    }
    tb_put(&json, "]", 1);

    out->ep[0] = out->key[0] = '\0';
    for (uint32_t i = 0; i < n; i++) {
        if (a[i].answered && a[i].ep.len && !out->ep[0])
            px_str_copy(out->ep, sizeof(out->ep), a[i].ep);
        if (a[i].answered && a[i].key.len && !out->key[0])
            px_str_copy(out->key, sizeof(out->key), a[i].key);
    }
}

/* ---- relays ---- */

static char *dup_str(px_str s)
{
    char *p = malloc((size_t)s.len + 1);
    if (p)
        px_str_copy(p, (size_t)s.len + 1, s);
    return p;
}

static void relay_free(px_tool_relay *r)
{
    for (uint32_t i = 0; i < r->n; i++) {
        free(r->slots[i].msg);
        free(r->slots[i].json);
        free(r->slots[i].ep);
        free(r->slots[i].key);
    }
    free(r);
}

static px_str str_or_empty(const char *s)
{
    return s ? px_str_c(s) : (px_str){0};
}

/* Send one TOOL_REPLY to the CLI. */
static void reply_cli(px_coord *c, const px_peer *to, uint64_t seq, int32_t code, const char *msg,
                      const char *json, const char *ep, const char *key)
{
    px_msg *m = c->scratch;
    memset(m, 0, sizeof(m->env) + sizeof(m->body.tool_reply));
    m->env.type = PX_MSG_TOOL_REPLY;
    m->env.seq = seq;
    m->body.tool_reply = (px_msg_tool_reply){.code = code,
                                             .message = str_or_empty(msg),
                                             .json = str_or_empty(json),
                                             .endpoint = str_or_empty(ep),
                                             .key = str_or_empty(key)};
    px_coord_send(c, to, m);
}

static void relay_finish(px_coord *c, uint32_t idx)
{
    px_tool_relay *r = c->tools[idx];
    c->tools[idx] = NULL;
    px_tool_answer ans[PX_COORD_MAX_NODES];
    uint32_t answered = 0;
    for (uint32_t i = 0; i < r->n; i++) {
        const tool_slot *s = &r->slots[i];
        answered += s->answered;
        ans[i] = (px_tool_answer){.node = s->node,
                                  .answered = s->answered,
                                  .code = s->code,
                                  .msg = str_or_empty(s->msg),
                                  .json = str_or_empty(s->json),
                                  .ep = str_or_empty(s->ep),
                                  .key = str_or_empty(s->key)};
    }
    px_tool_merged *mg = malloc(sizeof(*mg));
    if (!mg) {
        reply_cli(c, &r->cli, r->cli_seq, PX_E_NOMEM, "coordinator: out of memory", NULL, NULL,
                  NULL);
        relay_free(r);
        return;
    }
    px_tool_merge(ans, r->n, mg);
    PX_INFO("coord", "tool answered", "lab=%s net=%s id=%llu nodes=%u answered=%u code=%s", r->lab,
            r->net, (unsigned long long)r->id, r->n, answered, px_errname(mg->code));
    reply_cli(c, &r->cli, r->cli_seq, mg->code, mg->msg, mg->json, mg->ep, mg->key);
    free(mg);
    relay_free(r);
}

static bool relay_done(const px_tool_relay *r)
{
    for (uint32_t i = 0; i < r->n; i++)
        if (r->slots[i].sent && !r->slots[i].answered)
            return false;
    return true;
}

/* "lab L has no net N; its nets: a, b" (cut to fit). */
static void no_net_text(const px_lab *lab, const char *net, char *buf, size_t cap)
{
    int l = snprintf(buf, cap, "lab %s has no net %s", lab->name, net);
    for (uint32_t i = 0; i < lab->plan.n_nets && l > 0 && (size_t)l < cap; i++)
        l += snprintf(buf + l, cap - (size_t)l, "%s%s",
                      i ? ", " : "; its nets: ", px_topo_ref_name(lab->topo, lab->plan.nets[i]));
    if (lab->plan.n_nets == 0 && l > 0 && (size_t)l < cap)
        snprintf(buf + l, cap - (size_t)l, " (it has none)");
}

/* `plexus link set GUEST:ethN` names a port, not a net: the segment of
 * the guest's NIC N. */
static bool port_segment(const px_lab *lab, const char *port, char *seg, size_t cap)
{
    const char *colon = strchr(port, ':');
    unsigned nic;
    char tail;
    if (!colon || sscanf(colon + 1, "eth%u%c", &nic, &tail) != 1)
        return false;
    const px_topo *t = lab->topo;
    for (uint32_t g = 0; g < t->n_guests; g++) {
        const px_topo_guest *gu = &t->guests[g];
        if (strlen(gu->name) != (size_t)(colon - port) ||
            strncmp(gu->name, port, (size_t)(colon - port)) != 0)
            continue;
        if (nic >= gu->n_nics)
            return false;
        snprintf(seg, cap, "%s", t->eth_segments[gu->nics[nic].segment].name);
        return true;
    }
    return false;
}

void px_tool_on_request(px_coord *c, const px_peer *from, const px_msg *m)
{
    const px_msg_tool *t = &m->body.tool;
    char lab_name[PX_NAME], net[PX_NAME], text[1024];
    px_str_copy(lab_name, sizeof(lab_name), t->lab);
    px_str_copy(net, sizeof(net), t->net);
    px_lab *lab = px_lab_find(c, lab_name);
    if (!lab) {
        snprintf(text, sizeof(text), "no lab named %s; 'plexus status' lists them", lab_name);
        reply_cli(c, from, m->env.seq, PX_E_NOTFOUND, text, NULL, NULL, NULL);
        return;
    }
    uint32_t ni = px_lab_net_find(lab, net);
    if (ni == UINT32_MAX && port_segment(lab, net, net, sizeof(net)))
        ni = px_lab_net_find(lab, net);
    if (ni == UINT32_MAX) {
        no_net_text(lab, net, text, sizeof(text));
        reply_cli(c, from, m->env.seq, PX_E_NOTFOUND, text, NULL, NULL, NULL);
        return;
    }
    uint32_t slot = PX_TOOL_MAX_PENDING;
    for (uint32_t i = 0; i < PX_TOOL_MAX_PENDING && slot == PX_TOOL_MAX_PENDING; i++)
        if (!c->tools[i])
            slot = i;
    if (slot == PX_TOOL_MAX_PENDING) {
        snprintf(text, sizeof(text),
                 "coordinator busy: %u tool commands in flight; try again in a few seconds",
                 PX_TOOL_MAX_PENDING);
        PX_WARN("coord", "tool refused: too many in flight", "lab=%s net=%s max=%u", lab_name, net,
                PX_TOOL_MAX_PENDING);
        reply_cli(c, from, m->env.seq, PX_E_AGAIN, text, NULL, NULL, NULL);
        return;
    }
    px_tool_relay *r = calloc(1, sizeof(*r));
    if (!r) {
        reply_cli(c, from, m->env.seq, PX_E_NOMEM, "coordinator: out of memory", NULL, NULL, NULL);
        return;
    }
    r->id = ++c->tool_id;
    r->cli = *from;
    r->cli_seq = m->env.seq;
    r->deadline_ms = px_coord_now_ms(c) + PX_TOOL_TIMEOUT_MS;
    snprintf(r->lab, sizeof(r->lab), "%s", lab_name);
    snprintf(r->net, sizeof(r->net), "%s", net);
    c->tools[slot] = r;

    /* The forwarded TOOL borrows m's strings: sent before returning. */
    px_msg *f = c->scratch;
    for (uint32_t h = 0; h < lab->plan.n_hosts && r->n < PX_COORD_MAX_NODES; h++) {
        if (!px_lab_host_has_net(lab, h, ni))
            continue;
        tool_slot *s = &r->slots[r->n++];
        snprintf(s->node, sizeof(s->node), "%s", lab->plan.hosts[h].name);
        px_cnode *node = px_coord_node(c, s->node);
        if (!node || node->state != PX_NODE_UP)
            continue;
        memset(f, 0, sizeof(f->env) + sizeof(f->body.tool));
        f->env.type = PX_MSG_TOOL;
        f->body.tool = *t;
        f->body.tool.id = r->id;
        f->body.tool.client = px_str_c(from->key_z85);
        f->body.tool.net = px_str_c(r->net); /* a port's segment */
        px_coord_send(c, &node->peer, f);
        s->sent = true;
    }
    PX_INFO("coord", "tool relayed", "lab=%s net=%s id=%llu nodes=%u", lab_name, net,
            (unsigned long long)r->id, r->n);
    if (relay_done(r))
        relay_finish(c, slot); /* no node is up: answer now */
}

void px_tool_on_reply(px_coord *c, const px_cnode *n, const px_msg_tool_reply *rep)
{
    for (uint32_t i = 0; i < PX_TOOL_MAX_PENDING; i++) {
        px_tool_relay *r = c->tools[i];
        if (!r || r->id != rep->id)
            continue;
        for (uint32_t k = 0; k < r->n; k++) {
            tool_slot *s = &r->slots[k];
            if (!s->sent || s->answered || strcmp(s->node, n->name) != 0)
                continue;
            s->msg = dup_str(rep->message);
            s->json = dup_str(rep->json);
            s->ep = dup_str(rep->endpoint);
            s->key = dup_str(rep->key);
            s->answered = true;
            s->code = rep->code;
            if (!s->msg || !s->json || !s->ep || !s->key) {
                s->code = PX_E_NOMEM;
                free(s->msg);
                s->msg = NULL; /* an empty message; the code says why */
            }
            if (relay_done(r))
                relay_finish(c, i);
            return;
        }
        break;
    }
    PX_DEBUG("coord", "tool reply without a relay (late or unknown)", "node=%s id=%llu", n->name,
             (unsigned long long)rep->id);
}

void px_tool_tick(px_coord *c)
{
    uint64_t now = px_coord_now_ms(c);
    for (uint32_t i = 0; i < PX_TOOL_MAX_PENDING; i++)
        if (c->tools[i] && now >= c->tools[i]->deadline_ms)
            relay_finish(c, i);
}

void px_tool_fini(px_coord *c)
{
    for (uint32_t i = 0; i < PX_TOOL_MAX_PENDING; i++) {
        if (c->tools[i])
            relay_free(c->tools[i]);
        c->tools[i] = NULL;
    }
}
