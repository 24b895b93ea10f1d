/* plexus CLI — printing lab, guest and node tables (text and JSON). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "status_print.h"

static void json_pstr(px_str s)
{
    char buf[4200];
    px_str_copy(buf, sizeof(buf), s);
    px_cli_json_str(stdout, buf);
}

#define S(x) (int)(x).len, (x).ptr

void px_print_labs(const px_msg_reply *r)
{
    if (!r->n_labs) {
        printf("no labs\n");
        return;
    }
    printf("%-20s %-10s %6s %7s %-11s %s\n", "LAB", "STATE", "EPOCH", "GUESTS", "ON-LOSS",
           "MESSAGE");
    for (uint32_t i = 0; i < r->n_labs; i++) {
        const px_lab_row *l = &r->labs[i];
        printf("%-20.*s %-10.*s %6llu %7u %-11.*s %.*s\n", S(l->name), S(l->state),
               (unsigned long long)l->epoch, l->guests, S(l->policy), S(l->message));
    }
}

void px_print_guests(const px_msg_reply *r)
{
    if (!r->n_guests)
        return;
    printf("\n%-20s %-16s %-16s %-10s %s\n", "GUEST", "LAB", "HOST", "STATE", "DETAIL");
    for (uint32_t i = 0; i < r->n_guests; i++) {
        const px_guest_row *g = &r->guests[i];
        printf("%-20.*s %-16.*s %-16.*s %-10.*s %.*s\n", S(g->name), S(g->lab), S(g->host),
               S(g->state), S(g->detail));
    }
}

void px_print_nodes(const px_msg_reply *r)
{
    if (!r->n_nodes) {
        printf("no nodes registered\n");
        return;
    }
    printf("%-16s %-8s %6s %5s %9s %8s %6s %8s  %-22s %s\n", "NODE", "STATE", "GUESTS", "CPUS",
           "MEMORY", "SEEN", "LINKS", "RTT", "FEATURES", "DATA ENDPOINT");
    for (uint32_t i = 0; i < r->n_nodes; i++) {
        const px_node_row *n = &r->nodes[i];
        char feat[128] = "";
        size_t k = 0;
        for (uint32_t f = 0; f < n->n_features && k + 2 < sizeof(feat); f++) {
            int w = snprintf(feat + k, sizeof(feat) - k, "%s%.*s", f ? "," : "", S(n->features[f]));
            if (w > 0)
                k += (size_t)w;
        }
        char links[24];
        snprintf(links, sizeof(links), "%u/%u", n->links_up, n->links_total);
        printf("%-16.*s %-8.*s %6u %5u %8lluM %7.1fs %6s %6uus  %-22s %.*s\n", S(n->name),
               S(n->state), n->guests, n->cpus, (unsigned long long)n->mem_mb,
               (double)n->seen_ms_ago / 1000.0, links, n->rtt_us, feat[0] ? feat : "-",
               S(n->endpoint));
    }
}

void px_print_json(const px_msg_reply *r, bool labs, bool nodes)
{
    printf("{");
    if (labs) {
        printf("\"labs\":[");
        for (uint32_t i = 0; i < r->n_labs; i++) {
            const px_lab_row *l = &r->labs[i];
            printf("%s{\"name\":", i ? "," : "");
            json_pstr(l->name);
            printf(",\"state\":");
            json_pstr(l->state);
            printf(",\"epoch\":%llu,\"guests\":%u,\"policy\":", (unsigned long long)l->epoch,
                   l->guests);
            json_pstr(l->policy);
            printf(",\"message\":");
            json_pstr(l->message);
            printf("}");
        }
        printf("],\"guests\":[");
        for (uint32_t i = 0; i < r->n_guests; i++) {
            const px_guest_row *g = &r->guests[i];
            printf("%s{\"name\":", i ? "," : "");
            json_pstr(g->name);
            printf(",\"lab\":");
            json_pstr(g->lab);
            printf(",\"host\":");
            json_pstr(g->host);
            printf(",\"state\":");
            json_pstr(g->state);
            printf(",\"detail\":");
            json_pstr(g->detail);
            printf("}");
        }
        printf("]%s", nodes ? "," : "");
    }
    if (nodes) {
        printf("\"nodes\":[");
        for (uint32_t i = 0; i < r->n_nodes; i++) {
            const px_node_row *n = &r->nodes[i];
            printf("%s{\"name\":", i ? "," : "");
            json_pstr(n->name);
            printf(",\"state\":");
            json_pstr(n->state);
            printf(",\"endpoint\":");
            json_pstr(n->endpoint);
            printf(",\"cpus\":%u,\"memory_mib\":%llu,\"guests\":%u,\"seen_ms_ago\":%llu,"
                   "\"links_up\":%u,\"links_total\":%u,\"rtt_us\":%u,\"features\":[",
                   n->cpus, (unsigned long long)n->mem_mb, n->guests,
                   (unsigned long long)n->seen_ms_ago, n->links_up, n->links_total, n->rtt_us);
            for (uint32_t f = 0; f < n->n_features; f++) {
                printf("%s", f ? "," : "");
                json_pstr(n->features[f]);
            }
            printf("]}");
        }
        printf("]");
    }
    printf("}\n");
}
