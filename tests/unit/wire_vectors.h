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

#define WV_MAX 32

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
    m = wv_env(PX_MSG_HELLO, 0, 0, 0);
    m.body.hello.proto_min = m.body.hello.proto_max = 1;
    m.body.hello.role = px_str_c("cli");
    m.body.hello.name = px_str_c("");
    WV_ADD(m);

    m = wv_env(PX_MSG_HELLO, 3, 0, 1);
    m.body.hello.proto_min = 1;
    m.body.hello.proto_max = 2;
    m.body.hello.role = px_str_c("node");
    m.body.hello.name = px_str_c("host-a");
    m.body.hello.n_features = 3;
    m.body.hello.features[0] = px_str_c("kvm");
    m.body.hello.features[1] = px_str_c("af_can");
    m.body.hello.features[2] = px_str_c("");
    WV_ADD(m);

    m = wv_env(PX_MSG_HELLO, UINT32_MAX, UINT64_MAX, UINT64_MAX);
    m.body.hello.proto_min = 1;
    m.body.hello.proto_max = UINT32_MAX;
    m.body.hello.role = (px_str){wv_role_max, PX_WIRE_MAX_NAME};
    m.body.hello.name = (px_str){wv_name_max, PX_WIRE_MAX_NAME};
    m.body.hello.n_features = PX_WIRE_MAX_FEATURES;
    for (unsigned f = 0; f < PX_WIRE_MAX_FEATURES; f++)
        m.body.hello.features[f] = (px_str){wv_feat[f], PX_WIRE_MAX_NAME};
    WV_ADD(m);

    /* HEARTBEAT: zero, every integer-format boundary, all ones */
    m = wv_env(PX_MSG_HEARTBEAT, 0, 0, 0);
    WV_ADD(m);
    m = wv_env(PX_MSG_HEARTBEAT, 127, 128, 255);
    m.body.heartbeat.uptime_ms = 256;
    m.body.heartbeat.n_guests = 65535;
    m.body.heartbeat.load_permille = 65536;
    WV_ADD(m);
    m = wv_env(PX_MSG_HEARTBEAT, 65536, UINT32_MAX, (uint64_t)UINT32_MAX + 1);
    m.body.heartbeat.uptime_ms = (uint64_t)UINT32_MAX + 1;
    m.body.heartbeat.n_guests = 128;
    m.body.heartbeat.load_permille = 1000;
    WV_ADD(m);
    m = wv_env(PX_MSG_HEARTBEAT, UINT32_MAX, UINT64_MAX, UINT64_MAX);
    m.body.heartbeat.uptime_ms = UINT64_MAX;
    m.body.heartbeat.n_guests = UINT32_MAX;
    m.body.heartbeat.load_permille = UINT32_MAX;
    WV_ADD(m);

    /* ERROR: int32 extremes and the signed-format boundaries */
    m = wv_env(PX_MSG_ERROR, 1, 0, 0);
    m.body.error.code = INT32_MIN;
    m.body.error.message = px_str_c("");
    WV_ADD(m);
    m = wv_env(PX_MSG_ERROR, 1, 2, 3);
    m.body.error.code = INT32_MAX;
    m.body.error.message = (px_str){wv_text_max, PX_WIRE_MAX_STR};
    m.body.error.in_reply_to = UINT64_MAX;
    WV_ADD(m);
    static const int32_t codes[] = {0, -1, -32, -33, -128, -129, -32768, -32769, PX_E_PROTO};
    for (unsigned i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        m = wv_env(PX_MSG_ERROR, 2, 0, i);
        m.body.error.code = codes[i];
        m.body.error.message = px_str_c("bad thing: \xe2\x82\xac \xf0\x9f\x98\x80");
        m.body.error.in_reply_to = i;
        WV_ADD(m);
    }

    /* PROBE: empty, data-plane sized, at the bin limit */
    m = wv_env(PX_MSG_PROBE, 0, 0, 0);
    m.body.probe.payload = (px_bin){NULL, 0};
    WV_ADD(m);
    m = wv_env(PX_MSG_PROBE, 9, 17, 123456789);
    m.body.probe.t_ns = UINT64_MAX;
    m.body.probe.payload = (px_bin){wv_payload64, sizeof(wv_payload64)};
    WV_ADD(m);
    if (with_huge) {
        m = wv_env(PX_MSG_PROBE, 9, 17, 5);
        m.body.probe.t_ns = 42;
        m.body.probe.payload = (px_bin){wv_payload_max, sizeof(wv_payload_max)};
        WV_ADD(m);
    }
#undef WV_ADD
    return n;
}

#endif
