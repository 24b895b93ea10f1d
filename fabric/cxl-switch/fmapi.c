/* plexus — CXL FM API codecs (fmapi.h). Byte by byte, little-endian, so the
 * layout does not depend on the host's endianness or struct packing. */
#include "fabric/cxl-switch/fmapi.h"

#include <string.h>

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Room for need bytes: sets *len, or says PX_E_TOOBIG with *len = 0. */
static px_err room(size_t cap, size_t need, size_t *len)
{
    if (need > cap) {
        *len = 0;
        return PX_E_TOOBIG;
    }
    *len = need;
    return PX_OK;
}

/* A payload of exactly need bytes. */
static px_err exact(size_t len, size_t need)
{
    if (len < need)
        return PX_E_TRUNCATED;
    return len > need ? PX_E_PROTO : PX_OK;
}

/* ---- names ---------------------------------------------------------------- */

static const char *const rc_names[] = {
    [PX_CCI_SUCCESS] = "Success",
    [PX_CCI_BACKGROUND_STARTED] = "Background Command Started",
    [PX_CCI_INVALID_INPUT] = "Invalid Input",
    [PX_CCI_UNSUPPORTED] = "Unsupported",
    [PX_CCI_INTERNAL_ERROR] = "Internal Error",
    [PX_CCI_RETRY_REQUIRED] = "Retry Required",
    [PX_CCI_BUSY] = "Busy",
    [PX_CCI_MEDIA_DISABLED] = "Media Disabled",
    [PX_CCI_FW_TRANSFER_IN_PROGRESS] = "FW Transfer in Progress",
    [PX_CCI_FW_TRANSFER_OUT_OF_ORDER] = "FW Transfer Out of Order",
    [PX_CCI_FW_VERIFICATION_FAILED] = "FW Verification Failed",
    [PX_CCI_INVALID_SLOT] = "Invalid Slot",
    [PX_CCI_ACTIVATION_FAILED_ROLLED_BACK] = "Activation Failed, FW Rolled Back",
    [PX_CCI_ACTIVATION_FAILED_RESET_REQUIRED] = "Activation Failed, Cold Reset Required",
    [PX_CCI_INVALID_HANDLE] = "Invalid Handle",
    [PX_CCI_INVALID_PHYSICAL_ADDRESS] = "Invalid Physical Address",
    [PX_CCI_INJECT_POISON_LIMIT] = "Inject Poison Limit Reached",
    [PX_CCI_PERMANENT_MEDIA_FAILURE] = "Permanent Media Failure",
    [PX_CCI_ABORTED] = "Aborted",
    [PX_CCI_INVALID_SECURITY_STATE] = "Invalid Security State",
    [PX_CCI_INCORRECT_PASSPHRASE] = "Incorrect Passphrase",
    [PX_CCI_UNSUPPORTED_MAILBOX] = "Unsupported Mailbox or CCI",
    [PX_CCI_INVALID_PAYLOAD_LENGTH] = "Invalid Payload Length",
    [PX_CCI_INVALID_LOG] = "Invalid Log",
    [PX_CCI_INTERRUPTED] = "Interrupted",
    [PX_CCI_UNSUPPORTED_FEATURE_VERSION] = "Unsupported Feature Version",
    [PX_CCI_UNSUPPORTED_FEATURE_SELECTION] = "Unsupported Feature Selection Value",
    [PX_CCI_FEATURE_TRANSFER_IN_PROGRESS] = "Feature Transfer in Progress",
    [PX_CCI_FEATURE_TRANSFER_OUT_OF_ORDER] = "Feature Transfer Out of Order",
    [PX_CCI_RESOURCES_EXHAUSTED] = "Resources Exhausted",
    [PX_CCI_INVALID_EXTENT_LIST] = "Invalid Extent List",
    [PX_CCI_TRANSFER_OUT_OF_ORDER] = "Transfer Out of Order",
    [PX_CCI_REQUEST_ABORT_NOT_SUPPORTED] = "Request Abort Not Supported",
};

const char *px_cci_rc_name(uint16_t rc)
{
    if (rc < sizeof(rc_names) / sizeof(rc_names[0]) && rc_names[rc])
        return rc_names[rc];
    return "unknown return code";
}

const char *px_fm_opcode_name(uint16_t opcode)
{
    switch (opcode) {
    case PX_FM_IDENTIFY_SWITCH:
        return "Identify Switch Device";
    case PX_FM_GET_PORT_STATE:
        return "Get Physical Port State";
    case PX_FM_GET_VCS_INFO:
        return "Get Virtual CXL Switch Info";
    case PX_FM_BIND_VPPB:
        return "Bind vPPB";
    case PX_FM_UNBIND_VPPB:
        return "Unbind vPPB";
    case PX_FM_TUNNEL:
        return "Tunnel Management Command";
    case PX_FM_GET_LD_INFO:
        return "Get LD Info";
    case PX_FM_GET_LD_ALLOC:
        return "Get LD Allocations";
    case PX_FM_SET_LD_ALLOC:
        return "Set LD Allocations";
    default:
        return "unknown opcode";
    }
}

/* ---- CCI message ------------------------------------------------------------ */

px_err px_cci_hdr_encode(const px_cci_hdr *h, uint8_t *out, size_t cap)
{
    if (h->category > 0xf || h->payload_len > PX_CCI_MAX_PAYLOAD)
        return PX_E_INVAL;
    if (cap < PX_CCI_HDR_LEN)
        return PX_E_TOOBIG;
    out[0] = h->category;
    out[1] = h->tag;
    out[2] = 0;
    put16(out + 3, h->opcode);
    out[5] = (uint8_t)h->payload_len;
    out[6] = (uint8_t)(h->payload_len >> 8);
    out[7] = (uint8_t)((h->payload_len >> 16) | (h->bo ? 0x80u : 0u));
    put16(out + 8, h->rc);
    put16(out + 10, h->vendor_status);
    return PX_OK;
}

px_err px_cci_decode(const uint8_t *msg, size_t len, px_cci_hdr *h, px_errmsg *em)
{
    if (len < PX_CCI_HDR_LEN)
        return px_errmsg_set(em, PX_E_TRUNCATED, "CCI message of %zu bytes, the header alone is %u",
                             len, PX_CCI_HDR_LEN);
    h->category = msg[0] & 0xf;
    h->tag = msg[1];
    h->opcode = get16(msg + 3);
    h->payload_len = (uint32_t)msg[5] | (uint32_t)msg[6] << 8 | (uint32_t)(msg[7] & 0x1f) << 16;
    h->bo = (msg[7] & 0x80) != 0;
    h->rc = get16(msg + 8);
    h->vendor_status = get16(msg + 10);
    size_t have = len - PX_CCI_HDR_LEN;
    if (have < h->payload_len)
        return px_errmsg_set(em, PX_E_TRUNCATED,
                             "CCI message says %u payload bytes, %zu follow the header",
                             (unsigned)h->payload_len, have);
    if (have > h->payload_len)
        return px_errmsg_set(em, PX_E_PROTO,
                             "CCI message says %u payload bytes, %zu follow the header",
                             (unsigned)h->payload_len, have);
    return PX_OK;
}

px_err px_cci_request(uint16_t opcode, uint8_t tag, const uint8_t *payload, size_t plen,
                      uint8_t *out, size_t cap, size_t *len)
{
    *len = 0;
    if (plen > PX_CCI_MAX_PAYLOAD)
        return PX_E_INVAL;
    px_cci_hdr h = {.category = PX_CCI_CAT_REQUEST,
                    .tag = tag,
                    .opcode = opcode,
                    .payload_len = (uint32_t)plen};
    if (cap < PX_CCI_HDR_LEN || cap - PX_CCI_HDR_LEN < plen)
        return PX_E_TOOBIG;
    px_err err = px_cci_hdr_encode(&h, out, cap);
    if (err != PX_OK)
        return err;
    if (plen)
        memcpy(out + PX_CCI_HDR_LEN, payload, plen);
    *len = PX_CCI_HDR_LEN + plen;
    return PX_OK;
}

/* ---- Identify Switch Device ------------------------------------------------- */

px_err px_fm_identify_sw_encode(const px_fm_identify_sw *v, uint8_t *out, size_t cap, size_t *len)
{
    px_err err = room(cap, PX_FM_IDENTIFY_SW_LEN, len);
    if (err != PX_OK)
        return err;
    out[0] = v->ingress_port;
    out[1] = 0;
    out[2] = v->n_phys_ports;
    out[3] = v->n_vcs;
    memcpy(out + 4, v->active_ports, 32);
    memcpy(out + 36, v->active_vcs, 32);
    put16(out + 68, v->total_vppbs);
    put16(out + 70, v->bound_vppbs);
    out[72] = v->hdm_decoders;
    return PX_OK;
}

px_err px_fm_identify_sw_decode(const uint8_t *pl, size_t len, px_fm_identify_sw *v)
{
    px_err err = exact(len, PX_FM_IDENTIFY_SW_LEN);
    if (err != PX_OK)
        return err;
    v->ingress_port = pl[0];
    v->n_phys_ports = pl[2];
    v->n_vcs = pl[3];
    memcpy(v->active_ports, pl + 4, 32);
    memcpy(v->active_vcs, pl + 36, 32);
    v->total_vppbs = get16(pl + 68);
    v->bound_vppbs = get16(pl + 70);
    v->hdm_decoders = pl[72];
    return PX_OK;
}

/* ---- Get Physical Port State ------------------------------------------------ */

px_err px_fm_port_state_req_encode(const px_fm_port_state_req *v, uint8_t *out, size_t cap,
                                   size_t *len)
{
    px_err err = room(cap, 1u + v->n_ports, len);
    if (err != PX_OK)
        return err;
    out[0] = v->n_ports;
    memcpy(out + 1, v->ports, v->n_ports);
    return PX_OK;
}

px_err px_fm_port_state_req_decode(const uint8_t *pl, size_t len, px_fm_port_state_req *v)
{
    if (len < 1)
        return PX_E_TRUNCATED;
    px_err err = exact(len, 1u + pl[0]);
    if (err != PX_OK)
        return err;
    v->n_ports = pl[0];
    memcpy(v->ports, pl + 1, v->n_ports);
    return PX_OK;
}

static void port_info_put(uint8_t *p, const px_fm_port_info *b)
{
    p[0] = b->port_id;
    p[1] = b->config_state & 0xf;
    p[2] = b->dev_mode;
    p[3] = 0;
    p[4] = b->dev_type;
    p[5] = b->cxl_modes;
    p[6] = b->max_link_width;
    p[7] = b->link_width;
    p[8] = b->link_speeds;
    p[9] = b->max_link_speed;
    p[10] = b->link_speed;
    p[11] = b->ltssm;
    p[12] = b->first_lane;
    put16(p + 13, b->link_flags);
    p[15] = b->ld_count;
}

static void port_info_get(const uint8_t *p, px_fm_port_info *b)
{
    b->port_id = p[0];
    b->config_state = p[1] & 0xf;
    b->dev_mode = p[2];
    b->dev_type = p[4];
    b->cxl_modes = p[5];
    b->max_link_width = p[6];
    b->link_width = p[7];
    b->link_speeds = p[8];
    b->max_link_speed = p[9];
    b->link_speed = p[10];
    b->ltssm = p[11];
    b->first_lane = p[12];
    b->link_flags = get16(p + 13);
    b->ld_count = p[15];
}

px_err px_fm_port_state_rsp_encode(const px_fm_port_info *ports, size_t n, uint8_t *out, size_t cap,
                                   size_t *len)
{
    if (n > PX_FM_LIST_MAX) {
        *len = 0;
        return PX_E_INVAL;
    }
    px_err err = room(cap, 4 + n * PX_FM_PORT_INFO_LEN, len);
    if (err != PX_OK)
        return err;
    out[0] = (uint8_t)n;
    memset(out + 1, 0, 3);
    for (size_t i = 0; i < n; i++)
        port_info_put(out + 4 + i * PX_FM_PORT_INFO_LEN, &ports[i]);
    return PX_OK;
}

px_err px_fm_port_state_rsp_decode(const uint8_t *pl, size_t len, px_fm_port_info *ports,
                                   size_t max, size_t *n)
{
    if (len < 4)
        return PX_E_TRUNCATED;
    px_err err = exact(len, 4 + (size_t)pl[0] * PX_FM_PORT_INFO_LEN);
    if (err != PX_OK)
        return err;
    if (pl[0] > max)
        return PX_E_TOOBIG;
    *n = pl[0];
    for (size_t i = 0; i < *n; i++)
        port_info_get(pl + 4 + i * PX_FM_PORT_INFO_LEN, &ports[i]);
    return PX_OK;
}

/* ---- Get Virtual CXL Switch Info -------------------------------------------- */

px_err px_fm_vcs_info_req_encode(const px_fm_vcs_info_req *v, uint8_t *out, size_t cap, size_t *len)
{
    px_err err = room(cap, 3u + v->n_vcs, len);
    if (err != PX_OK)
        return err;
    out[0] = v->start_vppb;
    out[1] = v->vppb_limit;
    out[2] = v->n_vcs;
    memcpy(out + 3, v->vcs, v->n_vcs);
    return PX_OK;
}

px_err px_fm_vcs_info_req_decode(const uint8_t *pl, size_t len, px_fm_vcs_info_req *v)
{
    if (len < 3)
        return PX_E_TRUNCATED;
    px_err err = exact(len, 3u + pl[2]);
    if (err != PX_OK)
        return err;
    v->start_vppb = pl[0];
    v->vppb_limit = pl[1];
    v->n_vcs = pl[2];
    memcpy(v->vcs, pl + 3, v->n_vcs);
    return PX_OK;
}

px_err px_fm_vcs_info_rsp_begin(uint8_t n_vcs, uint8_t *out, size_t cap, size_t *len)
{
    px_err err = room(cap, 4, len);
    if (err != PX_OK)
        return err;
    out[0] = n_vcs;
    memset(out + 1, 0, 3);
    return PX_OK;
}

px_err px_fm_vcs_block_encode(const px_fm_vcs_block *b, uint8_t *out, size_t cap, size_t *len)
{
    px_err err =
        room(cap, PX_FM_VCS_BLOCK_HDR_LEN + (size_t)b->n_entries * PX_FM_VPPB_INFO_LEN, len);
    if (err != PX_OK)
        return err;
    out[0] = b->vcs_id;
    out[1] = b->state;
    out[2] = b->usp_id;
    out[3] = b->n_vppbs;
    for (size_t i = 0; i < b->n_entries; i++) {
        uint8_t *p = out + PX_FM_VCS_BLOCK_HDR_LEN + i * PX_FM_VPPB_INFO_LEN;
        p[0] = b->entries[i].status;
        p[1] = b->entries[i].port;
        p[2] = b->entries[i].ld;
        p[3] = 0;
    }
    return PX_OK;
}

px_err px_fm_vcs_info_rsp_encode(const px_fm_vcs_block *blocks, size_t n, uint8_t *out, size_t cap,
                                 size_t *len)
{
    *len = 0;
    if (n > PX_FM_LIST_MAX)
        return PX_E_INVAL;
    size_t off, w;
    px_err err = px_fm_vcs_info_rsp_begin((uint8_t)n, out, cap, &off);
    for (size_t i = 0; err == PX_OK && i < n; i++) {
        err = px_fm_vcs_block_encode(&blocks[i], out + off, cap - off, &w);
        off += w;
    }
    if (err == PX_OK)
        *len = off;
    return err;
}

px_err px_fm_vcs_info_rsp_decode(const uint8_t *pl, size_t len, uint8_t start_vppb,
                                 uint8_t vppb_limit, px_fm_vcs_block *blocks, size_t max, size_t *n)
{
    if (len < 4)
        return PX_E_TRUNCATED;
    if (pl[0] > max)
        return PX_E_TOOBIG;
    size_t off = 4;
    for (size_t i = 0; i < pl[0]; i++) {
        if (len - off < PX_FM_VCS_BLOCK_HDR_LEN)
            return PX_E_TRUNCATED;
        px_fm_vcs_block *b = &blocks[i];
        b->vcs_id = pl[off];
        b->state = pl[off + 1];
        b->usp_id = pl[off + 2];
        b->n_vppbs = pl[off + 3];
        unsigned left = b->n_vppbs > start_vppb ? (unsigned)(b->n_vppbs - start_vppb) : 0;
        b->n_entries = (uint8_t)(left < vppb_limit ? left : vppb_limit);
        off += PX_FM_VCS_BLOCK_HDR_LEN;
        if ((len - off) / PX_FM_VPPB_INFO_LEN < b->n_entries)
            return PX_E_TRUNCATED;
        for (size_t j = 0; j < b->n_entries; j++, off += PX_FM_VPPB_INFO_LEN) {
            b->entries[j].status = pl[off];
            b->entries[j].port = pl[off + 1];
            b->entries[j].ld = pl[off + 2];
        }
    }
    if (off != len)
        return PX_E_PROTO;
    *n = pl[0];
    return PX_OK;
}

/* ---- Bind / Unbind vPPB ----------------------------------------------------- */

px_err px_fm_bind_req_encode(const px_fm_bind_req *v, uint8_t *out, size_t cap, size_t *len)
{
    px_err err = room(cap, PX_FM_BIND_REQ_LEN, len);
    if (err != PX_OK)
        return err;
    out[0] = v->vcs;
    out[1] = v->vppb;
    out[2] = v->port;
    out[3] = 0;
    put16(out + 4, v->ld);
    return PX_OK;
}

px_err px_fm_bind_req_decode(const uint8_t *pl, size_t len, px_fm_bind_req *v)
{
    px_err err = exact(len, PX_FM_BIND_REQ_LEN);
    if (err != PX_OK)
        return err;
    v->vcs = pl[0];
    v->vppb = pl[1];
    v->port = pl[2];
    v->ld = get16(pl + 4);
    return PX_OK;
}

px_err px_fm_unbind_req_encode(const px_fm_unbind_req *v, uint8_t *out, size_t cap, size_t *len)
{
    if (v->option > 0xf) {
        *len = 0;
        return PX_E_INVAL;
    }
    px_err err = room(cap, PX_FM_UNBIND_REQ_LEN, len);
    if (err != PX_OK)
        return err;
    out[0] = v->vcs;
    out[1] = v->vppb;
    out[2] = v->option;
    return PX_OK;
}

px_err px_fm_unbind_req_decode(const uint8_t *pl, size_t len, px_fm_unbind_req *v)
{
    px_err err = exact(len, PX_FM_UNBIND_REQ_LEN);
    if (err != PX_OK)
        return err;
    v->vcs = pl[0];
    v->vppb = pl[1];
    v->option = pl[2] & 0xf;
    return PX_OK;
}

/* ---- Tunnel Management Command ---------------------------------------------- */

/* Request and response share the shape: a 4-byte header whose bytes 2..3
 * (request) or 0..1 (response) hold the size of the message that follows. */
static px_err tunnel_encode(const px_fm_tunnel *v, bool req, uint8_t *out, size_t cap, size_t *len)
{
    if (v->msg_len < PX_CCI_HDR_LEN || v->msg_len > UINT16_MAX) {
        *len = 0;
        return PX_E_INVAL;
    }
    px_err err = room(cap, PX_FM_TUNNEL_HDR_LEN + v->msg_len, len);
    if (err != PX_OK)
        return err;
    if (req) {
        out[0] = v->target;
        out[1] = v->target_type;
        put16(out + 2, (uint16_t)v->msg_len);
    } else {
        put16(out, (uint16_t)v->msg_len);
        out[2] = out[3] = 0;
    }
    memcpy(out + PX_FM_TUNNEL_HDR_LEN, v->msg, v->msg_len);
    return PX_OK;
}

static px_err tunnel_decode(const uint8_t *pl, size_t len, bool req, px_fm_tunnel *v)
{
    if (len < PX_FM_TUNNEL_HDR_LEN)
        return PX_E_TRUNCATED;
    size_t size = get16(pl + (req ? 2 : 0));
    px_err err = exact(len - PX_FM_TUNNEL_HDR_LEN, size);
    if (err != PX_OK)
        return err;
    if (size < PX_CCI_HDR_LEN)
        return PX_E_TRUNCATED;
    v->target = req ? pl[0] : 0;
    v->target_type = req ? pl[1] : 0;
    v->msg = pl + PX_FM_TUNNEL_HDR_LEN;
    v->msg_len = size;
    return PX_OK;
}

px_err px_fm_tunnel_req_encode(const px_fm_tunnel *v, uint8_t *out, size_t cap, size_t *len)
{
    return tunnel_encode(v, true, out, cap, len);
}

px_err px_fm_tunnel_req_decode(const uint8_t *pl, size_t len, px_fm_tunnel *v)
{
    return tunnel_decode(pl, len, true, v);
}

px_err px_fm_tunnel_rsp_encode(const px_fm_tunnel *v, uint8_t *out, size_t cap, size_t *len)
{
    return tunnel_encode(v, false, out, cap, len);
}

px_err px_fm_tunnel_rsp_decode(const uint8_t *pl, size_t len, px_fm_tunnel *v)
{
    return tunnel_decode(pl, len, false, v);
}

/* ---- LD Info and allocations ------------------------------------------------ */

px_err px_fm_ld_info_encode(const px_fm_ld_info *v, uint8_t *out, size_t cap, size_t *len)
{
    px_err err = room(cap, PX_FM_LD_INFO_LEN, len);
    if (err != PX_OK)
        return err;
    put64(out, v->memory_size);
    put16(out + 8, v->ld_count);
    out[10] = v->qos_caps;
    return PX_OK;
}

px_err px_fm_ld_info_decode(const uint8_t *pl, size_t len, px_fm_ld_info *v)
{
    px_err err = exact(len, PX_FM_LD_INFO_LEN);
    if (err != PX_OK)
        return err;
    v->memory_size = get64(pl);
    v->ld_count = get16(pl + 8);
    v->qos_caps = pl[10];
    return PX_OK;
}

static void ld_allocs_put(uint8_t *p, const px_fm_ld_alloc *ld, size_t n)
{
    for (size_t i = 0; i < n; i++, p += PX_FM_LD_ALLOC_LEN) {
        put64(p, ld[i].range1);
        put64(p + 8, ld[i].range2);
    }
}

static void ld_allocs_get(const uint8_t *p, px_fm_ld_alloc *ld, size_t n)
{
    for (size_t i = 0; i < n; i++, p += PX_FM_LD_ALLOC_LEN) {
        ld[i].range1 = get64(p);
        ld[i].range2 = get64(p + 8);
    }
}

px_err px_fm_get_ld_alloc_req_encode(const px_fm_get_ld_alloc_req *v, uint8_t *out, size_t cap,
                                     size_t *len)
{
    px_err err = room(cap, PX_FM_GET_LD_ALLOC_REQ_LEN, len);
    if (err != PX_OK)
        return err;
    out[0] = v->start_ld;
    out[1] = v->limit;
    return PX_OK;
}

px_err px_fm_get_ld_alloc_req_decode(const uint8_t *pl, size_t len, px_fm_get_ld_alloc_req *v)
{
    px_err err = exact(len, PX_FM_GET_LD_ALLOC_REQ_LEN);
    if (err != PX_OK)
        return err;
    v->start_ld = pl[0];
    v->limit = pl[1];
    return PX_OK;
}

px_err px_fm_get_ld_alloc_rsp_encode(const px_fm_get_ld_alloc_rsp *v, uint8_t *out, size_t cap,
                                     size_t *len)
{
    px_err err = room(cap, 4 + (size_t)v->n * PX_FM_LD_ALLOC_LEN, len);
    if (err != PX_OK)
        return err;
    out[0] = v->n_lds;
    out[1] = v->granularity;
    out[2] = v->start_ld;
    out[3] = v->n;
    ld_allocs_put(out + 4, v->ld, v->n);
    return PX_OK;
}

px_err px_fm_get_ld_alloc_rsp_decode(const uint8_t *pl, size_t len, px_fm_get_ld_alloc_rsp *v)
{
    if (len < 4)
        return PX_E_TRUNCATED;
    px_err err = exact(len, 4 + (size_t)pl[3] * PX_FM_LD_ALLOC_LEN);
    if (err != PX_OK)
        return err;
    v->n_lds = pl[0];
    v->granularity = pl[1];
    v->start_ld = pl[2];
    v->n = pl[3];
    ld_allocs_get(pl + 4, v->ld, v->n);
    return PX_OK;
}

px_err px_fm_set_ld_alloc_encode(const px_fm_set_ld_alloc *v, uint8_t *out, size_t cap, size_t *len)
{
    px_err err = room(cap, 4 + (size_t)v->n * PX_FM_LD_ALLOC_LEN, len);
    if (err != PX_OK)
        return err;
    out[0] = v->n;
    out[1] = v->start_ld;
    out[2] = out[3] = 0;
    ld_allocs_put(out + 4, v->ld, v->n);
    return PX_OK;
}

px_err px_fm_set_ld_alloc_decode(const uint8_t *pl, size_t len, px_fm_set_ld_alloc *v)
{
    if (len < 4)
        return PX_E_TRUNCATED;
    px_err err = exact(len, 4 + (size_t)pl[0] * PX_FM_LD_ALLOC_LEN);
    if (err != PX_OK)
        return err;
    v->n = pl[0];
    v->start_ld = pl[1];
    ld_allocs_get(pl + 4, v->ld, v->n);
    return PX_OK;
}
