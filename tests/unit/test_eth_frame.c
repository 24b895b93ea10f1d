/* Unit tests: fabric/eth-hub/frame — headers, 802.1Q tags, MAC text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fabric/eth-hub/frame.h"

static const uint8_t untagged[] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* dst: broadcast */
    0x52, 0x54, 0x00, 0x12, 0x34, 0x56, /* src */
    0x08, 0x06,                         /* ARP */
    0x00, 0x01, 0x08, 0x00,             /* payload */
};

static const uint8_t tagged[] = {
    0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc, /* dst */
    0x52, 0x54, 0x00, 0x12, 0x34, 0x56, /* src */
    0x81, 0x00, 0xa0, 0x64,             /* TPID, PCP 5, DEI 0, VID 100 */
    0x08, 0x00,                         /* IPv4 */
    0x45, 0x00,                         /* payload */
};

static void test_parse_untagged(void **state)
{
    (void)state;
    px_eth_hdr h;
    px_errmsg em = {{0}};
    assert_int_equal(px_eth_parse(untagged, sizeof(untagged), &h, &em), PX_OK);
    assert_ptr_equal(h.dst, untagged);
    assert_ptr_equal(h.src, untagged + 6);
    assert_false(h.tagged);
    assert_int_equal(h.vid, 0);
    assert_int_equal(h.pcp, 0);
    assert_int_equal(h.ethertype, 0x0806);
    assert_int_equal(h.hlen, 14);
    assert_true(px_eth_mac_is_group(h.dst));
    assert_false(px_eth_mac_is_group(h.src));
    /* Exactly a header is a frame. */
    assert_int_equal(px_eth_parse(untagged, 14, &h, NULL), PX_OK);
}

static void test_parse_tagged(void **state)
{
    (void)state;
    px_eth_hdr h;
    assert_int_equal(px_eth_parse(tagged, sizeof(tagged), &h, NULL), PX_OK);
    assert_true(h.tagged);
    assert_int_equal(h.vid, 100);
    assert_int_equal(h.pcp, 5);
    assert_int_equal(h.ethertype, 0x0800);
    assert_int_equal(h.hlen, 18);
    assert_int_equal(px_eth_parse(tagged, 18, &h, NULL), PX_OK);

    /* VID 4095 and PCP 7 with DEI set: all bits read, DEI ignored. */
    uint8_t f[18];
    memcpy(f, tagged, sizeof(f));
    f[14] = 0xff;
    f[15] = 0xff;
    assert_int_equal(px_eth_parse(f, sizeof(f), &h, NULL), PX_OK);
    assert_int_equal(h.vid, 4095);
    assert_int_equal(h.pcp, 7);
}

static void test_parse_errors(void **state)
{
    (void)state;
    px_eth_hdr h;
    px_errmsg em = {{0}};
    assert_int_equal(px_eth_parse(untagged, 13, &h, &em), PX_E_TRUNCATED);
    assert_string_equal(em.text, "frame of 13 bytes is shorter than an Ethernet header (14)");
    assert_null(h.dst);
    assert_int_equal(h.hlen, 0);
    assert_int_equal(px_eth_parse(untagged, 0, &h, NULL), PX_E_TRUNCATED);

    /* A tag cut off: 14..17 bytes with TPID 0x8100. */
    for (size_t n = 14; n < 18; n++) {
        assert_int_equal(px_eth_parse(tagged, n, &h, &em), PX_E_TRUNCATED);
        assert_false(h.tagged);
    }
    assert_string_equal(em.text, "frame of 17 bytes is shorter than a tagged Ethernet header (18)");

    static uint8_t big[PX_ETH_MAX_FRAME + 1];
    memcpy(big, untagged, sizeof(untagged));
    assert_int_equal(px_eth_parse(big, PX_ETH_MAX_FRAME, &h, NULL), PX_OK);
    assert_int_equal(px_eth_parse(big, PX_ETH_MAX_FRAME + 1, &h, &em), PX_E_TOOBIG);
    assert_string_equal(em.text, "frame of 65536 bytes is longer than 65535");
}

static void test_untag_tag_roundtrip(void **state)
{
    (void)state;
    uint8_t f[sizeof(tagged)];
    memcpy(f, tagged, sizeof(f));
    size_t len = sizeof(f);
    uint8_t *u = px_eth_untag(f, &len);
    assert_ptr_equal(u, f + 4);
    assert_int_equal(len, sizeof(tagged) - 4);
    assert_memory_equal(u, tagged, 12);
    assert_memory_equal(u + 12, tagged + 16, len - 12);
    px_eth_hdr h;
    assert_int_equal(px_eth_parse(u, len, &h, NULL), PX_OK);
    assert_false(h.tagged);
    assert_int_equal(h.ethertype, 0x0800);

    uint8_t out[sizeof(tagged)];
    assert_int_equal(px_eth_tag(u, len, 100, 5, out), sizeof(tagged));
    assert_memory_equal(out, tagged, sizeof(tagged));
}

static void test_tag_masks_and_in_place(void **state)
{
    (void)state;
    uint8_t out[sizeof(untagged) + 4];
    /* vid and pcp beyond their widths are cut to 12 and 3 bits. */
    assert_int_equal(px_eth_tag(untagged, sizeof(untagged), 0xf123, 0xfa, out),
                     sizeof(untagged) + 4);
    px_eth_hdr h;
    assert_int_equal(px_eth_parse(out, sizeof(out), &h, NULL), PX_OK);
    assert_true(h.tagged);
    assert_int_equal(h.vid, 0x123);
    assert_int_equal(h.pcp, 2);
    assert_int_equal(h.ethertype, 0x0806);
    assert_int_equal(out[14] & 0x10, 0); /* DEI */

    /* In place, into 4 bytes of headroom. */
    uint8_t buf[4 + sizeof(untagged)];
    memset(buf, 0xee, 4);
    memcpy(buf + 4, untagged, sizeof(untagged));
    uint8_t expect[sizeof(out)];
    px_eth_tag(untagged, sizeof(untagged), 42, 3, expect);
    assert_int_equal(px_eth_tag(buf + 4, sizeof(untagged), 42, 3, buf), sizeof(buf));
    assert_memory_equal(buf, expect, sizeof(buf));

    /* Fewer than 12 bytes: nothing to tag, nothing written. */
    memset(out, 0x5a, sizeof(out));
    assert_int_equal(px_eth_tag(untagged, 11, 1, 0, out), 0);
    assert_int_equal(out[0], 0x5a);
    assert_int_equal(px_eth_tag(untagged, 12, 1, 0, out), 16);
}

static void test_mac_text(void **state)
{
    (void)state;
    const uint8_t mac[6] = {0x52, 0x54, 0x00, 0xab, 0xcd, 0xef};
    char s[PX_ETH_MAC_STRLEN];
    memset(s, 'x', sizeof(s));
    px_eth_mac_str(mac, s);
    assert_string_equal(s, "52:54:00:ab:cd:ef");

    uint8_t m[6];
    assert_true(px_eth_mac_parse("52:54:00:AB:cd:Ef", m));
    assert_memory_equal(m, mac, 6);
    assert_true(px_eth_mac_parse("ff:ff:ff:ff:ff:ff", m));
    assert_true(px_eth_mac_is_group(m));

    const char *bad[] = {"",
                         "52:54:00:ab:cd",
                         "52:54:00:ab:cd:",
                         "52:54:00:ab:cd:e",
                         "52:54:00:ab:cd:ef:",
                         "52:54:00:ab:cd:ef0",
                         "52-54-00-ab-cd-ef",
                         "5:54:00:ab:cd:ef0",
                         "52:54:00:ag:cd:ef",
                         " 52:54:00:ab:cd:ef",
                         "525400abcdef"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(m, 0x11, sizeof(m));
        assert_false(px_eth_mac_parse(bad[i], m));
        for (int k = 0; k < 6; k++)
            assert_int_equal(m[k], 0x11); /* untouched */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_untagged),         cmocka_unit_test(test_parse_tagged),
        cmocka_unit_test(test_parse_errors),           cmocka_unit_test(test_untag_tag_roundtrip),
        cmocka_unit_test(test_tag_masks_and_in_place), cmocka_unit_test(test_mac_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
