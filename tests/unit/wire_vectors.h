/* plexus — wire test vectors: valid messages of every type with edge values.
 *
 * Shared by tests/unit/test_wire.c (round trips, truncation) and
 * tests/fuzz/gen_seeds.c (fuzz seed corpora), so the fuzzers start from
 * exactly what the unit tests prove valid. Header-only; strings and bins
 * point into static storage in the including file.
 */
#ifndef PX_TEST_WIRE_VECTORS_H
#define PX_TEST_WIRE_VECTORS_H

#include <stdint.h>
#include <string.h>

#include "fabric/core/wire.h"

#define WV_MAX 64

static char wv_name_max[PX_WIRE_MAX_NAME + 1];
static char wv_role_max[PX_WIRE_MAX_NAME + 1];
static char wv_feat[PX_WIRE_MAX_FEATURES][PX_WIRE_MAX_NAME + 1];
static char wv_text_max[PX_WIRE_MAX_STR + 1];
static uint8_t wv_payload64[64];
static uint8_t wv_payload_max[PX_WIRE_MAX_BIN];

static inline void wv_fill_storage(void)
{
    /* 2-byte UTF-8 characters up to exactly the limit: counts bytes, not
     * characters. */
    for (unsigned i = 0; i < PX_WIRE_MAX_NAME; i += 2)
        memcpy(wv_name_max + i, "\xc3\xa9", 2);
    memset(wv_role_max, 'r', PX_WIRE_MAX_NAME);
    for (unsigned f = 0; f < PX_WIRE_MAX_FEATURES; f++) {
        memset(wv_feat[f], 'a' + (int)f, PX_WIRE_MAX_NAME);
        wv_feat[f][0] = (char)('0' + f % 10);
    }
    for (unsigned i = 0; i < PX_WIRE_MAX_STR; i++)
        wv_text_max[i] = (char)(' ' + i % 95);
    for (unsigned i = 0; i < sizeof(wv_payload64); i++)
        wv_payload64[i] = (uint8_t)(i * 7 + 1);
    for (size_t i = 0; i < sizeof(wv_payload_max); i++)
        wv_payload_max[i] = (uint8_t)(i ^ (i >> 8));
}

static inline px_msg wv_env(uint32_t type, uint32_t sender, uint64_t object, uint64_t seq)
{
    px_msg m;
    memset(&m, 0, sizeof(m));
    m.env.version = PX_WIRE_VERSION;
    m.env.type = type;
    m.env.sender = sender;
    m.env.object = object;
    m.env.seq = seq;
    return m;
}

/* The same in place: wire_vectors fills one px_msg again and again, and
 * px_msg is large (a PLAN's arrays): a temporary per vector would make its
 * stack frame grow past 8 MiB under ASan, which keeps every temporary apart. */
static inline void wv_set(px_msg *m, uint32_t type, uint32_t sender, uint64_t object, uint64_t seq)
{
    memset(m, 0, sizeof(*m));
    m->env.version = PX_WIRE_VERSION;
    m->env.type = type;
    m->env.sender = sender;
    m->env.object = object;
    m->env.seq = seq;
}

/* Fill out[] with up to max valid messages and return how many. With
 * with_huge false the ones near the 1 MiB bin limit are left out (for tests
 * that are quadratic in the size, and for seed files). */
static inline size_t wire_vectors(px_msg *out, size_t max, int with_huge)
{
    size_t n = 0;
    px_msg m;
    wv_fill_storage();
#define WV_ADD(msg)                                                                                \
    do {                                                                                           \
        if (n < max)                                                                               \
            out[n++] = (msg);                                                                      \
    } while (0)

    /* HELLO: smallest, typical, largest */
    wv_set(&m, PX_MSG_HELLO, 0, 0, 0);
    m.body.hello.proto_min = m.body.hello.proto_max = 1;
    m.body.hello.role = px_str_c("cli");
    m.body.hello.name = px_str_c("");
    WV_ADD(m);

    wv_set(&m, PX_MSG_HELLO, 3, 0, 1);
    m.body.hello.proto_min = 1;
    m.body.hello.proto_max = 2;
    m.body.hello.role = px_str_c("node");
    m.body.hello.name = px_str_c("host-a");
    m.body.hello.n_features = 3;
    m.body.hello.features[0] = px_str_c("kvm");
    m.body.hello.features[1] = px_str_c("af_can");
    m.body.hello.features[2] = px_str_c("");
    WV_ADD(m);

    wv_set(&m, PX_MSG_HELLO, UINT32_MAX, UINT64_MAX, UINT64_MAX);
    m.body.hello.proto_min = 1;
    m.body.hello.proto_max = UINT32_MAX;
    m.body.hello.role = (px_str){wv_role_max, PX_WIRE_MAX_NAME};
    m.body.hello.name = (px_str){wv_name_max, PX_WIRE_MAX_NAME};
    m.body.hello.n_features = PX_WIRE_MAX_FEATURES;
    for (unsigned f = 0; f < PX_WIRE_MAX_FEATURES; f++)
        m.body.hello.features[f] = (px_str){wv_feat[f], PX_WIRE_MAX_NAME};
    WV_ADD(m);

    /* HEARTBEAT: zero, every integer-format boundary, all ones */
    wv_set(&m, PX_MSG_HEARTBEAT, 0, 0, 0);
    WV_ADD(m);
    wv_set(&m, PX_MSG_HEARTBEAT, 127, 128, 255);
    m.body.heartbeat.uptime_ms = 256;
    m.body.heartbeat.n_guests = 65535;
    m.body.heartbeat.load_permille = 65536;
    WV_ADD(m);
    wv_set(&m, PX_MSG_HEARTBEAT, 65536, UINT32_MAX, (uint64_t)UINT32_MAX + 1);
    m.body.heartbeat.uptime_ms = (uint64_t)UINT32_MAX + 1;
    m.body.heartbeat.n_guests = 128;
    m.body.heartbeat.load_permille = 1000;
    WV_ADD(m);
    wv_set(&m, PX_MSG_HEARTBEAT, UINT32_MAX, UINT64_MAX, UINT64_MAX);
    m.body.heartbeat.uptime_ms = UINT64_MAX;
    m.body.heartbeat.n_guests = UINT32_MAX;
    m.body.heartbeat.load_permille = UINT32_MAX;
    WV_ADD(m);

    /* ERROR: int32 extremes and the signed-format boundaries */
    wv_set(&m, PX_MSG_ERROR, 1, 0, 0);
    m.body.error.code = INT32_MIN;
    m.body.error.message = px_str_c("");
    WV_ADD(m);
    wv_set(&m, PX_MSG_ERROR, 1, 2, 3);
    m.body.error.code = INT32_MAX;
    m.body.error.message = (px_str){wv_text_max, PX_WIRE_MAX_STR};
    m.body.error.in_reply_to = UINT64_MAX;
    WV_ADD(m);
    static const int32_t codes[] = {0, -1, -32, -33, -128, -129, -32768, -32769, PX_E_PROTO};
    for (unsigned i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        wv_set(&m, PX_MSG_ERROR, 2, 0, i);
        m.body.error.code = codes[i];
        m.body.error.message = px_str_c("bad thing: \xe2\x82\xac \xf0\x9f\x98\x80");
        m.body.error.in_reply_to = i;
        WV_ADD(m);
    }

    /* PROBE: empty, data-plane sized, at the bin limit */
    wv_set(&m, PX_MSG_PROBE, 0, 0, 0);
    m.body.probe.payload = (px_bin){NULL, 0};
    WV_ADD(m);
    wv_set(&m, PX_MSG_PROBE, 9, 17, 123456789);
    m.body.probe.t_ns = UINT64_MAX;
    m.body.probe.payload = (px_bin){wv_payload64, sizeof(wv_payload64)};
    WV_ADD(m);
    if (with_huge) {
        wv_set(&m, PX_MSG_PROBE, 9, 17, 5);
        m.body.probe.t_ns = 42;
        m.body.probe.payload = (px_bin){wv_payload_max, sizeof(wv_payload_max)};
        WV_ADD(m);
    }
    /* Control plane: a typical message of each type, arrays filled. */
    static const char wv_topo[] = "name: lab\nnodes:\n  a: {}\n";
    wv_set(&m, PX_MSG_REGISTER, 0, 0, 1);
    m.body.reg.name = px_str_c("host1");
    m.body.reg.cpus = 8;
    m.body.reg.mem_mb = (uint64_t)1 << 40;
    m.body.reg.n_features = 2;
    m.body.reg.features[0] = px_str_c("kvm-device");
    m.body.reg.features[1] = px_str_c("af_can");
    m.body.reg.data_endpoint = px_str_c("tcp://10.251.3.10:40123");
    m.body.reg.data_key = px_str_c("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7");
    m.body.reg.n_labs = 2;
    m.body.reg.labs[0] = (px_lab_epoch){px_str_c("quickstart"), 3};
    m.body.reg.labs[1] = (px_lab_epoch){px_str_c("can"), UINT64_MAX};
    WV_ADD(m);
    wv_set(&m, PX_MSG_REGISTERED, 0, 0, 1);
    m.body.registered = (px_msg_registered){.node_id = 7, .heartbeat_ms = 500};
    WV_ADD(m);
    wv_set(&m, PX_MSG_PLAN, 0, 0, 2);
    m.body.plan.lab = px_str_c("quickstart");
    m.body.plan.epoch = 4;
    m.body.plan.op = px_str_c("apply");
    m.body.plan.topology = (px_bin){(const uint8_t *)wv_topo, sizeof(wv_topo) - 1};
    m.body.plan.n_guests = 2;
    m.body.plan.guests[0] = px_str_c("ecu1");
    m.body.plan.guests[1] = px_str_c("ecu2");
    m.body.plan.n_nets = 1;
    m.body.plan.nets[0] = (px_plan_net){px_str_c("can0"), px_str_c("host2"), 1};
    m.body.plan.n_peers = 1;
    m.body.plan.peers[0] = (px_plan_peer){px_str_c("host2"), px_str_c("tcp://10.0.0.2:7700"),
                                          px_str_c("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7")};
    m.body.plan.n_members = 2;
    m.body.plan.members[0] = (px_plan_member){px_str_c("can0"), px_str_c("host1")};
    m.body.plan.members[1] = (px_plan_member){px_str_c("can0"), px_str_c("host2")};
    m.body.plan.n_cxl = 2;
    m.body.plan.cxl[0] = (px_plan_cxl){px_str_c("fabric"), 1, 0, px_str_c("pool0"), 3, 0};
    m.body.plan.cxl[1] = (px_plan_cxl){px_str_c("fabric"), 2, 3, px_str_c("pool0"), 3, 512u << 20};
    WV_ADD(m);
    wv_set(&m, PX_MSG_PLAN, 0, 0, 3);
    m.body.plan.lab = px_str_c("quickstart");
    m.body.plan.epoch = 5;
    m.body.plan.op = px_str_c("teardown");
    WV_ADD(m);
    wv_set(&m, PX_MSG_STATUS, 2, 0, 9);
    m.body.status.lab = px_str_c("quickstart");
    m.body.status.epoch = 4;
    m.body.status.state = px_str_c("failed");
    m.body.status.message = px_str_c("topology rejected on node");
    m.body.status.n_guests = 1;
    m.body.status.guests[0] = (px_guest_row){.name = px_str_c("ecu1"),
                                             .host = px_str_c("host1"),
                                             .state = px_str_c("failed"),
                                             .detail = px_str_c("kernel not found")};
    WV_ADD(m);
    wv_set(&m, PX_MSG_REQUEST, 0, 0, 11);
    m.body.request = (px_msg_request){.op = px_str_c("up"),
                                      .lab = px_str_c("quickstart"),
                                      .topology = {(const uint8_t *)wv_topo, sizeof(wv_topo) - 1},
                                      .source = px_str_c("configs/quickstart.yaml"),
                                      .policy = px_str_c("stop")};
    WV_ADD(m);
    {
        static const uint8_t f1[] = {0x00, 0x00, 0x01, 0x23, 4, 0, 0xde, 0xad, 0xbe, 0xef};
        static const uint8_t f2[] = {0x80, 0x12, 0x34, 0x56, 2, 0x05, 1, 2};
        wv_set(&m, PX_MSG_CAN, 3, 0xfeed, 77);
        m.body.can.bus = 0x0123456789abcdefull;
        m.body.can.op = PX_CAN_DELIVER;
        m.body.can.node = 0xa5a5a5a5u;
        m.body.can.n_recs = 2;
        m.body.can.recs[0] = (px_can_rec){
            .seq = 1, .ts_ns = 1000, .node = 7, .ep = 1, .tag = 9, .frame = {f1, sizeof(f1)}};
        m.body.can.recs[1] = (px_can_rec){.seq = UINT64_MAX, .frame = {f2, sizeof(f2)}};
        WV_ADD(m);
        wv_set(&m, PX_MSG_CAN, 3, 0, 78);
        m.body.can.bus = 1;
        m.body.can.op = PX_CAN_JOIN;
        WV_ADD(m);
    }
    {
        static const uint8_t r1[] = {0,    0,    0,    14,   0, 10,   0,    0,    0,    0,
                                     0,    0,    0,    0,    0, 5,    0xff, 0xff, 0xff, 0xff,
                                     0xff, 0xff, 0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x08, 0x06};
        wv_set(&m, PX_MSG_ETH, 3, 0xbeef, 79);
        m.body.eth.seg = 0xfedcba9876543210ull;
        m.body.eth.op = PX_ETH_FRAMES;
        m.body.eth.node = 2;
        m.body.eth.recs = (px_bin){r1, sizeof(r1)};
        WV_ADD(m);
        wv_set(&m, PX_MSG_ETH, 3, 0, 80);
        m.body.eth.seg = 2;
        m.body.eth.op = PX_ETH_CAP_JOIN;
        m.body.eth.id = 42;
        m.body.eth.filter = px_str_c("icmp or arp");
        m.body.eth.port = px_str_c("g1:eth0");
        WV_ADD(m);
    }
    {
        /* DIFF records (fabric/shm/diff.h): 3 bytes at 0x1000, 1 at 0x1007. */
        static const uint8_t d1[] = {0x00, 0x10, 0,    0, 3, 0, 0, 0, 0xaa, 0xbb,
                                     0xcc, 0x07, 0x10, 0, 0, 1, 0, 0, 0,    0xdd};
        wv_set(&m, PX_MSG_SHM, 3, 0xc0ffee, 81);
        m.body.shm.region = 0x0123456789abcdefull;
        m.body.shm.op = PX_SHM_DIFF;
        m.body.shm.node = 1;
        m.body.shm.recs = (px_bin){d1, sizeof(d1)};
        WV_ADD(m);
        wv_set(&m, PX_MSG_SHM, 3, 0, 82);
        m.body.shm.region = 5;
        m.body.shm.op = PX_SHM_JOIN;
        m.body.shm.node = 2;
        m.body.shm.tag = 17;
        m.body.shm.name = px_str_c("host:4242");
        WV_ADD(m);
        /* PEER at every limit: the highest ID, the longest name. */
        wv_set(&m, PX_MSG_SHM, 1, UINT64_MAX, UINT64_MAX);
        m.body.shm.region = UINT64_MAX;
        m.body.shm.op = PX_SHM_PEER;
        m.body.shm.node = UINT32_MAX;
        m.body.shm.owner = UINT32_MAX;
        m.body.shm.peer = 65535;
        m.body.shm.tag = UINT64_MAX;
        m.body.shm.name = (px_str){wv_name_max, PX_WIRE_MAX_NAME};
        WV_ADD(m);
        wv_set(&m, PX_MSG_SHM, 2, 0, 83);
        m.body.shm.region = 5;
        m.body.shm.op = PX_SHM_RING;
        m.body.shm.peer = 1;
        m.body.shm.vector = 255;
        WV_ADD(m);
        wv_set(&m, PX_MSG_SHM, 0, 0, 0);
        m.body.shm.region = 1;
        m.body.shm.op = PX_SHM_OP_MAX - 1;
        WV_ADD(m);
        if (with_huge) {
            wv_set(&m, PX_MSG_SHM, 3, 1, 84);
            m.body.shm.region = 1;
            m.body.shm.op = PX_SHM_DIFF;
            m.body.shm.recs = (px_bin){wv_payload_max, PX_WIRE_MAX_SHM_BLOB};
            WV_ADD(m);
        }
    }
    {
        /* CXL: a fetch (OPEN, INFO, READ, DATA with bytes and zero), a
         * write-back (WRITE, ACK), a refusal; then every limit. */
        wv_set(&m, PX_MSG_CXL, 2, 0, 90);
        m.body.cxl.pool = 0x0123456789abcdefull;
        m.body.cxl.op = PX_CXL_OPEN;
        m.body.cxl.node = px_str_c("hb");
        m.body.cxl.xfer = 1;
        m.body.cxl.ld = 3;
        WV_ADD(m);
        m.body.cxl.op = PX_CXL_INFO;
        m.body.cxl.node = px_str_c("ha");
        m.body.cxl.ld = 0;
        m.body.cxl.size = 256ull << 20;
        m.body.cxl.lsa = 1u << 20;
        WV_ADD(m);
        wv_set(&m, PX_MSG_CXL, 2, 0, 91);
        m.body.cxl.pool = 7;
        m.body.cxl.op = PX_CXL_READ;
        m.body.cxl.node = px_str_c("hb");
        m.body.cxl.xfer = 2;
        m.body.cxl.ld = 1;
        m.body.cxl.area = 1;
        m.body.cxl.off = 128u << 10;
        m.body.cxl.len = 64;
        WV_ADD(m);
        m.body.cxl.op = PX_CXL_DATA;
        m.body.cxl.node = px_str_c("ha");
        m.body.cxl.ld = 0;
        m.body.cxl.hash = 0xfedcba9876543210ull;
        m.body.cxl.d = (px_bin){wv_payload64, 64};
        WV_ADD(m);
        m.body.cxl.area = 0;
        m.body.cxl.len = PX_WIRE_MAX_CXL_CHUNK;
        m.body.cxl.zero = 1;
        m.body.cxl.hash = 0;
        m.body.cxl.d = (px_bin){NULL, 0};
        WV_ADD(m);
        wv_set(&m, PX_MSG_CXL, 2, 0, 92);
        m.body.cxl.pool = 7;
        m.body.cxl.op = PX_CXL_WRITE;
        m.body.cxl.node = px_str_c("hb");
        m.body.cxl.xfer = 3;
        m.body.cxl.ld = PX_WIRE_MAX_CXL_LDS - 1;
        m.body.cxl.off = 1ull << 40;
        m.body.cxl.len = 64;
        m.body.cxl.hash = 5;
        m.body.cxl.d = (px_bin){wv_payload64, 64};
        WV_ADD(m);
        m.body.cxl.op = PX_CXL_ACK;
        m.body.cxl.node = px_str_c("ha");
        m.body.cxl.ld = 0;
        m.body.cxl.d = (px_bin){NULL, 0};
        WV_ADD(m);
        wv_set(&m, PX_MSG_CXL, 2, 0, 93);
        m.body.cxl.pool = 7;
        m.body.cxl.op = PX_CXL_FAIL;
        m.body.cxl.node = (px_str){wv_name_max, PX_WIRE_MAX_NAME};
        m.body.cxl.xfer = UINT64_MAX;
        m.body.cxl.code = PX_E_NOTFOUND;
        m.body.cxl.msg = (px_str){wv_text_max, PX_WIRE_MAX_CXL_MSG};
        WV_ADD(m);
        if (with_huge) {
            wv_set(&m, PX_MSG_CXL, 1, UINT64_MAX, UINT64_MAX);
            m.body.cxl.pool = UINT64_MAX;
            m.body.cxl.op = PX_CXL_DATA;
            m.body.cxl.node = px_str_c("ha");
            m.body.cxl.xfer = UINT64_MAX;
            m.body.cxl.area = 1;
            m.body.cxl.off = UINT64_MAX;
            m.body.cxl.len = PX_WIRE_MAX_CXL_CHUNK;
            m.body.cxl.hash = UINT64_MAX;
            m.body.cxl.d = (px_bin){wv_payload_max, PX_WIRE_MAX_CXL_CHUNK};
            WV_ADD(m);
        }
    }
    {
        /* CXLSYNC: a DIFF to the hub (records of fabric/shm/diff.h: 2 bytes
         * at base + 0x40, 1 at base + 0x1000), the hub's forward of an empty
         * one, and every limit. */
        static const uint8_t d1[] = {0x40, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x11, 0x22,
                                     0x00, 0x10, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x33};
        wv_set(&m, PX_MSG_CXLSYNC, 2, 0, 95);
        m.body.cxlsync.pool = 0x0123456789abcdefull;
        m.body.cxlsync.ld = 3;
        m.body.cxlsync.node = px_str_c("hb");
        m.body.cxlsync.op = PX_CXLSYNC_DIFF;
        m.body.cxlsync.base = 4ull << 30;
        m.body.cxlsync.recs = (px_bin){d1, sizeof(d1)};
        WV_ADD(m);
        wv_set(&m, PX_MSG_CXLSYNC, 0, 0, 0);
        m.body.cxlsync.pool = 7;
        m.body.cxlsync.node = px_str_c("hc");
        m.body.cxlsync.op = PX_CXLSYNC_OP_MAX - 1;
        WV_ADD(m);
        if (with_huge) {
            wv_set(&m, PX_MSG_CXLSYNC, UINT32_MAX, UINT64_MAX, UINT64_MAX);
            m.body.cxlsync.pool = UINT64_MAX;
            m.body.cxlsync.ld = PX_WIRE_MAX_CXL_LDS - 1;
            m.body.cxlsync.node = (px_str){wv_name_max, PX_WIRE_MAX_NAME};
            m.body.cxlsync.op = PX_CXLSYNC_DIFF;
            m.body.cxlsync.base = UINT64_MAX;
            m.body.cxlsync.recs = (px_bin){wv_payload_max, PX_WIRE_MAX_SHM_BLOB};
            WV_ADD(m);
        }
    }
    wv_set(&m, PX_MSG_TOOL, 0, 0, 12);
    m.body.tool.lab = px_str_c("quickstart");
    m.body.tool.net = px_str_c("body");
    m.body.tool.n_args = 3;
    m.body.tool.args[0] = px_str_c("can");
    m.body.tool.args[1] = px_str_c("fault");
    m.body.tool.args[2] = px_str_c("--drop=1%");
    m.body.tool.client = px_str_c("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7");
    m.body.tool.id = 5;
    m.body.tool.json = 1;
    WV_ADD(m);
    wv_set(&m, PX_MSG_TOOL_REPLY, 0, 0, 12);
    m.body.tool_reply =
        (px_msg_tool_reply){.id = 5,
                            .code = PX_E_NOTFOUND,
                            .message = px_str_c("no bus x"),
                            .json = px_str_c("{}"),
                            .endpoint = px_str_c("tcp://10.0.0.2:7700"),
                            .key = px_str_c("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7")};
    WV_ADD(m);
    wv_set(&m, PX_MSG_REPLY, 0, 0, 11);
    m.body.reply.code = PX_E_NOTFOUND;
    m.body.reply.message = px_str_c("no lab named x");
    m.body.reply.n_labs = 1;
    m.body.reply.labs[0] = (px_lab_row){.name = px_str_c("quickstart"),
                                        .state = px_str_c("running"),
                                        .epoch = 2,
                                        .guests = 4,
                                        .policy = px_str_c("reschedule")};
    m.body.reply.n_nodes = 1;
    m.body.reply.nodes[0] = (px_node_row){.name = px_str_c("host1"),
                                          .state = px_str_c("up"),
                                          .endpoint = px_str_c("tcp://127.0.0.1:1"),
                                          .cpus = 8,
                                          .mem_mb = 12000,
                                          .guests = 2,
                                          .seen_ms_ago = 250,
                                          .n_features = 1,
                                          .features = {px_str_c("rdma")}};
    m.body.reply.n_guests = 1;
    m.body.reply.guests[0] = (px_guest_row){.name = px_str_c("ecu1"),
                                            .lab = px_str_c("quickstart"),
                                            .host = px_str_c("host1"),
                                            .state = px_str_c("defined")};
    WV_ADD(m);
#undef WV_ADD
    return n;
}

#endif
