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
#define PX_NODE_SHM_SOCK   "%s/s%u.ivshmem" /* the node serves ivshmem region %u here */
#include "fabric/core/err.h"

#define PX_QEMU_MAX_ARGS  256u
#define PX_QEMU_MAX_NOTES 8u
#define PX_QEMU_MAX_ENV   8u

typedef struct px_qemu_cfg {
    const char *qemu;         /* binary; NULL = "qemu-system-x86_64" */
    const char *rundir;       /* the lab's runtime directory on this node */
    const char *image_dir;    /* where builtin images live: IMAGE_DIR/NAME/{vmlinuz,initrd.img} */
    px_topo_accel accel;      /* resolved: PX_TOPO_ACCEL_KVM or _TCG (never AUTO) */
    const char *extra_append; /* appended to the kernel command line, may be NULL */
    const char *can_shim;     /* libpxcanshim.so (guests with CAN controllers) */
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
    uint32_t n_notes;
    char notes[PX_QEMU_MAX_NOTES][128]; /* attachments not wired (yet) */
} px_qemu_cmd;

/* Build the command line for guest index g of t. PX_E_CONFIG (em says what:
 * missing kernel or image, path too long for a socket, ...) on error; out
 * is then empty and safe to fini. Never blocks (checks files with access(2)
 * only for builtin images and kernels). */
px_err px_qemu_cmd_build(const px_topo *t, uint32_t g, const px_qemu_cfg *cfg, px_qemu_cmd *out,
                         px_errmsg *em);

void px_qemu_cmd_fini(px_qemu_cmd *c);

/* "a b 'c d'" for logs: shell-quoted for humans, never executed. */
void px_qemu_cmd_describe(const px_qemu_cmd *c, char *buf, size_t len);

#endif
