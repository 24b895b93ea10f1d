/* plexus capture: frames of an Ethernet segment to a pcap file or a pipe
 * (docs/ethernet.md, "Capture").
 *
 * A TOOL "capture open" makes every node of the segment admit this CLI's
 * key and name its data endpoint. The CLI then joins a capture at each node
 * (CAP_JOIN with the filter, renewed every second) and receives CAPTURE
 * records. Each frame is captured once, on the node where it entered the
 * segment (or, with -i, where it passed the port), stamped with that
 * node's wall clock. Records are merged by timestamp through a short
 * reorder window, so one file holds the whole segment in time order.
 */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <pcap/pcap.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <uv.h>

#include "cli.h"
#include "fabric/core/transport.h"
#include "fabric/eth-hub/frame.h"
#include "fabric/eth-hub/rec.h"
#include "fabric/eth-hub/proto.h"
#include "fabric/core/wire.h"
#include "toolctx.h"

#define MAX_NODES 64u
#define WINDOW_NS 500000000ull /* records older than this are written */
#define RENEW_MS  1000u
#define LINGER_MS 200u

static const char help_capture[] =
    "usage: plexus capture SEGMENT [-i PORT] [-f FILTER] -w FILE [-c N]\n"
    "                      [--duration SECONDS] [--lab LAB]\n"
    "\n"
    "Capture the frames of an Ethernet segment, on every host it spans, into one\n"
    "pcap file merged by timestamp (like tcpdump -w on a bridge).\n"
    "\n"
    "options:\n"
    "  -w FILE            write pcap to FILE; '-' writes to standard output (a pipe,\n"
    "                     e.g. into 'tshark -r -' or 'wireshark -k -i -')\n"
    "  -i GUEST:ethN      only the frames through that port, both ways (default:\n"
    "                     every frame of the segment, once, where it entered)\n"
    "  -f FILTER          a pcap filter expression, as for tcpdump ('icmp', 'arp or\n"
    "                     port 53', 'vlan 10'); compiled by libpcap\n"
    "  -c N               stop after N frames\n"
    "  --duration S       stop after S seconds (default: until Ctrl-C)\n"
    "  --lab LAB          the lab (default: the local lab, else the only lab)\n"
    "\n"
    "Frames of a VLAN are written with their 802.1Q tag. Timestamps are each\n"
    "node's wall clock (keep hosts in NTP sync).\n"
    "\n"
    "examples:\n"
    "  plexus capture lan -w lan.pcap -c 100\n"
    "  plexus capture lan -i web:eth0 -f 'tcp port 80' -w - | tshark -r -\n"
    "\n"
    "exit status: 0 success, 1 the operation failed, 2 bad usage.\n";

typedef struct cnode {
    char name[64], ep[PX_WIRE_MAX_ENDPOINT + 1], key[PX_KEY_Z85_LEN + 1];
    px_chan *ch;
    bool open;
} cnode;

typedef struct crec {
    uint64_t ts;
    uint32_t len;
    uint8_t *data;
} crec;

typedef struct cap {
    px_cli *cli;
    const char *cmd;
    uv_loop_t loop;
    px_transport *tp;
    cnode nodes[MAX_NODES];
    uint32_t n_nodes;
    uint64_t seg, id;
    const char *filter, *port;
    uv_timer_t renew, tick, stop_timer;
    uv_signal_t sigint, sigterm;
    pcap_t *dead;
    pcap_dumper_t *dump;
    crec *heap;
    uint32_t n_heap, cap_heap;
    uint64_t written, limit, stop_after_ms;
    bool stop;
    px_msg *in, *out;
    px_wbuf wb;
    unsigned open_handles;
} cap;

/* ---- the reorder window: a min-heap by timestamp ---- */

static void heap_push(cap *c, crec r)
{
    if (c->n_heap == c->cap_heap) {
        uint32_t nc = c->cap_heap ? 2 * c->cap_heap : 1024;
        crec *h = realloc(c->heap, nc * sizeof(*h));
        if (!h) {
            free(r.data);
            return;
        }
        c->heap = h;
        c->cap_heap = nc;
    }
    uint32_t i = c->n_heap++;
    while (i && c->heap[(i - 1) / 2].ts > r.ts) {
        c->heap[i] = c->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    c->heap[i] = r;
}

static crec heap_pop(cap *c)
{
    crec top = c->heap[0], last = c->heap[--c->n_heap];
    uint32_t i = 0;
    for (;;) {
        uint32_t k = 2 * i + 1;
        if (k >= c->n_heap)
            break;
        if (k + 1 < c->n_heap && c->heap[k + 1].ts < c->heap[k].ts)
            k++;
        if (c->heap[k].ts >= last.ts)
            break;
        c->heap[i] = c->heap[k];
        i = k;
    }
    if (c->n_heap)
        c->heap[i] = last;
    return top;
}

static uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void finish(cap *c);

/* Write every record older than `before` (everything: UINT64_MAX). */
static void drain(cap *c, uint64_t before)
{
    bool any = false;
    while (c->n_heap && c->heap[0].ts < before && (!c->limit || c->written < c->limit)) {
        crec r = heap_pop(c);
        struct pcap_pkthdr h = {.caplen = r.len, .len = r.len};
        h.ts.tv_sec = (time_t)(r.ts / 1000000000ull);
        h.ts.tv_usec = (suseconds_t)(r.ts % 1000000000ull); /* nanosecond file */
        pcap_dump((u_char *)c->dump, &h, r.data);
        free(r.data);
        c->written++;
        any = true;
    }
    if (any)
        pcap_dump_flush(c->dump);
    if (c->limit && c->written >= c->limit)
        finish(c);
}

/* ---- data plane ---- */

static void send_eth(cap *c, cnode *n, uint32_t op)
{
    memset(&c->out->env, 0, sizeof(c->out->env));
    c->out->env.type = PX_MSG_ETH;
    c->out->body.eth = (px_msg_eth){.seg = c->seg,
                                    .op = op,
                                    .id = c->id,
                                    .filter = px_str_c(c->filter ? c->filter : ""),
                                    .port = px_str_c(c->port ? c->port : "")};
    px_wbuf_reset(&c->wb);
    if (px_wire_encode(&c->wb, c->out, NULL) == PX_OK)
        px_chan_send(n->ch, NULL, c->wb.data, c->wb.len);
}

static void on_recv(px_chan *ch, const px_peer *from, const uint8_t *data, size_t len, void *ud)
{
    (void)ch;
    (void)from;
    cap *c = ud;
    size_t off = 0;
    while (off < len && !c->stop) {
        size_t used;
        if (px_wire_decode(data + off, len - off, &used, c->in, NULL) != PX_OK)
            return;
        off += used;
        const px_msg_eth *e = &c->in->body.eth;
        if (c->in->env.type != PX_MSG_ETH || e->op != PX_ETH_CAPTURE || e->id != c->id)
            continue;
        size_t ro = 0;
        px_ethrec r;
        while (px_ethrec_next(e->recs.ptr, e->recs.len, &ro, &r, NULL) == PX_OK) {
            uint8_t *d = malloc(r.len);
            if (!d)
                break;
            memcpy(d, r.frame, r.len);
            heap_push(c, (crec){.ts = r.ts_ns, .len = r.len, .data = d});
        }
    }
}

static void on_renew(uv_timer_t *t)
{
    cap *c = t->data;
    for (uint32_t i = 0; i < c->n_nodes; i++)
        send_eth(c, &c->nodes[i], PX_ETH_CAP_JOIN);
}

static void on_tick(uv_timer_t *t)
{
    cap *c = t->data;
    drain(c, wall_ns() - WINDOW_NS);
}

static void handle_closed(uv_handle_t *h)
{
    cap *c = h->data;
    c->open_handles--;
}

static void chan_closed(px_chan *ch, void *ud)
{
    (void)ch;
    cap *c = ud;
    c->open_handles--;
}

static void on_linger(uv_timer_t *t)
{
    cap *c = t->data;
    for (uint32_t i = 0; i < c->n_nodes; i++)
        if (c->nodes[i].ch) {
            px_chan_close(c->nodes[i].ch, chan_closed, c);
            c->nodes[i].ch = NULL;
        }
    uv_close((uv_handle_t *)&c->stop_timer, handle_closed);
}

static void finish(cap *c)
{
    if (c->stop)
        return;
    c->stop = true;
    for (uint32_t i = 0; i < c->n_nodes; i++)
        send_eth(c, &c->nodes[i], PX_ETH_CAP_LEAVE);
    uv_close((uv_handle_t *)&c->renew, handle_closed);
    uv_close((uv_handle_t *)&c->tick, handle_closed);
    uv_close((uv_handle_t *)&c->sigint, handle_closed);
    uv_close((uv_handle_t *)&c->sigterm, handle_closed);
    uv_timer_stop(&c->stop_timer);
    uv_timer_start(&c->stop_timer, on_linger, LINGER_MS, 0);
}

static void on_stop(uv_timer_t *t)
{
    finish(t->data);
}

static void on_signal(uv_signal_t *s, int sig)
{
    (void)sig;
    finish(s->data);
}

/* ---- set-up ---- */

static int parse_nodes(cap *c, const px_msg_tool_reply *rep)
{
    json_error_t je;
    json_t *arr = json_loadb(rep->json.ptr ? rep->json.ptr : "[]", rep->json.len, 0, &je);
    if (!arr || !json_is_array(arr)) {
        json_decref(arr);
        return px_cli_fail(c->cli, c->cmd, NULL, "the nodes' answer is not JSON: %s", je.text);
    }
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *name = json_string_value(json_object_get(v, "node"));
        const char *ep = json_string_value(json_object_get(v, "endpoint"));
        const char *key = json_string_value(json_object_get(v, "key"));
        if (!name || !ep || !key || c->n_nodes == MAX_NODES)
            continue;
        cnode *n = &c->nodes[c->n_nodes++];
        snprintf(n->name, sizeof(n->name), "%s", name);
        snprintf(n->ep, sizeof(n->ep), "%s", ep);
        snprintf(n->key, sizeof(n->key), "%s", key);
    }
    json_decref(arr);
    if (!c->n_nodes)
        return px_cli_fail(c->cli, c->cmd, "'plexus status' shows whether the lab runs",
                           "no node of the segment answered");
    return PX_EXIT_OK;
}

static int capture_run(cap *c, const px_keypair *key, const char *out_path)
{
    px_errmsg em = {{0}};
    c->dead = pcap_open_dead_with_tstamp_precision(DLT_EN10MB, PX_ETH_MAX_FRAME,
                                                   PCAP_TSTAMP_PRECISION_NANO);
    if (!c->dead)
        return px_cli_fail(c->cli, c->cmd, NULL, "libpcap: out of memory");
    c->dump = strcmp(out_path, "-") == 0 ? pcap_dump_fopen(c->dead, stdout)
                                         : pcap_dump_open(c->dead, out_path);
    if (!c->dump) {
        int rc = px_cli_fail(c->cli, c->cmd, "check the directory exists and is writable",
                             "cannot write %s: %s", out_path, pcap_geterr(c->dead));
        pcap_close(c->dead);
        return rc;
    }
    uv_loop_init(&c->loop);
    px_transport_opts to = {.self = *key};
    int rc = PX_EXIT_OK;
    if (px_transport_new(&c->loop, &to, &c->tp, &em) != PX_OK) {
        rc = px_cli_fail(c->cli, c->cmd, NULL, "%s", em.text);
        goto out;
    }
    for (uint32_t i = 0; i < c->n_nodes; i++) {
        cnode *n = &c->nodes[i];
        px_chan_opts co = {.role = PX_CHAN_CLIENT,
                           .endpoint = n->ep,
                           .server_key = n->key,
                           .policy = PX_QUEUE_DROP,
                           .batch_bytes = PX_DATA_PLANE_BATCH_BYTES,
                           .on_recv = on_recv,
                           .ud = c};
        if (px_chan_open(c->tp, &co, &n->ch, &em) != PX_OK) {
            rc = px_cli_fail(c->cli, c->cmd, NULL, "node %s: %s", n->name, em.text);
            break;
        }
        c->open_handles++;
        send_eth(c, n, PX_ETH_CAP_JOIN);
    }
    uv_timer_init(&c->loop, &c->renew);
    uv_timer_init(&c->loop, &c->tick);
    uv_timer_init(&c->loop, &c->stop_timer);
    uv_signal_init(&c->loop, &c->sigint);
    uv_signal_init(&c->loop, &c->sigterm);
    c->renew.data = c->tick.data = c->stop_timer.data = c->sigint.data = c->sigterm.data = c;
    c->open_handles += 5;
    uv_timer_start(&c->renew, on_renew, RENEW_MS, RENEW_MS);
    uv_timer_start(&c->tick, on_tick, 100, 100);
    uv_signal_start(&c->sigint, on_signal, SIGINT);
    uv_signal_start(&c->sigterm, on_signal, SIGTERM);
    if (c->stop_after_ms)
        uv_timer_start(&c->stop_timer, on_stop, c->stop_after_ms, 0);
    if (rc)
        finish(c);
    /* The transport's own handles keep the loop alive: run until ours are
     * closed (finish, then the linger). */
    while (c->open_handles)
        uv_run(&c->loop, UV_RUN_ONCE);
    drain(c, UINT64_MAX);
    px_transport_free(c->tp);
    uv_run(&c->loop, UV_RUN_DEFAULT);
out:
    uv_loop_close(&c->loop);
    while (c->n_heap)
        free(heap_pop(c).data);
    free(c->heap);
    pcap_dump_flush(c->dump);
    if (strcmp(out_path, "-") == 0)
        fflush(stdout);
    else
        pcap_dump_close(c->dump);
    pcap_close(c->dead);
    if (!rc && strcmp(out_path, "-") != 0)
        fprintf(stderr, "plexus capture: %" PRIu64 " frames written to %s\n", c->written, out_path);
    return rc;
}

static int run(px_cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"lab", required_argument, NULL, 'L'},
                                         {"duration", required_argument, NULL, 'D'},
                                         {"json", no_argument, NULL, 'J'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    static const char cmd[] = "capture";
    const char *lab = NULL, *out = NULL, *filter = NULL, *port = NULL;
    uint64_t limit = 0;
    double duration = 0;
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "hw:i:f:c:", opts, NULL)) != -1) {
        char *end;
        switch (o) {
        case 'h':
            fputs(help_capture, stdout);
            return PX_EXIT_OK;
        case 'L':
            lab = optarg;
            break;
        case 'w':
            out = optarg;
            break;
        case 'i':
            port = optarg;
            break;
        case 'f':
            filter = optarg;
            break;
        case 'c':
            limit = strtoull(optarg, &end, 10);
            if (*end || !limit)
                return px_cli_usage(cli, cmd, "-c %s: expected a count of frames > 0", optarg);
            break;
        case 'D':
            duration = strtod(optarg, &end);
            if (*end || duration <= 0 || duration > 7 * 86400)
                return px_cli_usage(cli, cmd, "--duration %s: expected seconds > 0", optarg);
            break;
        case 'J':
            break;
        default:
            return px_cli_usage(cli, cmd, "bad option");
        }
    }
    if (optind + 1 != argc)
        return px_cli_usage(cli, cmd, "expected one SEGMENT");
    if (!out)
        return px_cli_usage(cli, cmd, "no output; give -w FILE (or -w - for standard output)");
    const char *seg = argv[optind];
    if (filter) { /* a bad filter is the user's typo: say so before anything starts */
        pcap_t *p = pcap_open_dead(DLT_EN10MB, PX_ETH_MAX_FRAME);
        struct bpf_program prog;
        if (!p)
            return px_cli_fail(cli, cmd, NULL, "libpcap: out of memory");
        if (pcap_compile(p, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) != 0) {
            int rc = px_cli_usage(cli, cmd, "filter '%s': %s", filter, pcap_geterr(p));
            pcap_close(p);
            return rc;
        }
        pcap_freecode(&prog);
        pcap_close(p);
    }
    px_toolctx x;
    int rc = px_toolctx_open(&x, cli, cmd, lab);
    if (rc)
        return rc;
    cap *c = calloc(1, sizeof(*c));
    px_ctl_reply r;
    if (!c || !(c->in = malloc(sizeof(px_msg))) || !(c->out = malloc(sizeof(px_msg)))) {
        rc = px_cli_fail(cli, cmd, NULL, "out of memory");
    } else if (!(rc = px_toolctx_check(&x, "SEGMENT", seg, PX_WIRE_MAX_NAME)) &&
               !(rc = px_toolctx_check(&x, "FILTER", filter ? filter : "-", PX_WIRE_MAX_STR)) &&
               !(rc = px_toolctx_tool(&x, seg, "capture", "open", NULL, 0, true, &r))) {
        c->cli = cli;
        c->cmd = cmd;
        const px_msg_tool_reply *rep = &r.msg->body.tool_reply;
        if (rep->code != PX_OK)
            rc = px_toolctx_print(&x, rep, false);
        else
            rc = parse_nodes(c, rep);
        px_ctl_reply_fini(&r);
        if (!rc) {
            c->seg = px_eth_seg_key(x.lab, seg);
            if (getrandom(&c->id, sizeof(c->id), 0) != (ssize_t)sizeof(c->id))
                c->id = uv_hrtime();
            c->filter = filter;
            c->port = port;
            c->limit = limit;
            px_keypair key = x.t.key;
            px_toolctx_close(&x);
            x.ctl = NULL;
            if (duration > 0)
                fprintf(stderr, "plexus capture: %s for %.3g s\n", seg, duration);
            c->stop_after_ms = (uint64_t)(duration * 1000);
            rc = capture_run(c, &key, out);
        }
    }
    if (x.ctl)
        px_toolctx_close(&x);
    if (c) {
        free(c->in);
        free(c->out);
        px_wbuf_fini(&c->wb);
    }
    free(c);
    return rc;
}

const px_cli_cmd px_cmd_capture = {
    .name = "capture",
    .summary = "capture an Ethernet segment's frames to pcap, merged across hosts",
    .help = help_capture,
    .run = run,
};
