/* plexus — CAN frames between QEMU's can-host-socketcan and a plexus node.
 *
 * The whole local frame format and every limit is in this header.
 *
 * px_can_frame is the message on the node's SOCK_SEQPACKET socket: exactly
 * PX_CAN_FRAME_SIZE (72) bytes per message, one frame per message, laid out
 * as Linux's struct canfd_frame. It is host byte order on purpose, as
 * SocketCAN is: it never leaves the host (the fabric wire protocol carries
 * frames between hosts, in its own encoding). Classic frames are 72-byte
 * messages too, told apart by PX_CANFD_FDF; there is no 16-byte message.
 *
 * QEMU's qemu_can_frame has the same layout, but QEMU marks an FD frame
 * with flag 0x10 (QEMU_CAN_FRMF_TYPE_FD) where Linux uses CANFD_FDF 0x04,
 * and can-host-socketcan reads and writes 16 bytes (CAN_MTU) for classic
 * frames and 72 (CANFD_MTU) for FD ones. px_can_from_qemu and
 * px_can_to_qemu translate at that edge.
 *
 * Every function here is pure: no allocation, no I/O, no global state;
 * safe from any thread and inside any callback.
 */
#ifndef PX_CAN_FRAME_H
#define PX_CAN_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* can_id: the identifier plus Linux's flag bits. */
#define PX_CAN_EFF_FLAG 0x80000000u /* 29-bit extended identifier */
#define PX_CAN_RTR_FLAG 0x40000000u /* remote transmission request */
#define PX_CAN_ERR_FLAG 0x20000000u /* error frame (class in the id bits) */
#define PX_CAN_SFF_MASK 0x000007ffu
#define PX_CAN_EFF_MASK 0x1fffffffu

/* px_can_frame.flags: Linux's canfd_frame flags. */
#define PX_CANFD_BRS   0x01u /* bit rate switch (FD only) */
#define PX_CANFD_ESI   0x02u /* error state indicator (FD only) */
#define PX_CANFD_FDF   0x04u /* this is a CAN FD frame */
#define PX_CANFD_FLAGS (PX_CANFD_BRS | PX_CANFD_ESI | PX_CANFD_FDF)

/* qemu_can_frame.flags (QEMU's include/net/can_emu.h). */
#define PX_QEMU_CAN_FRMF_BRS     0x01u
#define PX_QEMU_CAN_FRMF_ESI     0x02u
#define PX_QEMU_CAN_FRMF_TYPE_FD 0x10u
#define PX_QEMU_CAN_FLAGS        (PX_QEMU_CAN_FRMF_BRS | PX_QEMU_CAN_FRMF_ESI | PX_QEMU_CAN_FRMF_TYPE_FD)

#define PX_CAN_MAX_DLEN   8u  /* classic data bytes */
#define PX_CANFD_MAX_DLEN 64u /* FD data bytes */
#define PX_CAN_MTU        16u /* Linux CAN_MTU: QEMU's classic read/write size */
#define PX_CANFD_MTU      72u /* Linux CANFD_MTU: QEMU's FD read/write size */
#define PX_CAN_FRAME_SIZE 72u /* one message on the node socket */

typedef struct px_can_frame {
    uint32_t can_id; /* identifier | PX_CAN_*_FLAG, host byte order */
    uint8_t len;     /* data bytes: 0..8 classic; 0..8,12,16,20,24,32,48,64 FD */
    uint8_t flags;   /* PX_CANFD_* */
    uint8_t res0;    /* must be 0 */
    uint8_t res1;    /* must be 0 */
    _Alignas(8) uint8_t data[PX_CANFD_MAX_DLEN]; /* bytes past len are 0 */
} px_can_frame;

_Static_assert(sizeof(px_can_frame) == PX_CAN_FRAME_SIZE, "px_can_frame is canfd_frame");
_Static_assert(offsetof(px_can_frame, data) == 8, "data at offset 8, as in can_frame");

/* Why a frame was refused. PX_CAN_OK is 0; the rest index counters. */
typedef enum px_can_status {
    PX_CAN_OK = 0,
    PX_CAN_BAD_SIZE,     /* message/buffer is not 72 bytes (16 or 72 from QEMU or Linux) */
    PX_CAN_BAD_LEN,      /* len > 8 classic, > 64 FD, or not a valid FD length */
    PX_CAN_BAD_FLAGS,    /* unknown flag bits, or BRS/ESI on a classic frame */
    PX_CAN_BAD_ID,       /* standard id above 0x7ff, or RTR/ERR on an FD frame */
    PX_CAN_BAD_RESERVED, /* res0/res1 not zero */
    PX_CAN_FD_DISABLED,  /* FD frame for a reader that did not enable FD frames */
    PX_CAN_STATUS_COUNT
} px_can_status;

/* Short fixed text for a status ("len out of range"); never NULL. */
const char *px_can_status_str(px_can_status st);

/* True if len is a CAN FD data length (0..8, 12, 16, 20, 24, 32, 48, 64). */
bool px_can_fd_len_valid(unsigned len);

/* Checks every rule above on *f (including that data past len is zero
 * when strict_pad is set). Reads only *f. */
px_can_status px_can_check(const px_can_frame *f, bool strict_pad);

/* One message from the node socket: exactly PX_CAN_FRAME_SIZE bytes that
 * pass px_can_check (data past len is not required to be zero: it is
 * cleared in *out). buf may be unaligned. On error *out is all zero. */
px_can_status px_can_from_wire(const void *buf, size_t n, px_can_frame *out);

/* A buffer QEMU's can-host-socketcan wrote: 16 bytes = classic (QEMU's
 * flags byte is ignored, as Linux ignores that pad byte), 72 bytes = FD
 * (QEMU flags BRS/ESI/TYPE_FD only; FDF is set in *out whether or not QEMU
 * set TYPE_FD, as Linux treats a CANFD_MTU write as FD). The result passes
 * px_can_check with strict_pad. On error *out is all zero. */
px_can_status px_can_from_qemu(const void *buf, size_t n, px_can_frame *out);

/* A buffer in Linux SocketCAN's own format (a raw socket's read): 16 bytes
 * (can_frame) or 72 (canfd_frame; FDF is set in *out). Otherwise as
 * px_can_from_wire. For endpoints on real SocketCAN interfaces. */
px_can_status px_can_from_linux(const void *buf, size_t n, px_can_frame *out);

/* Writes what can-host-socketcan expects to read for *f (which must pass
 * px_can_check) into buf: a classic frame as 16 bytes with flags 0, an FD
 * frame as 72 bytes with QEMU's flags (TYPE_FD | BRS/ESI). Returns the byte
 * count, or 0 with *st set (PX_CAN_FD_DISABLED for an FD frame when
 * fd_mode is false; PX_CAN_BAD_SIZE if cap is too small; the check's status
 * if *f is invalid). buf may be unaligned. */
size_t px_can_to_qemu(const px_can_frame *f, bool fd_mode, void *buf, size_t cap,
                      px_can_status *st);

/* The packed form frames take across hosts (the fabric's CAN message):
 * can_id big-endian (4 bytes), len, flags, then the len data bytes: 6 to 70
 * bytes. Pack writes it for a frame that passes px_can_check (returns 0
 * otherwise, or if cap < 6 + len). Unpack accepts exactly 6 + len bytes
 * that give a frame passing px_can_check (data past len zero); on error
 * *out is all zero. */
#define PX_CAN_PACKED_MAX 70u
size_t px_can_frame_pack(const px_can_frame *f, void *buf, size_t cap);
px_can_status px_can_frame_unpack(const void *buf, size_t n, px_can_frame *out);

#endif
