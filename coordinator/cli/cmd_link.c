/* plexus link: show, set and reset the impairments of Ethernet ports
 * (docs/ethernet.md, "Impairments"). One TOOL each: the coordinator relays
 * it to the nodes of the port's segment and answers with their merged
 * reply. The CLI checks the values with the topology's own parser and
 * sends them to the nodes in base units (ns, ppm, bit/s).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "coordinator/topology.h"
#include "toolctx.h"

static const char help_link[] =
    "usage: plexus [--json] link COMMAND TARGET [OPTIONS] [--lab LAB]\n"
    "\n"
    "Impair the Ethernet ports of a running lab, live, in the manner of tc netem.\n"
    "A port is GUEST:ethN, the guest's N-th NIC (0-based, in its nics: list).\n"
    "\n"
    "commands:\n"
    "  show SEGMENT|GUEST:ethN   counters and impairments of a segment's ports\n"
    "                            (on every node) or of one port\n"
    "  set GUEST:ethN OPTIONS    replace the port's impairment in one direction\n"
    "  reset GUEST:ethN          back to what the topology declares; a port cut\n"
    "                            off for bad frames is let back in at once\n"
    "\n"
    "options of set (values as in the topology's impair: mapping):\n"
    "  --delay D         added delay, like 20ms, 1s, 500us\n"
    "  --jitter D        delay varies by up to +-D (needs --delay)\n"
    "  --loss P          share of frames lost, like 1% or 0.5%\n"
    "  --loss-burst N    mean length of a run of lost frames (Gilbert model)\n"
    "  --duplicate P     share of frames sent twice\n"
    "  --reorder P       share of frames that skip the delay (needs --delay)\n"
    "  --corrupt P       share of frames with one bit flipped\n"
    "  --rate R          bit rate, like 10M or 1G (frames queue behind it)\n"
    "  --direction W     egress (frames the guest sends; the default, like netem\n"
    "                    on the guest's interface), ingress (frames to it), both\n"
    "\n"
    "  --lab LAB         the lab (default: the local lab, else the only lab)\n"
    "  --json            machine-readable output: one object per node\n"
    "\n"
    "examples:\n"
    "  plexus link set web:eth0 --delay 50ms --jitter 5ms --loss 1%\n"
    "  plexus link set db:eth1 --rate 10M --direction both\n"
    "  plexus link show lan\n"
    "  plexus link reset web:eth0\n"
    "\n"
    "exit status: 0 success, 1 the operation failed (a message on stderr says\n"
    "why), 2 bad usage.\n";

/* --OPTION VALUE of set and the topology key it stands for. */
static const struct {
    const char *opt, *key;
} set_keys[] = {
    {"delay", "delay"},           {"jitter", "jitter"},       {"loss", "loss"},
    {"loss-burst", "loss_burst"}, {"duplicate", "duplicate"}, {"reorder", "reorder"},
    {"corrupt", "corrupt"},       {"rate", "rate"},           {"direction", "direction"},
};
#define N_SET_KEYS (sizeof(set_keys) / sizeof(set_keys[0]))

/* The checked impairment as KEY=VALUE arguments in base units. */
static uint32_t canonical(const px_topo_impair *im, char out[][48])
{
    static const char *const dirs[] = {"egress", "ingress", "both"};
    uint32_t n = 0;
    snprintf(out[n++], 48, "delay=%" PRIu64, im->delay_ns);
    snprintf(out[n++], 48, "jitter=%" PRIu64, im->jitter_ns);
    snprintf(out[n++], 48, "loss=%u", im->loss_ppm);
    snprintf(out[n++], 48, "loss_burst=%u", im->loss_burst);
    snprintf(out[n++], 48, "duplicate=%u", im->duplicate_ppm);
    snprintf(out[n++], 48, "reorder=%u", im->reorder_ppm);
    snprintf(out[n++], 48, "corrupt=%u", im->corrupt_ppm);
    snprintf(out[n++], 48, "rate=%" PRIu64, im->rate_bps);
    snprintf(out[n++], 48, "direction=%s", dirs[im->direction]);
    return n;
}

static int run(px_cli *cli, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(help_link, argc < 2 ? stderr : stdout);
        return argc < 2 ? PX_EXIT_USAGE : PX_EXIT_OK;
    }
    const char *sub = argv[1];
    char cmd[24];
    snprintf(cmd, sizeof(cmd), "link %s", sub);
    if (strcmp(sub, "show") && strcmp(sub, "set") && strcmp(sub, "reset"))
        return px_cli_usage(cli, "link", "unknown command '%s' (show, set, reset)", sub);
    static struct option opts[N_SET_KEYS + 4];
    for (size_t i = 0; i < N_SET_KEYS; i++)
        opts[i] = (struct option){set_keys[i].opt, required_argument, NULL, (int)(i + 1)};
    opts[N_SET_KEYS] = (struct option){"lab", required_argument, NULL, 'L'};
    opts[N_SET_KEYS + 1] = (struct option){"json", no_argument, NULL, 'J'};
    opts[N_SET_KEYS + 2] = (struct option){"help", no_argument, NULL, 'h'};
    const char *kv[2 * N_SET_KEYS];
    uint32_t n_pairs = 0;
    const char *lab = NULL;
    bool json = cli->json;
    int c;
    optind = 1;
    argc--;
    argv++;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(help_link, stdout);
            return PX_EXIT_OK;
        } else if (c == 'L') {
            lab = optarg;
        } else if (c == 'J') {
            json = true;
        } else if (c >= 1 && c <= (int)N_SET_KEYS && strcmp(sub, "set") == 0) {
            kv[2 * n_pairs] = set_keys[c - 1].key;
            kv[2 * n_pairs + 1] = optarg;
            n_pairs++;
        } else {
            return px_cli_usage(cli, cmd, "bad option%s",
                                c >= 1 && c <= (int)N_SET_KEYS ? " (impairments go with set)" : "");
        }
    }
    if (optind + 1 != argc)
        return px_cli_usage(cli, cmd, "expected one %s",
                            strcmp(sub, "show") ? "GUEST:ethN" : "SEGMENT or GUEST:ethN");
    const char *target = argv[optind];
    char args[N_SET_KEYS + 1][48];
    char *argp[N_SET_KEYS + 2];
    uint32_t n = 0;
    if (strcmp(sub, "show") && !strchr(target, ':'))
        return px_cli_usage(cli, cmd, "'%s' is not a port; expected GUEST:ethN (like web:eth0)",
                            target);
    if (strcmp(sub, "set") == 0) {
        if (!n_pairs)
            return px_cli_usage(cli, cmd,
                                "nothing to set; give --delay, --loss, ... ('plexus link reset "
                                "%s' clears the port's impairment)",
                                target);
        px_topo_impair im;
        px_errmsg em = {{0}};
        if (px_topo_impair_parse(kv, n_pairs, true, &im, &em) != PX_OK)
            return px_cli_usage(cli, cmd, "%s", em.text);
        n = canonical(&im, args);
    }
    argp[0] = (char *)target;
    for (uint32_t i = 0; i < n; i++)
        argp[i + 1] = args[i];
    px_toolctx x;
    int rc = px_toolctx_open(&x, cli, cmd, lab);
    if (rc)
        return rc;
    px_ctl_reply r;
    if (!(rc = px_toolctx_check(&x, "TARGET", target, PX_WIRE_MAX_NAME)) &&
        !(rc = px_toolctx_tool(&x, target, "link", sub, argp, n + 1, true, &r))) {
        const px_msg_tool_reply *rep = &r.msg->body.tool_reply;
        /* Only the node that has the port answers with it: no answer at
         * all means the port exists in the topology but runs nowhere. */
        if (rep->code == PX_OK && strchr(target, ':') &&
            (!rep->json.len || (rep->json.len == 2 && memcmp(rep->json.ptr, "[]", 2) == 0)))
            rc = px_cli_fail(cli, cmd, "'plexus status' shows whether its guest runs",
                             "no node has port %s", target);
        else
            rc = px_toolctx_print(&x, rep, json);
        px_ctl_reply_fini(&r);
    }
    px_toolctx_close(&x);
    return rc;
}

const px_cli_cmd px_cmd_link = {
    .name = "link",
    .summary = "show, set and reset impairments of Ethernet ports (netem-like)",
    .help = help_link,
    .run = run,
    .own_help = true,
};
