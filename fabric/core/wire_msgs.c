/* plexus — the message registry: one field table per message type, and the
 * generic helpers that compare and check tables.
 *
 * Keys are short because data-plane messages are small and frequent; they
 * stay readable because people read hex dumps and captures. A key, once
 * shipped, is part of the protocol: never reuse one for a different meaning.
 * docs/wire-protocol.md lists every field; keep the two in step.
 */
#include "wire_table.h"

#include <stddef.h>
#include <string.h>

/* ---- HELLO ---- */

/* A peer announcing an empty or inverted version range cannot be negotiated
 * with; say so at the boundary instead of in every handshake. */
static px_err hello_check(const void *s, px_errmsg *em)
{
    const px_msg_hello *h = s;
    if (h->proto_min == 0 || h->proto_min > h->proto_max)
        return px_errmsg_set(em, PX_E_PROTO,
                             "HELLO: version range %u..%u is empty or starts at 0 "
                             "(pmin must be >= 1 and <= pmax)",
                             h->proto_min, h->proto_max);
    return PX_OK;
}

static const px_wire_field hello_fields[] = {
    PX_WF_U32("pmin", px_msg_hello, proto_min, 1),
    PX_WF_U32("pmax", px_msg_hello, proto_max, 1),
    PX_WF_STR("role", px_msg_hello, role, 1, PX_WIRE_MAX_NAME),
    PX_WF_STR("name", px_msg_hello, name, 1, PX_WIRE_MAX_NAME),
    PX_WF_STR_ARRAY("feat", px_msg_hello, features, n_features, 0, PX_WIRE_MAX_NAME),
};

static const px_wire_struct hello_desc =
    PX_WIRE_STRUCT("HELLO", px_msg_hello, hello_fields, hello_check);

/* ---- HEARTBEAT ---- */

static const px_wire_field heartbeat_fields[] = {
    PX_WF_U64("up", px_msg_heartbeat, uptime_ms, 1),
    PX_WF_U32("guests", px_msg_heartbeat, n_guests, 1),
    PX_WF_U32("load", px_msg_heartbeat, load_permille, 1),
    PX_WF_U32("lup", px_msg_heartbeat, links_up, 0),
    PX_WF_U32("ltot", px_msg_heartbeat, links_total, 0),
    PX_WF_U32("rtt", px_msg_heartbeat, rtt_us, 0),
};

static const px_wire_struct heartbeat_desc =
    PX_WIRE_STRUCT("HEARTBEAT", px_msg_heartbeat, heartbeat_fields, NULL);

/* ---- ERROR ---- */

static const px_wire_field error_fields[] = {
    PX_WF_I32("code", px_msg_error, code, 1),
    PX_WF_STR("msg", px_msg_error, message, 1, PX_WIRE_MAX_STR),
    PX_WF_U64("re", px_msg_error, in_reply_to, 0),
};

static const px_wire_struct error_desc = PX_WIRE_STRUCT("ERROR", px_msg_error, error_fields, NULL);

/* ---- PROBE ---- */

static const px_wire_field probe_fields[] = {
    PX_WF_U64("t", px_msg_probe, t_ns, 1),
    PX_WF_BIN("data", px_msg_probe, payload, 1, PX_WIRE_MAX_BIN),
};

static const px_wire_struct probe_desc = PX_WIRE_STRUCT("PROBE", px_msg_probe, probe_fields, NULL);

/* ---- control plane: docs/control-plane.md ---- */

#define NAME PX_WIRE_MAX_NAME
#define TEXT PX_WIRE_MAX_STR
#define EP   PX_WIRE_MAX_ENDPOINT

static const px_wire_field lab_epoch_fields[] = {
    PX_WF_STR("lab", px_lab_epoch, lab, 1, NAME),
    PX_WF_U64("epoch", px_lab_epoch, epoch, 1),
};
static const px_wire_struct lab_epoch_desc =
    PX_WIRE_STRUCT("LAB_EPOCH", px_lab_epoch, lab_epoch_fields, NULL);

static const px_wire_field register_fields[] = {
    PX_WF_STR("name", px_msg_register, name, 1, NAME),
    PX_WF_U32("cpus", px_msg_register, cpus, 1),
    PX_WF_U64("mem", px_msg_register, mem_mb, 1),
    PX_WF_STR_ARRAY("feat", px_msg_register, features, n_features, 0, NAME),
    PX_WF_STR("data", px_msg_register, data_endpoint, 1, EP),
    PX_WF_STR("dkey", px_msg_register, data_key, 1, NAME),
    PX_WF_STRUCT_ARRAY("labs", px_msg_register, labs, n_labs, 0, px_lab_epoch, &lab_epoch_desc),
};
static const px_wire_struct register_desc =
    PX_WIRE_STRUCT("REGISTER", px_msg_register, register_fields, NULL);

static const px_wire_field registered_fields[] = {
    PX_WF_U32("id", px_msg_registered, node_id, 1),
    PX_WF_U32("hb", px_msg_registered, heartbeat_ms, 1),
};
static const px_wire_struct registered_desc =
    PX_WIRE_STRUCT("REGISTERED", px_msg_registered, registered_fields, NULL);

static const px_wire_field plan_net_fields[] = {
    PX_WF_STR("name", px_plan_net, name, 1, NAME),
    PX_WF_STR("home", px_plan_net, home, 1, NAME),
    PX_WF_U64("obj", px_plan_net, object, 1),
};
static const px_wire_struct plan_net_desc =
    PX_WIRE_STRUCT("PLAN_NET", px_plan_net, plan_net_fields, NULL);

static const px_wire_field plan_peer_fields[] = {
    PX_WF_STR("name", px_plan_peer, name, 1, NAME),
    PX_WF_STR("ep", px_plan_peer, endpoint, 1, EP),
    PX_WF_STR("key", px_plan_peer, key, 1, NAME),
};
static const px_wire_struct plan_peer_desc =
    PX_WIRE_STRUCT("PLAN_PEER", px_plan_peer, plan_peer_fields, NULL);

static const px_wire_field plan_member_fields[] = {
    PX_WF_STR("net", px_plan_member, net, 1, NAME),
    PX_WF_STR("node", px_plan_member, node, 1, NAME),
};
static const px_wire_struct plan_member_desc =
    PX_WIRE_STRUCT("PLAN_MEMBER", px_plan_member, plan_member_fields, NULL);

static const px_wire_field plan_cxl_fields[] = {
    PX_WF_STR("sw", px_plan_cxl, sw, 1, NAME),
    PX_WF_U32("vcs", px_plan_cxl, vcs, 1),
    PX_WF_U32("vppb", px_plan_cxl, vppb, 1),
    PX_WF_STR("pool", px_plan_cxl, pool, 1, NAME),
    PX_WF_U32("ld", px_plan_cxl, ld, 1),
    PX_WF_U64("size", px_plan_cxl, size, 0), /* the LD's allocation; absent: the pool's ld_size */
};
static const px_wire_struct plan_cxl_desc =
    PX_WIRE_STRUCT("PLAN_CXL", px_plan_cxl, plan_cxl_fields, NULL);

static const px_wire_field plan_fields[] = {
    PX_WF_STR("lab", px_msg_plan, lab, 1, NAME),
    PX_WF_U64("epoch", px_msg_plan, epoch, 1),
    PX_WF_STR("op", px_msg_plan, op, 1, NAME),
    PX_WF_BIN("topo", px_msg_plan, topology, 0, PX_WIRE_MAX_TOPO),
    PX_WF_STR_ARRAY("g", px_msg_plan, guests, n_guests, 0, NAME),
    PX_WF_STRUCT_ARRAY("nets", px_msg_plan, nets, n_nets, 0, px_plan_net, &plan_net_desc),
    PX_WF_STRUCT_ARRAY("peers", px_msg_plan, peers, n_peers, 0, px_plan_peer, &plan_peer_desc),
    PX_WF_STRUCT_ARRAY("mem", px_msg_plan, members, n_members, 0, px_plan_member,
                       &plan_member_desc),
    PX_WF_STRUCT_ARRAY("cxl", px_msg_plan, cxl, n_cxl, 0, px_plan_cxl, &plan_cxl_desc),
};
static const px_wire_struct plan_desc = PX_WIRE_STRUCT("PLAN", px_msg_plan, plan_fields, NULL);

static const px_wire_field guest_row_fields[] = {
    PX_WF_STR("name", px_guest_row, name, 1, NAME),
    PX_WF_STR("lab", px_guest_row, lab, 0, NAME),
    PX_WF_STR("host", px_guest_row, host, 0, NAME),
    PX_WF_STR("state", px_guest_row, state, 1, NAME),
    PX_WF_STR("detail", px_guest_row, detail, 0, TEXT),
};
static const px_wire_struct guest_row_desc =
    PX_WIRE_STRUCT("GUEST_ROW", px_guest_row, guest_row_fields, NULL);

static const px_wire_field status_fields[] = {
    PX_WF_STR("lab", px_msg_status, lab, 1, NAME),
    PX_WF_U64("epoch", px_msg_status, epoch, 1),
    PX_WF_STR("state", px_msg_status, state, 1, NAME),
    PX_WF_STR("msg", px_msg_status, message, 0, TEXT),
    PX_WF_STRUCT_ARRAY("g", px_msg_status, guests, n_guests, 0, px_guest_row, &guest_row_desc),
};
static const px_wire_struct status_desc =
    PX_WIRE_STRUCT("STATUS", px_msg_status, status_fields, NULL);

static const px_wire_field request_fields[] = {
    PX_WF_STR("op", px_msg_request, op, 1, NAME),
    PX_WF_STR("lab", px_msg_request, lab, 0, NAME),
    PX_WF_BIN("topo", px_msg_request, topology, 0, PX_WIRE_MAX_TOPO),
    PX_WF_STR("src", px_msg_request, source, 0, TEXT),
    PX_WF_STR("policy", px_msg_request, policy, 0, NAME),
};
static const px_wire_struct request_desc =
    PX_WIRE_STRUCT("REQUEST", px_msg_request, request_fields, NULL);

static const px_wire_field lab_row_fields[] = {
    PX_WF_STR("name", px_lab_row, name, 1, NAME),
    PX_WF_STR("state", px_lab_row, state, 1, NAME),
    PX_WF_U64("epoch", px_lab_row, epoch, 1),
    PX_WF_U32("guests", px_lab_row, guests, 1),
    PX_WF_STR("policy", px_lab_row, policy, 0, NAME),
    PX_WF_STR("msg", px_lab_row, message, 0, TEXT),
};
static const px_wire_struct lab_row_desc =
    PX_WIRE_STRUCT("LAB_ROW", px_lab_row, lab_row_fields, NULL);

static const px_wire_field node_row_fields[] = {
    PX_WF_STR("name", px_node_row, name, 1, NAME),
    PX_WF_STR("state", px_node_row, state, 1, NAME),
    PX_WF_STR("ep", px_node_row, endpoint, 0, EP),
    PX_WF_U32("cpus", px_node_row, cpus, 1),
    PX_WF_U64("mem", px_node_row, mem_mb, 1),
    PX_WF_U32("guests", px_node_row, guests, 1),
    PX_WF_U64("seen", px_node_row, seen_ms_ago, 1),
    PX_WF_STR_ARRAY("feat", px_node_row, features, n_features, 0, NAME),
    PX_WF_U32("lup", px_node_row, links_up, 0),
    PX_WF_U32("ltot", px_node_row, links_total, 0),
    PX_WF_U32("rtt", px_node_row, rtt_us, 0),
};
static const px_wire_struct node_row_desc =
    PX_WIRE_STRUCT("NODE_ROW", px_node_row, node_row_fields, NULL);

static const px_wire_field reply_fields[] = {
    PX_WF_I32("code", px_msg_reply, code, 1),
    PX_WF_STR("msg", px_msg_reply, message, 0, TEXT),
    PX_WF_STRUCT_ARRAY("labs", px_msg_reply, labs, n_labs, 0, px_lab_row, &lab_row_desc),
    PX_WF_STRUCT_ARRAY("nodes", px_msg_reply, nodes, n_nodes, 0, px_node_row, &node_row_desc),
    PX_WF_STRUCT_ARRAY("g", px_msg_reply, guests, n_guests, 0, px_guest_row, &guest_row_desc),
};
static const px_wire_struct reply_desc = PX_WIRE_STRUCT("REPLY", px_msg_reply, reply_fields, NULL);

/* ---- fabric services ---- */

static px_err can_check(const void *s, px_errmsg *em)
{
    const px_msg_can *c = s;
    if (c->op == 0 || c->op >= PX_CAN_OP_MAX)
        return px_errmsg_set(em, PX_E_PROTO, "CAN: unknown op %u", c->op);
    return PX_OK;
}

static const px_wire_field can_rec_fields[] = {
    PX_WF_U64("s", px_can_rec, seq, 0),
    PX_WF_U64("t", px_can_rec, ts_ns, 0),
    PX_WF_U32("n", px_can_rec, node, 0),
    PX_WF_U32("e", px_can_rec, ep, 0),
    PX_WF_U64("g", px_can_rec, tag, 0),
    PX_WF_BIN("f", px_can_rec, frame, 1, PX_WIRE_MAX_CAN_FRAME),
};
static const px_wire_struct can_rec_desc =
    PX_WIRE_STRUCT("CAN_REC", px_can_rec, can_rec_fields, NULL);

static const px_wire_field can_fields[] = {
    PX_WF_U64("bus", px_msg_can, bus, 1),
    PX_WF_U32("op", px_msg_can, op, 1),
    PX_WF_U32("node", px_msg_can, node, 0),
    PX_WF_STRUCT_ARRAY("r", px_msg_can, recs, n_recs, 0, px_can_rec, &can_rec_desc),
};
static const px_wire_struct can_desc = PX_WIRE_STRUCT("CAN", px_msg_can, can_fields, can_check);

static const px_wire_field tool_fields[] = {
    PX_WF_STR("lab", px_msg_tool, lab, 1, NAME),
    PX_WF_STR("net", px_msg_tool, net, 1, NAME),
    PX_WF_STR_ARRAY("args", px_msg_tool, args, n_args, 1, TEXT),
    PX_WF_STR("cli", px_msg_tool, client, 0, NAME),
    PX_WF_U64("id", px_msg_tool, id, 0),
    PX_WF_U32("json", px_msg_tool, json, 0),
};
static const px_wire_struct tool_desc = PX_WIRE_STRUCT("TOOL", px_msg_tool, tool_fields, NULL);

static const px_wire_field tool_reply_fields[] = {
    PX_WF_U64("id", px_msg_tool_reply, id, 0),
    PX_WF_I32("code", px_msg_tool_reply, code, 1),
    PX_WF_STR("msg", px_msg_tool_reply, message, 0, TEXT),
    PX_WF_STR("json", px_msg_tool_reply, json, 0, TEXT),
    PX_WF_STR("ep", px_msg_tool_reply, endpoint, 0, EP),
    PX_WF_STR("key", px_msg_tool_reply, key, 0, NAME),
};
static const px_wire_struct tool_reply_desc =
    PX_WIRE_STRUCT("TOOL_REPLY", px_msg_tool_reply, tool_reply_fields, NULL);

static px_err eth_check(const void *s, px_errmsg *em)
{
    const px_msg_eth *e = s;
    if (e->op == 0 || e->op >= PX_ETH_OP_MAX)
        return px_errmsg_set(em, PX_E_PROTO, "ETH: unknown op %u", e->op);
    return PX_OK;
}

static const px_wire_field eth_fields[] = {
    PX_WF_U64("seg", px_msg_eth, seg, 1),
    PX_WF_U32("op", px_msg_eth, op, 1),
    PX_WF_U32("node", px_msg_eth, node, 0),
    PX_WF_U64("id", px_msg_eth, id, 0),
    PX_WF_STR("flt", px_msg_eth, filter, 0, TEXT),
    PX_WF_STR("port", px_msg_eth, port, 0, NAME),
    PX_WF_BIN("r", px_msg_eth, recs, 0, PX_WIRE_MAX_ETH_BLOB),
};
static const px_wire_struct eth_desc = PX_WIRE_STRUCT("ETH", px_msg_eth, eth_fields, eth_check);

/* Peer IDs are ivshmem's 16-bit IDs and vectors its 8-bit ones (the
 * doorbell register); anything wider could not be rung. */
static px_err shm_check(const void *s, px_errmsg *em)
{
    const px_msg_shm *m = s;
    if (m->op == 0 || m->op >= PX_SHM_OP_MAX)
        return px_errmsg_set(em, PX_E_PROTO, "SHM: unknown op %u", m->op);
    if (m->peer > 65535)
        return px_errmsg_set(em, PX_E_PROTO, "SHM: peer %u is over 65535", m->peer);
    if (m->vector > 255)
        return px_errmsg_set(em, PX_E_PROTO, "SHM: vector %u is over 255", m->vector);
    return PX_OK;
}

static const px_wire_field shm_fields[] = {
    PX_WF_U64("reg", px_msg_shm, region, 1),
    PX_WF_U32("op", px_msg_shm, op, 1),
    PX_WF_U32("node", px_msg_shm, node, 0),
    PX_WF_U32("own", px_msg_shm, owner, 0),
    PX_WF_U32("peer", px_msg_shm, peer, 0),
    PX_WF_U32("vec", px_msg_shm, vector, 0),
    PX_WF_U64("tag", px_msg_shm, tag, 0),
    PX_WF_STR("name", px_msg_shm, name, 0, NAME),
    PX_WF_BIN("r", px_msg_shm, recs, 0, PX_WIRE_MAX_SHM_BLOB),
};
static const px_wire_struct shm_desc = PX_WIRE_STRUCT("SHM", px_msg_shm, shm_fields, shm_check);

/* What can be checked without the pool: a known op, an LD and area that
 * exist in some pool, a range no longer than a chunk, and data that is
 * exactly the range (or flagged zero) where data goes, absent elsewhere.
 * Offsets against the LD's size are the service's to check. */
static px_err cxl_check(const void *s, px_errmsg *em)
{
    const px_msg_cxl *m = s;
    if (m->op == 0 || m->op >= PX_CXL_OP_MAX)
        return px_errmsg_set(em, PX_E_PROTO, "CXL: unknown op %u", m->op);
    if (m->ld >= PX_WIRE_MAX_CXL_LDS)
        return px_errmsg_set(em, PX_E_PROTO, "CXL: ld %u is over %u", m->ld,
                             PX_WIRE_MAX_CXL_LDS - 1);
    if (m->area > 1)
        return px_errmsg_set(em, PX_E_PROTO, "CXL: area %u is neither 0 (memory) nor 1 (labels)",
                             m->area);
    if (m->len > PX_WIRE_MAX_CXL_CHUNK)
        return px_errmsg_set(em, PX_E_PROTO, "CXL: len %u is over %u", m->len,
                             PX_WIRE_MAX_CXL_CHUNK);
    if (m->zero > 1)
        return px_errmsg_set(em, PX_E_PROTO, "CXL: zero %u is neither 0 nor 1", m->zero);
    if (m->op == PX_CXL_DATA || m->op == PX_CXL_WRITE) {
        if (m->len == 0)
            return px_errmsg_set(em, PX_E_PROTO, "CXL: %s of 0 bytes",
                                 m->op == PX_CXL_DATA ? "DATA" : "WRITE");
        if (m->zero ? m->d.len != 0 : m->d.len != m->len)
            return px_errmsg_set(em, PX_E_PROTO, "CXL: %u bytes of data for len %u%s", m->d.len,
                                 m->len, m->zero ? " flagged zero" : "");
    } else if (m->zero || m->d.len) {
        return px_errmsg_set(em, PX_E_PROTO, "CXL: op %u carries no data", m->op);
    }
    return PX_OK;
}

static const px_wire_field cxl_fields[] = {
    PX_WF_U64("pool", px_msg_cxl, pool, 1),
    PX_WF_U32("op", px_msg_cxl, op, 1),
    PX_WF_STR("node", px_msg_cxl, node, 1, NAME),
    PX_WF_U64("xfer", px_msg_cxl, xfer, 0),
    PX_WF_U32("ld", px_msg_cxl, ld, 0),
    PX_WF_U32("area", px_msg_cxl, area, 0),
    PX_WF_U64("off", px_msg_cxl, off, 0),
    PX_WF_U32("len", px_msg_cxl, len, 0),
    PX_WF_U32("zero", px_msg_cxl, zero, 0),
    PX_WF_U64("hash", px_msg_cxl, hash, 0),
    PX_WF_U64("size", px_msg_cxl, size, 0),
    PX_WF_U64("lsa", px_msg_cxl, lsa, 0),
    PX_WF_I32("code", px_msg_cxl, code, 0),
    PX_WF_STR("msg", px_msg_cxl, msg, 0, PX_WIRE_MAX_CXL_MSG),
    PX_WF_BIN("d", px_msg_cxl, d, 0, PX_WIRE_MAX_CXL_CHUNK),
};
static const px_wire_struct cxl_desc = PX_WIRE_STRUCT("CXL", px_msg_cxl, cxl_fields, cxl_check);

/* A known op and an LD that exists in some pool; records against the LD's
 * size (and base) are the service's to check. */
static px_err cxlsync_check(const void *s, px_errmsg *em)
{
    const px_msg_cxlsync *m = s;
    if (m->op == 0 || m->op >= PX_CXLSYNC_OP_MAX)
        return px_errmsg_set(em, PX_E_PROTO, "CXLSYNC: unknown op %u", m->op);
    if (m->ld >= PX_WIRE_MAX_CXL_LDS)
        return px_errmsg_set(em, PX_E_PROTO, "CXLSYNC: ld %u is over %u", m->ld,
                             PX_WIRE_MAX_CXL_LDS - 1);
    return PX_OK;
}

static const px_wire_field cxlsync_fields[] = {
    PX_WF_U64("pool", px_msg_cxlsync, pool, 1),
    PX_WF_U32("ld", px_msg_cxlsync, ld, 0),
    PX_WF_STR("node", px_msg_cxlsync, node, 1, NAME),
    PX_WF_U32("op", px_msg_cxlsync, op, 1),
    PX_WF_U64("base", px_msg_cxlsync, base, 0),
    PX_WF_BIN("r", px_msg_cxlsync, recs, 0, PX_WIRE_MAX_SHM_BLOB),
};
static const px_wire_struct cxlsync_desc =
    PX_WIRE_STRUCT("CXLSYNC", px_msg_cxlsync, cxlsync_fields, cxlsync_check);

#undef NAME
#undef TEXT
#undef EP

/* ---- registry ---- */

static const px_wire_struct *const registry[PX_MSG_TYPE_MAX] = {
    [PX_MSG_HELLO] = &hello_desc,
    [PX_MSG_HEARTBEAT] = &heartbeat_desc,
    [PX_MSG_ERROR] = &error_desc,
    [PX_MSG_PROBE] = &probe_desc,
    [PX_MSG_REGISTER] = &register_desc,
    [PX_MSG_REGISTERED] = &registered_desc,
    [PX_MSG_PLAN] = &plan_desc,
    [PX_MSG_STATUS] = &status_desc,
    [PX_MSG_REQUEST] = &request_desc,
    [PX_MSG_REPLY] = &reply_desc,
    [PX_MSG_CAN] = &can_desc,
    [PX_MSG_TOOL] = &tool_desc,
    [PX_MSG_TOOL_REPLY] = &tool_reply_desc,
    [PX_MSG_ETH] = &eth_desc,
    [PX_MSG_SHM] = &shm_desc,
    [PX_MSG_CXL] = &cxl_desc,
    [PX_MSG_CXLSYNC] = &cxlsync_desc,
};

const px_wire_struct *px_wire_body_desc(uint32_t type)
{
    if (type >= PX_MSG_TYPE_MAX)
        return NULL;
    return registry[type];
}

const char *px_msg_type_name(uint32_t type)
{
    const px_wire_struct *d = px_wire_body_desc(type);
    return d ? d->name : NULL;
}

/* ---- table support: equality and self-check ---- */

bool px_wire_struct_eq(const px_wire_struct *d, const void *a, const void *b)
{
    for (uint32_t i = 0; i < d->n_fields; i++) {
        const px_wire_field *f = &d->fields[i];
        switch ((px_wf_kind)f->kind) {
        case PX_WF_U32:
            if (*PX_WF_CPTR(a, f, uint32_t) != *PX_WF_CPTR(b, f, uint32_t))
                return false;
            break;
        case PX_WF_U64:
            if (*PX_WF_CPTR(a, f, uint64_t) != *PX_WF_CPTR(b, f, uint64_t))
                return false;
            break;
        case PX_WF_I32:
            if (*PX_WF_CPTR(a, f, int32_t) != *PX_WF_CPTR(b, f, int32_t))
                return false;
            break;
        case PX_WF_STR: {
            px_str x = *PX_WF_CPTR(a, f, px_str), y = *PX_WF_CPTR(b, f, px_str);
            if (x.len != y.len || (x.len && memcmp(x.ptr, y.ptr, x.len)))
                return false;
            break;
        }
        case PX_WF_BIN: {
            px_bin x = *PX_WF_CPTR(a, f, px_bin), y = *PX_WF_CPTR(b, f, px_bin);
            if (x.len != y.len || (x.len && memcmp(x.ptr, y.ptr, x.len)))
                return false;
            break;
        }
        case PX_WF_STR_ARRAY:
        case PX_WF_STRUCT_ARRAY: {
            uint32_t n = PX_WF_CCOUNT(a, f);
            if (n != PX_WF_CCOUNT(b, f) || n > f->max_count)
                return false;
            for (uint32_t k = 0; k < n; k++) {
                if (f->kind == PX_WF_STR_ARRAY) {
                    px_str x = PX_WF_CPTR(a, f, px_str)[k], y = PX_WF_CPTR(b, f, px_str)[k];
                    if (x.len != y.len || (x.len && memcmp(x.ptr, y.ptr, x.len)))
                        return false;
                } else {
                    size_t o = f->off + (size_t)k * f->elem_size;
                    if (!px_wire_struct_eq(f->sub, (const uint8_t *)a + o, (const uint8_t *)b + o))
                        return false;
                }
            }
            break;
        }
        }
    }
    return true;
}

static bool field_bad(const px_wire_struct *d, uint32_t i, const char *why, px_errmsg *em)
{
    const char *key = d->fields[i].key;
    px_errmsg_set(em, PX_E_INVAL, "%s: field %u (\"%s\") in the wire table: %s", d->name, i,
                  key ? key : "?", why);
    return false;
}

/* `depth` is the nesting of d's own map (a body's map sits at 2). */
static bool table_ok_at(const px_wire_struct *d, unsigned depth, px_errmsg *em)
{
    if (!d->name || d->n_fields > PX_WIRE_MAX_FIELDS || (d->n_fields && !d->fields)) {
        px_errmsg_set(em, PX_E_INVAL, "%s: bad table header (name, fields, n_fields ≤ %u)",
                      d->name ? d->name : "?", PX_WIRE_MAX_FIELDS);
        return false;
    }
    if (depth > PX_WIRE_MAX_DEPTH) {
        px_errmsg_set(em, PX_E_INVAL, "%s: nests %u deep; PX_WIRE_MAX_DEPTH is %u", d->name, depth,
                      PX_WIRE_MAX_DEPTH);
        return false;
    }
    for (uint32_t i = 0; i < d->n_fields; i++) {
        const px_wire_field *f = &d->fields[i];
        if (!f->key || f->key_len == 0 || f->key_len > 32 || strlen(f->key) != f->key_len)
            return field_bad(d, i, "key missing, empty, longer than 32 or key_len wrong", em);
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(d->fields[j].key, f->key) == 0)
                return field_bad(d, i, "duplicate key", em);
        size_t vsize;
        bool array = f->kind == PX_WF_STR_ARRAY || f->kind == PX_WF_STRUCT_ARRAY;
        switch ((px_wf_kind)f->kind) {
        case PX_WF_U32:
        case PX_WF_I32:
            vsize = 4;
            break;
        case PX_WF_U64:
            vsize = 8;
            break;
        case PX_WF_STR:
        case PX_WF_STR_ARRAY:
            if (f->max_len > PX_WIRE_MAX_STR)
                return field_bad(d, i, "max_len above PX_WIRE_MAX_STR", em);
            vsize = sizeof(px_str) * (array ? f->max_count : 1);
            break;
        case PX_WF_BIN:
            if (f->max_len > PX_WIRE_MAX_BIN)
                return field_bad(d, i, "max_len above PX_WIRE_MAX_BIN", em);
            vsize = sizeof(px_bin);
            break;
        case PX_WF_STRUCT_ARRAY:
            if (!f->sub || f->sub->size != f->elem_size)
                return field_bad(d, i, "sub-struct missing or of another size", em);
            if (!table_ok_at(f->sub, depth + 2, em))
                return false;
            vsize = (size_t)f->elem_size * f->max_count;
            break;
        default:
            return field_bad(d, i, "unknown kind", em);
        }
        if (array && (f->max_count > PX_WIRE_MAX_COUNT || depth + 1 > PX_WIRE_MAX_DEPTH ||
                      f->count_off + sizeof(uint32_t) > d->size))
            return field_bad(d, i, "capacity, depth or count offset out of range", em);
        if (f->off + vsize > d->size)
            return field_bad(d, i, "lies outside the struct", em);
    }
    return true;
}

bool px_wire_table_ok(const px_wire_struct *d, px_errmsg *em)
{
    return d && table_ok_at(d, 2, em);
}
