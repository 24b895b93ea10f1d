/* plexus-node — the QEMU command line of a guest, from the topology.
 *
 * Pure: builds an argv array (never a shell string) and touches nothing.
 * Devices for attachments are added through one table of per-kind device
 * builders (qemu_cmd.c: `device_builders`), the one place fabric services
 * plug their QEMU devices in. A kind whose back end does not exist yet adds
 * nothing and leaves a note, which the supervisor reports as the guest's
 * detail instead of starting a QEMU that would refuse to boot.
 *
 * Per-guest files live in the lab's runtime directory (0700), named by the
 * guest's index so that UNIX socket paths stay within sun_path:
 *   q<N>.sock     QMP (server, nowait)
 *   c<N>.sock     serial console (server, nowait; `plexus console`)
 *   NAME.log      everything the serial console printed (logfile of c<N>)
 *   NAME.pid      QEMU's pid file
 *   n<N>-<I>.sock Ethernet NIC I (-netdev stream, QEMU as server)
 *   n<N>-<I>.dgram / .node  the same with port: dgram (QEMU's / the node's)
 *   can/g<N>c<I>.sock CAN controller I: the node's endpoint, QEMU connects
 *                 through libpxcanshim.so (LD_PRELOAD, in env[])
 * CXL backing files are the node's own (px_qemu_cfg.cxl_lds), not named here.
 */
#ifndef PX_NODE_QEMU_CMD_H
#define PX_NODE_QEMU_CMD_H

#include <stddef.h>
#include <stdint.h>

#include "coordinator/topology.h"

/* Ethernet socket paths of NIC I of guest G in the lab's runtime directory
 * (node/eth.c opens the node's ends). */
#define PX_NODE_NIC_STREAM "%s/n%u-%u.sock"  /* QEMU listens (port: stream) */
#define PX_NODE_NIC_DGRAM  "%s/n%u-%u.dgram" /* QEMU's own socket (port: dgram) */
#define PX_NODE_NIC_NODE   "%s/n%u-%u.node"  /* the node's socket (port: dgram) */
#define PX_NODE_SHM_SOCK   "%s/s%u.ivshmem"  /* the node serves ivshmem region %u here */
#include "fabric/core/err.h"

#define PX_QEMU_MAX_ARGS 256u
#define PX_QEMU_MAX_ENV  8u

/* ---- CXL: what a guest sees (docs/cxl.md, "What a guest sees") ----
 *
 * Every vPPB of every attachment in the guest's cxl: list is one CXL host
 * bridge (pxb-cxl) with two root ports, the LD bound to that vPPB (if any) a
 * cxl-type3 on the first root port, and one fixed memory window (cxl-fmw)
 * that targets that bridge alone. QEMU 7.2 gives each host bridge, switch
 * upstream port and type-3 device one HDM decoder, so a host bridge (or a
 * switch) carries one region at a time: a bridge per vPPB is what lets every
 * bound LD have its own region. Two root ports, because with one Linux 6.1
 * skips the host bridge's decoder and QEMU 7.2 then routes nothing. The
 * layout does not depend on what is bound, so a memdev's PCI address, host
 * bridge and window stay where they are from one start to the next.
 *
 * Vppb K of attachment A is bridge B = A * PX_QEMU_CXL_VPPBS + K:
 *   pxb-cxl   id pxcxl.A.K, bus_nr PX_QEMU_CXL_BUS_BASE + B * PX_QEMU_CXL_BUS_STRIDE
 *             (the guest's ACPI0016 _UID and PCI domain 0 bus of the bridge)
 *   cxl-rp    ids pxcrp.A.K.0 and pxcrp.A.K.1, chassis B + 1, slots 0 and 1
 *   cxl-type3 id pxcmem.A.K on pxcrp.A.K.0; backends pxcm.A.K (memdev) and
 *             pxcl.A.K (lsa), memory-backend-file share=on
 *   window    cxl-fmw.B, the largest ld_size of the switch's pools (and of
 *             the LDs bound now), so any LD of the switch fits the vPPB it
 *             is bound to at the next start */
#define PX_QEMU_CXL_VPPBS      4u /* downstream slots (vPPBs) per CXL attachment */
#define PX_QEMU_CXL_BUS_BASE   64u
#define PX_QEMU_CXL_BUS_STRIDE 4u /* the bridge's bus and its two root ports' */
/* Label storage of one LD: QEMU 7.2 rounds a memory backend up to a host
 * page (a smaller file: "backing store size does not match"), and Linux 6.1
 * binds the LD's nvdimm with 4 KiB (two index blocks and 14 labels). */
#define PX_QEMU_CXL_LSA_SIZE  4096u
#define PX_QEMU_CXL_SIZE_UNIT (256ull * 1024 * 1024) /* QEMU 7.2 CXL sizes */
#define PX_QEMU_CXL_MAX_PATH  4096u                  /* backing file paths, with the NUL */

typedef struct px_qemu_cxl_ld {
    uint32_t attach;      /* index in the guest's cxl: list (one switch upstream port) */
    uint32_t vppb;        /* 0..PX_QEMU_CXL_VPPBS-1 */
    const char *mem_path; /* memdev backing file (exists, `size` bytes) */
    const char *lsa_path; /* label storage backing file (exists, PX_QEMU_CXL_LSA_SIZE bytes) */
    uint64_t size;        /* bytes, a multiple of 256 MiB */
} px_qemu_cxl_ld;

typedef struct px_qemu_cfg {
    const char *qemu;         /* binary; NULL = "qemu-system-x86_64" */
    const char *rundir;       /* the lab's runtime directory on this node */
    const char *image_dir;    /* where builtin images live: IMAGE_DIR/NAME/{vmlinuz,initrd.img} */
    px_topo_accel accel;      /* resolved: PX_TOPO_ACCEL_KVM or _TCG (never AUTO) */
    const char *extra_append; /* appended to the kernel command line, may be NULL */
    const char *can_shim;     /* libpxcanshim.so (guests with CAN controllers) */
    const struct px_qemu_cxl_ld *cxl_lds; /* the LDs bound to this guest now */
    uint32_t n_cxl_lds;
} px_qemu_cfg;

typedef struct px_qemu_cmd {
    char *argv[PX_QEMU_MAX_ARGS + 1]; /* NULL-terminated, each owned */
    size_t argc;
    char *env[PX_QEMU_MAX_ENV + 1]; /* NAME=VALUE added to the node's environment */
    size_t n_env;
    char qmp_path[108];
    char console_path[108];
    char log_path[4096];
    char pid_path[4096];
} px_qemu_cmd;

/* Build the command line for guest index g of t. PX_E_CONFIG (em says what:
 * missing kernel or image, path too long for a socket, a CXL LD that does
 * not fit its attachment, ...) on error; out is then empty and safe to fini.
 * Never blocks (checks files with access(2) only for builtin images and
 * kernels; CXL backing files are taken as the node says). cfg and what it
 * points to are only read during the call. */
px_err px_qemu_cmd_build(const px_topo *t, uint32_t g, const px_qemu_cfg *cfg, px_qemu_cmd *out,
                         px_errmsg *em);

void px_qemu_cmd_fini(px_qemu_cmd *c);

/* "a b 'c d'" for logs: shell-quoted for humans, never executed. */
void px_qemu_cmd_describe(const px_qemu_cmd *c, char *buf, size_t len);

#endif
