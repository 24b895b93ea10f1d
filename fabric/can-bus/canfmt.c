/* plexus — can-utils text formats and pcap capture files (canfmt.h).
 *
 * The text syntax follows can-utils' lib.c (parse_canframe, sprint_canframe)
 * but is strict where lib.c is lenient: lib.c ignores trailing junk, takes
 * any DLC digit after R, reads 9 FD bytes as a length the kernel pads, and
 * takes an 8-digit id above 1FFFFFFF; here each of those is an error.
 * The pcap record follows tcpdump.org's LINKTYPE_CAN_SOCKETCAN page.
 */
#include <errno.h>
#include <string.h>

#include "fabric/can-bus/canfmt.h"
#include "fabric/can-bus/timing.h"
#include "fabric/core/text.h"

static const char hexdig[] = "0123456789ABCDEF";

/* A cursor over the text; base is the column of s[0] minus 1, so frame
 * text inside a log line reports the line's columns. */
typedef struct cur {
    const char *s;
    size_t n;
    size_t i;
    size_t base;
} cur;

static size_t col(const cur *c)
{
    return c->base + c->i + 1;
}

/* Printable rendering of one input character for messages. */
static const char *show(char ch, char buf[8])
{
    unsigned char u = (unsigned char)ch;
    if (u >= 0x21 && u < 0x7f)
        snprintf(buf, 8, "'%c'", ch);
    else
        snprintf(buf, 8, "\\x%02X", u);
    return buf;
}

static px_err bad(const cur *c, px_errmsg *em, const char *what)
{
    char b[8];
    if (c->i >= c->n)
        return px_errmsg_set(em, PX_E_INVAL, "%s: text ends at column %zu", what, col(c));
    return px_errmsg_set(em, PX_E_INVAL, "%s: %s at column %zu", what, show(c->s[c->i], b), col(c));
}

static px_err parse_id(cur *c, px_can_frame *f, px_errmsg *em)
{
    uint32_t v = 0;
    size_t start = c->i;
    while (c->i < c->n && c->s[c->i] != '#') {
        int h = px_hex_digit(c->s[c->i]);
        if (h < 0)
            return bad(c, em, "bad hex digit in CAN id");
        if (c->i - start == 8)
            return bad(c, em, "CAN id has more than 8 hex digits (missing '#'?)");
        v = v << 4 | (uint32_t)h;
        c->i++;
    }
    size_t digits = c->i - start;
    if (c->i >= c->n)
        return px_errmsg_set(em, PX_E_INVAL,
                             "missing '#' after the CAN id (e.g. 123#DEADBEEF) at column %zu",
                             col(c));
    size_t idcol = c->base + start + 1;
    if (digits == 3) {
        if (v > PX_CAN_SFF_MASK)
            return px_errmsg_set(em, PX_E_INVAL,
                                 "standard CAN id %03X is over 7FF at column %zu (use 8 digits "
                                 "for an extended id)",
                                 v, idcol);
        f->can_id = v;
    } else if (digits == 8) {
        if (v & PX_CAN_ERR_FLAG) {
            if (v & (PX_CAN_EFF_FLAG | PX_CAN_RTR_FLAG))
                return px_errmsg_set(em, PX_E_INVAL,
                                     "error frame id %08X has EFF or RTR bits at column %zu", v,
                                     idcol);
            f->can_id = v;
        } else {
            if (v > PX_CAN_EFF_MASK)
                return px_errmsg_set(em, PX_E_INVAL,
                                     "29-bit CAN id %08X is out of range (max 1FFFFFFF) at "
                                     "column %zu",
                                     v, idcol);
            f->can_id = v | PX_CAN_EFF_FLAG;
        }
    } else {
        return px_errmsg_set(em, PX_E_INVAL,
                             "CAN id needs 3 hex digits (standard) or 8 (extended), got %zu at "
                             "column %zu",
                             digits, idcol);
    }
    c->i++; /* '#' */
    return PX_OK;
}

static px_err parse_rtr(cur *c, px_can_frame *f, px_errmsg *em)
{
    if (f->can_id & PX_CAN_ERR_FLAG)
        return bad(c, em, "an error frame cannot be a remote frame");
    f->can_id |= PX_CAN_RTR_FLAG;
    c->i++;
    if (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9') {
        unsigned dlc = (unsigned)(c->s[c->i] - '0');
        if (dlc > PX_CAN_MAX_DLEN)
            return bad(c, em, "remote frame DLC is over 8");
        f->len = (uint8_t)dlc;
        c->i++;
    }
    if (c->i < c->n && c->s[c->i] == '_')
        return bad(c, em, "len8_dlc (_N) is not supported");
    if (c->i < c->n)
        return bad(c, em, "unexpected character after remote frame");
    return PX_OK;
}

static px_err parse_data(cur *c, px_can_frame *f, unsigned max, px_errmsg *em)
{
    unsigned len = 0;
    while (c->i < c->n) {
        char ch = c->s[c->i];
        if (ch == '.') {
            c->i++;
            if (c->i >= c->n || px_hex_digit(c->s[c->i]) < 0)
                return bad(c, em, "a '.' must be followed by a data byte");
            continue;
        }
        if (ch == '_' && max == PX_CAN_MAX_DLEN)
            return bad(c, em, "len8_dlc (_N) is not supported");
        int hi = px_hex_digit(ch);
        if (hi < 0)
            return bad(c, em, "bad hex digit in data");
        if (len == max) {
            if (max == PX_CAN_MAX_DLEN)
                return bad(c, em,
                           "too long: classic CAN carries at most 8 data bytes (## for CAN FD)");
            return bad(c, em, "too long: CAN FD carries at most 64 data bytes");
        }
        c->i++;
        if (c->i >= c->n)
            return bad(c, em, "data byte needs two hex digits");
        int lo = px_hex_digit(c->s[c->i]);
        if (lo < 0)
            return bad(c, em, "bad hex digit in data");
        c->i++;
        f->data[len++] = (uint8_t)(hi << 4 | lo);
    }
    f->len = (uint8_t)len;
    return PX_OK;
}

static px_err parse_frame(cur *c, px_can_frame *f, px_errmsg *em)
{
    px_err err = parse_id(c, f, em);
    if (err)
        return err;
    if (c->i < c->n && (c->s[c->i] == 'R' || c->s[c->i] == 'r'))
        return parse_rtr(c, f, em);
    if (c->i < c->n && c->s[c->i] == '#') {
        if (f->can_id & PX_CAN_ERR_FLAG)
            return bad(c, em, "error frames are classic CAN, not FD");
        c->i++;
        int fl = c->i < c->n ? px_hex_digit(c->s[c->i]) : -1;
        if (fl < 0)
            return bad(c, em, "CAN FD needs a hex flags nibble after ## (BRS 1, ESI 2)");
        if ((unsigned)fl & ~PX_CANFD_FLAGS)
            return bad(c, em, "unknown CAN FD flag (BRS 1, ESI 2, FDF 4)");
        c->i++;
        f->flags = (uint8_t)(fl | PX_CANFD_FDF);
        size_t start = c->i;
        err = parse_data(c, f, PX_CANFD_MAX_DLEN, em);
        if (err)
            return err;
        if (px_can_len_to_dlc(f->len) < 0)
            return px_errmsg_set(em, PX_E_INVAL,
                                 "CAN FD length %u is not a DLC length (0-8, 12, 16, 20, 24, 32, "
                                 "48, 64) in the data at column %zu",
                                 f->len, c->base + start + 1);
        return PX_OK;
    }
    return parse_data(c, f, PX_CAN_MAX_DLEN, em);
}

px_err px_canfmt_parse(const char *s, size_t n, px_can_frame *out, px_errmsg *em)
{
    cur c = {s, n, 0, 0};
    memset(out, 0, sizeof(*out));
    px_err err = parse_frame(&c, out, em);
    if (err)
        memset(out, 0, sizeof(*out));
    return err;
}

/* The frames the text can express: what px_canfmt_parse can return. */
static px_err check_frame(const px_can_frame *f, px_errmsg *em)
{
    uint32_t id = f->can_id;
    if (id & PX_CAN_ERR_FLAG) {
        if (id & (PX_CAN_EFF_FLAG | PX_CAN_RTR_FLAG))
            return px_errmsg_set(em, PX_E_INVAL, "error frame id %08X has EFF or RTR bits", id);
        if (f->flags || f->len > PX_CAN_MAX_DLEN)
            return px_errmsg_set(em, PX_E_INVAL, "error frame must be classic, 0..8 bytes");
        return PX_OK;
    }
    if (!(id & PX_CAN_EFF_FLAG) && (id & PX_CAN_EFF_MASK) > PX_CAN_SFF_MASK)
        return px_errmsg_set(em, PX_E_INVAL, "standard CAN id %X is over 7FF",
                             id & PX_CAN_EFF_MASK);
    if (f->flags & PX_CANFD_FDF) {
        if (f->flags & ~PX_CANFD_FLAGS)
            return px_errmsg_set(em, PX_E_INVAL, "unknown CAN FD flags %02X", f->flags);
        if (id & PX_CAN_RTR_FLAG)
            return px_errmsg_set(em, PX_E_INVAL, "CAN FD has no remote frames");
        if (px_can_len_to_dlc(f->len) < 0)
            return px_errmsg_set(em, PX_E_INVAL, "CAN FD length %u is not a DLC length", f->len);
        return PX_OK;
    }
    if (f->flags)
        return px_errmsg_set(em, PX_E_INVAL, "flags %02X on a classic CAN frame", f->flags);
    if (f->len > PX_CAN_MAX_DLEN)
        return px_errmsg_set(em, PX_E_INVAL, "classic CAN length %u is over 8", f->len);
    return PX_OK;
}

/* Appends to a bounded buffer; overflow is reported once at the end. */
typedef struct out {
    char *buf;
    size_t cap;
    size_t n;
} out;

static void put_ch(out *o, char ch)
{
    if (o->n + 1 < o->cap)
        o->buf[o->n] = ch;
    o->n++;
}

static void put_hex(out *o, uint32_t v, unsigned digits)
{
    while (digits--)
        put_ch(o, hexdig[(v >> (4 * digits)) & 0xf]);
}

static px_err finish(out *o, size_t *written, px_errmsg *em)
{
    if (o->n + 1 > o->cap) {
        if (o->cap)
            o->buf[0] = 0;
        if (written)
            *written = 0;
        return px_errmsg_set(em, PX_E_TOOBIG, "CAN text needs %zu bytes, buffer has %zu", o->n + 1,
                             o->cap);
    }
    o->buf[o->n] = 0;
    if (written)
        *written = o->n;
    return PX_OK;
}

static void format_frame(out *o, const px_can_frame *f, bool dots)
{
    uint32_t id = f->can_id;
    if (id & PX_CAN_ERR_FLAG)
        put_hex(o, id & (PX_CAN_ERR_FLAG | PX_CAN_EFF_MASK), 8);
    else if (id & PX_CAN_EFF_FLAG)
        put_hex(o, id & PX_CAN_EFF_MASK, 8);
    else
        put_hex(o, id & PX_CAN_SFF_MASK, 3);
    put_ch(o, '#');
    bool fd = f->flags & PX_CANFD_FDF;
    if (!fd && (id & PX_CAN_RTR_FLAG) && !(id & PX_CAN_ERR_FLAG)) {
        put_ch(o, 'R');
        if (f->len)
            put_ch(o, (char)('0' + f->len));
        return;
    }
    if (fd) {
        /* BRS and ESI only: FDF is implied by "##", and can-utils releases
         * before CANFD_FDF read the nibble as flags verbatim. */
        put_ch(o, '#');
        put_hex(o, f->flags & (PX_CANFD_BRS | PX_CANFD_ESI), 1);
    }
    for (unsigned i = 0; i < f->len; i++) {
        if (dots && i)
            put_ch(o, '.');
        put_hex(o, f->data[i], 2);
    }
}

px_err px_canfmt_format(const px_can_frame *f, bool dots, char *buf, size_t cap, size_t *written,
                        px_errmsg *em)
{
    if (written)
        *written = 0;
    if (cap)
        buf[0] = 0;
    px_err err = check_frame(f, em);
    if (err)
        return err;
    out o = {buf, cap, 0};
    format_frame(&o, f, dots);
    return finish(&o, written, em);
}

static px_err parse_log(cur *c, px_canfmt_log *l, px_errmsg *em)
{
    if (c->i >= c->n || c->s[c->i] != '(')
        return bad(c, em, "log line must start with '(' and a timestamp");
    c->i++;
    size_t start = c->i;
    uint64_t sec = 0;
    while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9') {
        unsigned d = (unsigned)(c->s[c->i] - '0');
        if (sec > (UINT64_MAX - d) / 10)
            return bad(c, em, "timestamp seconds overflow");
        sec = sec * 10 + d;
        c->i++;
    }
    if (c->i == start)
        return bad(c, em, "expected timestamp seconds");
    if (c->i >= c->n || c->s[c->i] != '.')
        return bad(c, em, "expected '.' in timestamp");
    c->i++;
    uint32_t usec = 0;
    for (int k = 0; k < 6; k++) {
        if (c->i >= c->n || c->s[c->i] < '0' || c->s[c->i] > '9')
            return bad(c, em, "timestamp needs 6 digits of microseconds");
        usec = usec * 10 + (uint32_t)(c->s[c->i] - '0');
        c->i++;
    }
    if (c->i >= c->n || c->s[c->i] != ')')
        return bad(c, em, "expected ')' after 6 digits of microseconds");
    c->i++;
    if (c->i >= c->n || c->s[c->i] != ' ')
        return bad(c, em, "expected one space after the timestamp");
    c->i++;
    start = c->i;
    while (c->i < c->n && c->s[c->i] != ' ') {
        unsigned char u = (unsigned char)c->s[c->i];
        if (u < 0x21 || u >= 0x7f || u == '/')
            return bad(c, em, "bad character in interface name");
        if (c->i - start == PX_CANFMT_IFNAME_MAX)
            return bad(c, em, "interface name is longer than 15 characters");
        c->i++;
    }
    if (c->i == start)
        return bad(c, em, "expected an interface name");
    if (c->i >= c->n)
        return bad(c, em, "expected a space and a CAN frame after the interface name");
    memcpy(l->ifname, c->s + start, c->i - start);
    c->i++;
    /* The frame runs to the next space or the end. */
    size_t fstart = c->i;
    size_t fend = fstart;
    while (fend < c->n && c->s[fend] != ' ')
        fend++;
    cur fc = {c->s + fstart, fend - fstart, 0, c->base + fstart};
    px_err err = parse_frame(&fc, &l->frame, em);
    if (err)
        return err;
    c->i = fend;
    if (c->i < c->n) {
        c->i++; /* ' ' */
        if (c->i < c->n && (c->s[c->i] == 'R' || c->s[c->i] == 'T')) {
            l->dir = c->s[c->i];
            c->i++;
        } else {
            return bad(c, em, "expected R or T (direction) after the frame");
        }
        if (c->i < c->n)
            return bad(c, em, "unexpected text after the direction");
    }
    l->sec = sec;
    l->usec = usec;
    return PX_OK;
}

px_err px_canfmt_parse_log(const char *s, size_t n, px_canfmt_log *l, px_errmsg *em)
{
    memset(l, 0, sizeof(*l));
    if (n && s[n - 1] == '\n') {
        n--;
        if (n && s[n - 1] == '\r')
            n--;
    }
    cur c = {s, n, 0, 0};
    px_err err = parse_log(&c, l, em);
    if (err)
        memset(l, 0, sizeof(*l));
    return err;
}

px_err px_canfmt_format_log(const px_canfmt_log *l, char *buf, size_t cap, size_t *written,
                            px_errmsg *em)
{
    if (written)
        *written = 0;
    if (cap)
        buf[0] = 0;
    size_t nlen = strnlen(l->ifname, sizeof(l->ifname));
    if (nlen == 0 || nlen > PX_CANFMT_IFNAME_MAX)
        return px_errmsg_set(em, PX_E_INVAL, "interface name must be 1..15 characters");
    for (size_t i = 0; i < nlen; i++) {
        unsigned char u = (unsigned char)l->ifname[i];
        if (u < 0x21 || u >= 0x7f || u == '/')
            return px_errmsg_set(em, PX_E_INVAL, "bad character \\x%02X in interface name", u);
    }
    if (l->usec > 999999)
        return px_errmsg_set(em, PX_E_INVAL, "microseconds %u are over 999999", l->usec);
    if (l->dir && l->dir != 'R' && l->dir != 'T')
        return px_errmsg_set(em, PX_E_INVAL, "direction must be R, T or none");
    px_err err = check_frame(&l->frame, em);
    if (err)
        return err;
    char ts[40];
    int tn = snprintf(ts, sizeof(ts), "(%010llu.%06u) ", (unsigned long long)l->sec, l->usec);
    out o = {buf, cap, 0};
    for (int i = 0; i < tn; i++)
        put_ch(&o, ts[i]);
    for (size_t i = 0; i < nlen; i++)
        put_ch(&o, l->ifname[i]);
    put_ch(&o, ' ');
    format_frame(&o, &l->frame, false);
    if (l->dir) {
        put_ch(&o, ' ');
        put_ch(&o, l->dir);
    }
    return finish(&o, written, em);
}

static void le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static px_err write_all(FILE *fp, const void *p, size_t n, px_errmsg *em)
{
    if (fwrite(p, 1, n, fp) != n) {
        int e = errno ? errno : EIO;
        return px_errmsg_set(em, px_err_from_errno(e), "writing pcap: %s", strerror(e));
    }
    return PX_OK;
}

px_err px_canpcap_write_header(FILE *fp, px_errmsg *em)
{
    uint8_t h[24];
    le32(h, 0xa1b2c3d4u); /* microsecond timestamps */
    h[4] = 2;             /* version 2.4 */
    h[5] = 0;
    h[6] = 4;
    h[7] = 0;
    le32(h + 8, 0);  /* thiszone */
    le32(h + 12, 0); /* sigfigs */
    le32(h + 16, PX_CANPCAP_SNAPLEN);
    le32(h + 20, PX_CANPCAP_LINKTYPE);
    return write_all(fp, h, sizeof(h), em);
}

px_err px_canpcap_write_frame(FILE *fp, uint64_t sec, uint32_t usec, const px_can_frame *f,
                              px_errmsg *em)
{
    px_err err = check_frame(f, em);
    if (err)
        return err;
    if (sec > UINT32_MAX)
        return px_errmsg_set(em, PX_E_INVAL, "timestamp %llu s does not fit pcap's 32 bits",
                             (unsigned long long)sec);
    if (usec > 999999)
        return px_errmsg_set(em, PX_E_INVAL, "microseconds %u are over 999999", usec);
    bool fd = f->flags & PX_CANFD_FDF;
    uint32_t caplen = fd ? PX_CANFD_MTU : PX_CAN_MTU;
    uint8_t rec[16 + PX_CANFD_MTU];
    memset(rec, 0, sizeof(rec));
    le32(rec, (uint32_t)sec);
    le32(rec + 4, usec);
    le32(rec + 8, caplen);
    le32(rec + 12, caplen);
    uint8_t *p = rec + 16;
    p[0] = (uint8_t)(f->can_id >> 24); /* network byte order */
    p[1] = (uint8_t)(f->can_id >> 16);
    p[2] = (uint8_t)(f->can_id >> 8);
    p[3] = (uint8_t)f->can_id;
    p[4] = f->len;
    p[5] = fd ? f->flags : 0;
    bool rtr = !fd && (f->can_id & PX_CAN_RTR_FLAG);
    if (!rtr)
        memcpy(p + 8, f->data, f->len);
    return write_all(fp, rec, 16 + caplen, em);
}
