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

/* CXL: a guest with two attachments on one switch (pools of 256M and 1G
 * LDs), LDs bound at vPPBs 0 and 2 of the first. */
static const char cxl_lab[] = "name: l\n"
                              "defaults: {image: 'builtin:tiny', memory: 512M}\n"
                              "nets:\n"
                              "  fabric: {type: cxl_switch, ports: 4}\n"
                              "  pool0: {type: cxl_pool, switch: fabric, capacity: 1G}\n"
                              "  big: {type: cxl_pool, switch: fabric, capacity: 2G, ld_size: 1G}\n"
                              "  other: {type: cxl_switch}\n"
                              "nodes:\n"
                              "  db:\n"
                              "    cxl: [{switch: fabric, port: 2, pool: pool0, lds: 2}, other]\n"
                              "  plain: {}\n";

/* The -device/-object values of c that belong to CXL, in order. */
static size_t cxl_args(const px_qemu_cmd *c, const char **out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i + 1 < c->argc; i++) {
        if (strcmp(c->argv[i], "-device") != 0 && strcmp(c->argv[i], "-object") != 0)
            continue;
        const char *v = c->argv[i + 1];
        if ((strncmp(v, "pxb-cxl,", 8) == 0 || strncmp(v, "cxl-", 4) == 0 ||
             strstr(v, "id=pxcm.") || strstr(v, "id=pxcl.")) &&
            n < max)
            out[n++] = v;
    }
    return n;
}

static void test_cxl_topology(void **state)
{
    (void)state;
    px_topo *t = load(cxl_lab);
    px_qemu_cxl_ld lds[] = {
        {.attach = 0,
         .vppb = 2,
         .mem_path = "/r/ld,1.mem",
         .lsa_path = "/r/ld1.lsa",
         .size = 1024ull << 20},
        {.attach = 0,
         .vppb = 0,
         .mem_path = "/r/ld0.mem",
         .lsa_path = "/r/ld0.lsa",
         .size = 256ull << 20},
    };
    px_qemu_cfg cfg = {.rundir = dir,
                       .image_dir = images,
                       .accel = PX_TOPO_ACCEL_TCG,
                       .cxl_lds = lds,
                       .n_cxl_lds = 2};
    px_qemu_cmd c;
    px_errmsg em = {{0}};
    assert_int_equal(px_qemu_cmd_build(t, 0, &cfg, &c, &em), PX_OK);
    /* One window per vPPB, each the switch's largest LD (1G), in bridge
     * order; merged into the one -machine argument. */
    assert_string_equal(arg_after(&c, "-machine", 0),
                        "q35,cxl=on,"
                        "cxl-fmw.0.targets.0=pxcxl.0.0,cxl-fmw.0.size=1G,"
                        "cxl-fmw.1.targets.0=pxcxl.0.1,cxl-fmw.1.size=1G,"
                        "cxl-fmw.2.targets.0=pxcxl.0.2,cxl-fmw.2.size=1G,"
                        "cxl-fmw.3.targets.0=pxcxl.0.3,cxl-fmw.3.size=1G,"
                        "cxl-fmw.4.targets.0=pxcxl.1.0,cxl-fmw.4.size=256M,"
                        "cxl-fmw.5.targets.0=pxcxl.1.1,cxl-fmw.5.size=256M,"
                        "cxl-fmw.6.targets.0=pxcxl.1.2,cxl-fmw.6.size=256M,"
                        "cxl-fmw.7.targets.0=pxcxl.1.3,cxl-fmw.7.size=256M");
    assert_null(arg_after(&c, "-machine", 1));
    assert_null(arg_after(&c, "-M", 0));
    const char *want[] = {
        "pxb-cxl,bus_nr=64,bus=pcie.0,id=pxcxl.0.0",
        "cxl-rp,port=0,bus=pxcxl.0.0,id=pxcrp.0.0.0,chassis=1,slot=0",
        "cxl-rp,port=1,bus=pxcxl.0.0,id=pxcrp.0.0.1,chassis=1,slot=1",
        "memory-backend-file,id=pxcm.0.0,share=on,mem-path=/r/ld0.mem,size=256M",
        "memory-backend-file,id=pxcl.0.0,share=on,mem-path=/r/ld0.lsa,size=4K",
        "cxl-type3,bus=pxcrp.0.0.0,memdev=pxcm.0.0,lsa=pxcl.0.0,id=pxcmem.0.0",
        "pxb-cxl,bus_nr=68,bus=pcie.0,id=pxcxl.0.1",
        "cxl-rp,port=0,bus=pxcxl.0.1,id=pxcrp.0.1.0,chassis=2,slot=0",
        "cxl-rp,port=1,bus=pxcxl.0.1,id=pxcrp.0.1.1,chassis=2,slot=1",
        "pxb-cxl,bus_nr=72,bus=pcie.0,id=pxcxl.0.2",
        "cxl-rp,port=0,bus=pxcxl.0.2,id=pxcrp.0.2.0,chassis=3,slot=0",
        "cxl-rp,port=1,bus=pxcxl.0.2,id=pxcrp.0.2.1,chassis=3,slot=1",
        /* a comma in a path is doubled: QEMU reads ",," as one */
        "memory-backend-file,id=pxcm.0.2,share=on,mem-path=/r/ld,,1.mem,size=1G",
        "memory-backend-file,id=pxcl.0.2,share=on,mem-path=/r/ld1.lsa,size=4K",
        "cxl-type3,bus=pxcrp.0.2.0,memdev=pxcm.0.2,lsa=pxcl.0.2,id=pxcmem.0.2",
        "pxb-cxl,bus_nr=76,bus=pcie.0,id=pxcxl.0.3",
        "cxl-rp,port=0,bus=pxcxl.0.3,id=pxcrp.0.3.0,chassis=4,slot=0",
        "cxl-rp,port=1,bus=pxcxl.0.3,id=pxcrp.0.3.1,chassis=4,slot=1",
        /* the second attachment: nothing bound, the same bridges */
        "pxb-cxl,bus_nr=80,bus=pcie.0,id=pxcxl.1.0",
        "cxl-rp,port=0,bus=pxcxl.1.0,id=pxcrp.1.0.0,chassis=5,slot=0",
        "cxl-rp,port=1,bus=pxcxl.1.0,id=pxcrp.1.0.1,chassis=5,slot=1",
        "pxb-cxl,bus_nr=84,bus=pcie.0,id=pxcxl.1.1",
        "cxl-rp,port=0,bus=pxcxl.1.1,id=pxcrp.1.1.0,chassis=6,slot=0",
        "cxl-rp,port=1,bus=pxcxl.1.1,id=pxcrp.1.1.1,chassis=6,slot=1",
        "pxb-cxl,bus_nr=88,bus=pcie.0,id=pxcxl.1.2",
        "cxl-rp,port=0,bus=pxcxl.1.2,id=pxcrp.1.2.0,chassis=7,slot=0",
        "cxl-rp,port=1,bus=pxcxl.1.2,id=pxcrp.1.2.1,chassis=7,slot=1",
        "pxb-cxl,bus_nr=92,bus=pcie.0,id=pxcxl.1.3",
        "cxl-rp,port=0,bus=pxcxl.1.3,id=pxcrp.1.3.0,chassis=8,slot=0",
        "cxl-rp,port=1,bus=pxcxl.1.3,id=pxcrp.1.3.1,chassis=8,slot=1",
    };
    const char *got[64];
    size_t n = cxl_args(&c, got, 64);
    assert_int_equal(n, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < n; i++)
        assert_string_equal(got[i], want[i]);
    /* Every flag is followed by its value, and nothing else uses the word. */
    size_t devices = 0;
    for (size_t i = 0; i < c.argc; i++)
        devices += strcmp(c.argv[i], "-device") == 0 || strcmp(c.argv[i], "-object") == 0;
    assert_int_equal(devices, n);
    px_qemu_cmd_fini(&c);

    /* The same guest with nothing bound: the same bridges and windows (a
     * window never shrinks below the switch's largest LD). */
    cfg.n_cxl_lds = 0;
    assert_int_equal(px_qemu_cmd_build(t, 0, &cfg, &c, &em), PX_OK);
    assert_non_null(strstr(arg_after(&c, "-machine", 0), "cxl-fmw.3.size=1G,"));
    assert_int_equal(cxl_args(&c, got, 64), n - 6);
    px_qemu_cmd_fini(&c);

    /* A guest without CXL attachments: plain q35. */
    assert_int_equal(px_qemu_cmd_build(t, 1, &cfg, &c, &em), PX_OK);
    assert_string_equal(arg_after(&c, "-machine", 0), "q35");
    assert_int_equal(cxl_args(&c, got, 64), 0);
    px_qemu_cmd_fini(&c);
    px_topo_free(t);
}

/* Each refusal names the guest, the LD, its attachment (switch, port and
 * place in the file) and what is wrong; nothing half-built remains. */
static void test_cxl_errors(void **state)
{
    (void)state;
    px_topo *t = load(cxl_lab);
    char longpath[PX_QEMU_CXL_MAX_PATH + 1];
    memset(longpath, 'p', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    px_qemu_cxl_ld ld = {
        .attach = 0, .vppb = 4, .mem_path = "/m", .lsa_path = "/l", .size = 256ull << 20};
    px_qemu_cfg cfg = {.rundir = dir,
                       .image_dir = images,
                       .accel = PX_TOPO_ACCEL_TCG,
                       .cxl_lds = &ld,
                       .n_cxl_lds = 1};
    px_qemu_cmd c;
    px_errmsg em = {{0}};
    static const char where[] =
        "guest db: CXL LD 0 (attachment 0: switch fabric port 2, t.yaml:10:11)";

    assert_int_equal(px_qemu_cmd_build(t, 0, &cfg, &c, &em), PX_E_CONFIG);
    assert_non_null(strstr(em.text, where));
    assert_non_null(strstr(em.text, "vPPB 4 out of range 0..3"));
    assert_int_equal(c.argc, 0);

    ld.vppb = 3;
    ld.size = 384ull << 20;
    assert_int_equal(px_qemu_cmd_build(t, 0, &cfg, &c, &em), PX_E_CONFIG);
    assert_non_null(strstr(em.text, where));
    assert_non_null(strstr(em.text, "vPPB 3: size 402653184 is not a multiple of 256 MiB"));
    ld.size = 0;
    assert_int_equal(px_qemu_cmd_build(t, 0, &cfg, &c, &em), PX_E_CONFIG);
    assert_non_null(strstr(em.text, "size 0 is not a multiple of 256 MiB"));
    ld.size = 512ull << 20;

    ld.mem_path = longpath;
    assert_int_equal(px_qemu_cmd_build(t, 0, &cfg, &c, &em), PX_E_CONFIG);
    assert_non_null(strstr(em.text, where));
    assert_non_null(strstr(em.text, "vPPB 3: memory file path is 4096 bytes, longer than 4095"));
    ld.mem_path = "/m";
    ld.lsa_path = longpath;
    assert_int_equal(px_qemu_cmd_build(t, 0, &cfg, &c, &em), PX_E_CONFIG);
    assert_non_null(strstr(em.text, "label storage file path is 4096 bytes"));
    ld.lsa_path = "";
    assert_int_equal(px_qemu_cmd_build(t, 0, &cfg, &c, &em), PX_E_CONFIG);
    assert_non_null(strstr(em.text, "vPPB 3: no label storage file"));
    ld.lsa_path = "/l";

    ld.attach = 2;
    assert_int_equal(px_qemu_cmd_build(t, 0, &cfg, &c, &em), PX_E_CONFIG);
    assert_non_null(
        strstr(em.text, "guest db: CXL LD 0 (attachment 2): the guest has 2 CXL attachment(s)"));
    assert_int_equal(px_qemu_cmd_build(t, 1, &cfg, &c, &em), PX_E_CONFIG);
    assert_non_null(strstr(em.text, "guest plain: CXL LD 0 (attachment 2)"));

    px_qemu_cxl_ld two[] = {ld, ld};
    two[0].attach = two[1].attach = 1;
    cfg.cxl_lds = two;
    cfg.n_cxl_lds = 2;
    assert_int_equal(px_qemu_cmd_build(t, 0, &cfg, &c, &em), PX_E_CONFIG);
    assert_non_null(strstr(em.text, "guest db: CXL LD 1 (attachment 1: switch other port 0"));
    assert_non_null(strstr(em.text, "vPPB 3 is bound twice (also CXL LD 0)"));
    assert_int_equal(c.argc, 0);
    px_qemu_cmd_fini(&c);
    px_topo_free(t);

    /* More attachments than PCI bus numbers: refused before any argument. */
    char yaml[2048];
    int n = snprintf(yaml, sizeof(yaml),
                     "name: l\ndefaults: {image: 'builtin:tiny'}\nnets:\n"
                     "  s: {type: cxl_switch, ports: 13}\nnodes:\n  big:\n    cxl: [");
    for (int i = 0; i < 13; i++)
        n += snprintf(yaml + n, sizeof(yaml) - (size_t)n, "%ss", i ? ", " : "");
    snprintf(yaml + n, sizeof(yaml) - (size_t)n, "]\n");
    t = load(yaml);
    cfg.n_cxl_lds = 0;
    assert_int_equal(px_qemu_cmd_build(t, 0, &cfg, &c, &em), PX_E_CONFIG);
    assert_non_null(strstr(em.text, "guest big: 13 CXL attachments need PCI buses 64..271; at "
                                    "most 12 attachments fit"));
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
        cmocka_unit_test(test_builtin_guest_line), cmocka_unit_test(test_nic_ports_and_dhcp),
        cmocka_unit_test(test_ivshmem_doorbell),   cmocka_unit_test(test_cxl_topology),
        cmocka_unit_test(test_cxl_errors),         cmocka_unit_test(test_kvm_and_describe),
        cmocka_unit_test(test_errors_say_what),
    };
    return cmocka_run_group_tests_name("qemu_cmd", tests, setup, teardown);
}
