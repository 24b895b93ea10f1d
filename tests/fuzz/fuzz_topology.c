/* plexus — libFuzzer target: the topology loader (px_topo_load_buffer).
 *
 * Properties checked on every input:
 *   - a rejection leaves *out NULL and says where: the message starts with
 *     "fuzz.yaml:" and says what was expected (or is out of memory);
 *   - an accepted model is consistent: every index is in range, every name
 *     non-empty, MACs unicast and unique, CXL ports inside their switch,
 *     LDs bound no more than a pool has;
 *   - loading is deterministic: the same bytes give the same model (MACs and
 *     ports included) or the same message.
 * Seeds: gen_seeds_topology copies tests/topology/{good,bad} and configs/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/topology.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_topology: %s: %s\n", what, detail ? detail : "");
    abort();
}

static void check_net_index(uint32_t i, uint32_t n, const char *what)
{
    if (i >= n)
        die("index out of range", what);
}

static void check_model(const px_topo *t)
{
    if (!t->name[0] || t->n_guests == 0 || t->n_guests > PX_TOPO_MAX_GUESTS)
        die("bad topology", t->name);
    uint32_t *lds = calloc(t->n_cxl_pools + 1, sizeof(*lds));
    if (!lds)
        die("calloc", NULL);
    for (uint32_t i = 0; i < t->n_guests; i++) {
        const px_topo_guest *g = &t->guests[i];
        if (!g->name[0] || g->cpus == 0 || g->memory == 0)
            die("bad guest", g->name);
        if (g->image.type == PX_TOPO_IMAGE_KERNEL && !g->image.kernel)
            die("kernel image without kernel", g->name);
        if (g->image.type == PX_TOPO_IMAGE_DISK && !g->image.disk)
            die("disk image without disk", g->name);
        for (uint32_t k = 0; k < g->n_nics; k++) {
            check_net_index(g->nics[k].segment, t->n_eth_segments, "nic segment");
            if (g->nics[k].mac[0] & 1)
                die("multicast MAC", g->name);
            for (uint32_t j = 0; j <= i; j++)
                for (uint32_t m = 0; m < t->guests[j].n_nics; m++)
                    if ((j != i || m != k) &&
                        memcmp(t->guests[j].nics[m].mac, g->nics[k].mac, 6) == 0)
                        die("duplicate MAC", g->name);
        }
        for (uint32_t k = 0; k < g->n_cans; k++) {
            check_net_index(g->cans[k].bus, t->n_can_buses, "can bus");
            if (t->can_buses[g->cans[k].bus].fd && g->cans[k].controller != PX_TOPO_CAN_CTUCAN_PCI)
                die("classic controller on an FD bus", g->name);
        }
        for (uint32_t k = 0; k < g->n_shms; k++)
            check_net_index(g->shms[k].region, t->n_ivshmem, "ivshmem region");
        for (uint32_t k = 0; k < g->n_cxls; k++) {
            const px_topo_cxlif *c = &g->cxls[k];
            check_net_index(c->sw, t->n_cxl_switches, "cxl switch");
            if (c->port >= t->cxl_switches[c->sw].ports)
                die("cxl port outside its switch", g->name);
            if (c->pool != PX_TOPO_NONE) {
                check_net_index(c->pool, t->n_cxl_pools, "cxl pool");
                lds[c->pool] += c->lds;
                if (lds[c->pool] > t->cxl_pools[c->pool].n_lds)
                    die("more LDs bound than the pool has", g->name);
            }
        }
    }
    free(lds);
    for (uint32_t i = 0; i < t->n_ivshmem; i++)
        if (t->ivshmem[i].size & (t->ivshmem[i].size - 1))
            die("ivshmem size not a power of two", t->ivshmem[i].name);
    for (uint32_t i = 0; i < t->n_eth_segments; i++)
        for (uint32_t k = 0; k < t->eth_segments[i].nat.n_forwards; k++)
            check_net_index(t->eth_segments[i].nat.forwards[k].guest, t->n_guests, "forward");
    for (uint32_t i = 0; i < t->placement.n_pins; i++)
        check_net_index(t->placement.pins[i].host, t->n_hosts, "pin host");
    for (uint32_t i = 0; i < t->n_faults; i++)
        if (t->faults[i].guest != PX_TOPO_NONE)
            check_net_index(t->faults[i].guest, t->n_guests, "fault guest");
}

static bool same_model(const px_topo *a, const px_topo *b)
{
    if (a->n_guests != b->n_guests || strcmp(a->name, b->name) != 0)
        return false;
    for (uint32_t i = 0; i < a->n_guests; i++) {
        const px_topo_guest *x = &a->guests[i], *y = &b->guests[i];
        if (strcmp(x->name, y->name) || x->cpus != y->cpus || x->memory != y->memory ||
            x->n_nics != y->n_nics || x->n_cxls != y->n_cxls)
            return false;
        for (uint32_t k = 0; k < x->n_nics; k++)
            if (memcmp(x->nics[k].mac, y->nics[k].mac, 6) != 0)
                return false;
        for (uint32_t k = 0; k < x->n_cxls; k++)
            if (x->cxls[k].port != y->cxls[k].port)
                return false;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    px_topo *t = (px_topo *)&t, *u = NULL;
    px_errmsg em = {{0}}, em2 = {{0}};
    px_err err = px_topo_load_buffer("fuzz.yaml", (const char *)data, size, &t, &em);
    px_err err2 = px_topo_load_buffer("fuzz.yaml", (const char *)data, size, &u, &em2);
    if (err != err2 || strcmp(em.text, em2.text) != 0)
        die("not deterministic", em.text);
    if (err) {
        if (t || u)
            die("model returned with an error", em.text);
        if (err != PX_E_NOMEM &&
            (strncmp(em.text, "fuzz.yaml:", 10) != 0 || !strstr(em.text, "expected")))
            die("message without location or expectation", em.text);
        return 0;
    }
    check_model(t);
    if (!same_model(t, u))
        die("not deterministic", t->name);
    px_topo_free(t);
    px_topo_free(u);
    return 0;
}
