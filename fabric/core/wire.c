/* plexus — the wire codec: generic, table-driven msgpack encode and decode.
 *
 * Encoding goes through msgpack-c's packer, writing straight into a px_wbuf.
 *
 * Decoding does not build a msgpack_object tree. It reads msgpack headers
 * with one small reader (rd_item) that enforces every byte-level limit, in
 * two passes over the same bytes:
 *   1. scan_value() walks every header of the envelope without recursion:
 *      lengths, counts, "count fits in what is left", nesting depth and the
 *      total size are all checked here, and the walk finds where the
 *      envelope ends (the `used` of a batch).
 *   2. dec_struct() walks it again driven by the message's field table and
 *      stores typed values straight into the caller's px_msg; strings and
 *      bins become views into the input.
 * Nothing is allocated on the decode path, so there is nothing a peer can
 * make us allocate. docs/wire-protocol.md gives the reasoning.
 */
#include "wire_table.h"

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- buffers and small helpers ---- */

void px_wbuf_reset(px_wbuf *b)
{
    if (b)
        b->len = 0;
}

void px_wbuf_fini(px_wbuf *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

bool px_str_eq(px_str s, const char *cstr)
{
    if (!cstr)
        return s.len == 0;
    size_t n = strlen(cstr);
    return n == s.len && (n == 0 || memcmp(s.ptr, cstr, n) == 0);
}

size_t px_str_copy(char *dst, size_t cap, px_str s)
{
    if (cap == 0)
        return 0;
    size_t n = s.len < cap - 1 ? s.len : cap - 1;
    if (n)
        memcpy(dst, s.ptr, n);
    dst[n] = '\0';
    return n;
}

px_str px_str_c(const char *cstr)
{
    px_str s = {cstr, 0};
    if (cstr) {
        size_t n = strlen(cstr);
        /* Clamped rather than wrapped: an over-long string must fail the
         * encoder's length check, not shrink to something that passes. */
        s.len = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
    }
    return s;
}

/* Strings on the wire are names and human text: strict UTF-8 (no overlong
 * forms, no surrogates) and no NUL, so that every consumer can log them,
 * put them in JSON and turn them into C strings without surprises. */
static bool text_ok(const uint8_t *s, uint32_t n)
{
    uint32_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            if (c == 0)
                return false;
            i++;
            continue;
        }
        uint32_t more, cp;
        if (c >= 0xc2 && c <= 0xdf) {
            more = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            more = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            more = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i - 1 < more)
            return false;
        for (uint32_t k = 1; k <= more; k++) {
            uint8_t cc = s[i + k];
            if ((cc & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (cc & 0x3f);
        }
        if (more == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
            return false;
        if (more == 3 && (cp < 0x10000 || cp > 0x10ffff))
            return false;
        i += more + 1;
    }
    return true;
}

/* A peer-supplied key, made safe to print in an error message. */
static const char *printable(char *out, size_t cap, const uint8_t *p, uint32_t n)
{
    size_t o = 0;
    for (uint32_t i = 0; i < n && o + 4 < cap; i++)
        out[o++] = (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"') ? (char)p[i] : '?';
    if (o + 4 >= cap && n > o) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

/* ---- reading msgpack headers ---- */

typedef enum mp_kind {
    MP_NIL,
    MP_BOOL,
    MP_UINT, /* any integer >= 0, whatever its msgpack format */
    MP_NEG,  /* any integer < 0 */
    MP_FLOAT,
    MP_STR,
    MP_BIN,
    MP_ARRAY,
    MP_MAP,
} mp_kind;

static const char *const kind_names[] = {
    [MP_NIL] = "nil",
    [MP_BOOL] = "a boolean",
    [MP_UINT] = "an unsigned integer",
    [MP_NEG] = "a negative integer",
    [MP_FLOAT] = "a float",
    [MP_STR] = "a string",
    [MP_BIN] = "a bin",
    [MP_ARRAY] = "an array",
    [MP_MAP] = "a map",
};

typedef struct mp_item {
    mp_kind kind;
    uint32_t n;       /* STR, BIN: bytes; ARRAY: elements; MAP: pairs */
    uint64_t u;       /* MP_UINT */
    int64_t i;        /* MP_NEG */
    const uint8_t *p; /* STR, BIN: the bytes, inside the input */
} mp_item;

typedef struct rd {
    const uint8_t *buf;
    size_t pos;
    size_t end;   /* bytes the reader may look at: min(len, PX_WIRE_MAX_MSG) */
    bool clipped; /* the input went on past PX_WIRE_MAX_MSG */
    px_errmsg *em;
} rd;

/* Input ran out at `at` while reading what started at `start`. If the input
 * was clipped to PX_WIRE_MAX_MSG, the message is too big rather than short. */
static px_err rd_short(const rd *r, size_t start, const char *what)
{
    if (r->clipped)
        return px_errmsg_set(r->em, PX_E_TOOBIG,
                             "%s at byte %zu runs past the %u-byte message limit "
                             "(PX_WIRE_MAX_MSG)",
                             what, start, PX_WIRE_MAX_MSG);
    return px_errmsg_set(r->em, PX_E_TRUNCATED,
                         "input ends at byte %zu inside %s starting at byte %zu", r->end, what,
                         start);
}

static uint64_t load_be(const uint8_t *p, unsigned w)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < w; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Read the header at r->pos (plus the payload of a scalar, str or bin) and
 * advance past it. Every limit that can be judged from one header is judged
 * here, before anything else looks at the value:
 *   str ≤ PX_WIRE_MAX_STR, bin ≤ PX_WIRE_MAX_BIN, and their bytes present;
 *   array/map ≤ PX_WIRE_MAX_COUNT elements, and at least one byte left per
 *   element (two per map pair), so a claimed count is never believed beyond
 *   what the input could hold;
 *   no ext types (plexus does not use them) and no reserved byte 0xc1. */
static px_err rd_item_slow(rd *r, mp_item *it)
{
    const size_t at = r->pos;
    if (at >= r->end)
        return rd_short(r, at, "a value");
    const uint8_t b = r->buf[at];
    unsigned w = 0; /* bytes of length or value after the type byte */
    uint64_t n = 0;

    if (b <= 0x7f) {
        it->kind = MP_UINT;
        it->u = b;
        r->pos = at + 1;
        return PX_OK;
    }
    if (b >= 0xe0) {
        it->kind = MP_NEG;
        it->i = (int8_t)b;
        r->pos = at + 1;
        return PX_OK;
    }
    if (b <= 0x8f) {
        it->kind = MP_MAP;
        n = b & 0x0f;
    } else if (b <= 0x9f) {
        it->kind = MP_ARRAY;
        n = b & 0x0f;
    } else if (b <= 0xbf) {
        it->kind = MP_STR;
        n = b & 0x1f;
    } else {
        switch (b) {
        case 0xc0:
            it->kind = MP_NIL;
            r->pos = at + 1;
            return PX_OK;
        case 0xc2:
        case 0xc3:
            it->kind = MP_BOOL;
            it->u = b & 1;
            r->pos = at + 1;
            return PX_OK;
        case 0xc4:
        case 0xc5:
        case 0xc6:
            it->kind = MP_BIN;
            w = 1u << (b - 0xc4);
            break;
        case 0xca:
            it->kind = MP_FLOAT;
            w = 4;
            break;
        case 0xcb:
            it->kind = MP_FLOAT;
            w = 8;
            break;
        case 0xcc:
        case 0xcd:
        case 0xce:
        case 0xcf:
            it->kind = MP_UINT;
            w = 1u << (b - 0xcc);
            break;
        case 0xd0:
        case 0xd1:
        case 0xd2:
        case 0xd3:
            it->kind = MP_NEG; /* corrected below if the value is >= 0 */
            w = 1u << (b - 0xd0);
            break;
        case 0xd9:
        case 0xda:
        case 0xdb:
            it->kind = MP_STR;
            w = 1u << (b - 0xd9);
            break;
        case 0xdc:
        case 0xdd:
            it->kind = MP_ARRAY;
            w = 2u << (b - 0xdc);
            break;
        case 0xde:
        case 0xdf:
            it->kind = MP_MAP;
            w = 2u << (b - 0xde);
            break;
        case 0xc1:
            return px_errmsg_set(r->em, PX_E_PROTO, "invalid msgpack byte 0xc1 at byte %zu", at);
        default:
            return px_errmsg_set(r->em, PX_E_PROTO,
                                 "msgpack ext type (0x%02x) at byte %zu: plexus uses none", b, at);
        }
    }

    size_t pos = at + 1;
    if (w) {
        if (r->end - pos < w)
            return rd_short(r, at, kind_names[it->kind]);
        n = load_be(r->buf + pos, w);
        pos += w;
    }

    switch (it->kind) {
    case MP_UINT:
        it->u = n;
        break;
    case MP_NEG: {
        int64_t v = w == 1 ? (int8_t)n : w == 2 ? (int16_t)n : w == 4 ? (int32_t)n : (int64_t)n;
        if (v >= 0) {
            it->kind = MP_UINT;
            it->u = (uint64_t)v;
        } else {
            it->i = v;
        }
        break;
    }
    case MP_STR:
    case MP_BIN: {
        uint32_t lim = it->kind == MP_STR ? PX_WIRE_MAX_STR : PX_WIRE_MAX_BIN;
        if (n > lim)
            return px_errmsg_set(
                r->em, PX_E_TOOBIG,
                "%s at byte %zu claims %llu bytes; the limit is %u (PX_WIRE_MAX_%s)",
                it->kind == MP_STR ? "string" : "bin", at, (unsigned long long)n, lim,
                it->kind == MP_STR ? "STR" : "BIN");
        if (r->end - pos < n)
            return rd_short(r, at, kind_names[it->kind]);
        it->p = r->buf + pos;
        it->n = (uint32_t)n;
        pos += n;
        break;
    }
    case MP_ARRAY:
    case MP_MAP: {
        if (n > PX_WIRE_MAX_COUNT)
            return px_errmsg_set(r->em, PX_E_TOOBIG,
                                 "%s at byte %zu claims %llu elements; the limit is %u "
                                 "(PX_WIRE_MAX_COUNT)",
                                 it->kind == MP_MAP ? "map" : "array", at, (unsigned long long)n,
                                 PX_WIRE_MAX_COUNT);
        uint64_t min_bytes = it->kind == MP_MAP ? 2 * n : n;
        if (r->end - pos < min_bytes)
            return rd_short(r, at, kind_names[it->kind]);
        it->n = (uint32_t)n;
        break;
    }
    default: /* nil, bool, float: nothing more to take */
        break;
    }
    r->pos = pos;
    return PX_OK;
}

/* The forms that make up almost every plexus message (fixint, short str,
 * small map/array) inline; everything else, and every error, out of line.
 * Same checks as rd_item_slow: a fix-form count is at most 15, far below
 * PX_WIRE_MAX_COUNT, so only the bytes-left rule applies. */
static inline px_err rd_item(rd *r, mp_item *it)
{
    const size_t at = r->pos;
    if (at < r->end) {
        const uint8_t b = r->buf[at];
        const size_t left = r->end - at - 1;
        if (b <= 0x7f) {
            it->kind = MP_UINT;
            it->u = b;
            r->pos = at + 1;
            return PX_OK;
        }
        if ((b & 0xe0) == 0xa0 && (size_t)(b & 0x1f) <= left) {
            it->kind = MP_STR;
            it->n = b & 0x1f;
            it->p = r->buf + at + 1;
            r->pos = at + 1 + it->n;
            return PX_OK;
        }
        if ((b & 0xf0) == 0x80 && (size_t)(b & 0x0f) * 2 <= left) {
            it->kind = MP_MAP;
            it->n = b & 0x0f;
            r->pos = at + 1;
            return PX_OK;
        }
        if ((b & 0xf0) == 0x90 && (size_t)(b & 0x0f) <= left) {
            it->kind = MP_ARRAY;
            it->n = b & 0x0f;
            r->pos = at + 1;
            return PX_OK;
        }
    }
    return rd_item_slow(r, it);
}

/* ---- pass 1: limits and extent ---- */

/* Walk one complete value at r->pos through every nested header, checking
 * each (rd_item) and the nesting depth, where `depth0` containers are already
 * open around it. Leaves r->pos at the value's end. Iterative: the depth
 * limit bounds the stack, not the input. */
static px_err scan_value(rd *r, unsigned depth0)
{
    uint32_t left[PX_WIRE_MAX_DEPTH]; /* items still to read, per open container */
    unsigned d = 0;
    for (;;) {
        size_t at = r->pos;
        mp_item it;
        px_err err = rd_item(r, &it);
        if (err)
            return err;
        if (it.kind == MP_ARRAY || it.kind == MP_MAP) {
            if (depth0 + d + 1 > PX_WIRE_MAX_DEPTH)
                return px_errmsg_set(r->em, PX_E_TOOBIG,
                                     "%s at byte %zu nests %u deep; the limit is %u "
                                     "(PX_WIRE_MAX_DEPTH)",
                                     it.kind == MP_MAP ? "map" : "array", at, depth0 + d + 1,
                                     PX_WIRE_MAX_DEPTH);
            if (it.n > 0) {
                left[d++] = it.kind == MP_MAP ? 2 * it.n : it.n;
                continue;
            }
        }
        /* A value is complete: it may complete its container, and so on up. */
        while (d > 0 && --left[d - 1] == 0)
            d--;
        if (d == 0)
            return PX_OK;
    }
}

/* ---- pass 2: typed decode ---- */

static px_err wrong_kind(rd *r, size_t at, const char *sname, const char *key, const mp_item *it,
                         const char *want)
{
    return px_errmsg_set(r->em, PX_E_PROTO, "%s.%s at byte %zu is %s; expected %s", sname, key, at,
                         kind_names[it->kind], want);
}

/* An integer into 0..max. */
static px_err dec_uint(rd *r, const char *sname, const char *key, uint64_t max, uint64_t *out)
{
    size_t at = r->pos;
    mp_item it;
    px_err err = rd_item(r, &it);
    if (err)
        return err;
    if (it.kind == MP_NEG)
        return px_errmsg_set(r->em, PX_E_PROTO,
                             "%s.%s at byte %zu is negative (%lld); expected 0..%llu", sname, key,
                             at, (long long)it.i, (unsigned long long)max);
    if (it.kind != MP_UINT)
        return wrong_kind(r, at, sname, key, &it, "an unsigned integer");
    if (it.u > max)
        return px_errmsg_set(r->em, PX_E_PROTO,
                             "%s.%s at byte %zu is %llu; it does not fit 0..%llu", sname, key, at,
                             (unsigned long long)it.u, (unsigned long long)max);
    *out = it.u;
    return PX_OK;
}

static px_err dec_i32(rd *r, const char *sname, const char *key, int32_t *out)
{
    size_t at = r->pos;
    mp_item it;
    px_err err = rd_item(r, &it);
    if (err)
        return err;
    if (it.kind == MP_UINT && it.u <= INT32_MAX) {
        *out = (int32_t)it.u;
        return PX_OK;
    }
    if (it.kind == MP_NEG && it.i >= INT32_MIN) {
        *out = (int32_t)it.i;
        return PX_OK;
    }
    if (it.kind == MP_UINT || it.kind == MP_NEG)
        return px_errmsg_set(r->em, PX_E_PROTO,
                             "%s.%s at byte %zu does not fit a 32-bit signed integer", sname, key,
                             at);
    return wrong_kind(r, at, sname, key, &it, "an integer");
}

static px_err dec_text(rd *r, const char *sname, const char *key, uint32_t max_len, px_str *out)
{
    size_t at = r->pos;
    mp_item it;
    px_err err = rd_item(r, &it);
    if (err)
        return err;
    if (it.kind != MP_STR)
        return wrong_kind(r, at, sname, key, &it, "a string");
    if (it.n > max_len)
        return px_errmsg_set(r->em, PX_E_TOOBIG, "%s.%s at byte %zu is %u bytes; the limit is %u",
                             sname, key, at, it.n, max_len);
    if (!text_ok(it.p, it.n))
        return px_errmsg_set(r->em, PX_E_PROTO,
                             "%s.%s at byte %zu is not valid UTF-8 or contains NUL", sname, key,
                             at);
    out->ptr = (const char *)it.p;
    out->len = it.n;
    return PX_OK;
}

static px_err dec_struct(rd *r, const px_wire_struct *d, void *base);

/* The header of an array field whose elements go into a C array. */
static px_err dec_array_head(rd *r, const px_wire_struct *d, const px_wire_field *f, uint32_t *n)
{
    size_t at = r->pos;
    mp_item it;
    px_err err = rd_item(r, &it);
    if (err)
        return err;
    if (it.kind != MP_ARRAY)
        return wrong_kind(r, at, d->name, f->key, &it, "an array");
    if (it.n > f->max_count)
        return px_errmsg_set(r->em, PX_E_TOOBIG,
                             "%s.%s at byte %zu has %u elements; the limit is %u", d->name, f->key,
                             at, it.n, f->max_count);
    *n = it.n;
    return PX_OK;
}

static px_err dec_field(rd *r, const px_wire_struct *d, const px_wire_field *f, void *base)
{
    px_err err = PX_OK;
    uint64_t v;
    uint32_t n;
    switch ((px_wf_kind)f->kind) {
    case PX_WF_U32:
        err = dec_uint(r, d->name, f->key, UINT32_MAX, &v);
        if (!err)
            *PX_WF_PTR(base, f, uint32_t) = (uint32_t)v;
        return err;
    case PX_WF_U64:
        return dec_uint(r, d->name, f->key, UINT64_MAX, PX_WF_PTR(base, f, uint64_t));
    case PX_WF_I32:
        return dec_i32(r, d->name, f->key, PX_WF_PTR(base, f, int32_t));
    case PX_WF_STR:
        return dec_text(r, d->name, f->key, f->max_len, PX_WF_PTR(base, f, px_str));
    case PX_WF_BIN: {
        size_t at = r->pos;
        mp_item it;
        if ((err = rd_item(r, &it)))
            return err;
        if (it.kind != MP_BIN)
            return wrong_kind(r, at, d->name, f->key, &it, "a bin");
        if (it.n > f->max_len)
            return px_errmsg_set(r->em, PX_E_TOOBIG,
                                 "%s.%s at byte %zu is %u bytes; the limit is %u", d->name, f->key,
                                 at, it.n, f->max_len);
        *PX_WF_PTR(base, f, px_bin) = (px_bin){it.p, it.n};
        return PX_OK;
    }
    case PX_WF_STR_ARRAY:
        if ((err = dec_array_head(r, d, f, &n)))
            return err;
        for (uint32_t i = 0; i < n; i++)
            if ((err = dec_text(r, d->name, f->key, f->max_len, PX_WF_PTR(base, f, px_str) + i)))
                return err;
        PX_WF_COUNT(base, f) = n;
        return PX_OK;
    case PX_WF_STRUCT_ARRAY:
        if ((err = dec_array_head(r, d, f, &n)))
            return err;
        for (uint32_t i = 0; i < n; i++) {
            void *elem = (uint8_t *)base + f->off + (size_t)i * f->elem_size;
            if ((err = dec_struct(r, f->sub, elem))) {
                px_errmsg_prefix(r->em, "%s.%s[%u]", d->name, f->key, i);
                return err;
            }
        }
        PX_WF_COUNT(base, f) = n;
        return PX_OK;
    }
    return px_errmsg_set(r->em, PX_E_INVAL, "%s.%s: bad field kind %u in the wire table", d->name,
                         f->key, f->kind);
}

static const px_wire_field *find_field(const px_wire_struct *d, const uint8_t *key, uint32_t len,
                                       uint32_t *idx)
{
    for (uint32_t i = 0; i < d->n_fields; i++) {
        const px_wire_field *f = &d->fields[i];
        if (f->key_len == len && memcmp(f->key, key, len) == 0) {
            *idx = i;
            return f;
        }
    }
    return NULL;
}

/* One map into one C struct (zeroed first, so absent optional fields are 0). */
static px_err dec_struct(rd *r, const px_wire_struct *d, void *base)
{
    const size_t at = r->pos;
    mp_item m;
    px_err err = rd_item(r, &m);
    if (err)
        return err;
    if (m.kind != MP_MAP)
        return px_errmsg_set(r->em, PX_E_PROTO, "%s body at byte %zu is %s; expected a map",
                             d->name, at, kind_names[m.kind]);
    memset(base, 0, d->size);

    uint64_t seen = 0;
    char pk[48];
    for (uint32_t i = 0; i < m.n; i++) {
        size_t kat = r->pos;
        mp_item k;
        if ((err = rd_item(r, &k)))
            return err;
        if (k.kind != MP_STR)
            return px_errmsg_set(r->em, PX_E_PROTO, "%s: key at byte %zu is %s; expected a string",
                                 d->name, kat, kind_names[k.kind]);
        uint32_t idx;
        const px_wire_field *f = find_field(d, k.p, k.n, &idx);
        if (!f)
            return px_errmsg_set(r->em, PX_E_UNKNOWN, "%s: unknown key \"%s\" at byte %zu", d->name,
                                 printable(pk, sizeof(pk), k.p, k.n), kat);
        if (seen & (UINT64_C(1) << idx))
            return px_errmsg_set(r->em, PX_E_PROTO, "%s: duplicate key \"%s\" at byte %zu", d->name,
                                 f->key, kat);
        seen |= UINT64_C(1) << idx;
        if ((err = dec_field(r, d, f, base)))
            return err;
    }
    for (uint32_t i = 0; i < d->n_fields; i++)
        if (d->fields[i].required && !(seen & (UINT64_C(1) << i)))
            return px_errmsg_set(r->em, PX_E_PROTO,
                                 "%s: required field \"%s\" missing from the map at byte %zu",
                                 d->name, d->fields[i].key, at);
    if (d->check && (err = d->check(base, r->em))) {
        px_errmsg_prefix(r->em, "map at byte %zu", at);
        return err;
    }
    return PX_OK;
}

/* ---- decode entry points ---- */

static void rd_init(rd *r, const uint8_t *buf, size_t len, px_errmsg *em)
{
    r->buf = buf;
    r->pos = 0;
    r->clipped = len > PX_WIRE_MAX_MSG;
    r->end = r->clipped ? PX_WIRE_MAX_MSG : len;
    r->em = em;
}

px_err px_wire_decode(const uint8_t *buf, size_t len, size_t *used, px_msg *out, px_errmsg *em)
{
    if (used)
        *used = 0;
    if (!used || !out || (!buf && len))
        return px_errmsg_set(em, PX_E_INVAL, "px_wire_decode: NULL argument");
    if (len == 0)
        return px_errmsg_set(em, PX_E_TRUNCATED, "empty input at byte 0; expected an envelope");

    rd r;
    rd_init(&r, buf, len, em);
    mp_item it;
    px_err err;

    /* Version first, from the first two headers alone: a peer speaking
     * another version hears PX_E_VERSION whatever the rest looks like. */
    if ((err = rd_item(&r, &it)))
        return err;
    if (it.kind != MP_ARRAY || it.n == 0)
        return px_errmsg_set(em, PX_E_PROTO,
                             "envelope at byte 0 is %s; expected an array of 6 "
                             "[version, type, sender, object, seq, body]",
                             it.kind == MP_ARRAY ? "an empty array" : kind_names[it.kind]);
    const uint32_t n_env = it.n;
    const size_t vat = r.pos;
    if ((err = rd_item(&r, &it)))
        return err;
    if (it.kind != MP_UINT)
        return px_errmsg_set(em, PX_E_PROTO, "envelope version at byte %zu is %s; expected %u", vat,
                             kind_names[it.kind], PX_WIRE_VERSION);
    if (it.u != PX_WIRE_VERSION)
        return px_errmsg_set(em, PX_E_VERSION,
                             "peer speaks wire version %llu (byte %zu); this build speaks %u",
                             (unsigned long long)it.u, vat, PX_WIRE_VERSION);
    if (n_env != 6)
        return px_errmsg_set(em, PX_E_PROTO,
                             "envelope at byte 0 has %u elements; expected 6 "
                             "[version, type, sender, object, seq, body]",
                             n_env);
    const size_t after_version = r.pos;

    /* Pass 1: every limit, and where this envelope ends. */
    r.pos = 0;
    if ((err = scan_value(&r, 0)))
        return err;
    const size_t end = r.pos;

    /* Pass 2: typed fields, confined to this envelope. */
    r.pos = after_version;
    r.end = end;
    uint64_t v;
    size_t tat = r.pos;
    if ((err = dec_uint(&r, "envelope", "type", UINT32_MAX, &v)))
        return err;
    const px_wire_struct *d = px_wire_body_desc((uint32_t)v);
    if (!d)
        return px_errmsg_set(em, PX_E_UNKNOWN, "unknown message type %llu at byte %zu",
                             (unsigned long long)v, tat);
    out->env.version = PX_WIRE_VERSION;
    out->env.type = (uint32_t)v;
    if ((err = dec_uint(&r, "envelope", "sender", UINT32_MAX, &v)))
        return err;
    out->env.sender = (uint32_t)v;
    if ((err = dec_uint(&r, "envelope", "object", UINT64_MAX, &out->env.object)))
        return err;
    if ((err = dec_uint(&r, "envelope", "seq", UINT64_MAX, &out->env.seq)))
        return err;
    if ((err = dec_struct(&r, d, &out->body)))
        return err;
    /* Both passes read the same headers, so they must agree on the end. */
    if (r.pos != end)
        return px_errmsg_set(em, PX_E_PROTO, "envelope decode stopped at byte %zu, scan at %zu",
                             r.pos, end);
    *used = end;
    return PX_OK;
}

px_err px_wire_decode_struct(const px_wire_struct *d, const uint8_t *buf, size_t len, void *s,
                             px_errmsg *em)
{
    if (!d || !s || (!buf && len))
        return px_errmsg_set(em, PX_E_INVAL, "px_wire_decode_struct: NULL argument");
    if (len == 0)
        return px_errmsg_set(em, PX_E_TRUNCATED, "empty input at byte 0; expected a %s map",
                             d->name);
    rd r;
    rd_init(&r, buf, len, em);
    px_err err = scan_value(&r, 1); /* a body sits inside the envelope array */
    if (err)
        return err;
    if (r.pos != len)
        return px_errmsg_set(em, PX_E_PROTO, "%zu trailing bytes after the %s map, at byte %zu",
                             len - r.pos, d->name, r.pos);
    r.pos = 0;
    return dec_struct(&r, d, s);
}

px_err px_wire_decode_body(uint32_t type, const uint8_t *buf, size_t len, px_msg *out,
                           px_errmsg *em)
{
    const px_wire_struct *d = px_wire_body_desc(type);
    if (!d)
        return px_errmsg_set(em, PX_E_UNKNOWN, "unknown message type %u", type);
    if (!out)
        return px_errmsg_set(em, PX_E_INVAL, "px_wire_decode_body: NULL argument");
    memset(&out->env, 0, sizeof(out->env));
    out->env.version = PX_WIRE_VERSION;
    out->env.type = type;
    return px_wire_decode_struct(d, buf, len, &out->body, em);
}

/* ---- encoding ---- */

typedef struct enc {
    px_wbuf *b;
    size_t limit; /* b->len may not grow past this: start + PX_WIRE_MAX_MSG */
    px_err err;   /* first failure inside the write callback */
} enc;

/* msgpack-c's packer calls this for every piece it emits. */
static int enc_write(void *data, const char *p, size_t n)
{
    enc *e = data;
    px_wbuf *b = e->b;
    if (e->err)
        return -1;
    if (n == 0)
        return 0;
    if (n > e->limit - b->len) {
        e->err = PX_E_TOOBIG;
        return -1;
    }
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n)
            cap *= 2;
        uint8_t *nd = realloc(b->data, cap);
        if (!nd) {
            e->err = PX_E_NOMEM;
            return -1;
        }
        b->data = nd;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

static bool field_is_zero(const px_wire_field *f, const void *base)
{
    switch ((px_wf_kind)f->kind) {
    case PX_WF_U32:
        return *PX_WF_CPTR(base, f, uint32_t) == 0;
    case PX_WF_U64:
        return *PX_WF_CPTR(base, f, uint64_t) == 0;
    case PX_WF_I32:
        return *PX_WF_CPTR(base, f, int32_t) == 0;
    case PX_WF_STR:
        return PX_WF_CPTR(base, f, px_str)->len == 0;
    case PX_WF_BIN:
        return PX_WF_CPTR(base, f, px_bin)->len == 0;
    case PX_WF_STR_ARRAY:
    case PX_WF_STRUCT_ARRAY:
        return PX_WF_CCOUNT(base, f) == 0;
    }
    return false;
}

static px_err enc_text(msgpack_packer *pk, const px_wire_struct *d, const px_wire_field *f,
                       px_str s, px_errmsg *em)
{
    if (s.len > f->max_len)
        return px_errmsg_set(em, PX_E_TOOBIG, "%s.%s is %u bytes; the limit is %u", d->name, f->key,
                             s.len, f->max_len);
    if (s.len && !s.ptr)
        return px_errmsg_set(em, PX_E_INVAL, "%s.%s: NULL pointer with length %u", d->name, f->key,
                             s.len);
    if (!text_ok((const uint8_t *)s.ptr, s.len))
        return px_errmsg_set(em, PX_E_INVAL, "%s.%s is not valid UTF-8 or contains NUL", d->name,
                             f->key);
    msgpack_pack_str(pk, s.len);
    msgpack_pack_str_body(pk, s.ptr, s.len);
    return PX_OK;
}

static px_err enc_struct(msgpack_packer *pk, const px_wire_struct *d, const void *base,
                         px_errmsg *em);

static px_err enc_field(msgpack_packer *pk, const px_wire_struct *d, const px_wire_field *f,
                        const void *base, px_errmsg *em)
{
    px_err err;
    uint32_t n;
    switch ((px_wf_kind)f->kind) {
    case PX_WF_U32:
        msgpack_pack_uint32(pk, *PX_WF_CPTR(base, f, uint32_t));
        return PX_OK;
    case PX_WF_U64:
        msgpack_pack_uint64(pk, *PX_WF_CPTR(base, f, uint64_t));
        return PX_OK;
    case PX_WF_I32:
        msgpack_pack_int32(pk, *PX_WF_CPTR(base, f, int32_t));
        return PX_OK;
    case PX_WF_STR:
        return enc_text(pk, d, f, *PX_WF_CPTR(base, f, px_str), em);
    case PX_WF_BIN: {
        px_bin b = *PX_WF_CPTR(base, f, px_bin);
        if (b.len > f->max_len)
            return px_errmsg_set(em, PX_E_TOOBIG, "%s.%s is %u bytes; the limit is %u", d->name,
                                 f->key, b.len, f->max_len);
        if (b.len && !b.ptr)
            return px_errmsg_set(em, PX_E_INVAL, "%s.%s: NULL pointer with length %u", d->name,
                                 f->key, b.len);
        msgpack_pack_bin(pk, b.len);
        msgpack_pack_bin_body(pk, b.ptr, b.len);
        return PX_OK;
    }
    case PX_WF_STR_ARRAY:
    case PX_WF_STRUCT_ARRAY:
        n = PX_WF_CCOUNT(base, f);
        if (n > f->max_count)
            return px_errmsg_set(em, PX_E_TOOBIG, "%s.%s has %u elements; the limit is %u", d->name,
                                 f->key, n, f->max_count);
        msgpack_pack_array(pk, n);
        for (uint32_t i = 0; i < n; i++) {
            if (f->kind == PX_WF_STR_ARRAY) {
                err = enc_text(pk, d, f, PX_WF_CPTR(base, f, px_str)[i], em);
            } else {
                const void *elem = (const uint8_t *)base + f->off + (size_t)i * f->elem_size;
                if ((err = enc_struct(pk, f->sub, elem, em)))
                    px_errmsg_prefix(em, "%s.%s[%u]", d->name, f->key, i);
            }
            if (err)
                return err;
        }
        return PX_OK;
    }
    return px_errmsg_set(em, PX_E_INVAL, "%s.%s: bad field kind %u in the wire table", d->name,
                         f->key, f->kind);
}

static px_err enc_struct(msgpack_packer *pk, const px_wire_struct *d, const void *base,
                         px_errmsg *em)
{
    px_err err;
    if (d->check && (err = d->check(base, em)))
        return PX_E_INVAL; /* our own caller built a message no peer would accept */
    uint32_t n = 0;
    for (uint32_t i = 0; i < d->n_fields; i++)
        if (d->fields[i].required || !field_is_zero(&d->fields[i], base))
            n++;
    msgpack_pack_map(pk, n);
    for (uint32_t i = 0; i < d->n_fields; i++) {
        const px_wire_field *f = &d->fields[i];
        if (!f->required && field_is_zero(f, base))
            continue;
        msgpack_pack_str(pk, f->key_len);
        msgpack_pack_str_body(pk, f->key, f->key_len);
        if ((err = enc_field(pk, d, f, base, em)))
            return err;
        /* Stop early once the buffer has refused bytes. */
        if (((enc *)pk->data)->err)
            return ((enc *)pk->data)->err;
    }
    return PX_OK;
}

/* Settle an encode: all or nothing, so on error out->len goes back to start. */
static px_err enc_finish(enc *e, size_t start, px_err err, const char *name, px_errmsg *em)
{
    if (!err && e->err)
        err = e->err;
    if (!err)
        return PX_OK;
    if (err == e->err && err == PX_E_TOOBIG)
        px_errmsg_set(em, err,
                      "%s: the encoding exceeds the %u-byte message limit (PX_WIRE_MAX_MSG)", name,
                      PX_WIRE_MAX_MSG);
    else if (err == e->err && err == PX_E_NOMEM)
        px_errmsg_set(em, err, "%s: out of memory growing the output buffer", name);
    e->b->len = start;
    return err;
}

static void enc_init(enc *e, msgpack_packer *pk, px_wbuf *out)
{
    e->b = out;
    e->limit = out->len > SIZE_MAX - PX_WIRE_MAX_MSG ? SIZE_MAX : out->len + PX_WIRE_MAX_MSG;
    e->err = PX_OK;
    msgpack_packer_init(pk, e, enc_write);
}

px_err px_wire_encode(px_wbuf *out, const px_msg *msg, px_errmsg *em)
{
    if (!out || !msg)
        return px_errmsg_set(em, PX_E_INVAL, "px_wire_encode: NULL argument");
    const px_wire_struct *d = px_wire_body_desc(msg->env.type);
    if (!d)
        return px_errmsg_set(em, PX_E_UNKNOWN, "cannot encode unknown message type %u",
                             msg->env.type);
    const size_t start = out->len;
    enc e;
    msgpack_packer pk;
    enc_init(&e, &pk, out);
    msgpack_pack_array(&pk, 6);
    msgpack_pack_uint32(&pk, PX_WIRE_VERSION);
    msgpack_pack_uint32(&pk, msg->env.type);
    msgpack_pack_uint32(&pk, msg->env.sender);
    msgpack_pack_uint64(&pk, msg->env.object);
    msgpack_pack_uint64(&pk, msg->env.seq);
    px_err err = enc_struct(&pk, d, &msg->body, em);
    return enc_finish(&e, start, err, d->name, em);
}

px_err px_wire_encode_struct(px_wbuf *out, const px_wire_struct *d, const void *s, px_errmsg *em)
{
    if (!out || !d || !s)
        return px_errmsg_set(em, PX_E_INVAL, "px_wire_encode_struct: NULL argument");
    const size_t start = out->len;
    enc e;
    msgpack_packer pk;
    enc_init(&e, &pk, out);
    px_err err = enc_struct(&pk, d, s, em);
    return enc_finish(&e, start, err, d->name, em);
}
