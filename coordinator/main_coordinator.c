/* plexus-coordinator: command line and process set-up. See coord.h. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord.h"
#include "fabric/core/authkeys.h"
#include "fabric/core/daemon.h"
#include "fabric/core/log.h"

static const char usage[] =
    "usage: plexus-coordinator --key FILE --authorized-keys FILE [options]\n"
    "\n"
    "The plexus coordinator: holds the desired state of every lab, places guests\n"
    "and nets on nodes, sends each node its plan, watches node heartbeats and\n"
    "applies each lab's node-loss policy. State survives restarts (journal).\n"
    "\n"
    "options:\n"
    "  --listen ENDPOINT        where nodes and CLIs connect\n"
    "                           (default tcp://127.0.0.1:7600)\n"
    "  --key FILE               this coordinator's key pair (plexus keys create)\n"
    "  --authorized-keys FILE   public keys of nodes and CLIs allowed in\n"
    "  --state-dir DIR          journal directory (default /var/lib/plexus/coordinator)\n"
    "  --heartbeat-ms N         heartbeat period asked of nodes (default 1000);\n"
    "                           a node silent for 3 periods is lost\n"
    "  --log-level LEVEL        debug | info | warn | error (default info)\n"
    "  --log-file FILE          log here instead of stderr\n"
    "  -h, --help               this text\n";

static void stop_coord(void *ud)
{
    px_coord_stop(ud);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"key", required_argument, NULL, 'k'},
        {"authorized-keys", required_argument, NULL, 'a'},
        {"state-dir", required_argument, NULL, 's'},
        {"heartbeat-ms", required_argument, NULL, 'b'},
        {"log-level", required_argument, NULL, 'L'},
        {"log-file", required_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *listen = "tcp://127.0.0.1:7600", *key = NULL, *auth = NULL;
    const char *state = "/var/lib/plexus/coordinator", *log_file = NULL;
    px_log_level level = PX_LOG_INFO;
    uint32_t hb = 1000;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            listen = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'a':
            auth = optarg;
            break;
        case 's':
            state = optarg;
            break;
        case 'b':
            hb = (uint32_t)strtoul(optarg, NULL, 10);
            if (hb < 50 || hb > 2000) {
                fprintf(stderr, "plexus-coordinator: --heartbeat-ms must be 50..2000\n");
                return 2;
            }
            break;
        case 'L':
            if (px_log_level_parse(optarg, &level) != PX_OK) {
                fprintf(stderr, "plexus-coordinator: unknown log level '%s'\n", optarg);
                return 2;
            }
            break;
        case 'F':
            log_file = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (!key || !auth || optind != argc) {
        fprintf(stderr, "plexus-coordinator: --key and --authorized-keys are required\n"
                        "hint: plexus keys create coordinator; plexus keys authorize NODE-KEY\n");
        return 2;
    }
    px_errmsg em = {{0}};
    if (px_log_setup(level, log_file, &em) != PX_OK) {
        fprintf(stderr, "plexus-coordinator: %s\n", em.text);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    px_coord_opts o = {.listen = listen, .state_dir = state, .heartbeat_ms = hb};
    px_authkeys ak = {0};
    if (px_keypair_load(key, &o.key, &em) != PX_OK || px_authkeys_load(auth, &ak, &em) != PX_OK) {
        fprintf(stderr, "plexus-coordinator: %s\n", em.text);
        return 1;
    }
    o.allow = ak.ptrs;
    o.n_allow = ak.n;

    uv_loop_t loop;
    uv_loop_init(&loop);
    px_coord *coord = calloc(1, sizeof(*coord));
    int rc = 1;
    if (!coord || px_coord_start(coord, &loop, &o, &em) != PX_OK) {
        fprintf(stderr, "plexus-coordinator: %s\n", em.text);
        goto out;
    }
    px_daemon_run(&loop, "coord", stop_coord, coord);
    px_coord_fini(coord);
    rc = 0;
out:
    free(coord);
    uv_loop_close(&loop);
    px_authkeys_fini(&ak);
    return rc;
}
