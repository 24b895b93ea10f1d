/* plexus — what the benchmark drivers (bench/can, bench/eth) print the same
 * way: one-way latency percentiles and the error field of their JSON line.
 * Header-only; each driver includes it once. */
#ifndef PX_BENCH_REPORT_H
#define PX_BENCH_REPORT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int bench_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double bench_pct(const uint32_t *v, size_t n, double p)
{
    if (!n)
        return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i] / 1000.0;
}

/* lat_ns[0..n): a latency per frame in send order, 0 = not received. Writes
 * "seq ns" lines to dump (if not NULL), then the JSON fields period_us,
 * samples, p50/p90/p99/p999/max/mean_us. Sorts lat_ns in place. */
static void bench_print_latency(uint32_t *lat_ns, uint32_t n, uint32_t period_us, const char *dump)
{
    FILE *df = dump ? fopen(dump, "w") : NULL;
    size_t k = 0;
    double sum = 0;
    for (uint32_t i = 0; i < n; i++)
        if (lat_ns[i]) {
            if (df)
                fprintf(df, "%u %u\n", i + 1, lat_ns[i]);
            sum += lat_ns[i];
            lat_ns[k++] = lat_ns[i];
        }
    if (df)
        fclose(df);
    qsort(lat_ns, k, sizeof(*lat_ns), bench_cmp_u32);
    printf(",\"period_us\":%u,\"samples\":%zu,\"p50_us\":%.2f,\"p90_us\":%.2f,\"p99_us\":%.2f,"
           "\"p999_us\":%.2f,\"max_us\":%.2f,\"mean_us\":%.2f",
           period_us, k, bench_pct(lat_ns, k, 0.5), bench_pct(lat_ns, k, 0.9),
           bench_pct(lat_ns, k, 0.99), bench_pct(lat_ns, k, 0.999), k ? lat_ns[k - 1] / 1000.0 : 0,
           k ? sum / (double)k / 1000.0 : 0);
}

/* The ,"error":"..." field (quotes and backslashes made safe) if msg is
 * not empty. */
static void bench_print_error(const char *msg)
{
    if (!msg[0])
        return;
    printf(",\"error\":\"");
    for (const char *p = msg; *p; p++)
        putchar(*p == '"' || *p == '\\' ? '\'' : *p);
    printf("\"");
}

#endif
