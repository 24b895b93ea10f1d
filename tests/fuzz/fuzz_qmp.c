/* plexus — libFuzzer target: QMP framing and classification
 * (px_qmp_framer_feed + px_qmp_classify, node/qmp.h).
 *
 * Input: byte 0 picks the line limit (0 = PX_QMP_LINE_MAX, else 8..2048),
 * byte 1 seeds the chunking; the rest is the byte stream from "QEMU".
 *
 * Properties checked on every input:
 *   - every message handed over is a JSON object; a classified message has
 *     the members its kind promises (event name 1..63 bytes, data an object,
 *     error class and desc strings, ids >= 1);
 *   - rejections say why, in printable ASCII;
 *   - the buffer never grows past the line limit + 1;
 *   - chunking does not matter: fed whole or in pieces of any size, the
 *     same messages come out and the stream ends the same way.
 * Seeds: tests/fuzz/seeds/fuzz_qmp/ (QEMU 7.2 transcripts).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/qmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_TRACE 64

typedef struct trace {
    int n;
    uint32_t sig[MAX_TRACE]; /* kind, id and classification result per message */
} trace;

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_qmp: %s: %s\n", what, detail ? detail : "");
    abort();
}

static void check_text(const char *s)
{
    if (!s[0])
        die("error without a message", NULL);
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            die("unprintable error message", NULL);
}

static px_err on_msg(json_t *root, void *ud)
{
    trace *t = ud;
    if (!json_is_object(root))
        die("not an object", NULL);
    px_qmp_msg m;
    px_errmsg em = {{0}};
    px_err err = px_qmp_classify(root, &m, &em);
    uint32_t sig = (uint32_t)-err << 8;
    if (err) {
        if (err != PX_E_PROTO && err != PX_E_NOMEM)
            die("unexpected classify error", px_errname(err));
        check_text(em.text);
    } else {
        sig |= (uint32_t)m.kind << 4 | (m.has_id ? 1u : 0u);
        if (m.has_id)
            sig ^= (uint32_t)m.id << 12;
        if (m.has_id && m.id < 1)
            die("id below 1", NULL);
        switch (m.kind) {
        case PX_QMP_GREETING:
            if (!json_is_object(m.value))
                die("greeting value", NULL);
            break;
        case PX_QMP_RETURN:
            if (!m.value)
                die("return without value", NULL);
            break;
        case PX_QMP_ERROR:
            if (!m.err_class || !m.err_desc || !json_is_object(m.value))
                die("error reply members", NULL);
            break;
        case PX_QMP_EVENT: {
            size_t n = m.name ? strlen(m.name) : 0;
            if (n == 0 || n > PX_QMP_NAME_MAX || !json_is_object(m.value))
                die("event members", m.name);
            break;
        }
        default:
            die("unknown kind", NULL);
        }
    }
    if (t->n < MAX_TRACE)
        t->sig[t->n] = sig;
    t->n++;
    return PX_OK;
}

static px_err run(const uint8_t *data, size_t size, size_t max_line, uint32_t seed, trace *t)
{
    px_qmp_framer f;
    px_qmp_framer_init(&f, max_line);
    px_errmsg em = {{0}};
    px_err err = PX_OK;
    size_t off = 0;
    while (off < size && !err) {
        size_t n = size - off;
        if (seed) {
            seed = seed * 1103515245u + 12345u;
            size_t c = 1 + (seed >> 16) % 97;
            if (c < n)
                n = c;
        }
        err = px_qmp_framer_feed(&f, data + off, n, on_msg, t, &em);
        if (f.cap > f.max_line + 1)
            die("buffer past the limit", NULL);
        off += n;
    }
    if (err) {
        if (err != PX_E_PROTO && err != PX_E_TOOBIG && err != PX_E_NOMEM)
            die("unexpected feed error", px_errname(err));
        check_text(em.text);
    }
    px_qmp_framer_fini(&f);
    return err;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t max_line = data[0] ? 8 + (size_t)data[0] * 8 : 0;
    uint32_t seed = data[1] | 1u;
    data += 2;
    size -= 2;
    static trace whole, pieces;
    memset(&whole, 0, sizeof(whole));
    memset(&pieces, 0, sizeof(pieces));
    px_err e1 = run(data, size, max_line, 0, &whole);
    px_err e2 = run(data, size, max_line, seed, &pieces);
    /* Same messages, same end: an over-long line is refused at the same
     * point of the stream however it arrives. */
    int n = whole.n < pieces.n ? whole.n : pieces.n;
    if (n > MAX_TRACE)
        n = MAX_TRACE;
    for (int i = 0; i < n; i++)
        if (whole.sig[i] != pieces.sig[i])
            die("chunking changed a message", NULL);
    if (e1 != e2 || whole.n != pieces.n)
        die("chunking changed the outcome", px_errname(e1 != e2 ? e2 : e1));
    return 0;
}
