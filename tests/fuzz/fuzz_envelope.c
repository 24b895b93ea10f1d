/* plexus — libFuzzer target: the envelope decoder, as the transport feeds it.
 *
 * The input is one transport message: envelopes back to back. Properties
 * checked on every input:
 *   - a rejection reports used = 0 and names a byte offset;
 *   - an accepted envelope has 0 < used <= what was left;
 *   - msgpack-c (the reference implementation) parses the same bytes as one
 *     object of the same length;
 *   - round trip: what decoded re-encodes, decodes to the same message, and
 *     re-encoding that gives the same bytes again (canonical form).
 */
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fabric/core/wire.h"
#include "fabric/core/wire_table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_envelope: %s: %s\n", what, detail ? detail : "");
    abort();
}

static bool msg_eq(const px_msg *a, const px_msg *b)
{
    return a->env.version == b->env.version && a->env.type == b->env.type &&
           a->env.sender == b->env.sender && a->env.object == b->env.object &&
           a->env.seq == b->env.seq &&
           px_wire_struct_eq(px_wire_body_desc(a->env.type), &a->body, &b->body);
}

/* Buffers reused across runs, as a daemon would. */
static px_wbuf enc1, enc2;

static void round_trip(const px_msg *m)
{
    px_errmsg em = {{0}};
    px_msg m2;
    size_t used = 0;
    px_wbuf_reset(&enc1);
    px_wbuf_reset(&enc2);
    if (px_wire_encode(&enc1, m, &em))
        die("decoded message does not re-encode", em.text);
    if (px_wire_decode(enc1.data, enc1.len, &used, &m2, &em))
        die("re-encoded message does not decode", em.text);
    if (used != enc1.len)
        die("re-encoded message: used != length", NULL);
    if (!msg_eq(m, &m2))
        die("round trip changed the message", px_msg_type_name(m->env.type));
    if (px_wire_encode(&enc2, &m2, &em))
        die("second encode failed", em.text);
    if (enc1.len != enc2.len || memcmp(enc1.data, enc2.data, enc1.len))
        die("encoding is not canonical", NULL);
}

static void msgpack_c_agrees(const uint8_t *p, size_t left, size_t used)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    msgpack_unpack_return r = msgpack_unpack_next(&u, (const char *)p, left, &off);
    if (r != MSGPACK_UNPACK_SUCCESS && r != MSGPACK_UNPACK_EXTRA_BYTES)
        die("msgpack-c rejects an accepted envelope", NULL);
    if (off != used)
        die("msgpack-c ends the envelope elsewhere", NULL);
    if (u.data.type != MSGPACK_OBJECT_ARRAY || u.data.via.array.size != 6)
        die("msgpack-c sees no array of 6", NULL);
    msgpack_unpacked_destroy(&u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    while (off < size) {
        px_msg m;
        px_errmsg em = {{0}};
        size_t used = 99;
        px_err err = px_wire_decode(data + off, size - off, &used, &m, &em);
        if (err) {
            if (used != 0)
                die("error with used != 0", em.text);
            if (!strstr(em.text, "byte"))
                die("error names no byte offset", em.text);
            break;
        }
        if (used == 0 || used > size - off)
            die("used out of range", NULL);
        msgpack_c_agrees(data + off, size - off, used);
        round_trip(&m);
        off += used;
    }
    return 0;
}
