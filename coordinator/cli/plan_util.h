/* plexus CLI — what `plexus plan` and `plexus graph` share: load a topology
 * file and plan it onto its hosts, or onto simulated ones when it has none.
 */
#ifndef PX_CLI_PLAN_UTIL_H
#define PX_CLI_PLAN_UTIL_H

#include <stdint.h>

#include "cli.h"
#include "coordinator/plan.h"

#define PX_CLI_SIM_HOSTS_DEFAULT 2u
#define PX_CLI_SIM_HOSTS_MAX     256u

/* Parse the argument of --hosts (1..PX_CLI_SIM_HOSTS_MAX) into *n. On a bad
 * value prints a usage error for `cmd` and returns PX_EXIT_USAGE; *n is left
 * alone. */
int px_cli_parse_hosts(const px_cli *cli, const char *cmd, const char *arg, uint32_t *n);

/* Load the topology at `path` and plan it the way the coordinator would.
 * When the file has a hosts: section those are the hosts; otherwise
 * `sim_hosts` equal simulated hosts "host1".."hostN" share this machine (each
 * may use all CPUs x4, since TCG guests overcommit well; memory is split).
 *
 * On success returns PX_EXIT_OK; the caller owns *t (px_topo_free) and *p
 * (px_lab_plan_fini). On failure prints the message to stderr — the loader's
 * "FILE:LINE:COL: ..." as is, or "plexus: CMD: ..." with a hint when the
 * plan cannot be made — returns PX_EXIT_FAIL, and leaves *t NULL and *p
 * zeroed. Blocks on reading the file; nothing else. */
int px_cli_plan_file(const px_cli *cli, const char *cmd, const char *path, uint32_t sim_hosts,
                     px_topo **t, px_lab_plan *p);

/* The topology-file spelling of a net's type: "can_bus", "eth_segment",
 * "ivshmem", "cxl_switch" (static string). */
const char *px_cli_net_kind(px_topo_obj o);

#endif
