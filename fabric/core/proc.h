/* plexus — running helper programs (ip, the daemons in local mode).
 * Always from an argv array through posix_spawn: never a shell. These block
 * (px_run waits for the child): use them from the CLI and set-up paths, not
 * from inside a libuv callback. Daemons spawn QEMU with uv_spawn instead. */
#ifndef PX_PROC_H
#define PX_PROC_H

#include <sys/types.h>

#include "err.h"

/* Run argv[0] (PATH lookup) to completion. Its stdout is discarded unless
 * out/out_len are given (then up to out_len-1 bytes are kept, NUL-ended).
 * PX_E_IO with em holding the command and the tail of its stderr if it
 * exits non-zero or dies on a signal; PX_E_NOTFOUND if it cannot be run. */
px_err px_run(char *const argv[], char *out, size_t out_len, px_errmsg *em);

/* Start argv[0] as a daemon: new session, stdin from /dev/null, stdout and
 * stderr appended to log_path (created 0600). Does not wait. */
px_err px_spawn_daemon(char *const argv[], const char *log_path, pid_t *pid, px_errmsg *em);

#endif
