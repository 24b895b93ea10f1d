/* plexus — one emulated CXL switch: VCSs, vPPB bindings, pools (MLDs) with
 * their LD allocations, and the FM API commands over them (switch.h). */
#include "fabric/cxl-switch/switch.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NO_POOL UINT32_MAX

typedef struct vppb_state {
    bool bound;
    uint16_t pool;
    uint16_t ld;
} vppb_state;

typedef struct pool_state {
    char name[PX_CXLSW_NAME_MAX];
    uint32_t n_lds;
    uint64_t ld_size;
    uint64_t cap_units;    /* capacity in PX_CXLSW_GRANULE units */
    px_fm_ld_alloc *alloc; /* [n_lds], in PX_CXLSW_GRANULE units */
    uint32_t *users;       /* [n_lds]: vPPBs bound to the LD */
} pool_state;

struct px_cxlsw {
    char name[PX_CXLSW_NAME_MAX];
    uint32_t n_vcs;
    uint32_t vppbs;
    uint32_t n_pools;
    uint64_t gen;
    vppb_state *vppb; /* [n_vcs * vppbs], VCS-major */
    pool_state *pools;
};

/* Where a command writes its response payload. */
typedef struct out_buf {
    uint8_t *p;
    size_t cap;
    size_t len;
} out_buf;

static px_cci_rc refuse(uint16_t *vs, px_cxlsw_vs why)
{
    if (vs)
        *vs = (uint16_t)why;
    return PX_CCI_INVALID_INPUT;
}

static bool name_ok(const char *s)
{
    return s && s[0] && strlen(s) < PX_CXLSW_NAME_MAX;
}

/* ---- state ------------------------------------------------------------------ */

static px_cci_rc bind_core(px_cxlsw *sw, uint32_t vcs, uint32_t vppb, uint32_t pool, uint32_t ld,
                           uint16_t *vs)
{
    if (vcs >= sw->n_vcs)
        return refuse(vs, PX_CXLSW_VS_VCS);
    if (vppb >= sw->vppbs)
        return refuse(vs, PX_CXLSW_VS_VPPB);
    if (pool >= sw->n_pools)
        return refuse(vs, PX_CXLSW_VS_PORT);
    pool_state *p = &sw->pools[pool];
    if (ld >= p->n_lds)
        return refuse(vs, PX_CXLSW_VS_LD);
    vppb_state *v = &sw->vppb[vcs * sw->vppbs + vppb];
    if (v->bound)
        return refuse(vs, PX_CXLSW_VS_VPPB_BOUND);
    if (p->alloc[ld].range1 == 0 && p->alloc[ld].range2 == 0)
        return refuse(vs, PX_CXLSW_VS_LD_EMPTY);
    v->bound = true;
    v->pool = (uint16_t)pool;
    v->ld = (uint16_t)ld;
    p->users[ld]++;
    sw->gen++;
    return PX_CCI_SUCCESS;
}

static px_cci_rc unbind_core(px_cxlsw *sw, uint32_t vcs, uint32_t vppb, uint16_t *vs)
{
    if (vcs >= sw->n_vcs)
        return refuse(vs, PX_CXLSW_VS_VCS);
    if (vppb >= sw->vppbs)
        return refuse(vs, PX_CXLSW_VS_VPPB);
    vppb_state *v = &sw->vppb[vcs * sw->vppbs + vppb];
    if (!v->bound)
        return refuse(vs, PX_CXLSW_VS_VPPB_UNBOUND);
    sw->pools[v->pool].users[v->ld]--;
    v->bound = false;
    v->pool = 0;
    v->ld = 0;
    sw->gen++;
    return PX_CCI_SUCCESS;
}

/* All checks first, then the change: a refused request changes nothing. */
static px_cci_rc alloc_set_core(px_cxlsw *sw, uint32_t pool, uint32_t start, uint32_t n,
                                const px_fm_ld_alloc *allocs, uint16_t *vs)
{
    if (pool >= sw->n_pools)
        return refuse(vs, PX_CXLSW_VS_PORT);
    if (n == 0)
        return refuse(vs, PX_CXLSW_VS_FIELD);
    pool_state *p = &sw->pools[pool];
    if (start >= p->n_lds || n > p->n_lds - start)
        return refuse(vs, PX_CXLSW_VS_LD);
    for (uint32_t i = 0; i < n; i++) {
        const px_fm_ld_alloc *now = &p->alloc[start + i];
        if (p->users[start + i] &&
            (now->range1 != allocs[i].range1 || now->range2 != allocs[i].range2))
            return refuse(vs, PX_CXLSW_VS_LD_BOUND);
    }
    /* Compared against what is left, so a peer's 2^64-1 cannot wrap. */
    uint64_t total = 0, cap = p->cap_units;
    for (uint32_t ld = 0; ld < p->n_lds; ld++) {
        const px_fm_ld_alloc *a =
            ld >= start && ld - start < n ? &allocs[ld - start] : &p->alloc[ld];
        if (a->range1 > cap || a->range2 > cap - a->range1)
            return refuse(vs, PX_CXLSW_VS_CAPACITY);
        uint64_t units = a->range1 + a->range2;
        if (units > cap - total)
            return refuse(vs, PX_CXLSW_VS_CAPACITY);
        total += units;
    }
    bool changed = false;
    for (uint32_t i = 0; i < n; i++) {
        px_fm_ld_alloc *now = &p->alloc[start + i];
        changed |= now->range1 != allocs[i].range1 || now->range2 != allocs[i].range2;
        *now = allocs[i];
    }
    if (changed)
        sw->gen++;
    return PX_CCI_SUCCESS;
}

/* ---- lifecycle ----------------------------------------------------------------- */

static px_err check_cfg(const px_cxlsw_cfg *cfg, uint32_t vppbs, px_errmsg *em)
{
    if (!name_ok(cfg->name))
        return px_errmsg_set(em, PX_E_CONFIG, "cxl switch: a name of 1..%u characters is needed",
                             PX_CXLSW_NAME_MAX - 1);
    if (cfg->n_ports < 1 || cfg->n_ports > PX_CXLSW_MAX_PHYS_PORTS)
        return px_errmsg_set(em, PX_E_CONFIG, "cxl switch %s: %u ports, expected 1..%u", cfg->name,
                             cfg->n_ports, PX_CXLSW_MAX_PHYS_PORTS);
    if (vppbs > PX_CXLSW_MAX_VPPBS)
        return px_errmsg_set(em, PX_E_CONFIG, "cxl switch %s: %u vPPBs per VCS, expected 1..%u",
                             cfg->name, vppbs, PX_CXLSW_MAX_VPPBS);
    if (cfg->n_pools > PX_CXLSW_MAX_PHYS_PORTS - cfg->n_ports)
        return px_errmsg_set(em, PX_E_CONFIG,
                             "cxl switch %s: %u ports and %u pools, at most %u physical ports",
                             cfg->name, cfg->n_ports, cfg->n_pools, PX_CXLSW_MAX_PHYS_PORTS);
    if (cfg->n_pools && !cfg->pools)
        return px_errmsg_set(em, PX_E_INVAL, "cxl switch %s: %u pools but no pool array", cfg->name,
                             cfg->n_pools);
    if (cfg->n_bindings && !cfg->bindings)
        return px_errmsg_set(em, PX_E_INVAL, "cxl switch %s: %u bindings but no binding array",
                             cfg->name, cfg->n_bindings);
    for (uint32_t i = 0; i < cfg->n_pools; i++) {
        const px_cxlsw_pool_cfg *pc = &cfg->pools[i];
        if (!name_ok(pc->name))
            return px_errmsg_set(em, PX_E_CONFIG,
                                 "cxl switch %s: pool %u needs a name of 1..%u characters",
                                 cfg->name, i, PX_CXLSW_NAME_MAX - 1);
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(cfg->pools[j].name, pc->name) == 0)
                return px_errmsg_set(em, PX_E_CONFIG, "cxl switch %s: two pools called %s",
                                     cfg->name, pc->name);
        if (pc->n_lds < 1 || pc->n_lds > PX_CXLSW_MAX_LDS)
            return px_errmsg_set(em, PX_E_CONFIG, "cxl pool %s: %u LDs, expected 1..%u", pc->name,
                                 pc->n_lds, PX_CXLSW_MAX_LDS);
        if (pc->ld_size == 0 || pc->ld_size % PX_CXLSW_GRANULE ||
            pc->ld_size > PX_CXLSW_MAX_LD_SIZE)
            return px_errmsg_set(em, PX_E_CONFIG,
                                 "cxl pool %s: ld_size %llu is not a multiple of 256 MiB "
                                 "between 256 MiB and 64 TiB",
                                 pc->name, (unsigned long long)pc->ld_size);
    }
    return PX_OK;
}

px_err px_cxlsw_new(const px_cxlsw_cfg *cfg, px_cxlsw **out, px_errmsg *em)
{
    if (!out)
        return px_errmsg_set(em, PX_E_INVAL, "cxl switch: no place for the result");
    *out = NULL;
    if (!cfg)
        return px_errmsg_set(em, PX_E_INVAL, "cxl switch: no configuration");
    uint32_t vppbs = cfg->vppbs ? cfg->vppbs : PX_CXLSW_VPPBS;
    px_err err = check_cfg(cfg, vppbs, em);
    if (err != PX_OK)
        return err;

    px_cxlsw *sw = calloc(1, sizeof(*sw));
    if (!sw)
        return px_errmsg_set(em, PX_E_NOMEM, "cxl switch %s: out of memory", cfg->name);
    snprintf(sw->name, sizeof(sw->name), "%s", cfg->name);
    sw->n_vcs = cfg->n_ports;
    sw->vppbs = vppbs;
    sw->vppb = calloc((size_t)sw->n_vcs * vppbs, sizeof(*sw->vppb));
    sw->pools = calloc(cfg->n_pools ? cfg->n_pools : 1, sizeof(*sw->pools));
    if (!sw->vppb || !sw->pools)
        goto nomem;
    for (uint32_t i = 0; i < cfg->n_pools; i++) {
        const px_cxlsw_pool_cfg *pc = &cfg->pools[i];
        pool_state *p = &sw->pools[i];
        sw->n_pools = i + 1; /* what px_cxlsw_free has to look at */
        snprintf(p->name, sizeof(p->name), "%s", pc->name);
        p->n_lds = pc->n_lds;
        p->ld_size = pc->ld_size;
        p->cap_units = (uint64_t)pc->n_lds * (pc->ld_size / PX_CXLSW_GRANULE);
        p->alloc = calloc(pc->n_lds, sizeof(*p->alloc));
        p->users = calloc(pc->n_lds, sizeof(*p->users));
        if (!p->alloc || !p->users)
            goto nomem;
        for (uint32_t ld = 0; ld < pc->n_lds; ld++)
            p->alloc[ld].range1 = pc->ld_size / PX_CXLSW_GRANULE;
    }
    for (uint32_t i = 0; i < cfg->n_bindings; i++) {
        const px_cxlsw_binding *b = &cfg->bindings[i];
        uint16_t vs = 0;
        if (bind_core(sw, b->vcs, b->vppb, b->pool, b->ld, &vs) != PX_CCI_SUCCESS) {
            err =
                px_errmsg_set(em, PX_E_CONFIG,
                              "cxl switch %s: initial binding %u (VCS %u vPPB %u to pool %u "
                              "LD %u): %s",
                              cfg->name, i, b->vcs, b->vppb, b->pool, b->ld, px_cxlsw_vs_name(vs));
            px_cxlsw_free(sw);
            return err;
        }
    }
    sw->gen = 0;
    *out = sw;
    return PX_OK;

nomem:
    px_cxlsw_free(sw);
    return px_errmsg_set(em, PX_E_NOMEM, "cxl switch %s: out of memory", cfg->name);
}

void px_cxlsw_free(px_cxlsw *sw)
{
    if (!sw)
        return;
    for (uint32_t i = 0; i < sw->n_pools; i++) {
        free(sw->pools[i].users);
        free(sw->pools[i].alloc);
    }
    free(sw->pools);
    free(sw->vppb);
    free(sw);
}

/* ---- switch CCI commands ----------------------------------------------------- */

/* Pool index of a physical port, NO_POOL for an upstream or unknown port. */
static uint32_t port_pool(const px_cxlsw *sw, uint32_t port)
{
    if (port < sw->n_vcs || port - sw->n_vcs >= sw->n_pools)
        return NO_POOL;
    return port - sw->n_vcs;
}

static uint32_t n_phys(const px_cxlsw *sw)
{
    return sw->n_vcs + sw->n_pools;
}

static uint32_t bound_vppbs(const px_cxlsw *sw)
{
    uint32_t n = 0;
    for (size_t i = 0; i < (size_t)sw->n_vcs * sw->vppbs; i++)
        n += sw->vppb[i].bound;
    return n;
}

/* An encoder's PX_E_TOOBIG is the response limit; nothing else can fail. */
static px_cci_rc encoded(px_err err, uint16_t *vs)
{
    if (err == PX_OK)
        return PX_CCI_SUCCESS;
    if (err == PX_E_TOOBIG)
        return refuse(vs, PX_CXLSW_VS_RSP_TOO_BIG);
    return PX_CCI_INTERNAL_ERROR;
}

static px_cci_rc cmd_identify(px_cxlsw *sw, size_t plen, out_buf *o, uint16_t *vs)
{
    if (plen != 0)
        return PX_CCI_INVALID_PAYLOAD_LENGTH;
    px_fm_identify_sw v = {.ingress_port = PX_CXLSW_INGRESS_PORT,
                           .n_phys_ports = (uint8_t)n_phys(sw),
                           .n_vcs = (uint8_t)sw->n_vcs,
                           .total_vppbs = (uint16_t)(sw->n_vcs * sw->vppbs),
                           .bound_vppbs = (uint16_t)bound_vppbs(sw),
                           .hdm_decoders = PX_CXLSW_HDM_DECODERS};
    for (uint32_t i = 0; i < n_phys(sw); i++)
        v.active_ports[i / 8] |= (uint8_t)(1u << (i % 8));
    for (uint32_t i = 0; i < sw->n_vcs; i++)
        v.active_vcs[i / 8] |= (uint8_t)(1u << (i % 8));
    return encoded(px_fm_identify_sw_encode(&v, o->p, o->cap, &o->len), vs);
}

/* Every port is up (L0) at x16, 32 GT/s, CXL 2.0 (68B flit, VH): the
 * links are emulated, these are the values of a healthy switch. */
static void port_info(const px_cxlsw *sw, uint8_t id, px_fm_port_info *b)
{
    memset(b, 0, sizeof(*b));
    b->port_id = id;
    uint32_t pool = port_pool(sw, id);
    if (id >= n_phys(sw)) {
        b->config_state = PX_FM_PORT_INVALID;
        return;
    }
    b->cxl_modes = PX_FM_CXL_MODE_68B_VH;
    b->max_link_width = 0x10;
    b->link_width = 0x10;
    b->link_speeds = 0x1f;
    b->max_link_speed = 5;
    b->link_speed = 5;
    b->ltssm = PX_FM_LTSSM_L0;
    if (pool == NO_POOL) {
        b->config_state = PX_FM_PORT_USP;
        return;
    }
    uint32_t n_lds = sw->pools[pool].n_lds;
    b->config_state = PX_FM_PORT_DSP;
    b->dev_mode = PX_FM_DEV_MODE_68B_VH;
    b->dev_type = PX_FM_DEV_TYPE3_MLD;
    b->ld_count = (uint8_t)(n_lds > UINT8_MAX ? UINT8_MAX : n_lds);
}

static px_cci_rc cmd_port_state(px_cxlsw *sw, const uint8_t *pl, size_t plen, out_buf *o,
                                uint16_t *vs)
{
    px_fm_port_state_req req;
    if (px_fm_port_state_req_decode(pl, plen, &req) != PX_OK)
        return PX_CCI_INVALID_PAYLOAD_LENGTH;
    if (req.n_ports == 0)
        return refuse(vs, PX_CXLSW_VS_FIELD);
    px_fm_port_info blocks[PX_FM_LIST_MAX];
    for (size_t i = 0; i < req.n_ports; i++)
        port_info(sw, req.ports[i], &blocks[i]);
    return encoded(px_fm_port_state_rsp_encode(blocks, req.n_ports, o->p, o->cap, &o->len), vs);
}

static void vcs_block(const px_cxlsw *sw, uint8_t id, uint8_t start, uint8_t limit,
                      px_fm_vcs_block *b)
{
    b->vcs_id = id;
    b->n_entries = 0;
    if (id >= sw->n_vcs) {
        b->state = PX_FM_VCS_INVALID;
        b->usp_id = 0;
        b->n_vppbs = 0;
        return;
    }
    b->state = PX_FM_VCS_ENABLED;
    b->usp_id = id; /* VCS n is upstream port n */
    b->n_vppbs = (uint8_t)sw->vppbs;
    for (uint32_t v = start; v < sw->vppbs && b->n_entries < limit; v++) {
        const vppb_state *s = &sw->vppb[id * sw->vppbs + v];
        px_fm_vppb_info *e = &b->entries[b->n_entries++];
        if (s->bound) {
            e->status = PX_FM_VPPB_BOUND_LD;
            e->port = (uint8_t)(sw->n_vcs + s->pool);
            e->ld = (uint8_t)s->ld;
        } else {
            e->status = PX_FM_VPPB_UNBOUND;
            e->port = 0xff;
            e->ld = PX_FM_NO_LD_ID;
        }
    }
}

static px_cci_rc cmd_vcs_info(px_cxlsw *sw, const uint8_t *pl, size_t plen, out_buf *o,
                              uint16_t *vs)
{
    px_fm_vcs_info_req req;
    if (px_fm_vcs_info_req_decode(pl, plen, &req) != PX_OK)
        return PX_CCI_INVALID_PAYLOAD_LENGTH;
    if (req.n_vcs == 0 || req.vppb_limit == 0)
        return refuse(vs, PX_CXLSW_VS_FIELD);
    size_t w;
    px_err err = px_fm_vcs_info_rsp_begin(req.n_vcs, o->p, o->cap, &o->len);
    px_fm_vcs_block b;
    for (size_t i = 0; err == PX_OK && i < req.n_vcs; i++) {
        vcs_block(sw, req.vcs[i], req.start_vppb, req.vppb_limit, &b);
        err = px_fm_vcs_block_encode(&b, o->p + o->len, o->cap - o->len, &w);
        o->len += w;
    }
    return encoded(err, vs);
}

static px_cci_rc cmd_bind(px_cxlsw *sw, const uint8_t *pl, size_t plen, uint16_t *vs)
{
    px_fm_bind_req req;
    if (px_fm_bind_req_decode(pl, plen, &req) != PX_OK)
        return PX_CCI_INVALID_PAYLOAD_LENGTH;
    /* LD ID FFFFh (not an MLD) and IDs past the pool fail as "no such LD". */
    return bind_core(sw, req.vcs, req.vppb, port_pool(sw, req.port), req.ld, vs);
}

static px_cci_rc cmd_unbind(px_cxlsw *sw, const uint8_t *pl, size_t plen, uint16_t *vs)
{
    px_fm_unbind_req req;
    if (px_fm_unbind_req_decode(pl, plen, &req) != PX_OK)
        return PX_CCI_INVALID_PAYLOAD_LENGTH;
    if (req.option > PX_FM_UNBIND_SURPRISE)
        return refuse(vs, PX_CXLSW_VS_FIELD);
    return unbind_core(sw, req.vcs, req.vppb, vs);
}

/* ---- MLD (FM-owned LD) commands -------------------------------------------------- */

static px_cci_rc cmd_ld_info(px_cxlsw *sw, uint32_t pool, size_t plen, out_buf *o, uint16_t *vs)
{
    if (plen != 0)
        return PX_CCI_INVALID_PAYLOAD_LENGTH;
    const pool_state *p = &sw->pools[pool];
    px_fm_ld_info v = {
        .memory_size = p->n_lds * p->ld_size, .ld_count = (uint16_t)p->n_lds, .qos_caps = 0};
    return encoded(px_fm_ld_info_encode(&v, o->p, o->cap, &o->len), vs);
}

static px_cci_rc cmd_get_alloc(px_cxlsw *sw, uint32_t pool, const uint8_t *pl, size_t plen,
                               out_buf *o, uint16_t *vs)
{
    px_fm_get_ld_alloc_req req;
    if (px_fm_get_ld_alloc_req_decode(pl, plen, &req) != PX_OK)
        return PX_CCI_INVALID_PAYLOAD_LENGTH;
    const pool_state *p = &sw->pools[pool];
    if (req.limit == 0)
        return refuse(vs, PX_CXLSW_VS_FIELD);
    if (req.start_ld >= p->n_lds)
        return refuse(vs, PX_CXLSW_VS_LD);
    px_fm_get_ld_alloc_rsp rsp = {
        .n_lds = (uint8_t)(p->n_lds > UINT8_MAX ? UINT8_MAX : p->n_lds),
        .granularity = PX_FM_GRAN_256M,
        .start_ld = req.start_ld,
    };
    uint32_t left = p->n_lds - req.start_ld;
    rsp.n = (uint8_t)(left < req.limit ? left : req.limit);
    memcpy(rsp.ld, p->alloc + req.start_ld, rsp.n * sizeof(rsp.ld[0]));
    return encoded(px_fm_get_ld_alloc_rsp_encode(&rsp, o->p, o->cap, &o->len), vs);
}

static px_cci_rc cmd_set_alloc(px_cxlsw *sw, uint32_t pool, const uint8_t *pl, size_t plen,
                               out_buf *o, uint16_t *vs)
{
    px_fm_set_ld_alloc req;
    if (px_fm_set_ld_alloc_decode(pl, plen, &req) != PX_OK)
        return PX_CCI_INVALID_PAYLOAD_LENGTH;
    /* The answer must fit before anything changes. */
    if (4 + (size_t)req.n * PX_FM_LD_ALLOC_LEN > o->cap)
        return refuse(vs, PX_CXLSW_VS_RSP_TOO_BIG);
    px_cci_rc rc = alloc_set_core(sw, pool, req.start_ld, req.n, req.ld, vs);
    if (rc != PX_CCI_SUCCESS)
        return rc;
    memcpy(req.ld, sw->pools[pool].alloc + req.start_ld, req.n * sizeof(req.ld[0]));
    return encoded(px_fm_set_ld_alloc_encode(&req, o->p, o->cap, &o->len), vs);
}

/* ---- dispatch ---------------------------------------------------------------------- */

static px_cci_rc handle(px_cxlsw *sw, const uint8_t *req, size_t len, uint16_t port, uint8_t *rsp,
                        size_t cap, size_t *rsp_len);

static px_cci_rc cmd_tunnel(px_cxlsw *sw, const uint8_t *pl, size_t plen, out_buf *o, uint16_t *vs)
{
    px_fm_tunnel t;
    if (px_fm_tunnel_req_decode(pl, plen, &t) != PX_OK)
        return PX_CCI_INVALID_PAYLOAD_LENGTH;
    if (t.target_type != PX_FM_TUNNEL_PORT_OR_LD)
        return refuse(vs, PX_CXLSW_VS_FIELD);
    if (port_pool(sw, t.target) == NO_POOL)
        return refuse(vs, PX_CXLSW_VS_PORT);
    if (o->cap < PX_FM_TUNNEL_HDR_LEN + PX_CCI_HDR_LEN)
        return refuse(vs, PX_CXLSW_VS_RSP_TOO_BIG);
    size_t inner;
    handle(sw, t.msg, t.msg_len, t.target, o->p + PX_FM_TUNNEL_HDR_LEN,
           o->cap - PX_FM_TUNNEL_HDR_LEN, &inner);
    /* The inner answer is in place: only the tunnel header is left. */
    o->p[0] = (uint8_t)inner;
    o->p[1] = (uint8_t)(inner >> 8);
    o->p[2] = o->p[3] = 0;
    o->len = PX_FM_TUNNEL_HDR_LEN + inner;
    return PX_CCI_SUCCESS;
}

static px_cci_rc dispatch(px_cxlsw *sw, uint16_t port, uint16_t opcode, const uint8_t *pl,
                          size_t plen, out_buf *o, uint16_t *vs)
{
    bool mld_cmd = (opcode >> 8) == 0x54;
    if (port == PX_CXLSW_PORT_SWITCH) {
        switch (opcode) {
        case PX_FM_IDENTIFY_SWITCH:
            return cmd_identify(sw, plen, o, vs);
        case PX_FM_GET_PORT_STATE:
            return cmd_port_state(sw, pl, plen, o, vs);
        case PX_FM_GET_VCS_INFO:
            return cmd_vcs_info(sw, pl, plen, o, vs);
        case PX_FM_BIND_VPPB:
            return cmd_bind(sw, pl, plen, vs);
        case PX_FM_UNBIND_VPPB:
            return cmd_unbind(sw, pl, plen, vs);
        case PX_FM_TUNNEL:
            return cmd_tunnel(sw, pl, plen, o, vs);
        default:
            if (mld_cmd && vs)
                *vs = PX_CXLSW_VS_TARGET;
            return PX_CCI_UNSUPPORTED;
        }
    }
    uint32_t pool = port_pool(sw, port);
    if (pool == NO_POOL)
        return refuse(vs, PX_CXLSW_VS_PORT);
    switch (opcode) {
    case PX_FM_GET_LD_INFO:
        return cmd_ld_info(sw, pool, plen, o, vs);
    case PX_FM_GET_LD_ALLOC:
        return cmd_get_alloc(sw, pool, pl, plen, o, vs);
    case PX_FM_SET_LD_ALLOC:
        return cmd_set_alloc(sw, pool, pl, plen, o, vs);
    default:
        if (!mld_cmd && (opcode >> 8) >= 0x51 && (opcode >> 8) <= 0x53 && vs)
            *vs = PX_CXLSW_VS_TARGET;
        return PX_CCI_UNSUPPORTED;
    }
}

/* cap >= PX_CCI_HDR_LEN. Always writes a whole response. */
static px_cci_rc handle(px_cxlsw *sw, const uint8_t *req, size_t len, uint16_t port, uint8_t *rsp,
                        size_t cap, size_t *rsp_len)
{
    px_cci_hdr h = {0};
    uint16_t vs = PX_CXLSW_VS_NONE;
    out_buf o = {.p = rsp + PX_CCI_HDR_LEN, .cap = cap - PX_CCI_HDR_LEN, .len = 0};
    px_cci_rc rc;
    px_err err = px_cci_decode(req, len, &h, NULL);
    if (len < PX_CCI_HDR_LEN) {
        h.tag = len > 1 ? req[1] : 0;
        h.opcode = len > 4 ? (uint16_t)(req[3] | req[4] << 8) : 0;
        rc = PX_CCI_INVALID_PAYLOAD_LENGTH;
    } else if (err != PX_OK) {
        rc = PX_CCI_INVALID_PAYLOAD_LENGTH;
    } else if (h.category != PX_CCI_CAT_REQUEST) {
        rc = refuse(&vs, PX_CXLSW_VS_FIELD);
    } else {
        rc = dispatch(sw, port, h.opcode, req + PX_CCI_HDR_LEN, h.payload_len, &o, &vs);
    }
    if (rc != PX_CCI_SUCCESS)
        o.len = 0; /* a failed command carries no payload */
    px_cci_hdr out = {.category = PX_CCI_CAT_RESPONSE,
                      .tag = h.tag,
                      .opcode = h.opcode,
                      .payload_len = (uint32_t)o.len,
                      .rc = (uint16_t)rc,
                      .vendor_status = vs};
    px_cci_hdr_encode(&out, rsp, cap);
    *rsp_len = PX_CCI_HDR_LEN + o.len;
    return rc;
}

px_err px_cxlsw_execute(px_cxlsw *sw, const uint8_t *req, size_t len, uint16_t port, uint8_t *rsp,
                        size_t cap, size_t *rsp_len)
{
    if (!sw || (!req && len) || !rsp || !rsp_len)
        return PX_E_INVAL;
    *rsp_len = 0;
    if (cap < PX_CCI_HDR_LEN)
        return PX_E_TOOBIG;
    handle(sw, req, len, port, rsp, cap < PX_CXLSW_MSG_MAX ? cap : PX_CXLSW_MSG_MAX, rsp_len);
    return PX_OK;
}

/* ---- convenience and queries ------------------------------------------------------- */

px_cci_rc px_cxlsw_bind(px_cxlsw *sw, uint32_t vcs, uint32_t vppb, uint32_t pool, uint32_t ld,
                        uint16_t *vs)
{
    if (vs)
        *vs = PX_CXLSW_VS_NONE;
    return bind_core(sw, vcs, vppb, pool, ld, vs);
}

px_cci_rc px_cxlsw_unbind(px_cxlsw *sw, uint32_t vcs, uint32_t vppb, uint16_t *vs)
{
    if (vs)
        *vs = PX_CXLSW_VS_NONE;
    return unbind_core(sw, vcs, vppb, vs);
}

px_cci_rc px_cxlsw_ld_alloc_set(px_cxlsw *sw, uint32_t pool, uint32_t start, uint32_t n,
                                const px_fm_ld_alloc *allocs, uint16_t *vs)
{
    if (vs)
        *vs = PX_CXLSW_VS_NONE;
    return alloc_set_core(sw, pool, start, n, allocs, vs);
}

size_t px_cxlsw_bindings(const px_cxlsw *sw, px_cxlsw_binding *out, size_t cap)
{
    size_t n = 0;
    for (uint32_t vcs = 0; vcs < sw->n_vcs; vcs++) {
        for (uint32_t v = 0; v < sw->vppbs; v++) {
            const vppb_state *s = &sw->vppb[vcs * sw->vppbs + v];
            if (!s->bound)
                continue;
            if (n < cap)
                out[n] = (px_cxlsw_binding){.vcs = vcs, .vppb = v, .pool = s->pool, .ld = s->ld};
            n++;
        }
    }
    return n;
}

px_cci_rc px_cxlsw_ld_alloc_get(const px_cxlsw *sw, uint32_t pool, uint32_t ld, px_fm_ld_alloc *out)
{
    if (pool >= sw->n_pools || ld >= sw->pools[pool].n_lds)
        return PX_CCI_INVALID_INPUT;
    *out = sw->pools[pool].alloc[ld];
    return PX_CCI_SUCCESS;
}

uint64_t px_cxlsw_ld_bytes(const px_cxlsw *sw, uint32_t pool, uint32_t ld)
{
    px_fm_ld_alloc a;
    if (px_cxlsw_ld_alloc_get(sw, pool, ld, &a) != PX_CCI_SUCCESS)
        return 0;
    /* Set LD Allocations keeps the sum within the pool's capacity. */
    return (a.range1 + a.range2) * PX_CXLSW_GRANULE;
}

uint32_t px_cxlsw_ld_users(const px_cxlsw *sw, uint32_t pool, uint32_t ld)
{
    if (pool >= sw->n_pools || ld >= sw->pools[pool].n_lds)
        return 0;
    return sw->pools[pool].users[ld];
}

const char *px_cxlsw_name(const px_cxlsw *sw)
{
    return sw->name;
}

uint32_t px_cxlsw_n_vcs(const px_cxlsw *sw)
{
    return sw->n_vcs;
}

uint32_t px_cxlsw_vppbs(const px_cxlsw *sw)
{
    return sw->vppbs;
}

uint32_t px_cxlsw_n_pools(const px_cxlsw *sw)
{
    return sw->n_pools;
}

px_err px_cxlsw_pool(const px_cxlsw *sw, uint32_t pool, px_cxlsw_pool_info *out)
{
    if (pool >= sw->n_pools)
        return PX_E_NOTFOUND;
    const pool_state *p = &sw->pools[pool];
    *out = (px_cxlsw_pool_info){
        .name = p->name, .port = sw->n_vcs + pool, .n_lds = p->n_lds, .ld_size = p->ld_size};
    return PX_OK;
}

px_err px_cxlsw_pool_find(const px_cxlsw *sw, const char *name, uint32_t *pool)
{
    for (uint32_t i = 0; name && i < sw->n_pools; i++) {
        if (strcmp(sw->pools[i].name, name) == 0) {
            *pool = i;
            return PX_OK;
        }
    }
    return PX_E_NOTFOUND;
}

uint64_t px_cxlsw_generation(const px_cxlsw *sw)
{
    return sw->gen;
}

const char *px_cxlsw_vs_name(uint16_t vs)
{
    switch (vs) {
    case PX_CXLSW_VS_NONE:
        return "no detail";
    case PX_CXLSW_VS_VCS:
        return "no such VCS";
    case PX_CXLSW_VS_VPPB:
        return "no such vPPB";
    case PX_CXLSW_VS_PORT:
        return "no such pool port";
    case PX_CXLSW_VS_LD:
        return "no such LD";
    case PX_CXLSW_VS_VPPB_BOUND:
        return "vPPB already bound";
    case PX_CXLSW_VS_VPPB_UNBOUND:
        return "vPPB not bound";
    case PX_CXLSW_VS_LD_BOUND:
        return "LD is bound, its allocation cannot change";
    case PX_CXLSW_VS_CAPACITY:
        return "allocations exceed the pool's capacity";
    case PX_CXLSW_VS_LD_EMPTY:
        return "LD has no memory allocated";
    case PX_CXLSW_VS_RSP_TOO_BIG:
        return "response too big, ask for fewer items";
    case PX_CXLSW_VS_FIELD:
        return "field out of range";
    case PX_CXLSW_VS_TARGET:
        return "command not implemented by the addressed CCI";
    default:
        return "unknown status";
    }
}
