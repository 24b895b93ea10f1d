/* plexus CLI — loading and planning a topology file for plan and graph. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plan_util.h"

#define MIB (1024ull * 1024ull)

int px_cli_parse_hosts(const px_cli *cli, const char *cmd, const char *arg, uint32_t *n)
{
    char *end;
    long v = strtol(arg, &end, 10);
    if (end == arg || *end || v < 1 || v > (long)PX_CLI_SIM_HOSTS_MAX)
        return px_cli_usage(cli, cmd, "--hosts takes a number from 1 to %u", PX_CLI_SIM_HOSTS_MAX);
    *n = (uint32_t)v;
    return PX_EXIT_OK;
}

int px_cli_plan_file(const px_cli *cli, const char *cmd, const char *path, uint32_t sim_hosts,
                     px_topo **t, px_lab_plan *p)
{
    px_errmsg em = {{0}};
    memset(p, 0, sizeof(*p));
    *t = NULL;
    if (px_topo_load_file(path, t, &em) != PX_OK) {
        fprintf(stderr, "%s\n", em.text);
        return PX_EXIT_FAIL;
    }
    px_plan_host *sim = NULL;
    if (!(*t)->n_hosts) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        uint64_t mem = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE) / MIB;
        sim = calloc(sim_hosts, sizeof(*sim));
        if (!sim) {
            px_cli_fail(cli, cmd, NULL, "out of memory");
            goto fail_topo;
        }
        /* Simulated hosts share this machine: each may use all of it (TCG
         * guests overcommit CPUs well), memory is split between them. */
        px_plan_sim_hosts(sim_hosts, (uint32_t)(cpus > 0 ? cpus : 1) * 4, mem / sim_hosts, sim);
    }
    px_err err = px_lab_plan_make(*t, sim, sim ? sim_hosts : 0, 0, p, &em);
    free(sim);
    if (err) {
        px_cli_fail(cli, cmd, "add hosts (or capacity), or relax pins and anti-affinity", "%s",
                    em.text);
        goto fail_topo;
    }
    return PX_EXIT_OK;

fail_topo:
    px_topo_free(*t);
    *t = NULL;
    return PX_EXIT_FAIL;
}

const char *px_cli_net_kind(px_topo_obj o)
{
    switch (o) {
    case PX_TOPO_OBJ_CAN_BUS:
        return "can_bus";
    case PX_TOPO_OBJ_ETH_SEGMENT:
        return "eth_segment";
    case PX_TOPO_OBJ_IVSHMEM:
        return "ivshmem";
    case PX_TOPO_OBJ_CXL_SWITCH:
        return "cxl_switch";
    default:
        return px_topo_obj_str(o);
    }
}
