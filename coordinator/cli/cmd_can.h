/* plexus can — what cmd_can.c (the subcommands, their help, the TOOL side)
 * hands cmd_can_stream.c (send, dump and replay on the bus's data plane,
 * through fabric/can-bus/client.h). Internal to the CLI.
 */
#ifndef PX_CLI_CMD_CAN_H
#define PX_CLI_CMD_CAN_H

#include <stdbool.h>
#include <stdint.h>

#include "cli.h"
#include "devices/can/frame.h"
#include "fabric/core/transport.h"
#include "fabric/core/wire.h"

#define PX_CAN_CONFIRM_MS    5000u /* send/replay: no TX-complete this long = give up */
#define PX_CAN_REPLAY_WINDOW 32u   /* frames submitted and not yet TX-complete */

/* A guest's endpoints on the bus, to name the sources in dump --json. */
typedef struct px_can_src {
    uint32_t node;     /* px_can_member_id(the guest's host) */
    uint32_t ep_first; /* px_can_guest_ep(guest index, 0) */
    char guest[64];
} px_can_src;

/* One CLI on one bus: who it is and where the home is (after "open"). */
typedef struct px_can_session {
    const px_cli *cli;
    const char *cmd; /* "can send", ..., for messages */
    px_keypair key;  /* this CLI's key pair: its identity at the home too */
    char lab[64];
    const char *bus;
    char ep[PX_WIRE_MAX_ENDPOINT + 1];     /* the home's data endpoint */
    char server_key[PX_WIRE_MAX_NAME + 1]; /* its public key */
    const px_can_src *srcs;                /* may be NULL */
    uint32_t n_srcs;
} px_can_session;

/* Each blocks (its own libuv loop) until done and returns the exit status,
 * having printed what went wrong with a hint. */

/* Put frames on the bus one after the other; 0 once every one came back
 * TX-complete. texts name them in messages. */
int px_can_send(const px_can_session *s, const px_can_frame *frames, char *const *texts,
                uint32_t n);

/* Print the bus's frames: candump -L lines, or one JSON object per line.
 * count 0 = no limit; idle_ms 0 = no timeout (see the help text). */
int px_can_dump(const px_can_session *s, uint64_t count, uint32_t idle_ms, bool json);

/* Play a candump -L log ("-" = stdin) onto the bus. */
int px_can_replay(const px_can_session *s, const char *file, bool timing);

#endif
