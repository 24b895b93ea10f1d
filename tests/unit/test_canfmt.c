/* Unit tests: fabric/can-bus/canfmt (can-utils text, candump -L lines, pcap). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fabric/can-bus/canfmt.h"

static px_can_frame parse_ok(const char *s)
{
    px_can_frame f;
    px_errmsg em = {{0}};
    px_err err = px_canfmt_parse(s, strlen(s), &f, &em);
    if (err)
        fail_msg("parse '%s': %s", s, em.text);
    return f;
}

static void test_parse_forms(void **state)
{
    (void)state;
    px_can_frame f = parse_ok("123#DEADBEEF");
    assert_int_equal(f.can_id, 0x123);
    assert_int_equal(f.len, 4);
    assert_int_equal(f.flags, 0);
    assert_memory_equal(f.data, "\xde\xad\xbe\xef", 4);
    assert_int_equal(f.data[4], 0);

    f = parse_ok("12345678#00");
    assert_int_equal(f.can_id, 0x12345678u | PX_CAN_EFF_FLAG);
    assert_int_equal(f.len, 1);

    f = parse_ok("123#R");
    assert_int_equal(f.can_id, 0x123 | PX_CAN_RTR_FLAG);
    assert_int_equal(f.len, 0);
    f = parse_ok("1FFFFFFF#r8");
    assert_int_equal(f.can_id, 0x1fffffffu | PX_CAN_EFF_FLAG | PX_CAN_RTR_FLAG);
    assert_int_equal(f.len, 8);

    f = parse_ok("123##1DEADBEEF");
    assert_int_equal(f.flags, PX_CANFD_FDF | PX_CANFD_BRS);
    assert_int_equal(f.len, 4);
    f = parse_ok("123##0");
    assert_int_equal(f.flags, PX_CANFD_FDF);
    assert_int_equal(f.len, 0);
    f = parse_ok("123##5.11.22"); /* newer can-utils print FDF in the nibble */
    assert_int_equal(f.flags, PX_CANFD_FDF | PX_CANFD_BRS);
    assert_int_equal(f.len, 2);

    f = parse_ok("123#DE.AD.be.ef");
    assert_int_equal(f.len, 4);
    assert_memory_equal(f.data, "\xde\xad\xbe\xef", 4);

    f = parse_ok("20000004#0000000000000000");
    assert_int_equal(f.can_id, PX_CAN_ERR_FLAG | 4);
    assert_int_equal(f.len, 8);

    f = parse_ok("000#");
    assert_int_equal(f.can_id, 0);
    assert_int_equal(f.len, 0);
}

/* text in -> canonical text out (and back in to the same frame). */
static void test_round_trips(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"123#DEADBEEF", "123#DEADBEEF"},
        {"123#deadbeef", "123#DEADBEEF"},
        {"123#DE.AD.BE.EF", "123#DEADBEEF"},
        {"7FF#", "7FF#"},
        {"000#0011223344556677", "000#0011223344556677"},
        {"12345678#00", "12345678#00"},
        {"00000000#", "00000000#"},
        {"1FFFFFFF#FF", "1FFFFFFF#FF"},
        {"123#R", "123#R"},
        {"123#R0", "123#R"},
        {"123#R3", "123#R3"},
        {"12345678#R8", "12345678#R8"},
        {"123##1DEADBEEF", "123##1DEADBEEF"},
        {"123##0", "123##0"},
        {"123##3.01", "123##301"},
        {"123##7AA", "123##3AA"},
        {"12345678##2"
         "000102030405060708090A0B",
         "12345678##2000102030405060708090A0B"},
        {"20000004#0000000000000000", "20000004#0000000000000000"},
        {"20000100#", "20000100#"},
        {"3FFFFFFF#00", "3FFFFFFF#00"}, /* all error classes: can-utils reads it so */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        px_can_frame f = parse_ok(cases[i][0]);
        char buf[PX_CANFMT_FRAME_MAX];
        size_t n;
        assert_int_equal(px_canfmt_format(&f, false, buf, sizeof(buf), &n, NULL), PX_OK);
        assert_string_equal(buf, cases[i][1]);
        assert_int_equal(n, strlen(cases[i][1]));
        px_can_frame g = parse_ok(buf);
        assert_memory_equal(&f, &g, sizeof(f));
    }

    /* Every FD length, both id kinds, every flag combination. */
    for (unsigned d = 0; d < 16; d++) {
        static const unsigned lens[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64};
        for (unsigned fl = 0; fl < 4; fl++) {
            px_can_frame f;
            memset(&f, 0, sizeof(f));
            f.can_id = (d & 1) ? PX_CAN_EFF_FLAG | 0x1abcdef0u : 0x5a5;
            f.flags = (uint8_t)(PX_CANFD_FDF | fl);
            f.len = (uint8_t)lens[d];
            for (unsigned i = 0; i < f.len; i++)
                f.data[i] = (uint8_t)(i * 37 + d);
            char buf[PX_CANFMT_FRAME_MAX];
            for (int dots = 0; dots < 2; dots++) {
                assert_int_equal(px_canfmt_format(&f, dots, buf, sizeof(buf), NULL, NULL), PX_OK);
                px_can_frame g = parse_ok(buf);
                assert_memory_equal(&f, &g, sizeof(f));
            }
        }
    }
}

static void test_format_dots_and_limits(void **state)
{
    (void)state;
    px_can_frame f = parse_ok("123#DEADBEEF");
    char buf[PX_CANFMT_FRAME_MAX];
    assert_int_equal(px_canfmt_format(&f, true, buf, sizeof(buf), NULL, NULL), PX_OK);
    assert_string_equal(buf, "123#DE.AD.BE.EF");
    f = parse_ok("123##1DEAD");
    assert_int_equal(px_canfmt_format(&f, true, buf, sizeof(buf), NULL, NULL), PX_OK);
    assert_string_equal(buf, "123##1DE.AD");

    /* The longest text fits PX_CANFMT_FRAME_MAX exactly. */
    memset(&f, 0, sizeof(f));
    f.can_id = PX_CAN_EFF_FLAG | 1;
    f.flags = PX_CANFD_FDF;
    f.len = 64;
    size_t n;
    assert_int_equal(px_canfmt_format(&f, true, buf, sizeof(buf), &n, NULL), PX_OK);
    assert_int_equal(n + 1, PX_CANFMT_FRAME_MAX - 1); /* dots only between bytes */
    px_errmsg em;
    char small[8];
    assert_int_equal(px_canfmt_format(&f, false, small, sizeof(small), &n, &em), PX_E_TOOBIG);
    assert_int_equal(n, 0);
    assert_string_equal(small, "");

    /* Frames the text cannot express. */
    memset(&f, 0, sizeof(f));
    f.can_id = 0x800;
    assert_int_equal(px_canfmt_format(&f, false, buf, sizeof(buf), NULL, &em), PX_E_INVAL);
    f.can_id = 0x123;
    f.len = 9;
    assert_int_equal(px_canfmt_format(&f, false, buf, sizeof(buf), NULL, &em), PX_E_INVAL);
    f.flags = PX_CANFD_FDF;
    assert_int_equal(px_canfmt_format(&f, false, buf, sizeof(buf), NULL, &em), PX_E_INVAL);
    f.len = 0;
    f.can_id |= PX_CAN_RTR_FLAG;
    assert_int_equal(px_canfmt_format(&f, false, buf, sizeof(buf), NULL, &em), PX_E_INVAL);
    f.can_id = PX_CAN_ERR_FLAG | PX_CAN_EFF_FLAG | 4;
    f.flags = 0;
    assert_int_equal(px_canfmt_format(&f, false, buf, sizeof(buf), NULL, &em), PX_E_INVAL);
}

typedef struct reject {
    const char *text;
    const char *says; /* substring of the message */
    int column;       /* 0: not checked */
} reject;

static void check_rejects(const reject *r, size_t n, bool log)
{
    for (size_t i = 0; i < n; i++) {
        px_errmsg em = {{0}};
        px_err err;
        if (log) {
            px_canfmt_log l;
            err = px_canfmt_parse_log(r[i].text, strlen(r[i].text), &l, &em);
            px_canfmt_log zero;
            memset(&zero, 0, sizeof(zero));
            assert_memory_equal(&l, &zero, sizeof(l));
        } else {
            px_can_frame f;
            err = px_canfmt_parse(r[i].text, strlen(r[i].text), &f, &em);
            px_can_frame zero;
            memset(&zero, 0, sizeof(zero));
            assert_memory_equal(&f, &zero, sizeof(f));
        }
        if (err != PX_E_INVAL)
            fail_msg("'%s' was accepted", r[i].text);
        if (!strstr(em.text, r[i].says))
            fail_msg("'%s': message '%s' lacks '%s'", r[i].text, em.text, r[i].says);
        if (r[i].column) {
            char want[32];
            snprintf(want, sizeof(want), "column %d", r[i].column);
            if (!strstr(em.text, want))
                fail_msg("'%s': message '%s' lacks '%s'", r[i].text, em.text, want);
        }
    }
}

static void test_rejections(void **state)
{
    (void)state;
    static const reject r[] = {
        {"", "missing '#'", 1},
        {"123", "missing '#'", 4},
        {"123DEADBEEF", "more than 8 hex digits (missing '#'?)", 9},
        {"12G#00", "bad hex digit in CAN id: 'G'", 3},
        {"12#00", "3 hex digits", 1},
        {"1234#00", "3 hex digits (standard) or 8", 1},
        {"123456789#00", "more than 8", 9},
        {"800#00", "over 7FF", 1},
        {"20000000F#", "more than 8", 9},
        {"40000123#00", "29-bit CAN id 40000123 is out of range", 1},
        {"80000123#00", "out of range", 1},
        {"60000004#", "error frame id", 1},
        {"123#DEADBEEG", "bad hex digit in data: 'G'", 12},
        {"123#DEA", "two hex digits: text ends at column 8", 0},
        {"123#DE A", "bad hex digit in data: \\x20", 7},
        {"123#DE\x01", "\\x01 at column 7", 0},
        {"123#001122334455667788", "too long: classic CAN carries at most 8", 21},
        {"123#DE.", "'.' must be followed by a data byte", 8},
        {"123#DE..AD", "'.' must be followed", 8},
        {"123#DEAD_5", "len8_dlc", 9},
        {"123#R9", "DLC is over 8", 6},
        {"123#R3_9", "len8_dlc", 7},
        {"123#R3x", "unexpected character after remote frame", 7},
        {"123#R33", "unexpected character", 7},
        {"20000004#R", "error frame cannot be a remote frame", 10},
        {"20000004##0", "error frames are classic", 10},
        {"123##", "flags nibble", 6},
        {"123##G00", "flags nibble", 6},
        {"123##800", "unknown CAN FD flag", 6},
        {"123##1R", "bad hex digit in data: 'R'", 7},
        {"123##1001122334455667788", "CAN FD length 9 is not a DLC length", 7},
        {"123##1"
         "000102030405060708090A0B0C0D0E0F"
         "000102030405060708090A0B0C0D0E0F"
         "000102030405060708090A0B0C0D0E0F"
         "000102030405060708090A0B0C0D0E0F"
         "00",
         "at most 64", 135},
    };
    check_rejects(r, sizeof(r) / sizeof(r[0]), false);
}

static void test_log_lines(void **state)
{
    (void)state;
    const char *line = "(1699999999.123456) can0 123#DEADBEEF";
    px_canfmt_log l;
    px_errmsg em = {{0}};
    assert_int_equal(px_canfmt_parse_log(line, strlen(line), &l, &em), PX_OK);
    assert_true(l.sec == 1699999999u);
    assert_int_equal(l.usec, 123456);
    assert_string_equal(l.ifname, "can0");
    assert_int_equal(l.dir, 0);
    assert_int_equal(l.frame.can_id, 0x123);
    char buf[PX_CANFMT_LINE_MAX];
    assert_int_equal(px_canfmt_format_log(&l, buf, sizeof(buf), NULL, NULL), PX_OK);
    assert_string_equal(buf, line);

    static const char *const lines[][2] = {
        {"(0000000001.000001) vcan0 12345678##1DEADBEEF\n",
         "(0000000001.000001) vcan0 12345678##1DEADBEEF"},
        {"(1.000000) can0 123#R\r\n", "(0000000001.000000) can0 123#R"},
        {"(1699999999.999999) can1 20000004#0000000000000000 R",
         "(1699999999.999999) can1 20000004#0000000000000000 R"},
        {"(18446744073709551615.000000) can-fd.x 7FF##0 T",
         "(18446744073709551615.000000) can-fd.x 7FF##0 T"},
        {"(1699999999.123456) abcdefghijklmno 000#", "(1699999999.123456) abcdefghijklmno 000#"},
        {"(1699999999.123456) can0 123#DE.AD", "(1699999999.123456) can0 123#DEAD"},
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        memset(&em, 0, sizeof(em));
        if (px_canfmt_parse_log(lines[i][0], strlen(lines[i][0]), &l, &em))
            fail_msg("'%s': %s", lines[i][0], em.text);
        size_t n;
        assert_int_equal(px_canfmt_format_log(&l, buf, sizeof(buf), &n, NULL), PX_OK);
        assert_string_equal(buf, lines[i][1]);
        assert_int_equal(n, strlen(buf));
        px_canfmt_log l2;
        assert_int_equal(px_canfmt_parse_log(buf, n, &l2, NULL), PX_OK);
        assert_memory_equal(&l, &l2, sizeof(l));
    }
    assert_int_equal(px_canfmt_parse_log(lines[1][0], strlen(lines[1][0]), &l, NULL), PX_OK);
    assert_int_equal(l.frame.can_id, 0x123 | PX_CAN_RTR_FLAG);
    assert_int_equal(px_canfmt_parse_log(lines[2][0], strlen(lines[2][0]), &l, NULL), PX_OK);
    assert_int_equal(l.dir, 'R');

    /* Formatting checks what it writes. */
    memset(&l, 0, sizeof(l));
    assert_int_equal(px_canfmt_format_log(&l, buf, sizeof(buf), NULL, &em), PX_E_INVAL);
    assert_non_null(strstr(em.text, "interface name"));
    strcpy(l.ifname, "can0");
    l.usec = 1000000;
    assert_int_equal(px_canfmt_format_log(&l, buf, sizeof(buf), NULL, &em), PX_E_INVAL);
    l.usec = 0;
    l.dir = 'x';
    assert_int_equal(px_canfmt_format_log(&l, buf, sizeof(buf), NULL, &em), PX_E_INVAL);
    l.dir = 0;
    assert_int_equal(px_canfmt_format_log(&l, buf, 10, NULL, &em), PX_E_TOOBIG);
    assert_int_equal(px_canfmt_format_log(&l, buf, sizeof(buf), NULL, &em), PX_OK);
    assert_string_equal(buf, "(0000000000.000000) can0 000#");
}

static void test_log_rejections(void **state)
{
    (void)state;
    static const reject r[] = {
        {"1699999999.123456) can0 123#00", "must start with '('", 1},
        {"() can0 123#00", "expected timestamp seconds", 2},
        {"(1699999999) can0 123#00", "expected '.'", 12},
        {"(1699999999.12345) can0 123#00", "6 digits", 18},
        {"(1699999999.1234567) can0 123#00", "expected ')'", 19},
        {"(99999999999999999999.000000) c 1#", "overflow", 21},
        {"(1.000000)  can0 123#00", "interface name", 12},
        {"(1.000000)can0 123#00", "one space", 11},
        {"(1.000000) can0", "expected a space and a CAN frame", 16},
        {"(1.000000) abcdefghijklmnop 123#00", "longer than 15", 27},
        {"(1.000000) ca\x7fn0 123#00", "bad character in interface name", 14},
        {"(1.000000) can0 123#0G", "bad hex digit in data: 'G'", 22},
        {"(1.000000) can0 800#00", "over 7FF", 17},
        {"(1.000000) can0 123#00 X", "R or T", 24},
        {"(1.000000) can0 123#00 RX", "unexpected text", 25},
        {"(1.000000) can0 123#00 ", "R or T", 24},
        {"(1.000000) can0 123#00\n\n", "bad hex digit in data: \\x0A", 23},
    };
    check_rejects(r, sizeof(r) / sizeof(r[0]), true);
}

/* The bytes of the file, independent of any reader. */
static void test_pcap_bytes(void **state)
{
    (void)state;
    char *mem = NULL;
    size_t size = 0;
    FILE *fp = open_memstream(&mem, &size);
    assert_non_null(fp);
    assert_int_equal(px_canpcap_write_header(fp, NULL), PX_OK);
    px_can_frame f = parse_ok("12345678#DEAD");
    assert_int_equal(px_canpcap_write_frame(fp, 0x01020304u, 0x000a0b0cu, &f, NULL), PX_OK);
    f = parse_ok("123##1AA");
    assert_int_equal(px_canpcap_write_frame(fp, 5, 6, &f, NULL), PX_OK);
    px_errmsg em;
    assert_int_equal(px_canpcap_write_frame(fp, 1ull << 32, 0, &f, &em), PX_E_INVAL);
    assert_int_equal(px_canpcap_write_frame(fp, 0, 1000000, &f, &em), PX_E_INVAL);
    f.len = 9;
    assert_int_equal(px_canpcap_write_frame(fp, 0, 0, &f, &em), PX_E_INVAL);
    fclose(fp);

    assert_int_equal(size, 24 + 16 + 16 + 16 + 72);
    static const uint8_t ghdr[24] = {0xd4, 0xc3, 0xb2, 0xa1, 2,  0, 4, 0, 0,   0, 0, 0,
                                     0,    0,    0,    0,    72, 0, 0, 0, 227, 0, 0, 0};
    assert_memory_equal(mem, ghdr, 24);
    static const uint8_t rec1[32] = {0x04, 0x03, 0x02, 0x01, 0x0c, 0x0b, 0x0a, 0x00, 16,   0, 0,
                                     0,    16,   0,    0,    0,    0x92, 0x34, 0x56, 0x78, 2, 0,
                                     0,    0,    0xde, 0xad, 0,    0,    0,    0,    0,    0};
    assert_memory_equal(mem + 24, rec1, 32);
    const uint8_t *r2 = (const uint8_t *)mem + 56;
    assert_int_equal(r2[8], 72);
    assert_int_equal(r2[16 + 0], 0x00);
    assert_int_equal(r2[16 + 2], 0x01);
    assert_int_equal(r2[16 + 3], 0x23);
    assert_int_equal(r2[16 + 4], 1);
    assert_int_equal(r2[16 + 5], PX_CANFD_FDF | PX_CANFD_BRS);
    assert_int_equal(r2[16 + 8], 0xaa);
    free(mem);
}

/* tshark (Wireshark's dissector) reads the file back. */
static void test_pcap_tshark(void **state)
{
    (void)state;
    if (system("command -v tshark >/dev/null 2>&1") != 0) {
        printf("# SKIP tshark check: tshark is not installed (apt-get install tshark)\n");
        skip();
    }
    char path[] = "/tmp/px-canfmt-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *fp = fdopen(fd, "wb");
    assert_non_null(fp);
    static const char *const frames[] = {
        "123#DEADBEEF",
        "12345678#00",
        "123#R3",
        "123##1"
        "00112233445566778899AABBCCDDEEFF",
        "1FFFFFFF##2AA",
        "7FF#",
        "20000004#0000000000000000",
    };
    size_t nf = sizeof(frames) / sizeof(frames[0]);
    assert_int_equal(px_canpcap_write_header(fp, NULL), PX_OK);
    for (size_t i = 0; i < nf; i++) {
        px_can_frame f = parse_ok(frames[i]);
        assert_int_equal(px_canpcap_write_frame(fp, 1699999999u + i, 123456, &f, NULL), PX_OK);
    }
    assert_int_equal(fclose(fp), 0);

    char cmd[256];
    snprintf(cmd, sizeof(cmd),
             "tshark -r %s -T fields -E separator=, -e _ws.col.Protocol -e can.id -e can.len "
             "-e can.flags.xtd -e can.flags.rtr -e can.flags.err -e canfd.flags.brs "
             "-e canfd.flags.esi -e data.data 2>/dev/null",
             path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    static const char *const want[] = {
        "CAN,291,4,0,0,0,,,deadbeef",
        "CAN,305419896,1,1,0,0,,,00",
        "CAN,291,3,0,1,0,,,000000", /* Wireshark shows a remote frame's len as data */
        "CANFD,291,16,0,,,1,0,00112233445566778899aabbccddeeff",
        "CANFD,536870911,1,1,,,0,1,aa",
        "CAN,2047,0,0,0,0,,,",
        "CAN,,8,,,1,,,",
    };
    char line[512];
    size_t n = 0;
    while (fgets(line, sizeof(line), p)) {
        line[strcspn(line, "\n")] = 0;
        if (n < nf && strcmp(line, want[n]) != 0)
            fail_msg("tshark record %zu: got '%s', want '%s'", n + 1, line, want[n]);
        n++;
    }
    int st = pclose(p);
    unlink(path);
    assert_int_equal(st, 0);
    assert_int_equal(n, nf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_forms),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_format_dots_and_limits),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_log_lines),
        cmocka_unit_test(test_log_rejections),
        cmocka_unit_test(test_pcap_bytes),
        cmocka_unit_test(test_pcap_tshark),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
