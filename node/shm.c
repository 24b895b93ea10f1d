/* plexus-node — the ivshmem region service wired into the node. See
 * node/shm.h and fabric/shm/service.h. */
#include "node/shm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/guest.h"
#include "node/qemu_cmd.h"

/* A connecting process is guest NAME of the lab if it is that guest's
 * QEMU. */
static bool pid_name(void *ud, const char *lab, pid_t pid, char *name, size_t cap)
{
    px_node *n = ud;
    for (uint32_t i = 0; i < n->n_labs; i++) {
        px_node_lab *l = n->labs[i];
        if (strcmp(l->name, lab) != 0)
            continue;
        for (uint32_t g = 0; g < l->n_guests; g++)
            if (l->guests[g].g && px_guest_pid(l->guests[g].g) == (int)pid) {
                snprintf(name, cap, "%s", l->guests[g].name);
                return true;
            }
    }
    return false;
}

px_err px_node_shm_start(px_node *n, px_errmsg *em)
{
    px_svc_io io;
    px_node_svc_io(n, &io);
    if (px_shmsvc_new(n->loop, &io, pid_name, n, &n->shm) != PX_OK)
        return px_errmsg_set(em, PX_E_NOMEM, "ivshmem service: out of memory");
    return PX_OK;
}

static px_err region_cfg(const px_node_lab *l, const px_msg_plan *p, uint32_t pi, uint32_t ri,
                         px_shmsvc_region_cfg *c, px_errmsg *em)
{
    const px_topo *t = l->topo;
    const px_topo_ivshmem *tr = &t->ivshmem[ri];
    snprintf(c->name, sizeof(c->name), "%s", tr->name);
    c->size = tr->size;
    c->vectors = tr->vectors;
    c->sync_ms = tr->sync_ns ? (tr->sync_ns + 999999) / 1000000 : 0;
    px_str_copy(c->home, sizeof(c->home), p->nets[pi].home);
    for (uint32_t k = 0; k < p->n_members && c->n_members < PX_SHMSVC_MAX_MEMBERS; k++)
        if (px_str_eq(p->members[k].net, tr->name))
            px_str_copy(c->members[c->n_members++], sizeof(c->members[0]), p->members[k].node);
    int w = snprintf(c->socket, sizeof(c->socket), PX_NODE_SHM_SOCK, l->dir, ri);
    if (w < 0 || (size_t)w >= sizeof(c->socket))
        return px_errmsg_set(em, PX_E_TOOBIG,
                             "region %s: socket path under %s is longer than %zu bytes", tr->name,
                             l->dir, sizeof(c->socket) - 1);
    px_topo_ref ref = {PX_TOPO_OBJ_IVSHMEM, ri};
    c->guests = calloc(t->n_guests + 1, sizeof(*c->guests));
    if (!c->guests)
        return px_errmsg_set(em, PX_E_NOMEM, "ivshmem: out of memory");
    for (uint32_t g = 0; g < t->n_guests; g++)
        if (px_topo_guest_on_net(&t->guests[g], ref))
            snprintf(c->guests[c->n_guests++], sizeof(c->guests[0]), "%s", t->guests[g].name);
    return PX_OK;
}

px_err px_node_shm_apply(px_node *n, px_node_lab *l, const px_msg_plan *p, px_errmsg *em)
{
    const px_topo *t = l->topo;
    px_shmsvc_region_cfg *cfgs = calloc(p->n_nets + 1, sizeof(*cfgs));
    if (!cfgs)
        return px_errmsg_set(em, PX_E_NOMEM, "ivshmem: out of memory");
    uint32_t nr = 0;
    px_err err = PX_OK;
    for (uint32_t i = 0; i < p->n_nets && !err; i++) {
        char name[64];
        px_str_copy(name, sizeof(name), p->nets[i].name);
        px_topo_ref ref;
        if (!px_topo_find_net(t, name, &ref) || ref.type != PX_TOPO_OBJ_IVSHMEM)
            continue;
        err = region_cfg(l, p, i, ref.index, &cfgs[nr++], em);
    }
    if (!err)
        err = px_shmsvc_lab_apply(n->shm, l->name, cfgs, nr, em);
    for (uint32_t i = 0; i < nr; i++)
        free(cfgs[i].guests);
    free(cfgs);
    return err;
}

void px_node_shm_remove(px_node *n, const char *lab)
{
    if (n->shm)
        px_shmsvc_lab_remove(n->shm, lab);
}
