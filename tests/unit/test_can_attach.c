/* CAN attach paths: `attach: shim | vxcan` and `host_interfaces:` in the
 * topology, QEMU's command line for a vxcan guest, and vxcan pairs through
 * rtnetlink where the kernel has no AF_CAN (this project's CI): a clear
 * PX_E_UNSUPP refusal. The pair itself is test_can_vxcan.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "coordinator/topology.h"
#include "devices/can/vxcan.h"
#include "fabric/can-bus/proto.h"
#include "node/qemu_cmd.h"

static px_topo *load_file(const char *rel)
{
    char path[4096];
    const char *dir = getenv("PX_TOPO_DIR");
    snprintf(path, sizeof(path), "%s/%s", dir ? dir : "tests/topology", rel);
    px_topo *t = NULL;
    px_errmsg em = {{0}};
    if (px_topo_load_file(path, &t, &em) != PX_OK)
        fail_msg("%s: %s", path, em.text);
    return t;
}

static void test_topology_attach_and_host_interfaces(void **state)
{
    (void)state;
    px_topo *t = load_file("good/can_attach.yaml");
    const px_topo_guest *e1 = &t->guests[px_topo_find_guest(t, "ecu1")];
    const px_topo_guest *e2 = &t->guests[px_topo_find_guest(t, "ecu2")];
    const px_topo_guest *e3 = &t->guests[px_topo_find_guest(t, "ecu3")];
    assert_int_equal(e1->cans[0].attach, PX_TOPO_CAN_ATTACH_SHIM); /* the default */
    assert_int_equal(e2->n_cans, 2);
    assert_int_equal(e2->cans[0].attach, PX_TOPO_CAN_ATTACH_VXCAN);
    assert_int_equal(e2->cans[1].attach, PX_TOPO_CAN_ATTACH_VXCAN);
    assert_int_equal(e3->cans[0].attach, PX_TOPO_CAN_ATTACH_SHIM);
    assert_string_equal(px_topo_can_attach_str(PX_TOPO_CAN_ATTACH_VXCAN), "vxcan");

    px_topo_ref r;
    assert_true(px_topo_find_net(t, "body", &r));
    const px_topo_can_bus *b = &t->can_buses[r.index];
    assert_int_equal(b->n_host_ifs, 3);
    assert_string_equal(t->hosts[b->host_ifs[0].host].name, "h1");
    assert_string_equal(b->host_ifs[0].ifname, "can0");
    assert_string_equal(t->hosts[b->host_ifs[1].host].name, "h2");
    assert_string_equal(b->host_ifs[1].ifname, "can0"); /* same name, other host */
    assert_string_equal(b->host_ifs[2].ifname, "slcan-left.1");
    assert_int_equal(b->host_ifs[2].mark.line, 14);
    assert_true(px_topo_find_net(t, "chassis", &r));
    assert_int_equal(t->can_buses[r.index].n_host_ifs, 0);
    px_topo_free(t);
}

/* Host interface endpoints can never be taken for a guest's controller. */
static void test_host_interface_ids(void **state)
{
    (void)state;
    uint32_t top = px_can_guest_ep(PX_TOPO_MAX_GUESTS - 1, PX_CAN_EPS_PER_GUEST - 1);
    assert_true(top < PX_CAN_HOSTIF_EP(0));
    assert_true(PX_CAN_HOSTIF_EP(PX_TOPO_MAX_HOST_IFS) < 0xfffffff0u); /* PX_CAN_GW_EP */
    char name[32];
    assert_true(snprintf(name, sizeof(name), PX_CAN_VXCAN_QEMU_FMT, 0xffffu, PX_TOPO_MAX_GUESTS - 1,
                         PX_CAN_EPS_PER_GUEST - 1) < 16);
}

static const char *arg_with(const px_qemu_cmd *c, const char *sub)
{
    for (size_t i = 0; i < c->argc; i++)
        if (strstr(c->argv[i], sub))
            return c->argv[i];
    return NULL;
}

/* A vxcan guest opens the QEMU end of its pair and runs without the shim. */
static void test_qemu_line_for_vxcan(void **state)
{
    (void)state;
    static const char yaml[] =
        "name: l\n"
        "defaults: {image: {kernel: /dev/null}, memory: 128M, cpus: 1}\n"
        "nets:\n"
        "  bus: {type: can_bus}\n"
        "nodes:\n"
        "  a: {can: [bus]}\n"
        "  b: {can: [{bus: bus, attach: vxcan}, {bus: bus, attach: vxcan}]}\n";
    px_topo *t = NULL;
    px_errmsg em = {{0}};
    if (px_topo_load_buffer("t.yaml", yaml, strlen(yaml), &t, &em) != PX_OK)
        fail_msg("topology: %s", em.text);
    px_qemu_cfg cfg = {.rundir = "/tmp", .accel = PX_TOPO_ACCEL_TCG}; /* no shim at all */
    px_qemu_cmd c;
    assert_int_equal(px_qemu_cmd_build(t, 1, &cfg, &c, &em), PX_OK);
    char want[96];
    snprintf(want, sizeof(want), "can-host-socketcan,id=pxch0,if=pxq%04x1c0,canbus=pxcb0",
             PX_CAN_VXCAN_TAG("l"));
    assert_non_null(arg_with(&c, want));
    snprintf(want, sizeof(want), "can-host-socketcan,id=pxch1,if=pxq%04x1c1,canbus=pxcb1",
             PX_CAN_VXCAN_TAG("l"));
    assert_non_null(arg_with(&c, want));
    assert_null(arg_with(&c, "if=g1c"));
    for (size_t i = 0; i < c.n_env; i++) {
        assert_null(strstr(c.env[i], "LD_PRELOAD"));
        assert_null(strstr(c.env[i], "PLEXUS_CAN_SOCKET_DIR"));
    }
    px_qemu_cmd_fini(&c);
    /* The shim guest still needs the shim. */
    assert_int_equal(px_qemu_cmd_build(t, 0, &cfg, &c, &em), PX_E_CONFIG);
    assert_non_null(strstr(em.text, "libpxcanshim.so"));
    px_qemu_cmd_fini(&c);
    px_topo_free(t);
}

/* Where the kernel has no vxcan, creating a pair is refused clearly. */
static void test_vxcan_refused_without_af_can(void **state)
{
    (void)state;
    char why[128];
    if (px_af_can_available(why, sizeof(why))) {
        print_message("# skipped: this kernel has AF_CAN; test_can_vxcan covers it\n");
        skip();
    }
    if (geteuid() != 0) {
        print_message("# skipped: creating links needs CAP_NET_ADMIN (run as root)\n");
        skip();
    }
    px_errmsg em = {{0}};
    assert_int_equal(px_vxcan_create("pxvtest0", "pxqtest0", &em), PX_E_UNSUPP);
    assert_non_null(strstr(em.text, "vxcan pair pxvtest0/pxqtest0"));
    assert_non_null(strstr(em.text, "has no vxcan"));
    assert_non_null(strstr(em.text, "attach: shim"));
    assert_false(px_vxcan_exists("pxvtest0"));
    /* Deleting what is not there is not an error. */
    assert_int_equal(px_vxcan_delete("pxvtest0", &em), PX_OK);
    /* Names the kernel would refuse are caught before netlink. */
    assert_int_equal(px_vxcan_create("pxv-name-too-long-x", "p", &em), PX_E_CONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topology_attach_and_host_interfaces),
        cmocka_unit_test(test_host_interface_ids),
        cmocka_unit_test(test_qemu_line_for_vxcan),
        cmocka_unit_test(test_vxcan_refused_without_af_can),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
