/* plexus — libFuzzer target: cansend frame text (px_canfmt_parse,
 * fabric/can-bus/canfmt.h) and the timing of what it accepts.
 *
 * Input: the text, as is (no NUL needed).
 *
 * Properties checked on every input:
 *   - an accepted frame formats (with and without dots) into text that
 *     parses back to the identical frame, and is a frame px_can_timing
 *     accepts, no longer than PX_CAN_MAX_WIRE_BITS;
 *   - a rejection leaves the frame all zero and says why, in printable
 *     ASCII, naming a column.
 * Seeds: tests/fuzz/seeds/fuzz_cansend/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fabric/can-bus/canfmt.h"
#include "fabric/can-bus/timing.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_cansend: %s: %s\n", what, detail ? detail : "");
    abort();
}

static void check_message(const px_errmsg *em)
{
    if (!em->text[0])
        die("rejection without a message", NULL);
    for (const char *p = em->text; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            die("unprintable message", em->text);
    if (!strstr(em->text, "column "))
        die("message names no column", em->text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    px_can_frame f, g, zero;
    px_errmsg em = {{0}};
    memset(&zero, 0, sizeof(zero));
    if (px_canfmt_parse((const char *)data, size, &f, &em) != PX_OK) {
        if (memcmp(&f, &zero, sizeof(f)) != 0)
            die("frame not cleared on error", em.text);
        check_message(&em);
        return 0;
    }
    char buf[PX_CANFMT_FRAME_MAX];
    for (int dots = 0; dots < 2; dots++) {
        size_t n;
        if (px_canfmt_format(&f, dots, buf, sizeof(buf), &n, &em) != PX_OK)
            die("accepted frame does not format", em.text);
        if (n != strlen(buf))
            die("length written is wrong", buf);
        if (px_canfmt_parse(buf, n, &g, &em) != PX_OK)
            die("formatted text does not parse", em.text);
        if (memcmp(&f, &g, sizeof(f)) != 0)
            die("round trip changed the frame", buf);
    }
    px_can_bitlen bl;
    if (px_can_timing(&f, &bl, &em) != PX_OK)
        die("accepted frame has no timing", em.text);
    if (px_can_bitlen_total(&bl) > PX_CAN_MAX_WIRE_BITS)
        die("frame longer than PX_CAN_MAX_WIRE_BITS", buf);
    return 0;
}
