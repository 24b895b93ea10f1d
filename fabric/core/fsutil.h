/* plexus — small file-system helpers shared by daemons and the CLI.
 * All block on the file system (call them outside hot loop paths). */
#ifndef PX_FSUTIL_H
#define PX_FSUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

/* Crash-safe replace: write to a fresh PATH.tmp.XXXXXX (O_EXCL, mode set
 * first), fsync it, rename over PATH, fsync the directory. After a crash
 * PATH holds either the old or the new contents, never a mix. */
px_err px_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                            px_errmsg *em);

/* Read a whole file into a NUL-terminated malloc'd buffer (caller frees).
 * PX_E_TOOBIG if it is larger than max bytes; PX_E_NOTFOUND if missing. */
px_err px_read_file(const char *path, size_t max, char **out, size_t *len, px_errmsg *em);

/* mkdir -p with `mode` for every directory it creates; existing ones are
 * left alone. */
px_err px_mkdir_p(const char *path, mode_t mode, px_errmsg *em);

/* rm -r: removes path and everything below it, never following symlinks.
 * PX_OK if path is gone afterwards (or never existed). */
px_err px_rm_tree(const char *path);

/* For blocking tools (the CLI), not for loop callbacks. */
uint64_t px_monotonic_ms(void);
void px_sleep_ms(unsigned ms);

#endif
