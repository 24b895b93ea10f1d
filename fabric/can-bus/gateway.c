/* plexus — CAN gateway rules. See gateway.h. */
#include "fabric/can-bus/gateway.h"
#include "fabric/core/text.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#if defined(__linux__) && __has_include(<linux/can/gw.h>)
#include <linux/can/gw.h>
_Static_assert(PX_CANGW_MOD_ID == CGW_MOD_ID, "CGW_MOD_ID");
_Static_assert(PX_CANGW_MOD_LEN == CGW_MOD_LEN, "CGW_MOD_LEN");
_Static_assert(PX_CANGW_MOD_DATA == CGW_MOD_DATA, "CGW_MOD_DATA");
_Static_assert(PX_CANGW_MOD_FLAGS == CGW_MOD_FLAGS, "CGW_MOD_FLAGS");
_Static_assert(PX_CANGW_MAX_MODS == CGW_MOD_FUNCS, "CGW_MOD_FUNCS");
#endif

static const char filter_forms[] =
    "<id>:<mask> or <id>~<mask> in hex, like 123:7FF or 12345678:1FFFFFFF";
static const char mod_forms[] = "<op>:<what>:<can_id>.<len>.<data> (16 hex digits of data) or, "
                                "on fd rules, <op>:<what>:<can_id>.<flags>.<len>.<data> (128 "
                                "digits), like SET:IL:333.4.1122334455667788";
static const char *const op_names[] = {"AND", "OR", "XOR", "SET"};

/* The text quoted in messages: printable ASCII, at most 40 characters. */
static void quote(char *dst, size_t cap, const char *s, size_t n)
{
    size_t w = 0;
    for (size_t i = 0; i < n && w + 5 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (i == 40) {
            memcpy(dst + w, "...", 3);
            w += 3;
            break;
        }
        if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
            dst[w++] = (char)ch;
        else
            w += (size_t)snprintf(dst + w, cap - w, "\\x%02X", ch);
    }
    dst[w] = '\0';
}

/* "'G'", "byte 0x0A" or "end of text" for the character at fault. */
static void what_char(char *dst, size_t cap, const char *s, size_t n, size_t at)
{
    if (at >= n)
        snprintf(dst, cap, "end of text");
    else if ((unsigned char)s[at] >= 0x20 && (unsigned char)s[at] < 0x7f)
        snprintf(dst, cap, "'%c'", s[at]);
    else
        snprintf(dst, cap, "byte 0x%02X", (unsigned char)s[at]);
}

/* KIND "TEXT" character N ('c'): WHY; expected FORMS */
static px_err bad(px_errmsg *em, const char *kind, const char *s, size_t n, size_t at,
                  const char *why, const char *forms)
{
    char q[200], c[32];
    quote(q, sizeof(q), s, n);
    what_char(c, sizeof(c), s, n, at);
    return px_errmsg_set(em, PX_E_CONFIG, "%s \"%s\" character %zu (%s): %s; expected %s", kind, q,
                         at + 1, c, why, forms);
}

/* Up to maxd hex digits at s[*at..n); *at moves past them. Returns how
 * many, 0 when there are none or more than maxd (*at then points at the
 * first digit too many). */
static size_t hex_field(const char *s, size_t n, size_t *at, size_t maxd, uint32_t *out)
{
    uint32_t v = 0;
    size_t d = 0;
    while (*at < n && px_hex_digit(s[*at]) >= 0) {
        if (d == maxd)
            return 0;
        v = v << 4 | (uint32_t)px_hex_digit(s[*at]);
        (*at)++;
        d++;
    }
    *out = v;
    return d;
}

void px_cangw_rule_init(px_cangw_rule *r, uint32_t src_bus, uint32_t dst_bus)
{
    memset(r, 0, sizeof(*r));
    r->src_bus = src_bus;
    r->dst_bus = dst_bus;
    r->hops = PX_CANGW_HOPS_DEF;
}

px_err px_cangw_parse_filter(const char *s, size_t n, px_cangw_filter *out, px_errmsg *em)
{
    static const char kind[] = "filter";
    memset(out, 0, sizeof(*out));
    size_t at = 0;
    uint32_t id, mask;
    size_t d = hex_field(s, n, &at, 8, &id);
    if (d == 0)
        return bad(em, kind, s, n, at, at ? "the id has more than 8 hex digits" : "not a hex digit",
                   filter_forms);
    if (at == n || (s[at] != ':' && s[at] != '~'))
        return bad(em, kind, s, n, at,
                   at < n && isalnum((unsigned char)s[at]) ? "not a hex digit"
                                                           : "':' or '~' must follow the id",
                   filter_forms);
    bool inv = s[at] == '~';
    size_t mstart = ++at;
    size_t md = hex_field(s, n, &at, 8, &mask);
    if (md == 0)
        return bad(em, kind, s, n, at,
                   at > mstart ? "the mask has more than 8 hex digits" : "not a hex digit",
                   filter_forms);
    if (at != n)
        return bad(em, kind, s, n, at,
                   isalnum((unsigned char)s[at]) ? "not a hex digit"
                                                 : "nothing may follow the mask",
                   filter_forms);
    out->id = d == 8 ? id | PX_CAN_EFF_FLAG : id;
    out->mask = mask;
    out->inverted = inv;
    return PX_OK;
}

static px_err mod_fail(px_cangw_mod *out, px_errmsg *em, const char *s, size_t n, size_t at,
                       const char *why)
{
    memset(out, 0, sizeof(*out));
    return bad(em, "modification", s, n, at, why, mod_forms);
}

/* One dot-separated number of the value part. */
static px_err mod_number(px_cangw_mod *out, px_errmsg *em, const char *s, size_t n, size_t *at,
                         size_t maxd, const char *name, uint32_t *v)
{
    size_t start = *at;
    char why[96];
    if (hex_field(s, n, at, maxd, v) == 0) {
        if (*at > start)
            snprintf(why, sizeof(why), "%s has more than %zu hex digits", name, maxd);
        else
            snprintf(why, sizeof(why), "not a hex digit of %s", name);
        return mod_fail(out, em, s, n, *at, why);
    }
    if (*at == n || s[*at] != '.') {
        if (*at < n && isalnum((unsigned char)s[*at]))
            snprintf(why, sizeof(why), "not a hex digit of %s", name);
        else
            snprintf(why, sizeof(why), "'.' must follow %s", name);
        return mod_fail(out, em, s, n, *at, why);
    }
    (*at)++;
    return PX_OK;
}

px_err px_cangw_parse_mod(const char *s, size_t n, px_cangw_mod *out, px_errmsg *em)
{
    memset(out, 0, sizeof(*out));
    size_t at = 0;
    while (at < n && at < 4 && s[at] != ':')
        at++;
    unsigned op = 0;
    while (op < 4 && !(strlen(op_names[op]) == at && memcmp(s, op_names[op], at) == 0))
        op++;
    if (op == 4 || at == n || s[at] != ':')
        return mod_fail(out, em, s, n, op == 4 ? 0 : at,
                        "the text must start AND:, OR:, XOR: or SET:");
    out->op = (px_cangw_op)op;
    size_t what_at = ++at;
    while (at < n && s[at] != ':') {
        uint8_t bit = s[at] == 'I'   ? PX_CANGW_MOD_ID
                      : s[at] == 'L' ? PX_CANGW_MOD_LEN
                      : s[at] == 'D' ? PX_CANGW_MOD_DATA
                      : s[at] == 'F' ? PX_CANGW_MOD_FLAGS
                                     : 0;
        if (!bit)
            return mod_fail(out, em, s, n, at,
                            "what to modify is one or more of I (id), L (len), D (data), F "
                            "(flags)");
        if (out->what & bit)
            return mod_fail(out, em, s, n, at, "given twice in what to modify");
        out->what |= bit;
        at++;
    }
    if (at == what_at || at == n)
        return mod_fail(out, em, s, n, at,
                        at == what_at ? "what to modify (I, L, D, F) must follow the operation"
                                      : "the values must follow what to modify");
    at++;
    size_t dots = 0, fourth = n;
    for (size_t i = at; i < n; i++)
        if (s[i] == '.' && ++dots == 4)
            fourth = i;
    if (dots < 2)
        return mod_fail(out, em, s, n, n, "the values are <can_id>.<len>.<data>");
    if (dots > 3)
        return mod_fail(out, em, s, n, fourth, "one '.' too many");
    out->fd_form = dots == 3;
    if ((out->what & PX_CANGW_MOD_FLAGS) && !out->fd_form) {
        const char *f = memchr(s + what_at, 'F', at - what_at);
        return mod_fail(out, em, s, n, (size_t)(f - s),
                        "F (flags) needs the FD form <can_id>.<flags>.<len>.<data>");
    }
    uint32_t v;
    px_err err;
    if ((err = mod_number(out, em, s, n, &at, 8, "the can_id", &v)))
        return err;
    out->can_id = v;
    if (out->fd_form) {
        size_t fat = at;
        if ((err = mod_number(out, em, s, n, &at, 2, "the flags", &v)))
            return err;
        if (v & ~(uint32_t)(PX_CANFD_BRS | PX_CANFD_ESI))
            return mod_fail(out, em, s, n, fat, "flags other than BRS (1) and ESI (2)");
        out->flags = (uint8_t)v;
    }
    size_t lat = at;
    if ((err = mod_number(out, em, s, n, &at, out->fd_form ? 2 : 1, "the len", &v)))
        return err;
    out->len = (uint8_t)v;
    if (out->op == PX_CANGW_SET && (out->what & PX_CANGW_MOD_LEN) &&
        (out->fd_form ? !px_can_fd_len_valid(v) : v > PX_CAN_MAX_DLEN))
        return mod_fail(out, em, s, n, lat,
                        out->fd_form ? "SET gives an invalid len: an FD length is hex 0..8, C, "
                                       "10, 14, 18, 20, 30 or 40"
                                     : "SET gives an invalid len: 0..8");
    size_t nbytes = out->fd_form ? PX_CANFD_MAX_DLEN : PX_CAN_MAX_DLEN;
    for (size_t i = 0; i < nbytes; i++, at += 2) {
        int hi = at < n ? px_hex_digit(s[at]) : -1, lo = at + 1 < n ? px_hex_digit(s[at + 1]) : -1;
        if (hi < 0 || lo < 0)
            return mod_fail(out, em, s, n, hi < 0 ? at : at + 1,
                            out->fd_form ? "the data is exactly 128 hex digits"
                                         : "the data is exactly 16 hex digits");
        out->data[i] = (uint8_t)(hi << 4 | lo);
    }
    if (at != n)
        return mod_fail(out, em, s, n, at,
                        out->fd_form ? "the data is exactly 128 hex digits"
                                     : "the data is exactly 16 hex digits");
    return PX_OK;
}

px_err px_cangw_add_mod(px_cangw_rule *r, const px_cangw_mod *m, px_errmsg *em)
{
    if (m->fd_form && !r->fd)
        return px_errmsg_set(em, PX_E_CONFIG,
                             "%s modification in the FD form on a rule without fd; expected the "
                             "classic form <op>:<what>:<can_id>.<len>.<data> or fd: true",
                             op_names[m->op]);
    uint32_t i = 0;
    for (; i < r->n_mods; i++) {
        if (r->mods[i].op == m->op)
            return px_errmsg_set(em, PX_E_EXISTS,
                                 "two %s modifications; expected each of AND, OR, XOR, SET at "
                                 "most once (combine them: what may be several of I, L, D)",
                                 op_names[m->op]);
        if (r->mods[i].op > m->op)
            break;
    }
    memmove(&r->mods[i + 1], &r->mods[i], (r->n_mods - i) * sizeof(r->mods[0]));
    r->mods[i] = *m;
    r->n_mods++;
    return PX_OK;
}

px_err px_cangw_format_filter(const px_cangw_filter *f, char *buf, size_t cap)
{
    int w = snprintf(buf, cap, (f->id & PX_CAN_EFF_FLAG) ? "%08X%c%X" : "%03X%c%X", f->id,
                     f->inverted ? '~' : ':', f->mask);
    return w < 0 || (size_t)w >= cap ? PX_E_TOOBIG : PX_OK;
}

px_err px_cangw_format_mod(const px_cangw_mod *m, char *buf, size_t cap)
{
    char what[5];
    size_t k = 0;
    if (m->what & PX_CANGW_MOD_ID)
        what[k++] = 'I';
    if (m->what & PX_CANGW_MOD_FLAGS)
        what[k++] = 'F';
    if (m->what & PX_CANGW_MOD_LEN)
        what[k++] = 'L';
    if (m->what & PX_CANGW_MOD_DATA)
        what[k++] = 'D';
    what[k] = '\0';
    if ((unsigned)m->op > PX_CANGW_SET)
        return PX_E_INVAL;
    int w = m->fd_form
                ? snprintf(buf, cap, "%s:%s:%03X.%X.%X.", op_names[m->op], what, m->can_id,
                           m->flags, m->len)
                : snprintf(buf, cap, "%s:%s:%03X.%X.", op_names[m->op], what, m->can_id, m->len);
    if (w < 0 || (size_t)w >= cap)
        return PX_E_TOOBIG;
    size_t nbytes = m->fd_form ? PX_CANFD_MAX_DLEN : PX_CAN_MAX_DLEN;
    if ((size_t)w + 2 * nbytes >= cap)
        return PX_E_TOOBIG;
    for (size_t i = 0; i < nbytes; i++)
        w += snprintf(buf + w, cap - (size_t)w, "%02X", m->data[i]);
    return PX_OK;
}

bool px_cangw_filter_match(const px_cangw_filter *f, uint32_t can_id)
{
    bool eq = (can_id & f->mask) == (f->id & f->mask);
    return f->inverted ? !eq : eq;
}

static uint32_t op32(px_cangw_op op, uint32_t a, uint32_t b)
{
    switch (op) {
    case PX_CANGW_AND:
        return a & b;
    case PX_CANGW_OR:
        return a | b;
    case PX_CANGW_XOR:
        return a ^ b;
    default:
        return b;
    }
}

static void modify(const px_cangw_mod *m, px_can_frame *f)
{
    if (m->what & PX_CANGW_MOD_ID)
        f->can_id = op32(m->op, f->can_id, m->can_id);
    if (m->what & PX_CANGW_MOD_LEN)
        f->len = (uint8_t)op32(m->op, f->len, m->len);
    if (m->what & PX_CANGW_MOD_FLAGS) {
        uint8_t keep = f->flags & PX_CANFD_FDF;
        f->flags =
            (uint8_t)(keep | (op32(m->op, f->flags, m->flags) & (PX_CANFD_BRS | PX_CANFD_ESI)));
    }
    if (m->what & PX_CANGW_MOD_DATA) {
        size_t nbytes = m->fd_form ? PX_CANFD_MAX_DLEN : PX_CAN_MAX_DLEN;
        for (size_t i = 0; i < nbytes; i++)
            f->data[i] = (uint8_t)op32(m->op, f->data[i], m->data[i]);
    }
}

px_cangw_result px_cangw_apply(const px_cangw_rule *r, const px_can_frame *in, uint32_t hops_in,
                               px_can_frame *out)
{
    px_can_frame f = *in;
    memset(out, 0, sizeof(*out));
    if (hops_in >= r->hops)
        return PX_CANGW_HOP_LIMIT;
    if ((f.can_id & PX_CAN_ERR_FLAG) || ((f.flags & PX_CANFD_FDF) && !r->fd) ||
        !px_cangw_filter_match(&r->filter, f.can_id))
        return PX_CANGW_FILTERED;
    for (uint32_t i = 0; i < r->n_mods && i < PX_CANGW_MAX_MODS; i++)
        modify(&r->mods[i], &f);
    if (f.len > PX_CANFD_MAX_DLEN || (f.can_id & PX_CAN_ERR_FLAG))
        return PX_CANGW_INVALID;
    /* Bytes past len (all of them for a remote frame) carry nothing. */
    size_t used = (f.can_id & PX_CAN_RTR_FLAG) ? 0 : f.len;
    memset(f.data + used, 0, PX_CANFD_MAX_DLEN - used);
    if (px_can_check(&f, true) != PX_CAN_OK)
        return PX_CANGW_INVALID;
    *out = f;
    return PX_CANGW_FORWARD;
}

px_cangw_result px_cangw_route(px_cangw *gw, const px_can_frame *in, uint32_t hops_in,
                               px_can_frame *out)
{
    px_cangw_result res = px_cangw_apply(&gw->rule, in, hops_in, out);
    switch (res) {
    case PX_CANGW_FORWARD:
        gw->stats.forwarded++;
        break;
    case PX_CANGW_FILTERED:
        gw->stats.filtered++;
        break;
    case PX_CANGW_HOP_LIMIT:
        gw->stats.hop_limited++;
        break;
    default:
        gw->stats.invalid++;
        break;
    }
    return res;
}

const char *px_cangw_result_str(px_cangw_result r)
{
    switch (r) {
    case PX_CANGW_FORWARD:
        return "forward";
    case PX_CANGW_FILTERED:
        return "filtered";
    case PX_CANGW_HOP_LIMIT:
        return "hop-limit";
    case PX_CANGW_INVALID:
        return "invalid";
    }
    return "?";
}
