/* Placement: see place.h for the contract and the method.
 *
 * Internally guests are contracted into "units" (a colocate group, or a lone
 * guest): a unit moves as one. All search state lives in one px_state so the
 * METIS, greedy and round-robin starts share the same repair and refinement.
 */
#include "place.h"

#include <metis.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Clique expansion is quadratic in net size; past this many units a net is
 * expanded as a ring with chords instead (linear, still connected). */
#define CLIQUE_MAX      32
#define RING_CHORDS     8
#define EDGE_SCALE      120 /* integer METIS edge weights keep 1/(k-1) shares */
#define REFINE_PASSES   32
#define METIS_IMBALANCE 1.05f

typedef struct px_state {
    const px_place_problem *p;
    uint32_t n_units, H;
    uint32_t *unit_of;   /* [n_guests] */
    uint32_t *unit_cpus; /* [n_units] */
    uint64_t *unit_mem;  /* [n_units] */
    uint32_t *unit_pin;  /* [n_units] */
    /* nets over units, deduplicated: CSR */
    uint32_t *net_off, *net_units;
    /* units → nets: CSR */
    uint32_t *un_off, *un_nets;
    /* units → anti groups: CSR; anti groups over units: CSR */
    uint32_t *ua_off, *ua_groups;
    uint32_t *anti_off, *anti_units;
    /* search state */
    uint32_t *host_of;  /* [n_units] */
    uint32_t *cnt;      /* [n_nets * H] units of net on host */
    uint64_t *load_cpu; /* [H] */
    uint64_t *load_mem; /* [H] */
} px_state;

static uint32_t net_weight(const px_place_problem *p, uint32_t n)
{
    return p->nets[n].weight ? p->nets[n].weight : 1;
}

static uint32_t uf_find(uint32_t *parent, uint32_t x)
{
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    return x;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Sort and deduplicate v[0..n), return the new length. */
static uint32_t uniq_u32(uint32_t *v, uint32_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), cmp_u32);
    uint32_t k = 1;
    for (uint32_t i = 1; i < n; i++)
        if (v[i] != v[k - 1])
            v[k++] = v[i];
    return k;
}

static void state_fini(px_state *s)
{
    free(s->unit_of);
    free(s->unit_cpus);
    free(s->unit_mem);
    free(s->unit_pin);
    free(s->net_off);
    free(s->net_units);
    free(s->un_off);
    free(s->un_nets);
    free(s->ua_off);
    free(s->ua_groups);
    free(s->anti_off);
    free(s->anti_units);
    free(s->host_of);
    free(s->cnt);
    free(s->load_cpu);
    free(s->load_mem);
    memset(s, 0, sizeof(*s));
}

/* Build a units → groups CSR from a groups → units CSR. */
static px_err invert_csr(uint32_t n_groups, const uint32_t *g_off, const uint32_t *g_units,
                         uint32_t n_units, uint32_t **out_off, uint32_t **out_items)
{
    uint32_t *off = calloc((size_t)n_units + 1, sizeof(*off));
    uint32_t *items = malloc(((size_t)g_off[n_groups] + 1) * sizeof(*items));
    if (!off || !items) {
        free(off);
        free(items);
        return PX_E_NOMEM;
    }
    for (uint32_t i = 0; i < g_off[n_groups]; i++)
        off[g_units[i] + 1]++;
    for (uint32_t u = 0; u < n_units; u++)
        off[u + 1] += off[u];
    uint32_t *fill = calloc(n_units ? n_units : 1, sizeof(*fill));
    if (!fill) {
        free(off);
        free(items);
        return PX_E_NOMEM;
    }
    for (uint32_t g = 0; g < n_groups; g++)
        for (uint32_t i = g_off[g]; i < g_off[g + 1]; i++) {
            uint32_t u = g_units[i];
            items[off[u] + fill[u]++] = g;
        }
    free(fill);
    *out_off = off;
    *out_items = items;
    return PX_OK;
}

/* groups (lists of guest indices) → CSR over units, deduplicated. */
static px_err groups_to_units(const px_state *s, uint32_t n, const uint32_t *counts,
                              const uint32_t *const *members, uint32_t **out_off,
                              uint32_t **out_units)
{
    size_t total = 0;
    for (uint32_t i = 0; i < n; i++)
        total += counts[i];
    uint32_t *off = calloc((size_t)n + 1, sizeof(*off));
    uint32_t *units = malloc((total + 1) * sizeof(*units));
    if (!off || !units) {
        free(off);
        free(units);
        return PX_E_NOMEM;
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        off[i] = k;
        for (uint32_t j = 0; j < counts[i]; j++)
            units[k + j] = s->unit_of[members[i][j]];
        k += uniq_u32(units + k, counts[i]);
    }
    off[n] = k;
    *out_off = off;
    *out_units = units;
    return PX_OK;
}

static px_err check_indices(const px_place_problem *p, px_errmsg *em)
{
    for (uint32_t g = 0; g < p->n_guests; g++)
        if (p->guests[g].pin != PX_PLACE_NONE && p->guests[g].pin >= p->n_hosts)
            return px_errmsg_set(em, PX_E_INVAL, "guest %s: pin to host index %u out of range",
                                 p->guests[g].name, p->guests[g].pin);
    for (uint32_t n = 0; n < p->n_nets; n++)
        for (uint32_t i = 0; i < p->nets[n].n_members; i++)
            if (p->nets[n].members[i] >= p->n_guests)
                return px_errmsg_set(em, PX_E_INVAL, "net %s: member index out of range",
                                     p->nets[n].name);
    for (uint32_t a = 0; a < p->n_colocate + p->n_anti; a++) {
        const px_place_group *gr =
            a < p->n_colocate ? &p->colocate[a] : &p->anti[a - p->n_colocate];
        for (uint32_t i = 0; i < gr->n_members; i++)
            if (gr->members[i] >= p->n_guests)
                return px_errmsg_set(em, PX_E_INVAL, "placement group member index out of range");
    }
    return PX_OK;
}

/* Contract colocate groups into units and build every index. */
static px_err state_init(px_state *s, const px_place_problem *p, px_errmsg *em)
{
    memset(s, 0, sizeof(*s));
    s->p = p;
    s->H = p->n_hosts;
    px_err err = check_indices(p, em);
    if (err)
        return err;

    uint32_t G = p->n_guests;
    uint32_t *parent = malloc(((size_t)G + 1) * sizeof(*parent));
    s->unit_of = malloc(((size_t)G + 1) * sizeof(*s->unit_of));
    if (!parent || !s->unit_of) {
        free(parent);
        return PX_E_NOMEM;
    }
    for (uint32_t g = 0; g < G; g++)
        parent[g] = g;
    for (uint32_t c = 0; c < p->n_colocate; c++)
        for (uint32_t i = 1; i < p->colocate[c].n_members; i++) {
            uint32_t a = uf_find(parent, p->colocate[c].members[0]);
            uint32_t b = uf_find(parent, p->colocate[c].members[i]);
            if (a != b)
                parent[a > b ? a : b] = a < b ? a : b; /* lowest index is the root */
        }
    /* Number units in order of their lowest guest: deterministic. */
    uint32_t *root_unit = malloc(((size_t)G + 1) * sizeof(*root_unit));
    if (!root_unit) {
        free(parent);
        return PX_E_NOMEM;
    }
    s->n_units = 0;
    for (uint32_t g = 0; g < G; g++) {
        uint32_t r = uf_find(parent, g);
        if (r == g)
            root_unit[g] = s->n_units++;
        s->unit_of[g] = root_unit[r];
    }
    free(root_unit);
    free(parent);

    uint32_t U = s->n_units, H = s->H, N = p->n_nets;
    s->unit_cpus = calloc(U + 1, sizeof(*s->unit_cpus));
    s->unit_mem = calloc(U + 1, sizeof(*s->unit_mem));
    s->unit_pin = malloc((U + 1) * sizeof(*s->unit_pin));
    s->host_of = malloc((U + 1) * sizeof(*s->host_of));
    s->cnt = calloc((size_t)N * H + 1, sizeof(*s->cnt));
    s->load_cpu = calloc(H + 1, sizeof(*s->load_cpu));
    s->load_mem = calloc(H + 1, sizeof(*s->load_mem));
    if (!s->unit_cpus || !s->unit_mem || !s->unit_pin || !s->host_of || !s->cnt || !s->load_cpu ||
        !s->load_mem)
        return PX_E_NOMEM;
    for (uint32_t u = 0; u < U; u++)
        s->unit_pin[u] = PX_PLACE_NONE;
    for (uint32_t g = 0; g < G; g++) {
        uint32_t u = s->unit_of[g];
        s->unit_cpus[u] += p->guests[g].cpus;
        s->unit_mem[u] += p->guests[g].mem_mb;
        uint32_t pin = p->guests[g].pin;
        if (pin == PX_PLACE_NONE)
            continue;
        if (s->unit_pin[u] != PX_PLACE_NONE && s->unit_pin[u] != pin)
            return px_errmsg_set(em, PX_E_CONFIG,
                                 "guest %s is pinned to host %s but colocated with a guest "
                                 "pinned to host %s",
                                 p->guests[g].name, p->hosts[pin].name,
                                 p->hosts[s->unit_pin[u]].name);
        s->unit_pin[u] = pin;
    }

    /* Every unit must fit somewhere it is allowed to go. */
    for (uint32_t g = 0; g < G; g++) {
        uint32_t u = s->unit_of[g];
        bool fits = false;
        for (uint32_t h = 0; h < H && !fits; h++)
            if ((s->unit_pin[u] == PX_PLACE_NONE || s->unit_pin[u] == h) &&
                s->unit_cpus[u] <= p->hosts[h].cpus && s->unit_mem[u] <= p->hosts[h].mem_mb)
                fits = true;
        if (!fits)
            return px_errmsg_set(em, PX_E_CONFIG,
                                 "guest %s (with its colocated guests: %u cpus, %llu MiB) fits "
                                 "on no host it may use",
                                 p->guests[g].name, s->unit_cpus[u],
                                 (unsigned long long)s->unit_mem[u]);
    }

    /* Nets and anti-affinity groups over units. */
    uint32_t *counts = malloc(((size_t)N + p->n_anti + 1) * sizeof(*counts));
    const uint32_t **members = malloc(((size_t)N + p->n_anti + 1) * sizeof(*members));
    if (!counts || !members) {
        free(counts);
        free(members);
        return PX_E_NOMEM;
    }
    for (uint32_t n = 0; n < N; n++) {
        counts[n] = p->nets[n].n_members;
        members[n] = p->nets[n].members;
    }
    err = groups_to_units(s, N, counts, members, &s->net_off, &s->net_units);
    if (!err) {
        for (uint32_t a = 0; a < p->n_anti; a++) {
            counts[a] = p->anti[a].n_members;
            members[a] = p->anti[a].members;
        }
        err = groups_to_units(s, p->n_anti, counts, members, &s->anti_off, &s->anti_units);
    }
    free(counts);
    free(members);
    if (err)
        return err;
    for (uint32_t a = 0; a < p->n_anti; a++) {
        uint32_t distinct = s->anti_off[a + 1] - s->anti_off[a];
        if (distinct < p->anti[a].n_members)
            return px_errmsg_set(em, PX_E_CONFIG,
                                 "anti-affinity group %u names guests that are also colocated "
                                 "(or the same guest twice)",
                                 a + 1);
        if (distinct > H)
            return px_errmsg_set(em, PX_E_CONFIG,
                                 "anti-affinity group %u has %u guests but there are only %u "
                                 "hosts",
                                 a + 1, distinct, H);
    }
    err = invert_csr(N, s->net_off, s->net_units, U, &s->un_off, &s->un_nets);
    if (!err)
        err = invert_csr(p->n_anti, s->anti_off, s->anti_units, U, &s->ua_off, &s->ua_groups);
    return err;
}

/* (Re)build loads and counts from host_of. PX_PLACE_NONE units are skipped. */
static void state_recount(px_state *s)
{
    uint32_t H = s->H;
    memset(s->cnt, 0, (size_t)s->p->n_nets * H * sizeof(*s->cnt));
    memset(s->load_cpu, 0, H * sizeof(*s->load_cpu));
    memset(s->load_mem, 0, H * sizeof(*s->load_mem));
    for (uint32_t u = 0; u < s->n_units; u++) {
        uint32_t h = s->host_of[u];
        if (h == PX_PLACE_NONE)
            continue;
        s->load_cpu[h] += s->unit_cpus[u];
        s->load_mem[h] += s->unit_mem[u];
        for (uint32_t i = s->un_off[u]; i < s->un_off[u + 1]; i++)
            s->cnt[(size_t)s->un_nets[i] * H + h]++;
    }
}

static void unit_move(px_state *s, uint32_t u, uint32_t to)
{
    uint32_t from = s->host_of[u], H = s->H;
    for (uint32_t i = s->un_off[u]; i < s->un_off[u + 1]; i++) {
        size_t base = (size_t)s->un_nets[i] * H;
        if (from != PX_PLACE_NONE)
            s->cnt[base + from]--;
        s->cnt[base + to]++;
    }
    if (from != PX_PLACE_NONE) {
        s->load_cpu[from] -= s->unit_cpus[u];
        s->load_mem[from] -= s->unit_mem[u];
    }
    s->load_cpu[to] += s->unit_cpus[u];
    s->load_mem[to] += s->unit_mem[u];
    s->host_of[u] = to;
}

/* Weighted cut change if u moved to `to` (positive = better). */
static int64_t unit_gain(const px_state *s, uint32_t u, uint32_t to)
{
    uint32_t from = s->host_of[u], H = s->H;
    int64_t gain = 0;
    for (uint32_t i = s->un_off[u]; i < s->un_off[u + 1]; i++) {
        uint32_t n = s->un_nets[i];
        const uint32_t *c = s->cnt + (size_t)n * H;
        int64_t w = net_weight(s->p, n);
        if (from != PX_PLACE_NONE && c[from] == 1)
            gain += w;
        if (c[to] == 0)
            gain -= w;
    }
    return gain;
}

static bool host_fits(const px_state *s, uint32_t u, uint32_t h)
{
    return s->load_cpu[h] + s->unit_cpus[u] <= s->p->hosts[h].cpus &&
           s->load_mem[h] + s->unit_mem[u] <= s->p->hosts[h].mem_mb;
}

static bool host_over(const px_state *s, uint32_t h)
{
    return s->load_cpu[h] > s->p->hosts[h].cpus || s->load_mem[h] > s->p->hosts[h].mem_mb;
}

/* Would u on h share a host with another member of one of its anti groups? */
static bool anti_clash(const px_state *s, uint32_t u, uint32_t h)
{
    for (uint32_t i = s->ua_off[u]; i < s->ua_off[u + 1]; i++) {
        uint32_t a = s->ua_groups[i];
        for (uint32_t j = s->anti_off[a]; j < s->anti_off[a + 1]; j++) {
            uint32_t v = s->anti_units[j];
            if (v != u && s->host_of[v] == h)
                return true;
        }
    }
    return false;
}

static bool move_ok(const px_state *s, uint32_t u, uint32_t h)
{
    return h != s->host_of[u] && (s->unit_pin[u] == PX_PLACE_NONE || s->unit_pin[u] == h) &&
           host_fits(s, u, h) && !anti_clash(s, u, h);
}

/* Best allowed destination for u by gain (ties: lowest host index), or NONE. */
static uint32_t best_dest(const px_state *s, uint32_t u, int64_t *gain_out)
{
    uint32_t best = PX_PLACE_NONE;
    int64_t best_gain = INT64_MIN;
    for (uint32_t h = 0; h < s->H; h++) {
        if (!move_ok(s, u, h))
            continue;
        int64_t g = unit_gain(s, u, h);
        if (g > best_gain) {
            best_gain = g;
            best = h;
        }
    }
    *gain_out = best_gain;
    return best;
}

/* Enforce pins, capacity and anti-affinity with least-damage moves. */
static px_err repair(px_state *s, px_errmsg *em)
{
    for (uint32_t u = 0; u < s->n_units; u++)
        if (s->unit_pin[u] != PX_PLACE_NONE)
            s->host_of[u] = s->unit_pin[u];
    state_recount(s);

    for (uint32_t h = 0; h < s->H; h++) {
        while (host_over(s, h)) {
            uint32_t bu = PX_PLACE_NONE, bh = PX_PLACE_NONE;
            int64_t bg = INT64_MIN;
            for (uint32_t u = 0; u < s->n_units; u++) {
                if (s->host_of[u] != h || s->unit_pin[u] != PX_PLACE_NONE)
                    continue;
                int64_t g;
                uint32_t d = best_dest(s, u, &g);
                if (d != PX_PLACE_NONE && g > bg) {
                    bg = g;
                    bu = u;
                    bh = d;
                }
            }
            if (bu == PX_PLACE_NONE)
                return px_errmsg_set(em, PX_E_CONFIG,
                                     "host %s is over capacity and none of its guests can move "
                                     "elsewhere (pins, anti-affinity or full hosts)",
                                     s->p->hosts[h].name);
            unit_move(s, bu, bh);
        }
    }

    for (uint32_t a = 0; a < s->p->n_anti; a++) {
        for (uint32_t i = s->anti_off[a]; i < s->anti_off[a + 1]; i++) {
            uint32_t u = s->anti_units[i];
            if (!anti_clash(s, u, s->host_of[u]))
                continue;
            int64_t g;
            uint32_t d = s->unit_pin[u] == PX_PLACE_NONE ? best_dest(s, u, &g) : PX_PLACE_NONE;
            if (d == PX_PLACE_NONE)
                return px_errmsg_set(em, PX_E_CONFIG,
                                     "anti-affinity group %u cannot be satisfied within host "
                                     "capacity and pins",
                                     a + 1);
            unit_move(s, u, d);
        }
    }
    return PX_OK;
}

/* Gain-driven single-unit moves until a pass changes nothing. */
static void refine(px_state *s)
{
    for (int pass = 0; pass < REFINE_PASSES; pass++) {
        bool moved = false;
        for (uint32_t u = 0; u < s->n_units; u++) {
            if (s->unit_pin[u] != PX_PLACE_NONE)
                continue;
            int64_t g;
            uint32_t d = best_dest(s, u, &g);
            if (d != PX_PLACE_NONE && g > 0) {
                unit_move(s, u, d);
                moved = true;
            }
        }
        if (!moved)
            break;
    }
}

/* ---- starts ---- */

static px_err start_round_robin(px_state *s, px_errmsg *em)
{
    for (uint32_t u = 0; u < s->n_units; u++)
        s->host_of[u] = PX_PLACE_NONE;
    state_recount(s);
    uint32_t cursor = 0;
    for (uint32_t u = 0; u < s->n_units; u++) {
        uint32_t chosen = PX_PLACE_NONE;
        for (uint32_t k = 0; k < s->H && chosen == PX_PLACE_NONE; k++) {
            uint32_t h = (cursor + k) % s->H;
            if ((s->unit_pin[u] == PX_PLACE_NONE || s->unit_pin[u] == h) && host_fits(s, u, h) &&
                !anti_clash(s, u, h))
                chosen = h;
        }
        if (chosen == PX_PLACE_NONE)
            return px_errmsg_set(em, PX_E_CONFIG, "round robin found no host with room");
        unit_move(s, u, chosen);
        cursor = (chosen + 1) % s->H;
    }
    return PX_OK;
}

typedef struct unit_order {
    uint64_t key;
    uint32_t u;
} unit_order;

static int cmp_order_desc(const void *a, const void *b)
{
    const unit_order *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? 1 : -1;
    return (x->u > y->u) - (x->u < y->u);
}

/* Heaviest-connected units first, each to the host where its nets already
 * are (most weight), else to the emptiest host: clusters fill hosts. */
static px_err start_greedy(px_state *s, px_errmsg *em)
{
    uint32_t U = s->n_units, H = s->H;
    unit_order *order = malloc((U + 1) * sizeof(*order));
    if (!order)
        return PX_E_NOMEM;
    for (uint32_t u = 0; u < U; u++) {
        uint64_t w = 0;
        for (uint32_t i = s->un_off[u]; i < s->un_off[u + 1]; i++)
            w += net_weight(s->p, s->un_nets[i]);
        order[u] = (unit_order){w, u};
        s->host_of[u] = PX_PLACE_NONE;
    }
    qsort(order, U, sizeof(*order), cmp_order_desc);
    state_recount(s);
    /* Pinned units first so the others see them. */
    for (uint32_t u = 0; u < U; u++)
        if (s->unit_pin[u] != PX_PLACE_NONE)
            unit_move(s, u, s->unit_pin[u]);
    px_err err = PX_OK;
    for (uint32_t k = 0; k < U; k++) {
        uint32_t u = order[k].u;
        if (s->host_of[u] != PX_PLACE_NONE)
            continue;
        uint32_t best = PX_PLACE_NONE;
        uint64_t best_aff = 0, best_free = 0;
        for (uint32_t h = 0; h < H; h++) {
            if (!host_fits(s, u, h) || anti_clash(s, u, h))
                continue;
            uint64_t aff = 0;
            for (uint32_t i = s->un_off[u]; i < s->un_off[u + 1]; i++) {
                uint32_t n = s->un_nets[i];
                if (s->cnt[(size_t)n * H + h])
                    aff += net_weight(s->p, n);
            }
            uint64_t freec = s->p->hosts[h].cpus - s->load_cpu[h];
            if (best == PX_PLACE_NONE || aff > best_aff || (aff == best_aff && freec > best_free)) {
                best = h;
                best_aff = aff;
                best_free = freec;
            }
        }
        if (best == PX_PLACE_NONE) {
            err = px_errmsg_set(em, PX_E_CONFIG,
                                "no host has room for guest group %u (greedy fill); the lab "
                                "needs more capacity",
                                u);
            break;
        }
        unit_move(s, u, best);
    }
    free(order);
    return err;
}

/* Append the edges of one net to (eu, ev, ew) as a clique or ring. */
static size_t net_edges(const px_state *s, uint32_t n, idx_t *eu, idx_t *ev, idx_t *ew, size_t k)
{
    const uint32_t *m = s->net_units + s->net_off[n];
    uint32_t cnt = s->net_off[n + 1] - s->net_off[n];
    if (cnt < 2)
        return k;
    uint64_t w = net_weight(s->p, n);
    if (cnt <= CLIQUE_MAX) {
        idx_t pw = (idx_t)(w * EDGE_SCALE / (cnt - 1));
        if (pw < 1)
            pw = 1;
        for (uint32_t i = 0; i < cnt; i++)
            for (uint32_t j = 0; j < cnt; j++)
                if (i != j) {
                    eu[k] = (idx_t)m[i];
                    ev[k] = (idx_t)m[j];
                    ew[k++] = pw;
                }
        return k;
    }
    idx_t pw = (idx_t)(w * EDGE_SCALE / RING_CHORDS);
    if (pw < 1)
        pw = 1;
    for (uint32_t i = 0; i < cnt; i++)
        for (uint32_t d = 1; d <= RING_CHORDS / 2; d++) {
            uint32_t j = (i + d) % cnt;
            eu[k] = (idx_t)m[i], ev[k] = (idx_t)m[j], ew[k++] = pw;
            eu[k] = (idx_t)m[j], ev[k] = (idx_t)m[i], ew[k++] = pw;
        }
    return k;
}

typedef struct edge {
    idx_t u, v, w;
} edge;

static int cmp_edge(const void *a, const void *b)
{
    const edge *x = a, *y = b;
    if (x->u != y->u)
        return (x->u > y->u) - (x->u < y->u);
    return (x->v > y->v) - (x->v < y->v);
}

static px_err start_metis(px_state *s, px_errmsg *em)
{
    uint32_t U = s->n_units, H = s->H;
    if (H == 1 || U <= 1) {
        for (uint32_t u = 0; u < U; u++)
            s->host_of[u] = 0;
        return PX_OK;
    }
    size_t cap = 0;
    for (uint32_t n = 0; n < s->p->n_nets; n++) {
        size_t c = s->net_off[n + 1] - s->net_off[n];
        cap += c <= CLIQUE_MAX ? c * c : c * RING_CHORDS;
    }
    px_err err = PX_E_NOMEM;
    idx_t *eu = malloc((cap + 1) * sizeof(idx_t)), *ev = malloc((cap + 1) * sizeof(idx_t));
    idx_t *ew = malloc((cap + 1) * sizeof(idx_t));
    edge *edges = malloc((cap + 1) * sizeof(edge));
    idx_t *xadj = calloc((size_t)U + 1, sizeof(idx_t));
    idx_t *adj = malloc((cap + 1) * sizeof(idx_t)), *adjw = malloc((cap + 1) * sizeof(idx_t));
    idx_t *vwgt = malloc(2 * ((size_t)U + 1) * sizeof(idx_t));
    idx_t *part = malloc(((size_t)U + 1) * sizeof(idx_t));
    real_t *tpw = malloc(2 * ((size_t)H + 1) * sizeof(real_t));
    if (!eu || !ev || !ew || !edges || !xadj || !adj || !adjw || !vwgt || !part || !tpw)
        goto out;

    size_t k = 0;
    for (uint32_t n = 0; n < s->p->n_nets; n++)
        k = net_edges(s, n, eu, ev, ew, k);
    for (size_t i = 0; i < k; i++)
        edges[i] = (edge){eu[i], ev[i], ew[i]};
    qsort(edges, k, sizeof(edge), cmp_edge);
    /* Merge parallel edges; METIS wants a simple symmetric graph. */
    size_t m = 0;
    for (size_t i = 0; i < k; i++) {
        if (m && edges[m - 1].u == edges[i].u && edges[m - 1].v == edges[i].v)
            edges[m - 1].w += edges[i].w;
        else
            edges[m++] = edges[i];
    }
    for (size_t i = 0; i < m; i++) {
        xadj[edges[i].u + 1]++;
        adj[i] = edges[i].v;
        adjw[i] = edges[i].w;
    }
    for (uint32_t u = 0; u < U; u++)
        xadj[u + 1] += xadj[u];

    uint64_t tot_cpu = 0, tot_mem = 0;
    for (uint32_t h = 0; h < H; h++) {
        tot_cpu += s->p->hosts[h].cpus;
        tot_mem += s->p->hosts[h].mem_mb;
    }
    for (uint32_t h = 0; h < H; h++) {
        tpw[2 * h] = tot_cpu ? (real_t)s->p->hosts[h].cpus / (real_t)tot_cpu : 1.0f / (real_t)H;
        tpw[2 * h + 1] =
            tot_mem ? (real_t)s->p->hosts[h].mem_mb / (real_t)tot_mem : 1.0f / (real_t)H;
    }
    for (uint32_t u = 0; u < U; u++) {
        vwgt[2 * u] = (idx_t)(s->unit_cpus[u] ? s->unit_cpus[u] : 1);
        /* MiB rounded up to 64 MiB steps keeps sums far inside idx_t. */
        vwgt[2 * u + 1] = (idx_t)((s->unit_mem[u] + 63) / 64 ? (s->unit_mem[u] + 63) / 64 : 1);
    }
    idx_t opts[METIS_NOPTIONS];
    METIS_SetDefaultOptions(opts);
    opts[METIS_OPTION_SEED] = 1;
    opts[METIS_OPTION_NUMBERING] = 0;
    idx_t nv = (idx_t)U, ncon = 2, np = (idx_t)H, objval = 0;
    real_t ub[2] = {METIS_IMBALANCE, METIS_IMBALANCE};
    int rc = METIS_PartGraphKway(&nv, &ncon, xadj, adj, vwgt, NULL, adjw, &np, tpw, ub, opts,
                                 &objval, part);
    if (rc != METIS_OK) {
        err = px_errmsg_set(em, PX_E_IO, "METIS partitioning failed (code %d)", rc);
        goto out;
    }
    for (uint32_t u = 0; u < U; u++)
        s->host_of[u] = (uint32_t)part[u] < H ? (uint32_t)part[u] : 0;
    err = PX_OK;
out:
    free(eu);
    free(ev);
    free(ew);
    free(edges);
    free(xadj);
    free(adj);
    free(adjw);
    free(vwgt);
    free(part);
    free(tpw);
    return err;
}

/* Run one method to a complete, feasible assignment in s->host_of. */
static px_err run_method(px_state *s, px_place_method method, px_errmsg *em)
{
    px_err err;
    switch (method) {
    case PX_PLACE_ROUND_ROBIN:
        return start_round_robin(s, em);
    case PX_PLACE_GREEDY:
        err = start_greedy(s, em);
        if (err)
            return err;
        break;
    case PX_PLACE_METIS:
        err = start_metis(s, em);
        if (err)
            return err;
        break;
    default:
        return px_errmsg_set(em, PX_E_INVAL, "unknown placement method %d", (int)method);
    }
    err = repair(s, em);
    if (err)
        return err;
    refine(s);
    return PX_OK;
}

uint64_t px_place_cut(const px_place_problem *p, const uint32_t *guest_host)
{
    uint64_t cut = 0;
    uint32_t H = p->n_hosts;
    uint8_t *seen = calloc(H ? H : 1, 1);
    if (!seen)
        return UINT64_MAX;
    for (uint32_t n = 0; n < p->n_nets; n++) {
        memset(seen, 0, H ? H : 1);
        uint32_t span = 0;
        for (uint32_t i = 0; i < p->nets[n].n_members; i++) {
            uint32_t h = guest_host[p->nets[n].members[i]];
            if (h != PX_PLACE_NONE && h < H && !seen[h]) {
                seen[h] = 1;
                span++;
            }
        }
        if (span > 1)
            cut += (uint64_t)(span - 1) * net_weight(p, n);
    }
    free(seen);
    return cut;
}

static px_err fill_result(const px_state *s, px_place_method method, px_place_result *r)
{
    const px_place_problem *p = s->p;
    r->guest_host = malloc(((size_t)p->n_guests + 1) * sizeof(uint32_t));
    r->net_home = malloc(((size_t)p->n_nets + 1) * sizeof(uint32_t));
    r->net_span = malloc(((size_t)p->n_nets + 1) * sizeof(uint32_t));
    uint32_t *votes = calloc(s->H ? s->H : 1, sizeof(uint32_t));
    if (!r->guest_host || !r->net_home || !r->net_span || !votes) {
        free(votes);
        return PX_E_NOMEM;
    }
    for (uint32_t g = 0; g < p->n_guests; g++)
        r->guest_host[g] = s->host_of[s->unit_of[g]];
    for (uint32_t n = 0; n < p->n_nets; n++) {
        memset(votes, 0, s->H * sizeof(uint32_t));
        for (uint32_t i = 0; i < p->nets[n].n_members; i++)
            votes[r->guest_host[p->nets[n].members[i]]]++;
        uint32_t home = 0, span = 0;
        for (uint32_t h = 0; h < s->H; h++) {
            if (votes[h])
                span++;
            if (votes[h] > votes[home])
                home = h;
        }
        r->net_home[n] = home;
        r->net_span[n] = span;
    }
    free(votes);
    r->cut = px_place_cut(p, r->guest_host);
    r->method = method;
    return PX_OK;
}

px_err px_place(const px_place_problem *p, px_place_method method, px_place_result *r,
                px_errmsg *em)
{
    memset(r, 0, sizeof(*r));
    if (p->n_hosts == 0)
        return px_errmsg_set(em, PX_E_CONFIG, "no hosts to place %u guests on", p->n_guests);
    px_state s;
    px_err err = state_init(&s, p, em);
    if (err)
        goto out;

    if (method != PX_PLACE_BEST) {
        err = run_method(&s, method, em);
        if (!err)
            err = fill_result(&s, method, r);
        goto out;
    }
    /* Both starts; keep the lower cut (METIS on ties). */
    px_errmsg em_metis = {{0}};
    err = run_method(&s, PX_PLACE_METIS, &em_metis);
    uint64_t metis_cut = UINT64_MAX;
    if (!err) {
        err = fill_result(&s, PX_PLACE_METIS, r);
        if (err)
            goto out;
        metis_cut = r->cut;
    }
    px_err gerr = run_method(&s, PX_PLACE_GREEDY, em);
    if (!gerr) {
        px_place_result g = {0};
        gerr = fill_result(&s, PX_PLACE_GREEDY, &g);
        if (!gerr && g.cut < metis_cut) {
            px_place_result_fini(r);
            *r = g;
        } else {
            px_place_result_fini(&g);
        }
    }
    if (err && gerr) {
        if (em)
            *em = em_metis;
        goto out;
    }
    err = PX_OK;
out:
    if (err)
        px_place_result_fini(r);
    state_fini(&s);
    return err;
}

void px_place_result_fini(px_place_result *r)
{
    free(r->guest_host);
    free(r->net_home);
    free(r->net_span);
    memset(r, 0, sizeof(*r));
}

const char *px_place_method_name(px_place_method m)
{
    switch (m) {
    case PX_PLACE_METIS:
        return "metis+refine";
    case PX_PLACE_GREEDY:
        return "greedy+refine";
    case PX_PLACE_ROUND_ROBIN:
        return "round-robin";
    case PX_PLACE_BEST:
        return "best";
    }
    return "?";
}
