/* bench/placement: plan a large clustered lab and compare the weighted cut
 * with a round-robin and a greedy-plus-refinement baseline in the same run.
 *
 *   bench_placement [--guests N] [--nets N] [--hosts N] [--seed S]
 *
 * Targets (issue: placement): plan in under 1 s; cut no worse than
 * greedy+refine and at most 0.15 x round robin; no host over capacity. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coordinator/place.h"

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
    /* xorshift64*: deterministic for a seed, good enough for a workload. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ULL) >> 33) % n;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int over_capacity(const px_place_problem *p, const uint32_t *gh)
{
    uint64_t *cpu = calloc(p->n_hosts, sizeof(*cpu)), *mem = calloc(p->n_hosts, sizeof(*mem));
    int over = 0;
    for (uint32_t g = 0; g < p->n_guests; g++) {
        cpu[gh[g]] += p->guests[g].cpus;
        mem[gh[g]] += p->guests[g].mem_mb;
    }
    for (uint32_t h = 0; h < p->n_hosts; h++)
        if (cpu[h] > p->hosts[h].cpus || mem[h] > p->hosts[h].mem_mb)
            over++;
    free(cpu);
    free(mem);
    return over;
}

int main(int argc, char **argv)
{
    uint32_t G = 1000, N = 200, H = 16, seed = 42;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--guests"))
            G = (uint32_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--nets"))
            N = (uint32_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--hosts"))
            H = (uint32_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seed"))
            seed = (uint32_t)atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: %s [--guests N] [--nets N] [--hosts N] [--seed S]\n", argv[0]);
            return 2;
        }
    }
    if (G == 0 || H == 0) {
        fprintf(stderr, "bench_placement: --guests and --hosts must be positive\n");
        return 2;
    }
    rng_state = 0x9E3779B97F4A7C15ULL ^ seed;

    /* Clusters of guests (a test rig, an ECU domain): most of a net's members
     * come from one cluster, some from anywhere. */
    uint32_t C = H + H / 4;
    px_place_guest *guests = calloc(G, sizeof(*guests));
    px_place_host *hosts = calloc(H, sizeof(*hosts));
    px_place_net *nets = calloc(N, sizeof(*nets));
    uint32_t *members = calloc((size_t)N * 24, sizeof(*members));
    static const uint64_t mems[] = {256, 512, 1024, 2048};
    uint64_t tot_cpu = 0, tot_mem = 0;
    for (uint32_t g = 0; g < G; g++) {
        guests[g] = (px_place_guest){
            .name = "g", .cpus = 1 + rnd(4), .mem_mb = mems[rnd(4)], .pin = PX_PLACE_NONE};
        tot_cpu += guests[g].cpus;
        tot_mem += guests[g].mem_mb;
    }
    for (uint32_t h = 0; h < H; h++)
        hosts[h] = (px_place_host){.name = "h",
                                   .cpus = (uint32_t)(tot_cpu * 12 / 10 / H + 4),
                                   .mem_mb = tot_mem * 12 / 10 / H + 2048};
    uint32_t per_cluster = G / C ? G / C : 1;
    for (uint32_t n = 0; n < N; n++) {
        uint32_t c = n % C, k = 3 + rnd(18);
        uint32_t *m = members + (size_t)n * 24;
        for (uint32_t i = 0; i < k; i++) {
            if (rnd(10) == 0)
                m[i] = rnd(G);
            else
                m[i] = (c * per_cluster + rnd(per_cluster)) % G;
        }
        nets[n] = (px_place_net){.name = "n", .weight = 1 + rnd(10), .n_members = k, .members = m};
    }
    px_place_problem p = {
        .n_guests = G, .n_hosts = H, .n_nets = N, .guests = guests, .hosts = hosts, .nets = nets};

    px_place_result plan, rr, greedy;
    px_errmsg em = {{0}};
    double t0 = now_s();
    px_err err = px_place(&p, PX_PLACE_BEST, &plan, &em);
    double t_plan = now_s() - t0;
    if (err) {
        fprintf(stderr, "bench_placement: plan failed: %s\n", em.text);
        return 1;
    }
    t0 = now_s();
    if (px_place(&p, PX_PLACE_ROUND_ROBIN, &rr, &em) ||
        px_place(&p, PX_PLACE_GREEDY, &greedy, &em)) {
        fprintf(stderr, "bench_placement: baseline failed: %s\n", em.text);
        return 1;
    }
    double t_base = now_s() - t0;

    double r_rr = rr.cut ? (double)plan.cut / (double)rr.cut : 0.0;
    double r_gr = greedy.cut ? (double)plan.cut / (double)greedy.cut : 0.0;
    int over = over_capacity(&p, plan.guest_host);
    printf("placement: %u guests, %u nets, %u hosts (clustered membership, seed %u)\n", G, N, H,
           seed);
    printf("  %-26s %10s %10s\n", "method", "cut", "vs plan");
    printf("  %-26s %10llu %10s   (%s, %.3f s)\n", "plan", (unsigned long long)plan.cut, "1.00",
           px_place_method_name(plan.method), t_plan);
    printf("  %-26s %10llu %10.2f\n", "greedy+refine baseline", (unsigned long long)greedy.cut,
           plan.cut ? (double)greedy.cut / (double)plan.cut : 0.0);
    printf("  %-26s %10llu %10.2f   (baselines %.3f s)\n", "round-robin baseline",
           (unsigned long long)rr.cut, plan.cut ? (double)rr.cut / (double)plan.cut : 0.0, t_base);
    printf("ratios: plan/round-robin = %.3f (target <= 0.15: %s), plan/greedy = %.3f (target <= "
           "1.00: %s)\n",
           r_rr, r_rr <= 0.15 ? "met" : "MISSED", r_gr, plan.cut <= greedy.cut ? "met" : "MISSED");
    printf("plan time %.3f s (target < 1 s: %s); hosts over capacity: %d\n", t_plan,
           t_plan < 1.0 ? "met" : "MISSED", over);

    px_place_result_fini(&plan);
    px_place_result_fini(&rr);
    px_place_result_fini(&greedy);
    free(guests);
    free(hosts);
    free(nets);
    free(members);
    return over ? 1 : 0;
}
