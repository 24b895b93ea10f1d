/* plexus CLI — talking to a coordinator, and finding one.
 *
 * A session is one authenticated connection (CLIENT channel) on a private
 * libuv loop; px_ctl_request blocks the CLI (not a daemon) until the reply
 * arrives or the deadline passes.
 *
 * Finding the coordinator, first match wins:
 *   1. --coordinator EP --coordinator-key KEY [--key FILE] on the command line;
 *   2. PLEXUS_COORDINATOR, PLEXUS_COORDINATOR_KEY, PLEXUS_KEY in the environment;
 *   3. a local-mode lab's context file (see local.h).
 */
#ifndef PX_CLI_CTL_H
#define PX_CLI_CTL_H

#include <stdbool.h>
#include <stdint.h>

#include "fabric/core/transport.h"
#include "fabric/core/wire.h"

typedef struct px_ctl_target {
    char endpoint[256];
    char server_key[PX_KEY_Z85_LEN + 1];
    px_keypair key;       /* this CLI's key pair */
    char local_dir[4096]; /* local-mode lab directory, "" for a remote coordinator */
    char lab[64];         /* local mode: the lab this coordinator runs */
} px_ctl_target;

typedef struct px_ctl px_ctl;

/* A reply: msg's strings point into buf; free both with px_ctl_reply_fini. */
typedef struct px_ctl_reply {
    uint8_t *buf;
    px_msg *msg;
} px_ctl_reply;

px_err px_ctl_open(const px_ctl_target *t, px_ctl **out, px_errmsg *em);

/* Send rq, wait up to timeout_ms for the REPLY. A coordinator ERROR, or a
 * REPLY with a non-zero code, becomes that code with its message in em; PX_E_TIMEOUT names the
 * endpoint and says how to check the coordinator; PX_E_AUTH says which key to authorise. */
px_err px_ctl_request(px_ctl *c, const px_msg_request *rq, uint32_t timeout_ms, px_ctl_reply *out,
                      px_errmsg *em);

/* Send TOOL t (lab, net, args, json; the coordinator fills id and cli) and
 * wait up to timeout_ms for the merged TOOL_REPLY (docs/control-plane.md).
 * PX_OK whenever a TOOL_REPLY came, whatever its code: the caller reads
 * out->msg->body.tool_reply (code, message, json, endpoint, key), since
 * the nodes that answered are worth showing next to one that failed. A
 * coordinator ERROR, a timeout or a refused key are errors as for
 * px_ctl_request. Allow the coordinator's own wait (3 s) in timeout_ms. */
px_err px_ctl_tool(px_ctl *c, const px_msg_tool *t, uint32_t timeout_ms, px_ctl_reply *out,
                   px_errmsg *em);

void px_ctl_reply_fini(px_ctl_reply *r);
void px_ctl_close(px_ctl *c);

/* Resolve flags/environment into t. Returns PX_E_NOTFOUND (no error text)
 * when neither gives a coordinator, so the caller can try local mode. */
px_err px_ctl_target_from_env(const char *endpoint, const char *server_key, const char *key_file,
                              px_ctl_target *t, px_errmsg *em);

#endif
