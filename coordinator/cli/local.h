/* plexus CLI — local mode: a coordinator and N nodes on this machine.
 *
 * `plexus up FILE --local --hosts N` makes a private lab directory
 * (LOCAL_ROOT/LAB, mode 0700; LOCAL_ROOT is /run/plexus/local for root,
 * else $XDG_RUNTIME_DIR/plexus/local or /tmp/plexus-UID/local) holding:
 *
 *   keys/          coordinator.key, cli.key, NODE.key, authorized_keys
 *   coordinator/   the coordinator's journal and its bound endpoint
 *   nodes/NODE/    each node's runtime directory
 *   *.log          one log per daemon
 *   context        what later commands need: endpoint, key, pids, network
 *
 * As root each node runs in its own network namespace (px-TAG-N) joined to a
 * bridge (pxb-TAG) by a veth pair, with its own address in 10.251.X.0/24;
 * the coordinator listens on the bridge. Without root every daemon uses
 * loopback. `plexus down LAB` stops the daemons and removes the namespaces,
 * bridge and directory: nothing stays running or mounted.
 *
 * Blocking: these functions spawn `ip` and the daemons and wait for them.
 */
#ifndef PX_CLI_LOCAL_H
#define PX_CLI_LOCAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "ctl.h"
#include "fabric/core/err.h"

#define PX_LOCAL_MAX_HOSTS 16u

typedef struct px_local {
    char lab[64];
    char dir[4096];
    char tag[8]; /* short id for interface and namespace names */
    bool netns;
    uint32_t subnet; /* third octet of 10.251.X.0/24 */
    uint32_t n_hosts;
    char host[PX_LOCAL_MAX_HOSTS][64];
    pid_t coord_pid;
    pid_t node_pid[PX_LOCAL_MAX_HOSTS];
    px_ctl_target target;
} px_local;

/* Directory that holds every local lab. */
void px_local_root(char *buf, size_t len);

/* Start the daemons for `lab` with the given host names (n <= 16). On
 * error everything started is stopped and removed again. progress (may be
 * NULL) receives one-line messages. dry_run: nodes start no QEMU. */
px_err px_local_start(px_local *l, const char *lab, const char (*hosts)[64], uint32_t n,
                      bool dry_run, void (*progress)(const char *line), px_errmsg *em);

/* Read LOCAL_ROOT/LAB/context. PX_E_NOTFOUND if there is no such lab. */
px_err px_local_load(const char *lab, px_local *l, px_errmsg *em);

/* Names of the local labs (up to max). */
uint32_t px_local_list(char (*labs)[64], uint32_t max);

/* Stop the daemons (TERM, then KILL after a grace period), remove the
 * network namespaces, bridge and directory. Idempotent; best effort: what
 * could not be removed is named in em and the result is PX_E_IO. */
px_err px_local_stop(px_local *l, px_errmsg *em);

#endif
