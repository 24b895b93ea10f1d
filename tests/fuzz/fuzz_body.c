/* plexus — libFuzzer target: one message body decoder.
 *
 * Compiled once per message type with -DPX_FUZZ_TYPE=PX_MSG_<TYPE> (see
 * meson.build), giving fuzz_body_<type>. The input is a bare body map.
 * Properties: a rejection names a byte offset; an accepted body survives a
 * full envelope round trip unchanged, and re-encodes to the same bytes as
 * the body alone.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fabric/core/wire.h"
#include "fabric/core/wire_table.h"

#ifndef PX_FUZZ_TYPE
#error "compile with -DPX_FUZZ_TYPE=PX_MSG_<TYPE>"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_body_%s: %s: %s\n", px_msg_type_name(PX_FUZZ_TYPE), what,
            detail ? detail : "");
    abort();
}

static px_wbuf env_buf, body_buf, body_buf2;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const px_wire_struct *d = px_wire_body_desc(PX_FUZZ_TYPE);
    px_msg m, m2;
    px_errmsg em = {{0}};
    px_err err = px_wire_decode_body(PX_FUZZ_TYPE, data, size, &m, &em);
    if (err) {
        if (!strstr(em.text, "byte"))
            die("error names no byte offset", em.text);
        return 0;
    }
    if (m.env.type != PX_FUZZ_TYPE)
        die("type not set", NULL);

    m.env.sender = 1;
    m.env.seq = 2;
    px_wbuf_reset(&env_buf);
    if (px_wire_encode(&env_buf, &m, &em))
        die("accepted body does not encode", em.text);
    size_t used = 0;
    if (px_wire_decode(env_buf.data, env_buf.len, &used, &m2, &em) || used != env_buf.len)
        die("envelope round trip failed", em.text);
    if (!px_wire_struct_eq(d, &m.body, &m2.body))
        die("envelope round trip changed the body", NULL);

    px_wbuf_reset(&body_buf);
    px_wbuf_reset(&body_buf2);
    if (px_wire_encode_struct(&body_buf, d, &m.body, &em) ||
        px_wire_encode_struct(&body_buf2, d, &m2.body, &em))
        die("body does not re-encode", em.text);
    if (body_buf.len != body_buf2.len || memcmp(body_buf.data, body_buf2.data, body_buf.len))
        die("body encoding is not canonical", NULL);
    /* The body sits at the end of the envelope, byte for byte. */
    if (body_buf.len > env_buf.len ||
        memcmp(env_buf.data + env_buf.len - body_buf.len, body_buf.data, body_buf.len))
        die("body bytes differ inside the envelope", NULL);
    return 0;
}
