/* Unit tests: fabric/cxl-switch — the FM API codecs (fmapi.h) and the switch
 * state behind px_cxlsw_execute (switch.h).
 *
 * Expected bytes are written out by hand from the specification's tables
 * (CXL r3.1 Figure 7-19 and section 7.6.7, summarised in fmapi.h and
 * docs/cxl-fmapi.md), never produced by the encoders under test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fabric/cxl-switch/fmapi.h"
#include "fabric/cxl-switch/switch.h"

#define MIB (1ull << 20)
#define GIB (1ull << 30)

/* The switch most tests use: VCS 0 and 1 (physical ports 0 and 1), 4 vPPBs
 * each; pool0 on port 2 (4 LDs of 256 MiB), pool1 on port 3 (2 LDs of
 * 1 GiB, so 4 allocation units each and 8 in all). */
static const px_cxlsw_pool_cfg pools2[] = {{"pool0", 4, 256 * MIB}, {"pool1", 2, GIB}};

static px_cxlsw *mk(void)
{
    px_cxlsw_cfg cfg = {.name = "fabric", .n_ports = 2, .pools = pools2, .n_pools = 2};
    px_cxlsw *sw = NULL;
    assert_int_equal(px_cxlsw_new(&cfg, &sw, NULL), PX_OK);
    assert_non_null(sw);
    return sw;
}

static uint8_t rsp[PX_CXLSW_MSG_MAX];
static size_t rsp_len;

/* Send raw request bytes; the answer lands in rsp/rsp_len. */
static void send_raw(px_cxlsw *sw, uint16_t port, const uint8_t *req, size_t len)
{
    memset(rsp, 0xcc, sizeof(rsp));
    assert_int_equal(px_cxlsw_execute(sw, req, len, port, rsp, sizeof(rsp), &rsp_len), PX_OK);
    assert_true(rsp_len >= PX_CCI_HDR_LEN);
}

/* Build a request around payload, send it, check the response header's
 * framing, and return its return code. */
static uint16_t call(px_cxlsw *sw, uint16_t port, uint16_t opcode, const uint8_t *pl, size_t plen)
{
    uint8_t req[8192];
    size_t len;
    assert_int_equal(px_cci_request(opcode, 0x42, pl, plen, req, sizeof(req), &len), PX_OK);
    send_raw(sw, port, req, len);
    px_cci_hdr h;
    assert_int_equal(px_cci_decode(rsp, rsp_len, &h, NULL), PX_OK);
    assert_int_equal(h.category, PX_CCI_CAT_RESPONSE);
    assert_int_equal(h.tag, 0x42);
    assert_int_equal(h.opcode, opcode);
    assert_false(h.bo);
    if (h.rc != PX_CCI_SUCCESS)
        assert_int_equal(h.payload_len, 0);
    return h.rc;
}

static uint16_t vstatus(void)
{
    return (uint16_t)(rsp[10] | rsp[11] << 8);
}

#define EXPECT_REFUSED(rc, vs)                                                                     \
    do {                                                                                           \
        assert_int_equal(rsp[8] | rsp[9] << 8, (rc));                                              \
        assert_int_equal(vstatus(), (vs));                                                         \
        assert_int_equal(rsp_len, PX_CCI_HDR_LEN);                                                 \
    } while (0)

static void expect_payload(const uint8_t *want, size_t n)
{
    assert_int_equal(rsp_len, PX_CCI_HDR_LEN + n);
    assert_memory_equal(rsp + PX_CCI_HDR_LEN, want, n);
}

/* ---- CCI header ---------------------------------------------------------------- */

static void test_hdr_layout(void **state)
{
    (void)state;
    px_cci_hdr h = {.category = PX_CCI_CAT_RESPONSE,
                    .tag = 0x5a,
                    .opcode = 0x5201,
                    .payload_len = 0x123456,
                    .bo = true,
                    .rc = PX_CCI_INVALID_PAYLOAD_LENGTH,
                    .vendor_status = 0xbeef};
    uint8_t buf[PX_CCI_HDR_LEN + 1];
    memset(buf, 0xcc, sizeof(buf));
    assert_int_equal(px_cci_hdr_encode(&h, buf, PX_CCI_HDR_LEN), PX_OK);
    const uint8_t want[12] = {0x01, 0x5a, 0x00, 0x01, 0x52, 0x56,
                              0x34, 0x92, 0x16, 0x00, 0xef, 0xbe};
    assert_memory_equal(buf, want, 12);
    assert_int_equal(buf[12], 0xcc);

    /* A request by hand: Identify Switch Device, tag 7, no payload. */
    const uint8_t ident[12] = {0x00, 0x07, 0x00, 0x00, 0x51, 0, 0, 0, 0, 0, 0, 0};
    uint8_t out[32];
    size_t len;
    assert_int_equal(px_cci_request(PX_FM_IDENTIFY_SWITCH, 7, NULL, 0, out, sizeof(out), &len),
                     PX_OK);
    assert_int_equal(len, 12);
    assert_memory_equal(out, ident, 12);

    /* With a payload: Bind vPPB, tag 0x33, 6 bytes. */
    const uint8_t bind_pl[6] = {0x00, 0x01, 0x02, 0x00, 0x02, 0x00};
    const uint8_t bind[18] = {0x00, 0x33, 0x00, 0x01, 0x52, 0x06, 0x00, 0x00, 0x00,
                              0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x02, 0x00};
    assert_int_equal(px_cci_request(PX_FM_BIND_VPPB, 0x33, bind_pl, 6, out, sizeof(out), &len),
                     PX_OK);
    assert_int_equal(len, 18);
    assert_memory_equal(out, bind, 18);

    /* Decoding it back. */
    px_cci_hdr d;
    assert_int_equal(px_cci_decode(bind, sizeof(bind), &d, NULL), PX_OK);
    assert_int_equal(d.category, PX_CCI_CAT_REQUEST);
    assert_int_equal(d.tag, 0x33);
    assert_int_equal(d.opcode, PX_FM_BIND_VPPB);
    assert_int_equal(d.payload_len, 6);
    assert_false(d.bo);
    assert_int_equal(d.rc, 0);
    assert_int_equal(d.vendor_status, 0);

    /* Header round trip at the largest length, BO clear and set. */
    for (int bo = 0; bo < 2; bo++) {
        px_cci_hdr a = {.category = 0xf,
                        .tag = 0xff,
                        .opcode = 0xffff,
                        .payload_len = PX_CCI_MAX_PAYLOAD,
                        .bo = bo,
                        .rc = 0xffff,
                        .vendor_status = 0x1234};
        assert_int_equal(px_cci_hdr_encode(&a, buf, sizeof(buf)), PX_OK);
        assert_int_equal(buf[7], bo ? 0x9f : 0x1f);
        assert_int_equal(px_cci_decode(buf, PX_CCI_HDR_LEN, &d, NULL), PX_E_TRUNCATED);
        assert_int_equal(d.payload_len, PX_CCI_MAX_PAYLOAD);
        assert_int_equal(d.bo, bo);
        assert_int_equal(d.category, 0xf);
        assert_int_equal(d.rc, 0xffff);
        assert_int_equal(d.vendor_status, 0x1234);
    }
}

static void test_hdr_bounds(void **state)
{
    (void)state;
    uint8_t buf[64];
    px_cci_hdr h = {.category = 0, .opcode = 0x5100};
    px_cci_hdr d;
    px_errmsg em;

    /* Encoding: the buffer, the category's 4 bits, the length's 21. */
    for (size_t cap = 0; cap < PX_CCI_HDR_LEN; cap++)
        assert_int_equal(px_cci_hdr_encode(&h, buf, cap), PX_E_TOOBIG);
    h.category = 16;
    assert_int_equal(px_cci_hdr_encode(&h, buf, sizeof(buf)), PX_E_INVAL);
    h.category = 0;
    h.payload_len = PX_CCI_MAX_PAYLOAD + 1;
    assert_int_equal(px_cci_hdr_encode(&h, buf, sizeof(buf)), PX_E_INVAL);

    /* Decoding: every short header; payloads short and long. */
    const uint8_t msg[14] = {0x00, 0x09, 0x00, 0x01, 0x54, 0x02, 0x00,
                             0x00, 0x00, 0x00, 0x00, 0x00, 0xaa, 0xbb};
    for (size_t len = 0; len < PX_CCI_HDR_LEN; len++) {
        em.text[0] = '\0';
        assert_int_equal(px_cci_decode(msg, len, &d, &em), PX_E_TRUNCATED);
        assert_true(em.text[0] != '\0');
    }
    assert_int_equal(px_cci_decode(msg, 13, &d, &em), PX_E_TRUNCATED);
    assert_int_equal(d.tag, 9); /* filled all the same */
    assert_int_equal(d.opcode, 0x5401);
    assert_int_equal(px_cci_decode(msg, 14, &d, NULL), PX_OK);
    uint8_t longer[15];
    memcpy(longer, msg, 14);
    longer[14] = 0;
    assert_int_equal(px_cci_decode(longer, 15, &d, &em), PX_E_PROTO);

    /* Reserved bits are ignored: byte 0's high nibble, byte 2, bits 22:21. */
    uint8_t rsv[14];
    memcpy(rsv, msg, 14);
    rsv[0] = 0xf0;
    rsv[2] = 0x77;
    rsv[7] = 0x60;
    assert_int_equal(px_cci_decode(rsv, 14, &d, NULL), PX_OK);
    assert_int_equal(d.category, 0);
    assert_int_equal(d.payload_len, 2);
    assert_false(d.bo);

    /* A whole request: buffer one byte short, payload too long. */
    size_t len = 99;
    assert_int_equal(px_cci_request(0x5401, 1, msg, 2, buf, 13, &len), PX_E_TOOBIG);
    assert_int_equal(len, 0);
    assert_int_equal(px_cci_request(0x5401, 1, msg, 2, buf, 11, &len), PX_E_TOOBIG);
    assert_int_equal(px_cci_request(0x5401, 1, msg, 2, buf, 14, &len), PX_OK);
    assert_int_equal(len, 14);
    assert_int_equal(px_cci_request(0x5401, 1, msg, PX_CCI_MAX_PAYLOAD + 1, buf, 14, &len),
                     PX_E_INVAL);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(px_cci_rc_name(0), "Success");
    assert_string_equal(px_cci_rc_name(1), "Background Command Started");
    assert_string_equal(px_cci_rc_name(2), "Invalid Input");
    assert_string_equal(px_cci_rc_name(3), "Unsupported");
    assert_string_equal(px_cci_rc_name(4), "Internal Error");
    assert_string_equal(px_cci_rc_name(5), "Retry Required");
    assert_string_equal(px_cci_rc_name(6), "Busy");
    assert_string_equal(px_cci_rc_name(0x16), "Invalid Payload Length");
    assert_string_equal(px_cci_rc_name(0x1d), "Resources Exhausted");
    assert_string_equal(px_cci_rc_name(0x20), "Request Abort Not Supported");
    assert_string_equal(px_cci_rc_name(0x21), "unknown return code");
    assert_string_equal(px_cci_rc_name(0xffff), "unknown return code");
    for (uint16_t rc = 0; rc <= 0x20; rc++)
        assert_string_not_equal(px_cci_rc_name(rc), "unknown return code");

    assert_string_equal(px_fm_opcode_name(0x5100), "Identify Switch Device");
    assert_string_equal(px_fm_opcode_name(0x5101), "Get Physical Port State");
    assert_string_equal(px_fm_opcode_name(0x5200), "Get Virtual CXL Switch Info");
    assert_string_equal(px_fm_opcode_name(0x5201), "Bind vPPB");
    assert_string_equal(px_fm_opcode_name(0x5202), "Unbind vPPB");
    assert_string_equal(px_fm_opcode_name(0x5300), "Tunnel Management Command");
    assert_string_equal(px_fm_opcode_name(0x5400), "Get LD Info");
    assert_string_equal(px_fm_opcode_name(0x5401), "Get LD Allocations");
    assert_string_equal(px_fm_opcode_name(0x5402), "Set LD Allocations");
    assert_string_equal(px_fm_opcode_name(0x0001), "unknown opcode");

    assert_string_equal(px_cxlsw_vs_name(PX_CXLSW_VS_VPPB_BOUND), "vPPB already bound");
    assert_string_equal(px_cxlsw_vs_name(999), "unknown status");
    for (uint16_t vs = 0; vs <= PX_CXLSW_VS_TARGET; vs++)
        assert_string_not_equal(px_cxlsw_vs_name(vs), "unknown status");
}

/* ---- each command's bytes ------------------------------------------------------ */

static void test_identify_bytes(void **state)
{
    (void)state;
    px_cxlsw *sw = mk();
    const uint8_t req[12] = {0x00, 0x07, 0x00, 0x00, 0x51, 0, 0, 0, 0, 0, 0, 0};
    send_raw(sw, PX_CXLSW_PORT_SWITCH, req, sizeof(req));
    uint8_t want[12 + 0x49] = {0x01, 0x07, 0x00, 0x00, 0x51, 0x49, 0x00, 0x00, 0, 0, 0, 0};
    uint8_t *pl = want + 12;
    pl[0] = 0xff;  /* ingress: the FM, not a port */
    pl[2] = 4;     /* physical ports: 2 USPs, 2 pools */
    pl[3] = 2;     /* VCSs */
    pl[4] = 0x0f;  /* ports 0..3 active */
    pl[36] = 0x03; /* VCS 0 and 1 active */
    pl[68] = 8;    /* vPPBs: 2 x 4 */
    pl[70] = 0;    /* bound */
    pl[72] = 1;    /* HDM decoders per USP */
    assert_int_equal(rsp_len, sizeof(want));
    assert_memory_equal(rsp, want, sizeof(want));

    assert_int_equal(px_cxlsw_bind(sw, 1, 3, 1, 0, NULL), PX_CCI_SUCCESS);
    assert_int_equal(px_cxlsw_bind(sw, 0, 0, 1, 0, NULL), PX_CCI_SUCCESS);
    send_raw(sw, PX_CXLSW_PORT_SWITCH, req, sizeof(req));
    pl[70] = 2;
    assert_memory_equal(rsp, want, sizeof(want));

    px_fm_identify_sw v;
    assert_int_equal(px_fm_identify_sw_decode(rsp + 12, 0x49, &v), PX_OK);
    assert_int_equal(v.ingress_port, 0xff);
    assert_int_equal(v.n_phys_ports, 4);
    assert_int_equal(v.n_vcs, 2);
    assert_int_equal(v.active_ports[0], 0x0f);
    assert_int_equal(v.active_vcs[0], 0x03);
    assert_int_equal(v.total_vppbs, 8);
    assert_int_equal(v.bound_vppbs, 2);
    assert_int_equal(v.hdm_decoders, 1);
    uint8_t again[0x49];
    size_t len;
    assert_int_equal(px_fm_identify_sw_encode(&v, again, sizeof(again), &len), PX_OK);
    assert_int_equal(len, 0x49);
    assert_memory_equal(again, rsp + 12, 0x49);
    assert_int_equal(px_fm_identify_sw_encode(&v, again, 0x48, &len), PX_E_TOOBIG);
    assert_int_equal(len, 0);
    assert_int_equal(px_fm_identify_sw_decode(rsp + 12, 0x48, &v), PX_E_TRUNCATED);
    assert_int_equal(px_fm_identify_sw_decode(rsp + 12, 0x4a, &v), PX_E_PROTO);

    /* A payload on a command that takes none. */
    const uint8_t one = 0;
    assert_int_equal(call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_IDENTIFY_SWITCH, &one, 1),
                     PX_CCI_INVALID_PAYLOAD_LENGTH);
    px_cxlsw_free(sw);
}

static void test_port_state_bytes(void **state)
{
    (void)state;
    px_cxlsw *sw = mk();
    const uint8_t req[] = {4, 0, 2, 3, 9};
    assert_int_equal(call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_GET_PORT_STATE, req, sizeof(req)),
                     PX_CCI_SUCCESS);
    const uint8_t want[4 + 4 * 16] = {
        4, 0, 0, 0,
        /* port 0: USP, CXL 2.0 capable, x16 of x16, 2.5..32 GT/s, 32 GT/s, L0 */
        0x00, 0x04, 0x00, 0x00, 0x00, 0x02, 0x10, 0x10, 0x1f, 0x05, 0x05, 0x04, 0x00, 0x00, 0x00,
        0x00,
        /* port 2: DSP, 68B flit + VH device, type 3 MLD, 4 LDs */
        0x02, 0x03, 0x02, 0x00, 0x05, 0x02, 0x10, 0x10, 0x1f, 0x05, 0x05, 0x04, 0x00, 0x00, 0x00,
        0x04,
        /* port 3: the same with 2 LDs */
        0x03, 0x03, 0x02, 0x00, 0x05, 0x02, 0x10, 0x10, 0x1f, 0x05, 0x05, 0x04, 0x00, 0x00, 0x00,
        0x02,
        /* port 9: no such port */
        0x09, 0x0f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00};
    expect_payload(want, sizeof(want));

    /* Decoder and encoder against the same bytes. */
    px_fm_port_info ports[4];
    size_t n;
    assert_int_equal(px_fm_port_state_rsp_decode(want, sizeof(want), ports, 4, &n), PX_OK);
    assert_int_equal(n, 4);
    assert_int_equal(ports[1].port_id, 2);
    assert_int_equal(ports[1].config_state, PX_FM_PORT_DSP);
    assert_int_equal(ports[1].dev_type, PX_FM_DEV_TYPE3_MLD);
    assert_int_equal(ports[1].ld_count, 4);
    assert_int_equal(ports[3].config_state, PX_FM_PORT_INVALID);
    assert_int_equal(px_fm_port_state_rsp_decode(want, sizeof(want), ports, 3, &n), PX_E_TOOBIG);
    assert_int_equal(px_fm_port_state_rsp_decode(want, sizeof(want) - 1, ports, 4, &n),
                     PX_E_TRUNCATED);
    assert_int_equal(px_fm_port_state_rsp_decode(want, 3, ports, 4, &n), PX_E_TRUNCATED);
    uint8_t more[sizeof(want) + 1] = {0};
    memcpy(more, want, sizeof(want));
    assert_int_equal(px_fm_port_state_rsp_decode(more, sizeof(more), ports, 4, &n), PX_E_PROTO);
    uint8_t buf[128];
    size_t len;
    assert_int_equal(px_fm_port_state_rsp_encode(ports, 4, buf, sizeof(buf), &len), PX_OK);
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));
    assert_int_equal(px_fm_port_state_rsp_encode(ports, 4, buf, sizeof(want) - 1, &len),
                     PX_E_TOOBIG);
    assert_int_equal(px_fm_port_state_rsp_encode(ports, PX_FM_LIST_MAX + 1, buf, sizeof(buf), &len),
                     PX_E_INVAL);

    /* The request codec. */
    px_fm_port_state_req r;
    assert_int_equal(px_fm_port_state_req_decode(req, sizeof(req), &r), PX_OK);
    assert_int_equal(r.n_ports, 4);
    assert_int_equal(r.ports[3], 9);
    assert_int_equal(px_fm_port_state_req_encode(&r, buf, sizeof(buf), &len), PX_OK);
    assert_int_equal(len, sizeof(req));
    assert_memory_equal(buf, req, sizeof(req));
    assert_int_equal(px_fm_port_state_req_encode(&r, buf, 4, &len), PX_E_TOOBIG);
    assert_int_equal(px_fm_port_state_req_decode(req, 0, &r), PX_E_TRUNCATED);
    assert_int_equal(px_fm_port_state_req_decode(req, 4, &r), PX_E_TRUNCATED);
    const uint8_t req_long[] = {1, 0, 0};
    assert_int_equal(px_fm_port_state_req_decode(req_long, 3, &r), PX_E_PROTO);

    /* Through the switch: lengths and an empty list. */
    assert_int_equal(call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_GET_PORT_STATE, req, 4),
                     PX_CCI_INVALID_PAYLOAD_LENGTH);
    assert_int_equal(call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_GET_PORT_STATE, req_long, 3),
                     PX_CCI_INVALID_PAYLOAD_LENGTH);
    assert_int_equal(call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_GET_PORT_STATE, NULL, 0),
                     PX_CCI_INVALID_PAYLOAD_LENGTH);
    const uint8_t none = 0;
    call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_GET_PORT_STATE, &none, 1);
    EXPECT_REFUSED(PX_CCI_INVALID_INPUT, PX_CXLSW_VS_FIELD);
    px_cxlsw_free(sw);
}

static void test_vcs_info_bytes(void **state)
{
    (void)state;
    px_cxlsw *sw = mk();
    assert_int_equal(px_cxlsw_bind(sw, 0, 1, 0, 2, NULL), PX_CCI_SUCCESS); /* port 2 LD 2 */
    assert_int_equal(px_cxlsw_bind(sw, 1, 3, 1, 1, NULL), PX_CCI_SUCCESS); /* port 3 LD 1 */

    const uint8_t req[] = {0, 4, 3, 0, 1, 7};
    assert_int_equal(call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_GET_VCS_INFO, req, sizeof(req)),
                     PX_CCI_SUCCESS);
    const uint8_t want[] = {3, 0, 0, 0,
                            /* VCS 0: enabled, USP 0, 4 vPPBs; vPPB 1 bound to port 2 LD 2 */
                            0x00, 0x01, 0x00, 0x04, 0x00, 0xff, 0xff, 0x00, 0x03, 0x02, 0x02, 0x00,
                            0x00, 0xff, 0xff, 0x00, 0x00, 0xff, 0xff, 0x00,
                            /* VCS 1: enabled, USP 1; vPPB 3 bound to port 3 LD 1 */
                            0x01, 0x01, 0x01, 0x04, 0x00, 0xff, 0xff, 0x00, 0x00, 0xff, 0xff, 0x00,
                            0x00, 0xff, 0xff, 0x00, 0x03, 0x03, 0x01, 0x00,
                            /* VCS 7: invalid VCS ID, no entries */
                            0x07, 0xff, 0x00, 0x00};
    expect_payload(want, sizeof(want));

    px_fm_vcs_block *blocks = calloc(3, sizeof(*blocks));
    assert_non_null(blocks);
    size_t n;
    assert_int_equal(px_fm_vcs_info_rsp_decode(want, sizeof(want), 0, 4, blocks, 3, &n), PX_OK);
    assert_int_equal(n, 3);
    assert_int_equal(blocks[0].n_entries, 4);
    assert_int_equal(blocks[0].entries[1].status, PX_FM_VPPB_BOUND_LD);
    assert_int_equal(blocks[0].entries[1].port, 2);
    assert_int_equal(blocks[0].entries[1].ld, 2);
    assert_int_equal(blocks[1].entries[3].ld, 1);
    assert_int_equal(blocks[2].state, PX_FM_VCS_INVALID);
    assert_int_equal(blocks[2].n_entries, 0);
    uint8_t buf[128];
    size_t len;
    assert_int_equal(px_fm_vcs_info_rsp_encode(blocks, 3, buf, sizeof(buf), &len), PX_OK);
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));
    assert_int_equal(px_fm_vcs_info_rsp_encode(blocks, 3, buf, sizeof(want) - 1, &len),
                     PX_E_TOOBIG);
    assert_int_equal(len, 0);
    assert_int_equal(px_fm_vcs_info_rsp_encode(blocks, 256, buf, sizeof(buf), &len), PX_E_INVAL);
    assert_int_equal(px_fm_vcs_info_rsp_encode(blocks, 0, buf, 3, &len), PX_E_TOOBIG);
    assert_int_equal(px_fm_vcs_info_rsp_decode(want, sizeof(want), 0, 4, blocks, 2, &n),
                     PX_E_TOOBIG);
    assert_int_equal(px_fm_vcs_info_rsp_decode(want, sizeof(want) - 1, 0, 4, blocks, 3, &n),
                     PX_E_TRUNCATED);
    assert_int_equal(px_fm_vcs_info_rsp_decode(want, 26, 0, 4, blocks, 3, &n), PX_E_TRUNCATED);
    assert_int_equal(px_fm_vcs_info_rsp_decode(want, 3, 0, 4, blocks, 3, &n), PX_E_TRUNCATED);
    /* Read with a smaller limit, the same bytes have entries left over. */
    assert_int_equal(px_fm_vcs_info_rsp_decode(want, sizeof(want), 0, 3, blocks, 3, &n),
                     PX_E_PROTO);

    /* Start vPPB 3, limit 2: one entry left in VCS 1. */
    const uint8_t req2[] = {3, 2, 1, 1};
    assert_int_equal(call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_GET_VCS_INFO, req2, sizeof(req2)),
                     PX_CCI_SUCCESS);
    const uint8_t want2[] = {1, 0, 0, 0, 0x01, 0x01, 0x01, 0x04, 0x03, 0x03, 0x01, 0x00};
    expect_payload(want2, sizeof(want2));
    assert_int_equal(px_fm_vcs_info_rsp_decode(want2, sizeof(want2), 3, 2, blocks, 3, &n), PX_OK);
    assert_int_equal(blocks[0].n_entries, 1);
    /* Start vPPB past the last: the header alone. */
    const uint8_t req3[] = {4, 1, 1, 0};
    assert_int_equal(call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_GET_VCS_INFO, req3, sizeof(req3)),
                     PX_CCI_SUCCESS);
    const uint8_t want3[] = {1, 0, 0, 0, 0x00, 0x01, 0x00, 0x04};
    expect_payload(want3, sizeof(want3));

    /* The request codec. */
    px_fm_vcs_info_req r;
    assert_int_equal(px_fm_vcs_info_req_decode(req, sizeof(req), &r), PX_OK);
    assert_int_equal(r.start_vppb, 0);
    assert_int_equal(r.vppb_limit, 4);
    assert_int_equal(r.n_vcs, 3);
    assert_int_equal(r.vcs[2], 7);
    assert_int_equal(px_fm_vcs_info_req_encode(&r, buf, sizeof(buf), &len), PX_OK);
    assert_int_equal(len, sizeof(req));
    assert_memory_equal(buf, req, sizeof(req));
    assert_int_equal(px_fm_vcs_info_req_encode(&r, buf, 5, &len), PX_E_TOOBIG);
    assert_int_equal(px_fm_vcs_info_req_decode(req, 2, &r), PX_E_TRUNCATED);
    assert_int_equal(px_fm_vcs_info_req_decode(req, 5, &r), PX_E_TRUNCATED);
    assert_int_equal(px_fm_vcs_info_req_decode(req2, 3, &r), PX_E_TRUNCATED);
    const uint8_t req_long[] = {0, 1, 1, 0, 0};
    assert_int_equal(px_fm_vcs_info_req_decode(req_long, 5, &r), PX_E_PROTO);

    /* Through the switch: lengths, and the minimum of 1 for both counts. */
    assert_int_equal(call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_GET_VCS_INFO, req_long, 5),
                     PX_CCI_INVALID_PAYLOAD_LENGTH);
    assert_int_equal(call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_GET_VCS_INFO, req, 2),
                     PX_CCI_INVALID_PAYLOAD_LENGTH);
    const uint8_t no_limit[] = {0, 0, 1, 0};
    call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_GET_VCS_INFO, no_limit, 4);
    EXPECT_REFUSED(PX_CCI_INVALID_INPUT, PX_CXLSW_VS_FIELD);
    const uint8_t no_vcs[] = {0, 1, 0};
    call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_GET_VCS_INFO, no_vcs, 3);
    EXPECT_REFUSED(PX_CCI_INVALID_INPUT, PX_CXLSW_VS_FIELD);
    free(blocks);
    px_cxlsw_free(sw);
}

static void test_bind_unbind_bytes(void **state)
{
    (void)state;
    px_cxlsw *sw = mk();
    /* Bind VCS 0 vPPB 1 to port 2 LD 2, tag 0x33, by hand. */
    const uint8_t req[18] = {0x00, 0x33, 0x00, 0x01, 0x52, 0x06, 0x00, 0x00, 0x00,
                             0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x02, 0x00};
    send_raw(sw, PX_CXLSW_PORT_SWITCH, req, sizeof(req));
    const uint8_t ok[12] = {0x01, 0x33, 0x00, 0x01, 0x52, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(rsp_len, 12);
    assert_memory_equal(rsp, ok, 12);
    px_cxlsw_binding b[4];
    assert_int_equal(px_cxlsw_bindings(sw, b, 4), 1);
    assert_int_equal(b[0].vcs, 0);
    assert_int_equal(b[0].vppb, 1);
    assert_int_equal(b[0].pool, 0);
    assert_int_equal(b[0].ld, 2);

    /* The same again: Invalid Input, "vPPB already bound" (5). */
    send_raw(sw, PX_CXLSW_PORT_SWITCH, req, sizeof(req));
    const uint8_t bound[12] = {0x01, 0x33, 0x00, 0x01, 0x52, 0, 0, 0, 0x02, 0x00, 0x05, 0x00};
    assert_int_equal(rsp_len, 12);
    assert_memory_equal(rsp, bound, 12);

    /* Unbind VCS 0 vPPB 1, managed hot-remove, tag 0x34, by hand. */
    const uint8_t unreq[15] = {0x00, 0x34, 0x00, 0x02, 0x52, 0x03, 0x00, 0x00,
                               0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01};
    send_raw(sw, PX_CXLSW_PORT_SWITCH, unreq, sizeof(unreq));
    const uint8_t unok[12] = {0x01, 0x34, 0x00, 0x02, 0x52, 0, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(rsp, unok, 12);
    assert_int_equal(rsp_len, 12);
    assert_int_equal(px_cxlsw_bindings(sw, NULL, 0), 0);

    /* The request codecs. */
    px_fm_bind_req br;
    assert_int_equal(px_fm_bind_req_decode(req + 12, 6, &br), PX_OK);
    assert_int_equal(br.vcs, 0);
    assert_int_equal(br.vppb, 1);
    assert_int_equal(br.port, 2);
    assert_int_equal(br.ld, 2);
    uint8_t buf[16];
    size_t len;
    br = (px_fm_bind_req){.vcs = 1, .vppb = 2, .port = 3, .ld = PX_FM_LD_ID_NONE};
    assert_int_equal(px_fm_bind_req_encode(&br, buf, sizeof(buf), &len), PX_OK);
    const uint8_t bwant[6] = {0x01, 0x02, 0x03, 0x00, 0xff, 0xff};
    assert_int_equal(len, 6);
    assert_memory_equal(buf, bwant, 6);
    assert_int_equal(px_fm_bind_req_encode(&br, buf, 5, &len), PX_E_TOOBIG);
    assert_int_equal(px_fm_bind_req_decode(bwant, 5, &br), PX_E_TRUNCATED);
    assert_int_equal(px_fm_bind_req_decode(req + 11, 7, &br), PX_E_PROTO);

    px_fm_unbind_req ur = {.vcs = 1, .vppb = 3, .option = PX_FM_UNBIND_SURPRISE};
    assert_int_equal(px_fm_unbind_req_encode(&ur, buf, sizeof(buf), &len), PX_OK);
    const uint8_t uwant[3] = {0x01, 0x03, 0x02};
    assert_int_equal(len, 3);
    assert_memory_equal(buf, uwant, 3);
    assert_int_equal(px_fm_unbind_req_encode(&ur, buf, 2, &len), PX_E_TOOBIG);
    ur.option = 0x10;
    assert_int_equal(px_fm_unbind_req_encode(&ur, buf, sizeof(buf), &len), PX_E_INVAL);
    const uint8_t ursv[3] = {0x01, 0x03, 0xf1}; /* bits 7:4 reserved */
    assert_int_equal(px_fm_unbind_req_decode(ursv, 3, &ur), PX_OK);
    assert_int_equal(ur.option, 1);
    assert_int_equal(px_fm_unbind_req_decode(ursv, 2, &ur), PX_E_TRUNCATED);
    assert_int_equal(px_fm_unbind_req_decode(req + 12, 4, &ur), PX_E_PROTO);

    /* Wrong lengths through the switch. */
    assert_int_equal(call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_BIND_VPPB, bwant, 5),
                     PX_CCI_INVALID_PAYLOAD_LENGTH);
    assert_int_equal(call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_UNBIND_VPPB, uwant, 2),
                     PX_CCI_INVALID_PAYLOAD_LENGTH);
    assert_int_equal(call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_UNBIND_VPPB, bwant, 4),
                     PX_CCI_INVALID_PAYLOAD_LENGTH);
    px_cxlsw_free(sw);
}

static void test_ld_info_bytes(void **state)
{
    (void)state;
    px_cxlsw *sw = mk();
    /* Get LD Info to the MLD on port 2, tag 9, by hand. */
    const uint8_t req[12] = {0x00, 0x09, 0x00, 0x00, 0x54, 0, 0, 0, 0, 0, 0, 0};
    send_raw(sw, 2, req, sizeof(req));
    const uint8_t want[12 + 11] = {
        0x01, 0x09, 0x00, 0x00, 0x54, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        /* 1 GiB, 4 LDs, no QoS telemetry */
        0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00};
    assert_int_equal(rsp_len, sizeof(want));
    assert_memory_equal(rsp, want, sizeof(want));
    send_raw(sw, 3, req, sizeof(req));
    const uint8_t want3[11] = {0x00, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00};
    expect_payload(want3, sizeof(want3));

    px_fm_ld_info v;
    assert_int_equal(px_fm_ld_info_decode(want3, 11, &v), PX_OK);
    assert_int_equal(v.memory_size, 2 * GIB);
    assert_int_equal(v.ld_count, 2);
    assert_int_equal(v.qos_caps, 0);
    uint8_t buf[16];
    size_t len;
    assert_int_equal(px_fm_ld_info_encode(&v, buf, sizeof(buf), &len), PX_OK);
    assert_int_equal(len, 11);
    assert_memory_equal(buf, want3, 11);
    assert_int_equal(px_fm_ld_info_encode(&v, buf, 10, &len), PX_E_TOOBIG);
    assert_int_equal(px_fm_ld_info_decode(want3, 10, &v), PX_E_TRUNCATED);
    assert_int_equal(px_fm_ld_info_decode(want, 12, &v), PX_E_PROTO);

    const uint8_t one = 0;
    assert_int_equal(call(sw, 2, PX_FM_GET_LD_INFO, &one, 1), PX_CCI_INVALID_PAYLOAD_LENGTH);
    px_cxlsw_free(sw);
}

static void test_ld_alloc_bytes(void **state)
{
    (void)state;
    px_cxlsw *sw = mk();
    /* Get LD Allocations on port 3 from LD 0, up to 5: both LDs, 4 units. */
    const uint8_t req[2] = {0, 5};
    assert_int_equal(call(sw, 3, PX_FM_GET_LD_ALLOC, req, 2), PX_CCI_SUCCESS);
    const uint8_t want[4 + 32] = {0x02, 0x00, 0x00, 0x02, 0x04, 0, 0, 0, 0,    0, 0, 0,
                                  0,    0,    0,    0,    0,    0, 0, 0, 0x04, 0, 0, 0,
                                  0,    0,    0,    0,    0,    0, 0, 0, 0,    0, 0, 0};
    expect_payload(want, sizeof(want));
    /* Port 2 from LD 1, one entry: 1 unit (256 MiB). */
    const uint8_t req2[2] = {1, 1};
    assert_int_equal(call(sw, 2, PX_FM_GET_LD_ALLOC, req2, 2), PX_CCI_SUCCESS);
    const uint8_t want2[4 + 16] = {0x04, 0x00, 0x01, 0x01, 0x01, 0, 0, 0, 0, 0,
                                   0,    0,    0,    0,    0,    0, 0, 0, 0, 0};
    expect_payload(want2, sizeof(want2));

    /* Set LD Allocations on port 3: LD 1 to ranges of 1 and 2 units. */
    const uint8_t set[4 + 16] = {0x01, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0,
                                 0,    0,    0x02, 0,    0,    0, 0, 0, 0, 0};
    assert_int_equal(call(sw, 3, PX_FM_SET_LD_ALLOC, set, sizeof(set)), PX_CCI_SUCCESS);
    expect_payload(set, sizeof(set)); /* the allocations now in force */
    assert_int_equal(px_cxlsw_ld_bytes(sw, 1, 1), 3 * 256 * MIB);
    assert_int_equal(call(sw, 3, PX_FM_GET_LD_ALLOC, req, 2), PX_CCI_SUCCESS);
    const uint8_t want4[4 + 32] = {0x02, 0x00, 0x00, 0x02, 0x04, 0, 0, 0, 0,    0, 0, 0,
                                   0,    0,    0,    0,    0,    0, 0, 0, 0x01, 0, 0, 0,
                                   0,    0,    0,    0,    0x02, 0, 0, 0, 0,    0, 0, 0};
    expect_payload(want4, sizeof(want4));

    /* Codecs. */
    px_fm_get_ld_alloc_req gr;
    uint8_t buf[64];
    size_t len;
    assert_int_equal(px_fm_get_ld_alloc_req_decode(req2, 2, &gr), PX_OK);
    assert_int_equal(gr.start_ld, 1);
    assert_int_equal(gr.limit, 1);
    assert_int_equal(px_fm_get_ld_alloc_req_encode(&gr, buf, sizeof(buf), &len), PX_OK);
    assert_int_equal(len, 2);
    assert_memory_equal(buf, req2, 2);
    assert_int_equal(px_fm_get_ld_alloc_req_encode(&gr, buf, 1, &len), PX_E_TOOBIG);
    assert_int_equal(px_fm_get_ld_alloc_req_decode(req2, 1, &gr), PX_E_TRUNCATED);
    assert_int_equal(px_fm_get_ld_alloc_req_decode(want, 3, &gr), PX_E_PROTO);

    px_fm_get_ld_alloc_rsp *g = calloc(1, sizeof(*g));
    assert_non_null(g);
    assert_int_equal(px_fm_get_ld_alloc_rsp_decode(want4, sizeof(want4), g), PX_OK);
    assert_int_equal(g->n_lds, 2);
    assert_int_equal(g->granularity, PX_FM_GRAN_256M);
    assert_int_equal(g->n, 2);
    assert_int_equal(g->ld[1].range1, 1);
    assert_int_equal(g->ld[1].range2, 2);
    assert_int_equal(px_fm_get_ld_alloc_rsp_encode(g, buf, sizeof(buf), &len), PX_OK);
    assert_int_equal(len, sizeof(want4));
    assert_memory_equal(buf, want4, sizeof(want4));
    assert_int_equal(px_fm_get_ld_alloc_rsp_encode(g, buf, sizeof(want4) - 1, &len), PX_E_TOOBIG);
    assert_int_equal(px_fm_get_ld_alloc_rsp_decode(want4, sizeof(want4) - 1, g), PX_E_TRUNCATED);
    assert_int_equal(px_fm_get_ld_alloc_rsp_decode(want4, 3, g), PX_E_TRUNCATED);
    assert_int_equal(px_fm_get_ld_alloc_rsp_decode(want2, sizeof(want2) - 4, g), PX_E_TRUNCATED);
    uint8_t more[sizeof(want4) + 1] = {0};
    memcpy(more, want4, sizeof(want4));
    assert_int_equal(px_fm_get_ld_alloc_rsp_decode(more, sizeof(more), g), PX_E_PROTO);

    px_fm_set_ld_alloc *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    assert_int_equal(px_fm_set_ld_alloc_decode(set, sizeof(set), s), PX_OK);
    assert_int_equal(s->n, 1);
    assert_int_equal(s->start_ld, 1);
    assert_int_equal(s->ld[0].range2, 2);
    assert_int_equal(px_fm_set_ld_alloc_encode(s, buf, sizeof(buf), &len), PX_OK);
    assert_int_equal(len, sizeof(set));
    assert_memory_equal(buf, set, sizeof(set));
    assert_int_equal(px_fm_set_ld_alloc_encode(s, buf, sizeof(set) - 1, &len), PX_E_TOOBIG);
    assert_int_equal(px_fm_set_ld_alloc_decode(set, sizeof(set) - 1, s), PX_E_TRUNCATED);
    assert_int_equal(px_fm_set_ld_alloc_decode(set, 2, s), PX_E_TRUNCATED);
    uint8_t set_more[sizeof(set) + 1] = {0};
    memcpy(set_more, set, sizeof(set));
    assert_int_equal(px_fm_set_ld_alloc_decode(set_more, sizeof(set_more), s), PX_E_PROTO);

    /* 64-bit multipliers: every byte lands where the table says. */
    s->n = 1;
    s->start_ld = 0;
    s->ld[0] = (px_fm_ld_alloc){0x0807060504030201ull, 0x100f0e0d0c0b0a09ull};
    assert_int_equal(px_fm_set_ld_alloc_encode(s, buf, sizeof(buf), &len), PX_OK);
    for (int i = 0; i < 16; i++)
        assert_int_equal(buf[4 + i], i + 1);

    /* Wrong lengths through the switch. */
    assert_int_equal(call(sw, 3, PX_FM_GET_LD_ALLOC, req, 1), PX_CCI_INVALID_PAYLOAD_LENGTH);
    assert_int_equal(call(sw, 3, PX_FM_SET_LD_ALLOC, set, sizeof(set) - 1),
                     PX_CCI_INVALID_PAYLOAD_LENGTH);
    assert_int_equal(call(sw, 3, PX_FM_SET_LD_ALLOC, set, 3), PX_CCI_INVALID_PAYLOAD_LENGTH);
    free(s);
    free(g);
    px_cxlsw_free(sw);
}

static void test_tunnel_bytes(void **state)
{
    (void)state;
    px_cxlsw *sw = mk();
    /* 5300h to the switch: port 2, target type 0, 12 bytes of Get LD Info. */
    const uint8_t req[12 + 4 + 12] = {0x00, 0x05, 0x00, 0x00, 0x53, 0x10, 0x00, 0x00, 0x00, 0x00,
                                      0x00, 0x00, 0x02, 0x00, 0x0c, 0x00, 0x00, 0x09, 0x00, 0x00,
                                      0x54, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    send_raw(sw, PX_CXLSW_PORT_SWITCH, req, sizeof(req));
    const uint8_t want[12 + 4 + 23] = {
        0x01, 0x05, 0x00, 0x00, 0x53, 0x1b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x17, 0x00, 0x00, 0x00, /* response length 23 */
        0x01, 0x09, 0x00, 0x00, 0x54, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00};
    assert_int_equal(rsp_len, sizeof(want));
    assert_memory_equal(rsp, want, sizeof(want));

    /* The codecs on the same bytes. */
    px_fm_tunnel t;
    assert_int_equal(px_fm_tunnel_req_decode(req + 12, 16, &t), PX_OK);
    assert_int_equal(t.target, 2);
    assert_int_equal(t.target_type, 0);
    assert_int_equal(t.msg_len, 12);
    assert_ptr_equal(t.msg, req + 16);
    uint8_t buf[64];
    size_t len;
    assert_int_equal(px_fm_tunnel_req_encode(&t, buf, sizeof(buf), &len), PX_OK);
    assert_int_equal(len, 16);
    assert_memory_equal(buf, req + 12, 16);
    assert_int_equal(px_fm_tunnel_req_encode(&t, buf, 15, &len), PX_E_TOOBIG);
    assert_int_equal(px_fm_tunnel_rsp_decode(want + 12, 27, &t), PX_OK);
    assert_int_equal(t.msg_len, 23);
    assert_ptr_equal(t.msg, want + 16);
    assert_int_equal(px_fm_tunnel_rsp_encode(&t, buf, sizeof(buf), &len), PX_OK);
    assert_int_equal(len, 27);
    assert_memory_equal(buf, want + 12, 27);
    t.msg_len = 11;
    assert_int_equal(px_fm_tunnel_rsp_encode(&t, buf, sizeof(buf), &len), PX_E_INVAL);
    assert_int_equal(px_fm_tunnel_req_decode(req + 12, 3, &t), PX_E_TRUNCATED);
    assert_int_equal(px_fm_tunnel_req_decode(req + 12, 15, &t), PX_E_TRUNCATED);
    uint8_t want_more[sizeof(want) + 1] = {0};
    memcpy(want_more, want, sizeof(want));
    assert_int_equal(px_fm_tunnel_rsp_decode(want_more + 12, 28, &t), PX_E_PROTO);
    const uint8_t tiny[4 + 11] = {0x02, 0x00, 0x0b, 0x00};
    assert_int_equal(px_fm_tunnel_req_decode(tiny, sizeof(tiny), &t), PX_E_TRUNCATED);
    px_cxlsw_free(sw);
}

/* ---- semantics and every refusal ------------------------------------------------- */

static void test_bind_semantics(void **state)
{
    (void)state;
    px_cxlsw *sw = mk();
    uint16_t vs = 99;
    assert_int_equal(px_cxlsw_generation(sw), 0);
    assert_int_equal(px_cxlsw_bind(sw, 0, 0, 0, 0, &vs), PX_CCI_SUCCESS);
    assert_int_equal(vs, PX_CXLSW_VS_NONE);
    assert_int_equal(px_cxlsw_generation(sw), 1);

    /* Convenience calls: every refusal, and none changes anything. */
    assert_int_equal(px_cxlsw_bind(sw, 2, 0, 0, 0, &vs), PX_CCI_INVALID_INPUT);
    assert_int_equal(vs, PX_CXLSW_VS_VCS);
    assert_int_equal(px_cxlsw_bind(sw, 0, 4, 0, 0, &vs), PX_CCI_INVALID_INPUT);
    assert_int_equal(vs, PX_CXLSW_VS_VPPB);
    assert_int_equal(px_cxlsw_bind(sw, 0, 1, 2, 0, &vs), PX_CCI_INVALID_INPUT);
    assert_int_equal(vs, PX_CXLSW_VS_PORT);
    assert_int_equal(px_cxlsw_bind(sw, 0, 1, 0, 4, &vs), PX_CCI_INVALID_INPUT);
    assert_int_equal(vs, PX_CXLSW_VS_LD);
    assert_int_equal(px_cxlsw_bind(sw, 0, 0, 0, 1, &vs), PX_CCI_INVALID_INPUT);
    assert_int_equal(vs, PX_CXLSW_VS_VPPB_BOUND);
    assert_int_equal(px_cxlsw_unbind(sw, 2, 0, &vs), PX_CCI_INVALID_INPUT);
    assert_int_equal(vs, PX_CXLSW_VS_VCS);
    assert_int_equal(px_cxlsw_unbind(sw, 0, 4, &vs), PX_CCI_INVALID_INPUT);
    assert_int_equal(vs, PX_CXLSW_VS_VPPB);
    assert_int_equal(px_cxlsw_unbind(sw, 1, 0, &vs), PX_CCI_INVALID_INPUT);
    assert_int_equal(vs, PX_CXLSW_VS_VPPB_UNBOUND);
    assert_int_equal(px_cxlsw_bind(sw, UINT32_MAX, 0, 0, 0, NULL), PX_CCI_INVALID_INPUT);
    assert_int_equal(px_cxlsw_generation(sw), 1);
    assert_int_equal(px_cxlsw_bindings(sw, NULL, 0), 1);

    /* The same through the FM API, with the vendor status on the wire. */
    struct {
        uint8_t pl[6];
        uint16_t vs;
    } bad[] = {
        {{2, 0, 2, 0, 0, 0}, PX_CXLSW_VS_VCS},      {{0, 4, 2, 0, 0, 0}, PX_CXLSW_VS_VPPB},
        {{0, 1, 0, 0, 0, 0}, PX_CXLSW_VS_PORT}, /* a USP */
        {{0, 1, 1, 0, 0, 0}, PX_CXLSW_VS_PORT},     {{0, 1, 4, 0, 0, 0}, PX_CXLSW_VS_PORT},
        {{0, 1, 0xff, 0, 0, 0}, PX_CXLSW_VS_PORT},  {{0, 1, 2, 0, 4, 0}, PX_CXLSW_VS_LD},
        {{0, 1, 2, 0, 0xff, 0xff}, PX_CXLSW_VS_LD}, /* FFFFh: not for an MLD */
        {{0, 1, 3, 0, 2, 0}, PX_CXLSW_VS_LD},       {{0, 0, 2, 0, 1, 0}, PX_CXLSW_VS_VPPB_BOUND},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_BIND_VPPB, bad[i].pl, 6);
        EXPECT_REFUSED(PX_CCI_INVALID_INPUT, bad[i].vs);
    }
    const uint8_t ub[][3] = {{2, 0, 0}, {0, 4, 0}, {1, 0, 0}, {0, 0, 3}, {0, 0, 0x0f}};
    const uint16_t ubvs[] = {PX_CXLSW_VS_VCS, PX_CXLSW_VS_VPPB, PX_CXLSW_VS_VPPB_UNBOUND,
                             PX_CXLSW_VS_FIELD, PX_CXLSW_VS_FIELD};
    for (size_t i = 0; i < 5; i++) {
        call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_UNBIND_VPPB, ub[i], 3);
        EXPECT_REFUSED(PX_CCI_INVALID_INPUT, ubvs[i]);
    }
    assert_int_equal(px_cxlsw_generation(sw), 1);
    /* Every unbind option the spec defines; reserved bits 7:4 ignored. */
    for (uint8_t opt = 0; opt < 3; opt++) {
        assert_int_equal(px_cxlsw_bind(sw, 1, 2, 1, 0, NULL), PX_CCI_SUCCESS);
        const uint8_t u[3] = {1, 2, (uint8_t)(0xa0 | opt)};
        assert_int_equal(call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_UNBIND_VPPB, u, 3), PX_CCI_SUCCESS);
    }
    assert_int_equal(px_cxlsw_generation(sw), 7);

    /* An LD with nothing allocated cannot be bound. */
    const px_fm_ld_alloc zero = {0, 0};
    assert_int_equal(px_cxlsw_ld_alloc_set(sw, 0, 3, 1, &zero, &vs), PX_CCI_SUCCESS);
    assert_int_equal(px_cxlsw_ld_bytes(sw, 0, 3), 0);
    assert_int_equal(px_cxlsw_bind(sw, 1, 0, 0, 3, &vs), PX_CCI_INVALID_INPUT);
    assert_int_equal(vs, PX_CXLSW_VS_LD_EMPTY);
    const uint8_t empty[6] = {1, 0, 2, 0, 3, 0};
    call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_BIND_VPPB, empty, 6);
    EXPECT_REFUSED(PX_CCI_INVALID_INPUT, PX_CXLSW_VS_LD_EMPTY);
    px_cxlsw_free(sw);
}

static void test_shared_ld(void **state)
{
    (void)state;
    px_cxlsw *sw = mk();
    /* Pool0 LD 1 behind VCS 0 (vPPB 0) and VCS 1 (vPPB 2): shared. */
    const uint8_t b0[6] = {0, 0, 2, 0, 1, 0};
    const uint8_t b1[6] = {1, 2, 2, 0, 1, 0};
    assert_int_equal(call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_BIND_VPPB, b0, 6), PX_CCI_SUCCESS);
    assert_int_equal(call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_BIND_VPPB, b1, 6), PX_CCI_SUCCESS);
    assert_int_equal(px_cxlsw_ld_users(sw, 0, 1), 2);
    px_cxlsw_binding b[4];
    assert_int_equal(px_cxlsw_bindings(sw, b, 4), 2);
    assert_int_equal(b[0].vcs, 0);
    assert_int_equal(b[0].vppb, 0);
    assert_int_equal(b[1].vcs, 1);
    assert_int_equal(b[1].vppb, 2);
    assert_int_equal(b[0].pool, 0);
    assert_int_equal(b[1].pool, 0);
    assert_int_equal(b[0].ld, 1);
    assert_int_equal(b[1].ld, 1);
    /* Only one fits: the total is still 2. */
    memset(b, 0, sizeof(b));
    assert_int_equal(px_cxlsw_bindings(sw, b, 1), 2);
    assert_int_equal(b[0].vcs, 0);
    assert_int_equal(b[1].vcs, 0);

    /* Both VCSs show it in Get Virtual CXL Switch Info. */
    const uint8_t q[] = {0, 4, 2, 0, 1};
    assert_int_equal(call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_GET_VCS_INFO, q, sizeof(q)),
                     PX_CCI_SUCCESS);
    const uint8_t want[] = {2,    0,    0,    0,    0x00, 0x01, 0x00, 0x04, 0x03, 0x02, 0x01,
                            0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0xff,
                            0xff, 0x00, 0x01, 0x01, 0x01, 0x04, 0x00, 0xff, 0xff, 0x00, 0x00,
                            0xff, 0xff, 0x00, 0x03, 0x02, 0x01, 0x00, 0x00, 0xff, 0xff, 0x00};
    expect_payload(want, sizeof(want));

    /* The same VCS twice on one LD is allowed too (two vPPBs). */
    assert_int_equal(px_cxlsw_bind(sw, 0, 3, 0, 1, NULL), PX_CCI_SUCCESS);
    assert_int_equal(px_cxlsw_ld_users(sw, 0, 1), 3);
    /* Its allocation is frozen while any of them holds it. */
    uint16_t vs;
    const px_fm_ld_alloc two = {2, 0};
    assert_int_equal(px_cxlsw_ld_alloc_set(sw, 0, 1, 1, &two, &vs), PX_CCI_INVALID_INPUT);
    assert_int_equal(vs, PX_CXLSW_VS_LD_BOUND);
    assert_int_equal(px_cxlsw_unbind(sw, 0, 0, NULL), PX_CCI_SUCCESS);
    assert_int_equal(px_cxlsw_unbind(sw, 0, 3, NULL), PX_CCI_SUCCESS);
    assert_int_equal(px_cxlsw_ld_users(sw, 0, 1), 1);
    assert_int_equal(px_cxlsw_ld_alloc_set(sw, 0, 1, 1, &two, &vs), PX_CCI_INVALID_INPUT);
    assert_int_equal(px_cxlsw_unbind(sw, 1, 2, NULL), PX_CCI_SUCCESS);
    assert_int_equal(px_cxlsw_ld_users(sw, 0, 1), 0);
    /* Pool0 holds 4 units, all allocated: LD 1 can grow only if another shrinks. */
    assert_int_equal(px_cxlsw_ld_alloc_set(sw, 0, 1, 1, &two, &vs), PX_CCI_INVALID_INPUT);
    assert_int_equal(vs, PX_CXLSW_VS_CAPACITY);
    const px_fm_ld_alloc pair[2] = {{2, 0}, {0, 0}};
    assert_int_equal(px_cxlsw_ld_alloc_set(sw, 0, 1, 2, pair, &vs), PX_CCI_SUCCESS);
    assert_int_equal(px_cxlsw_ld_bytes(sw, 0, 1), 512 * MIB);
    assert_int_equal(px_cxlsw_ld_users(sw, 7, 0), 0);
    assert_int_equal(px_cxlsw_ld_users(sw, 0, 4), 0);
    px_cxlsw_free(sw);
}

static void test_alloc_semantics(void **state)
{
    (void)state;
    px_cxlsw *sw = mk();
    uint16_t vs;
    px_fm_ld_alloc a;
    assert_int_equal(px_cxlsw_ld_alloc_get(sw, 1, 0, &a), PX_CCI_SUCCESS);
    assert_int_equal(a.range1, 4);
    assert_int_equal(a.range2, 0);
    assert_int_equal(px_cxlsw_ld_bytes(sw, 1, 0), GIB);
    assert_int_equal(px_cxlsw_ld_alloc_get(sw, 2, 0, &a), PX_CCI_INVALID_INPUT);
    assert_int_equal(px_cxlsw_ld_alloc_get(sw, 1, 2, &a), PX_CCI_INVALID_INPUT);
    assert_int_equal(px_cxlsw_ld_bytes(sw, 1, 2), 0);
    assert_int_equal(px_cxlsw_ld_bytes(sw, 9, 0), 0);

    /* Bound LD 0 of pool1: setting it to what it has is fine, changing is not. */
    assert_int_equal(px_cxlsw_bind(sw, 0, 0, 1, 0, NULL), PX_CCI_SUCCESS);
    uint64_t gen = px_cxlsw_generation(sw);
    const uint8_t same[4 + 32] = {2, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                  0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(call(sw, 3, PX_FM_SET_LD_ALLOC, same, sizeof(same)), PX_CCI_SUCCESS);
    expect_payload(same, sizeof(same));
    assert_int_equal(px_cxlsw_generation(sw), gen + 1); /* LD 1 went from 4 to 1 */
    uint8_t change[4 + 16] = {1, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0};
    call(sw, 3, PX_FM_SET_LD_ALLOC, change, sizeof(change));
    EXPECT_REFUSED(PX_CCI_INVALID_INPUT, PX_CXLSW_VS_LD_BOUND);
    assert_int_equal(call(sw, 3, PX_FM_SET_LD_ALLOC, same, 4 + 16), PX_CCI_INVALID_PAYLOAD_LENGTH);

    /* Over capacity: 8 units in pool1; LD 1 to 5 with LD 0 at 4. */
    uint8_t over[4 + 16] = {1, 1, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    call(sw, 3, PX_FM_SET_LD_ALLOC, over, sizeof(over));
    EXPECT_REFUSED(PX_CCI_INVALID_INPUT, PX_CXLSW_VS_CAPACITY);
    over[4] = 4; /* exactly full */
    assert_int_equal(call(sw, 3, PX_FM_SET_LD_ALLOC, over, sizeof(over)), PX_CCI_SUCCESS);
    /* Multipliers that would wrap a 64-bit sum. */
    const px_fm_ld_alloc huge[2] = {{UINT64_MAX, 1}, {1, UINT64_MAX}};
    assert_int_equal(px_cxlsw_ld_alloc_set(sw, 1, 1, 1, &huge[0], &vs), PX_CCI_INVALID_INPUT);
    assert_int_equal(vs, PX_CXLSW_VS_CAPACITY);
    assert_int_equal(px_cxlsw_ld_alloc_set(sw, 1, 1, 1, &huge[1], &vs), PX_CCI_INVALID_INPUT);
    assert_int_equal(vs, PX_CXLSW_VS_CAPACITY);
    const px_fm_ld_alloc nearly[1] = {{UINT64_MAX - 3, 0}};
    assert_int_equal(px_cxlsw_ld_alloc_set(sw, 1, 1, 1, nearly, &vs), PX_CCI_INVALID_INPUT);
    assert_int_equal(vs, PX_CXLSW_VS_CAPACITY);

    /* Range and count checks. */
    uint8_t past[4 + 32] = {2, 1};
    call(sw, 3, PX_FM_SET_LD_ALLOC, past, sizeof(past));
    EXPECT_REFUSED(PX_CCI_INVALID_INPUT, PX_CXLSW_VS_LD);
    uint8_t start_past[4 + 16] = {1, 2};
    call(sw, 3, PX_FM_SET_LD_ALLOC, start_past, sizeof(start_past));
    EXPECT_REFUSED(PX_CCI_INVALID_INPUT, PX_CXLSW_VS_LD);
    const uint8_t none[4] = {0, 0, 0, 0};
    call(sw, 3, PX_FM_SET_LD_ALLOC, none, 4);
    EXPECT_REFUSED(PX_CCI_INVALID_INPUT, PX_CXLSW_VS_FIELD);
    assert_int_equal(px_cxlsw_ld_alloc_set(sw, 2, 0, 1, huge, &vs), PX_CCI_INVALID_INPUT);
    assert_int_equal(vs, PX_CXLSW_VS_PORT);
    assert_int_equal(px_cxlsw_ld_alloc_set(sw, 1, 0, 0, huge, &vs), PX_CCI_INVALID_INPUT);
    assert_int_equal(vs, PX_CXLSW_VS_FIELD);
    assert_int_equal(px_cxlsw_ld_alloc_set(sw, 1, UINT32_MAX, 2, huge, &vs), PX_CCI_INVALID_INPUT);
    assert_int_equal(vs, PX_CXLSW_VS_LD);
    const uint8_t g0[2] = {0, 0};
    call(sw, 3, PX_FM_GET_LD_ALLOC, g0, 2);
    EXPECT_REFUSED(PX_CCI_INVALID_INPUT, PX_CXLSW_VS_FIELD);
    const uint8_t g2[2] = {2, 1};
    call(sw, 3, PX_FM_GET_LD_ALLOC, g2, 2);
    EXPECT_REFUSED(PX_CCI_INVALID_INPUT, PX_CXLSW_VS_LD);

    /* Nothing refused changed anything: LD 0 = 4, LD 1 = 4. */
    assert_int_equal(px_cxlsw_ld_alloc_get(sw, 1, 0, &a), PX_CCI_SUCCESS);
    assert_int_equal(a.range1, 4);
    assert_int_equal(px_cxlsw_ld_alloc_get(sw, 1, 1, &a), PX_CCI_SUCCESS);
    assert_int_equal(a.range1, 4);
    assert_int_equal(a.range2, 0);
    px_cxlsw_free(sw);
}

static void test_targets_and_malformed(void **state)
{
    (void)state;
    px_cxlsw *sw = mk();
    /* MLD commands at the switch, switch commands at an MLD: Unsupported. */
    call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_GET_LD_INFO, NULL, 0);
    EXPECT_REFUSED(PX_CCI_UNSUPPORTED, PX_CXLSW_VS_TARGET);
    call(sw, 2, PX_FM_IDENTIFY_SWITCH, NULL, 0);
    EXPECT_REFUSED(PX_CCI_UNSUPPORTED, PX_CXLSW_VS_TARGET);
    call(sw, 2, PX_FM_TUNNEL, NULL, 0);
    EXPECT_REFUSED(PX_CCI_UNSUPPORTED, PX_CXLSW_VS_TARGET);
    /* Opcodes nobody implements. */
    call(sw, PX_CXLSW_PORT_SWITCH, 0x0001, NULL, 0);
    EXPECT_REFUSED(PX_CCI_UNSUPPORTED, PX_CXLSW_VS_NONE);
    call(sw, PX_CXLSW_PORT_SWITCH, 0x5102, NULL, 0);
    EXPECT_REFUSED(PX_CCI_UNSUPPORTED, PX_CXLSW_VS_NONE);
    call(sw, 3, 0x5403, NULL, 0);
    EXPECT_REFUSED(PX_CCI_UNSUPPORTED, PX_CXLSW_VS_NONE);
    /* A port without an MLD. */
    call(sw, 0, PX_FM_GET_LD_INFO, NULL, 0);
    EXPECT_REFUSED(PX_CCI_INVALID_INPUT, PX_CXLSW_VS_PORT);
    call(sw, 4, PX_FM_GET_LD_INFO, NULL, 0);
    EXPECT_REFUSED(PX_CCI_INVALID_INPUT, PX_CXLSW_VS_PORT);

    /* Headers: too short (tag and opcode kept as far as they go). */
    const uint8_t part[11] = {0x00, 0x77, 0x00, 0x01, 0x51, 0, 0, 0, 0, 0, 0};
    for (size_t len = 0; len < sizeof(part); len++) {
        send_raw(sw, PX_CXLSW_PORT_SWITCH, len ? part : NULL, len);
        const uint8_t want[12] = {0x01,
                                  len > 1 ? 0x77 : 0,
                                  0,
                                  len > 4 ? 0x01 : 0,
                                  len > 4 ? 0x51 : 0,
                                  0,
                                  0,
                                  0,
                                  0x16,
                                  0,
                                  0,
                                  0};
        assert_int_equal(rsp_len, 12);
        assert_memory_equal(rsp, want, 12);
    }
    /* Payload length field disagreeing with the bytes. */
    uint8_t req[32];
    size_t len;
    const uint8_t pl[2] = {0, 4};
    assert_int_equal(px_cci_request(PX_FM_GET_LD_ALLOC, 3, pl, 2, req, sizeof(req), &len), PX_OK);
    send_raw(sw, 2, req, len - 1);
    EXPECT_REFUSED(PX_CCI_INVALID_PAYLOAD_LENGTH, PX_CXLSW_VS_NONE);
    req[len] = 0;
    send_raw(sw, 2, req, len + 1);
    EXPECT_REFUSED(PX_CCI_INVALID_PAYLOAD_LENGTH, PX_CXLSW_VS_NONE);
    assert_int_equal(rsp[1], 3);
    assert_int_equal(rsp[3] | rsp[4] << 8, PX_FM_GET_LD_ALLOC);
    /* A response sent as a request. */
    req[0] = PX_CCI_CAT_RESPONSE;
    send_raw(sw, 2, req, len);
    EXPECT_REFUSED(PX_CCI_INVALID_INPUT, PX_CXLSW_VS_FIELD);
    assert_int_equal(rsp[0], PX_CCI_CAT_RESPONSE);
    /* Reserved bits and fields in the request do not matter. */
    req[0] = 0xf0;
    req[2] = 0xff;
    req[7] |= 0xe0;
    req[8] = req[9] = req[10] = req[11] = 0xaa;
    send_raw(sw, 2, req, len);
    assert_int_equal(rsp[8] | rsp[9] << 8, PX_CCI_SUCCESS);
    assert_int_equal(rsp[7], 0); /* BO clear: done at once */

    /* Bad arguments and a buffer too small for even a header. */
    size_t out = 99;
    assert_int_equal(px_cxlsw_execute(sw, req, len, 2, rsp, 11, &out), PX_E_TOOBIG);
    assert_int_equal(out, 0);
    assert_int_equal(px_cxlsw_execute(NULL, req, len, 2, rsp, sizeof(rsp), &out), PX_E_INVAL);
    assert_int_equal(px_cxlsw_execute(sw, NULL, 1, 2, rsp, sizeof(rsp), &out), PX_E_INVAL);
    assert_int_equal(px_cxlsw_execute(sw, req, len, 2, NULL, sizeof(rsp), &out), PX_E_INVAL);
    assert_int_equal(px_cxlsw_execute(sw, req, len, 2, rsp, sizeof(rsp), NULL), PX_E_INVAL);

    /* A response that does not fit: the header alone fits, it says why. */
    const uint8_t ps[] = {5, 0, 1, 2, 3, 4};
    assert_int_equal(
        px_cci_request(PX_FM_GET_PORT_STATE, 1, ps, sizeof(ps), req, sizeof(req), &len), PX_OK);
    assert_int_equal(
        px_cxlsw_execute(sw, req, len, PX_CXLSW_PORT_SWITCH, rsp, 12 + 4 + 16 * 5 - 1, &out),
        PX_OK);
    rsp_len = out;
    EXPECT_REFUSED(PX_CCI_INVALID_INPUT, PX_CXLSW_VS_RSP_TOO_BIG);
    assert_int_equal(
        px_cxlsw_execute(sw, req, len, PX_CXLSW_PORT_SWITCH, rsp, 12 + 4 + 16 * 5, &out), PX_OK);
    assert_int_equal(out, 12 + 4 + 16 * 5);
    assert_int_equal(rsp[8], 0);
    const uint8_t vq[] = {0, 4, 1, 0};
    assert_int_equal(px_cci_request(PX_FM_GET_VCS_INFO, 1, vq, sizeof(vq), req, sizeof(req), &len),
                     PX_OK);
    assert_int_equal(
        px_cxlsw_execute(sw, req, len, PX_CXLSW_PORT_SWITCH, rsp, 12 + 4 + 4 + 15, &out), PX_OK);
    rsp_len = out;
    EXPECT_REFUSED(PX_CCI_INVALID_INPUT, PX_CXLSW_VS_RSP_TOO_BIG);
    for (size_t cap = 12; cap < 12 + 11; cap++) {
        assert_int_equal(px_cci_request(PX_FM_GET_LD_INFO, 1, NULL, 0, req, sizeof(req), &len),
                         PX_OK);
        assert_int_equal(px_cxlsw_execute(sw, req, len, 2, rsp, cap, &out), PX_OK);
        rsp_len = out;
        EXPECT_REFUSED(PX_CCI_INVALID_INPUT, PX_CXLSW_VS_RSP_TOO_BIG);
    }
    /* Set LD Allocations whose answer would not fit changes nothing. */
    const uint8_t set[4 + 16] = {1, 0, 0, 0, 2};
    assert_int_equal(
        px_cci_request(PX_FM_SET_LD_ALLOC, 1, set, sizeof(set), req, sizeof(req), &len), PX_OK);
    assert_int_equal(px_cxlsw_execute(sw, req, len, 3, rsp, 12 + 19, &out), PX_OK);
    rsp_len = out;
    EXPECT_REFUSED(PX_CCI_INVALID_INPUT, PX_CXLSW_VS_RSP_TOO_BIG);
    assert_int_equal(px_cxlsw_ld_bytes(sw, 1, 0), GIB);
    assert_int_equal(px_cxlsw_generation(sw), 0);
    px_cxlsw_free(sw);
}

static void test_tunnel_semantics(void **state)
{
    (void)state;
    px_cxlsw *sw = mk();
    uint8_t inner[64], pl[96];
    size_t ilen;
    /* Set LD Allocations through the tunnel to port 3 changes pool1. */
    const uint8_t set[4 + 16] = {1, 1, 0, 0, 2};
    assert_int_equal(
        px_cci_request(PX_FM_SET_LD_ALLOC, 0x21, set, sizeof(set), inner, sizeof(inner), &ilen),
        PX_OK);
    px_fm_tunnel t = {.target = 3, .target_type = 0, .msg = inner, .msg_len = ilen};
    size_t plen;
    assert_int_equal(px_fm_tunnel_req_encode(&t, pl, sizeof(pl), &plen), PX_OK);
    assert_int_equal(call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_TUNNEL, pl, plen), PX_CCI_SUCCESS);
    assert_int_equal(px_cxlsw_ld_bytes(sw, 1, 1), 512 * MIB);
    px_fm_tunnel r;
    assert_int_equal(px_fm_tunnel_rsp_decode(rsp + 12, rsp_len - 12, &r), PX_OK);
    px_cci_hdr h;
    assert_int_equal(px_cci_decode(r.msg, r.msg_len, &h, NULL), PX_OK);
    assert_int_equal(h.tag, 0x21);
    assert_int_equal(h.rc, PX_CCI_SUCCESS);
    assert_int_equal(h.payload_len, sizeof(set));

    /* The inner command's own failure travels inside a successful tunnel. */
    t.target = 2;
    assert_int_equal(px_fm_tunnel_req_encode(&t, pl, sizeof(pl), &plen), PX_OK);
    pl[plen - 19] = 9; /* start LD 1 -> 9 */
    assert_int_equal(call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_TUNNEL, pl, plen), PX_CCI_SUCCESS);
    assert_int_equal(px_fm_tunnel_rsp_decode(rsp + 12, rsp_len - 12, &r), PX_OK);
    assert_int_equal(px_cci_decode(r.msg, r.msg_len, &h, NULL), PX_OK);
    assert_int_equal(h.rc, PX_CCI_INVALID_INPUT);
    assert_int_equal(h.vendor_status, PX_CXLSW_VS_LD);
    assert_int_equal(h.payload_len, 0);
    /* A switch command tunnelled to the MLD is not the MLD's. */
    assert_int_equal(px_cci_request(PX_FM_IDENTIFY_SWITCH, 1, NULL, 0, inner, sizeof(inner), &ilen),
                     PX_OK);
    t.msg_len = ilen;
    assert_int_equal(px_fm_tunnel_req_encode(&t, pl, sizeof(pl), &plen), PX_OK);
    assert_int_equal(call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_TUNNEL, pl, plen), PX_CCI_SUCCESS);
    assert_int_equal(px_fm_tunnel_rsp_decode(rsp + 12, rsp_len - 12, &r), PX_OK);
    assert_int_equal(px_cci_decode(r.msg, r.msg_len, &h, NULL), PX_OK);
    assert_int_equal(h.rc, PX_CCI_UNSUPPORTED);
    /* A malformed inner message: the inner answer says so. */
    pl[4 + 5] = 5; /* inner payload length 5, none there */
    assert_int_equal(call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_TUNNEL, pl, plen), PX_CCI_SUCCESS);
    assert_int_equal(px_fm_tunnel_rsp_decode(rsp + 12, rsp_len - 12, &r), PX_OK);
    assert_int_equal(px_cci_decode(r.msg, r.msg_len, &h, NULL), PX_OK);
    assert_int_equal(h.rc, PX_CCI_INVALID_PAYLOAD_LENGTH);

    /* Tunnel refusals. */
    pl[4 + 5] = 0;
    pl[1] = 1; /* target type: LD pool CCI */
    call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_TUNNEL, pl, plen);
    EXPECT_REFUSED(PX_CCI_INVALID_INPUT, PX_CXLSW_VS_FIELD);
    pl[1] = 0;
    pl[0] = 1; /* a USP */
    call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_TUNNEL, pl, plen);
    EXPECT_REFUSED(PX_CCI_INVALID_INPUT, PX_CXLSW_VS_PORT);
    pl[0] = 2;
    assert_int_equal(call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_TUNNEL, pl, plen - 1),
                     PX_CCI_INVALID_PAYLOAD_LENGTH);
    assert_int_equal(call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_TUNNEL, pl, 3),
                     PX_CCI_INVALID_PAYLOAD_LENGTH);
    /* No room for the tunnel header and an inner header. */
    uint8_t req[128];
    size_t len, out;
    assert_int_equal(px_cci_request(PX_FM_TUNNEL, 1, pl, plen, req, sizeof(req), &len), PX_OK);
    assert_int_equal(px_cxlsw_execute(sw, req, len, PX_CXLSW_PORT_SWITCH, rsp, 12 + 15, &out),
                     PX_OK);
    rsp_len = out;
    EXPECT_REFUSED(PX_CCI_INVALID_INPUT, PX_CXLSW_VS_RSP_TOO_BIG);
    /* Room for the headers but not the inner payload: the inner says so. */
    assert_int_equal(px_cci_request(PX_FM_GET_LD_INFO, 1, NULL, 0, inner, sizeof(inner), &ilen),
                     PX_OK);
    t.msg_len = ilen;
    assert_int_equal(px_fm_tunnel_req_encode(&t, pl, sizeof(pl), &plen), PX_OK);
    assert_int_equal(px_cci_request(PX_FM_TUNNEL, 1, pl, plen, req, sizeof(req), &len), PX_OK);
    assert_int_equal(px_cxlsw_execute(sw, req, len, PX_CXLSW_PORT_SWITCH, rsp, 12 + 16 + 10, &out),
                     PX_OK);
    assert_int_equal(out, 12 + 16);
    assert_int_equal(rsp[8], PX_CCI_SUCCESS);
    assert_int_equal(rsp[12], 12); /* response length: the inner header */
    assert_int_equal(rsp[12 + 4 + 8], PX_CCI_INVALID_INPUT);
    assert_int_equal(rsp[12 + 4 + 10], PX_CXLSW_VS_RSP_TOO_BIG);
    assert_int_equal(px_cxlsw_execute(sw, req, len, PX_CXLSW_PORT_SWITCH, rsp, 12 + 16 + 11, &out),
                     PX_OK);
    assert_int_equal(out, 12 + 16 + 11);
    assert_int_equal(rsp[12 + 4 + 8], PX_CCI_SUCCESS);
    px_cxlsw_free(sw);
}

/* ---- configuration ------------------------------------------------------------- */

static void test_config(void **state)
{
    (void)state;
    px_cxlsw *sw = (px_cxlsw *)1;
    px_errmsg em;
    px_cxlsw_cfg good = {.name = "fabric", .n_ports = 2, .pools = pools2, .n_pools = 2};

    assert_int_equal(px_cxlsw_new(NULL, &sw, &em), PX_E_INVAL);
    assert_null(sw);
    assert_int_equal(px_cxlsw_new(&good, NULL, &em), PX_E_INVAL);

    char long_name[PX_CXLSW_NAME_MAX + 1];
    memset(long_name, 'x', sizeof(long_name) - 1);
    long_name[PX_CXLSW_NAME_MAX] = '\0';
    px_cxlsw_pool_cfg p_dup[] = {{"a", 1, GIB}, {"a", 1, GIB}};
    px_cxlsw_pool_cfg p_noname[] = {{"", 1, GIB}};
    px_cxlsw_pool_cfg p_zero_lds[] = {{"a", 0, GIB}};
    px_cxlsw_pool_cfg p_many_lds[] = {{"a", 257, GIB}};
    px_cxlsw_pool_cfg p_odd[] = {{"a", 1, GIB + 1}};
    px_cxlsw_pool_cfg p_small[] = {{"a", 1, 128 * MIB}};
    px_cxlsw_pool_cfg p_huge[] = {{"a", 1, PX_CXLSW_MAX_LD_SIZE + PX_CXLSW_GRANULE}};
    px_cxlsw_binding bad_bind[] = {{0, 0, 0, 4}};
    px_cxlsw_binding twice[] = {{0, 0, 0, 0}, {0, 0, 0, 1}};
    px_cxlsw_cfg bad[] = {
        {.name = NULL, .n_ports = 1},
        {.name = "", .n_ports = 1},
        {.name = long_name, .n_ports = 1},
        {.name = "s", .n_ports = 0},
        {.name = "s", .n_ports = 256},
        {.name = "s", .n_ports = 1, .vppbs = 256},
        {.name = "s", .n_ports = 200, .pools = pools2, .n_pools = 56},
        {.name = "s", .n_ports = 1, .pools = NULL, .n_pools = 1},
        {.name = "s", .n_ports = 1, .bindings = NULL, .n_bindings = 1},
        {.name = "s", .n_ports = 1, .pools = p_dup, .n_pools = 2},
        {.name = "s", .n_ports = 1, .pools = p_noname, .n_pools = 1},
        {.name = "s", .n_ports = 1, .pools = p_zero_lds, .n_pools = 1},
        {.name = "s", .n_ports = 1, .pools = p_many_lds, .n_pools = 1},
        {.name = "s", .n_ports = 1, .pools = p_odd, .n_pools = 1},
        {.name = "s", .n_ports = 1, .pools = p_small, .n_pools = 1},
        {.name = "s", .n_ports = 1, .pools = p_huge, .n_pools = 1},
        {.name = "s",
         .n_ports = 1,
         .pools = pools2,
         .n_pools = 2,
         .bindings = bad_bind,
         .n_bindings = 1},
        {.name = "s",
         .n_ports = 1,
         .pools = pools2,
         .n_pools = 2,
         .bindings = twice,
         .n_bindings = 2},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sw = (px_cxlsw *)1;
        em.text[0] = '\0';
        px_err err = px_cxlsw_new(&bad[i], &sw, &em);
        assert_true(err == PX_E_CONFIG || err == PX_E_INVAL);
        assert_null(sw);
        assert_true(em.text[0] != '\0');
    }
    sw = NULL;
    assert_int_equal(px_cxlsw_new(&bad[16], &sw, &em), PX_E_CONFIG);
    assert_non_null(strstr(em.text, "no such LD"));
    px_cxlsw_free(NULL);

    /* The largest: 199 ports + 56 pools of 256 LDs, 255 vPPBs. */
    px_cxlsw_pool_cfg *many = calloc(56, sizeof(*many));
    char(*names)[8] = calloc(56, sizeof(*names));
    assert_non_null(many);
    assert_non_null(names);
    for (int i = 0; i < 56; i++) {
        snprintf(names[i], sizeof(names[i]), "p%d", i);
        many[i] = (px_cxlsw_pool_cfg){names[i], 256, 256 * MIB};
    }
    px_cxlsw_binding last[] = {{198, 254, 55, 255}};
    px_cxlsw_cfg big = {.name = "big",
                        .n_ports = 199,
                        .vppbs = 255,
                        .pools = many,
                        .n_pools = 56,
                        .bindings = last,
                        .n_bindings = 1};
    assert_int_equal(px_cxlsw_new(&big, &sw, &em), PX_OK);
    free(names); /* copied */
    free(many);
    assert_int_equal(px_cxlsw_n_vcs(sw), 199);
    assert_int_equal(px_cxlsw_vppbs(sw), 255);
    assert_int_equal(px_cxlsw_n_pools(sw), 56);
    assert_int_equal(px_cxlsw_generation(sw), 0);
    px_cxlsw_pool_info info;
    assert_int_equal(px_cxlsw_pool(sw, 55, &info), PX_OK);
    assert_string_equal(info.name, "p55");
    assert_int_equal(info.port, 254);
    assert_int_equal(info.n_lds, 256);
    assert_int_equal(px_cxlsw_pool(sw, 56, &info), PX_E_NOTFOUND);
    uint32_t idx;
    assert_int_equal(px_cxlsw_pool_find(sw, "p7", &idx), PX_OK);
    assert_int_equal(idx, 7);
    assert_int_equal(px_cxlsw_pool_find(sw, "nope", &idx), PX_E_NOTFOUND);
    assert_int_equal(px_cxlsw_pool_find(sw, NULL, &idx), PX_E_NOTFOUND);
    /* 256 LDs: 8-bit counts saturate at 255, Get LD Info's 16 bits carry it. */
    const uint8_t q[] = {1, 254};
    assert_int_equal(call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_GET_PORT_STATE, q, 2), PX_CCI_SUCCESS);
    assert_int_equal(rsp[12 + 4 + 15], 255);
    assert_int_equal(call(sw, 254, PX_FM_GET_LD_INFO, NULL, 0), PX_CCI_SUCCESS);
    assert_int_equal(rsp[12 + 8], 0x00);
    assert_int_equal(rsp[12 + 9], 0x01);
    const uint8_t g[] = {255, 255};
    assert_int_equal(call(sw, 254, PX_FM_GET_LD_ALLOC, g, 2), PX_CCI_SUCCESS);
    assert_int_equal(rsp[12 + 0], 255);
    assert_int_equal(rsp[12 + 3], 1);
    /* The last vPPB of the last VCS, bound at creation. */
    const uint8_t vq[] = {254, 1, 1, 198};
    assert_int_equal(call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_GET_VCS_INFO, vq, 4), PX_CCI_SUCCESS);
    const uint8_t vwant[] = {1, 0, 0, 0, 198, 1, 198, 255, 0x03, 254, 255, 0};
    expect_payload(vwant, sizeof(vwant));
    assert_int_equal(call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_IDENTIFY_SWITCH, NULL, 0),
                     PX_CCI_SUCCESS);
    assert_int_equal(rsp[12 + 2], 255);
    assert_int_equal(rsp[12 + 4 + 31], 0x7f);  /* ports 248..254 */
    assert_int_equal(rsp[12 + 36 + 24], 0x7f); /* VCS 192..198 */
    assert_int_equal(rsp[12 + 68] | rsp[12 + 69] << 8, 199 * 255);
    assert_int_equal(rsp[12 + 70], 1);
    /* Every VCS at once, all vPPBs: too big, so the FM pages. */
    uint8_t all[3 + 199];
    all[0] = 0;
    all[1] = 255;
    all[2] = 199;
    for (int i = 0; i < 199; i++)
        all[3 + i] = (uint8_t)i;
    call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_GET_VCS_INFO, all, sizeof(all));
    EXPECT_REFUSED(PX_CCI_INVALID_INPUT, PX_CXLSW_VS_RSP_TOO_BIG);
    all[1] = 16;
    assert_int_equal(call(sw, PX_CXLSW_PORT_SWITCH, PX_FM_GET_VCS_INFO, all, sizeof(all)),
                     PX_CCI_SUCCESS);
    assert_int_equal(rsp_len, 12 + 4 + 199 * (4 + 16 * 4));
    px_cxlsw_free(sw);

    /* Defaults and initial bindings. */
    px_cxlsw_binding init[] = {{1, 3, 1, 1}, {0, 0, 0, 1}, {1, 0, 0, 1}};
    good.bindings = init;
    good.n_bindings = 3;
    assert_int_equal(px_cxlsw_new(&good, &sw, &em), PX_OK);
    assert_string_equal(px_cxlsw_name(sw), "fabric");
    assert_int_equal(px_cxlsw_vppbs(sw), PX_CXLSW_VPPBS);
    assert_int_equal(px_cxlsw_generation(sw), 0);
    px_cxlsw_binding b[3];
    assert_int_equal(px_cxlsw_bindings(sw, b, 3), 3);
    assert_int_equal(b[0].vcs, 0); /* ordered by VCS, vPPB */
    assert_int_equal(b[1].vcs, 1);
    assert_int_equal(b[1].vppb, 0);
    assert_int_equal(b[2].vppb, 3);
    assert_int_equal(b[2].pool, 1);
    assert_int_equal(px_cxlsw_ld_users(sw, 0, 1), 2);
    px_cxlsw_free(sw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hdr_layout),
        cmocka_unit_test(test_hdr_bounds),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_identify_bytes),
        cmocka_unit_test(test_port_state_bytes),
        cmocka_unit_test(test_vcs_info_bytes),
        cmocka_unit_test(test_bind_unbind_bytes),
        cmocka_unit_test(test_ld_info_bytes),
        cmocka_unit_test(test_ld_alloc_bytes),
        cmocka_unit_test(test_tunnel_bytes),
        cmocka_unit_test(test_bind_semantics),
        cmocka_unit_test(test_shared_ld),
        cmocka_unit_test(test_alloc_semantics),
        cmocka_unit_test(test_targets_and_malformed),
        cmocka_unit_test(test_tunnel_semantics),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
