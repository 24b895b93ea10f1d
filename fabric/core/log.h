/* plexus — logging.
 *
 * One line per event: "TIME LEVEL module: message key=value ...". Lines are
 * formatted into a stack buffer and written with a single write(2), so lines
 * from several threads or processes sharing a file never interleave.
 *
 * The logger is process state configured once by main() before any loop
 * runs (px_log_setup); it is the one documented exception to "no mutable
 * globals". Everything else receives its context explicitly.
 */
#ifndef PX_LOG_H
#define PX_LOG_H

#include "err.h"

typedef enum px_log_level {
    PX_LOG_DEBUG = 0,
    PX_LOG_INFO = 1,
    PX_LOG_WARN = 2,
    PX_LOG_ERROR = 3,
    PX_LOG_OFF = 4
} px_log_level;

/* Send log lines at or above `level` to `path` (appended, created 0600) or to
 * stderr when path is NULL. Not thread-safe: call before starting threads.
 * Returns PX_E_IO (with em filled) if the file cannot be opened; the previous
 * destination stays in force then. */
px_err px_log_setup(px_log_level level, const char *path, px_errmsg *em);

/* Parse "debug|info|warn|error|off" (case-insensitive). */
px_err px_log_level_parse(const char *s, px_log_level *out);

px_log_level px_log_get_level(void);

/* Emit one line. `fields` is a printf format for the key=value tail (may be
 * NULL). Never blocks on anything but the write(2) itself; never fails
 * visibly (a line that cannot be written is dropped). */
void px_log(px_log_level level, const char *module, const char *msg, const char *fields, ...)
    __attribute__((format(printf, 4, 5)));

#define PX_DEBUG(mod, msg, ...)                                                                    \
    do {                                                                                           \
        if (px_log_get_level() <= PX_LOG_DEBUG)                                                    \
            px_log(PX_LOG_DEBUG, mod, msg, __VA_ARGS__);                                           \
    } while (0)
#define PX_INFO(mod, msg, ...)  px_log(PX_LOG_INFO, mod, msg, __VA_ARGS__)
#define PX_WARN(mod, msg, ...)  px_log(PX_LOG_WARN, mod, msg, __VA_ARGS__)
#define PX_ERROR(mod, msg, ...) px_log(PX_LOG_ERROR, mod, msg, __VA_ARGS__)

#endif
