/* plexus — topology loader: scalar values and units.
 *
 * Numbers are parsed with integer arithmetic only ("1.5G" is 15 * 2^30 / 10,
 * and must come out whole), so a value means the same on every host and no
 * rounding surprises a user. */
#include "coordinator/topology_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static px_err need_scalar(tctx *c, const tnode *n, const char *what, const char *expected)
{
    if (n->type == TN_SCALAR && !pxt_is_null(n))
        return PX_OK;
    if (pxt_is_null(n))
        return pxt_fail(c, n, PX_E_CONFIG, "no value for %s; expected %s", what, expected);
    return pxt_fail(c, n, PX_E_CONFIG, "wrong type for %s: got %s; expected %s", what,
                    pxt_kind_str(n), expected);
}

px_err pxt_get_str(tctx *c, const tnode *n, const char *what, char **out)
{
    /* Quoted "" is a legal (empty) string; an absent value is not. */
    if (n->type != TN_SCALAR || pxt_is_null(n))
        return need_scalar(c, n, what, "a string");
    *out = px_tarena_strdup(c->t->arena, n->str);
    return *out ? PX_OK : pxt_nomem(c);
}

static bool name_char(char ch, bool first)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
        return true;
    return !first && (ch == '_' || ch == '.' || ch == '-');
}

px_err pxt_get_name(tctx *c, const tnode *n, const char *what, char out[PX_TOPO_NAME_MAX])
{
    static const char expect[] =
        "1-63 letters, digits, '_', '.' or '-', starting with a letter or digit";
    px_err err = need_scalar(c, n, what, "a name");
    if (err)
        return err;
    bool ok = n->len > 0 && n->len < PX_TOPO_NAME_MAX;
    for (uint32_t i = 0; ok && i < n->len; i++)
        ok = name_char(n->str[i], i == 0);
    if (!ok)
        return pxt_fail(c, n, PX_E_CONFIG, "invalid %s \"%.64s%s\"; expected %s", what, n->str,
                        n->len > 64 ? "..." : "", expect);
    memcpy(out, n->str, n->len + 1);
    return PX_OK;
}

typedef enum dec_status { DEC_OK = 0, DEC_BAD, DEC_BIG } dec_status;

typedef struct decnum {
    uint64_t mant;      /* all digits, the dot removed */
    unsigned frac;      /* digits after the dot */
    const char *suffix; /* what follows the number */
} decnum;

static dec_status parse_dec(const char *s, decnum *d)
{
    const char *p = s;
    uint64_t m = 0;
    unsigned frac = 0;
    bool dot = false;
    if (*p < '0' || *p > '9')
        return DEC_BAD;
    for (;; p++) {
        if (*p >= '0' && *p <= '9') {
            if (__builtin_mul_overflow(m, 10u, &m) ||
                __builtin_add_overflow(m, (uint64_t)(*p - '0'), &m))
                return DEC_BIG;
            frac += dot;
        } else if (*p == '.' && !dot && p[1] >= '0' && p[1] <= '9') {
            dot = true;
        } else {
            break;
        }
    }
    d->mant = m;
    d->frac = frac;
    d->suffix = p;
    return DEC_OK;
}

/* d scaled by mult: DEC_BAD when the result is not a whole number. */
static dec_status dec_scale(const decnum *d, uint64_t mult, uint64_t *out)
{
    static const uint64_t pow10[] = {1,
                                     10,
                                     100,
                                     1000,
                                     10000,
                                     100000,
                                     1000000,
                                     10000000,
                                     100000000,
                                     1000000000,
                                     10000000000ull,
                                     100000000000ull,
                                     1000000000000ull,
                                     10000000000000ull,
                                     100000000000000ull,
                                     1000000000000000ull,
                                     10000000000000000ull,
                                     100000000000000000ull,
                                     1000000000000000000ull};
    if (d->frac >= sizeof(pow10) / sizeof(pow10[0]))
        return DEC_BAD;
    uint64_t v;
    if (__builtin_mul_overflow(d->mant, mult, &v))
        return DEC_BIG;
    if (v % pow10[d->frac])
        return DEC_BAD;
    *out = v / pow10[d->frac];
    return DEC_OK;
}

px_err pxt_get_uint(tctx *c, const tnode *n, const char *what, uint64_t min, uint64_t max,
                    uint64_t *out)
{
    char expect[96];
    snprintf(expect, sizeof(expect), "an integer %" PRIu64 "..%" PRIu64, min, max);
    px_err err = need_scalar(c, n, what, expect);
    if (err)
        return err;
    decnum d;
    dec_status st = parse_dec(n->str, &d);
    if (st == DEC_OK && (d.frac || *d.suffix))
        st = DEC_BAD;
    if (st == DEC_BAD)
        return pxt_fail(c, n, PX_E_CONFIG, "invalid %s \"%.64s\"; expected %s", what, n->str,
                        expect);
    if (st == DEC_BIG || d.mant < min || d.mant > max)
        return pxt_fail(c, n, PX_E_CONFIG, "%s %.64s is out of range; expected %s", what, n->str,
                        expect);
    *out = d.mant;
    return PX_OK;
}

px_err pxt_get_bool(tctx *c, const tnode *n, const char *what, bool *out)
{
    static const char expect[] = "true or false";
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    px_err err = need_scalar(c, n, what, expect);
    if (err)
        return err;
    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(n->str, yes[i]) == 0) {
            *out = true;
            return PX_OK;
        }
        if (strcasecmp(n->str, no[i]) == 0) {
            *out = false;
            return PX_OK;
        }
    }
    return pxt_fail(c, n, PX_E_CONFIG, "invalid %s \"%.64s\"; expected %s", what, n->str, expect);
}

px_err pxt_get_enum(tctx *c, const tnode *n, const char *what, const char *const *words,
                    unsigned *out)
{
    char expect[256];
    size_t used = 0;
    expect[0] = '\0';
    for (unsigned i = 0; words[i]; i++) {
        int w = snprintf(expect + used, sizeof(expect) - used, "%s%s", i ? " | " : "", words[i]);
        if (w < 0 || (size_t)w >= sizeof(expect) - used)
            break;
        used += (size_t)w;
    }
    px_err err = need_scalar(c, n, what, expect);
    if (err)
        return err;
    for (unsigned i = 0; words[i]; i++) {
        if (strcmp(n->str, words[i]) == 0) {
            *out = i;
            return PX_OK;
        }
    }
    const char *near = pxt_suggest(n->str, words);
    if (near)
        return pxt_fail(c, n, PX_E_CONFIG,
                        "invalid %s \"%.64s\"; expected %s (hint: did you mean \"%s\"?)", what,
                        n->str, expect, near);
    return pxt_fail(c, n, PX_E_CONFIG, "invalid %s \"%.64s\"; expected %s", what, n->str, expect);
}

/* ---- units ---- */

typedef struct unit {
    const char *suffix;
    uint64_t mult;
} unit;

#define KIB (1ull << 10)
#define MIB (1ull << 20)
#define GIB (1ull << 30)
#define TIB (1ull << 40)

static const unit size_units[] = {
    {"B", 1},    {"K", KIB},   {"k", KIB},  {"KiB", KIB}, {"Ki", KIB}, {"M", MIB},
    {"m", MIB},  {"MiB", MIB}, {"Mi", MIB}, {"G", GIB},   {"g", GIB},  {"GiB", GIB},
    {"Gi", GIB}, {"T", TIB},   {"t", TIB},  {"TiB", TIB}, {"Ti", TIB}, {NULL, 0},
};

static const unit rate_units[] = {
    {"", 1},        {"k", 1000},       {"K", 1000},       {"M", 1000000},
    {"m", 1000000}, {"G", 1000000000}, {"g", 1000000000}, {NULL, 0},
};

static const unit dur_units[] = {
    {"ns", 1},
    {"us", 1000},
    {"\xc2\xb5s", 1000}, /* µs */
    {"ms", 1000000},
    {"s", 1000000000ull},
    {"m", 60000000000ull},
    {"min", 60000000000ull},
    {"h", 3600000000000ull},
    {NULL, 0},
};

static void fmt_size(char *buf, size_t cap, uint64_t v)
{
    static const unit show[] = {{"T", TIB}, {"G", GIB}, {"M", MIB}, {"K", KIB}};
    for (size_t i = 0; i < 4 && v; i++) {
        if (v % show[i].mult == 0) {
            snprintf(buf, cap, "%" PRIu64 "%s", v / show[i].mult, show[i].suffix);
            return;
        }
    }
    snprintf(buf, cap, "%" PRIu64 "%s", v, v ? "B" : "");
}

static void fmt_rate(char *buf, size_t cap, uint64_t v)
{
    static const unit show[] = {{"G", 1000000000}, {"M", 1000000}, {"k", 1000}};
    for (size_t i = 0; i < 3 && v; i++) {
        if (v % show[i].mult == 0) {
            snprintf(buf, cap, "%" PRIu64 "%s", v / show[i].mult, show[i].suffix);
            return;
        }
    }
    snprintf(buf, cap, "%" PRIu64, v);
}

static void fmt_dur(char *buf, size_t cap, uint64_t v)
{
    static const unit show[] = {
        {"h", 3600000000000ull}, {"s", 1000000000ull}, {"ms", 1000000}, {"us", 1000}};
    for (size_t i = 0; i < 4 && v; i++) {
        if (v % show[i].mult == 0) {
            snprintf(buf, cap, "%" PRIu64 "%s", v / show[i].mult, show[i].suffix);
            return;
        }
    }
    snprintf(buf, cap, "%" PRIu64 "%s", v, v ? "ns" : "");
}

typedef void (*fmt_fn)(char *, size_t, uint64_t);

static px_err range_fail(tctx *c, const tnode *n, const char *what, const char *noun, fmt_fn fmt,
                         uint64_t min, uint64_t max)
{
    char lo[32], hi[32];
    fmt(lo, sizeof(lo), min);
    fmt(hi, sizeof(hi), max);
    return pxt_fail(c, n, PX_E_CONFIG, "%s %.64s is out of range; expected %s from %s to %s", what,
                    n->str, noun, lo, hi);
}

static const unit *find_unit(const unit *units, const char *suffix)
{
    for (size_t i = 0; units[i].suffix; i++)
        if (strcmp(units[i].suffix, suffix) == 0)
            return &units[i];
    return NULL;
}

px_err pxt_get_size(tctx *c, const tnode *n, const char *what, uint64_t min, uint64_t max,
                    uint64_t *out)
{
    static const char expect[] = "a size like 512M or 1G (K, M, G, T are KiB, MiB, GiB, TiB)";
    px_err err = need_scalar(c, n, what, expect);
    if (err)
        return err;
    decnum d;
    dec_status st = parse_dec(n->str, &d);
    uint64_t v = 0;
    if (st == DEC_OK) {
        const unit *u = find_unit(size_units, d.suffix);
        if (u) {
            st = dec_scale(&d, u->mult, &v);
        } else if (*d.suffix == '\0' && d.mant == 0) {
            v = 0;
        } else if (*d.suffix == '\0') {
            return pxt_fail(c, n, PX_E_CONFIG,
                            "%s %.64s has no unit; expected %s (hint: write %sM for MiB)", what,
                            n->str, expect, n->str);
        } else if (strlen(d.suffix) == 2 && (d.suffix[1] == 'B' || d.suffix[1] == 'b')) {
            return pxt_fail(c, n, PX_E_CONFIG,
                            "%s %.64s: decimal unit %s is ambiguous; expected %s (hint: "
                            "write %c or %ciB)",
                            what, n->str, d.suffix, expect, d.suffix[0] & ~0x20,
                            d.suffix[0] & ~0x20);
        } else {
            st = DEC_BAD;
        }
    }
    if (st == DEC_BAD)
        return pxt_fail(c, n, PX_E_CONFIG, "invalid %s \"%.64s\"; expected %s", what, n->str,
                        expect);
    if (st == DEC_BIG || v < min || v > max)
        return range_fail(c, n, what, "a size", fmt_size, min, max);
    *out = v;
    return PX_OK;
}

px_err pxt_get_bitrate(tctx *c, const tnode *n, const char *what, uint64_t min, uint64_t max,
                       uint64_t *out)
{
    static const char expect[] = "a bit rate like 500k, 1M or 2000000 (bit/s)";
    px_err err = need_scalar(c, n, what, expect);
    if (err)
        return err;
    decnum d;
    dec_status st = parse_dec(n->str, &d);
    uint64_t v = 0;
    if (st == DEC_OK) {
        char mag[2] = {0, 0};
        const char *tail = d.suffix;
        if (*tail && strchr("kKmMgG", *tail)) {
            mag[0] = *tail;
            tail++;
        }
        const unit *u = find_unit(rate_units, mag);
        bool tail_ok = !*tail || strcasecmp(tail, "bit") == 0 || strcasecmp(tail, "bps") == 0 ||
                       strcasecmp(tail, "bit/s") == 0;
        st = u && tail_ok ? dec_scale(&d, u->mult, &v) : DEC_BAD;
    }
    if (st == DEC_BAD)
        return pxt_fail(c, n, PX_E_CONFIG, "invalid %s \"%.64s\"; expected %s", what, n->str,
                        expect);
    if (st == DEC_BIG || v < min || v > max)
        return range_fail(c, n, what, "a bit rate", fmt_rate, min, max);
    *out = v;
    return PX_OK;
}

px_err pxt_get_duration(tctx *c, const tnode *n, const char *what, uint64_t min, uint64_t max,
                        uint64_t *out)
{
    static const char expect[] = "a duration like 20ms, 1s or 500us";
    px_err err = need_scalar(c, n, what, expect);
    if (err)
        return err;
    decnum d;
    dec_status st = parse_dec(n->str, &d);
    uint64_t v = 0;
    if (st == DEC_OK) {
        const unit *u = find_unit(dur_units, d.suffix);
        if (u)
            st = dec_scale(&d, u->mult, &v);
        else if (*d.suffix == '\0' && d.mant == 0)
            v = 0;
        else if (*d.suffix == '\0')
            return pxt_fail(c, n, PX_E_CONFIG, "%s %.64s has no unit; expected %s", what, n->str,
                            expect);
        else
            st = DEC_BAD;
    }
    if (st == DEC_BAD)
        return pxt_fail(c, n, PX_E_CONFIG, "invalid %s \"%.64s\"; expected %s", what, n->str,
                        expect);
    if (st == DEC_BIG || v < min || v > max)
        return range_fail(c, n, what, "a duration", fmt_dur, min, max);
    *out = v;
    return PX_OK;
}

px_err pxt_get_percent(tctx *c, const tnode *n, const char *what, uint32_t *out_ppm)
{
    static const char expect[] = "a percentage like 1% or 0.5%";
    px_err err = need_scalar(c, n, what, expect);
    if (err)
        return err;
    decnum d;
    dec_status st = parse_dec(n->str, &d);
    if (st == DEC_OK && strcmp(d.suffix, "%") != 0) {
        if (*d.suffix == '\0')
            return pxt_fail(c, n, PX_E_CONFIG, "%s %.64s has no %% sign; expected %s", what, n->str,
                            expect);
        st = DEC_BAD;
    }
    if (st == DEC_BAD)
        return pxt_fail(c, n, PX_E_CONFIG, "invalid %s \"%.64s\"; expected %s", what, n->str,
                        expect);
    if (st == DEC_OK && d.frac > 4)
        return pxt_fail(c, n, PX_E_CONFIG,
                        "%s %.64s is finer than the 0.0001%% resolution; expected %s", what, n->str,
                        expect);
    /* 1% = 10000 ppm: shift the mantissa to four decimals. */
    uint64_t ppm = 0;
    if (st == DEC_OK) {
        static const uint64_t up[] = {10000, 1000, 100, 10, 1};
        if (__builtin_mul_overflow(d.mant, up[d.frac], &ppm))
            st = DEC_BIG;
    }
    if (st == DEC_BIG || ppm > 1000000)
        return pxt_fail(c, n, PX_E_CONFIG,
                        "%s %.64s is out of range; expected %s from 0%% to 100%%", what, n->str,
                        "a percentage");
    *out_ppm = (uint32_t)ppm;
    return PX_OK;
}

px_err px_topo_size_parse(const char *s, uint64_t min, uint64_t max, uint64_t *out, px_errmsg *em)
{
    tnode n = {.type = TN_SCALAR, .plain = true, .str = (char *)s, .len = (uint32_t)strlen(s)};
    tctx c = {.file = "argument", .em = em};
    return pxt_get_size(&c, &n, "size", min, max, out);
}
