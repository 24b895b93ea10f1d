/* QEMU command lines. See qemu_cmd.h. */
#include "qemu_cmd.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fabric/can-bus/proto.h"

#define MIB (1024ull * 1024ull)

static px_err add(px_qemu_cmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static px_err add(px_qemu_cmd *c, const char *fmt, ...)
{
    if (c->argc == PX_QEMU_MAX_ARGS)
        return PX_E_TOOBIG;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&c->argv[c->argc], fmt, ap);
    va_end(ap);
    if (n < 0) {
        c->argv[c->argc] = NULL;
        return PX_E_NOMEM;
    }
    c->argc++;
    c->argv[c->argc] = NULL;
    return PX_OK;
}

static px_err env(px_qemu_cmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static px_err env(px_qemu_cmd *c, const char *fmt, ...)
{
    if (c->n_env == PX_QEMU_MAX_ENV)
        return PX_E_TOOBIG;
    va_list ap;
    va_start(ap, fmt);
    int rc = vasprintf(&c->env[c->n_env], fmt, ap);
    va_end(ap);
    if (rc < 0) {
        c->env[c->n_env] = NULL;
        return PX_E_NOMEM;
    }
    c->n_env++;
    c->env[c->n_env] = NULL;
    return PX_OK;
}

static const char *nic_device(px_topo_nic_model m)
{
    switch (m) {
    case PX_TOPO_NIC_E1000:
        return "e1000";
    case PX_TOPO_NIC_E1000E:
        return "e1000e";
    case PX_TOPO_NIC_RTL8139:
        return "rtl8139";
    case PX_TOPO_NIC_VIRTIO:
    default:
        return "virtio-net-pci";
    }
}

/* ---- device builders: one per attachment kind ---- */

typedef px_err (*device_fn)(const px_topo *t, uint32_t g, const px_qemu_cfg *cfg, px_qemu_cmd *c,
                            px_errmsg *em);

/* Ethernet: QEMU is the stream server so a node restart can reconnect
 * (port: stream), or sends datagrams to the node's socket (port: dgram).
 * The paths are qemu_cmd.h's. */
static px_err nics(const px_topo *t, uint32_t g, const px_qemu_cfg *cfg, px_qemu_cmd *c,
                   px_errmsg *em)
{
    const px_topo_guest *gu = &t->guests[g];
    px_err err = PX_OK;
    for (uint32_t i = 0; i < gu->n_nics && !err; i++) {
        const px_topo_nic *n = &gu->nics[i];
        bool dgram = n->port == PX_TOPO_NIC_DGRAM;
        char path[4200], node[4200];
        int len = snprintf(path, sizeof(path), dgram ? PX_NODE_NIC_DGRAM : PX_NODE_NIC_STREAM,
                           cfg->rundir, g, i);
        int nlen = snprintf(node, sizeof(node), PX_NODE_NIC_NODE, cfg->rundir, g, i);
        if (len >= 108 || (dgram && nlen >= 108))
            return px_errmsg_set(em, PX_E_CONFIG,
                                 "guest %s: NIC socket path %s is too long for a UNIX socket",
                                 gu->name, path);
        err = add(c, "-netdev");
        if (!err && dgram)
            err = add(c,
                      "dgram,id=nic%u,local.type=unix,local.path=%s,remote.type=unix,"
                      "remote.path=%s",
                      i, path, node);
        else if (!err)
            err = add(c, "stream,id=nic%u,server=on,addr.type=unix,addr.path=%s", i, path);
        if (!err)
            err = add(c, "-device");
        if (!err)
            err = add(c, "%s,netdev=nic%u,mac=%02x:%02x:%02x:%02x:%02x:%02x,bus=pcie.0,romfile=",
                      nic_device(n->model), i, n->mac[0], n->mac[1], n->mac[2], n->mac[3],
                      n->mac[4], n->mac[5]);
    }
    return err;
}

/* CAN: each controller sits alone on a QEMU can-bus whose host connector
 * is can-host-socketcan; libpxcanshim.so (preloaded) turns that into the
 * node's endpoint socket RUNDIR/can/g<G>c<I>.sock (fabric/can-bus/proto.h,
 * docs/can-shim.md). ctucan_pci has two cores; the first is on the bus.
 * attach: vxcan instead opens the QEMU end pxq<LAB><G>c<I> of a vxcan pair the
 * node made, with no shim: the loader keeps one attach per guest, since
 * the shim would take over every PF_CAN socket of the QEMU. */
static px_err cans(const px_topo *t, uint32_t g, const px_qemu_cfg *cfg, px_qemu_cmd *c,
                   px_errmsg *em)
{
    const px_topo_guest *gu = &t->guests[g];
    if (!gu->n_cans)
        return PX_OK;
    bool vxcan = gu->cans[0].attach == PX_TOPO_CAN_ATTACH_VXCAN;
    if (!vxcan && (!cfg->can_shim || access(cfg->can_shim, R_OK) != 0))
        return px_errmsg_set(em, PX_E_CONFIG,
                             "guest %s: CAN controllers need libpxcanshim.so, not found at %s "
                             "(build plexus, or give plexus-node --can-shim PATH)",
                             gu->name, cfg->can_shim ? cfg->can_shim : "(none)");
    char sock[200];
    if (!vxcan &&
        snprintf(sock, sizeof(sock), "%s/can/g%uc%u.sock", cfg->rundir, g, gu->n_cans - 1) >= 108)
        return px_errmsg_set(em, PX_E_CONFIG,
                             "guest %s: runtime directory %s is too long for CAN sockets "
                             "(keep it under 90 characters)",
                             gu->name, cfg->rundir);
    px_err err = PX_OK;
    for (uint32_t i = 0; !err && i < gu->n_cans; i++) {
        const px_topo_canif *ci = &gu->cans[i];
        err = add(c, "-object");
        if (!err)
            err = add(c, "can-bus,id=pxcb%u", i);
        if (!err)
            err = add(c, "-object");
        if (!err && vxcan)
            err = add(c, "can-host-socketcan,id=pxch%u,if=" PX_CAN_VXCAN_QEMU_FMT ",canbus=pxcb%u",
                      i, PX_CAN_VXCAN_TAG(t->name), g, i, i);
        else if (!err)
            err = add(c, "can-host-socketcan,id=pxch%u,if=g%uc%u,canbus=pxcb%u", i, g, i, i);
        /* ctucan_pci refuses to start with a core unconnected: its second
         * core gets a bus of its own that nothing else is on. */
        bool ctu = ci->controller == PX_TOPO_CAN_CTUCAN_PCI;
        if (!err && ctu)
            err = add(c, "-object");
        if (!err && ctu)
            err = add(c, "can-bus,id=pxcbx%u", i);
        if (!err)
            err = add(c, "-device");
        if (!err)
            err = ctu ? add(c, "ctucan_pci,canbus0=pxcb%u,canbus1=pxcbx%u,bus=pcie.0", i, i)
                      : add(c, "kvaser_pci,canbus=pxcb%u,bus=pcie.0", i);
    }
    if (!err && !vxcan)
        err = env(c, "LD_PRELOAD=%s", cfg->can_shim);
    if (!err && !vxcan)
        err = env(c, "PLEXUS_CAN_SOCKET_DIR=%s/can", cfg->rundir);
    return err;
}

/* ivshmem-doorbell on the node's socket for the region (node/shm.c serves
 * it); vectors= as the region has, or QEMU dies when the server sends more
 * eventfds per peer. */
static px_err shms(const px_topo *t, uint32_t g, const px_qemu_cfg *cfg, px_qemu_cmd *c,
                   px_errmsg *em)
{
    const px_topo_guest *gu = &t->guests[g];
    px_err err = PX_OK;
    for (uint32_t i = 0; i < gu->n_shms && !err; i++) {
        uint32_t ri = gu->shms[i].region;
        char sock[108];
        int n = snprintf(sock, sizeof(sock), PX_NODE_SHM_SOCK, cfg->rundir, ri);
        if (n < 0 || (size_t)n >= sizeof(sock))
            return px_errmsg_set(em, PX_E_CONFIG,
                                 "guest %s: ivshmem socket path under %s is too long for a UNIX "
                                 "socket (108 bytes); use a shorter runtime directory",
                                 gu->name, cfg->rundir);
        err = add(c, "-chardev");
        if (!err)
            err = add(c, "socket,path=%s,id=pxsh%u", sock, i);
        if (!err)
            err = add(c, "-device");
        if (!err)
            err = add(c, "ivshmem-doorbell,vectors=%u,chardev=pxsh%u,bus=pcie.0",
                      t->ivshmem[ri].vectors, i);
    }
    return err;
}

/* ---- CXL (qemu_cmd.h: the layout; docs/cxl.md) ---- */

/* "1G", "256M", "4K" or bytes: sizes in QEMU options, readable in logs. */
static void size_str(char *buf, size_t len, uint64_t v)
{
    if (v && v % (1024 * MIB) == 0)
        snprintf(buf, len, "%lluG", (unsigned long long)(v / (1024 * MIB)));
    else if (v && v % MIB == 0)
        snprintf(buf, len, "%lluM", (unsigned long long)(v / MIB));
    else if (v && v % 1024 == 0)
        snprintf(buf, len, "%lluK", (unsigned long long)(v / 1024));
    else
        snprintf(buf, len, "%llu", (unsigned long long)v);
}

/* A path as a QEMU option value: QEMU reads ",," as one comma. out holds
 * 2 * PX_QEMU_CXL_MAX_PATH bytes; the path was checked shorter than that. */
static void opt_escape(char *out, const char *path)
{
    size_t o = 0;
    for (const char *p = path; *p; p++) {
        out[o++] = *p;
        if (*p == ',')
            out[o++] = ',';
    }
    out[o] = '\0';
}

/* Appends ",piece" to the argument after -machine (the builder always emits
 * one, before any device builder runs). */
static px_err machine_opt(px_qemu_cmd *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static px_err machine_opt(px_qemu_cmd *c, const char *fmt, ...)
{
    size_t i = 0;
    while (i + 1 < c->argc && strcmp(c->argv[i], "-machine") != 0)
        i++;
    if (i + 1 >= c->argc)
        return PX_E_INVAL;
    char *piece, *both;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&piece, fmt, ap);
    va_end(ap);
    if (n < 0)
        return PX_E_NOMEM;
    n = asprintf(&both, "%s,%s", c->argv[i + 1], piece);
    free(piece);
    if (n < 0)
        return PX_E_NOMEM;
    free(c->argv[i + 1]);
    c->argv[i + 1] = both;
    return PX_OK;
}

/* Where an LD goes, for messages: "CXL LD 2 (attachment 0: switch fabric
 * port 1, t.yaml:12:9)". */
static void ld_where(char *buf, size_t len, const px_topo *t, const px_topo_guest *gu, uint32_t i,
                     const px_qemu_cxl_ld *ld)
{
    if (ld->attach >= gu->n_cxls) {
        snprintf(buf, len, "CXL LD %u (attachment %u)", i, ld->attach);
        return;
    }
    const px_topo_cxlif *a = &gu->cxls[ld->attach];
    snprintf(buf, len, "CXL LD %u (attachment %u: switch %s port %u, %s:%u:%u)", i, ld->attach,
             t->cxl_switches[a->sw].name, a->port, t->source ? t->source : "topology", a->mark.line,
             a->mark.col);
}

static px_err check_cxl_lds(const px_topo *t, const px_topo_guest *gu, const px_qemu_cfg *cfg,
                            px_errmsg *em)
{
    char where[512];
    if (cfg->n_cxl_lds && !cfg->cxl_lds)
        return px_errmsg_set(em, PX_E_INVAL, "guest %s: %u CXL LDs but no list", gu->name,
                             cfg->n_cxl_lds);
    for (uint32_t i = 0; i < cfg->n_cxl_lds; i++) {
        const px_qemu_cxl_ld *ld = &cfg->cxl_lds[i];
        ld_where(where, sizeof(where), t, gu, i, ld);
        if (ld->attach >= gu->n_cxls)
            return px_errmsg_set(em, PX_E_CONFIG,
                                 "guest %s: %s: the guest has %u CXL attachment(s) (0..%d)",
                                 gu->name, where, gu->n_cxls, (int)gu->n_cxls - 1);
        if (ld->vppb >= PX_QEMU_CXL_VPPBS)
            return px_errmsg_set(em, PX_E_CONFIG, "guest %s: %s: vPPB %u out of range 0..%u",
                                 gu->name, where, ld->vppb, PX_QEMU_CXL_VPPBS - 1);
        if (ld->size == 0 || ld->size % PX_QEMU_CXL_SIZE_UNIT)
            return px_errmsg_set(em, PX_E_CONFIG,
                                 "guest %s: %s vPPB %u: size %llu is not a multiple of 256 MiB "
                                 "(QEMU 7.2 CXL memory comes in 256 MiB units)",
                                 gu->name, where, ld->vppb, (unsigned long long)ld->size);
        const char *paths[2] = {ld->mem_path, ld->lsa_path};
        const char *what[2] = {"memory", "label storage"};
        for (int p = 0; p < 2; p++) {
            if (!paths[p] || !paths[p][0])
                return px_errmsg_set(em, PX_E_CONFIG, "guest %s: %s vPPB %u: no %s file", gu->name,
                                     where, ld->vppb, what[p]);
            if (strlen(paths[p]) >= PX_QEMU_CXL_MAX_PATH)
                return px_errmsg_set(em, PX_E_CONFIG,
                                     "guest %s: %s vPPB %u: %s file path is %zu bytes, longer "
                                     "than %u",
                                     gu->name, where, ld->vppb, what[p], strlen(paths[p]),
                                     PX_QEMU_CXL_MAX_PATH - 1);
        }
        for (uint32_t j = 0; j < i; j++)
            if (cfg->cxl_lds[j].attach == ld->attach && cfg->cxl_lds[j].vppb == ld->vppb)
                return px_errmsg_set(em, PX_E_CONFIG,
                                     "guest %s: %s: vPPB %u is bound twice (also CXL LD %u)",
                                     gu->name, where, ld->vppb, j);
    }
    return PX_OK;
}

/* The window of every vPPB of attachment a: the largest LD its switch can
 * bind (any pool's ld_size) or that is bound now, at least 256 MiB. */
static uint64_t cxl_window(const px_topo *t, const px_topo_guest *gu, const px_qemu_cfg *cfg,
                           uint32_t a)
{
    uint64_t w = PX_QEMU_CXL_SIZE_UNIT;
    for (uint32_t p = 0; p < t->n_cxl_pools; p++)
        if (t->cxl_pools[p].sw == gu->cxls[a].sw && t->cxl_pools[p].ld_size > w)
            w = t->cxl_pools[p].ld_size;
    for (uint32_t i = 0; i < cfg->n_cxl_lds; i++)
        if (cfg->cxl_lds[i].attach == a && cfg->cxl_lds[i].size > w)
            w = cfg->cxl_lds[i].size;
    return w;
}

/* One LD: its two backends and the type-3 device on the bridge's first
 * root port. memdev is always persistent in 7.2; lsa is mandatory. */
static px_err cxl_type3(px_qemu_cmd *c, uint32_t a, uint32_t k, const px_qemu_cxl_ld *ld)
{
    char esc[2 * PX_QEMU_CXL_MAX_PATH];
    char sz[32];
    size_str(sz, sizeof(sz), ld->size);
    opt_escape(esc, ld->mem_path);
    px_err err = add(c, "-object");
    if (!err)
        err =
            add(c, "memory-backend-file,id=pxcm.%u.%u,share=on,mem-path=%s,size=%s", a, k, esc, sz);
    size_str(sz, sizeof(sz), PX_QEMU_CXL_LSA_SIZE);
    opt_escape(esc, ld->lsa_path);
    if (!err)
        err = add(c, "-object");
    if (!err)
        err =
            add(c, "memory-backend-file,id=pxcl.%u.%u,share=on,mem-path=%s,size=%s", a, k, esc, sz);
    if (!err)
        err = add(c, "-device");
    if (!err)
        err = add(c, "cxl-type3,bus=pxcrp.%u.%u.0,memdev=pxcm.%u.%u,lsa=pxcl.%u.%u,id=pxcmem.%u.%u",
                  a, k, a, k, a, k, a, k);
    return err;
}

static px_err cxls(const px_topo *t, uint32_t g, const px_qemu_cfg *cfg, px_qemu_cmd *c,
                   px_errmsg *em)
{
    const px_topo_guest *gu = &t->guests[g];
    px_err err = check_cxl_lds(t, gu, cfg, em);
    if (err || !gu->n_cxls)
        return err;
    uint32_t bridges = gu->n_cxls * PX_QEMU_CXL_VPPBS;
    uint32_t last_bus = PX_QEMU_CXL_BUS_BASE + bridges * PX_QEMU_CXL_BUS_STRIDE - 1;
    if (last_bus > 255)
        return px_errmsg_set(em, PX_E_CONFIG,
                             "guest %s: %u CXL attachments need PCI buses %u..%u; at most %u "
                             "attachments fit below bus 256",
                             gu->name, gu->n_cxls, PX_QEMU_CXL_BUS_BASE, last_bus,
                             (256 - PX_QEMU_CXL_BUS_BASE) /
                                 (PX_QEMU_CXL_VPPBS * PX_QEMU_CXL_BUS_STRIDE));
    err = machine_opt(c, "cxl=on");
    for (uint32_t a = 0; !err && a < gu->n_cxls; a++) {
        char win[32];
        size_str(win, sizeof(win), cxl_window(t, gu, cfg, a));
        for (uint32_t k = 0; !err && k < PX_QEMU_CXL_VPPBS; k++) {
            uint32_t b = a * PX_QEMU_CXL_VPPBS + k;
            err = machine_opt(c, "cxl-fmw.%u.targets.0=pxcxl.%u.%u,cxl-fmw.%u.size=%s", b, a, k, b,
                              win);
            if (!err)
                err = add(c, "-device");
            if (!err)
                err = add(c, "pxb-cxl,bus_nr=%u,bus=pcie.0,id=pxcxl.%u.%u",
                          PX_QEMU_CXL_BUS_BASE + b * PX_QEMU_CXL_BUS_STRIDE, a, k);
            for (uint32_t r = 0; !err && r < 2; r++) {
                err = add(c, "-device");
                if (!err)
                    err = add(c,
                              "cxl-rp,port=%u,bus=pxcxl.%u.%u,id=pxcrp.%u.%u.%u,chassis=%u,slot=%u",
                              r, a, k, a, k, r, b + 1, r);
            }
            for (uint32_t i = 0; !err && i < cfg->n_cxl_lds; i++)
                if (cfg->cxl_lds[i].attach == a && cfg->cxl_lds[i].vppb == k)
                    err = cxl_type3(c, a, k, &cfg->cxl_lds[i]);
        }
    }
    return err;
}

static const device_fn device_builders[] = {nics, cans, shms, cxls};

/* ---- the command line ---- */

static px_err image_args(const px_topo *t, const px_topo_guest *gu, const px_qemu_cfg *cfg,
                         px_qemu_cmd *c, px_errmsg *em)
{
    char kernel[4200], initrd[4200];
    const char *append = NULL;
    const px_topo_image *im = &gu->image;
    if (im->type == PX_TOPO_IMAGE_DISK) {
        const char *d = im->disk;
        char path[4200];
        if (d[0] != '/' && t->base_dir)
            snprintf(path, sizeof(path), "%s/%s", t->base_dir, d), d = path;
        if (access(d, R_OK) != 0)
            return px_errmsg_set(em, PX_E_CONFIG, "guest %s: disk image %s is not readable",
                                 gu->name, d);
        size_t dl = strlen(d);
        const char *fmt = dl > 6 && strcmp(d + dl - 6, ".qcow2") == 0 ? "qcow2" : "raw";
        px_err err = add(c, "-drive");
        if (!err)
            err = add(c, "file=%s,if=virtio,format=%s", d, fmt);
        return err;
    }
    if (im->type == PX_TOPO_IMAGE_BUILTIN) {
        snprintf(kernel, sizeof(kernel), "%s/%s/vmlinuz", cfg->image_dir ? cfg->image_dir : ".",
                 im->builtin);
        snprintf(initrd, sizeof(initrd), "%s/%s/initrd.img", cfg->image_dir ? cfg->image_dir : ".",
                 im->builtin);
        if (access(kernel, R_OK) != 0 || access(initrd, R_OK) != 0)
            return px_errmsg_set(em, PX_E_CONFIG,
                                 "guest %s: built-in image %s not found in %s (build it with "
                                 "scripts/guest-image.sh)",
                                 gu->name, im->builtin, cfg->image_dir ? cfg->image_dir : ".");
    } else {
        const char *k = im->kernel;
        if (k[0] != '/' && t->base_dir)
            snprintf(kernel, sizeof(kernel), "%s/%s", t->base_dir, k);
        else
            snprintf(kernel, sizeof(kernel), "%s", k);
        if (access(kernel, R_OK) != 0)
            return px_errmsg_set(em, PX_E_CONFIG, "guest %s: kernel %s is not readable", gu->name,
                                 kernel);
        initrd[0] = '\0';
        if (im->initrd) {
            if (im->initrd[0] != '/' && t->base_dir)
                snprintf(initrd, sizeof(initrd), "%s/%s", t->base_dir, im->initrd);
            else
                snprintf(initrd, sizeof(initrd), "%s", im->initrd);
            if (access(initrd, R_OK) != 0)
                return px_errmsg_set(em, PX_E_CONFIG, "guest %s: initrd %s is not readable",
                                     gu->name, initrd);
        }
        append = im->append;
    }
    px_err err = add(c, "-kernel");
    if (!err)
        err = add(c, "%s", kernel);
    if (!err && initrd[0]) {
        err = add(c, "-initrd");
        if (!err)
            err = add(c, "%s", initrd);
    }
    /* no_timer_check: under TCG on a loaded host the kernel's IO-APIC timer
     * check can miss its window and panic ("IO-APIC + timer doesn't work");
     * the timer works, the check is what fails. */
    /* The built-in image brings its CAN interfaces up at the bus's rates. */
    char canspec[512] = "";
    if (im->type == PX_TOPO_IMAGE_BUILTIN) {
        uint32_t ifidx = 0;
        for (uint32_t i = 0; i < gu->n_cans; i++) {
            const px_topo_can_bus *b = &t->can_buses[gu->cans[i].bus];
            size_t l = strlen(canspec);
            char rates[64];
            if (b->fd)
                snprintf(rates, sizeof(rates), "%llu:%llu", (unsigned long long)b->bitrate,
                         (unsigned long long)b->data_bitrate);
            else
                snprintf(rates, sizeof(rates), "%llu", (unsigned long long)b->bitrate);
            snprintf(canspec + l, sizeof(canspec) - l, "%scan%u:%s",
                     i ? "," : " plexus.can=", ifidx, rates);
            ifidx += gu->cans[i].controller == PX_TOPO_CAN_CTUCAN_PCI ? 2 : 1;
        }
    }
    /* ... and asks for DHCP on NICs whose segment has a NAT uplink (the
     * uplink's DHCP server answers). */
    if (im->type == PX_TOPO_IMAGE_BUILTIN) {
        for (uint32_t i = 0; i < gu->n_nics; i++) {
            if (!t->eth_segments[gu->nics[i].segment].nat.enabled || gu->nics[i].vlan)
                continue;
            size_t l = strlen(canspec);
            snprintf(canspec + l, sizeof(canspec) - l, "%seth%u",
                     strstr(canspec, "plexus.dhcp=") ? "," : " plexus.dhcp=", i);
        }
    }
    if (!err) {
        err = add(c, "-append");
        if (!err)
            err = add(c, "console=ttyS0 panic=-1 no_timer_check plexus.name=%s%s%s%s%s%s", gu->name,
                      canspec, append ? " " : "", append ? append : "",
                      cfg->extra_append ? " " : "", cfg->extra_append ? cfg->extra_append : "");
    }
    return err;
}

px_err px_qemu_cmd_build(const px_topo *t, uint32_t g, const px_qemu_cfg *cfg, px_qemu_cmd *c,
                         px_errmsg *em)
{
    memset(c, 0, sizeof(*c));
    if (g >= t->n_guests)
        return px_errmsg_set(em, PX_E_INVAL, "guest index %u out of range", g);
    const px_topo_guest *gu = &t->guests[g];
    if (snprintf(c->qmp_path, sizeof(c->qmp_path), "%s/q%u.sock", cfg->rundir, g) >=
            (int)sizeof(c->qmp_path) ||
        snprintf(c->console_path, sizeof(c->console_path), "%s/c%u.sock", cfg->rundir, g) >=
            (int)sizeof(c->console_path))
        return px_errmsg_set(em, PX_E_CONFIG,
                             "guest %s: runtime directory %s is too long for UNIX sockets "
                             "(keep it under 90 characters)",
                             gu->name, cfg->rundir);
    snprintf(c->log_path, sizeof(c->log_path), "%s/%s.log", cfg->rundir, gu->name);
    snprintf(c->pid_path, sizeof(c->pid_path), "%s/%s.pid", cfg->rundir, gu->name);

    bool kvm = cfg->accel == PX_TOPO_ACCEL_KVM;
    px_err err = add(c, "%s", cfg->qemu ? cfg->qemu : "qemu-system-x86_64");
    /* Paused until the node has wired the endpoints and says cont. */
    const char *fixed[] = {"-S",         "-nodefaults", "-no-user-config",
                           "-nographic", "-no-reboot",  "-machine",
                           "q35",        "-accel",      kvm ? "kvm" : "tcg"};
    for (size_t i = 0; !err && i < sizeof(fixed) / sizeof(fixed[0]); i++)
        err = add(c, "%s", fixed[i]);
    /* TCG: every feature QEMU can emulate. KVM: the default model; "host"
     * and "max" abort on MSR 0x10a under nested KVM. */
    if (!err && !kvm)
        err = add(c, "-cpu");
    if (!err && !kvm)
        err = add(c, "max");
    if (!err)
        err = add(c, "-name");
    if (!err)
        err = add(c, "guest=%s,debug-threads=on", gu->name);
    if (!err)
        err = add(c, "-smp");
    if (!err)
        err = add(c, "%u", gu->cpus ? gu->cpus : 1);
    if (!err)
        err = add(c, "-m");
    if (!err)
        err = add(c, "%lluM", (unsigned long long)(gu->memory ? gu->memory / MIB : 256));
    if (!err)
        err = add(c, "-pidfile");
    if (!err)
        err = add(c, "%s", c->pid_path);
    if (!err)
        err = add(c, "-qmp");
    if (!err)
        err = add(c, "unix:%s,server=on,wait=off", c->qmp_path);
    if (!err)
        err = add(c, "-chardev");
    if (!err)
        err = add(c, "socket,id=con0,path=%s,server=on,wait=off,logfile=%s,logappend=on",
                  c->console_path, c->log_path);
    if (!err)
        err = add(c, "-serial");
    if (!err)
        err = add(c, "chardev:con0");
    if (!err)
        err = image_args(t, gu, cfg, c, em);
    for (size_t i = 0; !err && i < sizeof(device_builders) / sizeof(device_builders[0]); i++)
        err = device_builders[i](t, g, cfg, c, em);
    if (err == PX_E_TOOBIG)
        px_errmsg_set(em, err, "guest %s: more than %u QEMU arguments", gu->name, PX_QEMU_MAX_ARGS);
    if (err)
        px_qemu_cmd_fini(c);
    return err;
}

void px_qemu_cmd_fini(px_qemu_cmd *c)
{
    for (size_t i = 0; i < c->argc; i++)
        free(c->argv[i]);
    c->argc = 0;
    c->argv[0] = NULL;
    for (size_t i = 0; i < c->n_env; i++)
        free(c->env[i]);
    c->n_env = 0;
    c->env[0] = NULL;
}

void px_qemu_cmd_describe(const px_qemu_cmd *c, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < c->argc && n + 4 < len; i++) {
        bool quote = strpbrk(c->argv[i], " \t'\"") != NULL;
        int k = snprintf(buf + n, len - n, "%s%s%s%s", i ? " " : "", quote ? "'" : "", c->argv[i],
                         quote ? "'" : "");
        if (k < 0)
            break;
        n += (size_t)k;
    }
}
