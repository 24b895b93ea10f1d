/* plexus — libFuzzer target: the `plexus can fault` command
 * (px_canfault_command, fabric/can-bus/fault.h) and the state it leaves.
 *
 * Input: the arguments, split on NUL or newline (an argv as the CLI sends
 * it: never a shell line). Guests "ecu1" (endpoints 9, 10) and "ecu2" (17)
 * are on the bus; every other name is not.
 *
 * Properties checked on every input:
 *   - a rejected command changes nothing (the whole state, PRNG included),
 *     calls notify never, and says why in printable ASCII with what was
 *     expected;
 *   - an accepted one leaves a sorted member table without default
 *     entries, only valid error frames went to notify, its summary is
 *     printable, and running it again on a copy of the old state does the
 *     same (determinism);
 *   - the text and JSON reports of any state fit a large buffer and are
 *     printable; submit and deliver keep their counters consistent.
 * Seeds: tests/fuzz/seeds/fuzz_can_fault/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fabric/can-bus/fault.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGV ((int)PX_CANFAULT_MAX_ARGS + 8)

static unsigned notices;

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_can_fault: %s: %s\n", what, detail ? detail : "");
    abort();
}

static void printable(const char *s, const char *what)
{
    for (const char *p = s; *p; p++)
        if (((unsigned char)*p < 0x20 && *p != '\n') || (unsigned char)*p >= 0x7f)
            die(what, s);
}

static void on_notify(void *ud, uint32_t ep, const px_can_frame *err)
{
    (void)ud;
    (void)ep;
    if (!(err->can_id & PX_CAN_ERR_FLAG) || px_can_check(err, true) != PX_CAN_OK)
        die("notify got a frame that is not a valid error frame", NULL);
    notices++;
}

static px_err resolve(void *ud, const char *guest, uint32_t *eps, uint32_t cap, uint32_t *n)
{
    (void)ud;
    if (cap < 2)
        die("resolver given too little room", NULL);
    if (strcmp(guest, "ecu1") == 0) {
        eps[0] = 9, eps[1] = 10, *n = 2;
        return PX_OK;
    }
    if (strcmp(guest, "ecu2") == 0) {
        eps[0] = 17, *n = 1;
        return PX_OK;
    }
    return PX_E_NOTFOUND;
}

static void check_table(const px_canfault *f)
{
    if (f->n_members > PX_CANFAULT_MAX_MEMBERS)
        die("member table overflow", NULL);
    for (uint32_t i = 0; i < f->n_members; i++) {
        const px_canfault_member *m = &f->members[i];
        if (i && f->members[i - 1].ep >= m->ep)
            die("member table not sorted", NULL);
        if (!m->drop_ppm && !m->corrupt_ppm && !m->partitioned && m->state == PX_CANFAULT_ACTIVE)
            die("member table keeps a default entry", NULL);
        if (m->drop_ppm > PX_CANFAULT_PPM || m->corrupt_ppm > PX_CANFAULT_PPM)
            die("member probability out of range", NULL);
    }
    if (f->drop_ppm > PX_CANFAULT_PPM || f->corrupt_ppm > PX_CANFAULT_PPM)
        die("bus probability out of range", NULL);
}

/* Field by field: padding bytes are not state. */
static bool same_state(const px_canfault *a, const px_canfault *b)
{
    if (a->rng != b->rng || a->base_drop_ppm != b->base_drop_ppm ||
        a->base_corrupt_ppm != b->base_corrupt_ppm || a->drop_ppm != b->drop_ppm ||
        a->corrupt_ppm != b->corrupt_ppm || a->down != b->down || a->n_members != b->n_members ||
        memcmp(&a->stats, &b->stats, sizeof(a->stats)) != 0)
        return false;
    for (uint32_t i = 0; i < a->n_members; i++) {
        const px_canfault_member *x = &a->members[i], *y = &b->members[i];
        if (x->ep != y->ep || x->drop_ppm != y->drop_ppm || x->corrupt_ppm != y->corrupt_ppm ||
            x->partitioned != y->partitioned || x->state != y->state)
            return false;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    const char *argv[MAX_ARGV];
    int argc = 0;
    size_t start = 0;
    for (size_t i = 0; i <= size && argc < MAX_ARGV; i++) {
        if (i < size && buf[i] != '\n' && buf[i] != '\0')
            continue;
        buf[i] = '\0';
        argv[argc++] = buf + start;
        start = i + 1;
    }
    if (argc == 1 && size == 0)
        argc = 0;

    static px_canfault f, before, again;
    px_canfault_init(&f, 0x5eed, on_notify, NULL);
    px_canfault_configure(&f, 500, 0);
    px_can_frame err;
    bool has;
    px_canfault_set_state(&f, 17, PX_CANFAULT_PASSIVE, &err, &has);
    before = f;
    notices = 0;
    char sum[PX_CANFAULT_SUMMARY_MAX];
    px_errmsg em = {{0}};
    px_err rc = px_canfault_command(&f, argc, argv, resolve, NULL, sum, sizeof(sum), &em);
    if (rc != PX_OK) {
        if (!same_state(&f, &before))
            die("a rejected command changed the state", em.text);
        if (notices)
            die("a rejected command notified", em.text);
        if (!strstr(em.text, "expected"))
            die("rejection says nothing about what was expected", em.text);
        printable(em.text, "unprintable message");
    } else {
        printable(sum, "unprintable summary");
        check_table(&f);
        unsigned first = notices;
        again = before;
        notices = 0;
        char sum2[PX_CANFAULT_SUMMARY_MAX];
        if (px_canfault_command(&again, argc, argv, resolve, NULL, sum2, sizeof(sum2), &em))
            die("the same command failed the second time", em.text);
        if (!same_state(&f, &again) || strcmp(sum, sum2) != 0 || notices != first)
            die("the same command did something else the second time", sum2);
    }
    static char report[64 * 1024];
    if (px_canfault_describe(&f, NULL, NULL, report, sizeof(report)) != PX_OK)
        die("text report does not fit", NULL);
    printable(report, "unprintable report");
    if (px_canfault_json(&f, NULL, NULL, report, sizeof(report)) != PX_OK)
        die("JSON report does not fit", NULL);
    printable(report, "unprintable JSON");
    uint64_t before_total = f.stats.dropped + f.stats.corrupted + f.stats.refused_down +
                            f.stats.refused_busoff + f.stats.refused_partition;
    unsigned refused = 0;
    for (uint32_t ep = 8; ep < 20; ep++)
        refused += px_canfault_submit(&f, ep, &err) != PX_CANFAULT_PASS;
    uint64_t after_total = f.stats.dropped + f.stats.corrupted + f.stats.refused_down +
                           f.stats.refused_busoff + f.stats.refused_partition;
    if (after_total - before_total != refused)
        die("a refused submit was not counted exactly once", NULL);
    free(buf);
    return 0;
}
