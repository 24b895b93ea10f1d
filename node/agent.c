/* plexus-node agent. See agent.h. */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coordinator/topology.h"
#include "node/accel.h"
#include "node/can.h"
#include "node/cxl.h"
#include "node/eth.h"
#include "node/shm.h"
#include "fabric/core/fsutil.h"
#include "fabric/core/log.h"

#ifndef PF_CAN
#define PF_CAN 29
#endif

/* What this host can do, as reported to the coordinator. "kvm-device" only
 * says /dev/kvm opens; whether guests boot under KVM is probed by the guest
 * runtime before it picks kvm. */
static void detect_features(px_node *n)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
        close(fd);
        snprintf(n->features[n->n_features++], sizeof(n->features[0]), "kvm-device");
    }
    int s = socket(PF_CAN, SOCK_RAW, 1 /* CAN_RAW */);
    if (s >= 0) {
        close(s);
        snprintf(n->features[n->n_features++], sizeof(n->features[0]), "af_can");
    }
    DIR *d = opendir("/sys/class/infiniband");
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.') {
                snprintf(n->features[n->n_features++], sizeof(n->features[0]), "rdma");
                break;
            }
        closedir(d);
    }
}

static void send_msg(px_node *n, px_msg *m)
{
    px_errmsg em = {{0}};
    if (!m->env.seq)
        m->env.seq = ++n->seq;
    m->env.sender = n->node_id;
    px_wbuf_reset(&n->out);
    px_err err = px_wire_encode(&n->out, m, &em);
    if (!err)
        err = px_chan_send(n->ctl, NULL, n->out.data, n->out.len);
    if (err)
        PX_WARN("node", "cannot send to coordinator", "type=%s err=%s detail=\"%s\"",
                px_msg_type_name(m->env.type), px_errname(err), em.text);
}

static void send_register(px_node *n)
{
    px_msg *m = n->scratch;
    memset(m, 0, sizeof(m->env) + sizeof(m->body.hello));
    m->env.type = PX_MSG_HELLO;
    m->body.hello = (px_msg_hello){.proto_min = PX_WIRE_VERSION,
                                   .proto_max = PX_WIRE_VERSION,
                                   .role = px_str_c("node"),
                                   .name = px_str_c(n->name)};
    send_msg(n, m);

    memset(m, 0, sizeof(m->env) + sizeof(m->body.reg));
    m->env.type = PX_MSG_REGISTER;
    px_msg_register *r = &m->body.reg;
    r->name = px_str_c(n->name);
    r->cpus = n->cpus;
    r->mem_mb = n->mem_mb;
    for (uint32_t i = 0; i < n->n_features; i++)
        r->features[r->n_features++] = px_str_c(n->features[i]);
    r->data_endpoint = px_str_c(px_chan_endpoint(n->data));
    r->data_key = px_str_c(n->opts.key.public_z85);
    for (uint32_t i = 0; i < n->n_labs && i < PX_WIRE_MAX_LABS; i++)
        r->labs[r->n_labs++] =
            (px_lab_epoch){.lab = px_str_c(n->labs[i]->name), .epoch = n->labs[i]->epoch};
    send_msg(n, m);
    PX_INFO("node", "registering", "node=%s coordinator=%s labs=%u", n->name, n->opts.coordinator,
            n->n_labs);
}

static const char *row_state(const px_node *n, const px_node_lab *l, const px_node_guest *g)
{
    /* Stopped, but its CXL LDs are still being written back: the
     * coordinator must not let them be unbound yet. */
    if (g->g && px_node_cxl_busy(n, l, g))
        return "stopping";
    return g->g ? px_guest_state_str(px_guest_get_state(g->g)) : g->state;
}

static const char *row_detail(const px_node *n, const px_node_lab *l, const px_node_guest *g)
{
    if (g->g && px_node_cxl_busy(n, l, g))
        return "writing its CXL LDs back to their pool";
    return g->g ? px_guest_detail(g->g) : g->detail;
}

static void send_status(px_node *n, const char *lab, uint64_t epoch, const char *state,
                        const char *message, const px_node_lab *l)
{
    px_msg *m = n->scratch;
    memset(m, 0, sizeof(m->env) + sizeof(m->body.status));
    m->env.type = PX_MSG_STATUS;
    px_msg_status *st = &m->body.status;
    st->lab = px_str_c(lab);
    st->epoch = epoch;
    st->state = px_str_c(state);
    st->message = px_str_c(message ? message : "");
    for (uint32_t i = 0; l && i < l->n_guests && st->n_guests < PX_WIRE_MAX_ROWS; i++)
        st->guests[st->n_guests++] = (px_guest_row){.name = px_str_c(l->guests[i].name),
                                                    .lab = px_str_c(l->name),
                                                    .host = px_str_c(n->name),
                                                    .state = px_str_c(row_state(n, l, &l->guests[i])),
                                                    .detail = px_str_c(row_detail(n, l, &l->guests[i]))};
    send_msg(n, m);
}

static px_node_lab *lab_find(px_node *n, const char *name, uint32_t *idx)
{
    for (uint32_t i = 0; i < n->n_labs; i++)
        if (strcmp(n->labs[i]->name, name) == 0) {
            if (idx)
                *idx = i;
            return n->labs[i];
        }
    return NULL;
}

/* Free a lab at once: its guests are killed (their handles close later and
 * free themselves), its directory removed. */
static void lab_drop(px_node *n, uint32_t idx)
{
    px_node_lab *l = n->labs[idx];
    for (uint32_t i = 0; i < l->n_guests; i++)
        if (l->guests[i].g)
            px_guest_close(l->guests[i].g, NULL, NULL);
    px_node_can_remove(n, l->name);
    px_node_eth_remove(n, l->name);
    px_node_shm_remove(n, l->name);
    px_node_cxl_remove(n, l->name);
    px_rm_tree(l->dir);
    px_topo_free(l->topo);
    free(l->guests);
    free(l);
    n->labs[idx] = n->labs[--n->n_labs];
}

/* A lab name becomes a directory name: it was validated by the topology
 * loader on the coordinator, but a node trusts no peer with its file system. */
static bool safe_name(const char *s)
{
    if (!*s || *s == '.')
        return false;
    for (; *s; s++)
        if (*s == '/' || (unsigned char)*s < 0x20)
            return false;
    return true;
}

static bool lab_quiet(const px_node_lab *l)
{
    for (uint32_t i = 0; i < l->n_guests; i++)
        if (l->guests[i].g && px_guest_pid(l->guests[i].g))
            return false;
    return true;
}

/* Teardown completes once no QEMU of the lab runs any more. */
static void lab_check_stopped(px_node *n, px_node_lab *l)
{
    if (!l->stopping || !lab_quiet(l))
        return;
    uint32_t idx;
    if (lab_find(n, l->name, &idx) != l)
        return;
    char name[64];
    uint64_t epoch = l->stop_epoch;
    snprintf(name, sizeof(name), "%s", l->name);
    lab_drop(n, idx);
    PX_INFO("node", "lab removed", "lab=%s epoch=%llu", name, (unsigned long long)epoch);
    send_status(n, name, epoch, "removed", NULL, NULL);
}

static void on_guest_change(px_guest *g, void *ud)
{
    px_node_lab *l = ud;
    px_node *n = l->node;
    if (l->stopping) {
        lab_check_stopped(n, l);
        return;
    }
    for (uint32_t i = 0; i < l->n_guests; i++)
        if (l->guests[i].g == g)
            px_node_cxl_guest_changed(n, l, &l->guests[i]);
    if (l->ready)
        send_status(n, l->name, l->epoch, "applied", NULL, l);
}

void px_node_lab_changed(px_node *n, px_node_lab *l)
{
    if (l->ready && !l->stopping)
        send_status(n, l->name, l->epoch, "applied", NULL, l);
}

static px_topo_accel resolve_accel(const px_node *n, px_topo_accel want)
{
    if (want != PX_TOPO_ACCEL_AUTO)
        return want;
    if (n->accel == PX_NODE_ACCEL_KVM)
        return PX_TOPO_ACCEL_KVM;
    if (n->accel == PX_NODE_ACCEL_TCG)
        return PX_TOPO_ACCEL_TCG;
    return PX_TOPO_ACCEL_AUTO; /* not known yet */
}

/* Create and start every guest of l that is not running yet and whose
 * accelerator is known. */
static void lab_start_guests(px_node *n, px_node_lab *l)
{
    for (uint32_t i = 0; i < l->n_guests; i++) {
        px_node_guest *ng = &l->guests[i];
        if (ng->g || ng->index == PX_TOPO_NONE)
            continue;
        if (n->opts.dry_run) {
            snprintf(ng->state, sizeof(ng->state), "planned");
            snprintf(ng->detail, sizeof(ng->detail), "dry run: not started");
            continue;
        }
        px_topo_accel accel = resolve_accel(n, l->topo->guests[ng->index].accel);
        if (accel == PX_TOPO_ACCEL_AUTO) {
            snprintf(ng->state, sizeof(ng->state), "defined");
            snprintf(ng->detail, sizeof(ng->detail), "waiting for the KVM probe");
            continue;
        }
        px_errmsg em = {{0}};
        px_qemu_cfg cxl = {0};
        if (!px_node_cxl_ready(n, l, ng, &cxl))
            continue; /* its CXL LDs are on their way to this host */
        px_guest_opts go = {.topo = l->topo,
                            .index = ng->index,
                            .qemu = {.qemu = n->opts.qemu,
                                     .rundir = l->dir,
                                     .image_dir = n->opts.image_dir,
                                     .can_shim = n->opts.can_shim,
                                     .accel = accel,
                                     .cxl_lds = cxl.cxl_lds,
                                     .n_cxl_lds = cxl.n_cxl_lds},
                            .stop_timeout_ms = n->opts.stop_timeout_ms,
                            .on_change = on_guest_change,
                            .ud = l};
        if (px_guest_new(n->loop, &go, &ng->g, &em) != PX_OK) {
            ng->g = NULL;
            snprintf(ng->state, sizeof(ng->state), "failed");
            snprintf(ng->detail, sizeof(ng->detail), "%s", em.text);
            PX_WARN("node", "guest cannot start", "lab=%s guest=%s detail=\"%s\"", l->name,
                    ng->name, em.text);
            continue;
        }
        /* A QEMU that outlived an earlier run of this node (killed, crashed)
         * is taken over with its sockets as they are; only a guest without
         * one is started (docs/guests.md "Node restarts"). */
        if (px_guest_adopt(ng->g) == PX_E_NOTFOUND)
            px_guest_start(ng->g);
    }
}

void px_node_lab_start(px_node *n, px_node_lab *l)
{
    if (l->ready && !l->stopping)
        lab_start_guests(n, l);
}

static void accel_known(bool kvm, const char *why, void *ud)
{
    px_node *n = ud;
    n->probe = NULL;
    n->accel = kvm ? PX_NODE_ACCEL_KVM : PX_NODE_ACCEL_TCG;
    snprintf(n->accel_why, sizeof(n->accel_why), "%s", why);
    /* "kvm" is a feature only once proven; tell the coordinator. */
    if (kvm && n->n_features < sizeof(n->features) / sizeof(n->features[0])) {
        snprintf(n->features[n->n_features++], sizeof(n->features[0]), "kvm");
        if (n->registered)
            send_register(n);
    }
    for (uint32_t i = 0; i < n->n_labs; i++) {
        px_node_lab *l = n->labs[i];
        if (l->stopping)
            continue;
        lab_start_guests(n, l);
        send_status(n, l->name, l->epoch, "applied", NULL, l);
    }
}

static void apply_plan(px_node *n, const px_msg_plan *p)
{
    char lab[64], op[16], err_text[600];
    px_errmsg em = {{0}};
    px_str_copy(lab, sizeof(lab), p->lab);
    px_str_copy(op, sizeof(op), p->op);
    if (!safe_name(lab)) {
        PX_WARN("node", "plan refused", "reason=\"unsafe lab name\"");
        return;
    }
    uint32_t idx;
    px_node_lab *l = lab_find(n, lab, &idx);
    if (strcmp(op, "teardown") == 0) {
        if (!l) {
            send_status(n, lab, p->epoch, "removed", NULL, NULL);
            return;
        }
        l->stopping = true;
        l->stop_epoch = p->epoch;
        for (uint32_t i = 0; i < l->n_guests; i++)
            if (l->guests[i].g)
                px_guest_stop(l->guests[i].g);
        lab_check_stopped(n, l);
        return;
    }
    if (l && l->stopping) {
        send_status(n, lab, p->epoch, "failed", "the lab is still being torn down here", NULL);
        return;
    }
    if (l && l->epoch == p->epoch && strcmp(op, "apply") == 0) {
        /* The same plan again (a coordinator re-attaching after a restart):
         * nothing to change, report what runs. */
        send_status(n, lab, p->epoch, "applied", NULL, l);
        return;
    }
    if (strcmp(op, "apply") != 0) {
        snprintf(err_text, sizeof(err_text), "unknown plan op '%s'", op);
        send_status(n, lab, p->epoch, "failed", err_text, NULL);
        return;
    }
    /* The node reads the topology itself: the plan names only which guests
     * and nets are its own. */
    px_topo *t = NULL;
    if (px_topo_load_buffer(lab, (const char *)p->topology.ptr, p->topology.len, &t, &em)) {
        snprintf(err_text, sizeof(err_text), "topology rejected on node: %s", em.text);
        send_status(n, lab, p->epoch, "failed", err_text, NULL);
        return;
    }
    if (!l && n->n_labs == PX_NODE_MAX_LABS) {
        px_topo_free(t);
        send_status(n, lab, p->epoch, "failed", "too many labs on this node", NULL);
        return;
    }
    px_node_guest *guests = calloc(p->n_guests + 1, sizeof(*guests));
    if (!guests) {
        px_topo_free(t);
        send_status(n, lab, p->epoch, "failed", "out of memory", NULL);
        return;
    }
    if (!l) {
        l = calloc(1, sizeof(*l));
        if (!l) {
            free(guests);
            px_topo_free(t);
            send_status(n, lab, p->epoch, "failed", "out of memory", NULL);
            return;
        }
        l->node = n;
        snprintf(l->name, sizeof(l->name), "%s", lab);
        snprintf(l->dir, sizeof(l->dir), "%s/%s", n->runtime, lab);
        n->labs[n->n_labs++] = l;
    }
    if (px_mkdir_p(l->dir, 0700, &em) != PX_OK) {
        free(guests);
        px_topo_free(t);
        send_status(n, lab, p->epoch, "failed", em.text, NULL);
        return;
    }
    /* A new epoch: guests that stay here keep running; the others stop. */
    uint32_t ng = 0;
    for (uint32_t i = 0; i < p->n_guests; i++) {
        px_node_guest *g = &guests[ng++];
        px_str_copy(g->name, sizeof(g->name), p->guests[i]);
        g->index = px_topo_find_guest(t, g->name);
        if (g->index == PX_TOPO_NONE) {
            snprintf(g->state, sizeof(g->state), "failed");
            snprintf(g->detail, sizeof(g->detail), "not in the lab's topology");
            continue;
        }
        for (uint32_t k = 0; k < l->n_guests; k++)
            if (l->guests[k].g && strcmp(l->guests[k].name, g->name) == 0) {
                g->g = l->guests[k].g;
                l->guests[k].g = NULL;
            }
    }
    for (uint32_t k = 0; k < l->n_guests; k++)
        if (l->guests[k].g)
            px_guest_close(l->guests[k].g, NULL, NULL);
    free(l->guests);
    px_topo_free(l->topo);
    l->guests = guests;
    l->n_guests = ng;
    l->topo = t;
    l->epoch = p->epoch;
    l->ready = false;
    /* Peers named in the plan may connect to our data plane. */
    for (uint32_t i = 0; i < p->n_peers; i++) {
        char key[PX_KEY_Z85_LEN + 1];
        px_str_copy(key, sizeof(key), p->peers[i].key);
        if (px_key_valid(key))
            px_transport_allow(n->tp, key);
    }
    px_mesh_update(&n->mesh, p->peers, p->n_peers);
    /* Endpoints first: QEMU connects to them as it starts. */
    if (px_node_can_apply(n, l, p, &em) != PX_OK) {
        snprintf(err_text, sizeof(err_text), "CAN: %s", em.text);
        PX_WARN("node", "lab's CAN buses cannot be set up", "lab=%s detail=\"%s\"", lab, em.text);
        send_status(n, lab, p->epoch, "failed", err_text, NULL);
        return;
    }
    /* Ethernet ports connect to QEMU's stream sockets whenever they appear. */
    if (px_node_eth_apply(n, l, p, &em) != PX_OK) {
        snprintf(err_text, sizeof(err_text), "Ethernet: %s", em.text);
        PX_WARN("node", "lab's Ethernet segments cannot be set up", "lab=%s detail=\"%s\"", lab,
                em.text);
        send_status(n, lab, p->epoch, "failed", err_text, NULL);
        return;
    }
    /* ivshmem sockets must listen before QEMU starts (it exits otherwise). */
    if (px_node_shm_apply(n, l, p, &em) != PX_OK) {
        snprintf(err_text, sizeof(err_text), "ivshmem: %s", em.text);
        PX_WARN("node", "lab's ivshmem regions cannot be set up", "lab=%s detail=\"%s\"", lab,
                em.text);
        send_status(n, lab, p->epoch, "failed", err_text, NULL);
        return;
    }
    /* CXL: pools homed here, the LDs of this node's guests copied here
     * before they start. */
    if (px_node_cxl_apply(n, l, p, &em) != PX_OK) {
        snprintf(err_text, sizeof(err_text), "CXL: %s", em.text);
        PX_WARN("node", "lab's CXL memory cannot be set up", "lab=%s detail=\"%s\"", lab,
                em.text);
        send_status(n, lab, p->epoch, "failed", err_text, NULL);
        return;
    }
    lab_start_guests(n, l);
    l->ready = true;
    PX_INFO("node", "plan applied", "lab=%s epoch=%llu guests=%u nets=%u peers=%u", lab,
            (unsigned long long)p->epoch, l->n_guests, p->n_nets, p->n_peers);
    send_status(n, lab, p->epoch, "applied", NULL, l);
}

/* A tool command (TOOL) to the fabric service it names (args[0]); the
 * answer goes back as TOOL_REPLY. */
static void run_tool(px_node *n, const px_msg_tool *t)
{
    px_svc_reply *r = calloc(1, sizeof(*r));
    if (!r)
        return;
    char what[64] = "";
    if (t->n_args)
        px_str_copy(what, sizeof(what), t->args[0]);
    if (strcmp(what, "can") == 0 && n->can) {
        px_cansvc_tool(n->can, t, r);
    } else if ((strcmp(what, "link") == 0 || strcmp(what, "capture") == 0) && n->eth) {
        px_ethsvc_tool(n->eth, t, r);
    } else if (strcmp(what, "ivshmem") == 0 && n->shm) {
        px_shmsvc_tool(n->shm, t, r);
    } else if (strcmp(what, "cxl-sync") == 0 && n->cxlst) {
        px_node_cxl_tool(n, t, r);
    } else {
        r->code = PX_E_UNKNOWN;
        snprintf(r->text, sizeof(r->text), "node %s: no tool '%s'", n->name, what);
    }
    px_msg *out = n->scratch;
    memset(out, 0, sizeof(out->env) + sizeof(out->body.tool_reply));
    out->env.type = PX_MSG_TOOL_REPLY;
    out->body.tool_reply = (px_msg_tool_reply){.id = t->id,
                                               .code = r->code,
                                               .message = px_str_c(r->text),
                                               .json = px_str_c(r->json),
                                               .endpoint = px_str_c(r->endpoint),
                                               .key = px_str_c(r->key)};
    send_msg(n, out);
    free(r);
}

static void dispatch(px_node *n, const px_msg *m)
{
    switch (m->env.type) {
    case PX_MSG_HELLO:
        break;
    case PX_MSG_REGISTERED:
        n->registered = true;
        n->node_id = m->body.registered.node_id;
        n->hb_ms = m->body.registered.heartbeat_ms ? m->body.registered.heartbeat_ms : 1000;
        PX_INFO("node", "registered", "node=%s id=%u heartbeat_ms=%u", n->name, n->node_id,
                n->hb_ms);
        break;
    case PX_MSG_PLAN:
        apply_plan(n, &m->body.plan);
        break;
    case PX_MSG_TOOL:
        run_tool(n, &m->body.tool);
        break;
    case PX_MSG_ERROR:
        PX_WARN("node", "coordinator reported an error", "code=%s msg=\"%.*s\"",
                px_errname((px_err)m->body.error.code), (int)m->body.error.message.len,
                m->body.error.message.ptr);
        if (m->body.error.code == PX_E_NOTFOUND || m->body.error.code == PX_E_PROTO)
            send_register(n);
        break;
    default:
        PX_WARN("node", "unexpected message from coordinator", "type=%u", m->env.type);
    }
}

static void heartbeat(uv_timer_t *t);

/* ---- what fabric services send through ---- */

static px_err io_to_node(void *ud, const char *node, const uint8_t *data, size_t len)
{
    px_node *n = ud;
    px_err err = px_mesh_send(&n->mesh, node, data, len);
    if (err)
        PX_DEBUG("node", "no data-plane link to a peer", "peer=%s err=%s", node, px_errname(err));
    return err;
}

static px_err io_to_peer(void *ud, const px_peer *peer, const uint8_t *data, size_t len)
{
    px_node *n = ud;
    return px_chan_send(n->data, peer, data, len);
}

static const char *io_node_key(void *ud, const char *node)
{
    px_node *n = ud;
    return px_mesh_peer_key(&n->mesh, node);
}

static px_err io_admit(void *ud, const char *key)
{
    px_node *n = ud;
    return px_transport_allow(n->tp, key);
}

void px_node_svc_io(px_node *n, px_svc_io *io)
{
    *io = (px_svc_io){.to_node = io_to_node,
                      .to_peer = io_to_peer,
                      .node_key = io_node_key,
                      .admit = io_admit,
                      .ud = n,
                      .self = n->name,
                      .data_ep = px_chan_endpoint(n->data),
                      .data_key = n->opts.key.public_z85};
}

/* A data-plane message from a peer node or a tool: to its fabric service. */
static void data_msg(void *ud, const px_peer *from, const px_msg *m)
{
    px_node *n = ud;
    if (m->env.type == PX_MSG_ETH && n->eth)
        px_ethsvc_on_msg(n->eth, from, &m->body.eth);
    else if (m->env.type == PX_MSG_SHM && n->shm)
        px_shmsvc_on_msg(n->shm, from, &m->body.shm);
    else if (m->env.type == PX_MSG_CXL)
        px_node_cxl_msg(n, from, &m->body.cxl);
    else if (m->env.type == PX_MSG_CXLSYNC)
        px_node_cxl_sync_msg(n, from, &m->body.cxlsync);
    else
        px_node_can_msg(ud, from, m);
}

static void on_ctl_recv(px_chan *ch, const px_peer *from, const uint8_t *data, size_t len, void *ud)
{
    (void)ch;
    (void)from;
    px_node *n = ud;
    size_t off = 0;
    while (off < len) {
        size_t used;
        px_errmsg em = {{0}};
        px_msg *m = malloc(sizeof(*m));
        if (!m)
            return;
        px_err err = px_wire_decode(data + off, len - off, &used, m, &em);
        if (err) {
            PX_WARN("node", "bad message from coordinator", "err=%s detail=\"%s\"", px_errname(err),
                    em.text);
            free(m);
            return;
        }
        bool was = n->registered;
        dispatch(n, m);
        free(m);
        if (!was && n->registered)
            uv_timer_start(&n->hb, heartbeat, n->hb_ms, n->hb_ms);
        off += used;
    }
}

static void on_ctl_event(px_chan *ch, px_chan_event ev, void *ud)
{
    (void)ch;
    px_node *n = ud;
    switch (ev) {
    case PX_CHAN_EV_CONNECTED:
        send_register(n);
        break;
    case PX_CHAN_EV_DISCONNECTED:
        PX_WARN("node", "coordinator connection lost; reconnecting", "coordinator=%s",
                n->opts.coordinator);
        n->registered = false;
        uv_timer_stop(&n->hb);
        break;
    case PX_CHAN_EV_AUTH_FAILED:
        PX_ERROR("node", "coordinator refused this node's key",
                 "key=%s hint=\"plexus keys authorize %s on the coordinator\"",
                 n->opts.key.public_z85, n->opts.key.public_z85);
        break;
    }
}

static void heartbeat(uv_timer_t *t)
{
    px_node *n = t->data;
    if (!n->registered)
        return;
    px_msg *m = n->scratch;
    memset(m, 0, sizeof(m->env) + sizeof(m->body.heartbeat));
    m->env.type = PX_MSG_HEARTBEAT;
    uint32_t guests = 0;
    for (uint32_t i = 0; i < n->n_labs; i++)
        guests += n->labs[i]->n_guests;
    double load[1] = {0};
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (getloadavg(load, 1) != 1)
        load[0] = 0;
    uint32_t up, total, rtt;
    px_mesh_counts(&n->mesh, &up, &total, &rtt);
    m->body.heartbeat = (px_msg_heartbeat){
        .uptime_ms = uv_now(n->loop) - n->start_ms,
        .n_guests = guests,
        .load_permille = (uint32_t)(load[0] * 1000.0 / (double)(cpus > 0 ? cpus : 1)),
        .links_up = up,
        .links_total = total,
        .rtt_us = rtt};
    send_msg(n, m);
    px_mesh_tick(&n->mesh, n->hb_ms);
}

static void on_data_recv(px_chan *ch, const px_peer *from, const uint8_t *data, size_t len,
                         void *ud)
{
    px_node *n = ud;
    px_mesh_on_server_recv(&n->mesh, ch, from, data, len);
}

static void one_closed(px_node *n)
{
    if (--n->pending_close == 0) {
        px_mesh_fini(&n->mesh);
        px_transport_free(n->tp);
        n->tp = NULL;
    }
}

static void chan_closed(px_chan *ch, void *ud)
{
    (void)ch;
    one_closed(ud);
}

static void mesh_closed(void *ud)
{
    one_closed(ud);
}

px_err px_node_start(px_node *n, uv_loop_t *loop, const px_node_opts *opts, px_errmsg *em)
{
    memset(n, 0, sizeof(*n));
    n->loop = loop;
    n->opts = *opts;
    n->start_ms = uv_now(loop);
    n->hb_ms = 1000;
    snprintf(n->name, sizeof(n->name), "%s", opts->name);
    snprintf(n->runtime, sizeof(n->runtime), "%s", opts->runtime_dir);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    uint64_t mem = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE) >> 20;
    n->cpus = opts->cpus ? opts->cpus : (uint32_t)(cpus > 0 ? cpus : 1) * 4;
    n->mem_mb = opts->mem_mb ? opts->mem_mb : mem / 2;
    detect_features(n);
    n->scratch = malloc(sizeof(px_msg));
    if (!n->scratch)
        return PX_E_NOMEM;
    px_err err = px_mkdir_p(n->runtime, 0700, em);
    if (err)
        goto fail_scratch;
    chmod(n->runtime, 0700);

    px_transport_opts to = {.self = opts->key};
    err = px_transport_new(loop, &to, &n->tp, em);
    if (err)
        goto fail_scratch;
    px_mesh_init(&n->mesh, loop, n->tp, n->name);
    /* A node restarted with a wildcard port takes the port it had, so peers
     * whose plans name the old address reconnect by themselves
     * (docs/guests.md "Node restarts"). The file's name starts with a dot,
     * which no lab directory's can. */
    char epfile[4200], prev_ep[256] = "";
    snprintf(epfile, sizeof(epfile), "%s/.data-endpoint", n->runtime);
    size_t ll = strlen(opts->data_listen);
    char *prev = NULL;
    if (ll > 2 && strcmp(opts->data_listen + ll - 2, ":*") == 0 &&
        px_read_file(epfile, sizeof(prev_ep) - 1, &prev, NULL, NULL) == PX_OK) {
        if (strncmp(prev, opts->data_listen, ll - 1) == 0)
            snprintf(prev_ep, sizeof(prev_ep), "%s", prev);
        free(prev);
    }
    px_chan_opts dopt = {.role = PX_CHAN_SERVER,
                         .endpoint = prev_ep[0] ? prev_ep : opts->data_listen,
                         .policy = PX_QUEUE_DROP,
                         .batch_bytes = PX_DATA_PLANE_BATCH_BYTES,
                         .hwm = PX_DATA_PLANE_HWM,
                         .on_recv = on_data_recv,
                         .ud = n};
    err = px_chan_open(n->tp, &dopt, &n->data, em);
    if (err && prev_ep[0]) {
        PX_WARN("node", "previous data endpoint is taken; binding a new port", "endpoint=%s",
                prev_ep);
        dopt.endpoint = opts->data_listen;
        err = px_chan_open(n->tp, &dopt, &n->data, em);
    }
    if (err)
        goto fail_tp;
    const char *dep = px_chan_endpoint(n->data);
    px_errmsg wem = {{0}};
    if (px_write_file_atomic(epfile, dep, strlen(dep), 0600, &wem) != PX_OK)
        PX_WARN("node", "cannot record the data endpoint", "detail=\"%s\"", wem.text);
    err = px_node_can_start(n, em);
    if (err)
        goto fail_data;
    err = px_node_eth_start(n, em);
    if (!err)
        err = px_node_shm_start(n, em);
    if (!err)
        err = px_node_cxl_start(n, em);
    if (err)
        goto fail_data;
    px_mesh_set_handler(&n->mesh, data_msg, n);
    char ident[80];
    snprintf(ident, sizeof(ident), "node:%s", n->name);
    px_chan_opts copt = {.role = PX_CHAN_CLIENT,
                         .endpoint = opts->coordinator,
                         .server_key = opts->coordinator_key,
                         .identity = ident,
                         /* control messages carry whole topologies */
                         .batch_bytes = PX_WIRE_MAX_MSG + 4096,
                         .queue_bytes = 4 * PX_WIRE_MAX_MSG,
                         .policy = PX_QUEUE_DROP,
                         .on_recv = on_ctl_recv,
                         .on_event = on_ctl_event,
                         .ud = n};
    err = px_chan_open(n->tp, &copt, &n->ctl, em);
    if (err)
        goto fail_data;
    uv_timer_init(loop, &n->hb);
    n->hb.data = n;
    /* Guests asking for accelerator auto wait for this answer. */
    px_accel_opts ao = {
        .qemu = opts->qemu, .image_dir = opts->image_dir, .cache_dir = opts->cache_dir};
    if (opts->dry_run) {
        n->accel = PX_NODE_ACCEL_TCG;
    } else if (px_accel_probe_start(loop, &ao, accel_known, n, &n->probe) != PX_OK) {
        n->probe = NULL;
        n->accel = PX_NODE_ACCEL_TCG;
    }
    PX_INFO("node", "started", "node=%s data=%s cpus=%u mem_mb=%llu features=%u", n->name,
            px_chan_endpoint(n->data), n->cpus, (unsigned long long)n->mem_mb, n->n_features);
    return PX_OK;

fail_data:
    /* Start-up: nothing else runs on the loop yet, so it can be run here
     * until the data channel's handles are released (chan_closed frees the
     * transport). */
    n->pending_close = 1;
    if (n->can) {
        n->pending_close++;
        px_cansvc_close(n->can, mesh_closed, n);
        n->can = NULL;
    }
    if (n->eth) {
        n->pending_close++;
        px_ethsvc_close(n->eth, mesh_closed, n);
        n->eth = NULL;
    }
    if (n->shm) {
        n->pending_close++;
        px_shmsvc_close(n->shm, mesh_closed, n);
        n->shm = NULL;
    }
    if (n->cxlst) {
        n->pending_close++;
        px_node_cxl_close(n, mesh_closed, n);
    }
    px_chan_close(n->data, chan_closed, n);
    uv_run(loop, UV_RUN_DEFAULT);
    goto fail_scratch;
fail_tp:
    px_transport_free(n->tp);
    n->tp = NULL;
fail_scratch:
    free(n->scratch);
    n->scratch = NULL;
    return err;
}

void px_node_stop(px_node *n)
{
    if (n->closing)
        return;
    n->closing = true;
    if (n->probe)
        px_accel_probe_cancel(n->probe);
    n->probe = NULL;
    while (n->n_labs)
        lab_drop(n, n->n_labs - 1);
    uv_timer_stop(&n->hb);
    uv_close((uv_handle_t *)&n->hb, NULL);
    n->pending_close = 7;
    px_cansvc_close(n->can, mesh_closed, n);
    n->can = NULL;
    px_ethsvc_close(n->eth, mesh_closed, n);
    n->eth = NULL;
    px_shmsvc_close(n->shm, mesh_closed, n);
    n->shm = NULL;
    px_node_cxl_close(n, mesh_closed, n);
    px_mesh_close(&n->mesh, mesh_closed, n);
    px_chan_close(n->ctl, chan_closed, n);
    px_chan_close(n->data, chan_closed, n);
}

void px_node_fini(px_node *n)
{
    while (n->n_labs)
        lab_drop(n, n->n_labs - 1);
    px_wbuf_fini(&n->out);
    free(n->scratch);
    n->scratch = NULL;
}
