/* A vxcan pair through rtnetlink: created with both ends up, refused a
 * second time, deleted with both ends. Needs AF_CAN, the vxcan module and
 * CAP_NET_ADMIN; where any is missing (this project's CI kernel has no
 * AF_CAN) it prints why, calls skip(), and the program exits 77 so that
 * meson reports SKIP (its TAP reader takes cmocka's "not ok # SKIP" for a
 * failure, hence the exitcode protocol for this one). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/can/vxcan.h"

static bool skipped;

/* Create a pair, both ends up, delete it: needs AF_CAN, vxcan, root. */
static void test_vxcan_pair(void **state)
{
    (void)state;
    char why[128];
    if (!px_af_can_available(why, sizeof(why))) {
        print_message("# skipped: this kernel has no AF_CAN (%s)\n", why);
        skipped = true;
        skip();
    }
    if (geteuid() != 0) {
        print_message("# skipped: creating links needs CAP_NET_ADMIN (run as root)\n");
        skipped = true;
        skip();
    }
    px_errmsg em = {{0}};
    px_err err = px_vxcan_create("pxvtest1", "pxqtest1", &em);
    if (err == PX_E_UNSUPP) {
        print_message("# skipped: AF_CAN but no vxcan module (%s)\n", em.text);
        skipped = true;
        skip();
    }
    assert_int_equal(err, PX_OK);
    assert_true(px_vxcan_exists("pxvtest1"));
    assert_true(px_vxcan_exists("pxqtest1"));
    assert_int_equal(px_vxcan_create("pxvtest1", "pxqtest9", &em), PX_E_EXISTS);
    assert_int_equal(px_vxcan_delete("pxvtest1", &em), PX_OK);
    assert_false(px_vxcan_exists("pxvtest1"));
    assert_false(px_vxcan_exists("pxqtest1")); /* both ends go */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vxcan_pair),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return failed ? failed : skipped ? 77 : 0;
}
