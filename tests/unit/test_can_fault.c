/* Unit tests: fabric/can-bus/fault — verdicts and their rates, error frame
 * bytes, controller states, topology faults, the fault command, reports. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fabric/can-bus/fault.h"

/* ---- what notify saw ---- */

typedef struct notice {
    uint32_t ep;
    px_can_frame f;
} notice;

static notice seen[512];
static unsigned n_seen;

static void on_notify(void *ud, uint32_t ep, const px_can_frame *err)
{
    (void)ud;
    assert_true(n_seen < 512);
    assert_int_equal(px_can_check(err, true), PX_CAN_OK);
    seen[n_seen++] = (notice){ep, *err};
}

static void fresh(px_canfault *f, uint64_t seed)
{
    n_seen = 0;
    px_canfault_init(f, seed, on_notify, NULL);
}

static void expect_frame(const px_can_frame *f, uint32_t can_id, const uint8_t data[8])
{
    assert_int_equal(f->can_id, can_id);
    assert_int_equal(f->len, 8);
    assert_int_equal(f->flags, 0);
    assert_memory_equal(f->data, data, 8);
    for (unsigned i = 8; i < PX_CANFD_MAX_DLEN; i++)
        assert_int_equal(f->data[i], 0);
    assert_int_equal(px_can_check(f, true), PX_CAN_OK);
}

/* ---- rates ---- */

static void test_no_faults(void **state)
{
    (void)state;
    px_canfault f;
    fresh(&f, 1);
    px_can_frame err;
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(px_canfault_submit(&f, 9, &err), PX_CANFAULT_PASS);
        assert_true(px_canfault_deliver(&f, 10));
    }
    assert_int_equal(f.rng, 1); /* nothing drew a random number */
    px_canfault_stats zero = {0};
    assert_memory_equal(&f.stats, &zero, sizeof(zero));
}

#define N_FRAMES 200000u

static void test_drop_rates(void **state)
{
    (void)state;
    px_canfault f;
    fresh(&f, 42);
    assert_int_equal(px_canfault_set_bus(&f, 100000, 10000), PX_OK); /* 10%, 1% */
    px_can_frame err;
    unsigned drop = 0, corrupt = 0;
    for (unsigned i = 0; i < N_FRAMES; i++) {
        px_canfault_verdict v = px_canfault_submit(&f, 9, &err);
        drop += v == PX_CANFAULT_DROP;
        corrupt += v == PX_CANFAULT_CORRUPT;
    }
    /* Binomial: 10% of 200000 has a standard deviation of 134; 1% of the
     * rest one of 42. Bounds of about 4 sigma, and the seed is fixed. */
    assert_in_range(drop, 19460, 20540);
    assert_in_range(corrupt, 1620, 1980);
    assert_int_equal(f.stats.dropped, drop);
    assert_int_equal(f.stats.corrupted, corrupt);
    assert_int_equal(f.stats.error_frames, corrupt);

    /* Same seed, same verdicts; another seed, other ones. */
    px_canfault g, h;
    fresh(&g, 42);
    fresh(&h, 43);
    px_canfault_set_bus(&g, 100000, 10000);
    px_canfault_set_bus(&h, 100000, 10000);
    unsigned same = 0;
    for (unsigned i = 0; i < 1000; i++) {
        px_canfault_verdict a = px_canfault_submit(&g, 9, &err);
        same += a == px_canfault_submit(&h, 9, &err);
    }
    assert_true(same < 1000);
    fresh(&h, 42);
    px_canfault_set_bus(&h, 100000, 10000);
    fresh(&g, 42);
    px_canfault_set_bus(&g, 100000, 10000);
    for (unsigned i = 0; i < 1000; i++)
        assert_int_equal(px_canfault_submit(&g, 9, &err), px_canfault_submit(&h, 9, &err));

    /* A member's delivery drop: 25% of deliveries to ep 17, none to 18. */
    fresh(&f, 7);
    assert_int_equal(px_canfault_set_member_drop(&f, 17, 250000), PX_OK);
    unsigned lost = 0;
    for (unsigned i = 0; i < N_FRAMES; i++) {
        lost += !px_canfault_deliver(&f, 17);
        assert_true(px_canfault_deliver(&f, 18));
    }
    assert_in_range(lost, 49225, 50775); /* sd 194 */
    assert_int_equal(f.stats.delivery_drops, lost);

    /* 100% and the smallest step. */
    fresh(&f, 7);
    px_canfault_set_bus(&f, PX_CANFAULT_PPM, 0);
    for (unsigned i = 0; i < 100; i++)
        assert_int_equal(px_canfault_submit(&f, 9, &err), PX_CANFAULT_DROP);
    assert_int_equal(f.rng, 7);
    px_canfault_set_bus(&f, 1, 0);
    drop = 0;
    for (unsigned i = 0; i < N_FRAMES * 5; i++)
        drop += px_canfault_submit(&f, 9, &err) == PX_CANFAULT_DROP;
    assert_in_range(drop, 0, 6); /* expected 1 */
    assert_int_equal(px_canfault_set_bus(&f, PX_CANFAULT_PPM + 1, 0), PX_E_INVAL);
    assert_int_equal(px_canfault_set_member_drop(&f, 9, PX_CANFAULT_PPM + 1), PX_E_INVAL);
}

/* ---- error frames ---- */

static void test_error_frames(void **state)
{
    (void)state;
    px_can_frame e;
    static const uint8_t passive[8] = {0, 0x30, 0, 0, 0, 0, 128, 128};
    static const uint8_t active[8] = {0, 0x40, 0, 0, 0, 0, 0, 0};
    static const uint8_t zero[8] = {0};
    assert_true(px_canfault_state_frame(PX_CANFAULT_ACTIVE, PX_CANFAULT_PASSIVE, &e));
    expect_frame(&e, 0x20000204u, passive); /* ERR | CNT | CRTL */
    assert_true(px_canfault_state_frame(PX_CANFAULT_PASSIVE, PX_CANFAULT_ACTIVE, &e));
    expect_frame(&e, 0x20000204u, active);
    assert_true(px_canfault_state_frame(PX_CANFAULT_ACTIVE, PX_CANFAULT_BUSOFF, &e));
    expect_frame(&e, 0x20000040u, zero);
    assert_true(px_canfault_state_frame(PX_CANFAULT_PASSIVE, PX_CANFAULT_BUSOFF, &e));
    expect_frame(&e, 0x20000040u, zero);
    assert_true(px_canfault_state_frame(PX_CANFAULT_BUSOFF, PX_CANFAULT_ACTIVE, &e));
    expect_frame(&e, 0x20000100u, zero); /* RESTARTED */
    assert_true(px_canfault_state_frame(PX_CANFAULT_BUSOFF, PX_CANFAULT_PASSIVE, &e));
    expect_frame(&e, 0x20000304u, passive); /* RESTARTED | CNT | CRTL */
    memset(&e, 0x5a, sizeof(e));
    assert_false(px_canfault_state_frame(PX_CANFAULT_BUSOFF, PX_CANFAULT_BUSOFF, &e));
    assert_int_equal(e.can_id, 0x5a5a5a5au);

    /* Corruption: PROT | BUSERROR, a bit error in the data or a form error
     * at the CRC delimiter; both kinds show up. */
    px_canfault f;
    fresh(&f, 3);
    px_canfault_set_bus(&f, 0, PX_CANFAULT_PPM);
    unsigned bit = 0, form = 0;
    for (int i = 0; i < 64; i++) {
        memset(&e, 0, sizeof(e));
        assert_int_equal(px_canfault_submit(&f, 9, &e), PX_CANFAULT_CORRUPT);
        assert_int_equal(e.can_id, 0x20000088u);
        assert_int_equal(px_can_check(&e, true), PX_CAN_OK);
        if (e.data[2] == 0x01) {
            assert_int_equal(e.data[3], 0x0a);
            bit++;
        } else {
            assert_int_equal(e.data[2], 0x02);
            assert_int_equal(e.data[3], 0x18);
            form++;
        }
        assert_int_equal(e.data[0] | e.data[1] | e.data[4] | e.data[5] | e.data[6] | e.data[7], 0);
    }
    assert_true(bit > 0 && form > 0);

    /* can_error: PROT | BUSERROR with a type and a location. */
    for (int i = 0; i < 64; i++) {
        px_canfault_error_frame(&f, &e);
        assert_int_equal(e.can_id, 0x20000088u);
        assert_true(e.data[2] == 0x01 || e.data[2] == 0x02 || e.data[2] == 0x04);
        assert_true(e.data[3] != 0);
    }
    assert_int_equal(f.stats.error_frames, 128);
}

/* ---- states ---- */

static void test_states(void **state)
{
    (void)state;
    px_canfault f;
    fresh(&f, 1);
    px_can_frame e;
    bool has;
    static const uint8_t zero[8] = {0};

    assert_int_equal(px_canfault_set_state(&f, 9, PX_CANFAULT_BUSOFF, &e, &has), PX_OK);
    assert_true(has);
    expect_frame(&e, 0x20000040u, zero);
    assert_int_equal(px_canfault_member_get(&f, 9).state, PX_CANFAULT_BUSOFF);
    /* Bus-off: sends nothing, receives nothing; others are fine. */
    assert_int_equal(px_canfault_submit(&f, 9, &e), PX_CANFAULT_DROP);
    assert_false(px_canfault_deliver(&f, 9));
    assert_int_equal(px_canfault_submit(&f, 10, &e), PX_CANFAULT_PASS);
    assert_true(px_canfault_deliver(&f, 10));
    assert_int_equal(f.stats.refused_busoff, 2);
    /* It lasts: setting it again says nothing. */
    assert_int_equal(px_canfault_set_state(&f, 9, PX_CANFAULT_BUSOFF, &e, &has), PX_OK);
    assert_false(has);
    assert_int_equal(px_canfault_set_state(&f, 9, PX_CANFAULT_ACTIVE, &e, &has), PX_OK);
    assert_true(has);
    expect_frame(&e, 0x20000100u, zero);
    assert_int_equal(f.n_members, 0); /* back to the defaults: slot freed */
    assert_int_equal(px_canfault_set_state(&f, 9, PX_CANFAULT_ACTIVE, &e, &has), PX_OK);
    assert_false(has);

    /* Passive still sends and receives. */
    px_canfault_set_state(&f, 9, PX_CANFAULT_PASSIVE, &e, &has);
    assert_int_equal(px_canfault_submit(&f, 9, &e), PX_CANFAULT_PASS);
    assert_true(px_canfault_deliver(&f, 9));

    /* Partition, then the whole bus down. */
    assert_int_equal(px_canfault_set_partition(&f, 17, true), PX_OK);
    assert_int_equal(px_canfault_submit(&f, 17, &e), PX_CANFAULT_DROP);
    assert_false(px_canfault_deliver(&f, 17));
    assert_int_equal(f.stats.refused_partition, 2);
    px_canfault_set_down(&f, true);
    assert_int_equal(px_canfault_submit(&f, 9, &e), PX_CANFAULT_DROP);
    assert_false(px_canfault_deliver(&f, 10));
    assert_int_equal(f.stats.refused_down, 2);
    px_canfault_set_down(&f, false);
    assert_int_equal(px_canfault_set_partition(&f, 17, false), PX_OK);
    assert_int_equal(f.n_members, 1);

    /* Bad arguments. */
    assert_int_equal(px_canfault_set_state(&f, 0, PX_CANFAULT_BUSOFF, &e, &has), PX_E_INVAL);
    assert_int_equal(px_canfault_set_state(&f, 9, (px_canfault_state)7, &e, &has), PX_E_INVAL);
    assert_int_equal(px_canfault_set_partition(&f, 0, true), PX_E_INVAL);

    /* The table is bounded; clearing an endpoint without a slot is fine. */
    fresh(&f, 1);
    for (uint32_t ep = 1; ep <= PX_CANFAULT_MAX_MEMBERS; ep++)
        assert_int_equal(px_canfault_set_partition(&f, ep * 3, true), PX_OK);
    assert_int_equal(px_canfault_set_partition(&f, 1, true), PX_E_TOOBIG);
    assert_int_equal(px_canfault_set_state(&f, 1, PX_CANFAULT_PASSIVE, &e, &has), PX_E_TOOBIG);
    assert_false(has);
    assert_int_equal(px_canfault_set_state(&f, 1, PX_CANFAULT_ACTIVE, &e, &has), PX_OK);
    assert_int_equal(px_canfault_set_partition(&f, 3, true), PX_OK); /* has a slot */
    for (uint32_t i = 1; i < f.n_members; i++)
        assert_true(f.members[i - 1].ep < f.members[i].ep);
    assert_false(px_canfault_deliver(&f, 300));
    assert_true(px_canfault_deliver(&f, 301));
    px_canfault_clear(&f);
    assert_int_equal(f.n_members, 0);
    assert_int_equal(n_seen, 0); /* nobody was passive or bus-off */
}

/* ---- topology ---- */

static void test_topology_faults(void **state)
{
    (void)state;
    px_canfault f;
    fresh(&f, 5);
    static const uint32_t eps[2] = {9, 10};
    static const uint8_t zero[8] = {0};
    assert_int_equal(px_canfault_configure(&f, 1000, 20), PX_OK);
    assert_int_equal(f.drop_ppm, 1000);
    assert_int_equal(f.corrupt_ppm, 20);

    assert_int_equal(px_canfault_topo(&f, PX_CANFAULT_K_IMPAIR, true, NULL, 0, 50000, 0), PX_OK);
    assert_int_equal(f.drop_ppm, 50000);
    assert_int_equal(f.corrupt_ppm, 0);
    assert_int_equal(px_canfault_topo(&f, PX_CANFAULT_K_IMPAIR, false, NULL, 0, 50000, 0), PX_OK);
    assert_int_equal(f.drop_ppm, 1000); /* the topology's, not 0 */
    assert_int_equal(f.corrupt_ppm, 20);
    assert_int_equal(px_canfault_topo(&f, PX_CANFAULT_K_IMPAIR, true, eps, 2, 300000, 7), PX_OK);
    assert_int_equal(px_canfault_member_get(&f, 10).drop_ppm, 300000);
    assert_int_equal(px_canfault_member_get(&f, 10).corrupt_ppm, 7);
    assert_int_equal(px_canfault_topo(&f, PX_CANFAULT_K_IMPAIR, false, eps, 2, 300000, 7), PX_OK);
    assert_int_equal(f.n_members, 0);
    assert_int_equal(px_canfault_topo(&f, PX_CANFAULT_K_IMPAIR, true, NULL, 0, 2000000, 0),
                     PX_E_INVAL);

    assert_int_equal(px_canfault_topo(&f, PX_CANFAULT_K_LINK_DOWN, true, NULL, 0, 0, 0), PX_OK);
    assert_true(f.down);
    assert_int_equal(px_canfault_topo(&f, PX_CANFAULT_K_LINK_DOWN, false, NULL, 0, 0, 0), PX_OK);
    assert_false(f.down);
    assert_int_equal(px_canfault_topo(&f, PX_CANFAULT_K_LINK_DOWN, true, eps, 2, 0, 0), PX_OK);
    assert_true(px_canfault_member_get(&f, 9).partitioned);
    assert_false(f.down);
    assert_int_equal(px_canfault_topo(&f, PX_CANFAULT_K_LINK_DOWN, false, eps, 2, 0, 0), PX_OK);
    assert_int_equal(f.n_members, 0);
    assert_int_equal(n_seen, 0);

    /* Bus-off: each endpoint learns it, and learns the restart. */
    assert_int_equal(px_canfault_topo(&f, PX_CANFAULT_K_BUS_OFF, true, eps, 2, 0, 0), PX_OK);
    assert_int_equal(n_seen, 2);
    assert_int_equal(seen[0].ep, 9);
    assert_int_equal(seen[1].ep, 10);
    expect_frame(&seen[1].f, 0x20000040u, zero);
    assert_int_equal(px_canfault_topo(&f, PX_CANFAULT_K_BUS_OFF, false, eps, 2, 0, 0), PX_OK);
    assert_int_equal(n_seen, 4);
    expect_frame(&seen[2].f, 0x20000100u, zero);
    assert_int_equal(px_canfault_topo(&f, PX_CANFAULT_K_BUS_OFF, true, NULL, 0, 0, 0), PX_E_INVAL);

    /* can_error: one bus error frame per call, to everyone. */
    assert_int_equal(px_canfault_topo(&f, PX_CANFAULT_K_CAN_ERROR, true, NULL, 0, 0, 0), PX_OK);
    assert_int_equal(n_seen, 5);
    assert_int_equal(seen[4].ep, PX_CANFAULT_ALL);
    assert_int_equal(seen[4].f.can_id, 0x20000088u);
    assert_int_equal(px_canfault_topo(&f, PX_CANFAULT_K_CAN_ERROR, false, NULL, 0, 0, 0), PX_OK);
    assert_int_equal(n_seen, 5);

    /* Full table: nothing changes, nobody is told. */
    for (uint32_t ep = 100; ep < 100 + PX_CANFAULT_MAX_MEMBERS - 1; ep++)
        px_canfault_set_partition(&f, ep, true);
    assert_int_equal(px_canfault_topo(&f, PX_CANFAULT_K_BUS_OFF, true, eps, 2, 0, 0), PX_E_TOOBIG);
    assert_int_equal(n_seen, 5);
    assert_int_equal(px_canfault_member_get(&f, 9).state, PX_CANFAULT_ACTIVE);
}

/* ---- the command ---- */

static px_err resolve(void *ud, const char *guest, uint32_t *eps, uint32_t cap, uint32_t *n)
{
    (void)ud;
    (void)cap;
    if (strcmp(guest, "ecu1") == 0) {
        eps[0] = 9, eps[1] = 10, *n = 2;
        return PX_OK;
    }
    if (strcmp(guest, "ecu2") == 0) {
        eps[0] = 17, *n = 1;
        return PX_OK;
    }
    if (strcmp(guest, "broken") == 0)
        return PX_E_IO;
    return PX_E_NOTFOUND;
}

/* Splits s on spaces into argv (tests only: the real argv is never split). */
static int split(char *s, const char *argv[PX_CANFAULT_MAX_ARGS + 8])
{
    int argc = 0;
    for (char *tok = strtok(s, " "); tok && argc < (int)PX_CANFAULT_MAX_ARGS + 8;
         tok = strtok(NULL, " "))
        argv[argc++] = tok;
    return argc;
}

static px_err run(px_canfault *f, const char *cmdline, char *sum, px_errmsg *em)
{
    char buf[1024];
    const char *argv[PX_CANFAULT_MAX_ARGS + 8];
    snprintf(buf, sizeof(buf), "%s", cmdline);
    int argc = split(buf, argv);
    return px_canfault_command(f, argc, argv, resolve, NULL, sum, PX_CANFAULT_SUMMARY_MAX, em);
}

static void test_command_accept(void **state)
{
    (void)state;
    static const struct {
        const char *cmd;
        const char *summary;
    } ok[] = {
        {"--drop 5%", "bus drop 5%"},
        {"--drop=0.0001%", "bus drop 0.0001%"},
        {"--corrupt 250ppm --drop 100%", "bus corrupt 0.025%; bus drop 100%"},
        {"--drop 12.5%", "bus drop 12.5%"},
        {"--guest ecu1 --drop 1% --corrupt 0%", "guest ecu1 drop 1%; guest ecu1 corrupt 0%"},
        {"--guest=ecu2 --partition", "guest ecu2 partitioned"},
        {"--guest ecu2 --heal", "guest ecu2 healed"},
        {"--heal", "every member healed"},
        {"--down --up", "bus down; bus up"},
        {"--guest ecu1 --state bus-off --guest ecu2 --state=passive",
         "guest ecu1 bus-off; guest ecu2 passive"},
        {"--clear", "cleared"},
    };
    px_canfault f;
    fresh(&f, 9);
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        char sum[PX_CANFAULT_SUMMARY_MAX] = "";
        px_errmsg em = {{0}};
        if (run(&f, ok[i].cmd, sum, &em) != PX_OK)
            fail_msg("%s: %s", ok[i].cmd, em.text);
        if (strcmp(sum, ok[i].summary) != 0)
            fail_msg("%s: summary '%s', expected '%s'", ok[i].cmd, sum, ok[i].summary);
        switch (i) {
        case 0:
            assert_int_equal(f.drop_ppm, 50000);
            break;
        case 1:
            assert_int_equal(f.drop_ppm, 1);
            break;
        case 2:
            assert_int_equal(f.corrupt_ppm, 250);
            assert_int_equal(f.drop_ppm, PX_CANFAULT_PPM);
            break;
        case 3:
            assert_int_equal(f.drop_ppm, 125000);
            break;
        case 4:
            assert_int_equal(px_canfault_member_get(&f, 9).drop_ppm, 10000);
            assert_int_equal(px_canfault_member_get(&f, 10).drop_ppm, 10000);
            assert_int_equal(f.drop_ppm, 125000); /* the bus's is untouched */
            break;
        case 5:
            assert_true(px_canfault_member_get(&f, 17).partitioned);
            break;
        case 6:
            assert_false(px_canfault_member_get(&f, 17).partitioned);
            break;
        case 8:
            assert_false(f.down);
            break;
        case 9:
            assert_int_equal(n_seen, 3); /* 9 and 10 bus-off, 17 passive */
            assert_int_equal(seen[0].ep, 9);
            assert_int_equal(seen[0].f.can_id, 0x20000040u);
            assert_int_equal(seen[2].ep, 17);
            assert_int_equal(seen[2].f.can_id, 0x20000204u);
            break;
        case 10:
            assert_int_equal(n_seen, 6); /* three recoveries */
            assert_int_equal(seen[3].f.can_id, 0x20000100u);
            assert_int_equal(seen[5].f.can_id, 0x20000204u);
            assert_int_equal(seen[5].f.data[1], 0x40);
            assert_int_equal(f.n_members, 0);
            assert_int_equal(f.drop_ppm, 0);
            break;
        default:
            break;
        }
    }
    /* --error: one bus error frame through notify, shown in the summary. */
    char sum[PX_CANFAULT_SUMMARY_MAX];
    px_errmsg em;
    assert_int_equal(run(&f, "--error", sum, &em), PX_OK);
    assert_int_equal(n_seen, 7);
    assert_int_equal(seen[6].ep, PX_CANFAULT_ALL);
    char want[64];
    snprintf(want, sizeof(want), "error frame 20000088#0000%02X%02X00000000 sent",
             seen[6].f.data[2], seen[6].f.data[3]);
    assert_string_equal(sum, want);
    /* The summary may be NULL. */
    const char *argv[] = {"--up"};
    assert_int_equal(px_canfault_command(&f, 1, argv, resolve, NULL, NULL, 0, &em), PX_OK);
}

static void test_command_reject(void **state)
{
    (void)state;
    static const struct {
        const char *cmd;
        px_err code;
        const char *want;
    } bad[] = {
        {"", PX_E_CONFIG, "no fault given; expected one or more of --drop P"},
        {"--dorp 5%", PX_E_CONFIG,
         "argument 1 \"--dorp\": unknown option; expected --drop P, --corrupt P, --guest NAME, "
         "--state active|passive|bus-off, --partition, --heal, --down, --up, --error, --clear "
         "(hint: did you mean --drop?)"},
        {"--Down", PX_E_CONFIG, "(hint: did you mean --down?)"},
        {"drop 5%", PX_E_CONFIG, "argument 1 \"drop\": not an option; expected --drop P"},
        {"--drop", PX_E_CONFIG,
         "argument 1 \"--drop\": --drop needs a value; expected a "
         "percentage with at most 4 decimals"},
        {"--drop 5", PX_E_CONFIG,
         "argument 2 \"5\": not a probability; expected a percentage with at most 4 decimals "
         "like 5% or 0.25%, or parts per million like 2500ppm (0..100%) (hint: add % (or ppm) "
         "to the number)"},
        {"--drop 1e-3", PX_E_CONFIG, "(hint: no exponents: write 0.1% or 1000ppm)"},
        {"--drop 101%", PX_E_CONFIG, "argument 2 \"101%\": not a probability"},
        {"--drop 1000001ppm", PX_E_CONFIG, "not a probability"},
        {"--drop 0.00001%", PX_E_CONFIG, "argument 2 \"0.00001%\": not a probability"},
        {"--drop -1%", PX_E_CONFIG, "not a probability"},
        {"--drop 5%%", PX_E_CONFIG, "not a probability"},
        {"--drop .5%", PX_E_CONFIG, "not a probability"},
        {"--drop 5.%", PX_E_CONFIG, "not a probability"},
        {"--drop= ", PX_E_CONFIG, "argument 1 \"--drop=\": not a probability"},
        {"--corrupt 99999999999999999999%", PX_E_CONFIG, "not a probability"},
        {"--state passive", PX_E_CONFIG,
         "argument 1 \"--state\": --state applies to one guest; expected --guest NAME before it"},
        {"--partition", PX_E_CONFIG, "(hint: --down cuts the whole bus)"},
        {"--guest nobody --drop 1%", PX_E_NOTFOUND,
         "argument 2 \"nobody\": no such guest on this bus; expected the name of a guest "
         "attached to the bus"},
        {"--guest", PX_E_CONFIG, "--guest needs a value; expected --guest NAME"},
        {"--guest broken", PX_E_IO, "cannot resolve the guest"},
        {"--guest ecu1 --state sleepy", PX_E_CONFIG,
         "argument 4 \"sleepy\": not a controller state; expected active, passive or bus-off"},
        {"--down=yes", PX_E_CONFIG, "argument 1 \"--down=yes\": --down takes no value"},
        {"--drop 5% --bogus", PX_E_CONFIG, "argument 3 \"--bogus\""},
    };
    px_canfault f;
    fresh(&f, 9);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        px_errmsg em = {{0}};
        char sum[PX_CANFAULT_SUMMARY_MAX] = "untouched";
        px_err err = run(&f, bad[i].cmd, sum, &em);
        if (err != bad[i].code || !strstr(em.text, bad[i].want))
            fail_msg("'%s': %s, want %s '%s', got: %s", bad[i].cmd, px_errname(err),
                     px_errname(bad[i].code), bad[i].want, em.text);
        assert_string_equal(sum, "untouched");
        /* Nothing changed: not even the part before the bad argument. */
        assert_int_equal(f.drop_ppm, 0);
        assert_int_equal(f.n_members, 0);
        assert_int_equal(n_seen, 0);
    }
    px_errmsg em;
    /* Unprintable bytes never reach a message raw. */
    const char *weird[] = {"--\x01\xff"};
    assert_int_equal(px_canfault_command(&f, 1, weird, resolve, NULL, NULL, 0, &em), PX_E_CONFIG);
    assert_non_null(strstr(em.text, "argument 1 \"--??\": unknown option"));
    /* Too many arguments. */
    const char *many[PX_CANFAULT_MAX_ARGS + 1];
    for (unsigned i = 0; i <= PX_CANFAULT_MAX_ARGS; i++)
        many[i] = "--up";
    assert_int_equal(
        px_canfault_command(&f, PX_CANFAULT_MAX_ARGS + 1, many, resolve, NULL, NULL, 0, &em),
        PX_E_TOOBIG);
    assert_int_equal(
        px_canfault_command(&f, PX_CANFAULT_MAX_ARGS, many, resolve, NULL, NULL, 0, &em), PX_OK);
    /* No resolver: guests cannot be named. */
    const char *g[] = {"--guest", "ecu1"};
    assert_int_equal(px_canfault_command(&f, 2, g, NULL, NULL, NULL, 0, &em), PX_E_UNSUPP);
    /* NULL arguments are empty strings. */
    const char *nul[] = {NULL};
    assert_int_equal(px_canfault_command(&f, 1, nul, resolve, NULL, NULL, 0, &em), PX_E_CONFIG);

    /* A command that would overflow the member table changes nothing and
     * tells nobody, even for the part that would have fitted. */
    for (uint32_t ep = 100; ep < 100 + PX_CANFAULT_MAX_MEMBERS - 2; ep++)
        px_canfault_set_partition(&f, ep, true);
    char sum[PX_CANFAULT_SUMMARY_MAX] = "untouched";
    assert_int_equal(run(&f, "--guest ecu1 --state bus-off --guest ecu2 --state bus-off", sum, &em),
                     PX_E_TOOBIG);
    assert_non_null(strstr(em.text, "more than 256 endpoints"));
    assert_int_equal(n_seen, 0);
    assert_int_equal(px_canfault_member_get(&f, 9).state, PX_CANFAULT_ACTIVE);
    assert_string_equal(sum, "untouched");
    assert_int_equal(run(&f, "--guest ecu1 --state bus-off", sum, &em), PX_OK);
    assert_int_equal(n_seen, 2);
}

/* ---- reports ---- */

static const char *namer(void *ud, uint32_t ep)
{
    (void)ud;
    return ep == 9 ? "ecu1 \"can0\"\n\x01" : ep == 10 ? "" : NULL;
}

static void test_reports(void **state)
{
    (void)state;
    px_canfault f;
    fresh(&f, 9);
    px_canfault_configure(&f, 1000, 0);
    px_can_frame e;
    bool has;
    px_canfault_set_state(&f, 9, PX_CANFAULT_BUSOFF, &e, &has);
    px_canfault_set_partition(&f, 10, true);
    px_canfault_set_member_drop(&f, 10, 5000);
    px_canfault_set_down(&f, true);
    px_canfault_submit(&f, 1, &e);

    char buf[1024];
    assert_int_equal(px_canfault_json(&f, namer, NULL, buf, sizeof(buf)), PX_OK);
    assert_string_equal(
        buf, "{\"down\":true,\"drop_ppm\":1000,\"corrupt_ppm\":0,\"base_drop_ppm\":1000,"
             "\"base_corrupt_ppm\":0,\"members\":[{\"ep\":9,\"name\":\"ecu1 \\\"can0\\\"\\n"
             "\\u0001\",\"state\":\"bus-off\",\"partitioned\":false,\"drop_ppm\":0,"
             "\"corrupt_ppm\":0},{\"ep\":10,\"state\":\"active\",\"partitioned\":true,"
             "\"drop_ppm\":5000,\"corrupt_ppm\":0}],\"counters\":{\"dropped\":0,\"corrupted\":0,"
             "\"refused_down\":1,\"refused_busoff\":0,\"refused_partition\":0,"
             "\"delivery_drops\":0,\"error_frames\":0}}");
    assert_int_equal(px_canfault_describe(&f, namer, NULL, buf, sizeof(buf)), PX_OK);
    assert_string_equal(buf, "bus: down, drop 0.1%, corrupt 0% (topology: drop 0.1%, corrupt "
                             "0%)\n"
                             "endpoint 9 (ecu1 \"can0\"\?\?): bus-off, drop 0%, corrupt 0%\n"
                             "endpoint 10: active, partitioned, drop 0.5%, corrupt 0%\n"
                             "counters: dropped 0, corrupted 0, refused (down) 1, refused "
                             "(bus-off) 0, refused (partition) 0, delivery drops 0, error "
                             "frames 0\n");
    /* No names; and a buffer too small. */
    assert_int_equal(px_canfault_json(&f, NULL, NULL, buf, sizeof(buf)), PX_OK);
    assert_null(strstr(buf, "\"name\""));
    assert_int_equal(px_canfault_json(&f, NULL, NULL, buf, 40), PX_E_TOOBIG);
    assert_string_equal(buf, "");
    assert_int_equal(px_canfault_describe(&f, NULL, NULL, buf, 40), PX_E_TOOBIG);
    assert_true(strlen(buf) < 40);
    assert_int_equal(px_canfault_describe(&f, NULL, NULL, buf, 0), PX_E_TOOBIG);
    assert_string_equal(px_canfault_state_str(PX_CANFAULT_PASSIVE), "passive");
    assert_string_equal(px_canfault_state_str((px_canfault_state)9), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_faults),       cmocka_unit_test(test_drop_rates),
        cmocka_unit_test(test_error_frames),    cmocka_unit_test(test_states),
        cmocka_unit_test(test_topology_faults), cmocka_unit_test(test_command_accept),
        cmocka_unit_test(test_command_reject),  cmocka_unit_test(test_reports),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
