/* Unit tests: fabric/core/err and fabric/core/log. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fabric/core/err.h"
#include "fabric/core/log.h"
#include "fabric/core/outq.h"
#include "fabric/core/text.h"

static void test_every_code_has_text_and_name(void **state)
{
    (void)state;
    for (int c = PX_OK; c >= PX_E_TRUNCATED; c--) {
        assert_string_not_equal(px_strerror((px_err)c), "unknown error");
        assert_string_not_equal(px_errname((px_err)c), "E_?");
    }
    assert_string_equal(px_strerror((px_err)-999), "unknown error");
    assert_string_equal(px_errname(PX_E_PROTO), "E_PROTO");
}

static void test_errno_translation(void **state)
{
    (void)state;
    assert_int_equal(px_err_from_errno(0), PX_OK);
    assert_int_equal(px_err_from_errno(ENOMEM), PX_E_NOMEM);
    assert_int_equal(px_err_from_errno(EAGAIN), PX_E_AGAIN);
    assert_int_equal(px_err_from_errno(ENOENT), PX_E_NOTFOUND);
    assert_int_equal(px_err_from_errno(EADDRINUSE), PX_E_EXISTS);
    assert_int_equal(px_err_from_errno(EMSGSIZE), PX_E_TOOBIG);
    assert_int_equal(px_err_from_errno(EIO), PX_E_IO);
}

static void test_errmsg_set_and_prefix(void **state)
{
    (void)state;
    px_errmsg em;
    assert_int_equal(px_errmsg_set(&em, PX_E_CONFIG, "bad %s at %d", "key", 7), PX_E_CONFIG);
    assert_string_equal(em.text, "bad key at 7");
    px_errmsg_prefix(&em, "lab.yaml:%d:%d", 3, 5);
    assert_string_equal(em.text, "lab.yaml:3:5: bad key at 7");
    /* NULL is always allowed and the code still comes back. */
    assert_int_equal(px_errmsg_set(NULL, PX_E_IO, "x"), PX_E_IO);
    px_errmsg_prefix(NULL, "y");
}

static void test_errmsg_truncates(void **state)
{
    (void)state;
    px_errmsg em;
    char big[2000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    px_errmsg_set(&em, PX_E_INVAL, "%s", big);
    assert_int_equal(strlen(em.text), sizeof(em.text) - 1);
    px_errmsg_prefix(&em, "ctx");
    assert_int_equal(strlen(em.text), sizeof(em.text) - 1);
    assert_memory_equal(em.text, "ctx: aaa", 8);
}

static void test_level_parse(void **state)
{
    (void)state;
    px_log_level l;
    assert_int_equal(px_log_level_parse("DEBUG", &l), PX_OK);
    assert_int_equal(l, PX_LOG_DEBUG);
    assert_int_equal(px_log_level_parse("warn", &l), PX_OK);
    assert_int_equal(l, PX_LOG_WARN);
    assert_int_equal(px_log_level_parse("verbose", &l), PX_E_INVAL);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_log_to_file_filters_and_formats(void **state)
{
    (void)state;
    char path[] = "/tmp/px-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    px_errmsg em;
    assert_int_equal(px_log_setup(PX_LOG_INFO, path, &em), PX_OK);
    PX_DEBUG("unit", "hidden", "n=%d", 1);
    PX_INFO("unit", "peer connected", "peer=%s port=%d", "n1", 5555);
    PX_ERROR("wire", "bad frame", NULL);
    assert_int_equal(px_log_setup(PX_LOG_INFO, NULL, &em), PX_OK);

    char *text = slurp(path);
    assert_null(strstr(text, "hidden"));
    assert_non_null(strstr(text, "INFO  unit: peer connected peer=n1 port=5555\n"));
    assert_non_null(strstr(text, "ERROR wire: bad frame\n"));
    /* Timestamps are ISO 8601 UTC with milliseconds. */
    assert_true(text[4] == '-' && text[10] == 'T' && text[19] == '.' && text[23] == 'Z');
    unlink(path);
}

/* fabric/core/text.h's hex helpers (MACs, CAN data, FM API messages). */
static void test_hex(void **state)
{
    (void)state;
    assert_int_equal(px_hex_digit('0'), 0);
    assert_int_equal(px_hex_digit('a'), 10);
    assert_int_equal(px_hex_digit('F'), 15);
    assert_int_equal(px_hex_digit('g'), -1);
    assert_int_equal(px_hex_digit('/'), -1);
    const uint8_t in[] = {0x00, 0x7f, 0xa5, 0xff};
    char hex[9];
    px_hex_encode(in, 4, hex, sizeof(hex));
    assert_string_equal(hex, "007fa5ff");
    char small[6]; /* room for two bytes and the NUL */
    px_hex_encode(in, 4, small, sizeof(small));
    assert_string_equal(small, "007f");
    uint8_t out[4];
    size_t n = 0;
    assert_true(px_hex_decode("007FA5ff", 8, out, sizeof(out), &n));
    assert_int_equal(n, 4);
    assert_memory_equal(out, in, 4);
    assert_false(px_hex_decode("007", 3, out, sizeof(out), &n));         /* odd */
    assert_false(px_hex_decode("0x", 2, out, sizeof(out), &n));          /* not hex */
    assert_false(px_hex_decode("0011223344", 10, out, sizeof(out), &n)); /* too long */
}

/* fabric/core/outq.h: in order, held while the link is full, dropped when
 * there is no link or past the limit. */
static struct {
    int full;    /* sends refused with AGAIN */
    bool nolink; /* sends refused for good */
    char got[64];
    size_t n;
} fq;

static px_err fq_send(void *ud, const char *node, const uint8_t *data, size_t len)
{
    (void)ud;
    (void)node;
    if (fq.nolink)
        return PX_E_NOTFOUND;
    if (fq.full > 0) {
        fq.full--;
        return PX_E_AGAIN;
    }
    memcpy(fq.got + fq.n, data, len);
    fq.n += len;
    return PX_OK;
}

static void test_outq(void **state)
{
    (void)state;
    px_svc_io io = {.to_node = fq_send};
    px_outq q = {0};
    memset(&fq, 0, sizeof(fq));
    assert_int_equal(px_outq_send(&q, &io, "n", (const uint8_t *)"a", 1, 4), PX_OK);
    fq.full = 2;
    assert_int_equal(px_outq_send(&q, &io, "n", (const uint8_t *)"b", 1, 4), PX_E_AGAIN);
    /* held: later ones queue behind even when the link would take them */
    assert_int_equal(px_outq_send(&q, &io, "n", (const uint8_t *)"c", 1, 4), PX_E_AGAIN);
    assert_true(px_outq_held(&q));
    assert_int_equal(q.bytes, 2);
    assert_int_equal(px_outq_send(&q, &io, "n", (const uint8_t *)"xyz", 3, 4), PX_E_TOOBIG);
    uint64_t dropped = 0;
    assert_true(px_outq_flush(&q, &io, "n", &dropped)); /* still full once */
    assert_false(px_outq_flush(&q, &io, "n", &dropped));
    assert_int_equal(fq.n, 3);
    assert_memory_equal(fq.got, "abc", 3);
    assert_int_equal(dropped, 0);
    /* no link: a held message is dropped and counted */
    fq.full = 1;
    assert_int_equal(px_outq_send(&q, &io, "n", (const uint8_t *)"d", 1, 4), PX_E_AGAIN);
    fq.nolink = true;
    assert_false(px_outq_flush(&q, &io, "n", &dropped));
    assert_int_equal(dropped, 1);
    assert_int_equal(px_outq_send(&q, &io, "n", (const uint8_t *)"e", 1, 4), PX_E_NOTFOUND);
    fq.nolink = false;
    fq.full = 1;
    px_outq_send(&q, &io, "n", (const uint8_t *)"f", 1, 4);
    px_outq_clear(&q);
    assert_false(px_outq_held(&q));
    assert_int_equal(q.bytes, 0);
}

static void test_log_setup_bad_path(void **state)
{
    (void)state;
    px_errmsg em;
    assert_int_equal(px_log_setup(PX_LOG_INFO, "/nonexistent-dir/x.log", &em), PX_E_IO);
    assert_non_null(strstr(em.text, "/nonexistent-dir/x.log"));
    assert_int_equal(px_log_setup((px_log_level)42, NULL, &em), PX_E_INVAL);
    /* The earlier destination and level stay in force. */
    assert_int_equal(px_log_get_level(), PX_LOG_INFO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_code_has_text_and_name),
        cmocka_unit_test(test_errno_translation),
        cmocka_unit_test(test_errmsg_set_and_prefix),
        cmocka_unit_test(test_errmsg_truncates),
        cmocka_unit_test(test_level_parse),
        cmocka_unit_test(test_log_to_file_filters_and_formats),
        cmocka_unit_test(test_log_setup_bad_path),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_outq),
    };
    return cmocka_run_group_tests_name("err_log", tests, NULL, NULL);
}
