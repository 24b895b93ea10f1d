/* Unit tests: fabric/core/proc. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fabric/core/proc.h"

static void test_run_captures_stdout(void **state)
{
    (void)state;
    char out[64];
    char *argv[] = {"printf", "a b;$(echo no)", NULL};
    assert_int_equal(px_run(argv, out, sizeof(out), NULL), PX_OK);
    /* No shell: the metacharacters arrive verbatim. */
    assert_string_equal(out, "a b;$(echo no)");
}

static void test_run_failure_carries_stderr(void **state)
{
    (void)state;
    px_errmsg em;
    char *argv[] = {"ls", "/nonexistent-px-dir", NULL};
    assert_int_equal(px_run(argv, NULL, 0, &em), PX_E_IO);
    assert_non_null(strstr(em.text, "ls /nonexistent-px-dir"));
    assert_non_null(strstr(em.text, "exited with status"));
    assert_non_null(strstr(em.text, "No such file"));
}

static void test_run_missing_program(void **state)
{
    (void)state;
    px_errmsg em;
    char *argv[] = {"px-no-such-program", NULL};
    assert_int_equal(px_run(argv, NULL, 0, &em), PX_E_NOTFOUND);
    assert_non_null(strstr(em.text, "px-no-such-program"));
}

static void test_run_keeps_tail_of_long_output(void **state)
{
    (void)state;
    char out[16];
    char *argv[] = {"seq", "1", "2000", NULL};
    assert_int_equal(px_run(argv, out, sizeof(out), NULL), PX_OK);
    assert_int_equal(strlen(out), sizeof(out) - 1);
    assert_non_null(strstr(out, "2000\n"));
}

static void test_spawn_daemon_new_session(void **state)
{
    (void)state;
    char log[] = "/tmp/px-proc-XXXXXX";
    int fd = mkstemp(log);
    assert_true(fd >= 0);
    close(fd);
    pid_t pid;
    char *argv[] = {"sh", "-c", "ps -o sid= -p $$; echo done", NULL};
    assert_int_equal(px_spawn_daemon(argv, log, &pid, NULL), PX_OK);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    FILE *f = fopen(log, "r");
    char line[64] = "";
    assert_non_null(fgets(line, sizeof(line), f));
    fclose(f);
    /* Its session id is its own pid: it left ours. */
    long sid = 0;
    sscanf(line, "%ld", &sid);
    assert_int_equal(sid, pid);
    unlink(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_captures_stdout),
        cmocka_unit_test(test_run_failure_carries_stderr),
        cmocka_unit_test(test_run_missing_program),
        cmocka_unit_test(test_run_keeps_tail_of_long_output),
        cmocka_unit_test(test_spawn_daemon_new_session),
    };
    return cmocka_run_group_tests_name("proc", tests, NULL, NULL);
}
