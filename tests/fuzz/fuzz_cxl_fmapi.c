/* plexus — libFuzzer target: the CXL FM API (fabric/cxl-switch): whole CCI
 * requests into px_cxlsw_execute on a small switch, and the decoders alone.
 *
 * Input: byte 0 picks the mode.
 *   even: requests. The rest is records, each
 *           port byte (0xff: the switch's CCI, else that physical port:
 *                      0-1 USPs, 2-3 pools, others nothing),
 *           cap byte  (0: PX_CXLSW_MSG_MAX, else 12 + 8 * (cap - 1)),
 *           u16 LE length, then that many request bytes (fewer if the
 *           input ends first),
 *         executed in order on a switch with 2 VCSs of 4 vPPBs, pool p0 (4
 *         LDs of 256 MiB) on port 2 and p1 (2 LDs of 1 GiB) on port 3, VCS
 *         0 vPPB 0 bound to p0 LD 0.
 *   odd:  decoders. Bytes 1 and 2 are the start vPPB and vPPB list limit
 *         a Get Virtual CXL Switch Info response is read with; the rest is
 *         given to the CCI header decoder and every payload decoder in
 *         fmapi.h.
 *
 * Properties checked:
 *   - every request gets PX_OK and a well-formed response: within the
 *     buffer, header decodes with its payload exactly, category response,
 *     tag and opcode of the request (as far as its bytes go), BO clear, a
 *     return code from the specification's table, no payload unless
 *     Success, and a Success payload that decodes as that command's
 *     response (count fields matching the request's; a tunnelled answer
 *     checked the same way, recursively);
 *   - the same records on a second, identical switch give the same bytes;
 *   - after each request the state is consistent: per-LD user counts match
 *     the binding list, bound LDs have memory, no pool is over capacity,
 *     Identify Switch Device counts the same bound vPPBs;
 *   - a decoder that accepts its input re-encodes it to the same length,
 *     and that decodes again to the same value; the header re-encodes to
 *     the same bytes but for its reserved bits.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fabric/cxl-switch/fmapi.h"
#include "fabric/cxl-switch/switch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

static uint8_t rsp_a[PX_CXLSW_MSG_MAX], rsp_b[PX_CXLSW_MSG_MAX];
static px_fm_vcs_block blocks_a[PX_FM_LIST_MAX], blocks_b[PX_FM_LIST_MAX];
static px_fm_port_info ports_a[PX_FM_LIST_MAX], ports_b[PX_FM_LIST_MAX];
static px_fm_get_ld_alloc_rsp gla_a, gla_b;
static px_fm_set_ld_alloc sla_a, sla_b;
static uint8_t enc[PX_CXLSW_MSG_MAX];

static px_cxlsw *mk(void)
{
    static const px_cxlsw_pool_cfg pools[] = {{"p0", 4, 256ull << 20}, {"p1", 2, 1ull << 30}};
    static const px_cxlsw_binding init[] = {{0, 0, 0, 0}};
    px_cxlsw_cfg cfg = {.name = "fz",
                        .n_ports = 2,
                        .pools = pools,
                        .n_pools = 2,
                        .bindings = init,
                        .n_bindings = 1};
    px_cxlsw *sw = NULL;
    CHECK(px_cxlsw_new(&cfg, &sw, NULL) == PX_OK);
    return sw;
}

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

/* The answer rsp[0..rlen) to req[0..len), written into at most cap bytes. */
static void check_rsp(const uint8_t *req, size_t len, const uint8_t *rsp, size_t rlen, size_t cap)
{
    CHECK(rlen >= PX_CCI_HDR_LEN && rlen <= cap && rlen <= PX_CXLSW_MSG_MAX);
    px_cci_hdr h;
    CHECK(px_cci_decode(rsp, rlen, &h, NULL) == PX_OK);
    CHECK(rsp[0] == PX_CCI_CAT_RESPONSE && rsp[2] == 0 && (rsp[7] & 0xe0) == 0);
    CHECK(!h.bo);
    CHECK(h.rc <= PX_CCI_REQUEST_ABORT_NOT_SUPPORTED);
    CHECK(h.tag == (len > 1 ? req[1] : 0));
    CHECK(h.opcode == (len > 4 ? le16(req + 3) : 0));
    if (h.rc != PX_CCI_SUCCESS) {
        CHECK(h.payload_len == 0);
        CHECK(h.vendor_status <= PX_CXLSW_VS_TARGET);
        return;
    }
    CHECK(h.vendor_status == 0);
    /* Success: the request was well formed, so its payload can be read. */
    const uint8_t *qp = req + PX_CCI_HDR_LEN;
    size_t qlen = len - PX_CCI_HDR_LEN;
    const uint8_t *pl = rsp + PX_CCI_HDR_LEN;
    size_t n;
    switch (h.opcode) {
    case PX_FM_IDENTIFY_SWITCH: {
        px_fm_identify_sw v;
        CHECK(px_fm_identify_sw_decode(pl, h.payload_len, &v) == PX_OK);
        break;
    }
    case PX_FM_GET_PORT_STATE:
        CHECK(px_fm_port_state_rsp_decode(pl, h.payload_len, ports_a, PX_FM_LIST_MAX, &n) == PX_OK);
        CHECK(qlen >= 1 && n == qp[0] && n > 0);
        break;
    case PX_FM_GET_VCS_INFO:
        CHECK(qlen >= 3);
        CHECK(px_fm_vcs_info_rsp_decode(pl, h.payload_len, qp[0], qp[1], blocks_a, PX_FM_LIST_MAX,
                                        &n) == PX_OK);
        CHECK(n == qp[2] && n > 0);
        break;
    case PX_FM_BIND_VPPB:
    case PX_FM_UNBIND_VPPB:
        CHECK(h.payload_len == 0);
        break;
    case PX_FM_TUNNEL: {
        px_fm_tunnel q, r;
        CHECK(px_fm_tunnel_req_decode(qp, qlen, &q) == PX_OK);
        CHECK(px_fm_tunnel_rsp_decode(pl, h.payload_len, &r) == PX_OK);
        check_rsp(q.msg, q.msg_len, r.msg, r.msg_len, r.msg_len);
        break;
    }
    case PX_FM_GET_LD_INFO: {
        px_fm_ld_info v;
        CHECK(px_fm_ld_info_decode(pl, h.payload_len, &v) == PX_OK);
        CHECK(v.ld_count >= 1 && v.memory_size > 0);
        break;
    }
    case PX_FM_GET_LD_ALLOC:
        CHECK(px_fm_get_ld_alloc_rsp_decode(pl, h.payload_len, &gla_a) == PX_OK);
        CHECK(qlen == 2 && gla_a.start_ld == qp[0] && gla_a.n >= 1 && gla_a.n <= qp[1]);
        break;
    case PX_FM_SET_LD_ALLOC:
        CHECK(px_fm_set_ld_alloc_decode(pl, h.payload_len, &sla_a) == PX_OK);
        CHECK(qlen >= 4 && sla_a.n == qp[0] && sla_a.start_ld == qp[1]);
        break;
    default:
        CHECK(0); /* success for a command nobody implements */
    }
}

static void check_state(px_cxlsw *sw)
{
    static px_cxlsw_binding b[2 * PX_CXLSW_VPPBS];
    size_t nb = px_cxlsw_bindings(sw, b, 2 * PX_CXLSW_VPPBS);
    CHECK(nb <= 2 * PX_CXLSW_VPPBS);
    for (uint32_t pool = 0; pool < px_cxlsw_n_pools(sw); pool++) {
        px_cxlsw_pool_info info;
        CHECK(px_cxlsw_pool(sw, pool, &info) == PX_OK);
        uint64_t units = 0;
        for (uint32_t ld = 0; ld < info.n_lds; ld++) {
            uint32_t users = 0;
            for (size_t i = 0; i < nb; i++)
                users += b[i].pool == pool && b[i].ld == ld;
            CHECK(px_cxlsw_ld_users(sw, pool, ld) == users);
            uint64_t bytes = px_cxlsw_ld_bytes(sw, pool, ld);
            CHECK(!users || bytes > 0);
            units += bytes / PX_CXLSW_GRANULE;
        }
        CHECK(units <= info.n_lds * (info.ld_size / PX_CXLSW_GRANULE));
    }
    uint8_t req[PX_CCI_HDR_LEN], out[PX_CCI_HDR_LEN + PX_FM_IDENTIFY_SW_LEN];
    size_t len, rlen;
    CHECK(px_cci_request(PX_FM_IDENTIFY_SWITCH, 0, NULL, 0, req, sizeof(req), &len) == PX_OK);
    CHECK(px_cxlsw_execute(sw, req, len, PX_CXLSW_PORT_SWITCH, out, sizeof(out), &rlen) == PX_OK);
    px_fm_identify_sw v;
    CHECK(px_fm_identify_sw_decode(out + PX_CCI_HDR_LEN, rlen - PX_CCI_HDR_LEN, &v) == PX_OK);
    CHECK(v.bound_vppbs == nb && v.total_vppbs == 2 * PX_CXLSW_VPPBS);
}

static void requests(const uint8_t *data, size_t size)
{
    px_cxlsw *a = mk(), *b = mk();
    size_t off = 0;
    while (size - off >= 4) {
        uint16_t port = data[off] == 0xff ? PX_CXLSW_PORT_SWITCH : data[off];
        size_t cap = data[off + 1] ? PX_CCI_HDR_LEN + 8u * (data[off + 1] - 1u) : sizeof(rsp_a);
        size_t len = le16(data + off + 2);
        off += 4;
        if (len > size - off)
            len = size - off;
        /* A copy of exactly the request's length, so ASan sees any over-read. */
        uint8_t *req = malloc(len ? len : 1);
        CHECK(req);
        memcpy(req, data + off, len);
        off += len;
        size_t la, lb;
        CHECK(px_cxlsw_execute(a, req, len, port, rsp_a, cap, &la) == PX_OK);
        CHECK(px_cxlsw_execute(b, req, len, port, rsp_b, cap, &lb) == PX_OK);
        CHECK(la == lb && memcmp(rsp_a, rsp_b, la) == 0);
        check_rsp(req, len, rsp_a, la, cap);
        check_state(a);
        CHECK(px_cxlsw_generation(a) == px_cxlsw_generation(b));
        free(req);
    }
    px_cxlsw_free(b);
    px_cxlsw_free(a);
}

/* Decode, re-encode to the same length, decode again to the same value.
 * The outputs start zeroed, so padding and unused entries compare equal. */
#define ROUND_TRIP(T, dec_call_a, dec_call_b, enc_call, va, vb)                                    \
    do {                                                                                           \
        memset(&(va), 0, sizeof(T));                                                               \
        memset(&(vb), 0, sizeof(T));                                                               \
        if ((dec_call_a) == PX_OK) {                                                               \
            size_t elen;                                                                           \
            CHECK((enc_call) == PX_OK && elen == size);                                            \
            CHECK((dec_call_b) == PX_OK);                                                          \
            CHECK(memcmp(&(va), &(vb), sizeof(T)) == 0);                                           \
        }                                                                                          \
    } while (0)

static void decoders(uint8_t start, uint8_t limit, const uint8_t *p, size_t size)
{
    px_cci_hdr h;
    if (px_cci_decode(p, size, &h, NULL) == PX_OK) {
        uint8_t hb[PX_CCI_HDR_LEN];
        CHECK(px_cci_hdr_encode(&h, hb, sizeof(hb)) == PX_OK);
        static const uint8_t mask[PX_CCI_HDR_LEN] = {0x0f, 0xff, 0x00, 0xff, 0xff, 0xff,
                                                     0xff, 0x9f, 0xff, 0xff, 0xff, 0xff};
        for (size_t i = 0; i < PX_CCI_HDR_LEN; i++)
            CHECK(hb[i] == (p[i] & mask[i]));
        CHECK(h.payload_len == size - PX_CCI_HDR_LEN);
    }

    px_fm_identify_sw ia, ib;
    ROUND_TRIP(px_fm_identify_sw, px_fm_identify_sw_decode(p, size, &ia),
               px_fm_identify_sw_decode(enc, elen, &ib),
               px_fm_identify_sw_encode(&ia, enc, sizeof(enc), &elen), ia, ib);
    px_fm_port_state_req pqa, pqb;
    ROUND_TRIP(px_fm_port_state_req, px_fm_port_state_req_decode(p, size, &pqa),
               px_fm_port_state_req_decode(enc, elen, &pqb),
               px_fm_port_state_req_encode(&pqa, enc, sizeof(enc), &elen), pqa, pqb);
    px_fm_vcs_info_req vqa, vqb;
    ROUND_TRIP(px_fm_vcs_info_req, px_fm_vcs_info_req_decode(p, size, &vqa),
               px_fm_vcs_info_req_decode(enc, elen, &vqb),
               px_fm_vcs_info_req_encode(&vqa, enc, sizeof(enc), &elen), vqa, vqb);
    px_fm_bind_req ba, bb;
    ROUND_TRIP(px_fm_bind_req, px_fm_bind_req_decode(p, size, &ba),
               px_fm_bind_req_decode(enc, elen, &bb),
               px_fm_bind_req_encode(&ba, enc, sizeof(enc), &elen), ba, bb);
    px_fm_unbind_req ua, ub;
    ROUND_TRIP(px_fm_unbind_req, px_fm_unbind_req_decode(p, size, &ua),
               px_fm_unbind_req_decode(enc, elen, &ub),
               px_fm_unbind_req_encode(&ua, enc, sizeof(enc), &elen), ua, ub);
    px_fm_ld_info la, lb;
    ROUND_TRIP(px_fm_ld_info, px_fm_ld_info_decode(p, size, &la),
               px_fm_ld_info_decode(enc, elen, &lb),
               px_fm_ld_info_encode(&la, enc, sizeof(enc), &elen), la, lb);
    px_fm_get_ld_alloc_req gqa, gqb;
    ROUND_TRIP(px_fm_get_ld_alloc_req, px_fm_get_ld_alloc_req_decode(p, size, &gqa),
               px_fm_get_ld_alloc_req_decode(enc, elen, &gqb),
               px_fm_get_ld_alloc_req_encode(&gqa, enc, sizeof(enc), &elen), gqa, gqb);
    ROUND_TRIP(px_fm_get_ld_alloc_rsp, px_fm_get_ld_alloc_rsp_decode(p, size, &gla_a),
               px_fm_get_ld_alloc_rsp_decode(enc, elen, &gla_b),
               px_fm_get_ld_alloc_rsp_encode(&gla_a, enc, sizeof(enc), &elen), gla_a, gla_b);
    ROUND_TRIP(px_fm_set_ld_alloc, px_fm_set_ld_alloc_decode(p, size, &sla_a),
               px_fm_set_ld_alloc_decode(enc, elen, &sla_b),
               px_fm_set_ld_alloc_encode(&sla_a, enc, sizeof(enc), &elen), sla_a, sla_b);

    size_t na, nb, elen;
    memset(ports_a, 0, sizeof(ports_a));
    memset(ports_b, 0, sizeof(ports_b));
    if (px_fm_port_state_rsp_decode(p, size, ports_a, PX_FM_LIST_MAX, &na) == PX_OK) {
        CHECK(px_fm_port_state_rsp_encode(ports_a, na, enc, sizeof(enc), &elen) == PX_OK);
        CHECK(elen == size);
        CHECK(px_fm_port_state_rsp_decode(enc, elen, ports_b, PX_FM_LIST_MAX, &nb) == PX_OK);
        CHECK(na == nb && memcmp(ports_a, ports_b, sizeof(ports_a)) == 0);
    }
    memset(blocks_a, 0, sizeof(blocks_a));
    memset(blocks_b, 0, sizeof(blocks_b));
    if (px_fm_vcs_info_rsp_decode(p, size, start, limit, blocks_a, PX_FM_LIST_MAX, &na) == PX_OK) {
        CHECK(px_fm_vcs_info_rsp_encode(blocks_a, na, enc, sizeof(enc), &elen) == PX_OK);
        CHECK(elen == size);
        CHECK(px_fm_vcs_info_rsp_decode(enc, elen, start, limit, blocks_b, PX_FM_LIST_MAX, &nb) ==
              PX_OK);
        CHECK(na == nb && memcmp(blocks_a, blocks_b, sizeof(blocks_a)) == 0);
    }
    px_fm_tunnel t;
    for (int req = 0; req < 2; req++) {
        px_err err =
            req ? px_fm_tunnel_req_decode(p, size, &t) : px_fm_tunnel_rsp_decode(p, size, &t);
        if (err != PX_OK)
            continue;
        CHECK(t.msg == p + PX_FM_TUNNEL_HDR_LEN && t.msg_len == size - PX_FM_TUNNEL_HDR_LEN);
        CHECK(t.msg_len >= PX_CCI_HDR_LEN);
        err = req ? px_fm_tunnel_req_encode(&t, enc, sizeof(enc), &elen)
                  : px_fm_tunnel_rsp_encode(&t, enc, sizeof(enc), &elen);
        CHECK(err == PX_OK && elen == size);
        CHECK(memcmp(enc + PX_FM_TUNNEL_HDR_LEN, t.msg, t.msg_len) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* The decoders get a copy of exactly the input's length. */
    uint8_t *p = malloc(size);
    if (!p)
        return 0;
    memcpy(p, data, size);
    if (p[0] & 1) {
        if (size >= 3)
            decoders(p[1], p[2], p + 3, size - 3);
    } else {
        requests(p + 1, size - 1);
    }
    free(p);
    return 0;
}
