/* plexus graph: draw a lab plan (hosts, their guests, the nets homed on
 * them, every attachment) as Graphviz dot or as a Mermaid flowchart. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "plan_util.h"

typedef enum graph_format { GRAPH_DOT = 0, GRAPH_MERMAID } graph_format;

/* Host colours by host index, repeating after the last. Light enough for
 * black text, and none of them red: red marks what crosses hosts. */
static const char *const palette[] = {
    "#a6cee3", "#b2df8a", "#fdbf6f", "#cab2d6", "#ffff99", "#8dd3c7",
    "#bebada", "#80b1d3", "#ccebc5", "#d9d9d9", "#fccde5", "#e5d8bd",
};
#define N_PALETTE  (sizeof(palette) / sizeof(palette[0]))
#define CUT_COLOUR "#d00000"

static const char *host_colour(uint32_t h)
{
    return palette[h % N_PALETTE];
}

/* A guest has at most PX_TOPO_MAX_ATTACH entries in each of its four
 * attachment lists. */
#define MAX_GUEST_ATTACH (4 * PX_TOPO_MAX_ATTACH)

typedef struct graph {
    const px_topo *t;
    const px_lab_plan *p;
    /* Plan net index of every net object, so an attachment finds its net
     * in O(1): slot[base[type] + index]; PX_TOPO_NONE if not planned. */
    uint32_t base[4];
    uint32_t *slot;
    /* Per guest, the plan nets of its attachments, one entry each. */
    uint32_t attach[MAX_GUEST_ATTACH];
} graph;

static int type_ix(px_topo_obj o)
{
    switch (o) {
    case PX_TOPO_OBJ_CAN_BUS:
        return 0;
    case PX_TOPO_OBJ_ETH_SEGMENT:
        return 1;
    case PX_TOPO_OBJ_IVSHMEM:
        return 2;
    case PX_TOPO_OBJ_CXL_SWITCH:
        return 3;
    default:
        return -1;
    }
}

static px_err graph_init(graph *g, const px_topo *t, const px_lab_plan *p)
{
    uint32_t count[4] = {t->n_can_buses, t->n_eth_segments, t->n_ivshmem, t->n_cxl_switches};
    uint32_t total = 0;
    memset(g, 0, sizeof(*g));
    g->t = t;
    g->p = p;
    for (int i = 0; i < 4; i++) {
        g->base[i] = total;
        total += count[i];
    }
    g->slot = malloc((total ? total : 1) * sizeof(*g->slot));
    if (!g->slot)
        return PX_E_NOMEM;
    for (uint32_t i = 0; i < total; i++)
        g->slot[i] = PX_TOPO_NONE;
    for (uint32_t n = 0; n < p->n_nets; n++) {
        int ix = type_ix(p->nets[n].type);
        if (ix >= 0 && p->nets[n].index < count[ix])
            g->slot[g->base[ix] + p->nets[n].index] = n;
    }
    return PX_OK;
}

static void graph_fini(graph *g)
{
    free(g->slot);
}

static void add_attach(graph *g, uint32_t *n, px_topo_obj type, uint32_t index)
{
    uint32_t s = g->slot[g->base[type_ix(type)] + index];
    if (s != PX_TOPO_NONE && *n < MAX_GUEST_ATTACH)
        g->attach[(*n)++] = s;
}

/* Fill g->attach with the plan nets guest gi is attached to, in the order
 * the attachments are listed (NICs, CAN, ivshmem, CXL); returns how many. */
static uint32_t guest_attach(graph *g, uint32_t gi)
{
    const px_topo_guest *gu = &g->t->guests[gi];
    uint32_t n = 0;
    for (uint32_t i = 0; i < gu->n_nics; i++)
        add_attach(g, &n, PX_TOPO_OBJ_ETH_SEGMENT, gu->nics[i].segment);
    for (uint32_t i = 0; i < gu->n_cans; i++)
        add_attach(g, &n, PX_TOPO_OBJ_CAN_BUS, gu->cans[i].bus);
    for (uint32_t i = 0; i < gu->n_shms; i++)
        add_attach(g, &n, PX_TOPO_OBJ_IVSHMEM, gu->shms[i].region);
    for (uint32_t i = 0; i < gu->n_cxls; i++)
        add_attach(g, &n, PX_TOPO_OBJ_CXL_SWITCH, gu->cxls[i].sw);
    return n;
}

static bool host_empty(const graph *g, uint32_t h)
{
    for (uint32_t i = 0; i < g->t->n_guests; i++)
        if (g->p->guest_host[i] == h)
            return false;
    for (uint32_t n = 0; n < g->p->n_nets; n++)
        if (g->p->net_home[n] == h)
            return false;
    return true;
}

/* ---- Graphviz dot ---- */

/* The inside of a dot double-quoted string. Names are [A-Za-z0-9_.-] today,
 * but the output must stay valid whatever a name holds: '"' and '\' are
 * escaped, a line break becomes the \n escape. */
static void dot_esc(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
}

static void dot_str(FILE *f, const char *s)
{
    fputc('"', f);
    dot_esc(f, s);
    fputc('"', f);
}

static const char *dot_shape(px_topo_obj o)
{
    switch (o) {
    case PX_TOPO_OBJ_CAN_BUS:
        return "ellipse";
    case PX_TOPO_OBJ_ETH_SEGMENT:
        return "hexagon";
    case PX_TOPO_OBJ_IVSHMEM:
        return "cylinder";
    default:
        return "octagon";
    }
}

static void dot_net(FILE *f, const graph *g, uint32_t n, uint32_t h)
{
    const px_lab_plan *p = g->p;
    const char *name = px_topo_ref_name(g->t, p->nets[n]);
    fputs("        ", f);
    dot_str(f, name);
    fprintf(f, " [shape=\"%s\", fillcolor=\"%s\", label=\"", dot_shape(p->nets[n].type),
            host_colour(h));
    dot_esc(f, name);
    fprintf(f, "\\n%s", px_cli_net_kind(p->nets[n].type));
    if (p->net_span[n] > 1)
        fprintf(f,
                "\\ncrosses %u hosts\", style=\"filled,bold\", color=\"%s\", penwidth=3, "
                "fontcolor=\"%s\"];\n",
                p->net_span[n], CUT_COLOUR, CUT_COLOUR);
    else
        fputs("\"];\n", f);
}

static void print_dot(FILE *f, graph *g)
{
    const px_topo *t = g->t;
    const px_lab_plan *p = g->p;
    fprintf(f, "// plexus graph: lab %s, %u guests, %u nets on %u hosts; cut %llu (%s)\n", t->name,
            t->n_guests, p->n_nets, p->n_hosts, (unsigned long long)p->cut,
            px_place_method_name(p->method));
    fputs("graph ", f);
    dot_str(f, t->name);
    fputs(" {\n    graph [rankdir=\"LR\", fontname=\"Helvetica\", labelloc=\"t\", label=\"lab ", f);
    dot_esc(f, t->name);
    fprintf(f, ": cut %llu\"];\n", (unsigned long long)p->cut);
    fputs("    node [fontname=\"Helvetica\", style=\"filled\"];\n", f);
    for (uint32_t h = 0; h < p->n_hosts; h++) {
        fputs("    subgraph \"cluster_", f);
        dot_esc(f, p->hosts[h].name);
        fputs("\" {\n        label=", f);
        dot_str(f, p->hosts[h].name);
        fprintf(f, ";\n        style=\"rounded\";\n        color=\"%s\";\n        penwidth=2;\n",
                host_colour(h));
        for (uint32_t i = 0; i < t->n_guests; i++)
            if (p->guest_host[i] == h) {
                fputs("        ", f);
                dot_str(f, t->guests[i].name);
                fprintf(f, " [shape=\"box\", fillcolor=\"%s\"];\n", host_colour(h));
            }
        for (uint32_t n = 0; n < p->n_nets; n++)
            if (p->net_home[n] == h)
                dot_net(f, g, n, h);
        /* Graphviz draws no empty cluster; a host with nothing planned on
         * it should still show. The id has a space, so it can never be a
         * guest or net name. */
        if (host_empty(g, h)) {
            fputs("        \"empty ", f);
            dot_esc(f, p->hosts[h].name);
            fputs("\" [shape=\"plaintext\", style=\"\", label=\"(nothing placed)\"];\n", f);
        }
        fputs("    }\n", f);
    }
    for (uint32_t i = 0; i < t->n_guests; i++) {
        uint32_t na = guest_attach(g, i);
        for (uint32_t a = 0; a < na; a++) {
            uint32_t n = g->attach[a];
            fputs("    ", f);
            dot_str(f, t->guests[i].name);
            fputs(" -- ", f);
            dot_str(f, px_topo_ref_name(t, p->nets[n]));
            /* The attachment leaves its host: its frames cross the fabric. */
            if (p->guest_host[i] != p->net_home[n])
                fprintf(f, " [color=\"%s\", style=\"dashed\", penwidth=2]", CUT_COLOUR);
            fputs(";\n", f);
        }
    }
    fputs("}\n", f);
}

/* ---- Mermaid ---- */

/* Mermaid ids are [A-Za-z0-9_]. A letter and the object's index come first
 * (g guest, n net, h host), so ids are unique whatever names sanitise to,
 * never a keyword such as "end", and never start with the 'o' or 'x' that
 * would turn "---" into a circle or cross edge. The name follows for
 * readability, anything else mapped to '_'. */
static void mm_id(FILE *f, char kind, uint32_t index, const char *name)
{
    fprintf(f, "%c%u_", kind, index);
    for (; *name; name++) {
        char c = *name;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        fputc(ok ? c : '_', f);
    }
}

/* Text inside a Mermaid "..." label: the quote and HTML specials become
 * Mermaid entity codes. */
static void mm_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '"':
            fputs("#quot;", f);
            break;
        case '#':
            fputs("#35;", f);
            break;
        case '<':
            fputs("#lt;", f);
            break;
        case '>':
            fputs("#gt;", f);
            break;
        case '&':
            fputs("#amp;", f);
            break;
        case '\n':
            fputs("<br/>", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

static void mm_net(FILE *f, const graph *g, uint32_t n)
{
    const px_lab_plan *p = g->p;
    const char *name = px_topo_ref_name(g->t, p->nets[n]);
    const char *open, *close;
    switch (p->nets[n].type) {
    case PX_TOPO_OBJ_CAN_BUS:
        open = "([\"", close = "\"])"; /* stadium */
        break;
    case PX_TOPO_OBJ_ETH_SEGMENT:
        open = "{{\"", close = "\"}}"; /* hexagon */
        break;
    case PX_TOPO_OBJ_IVSHMEM:
        open = "[(\"", close = "\")]"; /* cylinder */
        break;
    default:
        open = "((\"", close = "\"))"; /* circle */
        break;
    }
    fputs("        ", f);
    mm_id(f, 'n', n, name);
    fputs(open, f);
    mm_text(f, name);
    fprintf(f, "<br/>%s", px_cli_net_kind(p->nets[n].type));
    if (p->net_span[n] > 1)
        fprintf(f, "<br/>crosses %u hosts", p->net_span[n]);
    fprintf(f, "%s\n", close);
}

static void print_mermaid(FILE *f, graph *g)
{
    const px_topo *t = g->t;
    const px_lab_plan *p = g->p;
    fprintf(f, "%%%% plexus graph: lab %s, %u guests, %u nets on %u hosts; cut %llu (%s)\n",
            t->name, t->n_guests, p->n_nets, p->n_hosts, (unsigned long long)p->cut,
            px_place_method_name(p->method));
    fputs("flowchart LR\n", f);
    for (uint32_t h = 0; h < p->n_hosts; h++) {
        fputs("    subgraph ", f);
        mm_id(f, 'h', h, p->hosts[h].name);
        fputs(" [\"", f);
        mm_text(f, p->hosts[h].name);
        fputs("\"]\n", f);
        for (uint32_t i = 0; i < t->n_guests; i++)
            if (p->guest_host[i] == h) {
                fputs("        ", f);
                mm_id(f, 'g', i, t->guests[i].name);
                fputs("[\"", f);
                mm_text(f, t->guests[i].name);
                fputs("\"]\n", f);
            }
        for (uint32_t n = 0; n < p->n_nets; n++)
            if (p->net_home[n] == h)
                mm_net(f, g, n);
        if (host_empty(g, h))
            fprintf(f, "        e%u[\"(nothing placed)\"]\n", h);
        fputs("    end\n", f);
    }
    /* Edges are numbered in the order they are written; linkStyle below
     * refers to the cross-host ones by that number. */
    uint32_t n_edges = 0, n_cross = 0;
    for (uint32_t i = 0; i < t->n_guests; i++) {
        uint32_t na = guest_attach(g, i);
        for (uint32_t a = 0; a < na; a++) {
            uint32_t n = g->attach[a];
            fputs("    ", f);
            mm_id(f, 'g', i, t->guests[i].name);
            fputs(" --- ", f);
            mm_id(f, 'n', n, px_topo_ref_name(t, p->nets[n]));
            fputc('\n', f);
        }
    }
    for (uint32_t h = 0; h < p->n_hosts; h++)
        fprintf(f, "    classDef host%u fill:%s,stroke:#333,color:#000\n", h, host_colour(h));
    fprintf(f, "    classDef cut stroke:%s,stroke-width:3px,color:%s\n", CUT_COLOUR, CUT_COLOUR);
    for (uint32_t i = 0; i < t->n_guests; i++) {
        fputs("    class ", f);
        mm_id(f, 'g', i, t->guests[i].name);
        fprintf(f, " host%u\n", p->guest_host[i]);
    }
    for (uint32_t n = 0; n < p->n_nets; n++) {
        fputs("    class ", f);
        mm_id(f, 'n', n, px_topo_ref_name(t, p->nets[n]));
        fprintf(f, " host%u\n", p->net_home[n]);
        if (p->net_span[n] > 1) {
            fputs("    class ", f);
            mm_id(f, 'n', n, px_topo_ref_name(t, p->nets[n]));
            fputs(" cut\n", f);
        }
    }
    for (uint32_t i = 0; i < t->n_guests; i++) {
        uint32_t na = guest_attach(g, i);
        for (uint32_t a = 0; a < na; a++, n_edges++) {
            if (p->guest_host[i] == p->net_home[g->attach[a]])
                continue;
            fprintf(f, "%s%u", n_cross ? "," : "    linkStyle ", n_edges);
            n_cross++;
        }
    }
    if (n_cross)
        fprintf(f, " stroke:%s,stroke-width:2px,stroke-dasharray:5 5\n", CUT_COLOUR);
}

static int run(px_cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"format", required_argument, NULL, 'f'},
        {"hosts", required_argument, NULL, 'n'},
        {NULL, 0, NULL, 0},
    };
    uint32_t n_hosts = PX_CLI_SIM_HOSTS_DEFAULT;
    graph_format format = GRAPH_DOT;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:n:", opts, NULL)) != -1) {
        if (c == 'f') {
            if (strcmp(optarg, "dot") == 0)
                format = GRAPH_DOT;
            else if (strcmp(optarg, "mermaid") == 0)
                format = GRAPH_MERMAID;
            else
                return px_cli_usage(cli, "graph", "unknown format '%s'; expected dot or mermaid",
                                    optarg);
        } else if (c == 'n') {
            int rc = px_cli_parse_hosts(cli, "graph", optarg, &n_hosts);
            if (rc)
                return rc;
        } else {
            return px_cli_usage(cli, "graph", "bad option");
        }
    }
    if (optind + 1 != argc)
        return px_cli_usage(cli, "graph", "expected exactly one topology FILE");
    px_topo *t;
    px_lab_plan p;
    int rc = px_cli_plan_file(cli, "graph", argv[optind], n_hosts, &t, &p);
    if (rc)
        return rc;
    graph g;
    if (graph_init(&g, t, &p) != PX_OK) {
        rc = px_cli_fail(cli, "graph", NULL, "out of memory");
        goto out_plan;
    }
    if (format == GRAPH_MERMAID)
        print_mermaid(stdout, &g);
    else
        print_dot(stdout, &g);
    if (fflush(stdout) != 0 || ferror(stdout))
        rc = px_cli_fail(cli, "graph", NULL, "could not write the graph to standard output");
    graph_fini(&g);
out_plan:
    px_lab_plan_fini(&p);
    px_topo_free(t);
    return rc;
}

const px_cli_cmd px_cmd_graph = {
    .name = "graph",
    .summary = "draw a lab's plan (hosts, guests, nets) as Graphviz dot or Mermaid",
    .help = "usage: plexus graph FILE [--format dot|mermaid] [--hosts N]\n"
            "\n"
            "Plan a topology exactly as 'plexus plan' does and print the result as a\n"
            "graph on standard output: one cluster per host, labelled with its name,\n"
            "holding the guests placed there and the nets homed there, and one edge\n"
            "per attachment (NIC, CAN controller, ivshmem device, CXL port) between a\n"
            "guest and its net.\n"
            "\n"
            "Guests are boxes. Nets are drawn by kind: CAN bus an ellipse (a stadium\n"
            "in Mermaid), Ethernet segment a hexagon, ivshmem region a cylinder, CXL\n"
            "switch an octagon (a circle in Mermaid); the kind is also in the label.\n"
            "Each host's guests and nets share a colour from a fixed palette, by host\n"
            "order. A net whose members are on more than one host is outlined bold\n"
            "red and labelled \"crosses N hosts\"; an attachment whose guest is not on\n"
            "the net's home host is a dashed red edge. 'plexus plan FILE --explain'\n"
            "says why a net crosses hosts.\n"
            "\n"
            "options:\n"
            "  --format dot      Graphviz (default): every identifier quoted, one\n"
            "                    'subgraph \"cluster_HOST\"' per host\n"
            "  --format mermaid  a Mermaid 'flowchart LR': one subgraph per host,\n"
            "                    ids reduced to [A-Za-z0-9_] and prefixed (g guest,\n"
            "                    n net, h host) with the real names as labels, a\n"
            "                    classDef per host colour and 'cut' for crossing nets\n"
            "  --hosts N         simulated hosts when the file has no hosts: section\n"
            "                    (default 2; as for 'plexus plan')\n"
            "\n"
            "The global --json has no effect: both formats are already for tools.\n"
            "\n"
            "exit status: 0 graph printed, 1 the file is invalid (FILE:LINE:COL on\n"
            "stderr) or cannot be planned, 2 bad usage.\n"
            "\n"
            "examples:\n"
            "  plexus graph configs/quickstart.yaml | dot -Tsvg -o quickstart.svg\n"
            "  plexus graph configs/can-ecus.yaml --hosts 3 --format mermaid > ecus.mmd\n",
    .run = run,
};
