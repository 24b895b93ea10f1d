/* Unit tests: fabric/eth-hub/fdb — learning, moves, ageing, eviction,
 * flushes, dump order, and a random run against a plain reference table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fabric/eth-hub/fdb.h"

#define SEC 1000000000ull

static void mac_of(uint32_t i, uint8_t mac[6])
{
    mac[0] = 0x52;
    mac[1] = 0x54;
    mac[2] = (uint8_t)(i >> 24);
    mac[3] = (uint8_t)(i >> 16);
    mac[4] = (uint8_t)(i >> 8);
    mac[5] = (uint8_t)i;
}

static px_fdb_stats stats(const px_fdb *f)
{
    px_fdb_stats s;
    px_fdb_stats_get(f, &s);
    return s;
}

static void test_learn_lookup_move(void **state)
{
    (void)state;
    px_fdb *f;
    assert_int_equal(px_fdb_new(0, 0, &f), PX_OK);
    uint8_t a[6], b[6];
    mac_of(1, a);
    mac_of(2, b);
    assert_int_equal(px_fdb_lookup(f, 0, a, 0), PX_FDB_NONE);
    assert_true(px_fdb_learn(f, 0, a, 3, 10));
    assert_false(px_fdb_learn(f, 0, a, 3, 20)); /* same port: only the time */
    assert_true(px_fdb_learn(f, 0, b, 4, 30));
    assert_int_equal(px_fdb_lookup(f, 0, a, 40), 3);
    assert_int_equal(px_fdb_lookup(f, 0, b, 40), 4);
    /* The VLAN is part of the key. */
    assert_int_equal(px_fdb_lookup(f, 1, a, 40), PX_FDB_NONE);
    assert_true(px_fdb_learn(f, 1, a, 9, 50));
    assert_int_equal(px_fdb_lookup(f, 1, a, 60), 9);
    assert_int_equal(px_fdb_lookup(f, 0, a, 60), 3);
    /* A station moves. */
    assert_true(px_fdb_learn(f, 0, a, 5, 70));
    assert_int_equal(px_fdb_lookup(f, 0, a, 80), 5);

    px_fdb_stats s = stats(f);
    assert_int_equal(s.learned, 3);
    assert_int_equal(s.moved, 1);
    assert_int_equal(s.evicted, 0);
    assert_int_equal(s.expired, 0);
    assert_int_equal(s.entries, 3);

    /* Group sources and port NONE are never learnt. */
    const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    const uint8_t mcast[6] = {0x01, 0x00, 0x5e, 0x00, 0x00, 0x01};
    assert_false(px_fdb_learn(f, 0, bcast, 1, 90));
    assert_false(px_fdb_learn(f, 0xffff, bcast, 1, 90));
    assert_false(px_fdb_learn(f, 0, mcast, 1, 90));
    assert_false(px_fdb_learn(f, 0, b, PX_FDB_NONE, 90));
    assert_int_equal(px_fdb_lookup(f, 0, bcast, 90), PX_FDB_NONE);
    assert_int_equal(px_fdb_lookup(f, 0xffff, bcast, 90), PX_FDB_NONE);
    assert_int_equal(px_fdb_lookup(f, 0, b, 90), 4);
    assert_int_equal(stats(f).entries, 3);
    px_fdb_free(f);
    px_fdb_free(NULL);
}

static void test_new_limits(void **state)
{
    (void)state;
    px_fdb *f = (px_fdb *)&f;
    assert_int_equal(px_fdb_new(PX_FDB_MAX_ENTRIES + 1, 0, &f), PX_E_TOOBIG);
    assert_null(f);
    assert_int_equal(px_fdb_new(1, SEC, &f), PX_OK);
    uint8_t a[6], b[6];
    mac_of(1, a);
    mac_of(2, b);
    assert_true(px_fdb_learn(f, 0, a, 1, 0));
    assert_true(px_fdb_learn(f, 0, b, 2, 1));
    assert_int_equal(px_fdb_lookup(f, 0, a, 2), PX_FDB_NONE);
    assert_int_equal(px_fdb_lookup(f, 0, b, 2), 2);
    assert_int_equal(stats(f).evicted, 1);
    assert_int_equal(stats(f).entries, 1);
    px_fdb_free(f);
}

static void test_ageing(void **state)
{
    (void)state;
    px_fdb *f;
    assert_int_equal(px_fdb_new(16, 10 * SEC, &f), PX_OK);
    uint8_t a[6], b[6], c[6];
    mac_of(1, a);
    mac_of(2, b);
    mac_of(3, c);
    uint64_t t0 = 1000 * SEC;
    px_fdb_learn(f, 0, a, 1, t0);
    px_fdb_learn(f, 0, b, 2, t0 + 5 * SEC);
    /* Not seen for exactly the ageing time: still there; a nanosecond more: gone. */
    assert_int_equal(px_fdb_lookup(f, 0, a, t0 + 10 * SEC), 1);
    assert_int_equal(px_fdb_lookup(f, 0, a, t0 + 10 * SEC + 1), PX_FDB_NONE);
    assert_int_equal(px_fdb_lookup(f, 0, b, t0 + 10 * SEC + 1), 2);
    /* A time before the entry's (another thread's clock read) does not age it. */
    assert_int_equal(px_fdb_lookup(f, 0, a, t0 - 1), 1);

    /* An aged entry learnt again is new, even on the same port. */
    px_fdb_learn(f, 0, c, 3, t0 + 6 * SEC);
    assert_true(px_fdb_learn(f, 0, a, 1, t0 + 11 * SEC));
    assert_int_equal(stats(f).learned, 4);
    assert_int_equal(stats(f).moved, 0);

    /* Expire removes exactly the aged ones: b (t0+5), then c (t0+6). */
    assert_int_equal(px_fdb_expire(f, t0 + 15 * SEC), 0);
    assert_int_equal(px_fdb_expire(f, t0 + 15 * SEC + 1), 1);
    assert_int_equal(px_fdb_lookup(f, 0, b, t0), PX_FDB_NONE); /* removed for real */
    assert_int_equal(px_fdb_lookup(f, 0, c, t0 + 16 * SEC), 3);
    assert_int_equal(px_fdb_expire(f, t0 + 100 * SEC), 2);
    px_fdb_stats s = stats(f);
    assert_int_equal(s.expired, 3);
    assert_int_equal(s.entries, 0);

    /* A shorter ageing time applies to entries already there. */
    px_fdb_learn(f, 0, a, 1, t0);
    assert_int_equal(px_fdb_lookup(f, 0, a, t0 + 2 * SEC), 1);
    px_fdb_set_ageing(f, SEC);
    assert_int_equal(px_fdb_lookup(f, 0, a, t0 + 2 * SEC), PX_FDB_NONE);
    px_fdb_set_ageing(f, 0); /* default: 300 s */
    assert_int_equal(px_fdb_lookup(f, 0, a, t0 + 300 * SEC), 1);
    assert_int_equal(px_fdb_lookup(f, 0, a, t0 + 300 * SEC + 1), PX_FDB_NONE);
    px_fdb_free(f);
}

static void test_eviction_is_lru(void **state)
{
    (void)state;
    px_fdb *f;
    assert_int_equal(px_fdb_new(4, 100 * SEC, &f), PX_OK);
    uint8_t m[6][6];
    for (uint32_t i = 0; i < 6; i++)
        mac_of(i, m[i]);
    for (uint32_t i = 0; i < 4; i++)
        px_fdb_learn(f, 0, m[i], i, i);
    assert_false(px_fdb_learn(f, 0, m[0], 0, 10)); /* 0 is now the newest; 1 the oldest */
    assert_true(px_fdb_learn(f, 0, m[4], 4, 11));
    assert_int_equal(px_fdb_lookup(f, 0, m[1], 12), PX_FDB_NONE);
    for (uint32_t i = 0; i < 5; i++)
        if (i != 1)
            assert_int_equal(px_fdb_lookup(f, 0, m[i], 12), i);
    assert_true(px_fdb_learn(f, 0, m[5], 5, 13)); /* evicts 2 */
    assert_int_equal(px_fdb_lookup(f, 0, m[2], 14), PX_FDB_NONE);
    assert_int_equal(px_fdb_lookup(f, 0, m[3], 14), 3);
    px_fdb_stats s = stats(f);
    assert_int_equal(s.evicted, 2);
    assert_int_equal(s.learned, 6);
    assert_int_equal(s.entries, 4);

    /* An aged victim counts as expired, not evicted. */
    assert_true(px_fdb_learn(f, 0, m[1], 1, 200 * SEC));
    s = stats(f);
    assert_int_equal(s.evicted, 2);
    assert_int_equal(s.expired, 1);
    px_fdb_free(f);
}

static void test_flush(void **state)
{
    (void)state;
    px_fdb *f;
    assert_int_equal(px_fdb_new(64, 0, &f), PX_OK);
    uint8_t m[6];
    for (uint32_t i = 0; i < 40; i++) {
        mac_of(i, m);
        px_fdb_learn(f, (uint16_t)(i % 2), m, i % 3, i);
    }
    px_fdb_flush_port(f, 1);
    for (uint32_t i = 0; i < 40; i++) {
        mac_of(i, m);
        assert_int_equal(px_fdb_lookup(f, (uint16_t)(i % 2), m, 50),
                         i % 3 == 1 ? PX_FDB_NONE : i % 3);
    }
    assert_int_equal(stats(f).entries, 40 - 13);
    px_fdb_flush(f);
    assert_int_equal(stats(f).entries, 0);
    for (uint32_t i = 0; i < 40; i++) {
        mac_of(i, m);
        assert_int_equal(px_fdb_lookup(f, (uint16_t)(i % 2), m, 50), PX_FDB_NONE);
    }
    assert_int_equal(stats(f).learned, 40);
    /* Usable again, to its full size. */
    for (uint32_t i = 0; i < 64; i++) {
        mac_of(i, m);
        assert_true(px_fdb_learn(f, 0, m, 7, 60));
    }
    assert_int_equal(stats(f).entries, 64);
    assert_int_equal(stats(f).evicted, 0);
    px_fdb_free(f);
}

static void test_dump_sorted(void **state)
{
    (void)state;
    px_fdb *f;
    assert_int_equal(px_fdb_new(128, 0, &f), PX_OK);
    uint8_t m[6];
    /* Learn in a scrambled order over three VLANs. */
    for (uint32_t k = 0; k < 90; k++) {
        uint32_t i = (k * 37) % 90;
        mac_of(i * 0x01010101u, m);
        px_fdb_learn(f, (uint16_t)(300 - 100 * (i % 3)), m, i, 1000 + k);
    }
    px_fdb_entry all[128];
    assert_int_equal(px_fdb_dump(f, all, 128), 90);
    for (uint32_t j = 1; j < 90; j++) {
        int c = all[j - 1].vid != all[j].vid ? (all[j - 1].vid < all[j].vid ? -1 : 1)
                                             : memcmp(all[j - 1].mac, all[j].mac, 6);
        assert_true(c < 0);
    }
    assert_int_equal(all[0].vid, 100);
    assert_int_equal(all[89].vid, 300);
    /* Entries carry what was learnt. */
    for (uint32_t j = 0; j < 90; j++) {
        uint32_t i = all[j].port;
        mac_of(i * 0x01010101u, m);
        assert_memory_equal(all[j].mac, m, 6);
        assert_int_equal(all[j].vid, 300 - 100 * (i % 3));
        uint32_t k = 0;
        while ((k * 37) % 90 != i)
            k++;
        assert_true(all[j].seen_ns == 1000 + k);
    }
    /* Fewer slots than entries: the first ones in order. */
    px_fdb_entry some[10];
    assert_int_equal(px_fdb_dump(f, some, 10), 10);
    assert_memory_equal(some, all, sizeof(some));
    assert_int_equal(px_fdb_dump(f, some, 0), 0);
    px_fdb_free(f);
}

/* ---- a random run against a plain array that does the same ---- */

typedef struct ref_entry {
    uint16_t vid;
    uint8_t mac[6];
    uint32_t port;
    uint64_t seen, order;
} ref_entry;

#define REF_MAX 48

typedef struct ref {
    ref_entry e[REF_MAX];
    uint32_t n;
    uint64_t order;
    uint64_t ageing;
} ref;

static int ref_find(const ref *r, uint16_t vid, const uint8_t *mac)
{
    for (uint32_t i = 0; i < r->n; i++)
        if (r->e[i].vid == vid && memcmp(r->e[i].mac, mac, 6) == 0)
            return (int)i;
    return -1;
}

static bool ref_aged(const ref *r, uint64_t seen, uint64_t now)
{
    return now > seen && now - seen > r->ageing;
}

static void ref_remove(ref *r, uint32_t i)
{
    r->e[i] = r->e[--r->n];
}

static bool ref_learn(ref *r, uint16_t vid, const uint8_t *mac, uint32_t port, uint64_t now)
{
    if (mac[0] & 1)
        return false;
    int i = ref_find(r, vid, mac);
    if (i >= 0) {
        ref_entry *e = &r->e[i];
        bool changed = ref_aged(r, e->seen, now) || e->port != port;
        e->port = port;
        e->seen = now;
        e->order = ++r->order;
        return changed;
    }
    if (r->n == REF_MAX) {
        uint32_t old = 0;
        for (uint32_t k = 1; k < r->n; k++)
            if (r->e[k].order < r->e[old].order)
                old = k;
        ref_remove(r, old);
    }
    ref_entry *e = &r->e[r->n++];
    e->vid = vid;
    memcpy(e->mac, mac, 6);
    e->port = port;
    e->seen = now;
    e->order = ++r->order;
    return true;
}

static void test_random_against_reference(void **state)
{
    (void)state;
    px_fdb *f;
    const uint64_t ageing = 2500;
    assert_int_equal(px_fdb_new_seeded(REF_MAX, ageing, 12345, &f), PX_OK);
    static ref r;
    memset(&r, 0, sizeof(r));
    r.ageing = ageing;
    uint64_t now = 1, rng = 99;
    for (int step = 0; step < 200000; step++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t x = (uint32_t)(rng >> 33);
        uint8_t mac[6];
        mac_of(x % 97, mac); /* about twice the table: constant eviction */
        if (x % 211 == 0)
            mac[0] |= 1;
        uint16_t vid = (uint16_t)((x >> 8) % 3);
        uint32_t port = (x >> 12) % 5;
        now += (x >> 20) % 50;
        switch ((x >> 16) % 16) {
        case 0: {
            uint32_t want = 0;
            for (uint32_t i = 0; i < r.n;)
                if (ref_aged(&r, r.e[i].seen, now)) {
                    ref_remove(&r, i);
                    want++;
                } else {
                    i++;
                }
            assert_int_equal(px_fdb_expire(f, now), want);
            break;
        }
        case 1:
            if ((x >> 24) % 8 == 0) {
                for (uint32_t i = 0; i < r.n;)
                    if (r.e[i].port == port)
                        ref_remove(&r, i);
                    else
                        i++;
                px_fdb_flush_port(f, port);
            }
            break;
        case 2:
        case 3:
        case 4:
        case 5: {
            int i = ref_find(&r, vid, mac);
            uint32_t want = i < 0 || ref_aged(&r, r.e[i].seen, now) ? PX_FDB_NONE : r.e[i].port;
            assert_int_equal(px_fdb_lookup(f, vid, mac, now), want);
            break;
        }
        default:
            assert_int_equal(px_fdb_learn(f, vid, mac, port, now),
                             ref_learn(&r, vid, mac, port, now));
        }
        assert_int_equal(stats(f).entries, r.n);
    }
    /* Every reference entry is in the table, and nothing else. */
    px_fdb_entry d[REF_MAX];
    assert_int_equal(px_fdb_dump(f, d, REF_MAX), r.n);
    for (uint32_t j = 0; j < r.n; j++) {
        int i = ref_find(&r, d[j].vid, d[j].mac);
        assert_true(i >= 0);
        assert_int_equal(d[j].port, r.e[i].port);
        assert_true(d[j].seen_ns == r.e[i].seen);
    }
    px_fdb_stats s = stats(f);
    assert_true(s.evicted > 1000);
    assert_true(s.moved > 1000);
    assert_true(s.expired > 0);
    px_fdb_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_learn_lookup_move),
        cmocka_unit_test(test_new_limits),
        cmocka_unit_test(test_ageing),
        cmocka_unit_test(test_eviction_is_lru),
        cmocka_unit_test(test_flush),
        cmocka_unit_test(test_dump_sorted),
        cmocka_unit_test(test_random_against_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
