/* plexus — CAN frame validation and QEMU/Linux translation (frame.h). */
#include <string.h>

#include "devices/can/frame.h"

#if defined(__has_include)
#if __has_include(<linux/can.h>)
#include <linux/can.h>
/* The local format is SocketCAN's; keep the two in step. */
_Static_assert(sizeof(struct canfd_frame) == PX_CAN_FRAME_SIZE, "canfd_frame size");
_Static_assert(sizeof(struct can_frame) == PX_CAN_MTU, "can_frame size");
_Static_assert(offsetof(struct canfd_frame, data) == offsetof(px_can_frame, data), "data");
_Static_assert(offsetof(struct canfd_frame, flags) == offsetof(px_can_frame, flags), "flags");
_Static_assert(CAN_EFF_FLAG == PX_CAN_EFF_FLAG && CAN_RTR_FLAG == PX_CAN_RTR_FLAG &&
                   CAN_ERR_FLAG == PX_CAN_ERR_FLAG,
               "can_id flags");
_Static_assert(CANFD_BRS == PX_CANFD_BRS && CANFD_ESI == PX_CANFD_ESI, "FD flags");
#endif
#endif

/* Byte offsets shared by can_frame, canfd_frame and qemu_can_frame. */
#define OFF_LEN   4
#define OFF_FLAGS 5
#define OFF_RES0  6
#define OFF_RES1  7
#define OFF_DATA  8

const char *px_can_status_str(px_can_status st)
{
    switch (st) {
    case PX_CAN_OK:
        return "ok";
    case PX_CAN_BAD_SIZE:
        return "wrong frame size";
    case PX_CAN_BAD_LEN:
        return "data length out of range";
    case PX_CAN_BAD_FLAGS:
        return "bad flags";
    case PX_CAN_BAD_ID:
        return "bad identifier";
    case PX_CAN_BAD_RESERVED:
        return "reserved bytes not zero";
    case PX_CAN_FD_DISABLED:
        return "CAN FD frame but FD frames are off";
    case PX_CAN_STATUS_COUNT:
        break;
    }
    return "unknown status";
}

bool px_can_fd_len_valid(unsigned len)
{
    if (len <= 8)
        return true;
    switch (len) {
    case 12:
    case 16:
    case 20:
    case 24:
    case 32:
    case 48:
    case 64:
        return true;
    default:
        return false;
    }
}

px_can_status px_can_check(const px_can_frame *f, bool strict_pad)
{
    bool fd = f->flags & PX_CANFD_FDF;

    if (f->flags & ~PX_CANFD_FLAGS)
        return PX_CAN_BAD_FLAGS;
    if (f->res0 || f->res1)
        return PX_CAN_BAD_RESERVED;
    if (fd) {
        if (f->can_id & (PX_CAN_RTR_FLAG | PX_CAN_ERR_FLAG))
            return PX_CAN_BAD_ID; /* FD has no remote frames; error frames are classic */
        if (!px_can_fd_len_valid(f->len))
            return PX_CAN_BAD_LEN;
    } else {
        if (f->flags & (PX_CANFD_BRS | PX_CANFD_ESI))
            return PX_CAN_BAD_FLAGS;
        if (f->len > PX_CAN_MAX_DLEN)
            return PX_CAN_BAD_LEN;
    }
    /* Error frames carry their class in all 29 id bits; a standard data or
     * remote frame has 11. */
    if (!(f->can_id & (PX_CAN_EFF_FLAG | PX_CAN_ERR_FLAG)) &&
        (f->can_id & PX_CAN_EFF_MASK) > PX_CAN_SFF_MASK)
        return PX_CAN_BAD_ID;
    if (strict_pad) {
        /* A remote request carries no data, whatever its len says. */
        unsigned used = (f->can_id & PX_CAN_RTR_FLAG) ? 0 : f->len;
        for (unsigned i = used; i < PX_CANFD_MAX_DLEN; i++)
            if (f->data[i])
                return PX_CAN_BAD_LEN;
    }
    return PX_CAN_OK;
}

/* Copies the common header and len data bytes (none for a remote request)
 * from an unaligned buffer holding at least OFF_DATA + cap_data bytes. */
static void load(const unsigned char *b, size_t cap_data, px_can_frame *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(&out->can_id, b, sizeof(out->can_id));
    out->len = b[OFF_LEN];
    out->flags = b[OFF_FLAGS];
    out->res0 = b[OFF_RES0];
    out->res1 = b[OFF_RES1];
    size_t n = out->len;
    if (out->can_id & PX_CAN_RTR_FLAG)
        n = 0;
    if (n > cap_data)
        n = cap_data; /* len is out of range: px_can_check says so */
    memcpy(out->data, b + OFF_DATA, n);
}

static px_can_status finish(px_can_frame *out)
{
    px_can_status st = px_can_check(out, true);
    if (st != PX_CAN_OK)
        memset(out, 0, sizeof(*out));
    return st;
}

px_can_status px_can_from_wire(const void *buf, size_t n, px_can_frame *out)
{
    if (n != PX_CAN_FRAME_SIZE) {
        memset(out, 0, sizeof(*out));
        return PX_CAN_BAD_SIZE;
    }
    load(buf, PX_CANFD_MAX_DLEN, out);
    return finish(out);
}

px_can_status px_can_from_linux(const void *buf, size_t n, px_can_frame *out)
{
    if (n == PX_CAN_MTU) {
        load(buf, PX_CAN_MAX_DLEN, out);
        /* can_frame: byte 5 is padding, 6 reserved, 7 len8_dlc (DLC 9..15
         * of an 8-byte frame, which plexus does not carry). */
        out->flags = 0;
        out->res0 = 0;
        out->res1 = 0;
        return finish(out);
    }
    if (n == PX_CANFD_MTU) {
        load(buf, PX_CANFD_MAX_DLEN, out);
        out->flags |= PX_CANFD_FDF;
        return finish(out);
    }
    memset(out, 0, sizeof(*out));
    return PX_CAN_BAD_SIZE;
}

px_can_status px_can_from_qemu(const void *buf, size_t n, px_can_frame *out)
{
    if (n == PX_CAN_MTU) {
        load(buf, PX_CAN_MAX_DLEN, out);
        /* QEMU's flags byte sits where can_frame has padding; a classic
         * write carries no flags. Its two pad bytes are uninitialised. */
        out->flags = 0;
        out->res0 = 0;
        out->res1 = 0;
        return finish(out);
    }
    if (n == PX_CANFD_MTU) {
        load(buf, PX_CANFD_MAX_DLEN, out);
        unsigned q = out->flags;
        if (q & ~PX_QEMU_CAN_FLAGS) {
            memset(out, 0, sizeof(*out));
            return PX_CAN_BAD_FLAGS;
        }
        out->flags = (uint8_t)(PX_CANFD_FDF | (q & PX_QEMU_CAN_FRMF_BRS ? PX_CANFD_BRS : 0) |
                               (q & PX_QEMU_CAN_FRMF_ESI ? PX_CANFD_ESI : 0));
        out->res0 = 0;
        out->res1 = 0;
        return finish(out);
    }
    memset(out, 0, sizeof(*out));
    return PX_CAN_BAD_SIZE;
}

size_t px_can_to_qemu(const px_can_frame *f, bool fd_mode, void *buf, size_t cap, px_can_status *st)
{
    px_can_status c = px_can_check(f, false);
    if (c != PX_CAN_OK) {
        *st = c;
        return 0;
    }
    bool fd = f->flags & PX_CANFD_FDF;
    if (fd && !fd_mode) {
        *st = PX_CAN_FD_DISABLED;
        return 0;
    }
    size_t n = fd ? PX_CANFD_MTU : PX_CAN_MTU;
    if (cap < n) {
        *st = PX_CAN_BAD_SIZE;
        return 0;
    }
    unsigned char *b = buf;
    memset(b, 0, n);
    memcpy(b, &f->can_id, sizeof(f->can_id));
    b[OFF_LEN] = f->len;
    if (fd)
        b[OFF_FLAGS] = (uint8_t)(PX_QEMU_CAN_FRMF_TYPE_FD |
                                 (f->flags & PX_CANFD_BRS ? PX_QEMU_CAN_FRMF_BRS : 0) |
                                 (f->flags & PX_CANFD_ESI ? PX_QEMU_CAN_FRMF_ESI : 0));
    if (!(f->can_id & PX_CAN_RTR_FLAG))
        memcpy(b + OFF_DATA, f->data, f->len);
    *st = PX_CAN_OK;
    return n;
}

size_t px_can_frame_pack(const px_can_frame *f, void *buf, size_t cap)
{
    if (px_can_check(f, false) != PX_CAN_OK || cap < 6u + f->len)
        return 0;
    uint8_t *b = buf;
    b[0] = (uint8_t)(f->can_id >> 24);
    b[1] = (uint8_t)(f->can_id >> 16);
    b[2] = (uint8_t)(f->can_id >> 8);
    b[3] = (uint8_t)f->can_id;
    b[4] = f->len;
    b[5] = f->flags;
    memcpy(b + 6, f->data, f->len);
    return 6u + f->len;
}

px_can_status px_can_frame_unpack(const void *buf, size_t n, px_can_frame *out)
{
    memset(out, 0, sizeof(*out));
    const uint8_t *b = buf;
    if (n < 6 || n > PX_CAN_PACKED_MAX || n != 6u + b[4])
        return PX_CAN_BAD_SIZE;
    out->can_id = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    out->len = b[4];
    out->flags = b[5];
    memcpy(out->data, b + 6, out->len);
    px_can_status st = px_can_check(out, true);
    if (st != PX_CAN_OK)
        memset(out, 0, sizeof(*out));
    return st;
}
