/* plexus CLI — the subcommand table.
 *
 * Each subcommand lives in its own file (cmd_<name>.c) and exports one
 * px_cli_cmd. main.c holds the table, the global options and the help
 * printer. A subcommand returns a process exit status: 0 success, 1 the
 * operation failed (a message was printed), 2 bad usage.
 */
#ifndef PX_CLI_H
#define PX_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "fabric/core/err.h"

enum { PX_EXIT_OK = 0, PX_EXIT_FAIL = 1, PX_EXIT_USAGE = 2 };

typedef struct px_cli {
    bool json;                   /* --json: machine-readable output on stdout */
    const char *prog;            /* argv[0] basename, for messages */
    const char *coordinator;     /* --coordinator ENDPOINT */
    const char *coordinator_key; /* --coordinator-key KEY|FILE */
    const char *key;             /* --key FILE: this CLI's key pair */
} px_cli;

struct px_ctl_target;
/* Which coordinator to talk to: flags, then environment, then the local lab
 * named `lab` (or the only local lab when lab is NULL). Prints the error
 * with a hint and returns PX_EXIT_FAIL when there is none. */
int px_cli_target(const px_cli *cli, const char *cmd, const char *lab, struct px_ctl_target *t);

typedef struct px_cli_cmd {
    const char *name;
    const char *summary; /* one line for `plexus --help` */
    const char *help;    /* full text for `plexus CMD --help`: usage, options, examples */
    int (*run)(px_cli *cli, int argc, char **argv);
    bool own_help; /* run answers -h/--help itself (a command with subcommands) */
} px_cli_cmd;

/* Print "plexus: CMD: message" and, when hint is not NULL, "hint: ..." to
 * stderr; returns PX_EXIT_FAIL so callers can `return px_cli_fail(...)`. */
int px_cli_fail(const px_cli *cli, const char *cmd, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Usage error: message, then "try 'plexus CMD --help'"; returns PX_EXIT_USAGE. */
int px_cli_usage(const px_cli *cli, const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* True (and the help text printed to stdout) if argv holds -h or --help. */
bool px_cli_wants_help(const px_cli_cmd *cmd, int argc, char **argv);

/* Write s as a JSON string literal (quotes and escapes included). */
void px_cli_json_str(FILE *f, const char *s);

extern const px_cli_cmd px_cmd_version;
extern const px_cli_cmd px_cmd_keys;
extern const px_cli_cmd px_cmd_validate;
extern const px_cli_cmd px_cmd_plan;
extern const px_cli_cmd px_cmd_graph;
extern const px_cli_cmd px_cmd_up;
extern const px_cli_cmd px_cmd_down;
extern const px_cli_cmd px_cmd_status;
extern const px_cli_cmd px_cmd_nodes;
extern const px_cli_cmd px_cmd_logs;
extern const px_cli_cmd px_cmd_console;
extern const px_cli_cmd px_cmd_can;
extern const px_cli_cmd px_cmd_link;
extern const px_cli_cmd px_cmd_ivshmem;
extern const px_cli_cmd px_cmd_cxl;
extern const px_cli_cmd px_cmd_capture;

#endif
