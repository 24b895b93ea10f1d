/* plexus — libFuzzer target: cangw filter and modification text
 * (px_cangw_parse_filter / px_cangw_parse_mod, fabric/can-bus/gateway.h)
 * and rules built from what they accept.
 *
 * Input: lines (split on newline or NUL). The first is a filter, the rest
 * modifications; the last 16 bytes of the input also make a frame.
 *
 * Properties checked on every input:
 *   - an accepted filter or modification formats into text that parses
 *     back to the identical value;
 *   - a rejection leaves the value at its default (pass-all filter, all-zero
 *     modification) and says why in printable ASCII, naming a character and
 *     what was expected;
 *   - a rule made of the accepted modifications (fd, so FD-form ones fit)
 *     forwards only frames that pass px_can_check with strict padding.
 * Seeds: tests/fuzz/seeds/fuzz_cangw/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fabric/can-bus/gateway.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_cangw: %s: %s\n", what, detail ? detail : "");
    abort();
}

static void check_message(const px_errmsg *em)
{
    if (!em->text[0])
        die("rejection without a message", NULL);
    for (const char *p = em->text; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            die("unprintable message", em->text);
    if (!strstr(em->text, "character ") || !strstr(em->text, "expected "))
        die("message names no character or nothing expected", em->text);
}

static void one_filter(const char *s, size_t n)
{
    px_cangw_filter f, g;
    px_errmsg em = {{0}};
    if (px_cangw_parse_filter(s, n, &f, &em) != PX_OK) {
        if (f.id || f.mask || f.inverted)
            die("filter not reset on error", em.text);
        check_message(&em);
        return;
    }
    char buf[PX_CANGW_FILTER_MAX];
    if (px_cangw_format_filter(&f, buf, sizeof(buf)) != PX_OK)
        die("accepted filter does not format", NULL);
    if (px_cangw_parse_filter(buf, strlen(buf), &g, &em) != PX_OK)
        die("formatted filter does not parse", em.text);
    if (memcmp(&f, &g, sizeof(f)) != 0)
        die("filter round trip changed it", buf);
}

/* Returns whether s[0..n) was a modification, in *m. */
static bool one_mod(const char *s, size_t n, px_cangw_mod *m)
{
    px_cangw_mod g, zero;
    px_errmsg em = {{0}};
    memset(&zero, 0, sizeof(zero));
    if (px_cangw_parse_mod(s, n, m, &em) != PX_OK) {
        if (memcmp(m, &zero, sizeof(*m)) != 0)
            die("modification not cleared on error", em.text);
        check_message(&em);
        return false;
    }
    char buf[PX_CANGW_MOD_MAX];
    if (px_cangw_format_mod(m, buf, sizeof(buf)) != PX_OK)
        die("accepted modification does not format", NULL);
    if (px_cangw_parse_mod(buf, strlen(buf), &g, &em) != PX_OK)
        die("formatted modification does not parse", em.text);
    if (memcmp(m, &g, sizeof(g)) != 0)
        die("modification round trip changed it", buf);
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    px_cangw_rule r;
    px_cangw_rule_init(&r, 0, 1);
    r.fd = true;
    r.hops = PX_CANGW_HOPS_MAX;
    px_errmsg em;
    size_t start = 0;
    for (size_t i = 0, line = 0; i <= size; i++) {
        if (i < size && data[i] != '\n' && data[i] != '\0')
            continue;
        if (line++ == 0) {
            one_filter(s + start, i - start);
            px_cangw_parse_filter(s + start, i - start, &r.filter, &em);
        } else {
            px_cangw_mod m;
            if (one_mod(s + start, i - start, &m))
                px_cangw_add_mod(&r, &m, &em); /* a second AND etc. is refused: fine */
        }
        start = i + 1;
    }
    /* A frame from the input's tail, if it is one. */
    px_can_frame in, out;
    memset(&in, 0, sizeof(in));
    if (size >= 6) {
        const uint8_t *t = data + size - 6;
        in.can_id = (uint32_t)t[0] << 24 | (uint32_t)t[1] << 16 | (uint32_t)t[2] << 8 | t[3];
        in.len = t[4] % (PX_CANFD_MAX_DLEN + 1);
        in.flags = t[5] & PX_CANFD_FLAGS;
        for (unsigned i = 0; i < in.len && i < size; i++)
            in.data[i] = data[i];
    }
    if (px_can_check(&in, true) != PX_CAN_OK)
        return 0;
    for (uint32_t hops = 0; hops <= PX_CANGW_HOPS_MAX; hops++) {
        px_cangw_result res = px_cangw_apply(&r, &in, hops, &out);
        if (res == PX_CANGW_FORWARD && px_can_check(&out, true) != PX_CAN_OK)
            die("forwarded an invalid frame", NULL);
        if (res == PX_CANGW_FORWARD && (out.flags & PX_CANFD_FDF) != (in.flags & PX_CANFD_FDF))
            die("frame type changed", NULL);
        if (hops >= r.hops && res != PX_CANGW_HOP_LIMIT)
            die("hop limit not applied", NULL);
    }
    return 0;
}
