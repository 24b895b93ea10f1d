/* plexus CLI: the coordinator side of the fabric tool commands (can, link,
 * capture): which lab, one TOOL relayed through the coordinator to the
 * net's nodes, and their merged reply. Internal to the CLI. */
#ifndef PX_CLI_TOOLCTX_H
#define PX_CLI_TOOLCTX_H

#include <stdbool.h>
#include <stdint.h>

#include "cli.h"
#include "ctl.h"

#define PX_TOOLCTX_TIMEOUT_MS 8000u /* the coordinator waits 3 s for its nodes */

typedef struct px_toolctx {
    px_cli *cli;
    char cmd[24]; /* "can send", for messages */
    px_ctl_target t;
    px_ctl *ctl;
    char lab[64]; /* --lab, else the local lab's, else the coordinator's only one */
} px_toolctx;

/* The options every tool subcommand takes, over argv[1..argc) (argv[0] is
 * the subcommand): --lab LAB, --json, --help (prints help). Returns -1 to
 * go on with the operands at argv[optind..argc), else the exit status
 * (help printed, or a bad option). */
int px_toolctx_options(px_cli *cli, const char *cmd, const char *help, int argc, char **argv,
                       const char **lab, bool *json);

/* Connect and pick the lab; on failure the message is printed. */
int px_toolctx_open(px_toolctx *x, px_cli *cli, const char *cmd, const char *lab);
void px_toolctx_close(px_toolctx *x);

/* A name or argument the wire will carry: non-empty, at most max bytes, UTF-8. */
int px_toolctx_check(const px_toolctx *x, const char *what, const char *s, size_t max);

/* TOOL {lab, net, [tool, sub, args...]}; *r holds the merged reply. */
int px_toolctx_tool(px_toolctx *x, const char *net, const char *tool, const char *sub,
                    char *const *args, uint32_t n, bool json, px_ctl_reply *r);

/* What a node-side failure code means, as a hint (or NULL). */
const char *px_toolctx_hint(int32_t code);

/* The merged reply: JSON or text on stdout, a failure on stderr. */
int px_toolctx_print(const px_toolctx *x, const px_msg_tool_reply *rep, bool json);

#endif
