/* Unit tests: fabric/can-bus/gateway — cangw filter and modification
 * syntax, rule application, counters; and gateways in the topology loader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "coordinator/topology.h"
#include "fabric/can-bus/gateway.h"

#define ZERO64                                                                                     \
    "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" \
    "000000000000000000000000000000000000"

static px_can_frame frame(uint32_t id, uint8_t len, uint8_t fill)
{
    px_can_frame f;
    memset(&f, 0, sizeof(f));
    f.can_id = id;
    f.len = len;
    for (unsigned i = 0; i < len; i++)
        f.data[i] = (uint8_t)(fill + i);
    return f;
}

static px_can_frame fdframe(uint32_t id, uint8_t len, uint8_t flags)
{
    px_can_frame f = frame(id, len, 0x40);
    f.flags = PX_CANFD_FDF | flags;
    return f;
}

static px_cangw_mod mod(const char *s)
{
    px_cangw_mod m;
    px_errmsg em = {{0}};
    if (px_cangw_parse_mod(s, strlen(s), &m, &em) != PX_OK)
        fail_msg("%s should parse: %s", s, em.text);
    return m;
}

/* ---- filters ---- */

static void test_filter_accept(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint32_t id, mask;
        bool inv;
        const char *canon;
    } ok[] = {
        {"123:7FF", 0x123, 0x7ff, false, "123:7FF"},
        {"123:7ff", 0x123, 0x7ff, false, "123:7FF"},
        {"0:0", 0, 0, false, "000:0"},
        {"7~700", 0x7, 0x700, true, "007~700"},
        {"12345678:1FFFFFFF", 0x92345678u, 0x1fffffff, false, "92345678:1FFFFFFF"},
        {"00000123:DFFFFFFF", 0x80000123u, 0xdfffffffu, false, "80000123:DFFFFFFF"},
        {"1234567:C00007FF", 0x1234567, 0xc00007ffu, false, "1234567:C00007FF"},
        {"80000123~FFFFFFFF", 0x80000123u, 0xffffffffu, true, "80000123~FFFFFFFF"},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        px_cangw_filter f, g;
        px_errmsg em = {{0}};
        if (px_cangw_parse_filter(ok[i].s, strlen(ok[i].s), &f, &em) != PX_OK)
            fail_msg("%s: %s", ok[i].s, em.text);
        assert_int_equal(f.id, ok[i].id);
        assert_int_equal(f.mask, ok[i].mask);
        assert_int_equal(f.inverted, ok[i].inv);
        char buf[PX_CANGW_FILTER_MAX];
        assert_int_equal(px_cangw_format_filter(&f, buf, sizeof(buf)), PX_OK);
        assert_string_equal(buf, ok[i].canon);
        assert_int_equal(px_cangw_parse_filter(buf, strlen(buf), &g, &em), PX_OK);
        assert_memory_equal(&f, &g, sizeof(f));
    }
    char tiny[4];
    px_cangw_filter f = {0x123, 0x7ff, false};
    assert_int_equal(px_cangw_format_filter(&f, tiny, sizeof(tiny)), PX_E_TOOBIG);
}

static void test_filter_reject(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        const char *want;
    } bad[] = {
        {"", "character 1 (end of text): not a hex digit"},
        {"10G:7FF", "character 3 ('G'): not a hex digit"},
        {"123", "character 4 (end of text): ':' or '~' must follow the id"},
        {"123;7FF", "character 4 (';'): ':' or '~' must follow the id"},
        {"123:", "character 5 (end of text): not a hex digit"},
        {"123456789:1", "character 9 ('9'): the id has more than 8 hex digits"},
        {"1:123456789", "character 11 ('9'): the mask has more than 8 hex digits"},
        {"123:7FF ", "character 8 (' '): nothing may follow the mask"},
        {"123:7FG", "character 7 ('G'): not a hex digit"},
        {"0x123:7FF", "character 2 ('x'): not a hex digit"},
        {"-1:0", "character 1 ('-'): not a hex digit"},
        {"1:\n", "character 3 (byte 0x0A): not a hex digit"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        px_cangw_filter f;
        px_errmsg em = {{0}};
        assert_int_equal(px_cangw_parse_filter(bad[i].s, strlen(bad[i].s), &f, &em), PX_E_CONFIG);
        if (!strstr(em.text, bad[i].want) || !strstr(em.text, "expected <id>:<mask>"))
            fail_msg("\"%s\": want '%s', got: %s", bad[i].s, bad[i].want, em.text);
        assert_int_equal(f.mask, 0);
        assert_false(f.inverted);
    }
    /* Exact message, control characters escaped in the quote. */
    px_cangw_filter f;
    px_errmsg em = {{0}};
    px_cangw_parse_filter("1\"2", 3, &f, &em);
    assert_string_equal(em.text, "filter \"1\\x222\" character 2 ('\"'): ':' or '~' must follow "
                                 "the id; expected <id>:<mask> or <id>~<mask> in hex, like "
                                 "123:7FF or 12345678:1FFFFFFF");
}

static void test_filter_match(void **state)
{
    (void)state;
    px_cangw_filter f;
    px_errmsg em;
    assert_int_equal(px_cangw_parse_filter("100:700", 7, &f, &em), PX_OK);
    assert_true(px_cangw_filter_match(&f, 0x123));
    assert_true(px_cangw_filter_match(&f, 0x1ff));
    assert_false(px_cangw_filter_match(&f, 0x223));
    assert_true(px_cangw_filter_match(&f, PX_CAN_EFF_FLAG | 0x100)); /* mask has no EFF bit */
    /* With EFF and RTR in the mask (cangw's own example). */
    assert_int_equal(px_cangw_parse_filter("123:C00007FF", 12, &f, &em), PX_OK);
    assert_true(px_cangw_filter_match(&f, 0x123));
    assert_false(px_cangw_filter_match(&f, 0x123 | PX_CAN_RTR_FLAG));
    assert_false(px_cangw_filter_match(&f, 0x123 | PX_CAN_EFF_FLAG));
    /* An 8-digit id is an extended one. */
    assert_int_equal(px_cangw_parse_filter("18DAF110:9FFFFFFF", 17, &f, &em), PX_OK);
    assert_true(px_cangw_filter_match(&f, PX_CAN_EFF_FLAG | 0x18daf110));
    assert_false(px_cangw_filter_match(&f, 0x110));
    /* Inverted. */
    assert_int_equal(px_cangw_parse_filter("100~700", 7, &f, &em), PX_OK);
    assert_false(px_cangw_filter_match(&f, 0x123));
    assert_true(px_cangw_filter_match(&f, 0x223));
    /* The default filter passes everything. */
    px_cangw_rule r;
    px_cangw_rule_init(&r, 0, 1);
    assert_true(px_cangw_filter_match(&r.filter, 0));
    assert_true(px_cangw_filter_match(&r.filter, PX_CAN_EFF_FLAG | 0x1fffffff));
}

/* ---- modifications ---- */

static void test_mod_accept(void **state)
{
    (void)state;
    px_cangw_mod m = mod("SET:IL:333.4.1122334455667788");
    assert_int_equal(m.op, PX_CANGW_SET);
    assert_int_equal(m.what, PX_CANGW_MOD_ID | PX_CANGW_MOD_LEN);
    assert_false(m.fd_form);
    assert_int_equal(m.can_id, 0x333);
    assert_int_equal(m.len, 4);
    static const uint8_t d[8] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};
    assert_memory_equal(m.data, d, 8);

    m = mod("XOR:DLI:80000000.f.ffeeddccbbaa9988");
    assert_int_equal(m.op, PX_CANGW_XOR);
    assert_int_equal(m.what, PX_CANGW_MOD_ID | PX_CANGW_MOD_LEN | PX_CANGW_MOD_DATA);
    assert_int_equal(m.can_id, 0x80000000u);
    assert_int_equal(m.len, 15);

    m = mod("OR:IFLD:0.3.40." ZERO64);
    assert_true(m.fd_form);
    assert_int_equal(m.what, 0x0f);
    assert_int_equal(m.flags, PX_CANFD_BRS | PX_CANFD_ESI);
    assert_int_equal(m.len, 0x40);
    m = mod("SET:L:0.0.30." ZERO64); /* 48 is an FD length */
    assert_int_equal(m.len, 48);

    /* Canonical text round-trips. */
    static const char *const forms[] = {
        "SET:IL:333.4.1122334455667788", "AND:D:000.0.FF00FF00FF00FF00",
        "XOR:ILD:80000000.F.FFEEDDCCBBAA9988", "OR:IFLD:000.3.40." ZERO64, "AND:F:000.1.0." ZERO64};
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        px_cangw_mod a = mod(forms[i]), b;
        char buf[PX_CANGW_MOD_MAX];
        assert_int_equal(px_cangw_format_mod(&a, buf, sizeof(buf)), PX_OK);
        assert_string_equal(buf, forms[i]);
        b = mod(buf);
        assert_memory_equal(&a, &b, sizeof(a));
        assert_int_equal(px_cangw_format_mod(&a, buf, strlen(forms[i])), PX_E_TOOBIG);
    }
}

static void test_mod_reject(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        const char *want;
    } bad[] = {
        {"NOP:I:1.0.0000000000000000", "character 1 ('N'): the text must start AND:"},
        {"SET", "character 4 (end of text): the text must start AND:"},
        {"set:I:1.0.0000000000000000", "character 1 ('s')"},
        {"SETX:I:1.0.0000000000000000", "character 1 ('S')"},
        {"SET:X:1.0.0000000000000000", "character 5 ('X'): what to modify is one or more"},
        {"SET:II:1.0.0000000000000000", "character 6 ('I'): given twice"},
        {"SET::1.0.0000000000000000", "character 5 (':'): what to modify (I, L, D, F) must"},
        {"SET:I", "character 6 (end of text): the values must follow"},
        {"SET:I:1.0", "character 10 (end of text): the values are <can_id>.<len>.<data>"},
        {"SET:I:1.0.0.0.0", "character 14 ('.'): one '.' too many"},
        {"SET:F:1.0.0000000000000000", "character 5 ('F'): F (flags) needs the FD form"},
        {"SET:I:.0.0000000000000000", "character 7 ('.'): not a hex digit of the can_id"},
        {"SET:I:123456789.0.0000000000000000", "character 15 ('9'): the can_id has more than 8"},
        {"SET:I:12G.0.0000000000000000", "character 9 ('G'): not a hex digit of the can_id"},
        {"SET:I:1.10.0000000000000000", "character 10 ('0'): the len has more than 1 hex"},
        {"SET:L:1.9.0000000000000000", "character 9 ('9'): SET gives an invalid len: 0..8"},
        {"SET:L:1.0.D." ZERO64, "character 11 ('D'): SET gives an invalid len: an FD length"},
        {"SET:F:1.4.0." ZERO64, "character 9 ('4'): flags other than BRS (1) and ESI (2)"},
        {"SET:D:1.0.00112233445566", "character 25 (end of text): the data is exactly 16"},
        {"SET:D:1.0.001122334455667788", "character 27 ('8'): the data is exactly 16"},
        {"SET:D:1.0.00112233445566ZZ", "character 25 ('Z'): the data is exactly 16"},
        {"SET:D:1.0.0.00", "character 15 (end of text): the data is exactly 128"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        px_cangw_mod m, zero;
        memset(&zero, 0, sizeof(zero));
        px_errmsg em = {{0}};
        assert_int_equal(px_cangw_parse_mod(bad[i].s, strlen(bad[i].s), &m, &em), PX_E_CONFIG);
        if (!strstr(em.text, bad[i].want) || !strstr(em.text, "expected <op>:<what>:"))
            fail_msg("\"%s\": want '%s', got: %s", bad[i].s, bad[i].want, em.text);
        assert_memory_equal(&m, &zero, sizeof(m));
    }
    /* AND, OR and XOR may carry any 4-bit len (the kernel's mask values). */
    mod("AND:L:0.F.0000000000000000");
    mod("OR:L:0.9.0000000000000000");
}

static void test_rule_mods(void **state)
{
    (void)state;
    px_cangw_rule r;
    px_errmsg em = {{0}};
    px_cangw_rule_init(&r, 3, 4);
    assert_int_equal(r.src_bus, 3);
    assert_int_equal(r.dst_bus, 4);
    assert_int_equal(r.hops, 1);
    px_cangw_mod set = mod("SET:I:5.0.0000000000000000"), and = mod("AND:D:0.0.FFFFFFFFFFFFFFFF");
    px_cangw_mod xor = mod("XOR:D:0.0.0100000000000000"), fd = mod("OR:F:0.1.0." ZERO64);
    assert_int_equal(px_cangw_add_mod(&r, &set, &em), PX_OK);
    assert_int_equal(px_cangw_add_mod(&r, &xor, &em), PX_OK);
    assert_int_equal(px_cangw_add_mod(&r, &and, &em), PX_OK);
    assert_int_equal(r.n_mods, 3);
    assert_int_equal(r.mods[0].op, PX_CANGW_AND); /* kernel order, not written order */
    assert_int_equal(r.mods[1].op, PX_CANGW_XOR);
    assert_int_equal(r.mods[2].op, PX_CANGW_SET);
    assert_int_equal(px_cangw_add_mod(&r, &set, &em), PX_E_EXISTS);
    assert_non_null(strstr(em.text, "two SET modifications; expected each"));
    assert_int_equal(px_cangw_add_mod(&r, &fd, &em), PX_E_CONFIG);
    assert_non_null(strstr(em.text, "FD form on a rule without fd"));
    assert_int_equal(r.n_mods, 3);
    r.fd = true;
    assert_int_equal(px_cangw_add_mod(&r, &fd, &em), PX_OK);
    assert_int_equal(r.mods[1].op, PX_CANGW_OR);
    assert_int_equal(r.n_mods, PX_CANGW_MAX_MODS);
}

/* ---- applying rules ---- */

static void test_apply(void **state)
{
    (void)state;
    px_cangw gw = {0};
    px_cangw_rule_init(&gw.rule, 0, 1);
    px_can_frame in = frame(0x123, 8, 1), out;
    px_errmsg em;

    /* Default: every classic frame, unchanged; FD frames and error frames not. */
    assert_int_equal(px_cangw_route(&gw, &in, 0, &out), PX_CANGW_FORWARD);
    assert_memory_equal(&in, &out, sizeof(in));
    px_can_frame fdf = fdframe(0x123, 12, PX_CANFD_BRS);
    assert_int_equal(px_cangw_route(&gw, &fdf, 0, &out), PX_CANGW_FILTERED);
    px_can_frame ef = frame(PX_CAN_ERR_FLAG | 0x8, 8, 0);
    assert_int_equal(px_cangw_route(&gw, &ef, 0, &out), PX_CANGW_FILTERED);
    /* Hops: the default forwards only frames no gateway has touched. */
    assert_int_equal(px_cangw_route(&gw, &in, 1, &out), PX_CANGW_HOP_LIMIT);
    px_can_frame zero;
    memset(&zero, 0, sizeof(zero));
    assert_memory_equal(&out, &zero, sizeof(out));
    gw.rule.hops = 3;
    assert_int_equal(px_cangw_route(&gw, &in, 2, &out), PX_CANGW_FORWARD);
    assert_int_equal(px_cangw_route(&gw, &in, 3, &out), PX_CANGW_HOP_LIMIT);
    gw.rule.hops = 1;

    /* Filter and SET:I, the README example. */
    assert_int_equal(px_cangw_parse_filter("100:700", 7, &gw.rule.filter, &em), PX_OK);
    px_cangw_mod m = mod("SET:I:200.0.0000000000000000");
    assert_int_equal(px_cangw_add_mod(&gw.rule, &m, &em), PX_OK);
    assert_int_equal(px_cangw_route(&gw, &in, 0, &out), PX_CANGW_FORWARD);
    assert_int_equal(out.can_id, 0x200);
    assert_memory_equal(out.data, in.data, 8);
    px_can_frame other = frame(0x323, 1, 0);
    assert_int_equal(px_cangw_route(&gw, &other, 0, &out), PX_CANGW_FILTERED);

    assert_int_equal(gw.stats.forwarded, 3);
    assert_int_equal(gw.stats.filtered, 3);
    assert_int_equal(gw.stats.hop_limited, 2);
    assert_int_equal(gw.stats.invalid, 0);

    /* in and out may be one frame. */
    px_can_frame same = in;
    assert_int_equal(px_cangw_apply(&gw.rule, &same, 0, &same), PX_CANGW_FORWARD);
    assert_int_equal(same.can_id, 0x200);
}

static void test_apply_rewrites(void **state)
{
    (void)state;
    px_cangw_rule r;
    px_errmsg em;
    px_can_frame in, out;

    /* AND, OR, XOR, SET in kernel order on len and data; bytes past the
     * new len are cleared. */
    px_cangw_rule_init(&r, 0, 1);
    px_cangw_mod a = mod("AND:D:0.0.F0F0F0F0F0F0F0F0"), o = mod("OR:D:0.0.0F00000000000000");
    px_cangw_mod x = mod("XOR:D:0.0.FF00000000000000"), s = mod("SET:L:0.2.0000000000000000");
    px_cangw_add_mod(&r, &s, &em);
    px_cangw_add_mod(&r, &x, &em);
    px_cangw_add_mod(&r, &o, &em);
    px_cangw_add_mod(&r, &a, &em);
    in = frame(0x10, 8, 0x11); /* 11 12 13 14 15 16 17 18 */
    assert_int_equal(px_cangw_apply(&r, &in, 0, &out), PX_CANGW_FORWARD);
    assert_int_equal(out.len, 2);
    assert_int_equal(out.data[0], ((0x11 & 0xf0) | 0x0f) ^ 0xff); /* 0xE0 */
    assert_int_equal(out.data[1], 0x12 & 0xf0);
    for (unsigned i = 2; i < PX_CANFD_MAX_DLEN; i++)
        assert_int_equal(out.data[i], 0);
    assert_int_equal(px_can_check(&out, true), PX_CAN_OK);

    /* OR on len past 8: not a frame, not forwarded. */
    px_cangw_rule_init(&r, 0, 1);
    o = mod("OR:L:0.9.0000000000000000");
    px_cangw_add_mod(&r, &o, &em);
    in = frame(0x10, 8, 0);
    assert_int_equal(px_cangw_apply(&r, &in, 0, &out), PX_CANGW_INVALID);

    /* An AND that strips EFF from a 29-bit id: invalid, counted. */
    px_cangw gw = {0};
    px_cangw_rule_init(&gw.rule, 0, 1);
    a = mod("AND:I:7FFFFFFF.0.0000000000000000");
    px_cangw_add_mod(&gw.rule, &a, &em);
    in = frame(PX_CAN_EFF_FLAG | 0x12345, 1, 0);
    assert_int_equal(px_cangw_route(&gw, &in, 0, &out), PX_CANGW_INVALID);
    in = frame(PX_CAN_EFF_FLAG | 0x123, 1, 0); /* fits 11 bits: becomes standard */
    assert_int_equal(px_cangw_route(&gw, &in, 0, &out), PX_CANGW_FORWARD);
    assert_int_equal(out.can_id, 0x123);
    assert_int_equal(gw.stats.invalid, 1);
    assert_int_equal(gw.stats.forwarded, 1);

    /* A modification that makes an error frame: never forwarded. */
    px_cangw_rule_init(&r, 0, 1);
    o = mod("OR:I:20000000.0.0000000000000000");
    px_cangw_add_mod(&r, &o, &em);
    in = frame(0x10, 8, 0);
    assert_int_equal(px_cangw_apply(&r, &in, 0, &out), PX_CANGW_INVALID);

    /* A remote frame keeps no data whatever SET:D says. */
    px_cangw_rule_init(&r, 0, 1);
    s = mod("SET:D:0.0.1122334455667788");
    px_cangw_add_mod(&r, &s, &em);
    in = frame(PX_CAN_RTR_FLAG | 0x10, 0, 0);
    in.len = 4;
    assert_int_equal(px_cangw_apply(&r, &in, 0, &out), PX_CANGW_FORWARD);
    assert_int_equal(out.len, 4);
    assert_int_equal(out.data[0], 0);

    /* FD rules: classic-form data touches bytes 0..7; XOR on len to 13 is
     * invalid; flags keep FDF and only take BRS/ESI; a classic frame
     * that gets BRS is invalid. */
    px_cangw_rule_init(&r, 0, 1);
    r.fd = true;
    s = mod("SET:D:0.0.AAAAAAAAAAAAAAAA");
    px_cangw_add_mod(&r, &s, &em);
    in = fdframe(0x10, 12, 0);
    assert_int_equal(px_cangw_apply(&r, &in, 0, &out), PX_CANGW_FORWARD);
    assert_int_equal(out.flags, PX_CANFD_FDF);
    assert_int_equal(out.data[7], 0xaa);
    assert_int_equal(out.data[8], in.data[8]);
    x = mod("XOR:L:0.1.0000000000000000");
    px_cangw_add_mod(&r, &x, &em);
    assert_int_equal(px_cangw_apply(&r, &in, 0, &out), PX_CANGW_INVALID);

    px_cangw_rule_init(&r, 0, 1);
    r.fd = true;
    s = mod("SET:F:0.1.0." ZERO64);
    px_cangw_add_mod(&r, &s, &em);
    in = fdframe(0x10, 64, PX_CANFD_ESI);
    assert_int_equal(px_cangw_apply(&r, &in, 0, &out), PX_CANGW_FORWARD);
    assert_int_equal(out.flags, PX_CANFD_FDF | PX_CANFD_BRS);
    in = frame(0x10, 8, 0);
    assert_int_equal(px_cangw_apply(&r, &in, 0, &out), PX_CANGW_INVALID);

    /* FD-form data covers 64 bytes. */
    px_cangw_rule_init(&r, 0, 1);
    r.fd = true;
    char text[PX_CANGW_MOD_MAX];
    snprintf(text, sizeof(text), "XOR:D:0.0.0.%.126s01", ZERO64);
    x = mod(text);
    px_cangw_add_mod(&r, &x, &em);
    in = fdframe(0x10, 64, 0);
    assert_int_equal(px_cangw_apply(&r, &in, 0, &out), PX_CANGW_FORWARD);
    assert_int_equal(out.data[63], in.data[63] ^ 1);
    assert_int_equal(out.data[62], in.data[62]);

    assert_string_equal(px_cangw_result_str(PX_CANGW_HOP_LIMIT), "hop-limit");
    assert_string_equal(px_cangw_result_str((px_cangw_result)42), "?");
}

/* ---- topology ---- */

static void test_topology_gateways(void **state)
{
    (void)state;
    static const char yaml[] = "name: x\n"
                               "nets:\n"
                               "  body: {type: can_bus}\n"
                               "  chassis:\n"
                               "    type: can_bus\n"
                               "    gateways:\n"
                               "      - to: body\n"
                               "        filter: \"100:700\"\n"
                               "        modify: [\"SET:I:200.0.0000000000000000\"]\n"
                               "      - {to: body, hops: 8, filter: 12345678~1FFFFFFF}\n"
                               "  pt: {type: can_bus, fd: true, gateways: [{to: fd2, fd: true}]}\n"
                               "  fd2: {type: can_bus, fd: true}\n"
                               "nodes: {a: {image: builtin:tiny, can: [chassis]}}\n";
    px_topo *t = NULL;
    px_errmsg em = {{0}};
    if (px_topo_load_buffer("t.yaml", yaml, strlen(yaml), &t, &em) != PX_OK)
        fail_msg("%s", em.text);
    px_topo_ref body, chassis, pt, fd2;
    assert_true(px_topo_find_net(t, "body", &body));
    assert_true(px_topo_find_net(t, "chassis", &chassis));
    assert_true(px_topo_find_net(t, "pt", &pt));
    assert_true(px_topo_find_net(t, "fd2", &fd2));
    assert_int_equal(t->can_buses[body.index].n_gateways, 0);
    const px_topo_can_bus *b = &t->can_buses[chassis.index];
    assert_int_equal(b->n_gateways, 2);
    const px_cangw_rule *r = &b->gateways[0].rule;
    assert_int_equal(r->src_bus, chassis.index);
    assert_int_equal(r->dst_bus, body.index);
    assert_int_equal(r->filter.id, 0x100);
    assert_int_equal(r->filter.mask, 0x700);
    assert_int_equal(r->n_mods, 1);
    assert_int_equal(r->mods[0].op, PX_CANGW_SET);
    assert_int_equal(r->mods[0].can_id, 0x200);
    assert_false(r->fd);
    assert_int_equal(r->hops, 1);
    assert_int_equal(b->gateways[0].mark.line, 7);
    assert_int_equal(b->gateways[0].mark.col, 9);
    r = &b->gateways[1].rule;
    assert_int_equal(r->hops, 8);
    assert_true(r->filter.inverted);
    assert_int_equal(r->filter.id, 0x92345678u);
    assert_int_equal(r->n_mods, 0);
    r = &t->can_buses[pt.index].gateways[0].rule;
    assert_true(r->fd);
    assert_int_equal(r->dst_bus, fd2.index);

    /* The rule the loader made routes like the example says. */
    px_can_frame in = frame(0x123, 2, 7), out;
    assert_int_equal(px_cangw_apply(&b->gateways[0].rule, &in, 0, &out), PX_CANGW_FORWARD);
    assert_int_equal(out.can_id, 0x200);
    px_topo_free(t);

    /* Errors the bad/ files do not cover. */
    static const struct {
        const char *yaml;
        const char *want;
    } bad[] = {
        {"name: x\nnodes: {g: {image: builtin:tiny}}\nnets: {a: {type: can_bus, gateways: {to: "
         "a}}}\n",
         "t.yaml:3:37: wrong type for gateways: got a mapping; expected a list"},
        {"name: x\nnodes: {g: {image: builtin:tiny}}\nnets: {a: {type: can_bus, gateways: [~]}}\n",
         "t.yaml:3:38: empty gateway; expected {to: BUS"},
        {"name: x\nnodes: {g: {image: builtin:tiny}}\nnets: {a: {type: can_bus, gateways: [{to: b, "
         "modify: \"SET:I:1.0.00\"}]}, "
         "b: {type: can_bus}}\n",
         "t.yaml:3:54: wrong type for modify: got a single value; expected a list"},
        {"name: x\nnodes: {g: {image: builtin:tiny}}\nnets: {a: {type: can_bus, gateways: [{to: b, "
         "modify: [a, b, c, d, e]}]}, "
         "b: {type: can_bus}}\n",
         "modify has 5 entries; expected at most 4"},
        {"name: x\nnodes: {g: {image: builtin:tiny}}\nnets: {a: {type: can_bus, gateways: [{to: b, "
         "modify: [\"SET:I:1.0.00\"]}]}, "
         "b: {type: can_bus}}\n",
         "t.yaml:3:55: gateway modification \"SET:I:1.0.00\" character 13 (end of text): the "
         "data is exactly 16 hex digits"},
        {"name: x\nnodes: {g: {image: builtin:tiny}}\nnets: {a: {type: can_bus, gateways: [{to: b, "
         "modify: "
         "[\"OR:I:1.0.0000000000000000\", \"OR:D:1.0.0000000000000000\"]}]}, b: {type: can_bus}}\n",
         "gateway two OR modifications; expected each of AND, OR, XOR, SET at most once"},
        {"name: x\nnodes: {g: {image: builtin:tiny}}\nnets: {a: {type: can_bus, gateways: [{to: b, "
         "fd: maybe}]}, b: {type: "
         "can_bus}}\n",
         "t.yaml:3:50: "},
        {"name: x\nnodes: {g: {image: builtin:tiny}}\nnets: {a: {type: can_bus, gateways: [{to: "
         "a1}]}, a1: {type: ivshmem}}\n",
         "gateway destination \"a1\" is an ivshmem, not a can_bus"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        t = (px_topo *)1;
        memset(&em, 0, sizeof(em));
        px_err err = px_topo_load_buffer("t.yaml", bad[i].yaml, strlen(bad[i].yaml), &t, &em);
        assert_true(err == PX_E_CONFIG || err == PX_E_TOOBIG);
        assert_null(t);
        if (!strstr(em.text, bad[i].want))
            fail_msg("case %zu: want '%s', got: %s", i, bad[i].want, em.text);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filter_accept),
        cmocka_unit_test(test_filter_reject),
        cmocka_unit_test(test_filter_match),
        cmocka_unit_test(test_mod_accept),
        cmocka_unit_test(test_mod_reject),
        cmocka_unit_test(test_rule_mods),
        cmocka_unit_test(test_apply),
        cmocka_unit_test(test_apply_rewrites),
        cmocka_unit_test(test_topology_gateways),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
