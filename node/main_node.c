/* plexus-node: command line and process set-up. See agent.h. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "fabric/core/daemon.h"
#include "fabric/core/log.h"

static const char usage[] =
    "usage: plexus-node --name NAME --coordinator ENDPOINT --coordinator-key KEY\n"
    "                   --key FILE --data-listen ENDPOINT [options]\n"
    "\n"
    "The plexus host agent: registers this host with the coordinator, heartbeats,\n"
    "applies the plans it is sent (guests, fabric objects homed here, endpoints)\n"
    "and reports their state. Reconnects by itself when the coordinator restarts.\n"
    "\n"
    "options:\n"
    "  --name NAME              this node's name (as in the topology's hosts:)\n"
    "  --coordinator ENDPOINT   e.g. tcp://10.0.0.1:7600\n"
    "  --coordinator-key KEY    the coordinator's public key (Z85, 40 characters)\n"
    "  --key FILE               this node's key pair (plexus keys create NAME); its\n"
    "                           public key must be authorised on the coordinator\n"
    "  --data-listen ENDPOINT   data plane for peer nodes, e.g. tcp://10.0.0.2:7700\n"
    "  --runtime-dir DIR        private runtime directory (default /run/plexus/NAME)\n"
    "  --cpus N, --memory-mb N  capacity offered (default CPUs x 4, half the memory)\n"
    "  --log-level LEVEL        debug | info | warn | error (default info)\n"
    "  --log-file FILE          log here instead of stderr\n"
    "  --image-dir DIR          built-in guest images (default $PLEXUS_IMAGE_DIR, else\n"
    "                           the build tree's guest/, else /usr/share/plexus/guest)\n"
    "  --qemu PATH              QEMU binary (default qemu-system-x86_64)\n"
    "  --can-shim PATH          libpxcanshim.so, preloaded into QEMUs of guests with\n"
    "                           CAN controllers (default $PLEXUS_CAN_SHIM, else the\n"
    "                           build tree's devices/can/, else /usr/lib/plexus/)\n"
    "  --cache-dir DIR          keeps the KVM probe's answer (default /var/cache/plexus)\n"
    "  --stop-timeout-ms N      powerdown grace before quit (default 3000)\n"
    "  --dry-run                apply plans without starting QEMU (guests stay\n"
    "                           'planned'): exercise the control plane alone\n"
    "  -h, --help               this text\n";

/* $ENV, else REL next to the build tree's node/ directory (build/node/REL,
 * e.g. "../guest"), else the installed location. */
static const char *default_path(const char *env_name, const char *rel, const char *installed,
                                char *buf, size_t len)
{
    const char *env = getenv(env_name);
    if (env && *env)
        return env;
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            snprintf(buf, len, "%s/%s", self, rel);
            if (access(buf, R_OK) == 0)
                return buf;
        }
    }
    return installed;
}

static void stop_node(void *ud)
{
    px_node_stop(ud);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'},
        {"coordinator", required_argument, NULL, 'c'},
        {"coordinator-key", required_argument, NULL, 'K'},
        {"key", required_argument, NULL, 'k'},
        {"data-listen", required_argument, NULL, 'd'},
        {"runtime-dir", required_argument, NULL, 'r'},
        {"cpus", required_argument, NULL, 'C'},
        {"memory-mb", required_argument, NULL, 'M'},
        {"log-level", required_argument, NULL, 'L'},
        {"log-file", required_argument, NULL, 'F'},
        {"image-dir", required_argument, NULL, 'I'},
        {"qemu", required_argument, NULL, 'Q'},
        {"can-shim", required_argument, NULL, 'S'},
        {"cache-dir", required_argument, NULL, 'D'},
        {"stop-timeout-ms", required_argument, NULL, 'T'},
        {"dry-run", no_argument, NULL, 'N'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    px_node_opts o = {0};
    const char *key = NULL, *log_file = NULL;
    char runtime[4096] = "";
    px_log_level level = PX_LOG_INFO;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            o.name = optarg;
            break;
        case 'c':
            o.coordinator = optarg;
            break;
        case 'K':
            o.coordinator_key = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'd':
            o.data_listen = optarg;
            break;
        case 'r':
            snprintf(runtime, sizeof(runtime), "%s", optarg);
            break;
        case 'C':
            o.cpus = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'M':
            o.mem_mb = strtoull(optarg, NULL, 10);
            break;
        case 'L':
            if (px_log_level_parse(optarg, &level) != PX_OK) {
                fprintf(stderr, "plexus-node: unknown log level '%s'\n", optarg);
                return 2;
            }
            break;
        case 'F':
            log_file = optarg;
            break;
        case 'I':
            o.image_dir = optarg;
            break;
        case 'Q':
            o.qemu = optarg;
            break;
        case 'S':
            o.can_shim = optarg;
            break;
        case 'D':
            o.cache_dir = optarg;
            break;
        case 'T':
            o.stop_timeout_ms = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'N':
            o.dry_run = true;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (!o.name || !o.coordinator || !o.coordinator_key || !key || !o.data_listen ||
        optind != argc) {
        fprintf(stderr, "plexus-node: --name, --coordinator, --coordinator-key, --key and "
                        "--data-listen are required\ntry 'plexus-node --help'\n");
        return 2;
    }
    if (!px_key_valid(o.coordinator_key)) {
        fprintf(stderr, "plexus-node: --coordinator-key: expected a 40-character Z85 public "
                        "key\nhint: plexus keys show coordinator\n");
        return 2;
    }
    if (!runtime[0])
        snprintf(runtime, sizeof(runtime), "/run/plexus/%s", o.name);
    char images[4096];
    if (!o.image_dir)
        o.image_dir = default_path("PLEXUS_IMAGE_DIR", "../guest", "/usr/share/plexus/guest",
                                   images, sizeof(images));
    char shim[4096];
    if (!o.can_shim)
        o.can_shim = default_path("PLEXUS_CAN_SHIM", "../devices/can/libpxcanshim.so",
                                  "/usr/lib/plexus/libpxcanshim.so", shim, sizeof(shim));
    if (!o.cache_dir)
        o.cache_dir = geteuid() == 0 ? "/var/cache/plexus" : NULL;
    o.runtime_dir = runtime;
    px_errmsg em = {{0}};
    if (px_log_setup(level, log_file, &em) != PX_OK || px_keypair_load(key, &o.key, &em) != PX_OK) {
        fprintf(stderr, "plexus-node: %s\n", em.text);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t loop;
    uv_loop_init(&loop);
    px_node *node = calloc(1, sizeof(*node));
    int rc = 1;
    if (!node || px_node_start(node, &loop, &o, &em) != PX_OK) {
        fprintf(stderr, "plexus-node: %s\n", em.text);
        goto out;
    }
    px_daemon_run(&loop, "node", stop_node, node);
    px_node_fini(node);
    rc = 0;
out:
    free(node);
    uv_loop_close(&loop);
    return rc;
}
