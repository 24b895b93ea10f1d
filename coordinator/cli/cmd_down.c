/* plexus down: stop a lab everywhere and remove what it left behind. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "fabric/core/fsutil.h"
#include "ctl.h"
#include "local.h"

/* Ask for the teardown and wait until the coordinator forgot the lab. */
static px_err teardown(const px_ctl_target *t, const char *lab, uint32_t timeout_ms, bool json,
                       px_errmsg *em)
{
    px_ctl *c;
    px_err err = px_ctl_open(t, &c, em);
    if (err)
        return err;
    px_msg_request rq = {.op = px_str_c("down"), .lab = px_str_c(lab)};
    px_ctl_reply r;
    err = px_ctl_request(c, &rq, 5000, &r, em);
    if (err)
        goto out;
    if (!json)
        printf("%.*s\n", (int)r.msg->body.reply.message.len, r.msg->body.reply.message.ptr);
    px_ctl_reply_fini(&r);
    rq.op = px_str_c("status");
    for (uint32_t waited = 0;; waited += 100) {
        err = px_ctl_request(c, &rq, 5000, &r, em);
        if (err == PX_E_NOTFOUND) {
            err = PX_OK; /* gone */
            break;
        }
        if (err)
            break;
        px_ctl_reply_fini(&r);
        if (waited >= timeout_ms) {
            err = px_errmsg_set(em, PX_E_TIMEOUT,
                                "lab %s is still stopping after %u s; 'plexus status %s' shows "
                                "which node has not answered",
                                lab, timeout_ms / 1000, lab);
            break;
        }
        px_sleep_ms(100);
    }
out:
    px_ctl_close(c);
    return err;
}

static int run(px_cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"timeout", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    uint32_t timeout = 30;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "t:", opts, NULL)) != -1) {
        if (c == 't')
            timeout = (uint32_t)strtoul(optarg, NULL, 10);
        else
            return px_cli_usage(cli, "down", "bad option");
    }
    if (optind + 1 != argc)
        return px_cli_usage(cli, "down", "expected exactly one LAB");
    const char *lab = argv[optind];
    px_errmsg em = {{0}};
    px_local l;
    bool local =
        !cli->coordinator && !getenv("PLEXUS_COORDINATOR") && px_local_load(lab, &l, &em) == PX_OK;
    px_ctl_target t;
    if (local) {
        t = l.target;
    } else {
        int rc = px_cli_target(cli, "down", lab, &t);
        if (rc)
            return rc;
    }
    px_err err = teardown(&t, lab, timeout * 1000, cli->json, &em);
    if (err && !local)
        return px_cli_fail(cli, "down", NULL, "%s", em.text);
    if (err)
        fprintf(stderr, "plexus: down: %s; stopping the local daemons anyway\n", em.text);
    if (local) {
        px_errmsg em2 = {{0}};
        if (px_local_stop(&l, &em2) != PX_OK)
            return px_cli_fail(cli, "down", NULL, "%s", em2.text);
    }
    if (cli->json)
        printf("{\"lab\":\"%s\",\"down\":true,\"local\":%s}\n", lab, local ? "true" : "false");
    else
        printf("lab %s is down%s\n", lab,
               local ? "; local coordinator, nodes and network removed" : "");
    return PX_EXIT_OK;
}

const px_cli_cmd px_cmd_down = {
    .name = "down",
    .summary = "stop a lab and remove everything it started",
    .help = "usage: plexus [--json] down LAB [--timeout SECONDS]\n"
            "\n"
            "Tell every node to tear LAB down and wait until all have (default 30 s).\n"
            "For a lab started with 'plexus up --local', also stop its coordinator and\n"
            "nodes and remove their network namespaces, bridge and runtime directory:\n"
            "nothing is left running or mounted. A local lab whose coordinator died is\n"
            "still cleaned up.\n",
    .run = run,
};
