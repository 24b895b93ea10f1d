/* plexus validate: load a topology and report the first problem, or a
 * one-line summary. */
#include <stdio.h>

#include "cli.h"
#include "coordinator/topology.h"

static int run(px_cli *cli, int argc, char **argv)
{
    if (argc != 2)
        return px_cli_usage(cli, "validate", "expected exactly one topology FILE");
    px_topo *t = NULL;
    px_errmsg em = {{0}};
    px_err err = px_topo_load_file(argv[1], &t, &em);
    if (cli->json) {
        printf("{\"file\":");
        px_cli_json_str(stdout, argv[1]);
        if (err) {
            printf(",\"valid\":false,\"error\":");
            px_cli_json_str(stdout, em.text);
            printf("}\n");
        } else {
            printf(",\"valid\":true,\"name\":");
            px_cli_json_str(stdout, t->name);
            printf(",\"guests\":%u,\"can_buses\":%u,\"eth_segments\":%u,\"ivshmem\":%u,"
                   "\"cxl_switches\":%u,\"cxl_pools\":%u,\"hosts\":%u}\n",
                   t->n_guests, t->n_can_buses, t->n_eth_segments, t->n_ivshmem, t->n_cxl_switches,
                   t->n_cxl_pools, t->n_hosts);
        }
    } else if (err) {
        fprintf(stderr, "%s\n", em.text);
    } else {
        printf("%s: lab %s is valid: %u guests, %u CAN buses, %u Ethernet segments, %u ivshmem "
               "regions, %u CXL switches, %u CXL pools, %u hosts\n",
               argv[1], t->name, t->n_guests, t->n_can_buses, t->n_eth_segments, t->n_ivshmem,
               t->n_cxl_switches, t->n_cxl_pools, t->n_hosts);
    }
    px_topo_free(t);
    return err ? PX_EXIT_FAIL : PX_EXIT_OK;
}

const px_cli_cmd px_cmd_validate = {
    .name = "validate",
    .summary = "check a topology file and report the first error with file:line:col",
    .help = "usage: plexus [--json] validate FILE\n"
            "\n"
            "Load a topology file (docs/topology.md) as 'plexus up' would: every key,\n"
            "type, unit, reference and capacity rule is checked. The first problem is\n"
            "printed as FILE:LINE:COL: what is wrong; expected WHAT.\n"
            "\n"
            "exit status: 0 valid, 1 invalid or unreadable, 2 bad usage.\n"
            "\n"
            "example:\n"
            "  plexus validate configs/quickstart.yaml\n",
    .run = run,
};
