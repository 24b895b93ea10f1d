/* plexus-node — is KVM usable here? Proven, not assumed.
 *
 * /dev/kvm existing is not enough: under nested virtualisation a guest can
 * hang at "Booting from ROM" forever. The probe boots the built-in image
 * under -accel kvm and waits for its ready marker on the serial console; only
 * then is `accelerator: auto` resolved to kvm. No /dev/kvm, or no built-in
 * image to probe with: tcg without a probe.
 *
 * The answer is cached in CACHE_DIR/kvm-probe (keyed by the QEMU binary's
 * size and mtime and the kernel release) so that a machine pays for the probe
 * once. Asynchronous: the callback runs from the loop.
 */
#ifndef PX_NODE_ACCEL_H
#define PX_NODE_ACCEL_H

#include <stdbool.h>
#include <uv.h>

#include "fabric/core/err.h"

typedef struct px_accel_probe px_accel_probe;

/* kvm: true if guests boot under KVM. why: one line for logs and status. */
typedef void (*px_accel_cb)(bool kvm, const char *why, void *ud);

typedef struct px_accel_opts {
    const char *qemu;      /* NULL = qemu-system-x86_64 */
    const char *image_dir; /* IMAGE_DIR/tiny/{vmlinuz,initrd.img} */
    const char *cache_dir; /* NULL = no cache */
    unsigned timeout_ms;   /* 0 = 10000: the tiny image boots in ~2 s under KVM */
} px_accel_opts;

/* Start the probe (or answer from the cache or the absence of /dev/kvm,
 * still through cb from the loop). *out is freed after cb returns. */
px_err px_accel_probe_start(uv_loop_t *loop, const px_accel_opts *o, px_accel_cb cb, void *ud,
                            px_accel_probe **out);

/* Abandon a probe (kills its QEMU); cb does not run afterwards. */
void px_accel_probe_cancel(px_accel_probe *p);

#endif
