/* plexus — exact on-the-wire length of a CAN frame (timing.h).
 *
 * References (see docs/can-timing.md for the full model):
 *   - ISO 11898-1:2015, CAN data link layer: frame formats, bit stuffing,
 *     CRC-15/17/21, FD stuff count and fixed stuff bits.
 *   - CiA, "Cyclic redundancy check (CRC) in CAN frames" (can-cia.org): the
 *     three polynomials, the Gray-coded 3-bit stuff-bit counter with parity.
 *   - Vector e-learning, "Bit stuffing for CAN FD": dynamic stuffing from SOF
 *     to the end of the data field, stuff bits included in the FD CRC, a
 *     fixed stuff bit complementing its predecessor before the stuff count
 *     and after every 4 bits of the CRC field.
 *   - Davis, Burns, Bril, Lukkien, "Controller Area Network (CAN)
 *     schedulability analysis: refuted, revisited and revised" (2007): the
 *     worst-case stuffing bound used by the tests.
 */
#include <stdbool.h>
#include <string.h>

#include "fabric/can-bus/timing.h"

#define CRC15_POLY 0x4599u
#define CRC17_POLY 0x1685bu
#define CRC21_POLY 0x102899u

static const uint8_t dlc_len[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64};

unsigned px_can_dlc_to_len(unsigned dlc)
{
    return dlc < 16 ? dlc_len[dlc] : 0;
}

int px_can_len_to_dlc(unsigned len)
{
    for (int dlc = 0; dlc < 16; dlc++)
        if (dlc_len[dlc] == len)
            return dlc;
    return -1;
}

static uint32_t crc_poly(unsigned width)
{
    switch (width) {
    case 15:
        return CRC15_POLY;
    case 17:
        return CRC17_POLY;
    case 21:
        return CRC21_POLY;
    default:
        return 0;
    }
}

/* One step of the shift register of ISO 11898-1 (CRC_NXT = bit XOR the
 * register's top bit; shift left; XOR the polynomial if CRC_NXT). */
static uint32_t crc_step(unsigned width, uint32_t poly, uint32_t reg, unsigned bit)
{
    uint32_t mask = (1u << width) - 1;
    unsigned nxt = (bit & 1u) ^ ((reg >> (width - 1)) & 1u);
    reg = (reg << 1) & mask;
    return nxt ? reg ^ poly : reg;
}

uint32_t px_can_crc(unsigned width, uint32_t init, const uint8_t *bits, size_t nbits)
{
    uint32_t poly = crc_poly(width);
    if (!poly)
        return 0;
    uint32_t reg = init & ((1u << width) - 1);
    for (size_t i = 0; i < nbits; i++)
        reg = crc_step(width, poly, reg, bits[i]);
    return reg;
}

/* The bit sequence under construction. Bits are only counted unless an
 * output buffer was given. */
typedef struct wire {
    uint8_t *bits; /* optional */
    size_t cap;
    size_t n;
    bool data_phase; /* bits now go at the data bit rate */
    bool fd;
    bool crc_on; /* bits now feed the CRC */
    unsigned last;
    unsigned run_val;
    unsigned run_len; /* equal bits in a row, stuff bits included */
    unsigned crc_width;
    uint32_t crc_poly;
    uint32_t crc;
    px_can_bitlen bl;
} wire;

static void put(wire *w, unsigned bit)
{
    if (w->bits && w->n < w->cap)
        w->bits[w->n] = (uint8_t)bit;
    w->n++;
    w->last = bit;
    if (w->data_phase)
        w->bl.data_bits++;
    else
        w->bl.arb_bits++;
}

/* A bit in the dynamically stuffed part. The stuff bit after five equal
 * bits goes out before the next bit, not right after the fifth: in FD no
 * dynamic stuff bit follows the last data bit (the fixed stuff bit in front
 * of the stuff count takes its place), and a stuff bit right after BRS is
 * sent after the switch, at the data bit rate. */
static void put_stuffed(wire *w, unsigned bit)
{
    if (w->run_len == 5) {
        unsigned s = !w->run_val;
        put(w, s);
        w->bl.stuff_bits++;
        if (w->fd && w->crc_on) /* FD: the CRC covers dynamic stuff bits */
            w->crc = crc_step(w->crc_width, w->crc_poly, w->crc, s);
        w->run_val = s;
        w->run_len = 1;
    }
    put(w, bit);
    if (w->crc_on)
        w->crc = crc_step(w->crc_width, w->crc_poly, w->crc, bit);
    if (w->run_len && bit == w->run_val) {
        w->run_len++;
    } else {
        w->run_val = bit;
        w->run_len = 1;
    }
}

static void put_field(wire *w, uint32_t value, unsigned nbits)
{
    while (nbits--)
        put_stuffed(w, (value >> nbits) & 1u);
}

static px_err check_frame(const px_can_frame *f, px_errmsg *em)
{
    uint32_t id = f->can_id & PX_CAN_EFF_MASK;
    if (!(f->can_id & PX_CAN_EFF_FLAG) && id > PX_CAN_SFF_MASK)
        return px_errmsg_set(em, PX_E_INVAL, "standard CAN id %X does not fit in 11 bits", id);
    if (f->flags & PX_CANFD_FDF) {
        if (f->flags & ~PX_CANFD_FLAGS)
            return px_errmsg_set(em, PX_E_INVAL, "unknown CAN FD flags %02X", f->flags);
        if (f->can_id & PX_CAN_RTR_FLAG)
            return px_errmsg_set(em, PX_E_INVAL, "CAN FD has no remote frames");
        if (px_can_len_to_dlc(f->len) < 0)
            return px_errmsg_set(em, PX_E_INVAL,
                                 "CAN FD length %u is not a DLC length "
                                 "(0-8, 12, 16, 20, 24, 32, 48, 64)",
                                 f->len);
    } else {
        if (f->flags)
            return px_errmsg_set(em, PX_E_INVAL, "flags %02X on a classic CAN frame", f->flags);
        if (f->len > PX_CAN_MAX_DLEN)
            return px_errmsg_set(em, PX_E_INVAL, "classic CAN length %u is over 8", f->len);
    }
    return PX_OK;
}

static void build_error_frame(wire *w)
{
    for (unsigned i = 0; i < PX_CAN_ERROR_FLAG_BITS; i++)
        put(w, 0);
    for (unsigned i = 0; i < PX_CAN_ERROR_DELIMITER_BITS + PX_CAN_INTERMISSION_BITS; i++)
        put(w, 1);
}

/* SOF through the last data bit. */
static void build_head(wire *w, const px_can_frame *f)
{
    bool eff = f->can_id & PX_CAN_EFF_FLAG;
    uint32_t id = f->can_id & (eff ? PX_CAN_EFF_MASK : PX_CAN_SFF_MASK);
    bool rtr = !w->fd && (f->can_id & PX_CAN_RTR_FLAG);

    put_field(w, 0, 1); /* SOF */
    if (eff) {
        put_field(w, id >> 18, 11);
        put_field(w, 1, 1); /* SRR */
        put_field(w, 1, 1); /* IDE */
        put_field(w, id & 0x3ffffu, 18);
        put_field(w, rtr, 1); /* RTR; RRS (always 0) in FD */
    } else {
        put_field(w, id, 11);
        put_field(w, rtr, 1); /* RTR / RRS */
        put_field(w, 0, 1);   /* IDE */
    }
    if (w->fd) {
        put_field(w, 1, 1); /* FDF */
        put_field(w, 0, 1); /* res */
        put_field(w, !!(f->flags & PX_CANFD_BRS), 1);
        if (f->flags & PX_CANFD_BRS)
            w->data_phase = true; /* from the BRS sample point on */
        put_field(w, !!(f->flags & PX_CANFD_ESI), 1);
        put_field(w, (uint32_t)px_can_len_to_dlc(f->len), 4);
    } else {
        if (eff)
            put_field(w, 0, 1); /* r1 */
        put_field(w, 0, 1);     /* r0 */
        put_field(w, f->len, 4);
    }
    if (!rtr)
        for (unsigned i = 0; i < f->len; i++)
            put_field(w, f->data[i], 8);
}

static void build_classic(wire *w, const px_can_frame *f)
{
    w->crc_width = 15;
    w->crc_poly = CRC15_POLY;
    w->crc = 0;
    w->crc_on = true;
    build_head(w, f);
    w->crc_on = false;
    uint32_t crc = w->crc;
    put_field(w, crc, 15);
    /* Stuffing covers the CRC sequence: five equal bits at its end are
     * followed by a stuff bit before the delimiter. */
    if (w->run_len == 5) {
        put(w, !w->run_val);
        w->bl.stuff_bits++;
    }
    w->bl.crc = crc;
    w->bl.crc_bits = 15;
}

static void put_fixed_stuff(wire *w)
{
    put(w, !w->last);
    w->bl.fixed_stuff_bits++;
}

static void build_fd(wire *w, const px_can_frame *f)
{
    /* ISO 11898-1:2015 starts both FD CRC registers with a 1 in the top bit
     * (the original Bosch FD CRC started from 0). */
    w->crc_width = f->len > 16 ? 21 : 17;
    w->crc_poly = crc_poly(w->crc_width);
    w->crc = 1u << (w->crc_width - 1);
    w->crc_on = true;
    build_head(w, f);

    /* Stuff count: dynamic stuff bits mod 8, Gray-coded, then even parity
     * over the three Gray bits. It is covered by the CRC. */
    unsigned mod = w->bl.stuff_bits % 8;
    unsigned gray = mod ^ (mod >> 1);
    unsigned parity = ((gray >> 2) ^ (gray >> 1) ^ gray) & 1u;
    unsigned sc = (gray << 1) | parity;
    for (int i = 3; i >= 0; i--)
        w->crc = crc_step(w->crc_width, w->crc_poly, w->crc, (sc >> i) & 1u);
    w->crc_on = false;
    w->bl.stuff_count = (uint8_t)sc;
    w->bl.crc = w->crc;
    w->bl.crc_bits = (uint8_t)w->crc_width;

    /* CRC field: stuff count then CRC sequence, with a fixed stuff bit
     * (complement of the bit before it) in front and after every 4 bits. */
    unsigned nfield = 4 + w->crc_width;
    for (unsigned i = 0; i < nfield; i++) {
        if (i % 4 == 0)
            put_fixed_stuff(w);
        unsigned bit = i < 4 ? (sc >> (3 - i)) & 1u : (w->crc >> (nfield - 1 - i)) & 1u;
        put(w, bit);
    }
    w->data_phase = false; /* back to the nominal rate at the CRC delimiter */
}

static px_err build(const px_can_frame *f, wire *w, px_errmsg *em)
{
    if (f->can_id & PX_CAN_ERR_FLAG) {
        build_error_frame(w);
        return PX_OK;
    }
    px_err err = check_frame(f, em);
    if (err)
        return err;
    w->fd = f->flags & PX_CANFD_FDF;
    if (w->fd)
        build_fd(w, f);
    else
        build_classic(w, f);
    put(w, 1); /* CRC delimiter */
    put(w, 1); /* ACK slot, as the transmitter sends it */
    put(w, 1); /* ACK delimiter */
    for (unsigned i = 0; i < PX_CAN_EOF_BITS + PX_CAN_INTERMISSION_BITS; i++)
        put(w, 1);
    return PX_OK;
}

uint32_t px_can_bitlen_total(const px_can_bitlen *bl)
{
    return bl->arb_bits + bl->data_bits;
}

px_err px_can_timing(const px_can_frame *f, px_can_bitlen *out, px_errmsg *em)
{
    wire w;
    memset(&w, 0, sizeof(w));
    px_err err = build(f, &w, em);
    if (err) {
        memset(out, 0, sizeof(*out));
        return err;
    }
    *out = w.bl;
    return PX_OK;
}

px_err px_can_wire_bits(const px_can_frame *f, uint8_t *bits, size_t cap, size_t *nbits,
                        px_can_bitlen *out, px_errmsg *em)
{
    wire w;
    memset(&w, 0, sizeof(w));
    w.bits = bits;
    w.cap = cap;
    *nbits = 0;
    memset(out, 0, sizeof(*out));
    px_err err = build(f, &w, em);
    if (err)
        return err;
    if (w.n > cap)
        return px_errmsg_set(em, PX_E_TOOBIG, "frame has %zu bits, buffer holds %zu", w.n, cap);
    *nbits = w.n;
    *out = w.bl;
    return PX_OK;
}

static uint64_t bits_ns(uint32_t bits, uint32_t rate)
{
    return ((uint64_t)bits * 1000000000u + rate - 1) / rate;
}

px_err px_can_bitlen_ns(const px_can_bitlen *bl, uint32_t bitrate, uint32_t data_bitrate,
                        uint64_t *ns, px_errmsg *em)
{
    *ns = 0;
    if (!bitrate)
        return px_errmsg_set(em, PX_E_INVAL, "CAN bit rate is 0");
    if (bl->data_bits && !data_bitrate)
        return px_errmsg_set(em, PX_E_INVAL, "CAN FD frame with BRS needs a data bit rate");
    *ns =
        bits_ns(bl->arb_bits, bitrate) + (bl->data_bits ? bits_ns(bl->data_bits, data_bitrate) : 0);
    return PX_OK;
}

px_err px_can_duration_ns(const px_can_frame *f, uint32_t bitrate, uint32_t data_bitrate,
                          uint64_t *ns, px_errmsg *em)
{
    px_can_bitlen bl;
    px_err err = px_can_timing(f, &bl, em);
    if (err) {
        *ns = 0;
        return err;
    }
    return px_can_bitlen_ns(&bl, bitrate, data_bitrate, ns, em);
}

/* Identifier, SRR, IDE and RTR/RRS as sent; returns the count. */
static unsigned arb_bits(const px_can_frame *f, uint8_t bits[32])
{
    bool eff = f->can_id & PX_CAN_EFF_FLAG;
    uint32_t id = f->can_id & (eff ? PX_CAN_EFF_MASK : PX_CAN_SFF_MASK);
    unsigned rtr = !(f->flags & PX_CANFD_FDF) && (f->can_id & PX_CAN_RTR_FLAG);
    unsigned n = 0;
    uint32_t base = eff ? id >> 18 : id;
    for (int i = 10; i >= 0; i--)
        bits[n++] = (base >> i) & 1u;
    if (eff) {
        bits[n++] = 1; /* SRR */
        bits[n++] = 1; /* IDE */
        for (int i = 17; i >= 0; i--)
            bits[n++] = (id >> i) & 1u;
        bits[n++] = (uint8_t)rtr;
    } else {
        bits[n++] = (uint8_t)rtr;
        bits[n++] = 0; /* IDE */
    }
    return n;
}

int px_can_arb_cmp(const px_can_frame *a, const px_can_frame *b)
{
    bool ea = a->can_id & PX_CAN_ERR_FLAG, eb = b->can_id & PX_CAN_ERR_FLAG;
    if (ea || eb)
        return ea && eb ? 0 : ea ? -1 : 1;
    uint8_t ba[32], bb[32];
    unsigned na = arb_bits(a, ba), nb = arb_bits(b, bb);
    unsigned n = na < nb ? na : nb;
    for (unsigned i = 0; i < n; i++)
        if (ba[i] != bb[i])
            return ba[i] < bb[i] ? -1 : 1; /* dominant 0 wins */
    return 0; /* IDE differs before either sequence ends, so n covers both */
}
