/* Learning bridge forwarding database. See fdb.h.
 *
 * Two arrays: nodes (one per entry, fixed index, linked into a recency list
 * or the free list) and slots (the hash index: 2^k slots, at least twice
 * the entries, each the node index and the key's hash). A lookup touches
 * one or two slots and one node. Deletion shifts the following run back
 * instead of leaving tombstones, so probe runs never degrade. */
#include "fdb.h"

#include <stdlib.h>
#include <string.h>

#include "fabric/eth-hub/frame.h"

typedef struct fdb_node {
    uint64_t key; /* vid << 48 | mac, big-endian: numeric order is (vid, mac) order */
    uint64_t seen_ns;
    uint32_t port;
    uint32_t prev, next; /* recency list (head: newest); next also links the free list */
} fdb_node;

typedef struct fdb_slot {
    uint32_t node; /* PX_FDB_NONE: empty */
    uint32_t hash; /* low 32 bits of the key's hash: the home slot, and a cheap compare */
} fdb_slot;

struct px_fdb {
    uint32_t max, n, mask;
    uint64_t ageing_ns;
    uint64_t seed;
    uint32_t head, tail, free;
    fdb_slot *slots;
    fdb_node *nodes;
    px_fdb_stats stats;
};

/* splitmix64's finalizer: every key bit reaches the low bits the slot
 * index is taken from. */
static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t mkkey(uint16_t vid, const uint8_t mac[6])
{
    uint64_t k = vid;
    for (int i = 0; i < PX_ETH_ALEN; i++)
        k = k << 8 | mac[i];
    return k;
}

static uint32_t hash(const px_fdb *f, uint64_t key)
{
    return (uint32_t)mix(key ^ f->seed);
}

static bool aged(const px_fdb *f, uint64_t seen, uint64_t now)
{
    return now > seen && now - seen > f->ageing_ns;
}

/* The slot holding key, or PX_FDB_NONE. */
static uint32_t find(const px_fdb *f, uint64_t key, uint32_t h)
{
    for (uint32_t i = h & f->mask;; i = (i + 1) & f->mask) {
        const fdb_slot *s = &f->slots[i];
        if (s->node == PX_FDB_NONE)
            return PX_FDB_NONE;
        if (s->hash == h && f->nodes[s->node].key == key)
            return i;
    }
}

static void slot_delete(px_fdb *f, uint32_t i)
{
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & f->mask;
        if (f->slots[j].node == PX_FDB_NONE)
            break;
        /* j may move back to i unless its home lies cyclically in (i, j]. */
        uint32_t k = f->slots[j].hash & f->mask;
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (stays)
            continue;
        f->slots[i] = f->slots[j];
        i = j;
    }
    f->slots[i].node = PX_FDB_NONE;
}

static void lru_unlink(px_fdb *f, uint32_t x)
{
    fdb_node *n = &f->nodes[x];
    if (n->prev != PX_FDB_NONE)
        f->nodes[n->prev].next = n->next;
    else
        f->head = n->next;
    if (n->next != PX_FDB_NONE)
        f->nodes[n->next].prev = n->prev;
    else
        f->tail = n->prev;
}

static void lru_push_head(px_fdb *f, uint32_t x)
{
    fdb_node *n = &f->nodes[x];
    n->prev = PX_FDB_NONE;
    n->next = f->head;
    if (f->head != PX_FDB_NONE)
        f->nodes[f->head].prev = x;
    else
        f->tail = x;
    f->head = x;
}

/* Take node x out of the hash, the recency list and the count. */
static void remove_node(px_fdb *f, uint32_t x)
{
    uint64_t key = f->nodes[x].key;
    uint32_t i = find(f, key, hash(f, key));
    if (i != PX_FDB_NONE)
        slot_delete(f, i);
    lru_unlink(f, x);
    f->nodes[x].next = f->free;
    f->free = x;
    f->n--;
}

static void reset(px_fdb *f)
{
    for (uint32_t i = 0; i <= f->mask; i++)
        f->slots[i].node = PX_FDB_NONE;
    for (uint32_t i = 0; i < f->max; i++)
        f->nodes[i].next = i + 1 < f->max ? i + 1 : PX_FDB_NONE;
    f->free = 0;
    f->head = f->tail = PX_FDB_NONE;
    f->n = 0;
}

px_err px_fdb_new_seeded(uint32_t max_entries, uint64_t ageing_ns, uint64_t seed, px_fdb **out)
{
    *out = NULL;
    if (max_entries == 0)
        max_entries = PX_FDB_DEFAULT_ENTRIES;
    if (max_entries > PX_FDB_MAX_ENTRIES)
        return PX_E_TOOBIG;
    uint32_t nslots = 2;
    while (nslots < 2 * max_entries)
        nslots *= 2;
    px_fdb *f = calloc(1, sizeof(*f));
    if (!f)
        return PX_E_NOMEM;
    f->slots = malloc(nslots * sizeof(*f->slots));
    f->nodes = malloc(max_entries * sizeof(*f->nodes));
    if (!f->slots || !f->nodes) {
        px_fdb_free(f);
        return PX_E_NOMEM;
    }
    f->max = max_entries;
    f->mask = nslots - 1;
    f->seed = mix(seed);
    px_fdb_set_ageing(f, ageing_ns);
    reset(f);
    *out = f;
    return PX_OK;
}

px_err px_fdb_new(uint32_t max_entries, uint64_t ageing_ns, px_fdb **out)
{
    /* Not secret, but as random as the address space layout. */
    uint64_t here = (uint64_t)(uintptr_t)out ^ (uint64_t)(uintptr_t)&px_fdb_new << 17;
    return px_fdb_new_seeded(max_entries, ageing_ns, here, out);
}

void px_fdb_free(px_fdb *f)
{
    if (!f)
        return;
    free(f->nodes);
    free(f->slots);
    free(f);
}

void px_fdb_set_ageing(px_fdb *f, uint64_t ageing_ns)
{
    f->ageing_ns = ageing_ns ? ageing_ns : PX_FDB_DEFAULT_AGEING_NS;
}

bool px_fdb_learn(px_fdb *f, uint16_t vid, const uint8_t mac[6], uint32_t port, uint64_t now_ns)
{
    if (px_eth_mac_is_group(mac) || port == PX_FDB_NONE)
        return false;
    uint64_t key = mkkey(vid, mac);
    uint32_t h = hash(f, key);
    uint32_t i = find(f, key, h);
    if (i != PX_FDB_NONE) {
        uint32_t x = f->slots[i].node;
        fdb_node *n = &f->nodes[x];
        bool changed = true;
        if (aged(f, n->seen_ns, now_ns))
            f->stats.learned++;
        else if (n->port != port)
            f->stats.moved++;
        else
            changed = false;
        n->port = port;
        n->seen_ns = now_ns;
        if (f->head != x) {
            lru_unlink(f, x);
            lru_push_head(f, x);
        }
        return changed;
    }
    if (f->n == f->max) {
        uint32_t old = f->tail;
        if (aged(f, f->nodes[old].seen_ns, now_ns))
            f->stats.expired++;
        else
            f->stats.evicted++;
        remove_node(f, old);
    }
    uint32_t x = f->free;
    f->free = f->nodes[x].next;
    f->nodes[x] = (fdb_node){.key = key, .seen_ns = now_ns, .port = port};
    lru_push_head(f, x);
    f->n++;
    f->stats.learned++;
    /* Probe again: an eviction may have shifted the run. */
    for (i = h & f->mask; f->slots[i].node != PX_FDB_NONE; i = (i + 1) & f->mask)
        ;
    f->slots[i] = (fdb_slot){.node = x, .hash = h};
    return true;
}

uint32_t px_fdb_lookup(const px_fdb *f, uint16_t vid, const uint8_t mac[6], uint64_t now_ns)
{
    if (px_eth_mac_is_group(mac))
        return PX_FDB_NONE;
    uint64_t key = mkkey(vid, mac);
    uint32_t i = find(f, key, hash(f, key));
    if (i == PX_FDB_NONE)
        return PX_FDB_NONE;
    const fdb_node *n = &f->nodes[f->slots[i].node];
    return aged(f, n->seen_ns, now_ns) ? PX_FDB_NONE : n->port;
}

void px_fdb_flush_port(px_fdb *f, uint32_t port)
{
    uint32_t x = f->head;
    while (x != PX_FDB_NONE) {
        uint32_t next = f->nodes[x].next;
        if (f->nodes[x].port == port)
            remove_node(f, x);
        x = next;
    }
}

void px_fdb_flush(px_fdb *f)
{
    reset(f);
}

uint32_t px_fdb_expire(px_fdb *f, uint64_t now_ns)
{
    uint32_t count = 0;
    while (f->tail != PX_FDB_NONE && aged(f, f->nodes[f->tail].seen_ns, now_ns)) {
        remove_node(f, f->tail);
        count++;
    }
    f->stats.expired += count;
    return count;
}

static px_fdb_entry entry(const fdb_node *n)
{
    px_fdb_entry e = {.vid = (uint16_t)(n->key >> 48), .port = n->port, .seen_ns = n->seen_ns};
    for (int i = 0; i < PX_ETH_ALEN; i++)
        e.mac[i] = (uint8_t)(n->key >> (40 - 8 * i));
    return e;
}

static int entry_cmp(const px_fdb_entry *a, const px_fdb_entry *b)
{
    if (a->vid != b->vid)
        return a->vid < b->vid ? -1 : 1;
    return memcmp(a->mac, b->mac, PX_ETH_ALEN);
}

static int entry_qcmp(const void *a, const void *b)
{
    return entry_cmp(a, b);
}

static void swap(px_fdb_entry *a, px_fdb_entry *b)
{
    px_fdb_entry t = *a;
    *a = *b;
    *b = t;
}

/* out[0..n) as a max-heap: the largest of the smallest seen so far on top. */
static void sift_up(px_fdb_entry *h, uint32_t i)
{
    while (i > 0 && entry_cmp(&h[(i - 1) / 2], &h[i]) < 0) {
        swap(&h[(i - 1) / 2], &h[i]);
        i = (i - 1) / 2;
    }
}

static void sift_down(px_fdb_entry *h, uint32_t n, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && entry_cmp(&h[l], &h[m]) > 0)
            m = l;
        if (r < n && entry_cmp(&h[r], &h[m]) > 0)
            m = r;
        if (m == i)
            return;
        swap(&h[i], &h[m]);
        i = m;
    }
}

uint32_t px_fdb_dump(const px_fdb *f, px_fdb_entry *out, uint32_t max)
{
    uint32_t cnt = 0;
    if (max == 0)
        return 0;
    for (uint32_t x = f->head; x != PX_FDB_NONE; x = f->nodes[x].next) {
        px_fdb_entry e = entry(&f->nodes[x]);
        if (cnt < max) {
            out[cnt] = e;
            sift_up(out, cnt++);
        } else if (entry_cmp(&e, &out[0]) < 0) {
            out[0] = e;
            sift_down(out, cnt, 0);
        }
    }
    qsort(out, cnt, sizeof(*out), entry_qcmp);
    return cnt;
}

void px_fdb_stats_get(const px_fdb *f, px_fdb_stats *out)
{
    *out = f->stats;
    out->entries = f->n;
}
