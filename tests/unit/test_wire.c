/* plexus — unit tests for the wire module (fabric/core/wire.c, wire_msgs.c).
 *
 * Hostile inputs are built by hand, with msgpack-c's packer or as raw bytes,
 * so that they can be things our own encoder would never produce.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "fabric/core/transport.h"
#include "fabric/core/wire.h"
#include "fabric/core/wire_table.h"
#include "wire_vectors.h"

/* ---- allocation counting ----
 * The decoder promises to allocate nothing. Count every allocation made
 * while `counting` is set: through ASan's hooks in sanitizer builds, and by
 * interposing the allocator (forwarding to glibc's) otherwise. */

static volatile int counting;
static volatile size_t n_allocs, max_alloc;

static void note_alloc(size_t size)
{
    if (counting) {
        n_allocs++;
        if (size > max_alloc)
            max_alloc = size;
    }
}

#if defined(__SANITIZE_ADDRESS__)
#define PX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PX_ASAN 1
#endif
#endif

#ifdef PX_ASAN
int __sanitizer_install_malloc_and_free_hooks(void (*m)(const volatile void *, size_t),
                                              void (*f)(const volatile void *));
static void asan_malloc_hook(const volatile void *p, size_t size)
{
    (void)p;
    note_alloc(size);
}
static void asan_free_hook(const volatile void *p)
{
    (void)p;
}
static void alloc_hooks_install(void)
{
    __sanitizer_install_malloc_and_free_hooks(asan_malloc_hook, asan_free_hook);
}
#else
void *__libc_malloc(size_t);
void *__libc_calloc(size_t, size_t);
void *__libc_realloc(void *, size_t);
void __libc_free(void *);
void *malloc(size_t size)
{
    note_alloc(size);
    return __libc_malloc(size);
}
void *calloc(size_t n, size_t size)
{
    note_alloc(n * size);
    return __libc_calloc(n, size);
}
void *realloc(void *p, size_t size)
{
    note_alloc(size);
    return __libc_realloc(p, size);
}
void free(void *p)
{
    __libc_free(p);
}
static void alloc_hooks_install(void)
{
}
#endif

static void count_start(void)
{
    n_allocs = 0;
    max_alloc = 0;
    counting = 1;
}

static size_t count_stop(void)
{
    counting = 0;
    return n_allocs;
}

/* ---- helpers ---- */

static px_msg vec[WV_MAX];
static size_t n_vec;

static const char *env_type_name(uint32_t t)
{
    const char *n = px_msg_type_name(t);
    return n ? n : "?";
}

/* Field-by-field comparison written out per type: deliberately not the
 * table-driven px_wire_struct_eq, so a table mistake cannot hide here. */
static void assert_str_eq(px_str a, px_str b)
{
    assert_int_equal(a.len, b.len);
    if (a.len)
        assert_memory_equal(a.ptr, b.ptr, a.len);
}

static void assert_msg_eq(const px_msg *a, const px_msg *b)
{
    assert_int_equal(a->env.version, PX_WIRE_VERSION);
    assert_int_equal(b->env.version, PX_WIRE_VERSION);
    assert_int_equal(a->env.type, b->env.type);
    assert_int_equal(a->env.sender, b->env.sender);
    assert_true(a->env.object == b->env.object);
    assert_true(a->env.seq == b->env.seq);
    switch (a->env.type) {
    case PX_MSG_HELLO:
        assert_int_equal(a->body.hello.proto_min, b->body.hello.proto_min);
        assert_int_equal(a->body.hello.proto_max, b->body.hello.proto_max);
        assert_str_eq(a->body.hello.role, b->body.hello.role);
        assert_str_eq(a->body.hello.name, b->body.hello.name);
        assert_int_equal(a->body.hello.n_features, b->body.hello.n_features);
        for (uint32_t i = 0; i < a->body.hello.n_features; i++)
            assert_str_eq(a->body.hello.features[i], b->body.hello.features[i]);
        break;
    case PX_MSG_HEARTBEAT:
        assert_true(a->body.heartbeat.uptime_ms == b->body.heartbeat.uptime_ms);
        assert_int_equal(a->body.heartbeat.n_guests, b->body.heartbeat.n_guests);
        assert_int_equal(a->body.heartbeat.load_permille, b->body.heartbeat.load_permille);
        break;
    case PX_MSG_ERROR:
        assert_int_equal(a->body.error.code, b->body.error.code);
        assert_str_eq(a->body.error.message, b->body.error.message);
        assert_true(a->body.error.in_reply_to == b->body.error.in_reply_to);
        break;
    case PX_MSG_PROBE:
        assert_true(a->body.probe.t_ns == b->body.probe.t_ns);
        assert_int_equal(a->body.probe.payload.len, b->body.probe.payload.len);
        if (a->body.probe.payload.len)
            assert_memory_equal(a->body.probe.payload.ptr, b->body.probe.payload.ptr,
                                a->body.probe.payload.len);
        break;
    default:
        /* Control-plane bodies: compared field by field through their
         * tables (strings and bins by content). */
        if (a->env.type >= PX_MSG_TYPE_MAX ||
            !px_wire_struct_eq(px_wire_body_desc(a->env.type), &a->body, &b->body))
            fail_msg("bodies differ for type %u", a->env.type);
    }
}

static void encode_ok(px_wbuf *b, const px_msg *m)
{
    px_errmsg em = {{0}};
    px_err err = px_wire_encode(b, m, &em);
    if (err)
        fail_msg("encode %s: %s: %s", env_type_name(m->env.type), px_errname(err), em.text);
}

/* Decode must fail with `want`, report used = 0, and say where. */
static void expect_decode_err(const void *buf, size_t len, px_err want, const char *needle)
{
    px_msg out;
    px_errmsg em = {{0}};
    size_t used = 12345;
    px_err err = px_wire_decode(buf, len, &used, &out, &em);
    if (err != want)
        fail_msg("decode: got %s (%s), want %s", px_errname(err), em.text, px_errname(want));
    assert_int_equal(used, 0);
    if (!strstr(em.text, "byte"))
        fail_msg("error message names no byte offset: %s", em.text);
    if (needle && !strstr(em.text, needle))
        fail_msg("error message lacks \"%s\": %s", needle, em.text);
}

static void expect_decode_ok(const void *buf, size_t len, px_msg *out)
{
    px_errmsg em = {{0}};
    size_t used = 0;
    px_err err = px_wire_decode(buf, len, &used, out, &em);
    if (err)
        fail_msg("decode: %s: %s", px_errname(err), em.text);
    assert_int_equal(used, len);
}

/* Hand-built msgpack. */
typedef struct raw {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} raw;

static void raw_init(raw *r)
{
    msgpack_sbuffer_init(&r->sb);
    msgpack_packer_init(&r->pk, &r->sb, msgpack_sbuffer_write);
}

static void raw_fini(raw *r)
{
    msgpack_sbuffer_destroy(&r->sb);
}

static void raw_bytes(raw *r, const void *p, size_t n)
{
    msgpack_sbuffer_write(&r->sb, p, n);
}

static void raw_str(raw *r, const char *s)
{
    msgpack_pack_str(&r->pk, strlen(s));
    msgpack_pack_str_body(&r->pk, s, strlen(s));
}

/* [version, type, 0, 0, 0, <body follows>] */
static void raw_env(raw *r, uint64_t version, uint64_t type)
{
    msgpack_pack_array(&r->pk, 6);
    msgpack_pack_uint64(&r->pk, version);
    msgpack_pack_uint64(&r->pk, type);
    msgpack_pack_uint32(&r->pk, 0);
    msgpack_pack_uint32(&r->pk, 0);
    msgpack_pack_uint32(&r->pk, 0);
}

/* A complete valid HELLO body minus `skip` (a key, or NULL), plus `extra`
 * pairs written by the caller afterwards (map size grows by n_extra). */
static void raw_hello_body(raw *r, const char *skip, unsigned n_extra)
{
    static const char *keys[] = {"pmin", "pmax", "role", "name"};
    unsigned n = 0;
    for (unsigned i = 0; i < 4; i++)
        if (!skip || strcmp(skip, keys[i]))
            n++;
    msgpack_pack_map(&r->pk, n + n_extra);
    for (unsigned i = 0; i < 4; i++) {
        if (skip && !strcmp(skip, keys[i]))
            continue;
        raw_str(r, keys[i]);
        if (i < 2)
            msgpack_pack_uint32(&r->pk, 1);
        else
            raw_str(r, i == 2 ? "node" : "n1");
    }
}

static int setup_vectors(void **state)
{
    (void)state;
    n_vec = wire_vectors(vec, WV_MAX, 1);
    return 0;
}

/* The counter itself must see an allocation, or "0 allocations" means
 * nothing. */
static void test_alloc_counter_works(void **state)
{
    (void)state;
    count_start();
    void *volatile p = malloc(12345);
    free(p);
    assert_int_equal(count_stop(), 1);
    assert_int_equal(max_alloc, 12345);
    px_wbuf b = {0};
    count_start();
    encode_ok(&b, &vec[0]); /* the encoder's buffer growth is seen */
    assert_true(count_stop() >= 1);
    px_wbuf_fini(&b);
}

/* ---- round trips ---- */

static void test_roundtrip_all_vectors(void **state)
{
    (void)state;
    unsigned seen[PX_MSG_TYPE_MAX] = {0};
    px_wbuf b = {0}, b2 = {0};
    assert_true(n_vec >= 15);
    for (size_t i = 0; i < n_vec; i++) {
        px_wbuf_reset(&b);
        px_wbuf_reset(&b2);
        encode_ok(&b, &vec[i]);
        assert_true(b.len > 0 && b.len <= PX_WIRE_MAX_MSG);
        px_msg out;
        count_start();
        expect_decode_ok(b.data, b.len, &out);
        assert_int_equal(count_stop(), 0); /* decoding allocates nothing */
        assert_msg_eq(&vec[i], &out);
        assert_true(px_wire_struct_eq(px_wire_body_desc(out.env.type), &vec[i].body, &out.body));
        /* Re-encoding what was decoded gives the same bytes (canonical). */
        encode_ok(&b2, &out);
        assert_int_equal(b.len, b2.len);
        assert_memory_equal(b.data, b2.data, b.len);
        seen[out.env.type]++;
    }
    for (uint32_t t = 1; t < PX_MSG_TYPE_MAX; t++)
        if (!seen[t])
            fail_msg("no round-trip vector for %s", env_type_name(t));
    px_wbuf_fini(&b);
    px_wbuf_fini(&b2);
}

/* The exact bytes of a small HEARTBEAT, so the format cannot drift. */
static void test_golden_bytes(void **state)
{
    (void)state;
    px_msg m = wv_env(PX_MSG_HEARTBEAT, 7, 9, 3);
    m.body.heartbeat.uptime_ms = 5;
    m.body.heartbeat.n_guests = 2;
    m.body.heartbeat.load_permille = 500;
    static const uint8_t want[] = {0x96, 0x01, 0x02, 0x07, 0x09, 0x03, 0x83, 0xa2, 0x75,
                                   0x70, 0x05, 0xa6, 'g',  'u',  'e',  's',  't',  's',
                                   0x02, 0xa4, 'l',  'o',  'a',  'd',  0xcd, 0x01, 0xf4};
    px_wbuf b = {0};
    encode_ok(&b, &m);
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));

    /* Optional fields at zero are left out: ERROR without "re" is a 2-map. */
    px_wbuf_reset(&b);
    m = wv_env(PX_MSG_ERROR, 0, 0, 0);
    m.body.error.code = -3;
    m.body.error.message = px_str_c("x");
    encode_ok(&b, &m);
    static const uint8_t want2[] = {0x96, 0x01, 0x03, 0x00, 0x00, 0x00, 0x82, 0xa4, 'c', 'o',
                                    'd',  'e',  0xfd, 0xa3, 'm',  's',  'g',  0xa1, 'x'};
    assert_int_equal(b.len, sizeof(want2));
    assert_memory_equal(b.data, want2, sizeof(want2));
    px_wbuf_fini(&b);
}

/* msgpack-c, the reference implementation, reads our encoding as the same
 * envelope of the same length. */
static void test_msgpack_c_agrees(void **state)
{
    (void)state;
    px_wbuf b = {0};
    for (size_t i = 0; i < n_vec; i++) {
        px_wbuf_reset(&b);
        encode_ok(&b, &vec[i]);
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        size_t off = 0;
        assert_int_equal(msgpack_unpack_next(&u, (const char *)b.data, b.len, &off),
                         MSGPACK_UNPACK_SUCCESS);
        assert_int_equal(off, b.len);
        assert_int_equal(u.data.type, MSGPACK_OBJECT_ARRAY);
        assert_int_equal(u.data.via.array.size, 6);
        assert_int_equal(u.data.via.array.ptr[0].via.u64, PX_WIRE_VERSION);
        assert_int_equal(u.data.via.array.ptr[1].via.u64, vec[i].env.type);
        assert_true(u.data.via.array.ptr[4].via.u64 == vec[i].env.seq);
        assert_int_equal(u.data.via.array.ptr[5].type, MSGPACK_OBJECT_MAP);
        msgpack_unpacked_destroy(&u);
    }
    px_wbuf_fini(&b);
}

/* Non-canonical but legal msgpack (wide formats, signed formats holding
 * non-negative values, keys in another order) is accepted. */
static void test_noncanonical_accepted(void **state)
{
    (void)state;
    raw r;
    raw_init(&r);
    static const uint8_t env[] = {0x96, 0xcf, 0,    0, 0, 0, 0, 0, 0, 1, /* version as uint64 */
                                  0xd0, 0x02,                            /* type as int8 */
                                  0xd1, 0x00, 0x07,                      /* sender as int16 */
                                  0xce, 0,    0,    0, 9,                /* object as uint32 */
                                  0xd3, 0,    0,    0, 0, 0, 0, 0, 3,    /* seq as int64 */
                                  0xde, 0x00, 0x03};                     /* map16 of 3 */
    raw_bytes(&r, env, sizeof(env));
    raw_str(&r, "load");
    raw_bytes(&r, (const uint8_t[]){0xd2, 0, 0, 0x01, 0xf4}, 5);
    raw_bytes(&r, (const uint8_t[]){0xd9, 2, 'u', 'p'}, 4); /* str8 key */
    raw_bytes(&r, (const uint8_t[]){0xcd, 0, 5}, 3);
    raw_str(&r, "guests");
    raw_bytes(&r, (const uint8_t[]){0xcc, 2}, 2);
    px_msg out;
    expect_decode_ok(r.sb.data, r.sb.size, &out);
    assert_int_equal(out.env.type, PX_MSG_HEARTBEAT);
    assert_int_equal(out.env.sender, 7);
    assert_true(out.env.object == 9 && out.env.seq == 3);
    assert_true(out.body.heartbeat.uptime_ms == 5);
    assert_int_equal(out.body.heartbeat.n_guests, 2);
    assert_int_equal(out.body.heartbeat.load_permille, 500);
    raw_fini(&r);
}

/* ---- truncation ---- */

static void test_every_prefix_truncated(void **state)
{
    (void)state;
    px_wbuf b = {0};
    size_t checked = 0;
    for (size_t i = 0; i < n_vec; i++) {
        px_wbuf_reset(&b);
        encode_ok(&b, &vec[i]);
        bool huge = b.len > 65536;
        for (size_t cut = 0; cut < b.len; cut++) {
            /* For the 1 MiB vector: every cut in the headers and the last
             * bytes, and a stride through the payload. */
            if (huge && cut > 64 && cut + 64 < b.len && cut % 4099)
                continue;
            expect_decode_err(b.data, cut, PX_E_TRUNCATED, NULL);
            checked++;
        }
    }
    assert_true(checked > 5000);
    px_wbuf_fini(&b);
}

/* ---- limits on claimed sizes ---- */

static void test_array32_huge_claim(void **state)
{
    (void)state;
    static const uint8_t top[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01, 0x01, 0x00};
    count_start();
    expect_decode_err(top, sizeof(top), PX_E_TOOBIG, "4294967295");
    assert_int_equal(count_stop(), 0);

    /* ... and as a body field, behind a valid envelope head. */
    raw r;
    raw_init(&r);
    raw_env(&r, 1, PX_MSG_HELLO);
    raw_hello_body(&r, NULL, 1);
    raw_str(&r, "feat");
    raw_bytes(&r, (const uint8_t[]){0xdd, 0xff, 0xff, 0xff, 0xff, 0xa1, 'x'}, 7);
    count_start();
    expect_decode_err(r.sb.data, r.sb.size, PX_E_TOOBIG, "PX_WIRE_MAX_COUNT");
    assert_int_equal(count_stop(), 0);
    raw_fini(&r);
}

/* One body value `bytes` under key `key` in an otherwise valid HELLO. */
static void hello_with_value(raw *r, const char *key, const void *bytes, size_t n)
{
    raw_init(r);
    raw_env(r, 1, PX_MSG_HELLO);
    raw_hello_body(r, key, 1);
    raw_str(r, key);
    raw_bytes(r, bytes, n);
}

static void test_huge_claims(void **state)
{
    (void)state;
    static const struct {
        const char *key;
        uint8_t bytes[8];
        size_t n;
        px_err want;
        const char *needle;
    } cases[] = {
        {"name", {0xdb, 0xff, 0xff, 0xff, 0xff, 'a'}, 6, PX_E_TOOBIG, "PX_WIRE_MAX_STR"},
        {"name", {0xdb, 0x00, 0x00, 0x10, 0x01, 'a'}, 6, PX_E_TOOBIG, "PX_WIRE_MAX_STR"},
        {"name", {0xdb, 0x00, 0x00, 0x10, 0x00, 'a'}, 6, PX_E_TRUNCATED, "string"},
        {"zz", {0xc6, 0xff, 0xff, 0xff, 0xff, 0}, 6, PX_E_TOOBIG, "PX_WIRE_MAX_BIN"},
        {"zz", {0xc6, 0x00, 0x10, 0x00, 0x01, 0}, 6, PX_E_TOOBIG, "PX_WIRE_MAX_BIN"},
        {"zz", {0xc6, 0x00, 0x10, 0x00, 0x00, 0}, 6, PX_E_TRUNCATED, "bin"},
        {"zz", {0xdf, 0xff, 0xff, 0xff, 0xff, 0}, 6, PX_E_TOOBIG, "PX_WIRE_MAX_COUNT"},
        {"zz", {0xde, 0x10, 0x01, 0, 0}, 5, PX_E_TOOBIG, "PX_WIRE_MAX_COUNT"},
        /* within the count limit, but more than the bytes left could hold */
        {"zz", {0xde, 0x10, 0x00, 0, 0}, 5, PX_E_TRUNCATED, "map"},
        {"zz", {0xdc, 0x10, 0x00, 0, 0}, 5, PX_E_TRUNCATED, "array"},
        /* the same rule for the one-byte fixmap/fixarray forms */
        {"zz", {0x8f, 0x01, 0x01}, 3, PX_E_TRUNCATED, "inside a map starting"},
        {"zz", {0x9f, 0x01, 0x01}, 3, PX_E_TRUNCATED, "inside an array starting"},
        {"zz", {0xbf, 'a', 'b'}, 3, PX_E_TRUNCATED, "inside a string starting"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        raw r;
        hello_with_value(&r, cases[i].key, cases[i].bytes, cases[i].n);
        count_start();
        expect_decode_err(r.sb.data, r.sb.size, cases[i].want, cases[i].needle);
        assert_int_equal(count_stop(), 0);
        raw_fini(&r);
    }
}

static void test_depth_bomb(void **state)
{
    (void)state;
    /* 100000 nested one-element arrays as the body. */
    size_t depth = 100000;
    raw r;
    raw_init(&r);
    raw_env(&r, 1, PX_MSG_PROBE);
    for (size_t i = 0; i < depth; i++)
        raw_bytes(&r, "\x91", 1);
    raw_bytes(&r, "\x01", 1);
    count_start();
    expect_decode_err(r.sb.data, r.sb.size, PX_E_TOOBIG, "PX_WIRE_MAX_DEPTH");
    assert_int_equal(count_stop(), 0);
    raw_fini(&r);

    /* Exactly at the limit the scan passes (and the unknown key is what
     * fails); one more level is refused. envelope=1, body=2, arrays 3... */
    for (unsigned arrays = 6; arrays <= 7; arrays++) {
        raw_init(&r);
        raw_env(&r, 1, PX_MSG_PROBE);
        msgpack_pack_map(&r.pk, 1);
        raw_str(&r, "deep");
        for (unsigned i = 0; i < arrays; i++)
            raw_bytes(&r, "\x91", 1);
        raw_bytes(&r, "\x01", 1);
        if (2 + arrays <= PX_WIRE_MAX_DEPTH)
            expect_decode_err(r.sb.data, r.sb.size, PX_E_UNKNOWN, "deep");
        else
            expect_decode_err(r.sb.data, r.sb.size, PX_E_TOOBIG, "nests 9 deep");
        raw_fini(&r);
    }
}

static void test_oversize_message(void **state)
{
    (void)state;
    /* Five 1 MiB bins: each within PX_WIRE_MAX_BIN, together past
     * PX_WIRE_MAX_MSG. Refused by size, whatever the keys. */
    raw r;
    raw_init(&r);
    raw_env(&r, 1, PX_MSG_PROBE);
    msgpack_pack_map(&r.pk, 5);
    uint8_t *blob = calloc(1, PX_WIRE_MAX_BIN);
    assert_non_null(blob);
    for (int i = 0; i < 5; i++) {
        char k[2] = {(char)('a' + i), 0};
        raw_str(&r, k);
        msgpack_pack_bin(&r.pk, PX_WIRE_MAX_BIN);
        msgpack_pack_bin_body(&r.pk, blob, PX_WIRE_MAX_BIN);
    }
    assert_true(r.sb.size > PX_WIRE_MAX_MSG);
    expect_decode_err(r.sb.data, r.sb.size, PX_E_TOOBIG, "PX_WIRE_MAX_MSG");
    raw_fini(&r);

    /* A long batch is fine: only one envelope must fit the limit. */
    px_wbuf b = {0};
    encode_ok(&b, &vec[0]);
    size_t first = b.len;
    while (b.len <= PX_WIRE_MAX_MSG + 100)
        encode_ok(&b, &vec[n_vec - 1]);
    px_msg out;
    size_t used = 0;
    px_errmsg em = {{0}};
    assert_int_equal(px_wire_decode(b.data, b.len, &used, &out, &em), PX_OK);
    assert_int_equal(used, first);
    px_wbuf_fini(&b);
    free(blob);
}

/* ---- envelope rules ---- */

static void test_wrong_version(void **state)
{
    (void)state;
    static const uint64_t versions[] = {0, 2, 255, UINT64_C(1) << 40};
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        raw r;
        raw_init(&r);
        raw_env(&r, versions[i], PX_MSG_HEARTBEAT);
        msgpack_pack_map(&r.pk, 0);
        expect_decode_err(r.sb.data, r.sb.size, PX_E_VERSION, "version");
        raw_fini(&r);
    }
    /* Another version may have another shape: still PX_E_VERSION. */
    static const uint8_t v2[] = {0x97, 0x02, 0x01, 0, 0, 0, 0x80, 0xc0};
    expect_decode_err(v2, sizeof(v2), PX_E_VERSION, "version 2");
    static const uint8_t v2_short[] = {0x92, 0x02, 0xa1, 'x'};
    expect_decode_err(v2_short, sizeof(v2_short), PX_E_VERSION, NULL);
    /* Version as a string or negative is not a version. */
    static const uint8_t vs[] = {0x96, 0xa1, '1', 1, 0, 0, 0, 0x80};
    expect_decode_err(vs, sizeof(vs), PX_E_PROTO, "version");
    static const uint8_t vn[] = {0x96, 0xff, 1, 0, 0, 0, 0x80};
    expect_decode_err(vn, sizeof(vn), PX_E_PROTO, "version");
}

static void test_envelope_shape(void **state)
{
    (void)state;
    static const struct {
        uint8_t b[16];
        size_t n;
        px_err want;
        const char *needle;
    } cases[] = {
        {{0x80}, 1, PX_E_PROTO, "map"},
        {{0x01}, 1, PX_E_PROTO, "unsigned"},
        {{0x90}, 1, PX_E_PROTO, "empty array"},
        {{0x95, 1, 2, 0, 0, 0}, 6, PX_E_PROTO, "5 elements"},
        {{0x97, 1, 2, 0, 0, 0, 0x80, 0}, 8, PX_E_PROTO, "7 elements"},
        {{0x96, 1, 2, 0xa1, 'x', 0, 0, 0x80}, 8, PX_E_PROTO, "sender"},
        {{0x96, 1, 2, 0, 0xff, 0, 0x80}, 7, PX_E_PROTO, "object"},
        {{0x96, 1, 2, 0, 0, 0xc0, 0x80}, 7, PX_E_PROTO, "seq"},
        {{0x96, 1, 2, 0, 0, 0, 0x90}, 7, PX_E_PROTO, "expected a map"},
        {{0x96, 1, 2, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x80}, 15, PX_E_PROTO, "sender"},
        {{0x96, 1, 2, 0, 0, 0, 0x81, 0x01, 0x01}, 9, PX_E_PROTO, "key at byte 7"},
        {{0x96, 1, 2, 0, 0, 0, 0xc1}, 7, PX_E_PROTO, "0xc1"},
        {{0x96, 1, 2, 0, 0, 0, 0xd4, 1, 1}, 9, PX_E_PROTO, "ext"},
        {{0x96, 1, 2, 0, 0, 0, 0xc7, 0, 1}, 9, PX_E_PROTO, "ext"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_decode_err(cases[i].b, cases[i].n, cases[i].want, cases[i].needle);
}

static void test_unknown_type(void **state)
{
    (void)state;
    static const uint64_t types[] = {0, PX_MSG_TYPE_MAX, 99, UINT32_MAX};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        raw r;
        raw_init(&r);
        raw_env(&r, 1, types[i]);
        msgpack_pack_map(&r.pk, 0);
        expect_decode_err(r.sb.data, r.sb.size, PX_E_UNKNOWN, "unknown message type");
        raw_fini(&r);
    }
    raw r;
    raw_init(&r);
    raw_env(&r, 1, (uint64_t)UINT32_MAX + 1 + PX_MSG_HELLO); /* wraps to HELLO if truncated */
    raw_hello_body(&r, NULL, 0);
    expect_decode_err(r.sb.data, r.sb.size, PX_E_PROTO, "type");
    raw_fini(&r);

    px_msg m = wv_env(PX_MSG_TYPE_MAX, 0, 0, 0);
    px_wbuf b = {0};
    px_errmsg em = {{0}};
    assert_int_equal(px_wire_encode(&b, &m, &em), PX_E_UNKNOWN);
    assert_int_equal(b.len, 0);
    px_wbuf_fini(&b);
}

/* ---- body rules ---- */

static void test_unknown_key(void **state)
{
    (void)state;
    raw r;
    hello_with_value(&r, "colour", "\x01", 1);
    expect_decode_err(r.sb.data, r.sb.size, PX_E_UNKNOWN, "\"colour\"");
    raw_fini(&r);
    /* A hostile key is printed safely. */
    hello_with_value(&r, "a\n\"b\x7f", "\x01", 1);
    expect_decode_err(r.sb.data, r.sb.size, PX_E_UNKNOWN, "\"a??b?\"");
    raw_fini(&r);
    /* Keys are case- and length-exact. */
    hello_with_value(&r, "Name", "\xa1x", 2);
    expect_decode_err(r.sb.data, r.sb.size, PX_E_UNKNOWN, "Name");
    raw_fini(&r);
    hello_with_value(&r, "names", "\xa1x", 2);
    expect_decode_err(r.sb.data, r.sb.size, PX_E_UNKNOWN, "names");
    raw_fini(&r);
}

static void test_duplicate_key(void **state)
{
    (void)state;
    raw r;
    raw_init(&r);
    raw_env(&r, 1, PX_MSG_HELLO);
    raw_hello_body(&r, NULL, 1);
    raw_str(&r, "name");
    raw_str(&r, "again");
    expect_decode_err(r.sb.data, r.sb.size, PX_E_PROTO, "duplicate key \"name\"");
    raw_fini(&r);
}

static void test_missing_required(void **state)
{
    (void)state;
    static const char *hello_keys[] = {"pmin", "pmax", "role", "name"};
    for (size_t i = 0; i < 4; i++) {
        raw r;
        raw_init(&r);
        raw_env(&r, 1, PX_MSG_HELLO);
        raw_hello_body(&r, hello_keys[i], 0);
        char needle[64];
        snprintf(needle, sizeof(needle), "required field \"%s\" missing", hello_keys[i]);
        expect_decode_err(r.sb.data, r.sb.size, PX_E_PROTO, needle);
        raw_fini(&r);
    }
    /* The other types, with an empty body: the first required field is named. */
    static const struct {
        uint32_t type;
        const char *key;
    } empty[] = {{PX_MSG_HEARTBEAT, "\"up\""}, {PX_MSG_ERROR, "\"code\""}, {PX_MSG_PROBE, "\"t\""}};
    for (size_t i = 0; i < 3; i++) {
        raw r;
        raw_init(&r);
        raw_env(&r, 1, empty[i].type);
        msgpack_pack_map(&r.pk, 0);
        expect_decode_err(r.sb.data, r.sb.size, PX_E_PROTO, empty[i].key);
        raw_fini(&r);
    }
    /* Optional fields may be absent: ERROR without "re", HELLO without "feat". */
    raw r;
    raw_init(&r);
    raw_env(&r, 1, PX_MSG_ERROR);
    msgpack_pack_map(&r.pk, 2);
    raw_str(&r, "code");
    msgpack_pack_int32(&r.pk, -9);
    raw_str(&r, "msg");
    raw_str(&r, "gone");
    px_msg out;
    expect_decode_ok(r.sb.data, r.sb.size, &out);
    assert_int_equal(out.body.error.code, -9);
    assert_true(out.body.error.in_reply_to == 0);
    raw_fini(&r);
}

static void test_wrong_types_and_ranges(void **state)
{
    (void)state;
    static const struct {
        const char *key;
        uint8_t bytes[10];
        size_t n;
        const char *needle;
    } hello_cases[] = {
        {"pmin", {0xa1, '1'}, 2, "HELLO.pmin at byte"},
        {"pmin", {0xff}, 1, "negative"},
        {"pmin", {0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 9, "negative"},
        {"pmin", {0xcf, 0, 0, 0, 1, 0, 0, 0, 1}, 9, "does not fit"},
        {"pmin", {0xce, 0xff, 0xff, 0xff, 0xff}, 5, "version range"}, /* > pmax */
        {"pmin", {0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0}, 9, "a float"},
        {"pmin", {0xc3}, 1, "a boolean"},
        {"pmin", {0xc0}, 1, "nil"},
        {"pmin", {0x00}, 1, "version range"}, /* 0 is not a version */
        {"name", {0xc4, 1, 'x'}, 3, "a bin"},
        {"name", {0x01}, 1, "expected a string"},
        {"name", {0xa2, 'x', 0}, 3, "UTF-8 or contains NUL"},
        {"name", {0xa1, 0xff}, 2, "UTF-8"},
        {"name", {0xa2, 0xc0, 0x80}, 3, "UTF-8"},             /* overlong NUL */
        {"name", {0xa3, 0xed, 0xa0, 0x80}, 4, "UTF-8"},       /* surrogate */
        {"name", {0xa2, 0xe2, 0x82}, 3, "UTF-8"},             /* cut sequence */
        {"name", {0xa4, 0xf4, 0x90, 0x80, 0x80}, 5, "UTF-8"}, /* > U+10FFFF */
        {"feat", {0xa1, 'x'}, 2, "expected an array"},
        {"feat", {0x91, 0x01}, 2, "expected a string"},
    };
    for (size_t i = 0; i < sizeof(hello_cases) / sizeof(hello_cases[0]); i++) {
        raw r;
        hello_with_value(&r, hello_cases[i].key, hello_cases[i].bytes, hello_cases[i].n);
        expect_decode_err(r.sb.data, r.sb.size, PX_E_PROTO, hello_cases[i].needle);
        raw_fini(&r);
    }

    /* int32: both ends and one past each. */
    static const struct {
        uint8_t b[9];
        size_t n;
        px_err want;
        int32_t v;
    } codes[] = {
        {{0xd2, 0x80, 0, 0, 0}, 5, PX_OK, INT32_MIN},
        {{0xce, 0x7f, 0xff, 0xff, 0xff}, 5, PX_OK, INT32_MAX},
        {{0xd3, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff}, 9, PX_E_PROTO, 0},
        {{0xce, 0x80, 0, 0, 0}, 5, PX_E_PROTO, 0},
        {{0xa1, 'x'}, 2, PX_E_PROTO, 0},
    };
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        raw r;
        raw_init(&r);
        raw_env(&r, 1, PX_MSG_ERROR);
        msgpack_pack_map(&r.pk, 2);
        raw_str(&r, "msg");
        raw_str(&r, "m");
        raw_str(&r, "code");
        raw_bytes(&r, codes[i].b, codes[i].n);
        if (codes[i].want == PX_OK) {
            px_msg out;
            expect_decode_ok(r.sb.data, r.sb.size, &out);
            assert_int_equal(out.body.error.code, codes[i].v);
        } else {
            expect_decode_err(r.sb.data, r.sb.size, codes[i].want, "ERROR.code");
        }
        raw_fini(&r);
    }

    /* PROBE data must be a bin, not a string. */
    raw r;
    raw_init(&r);
    raw_env(&r, 1, PX_MSG_PROBE);
    msgpack_pack_map(&r.pk, 2);
    raw_str(&r, "t");
    msgpack_pack_uint64(&r.pk, 1);
    raw_str(&r, "data");
    raw_str(&r, "abc");
    expect_decode_err(r.sb.data, r.sb.size, PX_E_PROTO, "PROBE.data");
    raw_fini(&r);
}

static void test_field_limits_on_decode(void **state)
{
    (void)state;
    /* name: 65 bytes is within PX_WIRE_MAX_STR but over PX_WIRE_MAX_NAME. */
    char s[PX_WIRE_MAX_NAME + 2];
    memset(s, 'n', sizeof(s) - 1);
    s[sizeof(s) - 1] = 0;
    raw r;
    raw_init(&r);
    raw_env(&r, 1, PX_MSG_HELLO);
    raw_hello_body(&r, "name", 1);
    raw_str(&r, "name");
    raw_str(&r, s);
    expect_decode_err(r.sb.data, r.sb.size, PX_E_TOOBIG, "HELLO.name");
    raw_fini(&r);

    /* 17 features. */
    raw_init(&r);
    raw_env(&r, 1, PX_MSG_HELLO);
    raw_hello_body(&r, NULL, 1);
    raw_str(&r, "feat");
    msgpack_pack_array(&r.pk, PX_WIRE_MAX_FEATURES + 1);
    for (unsigned i = 0; i <= PX_WIRE_MAX_FEATURES; i++)
        raw_str(&r, "f");
    expect_decode_err(r.sb.data, r.sb.size, PX_E_TOOBIG, "HELLO.feat");
    raw_fini(&r);
}

/* ---- batches ---- */

static void test_batch(void **state)
{
    (void)state;
    px_wbuf b = {0};
    size_t n = 0, ends[WV_MAX];
    for (size_t i = 0; i < n_vec; i++) {
        encode_ok(&b, &vec[i]);
        ends[n++] = b.len;
    }
    size_t off = 0, k = 0;
    count_start();
    while (off < b.len) {
        px_msg out;
        px_errmsg em = {{0}};
        size_t used = 0;
        px_err err = px_wire_decode(b.data + off, b.len - off, &used, &out, &em);
        if (err)
            fail_msg("batch element %zu: %s", k, em.text);
        assert_msg_eq(&vec[k], &out);
        off += used;
        assert_int_equal(off, ends[k]);
        k++;
    }
    assert_int_equal(count_stop(), 0);
    assert_int_equal(k, n_vec);

    /* A corrupt envelope in the middle: the ones before it decode, it fails. */
    size_t second = ends[0];
    b.data[second] = 0x95; /* array of 5 */
    px_msg out;
    size_t used;
    assert_int_equal(px_wire_decode(b.data, b.len, &used, &out, NULL), PX_OK);
    assert_int_equal(used, ends[0]);
    assert_int_equal(px_wire_decode(b.data + used, b.len - used, &used, &out, NULL), PX_E_PROTO);
    assert_int_equal(used, 0);
    px_wbuf_fini(&b);
}

/* ---- encoder limits ---- */

static void expect_encode_err(const px_msg *m, px_err want, const char *needle)
{
    px_wbuf b = {0};
    /* Something already in the buffer must survive a failed encode. */
    encode_ok(&b, &vec[0]);
    size_t before = b.len;
    px_errmsg em = {{0}};
    px_err err = px_wire_encode(&b, m, &em);
    if (err != want)
        fail_msg("encode: got %s (%s), want %s", px_errname(err), em.text, px_errname(want));
    assert_int_equal(b.len, before);
    if (needle && !strstr(em.text, needle))
        fail_msg("error message lacks \"%s\": %s", needle, em.text);
    px_wbuf_fini(&b);
}

static void test_encode_limits(void **state)
{
    (void)state;
    static char big[PX_WIRE_MAX_STR + 2];
    memset(big, 'x', sizeof(big) - 1);

    px_msg m = vec[1]; /* a typical HELLO */
    m.body.hello.name = (px_str){big, PX_WIRE_MAX_NAME + 1};
    expect_encode_err(&m, PX_E_TOOBIG, "HELLO.name");
    m = vec[1];
    m.body.hello.role = (px_str){big, PX_WIRE_MAX_NAME + 1};
    expect_encode_err(&m, PX_E_TOOBIG, "HELLO.role");
    m = vec[1];
    m.body.hello.features[1] = (px_str){big, PX_WIRE_MAX_NAME + 1};
    expect_encode_err(&m, PX_E_TOOBIG, "HELLO.feat");
    m = vec[1];
    m.body.hello.n_features = PX_WIRE_MAX_FEATURES + 1;
    expect_encode_err(&m, PX_E_TOOBIG, "HELLO.feat");
    m = vec[1];
    m.body.hello.proto_min = 3;
    m.body.hello.proto_max = 2;
    expect_encode_err(&m, PX_E_INVAL, "version range");
    m = vec[1];
    m.body.hello.name = (px_str){NULL, 3};
    expect_encode_err(&m, PX_E_INVAL, "NULL");
    m = vec[1];
    m.body.hello.name = px_str_c("bad\xff");
    expect_encode_err(&m, PX_E_INVAL, "UTF-8");

    m = wv_env(PX_MSG_ERROR, 0, 0, 0);
    m.body.error.message = (px_str){big, PX_WIRE_MAX_STR + 1};
    expect_encode_err(&m, PX_E_TOOBIG, "ERROR.msg");
    m.body.error.message = (px_str){big, PX_WIRE_MAX_STR};
    px_wbuf b = {0};
    encode_ok(&b, &m);
    px_wbuf_fini(&b);

    uint8_t *blob = calloc(1, PX_WIRE_MAX_BIN + 1);
    assert_non_null(blob);
    m = wv_env(PX_MSG_PROBE, 0, 0, 0);
    m.body.probe.payload = (px_bin){blob, PX_WIRE_MAX_BIN + 1};
    expect_encode_err(&m, PX_E_TOOBIG, "PROBE.data");
    m.body.probe.payload = (px_bin){NULL, 1};
    expect_encode_err(&m, PX_E_INVAL, "NULL");
    free(blob);
}

/* ---- SHM: ivshmem regions between hosts ---- */

/* An SHM body {reg 1, op DIFF} plus `key` holding raw `bytes`; a key of
 * "reg" or "op" replaces that field. */
static void shm_with_value(raw *r, const char *key, const void *bytes, size_t n)
{
    bool own_reg = !strcmp(key, "reg"), own_op = !strcmp(key, "op");
    raw_init(r);
    raw_env(r, 1, PX_MSG_SHM);
    msgpack_pack_map(&r->pk, 1 + !own_reg + !own_op);
    if (!own_reg) {
        raw_str(r, "reg");
        msgpack_pack_uint32(&r->pk, 1);
    }
    if (!own_op) {
        raw_str(r, "op");
        msgpack_pack_uint32(&r->pk, PX_SHM_DIFF);
    }
    raw_str(r, key);
    raw_bytes(r, bytes, n);
}

static void test_shm(void **state)
{
    (void)state;
    assert_string_equal(px_msg_type_name(PX_MSG_SHM), "SHM");

    /* Each limit: the last good value decodes, the first bad one does not. */
    static const struct {
        const char *key;
        uint8_t bytes[10];
        size_t n;
        px_err want;
        const char *needle;
    } cases[] = {
        {"op", {0x01}, 1, PX_OK, NULL},
        {"op", {PX_SHM_OP_MAX - 1}, 1, PX_OK, NULL},
        {"op", {0x00}, 1, PX_E_PROTO, "SHM: unknown op 0"},
        {"op", {PX_SHM_OP_MAX}, 1, PX_E_PROTO, "unknown op"},
        {"op", {0xce, 0xff, 0xff, 0xff, 0xff}, 5, PX_E_PROTO, "unknown op"},
        {"peer", {0xcd, 0xff, 0xff}, 3, PX_OK, NULL},
        {"peer", {0xce, 0x00, 0x01, 0x00, 0x00}, 5, PX_E_PROTO, "peer 65536 is over 65535"},
        {"peer", {0xff}, 1, PX_E_PROTO, "negative"},
        {"vec", {0xcc, 0xff}, 2, PX_OK, NULL},
        {"vec", {0xcd, 0x01, 0x00}, 3, PX_E_PROTO, "vector 256 is over 255"},
        {"own", {0xce, 0xff, 0xff, 0xff, 0xff}, 5, PX_OK, NULL},
        {"own", {0xcf, 0, 0, 0, 1, 0, 0, 0, 0}, 9, PX_E_PROTO, "SHM.own"},
        {"node", {0xa1, '1'}, 2, PX_E_PROTO, "SHM.node"},
        {"reg", {0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 9, PX_OK, NULL},
        {"reg", {0xc0}, 1, PX_E_PROTO, "SHM.reg"},
        {"tag", {0xd0, 0x80}, 2, PX_E_PROTO, "negative"},
        {"name", {0xc4, 1, 'x'}, 3, PX_E_PROTO, "SHM.name"},
        {"name", {0xa2, 'x', 0}, 3, PX_E_PROTO, "UTF-8 or contains NUL"},
        {"r", {0xa1, 'x'}, 2, PX_E_PROTO, "SHM.r"},
        {"r", {0xc4, 0}, 2, PX_OK, NULL},
        {"recs", {0xc4, 0}, 2, PX_E_UNKNOWN, "\"recs\""},
        {"seg", {0x01}, 1, PX_E_UNKNOWN, "\"seg\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        raw r;
        shm_with_value(&r, cases[i].key, cases[i].bytes, cases[i].n);
        if (cases[i].want == PX_OK) {
            px_msg out;
            expect_decode_ok(r.sb.data, r.sb.size, &out);
            assert_int_equal(out.env.type, PX_MSG_SHM);
        } else {
            expect_decode_err(r.sb.data, r.sb.size, cases[i].want, cases[i].needle);
        }
        raw_fini(&r);
    }

    /* Required fields: region and op. */
    static const char *req[] = {"reg", "op"};
    for (size_t i = 0; i < 2; i++) {
        raw r;
        raw_init(&r);
        raw_env(&r, 1, PX_MSG_SHM);
        msgpack_pack_map(&r.pk, 1);
        raw_str(&r, req[1 - i]);
        msgpack_pack_uint32(&r.pk, 1);
        char needle[64];
        snprintf(needle, sizeof(needle), "required field \"%s\" missing", req[i]);
        expect_decode_err(r.sb.data, r.sb.size, PX_E_PROTO, needle);
        raw_fini(&r);
    }

    /* Lengths: a name one over PX_WIRE_MAX_NAME, records one over
     * PX_WIRE_MAX_SHM_BLOB (both well within the generic limits). */
    static char name[PX_WIRE_MAX_NAME + 1];
    memset(name, 'n', sizeof(name));
    raw r;
    raw_init(&r);
    raw_env(&r, 1, PX_MSG_SHM);
    msgpack_pack_map(&r.pk, 3);
    raw_str(&r, "reg");
    msgpack_pack_uint32(&r.pk, 1);
    raw_str(&r, "op");
    msgpack_pack_uint32(&r.pk, PX_SHM_JOIN);
    raw_str(&r, "name");
    msgpack_pack_str(&r.pk, sizeof(name));
    msgpack_pack_str_body(&r.pk, name, sizeof(name));
    expect_decode_err(r.sb.data, r.sb.size, PX_E_TOOBIG, "SHM.name");
    raw_fini(&r);

    uint8_t *blob = calloc(1, PX_WIRE_MAX_SHM_BLOB + 1);
    assert_non_null(blob);
    for (int over = 0; over <= 1; over++) {
        raw_init(&r);
        raw_env(&r, 1, PX_MSG_SHM);
        msgpack_pack_map(&r.pk, 3);
        raw_str(&r, "reg");
        msgpack_pack_uint32(&r.pk, 1);
        raw_str(&r, "op");
        msgpack_pack_uint32(&r.pk, PX_SHM_DIFF);
        raw_str(&r, "r");
        msgpack_pack_bin(&r.pk, PX_WIRE_MAX_SHM_BLOB + over);
        msgpack_pack_bin_body(&r.pk, blob, PX_WIRE_MAX_SHM_BLOB + over);
        if (over) {
            expect_decode_err(r.sb.data, r.sb.size, PX_E_TOOBIG, "SHM.r");
        } else {
            px_msg out;
            expect_decode_ok(r.sb.data, r.sb.size, &out);
            assert_int_equal(out.body.shm.recs.len, PX_WIRE_MAX_SHM_BLOB);
        }
        raw_fini(&r);
    }

    /* The encoder refuses what the decoder would reject. */
    px_msg m = wv_env(PX_MSG_SHM, 1, 2, 3);
    m.body.shm.region = 1;
    m.body.shm.op = 0;
    expect_encode_err(&m, PX_E_INVAL, "unknown op");
    m.body.shm.op = PX_SHM_OP_MAX;
    expect_encode_err(&m, PX_E_INVAL, "unknown op");
    m.body.shm.op = PX_SHM_PEER;
    m.body.shm.peer = 65536;
    expect_encode_err(&m, PX_E_INVAL, "peer 65536");
    m.body.shm.peer = 65535;
    m.body.shm.vector = 256;
    expect_encode_err(&m, PX_E_INVAL, "vector 256");
    m.body.shm.vector = 0;
    m.body.shm.name = (px_str){name, PX_WIRE_MAX_NAME + 1};
    expect_encode_err(&m, PX_E_TOOBIG, "SHM.name");
    m.body.shm.name = px_str_c("g1");
    m.body.shm.recs = (px_bin){blob, PX_WIRE_MAX_SHM_BLOB + 1};
    expect_encode_err(&m, PX_E_TOOBIG, "SHM.r");
    m.body.shm.recs = (px_bin){NULL, 1};
    expect_encode_err(&m, PX_E_INVAL, "NULL");
    m.body.shm.recs = (px_bin){blob, PX_WIRE_MAX_SHM_BLOB};
    px_wbuf b = {0};
    encode_ok(&b, &m);
    px_msg out;
    expect_decode_ok(b.data, b.len, &out);
    assert_int_equal(out.body.shm.peer, 65535);
    assert_true(px_str_eq(out.body.shm.name, "g1"));
    px_wbuf_fini(&b);
    free(blob);

    /* Zero fields are left out: a bare SYNC is {reg, op} and nothing else. */
    m = wv_env(PX_MSG_SHM, 0, 0, 0);
    m.body.shm.region = 9;
    m.body.shm.op = PX_SHM_SYNC;
    encode_ok(&b, &m);
    static const uint8_t sync[] = {0x96, 1,   PX_MSG_SHM, 0, 0,    0,   0x82, 0xa3,
                                   'r',  'e', 'g',        9, 0xa2, 'o', 'p',  PX_SHM_SYNC};
    assert_int_equal(b.len, sizeof(sync));
    assert_memory_equal(b.data, sync, sizeof(sync));
    px_wbuf_fini(&b);
}

/* ---- CXL: logical-device data between hosts ---- */

/* A CXL body {pool 1, op, node "hb"} plus `key` holding raw `bytes`; a key
 * of "pool", "op" or "node" replaces that field. */
static void cxl_with_value(raw *r, uint32_t op, const char *key, const void *bytes, size_t n)
{
    bool own_pool = !strcmp(key, "pool"), own_op = !strcmp(key, "op"),
         own_node = !strcmp(key, "node");
    raw_init(r);
    raw_env(r, 1, PX_MSG_CXL);
    msgpack_pack_map(&r->pk, 1 + !own_pool + !own_op + !own_node);
    if (!own_pool) {
        raw_str(r, "pool");
        msgpack_pack_uint32(&r->pk, 1);
    }
    if (!own_op) {
        raw_str(r, "op");
        msgpack_pack_uint32(&r->pk, op);
    }
    if (!own_node) {
        raw_str(r, "node");
        raw_str(r, "hb");
    }
    raw_str(r, key);
    raw_bytes(r, bytes, n);
}

/* A DATA or WRITE of `len` with `dlen` bytes of d (zero flag `zero`). */
static void cxl_data(raw *r, uint32_t op, uint32_t len, uint32_t zero, const uint8_t *d,
                     uint32_t dlen)
{
    raw_init(r);
    raw_env(r, 1, PX_MSG_CXL);
    msgpack_pack_map(&r->pk, 4 + (zero > 0) + (dlen > 0));
    raw_str(r, "pool");
    msgpack_pack_uint32(&r->pk, 1);
    raw_str(r, "op");
    msgpack_pack_uint32(&r->pk, op);
    raw_str(r, "node");
    raw_str(r, "ha");
    raw_str(r, "len");
    msgpack_pack_uint32(&r->pk, len);
    if (zero) {
        raw_str(r, "zero");
        msgpack_pack_uint32(&r->pk, zero);
    }
    if (dlen) {
        raw_str(r, "d");
        msgpack_pack_bin(&r->pk, dlen);
        msgpack_pack_bin_body(&r->pk, d, dlen);
    }
}

static void test_cxl(void **state)
{
    (void)state;
    assert_string_equal(px_msg_type_name(PX_MSG_CXL), "CXL");

    /* Each limit: the last good value decodes, the first bad one does not. */
    static const struct {
        uint32_t op;
        const char *key;
        uint8_t bytes[10];
        size_t n;
        px_err want;
        const char *needle;
    } cases[] = {
        {PX_CXL_READ, "op", {0x01}, 1, PX_OK, NULL},
        {PX_CXL_READ, "op", {PX_CXL_OP_MAX - 1}, 1, PX_OK, NULL},
        {PX_CXL_READ, "op", {0x00}, 1, PX_E_PROTO, "CXL: unknown op 0"},
        {PX_CXL_READ, "op", {PX_CXL_OP_MAX}, 1, PX_E_PROTO, "unknown op"},
        {PX_CXL_READ, "op", {0xce, 0xff, 0xff, 0xff, 0xff}, 5, PX_E_PROTO, "unknown op"},
        {PX_CXL_READ, "ld", {0xcc, 0xff}, 2, PX_OK, NULL},
        {PX_CXL_READ, "ld", {0xcd, 0x01, 0x00}, 3, PX_E_PROTO, "ld 256 is over 255"},
        {PX_CXL_READ, "area", {0x01}, 1, PX_OK, NULL},
        {PX_CXL_READ, "area", {0x02}, 1, PX_E_PROTO, "area 2"},
        {PX_CXL_READ, "len", {0xce, 0x00, 0x02, 0x00, 0x00}, 5, PX_OK, NULL},
        {PX_CXL_READ, "len", {0xce, 0x00, 0x02, 0x00, 0x01}, 5, PX_E_PROTO, "len 131073 is over"},
        {PX_CXL_READ, "len", {0xcf, 0, 0, 0, 1, 0, 0, 0, 0}, 9, PX_E_PROTO, "CXL.len"},
        {PX_CXL_READ,
         "off",
         {0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
         9,
         PX_OK,
         NULL},
        {PX_CXL_READ, "off", {0xff}, 1, PX_E_PROTO, "negative"},
        {PX_CXL_READ, "xfer", {0xa1, '1'}, 2, PX_E_PROTO, "CXL.xfer"},
        {PX_CXL_READ, "pool", {0xc0}, 1, PX_E_PROTO, "CXL.pool"},
        {PX_CXL_READ, "node", {0xc4, 1, 'x'}, 3, PX_E_PROTO, "CXL.node"},
        {PX_CXL_READ, "node", {0xa2, 'x', 0}, 3, PX_E_PROTO, "UTF-8 or contains NUL"},
        {PX_CXL_READ, "zero", {0x01}, 1, PX_E_PROTO, "carries no data"},
        {PX_CXL_ACK, "d", {0xc4, 1, 'x'}, 3, PX_E_PROTO, "carries no data"},
        {PX_CXL_FAIL, "code", {0xd0, 0x80}, 2, PX_OK, NULL},
        {PX_CXL_FAIL, "code", {0xce, 0x80, 0, 0, 0}, 5, PX_E_PROTO, "CXL.code"},
        {PX_CXL_FAIL, "msg", {0xa1, 'x'}, 2, PX_OK, NULL},
        {PX_CXL_INFO, "size", {0xcf, 0, 0, 0, 1, 0, 0, 0, 0}, 9, PX_OK, NULL},
        {PX_CXL_INFO, "lsa", {0xce, 0, 0x10, 0, 0}, 5, PX_OK, NULL},
        {PX_CXL_READ, "data", {0xc4, 0}, 2, PX_E_UNKNOWN, "\"data\""},
        {PX_CXL_READ, "reg", {0x01}, 1, PX_E_UNKNOWN, "\"reg\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        raw r;
        cxl_with_value(&r, cases[i].op, cases[i].key, cases[i].bytes, cases[i].n);
        if (cases[i].want == PX_OK) {
            px_msg out;
            expect_decode_ok(r.sb.data, r.sb.size, &out);
            assert_int_equal(out.env.type, PX_MSG_CXL);
        } else {
            expect_decode_err(r.sb.data, r.sb.size, cases[i].want, cases[i].needle);
        }
        raw_fini(&r);
    }

    /* Required fields: pool, op and node. */
    static const char *req[] = {"pool", "op", "node"};
    for (size_t i = 0; i < 3; i++) {
        raw r;
        raw_init(&r);
        raw_env(&r, 1, PX_MSG_CXL);
        msgpack_pack_map(&r.pk, 2);
        for (size_t k = 0; k < 3; k++) {
            if (k == i)
                continue;
            raw_str(&r, req[k]);
            if (k == 2)
                raw_str(&r, "hb");
            else
                msgpack_pack_uint32(&r.pk, 1);
        }
        char needle[64];
        snprintf(needle, sizeof(needle), "required field \"%s\" missing", req[i]);
        expect_decode_err(r.sb.data, r.sb.size, PX_E_PROTO, needle);
        raw_fini(&r);
    }

    /* Data: exactly len bytes, or the zero flag and none; up to one chunk. */
    uint8_t *blob = calloc(1, PX_WIRE_MAX_CXL_CHUNK + 1);
    assert_non_null(blob);
    static const struct {
        uint32_t op, len, zero, dlen;
        px_err want;
        const char *needle;
    } dcases[] = {
        {PX_CXL_DATA, 64, 0, 64, PX_OK, NULL},
        {PX_CXL_WRITE, PX_WIRE_MAX_CXL_CHUNK, 0, PX_WIRE_MAX_CXL_CHUNK, PX_OK, NULL},
        {PX_CXL_DATA, PX_WIRE_MAX_CXL_CHUNK, 1, 0, PX_OK, NULL},
        {PX_CXL_WRITE, 4096, 1, 0, PX_OK, NULL},
        {PX_CXL_DATA, 64, 0, 63, PX_E_PROTO, "63 bytes of data for len 64"},
        {PX_CXL_WRITE, 64, 0, 0, PX_E_PROTO, "0 bytes of data for len 64"},
        {PX_CXL_DATA, 64, 1, 64, PX_E_PROTO, "flagged zero"},
        {PX_CXL_DATA, 0, 1, 0, PX_E_PROTO, "DATA of 0 bytes"},
        {PX_CXL_WRITE, 0, 0, 0, PX_E_PROTO, "WRITE of 0 bytes"},
        {PX_CXL_DATA, 64, 2, 0, PX_E_PROTO, "zero 2"},
        {PX_CXL_WRITE, PX_WIRE_MAX_CXL_CHUNK, 0, PX_WIRE_MAX_CXL_CHUNK + 1, PX_E_TOOBIG, "CXL.d"},
    };
    for (size_t i = 0; i < sizeof(dcases) / sizeof(dcases[0]); i++) {
        raw r;
        cxl_data(&r, dcases[i].op, dcases[i].len, dcases[i].zero, blob, dcases[i].dlen);
        if (dcases[i].want == PX_OK) {
            px_msg out;
            expect_decode_ok(r.sb.data, r.sb.size, &out);
            assert_int_equal(out.body.cxl.d.len, dcases[i].dlen);
        } else {
            expect_decode_err(r.sb.data, r.sb.size, dcases[i].want, dcases[i].needle);
        }
        raw_fini(&r);
    }

    /* A FAIL's text: one over PX_WIRE_MAX_CXL_MSG (well within the generic
     * limit). */
    static char text[PX_WIRE_MAX_CXL_MSG + 1];
    memset(text, 't', sizeof(text));
    raw r;
    raw_init(&r);
    raw_env(&r, 1, PX_MSG_CXL);
    msgpack_pack_map(&r.pk, 4);
    raw_str(&r, "pool");
    msgpack_pack_uint32(&r.pk, 1);
    raw_str(&r, "op");
    msgpack_pack_uint32(&r.pk, PX_CXL_FAIL);
    raw_str(&r, "node");
    raw_str(&r, "ha");
    raw_str(&r, "msg");
    msgpack_pack_str(&r.pk, sizeof(text));
    msgpack_pack_str_body(&r.pk, text, sizeof(text));
    expect_decode_err(r.sb.data, r.sb.size, PX_E_TOOBIG, "CXL.msg");
    raw_fini(&r);

    /* The encoder refuses what the decoder would reject. */
    px_msg m = wv_env(PX_MSG_CXL, 1, 2, 3);
    m.body.cxl.pool = 1;
    m.body.cxl.node = px_str_c("hb");
    m.body.cxl.op = 0;
    expect_encode_err(&m, PX_E_INVAL, "unknown op");
    m.body.cxl.op = PX_CXL_OP_MAX;
    expect_encode_err(&m, PX_E_INVAL, "unknown op");
    m.body.cxl.op = PX_CXL_READ;
    m.body.cxl.ld = PX_WIRE_MAX_CXL_LDS;
    expect_encode_err(&m, PX_E_INVAL, "ld 256");
    m.body.cxl.ld = 0;
    m.body.cxl.area = 2;
    expect_encode_err(&m, PX_E_INVAL, "area 2");
    m.body.cxl.area = 0;
    m.body.cxl.len = PX_WIRE_MAX_CXL_CHUNK + 1;
    expect_encode_err(&m, PX_E_INVAL, "len 131073");
    m.body.cxl.len = 64;
    m.body.cxl.d = (px_bin){blob, 64};
    expect_encode_err(&m, PX_E_INVAL, "carries no data");
    m.body.cxl.op = PX_CXL_WRITE;
    m.body.cxl.d = (px_bin){blob, 63};
    expect_encode_err(&m, PX_E_INVAL, "63 bytes of data");
    m.body.cxl.zero = 1;
    m.body.cxl.d = (px_bin){blob, 64};
    expect_encode_err(&m, PX_E_INVAL, "flagged zero");
    m.body.cxl.zero = 0;
    m.body.cxl.len = PX_WIRE_MAX_CXL_CHUNK;
    m.body.cxl.d = (px_bin){blob, PX_WIRE_MAX_CXL_CHUNK + 1}; /* the check sees it first */
    expect_encode_err(&m, PX_E_INVAL, "131073 bytes of data for len 131072");
    m.body.cxl.d = (px_bin){NULL, PX_WIRE_MAX_CXL_CHUNK};
    expect_encode_err(&m, PX_E_INVAL, "NULL");
    m.body.cxl.d = (px_bin){blob, PX_WIRE_MAX_CXL_CHUNK};
    m.body.cxl.msg = (px_str){text, PX_WIRE_MAX_CXL_MSG + 1};
    expect_encode_err(&m, PX_E_TOOBIG, "CXL.msg");
    m.body.cxl.msg = (px_str){text, PX_WIRE_MAX_CXL_MSG};
    px_wbuf b = {0};
    encode_ok(&b, &m);
    /* A whole chunk fits in one data-plane batch with room to spare. */
    assert_true(b.len + 1024 <= PX_DATA_PLANE_BATCH_BYTES);
    px_msg out;
    expect_decode_ok(b.data, b.len, &out);
    assert_int_equal(out.body.cxl.d.len, PX_WIRE_MAX_CXL_CHUNK);
    assert_true(px_str_eq(out.body.cxl.node, "hb"));
    px_wbuf_fini(&b);
    free(blob);

    /* Zero fields are left out: a bare OPEN of LD 0 is {pool, op, node}. */
    m = wv_env(PX_MSG_CXL, 0, 0, 0);
    m.body.cxl.pool = 9;
    m.body.cxl.op = PX_CXL_OPEN;
    m.body.cxl.node = px_str_c("h");
    encode_ok(&b, &m);
    static const uint8_t open[] = {0x96,        1,    PX_MSG_CXL, 0,   0,   0,    0x83, 0xa4,
                                   'p',         'o',  'o',        'l', 9,   0xa2, 'o',  'p',
                                   PX_CXL_OPEN, 0xa4, 'n',        'o', 'd', 'e',  0xa1, 'h'};
    assert_int_equal(b.len, sizeof(open));
    assert_memory_equal(b.data, open, sizeof(open));
    px_wbuf_fini(&b);
}

/* ---- CXLSYNC: changes to a shared LD ---- */

/* A CXLSYNC body {pool 1, node "hb", op DIFF} plus `key` holding raw
 * `bytes`; a key of "pool", "node" or "op" replaces that field. */
static void cxlsync_with_value(raw *r, const char *key, const void *bytes, size_t n)
{
    bool own_pool = !strcmp(key, "pool"), own_op = !strcmp(key, "op"),
         own_node = !strcmp(key, "node");
    raw_init(r);
    raw_env(r, 1, PX_MSG_CXLSYNC);
    msgpack_pack_map(&r->pk, 1 + !own_pool + !own_op + !own_node);
    if (!own_pool) {
        raw_str(r, "pool");
        msgpack_pack_uint32(&r->pk, 1);
    }
    if (!own_node) {
        raw_str(r, "node");
        raw_str(r, "hb");
    }
    if (!own_op) {
        raw_str(r, "op");
        msgpack_pack_uint32(&r->pk, PX_CXLSYNC_DIFF);
    }
    raw_str(r, key);
    raw_bytes(r, bytes, n);
}

static void test_cxlsync(void **state)
{
    (void)state;
    assert_string_equal(px_msg_type_name(PX_MSG_CXLSYNC), "CXLSYNC");
    assert_int_equal(PX_MSG_CXLSYNC, 17);

    /* Each limit: the last good value decodes, the first bad one does not. */
    static const struct {
        const char *key;
        uint8_t bytes[10];
        size_t n;
        px_err want;
        const char *needle;
    } cases[] = {
        {"op", {PX_CXLSYNC_DIFF}, 1, PX_OK, NULL},
        {"op", {PX_CXLSYNC_OP_MAX - 1}, 1, PX_OK, NULL},
        {"op", {0x00}, 1, PX_E_PROTO, "CXLSYNC: unknown op 0"},
        {"op", {PX_CXLSYNC_OP_MAX}, 1, PX_E_PROTO, "unknown op"},
        {"op", {0xce, 0xff, 0xff, 0xff, 0xff}, 5, PX_E_PROTO, "unknown op"},
        {"op", {0xcf, 0, 0, 0, 1, 0, 0, 0, 1}, 9, PX_E_PROTO, "CXLSYNC.op"},
        {"ld", {0xcc, 0xff}, 2, PX_OK, NULL},
        {"ld", {0xcd, 0x01, 0x00}, 3, PX_E_PROTO, "ld 256 is over 255"},
        {"ld", {0xff}, 1, PX_E_PROTO, "negative"},
        {"base", {0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 9, PX_OK, NULL},
        {"base", {0xa1, '1'}, 2, PX_E_PROTO, "CXLSYNC.base"},
        {"pool", {0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 9, PX_OK, NULL},
        {"pool", {0xc0}, 1, PX_E_PROTO, "CXLSYNC.pool"},
        {"node", {0xc4, 1, 'x'}, 3, PX_E_PROTO, "CXLSYNC.node"},
        {"node", {0xa2, 'x', 0}, 3, PX_E_PROTO, "UTF-8 or contains NUL"},
        {"node", {0xa0}, 1, PX_OK, NULL},
        {"r", {0xa1, 'x'}, 2, PX_E_PROTO, "CXLSYNC.r"},
        {"r", {0xc4, 0}, 2, PX_OK, NULL},
        {"recs", {0xc4, 0}, 2, PX_E_UNKNOWN, "\"recs\""},
        {"reg", {0x01}, 1, PX_E_UNKNOWN, "\"reg\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        raw r;
        cxlsync_with_value(&r, cases[i].key, cases[i].bytes, cases[i].n);
        if (cases[i].want == PX_OK) {
            px_msg out;
            expect_decode_ok(r.sb.data, r.sb.size, &out);
            assert_int_equal(out.env.type, PX_MSG_CXLSYNC);
        } else {
            expect_decode_err(r.sb.data, r.sb.size, cases[i].want, cases[i].needle);
        }
        raw_fini(&r);
    }

    /* Required fields: pool, node and op. */
    static const char *req[] = {"pool", "node", "op"};
    for (size_t i = 0; i < 3; i++) {
        raw r;
        raw_init(&r);
        raw_env(&r, 1, PX_MSG_CXLSYNC);
        msgpack_pack_map(&r.pk, 2);
        for (size_t k = 0; k < 3; k++) {
            if (k == i)
                continue;
            raw_str(&r, req[k]);
            if (k == 1)
                raw_str(&r, "hb");
            else
                msgpack_pack_uint32(&r.pk, 1);
        }
        char needle[64];
        snprintf(needle, sizeof(needle), "required field \"%s\" missing", req[i]);
        expect_decode_err(r.sb.data, r.sb.size, PX_E_PROTO, needle);
        raw_fini(&r);
    }

    /* Records: up to PX_WIRE_MAX_SHM_BLOB, one byte more is refused both
     * ways. */
    uint8_t *blob = calloc(1, PX_WIRE_MAX_SHM_BLOB + 1);
    assert_non_null(blob);
    for (uint32_t len = PX_WIRE_MAX_SHM_BLOB; len <= PX_WIRE_MAX_SHM_BLOB + 1; len++) {
        raw r;
        raw_init(&r);
        raw_env(&r, 1, PX_MSG_CXLSYNC);
        msgpack_pack_map(&r.pk, 4);
        raw_str(&r, "pool");
        msgpack_pack_uint32(&r.pk, 1);
        raw_str(&r, "node");
        raw_str(&r, "ha");
        raw_str(&r, "op");
        msgpack_pack_uint32(&r.pk, PX_CXLSYNC_DIFF);
        raw_str(&r, "r");
        msgpack_pack_bin(&r.pk, len);
        msgpack_pack_bin_body(&r.pk, blob, len);
        if (len == PX_WIRE_MAX_SHM_BLOB) {
            px_msg out;
            expect_decode_ok(r.sb.data, r.sb.size, &out);
            assert_int_equal(out.body.cxlsync.recs.len, len);
        } else {
            expect_decode_err(r.sb.data, r.sb.size, PX_E_TOOBIG, "CXLSYNC.r");
        }
        raw_fini(&r);
    }

    /* The encoder refuses what the decoder would reject. */
    static char name[PX_WIRE_MAX_NAME + 1];
    memset(name, 'n', sizeof(name));
    px_msg m = wv_env(PX_MSG_CXLSYNC, 1, 2, 3);
    m.body.cxlsync.pool = 1;
    m.body.cxlsync.node = px_str_c("hb");
    m.body.cxlsync.op = 0;
    expect_encode_err(&m, PX_E_INVAL, "unknown op");
    m.body.cxlsync.op = PX_CXLSYNC_OP_MAX;
    expect_encode_err(&m, PX_E_INVAL, "unknown op");
    m.body.cxlsync.op = PX_CXLSYNC_DIFF;
    m.body.cxlsync.ld = PX_WIRE_MAX_CXL_LDS;
    expect_encode_err(&m, PX_E_INVAL, "ld 256");
    m.body.cxlsync.ld = PX_WIRE_MAX_CXL_LDS - 1;
    m.body.cxlsync.node = (px_str){name, PX_WIRE_MAX_NAME + 1};
    expect_encode_err(&m, PX_E_TOOBIG, "CXLSYNC.node");
    m.body.cxlsync.node = (px_str){name, PX_WIRE_MAX_NAME};
    m.body.cxlsync.recs = (px_bin){blob, PX_WIRE_MAX_SHM_BLOB + 1};
    expect_encode_err(&m, PX_E_TOOBIG, "CXLSYNC.r");
    m.body.cxlsync.recs = (px_bin){NULL, 1};
    expect_encode_err(&m, PX_E_INVAL, "NULL");
    m.body.cxlsync.recs = (px_bin){blob, PX_WIRE_MAX_SHM_BLOB};
    m.body.cxlsync.base = UINT64_MAX;
    px_wbuf b = {0};
    encode_ok(&b, &m);
    /* A full DIFF fits in one data-plane batch with room to spare. */
    assert_true(b.len + 1024 <= PX_DATA_PLANE_BATCH_BYTES);
    px_msg out;
    expect_decode_ok(b.data, b.len, &out);
    assert_int_equal(out.body.cxlsync.recs.len, PX_WIRE_MAX_SHM_BLOB);
    assert_int_equal(out.body.cxlsync.ld, PX_WIRE_MAX_CXL_LDS - 1);
    assert_true(out.body.cxlsync.base == UINT64_MAX);
    px_wbuf_fini(&b);
    free(blob);

    /* Zero fields are left out: a DIFF of LD 0 at base 0 with no records
     * is {pool, node, op}. */
    m = wv_env(PX_MSG_CXLSYNC, 0, 0, 0);
    m.body.cxlsync.pool = 9;
    m.body.cxlsync.node = px_str_c("h");
    m.body.cxlsync.op = PX_CXLSYNC_DIFF;
    encode_ok(&b, &m);
    static const char bare[] = "\x96\x01\x11\x00\x00\x00"      /* [1, CXLSYNC, 0, 0, 0, */
                               "\x83\xa4pool\x09\xa4node\xa1h" /* {"pool": 9, "node": "h", */
                               "\xa2op\x01";                   /* "op": DIFF}] */
    assert_int_equal(b.len, sizeof(bare) - 1);
    assert_memory_equal(b.data, bare, sizeof(bare) - 1);
    px_wbuf_fini(&b);
}

/* ---- bodies alone ---- */

static void test_decode_body(void **state)
{
    (void)state;
    px_wbuf b = {0};
    for (size_t i = 0; i < n_vec; i++) {
        const px_wire_struct *d = px_wire_body_desc(vec[i].env.type);
        px_wbuf_reset(&b);
        px_errmsg em = {{0}};
        assert_int_equal(px_wire_encode_struct(&b, d, &vec[i].body, &em), PX_OK);
        px_msg out;
        px_err err = px_wire_decode_body(vec[i].env.type, b.data, b.len, &out, &em);
        if (err)
            fail_msg("body %zu: %s", i, em.text);
        assert_int_equal(out.env.type, vec[i].env.type);
        assert_true(px_wire_struct_eq(d, &vec[i].body, &out.body));
        /* Every strict prefix is short; one byte more is trailing garbage. */
        assert_int_equal(px_wire_decode_body(vec[i].env.type, b.data, b.len - 1, &out, &em),
                         PX_E_TRUNCATED);
        uint8_t *more = malloc(b.len + 1);
        assert_non_null(more);
        memcpy(more, b.data, b.len);
        more[b.len] = 0;
        assert_int_equal(px_wire_decode_body(vec[i].env.type, more, b.len + 1, &out, &em),
                         PX_E_PROTO);
        assert_non_null(strstr(em.text, "trailing"));
        free(more);
    }
    px_msg out;
    px_errmsg em = {{0}};
    assert_int_equal(px_wire_decode_body(0, b.data, b.len, &out, &em), PX_E_UNKNOWN);
    assert_int_equal(px_wire_decode_body(PX_MSG_PROBE, (const uint8_t *)"\x90", 1, &out, &em),
                     PX_E_PROTO);
    assert_int_equal(px_wire_decode_body(PX_MSG_PROBE, NULL, 0, &out, &em), PX_E_TRUNCATED);
    /* Depth counts from the body's place in the envelope (2). */
    uint8_t bomb[16] = {0x81, 0xa1, 'x'};
    memset(bomb + 3, 0x91, 7);
    bomb[10] = 0x01;
    assert_int_equal(px_wire_decode_body(PX_MSG_PROBE, bomb, 11, &out, &em), PX_E_TOOBIG);
    px_wbuf_fini(&b);
}

/* ---- the extension point: arrays of sub-structs ---- */

typedef struct t_guest {
    px_str name;
    uint64_t mem;
    uint32_t n_tags;
    px_str tags[2];
} t_guest;

typedef struct t_plan {
    uint32_t id;
    uint32_t n_guests;
    t_guest guests[3];
} t_plan;

static const px_wire_field t_guest_fields[] = {
    PX_WF_STR("name", t_guest, name, 1, 8),
    PX_WF_U64("mem", t_guest, mem, 0),
    PX_WF_STR_ARRAY("tags", t_guest, tags, n_tags, 0, 4),
};
static const px_wire_struct t_guest_desc = PX_WIRE_STRUCT("GUEST", t_guest, t_guest_fields, NULL);
static const px_wire_field t_plan_fields[] = {
    PX_WF_U32("id", t_plan, id, 1),
    PX_WF_STRUCT_ARRAY("g", t_plan, guests, n_guests, 1, t_guest, &t_guest_desc),
};
static const px_wire_struct t_plan_desc = PX_WIRE_STRUCT("PLAN", t_plan, t_plan_fields, NULL);

static void test_struct_array_extension(void **state)
{
    (void)state;
    px_errmsg em = {{0}};
    assert_true(px_wire_table_ok(&t_plan_desc, &em));
    t_plan p = {.id = 7, .n_guests = 3};
    p.guests[0] = (t_guest){px_str_c("ecu1"), 256, 2, {px_str_c("a"), px_str_c("bb")}};
    p.guests[1] = (t_guest){px_str_c("ecu2"), 0, 0, {{0}}};
    p.guests[2] = (t_guest){px_str_c("gw"), UINT64_MAX, 1, {px_str_c("cccc")}};
    px_wbuf b = {0};
    assert_int_equal(px_wire_encode_struct(&b, &t_plan_desc, &p, &em), PX_OK);
    t_plan q;
    count_start();
    px_err err = px_wire_decode_struct(&t_plan_desc, b.data, b.len, &q, &em);
    assert_int_equal(count_stop(), 0);
    if (err)
        fail_msg("%s", em.text);
    assert_int_equal(q.id, 7);
    assert_int_equal(q.n_guests, 3);
    assert_true(px_str_eq(q.guests[2].name, "gw") && q.guests[2].mem == UINT64_MAX);
    assert_true(px_str_eq(q.guests[0].tags[1], "bb"));
    assert_true(px_wire_struct_eq(&t_plan_desc, &p, &q));
    q.guests[0].tags[1] = px_str_c("bc");
    assert_false(px_wire_struct_eq(&t_plan_desc, &p, &q));

    /* An element breaking its own rules is named with its index. */
    p.guests[1].name = px_str_c("far-too-long");
    assert_int_equal(px_wire_encode_struct(&b, &t_plan_desc, &p, &em), PX_E_TOOBIG);
    assert_non_null(strstr(em.text, "PLAN.g[1]"));
    p.guests[1].name = px_str_c("ecu2");
    p.n_guests = 4;
    assert_int_equal(px_wire_encode_struct(&b, &t_plan_desc, &p, &em), PX_E_TOOBIG);

    /* Decoding: more elements than the C array holds; element missing a
     * required field. */
    raw r;
    raw_init(&r);
    msgpack_pack_map(&r.pk, 2);
    raw_str(&r, "id");
    msgpack_pack_uint32(&r.pk, 1);
    raw_str(&r, "g");
    msgpack_pack_array(&r.pk, 4);
    for (int i = 0; i < 4; i++) {
        msgpack_pack_map(&r.pk, 1);
        raw_str(&r, "name");
        raw_str(&r, "x");
    }
    assert_int_equal(
        px_wire_decode_struct(&t_plan_desc, (const uint8_t *)r.sb.data, r.sb.size, &q, &em),
        PX_E_TOOBIG);
    assert_non_null(strstr(em.text, "PLAN.g"));
    raw_fini(&r);
    raw_init(&r);
    msgpack_pack_map(&r.pk, 2);
    raw_str(&r, "id");
    msgpack_pack_uint32(&r.pk, 1);
    raw_str(&r, "g");
    msgpack_pack_array(&r.pk, 2);
    msgpack_pack_map(&r.pk, 1);
    raw_str(&r, "name");
    raw_str(&r, "x");
    msgpack_pack_map(&r.pk, 1);
    raw_str(&r, "mem");
    msgpack_pack_uint32(&r.pk, 1);
    assert_int_equal(
        px_wire_decode_struct(&t_plan_desc, (const uint8_t *)r.sb.data, r.sb.size, &q, &em),
        PX_E_PROTO);
    assert_non_null(strstr(em.text, "PLAN.g[1]"));
    assert_non_null(strstr(em.text, "\"name\" missing"));
    raw_fini(&r);
    px_wbuf_fini(&b);
}

/* ---- tables, names, helpers ---- */

static const px_wire_field t_bad_fields[] = {
    PX_WF_U32("a", t_plan, id, 1),
    PX_WF_U32("a", t_plan, n_guests, 1),
};
static const px_wire_struct t_bad_desc = PX_WIRE_STRUCT("BAD", t_plan, t_bad_fields, NULL);
static const px_wire_field t_bad_sub_fields[] = {
    PX_WF_STRUCT_ARRAY("g", t_plan, guests, n_guests, 1, t_guest, &t_plan_desc),
};
static const px_wire_struct t_bad_sub_desc =
    PX_WIRE_STRUCT("BADSUB", t_plan, t_bad_sub_fields, NULL);

static void test_tables(void **state)
{
    (void)state;
    px_errmsg em = {{0}};
    for (uint32_t t = 1; t < PX_MSG_TYPE_MAX; t++) {
        const px_wire_struct *d = px_wire_body_desc(t);
        assert_non_null(d);
        if (!px_wire_table_ok(d, &em))
            fail_msg("%s", em.text);
        assert_true(d->size <= sizeof(((px_msg *)0)->body));
    }
    assert_null(px_wire_body_desc(0));
    assert_null(px_wire_body_desc(PX_MSG_TYPE_MAX));
    assert_null(px_wire_body_desc(UINT32_MAX));
    assert_false(px_wire_table_ok(&t_bad_desc, &em));
    assert_non_null(strstr(em.text, "duplicate key"));
    assert_false(px_wire_table_ok(&t_bad_sub_desc, &em));
    assert_non_null(strstr(em.text, "another size"));
}

static void test_names_and_strings(void **state)
{
    (void)state;
    assert_string_equal(px_msg_type_name(PX_MSG_HELLO), "HELLO");
    assert_string_equal(px_msg_type_name(PX_MSG_HEARTBEAT), "HEARTBEAT");
    assert_string_equal(px_msg_type_name(PX_MSG_ERROR), "ERROR");
    assert_string_equal(px_msg_type_name(PX_MSG_PROBE), "PROBE");
    assert_null(px_msg_type_name(0));
    assert_null(px_msg_type_name(PX_MSG_TYPE_MAX));

    px_str s = px_str_c("node");
    assert_int_equal(s.len, 4);
    assert_true(px_str_eq(s, "node"));
    assert_false(px_str_eq(s, "nod"));
    assert_false(px_str_eq(s, "nodes"));
    assert_false(px_str_eq(s, "NODE"));
    assert_false(px_str_eq(s, NULL));
    px_str e = px_str_c(NULL);
    assert_int_equal(e.len, 0);
    assert_true(px_str_eq(e, ""));
    assert_true(px_str_eq(e, NULL));
    /* A view that is not NUL-terminated compares by its length only. */
    px_str part = {"nodeXYZ", 4};
    assert_true(px_str_eq(part, "node"));
}

static void test_wbuf(void **state)
{
    (void)state;
    px_wbuf b = {0};
    encode_ok(&b, &vec[0]);
    size_t one = b.len;
    encode_ok(&b, &vec[0]);
    assert_int_equal(b.len, 2 * one);
    assert_memory_equal(b.data, b.data + one, one);
    uint8_t *data = b.data;
    size_t cap = b.cap;
    px_wbuf_reset(&b);
    assert_int_equal(b.len, 0);
    encode_ok(&b, &vec[0]);
    assert_ptr_equal(b.data, data); /* reset keeps the memory */
    assert_int_equal(b.cap, cap);
    px_wbuf_fini(&b);
    assert_null(b.data);
    assert_int_equal(b.len + b.cap, 0);
    px_wbuf_fini(&b); /* twice is harmless */
    px_wbuf_reset(NULL);
    px_wbuf_fini(NULL);

    px_errmsg em = {{0}};
    size_t used;
    px_msg out;
    assert_int_equal(px_wire_encode(NULL, &vec[0], &em), PX_E_INVAL);
    assert_int_equal(px_wire_decode(NULL, 5, &used, &out, &em), PX_E_INVAL);
    expect_decode_err(NULL, 0, PX_E_TRUNCATED, "empty");
}

int main(void)
{
    alloc_hooks_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_counter_works),
        cmocka_unit_test(test_roundtrip_all_vectors),
        cmocka_unit_test(test_golden_bytes),
        cmocka_unit_test(test_msgpack_c_agrees),
        cmocka_unit_test(test_noncanonical_accepted),
        cmocka_unit_test(test_every_prefix_truncated),
        cmocka_unit_test(test_array32_huge_claim),
        cmocka_unit_test(test_huge_claims),
        cmocka_unit_test(test_depth_bomb),
        cmocka_unit_test(test_oversize_message),
        cmocka_unit_test(test_wrong_version),
        cmocka_unit_test(test_envelope_shape),
        cmocka_unit_test(test_unknown_type),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_missing_required),
        cmocka_unit_test(test_wrong_types_and_ranges),
        cmocka_unit_test(test_field_limits_on_decode),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_encode_limits),
        cmocka_unit_test(test_shm),
        cmocka_unit_test(test_cxl),
        cmocka_unit_test(test_cxlsync),
        cmocka_unit_test(test_decode_body),
        cmocka_unit_test(test_struct_array_extension),
        cmocka_unit_test(test_tables),
        cmocka_unit_test(test_names_and_strings),
        cmocka_unit_test(test_wbuf),
    };
    return cmocka_run_group_tests_name("wire", tests, setup_vectors, NULL);
}
