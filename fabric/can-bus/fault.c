/* plexus — CAN bus fault injection. See fault.h. */
#include "fabric/can-bus/fault.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fabric/core/text.h"

#if defined(__linux__) && __has_include(<linux/can/error.h>)
#include <linux/can/error.h>
_Static_assert(PX_CANERR_DLC == CAN_ERR_DLC, "CAN_ERR_DLC");
_Static_assert(PX_CANERR_CRTL == CAN_ERR_CRTL, "CAN_ERR_CRTL");
_Static_assert(PX_CANERR_PROT == CAN_ERR_PROT, "CAN_ERR_PROT");
_Static_assert(PX_CANERR_BUSOFF == CAN_ERR_BUSOFF, "CAN_ERR_BUSOFF");
_Static_assert(PX_CANERR_BUSERROR == CAN_ERR_BUSERROR, "CAN_ERR_BUSERROR");
_Static_assert(PX_CANERR_RESTARTED == CAN_ERR_RESTARTED, "CAN_ERR_RESTARTED");
_Static_assert(PX_CANERR_CNT == CAN_ERR_CNT, "CAN_ERR_CNT");
_Static_assert(PX_CANERR_CRTL_RX_PASSIVE == CAN_ERR_CRTL_RX_PASSIVE, "RX_PASSIVE");
_Static_assert(PX_CANERR_CRTL_TX_PASSIVE == CAN_ERR_CRTL_TX_PASSIVE, "TX_PASSIVE");
_Static_assert(PX_CANERR_CRTL_ACTIVE == CAN_ERR_CRTL_ACTIVE, "CRTL_ACTIVE");
_Static_assert(PX_CANERR_PROT_BIT == CAN_ERR_PROT_BIT, "PROT_BIT");
_Static_assert(PX_CANERR_PROT_FORM == CAN_ERR_PROT_FORM, "PROT_FORM");
_Static_assert(PX_CANERR_PROT_STUFF == CAN_ERR_PROT_STUFF, "PROT_STUFF");
_Static_assert(PX_CANERR_PROT_LOC_ID28_21 == CAN_ERR_PROT_LOC_ID28_21, "LOC_ID28_21");
_Static_assert(PX_CANERR_PROT_LOC_CRC_SEQ == CAN_ERR_PROT_LOC_CRC_SEQ, "LOC_CRC_SEQ");
_Static_assert(PX_CANERR_PROT_LOC_DATA == CAN_ERR_PROT_LOC_DATA, "LOC_DATA");
_Static_assert(PX_CANERR_PROT_LOC_DLC == CAN_ERR_PROT_LOC_DLC, "LOC_DLC");
_Static_assert(PX_CANERR_PROT_LOC_CRC_DEL == CAN_ERR_PROT_LOC_CRC_DEL, "LOC_CRC_DEL");
#endif

#define PASSIVE_COUNT 128u /* CAN_ERROR_PASSIVE_THRESHOLD */

/* ---- PRNG: splitmix64 (Steele, Lea, Flood 2014) ---- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n) by multiply-shift; bias below 2^-32, far under the
 * ppm resolution. */
static uint32_t rng_below(uint64_t *s, uint32_t n)
{
    return (uint32_t)(((rng_next(s) >> 32) * n) >> 32);
}

static bool chance(px_canfault *f, uint32_t ppm)
{
    if (ppm == 0)
        return false;
    if (ppm >= PX_CANFAULT_PPM)
        return true;
    return rng_below(&f->rng, PX_CANFAULT_PPM) < ppm;
}

/* ---- members: sorted by ep, only non-default ones kept ---- */

static uint32_t member_pos(const px_canfault *f, uint32_t ep)
{
    uint32_t lo = 0, hi = f->n_members;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (f->members[mid].ep < ep)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static px_canfault_member *member_find(px_canfault *f, uint32_t ep)
{
    uint32_t i = member_pos(f, ep);
    return i < f->n_members && f->members[i].ep == ep ? &f->members[i] : NULL;
}

static px_canfault_member *member_get(px_canfault *f, uint32_t ep)
{
    uint32_t i = member_pos(f, ep);
    if (i < f->n_members && f->members[i].ep == ep)
        return &f->members[i];
    if (f->n_members == PX_CANFAULT_MAX_MEMBERS)
        return NULL;
    memmove(&f->members[i + 1], &f->members[i], (f->n_members - i) * sizeof(f->members[0]));
    f->members[i] = (px_canfault_member){.ep = ep};
    f->n_members++;
    return &f->members[i];
}

/* Frees m's slot when it is back to the defaults. */
static void member_tidy(px_canfault *f, px_canfault_member *m)
{
    if (m->drop_ppm || m->corrupt_ppm || m->partitioned || m->state != PX_CANFAULT_ACTIVE)
        return;
    uint32_t i = (uint32_t)(m - f->members);
    memmove(&f->members[i], &f->members[i + 1], (f->n_members - i - 1) * sizeof(f->members[0]));
    f->n_members--;
}

/* Endpoints of eps[0..n) that would need a new slot; repeats count once. */
static uint32_t slots_needed(const px_canfault *f, const uint32_t *eps, uint32_t n)
{
    uint32_t need = 0;
    for (uint32_t i = 0; i < n; i++) {
        bool seen = member_find((px_canfault *)f, eps[i]) != NULL;
        for (uint32_t j = 0; j < i && !seen; j++)
            seen = eps[j] == eps[i];
        need += !seen;
    }
    return need;
}

px_canfault_member px_canfault_member_get(const px_canfault *f, uint32_t ep)
{
    const px_canfault_member *m = member_find((px_canfault *)f, ep);
    return m ? *m : (px_canfault_member){.ep = ep};
}

void px_canfault_init(px_canfault *f, uint64_t seed, px_canfault_notify_cb notify, void *ud)
{
    memset(f, 0, sizeof(*f));
    f->rng = seed;
    f->notify = notify;
    f->ud = ud;
}

/* ---- error frames ---- */

static void err_frame(px_can_frame *out, uint32_t cls)
{
    memset(out, 0, sizeof(*out));
    out->can_id = PX_CAN_ERR_FLAG | cls;
    out->len = PX_CANERR_DLC;
}

static void prot_frame(px_can_frame *out, uint8_t type, uint8_t loc)
{
    err_frame(out, PX_CANERR_PROT | PX_CANERR_BUSERROR);
    out->data[2] = type;
    out->data[3] = loc;
}

void px_canfault_error_frame(px_canfault *f, px_can_frame *out)
{
    static const uint8_t kinds[][2] = {
        {PX_CANERR_PROT_BIT, PX_CANERR_PROT_LOC_DATA},
        {PX_CANERR_PROT_BIT, PX_CANERR_PROT_LOC_ID28_21},
        {PX_CANERR_PROT_FORM, PX_CANERR_PROT_LOC_CRC_DEL},
        {PX_CANERR_PROT_STUFF, PX_CANERR_PROT_LOC_DATA},
        {PX_CANERR_PROT_STUFF, PX_CANERR_PROT_LOC_DLC},
        {PX_CANERR_PROT_STUFF, PX_CANERR_PROT_LOC_CRC_SEQ},
    };
    uint32_t k = rng_below(&f->rng, sizeof(kinds) / sizeof(kinds[0]));
    prot_frame(out, kinds[k][0], kinds[k][1]);
    f->stats.error_frames++;
}

/* What receivers of a corrupted frame report: a bit error in the data, or
 * a form error at the CRC delimiter (where a bad CRC shows). */
static void corrupt_frame(px_canfault *f, px_can_frame *out)
{
    if (rng_next(&f->rng) >> 63)
        prot_frame(out, PX_CANERR_PROT_BIT, PX_CANERR_PROT_LOC_DATA);
    else
        prot_frame(out, PX_CANERR_PROT_FORM, PX_CANERR_PROT_LOC_CRC_DEL);
    f->stats.error_frames++;
}

bool px_canfault_state_frame(px_canfault_state from, px_canfault_state to, px_can_frame *out)
{
    if (from == to)
        return false;
    switch (to) {
    case PX_CANFAULT_BUSOFF:
        err_frame(out, PX_CANERR_BUSOFF);
        break;
    case PX_CANFAULT_PASSIVE:
        err_frame(out, PX_CANERR_CRTL | PX_CANERR_CNT |
                           (from == PX_CANFAULT_BUSOFF ? PX_CANERR_RESTARTED : 0));
        out->data[1] = PX_CANERR_CRTL_RX_PASSIVE | PX_CANERR_CRTL_TX_PASSIVE;
        out->data[6] = PASSIVE_COUNT;
        out->data[7] = PASSIVE_COUNT;
        break;
    default:
        if (from == PX_CANFAULT_BUSOFF) {
            err_frame(out, PX_CANERR_RESTARTED);
        } else {
            err_frame(out, PX_CANERR_CRTL | PX_CANERR_CNT);
            out->data[1] = PX_CANERR_CRTL_ACTIVE;
        }
        break;
    }
    return true;
}

/* ---- the data path ---- */

px_canfault_verdict px_canfault_submit(px_canfault *f, uint32_t src_ep, px_can_frame *err)
{
    const px_canfault_member *m = member_find(f, src_ep);
    if (f->down) {
        f->stats.refused_down++;
        return PX_CANFAULT_DROP;
    }
    if (m && m->partitioned) {
        f->stats.refused_partition++;
        return PX_CANFAULT_DROP;
    }
    if (m && m->state == PX_CANFAULT_BUSOFF) {
        f->stats.refused_busoff++;
        return PX_CANFAULT_DROP;
    }
    if (chance(f, f->drop_ppm)) {
        f->stats.dropped++;
        return PX_CANFAULT_DROP;
    }
    if (chance(f, f->corrupt_ppm) || (m && chance(f, m->corrupt_ppm))) {
        f->stats.corrupted++;
        corrupt_frame(f, err);
        return PX_CANFAULT_CORRUPT;
    }
    return PX_CANFAULT_PASS;
}

bool px_canfault_deliver(px_canfault *f, uint32_t dst_ep)
{
    const px_canfault_member *m = member_find(f, dst_ep);
    if (f->down) {
        f->stats.refused_down++;
        return false;
    }
    if (!m)
        return true;
    if (m->partitioned) {
        f->stats.refused_partition++;
        return false;
    }
    if (m->state == PX_CANFAULT_BUSOFF) {
        f->stats.refused_busoff++;
        return false;
    }
    if (chance(f, m->drop_ppm)) {
        f->stats.delivery_drops++;
        return false;
    }
    return true;
}

/* ---- state ---- */

px_err px_canfault_set_state(px_canfault *f, uint32_t ep, px_canfault_state st, px_can_frame *err,
                             bool *has_err)
{
    *has_err = false;
    if (ep == 0 || (unsigned)st > PX_CANFAULT_BUSOFF)
        return PX_E_INVAL;
    px_canfault_member *m = st == PX_CANFAULT_ACTIVE ? member_find(f, ep) : member_get(f, ep);
    if (!m)
        return st == PX_CANFAULT_ACTIVE ? PX_OK : PX_E_TOOBIG;
    *has_err = px_canfault_state_frame(m->state, st, err);
    m->state = st;
    member_tidy(f, m);
    return PX_OK;
}

/* The setters below share one shape: find or make the slot, change one
 * field, free the slot if it is back to the defaults. */
typedef enum field { F_PART, F_DROP, F_CORRUPT } field;

static px_err set_field(px_canfault *f, uint32_t ep, field which, uint32_t v)
{
    if (ep == 0 || ((which == F_DROP || which == F_CORRUPT) && v > PX_CANFAULT_PPM))
        return PX_E_INVAL;
    px_canfault_member *m = v ? member_get(f, ep) : member_find(f, ep);
    if (!m)
        return v ? PX_E_TOOBIG : PX_OK;
    if (which == F_PART)
        m->partitioned = v != 0;
    else if (which == F_DROP)
        m->drop_ppm = v;
    else
        m->corrupt_ppm = v;
    member_tidy(f, m);
    return PX_OK;
}

px_err px_canfault_set_partition(px_canfault *f, uint32_t ep, bool partitioned)
{
    return set_field(f, ep, F_PART, partitioned);
}

px_err px_canfault_set_member_drop(px_canfault *f, uint32_t ep, uint32_t drop_ppm)
{
    return set_field(f, ep, F_DROP, drop_ppm);
}

px_err px_canfault_set_member_corrupt(px_canfault *f, uint32_t ep, uint32_t corrupt_ppm)
{
    return set_field(f, ep, F_CORRUPT, corrupt_ppm);
}

void px_canfault_set_down(px_canfault *f, bool down)
{
    f->down = down;
}

px_err px_canfault_set_bus(px_canfault *f, uint32_t drop_ppm, uint32_t corrupt_ppm)
{
    if (drop_ppm > PX_CANFAULT_PPM || corrupt_ppm > PX_CANFAULT_PPM)
        return PX_E_INVAL;
    f->drop_ppm = drop_ppm;
    f->corrupt_ppm = corrupt_ppm;
    return PX_OK;
}

px_err px_canfault_configure(px_canfault *f, uint32_t loss_ppm, uint32_t corrupt_ppm)
{
    px_err err = px_canfault_set_bus(f, loss_ppm, corrupt_ppm);
    if (!err) {
        f->base_drop_ppm = loss_ppm;
        f->base_corrupt_ppm = corrupt_ppm;
    }
    return err;
}

/* ---- composite changes: their error frames go to notify ---- */

static void notify(px_canfault *f, uint32_t ep, const px_can_frame *err)
{
    if (f->notify)
        f->notify(f->ud, ep, err);
}

static px_err state_notify(px_canfault *f, uint32_t ep, px_canfault_state st)
{
    px_can_frame err;
    bool has = false;
    px_err e = px_canfault_set_state(f, ep, st, &err, &has);
    if (!e && has)
        notify(f, ep, &err);
    return e;
}

void px_canfault_clear(px_canfault *f)
{
    f->drop_ppm = f->base_drop_ppm;
    f->corrupt_ppm = f->base_corrupt_ppm;
    f->down = false;
    /* Recovery frames first, in endpoint order, then the slots go. */
    for (uint32_t i = 0; i < f->n_members; i++) {
        px_canfault_member *m = &f->members[i];
        px_can_frame err;
        if (px_canfault_state_frame(m->state, PX_CANFAULT_ACTIVE, &err))
            notify(f, m->ep, &err);
    }
    f->n_members = 0;
}

px_err px_canfault_topo(px_canfault *f, px_canfault_kind kind, bool start, const uint32_t *eps,
                        uint32_t n_eps, uint32_t loss_ppm, uint32_t corrupt_ppm)
{
    if ((n_eps && !eps) || (kind == PX_CANFAULT_K_BUS_OFF && n_eps == 0))
        return PX_E_INVAL;
    for (uint32_t i = 0; i < n_eps; i++)
        if (eps[i] == 0)
            return PX_E_INVAL;
    if (start && n_eps && f->n_members + slots_needed(f, eps, n_eps) > PX_CANFAULT_MAX_MEMBERS)
        return PX_E_TOOBIG;
    switch (kind) {
    case PX_CANFAULT_K_CAN_ERROR:
        if (start) {
            px_can_frame err;
            px_canfault_error_frame(f, &err);
            notify(f, PX_CANFAULT_ALL, &err);
        }
        return PX_OK;
    case PX_CANFAULT_K_BUS_OFF:
        for (uint32_t i = 0; i < n_eps; i++)
            state_notify(f, eps[i], start ? PX_CANFAULT_BUSOFF : PX_CANFAULT_ACTIVE);
        return PX_OK;
    case PX_CANFAULT_K_LINK_DOWN:
        if (n_eps == 0)
            f->down = start;
        for (uint32_t i = 0; i < n_eps; i++)
            px_canfault_set_partition(f, eps[i], start);
        return PX_OK;
    case PX_CANFAULT_K_IMPAIR:
        if (loss_ppm > PX_CANFAULT_PPM || corrupt_ppm > PX_CANFAULT_PPM)
            return PX_E_INVAL;
        if (n_eps == 0)
            return start ? px_canfault_set_bus(f, loss_ppm, corrupt_ppm)
                         : px_canfault_set_bus(f, f->base_drop_ppm, f->base_corrupt_ppm);
        for (uint32_t i = 0; i < n_eps; i++) {
            px_canfault_set_member_drop(f, eps[i], start ? loss_ppm : 0);
            px_canfault_set_member_corrupt(f, eps[i], start ? corrupt_ppm : 0);
        }
        return PX_OK;
    }
    return PX_E_INVAL;
}

const char *px_canfault_state_str(px_canfault_state st)
{
    switch (st) {
    case PX_CANFAULT_ACTIVE:
        return "active";
    case PX_CANFAULT_PASSIVE:
        return "passive";
    case PX_CANFAULT_BUSOFF:
        return "bus-off";
    }
    return "?";
}

/* ---- text output ---- */

typedef struct out {
    char *buf;
    size_t cap, len;
    bool cut;
} out;

static void out_init(out *o, char *buf, size_t cap)
{
    *o = (out){buf, cap, 0, false};
    if (cap)
        buf[0] = '\0';
}

static void outf(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void outf(out *o, const char *fmt, ...)
{
    if (o->cut || o->cap == 0) {
        o->cut = true;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= o->cap - o->len) {
        o->cut = true;
        o->buf[o->len] = '\0'; /* never half a token */
        return;
    }
    o->len += (size_t)w;
}

/* s as printable ASCII ('?' for anything else), at most max bytes of it. */
static void out_plain(out *o, const char *s, size_t max)
{
    char tmp[80];
    size_t i = 0;
    for (; s[i] && i < max && i < sizeof(tmp) - 4; i++)
        tmp[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (s[i] && i == max)
        tmp[i++] = '.', tmp[i++] = '.', tmp[i++] = '.';
    tmp[i] = '\0';
    outf(o, "%s", tmp);
}

/* s as a JSON string, quotes included. */
static void out_json_str(out *o, const char *s)
{
    outf(o, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p && !o->cut; p++) {
        if (*p == '"' || *p == '\\')
            outf(o, "\\%c", *p);
        else if (*p == '\n')
            outf(o, "\\n");
        else if (*p == '\t')
            outf(o, "\\t");
        else if (*p == '\r')
            outf(o, "\\r");
        else if (*p < 0x20 || *p == 0x7f)
            outf(o, "\\u%04x", *p);
        else
            outf(o, "%c", *p);
    }
    outf(o, "\"");
}

/* 50000 -> "5%", 5000 -> "0.5%", 1 -> "0.0001%". */
static void out_pct(out *o, uint32_t ppm)
{
    uint32_t whole = ppm / 10000, frac = ppm % 10000;
    if (!frac) {
        outf(o, "%u%%", whole);
        return;
    }
    char d[8];
    snprintf(d, sizeof(d), "%04u", frac);
    for (int i = 3; i > 0 && d[i] == '0'; i--)
        d[i] = '\0';
    outf(o, "%u.%s%%", whole, d);
}

static const char *member_name(px_canfault_name_cb name, void *nud, uint32_t ep)
{
    const char *s = name ? name(nud, ep) : NULL;
    return s && *s ? s : NULL;
}

px_err px_canfault_describe(const px_canfault *f, px_canfault_name_cb name, void *nud, char *buf,
                            size_t cap)
{
    out o;
    out_init(&o, buf, cap);
    outf(&o, "bus: %s, drop ", f->down ? "down" : "up");
    out_pct(&o, f->drop_ppm);
    outf(&o, ", corrupt ");
    out_pct(&o, f->corrupt_ppm);
    outf(&o, " (topology: drop ");
    out_pct(&o, f->base_drop_ppm);
    outf(&o, ", corrupt ");
    out_pct(&o, f->base_corrupt_ppm);
    outf(&o, ")\n");
    for (uint32_t i = 0; i < f->n_members; i++) {
        const px_canfault_member *m = &f->members[i];
        const char *nm = member_name(name, nud, m->ep);
        outf(&o, "endpoint %u", m->ep);
        if (nm) {
            outf(&o, " (");
            out_plain(&o, nm, 63);
            outf(&o, ")");
        }
        outf(&o, ": %s%s, drop ", px_canfault_state_str(m->state),
             m->partitioned ? ", partitioned" : "");
        out_pct(&o, m->drop_ppm);
        outf(&o, ", corrupt ");
        out_pct(&o, m->corrupt_ppm);
        outf(&o, "\n");
    }
    const px_canfault_stats *s = &f->stats;
    outf(&o,
         "counters: dropped %llu, corrupted %llu, refused (down) %llu, refused (bus-off) %llu, "
         "refused (partition) %llu, delivery drops %llu, error frames %llu\n",
         (unsigned long long)s->dropped, (unsigned long long)s->corrupted,
         (unsigned long long)s->refused_down, (unsigned long long)s->refused_busoff,
         (unsigned long long)s->refused_partition, (unsigned long long)s->delivery_drops,
         (unsigned long long)s->error_frames);
    return o.cut ? PX_E_TOOBIG : PX_OK;
}

px_err px_canfault_json(const px_canfault *f, px_canfault_name_cb name, void *nud, char *buf,
                        size_t cap)
{
    out o;
    out_init(&o, buf, cap);
    outf(&o,
         "{\"down\":%s,\"drop_ppm\":%u,\"corrupt_ppm\":%u,\"base_drop_ppm\":%u,"
         "\"base_corrupt_ppm\":%u,\"members\":[",
         f->down ? "true" : "false", f->drop_ppm, f->corrupt_ppm, f->base_drop_ppm,
         f->base_corrupt_ppm);
    for (uint32_t i = 0; i < f->n_members; i++) {
        const px_canfault_member *m = &f->members[i];
        const char *nm = member_name(name, nud, m->ep);
        outf(&o, "%s{\"ep\":%u", i ? "," : "", m->ep);
        if (nm) {
            outf(&o, ",\"name\":");
            out_json_str(&o, nm);
        }
        outf(&o, ",\"state\":\"%s\",\"partitioned\":%s,\"drop_ppm\":%u,\"corrupt_ppm\":%u}",
             px_canfault_state_str(m->state), m->partitioned ? "true" : "false", m->drop_ppm,
             m->corrupt_ppm);
    }
    const px_canfault_stats *s = &f->stats;
    outf(&o,
         "],\"counters\":{\"dropped\":%llu,\"corrupted\":%llu,\"refused_down\":%llu,"
         "\"refused_busoff\":%llu,\"refused_partition\":%llu,\"delivery_drops\":%llu,"
         "\"error_frames\":%llu}}",
         (unsigned long long)s->dropped, (unsigned long long)s->corrupted,
         (unsigned long long)s->refused_down, (unsigned long long)s->refused_busoff,
         (unsigned long long)s->refused_partition, (unsigned long long)s->delivery_drops,
         (unsigned long long)s->error_frames);
    if (o.cut && cap)
        buf[0] = '\0'; /* half a JSON object is worse than none */
    return o.cut ? PX_E_TOOBIG : PX_OK;
}

/* ---- the run-time command ---- */

typedef enum act_kind {
    A_DROP = 0,
    A_CORRUPT,
    A_GUEST,
    A_STATE,
    A_PARTITION,
    A_HEAL,
    A_DOWN,
    A_UP,
    A_ERROR,
    A_CLEAR,
    A_COUNT
} act_kind;

static const struct opt {
    const char *name;
    bool value;
    bool scoped; /* applies to the current --guest when there is one */
    bool needs_guest;
} opts[A_COUNT] = {
    [A_DROP] = {"--drop", true, true, false},
    [A_CORRUPT] = {"--corrupt", true, true, false},
    [A_GUEST] = {"--guest", true, false, false},
    [A_STATE] = {"--state", true, true, true},
    [A_PARTITION] = {"--partition", false, true, true},
    [A_HEAL] = {"--heal", false, true, false},
    [A_DOWN] = {"--down", false, false, false},
    [A_UP] = {"--up", false, false, false},
    [A_ERROR] = {"--error", false, false, false},
    [A_CLEAR] = {"--clear", false, false, false},
};

static const char usage[] = "--drop P, --corrupt P, --guest NAME, --state active|passive|bus-off, "
                            "--partition, --heal, --down, --up, --error, --clear";
static const char pct_forms[] = "a percentage with at most 4 decimals like 5% or 0.25%, or parts "
                                "per million like 2500ppm (0..100%)";

#define MAX_GUESTS PX_CANFAULT_MAX_ARGS /* "--guest=NAME" is one argument */

typedef struct action {
    act_kind k;
    int guest; /* index into cmd.guests, -1 = the bus */
    uint32_t v;
} action;

typedef struct cmd {
    action acts[PX_CANFAULT_MAX_ARGS];
    uint32_t n_acts;
    struct {
        const char *name;
        uint32_t eps[PX_CANFAULT_GUEST_EPS];
        uint32_t n;
    } guests[MAX_GUESTS];
    uint32_t n_guests;
} cmd;

/* em: argument N "TEXT": what; expected forms [(hint: ...)] */
static px_err arg_fail(px_errmsg *em, px_err code, int i, const char *arg, const char *what,
                       const char *expected, const char *hint)
{
    char q[80];
    out o;
    out_init(&o, q, sizeof(q));
    out_plain(&o, arg, 48);
    return px_errmsg_set(em, code, "argument %d \"%s\": %s; expected %s%s%s%s", i + 1, q, what,
                         expected, hint ? " (hint: " : "", hint ? hint : "", hint ? ")" : "");
}

/* "5%", "0.0001%", "2500ppm" into parts per million. */
static bool parse_prob(const char *s, uint32_t *ppm)
{
    uint64_t whole = 0, frac = 0;
    size_t i = 0, digits = 0, decimals = 0;
    for (; s[i] >= '0' && s[i] <= '9'; i++, digits++)
        if ((whole = whole * 10 + (uint64_t)(s[i] - '0')) > PX_CANFAULT_PPM)
            return false;
    if (!digits)
        return false;
    if (strcmp(s + i, "ppm") == 0) {
        *ppm = (uint32_t)whole;
        return true;
    }
    if (s[i] == '.') {
        for (i++; s[i] >= '0' && s[i] <= '9'; i++)
            if (++decimals > 4)
                return false;
            else
                frac = frac * 10 + (uint64_t)(s[i] - '0');
        if (!decimals)
            return false;
    }
    if (s[i] != '%' || s[i + 1])
        return false;
    for (; decimals < 4; decimals++)
        frac *= 10;
    uint64_t v = whole * 10000 + frac;
    if (v > PX_CANFAULT_PPM)
        return false;
    *ppm = (uint32_t)v;
    return true;
}

static px_err parse_cmd(int argc, const char *const *argv, px_canfault_resolve_cb resolve,
                        void *rud, cmd *c, px_errmsg *em)
{
    memset(c, 0, sizeof(*c));
    if (argc <= 0 || !argv)
        return px_errmsg_set(em, PX_E_CONFIG, "no fault given; expected one or more of %s", usage);
    if ((unsigned)argc > PX_CANFAULT_MAX_ARGS)
        return px_errmsg_set(em, PX_E_TOOBIG, "%d arguments; expected at most %u", argc,
                             PX_CANFAULT_MAX_ARGS);
    int guest = -1;
    for (int i = 0; i < argc; i++) {
        const int oi = i;
        const char *a = argv[i] ? argv[i] : "";
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        unsigned k = 0;
        while (k < A_COUNT && !(strlen(opts[k].name) == nlen && memcmp(opts[k].name, a, nlen) == 0))
            k++;
        if (k == A_COUNT) {
            char name[40] = "", hint[64] = "";
            snprintf(name, sizeof(name), "%.*s", (int)(nlen < 39 ? nlen : 39), a);
            for (unsigned j = 0; j < A_COUNT && a[0] == '-'; j++)
                if (px_edit_distance(name, opts[j].name) <= 2) {
                    snprintf(hint, sizeof(hint), "did you mean %s?", opts[j].name);
                    break;
                }
            return arg_fail(em, PX_E_CONFIG, i, a, a[0] == '-' ? "unknown option" : "not an option",
                            usage, hint[0] ? hint : NULL);
        }
        const struct opt *o = &opts[k];
        const char *val = NULL;
        int vi = i;
        if (o->value) {
            if (eq) {
                val = eq + 1;
            } else if (i + 1 < argc && argv[i + 1]) {
                val = argv[++i];
                vi = i;
            } else {
                char what[48];
                snprintf(what, sizeof(what), "%s needs a value", o->name);
                return arg_fail(em, PX_E_CONFIG, i, a, what,
                                k == A_GUEST   ? "--guest NAME"
                                : k == A_STATE ? "--state active|passive|bus-off"
                                               : pct_forms,
                                NULL);
            }
        } else if (eq) {
            char what[48];
            snprintf(what, sizeof(what), "%s takes no value", o->name);
            return arg_fail(em, PX_E_CONFIG, i, a, what, o->name, NULL);
        }
        if (o->needs_guest && guest < 0) {
            char what[64];
            snprintf(what, sizeof(what), "%s applies to one guest", o->name);
            return arg_fail(em, PX_E_CONFIG, oi, a, what, "--guest NAME before it",
                            k == A_PARTITION ? "--down cuts the whole bus" : NULL);
        }
        const char *vtext = eq ? a : val; /* what to quote: the whole "--opt=VALUE" */
        action *act = &c->acts[c->n_acts];
        *act = (action){(act_kind)k, o->scoped ? guest : -1, 0};
        switch (k) {
        case A_DROP:
        case A_CORRUPT:
            if (!parse_prob(val, &act->v))
                return arg_fail(
                    em, PX_E_CONFIG, vi, vtext, "not a probability", pct_forms,
                    strchr(val, 'e') || strchr(val, 'E') ? "no exponents: write 0.1% or 1000ppm"
                    : !strchr(val, '%') && !strstr(val, "ppm") ? "add % (or ppm) to the number"
                                                               : NULL);
            break;
        case A_STATE:
            if (strcmp(val, "active") == 0)
                act->v = PX_CANFAULT_ACTIVE;
            else if (strcmp(val, "passive") == 0)
                act->v = PX_CANFAULT_PASSIVE;
            else if (strcmp(val, "bus-off") == 0 || strcmp(val, "busoff") == 0)
                act->v = PX_CANFAULT_BUSOFF;
            else
                return arg_fail(em, PX_E_CONFIG, vi, vtext, "not a controller state",
                                "active, passive or bus-off", NULL);
            break;
        case A_GUEST: {
            if (!resolve)
                return arg_fail(em, PX_E_UNSUPP, vi, vtext, "guests cannot be named here",
                                "bus-wide options only", NULL);
            uint32_t g = c->n_guests++;
            c->guests[g].name = val;
            px_err err =
                val[0] ? resolve(rud, val, c->guests[g].eps, PX_CANFAULT_GUEST_EPS, &c->guests[g].n)
                       : PX_E_NOTFOUND;
            if (err == PX_E_NOTFOUND || (!err && c->guests[g].n == 0))
                return arg_fail(em, PX_E_NOTFOUND, vi, vtext, "no such guest on this bus",
                                "the name of a guest attached to the bus", NULL);
            if (err)
                return arg_fail(em, err, vi, vtext, "cannot resolve the guest", "a guest name",
                                px_strerror(err));
            if (c->guests[g].n > PX_CANFAULT_GUEST_EPS)
                return arg_fail(em, PX_E_TOOBIG, vi, vtext, "the guest has too many endpoints",
                                "at most 8 CAN controllers per guest", NULL);
            for (uint32_t j = 0; j < c->guests[g].n; j++)
                if (c->guests[g].eps[j] == 0)
                    return arg_fail(em, PX_E_INVAL, vi, vtext, "the resolver gave endpoint 0",
                                    "endpoint numbers from px_can_guest_ep", NULL);
            guest = (int)g;
            continue; /* not an action of its own */
        }
        default:
            break;
        }
        c->n_acts++;
    }
    return PX_OK;
}

static void sum_scope(out *o, const cmd *c, int guest)
{
    if (guest < 0) {
        outf(o, "bus");
        return;
    }
    outf(o, "guest ");
    out_plain(o, c->guests[guest].name, 48);
}

/* Applies c to f. Fails only with PX_E_TOOBIG (member table full), which
 * the dry run in px_canfault_command finds before the real run: both start
 * from the same state and PRNG, so they do the same things. */
static px_err apply_cmd(px_canfault *f, const cmd *c, out *sum)
{
    px_err err = PX_OK;
    for (uint32_t i = 0; i < c->n_acts && !err; i++) {
        const action *a = &c->acts[i];
        const uint32_t *eps = a->guest >= 0 ? c->guests[a->guest].eps : NULL;
        uint32_t n = a->guest >= 0 ? c->guests[a->guest].n : 0;
        if (i)
            outf(sum, "; ");
        switch (a->k) {
        case A_DROP:
        case A_CORRUPT:
            sum_scope(sum, c, a->guest);
            outf(sum, a->k == A_DROP ? " drop " : " corrupt ");
            out_pct(sum, a->v);
            if (a->guest < 0)
                err = a->k == A_DROP ? px_canfault_set_bus(f, a->v, f->corrupt_ppm)
                                     : px_canfault_set_bus(f, f->drop_ppm, a->v);
            for (uint32_t j = 0; j < n && !err; j++)
                err = a->k == A_DROP ? px_canfault_set_member_drop(f, eps[j], a->v)
                                     : px_canfault_set_member_corrupt(f, eps[j], a->v);
            break;
        case A_STATE:
            sum_scope(sum, c, a->guest);
            outf(sum, " %s", px_canfault_state_str((px_canfault_state)a->v));
            for (uint32_t j = 0; j < n && !err; j++)
                err = state_notify(f, eps[j], (px_canfault_state)a->v);
            break;
        case A_PARTITION:
            sum_scope(sum, c, a->guest);
            outf(sum, " partitioned");
            for (uint32_t j = 0; j < n && !err; j++)
                err = px_canfault_set_partition(f, eps[j], true);
            break;
        case A_HEAL:
            if (a->guest < 0) {
                outf(sum, "every member healed");
                for (uint32_t j = f->n_members; j-- > 0;)
                    px_canfault_set_partition(f, f->members[j].ep, false);
            } else {
                sum_scope(sum, c, a->guest);
                outf(sum, " healed");
                for (uint32_t j = 0; j < n; j++)
                    px_canfault_set_partition(f, eps[j], false);
            }
            break;
        case A_DOWN:
        case A_UP:
            outf(sum, "bus %s", a->k == A_DOWN ? "down" : "up");
            f->down = a->k == A_DOWN;
            break;
        case A_ERROR: {
            px_can_frame ef;
            px_canfault_error_frame(f, &ef);
            notify(f, PX_CANFAULT_ALL, &ef);
            outf(sum, "error frame %08X#", (unsigned)ef.can_id);
            for (unsigned j = 0; j < ef.len; j++)
                outf(sum, "%02X", ef.data[j]);
            outf(sum, " sent");
            break;
        }
        case A_CLEAR:
            outf(sum, "cleared");
            px_canfault_clear(f);
            break;
        default:
            break;
        }
    }
    return err;
}

static void notify_nothing(void *ud, uint32_t ep, const px_can_frame *err)
{
    (void)ud, (void)ep, (void)err;
}

px_err px_canfault_command(px_canfault *f, int argc, const char *const *argv,
                           px_canfault_resolve_cb resolve, void *rud, char *summary, size_t cap,
                           px_errmsg *em)
{
    cmd c;
    px_err err = parse_cmd(argc, argv, resolve, rud, &c, em);
    if (err)
        return err;
    /* Dry run on a copy: the member table may fill up halfway, and a
     * command must change all or nothing. */
    px_canfault dry = *f;
    dry.notify = notify_nothing;
    char scratch[PX_CANFAULT_SUMMARY_MAX];
    out o;
    out_init(&o, scratch, sizeof(scratch));
    if (apply_cmd(&dry, &c, &o) != PX_OK)
        return px_errmsg_set(em, PX_E_TOOBIG,
                             "the command would give more than %u endpoints a fault state; "
                             "expected fewer guests at a time (hint: --clear, or --heal and "
                             "--state active on others first)",
                             PX_CANFAULT_MAX_MEMBERS);
    out_init(&o, summary ? summary : scratch, summary ? cap : sizeof(scratch));
    err = apply_cmd(f, &c, &o);
    if (o.cut && o.cap >= 4) {
        size_t at = o.len + 4 < o.cap ? o.len : o.cap - 4;
        memcpy(o.buf + at, "...", 4);
    }
    return err;
}
