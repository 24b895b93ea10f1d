/* Unit tests: fabric/can-bus/timing (exact CAN frame length on the wire).
 *
 * Expected values are derived by hand in the comments, from the CRC
 * catalogue check values (Greg Cook's "Catalogue of parametrised CRC
 * algorithms": CRC-15/CAN 0x059E, CRC-17/CAN-FD 0x04F03, CRC-21/CAN-FD
 * 0x0ED841 for "123456789"), and from the worst-case stuffing bound of
 * Davis et al. 2007 (135 bits for 8 bytes standard, 160 extended,
 * intermission included). The CRC of frames is cross-checked against a
 * polynomial long division written here, independent of the module's
 * shift register. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fabric/can-bus/timing.h"

static px_can_frame mk(uint32_t can_id, uint8_t flags, unsigned len, uint8_t fill)
{
    px_can_frame f;
    memset(&f, 0, sizeof(f));
    f.can_id = can_id;
    f.flags = flags;
    f.len = (uint8_t)len;
    if (!(can_id & PX_CAN_RTR_FLAG))
        memset(f.data, fill, len);
    return f;
}

static px_can_bitlen timing_ok(const px_can_frame *f)
{
    px_can_bitlen bl;
    px_errmsg em = {{0}};
    px_err err = px_can_timing(f, &bl, &em);
    if (err)
        fprintf(stderr, "px_can_timing: %s\n", em.text);
    assert_int_equal(err, PX_OK);
    return bl;
}

/* "0101" -> {0,1,0,1} */
static size_t to_bits(const char *s, uint8_t *out)
{
    size_t n = 0;
    for (; *s; s++)
        if (*s == '0' || *s == '1')
            out[n++] = (uint8_t)(*s - '0');
    return n;
}

static void assert_bits(const uint8_t *got, const char *want)
{
    uint8_t w[PX_CAN_MAX_WIRE_BITS];
    size_t n = to_bits(want, w);
    for (size_t i = 0; i < n; i++) {
        if (got[i] != w[i])
            fail_msg("bit %zu: got %u, want %u (want %s)", i, got[i], w[i], want);
    }
}

/* CRC by polynomial long division of msg * x^width by the generator
 * (given with its top bit), as a textbook would do it. */
static uint32_t crc_longdiv(const uint8_t *msg, size_t n, unsigned width, uint32_t gen)
{
    uint8_t m[PX_CAN_MAX_WIRE_BITS + 32];
    memcpy(m, msg, n);
    memset(m + n, 0, width);
    for (size_t i = 0; i < n; i++)
        if (m[i])
            for (unsigned j = 0; j <= width; j++)
                m[i + j] ^= (gen >> (width - j)) & 1u;
    uint32_t r = 0;
    for (unsigned j = 0; j < width; j++)
        r = r << 1 | m[n + j];
    return r;
}

static void test_crc_catalogue_check_values(void **state)
{
    (void)state;
    uint8_t b[72];
    const char *s = "123456789";
    for (int i = 0; i < 9; i++)
        for (int k = 0; k < 8; k++)
            b[i * 8 + k] = (uint8_t)((s[i] >> (7 - k)) & 1);
    assert_int_equal(px_can_crc(15, 0, b, 72), 0x059e);
    assert_int_equal(px_can_crc(17, 0, b, 72), 0x04f03);
    assert_int_equal(px_can_crc(21, 0, b, 72), 0x0ed841);
    assert_int_equal(crc_longdiv(b, 72, 15, 0xc599), 0x059e);
    assert_int_equal(crc_longdiv(b, 72, 17, 0x3685b), 0x04f03);
    assert_int_equal(crc_longdiv(b, 72, 21, 0x302899), 0x0ed841);
    assert_int_equal(px_can_crc(16, 0, b, 72), 0); /* no such CAN CRC */
}

/* Standard data frame, id 0, one byte 0x00, worked by hand:
 *   SOF 0 | id 00000000000 | RTR 0 IDE 0 r0 0 | DLC 0001 | 00000000 | CRC
 * CRC-15 over those 27 bits is 0x4426 = 100010000100110 (long division).
 * Stuffing: 15 zeros, then DLC 0001: 00000[1]00000[1]00000[1]000 1; the
 * data 00000[1]000; the CRC has no run of 5 (the stuff bit before "000"
 * begins a run of ones of length 1). 4 stuff bits; 42 + 4 = 46 stuffed
 * bits, then delimiter, ACK, delimiter, EOF 7, intermission 3: 59. */
static void test_classic_hand_computed_frame(void **state)
{
    (void)state;
    px_can_frame f = mk(0x000, 0, 1, 0x00);
    uint8_t bits[PX_CAN_MAX_WIRE_BITS];
    size_t n;
    px_can_bitlen bl;
    px_errmsg em;
    assert_int_equal(px_can_wire_bits(&f, bits, sizeof(bits), &n, &bl, &em), PX_OK);

    uint8_t raw[64];
    size_t rn = to_bits("0 00000000000 000 0001 00000000", raw);
    assert_int_equal(rn, 27);
    assert_int_equal(crc_longdiv(raw, rn, 15, 0xc599), 0x4426);
    assert_int_equal(bl.crc, 0x4426);
    assert_int_equal(bl.crc_bits, 15);

    assert_int_equal(n, 59);
    assert_int_equal(bl.stuff_bits, 4);
    assert_int_equal(bl.arb_bits, 59);
    assert_int_equal(bl.data_bits, 0);
    assert_bits(bits, "00000 1 00000 1 00000 1 000 1"
                      "00000 1 000"
                      "100010000100110"
                      "111 1111111 111");
}

/* The CRC of any classic frame equals the long division over its
 * destuffed SOF..data bits. */
static void test_classic_crc_matches_longdiv(void **state)
{
    (void)state;
    srand(7);
    for (int k = 0; k < 300; k++) {
        bool eff = k & 1;
        px_can_frame f = mk(eff ? ((uint32_t)rand() & PX_CAN_EFF_MASK) | PX_CAN_EFF_FLAG
                                : (uint32_t)rand() & PX_CAN_SFF_MASK,
                            0, (unsigned)(k % 9), 0);
        for (unsigned i = 0; i < f.len; i++)
            f.data[i] = (uint8_t)rand();
        uint8_t raw[128];
        size_t rn = 0;
        uint32_t id = f.can_id & PX_CAN_EFF_MASK;
        raw[rn++] = 0;
        if (eff) {
            for (int i = 28; i >= 18; i--)
                raw[rn++] = (id >> i) & 1;
            raw[rn++] = 1;
            raw[rn++] = 1;
            for (int i = 17; i >= 0; i--)
                raw[rn++] = (id >> i) & 1;
            raw[rn++] = 0; /* RTR */
            raw[rn++] = 0; /* r1 */
            raw[rn++] = 0; /* r0 */
        } else {
            for (int i = 10; i >= 0; i--)
                raw[rn++] = (id >> i) & 1;
            raw[rn++] = 0;
            raw[rn++] = 0;
            raw[rn++] = 0;
        }
        for (int i = 3; i >= 0; i--)
            raw[rn++] = (f.len >> i) & 1;
        for (unsigned i = 0; i < f.len; i++)
            for (int b = 7; b >= 0; b--)
                raw[rn++] = (f.data[i] >> b) & 1;
        px_can_bitlen bl = timing_ok(&f);
        assert_int_equal(bl.crc, crc_longdiv(raw, rn, 15, 0xc599));
        /* Unstuffed length is fixed by the format. */
        assert_int_equal(px_can_bitlen_total(&bl) - bl.stuff_bits, rn + 15 + 13);
    }
}

/* 8-byte standard data frame: 1+11+1+1+1+4+64+15 = 98 stuffed-region bits,
 * +13 = 111 without stuffing (the published figure, IFS included); 131
 * for extended. Stuffing adds at most floor((34+64-1)/4) = 24 -> 135 and
 * floor((54+64-1)/4) = 29 -> 160 (Davis et al. 2007). */
static void test_classic_8_byte_bounds(void **state)
{
    (void)state;
    static const uint8_t fills[] = {0x00, 0xff, 0x55, 0xaa, 0x0f, 0xf0, 0x3c, 0xe1, 0x07};
    uint32_t worst_std = 0, best_std = 1000, worst_ext = 0;
    for (uint32_t id = 0; id <= PX_CAN_SFF_MASK; id++) {
        for (size_t k = 0; k < sizeof(fills); k++) {
            px_can_frame f = mk(id, 0, 8, fills[k]);
            px_can_bitlen bl = timing_ok(&f);
            uint32_t t = px_can_bitlen_total(&bl);
            assert_int_equal(t - bl.stuff_bits, 111);
            assert_true(t <= 135);
            worst_std = t > worst_std ? t : worst_std;
            best_std = t < best_std ? t : best_std;

            f = mk(PX_CAN_EFF_FLAG | id << 18 | (id * 0x9e37u & 0x3ffffu), 0, 8, fills[k]);
            bl = timing_ok(&f);
            t = px_can_bitlen_total(&bl);
            assert_int_equal(t - bl.stuff_bits, 131);
            assert_true(t <= 160);
            worst_ext = t > worst_ext ? t : worst_ext;
        }
    }
    assert_true(worst_std > 111 + 10); /* all-zero data stuffs heavily */
    assert_true(best_std <= 112);
    assert_true(worst_ext > 131 + 10);

    /* 0x55 alternates: the data adds no stuff bits. id 0x123 then stuffs
     * once (in "...0011 0 0 0 1000" = RTR IDE r0 and DLC: five zeros). */
    px_can_frame f = mk(0x123, 0, 8, 0x55);
    px_can_bitlen bl = timing_ok(&f);
    assert_int_equal(bl.stuff_bits, 1);
    assert_int_equal(px_can_bitlen_total(&bl), 112);
    /* Eight 0x00 bytes with id 0: 16 stuff bits (checked against an
     * independent model), 127 bits. */
    f = mk(0x000, 0, 8, 0x00);
    bl = timing_ok(&f);
    assert_int_equal(bl.stuff_bits, 16);
    assert_int_equal(px_can_bitlen_total(&bl), 127);
}

static void test_stuff_bit_counts_toward_next_run(void **state)
{
    (void)state;
    /* id 0x078 = 00001111000: SOF + 0000 = five zeros -> stuff 1; that 1
     * plus the four ones of the id make five -> stuff 0; that 0 plus 000
     * of the id plus RTR 0 make five -> stuff 1. */
    px_can_frame f = mk(0x078, 0, 0, 0);
    uint8_t bits[PX_CAN_MAX_WIRE_BITS];
    size_t n;
    px_can_bitlen bl;
    assert_int_equal(px_can_wire_bits(&f, bits, sizeof(bits), &n, &bl, NULL), PX_OK);
    assert_bits(bits, "00000 1 1111 0 000 0 1");

    /* Four equal bits are not stuffed: id 0x0f0 = 00011110000 begins
     * SOF+000 (four zeros), 1111 (four ones), then 0000 + RTR 0 (five). */
    f = mk(0x0f0, 0, 0, 0);
    assert_int_equal(px_can_wire_bits(&f, bits, sizeof(bits), &n, &bl, NULL), PX_OK);
    assert_bits(bits, "0000 1111 00000 1");
}

/* Classic stuffing covers the CRC sequence to its last bit: id 0x009,
 * no data, has CRC 0x7C20 = 111110000100000, whose last five zeros are
 * followed by a stuff bit before the CRC delimiter. */
static void test_stuff_bit_after_last_crc_bit(void **state)
{
    (void)state;
    px_can_frame f = mk(0x009, 0, 0, 0);
    uint8_t bits[PX_CAN_MAX_WIRE_BITS];
    size_t n;
    px_can_bitlen bl;
    assert_int_equal(px_can_wire_bits(&f, bits, sizeof(bits), &n, &bl, NULL), PX_OK);
    assert_int_equal(bl.crc, 0x7c20);
    assert_int_equal(bl.stuff_bits, 5);
    assert_int_equal(n, 52);
    /* ... 00000 [1] then delimiter, ACK, delimiter, EOF, IFS (13 ones). */
    assert_bits(bits + n - 19, "00000 1 1111111111111");
    assert_int_equal(bits[n - 14], 1);
}

static void test_remote_frames(void **state)
{
    (void)state;
    /* RTR with DLC 3: no data field. 1+11+1+1+1+4+15 = 34, +13 = 47 for
     * id 0x123 (no run of five: checked bit by bit against the model). */
    px_can_frame f = mk(0x123 | PX_CAN_RTR_FLAG, 0, 3, 0);
    px_can_bitlen bl = timing_ok(&f);
    assert_int_equal(bl.stuff_bits, 0);
    assert_int_equal(px_can_bitlen_total(&bl), 47);
    /* A remote frame's length does not depend on the data bytes. */
    px_can_frame g = f;
    memset(g.data, 0xa5, 8);
    px_can_bitlen bl2 = timing_ok(&g);
    assert_int_equal(px_can_bitlen_total(&bl2), 47);
}

/* FD, standard id 0x123, no data, no BRS, by hand:
 *   SOF 0 | id 00100100011 | RRS 0 IDE 0 FDF 1 res 0 BRS 0 ESI 0 | DLC 0000
 * res..DLC is seven zeros: one stuff bit after the fifth. 22 + 1 = 23.
 * CRC field: stuff count (1 -> Gray 001, parity 1) and CRC-17: 21 bits
 * with 6 fixed stuff bits = 27. +13 = 63. */
static void test_fd_hand_computed_no_data(void **state)
{
    (void)state;
    px_can_frame f = mk(0x123, PX_CANFD_FDF, 0, 0);
    uint8_t bits[PX_CAN_MAX_WIRE_BITS];
    size_t n;
    px_can_bitlen bl;
    assert_int_equal(px_can_wire_bits(&f, bits, sizeof(bits), &n, &bl, NULL), PX_OK);
    assert_int_equal(n, 63);
    assert_int_equal(bl.arb_bits, 63);
    assert_int_equal(bl.data_bits, 0);
    assert_int_equal(bl.stuff_bits, 1);
    assert_int_equal(bl.fixed_stuff_bits, 6);
    assert_int_equal(bl.crc_bits, 17);
    assert_int_equal(bl.stuff_count, 0x3); /* 001 + parity 1 */
    /* ..., then the fixed stuff bit (complement of the last 0) and the
     * stuff count 0011, and a fixed stuff bit (complement of 1). */
    assert_bits(bits, "0 00100100011 0 0 1 0 0 0 0 0 [1] 0 0   1 0011 0");

    /* With BRS: arbitration phase SOF..BRS (17 bits, no stuffing) + 13 =
     * 30. Data phase: ESI + DLC = five zeros ending the dynamic part, so no
     * dynamic stuff bit; the stuff count is 0 (Gray 000, parity 0); 5 + 27
     * = 32. */
    f.flags |= PX_CANFD_BRS;
    bl = timing_ok(&f);
    assert_int_equal(bl.arb_bits, 30);
    assert_int_equal(bl.data_bits, 32);
    assert_int_equal(bl.stuff_bits, 0);
    assert_int_equal(bl.stuff_count, 0);
}

/* FD, id 0x123, one byte 0x00: the data ends in five zeros; in FD the
 * fixed stuff bit in front of the stuff count replaces the dynamic one.
 * Hand: ...FDF 1 | res BRS ESI DLC 0 0 0 0 0 [1] 0 1 | 00000 [1] 000 |
 * FSB 1 | stuff count 2 -> Gray 011 parity 0 -> 0110 | FSB 1 | CRC...
 * 30 unstuffed + 2 dynamic + 27 + 13 = 72. */
static void test_fd_no_dynamic_stuff_before_crc_field(void **state)
{
    (void)state;
    px_can_frame f = mk(0x123, PX_CANFD_FDF, 1, 0x00);
    uint8_t bits[PX_CAN_MAX_WIRE_BITS];
    size_t n;
    px_can_bitlen bl;
    assert_int_equal(px_can_wire_bits(&f, bits, sizeof(bits), &n, &bl, NULL), PX_OK);
    assert_int_equal(n, 72);
    assert_int_equal(bl.stuff_bits, 2);
    assert_int_equal(bl.stuff_count, 0x6);
    assert_bits(bits, "0 00100100011 0 0 1 00000 1 01 00000 1 000 1 0110 1");
}

static void test_fd_lengths_and_bounds(void **state)
{
    (void)state;
    static const unsigned lens[] = {0, 8, 12, 16, 20, 64};
    static const uint8_t fills[] = {0x00, 0xff, 0x55, 0x0f};
    for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
        unsigned len = lens[li];
        unsigned w = len > 16 ? 21 : 17;
        unsigned fixed = (4 + w + 3) / 4; /* one before, then every 4 bits */
        for (size_t fi = 0; fi < sizeof(fills); fi++) {
            for (int eff = 0; eff < 2; eff++) {
                uint32_t id = eff ? PX_CAN_EFF_FLAG | 0x0abcdefu : 0x2a5u;
                unsigned head = eff ? 1 + 11 + 1 + 1 + 18 + 1 + 1 + 1 + 1 + 1 + 4
                                    : 1 + 11 + 1 + 1 + 1 + 1 + 1 + 1 + 4;
                unsigned plain = head + 8 * len + 4 + w + fixed + 13;
                px_can_frame f = mk(id, PX_CANFD_FDF, len, fills[fi]);
                px_can_bitlen bl = timing_ok(&f);
                assert_int_equal(bl.crc_bits, w);
                assert_int_equal(bl.fixed_stuff_bits, fixed);
                assert_int_equal(bl.data_bits, 0);
                assert_int_equal(bl.arb_bits, plain + bl.stuff_bits);
                assert_true(bl.stuff_bits <= (head + 8 * len - 1) / 4);
                assert_int_equal(bl.stuff_count >> 1,
                                 (bl.stuff_bits % 8) ^ (bl.stuff_bits % 8) >> 1);

                /* BRS moves ESI..CRC to the data phase; the frame is the
                 * same but for the BRS bit (which may change stuffing). */
                f.flags |= PX_CANFD_BRS;
                px_can_bitlen br = timing_ok(&f);
                assert_int_equal(px_can_bitlen_total(&br) - br.stuff_bits,
                                 px_can_bitlen_total(&bl) - bl.stuff_bits);
                unsigned arb_plain = head - 1 - 4 + 13; /* SOF..BRS + trailer */
                assert_true(br.arb_bits >= arb_plain && br.arb_bits <= arb_plain + 8);
                assert_true(br.data_bits >= 1 + 4 + 8 * len + 4 + w + fixed);
            }
        }
    }
    /* 0x55 data never stuffs: FD std 64 bytes = 22 + 512 + 4 + 21 + 7 + 13. */
    px_can_frame f = mk(0x2a5, PX_CANFD_FDF, 64, 0x55);
    px_can_bitlen bl = timing_ok(&f);
    assert_int_equal(px_can_bitlen_total(&bl), 579 + bl.stuff_bits);
    /* 8 bytes of 0x00, id 0x123 (one stuff bit per 5 zeros, checked
     * against an independent model): 13 stuff bits, 139 bits. */
    f = mk(0x123, PX_CANFD_FDF, 8, 0x00);
    bl = timing_ok(&f);
    assert_int_equal(bl.stuff_bits, 13);
    assert_int_equal(bl.arb_bits, 139);
    f.flags |= PX_CANFD_BRS;
    bl = timing_ok(&f);
    assert_int_equal(bl.arb_bits, 30);
    assert_int_equal(bl.data_bits, 109);
}

static void test_error_frame(void **state)
{
    (void)state;
    px_can_frame f = mk(PX_CAN_ERR_FLAG | 0x4, 0, 8, 0);
    uint8_t bits[64];
    size_t n;
    px_can_bitlen bl;
    assert_int_equal(px_can_wire_bits(&f, bits, sizeof(bits), &n, &bl, NULL), PX_OK);
    assert_int_equal(n, 17);
    assert_int_equal(PX_CAN_ERROR_FRAME_BITS, 17);
    assert_bits(bits, "000000 11111111 111");
    uint64_t ns;
    assert_int_equal(px_can_duration_ns(&f, 125000, 0, &ns, NULL), PX_OK);
    assert_int_equal(ns, 17 * 8000);
}

static void test_duration(void **state)
{
    (void)state;
    px_can_frame f = mk(0x000, 0, 1, 0x00); /* 59 bits, above */
    uint64_t ns;
    assert_int_equal(px_can_duration_ns(&f, 125000, 0, &ns, NULL), PX_OK);
    assert_int_equal(ns, 59u * 8000u);
    assert_int_equal(px_can_duration_ns(&f, 1000000, 0, &ns, NULL), PX_OK);
    assert_int_equal(ns, 59u * 1000u);

    /* FD 8 x 0x00 with BRS: 30 bits at 500k (2000 ns) + 109 at 2M (500). */
    f = mk(0x123, PX_CANFD_FDF | PX_CANFD_BRS, 8, 0x00);
    assert_int_equal(px_can_duration_ns(&f, 500000, 2000000, &ns, NULL), PX_OK);
    assert_int_equal(ns, 30u * 2000u + 109u * 500u);

    /* Rates that do not divide 1e9 round each phase up. */
    px_can_bitlen bl = {.arb_bits = 1};
    assert_int_equal(px_can_bitlen_ns(&bl, 3, 0, &ns, NULL), PX_OK);
    assert_int_equal(ns, 333333334u);

    px_errmsg em;
    assert_int_equal(px_can_duration_ns(&f, 0, 2000000, &ns, &em), PX_E_INVAL);
    assert_non_null(strstr(em.text, "bit rate"));
    assert_int_equal(px_can_duration_ns(&f, 500000, 0, &ns, &em), PX_E_INVAL);
    assert_non_null(strstr(em.text, "data bit rate"));
    /* Without BRS the data bit rate is not needed. */
    f.flags &= (uint8_t)~PX_CANFD_BRS;
    assert_int_equal(px_can_duration_ns(&f, 500000, 0, &ns, NULL), PX_OK);
    assert_int_equal(ns, 139u * 2000u);
}

static void test_invalid_frames(void **state)
{
    (void)state;
    px_errmsg em;
    px_can_bitlen bl;
    px_can_frame f = mk(0x800, 0, 0, 0);
    assert_int_equal(px_can_timing(&f, &bl, &em), PX_E_INVAL);
    assert_non_null(strstr(em.text, "11 bits"));
    f = mk(0x123, 0, 9, 0);
    assert_int_equal(px_can_timing(&f, &bl, &em), PX_E_INVAL);
    f = mk(0x123, PX_CANFD_FDF, 9, 0);
    assert_int_equal(px_can_timing(&f, &bl, &em), PX_E_INVAL);
    assert_non_null(strstr(em.text, "DLC length"));
    f = mk(0x123 | PX_CAN_RTR_FLAG, PX_CANFD_FDF, 0, 0);
    assert_int_equal(px_can_timing(&f, &bl, &em), PX_E_INVAL);
    f = mk(0x123, PX_CANFD_BRS, 0, 0);
    assert_int_equal(px_can_timing(&f, &bl, &em), PX_E_INVAL);
    f = mk(0x123, PX_CANFD_FDF | 0x08, 0, 0);
    assert_int_equal(px_can_timing(&f, &bl, &em), PX_E_INVAL);

    uint8_t small[40];
    size_t n = 99;
    f = mk(0x123, 0, 8, 0);
    assert_int_equal(px_can_wire_bits(&f, small, sizeof(small), &n, &bl, &em), PX_E_TOOBIG);
    assert_int_equal(n, 0);
}

static void test_dlc_table(void **state)
{
    (void)state;
    static const unsigned want[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64};
    for (unsigned d = 0; d < 16; d++) {
        assert_int_equal(px_can_dlc_to_len(d), want[d]);
        assert_int_equal(px_can_len_to_dlc(want[d]), (int)d);
    }
    assert_int_equal(px_can_len_to_dlc(9), -1);
    assert_int_equal(px_can_len_to_dlc(65), -1);
}

static int arb(uint32_t a, uint8_t fa, uint32_t b, uint8_t fb)
{
    px_can_frame x = mk(a, fa, 0, 0), y = mk(b, fb, 0, 0);
    int r = px_can_arb_cmp(&x, &y);
    int s = px_can_arb_cmp(&y, &x);
    assert_true((r < 0 && s > 0) || (r > 0 && s < 0) || (r == 0 && s == 0));
    return r;
}

static void test_arbitration(void **state)
{
    (void)state;
    const uint32_t E = PX_CAN_EFF_FLAG, R = PX_CAN_RTR_FLAG;
    assert_true(arb(0x100, 0, 0x101, 0) < 0); /* lowest id wins */
    assert_true(arb(0x7ff, 0, 0x000, 0) > 0);
    assert_true(arb(0x100, 0, E | 0x100u << 18, 0) < 0); /* standard before extended */
    /* ...even a standard remote frame: its RTR meets SRR (both
     * recessive), then IDE decides. */
    assert_true(arb(R | 0x100, 0, E | 0x100u << 18, 0) < 0);
    assert_true(arb(0x100, 0, R | 0x100, 0) < 0); /* data before remote */
    assert_true(arb(E | 0x12345, 0, E | R | 0x12345, 0) < 0);
    /* An extended frame with a lower base id wins over a standard one. */
    assert_true(arb(E | 0x0ffu << 18 | 0x3ffff, 0, 0x100, 0) < 0);
    /* Extended ids order numerically. */
    assert_true(arb(E | 0x1fffffffu, 0, E | 0x1ffffffeu, 0) > 0);
    assert_true(arb(E | 0x0003ffffu, 0, E | 0x00040000u, 0) < 0);
    /* FD and classic data frames with the same id tie (RRS = RTR = 0). */
    assert_int_equal(arb(0x123, PX_CANFD_FDF, 0x123, 0), 0);
    assert_true(arb(0x123, PX_CANFD_FDF, R | 0x123, 0) < 0);
    assert_int_equal(arb(0x123, 0, 0x123, 0), 0);
    /* Error frames win over frames; two tie. */
    assert_true(arb(PX_CAN_ERR_FLAG | 4, 0, 0x000, 0) < 0);
    assert_int_equal(arb(PX_CAN_ERR_FLAG | 4, 0, PX_CAN_ERR_FLAG | 2, 0), 0);

    /* Same-format data frames order by id, over many pairs. */
    srand(11);
    for (int k = 0; k < 2000; k++) {
        uint32_t a = (uint32_t)rand() & PX_CAN_EFF_MASK, b = (uint32_t)rand() & PX_CAN_EFF_MASK;
        int r = arb(E | a, 0, E | b, 0);
        assert_true(a < b ? r < 0 : a > b ? r > 0 : r == 0);
        a &= PX_CAN_SFF_MASK;
        b &= PX_CAN_SFF_MASK;
        r = arb(a, 0, b, 0);
        assert_true(a < b ? r < 0 : a > b ? r > 0 : r == 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc_catalogue_check_values),
        cmocka_unit_test(test_classic_hand_computed_frame),
        cmocka_unit_test(test_classic_crc_matches_longdiv),
        cmocka_unit_test(test_classic_8_byte_bounds),
        cmocka_unit_test(test_stuff_bit_counts_toward_next_run),
        cmocka_unit_test(test_stuff_bit_after_last_crc_bit),
        cmocka_unit_test(test_remote_frames),
        cmocka_unit_test(test_fd_hand_computed_no_data),
        cmocka_unit_test(test_fd_no_dynamic_stuff_before_crc_field),
        cmocka_unit_test(test_fd_lengths_and_bounds),
        cmocka_unit_test(test_error_frame),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_invalid_frames),
        cmocka_unit_test(test_dlc_table),
        cmocka_unit_test(test_arbitration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
