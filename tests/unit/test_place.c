/* Unit tests: coordinator/place. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "coordinator/place.h"

#define NONE PX_PLACE_NONE

static px_place_guest guest(const char *name, uint32_t cpus, uint64_t mem)
{
    return (px_place_guest){.name = name, .cpus = cpus, .mem_mb = mem, .pin = NONE};
}

static const char *gnames[] = {"g0", "g1", "g2", "g3", "g4", "g5", "g6", "g7"};

/* Two clusters of four guests, two hosts that each hold exactly one cluster:
 * the only zero-cut plan splits by cluster. */
typedef struct fixture {
    px_place_guest g[8];
    px_place_host h[3];
    uint32_t a[4], b[4], bridge[2];
    px_place_net n[3];
    px_place_problem p;
} fixture;

static void fixture_init(fixture *f, uint32_t n_hosts)
{
    for (int i = 0; i < 8; i++)
        f->g[i] = guest(gnames[i], 1, 512);
    for (uint32_t i = 0; i < 3; i++)
        f->h[i] = (px_place_host){.name = i == 0   ? "h0"
                                          : i == 1 ? "h1"
                                                   : "h2",
                                  .cpus = 4,
                                  .mem_mb = 2048};
    /* Interleave cluster membership so round robin splits both clusters. */
    uint32_t a[4] = {0, 1, 4, 5}, b[4] = {2, 3, 6, 7};
    memcpy(f->a, a, sizeof(a));
    memcpy(f->b, b, sizeof(b));
    f->n[0] = (px_place_net){.name = "canA", .weight = 10, .n_members = 4, .members = f->a};
    f->n[1] = (px_place_net){.name = "ethB", .weight = 10, .n_members = 4, .members = f->b};
    f->p = (px_place_problem){.n_guests = 8,
                              .n_hosts = n_hosts,
                              .n_nets = 2,
                              .guests = f->g,
                              .hosts = f->h,
                              .nets = f->n};
}

static void check_capacity(const px_place_problem *p, const px_place_result *r)
{
    uint64_t cpu[8] = {0}, mem[8] = {0};
    for (uint32_t g = 0; g < p->n_guests; g++) {
        assert_true(r->guest_host[g] < p->n_hosts);
        cpu[r->guest_host[g]] += p->guests[g].cpus;
        mem[r->guest_host[g]] += p->guests[g].mem_mb;
    }
    for (uint32_t h = 0; h < p->n_hosts; h++) {
        assert_true(cpu[h] <= p->hosts[h].cpus);
        assert_true(mem[h] <= p->hosts[h].mem_mb);
    }
}

static void test_clusters_split_cleanly(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 2);
    const px_place_method methods[] = {PX_PLACE_METIS, PX_PLACE_GREEDY, PX_PLACE_BEST};
    for (size_t m = 0; m < 3; m++) {
        px_place_result r;
        assert_int_equal(px_place(&f.p, methods[m], &r, NULL), PX_OK);
        check_capacity(&f.p, &r);
        assert_int_equal(r.cut, 0);
        for (int i = 1; i < 4; i++) {
            assert_int_equal(r.guest_host[f.a[i]], r.guest_host[f.a[0]]);
            assert_int_equal(r.guest_host[f.b[i]], r.guest_host[f.b[0]]);
        }
        assert_int_not_equal(r.guest_host[0], r.guest_host[2]);
        assert_int_equal(r.net_span[0], 1);
        assert_int_equal(r.net_home[0], r.guest_host[0]);
        px_place_result_fini(&r);
    }
}

static void test_round_robin_is_worse(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 2);
    px_place_result rr, best;
    assert_int_equal(px_place(&f.p, PX_PLACE_ROUND_ROBIN, &rr, NULL), PX_OK);
    assert_int_equal(px_place(&f.p, PX_PLACE_BEST, &best, NULL), PX_OK);
    /* Round robin alternates hosts, so both interleaved nets span both. */
    assert_int_equal(rr.cut, 20);
    assert_int_equal(px_place_cut(&f.p, rr.guest_host), rr.cut);
    assert_true(best.cut < rr.cut);
    px_place_result_fini(&rr);
    px_place_result_fini(&best);
}

static void test_deterministic(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 3);
    px_place_result r1, r2;
    assert_int_equal(px_place(&f.p, PX_PLACE_BEST, &r1, NULL), PX_OK);
    assert_int_equal(px_place(&f.p, PX_PLACE_BEST, &r2, NULL), PX_OK);
    assert_memory_equal(r1.guest_host, r2.guest_host, 8 * sizeof(uint32_t));
    assert_memory_equal(r1.net_home, r2.net_home, 2 * sizeof(uint32_t));
    px_place_result_fini(&r1);
    px_place_result_fini(&r2);
}

static void test_pin_and_capacity_force_a_cut(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 2);
    /* Pin one member of cluster A to the host cluster B is pinned to. */
    f.g[2].pin = 0; /* cluster B member */
    f.g[0].pin = 0; /* cluster A member, same host */
    px_place_result r;
    px_errmsg em;
    assert_int_equal(px_place(&f.p, PX_PLACE_BEST, &r, &em), PX_OK);
    check_capacity(&f.p, &r);
    assert_int_equal(r.guest_host[0], 0);
    assert_int_equal(r.guest_host[2], 0);
    /* Both clusters cannot fit on host 0 together: at least one net is cut. */
    assert_true(r.cut >= 10);
    px_place_result_fini(&r);
}

static void test_colocate_and_anti_affinity(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 3);
    uint32_t co[2] = {0, 2};   /* across clusters */
    uint32_t anti[2] = {1, 4}; /* inside cluster A */
    px_place_group gco = {.n_members = 2, .members = co};
    px_place_group ganti = {.n_members = 2, .members = anti};
    f.p.colocate = &gco;
    f.p.n_colocate = 1;
    f.p.anti = &ganti;
    f.p.n_anti = 1;
    px_place_result r;
    assert_int_equal(px_place(&f.p, PX_PLACE_BEST, &r, NULL), PX_OK);
    check_capacity(&f.p, &r);
    assert_int_equal(r.guest_host[0], r.guest_host[2]);
    assert_int_not_equal(r.guest_host[1], r.guest_host[4]);
    assert_int_equal(px_place_cut(&f.p, r.guest_host), r.cut);
    px_place_result_fini(&r);
}

static void test_errors_name_the_culprit(void **state)
{
    (void)state;
    fixture f;
    px_place_result r;
    px_errmsg em;

    fixture_init(&f, 2);
    f.g[5] = guest("huge", 64, 512);
    assert_int_equal(px_place(&f.p, PX_PLACE_BEST, &r, &em), PX_E_CONFIG);
    assert_non_null(strstr(em.text, "huge"));
    assert_null(r.guest_host);

    fixture_init(&f, 2);
    uint32_t co[2] = {0, 1};
    px_place_group gco = {.n_members = 2, .members = co};
    f.p.colocate = &gco;
    f.p.n_colocate = 1;
    f.g[0].pin = 0;
    f.g[1].pin = 1;
    assert_int_equal(px_place(&f.p, PX_PLACE_BEST, &r, &em), PX_E_CONFIG);
    assert_non_null(strstr(em.text, "pinned"));

    fixture_init(&f, 2);
    uint32_t anti[3] = {0, 1, 2};
    px_place_group ganti = {.n_members = 3, .members = anti};
    f.p.anti = &ganti;
    f.p.n_anti = 1;
    assert_int_equal(px_place(&f.p, PX_PLACE_BEST, &r, &em), PX_E_CONFIG);
    assert_non_null(strstr(em.text, "only 2 hosts"));

    /* Total demand beyond total capacity. */
    fixture_init(&f, 2);
    for (int i = 0; i < 8; i++)
        f.g[i].cpus = 2;
    assert_int_equal(px_place(&f.p, PX_PLACE_BEST, &r, &em), PX_E_CONFIG);

    fixture_init(&f, 0);
    assert_int_equal(px_place(&f.p, PX_PLACE_BEST, &r, &em), PX_E_CONFIG);
    px_place_result_fini(&r);
}

static void test_big_net_ring_expansion(void **state)
{
    (void)state;
    /* 80 guests on one net (past the clique limit), 4 hosts of 20 cpus:
     * the best plan spans all 4 hosts exactly (cut 3). */
    enum { G = 80 };
    px_place_guest g[G];
    uint32_t members[G];
    for (uint32_t i = 0; i < G; i++) {
        g[i] = guest("g", 1, 128);
        members[i] = i;
    }
    px_place_host h[4] = {{"a", 20, 4096}, {"b", 20, 4096}, {"c", 20, 4096}, {"d", 20, 4096}};
    px_place_net n = {.name = "big", .weight = 1, .n_members = G, .members = members};
    px_place_problem p = {
        .n_guests = G, .n_hosts = 4, .n_nets = 1, .guests = g, .hosts = h, .nets = &n};
    px_place_result r;
    assert_int_equal(px_place(&p, PX_PLACE_METIS, &r, NULL), PX_OK);
    check_capacity(&p, &r);
    assert_int_equal(r.cut, 3);
    px_place_result_fini(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clusters_split_cleanly),
        cmocka_unit_test(test_round_robin_is_worse),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_pin_and_capacity_force_a_cut),
        cmocka_unit_test(test_colocate_and_anti_affinity),
        cmocka_unit_test(test_errors_name_the_culprit),
        cmocka_unit_test(test_big_net_ring_expansion),
    };
    return cmocka_run_group_tests_name("place", tests, NULL, NULL);
}
