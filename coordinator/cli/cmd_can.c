/* plexus can: tools for a lab's CAN buses (docs/can-bus.md, "Tools").
 *
 * stats and fault are one TOOL each: the coordinator relays it to the bus's
 * home and member nodes and answers with their merged reply. send, dump and
 * replay first send TOOL "open" (the home admits this CLI's key and names
 * its data endpoint), then talk to the home directly (cmd_can_stream.c).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd_can.h"
#include "ctl.h"
#include "toolctx.h"
#include "fabric/can-bus/canfmt.h"
#include "fabric/can-bus/proto.h"

#define MAX_USER_ARGS (PX_WIRE_MAX_TOOL_ARGS - 2u)

/* ---- help ---- */

static const char help_can[] =
    "usage: plexus [--json] can COMMAND BUS [ARGS...] [--lab LAB]\n"
    "\n"
    "Tools for the CAN buses of a running lab, in the manner of can-utils. BUS is\n"
    "a can_bus name from the lab's topology. Frames use cansend's syntax; dump\n"
    "and replay use candump -L log lines, so the output of one feeds the other\n"
    "and can-utils' own tools.\n"
    "\n"
    "commands:\n"
    "  send BUS FRAME...             put frames on the bus, wait until each is sent\n"
    "  dump BUS [-n N] [-t MS]       print every frame on the bus (candump -L)\n"
    "  replay BUS FILE [--no-timing] play a candump -L log onto the bus\n"
    "  stats BUS                     counters of the bus's home and member nodes\n"
    "  fault BUS ARGS...             inject or clear faults on the bus\n"
    "  record BUS on|off             record the bus at its home (log and pcap)\n"
    "\n"
    "options for every command:\n"
    "  --lab LAB   the lab (default: the local lab, else the only lab the\n"
    "              coordinator runs)\n"
    "  --json      machine-readable output (stats, fault, dump)\n"
    "\n"
    "The coordinator is found as for other commands (--coordinator, PLEXUS_*,\n"
    "or the local lab). 'plexus can COMMAND --help' describes each command.\n"
    "\n"
    "exit status: 0 success, 1 the operation failed (a message on stderr\n"
    "says why), 2 bad usage.\n";

static const char help_send[] =
    "usage: plexus can send BUS FRAME... [--lab LAB]\n"
    "\n"
    "Put each FRAME on BUS, in order, as a tool joined at the bus's home, and wait\n"
    "until the home confirms each one was sent (TX-complete), like cansend does.\n"
    "Every FRAME is checked before anything is sent.\n"
    "\n"
    "FRAME (cansend syntax):\n"
    "  123#DEADBEEF        standard id, 0..8 data bytes (a '.' may separate bytes)\n"
    "  12345678#00         extended id (8 hex digits)\n"
    "  123#R  123#R3       remote frame, DLC 0 / 3\n"
    "  123##1DEADBEEF      CAN FD: flags nibble (1 BRS, 2 ESI), 0..64 data bytes\n"
    "\n"
    "exit status: 0 every frame was sent; 1 a frame was refused by the bus (an\n"
    "injected fault, a guest in bus-off, back-pressure) or not confirmed within\n"
    "5 s; 2 a FRAME is malformed (the message names it and the column).\n"
    "\n"
    "examples:\n"
    "  plexus can send body 123#DEADBEEF\n"
    "  plexus can send powertrain 18FEF100#0102030405060708 7DF##1.02.01.0D\n";

static const char help_dump[] =
    "usage: plexus [--json] can dump BUS [-n COUNT] [-t TIMEOUT_MS] [--lab LAB]\n"
    "\n"
    "Print every frame on BUS from now on, in bus order, one candump -L line per\n"
    "frame, flushed as it arrives:\n"
    "  (1700000000.123456) BUS 123#DEADBEEF\n"
    "The time is the bus time at the home (its clock); BUS is cut to 15\n"
    "characters, as Linux interface names are. Frames lost between the home\n"
    "and this tool are never skipped silently: 'lost N frames' goes to stderr.\n"
    "\n"
    "With --json, one JSON object per frame and line:\n"
    "  {\"seq\":42,\"ts\":1700000000123456789,\"frame\":\"123#DEADBEEF\",\n"
    "   \"can_id\":291,\"id\":291,\"ext\":false,\"len\":4,\"flags\":0,\n"
    "   \"data\":\"DEADBEEF\",\"src\":\"ecu1\",\"node\":3735928559,\"ep\":9}\n"
    "seq is the bus sequence number, ts the bus time in ns since the Unix epoch,\n"
    "can_id the id with SocketCAN's flag bits, flags the CAN FD flags (1 BRS,\n"
    "2 ESI, 4 FD), src the sending guest (\"self\" for this tool, null for another\n"
    "tool), node and ep the sender's member id and endpoint.\n"
    "\n"
    "options:\n"
    "  -n, --count COUNT     stop after COUNT frames\n"
    "  -t, --timeout MS      stop when no frame came for MS milliseconds\n"
    "                        (candump -T)\n"
    "  --json                JSON lines instead of candump -L\n"
    "\n"
    "exit status: 0 after COUNT frames, on Ctrl-C or SIGTERM, or on a timeout\n"
    "without -n; 1 on a timeout before COUNT frames came (stderr says how many\n"
    "did) or when the bus home cannot be reached.\n"
    "\n"
    "examples:\n"
    "  plexus can dump body\n"
    "  plexus can dump body -n 10 -t 5000 > body.log\n";

static const char help_replay[] =
    "usage: plexus can replay BUS FILE [--no-timing] [--lab LAB]\n"
    "\n"
    "Play FILE, a candump -L log (\"-\" reads stdin), onto BUS like canplayer:\n"
    "each line's frame is sent with the gaps between the lines' timestamps\n"
    "kept (the first frame goes at once). The interface name on each line and\n"
    "a trailing R/T are ignored; empty lines and lines starting with '#' are\n"
    "skipped. At most 32 frames are in flight (sent but not yet confirmed by\n"
    "the home); at the end every frame is waited for.\n"
    "\n"
    "options:\n"
    "  --no-timing   send as fast as the bus takes the frames\n"
    "\n"
    "exit status: 0 every frame was sent; 1 a line is malformed (FILE:LINE says\n"
    "which and why; the frames before it are sent), a frame was refused by the\n"
    "bus, or the home confirmed nothing for 5 s.\n"
    "\n"
    "examples:\n"
    "  plexus can replay body body.log\n"
    "  plexus can dump body -n 100 | plexus can replay chassis - --no-timing\n";

static const char help_stats[] =
    "usage: plexus [--json] can stats BUS [--lab LAB]\n"
    "\n"
    "Counters of BUS from every node that takes part in it. The home: mode (ideal\n"
    "or timed), bit rate, frames, bytes, load, errors, frames dropped or pushed\n"
    "back, unauthorised messages, members, tools. Each member node: frames\n"
    "delivered, lost and stale, and per guest controller whether the guest is\n"
    "connected and frames to and from it, dropped, refused and malformed.\n"
    "\n"
    "With --json: a JSON array with one object per node (\"node\", \"bus\",\n"
    "\"home\" and/or \"member\").\n"
    "\n"
    "exit status: 0; 1 when a node failed or did not answer within 3 s (its\n"
    "line says so; the others are still printed).\n";

static const char help_fault[] =
    "usage: plexus can fault BUS ARGS... [--lab LAB]\n"
    "\n"
    "Inject faults into BUS, or clear them. ARGS go to the bus's nodes as they\n"
    "are (only --lab and --json are taken out): the home applies bus-wide\n"
    "faults, each node those of its own guests' controllers, and each answers\n"
    "with what changed. The whole command is checked before anything changes.\n"
    "\n"
    "ARGS, applied left to right:\n"
    "  --drop P        lose P of the frames sent on the bus; after --guest: of\n"
    "                  the frames delivered to that guest\n"
    "  --corrupt P     turn P of the frames into error frames (after --guest:\n"
    "                  of the frames that guest sends)\n"
    "  --guest NAME    the following options apply to guest NAME's controllers\n"
    "  --state S       active | passive | bus-off (after --guest); the guest's\n"
    "                  driver gets SocketCAN's error frame for the change\n"
    "  --partition     cut the guest off the bus (after --guest)\n"
    "  --heal          undo --partition: the guest's, or every guest's\n"
    "  --down, --up    the whole bus\n"
    "  --error         put one error frame on the bus now\n"
    "  --clear         everything back to the topology's own impairments\n"
    "P is a percentage (\"5%\", \"0.0001%\") or parts per million (\"250ppm\");\n"
    "--opt=VALUE is the same as --opt VALUE.\n"
    "\n"
    "examples:\n"
    "  plexus can fault body --drop 5%\n"
    "  plexus can fault body --guest ecu1 --state bus-off\n"
    "  plexus can fault body --guest ecu1 --partition\n"
    "  plexus can fault body --heal\n"
    "  plexus can fault body --clear\n"
    "\n"
    "exit status: 0 every node applied its part; 1 a node refused the arguments\n"
    "(its message names the argument) or did not answer within 3 s.\n";

static const char help_record[] =
    "usage: plexus [--json] can record BUS on|off [--lab LAB]\n"
    "\n"
    "Start or stop recording every frame of BUS at its home node: BUS.log\n"
    "(candump -L lines, for 'plexus can replay' and canplayer) and BUS.pcap\n"
    "(LINKTYPE_CAN_SOCKETCAN, for Wireshark and tcpdump), in the lab's CAN\n"
    "directory on that node. The answer names the files; --json gives\n"
    "[{\"node\":..,\"log\":..,\"pcap\":..}]. After 'off', 'on' appends to the\n"
    "log and starts the pcap afresh.\n"
    "\n"
    "exit status: 0 recording started or stopped; 1 the home could not open\n"
    "the files or did not answer.\n";

typedef struct can_sub {
    const char *name;
    const char *help;
} can_sub;

static const can_sub subs[] = {
    {"send", help_send},   {"dump", help_dump},   {"replay", help_replay},
    {"stats", help_stats}, {"fault", help_fault}, {"record", help_record},
};

/* ---- subcommands ---- */

/* getopt_long over argv[0..argc) ("SUB ..."): --lab and --json for all,
 * plus the subcommand's own; returns the option or -1 / '?'. */
#define COMMON_OPTS                                                                                \
    {"lab", required_argument, NULL, 'L'},                                                         \
    {                                                                                              \
        "json", no_argument, NULL, 'J'                                                             \
    }

static int run_stats(px_cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {COMMON_OPTS, {NULL, 0, NULL, 0}};
    const char *lab = NULL;
    bool json = cli->json;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'L')
            lab = optarg;
        else if (c == 'J')
            json = true;
        else
            return px_cli_usage(cli, "can stats", "bad option");
    }
    if (optind + 1 != argc)
        return px_cli_usage(cli, "can stats", "expected one BUS");
    px_toolctx x;
    int rc = px_toolctx_open(&x, cli, "can stats", lab);
    if (rc)
        return rc;
    const char *bus = argv[optind];
    px_ctl_reply r;
    if (!(rc = px_toolctx_check(&x, "BUS", bus, PX_WIRE_MAX_NAME)) &&
        !(rc = px_toolctx_tool(&x, bus, "can", "stats", NULL, 0, json, &r))) {
        rc = px_toolctx_print(&x, &r.msg->body.tool_reply, json);
        px_ctl_reply_fini(&r);
    }
    px_toolctx_close(&x);
    return rc;
}

/* fault and record: the arguments go to the nodes as they are; only
 * --lab (anywhere) and --json are ours. */
static int run_pass(px_cli *cli, const char *sub, int argc, char **argv)
{
    char cmd[16];
    snprintf(cmd, sizeof(cmd), "can %s", sub);
    const char *lab = NULL, *bus = NULL;
    bool json = cli->json;
    char **args = calloc((size_t)argc + 1, sizeof(*args));
    if (!args)
        return px_cli_fail(cli, cmd, NULL, "out of memory");
    uint32_t n = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--lab") == 0 && i + 1 < argc)
            lab = argv[++i];
        else if (strncmp(argv[i], "--lab=", 6) == 0)
            lab = argv[i] + 6;
        else if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (!bus)
            bus = argv[i];
        else
            args[n++] = argv[i];
    }
    bool record = strcmp(sub, "record") == 0;
    int rc = PX_EXIT_OK;
    if (!bus || n == 0)
        rc = px_cli_usage(cli, cmd,
                          record ? "expected BUS and on or off"
                                 : "expected BUS and what to do (e.g. --drop 5%%)");
    else if (record && (n != 1 || (strcmp(args[0], "on") != 0 && strcmp(args[0], "off") != 0)))
        rc = px_cli_usage(cli, cmd, "expected on or off after BUS");
    else if (n > MAX_USER_ARGS)
        rc = px_cli_usage(cli, cmd, "%u arguments; at most %u", n, MAX_USER_ARGS);
    px_toolctx x;
    if (!rc)
        rc = px_toolctx_open(&x, cli, cmd, lab);
    if (rc) {
        free(args);
        return rc;
    }
    rc = px_toolctx_check(&x, "BUS", bus, PX_WIRE_MAX_NAME);
    for (uint32_t i = 0; i < n && !rc; i++)
        rc = px_toolctx_check(&x, "an argument", args[i], PX_WIRE_MAX_STR);
    px_ctl_reply r;
    if (!rc && !(rc = px_toolctx_tool(&x, bus, "can", sub, args, n, json, &r))) {
        rc = px_toolctx_print(&x, &r.msg->body.tool_reply, json);
        px_ctl_reply_fini(&r);
    }
    px_toolctx_close(&x);
    free(args);
    return rc;
}

/* TOOL "open", then the coordinator session ends and the stream starts:
 * fills s from the reply (the home's endpoint and key). */
static int open_bus(px_toolctx *x, const char *bus, px_can_session *s)
{
    int rc = px_toolctx_check(x, "BUS", bus, PX_WIRE_MAX_NAME);
    if (rc)
        return rc;
    px_ctl_reply r;
    if ((rc = px_toolctx_tool(x, bus, "can", "open", NULL, 0, false, &r)))
        return rc;
    const px_msg_tool_reply *rep = &r.msg->body.tool_reply;
    if (rep->code != PX_OK) {
        rc = px_cli_fail(x->cli, x->cmd, px_toolctx_hint(rep->code), "%.*s", (int)rep->message.len,
                         rep->message.ptr ? rep->message.ptr : "");
    } else {
        px_str_copy(s->ep, sizeof(s->ep), rep->endpoint);
        px_str_copy(s->server_key, sizeof(s->server_key), rep->key);
        if (!s->ep[0] || !px_key_valid(s->server_key)) {
            char hint[160];
            snprintf(hint, sizeof(hint), "is %s a CAN bus of lab %s? 'plexus status %s'", bus,
                     x->lab, x->lab);
            rc = px_cli_fail(x->cli, x->cmd, hint,
                             "bus %s: its home node gave no data endpoint and key", bus);
        }
    }
    px_ctl_reply_fini(&r);
    s->cli = x->cli;
    s->cmd = x->cmd;
    s->key = x->t.key;
    snprintf(s->lab, sizeof(s->lab), "%s", x->lab);
    s->bus = bus;
    return rc;
}

/* dump --json names senders: the lab's guests, in topology order, with
 * their hosts (endpoint numbers are per lab: px_can_guest_ep). */
static px_can_src *fetch_srcs(px_toolctx *x, uint32_t *n)
{
    *n = 0;
    px_msg_request rq = {.op = px_str_c("status"), .lab = px_str_c(x->lab)};
    px_ctl_reply r;
    if (px_ctl_request(x->ctl, &rq, 5000, &r, NULL) != PX_OK)
        return NULL; /* numbers only, then */
    const px_msg_reply *rep = &r.msg->body.reply;
    px_can_src *srcs = calloc(rep->n_guests + 1, sizeof(*srcs));
    for (uint32_t g = 0; srcs && g < rep->n_guests; g++) {
        char host[64];
        px_str_copy(host, sizeof(host), rep->guests[g].host);
        srcs[g].node = px_can_member_id(host);
        srcs[g].ep_first = px_can_guest_ep(g, 0);
        px_str_copy(srcs[g].guest, sizeof(srcs[g].guest), rep->guests[g].name);
        *n = g + 1;
    }
    px_ctl_reply_fini(&r);
    return srcs;
}

static int run_send(px_cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {COMMON_OPTS, {NULL, 0, NULL, 0}};
    const char *lab = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'L')
            lab = optarg;
        else if (c != 'J')
            return px_cli_usage(cli, "can send", "bad option");
    }
    if (argc - optind < 2)
        return px_cli_usage(cli, "can send", "expected BUS and at least one FRAME");
    uint32_t n = (uint32_t)(argc - optind - 1);
    char *const *texts = argv + optind + 1;
    px_can_frame *frames = calloc(n, sizeof(*frames));
    if (!frames)
        return px_cli_fail(cli, "can send", NULL, "out of memory");
    for (uint32_t i = 0; i < n; i++) {
        px_errmsg em = {{0}};
        if (px_canfmt_parse(texts[i], strlen(texts[i]), &frames[i], &em) != PX_OK) {
            free(frames);
            return px_cli_usage(cli, "can send", "frame %u '%s': %s", i + 1, texts[i], em.text);
        }
    }
    px_toolctx x;
    px_can_session s = {0};
    int rc = px_toolctx_open(&x, cli, "can send", lab);
    if (!rc) {
        rc = open_bus(&x, argv[optind], &s);
        px_toolctx_close(&x);
    }
    if (!rc)
        rc = px_can_send(&s, frames, texts, n);
    free(frames);
    return rc;
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v == 0 || v > max)
        return false;
    *out = v;
    return true;
}

static int run_dump(px_cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {COMMON_OPTS,
                                         {"count", required_argument, NULL, 'n'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {NULL, 0, NULL, 0}};
    const char *lab = NULL;
    bool json = cli->json;
    uint64_t count = 0, idle = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "n:t:", opts, NULL)) != -1) {
        if (c == 'L')
            lab = optarg;
        else if (c == 'J')
            json = true;
        else if (c == 'n' && !parse_u64(optarg, UINT64_MAX, &count))
            return px_cli_usage(cli, "can dump", "-n wants a count of frames >= 1, not '%s'",
                                optarg);
        else if (c == 't' && !parse_u64(optarg, UINT32_MAX, &idle))
            return px_cli_usage(cli, "can dump", "-t wants milliseconds >= 1, not '%s'", optarg);
        else if (c != 'n' && c != 't')
            return px_cli_usage(cli, "can dump", "bad option");
    }
    if (optind + 1 != argc)
        return px_cli_usage(cli, "can dump", "expected one BUS");
    px_toolctx x;
    px_can_session s = {0};
    px_can_src *srcs = NULL;
    int rc = px_toolctx_open(&x, cli, "can dump", lab);
    if (!rc) {
        rc = open_bus(&x, argv[optind], &s);
        if (!rc && json) {
            srcs = fetch_srcs(&x, &s.n_srcs);
            s.srcs = srcs;
        }
        px_toolctx_close(&x);
    }
    if (!rc)
        rc = px_can_dump(&s, count, (uint32_t)idle, json);
    free(srcs);
    return rc;
}

static int run_replay(px_cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        COMMON_OPTS, {"no-timing", no_argument, NULL, 'T'}, {NULL, 0, NULL, 0}};
    const char *lab = NULL;
    bool timing = true;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'L')
            lab = optarg;
        else if (c == 'T')
            timing = false;
        else if (c != 'J')
            return px_cli_usage(cli, "can replay", "bad option");
    }
    if (optind + 2 != argc)
        return px_cli_usage(cli, "can replay", "expected BUS and FILE (- for stdin)");
    const char *file = argv[optind + 1];
    /* A missing file is found before anyone is bothered. */
    FILE *probe = strcmp(file, "-") == 0 ? NULL : fopen(file, "r");
    if (strcmp(file, "-") != 0) {
        if (!probe)
            return px_cli_fail(cli, "can replay", NULL, "cannot open %s: %s", file,
                               strerror(errno));
        fclose(probe);
    }
    px_toolctx x;
    px_can_session s = {0};
    int rc = px_toolctx_open(&x, cli, "can replay", lab);
    if (!rc) {
        rc = open_bus(&x, argv[optind], &s);
        px_toolctx_close(&x);
    }
    if (!rc)
        rc = px_can_replay(&s, file, timing);
    return rc;
}

static int run(px_cli *cli, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(help_can, argc < 2 ? stderr : stdout);
        return argc < 2 ? PX_EXIT_USAGE : PX_EXIT_OK;
    }
    const char *sub = argv[1];
    const can_sub *which = NULL;
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
        if (strcmp(sub, subs[i].name) == 0)
            which = &subs[i];
    if (!which)
        return px_cli_usage(cli, "can",
                            "unknown command '%s' (send, dump, replay, stats, fault, record)", sub);
    for (int i = 2; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(which->help, stdout);
            return PX_EXIT_OK;
        }
    argc--;
    argv++;
    if (strcmp(sub, "send") == 0)
        return run_send(cli, argc, argv);
    if (strcmp(sub, "dump") == 0)
        return run_dump(cli, argc, argv);
    if (strcmp(sub, "replay") == 0)
        return run_replay(cli, argc, argv);
    if (strcmp(sub, "stats") == 0)
        return run_stats(cli, argc, argv);
    return run_pass(cli, sub, argc, argv); /* fault, record */
}

const px_cli_cmd px_cmd_can = {
    .name = "can",
    .summary = "send, dump, replay frames on a CAN bus; its stats; inject faults",
    .help = help_can,
    .run = run,
    .own_help = true,
};
