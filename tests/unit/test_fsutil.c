/* Unit tests: fabric/core/fsutil. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fabric/core/fsutil.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/px-fsutil-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "%s/a/b/c", dir);
    rmdir(cmd);
    snprintf(cmd, sizeof(cmd), "%s/a/b", dir);
    rmdir(cmd);
    snprintf(cmd, sizeof(cmd), "%s/a", dir);
    rmdir(cmd);
    snprintf(cmd, sizeof(cmd), "%s/state.json", dir);
    unlink(cmd);
    rmdir(dir);
    return 0;
}

static void test_atomic_write_replaces_and_reads_back(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "%s/state.json", dir);
    px_errmsg em;
    assert_int_equal(px_write_file_atomic(path, "first", 5, 0600, &em), PX_OK);
    assert_int_equal(px_write_file_atomic(path, "second!", 7, 0600, &em), PX_OK);
    char *buf;
    size_t len;
    assert_int_equal(px_read_file(path, 1024, &buf, &len, &em), PX_OK);
    assert_int_equal(len, 7);
    assert_string_equal(buf, "second!");
    free(buf);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* No temporary file is left behind. */
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)))
        assert_null(strstr(e->d_name, ".tmp."));
    closedir(d);
}

static void test_read_limits_and_missing(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "%s/state.json", dir);
    px_errmsg em;
    assert_int_equal(px_write_file_atomic(path, "0123456789", 10, 0600, &em), PX_OK);
    char *buf = (char *)1;
    assert_int_equal(px_read_file(path, 9, &buf, NULL, &em), PX_E_TOOBIG);
    assert_null(buf);
    assert_non_null(strstr(em.text, "limit is 9"));
    assert_int_equal(px_read_file("/nonexistent/x", 9, &buf, NULL, &em), PX_E_NOTFOUND);
    assert_non_null(strstr(em.text, "/nonexistent/x"));
}

static void test_mkdir_p(void **state)
{
    (void)state;
    char path[128];
    px_errmsg em;
    snprintf(path, sizeof(path), "%s/a/b/c", dir);
    assert_int_equal(px_mkdir_p(path, 0700, &em), PX_OK);
    assert_int_equal(px_mkdir_p(path, 0700, &em), PX_OK); /* idempotent */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(px_write_file_atomic("/nonexistent/dir/f", "x", 1, 0600, &em), PX_E_NOTFOUND);
}

static void test_rm_tree_removes_without_following_links(void **state)
{
    (void)state;
    char a[160], b[200], f[240], link[200], outside[64];
    snprintf(outside, sizeof(outside), "/tmp/px-keep-XXXXXX");
    assert_non_null(mkdtemp(outside));
    snprintf(a, sizeof(a), "%s/a", dir);
    snprintf(b, sizeof(b), "%s/b", a);
    snprintf(f, sizeof(f), "%s/file", b);
    snprintf(link, sizeof(link), "%s/link", a);
    assert_int_equal(px_mkdir_p(b, 0700, NULL), PX_OK);
    assert_int_equal(px_write_file_atomic(f, "x", 1, 0600, NULL), PX_OK);
    assert_int_equal(symlink(outside, link), 0);
    assert_int_equal(px_rm_tree(a), PX_OK);
    assert_int_not_equal(access(a, F_OK), 0);
    assert_int_equal(access(outside, F_OK), 0); /* the link's target survives */
    rmdir(outside);
    assert_int_equal(px_rm_tree(a), PX_OK); /* already gone is fine */
}

static void test_clock(void **state)
{
    (void)state;
    uint64_t t0 = px_monotonic_ms();
    px_sleep_ms(20);
    uint64_t dt = px_monotonic_ms() - t0;
    assert_true(dt >= 20 && dt < 2000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_atomic_write_replaces_and_reads_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_limits_and_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mkdir_p, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rm_tree_removes_without_following_links, setup,
                                        teardown),
        cmocka_unit_test(test_clock),
    };
    return cmocka_run_group_tests_name("fsutil", tests, NULL, NULL);
}
