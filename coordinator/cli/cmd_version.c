/* plexus version: program and protocol versions. */
#include <stdio.h>

#include "cli.h"
#include "fabric/core/wire.h"

#ifndef PX_VERSION
#define PX_VERSION "unknown"
#endif

static int run(px_cli *cli, int argc, char **argv)
{
    (void)argv;
    if (argc > 1)
        return px_cli_usage(cli, "version", "takes no arguments");
    if (cli->json)
        printf("{\"version\":\"%s\",\"protocol\":%u}\n", PX_VERSION, PX_WIRE_VERSION);
    else
        printf("plexus %s (wire protocol %u)\n", PX_VERSION, PX_WIRE_VERSION);
    return PX_EXIT_OK;
}

const px_cli_cmd px_cmd_version = {
    .name = "version",
    .summary = "print the plexus and wire protocol versions",
    .help = "usage: plexus [--json] version\n"
            "\n"
            "Print the plexus release and the wire protocol version this build speaks.\n"
            "Nodes and coordinators refuse peers whose protocol range does not overlap.\n",
    .run = run,
};
