/* plexus — libFuzzer target: candump -L log lines (px_canfmt_parse_log,
 * fabric/can-bus/canfmt.h) and the pcap record of what it accepts.
 *
 * Input: one line, as is (no NUL needed).
 *
 * Properties checked on every input:
 *   - an accepted line formats into a line that parses back to the
 *     identical record (timestamp, interface, direction, frame);
 *   - its frame writes as a pcap record when the timestamp fits pcap's
 *     32-bit seconds, of 16 bytes (classic) or 72 (FD) after the record
 *     header;
 *   - a rejection leaves the record all zero and says why, in printable
 *     ASCII, naming a column.
 * Seeds: tests/fuzz/seeds/fuzz_candump/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fabric/can-bus/canfmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_candump: %s: %s\n", what, detail ? detail : "");
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

static void check_pcap(const px_canfmt_log *l)
{
    char *mem = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&mem, &len);
    if (!fp)
        return; /* out of memory is not a finding */
    px_errmsg em = {{0}};
    px_err err = px_canpcap_write_frame(fp, l->sec, l->usec, &l->frame, &em);
    fclose(fp);
    if (l->sec > UINT32_MAX) {
        if (err != PX_E_INVAL)
            die("pcap took a timestamp past 32 bits", NULL);
    } else {
        if (err != PX_OK)
            die("pcap refused an accepted frame", em.text);
        size_t want = 16 + ((l->frame.flags & PX_CANFD_FDF) ? PX_CANFD_MTU : PX_CAN_MTU);
        if (len != want)
            die("pcap record has the wrong size", NULL);
    }
    free(mem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    px_canfmt_log l, l2, zero;
    px_errmsg em = {{0}};
    memset(&zero, 0, sizeof(zero));
    if (px_canfmt_parse_log((const char *)data, size, &l, &em) != PX_OK) {
        if (memcmp(&l, &zero, sizeof(l)) != 0)
            die("record not cleared on error", em.text);
        check_message(&em);
        return 0;
    }
    char buf[PX_CANFMT_LINE_MAX];
    size_t n;
    if (px_canfmt_format_log(&l, buf, sizeof(buf), &n, &em) != PX_OK)
        die("accepted line does not format", em.text);
    if (n != strlen(buf))
        die("length written is wrong", buf);
    if (px_canfmt_parse_log(buf, n, &l2, &em) != PX_OK)
        die("formatted line does not parse", em.text);
    if (memcmp(&l, &l2, sizeof(l)) != 0)
        die("round trip changed the record", buf);
    check_pcap(&l);
    return 0;
}
