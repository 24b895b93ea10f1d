/* plexus plan: place a topology on hosts and explain the result. */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"
#include "plan_util.h"

#define MIB (1024ull * 1024ull)

static bool guest_on_net(const px_topo *t, const px_lab_plan *p, uint32_t g, uint32_t n)
{
    return px_topo_guest_on_net(&t->guests[g], p->nets[n]);
}

static bool in_group(const px_topo_group *gr, uint32_t g)
{
    for (uint32_t i = 0; i < gr->n; i++)
        if (gr->guests[i] == g)
            return true;
    return false;
}

/* Why does net n span more than one host? The first reason that applies. */
static void span_reason(const px_topo *t, const px_lab_plan *p, uint32_t n, char *buf, size_t len)
{
    uint64_t cpus = 0, mem = 0, max_cpus = 0, max_mem = 0;
    for (uint32_t g = 0; g < t->n_guests; g++)
        if (guest_on_net(t, p, g, n)) {
            cpus += t->guests[g].cpus;
            mem += t->guests[g].memory / MIB;
        }
    for (uint32_t h = 0; h < p->n_hosts; h++) {
        if (p->hosts[h].cpus > max_cpus)
            max_cpus = p->hosts[h].cpus;
        if (p->hosts[h].mem_mb > max_mem)
            max_mem = p->hosts[h].mem_mb;
    }
    if (cpus > max_cpus || mem > max_mem) {
        snprintf(buf, len,
                 "its members need %llu cpus and %llu MiB, more than the largest host offers "
                 "(%llu cpus, %llu MiB)",
                 (unsigned long long)cpus, (unsigned long long)mem, (unsigned long long)max_cpus,
                 (unsigned long long)max_mem);
        return;
    }
    for (uint32_t i = 0; i < t->placement.n_pins; i++) {
        const px_topo_pin *a = &t->placement.pins[i];
        if (a->what.type != PX_TOPO_OBJ_GUEST || !guest_on_net(t, p, a->what.index, n))
            continue;
        for (uint32_t j = i + 1; j < t->placement.n_pins; j++) {
            const px_topo_pin *b = &t->placement.pins[j];
            if (b->what.type == PX_TOPO_OBJ_GUEST && b->host != a->host &&
                guest_on_net(t, p, b->what.index, n)) {
                snprintf(buf, len, "members are pinned to different hosts (%s on %s, %s on %s)",
                         t->guests[a->what.index].name, t->hosts[a->host].name,
                         t->guests[b->what.index].name, t->hosts[b->host].name);
                return;
            }
        }
    }
    for (uint32_t i = 0; i < t->placement.n_anti_affinity; i++) {
        const px_topo_group *gr = &t->placement.anti_affinity[i];
        uint32_t a = PX_TOPO_NONE;
        for (uint32_t g = 0; g < t->n_guests; g++) {
            if (!in_group(gr, g) || !guest_on_net(t, p, g, n))
                continue;
            if (a != PX_TOPO_NONE) {
                snprintf(buf, len, "anti-affinity keeps members %s and %s on different hosts",
                         t->guests[a].name, t->guests[g].name);
                return;
            }
            a = g;
        }
    }
    snprintf(buf, len,
             "host capacity: keeping all its members together would split nets that carry "
             "more traffic");
}

static void print_text(const px_topo *t, const px_lab_plan *p, bool explain)
{
    printf("lab %s: %u guests, %u nets on %u hosts; cut %llu (%s)\n", t->name, t->n_guests,
           p->n_nets, p->n_hosts, (unsigned long long)p->cut, px_place_method_name(p->method));
    for (uint32_t h = 0; h < p->n_hosts; h++) {
        uint64_t cpus = 0, mem = 0;
        for (uint32_t g = 0; g < t->n_guests; g++)
            if (p->guest_host[g] == h) {
                cpus += t->guests[g].cpus;
                mem += t->guests[g].memory / MIB;
            }
        printf("\nhost %s: cpus %llu/%u, memory %llu/%llu MiB\n", p->hosts[h].name,
               (unsigned long long)cpus, p->hosts[h].cpus, (unsigned long long)mem,
               (unsigned long long)p->hosts[h].mem_mb);
        printf("  guests:");
        for (uint32_t g = 0; g < t->n_guests; g++)
            if (p->guest_host[g] == h)
                printf(" %s", t->guests[g].name);
        printf("\n  homes: ");
        for (uint32_t n = 0; n < p->n_nets; n++)
            if (p->net_home[n] == h)
                printf(" %s", px_topo_ref_name(t, p->nets[n]));
        printf("\n");
    }
    if (!explain)
        return;
    printf("\nnets:\n");
    for (uint32_t n = 0; n < p->n_nets; n++) {
        printf("  %s (%s, weight %u): %u member%s on %u host%s (", px_topo_ref_name(t, p->nets[n]),
               px_cli_net_kind(p->nets[n].type), p->net_weight[n], p->net_members[n],
               p->net_members[n] == 1 ? "" : "s", p->net_span[n], p->net_span[n] == 1 ? "" : "s");
        bool first = true;
        for (uint32_t h = 0; h < p->n_hosts; h++) {
            bool on = false;
            for (uint32_t g = 0; g < t->n_guests && !on; g++)
                on = p->guest_host[g] == h && guest_on_net(t, p, g, n);
            if (on) {
                printf("%s%s", first ? "" : ", ", p->hosts[h].name);
                first = false;
            }
        }
        printf("), home %s\n", p->hosts[p->net_home[n]].name);
        if (p->net_span[n] > 1) {
            char why[256];
            span_reason(t, p, n, why, sizeof(why));
            printf("    crosses hosts: %s\n", why);
        }
    }
}

static void print_json(const px_topo *t, const px_lab_plan *p)
{
    printf("{\"lab\":");
    px_cli_json_str(stdout, t->name);
    printf(",\"cut\":%llu,\"method\":\"%s\",\"hosts\":[", (unsigned long long)p->cut,
           px_place_method_name(p->method));
    for (uint32_t h = 0; h < p->n_hosts; h++) {
        printf("%s{\"name\":", h ? "," : "");
        px_cli_json_str(stdout, p->hosts[h].name);
        printf(",\"cpus\":%u,\"memory_mib\":%llu,\"guests\":[", p->hosts[h].cpus,
               (unsigned long long)p->hosts[h].mem_mb);
        bool first = true;
        for (uint32_t g = 0; g < t->n_guests; g++)
            if (p->guest_host[g] == h) {
                printf("%s", first ? "" : ",");
                px_cli_json_str(stdout, t->guests[g].name);
                first = false;
            }
        printf("]}");
    }
    printf("],\"nets\":[");
    for (uint32_t n = 0; n < p->n_nets; n++) {
        printf("%s{\"name\":", n ? "," : "");
        px_cli_json_str(stdout, px_topo_ref_name(t, p->nets[n]));
        printf(",\"kind\":\"%s\",\"weight\":%u,\"members\":%u,\"span\":%u,\"home\":",
               px_cli_net_kind(p->nets[n].type), p->net_weight[n], p->net_members[n],
               p->net_span[n]);
        px_cli_json_str(stdout, p->hosts[p->net_home[n]].name);
        if (p->net_span[n] > 1) {
            char why[256];
            span_reason(t, p, n, why, sizeof(why));
            printf(",\"why\":");
            px_cli_json_str(stdout, why);
        }
        printf("}");
    }
    printf("]}\n");
}

static int run(px_cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"hosts", required_argument, NULL, 'n'},
        {"explain", no_argument, NULL, 'e'},
        {NULL, 0, NULL, 0},
    };
    uint32_t n_hosts = PX_CLI_SIM_HOSTS_DEFAULT;
    bool explain = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "n:e", opts, NULL)) != -1) {
        if (c == 'n') {
            int rc = px_cli_parse_hosts(cli, "plan", optarg, &n_hosts);
            if (rc)
                return rc;
        } else if (c == 'e') {
            explain = true;
        } else {
            return px_cli_usage(cli, "plan", "bad option");
        }
    }
    if (optind + 1 != argc)
        return px_cli_usage(cli, "plan", "expected exactly one topology FILE");
    px_topo *t;
    px_lab_plan p;
    int rc = px_cli_plan_file(cli, "plan", argv[optind], n_hosts, &t, &p);
    if (rc)
        return rc;
    if (cli->json)
        print_json(t, &p);
    else
        print_text(t, &p, explain);
    px_lab_plan_fini(&p);
    px_topo_free(t);
    return PX_EXIT_OK;
}

const px_cli_cmd px_cmd_plan = {
    .name = "plan",
    .summary = "place a lab's guests on hosts and explain what crosses hosts",
    .help = "usage: plexus [--json] plan FILE [--hosts N] [--explain]\n"
            "\n"
            "Place the guests of a topology on hosts the way the coordinator would:\n"
            "each net (CAN bus, Ethernet segment, ivshmem region, CXL switch) should\n"
            "span as few hosts as capacity, pins and anti-affinity allow, weighted by\n"
            "its expected traffic. Prints, per host, its guests, load and the nets\n"
            "homed there.\n"
            "\n"
            "options:\n"
            "  --hosts N    simulated hosts when the file has no hosts: section\n"
            "               (default 2; each may use all CPUs x4, memory split evenly)\n"
            "  --explain    also list every net: its hosts, its home and, when it\n"
            "               crosses hosts, why\n"
            "  --json       machine-readable plan\n"
            "\n"
            "example:\n"
            "  plexus plan configs/quickstart.yaml --explain\n",
    .run = run,
};
