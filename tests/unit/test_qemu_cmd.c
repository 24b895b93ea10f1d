/* Unit tests: node/qemu_cmd — the QEMU command line from a topology. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "node/qemu_cmd.h"

static char dir[64];
static char images[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/px-qcmd-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    /* A fake built-in image: the builder only checks the files exist. */
    snprintf(images, sizeof(images), "%s/img", dir);
    char p[256];
    mkdir(images, 0700);
    snprintf(p, sizeof(p), "%s/tiny", images);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/tiny/vmlinuz", images);
    fclose(fopen(p, "w"));
    snprintf(p, sizeof(p), "%s/tiny/initrd.img", images);
    fclose(fopen(p, "w"));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char p[256];
    snprintf(p, sizeof(p), "%s/tiny/vmlinuz", images);
    unlink(p);
    snprintf(p, sizeof(p), "%s/tiny/initrd.img", images);
    unlink(p);
    snprintf(p, sizeof(p), "%s/tiny", images);
    rmdir(p);
    rmdir(images);
    rmdir(dir);
    return 0;
}

static px_topo *load(const char *yaml)
{
    px_topo *t = NULL;
    px_errmsg em = {{0}};
    if (px_topo_load_buffer("t.yaml", yaml, strlen(yaml), &t, &em) != PX_OK)
        fail_msg("topology: %s", em.text);
    return t;
}

/* The argument after `flag`, or NULL. */
static const char *arg_after(const px_qemu_cmd *c, const char *flag, int nth)
{
    for (size_t i = 0; i + 1 < c->argc; i++)
        if (strcmp(c->argv[i], flag) == 0 && nth-- == 0)
            return c->argv[i + 1];
    return NULL;
}

static bool has_arg(const px_qemu_cmd *c, const char *a)
{
    for (size_t i = 0; i < c->argc; i++)
        if (strcmp(c->argv[i], a) == 0)
            return true;
    return false;
}

static const char lab[] = "name: l\n"
                          "defaults: {image: 'builtin:tiny', memory: 512M, cpus: 2}\n"
                          "nets:\n"
                          "  lan: {type: eth_segment}\n"
                          "  bus: {type: can_bus, bitrate: 500k}\n"
                          "nodes:\n"
                          "  ecu: {can: [bus]}\n"
                          "  gw:\n"
                          "    nics: [{segment: lan, mac: '52:54:00:aa:bb:cc', model: e1000}]\n";

static void test_builtin_guest_line(void **state)
{
    (void)state;
    px_topo *t = load(lab);
    px_qemu_cfg cfg = {.rundir = dir, .image_dir = images, .accel = PX_TOPO_ACCEL_TCG};
    px_qemu_cmd c;
    px_errmsg em = {{0}};
    assert_int_equal(px_qemu_cmd_build(t, 1, &cfg, &c, &em), PX_OK);
    assert_string_equal(c.argv[0], "qemu-system-x86_64");
    assert_null(c.argv[c.argc]);
    assert_true(has_arg(&c, "-S")); /* paused until wired */
    assert_string_equal(arg_after(&c, "-accel", 0), "tcg");
    assert_string_equal(arg_after(&c, "-cpu", 0), "max");
    assert_string_equal(arg_after(&c, "-machine", 0), "q35");
    assert_string_equal(arg_after(&c, "-smp", 0), "2");
    assert_string_equal(arg_after(&c, "-m", 0), "512M");
    char want[256];
    snprintf(want, sizeof(want), "unix:%s/q1.sock,server=on,wait=off", dir);
    assert_string_equal(arg_after(&c, "-qmp", 0), want);
    assert_non_null(strstr(arg_after(&c, "-chardev", 0), "logfile="));
    assert_non_null(strstr(arg_after(&c, "-chardev", 0), "/gw.log"));
    snprintf(want, sizeof(want), "%s/tiny/vmlinuz", images);
    assert_string_equal(arg_after(&c, "-kernel", 0), want);
    assert_non_null(strstr(arg_after(&c, "-append", 0), "console=ttyS0"));
    assert_non_null(strstr(arg_after(&c, "-append", 0), "plexus.name=gw"));
    /* The NIC: QEMU serves the stream so a node restart reconnects. */
    assert_non_null(strstr(arg_after(&c, "-netdev", 0), "stream,id=nic0,server=on"));
    assert_non_null(strstr(arg_after(&c, "-device", 0), "e1000,netdev=nic0"));
    assert_non_null(strstr(arg_after(&c, "-device", 0), "mac=52:54:00:aa:bb:cc"));
    assert_non_null(strstr(arg_after(&c, "-device", 0), "bus=pcie.0"));
    assert_int_equal(c.n_notes, 0);
    px_qemu_cmd_fini(&c);

    /* The CAN member without the shim: a clear error, nothing half-built. */
    assert_int_equal(px_qemu_cmd_build(t, 0, &cfg, &c, &em), PX_E_CONFIG);
    assert_non_null(strstr(em.text, "libpxcanshim.so"));
    assert_int_equal(c.argc, 0);
    px_qemu_cmd_fini(&c);

    /* With it: the controller on its own can-bus, the host connector named
     * after the endpoint socket, the shim preloaded with the socket dir. */
    char shim[4200];
    snprintf(shim, sizeof(shim), "%s/tiny/vmlinuz", images); /* any readable file */
    cfg.can_shim = shim;
    assert_int_equal(px_qemu_cmd_build(t, 0, &cfg, &c, &em), PX_OK);
    assert_int_equal(c.n_notes, 0);
    assert_string_equal(arg_after(&c, "-object", 0), "can-bus,id=pxcb0");
    assert_string_equal(arg_after(&c, "-object", 1),
                        "can-host-socketcan,id=pxch0,if=g0c0,canbus=pxcb0");
    assert_string_equal(arg_after(&c, "-device", 0), "kvaser_pci,canbus=pxcb0,bus=pcie.0");
    assert_non_null(strstr(arg_after(&c, "-append", 0), "plexus.can=can0:500000"));
    assert_int_equal(c.n_env, 2);
    snprintf(want, sizeof(want), "LD_PRELOAD=%s", shim);
    assert_string_equal(c.env[0], want);
    snprintf(want, sizeof(want), "PLEXUS_CAN_SOCKET_DIR=%s/can", dir);
    assert_string_equal(c.env[1], want);
    assert_null(c.env[2]);
    px_qemu_cmd_fini(&c);
    assert_int_equal(c.n_env, 0);
    px_topo_free(t);
}

/* port: dgram NICs send to the node's socket; NICs on a NAT segment (and
 * only those) ask the built-in image for DHCP. */
static void test_nic_ports_and_dhcp(void **state)
{
    (void)state;
    px_topo *t = load("name: l\n"
                      "defaults: {image: 'builtin:tiny', memory: 256M}\n"
                      "nets:\n"
                      "  wan: {type: eth_segment, nat: true}\n"
                      "  lan: {type: eth_segment}\n"
                      "nodes:\n"
                      "  a: {nics: [lan, wan, {segment: wan, port: dgram}]}\n"
                      "  b: {nics: [lan]}\n");
    px_qemu_cfg cfg = {.rundir = dir, .image_dir = images, .accel = PX_TOPO_ACCEL_TCG};
    px_qemu_cmd c;
    px_errmsg em = {{0}};
    assert_int_equal(px_qemu_cmd_build(t, 0, &cfg, &c, &em), PX_OK);
    char want[512];
    snprintf(want, sizeof(want), "stream,id=nic1,server=on,addr.type=unix,addr.path=%s/n0-1.sock",
             dir);
    assert_string_equal(arg_after(&c, "-netdev", 1), want);
    snprintf(want, sizeof(want),
             "dgram,id=nic2,local.type=unix,local.path=%s/n0-2.dgram,remote.type=unix,"
             "remote.path=%s/n0-2.node",
             dir, dir);
    assert_string_equal(arg_after(&c, "-netdev", 2), want);
    assert_non_null(strstr(arg_after(&c, "-append", 0), " plexus.dhcp=eth1,eth2"));
    px_qemu_cmd_fini(&c);
    assert_int_equal(px_qemu_cmd_build(t, 1, &cfg, &c, &em), PX_OK);
    assert_null(strstr(arg_after(&c, "-append", 0), "plexus.dhcp"));
    px_qemu_cmd_fini(&c);
    px_topo_free(t);
}

/* ivshmem: one chardev and ivshmem-doorbell per region the guest lists,
 * on the node's socket for that region, with the region's vectors. */
static void test_ivshmem_doorbell(void **state)
{
    (void)state;
    px_topo *t = load("name: l\n"
                      "defaults: {image: 'builtin:tiny', memory: 256M}\n"
                      "nets:\n"
                      "  one: {type: ivshmem, size: 1M}\n"
                      "  two: {type: ivshmem, size: 4M, vectors: 8}\n"
                      "nodes:\n"
                      "  a: {ivshmem: [two, one]}\n");
    px_qemu_cfg cfg = {.rundir = dir, .image_dir = images, .accel = PX_TOPO_ACCEL_TCG};
    px_qemu_cmd c;
    px_errmsg em = {{0}};
    assert_int_equal(px_qemu_cmd_build(t, 0, &cfg, &c, &em), PX_OK);
    assert_int_equal(c.n_notes, 0);
    char want[512];
    snprintf(want, sizeof(want), "socket,path=%s/s1.ivshmem,id=pxsh0", dir);
    assert_string_equal(arg_after(&c, "-chardev", 1), want);
    snprintf(want, sizeof(want), "socket,path=%s/s0.ivshmem,id=pxsh1", dir);
    assert_string_equal(arg_after(&c, "-chardev", 2), want);
    assert_string_equal(arg_after(&c, "-device", 0),
                        "ivshmem-doorbell,vectors=8,chardev=pxsh0,bus=pcie.0");
    assert_string_equal(arg_after(&c, "-device", 1),
                        "ivshmem-doorbell,vectors=1,chardev=pxsh1,bus=pcie.0");
    px_qemu_cmd_fini(&c);
    px_topo_free(t);
}

static void test_kvm_and_describe(void **state)
{
    (void)state;
    px_topo *t = load(lab);
    px_qemu_cfg cfg = {.qemu = "/opt/q",
                       .rundir = dir,
                       .image_dir = images,
                       .accel = PX_TOPO_ACCEL_KVM,
                       .extra_append = "plexus.debug=1"};
    px_qemu_cmd c;
    assert_int_equal(px_qemu_cmd_build(t, 1, &cfg, &c, NULL), PX_OK);
    assert_string_equal(c.argv[0], "/opt/q");
    assert_string_equal(arg_after(&c, "-accel", 0), "kvm");
    assert_null(arg_after(&c, "-cpu", 0)); /* the default model under KVM */
    assert_non_null(strstr(arg_after(&c, "-append", 0), "plexus.debug=1"));
    char line[4096];
    px_qemu_cmd_describe(&c, line, sizeof(line));
    assert_non_null(strstr(line, "/opt/q -S"));
    assert_non_null(strstr(line, "'console=ttyS0")); /* spaces are quoted for humans */
    px_qemu_cmd_fini(&c);
    px_topo_free(t);
}

static void test_errors_say_what(void **state)
{
    (void)state;
    px_topo *t = load("name: l\nnodes:\n  a: {image: {kernel: /nonexistent/vmlinuz}}\n");
    px_qemu_cfg cfg = {.rundir = dir, .image_dir = images, .accel = PX_TOPO_ACCEL_TCG};
    px_qemu_cmd c;
    px_errmsg em = {{0}};
    assert_int_equal(px_qemu_cmd_build(t, 0, &cfg, &c, &em), PX_E_CONFIG);
    assert_non_null(strstr(em.text, "/nonexistent/vmlinuz"));
    assert_non_null(strstr(em.text, "guest a"));
    assert_int_equal(c.argc, 0);
    px_qemu_cmd_fini(&c);
    px_topo_free(t);

    t = load("name: l\nnodes:\n  a: {image: 'builtin:tiny'}\n");
    cfg.image_dir = "/nonexistent-images";
    assert_int_equal(px_qemu_cmd_build(t, 0, &cfg, &c, &em), PX_E_CONFIG);
    assert_non_null(strstr(em.text, "built-in image tiny not found in /nonexistent-images"));
    assert_non_null(strstr(em.text, "guest-image.sh"));

    /* A runtime directory too long for sun_path is refused up front. */
    char longdir[200];
    memset(longdir, 'd', sizeof(longdir) - 1);
    longdir[0] = '/';
    longdir[sizeof(longdir) - 1] = '\0';
    cfg.rundir = longdir;
    assert_int_equal(px_qemu_cmd_build(t, 0, &cfg, &c, &em), PX_E_CONFIG);
    assert_non_null(strstr(em.text, "too long"));
    px_topo_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_guest_line),
        cmocka_unit_test(test_nic_ports_and_dhcp),
        cmocka_unit_test(test_ivshmem_doorbell),
        cmocka_unit_test(test_kvm_and_describe),
        cmocka_unit_test(test_errors_say_what),
    };
    return cmocka_run_group_tests_name("qemu_cmd", tests, setup, teardown);
}
