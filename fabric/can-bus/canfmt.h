/* plexus — the text formats of can-utils, and pcap capture files.
 *
 * Frame text is cansend's syntax, which candump -L also writes:
 *   123#DEADBEEF         standard id (3 hex digits), classic data (0..8 bytes)
 *   12345678#00          extended id (8 hex digits, at most 1FFFFFFF)
 *   123#R  123#R3        remote frame, DLC 0 / 3 (0..8)
 *   123##1DEADBEEF       CAN FD: one hex nibble of flags (BRS 1, ESI 2, FDF 4,
 *                        FDF is implied), then 0..8,12,16,20,24,32,48,64 bytes
 *   123#DE.AD.BE.EF      a '.' may precede any data byte
 *   20000004#0000000000000000
 *                        error frame: 8 digits with PX_CAN_ERR_FLAG, classic
 * Hex digits in either case are read; upper case is written. Anything else
 * is rejected with a sentence naming what was wrong and its 1-based column:
 * can-utils' len8_dlc suffix (_N) included, which px_can_frame cannot hold.
 *
 * A candump -L log line is "(SECONDS.MICROS) IFNAME FRAME", optionally
 * followed by " R" or " T" (candump -x: received / transmitted), e.g.
 *   (1699999999.123456) can0 123#DEADBEEF
 *
 * The pcap writer produces LINKTYPE_CAN_SOCKETCAN (227) files that tcpdump,
 * Wireshark and tshark read: see px_canpcap_* below.
 *
 * Parsing and formatting are pure (no allocation, no global state; safe
 * from any thread and inside any callback). The pcap functions write to the
 * FILE * they are given and may block on it.
 */
#ifndef PX_CANBUS_CANFMT_H
#define PX_CANBUS_CANFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "devices/can/frame.h"
#include "fabric/core/err.h"

/* Longest frame text plus NUL: "12345678##1" and 64 bytes each with a dot. */
#define PX_CANFMT_FRAME_MAX (11u + 64u * 3u + 1u)
/* Interface name as Linux allows it (IFNAMSIZ - 1 characters). */
#define PX_CANFMT_IFNAME_MAX 15u
/* Longest log line plus NUL: "(" 20 digits "." 6 digits ") " name " " frame " T". */
#define PX_CANFMT_LINE_MAX                                                                         \
    (1u + 20u + 1u + 6u + 2u + PX_CANFMT_IFNAME_MAX + 1u + PX_CANFMT_FRAME_MAX + 2u)

/* Parses frame text s[0..n) (no NUL needed; nothing may follow the frame)
 * into *out (data past len zeroed, res0/res1 0). On error *out is all
 * zero and *em says what and at which column. */
px_err px_canfmt_parse(const char *s, size_t n, px_can_frame *out, px_errmsg *em);

/* Writes *f as frame text, NUL-terminated, into buf; with dots, a '.'
 * between data bytes (as candump's -s). *written (may be NULL) gets the
 * length without NUL. PX_E_INVAL if *f is no frame the text can express
 * (checked as px_canfmt_parse checks text), PX_E_TOOBIG if cap is short
 * (PX_CANFMT_FRAME_MAX always suffices). */
px_err px_canfmt_format(const px_can_frame *f, bool dots, char *buf, size_t cap, size_t *written,
                        px_errmsg *em);

/* One candump -L line. */
typedef struct px_canfmt_log {
    uint64_t sec;
    uint32_t usec;                         /* 0..999999 */
    char ifname[PX_CANFMT_IFNAME_MAX + 1]; /* NUL-terminated, 1..15 chars */
    char dir;                              /* 'R', 'T', or 0 when the line has none */
    px_can_frame frame;
} px_canfmt_log;

/* Parses one log line s[0..n); a final "\n" or "\r\n" is allowed. Fields
 * are separated by exactly one space; the micros have exactly 6 digits.
 * On error *out is all zero and *em names the column. */
px_err px_canfmt_parse_log(const char *s, size_t n, px_canfmt_log *out, px_errmsg *em);

/* Writes *l as candump -L does (seconds zero-padded to 10 digits), no
 * newline, NUL-terminated. Errors as px_canfmt_format, plus PX_E_INVAL for
 * an empty or unprintable ifname or usec > 999999. */
px_err px_canfmt_format_log(const px_canfmt_log *l, char *buf, size_t cap, size_t *written,
                            px_errmsg *em);

/* pcap (libpcap 2.4, microsecond timestamps, little-endian headers) with
 * LINKTYPE_CAN_SOCKETCAN: each record is the 8-byte SocketCAN header
 * (can_id with its flag bits, big-endian; payload length; FD flags with
 * CANFD_FDF set on FD frames; two zero bytes) and the data, padded to 8
 * bytes for classic frames and 64 for FD frames (16 / 72 bytes in all, the
 * sizes readers that predate CANFD_FDF tell the two kinds apart by). */
#define PX_CANPCAP_LINKTYPE 227u
#define PX_CANPCAP_SNAPLEN  72u

/* Writes the global header. PX_E_IO with errno's text if fwrite fails. */
px_err px_canpcap_write_header(FILE *fp, px_errmsg *em);

/* Writes one record. PX_E_INVAL if *f is not a frame px_canfmt_format would
 * write or sec does not fit pcap's 32 bits or usec > 999999; PX_E_IO if
 * fwrite fails. Does not flush. */
px_err px_canpcap_write_frame(FILE *fp, uint64_t sec, uint32_t usec, const px_can_frame *f,
                              px_errmsg *em);

#endif
