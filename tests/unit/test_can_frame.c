/* Unit tests: devices/can/frame (validation and QEMU/Linux translation). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "devices/can/frame.h"

static const unsigned char zeros[64];

/* A buffer as QEMU's can-host-socketcan writes it (qemu_can_frame). */
static size_t qemu_buf(unsigned char *b, uint32_t id, uint8_t len, uint8_t qflags, const void *data,
                       size_t n)
{
    memset(b, 0, PX_CANFD_MTU);
    memcpy(b, &id, 4);
    b[4] = len;
    b[5] = qflags;
    memcpy(b + 8, data, len <= 64 ? len : 64);
    return n;
}

static px_can_frame frame(uint32_t id, uint8_t len, uint8_t flags, const void *data)
{
    px_can_frame f;
    memset(&f, 0, sizeof(f));
    f.can_id = id;
    f.len = len;
    f.flags = flags;
    if (data)
        memcpy(f.data, data, len);
    return f;
}

static void test_layout(void **state)
{
    (void)state;
    assert_int_equal(sizeof(px_can_frame), 72);
    assert_int_equal(offsetof(px_can_frame, len), 4);
    assert_int_equal(offsetof(px_can_frame, flags), 5);
    assert_int_equal(offsetof(px_can_frame, data), 8);
}

static void test_fd_lengths(void **state)
{
    (void)state;
    unsigned ok = 0;
    for (unsigned l = 0; l <= 255; l++)
        ok += px_can_fd_len_valid(l);
    assert_int_equal(ok, 16); /* 0..8 and 12,16,20,24,32,48,64 */
    assert_true(px_can_fd_len_valid(64));
    assert_false(px_can_fd_len_valid(9));
    assert_false(px_can_fd_len_valid(65));
}

static void test_check_rules(void **state)
{
    (void)state;
    px_can_frame f = frame(0x123, 4, 0, "\xde\xad\xbe\xef");
    assert_int_equal(px_can_check(&f, true), PX_CAN_OK);
    f = frame(0x800, 0, 0, NULL); /* standard id above 11 bits */
    assert_int_equal(px_can_check(&f, true), PX_CAN_BAD_ID);
    f = frame(0x800 | PX_CAN_EFF_FLAG, 0, 0, NULL);
    assert_int_equal(px_can_check(&f, true), PX_CAN_OK);
    f = frame(0x1fffffff | PX_CAN_ERR_FLAG, 8, 0, NULL); /* error class bits */
    assert_int_equal(px_can_check(&f, true), PX_CAN_OK);
    f = frame(0x123, 9, 0, NULL);
    assert_int_equal(px_can_check(&f, true), PX_CAN_BAD_LEN);
    f = frame(0x123, 9, PX_CANFD_FDF, NULL);
    assert_int_equal(px_can_check(&f, true), PX_CAN_BAD_LEN);
    f = frame(0x123, 48, PX_CANFD_FDF | PX_CANFD_BRS | PX_CANFD_ESI, NULL);
    assert_int_equal(px_can_check(&f, true), PX_CAN_OK);
    f = frame(0x123, 65, PX_CANFD_FDF, NULL);
    assert_int_equal(px_can_check(&f, true), PX_CAN_BAD_LEN);
    f = frame(0x123, 1, PX_CANFD_BRS, NULL); /* BRS without FDF */
    assert_int_equal(px_can_check(&f, true), PX_CAN_BAD_FLAGS);
    f = frame(0x123, 1, 0x08, NULL); /* unknown flag */
    assert_int_equal(px_can_check(&f, true), PX_CAN_BAD_FLAGS);
    f = frame(0x123 | PX_CAN_RTR_FLAG, 0, PX_CANFD_FDF, NULL); /* no FD remote frames */
    assert_int_equal(px_can_check(&f, true), PX_CAN_BAD_ID);
    f = frame(0x123, 0, 0, NULL);
    f.res1 = 1;
    assert_int_equal(px_can_check(&f, true), PX_CAN_BAD_RESERVED);
    f = frame(0x123, 2, 0, "\x01\x02");
    f.data[2] = 9; /* past len */
    assert_int_equal(px_can_check(&f, true), PX_CAN_BAD_LEN);
    assert_int_equal(px_can_check(&f, false), PX_CAN_OK);
    f = frame(0x123 | PX_CAN_RTR_FLAG, 4, 0, NULL);
    assert_int_equal(px_can_check(&f, true), PX_CAN_OK);
    assert_string_equal(px_can_status_str(PX_CAN_OK), "ok");
    for (int st = 0; st <= PX_CAN_STATUS_COUNT; st++)
        assert_non_null(px_can_status_str((px_can_status)st));
}

static void test_from_wire(void **state)
{
    (void)state;
    unsigned char b[80];
    px_can_frame in =
        frame(0x1abcdef | PX_CAN_EFF_FLAG, 12, PX_CANFD_FDF | PX_CANFD_BRS, "0123456789ab");
    px_can_frame out;
    memcpy(b + 1, &in, sizeof(in)); /* unaligned */
    b[1 + 8 + 20] = 0x55;           /* junk past len: cleared, not refused */
    assert_int_equal(px_can_from_wire(b + 1, 72, &out), PX_CAN_OK);
    assert_memory_equal(&out, &in, sizeof(in));
    assert_int_equal(px_can_from_wire(b + 1, 71, &out), PX_CAN_BAD_SIZE);
    assert_int_equal(px_can_from_wire(b + 1, 73, &out), PX_CAN_BAD_SIZE);
    assert_int_equal(px_can_from_wire(b + 1, 16, &out), PX_CAN_BAD_SIZE);
    assert_int_equal(px_can_from_wire(b + 1, 0, &out), PX_CAN_BAD_SIZE);
    in.len = 13;
    memcpy(b, &in, sizeof(in));
    assert_int_equal(px_can_from_wire(b, 72, &out), PX_CAN_BAD_LEN);
    px_can_frame zero;
    memset(&zero, 0, sizeof(zero));
    assert_memory_equal(&out, &zero, sizeof(zero)); /* nothing half-copied */
}

static void test_from_qemu_classic(void **state)
{
    (void)state;
    unsigned char b[PX_CANFD_MTU];
    px_can_frame out;
    /* QEMU's classic write: 16 bytes; its flags/pad bytes are ignored. */
    qemu_buf(b, 0x123, 4, 0, "\xde\xad\xbe\xef", 16);
    b[5] = 0x10;
    b[6] = 0xaa;
    b[7] = 0xbb;
    assert_int_equal(px_can_from_qemu(b, 16, &out), PX_CAN_OK);
    px_can_frame want = frame(0x123, 4, 0, "\xde\xad\xbe\xef");
    assert_memory_equal(&out, &want, sizeof(want));
    qemu_buf(b, 0x123, 9, 0, zeros, 16);
    assert_int_equal(px_can_from_qemu(b, 16, &out), PX_CAN_BAD_LEN);
    assert_int_equal(px_can_from_qemu(b, 15, &out), PX_CAN_BAD_SIZE);
    assert_int_equal(px_can_from_qemu(b, 17, &out), PX_CAN_BAD_SIZE);
    /* Remote request: len is the requested length, no data. */
    qemu_buf(b, 0x7ff | PX_CAN_RTR_FLAG, 8, 0, "\x01\x02\x03\x04\x05\x06\x07\x08", 16);
    assert_int_equal(px_can_from_qemu(b, 16, &out), PX_CAN_OK);
    want = frame(0x7ff | PX_CAN_RTR_FLAG, 8, 0, NULL);
    assert_memory_equal(&out, &want, sizeof(want));
}

static void test_from_qemu_fd(void **state)
{
    (void)state;
    unsigned char b[PX_CANFD_MTU], data[64];
    for (int i = 0; i < 64; i++)
        data[i] = (unsigned char)i;
    px_can_frame out;
    qemu_buf(b, 0x42, 64, PX_QEMU_CAN_FRMF_TYPE_FD | PX_QEMU_CAN_FRMF_BRS, data, 72);
    assert_int_equal(px_can_from_qemu(b, 72, &out), PX_CAN_OK);
    assert_int_equal(out.flags, PX_CANFD_FDF | PX_CANFD_BRS);
    assert_int_equal(out.len, 64);
    assert_memory_equal(out.data, data, 64);
    qemu_buf(b, 0x42, 8, PX_QEMU_CAN_FRMF_TYPE_FD | PX_QEMU_CAN_FRMF_ESI, data, 72);
    assert_int_equal(px_can_from_qemu(b, 72, &out), PX_CAN_OK);
    assert_int_equal(out.flags, PX_CANFD_FDF | PX_CANFD_ESI);
    /* 72 bytes without QEMU's FD flag is still FD, as for Linux. */
    qemu_buf(b, 0x42, 20, 0, data, 72);
    assert_int_equal(px_can_from_qemu(b, 72, &out), PX_CAN_OK);
    assert_int_equal(out.flags, PX_CANFD_FDF);
    /* Linux's FDF bit is not a QEMU flag. */
    qemu_buf(b, 0x42, 8, PX_CANFD_FDF, data, 72);
    assert_int_equal(px_can_from_qemu(b, 72, &out), PX_CAN_BAD_FLAGS);
    qemu_buf(b, 0x42, 9, PX_QEMU_CAN_FRMF_TYPE_FD, data, 72);
    assert_int_equal(px_can_from_qemu(b, 72, &out), PX_CAN_BAD_LEN);
    qemu_buf(b, 0x42, 200, PX_QEMU_CAN_FRMF_TYPE_FD, data, 72);
    assert_int_equal(px_can_from_qemu(b, 72, &out), PX_CAN_BAD_LEN);
}

static void test_from_linux(void **state)
{
    (void)state;
    unsigned char b[PX_CANFD_MTU];
    px_can_frame out;
    qemu_buf(b, 0x100, 2, 0, "\x01\x02", 16);
    b[7] = 9; /* len8_dlc: dropped */
    assert_int_equal(px_can_from_linux(b, 16, &out), PX_CAN_OK);
    assert_int_equal(out.res1, 0);
    qemu_buf(b, 0x100, 2, PX_CANFD_BRS, "\x01\x02", 72); /* no FDF: older kernels */
    assert_int_equal(px_can_from_linux(b, 72, &out), PX_CAN_OK);
    assert_int_equal(out.flags, PX_CANFD_FDF | PX_CANFD_BRS);
    assert_int_equal(px_can_from_linux(b, 40, &out), PX_CAN_BAD_SIZE);
}

static void test_to_qemu(void **state)
{
    (void)state;
    unsigned char b[PX_CANFD_MTU + 8];
    px_can_status st;
    px_can_frame f = frame(0x123, 4, 0, "\xde\xad\xbe\xef");
    memset(b, 0xee, sizeof(b));
    assert_int_equal(px_can_to_qemu(&f, false, b, sizeof(b), &st), 16);
    assert_int_equal(st, PX_CAN_OK);
    unsigned char want[16] = {0x23, 0x01, 0, 0, 4, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0};
    assert_memory_equal(b, want, 16);
    assert_int_equal(b[16], 0xee); /* nothing past the 16 bytes */
    assert_int_equal(px_can_to_qemu(&f, true, b, sizeof(b), &st), 16);

    f = frame(0x123, 12, PX_CANFD_FDF | PX_CANFD_BRS | PX_CANFD_ESI, "abcdefghijkl");
    assert_int_equal(px_can_to_qemu(&f, false, b, sizeof(b), &st), 0);
    assert_int_equal(st, PX_CAN_FD_DISABLED);
    assert_int_equal(px_can_to_qemu(&f, true, b, 71, &st), 0);
    assert_int_equal(st, PX_CAN_BAD_SIZE);
    assert_int_equal(px_can_to_qemu(&f, true, b, sizeof(b), &st), 72);
    assert_int_equal(b[4], 12);
    assert_int_equal(b[5], PX_QEMU_CAN_FRMF_TYPE_FD | PX_QEMU_CAN_FRMF_BRS | PX_QEMU_CAN_FRMF_ESI);
    assert_memory_equal(b + 8, "abcdefghijkl", 12);
    assert_int_equal(b[8 + 12], 0);

    /* Round trip through QEMU's format gives the frame back. */
    px_can_frame back;
    assert_int_equal(px_can_from_qemu(b, 72, &back), PX_CAN_OK);
    assert_memory_equal(&back, &f, sizeof(f));

    f = frame(0x123, 9, 0, NULL);
    assert_int_equal(px_can_to_qemu(&f, true, b, sizeof(b), &st), 0);
    assert_int_equal(st, PX_CAN_BAD_LEN);
}

/* The packed cross-host form: exact bytes, round trips, and refusals. */
static void test_pack(void **state)
{
    (void)state;
    unsigned char b[PX_CAN_PACKED_MAX + 8];
    px_can_frame back;
    px_can_frame f = frame(0x123, 4, 0, "\xde\xad\xbe\xef");
    assert_int_equal(px_can_frame_pack(&f, b, sizeof(b)), 10);
    static const unsigned char want[] = {0, 0, 1, 0x23, 4, 0, 0xde, 0xad, 0xbe, 0xef};
    assert_memory_equal(b, want, sizeof(want));
    assert_int_equal(px_can_frame_unpack(b, 10, &back), PX_CAN_OK);
    assert_memory_equal(&back, &f, sizeof(f));

    unsigned char data[64];
    for (unsigned i = 0; i < 64; i++)
        data[i] = (unsigned char)(i * 7 + 1);
    f = frame(PX_CAN_EFF_FLAG | 0x1abcdef0, 64, PX_CANFD_FDF | PX_CANFD_BRS, data);
    assert_int_equal(px_can_frame_pack(&f, b, sizeof(b)), 70);
    assert_int_equal(b[0], 0x9a);
    assert_int_equal(px_can_frame_unpack(b, 70, &back), PX_CAN_OK);
    assert_memory_equal(&back, &f, sizeof(f));
    /* Too small a buffer, an invalid frame: nothing written. */
    assert_int_equal(px_can_frame_pack(&f, b, 69), 0);
    f = frame(0x800, 0, 0, NULL);
    assert_int_equal(px_can_frame_pack(&f, b, sizeof(b)), 0);

    /* Length byte disagreeing with the size, short input, bad content. */
    f = frame(0x7ff, 2, 0, "\x01\x02");
    assert_int_equal(px_can_frame_pack(&f, b, sizeof(b)), 8);
    assert_int_equal(px_can_frame_unpack(b, 7, &back), PX_CAN_BAD_SIZE);
    assert_memory_equal(&back, zeros, 64);
    assert_int_equal(px_can_frame_unpack(b, 9, &back), PX_CAN_BAD_SIZE);
    assert_int_equal(px_can_frame_unpack(b, 5, &back), PX_CAN_BAD_SIZE);
    b[5] = 0x80; /* unknown flag */
    assert_int_equal(px_can_frame_unpack(b, 8, &back), PX_CAN_BAD_FLAGS);
    b[5] = 0;
    b[2] = 0x08; /* standard id 0x8ff */
    assert_int_equal(px_can_frame_unpack(b, 8, &back), PX_CAN_BAD_ID);
    b[2] = 0;
    b[4] = 9; /* classic len 9 */
    memset(b + 6, 0, 9);
    assert_int_equal(px_can_frame_unpack(b, 15, &back), PX_CAN_BAD_LEN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_fd_lengths),
        cmocka_unit_test(test_check_rules),
        cmocka_unit_test(test_from_wire),
        cmocka_unit_test(test_from_qemu_classic),
        cmocka_unit_test(test_from_qemu_fd),
        cmocka_unit_test(test_from_linux),
        cmocka_unit_test(test_to_qemu),
        cmocka_unit_test(test_pack),
    };
    return cmocka_run_group_tests_name("can_frame", tests, NULL, NULL);
}
