/* plexus-coordinator: lab lifecycle. See coord.h.
 *
 * A lab moves deploying -> running when every host acknowledged the current
 * epoch's plan; failed when one reports failure (or a node is lost under the
 * "stop" policy); degraded while it is re-placed after a node loss under
 * "reschedule"; stopping after `down` until every host acknowledged the
 * teardown, when it is forgotten. Each change of plan bumps the epoch; a
 * node's answer counts only for the epoch it names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord.h"
#include "fabric/core/log.h"

const char *px_lab_state_str(px_lab_state s)
{
    switch (s) {
    case PX_LAB_DEPLOYING:
        return "deploying";
    case PX_LAB_RUNNING:
        return "running";
    case PX_LAB_DEGRADED:
        return "degraded";
    case PX_LAB_FAILED:
        return "failed";
    case PX_LAB_STOPPING:
        return "stopping";
    }
    return "?";
}

px_lab *px_lab_find(px_coord *c, const char *name)
{
    for (uint32_t i = 0; i < c->n_labs; i++)
        if (strcmp(c->labs[i]->name, name) == 0)
            return c->labs[i];
    return NULL;
}

void px_lab_free(px_lab *lab)
{
    if (!lab)
        return;
    px_lab_cxl_fini(lab);
    px_lab_plan_fini(&lab->plan);
    px_topo_free(lab->topo);
    free(lab->text);
    free(lab->hosts);
    free(lab->guests);
    free(lab);
}

static void lab_forget(px_coord *c, px_lab *lab)
{
    for (uint32_t i = 0; i < c->n_labs; i++)
        if (c->labs[i] == lab) {
            c->labs[i] = c->labs[--c->n_labs];
            break;
        }
    PX_INFO("coord", "lab removed", "lab=%s", lab->name);
    px_lab_free(lab);
}

/* Nodes that are up, as placement hosts. */
static uint32_t up_hosts(px_coord *c, px_plan_host *out)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < c->n_nodes; i++) {
        const px_cnode *n = &c->nodes[i];
        if (n->state != PX_NODE_UP)
            continue;
        snprintf(out[k].name, sizeof(out[k].name), "%s", n->name);
        out[k].cpus = n->cpus;
        out[k].mem_mb = n->mem_mb;
        k++;
    }
    return k;
}

static px_err lab_alloc_state(px_lab *lab)
{
    free(lab->hosts);
    free(lab->guests);
    lab->hosts = calloc(lab->plan.n_hosts + 1, sizeof(*lab->hosts));
    lab->guests = calloc(lab->topo->n_guests + 1, sizeof(*lab->guests));
    if (!lab->hosts || !lab->guests)
        return PX_E_NOMEM;
    for (uint32_t g = 0; g < lab->topo->n_guests; g++)
        snprintf(lab->guests[g].state, sizeof(lab->guests[g].state), "pending");
    return PX_OK;
}

/* Host h homes a CAN bus with a gateway into CAN bus net n: it submits
 * the gatewayed frames to n's home, which takes them from members only. */
static bool host_gateways_into(const px_lab *lab, uint32_t h, uint32_t n)
{
    const px_topo *t = lab->topo;
    if (lab->plan.nets[n].type != PX_TOPO_OBJ_CAN_BUS)
        return false;
    for (uint32_t k = 0; k < lab->plan.n_nets; k++) {
        px_topo_ref src = lab->plan.nets[k];
        if (src.type != PX_TOPO_OBJ_CAN_BUS || lab->plan.net_home[k] != h)
            continue;
        const px_topo_can_bus *b = &t->can_buses[src.index];
        for (uint32_t i = 0; i < b->n_gateways; i++)
            if (b->gateways[i].rule.dst_bus == lab->plan.nets[n].index)
                return true;
    }
    return false;
}

/* Host h has a host interface on net n: a SocketCAN interface (real CAN
 * hardware) on a CAN bus, a TAP on an Ethernet segment, an ivshmem
 * region's socket for host programs (its `hosts:`). Topology hosts and
 * plan hosts match by name: the loader made sure the interface's host is
 * under hosts:, and the first placement that every such host is a
 * registered node. */
static bool host_has_host_if(const px_lab *lab, uint32_t h, uint32_t n)
{
    const px_topo *t = lab->topo;
    const px_topo_hostif *ifs;
    uint32_t n_ifs;
    px_topo_ref r = lab->plan.nets[n];
    if (r.type == PX_TOPO_OBJ_CAN_BUS) {
        ifs = t->can_buses[r.index].host_ifs;
        n_ifs = t->can_buses[r.index].n_host_ifs;
    } else if (r.type == PX_TOPO_OBJ_ETH_SEGMENT) {
        ifs = t->eth_segments[r.index].taps;
        n_ifs = t->eth_segments[r.index].n_taps;
    } else if (r.type == PX_TOPO_OBJ_IVSHMEM) {
        const px_topo_ivshmem *sh = &t->ivshmem[r.index];
        for (uint32_t i = 0; i < sh->n_hosts; i++)
            if (strcmp(t->hosts[sh->hosts[i]].name, lab->plan.hosts[h].name) == 0)
                return true;
        return false;
    } else {
        return false;
    }
    for (uint32_t i = 0; i < n_ifs; i++)
        if (strcmp(t->hosts[ifs[i].host].name, lab->plan.hosts[h].name) == 0)
            return true;
    return false;
}

/* Host h runs a guest attached to net n, has a host interface on it, or
 * feeds it through a gateway. */
static bool host_on_net(const px_lab *lab, uint32_t h, uint32_t n)
{
    const px_topo *t = lab->topo;
    for (uint32_t g = 0; g < t->n_guests; g++)
        if (lab->plan.guest_host[g] == h && px_topo_guest_on_net(&t->guests[g], lab->plan.nets[n]))
            return true;
    return host_has_host_if(lab, h, n) || host_gateways_into(lab, h, n);
}

/* Host h is the home of net n and a member even without guests there: an
 * Ethernet segment's NAT uplink is a port at its home, and an ivshmem
 * region's home hands out its peer IDs. */
static bool member_home(const px_lab *lab, uint32_t h, uint32_t n)
{
    px_topo_ref r = lab->plan.nets[n];
    if (lab->plan.net_home[n] != h)
        return false;
    return r.type == PX_TOPO_OBJ_IVSHMEM ||
           (r.type == PX_TOPO_OBJ_ETH_SEGMENT && lab->topo->eth_segments[r.index].nat.enabled);
}

bool px_lab_host_has_net(const px_lab *lab, uint32_t h, uint32_t n)
{
    return lab->plan.net_home[n] == h || host_on_net(lab, h, n);
}

uint32_t px_lab_net_find(const px_lab *lab, const char *name)
{
    for (uint32_t n = 0; n < lab->plan.n_nets; n++)
        if (strcmp(px_topo_ref_name(lab->topo, lab->plan.nets[n]), name) == 0)
            return n;
    return UINT32_MAX;
}

void px_lab_send_plan(px_coord *c, px_lab *lab, uint32_t h)
{
    const px_plan_host *host = &lab->plan.hosts[h];
    px_cnode *node = px_coord_node(c, host->name);
    if (!node || node->state != PX_NODE_UP)
        return;
    bool teardown = lab->state == PX_LAB_STOPPING || lab->hosts[h].state == PX_HOST_REMOVED;
    px_msg *m = c->scratch;
    memset(m, 0, sizeof(m->env) + sizeof(m->body.plan));
    m->env.type = PX_MSG_PLAN;
    px_msg_plan *p = &m->body.plan;
    p->lab = px_str_c(lab->name);
    p->epoch = lab->epoch;
    p->op = px_str_c(teardown ? "teardown" : "apply");
    if (!teardown) {
        p->topology = (px_bin){(const uint8_t *)lab->text, (uint32_t)lab->text_len};
        for (uint32_t g = 0; g < lab->topo->n_guests && p->n_guests < PX_WIRE_MAX_ROWS; g++)
            if (lab->plan.guest_host[g] == h)
                p->guests[p->n_guests++] = px_str_c(lab->topo->guests[g].name);
        for (uint32_t n = 0; n < lab->plan.n_nets && p->n_nets < PX_WIRE_MAX_ROWS; n++) {
            if (!px_lab_host_has_net(lab, h, n))
                continue;
            p->nets[p->n_nets++] =
                (px_plan_net){.name = px_str_c(px_topo_ref_name(lab->topo, lab->plan.nets[n])),
                              .home = px_str_c(lab->plan.hosts[lab->plan.net_home[n]].name),
                              .object = n + 1};
            /* The home learns its members; on an Ethernet segment and an
             * ivshmem region every member does (a learning bridge per node
             * floods to the others; region contents go to every copy). */
            px_topo_obj ty = lab->plan.nets[n].type;
            bool members = lab->plan.net_home[n] == h || ty == PX_TOPO_OBJ_ETH_SEGMENT ||
                           ty == PX_TOPO_OBJ_IVSHMEM;
            for (uint32_t k = 0; members && k < lab->plan.n_hosts; k++)
                if ((host_on_net(lab, k, n) || member_home(lab, k, n)) &&
                    p->n_members < PX_WIRE_MAX_ROWS)
                    p->members[p->n_members++] =
                        (px_plan_member){.net = p->nets[p->n_nets - 1].name,
                                         .node = px_str_c(lab->plan.hosts[k].name)};
        }
        /* A lab from a journal without CXL state: the topology's start
         * bindings. */
        if (px_lab_cxl_init(lab, NULL) == PX_OK)
            px_lab_cxl_plan(lab, p);
        for (uint32_t k = 0; k < lab->plan.n_hosts && p->n_peers < PX_WIRE_MAX_PEERS; k++) {
            const px_cnode *peer = px_coord_node(c, lab->plan.hosts[k].name);
            if (!peer)
                continue;
            p->peers[p->n_peers++] = (px_plan_peer){.name = px_str_c(peer->name),
                                                    .endpoint = px_str_c(peer->data_ep),
                                                    .key = px_str_c(peer->data_key)};
        }
    }
    lab->hosts[h].sent_ms = px_coord_now_ms(c);
    PX_INFO("coord", "plan sent", "lab=%s node=%s epoch=%llu op=%s guests=%u nets=%u", lab->name,
            node->name, (unsigned long long)lab->epoch, teardown ? "teardown" : "apply",
            p->n_guests, p->n_nets);
    px_coord_send(c, &node->peer, m);
}

static void send_all(px_coord *c, px_lab *lab)
{
    for (uint32_t h = 0; h < lab->plan.n_hosts; h++)
        px_lab_send_plan(c, lab, h);
}

/* Place lab->topo on the nodes that are up; on success bump the epoch and
 * reset host states. Hosts of the old plan that leave it get a teardown. */
static px_err lab_place(px_coord *c, px_lab *lab, px_errmsg *em)
{
    px_plan_host avail[PX_COORD_MAX_NODES];
    uint32_t n_avail = up_hosts(c, avail);
    px_lab_plan plan;
    /* The first placement wants every host the file names; a re-placement
     * after a node loss does without the lost ones. */
    unsigned flags = lab->epoch ? PX_PLAN_SKIP_MISSING : 0;
    px_err err = px_lab_plan_make(lab->topo, avail, n_avail, flags, &plan, em);
    if (err)
        return err;
    /* Old hosts that the new plan drops still run the old guests. */
    for (uint32_t h = 0; lab->hosts && h < lab->plan.n_hosts; h++) {
        bool kept = false;
        for (uint32_t k = 0; k < plan.n_hosts && !kept; k++)
            kept = strcmp(plan.hosts[k].name, lab->plan.hosts[h].name) == 0;
        px_cnode *n = px_coord_node(c, lab->plan.hosts[h].name);
        if (!kept && n && n->state == PX_NODE_UP) {
            px_msg *m = c->scratch;
            memset(m, 0, sizeof(m->env) + sizeof(m->body.plan));
            m->env.type = PX_MSG_PLAN;
            m->body.plan = (px_msg_plan){
                .lab = px_str_c(lab->name), .epoch = lab->epoch + 1, .op = px_str_c("teardown")};
            px_coord_send(c, &n->peer, m);
        }
    }
    px_lab_plan_fini(&lab->plan);
    lab->plan = plan;
    lab->epoch++;
    return lab_alloc_state(lab);
}

static void reply_set(px_msg_reply *rep, px_err code, const char *msg)
{
    rep->code = code;
    rep->message = px_str_c(msg);
}

/* The reply's strings must outlive the callback that builds them only until
 * px_coord_send has encoded them: static storage per call is enough. */
static char reply_text[1024];

static void fill_status(px_coord *c, const char *only, px_msg_reply *rep)
{
    for (uint32_t i = 0; i < c->n_labs && rep->n_labs < PX_WIRE_MAX_LABS; i++) {
        px_lab *lab = c->labs[i];
        if (only && *only && strcmp(only, lab->name) != 0)
            continue;
        rep->labs[rep->n_labs++] = (px_lab_row){.name = px_str_c(lab->name),
                                                .state = px_str_c(px_lab_state_str(lab->state)),
                                                .epoch = lab->epoch,
                                                .guests = lab->topo->n_guests,
                                                .policy = px_str_c(lab->policy),
                                                .message = px_str_c(lab->message)};
        for (uint32_t g = 0; g < lab->topo->n_guests && rep->n_guests < PX_WIRE_MAX_ROWS; g++)
            rep->guests[rep->n_guests++] =
                (px_guest_row){.name = px_str_c(lab->topo->guests[g].name),
                               .lab = px_str_c(lab->name),
                               .host = px_str_c(lab->plan.hosts[lab->plan.guest_host[g]].name),
                               .state = px_str_c(lab->guests[g].state),
                               .detail = px_str_c(lab->guests[g].detail)};
    }
}

static const char *node_state_str(px_node_state s)
{
    return s == PX_NODE_UP ? "up" : s == PX_NODE_LOST ? "lost" : "unknown";
}

static void fill_nodes(px_coord *c, px_msg_reply *rep)
{
    uint64_t now = px_coord_now_ms(c);
    for (uint32_t i = 0; i < c->n_nodes && rep->n_nodes < PX_WIRE_MAX_PEERS; i++) {
        const px_cnode *n = &c->nodes[i];
        px_node_row *row = &rep->nodes[rep->n_nodes++];
        *row = (px_node_row){.name = px_str_c(n->name),
                             .state = px_str_c(node_state_str(n->state)),
                             .endpoint = px_str_c(n->data_ep),
                             .cpus = n->cpus,
                             .mem_mb = n->mem_mb,
                             .guests = n->n_guests,
                             .seen_ms_ago = n->last_seen_ms ? now - n->last_seen_ms : 0,
                             .n_features = n->n_features,
                             .links_up = n->links_up,
                             .links_total = n->links_total,
                             .rtt_us = n->rtt_us};
        for (uint32_t f = 0; f < n->n_features; f++)
            row->features[f] = px_str_c(n->features[f]);
    }
}

static void request_up(px_coord *c, const px_msg_request *rq, px_msg_reply *rep)
{
    char source[256];
    px_errmsg em = {{0}};
    px_str_copy(source, sizeof(source), rq->source.len ? rq->source : px_str_c("topology"));
    px_lab *lab = calloc(1, sizeof(*lab));
    if (!lab) {
        reply_set(rep, PX_E_NOMEM, "out of memory");
        return;
    }
    snprintf(lab->source, sizeof(lab->source), "%s", source);
    px_str_copy(lab->policy, sizeof(lab->policy),
                rq->policy.len ? rq->policy : px_str_c("reschedule"));
    if (strcmp(lab->policy, "reschedule") != 0 && strcmp(lab->policy, "stop") != 0) {
        snprintf(reply_text, sizeof(reply_text),
                 "unknown node-loss policy '%s'; expected reschedule or stop", lab->policy);
        reply_set(rep, PX_E_CONFIG, reply_text);
        goto fail;
    }
    px_err err = px_topo_load_buffer(source, (const char *)rq->topology.ptr, rq->topology.len,
                                     &lab->topo, &em);
    if (err) {
        snprintf(reply_text, sizeof(reply_text), "%s", em.text);
        reply_set(rep, err, reply_text);
        goto fail;
    }
    snprintf(lab->name, sizeof(lab->name), "%s", lab->topo->name);
    if (px_lab_find(c, lab->name)) {
        snprintf(reply_text, sizeof(reply_text), "lab %s is already up; run 'plexus down %s' first",
                 lab->name, lab->name);
        reply_set(rep, PX_E_EXISTS, reply_text);
        goto fail;
    }
    if (c->n_labs == PX_COORD_MAX_LABS) {
        reply_set(rep, PX_E_TOOBIG, "too many labs on this coordinator");
        goto fail;
    }
    lab->text = malloc(rq->topology.len + 1);
    if (!lab->text) {
        reply_set(rep, PX_E_NOMEM, "out of memory");
        goto fail;
    }
    memcpy(lab->text, rq->topology.ptr, rq->topology.len);
    lab->text[rq->topology.len] = '\0';
    lab->text_len = rq->topology.len;
    err = lab_place(c, lab, &em);
    if (!err)
        err = px_lab_cxl_init(lab, &em);
    if (err) {
        snprintf(reply_text, sizeof(reply_text), "%s", em.text);
        reply_set(rep, err, reply_text);
        goto fail;
    }
    lab->state = PX_LAB_DEPLOYING;
    c->labs[c->n_labs++] = lab;
    err = px_journal_save(c);
    if (err) {
        c->n_labs--;
        reply_set(rep, err, "cannot write the coordinator journal; see its log");
        goto fail;
    }
    PX_INFO("coord", "lab up", "lab=%s guests=%u hosts=%u cut=%llu policy=%s", lab->name,
            lab->topo->n_guests, lab->plan.n_hosts, (unsigned long long)lab->plan.cut, lab->policy);
    send_all(c, lab);
    snprintf(reply_text, sizeof(reply_text), "lab %s deploying: %u guests on %u nodes (epoch %llu)",
             lab->name, lab->topo->n_guests, lab->plan.n_hosts, (unsigned long long)lab->epoch);
    reply_set(rep, PX_OK, reply_text);
    fill_status(c, lab->name, rep);
    return;
fail:
    px_lab_free(lab);
}

static void request_down(px_coord *c, const char *name, px_msg_reply *rep)
{
    px_lab *lab = px_lab_find(c, name);
    if (!lab) {
        snprintf(reply_text, sizeof(reply_text), "no lab named %s; 'plexus status' lists them",
                 name);
        reply_set(rep, PX_E_NOTFOUND, reply_text);
        return;
    }
    lab->state = PX_LAB_STOPPING;
    lab->epoch++;
    uint32_t waiting = 0;
    for (uint32_t h = 0; h < lab->plan.n_hosts; h++) {
        px_cnode *n = px_coord_node(c, lab->plan.hosts[h].name);
        lab->hosts[h].state = n && n->state == PX_NODE_UP ? PX_HOST_PENDING : PX_HOST_REMOVED;
        waiting += lab->hosts[h].state == PX_HOST_PENDING;
    }
    snprintf(reply_text, sizeof(reply_text), "lab %s stopping on %u nodes", name, waiting);
    reply_set(rep, PX_OK, reply_text);
    if (!waiting) {
        lab_forget(c, lab);
    } else {
        send_all(c, lab);
        fill_status(c, name, rep);
    }
    px_journal_save(c);
}

void px_lab_request(px_coord *c, const px_msg_request *rq, px_msg_reply *rep)
{
    char op[16], lab[PX_NAME];
    px_str_copy(op, sizeof(op), rq->op);
    px_str_copy(lab, sizeof(lab), rq->lab);
    if (strcmp(op, "up") == 0) {
        request_up(c, rq, rep);
    } else if (strcmp(op, "down") == 0) {
        request_down(c, lab, rep);
    } else if (strcmp(op, "status") == 0) {
        if (lab[0] && !px_lab_find(c, lab)) {
            snprintf(reply_text, sizeof(reply_text), "no lab named %s", lab);
            reply_set(rep, PX_E_NOTFOUND, reply_text);
            return;
        }
        reply_set(rep, PX_OK, "");
        fill_status(c, lab, rep);
        fill_nodes(c, rep);
    } else if (strcmp(op, "nodes") == 0) {
        reply_set(rep, PX_OK, "");
        fill_nodes(c, rep);
    } else {
        snprintf(reply_text, sizeof(reply_text),
                 "unknown request '%s'; expected up, down, status or nodes", op);
        reply_set(rep, PX_E_UNKNOWN, reply_text);
    }
}

static int32_t plan_host_index(const px_lab *lab, const char *node)
{
    for (uint32_t h = 0; h < lab->plan.n_hosts; h++)
        if (strcmp(lab->plan.hosts[h].name, node) == 0)
            return (int32_t)h;
    return -1;
}

static void lab_update_state(px_coord *c, px_lab *lab)
{
    uint32_t applied = 0, removed = 0, failed = 0;
    for (uint32_t h = 0; h < lab->plan.n_hosts; h++) {
        applied += lab->hosts[h].state == PX_HOST_APPLIED;
        removed += lab->hosts[h].state == PX_HOST_REMOVED;
        failed += lab->hosts[h].state == PX_HOST_FAILED;
    }
    if (lab->state == PX_LAB_STOPPING) {
        if (removed == lab->plan.n_hosts) {
            lab_forget(c, lab);
            px_journal_save(c);
        }
        return;
    }
    px_lab_state before = lab->state;
    if (failed)
        lab->state = PX_LAB_FAILED;
    else if (applied == lab->plan.n_hosts && lab->state != PX_LAB_FAILED) {
        lab->state = PX_LAB_RUNNING; /* a reschedule note stays in the message */
    }
    if (lab->state != before) {
        PX_INFO("coord", "lab state", "lab=%s state=%s epoch=%llu", lab->name,
                px_lab_state_str(lab->state), (unsigned long long)lab->epoch);
        px_journal_save(c);
    }
}

void px_lab_on_status(px_coord *c, px_cnode *n, const px_msg_status *st)
{
    char name[PX_NAME], state[16];
    px_str_copy(name, sizeof(name), st->lab);
    px_str_copy(state, sizeof(state), st->state);
    px_lab *lab = px_lab_find(c, name);
    if (!lab)
        return;
    int32_t h = plan_host_index(lab, n->name);
    if (h < 0 || st->epoch != lab->epoch)
        return; /* an answer to an older plan */
    px_lab_host *lh = &lab->hosts[h];
    lh->acked_epoch = st->epoch;
    if (strcmp(state, "applied") == 0)
        lh->state = PX_HOST_APPLIED;
    else if (strcmp(state, "removed") == 0)
        lh->state = PX_HOST_REMOVED;
    else {
        lh->state = PX_HOST_FAILED;
        snprintf(lab->message, sizeof(lab->message), "node %s: %.*s", n->name, (int)st->message.len,
                 st->message.ptr);
    }
    for (uint32_t i = 0; i < st->n_guests; i++) {
        char g[PX_NAME];
        px_str_copy(g, sizeof(g), st->guests[i].name);
        uint32_t gi = px_topo_find_guest(lab->topo, g);
        if (gi == PX_TOPO_NONE || lab->plan.guest_host[gi] != (uint32_t)h)
            continue;
        px_str_copy(lab->guests[gi].state, sizeof(lab->guests[gi].state), st->guests[i].state);
        px_str_copy(lab->guests[gi].detail, sizeof(lab->guests[gi].detail), st->guests[i].detail);
    }
    lab_update_state(c, lab);
}

void px_lab_on_node_lost(px_coord *c, px_cnode *n)
{
    for (uint32_t i = c->n_labs; i-- > 0;) {
        px_lab *lab = c->labs[i];
        int32_t h = plan_host_index(lab, n->name);
        if (h < 0)
            continue;
        for (uint32_t g = 0; g < lab->topo->n_guests; g++)
            if (lab->plan.guest_host[g] == (uint32_t)h) {
                snprintf(lab->guests[g].state, sizeof(lab->guests[g].state), "lost");
                snprintf(lab->guests[g].detail, sizeof(lab->guests[g].detail), "node %s lost",
                         n->name);
            }
        if (lab->state == PX_LAB_STOPPING) {
            lab->hosts[h].state = PX_HOST_REMOVED;
            lab_update_state(c, lab);
            continue;
        }
        if (strcmp(lab->policy, "stop") == 0) {
            lab->state = PX_LAB_FAILED;
            snprintf(lab->message, sizeof(lab->message),
                     "node %s lost; lab stopped (policy stop): run 'plexus down %s'", n->name,
                     lab->name);
            lab->epoch++;
            for (uint32_t k = 0; k < lab->plan.n_hosts; k++)
                lab->hosts[k].state = PX_HOST_REMOVED;
            send_all(c, lab); /* teardown to the nodes still up */
            PX_WARN("coord", "lab stopped after node loss", "lab=%s node=%s", lab->name, n->name);
            continue;
        }
        px_errmsg em = {{0}};
        lab->state = PX_LAB_DEGRADED;
        if (lab_place(c, lab, &em) != PX_OK) {
            lab->state = PX_LAB_FAILED;
            snprintf(lab->message, sizeof(lab->message),
                     "node %s lost and its guests fit nowhere else: %.150s", n->name, em.text);
            PX_WARN("coord", "reschedule failed", "lab=%s detail=\"%s\"", lab->name, em.text);
            continue;
        }
        snprintf(lab->message, sizeof(lab->message),
                 "node %s lost; guests rescheduled (epoch %llu)", n->name,
                 (unsigned long long)lab->epoch);
        PX_WARN("coord", "lab rescheduled after node loss", "lab=%s node=%s epoch=%llu", lab->name,
                n->name, (unsigned long long)lab->epoch);
        send_all(c, lab);
    }
}

void px_lab_on_register(px_coord *c, px_cnode *n, const px_msg_register *rg)
{
    /* Labs the node reports: re-attach (same epoch: nothing to do) or tell
     * it to drop what no longer belongs to it. */
    for (uint32_t i = 0; i < rg->n_labs; i++) {
        char name[PX_NAME];
        px_str_copy(name, sizeof(name), rg->labs[i].lab);
        px_lab *lab = px_lab_find(c, name);
        int32_t h = lab ? plan_host_index(lab, n->name) : -1;
        if (h >= 0 && lab->state != PX_LAB_STOPPING && lab->hosts[h].state != PX_HOST_REMOVED &&
            rg->labs[i].epoch == lab->epoch) {
            lab->hosts[h].acked_epoch = lab->epoch;
            lab->hosts[h].state = PX_HOST_APPLIED;
            PX_INFO("coord", "node re-attached to lab", "node=%s lab=%s epoch=%llu", n->name, name,
                    (unsigned long long)lab->epoch);
            /* Same epoch: the node answers with a STATUS and changes nothing,
             * which refreshes the guest states this coordinator forgot. */
            px_lab_send_plan(c, lab, (uint32_t)h);
            lab_update_state(c, lab);
            continue;
        }
        if (h >= 0)
            continue; /* the reconcile pass sends the current plan */
        px_msg *m = c->scratch;
        memset(m, 0, sizeof(m->env) + sizeof(m->body.plan));
        m->env.type = PX_MSG_PLAN;
        m->body.plan = (px_msg_plan){
            .lab = rg->labs[i].lab, .epoch = rg->labs[i].epoch + 1, .op = px_str_c("teardown")};
        PX_INFO("coord", "stale lab on node", "node=%s lab=%s", n->name, name);
        px_coord_send(c, &n->peer, m);
    }
    /* Whatever it did not report but should run gets its plan now. A node
     * that acknowledged the current epoch and then restarted (killed,
     * crashed) reports nothing: its acknowledgement is void, and the same
     * plan again makes it take over the guests that outlived it
     * (docs/guests.md "Node restarts"). Nothing is torn down. */
    for (uint32_t i = 0; i < c->n_labs; i++) {
        px_lab *lab = c->labs[i];
        int32_t h = plan_host_index(lab, n->name);
        if (h < 0)
            continue;
        bool reported = false;
        for (uint32_t k = 0; k < rg->n_labs && !reported; k++)
            reported = px_str_eq(rg->labs[k].lab, lab->name);
        if (!reported && lab->state != PX_LAB_STOPPING && lab->hosts[h].state != PX_HOST_REMOVED &&
            lab->hosts[h].acked_epoch == lab->epoch) {
            PX_INFO("coord", "node forgot its lab; sending the plan again",
                    "node=%s lab=%s epoch=%llu", n->name, lab->name,
                    (unsigned long long)lab->epoch);
            lab->hosts[h].acked_epoch = 0;
            lab->hosts[h].state = PX_HOST_PENDING;
        }
        if (lab->hosts[h].acked_epoch != lab->epoch)
            px_lab_send_plan(c, lab, (uint32_t)h);
    }
}

void px_lab_reconcile(px_coord *c)
{
    uint64_t now = px_coord_now_ms(c);
    for (uint32_t i = 0; i < c->n_labs; i++) {
        px_lab *lab = c->labs[i];
        for (uint32_t h = 0; h < lab->plan.n_hosts; h++) {
            px_lab_host *lh = &lab->hosts[h];
            bool want = lab->state == PX_LAB_STOPPING
                            ? lh->state != PX_HOST_REMOVED
                            : lh->acked_epoch != lab->epoch && lh->state != PX_HOST_REMOVED;
            if (want && now - lh->sent_ms >= PX_PLAN_RESEND_MS)
                px_lab_send_plan(c, lab, h);
        }
    }
}

px_err px_lab_restore(px_coord *c, px_lab *lab, px_errmsg *em)
{
    (void)c;
    px_err err = px_topo_load_buffer(lab->source, lab->text, lab->text_len, &lab->topo, em);
    if (err)
        return err;
    if (lab->plan.n_guests != lab->topo->n_guests) {
        return px_errmsg_set(em, PX_E_CONFIG, "journal: lab %s plan has %u guests, topology %u",
                             lab->name, lab->plan.n_guests, lab->topo->n_guests);
    }
    px_lab_host *hosts = lab->hosts;
    lab->hosts = NULL;
    err = lab_alloc_state(lab);
    if (!err && hosts)
        memcpy(lab->hosts, hosts, lab->plan.n_hosts * sizeof(*hosts));
    free(hosts);
    return err;
}
