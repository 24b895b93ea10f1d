/* plexus status / plexus nodes: what the coordinator knows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ctl.h"
#include "local.h"
#include "status_print.h"

static int query(px_cli *cli, const char *cmd, const char *op, const char *lab)
{
    px_ctl_target t;
    char labs[1][64];
    if (!cli->coordinator && !getenv("PLEXUS_COORDINATOR") && !lab && px_local_list(labs, 1) == 0) {
        /* Nothing configured and nothing local: an empty answer, not an error. */
        if (cli->json)
            printf(strcmp(op, "nodes") ? "{\"labs\":[],\"guests\":[],\"nodes\":[]}\n"
                                       : "{\"nodes\":[]}\n");
        else
            printf("no labs running (no --coordinator given and no local lab)\n");
        return PX_EXIT_OK;
    }
    int rc = px_cli_target(cli, cmd, lab, &t);
    if (rc)
        return rc;
    px_ctl *c;
    px_errmsg em = {{0}};
    if (px_ctl_open(&t, &c, &em) != PX_OK)
        return px_cli_fail(cli, cmd, NULL, "%s", em.text);
    px_msg_request rq = {.op = px_str_c(op), .lab = px_str_c(lab ? lab : "")};
    px_ctl_reply r;
    px_err err = px_ctl_request(c, &rq, 5000, &r, &em);
    px_ctl_close(c);
    if (err)
        return px_cli_fail(cli, cmd, NULL, "%s", em.text);
    const px_msg_reply *rep = &r.msg->body.reply;
    bool nodes_only = strcmp(op, "nodes") == 0;
    if (cli->json) {
        px_print_json(rep, !nodes_only, true);
    } else if (nodes_only) {
        px_print_nodes(rep);
    } else {
        px_print_labs(rep);
        px_print_guests(rep);
        printf("\n");
        px_print_nodes(rep);
    }
    px_ctl_reply_fini(&r);
    return PX_EXIT_OK;
}

static int run_status(px_cli *cli, int argc, char **argv)
{
    if (argc > 2)
        return px_cli_usage(cli, "status", "expected at most one LAB");
    return query(cli, "status", "status", argc == 2 ? argv[1] : NULL);
}

static int run_nodes(px_cli *cli, int argc, char **argv)
{
    (void)argv;
    if (argc > 1)
        return px_cli_usage(cli, "nodes", "takes no arguments");
    return query(cli, "nodes", "nodes", NULL);
}

const px_cli_cmd px_cmd_status = {
    .name = "status",
    .summary = "show labs, their guests and the nodes they run on",
    .help = "usage: plexus [--json] status [LAB]\n"
            "\n"
            "Ask the coordinator for every lab (or just LAB): its state (deploying,\n"
            "running, degraded, failed, stopping), plan epoch and node-loss policy;\n"
            "each guest with its host and state; and every node with its state (up,\n"
            "lost, unknown), load, capacity, features and data-plane endpoint.\n"
            "\n"
            "The coordinator is the one named by --coordinator/--coordinator-key (or\n"
            "PLEXUS_COORDINATOR/PLEXUS_COORDINATOR_KEY), else the local lab.\n"
            "\n"
            "examples:\n"
            "  plexus status\n"
            "  plexus --json status quickstart\n",
    .run = run_status,
};

const px_cli_cmd px_cmd_nodes = {
    .name = "nodes",
    .summary = "list the nodes registered with the coordinator",
    .help = "usage: plexus [--json] nodes\n"
            "\n"
            "Every node the coordinator knows: state (up; lost after 3 missed\n"
            "heartbeats; unknown until it re-registers after a coordinator restart),\n"
            "guests, offered CPUs and memory, seconds since its last heartbeat,\n"
            "features (kvm-device, af_can, rdma) and data-plane endpoint.\n",
    .run = run_nodes,
};
