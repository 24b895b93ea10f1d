/* plexus up: bring a lab up (on a coordinator, or locally with --local). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "coordinator/topology.h"
#include "ctl.h"
#include "fabric/core/fsutil.h"
#include "local.h"
#include "status_print.h"

static bool quiet_progress;
static uint64_t t_start;

static void progress(const char *line)
{
    if (!quiet_progress)
        fprintf(stderr, "[%5.1fs] %s\n", (double)(px_monotonic_ms() - t_start) / 1000.0, line);
}

/* Local mode: wait until every node registered. */
static px_err wait_nodes(px_ctl *c, uint32_t want, uint32_t timeout_ms, px_errmsg *em)
{
    px_msg_request rq = {.op = px_str_c("nodes")};
    uint32_t last = UINT32_MAX;
    uint64_t until = px_monotonic_ms() + timeout_ms;
    for (;;) {
        px_ctl_reply r;
        px_err err = px_ctl_request(c, &rq, 5000, &r, em);
        if (err)
            return err;
        uint32_t up = 0;
        for (uint32_t i = 0; i < r.msg->body.reply.n_nodes; i++)
            up += px_str_eq(r.msg->body.reply.nodes[i].state, "up");
        px_ctl_reply_fini(&r);
        if (up != last) {
            char line[64];
            snprintf(line, sizeof(line), "nodes registered: %u/%u", up, want);
            progress(line);
            last = up;
        }
        if (up >= want)
            return PX_OK;
        if (px_monotonic_ms() > until)
            return px_errmsg_set(em, PX_E_TIMEOUT,
                                 "only %u of %u nodes registered within %u s; see the node "
                                 "logs in the local lab directory",
                                 up, want, timeout_ms / 1000);
        px_sleep_ms(100);
    }
}

/* Poll the lab until it is running or failed, printing each guest's state
 * when it changes. */
static px_err wait_lab(px_ctl *c, const char *lab, uint32_t timeout_ms, px_ctl_reply *final,
                       px_errmsg *em)
{
    px_msg_request rq = {.op = px_str_c("status"), .lab = px_str_c(lab)};
    char last[PX_WIRE_MAX_ROWS][24];
    memset(last, 0, sizeof(last));
    uint64_t until = px_monotonic_ms() + timeout_ms;
    for (;;) {
        px_err err = px_ctl_request(c, &rq, 5000, final, em);
        if (err)
            return err;
        const px_msg_reply *r = &final->msg->body.reply;
        for (uint32_t i = 0; i < r->n_guests && i < PX_WIRE_MAX_ROWS; i++) {
            const px_guest_row *g = &r->guests[i];
            char st[24];
            snprintf(st, sizeof(st), "%.*s", (int)g->state.len, g->state.ptr);
            if (strcmp(st, last[i]) != 0) {
                char line[256];
                snprintf(line, sizeof(line), "guest %.*s on %.*s: %s%s%.*s", (int)g->name.len,
                         g->name.ptr, (int)g->host.len, g->host.ptr, st, g->detail.len ? " - " : "",
                         (int)g->detail.len, g->detail.ptr);
                progress(line);
                snprintf(last[i], sizeof(last[i]), "%s", st);
            }
        }
        /* Done when the lab failed, or runs and no guest is still on its
         * way up (defined, pending, starting). */
        bool settling = false;
        for (uint32_t i = 0; i < r->n_guests; i++)
            settling |= px_str_eq(r->guests[i].state, "defined") ||
                        px_str_eq(r->guests[i].state, "pending") ||
                        px_str_eq(r->guests[i].state, "starting");
        if (r->n_labs == 1 && (px_str_eq(r->labs[0].state, "failed") ||
                               (px_str_eq(r->labs[0].state, "running") && !settling)))
            return PX_OK;
        px_ctl_reply_fini(final);
        if (px_monotonic_ms() > until)
            return px_errmsg_set(em, PX_E_TIMEOUT,
                                 "lab %s is not running after %u s; 'plexus status %s' shows "
                                 "what it waits for",
                                 lab, timeout_ms / 1000, lab);
        px_sleep_ms(150);
    }
}

static int run(px_cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"local", no_argument, NULL, 'l'},        {"hosts", required_argument, NULL, 'n'},
        {"policy", required_argument, NULL, 'p'}, {"timeout", required_argument, NULL, 't'},
        {"dry-run", no_argument, NULL, 'd'},      {NULL, 0, NULL, 0},
    };
    bool local = false, dry_run = false;
    uint32_t n_hosts = 0, timeout = 120;
    const char *policy = "reschedule";
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "ln:p:t:", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            local = true;
            break;
        case 'n':
            n_hosts = (uint32_t)strtoul(optarg, NULL, 10);
            if (n_hosts < 1 || n_hosts > PX_LOCAL_MAX_HOSTS)
                return px_cli_usage(cli, "up", "--hosts takes 1 to %u", PX_LOCAL_MAX_HOSTS);
            break;
        case 'p':
            policy = optarg;
            if (strcmp(policy, "reschedule") != 0 && strcmp(policy, "stop") != 0)
                return px_cli_usage(cli, "up", "--policy is reschedule or stop");
            break;
        case 't':
            timeout = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'd':
            dry_run = true;
            break;
        default:
            return px_cli_usage(cli, "up", "bad option");
        }
    }
    if (optind + 1 != argc)
        return px_cli_usage(cli, "up", "expected exactly one topology FILE");
    if ((n_hosts || dry_run) && !local)
        return px_cli_usage(cli, "up", "--hosts and --dry-run go with --local");
    const char *file = argv[optind];
    t_start = px_monotonic_ms();
    quiet_progress = cli->json;

    /* Check the file here first: errors point at file:line:col at once. */
    px_errmsg em = {{0}};
    char *text;
    size_t len;
    px_topo *topo = NULL;
    if (px_read_file(file, PX_TOPO_MAX_FILE, &text, &len, &em) != PX_OK)
        return px_cli_fail(cli, "up", NULL, "%s", em.text);
    if (px_topo_load_buffer(file, text, len, &topo, &em) != PX_OK) {
        free(text);
        fprintf(stderr, "%s\n", em.text);
        return PX_EXIT_FAIL;
    }
    char lab[64];
    snprintf(lab, sizeof(lab), "%s", topo->name);

    px_local l;
    px_ctl_target t;
    int rc = PX_EXIT_FAIL;
    if (local) {
        char hosts[PX_LOCAL_MAX_HOSTS][64];
        uint32_t n = topo->n_hosts ? topo->n_hosts : (n_hosts ? n_hosts : 2);
        if (topo->n_hosts && n_hosts && n_hosts != topo->n_hosts) {
            px_topo_free(topo);
            free(text);
            return px_cli_usage(cli, "up", "%s names %u hosts; --hosts %u disagrees", file,
                                topo->n_hosts, n_hosts);
        }
        if (n > PX_LOCAL_MAX_HOSTS) {
            px_topo_free(topo);
            free(text);
            return px_cli_fail(cli, "up", NULL, "local mode runs at most %u hosts",
                               PX_LOCAL_MAX_HOSTS);
        }
        for (uint32_t i = 0; i < n; i++) {
            if (topo->n_hosts)
                snprintf(hosts[i], sizeof(hosts[i]), "%s", topo->hosts[i].name);
            else
                snprintf(hosts[i], sizeof(hosts[i]), "host%u", i + 1);
        }
        if (px_local_start(&l, lab, (const char(*)[64])hosts, n, dry_run, progress, &em) != PX_OK) {
            rc = px_cli_fail(cli, "up", NULL, "%s", em.text);
            goto out;
        }
        t = l.target;
    } else if ((rc = px_cli_target(cli, "up", NULL, &t)) != PX_EXIT_OK) {
        goto out;
    }
    rc = PX_EXIT_FAIL;

    px_ctl *ctl = NULL;
    px_ctl_reply r = {0};
    px_err err = px_ctl_open(&t, &ctl, &em);
    if (!err && local)
        err = wait_nodes(ctl, l.n_hosts, 15000, &em);
    if (!err) {
        px_msg_request rq = {.op = px_str_c("up"),
                             .lab = px_str_c(lab),
                             .topology = {(const uint8_t *)text, (uint32_t)len},
                             .source = px_str_c(file),
                             .policy = px_str_c(policy)};
        err = px_ctl_request(ctl, &rq, 10000, &r, &em);
    }
    if (!err) {
        char line[600];
        snprintf(line, sizeof(line), "%.*s", (int)r.msg->body.reply.message.len,
                 r.msg->body.reply.message.ptr);
        progress(line);
        px_ctl_reply_fini(&r);
        err = wait_lab(ctl, lab, timeout * 1000, &r, &em);
    }
    if (err) {
        rc = px_cli_fail(cli, "up", local ? "the lab directory keeps the daemon logs" : NULL, "%s",
                         em.text);
        if (local) {
            fprintf(stderr, "plexus: up: stopping the local lab again\n");
            px_ctl_close(ctl);
            ctl = NULL;
            px_local_stop(&l, NULL);
        }
        goto close;
    }
    const px_msg_reply *rep = &r.msg->body.reply;
    bool running = rep->n_labs == 1 && px_str_eq(rep->labs[0].state, "running");
    uint32_t failed = 0;
    for (uint32_t i = 0; i < rep->n_guests; i++)
        failed += px_str_eq(rep->guests[i].state, "failed");
    if (cli->json) {
        px_print_json(rep, true, true);
    } else {
        printf("\n");
        px_print_labs(rep);
        px_print_guests(rep);
        printf("\n");
        px_print_nodes(rep);
        if (running)
            printf("\nlab %s is up in %.1f s%s; 'plexus down %s' stops it\n", lab,
                   (double)(px_monotonic_ms() - t_start) / 1000.0,
                   failed ? ", but some guests failed (see DETAIL)" : "", lab);
    }
    rc = running && !failed ? PX_EXIT_OK : PX_EXIT_FAIL;
    px_ctl_reply_fini(&r);
close:
    px_ctl_close(ctl);
out:
    px_topo_free(topo);
    free(text);
    return rc;
}

const px_cli_cmd px_cmd_up = {
    .name = "up",
    .summary = "bring a lab up: place it, send each node its plan, wait until running",
    .help = "usage: plexus [--json] up FILE [--local [--hosts N]] [--policy reschedule|stop]\n"
            "                        [--timeout SECONDS]\n"
            "\n"
            "Validate FILE, hand it to the coordinator, which places its guests and nets\n"
            "on nodes and sends each node one plan, and follow the lab until every guest\n"
            "has started or failed (progress on stderr: each guest's state as it\n"
            "changes, with the elapsed time), then print the status table.\n"
            "\n"
            "exit status: 0 when the lab runs with every guest running; 1 when it\n"
            "failed or a guest failed (the lab stays up: 'plexus down LAB'); 2 usage.\n"
            "\n"
            "options:\n"
            "  --local        start a coordinator and N nodes on this machine first: as\n"
            "                 root each node gets its own network namespace joined by a\n"
            "                 veth pair and bridge; otherwise all use loopback\n"
            "  --hosts N      local nodes when FILE has no hosts: section (default 2;\n"
            "                 with a hosts: section the node names are those hosts)\n"
            "  --policy P     what the coordinator does when a node is lost:\n"
            "                 reschedule its guests elsewhere (default) or stop the lab\n"
            "  --timeout S    give up waiting after S seconds (default 120)\n"
            "  --dry-run      with --local: run the control plane only; nodes apply\n"
            "                 their plans but start no QEMU (guests stay 'planned')\n"
            "\n"
            "examples:\n"
            "  plexus up configs/quickstart.yaml --local\n"
            "  plexus --coordinator tcp://lab1:7600 --coordinator-key KEY up lab.yaml\n",
    .run = run,
};
