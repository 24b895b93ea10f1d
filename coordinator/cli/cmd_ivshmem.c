/* plexus ivshmem: the peers of an ivshmem region and ringing them from the
 * host (docs/ivshmem.md). One TOOL each, relayed by the coordinator to the
 * region's member nodes: every node lists its local peers and counters
 * (the CLI joins them into one table), and the node a peer lives on rings
 * it.
 */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "toolctx.h"

static const char help_ivshmem[] =
    "usage: plexus [--json] ivshmem COMMAND REGION [ARGS] [--lab LAB]\n"
    "\n"
    "The peers of an ivshmem region of a running lab, and doorbells from the host.\n"
    "A peer is a guest with the region (IDs in topology order: the first guest\n"
    "listing the region is 0) or a host program joined through the region's\n"
    "socket (devices/ivshmem/client.h; its ID is the lowest free one above the\n"
    "guests').\n"
    "\n"
    "commands:\n"
    "  peers REGION               every peer: ID, name, node; per node the socket\n"
    "                             host programs connect to, and counters\n"
    "  ring REGION PEER [VECTOR]  ring PEER (an ID or a guest's name) at VECTOR\n"
    "                             (default 0), as another peer's Doorbell write would\n"
    "\n"
    "options:\n"
    "  --lab LAB   the lab (default: the local lab, else the only lab)\n"
    "  --json      machine-readable output: {region, size, vectors, home, peers:\n"
    "              [{id, name, node, pid}], nodes: [{node, socket, synced, counters}]}\n"
    "\n"
    "examples:\n"
    "  plexus ivshmem peers shm0\n"
    "  plexus ivshmem ring shm0 ecu2 1\n"
    "  plexus --json ivshmem peers shm0 | jq -r '.nodes[0].socket'\n"
    "\n"
    "exit status: 0 success, 1 the operation failed (a message on stderr says\n"
    "why), 2 bad usage.\n";

static int by_id(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "id"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "id"));
    return (x > y) - (x < y);
}

/* The nodes' answers (an array, one object per node) as one object. */
static json_t *join_nodes(json_t *arr)
{
    json_t *out = json_object(), *peers = json_array(), *nodes = json_array();
    size_t i;
    json_t *n;
    json_array_foreach(arr, i, n)
    {
        if (!json_is_object(n))
            continue;
        if (!json_object_get(out, "region")) {
            json_object_set(out, "region", json_object_get(n, "region"));
            json_object_set(out, "size", json_object_get(n, "size"));
            json_object_set(out, "vectors", json_object_get(n, "vectors"));
            json_object_set(out, "home", json_object_get(n, "home"));
        }
        size_t k;
        json_t *p;
        json_array_foreach(json_object_get(n, "peers"), k, p) json_array_append(peers, p);
        json_t *copy = json_deep_copy(n);
        json_object_del(copy, "peers");
        json_object_del(copy, "region");
        json_object_del(copy, "size");
        json_object_del(copy, "vectors");
        json_object_del(copy, "home");
        json_array_append_new(nodes, copy);
    }
    size_t np = json_array_size(peers);
    json_t **v = calloc(np + 1, sizeof(*v));
    for (size_t k = 0; v && k < np; k++)
        v[k] = json_array_get(peers, k);
    if (v)
        qsort(v, np, sizeof(*v), by_id);
    json_t *sorted = json_array();
    for (size_t k = 0; v && k < np; k++)
        json_array_append(sorted, v[k]);
    free(v);
    json_decref(peers);
    json_object_set_new(out, "peers", sorted);
    json_object_set_new(out, "nodes", nodes);
    return out;
}

static void print_table(json_t *o)
{
    printf("region %s: %" JSON_INTEGER_FORMAT " bytes, %" JSON_INTEGER_FORMAT
           " vector(s), home %s\n",
           json_string_value(json_object_get(o, "region")),
           json_integer_value(json_object_get(o, "size")),
           json_integer_value(json_object_get(o, "vectors")),
           json_string_value(json_object_get(o, "home")));
    printf("%-6s %-24s %-16s %s\n", "ID", "PEER", "NODE", "PID");
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(o, "peers"), i, p) printf(
        "%-6" JSON_INTEGER_FORMAT " %-24s %-16s %" JSON_INTEGER_FORMAT "\n",
        json_integer_value(json_object_get(p, "id")), json_string_value(json_object_get(p, "name")),
        json_string_value(json_object_get(p, "node")),
        json_integer_value(json_object_get(p, "pid")));
    if (!json_array_size(json_object_get(o, "peers")))
        printf("(no peers)\n");
    printf("\n%-16s %-7s %-10s %-10s %-14s %-14s %s\n", "NODE", "SYNCED", "RINGS-OUT", "RINGS-IN",
           "DIFF-OUT", "DIFF-IN", "SOCKET");
    json_t *n;
    json_array_foreach(json_object_get(o, "nodes"), i, n)
        printf("%-16s %-7s %-10" JSON_INTEGER_FORMAT " %-10" JSON_INTEGER_FORMAT
               " %-14" JSON_INTEGER_FORMAT " %-14" JSON_INTEGER_FORMAT " %s\n",
               json_string_value(json_object_get(n, "node")),
               json_is_true(json_object_get(n, "synced")) ? "yes" : "no",
               json_integer_value(json_object_get(n, "rings_out")),
               json_integer_value(json_object_get(n, "rings_in")),
               json_integer_value(json_object_get(n, "diff_bytes_out")),
               json_integer_value(json_object_get(n, "diff_bytes_in")),
               json_string_value(json_object_get(n, "socket")));
}

static int peers(px_toolctx *x, const px_msg_tool_reply *rep, bool json)
{
    if (rep->code != PX_OK)
        return px_toolctx_print(x, rep, json);
    json_error_t je;
    json_t *arr = json_loadb((const char *)rep->json.ptr, rep->json.len, 0, &je);
    if (!json_is_array(arr) || !json_array_size(arr)) {
        json_decref(arr);
        return px_cli_fail(x->cli, x->cmd, "'plexus status' shows whether the lab runs",
                           "no node answered for the region");
    }
    json_t *o = join_nodes(arr);
    json_decref(arr);
    if (json) {
        char *s = json_dumps(o, JSON_COMPACT);
        if (s)
            printf("%s\n", s);
        free(s);
    } else {
        print_table(o);
    }
    json_decref(o);
    return PX_EXIT_OK;
}

static int run(px_cli *cli, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(help_ivshmem, argc < 2 ? stderr : stdout);
        return argc < 2 ? PX_EXIT_USAGE : PX_EXIT_OK;
    }
    const char *sub = argv[1];
    char cmd[24];
    snprintf(cmd, sizeof(cmd), "ivshmem %s", sub);
    bool is_ring = strcmp(sub, "ring") == 0;
    if (!is_ring && strcmp(sub, "peers") != 0)
        return px_cli_usage(cli, "ivshmem", "unknown command '%s' (peers, ring)", sub);
    const char *lab;
    bool json;
    argc--;
    argv++;
    int rc = px_toolctx_options(cli, cmd, help_ivshmem, argc, argv, &lab, &json);
    if (rc >= 0)
        return rc;
    int want = argc - optind;
    if (!is_ring && want != 1)
        return px_cli_usage(cli, cmd, "expected one REGION");
    if (is_ring && (want < 2 || want > 3))
        return px_cli_usage(cli, cmd, "expected REGION PEER [VECTOR]");
    const char *region = argv[optind];
    char *args[2] = {NULL, NULL};
    uint32_t n = 0;
    if (is_ring) {
        args[n++] = argv[optind + 1];
        args[n++] = want == 3 ? argv[optind + 2] : "0";
        char *end;
        unsigned long v = strtoul(args[1], &end, 10);
        if (!*args[1] || *end || v > 255 || args[1][0] == '-')
            return px_cli_usage(cli, cmd, "VECTOR '%s' is not a number 0..255", args[1]);
    }
    px_toolctx x;
    rc = px_toolctx_open(&x, cli, cmd, lab);
    if (rc)
        return rc;
    px_ctl_reply r;
    if (!(rc = px_toolctx_check(&x, "REGION", region, PX_WIRE_MAX_NAME)) &&
        !(rc = is_ring ? px_toolctx_check(&x, "PEER", args[0], PX_WIRE_MAX_NAME) : 0) &&
        !(rc = px_toolctx_tool(&x, region, "ivshmem", sub, args, n, true, &r))) {
        const px_msg_tool_reply *rep = &r.msg->body.tool_reply;
        if (!is_ring)
            rc = peers(&x, rep, json);
        else if (rep->code == PX_OK &&
                 (!rep->json.len || (rep->json.len == 2 && memcmp(rep->json.ptr, "[]", 2) == 0)))
            /* Only the node that rang answers with JSON: nobody rang (the
             * peer's node did not answer, or the peer left meanwhile). */
            rc = px_cli_fail(cli, cmd, "'plexus ivshmem peers' lists the peers",
                             "no node rang peer %s", args[0]);
        else
            rc = px_toolctx_print(&x, rep, json);
        px_ctl_reply_fini(&r);
    }
    px_toolctx_close(&x);
    return rc;
}

const px_cli_cmd px_cmd_ivshmem = {
    .name = "ivshmem",
    .summary = "list the peers of an ivshmem region, ring them from the host",
    .help = help_ivshmem,
    .run = run,
    .own_help = true,
};
